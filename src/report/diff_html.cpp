// The diff as one self-contained HTML page (`reslens diff --html FILE`): the two models side by side
// at every level that fits on a page (predictions, layers, the logit lens, heads), the components
// that changed most and the weights/activation splits, with the diff_json() document embedded for
// scripts. Static HTML and CSS, no script and no web/ assets, so every build can write it.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/explain_document.h"
#include "report/html_page.h"
#include "reslens/diff.h"

namespace reslens {

namespace {

using report::html_escape;
using report::num;

const LevelDiff* level(const ModelDiff& d, const std::string& name) {
  for (const LevelDiff& lv : d.levels) {
    if (lv.name == name) return &lv;
  }
  return nullptr;
}

// A signed bar: its width is |v| / scale of 60 px, blue for positive, red for negative.
std::string bar(double v, double scale) {
  const double w = scale > 0 ? std::min(60.0, 60.0 * std::abs(v) / scale) : 0.0;
  std::ostringstream s;
  s << "<span class=bar style=\"width:" << static_cast<int>(std::lround(w)) << "px;background:"
    << (v >= 0 ? "#2b6cb0" : "#c53030") << "\"></span>";
  return s.str();
}

std::string cell(double v, double scale) { return "<td>" + num(v, 5, true) + " " + bar(v, scale) + "</td>"; }

double largest(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  for (double v : b) m = std::max(m, std::abs(v));
  return m;
}

void changes_table(std::ostringstream& s, const char* title, const RankedChanges& r, size_t top) {
  if (r.by_delta.empty()) return;
  s << "<h2>" << title << " that changed most</h2><table><tr><th></th><th>A</th><th>B</th><th>B - A</th><th>rank A</th>"
       "<th>rank B</th></tr>";
  for (size_t i = 0; i < std::min(top, r.by_delta.size()); ++i) {
    const ComponentChange& c = r.by_delta[i];
    s << "<tr><th>" << html_escape(c.label) << "</th><td>" << num(c.a, 5, true) << "</td><td>" << num(c.b, 5, true)
      << "</td><td>" << num(c.delta, 5, true) << "</td><td>" << c.rank_a << "</td><td>" << c.rank_b << "</td></tr>";
  }
  s << "</table>";
}

}  // namespace

std::string diff_html(const Model& a, const Model& b, const ModelDiff& d, const ReportOptions& ro) {
  const Explanation &xa = d.a.explanation, &xb = d.b.explanation;
  const ExplainOptions& eo = d.a.options;
  const auto top = static_cast<size_t>(std::max(ro.top, 0));
  std::ostringstream s;
  s << "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>reslens diff</title><style>"
       "body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
       "td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right;font-variant-numeric:tabular-nums}"
       "th{text-align:left}.bar{display:inline-block;height:9px;vertical-align:middle}.sides{display:flex;flex-wrap:wrap;gap:3em}"
       "code{background:#f4f4f4;padding:1px 4px}</style></head><body>";
  s << "<h1>reslens diff</h1><p>Prompt <code>" << html_escape(report::clean(a.tokenizer().decode(d.a.tokens)))
    << "</code>, position " << eo.position << ", target <code>" << html_escape(report::tok(a, eo.target)) << "</code> ("
    << eo.target << "). Shape: " << html_escape(shape_text(a)) << ". Largest |B - A| over every level: "
    << num(d.max_abs_delta, 8) << ".</p>";
  s << "<table><tr><th></th><th>model</th><th>prediction</th><th>log p(target)</th><th>p(target)</th><th>rank</th></tr>";
  const ExplainedPrompt* sides[2] = {&d.a, &d.b};
  const Model* models[2] = {&a, &b};
  const int32_t preds[2] = {d.prediction_a, d.prediction_b};
  const std::string paths[2] = {d.path_a, d.path_b};
  for (int i = 0; i < 2; ++i) {
    const Explanation& x = sides[i]->explanation;
    s << "<tr><th>" << (i == 0 ? "A" : "B") << "</th><td>" << html_escape(paths[i]) << "</td><td><code>"
      << html_escape(report::tok(*models[i], preds[i])) << "</code></td><td>" << num(x.real_log_prob, 6) << "</td><td>"
      << num(x.real_prob, 6) << "</td><td>" << x.real_rank << "</td></tr>";
  }
  s << "<tr><th>B - A</th><td></td><td></td><td>" << num(xb.real_log_prob - xa.real_log_prob, 6, true)
    << "</td><td>" << num(xb.real_prob - xa.real_prob, 6, true) << "</td><td></td></tr></table>";

  // Layers: A, B and B - A of both sublayers, bars on one scale per table.
  const double ls = largest(xa.attn_layer, xb.attn_layer) + largest(xa.ffn_layer, xb.ffn_layer);
  s << "<h2>Layers</h2><table><tr><th></th><th>attention A</th><th>attention B</th><th>B - A</th><th>FFN A</th>"
       "<th>FFN B</th><th>B - A</th></tr>";
  for (size_t l = 0; l < xa.attn_layer.size(); ++l) {
    s << "<tr><th>L" << l << "</th>" << cell(xa.attn_layer[l], ls) << cell(xb.attn_layer[l], ls)
      << cell(xb.attn_layer[l] - xa.attn_layer[l], ls) << cell(xa.ffn_layer[l], ls) << cell(xb.ffn_layer[l], ls)
      << cell(xb.ffn_layer[l] - xa.ffn_layer[l], ls) << "</tr>";
  }
  s << "</table>";
  s << "<h2>Logit lens</h2><table><tr><th>point</th><th>log p A</th><th>log p B</th><th>B - A</th><th>rank A</th>"
       "<th>rank B</th></tr>";
  for (size_t i = 0; i < xa.lens.size(); ++i) {
    s << "<tr><th>" << html_escape(xa.lens[i].label) << "</th><td>" << num(xa.lens[i].log_prob, 5) << "</td><td>"
      << num(xb.lens[i].log_prob, 5) << "</td><td>" << num(xb.lens[i].log_prob - xa.lens[i].log_prob, 5, true)
      << "</td><td>" << xa.lens[i].rank << "</td><td>" << xb.lens[i].rank << "</td></tr>";
  }
  s << "</table>";
  if (const LevelDiff* h = level(d, "head_scores")) {
    const double hs = largest(h->a.values, h->b.values);
    s << "<h2>Heads</h2><div class=sides>";
    for (const auto& [name, arr] : {std::pair<const char*, const ScoreArray*>{"A", &h->a}, {"B", &h->b}, {"B - A", &h->delta}}) {
      s << "<table><tr><th>" << name << "</th>";
      for (int64_t hh = 0; hh < arr->shape[1]; ++hh) s << "<th>H" << hh << "</th>";
      s << "</tr>";
      for (int64_t l = 0; l < arr->shape[0]; ++l) {
        s << "<tr><th>L" << l << "</th>";
        for (int64_t hh = 0; hh < arr->shape[1]; ++hh) {
          const double v = arr->at({l, hh});
          const double alpha = hs > 0 ? std::min(1.0, std::abs(v) / hs) : 0.0;
          s << "<td style=\"background:rgba(" << (v >= 0 ? "43,108,176," : "197,48,48,") << num(alpha, 3) << ")\">"
            << num(v, 3, true) << "</td>";
        }
        s << "</tr>";
      }
      s << "</table>";
    }
    s << "</div>";
  }
  changes_table(s, "Layers", d.layers, top);
  changes_table(s, "Heads", d.heads, top);
  changes_table(s, "FFN neurons", d.ffn_neurons, top);
  changes_table(s, "Attention neurons", d.attn_neurons, top);
  if (!d.splits.empty()) {
    s << "<h2>Weights versus activation</h2><p>weights = Imp<sub>A</sub>(c<sub>A</sub> w<sub>B</sub>) - "
         "Imp<sub>A</sub>(c<sub>A</sub> w<sub>A</sub>), activation = (B - A) - weights (docs/diff.md).</p><table><tr>"
         "<th></th><th>B - A</th><th>weights</th><th>activation</th><th>|w<sub>B</sub> - w<sub>A</sub>|</th>"
         "<th>coef A</th><th>coef B</th></tr>";
    for (const NeuronSplit& sp : d.splits) {
      s << "<tr><th>" << html_escape(sp.change.label) << "</th><td>" << num(sp.change.delta, 5, true) << "</td><td>"
        << num(sp.weights, 5, true) << "</td><td>" << num(sp.activation, 5, true) << "</td><td>"
        << num(sp.weight_norm, 5) << "</td><td>" << num(sp.coef_a, 4, true) << "</td><td>" << num(sp.coef_b, 4, true)
        << "</td></tr>";
    }
    s << "</table>";
  }
  if (d.max_abs_delta == 0) s << "<p>Every level is identical: the largest |B - A| is 0.</p>";
  s << "<script type=\"application/json\" id=\"reslens-diff\">"
    << report::script_safe_json(nlohmann::json::parse(diff_json(a, b, d, ro))) << "</script></body></html>\n";
  return s.str();
}

}  // namespace reslens
