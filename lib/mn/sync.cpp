// pthread synchronization on glibc's objects, waiting in the parking lot.
// The layouts are glibc 2.36's for x86-64 (nptl/pthread_mutex_lock.c,
// pthread_cond_wait.c, pthread_rwlock_common.c, sem_waitcommon.c,
// pthread_once.c); each object's section says which words it uses.
#include "mn/sync.h"

#include <linux/futex.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <flexsc/fiber.hpp>

#include "base/futex.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"
#include "mn/parking_lot.h"

namespace flexsc::mn {

namespace {

using flexsc::detail::cpu_relax;
using flexsc::detail::now_ns;
using flexsc::detail::raw_syscall6;

// glibc's objects are plain structs that its own code accesses atomically.
template <class T>
std::atomic_ref<T> atomic(T& v) {
  return std::atomic_ref<T>(v);
}

std::atomic<int (*)()> g_owner_id{&flexsc::detail::current_tid};

int self() {
  return g_owner_id.load(std::memory_order_relaxed)();
}

// Wakes sleepers of the kernel's futex on the word: threads of glibc's
// real functions, or of a raw syscall, which the parking lot never sees.
long kernel_futex(const void* uaddr, int op, long val, long arg4, const void* uaddr2, long val3) {
  return raw_syscall6(SYS_futex, reinterpret_cast<long>(uaddr), op, val, arg4, reinterpret_cast<long>(uaddr2),
                      val3);
}
long kernel_wake(const void* uaddr, int n, uint32_t bits = kAnyBits) {
  const long woken = kernel_futex(uaddr, FUTEX_WAKE_BITSET_PRIVATE, n, 0, nullptr, static_cast<int>(bits));
  return woken > 0 ? woken : 0;
}

// ---- time ------------------------------------------------------------------

constexpr int64_t kNsPerSecond = 1000000000;
constexpr int64_t kFarSeconds = 1000000000;  // 31 years: as good as never

bool valid_clock(clockid_t clock) {
  return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}
bool valid_time(const timespec& t) {
  return t.tv_nsec >= 0 && t.tv_nsec < kNsPerSecond;
}

// A span (valid_time) in ns, at most kFarSeconds.
uint64_t span_ns(int64_t sec, int64_t nsec) {
  if (sec >= kFarSeconds) return static_cast<uint64_t>(kFarSeconds * kNsPerSecond);
  const int64_t ns = sec * kNsPerSecond + nsec;
  return ns > 0 ? static_cast<uint64_t>(ns) : 0;
}

// abstime on `clock` as a CLOCK_MONOTONIC deadline, taken now.  The
// monotonic clock is read after `clock`, so the deadline is never early.
uint64_t deadline_of(clockid_t clock, const timespec& abstime) {
  if (abstime.tv_sec < 0) return 1;  // passed (glibc: ETIMEDOUT)
  timespec now;
  clock_gettime(clock, &now);
  const uint64_t mono = now_ns();
  return mono + span_ns(abstime.tv_sec - now.tv_sec, abstime.tv_nsec - now.tv_nsec);
}

// A timed call's limit: none, or an absolute time, turned into a deadline
// the first time the call would block.
class Limit {
 public:
  Limit() = default;
  Limit(clockid_t clock, const timespec* abstime) : clock_(clock), abstime_(abstime) {}
  bool valid() const { return !abstime_ || valid_time(*abstime_); }
  uint64_t deadline() {
    if (abstime_ && deadline_ == kNoDeadline) deadline_ = deadline_of(clock_, *abstime_);
    return deadline_;
  }

