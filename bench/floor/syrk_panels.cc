// float32 C(upper) = AᵀA for A [k, d] row-major, per chunk of k rows as the packed Gram core calls it:
// OpenBLAS ssyrk against GEMM panels of 128-column tile rows (csrc/gram/gram_block.h syrk_upper_tiled),
// on 1 and 2 threads (each thread its own rows, one-thread BLAS: the core's layout).
// Usage: ./panels d k chunks   e.g. ./panels 1024 4096 16   (see README.md)
#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
using clk = std::chrono::steady_clock;
static void syrk(int d, int k, const float* a, float* c) {
  scipy_cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, k, 1.f, a, d, 0.f, c, d);
}
static void panels(int d, int k, const float* a, float* c, int tile) {
  for (int i0 = 0; i0 < d; i0 += tile) {
    int mi = d - i0 < tile ? d - i0 : tile;
    scipy_cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mi, d - i0, k, 1.f, a + i0, d, a + i0, d, 0.f,
                      c + (size_t)i0 * d + i0, d);
  }
}
int main(int argc, char** argv) {
  int d = atoi(argv[1]), k = atoi(argv[2]), chunks = atoi(argv[3]);
  scipy_openblas_set_num_threads(1);
  std::vector<float> A((size_t)chunks * k * d);
  for (size_t i = 0; i < A.size(); ++i) A[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f;
  double useful = (double)chunks * k * (double)d * (d + 1);  // FLOPs of the upper triangle
  for (int threads : {1, 2}) {
    for (int variant = 0; variant < 3; ++variant) {
      auto work = [&](int t) {
        std::vector<float> C((size_t)d * d);
        for (int c = t; c < chunks; c += threads) {
          const float* a = A.data() + (size_t)c * k * d;
          if (variant == 0) syrk(d, k, a, C.data());
          else panels(d, k, a, C.data(), variant == 1 ? 128 : 256);
        }
      };
      double best = 1e9;
      for (int rep = 0; rep < 3; ++rep) {
        auto s = clk::now();
        std::vector<std::thread> th;
        for (int t = 0; t < threads; ++t) th.emplace_back(work, t);
        for (auto& x : th) x.join();
        double dt = std::chrono::duration<double>(clk::now() - s).count();
        best = dt < best ? dt : best;
      }
      const char* name = variant == 0 ? "ssyrk" : (variant == 1 ? "panels 128" : "panels 256");
      printf("d=%d k=%d chunks=%d threads=%d %-11s %.4f s  %.1f useful GFLOP/s\n", d, k, chunks, threads, name, best,
             useful / best / 1e9);
    }
  }
}
