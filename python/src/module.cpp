// reslens._core: the compiled half of the reslens Python package. This file only wires the areas
// together (errors, model, trace, explain, experiment); each lives in its own bind_*.cpp.
#include <cctype>
#include <string>

#include "bindings.h"

namespace reslens::python {

namespace {

// Exception classes, created once when the module is imported and alive as long as it is.
PyObject* g_error = nullptr;
PyObject* g_io_error = nullptr;
PyObject* g_not_found = nullptr;
PyObject* g_format_error = nullptr;
PyObject* g_unsupported = nullptr;
PyObject* g_cancelled = nullptr;

PyObject* add_exception(py::module_& m, const char* name, const char* doc, std::initializer_list<PyObject*> bases) {
  py::tuple b(bases.size());
  size_t i = 0;
  for (PyObject* base : bases) b[i++] = py::reinterpret_borrow<py::object>(base);
  const std::string full = std::string("reslens.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(full.c_str(), doc, b.ptr(), nullptr);
  if (cls == nullptr) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(cls));
  return cls;  // the reference from PyErr_NewExceptionWithDoc is kept for the process's lifetime
}

bool says_not_found(const std::string& message) {
  std::string lower;
  for (const char ch : message) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return lower.find("no such file") != std::string::npos;
}

}  // namespace

double& last_call_seconds() {
  thread_local double seconds = 0;
  return seconds;
}

std::vector<int32_t> to_ids(const py::handle& obj) {
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj)) {
    throw py::type_error("expected a sequence of token ids, got a string");
  }
  std::vector<int32_t> ids;
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  ids.reserve(seq.size());
  for (const py::handle item : seq) {
    const auto v = item.cast<long long>();
    if (v < INT32_MIN || v > INT32_MAX) throw OutOfRange("token id " + std::to_string(v) + " is out of range");
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

void register_errors(py::module_& m) {
  g_error = add_exception(m, "Error", "Base of reslens's I/O, format and unsupported-feature errors.",
                          {PyExc_Exception});
  g_io_error = add_exception(m, "IoError", "A file could not be opened, read or mapped (an OSError).",
                             {g_error, PyExc_OSError});
  g_not_found = add_exception(m, "NotFoundError", "A file or folder does not exist (a FileNotFoundError).",
                              {g_io_error, PyExc_FileNotFoundError});
  g_format_error = add_exception(m, "FormatError", "A file exists but is malformed (a ValueError).",
                                 {g_error, PyExc_ValueError});
  g_unsupported = add_exception(m, "UnsupportedError",
                                "A well-formed input asks for something reslens does not implement "
                                "(a NotImplementedError).",
                                {g_error, PyExc_NotImplementedError});
  g_cancelled = add_exception(m, "Cancelled",
                              "A long explain stopped at a step boundary because its should_stop callable "
                              "answered true (ExplainRequest::should_stop); nothing after it was computed.",
                              {g_error});
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FormatError& e) {
      PyErr_SetString(g_format_error, e.what());
    } catch (const UnsupportedError& e) {
      PyErr_SetString(g_unsupported, e.what());
    } catch (const Cancelled& e) {
      PyErr_SetString(g_cancelled, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(says_not_found(e.what()) ? g_not_found : g_io_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const OutOfRange& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const InternalError& e) {
      PyErr_SetString(PyExc_RuntimeError, (std::string("reslens internal error (a bug): ") + e.what()).c_str());
    }
  });
}

}  // namespace reslens::python

PYBIND11_MODULE(_core, m) {
  namespace rp = reslens::python;
  m.doc() = R"pbdoc(
reslens._core: the C++ library behind the ``reslens`` package.

Use the ``reslens`` package instead (``reslens.load``, ``model.run_with_cache``,
``reslens.explain``); this module holds the thin bindings it is built on. Every array it returns is a
read-only numpy view over reslens's own memory that keeps its owner alive.
)pbdoc";
  m.attr("__version__") = "0.1.0";
  m.def("_last_call_seconds", [] { return rp::last_call_seconds(); },
        "Seconds the last run/explain call on this thread spent inside the library (benchmarks).");
  rp::register_errors(m);
  rp::register_model(m);
  rp::register_trace(m);
  rp::register_explain(m);
  rp::register_target(m);
  rp::register_experiment(m);
  rp::register_diff(m);
  rp::register_hooks(m);
}
