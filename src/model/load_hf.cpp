// Hugging Face model directories: config.json plus model.safetensors, or shards listed by
// model.safetensors.index.json. Architectures: LlamaForCausalLM (and MistralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM: Llama blocks, Qwen2 with Q/K/V biases, Qwen3
// with q/k norms, Phi-3 with fused projections and partial rotation, GemmaForCausalLM with GeGLU,
// scaled embeddings and 1 + w norms) and GPT2LMHeadModel (names with or
// without the `transformer.` prefix). Matrices are used in place from the mapping in their stored
// type (F32, F16, BF16; model/weight_rows.h decodes them); GPT-2's Conv1D weights ([in, out]) are transposed once into
// [out, in]. Llama Q/K rows are in the rotate_half layout (RopeLayout::kHalf). Every config.json
// field and every tensor is applied or known to be harmless; anything else stops the load by name
// (model/known_keys.h).
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/mapped_file.h"
#include "io/safetensors.h"
#include "model/known_keys.h"
#include "model/loader.h"
#include "model/rope_scaling.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"

namespace reslens {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& p) {
  const std::string text = read_text_file(p);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(p.string() + ": not valid JSON: " + e.what());
  }
}

// Every tensor of the checkpoint, across shards.
class HfTensors {
 public:
  HfTensors(const std::filesystem::path& dir, ModelStorage& storage) : storage_(storage) {
    const auto single = dir / "model.safetensors";
    const auto index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
      const json j = read_json(index);
      if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
        throw FormatError(index.string() + ": has no weight_map object");
      }
      std::set<std::string> shards;
      for (const auto& [name, file] : j["weight_map"].items()) {
        if (!file.is_string()) throw FormatError(index.string() + ": weight_map entry '" + name + "' is not a file name");
        shards.insert(file.get<std::string>());
      }
      for (const std::string& shard : shards) {
        const auto path = dir / shard;
        if (shard.find('/') != std::string::npos || !std::filesystem::exists(path)) {
          throw IoError(index.string() + ": shard '" + shard + "' is missing");
        }
        add(path);
      }
    } else if (std::filesystem::exists(single)) {
      add(single);
    } else {
      throw IoError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
    }
  }

  bool has(const std::string& name) const { return where_.count(name) != 0; }

  StoredTensor get(const std::string& name) {
    auto it = where_.find(name);
    if (it == where_.end()) throw FormatError(source_ + ": tensor '" + name + "' is missing");
    used_.insert(name);
    const safetensors::File& f = *files_[it->second];
    const safetensors::TensorDesc& t = *f.find(name);
    StorageType type = StorageType::kF32;
    if (t.dtype == "F16") type = StorageType::kF16;
    else if (t.dtype == "BF16") type = StorageType::kBF16;
    else if (t.dtype != "F32") {
      throw UnsupportedError(f.source() + ": tensor '" + name + "' has dtype " + t.dtype +
                             "; reslens loads F32, F16 and BF16 safetensors");
    }
    return {f.tensor_bytes(t), type, t.shape};
  }
  std::string dtype(const std::string& name) const {
    auto it = where_.find(name);
    return files_[it->second]->find(name)->dtype;
  }
  MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) {
    return matrix_view(storage_, get(name), name, rows, cols, source_of(name));
  }
  /// The same, always float32 (for what the loader rebuilds or reads element by element).
  MatrixView float_matrix(const std::string& name, int64_t rows, int64_t cols) {
    return float_matrix_view(storage_, get(name), name, rows, cols, source_of(name));
  }
  /// A vector; a norm weight ("...norm.weight") with the norm offset added (set_norm_offset).
  VectorView vector(const std::string& name, int64_t size) {
    const VectorView v = vector_view(storage_, get(name), name, size, source_of(name));
    const bool norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    return norm && norm_offset_ != 0.0f ? shifted(v, norm_offset_) : v;
  }
  /// Gemma's RMSNorms scale by 1 + w: with offset 1, every norm weight reads as 1 + w (in float), so
  /// what is built from it (the value vectors a post-norm is folded into) sees the real scale.
  void set_norm_offset(float offset) { norm_offset_ = offset; }
  /// A tensor of any rank checked against `shape` (outermost first), as float32.
  const float* stacked(const std::string& name, const std::vector<int64_t>& shape) {
    return materialize(storage_, get(name), name, shape, source_of(name));
  }
  const float* own(std::vector<float> values) { return storage_.own(std::move(values)); }
  /// An owned copy of v with `add` added to each value, in float.
  VectorView shifted(const VectorView& v, float add) {
    std::vector<float> out(v.data, v.data + v.size);
    for (float& x : out) x += add;
    return {storage_.own(std::move(out)), v.size};
  }
  /// Rows `order` of a [rows, cols] tensor (rows == order.size()), as an owned matrix: out row i =
  /// stored row order[i]. A vector is a matrix of one column.
  MatrixView gathered_rows(const std::string& name, int64_t rows, int64_t cols, const std::vector<int64_t>& order) {
    const StoredTensor raw = get(name);
    const std::vector<int64_t> shape = cols == 1 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
    const float* src = materialize(storage_, raw, name, shape, source_of(name));
    std::vector<float> out(static_cast<size_t>(rows * cols));
    for (int64_t i = 0; i < rows; ++i) {
      std::copy(src + order[static_cast<size_t>(i)] * cols, src + (order[static_cast<size_t>(i)] + 1) * cols,
                out.begin() + i * cols);
    }
    storage_.discard(src);
    storage_.release(raw.bytes);
    return {storage_.own(std::move(out)), rows, cols, cols};
  }
  /// A Conv1D weight stored [in, out], returned as an owned [out, in] matrix.
  MatrixView conv1d(const std::string& name, int64_t in, int64_t out) {
    const StoredTensor raw = get(name);
    const float* src = materialize(storage_, raw, name, {in, out}, source_of(name));
    std::vector<float> t(static_cast<size_t>(in * out));
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t o = 0; o < out; ++o) t[static_cast<size_t>(o * in + i)] = src[i * out + o];
    }
    // Only the transposed copy is used from now on: free a converted intermediate, drop the pages.
    storage_.discard(src);
    storage_.release(raw.bytes);
    return {storage_.own(std::move(t)), out, in, in};
  }
  std::vector<TensorInfo> infos() const {
    std::vector<TensorInfo> out;
    for (const auto& f : files_) {
      for (const auto& [name, t] : f->tensors()) out.push_back({name, t.dtype, t.shape});
    }
    return out;
  }
  std::string source_of(const std::string& name) const {
    auto it = where_.find(name);
    return it == where_.end() ? source_ : files_[it->second]->source();
  }
  const std::vector<std::unique_ptr<safetensors::File>>& files() const { return files_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, file] : where_) out.push_back(name);
    return out;
  }
  const std::set<std::string>& used() const { return used_; }

 private:
  void add(const std::filesystem::path& path) {
    files_.push_back(std::make_unique<safetensors::File>(path));
    storage_.keep(files_.back()->mapping());
    if (source_.empty()) source_ = path.string();
    for (const auto& [name, t] : files_.back()->tensors()) {
      if (!where_.emplace(name, files_.size() - 1).second) {
        throw FormatError(path.string() + ": tensor '" + name + "' also appears in another shard");
      }
    }
  }

  ModelStorage& storage_;
  std::vector<std::unique_ptr<safetensors::File>> files_;
  std::map<std::string, size_t> where_;
  std::set<std::string> used_;
  std::string source_;
  float norm_offset_ = 0.0f;
};

