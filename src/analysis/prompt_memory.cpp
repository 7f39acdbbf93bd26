// What explaining a prompt adds to the model's weights in memory, and the guard that refuses a prompt
// whose explanation cannot fit. The formula is docs/benchmarks.md's ("Memory per prompt"), which
// bench/prompt_memory.py checks against the peak RSS of real runs up to 4096 tokens.
#include <cstdint>
#include <string>

#include "core/memory.h"
#include "reslens/error.h"
#include "reslens/explain_request.h"
#include "reslens/run.h"

namespace reslens {

PromptMemory explain_prompt_memory(const ModelConfig& c, int64_t n_tokens, int64_t n_explained, int n_threads) {
  const int64_t T = n_tokens, L = c.n_layers, d = c.d_model, N = c.d_mlp, H = c.n_heads;
  const int64_t qd = c.n_heads * c.d_head, kv = c.n_key_value_heads * c.d_head;
  const int64_t threads = n_threads > 0 ? n_threads : default_threads();
  constexpr int64_t f32 = sizeof(float), f64 = sizeof(double);
  PromptMemory m;
  // explain_capture(): five residual-sized hooks (resid_pre, attn_out, resid_mid, mlp_out,
  // resid_post), the coefficients (mlp.hook_post), the values (attn.hook_v), the explained rows of
  // hook_pattern, and the post-sublayer norm scales of post-norm models.
  m.captures = f32 * L * T * (5 * d + N + kv + H * n_explained + (c.post_norm ? 2 : 0));
  // The forward pass's buffers, reused from layer to layer: the residual stream and a sublayer's
  // input, q, k, v, z, the two sublayer outputs, gate / up / coefficients (and GPT-NeoX's block
  // input); then one head's [T, T] scores per thread.
  m.forward = f32 * T * (4 * d + (c.parallel_residual ? d : 0) + 2 * qd + 2 * kv + 3 * N) + f32 * threads * T * T;
  // explain()'s per-source-position arrays in float64, per explained position: head_position and
  // attn_weight [L, H, T], attn_neuron and attn_coef [L, H, d_head, T].
  m.explain_arrays = f64 * L * T * (2 * H + 2 * qd) * n_explained;
  return m;
}

void require_memory_for_prompt(const Model& model, int64_t n_tokens, int64_t n_explained, int n_threads) {
  const int64_t available = memory_available();
  if (available < 0) return;
  const PromptMemory m = explain_prompt_memory(model.config(), n_tokens, n_explained, n_threads);
  if (m.total() <= available) return;
  throw UnsupportedError("explaining " + std::to_string(n_tokens) + " tokens of this model needs about " +
                         size_text(m.total()) + " besides its weights (captures " + size_text(m.captures) +
                         ", forward pass " + size_text(m.forward) + ", per-position scores " +
                         size_text(m.explain_arrays) + "), more than the " + size_text(available) +
                         " of memory available (a shorter prompt; RESLENS_MEMORY_AVAILABLE=BYTES overrides the figure)");
}

}  // namespace reslens
