// reslens._core.experiment: the paper's dataset evaluation (reslens::experiment, the library call
// behind `reslens experiment`). The binding passes results on as the library's own JSON, CSV and
// Markdown (the documents the CLI writes, byte for byte), so the Python layer parses one format and
// every number has a single definition.
#include <optional>

#include "bindings.h"

namespace reslens::python {

namespace {

struct ExperimentArgs {
  int filter_top_k = 10, ffn_top = 10, attn_top = 200, attn_ffn_top = 100, query_top = 1000, shared_set = 300;
  double max_fraction = 0.05;
  int query_value_neurons = 30;
  bool baselines = true, random = true, strict = false;
  uint64_t seed = 0;
  std::optional<bool> add_bos;
  int threads = 0;
  std::string shard = "1/1";
};

ExperimentOptions to_options(const ExperimentArgs& a) {
  ExperimentOptions o;
  o.filter_top_k = a.filter_top_k;
  o.ffn_top = a.ffn_top;
  o.attn_top = a.attn_top;
  o.attn_ffn_top = a.attn_ffn_top;
  o.query_top = a.query_top;
  o.shared_set = a.shared_set;
  o.max_fraction = a.max_fraction;
  o.query_value_neurons = a.query_value_neurons;
  o.baselines = a.baselines;
  o.random = a.random;
  o.strict = a.strict;
  o.seed = a.seed;
  o.add_bos = a.add_bos;
  o.n_threads = threads_or_default(a.threads);
  o.shard = parse_shard(a.shard);
  return o;
}

}  // namespace

void register_experiment(py::module_& m) {
  m.attr("HAS_EXPERIMENT") = true;

  py::class_<ExperimentArgs>(m, "ExperimentArgs", "Options of reslens::experiment (reslens.experiment's keywords).")
      .def(py::init<>())
      .def_readwrite("filter_top_k", &ExperimentArgs::filter_top_k)
      .def_readwrite("ffn_top", &ExperimentArgs::ffn_top)
      .def_readwrite("attn_top", &ExperimentArgs::attn_top)
      .def_readwrite("attn_ffn_top", &ExperimentArgs::attn_ffn_top)
      .def_readwrite("query_top", &ExperimentArgs::query_top)
      .def_readwrite("shared_set", &ExperimentArgs::shared_set)
      .def_readwrite("max_fraction", &ExperimentArgs::max_fraction)
      .def_readwrite("query_value_neurons", &ExperimentArgs::query_value_neurons)
      .def_readwrite("baselines", &ExperimentArgs::baselines)
      .def_readwrite("random", &ExperimentArgs::random)
      .def_readwrite("strict", &ExperimentArgs::strict)
      .def_readwrite("seed", &ExperimentArgs::seed)
      .def_readwrite("add_bos", &ExperimentArgs::add_bos)
      .def_readwrite("threads", &ExperimentArgs::threads)
      .def_readwrite("shard", &ExperimentArgs::shard);

  // Returns (summary JSON, [sentence JSON lines in index order], [(line, problem)], CSV, Markdown).
  m.def(
      "experiment",
      [](const ModelHandle& model, const std::optional<std::string>& path, const std::optional<std::string>& text,
         const std::string& name, const ExperimentArgs& args, py::object progress) {
        if (path.has_value() == text.has_value()) throw InvalidArgument("give a dataset path or JSONL text, not both");
        const ExperimentOptions options = to_options(args);
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
      py::arg("model"), py::arg("path"), py::arg("text"), py::arg("name"), py::arg("args"), py::arg("progress"),
      "reslens::experiment over a JSONL file (path) or JSONL text; see reslens.experiment.");
}

}  // namespace reslens::python