int64_t get_int(const json& j, const char* key, const std::string& src) {
  if (!j.contains(key) || !j[key].is_number_integer()) {
    throw FormatError(src + ": '" + key + "' is missing or not an integer");
  }
  return j[key].get<int64_t>();
}

// Optional fields: absent or null give the fallback; a value of the wrong type is an error, never
// replaced by the default (a string "1e-5" for rms_norm_eps would otherwise run with 1e-6).
int64_t get_int_or(const json& j, const char* key, int64_t fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_integer()) throw FormatError(src + ": '" + key + "' is " + j[key].dump() + ", not an integer");
  return j[key].get<int64_t>();
}

double get_num_or(const json& j, const char* key, double fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) throw FormatError(src + ": '" + key + "' is " + j[key].dump() + ", not a number");
  return j[key].get<double>();
}

std::string hf_dtype(const HfTensors& t) {
  std::vector<std::string> types;
  for (const TensorInfo& i : t.infos()) {
    if (i.shape.size() >= 2) types.push_back(i.dtype);
  }
  return weights_dtype(types);
}

bool get_bool_or(const json& j, const char* key, bool fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) throw FormatError(src + ": '" + key + "' is not true or false");
  return j[key].get<bool>();
}

constexpr LlamaLayerNames kHfLlamaNames = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
    "self_attn.o_proj.bias", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
    "mlp.down_proj.weight"};

// config.json fields load_llama reads and applies (known_keys.h refuses unknown ones).
// config.json fields load_llama reads and applies for every Llama-graph architecture, and those it
// applies only for some (known_keys.h refuses the rest, so a field another family would need, e.g.
// num_experts on a dense Llama, is never silently ignored).
const std::set<std::string> kHfLlamaFields = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "vocab_size", "rms_norm_eps", "hidden_act", "rope_theta", "rope_scaling", "attention_bias",
    "mlp_bias", "tie_word_embeddings", "sliding_window", "use_sliding_window", "max_window_layers",
    "partial_rotary_factor", "original_max_position_embeddings", "layer_types"};

std::set<std::string> hf_llama_fields(const std::string& arch) {
  std::set<std::string> f = kHfLlamaFields;
  auto add = [&](std::initializer_list<const char*> names) { f.insert(names.begin(), names.end()); };
  // the auxiliary loss, router logits output and router jitter only matter in training
  if (arch == "MixtralForCausalLM") {
    add({"num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "output_router_logits",
         "router_jitter_noise"});
  }
  if (arch == "Qwen3MoeForCausalLM" || arch == "Qwen2MoeForCausalLM") {
    add({"num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob", "decoder_sparse_step",
         "mlp_only_layers", "router_aux_loss_coef", "output_router_logits"});
  }
  if (arch == "Qwen2MoeForCausalLM") add({"shared_expert_intermediate_size"});
  if (arch == "GemmaForCausalLM" || arch == "Gemma3ForCausalLM" || arch == "Gemma2ForCausalLM") add({"hidden_activation"});
  // Gemma 2 (read_gemma2); cache_implementation ("hybrid") only picks transformers' KV cache class
  if (arch == "Gemma2ForCausalLM") {
    add({"query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping", "cache_implementation"});
  }
  // Gemma 3 (read_gemma3); its softcaps must be null
  if (arch == "Gemma3ForCausalLM") {
    add({"sliding_window_pattern", "rope_local_base_freq", "query_pre_attn_scalar", "attn_logit_softcapping",
         "final_logit_softcapping"});
  }
  return f;
}

// Gemma 3 text: pre- and post-sublayer norms (input_layernorm, post_attention_layernorm,
// pre_feedforward_layernorm, post_feedforward_layernorm) and per-head q/k norms, all 1 + w.
constexpr LlamaLayerNames kHfGemma3Names = {
    .attn_norm = "input_layernorm.weight", .q = "self_attn.q_proj.weight", .k = "self_attn.k_proj.weight",
    .v = "self_attn.v_proj.weight", .q_bias = "self_attn.q_proj.bias", .k_bias = "self_attn.k_proj.bias",
    .v_bias = "self_attn.v_proj.bias", .o = "self_attn.o_proj.weight", .o_bias = "self_attn.o_proj.bias",
    .ffn_norm = "pre_feedforward_layernorm.weight", .gate = "mlp.gate_proj.weight", .up = "mlp.up_proj.weight",
    .down = "mlp.down_proj.weight", .q_norm = "self_attn.q_norm.weight", .k_norm = "self_attn.k_norm.weight",
    .post_attn_norm = "post_attention_layernorm.weight", .post_ffn_norm = "post_feedforward_layernorm.weight"};

// Qwen3: per-head q/k RMSNorm weights.
constexpr LlamaLayerNames kHfQwen3Names = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
    "self_attn.o_proj.bias", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
    "mlp.down_proj.weight", "self_attn.q_norm.weight", "self_attn.k_norm.weight"};
// Mixtral: the router and each expert's w1 (gate), w3 (up), w2 (down).
constexpr LlamaLayerNames kHfMixtralNames = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
    "self_attn.o_proj.bias", "post_attention_layernorm.weight", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
    nullptr, "block_sparse_moe.gate.weight", "block_sparse_moe.experts.{e}.w1.weight",
    "block_sparse_moe.experts.{e}.w3.weight", "block_sparse_moe.experts.{e}.w2.weight"};
// Qwen3-MoE: Qwen3's attention (q/k norms) and the router and experts under mlp.
constexpr LlamaLayerNames kHfQwen3MoeNames = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
    "self_attn.o_proj.bias", "post_attention_layernorm.weight", nullptr, nullptr, nullptr, "self_attn.q_norm.weight",
    "self_attn.k_norm.weight", nullptr, nullptr, "mlp.gate.weight", "mlp.experts.{e}.gate_proj.weight",
    "mlp.experts.{e}.up_proj.weight", "mlp.experts.{e}.down_proj.weight"};

