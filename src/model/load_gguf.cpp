// GGUF models: architectures `llama`, `qwen2` (Q/K/V biases), `qwen3` (per-head q/k norms), `phi3`
// (fused QKV and gate/up, partial rotation), `gemma` (GeGLU, scaled embeddings), `gpt2` and `gptneox`
// (GPT-2's block with partial NEOX rotation and a parallel residual).
// Float32 tensors are used in place from the memory map; F16, BF16 and llama.cpp's quantized types
// (Q8_0, Q4_0-Q5_1, the k-quants, IQ4_NL/XS) are dequantized to float32 once, at load. Q/K rows stay
// in the order the file has them, and RoPE pairs them as llama.cpp does for the architecture
// (llama_model_rope_type): `llama` files hold rows that llama.cpp's converter permuted for
// interleaved pairs, `qwen2`, `qwen3` and `phi3` files are not permuted and rotate NEOX-style
// (rotate_half pairs).
// Everything else llama.cpp would apply (RoPE scaling keys, rope_freqs.weight, attention biases) is
// applied, and any key or tensor reslens does not apply stops the load (model/known_keys.h).
#include <algorithm>
#include <cmath>
#include <set>

#include "io/gguf.h"
#include "model/known_keys.h"
#include "model/loader.h"
#include "model/rope_scaling.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"

namespace reslens {

namespace {

StorageType storage_type(const gguf::TensorDesc& t, const std::string& source) {
  switch (static_cast<gguf::TensorType>(t.type)) {
    case gguf::TensorType::kF32: return StorageType::kF32;
    case gguf::TensorType::kF16: return StorageType::kF16;
    case gguf::TensorType::kBF16: return StorageType::kBF16;
    case gguf::TensorType::kQ8_0: return StorageType::kQ8_0;
    case gguf::TensorType::kQ4_0: return StorageType::kQ4_0;
    case gguf::TensorType::kQ4_1: return StorageType::kQ4_1;
    case gguf::TensorType::kQ5_0: return StorageType::kQ5_0;
    case gguf::TensorType::kQ5_1: return StorageType::kQ5_1;
    case gguf::TensorType::kQ2_K: return StorageType::kQ2_K;
    case gguf::TensorType::kQ3_K: return StorageType::kQ3_K;
    case gguf::TensorType::kQ4_K: return StorageType::kQ4_K;
    case gguf::TensorType::kQ5_K: return StorageType::kQ5_K;
    case gguf::TensorType::kQ6_K: return StorageType::kQ6_K;
    case gguf::TensorType::kIQ4_NL: return StorageType::kIQ4_NL;
    case gguf::TensorType::kIQ4_XS: return StorageType::kIQ4_XS;
    default:
      throw UnsupportedError(source + ": tensor '" + t.name + "' has type " +
                             gguf::tensor_type_name(t.type) +
                             "; reslens loads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the k-quants Q2_K-Q6_K, IQ4_NL and IQ4_XS "
                             "(requantize with llama-quantize)");
  }
}

class GgufTensors {
 public:
  GgufTensors(const gguf::File& file, ModelStorage& storage) : file_(file), storage_(storage) {}

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }

  StoredTensor get(const std::string& name) {
    const gguf::TensorDesc* t = file_.find_tensor(name);
    if (t == nullptr) throw FormatError(file_.source() + ": tensor '" + name + "' is missing");
    used_.insert(name);
    return {file_.tensor_bytes(*t), storage_type(*t, file_.source()), t->shape()};
  }
  MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) {
    return matrix_view(storage_, get(name), name, rows, cols, file_.source());
  }
  /// The same, always float32 (for what the loader rebuilds or reads element by element).
  MatrixView float_matrix(const std::string& name, int64_t rows, int64_t cols) {
    return float_matrix_view(storage_, get(name), name, rows, cols, file_.source());
  }
  VectorView vector(const std::string& name, int64_t size) {
    return vector_view(storage_, get(name), name, size, file_.source());
  }
  VectorView vector_opt(const std::string& name, int64_t size) {
    return has(name) ? vector(name, size) : VectorView{};
  }
  /// A tensor of any rank checked against `shape` (outermost first), as float32.
  const float* stacked(const std::string& name, const std::vector<int64_t>& shape) {
    return materialize(storage_, get(name), name, shape, file_.source());
  }
  const float* own(std::vector<float> values) { return storage_.own(std::move(values)); }
  const std::set<std::string>& used() const { return used_; }

 private:
  const gguf::File& file_;
  ModelStorage& storage_;
  std::set<std::string> used_;
};

