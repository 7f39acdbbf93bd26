// What every model loader shares: the stored-tensor description, shape-checked materialisation into
// weight views, configuration validation, and the per-format entry points Model::load dispatches to.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/storage.h"
#include "model/weight_rows.h"
#include "reslens/config.h"
#include "reslens/model.h"
#include "reslens/tokenizer.h"
#include "reslens/error.h"
#include "reslens/weights.h"

namespace reslens {

/// One tensor as a file stores it.
struct StoredTensor {
  std::span<const uint8_t> bytes;
  StorageType type = StorageType::kF32;
  std::vector<int64_t> shape;  ///< row-major, outermost first
};

std::string shape_string(const std::vector<int64_t>& shape);

/// Float32 data of `t` after checking that its shape is `expected` (FormatError naming `source` and
/// `name` otherwise). Mapped in place when possible.
const float* materialize(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                         const std::vector<int64_t>& expected, const std::string& source);

/// A [rows, cols] matrix view of a checked tensor, in the file's encoding (unless the storage converts
/// everything to float32).
MatrixView matrix_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                       int64_t rows, int64_t cols, const std::string& source);
/// The same as float32 (converted when stored otherwise): for the few matrices the loader rebuilds
/// (transposed, regrouped, concatenated) or reads element by element.
MatrixView float_matrix_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                             int64_t rows, int64_t cols, const std::string& source);
VectorView vector_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                       int64_t size, const std::string& source);

/// Rejects absurd or inconsistent hyperparameters with a FormatError naming `source`.
void validate_config(const ModelConfig& c, const std::string& source);

/// Refuses a tokenizer that does not fit the model's vocabulary (`d_vocab` embedding/unembedding
/// rows), up front instead of at the first id without a row or the first prediction without a token:
/// more tokens than rows (ids the model has no row for), or fewer tokens than rows beyond padding.
/// Padded vocabularies are real (Phi-3: 32064 rows for 32011 tokens, Qwen2.5: 151936 for 151665,
/// DeepSeek LLM: 102400 for 100015) and stay accepted as long as the rows beyond the tokenizer are at
/// most kMaxPaddedRowsFraction of the rows; more than that is a tokenizer of another model. The
/// FormatError names `tokenizer_source` (the tokenizer's file), both sizes and `model_source`.
void check_tokenizer_fits(const Tokenizer& tokenizer, int64_t d_vocab, const std::string& tokenizer_source,
                          const std::string& model_source);
/// Padding rows allowed beyond a tokenizer, as a fraction of the model's rows (1/16).
inline constexpr int64_t kMaxPaddedRowsDivisor = 16;

/// Tensor names of a Llama-family block in one file format (prefix + name). One table per format;
/// load_llama_layer reads a block through any tensor source with matrix()/vector()/has() by these names.
struct LlamaLayerNames {
  const char* attn_norm;
  const char* q;
  const char* k;
  const char* v;
  const char* q_bias;
  const char* k_bias;
  const char* v_bias;
  const char* o;
  const char* o_bias;
  const char* ffn_norm;
  const char* gate;
  const char* up;
  const char* down;
  const char* q_norm = nullptr;   ///< per-head query RMSNorm (read when ModelConfig::qk_norm)
  const char* k_norm = nullptr;
  const char* qkv = nullptr;      ///< fused [q; k; v] rows, used instead of q/k/v when the file has it (Phi-3)
  const char* gate_up = nullptr;  ///< fused [gate; up] rows, always used instead of gate/up when named (Phi-3)
  // Mixture of experts (read when ModelConfig::n_experts > 0): the router [n_experts, d_model] and the
  // experts' gate, up and down projections, either stacked in one tensor each ([E, d_expert, d_model],
  // [E, d_expert, d_model], [E, d_model, d_expert]: GGUF) or one per expert, "{e}" in the name
  // standing for the expert's index (Hugging Face).
  const char* router = nullptr;
  const char* expert_gate = nullptr;
  const char* expert_up = nullptr;
  const char* expert_down = nullptr;
  // A shared expert (read when ModelConfig::d_shared_expert > 0): its gate, up, down projections and
  // its sigmoid gate ([d_model]; a [1, d_model] matrix when shared_gate_is_row).
  const char* shared_gate = nullptr;
  const char* shared_up = nullptr;
  const char* shared_down = nullptr;
  const char* shared_expert_gate = nullptr;
  bool shared_gate_is_row = false;
  // Post-sublayer norms (read when ModelConfig::post_norm: OLMo 2).
  const char* post_attn_norm = nullptr;
  const char* post_ffn_norm = nullptr;
};

