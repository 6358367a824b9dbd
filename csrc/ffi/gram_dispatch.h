// dtype dispatch for gram_accumulate: validates the XLA buffers and routes
// (Phi dtype) x (G dtype) in {F32, F64}^2 to the typed implementation.
#pragma once

#include "gram/gram_accumulate.h"
#include "gram/parallel.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::ffi_util {

xla::ffi::Error gram_accumulate_dispatch(
    xla::ffi::AnyBuffer g_in, xla::ffi::AnyBuffer phi,
    xla::ffi::Result<xla::ffi::AnyBuffer> g_out,
    const gram::Options& options, Executor* executor);

}  // namespace clipcore::ffi_util