// The experts of MixtralForCausalLM (num_local_experts) and Qwen3MoeForCausalLM (num_experts,
// moe_intermediate_size, norm_topk_prob; every layer sparse): softmax routing to
// num_experts_per_tok experts, renormalised (Mixtral always; Qwen3-MoE when norm_topk_prob).
void read_experts(const json& cfg, const std::string& arch, ModelConfig& c, const std::string& src) {
  if (arch != "MixtralForCausalLM" && arch != "Qwen3MoeForCausalLM" && arch != "Qwen2MoeForCausalLM") return;
  const bool mixtral = arch == "MixtralForCausalLM";
  c.n_experts = get_int(cfg, mixtral ? "num_local_experts" : "num_experts", src);
  c.n_experts_used = get_int(cfg, "num_experts_per_tok", src);
  if (c.n_experts < 1 || c.n_experts > 1024 || c.n_experts_used < 1 || c.n_experts_used > c.n_experts) {
    throw FormatError(src + ": num_experts_per_tok = " + std::to_string(c.n_experts_used) + " for " +
                      std::to_string(c.n_experts) + " experts");
  }
  c.d_expert = mixtral ? c.d_mlp : get_int(cfg, "moe_intermediate_size", src);
  if (c.d_expert < 1 || c.d_expert > (int64_t{1} << 20)) {
    throw FormatError(src + ": implausible expert size " + std::to_string(c.d_expert));
  }
  if (arch == "Qwen2MoeForCausalLM") {  // Qwen2MoeSparseMoeBlock's shared expert, sigmoid-gated
    c.d_shared_expert = get_int(cfg, "shared_expert_intermediate_size", src);
    if (c.d_shared_expert < 1 || c.d_shared_expert > (int64_t{1} << 20)) {
      throw FormatError(src + ": implausible shared_expert_intermediate_size " + std::to_string(c.d_shared_expert));
    }
  }
  c.d_mlp = c.n_experts * c.d_expert + c.d_shared_expert;
  c.moe_norm_topk = mixtral || get_bool_or(cfg, "norm_topk_prob", false, src);
  if (!mixtral) {
    if (get_int_or(cfg, "decoder_sparse_step", 1, src) != 1) {
      throw UnsupportedError(src + ": decoder_sparse_step != 1 (dense layers between sparse ones) is not supported");
    }
    if (cfg.contains("mlp_only_layers") && !(cfg["mlp_only_layers"].is_array() && cfg["mlp_only_layers"].empty())) {
      throw UnsupportedError(src + ": mlp_only_layers " + cfg["mlp_only_layers"].dump() + " is not supported");
    }
  }
}

// OLMo 2: no pre-norms (post_attention_layernorm and post_feedforward_layernorm normalise the
// sublayers' outputs), q/k norms over the whole projections.
constexpr LlamaLayerNames kHfOlmo2Names = {
    .attn_norm = nullptr, .q = "self_attn.q_proj.weight", .k = "self_attn.k_proj.weight", .v = "self_attn.v_proj.weight",
    .q_bias = "self_attn.q_proj.bias", .k_bias = "self_attn.k_proj.bias", .v_bias = "self_attn.v_proj.bias",
    .o = "self_attn.o_proj.weight", .o_bias = "self_attn.o_proj.bias", .ffn_norm = nullptr,
    .gate = "mlp.gate_proj.weight", .up = "mlp.up_proj.weight", .down = "mlp.down_proj.weight",
    .q_norm = "self_attn.q_norm.weight", .k_norm = "self_attn.k_norm.weight",
    .post_attn_norm = "post_attention_layernorm.weight", .post_ffn_norm = "post_feedforward_layernorm.weight"};

// Gemma 2/3: scores scaled by query_pre_attn_scalar^-1/2 (d_head by default).
void read_query_pre_attn_scalar(const json& cfg, ModelConfig& c, const std::string& src) {
  const double scalar = get_num_or(cfg, "query_pre_attn_scalar", static_cast<double>(c.d_head), src);
  if (!(scalar > 0.0)) throw FormatError(src + ": query_pre_attn_scalar must be positive");
  c.attn_scale = static_cast<float>(1.0 / std::sqrt(scalar));
}

// Gemma 2/3 `layer_types` into c.local_layers ("sliding_attention": 1); false when the config has
// none (each family then has its own default).
bool read_layer_types(const json& cfg, ModelConfig& c, const std::string& src) {
  c.local_layers.assign(static_cast<size_t>(c.n_layers), 0);
  if (!cfg.contains("layer_types") || cfg["layer_types"].is_null()) return false;
  if (!cfg["layer_types"].is_array() || static_cast<int64_t>(cfg["layer_types"].size()) != c.n_layers) {
    throw FormatError(src + ": layer_types is not a list of num_hidden_layers entries");
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const json& lt = cfg["layer_types"][static_cast<size_t>(l)];
    if (lt != "full_attention" && lt != "sliding_attention") {
      throw UnsupportedError(src + ": layer_types entry " + lt.dump() + " is not supported");
    }
    c.local_layers[static_cast<size_t>(l)] = lt == "sliding_attention" ? 1 : 0;
  }
  return true;
}

// Gemma 3 text (Gemma3TextConfig): per-head q/k norms, pre- and post-sublayer norms, scores scaled by
// query_pre_attn_scalar^-1/2, no softcaps (refused otherwise), and local layers (layer_types
// "sliding_attention", or all but every sliding_window_pattern-th) rotating with rope_local_base_freq
// and no scaling, the global ones with rope_theta and rope_scaling.
void read_gemma3(const json& cfg, ModelConfig& c, const std::string& src) {
  c.qk_norm = true;
  c.post_norm = true;
  for (const char* cap : {"attn_logit_softcapping", "final_logit_softcapping"}) {
    if (cfg.contains(cap) && !cfg[cap].is_null()) {
      throw UnsupportedError(src + ": " + cap + " = " + cfg[cap].dump() + " is not supported (Gemma 3 has none)");
    }
  }
  read_query_pre_attn_scalar(cfg, c, src);
  c.rotary_base_local = static_cast<float>(get_num_or(cfg, "rope_local_base_freq", 10000.0, src));
  if (!read_layer_types(cfg, c, src)) {
    const int64_t period = get_int_or(cfg, "sliding_window_pattern", 6, src);
    if (period < 1) throw FormatError(src + ": sliding_window_pattern must be positive");
    for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers[static_cast<size_t>(l)] = (l + 1) % period != 0 ? 1 : 0;
  }
}

// Gemma 2: Gemma 3's pre- and post-sublayer norms without q/k norms.
constexpr LlamaLayerNames kHfGemma2Names = {
    .attn_norm = "input_layernorm.weight", .q = "self_attn.q_proj.weight", .k = "self_attn.k_proj.weight",
    .v = "self_attn.v_proj.weight", .q_bias = "self_attn.q_proj.bias", .k_bias = "self_attn.k_proj.bias",
    .v_bias = "self_attn.v_proj.bias", .o = "self_attn.o_proj.weight", .o_bias = "self_attn.o_proj.bias",
    .ffn_norm = "pre_feedforward_layernorm.weight", .gate = "mlp.gate_proj.weight", .up = "mlp.up_proj.weight",
    .down = "mlp.down_proj.weight", .q_norm = nullptr, .k_norm = nullptr,
    .post_attn_norm = "post_attention_layernorm.weight", .post_ffn_norm = "post_feedforward_layernorm.weight"};

// A Gemma 2 softcap field: null or absent is no cap (transformers skips the tanh then); otherwise a
// positive finite number, or the load fails naming the field.
float read_hf_softcap(const json& cfg, const char* key, const std::string& src) {
  if (!cfg.contains(key) || cfg[key].is_null()) return 0.0f;
  const double v = get_num_or(cfg, key, 0.0, src);
  if (!(v > 0.0) || !std::isfinite(v) || v > 1e30) {
    throw FormatError(src + ": " + key + " = " + cfg[key].dump() + " is not a positive number");
  }
  return static_cast<float>(v);
}

