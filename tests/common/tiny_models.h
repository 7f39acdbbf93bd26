// Tiny, valid model files built in memory for loader and error tests: a 1-layer Llama GGUF with a
// 12-token SentencePiece-style vocabulary, a llama2.c checkpoint, and a safetensors writer. Each
// builder takes knobs to break one thing at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/gguf_builder.h"

namespace reslens::test {

struct TinyLlamaSpec {
  std::string architecture = "llama";
  uint32_t n_layers = 1;
  uint32_t d_model = 8, n_heads = 2, n_kv_heads = 1, d_mlp = 12, n_ctx = 16;
  std::map<std::string, std::vector<uint64_t>> shape_override;  ///< tensor name -> ggml ne
  std::string drop_tensor;                                      ///< leave this tensor out
  std::string q8_1_tensor;                                      ///< store this one as Q8_1 (not loadable)
  std::string q8_0_tensor;                                      ///< store this one as Q8_0 (zero blocks)
  std::string nan_tensor;                                       ///< put a NaN into this one
  std::function<void(GgufBuilder&)> extra;                      ///< adds keys or tensors after the rest
};

/// The vocabulary used by the tiny models (pieces with ▁ for spaces).
std::vector<std::string> tiny_vocab();

GgufBuilder tiny_llama_gguf(const TinyLlamaSpec& spec = {});

/// llama2.c legacy checkpoint bytes of the same shapes (vocab 12, shared classifier).
std::vector<uint8_t> tiny_llama2c(const TinyLlamaSpec& spec = {});
/// A llama2.c tokenizer file for tiny_vocab().
std::vector<uint8_t> tiny_llama2c_tokenizer();

/// Writes a safetensors file: name -> (dtype, shape, raw bytes). Offsets are laid out in order.
struct SafeTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
std::vector<uint8_t> safetensors_bytes(const std::map<std::string, SafeTensor>& tensors,
                                       const std::string& metadata_json = "");
SafeTensor f32_tensor(std::vector<int64_t> shape, float seed);

void write_file(const std::filesystem::path& p, const std::vector<uint8_t>& bytes);
void write_file(const std::filesystem::path& p, const std::string& text);

}  // namespace reslens::test
