// explain_generated() and generate(): the model's own answer explained. The answer is exactly
// generate()'s (greedy: the argmax of a whole-sequence run at every position, so the KV-cache path
// and the pass that is explained agree); every step is, bit for bit, the single-position explanation
// of the prompt and the answer's tokens before it; the answer stops at the end of the turn and that
// token is not explained; bad requests fail with one line.
#include <gtest/gtest.h>

#include <string>

#include "common/test_paths.h"
#include "reslens/error.h"
#include "reslens/explain_target.h"
#include "reslens/generate.h"
#include "reslens/report.h"

namespace reslens {
namespace {

// A Llama (full method: a 512-token vocabulary) and a GPT-2 (bounded method: 50257 tokens).
const char* const kModels[] = {"models/stories260K/stories260K.gguf", "models/random-gpt2/random-gpt2-test.gguf"};

class ExplainGeneratedTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { model_ = Model::load(test::shared_path(GetParam())); }
  std::shared_ptr<const Model> model_;
  std::vector<int32_t> prompt() const {
    const int64_t V = model_->config().d_vocab;
    return {static_cast<int32_t>(13 % V), static_cast<int32_t>(300 % V), static_cast<int32_t>(401 % V),
            static_cast<int32_t>(77 % V)};
  }
  std::string error_of(const ExplainRequest& req, const GenerateOptions& go) const {
    try {
      explain_generated(*model_, req, go);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "no error";
  }
};

// The argmax of a row (lowest id on ties).
int32_t argmax(std::span<const float> row) {
  int32_t best = 0;
  for (size_t i = 1; i < row.size(); ++i) {
    if (row[i] > row[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

void expect_same_explanation(const Explanation& a, const Explanation& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.real_log_prob, b.real_log_prob);
  EXPECT_EQ(a.frozen_scale, b.frozen_scale);
  EXPECT_EQ(a.bs_log_prob_final, b.bs_log_prob_final);
  EXPECT_EQ(a.bs_log_prob_embedding, b.bs_log_prob_embedding);
  EXPECT_EQ(a.attn_layer, b.attn_layer);
  EXPECT_EQ(a.ffn_layer, b.ffn_layer);
  EXPECT_EQ(a.head.values, b.head.values);
  EXPECT_EQ(a.head_position.values, b.head_position.values);
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.query_ffn_neuron.values, b.query_ffn_neuron.values);
  EXPECT_EQ(a.query_only_per_layer, b.query_only_per_layer);
}

TEST_P(ExplainGeneratedTest, TheGreedyAnswerIsGeneratesAndTheArgmaxOfTheWholePass) {
  GenerateOptions go;
  go.max_tokens = 5;
  const Generation gen = generate(*model_, prompt(), go);
  ASSERT_EQ(gen.tokens.size(), 5u);
  EXPECT_EQ(gen.stop, GenerationStop::kMaxTokens);
  // The same tokens from one run over the prompt and the answer (no KV cache): each the argmax.
  std::vector<int32_t> all = prompt();
  all.insert(all.end(), gen.tokens.begin(), gen.tokens.end() - 1);
  RunOptions ro;
  ro.all_logits = true;
  const RunResult run = reslens::run(*model_, all, ro);
  const auto V = static_cast<size_t>(model_->config().d_vocab);
  for (size_t t = 0; t < gen.tokens.size(); ++t) {
    EXPECT_EQ(gen.tokens[t], argmax({run.logits.row(static_cast<int64_t>(prompt().size() + t) - 1), V})) << "token " << t;
  }
  ExplainRequest req;
  req.tokens = prompt();
  std::vector<std::pair<int, int>> progress;  // on_step: after each step, (done, total)
  req.on_step = [&](int done, int total) { progress.emplace_back(done, total); };
  const ExplainedTarget done = explain_generated(*model_, req, go);
  EXPECT_EQ(progress, (std::vector<std::pair<int, int>>{{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}}));
  EXPECT_EQ(done.target, gen.tokens);
  ASSERT_TRUE(done.generated.has_value());
  EXPECT_EQ(done.generated->stop, GenerationStop::kMaxTokens);
  EXPECT_EQ(done.generated->stop_token, -1);
  EXPECT_FALSE(done.single());
  ASSERT_FALSE(done.notes.empty());
  EXPECT_NE(done.notes.back().find("generated 5 tokens greedily"), std::string::npos) << done.notes.back();
}

TEST_P(ExplainGeneratedTest, EveryStepIsTheSinglePositionExplanationOfItsPrefix) {
  ExplainRequest req;
  req.tokens = prompt();
  GenerateOptions go;
  go.max_tokens = 4;
  go.temperature = 0.9;  // sampled: the same draws as generate() with this seed
  go.seed = 11;
  const ExplainedTarget done = explain_generated(*model_, req, go);
  EXPECT_EQ(done.target, generate(*model_, prompt(), go).tokens);
  const size_t m = done.target.size();
  ASSERT_EQ(m, 4u);
  ASSERT_EQ(done.target_pass.steps.size(), m);
  // The same tokens given as a target: the same document, byte for byte, but the "generated" key.
  ExplainRequest forced = req;
  forced.target_tokens = done.target;
  ExplainedTarget as_target = explain_target(*model_, forced);
  as_target.generated = done.generated;
  EXPECT_EQ(target_json(*model_, done), target_json(*model_, as_target));
  for (size_t t = 0; t < m; ++t) {
    ExplainRequest one;
    one.tokens = prompt();
    one.tokens.insert(one.tokens.end(), done.target.begin(), done.target.begin() + static_cast<std::ptrdiff_t>(t));
    one.target = TokenName{done.target[t], ""};
    // At the default tolerance: the steps are the single explains (the sums spend their own budget).
    const ExplainedPrompt alone = explain(*model_, one);
    expect_same_explanation(done.target_pass.steps[t].explanation, alone.explanation, "step " + std::to_string(t));
  }
}

TEST_P(ExplainGeneratedTest, BadRequestsFailWithOneLine) {
  ExplainRequest req;
  req.tokens = prompt();
  GenerateOptions go;
  go.max_tokens = 0;
  std::string msg = error_of(req, go);
  EXPECT_NE(msg.find("the number of tokens to generate is 0"), std::string::npos) << msg;
  go.max_tokens = model_->config().n_ctx;  // the prompt and N - 1 tokens do not fit
  msg = error_of(req, go);
  EXPECT_NE(msg.find("more than the model's context window of " + std::to_string(model_->config().n_ctx)),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("ask for at most " + std::to_string(model_->config().n_ctx - 3)), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  go.max_tokens = 2;
  req.target = TokenName{45, ""};
  EXPECT_NE(error_of(req, go).find("not both"), std::string::npos);
  req.target.reset();
  req.foil_tokens = {45, 7};
  EXPECT_NE(error_of(req, go).find("a foil is not taken"), std::string::npos);
  req.foil_tokens.clear();
  req.position = 1;
  EXPECT_NE(error_of(req, go).find("explained after the last position"), std::string::npos);
  req.position = -1;
  go.temperature = -1;
  EXPECT_NE(error_of(req, go).find("temperature"), std::string::npos);
}

std::string model_name(const ::testing::TestParamInfo<const char*>& param) {
  return std::string(param.param).find("gpt2") != std::string::npos ? "Gpt2" : "Llama";
}
INSTANTIATE_TEST_SUITE_P(Models, ExplainGeneratedTest, ::testing::ValuesIn(kModels), model_name);

// Sampling nearly uniformly (temperature 1000 over 512 tokens), draws that end the turn are found
// by trying seeds; the answer then stops before that token, which is not explained, and an answer
// that ends at once is refused.
TEST(ExplainGeneratedStop, TheAnswerEndsWithTheTurnAndTheEndIsNotExplained) {
  const auto model = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
  const std::vector<int32_t> eog = end_of_generation_tokens(model->tokenizer());
  EXPECT_EQ(eog, std::vector<int32_t>{model->tokenizer().eos_id()});
  const std::vector<int32_t> prompt = {1, 403};  // "<s> Once"
  GenerateOptions go;
  go.temperature = 1000;
  go.max_tokens = 1;
  // An answer whose first token ends the turn.
  bool at_once = false;
  for (go.seed = 0; go.seed < 20000 && !at_once; ++go.seed) {
    at_once = generate(*model, prompt, go).stop == GenerationStop::kEndOfTurn;
  }
  ASSERT_TRUE(at_once);
  --go.seed;
  ExplainRequest req;
  req.tokens = prompt;
  try {
    explain_generated(*model, req, go);
    ADD_FAILURE() << "an answer that ends at once was explained";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("the model ended its turn at once (its first token is '</s>')"),
              std::string::npos) << e.what();
  }
  // An answer of a few tokens that then ends the turn.
  go.max_tokens = 40;
  Generation gen;
  for (go.seed = 0; go.seed < 2000; ++go.seed) {
    gen = generate(*model, prompt, go);
    if (gen.stop == GenerationStop::kEndOfTurn && gen.tokens.size() >= 2 && gen.tokens.size() <= 12) break;
  }
  ASSERT_EQ(gen.stop, GenerationStop::kEndOfTurn);
  EXPECT_EQ(gen.stop_token, model->tokenizer().eos_id());
  const ExplainedTarget done = explain_generated(*model, req, go);
  EXPECT_EQ(done.target, gen.tokens);
  EXPECT_EQ(done.target_pass.steps.size(), gen.tokens.size());
  ASSERT_TRUE(done.generated.has_value());
  EXPECT_EQ(done.generated->stop, GenerationStop::kEndOfTurn);
  EXPECT_EQ(done.generated->stop_token, model->tokenizer().eos_id());
  EXPECT_NE(done.notes.back().find("until the model ended its turn with '</s>'"), std::string::npos) << done.notes.back();
}

}  // namespace
}  // namespace reslens