/// An owned float32 copy of m with row i multiplied by g[i] (a post-norm's weight folded into W_O / W_out).
template <typename Source>
MatrixView fold_row_scales(Source& t, const MatrixView& m, const VectorView& g) {
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols));  // [rows, cols]
  read_rows(m, 0, m.rows, out.data());
  for (int64_t i = 0; i < m.rows; ++i) {
    for (int64_t j = 0; j < m.cols; ++j) out[static_cast<size_t>(i * m.cols + j)] *= g[i];
  }
  return {t.own(std::move(out)), m.rows, m.cols, m.cols};
}

/// Q, K, V (and their biases, when qkv_b is not null) as row slices of one fused [q; k; v] matrix
/// (GPT-2 and GPT-NeoX files, and GPT-NeoX checkpoints once regrouped): q_dim rows, then kv_dim, kv_dim.
inline void assign_fused_qkv(LayerWeights& L, const MatrixView& qkv, const float* qkv_b, int64_t q_dim, int64_t kv_dim) {
  L.W_Q = qkv.rows_slice(0, q_dim);
  L.W_K = qkv.rows_slice(q_dim, kv_dim);
  L.W_V = qkv.rows_slice(q_dim + kv_dim, kv_dim);
  if (qkv_b != nullptr) {
    L.b_Q = {qkv_b, q_dim};
    L.b_K = {qkv_b + q_dim, kv_dim};
    L.b_V = {qkv_b + q_dim + kv_dim, kv_dim};
  }
}

/// Owned float32 [a; b] (rows of a, then rows of b) and [a, b] (columns of a, then of b).
template <typename Source>
MatrixView concat_rows(Source& t, const MatrixView& a, const MatrixView& b) {
  std::vector<float> out(static_cast<size_t>((a.rows + b.rows) * a.cols));  // [a.rows + b.rows, cols]
  read_rows(a, 0, a.rows, out.data());
  read_rows(b, 0, b.rows, out.data() + a.rows * a.cols);
  return {t.own(std::move(out)), a.rows + b.rows, a.cols, a.cols};
}
template <typename Source>
MatrixView concat_columns(Source& t, const MatrixView& a, const MatrixView& b) {
  const int64_t cols = a.cols + b.cols;
  std::vector<float> out(static_cast<size_t>(a.rows * cols));  // [rows, a.cols + b.cols]
  std::vector<float> ra, rb;  // one row of each, decoded
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* x = row_floats(a, r, ra);
    const float* y = row_floats(b, r, rb);
    std::copy(x, x + a.cols, out.begin() + r * cols);
    std::copy(y, y + b.cols, out.begin() + r * cols + a.cols);
  }
  return {t.own(std::move(out)), a.rows, cols, cols};
}

/// Expert e's name from a pattern with "{e}".
inline std::string expert_name(const std::string& pattern, int64_t e) {
  const auto at = pattern.find("{e}");
  return at == std::string::npos ? pattern : pattern.substr(0, at) + std::to_string(e) + pattern.substr(at + 3);
}

/// The experts' gate or up rows as one [n_experts * d_expert, d_model] matrix (neuron e * d_expert + k =
/// expert e's neuron k): a view of a stacked tensor, or the per-expert matrices copied together.
template <typename Source>
MatrixView expert_rows(Source& t, const std::string& name, const ModelConfig& c) {
  const int64_t E = c.n_experts, F = c.d_expert, d = c.d_model;
  if (name.find("{e}") == std::string::npos) return {t.stacked(name, {E, F, d}), E * F, d, d};
  const MatrixView first = t.matrix(expert_name(name, 0), F, d);  // shapes checked before allocating
  std::vector<float> out(static_cast<size_t>(E * F * d));  // [E * F, d]
  for (int64_t e = 0; e < E; ++e) {
    const MatrixView m = e == 0 ? first : t.matrix(expert_name(name, e), F, d);
    read_rows(m, 0, F, out.data() + e * F * d);
  }
  return {t.own(std::move(out)), E * F, d, d};
}

