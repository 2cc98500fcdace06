// The parking lot.  A waiter record lives on its owner's stack; as in
// lib/fiber/sync.cpp, every wake-up happens under the bucket lock and the
// woken owner takes that lock again before it reads the record or leaves,
// so no record is touched after its owner left.  A timeout that races a
// wake-up is settled by the one claim in fiber::detail::Waiter::wake().
#include "mn/parking_lot.h"

#include <atomic>

#include "base/futex.h"
#include "fiber/fiber.h"

namespace flexsc::mn {

using flexsc::detail::cpu_relax;
using flexsc::detail::futex_wait;
using flexsc::detail::futex_wake;
using flexsc::detail::now_ns;

namespace {

struct Bucket;

// A parked party: the fiber layer's waiter (its links make this bucket's
// list) and what it waits for.  `bucket` changes only under the locks of
// both buckets (requeue), so its owner finds where it is now.
struct Parked : fiber::detail::Waiter {
  const void* addr = nullptr;
  uint32_t bits = kAnyBits;
  std::atomic<Bucket*> bucket{nullptr};
  Parked* next_parked() const { return static_cast<Parked*>(next); }
};

// 0 free, 1 held, 2 held with sleepers (Drepper's "Futexes are tricky").
// Held for a few list operations only, so it spins briefly first.
class BucketLock {
 public:
  void lock() {
    uint32_t c = 0;
    if (word_.compare_exchange_strong(c, 1, std::memory_order_acquire)) return;
    for (int i = 0; i < 100; ++i) {
      cpu_relax();
      c = 0;
      if (word_.load(std::memory_order_relaxed) == 0 &&
          word_.compare_exchange_strong(c, 1, std::memory_order_acquire))
        return;
    }
    while (word_.exchange(2, std::memory_order_acquire) != 0) futex_wait(&word_, 2);
  }
  void unlock() {
    if (word_.exchange(0, std::memory_order_release) == 2) futex_wake(&word_, 1);
  }
  void reset() { word_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> word_{0};
};

struct alignas(64) Bucket {
  BucketLock lock;
  fiber::detail::Waiter* head = nullptr;
  fiber::detail::Waiter* tail = nullptr;

  Parked* first() const { return static_cast<Parked*>(head); }
  void push(Parked* w) { fiber::detail::push_waiter(head, tail, w); }
  void remove(Parked* w) { fiber::detail::remove_waiter(head, tail, w); }
  bool has(const void* addr, const Parked* from) const {
    for (const Parked* w = from; w; w = w->next_parked())
      if (w->addr == addr) return true;
    return false;
  }
  // Wakes up to n waiters of addr (oldest first) whose bits meet `bits`.
  // A waiter whose timeout claimed it first is dropped from the list and
  // not counted.  others_left: whether waiters of addr remain.
  int wake(const void* addr, int n, uint32_t bits, bool* others_left) {
    int woken = 0;
    Parked* w = first();
    while (w && woken < n) {
      Parked* next = w->next_parked();
      if (w->addr == addr && (w->bits & bits)) {
        remove(w);
        if (w->wake()) ++woken;
      }
      w = next;
    }
    if (others_left) *others_left = has(addr, first());
    return woken;
  }
};

constexpr unsigned kBucketBits = 9;
constinit Bucket g_buckets[1u << kBucketBits];

Bucket& bucket_of(const void* addr) {
  const uint64_t h = (reinterpret_cast<uintptr_t>(addr) >> 2) * 0x9e3779b97f4a7c15ull;
  return g_buckets[h >> (64 - kBucketBits)];
}

// Both buckets locked, in address order (once if they are the same).
class TwoLocked {
 public:
  TwoLocked(Bucket& a, Bucket& b) : first_(&a < &b ? a : b), second_(&a < &b ? b : a) {
    first_.lock.lock();
    if (&second_ != &first_) second_.lock.lock();
  }
  ~TwoLocked() {
    if (&second_ != &first_) second_.lock.unlock();
    first_.lock.unlock();
  }
  TwoLocked(const TwoLocked&) = delete;
  TwoLocked& operator=(const TwoLocked&) = delete;