 private:
  clockid_t clock_ = CLOCK_REALTIME;
  const timespec* abstime_ = nullptr;
  uint64_t deadline_ = kNoDeadline;
};

// ---- mutexes: glibc's fields and their meanings.  __lock 0 free, 1 held,
// 2 held and maybe waited for (lll_lock's protocol, so glibc's own
// lockers interoperate), __owner the holder's tid, __count the recursion
// of a recursive one, __nusers the holds (glibc's destroy says EBUSY).

constexpr int kElisionHints = 256 | 512;  // PTHREAD_MUTEX_ELISION_NP, _NO_ELISION_NP

int mutex_kind(const pthread_mutex_t* m) {
  return m->__data.__kind & ~kElisionHints;
}

bool try_take(int& word) {
  int unlocked = 0;
  return atomic(word).compare_exchange_strong(unlocked, 1, std::memory_order_acquire,
                                              std::memory_order_relaxed);
}

// PTHREAD_MUTEX_ADAPTIVE_NP: a while spinning first, as glibc does.
bool spin_take(int& word) {
  for (int i = 0; i < 100; ++i) {
    cpu_relax();
    if (atomic(word).load(std::memory_order_relaxed) == 0 && try_take(word)) return true;
  }
  return false;
}

// Takes the word, parking until then or the deadline: 0 or ETIMEDOUT.
int take(int& word, Limit& limit) {
  auto w = atomic(word);
  while (w.exchange(2, std::memory_order_acquire) != 0) {
    const ParkResult r = park(
        &word, [&] { return w.load(std::memory_order_relaxed) == 2; }, limit.deadline());
    if (r == ParkResult::TimedOut) return ETIMEDOUT;
  }
  return 0;
}

void give(int& word) {
  if (atomic(word).exchange(0, std::memory_order_release) == 2 && unpark_one(&word) == 0)
    kernel_wake(&word, 1);
}

// users: whether __nusers counts the hold.  A condition variable's
// waiter stays counted, as in glibc (its destroy says EBUSY meanwhile).
void record_owner(pthread_mutex_t* m, int kind, int me, bool users = true) {
  atomic(m->__data.__owner).store(me, std::memory_order_relaxed);
  if (kind == PTHREAD_MUTEX_RECURSIVE_NP) m->__data.__count = 1;
  if (users) ++m->__data.__nusers;
}

int lock_mutex(pthread_mutex_t* m, Limit limit, bool users = true) {
  auto& d = m->__data;
  const int kind = mutex_kind(m);
  const int me = self();
  if ((kind == PTHREAD_MUTEX_RECURSIVE_NP || kind == PTHREAD_MUTEX_ERRORCHECK_NP) &&
      atomic(d.__owner).load(std::memory_order_relaxed) == me) {
    if (kind == PTHREAD_MUTEX_ERRORCHECK_NP) return EDEADLK;
    if (d.__count + 1 == 0) return EAGAIN;
    ++d.__count;
    return 0;
  }
  if (!try_take(d.__lock) && !(kind == PTHREAD_MUTEX_ADAPTIVE_NP && spin_take(d.__lock))) {
    if (!limit.valid()) return EINVAL;  // checked only when it would block, as glibc does
    if (const int err = take(d.__lock, limit)) return err;
  }
  record_owner(m, kind, me, users);
  return 0;
}

int unlock_mutex(pthread_mutex_t* m, bool users = true) {
  auto& d = m->__data;
  const int kind = mutex_kind(m);
  if (kind == PTHREAD_MUTEX_RECURSIVE_NP || kind == PTHREAD_MUTEX_ERRORCHECK_NP) {
    if (atomic(d.__owner).load(std::memory_order_relaxed) != self() ||
        atomic(d.__lock).load(std::memory_order_relaxed) == 0)
      return EPERM;
    if (kind == PTHREAD_MUTEX_RECURSIVE_NP && --d.__count != 0) return 0;
  }
  atomic(d.__owner).store(0, std::memory_order_relaxed);
  if (users) --d.__nusers;
  give(d.__lock);
  return 0;
}

// ---- condition variables: the sequence word is __wseq's low half, bumped
// by each signal and broadcast.  __wrefs keeps glibc's meaning: bit 0
// process-shared, bit 1 the clock, bit 2 a destroy waits, and from bit 3
// the waiters still inside, so glibc's own destroy works too.

constexpr unsigned kCondShared = 1, kCondMonotonic = 2, kCondDestroying = 4, kCondWaiter = 8;

uint32_t& cond_seq(pthread_cond_t* c) {
  return c->__data.__wseq.__value32.__low;
}

// A condition variable's mutex, of any kind (glibc's real functions for
// the kinds handles() refuses).
int unlock_for_wait(pthread_mutex_t* m) {
  return handles(m) ? unlock_mutex(m, false) : pthread_mutex_unlock(m);
}
int relock_after_wait(pthread_mutex_t* m) {
  return handles(m) ? lock_mutex(m, Limit(), false) : pthread_mutex_lock(m);
}

// The waiter's last access to the cond's memory.
void leave_cond(pthread_cond_t* c) {
  unsigned& refs = c->__data.__wrefs;
  const unsigned old = atomic(refs).fetch_sub(kCondWaiter, std::memory_order_release);
  if (old / kCondWaiter == 1 && (old & kCondDestroying)) {
    unpark_all(&refs);
    kernel_wake(&refs, INT_MAX);
  }
}

int cond_wait_until(pthread_cond_t* c, pthread_mutex_t* m, Limit limit) {
  uint32_t& seq = cond_seq(c);
  atomic(c->__data.__wrefs).fetch_add(kCondWaiter, std::memory_order_relaxed);
  // Read while the mutex is held: a signal made after the unlock changes it.
  const uint32_t seen = atomic(seq).load(std::memory_order_relaxed);
  int err = unlock_for_wait(m);
  ParkResult r = ParkResult::Woken;
  if (!err)
    r = park(
        &seq, [&] { return atomic(seq).load(std::memory_order_relaxed) == seen; }, limit.deadline());
  leave_cond(c);
  if (err) return err;
  err = relock_after_wait(m);
  return err ? err : r == ParkResult::TimedOut ? ETIMEDOUT : 0;
}

int wake_cond(pthread_cond_t* c, int n) {
  // A waiter counted itself before it released the mutex, so a signaller
  // that changed the predicate under the mutex sees it.
  if (atomic(c->__data.__wrefs).load(std::memory_order_relaxed) / kCondWaiter == 0) return 0;
  // Relaxed: the bucket lock orders it before any waiter's check.
  atomic(cond_seq(c)).fetch_add(1, std::memory_order_relaxed);
  unpark(&cond_seq(c), n);
  return 0;
}

// ---- rwlocks: the state is in __readers (the readers holding it, a
// writer holding it, readers waiting, writers waiting), readers wait on
// __readers and writers on __writers.  __cur_writer is the writer's tid,
// __flags the preference and __shared process-sharing, as glibc has them.

constexpr uint32_t kReaders = (1u << 29) - 1;
constexpr uint32_t kWritersWaiting = 1u << 29;
constexpr uint32_t kReadersWaiting = 1u << 30;
constexpr uint32_t kWriteLocked = 1u << 31;

std::atomic_ref<uint32_t> rw_state(pthread_rwlock_t* rw) {
  return atomic(rw->__data.__readers);
}
bool prefers_writers(const pthread_rwlock_t* rw) {
  return rw->__data.__flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}
// A reader may enter: no writer holds it and, preferring writers, none waits.
bool readable(uint32_t s, bool prefer_writers) {
  return !(s & kWriteLocked) && !(prefer_writers && (s & kWritersWaiting));
}

int wake_readers(pthread_rwlock_t* rw) {
  return unpark(&rw->__data.__readers, INT_MAX,
                [&](int, bool) { rw_state(rw).fetch_and(~kReadersWaiting, std::memory_order_relaxed); });
}

bool wake_writer(pthread_rwlock_t* rw) {
  return unpark(&rw->__data.__writers, 1, [&](int, bool others_left) {
           if (!others_left) rw_state(rw).fetch_and(~kWritersWaiting, std::memory_order_relaxed);
         }) > 0;
}

// After a release that left no writer inside: readers first under reader
// preference, else a writer first; the others when none of those woke (a
// flag can be stale: its waiter gave up, or got in without parking).
void wake_after_release(pthread_rwlock_t* rw, bool readers_first) {
  const auto flagged = [&](uint32_t flag) { return rw_state(rw).load(std::memory_order_relaxed) & flag; };
  if (readers_first && flagged(kReadersWaiting) && wake_readers(rw) > 0) return;
  if (flagged(kWritersWaiting) && wake_writer(rw)) return;
  if (flagged(kReadersWaiting)) wake_readers(rw);
}

int read_lock(pthread_rwlock_t* rw, Limit limit) {
  if (!limit.valid()) return EINVAL;
  if (atomic(rw->__data.__cur_writer).load(std::memory_order_relaxed) == self()) return EDEADLK;
  auto state = rw_state(rw);
  const bool prefer_writers = prefers_writers(rw);
  for (;;) {
    uint32_t s = state.load(std::memory_order_relaxed);
    if (readable(s, prefer_writers)) {
      if ((s & kReaders) == kReaders) return EAGAIN;
      if (state.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed))
        return 0;
      continue;
    }
    if (!(s & kReadersWaiting)) {
      if (!state.compare_exchange_weak(s, s | kReadersWaiting, std::memory_order_relaxed)) continue;
      s |= kReadersWaiting;
    }
    const ParkResult r = park(
        &rw->__data.__readers, [&] { return state.load(std::memory_order_relaxed) == s; }, limit.deadline(),
        kAnyBits,
        [&](bool others_left) {
          if (!others_left) state.fetch_and(~kReadersWaiting, std::memory_order_relaxed);
        });
    if (r == ParkResult::TimedOut) return ETIMEDOUT;
  }
}

int write_lock(pthread_rwlock_t* rw, Limit limit) {
  if (!limit.valid()) return EINVAL;
  const int me = self();
  if (atomic(rw->__data.__cur_writer).load(std::memory_order_relaxed) == me) return EDEADLK;
  auto state = rw_state(rw);
  for (;;) {
    uint32_t s = state.load(std::memory_order_relaxed);
    if (!(s & (kWriteLocked | kReaders))) {
      if (state.compare_exchange_weak(s, s | kWriteLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        atomic(rw->__data.__cur_writer).store(me, std::memory_order_relaxed);
        return 0;
      }
      continue;
    }
    if (!(s & kWritersWaiting)) {
      if (!state.compare_exchange_weak(s, s | kWritersWaiting, std::memory_order_relaxed)) continue;
      s |= kWritersWaiting;
    }
    // The last writer to give up clears the flag: readers kept out by it
    // (writer preference) may then enter.
    bool readers_kept_out = false;
    const ParkResult r = park(
        &rw->__data.__writers, [&] { return state.load(std::memory_order_relaxed) == s; }, limit.deadline(),
        kAnyBits,
        [&](bool others_left) {
          if (others_left) return;
          const uint32_t old = state.fetch_and(~kWritersWaiting, std::memory_order_relaxed);
          readers_kept_out = (old & kReadersWaiting) && !(old & kWriteLocked);
        });
    if (r == ParkResult::TimedOut) {
      if (readers_kept_out) wake_readers(rw);
      return ETIMEDOUT;
    }
  }
}

// ---- barriers: a layout of our own in pthread_barrier_t's 32 bytes.
// `magic` lies where glibc's init writes its `shared` (0 or 128), so a
// barrier the real init made (process-shared) is never taken for ours.
struct BarrierWords {
  uint64_t state;  // the round << 32 | the waiters arrived in it
  uint32_t count;
  uint32_t magic;
  uint32_t inside;  // waiters that may still read the barrier
};
static_assert(sizeof(BarrierWords) <= sizeof(pthread_barrier_t));
constexpr uint32_t kBarrierMagic = 0x666c6d62;

BarrierWords& barrier_words(const pthread_barrier_t* b) {
  return *reinterpret_cast<BarrierWords*>(const_cast<pthread_barrier_t*>(b));
}

// ---- semaphores: glibc's struct new_sem: the value in the low 32 bits of
// `data` (the kernel's futex word too), the waiters in the high 32;
// `private_` is 0 (FUTEX_PRIVATE) unless process-shared.
struct SemWords {
  uint64_t data;
  int private_;
  int pad;
};
static_assert(sizeof(SemWords) <= sizeof(sem_t));
constexpr uint64_t kSemWaiter = 1ull << 32;

SemWords& sem_words(const sem_t* s) {
  return *reinterpret_cast<SemWords*>(const_cast<sem_t*>(s));
}

int sem_wait_until(sem_t* sem, Limit limit) {
  uint64_t& data = sem_words(sem).data;
  auto d = atomic(data);
  uint64_t v = d.load(std::memory_order_relaxed);
  while (static_cast<uint32_t>(v) > 0)
    if (d.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return 0;
  d.fetch_add(kSemWaiter, std::memory_order_relaxed);
  for (;;) {
    v = d.load(std::memory_order_relaxed);
    if (static_cast<uint32_t>(v) > 0) {
      if (d.compare_exchange_weak(v, v - 1 - kSemWaiter, std::memory_order_acquire,
                                  std::memory_order_relaxed))
        return 0;
      continue;
    }
    const auto empty = [&] { return static_cast<uint32_t>(d.load(std::memory_order_relaxed)) == 0; };
    if (park(&data, empty, limit.deadline()) == ParkResult::TimedOut) {
      d.fetch_sub(kSemWaiter, std::memory_order_relaxed);
      return ETIMEDOUT;
    }
  }
}

// ---- pthread_once: glibc's states, 0 not run, 2 done, and running: 1
// with the fork generation above it, so a child can tell a run a thread
// it lost began before the fork, and start it again.
constexpr int kOnceRunning = 1, kOnceDone = 2, kOnceForkGeneration = 4;

std::atomic<int> g_fork_generation{0};
[[maybe_unused]] const int g_fork_handler = pthread_atfork(
    nullptr, nullptr, [] { g_fork_generation.fetch_add(kOnceForkGeneration, std::memory_order_relaxed); });

void wake_once_waiters(pthread_once_t* control) {
  unpark_all(control);
  kernel_wake(control, INT_MAX);
}

// ---- the futex

bool misaligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(uint32_t) != 0;
}

long futex_wait(uint32_t* uaddr, uint32_t val, uint64_t deadline, uint32_t bits) {
  switch (park(
      uaddr, [&] { return atomic(*uaddr).load(std::memory_order_relaxed) == val; }, deadline, bits)) {
    case ParkResult::Woken:
      return 0;
    case ParkResult::TimedOut:
      return -ETIMEDOUT;
    case ParkResult::Invalid:
      break;
  }
  return -EAGAIN;
}

// The kernel wakes one waiter even when asked for none (or fewer).
int at_least_one(int n) {
  return n < 1 ? 1 : n;
}

long futex_wake(uint32_t* uaddr, int n, uint32_t bits) {
  n = at_least_one(n);
  const int woken = unpark(uaddr, n, bits);
  return woken < n ? woken + kernel_wake(uaddr, n - woken, bits) : woken;
}

long futex_requeue(uint32_t* uaddr, uint32_t* uaddr2, int n_wake, int n_requeue, const uint32_t* expected) {
  if (n_wake < 0 || n_requeue < 0 || misaligned(uaddr2)) return -EINVAL;
  const Requeued r = requeue(uaddr, uaddr2, n_wake, n_requeue, [&] {
    return !expected || atomic(*uaddr).load(std::memory_order_relaxed) == *expected;
  });
  if (!r.valid) return -EAGAIN;
  long total = r.woken + r.moved;
  if (r.woken < n_wake || r.moved < n_requeue) {
    const long k =
        kernel_futex(uaddr, FUTEX_REQUEUE_PRIVATE, n_wake - r.woken, n_requeue - r.moved, uaddr2, 0);
    if (k > 0) total += k;
  }
  return total;
}

// FUTEX_WAKE_OP's encoded operation, applied as the kernel does:
// returns whether the old value passed the comparison, or -ENOSYS.
int apply_wake_op(uint32_t* uaddr2, uint32_t encoded) {
  const unsigned op = (encoded >> 28) & 7;
  const unsigned cmp = (encoded >> 24) & 15;
  const auto sign_extend12 = [](uint32_t v) { return static_cast<int>(v << 20) >> 20; };
  int oparg = sign_extend12((encoded >> 12) & 0xfff);
  const int cmparg = sign_extend12(encoded & 0xfff);
  if (encoded & (static_cast<uint32_t>(FUTEX_OP_OPARG_SHIFT) << 28))
    oparg = static_cast<int>(1u << (oparg & 31));
  if (op > FUTEX_OP_XOR) return -ENOSYS;
  auto w = atomic(*uaddr2);
  uint32_t old = w.load(std::memory_order_relaxed);
  const auto arg = static_cast<uint32_t>(oparg);
  for (;;) {
    uint32_t next = arg;
    switch (op) {
      case FUTEX_OP_ADD:
        next = old + arg;
        break;
      case FUTEX_OP_OR:
        next = old | arg;
        break;
      case FUTEX_OP_ANDN:
        next = old & ~arg;
        break;
      case FUTEX_OP_XOR:
        next = old ^ arg;
        break;
    }
    if (w.compare_exchange_weak(old, next, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
  }
  const int v = static_cast<int>(old);
  switch (cmp) {
    case FUTEX_OP_CMP_EQ:
      return v == cmparg;
    case FUTEX_OP_CMP_NE:
      return v != cmparg;
    case FUTEX_OP_CMP_LT:
      return v < cmparg;
    case FUTEX_OP_CMP_LE:
      return v <= cmparg;
    case FUTEX_OP_CMP_GT:
      return v > cmparg;
    case FUTEX_OP_CMP_GE:
      return v >= cmparg;
  }
  return -ENOSYS;
}

long futex_wake_op(uint32_t* uaddr, uint32_t* uaddr2, int n1, int n2, uint32_t encoded) {
  if (misaligned(uaddr2)) return -EINVAL;
  n1 = at_least_one(n1);
  n2 = at_least_one(n2);
  int woken1 = 0, woken2 = 0;
  const int r = unpark_two(
      uaddr, n1, uaddr2, n2, [&] { return apply_wake_op(uaddr2, encoded); }, woken1, woken2);
  if (r < 0) return r;
  long total = woken1 < n1 ? woken1 + kernel_wake(uaddr, n1 - woken1) : woken1;
  if (r > 0) total += woken2 < n2 ? woken2 + kernel_wake(uaddr2, n2 - woken2) : woken2;
  return total;
}

}  // namespace

void set_owner_id_source(int (*source)()) {
  g_owner_id.store(source ? source : &flexsc::detail::current_tid, std::memory_order_relaxed);
}

// ---- mutexes

bool handles(const pthread_mutex_t* m) {
  const int kind = mutex_kind(m);  // -1 once destroyed
  return kind >= PTHREAD_MUTEX_TIMED_NP && kind <= PTHREAD_MUTEX_ADAPTIVE_NP;
}

int mutex_lock(pthread_mutex_t* m) {
  return lock_mutex(m, Limit());
}

int mutex_trylock(pthread_mutex_t* m) {
  auto& d = m->__data;
  const int kind = mutex_kind(m);
  const int me = self();
  if (kind == PTHREAD_MUTEX_RECURSIVE_NP && atomic(d.__owner).load(std::memory_order_relaxed) == me) {
    if (d.__count + 1 == 0) return EAGAIN;
    ++d.__count;
    return 0;
  }
  if (!try_take(d.__lock)) return EBUSY;
  record_owner(m, kind, me);
  return 0;
}

int mutex_timedlock(pthread_mutex_t* m, const struct timespec* abstime) {
  return lock_mutex(m, Limit(CLOCK_REALTIME, abstime));
}

int mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abstime) {
  if (!valid_clock(clock)) return EINVAL;
  return lock_mutex(m, Limit(clock, abstime));
}

int mutex_unlock(pthread_mutex_t* m) {
  return unlock_mutex(m);
}

// ---- condition variables

bool handles(const pthread_cond_t* c) {
  // Atomic: waiters count themselves in the same word meanwhile.
  return !(atomic(const_cast<unsigned&>(c->__data.__wrefs)).load(std::memory_order_relaxed) & kCondShared);
}

int cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  return cond_wait_until(c, m, Limit());
}

int cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abstime) {
  if (!valid_time(*abstime)) return EINVAL;
  const bool monotonic = atomic(c->__data.__wrefs).load(std::memory_order_relaxed) & kCondMonotonic;
  return cond_wait_until(c, m, Limit(monotonic ? CLOCK_MONOTONIC : CLOCK_REALTIME, abstime));
}

int cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const struct timespec* abstime) {
  if (!valid_time(*abstime) || !valid_clock(clock)) return EINVAL;
  return cond_wait_until(c, m, Limit(clock, abstime));
}

int cond_signal(pthread_cond_t* c) {
  return wake_cond(c, 1);
}

int cond_broadcast(pthread_cond_t* c) {
  return wake_cond(c, INT_MAX);
}

int cond_destroy(pthread_cond_t* c) {
  unsigned& refs = c->__data.__wrefs;
  unsigned seen = atomic(refs).fetch_or(kCondDestroying, std::memory_order_acquire) | kCondDestroying;
  while (seen / kCondWaiter != 0) {
    park(&refs, [&] { return atomic(refs).load(std::memory_order_relaxed) == seen; });
    seen = atomic(refs).load(std::memory_order_acquire);
  }
  return 0;
}

// ---- rwlocks

bool handles(const pthread_rwlock_t* rw) {
  return rw->__data.__shared == 0;
}

int rwlock_rdlock(pthread_rwlock_t* rw) {
  return read_lock(rw, Limit());
}

int rwlock_tryrdlock(pthread_rwlock_t* rw) {
  auto state = rw_state(rw);
  uint32_t s = state.load(std::memory_order_relaxed);
  while (readable(s, prefers_writers(rw))) {
    if ((s & kReaders) == kReaders) return EAGAIN;
    if (state.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) return 0;
  }
  return EBUSY;
}

