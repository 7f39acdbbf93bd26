// explain_target(): a target of several tokens by teacher forcing. Every step is, bit for bit, the
// single-position explanation of the prompt and the target's tokens before it; a target and foil
// of one token each is explain()'s result; the sums add the steps and telescope; the foil's steps
// split where the sequences part; bad names and lengths fail before the run with one-line errors.
#include "reslens/explain_target.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "analysis/projection_sketch.h"
#include "analysis/target_tightening.h"
#include "common/test_paths.h"
#include "reslens/error.h"
#include "reslens/report.h"

namespace reslens {
namespace {

// A Llama (full method: a 512-token vocabulary) and a GPT-2 (bounded method: 50257 tokens).
const char* const kModels[] = {"models/stories260K/stories260K.gguf", "models/random-gpt2/random-gpt2-test.gguf"};

class ExplainTargetTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { model_ = Model::load(test::shared_path(GetParam())); }
  std::shared_ptr<const Model> model_;

  // Prompt ids and three target ids that differ from each other.
  std::vector<int32_t> prompt() const {
    const int64_t V = model_->config().d_vocab;
    return {static_cast<int32_t>(13 % V), static_cast<int32_t>(300 % V), static_cast<int32_t>(401 % V),
            static_cast<int32_t>(77 % V)};
  }
  static std::vector<int32_t> target() { return {45, 99, 12}; }
};

void expect_same_explanation(const Explanation& a, const Explanation& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.foil, b.foil);
  EXPECT_EQ(a.real_log_prob, b.real_log_prob);
  EXPECT_EQ(a.frozen_scale, b.frozen_scale);
  EXPECT_EQ(a.bs_log_prob_final, b.bs_log_prob_final);
  EXPECT_EQ(a.bs_log_prob_embedding, b.bs_log_prob_embedding);
  EXPECT_EQ(a.attn_layer, b.attn_layer);
  EXPECT_EQ(a.ffn_layer, b.ffn_layer);
  EXPECT_EQ(a.head.values, b.head.values);
  EXPECT_EQ(a.head_position.values, b.head_position.values);
  EXPECT_EQ(a.attn_weight.values, b.attn_weight.values);
  EXPECT_EQ(a.ffn_neuron.values, b.ffn_neuron.values);
  EXPECT_EQ(a.ffn_coef.values, b.ffn_coef.values);
  EXPECT_EQ(a.attn_neuron.values, b.attn_neuron.values);
  EXPECT_EQ(a.query_ffn_neuron.values, b.query_ffn_neuron.values);
  EXPECT_EQ(a.attn_value_query_layers.slots, b.attn_value_query_layers.slots);
  EXPECT_EQ(a.query_only_per_layer, b.query_only_per_layer);
  EXPECT_EQ(a.contrast_ffn_neuron.values, b.contrast_ffn_neuron.values);
  EXPECT_EQ(a.contrast_attn_neuron.values, b.contrast_attn_neuron.values);
  ASSERT_EQ(a.lens.size(), b.lens.size());
  for (size_t i = 0; i < a.lens.size(); ++i) EXPECT_EQ(a.lens[i].log_prob, b.lens[i].log_prob);
}

