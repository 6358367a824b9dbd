// Minimal fork-join over chunks with a pluggable thread source.
//
// The caller always takes part, helpers pull chunks from a shared counter, and
// a helper that starts after the work is gone returns without touching
// anything but reference-counted state. So the executor may run helpers late,
// inline, or never (busy pool) without deadlock or lost work.
#pragma once

#include <cstdint>
#include <functional>

namespace clipcore {

// A source of helper threads.
class Executor {
 public:
  virtual ~Executor() = default;
  // How many helpers can usefully run beside the caller (>= 0).
  virtual int helpers_available() const = 0;
  // Run `task` on some thread, now or later (even inline).
  virtual void submit(std::function<void()> task) = 0;
};

// Spawns one std::thread per submitted task, joins them all on destruction.
class StdThreadExecutor final : public Executor {
 public:
  explicit StdThreadExecutor(int max_helpers);
  ~StdThreadExecutor() override;
  int helpers_available() const override { return max_helpers_; }
  void submit(std::function<void()> task) override;

 private:
  struct Impl;
  Impl* impl_;
  int max_helpers_;
};

// A fixed set of worker threads that live for the whole process, for entry
// points called once per block from Python (the host twins of the FFI
// targets). Spawning threads per call gave every call fresh glibc malloc
// arenas whose freed buffers stayed resident: a streamed Nyström pass grew
// RSS by ~48 MB per call. Tasks queue; the fork-join above tolerates helpers
// that start late.
class PooledExecutor final : public Executor {
 public:
  explicit PooledExecutor(int workers);
  ~PooledExecutor() override;  // never run for host_executor()'s pool (leaked on purpose)
  int helpers_available() const override { return workers_; }
  void submit(std::function<void()> task) override;

 private:
  struct Impl;
  Impl* impl_;
  int workers_;
};

// The process-wide pool of the host entries, started on first use with
// `workers` threads (later calls reuse it whatever they ask; a forked child
// starts its own).
Executor* host_executor(int workers);

// Number of CPUs this process may run on (sched affinity), at least 1.
int available_cpus();

// Calls body(slot, chunk) once for each chunk in [0, n_chunks), spread over
// at most `participants` threads: the caller (slot 0) plus up to
// participants - 1 helpers from `executor` (may be null). Each slot is used by
// one thread at a time, so per-slot state needs no locking. Returns after
// every started chunk has finished. The first exception thrown by `body` is
// rethrown here (remaining chunks are skipped).
void parallel_chunks(int64_t n_chunks, int participants, Executor* executor,
                     const std::function<void(int slot, int64_t chunk)>& body);

}  // namespace clipcore
