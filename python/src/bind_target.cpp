// reslens._core.explain_target and ExplainedTarget: a target (and foil) of several tokens by teacher
// forcing (reslens/explain_target.h). Each step is a _core.Explanation over its pass's run; the
// summed scores are zero-copy float64 views; the reports are the CLI's (target_json, target_text,
// target_html, write_target_arrays).
#include <chrono>
#include <functional>
#include <memory>

#include "bindings.h"
#include "reslens/explain_target.h"

namespace reslens::python {

namespace {

/// An explained target with the model its reports need.
struct TargetResult {
  std::shared_ptr<const Model> model;
  ExplainedTarget done;
};
using Target = std::shared_ptr<TargetResult>;

// A target or foil from Python: None, an id, a text, or a sequence of ids (a list, tuple or array).
void set_sequence(const py::handle& spec, const char* what, std::optional<TokenName>& name, std::vector<int32_t>& ids) {
  if (!spec.is_none() && !py::isinstance<py::str>(spec) && py::isinstance<py::sequence>(spec)) {
    ids = to_ids(spec);
    if (ids.empty()) throw InvalidArgument(std::string("the ") + what + " is empty: name a token");
    return;
  }
  if (!spec.is_none() && !py::isinstance<py::str>(spec) && py::hasattr(spec, "__len__") && py::hasattr(spec, "tolist")) {
    set_sequence(spec.attr("tolist")(), what, name, ids);  // a numpy array of ids
    return;
  }
  name = token_name(spec, what);
}

// Step i of a pass as a _core.Explanation (its run shared, its explanation copied).
std::shared_ptr<ExplainResult> step_result(const Target& t, const TeacherForcedPass& pass, size_t i,
                                           std::vector<std::string> notes) {
  auto r = std::make_shared<ExplainResult>();
  r->model = t->model;
  r->run = std::const_pointer_cast<RunResult>(pass.run);
  r->tokens = pass.tokens;
  r->ex = pass.steps[i].explanation;
  r->eo = pass.steps[i].options;
  r->notes = std::move(notes);
  return r;
}

// ExplainRequest::should_stop for a call from Python, asked between steps (after each generated
// token and each explained step) on the thread that made the call, which holds the GIL only for
// this: a pending Ctrl-C runs Python's SIGINT handler (PyErr_CheckSignals), whose KeyboardInterrupt
// leaves the library as error_already_set and reaches the caller as itself, not as Cancelled; then
// `callable` (None: none) is asked, and a truthy answer stops the request with Cancelled
// (reslens.Cancelled); an exception it raises ends the call with that exception. The library copies
// the request, so the callable is held by a shared_ptr whose copies need no GIL and whose last
// owner takes the GIL to let it go.
std::function<bool()> python_should_stop(const py::object& callable) {
  std::shared_ptr<py::object> held(new py::object(callable), [](py::object* o) {
    const py::gil_scoped_acquire gil;
    delete o;
  });
  return [held] {
    const py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (held->is_none()) return false;
    return py::bool_((*held)()).cast<bool>();
  };
}

// ExplainRequest::on_progress for a call from Python: `callable(phase, done, total)` on the thread
// that made the call, holding the GIL only for it (an exception it raises ends the call with that
// exception); none for None. Held as python_should_stop holds its callable.
ExplainProgressFn python_progress(const py::object& callable) {
  if (callable.is_none()) return {};
  std::shared_ptr<py::object> held(new py::object(callable), [](py::object* o) {
    const py::gil_scoped_acquire gil;
    delete o;
  });
  return [held](const ExplainProgress& p) {
    const py::gil_scoped_acquire gil;
    (*held)(std::string(p.phase), p.done, p.total);
  };
}

py::object score_or_none(const Target& t, const ScoreArray& a) {
  if (a.values.empty()) return py::none();
  return score_view(a, t);
}

py::dict query_layers(const Target& t) {
  py::dict d;
  for (const QueryLayers& q : t->done.summed.ffn_value_query_layers) d[py::str(q.key)] = vector_view(q.slots, t);
  return d;
}

}  // namespace

void register_target(py::module_& m) {
  py::class_<TargetResult, Target> cls(m, "ExplainedTarget", R"pbdoc(
A target of several tokens explained by teacher forcing (reslens::explain_target): ``steps`` (one
``Explanation`` per target token), ``foil_steps`` and the summed scores as read-only float64 views.
Use ``reslens.explain`` / ``reslens.explain_target`` for the Python wrapper.
)pbdoc");
  cls.def_property_readonly("single", [](const Target& t) { return t->done.single(); },
                            "True when target and foil are one token each (explain()'s result).")
      .def_property_readonly("position", [](const Target& t) { return t->done.position; })
      .def_property_readonly("prompt", [](const Target& t) { return vector_view(t->done.prompt, t); })
      .def_property_readonly("target_ids", [](const Target& t) { return vector_view(t->done.target, t); })
      .def_property_readonly("foil_ids", [](const Target& t) { return vector_view(t->done.foil, t); })
      .def_property_readonly("contrast_step", [](const Target& t) { return t->done.contrast_step; })
      .def_property_readonly("first_foil_step", [](const Target& t) { return t->done.first_foil_step; })
      .def_property_readonly("notes", [](const Target& t) { return t->done.notes; })
      .def_property_readonly(
          "generated",
          [](const Target& t) -> py::object {
            if (!t->done.generated) return py::none();
            const GeneratedAnswer& g = *t->done.generated;
            py::dict d;
            d["max_tokens"] = g.options.max_tokens;
            d["temperature"] = g.options.temperature;
            d["seed"] = g.options.seed;
            d["stop"] = to_string(g.stop);
            d["stop_token"] = g.stop_token >= 0 ? py::object(py::int_(g.stop_token)) : py::object(py::none());
            return d;
          },
          "None, or how the answer was generated (explain(..., generate=N)): max_tokens, temperature, seed, "
          "stop ('end_of_turn', 'max_tokens', 'context') and stop_token (an id or None)")
      .def(
          "to_jsonl",
          [](const Target& t, int top, int token_k, int view_heads, int view_neurons) {
            const py::gil_scoped_release release;
            return target_jsonl(*t->model, t->done, report_options(top, token_k, view_heads, view_neurons));
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10,
          "The JSON lines of ``reslens explain ... --jsonl`` (reslens::target_jsonl): one line per step, then the summary.")
      .def_property_readonly("steps",
                             [](const Target& t) {
                               py::list out;
                               const TeacherForcedPass& p = t->done.target_pass;
                               // A single step carries the request's notes, as explain() does.
                               for (size_t i = 0; i < p.steps.size(); ++i) {
                                 out.append(step_result(t, p, i, t->done.single() ? t->done.notes : std::vector<std::string>{}));
                               }
                               return out;
                             })
      .def_property_readonly("foil_steps",
                             [](const Target& t) {
                               py::list out;
                               for (size_t i = 0; i < t->done.foil_pass.steps.size(); ++i) {
                                 out.append(step_result(t, t->done.foil_pass, i, {}));
                               }
                               return out;
                             })
      .def_property_readonly("n_positions", [](const Target& t) { return t->done.summed.n_positions; })
      .def_property_readonly("log_prob", [](const Target& t) { return t->done.summed.log_prob; })
      .def_property_readonly("foil_log_prob", [](const Target& t) { return t->done.summed.foil_log_prob; })
      .def_property_readonly("bs_log_prob_final", [](const Target& t) { return t->done.summed.bs_log_prob_final; })
      .def_property_readonly("bs_log_prob_embedding", [](const Target& t) { return t->done.summed.bs_log_prob_embedding; })
      .def_property_readonly("attn_layer", [](const Target& t) { return vector_view(t->done.summed.attn_layer, t); })
      .def_property_readonly("ffn_layer", [](const Target& t) { return vector_view(t->done.summed.ffn_layer, t); })
      .def_property_readonly("head", [](const Target& t) { return score_or_none(t, t->done.summed.head); })
      .def_property_readonly("head_position", [](const Target& t) { return score_or_none(t, t->done.summed.head_position); })
      .def_property_readonly("ffn_neuron", [](const Target& t) { return score_or_none(t, t->done.summed.ffn_neuron); })
      .def_property_readonly("expert", [](const Target& t) { return score_or_none(t, t->done.summed.expert); })
      .def_property_readonly("attn_neuron", [](const Target& t) { return score_or_none(t, t->done.summed.attn_neuron); })
      .def_property_readonly("query_ffn_neuron", [](const Target& t) { return score_or_none(t, t->done.summed.query_ffn_neuron); })
      .def_property_readonly("ffn_value_query_layers", &query_layers)
      .def_property_readonly("attn_value_query_layers",
                             [](const Target& t) { return vector_view(t->done.summed.attn_value_query_layers.slots, t); })
      .def_property_readonly("query_only_per_layer", [](const Target& t) { return vector_view(t->done.summed.query_only_per_layer, t); })
      .def_property_readonly("query_value_per_layer",
                             [](const Target& t) { return vector_view(t->done.summed.query_value_per_layer, t); })
      .def_property_readonly("has_contrast", [](const Target& t) { return t->done.summed.has_contrast; })
      .def_property_readonly("contrast_attn_layer",
                             [](const Target& t) -> py::object {
                               if (!t->done.summed.has_contrast) return py::none();
                               return vector_view(t->done.summed.contrast_attn_layer, t);
                             })
      .def_property_readonly("contrast_ffn_layer",
                             [](const Target& t) -> py::object {
                               if (!t->done.summed.has_contrast) return py::none();
                               return vector_view(t->done.summed.contrast_ffn_layer, t);
                             })
      .def_property_readonly("contrast_head", [](const Target& t) { return score_or_none(t, t->done.summed.contrast_head); })
      .def_property_readonly("contrast_ffn_neuron",
                             [](const Target& t) { return score_or_none(t, t->done.summed.contrast_ffn_neuron); })
      .def_property_readonly("contrast_attn_neuron",
                             [](const Target& t) { return score_or_none(t, t->done.summed.contrast_attn_neuron); })
      .def_property_readonly("contrast_expert", [](const Target& t) { return score_or_none(t, t->done.summed.contrast_expert); })
      .def_property_readonly("checks", [](const Target& t) { return t->done.summed.checks; })
      .def_property_readonly("method_counts", [](const Target& t) { return t->done.summed.method_counts; },
                             "The sums' error budget: step scores recomputed exactly per level (docs/explain.md)")
      .def(
          "to_json",
          [](const Target& t, int top, int token_k, int view_heads, int view_neurons) {
            const py::gil_scoped_release release;
            return target_json(*t->model, t->done, report_options(top, token_k, view_heads, view_neurons));
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10,
          "The JSON document of ``reslens explain --target ... --json`` (reslens::target_json).")
      .def(
          "to_text",
          [](const Target& t, int top, int token_k, int view_heads, int view_neurons) {
            const py::gil_scoped_release release;
            return target_text(*t->model, t->done, report_options(top, token_k, view_heads, view_neurons));
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10)
      .def(
          "to_html",
          [](const Target& t, int top, int token_k, int view_heads, int view_neurons) {
            const py::gil_scoped_release release;
            return target_html(*t->model, t->done, report_options(top, token_k, view_heads, view_neurons));
          },
          py::arg("top") = 20, py::arg("token_k") = 10, py::arg("view_heads") = 3, py::arg("view_neurons") = 10,
          "The HTML page (reslens::target_html); UnsupportedError when this build has no web page.")
      .def(
          "write_arrays",
          [](const Target& t, const std::string& dir) {
            const py::gil_scoped_release release;
            write_target_arrays(dir, t->done);
          },
          py::arg("dir"), "The .npy files of ``reslens explain --target ... --out DIR`` (reslens::write_target_arrays).");

  m.def(
      "continuation_tokens",
      [](const ModelHandle& model, const py::handle& prompt, const py::handle& joint, const std::string& text) {
        return continuation_tokens(*model, to_ids(prompt), to_ids(joint), text);
      },
      py::arg("model"), py::arg("prompt"), py::arg("joint"), py::arg("text"),
      "A given answer's tokens after the prompt (reslens::continuation_tokens): `joint` is the prompt's text and "
      "`text` encoded together; ValueError when the answer does not start at a token boundary or does not "
      "decode back to `text`.");

  m.def(
      "explain_target",
      [](const ModelHandle& model, const py::handle& tokens, const py::handle& target, const py::handle& foil,
         int position, bool include_final_bias, bool compat_notebook, bool baselines, int query_top_n, int set_size,
         int lens_top_k, int threads, const std::string& method, int64_t generate_n, double temperature,
         uint64_t seed, double bound_tol, bool projection_cache, bool projection_sketch, int extended_head,
         const py::object& should_stop, const py::object& progress) {
        if (!should_stop.is_none() && !PyCallable_Check(should_stop.ptr())) {
          throw py::type_error("should_stop is a callable asked between steps (truthy: stop), or None, not " +
                               py::str(should_stop.get_type().attr("__name__")).cast<std::string>());
        }
        if (!progress.is_none() && !PyCallable_Check(progress.ptr())) {
          throw py::type_error("progress is a callable (phase, done, total), or None, not " +
                               py::str(progress.get_type().attr("__name__")).cast<std::string>());
        }
        ExplainArgs a;
        set_sequence(target, "target", a.target, a.target_tokens);
        set_sequence(foil, "foil", a.foil, a.foil_tokens);
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
        a.extended_head = extended_head;
        ExplainRequest req = explain_request(to_ids(tokens), a);
        req.should_stop = python_should_stop(should_stop);  // made while the GIL is held
        req.on_progress = python_progress(progress);
        auto t = std::make_shared<TargetResult>();
        t->model = model.ptr;
        const py::gil_scoped_release release;
        const auto t0 = std::chrono::steady_clock::now();
        if (generate_n != 0) {  // the model's own answer (reslens::explain_generated)
          GenerateOptions go;
          go.max_tokens = generate_n;
          go.temperature = temperature;
          go.seed = seed;
          t->done = explain_generated(*model, req, go);
        } else {
          t->done = explain_target(*model, req);
        }
        last_call_seconds() = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return t;
      },
      py::arg("model"), py::arg("tokens"), py::arg("target") = py::none(), py::arg("foil") = py::none(),
      py::arg("position") = -1, py::arg("include_final_bias") = false, py::arg("compat_notebook") = false,
      py::arg("baselines") = false, py::arg("query_top_n") = 30, py::arg("set_size") = 300, py::arg("lens_top_k") = 10,
      py::arg("threads") = 0, py::arg("method") = "auto", py::arg("generate") = 0, py::arg("temperature") = 0.0,
      py::arg("seed") = 0, py::arg("bound_tol") = ExplainOptions{}.bound_tol, py::arg("projection_cache") = true,
      py::arg("projection_sketch") = true, py::arg("extended_head") = ExplainOptions{}.extended_head,
      py::arg("should_stop") = py::none(), py::arg("progress") = py::none(),
      R"pbdoc(
Runs ``tokens`` and the target by teacher forcing and explains every step (GIL released).
``target``/``foil``: a token id, a text (all its tokens), a sequence of ids, or None (the top
prediction / no contrast). A target and foil of one token each give ``explain``'s result as the
single step (``single``). ``generate`` > 0: no target; the model's own answer of up to that many
tokens (greedy, or sampled at ``temperature`` with ``seed``) is generated and explained
(reslens::explain_generated; ``generated`` then says how it stopped).
``method``, ``bound_tol``, ``projection_cache``, ``projection_sketch``, ``extended_head``: as ``explain``'s.
Between steps (each generated token, each explained step) a pending Ctrl-C stops the call with
``KeyboardInterrupt``, and ``should_stop()`` (a callable, or None) is asked: truthy stops it with
``reslens.Cancelled``. ``progress(phase, done, total)`` (a callable, or None) hears each phase of each
explain as it goes (reslens::ExplainProgress: "forward", "bounds", "attention", "ffn", ...).
)pbdoc");
}

}  // namespace reslens::python