// Gemma 2 (Gemma2Config): pre- and post-sublayer norms, scores scaled by query_pre_attn_scalar^-1/2
// and capped by attn_logit_softcapping, logits capped by final_logit_softcapping, and sliding_window
// applied on the layers layer_types marks "sliding_attention" (without layer_types: the even
// layers, transformers' is_sliding = not layer_idx % 2). Every layer rotates with rope_theta.
void read_gemma2(const json& cfg, ModelConfig& c, const std::string& src) {
  c.post_norm = true;
  read_query_pre_attn_scalar(cfg, c, src);
  c.attn_softcap = read_hf_softcap(cfg, "attn_logit_softcapping", src);
  c.final_softcap = read_hf_softcap(cfg, "final_logit_softcapping", src);
  c.rotary_base_local = c.rotary_base;
  if (!read_layer_types(cfg, c, src)) {
    for (int64_t l = 0; l < c.n_layers; ++l) c.local_layers[static_cast<size_t>(l)] = l % 2 == 0 ? 1 : 0;
  }
}

// Qwen2-MoE: Qwen2's attention (q/k/v biases), the router, routed experts and a shared one.
constexpr LlamaLayerNames kHfQwen2MoeNames = {
    .attn_norm = "input_layernorm.weight", .q = "self_attn.q_proj.weight", .k = "self_attn.k_proj.weight",
    .v = "self_attn.v_proj.weight", .q_bias = "self_attn.q_proj.bias", .k_bias = "self_attn.k_proj.bias",
    .v_bias = "self_attn.v_proj.bias", .o = "self_attn.o_proj.weight", .o_bias = "self_attn.o_proj.bias",
    .ffn_norm = "post_attention_layernorm.weight", .gate = nullptr, .up = nullptr, .down = nullptr,
    .router = "mlp.gate.weight", .expert_gate = "mlp.experts.{e}.gate_proj.weight",
    .expert_up = "mlp.experts.{e}.up_proj.weight", .expert_down = "mlp.experts.{e}.down_proj.weight",
    .shared_gate = "mlp.shared_expert.gate_proj.weight", .shared_up = "mlp.shared_expert.up_proj.weight",
    .shared_down = "mlp.shared_expert.down_proj.weight", .shared_expert_gate = "mlp.shared_expert_gate.weight",
    .shared_gate_is_row = true};

// Phi-3: fused qkv_proj ([q; k; v] rows) and gate_up_proj ([gate; up] rows, Phi3MLP's chunk(2)).
constexpr LlamaLayerNames kHfPhi3Names = {
    "input_layernorm.weight", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, "self_attn.o_proj.weight",
    nullptr, "post_attention_layernorm.weight", nullptr, nullptr, "mlp.down_proj.weight", nullptr, nullptr,
    "self_attn.qkv_proj.weight", "mlp.gate_up_proj.weight"};


// A list of numbers in rope_scaling (LongRoPE's factors); its length is checked by set_longrope.
std::vector<double> number_list(const json& rs, const char* key, const std::string& src) {
  if (!rs.contains(key) || !rs[key].is_array()) throw FormatError(src + ": rope_scaling." + key + " is missing or not a list");
  std::vector<double> out;
  for (const json& v : rs[key]) {
    if (!v.is_number()) throw FormatError(src + ": rope_scaling." + key + " holds " + v.dump() + ", not a number");
    out.push_back(v.get<double>());
  }
  return out;
}

// The top-level original_max_position_embeddings (Phi-3's configs), 0 when absent.
int64_t top_level_original_context(const json& cfg, const std::string& src) {
  if (!cfg.contains("original_max_position_embeddings") || cfg["original_max_position_embeddings"].is_null()) return 0;
  const json& v = cfg["original_max_position_embeddings"];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
    throw FormatError(src + ": original_max_position_embeddings = " + v.dump() + " is not a positive integer");
  }
  return v.get<int64_t>();
}

