// The C API's promises: backend names, the environment and the options
// struct, the statistics, which thread runs local calls, init after
// shutdown, and a process limited to one CPU (single-core mode).  ctest
// runs this program twice per backend: as is, and under `taskset -c 0`.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "syscall_threads.h"
#include "test_util.h"
#include "watchdog.h"

namespace {

using flexsc::test::BlockingChannel;
using flexsc::test::eventually;
using flexsc::test::offloaded_calls;
using flexsc::test::read_file;
using flexsc::test::scaled;
using flexsc::test::syscall_threads_in;
using flexsc::test::test_backend;
using flexsc::test::uring_backend;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

long call(long nr, long a1 = 0, long a2 = 0, long a3 = 0) {
  return flexsc_syscall(nr, a1, a2, a3, 0, 0, 0);
}

cpu_set_t affinity_of(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(tid, sizeof set, &set);
  return set;
}

int process_cpus() {
  cpu_set_t set = affinity_of(0);
  return CPU_COUNT(&set);
}

// The CPUs the runtime's syscall threads are pinned to (their union; empty
// until one has started and named itself).
cpu_set_t syscall_thread_cpus() {
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int tid : flexsc::test::threads_named("flexsc-sys/")) {
    cpu_set_t set = affinity_of(tid);
    CPU_OR(&all, &all, &set);
  }
  return all;
}

flexsc_stats stats() {
  flexsc_stats s{};
  EXPECT_EQ(flexsc_get_stats(&s), 0);
  return s;
}

// One entry through a batch context of its own.
long via_batch(long nr, long a1 = 0, long a2 = 0, long a3 = 0) {
  flexsc_ctx* ctx;
  if (flexsc_ctx_create(1, &ctx) != 0) return -12345;
  flexsc_entry* e = flexsc_get_entry(ctx);
  flexsc_prep(e, nr, a1, a2, a3, 0, 0, 0);
  long ret = -12345;
  if (flexsc_submit(ctx) == 1) ret = flexsc_wait_entry(ctx, e);
  flexsc_seen(ctx, e);
  flexsc_ctx_destroy(ctx);
  return ret;
}

// Every test starts and ends with the runtime stopped, FLEXSC_BACKEND
// naming the backend under test and no other FLEXSC_* variable set.  Tests
// of the options struct unset FLEXSC_BACKEND, which would override it.
class Api : public ::testing::Test {
 protected:
  void SetUp() override { reset(); }
  void TearDown() override { reset(); }
  static void reset() {
    flexsc_shutdown();
    for (const char* v : {"FLEXSC_SYSCALL_CORES", "FLEXSC_STATS"}) unsetenv(v);
    flexsc::test::restore_backend_env();
  }
};

// What `auto` may pick: a real backend, never a test-only one, and not
// io_uring's SQPOLL mode when the process has one CPU (its submission
// thread would compete with the user).  Which backend it prefers is the
// library's choice: not assumed here.
void expect_auto_choice(const char* chosen) {
  const std::string b = chosen;
  EXPECT_TRUE(b == "thread" || b == "uring" || b == "uring-sqpoll" || b == "shim") << "auto chose " << b;
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  if (CPU_COUNT(&set) == 1) {
    EXPECT_NE(b, "uring-sqpoll") << "auto chose SQPOLL with one CPU";
  }
}

// ---- backend names --------------------------------------------------------

std::string backend_before_init() {
  if (std::string(flexsc_backend()) != "none") return std::string("before init: ") + flexsc_backend();
  if (call(SYS_getppid) != getppid()) return "getppid";
  if (flexsc_backend() != test_backend()) return std::string("running: ") + flexsc_backend();
  return "";
}

