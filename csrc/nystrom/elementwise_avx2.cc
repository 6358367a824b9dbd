// AVX2 + FMA build of the elementwise passes (compiled with -mavx2 -mfma;
// only called when the CPU has both, see elementwise.cc).
#define CLIPCORE_EW_NS avx2
#include "nystrom/elementwise_impl.inc"