// YaRN (transformers' _compute_yarn_parameters): factor, the correction range measured in
// rope_scaling.original_max_position_embeddings (else max_position_embeddings) with beta_fast (32)
// and beta_slow (1), cos/sin times attention_factor (else 1 + 0.1 ln factor). The factor is taken
// as written, as llama.cpp's converter takes it; some transformers versions replace it by
// max_position_embeddings / original_max_position_embeddings (docs/formats.md, "RoPE scaling").
void read_hf_yarn(const json& cfg, const json& rs, ModelConfig& c, const std::string& src, std::set<std::string>& applied) {
  auto num = [&](const char* key, double fallback) {
    if (!rs.contains(key) || rs[key].is_null()) return fallback;
    if (!rs[key].is_number()) throw FormatError(src + ": rope_scaling." + key + " = " + rs[key].dump() + " is not a number");
    const double v = rs[key].get<double>();
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw FormatError(src + ": rope_scaling." + key + " = " + rs[key].dump() + " is not a positive number");
    }
    return v;
  };
  if (!rs.contains("factor")) throw FormatError(src + ": rope_scaling.factor is missing (YaRN needs its factor)");
  YarnParams y;
  y.factor = num("factor", 0.0);
  const int64_t top = top_level_original_context(cfg, src);
  if (!rs.contains("original_max_position_embeddings") && top != 0 && top != c.n_ctx) {
    // transformers versions disagree on whether the top-level value applies to YaRN.
    throw UnsupportedError(src + ": YaRN with original_max_position_embeddings outside rope_scaling (" +
                           std::to_string(top) + ") is ambiguous; put it in rope_scaling");
  }
  y.original_context = num("original_max_position_embeddings", static_cast<double>(c.n_ctx));
  y.beta_fast = num("beta_fast", 32.0);
  y.beta_slow = num("beta_slow", 1.0);
  y.attn_factor = num("attention_factor", yarn_mscale(y.factor));
  if (rs.contains("truncate") && rs["truncate"] != json(true)) {
    throw UnsupportedError(src + ": rope_scaling.truncate = " + rs["truncate"].dump() +
                           " is not supported (llama.cpp always rounds the correction range)");
  }
  set_yarn(c.rope_scaling, y, static_cast<double>(c.rotary_base), c.rotary_dim, src, "rope_scaling.");
  applied.insert({"factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "attention_factor", "truncate"});
}

// LongRoPE (transformers' _compute_longrope_parameters, Phi-3 "longrope"/"su"): the original context
// is the top-level original_max_position_embeddings (else max_position_embeddings), the factor
// max_position_embeddings over it (else rope_scaling.factor), cos/sin times attention_factor (else
// sqrt(1 + ln factor / ln original)). transformers picks the long factors for sequences longer than
// the original context; reslens picks by the model's context window (set_longrope), as llama.cpp does.
void read_hf_longrope(const json& cfg, const json& rs, ModelConfig& c, const std::string& src,
                   std::set<std::string>& applied) {
  const int64_t top = top_level_original_context(cfg, src);
  if (rs.contains("original_max_position_embeddings") &&
      (top == 0 || rs["original_max_position_embeddings"] != json(top))) {
    throw UnsupportedError(src + ": rope_scaling.original_max_position_embeddings = " +
                           rs["original_max_position_embeddings"].dump() +
                           " differs from the top-level original_max_position_embeddings, which LongRoPE reads");
  }
  const int64_t original = top != 0 ? top : c.n_ctx;
  double factor = static_cast<double>(c.n_ctx) / static_cast<double>(original);
  auto positive = [&](const char* key) {
    if (!rs[key].is_number() || !(rs[key].get<double>() > 0.0) || !std::isfinite(rs[key].get<double>())) {
      throw FormatError(src + ": rope_scaling." + key + " = " + rs[key].dump() + " is not a positive number");
    }
    return rs[key].get<double>();
  };
  if (top == 0) {
    if (!rs.contains("factor")) {
      throw FormatError(src + ": LongRoPE needs rope_scaling.factor or original_max_position_embeddings");
    }
    factor = positive("factor");
  } else if (rs.contains("factor")) {
    positive("factor");  // transformers replaces it by the ratio of the context lengths
  }
  const double attn = rs.contains("attention_factor") ? positive("attention_factor")
                                                      : longrope_attention_factor(factor, static_cast<double>(original));
  set_longrope(c.rope_scaling, number_list(rs, "long_factor", src), number_list(rs, "short_factor", src), c.n_ctx,
               original, attn, c.rotary_dim, src, "rope_scaling.long_factor", "rope_scaling.short_factor");
  applied.insert({"long_factor", "short_factor", "factor", "attention_factor", "original_max_position_embeddings"});
}

// rope_scaling (transformers' ROPE_INIT_FUNCTIONS): "default", "linear" (positions divided by
// factor), "llama3" (per-pair frequency divisors), "yarn" and "longrope" (or "su") are applied;
// "dynamic" (angles that change with the sequence length) and any unknown type or field are
// refused by name.
void read_rope_scaling(const json& cfg, ModelConfig& c, const std::string& src) {
  if (!cfg.contains("rope_scaling") || cfg["rope_scaling"].is_null()) return;
  const json& rs = cfg["rope_scaling"];
  if (!rs.is_object()) throw FormatError(src + ": rope_scaling is not an object or null");
  const char* type_key = rs.contains("rope_type") ? "rope_type" : "type";
  if (!rs.contains(type_key) || !rs[type_key].is_string()) {
    throw FormatError(src + ": rope_scaling has no rope_type string");
  }
  const std::string type = rs[type_key].get<std::string>();
  auto num = [&](const char* key) {
    if (!rs.contains(key) || !rs[key].is_number()) {
      throw FormatError(src + ": rope_scaling." + key + " is missing or not a number");
    }
    const double v = rs[key].get<double>();
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw FormatError(src + ": rope_scaling." + key + " = " + rs[key].dump() + " is not a positive number");
    }
    return v;
  };
  std::set<std::string> applied = {"rope_type", "type"};
  if (type == "default") {
  } else if (type == "linear") {
    c.rope_scaling.type = "linear";
    c.rope_scaling.linear_factor = num("factor");
    applied.insert("factor");
  } else if (type == "llama3") {
    const double low = num("low_freq_factor"), high = num("high_freq_factor");
    if (!(high > low)) throw FormatError(src + ": rope_scaling.high_freq_factor must exceed low_freq_factor");
    c.rope_scaling.type = "llama3";
    c.rope_scaling.freq_factors = llama3_freq_factors(static_cast<double>(c.rotary_base), c.rotary_dim, num("factor"),
                                                      low, high, num("original_max_position_embeddings"));
    applied.insert({"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"});
  } else if (type == "yarn") {
    read_hf_yarn(cfg, rs, c, src, applied);
  } else if (type == "longrope" || type == "su") {
    read_hf_longrope(cfg, rs, c, src, applied);
  } else {
    throw UnsupportedError(src + ": rope_scaling type '" + type +
                           "' is not supported (reslens applies default, linear, llama3, yarn and longrope)");
  }
  for (const auto& [key, value] : rs.items()) {
    if (applied.count(key) == 0) {
      throw UnsupportedError(src + ": rope_scaling field '" + key + "' (" + value.dump() + ") is not applied by reslens");
    }
  }
}

// Sliding-window attention (Mistral's sliding_window; Qwen2's with use_sliding_window): a sequence
// no longer than the window attends exactly as full causal attention does, so reslens runs those
// and refuses longer ones (ModelConfig::sliding_window).
void read_sliding_window(const json& cfg, const std::string& arch, ModelConfig& c, const std::string& src) {
  if (!cfg.contains("sliding_window") || cfg["sliding_window"].is_null()) return;
  const bool qwen = arch == "Qwen2ForCausalLM" || arch == "Qwen3ForCausalLM" || arch == "Qwen3MoeForCausalLM" ||
                    arch == "Qwen2MoeForCausalLM";
  if (qwen && !get_bool_or(cfg, "use_sliding_window", false, src)) return;
  if (!cfg["sliding_window"].is_number_integer() || cfg["sliding_window"].get<int64_t>() <= 0) {
    throw FormatError(src + ": sliding_window " + cfg["sliding_window"].dump() + " is not a positive integer");
  }
  c.sliding_window = cfg["sliding_window"].get<int64_t>();
}

