// Which calls the drop-in wrapper sends through the syscall pages, and
// which it passes straight to the kernel, with the count of each decision
// by reason (printed at exit with FLEXSC_STATS).
//
//   FLEXSC_ROUTE=all    every call the class table lets a syscall thread run
//   FLEXSC_ROUTE=auto   only where routing pays, as measured (the default)
//   FLEXSC_ROUTE=none   nothing: the wrapper only passes calls through
//   FLEXSC_ROUTE_ONLY=read,write,...   routes only these (by name)
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/classify.h"

namespace flexsc::preload {

enum class Mode { All, Auto, None };

constexpr int kMaxSyscall = 512;

// Why a call went where it went.
enum class Reason : uint8_t {
  Routed,
  Probe,          // auto: routed although the rule would not, to measure what routing costs
  NotReady,       // before the runtime started, after it stopped, or it could not start
  SignalHandler,  // from one of the program's signal handlers
  ModeNone,       // FLEXSC_ROUTE=none
  NotListed,      // not in FLEXSC_ROUTE_ONLY
  CallerClass,    // depends on the calling thread, or unknown to the class table
  Measuring,      // auto: not measured enough yet, either way
  Cheap,          // auto: waiting for it routed costs more than making it
  Busy,           // auto: the syscall threads answer slowly (short of capacity)
  MayBlock,       // auto: may wait without bound (a syscall thread would be held)
  DirectProbe,    // auto: passed although the rule would route, to keep its direct cost measured
  kCount
};

const char* reason_name(Reason r);
inline bool is_routed(Reason r) {
  return r == Reason::Routed || r == Reason::Probe;
}

// What one kind of call costs, as measured, in nanoseconds (0: unknown).
struct CallCosts {
  uint32_t direct_ns = 0;  // made by the caller itself (wall time: for the calls auto weighs, which
                           // never wait, that is CPU time)
  uint32_t direct_samples = 0;
  uint32_t routed_ns = 0;      // routed: the round trip its caller waits
  uint32_t routed_cpu_ns = 0;  // routed: the caller's own CPU time meanwhile (posting, spinning, parking)
};

// What the decision weighs besides the call.
struct Load {
  uint32_t idle_handoff_ns = 0;  // what routing added at start, nothing else posting
  int active_threads = 1;        // the program's threads that made calls lately
  int program_cpus = 1;          // CPUs the program's threads may run on
};

// The auto policy's rule.  A thread that has a core to itself waits out
// every call, so routing pays only if the round trip beats the direct
// call.  When more threads make calls than they have CPUs, the
// cores are what is short: routing pays when waiting for the call takes
// less of the caller's CPU than making it, leaving the rest to the other
// threads (FlexSC's argument).  Either way only while the syscall threads
// answer about as fast as when idle.  Returns Routed, Measuring, Cheap or
// Busy.
Reason auto_rule(const CallCosts& call, const Load& load);

// The measurements: exponentially weighted averages (weight 1/8) written
// with relaxed stores (a sample lost to a race between threads is
// harmless).
class Estimates {
 public:
  void add_direct(long nr, uint64_t ns);
  void add_routed(long nr, uint64_t round_trip_ns, uint64_t caller_cpu_ns);
  CallCosts costs(long nr) const;
  Load load() const;

  std::atomic<uint32_t> idle_handoff_ns{0};
  std::atomic<int> program_cpus{1};

  // Threads active: each thread counts itself once per interval of
  // kActivityIntervalNs in which it makes a call (per call: one relaxed
  // load).  advance() moves to the interval `now` falls in.
  static constexpr uint64_t kActivityIntervalNs = 10'000'000;
  void note_active(uint32_t* thread_interval) {
    const uint32_t i = interval_.load(std::memory_order_relaxed);
    if (*thread_interval == i) return;
    *thread_interval = i;
    active_[i & 1].fetch_add(1, std::memory_order_relaxed);
  }
  void advance(uint64_t now_ns);

