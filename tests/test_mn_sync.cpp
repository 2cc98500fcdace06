// pthread synchronization for M:N threads (lib/mn), called directly (no
// interposition): from fibers of a Pool and from plain threads, on glibc
// objects made by static initializers and by the real pthread_*_init.  A
// fiber that blocks must park, never hold its carrier: the tests on one
// scheduler would hang otherwise.  Timed waits assert ETIMEDOUT and that
// the deadline passed, never how long they took.
#include <errno.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <flexsc/fiber.hpp>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_state.h"
#include "mn/sync.h"
#include "test_util.h"
#include "watchdog.h"

namespace fib = flexsc::fiber;
namespace mn = flexsc::mn;
using flexsc::test::scaled;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

namespace {

// Under mn each thread has a TCB (and a tid) of its own; a plain Pool's
// fibers share their carrier's, so here a fiber is named by its id.
int test_owner_id() {
  if (fib::this_fiber::inside()) return 0x40000000 + static_cast<int>(fib::this_fiber::id());
  return flexsc::detail::current_tid();
}

class MnSync : public ::testing::Test {
 protected:
  void SetUp() override { mn::set_owner_id_source(&test_owner_id); }
  void TearDown() override { mn::set_owner_id_source(nullptr); }
};

fib::PoolOptions on_schedulers(unsigned n) {
  fib::PoolOptions o;
  o.schedulers = n;
  return o;
}

// body(0 .. fibers-1) on fibers of a pool of `schedulers`, body(fibers ..)
// on `threads` plain threads, all at once; returns when all are done.
void run_mixed(unsigned schedulers, int fibers, int threads, const std::function<void(int)>& body) {
  std::vector<std::thread> plain;
  {
    fib::Pool pool(on_schedulers(schedulers));
    std::vector<fib::Fiber> spawned;
    for (int i = 0; i < fibers; ++i) spawned.push_back(pool.spawn([&body, i] { body(i); }));
    for (int i = 0; i < threads; ++i) plain.emplace_back([&body, fibers, i] { body(fibers + i); });
    for (auto& f : spawned) f.join();
  }
  for (auto& t : plain) t.join();
}

timespec after(clockid_t clock, std::chrono::nanoseconds d) {
  timespec t;
  clock_gettime(clock, &t);
  const long long ns = t.tv_nsec + d.count();
  t.tv_sec += static_cast<time_t>(ns / 1000000000);
  t.tv_nsec = static_cast<long>(ns % 1000000000);
  return t;
}

bool reached(clockid_t clock, const timespec& t) {
  timespec now;
  clock_gettime(clock, &now);
  return now.tv_sec > t.tv_sec || (now.tv_sec == t.tv_sec && now.tv_nsec >= t.tv_nsec);
}

constexpr int kMutexTypes[] = {PTHREAD_MUTEX_TIMED_NP, PTHREAD_MUTEX_RECURSIVE_NP,
                               PTHREAD_MUTEX_ERRORCHECK_NP, PTHREAD_MUTEX_ADAPTIVE_NP};

// A mutex of `type`, by its static initializer or by pthread_mutex_init.
void init_mutex(pthread_mutex_t* m, int type, bool statically) {
  static const pthread_mutex_t initializers[] = {
      PTHREAD_MUTEX_INITIALIZER, PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP,
      PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP, PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP};
  if (statically) {
    *m = initializers[type];
    return;
  }
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, type);
  ASSERT_EQ(pthread_mutex_init(m, &a), 0);
  pthread_mutexattr_destroy(&a);
}

// Whether thread `tid` of this process sleeps in the futex syscall on `word`.
bool asleep_in_futex(int tid, const void* word) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long nr = -1;
  std::string arg0;
  f >> nr >> arg0;
  return nr == SYS_futex && std::strtoull(arg0.c_str(), nullptr, 16) == reinterpret_cast<uintptr_t>(word);
}

long sys_futex(uint32_t* uaddr, int op, uint32_t val, unsigned long arg4 = 0, uint32_t* uaddr2 = nullptr,
               uint32_t val3 = 0) {
  return mn::futex(uaddr, op, val, arg4, uaddr2, val3);
}

// ---- mutexes -------------------------------------------------------------

TEST_F(MnSync, MutexesOfEveryKindExcludeFibersAndThreadsTogether) {
  Watchdog dog("mutex contention", 240s);
  const long rounds = scaled(3000);
  constexpr int kFibers = 6, kThreads = 2;
  for (const bool statically : {true, false}) {
    for (const int type : kMutexTypes) {
      SCOPED_TRACE(testing::Message() << "type " << type << (statically ? " static" : " init"));
      pthread_mutex_t m;
      init_mutex(&m, type, statically);
      ASSERT_TRUE(mn::handles(&m));
      const bool recursive = type == PTHREAD_MUTEX_RECURSIVE_NP;
      long counter = 0;
      int inside = 0;
      std::atomic<bool> overlapped{false};
      run_mixed(2, kFibers, kThreads, [&](int) {
        for (long r = 0; r < rounds; ++r) {
          ASSERT_EQ(mn::mutex_lock(&m), 0);
          if (recursive) {
            ASSERT_EQ(mn::mutex_lock(&m), 0);
          }
          if (++inside != 1) overlapped = true;
          ++counter;
          if (r % 64 == 0) fib::this_fiber::yield();  // held across a switch
          --inside;
          if (recursive) {
            ASSERT_EQ(mn::mutex_unlock(&m), 0);
          }
          ASSERT_EQ(mn::mutex_unlock(&m), 0);
        }
      });
      EXPECT_FALSE(overlapped);
      EXPECT_EQ(counter, rounds * (kFibers + kThreads));
      EXPECT_EQ(m.__data.__lock, 0);
      EXPECT_EQ(m.__data.__nusers, 0u);
      EXPECT_EQ(pthread_mutex_destroy(&m), 0);
    }
  }
}

