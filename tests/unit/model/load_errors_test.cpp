// Bad model input: every case is a typed error whose message names the file and the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <fstream>

#include "common/test_paths.h"
#include "common/tiny_models.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using test::GgufBuilder;
using test::TinyLlamaSpec;

// Loads `path` expecting exception type E whose message contains every fragment.
template <typename E>
void expect_load_error(const std::filesystem::path& path, std::vector<std::string> fragments,
                       const LoadOptions& o = {}) {
  try {
    Model::load(path, o);
    ADD_FAILURE() << "loading " << path << " did not fail";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for " << path << ": " << e.what();
  }
}

class LoadErrors : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = test::scratch_dir("models");
  std::filesystem::path gguf(const TinyLlamaSpec& s, const std::string& name = "m.gguf") {
    auto p = dir_ / name;
    test::tiny_llama_gguf(s).write(p);
    return p;
  }
};

TEST_F(LoadErrors, TheTinyModelLoadsAndRuns) {
  const auto m = Model::load(gguf({}));
  EXPECT_EQ(m->config().n_layers, 1);
  EXPECT_EQ(m->config().d_vocab, 12);
  const std::vector<int32_t> ids = {1, 4, 5};
  EXPECT_EQ(run(*m, ids).logits.dim(1), 12);
}

TEST_F(LoadErrors, MissingPathAndEmptyInputs) {
  expect_load_error<IoError>(dir_ / "nope.gguf", {"nope.gguf", "no such file"});
  std::filesystem::create_directories(dir_ / "empty");
  expect_load_error<IoError>(dir_ / "empty", {"empty", "no model found"});
  test::write_file(dir_ / "zero.bin", std::string());
  expect_load_error<FormatError>(dir_ / "zero.bin", {"zero.bin", "empty"});
}

TEST_F(LoadErrors, GgufProblemsNameTheTensorOrKey) {
  TinyLlamaSpec bert;
  bert.architecture = "bert";
  expect_load_error<UnsupportedError>(gguf(bert), {"m.gguf", "architecture 'bert'"});
  TinyLlamaSpec shape;
  shape.shape_override["blk.0.attn_q.weight"] = {8, 4};
  expect_load_error<FormatError>(gguf(shape), {"m.gguf", "blk.0.attn_q.weight", "[4, 8]", "expected [8, 8]"});
  TinyLlamaSpec missing;
  missing.drop_tensor = "blk.0.ffn_up.weight";
  expect_load_error<FormatError>(gguf(missing), {"blk.0.ffn_up.weight", "missing"});
  TinyLlamaSpec q8_1;  // ggml's dot-product intermediate type, which model files never hold
  q8_1.q8_1_tensor = "blk.0.ffn_gate.weight";
  q8_1.d_mlp = 32;
  q8_1.d_model = 32;
  q8_1.n_heads = 4;
  q8_1.n_kv_heads = 2;
  expect_load_error<UnsupportedError>(gguf(q8_1), {"blk.0.ffn_gate.weight", "Q8_1"});
  TinyLlamaSpec huge;
  huge.n_layers = 100000;
  expect_load_error<FormatError>(gguf(huge), {"m.gguf"});
  TinyLlamaSpec heads;
  heads.n_kv_heads = 3;
  heads.n_heads = 2;
  expect_load_error<FormatError>(gguf(heads), {"n_key_value_heads"});
}