TEST(ApiFresh, BackendIsNoneBeforeTheFirstInit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a freshly executed copy of this program
  EXPECT_EXIT(
      {
        const std::string why = backend_before_init();
        std::fprintf(stderr, "%s\n", why.c_str());
        std::exit(why.empty() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// exit() destroys the main thread's thread-local storage (its posting
// context) before it runs the atexit handlers: a call made from one of
// those still gets the kernel's answer.
TEST(ApiFresh, CallsFromExitHandlersAfterThreadStorageIsGone) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0) != getppid()) std::_Exit(2);
        std::atexit([] {
          const long ppid = flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
          std::_Exit(ppid == getppid() ? 0 : 3);
        });
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(Api, BackendNamesTheRunningBackend) {
  EXPECT_STREQ(flexsc_backend(), "none");
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  flexsc_shutdown();
  EXPECT_STREQ(flexsc_backend(), "none");
}

// ---- environment ----------------------------------------------------------

TEST_F(Api, EnvironmentChoosesTheBackendOverTheOptions) {
  // FLEXSC_BACKEND names the backend under test (the fixture sets it).
  flexsc_options o{};
  o.size = sizeof o;
  o.backend = "test-perturb";  // would answer getppid with getppid() + 1
  ASSERT_EQ(flexsc_init(&o), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(call(SYS_getppid), getppid());
  flexsc_shutdown();
  ASSERT_EQ(setenv("FLEXSC_BACKEND", "auto", 1), 0);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  expect_auto_choice(flexsc_backend());
  EXPECT_EQ(call(SYS_getppid), getppid()) << "under auto";
  flexsc_shutdown();
  // Empty means unset: the option counts again.
  ASSERT_EQ(setenv("FLEXSC_BACKEND", "", 1), 0);
  ASSERT_EQ(flexsc_init(&o), 0);
  EXPECT_STREQ(flexsc_backend(), "test-perturb");
  EXPECT_EQ(call(SYS_getppid), getppid() + 1) << "the option was not honoured";
}

// Checks what a thread pinned by flexsc_bind_user_thread() may run on:
// the user CPUs, which exclude the syscall threads' CPUs unless there is
// only one CPU to share (single-core mode).
void expect_user_binding(bool single_core) {
  std::thread([single_core] {
    const cpu_set_t allowed = affinity_of(0);
    ASSERT_EQ(flexsc_bind_user_thread(), 0);
    cpu_set_t mine = affinity_of(0);
    cpu_set_t sys;
    ASSERT_TRUE(eventually([&sys] {
      sys = syscall_thread_cpus();
      return CPU_COUNT(&sys) > 0;
    })) << "no syscall thread";
    ASSERT_GT(CPU_COUNT(&mine), 0);
    cpu_set_t outside;
    CPU_AND(&outside, &mine, &allowed);
    EXPECT_TRUE(CPU_EQUAL(&outside, &mine)) << "bound to a CPU the process may not use";
    cpu_set_t shared;
    CPU_AND(&shared, &mine, &sys);
    if (single_core) {
      EXPECT_TRUE(CPU_EQUAL(&mine, &allowed)) << "single-core mode reserves no CPU";
    } else {
      EXPECT_EQ(CPU_COUNT(&shared), 0) << "a user thread bound onto a syscall core";
      EXPECT_LT(CPU_COUNT(&mine), CPU_COUNT(&allowed));
    }
    EXPECT_EQ(call(SYS_getppid), getppid());
  }).join();
}

TEST_F(Api, SyscallCoresNoneIsSingleCoreModeAndCallsStillWork) {
  ASSERT_EQ(setenv("FLEXSC_SYSCALL_CORES", "none", 1), 0);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  unsetenv("FLEXSC_SYSCALL_CORES");  // read once, at init
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(call(SYS_getppid), getppid());
  EXPECT_EQ(call(SYS_gettid), gettid());
  EXPECT_EQ(via_batch(SYS_getpid), getpid());
  // A blocking call still works on a syscall thread, and does not hold up
  // a quick one.
  BlockingChannel p;
  char buf[8] = {};
  long got = -1;
  std::thread reader([&] { got = p.call(buf, sizeof buf); });
  if (!eventually([&] { return syscall_threads_in(p.nr) == 1; })) {
    EXPECT_EQ(write(p.w, "x", 1), 1);
    reader.join();
    FAIL() << "the read never blocked on a syscall thread";
  }
  EXPECT_EQ(call(SYS_getppid), getppid());
  ASSERT_EQ(write(p.w, "one", 3), 3);
  reader.join();
  EXPECT_EQ(got, 3);
  EXPECT_STREQ(buf, "one");
  expect_user_binding(true);
}

TEST_F(Api, DefaultPlacementKeepsUserThreadsOffSyscallCores) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(call(SYS_getppid), getppid());
  expect_user_binding(process_cpus() == 1);
}

// FLEXSC_STATS=/path: a report at shutdown, every line starting with
// "flexsc:", naming the syscalls called with their counts.  Checked with the
// default placement and in single-core mode.
class StatsReport : public Api, public ::testing::WithParamInterface<const char*> {};

TEST_P(StatsReport, NamesEverySyscallCalled) {
  const std::string path = "/tmp/flexsc-api-stats-" + std::to_string(getpid());
  unlink(path.c_str());
  ASSERT_EQ(setenv("FLEXSC_STATS", path.c_str(), 1), 0);
  if (GetParam()) {
    ASSERT_EQ(setenv("FLEXSC_SYSCALL_CORES", GetParam(), 1), 0);
  }
  ASSERT_EQ(flexsc_init(nullptr), 0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(call(SYS_getppid), getppid());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call(SYS_gettid), gettid());
  const int fd = memfd_create("flexsc-api", MFD_CLOEXEC);
  EXPECT_EQ(via_batch(SYS_lseek, fd, 77, SEEK_SET), 77);
  EXPECT_EQ(via_batch(SYS_lseek, fd, 78, SEEK_SET), 78);
  close(fd);
  EXPECT_FALSE(std::ifstream(path).good()) << "written before shutdown";
  flexsc_shutdown();
  const std::string report = read_file(path);
  unlink(path.c_str());
  ASSERT_FALSE(report.empty()) << "no report in " << path;
  std::istringstream lines(report);
  for (std::string line; std::getline(lines, line);) EXPECT_EQ(line.rfind("flexsc:", 0), 0u) << line;
  EXPECT_NE(report.find("backend " + test_backend() + ","), std::string::npos) << report;
  // "flexsc:   getppid   remote   remote 5 io_uring 0 local 0": executed 5
  // times in all, wherever it ran.
  auto count = [&](const std::string& name) {
    std::istringstream in(report);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string prefix, word, cls, remote, uring, local;
      long r = -1, u = -1, l = -1;
      if (words >> prefix >> word >> cls >> remote >> r >> uring >> u >> local >> l && word == name &&
          remote == "remote" && uring == "io_uring" && local == "local")
        return r + u + l;
    }
    return -1L;
  };
  EXPECT_EQ(count("getppid"), 5) << report;
  EXPECT_EQ(count("gettid"), 3) << report;
  EXPECT_EQ(count("lseek"), 2) << report;
  EXPECT_EQ(count("getpid"), -1) << "never called, yet named:\n" << report;
}

INSTANTIATE_TEST_SUITE_P(Placement, StatsReport, ::testing::Values(nullptr, "none"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param ? "SingleCore" : "Default");
                         });

