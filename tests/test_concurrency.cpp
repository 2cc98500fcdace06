// Many threads posting at once: every completion reaches its own caller,
// exactly once, with its own result.  Each call's result is unique to it
// (lseek to an offset no other call uses returns that offset; a write of a
// length only this thread uses to /dev/null returns that length), so a
// result delivered to the wrong entry or the wrong thread shows.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/context.h"  // the registry of live contexts, to check thread-exit cleanup
#include "test_util.h"
#include "watchdog.h"

namespace {

using flexsc::test::scaled;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

constexpr int kThreads = 16;
constexpr long kWriteSpan = 4096;  // thread t writes lengths in (t * span, (t + 1) * span]
alignas(4096) char g_buf[kThreads * kWriteSpan];

struct Call {
  long nr, a1, a2, a3;
  long ret;  // what the kernel answers
};

// Call i of thread t.  lseek offsets are unique in the whole test; write
// lengths are unique to the thread (and repeat only every span * 8 calls).
Call call_for(int t, long i, int memfd, int devnull) {
  if (i % 8 == 7) {
    const long len = t * kWriteSpan + (i / 8) % kWriteSpan + 1;
    return {SYS_write, devnull, reinterpret_cast<long>(g_buf), len, len};
  }
  const long off = ((long{t} + 1) << 40) | i;
  return {SYS_lseek, memfd, off, SEEK_SET, off};
}

// Mismatches found by the threads; the first few are kept for the report.
class Errors {
 public:
  void add(const std::string& what) {
    if (count_.fetch_add(1) < 10) {
      std::lock_guard lock(mutex_);
      first_ += what + "\n";
    }
  }
  long count() const { return count_.load(); }
  const std::string& first() const { return first_; }

 private:
  std::atomic<long> count_{0};
  std::mutex mutex_;
  std::string first_;
};

std::string describe(int t, long i, const Call& c, long got) {
  return "thread " + std::to_string(t) + " call " + std::to_string(i) + " nr " + std::to_string(c.nr) +
         ": expected " + std::to_string(c.ret) + ", got " + std::to_string(got);
}

// Per-thread files: a memfd whose offset only that thread moves, and /dev/null.
struct Files {
  int memfd = -1, devnull = -1;
  Files() {
    memfd = memfd_create("flexsc-conc", MFD_CLOEXEC);
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  }
  ~Files() {
    close(memfd);
    close(devnull);
  }
  bool ok() const { return memfd >= 0 && devnull >= 0; }
};

// Remote calls leave the caller (run by syscall threads, or by io_uring
// for what it can express: counted in remote_calls or uring_calls) unless
// the process is in single-core mode, where the waiter runs quick ones.
bool remote_calls_counted() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  const char* cores = std::getenv("FLEXSC_SYSCALL_CORES");
  return CPU_COUNT(&set) >= 2 && !(cores && std::strcmp(cores, "none") == 0);
}

// Calls that left their caller.  With the io_uring backends the writes to
// /dev/null run in a ring and the lseeks on syscall threads: the sum still
// counts each entry once.
uint64_t remote_calls() {
  flexsc_stats s{};
  EXPECT_EQ(flexsc_get_stats(&s), 0);
  return flexsc::test::offloaded_calls(s);
}

size_t live_contexts() {
  std::lock_guard lock(flexsc::detail::registry_mutex());
  size_t n = 0;
  for (auto* c = flexsc::detail::registry_head(); c; c = c->next) ++n;
  return n;
}

class Concurrency : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(flexsc_init(nullptr), 0); }
  void TearDown() override { flexsc_shutdown(); }
};

// flexsc_syscall from 16 threads at once.
TEST_F(Concurrency, OneShotCallsReachTheirOwnCaller) {
  const long n = scaled(100'000);
  Errors errors;
  std::atomic<long> completed{0};
  {
    Watchdog dog("16 threads x flexsc_syscall", 100s);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Files f;
        if (!f.ok()) return errors.add("cannot open files");
        long last_off = 0;
        for (long i = 0; i < n; ++i) {
          const Call c = call_for(t, i, f.memfd, f.devnull);
          const long got = flexsc_syscall(c.nr, c.a1, c.a2, c.a3, 0, 0, 0);
          if (got != c.ret) errors.add(describe(t, i, c, got));
          if (c.nr == SYS_lseek) last_off = c.ret;
          completed.fetch_add(1, std::memory_order_relaxed);
        }
        // The side effect happened on this thread's file, and only there.
        const long pos = flexsc_syscall(SYS_lseek, f.memfd, 0, SEEK_CUR, 0, 0, 0);
        if (pos != last_off)
          errors.add("thread " + std::to_string(t) + ": file offset " + std::to_string(pos));
      });
    }
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(errors.count(), 0) << errors.first();
  EXPECT_EQ(completed.load(), kThreads * n);
  // Each entry executed once: no call was run twice, none skipped.
  if (remote_calls_counted()) {
    EXPECT_EQ(remote_calls(), static_cast<uint64_t>(kThreads * (n + 1)));
  }
}

