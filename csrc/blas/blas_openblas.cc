// scipy-openblas32 backend of blas.h. Its cblas.h declares the symbols with
// the `scipy_` prefix already applied (scipy_cblas_ssyrk, ...), 32-bit ints.
#include "blas/blas.h"

#include <cblas.h>

#include <climits>
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

int get_num_threads() { return scipy_openblas_get_num_threads(); }

void set_num_threads(int n) { scipy_openblas_set_num_threads(n < 1 ? 1 : n); }

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
