// Bad input never crashes or corrupts anything: unknown numbers, bad
// pointers and descriptors get the kernel's own answer; full contexts give
// back-pressure; misuse of the life cycle gives a clear error; shutdown
// with entries in flight completes or cancels each one and leaves nobody
// waiting.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <flexsc/shim.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/raw_syscall.h"  // the synchronous syscall instruction, for comparison
#include "syscall_threads.h"
#include "test_util.h"
#include "watchdog.h"

namespace {

using flexsc::detail::raw_syscall6;
using flexsc::test::BlockingChannel;
using flexsc::test::eventually;
using flexsc::test::Pipe;
using flexsc::test::read_file;
using flexsc::test::syscall_threads_in;
using flexsc::test::test_backend;
using flexsc::test::thread_in_syscall;
using flexsc::test::uring_backend;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

// An entry's status, read the way the runtime writes it (atomically).
uint16_t status(const flexsc_entry* e) {
  return __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
}

long via_syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0) {
  return flexsc_syscall(nr, a1, a2, a3, 0, 0, 0);
}

// One entry through a batch context of its own.
long via_batch(long nr, long a1 = 0, long a2 = 0, long a3 = 0) {
  flexsc_ctx* ctx;
  if (flexsc_ctx_create(1, &ctx) != 0) return LONG_MIN;
  flexsc_entry* e = flexsc_get_entry(ctx);
  flexsc_prep(e, nr, a1, a2, a3, 0, 0, 0);
  long ret = LONG_MIN;
  if (flexsc_submit(ctx) == 1) ret = flexsc_wait_entry(ctx, e);
  flexsc_seen(ctx, e);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  return ret;
}

std::string expect_eq(const char* what, long got, long want) {
  return got == want
             ? ""
             : std::string(what) + ": got " + std::to_string(got) + ", want " + std::to_string(want) + "\n";
}

// Every test leaves the runtime stopped, and FLEXSC_BACKEND naming the
// backend under test (tests of the options unset it: it would override them).
class BadInput : public ::testing::Test {
 protected:
  void SetUp() override { flexsc_shutdown(); }
  void TearDown() override {
    flexsc_shutdown();
    flexsc::test::restore_backend_env();
  }
};

// ---- the life cycle -------------------------------------------------------

// Run in a fresh process: the first flexsc_syscall starts the runtime.
std::string first_call_initializes() {
  std::string why = std::string(flexsc_backend()) == "none" ? "" : "running before any call\n";
  flexsc_stats s;
  why += expect_eq("get_stats before init", flexsc_get_stats(&s), -ESHUTDOWN);
  why += expect_eq("getppid", flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
  if (flexsc_backend() != test_backend()) why += std::string("backend ") + flexsc_backend() + "\n";
  why += expect_eq("get_stats after the first call", flexsc_get_stats(&s), 0);
  why += expect_eq("init once running", flexsc_init(nullptr), -EALREADY);
  return why;
}

// Run in a fresh process: preparing entries starts nothing, submitting does.
std::string first_submit_initializes() {
  std::string why;
  flexsc_ctx* ctx;
  why += expect_eq("ctx_create", flexsc_ctx_create(1, &ctx), 0);
  flexsc_entry* e = flexsc_get_entry(ctx);
  flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
  flexsc_entry* out;
  why += expect_eq("wait with nothing in flight", flexsc_wait(ctx, &out), -EAGAIN);
  if (std::string(flexsc_backend()) != "none") why += "posting started the runtime\n";
  why += expect_eq("submit", flexsc_submit(ctx), 1);
  if (flexsc_backend() != test_backend()) why += "submitting did not start the runtime\n";
  why += expect_eq("result", flexsc_wait_entry(ctx, e), getppid());
  flexsc_seen(ctx, e);
  why += expect_eq("ctx_destroy", flexsc_ctx_destroy(ctx), 0);
  return why;
}

TEST(BeforeInit, OneShotCallInitializesWithDefaults) {
  EXPECT_IN_FRESH_PROCESS(first_call_initializes);
}

TEST(BeforeInit, PostingDoesNotStartTheRuntimeSubmittingDoes) {
  EXPECT_IN_FRESH_PROCESS(first_submit_initializes);
}

TEST_F(BadInput, CallsAfterShutdownGiveEshutdownUntilTheNextInit) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  ASSERT_EQ(via_syscall(SYS_getppid), getppid());
  flexsc_shutdown();
  flexsc_shutdown();  // twice is harmless

  EXPECT_STREQ(flexsc_backend(), "none");
  // Remote, local and unknown calls alike, from this thread and a new one.
  EXPECT_EQ(via_syscall(SYS_getppid), -ESHUTDOWN);
  EXPECT_EQ(via_syscall(SYS_gettid), -ESHUTDOWN);
  EXPECT_EQ(via_syscall(1000), -ESHUTDOWN);
  std::thread([] {
    EXPECT_EQ(via_syscall(SYS_getppid), -ESHUTDOWN) << "a new thread must not restart it";
  }).join();
  flexsc_stats s;
  EXPECT_EQ(flexsc_get_stats(&s), -ESHUTDOWN);
  EXPECT_EQ(flexsc_bind_user_thread(), -ESHUTDOWN);
  EXPECT_STREQ(flexsc_backend(), "none") << "a call after shutdown restarted the runtime";

  // A batch stays prepared while submitting is refused...
  flexsc_entry* e1 = flexsc_get_entry(ctx);
  flexsc_entry* e2 = flexsc_get_entry(ctx);
  flexsc_prep(e1, SYS_getppid, 0, 0, 0, 0, 0, 0);
  flexsc_prep(e2, SYS_gettid, 0, 0, 0, 0, 0, 0);
  EXPECT_EQ(flexsc_submit(ctx), -ESHUTDOWN);
  EXPECT_EQ(flexsc_submit(ctx), -ESHUTDOWN);
  EXPECT_EQ(status(e1), FLEXSC_FREE);
  EXPECT_EQ(flexsc_wait_entry(ctx, e1), -EINVAL) << "never submitted";

  // ...and goes through after the next init.
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(flexsc_submit(ctx), 2);
  EXPECT_EQ(flexsc_wait_entry(ctx, e1), getppid());
  EXPECT_EQ(flexsc_wait_entry(ctx, e2), gettid());
  flexsc_seen(ctx, e1);
  flexsc_seen(ctx, e2);
  EXPECT_EQ(via_syscall(SYS_getppid), getppid());
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
}

