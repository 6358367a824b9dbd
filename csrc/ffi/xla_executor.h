// Executor (gram/parallel.h) backed by XLA's CPU intra-op thread pool, so the
// handler's helper threads are the ones XLA already runs (no
// oversubscription). Falls back to plain std::threads where XLA offers no
// pool.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <utility>

#include "gram/parallel.h"
#include "xla/ffi/api/ffi.h"

namespace clipcore::ffi_util {

class XlaPoolExecutor final : public Executor {
 public:
  XlaPoolExecutor(xla::ffi::ThreadPool& pool, int max_helpers)
      : pool_(pool),
        pool_threads_(static_cast<int>(pool.num_threads())),
        max_helpers_(max_helpers),
        fallback_(pool_threads_ > 0 ? 0 : max_helpers) {}

  int helpers_available() const override {
    // With a pool of N threads, N helpers may run beside the caller (the
    // caller is either one of them, leaving N - 1 free, or an outside thread).
    return pool_threads_ > 0 ? std::min(max_helpers_, pool_threads_)
                             : fallback_.helpers_available();
  }

  void submit(std::function<void()> task) override {
    if (pool_threads_ > 0) {
      pool_.Schedule([t = std::move(task)]() { t(); });
    } else {
      fallback_.submit(std::move(task));
    }
  }

 private:
  xla::ffi::ThreadPool& pool_;
  int pool_threads_;
  int max_helpers_;
  StdThreadExecutor fallback_;
};

}  // namespace clipcore::ffi_util