// With the int8 projection sketch (where the CPU has AVX2 at least) and without it: the steps take
// whichever path a single explain takes, bit for bit.
TEST_P(ExplainTargetTest, EveryStepIsTheSinglePositionExplanationOfItsPrefix) {
  for (const bool sketch : {true, false}) {
    SCOPED_TRACE(sketch ? "projection sketch on" : "projection sketch off");
    ExplainRequest req;
    req.options.projection_sketch = sketch;
    req.tokens = prompt();
    req.target_tokens = target();
    req.foil_tokens = {45, 7};  // parts from the target at step 1
    const ExplainedTarget done = explain_target(*model_, req);
    ASSERT_FALSE(done.single());
    ASSERT_EQ(done.target_pass.steps.size(), 3u);
    EXPECT_EQ(done.contrast_step, 1);
    EXPECT_EQ(done.first_foil_step, 2);
    EXPECT_TRUE(done.foil_pass.steps.empty());  // the foil has no step after the parting
    EXPECT_EQ(done.target_pass.tokens.size(), prompt().size() + 2);
    for (size_t t = 0; t < 3; ++t) {
      const TargetStep& step = done.target_pass.steps[t];
      EXPECT_EQ(step.position, static_cast<int>(prompt().size() + t) - 1);
      // The prompt and w_<t as a prompt of its own, explained at its last position with the request's
      // options (the default bounded-method tolerance: the sums' budget is spent after the steps).
      ExplainRequest one;
      const std::vector<int32_t> w = target();
      one.tokens = prompt();
      one.tokens.insert(one.tokens.end(), w.begin(), w.begin() + static_cast<std::ptrdiff_t>(t));
      one.target = TokenName{target()[t], ""};
      if (t == 1) one.foil = TokenName{7, ""};
      one.options = req.options;
      EXPECT_EQ(step.options.bound_tol, ExplainOptions{}.bound_tol);
      const ExplainedPrompt alone = explain(*model_, one);
      expect_same_explanation(step.explanation, alone.explanation, "step " + std::to_string(t));
      EXPECT_EQ(step.explanation.has_contrast, t == 1);
    }
    // With the sketch, the later steps read the integer products of the FFN directions an earlier
    // step sketched (SharedProjections), again without changing a bit (the bounded method only: the
    // full method projects every vector).
    const auto& first = done.target_pass.steps[0].explanation.method_counts;
    if (sketch && analysis::projection_sketch_available() && first.count("ffn_sketched") != 0) {
      const auto& later = done.target_pass.steps[2].explanation.method_counts;
      ASSERT_TRUE(first.count("ffn_sketch_shared") != 0 && later.count("ffn_sketch_shared") != 0);
      EXPECT_EQ(first.at("ffn_sketch_shared"), 0);
      EXPECT_GT(later.at("ffn_sketch_shared"), 0);
    }
    // On the random GPT-2 (bounded method, loose tail bounds) the later steps read exact projections
    // of weight directions the earlier ones made (analysis/shared_projections.h), and the comparison
    // above shows that this changes no bit. (With the sketch, so few vectors reach the exact pass
    // that a 3-step target may share none.)
    if (!sketch && model_->config().d_vocab > 8192) {
      const auto& later = done.target_pass.steps[2].explanation.method_counts;
      ASSERT_TRUE(later.count("ffn_shared") != 0 && later.count("attention_shared") != 0);
      EXPECT_GT(later.at("ffn_shared") + later.at("attention_shared"), 0);
      EXPECT_EQ(done.target_pass.steps[0].explanation.method_counts.at("ffn_shared"), 0);
    }
  }
}

TEST_P(ExplainTargetTest, OneTokenTargetAndFoilIsTodaysExplanationBitForBit) {
  ExplainRequest req;
  req.tokens = prompt();
  req.target = TokenName{45, ""};
  req.foil = TokenName{99, ""};
  const ExplainedTarget done = explain_target(*model_, req);
  const ExplainedPrompt today = explain(*model_, req);
  ASSERT_TRUE(done.single());
  ASSERT_EQ(done.target_pass.steps.size(), 1u);
  expect_same_explanation(done.target_pass.steps[0].explanation, today.explanation, "one token");
  EXPECT_EQ(done.target_pass.tokens, today.tokens);
  EXPECT_EQ(done.notes, today.notes);
  // The reports are today's documents, byte for byte.
  const TargetStep& s = done.target_pass.steps[0];
  EXPECT_EQ(explain_json(*model_, *done.target_pass.run, done.target_pass.tokens, s.explanation, s.options),
            explain_json(*model_, *today.run, today.tokens, today.explanation, today.options));
  // The sums of one step are that step; the contrast is its own.
  EXPECT_EQ(done.summed.ffn_neuron.values, today.explanation.ffn_neuron.values);
  EXPECT_EQ(done.summed.attn_neuron.values, today.explanation.attn_neuron.values);
  EXPECT_EQ(done.summed.contrast_ffn_neuron.values, today.explanation.contrast_ffn_neuron.values);
  EXPECT_EQ(done.summed.contrast_attn_layer, today.explanation.contrast_attn_layer);
  EXPECT_EQ(done.summed.log_prob, today.explanation.real_log_prob);
  // log p(target) - log p(foil) at P: the contrast of the one-step sequences.
  RunOptions ro;
  ro.capture = explain_capture();
  const RunResult run = reslens::run(*model_, prompt(), ro);
  const TargetStats foil = target_stats({run.logits.row(0), static_cast<size_t>(model_->config().d_vocab)}, 99);
  EXPECT_EQ(done.summed.foil_log_prob, foil.log_prob);
}

