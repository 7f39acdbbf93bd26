// analysis/projector: bs(v), the frozen-norm vocabulary projection (spec §2.2), against a float64
// evaluation of its formula written here from the spec, on a GPT-2 (LayerNorm: v's own mean, no
// ln_f bias unless asked) and a Llama (RMSNorm); and its linearity, bs(x + v) = bs(x) + bs(v) and
// bs(k v) = k bs(v), which every score of the paper relies on.
#include "analysis/projector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "reslens/model.h"

namespace reslens::analysis {
namespace {

// bs_j(v) and the sum of |terms| of its dot product (the scale a float evaluation's error has).
struct Reference {
  std::vector<double> bs, size;
};

// The spec's formula in double: sigma_f from the final vector h (centred for LayerNorm), then
// bs_j(v) = sum_i U[j, i] gamma_i (v_i - mean(v)) / sigma_f with v's own mean (LayerNorm) or none.
double frozen_scale(const Model& m, const std::vector<float>& h) {
  const bool centered = m.config().normalization_type == NormType::kLayerNorm;
  double mean = 0;
  for (float x : h) mean += centered ? static_cast<double>(x) / static_cast<double>(h.size()) : 0.0;
  double sq = 0;
  for (float x : h) sq += (static_cast<double>(x) - mean) * (static_cast<double>(x) - mean);
  return std::sqrt(sq / static_cast<double>(h.size()) + static_cast<double>(m.config().eps));
}

Reference reference_bs(const Model& m, const std::vector<float>& h, const std::vector<float>& v) {
  const ModelWeights& W = m.weights();
  const int64_t d = m.config().d_model, V = m.config().d_vocab;
  const double sigma = frozen_scale(m, h);
  double mean = 0;
  if (m.config().normalization_type == NormType::kLayerNorm) {
    for (float x : v) mean += static_cast<double>(x);
    mean /= static_cast<double>(d);
  }
  Reference r;
  for (int64_t j = 0; j < V; ++j) {
    double s = 0, a = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double t = static_cast<double>(W.W_U.at(j, i)) * static_cast<double>(W.ln_final_w[i]) *
                       (static_cast<double>(v[static_cast<size_t>(i)]) - mean) / sigma;
      s += t;
      a += std::abs(t);
    }
    r.bs.push_back(s);
    r.size.push_back(a);
  }
  return r;
}

std::vector<float> random_vector(std::mt19937& rng, int64_t d, float scale, float offset) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(d));
  for (float& x : v) x = offset + scale * normal(rng);
  return v;
}

struct ProjectorCase {
  const char* name;
  const char* path;
};

class Projector : public ::testing::TestWithParam<ProjectorCase> {
 protected:
  void SetUp() override {
    model_ = Model::load(test::shared_path(GetParam().path));
    std::mt19937 rng(17);
    // A final vector with an offset, so that centring (LayerNorm) matters.
    h_ = random_vector(rng, model_->config().d_model, 2.0f, 0.7f);
  }
  std::shared_ptr<const Model> model_;
  std::vector<float> h_;
};

// A float32 projection is within this fraction of the sum of its terms' sizes of the exact value.
constexpr double kFloatRel = 1e-5;

TEST_P(Projector, ScaleAndProjectionAreTheSpecsFormula) {
  const Model& m = *model_;
  const VocabProjector proj(m, h_, false, 1);
  EXPECT_NEAR(proj.scale(), frozen_scale(m, h_), 1e-12 * frozen_scale(m, h_));
  EXPECT_TRUE(proj.bias().empty());
  std::mt19937 rng(5);
  const int64_t V = m.config().d_vocab;
  for (float offset : {0.0f, 3.0f, -40.0f}) {
    const std::vector<float> v = random_vector(rng, m.config().d_model, 1.5f, offset);
    const Reference want = reference_bs(m, h_, v);
    std::vector<float> got(static_cast<size_t>(V));
    proj.project(v.data(), 1, m.config().d_model, got.data());
    for (int64_t j = 0; j < V; ++j) {
      const auto js = static_cast<size_t>(j);
      ASSERT_NEAR(static_cast<double>(got[js]), want.bs[js], kFloatRel * want.size[js] + 1e-12) << "token " << j;
    }
    for (int32_t w : {0, static_cast<int32_t>(V / 2), static_cast<int32_t>(V - 1)}) {
      const auto ws = static_cast<size_t>(w);
      EXPECT_NEAR(proj.logit(v.data(), w), want.bs[ws], kFloatRel * want.size[ws] + 1e-12) << "token " << w;
    }
  }
}

