// reslens._core.run and RunResult: one forward pass, the recorded hooks as zero-copy numpy views.
#include <chrono>

#include "bindings.h"

namespace reslens::python {

namespace {

HookFilter make_filter(const std::optional<std::vector<std::string>>& patterns) {
  if (!patterns) return HookFilter::all();
  if (patterns->empty()) return HookFilter::none();
  return HookFilter::from_patterns(*patterns);
}

Intervention make_intervention(const std::vector<std::pair<int, int>>& ffn, const std::vector<std::pair<int, int>>& heads,
                               const std::vector<std::tuple<int, int, int, int>>& attn, int position) {
  Intervention iv;
  for (const auto& [l, n] : ffn) iv.ffn_neurons.push_back({l, n});
  for (const auto& [l, h] : heads) iv.heads.push_back({l, h});
  for (const auto& [l, h, d, p] : attn) iv.attn_neurons.push_back({l, h, d, p});
  iv.position = position;
  return iv;
}

py::array tensor_view(const Tensor& t, const std::shared_ptr<RunResult>& owner) {
  return readonly_view(t.data(), t.shape(), owner);
}

}  // namespace

void register_trace(py::module_& m) {
  py::class_<Intervention>(m, "Intervention", R"pbdoc(
Components to zero during a run (the paper's interventions, spec A7): FFN neurons (layer, neuron),
heads (layer, head), attention neurons (layer, head, dim, source_pos or -1). ``position`` -1 zeroes
them at every position (parameter level), p >= 0 only at query position p (activation level).
)pbdoc")
      .def(py::init(&make_intervention), py::arg("ffn") = std::vector<std::pair<int, int>>{},
           py::arg("heads") = std::vector<std::pair<int, int>>{},
           py::arg("attn") = std::vector<std::tuple<int, int, int, int>>{}, py::arg("position") = -1)
      .def_property_readonly("empty", &Intervention::empty);

  py::class_<RunResult, std::shared_ptr<RunResult>>(m, "RunResult", R"pbdoc(
The result of one forward pass: logits and the recorded activations. Every array is a read-only
numpy view over the run's own memory and keeps it alive after this object is gone.
)pbdoc")
      .def_property_readonly(
          "logits", [](const std::shared_ptr<RunResult>& r) { return tensor_view(r->logits, r); },
          "[pos, d_vocab] (or [1, d_vocab] when only the last position was asked for).")
      .def(
          "get",
          [](const std::shared_ptr<RunResult>& r, const std::string& name) {
            return tensor_view(r->cache.at(name), r);
          },
          py::arg("name"), "The recorded tensor of a hook (ValueError when it was not recorded).")
      .def("contains", [](const RunResult& r, const std::string& name) { return r.cache.contains(name); },
           py::arg("name"))
      .def(
          "names",
          [](const RunResult& r) {
            std::vector<std::string> out;
            for (const HookName& n : r.cache.names()) out.push_back(n.to_string());
            return out;
          },
          "Recorded hook names in forward order.")
      .def_property_readonly("nbytes", [](const RunResult& r) { return r.cache.bytes(); })
      .def_property_readonly(
          "pattern_rows", [](const RunResult& r) { return r.pattern_rows; },
          "Query positions hook_pattern / hook_attn_scores hold, in order ([] = every position; an "
          "explanation's run keeps the explained positions' rows only: [n_heads, len(rows), key_pos]).");

  m.def(
      "run",
      [](const ModelHandle& model, const py::handle& tokens, const std::optional<std::vector<std::string>>& patterns,
         bool all_logits, int threads, const Intervention* intervention, bool ggml_gelu,
         const std::vector<int64_t>& pattern_rows) {
        const std::vector<int32_t> ids = to_ids(tokens);
        RunOptions o;
        o.pattern_rows = pattern_rows;
        o.capture = make_filter(patterns);
        o.all_logits = all_logits;
        o.n_threads = threads_or_default(threads);
        o.intervention = intervention;
        o.ggml_gelu = ggml_gelu;
        auto result = std::make_shared<RunResult>();
        {
          const py::gil_scoped_release release;
          const auto t0 = std::chrono::steady_clock::now();
          *result = reslens::run(*model, ids, o);
          last_call_seconds() = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        return result;
      },
      py::arg("model"), py::arg("tokens"), py::arg("patterns") = std::vector<std::string>{},
      py::arg("all_logits") = true, py::arg("threads") = 0, py::arg("intervention") = nullptr,
      py::arg("ggml_gelu") = false, py::arg("pattern_rows") = std::vector<int64_t>{}, R"pbdoc(
Runs ``tokens`` through the model (the GIL is released) and records the hooks ``patterns`` name
(TransformerLens names with ``*`` globs; None records every hook, [] none). ``pattern_rows``
(ascending query positions) keeps only those rows of hook_pattern / hook_attn_scores.

>>> r = reslens._core.run(core, [1, 403, 407], ["blocks.*.hook_resid_post"])
>>> r.get("blocks.0.hook_resid_post").shape
(3, 64)
)pbdoc");

  m.def("explain_capture", [] { return explain_capture().patterns(); },
        "The hook patterns an explanation's run records (explain_capture()).");

  m.def("validate_patterns", [](const std::vector<std::string>& p) { (void)HookFilter::from_patterns(p); },
        py::arg("patterns"), "Raises ValueError (suggesting the nearest name) when a pattern can match no hook.");

  m.def(
      "_time_run",
      [](const ModelHandle& model, const py::handle& tokens, const std::optional<std::vector<std::string>>& patterns,
         bool all_logits, int threads, int repeats) {
        const std::vector<int32_t> ids = to_ids(tokens);
        RunOptions o;
        o.capture = make_filter(patterns);
        o.all_logits = all_logits;
        o.n_threads = threads_or_default(threads);
        std::vector<double> seconds;
        const py::gil_scoped_release release;
        for (int i = 0; i < repeats; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          const RunResult r = reslens::run(*model, ids, o);
          seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        return seconds;
      },
      py::arg("model"), py::arg("tokens"), py::arg("patterns"), py::arg("all_logits") = true,
      py::arg("threads") = 0, py::arg("repeats") = 1,
      "Benchmark helper: seconds of each of `repeats` reslens::run calls, timed entirely in C++.");
}

}  // namespace reslens::python