TEST_F(MnSync, MutexesAnswerGlibcsErrors) {
  Watchdog dog("mutex errors", 60s);
  pthread_mutex_t errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
  EXPECT_EQ(mn::mutex_unlock(&errorcheck), EPERM);  // not locked
  ASSERT_EQ(mn::mutex_lock(&errorcheck), 0);
  EXPECT_EQ(errorcheck.__data.__owner, flexsc::detail::current_tid());
  EXPECT_EQ(mn::mutex_lock(&errorcheck), EDEADLK);
  EXPECT_EQ(mn::mutex_trylock(&errorcheck), EBUSY);
  const timespec soon = after(CLOCK_REALTIME, 1ms);
  EXPECT_EQ(mn::mutex_timedlock(&errorcheck, &soon), EDEADLK);
  std::thread([&] { EXPECT_EQ(mn::mutex_unlock(&errorcheck), EPERM); }).join();
  EXPECT_EQ(pthread_mutex_destroy(&errorcheck), EBUSY);  // glibc's own, on our __nusers
  EXPECT_EQ(mn::mutex_unlock(&errorcheck), 0);

  pthread_mutex_t recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
  ASSERT_EQ(mn::mutex_lock(&recursive), 0);
  ASSERT_EQ(mn::mutex_trylock(&recursive), 0);
  EXPECT_EQ(recursive.__data.__count, 2u);
  std::thread([&] {
    EXPECT_EQ(mn::mutex_unlock(&recursive), EPERM);
    EXPECT_EQ(mn::mutex_trylock(&recursive), EBUSY);
  }).join();
  recursive.__data.__count = UINT_MAX;  // one more would wrap
  EXPECT_EQ(mn::mutex_lock(&recursive), EAGAIN);
  EXPECT_EQ(mn::mutex_trylock(&recursive), EAGAIN);
  recursive.__data.__count = 2;
  EXPECT_EQ(mn::mutex_unlock(&recursive), 0);
  EXPECT_EQ(mn::mutex_unlock(&recursive), 0);
  EXPECT_EQ(mn::mutex_unlock(&recursive), EPERM);

  pthread_mutex_t normal = PTHREAD_MUTEX_INITIALIZER;
  const timespec bad = {0, 1000000000};
  EXPECT_EQ(mn::mutex_timedlock(&normal, &bad), 0);  // free: the time is not looked at
  EXPECT_EQ(mn::mutex_trylock(&normal), EBUSY);
  EXPECT_EQ(pthread_mutex_trylock(&normal), EBUSY);  // glibc's own sees it held
  std::thread([&] {
    EXPECT_EQ(mn::mutex_timedlock(&normal, &bad), EINVAL);  // it would block
    EXPECT_EQ(mn::mutex_clocklock(&normal, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);
  }).join();
  EXPECT_EQ(mn::mutex_unlock(&normal), 0);
  EXPECT_EQ(mn::mutex_clocklock(&normal, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);  // even when free
  // glibc's own functions and ours share the word.
  ASSERT_EQ(pthread_mutex_lock(&normal), 0);
  EXPECT_EQ(mn::mutex_trylock(&normal), EBUSY);
  ASSERT_EQ(pthread_mutex_unlock(&normal), 0);
  EXPECT_EQ(mn::mutex_trylock(&normal), 0);
  // A thread asleep in glibc's own lock (in the kernel) is woken by ours.
  std::atomic<bool> taken{false};
  std::atomic<int> waiter_tid{0};
  std::thread kernel_waiter([&] {
    waiter_tid = flexsc::detail::current_tid();
    ASSERT_EQ(pthread_mutex_lock(&normal), 0);
    taken = true;
    ASSERT_EQ(pthread_mutex_unlock(&normal), 0);
  });
  while (!waiter_tid || !asleep_in_futex(waiter_tid, &normal.__data.__lock)) std::this_thread::yield();
  EXPECT_EQ(mn::mutex_unlock(&normal), 0);
  kernel_waiter.join();
  EXPECT_TRUE(taken);
}

TEST_F(MnSync, MutexesGlibcKeepsAreNotHandled) {
  const auto refused = [](const std::function<void(pthread_mutexattr_t*)>& set) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    set(&a);
    pthread_mutex_t m;
    EXPECT_EQ(pthread_mutex_init(&m, &a), 0);
    pthread_mutexattr_destroy(&a);
    const bool handled = mn::handles(&m);
    pthread_mutex_destroy(&m);
    return !handled;
  };
  EXPECT_TRUE(refused([](auto* a) { pthread_mutexattr_setrobust(a, PTHREAD_MUTEX_ROBUST); }));
  EXPECT_TRUE(refused([](auto* a) { pthread_mutexattr_setprotocol(a, PTHREAD_PRIO_INHERIT); }));
  EXPECT_TRUE(refused([](auto* a) { pthread_mutexattr_setprotocol(a, PTHREAD_PRIO_PROTECT); }));
  EXPECT_TRUE(refused([](auto* a) { pthread_mutexattr_setpshared(a, PTHREAD_PROCESS_SHARED); }));
  EXPECT_FALSE(refused([](auto* a) { pthread_mutexattr_settype(a, PTHREAD_MUTEX_ERRORCHECK); }));
  pthread_mutex_t destroyed = PTHREAD_MUTEX_INITIALIZER;
  ASSERT_EQ(pthread_mutex_destroy(&destroyed), 0);
  EXPECT_FALSE(mn::handles(&destroyed));
}

// One scheduler: a fiber blocked on an object held by a fiber that has
// switched away must park, or the holder never runs again.
TEST_F(MnSync, AFiberBlockedOnOneSchedulerLeavesItsCarrierToTheHolder) {
  Watchdog dog("one scheduler", 120s);
  for (const int type : kMutexTypes) {
    SCOPED_TRACE(testing::Message() << "type " << type);
    pthread_mutex_t m;
    init_mutex(&m, type, true);
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    std::atomic<bool> held{false};
    bool signalled = false;
    {
      fib::Pool pool(on_schedulers(1));
      fib::Fiber holder = pool.spawn([&] {
        ASSERT_EQ(mn::mutex_lock(&m), 0);
        held = true;
        for (int i = 0; i < 20; ++i) fib::this_fiber::yield();
        fib::this_fiber::sleep_for(5ms);
        ASSERT_EQ(mn::mutex_unlock(&m), 0);
      });
      fib::Fiber blocked = pool.spawn([&] {
        while (!held) fib::this_fiber::yield();
        const timespec far = after(CLOCK_MONOTONIC, 1h);
        ASSERT_EQ(mn::mutex_clocklock(&m, CLOCK_MONOTONIC, &far), 0);
        while (!signalled) ASSERT_EQ(mn::cond_wait(&cond, &m), 0);  // the signaller runs here too
        ASSERT_EQ(mn::mutex_unlock(&m), 0);
      });
      fib::Fiber signaller = pool.spawn([&] {
        while (!held) fib::this_fiber::yield();
        ASSERT_EQ(mn::mutex_lock(&m), 0);
        signalled = true;
        ASSERT_EQ(mn::cond_signal(&cond), 0);
        ASSERT_EQ(mn::mutex_unlock(&m), 0);
      });
      holder.join();
      blocked.join();
      signaller.join();
    }
    EXPECT_EQ(mn::cond_destroy(&cond), 0);
  }
}

TEST_F(MnSync, TimedLocksTimeOutOnBothClocks) {
  Watchdog dog("timed locks", 60s);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  ASSERT_EQ(mn::mutex_lock(&m), 0);
  run_mixed(1, 2, 2, [&](int i) {
    const clockid_t clock = i % 2 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    const timespec limit = after(clock, 20ms);
    EXPECT_EQ(
        clock == CLOCK_REALTIME ? mn::mutex_timedlock(&m, &limit) : mn::mutex_clocklock(&m, clock, &limit),
        ETIMEDOUT);
    EXPECT_TRUE(reached(clock, limit));
    const timespec past = {1, 0};
    EXPECT_EQ(mn::mutex_clocklock(&m, clock, &past), ETIMEDOUT);
  });
  EXPECT_EQ(mn::mutex_unlock(&m), 0);
  EXPECT_EQ(m.__data.__nusers, 0u);
}

// ---- condition variables ----------------------------------------------------

TEST_F(MnSync, CondSignalsAndBroadcastsReachEveryWaiter) {
  Watchdog dog("condition variables", 240s);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  // Tokens: each signal lets one waiter take one.
  const long tokens = scaled(4000);
  constexpr int kConsumers = 6, kThreads = 2;
  long available = 0, taken = 0;
  bool closed = false;
  run_mixed(2, kConsumers + 1, kThreads, [&](int i) {
    if (i == 0) {  // the producer
      for (long t = 0; t < tokens; ++t) {
        ASSERT_EQ(mn::mutex_lock(&m), 0);
        ++available;
        ASSERT_EQ(mn::cond_signal(&cond), 0);
        ASSERT_EQ(mn::mutex_unlock(&m), 0);
      }
      ASSERT_EQ(mn::mutex_lock(&m), 0);
      closed = true;
      ASSERT_EQ(mn::cond_broadcast(&cond), 0);
      ASSERT_EQ(mn::mutex_unlock(&m), 0);
      return;
    }
    ASSERT_EQ(mn::mutex_lock(&m), 0);
    for (;;) {
      while (available == 0 && !closed) ASSERT_EQ(mn::cond_wait(&cond, &m), 0);
      if (available == 0) break;
      --available;
      ++taken;
    }
    ASSERT_EQ(mn::mutex_unlock(&m), 0);
  });
  EXPECT_EQ(taken, tokens);

  // A broadcast releases every waiter of a generation, fibers and threads.
  const int rounds = static_cast<int>(scaled(200));
  constexpr int kWaiters = 8;
  int generation = 0, waiting = 0;
  std::atomic<int> released{0};
  run_mixed(2, kWaiters - 2 + 1, 2, [&](int i) {
    for (int g = 0; g < rounds; ++g) {
      ASSERT_EQ(mn::mutex_lock(&m), 0);
      if (i == 0) {  // the broadcaster: once every waiter waits
        while (waiting < kWaiters) {
          ASSERT_EQ(mn::mutex_unlock(&m), 0);
          fib::this_fiber::yield();
          ASSERT_EQ(mn::mutex_lock(&m), 0);
        }
        waiting = 0;
        ++generation;
        ASSERT_EQ(mn::cond_broadcast(&cond), 0);
      } else {
        ++waiting;
        const int mine = generation;
        while (generation == mine) ASSERT_EQ(mn::cond_wait(&cond, &m), 0);
        released.fetch_add(1);
      }
      ASSERT_EQ(mn::mutex_unlock(&m), 0);
    }
  });
  EXPECT_EQ(released.load(), rounds * kWaiters);
  EXPECT_EQ(mn::cond_destroy(&cond), 0);
}

TEST_F(MnSync, CondTimedWaitsTimeOutOnTheirClock) {
  Watchdog dog("condition variable timeouts", 60s);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t realtime = PTHREAD_COND_INITIALIZER, monotonic;
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  ASSERT_EQ(pthread_cond_init(&monotonic, &a), 0);
  pthread_condattr_destroy(&a);
  ASSERT_TRUE(mn::handles(&monotonic));
  run_mixed(1, 2, 2, [&](int i) {
    ASSERT_EQ(mn::mutex_lock(&m), 0);
    const bool mono = i % 2;
    pthread_cond_t* c = mono ? &monotonic : &realtime;
    const clockid_t clock = mono ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    timespec limit = after(clock, 20ms);
    EXPECT_EQ(mn::cond_timedwait(c, &m, &limit), ETIMEDOUT);  // the cond's own clock
    EXPECT_TRUE(reached(clock, limit));
    const clockid_t other = mono ? CLOCK_REALTIME : CLOCK_MONOTONIC;
    limit = after(other, 20ms);
    EXPECT_EQ(mn::cond_clockwait(c, &m, other, &limit), ETIMEDOUT);
    EXPECT_TRUE(reached(other, limit));
    const timespec bad = {0, -1};
    EXPECT_EQ(mn::cond_timedwait(c, &m, &bad), EINVAL);
    EXPECT_EQ(mn::cond_clockwait(c, &m, CLOCK_THREAD_CPUTIME_ID, &limit), EINVAL);
    ASSERT_EQ(mn::mutex_unlock(&m), 0);
  });
  // Waiting with an error-checking mutex the caller does not hold.
  pthread_mutex_t errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
  EXPECT_EQ(mn::cond_wait(&realtime, &errorcheck), EPERM);
  EXPECT_EQ(realtime.__data.__wrefs >> 3, 0u);  // it left
  pthread_condattr_init(&a);
  pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_cond_t shared;
  ASSERT_EQ(pthread_cond_init(&shared, &a), 0);
  pthread_condattr_destroy(&a);
  EXPECT_FALSE(mn::handles(&shared));
  EXPECT_TRUE(mn::handles(&realtime));
}

// As in glibc, a waiter still counts as a user of its mutex (__nusers):
// glibc's destroy says EBUSY meanwhile.
TEST_F(MnSync, ACondWaiterStillCountsAsItsMutexsUser) {
  Watchdog dog("cond waiter's mutex", 60s);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  bool ready = false;
  std::thread waiter([&] {
    ASSERT_EQ(mn::mutex_lock(&m), 0);
    while (!ready) ASSERT_EQ(mn::cond_wait(&cond, &m), 0);
    ASSERT_EQ(mn::mutex_unlock(&m), 0);
  });
  while (std::atomic_ref<unsigned>(cond.__data.__wrefs).load() >> 3 == 0) std::this_thread::yield();
  ASSERT_EQ(mn::mutex_lock(&m), 0);  // once the waiter released it
  EXPECT_EQ(m.__data.__nusers, 2u);
  EXPECT_EQ(pthread_mutex_destroy(&m), EBUSY);
  ready = true;
  ASSERT_EQ(mn::cond_signal(&cond), 0);
  ASSERT_EQ(mn::mutex_unlock(&m), 0);
  waiter.join();
  EXPECT_EQ(m.__data.__nusers, 0u);
  EXPECT_EQ(pthread_mutex_destroy(&m), 0);
}

// A mutex handles() refuses (robust) still works with a handled cond.
TEST_F(MnSync, CondWaitsWithAMutexGlibcKeeps) {
  Watchdog dog("cond with a robust mutex", 60s);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t robust;
  ASSERT_EQ(pthread_mutex_init(&robust, &a), 0);
  pthread_mutexattr_destroy(&a);
  ASSERT_FALSE(mn::handles(&robust));
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  bool ready = false;
  std::thread waiter([&] {
    ASSERT_EQ(pthread_mutex_lock(&robust), 0);
    while (!ready) ASSERT_EQ(mn::cond_wait(&cond, &robust), 0);
    ASSERT_EQ(pthread_mutex_unlock(&robust), 0);
  });
  ASSERT_EQ(pthread_mutex_lock(&robust), 0);
  ready = true;
  ASSERT_EQ(mn::cond_signal(&cond), 0);
  ASSERT_EQ(pthread_mutex_unlock(&robust), 0);
  waiter.join();
  pthread_mutex_destroy(&robust);
}

// ---- rwlocks ----------------------------------------------------------------

// The layout's writers-waiting flag (lib/mn/sync.cpp): a writer has queued.
bool writer_queued(const pthread_rwlock_t& rw) {
  return std::atomic_ref<unsigned>(const_cast<unsigned&>(rw.__data.__readers)).load() & (1u << 29);
}

TEST_F(MnSync, RwlocksLetReadersInTogetherAndWritersAlone) {
  Watchdog dog("rwlock contention", 240s);
  for (const bool prefer_writers : {false, true}) {
    SCOPED_TRACE(prefer_writers ? "writer preference" : "reader preference");
    pthread_rwlock_t rw;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(
        &a, prefer_writers ? PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP : PTHREAD_RWLOCK_PREFER_READER_NP);
    ASSERT_EQ(pthread_rwlock_init(&rw, &a), 0);
    pthread_rwlockattr_destroy(&a);
    ASSERT_TRUE(mn::handles(&rw));
    // Readers all inside at once.
    constexpr int kReaders = 6;
    std::atomic<int> readers_in{0};
    run_mixed(2, kReaders - 2, 2, [&](int) {
      ASSERT_EQ(mn::rwlock_rdlock(&rw), 0);
      readers_in.fetch_add(1);
      while (readers_in.load() < kReaders) fib::this_fiber::yield();
      ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
    });
    // Writers alone, among readers.
    const long rounds = scaled(2000);
    long written = 0;
    std::atomic<int> writers_inside{0}, readers_inside{0};
    std::atomic<bool> overlapped{false};
    run_mixed(2, 6, 2, [&](int i) {
      for (long r = 0; r < rounds; ++r) {
        if ((i + r) % 3 == 0) {
          ASSERT_EQ(mn::rwlock_wrlock(&rw), 0);
          if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) overlapped = true;
          ++written;
          if (r % 32 == 0) fib::this_fiber::yield();
          writers_inside.fetch_sub(1);
        } else {
          ASSERT_EQ(mn::rwlock_rdlock(&rw), 0);
          readers_inside.fetch_add(1);
          if (writers_inside.load() != 0) overlapped = true;
          if (r % 32 == 0) fib::this_fiber::yield();
          readers_inside.fetch_sub(1);
        }
        ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
      }
    });
    EXPECT_FALSE(overlapped);
    long expected = 0;
    for (int i = 0; i < 8; ++i)
      for (long r = 0; r < rounds; ++r) expected += (i + r) % 3 == 0;
    EXPECT_EQ(written, expected);
    EXPECT_EQ(rw.__data.__readers, 0u);
    pthread_rwlock_destroy(&rw);
  }
}