TEST_F(BadInput, InitTwiceIsRefusedAndChangesNothing) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(flexsc_init(nullptr), -EALREADY);
  // A different backend asked for while running: refused, still the old one
  // (test-perturb would answer getppid with getppid() + 1).
  flexsc_options o{};
  o.size = sizeof o;
  o.backend = "test-perturb";
  EXPECT_EQ(flexsc_init(&o), -EALREADY);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(via_syscall(SYS_getppid), getppid());
  EXPECT_EQ(via_batch(SYS_getppid), getppid());
}

TEST_F(BadInput, BadOptionsAreRejectedAndStartNothing) {
  unsetenv("FLEXSC_BACKEND");  // it would override the options' backend
  auto rejected = [](const flexsc_options& o, const char* what) {
    EXPECT_EQ(flexsc_init(&o), -EINVAL) << what;
    EXPECT_STREQ(flexsc_backend(), "none") << what;
    EXPECT_EQ(syscall_threads_in(-1), 0) << what << ": syscall threads left behind";
    flexsc_shutdown();  // in case it started after all
  };
  flexsc_options o{};
  o.size = 0;
  rejected(o, "size 0");
  o.size = 4;
  rejected(o, "size smaller than any version of the struct");
  o.size = size_t{1} << 20;
  rejected(o, "absurd size");

  auto with = [](const char* backend, const char* cores) {
    flexsc_options o{};
    o.size = sizeof o;
    o.backend = backend;
    o.syscall_cores = cores;
    return o;
  };
  rejected(with("bogus", nullptr), "backend bogus");
  rejected(with("THREAD", nullptr), "backend names are exact");
  for (const char* cores : {"x", "5-3", "1,", ",1", "-1", "1-", "", "1 2", "4000", "0-99999"}) {
    const std::string what = std::string("syscall cores '") + cores + "'";
    rejected(with(nullptr, cores), what.c_str());
  }
  // Well formed, but CPUs this process may not use, or all of them.
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int forbidden = CPU_SETSIZE - 1;
  while (forbidden > 0 && CPU_ISSET(forbidden, &allowed)) --forbidden;
  ASSERT_FALSE(CPU_ISSET(forbidden, &allowed));
  const std::string not_allowed = std::to_string(forbidden);
  rejected(with(nullptr, not_allowed.c_str()), "a CPU outside the affinity");
  std::string all;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) all += (all.empty() ? "" : ",") + std::to_string(c);
  rejected(with(nullptr, all.c_str()), "every allowed CPU: none left for the user");

  o = with(nullptr, nullptr);
  o.max_syscall_threads = 100000;
  rejected(o, "max_syscall_threads beyond the limit");

  // The environment overrides the options, and is checked the same way.
  ASSERT_EQ(setenv("FLEXSC_SYSCALL_CORES", "x", 1), 0);
  EXPECT_EQ(flexsc_init(nullptr), -EINVAL);
  EXPECT_STREQ(flexsc_backend(), "none");
  ASSERT_EQ(setenv("FLEXSC_SYSCALL_CORES", "5-3", 1), 0);
  EXPECT_EQ(flexsc_init(nullptr), -EINVAL);
  unsetenv("FLEXSC_SYSCALL_CORES");
  ASSERT_EQ(setenv("FLEXSC_BACKEND", "bogus", 1), 0);
  o = with("thread", nullptr);
  EXPECT_EQ(flexsc_init(&o), -EINVAL) << "FLEXSC_BACKEND overrides the option";
  flexsc::test::restore_backend_env();

  // Nothing was left half started: a normal init works.
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(via_syscall(SYS_getppid), getppid());
}