void load_llama(const json& cfg, const std::string& arch, HfTensors& t, ModelConfig& c, ModelWeights& w,
                const std::string& src) {
  c.architecture = Architecture::kLlama;
  c.d_model = get_int(cfg, "hidden_size", src);
  c.d_mlp = get_int(cfg, "intermediate_size", src);
  c.n_layers = get_int(cfg, "num_hidden_layers", src);
  c.n_heads = get_int(cfg, "num_attention_heads", src);
  c.n_key_value_heads = get_int_or(cfg, "num_key_value_heads", c.n_heads, src);
  c.d_head = get_int_or(cfg, "head_dim", c.n_heads > 0 ? c.d_model / c.n_heads : 0, src);
  c.d_vocab = get_int(cfg, "vocab_size", src);
  c.n_ctx = get_int_or(cfg, "max_position_embeddings", 2048, src);
  c.normalization_type = NormType::kRmsNorm;
  c.eps = static_cast<float>(get_num_or(cfg, "rms_norm_eps", 1e-6, src));
  c.act_fn = ActFn::kSilu;
  c.gated_mlp = true;
  c.positional_embedding_type = PositionalEmbedding::kRotary;
  c.rotary_base = static_cast<float>(get_num_or(cfg, "rope_theta", 10000.0, src));
  // Phi-3/4's partial rotation: the first int(d_head * factor) dims of each head rotate.
  const double partial = get_num_or(cfg, "partial_rotary_factor", 1.0, src);
  if (!(partial > 0.0 && partial <= 1.0)) throw FormatError(src + ": partial_rotary_factor must be in (0, 1]");
  c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.d_head) * partial);
  c.qk_norm = arch == "Qwen3ForCausalLM" || arch == "Qwen3MoeForCausalLM";
  if (arch == "Olmo2ForCausalLM") {
    c.qk_norm_full = true;
    c.pre_norm = false;
    c.post_norm = true;
  }
  read_experts(cfg, arch, c, src);
  c.rope_layout = RopeLayout::kHalf;
  check_hf_fields(cfg, hf_llama_fields(arch), src);
  // Qwen2 has Q/K/V biases; Llama and Mistral with attention_bias have Q/K/V and O biases.
  const bool attention_bias = get_bool_or(cfg, "attention_bias", false, src);
  LlamaBiases biases;
  if (arch == "Qwen2ForCausalLM" || arch == "Qwen2MoeForCausalLM") biases.qkv = BiasRule::kRequired;
  if (attention_bias && arch != "Qwen2ForCausalLM" && arch != "Qwen2MoeForCausalLM") {
    biases = {BiasRule::kRequired, BiasRule::kRequired};
  }
  if (attention_bias && arch == "Phi3ForCausalLM") {
    throw UnsupportedError(src + ": attention_bias = true on Phi3ForCausalLM (a fused qkv bias) is not supported");
  }
  // Dimensions first: what follows sizes tables by them (local layers, RoPE frequency factors).
  validate_config(c, src);
  if (arch == "Gemma3ForCausalLM") read_gemma3(cfg, c, src);
  if (arch == "Gemma2ForCausalLM") read_gemma2(cfg, c, src);
  // transformers' layer_types: every layer full attention, or sliding where the config's window says.
  if (cfg.contains("layer_types") && arch != "Gemma3ForCausalLM" && arch != "Gemma2ForCausalLM") {
    if (!cfg["layer_types"].is_array()) throw FormatError(src + ": layer_types is not a list");
    for (const auto& lt : cfg["layer_types"]) {
      if (lt != "full_attention" && lt != "sliding_attention") {
        throw UnsupportedError(src + ": layer_types entry " + lt.dump() + " is not supported");
      }
      if (lt == "sliding_attention" && !get_bool_or(cfg, "use_sliding_window", arch != "Qwen3ForCausalLM", src)) {
        throw FormatError(src + ": layer_types has sliding_attention but use_sliding_window is false");
      }
    }
  }
  if (get_bool_or(cfg, "mlp_bias", false, src)) {
    throw UnsupportedError(src + ": mlp_bias = true (biases on gate/up/down projections) is not supported");
  }
  if (arch == "GemmaForCausalLM" || arch == "Gemma3ForCausalLM" || arch == "Gemma2ForCausalLM") {
    // GemmaMLP: gelu(gate) * up with hidden_activation (older configs say "gelu" in hidden_act and
    // the tanh form in hidden_activation); only the tanh form, which every Gemma uses, is applied.
    const json act = cfg.contains("hidden_activation") && !cfg["hidden_activation"].is_null() ? cfg["hidden_activation"]
                     : cfg.contains("hidden_act")                                              ? cfg["hidden_act"]
                                                                                               : json("gelu_pytorch_tanh");
    if (act != "gelu_pytorch_tanh" && act != "gelu_new") {
      throw UnsupportedError(src + ": Gemma activation " + act.dump() + " is not supported (gelu_pytorch_tanh is)");
    }
    c.act_fn = ActFn::kGeluNew;
    c.embedding_scale = std::sqrt(static_cast<float>(c.d_model));  // GemmaModel's normalizer, in float
  } else if (cfg.contains("hidden_act") && cfg["hidden_act"] != "silu") {
    throw UnsupportedError(src + ": hidden_act " + cfg.value("hidden_act", json("silu")).dump() +
                           " is not supported (silu is)");
  }
  read_rope_scaling(cfg, c, src);
  read_sliding_window(cfg, arch, c, src);
  // Gemma 2 and 3: the local layers attend within the window as transformers' sliding mask does
  // (key j visible from query i iff i - window < j <= i), so longer sequences are computed exactly.
  if ((arch == "Gemma2ForCausalLM" || arch == "Gemma3ForCausalLM") && c.sliding_window > 0) c.window_applied = true;
  if (arch == "Gemma2ForCausalLM" && c.rope_scaling.type != "none") {
    throw UnsupportedError(src + ": rope_scaling on Gemma2ForCausalLM is not supported");
  }
  validate_config(c, src);
  const int64_t d = c.d_model;
  if (arch == "GemmaForCausalLM" || arch == "Gemma3ForCausalLM" || arch == "Gemma2ForCausalLM") t.set_norm_offset(1.0f);  // GemmaRMSNorm: 1 + w
  // Tied checkpoints store the matrix once, under either name (TinyStories-656K keeps lm_head.weight).
  const bool has_embed = t.has("model.embed_tokens.weight");
  const bool has_head = t.has("lm_head.weight");
  if (!has_embed && !has_head) throw FormatError(src + ": neither model.embed_tokens.weight nor lm_head.weight");
  w.W_E = t.matrix(has_embed ? "model.embed_tokens.weight" : "lm_head.weight", c.d_vocab, d);
  w.W_U = has_head ? t.matrix("lm_head.weight", c.d_vocab, d) : w.W_E;
  c.tied_embeddings = !(has_head && has_embed);
  w.ln_final_w = t.vector("model.norm.weight", d);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LlamaLayerNames& names = arch == "Phi3ForCausalLM"       ? kHfPhi3Names
                                   : arch == "Qwen3ForCausalLM"    ? kHfQwen3Names
                                   : arch == "MixtralForCausalLM"  ? kHfMixtralNames
                                   : arch == "Qwen3MoeForCausalLM" ? kHfQwen3MoeNames
                                   : arch == "Olmo2ForCausalLM"    ? kHfOlmo2Names
                                   : arch == "Gemma3ForCausalLM"   ? kHfGemma3Names
                                   : arch == "Gemma2ForCausalLM"   ? kHfGemma2Names
                                   : arch == "Qwen2MoeForCausalLM" ? kHfQwen2MoeNames
                                                                   : kHfLlamaNames;
    w.layers.push_back(load_llama_layer(t, "model.layers." + std::to_string(l) + ".", names, c, biases));
  }
  note_attention_biases(c, w.layers);
}

// config.json fields load_gpt2 reads and applies. reorder_and_upcast_attn only computes the scores
// in float32, which reslens always does.
const std::set<std::string> kHfGpt2Fields = {
    "n_embd", "n_layer", "n_head", "n_inner", "vocab_size", "layer_norm_epsilon", "activation_function",
    "tie_word_embeddings", "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"};

