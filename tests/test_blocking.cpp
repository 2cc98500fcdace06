// A call that blocks must never stall the draining of other entries: a read
// on an empty pipe posted first does not delay a getppid posted after it,
// from another thread or from the same batch.  Spare syscall threads take
// over from the blocked ones.  Each case runs with the default placement
// and in single-core mode (FLEXSC_SYSCALL_CORES=none).
//
// These cases are about syscall threads, so the blocking call is one a
// syscall thread runs under every backend (BlockingChannel: read(2) on a
// pipe with the thread backend, recvfrom(2) with a source address on a
// socket with the io_uring backends, which run a pipe read in a ring).
// That io_uring's own pending calls do not delay later entries is
// test_uring's to check.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "syscall_threads.h"
#include "test_util.h"
#include "watchdog.h"

namespace {

using flexsc::test::BlockingChannel;
using flexsc::test::eventually;
using flexsc::test::scaled;
using flexsc::test::syscall_threads_in;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

// A function running on its own thread, which the test can give a deadline
// without hanging itself when the deadline passes.
class Background {
 public:
  explicit Background(std::function<void()> fn)
      : thread_([this, fn = std::move(fn)] {
          fn();
          done_.store(true);
        }) {}
  ~Background() { thread_.join(); }
  bool done() const { return done_.load(); }
  bool finishes_within(std::chrono::seconds limit) const {
    return eventually([this] { return done(); }, limit);
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// An entry's status, read the way the runtime writes it (atomically).
uint16_t status(const flexsc_entry* e) {
  return __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
}

long call(long nr, long a1 = 0, long a2 = 0, long a3 = 0) {
  return flexsc_syscall(nr, a1, a2, a3, 0, 0, 0);
}

class Blocking : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    flexsc_options o{};
    o.size = sizeof o;
    o.syscall_cores = GetParam();
    ASSERT_EQ(flexsc_init(&o), 0);
  }
  void TearDown() override { flexsc_shutdown(); }

  bool single_core() const { return GetParam() && std::strcmp(GetParam(), "none") == 0; }

  flexsc_stats stats() const {
    flexsc_stats s{};
    EXPECT_EQ(flexsc_get_stats(&s), 0);
    return s;
  }

  // A spare syscall thread took over from a blocked one.  In single-core
  // mode the waiter runs quick calls itself: no takeover is needed there.
  void expect_takeover() const {
    const flexsc_stats s = stats();
    if (!single_core()) {
      EXPECT_GT(s.takeovers, 0u);
      EXPECT_GT(s.syscall_threads, 1u);
    }
  }

