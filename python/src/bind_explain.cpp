// reslens._core.explain, Explanation and ablate: the paper's attribution (reslens::explain) with every
// score as a zero-copy float64 numpy view, its reports (the CLI's JSON and text), and interventions.
#include <chrono>
#include <optional>

#include "analysis/ranking.h"
#include "bindings.h"
#include "reslens/explain_request.h"
#include "reslens/graph.h"

namespace reslens::python {

namespace {

using Result = std::shared_ptr<ExplainResult>;

// The library's one request (reslens/explain_request.h), as the CLI and the server make it; the GIL
// must be released.
Result explain_tokens(const std::shared_ptr<const Model>& model, std::vector<int32_t> tokens, const ExplainArgs& a) {
  ExplainedPrompt done = explain(*model, explain_request(std::move(tokens), a));
  auto res = std::make_shared<ExplainResult>();
  res->model = model;
  res->run = std::const_pointer_cast<RunResult>(done.run);
  res->tokens = std::move(done.tokens);
  res->ex = std::move(done.explanation);
  res->eo = done.options;
  res->notes = std::move(done.notes);
  return res;
}

}  // namespace

ScoreMethod parse_method(const std::string& m) { return parse_score_method(m); }

ExplainRequest explain_request(std::vector<int32_t> tokens, const ExplainArgs& a) {
  if (tokens.empty()) throw InvalidArgument("the prompt has no tokens: nothing to explain");
  // The library's rule, as the CLI and the server check it (explain() itself takes any double).
  check_bound_tol(a.bound_tol);
  check_extended_head(a.extended_head);
  ExplainRequest req;
  req.tokens = std::move(tokens);
  req.position = a.position;
  req.target = a.target;
  req.foil = a.foil;
  req.target_tokens = a.target_tokens;
  req.foil_tokens = a.foil_tokens;
  req.options.include_final_bias = a.include_final_bias;
  req.options.compat_notebook = a.compat_notebook;
  req.options.baselines = a.baselines;
  req.options.query_top_n = a.query_top_n;
  req.options.set_size = a.set_size;
  req.options.lens_top_k = a.lens_top_k;
  req.options.method = a.method;
  req.options.bound_tol = a.bound_tol;
  req.options.projection_cache = a.projection_cache;
  req.options.projection_sketch = a.projection_sketch;
  req.options.extended_head = a.extended_head;
  req.options.n_threads = threads_or_default(a.threads);
  req.all_logits = true;  // the Python result exposes every position's logits
  return req;
}

// A token named from Python: None, an id (int) or a text (str).
std::optional<TokenName> token_name(const py::handle& spec, const char* what) {
  if (spec.is_none()) return std::nullopt;
  TokenName n;
  if (py::isinstance<py::bool_>(spec) || py::isinstance<py::float_>(spec)) {
    throw py::type_error(std::string("the ") + what + " is a token id (int) or text (str), not " +
                         py::str(spec.get_type().attr("__name__")).cast<std::string>());
  }
  if (py::isinstance<py::str>(spec)) {  // the command line's rule: "432" is an id
    const auto text = spec.cast<std::string>();
    if (text.empty()) throw InvalidArgument(std::string("the ") + what + " is empty: name a token");
    return TokenName::parse(text);
  } else {
    const auto id = spec.cast<int64_t>();
    if (id < 0 || id > INT32_MAX) {
      throw OutOfRange(std::string(what) + " token id " + std::to_string(id) + " is outside the vocabulary");
    }
    n.id = static_cast<int32_t>(id);
  }
  return n;
}

ReportOptions report_options(int top, int token_k, int view_heads, int view_neurons) {
  ReportOptions ro;
  ro.top = top;
  ro.token_k = token_k;
  ro.view_heads = view_heads;
  ro.view_neurons = view_neurons;
  return ro;
}

namespace {

py::dict token_list(const TokenList& t) {
  py::dict d;
  d["top"] = t.top;
  d["top_values"] = t.top_values;
  d["bottom"] = t.bottom;
  d["bottom_values"] = t.bottom_values;
  return d;
}

py::dict stats_dict(const TargetStats& s) {
  py::dict d;
  d["prob"] = s.prob;
  d["log_prob"] = s.log_prob;
  d["rank"] = s.rank;
  d["rr"] = s.rr;
  d["top1"] = s.top1;
  return d;
}

// The HTML report of reslens::explain_html when this build's library has one. Found by argument-dependent
// lookup at instantiation, so the binding compiles against a report.h with or without it; nullopt when
// the function does not exist (the Python layer then renders its own tables).
template <class M>
std::optional<std::string> html_report(const M& model, const ExplainResult& r, const ReportOptions& ro) {
  if constexpr (requires { explain_html(model, *r.run, std::span<const int32_t>(r.tokens), r.ex, r.eo, ro); }) {
    // With its circuit, as `reslens explain --html` writes it (docs/report.md, "Circuit").
    return explain_html_with_graph(model, *r.run, std::span<const int32_t>(r.tokens), r.ex, r.eo, ro);
  } else {
    return std::nullopt;
  }
}

// A ScoreArray member of the Explanation as a read-only view (None when empty, e.g. no contrast).
py::object score(const Result& r, const ScoreArray& a) {
  if (a.values.empty()) return py::none();
  return score_view(a, r);
}

}  // namespace

void register_explain(py::module_& m) {
  py::class_<ExplainResult, Result> cls(m, "Explanation", R"pbdoc(
Every score of ``reslens explain`` for one position. Arrays are read-only float64 views (zero-copy)
with the shapes of ``include/reslens/explain.h``; use ``reslens.explain`` for the Python wrapper.
)pbdoc");
  cls.def_property_readonly("position", [](const Result& r) { return r->ex.position; })
      .def_property_readonly("target", [](const Result& r) { return r->ex.target; })
      .def_property_readonly("foil", [](const Result& r) { return r->ex.foil; })
      .def_property_readonly("n_positions", [](const Result& r) { return r->ex.n_positions; })
      .def_property_readonly("tokens", [](const Result& r) { return vector_view(r->tokens, r); })
      .def_property_readonly("notes", [](const Result& r) { return r->notes; })
      .def_property_readonly("run", [](const Result& r) { return r->run; }, "The RunResult explain() read.")
      .def_property_readonly("real_logit", [](const Result& r) { return r->ex.real_logit; })
      .def_property_readonly("real_log_prob", [](const Result& r) { return r->ex.real_log_prob; })
      .def_property_readonly("real_prob", [](const Result& r) { return r->ex.real_prob; })
      .def_property_readonly("real_rank", [](const Result& r) { return r->ex.real_rank; })
      .def_property_readonly("frozen_scale", [](const Result& r) { return r->ex.frozen_scale; })
      .def_property_readonly("bs_log_prob_final", [](const Result& r) { return r->ex.bs_log_prob_final; })
      .def_property_readonly("bs_log_prob_embedding", [](const Result& r) { return r->ex.bs_log_prob_embedding; })
      .def_property_readonly("lens",
                             [](const Result& r) {
                               py::list out;
                               for (const LensPoint& p : r->ex.lens) {
                                 out.append(py::make_tuple(p.label, p.rank, p.prob, p.log_prob, p.top_ids, p.top_probs));
                               }
                               return out;
                             },
                             "(label, rank, prob, log_prob, top_ids, top_probs) per residual point (2L + 1).")
      .def_property_readonly("attn_layer", [](const Result& r) { return vector_view(r->ex.attn_layer, r); })
      .def_property_readonly("ffn_layer", [](const Result& r) { return vector_view(r->ex.ffn_layer, r); })
      .def_property_readonly("head", [](const Result& r) { return score(r, r->ex.head); })
      .def_property_readonly("head_position", [](const Result& r) { return score(r, r->ex.head_position); })
      .def_property_readonly("attn_weight", [](const Result& r) { return score(r, r->ex.attn_weight); })
      .def_property_readonly("ffn_neuron", [](const Result& r) { return score(r, r->ex.ffn_neuron); })
      .def_property_readonly("expert", [](const Result& r) { return score(r, r->ex.expert); },
                             "[n_layers, n_experts] expert scores (mixture-of-experts models; empty otherwise).")
      .def_property_readonly("ffn_coef", [](const Result& r) { return score(r, r->ex.ffn_coef); })
      .def_property_readonly("attn_neuron", [](const Result& r) { return score(r, r->ex.attn_neuron); })
      .def_property_readonly("attn_coef", [](const Result& r) { return score(r, r->ex.attn_coef); })
      .def_property_readonly("ffn_value_query_layers",
                             [](const Result& r) {
                               py::dict d;
                               for (const QueryLayers& q : r->ex.ffn_value_query_layers) d[py::str(q.key)] = vector_view(q.slots, r);
                               return d;
                             })
      .def_property_readonly("attn_value_query_key", [](const Result& r) { return r->ex.attn_value_query_layers.key; })
      .def_property_readonly("attn_value_query_layers", [](const Result& r) { return vector_view(r->ex.attn_value_query_layers.slots, r); })
      .def_property_readonly("attn_value_query_avg_layer", [](const Result& r) { return r->ex.attn_value_query_avg_layer; })
      .def_property_readonly("query_ffn_neuron", [](const Result& r) { return score(r, r->ex.query_ffn_neuron); })
      .def_property_readonly("query_only_per_layer", [](const Result& r) { return vector_view(r->ex.query_only_per_layer, r); })
      .def_property_readonly("query_value_per_layer", [](const Result& r) { return vector_view(r->ex.query_value_per_layer, r); })
      .def_property_readonly("baselines",
                             [](const Result& r) {
                               py::dict d;
                               for (const auto& [name, a] : r->ex.baselines) d[py::str(name)] = score_view(a, r);
                               return d;
                             })
      .def_property_readonly("has_contrast", [](const Result& r) { return r->ex.has_contrast; })
      .def_property_readonly("contrast_attn_layer",
                             [](const Result& r) -> py::object {
                               if (!r->ex.has_contrast) return py::none();
                               return vector_view(r->ex.contrast_attn_layer, r);
                             })
      .def_property_readonly("contrast_ffn_layer",
                             [](const Result& r) -> py::object {
                               if (!r->ex.has_contrast) return py::none();
                               return vector_view(r->ex.contrast_ffn_layer, r);
                             })
      .def_property_readonly("contrast_head", [](const Result& r) { return score(r, r->ex.contrast_head); })
      .def_property_readonly("contrast_ffn_neuron", [](const Result& r) { return score(r, r->ex.contrast_ffn_neuron); })
      .def_property_readonly("contrast_expert", [](const Result& r) { return score(r, r->ex.contrast_expert); })
      .def_property_readonly("contrast_attn_neuron", [](const Result& r) { return score(r, r->ex.contrast_attn_neuron); })
      .def_property_readonly("checks", [](const Result& r) { return r->ex.checks; })
      .def_property_readonly("method_counts", [](const Result& r) { return r->ex.method_counts; },
                             "How many scores were certified from bounds ('bounded') or computed over the "
                             "whole vocabulary ('full').")
      .def_property_readonly("options",
                             [](const Result& r) {
                               py::dict d;
                               d["include_final_bias"] = r->eo.include_final_bias;
                               d["compat_notebook"] = r->eo.compat_notebook;
                               d["query_top_n"] = r->eo.query_top_n;
                               d["set_size"] = r->eo.set_size;
                               d["baselines"] = r->eo.baselines;
                               d["lens_top_k"] = r->eo.lens_top_k;
                               d["method"] = to_string(r->eo.method);
                               d["bound_tol"] = r->eo.bound_tol;
                               d["projection_cache"] = r->eo.projection_cache;
                               d["projection_sketch"] = r->eo.projection_sketch;
                               d["extended_head"] = r->eo.extended_head;
                               return d;
                             })
      .def(
          "to_json",
          [](const Result& r, int top, int token_k, int view_heads, int view_neurons) {
            const py::gil_scoped_release release;
            return explain_json(*r->model, *r->run, r->tokens, r->ex, r->eo,
                                report_options(top, token_k, view_heads, view_neurons));
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10,
          "The JSON document of ``reslens explain --json`` (reslens::explain_json).")
      .def(
          "to_text",
          [](const Result& r, int top, int token_k, int view_heads, int view_neurons) {
            const py::gil_scoped_release release;
            return explain_text(*r->model, *r->run, r->tokens, r->ex, r->eo,
                                report_options(top, token_k, view_heads, view_neurons));
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10,
          "The terminal report of ``reslens explain`` (reslens::explain_text).")
      .def(
          "to_html",
          [](const Result& r, int top, int token_k, int view_heads, int view_neurons) -> py::object {
            std::optional<std::string> html;
            {
              const py::gil_scoped_release release;
              html = html_report(*r->model, *r, report_options(top, token_k, view_heads, view_neurons));
            }
            if (!html) return py::none();
            return py::str(*html);
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10,
          "The self-contained HTML report (reslens::explain_html), or None when this build has none.")
      .def(
          "write_arrays",
          [](const Result& r, const std::string& dir) {
            const py::gil_scoped_release release;
            write_explain_arrays(dir, r->ex);
          },
          py::arg("dir"), "Every score array as DIR/<name>.npy (as ``reslens explain --out DIR``).")
      .def(
          "ffn_neuron_view",
          [](const Result& r, int layer, int neuron, int k) {
            const NeuronView v = ffn_neuron_view(*r->model, *r->run, r->ex, r->eo, layer, neuron, k);
            return py::make_tuple(token_list(v.raw), token_list(v.signed_), v.coef);
          },
          py::arg("layer"), py::arg("neuron"), py::arg("k") = 10,
          "(raw, signed, coef): the vocabulary projections of fc2_k and of its subvalue at P.")
      .def(
          "attn_neuron_view",
          [](const Result& r, int layer, int head, int dim, int pos, int k) {
            const NeuronView v = attn_neuron_view(*r->model, *r->run, r->ex, r->eo, layer, head, dim, pos, k);
            return py::make_tuple(token_list(v.raw), token_list(v.signed_), v.coef);
          },
          py::arg("layer"), py::arg("head"), py::arg("dim"), py::arg("pos"), py::arg("k") = 10)
      .def(
          "head_position_views",
          [](const Result& r, int layer, int head, int k) {
            py::list out;
            for (const PositionView& v : head_position_views(*r->model, *r->run, r->ex, r->eo, layer, head, k)) {
              py::dict d;
              d["pos"] = v.position;
              d["score"] = v.imp;
              d["attn"] = v.attn;
              d["layer_input"] = v.layer_input_top;
              d["key"] = v.key_top;
              d["value"] = v.value_top;
              out.append(d);
            }
            return out;
          },
          py::arg("layer"), py::arg("head"), py::arg("k") = 10)
      .def(
          "project_tokens",
          [](const Result& r, const std::vector<float>& v, int k) {
            if (static_cast<int64_t>(v.size()) != r->model->config().d_model) {
              throw InvalidArgument("project_tokens: the vector has " + std::to_string(v.size()) +
                                    " values, d_model is " + std::to_string(r->model->config().d_model));
            }
            return token_list(project_tokens(*r->model, *r->run, r->eo, v, k));
          },
          py::arg("vector"), py::arg("k") = 10, "Top/bottom tokens of bs(v) with this explanation's frozen norm.");

  m.def(
      "explain",
      [](const ModelHandle& model, const py::handle& tokens, const py::handle& target, const py::handle& foil,
         int position, bool include_final_bias, bool compat_notebook, bool baselines, int query_top_n, int set_size,
         int lens_top_k, int threads, const std::string& method, double bound_tol, bool projection_cache,
         bool projection_sketch) {
        ExplainArgs a;
        a.target = token_name(target, "target");
        a.foil = token_name(foil, "foil");
        a.position = position;
        a.include_final_bias = include_final_bias;
        a.compat_notebook = compat_notebook;
        a.baselines = baselines;
        a.query_top_n = query_top_n;
        a.set_size = set_size;
        a.lens_top_k = lens_top_k;
        a.threads = threads;
        a.method = parse_method(method);
        a.bound_tol = bound_tol;
        a.projection_cache = projection_cache;
        a.projection_sketch = projection_sketch;
        std::vector<int32_t> ids = to_ids(tokens);
        const py::gil_scoped_release release;
        const auto t0 = std::chrono::steady_clock::now();
        Result r = explain_tokens(model.ptr, std::move(ids), a);
        last_call_seconds() = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return r;
      },
      py::arg("model"), py::arg("tokens"), py::arg("target") = py::none(),
      py::arg("foil") = py::none(), py::arg("position") = -1, py::arg("include_final_bias") = false,
      py::arg("compat_notebook") = false, py::arg("baselines") = false, py::arg("query_top_n") = 30,
      py::arg("set_size") = 300, py::arg("lens_top_k") = 10, py::arg("threads") = 0, py::arg("method") = "auto",
      py::arg("bound_tol") = ExplainOptions{}.bound_tol, py::arg("projection_cache") = true,
      py::arg("projection_sketch") = true,
      R"pbdoc(
Runs ``tokens`` with explain()'s hooks and attributes the prediction at ``position`` (GIL released).
``target``/``foil``: a token id, a text (resolved as ``reslens explain --target`` does: the spelling
the model finds likelier at the position), or None (the top prediction / no contrast); the result's
``notes`` say how a text was resolved. ``method``:
"auto" (the library's choice, as the CLI), "full" or "bounded" (ExplainOptions::method).
``bound_tol``, ``projection_cache``, ``projection_sketch``: the bounded method's knobs
(ExplainOptions; no effect with "full"); ``bound_tol`` must be a positive finite number.
)pbdoc");

  m.def(
      "_time_explain",
      [](const ModelHandle& model, const py::handle& tokens, int threads, int repeats) {
        const std::vector<int32_t> ids = to_ids(tokens);
        ExplainArgs a;
        a.threads = threads;
        std::vector<double> seconds;
        const py::gil_scoped_release release;
        for (int i = 0; i < repeats; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          const Result r = explain_tokens(model.ptr, ids, a);
          seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return seconds;
      },
      py::arg("model"), py::arg("tokens"), py::arg("threads") = 0, py::arg("repeats") = 1,
      "Benchmark helper: seconds of each run + explain, timed entirely in C++.");

  m.def(
      "ablate_request",
      [](const ModelHandle& model, const py::handle& tokens, const py::handle& target, const Intervention& iv,
         int position, bool activation, std::optional<uint64_t> seed, int threads) {
        AblationRequest req;
        req.tokens = to_ids(tokens);
        if (req.tokens.empty()) throw InvalidArgument("the prompt has no tokens: nothing to ablate");
        req.target = token_name(target, "target");
        req.zeroed = iv;
        req.position = position;
        req.activation = activation;
        req.random_seed = seed;
        req.n_threads = threads_or_default(threads);
        AblationReport r;
        {
          const py::gil_scoped_release release;
          r = reslens::ablate(*model, req);
        }
        py::dict d;
        d["target"] = r.target;
        d["position"] = r.position;
        d["before"] = stats_dict(r.result.before);
        d["after"] = stats_dict(r.result.after);
        d["notes"] = r.notes;
        if (r.random) {
          py::list ffn, heads, attn;
          for (const auto& f : r.random->zeroed.ffn_neurons) ffn.append(py::make_tuple(f.layer, f.neuron));
          for (const auto& h : r.random->zeroed.heads) heads.append(py::make_tuple(h.layer, h.head));
          for (const auto& a : r.random->zeroed.attn_neurons) attn.append(py::make_tuple(a.layer, a.head, a.dim));
          d["random"] = py::dict(py::arg("seed") = r.random->seed, py::arg("after") = stats_dict(r.random->result.after),
                                 py::arg("ffn") = ffn, py::arg("heads") = heads, py::arg("attn") = attn);
        } else {
          d["random"] = py::none();
        }
        return d;
      },
      py::arg("model"), py::arg("tokens"), py::arg("target"), py::arg("intervention"), py::arg("position") = -1,
      py::arg("activation") = false, py::arg("seed") = py::none(), py::arg("threads") = 0,
      "The library's ablation request (reslens ablate): {target, position, before, after, notes, random}.");

  m.def(
      "ablate",
      [](const ModelHandle& model, const py::handle& tokens, int32_t target, const Intervention& iv, int position,
         int threads) {
        const std::vector<int32_t> ids = to_ids(tokens);
        AblationResult r;
        {
          const py::gil_scoped_release release;
          r = reslens::ablate(*model, ids, target, iv, position, threads_or_default(threads));
        }
        return py::make_tuple(stats_dict(r.before), stats_dict(r.after));
      },
      py::arg("model"), py::arg("tokens"), py::arg("target"), py::arg("intervention"), py::arg("position") = -1,
      py::arg("threads") = 0,
      "(before, after): the target's prob, log_prob, rank, rr and top1 with and without the components.");

  m.def(
      "target_stats",
      [](const std::vector<float>& logits, int32_t target) { return stats_dict(target_stats(logits, target)); },
      py::arg("logits"), py::arg("target"), "prob, log_prob, rank, rr and top1 of a token in a row of logits.");

  m.def(
      "top_indices",
      [](const std::vector<double>& values, int64_t n) { return analysis::top_indices(values, n); },
      py::arg("values"), py::arg("n"),
      "Indices of the n largest values, largest first, ties later index first (the reports' order).");

  auto cache_info = [](const ProjectionCacheInfo& i) {
    py::dict d;
    d["path"] = i.path.string();
    d["present"] = i.present;
    d["bytes"] = i.bytes;
    return d;
  };
  m.def(
      "projection_cache_info", [cache_info](const ModelHandle& model) { return cache_info(projection_cache_info(*model)); },
      py::arg("model"), "Where the model's projection cache is (or would be), whether it exists, and its size.");
  m.def(
      "precompute_projections",
      [cache_info](const ModelHandle& model, int threads, py::object progress) {
        // Progress arrives from the building thread, one call at a time; each takes the GIL just for
        // the callback, which may raise (and Ctrl-C is checked) to stop the build.
        const std::function<void(int64_t, int64_t)> on_progress = [&progress](int64_t done, int64_t total) {
          py::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (!progress.is_none()) progress(done, total);
        };
        ProjectionCacheInfo info;
        {
          py::gil_scoped_release release;
          info = precompute_projections(*model, threads_or_default(threads), on_progress);
        }
        return cache_info(info);
      },
      py::arg("model"), py::arg("threads") = 0, py::arg("progress") = py::none(),
      "Builds the model's projection cache (reslens precompute); returns projection_cache_info.");

  m.def(
      "check_score_knobs",
      [](const std::string& method, double bound_tol) {
        parse_score_method(method);
        check_bound_tol(bound_tol);
      },
      py::arg("method"), py::arg("bound_tol"),
      "ValueError unless `method` and `bound_tol` pass the library's rule (parse_score_method, check_bound_tol), "
      "the one the CLI and the server check them by.");

  m.def("label_head", &label_head);
  m.def("label_ffn_neuron", &label_ffn_neuron);
  m.def("label_attn_neuron", &label_attn_neuron);
  m.def("label_layer", &label_layer);
}

}  // namespace reslens::python