TEST_F(MnSync, RwlockPreferencesDecideWhetherAReaderPassesAWaitingWriter) {
  Watchdog dog("rwlock preferences", 60s);
  for (const bool prefer_writers : {false, true}) {
    SCOPED_TRACE(prefer_writers ? "writer preference" : "reader preference");
    pthread_rwlock_t readers_first = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_t writers_first = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    pthread_rwlock_t& rw = prefer_writers ? writers_first : readers_first;
    ASSERT_EQ(mn::rwlock_rdlock(&rw), 0);
    fib::Pool pool(on_schedulers(1));
    fib::Fiber writer = pool.spawn([&] {
      ASSERT_EQ(mn::rwlock_wrlock(&rw), 0);
      ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
    });
    while (!writer_queued(rw)) std::this_thread::yield();
    if (prefer_writers) {
      EXPECT_EQ(mn::rwlock_tryrdlock(&rw), EBUSY);
      std::thread([&] {
        const timespec soon = after(CLOCK_MONOTONIC, 10ms);
        EXPECT_EQ(mn::rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &soon), ETIMEDOUT);
        EXPECT_TRUE(reached(CLOCK_MONOTONIC, soon));
      }).join();
    } else {
      ASSERT_EQ(mn::rwlock_rdlock(&rw), 0);  // a second read lock while the writer waits
      std::thread([&] {
        ASSERT_EQ(mn::rwlock_tryrdlock(&rw), 0);
        ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
      }).join();
      ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
    }
    ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
    writer.join();
  }
}

