// One-thread rates of C(upper) += A^T A (A [k, n] row-major): dsyrk, dsyrk/dgemm blocks, full dgemm.
// Usage: ./syrk n k reps (see README.md)
#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include <random>
#include <cstdlib>
using clk = std::chrono::steady_clock;
// acc(upper) += A^T A, A row-major [k, n]
void syrk(int n,int k,const double*a,double*c){scipy_cblas_dsyrk(CblasRowMajor,CblasUpper,CblasTrans,n,k,1.0,a,n,1.0,c,n);}
void blocked(int n,int k,const double*a,double*c,int P){
  for(int i0=0;i0<n;i0+=P){int pi=std::min(P,n-i0);
    scipy_cblas_dsyrk(CblasRowMajor,CblasUpper,CblasTrans,pi,k,1.0,a+i0,n,1.0,c+(size_t)i0*n+i0,n);
    int j0=i0+pi; if(j0<n) scipy_cblas_dgemm(CblasRowMajor,CblasTrans,CblasNoTrans,pi,n-j0,k,1.0,a+i0,n,a+j0,n,1.0,c+(size_t)i0*n+j0,n);
  }}
void gemmfull(int n,int k,const double*a,double*c){scipy_cblas_dgemm(CblasRowMajor,CblasTrans,CblasNoTrans,n,n,k,1.0,a,n,a,n,1.0,c,n);}
int main(int argc,char**argv){
  int n=atoi(argv[1]), k=atoi(argv[2]), reps=atoi(argv[3]);
  scipy_openblas_set_num_threads(1);
  std::vector<double> a((size_t)n*k), c((size_t)n*n,0.0);
  std::mt19937 g(0); std::uniform_real_distribution<double> u(0,1); for(auto&x:a)x=u(g);
  auto T=[&](auto f){f(); auto t=clk::now(); for(int r=0;r<reps;++r)f(); return std::chrono::duration<double>(clk::now()-t).count()/reps;};
  double fl=(double)n*n*k; // syrk flops ~ n^2 k
  double ts=T([&]{syrk(n,k,a.data(),c.data());});
  printf("dsyrk    %.4f s  %.1f GF/s\n",ts,fl/ts/1e9);
  for(int P: {128,256,384,512,768,1024}){double tb=T([&]{blocked(n,k,a.data(),c.data(),P);}); printf("blk P=%4d %.4f s  %.1f GF/s(eff)\n",P,tb,fl/tb/1e9);}
  double tg=T([&]{gemmfull(n,k,a.data(),c.data());}); printf("dgemm full %.4f s %.1f GF/s(raw)\n",tg,2*fl/tg/1e9);
}
