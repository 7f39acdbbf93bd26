// reslens._core experiments: nothing to bind yet. The C++ experiment API (include/reslens/) is being
// written in parallel; until it exists this file registers nothing and reslens.experiment() in the
// Python layer raises reslens.UnsupportedError saying so.
#include "bindings.h"

namespace reslens::python {

void register_experiment(py::module_& m) { m.attr("HAS_EXPERIMENT") = false; }

}  // namespace reslens::python