TEST_P(Projector, TheLogitsOfASumAreTheSumOfTheLogits) {
  const Model& m = *model_;
  const int64_t d = m.config().d_model, V = m.config().d_vocab;
  const VocabProjector proj(m, h_, false, 1);
  std::mt19937 rng(11);
  const std::vector<float> a = random_vector(rng, d, 1.0f, 0.5f), b = random_vector(rng, d, 3.0f, -2.0f);
  // Rows: a, b, a + b, 3 h, h (the frozen scale must not follow the vector: bs(3h) = 3 bs(h)).
  std::vector<float> rows;
  for (const auto& v : {a, b}) rows.insert(rows.end(), v.begin(), v.end());
  for (int64_t i = 0; i < d; ++i) rows.push_back(a[static_cast<size_t>(i)] + b[static_cast<size_t>(i)]);
  for (int64_t i = 0; i < d; ++i) rows.push_back(3.0f * h_[static_cast<size_t>(i)]);
  rows.insert(rows.end(), h_.begin(), h_.end());
  std::vector<float> out(static_cast<size_t>(5 * V));
  proj.project(rows.data(), 5, d, out.data());
  const Reference ra = reference_bs(m, h_, a), rb = reference_bs(m, h_, b), rh = reference_bs(m, h_, h_);
  for (int64_t j = 0; j < V; ++j) {
    const auto js = static_cast<size_t>(j);
    auto at = [&](int64_t r) { return static_cast<double>(out[static_cast<size_t>(r * V + j)]); };
    ASSERT_NEAR(at(2), at(0) + at(1), kFloatRel * (ra.size[js] + rb.size[js]) + 1e-12) << "token " << j;
    ASSERT_NEAR(at(3), 3.0 * at(4), kFloatRel * 3.0 * rh.size[js] + 1e-12) << "token " << j;
  }
}

TEST_P(Projector, LayerNormIgnoresAConstantVectorRmsNormDoesNot) {
  const Model& m = *model_;
  const int64_t d = m.config().d_model, V = m.config().d_vocab;
  const VocabProjector proj(m, h_, false, 1);
  const std::vector<float> ones(static_cast<size_t>(d), 5.0f);
  std::vector<float> out(static_cast<size_t>(V));
  proj.project(ones.data(), 1, d, out.data());
  const Reference want = reference_bs(m, h_, ones);
  double largest = 0;
  for (int64_t j = 0; j < V; ++j) {
    const auto js = static_cast<size_t>(j);
    largest = std::max(largest, std::abs(static_cast<double>(out[js])));
    ASSERT_NEAR(static_cast<double>(out[js]), want.bs[js], kFloatRel * want.size[js] + 1e-12);
  }
  if (m.config().normalization_type == NormType::kLayerNorm) {
    EXPECT_EQ(largest, 0.0);
  } else {
    EXPECT_GT(largest, 0.0);
  }
}

TEST_P(Projector, TheFinalBiasIsWUBetaFPlusBU) {
  const Model& m = *model_;
  const ModelWeights& W = m.weights();
  const VocabProjector proj(m, h_, true, 1);
  if (W.ln_final_b.empty() && W.b_U.empty()) {
    EXPECT_TRUE(proj.bias().empty());
    return;
  }
  ASSERT_EQ(static_cast<int64_t>(proj.bias().size()), m.config().d_vocab);
  for (int64_t j = 0; j < m.config().d_vocab; ++j) {
    double s = W.b_U.empty() ? 0.0 : static_cast<double>(W.b_U[j]), a = std::abs(s);
    for (int64_t i = 0; i < m.config().d_model && !W.ln_final_b.empty(); ++i) {
      const double t = static_cast<double>(W.W_U.at(j, i)) * static_cast<double>(W.ln_final_b[i]);
      s += t;
      a += std::abs(t);
    }
    ASSERT_NEAR(static_cast<double>(proj.bias()[static_cast<size_t>(j)]), s, 1e-7 * a + 1e-12) << "token " << j;
  }
}

const ProjectorCase kCases[] = {
    {"gpt2_layernorm", "models/random-gpt2/random-gpt2-test.gguf"},
    {"llama_rmsnorm", "models/stories260K/stories260K.gguf"},
};
INSTANTIATE_TEST_SUITE_P(SharedModels, Projector, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace reslens::analysis
