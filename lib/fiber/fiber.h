// A fiber's control block, and the waiter records that park fibers and
// threads in wait queues.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <flexsc/fiber.hpp>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "stack.h"
#include "switch.h"

namespace flexsc::fiber::detail {

class Scheduler;

// A program's thread run as a fiber (lib/mn): it runs on the thread
// control block of a parked anchor pthread, whose fs base the scheduler
// loads around every switch into it, so that TLS, errno and pthread_self()
// are the thread's own on whichever carrier runs it.
struct BorrowedThread {
  uint64_t tcb = 0;  // the anchor's fs base (0: the fiber runs on its carrier's)
  // The anchor's own stack: ASan is told the anchor is back on it when the
  // fiber ends (ASan keeps its per-thread state in TLS, i.e. in that TCB).
  const void* anchor_stack_bottom = nullptr;
  std::size_t anchor_stack_size = 0;
  // Called on the carrier after the fiber's last switch, when nothing runs
  // on the TCB any more: the anchor may wake.
  void (*on_end)(void* arg) = nullptr;
  void* on_end_arg = nullptr;
};

struct FiberControl {
  ExecutionContext exec;
  Stack stack;
  bool own_stack = false;  // the spawner's stack, not the scheduler's pool's
  BorrowedThread borrowed;
  std::function<void()> fn;
  uint64_t id = 0;
  PoolImpl* pool = nullptr;
  // The scheduler it belongs to.  Changes only while the fiber sits in a
  // ready queue (migration), so whoever wakes a parked fiber reads it safely.
  std::atomic<Scheduler*> home{nullptr};
  // The handle's reference, the running fiber's, one per pending timer.
  std::atomic<int> refs{2};

  // ---- parking: a fiber is woken at most once per park.  park_state holds
  // the park's sequence number, shifted left, with bit 0 set once someone
  // (a waker or a timer) has claimed the wake-up.
  std::atomic<uint64_t> park_state{1};
  uint64_t park_seq = 0;  // the fiber's own count of its parks

  long syscall_ret = 0;  // an entry's result, set by the harvest

  // ---- the end: join() waits for `finished`.
  std::mutex end_mutex;
  bool finished = false;
  bool detached = false;
  WaitQueue joiners;
  std::exception_ptr error;

  // Fiber-local storage: values and their destructors, by key.
  std::vector<std::pair<void*, void (*)(void*)>> fls;

  void release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Begins a park: returns its sequence number for the wakers.
  uint64_t begin_park() {
    ++park_seq;
    park_state.store(park_seq << 1, std::memory_order_release);
    return park_seq;
  }
  // True for the one waker (or timer) that gets to wake park `seq`.
  bool claim_wake(uint64_t seq) {
    uint64_t expected = seq << 1;
    return park_state.compare_exchange_strong(expected, expected | 1, std::memory_order_acq_rel);
  }
};

// A party parked in a WaitQueue: a fiber (and which park of it), or a
// plain thread sleeping on `signaled` (a futex word).
struct Waiter {
  FiberControl* fiber = nullptr;
  uint64_t seq = 0;
  std::atomic<uint32_t> signaled{0};
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool queued = false;
  bool woken = false;  // by wake(), not by a timeout

  // Wakes it if nobody did (or it timed out) before; true if this call did.
  bool wake();
};

// The fiber running on this thread, or nullptr (a plain thread, or a
// scheduler's own loop).
FiberControl* current_fiber();
// The scheduler of this thread, or nullptr.
Scheduler* current_scheduler();

// A FIFO of waiters linked through their prev and next, given by its ends
// (a WaitQueue's, a parking lot bucket's).  remove_waiter: false if w was
// not queued.
void push_waiter(Waiter*& head, Waiter*& tail, Waiter* w);
bool remove_waiter(Waiter*& head, Waiter*& tail, Waiter* w);

// A waiter's two halves around its queue's lock.  prepare_wait(), lock held
// and before queuing w, makes w stand for the caller: its fiber (a park
// begun) or, on a plain thread, its futex word.  wait_woken(), lock
// released, sleeps until w is woken or, given a deadline (CLOCK_MONOTONIC
// ns, 0: none), until then, claiming its own wake-up so no wake() succeeds
// later.  Either way, take the lock again before reading w.woken or
// leaving: a waker touches w while it holds the lock.
void prepare_wait(Waiter& w);
void wait_woken(Waiter& w, uint64_t deadline_ns);

// Parks the running fiber (park begun with begin_park) until woken.
void suspend_parked();
// Makes a parked fiber runnable again (from any thread): it goes to its
// home scheduler's ready queue.
void make_ready(FiberControl* f);
// The fiber's end, on its own stack: fiber-local values destroyed, joiners
// woken; a detached fiber's uncaught exception terminates the process.
void finish(FiberControl* f);
[[noreturn]] void report_uncaught(uint64_t id, std::exception_ptr error);
// As suspend_parked(), but a timer also wakes park `seq` at deadline_ns
// (CLOCK_MONOTONIC).
void suspend_parked_until(uint64_t seq, uint64_t deadline_ns);
// The function every fiber starts in, the outermost frame of its stack
// (a forced unwind that reaches it has unwound all of the fiber's code).
const void* fiber_entry_function();
// Ends the running fiber from anywhere on its stack (its fiber-local
// values destroyed, joiners woken), as returning from its function does.
[[noreturn]] void end_running_fiber();
// On an anchor whose fiber ended: the runtime's thread-locals in its TCB
// name no fiber or scheduler any more.
void forget_borrowed_locals();

}  // namespace flexsc::fiber::detail
