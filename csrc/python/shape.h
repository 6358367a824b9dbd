// "[d0, d1, …]" of a NumPy array, for the host entries' error messages.
#pragma once

#include <pybind11/numpy.h>

#include <string>

namespace clipcore::python {

inline std::string shape_of(const pybind11::array& a) {
  std::string s = "[";
  for (pybind11::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

}  // namespace clipcore::python