// Anything a GGUF file holds that changes llama.cpp's computation and that reslens does not apply
// stops the load, naming the key or tensor (issue 14: such files used to run without it).
TEST_F(LoadErrors, GgufKeysAndTensorsReslensDoesNotApplyAreRefusedByName) {
  auto with = [](std::function<void(GgufBuilder&)> f) {
    TinyLlamaSpec s;
    s.extra = std::move(f);
    return s;
  };
  expect_load_error<UnsupportedError>(gguf(with([](GgufBuilder& b) { b.kv_f32("llama.attention.scale", 0.5f); })),
                                      {"m.gguf", "'llama.attention.scale'", "does not apply"});
  expect_load_error<UnsupportedError>(gguf(with([](GgufBuilder& b) { b.kv_f32("llama.attention.clamp_kqv", 8.0f); })),
                                      {"m.gguf", "'llama.attention.clamp_kqv'"});
  // A sliding window is honoured by refusing sequences longer than it (up to it, windowed and full
  // attention agree).
  const auto swa = Model::load(gguf(with([](GgufBuilder& b) { b.kv_u32("llama.attention.sliding_window", 4); })));
  EXPECT_EQ(swa->config().sliding_window, 4);
  EXPECT_THROW(run(*swa, std::vector<int32_t>{1, 4, 5, 6, 7}), UnsupportedError);
  // Keys one family applies are not silently taken on another (gemma3's local RoPE base on a llama).
  expect_load_error<UnsupportedError>(gguf(with([](GgufBuilder& b) { b.kv_f32("llama.rope.freq_base_swa", 1e4f); })),
                                      {"m.gguf", "'llama.rope.freq_base_swa'"});
  expect_load_error<UnsupportedError>(
      gguf(with([](GgufBuilder& b) { b.kv_u32("llama.expert_shared_feed_forward_length", 8); })),
      {"'llama.expert_shared_feed_forward_length'"});
  expect_load_error<UnsupportedError>(gguf(with([](GgufBuilder& b) { b.kv_string("adapter.type", "lora"); })),
                                      {"m.gguf", "'adapter.type'"});
  // Tensors outside the graph: an FFN bias, a per-head q norm (Qwen3's, under the llama name).
  expect_load_error<UnsupportedError>(
      gguf(with([](GgufBuilder& b) { b.tensor_f32("blk.0.ffn_gate.bias", {12}, std::vector<float>(12, 1.0f)); })),
      {"m.gguf", "tensor 'blk.0.ffn_gate.bias'", "not part of the llama graph"});
  expect_load_error<UnsupportedError>(
      gguf(with([](GgufBuilder& b) { b.tensor_f32("blk.0.attn_q_norm.weight", {4}, std::vector<float>(4, 1.0f)); })),
      {"tensor 'blk.0.attn_q_norm.weight'"});
  // Scaling types that change more than the angle, and mixture-of-experts files (refused as such,
  // not as a malformed file whose ffn_gate is missing).
  expect_load_error<UnsupportedError>(gguf(with([](GgufBuilder& b) {
                                        b.kv_string("llama.rope.scaling.type", "longrope");
                                        b.kv_f32("llama.rope.scaling.factor", 4.0f);
                                      })),
                                      {"m.gguf", "llama.rope.scaling.type = 'longrope'", "not supported"});
  expect_load_error<UnsupportedError>(
      gguf(with([](GgufBuilder& b) { b.kv_f32("llama.rope.scaling.attn_factor", 2.0f); })),
      {"llama.rope.scaling.attn_factor"});
  // Mixture of experts: a file missing an expert tensor, or whose expert_count disagrees with its
  // tensors, is named; expert_used_count must be 1..expert_count; experts under another arch refused.
  TinyLlamaSpec moe = with([](GgufBuilder& b) {
    b.kv_u32("llama.expert_count", 2);
    b.kv_u32("llama.expert_used_count", 1);
  });
  expect_load_error<FormatError>(gguf(moe), {"m.gguf", "tensor 'blk.0.ffn_gate_inp.weight' is missing"});
  moe.extra = [](GgufBuilder& b) {
    b.kv_u32("llama.expert_count", 2);
    b.kv_u32("llama.expert_used_count", 1);
    b.tensor_f32("blk.0.ffn_gate_inp.weight", {8, 3}, std::vector<float>(24, 0.1f));  // 3 experts' rows
  };
  expect_load_error<FormatError>(gguf(moe), {"blk.0.ffn_gate_inp.weight", "[3, 8]", "expected [2, 8]"});
  expect_load_error<FormatError>(gguf(with([](GgufBuilder& b) {
                                   b.kv_u32("llama.expert_count", 2);
                                   b.kv_u32("llama.expert_used_count", 3);
                                 })),
                                 {"m.gguf", "llama.expert_used_count = 3 for 2 experts"});
  TinyLlamaSpec qmoe;
  qmoe.architecture = "qwen2";
  qmoe.extra = [](GgufBuilder& b) { b.kv_u32("qwen2.expert_count", 4); };
  expect_load_error<UnsupportedError>(gguf(qmoe, "q.gguf"), {"q.gguf", "qwen2.expert_count = 4", "mixture-of-experts"});
  expect_load_error<FormatError>(
      gguf(with([](GgufBuilder& b) { b.kv_f32("llama.rope.scaling.factor", std::nanf("")); })),
      {"llama.rope.scaling.factor"});
  // rope_freqs.weight: one factor per rotary pair (d_head 4: 2), each finite and positive.
  expect_load_error<FormatError>(
      gguf(with([](GgufBuilder& b) { b.tensor_f32("rope_freqs.weight", {3}, {1.0f, 2.0f, 3.0f}); })),
      {"rope_freqs.weight", "[3]", "expected [2]"});
  expect_load_error<FormatError>(
      gguf(with([](GgufBuilder& b) { b.tensor_f32("rope_freqs.weight", {2}, {1.0f, 0.0f}); })),
      {"m.gguf", "rope frequency factor 0"});
  // Harmless keys pass: the vocabulary size, whether the scaling was fine-tuned.
  const auto ok = Model::load(gguf(with([](GgufBuilder& b) {
    b.kv_u32("llama.vocab_size", 12);
    b.kv_bool("llama.rope.scaling.finetuned", false);
    b.kv_string("llama.rope.scaling.type", "none");
    b.kv_f32("llama.rope.scaling.factor", 8.0f);  // ignored with type none, as llama.cpp does
  })));
  EXPECT_EQ(ok->config().rope_scaling.type, "none");
  EXPECT_EQ(ok->config().rope_scaling.linear_factor, 1.0);
}