TEST_F(MnSync, RwlocksAnswerGlibcsErrors) {
  Watchdog dog("rwlock errors", 60s);
  pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  EXPECT_EQ(mn::rwlock_unlock(&rw), EPERM);
  ASSERT_EQ(mn::rwlock_wrlock(&rw), 0);
  EXPECT_EQ(rw.__data.__cur_writer, flexsc::detail::current_tid());
  EXPECT_EQ(mn::rwlock_wrlock(&rw), EDEADLK);
  EXPECT_EQ(mn::rwlock_rdlock(&rw), EDEADLK);
  EXPECT_EQ(mn::rwlock_trywrlock(&rw), EBUSY);
  EXPECT_EQ(mn::rwlock_tryrdlock(&rw), EBUSY);
  std::thread([&] {
    EXPECT_EQ(mn::rwlock_unlock(&rw), EPERM);  // not the writer
    for (const clockid_t clock : {CLOCK_REALTIME, CLOCK_MONOTONIC}) {
      const timespec soon = after(clock, 10ms);
      EXPECT_EQ(clock == CLOCK_REALTIME ? mn::rwlock_timedwrlock(&rw, &soon)
                                        : mn::rwlock_clockwrlock(&rw, clock, &soon),
                ETIMEDOUT);
      EXPECT_TRUE(reached(clock, soon));
      const timespec later = after(clock, 10ms);
      EXPECT_EQ(clock == CLOCK_REALTIME ? mn::rwlock_timedrdlock(&rw, &later)
                                        : mn::rwlock_clockrdlock(&rw, clock, &later),
                ETIMEDOUT);
      EXPECT_TRUE(reached(clock, later));
    }
  }).join();
  ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
  const timespec bad = {0, 1000000000}, soon = after(CLOCK_REALTIME, 1ms);
  EXPECT_EQ(mn::rwlock_timedrdlock(&rw, &bad), EINVAL);  // checked first, as glibc does
  EXPECT_EQ(mn::rwlock_clockwrlock(&rw, CLOCK_BOOTTIME, &soon), EINVAL);
  ASSERT_EQ(mn::rwlock_rdlock(&rw), 0);
  EXPECT_EQ(mn::rwlock_trywrlock(&rw), EBUSY);
  ASSERT_EQ(mn::rwlock_unlock(&rw), 0);
  EXPECT_EQ(rw.__data.__readers, 0u);

  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_rwlock_t shared;
  ASSERT_EQ(pthread_rwlock_init(&shared, &a), 0);
  pthread_rwlockattr_destroy(&a);
  EXPECT_FALSE(mn::handles(&shared));
  EXPECT_TRUE(mn::handles(&rw));
}

