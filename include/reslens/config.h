// ModelConfig: the hyperparameters of a loaded model, named as TransformerLens names them
// (n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, n_ctx, act_fn, normalization_type, ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reslens/rope.h"  // RopeLayout, RopeScaling

namespace reslens {

/// The block structure reslens runs. Every supported file format maps onto one of these.
enum class Architecture {
  kLlama,  ///< RMSNorm, rotary positions, gated SiLU MLP; optional attention biases (Qwen2), q/k norms
           ///< (Qwen3), partial rotation (Phi-3/4), GeGLU and a scaled embedding (Gemma). Qwen2/3,
           ///< Phi-3 and Gemma run as this graph.
  kGpt2,   ///< LayerNorm with bias, learned positions, GELU (tanh form) MLP, biases everywhere.
  kGptNeoX,  ///< GPT-NeoX / Pythia: GPT-2's LayerNorms, biases and GELU MLP with partial rotary positions
             ///< (rotate_half pairs) and, usually, a parallel residual.
};

enum class NormType { kLayerNorm, kRmsNorm };
enum class ActFn {
  kGeluNew,  ///< tanh-form GELU (GPT-2's gelu_new, transformers' gelu_pytorch_tanh, ggml's gelu)
  kSilu,
  kGeluErf,  ///< exact GELU, x * Phi(x) (transformers' "gelu": GPT-NeoX / Pythia checkpoints)
};
enum class PositionalEmbedding { kStandard, kRotary };

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
  /// Sliding-window attention (Gemma 2/3's local layers; Mistral; Qwen2 with use_sliding_window): each
  /// query sees at most this many keys. Applied where window_applied says so; otherwise sequences up
  /// to the window (which attend exactly as full causal attention) run and longer ones are refused.
  /// 0: no window.
  int64_t sliding_window = 0;

  NormType normalization_type = NormType::kRmsNorm;
  float eps = 1e-5f;
  ActFn act_fn = ActFn::kSilu;  ///< with gated_mlp: kSilu = SwiGLU (Llama), kGeluNew = GeGLU (Gemma)
  bool gated_mlp = true;
  /// The token embedding is multiplied by this before the first block (Gemma: sqrt(d_model), as a
  /// float); the unembedding, when tied, uses the unscaled matrix.
  float embedding_scale = 1.0f;
  /// GPT-NeoX's parallel residual: x + attn(ln1(x)) + mlp(ln2(x)), the MLP reading the block input
  /// rather than x + attn. hook_resid_mid is still x + attn(ln1(x)) (the point between the two
  /// additions, so that the decomposition and the layer scores telescope as for sequential blocks).
  bool parallel_residual = false;
  /// Mixture of experts (Mixtral; Qwen3-MoE): every block's MLP is n_experts gated experts of
  /// d_expert neurons each, of which a softmax router picks n_experts_used per token (their weights
  /// renormalised to sum to 1 when moe_norm_topk). reslens runs such an MLP as one of d_mlp =
  /// n_experts * d_expert neurons: neuron e * d_expert + k is expert e's neuron k, its coefficient
  /// (hook_post) includes the router weight and is 0 where the expert was not picked, so every FFN
  /// neuron score of the paper applies unchanged. 0: a dense MLP.
  int64_t n_experts = 0;
  int64_t n_experts_used = 0;
  int64_t d_expert = 0;
  bool moe_norm_topk = true;
  /// Qwen2-MoE: a shared expert of this many neurons that every token uses, its output scaled by
  /// sigmoid(x . shared_expert_gate). Its neurons follow the routed ones: d_mlp = n_experts * d_expert +
  /// d_shared_expert, and its coefficients include that gate. 0: none.
  int64_t d_shared_expert = 0;
  PositionalEmbedding positional_embedding_type = PositionalEmbedding::kRotary;
  float rotary_base = 10000.0f;
  int64_t rotary_dim = 0;  ///< Dimensions of each head that rotate (== d_head for Llama).
  RopeLayout rope_layout = RopeLayout::kInterleaved;
  RopeScaling rope_scaling;
  /// Gemma 3: the layers marked 1 here attend locally (a sliding window) and rotate with their own
  /// base, rotary_base_local, and no scaling; the others with rotary_base and rope_scaling. Empty: none.
  std::vector<uint8_t> local_layers;
  float rotary_base_local = 10000.0f;
  /// Attention scores are q.k times this; 0 means 1/sqrt(d_head) (Gemma 3: query_pre_attn_scalar^-1/2).
  float attn_scale = 0.0f;
  /// Gemma 2's softcaps: attention scores become c * tanh(score / c) before the causal mask and the
  /// softmax (hook_attn_scores holds the capped scores), and the logits c * tanh(logit / c) after the
  /// unembedding. The attribution applies the final cap to every state's logits (docs/explain.md,
  /// "Family features"). 0: no cap.
  float attn_softcap = 0.0f;
  float final_softcap = 0.0f;
  /// Whether the pass applies sliding_window (Gemma 2 and 3; Mistral directories): on a windowed
  /// layer (window_of) query i sees keys j with i - sliding_window < j <= i, as llama.cpp's
  /// LLAMA_SWA_TYPE_STANDARD mask. False (Phi-3, Qwen2 and GGUF llama files, where llama.cpp and
  /// transformers disagree or the layers are not known): sequences longer than the window are refused.
  bool window_applied = false;
  /// The sliding window of `layer` when the pass applies one (local_layers, or every layer when that
  /// is empty), else 0: full causal attention.
  int64_t window_of(int64_t layer) const {
    if (!window_applied || sliding_window <= 0) return 0;
    if (local_layers.empty()) return sliding_window;
    return local_layers[static_cast<size_t>(layer)] != 0 ? sliding_window : 0;
  }
  bool tied_embeddings = false;  ///< W_U is W_E (one matrix in the file).