// A forced backend that cannot start is an error, not a silent fallback.
TEST_F(BadInput, ForcedBackendThatCannotStartFailsCleanly) {
  unsetenv("FLEXSC_BACKEND");  // it would override the options' backend
  for (const char* backend : {"uring", "uring-sqpoll", "shim"}) {
    flexsc_options o{};
    o.size = sizeof o;
    o.backend = backend;
    const int rc = flexsc_init(&o);
    if (rc == 0) {
      // Available in this build and on this machine: then it is what runs.
      EXPECT_STREQ(flexsc_backend(), backend);
      EXPECT_EQ(via_syscall(SYS_getppid), getppid());
      flexsc_shutdown();
      continue;
    }
    EXPECT_TRUE(rc == -ENODEV || rc == -ENOSYS) << backend << ": " << rc;
    EXPECT_STREQ(flexsc_backend(), "none") << backend;
    flexsc_stats s;
    EXPECT_EQ(flexsc_get_stats(&s), -ESHUTDOWN) << backend;
    EXPECT_EQ(syscall_threads_in(-1), 0) << backend << ": syscall threads left behind";
  }
  ASSERT_EQ(setenv("FLEXSC_BACKEND", "uring", 1), 0);
  const int rc = flexsc_init(nullptr);
  flexsc::test::restore_backend_env();
  if (rc == 0) {
    EXPECT_STREQ(flexsc_backend(), "uring");
    flexsc_shutdown();
  } else {
    EXPECT_TRUE(rc == -ENODEV || rc == -ENOSYS) << rc;
  }
  ASSERT_EQ(flexsc_init(nullptr), 0);
  EXPECT_EQ(flexsc_backend(), test_backend());
  EXPECT_EQ(via_syscall(SYS_getppid), getppid());
  EXPECT_EQ(via_batch(SYS_getppid), getppid());
}

// ---- what the kernel answers ----------------------------------------------

// Numbers the table does not know run on the caller: the kernel answers
// (-ENOSYS where nothing exists).  The kernel dispatches on the low 32 bits
// of rax, so a number with high bits set is the same call as its low half;
// batch entries keep only those 32 bits and must agree with it.
TEST_F(BadInput, UnknownNumbersGetTheKernelsAnswer) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  const long numbers[] = {-1,
                          -1'000'000,
                          1000,
                          400,  // inside the table's range, assigned to nothing
                          512,  // x32 numbers start here, not 64-bit ones
                          INT_MAX,
                          INT_MIN,
                          UINT_MAX,
                          LONG_MAX,
                          LONG_MIN,                  // low half 0: read
                          1L << 40,                  // low half 0: read
                          0x40000000L | SYS_getpid,  // the x32 bit
                          (1L << 32) + SYS_getpid,
                          (1L << 32) + SYS_getppid,
                          (-1L << 32) + SYS_getppid};
  for (long nr : numbers) {
    // fd -1 for the ones that land on read: a harmless -EBADF.
    const long sync = raw_syscall6(nr, -1, 0, 0, 0, 0, 0);
    EXPECT_EQ(via_syscall(nr, -1), sync) << "flexsc_syscall, nr " << nr;
    EXPECT_EQ(via_batch(nr, -1), sync) << "batch entry, nr " << nr;
  }
  EXPECT_EQ(raw_syscall6(1000, 0, 0, 0, 0, 0, 0), -ENOSYS);
  EXPECT_EQ(via_syscall(-1), -ENOSYS);
  EXPECT_EQ(via_syscall(400), -ENOSYS);
  EXPECT_EQ(via_batch(1000), -ENOSYS);
  EXPECT_EQ(via_batch(LONG_MAX), -ENOSYS);

  // They ran on the caller, and were counted as unknown, not as anything else.
  flexsc_stats before{}, after{};
  ASSERT_EQ(flexsc_get_stats(&before), 0);
  for (long nr : {-1L, 1000L, 400L, 0x7fffffffL}) EXPECT_EQ(via_syscall(nr), -ENOSYS);
  ASSERT_EQ(flexsc_get_stats(&after), 0);
  EXPECT_EQ(after.unknown_calls - before.unknown_calls, 4u);
  EXPECT_EQ(after.local_calls, before.local_calls);
  EXPECT_EQ(after.remote_calls, before.remote_calls);
  EXPECT_EQ(after.uring_calls, before.uring_calls);
}