// ---- barriers ---------------------------------------------------------------

TEST_F(MnSync, BarriersReleaseEachRoundTogetherWithOneSerialWaiter) {
  Watchdog dog("barrier rounds", 120s);
  constexpr int kFibers = 5, kThreads = 2, kParties = kFibers + kThreads;
  const int rounds = static_cast<int>(scaled(300));
  pthread_barrier_t b;
  ASSERT_TRUE(mn::handles(static_cast<const pthread_barrierattr_t*>(nullptr)));
  ASSERT_EQ(mn::barrier_init(&b, kParties), 0);
  ASSERT_TRUE(mn::handles(&b));
  std::vector<std::atomic<int>> arrived(rounds), serial(rounds);
  std::atomic<bool> early{false};
  // Five fibers on one scheduler: each waits parked while the others arrive.
  run_mixed(1, kFibers, kThreads, [&](int) {
    for (int r = 0; r < rounds; ++r) {
      arrived[r].fetch_add(1);
      const int ret = mn::barrier_wait(&b);
      ASSERT_TRUE(ret == 0 || ret == PTHREAD_BARRIER_SERIAL_THREAD) << ret;
      if (ret == PTHREAD_BARRIER_SERIAL_THREAD) serial[r].fetch_add(1);
      if (arrived[r].load() != kParties) early = true;
    }
  });
  EXPECT_FALSE(early);
  for (int r = 0; r < rounds; ++r) EXPECT_EQ(serial[r].load(), 1) << "round " << r;
  EXPECT_EQ(mn::barrier_destroy(&b), 0);
  EXPECT_FALSE(mn::handles(&b));

  EXPECT_EQ(mn::barrier_init(&b, 0), EINVAL);
  EXPECT_EQ(mn::barrier_init(&b, UINT_MAX / 2), EINVAL);
  pthread_barrierattr_t a;
  pthread_barrierattr_init(&a);
  pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  EXPECT_FALSE(mn::handles(&a));
  ASSERT_EQ(pthread_barrier_init(&b, &a, 2), 0);  // the real one, over our old layout
  pthread_barrierattr_destroy(&a);
  EXPECT_FALSE(mn::handles(&b));
  pthread_barrier_destroy(&b);
}

