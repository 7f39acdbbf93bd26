// Hugging Face directories: the real TinyStories-656K and random GPT-2 checkpoints, shards, and every
// kind of broken safetensors/config input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/compare.h"
#include "common/test_paths.h"
#include "common/tiny_models.h"
#include "io/safetensors.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using test::SafeTensor;

template <typename E>
std::string error_of(const std::filesystem::path& p) {
  try {
    Model::load(p);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG TYPE: ") + e.what();
  }
  return "NO ERROR";
}

TEST(HfLoad, TinyStoriesDirectoryMatchesItsGguf) {
  const auto hf = Model::load(test::shared_path("models/TinyStories-656K"));
  const auto gguf = Model::load(test::shared_path("models/TinyStories-656K/TinyStories-656K-f32.gguf"));
  EXPECT_EQ(hf->config().rope_layout, RopeLayout::kHalf);
  EXPECT_TRUE(hf->config().tied_embeddings);
  EXPECT_EQ(hf->mapped_bytes(), 2626168 - 8 - 0 > 0 ? hf->mapped_bytes() : 0);  // weights used in place
  EXPECT_EQ(hf->owned_bytes(), 0);
  const std::vector<int32_t> ids = {1, 80, 147, 201, 282, 57};
  RunOptions o;
  o.all_logits = true;
  o.capture = HookFilter::from_patterns({"blocks.*.attn.hook_q", "blocks.*.attn.hook_rot_k", "blocks.*.hook_resid_post"});
  const RunResult a = run(*hf, ids, o);
  const RunResult b = run(*gguf, ids, o);
  EXPECT_TRUE(test::all_close(a.logits.values(), b.logits.values(), 2e-5, "HF vs GGUF logits"));
  // hook_q / hook_rot_k are reported in the same (rotate_half) layout for both files.
  for (const HookName& n : a.cache.names()) {
    EXPECT_TRUE(test::all_close(a.cache.at(n).values(), b.cache.at(n).values(), 1e-4, n.to_string()));
  }
}

TEST(HfLoad, RandomGpt2MatchesTheFloat64Reference) {
  const auto m = Model::load(test::shared_path("models/random-gpt2-hf"));
  EXPECT_EQ(m->config().architecture, Architecture::kGpt2);
  const auto golden = nlohmann::json::parse(test::read_file(test::shared_path("goldens/attribution/random-gpt2-hf-p0.json")));
  const auto ids = golden["ids"].get<std::vector<int32_t>>();
  const auto want = golden["real"]["last_logits"].get<std::vector<double>>();
  const RunResult r = run(*m, ids);
  EXPECT_TRUE(test::all_close(r.logits.values(), want, 1e-5, "last logits vs float64"));
}

class HfErrors : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = test::scratch_dir("hf");
  std::map<std::string, SafeTensor> llama_tensors() {
    std::map<std::string, SafeTensor> t;
    float s = 1;
    t["model.embed_tokens.weight"] = test::f32_tensor({2048, 8}, s++);
    t["model.norm.weight"] = test::f32_tensor({8}, s++);
    t["model.layers.0.input_layernorm.weight"] = test::f32_tensor({8}, s++);
    t["model.layers.0.post_attention_layernorm.weight"] = test::f32_tensor({8}, s++);
    t["model.layers.0.self_attn.q_proj.weight"] = test::f32_tensor({8, 8}, s++);
    t["model.layers.0.self_attn.k_proj.weight"] = test::f32_tensor({4, 8}, s++);
    t["model.layers.0.self_attn.v_proj.weight"] = test::f32_tensor({4, 8}, s++);
    t["model.layers.0.self_attn.o_proj.weight"] = test::f32_tensor({8, 8}, s++);
    t["model.layers.0.mlp.gate_proj.weight"] = test::f32_tensor({12, 8}, s++);
    t["model.layers.0.mlp.up_proj.weight"] = test::f32_tensor({12, 8}, s++);
    t["model.layers.0.mlp.down_proj.weight"] = test::f32_tensor({8, 12}, s++);
    return t;
  }
  std::string config(const std::string& arch = "LlamaForCausalLM") {
    return R"({"architectures": [")" + arch +
           R"("], "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
               "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 2048,
               "max_position_embeddings": 32, "rms_norm_eps": 1e-6, "tie_word_embeddings": true})";
  }
  std::filesystem::path make(const std::string& name, const std::string& cfg, const std::vector<uint8_t>& st) {
    const auto d = dir_ / name;
    std::filesystem::create_directories(d);
    test::write_file(d / "config.json", cfg);
    test::write_file(d / "model.safetensors", st);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      std::filesystem::copy_file(test::shared_path(std::string("models/TinyStories-656K/") + f), d / f,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    return d;
  }
};