/// The experts' down projections as one [d_model, n_experts * d_expert] matrix: column e * d_expert + k
/// is expert e's neuron k's value vector (always a copy: each expert's columns are its own matrix).
template <typename Source>
MatrixView expert_columns(Source& t, const std::string& name, const ModelConfig& c) {
  const int64_t E = c.n_experts, F = c.d_expert, d = c.d_model;
  const bool stacked = name.find("{e}") == std::string::npos;
  // [E, d_model, d_expert] (or expert 0's [d_model, d_expert]), shape-checked before allocating
  const float* all = stacked ? t.stacked(name, {E, d, F}) : t.float_matrix(expert_name(name, 0), d, F).data;
  std::vector<float> out(static_cast<size_t>(d * E * F));
  for (int64_t e = 0; e < E; ++e) {
    const float* m = stacked ? all + e * d * F : e == 0 ? all : t.float_matrix(expert_name(name, e), d, F).data;
    for (int64_t i = 0; i < d; ++i) std::copy(m + i * F, m + (i + 1) * F, out.begin() + i * E * F + e * F);
  }
  return {t.own(std::move(out)), d, E * F, E * F};
}

/// Which attention biases a block has. Hugging Face configs say so (Qwen2: q/k/v; Llama and Mistral
/// with attention_bias: q/k/v/o), so a declared bias must be there; llama.cpp applies whichever
/// bias tensors a GGUF block holds, so there each is read when present.
enum class BiasRule { kNone, kRequired, kIfPresent };
struct LlamaBiases {
  BiasRule qkv = BiasRule::kNone;
  BiasRule o = BiasRule::kNone;
};

/// A bias by its table name (nullptr: the format has no such tensor, so a required one is missing).
template <typename Source>
VectorView load_bias(Source& t, const std::string& prefix, const char* name, int64_t size, BiasRule rule) {
  if (rule == BiasRule::kNone || (name == nullptr && rule == BiasRule::kIfPresent)) return {};
  if (name == nullptr) throw FormatError("this format stores no such bias (" + prefix + "...)");
  const std::string full = prefix + name;
  if (rule == BiasRule::kRequired || t.has(full)) return t.vector(full, size);
  return {};
}

template <typename Source>
LayerWeights load_llama_layer(Source& t, const std::string& prefix, const LlamaLayerNames& n, const ModelConfig& c,
                              const LlamaBiases& biases) {
  const int64_t d = c.d_model, q_dim = c.n_heads * c.d_head, kv_dim = c.n_key_value_heads * c.d_head;
  LayerWeights L;
  if (c.pre_norm) {
    L.ln1_w = t.vector(prefix + n.attn_norm, d);
    L.ln2_w = t.vector(prefix + n.ffn_norm, d);
  }
  if (n.qkv != nullptr && (n.q == nullptr || t.has(prefix + n.qkv))) {  // fused only, or fused in this file
    assign_fused_qkv(L, t.matrix(prefix + n.qkv, q_dim + 2 * kv_dim, d), nullptr, q_dim, kv_dim);
  } else {
    L.W_Q = t.matrix(prefix + n.q, q_dim, d);
    L.W_K = t.matrix(prefix + n.k, kv_dim, d);
    L.W_V = t.matrix(prefix + n.v, kv_dim, d);
  }
  if (c.qk_norm || c.qk_norm_full) {  // per head [d_head] (Qwen3) or whole projections (OLMo 2)
    L.q_norm_w = t.vector(prefix + n.q_norm, c.qk_norm ? c.d_head : q_dim);
    L.k_norm_w = t.vector(prefix + n.k_norm, c.qk_norm ? c.d_head : kv_dim);
  }
  L.b_Q = load_bias(t, prefix, n.q_bias, q_dim, biases.qkv);
  L.b_K = load_bias(t, prefix, n.k_bias, kv_dim, biases.qkv);
  L.b_V = load_bias(t, prefix, n.v_bias, kv_dim, biases.qkv);
  L.W_O = t.matrix(prefix + n.o, d, q_dim);
  L.b_O = load_bias(t, prefix, n.o_bias, d, biases.o);
  if (c.n_experts > 0) {
    if (n.router == nullptr) throw FormatError(prefix + ": this format has no mixture-of-experts tensors");
    L.W_router = t.float_matrix(prefix + n.router, c.n_experts, d);  // small; read row by row when routing
    L.W_gate = expert_rows(t, prefix + n.expert_gate, c);
    L.W_in = expert_rows(t, prefix + n.expert_up, c);
    L.W_out = expert_columns(t, prefix + n.expert_down, c);
    if (c.d_shared_expert > 0) {  // the shared expert's neurons follow the routed ones
      const int64_t S = c.d_shared_expert;
      L.W_gate = concat_rows(t, L.W_gate, t.matrix(prefix + n.shared_gate, S, d));
      L.W_in = concat_rows(t, L.W_in, t.matrix(prefix + n.shared_up, S, d));
      L.W_out = concat_columns(t, L.W_out, t.matrix(prefix + n.shared_down, d, S));
      L.shared_expert_gate = n.shared_gate_is_row
                                 ? VectorView{t.float_matrix(prefix + n.shared_expert_gate, 1, d).data, d}
                                 : t.vector(prefix + n.shared_expert_gate, d);
    }
  } else if (n.gate_up != nullptr) {
    const MatrixView gate_up = t.matrix(prefix + n.gate_up, 2 * c.d_mlp, d);  // [gate; up] rows
    L.W_gate = gate_up.rows_slice(0, c.d_mlp);
    L.W_in = gate_up.rows_slice(c.d_mlp, c.d_mlp);
    L.W_out = t.matrix(prefix + n.down, d, c.d_mlp);
  } else {
    L.W_gate = t.matrix(prefix + n.gate, c.d_mlp, d);
    L.W_in = t.matrix(prefix + n.up, c.d_mlp, d);
    L.W_out = t.matrix(prefix + n.down, d, c.d_mlp);
  }
  if (c.post_norm) {  // the forward multiplies by the stored matrices; value vectors carry the norm weight
    L.post_attn_norm_w = t.vector(prefix + n.post_attn_norm, d);
    L.post_ffn_norm_w = t.vector(prefix + n.post_ffn_norm, d);
    L.W_O_raw = L.W_O;
    L.W_O = fold_row_scales(t, L.W_O_raw, L.post_attn_norm_w);
    L.W_out_raw = L.W_out;
    L.W_out = fold_row_scales(t, L.W_out_raw, L.post_ffn_norm_w);
  }
  return L;
}

