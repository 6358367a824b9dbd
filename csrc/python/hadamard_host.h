// The host entry of the Hadamard-kernel squared Frobenius norm
// (csrc/frobenius/hadamard_frobenius.h) on NumPy rows, added to clipcore._ext
// by csrc/python/module.cc.
#pragma once

#include <pybind11/pybind11.h>

namespace clipcore::python {

// Defines _ext.hadamard_sq_frobenius_host(x, t, y, u, kernel, sigma_x, sigma_t,
// num_threads, tile_rows) -> float.
void add_hadamard_host(pybind11::module_& m);

}  // namespace clipcore::python
