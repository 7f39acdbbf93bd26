// Read-only views of a model's weights, named as TransformerLens names them. Every matrix is stored
// the way nn.Linear stores it, [out, in] with `in` contiguous, because that is what the matmul
// kernels read; where TransformerLens's own layout differs (W_U is [d_model, d_vocab] there), the
// comment says so. Views point into memory-mapped files or into buffers the Model owns, and stay
// valid as long as the Model does.
#pragma once

#include <cstdint>
#include <vector>

namespace reslens {

/// How a matrix's elements are held in memory: the model file's own encoding. Matrices stay as the
/// file stores them (F16, BF16, llama.cpp's block quantizations) and are dequantized a few rows at a
/// time where they are read, with exactly the float32 values a whole conversion would give, so a 7B
/// model takes its file's size in memory rather than 4 bytes per weight (docs/formats.md).
enum class WeightEncoding : uint8_t {
  kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kIQ4_NL, kIQ4_XS
};

namespace detail {
[[noreturn]] void packed_matrix_read_as_float();
}  // namespace detail

/// A row-major matrix view, rows x cols. Either float32 rows (`data`, row stride `ld` floats) or rows
/// encoded as the file stores them (`packed`, row stride `ld_bytes` bytes, `encoding`; data is null).
/// Code that reads weights goes through src/model/weight_rows.h (rows decoded into float32, matrix
/// products that decode tiles on the fly); row() and at() are for float32 views only.
struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;
  const uint8_t* packed = nullptr;
  int64_t ld_bytes = 0;
  WeightEncoding encoding = WeightEncoding::kF32;

  bool is_float() const { return packed == nullptr; }
  const float* row(int64_t r) const {
    if (data == nullptr && packed != nullptr) detail::packed_matrix_read_as_float();
    return data + r * ld;
  }
  float at(int64_t r, int64_t c) const { return row(r)[c]; }
  bool empty() const { return data == nullptr && packed == nullptr; }
  /// Rows [begin, begin + count) as their own view.
  MatrixView rows_slice(int64_t begin, int64_t count) const {
    MatrixView v = *this;
    v.rows = count;
    if (packed != nullptr) v.packed = packed + begin * ld_bytes;
    else v.data = data + begin * ld;
    return v;
  }
};

/// A contiguous vector view. Empty (data == nullptr) when the model has no such parameter.
struct VectorView {
  const float* data = nullptr;
  int64_t size = 0;

  float operator[](int64_t i) const { return data[i]; }
  bool empty() const { return data == nullptr; }
};

/// One transformer block. Norm biases and linear biases are empty for Llama-family models.
struct LayerWeights {
  VectorView ln1_w, ln1_b;  ///< [d_model] attention-input norm (TL `ln1`)
  MatrixView W_Q;           ///< [n_heads * d_head, d_model]; rows in the model's RopeLayout
  MatrixView W_K;           ///< [n_kv_heads * d_head, d_model]; rows in the model's RopeLayout
  MatrixView W_V;           ///< [n_kv_heads * d_head, d_model]
  VectorView b_Q, b_K, b_V;
  VectorView q_norm_w;  ///< [d_head] RMSNorm of each query head before RoPE (Qwen3); empty otherwise
  VectorView k_norm_w;  ///< [d_head] RMSNorm of each key head before RoPE (Qwen3); empty otherwise
  MatrixView W_O;  ///< [d_model, n_heads * d_head]; column h*d_head+n is attention neuron (h, n)'s
                   ///< value vector (with a post-norm: its weights folded in, see ModelConfig::post_norm)
  MatrixView W_O_raw;    ///< post-norm models: W_O as stored, which the forward pass multiplies by
  VectorView post_attn_norm_w;  ///< [d_model] post-attention RMSNorm weight (post-norm models)
  VectorView b_O;  ///< [d_model]
  VectorView ln2_w, ln2_b;  ///< [d_model] MLP-input norm (TL `ln2`)
  MatrixView W_in;          ///< [d_mlp, d_model] GPT-2 c_fc / Llama up_proj
  MatrixView W_gate;        ///< [d_mlp, d_model] Llama gate_proj (empty for GPT-2)
  MatrixView W_router;      ///< [n_experts, d_model] mixture-of-experts router (empty for dense MLPs); the
                            ///< experts' gate/up rows and down columns are concatenated in W_gate/W_in/W_out
  VectorView shared_expert_gate;  ///< [d_model] sigmoid gate of the shared expert (Qwen2-MoE; else empty)
  VectorView b_in;          ///< [d_mlp]
  MatrixView W_out;         ///< [d_model, d_mlp]; column k is FFN neuron k's value vector (fc2_k)
  MatrixView W_out_raw;     ///< post-norm models: W_out as stored
  VectorView post_ffn_norm_w;  ///< [d_model] post-MLP RMSNorm weight (post-norm models)
  VectorView b_out;         ///< [d_model]
};

struct ModelWeights {
  MatrixView W_E;    ///< [d_vocab, d_model] token embeddings
  MatrixView W_pos;  ///< [n_ctx, d_model] learned positions (GPT-2; empty for rotary models)
  std::vector<LayerWeights> layers;
  VectorView ln_final_w, ln_final_b;  ///< [d_model]
  MatrixView W_U;  ///< [d_vocab, d_model] unembedding rows (TL's W_U transposed); == W_E when tied
  VectorView b_U;  ///< [d_vocab] (empty for every supported model)
};

}  // namespace reslens
