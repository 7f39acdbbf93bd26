#include "common/tiny_models.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace reslens::test {

namespace {

std::vector<float> values(uint64_t n, float seed) {
  std::vector<float> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = 0.3f * std::sin(seed * 12.9898f + static_cast<float>(i) * 0.7f);
  return v;
}

std::vector<float> ones_ish(uint64_t n, float seed) {
  auto v = values(n, seed);
  for (float& x : v) x += 1.0f;
  return v;
}

}  // namespace

std::vector<std::string> tiny_vocab() {
  return {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "c", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab", "ba",
          "cc"};
}

GgufBuilder tiny_llama_gguf(const TinyLlamaSpec& s) {
  GgufBuilder b;
  const std::string a = s.architecture;
  b.kv_string("general.architecture", a);
  b.kv_string("general.name", "tiny");
  b.kv_u32(a + ".block_count", s.n_layers);
  b.kv_u32(a + ".embedding_length", s.d_model);
  b.kv_u32(a + ".feed_forward_length", s.d_mlp);
  b.kv_u32(a + ".attention.head_count", s.n_heads);
  b.kv_u32(a + ".attention.head_count_kv", s.n_kv_heads);
  b.kv_u32(a + ".context_length", s.n_ctx);
  b.kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  const auto vocab = tiny_vocab();
  b.kv_string("tokenizer.ggml.model", "llama");
  b.kv_string_array("tokenizer.ggml.tokens", vocab);
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (size_t i = 0; i < vocab.size(); ++i) {
    scores.push_back(-static_cast<float>(i));
    types.push_back(i == 0 ? 2 : i < 3 ? 3 : 1);
  }
  b.kv_f32_array("tokenizer.ggml.scores", scores);
  b.kv_i32_array("tokenizer.ggml.token_type", types);
  b.kv_u32("tokenizer.ggml.bos_token_id", 1);
  b.kv_u32("tokenizer.ggml.eos_token_id", 2);
  b.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  const uint64_t V = vocab.size(), d = s.d_model, F = s.d_mlp;
  const uint64_t q = s.n_heads * (d / s.n_heads), kv = s.n_kv_heads * (d / s.n_heads);
  float seed = 1.0f;
  auto add = [&](const std::string& name, std::vector<uint64_t> ne, bool norm = false) {
    seed += 1.0f;
    if (name == s.drop_tensor) return;
    if (auto it = s.shape_override.find(name); it != s.shape_override.end()) ne = it->second;
    uint64_t n = 1;
    for (uint64_t x : ne) n *= x;
    if (name == s.q8_1_tensor) {
      b.tensor_raw(name, ne, 9, std::vector<uint8_t>(n / 32 * 36));
      return;
    }
    if (name == s.q8_0_tensor) {
      b.tensor_raw(name, ne, 8, std::vector<uint8_t>(n / 32 * 34));
      return;
    }
    auto v = norm ? ones_ish(n, seed) : values(n, seed);
    if (name == s.nan_tensor) v[0] = std::nanf("");
    b.tensor_f32(name, ne, v);
  };
  add("token_embd.weight", {d, V});
  add("output_norm.weight", {d}, true);
  for (uint32_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {d}, true);
    add(p + "attn_q.weight", {d, q});
    add(p + "attn_k.weight", {d, kv});
    add(p + "attn_v.weight", {d, kv});
    add(p + "attn_output.weight", {q, d});
    add(p + "ffn_norm.weight", {d}, true);
    add(p + "ffn_gate.weight", {d, F});
    add(p + "ffn_up.weight", {d, F});
    add(p + "ffn_down.weight", {F, d});
  }
  if (s.extra) s.extra(b);
  return b;
}

std::vector<uint8_t> tiny_llama2c(const TinyLlamaSpec& s) {
  std::vector<uint8_t> out;
  const int32_t V = static_cast<int32_t>(tiny_vocab().size());
  const int32_t header[7] = {static_cast<int32_t>(s.d_model), static_cast<int32_t>(s.d_mlp),
                             static_cast<int32_t>(s.n_layers), static_cast<int32_t>(s.n_heads),
                             static_cast<int32_t>(s.n_kv_heads), V, static_cast<int32_t>(s.n_ctx)};
  GgufBuilder::raw(out, header, sizeof header);
  const uint64_t d = s.d_model, F = s.d_mlp, L = s.n_layers, dh = d / s.n_heads;
  const uint64_t q = s.n_heads * dh, kv = s.n_kv_heads * dh;
  float seed = 100.0f;
  auto add = [&](uint64_t n, bool norm = false) {
    seed += 1.0f;
    const auto v = norm ? ones_ish(n, seed) : values(n, seed);
    GgufBuilder::raw(out, v.data(), v.size() * 4);
  };
  add(static_cast<uint64_t>(V) * d);
  add(L * d, true);
  add(L * q * d);
  add(L * kv * d);
  add(L * kv * d);
  add(L * d * q);
  add(L * d, true);
  add(L * F * d);
  add(L * d * F);
  add(L * F * d);
  add(d, true);
  add(s.n_ctx * dh / 2);
  add(s.n_ctx * dh / 2);
  return out;
}

std::vector<uint8_t> tiny_llama2c_tokenizer() {
  std::vector<uint8_t> out;
  const int32_t max_len = 8;
  GgufBuilder::raw(out, &max_len, 4);
  int i = 0;
  for (std::string piece : tiny_vocab()) {
    if (piece == "<s>") piece = "\n<s>\n";
    if (piece == "</s>") piece = "\n</s>\n";
    std::string spaced;  // llama2.c files spell the SentencePiece space mark as a plain space
    for (size_t k = 0; k < piece.size(); ++k) {
      if (piece.compare(k, 3, "\xe2\x96\x81") == 0) {
        spaced += ' ';
        k += 2;
      } else {
        spaced += piece[k];
      }
    }
    piece = spaced;
    const float score = -static_cast<float>(i++);
    const auto len = static_cast<int32_t>(piece.size());
    GgufBuilder::raw(out, &score, 4);
    GgufBuilder::raw(out, &len, 4);
    out.insert(out.end(), piece.begin(), piece.end());
  }
  return out;
}

std::vector<uint8_t> safetensors_bytes(const std::map<std::string, SafeTensor>& tensors,
                                       const std::string& metadata_json) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_json.empty()) header["__metadata__"] = nlohmann::json::parse(metadata_json);
  std::vector<uint8_t> data;
  for (const auto& [name, t] : tensors) {
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h += ' ';
  std::vector<uint8_t> out;
  GgufBuilder::u64(out, h.size());
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

SafeTensor f32_tensor(std::vector<int64_t> shape, float seed) {
  uint64_t n = 1;
  for (int64_t x : shape) n *= static_cast<uint64_t>(x);
  const auto v = values(n, seed);
  SafeTensor t{"F32", std::move(shape), std::vector<uint8_t>(n * 4)};
  std::memcpy(t.bytes.data(), v.data(), n * 4);
  return t;
}

void write_file(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                           static_cast<std::streamsize>(bytes.size()));
}

void write_file(const std::filesystem::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

}  // namespace reslens::test
