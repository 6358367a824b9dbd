// _ext.hadamard_sq_frobenius_host: the Hadamard-kernel |K_X o K_T|_F^2 on host
// rows (the symmetric sum over (x, t), or the cross sum against (y, u)), the
// compiled core with the GIL released and the process's threads. The panel
// loop of clipcore's exact order-2 Conditional Vendi (files, progress) is built
// from it. Binding: argument checks -> dtype dispatch -> the pure algorithm.
#include "python/hadamard_host.h"

#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>

#include "frobenius/hadamard_frobenius.h"
#include "gram/gram_accumulate.h"
#include "gram/parallel.h"
#include "python/shape.h"

namespace py = pybind11;

namespace clipcore::python {

namespace {

// x [n, dx] and t [n, dt] (names for the messages), C-contiguous, of dtype `like`'s.
void check_pair(const py::array& x, const py::array& t, const char* xn, const char* tn, const py::array& like) {
  const std::string op = "hadamard_sq_frobenius_host: ";
  if (x.ndim() != 2 || t.ndim() != 2 || x.shape(0) != t.shape(0))
    throw std::invalid_argument(op + xn + " [n, dx] and " + tn + " [n, dt] must be paired 2-D arrays, got " +
                                shape_of(x) + " and " + shape_of(t));
  const bool f32 = like.dtype().is(py::dtype::of<float>());
  if (!(f32 || like.dtype().is(py::dtype::of<double>())) || !x.dtype().is(like.dtype()) ||
      !t.dtype().is(like.dtype()))
    throw std::invalid_argument(op + "x, t (and y, u) must share float32 or float64");
  if (!(x.flags() & py::array::c_style) || !(t.flags() & py::array::c_style))
    throw std::invalid_argument(op + xn + " and " + tn + " must be C-contiguous");
}

template <typename T>
frobenius::PairedRows<T> rows_of(const py::array& x, const py::array& t) {
  frobenius::PairedRows<T> r;
  r.x = static_cast<const T*>(x.data());
  r.t = static_cast<const T*>(t.data());
  r.n = x.shape(0);
  r.dx = x.shape(1);
  r.dt = t.shape(1);
  return r;
}

template <typename T>
std::string run(const py::array& x, const py::array& t, const py::array* y, const py::array* u,
                const frobenius::HadamardOptions& opt, double* out) {
  const auto a = rows_of<T>(x, t);
  frobenius::PairedRows<T> b;
  if (y != nullptr) b = rows_of<T>(*y, *u);
  py::gil_scoped_release release;
  Executor* ex = host_executor(gram::default_num_threads() - 1);
  return frobenius::hadamard_sq_frobenius<T>(a, y != nullptr ? &b : nullptr, opt, out, ex);
}

double hadamard_host(py::array x, py::array t, py::object y_obj, py::object u_obj, int64_t kernel, double sigma_x,
                     double sigma_t, int64_t num_threads, int64_t tile_rows) {
  const std::string op = "hadamard_sq_frobenius_host: ";
  const bool cross = !y_obj.is_none();
  if (cross == u_obj.is_none()) throw std::invalid_argument(op + "pass both y and u (the second paired set), or neither");
  check_pair(x, t, "x", "t", x);
  py::array y, u;
  if (cross) {
    y = py::array(y_obj);
    u = py::array(u_obj);
    check_pair(y, u, "y", "u", x);
  }
  if (kernel < 0 || kernel > 1) throw std::invalid_argument(op + "kernel must be 0 (Gaussian) or 1 (cosine)");
  if (num_threads < 0 || tile_rows < 0) throw std::invalid_argument(op + "num_threads and tile_rows must be >= 0");
  frobenius::HadamardOptions opt;
  opt.kernel = static_cast<frobenius::ProductKernel>(kernel);
  opt.sigma_x = sigma_x;
  opt.sigma_t = sigma_t;
  opt.num_threads = num_threads;
  opt.tile_rows = tile_rows;
  double out = 0.0;
  const bool f32 = x.dtype().is(py::dtype::of<float>());
  const std::string err = f32 ? run<float>(x, t, cross ? &y : nullptr, cross ? &u : nullptr, opt, &out)
                              : run<double>(x, t, cross ? &y : nullptr, cross ? &u : nullptr, opt, &out);
  if (!err.empty())
    throw std::invalid_argument(op + err + " (x " + shape_of(x) + ", t " + shape_of(t) +
                                (cross ? ", y " + shape_of(y) + ", u " + shape_of(u) : std::string()) + ")");
  return out;
}

}  // namespace

void add_hadamard_host(py::module_& m) {
  m.def("hadamard_sq_frobenius_host", &hadamard_host, py::arg("x"), py::arg("t"), py::arg("y"), py::arg("u"),
        py::arg("kernel"), py::arg("sigma_x"), py::arg("sigma_t"), py::arg("num_threads") = 0,
        py::arg("tile_rows") = 0,
        "sum_ij k_X(x_i, y_j)^2 k_T(t_i, u_j)^2 (y, u None: the symmetric sum over (x, t)) of the Gaussian "
        "(kernel 0; bandwidths sigma_x, sigma_t) or cosine (kernel 1) kernels on host rows, float64 sums, "
        "no n x n matrix.");
}

}  // namespace clipcore::python