TEST_F(Api, StatsOneGoesToStderrAndZeroToNowhere) {
  ASSERT_EQ(setenv("FLEXSC_STATS", "1", 1), 0);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(call(SYS_getppid), getppid());
  ::testing::internal::CaptureStderr();
  flexsc_shutdown();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.rfind("flexsc: backend " + test_backend() + ",", 0), 0u) << err;

  ASSERT_EQ(setenv("FLEXSC_STATS", "0", 1), 0);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(call(SYS_getppid), getppid());
  ::testing::internal::CaptureStderr();
  flexsc_shutdown();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// ---- the options struct ---------------------------------------------------

TEST_F(Api, OptionsAreHonoured) {
  unsetenv("FLEXSC_BACKEND");  // it would override the option
  const std::string path = "/tmp/flexsc-api-opt-stats-" + std::to_string(getpid());
  flexsc_options o{};
  o.size = sizeof o;
  o.backend = test_backend().c_str();
  o.syscall_cores = "none";
  o.stats = path.c_str();
  ASSERT_EQ(flexsc_init(&o), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(call(SYS_getppid), getppid());
  expect_user_binding(true);  // syscall_cores "none"
  flexsc_shutdown();
  EXPECT_EQ(read_file(path).rfind("flexsc: backend " + test_backend() + ",", 0), 0u)
      << "stats option ignored";
  unlink(path.c_str());

  // max_syscall_threads: three reads block on syscall threads, but only
  // two threads may exist.
  o = flexsc_options{};
  o.size = sizeof o;
  o.backend = test_backend().c_str();
  o.max_syscall_threads = 2;
  ASSERT_EQ(flexsc_init(&o), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  {
    Watchdog dog("max_syscall_threads", 60s);
    std::vector<BlockingChannel> pipes(3);
    const long nr = pipes[0].nr;
    std::vector<std::thread> readers;
    std::atomic<int> ok{0};
    for (auto& p : pipes)
      readers.emplace_back([&ok, &p] {
        char c;
        ok += p.call(&c, 1) == 1;
      });
    EXPECT_TRUE(eventually([nr] { return syscall_threads_in(nr) == 2; }));
    std::this_thread::sleep_for(50ms);  // a third thread would have come by now
    EXPECT_EQ(syscall_threads_in(nr), 2);
    EXPECT_EQ(stats().syscall_threads, 2u);
    for (auto& p : pipes) ASSERT_EQ(write(p.w, "x", 1), 1);
    for (auto& t : readers) t.join();
    EXPECT_EQ(ok.load(), 3);
    EXPECT_LE(stats().syscall_threads, 2u);
  }
}

// A program built against an older header passes a smaller struct: only
// `size` bytes are read, so what lies beyond (here, a bad core list) is
// never looked at.
TEST_F(Api, OlderSmallerOptionsStructWorks) {
  unsetenv("FLEXSC_BACKEND");  // it would override the option
  struct {
    size_t size;
    const char* backend;
    const char* beyond_the_struct;  // where syscall_cores would be
  } old{offsetof(flexsc_options, syscall_cores), "test-perturb", "not a core list"};
  ASSERT_EQ(flexsc_init(reinterpret_cast<const flexsc_options*>(&old)), 0);
  EXPECT_STREQ(flexsc_backend(), "test-perturb") << "the backend field of the old struct was ignored";
  EXPECT_EQ(call(SYS_getppid), getppid() + 1);
  flexsc_shutdown();

  // Only `size`: every default (the backend: auto).
  size_t just_size = sizeof(size_t);
  ASSERT_EQ(flexsc_init(reinterpret_cast<const flexsc_options*>(&just_size)), 0);
  expect_auto_choice(flexsc_backend());
  EXPECT_EQ(call(SYS_getppid), getppid());
  flexsc_shutdown();

  // A newer, larger struct whose extra fields are zero (the default) works too.
  struct {
    flexsc_options known;
    uint64_t later_fields[4];
  } newer{};
  newer.known.size = sizeof newer;
  newer.known.backend = test_backend().c_str();
  ASSERT_EQ(flexsc_init(&newer.known), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(call(SYS_getppid), getppid());
}

// ---- statistics and where calls run --------------------------------------

TEST_F(Api, StatsCountRemoteLocalAndBlockingCalls) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  const flexsc_stats zero = stats();
  EXPECT_EQ(zero.remote_calls + zero.uring_calls + zero.local_calls + zero.unknown_calls + zero.nops, 0u)
      << "not reset by init";
  EXPECT_GE(zero.syscall_threads, 1u);
  const long n = scaled(1000);
  const int devzero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(devzero, 0);
  char c;
  for (long i = 0; i < n; ++i) {
    ASSERT_EQ(call(SYS_getppid), getppid());
    ASSERT_EQ(call(SYS_gettid), gettid());
  }
  for (int i = 0; i < 7; ++i) ASSERT_EQ(call(SYS_read, devzero, reinterpret_cast<long>(&c), 1), 1);
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  for (int i = 0; i < 10; ++i) flexsc_prep_nop(flexsc_get_entry(ctx));
  for (int i = 0; i < 4; ++i) flexsc_prep(flexsc_get_entry(ctx), SYS_gettid, 0, 0, 0, 0, 0, 0);
  ASSERT_EQ(flexsc_submit(ctx), 14);
  for (int i = 0; i < 14; ++i) {
    flexsc_entry* e;
    ASSERT_EQ(flexsc_wait(ctx, &e), 0);
    EXPECT_EQ(e->ret, e->flags & FLEXSC_ENTRY_NOP ? 0 : gettid());
    flexsc_seen(ctx, e);
  }
  ASSERT_EQ(flexsc_ctx_destroy(ctx), 0);  // its counts stay
  close(devzero);

  const flexsc_stats s = stats();
  EXPECT_EQ(s.local_calls, static_cast<uint64_t>(n + 4));
  EXPECT_EQ(s.unknown_calls, 0u);
  const bool single_core = process_cpus() == 1;
  if (single_core) {
    // The waiter runs quick remote calls itself: not on a syscall thread.
    EXPECT_LE(offloaded_calls(s), static_cast<uint64_t>(n + 7));
    EXPECT_LE(s.nops, 10u);
  } else if (uring_backend()) {
    // The reads ran in io_uring (the nops too); getppid, which io_uring
    // cannot express, on syscall threads.
    EXPECT_EQ(s.remote_calls, static_cast<uint64_t>(n));
    EXPECT_EQ(s.uring_calls, 7u) << "the reads did not go through io_uring";
    EXPECT_EQ(s.blocking_calls, 0u) << "no syscall thread ran a read";
    EXPECT_EQ(s.nops, 10u);
  } else {
    EXPECT_EQ(s.remote_calls, static_cast<uint64_t>(n + 7));
    EXPECT_EQ(s.uring_calls, 0u);
    EXPECT_EQ(s.blocking_calls, 7u) << "read is in the blocking class";
    EXPECT_EQ(s.nops, 10u);
  }
  EXPECT_EQ(s.cancelled, 0u);
}

// Local calls answer for the calling thread, not for a syscall thread.
TEST_F(Api, LocalCallsRunOnTheCaller) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&wrong] {
      const long tid = gettid();
      for (int i = 0; i < 100; ++i) {
        wrong += call(SYS_gettid) != tid;
        wrong += via_batch(SYS_gettid) != tid;
        wrong += call(SYS_getpid) != getpid();  // process-wide: the same anywhere
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);

  // sched_getaffinity(0) means "this thread": pinned to one CPU, it must say so.
  std::thread([] {
    const cpu_set_t allowed = affinity_of(0);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &allowed)) ++cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    cpu_set_t seen;
    CPU_ZERO(&seen);
    EXPECT_GT(call(SYS_sched_getaffinity, 0, sizeof seen, reinterpret_cast<long>(&seen)), 0);
    EXPECT_TRUE(CPU_EQUAL(&seen, &one)) << "answered for another thread";
  }).join();
}

