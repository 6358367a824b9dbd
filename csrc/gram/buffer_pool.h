// Reusable scratch buffers for the per-thread accumulators.
//
// A Gram accumulation inside a loop over row blocks needs the same few
// [D, D] buffers on every call; allocating (and page-faulting) them each time
// costs several percent at D ~ 1024. Released buffers are kept up to a total
// cap and handed out again; beyond the cap they are freed.
#pragma once

#include <cstddef>
#include <memory>

namespace clipcore {

class BufferPool {
 public:
  struct Release {
    size_t bytes = 0;
    void operator()(std::byte* p) const;
  };
  using Buffer = std::unique_ptr<std::byte[], Release>;

  // A buffer of at least `bytes` bytes, 64-byte aligned, contents undefined.
  // Throws std::bad_alloc.
  static Buffer acquire(size_t bytes);

  // Frees every cached buffer; returns the bytes freed.
  static size_t clear();

  // Bytes currently cached (not in use).
  static size_t cached_bytes();

  // The cap on cached bytes (default 128 MiB; env CLIPCORE_BUFFER_CACHE_MB).
  static size_t max_cached_bytes();
};

template <typename T>
T* as(const BufferPool::Buffer& b) {
  return reinterpret_cast<T*>(b.get());
}

}  // namespace clipcore