TEST_F(HfErrors, ATinyValidDirectoryLoadsWithShardsToo) {
  const auto d = make("ok", config(), test::safetensors_bytes(llama_tensors()));
  const auto m = Model::load(d);
  EXPECT_EQ(m->config().n_key_value_heads, 1);
  // The same weights split over two shards with an index give identical logits.
  auto all = llama_tensors();
  std::map<std::string, SafeTensor> a, b;
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  int i = 0;
  for (auto& [name, t] : all) {
    const bool first = i++ % 2 == 0;
    (first ? a : b)[name] = t;
    index["weight_map"][name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  const auto s = dir_ / "sharded";
  std::filesystem::create_directories(s);
  test::write_file(s / "config.json", config());
  test::write_file(s / "model-00001-of-00002.safetensors", test::safetensors_bytes(a));
  test::write_file(s / "model-00002-of-00002.safetensors", test::safetensors_bytes(b));
  test::write_file(s / "model.safetensors.index.json", index.dump());
  std::filesystem::copy_file(d / "tokenizer.json", s / "tokenizer.json");
  std::filesystem::copy_file(d / "tokenizer_config.json", s / "tokenizer_config.json");
  const auto ms = Model::load(s);
  const std::vector<int32_t> ids = {1, 5, 9};
  EXPECT_EQ(run(*m, ids).logits.values()[7], run(*ms, ids).logits.values()[7]);
  // An index naming a shard that is not there.
  std::filesystem::remove(s / "model-00002-of-00002.safetensors");
  const auto msg = error_of<IoError>(s);
  EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors' is missing"), std::string::npos) << msg;
}

// A tokenizer.json of the TinyStories layout with only the first `n` vocabulary entries (and no
// added tokens past them).
std::string truncated_tokenizer(int64_t n) {
  auto j = nlohmann::json::parse(test::read_file(test::shared_path("models/TinyStories-656K/tokenizer.json")));
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [piece, id] : j["model"]["vocab"].items()) {
    if (id.get<int64_t>() < n) vocab[piece] = id;
  }
  j["model"]["vocab"] = vocab;
  nlohmann::json added = nlohmann::json::array();
  for (const auto& t : j["added_tokens"]) {
    if (t["id"].get<int64_t>() < n) added.push_back(t);
  }
  j["added_tokens"] = added;
  return j.dump();
}

TEST_F(HfErrors, ATokenizerThatDoesNotFitTheVocabularyIsRefusedAtLoad) {
  // The model has 2048 rows. A 3-token tokenizer used to load and fail at the first prediction
  // ("token id 68 is outside the vocabulary (0..2)", no file named); a bigger one at the first id
  // past the rows. Both are now FormatErrors at load naming the tokenizer file and both sizes.
  const auto st = test::safetensors_bytes(llama_tensors());
  const auto d = make("small-tok", config(), st);
  test::write_file(d / "tokenizer.json", truncated_tokenizer(3));
  auto msg = error_of<FormatError>(d);
  EXPECT_NE(msg.find((d / "tokenizer.json").string() + ": the tokenizer has 3 tokens but the model's vocabulary has 2048 rows"),
            std::string::npos) << msg;
  // The same through LoadOptions::tokenizer_path (--tokenizer), a file of another name: that file is
  // read (not its folder's tokenizer.json) and named.
  const auto other = dir_ / "elsewhere";
  std::filesystem::create_directories(other);
  test::write_file(other / "small.json", truncated_tokenizer(3));
  LoadOptions o;
  o.tokenizer_path = other / "small.json";
  try {
    Model::load(make("ok-tok", config(), st), o);
    ADD_FAILURE() << "a 3-token --tokenizer loaded";
  } catch (const FormatError& e) {
    msg = e.what();
    EXPECT_NE(msg.find((other / "small.json").string() + ": the tokenizer has 3 tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("2048 rows"), std::string::npos) << msg;
  }
  // More tokens than rows: GPT-2's 50257.
  o.tokenizer_path = test::shared_path("models/random-gpt2-hf");
  try {
    Model::load(d, o);
    ADD_FAILURE() << "a 50257-token tokenizer loaded for 2048 rows";
  } catch (const FormatError& e) {
    msg = e.what();
    EXPECT_NE(msg.find("vocab.json: the tokenizer has 50257 tokens but the model's vocabulary has 2048 rows"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("2048..50256 have no row"), std::string::npos) << msg;
  }
  // A padded vocabulary (rows rounded up past the tokenizer, as Phi-3's 32064 for 32011 tokens)
  // stays accepted: 2000 tokens for 2048 rows; 1900 (148 rows without a token) is beyond padding.
  test::write_file(d / "tokenizer.json", truncated_tokenizer(2000));
  const auto padded = Model::load(d);
  EXPECT_EQ(padded->tokenizer().n_vocab(), 2000);
  EXPECT_EQ(padded->config().d_vocab, 2048);
  test::write_file(d / "tokenizer.json", truncated_tokenizer(1900));
  msg = error_of<FormatError>(d);
  EXPECT_NE(msg.find("1900 tokens but the model's vocabulary has 2048 rows"), std::string::npos) << msg;
  EXPECT_NE(msg.find("148 rows would have no token"), std::string::npos) << msg;
  // A GGUF carries its own tokenizer: --tokenizer with one is refused, not ignored.
  o.tokenizer_path = other / "small.json";
  try {
    Model::load(test::shared_path("models/stories260K/stories260K.gguf"), o);
    ADD_FAILURE() << "--tokenizer was ignored for a GGUF";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("a GGUF file carries its own tokenizer"), std::string::npos) << e.what();
  }
}

TEST_F(HfErrors, ConfigProblems) {
  const auto st = test::safetensors_bytes(llama_tensors());
  auto msg = error_of<FormatError>(make("notjson", "{ this is not json", st));
  EXPECT_NE(msg.find("config.json: not valid JSON"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("bert", config("BertForMaskedLM"), st));
  EXPECT_NE(msg.find("architecture 'BertForMaskedLM' is not supported"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("nolayers", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8})", st));
  EXPECT_NE(msg.find("is missing or not an integer"), std::string::npos) << msg;
}

// config.json fields and tensors that change the computation are applied or refused by name.
TEST_F(HfErrors, FieldsAndTensorsReslensDoesNotApplyAreRefusedByName) {
  const auto st = test::safetensors_bytes(llama_tensors());
  auto with = [&](const std::string& fields) {
    std::string c = config();
    return c.substr(0, c.size() - 1) + ", " + fields + "}";
  };
  auto msg = error_of<UnsupportedError>(make("softcap", with(R"("attn_logit_softcapping": 50.0)"), st));
  EXPECT_NE(msg.find("config.json: field 'attn_logit_softcapping' (50.0)"), std::string::npos) << msg;
  // A field another family applies is not silently ignored on this one.
  msg = error_of<UnsupportedError>(make("experts", with(R"("num_experts": 8)"), st));
  EXPECT_NE(msg.find("field 'num_experts'"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("scalar", with(R"("query_pre_attn_scalar": 144)"), st));
  EXPECT_NE(msg.find("field 'query_pre_attn_scalar'"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("dyn", with(R"("rope_scaling": {"type": "dynamic", "factor": 2.0})"), st));
  EXPECT_NE(msg.find("rope_scaling type 'dynamic' is not supported"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(
      make("extra", with(R"("rope_scaling": {"rope_type": "linear", "factor": 2.0, "beta_fast": 32})"), st));
  EXPECT_NE(msg.find("rope_scaling field 'beta_fast'"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("l3", with(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0})"), st));
  EXPECT_NE(msg.find("rope_scaling.low_freq_factor is missing"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("neg", with(R"("rope_scaling": {"rope_type": "linear", "factor": -2})"), st));
  EXPECT_NE(msg.find("rope_scaling.factor = -2 is not a positive number"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("mlpb", with(R"("mlp_bias": true)"), st));
  EXPECT_NE(msg.find("mlp_bias = true"), std::string::npos) << msg;
  // A value of the wrong type is an error, never replaced by the default.
  std::string eps = config();
  eps.replace(eps.find("1e-6"), 4, "\"1e-5\"");
  msg = error_of<FormatError>(make("eps", eps, st));
  EXPECT_NE(msg.find("'rms_norm_eps' is \"1e-5\", not a number"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("gemma_erf", R"({"architectures": ["GemmaForCausalLM"], "hidden_size": 8,
      "intermediate_size": 12, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
      "vocab_size": 2048, "hidden_act": "gelu", "hidden_activation": "gelu"})", st));
  EXPECT_NE(msg.find("Gemma activation \"gelu\" is not supported"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("neox_tied", R"({"architectures": ["GPTNeoXForCausalLM"], "hidden_size": 8,
      "intermediate_size": 12, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 2048,
      "tie_word_embeddings": true})", st));
  EXPECT_NE(msg.find("tie_word_embeddings = true on GPTNeoXForCausalLM"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("lt", with(R"("layer_types": ["chunked_attention"])"), st));
  EXPECT_NE(msg.find("layer_types entry \"chunked_attention\""), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("pruned", with(R"("pruned_heads": {"0": [1]})"), st));
  EXPECT_NE(msg.find("field 'pruned_heads'"), std::string::npos) << msg;
  // attention_bias means q/k/v and o biases (LlamaAttention's o_proj has bias=attention_bias).
  auto biased = llama_tensors();
  biased["model.layers.0.self_attn.q_proj.bias"] = test::f32_tensor({8}, 40);
  biased["model.layers.0.self_attn.k_proj.bias"] = test::f32_tensor({4}, 41);
  biased["model.layers.0.self_attn.v_proj.bias"] = test::f32_tensor({4}, 42);
  msg = error_of<FormatError>(make("nob", with(R"("attention_bias": true)"), test::safetensors_bytes(biased)));
  EXPECT_NE(msg.find("'model.layers.0.self_attn.o_proj.bias' is missing"), std::string::npos) << msg;
  // Bias tensors the config does not declare are not applied by transformers either: refused.
  msg = error_of<UnsupportedError>(make("undeclared", config(), test::safetensors_bytes(biased)));
  EXPECT_NE(msg.find("tensor 'model.layers.0.self_attn."), std::string::npos) << msg;
  biased["model.layers.0.self_attn.o_proj.bias"] = test::f32_tensor({8}, 43);
  const auto m = Model::load(make("bias", with(R"("attention_bias": true)"), test::safetensors_bytes(biased)));
  EXPECT_TRUE(m->config().qkv_bias && m->config().o_bias);
  // A buffer transformers rebuilds itself is not a weight.
  auto inv = llama_tensors();
  inv["model.layers.0.self_attn.rotary_emb.inv_freq"] = test::f32_tensor({2}, 44);
  EXPECT_NO_THROW(Model::load(make("inv", config(), test::safetensors_bytes(inv))));
}

TEST_F(HfErrors, RopeScalingAndSlidingWindowAreApplied) {
  const auto st = test::safetensors_bytes(llama_tensors());
  auto with = [&](const std::string& fields, const std::string& arch = "LlamaForCausalLM") {
    std::string c = config(arch);
    return c.substr(0, c.size() - 1) + ", " + fields + "}";
  };
  // d_head 4: pair frequencies 1 and 0.01, wavelengths 2 pi and 200 pi. With an original context
  // of 64 the second is past 64 / low_freq_factor (divided by factor); with 1000 it lies between
  // the bounds: 1 / ((1 - s) / 8 + s), s = (1000 / (200 pi) - 1) / 3.
  auto m = Model::load(make("l3", with(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64})"), st));
  EXPECT_EQ(m->config().rope_scaling.type, "llama3");
  EXPECT_EQ(m->config().rope_scaling.freq_factors, (std::vector<double>{1.0, 8.0}));
  m = Model::load(make("l3mid", with(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 1000})"), st));
  ASSERT_EQ(m->config().rope_scaling.freq_factors.size(), 2u);
  EXPECT_NEAR(m->config().rope_scaling.freq_factors[1], 3.3609463003082083, 1e-12);
  m = Model::load(make("lin", with(R"("rope_scaling": {"type": "linear", "factor": 2.0})"), st));
  EXPECT_EQ(m->config().rope_scaling.linear_factor, 2.0);
  // Mistral's sliding window: sequences up to it are exact, longer ones refused.
  m = Model::load(make("swa", with(R"("sliding_window": 4)", "MistralForCausalLM"), st));
  EXPECT_EQ(m->config().sliding_window, 4);
  EXPECT_NO_THROW(run(*m, std::vector<int32_t>{1, 5, 9, 3}));
  try {
    run(*m, std::vector<int32_t>{1, 5, 9, 3, 7});
    ADD_FAILURE() << "a sequence past the window ran";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("sliding window of 4"), std::string::npos) << e.what();
  }
  // Qwen2 only slides with use_sliding_window.
  auto q = llama_tensors();
  q["model.layers.0.self_attn.q_proj.bias"] = test::f32_tensor({8}, 40);
  q["model.layers.0.self_attn.k_proj.bias"] = test::f32_tensor({4}, 41);
  q["model.layers.0.self_attn.v_proj.bias"] = test::f32_tensor({4}, 42);
  m = Model::load(make("qwen", with(R"("sliding_window": 4, "use_sliding_window": false, "max_window_layers": 1)",
                                    "Qwen2ForCausalLM"), test::safetensors_bytes(q)));
  EXPECT_EQ(m->config().sliding_window, 0);
}

TEST_F(HfErrors, SafetensorsProblems) {
  auto good = test::safetensors_bytes(llama_tensors());
  // Header length past the end.
  auto b = good;
  const uint64_t huge = good.size() + 10;
  std::memcpy(b.data(), &huge, 8);
  auto msg = error_of<FormatError>(make("hdrlen", config(), b));
  EXPECT_NE(msg.find("model.safetensors: header length"), std::string::npos) << msg;
  // Header that is not JSON.
  b = good;
  b[8] = '#';
  msg = error_of<FormatError>(make("hdrjson", config(), b));
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  // Tensor data past the end of the file.
  b = good;
  b.resize(b.size() - 16);
  msg = error_of<FormatError>(make("short", config(), b));
  EXPECT_NE(msg.find("runs past the end"), std::string::npos) << msg;
  // Overlapping tensors.
  const std::string overlap = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  std::vector<uint8_t> o(8 + overlap.size() + 12, 0);
  const uint64_t len = overlap.size();
  std::memcpy(o.data(), &len, 8);
  std::memcpy(o.data() + 8, overlap.data(), overlap.size());
  EXPECT_THROW(safetensors::File(o, "x.safetensors"), FormatError);
  msg = error_of<FormatError>(make("overlap", config(), o));
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
  // A weight of an unsupported dtype.
  auto t = llama_tensors();
  t["model.norm.weight"].dtype = "I32";
  msg = error_of<UnsupportedError>(make("dtype", config(), test::safetensors_bytes(t)));
  EXPECT_NE(msg.find("model.norm.weight' has dtype I32"), std::string::npos) << msg;
  // A shape that disagrees with config.json.
  t = llama_tensors();
  t["model.layers.0.mlp.up_proj.weight"] = test::f32_tensor({11, 8}, 3);
  msg = error_of<FormatError>(make("shape", config(), test::safetensors_bytes(t)));
  EXPECT_NE(msg.find("up_proj.weight' has shape [11, 8], expected [12, 8]"), std::string::npos) << msg;
}

TEST(HfLoad, SafetensorsFilePathPointsAtTheDirectory) {
  const auto p = test::shared_path("models/TinyStories-656K/model.safetensors");
  EXPECT_THROW(Model::load(p), InvalidArgument);
}

// YaRN and LongRoPE from config.json (issue 14); d_head 4: two rotary pairs, max_position_embeddings 32.
TEST_F(HfErrors, YarnAndLongRopeAreAppliedAndBadFieldsNamed) {
  const auto st = test::safetensors_bytes(llama_tensors());
  auto with = [&](const std::string& fields, const std::string& arch = "LlamaForCausalLM") {
    std::string c = config(arch);
    return c.substr(0, c.size() - 1) + ", " + fields + "}";
  };
  // YaRN in an original context of 1000: pair 1 half way (1.6, as for GGUF); attention_factor
  // replaces 1 + 0.1 ln factor.
  auto m = Model::load(make("yarn", with(R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0,
      "original_max_position_embeddings": 1000})"), st));
  EXPECT_EQ(m->config().rope_scaling.type, "yarn");
  EXPECT_EQ(m->config().rope_scaling.freq_factors, (std::vector<double>{1.0, 1.6}));
  EXPECT_DOUBLE_EQ(m->config().rope_scaling.attn_factor, 1.0 + 0.1 * std::log(4.0));
  m = Model::load(make("yarn2", with(R"("rope_scaling": {"type": "yarn", "factor": 4.0, "attention_factor": 0.5,
      "beta_fast": 32, "beta_slow": 1})"), st));
  EXPECT_EQ(m->config().rope_scaling.original_context, 32);  // max_position_embeddings
  EXPECT_EQ(m->config().rope_scaling.attn_factor, 0.5);
  auto msg = error_of<FormatError>(make("yneg", with(R"("rope_scaling": {"type": "yarn", "factor": -1.0})"), st));
  EXPECT_NE(msg.find("config.json: rope_scaling.factor = -1.0 is not a positive number"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("yzero", with(R"("rope_scaling": {"type": "yarn", "factor": 0})"), st));
  EXPECT_NE(msg.find("rope_scaling.factor = 0 is not a positive number"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("ynone", with(R"("rope_scaling": {"type": "yarn"})"), st));
  EXPECT_NE(msg.find("rope_scaling.factor is missing"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("ymsc", with(R"("rope_scaling": {"type": "yarn", "factor": 4.0, "mscale": 0.7})"), st));
  EXPECT_NE(msg.find("rope_scaling field 'mscale'"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("ytr", with(R"("rope_scaling": {"type": "yarn", "factor": 4.0, "truncate": false})"), st));
  EXPECT_NE(msg.find("rope_scaling.truncate = false"), std::string::npos) << msg;
  msg = error_of<UnsupportedError>(make("unk", with(R"("rope_scaling": {"type": "ntk-by-parts", "factor": 4.0})"), st));
  EXPECT_NE(msg.find("config.json: rope_scaling type 'ntk-by-parts' is not supported"), std::string::npos) << msg;
  // LongRoPE: the long factors when max_position_embeddings (32) exceeds the original context, the
  // short ones otherwise; attention factor sqrt(1 + ln(32 / 8) / ln 8).
  const std::string factors = R"("long_factor": [1.0, 5.0], "short_factor": [1.0, 2.0])";
  m = Model::load(make("lr", with(R"("original_max_position_embeddings": 8, "rope_scaling": {"type": "longrope", )" +
                                      factors + "}"),
                       st));
  EXPECT_EQ(m->config().rope_scaling.type, "longrope");
  EXPECT_EQ(m->config().rope_scaling.factor_set, "long");
  EXPECT_EQ(m->config().rope_scaling.freq_factors, (std::vector<double>{1.0, 5.0}));
  EXPECT_DOUBLE_EQ(m->config().rope_scaling.attn_factor, std::sqrt(1.0 + std::log(4.0) / std::log(8.0)));
  m = Model::load(make("lrs", with(R"("original_max_position_embeddings": 32, "rope_scaling": {"type": "su", )" +
                                       factors + "}"),
                       st));
  EXPECT_EQ(m->config().rope_scaling.factor_set, "short");
  EXPECT_EQ(m->config().rope_scaling.freq_factors, (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(m->config().rope_scaling.attn_factor, 1.0);
  msg = error_of<FormatError>(make("lrlen", with(R"("original_max_position_embeddings": 8, "rope_scaling": {"type":
      "longrope", "long_factor": [1.0, 5.0, 7.0], "short_factor": [1.0, 2.0]})"), st));
  EXPECT_NE(msg.find("config.json: rope_scaling.long_factor has 3 factors, expected 2"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("lrneg", with(R"("original_max_position_embeddings": 8, "rope_scaling": {"type":
      "longrope", "long_factor": [1.0, 5.0], "short_factor": [1.0, -2.0]})"), st));
  EXPECT_NE(msg.find("rope_scaling.short_factor[1] = -2 is not a positive number"), std::string::npos) << msg;
  msg = error_of<FormatError>(make("lrnof", with(R"("rope_scaling": {"type": "longrope", )" + factors + "}"), st));
  EXPECT_NE(msg.find("LongRoPE needs rope_scaling.factor or original_max_position_embeddings"), std::string::npos) << msg;
}

}  // namespace
}  // namespace reslens
