// The forward pass. Reads top to bottom like the math (spec §1.2/§1.3):
//   x = embed(tokens) (* sqrt(d_model): Gemma) (+ pos_embed)   hook_embed, hook_pos_embed, resid_pre
//   per layer: a = norm1(x); q,k,v = a W^T (+b); (q,k per-head RMSNorm: Qwen3); rope; pattern = softmax(q k^T / sqrt(d_head));
//              z = pattern v; x += z W_O^T + b_O        attn_out, resid_mid
//              b = norm2(x); m = act(b W_in^T + b_in), or act(b W_gate^T) * (b W_in^T) when gated
//              (SiLU: Llama; tanh GELU: Gemma); x += m W_out^T + b_out
//              (parallel residual, GPT-NeoX: b = norm2 of the block input, not of x + attention)
//   (OLMo 2: no norm1/norm2, the sublayers read x; their outputs pass an RMSNorm before the additions)
//   logits = norm_final(x) W_U^T   (Gemma 2: then c * tanh(logits / c); its attention scores likewise)
// forward() at the bottom is that loop, one named step per line (embed, sublayer_input, attention,
// mlp, unembed); the steps are defined above it in the order they run, and the interventions are steps
// of their own (ablate_heads, remove_source_shares, ablate_ffn_neurons).
// Every reduction has a fixed order and work is split over independent outputs only, so results are
// bit-identical for any thread count, and a position's values never depend on later positions.
#include "forward/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/activation.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/softmax.h"
#include "reslens/error.h"

namespace reslens {

void validate_tokens(const Model& model, std::span<const int32_t> tokens, int64_t pos0) {
  const ModelConfig& c = model.config();
  if (tokens.empty()) throw InvalidArgument("the token sequence is empty (nothing to run)");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.d_vocab) {
      throw OutOfRange("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                       " is outside the vocabulary (0.." + std::to_string(c.d_vocab - 1) + ")");
    }
  }
  const int64_t n = pos0 + static_cast<int64_t>(tokens.size());
  if (c.sliding_window > 0 && !c.window_applied && n > c.sliding_window) {
    throw UnsupportedError("the sequence has " + std::to_string(n) + " tokens but the model attends within a " +
                           "sliding window of " + std::to_string(c.sliding_window) +
                           ", which reslens does not apply: at most " + std::to_string(c.sliding_window) +
                           " tokens are computed exactly");
  }
  if (pos0 + static_cast<int64_t>(tokens.size()) > c.n_ctx) {
    throw InvalidArgument("the sequence has " + std::to_string(pos0 + static_cast<int64_t>(tokens.size())) +
                          " tokens but the model's context window is " + std::to_string(c.n_ctx));
  }
}

void validate_pattern_rows(std::span<const int64_t> rows, int64_t n_positions) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= n_positions) {
      throw OutOfRange("pattern row " + std::to_string(rows[i]) + " is out of range (0.." +
                       std::to_string(n_positions - 1) + ")");
    }
    if (i > 0 && rows[i] <= rows[i - 1]) {
      throw InvalidArgument("pattern rows must be strictly ascending (" + std::to_string(rows[i - 1]) + " then " +
                            std::to_string(rows[i]) + ")");
    }
  }
}

void validate_intervention(const Model& model, const Intervention& iv, int64_t n_positions) {
  const ModelConfig& c = model.config();
  auto check = [](int64_t v, int64_t n, const char* what) {
    if (v < 0 || v >= n) {
      throw OutOfRange(std::string(what) + " " + std::to_string(v) + " is out of range (0.." +
                       std::to_string(n - 1) + ")");
    }
  };
  for (const auto& f : iv.ffn_neurons) {
    check(f.layer, c.n_layers, "layer");
    check(f.neuron, c.d_mlp, "FFN neuron");
  }
  for (const auto& a : iv.attn_neurons) {
    check(a.layer, c.n_layers, "layer");
    check(a.head, c.n_heads, "head");
    check(a.dim, c.d_head, "head dimension");
    if (a.source_pos != -1) {
      if (iv.position < 0) {
        throw InvalidArgument("an attention neuron with a source position needs an activation-level "
                              "intervention (a query position)");
      }
      check(a.source_pos, n_positions, "source position");
    }
  }
  for (const auto& h : iv.heads) {
    check(h.layer, c.n_layers, "layer");
    check(h.head, c.n_heads, "head");
  }
  if (iv.position != -1) check(iv.position, n_positions, "intervention position");
}

namespace {

// A float buffer of rows x cols; rows are positions unless stated. Pooled storage (tensor.h): the
// next run reuses these blocks instead of faulting in fresh pages.
struct Buf {
  std::vector<float, DefaultInitAllocator<float>> v;
  int64_t cols = 0;
  void resize(int64_t rows, int64_t c) {
    cols = c;
    v.assign(static_cast<size_t>(rows * c), 0.0f);
  }
  float* row(int64_t r) { return v.data() + r * cols; }
  const float* row(int64_t r) const { return v.data() + r * cols; }
  float* data() { return v.data(); }
  const float* data() const { return v.data(); }
};

// What the pass does at a hook point: runs the forward hooks on it (they may replace the values the
// rest of the pass reads), then records it when the run's filter asks for it.
class Recorder {
 public:
  Recorder(const HookFilter* filter, ActivationCache* cache, HookRunner* hooks)
      : filter_(filter), cache_(cache), hooks_(hooks) {}
  bool wants(Hook h, int layer) const {
    return filter_ != nullptr && cache_ != nullptr && filter_->wants(HookName{h, layer});
  }
  // One branch when the run has no forward hooks.
  bool hooked(Hook h, int layer) const { return hooks_ != nullptr && hooks_->wants(h, layer); }
  // Runs the forward hooks of (h, layer) on data ([shape], read back by the pass) in place.
  void hook(Hook h, int layer, const std::vector<int64_t>& shape, float* data) {
    if (!hooked(h, layer)) return;
    int64_t n = 1;
    for (const int64_t e : shape) n *= e;
    hooks_->call(h, layer, shape, {data, static_cast<size_t>(n)});
  }
  // A hook point the pass reads back: hooks first, then the (possibly replaced) values recorded.
  void pass(Hook h, int layer, std::vector<int64_t> shape, float* data) {
    hook(h, layer, shape, data);
    put(h, layer, std::move(shape), data);
  }
  // A norm scale, which the pass does not read back: hooks may read it but not change it.
  void pass_read_only(Hook h, int layer, std::vector<int64_t> shape, const float* data) {
    if (hooked(h, layer)) {
      int64_t n = 1;
      for (const int64_t e : shape) n *= e;
      hooks_->call_read_only(h, layer, shape, {data, static_cast<size_t>(n)});
    }
    put(h, layer, std::move(shape), data);
  }
  // Copies a contiguous block into a new cache tensor.
  void put(Hook h, int layer, std::vector<int64_t> shape, const float* data) {
    if (!wants(h, layer)) return;
    Tensor t = Tensor::uninitialized(std::move(shape));
    std::memcpy(t.data(), data, static_cast<size_t>(t.numel()) * sizeof(float));
    cache_->put({h, layer}, std::move(t));
  }
  Tensor* make(Hook h, int layer, std::vector<int64_t> shape) {
    if (!wants(h, layer)) return nullptr;
    return &cache_->put({h, layer}, Tensor::uninitialized(std::move(shape)));  // callers write every element
  }

