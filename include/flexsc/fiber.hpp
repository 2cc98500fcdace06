// fiber.hpp - FlexSC-Threads: M:N fibers whose syscalls post-and-switch.
//
// A Pool runs one scheduler per user core, each a kernel thread pinned to
// its core.  A fiber that makes a syscall (flexsc_syscall, the batch API's
// waits, or the calls in <flexsc/posix.h>) posts an entry into its
// scheduler's posting context and switches; the scheduler runs other fibers,
// harvests DONE entries, and when nothing is ready waits through the
// backend (FlexSC's flexsc_wait).  Sockets and pipes wait for readiness
// instead of holding a syscall thread.
//
// The synchronization types park fibers, not kernel threads; they also
// work from plain threads (which then block on a futex), so a main thread
// can join fibers or wait on a WaitGroup.
//
// Statistics: when a Pool is destroyed, each scheduler's counters go where
// the library's report goes: the running runtime's choice (its options'
// stats, or FLEXSC_STATS), else FLEXSC_STATS as the Pool found it when it
// started (1: stderr; a path: appended to that file; unset or 0: nowhere).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#define FLEXSC_FIBER_API __attribute__((visibility("default")))

namespace flexsc::fiber {

namespace detail {
struct FiberControl;  // a fiber's control block
struct Waiter;        // a fiber or a thread parked in a wait queue
class PoolImpl;
}  // namespace detail

// ---- scheduling policy -------------------------------------------------
//
// Each scheduler has its own Policy object, called only from its thread:
// the context switch and the syscall machinery live apart from it.
using FiberRef = detail::FiberControl*;

class FLEXSC_FIBER_API Policy {
 public:
  virtual ~Policy();
  // f became ready on this scheduler.
  virtual void awakened(FiberRef f) = 0;
  // The fiber to run next, or nullptr when none is ready.
  virtual FiberRef pick_next() = 0;
  virtual std::size_t ready_count() const = 0;
  // Another scheduler ran dry: give up to `max` ready fibers away (into
  // out), or none to keep them here.  Returns how many.
  virtual std::size_t shed(FiberRef* out, std::size_t max) = 0;
};

// Round robin in arrival order; sheds from the back (the fibers that would
// wait longest here).
class FLEXSC_FIBER_API FifoPolicy final : public Policy {
 public:
  void awakened(FiberRef f) override { ready_.push_back(f); }
  FiberRef pick_next() override;
  std::size_t ready_count() const override { return ready_.size(); }
  std::size_t shed(FiberRef* out, std::size_t max) override;

 private:
  std::deque<FiberRef> ready_;
};

// ---- the pool of schedulers ----------------------------------------------

struct PoolOptions {
  // Schedulers (kernel threads); 0: one per user core of the flexsc runtime
  // (the cores not reserved for syscall threads).
  unsigned schedulers = 0;
  // Usable stack per fiber, rounded up to pages; an inaccessible guard page
  // lies below it, so an overflow faults and is reported.
  std::size_t stack_size = 64 * 1024;
  // true: fibers' syscalls post-and-switch through flexsc (starting the
  // runtime if needed).  false: fibers issue synchronous syscalls (the
  // baseline for M:N experiments); readiness waits still park fibers.
  bool exception_less = true;
  // Entries each scheduler's posting context holds (x64); fibers beyond
  // that wait for a free entry.
  unsigned context_pages = 64;
  // Pin each scheduler to a user core (hwloc).
  bool pin = true;
  // Ready fibers may move to a scheduler that ran dry.  A fiber that moves
  // continues on another kernel thread: thread-local addresses it cached
  // (the compiler may cache errno's) then name the old thread's.
  bool migrate = true;
  // The scheduling policy, one object per scheduler (default: FifoPolicy).
  std::function<std::unique_ptr<Policy>()> policy;
};

// Per-scheduler counters (FLEXSC_STATS=1 prints them).
struct SchedulerStats {
  uint64_t switches = 0;            // fibers resumed
  uint64_t syscalls_posted = 0;     // entries posted by fibers
  uint64_t syscalls_on_caller = 0;  // ran synchronously on the scheduler thread
  uint64_t harvests = 0;            // harvest passes that found DONE entries
  uint64_t harvested = 0;           // DONE entries harvested
  uint64_t submits = 0;             // batches handed to the backend
  uint64_t idle_waits = 0;          // waits through the backend or a futex
  uint64_t readiness_waits = 0;     // fibers parked until a descriptor was ready
  uint64_t migrated_in = 0;         // fibers received from other schedulers
  int cpu = -1;                     // the core it is pinned to (-1: not pinned)
};

class Fiber;

class FLEXSC_FIBER_API Pool {
 public:
  explicit Pool(const PoolOptions& options = {});
  // Waits until every fiber has finished, then stops the schedulers.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts fn in a new fiber (callable from any thread); new fibers are
  // spread over the schedulers.
  Fiber spawn(std::function<void()> fn);
  // Blocks until no fiber is left.
  void wait_idle();

  unsigned size() const;
  std::vector<SchedulerStats> stats() const;
  // Whether the fibers' syscalls go through flexsc, and its backend.
  bool exception_less() const;