TEST_F(LoadErrors, GgufRopeScalingAndBiasesAreRead) {
  TinyLlamaSpec s;
  s.extra = [](GgufBuilder& b) {
    b.kv_f32("llama.rope.scaling.factor", 4.0f);  // type defaults to linear, as in llama.cpp
    b.tensor_f32("rope_freqs.weight", {2}, {1.0f, 8.0f});
    b.tensor_f32("blk.0.attn_q.bias", {8}, std::vector<float>(8, 0.5f));
    b.tensor_f32("blk.0.attn_output.bias", {8}, std::vector<float>(8, 0.25f));
  };
  const auto m = Model::load(gguf(s));
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.rope_layout, RopeLayout::kInterleaved);
  EXPECT_EQ(c.rope_scaling.linear_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.freq_factors, (std::vector<double>{1.0, 8.0}));
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_FALSE(m->weights().layers[0].b_Q.empty());
  EXPECT_TRUE(m->weights().layers[0].b_K.empty());
  EXPECT_EQ(m->weights().layers[0].b_O[3], 0.25f);
  // qwen2 rotates NEOX pairs (llama.cpp's llama_model_rope_type).
  TinyLlamaSpec q;
  q.architecture = "qwen2";
  EXPECT_EQ(Model::load(gguf(q, "q.gguf"))->config().rope_layout, RopeLayout::kHalf);
  // qwen3 needs its per-head q/k norms; phi3 its fused gate/up.
  TinyLlamaSpec q3;
  q3.architecture = "qwen3";
  expect_load_error<FormatError>(gguf(q3, "q3.gguf"), {"q3.gguf", "blk.0.attn_q_norm.weight", "missing"});
  q3.extra = [](GgufBuilder& b) {
    b.tensor_f32("blk.0.attn_q_norm.weight", {4}, std::vector<float>(4, 1.0f));
    b.tensor_f32("blk.0.attn_k_norm.weight", {4}, std::vector<float>(4, 1.0f));
  };
  const auto m3 = Model::load(gguf(q3, "q3.gguf"));
  EXPECT_TRUE(m3->config().qk_norm);
  EXPECT_EQ(m3->config().rope_layout, RopeLayout::kHalf);
  // gemma: GeGLU, embeddings times sqrt(d_model), always tied (llama.cpp has no output.weight for it,
  // so a file with one is refused rather than run with the wrong head).
  TinyLlamaSpec gemma;
  gemma.architecture = "gemma";
  const auto mg = Model::load(gguf(gemma, "g.gguf"));
  EXPECT_EQ(mg->config().act_fn, ActFn::kGeluNew);
  EXPECT_EQ(mg->config().embedding_scale, std::sqrt(8.0f));
  EXPECT_TRUE(mg->config().tied_embeddings);
  gemma.extra = [](GgufBuilder& b) { b.tensor_f32("output.weight", {8, 12}, std::vector<float>(96, 0.5f)); };
  expect_load_error<UnsupportedError>(gguf(gemma, "g2.gguf"), {"g2.gguf", "tensor 'output.weight'", "gemma"});
  // gptneox: llama.cpp requires use_parallel_residual; a Llama block is not a NeoX block.
  TinyLlamaSpec neox;
  neox.architecture = "gptneox";
  neox.extra = [](GgufBuilder& b) { b.kv_f32("gptneox.attention.layer_norm_epsilon", 1e-5f); };
  expect_load_error<FormatError>(gguf(neox, "nx.gguf"), {"nx.gguf", "gptneox.use_parallel_residual"});
  neox.extra = [](GgufBuilder& b) {
    b.kv_f32("gptneox.attention.layer_norm_epsilon", 1e-5f);
    b.kv_bool("gptneox.use_parallel_residual", true);
  };
  expect_load_error<FormatError>(gguf(neox, "nx.gguf"), {"nx.gguf", "attn_qkv.weight", "missing"});
  // olmo2: no pre-norms (a Llama file's attn_norm is refused as unused), post-norms required.
  TinyLlamaSpec olmo;
  olmo.architecture = "olmo2";
  expect_load_error<FormatError>(gguf(olmo, "o.gguf"), {"o.gguf", "blk.0.attn_q_norm.weight", "missing"});
  TinyLlamaSpec phi;  // a Llama-layout block is not a Phi-3 block: ffn_up has d_mlp rows, not 2 d_mlp
  phi.architecture = "phi3";
  expect_load_error<FormatError>(gguf(phi, "phi.gguf"), {"phi.gguf", "blk.0.ffn_up.weight", "expected [24, 8]"});
}