// The "<arch>." keys read_config reads and applies for every architecture, and those only some
// architectures apply (known_keys.h refuses every other one, so a key read for one family, e.g.
// rope.freq_base_swa, is never silently ignored on another).
const std::set<std::string> kAppliedKeys = {
    "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "attention.key_length", "attention.value_length", "rope.freq_base",
    // the architecture decides which epsilon its norms read; the other one changes nothing
    "attention.layer_norm_epsilon", "attention.layer_norm_rms_epsilon",
    "rope.dimension_count", "rope.scaling.type", "rope.scaling.factor", "rope.scale_linear",
    "rope.scaling.attn_factor", "expert_count", "expert_used_count"};

// Architectures whose llama.cpp graph passes YaRN's parameters to ggml_rope_ext and that reslens
// applies YaRN for (llama.cpp converts Qwen2.5/Qwen3 long-context and Llama yarn configs to them).
bool yarn_architecture(const std::string& arch) {
  return arch == "llama" || arch == "qwen2" || arch == "qwen3" || arch == "qwen2moe" || arch == "qwen3moe";
}

std::set<std::string> applied_keys(const std::string& arch) {
  std::set<std::string> k = kAppliedKeys;
  // A window is honoured by refusing longer sequences (where windowed and full attention agree);
  // OLMo's sliding layers also rotate differently, so its window is refused rather than taken.
  if (arch != "olmo2" && arch != "gpt2") k.insert("attention.sliding_window");
  if (arch == "gptneox") k.insert("use_parallel_residual");
  if (arch == "qwen2moe" || arch == "qwen3moe") k.insert("expert_feed_forward_length");
  if (arch == "qwen2moe") k.insert("expert_shared_feed_forward_length");
  if (arch == "gemma3") k.insert({"attention.sliding_window_pattern", "rope.freq_base_swa"});
  // YaRN's tuning keys, which llama.cpp does not read for these architectures: taken at llama.cpp's
  // values only (read_gguf_yarn refuses others).
  if (yarn_architecture(arch)) {
    k.insert({"rope.scaling.yarn_ext_factor", "rope.scaling.yarn_attn_factor", "rope.scaling.yarn_beta_fast",
              "rope.scaling.yarn_beta_slow", "rope.scaling.yarn_log_multiplier"});
  }
  if (arch == "gemma2") {
    k.insert({"attention.sliding_window_pattern", "rope.freq_base_swa", "attn_logit_softcapping",
              "final_logit_softcapping"});
  }
  return k;
}

// YaRN as llama.cpp runs it for the yarn architectures (llama_context: ext_factor 1, beta_fast 32,
// beta_slow 1, the correction range measured in rope.scaling.original_context_length, else
// context_length; cos/sin times 1 + 0.1 ln(factor)). The yarn_* keys the converter may copy from a
// config are not read by llama.cpp for these architectures, so a value other than the one llama.cpp
// uses is refused rather than guessed.
void read_gguf_yarn(const gguf::File& f, const std::string& p, double factor, ModelConfig& c) {
  const std::string src = f.source();
  const std::string arch = p.substr(0, p.size() - 1);
  if (!yarn_architecture(arch)) {
    throw UnsupportedError(src + ": " + p + "rope.scaling.type = 'yarn' is not supported for " + arch +
                           " (reslens applies YaRN to llama, qwen2, qwen3, qwen2moe and qwen3moe)");
  }
  if (!f.find(p + "rope.scaling.factor") || !(factor > 0.0)) {
    throw FormatError(src + ": " + p + "rope.scaling.factor = " + std::to_string(factor) +
                      " is not a positive number (YaRN needs its factor)");
  }
  const std::pair<const char*, double> fixed[] = {{"rope.scaling.yarn_ext_factor", 1.0},
                                                  {"rope.scaling.yarn_attn_factor", 1.0},
                                                  {"rope.scaling.yarn_beta_fast", 32.0},
                                                  {"rope.scaling.yarn_beta_slow", 1.0},
                                                  {"rope.scaling.yarn_log_multiplier", 0.0}};
  for (const auto& [key, value] : fixed) {
    if (const auto v = f.get_float_opt(p + key); v && *v != value) {
      throw UnsupportedError(src + ": " + p + key + " = " + std::to_string(*v) + " is not supported (llama.cpp uses " +
                             std::to_string(value) + " for " + arch + " and so does reslens)");
    }
  }
  YarnParams y;
  y.factor = factor;
  y.original_context = static_cast<double>(f.get_int_opt(p + "rope.scaling.original_context_length").value_or(c.n_ctx));
  y.attn_factor = yarn_mscale(factor);
  set_yarn(c.rope_scaling, y, static_cast<double>(c.rotary_base), c.rotary_dim, src, p + "rope.scaling.");
}

