#include "nystrom/kernel_frobenius.h"

#include <algorithm>
#include <limits>
#include <new>
#include <sstream>
#include <vector>

#include "blas/blas.h"
#include "gram/buffer_pool.h"
#include "gram/gram_accumulate.h"
#include "nystrom/common.h"
#include "nystrom/elementwise.h"
#include "nystrom/nystrom_accumulate.h"

namespace clipcore::nystrom {

namespace {

// One implementation for both entries: y == nullptr is the symmetric sum over
// x (tile pairs I <= J, off-diagonal tiles doubled, units = tile rows of x),
// otherwise the cross sum over all (x_i, y_j) (units = tile pairs).
template <typename T>
std::string sq_frobenius(const T* x, int64_t n, const T* y, int64_t p, int64_t d, double sigma,
                         const FrobeniusOptions& opt, double* out, Executor* executor) {
  *out = 0.0;
  const bool cross = y != nullptr;
  if (n < 0 || p < 0 || d < 0) return "negative dimension";
  double gamma = 0;
  if (auto e = gamma_from_sigma(sigma, &gamma); !e.empty()) return e;
  if (n > blas::max_dim() || p > blas::max_dim() || d > blas::max_dim())
    return "dimension exceeds the BLAS integer range";
  if (!cross) {  // the symmetric sum: y is x
    p = n;
    y = x;
  }
  if (n == 0 || p == 0) return "";
  const double gamma2 = 2.0 * gamma;
  const double floor = rounding_floor(std::numeric_limits<T>::epsilon(), d);  // k^2 = exp(-2 gamma sq)
  const int64_t t = std::max<int64_t>(
      1, std::min<int64_t>(opt.tile_rows > 0 ? opt.tile_rows : 512, std::max(n, p)));
  const int64_t nbx = (n + t - 1) / t, nby = (p + t - 1) / t;
  const int64_t units = cross ? nbx * nby : nbx;
  int threads = opt.num_threads > 0 ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                                    : gram::default_num_threads();
  if (double(n) * double(p) * double(d + 8) < double(1 << 22) && opt.num_threads <= 0) threads = 1;
  const int participants = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, units)));
  try {
    const blas::ThreadsScope blas_threads(1);
    std::vector<double> xnorms(static_cast<size_t>(n)), ynorms(cross ? static_cast<size_t>(p) : 0);
    parallel_chunks(nbx + (cross ? nby : 0), participants, executor, [&](int, int64_t u) {
      const bool of_y = u >= nbx;
      const int64_t I = of_y ? u - nbx : u, rows = of_y ? p : n;
      const int64_t i0 = I * t, i1 = std::min(rows, i0 + t);
      row_sq_norms((of_y ? y : x) + i0 * d, i1 - i0, d, d, (of_y ? ynorms : xnorms).data() + i0,
                   of_y ? "y" : "x", i0);
    });
    const double* yn = cross ? ynorms.data() : xnorms.data();
    std::vector<double> unit_sums(static_cast<size_t>(units), 0.0);
    std::vector<BufferPool::Buffer> bufs(participants);
    parallel_chunks(units, participants, executor, [&](int s, int64_t u) {
      if (!bufs[s]) bufs[s] = BufferPool::acquire(sizeof(T) * t * t);
      T* dots = as<T>(bufs[s]);
      const int64_t I = cross ? u / nby : u;
      const int64_t J_begin = cross ? u % nby : I, J_end = cross ? J_begin + 1 : nby;
      const int64_t i0 = I * t, ti = std::min(n, i0 + t) - i0;
      double total = 0.0;
      for (int64_t J = J_begin; J < J_end; ++J) {
        const int64_t j0 = J * t, tj = std::min(p, j0 + t) - j0;
        blas::gemm(false, true, ti, tj, d, T(1), x + i0 * d, d, y + j0 * d, d, T(0), dots, tj);
        const TileRows<T> rows{x + i0 * d, d, y + j0 * d, d, d};
        const bool diagonal = !cross && J == I;
        const double s_ij = gauss_tile_sum(dots, tj, xnorms.data() + i0, yn + j0, ti, tj, gamma2, floor,
                                           diagonal ? 0 : -1, &rows);
        total += diagonal || cross ? s_ij : 2.0 * s_ij;
      }
      unit_sums[u] = total;
    });
    double sum = 0.0;
    for (double v : unit_sums) sum += v;
    *out = sum;
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::bad_alloc&) {
    std::ostringstream os;
    os << "out of memory allocating [" << t << ", " << t << "] kernel tiles";
    return os.str();
  } catch (const std::exception& e) {
    return std::string("internal error: ") + e.what();
  }
  return "";
}

}  // namespace

template <typename T>
std::string gaussian_sq_frobenius(const T* x, int64_t n, int64_t d, double sigma,
                                  const FrobeniusOptions& opt, double* out,
                                  Executor* executor) {
  return sq_frobenius<T>(x, n, nullptr, 0, d, sigma, opt, out, executor);
}

template <typename T>
std::string gaussian_sq_frobenius_cross(const T* x, int64_t n, const T* y, int64_t p, int64_t d,
                                        double sigma, const FrobeniusOptions& opt, double* out,
                                        Executor* executor) {
  if (y == nullptr) return "the second row set y is null";
  return sq_frobenius<T>(x, n, y, p, d, sigma, opt, out, executor);
}

template std::string gaussian_sq_frobenius_cross<float>(const float*, int64_t, const float*, int64_t,
                                                        int64_t, double, const FrobeniusOptions&,
                                                        double*, Executor*);
template std::string gaussian_sq_frobenius_cross<double>(const double*, int64_t, const double*,
                                                         int64_t, int64_t, double,
                                                         const FrobeniusOptions&, double*, Executor*);

template std::string gaussian_sq_frobenius<float>(const float*, int64_t, int64_t, double,
                                                  const FrobeniusOptions&, double*, Executor*);
template std::string gaussian_sq_frobenius<double>(const double*, int64_t, int64_t, double,
                                                   const FrobeniusOptions&, double*, Executor*);

}  // namespace clipcore::nystrom