 private:
  const HookFilter* filter_;
  ActivationCache* cache_;
  HookRunner* hooks_;
};

// y[t] = x[t] W^T (+ b): [T, out] from [T, in] with W [out, in].
void linear(Buf& y, const Buf& x, int64_t T, const MatrixView& W, const VectorView& b, int threads) {
  y.resize(T, W.rows);
  matmul_weights(T, x.data(), x.cols, W, y.data(), y.cols, threads);  // decodes W's tiles when encoded
  if (!b.empty()) {
    for (int64_t t = 0; t < T; ++t) {
      float* r = y.row(t);
      for (int64_t i = 0; i < W.rows; ++i) r[i] += b[i];
    }
  }
}

// Non-finite activations come from non-finite (or overflowing) weights. The pass stops at the first
// place the residual stream stops being finite, naming the weight that holds a NaN or Inf when one
// does, rather than letting predict print nan% or explain attribute garbage.
bool finite(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}
bool finite(const MatrixView& m) {
  std::vector<float> row;  // [cols] a decoded row of an encoded matrix
  for (int64_t r = 0; r < m.rows; ++r) {
    if (!finite(row_floats(m, r, row), m.cols)) return false;
  }
  return true;
}

[[noreturn]] void non_finite(const Model& model, const std::string& where,
                             std::initializer_list<std::pair<const char*, const MatrixView*>> matrices,
                             std::initializer_list<std::pair<const char*, const VectorView*>> vectors) {
  const std::string src = model.path().string();
  for (const auto& [name, m] : matrices) {
    if (!m->empty() && !finite(*m)) throw FormatError(src + ": weight " + where + name + " holds NaN or Inf values");
  }
  for (const auto& [name, v] : vectors) {
    if (!v->empty() && !finite(v->data, v->size)) {
      throw FormatError(src + ": weight " + where + name + " holds NaN or Inf values");
    }
  }
  throw FormatError(src + ": the activations stop being finite at " + where +
                    " (the weights are finite but overflow float32 there)");
}

void require_finite_layer(const Model& model, const Buf& x, int64_t T, int layer) {
  if (finite(x.data(), T * x.cols)) return;
  const LayerWeights& L = model.weights().layers[static_cast<size_t>(layer)];
  non_finite(model, "blocks." + std::to_string(layer) + ".",
             {{"attn.W_Q", &L.W_Q}, {"attn.W_K", &L.W_K}, {"attn.W_V", &L.W_V}, {"attn.W_O", &L.W_O},
              {"mlp.W_gate", &L.W_gate}, {"mlp.W_in", &L.W_in}, {"mlp.W_out", &L.W_out}, {"mlp.W_router", &L.W_router}},
             {{"ln1.w", &L.ln1_w}, {"ln1.b", &L.ln1_b}, {"attn.b_Q", &L.b_Q}, {"attn.b_K", &L.b_K},
              {"attn.b_V", &L.b_V}, {"attn.b_O", &L.b_O}, {"attn.q_norm.w", &L.q_norm_w}, {"attn.k_norm.w", &L.k_norm_w},
              {"ln1_post.w", &L.post_attn_norm_w}, {"ln2.w", &L.ln2_w}, {"ln2.b", &L.ln2_b}, {"mlp.b_in", &L.b_in},
              {"mlp.b_out", &L.b_out}, {"ln2_post.w", &L.post_ffn_norm_w}});
}

// The model's GELU in place: the exact (erf) form, or the tanh form, exactly or through llama.cpp's
// fp16 table to reproduce its goldens.
void gelu_in_place(float* x, int64_t n, ActFn act, bool ggml_table) {
  if (act == ActFn::kGeluErf) {
    ops::gelu_erf(x, n);
  } else if (ggml_table) {
    ops::gelu_ggml_table(x, n);
  } else {
    ops::gelu_new(x, n);
  }
}

// Mixture of experts: scales each expert's neurons in post [T, n_experts * d_expert] by its router
// weight, and zeroes the experts the router did not pick (llama.cpp's build_moe_ffn with softmax
// gating: softmax over all experts, the n_experts_used most probable, their probabilities divided by
// their sum when moe_norm_topk; ties go to the lower index). x: the MLP input [T, d_model].
void route_experts(Buf& post, const Buf& x, int64_t T, const MatrixView& W_router, const VectorView& shared_gate,
                   const ModelConfig& c, int threads) {
  const int64_t E = c.n_experts, K = c.n_experts_used, F = c.d_expert;
  Buf logits;
  linear(logits, x, T, W_router, {}, threads);  // [T, n_experts]
  parallel_for(threads, T, [&](int64_t t0, int64_t t1) {
    std::vector<float> p(static_cast<size_t>(E));
    std::vector<int64_t> order(static_cast<size_t>(E));
    for (int64_t t = t0; t < t1; ++t) {
      std::copy(logits.row(t), logits.row(t) + E, p.begin());
      ops::softmax(p.data(), E);
      for (int64_t e = 0; e < E; ++e) order[static_cast<size_t>(e)] = e;
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)]; });
      std::vector<float> weight(static_cast<size_t>(E), 0.0f);
      float sum = 0.0f;
      for (int64_t i = 0; i < K; ++i) sum += p[static_cast<size_t>(order[static_cast<size_t>(i)])];
      for (int64_t i = 0; i < K; ++i) {
        const auto e = static_cast<size_t>(order[static_cast<size_t>(i)]);
        weight[e] = c.moe_norm_topk ? p[e] / sum : p[e];
      }
      float* row = post.row(t);
      for (int64_t e = 0; e < E; ++e) {
        for (int64_t k = 0; k < F; ++k) row[e * F + k] *= weight[static_cast<size_t>(e)];
      }
      if (c.d_shared_expert > 0) {  // Qwen2-MoE's shared expert, gated by sigmoid(x . g)
        double s = 0;
        for (int64_t i = 0; i < x.cols; ++i) s += static_cast<double>(x.row(t)[i]) * static_cast<double>(shared_gate[i]);
        const auto gate = static_cast<float>(1.0 / (1.0 + std::exp(-s)));
        for (int64_t k = 0; k < c.d_shared_expert; ++k) row[E * F + k] *= gate;
      }
    }
  });
}

