// One-thread rate of the float32 kernel-tile GEMM [t, 512] x [512, 2000]. Usage: ./tile t (see README.md)
#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <cstdlib>
using clk = std::chrono::steady_clock;
int main(int argc,char**argv){
  int t=atoi(argv[1]), m=2000, d=512; int reps=20;
  scipy_openblas_set_num_threads(1);
  std::vector<float> B((size_t)t*d,0.5f), L((size_t)m*d,0.25f), out((size_t)t*m);
  auto f=[&]{scipy_cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,t,m,d,1.f,B.data(),d,L.data(),d,0.f,out.data(),m);};
  f(); auto s=clk::now(); for(int r=0;r<reps;++r)f(); double dt=std::chrono::duration<double>(clk::now()-s).count()/reps;
  printf("tile rows %d: %.5f s  %.1f GF/s\n",t,dt,2.0*t*m*d/dt/1e9);
}
