// Argument checks shared by the CPU FFI handlers (csrc/ffi/*.cc) and the CUDA
// ones (csrc/cuda/*.cu), so both platforms refuse the same inputs with the
// same messages: attribute names and values, the sigma value, the pivoted
// Cholesky outputs. Header-only; no CUDA, no threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "ffi/ffi_common.h"
#include "nystrom/pivoted_cholesky.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::ffi_util {

inline bool is_float(ffi::DataType t) { return t == ffi::DataType::F32 || t == ffi::DataType::F64; }

// "float32 [5, 4]"
inline std::string desc(const ffi::AnyBuffer& b) {
  return std::string(dtype_name(b.element_type())) + " " + shape_str(b.dimensions());
}

inline ffi::Error invalid(const char* op, const std::string& msg) {
  return ffi::Error::InvalidArgument(std::string(op) + ": " + msg);
}

// An unknown attribute refused, listing the known names (name_of(k) of each
// element k of `known`).
template <typename Known, typename NameOf>
ffi::Error only_known_attrs(const char* op, const ffi::Dictionary& attrs, const Known& known,
                            NameOf name_of) {
  for (std::string_view name : attrs) {
    bool ok = false;
    for (const auto& k : known) ok = ok || name_of(k) == name;
    if (!ok) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + std::string(name_of(k));
      return invalid(op, "unknown attribute '" + std::string(name) + "' (known: " + list + ")");
    }
  }
  return ffi::Error::Success();
}

// Only the listed attribute names.
inline ffi::Error check_attr_names(const char* op, const ffi::Dictionary& attrs,
                                   std::initializer_list<std::string_view> known) {
  return only_known_attrs(op, attrs, known, [](std::string_view k) { return k; });
}

// An optional integer attribute >= 0 (int64 or int32); unchanged when absent.
inline ffi::Error int_attr(const char* op, const ffi::Dictionary& attrs, std::string_view name,
                           int64_t* value) {
  if (!attrs.contains(name)) return ffi::Error::Success();
  if (attrs.contains<int64_t>(name)) {
    *value = *attrs.get<int64_t>(name);
  } else if (attrs.contains<int32_t>(name)) {
    *value = *attrs.get<int32_t>(name);
  } else {
    return invalid(op, "attribute '" + std::string(name) + "' must be an integer");
  }
  if (*value < 0)
    return invalid(op, "attribute '" + std::string(name) + "' must be >= 0, got " + std::to_string(*value));
  return ffi::Error::Success();
}

// A handler's attributes when all are optional integers >= 0: the names
// checked (an unknown one refused, listing these), then each read (left
// unchanged when absent).
inline ffi::Error int_attrs(const char* op, const ffi::Dictionary& attrs,
                            std::initializer_list<std::pair<std::string_view, int64_t*>> fields) {
  using Field = std::pair<std::string_view, int64_t*>;
  if (auto e = only_known_attrs(op, attrs, fields, [](const Field& f) { return f.first; }); e.failure())
    return e;
  for (const auto& f : fields)
    if (auto e = int_attr(op, attrs, f.first, f.second); e.failure()) return e;
  return ffi::Error::Success();
}

// An optional float attribute (float64 or float32), not NaN.
inline ffi::Error float_attr(const char* op, const ffi::Dictionary& attrs, std::string_view name,
                             double* value) {
  if (!attrs.contains(name)) return ffi::Error::Success();
  if (attrs.contains<double>(name)) {
    *value = *attrs.get<double>(name);
  } else if (attrs.contains<float>(name)) {
    *value = *attrs.get<float>(name);
  } else {
    return invalid(op, "attribute '" + std::string(name) + "' must be a float");
  }
  if (std::isnan(*value)) return invalid(op, "attribute '" + std::string(name) + "' is NaN");
  return ffi::Error::Success();
}

// The sigma operand's type and shape: one float32 or float64 value.
inline ffi::Error check_sigma_operand(const char* op, const ffi::AnyBuffer& sigma) {
  if (!is_float(sigma.element_type()) || sigma.element_count() != 1)
    return invalid(op, "sigma must be one float32 or float64 value (shape []), got " + desc(sigma));
  return ffi::Error::Success();
}