TEST_F(Api, InitAfterShutdownWorksRepeatedly) {
  flexsc_ctx* ctx;  // outlives every runtime
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  Watchdog dog("20 init/shutdown cycles", 100s);
  for (int cycle = 0; cycle < 20; ++cycle) {
    ASSERT_EQ(flexsc_init(nullptr), 0) << cycle;
    EXPECT_EQ(flexsc_backend(), test_backend());
    for (int i = 0; i < 10; ++i) ASSERT_EQ(call(SYS_getppid), getppid()) << cycle;
    ASSERT_EQ(call(SYS_gettid), gettid());
    flexsc_entry* e = flexsc_get_entry(ctx);
    ASSERT_NE(e, nullptr);
    flexsc_prep(e, SYS_getpid, 0, 0, 0, 0, 0, 0);
    ASSERT_EQ(flexsc_submit(ctx), 1);
    EXPECT_EQ(flexsc_wait_entry(ctx, e), getpid());
    flexsc_seen(ctx, e);
    std::thread([] { EXPECT_EQ(call(SYS_getppid), getppid()); }).join();
    const flexsc_stats s = stats();
    EXPECT_EQ(s.local_calls, 1u) << "statistics are per runtime";
    flexsc_shutdown();
    EXPECT_EQ(call(SYS_getppid), -ESHUTDOWN);
    EXPECT_EQ(syscall_threads_in(-1), 0) << "syscall threads outlived shutdown " << cycle;
  }
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
}

