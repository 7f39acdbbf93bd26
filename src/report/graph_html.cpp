// A circuit graph as one self-contained HTML page (`reslens graph --html FILE`): the layered graph
// as SVG (a column per layer, tokens left, the target logit right; edge width by |weight|, blue
// positive, red negative) and, on a click on a node, its kind, scores and edges in a side panel.
// The graph_json() document is embedded and read by a few lines of inline script; no web/ assets,
// so every build can write it.
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/explain_document.h"
#include "report/html_page.h"
#include "reslens/graph.h"

namespace reslens {

namespace {

using report::html_escape;

constexpr int kColumn = 170, kRow = 30, kLeft = 40, kTop = 40;

// The inline script: clicking a node lists it and its edges from the embedded document.
constexpr const char* kScript = R"JS(
const doc = JSON.parse(document.getElementById('reslens-graph').textContent);
const byId = new Map(doc.nodes.map(n => [n.node_id, n]));
const panel = document.getElementById('panel');
function fmt(x) { return (x >= 0 ? '+' : '') + x.toFixed(5); }
function show(id) {
  const n = byId.get(id);
  const edges = (dir) => doc.links.filter(l => (dir === 'in' ? l.target : l.source) === id)
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight))
    .map(l => { const o = byId.get(dir === 'in' ? l.source : l.target); const li = document.createElement('li');
                li.textContent = fmt(l.weight) + '  ' + o.clerp + ' (' + o.feature_type + ')'; return li; });
  panel.replaceChildren();
  const h = document.createElement('h2'); h.textContent = n.clerp; panel.append(h);
  const p = document.createElement('p');
  p.textContent = n.feature_type + ', layer ' + n.layer + ', position ' + n.ctx_idx +
    (n.score !== undefined ? ', score (log-prob increase) ' + fmt(n.score) : '') +
    ', activation ' + fmt(n.activation) + ', influence ' + n.influence.toFixed(5);
  panel.append(p);
  for (const dir of ['in', 'out']) {
    const list = edges(dir); if (!list.length) continue;
    const t = document.createElement('h3'); t.textContent = dir === 'in' ? 'from' : 'to'; panel.append(t);
    const ul = document.createElement('ul'); ul.append(...list); panel.append(ul);
  }
  document.querySelectorAll('.node').forEach(g => g.classList.toggle('sel', g.dataset.id === id));
}
document.querySelectorAll('.node').forEach(g => g.addEventListener('click', () => show(g.dataset.id)));
)JS";

}  // namespace

std::string graph_html(const Model& model, const CircuitGraph& g) {
  // Columns: tokens (-1), then each layer, then the logit (n_layers).
  std::map<int64_t, std::vector<size_t>> columns;
  for (size_t i = 0; i < g.nodes.size(); ++i) columns[g.nodes[i].layer].push_back(i);
  std::vector<std::pair<int, int>> xy(g.nodes.size());
  size_t rows = 1;
  int c = 0;
  for (const auto& [layer, members] : columns) {
    for (size_t r = 0; r < members.size(); ++r) xy[members[r]] = {kLeft + kColumn * c, kTop + kRow * static_cast<int>(r)};
    rows = std::max(rows, members.size());
    ++c;
  }
  double big = 0;
  for (const GraphEdge& e : g.edges) big = std::max(big, std::abs(e.weight));
  std::ostringstream s;
  const int width = kLeft * 2 + kColumn * c, height = kTop * 2 + kRow * static_cast<int>(rows);
  s << "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>reslens graph</title><style>"
       "body{font:13px system-ui,sans-serif;margin:1.5em;color:#222;display:flex;gap:2em}#panel{min-width:22em}"
       ".node{cursor:pointer}.node circle{fill:#555}.node.sel circle{fill:#d69e2e}.node text{font-size:11px}"
       "li{font-family:monospace;white-space:pre}</style></head><body><div><h1>reslens graph</h1><p>"
    << html_escape(report::clean(model.tokenizer().decode(g.explained.tokens))) << " &rarr; <b>"
    << html_escape(report::tok(model, g.explained.options.target)) << "</b>: " << g.nodes.size() << " nodes and "
    << g.edges.size() << " edges of " << g.nodes_before << " and " << g.edges_before
    << " before pruning. Click a node.</p><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
    << height << "\">";
  for (const GraphEdge& e : g.edges) {
    const auto [x1, y1] = xy[static_cast<size_t>(e.source)];
    const auto [x2, y2] = xy[static_cast<size_t>(e.target)];
    const double w = big > 0 ? 0.5 + 4.0 * std::abs(e.weight) / big : 1.0;
    s << "<line x1=\"" << x1 << "\" y1=\"" << y1 << "\" x2=\"" << x2 << "\" y2=\"" << y2 << "\" stroke=\""
      << (e.weight >= 0 ? "#2b6cb0" : "#c53030") << "\" stroke-opacity=\"0.55\" stroke-width=\"" << report::num(w, 2)
      << "\"><title>" << html_escape(g.nodes[static_cast<size_t>(e.source)].label) << " -> "
      << html_escape(g.nodes[static_cast<size_t>(e.target)].label) << ": " << report::num(e.weight, 6, true)
      << "</title></line>";
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto [x, y] = xy[i];
    s << "<g class=node data-id=\"" << html_escape(g.nodes[i].id) << "\"><circle cx=\"" << x << "\" cy=\"" << y
      << "\" r=\"6\"/><text x=\"" << x + 9 << "\" y=\"" << y + 4 << "\">" << html_escape(report::clean(g.nodes[i].label))
      << "</text></g>";
  }
  s << "</svg></div><div id=panel></div><script type=\"application/json\" id=\"reslens-graph\">"
    << report::script_safe_json(nlohmann::json::parse(graph_json(model, g))) << "</script><script>" << kScript
    << "</script></body></html>\n";
  return s.str();
}

}  // namespace reslens