// RMS-normalises every head of x: [T, heads * d_head] in place, with weights w: [d_head].
void rms_norm_heads(Buf& x, int64_t T, int64_t heads, int64_t d_head, const VectorView& w, float eps) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x.row(t) + h * d_head;
      ops::rms_norm(v, v, w.data, d_head, eps);
    }
  }
}

// A sublayer's output RMS-normalised in place before it joins the residual stream (OLMo 2), its
// scale recorded under `hook`: out = a / sqrt(mean(a^2) + eps) * w.
void post_normalize(Buf& out, int64_t T, const VectorView& w, float eps, Recorder& rec, Hook hook, int layer) {
  std::vector<float> scale(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) scale[static_cast<size_t>(t)] = ops::rms_norm(out.row(t), out.row(t), w.data, out.cols, eps);
  rec.pass_read_only(hook, layer, {T, 1}, scale.data());
}

// Normalises rows of x into y and returns each row's scale.
std::vector<float> normalize(Buf& y, const Buf& x, int64_t T, const ModelConfig& c, const VectorView& w,
                             const VectorView& b, int threads) {
  y.resize(T, x.cols);
  std::vector<float> scale(static_cast<size_t>(T));
  parallel_for(threads, T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      scale[static_cast<size_t>(t)] =
          c.normalization_type == NormType::kLayerNorm
              ? ops::layer_norm(y.row(t), x.row(t), w.data, b.data, x.cols, c.eps)
              : ops::rms_norm(y.row(t), x.row(t), w.data, x.cols, c.eps);
    }
  });
  return scale;
}

// Runs the forward hooks of a q/k/v-style point on x [T, heads * d_head] in place: they see
// [T, heads, d_head] in rotate_half order, as the point is recorded (record_heads below), and what
// they leave is put back in the file's layout for the rest of the pass.
void hook_heads(Recorder& rec, Hook h, int layer, Buf& x, int64_t T, int64_t heads, const ModelConfig& c) {
  if (!rec.hooked(h, layer)) return;
  const bool permute = c.positional_embedding_type == PositionalEmbedding::kRotary &&
                       c.rope_layout == RopeLayout::kInterleaved && h != Hook::kV;  // as record_heads
  std::vector<float> t(static_cast<size_t>(T * heads * c.d_head));  // [T, heads, d_head]
  for (int64_t p = 0; p < T; ++p) {
    for (int64_t i = 0; i < heads; ++i) {
      float* src = x.row(p) + i * c.d_head;
      float* dst = t.data() + (p * heads + i) * c.d_head;
      if (permute) {
        ops::interleaved_to_half(dst, src, c.d_head, c.rotary_dim);
      } else {
        std::memcpy(dst, src, static_cast<size_t>(c.d_head) * sizeof(float));
      }
    }
  }
  rec.hook(h, layer, {T, heads, c.d_head}, t.data());
  for (int64_t p = 0; p < T; ++p) {
    for (int64_t i = 0; i < heads; ++i) {
      const float* src = t.data() + (p * heads + i) * c.d_head;
      float* dst = x.row(p) + i * c.d_head;
      if (permute) {
        ops::half_to_interleaved(dst, src, c.d_head, c.rotary_dim);
      } else {
        std::memcpy(dst, src, static_cast<size_t>(c.d_head) * sizeof(float));
      }
    }
  }
}

// Records q/k-style [T, heads, d_head] activations, in Hugging Face rotate_half order whatever the
// file's layout, so hook_q/hook_k mean the same thing for every format (TransformerLens's layout).
void record_heads(Recorder& rec, Hook h, int layer, const Buf& x, int64_t T, int64_t heads,
                  const ModelConfig& c) {
  Tensor* t = rec.make(h, layer, {T, heads, c.d_head});
  if (t == nullptr) return;
  const bool permute = c.positional_embedding_type == PositionalEmbedding::kRotary &&
                       c.rope_layout == RopeLayout::kInterleaved &&
                       (h == Hook::kQ || h == Hook::kK || h == Hook::kRotQ || h == Hook::kRotK);
  for (int64_t p = 0; p < T; ++p) {
    for (int64_t i = 0; i < heads; ++i) {
      const float* src = x.row(p) + i * c.d_head;
      float* dst = t->data() + (p * heads + i) * c.d_head;
      if (permute) {
        ops::interleaved_to_half(dst, src, c.d_head, c.rotary_dim);
      } else {
        std::memcpy(dst, src, static_cast<size_t>(c.d_head) * sizeof(float));
      }
    }
  }
}

