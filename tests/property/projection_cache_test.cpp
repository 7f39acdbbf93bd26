// The projection cache (precompute_projections): with it, the bounded method scores the vectors its
// cheap bounds cannot certify from cached int8 projections, and every score stays within 1e-5 of the
// straightforward method; results do not depend on the thread count; a damaged, stale or foreign
// cache file is never trusted; an unwritable cache directory is a clear error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "common/score_compare.h"
#include "common/test_paths.h"
#include "ops/gemm.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using test::max_diff;
using test::expect_close;


int64_t cached_count(const Explanation& e) {
  return e.method_counts.at("ffn_cached") + e.method_counts.at("attention_cached");
}

class ProjectionCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(test::scratch_dir("projection_cache"));
    ::setenv("RESLENS_CACHE_DIR", dir_->c_str(), 1);
    // The random GPT-2 (vocabulary 50257, near-uniform distributions): the cheap bounds fail often.
    model_ = Model::load(test::shared_path("models/random-gpt2-hf"));
    for (size_t i = 0; i < 9; ++i) tokens_.push_back(static_cast<int32_t>((i * 7919 + 13) % 50257));
    RunOptions o;
    o.capture = explain_capture();
    o.all_logits = true;
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
    o.projection_sketch = false;  // what the cache leaves goes to the exact pass (projection_sketch_test has the sketch)
    return o;
  }
  static void build() {
    const ProjectionCacheInfo info = precompute_projections(*model_, 2);
    ASSERT_TRUE(info.present);
    ASSERT_EQ(static_cast<int64_t>(std::filesystem::file_size(info.path)), info.bytes);
  }

  static std::filesystem::path* dir_;
  static std::shared_ptr<const Model> model_;
  static std::vector<int32_t> tokens_;
  static RunResult* run_;
};
std::filesystem::path* ProjectionCacheTest::dir_ = nullptr;
std::shared_ptr<const Model> ProjectionCacheTest::model_;
std::vector<int32_t> ProjectionCacheTest::tokens_;
RunResult* ProjectionCacheTest::run_ = nullptr;

TEST_F(ProjectionCacheTest, CachedScoresAgreeWithTheFullMethodWithin1e5) {
  const ProjectionCacheInfo before = projection_cache_info(*model_);
  EXPECT_FALSE(before.present);
  EXPECT_EQ(before.path.parent_path(), *dir_);
  const Explanation plain = explain(*model_, *run_, tokens_, bounded());
  EXPECT_EQ(cached_count(plain), 0);
  EXPECT_GT(plain.method_counts.at("ffn_full"), 0);

  int64_t calls = 0, last = 0, total = 0;
  const ProjectionCacheInfo info = precompute_projections(*model_, 2, [&](int64_t done, int64_t all) {
    EXPECT_GT(done, last);
    last = done;
    total = all;
    ++calls;
  });
  ASSERT_TRUE(info.present);
  const ModelConfig& c = model_->config();
  EXPECT_EQ(total, c.n_layers * (c.d_mlp + c.n_heads * c.d_head));
  EXPECT_EQ(last, total);
  EXPECT_GT(calls, 1);

  ExplainOptions full = bounded();
  full.method = ScoreMethod::kFull;
  const Explanation a = explain(*model_, *run_, tokens_, full);
  const Explanation b = explain(*model_, *run_, tokens_, bounded());
  EXPECT_GT(b.method_counts.at("ffn_cached"), 0);
  // Every FFN neuron the cheap bound missed is certified from the cache on this model (with the
  // cache the head is 16 tokens instead of 64, so the cheap bound misses a few more).
  EXPECT_EQ(b.method_counts.at("ffn_full"), 0);
  EXPECT_GE(b.method_counts.at("ffn_cached"), plain.method_counts.at("ffn_full"));
  expect_close(a, b, 1e-5);
  expect_close(plain, b, 1e-5);

  // A tighter tolerance (within which the scores then agree) fails more of the cheap attention
  // bounds, so the cached path for attention neurons (one direction's moments shared by its
  // positions) is exercised too.
  ExplainOptions tight = bounded();
  tight.bound_tol = 2e-7;
  const Explanation t = explain(*model_, *run_, tokens_, tight);
  EXPECT_GT(t.method_counts.at("attention_cached"), 0);
  EXPECT_GT(t.method_counts.at("ffn_cached"), b.method_counts.at("ffn_cached"));
  expect_close(a, t, 1e-6);

  // Turned off, the cache is not read.
  ExplainOptions off = bounded();
  off.projection_cache = false;
  EXPECT_EQ(cached_count(explain(*model_, *run_, tokens_, off)), 0);
}

TEST_F(ProjectionCacheTest, ThreadCountDoesNotChangeCachedScores) {
  build();
  const Explanation a = explain(*model_, *run_, tokens_, bounded(1));
  const Explanation b = explain(*model_, *run_, tokens_, bounded(3));
  EXPECT_GT(cached_count(a), 0);
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.head_position.values, b.head_position.values);
  EXPECT_EQ(a.method_counts, b.method_counts);
}

TEST_F(ProjectionCacheTest, TheInstructionSetDoesNotChangeCachedScores) {
  build();
  ExplainOptions tight = bounded();
  tight.bound_tol = 2e-7;  // many cached rows read, single neurons and combinations
  const Explanation a = explain(*model_, *run_, tokens_, tight);
  ops::detail::set_gemm_isa_limit(ops::detail::GemmIsa::avx2);  // the int8/int16 moments' portable lanes
  const Explanation b = explain(*model_, *run_, tokens_, tight);
  ops::detail::set_gemm_isa_limit(ops::detail::GemmIsa::avx512);
  EXPECT_GT(cached_count(a), 0);
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.head_position.values, b.head_position.values);
  EXPECT_EQ(a.head.values, b.head.values);
}

TEST_F(ProjectionCacheTest, DamagedOrForeignFilesAreNeverTrusted) {
  auto expect_ignored = [&](const char* what) {
    SCOPED_TRACE(what);
    EXPECT_FALSE(projection_cache_info(*model_).present);
    const Explanation e = explain(*model_, *run_, tokens_, bounded());
    EXPECT_EQ(cached_count(e), 0);
    EXPECT_GT(e.method_counts.at("ffn_full"), 0);
  };
  build();
  const std::filesystem::path p = projection_cache_info(*model_).path;
  const auto size = std::filesystem::file_size(p);
  std::filesystem::resize_file(p, size - 1);
  expect_ignored("truncated");

  build();
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(8);  // the fingerprint: as if the file were another model's
    f.put('\x55');
  }
  expect_ignored("other weights");

  build();
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64 + 4);  // the first row's error bound becomes NaN
    const uint32_t nan_bits = 0x7fc00000u;
    f.write(reinterpret_cast<const char*>(&nan_bits), 4);
  }
  expect_ignored("NaN bound");

  std::filesystem::remove(p);
  expect_ignored("absent");
}

TEST_F(ProjectionCacheTest, AnUnwritableCacheDirectoryIsAClearError) {
  const std::filesystem::path blocker = *dir_ / "not-a-directory";
  std::ofstream(blocker) << "x";
  ::setenv("RESLENS_CACHE_DIR", (blocker / "sub").c_str(), 1);
  try {
    precompute_projections(*model_, 1);
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("not-a-directory"), std::string::npos) << e.what();
  }
  ::setenv("RESLENS_CACHE_DIR", dir_->c_str(), 1);
}

}  // namespace
}  // namespace reslens