 private:
  std::atomic<uint32_t> direct_ns_[kMaxSyscall] = {};
  std::atomic<uint32_t> direct_samples_[kMaxSyscall] = {};
  std::atomic<uint32_t> routed_ns_[kMaxSyscall] = {};
  std::atomic<uint32_t> routed_cpu_ns_[kMaxSyscall] = {};
  std::atomic<uint32_t> interval_{0};
  std::atomic<int> active_[2] = {};
  std::atomic<int> last_active_{0};
  std::atomic<bool> advancing_{false};
};

// What the wrapper knows of a descriptor: whether calls on it finish on
// their own.  Regular files and block devices do (the page cache, or the
// disk); pipes, sockets, terminals may wait without bound.  Learned with
// one fstat the first time, forgotten when the wrapper sees the number
// closed, replaced or handed out anew.  (A number closed behind its back,
// by libc's own stdio say, and reused can leave a stale answer: then a
// call that may wait is weighed as one that does not, and if routed it
// still runs as the blocking call it is, interruptible.)
class DescriptorKinds {
 public:
  static constexpr int kMax = 1 << 16;  // higher numbers are not cached: asked each time
  bool finishes_on_its_own(int fd);
  void forget(long fd) {
    if (fd >= 0 && fd < kMax) kind_[fd].store(kUnknown, std::memory_order_relaxed);
  }
  void forget_range(unsigned first, unsigned last);

 private:
  enum : uint8_t { kUnknown, kBounded, kMayWait };
  std::atomic<uint8_t> kind_[kMax] = {};
};

// A call of the blocking class that waits only on descriptors: those of
// its descriptors (up to 2, in *fds) to ask about, or 0 for any other.
// On descriptors that finish on their own, auto weighs it as any call.
int descriptors_it_waits_on(long nr, const long args[6], int fds[2]);

struct Policy {
  Mode mode = Mode::Auto;
  bool only_listed = false;
  uint8_t listed[kMaxSyscall] = {};  // by syscall number, when only_listed

  // Reads FLEXSC_ROUTE and FLEXSC_ROUTE_ONLY; false with *error set for a
  // bad value.
  bool load(std::string* error);
  // Where a call of class cls (classify()) goes; in auto mode, by the
  // estimates.  *sample: time this call and add it to the estimates.
  //
  // Now and then a call goes the other way, so neither of its costs goes
  // stale: passed once, or routed kProbeBurst times in a row (the first
  // finds the syscall threads asleep and is not sampled; the rest measure
  // routing as it would be if it went on).  By time, not by count, and
  // less often while the probes leave the decision as it was: from every
  // kMinProbeGapNs, doubling to kMaxProbeGapNs.  A routed probe can wake a
  // polling thread that then holds the syscall core for a millisecond
  // (io_uring's SQPOLL): probing every 100 ms cost nginx 7%.
  Reason decide(long nr, flexsc::detail::SyscallClass cls, Estimates& est, bool* sample);
  static constexpr uint64_t kMinProbeGapNs = 100'000'000;
  static constexpr uint64_t kMaxProbeGapNs = 32 * kMinProbeGapNs;
  static constexpr int kProbeBurst = 8;
  // CLOCK_MONOTONIC in nanoseconds (a test sets its own).
  uint64_t (*clock)() = default_clock;

 private:
  static uint64_t default_clock();
  std::atomic<uint64_t> next_probe_ns_[kMaxSyscall] = {};
  std::atomic<uint64_t> probe_gap_ns_[kMaxSyscall] = {};  // 0: not probed yet
  std::atomic<Reason> probed_rule_[kMaxSyscall] = {};     // the rule when last probed
};

// Decisions, by syscall number and reason: relaxed counters, read at exit.
// Threads count in shards of their own (one of kShards, taken in turn):
// one set of counters bounced between the cores made the program 18%
// slower with four threads making cheap calls.
class Counts {
 public:
  static constexpr int kShards = 16;
  void add(long nr, Reason r) {
    if (nr < 0 || nr >= kMaxSyscall) return;
    // The wrapper is loaded at start: its thread storage can be the
    // initial-exec kind, one instruction away, no call.
    [[gnu::tls_model("initial-exec")]] static thread_local int t_shard = -1;
    if (t_shard < 0)
      t_shard = static_cast<int>(next_shard_.fetch_add(1, std::memory_order_relaxed) % kShards);
    by_[t_shard][nr][static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
    const uint64_t bit = uint64_t{1} << (nr & 63);
    if (!(used_[nr >> 6].load(std::memory_order_relaxed) & bit))
      used_[nr >> 6].fetch_or(bit, std::memory_order_relaxed);
  }
  uint64_t count(long nr, Reason r) const;
  // Sets every count to zero (a forked child's start): only the calls
  // counted so far, so the untouched counters stay untouched pages.
  void forget();
  // est: the auto policy's measurements, reported beside its decisions
  // (nullptr in the other modes).
  std::string report(const Estimates* est) const;

 private:
  std::atomic<unsigned> next_shard_{0};
  std::atomic<uint64_t> used_[kMaxSyscall / 64] = {};  // calls counted at least once, by number
  std::atomic<uint64_t> by_[kShards][kMaxSyscall][static_cast<int>(Reason::kCount)] = {};
};

}  // namespace flexsc::preload