// What every step of one pass reads: the model, the run's arguments and its sizes.
struct Pass {
  const Model& model;
  const ModelConfig& c;
  const ForwardArgs& a;
  const Intervention* iv;  // nullptr: no intervention
  Recorder& rec;
  int threads;
  int64_t T;  // positions computed in this pass
  int64_t S;  // keys visible to the last query: pos0 + T
  // Where query t's attention row goes in hook_attn_scores / hook_pattern ([n_heads, n_rows, S]):
  // row_slot[t], or -1 when the run does not keep it (ForwardArgs::pattern_rows).
  std::vector<int64_t> row_slot;
  int64_t n_rows;
};

// Every query's slot when the run keeps every row; otherwise the listed positions' slots, in order.
std::vector<int64_t> pattern_row_slots(std::span<const int64_t> rows, int64_t pos0, int64_t T) {
  std::vector<int64_t> slot(static_cast<size_t>(T), rows.empty() ? 0 : -1);
  if (rows.empty()) {
    for (int64_t t = 0; t < T; ++t) slot[static_cast<size_t>(t)] = t;
    return slot;
  }
  int64_t n = 0;
  for (int64_t r : rows) {
    if (r >= pos0 && r < pos0 + T) slot[static_cast<size_t>(r - pos0)] = n++;
  }
  return slot;
}

// Scratch buffers of one layer, kept across layers so their storage is reused.
struct Scratch {
  Buf xn;                    // [T, d_model] a sublayer's (normalised) input
  Buf block_in;              // [T, d_model] the block input (parallel residual)
  Buf q, k, v;               // [T, n_heads * d_head], [T, n_kv_heads * d_head] x2
  Buf z;                     // [T, n_heads * d_head] pattern-weighted values
  Buf attn_out, mlp_out;     // [T, d_model] the sublayers' outputs
  Buf pre, up, post;         // [T, d_mlp] gate (or input) projection, up projection, coefficients
};

// cos/sin tables for the pass's positions: the model's, and Gemma 3's local layers' (own base, no
// scaling). Empty for learned positions.
struct RopeTables {
  ops::RopeTable global, local;
  const ops::RopeTable& for_layer(const ModelConfig& c, int64_t l) const {
    const bool is_local = !c.local_layers.empty() && c.local_layers[static_cast<size_t>(l)] != 0;
    return is_local ? local : global;
  }
};

RopeTables make_rope_tables(const Pass& p) {
  const ModelConfig& c = p.c;
  RopeTables r;
  if (c.positional_embedding_type == PositionalEmbedding::kRotary) {
    r.global = ops::make_rope_table(p.a.pos0, p.T, c.rotary_dim, c.rotary_base, c.rope_scaling);
    if (!c.local_layers.empty()) r.local = ops::make_rope_table(p.a.pos0, p.T, c.rotary_dim, c.rotary_base_local);
  }
  return r;
}

// x = W_E[tokens] (* embedding_scale) (+ W_pos[positions]): the residual stream [T, d_model] before
// the first block.
void embed(Buf& x, const Pass& p) {
  const ModelConfig& c = p.c;
  const ModelWeights& W = p.model.weights();
  const int64_t T = p.T, d = c.d_model;
  x.resize(T, d);
  for (int64_t t = 0; t < T; ++t) read_rows(W.W_E, p.a.tokens[static_cast<size_t>(t)], 1, x.row(t));
  if (c.embedding_scale != 1.0f) {  // Gemma: embeddings times sqrt(d_model) (hook_embed holds the product)
    for (float& v : x.v) v *= c.embedding_scale;
  }
  if (!finite(x.data(), T * d)) non_finite(p.model, "", {{"embed.W_E (a row of these tokens)", &W.W_E}}, {});
  p.rec.pass(Hook::kEmbed, -1, {T, d}, x.data());
  if (c.positional_embedding_type == PositionalEmbedding::kStandard) {
    Buf pos;  // [T, d_model] W_pos rows of these positions
    pos.resize(T, d);
    read_rows(W.W_pos, p.a.pos0, T, pos.data());
    p.rec.pass(Hook::kPosEmbed, -1, {T, d}, pos.data());
    for (int64_t t = 0; t < T; ++t) {
      float* r = x.row(t);
      const float* pe = pos.row(t);
      for (int64_t i = 0; i < d; ++i) r[i] += pe[i];
    }
  }
}

// A sublayer's input xn [T, d_model]: x through the block's norm (ln1 or ln2, scale and output
// recorded), or x itself when the model has no pre-norms (OLMo 2).
void sublayer_input(Buf& xn, const Buf& x, const VectorView& w, const VectorView& b, Hook scale_hook,
                    Hook normalized_hook, int layer, const Pass& p) {
  if (!p.c.pre_norm) {
    xn = x;
    return;
  }
  const auto scale = normalize(xn, x, p.T, p.c, w, b, p.threads);
  p.rec.pass_read_only(scale_hook, layer, {p.T, 1}, scale.data());
  p.rec.pass(normalized_hook, layer, {p.T, p.c.d_model}, xn.data());
}

// out = in W^T + b [T, d_model], then (OLMo 2) the sublayer's post-norm, its scale recorded under
// `post_scale_hook`. With a post-norm the pass multiplies by W_raw: W holds the norm's weights folded
// into its rows, which is what the attribution reads (ModelConfig::post_norm).
void sublayer_output(Buf& out, const Buf& in, const MatrixView& W, const MatrixView& W_raw, const VectorView& b,
                     const VectorView& post_norm_w, Hook post_scale_hook, int layer, const Pass& p) {
  linear(out, in, p.T, p.c.post_norm ? W_raw : W, b, p.threads);
  if (p.c.post_norm) post_normalize(out, p.T, post_norm_w, p.c.eps, p.rec, post_scale_hook, layer);
}

