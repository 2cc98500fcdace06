// One scheduler per user core: a kernel thread that runs fibers, posts
// their syscalls into its posting context and harvests the results, and
// waits through the backend when nothing is ready (FlexSC-Threads).
#pragma once

#include <hwloc.h>

#include <atomic>
#include <boost/lockfree/queue.hpp>
#include <cstdint>
#include <flexsc/fiber.hpp>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "api.h"
#include "base/context.h"
#include "base/futex.h"
#include "fiber.h"
#include "readiness.h"
#include "stack.h"

namespace flexsc::fiber::detail {

using flexsc::detail::Context;

class Scheduler final : public flexsc::detail::FiberSyscalls {
 public:
  Scheduler(PoolImpl* pool, unsigned index, int cpu, std::unique_ptr<Policy> policy);
  ~Scheduler();

  void start();
  // Blocks until the thread has set itself up.
  void wait_started() {
    while (!started_.load(std::memory_order_acquire)) flexsc::detail::futex_wait(&started_, 0);
  }
  void join() { thread_.join(); }
  unsigned index() const { return index_; }

  // From any thread: f (whose home is this scheduler) is ready to run.
  void enqueue(FiberControl* f);
  // Wakes the loop if it waits (any thread).
  void notify();
  // The loop ends once no fiber is left (Pool's destructor).
  void request_stop();

  // ---- called on this scheduler's thread, by the running fiber
  void yield_running();
  void park_running();
  void park_running_until(uint64_t seq, uint64_t deadline_ns);
  [[noreturn]] void exit_running();
  FiberControl* running() const { return running_; }
  Readiness* readiness() { return &readiness_; }
  // A fiber may post a socket call that blocks as it is, the backend
  // waiting for the socket itself without a thread (up to a budget of such
  // calls in flight): true and counted, or false (wait for readiness).
  // end_socket_wait() when it returned, on whichever scheduler.
  bool begin_socket_wait() {
    if (socket_wait_budget_ == 0) return false;
    if (socket_waits_.fetch_add(1, std::memory_order_relaxed) < socket_wait_budget_) return true;
    socket_waits_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void end_socket_wait() { socket_waits_.fetch_sub(1, std::memory_order_relaxed); }
  void count_readiness_wait() { counters_.readiness_waits.fetch_add(1, std::memory_order_relaxed); }

  // flexsc::detail::FiberSyscalls: the running fiber's syscall posts an
  // entry and switches.
  long syscall(long nr, const long args[6]) override;
  // Batch-API waits on someone else's context: the fiber parks until
  // done() (checked every round, and by timed idle waits).
  void wait_polling(bool (*done)(void*), void* arg) override;

  SchedulerStats stats() const;
  // This scheduler ran dry and asks busy ones for work; find_hungry()
  // takes the flag back when it sends some.
  std::atomic<bool>& hungry_flag() { return hungry_; }

 private:
  enum class After { None, Yield, Park, Exit };
  struct Timer {
    uint64_t deadline;
    FiberControl* fiber;
    uint64_t seq;
    bool operator>(const Timer& o) const { return deadline > o.deadline; }
  };
  struct Poller {
    FiberControl* fiber;
    bool (*done)(void*);
    void* arg;
  };

  void prepare_thread();
  bool open_context();
  void drain_context();
  void loop();
  void run(FiberControl* f);
  void fail_to_start(FiberControl* f);
  void switch_out(After after);
  void take_inbox();
  void fire_timers(uint64_t now);
  void check_pollers();
  bool posts_syscalls() const;
  void submit();
  void learn_backend();
  bool reap();
  void harvest(bool force);
  bool any_done();
  void arm_readiness();
  void disarm_readiness();
  void kick_epoll();
  void readiness_done(long ret);
  void dispatch_events(long n);
  void poll_readiness(int timeout_ms);
  void share_work();
  void set_hungry(bool hungry);
  bool has_events();
  void idle_wait();

  PoolImpl* pool_;
  unsigned index_;
  int cpu_;
  std::unique_ptr<Policy> policy_;
  std::thread thread_;
  std::atomic<uint32_t> started_{0};
  ExecutionContext self_;     // the scheduler loop's own context (its thread stack)
  uint64_t carrier_tcb_ = 0;  // this thread's own fs base, loaded back after a borrowed one
  FiberControl* running_ = nullptr;
  After after_ = After::None;
  StackPool stacks_;
  void* altstack_ = nullptr;

  // Fibers made ready by other threads (and new ones): many producers, this
  // thread consumes.  posts_ counts notifications, for idle waits.
  boost::lockfree::queue<FiberControl*> inbox_{256};
  alignas(64) std::atomic<uint64_t> posts_{0};
  std::atomic<uint32_t> sleeping_{0};  // how the loop waits, for notify()
  std::atomic<bool> hungry_{false};
  std::atomic<bool> stop_{false};

  // ---- this thread only
  alignas(64) Context* ctx_ = nullptr;  // the posting context of this scheduler's fibers
  std::vector<FiberControl*> owner_;    // by slot: the fiber waiting for that entry
  unsigned in_flight_ = 0;
  bool runtime_gone_ = false;        // the last submit found no runtime
  bool force_harvest_ = false;       // entries may be DONE without progress announced
  unsigned socket_wait_budget_ = 0;  // Backend::socket_waits_without_thread()
  uint64_t backend_gen_ = 0;         // the runtime generation it is from
  std::atomic<unsigned> socket_waits_{0};
  uint64_t seen_progress_ = 0;
  unsigned harvest_skips_ = 0;
  uint64_t seen_posts_ = 0;
  std::vector<FiberControl*> entry_waiters_;  // fibers waiting for a FREE entry
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::vector<Poller> pollers_;
  Readiness readiness_;
  int wake_fd_ = -1;  // an eventfd in the epoll set: notify() while in epoll_wait

  struct Counters {
    std::atomic<uint64_t> switches{0}, posted{0}, on_caller{0}, harvests{0}, harvested{0}, submits{0},
        idle_waits{0}, readiness_waits{0}, migrated_in{0};
  } counters_;
};

// The schedulers of one Pool, and what they share.
class PoolImpl {
 public:
  explicit PoolImpl(const PoolOptions& options);
  ~PoolImpl();

