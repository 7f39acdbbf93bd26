// Properties of explain() on every architecture: the bounded method agrees with the full one within
// 1e-5 on every score; results do not depend on the thread count; explaining position P of a prompt
// equals explaining the prompt cut after P; the layer scores telescope.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/test_paths.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

const char* const kModels[] = {
    "models/stories260K/stories260K.gguf",
    "models/TinyStories-656K",
    "models/random-gpt2-hf",
};

std::vector<int32_t> some_tokens(const Model& m, size_t n) {
  std::vector<int32_t> t;
  for (size_t i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(m.config().d_vocab)));
  return t;
}

double max_diff(const ScoreArray& a, const ScoreArray& b) {
  EXPECT_EQ(a.shape, b.shape);
  double w = 0;
  for (size_t i = 0; i < a.values.size() && i < b.values.size(); ++i) w = std::max(w, std::abs(a.values[i] - b.values[i]));
  return w;
}

class ExplainProperty : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    model_ = Model::load(test::shared_path(GetParam()));
    tokens_ = some_tokens(*model_, 9);
    RunOptions o;
    o.capture = explain_capture();
    o.all_logits = true;
    run_ = run(*model_, tokens_, o);
  }
  std::shared_ptr<const Model> model_;
  std::vector<int32_t> tokens_;
  RunResult run_;
};

TEST_P(ExplainProperty, BoundedMethodAgreesWithFullWithin1e5) {
  ExplainOptions full, bounded;
  full.method = ScoreMethod::kFull;
  bounded.method = ScoreMethod::kBounded;
  bounded.projection_cache = false;  // the cheap bounds and the exact fallbacks alone (projection_cache_test covers the cache)
  full.foil = bounded.foil = 7;
  const Explanation a = explain(*model_, run_, tokens_, full);
  const Explanation b = explain(*model_, run_, tokens_, bounded);
  EXPECT_LT(max_diff(a.ffn_neuron, b.ffn_neuron), 1e-5);
  EXPECT_LT(max_diff(a.attn_neuron, b.attn_neuron), 1e-5);
  EXPECT_LT(max_diff(a.head, b.head), 1e-5);
  EXPECT_LT(max_diff(a.head_position, b.head_position), 1e-5);
  EXPECT_LT(max_diff(a.contrast_ffn_neuron, b.contrast_ffn_neuron), 1e-5);
  EXPECT_LT(max_diff(a.contrast_head, b.contrast_head), 1e-5);
  EXPECT_LT(max_diff(a.query_ffn_neuron, b.query_ffn_neuron), 1e-5);
  EXPECT_GT(b.method_counts.at("ffn_bounded") + b.method_counts.at("attention_bounded"), 0);
  // On the random GPT-2 (near-uniform distributions) some bounds fail: the exact fallbacks, for
  // single attention neurons and for head / head-position combinations, are compared above too.
  if (model_->config().d_vocab > 8192) {
    EXPECT_GT(b.method_counts.at("attention_full"), 0);
    EXPECT_GT(b.method_counts.at("ffn_full"), 0);
  }
}

TEST_P(ExplainProperty, ThreadCountDoesNotChangeTheScores) {
  ExplainOptions one, three;
  one.n_threads = 1;
  three.n_threads = 3;
  const Explanation a = explain(*model_, run_, tokens_, one);
  const Explanation b = explain(*model_, run_, tokens_, three);
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.head_position.values, b.head_position.values);
  EXPECT_EQ(a.query_ffn_neuron.values, b.query_ffn_neuron.values);
}

TEST_P(ExplainProperty, APositionIsExplainedAsIfThePromptEndedThere) {
  ExplainOptions at;
  at.position = 5;
  const Explanation a = explain(*model_, run_, tokens_, at);
  RunOptions o;
  o.capture = explain_capture();
  o.all_logits = true;
  const std::span<const int32_t> cut = std::span<const int32_t>(tokens_).first(6);
  const RunResult r = run(*model_, cut, o);
  const Explanation b = explain(*model_, r, cut, {});
  EXPECT_EQ(a.target, b.target);
  EXPECT_LT(max_diff(a.ffn_neuron, b.ffn_neuron), 1e-12);
  EXPECT_LT(max_diff(a.attn_neuron, b.attn_neuron), 1e-12);
  EXPECT_LT(a.checks.at("telescoping"), 1e-9);
}

TEST_P(ExplainProperty, TheLastPositionNeedsOnlyItsOwnLogits) {
  RunOptions o;
  o.capture = explain_capture();  // all_logits off: logits at the last position only
  const RunResult last_only = run(*model_, tokens_, o);
  ExplainOptions eo;
  eo.foil = 7;
  const Explanation a = explain(*model_, run_, tokens_, eo);
  const Explanation b = explain(*model_, last_only, tokens_, eo);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.real_log_prob, b.real_log_prob);
  eo.position = 3;  // an earlier position needs every position's logits
  EXPECT_THROW(explain(*model_, last_only, tokens_, eo), InvalidArgument);
}

TEST_P(ExplainProperty, BadRequestsAreTypedErrors) {
  ExplainOptions o;
  o.position = 99;
  EXPECT_THROW(explain(*model_, run_, tokens_, o), OutOfRange);
  o.position = -1;
  o.target = static_cast<int32_t>(model_->config().d_vocab);
  EXPECT_THROW(explain(*model_, run_, tokens_, o), OutOfRange);
  o.target = 3;
  o.foil = 3;
  EXPECT_THROW(explain(*model_, run_, tokens_, o), InvalidArgument);
  RunResult bare = run(*model_, tokens_);  // no hooks recorded
  EXPECT_THROW(explain(*model_, bare, tokens_, {}), InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, ExplainProperty, ::testing::ValuesIn(kModels), [](const auto& param_info) {
  std::string n = std::filesystem::path(param_info.param).filename().string();
  for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
});

}  // namespace
}  // namespace reslens