/// Sets ModelConfig::qkv_bias / o_bias from what the loaded blocks hold, for every architecture (inspect, Python).
void note_attention_biases(ModelConfig& c, const std::vector<LayerWeights>& layers);

/// Llama 3's rope_scaling (Hugging Face "llama3"): each rotary pair's frequency divisor, as
/// llama.cpp's converter writes them into rope_freqs.weight and as transformers'
/// _compute_llama3_parameters applies them: 1 for wavelengths under original_ctx / high_freq_factor,
/// `factor` above original_ctx / low_freq_factor, and 1 / ((1 - s) / factor + s) between, with
/// s = (original_ctx / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor).
std::vector<double> llama3_freq_factors(double base, int64_t rot_dim, double factor, double low_freq_factor,
                                        double high_freq_factor, double original_ctx);

/// "F32", or "mixed (F16, F32)": the storage types of a model's matrices (1-D tensors left out).
std::string weights_dtype(const std::vector<std::string>& matrix_types);

/// What a model's tensors take: as the file stores them, and the float32 that its non-F32 tensors
/// would become if converted.
struct WeightBytes {
  int64_t stored = 0;
  int64_t float32_of_encoded = 0;
  void add(int64_t stored_bytes, int64_t elements, bool is_f32) {
    stored += stored_bytes;
    if (!is_f32) float32_of_encoded += elements * static_cast<int64_t>(sizeof(float));
  }
};

/// Before loading: UnsupportedError naming `source` and both sizes when the weights need more memory
/// than is available (MemAvailable of /proc/meminfo, or $RESLENS_MEMORY_AVAILABLE in bytes, which
/// overrides it): their stored size when kept encoded, else the float32 they convert to. Instead of
/// the kernel's OOM killer ending the process half-way through a 7B model. Does nothing when neither
/// figure is known.
void require_memory_for_weights(const WeightBytes& bytes, bool keep_encoded, const std::string& stored_as,
                                const std::string& source);

std::shared_ptr<const Model> load_gguf_model(const std::filesystem::path& path, const LoadOptions& o);
std::shared_ptr<const Model> load_llama2c_model(const std::filesystem::path& path, const LoadOptions& o);
std::shared_ptr<const Model> load_hf_model(const std::filesystem::path& dir, const LoadOptions& o);

}  // namespace reslens