TEST_F(Api, BindUserThreadSucceeds) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  std::thread([] {
    EXPECT_EQ(flexsc_bind_user_thread(), 0);
    EXPECT_EQ(flexsc_bind_user_thread(), 0) << "twice";
    EXPECT_EQ(call(SYS_getppid), getppid());
  }).join();
}

// A runtime restarted from a thread that flexsc_bind_user_thread() pinned
// to the user cores keeps its syscall cores: its placement once came from
// that thread's single CPU, which put a syscall thread on the user core.
TEST_F(Api, RestartFromAPinnedThreadKeepsTheSyscallCores) {
  if (process_cpus() < 2) GTEST_SKIP() << "needs two CPUs";
  const cpu_set_t before = affinity_of(0);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  ASSERT_EQ(flexsc_bind_user_thread(), 0);
  const cpu_set_t user = affinity_of(0);
  flexsc_shutdown();
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(call(SYS_getppid), getppid());  // a syscall thread ran it, on every backend
  const cpu_set_t syscall = syscall_thread_cpus();
  EXPECT_GT(CPU_COUNT(&syscall), 0);
  cpu_set_t both;
  CPU_AND(&both, &syscall, &user);
  EXPECT_EQ(CPU_COUNT(&both), 0) << "a syscall thread runs on a user CPU";
  flexsc_shutdown();
  sched_setaffinity(0, sizeof before, &before);
}

