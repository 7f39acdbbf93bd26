// reslens._core.diff and reslens._core.graph (reslens/diff.h, reslens/graph.h): two models' explanations
// side by side, and the prediction's circuit. Both return the library's result behind a handle whose
// reports are the CLI's (`reslens diff --json`, `reslens graph`); python/reslens/diff.py and graph.py
// add the Python views.
#include "bindings.h"
#include "reslens/diff.h"
#include "reslens/graph.h"

namespace reslens::python {

namespace {

struct DiffHandle {
  std::shared_ptr<const Model> a, b;
  std::shared_ptr<const ModelDiff> diff;
};

struct GraphHandle {
  std::shared_ptr<const Model> model;
  CircuitGraph graph;
};

// The precision knobs as explain's binding takes them (explain_request() checks bound_tol by the
// library's rule; parse_method the method).
void set_score_knobs(ExplainArgs& a, const std::string& method, double bound_tol, bool projection_cache,
                     bool projection_sketch, int extended_head) {
  a.method = parse_method(method);
  a.extended_head = extended_head;
  a.bound_tol = bound_tol;
  a.projection_cache = projection_cache;
  a.projection_sketch = projection_sketch;
}

}  // namespace

void register_diff(py::module_& m) {
  py::class_<DiffHandle>(m, "ModelDiff", "Two models' explanations of one prompt (reslens.diff)")
      .def("to_json", [](const DiffHandle& h, int top) {
             ReportOptions ro;
             ro.top = top;
             return diff_json(*h.a, *h.b, *h.diff, ro);
           }, py::arg("top") = 20)
      .def("text", [](const DiffHandle& h, int top) {
             ReportOptions ro;
             ro.top = top;
             return diff_text(*h.a, *h.b, *h.diff, ro);
           }, py::arg("top") = 20)
      .def_property_readonly("max_abs_delta", [](const DiffHandle& h) { return h.diff->max_abs_delta; })
      .def("arrays", [](const DiffHandle& h) {
             // name -> (a, b, delta), read-only views that keep the diff alive
             py::dict out;
             for (const LevelDiff& lv : h.diff->levels) {
               out[py::str(lv.name)] = py::make_tuple(score_view(lv.a, h.diff), score_view(lv.b, h.diff),
                                                      score_view(lv.delta, h.diff));
             }
             return out;
           });
  m.def("diff",
        [](const ModelHandle& a, const ModelHandle& b, const py::handle& tokens, const py::handle& target,
           const py::handle& foil, int position, int top, int split_top, bool include_final_bias, int threads,
           const std::string& method, double bound_tol, bool projection_cache, bool projection_sketch,
           int extended_head) {
          ExplainArgs args;
          args.target = token_name(target, "target");
          args.foil = token_name(foil, "foil");
          args.position = position;
          args.include_final_bias = include_final_bias;
          args.threads = threads;
          set_score_knobs(args, method, bound_tol, projection_cache, projection_sketch, extended_head);
          ExplainRequest req = explain_request(to_ids(tokens), args);
          req.all_logits = false;
          DiffOptions o;
          o.top = top;
          o.split_top = split_top;
          DiffHandle h{a.ptr, b.ptr, nullptr};
          {
            py::gil_scoped_release release;
            h.diff = std::make_shared<const ModelDiff>(diff(*a, *b, req, o));
          }
          return h;
        },
        py::arg("model_a"), py::arg("model_b"), py::arg("tokens"), py::arg("target") = py::none(),
        py::arg("foil") = py::none(), py::arg("position") = -1, py::arg("top") = 20, py::arg("split_top") = 20,
        py::arg("include_final_bias") = false, py::arg("threads") = 0, py::arg("method") = "auto",
        py::arg("bound_tol") = ExplainOptions{}.bound_tol, py::arg("projection_cache") = true,
        py::arg("projection_sketch") = true, py::arg("extended_head") = ExplainOptions{}.extended_head,
        "Two models' explanations of one prompt; method, bound_tol, projection_cache, projection_sketch and "
        "extended_head as explain's, for both sides.");

  py::class_<GraphHandle>(m, "CircuitGraph", "The prediction's circuit (reslens.graph)")
      .def("to_json", [](const GraphHandle& h) { return graph_json(*h.model, h.graph); })
      .def_property_readonly("nodes_before", [](const GraphHandle& h) { return h.graph.nodes_before; })
      .def_property_readonly("edges_before", [](const GraphHandle& h) { return h.graph.edges_before; });
  m.def("graph",
        [](const ModelHandle& model, const py::handle& tokens, const py::handle& target, int position, int top_values,
           int top_heads, int top_queries, double node_threshold, double edge_threshold, bool include_final_bias,
           int threads, const std::string& method, double bound_tol, bool projection_cache, bool projection_sketch,
           int extended_head) {
          ExplainArgs args;
          args.target = token_name(target, "target");
          args.position = position;
          args.include_final_bias = include_final_bias;
          args.threads = threads;
          set_score_knobs(args, method, bound_tol, projection_cache, projection_sketch, extended_head);
          ExplainRequest req = explain_request(to_ids(tokens), args);
          req.all_logits = false;
          GraphOptions o;
          o.top_values = top_values;
          o.top_heads = top_heads;
          o.top_queries = top_queries;
          o.node_threshold = node_threshold;
          o.edge_threshold = edge_threshold;
          GraphHandle h{model.ptr, {}};
          {
            py::gil_scoped_release release;
            h.graph = graph(*model, req, o);
          }
          return h;
        },
        py::arg("model"), py::arg("tokens"), py::arg("target") = py::none(), py::arg("position") = -1,
        py::arg("top_values") = 10, py::arg("top_heads") = 5, py::arg("top_queries") = 20, py::arg("node_threshold") = 0.8,
        py::arg("edge_threshold") = 0.98, py::arg("include_final_bias") = false, py::arg("threads") = 0,
        py::arg("method") = "auto", py::arg("bound_tol") = ExplainOptions{}.bound_tol, py::arg("projection_cache") = true,
        py::arg("projection_sketch") = true, py::arg("extended_head") = ExplainOptions{}.extended_head,
        "The prediction's circuit; method, bound_tol, projection_cache, projection_sketch and extended_head as "
        "explain's.");
}

}  // namespace reslens::python