TEST_P(ExplainTargetTest, SumsAddTheStepsAndTelescope) {
  ExplainRequest req;
  req.tokens = prompt();
  req.target_tokens = target();
  const ExplainedTarget done = explain_target(*model_, req);
  const TargetSums& s = done.summed;
  const auto& steps = done.target_pass.steps;
  EXPECT_EQ(s.n_steps, 3);
  EXPECT_EQ(s.n_positions, static_cast<int64_t>(prompt().size() + 2));
  double log_prob = 0, increase = 0;
  for (const TargetStep& st : steps) {
    log_prob += st.explanation.real_log_prob;
    increase += st.explanation.bs_log_prob_final - st.explanation.bs_log_prob_embedding;
  }
  EXPECT_NEAR(s.log_prob, log_prob, 1e-12);
  double layers = 0;
  for (size_t l = 0; l < s.attn_layer.size(); ++l) layers += s.attn_layer[l] + s.ffn_layer[l];
  EXPECT_NEAR(layers, increase, 1e-9);  // the summed layer scores telescope
  EXPECT_LT(s.checks.at("telescoping"), 1e-9);
  EXPECT_LT(s.checks.at("steps_telescoping"), 1e-9);
  EXPECT_LT(s.checks.at("steps_heads_plus_bias_vs_attn_out"), 1e-4);
  // A neuron's summed score is the sum of its step scores; a source position a step does not have
  // adds nothing there. Under the bounded method a sum whose steps' certified widths add up to more
  // than bound_tol takes exact scores for its widest steps (analysis/target_tightening.h): it then
  // differs from the steps' sum by at most those steps' widths, each within bound_tol.
  const double slack = model_->config().d_vocab > 8192 ? 3 * ExplainOptions{}.bound_tol : 1e-12;
  const int64_t N = s.ffn_neuron.shape[1];
  for (int64_t i = 0; i < s.ffn_neuron.size(); i += 7) {
    double sum = 0;
    for (const TargetStep& st : steps) sum += st.explanation.ffn_neuron.values[static_cast<size_t>(i)];
    ASSERT_NEAR(s.ffn_neuron.values[static_cast<size_t>(i)], sum, slack) << i / N << " " << i % N;
  }
  const auto& shape = s.attn_neuron.shape;  // [L, H, d_head, n]
  ASSERT_EQ(shape.back(), s.n_positions);
  for (int64_t row = 0; row < s.attn_neuron.size() / shape.back(); ++row) {
    for (int64_t p = 0; p < shape.back(); ++p) {
      double sum = 0;
      for (const TargetStep& st : steps) {
        const int64_t n = st.explanation.n_positions;
        if (p < n) sum += st.explanation.attn_neuron.values[static_cast<size_t>(row * n + p)];
      }
      ASSERT_NEAR(s.attn_neuron.values[static_cast<size_t>(row * shape.back() + p)], sum, slack);
    }
  }
}