// llama.cpp's RoPE scaling keys (llama_model_base::load_hparams and llama_context): the type defaults
// to "linear", whose factor (rope.scaling.factor, or the older rope.scale_linear; 0 = none) divides
// positions; "none" ignores the factor; "yarn" is read_gguf_yarn; LongRoPE (Phi-3) has no type key, its
// factors are tensors (read_gguf_longrope). rope.scaling.attn_factor multiplies cos/sin (phi3 only).
void read_rope_scaling(const gguf::File& f, const std::string& p, ModelConfig& c) {
  const std::string src = f.source();
  const std::string type = f.get_string_opt(p + "rope.scaling.type").value_or("linear");
  double factor = f.get_float_opt(p + "rope.scaling.factor").value_or(0.0);
  if (!f.find(p + "rope.scaling.factor")) factor = f.get_float_opt(p + "rope.scale_linear").value_or(0.0);
  if (!std::isfinite(factor) || factor < 0.0) {
    throw FormatError(src + ": " + p + "rope.scaling.factor = " + std::to_string(factor) + " is not a positive number");
  }
  if (type == "linear") {
    if (factor != 0.0 && factor != 1.0) {
      c.rope_scaling.type = "linear";
      c.rope_scaling.linear_factor = factor;
    }
  } else if (type == "yarn") {
    read_gguf_yarn(f, p, factor, c);
  } else if (type != "none") {
    throw UnsupportedError(src + ": " + p + "rope.scaling.type = '" + type +
                           "' is not supported (reslens applies none, linear and yarn RoPE scaling, llama3's "
                           "rope_freqs and Phi-3's LongRoPE factors)");
  }
  // llama.cpp multiplies every cos/sin by this factor; 1 is the identity. Phi-3's converter writes
  // LongRoPE's attention factor here; tested there only, so refused on the other architectures.
  if (const auto attn = f.get_float_opt(p + "rope.scaling.attn_factor"); attn && *attn != 1.0) {
    if (p != "phi3.") {
      throw UnsupportedError(src + ": " + p + "rope.scaling.attn_factor = " + std::to_string(*attn) +
                             " is not supported (only 1, or any on phi3)");
    }
    if (!(*attn > 0.0) || !std::isfinite(*attn)) {
      throw FormatError(src + ": " + p + "rope.scaling.attn_factor = " + std::to_string(*attn) +
                        " is not a positive number");
    }
    c.rope_scaling.attn_factor = *attn;
  }
}

// Phi-3's LongRoPE (llama.cpp's converter for rope_scaling longrope/su): rope_factors_long.weight and
// rope_factors_short.weight, [rotary_dim / 2] divisors each, chosen by the context
// (llama_model::get_rope_factors picks long when its context exceeds
// rope.scaling.original_context_length; reslens compares the model's context_length, which is
// llama.cpp's default context), with rope.scaling.attn_factor on cos/sin (read_rope_scaling).
void read_gguf_longrope(const gguf::File& f, GgufTensors& t, ModelConfig& c) {
  const std::string src = f.source();
  const bool has_long = t.has("rope_factors_long.weight"), has_short = t.has("rope_factors_short.weight");
  if (!has_long && !has_short) return;
  if (has_long != has_short) {
    throw FormatError(src + ": " + (has_long ? "rope_factors_short.weight" : "rope_factors_long.weight") +
                      " is missing (LongRoPE needs both factor sets)");
  }
  if (c.rope_scaling.linear_factor != 1.0) {
    throw UnsupportedError(src + ": LongRoPE factors together with linear RoPE scaling are not supported");
  }
  auto factors = [&](const char* name) {
    const VectorView v = t.vector(name, c.rotary_dim / 2);
    return std::vector<double>(v.data, v.data + v.size);
  };
  const int64_t original = f.get_int_opt("phi3.rope.scaling.original_context_length").value_or(c.n_ctx);
  set_longrope(c.rope_scaling, factors("rope_factors_long.weight"), factors("rope_factors_short.weight"), c.n_ctx,
               original, c.rope_scaling.attn_factor, c.rotary_dim, src, "rope_factors_long.weight",
               "rope_factors_short.weight");
  validate_config(c, src);
}

// Rotary positions: base (default 10000), rotated dims (default all), the pairing, and scaling.
void read_rotary(const gguf::File& f, const std::string& p, RopeLayout layout, ModelConfig& c) {
  c.positional_embedding_type = PositionalEmbedding::kRotary;
  c.rotary_base = static_cast<float>(f.get_float_opt(p + "rope.freq_base").value_or(10000.0));
  c.rotary_dim = f.get_int_opt(p + "rope.dimension_count").value_or(c.d_head);
  c.rope_layout = layout;
  read_rope_scaling(f, p, c);
}

