// The front doors' one request (reslens/explain_request.h): the same numbers as the steps done by
// hand, names resolved by the library's rule with notes, and the random baseline's draws.
#include "reslens/explain_request.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "common/test_paths.h"
#include "reslens/error.h"
#include "reslens/explain_target.h"

namespace reslens {
namespace {

class ExplainRequestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gpt2_ = Model::load(test::shared_path("models/random-gpt2/random-gpt2-test.gguf")); }
  static void TearDownTestSuite() { gpt2_.reset(); }
  static std::shared_ptr<const Model> gpt2_;
};
std::shared_ptr<const Model> ExplainRequestTest::gpt2_;

TEST(TokenNameTest, DigitsAreAnIdAnythingElseText) {
  EXPECT_EQ(TokenName::parse("262").id, 262);
  EXPECT_EQ(TokenName::parse("262").text, "");
  EXPECT_EQ(TokenName::parse(" 262").id, -1);
  EXPECT_EQ(TokenName::parse("1234567890").id, -1);  // 10 digits: a text, never an overflow
  EXPECT_EQ(TokenName::parse("Paris").text, "Paris");
}

TEST(ResolvePositionTest, NegativeCountsFromTheEndAndOutOfRangeSaysTheLength) {
  EXPECT_EQ(resolve_position(-1, 5), 4);
  EXPECT_EQ(resolve_position(0, 5), 0);
  EXPECT_EQ(resolve_position(-5, 5), 0);
  try {
    resolve_position(5, 5);
    FAIL() << "no error";
  } catch (const OutOfRange& e) {
    EXPECT_NE(std::string(e.what()).find("the prompt has 5 tokens (0..4, or -1 for the last)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_position(-6, 5), OutOfRange);
  EXPECT_THROW(resolve_position(-1, 0), OutOfRange);
}

TEST_F(ExplainRequestTest, TheRequestGivesTheNumbersOfTheStepsByHand) {
  const Model& m = *gpt2_;
  ExplainRequest req;
  req.prompt = "The capital of France is";
  req.position = -2;
  req.target = TokenName{-1, "Paris"};  // 'Paris' and ' Paris' both exist: the likelier at P wins
  req.foil = TokenName{262, ""};
  const ExplainedPrompt done = explain(m, req);

  const std::vector<int32_t> ids = m.tokenizer().encode(req.prompt, m.tokenizer().add_bos_default());
  ASSERT_EQ(done.tokens, ids);
  const int P = static_cast<int>(ids.size()) - 2;
  RunOptions ro;
  ro.capture = explain_capture();
  ro.all_logits = true;
  const RunResult run = reslens::run(m, ids, ro);
  const float* row = run.logits.row(P);
  const int32_t a = m.tokenizer().find_piece("Paris"), b = m.tokenizer().find_piece("ĠParis");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ExplainOptions eo;
  eo.position = P;
  eo.target = row[b] > row[a] ? b : a;
  eo.foil = 262;
  const Explanation ex = explain(m, run, ids, eo);

  EXPECT_EQ(done.options.position, P);
  EXPECT_EQ(done.options.target, eo.target);
  EXPECT_EQ(done.options.foil, 262);
  EXPECT_EQ(done.explanation.ffn_neuron.values, ex.ffn_neuron.values);
  EXPECT_EQ(done.explanation.head.values, ex.head.values);
  EXPECT_EQ(done.explanation.contrast_ffn_neuron.values, ex.contrast_ffn_neuron.values);
  ASSERT_EQ(done.notes.size(), 1u);
  EXPECT_NE(done.notes[0].find("the target matches tokens"), std::string::npos) << done.notes[0];
  EXPECT_NE(done.notes[0].find("the more likely here"), std::string::npos) << done.notes[0];
}

TEST_F(ExplainRequestTest, BadNamesFailBeforeTheRun) {
  const Model& m = *gpt2_;
  ExplainRequest req;
  req.prompt = "Hello";
  req.target = TokenName{static_cast<int32_t>(m.config().d_vocab), ""};
  EXPECT_THROW(explain(m, req), OutOfRange);
  req.target = TokenName{-1, ""};
  EXPECT_THROW(explain(m, req), InvalidArgument);
  req.target.reset();
  req.position = 7;
  EXPECT_THROW(explain(m, req), OutOfRange);
}

// splitmix64 written out here, independently of core/rng.h: the draws `reslens ablate --seed` makes.
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

TEST_F(ExplainRequestTest, TheRandomBaselineDrawsSplitMix64WithoutRepeats) {
  const ModelConfig& c = gpt2_->config();
  Intervention like;
  for (int i = 0; i < 5; ++i) like.ffn_neurons.push_back({0, i});
  like.heads.push_back({0, 0});
  const Intervention iv = random_intervention(c, like, 42);
  ASSERT_EQ(iv.ffn_neurons.size(), 5u);
  ASSERT_EQ(iv.heads.size(), 1u);
  uint64_t s = 42;
  const auto below = [&](uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = splitmix(s);
    while (x >= limit) x = splitmix(s);
    return static_cast<int64_t>(x % n);
  };
  std::set<std::pair<int, int>> seen;
  size_t k = 0;
  while (k < 5) {
    const int64_t i = below(static_cast<uint64_t>(c.n_layers * c.d_mlp));
    const std::pair<int, int> key{static_cast<int>(i / c.d_mlp), static_cast<int>(i % c.d_mlp)};
    if (!seen.insert(key).second) continue;
    EXPECT_EQ(iv.ffn_neurons[k].layer, key.first);
    EXPECT_EQ(iv.ffn_neurons[k].neuron, key.second);
    ++k;
  }
  const int64_t h = below(static_cast<uint64_t>(c.n_layers * c.n_heads));
  EXPECT_EQ(iv.heads[0].layer, h / c.n_heads);
  EXPECT_EQ(iv.heads[0].head, h % c.n_heads);
}

TEST_F(ExplainRequestTest, AblateRequestMeasuresTheNamedTargetAndItsRandomBaseline) {
  const Model& m = *gpt2_;
  AblationRequest req;
  req.prompt = "The capital of France is";
  req.target = TokenName{262, ""};
  req.zeroed.ffn_neurons = {{0, 1}, {1, 2}};
  req.activation = true;
  req.random_seed = 7;
  const AblationReport r = ablate(m, req);
  const int P = static_cast<int>(r.tokens.size()) - 1;
  EXPECT_EQ(r.position, P);
  EXPECT_EQ(r.target, 262);
  Intervention iv = req.zeroed;
  iv.position = P;
  const AblationResult direct = ablate(m, r.tokens, 262, iv, P);
  EXPECT_EQ(r.result.before.log_prob, direct.before.log_prob);
  EXPECT_EQ(r.result.after.log_prob, direct.after.log_prob);
  ASSERT_TRUE(r.random.has_value());
  const Intervention riv = random_intervention(m.config(), iv, 7);
  EXPECT_EQ(r.random->zeroed.ffn_neurons.size(), 2u);
  EXPECT_EQ(r.random->zeroed.position, P);
  EXPECT_EQ(r.random->result.after.log_prob, ablate(m, r.tokens, 262, riv, P).after.log_prob);
  req.zeroed = {};
  EXPECT_THROW(ablate(m, req), InvalidArgument);
}

}  // namespace
}  // namespace reslens

namespace reslens {
namespace {

// The formula of docs/benchmarks.md, term by term, on Llama-2-7B's shapes at 4096 tokens.
TEST(PromptMemoryTest, TheEstimateIsTheDocumentedFormula) {
  ModelConfig c;
  c.n_layers = 32;
  c.d_model = 4096;
  c.n_heads = 32;
  c.n_key_value_heads = 32;
  c.d_head = 128;
  c.d_mlp = 11008;
  const int64_t T = 4096;
  const PromptMemory m = explain_prompt_memory(c, T, 1, 2);
  EXPECT_EQ(m.captures, int64_t{4} * 32 * T * (5 * 4096 + 11008 + 4096 + 32));            // 18.6 GB
  EXPECT_EQ(m.forward, int64_t{4} * T * (4 * 4096 + 2 * 4096 + 2 * 4096 + 3 * 11008) + int64_t{4} * 2 * T * T);
  EXPECT_EQ(m.explain_arrays, int64_t{8} * 32 * T * (2 * 32 + 2 * 4096));                  // 8.7 GB
  EXPECT_EQ(m.total(), m.captures + m.forward + m.explain_arrays);
  // Two explained positions (a two-token target): two pattern rows and two sets of arrays.
  const PromptMemory two = explain_prompt_memory(c, T, 2, 2);
  EXPECT_EQ(two.captures - m.captures, int64_t{4} * 32 * T * 32);
  EXPECT_EQ(two.explain_arrays, 2 * m.explain_arrays);
}

TEST_F(ExplainRequestTest, APromptThatCannotFitIsRefusedBeforeItRuns) {
  ExplainRequest req;
  req.prompt = "The capital of France is";
  ASSERT_EQ(::setenv("RESLENS_MEMORY_AVAILABLE", "1000", 1), 0);
  try {
    explain(*gpt2_, req);
    ADD_FAILURE() << "explained in 1000 bytes";
  } catch (const UnsupportedError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tokens of this model needs about"), std::string::npos) << msg;
    EXPECT_NE(msg.find("memory available"), std::string::npos) << msg;
  }
  req.target = TokenName{-1, " New Delhi"};  // a target of several tokens: explain_target's pass
  EXPECT_THROW(explain_target(*gpt2_, req), UnsupportedError);
  ASSERT_EQ(::setenv("RESLENS_MEMORY_AVAILABLE", "100000000000", 1), 0);
  EXPECT_NO_THROW(explain(*gpt2_, req));
  ::unsetenv("RESLENS_MEMORY_AVAILABLE");
}

}  // namespace
}  // namespace reslens
