// A process-wide table of wait lists keyed by address, as the kernel keeps
// futex waiters (and WebKit's ParkingLot): any word of any object can be
// waited on without storing anything in the object.  A waiter is a fiber,
// parked (its scheduler runs other fibers), or a plain thread sleeping on a
// futex of its own.  Waiters of one address are woken oldest first.
//
// Hashed buckets, each with its own lock: a small futex lock, never a
// pthread mutex (those are what lib/mn emulates: interposed, they would
// recurse).  The callbacks below run under a bucket lock: short, and
// calling nothing of the parking lot.
#pragma once

#include <climits>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace flexsc::mn {

// A callable borrowed for the length of a call (no allocation, no copy).
template <class Signature>
class FnRef;
template <class R, class... Args>
class FnRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FnRef> &&
                                              std::is_invocable_r_v<R, F&, Args...>>>
  FnRef(F&& f)  // NOLINT: converts implicitly, as a function parameter
      : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, Args... a) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...);
        }) {}
  R operator()(Args... a) const { return call_(obj_, std::forward<Args>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

// Deadlines are CLOCK_MONOTONIC nanoseconds (base/futex.h's now_ns()).
constexpr uint64_t kNoDeadline = 0;
constexpr uint32_t kAnyBits = ~0u;

enum class ParkResult { Woken, TimedOut, Invalid };

// Queues the caller on addr if validate() holds (checked under the bucket
// lock, so a waker that changes what it reads and then unparks cannot slip
// in between), and sleeps until an unpark whose bits meet `bits` picks it
// or the deadline passes.  On a timeout (a deadline already passed too),
// timed_out(others_left) runs under the bucket lock, the caller off the
// list: others_left says whether waiters of its address remain (to clear
// a "waiters" flag the caller set before parking).
ParkResult park(const void* addr, FnRef<bool()> validate, uint64_t deadline_ns, uint32_t bits,
                FnRef<void(bool others_left)> timed_out);
inline ParkResult park(const void* addr, FnRef<bool()> validate, uint64_t deadline_ns = kNoDeadline,
                       uint32_t bits = kAnyBits) {
  return park(addr, validate, deadline_ns, bits, [](bool) {});
}

// In a forked child, where no waiter survives: every list empty, every
// bucket unlocked (a lock may have been held by a thread the child lacks).
void forget_waiters_after_fork();

// Wakes up to n waiters of addr whose bits meet `bits`; returns how many.
int unpark(const void* addr, int n, uint32_t bits = kAnyBits);
// As unpark(), then locked(woken, others_left) under the bucket lock.
int unpark(const void* addr, int n, FnRef<void(int woken, bool others_left)> locked);
inline int unpark_one(const void* addr) {
  return unpark(addr, 1);
}
inline int unpark_all(const void* addr) {
  return unpark(addr, INT_MAX);
}

// With both buckets locked: if validate() holds, wakes up to n_wake
// waiters of `from` and moves up to n_requeue of the others, in order, to
// the end of `to`'s list (FUTEX_CMP_REQUEUE).
struct Requeued {
  bool valid = false;
  int woken = 0;
  int moved = 0;
};
Requeued requeue(const void* from, const void* to, int n_wake, int n_requeue, FnRef<bool()> validate);

// With both buckets locked, runs op(); if it returns >= 0, wakes up to n1
// waiters of a1 and, if it returned > 0, up to n2 of a2 (FUTEX_WAKE_OP).
// Returns op()'s result; the counts woken go to woken1 and woken2.
int unpark_two(const void* a1, int n1, const void* a2, int n2, FnRef<int()> op, int& woken1, int& woken2);

}  // namespace flexsc::mn