// Gemma 3 (llama.cpp's gemma3 graph): pre- and post-sublayer norms, per-head q/k norms, and, with a
// sliding window, every sliding_window_pattern-th layer global (the others local: their own RoPE base
// rope.freq_base_swa, no scaling); scores scaled by 1/sqrt(d_head), or 1/sqrt(d_model / n_heads) for
// the 62-layer (27B) model as llama.cpp does.
void read_gemma3(const gguf::File& f, const std::string& p, ModelConfig& c) {
  validate_config(c, f.source());  // dimensions first: local_layers is sized by n_layers
  c.qk_norm = true;
  c.post_norm = true;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_layers == 62 ? c.d_model / c.n_heads : c.d_head));
  const int64_t window = f.get_int_opt(p + "attention.sliding_window").value_or(0);
  if (window <= 0) return;
  const int64_t period = f.get_int_opt(p + "attention.sliding_window_pattern").value_or(6);
  if (period < 1) throw FormatError(f.source() + ": " + p + "attention.sliding_window_pattern must be positive");
  c.local_layers.assign(static_cast<size_t>(c.n_layers), 0);
  for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers[static_cast<size_t>(l)] = l % period < period - 1 ? 1 : 0;
  c.rotary_base_local = static_cast<float>(f.get_float_opt(p + "rope.freq_base_swa").value_or(10000.0));  // llama.cpp's default
}

// A Gemma 2 softcap key (llama.cpp's default when absent: `fallback`): a positive finite number, or
// the load fails naming the key (0 would divide by zero in c * tanh(x / c)).
float read_softcap(const gguf::File& f, const std::string& key, double fallback) {
  const double v = f.get_float_opt(key).value_or(fallback);
  if (!(v > 0.0) || !std::isfinite(v) || v > 1e30) {
    throw FormatError(f.source() + ": " + key + " = " + std::to_string(v) + " is not a positive number");
  }
  return static_cast<float>(v);
}

// Gemma 2 (llama.cpp's gemma2 graph): Gemma 3's pre- and post-sublayer norms without q/k norms; the
// attention softcap (default 50) and final-logit softcap (default 30); a sliding window (default
// 4096) on every sliding_window_pattern-th layer but the last of each period (default 2: layers
// 0, 2, 4, ... are local; llama_hparams::set_swa_pattern); local layers rotate with rope.freq_base_swa
// (default: rope.freq_base) and no scaling, which is refused; scores scaled by 1/sqrt(d_head), or
// 1/sqrt(d_model / n_heads) for the 46-layer (27B) model as llama.cpp does.
void read_gemma2(const gguf::File& f, const std::string& p, ModelConfig& c) {
  validate_config(c, f.source());  // dimensions first: local_layers is sized by n_layers
  c.post_norm = true;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.n_layers == 46 ? c.d_model / c.n_heads : c.d_head));
  c.attn_softcap = read_softcap(f, p + "attn_logit_softcapping", 50.0);
  c.final_softcap = read_softcap(f, p + "final_logit_softcapping", 30.0);
  if (c.rope_scaling.type != "none") {
    throw UnsupportedError(f.source() + ": RoPE scaling (" + c.rope_scaling.type +
                           ") on a gemma2 model is not supported (llama.cpp would scale its local layers too)");
  }
  const int64_t window = f.get_int_opt(p + "attention.sliding_window").value_or(4096);
  if (window <= 0) throw FormatError(f.source() + ": " + p + "attention.sliding_window must be positive");
  const int64_t period = f.get_int_opt(p + "attention.sliding_window_pattern").value_or(2);
  if (period < 1) throw FormatError(f.source() + ": " + p + "attention.sliding_window_pattern must be positive");
  c.sliding_window = window;
  c.window_applied = true;
  c.local_layers.assign(static_cast<size_t>(c.n_layers), 0);
  for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers[static_cast<size_t>(l)] = l % period < period - 1 ? 1 : 0;
  c.rotary_base_local = static_cast<float>(f.get_float_opt(p + "rope.freq_base_swa").value_or(c.rotary_base));
}

