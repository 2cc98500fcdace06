// Counters kept by the thread that owns them (a syscall thread, or the
// owner of a posting context) and summed when read: no shared cache line
// is written on the hot paths.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/classify.h"

namespace flexsc::detail {

// Written by one thread, read by any (relaxed, no read-modify-write).
class Counter {
 public:
  void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  void reset() { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

inline constexpr unsigned kBatchBuckets = 10;  // 1, 2-3, 4-7, ..., 256+

inline unsigned batch_bucket(unsigned n) {
  unsigned b = 0;
  while (n > 1 && b + 1 < kBatchBuckets) n >>= 1, ++b;
  return b;
}

// Counted by syscall threads.
struct DrainStats {
  Counter calls[kSyscallTableSize];  // remote entries by number
  Counter blocking;                  // of those, in the blocking class
  Counter nops;
  Counter drains;                  // visits to a context
  Counter batches[kBatchBuckets];  // entries per visit
  Counter idle_spins_with_work;    // idle spin ended by new work
  Counter sleeps;                  // idle spin ended in sleep
  Counter cancelled;

  void reset();
};

// Counted by the owner of a posting context.
struct CallerStats {
  Counter calls[kSyscallTableSize];  // calls run on the caller, by number
  Counter local;
  Counter unknown;
  Counter inline_calls;  // run by the waiter itself (single-core mode)
  Counter waits;
  Counter wait_parks;
  Counter takeovers;
  // io_uring backends: the owner submits and reaps its ring itself.
  Counter ring_calls[kSyscallTableSize];  // completed through io_uring, by number
  Counter ring_nops;
  Counter ring_retries;    // a first attempt would have blocked: tried again, waiting
  Counter ring_splits;     // a transfer cut short went on with the rest
  Counter ring_reruns;     // run again on the caller for the signal it raises
  Counter ring_backlog;    // entries that waited for room in the ring
  Counter ring_cancelled;  // completed with -ECANCELED at shutdown

  void reset();
};

// Sum over everything, as printed by FLEXSC_STATS.
struct StatsTotals {
  uint64_t remote_calls[kSyscallTableSize] = {};
  uint64_t local_calls[kSyscallTableSize] = {};
  uint64_t remote = 0, blocking = 0, local = 0, unknown = 0, inline_calls = 0, nops = 0;
  uint64_t drains = 0, batches[kBatchBuckets] = {};
  uint64_t idle_spins_with_work = 0, sleeps = 0, waits = 0, wait_parks = 0, takeovers = 0;
  uint64_t syscall_threads = 0, cancelled = 0;
  uint64_t ring_calls[kSyscallTableSize] = {};
  uint64_t ring = 0, ring_nops = 0, ring_retries = 0, ring_splits = 0, ring_reruns = 0, ring_backlog = 0;

  void add(const DrainStats& d);
  void add(const CallerStats& c);
  StatsTotals& operator+=(const StatsTotals& o);
  std::string report(const char* backend) const;
};

// Writes a report where stats_destination() (base/config.h) said.  A file
// is opened close-on-exec, so no program the process runs inherits it.
// Raw syscalls: the drop-in wrapper reports with libc's calls interposed.
void write_stats(const char* destination, std::string_view text);

}  // namespace flexsc::detail
