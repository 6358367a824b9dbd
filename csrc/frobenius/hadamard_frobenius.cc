#include "frobenius/hadamard_frobenius.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <sstream>
#include <type_traits>
#include <vector>

#include "blas/blas.h"
#include "gram/buffer_pool.h"
#include "gram/gram_accumulate.h"
#include "nystrom/common.h"
#include "nystrom/elementwise.h"
#include "nystrom/gauss_pair.h"
#include "nystrom/nystrom_accumulate.h"

namespace clipcore::frobenius {

namespace {

using nystrom::InputError;

// One paired set and its per-row scalars: Gaussian: the scaled squared norm
// |x|^2 / sigma_x^2 + |t|^2 / sigma_t^2 (the concatenation's); cosine: the
// inverse norms of x and t.
template <typename T>
struct Side {
  PairedRows<T> rows;
  const char* xname;
  const char* tname;
  std::vector<double> norm, inv_x, inv_t;
};

struct Scales {
  double inv_x2 = 1.0, inv_t2 = 1.0;  // 1 / sigma^2 (Gaussian)
  double floor = 0.0;                 // rounding floor of the GEMM form, length dx + dt
  bool gaussian = true;
};

// exp(e) as the vectorised passes give it: flushed to 0 below their range.
inline double exp_as_tile(double e, bool f32) {
  if (f32) return e < -87.0 ? 0.0 : static_cast<double>(std::exp(static_cast<float>(e)));
  return e < -708.0 ? 0.0 : std::exp(e);
}

// The per-row scalars of rows [i0, i1) of one side (throws InputError naming the operand and row).
template <typename T>
void row_scalars(Side<T>& s, int64_t i0, int64_t i1, const Scales& sc) {
  const PairedRows<T>& r = s.rows;
  std::vector<double> nx(static_cast<size_t>(i1 - i0)), nt(nx.size());
  nystrom::row_sq_norms(r.x + i0 * r.dx, i1 - i0, r.dx, r.dx, nx.data(), s.xname, i0);
  nystrom::row_sq_norms(r.t + i0 * r.dt, i1 - i0, r.dt, r.dt, nt.data(), s.tname, i0);
  for (int64_t i = i0; i < i1; ++i) {
    const double a = nx[i - i0], b = nt[i - i0];
    if (sc.gaussian) {
      const double z = a * sc.inv_x2 + b * sc.inv_t2;
      if (!(z <= nystrom::max_sq_norm<T>())) {
        std::ostringstream os;
        os << s.xname << " / " << s.tname << " row " << i << ": |x|^2 / sigma_x^2 + |t|^2 / sigma_t^2 = " << z
           << " is too large for " << (std::is_same_v<T, float> ? "float32" : "float64")
           << " kernel tiles (a bandwidth too small for these norms)";
        throw InputError(os.str());
      }
      s.norm[i] = z;
    } else {
      if (!(a > 0.0) || !(b > 0.0)) {
        std::ostringstream os;
        os << (a > 0.0 ? s.tname : s.xname) << " row " << i << " has zero norm (the cosine kernel needs non-zero rows)";
        throw InputError(os.str());
      }
      s.inv_x[i] = 1.0 / std::sqrt(a);
      s.inv_t[i] = 1.0 / std::sqrt(b);
    }
  }
}

// Pairs under the rounding floor (and any pair whose value the GEMM form's
// rounding could move, when the bandwidth makes that matter) recomputed from
// the rows: the correction to add to the vectorised pass's sum.
template <typename T>
double gaussian_refinement(const T* dots, int64_t ld, const Side<T>& A, int64_t i0, int64_t ti, const Side<T>& B,
                           int64_t j0, int64_t tj, bool diagonal, const Scales& sc) {
  double amax = 0, bmax = 0;
  for (int64_t i = 0; i < ti; ++i) amax = std::max(amax, A.norm[i0 + i]);
  for (int64_t j = 0; j < tj; ++j) bmax = std::max(bmax, B.norm[j0 + j]);
  if (!nystrom::rounding_matters(amax + bmax, sc.floor, 1.0)) return 0.0;
  const bool f32 = std::is_same_v<T, float>;
  const double lo = f32 ? -100.0 : -750.0;
  const PairedRows<T>&ra = A.rows, &rb = B.rows;
  double fix = 0.0;
  for (int64_t i = 0; i < ti; ++i) {
    for (int64_t j = 0; j < tj; ++j) {
      if (diagonal && i == j) continue;  // a point with itself stays exactly 1
      const double ab = A.norm[i0 + i] + B.norm[j0 + j];
      const double sq_gemm = ab - 2.0 * static_cast<double>(dots[i * ld + j]);
      if (!nystrom::may_exceed(sq_gemm, ab, sc.floor, 1.0, lo)) continue;
      const double sq =
          nystrom::exact_sq_dist(ra.x + (i0 + i) * ra.dx, rb.x + (j0 + j) * rb.dx, ra.dx) * sc.inv_x2 +
          nystrom::exact_sq_dist(ra.t + (i0 + i) * ra.dt, rb.t + (j0 + j) * rb.dt, ra.dt) * sc.inv_t2;
      const double e = std::max(nystrom::pair_exponent(sq, 1.0), lo);
      const double was = nystrom::below_rounding_floor(sq_gemm, ab, sc.floor) ? 1.0 : exp_as_tile(-sq_gemm, f32);
      fix += exp_as_tile(e, f32) - was;
    }
  }
  return fix;
}

// sum over one tile pair of k_X^2 k_T^2 (Gaussian): two GEMMs into `dots`, one exp pass.
template <typename T>
double gaussian_pair(const Side<T>& A, int64_t i0, int64_t ti, const Side<T>& B, int64_t j0, int64_t tj,
                     bool diagonal, const Scales& sc, T* dots) {
  const PairedRows<T>&ra = A.rows, &rb = B.rows;
  blas::gemm(false, true, ti, tj, ra.dx, static_cast<T>(sc.inv_x2), ra.x + i0 * ra.dx, ra.dx, rb.x + j0 * rb.dx,
             rb.dx, T(0), dots, tj);
  blas::gemm(false, true, ti, tj, ra.dt, static_cast<T>(sc.inv_t2), ra.t + i0 * ra.dt, ra.dt, rb.t + j0 * rb.dt,
             rb.dt, T(1), dots, tj);
  // k_X^2 k_T^2 = exp(-1 * |z - z'|^2), z = [x / sigma_x, t / sigma_t]
  const double s = nystrom::gauss_tile_sum(dots, tj, A.norm.data() + i0, B.norm.data() + j0, ti, tj, 1.0, sc.floor,
                                           diagonal ? 0 : -1, nullptr);
  return s + gaussian_refinement(dots, tj, A, i0, ti, B, j0, tj, diagonal, sc);
}

// sum over one tile pair of cos_X^2 cos_T^2: two GEMMs, products in double.
template <typename T>
double cosine_pair(const Side<T>& A, int64_t i0, int64_t ti, const Side<T>& B, int64_t j0, int64_t tj,
                   bool diagonal, T* dx, T* dt) {
  const PairedRows<T>&ra = A.rows, &rb = B.rows;
  blas::gemm(false, true, ti, tj, ra.dx, T(1), ra.x + i0 * ra.dx, ra.dx, rb.x + j0 * rb.dx, rb.dx, T(0), dx, tj);
  blas::gemm(false, true, ti, tj, ra.dt, T(1), ra.t + i0 * ra.dt, ra.dt, rb.t + j0 * rb.dt, rb.dt, T(0), dt, tj);
  double total = 0.0;
  for (int64_t i = 0; i < ti; ++i) {
    const double ax = A.inv_x[i0 + i], at = A.inv_t[i0 + i];
    const double* bx = B.inv_x.data() + j0;
    const double* bt = B.inv_t.data() + j0;
    const T* rx = dx + i * tj;
    const T* rt = dt + i * tj;
    double row = 0.0;
    for (int64_t j = 0; j < tj; ++j) {
      const double v = (static_cast<double>(rx[j]) * ax * bx[j]) * (static_cast<double>(rt[j]) * at * bt[j]);
      row += v * v;
    }
    if (diagonal) {  // a point with itself: exactly 1
      const double v = (static_cast<double>(rx[i]) * ax * bx[i]) * (static_cast<double>(rt[i]) * at * bt[i]);
      row += 1.0 - v * v;
    }
    total += row;
  }
  return total;
}

template <typename T>
std::string check_args(const PairedRows<T>& a, const PairedRows<T>* b, const HadamardOptions& opt, Scales* sc) {
  auto bad = [](const PairedRows<T>& r) { return r.n < 0 || r.dx < 0 || r.dt < 0; };
  if (bad(a) || (b != nullptr && bad(*b))) return "negative dimension";
  if (b != nullptr && (b->dx != a.dx || b->dt != a.dt)) {
    std::ostringstream os;
    os << "the second set's dimensions (y [" << b->n << ", " << b->dx << "], u [" << b->n << ", " << b->dt
       << "]) differ from the first's (x [" << a.n << ", " << a.dx << "], t [" << a.n << ", " << a.dt << "])";
    return os.str();
  }
  const int64_t most = std::max({a.n, a.dx, a.dt, b != nullptr ? b->n : 0});
  if (most > blas::max_dim()) return "dimension exceeds the BLAS integer range";
  sc->gaussian = opt.kernel == ProductKernel::kGaussian;
  if (!sc->gaussian && opt.kernel != ProductKernel::kCosine) return "kernel must be 0 (Gaussian) or 1 (cosine)";
  if (sc->gaussian) {
    double gx = 0, gt = 0;
    if (auto e = nystrom::gamma_from_sigma(opt.sigma_x, &gx); !e.empty()) return "sigma_x: " + e;
    if (auto e = nystrom::gamma_from_sigma(opt.sigma_t, &gt); !e.empty()) return "sigma_t: " + e;
    sc->inv_x2 = 2.0 * gx;
    sc->inv_t2 = 2.0 * gt;
    if (!std::isfinite(sc->inv_x2) || !std::isfinite(sc->inv_t2)) return "a bandwidth is too small (1 / sigma^2 overflows)";
  }
  sc->floor = nystrom::rounding_floor(std::numeric_limits<T>::epsilon(), a.dx + a.dt);
  return "";
}

template <typename T>
Side<T> make_side(const PairedRows<T>& r, const char* xn, const char* tn, bool gaussian) {
  Side<T> s{r, xn, tn, {}, {}, {}};
  const size_t n = static_cast<size_t>(r.n);
  if (gaussian) s.norm.resize(n);
  else s.inv_x.resize(n), s.inv_t.resize(n);
  return s;
}

}  // namespace

template <typename T>
std::string hadamard_sq_frobenius(const PairedRows<T>& a, const PairedRows<T>* b, const HadamardOptions& opt,
                                  double* out, Executor* executor) {
  *out = 0.0;
  Scales sc;
  if (auto e = check_args(a, b, opt, &sc); !e.empty()) return e;
  const bool cross = b != nullptr;
  const int64_t n = a.n, p = cross ? b->n : a.n;
  if (n == 0 || p == 0) return "";
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(opt.tile_rows > 0 ? opt.tile_rows : 512, std::max(n, p)));
  const int64_t nbx = (n + t - 1) / t, nby = (p + t - 1) / t;
  const int64_t units = cross ? nbx * nby : nbx;
  int threads = opt.num_threads > 0 ? static_cast<int>(std::min<int64_t>(opt.num_threads, 1024))
                                    : gram::default_num_threads();
  if (double(n) * double(p) * double(a.dx + a.dt + 8) < double(1 << 22) && opt.num_threads <= 0) threads = 1;
  const int participants = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, units)));
  try {
    const blas::ThreadsScope blas_threads(1);
    Side<T> A = make_side(a, "x", "t", sc.gaussian);
    Side<T> B = cross ? make_side(*b, "y", "u", sc.gaussian) : Side<T>{};
    parallel_chunks(nbx + (cross ? nby : 0), participants, executor, [&](int, int64_t u) {
      const bool of_b = u >= nbx;
      const int64_t I = of_b ? u - nbx : u, rows = of_b ? p : n;
      row_scalars(of_b ? B : A, I * t, std::min(rows, I * t + t), sc);
    });
    const Side<T>& Bs = cross ? B : A;
    std::vector<double> unit_sums(static_cast<size_t>(units), 0.0);
    std::vector<BufferPool::Buffer> bufs(participants);
    parallel_chunks(units, participants, executor, [&](int s, int64_t u) {
      if (!bufs[s]) bufs[s] = BufferPool::acquire(sizeof(T) * t * t * (sc.gaussian ? 1 : 2));
      T* buf = as<T>(bufs[s]);
      const int64_t I = cross ? u / nby : u;
      const int64_t J_begin = cross ? u % nby : I, J_end = cross ? J_begin + 1 : nby;
      const int64_t i0 = I * t, ti = std::min(n, i0 + t) - i0;
      double total = 0.0;
      for (int64_t J = J_begin; J < J_end; ++J) {
        const int64_t j0 = J * t, tj = std::min(p, j0 + t) - j0;
        const bool diagonal = !cross && J == I;
        const double s_ij = sc.gaussian ? gaussian_pair(A, i0, ti, Bs, j0, tj, diagonal, sc, buf)
                                        : cosine_pair(A, i0, ti, Bs, j0, tj, diagonal, buf, buf + t * t);
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

template std::string hadamard_sq_frobenius<float>(const PairedRows<float>&, const PairedRows<float>*,
                                                  const HadamardOptions&, double*, Executor*);
template std::string hadamard_sq_frobenius<double>(const PairedRows<double>&, const PairedRows<double>*,
                                                   const HadamardOptions&, double*, Executor*);

}  // namespace clipcore::frobenius
