#include "nystrom/pivoted_cholesky.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <numeric>
#include <sstream>
#include <type_traits>
#include <vector>

#include "blas/blas.h"
#include "gram/buffer_pool.h"
#include "gram/gram_accumulate.h"
#include "nystrom/common.h"
#include "nystrom/elementwise.h"
#include "nystrom/nystrom_accumulate.h"

namespace clipcore::nystrom {

namespace {

template <typename T>
void widen_rows(const T* x, int64_t rows, int64_t d, double* out) {
  for (int64_t i = 0; i < rows * d; ++i) out[i] = static_cast<double>(x[i]);
}

template <typename T>
std::string run(const T* x, int64_t n, int64_t d, double gamma, int64_t m,
                const PivotedCholeskyOptions& opt, int64_t* pivots, double* residual_trace,
                double* pivot_factor, double* factor, int64_t* count, Executor* executor) {
  const int64_t me = std::min(m, n);
  const int64_t ld = factor ? m : me;
  std::vector<double> own;
  if (!factor) own.assign(static_cast<size_t>(n) * static_cast<size_t>(me), 0.0);
  double* L = factor ? factor : own.data();

  const int64_t panel = std::max<int64_t>(1, opt.panel > 0 ? opt.panel : 128);
  const int64_t cand = std::min<int64_t>(
      n, std::max<int64_t>(1, opt.candidates > 0 ? opt.candidates : std::max<int64_t>(4 * panel, 512)));
  const int64_t chunk = std::max<int64_t>(1, opt.block_rows > 0 ? opt.block_rows : 1024);
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  int threads = opt.num_threads > 0 ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                                    : gram::default_num_threads();
  if (double(n) * double(d + me) < double(1 << 18) && opt.num_threads <= 0) threads = 1;
  const int participants = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n_chunks)));
  const blas::ThreadsScope blas_threads(1);
  const double floor = rounding_floor(std::numeric_limits<double>::epsilon(), d);

  std::vector<double> norms(static_cast<size_t>(n));
  parallel_chunks(n_chunks, participants, executor, [&](int, int64_t ch) {
    const int64_t i0 = ch * chunk, i1 = std::min(n, i0 + chunk);
    row_sq_norms(x + i0 * d, i1 - i0, d, d, norms.data() + i0, "x", i0);
  });

  std::vector<double> r(static_cast<size_t>(n), 1.0);  // residual diagonal
  std::vector<char> is_piv(static_cast<size_t>(n), 0);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  const size_t dz = static_cast<size_t>(std::max<int64_t>(d, 1));
  std::vector<double> Xc(cand * dz), nc(cand), dC(cand), col(cand);
  std::vector<double> Lc(static_cast<size_t>(cand) * std::max<int64_t>(me, 1));
  std::vector<double> Pc(cand * panel), Tm(panel * panel);
  std::vector<double> XP(panel * dz), nP(panel);
  std::vector<double> LP(static_cast<size_t>(panel) * std::max<int64_t>(me, 1));
  std::vector<double> colsum(n_chunks * panel);
  std::vector<int64_t> piv_local(panel), P(panel);
  struct Slot {
    BufferPool::Buffer A, X;
  };
  std::vector<Slot> slots(participants);

  double trace = static_cast<double>(n);
  int64_t k = 0;
  bool done = false;
  while (!done && k < me) {
    if (trace <= opt.trace_tol) break;
    // Candidate set: the `cand` largest residuals (ties: lower index first).
    std::iota(idx.begin(), idx.end(), int64_t{0});
    auto better = [&](int64_t a, int64_t b) { return r[a] > r[b] || (r[a] == r[b] && a < b); };
    if (cand < n) std::nth_element(idx.begin(), idx.begin() + cand, idx.end(), better);
    double tau = -std::numeric_limits<double>::infinity();
    int64_t tau_idx = n;
    for (int64_t a = cand; a < n; ++a) {
      const int64_t i = idx[a];
      if (r[i] > tau || (r[i] == tau && i < tau_idx)) {
        tau = r[i];
        tau_idx = i;
      }
    }
    const int64_t ldc = std::max<int64_t>(k, 1);
    for (int64_t a = 0; a < cand; ++a) {
      const int64_t i = idx[a];
      widen_rows(x + i * d, 1, d, Xc.data() + a * d);
      nc[a] = norms[i];
      dC[a] = r[i];
      std::copy(L + i * ld, L + i * ld + k, Lc.data() + a * ldc);
    }
    // Candidate phase: sequential greedy steps on C while provably global.
    int64_t s = 0;
    while (s < panel && k + s < me) {
      int64_t best = 0;
      for (int64_t a = 1; a < cand; ++a)
        if (dC[a] > dC[best] || (dC[a] == dC[best] && idx[a] < idx[best])) best = a;
      const double dp = dC[best];
      // Only a provably global choice counts (always so at the panel start,
      // where C holds the largest residuals): otherwise end the panel.
      if (s > 0 && !(dp > tau || (dp == tau && idx[best] < tau_idx))) break;
      if (!(dp > opt.min_pivot)) {  // the largest residual anywhere is exhausted
        done = true;
        break;
      }
      const double pv = std::sqrt(dp);
      blas::gemv(cand, d, 1.0, Xc.data(), d, Xc.data() + best * d, 0.0, col.data());
      const TileRows<double> rc{Xc.data(), d, Xc.data() + best * d, d, d};
      gauss_tile(col.data(), 1, nc.data(), nc.data() + best, cand, 1, gamma, floor, col.data(), 1, &rc);
      blas::gemv(cand, k, -1.0, Lc.data(), ldc, Lc.data() + best * ldc, 1.0, col.data());
      blas::gemv(cand, s, -1.0, Pc.data(), panel, Pc.data() + best * panel, 1.0, col.data());
      for (int64_t a = 0; a < cand; ++a) col[a] /= pv;
      col[best] = pv;
      for (int64_t a = 0; a < cand; ++a) {
        Pc[a * panel + s] = col[a];
        dC[a] = std::max(dC[a] - col[a] * col[a], 0.0);
      }
      dC[best] = 0.0;
      for (int64_t l = 0; l < panel; ++l) Tm[s * panel + l] = l <= s ? Pc[best * panel + l] : 0.0;
      piv_local[s] = best;
      ++s;
    }
    if (s == 0) break;
    for (int64_t j = 0; j < s; ++j) {
      const int64_t a = piv_local[j];
      P[j] = idx[a];
      std::copy(Xc.data() + a * d, Xc.data() + (a + 1) * d, XP.data() + j * d);
      nP[j] = nc[a];
      std::copy(Lc.data() + a * ldc, Lc.data() + a * ldc + k, LP.data() + j * ldc);
    }
    // Panel update of all rows: L[:, k:k+s] and the residuals.
    parallel_chunks(n_chunks, participants, executor, [&](int sl, int64_t ch) {
      Slot& slot = slots[sl];
      if (!slot.A) {
        slot.A = BufferPool::acquire(sizeof(double) * chunk * panel);
        if constexpr (!std::is_same_v<T, double>) slot.X = BufferPool::acquire(sizeof(double) * chunk * dz);
      }
      const int64_t i0 = ch * chunk, rows = std::min(n, i0 + chunk) - i0;
      const double* Xr;
      if constexpr (std::is_same_v<T, double>) {
        Xr = x + i0 * d;
      } else {
        widen_rows(x + i0 * d, rows, d, as<double>(slot.X));
        Xr = as<double>(slot.X);
      }
      double* A = as<double>(slot.A);
      blas::gemm(false, true, rows, s, d, 1.0, Xr, d, XP.data(), d, 0.0, A, s);
      const TileRows<double> rp{Xr, d, XP.data(), d, d};
      gauss_tile(A, s, norms.data() + i0, nP.data(), rows, s, gamma, floor, A, s, &rp);
      blas::gemm(false, true, rows, s, k, -1.0, L + i0 * ld, ld, LP.data(), ldc, 1.0, A, s);
      blas::trsm_right_lower_trans(rows, s, Tm.data(), panel, A, s);
      double* cs = colsum.data() + ch * panel;
      std::fill(cs, cs + s, 0.0);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t g = i0 + i;
        double* Lrow = L + g * ld + k;
        const double* Arow = A + i * s;
        if (is_piv[g]) {  // an earlier pivot: its residual is exactly 0
          std::fill(Lrow, Lrow + s, 0.0);
          continue;
        }
        double acc = 0.0;
        for (int64_t j = 0; j < s; ++j) {
          const double v = Arow[j];
          Lrow[j] = v;
          acc += v * v;
          cs[j] += v * v;
        }
        r[g] = std::max(r[g] - acc, 0.0);
      }
    });
    // The panel's own pivot rows: exactly the triangular factor used above.
    for (int64_t j = 0; j < s; ++j) {
      const int64_t g = P[j];
      for (int64_t l = 0; l < s; ++l) L[g * ld + k + l] = Tm[j * panel + l];
      r[g] = 0.0;
      is_piv[g] = 1;
    }
    double run_trace = trace;
    int64_t stop_at = -1;
    for (int64_t j = 0; j < s; ++j) {
      double cj = 0.0;
      for (int64_t ch = 0; ch < n_chunks; ++ch) cj += colsum[ch * panel + j];
      run_trace = std::max(run_trace - cj, 0.0);
      residual_trace[k + j] = run_trace;
      pivots[k + j] = P[j];
      if (stop_at < 0 && run_trace <= opt.trace_tol) stop_at = j;
    }
    if (stop_at >= 0 && stop_at + 1 < s) {  // trace tolerance reached inside the panel
      for (int64_t j = stop_at + 1; j < s; ++j) {
        pivots[k + j] = -1;
        residual_trace[k + j] = std::numeric_limits<double>::quiet_NaN();
      }
      for (int64_t i = 0; i < n; ++i)
        std::fill(L + i * ld + k + stop_at + 1, L + i * ld + k + s, 0.0);
      s = stop_at + 1;
    }
    k += s;
    if (stop_at >= 0) break;
    trace = 0.0;
    for (int64_t i = 0; i < n; ++i) trace += r[i];
  }
  *count = k;
  for (int64_t j = 0; pivot_factor && j < k; ++j) {
    const double* row = L + pivots[j] * ld;
    std::copy(row, row + k, pivot_factor + j * m);
  }
  return "";
}

}  // namespace

