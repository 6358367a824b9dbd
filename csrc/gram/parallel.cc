#include "gram/parallel.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace clipcore {

struct StdThreadExecutor::Impl {
  std::vector<std::thread> threads;
};

StdThreadExecutor::StdThreadExecutor(int max_helpers)
    : impl_(new Impl), max_helpers_(std::max(0, max_helpers)) {}

StdThreadExecutor::~StdThreadExecutor() {
  for (auto& t : impl_->threads) t.join();
  delete impl_;
}

void StdThreadExecutor::submit(std::function<void()> task) {
  try {
    impl_->threads.emplace_back(std::move(task));
  } catch (const std::system_error&) {
    task();  // could not start a thread: run it here
  }
}

struct PooledExecutor::Impl {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  std::vector<std::thread> threads;
  bool stop = false;
};

PooledExecutor::PooledExecutor(int workers) : impl_(new Impl), workers_(0) {
  Impl* im = impl_;
  for (int i = 0; i < std::max(0, workers); ++i) {
    try {
      im->threads.emplace_back([im] {
        for (;;) {
          std::function<void()> task;
          {
            std::unique_lock<std::mutex> lock(im->mu);
            im->cv.wait(lock, [im] { return im->stop || !im->queue.empty(); });
            if (im->queue.empty()) return;  // stop requested and nothing left
            task = std::move(im->queue.front());
            im->queue.pop_front();
          }
          task();
        }
      });
      ++workers_;
    } catch (const std::system_error&) {
      break;  // fewer workers: the caller does more of the work
    }
  }
}

PooledExecutor::~PooledExecutor() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
  delete impl_;
}

void PooledExecutor::submit(std::function<void()> task) {
  if (workers_ == 0) {
    task();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back(std::move(task));
  }
  impl_->cv.notify_one();
}

Executor* host_executor(int workers) {
  static std::mutex mu;
  static PooledExecutor* pool = nullptr;  // leaked on purpose: its threads may outlive static destruction
  static pid_t owner = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (pool == nullptr || owner != getpid()) {  // a forked child has none of the parent's threads
    pool = new PooledExecutor(workers);
    owner = getpid();
  }
  return pool;
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

namespace {

struct ForkJoinState {
  std::atomic<int64_t> next{0};
  int64_t n_chunks = 0;
  const std::function<void(int, int64_t)>* body = nullptr;

  std::mutex mu;
  std::condition_variable cv;
  int active = 0;       // helpers currently inside run()
  int next_slot = 1;    // slot 0 is the caller
  int max_slots = 1;
  bool closed = false;  // caller finished; late helpers must not start
  std::exception_ptr error;

  void run(int slot) {
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) return;
      try {
        (*body)(slot, c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next.store(n_chunks, std::memory_order_relaxed);
        return;
      }
    }
  }
};

}  // namespace

void parallel_chunks(int64_t n_chunks, int participants, Executor* executor,
                     const std::function<void(int, int64_t)>& body) {
  if (n_chunks <= 0) return;
  int helpers = std::max(0, participants - 1);
  if (executor == nullptr) helpers = 0;
  helpers = std::min<int64_t>(helpers, n_chunks - 1);
  if (executor != nullptr)
    helpers = std::min(helpers, executor->helpers_available());

  if (helpers == 0) {
    for (int64_t c = 0; c < n_chunks; ++c) body(0, c);
    return;
  }

  auto state = std::make_shared<ForkJoinState>();
  state->n_chunks = n_chunks;
  state->body = &body;
  state->max_slots = helpers + 1;

  for (int h = 0; h < helpers; ++h) {
    executor->submit([state]() {
      int slot;
      {
        std::lock_guard<std::mutex> lock(state->mu);
        if (state->closed || state->next_slot >= state->max_slots) return;
        slot = state->next_slot++;
        ++state->active;
      }
      state->run(slot);
      {
        std::lock_guard<std::mutex> lock(state->mu);
        if (--state->active == 0) state->cv.notify_all();
      }
    });
  }

  state->run(0);

  std::unique_lock<std::mutex> lock(state->mu);
  state->closed = true;
  state->cv.wait(lock, [&] { return state->active == 0; });
  if (state->error) std::rethrow_exception(state->error);
}

}  // namespace clipcore