// x += y over [T, d_model].
void add_residual(Buf& x, const Buf& y, int64_t T, int64_t d) {
  for (int64_t i = 0; i < T * d; ++i) x.v[static_cast<size_t>(i)] += y.v[static_cast<size_t>(i)];
}

// q, k, v = xn W^T (+ b), the q/k norms (OLMo 2: whole projection; Qwen3: per head), recorded
// before rotation.
void project_qkv(Scratch& s, const LayerWeights& L, int layer, const Pass& p) {
  const ModelConfig& c = p.c;
  const int64_t T = p.T, H = c.n_heads, Hkv = c.n_key_value_heads, dh = c.d_head;
  linear(s.q, s.xn, T, L.W_Q, L.b_Q, p.threads);  // [T, n_heads * d_head]
  linear(s.k, s.xn, T, L.W_K, L.b_K, p.threads);  // [T, n_kv_heads * d_head]
  linear(s.v, s.xn, T, L.W_V, L.b_V, p.threads);  // [T, n_kv_heads * d_head]
  if (c.qk_norm_full) {  // OLMo 2: the whole query and key projections RMS-normalised before RoPE
    rms_norm_heads(s.q, T, 1, H * dh, L.q_norm_w, c.eps);
    rms_norm_heads(s.k, T, 1, Hkv * dh, L.k_norm_w, c.eps);
  }
  if (c.qk_norm) {  // Qwen3: each head's query and key RMS-normalised over d_head before RoPE
    rms_norm_heads(s.q, T, H, dh, L.q_norm_w, c.eps);
    rms_norm_heads(s.k, T, Hkv, dh, L.k_norm_w, c.eps);
  }
  hook_heads(p.rec, Hook::kQ, layer, s.q, T, H, c);
  hook_heads(p.rec, Hook::kK, layer, s.k, T, Hkv, c);
  hook_heads(p.rec, Hook::kV, layer, s.v, T, Hkv, c);
  record_heads(p.rec, Hook::kQ, layer, s.q, T, H, c);
  record_heads(p.rec, Hook::kK, layer, s.k, T, Hkv, c);
  record_heads(p.rec, Hook::kV, layer, s.v, T, Hkv, c);
}

// Rotates q and k in place (rotary models), recorded after rotation.
void rotate_qk(Buf& q, Buf& k, const ops::RopeTable& rope, int layer, const Pass& p) {
  const ModelConfig& c = p.c;
  const int64_t T = p.T, H = c.n_heads, Hkv = c.n_key_value_heads, dh = c.d_head;
  ops::apply_rope(q.data(), T, H, dh, q.cols, rope, c.rope_layout);
  ops::apply_rope(k.data(), T, Hkv, dh, k.cols, rope, c.rope_layout);
  hook_heads(p.rec, Hook::kRotQ, layer, q, T, H, c);
  hook_heads(p.rec, Hook::kRotK, layer, k, T, Hkv, c);
  record_heads(p.rec, Hook::kRotQ, layer, q, T, H, c);
  record_heads(p.rec, Hook::kRotK, layer, k, T, Hkv, c);
}

// Intervention inside attention (spec A7): at the intervention's query position, removes single
// source positions' shares pattern[s] * v[s, dim] from z[t, h] (zr), for head h of `layer`.
// pattern: [S] this query's attention row; V_all: [S, kv_dim] with head kvh's values at kvh * d_head.
void remove_source_shares(float* zr, const float* pattern, const float* V_all, int64_t kv_dim, int64_t kvh,
                          int64_t h, int64_t t, int layer, const Pass& p) {
  if (p.iv == nullptr || p.iv->position != p.a.pos0 + t) return;
  for (const auto& an : p.iv->attn_neurons) {
    if (an.layer == layer && an.head == h && an.source_pos >= 0) {
      zr[an.dim] -= pattern[an.source_pos] * V_all[an.source_pos * kv_dim + kvh * p.c.d_head + an.dim];
    }
  }
}

// The keys query t (of this pass) sees: [first, n_keys), causal (keys 0..pos0+t) and, with a
// sliding window, from the window's oldest key on.
std::pair<int64_t, int64_t> visible_keys(int64_t t, int64_t window, const Pass& p) {
  const int64_t n_keys = p.a.pos0 + t + 1;
  return {window > 0 ? std::max<int64_t>(0, n_keys - window) : 0, n_keys};
}

// Query t's attention scores against keys [0, S) in place: scaled, softcapped (Gemma 2: c *
// tanh(score / c), before the mask, llama.cpp's and transformers' order), then -inf for every key
// it does not see. Keys first..n_keys-1 are visible (returned as {first, n_keys}): causal, and with
// a sliding window (window > 0) query position i sees keys i - window < j <= i only (llama.cpp's
// is_masked_swa, LLAMA_SWA_TYPE_STANDARD: masked when i - j >= window).
std::pair<int64_t, int64_t> mask_scores(float* row, int64_t t, float attn_scale, int64_t window, const Pass& p) {
  const float cap = p.c.attn_softcap;
  const auto [first, n_keys] = visible_keys(t, window, p);
  for (int64_t s = 0; s < n_keys; ++s) row[s] *= attn_scale;
  if (cap > 0.0f) {
    for (int64_t s = 0; s < n_keys; ++s) row[s] = cap * std::tanh(row[s] / cap);
  }
  for (int64_t s = 0; s < first; ++s) row[s] = -std::numeric_limits<float>::infinity();
  for (int64_t s = n_keys; s < p.S; ++s) row[s] = -std::numeric_limits<float>::infinity();
  return {first, n_keys};
}

// Scores -> pattern in place: softmax over the visible keys, exactly 0 for the masked ones.
void softmax_visible(float* row, int64_t first, int64_t n_keys, int64_t S) {
  ops::softmax(row + first, n_keys - first);
  for (int64_t s = 0; s < first; ++s) row[s] = 0.0f;
  for (int64_t s = n_keys; s < S; ++s) row[s] = 0.0f;
}