// Per-thread batch contexts, each with every entry in flight (64 or 256),
// harvested in whatever order they complete.
class ConcurrentBatches : public Concurrency, public ::testing::WithParamInterface<unsigned> {};

TEST_P(ConcurrentBatches, ManyInFlightCompleteEachEntryOnce) {
  const long n = scaled(100'000);
  const unsigned kPages = GetParam();
  Errors errors;
  std::atomic<long> completed{0}, full_seen{0};
  {
    Watchdog dog("16 threads x batch contexts", 60s);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Files f;
        flexsc_ctx* ctx = nullptr;
        if (!f.ok() || flexsc_ctx_create(kPages, &ctx) != 0) return errors.add("setup failed");
        const unsigned cap = flexsc_ctx_capacity(ctx);
        if (cap != kPages * 64) errors.add("capacity " + std::to_string(cap));
        std::vector<Call> expected(cap);
        std::vector<long> call_no(cap, -1);  // -1: the entry is not in flight
        long issued = 0, done = 0, in_flight = 0;
        // Checks one DONE entry against what was posted into it, then frees it.
        auto harvest = [&](flexsc_entry* e) {
          const unsigned idx = flexsc_entry_index(ctx, e);
          if (idx >= cap) return errors.add("index out of range");
          const Call& c = expected[idx];
          if (call_no[idx] < 0) return errors.add("entry " + std::to_string(idx) + " delivered twice");
          if (e->status != FLEXSC_DONE) errors.add("harvested entry not DONE");
          if (e->nr != static_cast<__u32>(c.nr) || e->args[0] != c.a1 || e->args[1] != c.a2 ||
              e->args[2] != c.a3)
            errors.add("entry " + std::to_string(idx) + " was overwritten");
          if (e->ret != c.ret) errors.add(describe(t, call_no[idx], c, e->ret));
          call_no[idx] = -1;
          flexsc_seen(ctx, e);
          if (e->status != FLEXSC_FREE) errors.add("seen entry not FREE");
          ++done;
          --in_flight;
        };
        unsigned round = 0;
        while (done < n) {
          // Fill every free entry.
          flexsc_entry* last = nullptr;
          int prepared = 0;
          while (issued < n) {
            flexsc_entry* e = flexsc_get_entry(ctx);
            if (!e) {
              if (in_flight + prepared != cap) errors.add("NULL from a context that is not full");
              break;
            }
            const unsigned idx = flexsc_entry_index(ctx, e);
            if (idx >= cap || call_no[idx] >= 0) return errors.add("handed out an entry in flight");
            expected[idx] = call_for(t, issued, f.memfd, f.devnull);
            call_no[idx] = issued++;
            flexsc_prep(e, expected[idx].nr, expected[idx].a1, expected[idx].a2, expected[idx].a3, 0, 0, 0);
            last = e;
            ++prepared;
          }
          if (in_flight + prepared == cap) ++full_seen;
          if (prepared) {
            const int rc = flexsc_submit(ctx);
            if (rc != prepared) errors.add("submit returned " + std::to_string(rc));
            in_flight += prepared;
          }
          // Harvest: by turns, wait for the newest entry, or for any one;
          // then take whatever else is already DONE.
          flexsc_entry* e;
          if (last && round++ % 2 == 0) {
            const long r = flexsc_wait_entry(ctx, last);
            if (r != expected[flexsc_entry_index(ctx, last)].ret) errors.add("wait_entry result");
            harvest(last);
          } else {
            const int rc = flexsc_wait(ctx, &e);
            if (rc != 0) return errors.add("flexsc_wait: " + std::to_string(rc));
            harvest(e);
          }
          while (flexsc_peek(ctx, &e) == 0) harvest(e);
        }
        flexsc_entry* none;
        if (flexsc_wait(ctx, &none) != -EAGAIN) errors.add("flexsc_wait with nothing in flight");
        if (issued != n || in_flight != 0) errors.add("issued " + std::to_string(issued));
        completed += done;
        if (flexsc_ctx_destroy(ctx) != 0) errors.add("ctx_destroy");
      });
    }
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(errors.count(), 0) << errors.first();
  EXPECT_EQ(completed.load(), kThreads * n);
  EXPECT_GT(full_seen.load(), 0) << "the contexts were never filled: the test did not load them";
  if (remote_calls_counted()) {
    EXPECT_EQ(remote_calls(), static_cast<uint64_t>(kThreads * n));
  }
}