 private:
  Bucket& first_;
  Bucket& second_;
};

// Locks the bucket w is queued in now (a requeue may have moved it).
Bucket& lock_current(Parked& w) {
  for (;;) {
    Bucket* b = w.bucket.load(std::memory_order_acquire);
    b->lock.lock();
    if (b == w.bucket.load(std::memory_order_relaxed)) return *b;
    b->lock.unlock();
  }
}

}  // namespace

ParkResult park(const void* addr, FnRef<bool()> validate, uint64_t deadline_ns, uint32_t bits,
                FnRef<void(bool)> timed_out) {
  Bucket& b = bucket_of(addr);
  Parked w;
  w.addr = addr;
  w.bits = bits;
  w.bucket.store(&b, std::memory_order_relaxed);
  b.lock.lock();
  if (!validate()) {
    b.lock.unlock();
    return ParkResult::Invalid;
  }
  if (deadline_ns != kNoDeadline && now_ns() >= deadline_ns) {
    timed_out(b.has(addr, b.first()));
    b.lock.unlock();
    return ParkResult::TimedOut;
  }
  fiber::detail::prepare_wait(w);
  b.push(&w);
  b.lock.unlock();
  fiber::detail::wait_woken(w, deadline_ns);

  Bucket& now = lock_current(w);
  const bool woken = w.woken;
  if (!woken) {
    now.remove(&w);  // still queued unless a waker dropped it, too late
    timed_out(now.has(w.addr, now.first()));
  }
  now.lock.unlock();
  return woken ? ParkResult::Woken : ParkResult::TimedOut;
}

void forget_waiters_after_fork() {
  for (Bucket& b : g_buckets) {
    b.lock.reset();
    b.head = b.tail = nullptr;
  }
}

int unpark(const void* addr, int n, uint32_t bits) {
  Bucket& b = bucket_of(addr);
  b.lock.lock();
  const int woken = b.wake(addr, n, bits, nullptr);
  b.lock.unlock();
  return woken;
}

int unpark(const void* addr, int n, FnRef<void(int, bool)> locked) {
  Bucket& b = bucket_of(addr);
  b.lock.lock();
  bool others_left = false;
  const int woken = b.wake(addr, n, kAnyBits, &others_left);
  locked(woken, others_left);
  b.lock.unlock();
  return woken;
}

Requeued requeue(const void* from, const void* to, int n_wake, int n_requeue, FnRef<bool()> validate) {
  Bucket& a = bucket_of(from);
  Bucket& b = bucket_of(to);
  TwoLocked locked(a, b);
  Requeued r;
  if (!validate()) return r;
  r.valid = true;
  r.woken = a.wake(from, n_wake, kAnyBits, nullptr);
  // Collected first, appended after: `to` may share the bucket (or be `from`).
  fiber::detail::Waiter* moved_head = nullptr;
  fiber::detail::Waiter* moved_tail = nullptr;
  for (Parked* w = a.first(); w && r.moved < n_requeue;) {
    Parked* next = w->next_parked();
    if (w->addr == from) {
      a.remove(w);
      fiber::detail::push_waiter(moved_head, moved_tail, w);
      ++r.moved;
    }
    w = next;
  }
  while (moved_head) {
    auto* w = static_cast<Parked*>(moved_head);
    fiber::detail::remove_waiter(moved_head, moved_tail, w);
    w->addr = to;
    w->bucket.store(&b, std::memory_order_release);
    b.push(w);
  }
  return r;
}

int unpark_two(const void* a1, int n1, const void* a2, int n2, FnRef<int()> op, int& woken1, int& woken2) {
  Bucket& b1 = bucket_of(a1);
  Bucket& b2 = bucket_of(a2);
  TwoLocked locked(b1, b2);
  woken1 = woken2 = 0;
  const int r = op();
  if (r < 0) return r;
  woken1 = b1.wake(a1, n1, kAnyBits, nullptr);
  if (r > 0) woken2 = b2.wake(a2, n2, kAnyBits, nullptr);
  return r;
}

}  // namespace flexsc::mn