// The serial waiter destroys and frees the barrier at once (ASan watches).
TEST_F(MnSync, ABarrierMayBeFreedAsSoonAsItsSerialWaiterReturns) {
  Watchdog dog("barrier freed", 120s);
  const int rounds = static_cast<int>(scaled(100));
  for (int r = 0; r < rounds; ++r) {
    auto* b = new pthread_barrier_t;
    ASSERT_EQ(mn::barrier_init(b, 4), 0);
    run_mixed(1, 2, 2, [&](int) {
      if (mn::barrier_wait(b) == PTHREAD_BARRIER_SERIAL_THREAD) {
        EXPECT_EQ(mn::barrier_destroy(b), 0);
        delete b;
      }
    });
  }
}

// ---- semaphores --------------------------------------------------------------

TEST_F(MnSync, SemaphoresCountEveryPostOnce) {
  Watchdog dog("semaphores", 120s);
  sem_t s;
  ASSERT_EQ(sem_init(&s, 0, 0), 0);  // the real one: the same layout
  ASSERT_TRUE(mn::handles(&s));
  const long posts = scaled(5000);
  constexpr int kProducers = 2, kConsumers = 4;
  std::atomic<long> taken{0};
  run_mixed(2, kProducers + kConsumers - 1, 1, [&](int i) {
    if (i < kProducers) {
      for (long p = 0; p < posts; ++p) ASSERT_EQ(mn::sem_post(&s), 0);
      return;
    }
    for (;;) {
      if (taken.load() >= posts * kProducers) return;
      const timespec soon = after(CLOCK_MONOTONIC, 1ms);
      const int r = mn::sem_clockwait(&s, CLOCK_MONOTONIC, &soon);
      if (r == 0)
        taken.fetch_add(1);
      else
        ASSERT_EQ(r, ETIMEDOUT);
    }
  });
  EXPECT_EQ(taken.load(), posts * kProducers);
  int value = -1;
  ASSERT_EQ(sem_getvalue(&s, &value), 0);  // the real one reads our count
  EXPECT_EQ(value, 0);
  EXPECT_EQ(mn::sem_trywait(&s), EAGAIN);
  ASSERT_EQ(mn::sem_post(&s), 0);
  ASSERT_EQ(sem_getvalue(&s, &value), 0);
  EXPECT_EQ(value, 1);
  EXPECT_EQ(sem_trywait(&s), 0);  // and takes it
  sem_destroy(&s);
}

TEST_F(MnSync, SemaphoresAnswerGlibcsErrorsAndTimeouts) {
  Watchdog dog("semaphore errors", 60s);
  sem_t s;
  ASSERT_EQ(sem_init(&s, 0, SEM_VALUE_MAX), 0);
  EXPECT_EQ(mn::sem_post(&s), EOVERFLOW);
  const timespec bad = {0, 1000000000};
  EXPECT_EQ(mn::sem_timedwait(&s, &bad), EINVAL);  // even though it would not block
  const timespec soon = after(CLOCK_REALTIME, 1ms);
  EXPECT_EQ(mn::sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);
  EXPECT_EQ(mn::sem_wait(&s), 0);
  sem_destroy(&s);
  ASSERT_EQ(sem_init(&s, 0, 0), 0);
  run_mixed(1, 2, 2, [&](int i) {
    const clockid_t clock = i % 2 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
    const timespec limit = after(clock, 20ms);
    EXPECT_EQ(clock == CLOCK_REALTIME ? mn::sem_timedwait(&s, &limit) : mn::sem_clockwait(&s, clock, &limit),
              ETIMEDOUT);
    EXPECT_TRUE(reached(clock, limit));
  });
  EXPECT_EQ(reinterpret_cast<const uint64_t*>(&s)[0], 0u);  // no waiter left counted
  sem_destroy(&s);
  ASSERT_EQ(sem_init(&s, 1, 0), 0);
  EXPECT_FALSE(mn::handles(&s));
  sem_destroy(&s);
}

// ---- pthread_once --------------------------------------------------------------

std::atomic<int> g_once_runs{0};
std::atomic<bool> g_once_done{false};
void slow_init() {
  g_once_runs.fetch_add(1);
  for (int i = 0; i < 10; ++i) fib::this_fiber::yield();
  fib::this_fiber::sleep_for(10ms);
  g_once_done = true;
}

std::atomic<int> g_throwing_runs{0};
void throwing_init() {
  if (g_throwing_runs.fetch_add(1) == 0) throw std::runtime_error("first run fails");
}

TEST_F(MnSync, OnceRunsItsRoutineOnceWhileOthersWait) {
  Watchdog dog("once", 60s);
  for (int r = 0; r < 20; ++r) {
    pthread_once_t control = PTHREAD_ONCE_INIT;
    g_once_runs = 0;
    g_once_done = false;
    std::atomic<int> saw_undone{0};
    run_mixed(2, 8, 2, [&](int) {
      ASSERT_EQ(mn::once(&control, slow_init), 0);
      if (!g_once_done) saw_undone.fetch_add(1);
    });
    EXPECT_EQ(g_once_runs.load(), 1);
    EXPECT_EQ(saw_undone.load(), 0);
    EXPECT_EQ(control, 2);  // glibc's done
    // glibc's own agrees (TSan's pthread_once, which replaces it, has values of its own).
#if !defined(__SANITIZE_THREAD__)
    EXPECT_EQ(pthread_once(&control, slow_init), 0);
    EXPECT_EQ(g_once_runs.load(), 1);
#endif
  }
  // A routine that unwinds leaves the control to be run again.
  pthread_once_t control = PTHREAD_ONCE_INIT;
  g_throwing_runs = 0;
  EXPECT_THROW(mn::once(&control, throwing_init), std::runtime_error);
  EXPECT_EQ(control, 0);
  EXPECT_EQ(mn::once(&control, throwing_init), 0);
  EXPECT_EQ(g_throwing_runs.load(), 2);
}

// ---- the futex ----------------------------------------------------------------

