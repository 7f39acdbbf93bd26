// reslens._core.experiment: the paper's dataset evaluation (reslens::experiment, the library call
// behind `reslens experiment`). The binding passes results on as the library's own JSON, CSV and
// Markdown (the documents the CLI writes, byte for byte), so the Python layer parses one format and
// every number has a single definition.
#include <optional>

#include "bindings.h"

namespace reslens::python {

void register_experiment(py::module_& m) {
  m.attr("HAS_EXPERIMENT") = true;

  // reslens::ExperimentOptions itself, so the Python keywords and the library share one definition.
  py::class_<ExperimentOptions>(m, "ExperimentArgs", "Options of reslens::experiment (reslens.experiment's keywords).")
      .def(py::init<>())
      .def_readwrite("filter_top_k", &ExperimentOptions::filter_top_k)
      .def_readwrite("ffn_top", &ExperimentOptions::ffn_top)
      .def_readwrite("attn_top", &ExperimentOptions::attn_top)
      .def_readwrite("attn_ffn_top", &ExperimentOptions::attn_ffn_top)
      .def_readwrite("query_top", &ExperimentOptions::query_top)
      .def_readwrite("shared_set", &ExperimentOptions::shared_set)
      .def_readwrite("max_fraction", &ExperimentOptions::max_fraction)
      .def_readwrite("query_value_neurons", &ExperimentOptions::query_value_neurons)
      .def_readwrite("baselines", &ExperimentOptions::baselines)
      .def_readwrite("random", &ExperimentOptions::random)
      .def_readwrite("strict", &ExperimentOptions::strict)
      .def_readwrite("seed", &ExperimentOptions::seed)
      .def_readwrite("add_bos", &ExperimentOptions::add_bos)
      .def_readwrite("parse_special", &ExperimentOptions::parse_special)
      .def_property(
          "threads", [](const ExperimentOptions& o) { return o.n_threads; },
          [](ExperimentOptions& o, int t) { o.n_threads = threads_or_default(t); })
      .def_property(
          "shard", [](const ExperimentOptions& o) { return o.shard.str(); },
          [](ExperimentOptions& o, const std::string& spec) { o.shard = parse_shard(spec); });

  // Returns (summary JSON, [sentence JSON lines in index order], [(line, problem)], CSV, Markdown).
  m.def(
      "experiment",
      [](const ModelHandle& model, const std::optional<std::string>& path, const std::optional<std::string>& text,
         const std::string& name, const ExperimentOptions& options, py::object progress) {
        if (path.has_value() == text.has_value()) throw InvalidArgument("give a dataset path or JSONL text, not both");
        // run_experiment calls progress one call at a time from its worker threads; each call takes
        // the GIL for just the Python callback. A Python exception stops the run and is rethrown.
        // Ctrl-C is checked there too, so a long run can be interrupted from a notebook.
        const ExperimentProgressFn on_progress = [&progress](const ExperimentProgress& p) {
          py::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (!progress.is_none()) progress(p.done, p.total, p.kept, p.elapsed_s);
        };
        ExperimentResult r;
        {
          py::gil_scoped_release release;
          const Dataset dataset = path ? read_dataset(*path, options.strict) : parse_dataset(*text, name, options.strict);
          r = experiment(*model, dataset, options, on_progress);
        }
        py::list sentences;
        for (const SentenceResult& s : r.sentences) sentences.append(sentence_result_json(s));
        py::list skipped;
        for (const DatasetProblem& p : r.skipped) skipped.append(py::make_tuple(p.line, p.message));
        return py::make_tuple(summary_json(r.summary), sentences, skipped, summary_csv(r.summary),
                              summary_markdown(r.summary));
      },
      py::arg("model"), py::arg("path"), py::arg("text"), py::arg("name"), py::arg("options"), py::arg("progress"),
      "reslens::experiment over a JSONL file (path) or JSONL text; see reslens.experiment.");
}

}  // namespace reslens::python