// gemma2: Gemma 3's post-norms without q/k norms, both softcaps (llama.cpp's defaults 50 and 30 when
// absent) and a window on the even layers that the pass applies; a cap of 0, below 0 or NaN is a
// FormatError naming the file and the key (the CLI's exit 3).
TEST_F(LoadErrors, Gemma2SoftcapsAndWindows) {
  TinyLlamaSpec g2;
  g2.architecture = "gemma2";
  g2.n_layers = 2;
  auto norms = [](GgufBuilder& b) {
    for (const char* l : {"0", "1"}) {
      for (const char* n : {"post_attention_norm.weight", "post_ffw_norm.weight"}) {
        b.tensor_f32(std::string("blk.") + l + "." + n, {8}, std::vector<float>(8, 1.0f));
      }
    }
  };
  g2.extra = norms;
  const auto defaults = Model::load(gguf(g2, "g2d.gguf"));
  EXPECT_EQ(defaults->config().attn_softcap, 50.0f);
  EXPECT_EQ(defaults->config().final_softcap, 30.0f);
  EXPECT_EQ(defaults->config().sliding_window, 4096);
  g2.extra = [&](GgufBuilder& b) {
    norms(b);
    b.kv_f32("gemma2.attn_logit_softcapping", 5.0f);
    b.kv_f32("gemma2.final_logit_softcapping", 0.5f);
    b.kv_u32("gemma2.attention.sliding_window", 3);
  };
  const auto m = Model::load(gguf(g2, "g2.gguf"));
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.attn_softcap, 5.0f);
  EXPECT_EQ(c.final_softcap, 0.5f);
  EXPECT_TRUE(c.post_norm);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.window_of(0), 3);  // even layers local
  EXPECT_EQ(c.window_of(1), 0);
  // Longer than the window: applied, not refused; every logit within the final cap; layer 0's
  // pattern is exactly 0 outside the window, layer 1's is not.
  const std::vector<int32_t> ids = {1, 4, 5, 6, 7, 8, 9};
  RunOptions ro;
  ro.all_logits = true;
  ro.capture = HookFilter::from_patterns({"blocks.*.attn.hook_pattern"});
  const RunResult r = run(*m, ids, ro);
  for (int64_t i = 0; i < r.logits.numel(); ++i) EXPECT_LE(std::abs(r.logits.data()[i]), 0.5f);
  const Tensor& p0 = r.cache.at(Hook::kPattern, 0);  // [n_heads, T, S]: head 0 first
  const Tensor& p1 = r.cache.at(Hook::kPattern, 1);
  const int64_t T = 7;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t s = 0; s <= t; ++s) {
      if (t - s >= 3) {
        EXPECT_EQ(p0.data()[t * T + s], 0.0f) << t << "," << s;
      } else {
        EXPECT_GT(p0.data()[t * T + s], 0.0f) << t << "," << s;
      }
      EXPECT_GT(p1.data()[t * T + s], 0.0f) << t << "," << s;
    }
  }
  // Bad caps: 0, negative and NaN, each named with the file.
  const std::pair<const char*, float> bad[] = {{"gemma2.final_logit_softcapping", 0.0f},
                                               {"gemma2.attn_logit_softcapping", -1.0f},
                                               {"gemma2.final_logit_softcapping", std::nanf("")}};
  for (const auto& [key, value] : bad) {
    g2.extra = [&, k = std::string(key), v = value](GgufBuilder& b) {
      norms(b);
      b.kv_f32(k, v);
    };
    expect_load_error<FormatError>(gguf(g2, "bad.gguf"), {"bad.gguf", std::string(key), "not a positive number"});
  }
  // Tied, as llama.cpp's gemma2 graph: an output.weight is refused rather than ignored.
  g2.extra = [&](GgufBuilder& b) {
    norms(b);
    b.tensor_f32("output.weight", {8, 12}, std::vector<float>(96, 0.5f));
  };
  expect_load_error<UnsupportedError>(gguf(g2, "g2o.gguf"), {"g2o.gguf", "tensor 'output.weight'", "gemma2"});
}

