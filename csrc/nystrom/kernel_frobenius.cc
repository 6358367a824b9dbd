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

template <typename T>
std::string gaussian_sq_frobenius(const T* x, int64_t n, int64_t d, double sigma,
                                  const FrobeniusOptions& opt, double* out,
                                  Executor* executor) {
  *out = 0.0;
  if (n < 0 || d < 0) return "negative dimension";
  double gamma = 0;
  if (auto e = gamma_from_sigma(sigma, &gamma); !e.empty()) return e;
  if (n > blas::max_dim() || d > blas::max_dim())
    return "dimension exceeds the BLAS integer range";
  if (n == 0) return "";
  const double gamma2 = 2.0 * gamma;
  const double floor = rounding_floor(std::numeric_limits<T>::epsilon(), d);  // k^2 = exp(-2 gamma sq)
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(opt.tile_rows > 0 ? opt.tile_rows : 512, n));
  const int64_t nb = (n + t - 1) / t;
  int threads = opt.num_threads > 0 ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                                    : gram::default_num_threads();
  if (double(n) * double(n) * double(d + 8) < double(1 << 22) && opt.num_threads <= 0) threads = 1;
  const int participants = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, nb)));
  try {
    ensure_single_threaded_blas();
    std::vector<double> norms(static_cast<size_t>(n));
    parallel_chunks(nb, participants, executor, [&](int, int64_t I) {
      const int64_t i0 = I * t, i1 = std::min(n, i0 + t);
      row_sq_norms(x + i0 * d, i1 - i0, d, d, norms.data() + i0, "x", i0);
    });
    std::vector<double> unit_sums(static_cast<size_t>(nb), 0.0);
    std::vector<BufferPool::Buffer> bufs(participants);
    parallel_chunks(nb, participants, executor, [&](int s, int64_t I) {
      if (!bufs[s]) bufs[s] = BufferPool::acquire(sizeof(T) * t * t);
      T* dots = as<T>(bufs[s]);
      const int64_t i0 = I * t, ti = std::min(n, i0 + t) - i0;
      double total = 0.0;
      for (int64_t J = I; J < nb; ++J) {
        const int64_t j0 = J * t, tj = std::min(n, j0 + t) - j0;
        blas::gemm(false, true, ti, tj, d, T(1), x + i0 * d, d, x + j0 * d, d, T(0), dots, tj);
        const TileRows<T> rows{x + i0 * d, d, x + j0 * d, d, d};
        const double s_ij = gauss_tile_sum(dots, tj, norms.data() + i0, norms.data() + j0, ti, tj,
                                           gamma2, floor, J == I ? 0 : -1, &rows);
        total += J == I ? s_ij : 2.0 * s_ij;
      }
      unit_sums[I] = total;
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

template std::string gaussian_sq_frobenius<float>(const float*, int64_t, int64_t, double,
                                                  const FrobeniusOptions&, double*, Executor*);
template std::string gaussian_sq_frobenius<double>(const double*, int64_t, int64_t, double,
                                                   const FrobeniusOptions&, double*, Executor*);

}  // namespace clipcore::nystrom