// The sigma value: positive and finite.
inline ffi::Error check_sigma_value(const char* op, double value) {
  if (std::isfinite(value) && value > 0.0) return ffi::Error::Success();
  std::ostringstream os;
  os << "sigma must be a positive finite number, got " << value;
  return invalid(op, os.str());
}

// The pivoted-Cholesky call (clipcore_pivoted_cholesky) before sigma is read:
// attributes, x [n, d] float32|float64, the outputs pivots [m] int32|int64,
// count [] int32|int64, residual_trace [m], pivot_factor [m, m] and factor
// [n, m] or [0, m] (float32|float64), and the factor's size.
struct PivotedCholeskyArgs {
  nystrom::PivotedCholeskyOptions opt;
  int64_t n = 0, d = 0, m = 0;
  bool want_factor = false;  // factor is [n, m] with n > 0
};

inline ffi::Error pivoted_cholesky_args(const char* op, const ffi::Dictionary& attrs, const ffi::AnyBuffer& x,
                                        const ffi::AnyBuffer& pivots, const ffi::AnyBuffer& count,
                                        const ffi::AnyBuffer& trace, const ffi::AnyBuffer& pfactor,
                                        const ffi::AnyBuffer& factor, PivotedCholeskyArgs* a) {
  if (auto e = check_attr_names(op, attrs, {"trace_tol", "min_pivot", "panel", "candidates", "block_rows",
                                            "num_threads"});
      e.failure())
    return e;
  auto& opt = a->opt;
  if (auto e = float_attr(op, attrs, "trace_tol", &opt.trace_tol); e.failure()) return e;
  if (auto e = float_attr(op, attrs, "min_pivot", &opt.min_pivot); e.failure()) return e;
  if (auto e = int_attr(op, attrs, "panel", &opt.panel); e.failure()) return e;
  if (auto e = int_attr(op, attrs, "candidates", &opt.candidates); e.failure()) return e;
  if (auto e = int_attr(op, attrs, "block_rows", &opt.block_rows); e.failure()) return e;
  if (auto e = int_attr(op, attrs, "num_threads", &opt.num_threads); e.failure()) return e;
  if (opt.min_pivot < 0 || !std::isfinite(opt.min_pivot))
    return invalid(op, "attribute 'min_pivot' must be finite and >= 0");

  const auto t = x.element_type();
  if (!is_float(t)) return invalid(op, std::string("x dtype must be float32 or float64, got ") + dtype_name(t));
  const auto xd = x.dimensions();
  if (xd.size() != 2) return invalid(op, "x must be rank 2 [n, d], got " + desc(x));
  const int64_t n = xd[0];
  const auto pd = pivots.dimensions();
  const auto pt = pivots.element_type();
  if (pd.size() != 1 || (pt != ffi::DataType::S32 && pt != ffi::DataType::S64))
    return invalid(op, "pivots output must be int32|int64 [m], got " + desc(pivots));
  const int64_t m = pd[0];
  const auto ct = count.element_type();
  if (count.dimensions().size() != 0 || (ct != ffi::DataType::S32 && ct != ffi::DataType::S64))
    return invalid(op, "count output must be an int32|int64 scalar [], got " + desc(count));
  const auto tr = trace.dimensions();
  if (tr.size() != 1 || tr[0] != m || !is_float(trace.element_type()))
    return invalid(op, "residual_trace output must be float32|float64 [m] with m = " + std::to_string(m) +
                           ", got " + desc(trace));
  const auto pf = pfactor.dimensions();
  if (pf.size() != 2 || pf[0] != m || pf[1] != m || !is_float(pfactor.element_type()))
    return invalid(op, "pivot_factor output must be float32|float64 [m, m] with m = " + std::to_string(m) +
                           ", got " + desc(pfactor));
  const auto fd = factor.dimensions();
  if (fd.size() != 2 || (fd[0] != n && fd[0] != 0) || fd[1] != m || !is_float(factor.element_type()))
    return invalid(op, "factor output must be float32|float64 [n, m] or [0, m] with n = " + std::to_string(n) +
                           ", m = " + std::to_string(m) + ", got " + desc(factor));
  if (const std::string e = nystrom::factor_size_error(n, m); !e.empty()) return invalid(op, e);
  a->n = n;
  a->d = xd[1];
  a->m = m;
  a->want_factor = fd[0] == n && n > 0;
  return ffi::Error::Success();
}

}  // namespace clipcore::ffi_util
