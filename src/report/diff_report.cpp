// Reports of a diff (reslens/diff.h): one JSON document, a terminal report and the arrays as .npy.
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/npy.h"
#include "reslens/diff.h"
#include "report/explain_document.h"

namespace reslens {

namespace {

using nlohmann::json;

// Levels up to this many elements carry their three arrays in the JSON document; larger ones
// (neurons, head x position) only their summary: `--out` writes them whole.
constexpr int64_t kInlineLevel = 4096;

json side(const Model& m, const std::string& path, const ExplainedPrompt& e, int32_t prediction) {
  const Explanation& x = e.explanation;
  return {{"path", path},
          {"shape", shape_text(m)},
          {"prediction", {{"id", prediction}, {"text", report::tok(m, prediction)}}},
          {"target_logit", x.real_logit},
          {"target_log_prob", x.real_log_prob},
          {"target_prob", x.real_prob},
          {"target_rank", x.real_rank}};
}

json change_json(const ComponentChange& c) {
  return {{"label", c.label}, {"index", c.index}, {"a", c.a},           {"b", c.b},
          {"delta", c.delta}, {"rank_a", c.rank_a}, {"rank_b", c.rank_b}};
}

json ranked_json(const RankedChanges& r) {
  json j = {{"by_delta", json::array()}, {"by_rank", json::array()}};
  for (const ComponentChange& c : r.by_delta) j["by_delta"].push_back(change_json(c));
  for (const ComponentChange& c : r.by_rank) j["by_rank"].push_back(change_json(c));
  return j;
}

}  // namespace

std::string diff_json(const Model& a, const Model& b, const ModelDiff& d, const ReportOptions& ro) {
  (void)ro;
  const ExplainOptions& eo = d.a.options;
  json j;
  j["schema_version"] = report::kSchemaVersion;
  j["kind"] = "diff";
  j["model_a"] = side(a, d.path_a, d.a, d.prediction_a);
  j["model_b"] = side(b, d.path_b, d.b, d.prediction_b);
  j["tokens"] = d.a.tokens;
  j["token_texts"] = report::token_texts(a, d.a.tokens);
  j["position"] = eo.position;
  j["target"] = {{"id", eo.target}, {"text", report::tok(a, eo.target)}};
  if (eo.foil >= 0) j["foil"] = {{"id", eo.foil}, {"text", report::tok(a, eo.foil)}};
  // Both sides explained with these knobs (docs/explain.md, "Precision and speed knobs").
  j["options"] = report::score_knobs(eo);
  j["target_log_prob_delta"] = d.b.explanation.real_log_prob - d.a.explanation.real_log_prob;
  j["max_abs_delta"] = d.max_abs_delta;
  j["levels"] = json::array();
  for (const LevelDiff& lv : d.levels) {
    double worst = 0;
    for (double v : lv.delta.values) worst = std::max(worst, std::abs(v));
    json e = {{"name", lv.name}, {"shape", lv.a.shape}, {"max_abs_delta", worst}};
    if (lv.a.size() <= kInlineLevel) {
      e["a"] = lv.a.values;
      e["b"] = lv.b.values;
      e["delta"] = lv.delta.values;
    }
    j["levels"].push_back(e);
  }
  j["changes"] = {{"layers", ranked_json(d.layers)},
                  {"heads", ranked_json(d.heads)},
                  {"ffn_neurons", ranked_json(d.ffn_neurons)},
                  {"attn_neurons", ranked_json(d.attn_neurons)}};
  j["splits"] = json::array();
  for (const NeuronSplit& s : d.splits) {
    json e = change_json(s.change);
    e["kind"] = s.ffn ? "ffn" : "attn";
    e["coef_a"] = s.coef_a;
    e["coef_b"] = s.coef_b;
    e["weight_norm"] = s.weight_norm;
    e["weights"] = s.weights;
    e["activation"] = s.activation;
    j["splits"].push_back(e);
  }
  j["notes"] = d.a.notes;
  return j.dump(2);
}

std::string diff_text(const Model& a, const Model& b, const ModelDiff& d, const ReportOptions& ro) {
  using report::num;
  using report::pad;
  std::ostringstream s;
  const ExplainOptions& eo = d.a.options;
  s << "A: " << d.path_a << "\nB: " << d.path_b << "\n";
  s << "shape: " << shape_text(a) << "\n";
  s << "position " << eo.position << ", target '" << report::tok(a, eo.target) << "' (" << eo.target << ")\n\n";
  s << pad("", 8) << pad("prediction", 20) << pad("log p(target)", 16) << "rank\n";
  s << pad("A", 8) << pad("'" + report::tok(a, d.prediction_a) + "'", 20) << pad(num(d.a.explanation.real_log_prob, 6), 16)
    << d.a.explanation.real_rank << "\n";
  s << pad("B", 8) << pad("'" + report::tok(b, d.prediction_b) + "'", 20) << pad(num(d.b.explanation.real_log_prob, 6), 16)
    << d.b.explanation.real_rank << "\n";
  s << pad("B - A", 8) << pad("", 20) << num(d.b.explanation.real_log_prob - d.a.explanation.real_log_prob, 6, true) << "\n\n";
  if (d.max_abs_delta == 0) {
    s << "every level is identical (largest |B - A| is 0)\n";
    return s.str();
  }
  s << "largest |B - A| per level:\n";
  for (const LevelDiff& lv : d.levels) {
    double worst = 0;
    for (double v : lv.delta.values) worst = std::max(worst, std::abs(v));
    s << "  " << pad(lv.name, 30) << num(worst, 8) << "\n";
  }
  auto list = [&](const char* title, const RankedChanges& r) {
    if (r.by_delta.empty()) return;
    s << "\n" << title << " whose score changed most:\n";
    s << "  " << pad("", 16) << pad("A", 12) << pad("B", 12) << pad("B - A", 12) << "rank A -> B\n";
    const size_t n = std::min(r.by_delta.size(), static_cast<size_t>(std::max(ro.top, 0)));
    for (size_t i = 0; i < n; ++i) {
      const ComponentChange& c = r.by_delta[i];
      s << "  " << pad(c.label, 16) << pad(num(c.a, 5, true), 12) << pad(num(c.b, 5, true), 12)
        << pad(num(c.delta, 5, true), 12) << c.rank_a << " -> " << c.rank_b << "\n";
    }
  };
  list("layers", d.layers);
  list("heads", d.heads);
  list("FFN neurons", d.ffn_neurons);
  list("attention neurons", d.attn_neurons);
  if (!d.splits.empty()) {
    s << "\nneurons' change split into weights and activation (weights + activation = B - A):\n";
    s << "  " << pad("", 16) << pad("B - A", 12) << pad("weights", 12) << pad("activation", 12) << pad("|w_B - w_A|", 12)
      << "coef A -> B\n";
    for (const NeuronSplit& sp : d.splits) {
      s << "  " << pad(sp.change.label, 16) << pad(num(sp.change.delta, 5, true), 12) << pad(num(sp.weights, 5, true), 12)
        << pad(num(sp.activation, 5, true), 12) << pad(num(sp.weight_norm, 5), 12) << num(sp.coef_a, 4) << " -> "
        << num(sp.coef_b, 4) << "\n";
    }
  }
  return s.str();
}

void write_diff_arrays(const std::filesystem::path& dir, const ModelDiff& d) {
  report::create_output_folder(dir / "a");
  report::create_output_folder(dir / "b");
  report::create_output_folder(dir / "delta");
  for (const LevelDiff& lv : d.levels) {
    write_npy(dir / "a" / (lv.name + ".npy"), lv.a.values.data(), lv.a.shape);
    write_npy(dir / "b" / (lv.name + ".npy"), lv.b.values.data(), lv.b.shape);
    write_npy(dir / "delta" / (lv.name + ".npy"), lv.delta.values.data(), lv.delta.shape);
  }
  std::vector<double> rows;  // [n, 5]
  for (const NeuronSplit& s : d.splits) rows.insert(rows.end(), {s.coef_a, s.coef_b, s.weight_norm, s.weights, s.activation});
  write_npy(dir / "splits.npy", rows.data(), {static_cast<int64_t>(d.splits.size()), 5});
}

}  // namespace reslens