TEST_F(MnSync, FutexWaitsAndWakesCountAsTheKernelDoes) {
  Watchdog dog("futex wait and wake", 60s);
  EXPECT_TRUE(mn::futex_handles(FUTEX_WAIT_PRIVATE));
  EXPECT_TRUE(mn::futex_handles(FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME));
  EXPECT_FALSE(mn::futex_handles(FUTEX_WAIT));  // shared
  EXPECT_FALSE(mn::futex_handles(FUTEX_LOCK_PI_PRIVATE));
  uint32_t word = 0;
  EXPECT_EQ(sys_futex(&word, FUTEX_WAIT_PRIVATE, 1), -EAGAIN);
  EXPECT_EQ(sys_futex(&word, FUTEX_WAKE_PRIVATE, 1), 0);
  const timespec bad = {0, 1000000000};
  EXPECT_EQ(sys_futex(&word, FUTEX_WAIT_PRIVATE, 0, reinterpret_cast<unsigned long>(&bad)), -EINVAL);
  EXPECT_EQ(sys_futex(&word, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1), -ENOSYS);
  EXPECT_EQ(sys_futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, nullptr, 0), -EINVAL);
  EXPECT_EQ(sys_futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, nullptr, 0), -EINVAL);
  EXPECT_EQ(sys_futex(reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(&word) + 1), FUTEX_WAKE_PRIVATE, 1),
            -EINVAL);

  // Each wake counts the waiters it woke: K waiters, woken one at a time.
  constexpr int kWaiters = 6;
  std::atomic<int> returned{0};
  long woken = 0;
  {
    std::thread waker([&] {
      while (woken < kWaiters) {
        const long n = sys_futex(&word, FUTEX_WAKE_PRIVATE, 1);
        ASSERT_TRUE(n == 0 || n == 1) << n;
        woken += n;
        if (n == 0) std::this_thread::yield();
      }
    });
    run_mixed(2, kWaiters - 2, 2, [&](int) {
      ASSERT_EQ(sys_futex(&word, FUTEX_WAIT_PRIVATE, 0), 0);  // only a wake ends it: word stays 0
      returned.fetch_add(1);
    });
    waker.join();
  }
  EXPECT_EQ(returned.load(), kWaiters);
  EXPECT_EQ(woken, kWaiters);

  // A thread waiting with the raw syscall (in the kernel) is woken by a wake
  // that finds no waiter here.
  std::thread raw_waiter([&] {
    while (syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0) != 0) {
    }
  });
  long n = 0;
  while ((n = sys_futex(&word, FUTEX_WAKE_PRIVATE, 1)) == 0) std::this_thread::yield();
  EXPECT_EQ(n, 1);
  raw_waiter.join();

  // Relative and absolute timeouts, on both clocks.
  run_mixed(1, 1, 1, [&](int) {
    const timespec rel = {0, 20000000};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(sys_futex(&word, FUTEX_WAIT_PRIVATE, 0, reinterpret_cast<unsigned long>(&rel)), -ETIMEDOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
    for (const clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
      const timespec abs = after(clock, 20ms);
      const int op = FUTEX_WAIT_BITSET_PRIVATE | (clock == CLOCK_REALTIME ? FUTEX_CLOCK_REALTIME : 0);
      EXPECT_EQ(
          sys_futex(&word, op, 0, reinterpret_cast<unsigned long>(&abs), nullptr, FUTEX_BITSET_MATCH_ANY),
          -ETIMEDOUT);
      EXPECT_TRUE(reached(clock, abs));
    }
  });
}

TEST_F(MnSync, FutexBitsetsPickTheirWaiters) {
  Watchdog dog("futex bitsets", 60s);
  uint32_t word = 0;
  std::atomic<int> done_by_bit[2] = {0, 0};
  long woken[2] = {0, 0};
  std::thread waker([&] {
    for (int bit = 1; bit >= 0; --bit) {  // bit 1's waiters first: bit 0's stay parked
      while (woken[bit] < 2) {
        const long n = sys_futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, nullptr, 1u << bit);
        woken[bit] += n;
        if (n == 0) std::this_thread::yield();
      }
      if (bit == 1) {
        EXPECT_EQ(done_by_bit[0].load(), 0);
      }
    }
  });
  run_mixed(1, 2, 2, [&](int i) {
    const int bit = i % 2;
    ASSERT_EQ(sys_futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, nullptr, 1u << bit), 0);
    done_by_bit[bit].fetch_add(1);
  });
  waker.join();
  EXPECT_EQ(done_by_bit[0].load(), 2);
  EXPECT_EQ(done_by_bit[1].load(), 2);
}

TEST_F(MnSync, FutexRequeueMovesWaitersToAnotherWord) {
  Watchdog dog("futex requeue", 60s);
  uint32_t from = 0, to = 0;
  EXPECT_EQ(sys_futex(&from, FUTEX_CMP_REQUEUE_PRIVATE, 0, 1, &to, 7), -EAGAIN);  // *from is not 7
  EXPECT_EQ(sys_futex(&from, FUTEX_CMP_REQUEUE_PRIVATE, static_cast<uint32_t>(-1), 1, &to, 0), -EINVAL);
  constexpr int kWaiters = 6;
  std::atomic<int> returned{0};
  long moved = 0, woken = 0;
  std::thread mover([&] {
    // One woken by the first requeue that finds any, the others moved.
    while (woken + moved < kWaiters) {
      const long n = sys_futex(&from, FUTEX_CMP_REQUEUE_PRIVATE, woken == 0 ? 1 : 0, INT_MAX, &to, 0);
      ASSERT_GE(n, 0);
      if (n > 0 && woken == 0) {
        woken = 1;
        moved += n - 1;
      } else {
        moved += n;
      }
      if (n == 0) std::this_thread::yield();
    }
    EXPECT_EQ(sys_futex(&from, FUTEX_WAKE_PRIVATE, INT_MAX), 0);  // nobody is left on `from`
    long on_to = 0;
    while (on_to < moved) on_to += sys_futex(&to, FUTEX_WAKE_PRIVATE, 1);
    EXPECT_EQ(on_to, moved);
  });
  run_mixed(2, kWaiters - 2, 2, [&](int) {
    ASSERT_EQ(sys_futex(&from, FUTEX_WAIT_PRIVATE, 0), 0);
    returned.fetch_add(1);
  });
  mover.join();
  EXPECT_EQ(returned.load(), kWaiters);
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(moved, kWaiters - 1);
}

