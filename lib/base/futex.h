// Private futexes on 32-bit words, through raw syscalls (errno untouched).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "base/raw_syscall.h"

namespace flexsc::detail {

// Sleeps while *word == expected, at most timeout_ns (0: no limit).
inline void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns = 0) {
  struct timespec ts {};
  struct timespec* tp = nullptr;
  if (timeout_ns) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000ull);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000ull);
    tp = &ts;
  }
  raw_syscall6(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAIT_PRIVATE, expected,
               reinterpret_cast<long>(tp), 0, 0);
}

inline void futex_wake(std::atomic<uint32_t>* word, int count = INT_MAX) {
  raw_syscall6(SYS_futex, reinterpret_cast<long>(word), FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
}

inline void cpu_relax() {
  __builtin_ia32_pause();
}

// Fetches a line for writing ahead of time (a no-op on CPUs without it;
// __builtin_prefetch emits a plain read prefetch unless built for a CPU
// that has prefetchw).
inline void prefetch_for_write(const void* p) {
  asm volatile("prefetchw %0" : : "m"(*(const char*)p));
}

inline uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Spins for up to spin_ns until done(), re-checking it when *progress
// changes (a line its producers write rarely), when poll() brought
// something in (completions only a check itself can bring: an io_uring
// completion queue the caller reaps), and otherwise only every 64 rounds
// (producers publish progress in steps, and not before a call that blocks).
template <class Done, class Poll>
bool spin_until(Done&& done, const std::atomic<uint64_t>& progress, uint64_t spin_ns, Poll&& poll) {
  uint64_t seen = progress.load(std::memory_order_acquire);
  if (done()) return true;
  const uint64_t deadline = now_ns() + spin_ns;
  for (unsigned i = 1;; ++i) {
    cpu_relax();
    const bool fresh = poll();
    const uint64_t now = progress.load(std::memory_order_acquire);
    if (fresh || now != seen || (i & 63) == 0) {
      seen = now;
      if (done()) return true;
      if ((i & 63) == 0 && now_ns() > deadline) return false;
    }
  }
}

template <class Done>
bool spin_until(Done&& done, const std::atomic<uint64_t>& progress, uint64_t spin_ns) {
  return spin_until(done, progress, spin_ns, [] { return false; });
}

}  // namespace flexsc::detail