void load_gpt2(const json& cfg, HfTensors& t, ModelConfig& c, ModelWeights& w, const std::string& src) {
  c.architecture = Architecture::kGpt2;
  c.d_model = get_int(cfg, "n_embd", src);
  c.n_layers = get_int(cfg, "n_layer", src);
  c.n_heads = get_int(cfg, "n_head", src);
  c.n_key_value_heads = c.n_heads;
  c.d_head = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  c.d_mlp = get_int_or(cfg, "n_inner", 4 * c.d_model, src);
  c.d_vocab = get_int(cfg, "vocab_size", src);
  c.n_ctx = get_int_or(cfg, "n_positions", get_int_or(cfg, "n_ctx", 1024, src), src);
  c.normalization_type = NormType::kLayerNorm;
  c.eps = static_cast<float>(get_num_or(cfg, "layer_norm_epsilon", 1e-5, src));
  c.act_fn = ActFn::kGeluNew;
  c.gated_mlp = false;
  c.positional_embedding_type = PositionalEmbedding::kStandard;
  c.tied_embeddings = true;
  check_hf_fields(cfg, kHfGpt2Fields, src);
  // transformers' GPT2Attention: scores divided by sqrt(d_head) when scale_attn_weights (the
  // default), and further by layer + 1 when scale_attn_by_inverse_layer_idx.
  if (!get_bool_or(cfg, "scale_attn_weights", true, src) ||
      get_bool_or(cfg, "scale_attn_by_inverse_layer_idx", false, src)) {
    throw UnsupportedError(src + ": scale_attn_weights = false or scale_attn_by_inverse_layer_idx = true "
                                 "changes the attention scale; not supported");
  }
  const std::string act = cfg.contains("activation_function") && cfg["activation_function"].is_string()
                              ? cfg["activation_function"].get<std::string>() : "gelu_new";
  if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    throw UnsupportedError(src + ": activation_function '" + act + "' is not supported (gelu_new is)");
  }
  validate_config(c, src);
  if (c.d_model % c.n_heads != 0) throw FormatError(src + ": n_embd is not a multiple of n_head");
  const std::string pre = t.has("transformer.wte.weight") ? "transformer." : "";
  const int64_t d = c.d_model;
  w.W_E = t.matrix(pre + "wte.weight", c.d_vocab, d);
  w.W_pos = t.matrix(pre + "wpe.weight", c.n_ctx, d);
  w.ln_final_w = t.vector(pre + "ln_f.weight", d);
  w.ln_final_b = t.vector(pre + "ln_f.bias", d);
  w.W_U = t.has("lm_head.weight") ? t.matrix("lm_head.weight", c.d_vocab, d) : w.W_E;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = pre + "h." + std::to_string(l) + ".";
    LayerWeights L;
    L.ln1_w = t.vector(p + "ln_1.weight", d);
    L.ln1_b = t.vector(p + "ln_1.bias", d);
    L.ln2_w = t.vector(p + "ln_2.weight", d);
    L.ln2_b = t.vector(p + "ln_2.bias", d);
    const MatrixView qkv = t.conv1d(p + "attn.c_attn.weight", d, 3 * d);
    assign_fused_qkv(L, qkv, t.vector(p + "attn.c_attn.bias", 3 * d).data, d, d);
    L.W_O = t.conv1d(p + "attn.c_proj.weight", d, d);
    L.b_O = t.vector(p + "attn.c_proj.bias", d);
    L.W_in = t.conv1d(p + "mlp.c_fc.weight", d, c.d_mlp);
    L.b_in = t.vector(p + "mlp.c_fc.bias", c.d_mlp);
    L.W_out = t.conv1d(p + "mlp.c_proj.weight", c.d_mlp, d);
    L.b_out = t.vector(p + "mlp.c_proj.bias", d);
    w.layers.push_back(L);
  }
}

// config.json fields load_gpt_neox reads and applies.
const std::set<std::string> kHfGptNeoXFields = {
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "layer_norm_eps",
    "hidden_act", "rotary_pct", "rotary_emb_base", "rope_theta", "rope_scaling", "use_parallel_residual",
    "tie_word_embeddings", "attention_bias", "partial_rotary_factor", "classifier_dropout"};

// GPTNeoXForCausalLM (Pythia): LayerNorms with biases, query_key_value fused per head ([n_heads, 3,
// d_head] rows, regrouped here into [q; k; v]), rotate_half rotation of the first rotary_pct of each
// head, GELU (exact for "gelu"), separate embed_out, and a parallel residual when the config says so.
void load_gpt_neox(const json& cfg, HfTensors& t, ModelConfig& c, ModelWeights& w, const std::string& src) {
  check_hf_fields(cfg, kHfGptNeoXFields, src);
  c.architecture = Architecture::kGptNeoX;
  c.d_model = get_int(cfg, "hidden_size", src);
  c.d_mlp = get_int(cfg, "intermediate_size", src);
  c.n_layers = get_int(cfg, "num_hidden_layers", src);
  c.n_heads = get_int(cfg, "num_attention_heads", src);
  c.n_key_value_heads = c.n_heads;
  c.d_head = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
  c.d_vocab = get_int(cfg, "vocab_size", src);
  c.n_ctx = get_int_or(cfg, "max_position_embeddings", 2048, src);
  c.normalization_type = NormType::kLayerNorm;
  c.eps = static_cast<float>(get_num_or(cfg, "layer_norm_eps", 1e-5, src));
  const json act = cfg.contains("hidden_act") ? cfg["hidden_act"] : json("gelu");
  if (act == "gelu") {
    c.act_fn = ActFn::kGeluErf;
  } else if (act == "gelu_new" || act == "gelu_fast" || act == "gelu_pytorch_tanh") {
    c.act_fn = ActFn::kGeluNew;
  } else {
    throw UnsupportedError(src + ": hidden_act " + act.dump() + " is not supported (gelu, gelu_new are)");
  }
  c.gated_mlp = false;
  c.positional_embedding_type = PositionalEmbedding::kRotary;
  c.rope_layout = RopeLayout::kHalf;
  c.rotary_base = static_cast<float>(get_num_or(cfg, "rotary_emb_base", get_num_or(cfg, "rope_theta", 10000.0, src), src));
  const double pct = get_num_or(cfg, "rotary_pct", get_num_or(cfg, "partial_rotary_factor", 1.0, src), src);
  if (!(pct > 0.0 && pct <= 1.0)) throw FormatError(src + ": rotary_pct must be in (0, 1]");
  c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.d_head) * pct);
  c.parallel_residual = get_bool_or(cfg, "use_parallel_residual", true, src);
  if (!get_bool_or(cfg, "attention_bias", true, src)) {
    throw UnsupportedError(src + ": attention_bias = false on GPTNeoXForCausalLM is not supported");
  }
  if (get_bool_or(cfg, "tie_word_embeddings", false, src)) {
    throw UnsupportedError(src + ": tie_word_embeddings = true on GPTNeoXForCausalLM is not supported");
  }
  validate_config(c, src);  // dimensions first
  read_rope_scaling(cfg, c, src);
  validate_config(c, src);
  if (c.d_model % c.n_heads != 0) throw FormatError(src + ": hidden_size is not a multiple of num_attention_heads");
  const int64_t d = c.d_model, dh = c.d_head, H = c.n_heads;
  // Row order that turns per-head [q_h; k_h; v_h] blocks into [q; k; v].
  std::vector<int64_t> order;
  for (int64_t part = 0; part < 3; ++part) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t i = 0; i < dh; ++i) order.push_back((h * 3 + part) * dh + i);
    }
  }
  w.W_E = t.matrix("gpt_neox.embed_in.weight", c.d_vocab, d);
  w.W_U = t.matrix("embed_out.weight", c.d_vocab, d);
  w.ln_final_w = t.vector("gpt_neox.final_layer_norm.weight", d);
  w.ln_final_b = t.vector("gpt_neox.final_layer_norm.bias", d);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    LayerWeights L;
    L.ln1_w = t.vector(p + "input_layernorm.weight", d);
    L.ln1_b = t.vector(p + "input_layernorm.bias", d);
    L.ln2_w = t.vector(p + "post_attention_layernorm.weight", d);
    L.ln2_b = t.vector(p + "post_attention_layernorm.bias", d);
    const MatrixView qkv = t.gathered_rows(p + "attention.query_key_value.weight", 3 * d, d, order);
    assign_fused_qkv(L, qkv, t.gathered_rows(p + "attention.query_key_value.bias", 3 * d, 1, order).data, d, d);
    L.W_O = t.matrix(p + "attention.dense.weight", d, d);
    L.b_O = t.vector(p + "attention.dense.bias", d);
    L.W_in = t.matrix(p + "mlp.dense_h_to_4h.weight", c.d_mlp, d);
    L.b_in = t.vector(p + "mlp.dense_h_to_4h.bias", c.d_mlp);
    L.W_out = t.matrix(p + "mlp.dense_4h_to_h.weight", d, c.d_mlp);
    L.b_out = t.vector(p + "mlp.dense_4h_to_h.bias", d);
    w.layers.push_back(L);
  }
  note_attention_biases(c, w.layers);
}

}  // namespace