// Mixture of experts (llama.cpp's llama with expert_count > 0, i.e. Mixtral, and qwen3moe): softmax
// routing to expert_used_count experts whose weights are renormalised (build_moe_ffn's norm_w, true
// for both); each expert has feed_forward_length neurons (qwen3moe: expert_feed_forward_length).
void read_experts(const gguf::File& f, const std::string& arch, ModelConfig& c) {
  const std::string p = arch + ".";
  const int64_t E = f.get_int_opt(p + "expert_count").value_or(0);
  const bool qwen_moe = arch == "qwen3moe" || arch == "qwen2moe";
  if (qwen_moe && E <= 0) throw FormatError(f.source() + ": " + p + "expert_count is missing or 0");
  if (E <= 0) return;
  if (arch != "llama" && !qwen_moe) {
    throw UnsupportedError(f.source() + ": " + p + "expert_count = " + std::to_string(E) +
                           ": mixture-of-experts " + arch + " models are not supported (llama and qwen3moe are)");
  }
  const int64_t K = f.get_int_opt(p + "expert_used_count").value_or(0);
  if (E > 1024 || K < 1 || K > E) {
    throw FormatError(f.source() + ": " + p + "expert_used_count = " + std::to_string(K) + " for " +
                      std::to_string(E) + " experts (expected 1.." + std::to_string(std::min<int64_t>(E, 1024)) + ")");
  }
  c.n_experts = E;
  c.n_experts_used = K;
  c.d_expert = qwen_moe ? f.get_int_opt(p + "expert_feed_forward_length").value_or(c.d_mlp / K) : c.d_mlp;
  // qwen2moe: a shared expert (expert_shared_feed_forward_length, default the dense size), and the
  // routed weights not renormalised (build_moe_ffn's norm_w is false for it).
  c.d_shared_expert = arch == "qwen2moe" ? f.get_int_opt(p + "expert_shared_feed_forward_length").value_or(c.d_mlp) : 0;
  for (const int64_t n : {c.d_expert, arch == "qwen2moe" ? c.d_shared_expert : int64_t{1}}) {
    if (n < 1 || n > (int64_t{1} << 20)) throw FormatError(f.source() + ": implausible expert size " + std::to_string(n));
  }
  c.d_mlp = E * c.d_expert + c.d_shared_expert;
  c.moe_norm_topk = arch != "qwen2moe";
}

ModelConfig read_config(const gguf::File& f, const std::string& arch) {
  ModelConfig c;
  c.original_architecture = arch;
  c.model_name = f.get_string_opt("general.name").value_or("");
  const std::string p = arch + ".";
  c.n_layers = f.get_int(p + "block_count");
  c.d_model = f.get_int(p + "embedding_length");
  c.d_mlp = f.get_int(p + "feed_forward_length");
  c.n_heads = f.get_int(p + "attention.head_count");
  c.n_key_value_heads = f.get_int_opt(p + "attention.head_count_kv").value_or(c.n_heads);
  c.n_ctx = f.get_int(p + "context_length");
  if (c.n_heads > 0) c.d_head = f.get_int_opt(p + "attention.key_length").value_or(c.d_model / c.n_heads);
  if (const auto dv = f.get_int_opt(p + "attention.value_length"); dv && *dv != c.d_head) {
    throw UnsupportedError(f.source() + ": " + p + "attention.value_length (" + std::to_string(*dv) +
                           ") differs from the key length (" + std::to_string(c.d_head) + "); not supported");
  }
  const gguf::TensorDesc* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) throw FormatError(f.source() + ": tensor 'token_embd.weight' is missing");
  c.d_vocab = embd->ne.size() == 2 ? embd->ne[1] : 0;
  if (arch == "gpt2") {
    c.architecture = Architecture::kGpt2;
    c.normalization_type = NormType::kLayerNorm;
    c.eps = static_cast<float>(f.get_float(p + "attention.layer_norm_epsilon"));
    c.act_fn = ActFn::kGeluNew;
    c.gated_mlp = false;
    c.positional_embedding_type = PositionalEmbedding::kStandard;
    c.rotary_dim = 0;
  } else if (arch == "gptneox") {
    // llama.cpp's gptneox graph: GPT-2's block (LayerNorms and biases, fused [q; k; v], tanh GELU)
    // with NEOX rotation of the first rope.dimension_count dims and, when the file says so, a
    // parallel residual.
    c.architecture = Architecture::kGptNeoX;
    c.normalization_type = NormType::kLayerNorm;
    c.eps = static_cast<float>(f.get_float(p + "attention.layer_norm_epsilon"));
    c.act_fn = ActFn::kGeluNew;
    c.gated_mlp = false;
    read_rotary(f, p, RopeLayout::kHalf, c);
    const auto par = f.get_bool_opt(p + "use_parallel_residual");
    if (!par) throw FormatError(f.source() + ": key '" + p + "use_parallel_residual' is missing");
    c.parallel_residual = *par;
  } else {
    c.architecture = Architecture::kLlama;
    c.normalization_type = NormType::kRmsNorm;
    c.eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon"));
    c.act_fn = ActFn::kSilu;
    c.gated_mlp = true;
    // llama_model_rope_type: LLAMA_ROPE_TYPE_NORM for llama, NEOX for qwen2, qwen3, phi3, gemma, olmo2.
    read_rotary(f, p, arch == "llama" ? RopeLayout::kInterleaved : RopeLayout::kHalf, c);
    c.qk_norm = arch == "qwen3" || arch == "qwen3moe";
    if (arch == "olmo2") {  // llama.cpp's olmo2 graph
      c.qk_norm_full = true;
      c.pre_norm = false;
      c.post_norm = true;
    }
    read_experts(f, arch, c);
    if (arch == "gemma" || arch == "gemma2" || arch == "gemma3") {  // llama.cpp's gemma graphs: embeddings scaled by
      // sqrtf(n_embd), GeGLU (its converter already stored the norm weights as 1 + w)
      c.act_fn = ActFn::kGeluNew;
      c.embedding_scale = std::sqrt(static_cast<float>(c.d_model));
    }
    if (arch == "gemma3") read_gemma3(f, p, c);
    // A sliding window (Phi-3 files carry one that llama.cpp currently ignores, Hugging Face applies):
    // sequences up to it attend the same either way, so reslens runs those and refuses longer ones.
    if (const auto w = f.get_int_opt(p + "attention.sliding_window"); w && *w > 0) c.sliding_window = *w;
    // Gemma 3's local layers attend within it exactly as llama.cpp does (LLAMA_SWA_TYPE_STANDARD).
    if (arch == "gemma3" && !c.local_layers.empty()) c.window_applied = true;
    if (arch == "gemma2") read_gemma2(f, p, c);
  }
  return c;
}

