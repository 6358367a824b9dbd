// XLA FFI handler (typed API) for eigvalsh on CPU: dtype dispatch and shape
// checks, then linalg::eigvalsh.
#include <algorithm>
#include <string>
#include <vector>

#include "blas/blas.h"
#include "ffi/xla_executor.h"
#include "gram/gram_accumulate.h"
#include "gram/parallel.h"

#include "ffi/ffi_common.h"
#include "ffi/targets.h"
#include "linalg/eigvalsh.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace clipcore {
namespace {

constexpr const char* kOp = "eigvalsh: ";

template <typename T>
ffi::Error run(ffi::AnyBuffer a, ffi::Result<ffi::AnyBuffer> w, int64_t batch, int64_t n,
               Executor* executor) {
  const T* in = static_cast<const T*>(a.untyped_data());
  T* out = static_cast<T*>(w->untyped_data());
  std::vector<std::string> errors(static_cast<size_t>(batch));
  const int participants =
      static_cast<int>(std::min<int64_t>(batch, 1 + executor->helpers_available()));
  // Several matrices at once: one single-threaded LAPACK call per thread
  // (OpenBLAS set to one thread, as the Gram accumulation does); one matrix: LAPACK with every thread.
  // Either way the count is restored when the call ends.
  const int blas_threads = participants > 1 ? 1 : gram::default_num_threads();
  const blas::ThreadsScope blas_scope(blas_threads);
  parallel_chunks(batch, participants, executor, [&](int, int64_t k) {
    errors[k] = linalg::eigvalsh<T>(in + k * n * n, n, out + k * n);
  });
  for (int64_t k = 0; k < batch; ++k) {
    if (!errors[k].empty())
      return ffi::Error::InvalidArgument(batch > 1 ? errors[k] + " (matrix " + std::to_string(k) + ")"
                                                   : errors[k]);
  }
  return ffi::Error::Success();
}

ffi::Error EigvalshImpl(ffi::ThreadPool pool, ffi::AnyBuffer a, ffi::Result<ffi::AnyBuffer> w) {
  using ffi_util::dtype_name;
  using ffi_util::shape_str;
  const auto ad = a.dimensions();
  const auto wd = w->dimensions();
  const auto t = a.element_type();
  if (t != ffi::DataType::F32 && t != ffi::DataType::F64)
    return ffi::Error::InvalidArgument(std::string(kOp) + "dtype must be float32 or float64, got " +
                                       dtype_name(t));
  // Any number of leading batch dimensions [..., n, n] (a vmapped call adds one per vmap): one batch.
  if (ad.size() < 2 || ad[ad.size() - 1] != ad[ad.size() - 2])
    return ffi::Error::InvalidArgument(std::string(kOp) +
                                       "expected a square [n, n] matrix or a batch [..., n, n], got " +
                                       shape_str(ad));
  const int64_t n = ad[ad.size() - 1];
  int64_t batch = 1;
  bool w_ok = wd.size() == ad.size() - 1;
  for (size_t k = 0; k + 2 < ad.size(); ++k) {
    batch *= ad[k];
    w_ok = w_ok && wd[k] == ad[k];
  }
  w_ok = w_ok && wd[wd.size() - 1] == n;
  if (w->element_type() != t || !w_ok)
    return ffi::Error::InvalidArgument(std::string(kOp) + "output must be " + dtype_name(t) + " " +
                                       (ad.size() > 2 ? "[..., n]" : "[n]") + " for input " +
                                       shape_str(ad) + ", got " + dtype_name(w->element_type()) + " " +
                                       shape_str(wd));
  ffi_util::XlaPoolExecutor executor(pool, gram::default_num_threads() - 1);
  return t == ffi::DataType::F32 ? run<float>(a, w, batch, n, &executor)
                                 : run<double>(a, w, batch, n, &executor);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ClipcoreEigvalshCpu, EigvalshImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()   // A [..., n, n]
                                  .Ret<ffi::AnyBuffer>());  // w [..., n], ascending

}  // namespace clipcore