int rwlock_timedrdlock(pthread_rwlock_t* rw, const struct timespec* abstime) {
  return read_lock(rw, Limit(CLOCK_REALTIME, abstime));
}

int rwlock_clockrdlock(pthread_rwlock_t* rw, clockid_t clock, const struct timespec* abstime) {
  if (!valid_clock(clock)) return EINVAL;
  return read_lock(rw, Limit(clock, abstime));
}

int rwlock_wrlock(pthread_rwlock_t* rw) {
  return write_lock(rw, Limit());
}

int rwlock_trywrlock(pthread_rwlock_t* rw) {
  auto state = rw_state(rw);
  uint32_t s = state.load(std::memory_order_relaxed);
  while (!(s & (kWriteLocked | kReaders))) {
    if (state.compare_exchange_weak(s, s | kWriteLocked, std::memory_order_acquire,
                                    std::memory_order_relaxed)) {
      atomic(rw->__data.__cur_writer).store(self(), std::memory_order_relaxed);
      return 0;
    }
  }
  return EBUSY;
}

int rwlock_timedwrlock(pthread_rwlock_t* rw, const struct timespec* abstime) {
  return write_lock(rw, Limit(CLOCK_REALTIME, abstime));
}

int rwlock_clockwrlock(pthread_rwlock_t* rw, clockid_t clock, const struct timespec* abstime) {
  if (!valid_clock(clock)) return EINVAL;
  return write_lock(rw, Limit(clock, abstime));
}

