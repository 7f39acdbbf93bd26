// The explanation as JSON (docs/explain-schema.json) and as a terminal report. The JSON is the
// contract the CLI, the web report and Python share; the text report is a readable summary of it.
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/ranking.h"
#include "core/utf8.h"
#include "io/npy.h"
#include "report/explain_document.h"
#include "reslens/error.h"
#include "reslens/report.h"

namespace reslens {

using nlohmann::json;

std::string label_layer(int64_t layer, bool ffn) { return "L" + std::to_string(layer) + (ffn ? " ffn" : " attn"); }
std::string label_head(int64_t layer, int64_t head) { return "L" + std::to_string(layer) + "H" + std::to_string(head); }
std::string label_ffn_neuron(int64_t layer, int64_t neuron) {
  return "L" + std::to_string(layer) + "N" + std::to_string(neuron);
}
std::string label_attn_neuron(int64_t layer, int64_t head, int64_t dim, int64_t pos) {
  return label_head(layer, head) + "D" + std::to_string(dim) + "@" + std::to_string(pos);
}

namespace report {

// Always valid UTF-8 for JSON and terminals.
std::string clean(const std::string& s) {
  if (find_invalid_utf8(s) == std::string_view::npos) return s;
  std::string out;
  for (const char ch : s) out += static_cast<unsigned char>(ch) < 0x80 ? ch : '?';
  return out;
}

std::string tok(const Model& m, int32_t id) { return clean(m.tokenizer().token_text(id)); }

json token_texts(const Model& m, const std::vector<int32_t>& ids) {
  json a = json::array();
  for (int32_t id : ids) a.push_back(tok(m, id));
  return a;
}

json score_knobs(const ExplainOptions& eo) {
  return {{"method", to_string(eo.method)}, {"bound_tol", eo.bound_tol}, {"projection_cache", eo.projection_cache},
          {"projection_sketch", eo.projection_sketch}, {"extended_head", eo.extended_head}};
}

Unpacked unpack_attn(const std::vector<int64_t>& shape, int64_t idx) {
  const auto& s = shape;  // [L, H, dh, n]
  Unpacked u{};
  u.p = idx % s[3];
  idx /= s[3];
  u.n = idx % s[2];
  idx /= s[2];
  u.h = idx % s[1];
  u.l = idx / s[1];
  return u;
}

std::vector<int64_t> layer_counts(const std::vector<int64_t>& top, int64_t per_layer, int64_t L) {
  std::vector<int64_t> c(static_cast<size_t>(L), 0);
  for (int64_t i : top) ++c[static_cast<size_t>(i / per_layer)];
  return c;
}

json explain_document(const Model& model, const RunResult& run, std::span<const int32_t> tokens, const Explanation& ex,
                      const ExplainOptions& eo, const ReportOptions& ro) {
  const ModelConfig& c = model.config();
  const int64_t L = c.n_layers, H = c.n_heads, N = c.d_mlp, dh = c.d_head;
  json j;
  j["schema_version"] = kSchemaVersion;
  j["tool"] = "reslens 0.1.0";
  j["model"] = {{"path", model.path().string()}, {"architecture", to_string(c.architecture)},
                {"n_layers", L}, {"n_heads", H}, {"d_head", dh}, {"d_model", c.d_model}, {"d_mlp", N},
                {"d_vocab", c.d_vocab}};
  j["tokens"] = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) j["tokens"].push_back({{"id", tokens[i]}, {"text", tok(model, tokens[i])}});
  j["position"] = ex.position;
  j["target"] = {{"id", ex.target}, {"text", tok(model, ex.target)}, {"log_prob", ex.real_log_prob},
                 {"prob", ex.real_prob}, {"rank", ex.real_rank}, {"logit", ex.real_logit},
                 {"bs_log_prob", ex.bs_log_prob_final}, {"bs_log_prob_embedding", ex.bs_log_prob_embedding}};
  j["foil"] = ex.foil >= 0 ? json{{"id", ex.foil}, {"text", tok(model, ex.foil)}} : json(nullptr);
  // The precision knobs as asked (method "auto" stays "auto"; method_counts says what ran), so a
  // document says how its scores were computed wherever it was made (CLI, server, Python).
  j["options"] = {{"include_final_bias", eo.include_final_bias}, {"compat_notebook", eo.compat_notebook},
                  {"query_top_n", eo.query_top_n}, {"set_size", eo.set_size}};
  j["options"].update(score_knobs(eo));
  j["frozen_norm"] = {{"kind", c.normalization_type == NormType::kLayerNorm ? "layernorm" : "rmsnorm"},
                      {"scale", ex.frozen_scale}};