TEST_F(LoadErrors, WeightsBeyondTheAvailableMemoryAreRefusedUpFront) {
  // Kept in the file's encoding, a model needs its stored bytes; converted to float32
  // (--weights-f32), 4 bytes per weight. When that is more memory than there is, the load stops
  // before reading any weight, naming the file and both sizes (RESLENS_MEMORY_AVAILABLE stands in for
  // /proc/meminfo's MemAvailable here).
  TinyLlamaSpec q;
  q.q8_0_tensor = "blk.0.ffn_gate.weight";
  q.d_mlp = 32;
  q.d_model = 32;
  q.n_heads = 4;
  q.n_kv_heads = 2;
  const auto path = gguf(q);
  LoadOptions f32;
  f32.weights_as_float32 = true;
  ASSERT_EQ(::setenv("RESLENS_MEMORY_AVAILABLE", "100", 1), 0);
  expect_load_error<UnsupportedError>(path, {"m.gguf", "as stored", "memory available"});
  try {
    Model::load(path, f32);
    ADD_FAILURE() << "expected an UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("Q8_0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("as float32"), std::string::npos) << e.what();
  }
  ASSERT_EQ(::setenv("RESLENS_MEMORY_AVAILABLE", "1000000", 1), 0);
  const auto m = Model::load(path);  // fits as stored: the Q8_0 matrix stays encoded
  EXPECT_FALSE(m->weights().layers[0].W_gate.is_float());
  const auto c = Model::load(path, f32);  // 32 x 32 floats fit
  EXPECT_TRUE(c->weights().layers[0].W_gate.is_float());
  EXPECT_GT(c->owned_bytes(), m->owned_bytes());
  ::unsetenv("RESLENS_MEMORY_AVAILABLE");
}