  // getppid `n` times through flexsc_syscall, each checked.
  static long getppid_calls(long n) {
    long wrong = 0;
    for (long i = 0; i < n; ++i) wrong += call(SYS_getppid) != getppid();
    return wrong;
  }
};

// (a) Thread A blocks in a read; thread B's calls go on meanwhile.
TEST_P(Blocking, ReadOnOneThreadDoesNotDelayAnother) {
  Watchdog dog("blocked read vs getppid on another thread", 90s);
  BlockingChannel p;
  char buf[16] = {};
  long got = LONG_MIN;
  Background a([&] { got = p.call(buf, sizeof buf); });
  if (!eventually([&] { return syscall_threads_in(p.nr) == 1; })) {
    ASSERT_EQ(write(p.w, "x", 1), 1);  // let `a` return: its destructor joins it
    FAIL() << "the read never blocked";
  }

  std::atomic<long> wrong{-1};
  {
    Background b([&] { wrong = getppid_calls(scaled(10'000)); });
    EXPECT_TRUE(b.finishes_within(20s)) << "getppid stalled behind the blocked read";
    EXPECT_FALSE(a.done()) << "the read returned with nothing written";
    if (!b.done()) {
      ASSERT_EQ(write(p.w, "unblock", 7), 7);
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  if (!a.done()) {
    ASSERT_EQ(write(p.w, "hello", 5), 5);
  }
  ASSERT_TRUE(a.finishes_within(10s));
  EXPECT_EQ(got, 5);
  EXPECT_STREQ(buf, "hello");
  expect_takeover();
}

// (b) The same inside one batch: the read is submitted first, getppid
// entries after it (and in later submits) complete while it waits.
TEST_P(Blocking, ReadInABatchDoesNotDelayTheEntriesBehindIt) {
  Watchdog dog("blocked read vs getppid in one batch", 90s);
  BlockingChannel p;
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(2, &ctx), 0);
  char buf[16] = {};
  flexsc_entry* read = flexsc_get_entry(ctx);
  p.prep(read, buf, sizeof buf);
  std::atomic<long> wrong{-1};
  {
    // The context belongs to this thread until it is joined.
    Background owner([&] {
      long bad = 0;
      const long rounds = scaled(500);
      for (long r = 0; r < rounds; ++r) {
        flexsc_entry* e[16];
        for (auto& x : e) {
          x = flexsc_get_entry(ctx);
          flexsc_prep(x, SYS_getppid, 0, 0, 0, 0, 0, 0);
        }
        bad += flexsc_submit(ctx) != (r == 0 ? 17 : 16);  // the first round submits the read too
        for (auto* x : e) {
          bad += flexsc_wait_entry(ctx, x) != getppid();
          flexsc_seen(ctx, x);
        }
      }
      wrong = bad;
    });
    EXPECT_TRUE(owner.finishes_within(20s)) << "entries stalled behind the blocked read";
    EXPECT_NE(status(read), FLEXSC_DONE) << "the read completed with nothing written";
    if (!owner.done()) {
      ASSERT_EQ(write(p.w, "unblock", 7), 7);
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(syscall_threads_in(p.nr), status(read) == FLEXSC_DONE ? 0 : 1);
  ASSERT_EQ(write(p.w, "batch", 5), 5);
  EXPECT_EQ(flexsc_wait_entry(ctx, read), 5);
  EXPECT_STREQ(buf, "batch");
  flexsc_seen(ctx, read);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  expect_takeover();
}

// (c) Eight threads blocked in reads at once: still a syscall thread for
// everybody else, and each read gets its own pipe's data.
TEST_P(Blocking, ManyBlockedReadsStillLeaveRoomForOthers) {
  Watchdog dog("eight blocked reads", 90s);
  constexpr int kReaders = 8;
  std::vector<BlockingChannel> pipes(kReaders);
  const long nr = pipes[0].nr;
  std::vector<std::string> got(kReaders);
  std::vector<std::unique_ptr<Background>> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.push_back(std::make_unique<Background>([&, i] {
      char buf[32] = {};
      const long n = pipes[i].call(buf, sizeof buf);
      got[i] = n >= 0 ? std::string(buf, static_cast<size_t>(n)) : "error " + std::to_string(n);
    }));
  }
  EXPECT_TRUE(eventually([nr] { return syscall_threads_in(nr) == kReaders; }))
      << "only " << syscall_threads_in(nr) << " of " << kReaders << " reads got a syscall thread";

  std::atomic<long> wrong{-1};
  {
    Background b([&] { wrong = getppid_calls(scaled(5'000)); });
    EXPECT_TRUE(b.finishes_within(20s)) << "getppid stalled behind the blocked reads";
    if (!b.done()) {
      for (auto& p : pipes) ASSERT_EQ(write(p.w, "unblock", 7), 7);
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < kReaders; ++i) EXPECT_FALSE(readers[i]->done()) << "reader " << i;
  // One thread per blocked read, plus (unless the waiter runs quick calls
  // itself, in single-core mode) one more for everybody else.
  const flexsc_stats s = stats();
  EXPECT_GE(s.syscall_threads, static_cast<uint64_t>(kReaders + (single_core() ? 0 : 1)))
      << "not enough spare syscall threads started";
  expect_takeover();

  for (int i = 0; i < kReaders; ++i) {
    const std::string msg = "pipe " + std::to_string(i);
    ASSERT_EQ(write(pipes[i].w, msg.data(), msg.size()), static_cast<long>(msg.size()));
  }
  for (int i = 0; i < kReaders; ++i) {
    EXPECT_TRUE(readers[i]->finishes_within(10s)) << "reader " << i;
    EXPECT_EQ(got[i], "pipe " + std::to_string(i));
  }
}

// (d) One batch: eight reads first, then quick entries; every read gets a
// syscall thread of its own and the quick ones still complete.
TEST_P(Blocking, ManyBlockedReadsInOneBatch) {
  Watchdog dog("eight blocked reads in one batch", 90s);
  constexpr int kReads = 8, kQuick = 8;
  std::vector<BlockingChannel> pipes(kReads);
  const long nr = pipes[0].nr;
  char bufs[kReads][16] = {};
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  flexsc_entry* reads[kReads];
  flexsc_entry* quick[kQuick];
  for (int i = 0; i < kReads; ++i) {
    reads[i] = flexsc_get_entry(ctx);
    pipes[i].prep(reads[i], bufs[i], sizeof bufs[i]);
  }
  for (auto& q : quick) {
    q = flexsc_get_entry(ctx);
    flexsc_prep(q, SYS_getppid, 0, 0, 0, 0, 0, 0);
  }
  ASSERT_EQ(flexsc_submit(ctx), kReads + kQuick);
  std::atomic<long> wrong{-1};
  {
    Background owner([&] {
      long bad = 0;
      for (auto* q : quick) bad += flexsc_wait_entry(ctx, q) != getppid();
      wrong = bad;
    });
    EXPECT_TRUE(owner.finishes_within(10s)) << "getppid entries stalled behind the reads";
    if (!owner.done()) {
      for (auto& p : pipes) ASSERT_EQ(write(p.w, "unblock", 7), 7);
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(eventually([nr] { return syscall_threads_in(nr) == kReads; }))
      << "only " << syscall_threads_in(nr) << " of " << kReads << " reads got a syscall thread";
  for (auto* r : reads) EXPECT_NE(status(r), FLEXSC_DONE);
  for (int i = 0; i < kReads; ++i) {
    const std::string msg = "read " + std::to_string(i);
    ASSERT_EQ(write(pipes[i].w, msg.data(), msg.size()), static_cast<long>(msg.size()));
  }
  for (int i = 0; i < kReads; ++i) {
    EXPECT_EQ(flexsc_wait_entry(ctx, reads[i]), 6);
    EXPECT_STREQ(bufs[i], ("read " + std::to_string(i)).c_str());
  }
  for (int i = 0; i < kReads + kQuick; ++i) {
    flexsc_entry* e;
    ASSERT_EQ(flexsc_wait(ctx, &e), 0);
    flexsc_seen(ctx, e);
  }
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  EXPECT_GE(stats().syscall_threads, static_cast<uint64_t>(kReads));
}

INSTANTIATE_TEST_SUITE_P(Placement, Blocking, ::testing::Values(nullptr, "none"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param ? "SingleCore" : "Default");
                         });

}  // namespace