TEST_F(BadInput, BadPointersGetEfaultFromTheKernel) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  Pipe p;
  const int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  ASSERT_GE(p.r, 0);
  struct stat st;
  const long bad = 1;  // not mapped
  struct Case {
    const char* what;
    long nr, a1, a2, a3;
  } cases[] = {
      {"read into (void*)1", SYS_read, zero, bad, 16},
      {"read into NULL", SYS_read, zero, 0, 16},
      {"write from NULL to a pipe", SYS_write, p.w, 0, 16},
      {"write from (void*)1 to a pipe", SYS_write, p.w, bad, 16},
      {"stat of a NULL path", SYS_stat, 0, reinterpret_cast<long>(&st), 0},
      {"stat into (void*)1", SYS_stat, reinterpret_cast<long>("/"), bad, 0},
      {"openat of (char*)1", SYS_openat, AT_FDCWD, bad, O_RDONLY},
      {"nanosleep of (void*)1", SYS_nanosleep, bad, 0, 0},
      {"clock_gettime into (void*)1", SYS_clock_gettime, CLOCK_MONOTONIC, bad, 0},
      {"getcwd into (char*)1", SYS_getcwd, bad, 100, 0},
  };
  for (const Case& c : cases) {
    const long sync = raw_syscall6(c.nr, c.a1, c.a2, c.a3, 0, 0, 0);
    EXPECT_EQ(sync, -EFAULT) << c.what;
    EXPECT_EQ(via_syscall(c.nr, c.a1, c.a2, c.a3), sync) << c.what;
    EXPECT_EQ(via_batch(c.nr, c.a1, c.a2, c.a3), sync) << c.what;
  }
  // Nothing reached the pipe, and calls still work.
  int queued = -1;
  EXPECT_EQ(ioctl(p.r, FIONREAD, &queued), 0);
  EXPECT_EQ(queued, 0);
  EXPECT_EQ(via_syscall(SYS_getppid), getppid());
  close(zero);
}

TEST_F(BadInput, BadDescriptorsGetEbadf) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  char buf[8];
  struct stat st;
  const long b = reinterpret_cast<long>(buf), s = reinterpret_cast<long>(&st);
  struct Case {
    const char* what;
    long nr, a1, a2, a3;
  } cases[] = {
      {"read(-1)", SYS_read, -1, b, 8},
      {"write(1 << 20)", SYS_write, 1 << 20, b, 8},
      {"close(987654)", SYS_close, 987654, 0, 0},
      {"fstat(-5)", SYS_fstat, -5, s, 0},
      {"lseek(INT_MAX)", SYS_lseek, INT_MAX, 0, SEEK_SET},
      {"dup(-1)", SYS_dup, -1, 0, 0},
      {"fcntl(-1, F_GETFL)", SYS_fcntl, -1, F_GETFL, 0},
  };
  for (const Case& c : cases) {
    const long sync = raw_syscall6(c.nr, c.a1, c.a2, c.a3, 0, 0, 0);
    EXPECT_EQ(sync, -EBADF) << c.what;
    EXPECT_EQ(via_syscall(c.nr, c.a1, c.a2, c.a3), sync) << c.what;
    EXPECT_EQ(via_batch(c.nr, c.a1, c.a2, c.a3), sync) << c.what;
  }
}

// ---- the batch API --------------------------------------------------------

TEST_F(BadInput, FullContextGivesNullAndOverwritesNothing) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  const int fd = memfd_create("flexsc-full", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(2, &ctx), 0);
  const unsigned cap = flexsc_ctx_capacity(ctx);
  ASSERT_EQ(cap, 128u);
  std::vector<flexsc_entry*> entries;
  for (unsigned i = 0; i < cap; ++i) {
    flexsc_entry* e = flexsc_get_entry(ctx);
    ASSERT_NE(e, nullptr) << i;
    flexsc_prep(e, SYS_lseek, fd, 1000 + flexsc_entry_index(ctx, e), SEEK_SET, 0, 0, 0);
    entries.push_back(e);
  }
  auto intact = [&] {
    for (flexsc_entry* e : entries)
      if (e->nr != SYS_lseek || e->args[0] != fd || e->args[1] != 1000 + flexsc_entry_index(ctx, e))
        return false;
    return true;
  };
  for (int k = 0; k < 3; ++k) EXPECT_EQ(flexsc_get_entry(ctx), nullptr) << "full before submitting";
  EXPECT_TRUE(intact());
  ASSERT_EQ(flexsc_submit(ctx), static_cast<int>(cap));
  EXPECT_EQ(flexsc_get_entry(ctx), nullptr) << "full while in flight";
  for (flexsc_entry* e : entries) EXPECT_EQ(flexsc_wait_entry(ctx, e), 1000 + flexsc_entry_index(ctx, e));
  EXPECT_EQ(flexsc_get_entry(ctx), nullptr) << "DONE entries are not free until seen";
  EXPECT_TRUE(intact());
  // Seeing one frees exactly that one.
  flexsc_seen(ctx, entries[5]);
  flexsc_entry* again = flexsc_get_entry(ctx);
  EXPECT_EQ(again, entries[5]);
  EXPECT_EQ(flexsc_get_entry(ctx), nullptr);
  flexsc_prep_nop(again);
  ASSERT_EQ(flexsc_submit(ctx), 1);
  EXPECT_EQ(flexsc_wait_entry(ctx, again), 0);
  for (flexsc_entry* e : entries) {
    if (e != again) {
      EXPECT_EQ(e->ret, 1000 + flexsc_entry_index(ctx, e)) << "a result was overwritten";
    }
    flexsc_seen(ctx, e);
  }
  for (unsigned i = 0; i < cap; ++i) EXPECT_NE(flexsc_get_entry(ctx), nullptr) << i;
  EXPECT_EQ(flexsc_get_entry(ctx), nullptr);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  close(fd);
}