  bool has_qkv_bias() const { return architecture == Architecture::kGpt2 || qkv_bias; }
  bool has_o_bias() const { return architecture == Architecture::kGpt2 || o_bias; }
  bool qkv_bias = false;  ///< Llama-family models with Q/K/V biases (Qwen2; Llama with attention biases).
  bool o_bias = false;    ///< Llama-family models with an attention-output bias b_O.
  /// Queries and keys pass a per-head RMSNorm (weights [d_head], eps = `eps`) before RoPE (Qwen3).
  bool qk_norm = false;
  /// OLMo 2: queries and keys pass one RMSNorm over the whole projection (weights [n_heads * d_head]
  /// and [n_kv_heads * d_head]) before RoPE, instead of per head.
  bool qk_norm_full = false;
  /// Sublayers read a normalised residual stream (ln1, ln2). False for OLMo 2, whose attention and
  /// MLP read the residual stream itself and normalise their outputs instead (post_norm).
  bool pre_norm = true;
  /// OLMo 2: each sublayer's output passes an RMSNorm before it is added to the residual stream
  /// (weights post_attn_norm_w / post_ffn_norm_w). For the attribution its scale is frozen at its
  /// real value, as the final norm's is: the output is then linear in the heads and neurons. W_O and
  /// W_out hold the norm weights folded in (each row scaled), so their columns are the value vectors
  /// the residual stream sees; the coefficients (TraceView) are divided by the frozen scale.
  bool post_norm = false;

  /// Storage type of the weight matrices in the file: "F32", "F16", "BF16", a quantized type ("Q8_0",
  /// "Q4_K", "IQ4_XS", ...: src/model/storage.h), or "mixed (Q4_K, Q6_K)" when they differ.
  std::string dtype;
};

/// TransformerLens spellings of the enums ("LN"/"RMS", "gelu_new"/"silu", "standard"/"rotary").
const char* to_string(Architecture a);
const char* to_string(NormType n);
const char* to_string(ActFn a);
const char* to_string(PositionalEmbedding p);
const char* to_string(RopeLayout r);

}  // namespace reslens