// z[t, h] = sum_s pattern[t, s] v[s, kvh], accumulated in increasing s into zr [d_head].
void mix_values(float* zr, const float* pattern, int64_t first, int64_t n_keys, const float* V_all, int64_t kv_dim,
                int64_t kvh, int64_t dh) {
  for (int64_t s = first; s < n_keys; ++s) {
    const float w = pattern[s];
    const float* vr = V_all + s * kv_dim + kvh * dh;
    for (int64_t i = 0; i < dh; ++i) zr[i] += w * vr[i];
  }
}

// Copies query t's row into a recorded [n_heads, n_rows, S] tensor when the run keeps that row.
void record_row(Tensor* rec, const float* row, int64_t h, int64_t t, const Pass& p) {
  const int64_t slot = p.row_slot[static_cast<size_t>(t)];
  if (rec != nullptr && slot >= 0) {
    std::memcpy(rec->data() + (h * p.n_rows + slot) * p.S, row, static_cast<size_t>(p.S) * sizeof(float));
  }
}

// z = softmax(q k^T * scale, causal) v per head: [T, n_heads * d_head] from q [T, n_heads * d_head]
// and the keys/values of every visible position, K_all/V_all [S, n_kv_heads * d_head]. Records the
// scores (masked: -inf) and the pattern [n_heads, T, S]; masked keys' pattern is exactly 0.
// One head at a time, so only a [T, S] score block is alive per thread.
void attend(Buf& z, const Buf& q, const float* K_all, const float* V_all, float attn_scale, int64_t window,
            int layer, const Pass& p) {
  const ModelConfig& c = p.c;
  const int64_t T = p.T, S = p.S, H = c.n_heads, dh = c.d_head;
  const int64_t kv_dim = c.n_key_value_heads * dh, group = H / c.n_key_value_heads;
  Tensor* scores_rec = p.rec.make(Hook::kAttnScores, layer, {H, p.n_rows, S});
  Tensor* pattern_rec = p.rec.make(Hook::kPattern, layer, {H, p.n_rows, S});
  z.resize(T, H * dh);
  parallel_for(p.threads, H, [&](int64_t h0, int64_t h1) {
    std::vector<float> scores(static_cast<size_t>(T * S));  // [T, S] for one head
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t kvh = h / group;
      ops::matmul_nt(T, S, dh, q.data() + h * dh, q.cols, K_all + kvh * dh, kv_dim, scores.data(), S, 1);
      for (int64_t t = 0; t < T; ++t) {
        float* row = scores.data() + t * S;
        const auto [first, n_keys] = mask_scores(row, t, attn_scale, window, p);
        record_row(scores_rec, row, h, t, p);
        softmax_visible(row, first, n_keys, S);
        record_row(pattern_rec, row, h, t, p);
        float* zr = z.row(t) + h * dh;
        mix_values(zr, row, first, n_keys, V_all, kv_dim, kvh, dh);
        remove_source_shares(zr, row, V_all, kv_dim, kvh, h, t, layer, p);
      }
    }
  });
}

// Throws UnsupportedError when a forward hook changed what the causal mask fixes: a masked score
// that is no longer -inf, or a masked pattern weight that is no longer 0. all: [H, T, S].
void check_mask_kept(const std::vector<float>& all, Hook hook, int64_t window, int layer, const Pass& p) {
  const int64_t H = p.c.n_heads, T = p.T, S = p.S;
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t t = 0; t < T; ++t) {
      const auto [first, n_keys] = visible_keys(t, window, p);
      const float* row = all.data() + (h * T + t) * S;
      for (int64_t s = 0; s < S; ++s) {
        if (s >= first && s < n_keys) continue;
        const bool kept = hook == Hook::kPattern ? row[s] == 0.0f : (std::isinf(row[s]) && row[s] < 0.0f);
        if (!kept) {
          throw UnsupportedError("forward hook on '" + HookName{hook, layer}.to_string() + "' unmasked key " +
                                 std::to_string(s) + " of query " + std::to_string(p.a.pos0 + t) + " (head " +
                                 std::to_string(h) + "): reslens keeps the causal mask, so masked " +
                                 (hook == Hook::kPattern ? "weights must stay 0" : "scores must stay -inf"));
        }
      }
    }
  }
}

// attend() when forward hooks read or replace hook_attn_scores or hook_pattern: the same steps, in
// three passes over every head, so the hooks see whole [n_heads, T, S] tensors (every query row,
// whatever pattern_rows records) and the pattern and z are computed from what they leave there.
void attend_hooked(Buf& z, const Buf& q, const float* K_all, const float* V_all, float attn_scale, int64_t window,
                   int layer, const Pass& p) {
  const ModelConfig& c = p.c;
  const int64_t T = p.T, S = p.S, H = c.n_heads, dh = c.d_head;
  const int64_t kv_dim = c.n_key_value_heads * dh, group = H / c.n_key_value_heads;
  Tensor* scores_rec = p.rec.make(Hook::kAttnScores, layer, {H, p.n_rows, S});
  Tensor* pattern_rec = p.rec.make(Hook::kPattern, layer, {H, p.n_rows, S});
  std::vector<float> all(static_cast<size_t>(H * T * S));  // [H, T, S] scores, then the pattern
  auto row = [&](int64_t h, int64_t t) { return all.data() + (h * T + t) * S; };
  parallel_for(p.threads, H, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      ops::matmul_nt(T, S, dh, q.data() + h * dh, q.cols, K_all + (h / group) * dh, kv_dim, row(h, 0), S, 1);
      for (int64_t t = 0; t < T; ++t) mask_scores(row(h, t), t, attn_scale, window, p);
    }
  });
  p.rec.hook(Hook::kAttnScores, layer, {H, T, S}, all.data());
  if (p.rec.hooked(Hook::kAttnScores, layer)) check_mask_kept(all, Hook::kAttnScores, window, layer, p);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t t = 0; t < T; ++t) record_row(scores_rec, row(h, t), h, t, p);
  }
  parallel_for(p.threads, H, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < T; ++t) {
        const auto [first, n_keys] = visible_keys(t, window, p);
        softmax_visible(row(h, t), first, n_keys, S);
      }
    }
  });
  p.rec.hook(Hook::kPattern, layer, {H, T, S}, all.data());
  if (p.rec.hooked(Hook::kPattern, layer)) check_mask_kept(all, Hook::kPattern, window, layer, p);
  z.resize(T, H * dh);
  parallel_for(p.threads, H, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < T; ++t) {
        record_row(pattern_rec, row(h, t), h, t, p);
        const auto [first, n_keys] = visible_keys(t, window, p);
        float* zr = z.row(t) + h * dh;
        mix_values(zr, row(h, t), first, n_keys, V_all, kv_dim, h / group, dh);
        remove_source_shares(zr, row(h, t), V_all, kv_dim, h / group, h, t, layer, p);
      }
    }
  });
}