// A context whose pages the kernel shim cannot take (its regions, or the
// locked-memory limit, run out) runs its calls on the caller rather than
// failing them.  In a fresh process that ends with _Exit: its thousands
// of regions go with the process, not one UNREGISTER each.
TEST_F(BadInput, AContextTheShimCannotTakeRunsItsCallsOnTheCaller) {
  if (test_backend() != "shim") GTEST_SKIP() << "only the kernel shim registers a context's pages";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const long want = getppid();
        const unsigned calls = FLEXSC_SHIM_MAX_REGIONS + 4;  // more contexts than the module takes regions
        unsigned wrong = 0;
        for (unsigned i = 0; i < calls; ++i) {
          flexsc_ctx* ctx = nullptr;
          if (flexsc_ctx_create(1, &ctx) != 0) std::_Exit(2);
          flexsc_entry* e = flexsc_get_entry(ctx);
          flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
          if (flexsc_submit(ctx) != 1) std::_Exit(3);
          wrong += flexsc_wait_entry(ctx, e) != want;
          flexsc_seen(ctx, e);
        }
        flexsc_stats st{};
        if (flexsc_get_stats(&st) != 0) std::_Exit(4);
        if (wrong) std::_Exit(1);
        // Some ran on the caller: the servers ran fewer than were made.
        std::_Exit(st.remote_calls < calls ? 0 : 5);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(BadInput, BadArgumentsToTheBatchApiGetEinval) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  flexsc_ctx* ctx = reinterpret_cast<flexsc_ctx*>(0x1234);
  EXPECT_EQ(flexsc_ctx_create(0, &ctx), -EINVAL);
  EXPECT_EQ(flexsc_ctx_create(1, nullptr), -EINVAL);
  const int huge = flexsc_ctx_create(UINT_MAX, &ctx);
  EXPECT_TRUE(huge == -EINVAL || huge == -ENOMEM) << huge;
  EXPECT_EQ(ctx, reinterpret_cast<flexsc_ctx*>(0x1234)) << "*ctx written on failure";

  flexsc_entry* out;
  EXPECT_EQ(flexsc_ctx_destroy(nullptr), -EINVAL);
  EXPECT_EQ(flexsc_get_entry(nullptr), nullptr);
  EXPECT_EQ(flexsc_submit(nullptr), -EINVAL);
  EXPECT_EQ(flexsc_peek(nullptr, &out), -EINVAL);
  EXPECT_EQ(flexsc_wait(nullptr, &out), -EINVAL);
  EXPECT_EQ(flexsc_ctx_capacity(nullptr), 0u);
  EXPECT_EQ(flexsc_get_stats(nullptr), -EINVAL);

  flexsc_ctx *a, *b;
  ASSERT_EQ(flexsc_ctx_create(1, &a), 0);
  ASSERT_EQ(flexsc_ctx_create(1, &b), 0);
  EXPECT_EQ(flexsc_peek(a, nullptr), -EINVAL);
  EXPECT_EQ(flexsc_wait(a, nullptr), -EINVAL);
  EXPECT_EQ(flexsc_wait_entry(a, nullptr), -EINVAL);
  flexsc_entry* eb = flexsc_get_entry(b);
  flexsc_prep(eb, SYS_getppid, 0, 0, 0, 0, 0, 0);
  ASSERT_EQ(flexsc_submit(b), 1);
  EXPECT_EQ(flexsc_wait_entry(b, eb), getppid());
  // An entry of another context is not this one's.
  EXPECT_EQ(flexsc_wait_entry(a, eb), -EINVAL);
  flexsc_seen(a, eb);
  EXPECT_EQ(status(eb), FLEXSC_DONE) << "seen through the wrong context freed it";
  EXPECT_EQ(flexsc_peek(a, &out), -EAGAIN);
  flexsc_seen(b, eb);
  EXPECT_EQ(status(eb), FLEXSC_FREE);

  // Seen on an entry still in flight is ignored: it completes normally.
  Pipe p;
  flexsc_entry* r = flexsc_get_entry(a);
  char buf[8] = {};
  flexsc_prep(r, SYS_read, p.r, reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0);
  ASSERT_EQ(flexsc_submit(a), 1);
  flexsc_seen(a, r);
  EXPECT_NE(status(r), FLEXSC_FREE);
  EXPECT_EQ(write(p.w, "hi", 2), 2);
  EXPECT_EQ(flexsc_wait_entry(a, r), 2);
  EXPECT_STREQ(buf, "hi");
  flexsc_seen(a, r);
  EXPECT_EQ(flexsc_ctx_destroy(a), 0);
  EXPECT_EQ(flexsc_ctx_destroy(b), 0);
}