TEST_F(LoadErrors, GgufTruncatedAnywhereIsAFormatError) {
  const auto bytes = test::tiny_llama_gguf({}).bytes();
  for (size_t cut : {size_t{3}, size_t{20}, size_t{200}, bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> b(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    const auto p = dir_ / ("cut" + std::to_string(cut) + ".gguf");
    test::write_file(p, b);
    EXPECT_THROW(Model::load(p), FormatError) << cut;
  }
}

TEST_F(LoadErrors, Llama2cProblems) {
  auto model = test::tiny_llama2c();
  test::write_file(dir_ / "model.bin", model);
  // No tokenizer beside it: the error lists where it looked.
  expect_load_error<IoError>(dir_ / "model.bin", {"model.bin", "tokenizer.bin", "tok12.bin", "--tokenizer"});
  test::write_file(dir_ / "tok12.bin", test::tiny_llama2c_tokenizer());
  const auto m = Model::load(dir_ / "model.bin");
  EXPECT_EQ(m->format(), "llama2.c v0 (legacy)");
  EXPECT_EQ(m->config().d_vocab, 12);
  // --tokenizer wins over the search.
  LoadOptions o;
  o.tokenizer_path = dir_ / "missing-tok.bin";
  expect_load_error<IoError>(dir_ / "model.bin", {"missing-tok.bin"}, o);
  // Truncated and padded files fail the size check.
  std::vector<uint8_t> cut(model.begin(), model.end() - 10);
  test::write_file(dir_ / "cut.bin", cut);
  test::write_file(dir_ / "tokenizer.bin", test::tiny_llama2c_tokenizer());
  expect_load_error<FormatError>(dir_ / "cut.bin", {"cut.bin", "truncated"});
  auto padded = model;
  padded.push_back(0);
  test::write_file(dir_ / "pad.bin", padded);
  expect_load_error<FormatError>(dir_ / "pad.bin", {"pad.bin", "not a valid llama2.c"});
  // Garbage and nonsense headers.
  test::write_file(dir_ / "junk.bin", std::string("hello, this is not a model at all"));
  expect_load_error<FormatError>(dir_ / "junk.bin", {"junk.bin"});
  std::vector<uint8_t> v2;
  const uint32_t magic = 0x616b3432;
  const int32_t version = 2;
  GgufBuilder::raw(v2, &magic, 4);
  GgufBuilder::raw(v2, &version, 4);
  v2.resize(300);
  test::write_file(dir_ / "v2.bin", v2);
  expect_load_error<FormatError>(dir_ / "v2.bin", {"v2.bin", "version 2"});
}

TEST_F(LoadErrors, Llama2cTokenizerProblems) {
  test::write_file(dir_ / "model.bin", test::tiny_llama2c());
  auto tok = test::tiny_llama2c_tokenizer();
  tok.resize(tok.size() - 3);
  test::write_file(dir_ / "tokenizer.bin", tok);
  expect_load_error<FormatError>(dir_ / "model.bin", {"tokenizer.bin"});
}

TEST_F(LoadErrors, RunRejectsBadTokens) {
  const auto m = Model::load(gguf({}));
  const std::vector<int32_t> bad = {1, 12};
  EXPECT_THROW(run(*m, bad), OutOfRange);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(run(*m, negative), OutOfRange);
  EXPECT_THROW(run(*m, std::vector<int32_t>{}), InvalidArgument);
  const std::vector<int32_t> too_long(17, 4);
  try {
    run(*m, too_long);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("context window is 16"), std::string::npos);
  }
}

TEST_F(LoadErrors, InterventionsAreValidated) {
  const auto m = Model::load(gguf({}));
  const std::vector<int32_t> ids = {1, 4, 5};
  Intervention iv;
  iv.ffn_neurons.push_back({0, 12});
  RunOptions o;
  o.intervention = &iv;
  EXPECT_THROW(run(*m, ids, o), OutOfRange);
  iv.ffn_neurons = {{1, 0}};
  EXPECT_THROW(run(*m, ids, o), OutOfRange);
  iv.ffn_neurons = {};
  iv.heads = {{0, 2}};
  EXPECT_THROW(run(*m, ids, o), OutOfRange);
  iv.heads = {{0, 1}};
  iv.position = 3;
  EXPECT_THROW(run(*m, ids, o), OutOfRange);
  iv.position = 2;
  EXPECT_NO_THROW(run(*m, ids, o));
}

// A NaN in the weights stops the run where the stream stops being finite, naming the weight (a
// FormatError: the file is at fault, exit 3), instead of nan% predictions or attributions of garbage.
TEST_F(LoadErrors, NonFiniteWeightsAreNamedWhenTheyReachTheStream) {
  const std::vector<int32_t> ids = {1, 4, 5};
  for (const auto& [tensor, name] : std::vector<std::pair<std::string, std::string>>{
           {"blk.0.ffn_up.weight", "blocks.0.mlp.W_in"},
           {"blk.0.attn_norm.weight", "blocks.0.ln1.w"},
           {"output_norm.weight", "ln_final.w"}}) {
    TinyLlamaSpec s;
    s.nan_tensor = tensor;
    const auto m = Model::load(gguf(s));
    try {
      run(*m, ids);
      ADD_FAILURE() << "a run with a NaN in " << tensor << " succeeded";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("m.gguf: weight " + name + " holds NaN or Inf"), std::string::npos) << msg;
    }
  }
}

