// A circuit graph as one self-contained HTML page (`reslens graph --html FILE`): the graph_json()
// document embedded, drawn in the browser by web/src/graph.js (the one drawing the report and the
// explorer use too: a column per layer, tokens left, the target logit right; edge width by |weight|,
// blue positive, red negative) and, on a click on a node, its kind, scores and edges in a side
// panel. graph.js is embedded raw (it imports nothing), so every build writes this page, without node.
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/explain_document.h"
#include "report/html_page.h"
#include "report/web_assets.h"
#include "reslens/graph.h"

namespace reslens {

namespace {

using report::html_escape;

// After graph.js (same module): draw the embedded document, list a clicked node in the panel.
constexpr const char* kBoot = R"JS(
const doc = JSON.parse(document.getElementById('reslens-graph').textContent);
const panel = document.getElementById('panel');
drawGraph(document.getElementById('graph'), doc, (id) => panel.replaceChildren(graphNodeDetails(doc, id)));
)JS";

}  // namespace

std::string graph_html(const Model& model, const CircuitGraph& g) {
  std::ostringstream s;
  s << "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>reslens graph</title><style>"
       "body{font:13px system-ui,sans-serif;margin:1.5em;color:#222;display:flex;gap:2em}#panel{min-width:22em}"
       ".node{cursor:pointer}.node circle{fill:#555}.node.sel circle{fill:#d69e2e}.node text{font-size:11px}"
       "li{font-family:monospace;white-space:pre}</style></head><body><div><h1>reslens graph</h1><p>"
    << html_escape(report::clean(model.tokenizer().decode(g.explained.tokens))) << " &rarr; <b>"
    << html_escape(report::tok(model, g.explained.options.target)) << "</b>: " << g.nodes.size() << " nodes and "
    << g.edges.size() << " edges of " << g.nodes_before << " and " << g.edges_before
    << " before pruning. Click a node.</p><div id=graph></div></div><div id=panel></div>"
       "<script type=\"application/json\" id=\"reslens-graph\">"
    << report::script_safe_json(nlohmann::json::parse(graph_json(model, g))) << "</script><script type=\"module\">"
    << web_assets::kGraphScript << kBoot << "</script></body></html>\n";
  return s.str();
}

}  // namespace reslens
