// Baseline x86-64 / portable build of the elementwise passes.
#define CLIPCORE_EW_NS generic
#include "nystrom/elementwise_impl.inc"