// The read in flight is one on a pipe (a syscall thread runs it with the
// thread backend, a ring with the io_uring ones) and, with io_uring, also
// one a syscall thread runs there (recvfrom with an address).
void destroy_with_entries_in_flight(bool on_syscall_thread) {
  BlockingChannel p(on_syscall_thread);
  const bool in_ring = uring_backend() && !on_syscall_thread;
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  char buf[8] = {};
  flexsc_entry* r = flexsc_get_entry(ctx);
  p.prep(r, buf, sizeof buf);
  ASSERT_EQ(flexsc_submit(ctx), 1);
  if (in_ring) {
    // The owner moves completions only when it calls in: peeking lets it
    // see the first attempt (not waiting) fail and put the read back into
    // the ring, waiting.
    for (int i = 0; i < 10; ++i) {
      flexsc_entry* out;
      ASSERT_EQ(flexsc_peek(ctx, &out), -EAGAIN) << "the read completed with nothing written";
      usleep(2000);
    }
  } else {
    ASSERT_TRUE(eventually([&] { return syscall_threads_in(p.nr) == 1; })) << "the read never blocked";
  }
  EXPECT_EQ(flexsc_ctx_destroy(ctx), -EBUSY);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), -EBUSY);
  // Still usable: another entry goes through while the read waits.
  flexsc_entry* g = flexsc_get_entry(ctx);
  ASSERT_NE(g, nullptr);
  flexsc_prep(g, SYS_getppid, 0, 0, 0, 0, 0, 0);
  ASSERT_EQ(flexsc_submit(ctx), 1);
  EXPECT_EQ(flexsc_wait_entry(ctx, g), getppid());
  flexsc_seen(ctx, g);
  EXPECT_NE(status(r), FLEXSC_DONE);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), -EBUSY);
  ASSERT_EQ(write(p.w, "data", 4), 4);
  EXPECT_EQ(flexsc_wait_entry(ctx, r), 4);
  EXPECT_STREQ(buf, "data");
  // DONE but not yet seen is not in flight any more.
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
}

TEST_F(BadInput, DestroyWithEntriesInFlightIsBusyAndKeepsTheContext) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  {
    SCOPED_TRACE(uring_backend() ? "a pipe read in the ring" : "a pipe read");
    destroy_with_entries_in_flight(false);
  }
  if (uring_backend()) {
    SCOPED_TRACE("a read on a syscall thread");
    destroy_with_entries_in_flight(true);
  }
}

// ---- shutdown with entries in flight --------------------------------------