  j["lens"] = json::array();
  for (const LensPoint& p : ex.lens) {
    json top = json::array();
    for (size_t i = 0; i < p.top_ids.size(); ++i) {
      top.push_back({{"id", p.top_ids[i]}, {"text", tok(model, p.top_ids[i])}, {"prob", p.top_probs[i]}});
    }
    j["lens"].push_back({{"label", p.label}, {"rank", p.rank}, {"prob", p.prob}, {"log_prob", p.log_prob}, {"top", top}});
  }

  double sa = 0, sf = 0;
  j["layers"] = json::array();
  for (int64_t l = 0; l < L; ++l) {
    j["layers"].push_back({{"layer", l}, {"attn", ex.attn_layer[static_cast<size_t>(l)]}, {"ffn", ex.ffn_layer[static_cast<size_t>(l)]}});
    sa += ex.attn_layer[static_cast<size_t>(l)];
    sf += ex.ffn_layer[static_cast<size_t>(l)];
  }
  j["layer_sums"] = {{"attn", sa}, {"ffn", sf}, {"total", sa + sf},
                     {"final_minus_embedding", ex.bs_log_prob_final - ex.bs_log_prob_embedding}};

  j["heads"] = json::array();
  for (int64_t l = 0; l < L; ++l) {
    json row = json::array();
    for (int64_t h = 0; h < H; ++h) row.push_back(ex.head.at({l, h}));
    j["heads"].push_back(row);
  }
  j["top_heads"] = json::array();
  const auto top_heads = analysis::top_indices(ex.head.values, ro.top);
  for (int64_t i : top_heads) {
    j["top_heads"].push_back({{"layer", i / H}, {"head", i % H}, {"label", label_head(i / H, i % H)},
                              {"score", ex.head.values[static_cast<size_t>(i)]}});
  }
  j["head_positions"] = json::array();
  for (size_t t = 0; t < top_heads.size() && static_cast<int>(t) < ro.view_heads; ++t) {
    const int64_t l = top_heads[t] / H, h = top_heads[t] % H;
    json positions = json::array();
    for (const PositionView& pv : head_position_views(model, run, ex, eo, static_cast<int>(l), static_cast<int>(h), ro.token_k)) {
      positions.push_back({{"pos", pv.position}, {"token", tok(model, tokens[static_cast<size_t>(pv.position)])},
                           {"score", pv.imp}, {"attn", pv.attn}, {"layer_input", token_texts(model, pv.layer_input_top)},
                           {"key", token_texts(model, pv.key_top)}, {"value", token_texts(model, pv.value_top)}});
    }
    j["head_positions"].push_back({{"layer", l}, {"head", h}, {"label", label_head(l, h)}, {"positions", positions}});
  }

  // The listed neurons' vocabulary views, each kind in one projection.
  const std::vector<int64_t> top_ffn = analysis::top_indices(ex.ffn_neuron.values, ro.top);
  const std::vector<int64_t> top_attn = analysis::top_indices(ex.attn_neuron.values, ro.top);
  std::vector<std::array<int, 2>> ffn_wanted;
  std::vector<std::array<int, 4>> attn_wanted;
  for (size_t v = 0; v < top_ffn.size() && static_cast<int>(v) < ro.view_neurons; ++v) {
    ffn_wanted.push_back({static_cast<int>(top_ffn[v] / N), static_cast<int>(top_ffn[v] % N)});
  }
  for (size_t v = 0; v < top_attn.size() && static_cast<int>(v) < ro.view_neurons; ++v) {
    const Unpacked u = unpack_attn(ex.attn_neuron.shape, top_attn[v]);
    attn_wanted.push_back({static_cast<int>(u.l), static_cast<int>(u.h), static_cast<int>(u.n), static_cast<int>(u.p)});
  }
  const std::vector<NeuronView> ffn_views = ffn_neuron_views(model, run, ex, eo, ffn_wanted, ro.token_k);
  const std::vector<NeuronView> attn_views = attn_neuron_views(model, run, ex, eo, attn_wanted, ro.token_k);
  auto add_view = [&](json& e, const NeuronView& nv) {
    e["top"] = token_texts(model, nv.raw.top);
    e["bottom"] = token_texts(model, nv.raw.bottom);
    e["promoted"] = token_texts(model, nv.signed_.top);
  };