int rwlock_unlock(pthread_rwlock_t* rw) {
  auto state = rw_state(rw);
  const uint32_t s = state.load(std::memory_order_relaxed);
  if (s & kWriteLocked) {
    if (atomic(rw->__data.__cur_writer).load(std::memory_order_relaxed) != self()) return EPERM;
    atomic(rw->__data.__cur_writer).store(0, std::memory_order_relaxed);
    const uint32_t old = state.fetch_and(~kWriteLocked, std::memory_order_release);
    if (old & (kReadersWaiting | kWritersWaiting)) wake_after_release(rw, !prefers_writers(rw));
    return 0;
  }
  if ((s & kReaders) == 0) return EPERM;
  const uint32_t old = state.fetch_sub(1, std::memory_order_release);
  if ((old & kReaders) == 1 && (old & kWritersWaiting)) wake_after_release(rw, false);
  return 0;
}

// ---- barriers

bool handles(const pthread_barrierattr_t* attr) {
  int pshared = PTHREAD_PROCESS_PRIVATE;
  return !attr || (pthread_barrierattr_getpshared(attr, &pshared) == 0 && pshared == PTHREAD_PROCESS_PRIVATE);
}

bool handles(const pthread_barrier_t* b) {
  return barrier_words(b).magic == kBarrierMagic;
}