  Fiber spawn(std::function<void()> fn);
  // A program's thread as a fiber (lib/mn): on `stack`, which stays the
  // caller's, with the anchor's TCB; no handle: it ends through
  // borrowed.on_end.
  void spawn_thread(std::function<void()> fn, Stack stack, const BorrowedThread& borrowed);
  static Fiber handle(FiberControl* f) { return Fiber(f); }
  void wait_idle();
  // A fiber ended (its last reference is not ours to drop here).
  void fiber_ended();

  const PoolOptions& options() const { return options_; }
  bool exception_less() const { return exception_less_; }
  unsigned size() const { return static_cast<unsigned>(schedulers_.size()); }
  Scheduler& scheduler(unsigned i) { return *schedulers_[i]; }
  std::vector<SchedulerStats> stats() const;
  // Schedulers that ran dry; busy ones look at it before sharing work.
  std::atomic<int>& hungry_count() { return hungry_count_; }
  // A hungry scheduler other than `self` (its flag taken back), or nullptr.
  Scheduler* find_hungry(Scheduler* self);
  uint32_t live() const { return live_.load(std::memory_order_acquire); }
  hwloc_topology_t topology() const { return topology_; }

 private:
  void print_stats() const;
  FiberControl* new_fiber(std::function<void()> fn);
  void start(FiberControl* f);

  PoolOptions options_;
  bool exception_less_ = false;
  std::string stats_to_;  // as the library's report: stats_destination() when it started
  hwloc_topology_t topology_ = nullptr;
  std::vector<std::unique_ptr<Scheduler>> schedulers_;
  std::atomic<unsigned> next_{0};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> hungry_count_{0};
  // Live fibers; wait_idle() sleeps on it (a futex word, so fibers' ends
  // never take a lock).
  alignas(64) std::atomic<uint32_t> live_{0};
  std::atomic<uint32_t> idle_waiters_{0};
};

}  // namespace flexsc::fiber::detail