  j["ffn_neurons"] = json::array();
  for (size_t v = 0; v < top_ffn.size(); ++v) {
    const int64_t i = top_ffn[v], l = i / N, k = i % N;
    json e = {{"layer", l}, {"neuron", k}, {"label", label_ffn_neuron(l, k)},
              {"score", ex.ffn_neuron.values[static_cast<size_t>(i)]}, {"coef", ex.ffn_coef.values[static_cast<size_t>(i)]}};
    if (c.n_experts > 0) {  // neuron k of a mixture-of-experts layer: expert k / d_expert's neuron k % d_expert
      const int64_t routed = c.n_experts * c.d_expert;  // then the shared expert's (index n_experts)
      e["expert"] = k < routed ? k / c.d_expert : c.n_experts;
      e["expert_neuron"] = k < routed ? k % c.d_expert : k - routed;
    }
    if (v < ffn_views.size()) add_view(e, ffn_views[v]);
    j["ffn_neurons"].push_back(e);
  }
  if (c.n_experts > 0) {  // every expert of every layer, best first
    j["experts"] = json::array();
    const int64_t E = ex.expert.shape[1];  // n_experts, + 1 for a shared expert
    for (int64_t i : analysis::top_indices(ex.expert.values, static_cast<int64_t>(ex.expert.values.size()))) {
      const int64_t l = i / E, e = i % E;
      const std::string label = "L" + std::to_string(l) + (e < c.n_experts ? "E" + std::to_string(e) : std::string("S"));
      json x = {{"layer", l}, {"expert", e}, {"label", label},
                {"score", ex.expert.values[static_cast<size_t>(i)]}};
      if (ex.has_contrast) x["contrast"] = ex.contrast_expert.values[static_cast<size_t>(i)];
      j["experts"].push_back(x);
    }
  }
  j["attn_neurons"] = json::array();
  for (size_t v = 0; v < top_attn.size(); ++v) {
    const int64_t i = top_attn[v];
    const Unpacked u = unpack_attn(ex.attn_neuron.shape, i);
    json e = {{"layer", u.l}, {"head", u.h}, {"dim", u.n}, {"pos", u.p}, {"label", label_attn_neuron(u.l, u.h, u.n, u.p)},
              {"score", ex.attn_neuron.values[static_cast<size_t>(i)]}, {"coef", ex.attn_coef.values[static_cast<size_t>(i)]}};
    if (v < attn_views.size()) add_view(e, attn_views[v]);
    j["attn_neurons"].push_back(e);
  }
  j["query_ffn_neurons"] = json::array();
  for (int64_t i : analysis::top_indices(ex.query_ffn_neuron.values, ro.top)) {
    j["query_ffn_neurons"].push_back({{"layer", i / N}, {"neuron", i % N}, {"label", label_ffn_neuron(i / N, i % N)},
                                      {"score", ex.query_ffn_neuron.values[static_cast<size_t>(i)]}});
  }

  auto slots_json = [&](const std::vector<double>& slots) {
    json a = json::array();
    for (size_t s = 0; s < slots.size(); ++s) {
      const std::string label = s == 0 ? "emb" : (s % 2 ? "a" : "f") + std::to_string((s - 1) / 2);
      a.push_back({{"label", label}, {"score", slots[s]}});
    }
    return a;
  };
  json q1 = json::object();
  for (const QueryLayers& q : ex.ffn_value_query_layers) q1[q.key] = slots_json(q.slots);
  j["query_layers"] = {
      {"ffn_value_neurons", {{"key", ex.ffn_value_query_layers.empty() ? "" : ex.ffn_value_query_layers.front().key}, {"top_n", eo.query_top_n}, {"variants", q1}}},
      {"attn_value_neurons", {{"top_n", eo.query_top_n}, {"slots", slots_json(ex.attn_value_query_layers.slots)}, {"avg_layer", ex.attn_value_query_avg_layer}}}};
  j["histograms"] = {
      {"size", eo.set_size},
      {"ffn_value", layer_counts(analysis::top_indices(ex.ffn_neuron.values, eo.set_size), N, L)},
      {"attn_value", layer_counts(analysis::top_indices(ex.attn_neuron.values, eo.set_size), H * dh * ex.n_positions, L)},
      {"ffn_query", layer_counts(analysis::top_indices(ex.query_ffn_neuron.values, eo.set_size), N, L)},
      {"query_only", ex.query_only_per_layer},
      {"query_value", ex.query_value_per_layer}};

