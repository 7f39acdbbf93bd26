// ModelConfig: the hyperparameters of a loaded model, named as TransformerLens names them
// (n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, n_ctx, act_fn, normalization_type, ...).
#pragma once

#include <cstdint>
#include <string>

namespace reslens {

/// The block structure reslens runs. Every supported file format maps onto one of these.
enum class Architecture {
  kLlama,  ///< RMSNorm, rotary positions, gated SiLU MLP, optional QKV biases (Qwen2).
  kGpt2,   ///< LayerNorm with bias, learned positions, GELU (tanh form) MLP, biases everywhere.
};

enum class NormType { kLayerNorm, kRmsNorm };
enum class ActFn { kGeluNew, kSilu };
enum class PositionalEmbedding { kStandard, kRotary };

/// Where each rotary pair sits inside a head's query/key vector.
enum class RopeLayout {
  kHalf,         ///< Hugging Face rotate_half: dims (i, i + d_head/2) form a pair.
  kInterleaved,  ///< llama.cpp/GGUF and llama2.c: dims (2i, 2i+1) form a pair.
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string original_architecture;  ///< As the file names it: "llama", "gpt2", "LlamaForCausalLM".
  std::string model_name;             ///< general.name or the folder name.

  int64_t n_layers = 0;
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_key_value_heads = 0;  ///< == n_heads without grouped-query attention.
  int64_t d_head = 0;
  int64_t d_mlp = 0;
  int64_t d_vocab = 0;
  int64_t n_ctx = 0;  ///< Context window (positions the model accepts).

  NormType normalization_type = NormType::kRmsNorm;
  float eps = 1e-5f;
  ActFn act_fn = ActFn::kSilu;
  bool gated_mlp = true;
  PositionalEmbedding positional_embedding_type = PositionalEmbedding::kRotary;
  float rotary_base = 10000.0f;
  int64_t rotary_dim = 0;  ///< Dimensions of each head that rotate (== d_head for Llama).
  RopeLayout rope_layout = RopeLayout::kInterleaved;
  bool tied_embeddings = false;  ///< W_U is W_E (one matrix in the file).

  bool has_qkv_bias() const { return architecture == Architecture::kGpt2 || qkv_bias; }
  bool qkv_bias = false;  ///< Llama-family models with Q/K/V biases (Qwen2).

  std::string dtype;  ///< Storage type of the weights in the file: "F32", "F16", "BF16", "Q8_0", "mixed".
};

/// TransformerLens spellings of the enums ("LN"/"RMS", "gelu_new"/"silu", "standard"/"rotary").
const char* to_string(Architecture a);
const char* to_string(NormType n);
const char* to_string(ActFn a);
const char* to_string(PositionalEmbedding p);
const char* to_string(RopeLayout r);

}  // namespace reslens