template <typename T>
std::string pivoted_cholesky(const T* x, int64_t n, int64_t d, double sigma, int64_t m,
                             const PivotedCholeskyOptions& opt, int64_t* pivots,
                             double* residual_trace, double* pivot_factor, double* factor,
                             int64_t* count, Executor* executor) {
  *count = 0;
  if (n < 0 || d < 0 || m < 0) return "negative dimension";
  std::fill(pivots, pivots + m, int64_t{-1});
  std::fill(residual_trace, residual_trace + m, std::numeric_limits<double>::quiet_NaN());
  if (pivot_factor) std::fill(pivot_factor, pivot_factor + m * m, 0.0);
  if (factor) std::fill(factor, factor + n * m, 0.0);
  double gamma = 0;
  if (auto e = gamma_from_sigma(sigma, &gamma); !e.empty()) return e;
  for (int64_t v : {n, d, m})
    if (v > blas::max_dim()) return "dimension " + std::to_string(v) + " exceeds the BLAS integer range";
  if (!(opt.min_pivot >= 0.0) || !std::isfinite(opt.min_pivot))
    return "min_pivot must be a finite number >= 0";
  if (std::isnan(opt.trace_tol)) return "trace_tol must not be NaN";
  if (n == 0 || m == 0) return "";
  try {
    return run<T>(x, n, d, gamma, m, opt, pivots, residual_trace, pivot_factor, factor, count,
                  executor);
  } catch (const InputError& e) {
    *count = 0;
    return e.what();
  } catch (const std::bad_alloc&) {
    std::ostringstream os;
    os << "out of memory: the factor needs n x min(m, n) = " << n << " x " << std::min(m, n)
       << " float64 values (select from a pool of fewer rows)";
    return os.str();
  } catch (const std::exception& e) {
    return std::string("internal error: ") + e.what();
  }
}

template std::string pivoted_cholesky<float>(const float*, int64_t, int64_t, double, int64_t,
                                             const PivotedCholeskyOptions&, int64_t*, double*,
                                             double*, double*, int64_t*, Executor*);
template std::string pivoted_cholesky<double>(const double*, int64_t, int64_t, double, int64_t,
                                              const PivotedCholeskyOptions&, int64_t*, double*,
                                              double*, double*, int64_t*, Executor*);

}  // namespace clipcore::nystrom