// ---- one CPU --------------------------------------------------------------

// With one CPU the runtime runs in single-core mode: the syscall thread
// shares the user's CPU and the waiter runs quick calls itself.
std::string one_cpu_checks() {
  std::string why;
  auto check = [&why](bool ok, const char* what) {
    if (!ok) why += std::string(what) + "\n";
  };
  check(process_cpus() == 1, "more than one CPU");
  check(flexsc_init(nullptr) == 0, "init");
  check(flexsc_backend() == test_backend(), "backend");
  check(call(SYS_getppid) == getppid(), "getppid");
  check(call(SYS_gettid) == gettid(), "gettid");
  check(via_batch(SYS_getpid) == getpid(), "batch getpid");
  const cpu_set_t mine = affinity_of(0);
  check(eventually([&mine] {
          const cpu_set_t sys = syscall_thread_cpus();
          return CPU_EQUAL(&mine, &sys);
        }),
        "the syscall thread is not on the one CPU");
  // A read blocked on a syscall thread, quick calls on another thread.
  BlockingChannel p;
  char buf[8] = {};
  std::atomic<long> got{-1};
  std::thread reader([&] { got = p.call(buf, sizeof buf); });
  check(eventually([&] { return syscall_threads_in(p.nr) == 1; }), "the read never blocked");
  for (int i = 0; i < 1000; ++i) {
    if (call(SYS_getppid) != getppid()) {
      why += "getppid while a read blocks\n";
      break;
    }
  }
  check(got.load() == -1, "the read returned early");
  check(write(p.w, "one", 3) == 3, "write");
  reader.join();
  check(got.load() == 3 && std::string(buf) == "one", "the read's data");
  std::thread([&] {
    check(flexsc_bind_user_thread() == 0, "bind_user_thread");
    const cpu_set_t bound = affinity_of(0);
    check(CPU_EQUAL(&bound, &mine), "bound elsewhere than the one CPU");
  }).join();
  flexsc_shutdown();
  // The one CPU cannot be given to syscall threads alone.
  int cpu = 0;
  while (!CPU_ISSET(cpu, &mine)) ++cpu;
  flexsc_options o{};
  o.size = sizeof o;
  const std::string only = std::to_string(cpu);
  o.syscall_cores = only.c_str();
  check(flexsc_init(&o) == -EINVAL, "the only CPU as syscall core");
  check(flexsc_init(nullptr) == 0, "init after a refused one");
  check(call(SYS_getppid) == getppid(), "getppid after re-init");
  flexsc_shutdown();
  return why;
}

TEST_F(Api, OneCpuProcessRunsInSingleCoreMode) {
  if (process_cpus() == 1) {
    EXPECT_EQ(one_cpu_checks(), "");
    return;
  }
  // More CPUs here: check in a fresh copy of this program limited to one.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        cpu_set_t set = affinity_of(0);
        int cpu = 0;
        while (!CPU_ISSET(cpu, &set)) ++cpu;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) std::_Exit(2);
        const std::string why = one_cpu_checks();
        std::fprintf(stderr, "%s\n", why.c_str());
        std::exit(why.empty() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