TEST_P(ExplainTargetTest, FoilsThatPartLateOrRunLongerGetTheirOwnSteps) {
  ExplainRequest req;
  req.tokens = prompt();
  req.target_tokens = {45, 99};
  req.foil_tokens = {45, 99, 12};  // the target is a prefix of the foil: no contrast step
  ExplainedTarget done = explain_target(*model_, req);
  EXPECT_EQ(done.contrast_step, -1);
  EXPECT_EQ(done.first_foil_step, 2);
  ASSERT_EQ(done.foil_pass.steps.size(), 1u);
  const Explanation& own = done.foil_pass.steps[0].explanation;
  // log p(target) - log p(foil) = -log p(12 | ..., 45, 99): the foil's own step, subtracted.
  EXPECT_NEAR(done.summed.log_prob - done.summed.foil_log_prob, -own.real_log_prob, 1e-12);
  for (size_t i = 0; i < own.ffn_neuron.values.size(); i += 11) {
    EXPECT_EQ(done.summed.contrast_ffn_neuron.values[i], -own.ffn_neuron.values[i]);
  }
  req.foil_tokens = req.target_tokens;
  EXPECT_THROW(explain_target(*model_, req), InvalidArgument);  // the foil is the target
}

TEST_P(ExplainTargetTest, BadRequestsFailBeforeTheRunWithOneLine) {
  const Model& m = *model_;
  auto error_of = [&](const ExplainRequest& req) -> std::string {
    try {
      explain_target(m, req);
    } catch (const std::exception& e) {  // InvalidArgument and OutOfRange are std::invalid_argument, std::out_of_range
      return e.what();
    }
    return "no error";
  };
  ExplainRequest req;
  req.tokens = prompt();
  req.target = TokenName{-1, ""};
  EXPECT_NE(error_of(req).find("the target is empty"), std::string::npos) << error_of(req);
  req.target.reset();
  req.target_tokens = {45, static_cast<int32_t>(m.config().d_vocab)};
  EXPECT_THROW(explain_target(m, req), OutOfRange);
  // Longer than the context allows: the prompt and every target token but the last must fit.
  req.target_tokens.assign(static_cast<size_t>(m.config().n_ctx), 45);
  std::string msg = error_of(req);
  EXPECT_NE(msg.find("more than the model's context window of " + std::to_string(m.config().n_ctx)), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  // Several tokens continue the prompt: only after its last position.
  req.target_tokens = target();
  req.position = 1;
  msg = error_of(req);
  EXPECT_NE(msg.find("explained after the last position"), std::string::npos) << msg;
  req.position = -1;
  req.target = TokenName{45, ""};
  EXPECT_NE(error_of(req).find("both as a name and as token ids"), std::string::npos);
  // A foil text that is not valid UTF-8.
  req.target.reset();
  req.foil = TokenName{-1, "\xff\xfe"};
  EXPECT_THROW(explain_target(m, req), InvalidArgument);
}

std::string model_name(const ::testing::TestParamInfo<const char*>& param) {
  return std::string(param.param).find("gpt2") != std::string::npos ? "Gpt2" : "Llama";
}
INSTANTIATE_TEST_SUITE_P(Models, ExplainTargetTest, ::testing::ValuesIn(kModels), model_name);

TEST(ExplainTargetContinuation, AGivenAnswerIsItsTokensAfterThePromptAndMustRoundTrip) {
  const auto model = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
  const Tokenizer& tok = model->tokenizer();
  auto answer = [&](const std::string& prompt, const std::string& text) {
    return continuation_tokens(*model, tok.encode(prompt, true), tok.encode(prompt + text, true), text);
  };
  EXPECT_EQ(answer("Once upon a time", " there was a"), (std::vector<int32_t>{383, 286, 261}));
  auto error_of = [&](const std::string& prompt, const std::string& text) -> std::string {
    try {
      answer(prompt, text);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "no error";
  };
  // "ti" + "me" merge into ' time': the prompt's tokens would change.
  std::string msg = error_of("Once upon a ti", "me there");
  EXPECT_NE(msg.find("does not start at a token boundary"), std::string::npos) << msg;
  EXPECT_NE(msg.find("' t'"), std::string::npos) << msg;
  EXPECT_NE(error_of("Once upon a time", "").find("the continuation is empty"), std::string::npos);
  // Tokens that decode to another text than the one given are refused.
  const std::vector<int32_t> prompt = tok.encode("Once upon a time", true);
  std::vector<int32_t> joint = prompt;
  joint.push_back(383);
  msg = "no error";
  try {
    continuation_tokens(*model, prompt, joint, " there was");
  } catch (const InvalidArgument& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("does not survive tokenization: its 1 token decodes to ' there'"), std::string::npos) << msg;
}

// The error budget of the sums (analysis/target_tightening.h): on the random GPT-2 (bounded method,
// loose tail bounds) a target of 8 tokens has summed scores whose steps' certified widths add up to
// more than bound_tol; those are tightened, and every summed score of the four bounded levels
// (and the contrast's) is then within bound_tol of the full method's, which projects every vector
// onto the whole vocabulary. The sums do not depend on the thread count.
TEST(ExplainTargetBudget, TightenedSumsAreWithinTheToleranceOfTheFullMethod) {
  const auto model = Model::load(test::shared_path("models/random-gpt2/random-gpt2-test.gguf"));
  ExplainRequest req;
  req.tokens = {464, 3139, 286, 4881, 318};
  req.target_tokens = {6342, 13, 632, 318, 262, 1748, 1110, 13};
  req.foil_tokens = {6342, 11, 262};  // parts at step 1; its step 2 is its own
  req.options.n_threads = 2;
  const auto splits_before = analysis::detail::sketch_splits();
  const ExplainedTarget bounded = explain_target(*model, req);
  const auto splits_after = analysis::detail::sketch_splits();
  const auto& counts = bounded.summed.method_counts;
  ASSERT_TRUE(counts.count("ffn_tightened") != 0 && counts.count("attention_tightened") != 0);
  EXPECT_GT(counts.at("ffn_tightened"), 0);
  EXPECT_GT(counts.at("attention_tightened"), 0);
  EXPECT_GT(counts.at("ffn_sums_tightened"), 0);
  // Round 0 (the sketch) certifies some of them where the int8 kernels run, and the rows the rest.
  if (analysis::projection_sketch_available()) {
    EXPECT_GT(counts.at("ffn_tightened_sketched"), 0);
    EXPECT_GT(counts.at("ffn_tightened"), counts.at("ffn_tightened_sketched"));
    // And head x position scores, from their heads' basis vectors.
    EXPECT_GT(counts.at("head_position_tightened_sketched"), 0);
    // Every context split the sketch read was the step's own, rebuilt (its distribution the same bits).
    EXPECT_GT(splits_after.first, splits_before.first);
    EXPECT_EQ(splits_after.second, splits_before.second);
  }
  req.options.method = ScoreMethod::kFull;
  const ExplainedTarget full = explain_target(*model, req);
  EXPECT_TRUE(full.summed.method_counts.empty() || full.summed.method_counts.at("ffn_tightened") == 0);
  const double tol = ExplainOptions{}.bound_tol + 1e-7;  // + the float projections' rounding
  auto within = [&](const ScoreArray& a, const ScoreArray& b, const char* what) {
    ASSERT_EQ(a.shape, b.shape) << what;
    double worst = 0;
    for (size_t i = 0; i < a.values.size(); ++i) worst = std::max(worst, std::abs(a.values[i] - b.values[i]));
    EXPECT_LE(worst, tol) << what;
  };
  within(bounded.summed.ffn_neuron, full.summed.ffn_neuron, "FFN neurons");
  within(bounded.summed.attn_neuron, full.summed.attn_neuron, "attention neurons");
  within(bounded.summed.head, full.summed.head, "heads");
  within(bounded.summed.head_position, full.summed.head_position, "head x position");
  within(bounded.summed.contrast_ffn_neuron, full.summed.contrast_ffn_neuron, "contrast FFN neurons");
  within(bounded.summed.contrast_attn_neuron, full.summed.contrast_attn_neuron, "contrast attention neurons");
  within(bounded.summed.contrast_head, full.summed.contrast_head, "contrast heads");
  // Without the tightening the same sums would be the steps' sums: some of them move.
  double moved = 0;
  for (int64_t i = 0; i < bounded.summed.ffn_neuron.size(); ++i) {
    double sum = 0;
    for (const TargetStep& st : bounded.target_pass.steps) sum += st.explanation.ffn_neuron.values[static_cast<size_t>(i)];
    moved = std::max(moved, std::abs(sum - bounded.summed.ffn_neuron.values[static_cast<size_t>(i)]));
  }
  EXPECT_GT(moved, 0.0);
  // One thread: the same numbers, bit for bit.
  req.options.method = ScoreMethod::kAuto;
  req.options.n_threads = 1;
  const ExplainedTarget one = explain_target(*model, req);
  EXPECT_EQ(one.summed.ffn_neuron.values, bounded.summed.ffn_neuron.values);
  EXPECT_EQ(one.summed.attn_neuron.values, bounded.summed.attn_neuron.values);
  EXPECT_EQ(one.summed.head.values, bounded.summed.head.values);
  EXPECT_EQ(one.summed.head_position.values, bounded.summed.head_position.values);
  EXPECT_EQ(one.summed.contrast_attn_neuron.values, bounded.summed.contrast_attn_neuron.values);
  EXPECT_EQ(one.summed.method_counts, bounded.summed.method_counts);
}

// Round 1's certificate from a row's moments holds the exact log-expectation, with its third-moment
// sides (one order further) and without: on symmetric and one-sided rows, peaked and flat
// distributions, both signs of s and b = |s| max|g| from 1e-3 to 4. The fourth-order interval is
// never wider, and far narrower where b is small (where round 2 used to compute exactly).
TEST(ExplainTargetBudget, MomentCertificatesHoldTheExactValue) {
  std::mt19937 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::exponential_distribution<double> expo(1.0);
  const int64_t V = 5000;
  for (const double spread : {0.5, 4.0}) {
    std::vector<double> q(static_cast<size_t>(V));
    double z = 0;
    for (double& x : q) z += (x = std::exp(spread * normal(rng)));
    for (double& x : q) x /= z;
    for (const bool one_sided : {false, true}) {
      std::vector<float> g(static_cast<size_t>(V));
      for (float& x : g) x = static_cast<float>(one_sided ? expo(rng) : normal(rng));
      double gmax = 0;
      for (const float x : g) gmax = std::max(gmax, std::abs(static_cast<double>(x)));
      for (const double b : {1e-3, 1e-2, 0.05, 0.3, 1.0, 4.0}) {
        for (const double sign : {1.0, -1.0}) {
          const double s = sign * b / gmax;
          long double sum = 0;
          for (int64_t j = 0; j < V; ++j) sum += static_cast<long double>(q[static_cast<size_t>(j)]) * std::exp(static_cast<long double>(s) * static_cast<long double>(g[static_cast<size_t>(j)]));
          const double exact = static_cast<double>(std::log(sum));
          double hw2 = 0, hw3 = 0;
          const double f2 = analysis::detail::moment_certificate(q, g, s, false, hw2);
          const double f3 = analysis::detail::moment_certificate(q, g, s, true, hw3);
          const std::string at = "spread " + std::to_string(spread) + (one_sided ? " one-sided" : "") + " b " + std::to_string(b) +
                                 " s " + std::to_string(s);
          ASSERT_FALSE(std::isnan(f2)) << at;
          ASSERT_FALSE(std::isnan(f3)) << at;
          EXPECT_LE(std::abs(f2 - exact), hw2 * (1 + 1e-9) + 1e-15) << at;
          EXPECT_LE(std::abs(f3 - exact), hw3 * (1 + 1e-9) + 1e-15) << at;
          EXPECT_LE(hw3, hw2 * (1 + 1e-12)) << at;
          // (Both have a floor of ~1e-9 from the double sums' rounding allowance.)
          if (b <= 0.3 && hw2 > 1e-8) {
            EXPECT_LT(hw3, 0.2 * hw2) << at;
          }
        }
      }
    }
  }
}

// A head's combinations are rows of its source positions' coefficient vectors (a step's column p is
// its attention weight times the value at p, the same value at every step of a pass): the same sums
// as from the head's d_head direction rows, within the rows' float rounding, with the foil's own
// columns past its parting. (Without the sketch: its round 0 certifies head x position scores only
// where the head has such a basis, tested below.)
TEST(ExplainTargetBudget, HeadsFromTheirPositionsAgreeWithTheirDirectionRows) {
  const auto model = Model::load(test::shared_path("models/random-gpt2/random-gpt2-test.gguf"));
  ExplainRequest req;
  req.tokens = {464, 3139, 286, 4881, 318};
  req.target_tokens = {6342, 13, 632, 318, 262, 1748, 1110, 13};
  req.foil_tokens = {6342, 11, 262};
  req.options.n_threads = 2;
  req.options.projection_sketch = false;
  const int64_t before = analysis::detail::heads_by_position();
  const ExplainedTarget by_position = explain_target(*model, req);
  const int64_t used = analysis::detail::heads_by_position() - before;
  analysis::detail::set_heads_by_direction(true);
  const ExplainedTarget by_direction = explain_target(*model, req);
  analysis::detail::set_heads_by_direction(false);
  EXPECT_EQ(analysis::detail::heads_by_position() - before, used);
  const auto& counts = by_position.summed.method_counts;
  ASSERT_TRUE(counts.count("head_position_tightened") != 0 && counts.count("head_tightened") != 0);
  ASSERT_GT(counts.at("head_position_tightened") + counts.at("head_tightened"), 0);
  EXPECT_GT(used, 0) << "no head took its positions' rows";
  auto close = [](const ScoreArray& a, const ScoreArray& b, const char* what) {
    ASSERT_EQ(a.shape, b.shape) << what;
    double worst = 0;
    for (size_t i = 0; i < a.values.size(); ++i) worst = std::max(worst, std::abs(a.values[i] - b.values[i]));
    EXPECT_LE(worst, 1e-7) << what;  // the two ways' float rounding (bound_tol: 8e-6)
  };
  close(by_position.summed.head, by_direction.summed.head, "heads");
  close(by_position.summed.head_position, by_direction.summed.head_position, "head x position");
  close(by_position.summed.contrast_head, by_direction.summed.contrast_head, "contrast heads");
  // Heads are certified from the same moments either way: the same selections.
  EXPECT_EQ(by_position.summed.method_counts, by_direction.summed.method_counts);
}

TEST(ExplainTargetText, ATextOfSeveralTokensIsEveryTokenAndSaysSo) {
  const auto model = Model::load(test::shared_path("models/random-gpt2/random-gpt2-test.gguf"));
  ExplainRequest req;
  req.prompt = "The capital of India is";
  req.target = TokenName{-1, " New Delhi"};
  const ExplainedTarget done = explain_target(*model, req);
  const std::vector<int32_t> ids = model->tokenizer().encode(" New Delhi", false);
  EXPECT_EQ(done.target, ids);
  ASSERT_EQ(done.notes.size(), 1u);
  EXPECT_NE(done.notes[0].find("each is explained after the ones before it"), std::string::npos) << done.notes[0];
  // explain() still reads its first token, and says so.
  const ExplainedPrompt first = explain(*model, req);
  EXPECT_EQ(first.explanation.target, ids[0]);
  ASSERT_EQ(first.notes.size(), 1u);
  EXPECT_NE(first.notes[0].find("is not one token"), std::string::npos) << first.notes[0];
}

}  // namespace
}  // namespace reslens
