// The sketched projection (analysis/projection_sketch.h) inside explain: on the random GPT-2
// (vocabulary 50257, near-uniform distributions, where many cheap bounds fail) it certifies most of
// what the cheap bounds leave, and every score stays within 1e-5 of the straightforward method, at
// the default tolerance and a tight one; the results do not depend on the thread count nor on the
// int8 kernel (AVX-512 VNNI, AVX-VNNI, AVX2: the same bytes); with only the portable loops explain
// does not use it (the exact pass takes the leftovers, within the tolerance).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "common/score_compare.h"
#include "common/test_paths.h"
#include "analysis/bounds.h"
#include "analysis/explain_internal.h"
#include "analysis/projection_sketch.h"
#include "ops/gemm.h"
#include "ops/int8_dot.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using test::max_diff;
using test::expect_close;


void expect_same(const Explanation& a, const Explanation& b) {
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.head.values, b.head.values);
  EXPECT_EQ(a.head_position.values, b.head_position.values);
  EXPECT_EQ(a.method_counts, b.method_counts);
}

class ProjectionSketchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!analysis::projection_sketch_available()) GTEST_SKIP() << "no SIMD int8 kernel (AVX2 at least): explain does not use the sketch";
  }
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(test::scratch_dir("projection_sketch"));
    ::setenv("RESLENS_CACHE_DIR", dir_->c_str(), 1);  // no projection cache here
    model_ = Model::load(test::shared_path("models/random-gpt2-hf"));
    for (size_t i = 0; i < 9; ++i) tokens_.push_back(static_cast<int32_t>((i * 7919 + 13) % 50257));
    RunOptions o;
    o.capture = explain_capture();
    run_ = new RunResult(run(*model_, tokens_, o));
  }
  static void TearDownTestSuite() {
    delete run_;
    model_.reset();
    delete dir_;
  }
  static ExplainOptions bounded(int threads = 0) {
    ExplainOptions o;
    o.method = ScoreMethod::kBounded;
    o.foil = 7;
    o.n_threads = threads;
    // A fixed extended head: its default depends on the int8 kernel (none with AMX), and these tests
    // compare kernels and runs with and without the sketch, which must take the same split.
    o.extended_head = 2048;
    return o;
  }
  static int64_t sketched(const Explanation& e) {
    return e.method_counts.at("ffn_sketched") + e.method_counts.at("attention_sketched");
  }

  static std::filesystem::path* dir_;
  static std::shared_ptr<const Model> model_;
  static std::vector<int32_t> tokens_;
  static RunResult* run_;
};
std::filesystem::path* ProjectionSketchTest::dir_ = nullptr;
std::shared_ptr<const Model> ProjectionSketchTest::model_;
std::vector<int32_t> ProjectionSketchTest::tokens_;
RunResult* ProjectionSketchTest::run_ = nullptr;

TEST_F(ProjectionSketchTest, SketchedScoresAgreeWithTheFullMethodWithin1e5) {
  ExplainOptions full = bounded();
  full.method = ScoreMethod::kFull;
  ExplainOptions off = bounded();
  off.projection_sketch = false;
  const Explanation a = explain(*model_, *run_, tokens_, full);
  const Explanation plain = explain(*model_, *run_, tokens_, off);
  const Explanation b = explain(*model_, *run_, tokens_, bounded());
  EXPECT_EQ(plain.method_counts.count("ffn_sketched"), 0u);
  ASSERT_GT(plain.method_counts.at("ffn_full"), 0);
  EXPECT_GT(b.method_counts.at("ffn_sketched"), 0);
  // Most of what went to the exact pass is certified from the sketch.
  EXPECT_LT(b.method_counts.at("ffn_full") * 4, plain.method_counts.at("ffn_full"));
  EXPECT_EQ(b.method_counts.at("ffn_sketched") + b.method_counts.at("ffn_full"), plain.method_counts.at("ffn_full"));
  EXPECT_EQ(b.method_counts.at("attention_sketched") + b.method_counts.at("attention_full"),
            plain.method_counts.at("attention_full"));
  expect_close(a, b, 1e-5);
  // A tight tolerance: fewer certified, the scores as close as it says.
  ExplainOptions tight = bounded();
  tight.bound_tol = 2e-7;
  const Explanation t = explain(*model_, *run_, tokens_, tight);
  EXPECT_GT(sketched(t), 0);
  expect_close(a, t, 1e-6);
}

// The bounds keep every FFN direction's sketch forms (ModelBounds::ffn_forms), which sketched explains
// read instead of computing: they must be sketched_forms of the prepared directions, bit for bit,
// on every layer (GPT-2 shapes: the forms are not screened, so every sketched vector needs them).
TEST_F(ProjectionSketchTest, BoundsHoldEveryFfnDirectionsForms) {
  const auto sk = analysis::projection_sketch(*model_, 2);
  ASSERT_FALSE(sk->screen_forms);
  const auto mb = analysis::model_bounds(*model_, 2);
  const ModelConfig& c = model_->config();
  ASSERT_EQ(mb->ffn_forms.size(), static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::vector<float> y = analysis::prepared_columns(*model_, model_->weights().layers[static_cast<size_t>(l)].W_out, 0, c.d_mlp);
    EXPECT_EQ(mb->ffn_forms[static_cast<size_t>(l)], analysis::sketched_forms(*sk, y.data(), c.d_mlp, 1)) << "layer " << l;
    EXPECT_EQ(mb->ffn_forms_of(l, c.d_mlp - 1), mb->ffn_forms[static_cast<size_t>(l)].data() + 2 * (c.d_mlp - 1));
    EXPECT_EQ(mb->ffn_forms_of(l, c.d_mlp), nullptr);
  }
  EXPECT_EQ(mb->ffn_forms_of(c.n_layers, 0), nullptr);
}