  if (!ex.baselines.empty()) {
    json b = json::object();
    for (const auto& [name, arr] : ex.baselines) {
      json top = json::array();
      for (int64_t i : analysis::top_indices(arr.values, ro.top)) {
        top.push_back({{"layer", i / N}, {"neuron", i % N}, {"score", arr.values[static_cast<size_t>(i)]}});
      }
      b[name] = top;
    }
    // The names these two had until 0.2, kept as aliases for one release (docs/naming.md).
    b["logprob_increase"] = b["log_prob_increase"];
    b["logprob"] = b["log_prob"];
    j["baselines"] = b;
  }
  if (ex.has_contrast) {
    json layers = json::array();
    for (int64_t l = 0; l < L; ++l) {
      layers.push_back({{"layer", l}, {"attn", ex.contrast_attn_layer[static_cast<size_t>(l)]},
                        {"ffn", ex.contrast_ffn_layer[static_cast<size_t>(l)]}});
    }
    json heads = json::array();
    for (int64_t l = 0; l < L; ++l) {
      json row = json::array();
      for (int64_t h = 0; h < H; ++h) row.push_back(ex.contrast_head.at({l, h}));
      heads.push_back(row);
    }
    json ffn = json::array(), attn = json::array();
    for (int64_t i : analysis::top_indices(ex.contrast_ffn_neuron.values, ro.top)) {
      ffn.push_back({{"layer", i / N}, {"neuron", i % N}, {"label", label_ffn_neuron(i / N, i % N)},
                     {"score", ex.contrast_ffn_neuron.values[static_cast<size_t>(i)]}});
    }
    for (int64_t i : analysis::top_indices(ex.contrast_attn_neuron.values, ro.top)) {
      const Unpacked u = unpack_attn(ex.attn_neuron.shape, i);
      attn.push_back({{"layer", u.l}, {"head", u.h}, {"dim", u.n}, {"pos", u.p},
                      {"label", label_attn_neuron(u.l, u.h, u.n, u.p)},
                      {"score", ex.contrast_attn_neuron.values[static_cast<size_t>(i)]}});
    }
    j["contrast"] = {{"measure", "log p(target) - log p(foil)"}, {"layers", layers}, {"heads", heads},
                     {"ffn_neurons", ffn}, {"attn_neurons", attn}};
  }
  j["checks"] = ex.checks;
  j["method_counts"] = ex.method_counts;
  return j;
}

// A number with `prec` decimals (and its sign when `sign`), right-aligned in `width` columns.
std::string num(double v, int prec, bool sign, int width) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(prec);
  if (sign) s.setf(std::ios::showpos);
  s.width(width);
  s << v;
  return s.str();
}

std::string pad(const std::string& s, size_t width) { return s + std::string(width > s.size() ? width - s.size() : 1, ' '); }

std::string quoted(const json& texts, size_t n) {
  std::string s;
  for (size_t i = 0; i < texts.size() && i < n; ++i) s += (i ? " " : "") + ("'" + texts[i].get<std::string>() + "'");
  return s;
}