int barrier_init(pthread_barrier_t* b, unsigned count) {
  if (count == 0 || count >= UINT_MAX / 2) return EINVAL;  // glibc's bounds
  BarrierWords& w = barrier_words(b);
  w.state = 0;
  w.count = count;
  w.inside = 0;
  w.magic = kBarrierMagic;
  return 0;
}

int barrier_wait(pthread_barrier_t* b) {
  BarrierWords& w = barrier_words(b);
  auto state = atomic(w.state);
  atomic(w.inside).fetch_add(1, std::memory_order_relaxed);
  uint64_t s = state.load(std::memory_order_relaxed);
  uint64_t next;
  do {  // the last arrival starts the next round, with nobody arrived
    next = static_cast<uint32_t>(s) + 1 == w.count ? ((s >> 32) + 1) << 32 : s + 1;
  } while (!state.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed));
  const auto round = static_cast<uint32_t>(s >> 32);
  const auto in_round = [&] {
    return static_cast<uint32_t>(state.load(std::memory_order_acquire) >> 32) == round;
  };
  int ret = 0;
  if (static_cast<uint32_t>(next) == 0) {
    unpark_all(&w.state);
    ret = PTHREAD_BARRIER_SERIAL_THREAD;
  } else {
    while (in_round()) park(&w.state, in_round);
  }
  atomic(w.inside).fetch_sub(1, std::memory_order_release);
  return ret;
}

