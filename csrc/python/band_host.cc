// _ext.band_reduce / band_eigenvectors / apply_reflectors: a symmetric matrix's eigenpairs for a few of its
// eigenvalues through LAPACK's two-stage reduction (csrc/linalg/band_pairs.h), on NumPy float64 arrays with
// the GIL released. Binding: argument checks -> the pure algorithm.
#include "python/band_host.h"

#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>
#include <tuple>

#include "gram/gram_accumulate.h"
#include "gram/parallel.h"
#include "linalg/band_pairs.h"
#include "python/shape.h"

namespace py = pybind11;

namespace clipcore::python {

namespace {

using F64 = py::array_t<double, py::array::forcecast>;                       // any layout (checked where read)
using F64C = py::array_t<double, py::array::c_style | py::array::forcecast>;  // vectors: contiguous

// A writeable float64 array of the given shape and memory order, checked, never converted (it is written in
// place).
double* inplace(py::array& a, py::ssize_t rows, py::ssize_t cols, bool fortran, const char* op, const char* what) {
  const bool order = fortran ? (a.flags() & py::array::f_style) : (a.flags() & py::array::c_style);
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols || !a.dtype().is(py::dtype::of<double>()) ||
      !order || !a.writeable())
    throw std::invalid_argument(std::string(op) + ": " + what + " must be a writeable " +
                                (fortran ? "Fortran" : "C") + "-ordered [" + std::to_string(rows) + ", " +
                                std::to_string(cols) + "] float64 array, got " + shape_of(a));
  return static_cast<double*>(a.mutable_data());
}

void fail_if(const std::string& err) {
  if (!err.empty()) throw std::invalid_argument(err);
}

// a: [n, n] float64, overwritten by Q1's reflectors (a symmetric matrix reads the same in either order: its
// lower triangle as LAPACK reads it, column-major). Returns (w [n] ascending, ab [kd + 1, n] F, tau [n − kd]).
std::tuple<py::array, py::array, py::array> reduce(py::array a, int64_t kd) {
  const char* op = "band_reduce";
  if (a.ndim() != 2 || a.shape(0) != a.shape(1))
    throw std::invalid_argument(std::string(op) + ": expected a square [n, n] matrix, got " + shape_of(a));
  const int64_t n = a.shape(0);
  double* ap = inplace(a, n, n, (a.flags() & py::array::f_style) != 0, op, "a");
  if (kd < 1 || kd >= n)
    throw std::invalid_argument(std::string(op) + ": expected 1 <= kd < n, got kd = " + std::to_string(kd) +
                                " for n = " + std::to_string(n));
  py::array_t<double> w(n), tau(n - kd);
  py::array_t<double, py::array::f_style> ab({kd + 1, n});
  std::string err;
  {
    py::gil_scoped_release release;
    err = linalg::band_reduce(ap, n, kd, ab.mutable_data(), tau.mutable_data(), w.mutable_data());
  }
  fail_if(err);
  return {w, ab, tau};
}

// ab: [kd + 1, n] (band_reduce's); lams: [k]. Returns (z [n, k] Fortran-ordered, residuals [k]).
std::tuple<py::array, py::array> eigenvectors(F64 ab, F64C lams, int64_t num_threads) {
  const char* op = "band_eigenvectors";
  if (ab.ndim() != 2 || ab.shape(0) < 2 || lams.ndim() != 1)
    throw std::invalid_argument(std::string(op) + ": expected ab [kd + 1, n] and lams [k], got " + shape_of(ab) +
                                " and " + shape_of(lams));
  const int64_t kd = ab.shape(0) - 1, n = ab.shape(1), k = lams.shape(0);
  auto band = py::array_t<double, py::array::f_style | py::array::forcecast>(ab);
  py::array_t<double, py::array::f_style> z({n, k});
  py::array_t<double> res(k);
  std::string err;
  {
    py::gil_scoped_release release;
    const int threads = static_cast<int>(num_threads > 0 ? num_threads : gram::default_num_threads());
    Executor* ex = host_executor(gram::default_num_threads() - 1);
    err = linalg::band_eigenvectors(band.data(), n, kd, lams.data(), k, z.mutable_data(), res.mutable_data(), ex,
                                    static_cast<int>(std::min<int64_t>(k, threads)));
  }
  fail_if(err);
  return {z, res};
}

// z ← Q1 z in place (z: [n, k] Fortran-ordered float64).
void reflect(F64 a, F64C tau, int64_t kd, py::array z) {
  const char* op = "apply_reflectors";
  if (a.ndim() != 2 || a.shape(0) != a.shape(1) || tau.ndim() != 1 || tau.shape(0) != a.shape(0) - kd)
    throw std::invalid_argument(std::string(op) + ": expected a [n, n] and tau [n - kd], got " + shape_of(a) +
                                " and " + shape_of(tau));
  const int64_t n = a.shape(0);
  if (z.ndim() != 2) throw std::invalid_argument(std::string(op) + ": z must be [n, k], got " + shape_of(z));
  const int64_t k = z.shape(1);
  double* zp = inplace(z, n, k, true, op, "z");
  // a as band_reduce left it: read column-major (a C-ordered symmetric input's buffer is that matrix)
  const bool fortran = (a.flags() & py::array::f_style) != 0;
  if (!fortran && !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(op) + ": a must be contiguous");
  std::string err;
  {
    py::gil_scoped_release release;
    err = linalg::apply_reflectors(a.data(), tau.data(), n, kd, zp, k);
  }
  fail_if(err);
}

}  // namespace

void add_band_host(py::module_& m) {
  m.def("band_reduce", &reduce, py::arg("a"), py::arg("kd"),
        "Stage one of LAPACK's two-stage reduction and the spectrum: a (float64 [n, n], symmetric, overwritten "
        "by the reflectors) -> (w ascending [n], ab [kd + 1, n], tau [n - kd]).");
  m.def("band_eigenvectors", &eigenvectors, py::arg("ab"), py::arg("lams"), py::arg("num_threads") = 0,
        "(z, residuals): unit eigenvectors [n, k] (Fortran order) of the band ab at the eigenvalues lams, by "
        "inverse iteration, and their residuals |B z_j - lams[j] z_j| [k].");
  m.def("apply_reflectors", &reflect, py::arg("a"), py::arg("tau"), py::arg("kd"), py::arg("z"),
        "z <- Q1 z in place (z: [n, k] Fortran-ordered float64).");
}

}  // namespace clipcore::python
