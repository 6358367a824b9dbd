// The one Python extension module, clipcore._ext: hands XLA FFI handlers to
// Python as PyCapsules (registered by clipcore/_ffi/registration.py) plus diagnostics.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sstream>
#include <string>

#include "blas/blas.h"
#include "ffi/targets.h"
#include "gram/buffer_pool.h"
#include "gram/gram_accumulate.h"
#include "gram/gram_packed.h"
#include "gram/parallel.h"
#include "nystrom/elementwise.h"
#include "nystrom/kernel_frobenius.h"
#include "nystrom/nystrom_accumulate.h"
#include "nystrom/pivoted_cholesky.h"
#include "python/band_host.h"
#include "python/hadamard_host.h"
#include "python/shape.h"

namespace py = pybind11;
using clipcore::python::shape_of;

#ifdef CLIPCORE_WITH_CUDA
// csrc/cuda/gram_cuda.cu: the same targets for platform "CUDA".
extern "C" XLA_FFI_Error* ClipcoreGramAccumulateCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreNystromAccumulateCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreNystromAccumulatePairedCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreKernelAccumulateCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcoreKernelAccumulatePairedCuda(XLA_FFI_CallFrame*);
// csrc/cuda/frobenius_cuda.cu, csrc/cuda/pivoted_cholesky_cuda.cu.
extern "C" XLA_FFI_Error* ClipcoreGaussianSqFrobeniusCuda(XLA_FFI_CallFrame*);
extern "C" XLA_FFI_Error* ClipcorePivotedCholeskyCuda(XLA_FFI_CallFrame*);
#endif

namespace {

template <typename Fn>
py::capsule make_capsule(Fn* fn) {
  static_assert(std::is_invocable_r_v<XLA_FFI_Error*, Fn, XLA_FFI_CallFrame*>,
                "FFI handler must have the XLA_FFI_Handler signature");
  return py::capsule(reinterpret_cast<void*>(fn));
}

// The [R, R] float64 accumulator a host entry updates in place: checked, not
// converted (a converted copy would lose the update silently).
double* inplace_gram(py::array& g, int64_t R, const char* op) {
  if (g.ndim() != 2 || g.shape(0) != R || g.shape(1) != R || !g.dtype().is(py::dtype::of<double>()) ||
      !(g.flags() & py::array::c_style) || !g.writeable())
    throw std::invalid_argument(std::string(op) + ": G must be a writeable C-contiguous [" + std::to_string(R) +
                                ", " + std::to_string(R) + "] float64 array, got " + shape_of(g));
  return static_cast<double*>(g.mutable_data());
}

// The host entries' threads: the process's pool, the same threads (and malloc
// arenas) every call. Call with the GIL released.
clipcore::Executor* host_pool() {
  return clipcore::host_executor(clipcore::gram::default_num_threads() - 1);
}

}  // namespace

