// Shared pieces of the reslens Python module (reslens._core): the handle types the bindings pass
// around, and read-only numpy views over reslens's own memory. The bindings are thin: they convert
// arguments, release the GIL around library calls and wrap results; ergonomics live in the pure-Python
// package python/reslens/.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "reslens/reslens.h"

namespace reslens::python {

namespace py = pybind11;

/// A loaded model as Python sees it. Weight views and results keep `ptr` alive.
struct ModelHandle {
  std::shared_ptr<const Model> ptr;
  const Model& operator*() const { return *ptr; }
  const Model* operator->() const { return ptr.get(); }
};

/// An explanation with everything its reports need (the model, the run, the tokens, the options).
struct ExplainResult {
  std::shared_ptr<const Model> model;
  std::shared_ptr<RunResult> run;
  std::vector<int32_t> tokens;
  Explanation ex;
  ExplainOptions eo;
  std::vector<std::string> notes;  ///< how a named target or foil was resolved (as the CLI prints)
};

/// The arguments of reslens.explain / explain_target, as the library's request takes them.
struct ExplainArgs {
  std::optional<TokenName> target, foil;        // none: the top prediction / no contrast
  std::vector<int32_t> target_tokens, foil_tokens;  // a sequence given as ids (explain_target)
  int position = -1;
  bool include_final_bias = false, compat_notebook = false, baselines = false;
  int query_top_n = 30, set_size = 300, lens_top_k = 10, threads = 0;
  ScoreMethod method = ScoreMethod::kAuto;
  // The bounded method's knobs (ExplainOptions; explain_request() refuses a bound_tol that is not
  // a positive finite number).
  double bound_tol = ExplainOptions{}.bound_tol;
  bool projection_cache = true, projection_sketch = true;
  int extended_head = ExplainOptions{}.extended_head;  // -1: auto (check_extended_head refuses others)
};

/// The library's one request (reslens/explain_request.h) for `tokens` and `a`, every position's
/// logits kept (the Python results expose them). InvalidArgument for no tokens or a bound_tol that is
/// not a positive finite number.
ExplainRequest explain_request(std::vector<int32_t> tokens, const ExplainArgs& a);

/// "auto", "full" or "bounded" as ExplainOptions::method (InvalidArgument otherwise).
ScoreMethod parse_method(const std::string& m);

/// A token named from Python: None, an id (int) or a text (str, the command line's rule: "432" is an id).
std::optional<TokenName> token_name(const py::handle& spec, const char* what);

ReportOptions report_options(int top, int token_k, int view_heads, int view_neurons);

/// A read-only numpy array over `data` that keeps `owner` alive (zero-copy). `strides` are in
/// elements, numpy order (outermost first); empty means row-major contiguous.
template <class T>
py::array readonly_view(const T* data, const std::vector<int64_t>& shape, std::shared_ptr<const void> owner,
                        std::vector<int64_t> strides = {}) {
  if (strides.empty()) {
    strides.assign(shape.size(), 1);
    for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  }
  std::vector<py::ssize_t> shape_b(shape.begin(), shape.end()), strides_b;
  for (const int64_t s : strides) strides_b.push_back(static_cast<py::ssize_t>(s * static_cast<int64_t>(sizeof(T))));
  auto* keep = new std::shared_ptr<const void>(std::move(owner));
  py::capsule base(keep, [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
  py::array a(py::dtype::of<T>(), std::move(shape_b), std::move(strides_b), data, base);
  py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return a;
}

/// The same for a ScoreArray (float64) or a std::vector<double>/<int64_t> owned by `owner`.
inline py::array score_view(const ScoreArray& a, std::shared_ptr<const void> owner) {
  return readonly_view(a.values.data(), a.shape, std::move(owner));
}
template <class T>
py::array vector_view(const std::vector<T>& v, std::shared_ptr<const void> owner) {
  return readonly_view(v.data(), {static_cast<int64_t>(v.size())}, std::move(owner));
}

/// Token ids from any Python sequence of ints (list, tuple, 1-D numpy array).
std::vector<int32_t> to_ids(const py::handle& obj);

/// Seconds the last run()/explain() binding call on this thread spent in the library (std::chrono
/// around the C++ work only), for measuring the Python layer's overhead (bench/bench_python.py).
double& last_call_seconds();

/// Threads for a call: `threads` if positive, else every hardware thread (0 means that to the library).
inline int threads_or_default(int threads) { return threads > 0 ? threads : 0; }

void register_errors(py::module_& m);
void register_model(py::module_& m);
void register_trace(py::module_& m);
void register_explain(py::module_& m);
void register_target(py::module_& m);
void register_experiment(py::module_& m);
void register_diff(py::module_& m);  // reslens.diff and reslens.graph (bind_diff.cpp)
void register_hooks(py::module_& m);

}  // namespace reslens::python