int barrier_destroy(pthread_barrier_t* b) {
  BarrierWords& w = barrier_words(b);
  if (static_cast<uint32_t>(atomic(w.state).load(std::memory_order_relaxed)) != 0) return EBUSY;
  // Woken waiters are about to leave: let them (fibers of this scheduler too).
  while (atomic(w.inside).load(std::memory_order_acquire) != 0) fiber::this_fiber::yield();
  w.magic = 0;
  return 0;
}

// ---- semaphores

bool handles(const sem_t* s) {
  return sem_words(s).private_ == 0;
}

int sem_wait(sem_t* s) {
  return sem_wait_until(s, Limit());
}

int sem_trywait(sem_t* s) {
  auto d = atomic(sem_words(s).data);
  uint64_t v = d.load(std::memory_order_relaxed);
  while (static_cast<uint32_t>(v) > 0)
    if (d.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return 0;
  return EAGAIN;
}

int sem_timedwait(sem_t* s, const struct timespec* abstime) {
  if (!valid_time(*abstime)) return EINVAL;
  return sem_wait_until(s, Limit(CLOCK_REALTIME, abstime));
}

int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abstime) {
  if (!valid_clock(clock) || !valid_time(*abstime)) return EINVAL;
  return sem_wait_until(s, Limit(clock, abstime));
}

