// scipy-openblas32 backend of blas.h. Its cblas.h declares the symbols with
// the `scipy_` prefix already applied (scipy_cblas_ssyrk, ...), 32-bit ints.
#include "blas/blas.h"

#include <cblas.h>

#include <climits>
#include <mutex>
#include <sstream>

namespace clipcore::blas {

int64_t max_dim() { return static_cast<int64_t>(INT_MAX); }

void syrk_upper_ata(int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, float beta, float* c, int64_t ldc) {
  scipy_cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(n),
                    static_cast<int>(k), alpha, a, static_cast<int>(lda), beta,
                    c, static_cast<int>(ldc));
}

void syrk_upper_ata(int64_t n, int64_t k, double alpha, const double* a,
                    int64_t lda, double beta, double* c, int64_t ldc) {
  scipy_cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(n),
                    static_cast<int>(k), alpha, a, static_cast<int>(lda), beta,
                    c, static_cast<int>(ldc));
}

namespace {
inline int ld(int64_t v) { return static_cast<int>(v < 1 ? 1 : v); }
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                    static_cast<int>(n), static_cast<int>(k), alpha, a, ld(lda),
                    b, ld(ldb), beta, c, ld(ldc));
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          double alpha, const double* a, int64_t lda, const double* b,
          int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  scipy_cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                    static_cast<int>(n), static_cast<int>(k), alpha, a, ld(lda),
                    b, ld(ldb), beta, c, ld(ldc));
}

void gemv(int64_t m, int64_t n, double alpha, const double* a, int64_t lda,
          const double* x, double beta, double* y) {
  if (m <= 0) return;
  if (n <= 0) {
    for (int64_t i = 0; i < m; ++i) y[i] = beta == 0.0 ? 0.0 : beta * y[i];
    return;
  }
  scipy_cblas_dgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(m),
                    static_cast<int>(n), alpha, a, ld(lda), x, 1, beta, y, 1);
}

void trsm_right_lower_trans(int64_t m, int64_t n, const double* t, int64_t ldt,
                            double* b, int64_t ldb) {
  if (m <= 0 || n <= 0) return;
  scipy_cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans,
                    CblasNonUnit, static_cast<int>(m), static_cast<int>(n), 1.0,
                    t, ld(ldt), b, ld(ldb));
}

int get_num_threads() { return scipy_openblas_get_num_threads(); }

void set_num_threads(int n) { scipy_openblas_set_num_threads(n < 1 ? 1 : n); }

namespace {
std::mutex g_scope_mu;
int g_scope_depth = 0;
int g_scope_saved = 0;
}  // namespace

ThreadsScope::ThreadsScope(int n) {
  std::lock_guard<std::mutex> lock(g_scope_mu);
  if (g_scope_depth++ == 0) g_scope_saved = get_num_threads();
  if (get_num_threads() != n) set_num_threads(n);
}

ThreadsScope::~ThreadsScope() {
  std::lock_guard<std::mutex> lock(g_scope_mu);
  if (--g_scope_depth == 0 && get_num_threads() != g_scope_saved) set_num_threads(g_scope_saved);
}

std::string info() {
  std::ostringstream os;
  const char* config = scipy_openblas_get_config();
  const char* core = scipy_openblas_get_corename();
  os << "scipy-openblas32: " << (config ? config : "?")
     << "; core=" << (core ? core : "?")
     << "; openblas_threads=" << scipy_openblas_get_num_threads()
     << "; openblas_procs=" << scipy_openblas_get_num_procs();
  return os.str();
}

}  // namespace clipcore::blas
