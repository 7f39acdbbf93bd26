// reslens._core.Model: loading, the configuration, the tokenizer and zero-copy weight views.
#include <algorithm>
#include <map>

#include "bindings.h"
#include "model/weight_rows.h"
#include "reslens/explain_request.h"

namespace reslens::python {

namespace {

py::dict config_dict(const Model& model) {
  const ModelConfig& c = model.config();
  py::dict d;
  d["architecture"] = to_string(c.architecture);
  d["original_architecture"] = c.original_architecture;
  d["model_name"] = c.model_name;
  d["n_layers"] = c.n_layers;
  d["d_model"] = c.d_model;
  d["n_heads"] = c.n_heads;
  d["n_key_value_heads"] = c.n_key_value_heads;
  d["d_head"] = c.d_head;
  d["d_mlp"] = c.d_mlp;
  d["d_vocab"] = c.d_vocab;
  d["n_ctx"] = c.n_ctx;
  d["normalization_type"] = to_string(c.normalization_type);
  d["eps"] = static_cast<double>(c.eps);
  d["act_fn"] = to_string(c.act_fn);
  d["gated_mlp"] = c.gated_mlp;
  d["positional_embedding_type"] = to_string(c.positional_embedding_type);
  d["rotary_base"] = static_cast<double>(c.rotary_base);
  d["rotary_dim"] = c.rotary_dim;
  d["rope_layout"] = to_string(c.rope_layout);
  d["tied_embeddings"] = c.tied_embeddings;
  d["qkv_bias"] = c.has_qkv_bias();
  d["o_bias"] = c.has_o_bias();
  d["qk_norm"] = c.qk_norm;
  d["qk_norm_full"] = c.qk_norm_full;
  d["pre_norm"] = c.pre_norm;
  d["post_norm"] = c.post_norm;
  d["parallel_residual"] = c.parallel_residual;
  d["n_experts"] = c.n_experts;
  d["n_experts_used"] = c.n_experts_used;
  d["d_expert"] = c.d_expert;
  d["d_shared_expert"] = c.d_shared_expert;
  d["embedding_scale"] = static_cast<double>(c.embedding_scale);
  d["rope_scaling"] = py::dict(py::arg("type") = c.rope_scaling.type,
                               py::arg("linear_factor") = c.rope_scaling.linear_factor,
                               py::arg("freq_factors") = c.rope_scaling.freq_factors,
                               py::arg("attn_factor") = c.rope_scaling.attn_factor,
                               py::arg("factor") = c.rope_scaling.factor,
                               py::arg("original_context") = c.rope_scaling.original_context,
                               py::arg("factor_set") = c.rope_scaling.factor_set);
  d["sliding_window"] = c.sliding_window;
  d["window_applied"] = c.window_applied;
  d["attn_softcap"] = static_cast<double>(c.attn_softcap);
  d["final_softcap"] = static_cast<double>(c.final_softcap);
  d["dtype"] = c.dtype;
  d["format"] = model.format();
  d["path"] = model.path().string();
  d["n_params"] = model.n_params();
  d["default_prepend_bos"] = model.tokenizer().add_bos_default();
  d["tokenizer_kind"] = model.tokenizer().kind();
  return d;
}

// Every hook a run of this model can record, in the cache's own (forward) order.
std::vector<std::string> hook_names(const ModelConfig& c) {
  ActivationCache order;  // empty tensors: only ActivationCache::names()'s ordering is wanted
  for (int h = 0; h < kHookCount; ++h) {
    const auto hook = static_cast<Hook>(h);
    if (hook == Hook::kPosEmbed && c.positional_embedding_type != PositionalEmbedding::kStandard) continue;
    if ((hook == Hook::kRotQ || hook == Hook::kRotK) && c.positional_embedding_type != PositionalEmbedding::kRotary) {
      continue;
    }
    if (hook == Hook::kMlpPreLinear && !c.gated_mlp) continue;
    if ((hook == Hook::kLn1PostScale || hook == Hook::kLn2PostScale) && !c.post_norm) continue;
    const bool pre_norm_hook = hook == Hook::kLn1Scale || hook == Hook::kLn1Normalized || hook == Hook::kLn2Scale ||
                               hook == Hook::kLn2Normalized;
    if (pre_norm_hook && !c.pre_norm) continue;
    if (!hook_is_per_layer(hook)) {
      order.put({hook, -1}, Tensor{});
    } else {
      for (int l = 0; l < static_cast<int>(c.n_layers); ++l) order.put({hook, l}, Tensor{});
    }
  }
  std::vector<std::string> out;
  for (const HookName& n : order.names()) out.push_back(n.to_string());
  return out;
}

py::object matrix(const ModelHandle& m, const MatrixView& v) {
  if (v.empty()) return py::none();
  if (v.is_float()) return readonly_view(v.data, {v.rows, v.cols}, m.ptr, {v.ld, 1});
  // Kept in the file's encoding (F16, BF16, quantized): a float32 copy, decoded now, as the forward
  // pass decodes it (the same values), and owned by the array.
  py::array_t<float> out({v.rows, v.cols});
  read_rows(v, 0, v.rows, out.mutable_data());
  out.attr("flags").attr("writeable") = false;
  return out;
}

py::object vector(const ModelHandle& m, const VectorView& v) {
  if (v.empty()) return py::none();
  return readonly_view(v.data, {v.size}, m.ptr);
}

// A weight by its reslens name ("W_Q", "ln_final_w"), [out, in] as stored; None when absent.
py::object weight(const ModelHandle& m, const std::string& name, int layer) {
  const ModelWeights& w = m->weights();
  static const std::map<std::string, MatrixView ModelWeights::*> model_matrices = {
      {"W_E", &ModelWeights::W_E}, {"W_pos", &ModelWeights::W_pos}, {"W_U", &ModelWeights::W_U}};
  static const std::map<std::string, VectorView ModelWeights::*> model_vectors = {
      {"ln_final_w", &ModelWeights::ln_final_w}, {"ln_final_b", &ModelWeights::ln_final_b},
      {"b_U", &ModelWeights::b_U}};
  static const std::map<std::string, MatrixView LayerWeights::*> layer_matrices = {
      {"W_Q", &LayerWeights::W_Q},   {"W_K", &LayerWeights::W_K},       {"W_V", &LayerWeights::W_V},
      {"W_O", &LayerWeights::W_O},   {"W_in", &LayerWeights::W_in},     {"W_gate", &LayerWeights::W_gate},
      {"W_out", &LayerWeights::W_out}};
  static const std::map<std::string, VectorView LayerWeights::*> layer_vectors = {
      {"ln1_w", &LayerWeights::ln1_w}, {"ln1_b", &LayerWeights::ln1_b}, {"b_Q", &LayerWeights::b_Q},
      {"b_K", &LayerWeights::b_K},     {"b_V", &LayerWeights::b_V},     {"b_O", &LayerWeights::b_O},
      {"ln2_w", &LayerWeights::ln2_w}, {"ln2_b", &LayerWeights::ln2_b}, {"b_in", &LayerWeights::b_in},
      {"b_out", &LayerWeights::b_out}};
  if (auto it = model_matrices.find(name); it != model_matrices.end()) return matrix(m, w.*(it->second));
  if (auto it = model_vectors.find(name); it != model_vectors.end()) return vector(m, w.*(it->second));
  const bool per_layer = layer_matrices.count(name) != 0 || layer_vectors.count(name) != 0;
  if (!per_layer) throw InvalidArgument("unknown weight '" + name + "'");
  const auto n_layers = static_cast<int>(w.layers.size());
  if (layer < 0 || layer >= n_layers) {
    throw OutOfRange("layer " + std::to_string(layer) + " is out of range (the model has " +
                     std::to_string(n_layers) + " layers)");
  }
  const LayerWeights& lw = w.layers[static_cast<size_t>(layer)];
  if (auto it = layer_matrices.find(name); it != layer_matrices.end()) return matrix(m, lw.*(it->second));
  return vector(m, lw.*(layer_vectors.at(name)));
}

// Candidate ids for a token named by the user, and a note: the library's rule for every front door
// (reslens/explain_request.h token_candidates; "432" is an id).
std::pair<std::vector<int32_t>, std::string> resolve_token(const Model& model, const std::string& spec,
                                                           const std::string& what) {
  TokenCandidates c = token_candidates(model, TokenName::parse(spec), what.c_str());
  return {std::move(c.ids), std::move(c.note)};
}

}  // namespace

void register_model(py::module_& m) {
  py::class_<ModelHandle, std::shared_ptr<ModelHandle>> cls(m, "Model", R"pbdoc(
A loaded transformer: configuration, weights (memory-mapped where the file allows) and tokenizer.

Use ``reslens.load(path)``, which wraps this in the TransformerLens-style ``reslens.Model``.

>>> core = reslens._core.Model.load("../shared/models/stories260K/stories260K.gguf")
>>> core.config()["n_layers"]
5
)pbdoc");
  cls.def_static(
         "load",
         [](const std::string& path, const std::string& tokenizer) {
           LoadOptions o;
           o.tokenizer_path = tokenizer;
           std::shared_ptr<const Model> model;
           {
             const py::gil_scoped_release release;
             model = Model::load(path, o);
           }
           return std::make_shared<ModelHandle>(ModelHandle{std::move(model)});
         },
         py::arg("path"), py::arg("tokenizer") = "",
         "Loads a .gguf file, a llama2.c .bin checkpoint or a Hugging Face directory (the GIL is released).")
      .def("config", [](const ModelHandle& h) { return config_dict(*h); },
           "The configuration as a dict of TransformerLens names (n_layers, d_model, act_fn, ...).")
      .def("hook_names", [](const ModelHandle& h) { return hook_names(h->config()); },
           "Every hook name a run of this model can record, in the cache's order.")
      .def("tensors",
           [](const ModelHandle& h) {
             py::list out;
             for (const TensorInfo& t : h->tensors()) out.append(py::make_tuple(t.name, t.dtype, t.shape));
             return out;
           },
           "Tensors as stored in the file: (name, dtype, shape) in file order.")
      .def_property_readonly("mapped_bytes", [](const ModelHandle& h) { return h->mapped_bytes(); })
      .def_property_readonly("owned_bytes", [](const ModelHandle& h) { return h->owned_bytes(); })
      .def("weight", &weight, py::arg("name"), py::arg("layer") = -1, R"pbdoc(
A weight by its reslens name, as reslens stores it: matrices [out, in] (``W_U`` is [d_vocab, d_model]),
as a read-only zero-copy view that keeps the model alive. None when the model has no such parameter.

>>> core.weight("W_Q", 0).shape   # [n_heads * d_head, d_model]
(64, 64)
)pbdoc")
      // Tokenizer.
      .def("encode",
           [](const ModelHandle& h, const std::string& text, bool add_bos, bool parse_special) {
             const py::gil_scoped_release release;
             return h->tokenizer().encode(text, add_bos, parse_special ? SpecialText::kParse : SpecialText::kPlain);
           },
           py::arg("text"), py::arg("add_bos"), py::arg("parse_special") = true,
           "Token ids of `text`, with BOS prepended when `add_bos`. Special tokens written in the text "
           "(<s>, <|im_start|>) become those tokens unless `parse_special` is False.")
      .def_property_readonly("chat_template", [](const ModelHandle& h) { return h->tokenizer().chat_template(); },
                             "The model's chat template source (Jinja), empty when its files have none.")
      .def_static(
          "format_chat",
          [](const std::string& template_or_name, const std::string& user, const std::string& system) {
            // A bare word is a layout name (an unknown one is an error that lists the names); anything
            // else is a template source to recognise.
            const bool word = !template_or_name.empty() &&
                              template_or_name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos;
            const ChatTemplate t = word ? chat_template_named(template_or_name) : detect_chat_template(template_or_name);
            return format_chat(t, user, system);
          },
          py::arg("template"), py::arg("user"), py::arg("system") = "",
          "`user` (and `system`) laid out by a chat template (a source recognised as llama.cpp does, or a "
          "built-in name such as 'chatml'), ending where the assistant's reply begins.")
      .def("decode",
           [](const ModelHandle& h, const py::handle& ids) {
             const std::vector<int32_t> v = to_ids(ids);
             const int32_t n = h->tokenizer().n_vocab();
             for (const int32_t id : v) {
               if (id < 0 || id >= n) {
                 throw OutOfRange("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                  std::to_string(n - 1) + ")");
               }
             }
             return py::bytes(h->tokenizer().decode(v));
           },
           py::arg("ids"), "The bytes `ids` stand for (control tokens render as nothing).")
      .def("token_texts",
           [](const ModelHandle& h, const py::handle& ids) {
             const Tokenizer& tok = h->tokenizer();
             std::vector<std::string> out;
             for (const int32_t id : to_ids(ids)) {
               if (id < 0 || id >= tok.n_vocab()) {
                 throw OutOfRange("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                  std::to_string(tok.n_vocab() - 1) + ")");
               }
               out.push_back(tok.token_text(id));
             }
             return out;
           },
           py::arg("ids"), "What each token reads as on its own (' Once', '<0x0A>', '<s>').")
      .def("piece", [](const ModelHandle& h, int32_t id) { return py::bytes(h->tokenizer().piece(id)); },
           py::arg("id"), "The raw vocabulary string of a token ('▁Once', 'ĠOnce').")
      .def("find_piece", [](const ModelHandle& h, const std::string& p) { return h->tokenizer().find_piece(p); },
           py::arg("piece"), "The id whose piece is exactly `piece`, or -1.")
      .def_property_readonly("bos_id", [](const ModelHandle& h) { return h->tokenizer().bos_id(); })
      .def_property_readonly("eos_id", [](const ModelHandle& h) { return h->tokenizer().eos_id(); })
      .def_property_readonly("n_vocab", [](const ModelHandle& h) { return h->tokenizer().n_vocab(); })
      .def(
          "resolve_token",
          [](const ModelHandle& h, const std::string& spec, const std::string& what) {
            const py::gil_scoped_release release;
            return resolve_token(*h, spec, what);
          },
          py::arg("spec"), py::arg("what") = "target",
          "Candidate ids for a token named as the CLI's --target takes it, and a note (or '').");
}

}  // namespace reslens::python