TEST_F(MnSync, FutexWakeOpAppliesItsOperationAndWakesBothWords) {
  Watchdog dog("futex wake_op", 60s);
  uint32_t a = 0, b = 0;
  // No waiters: the operation is applied all the same.
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(FUTEX_OP_ADD, 5, FUTEX_OP_CMP_EQ, 0)), 0);
  EXPECT_EQ(b, 5u);
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(FUTEX_OP_OR, 2, FUTEX_OP_CMP_LT, 0)), 0);
  EXPECT_EQ(b, 7u);
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(FUTEX_OP_ANDN, 1, FUTEX_OP_CMP_GE, 7)),
            0);
  EXPECT_EQ(b, 6u);
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(FUTEX_OP_XOR, 3, FUTEX_OP_CMP_NE, 0)), 0);
  EXPECT_EQ(b, 5u);
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b,
                      FUTEX_OP(FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 4, FUTEX_OP_CMP_GT, 100)),
            0);
  EXPECT_EQ(b, 16u);
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(FUTEX_OP_SET, 1, 9, 0)), -ENOSYS);
  EXPECT_EQ(b, 1u);  // a bad comparison fails after the operation, as in the kernel
  EXPECT_EQ(sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(6, 1, FUTEX_OP_CMP_EQ, 0)), -ENOSYS);
  EXPECT_EQ(b, 1u);  // a bad operation changes nothing

  // With a waiter on each word: each call adds 1 to b, and the comparison
  // (old b >= 0) always holds, so both get woken.
  b = 0;
  std::atomic<int> returned{0};
  long woken = 0, calls = 0;
  std::thread waker([&] {
    while (woken < 2) {
      const long n =
          sys_futex(&a, FUTEX_WAKE_OP_PRIVATE, 1, 1, &b, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_GE, 0));
      ASSERT_GE(n, 0);
      woken += n;
      ++calls;
      if (n == 0) std::this_thread::yield();
    }
  });
  run_mixed(1, 1, 1, [&](int i) {
    uint32_t* word = i == 0 ? &a : &b;
    // b moves under the waker: wait on whatever it holds until woken.
    long r;
    do r = sys_futex(word, FUTEX_WAIT_PRIVATE, std::atomic_ref<uint32_t>(*word).load());
    while (r == -EAGAIN);
    EXPECT_EQ(r, 0);
    returned.fetch_add(1);
  });
  waker.join();
  EXPECT_EQ(returned.load(), 2);
  EXPECT_EQ(woken, 2);
  EXPECT_EQ(static_cast<long>(std::atomic_ref<uint32_t>(b).load()), calls);
}

// ---- timeouts racing wake-ups ------------------------------------------------

// Many short timed waits while wakes fly: every wake a waker counted ended
// exactly one wait (none lost to a timeout that raced it, none doubled),
// and no waiter record outlives its wait (ASan watches the stacks).
TEST_F(MnSync, TimeoutsRacingWakesNeverLoseOrDoubleAWake) {
  Watchdog dog("timeouts racing wakes", 240s);
  uint32_t word = 0;
  const long waits = scaled(4000);
  constexpr int kWaiters = 6;
  std::atomic<long> woken_waits{0}, timed_out{0}, reported{0};
  std::atomic<int> running{kWaiters};
  std::thread waker([&] {
    while (running.load() > 0) {
      reported.fetch_add(sys_futex(&word, FUTEX_WAKE_PRIVATE, 1 + static_cast<int>(reported.load() % 3)));
      std::this_thread::yield();
    }
  });
  run_mixed(2, kWaiters - 2, 2, [&](int i) {
    for (long w = 0; w < waits; ++w) {
      const timespec rel = {0, 1000 * (1 + (i + w) % 50)};  // 1 to 50 us
      const long r = sys_futex(&word, FUTEX_WAIT_PRIVATE, 0, reinterpret_cast<unsigned long>(&rel));
      if (r == 0)
        woken_waits.fetch_add(1);
      else
        ASSERT_EQ(r, -ETIMEDOUT);
      if (r == -ETIMEDOUT) timed_out.fetch_add(1);
    }
    running.fetch_sub(1);
  });
  waker.join();
  EXPECT_EQ(woken_waits.load(), reported.load());
  EXPECT_EQ(woken_waits.load() + timed_out.load(), waits * kWaiters);

  // The same on a condition variable: tokens handed out by signals to
  // waiters that keep timing out; every token is taken.
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  const long tokens = scaled(3000);
  long available = 0, taken = 0;
  run_mixed(2, kWaiters - 1, 1, [&](int i) {
    if (i == 0) {
      for (long t = 0; t < tokens; ++t) {
        ASSERT_EQ(mn::mutex_lock(&m), 0);
        ++available;
        ASSERT_EQ(mn::cond_signal(&cond), 0);
        ASSERT_EQ(mn::mutex_unlock(&m), 0);
        if (t % 16 == 0) fib::this_fiber::yield();
      }
      return;
    }
    ASSERT_EQ(mn::mutex_lock(&m), 0);
    while (taken < tokens) {
      if (available > 0) {
        --available;
        ++taken;
        continue;
      }
      const timespec soon = after(CLOCK_MONOTONIC, std::chrono::microseconds(1 + i * 7));
      const int r = mn::cond_clockwait(&cond, &m, CLOCK_MONOTONIC, &soon);
      ASSERT_TRUE(r == 0 || r == ETIMEDOUT) << r;
    }
    ASSERT_EQ(mn::mutex_unlock(&m), 0);
  });
  EXPECT_EQ(taken, tokens);
  EXPECT_EQ(available, 0);
  EXPECT_EQ(mn::cond_destroy(&cond), 0);
}

}  // namespace