INSTANTIATE_TEST_SUITE_P(Pages, ConcurrentBatches, ::testing::Values(1u, 4u),
                         [](const ::testing::TestParamInfo<unsigned>& info) {
                           return std::to_string(info.param) + "Pages";
                         });

// Threads come and go while others keep calling: a thread's hidden context
// goes away with the thread (even when a syscall thread still holds it),
// its local-call counts survive it, and nobody else's calls are disturbed.
TEST_F(Concurrency, ThreadsExitingMidwayLeaveOthersRunning) {
  ASSERT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());  // main's own context exists
  flexsc_stats before{};
  ASSERT_EQ(flexsc_get_stats(&before), 0);
  const size_t baseline = live_contexts();
  const long n = scaled(40'000);
  const long short_lived = scaled(2'000);  // threads started while the others run
  Errors errors;
  std::atomic<long> local_calls{0}, finished_early{0};
  // Each thread calls gettid (local: runs on the caller and is counted in
  // its context) and unique-result remote calls.
  auto work = [&](int t, long from, long count, bool use_batch) {
    Files f;
    if (!f.ok()) return errors.add("cannot open files");
    const long tid = gettid();
    for (long i = from; i < from + count; ++i) {
      const Call c = call_for(t, i, f.memfd, f.devnull);
      const long got = flexsc_syscall(c.nr, c.a1, c.a2, c.a3, 0, 0, 0);
      if (got != c.ret) errors.add(describe(t, i, c, got));
      if (i % 64 == 0) {
        const long me = flexsc_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0);
        ++local_calls;
        if (me != tid) errors.add("gettid answered " + std::to_string(me) + " for " + std::to_string(tid));
      }
    }
    if (use_batch) {
      // A batch context of its own as well, destroyed before the thread exits.
      flexsc_ctx* ctx;
      if (flexsc_ctx_create(1, &ctx) != 0) return errors.add("ctx_create");
      for (int k = 0; k < 64; ++k) {
        const Call c = call_for(t, from + count + k, f.memfd, f.devnull);
        flexsc_prep(flexsc_get_entry(ctx), c.nr, c.a1, c.a2, c.a3, 0, 0, 0);
      }
      if (flexsc_submit(ctx) != 64) errors.add("submit");
      for (int k = 0; k < 64; ++k) {
        flexsc_entry* e;
        if (flexsc_wait(ctx, &e) != 0) return errors.add("wait");
        const long i = from + count + flexsc_entry_index(ctx, e);
        const Call c = call_for(t, i, f.memfd, f.devnull);
        if (e->ret != c.ret) errors.add(describe(t, i, c, e->ret));
        flexsc_seen(ctx, e);
      }
      if (flexsc_ctx_destroy(ctx) != 0) errors.add("ctx_destroy");
    }
  };
  {
    Watchdog dog("threads exiting midway", 100s);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      // Odd threads stop at different points along the way and exit.
      const long count = t % 2 ? n * t / (2 * kThreads) + 1 : n;
      threads.emplace_back([&, t, count] {
        work(t, 0, count, t % 4 == 1);
        if (count < n) ++finished_early;
      });
    }
    // Short-lived threads, a few at a time, each gone after some calls.
    // They reuse thread numbers' write ranges but start their lseek
    // offsets past every long-lived thread's.
    for (long s = 0; s < short_lived;) {
      std::vector<std::thread> wave;
      for (int k = 0; k < 4 && s < short_lived; ++k, ++s)
        wave.emplace_back(
            [&, s] { work(static_cast<int>(s % kThreads), n + 128 + s * 128, 32, s % 8 == 0); });
      for (auto& th : wave) th.join();
    }
    for (auto& th : threads) th.join();
  }
  EXPECT_EQ(errors.count(), 0) << errors.first();
  EXPECT_EQ(finished_early.load(), kThreads / 2);
  // Every exited thread's hidden context left the registry.
  EXPECT_EQ(live_contexts(), baseline) << "contexts of exited threads are still registered";
  // Their local calls are still counted after they are gone.
  flexsc_stats after{};
  ASSERT_EQ(flexsc_get_stats(&after), 0);
  EXPECT_EQ(after.local_calls - before.local_calls, static_cast<uint64_t>(local_calls.load()));
  // And the runtime still serves a new thread and this one.
  std::thread([] { EXPECT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid()); }).join();
  EXPECT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
}

}  // namespace
