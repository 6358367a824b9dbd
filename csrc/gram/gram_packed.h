// Typed implementation: G_out = G_in + Z^T Z with Z = [f(A) | f(B)] packed on
// the fly, f = row L2-normalisation (the cosine kernel's feature map) or the
// identity. Same threading and float64 accumulation as gram_accumulate; the
// packed rows live only in a per-thread scratch of one chunk, so neither the
// normalised inputs nor their concatenation is ever written to memory.
#pragma once

#include <cstdint>
#include <string>

#include "gram/gram_accumulate.h"
#include "gram/parallel.h"

namespace clipcore::gram {

// a: row-major [rows, da]; b: row-major [rows, db] or nullptr (db = 0);
// g_in, g_out: row-major [da + db, da + db] (g_out may alias g_in).
// normalize: divide each row of a and of b by its own L2 norm (computed in
// float64; a zero row stays zero).
template <typename TIn, typename TG>
std::string gram_accumulate_packed(const TIn* a, int64_t da, const TIn* b,
                                   int64_t db, int64_t rows, bool normalize,
                                   const TG* g_in, TG* g_out,
                                   const Options& opt, Executor* executor);

}  // namespace clipcore::gram