// YaRN (issue 14) on d_head 4 (two rotary pairs, frequencies 1 and 0.01): with original context 16
// the correction range is pairs 0..1 (d(32) = -0.55 floored to 0, d(1) = 0.20 ceiled to 1), so pair 0
// keeps its frequency and pair 1 is divided by 4; with 1000 it is 0..2 (d(1) = 1.10) and pair 1 sits
// half way: 1 / (0.5 / 4 + 0.5) = 1.6. cos/sin are scaled by 1 + 0.1 ln 4.
TEST_F(LoadErrors, GgufYarnIsAppliedAsLlamaCppComputesIt) {
  auto yarn = [&](const std::string& arch, std::function<void(GgufBuilder&)> more, float factor = 4.0f) {
    TinyLlamaSpec s;
    s.architecture = arch;
    s.extra = [arch, more, factor](GgufBuilder& b) {
      b.kv_string(arch + ".rope.scaling.type", "yarn");
      b.kv_f32(arch + ".rope.scaling.factor", factor);
      if (more) more(b);
    };
    return s;
  };
  auto m = Model::load(gguf(yarn("llama", nullptr)));
  EXPECT_EQ(m->config().rope_scaling.type, "yarn");
  EXPECT_EQ(m->config().rope_scaling.freq_factors, (std::vector<double>{1.0, 4.0}));
  EXPECT_DOUBLE_EQ(m->config().rope_scaling.attn_factor, 1.0 + 0.1 * std::log(4.0));
  EXPECT_EQ(m->config().rope_scaling.original_context, 16);  // context_length
  m = Model::load(gguf(yarn("qwen2", [](GgufBuilder& b) {
    b.kv_u32("qwen2.rope.scaling.original_context_length", 1000);
    b.kv_f32("qwen2.rope.scaling.yarn_beta_fast", 32.0f);  // llama.cpp's value: accepted
  }), "q.gguf"));
  ASSERT_EQ(m->config().rope_scaling.freq_factors.size(), 2u);
  EXPECT_DOUBLE_EQ(m->config().rope_scaling.freq_factors[1], 1.6);
  EXPECT_EQ(m->config().rope_scaling.original_context, 1000);
  EXPECT_NO_THROW(run(*m, std::vector<int32_t>{1, 4, 5}));
  // A factor that is missing, zero or NaN, and tuning llama.cpp ignores for these architectures.
  expect_load_error<FormatError>(gguf(yarn("llama", nullptr, 0.0f)),
                                 {"m.gguf", "llama.rope.scaling.factor = 0", "not a positive number"});
  expect_load_error<FormatError>(gguf(yarn("llama", nullptr, std::nanf(""))),
                                 {"m.gguf", "llama.rope.scaling.factor = nan", "not a positive number"});
  TinyLlamaSpec nofactor;
  nofactor.extra = [](GgufBuilder& b) { b.kv_string("llama.rope.scaling.type", "yarn"); };
  expect_load_error<FormatError>(gguf(nofactor), {"m.gguf", "llama.rope.scaling.factor", "YaRN needs its factor"});
  expect_load_error<UnsupportedError>(
      gguf(yarn("llama", [](GgufBuilder& b) { b.kv_f32("llama.rope.scaling.yarn_beta_fast", 16.0f); })),
      {"m.gguf", "llama.rope.scaling.yarn_beta_fast = 16", "llama.cpp uses 32"});
  expect_load_error<UnsupportedError>(
      gguf(yarn("llama", [](GgufBuilder& b) { b.kv_f32("llama.rope.scaling.yarn_log_multiplier", 0.1f); })),
      {"m.gguf", "yarn_log_multiplier"});
  // Architectures whose YaRN reslens does not apply are refused by name.
  TinyLlamaSpec gemma = yarn("gemma", nullptr);
  expect_load_error<UnsupportedError>(gguf(gemma), {"m.gguf", "gemma.rope.scaling.type = 'yarn' is not supported for gemma"});
  // A correction range that is empty (base 2, original context 4: d(1) = -1.3 ceiled to -1 < 0):
  // llama.cpp and transformers ramp differently there, so it is refused.
  expect_load_error<UnsupportedError>(gguf(yarn("llama", [](GgufBuilder& b) {
                                        b.kv_f32("llama.rope.freq_base", 2.0f);
                                        b.kv_u32("llama.rope.scaling.original_context_length", 4);
                                      })),
                                      {"m.gguf", "correction range is empty"});
}

}  // namespace
}  // namespace reslens