TEST_F(ProjectionSketchTest, ThreadCountDoesNotChangeTheScores) {
  ExplainOptions tight = bounded(1);
  tight.bound_tol = 1e-6;
  const Explanation a = explain(*model_, *run_, tokens_, tight);
  EXPECT_GT(sketched(a), 0);
  for (const int threads : {2, 3}) {  // the FFN items are prepared, and the sketch run, in thread chunks
    tight.n_threads = threads;
    const Explanation b = explain(*model_, *run_, tokens_, tight);
    SCOPED_TRACE(threads);
    expect_same(a, b);
  }
}

// The sketch's integers are exact on every SIMD kernel and its float parts are the same code, so
// AVX-512 VNNI (an AMX Xeon's default is AMX), an AVX2 laptop (GEMMs and kernel capped at AVX2) and an AVX-VNNI one give the same bytes as AVX-512
// VNNI: every score and every method count. (Kernels this CPU lacks are left out and named.)
TEST_F(ProjectionSketchTest, EveryInt8KernelGivesTheSameScores) {
  using ops::detail::GemmIsa;
  using ops::detail::Int8Kernel;
  const Explanation a = explain(*model_, *run_, tokens_, bounded());
  ASSERT_GT(sketched(a), 0);
  int compared = 0;
  for (const Int8Kernel kernel : {Int8Kernel::avx512_vnni, Int8Kernel::avx_vnni, Int8Kernel::avx2}) {
    ops::detail::set_gemm_isa_limit(kernel == Int8Kernel::avx512_vnni ? GemmIsa::avx512 : GemmIsa::avx2);
    ops::detail::set_int8_dot_kernel_limit(kernel);
    if (ops::detail::int8_dot_active_kernel() != kernel) {
      std::printf("(this CPU has no %s kernel: not compared)\n", ops::detail::int8_kernel_name(kernel));
    } else {
      EXPECT_TRUE(analysis::projection_sketch_available());
      const Explanation c = explain(*model_, *run_, tokens_, bounded());
      SCOPED_TRACE(ops::detail::int8_kernel_name(kernel));
      expect_same(a, c);
      ++compared;
    }
    ops::detail::set_int8_dot_kernel_limit(Int8Kernel::amx);
    ops::detail::set_gemm_isa_limit(GemmIsa::avx512);
  }
  EXPECT_GE(compared, 1);
}

// With only the portable loops the sketch is not used: the leftovers take the exact pass, and the
// scores agree with the sketched ones within the tolerance, not bit for bit.
TEST_F(ProjectionSketchTest, WithoutASimdKernelTheExactPassTakesTheLeftovers) {
  const Explanation a = explain(*model_, *run_, tokens_, bounded());
  ops::detail::set_int8_dot_kernel_limit(ops::detail::Int8Kernel::portable);
  EXPECT_FALSE(analysis::projection_sketch_available());
  const Explanation c = explain(*model_, *run_, tokens_, bounded());
  ops::detail::set_int8_dot_kernel_limit(ops::detail::Int8Kernel::amx);
  EXPECT_EQ(c.method_counts.count("ffn_sketched"), 0u);
  expect_close(a, c, 1e-5);
}

// A multi-token target budgets its sums from each step's certified half-widths
// (analysis/target_tightening.h), so a sketched score must report its own: the full method's value
// lies within it for every score of every level (a score left at width 0 would claim to be exact).
TEST_F(ProjectionSketchTest, SketchedScoresReportTheirCertifiedHalfWidths) {
  ExplainOptions full = bounded();
  full.method = ScoreMethod::kFull;
  const Explanation a = explain(*model_, *run_, tokens_, full);
  analysis::ScoreWidths widths;
  const Explanation b = analysis::explain_sharing(*model_, *run_, tokens_, bounded(), nullptr, &widths);
  ASSERT_GT(b.method_counts.at("ffn_sketched"), 0);
  ASSERT_GT(b.method_counts.at("attention_sketched"), 0);
  auto contained = [](const ScoreArray& exact, const ScoreArray& got, const ScoreArray& hw, const char* what) {
    ASSERT_EQ(hw.shape, got.shape) << what;
    int64_t outside = 0;
    for (size_t i = 0; i < got.values.size(); ++i) {
      // + the float projections' rounding, as the tolerance tests allow
      if (std::abs(got.values[i] - exact.values[i]) > hw.values[i] + 1e-7) ++outside;
    }
    EXPECT_EQ(outside, 0) << what << ": scores farther from the full method's than their half-width";
  };
  contained(a.ffn_neuron, b.ffn_neuron, widths.ffn_neuron, "FFN neurons");
  contained(a.attn_neuron, b.attn_neuron, widths.attn_neuron, "attention neurons");
  contained(a.head, b.head, widths.head, "heads");
  contained(a.head_position, b.head_position, widths.head_position, "head x position");
}

}  // namespace
}  // namespace reslens
