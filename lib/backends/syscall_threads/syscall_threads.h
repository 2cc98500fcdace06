// Userspace syscall threads pinned to syscall cores: the `thread`
// backend's whole machinery, and the io_uring backends' for the calls
// io_uring cannot express.  Both own one; it is not a backend itself.
//
// Each syscall core has a ready queue of contexts with submitted entries
// (Boost.Lockfree), a futex its idle threads sleep on, and a few threads:
// one normally awake, spares woken (or started) when every awake one is
// stuck in a blocking call.  An idle thread spins for a bounded time, then
// announces that it sleeps (the awake count) so posters wake it only then.
#pragma once

#include <hwloc.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <boost/lockfree/queue.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/config.h"
#include "base/context.h"
#include "base/process.h"
#include "base/stats.h"
#include "base/topology.h"

namespace flexsc::detail {

struct SyscallCore;

struct alignas(64) SyscallThread {
  // Progress word read by waiters to tell a stuck thread from a busy one:
  // calls started << 3 | in a blocking-class call << 2 | sleeping << 1 |
  // inside a call.
  std::atomic<uint64_t> state{0};
  std::atomic<bool> exited{false};
  // The blocking-class entry it is executing, and the one its owner asked
  // to interrupt (Backend::interrupt): the cancel signal makes the call
  // return -EINTR; any other entry it interrupts by a race runs again.
  std::atomic<const flexsc_entry*> current{nullptr};
  std::atomic<const flexsc_entry*> interrupt_target{nullptr};
  SyscallCore* core = nullptr;
  pthread_t handle{};
  int cancel_signal = 0;  // the one signal it takes, set before it starts
  DrainStats stats;

  static constexpr uint64_t kInCall = 1, kSleeping = 2, kInBlockingCall = 4, kOneCall = 8;
};

struct SyscallCore {
  unsigned index = 0;
  std::vector<int> cpus;
  hwloc_bitmap_t cpuset = nullptr;
  bool single_core = false;
  uint64_t spin_ns = 0;
  boost::lockfree::queue<Context*> ready{64};

  alignas(64) std::atomic<uint32_t> awake{0};  // threads not asleep on sleep_word
  std::atomic<uint32_t> sleep_word{0};
  std::atomic<uint32_t> spinner{0};  // one idle thread spins, the others sleep
  std::atomic<bool> stop{false};

  alignas(64) std::mutex spawn_mutex;
  SyscallThread* threads[kMaxSyscallThreadsPerCore] = {};
  std::atomic<unsigned> nthreads{0};
};

class SyscallThreads {
 public:
  // Plans the placement, then starts one syscall thread per syscall core.
  static int create(const Config& cfg, std::unique_ptr<SyscallThreads>* out, std::string* error);
  ~SyscallThreads();

  // The Backend operations of the same names, for the contexts whose
  // entries (or some of them) go to syscall threads.
  void bind(Context* ctx);
  void submit(Context* ctx, uint32_t* slots, unsigned count);
  uint64_t progress_mark(Context* ctx) const;
  void before_park(Context* ctx, uint64_t since, uint64_t waited_ns);
  void wait_begin(Context* ctx);
  bool interrupt(Context* ctx, flexsc_entry* e);
  void stop();
  void collect(StatsTotals* totals) const;
  void forget_threads();
  const Placement& placement() const { return placement_; }

 private:
  SyscallThreads() = default;
  int spawn(SyscallCore* core);
  void enqueue(Context* ctx);
  static bool only_blocked_awake(const SyscallCore* core);
  void run_inline(Context* ctx);

  Config cfg_;
  hwloc_topology_t topo_ = nullptr;
  Placement placement_;
  std::vector<std::unique_ptr<SyscallCore>> cores_;
  CancelSignal cancel_signal_;
};

}  // namespace flexsc::detail