int sem_post(sem_t* s) {
  uint64_t& data = sem_words(s).data;
  auto d = atomic(data);
  uint64_t v = d.load(std::memory_order_relaxed);
  do {
    if (static_cast<uint32_t>(v) == SEM_VALUE_MAX) return EOVERFLOW;
  } while (!d.compare_exchange_weak(v, v + 1, std::memory_order_release, std::memory_order_relaxed));
  if ((v >> 32) != 0 && unpark_one(&data) == 0) kernel_wake(&data, 1);
  return 0;
}

// ---- pthread_once

int once(pthread_once_t* control, void (*init)()) {
  auto state = atomic(*control);
  for (;;) {
    int seen = state.load(std::memory_order_acquire);
    if (seen & kOnceDone) return 0;
    const int running = g_fork_generation.load(std::memory_order_relaxed) | kOnceRunning;
    if (seen == running) {
      park(control, [&] { return state.load(std::memory_order_relaxed) == running; });
      continue;
    }
    if (!state.compare_exchange_strong(seen, running, std::memory_order_acquire, std::memory_order_relaxed))
      continue;
    // An init that unwinds (an exception, pthread_exit, cancellation)
    // leaves it to be run again, as glibc's cleanup handler does.
    struct Undo {
      pthread_once_t* control;
      bool done = false;
      ~Undo() {
        if (done) return;
        atomic(*control).store(0, std::memory_order_relaxed);
        wake_once_waiters(control);
      }
    } undo{control};
    init();
    undo.done = true;
    state.store(kOnceDone, std::memory_order_release);
    wake_once_waiters(control);
    return 0;
  }
}

// ---- the futex

bool futex_handles(int op) {
  if (!(op & FUTEX_PRIVATE_FLAG)) return false;
  switch (op & FUTEX_CMD_MASK) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET:
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET:
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE:
    case FUTEX_WAKE_OP:
      return true;
  }
  return false;
}

long futex(uint32_t* uaddr, int op, uint32_t val, unsigned long arg4, uint32_t* uaddr2, uint32_t val3) {
  const int cmd = op & FUTEX_CMD_MASK;
  const auto* timeout = reinterpret_cast<const timespec*>(arg4);
  const bool waits = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
  if (waits && timeout && (timeout->tv_sec < 0 || !valid_time(*timeout))) return -EINVAL;
  if ((op & FUTEX_CLOCK_REALTIME) && cmd != FUTEX_WAIT_BITSET) return -ENOSYS;
  if ((cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_WAKE_BITSET) && val3 == 0) return -EINVAL;
  if (misaligned(uaddr)) return -EINVAL;
  const int n = static_cast<int>(val);
  const int n2 =
      static_cast<int>(static_cast<uint32_t>(arg4));  // val2: the pointer's low half, as the kernel takes it
  switch (cmd) {
    case FUTEX_WAIT:  // relative, on CLOCK_MONOTONIC
      return futex_wait(uaddr, val,
                        timeout ? now_ns() + span_ns(timeout->tv_sec, timeout->tv_nsec) : kNoDeadline,
                        kAnyBits);
    case FUTEX_WAIT_BITSET: {
      const clockid_t clock = (op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
      return futex_wait(uaddr, val, timeout ? deadline_of(clock, *timeout) : kNoDeadline, val3);
    }
    case FUTEX_WAKE:
      return futex_wake(uaddr, n, kAnyBits);
    case FUTEX_WAKE_BITSET:
      return futex_wake(uaddr, n, val3);
    case FUTEX_REQUEUE:
      return futex_requeue(uaddr, uaddr2, n, n2, nullptr);
    case FUTEX_CMP_REQUEUE:
      return futex_requeue(uaddr, uaddr2, n, n2, &val3);
    case FUTEX_WAKE_OP:
      return futex_wake_op(uaddr, uaddr2, n, n2, val3);
  }
  return -ENOSYS;
}

}  // namespace flexsc::mn