// Intervention on z: zeroes the ablated heads and attention neurons (those without a source
// position) of `layer`, at every position or only the intervention's.
void ablate_heads(Buf& z, int layer, const Pass& p) {
  if (p.iv == nullptr) return;
  const int64_t dh = p.c.d_head;
  for (int64_t t = 0; t < p.T; ++t) {
    if (p.iv->position >= 0 && p.iv->position != p.a.pos0 + t) continue;
    float* zr = z.row(t);
    for (const auto& hd : p.iv->heads) {
      if (hd.layer == layer) std::memset(zr + hd.head * dh, 0, static_cast<size_t>(dh) * sizeof(float));
    }
    for (const auto& an : p.iv->attn_neurons) {
      if (an.layer == layer && an.source_pos < 0) zr[an.head * dh + an.dim] = 0.0f;
    }
  }
}

// The attention sublayer: s.attn_out [T, d_model] from its input s.xn. Appends this pass's keys and
// values to the KV cache when there is one.
void attention(Scratch& s, const LayerWeights& L, int layer, const RopeTables& rope, float attn_scale,
               const Pass& p) {
  const ModelConfig& c = p.c;
  const int64_t T = p.T, kv_dim = c.n_key_value_heads * c.d_head;
  project_qkv(s, L, layer, p);
  if (c.positional_embedding_type == PositionalEmbedding::kRotary) {
    rotate_qk(s.q, s.k, rope.for_layer(c, layer), layer, p);
  }
  // Keys/values of every visible position: [S, kv_dim].
  const float* K_all = s.k.data();
  const float* V_all = s.v.data();
  if (p.a.kv != nullptr) {
    auto& kc = p.a.kv->k[static_cast<size_t>(layer)];
    auto& vc = p.a.kv->v[static_cast<size_t>(layer)];
    std::memcpy(kc.data() + p.a.pos0 * kv_dim, s.k.data(), static_cast<size_t>(T * kv_dim) * sizeof(float));
    std::memcpy(vc.data() + p.a.pos0 * kv_dim, s.v.data(), static_cast<size_t>(T * kv_dim) * sizeof(float));
    K_all = kc.data();
    V_all = vc.data();
  }
  if (p.rec.hooked(Hook::kAttnScores, layer) || p.rec.hooked(Hook::kPattern, layer)) {
    attend_hooked(s.z, s.q, K_all, V_all, attn_scale, c.window_of(layer), layer, p);
  } else {
    attend(s.z, s.q, K_all, V_all, attn_scale, c.window_of(layer), layer, p);
  }
  ablate_heads(s.z, layer, p);
  p.rec.pass(Hook::kZ, layer, {T, c.n_heads, c.d_head}, s.z.data());
  sublayer_output(s.attn_out, s.z, L.W_O, L.W_O_raw, L.b_O, L.post_attn_norm_w, Hook::kLn1PostScale, layer, p);
}

// The MLP's coefficients s.post [T, d_mlp] from its input s.xn: act(xn W_in^T + b_in), or, gated,
// act(xn W_gate^T) * (xn W_in^T + b_in) (SiLU: SwiGLU; GELU: GeGLU).
void mlp_coefficients(Scratch& s, const LayerWeights& L, int layer, const Pass& p) {
  const ModelConfig& c = p.c;
  const int64_t T = p.T;
  if (c.gated_mlp) {
    linear(s.pre, s.xn, T, L.W_gate, {}, p.threads);  // [T, d_mlp] gate
    linear(s.up, s.xn, T, L.W_in, L.b_in, p.threads);  // [T, d_mlp]
    p.rec.pass(Hook::kMlpPre, layer, {T, c.d_mlp}, s.pre.data());
    p.rec.pass(Hook::kMlpPreLinear, layer, {T, c.d_mlp}, s.up.data());
    s.post.resize(T, c.d_mlp);
    parallel_for(p.threads, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        if (c.act_fn == ActFn::kSilu) {
          ops::silu_mul(s.post.row(t), s.pre.row(t), s.up.row(t), c.d_mlp);
        } else {  // GeGLU (Gemma): gelu(gate) * up, the product in float as ggml's geglu
          std::memcpy(s.post.row(t), s.pre.row(t), static_cast<size_t>(c.d_mlp) * sizeof(float));
          gelu_in_place(s.post.row(t), c.d_mlp, c.act_fn, p.a.ggml_gelu);
          float* m = s.post.row(t);
          const float* u = s.up.row(t);
          for (int64_t i = 0; i < c.d_mlp; ++i) m[i] *= u[i];
        }
      }
    });
  } else {
    linear(s.pre, s.xn, T, L.W_in, L.b_in, p.threads);  // [T, d_mlp]
    p.rec.pass(Hook::kMlpPre, layer, {T, c.d_mlp}, s.pre.data());
    s.post = s.pre;
    parallel_for(p.threads, T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) gelu_in_place(s.post.row(t), c.d_mlp, c.act_fn, p.a.ggml_gelu);
    });
  }
}

