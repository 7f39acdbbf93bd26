// A circuit graph (reslens/graph.h) as Neuronpedia's attribution-graph JSON: "metadata", "qParams",
// "nodes" and "links", the format its graph viewer and circuit-tracer's create_graph_files read.
// tests/data/graph/neuronpedia-graph-schema.json is the published schema (its README names the
// source); graph_schema_test validates every document against it.
#include <nlohmann/json.hpp>

#include "report/explain_document.h"
#include "reslens/graph.h"

namespace reslens {

namespace {

using nlohmann::json;
using Kind = GraphNode::Kind;

// Neuronpedia's feature_type: the viewer knows "embedding" and "logit"; the neuron kinds are ours.
const char* feature_type(Kind k) {
  switch (k) {
    case Kind::kToken: return "embedding";
    case Kind::kFfnQuery: return "mlp neuron (query)";
    case Kind::kFfnValue: return "mlp neuron";
    case Kind::kAttnValue: return "attention neuron";
    case Kind::kHead: return "attention head";
    case Kind::kLogit: return "logit";
  }
  return "";
}

}  // namespace

std::string graph_json(const Model& model, const CircuitGraph& g) {
  const ExplainedPrompt& e = g.explained;
  json j;
  json prompt_tokens = json::array();
  for (int32_t id : e.tokens) prompt_tokens.push_back(report::tok(model, id));
  std::string name = model.config().model_name.empty() ? model.path().filename().string() : model.config().model_name;
  j["metadata"] = {
      {"slug", "reslens-" + report::clean(name) + "-" + std::to_string(e.options.target)},
      {"scan", report::clean(name)},
      {"prompt_tokens", prompt_tokens},
      {"prompt", report::clean(model.tokenizer().decode(e.tokens))},
      {"node_threshold", g.options.node_threshold},
      {"info",
       {{"description",
         "Neuron-level circuit of the prediction at position " + std::to_string(e.options.position) + " for '" +
             report::tok(model, e.options.target) +
             "': value neurons and heads scored by log-probability increase, query neurons by inner-product shares "
             "(docs/graph.md)"},
        {"generator", {{"name", "reslens graph"}, {"url", "docs/graph.md"}}}}},
      {"pruning_settings", {{"node_threshold", g.options.node_threshold}, {"edge_threshold", g.options.edge_threshold}}},
      {"generation_settings",
       {{"top_values", g.options.top_values}, {"top_heads", g.options.top_heads}, {"top_queries", g.options.top_queries},
        {"nodes_before_pruning", g.nodes_before}, {"edges_before_pruning", g.edges_before}}}};
  // how the explanation's scores were computed (docs/explain.md, "Precision and speed knobs")
  j["metadata"]["generation_settings"].update(report::score_knobs(e.options));
  j["qParams"] = {{"pinnedIds", json::array()}, {"supernodes", json::array()}, {"linkType", "both"}};
  j["nodes"] = json::array();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const GraphNode& n = g.nodes[i];
    json o = {{"node_id", n.id},
              {"feature", n.feature},
              {"layer", n.kind == Kind::kToken ? json("E") : json(std::to_string(n.layer))},
              {"ctx_idx", n.position},
              {"feature_type", feature_type(n.kind)},
              {"jsNodeId", n.id + "-" + std::to_string(i)},
              {"clerp", report::clean(n.label)},
              {"influence", n.influence},
              {"activation", n.activation}};
    if (n.kind == Kind::kLogit) o["is_target_logit"] = true;
    if (n.kind == Kind::kFfnValue || n.kind == Kind::kAttnValue || n.kind == Kind::kHead) o["score"] = n.score;
    j["nodes"].push_back(o);
  }
  j["links"] = json::array();
  for (const GraphEdge& ed : g.edges) {
    j["links"].push_back({{"source", g.nodes[static_cast<size_t>(ed.source)].id},
                          {"target", g.nodes[static_cast<size_t>(ed.target)].id},
                          {"weight", ed.weight}});
  }
  return j.dump(2);
}

}  // namespace reslens