// Threads blocked in flexsc_syscall on empty pipes, and a batch context with
// reads, a long nanosleep and quick calls pending: shutdown interrupts what
// sleeps, every entry completes with its real result or -ECANCELED, and
// every waiting thread returns.  With the io_uring backends the pipe reads
// and the nanosleep wait in rings, so every other read is made one a
// syscall thread runs there (recvfrom with an address, BlockingChannel):
// shutdown must cancel both kinds.
TEST_F(BadInput, ShutdownCompletesOrCancelsEverythingInFlight) {
  const std::string stats_path = "/tmp/flexsc-bad-input-stats-" + std::to_string(getpid());
  flexsc_options o{};
  o.size = sizeof o;
  o.stats = stats_path.c_str();
  ASSERT_EQ(flexsc_init(&o), 0);
  Watchdog dog("shutdown with entries in flight", 60s);
  const bool uring = uring_backend();

  constexpr int kBlockedThreads = 4;
  // Channel i: on a syscall thread if odd (or with the thread backend).
  std::vector<std::unique_ptr<BlockingChannel>> pipes;
  for (int i = 0; i < kBlockedThreads + 3; ++i)
    pipes.push_back(std::make_unique<BlockingChannel>(uring && i % 2));
  std::vector<long> results(kBlockedThreads, LONG_MIN);
  std::vector<std::atomic<long>> tids(kBlockedThreads);
  std::atomic<int> returned{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kBlockedThreads; ++i) {
    threads.emplace_back([&, i] {
      tids[i] = gettid();
      char buf[8];
      results[i] = pipes[i]->call(buf, sizeof buf);
      ++returned;
    });
  }

  // The batch: its owner waits for all of it on its own thread.
  const timespec thirty_s{30, 0};
  char bufs[3][8];
  struct Expect {
    long nr, a1, a2, a3;
    BlockingChannel* read;  // a read on this channel (nr and arguments from it)
  } posted[] = {
      {SYS_read, 0, 0, 0, pipes[kBlockedThreads].get()},
      {SYS_nanosleep, reinterpret_cast<long>(&thirty_s), 0, 0, nullptr},
      {SYS_getppid, 0, 0, 0, nullptr},
      {SYS_read, 0, 0, 0, pipes[kBlockedThreads + 1].get()},
      {SYS_getpid, 0, 0, 0, nullptr},
      {SYS_read, 0, 0, 0, pipes[kBlockedThreads + 2].get()},
  };
  constexpr int kPosted = sizeof posted / sizeof posted[0];
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  flexsc_entry* entries[kPosted];
  for (int i = 0, b = 0; i < kPosted; ++i) {
    entries[i] = flexsc_get_entry(ctx);
    if (posted[i].read)
      posted[i].read->prep(entries[i], bufs[b++], 8);
    else
      flexsc_prep(entries[i], posted[i].nr, posted[i].a1, posted[i].a2, posted[i].a3, 0, 0, 0);
  }
  ASSERT_EQ(flexsc_submit(ctx), kPosted);
  std::vector<int> times_seen(kPosted, 0);
  std::vector<long> batch_results(kPosted, LONG_MIN);
  std::atomic<bool> quick_done{false};
  std::atomic<long> owner_tid{0};
  std::thread owner([&] {
    owner_tid = gettid();
    // The quick entries complete although blocked ones sit before them.
    if (flexsc_wait_entry(ctx, entries[2]) == getppid() && flexsc_wait_entry(ctx, entries[4]) == getpid())
      quick_done = true;
    flexsc_entry* e;
    for (int rc; (rc = flexsc_wait(ctx, &e)) != -EAGAIN;) {
      if (rc == -ESHUTDOWN) continue;  // peek finds the cancelled ones
      if (rc != 0) {
        ADD_FAILURE() << "flexsc_wait: " << rc;
        break;
      }
      const unsigned idx = flexsc_entry_index(ctx, e);
      ++times_seen[idx];
      batch_results[idx] = e->ret;
      flexsc_seen(ctx, e);
    }
    ++returned;
  });

  // Wait until every read and the nanosleep really sit in the kernel: on
  // syscall threads, or (io_uring) in rings whose owners wait for them in
  // io_uring_enter, having put back the reads' first attempts (not waiting).
  // Without SQPOLL the batch's ring reads come back from their first,
  // non-waiting attempt to `owner`, which does not own the ring (this
  // thread submitted): it gives them to syscall threads.
  const int on_threads = uring ? (test_backend() == "uring" ? 5 : 3) : kBlockedThreads + 3;
  auto sitting = [&] { return syscall_threads_in(SYS_read) + syscall_threads_in(SYS_recvfrom); };
  auto ring_waiters = [&] {
    int n = 0;
    for (int i = 0; i < kBlockedThreads; i += 2)
      n += tids[i] && thread_in_syscall(tids[i], SYS_io_uring_enter);
    // The batch context was submitted by this thread and is waited for by
    // `owner`: without SQPOLL its ring belongs to this thread (io_uring's
    // DEFER_TASKRUN rule), so `owner` parks on its futex instead.
    const long owner_waits_in = test_backend() == "uring" ? SYS_futex : SYS_io_uring_enter;
    return n + (quick_done && thread_in_syscall(owner_tid, owner_waits_in));
  };
  ASSERT_TRUE(eventually([&] {
    return sitting() == on_threads &&
           (uring ? ring_waiters() == kBlockedThreads / 2 + 1 : syscall_threads_in(SYS_nanosleep) == 1);
  })) << "reads blocked on syscall threads: "
      << sitting() << " of " << on_threads << ", sleeping: " << syscall_threads_in(SYS_nanosleep)
      << ", waiting in rings: " << ring_waiters();
  EXPECT_TRUE(eventually([&] { return quick_done.load(); }));
  EXPECT_EQ(returned.load(), 0);

  const auto t0 = std::chrono::steady_clock::now();
  flexsc_shutdown();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 10s) << "shutdown waited for the 30 s nanosleep";
  EXPECT_STREQ(flexsc_backend(), "none");

  for (auto& t : threads) t.join();
  owner.join();
  EXPECT_EQ(returned.load(), kBlockedThreads + 1);
  for (int i = 0; i < kBlockedThreads; ++i) EXPECT_EQ(results[i], -ECANCELED) << "blocked thread " << i;
  for (int i = 0; i < kPosted; ++i) {
    EXPECT_EQ(times_seen[i], 1) << "entry " << i;
    const long want = posted[i].nr == SYS_getppid  ? getppid()
                      : posted[i].nr == SYS_getpid ? getpid()
                                                   : -ECANCELED;
    EXPECT_EQ(batch_results[i], want) << "entry " << i;
  }
  EXPECT_EQ(syscall_threads_in(-1), 0) << "syscall threads outlived shutdown";
  const std::string report = read_file(stats_path);
  unlink(stats_path.c_str());
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);

  // The pipes are untouched: the cancelled reads consumed nothing.
  ASSERT_EQ(flexsc_init(nullptr), 0);
  for (auto& p : pipes) {
    ASSERT_EQ(write(p->w, "x", 1), 1);
    char c = 0;
    EXPECT_EQ(p->call(&c, 1), 1);
    EXPECT_EQ(c, 'x');
  }

  // The statistics count the eight cancelled calls.
  EXPECT_NE(report.find("cancelled at shutdown: 8\n"), std::string::npos) << report;
}