std::vector<std::pair<std::string, ScoreArray>> explanation_arrays(const Explanation& ex) {
  std::vector<std::pair<std::string, ScoreArray>> out;
  auto put = [&](const std::string& name, const ScoreArray& a) {
    if (!a.values.empty()) out.emplace_back(name, a);
  };
  const auto L = static_cast<int64_t>(ex.attn_layer.size());
  ScoreArray layers({L, 2});
  for (int64_t l = 0; l < L; ++l) {
    layers.at({l, 0}) = ex.attn_layer[static_cast<size_t>(l)];
    layers.at({l, 1}) = ex.ffn_layer[static_cast<size_t>(l)];
  }
  ScoreArray lens({static_cast<int64_t>(ex.lens.size()), 3});
  for (size_t i = 0; i < ex.lens.size(); ++i) {
    lens.at({static_cast<int64_t>(i), 0}) = static_cast<double>(ex.lens[i].rank);
    lens.at({static_cast<int64_t>(i), 1}) = ex.lens[i].prob;
    lens.at({static_cast<int64_t>(i), 2}) = ex.lens[i].log_prob;
  }
  put("layer_scores", layers);
  put("lens", lens);
  put("head_scores", ex.head);
  put("head_position_scores", ex.head_position);
  put("attn_weights", ex.attn_weight);
  put("ffn_neuron_scores", ex.ffn_neuron);
  put("ffn_coef", ex.ffn_coef);
  put("attn_neuron_scores", ex.attn_neuron);
  put("attn_coef", ex.attn_coef);
  put("query_ffn_neuron_scores", ex.query_ffn_neuron);
  put("expert_scores", ex.expert);
  for (const auto& [name, arr] : ex.baselines) put("baseline_" + name, arr);
  if (ex.has_contrast) {
    put("contrast_head_scores", ex.contrast_head);
    put("contrast_ffn_neuron_scores", ex.contrast_ffn_neuron);
    put("contrast_attn_neuron_scores", ex.contrast_attn_neuron);
    put("contrast_expert_scores", ex.contrast_expert);
  }
  return out;
}

void create_output_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    throw IoError(dir.string() + ": cannot create the output folder" + (ec ? " (" + ec.message() + ")" : ""));
  }
}

}  // namespace report

using report::explain_document;
using report::num;
using report::pad;
using report::quoted;

std::string explain_json(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro) {
  return explain_document(model, run, tokens, ex, eo, ro).dump(2);
}