std::string gguf_dtype(const gguf::File& f) {
  std::vector<std::string> types;
  for (const auto& t : f.tensors()) {
    if (t.ne.size() >= 2) types.push_back(gguf::tensor_type_name(t.type));
  }
  return weights_dtype(types);
}

constexpr LlamaLayerNames kGgufLlamaNames = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_q.bias", "attn_k.bias",
    "attn_v.bias", "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
    "ffn_down.weight", nullptr, nullptr, nullptr, nullptr, "ffn_gate_inp.weight", "ffn_gate_exps.weight",
    "ffn_up_exps.weight", "ffn_down_exps.weight"};
// Phi-3: Q, K, V fused as attn_qkv when the file has it, gate and up always fused as ffn_up
// ([gate; up] rows: llama.cpp's LLM_FFN_SWIGLU takes silu of the first half times the second).
constexpr LlamaLayerNames kGgufPhi3Names = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_q.bias", "attn_k.bias",
    "attn_v.bias", "attn_output.weight", "attn_output.bias", "ffn_norm.weight", nullptr, nullptr,
    "ffn_down.weight", nullptr, nullptr, "attn_qkv.weight", "ffn_up.weight"};
// Qwen3: per-head q/k RMSNorm weights.
constexpr LlamaLayerNames kGgufQwen3Names = {
    "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_q.bias", "attn_k.bias",
    "attn_v.bias", "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
    "ffn_down.weight", "attn_q_norm.weight", "attn_k_norm.weight", nullptr, nullptr, "ffn_gate_inp.weight",
    "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"};
// Qwen2-MoE: Qwen2's attention, routed experts and a shared one.
constexpr LlamaLayerNames kGgufQwen2MoeNames = {
    .attn_norm = "attn_norm.weight", .q = "attn_q.weight", .k = "attn_k.weight", .v = "attn_v.weight",
    .q_bias = "attn_q.bias", .k_bias = "attn_k.bias", .v_bias = "attn_v.bias", .o = "attn_output.weight",
    .o_bias = "attn_output.bias", .ffn_norm = "ffn_norm.weight", .gate = nullptr, .up = nullptr, .down = nullptr,
    .router = "ffn_gate_inp.weight", .expert_gate = "ffn_gate_exps.weight", .expert_up = "ffn_up_exps.weight",
    .expert_down = "ffn_down_exps.weight", .shared_gate = "ffn_gate_shexp.weight", .shared_up = "ffn_up_shexp.weight",
    .shared_down = "ffn_down_shexp.weight", .shared_expert_gate = "ffn_gate_inp_shexp.weight"};