// Entries no syscall thread ever claimed (the only one allowed is blocked
// elsewhere) are cancelled by shutdown, not forgotten.  The blocked call
// and the entries are ones a syscall thread runs under every backend.
TEST_F(BadInput, ShutdownCancelsEntriesNoSyscallThreadClaimed) {
  const std::string stats_path = "/tmp/flexsc-bad-input-unclaimed-" + std::to_string(getpid());
  flexsc_options o{};
  o.size = sizeof o;
  o.stats = stats_path.c_str();
  o.max_syscall_threads = 1;
  o.syscall_cores = nullptr;
  ASSERT_EQ(flexsc_init(&o), 0);
  Watchdog dog("shutdown with unclaimed entries", 60s);
  BlockingChannel p;
  long blocked = LONG_MIN;
  std::thread reader([&] {
    char buf[4];
    blocked = p.call(buf, sizeof buf);
  });
  ASSERT_TRUE(eventually([&] { return syscall_threads_in(p.nr) == 1; }));
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  flexsc_entry* a = flexsc_get_entry(ctx);
  flexsc_entry* b = flexsc_get_entry(ctx);
  flexsc_prep(a, SYS_getppid, 0, 0, 0, 0, 0, 0);
  if (uring_backend()) {
    flexsc_prep(b, SYS_getpid, 0, 0, 0, 0, 0, 0);  // io_uring would run a nop itself
  } else {
    flexsc_prep_nop(b);
  }
  ASSERT_EQ(flexsc_submit(ctx), 2);
  std::this_thread::sleep_for(50ms);
  flexsc_entry* out;
  ASSERT_EQ(flexsc_peek(ctx, &out), -EAGAIN) << "ran although its only syscall thread is blocked";
  flexsc_shutdown();
  reader.join();
  EXPECT_EQ(blocked, -ECANCELED);
  EXPECT_EQ(flexsc_wait_entry(ctx, a), -ECANCELED);
  EXPECT_EQ(flexsc_wait_entry(ctx, b), -ECANCELED);
  ASSERT_EQ(flexsc_wait(ctx, &out), 0);
  flexsc_seen(ctx, out);
  ASSERT_EQ(flexsc_wait(ctx, &out), 0);
  flexsc_seen(ctx, out);
  EXPECT_EQ(flexsc_wait(ctx, &out), -EAGAIN);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
  const std::string report = read_file(stats_path);
  EXPECT_NE(report.find("cancelled at shutdown: 3\n"), std::string::npos) << report;
  unlink(stats_path.c_str());
}

// A batch of many blocking entries behind one that blocks: shutdown must
// not run them one by one, each waiting to be interrupted in turn (the
// syscall thread signals a blocked thread about every 10 ms).  With the
// io_uring backends, pipe reads wait in the context's ring (more of them
// than it has room for), and recvfrom with an address on syscall threads:
// both are checked there.
void shutdown_with_queued_reads(bool on_syscall_thread) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  Watchdog dog("shutdown with 1024 queued reads", 110s);
  BlockingChannel p(on_syscall_thread);
  flexsc_ctx* ctx;
  ASSERT_EQ(flexsc_ctx_create(16, &ctx), 0);
  static char buf[8];
  const unsigned n = flexsc_ctx_capacity(ctx);
  for (unsigned i = 0; i < n; ++i) p.prep(flexsc_get_entry(ctx), buf, sizeof buf);
  ASSERT_EQ(flexsc_submit(ctx), static_cast<int>(n));
  if (uring_backend() && !on_syscall_thread) {
    // The owner moves completions only when it calls in: peeking lets it
    // put the reads' first attempts (not waiting) back into the ring.
    for (int i = 0; i < 10; ++i) {
      flexsc_entry* out;
      ASSERT_EQ(flexsc_peek(ctx, &out), -EAGAIN) << "a read completed with nothing written";
      usleep(2000);
    }
  } else {
    ASSERT_TRUE(eventually([&] { return syscall_threads_in(p.nr) >= 1; }));
  }
  const auto t0 = std::chrono::steady_clock::now();
  flexsc_shutdown();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 5s) << "shutdown took " << std::chrono::duration<double>(took).count() << " s for " << n
                      << " queued reads";
  flexsc_entry* e;
  unsigned done = 0;
  while (flexsc_peek(ctx, &e) == 0) {
    EXPECT_EQ(e->ret, -ECANCELED);
    flexsc_seen(ctx, e);
    ++done;
  }
  EXPECT_EQ(done, n);
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
}

TEST_F(BadInput, ShutdownDoesNotWorkThroughQueuedBlockingEntries) {
  {
    SCOPED_TRACE(uring_backend() ? "pipe reads in the ring" : "pipe reads");
    shutdown_with_queued_reads(false);
  }
  if (uring_backend()) {
    SCOPED_TRACE("reads on syscall threads");
    shutdown_with_queued_reads(true);
  }
}

}  // namespace