 private:
  std::unique_ptr<detail::PoolImpl> impl_;
};

// A handle to a fiber, like std::thread: join() or detach() it before it is
// destroyed (else std::terminate).  An exception the fiber did not catch
// is rethrown by join(); in a detached fiber it terminates the process.
class FLEXSC_FIBER_API Fiber {
 public:
  Fiber() = default;
  Fiber(Fiber&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  Fiber& operator=(Fiber&& o) noexcept;
  ~Fiber();

  bool joinable() const { return f_ != nullptr; }
  void join();
  void detach();
  uint64_t id() const;

 private:
  friend class detail::PoolImpl;
  explicit Fiber(detail::FiberControl* f) : f_(f) {}
  detail::FiberControl* f_ = nullptr;
};

// Starts fn in a new fiber of the current fiber's pool.  Outside a fiber:
// throws std::logic_error (use Pool::spawn).
FLEXSC_FIBER_API Fiber spawn(std::function<void()> fn);

namespace this_fiber {
// True on a fiber (false on a plain thread, a scheduler's own loop included).
FLEXSC_FIBER_API bool inside();
// The running fiber's id (0 on a plain thread).
FLEXSC_FIBER_API uint64_t id();
// The index of the scheduler running the caller (-1 on a plain thread).
FLEXSC_FIBER_API int scheduler();
// Lets the other ready fibers run.  On a plain thread: sched_yield.
FLEXSC_FIBER_API void yield();
FLEXSC_FIBER_API void sleep_until(std::chrono::steady_clock::time_point t);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  sleep_until(std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(d));
}
}  // namespace this_fiber

// ---- synchronization that parks fibers -----------------------------------

namespace detail {
// A FIFO of parked waiters (fibers or threads) under a lock.
class FLEXSC_FIBER_API WaitQueue {
 public:
  // Parks the caller until woken; `lock` is released once the caller is
  // queued, and taken again before returning.
  void park(std::unique_lock<std::mutex>& lock);
  // As park(), but gives up at `deadline`: false on timeout.
  bool park_until(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point deadline);
  // Wakes the oldest waiter; false if none.  Call with the lock held.
  bool wake_one();
  void wake_all();
  bool empty() const { return head_ == nullptr; }

 private:
  bool park_impl(std::unique_lock<std::mutex>& lock, uint64_t deadline_ns);
  void push(Waiter* w);
  bool remove(Waiter* w);
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};
}  // namespace detail

// Fair to parked waiters: unlock hands the mutex to the oldest one.
class FLEXSC_FIBER_API Mutex {
 public:
  void lock();
  bool try_lock();
  void unlock();

 private:
  std::mutex m_;
  bool held_ = false;
  detail::WaitQueue waiters_;
};

class FLEXSC_FIBER_API ConditionVariable {
 public:
  void wait(std::unique_lock<Mutex>& lock);
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  // false on timeout.
  bool wait_until(std::unique_lock<Mutex>& lock, std::chrono::steady_clock::time_point deadline);
  void notify_one();
  void notify_all();

 private:
  std::mutex m_;
  detail::WaitQueue waiters_;
};

class FLEXSC_FIBER_API Semaphore {
 public:
  explicit Semaphore(std::size_t initial = 0) : count_(initial) {}
  void acquire();
  bool try_acquire();
  void release(std::size_t n = 1);

 private:
  std::mutex m_;
  std::size_t count_;
  detail::WaitQueue waiters_;
};

// Go's sync.WaitGroup: add() before starting work, done() when each part
// finishes, wait() until the count is back to zero.
class FLEXSC_FIBER_API WaitGroup {
 public:
  void add(std::ptrdiff_t n = 1);
  void done() { add(-1); }
  void wait();

 private:
  std::mutex m_;
  std::ptrdiff_t count_ = 0;
  detail::WaitQueue waiters_;
};

// A bounded multi-producer multi-consumer channel.  close() wakes everyone:
// send() then returns false, receive() drains what is left and then
// returns nullopt.
template <class T>
class Channel {
 public:
  explicit Channel(std::size_t capacity = 1) : capacity_(capacity ? capacity : 1) {}

  bool send(T value) {
    std::unique_lock lock(m_);
    while (!closed_ && items_.size() >= capacity_) senders_.park(lock);
    if (closed_) return false;
    items_.push_back(std::move(value));
    receivers_.wake_one();
    return true;
  }
  std::optional<T> receive() {
    std::unique_lock lock(m_);
    while (!closed_ && items_.empty()) receivers_.park(lock);
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    senders_.wake_one();
    return v;
  }
  void close() {
    std::unique_lock lock(m_);
    closed_ = true;
    senders_.wake_all();
    receivers_.wake_all();
  }

 private:
  std::mutex m_;
  std::deque<T> items_;
  std::size_t capacity_;
  bool closed_ = false;
  detail::WaitQueue senders_, receivers_;
};

// ---- fiber-local storage ---------------------------------------------------
//
// One T per fiber (per thread on plain threads), constructed on first use
// and destroyed when the fiber ends.
namespace detail {
FLEXSC_FIBER_API std::size_t fls_new_key();
// The calling fiber's (or thread's) slot for key; destroy frees what it
// holds when the fiber (or thread) ends.
FLEXSC_FIBER_API void** fls_slot(std::size_t key, void (*destroy)(void*));
}  // namespace detail

template <class T>
class FiberLocal {
 public:
  FiberLocal() : key_(detail::fls_new_key()) {}
  T& get() {
    void** slot = detail::fls_slot(key_, [](void* p) { delete static_cast<T*>(p); });
    if (!*slot) *slot = new T();  // a throwing constructor leaves the slot empty
    return *static_cast<T*>(*slot);
  }
  T* operator->() { return &get(); }
  T& operator*() { return get(); }

 private:
  std::size_t key_;
};

}  // namespace flexsc::fiber