std::string explain_text(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                         const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro) {
  const json j = explain_document(model, run, tokens, ex, eo, ro);
  std::ostringstream o;
  o << "prompt (" << tokens.size() << " tokens):";
  for (const auto& t : j["tokens"]) o << " '" << t["text"].get<std::string>() << "'";
  o << "\nposition " << ex.position << " ('" << j["tokens"][static_cast<size_t>(ex.position)]["text"].get<std::string>()
    << "') -> target '" << j["target"]["text"].get<std::string>() << "' (id " << ex.target << "): p = "
    << num(100 * ex.real_prob, 2) + "%" << ", rank " << ex.real_rank;
  if (ex.foil >= 0) o << "; foil '" << j["foil"]["text"].get<std::string>() << "' (id " << ex.foil << ")";
  o << "\nfrozen final norm scale " << num(ex.frozen_scale, 4) << "; log p(target) under bs: embedding "
    << num(ex.bs_log_prob_embedding, 3) << " -> final " << num(ex.bs_log_prob_final, 3) << "\n\n";

  o << "Layers: log-probability increase of the target" << (ex.has_contrast ? " (and of target - foil)" : "") << "\n";
  o << "  layer        attn        ffn" << (ex.has_contrast ? "   contrast attn  contrast ffn" : "") << "\n";
  for (size_t l = 0; l < ex.attn_layer.size(); ++l) {
    o << "  L" << l << std::string(l < 10 ? 4 : 3, ' ') << num(ex.attn_layer[l], 4, true, 11) << num(ex.ffn_layer[l], 4, true, 11);
    if (ex.has_contrast) o << num(ex.contrast_attn_layer[l], 4, true, 15) << num(ex.contrast_ffn_layer[l], 4, true, 14);
    o << "\n";
  }
  o << "  sum   " << num(j["layer_sums"]["attn"].get<double>(), 4, true, 11) << num(j["layer_sums"]["ffn"].get<double>(), 4, true, 11)
    << "   (= final - embedding " << num(j["layer_sums"]["final_minus_embedding"].get<double>(), 4) << ")\n\n";

  o << "Top heads\n";
  for (size_t i = 0; i < j["top_heads"].size() && i < 10; ++i) {
    const auto& h = j["top_heads"][i];
    o << "  " << pad(h["label"].get<std::string>(), 8) << num(h["score"].get<double>(), 4, true) << "\n";
  }
  for (const auto& hp : j["head_positions"]) {
    o << "\n" << hp["label"].get<std::string>() << " by source position (score, attention; value tokens)\n";
    for (const auto& p : hp["positions"]) {
      o << "  " << num(p["pos"].get<double>(), 0, false, 3) << " '" << p["token"].get<std::string>() << "' "
        << num(p["score"].get<double>(), 4, true) << "  " + num(p["attn"].get<double>(), 3) << "  "
        << quoted(p["value"], 5) << "\n";
    }
  }
  o << "\nTop FFN neurons (value neurons): score, coefficient; tokens the subvalue promotes\n";
  for (size_t i = 0; i < j["ffn_neurons"].size() && i < 10; ++i) {
    const auto& n = j["ffn_neurons"][i];
    o << "  " << pad(n["label"].get<std::string>(), 10) << num(n["score"].get<double>(), 4, true) << "  "
      << num(n["coef"].get<double>(), 3, true, 8);
    if (n.contains("promoted")) o << "  " << quoted(n["promoted"], 6);
    o << "\n";
  }
  o << "\nTop attention neurons (layer, head, dim @ source position)\n";
  for (size_t i = 0; i < j["attn_neurons"].size() && i < 10; ++i) {
    const auto& n = j["attn_neurons"][i];
    o << "  " << pad(n["label"].get<std::string>(), 14) << num(n["score"].get<double>(), 4, true);
    if (n.contains("promoted")) o << "  " << quoted(n["promoted"], 6);
    o << "\n";
  }
  if (ex.has_contrast) {
    // With a foil the question is "why the target rather than the foil": the same components ranked
    // by their share of log p(target) - log p(foil) (the lists above rank by log p(target) alone).
    const auto& c = j["contrast"];
    const int64_t H = static_cast<int64_t>(ex.contrast_head.shape.at(1));
    o << "\nRanked by log p(target) - log p(foil)\n  heads:      ";
    const auto heads = analysis::top_indices(ex.contrast_head.values, 10);
    for (int64_t i : heads) o << " " << label_head(i / H, i % H) << " " << num(ex.contrast_head.values[static_cast<size_t>(i)], 4, true);
    o << "\n  FFN neurons:";
    for (size_t i = 0; i < c["ffn_neurons"].size() && i < 10; ++i) {
      o << " " << c["ffn_neurons"][i]["label"].get<std::string>() << " " << num(c["ffn_neurons"][i]["score"].get<double>(), 4, true);
    }
    o << "\n  attention neurons:";
    for (size_t i = 0; i < c["attn_neurons"].size() && i < 10; ++i) {
      o << " " << c["attn_neurons"][i]["label"].get<std::string>() << " " << num(c["attn_neurons"][i]["score"].get<double>(), 4, true);
    }
    o << "\n";
  }
  o << "\nQuery FFN neurons (activate the top " << eo.query_top_n << " attention value neurons)\n";
  for (size_t i = 0; i < j["query_ffn_neurons"].size() && i < 10; ++i) {
    const auto& n = j["query_ffn_neurons"][i];
    o << "  " << pad(n["label"].get<std::string>(), 10) << num(n["score"].get<double>(), 4, true) << "\n";
  }
  o << "\nQuery layers of the top FFN value neurons (key " << j["query_layers"]["ffn_value_neurons"]["key"].get<std::string>() << "):";
  const auto& variants = j["query_layers"]["ffn_value_neurons"]["variants"];
  if (!variants.empty()) {
    for (const auto& s : variants.begin().value()) o << " " << s["label"].get<std::string>() << " " + num(s["score"].get<double>(), 3, true);
  }
  o << "\n\nLogit lens: the target at each residual point\n  point   rank        p  top tokens\n";
  for (const auto& p : j["lens"]) {
    json texts = json::array();
    for (const auto& t : p["top"]) texts.push_back(t["text"]);
    o << "  " << pad(p["label"].get<std::string>(), 6) << num(p["rank"].get<double>(), 0, false, 6) << "  " + num(100 * p["prob"].get<double>(), 2, false, 6) + "%" << "  " << quoted(texts, 5) << "\n";
  }
  return o.str();
}

void write_explain_arrays(const std::filesystem::path& dir, const Explanation& ex) {
  report::create_output_folder(dir);
  for (const auto& [name, a] : report::explanation_arrays(ex)) write_npy(dir / (name + ".npy"), a.values.data(), a.shape);
}

}  // namespace reslens