// OLMo 2: no pre-norms; q/k norms over the whole projections; post-attention and post-MLP norms.
constexpr LlamaLayerNames kGgufOlmo2Names = {.attn_norm = nullptr, .q = "attn_q.weight", .k = "attn_k.weight",
                                             .v = "attn_v.weight", .q_bias = nullptr, .k_bias = nullptr,
                                             .v_bias = nullptr, .o = "attn_output.weight", .o_bias = nullptr,
                                             .ffn_norm = nullptr, .gate = "ffn_gate.weight", .up = "ffn_up.weight",
                                             .down = "ffn_down.weight", .q_norm = "attn_q_norm.weight",
                                             .k_norm = "attn_k_norm.weight", .post_attn_norm = "post_attention_norm.weight",
                                             .post_ffn_norm = "post_ffw_norm.weight"};
// Gemma 3: pre- and post-sublayer norms and per-head q/k norms.
constexpr LlamaLayerNames kGgufGemma3Names = {
    .attn_norm = "attn_norm.weight", .q = "attn_q.weight", .k = "attn_k.weight", .v = "attn_v.weight",
    .q_bias = "attn_q.bias", .k_bias = "attn_k.bias", .v_bias = "attn_v.bias", .o = "attn_output.weight",
    .o_bias = nullptr, .ffn_norm = "ffn_norm.weight", .gate = "ffn_gate.weight", .up = "ffn_up.weight",
    .down = "ffn_down.weight", .q_norm = "attn_q_norm.weight", .k_norm = "attn_k_norm.weight",
    .post_attn_norm = "post_attention_norm.weight", .post_ffn_norm = "post_ffw_norm.weight"};
// Gemma 2: Gemma 3's pre- and post-sublayer norms, no q/k norms.
constexpr LlamaLayerNames kGgufGemma2Names = {
    .attn_norm = "attn_norm.weight", .q = "attn_q.weight", .k = "attn_k.weight", .v = "attn_v.weight",
    .q_bias = "attn_q.bias", .k_bias = "attn_k.bias", .v_bias = "attn_v.bias", .o = "attn_output.weight",
    .o_bias = nullptr, .ffn_norm = "ffn_norm.weight", .gate = "ffn_gate.weight", .up = "ffn_up.weight",
    .down = "ffn_down.weight", .q_norm = nullptr, .k_norm = nullptr,
    .post_attn_norm = "post_attention_norm.weight", .post_ffn_norm = "post_ffw_norm.weight"};
// llama.cpp applies whichever attention biases a llama or qwen2 block holds (create_tensor_qkv,
// wo_b); an FFN bias is not applied by reslens and so refused by check_gguf_tensors.
constexpr LlamaBiases kGgufLlamaBiases = {BiasRule::kIfPresent, BiasRule::kIfPresent};

}  // namespace

