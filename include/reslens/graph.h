// graph: the prediction's circuit from the paper's quantities (docs/graph.md). Nodes are the input
// tokens, the top value neurons (FFN at P, attention at their source positions) and heads, the query
// FFN neurons that activate them, and the target logit. Edges carry measured contributions:
//   value -> logit      the value neuron's (or head's) log-probability increase Imp (spec §3.1)
//   attn neuron -> head the attention neuron's Imp (its head's edge to the logit is the head's Imp)
//   query -> value      (m_{p,k'} fc2_{k'} . K / D) Imp_v: the query neuron's inner-product share of
//                       the value neuron's coefficient times the value's Imp (spec §4.3 Q3; for an FFN
//                       value neuron the same with Q1's key and D = the components of r_P^l . K)
//   token -> neuron     (h_p^{-1} . K / D) times the neuron's influence: the embedding's share
// pruned to the nodes and edges that carry the chosen shares of the total, as circuit-tracer prunes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reslens/explain_request.h"
#include "reslens/model.h"
#include "reslens/report.h"

namespace reslens {

struct GraphOptions {
  int top_values = 10;    ///< FFN value neurons and attention value neurons (each), by Imp
  int top_heads = 5;      ///< heads by Imp (the heads of kept attention neurons come too)
  int top_queries = 20;   ///< query FFN neurons, by the total |weight| of their edges to the values
  double node_threshold = 0.8;  ///< keep the fewest nodes whose influence reaches this share, in [0, 1]
  double edge_threshold = 0.98; ///< then the fewest edges whose |weight| reaches this share, in [0, 1]
};

struct GraphNode {
  enum class Kind { kToken, kFfnQuery, kFfnValue, kAttnValue, kHead, kLogit };
  Kind kind = Kind::kToken;
  std::string id;        ///< Neuronpedia's node_id: "E_<token>_<pos>", "<layer>_<feature>_<pos>", "L_<token>_<pos>"
  int64_t layer = -1;    ///< -1 for tokens, n_layers for the logit
  int64_t feature = -1;  ///< FFN neuron k; attention neuron d_mlp + h*d_head + n; head d_mlp + H*d_head + h; token id
  int64_t position = 0;
  std::string label;     ///< "L3N200", "L3H1D7@4", "L3H1", the token's text
  double influence = 0;  ///< sum of |weights| of its outgoing edges before pruning
  double activation = 0; ///< the neuron's coefficient (FFN m, attention alpha v); 0 for others
  double score = 0;      ///< value neurons and heads: their Imp
};

struct GraphEdge {
  int source = 0, target = 0;  ///< indices into CircuitGraph::nodes
  double weight = 0;
};

struct CircuitGraph {
  ExplainedPrompt explained;
  GraphOptions options;
  std::vector<GraphNode> nodes;  ///< after pruning (the logit always first)
  std::vector<GraphEdge> edges;
  int64_t nodes_before = 0, edges_before = 0;  ///< before pruning
};

/// Explains the request and builds its circuit. InvalidArgument when a threshold is outside [0, 1]
/// or when pruning leaves no edge ("the graph is empty after pruning: ...").
CircuitGraph graph(const Model& model, const ExplainRequest& request, const GraphOptions& options = {});

/// The graph as Neuronpedia's attribution-graph JSON (metadata, qParams, nodes, links), the format
/// its graph viewer and circuit-tracer read; tests/data/graph/neuronpedia-graph-schema.json is the
/// published schema it is validated against (report module).
std::string graph_json(const Model& model, const CircuitGraph& g);

/// One self-contained HTML page: the layered graph as SVG, a click on a node shows its kind, scores
/// and edges; graph_json()'s document embedded in <script type="application/json" id="reslens-graph">.
std::string graph_html(const Model& model, const CircuitGraph& g);

/// explain_html()'s report with its circuit (docs/report.md, "Circuit"): graph_json() of the same
/// prompt, position and target with `options`, in <script type="application/json" id="reslens-graph">,
/// which the page draws as its "circuit" section. When the graph is refused (a mixture-of-experts
/// model, or nothing left after pruning) the element holds {"unavailable": "<the reason>"} instead
/// and the page says so. Builds the graph with its own explain of the prompt (the cost of a second
/// explain). UnsupportedError as explain_html().
std::string explain_html_with_graph(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                                    const Explanation& ex, const ExplainOptions& eo, const ReportOptions& ro = {},
                                    const GraphOptions& options = {});

}  // namespace reslens
