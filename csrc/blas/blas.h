// Thin, prefix-agnostic wrappers over the BLAS routines the compiled core uses.
//
// Only this directory knows which BLAS is linked (scipy-openblas32, whose
// symbols carry a `scipy_` prefix and whose integers are 32-bit). Everything
// above it calls these functions with int64 sizes; the wrappers check that the
// sizes fit the BLAS integer type.
#pragma once

#include <cstdint>
#include <string>

namespace clipcore::blas {

// Largest dimension / leading dimension the linked BLAS accepts.
int64_t max_dim();

// C(upper) = alpha * A^T A + beta * C(upper) where A is a row-major [k, n]
// matrix with leading dimension lda (>= n) and C is row-major [n, n] with
// leading dimension ldc. Only the upper triangle (i <= j) of C is referenced
// and written. Requires n, k, lda, ldc <= max_dim(); k may be 0.
void syrk_upper_ata(int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, float beta, float* c, int64_t ldc);
void syrk_upper_ata(int64_t n, int64_t k, double alpha, const double* a,
                    int64_t lda, double beta, double* c, int64_t ldc);

// C = alpha * op(A) op(B) + beta * C, all row-major. C is [m, n]; op(A) is
// [m, k] (A itself [k, m] when trans_a), op(B) is [k, n] (B itself [n, k]
// when trans_b). Leading dimensions are clamped to >= 1 (an empty operand is
// never read). m, n, k, lda, ldb, ldc <= max_dim().
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          double alpha, const double* a, int64_t lda, const double* b,
          int64_t ldb, double beta, double* c, int64_t ldc);

// y = alpha * A x + beta * y with A row-major [m, n] (lda), x [n], y [m].
void gemv(int64_t m, int64_t n, double alpha, const double* a, int64_t lda,
          const double* x, double beta, double* y);

// B = B * inv(T)^T for B row-major [m, n] (ldb) and T row-major [n, n] (ldt)
// lower triangular with a non-zero diagonal (the right-looking Cholesky
// column solve: rows of B become coordinates in the basis whose Gram factor
// is T).
void trsm_right_lower_trans(int64_t m, int64_t n, const double* t, int64_t ldt,
                            double* b, int64_t ldb);

// Threads OpenBLAS itself uses for one call (process-wide setting of the
// linked library copy).
int get_num_threads();
void set_num_threads(int n);

// Sets OpenBLAS's thread count while the object lives; when the outermost
// scope closes, the count it found is restored. The setting is process-wide,
// and scipy's LAPACK can resolve its BLAS symbols (the same scipy_ names) to
// this library copy: a Gram accumulation that left it at one thread made
// every later scipy.linalg call in the process single-threaded (a 5000×5000
// ?sytrd: 9.3 s instead of 4.5 s on 2 cores).
class ThreadsScope {
 public:
  explicit ThreadsScope(int n);
  ~ThreadsScope();
  ThreadsScope(const ThreadsScope&) = delete;
  ThreadsScope& operator=(const ThreadsScope&) = delete;
};

// Human-readable description of the linked BLAS (config, core, threads).
std::string info();

}  // namespace clipcore::blas
