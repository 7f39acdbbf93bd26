// reslens._core.run_with_hooks and generate: a forward pass with Python forward hooks
// (reslens/forward_hooks.h), and the library's generate() (reslens/generate.h, as `reslens generate`).
// The hook machinery users see (HookPoint, add_hook, the context manager) is python/reslens/hooks.py.
#include <chrono>
#include <cstring>

#include "bindings.h"
#include "reslens/generate.h"

namespace reslens::python {

namespace {

// A Python callable `fn(act, name) -> array | None` as a library hook. `act` is a fresh writable
// float32 copy of the activation; what fn returns (same shape; cast to float32), or `act` itself when
// it returns None (changed in place or not), is written back for the rest of the pass. The hook runs
// on the thread that called run_with_hooks, which released the GIL, so it takes the GIL back.
ForwardHook python_hook(std::string pattern, py::function fn) {
  return {std::move(pattern), [fn = std::move(fn)](HookActivation& a) {
            const py::gil_scoped_acquire gil;
            const std::vector<py::ssize_t> shape(a.shape.begin(), a.shape.end());
            using Array = py::array_t<float, py::array::c_style | py::array::forcecast>;
            Array act(shape);
            std::memcpy(act.mutable_data(), a.values.data(), a.values.size() * sizeof(float));
            const std::string name = a.name.to_string();
            const py::object out = fn(act, name);
            const Array result = out.is_none() ? act : Array::ensure(out);
            if (!result) {
              throw py::type_error("forward hook on '" + name + "' returned a " +
                                   std::string(py::str(py::type::of(out).attr("__name__"))) +
                                   ", not an array or None");
            }
            const std::vector<py::ssize_t> got(result.shape(), result.shape() + result.ndim());
            if (got != shape) {
              std::string g, w;
              for (const auto e : got) g += (g.empty() ? "" : ", ") + std::to_string(e);
              for (const auto e : shape) w += (w.empty() ? "" : ", ") + std::to_string(e);
              throw py::value_error("forward hook on '" + name + "' returned shape [" + g + "], the activation is [" +
                                    w + "]");
            }
            std::memcpy(a.values.data(), result.data(), a.values.size() * sizeof(float));
          }};
}

HookFilter capture_filter(const std::optional<std::vector<std::string>>& patterns) {
  if (!patterns) return HookFilter::all();
  if (patterns->empty()) return HookFilter::none();
  return HookFilter::from_patterns(*patterns);
}

}  // namespace

void register_hooks(py::module_& m) {
  m.def(
      "run_with_hooks",
      [](const ModelHandle& model, const py::handle& tokens, const std::optional<std::vector<std::string>>& patterns,
         const std::vector<std::pair<std::string, py::function>>& hooks, bool all_logits, int threads,
         const Intervention* intervention) {
        const std::vector<int32_t> ids = to_ids(tokens);
        RunOptions o;
        o.capture = capture_filter(patterns);
        o.all_logits = all_logits;
        o.n_threads = threads_or_default(threads);
        o.intervention = intervention;
        for (const auto& [pattern, fn] : hooks) o.hooks.push_back(python_hook(pattern, fn));
        auto result = std::make_shared<RunResult>();
        {
          const py::gil_scoped_release release;
          const auto t0 = std::chrono::steady_clock::now();
          *result = reslens::run(*model, ids, o);
          last_call_seconds() = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        return result;  // o, whose callbacks hold Python objects, is dropped with the GIL held
      },
      py::arg("model"), py::arg("tokens"), py::arg("patterns") = std::vector<std::string>{},
      py::arg("hooks") = std::vector<std::pair<std::string, py::function>>{}, py::arg("all_logits") = true,
      py::arg("threads") = 0, py::arg("intervention") = nullptr, R"pbdoc(
``run`` with forward hooks: ``hooks`` is a list of ``(pattern, fn)``, ``pattern`` a hook name or a
``*`` pattern, ``fn(act, name) -> array | None`` called at each hook point it names, in order, with a
writable float32 copy of the activation; what it returns (same shape), or ``act`` when it returns
None, is what the rest of the pass reads and what the run records. ``patterns`` names what to
record (None: every hook). Use ``model.run_with_hooks`` / ``model.hooks`` (reslens/hooks.py).
)pbdoc");

  m.def(
      "generate",
      [](const ModelHandle& model, const py::handle& tokens, int64_t max_tokens, double temperature, uint64_t seed,
         int threads) {
        const std::vector<int32_t> ids = to_ids(tokens);
        GenerateOptions go;
        go.max_tokens = max_tokens;
        go.temperature = temperature;
        go.seed = seed;
        go.n_threads = threads_or_default(threads);
        Generation done;
        std::string text;  // each token's bytes, as `reslens generate` prints them
        {
          const py::gil_scoped_release release;
          const Tokenizer& tok = model->tokenizer();
          done = reslens::generate(*model, ids, go, [&](int32_t next) { text += tok.token_bytes(next); });
        }
        py::dict d;
        d["tokens"] = done.tokens;
        d["bytes"] = py::bytes(text);
        d["stop"] = to_string(done.stop);
        d["stop_token"] = done.stop_token;
        return d;
      },
      py::arg("model"), py::arg("tokens"), py::arg("max_tokens") = 32, py::arg("temperature") = 0.0,
      py::arg("seed") = 0, py::arg("threads") = 0, R"pbdoc(
reslens::generate (the loop of ``reslens generate``): up to ``max_tokens`` tokens after ``tokens``,
greedy (``temperature`` 0) or sampled with ``seed``, stopping at the end of the model's turn. Returns
``{"tokens": [...], "bytes": the continuation as the command prints it, "stop": "end_of_turn" |
"max_tokens" | "context", "stop_token": id or -1}``.
)pbdoc");
}

}  // namespace reslens::python
