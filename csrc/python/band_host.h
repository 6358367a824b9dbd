// The host entries of the two-stage kept pairs (csrc/linalg/band_pairs.h) on NumPy arrays, added to
// clipcore._ext by csrc/python/module.cc.
#pragma once

#include <pybind11/pybind11.h>

namespace clipcore::python {

// Defines _ext.band_reduce(a, kd) -> (w, ab, tau), _ext.band_eigenvectors(ab, lams) -> z and
// _ext.apply_reflectors(a, tau, kd, z).
void add_band_host(pybind11::module_& m);

}  // namespace clipcore::python
