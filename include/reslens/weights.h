// Read-only views of a model's weights, named as TransformerLens names them. Every matrix is stored
// the way nn.Linear stores it, [out, in] with `in` contiguous, because that is what the matmul
// kernels read; where TransformerLens's own layout differs (W_U is [d_model, d_vocab] there), the
// comment says so. Views point into memory-mapped files or into buffers the Model owns, and stay
// valid as long as the Model does.
#pragma once

#include <cstdint>
#include <vector>

namespace reslens {

/// A row-major matrix view with a row stride (`ld`, in floats). rows x cols, row r at data + r * ld.
struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;

  const float* row(int64_t r) const { return data + r * ld; }
  float at(int64_t r, int64_t c) const { return data[r * ld + c]; }
  bool empty() const { return data == nullptr; }
  /// Rows [begin, begin + count) as their own view.
  MatrixView rows_slice(int64_t begin, int64_t count) const { return {data + begin * ld, count, cols, ld}; }
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