std::shared_ptr<const Model> load_hf_model(const std::filesystem::path& dir, const LoadOptions& o) {
  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path)) {
    throw IoError(dir.string() + ": no model found in this directory (expected config.json and "
                                 "model.safetensors; or pass a .gguf or llama2.c .bin file)");
  }
  const json cfg = read_json(config_path);
  const std::string src = config_path.string();
  if (!cfg.is_object()) throw FormatError(src + ": not a JSON object");
  std::string arch;
  if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
      cfg["architectures"][0].is_string()) {
    arch = cfg["architectures"][0].get<std::string>();
  } else if (cfg.contains("model_type") && cfg["model_type"].is_string()) {
    const std::string mt = cfg["model_type"].get<std::string>();
    arch = mt == "gpt2" ? "GPT2LMHeadModel" : mt == "llama" ? "LlamaForCausalLM" : mt == "qwen2" ? "Qwen2ForCausalLM"
         : mt == "mistral" ? "MistralForCausalLM" : mt == "qwen3" ? "Qwen3ForCausalLM" : mt == "phi3" ? "Phi3ForCausalLM"
         : mt == "gemma" ? "GemmaForCausalLM" : mt == "gpt_neox" ? "GPTNeoXForCausalLM"
         : mt == "mixtral" ? "MixtralForCausalLM" : mt == "qwen3_moe" ? "Qwen3MoeForCausalLM"
         : mt == "olmo2" ? "Olmo2ForCausalLM" : mt == "gemma3_text" ? "Gemma3ForCausalLM"
         : mt == "qwen2_moe" ? "Qwen2MoeForCausalLM" : mt == "gemma2" ? "Gemma2ForCausalLM" : mt;
  }
  const bool llama_like = arch == "LlamaForCausalLM" || arch == "MistralForCausalLM" || arch == "Qwen2ForCausalLM" ||
                          arch == "Qwen3ForCausalLM" || arch == "Phi3ForCausalLM" || arch == "GemmaForCausalLM" ||
                          arch == "MixtralForCausalLM" || arch == "Qwen3MoeForCausalLM" || arch == "Olmo2ForCausalLM" ||
                          arch == "Gemma3ForCausalLM" || arch == "Qwen2MoeForCausalLM" || arch == "Gemma2ForCausalLM";
  if (!llama_like && arch != "GPT2LMHeadModel" && arch != "GPTNeoXForCausalLM") {
    throw UnsupportedError(src + ": architecture '" + arch +
                           "' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                           "Qwen2ForCausalLM, Qwen2MoeForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, MixtralForCausalLM, "
                           "Phi3ForCausalLM, "
                           "GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Olmo2ForCausalLM, GPT2LMHeadModel, GPTNeoXForCausalLM)");
  }
  auto storage = std::make_shared<ModelStorage>(!o.weights_as_float32);
  HfTensors t(dir, *storage);
  ModelConfig c;
  c.original_architecture = arch;
  c.model_name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
  ModelWeights w;
  WeightBytes bytes;
  for (const TensorInfo& i : t.infos()) {
    int64_t n = 1;
    for (const int64_t x : i.shape) n *= x;
    bytes.add(n * (i.dtype == "F32" ? 4 : 2), n, i.dtype == "F32");  // F32, F16 or BF16 (others are refused)
  }
  require_memory_for_weights(bytes, !o.weights_as_float32, hf_dtype(t), src);
  if (llama_like) {
    load_llama(cfg, arch, t, c, w, src);
  } else if (arch == "GPTNeoXForCausalLM") {
    load_gpt_neox(cfg, t, c, w, src);
  } else {
    load_gpt2(cfg, t, c, w, src);
  }
  check_hf_tensors(t.names(), t.used(), src);
  c.dtype = hf_dtype(t);
  // The tokenizer: the directory's own, or --tokenizer (a folder holding one, or the file itself:
  // a tokenizer.json of any name, or a SentencePiece .model). The file used is the one named when
  // its vocabulary does not fit the model's.
  std::unique_ptr<Tokenizer> tokenizer;
  std::filesystem::path tokenizer_file;
  std::error_code ec;
  const std::filesystem::path& tok_path = o.tokenizer_path;
  if (tok_path.empty() || std::filesystem::is_directory(tok_path, ec)) {
    const std::filesystem::path tok_dir = tok_path.empty() ? dir : tok_path;
    tokenizer = load_hf_tokenizer(tok_dir);
    tokenizer_file = hf_tokenizer_file(tok_dir);
  } else if (!std::filesystem::is_regular_file(tok_path, ec)) {
    throw IoError(tok_path.string() + ": no such file (the tokenizer)");
  } else if (tok_path.filename() == "tokenizer.json") {
    tokenizer = load_hf_tokenizer(tok_path.parent_path().empty() ? "." : tok_path.parent_path());
    tokenizer_file = tok_path;
  } else if (tok_path.extension() == ".model") {
    tokenizer = load_sentencepiece_model(tok_path);
    tokenizer_file = tok_path;
  } else {
    const auto config = tok_path.parent_path() / "tokenizer_config.json";
    tokenizer = load_hf_tokenizer_json(tok_path, std::filesystem::is_regular_file(config, ec) ? config : std::filesystem::path());
    tokenizer_file = tok_path;
  }
  check_tokenizer_fits(*tokenizer, c.d_vocab, tokenizer_file.string(), dir.string());
  const bool sharded = t.files().size() > 1;
  return std::make_shared<Model>(std::move(c), std::move(w), std::move(tokenizer), std::move(storage), t.infos(),
                                 sharded ? "Hugging Face safetensors (" + std::to_string(t.files().size()) + " shards)"
                                         : "Hugging Face safetensors",
                                 dir);
}

}  // namespace reslens
