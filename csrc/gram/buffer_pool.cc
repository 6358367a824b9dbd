#include "gram/buffer_pool.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace clipcore {

namespace {

constexpr size_t kAlign = 64;

struct Pool {
  std::mutex mu;
  std::vector<std::pair<size_t, std::byte*>> free;  // (bytes, ptr)
  size_t cached = 0;
  size_t cap = 0;

  Pool() {
    cap = size_t{128} << 20;
    if (const char* env = std::getenv("CLIPCORE_BUFFER_CACHE_MB")) {
      char* end = nullptr;
      long v = std::strtol(env, &end, 10);
      if (end != env && v >= 0) cap = static_cast<size_t>(v) << 20;
    }
  }
  ~Pool() {
    for (auto& f : free) std::free(f.second);
  }
};

Pool& pool() {
  static Pool* p = new Pool;  // leaked on purpose: usable during exit
  return *p;
}

size_t round_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

void BufferPool::Release::operator()(std::byte* p) const {
  if (p == nullptr) return;
  Pool& pl = pool();
  {
    std::lock_guard<std::mutex> lock(pl.mu);
    if (pl.cached + bytes <= pl.cap) {
      pl.free.emplace_back(bytes, p);
      pl.cached += bytes;
      return;
    }
  }
  std::free(p);
}

BufferPool::Buffer BufferPool::acquire(size_t bytes) {
  bytes = round_up(bytes == 0 ? kAlign : bytes);
  Pool& pl = pool();
  {
    std::lock_guard<std::mutex> lock(pl.mu);
    // Best fit among buffers no more than twice the request.
    size_t best = pl.free.size();
    for (size_t i = 0; i < pl.free.size(); ++i) {
      const size_t sz = pl.free[i].first;
      if (sz >= bytes && sz <= 2 * bytes &&
          (best == pl.free.size() || sz < pl.free[best].first))
        best = i;
    }
    if (best != pl.free.size()) {
      auto [sz, p] = pl.free[best];
      pl.free[best] = pl.free.back();
      pl.free.pop_back();
      pl.cached -= sz;
      return Buffer(p, Release{sz});
    }
  }
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(static_cast<std::byte*>(p), Release{bytes});
}

size_t BufferPool::clear() {
  Pool& pl = pool();
  std::vector<std::pair<size_t, std::byte*>> victims;
  {
    std::lock_guard<std::mutex> lock(pl.mu);
    victims.swap(pl.free);
    pl.cached = 0;
  }
  size_t n = 0;
  for (auto& v : victims) {
    n += v.first;
    std::free(v.second);
  }
  return n;
}

size_t BufferPool::cached_bytes() {
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mu);
  return pl.cached;
}

size_t BufferPool::max_cached_bytes() { return pool().cap; }

}  // namespace clipcore