PYBIND11_MODULE(_ext, m) {
  m.doc() = "clipcore compiled core: XLA FFI handlers (CPU) and diagnostics";

#ifdef CLIPCORE_WITH_CUDA
  m.def(
      "cuda_registrations",
      []() {
        py::dict d;
        d[clipcore::kGramAccumulateTarget] = make_capsule(ClipcoreGramAccumulateCuda);
        d[clipcore::kNystromAccumulateTarget] = make_capsule(ClipcoreNystromAccumulateCuda);
        d[clipcore::kNystromAccumulatePairedTarget] =
            make_capsule(ClipcoreNystromAccumulatePairedCuda);
        d[clipcore::kKernelAccumulateTarget] = make_capsule(ClipcoreKernelAccumulateCuda);
        d[clipcore::kKernelAccumulatePairedTarget] =
            make_capsule(ClipcoreKernelAccumulatePairedCuda);
        d[clipcore::kGaussianSqFrobeniusTarget] = make_capsule(ClipcoreGaussianSqFrobeniusCuda);
        d[clipcore::kPivotedCholeskyTarget] = make_capsule(ClipcorePivotedCholeskyCuda);
        return d;
      },
      "FFI handler capsules for platform CUDA (built with CLIPCORE_ENABLE_CUDA)");
#endif

  m.def(
      "registrations",
      []() {
        py::dict d;
        d[clipcore::kGramAccumulateTarget] =
            make_capsule(clipcore::ClipcoreGramAccumulateCpu);
        d[clipcore::kEigvalshTarget] = make_capsule(clipcore::ClipcoreEigvalshCpu);
        d[clipcore::kJointGramAccumulateTarget] =
            make_capsule(clipcore::ClipcoreJointGramAccumulateCpu);
        d[clipcore::kNystromAccumulateTarget] =
            make_capsule(clipcore::ClipcoreNystromAccumulateCpu);
        d[clipcore::kNystromAccumulatePairedTarget] =
            make_capsule(clipcore::ClipcoreNystromAccumulatePairedCpu);
        d[clipcore::kKernelAccumulateTarget] =
            make_capsule(clipcore::ClipcoreKernelAccumulateCpu);
        d[clipcore::kKernelAccumulatePairedTarget] =
            make_capsule(clipcore::ClipcoreKernelAccumulatePairedCpu);
        d[clipcore::kGaussianSqFrobeniusTarget] =
            make_capsule(clipcore::ClipcoreGaussianSqFrobeniusCpu);
        d[clipcore::kPivotedCholeskyTarget] =
            make_capsule(clipcore::ClipcorePivotedCholeskyCpu);
        d[clipcore::kHadamardSqFrobeniusTarget] = make_capsule(clipcore::ClipcoreHadamardSqFrobeniusCpu);
        return d;
      },
      "dict: XLA FFI target name -> PyCapsule of its CPU handler "
      "(typed FFI, api_version 1).");

  clipcore::python::add_hadamard_host(m);  // hadamard_sq_frobenius_host (csrc/python/hadamard_host.cc)
  clipcore::python::add_band_host(m);  // band_reduce, band_eigenvectors, apply_reflectors (csrc/python/band_host.cc)

  m.def(
      "blas_info",
      []() {
        std::ostringstream os;
        os << clipcore::blas::info()
           << "; clipcore_threads=" << clipcore::gram::default_num_threads()
           << "; block_rows_f32=" << clipcore::gram::default_block_rows(0, true)
           << "; elementwise=" << clipcore::nystrom::elementwise_isa()
           << "; buffer_cache_mb="
           << (clipcore::BufferPool::max_cached_bytes() >> 20)
#ifdef CLIPCORE_BUILD_FLAGS
           << "; build=" << CLIPCORE_BUILD_FLAGS
#endif
            ;
        return os.str();
      },
      "str: the linked BLAS, its thread setting and clipcore's defaults.");

  m.def(
      "release_buffers", []() { return clipcore::BufferPool::clear(); },
      "Free the cached accumulator buffers (kept between calls up to "
      "CLIPCORE_BUFFER_CACHE_MB, default 128); returns the bytes freed.");

  // Host twin of clipcore_joint_gram_accumulate for blocks already in host
  // memory (the streamed path): same core, own threads, no device copy.
  m.def(
      "joint_gram_host",
      [](py::array g, py::array a, py::array b, bool normalize, int64_t num_threads) {
        if (a.ndim() != 2 || b.ndim() != 2 || a.shape(0) != b.shape(0))
          throw std::invalid_argument(
              "joint_gram_host: A [b, dA] and B [b, dB] must be paired 2-D arrays");
        if (!a.dtype().is(b.dtype()) ||
            !(a.dtype().is(py::dtype::of<float>()) || a.dtype().is(py::dtype::of<double>())))
          throw std::invalid_argument("joint_gram_host: A and B must share float32 or float64");
        if (!(a.flags() & py::array::c_style) || !(b.flags() & py::array::c_style))
          throw std::invalid_argument("joint_gram_host: A and B must be C-contiguous");
        const int64_t rows = a.shape(0), da = a.shape(1), db = b.shape(1), d = da + db;
        double* gp = inplace_gram(g, d, "joint_gram_host");
        const bool f32 = a.dtype().is(py::dtype::of<float>());
        const void* ap = a.data();
        const void* bp = b.data();
        std::string err;
        {
          py::gil_scoped_release release;
          clipcore::gram::Options opt;
          opt.num_threads = num_threads;
          clipcore::Executor* ex = host_pool();
          err = f32 ? clipcore::gram::gram_accumulate_packed<float, double>(
                          static_cast<const float*>(ap), da, static_cast<const float*>(bp), db,
                          rows, normalize, gp, gp, opt, ex)
                    : clipcore::gram::gram_accumulate_packed<double, double>(
                          static_cast<const double*>(ap), da, static_cast<const double*>(bp), db,
                          rows, normalize, gp, gp, opt, ex);
        }
        if (!err.empty()) throw std::runtime_error("joint_gram_host: " + err);
      },
      py::arg("g"), py::arg("a"), py::arg("b"), py::arg("normalize"), py::arg("num_threads") = 0,
      "G += [f(A) | f(B)]^T [f(A) | f(B)] in place on host arrays (f: row normalisation "
      "when normalize); the compiled core of clipcore_joint_gram_accumulate, own threads.");

  // Host twin of clipcore_nystrom_accumulate[_paired] (kernel form) for
  // blocks in host memory (streamed files, in-memory NumPy arrays): the same
  // core, own threads, GIL released, no device copy of the rows.
  m.def(
      "nystrom_host",
      [](py::array g, py::array a, py::object b_obj, py::array landmarks, double sigma,
         int64_t num_threads, int64_t block_rows) {
        const bool paired = !b_obj.is_none();
        if (block_rows < 0)
          throw std::invalid_argument("nystrom_host: block_rows must be >= 0, got " + std::to_string(block_rows));
        py::array b = paired ? py::array(b_obj) : py::array();
        if (a.ndim() != 2)
          throw std::invalid_argument("nystrom_host: rows must be [b, d], got " + shape_of(a));
        if (landmarks.ndim() != 2 || landmarks.shape(1) != a.shape(1))
          throw std::invalid_argument("nystrom_host: landmarks must be [m, " + std::to_string(a.shape(1)) +
                                      "], got " + shape_of(landmarks) + " for rows " + shape_of(a));
        if (paired && (b.ndim() != 2 || b.shape(0) != a.shape(0) || b.shape(1) != a.shape(1)))
          throw std::invalid_argument("nystrom_host: the second block must match the first " + shape_of(a) +
                                      ", got " + shape_of(b));
        const bool f32 = a.dtype().is(py::dtype::of<float>());
        if (!(f32 || a.dtype().is(py::dtype::of<double>())) || !landmarks.dtype().is(a.dtype()) ||
            (paired && !b.dtype().is(a.dtype())))
          throw std::invalid_argument("nystrom_host: rows and landmarks must share float32 or float64");
        if (!(a.flags() & py::array::c_style) || !(landmarks.flags() & py::array::c_style) ||
            (paired && !(b.flags() & py::array::c_style)))
          throw std::invalid_argument("nystrom_host: rows and landmarks must be C-contiguous");
        const int64_t rows = a.shape(0), d = a.shape(1), m = landmarks.shape(0);
        const int64_t R = (paired ? 2 : 1) * m;
        double* gp = inplace_gram(g, R, "nystrom_host");
        const void* blocks[2] = {a.data(), paired ? b.data() : nullptr};
        const void* lp = landmarks.data();
        std::string err;
        {
          py::gil_scoped_release release;
          clipcore::nystrom::AccumulateOptions opt;
          opt.num_threads = num_threads;
          opt.block_rows = block_rows;
          clipcore::Executor* ex = host_pool();
          const int nb = paired ? 2 : 1;
          err = f32 ? clipcore::nystrom::nystrom_accumulate<float, double>(
                          reinterpret_cast<const float* const*>(blocks), nb, rows, d,
                          static_cast<const float*>(lp), m, nullptr, 0, sigma, gp, gp, opt, ex)
                    : clipcore::nystrom::nystrom_accumulate<double, double>(
                          reinterpret_cast<const double* const*>(blocks), nb, rows, d,
                          static_cast<const double*>(lp), m, nullptr, 0, sigma, gp, gp, opt, ex);
        }
        if (!err.empty()) throw std::invalid_argument("nystrom_host: " + err);
      },
      py::arg("g"), py::arg("a"), py::arg("b"), py::arg("landmarks"), py::arg("sigma"),
      py::arg("num_threads") = 0, py::arg("block_rows") = 0,
      "G += Z^T Z in place, Z = [k(A, L) | k(B, L)] (or k(A, L) when b is None), Gaussian kernel "
      "exp(-|x - l|^2 / (2 sigma^2)), float64 products and sums: the kernel form of "
      "clipcore_nystrom_accumulate on host arrays, own threads.");

  // Streamed squared Frobenius norm of the Gaussian kernel on host rows: the
  // symmetric sum over x (y None) or the cross sum over (x_i, y_j); the
  // compiled core with the GIL released and the process's threads. The panel
  // loop of clipcore's exact RKE (files, progress) is built from these.
  m.def(
      "gaussian_sq_frobenius_host",
      [](py::array x, py::object y_obj, double sigma, int64_t num_threads, int64_t tile_rows) {
        const bool cross = !y_obj.is_none();
        py::array y = cross ? py::array(y_obj) : py::array();
        if (x.ndim() != 2)
          throw std::invalid_argument("gaussian_sq_frobenius_host: x must be [n, d], got " + shape_of(x));
        if (cross && (y.ndim() != 2 || y.shape(1) != x.shape(1)))
          throw std::invalid_argument("gaussian_sq_frobenius_host: y must be [p, " + std::to_string(x.shape(1)) +
                                      "], got " + shape_of(y) + " for x " + shape_of(x));
        const bool f32 = x.dtype().is(py::dtype::of<float>());
        if (!(f32 || x.dtype().is(py::dtype::of<double>())) || (cross && !y.dtype().is(x.dtype())))
          throw std::invalid_argument("gaussian_sq_frobenius_host: x and y must share float32 or float64");
        if (!(x.flags() & py::array::c_style) || (cross && !(y.flags() & py::array::c_style)))
          throw std::invalid_argument("gaussian_sq_frobenius_host: x and y must be C-contiguous");
        if (num_threads < 0 || tile_rows < 0)
          throw std::invalid_argument("gaussian_sq_frobenius_host: num_threads and tile_rows must be >= 0");
        const int64_t n = x.shape(0), d = x.shape(1), p = cross ? y.shape(0) : 0;
        double out = 0.0;
        std::string err;
        {
          py::gil_scoped_release release;
          clipcore::nystrom::FrobeniusOptions opt;
          opt.num_threads = num_threads;
          opt.tile_rows = tile_rows;
          clipcore::Executor* ex = host_pool();
          namespace N = clipcore::nystrom;
          if (f32) {
            const auto* xp = static_cast<const float*>(x.data());
            err = cross ? N::gaussian_sq_frobenius_cross<float>(xp, n, static_cast<const float*>(y.data()), p, d,
                                                                sigma, opt, &out, ex)
                        : N::gaussian_sq_frobenius<float>(xp, n, d, sigma, opt, &out, ex);
          } else {
            const auto* xp = static_cast<const double*>(x.data());
            err = cross ? N::gaussian_sq_frobenius_cross<double>(xp, n, static_cast<const double*>(y.data()), p,
                                                                 d, sigma, opt, &out, ex)
                        : N::gaussian_sq_frobenius<double>(xp, n, d, sigma, opt, &out, ex);
          }
        }
        if (!err.empty())
          throw std::invalid_argument("gaussian_sq_frobenius_host: " + err + " (x " + shape_of(x) +
                                      (cross ? ", y " + shape_of(y) : std::string()) + ")");
        return out;
      },
      py::arg("x"), py::arg("y"), py::arg("sigma"), py::arg("num_threads") = 0, py::arg("tile_rows") = 0,
      "sum_ij k(x_i, x_j)^2 (y None) or sum_ij k(x_i, y_j)^2 of the Gaussian kernel "
      "exp(-|a - b|^2 / (2 sigma^2)) on host rows, float64 sums, no n x n matrix.");

  // Greedy pivoted Cholesky on host rows (landmark selection): the compiled
  // core with the GIL released, the process's threads, no device copy of the
  // pool and no [m, m] pivot factor.
  m.def(
      "pivoted_cholesky_host",
      [](py::array x, double sigma, int64_t m, double trace_tol, double min_pivot, int64_t num_threads) {
        if (x.ndim() != 2)
          throw std::invalid_argument("pivoted_cholesky_host: x must be [n, d], got " + shape_of(x));
        const bool f32 = x.dtype().is(py::dtype::of<float>());
        if (!(f32 || x.dtype().is(py::dtype::of<double>())) || !(x.flags() & py::array::c_style))
          throw std::invalid_argument("pivoted_cholesky_host: x must be a C-contiguous float32 or float64 array");
        if (m < 0) throw std::invalid_argument("pivoted_cholesky_host: m must be >= 0, got " + std::to_string(m));
        const int64_t n = x.shape(0), d = x.shape(1);
        if (const std::string e = clipcore::nystrom::factor_size_error(n, m); !e.empty())
          throw std::invalid_argument("pivoted_cholesky_host: " + e);
        py::array_t<int64_t> piv(m);
        py::array_t<double> trace(m);
        clipcore::nystrom::PivotedCholeskyOptions opt;
        opt.trace_tol = trace_tol;
        opt.min_pivot = min_pivot;
        opt.num_threads = num_threads;
        int64_t count = 0;
        std::string err;
        {
          py::gil_scoped_release release;
          clipcore::Executor* ex = host_pool();
          err = f32 ? clipcore::nystrom::pivoted_cholesky<float>(static_cast<const float*>(x.data()), n, d, sigma,
                                                                 m, opt, piv.mutable_data(), trace.mutable_data(),
                                                                 nullptr, nullptr, &count, ex)
                    : clipcore::nystrom::pivoted_cholesky<double>(static_cast<const double*>(x.data()), n, d,
                                                                  sigma, m, opt, piv.mutable_data(),
                                                                  trace.mutable_data(), nullptr, nullptr, &count,
                                                                  ex);
        }
        if (!err.empty())
          throw std::invalid_argument("pivoted_cholesky_host: " + err + " (x " + shape_of(x) +
                                      ", m = " + std::to_string(m) + ")");
        return py::make_tuple(piv, count, trace);
      },
      py::arg("x"), py::arg("sigma"), py::arg("m"), py::arg("trace_tol") = 0.0, py::arg("min_pivot") = 1e-10,
      py::arg("num_threads") = 0,
      "(pivots [m] int64, count, residual_trace [m] float64): greedy pivoted Cholesky of the Gaussian "
      "kernel k(x, x) on host rows (see clipcore_pivoted_cholesky), the pivot factor not formed.");

  m.def("available_cpus", &clipcore::available_cpus,
        "int: CPUs this process may run on (sched affinity).");
}
