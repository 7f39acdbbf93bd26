// Gemma 2 on the generated tiny-gemma2 models (make_random_models.py: softcaps 5 and 3, a window of 8
// on the even layers): the bounded method falls back to the full one under the final-logit softcap
// (bit for bit), the decomposition identities hold through the window and the caps, and a Hugging
// Face config with a softcap of 0 or below is refused naming the file and the field. The scores
// themselves are checked against the float64 reference by explain_vs_reference_tiny_gemma2_*.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/test_paths.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

const std::filesystem::path kTiny = RESLENS_GENERATED_DIR "/tiny";

std::vector<int32_t> long_ids() {  // 24 tokens: three times the window
  return {1, 7, 300, 45, 2, 99, 12, 88, 41, 250, 17, 3, 402, 66, 190, 5, 311, 27, 480, 9, 133, 71, 256, 14};
}

void expect_same(const ScoreArray& a, const ScoreArray& b, const char* what) {
  ASSERT_EQ(a.shape, b.shape) << what;
  for (size_t i = 0; i < a.values.size(); ++i) ASSERT_EQ(a.values[i], b.values[i]) << what << " [" << i << "]";
}

TEST(Gemma2, BoundedMethodFallsBackToTheFullOneUnderTheFinalSoftcap) {
  const auto model = Model::load(kTiny / "tiny-gemma2.gguf");
  ASSERT_GT(model->config().final_softcap, 0.0f);
  const auto ids = long_ids();
  RunOptions o;
  o.capture = explain_capture();
  o.all_logits = true;
  const RunResult r = run(*model, ids, o);
  ExplainOptions full, bounded;
  full.method = ScoreMethod::kFull;
  bounded.method = ScoreMethod::kBounded;
  full.foil = bounded.foil = 45;
  const Explanation a = explain(*model, r, ids, full);
  const Explanation b = explain(*model, r, ids, bounded);
  expect_same(a.ffn_neuron, b.ffn_neuron, "ffn_neuron");
  expect_same(a.attn_neuron, b.attn_neuron, "attn_neuron");
  expect_same(a.head, b.head, "head");
  expect_same(a.head_position, b.head_position, "head_position");
  expect_same(a.contrast_ffn_neuron, b.contrast_ffn_neuron, "contrast_ffn_neuron");
  expect_same(a.contrast_head, b.contrast_head, "contrast_head");
  EXPECT_TRUE(b.method_counts.empty()) << "the bounded scorer ran";
}

TEST(Gemma2, IdentitiesHoldThroughTheWindowAndTheCaps) {
  for (const char* name : {"tiny-gemma2.gguf", "tiny-gemma2-hf"}) {
    const auto model = Model::load(kTiny / name);
    const auto ids = long_ids();
    RunOptions o;
    o.capture = explain_capture();
    o.all_logits = true;
    const RunResult r = run(*model, ids, o);
    for (const int pos : {5, 23}) {  // inside and past the window
      ExplainOptions eo;
      eo.position = pos;
      const Explanation ex = explain(*model, r, ids, eo);
      ASSERT_FALSE(ex.checks.empty());
      for (const auto& [check, value] : ex.checks) EXPECT_LT(value, 1e-4) << name << " position " << pos << ": " << check;
      // The layer scores sum to the capped lens's change (telescoping), and the lens's final point is
      // the model's own (capped) log-probability.
      EXPECT_NEAR(ex.bs_log_prob_final, ex.real_log_prob, 1e-5) << name;
    }
  }
}

// A copy of tiny-gemma2-hf whose config.json has `field` set to `value` (replaced, or added).
std::filesystem::path with_field(const std::string& field, const std::string& value, const std::string& dir_name) {
  const std::filesystem::path src = kTiny / "tiny-gemma2-hf";
  const std::filesystem::path dir = test::scratch_dir(dir_name);
  for (const auto& e : std::filesystem::directory_iterator(src)) {
    std::filesystem::copy(e.path(), dir / e.path().filename(), std::filesystem::copy_options::overwrite_existing);
  }
  std::string c = test::read_file(src / "config.json");
  const std::string key = "\"" + field + "\": ";
  const size_t at = c.find(key);
  if (at == std::string::npos) {
    c.insert(c.rfind('}'), ", " + key + value);
  } else {
    const size_t end = c.find_first_of(",}\n", at + key.size());
    c.replace(at + key.size(), end - at - key.size(), value);
  }
  std::ofstream(dir / "config.json") << c;
  return dir;
}

TEST(Gemma2, HfSoftcapsMustBePositiveOrNull) {
  const std::pair<const char*, const char*> bad[] = {{"final_logit_softcapping", "0.0"},
                                                     {"attn_logit_softcapping", "-5.0"}};
  for (const auto& [field, value] : bad) {
    try {
      Model::load(with_field(field, value, std::string("g2-") + field));
      ADD_FAILURE() << field << " = " << value << " loaded";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("config.json: " + std::string(field) + " = " + value + " is not a positive number"),
                std::string::npos) << msg;
    }
  }
  // null: transformers skips the cap, and so does reslens.
  const auto m = Model::load(with_field("final_logit_softcapping", "null", "g2-null"));
  EXPECT_EQ(m->config().final_softcap, 0.0f);
  EXPECT_EQ(m->config().attn_softcap, 5.0f);
  EXPECT_FLOAT_EQ(m->config().attn_scale, 1.0f / std::sqrt(24.0f));  // query_pre_attn_scalar 24
}

// The window's layers: the even ones by default (transformers' is_sliding), or as layer_types says.
TEST(Gemma2, HfLayerTypesPickTheWindowedLayers) {
  const auto plain = Model::load(kTiny / "tiny-gemma2-hf");
  EXPECT_EQ(plain->config().window_of(0), 8);
  EXPECT_EQ(plain->config().window_of(1), 0);
  const auto swapped = Model::load(with_field("layer_types", R"(["full_attention", "sliding_attention"])", "g2-lt"));
  EXPECT_EQ(swapped->config().window_of(0), 0);
  EXPECT_EQ(swapped->config().window_of(1), 8);
  try {
    Model::load(with_field("layer_types", R"(["full_attention"])", "g2-lt1"));
    ADD_FAILURE() << "a layer_types list of the wrong length loaded";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("layer_types is not a list of num_hidden_layers entries"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace reslens