std::shared_ptr<const Model> load_gguf_model(const std::filesystem::path& path, const LoadOptions& o) {
  if (!o.tokenizer_path.empty()) {
    // Not silently ignored: the ids would come from the GGUF's own vocabulary, not from that file.
    throw InvalidArgument(path.string() + ": a GGUF file carries its own tokenizer; a separate tokenizer (" +
                          o.tokenizer_path.string() + ", --tokenizer) applies to llama2.c checkpoints and "
                          "Hugging Face directories only");
  }
  const gguf::File f(path);
  const std::string src = f.source();
  const std::string arch = f.get_string("general.architecture");
  const std::set<std::string> supported = {"llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "phi3",
                                            "gemma", "gemma2", "gemma3", "olmo2", "gpt2", "gptneox"};
  if (supported.count(arch) == 0) {
    throw UnsupportedError(src + ": architecture '" + arch +
                           "' is not supported (supported: llama, qwen2, qwen2moe, qwen3, qwen3moe, phi3, gemma, gemma2, gemma3, "
                           "olmo2, gpt2, gptneox)");
  }
  check_gguf_keys(f, arch, applied_keys(arch));
  ModelConfig c = read_config(f, arch);
  c.dtype = gguf_dtype(f);
  // Llama 3's RoPE frequency factors (llama.cpp's converter writes them for rope_scaling llama3):
  // [rotary_dim / 2] divisors of each pair's frequency, on every layer.
  if (c.architecture == Architecture::kLlama && arch == "llama" && f.find_tensor("rope_freqs.weight") != nullptr) {
    if (c.rope_scaling.type == "yarn") {
      throw UnsupportedError(src + ": rope_freqs.weight together with yarn RoPE scaling is not supported");
    }
    c.rope_scaling.type = c.rope_scaling.linear_factor == 1.0 ? "rope_freqs" : "linear + rope_freqs";
  }
  validate_config(c, src);

  WeightBytes bytes;
  for (const auto& td : f.tensors()) {
    int64_t n = 1;
    for (const int64_t x : td.ne) n *= x;
    bytes.add(static_cast<int64_t>(f.tensor_bytes(td).size()), n, td.type == static_cast<uint32_t>(gguf::TensorType::kF32));
  }
  require_memory_for_weights(bytes, !o.weights_as_float32, c.dtype, src);

  auto storage = std::make_shared<ModelStorage>(!o.weights_as_float32);
  storage->keep(f.mapping());
  GgufTensors t(f, *storage);
  const int64_t d = c.d_model;
  const int64_t q_dim = c.n_heads * c.d_head;

  ModelWeights w;
  w.W_E = t.matrix("token_embd.weight", c.d_vocab, d);
  if (c.architecture == Architecture::kGpt2) w.W_pos = t.matrix("position_embd.weight", c.n_ctx, d);
  w.ln_final_w = t.vector("output_norm.weight", d);
  w.ln_final_b = t.vector_opt("output_norm.bias", d);
  c.tied_embeddings = arch == "gemma" || arch == "gemma2" || !t.has("output.weight");  // gemma, gemma2: always tied (llama.cpp)
  w.W_U = c.tied_embeddings ? w.W_E : t.matrix("output.weight", c.d_vocab, d);
  if (c.rope_scaling.type.find("rope_freqs") != std::string::npos) {
    const VectorView ff = t.vector("rope_freqs.weight", c.rotary_dim / 2);
    c.rope_scaling.freq_factors.assign(ff.data, ff.data + ff.size);
    validate_config(c, src);  // every factor finite and positive
  }
  if (arch == "phi3") read_gguf_longrope(f, t, c);

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    if (c.architecture == Architecture::kLlama) {
      const LlamaLayerNames& names = arch == "phi3"                         ? kGgufPhi3Names
                                     : arch == "qwen3" || arch == "qwen3moe" ? kGgufQwen3Names
                                     : arch == "olmo2"                       ? kGgufOlmo2Names
                                     : arch == "gemma3"                      ? kGgufGemma3Names
                                     : arch == "gemma2"                      ? kGgufGemma2Names
                                     : arch == "qwen2moe"                    ? kGgufQwen2MoeNames
                                                                             : kGgufLlamaNames;
      // llama.cpp's gemma graph applies q/k/v biases when present but never an output bias.
      const LlamaBiases biases = arch == "gemma" || arch == "gemma2" || arch == "gemma3"
                                     ? LlamaBiases{BiasRule::kIfPresent, BiasRule::kNone}
                                                                    : kGgufLlamaBiases;
      w.layers.push_back(load_llama_layer(t, b, names, c, biases));
      continue;
    }
    LayerWeights L;  // GPT-2 and GPT-NeoX: one block layout in GGUF
    L.ln1_w = t.vector(b + "attn_norm.weight", d);
    L.ln1_b = t.vector_opt(b + "attn_norm.bias", d);
    L.ln2_w = t.vector(b + "ffn_norm.weight", d);
    L.ln2_b = t.vector_opt(b + "ffn_norm.bias", d);
    const MatrixView qkv = t.matrix(b + "attn_qkv.weight", 3 * d, d);  // read first: a missing one is named first
    assign_fused_qkv(L, qkv, t.vector(b + "attn_qkv.bias", 3 * d).data, d, d);
    L.W_O = t.matrix(b + "attn_output.weight", d, q_dim);
    L.b_O = t.vector(b + "attn_output.bias", d);
    L.W_in = t.matrix(b + "ffn_up.weight", c.d_mlp, d);
    L.b_in = t.vector(b + "ffn_up.bias", c.d_mlp);
    L.W_out = t.matrix(b + "ffn_down.weight", d, c.d_mlp);
    L.b_out = t.vector(b + "ffn_down.bias", d);
    w.layers.push_back(L);
  }

  note_attention_biases(c, w.layers);
  check_gguf_tensors(f, arch, t.used());

  std::vector<TensorInfo> infos;
  for (const auto& desc : f.tensors()) {
    infos.push_back({desc.name, gguf::tensor_type_name(desc.type), desc.shape()});
  }
  auto tokenizer = tokenizer_from_gguf(f);
  check_tokenizer_fits(*tokenizer, c.d_vocab, src, src);
  return std::make_shared<Model>(std::move(c), std::move(w), std::move(tokenizer), std::move(storage),
                                 std::move(infos), "GGUF v" + std::to_string(f.version()), path);
}

}  // namespace reslens