// Intervention on the MLP's coefficients: zeroes the ablated FFN neurons of `layer`, at every
// position or only the intervention's.
void ablate_ffn_neurons(Buf& post, int layer, const Pass& p) {
  if (p.iv == nullptr) return;
  for (int64_t t = 0; t < p.T; ++t) {
    if (p.iv->position >= 0 && p.iv->position != p.a.pos0 + t) continue;
    for (const auto& f : p.iv->ffn_neurons) {
      if (f.layer == layer) post.row(t)[f.neuron] = 0.0f;
    }
  }
}

// The MLP sublayer: s.mlp_out [T, d_model] from its input s.xn.
void mlp(Scratch& s, const LayerWeights& L, int layer, const Pass& p) {
  mlp_coefficients(s, L, layer, p);
  if (p.c.n_experts > 0) route_experts(s.post, s.xn, p.T, L.W_router, L.shared_expert_gate, p.c, p.threads);
  ablate_ffn_neurons(s.post, layer, p);
  p.rec.pass(Hook::kMlpPost, layer, {p.T, p.c.d_mlp}, s.post.data());
  sublayer_output(s.mlp_out, s.post, L.W_out, L.W_out_raw, L.b_out, L.post_ffn_norm_w, Hook::kLn2PostScale, layer, p);
}

// logits = norm_final(x) W_U^T (+ b_U): [T, d_vocab] with all_logits, else the last position's
// [1, d_vocab]. The final norm runs over every position when its hooks are recorded.
Tensor unembed(const Buf& x, Buf& xn, const Pass& p) {
  const ModelConfig& c = p.c;
  const ModelWeights& W = p.model.weights();
  const int64_t T = p.T, d = c.d_model;
  const bool record_final = p.rec.wants(Hook::kLnFinalScale, -1) || p.rec.wants(Hook::kLnFinalNormalized, -1) ||
                            p.rec.hooked(Hook::kLnFinalScale, -1) || p.rec.hooked(Hook::kLnFinalNormalized, -1);
  const int64_t first = (p.a.all_logits || record_final) ? 0 : T - 1;
  Buf last;
  last.resize(T - first, d);
  std::memcpy(last.data(), x.row(first), static_cast<size_t>((T - first) * d) * sizeof(float));
  auto scale_f = normalize(xn, last, T - first, c, W.ln_final_w, W.ln_final_b, p.threads);
  p.rec.pass_read_only(Hook::kLnFinalScale, -1, {T - first, 1}, scale_f.data());
  p.rec.pass(Hook::kLnFinalNormalized, -1, {T - first, d}, xn.data());
  const int64_t n_out = p.a.all_logits ? T : 1;
  const float* rows = xn.row((T - first) - n_out);
  Tensor logits({n_out, c.d_vocab});
  matmul_weights(n_out, rows, d, W.W_U, logits.data(), c.d_vocab, p.threads);
  if (!W.b_U.empty()) {
    for (int64_t t = 0; t < n_out; ++t) {
      for (int64_t i = 0; i < c.d_vocab; ++i) logits.row(t)[i] += W.b_U[i];
    }
  }
  if (!finite(logits.data(), n_out * c.d_vocab)) {
    non_finite(p.model, "", {{"unembed.W_U", &W.W_U}}, {{"ln_final.w", &W.ln_final_w}, {"ln_final.b", &W.ln_final_b}});
  }
  if (c.final_softcap > 0.0f) {  // Gemma 2: logits = c * tanh(logits / c)
    const float cap = c.final_softcap;
    float* v = logits.data();
    for (int64_t i = 0; i < n_out * c.d_vocab; ++i) v[i] = cap * std::tanh(v[i] / cap);
  }
  return logits;
}

}  // namespace

Tensor forward(const Model& model, const ForwardArgs& a) {
  const ModelConfig& c = model.config();
  const int64_t T = static_cast<int64_t>(a.tokens.size());
  const int64_t d = c.d_model;
  Recorder rec(a.capture, a.cache, a.hooks);
  std::vector<int64_t> row_slot = pattern_row_slots(a.pattern_rows, a.pos0, T);
  const int64_t n_rows = *std::max_element(row_slot.begin(), row_slot.end()) + 1;
  const Pass p{model, c, a, a.intervention != nullptr && !a.intervention->empty() ? a.intervention : nullptr,
               rec, a.n_threads > 0 ? a.n_threads : hardware_threads(), T, a.pos0 + T, std::move(row_slot), n_rows};

  Buf x;  // the residual stream [T, d_model]
  embed(x, p);
  const RopeTables rope = make_rope_tables(p);
  const float attn_scale = c.attn_scale > 0.0f ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(c.d_head));

  Scratch s;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const int li = static_cast<int>(l);
    const LayerWeights& L = model.weights().layers[static_cast<size_t>(l)];
    rec.pass(Hook::kResidPre, li, {T, d}, x.data());

    // x += attention(ln1(x))
    if (c.parallel_residual) s.block_in = x;  // GPT-NeoX: the MLP reads the block input too
    sublayer_input(s.xn, x, L.ln1_w, L.ln1_b, Hook::kLn1Scale, Hook::kLn1Normalized, li, p);
    attention(s, L, li, rope, attn_scale, p);
    rec.pass(Hook::kAttnOut, li, {T, d}, s.attn_out.data());
    add_residual(x, s.attn_out, T, d);
    rec.pass(Hook::kResidMid, li, {T, d}, x.data());

    // x += mlp(ln2(x)), or mlp(ln2(block input)) with a parallel residual
    sublayer_input(s.xn, c.parallel_residual ? s.block_in : x, L.ln2_w, L.ln2_b, Hook::kLn2Scale,
                   Hook::kLn2Normalized, li, p);
    mlp(s, L, li, p);
    rec.pass(Hook::kMlpOut, li, {T, d}, s.mlp_out.data());
    add_residual(x, s.mlp_out, T, d);
    require_finite_layer(model, x, T, li);
    rec.pass(Hook::kResidPost, li, {T, d}, x.data());
  }

  return unembed(x, s.xn, p);
}

}  // namespace reslens
