// Wait queues and the synchronization types built on them.  A waiter is a
// fiber (parked: its scheduler runs others) or a plain thread (a futex).
// Every wake-up happens under the queue's lock, so a waiter record, which
// lives on the waiter's stack, is never touched after its owner left.
#include <stdexcept>

#include "base/futex.h"
#include "fiber.h"

namespace flexsc::fiber::detail {

using flexsc::detail::futex_wait;
using flexsc::detail::now_ns;

namespace {
uint64_t to_ns(std::chrono::steady_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns > 0 ? static_cast<uint64_t>(ns) : 1;
}
}  // namespace

void push_waiter(Waiter*& head, Waiter*& tail, Waiter* w) {
  w->prev = tail;
  w->next = nullptr;
  if (tail)
    tail->next = w;
  else
    head = w;
  tail = w;
  w->queued = true;
}

bool remove_waiter(Waiter*& head, Waiter*& tail, Waiter* w) {
  if (!w->queued) return false;
  if (w->prev)
    w->prev->next = w->next;
  else
    head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    tail = w->prev;
  w->prev = w->next = nullptr;
  w->queued = false;
  return true;
}

void WaitQueue::push(Waiter* w) {
  push_waiter(head_, tail_, w);
}

bool WaitQueue::remove(Waiter* w) {
  return remove_waiter(head_, tail_, w);
}

void prepare_wait(Waiter& w) {
  if (FiberControl* f = current_fiber()) {
    w.fiber = f;
    w.seq = f->begin_park();
  }
}

void wait_woken(Waiter& w, uint64_t deadline_ns) {
  if (w.fiber) {
    if (deadline_ns)
      suspend_parked_until(w.seq, deadline_ns);
    else
      suspend_parked();
    return;
  }
  while (w.signaled.load(std::memory_order_acquire) == 0) {
    uint64_t timeout = 0;
    if (deadline_ns) {
      const uint64_t now = now_ns();
      if (now >= deadline_ns) {
        uint32_t expected = 0;
        // Claimed by the timeout, unless a waker got there first.
        if (w.signaled.compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) return;
        continue;
      }
      timeout = deadline_ns - now;
    }
    futex_wait(&w.signaled, 0, timeout);
  }
}

// deadline_ns 0: none.  True if woken, false on timeout.
bool WaitQueue::park_impl(std::unique_lock<std::mutex>& lock, uint64_t deadline_ns) {
  Waiter w;
  prepare_wait(w);
  push(&w);
  lock.unlock();
  wait_woken(w, deadline_ns);
  lock.lock();
  remove(&w);  // still queued only after a timeout
  return w.woken;
}

void WaitQueue::park(std::unique_lock<std::mutex>& lock) {
  park_impl(lock, 0);
}

bool WaitQueue::park_until(std::unique_lock<std::mutex>& lock,
                           std::chrono::steady_clock::time_point deadline) {
  return park_impl(lock, to_ns(deadline));
}

bool WaitQueue::wake_one() {
  while (Waiter* w = head_) {
    remove(w);
    if (w->wake()) return true;  // else it timed out just now: the next one
  }
  return false;
}

void WaitQueue::wake_all() {
  while (wake_one()) {
  }
}

}  // namespace flexsc::fiber::detail

namespace flexsc::fiber {

void Mutex::lock() {
  std::unique_lock l(m_);
  if (!held_) {
    held_ = true;
    return;
  }
  // unlock() hands the mutex over: held_ stays true for us.
  waiters_.park(l);
}

bool Mutex::try_lock() {
  std::lock_guard l(m_);
  if (held_) return false;
  held_ = true;
  return true;
}

void Mutex::unlock() {
  std::lock_guard l(m_);
  if (!held_) throw std::logic_error("flexsc::fiber::Mutex::unlock: not locked");
  if (!waiters_.wake_one()) held_ = false;
}

void ConditionVariable::wait(std::unique_lock<Mutex>& lock) {
  std::unique_lock l(m_);
  // m_ is held from before the unlock until we are queued: a notify
  // between the two finds us.
  lock.unlock();
  waiters_.park(l);
  l.unlock();
  lock.lock();
}

bool ConditionVariable::wait_until(std::unique_lock<Mutex>& lock,
                                   std::chrono::steady_clock::time_point deadline) {
  std::unique_lock l(m_);
  lock.unlock();
  const bool woken = waiters_.park_until(l, deadline);
  l.unlock();
  lock.lock();
  return woken;
}

void ConditionVariable::notify_one() {
  std::lock_guard l(m_);
  waiters_.wake_one();
}

void ConditionVariable::notify_all() {
  std::lock_guard l(m_);
  waiters_.wake_all();
}

void Semaphore::acquire() {
  std::unique_lock l(m_);
  while (count_ == 0) waiters_.park(l);
  --count_;
}

bool Semaphore::try_acquire() {
  std::lock_guard l(m_);
  if (count_ == 0) return false;
  --count_;
  return true;
}

void Semaphore::release(std::size_t n) {
  std::lock_guard l(m_);
  count_ += n;
  for (std::size_t i = 0; i < n && waiters_.wake_one(); ++i) {
  }
}

void WaitGroup::add(std::ptrdiff_t n) {
  std::lock_guard l(m_);
  if (count_ + n < 0) throw std::logic_error("flexsc::fiber::WaitGroup: count below zero");
  count_ += n;
  if (count_ == 0) waiters_.wake_all();
}

void WaitGroup::wait() {
  std::unique_lock l(m_);
  while (count_ > 0) waiters_.park(l);
}

}  // namespace flexsc::fiber
