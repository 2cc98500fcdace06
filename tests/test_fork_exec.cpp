// fork() and exec with the runtime running (docs/architecture.md, Semantics): a forked
// child gets a working runtime again (or, in a TSan build, synchronous
// calls) without deadlock, entries in flight at fork are completed with
// -ECANCELED in the child, and the runtime's descriptors (statistics file
// included) never survive an exec.
#include <dirent.h>
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "syscall_threads.h"
#include "test_util.h"

extern char** environ;

namespace {

using flexsc::test::BlockingChannel;
using flexsc::test::kTsan;
using flexsc::test::scaled;
using flexsc::test::test_backend;
using flexsc::test::uring_backend;

// ---- the fd lister: this same binary, re-executed -------------------------

constexpr const char* kListFdsEnv = "FLEXSC_TEST_LIST_FDS";

// Descriptors open without close-on-exec when the program started (what
// ctest or the shell handed us): an exec'd child legitimately has them.
// Constant-initialized, filled by the constructor below.
int g_inherited[64];
int g_ninherited = 0;

// Runs before main().  Re-executed with FLEXSC_TEST_LIST_FDS set, the
// binary prints "fd target" for each descriptor it was born with and
// exits; otherwise it records the inherited descriptors.
[[gnu::constructor]] void fd_lister_or_record() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  const bool list = std::getenv(kListFdsEnv) != nullptr;
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    const int fd = std::atoi(de->d_name);
    if (fd == dirfd(d)) continue;
    if (list) {
      char path[64], target[512];
      std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      const ssize_t n = readlink(path, target, sizeof target - 1);
      target[n > 0 ? n : 0] = '\0';
      std::printf("%d %s\n", fd, target);
    } else if (g_ninherited < 64) {
      const int flags = fcntl(fd, F_GETFD);
      if (flags >= 0 && !(flags & FD_CLOEXEC)) g_inherited[g_ninherited++] = fd;
    }
  }
  closedir(d);
  if (list) {
    std::fflush(stdout);
    _exit(0);
  }
}

// ---- children ---------------------------------------------------------------

// In a child, gtest assertions are useless: a failed check prints where
// and makes the child exit non-zero.
#define CHILD_CHECK(cond)                                                                               \
  do {                                                                                                  \
    if (!(cond)) {                                                                                      \
      std::fprintf(stderr, "child %d: %s:%d: check failed: %s\n", getpid(), __FILE__, __LINE__, #cond); \
      return 1;                                                                                         \
    }                                                                                                   \
  } while (0)

#define CHILD_CHECK_EQ(a, b)                                                                                 \
  do {                                                                                                       \
    const long va_ = static_cast<long>(a), vb_ = static_cast<long>(b);                                       \
    if (va_ != vb_) {                                                                                        \
      std::fprintf(stderr, "child %d: %s:%d: %s == %ld, expected %s == %ld\n", getpid(), __FILE__, __LINE__, \
                   #a, va_, #b, vb_);                                                                        \
      return 1;                                                                                              \
    }                                                                                                        \
  } while (0)

// A sanitizer build's child, its large address space to tear down, can
// take seconds to exit on a loaded machine.
constexpr int kChildTimeoutMs = flexsc::test::kForkUnsafeSanitizer ? 30'000 : 10'000;

// Waits for `pid` at most timeout_ms; a child that hangs is killed and
// the result says so.
::testing::AssertionResult child_exits_zero(pid_t pid, int timeout_ms = kChildTimeoutMs) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return ::testing::AssertionFailure() << "waitpid: " << std::strerror(errno);
    if (std::chrono::steady_clock::now() > deadline) {
      // FLEXSC_TEST_GDB_ON_HANG=1: show where the hung child is stuck.
      if (const char* g = std::getenv("FLEXSC_TEST_GDB_ON_HANG"); g && *g == '1') {
        const std::string cmd = "gdb -p " + std::to_string(pid) +
                                " -batch -ex 'thread apply all bt 12' 2>&1 | grep -E '^(#|Thread)' >&2";
        if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "(gdb failed)\n");
      }
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return ::testing::AssertionFailure()
             << "child " << pid << " hung for " << timeout_ms << " ms (deadlock after fork?) and was killed";
    }
    usleep(2000);
  }
  if (WIFSIGNALED(status))
    return ::testing::AssertionFailure()
           << "child killed by signal " << WTERMSIG(status) << " (" << strsignal(WTERMSIG(status)) << ")";
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return ::testing::AssertionFailure()
           << "child exited with status " << WEXITSTATUS(status) << " (its stderr says which check failed)";
  return ::testing::AssertionSuccess();
}

// Forks (with fork(), or raw: the fork syscall through flexsc_syscall);
// the child runs body() and _exits with its result.
template <class Body>
pid_t fork_child(Body body, bool raw = false) {
  const pid_t pid = raw ? static_cast<pid_t>(flexsc_syscall(SYS_fork, 0, 0, 0, 0, 0, 0)) : fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (...) {
      std::fprintf(stderr, "child %d: exception\n", getpid());
    }
    std::fflush(stderr);
    _exit(rc);
  }
  return pid;
}

// What every child checks: the backend it should have, getppid through
// the runtime, a write to a pipe, a batch, and a local call.
int child_basic_calls(pid_t parent, int pipe_w, const char* tag) {
  if (kTsan) {
    // TSan kills a forked child that starts threads: synchronous fallback.
    CHILD_CHECK(std::strcmp(flexsc_backend(), "sync") == 0);
  }
  CHILD_CHECK_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), parent);
  CHILD_CHECK_EQ(flexsc_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0), getpid());
  if (kTsan) {
    CHILD_CHECK(std::strcmp(flexsc_backend(), "sync") == 0);
  } else {
    if (flexsc_backend() != test_backend()) {
      std::fprintf(stderr, "child: backend is '%s', expected '%s'\n", flexsc_backend(),
                   test_backend().c_str());
      return 1;
    }
  }
  // Local: must be the child's own thread id, not a syscall thread's.
  CHILD_CHECK_EQ(flexsc_syscall(SYS_gettid, 0, 0, 0, 0, 0, 0), syscall(SYS_gettid));
  if (pipe_w >= 0) {
    const long len = static_cast<long>(std::strlen(tag));
    CHILD_CHECK_EQ(flexsc_syscall(SYS_write, pipe_w, reinterpret_cast<long>(tag), len, 0, 0, 0), len);
  }
  // An error still comes back as -errno.
  CHILD_CHECK_EQ(flexsc_syscall(SYS_close, 12345, 0, 0, 0, 0, 0), -EBADF);

  // A batch: reads of i+1 bytes from /dev/zero, and a getppid.
  const int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  CHILD_CHECK(zero >= 0);
  flexsc_ctx* ctx = nullptr;
  CHILD_CHECK_EQ(flexsc_ctx_create(1, &ctx), 0);
  constexpr int kN = 20;
  char bufs[kN][32];
  std::memset(bufs, 'x', sizeof bufs);
  int which[64];  // entry index -> i
  for (int i = 0; i < kN; ++i) {
    flexsc_entry* e = flexsc_get_entry(ctx);
    CHILD_CHECK(e != nullptr);
    const unsigned idx = flexsc_entry_index(ctx, e);
    CHILD_CHECK(idx < 64);
    which[idx] = i;
    if (i == kN - 1)
      flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
    else
      flexsc_prep(e, SYS_read, zero, reinterpret_cast<long>(bufs[i]), i + 1, 0, 0, 0);
  }
  CHILD_CHECK_EQ(flexsc_submit(ctx), kN);
  for (int n = 0; n < kN; ++n) {
    flexsc_entry* e = nullptr;
    CHILD_CHECK_EQ(flexsc_wait(ctx, &e), 0);
    const unsigned idx = flexsc_entry_index(ctx, e);
    CHILD_CHECK(idx < 64);
    const int i = which[idx];
    if (i == kN - 1) {
      CHILD_CHECK_EQ(e->ret, parent);
    } else {
      // Exactly i+1 zero bytes read.
      CHILD_CHECK_EQ(e->ret, i + 1);
      CHILD_CHECK(bufs[i][0] == 0 && bufs[i][i] == 0 && bufs[i][i + 1] == 'x');
    }
    flexsc_seen(ctx, e);
  }
  flexsc_entry* none = nullptr;
  CHILD_CHECK_EQ(flexsc_peek(ctx, &none), -EAGAIN);
  CHILD_CHECK_EQ(flexsc_ctx_destroy(ctx), 0);
  close(zero);
  return 0;
}

// Reads everything from fd until EOF (at most timeout_ms).
std::string read_all(int fd, int timeout_ms = kChildTimeoutMs) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) r = p[0], w = p[1];
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    close_r();
    close_w();
  }
  void close_r() {
    if (r >= 0) close(r);
    r = -1;
  }
  void close_w() {
    if (w >= 0) close(w);
    w = -1;
  }
};

class ForkExec : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(flexsc_init(nullptr), 0);
    parent_ = getpid();
    // Some calls before forking, so the runtime is busy and bound.
    for (int i = 0; i < 100; ++i) ASSERT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
    ASSERT_EQ(flexsc_backend(), test_backend());
  }
  void TearDown() override { flexsc_shutdown(); }

  // The parent still works after a fork.
  void parent_still_works() {
    EXPECT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
    EXPECT_EQ(flexsc_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0), parent_);
    EXPECT_EQ(flexsc_backend(), test_backend());
  }

  pid_t parent_ = 0;
};

// ---- fork ---------------------------------------------------------------------

TEST_F(ForkExec, ChildMakesExceptionLessCalls) {
  Pipe p;
  ASSERT_GE(p.r, 0);
  const pid_t parent = parent_;
  const int w = p.w;
  const pid_t pid = fork_child([&] {
    if (!kTsan && std::strcmp(flexsc_backend(), "none") != 0 && flexsc_backend() != test_backend()) {
      std::fprintf(stderr, "child: backend before any call is '%s'\n", flexsc_backend());
      return 1;
    }
    if (int rc = child_basic_calls(parent, w, "child-ok"); rc != 0) return rc;
    flexsc_stats st{};
    if (!kTsan) {
      CHILD_CHECK_EQ(flexsc_get_stats(&st), 0);
      CHILD_CHECK(st.remote_calls > 0);  // getppid, on the child's syscall threads
      CHILD_CHECK(st.syscall_threads > 0);
      if (uring_backend()) {
        CHILD_CHECK(st.uring_calls > 0);  // the reads and the write, in the child's own rings
      }
    }
    flexsc_shutdown();
    CHILD_CHECK_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), -ESHUTDOWN);
    CHILD_CHECK(std::strcmp(flexsc_backend(), "none") == 0);
    return 0;
  });
  ASSERT_GT(pid, 0);
  p.close_w();
  EXPECT_TRUE(child_exits_zero(pid));
  EXPECT_EQ(read_all(p.r), "child-ok");
  parent_still_works();
}

TEST_F(ForkExec, ChildExitsThroughAtexitShutdown) {
  // exit() runs the runtime's atexit shutdown in the child: it must stop
  // the child's own syscall threads (not wait for the parent's).
  const pid_t parent = parent_;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int rc = child_basic_calls(parent, -1, "");
    std::fflush(nullptr);
    std::exit(rc);
  }
  EXPECT_TRUE(child_exits_zero(pid));
  parent_still_works();
}

TEST_F(ForkExec, ChildThatMakesNoCallShutsDownCleanly) {
  const pid_t pid = fork_child([] {
    flexsc_shutdown();  // nothing to stop: the parent's threads are not ours
    CHILD_CHECK(std::strcmp(flexsc_backend(), "none") == 0);
    return 0;
  });
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(child_exits_zero(pid));
  parent_still_works();
}

TEST_F(ForkExec, ChildCanInitExplicitly) {
  const pid_t parent = parent_;
  const pid_t pid = fork_child([parent] {
    if (kTsan) {
      // A TSan child may not start threads, so it cannot restart the
      // runtime: it stays on the synchronous fallback.
      CHILD_CHECK(std::strcmp(flexsc_backend(), "sync") == 0);
      CHILD_CHECK_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), parent);
      return 0;
    }
    // The child may restart the runtime itself, with its own options.
    flexsc_shutdown();
    flexsc_options o{};
    o.size = sizeof o;
    o.wait_spin_us = 5;
    CHILD_CHECK_EQ(flexsc_init(&o), 0);
    CHILD_CHECK(flexsc_backend() == test_backend());
    CHILD_CHECK_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), parent);
    flexsc_shutdown();
    return 0;
  });
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(child_exits_zero(pid));
  parent_still_works();
}

TEST_F(ForkExec, NestedFork) {
  // The child starts a runtime of its own, then forks a grandchild.
  const pid_t parent = parent_;
  Pipe p;
  const int w = p.w;
  const pid_t pid = fork_child([parent, w] {
    if (int rc = child_basic_calls(parent, w, "A"); rc != 0) return rc;
    const pid_t me = getpid();
    const pid_t grandchild = fork_child([me, w] { return child_basic_calls(me, w, "B"); });
    CHILD_CHECK(grandchild > 0);
    CHILD_CHECK(child_exits_zero(grandchild));
    CHILD_CHECK_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), parent);
    flexsc_shutdown();
    return 0;
  });
  ASSERT_GT(pid, 0);
  p.close_w();
  EXPECT_TRUE(child_exits_zero(pid, 2 * kChildTimeoutMs));
  EXPECT_EQ(read_all(p.r), "AB");
  parent_still_works();
}

TEST_F(ForkExec, RepeatedForks) {
  const pid_t parent = parent_;
  const int n = static_cast<int>(scaled(20));
  for (int i = 0; i < n; ++i) {
    const pid_t pid = fork_child([parent] { return child_basic_calls(parent, -1, ""); });
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(child_exits_zero(pid)) << "fork " << i;
    ASSERT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
  }
}

// fork through flexsc_syscall itself (the raw syscall skips glibc's fork
// handlers; the runtime runs its own around it).
TEST_F(ForkExec, RawForkThroughFlexscSyscall) {
  const pid_t parent = parent_;
  Pipe p;
  const int w = p.w;
  const long pid = flexsc_syscall(SYS_fork, 0, 0, 0, 0, 0, 0);
  if (pid == 0) {
    int rc = child_basic_calls(parent, w, "raw");
    if (rc == 0) flexsc_shutdown();
    _exit(rc);
  }
  ASSERT_GT(pid, 0) << "fork through flexsc: " << std::strerror(static_cast<int>(-pid));
  p.close_w();
  EXPECT_TRUE(child_exits_zero(static_cast<pid_t>(pid)));
  EXPECT_EQ(read_all(p.r), "raw");
  parent_still_works();
}

// Several threads hammer flexsc_syscall while the main thread forks: at
// fork time their contexts hold entries being posted, drained, harvested,
// and threads come and go (their hidden contexts are created and freed).
void fork_from_multithreaded_parent(pid_t parent, bool raw) {
  const pid_t grandparent = getppid();
  std::atomic<bool> stop{false};
  std::atomic<long> calls{0}, wrong{0};
  const int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  std::vector<std::thread> hammers;
  for (int t = 0; t < 3; ++t) {
    hammers.emplace_back([&, t] {
      char buf[16];
      while (!stop.load(std::memory_order_relaxed)) {
        long r;
        if (t == 2) {
          r = flexsc_syscall(SYS_read, zero, reinterpret_cast<long>(buf), 16, 0, 0, 0);
          if (r != 16) wrong.fetch_add(1);
        } else {
          r = flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
          if (r != grandparent) wrong.fetch_add(1);
        }
        calls.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // One thread also keeps a batch context busy.
  hammers.emplace_back([&] {
    flexsc_ctx* ctx = nullptr;
    if (flexsc_ctx_create(1, &ctx) != 0) {
      wrong.fetch_add(1000);
      return;
    }
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 16; ++i) {
        flexsc_entry* e = flexsc_get_entry(ctx);
        if (!e) break;
        flexsc_prep(e, SYS_getpid, 0, 0, 0, 0, 0, 0);
      }
      const int n = flexsc_submit(ctx);
      for (int i = 0; i < n; ++i) {
        flexsc_entry* e = nullptr;
        if (flexsc_wait(ctx, &e) != 0 || e->ret != parent) wrong.fetch_add(1);
        if (e) flexsc_seen(ctx, e);
      }
      calls.fetch_add(n, std::memory_order_relaxed);
    }
    if (flexsc_ctx_destroy(ctx) != 0) wrong.fetch_add(1000);
  });
  // Short-lived threads, one call each.
  hammers.emplace_back([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      std::thread t([&] {
        if (flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0) != grandparent) wrong.fetch_add(1);
      });
      t.join();
      calls.fetch_add(1, std::memory_order_relaxed);
    }
  });

  Pipe p;
  const int w = p.w;
  const int forks = static_cast<int>(scaled(20));
  int ok = 0;
  for (int i = 0; i < forks; ++i) {
    // Let the hammers get going between forks.
    const long before = calls.load();
    for (int spin = 0; spin < 2000 && calls.load() < before + 50; ++spin) usleep(100);
    const pid_t pid = fork_child([parent, w] { return child_basic_calls(parent, w, "."); }, raw);
    EXPECT_GT(pid, 0) << std::strerror(errno);
    if (pid <= 0) break;  // threads must be joined below: no ASSERT here
    const ::testing::AssertionResult r = child_exits_zero(pid);
    EXPECT_TRUE(r) << "fork " << i;
    if (!r) break;
    ++ok;
    EXPECT_EQ(flexsc_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0), parent);
  }
  stop = true;
  for (auto& t : hammers) t.join();
  close(zero);
  p.close_w();
  EXPECT_EQ(ok, forks);
  EXPECT_EQ(read_all(p.r), std::string(static_cast<size_t>(ok), '.'));
  EXPECT_EQ(wrong.load(), 0) << "wrong results in the parent's threads";
  EXPECT_GT(calls.load(), 0);
}

TEST_F(ForkExec, ForkFromMultithreadedParent) {
  if (flexsc::test::kForkUnsafeSanitizer) GTEST_SKIP() << flexsc::test::kSanitizerForkSkip;
  fork_from_multithreaded_parent(parent_, false);
  parent_still_works();
}

// The same with the fork syscall made through flexsc_syscall: the runtime
// runs its fork handlers around the raw syscall.
TEST_F(ForkExec, RawForkFromMultithreadedParent) {
  if (flexsc::test::kForkUnsafeSanitizer) GTEST_SKIP() << flexsc::test::kSanitizerForkSkip;
  fork_from_multithreaded_parent(parent_, true);
  parent_still_works();
}

// As above, but the other threads sit in blocking calls (pipe reads) and
// their partners write: syscall threads are stuck in the kernel, and spare
// ones are being started (ThreadBackend::spawn) when the main thread forks.
// Spares outlive the burst that needed them, so every round starts a fresh
// runtime and forks during its first milliseconds.  With the io_uring
// backends half the reads wait in their callers' rings, and half (recvfrom
// with an address: BlockingChannel) on syscall threads.
//
// Under ASan too: the fork waits until the test's threads have started
// and made their first call (so they allocate no more), and the runtime
// keeps the starts of its own threads out of a fork.  A fork during one
// would leave the child blocked on a lock of GCC 12's ASan runtime, which
// takes none around fork.
TEST_F(ForkExec, ForkWhileOtherThreadsBlockInCalls) {
  if (kTsan) GTEST_SKIP() << flexsc::test::kSanitizerForkSkip;
  const pid_t parent = parent_;
  constexpr int kPairs = 8;
  const int rounds = static_cast<int>(std::max(5L, scaled(10)));  // cheap: keep several
  long transfers = 0;
  int ok = 0;
  for (int round = 0; round < rounds; ++round) {
    if (round > 0) {
      flexsc_shutdown();
      ASSERT_EQ(flexsc_init(nullptr), 0);
    }
    std::atomic<bool> stop{false};
    std::atomic<long> moved{0}, wrong{0};
    std::atomic<int> running{0};  // threads past their first call
    std::vector<std::unique_ptr<BlockingChannel>> pipes;
    for (int i = 0; i < kPairs; ++i)
      pipes.push_back(std::make_unique<BlockingChannel>(uring_backend() && i % 2));
    std::vector<std::thread> readers, writers;
    for (int i = 0; i < kPairs; ++i) {
      BlockingChannel* ch = pipes[i].get();
      const int w = ch->w;
      readers.emplace_back([&, ch] {
        char c;
        flexsc_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
        running.fetch_add(1);
        for (;;) {
          const long n = ch->call(&c, 1);
          if (n == 0) break;  // writer closed
          if (n != 1) {
            wrong.fetch_add(1);
            break;
          }
          moved.fetch_add(1, std::memory_order_relaxed);
        }
      });
      writers.emplace_back([&, w] {
        flexsc_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
        running.fetch_add(1);
        while (!stop.load(std::memory_order_relaxed)) {
          usleep(300);  // the reader is parked in read() meanwhile
          if (flexsc_syscall(SYS_write, w, reinterpret_cast<long>("x"), 1, 0, 0, 0) != 1) wrong.fetch_add(1);
        }
      });
    }
    while (running.load() < 2 * kPairs) usleep(50);
    usleep(300 + 170 * static_cast<unsigned>(round % 7));
    const pid_t pid = fork_child([parent] { return child_basic_calls(parent, -1, ""); });
    EXPECT_GT(pid, 0) << std::strerror(errno);
    ::testing::AssertionResult r = ::testing::AssertionFailure() << "fork failed";
    if (pid > 0) r = child_exits_zero(pid);  // threads must be joined below: no ASSERT here
    EXPECT_TRUE(r) << "round " << round;
    usleep(2000);
    stop = true;
    // Writers stop, then their pipes close: readers see EOF.
    for (auto& t : writers) t.join();
    for (auto& p : pipes) p->close_w();
    for (auto& t : readers) t.join();
    EXPECT_EQ(wrong.load(), 0) << "round " << round;
    transfers += moved.load();
    if (!r) break;
    ++ok;
  }
  EXPECT_EQ(ok, rounds);
  EXPECT_GT(transfers, 0);
  parent_still_works();
}

// After fork, glibc unmaps the stacks of the parent's other threads
// (they do not exist in the child) without ASan seeing it: their frames'
// poison stays in the shadow, and the child's next mappings land there.
// The runtime's own mappings (posting pages, rings, fiber stacks) must
// count as clean, or every access to them is a false report in an ASan
// build.  Other builds check that the child works.
TEST_F(ForkExec, ChildMapsWhereTheParentsThreadsHadStacks) {
  if (kTsan) GTEST_SKIP() << flexsc::test::kSanitizerForkSkip;
  const pid_t parent = parent_;
  constexpr int kThreads = 16;
  int pipes[kThreads][2];
  std::atomic<int> blocked{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(pipe(pipes[i]), 0);
    threads.emplace_back([&, i] {
      volatile char frame[4096];  // poisoned redzones around it under ASan
      frame[0] = 1;
      blocked.fetch_add(1);
      char c;
      frame[1] = static_cast<char>(read(pipes[i][0], &c, 1));
      EXPECT_EQ(frame[1], 1);
    });
  }
  while (blocked.load() < kThreads) usleep(100);
  usleep(20000);  // into their reads: they allocate nothing across the fork
  const pid_t pid = fork_child([parent] {
    std::thread([] {}).join();  // the child's first thread: glibc frees the old stacks
    if (child_basic_calls(parent, -1, "") != 0) return 1;
    // 16 MiB of posting pages, enough to reach the freed stacks (the
    // mappings above them fill first); destroying a context reads every
    // entry's status.
    constexpr int kContexts = 64;
    flexsc_ctx* ctxs[kContexts] = {};
    for (auto& ctx : ctxs) CHILD_CHECK_EQ(flexsc_ctx_create(64, &ctx), 0);
    for (auto* ctx : ctxs) {
      flexsc_entry* e = flexsc_get_entry(ctx);
      CHILD_CHECK(e != nullptr);
      flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
      CHILD_CHECK_EQ(flexsc_submit(ctx), 1);
      CHILD_CHECK_EQ(flexsc_wait(ctx, &e), 0);
      CHILD_CHECK_EQ(e->ret, parent);
      flexsc_seen(ctx, e);
    }
    for (auto* ctx : ctxs) CHILD_CHECK_EQ(flexsc_ctx_destroy(ctx), 0);
    return 0;
  });
  EXPECT_GT(pid, 0) << std::strerror(errno);
  if (pid > 0) {
    EXPECT_TRUE(child_exits_zero(pid));
  }
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(write(pipes[i][1], "x", 1), 1);
  for (auto& t : threads) t.join();
  for (auto& p : pipes) {
    close(p[0]);
    close(p[1]);
  }
  parent_still_works();
}

std::atomic_ref<uint16_t> status_ref(flexsc_entry* e) {
  return std::atomic_ref<uint16_t>(e->status);
}

// Entries submitted by the forking thread and still in flight (one being
// executed: a read blocked on an empty pipe; the rest queued behind it)
// are completed with -ECANCELED in the child: its syscall threads do not
// exist there, so nothing may be left waiting forever.  With the io_uring
// backends the pipe reads wait in the context's ring; there the same runs
// again with reads on syscall threads (recvfrom with an address).
void batch_in_flight_is_cancelled_in_child(pid_t parent, bool on_syscall_thread) {
  BlockingChannel p(on_syscall_thread);
  flexsc_ctx* ctx = nullptr;
  ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
  constexpr int kN = 4;
  char bufs[kN] = {};
  flexsc_entry* entries[kN];
  for (int i = 0; i < kN; ++i) {
    entries[i] = flexsc_get_entry(ctx);
    ASSERT_NE(entries[i], nullptr);
    p.prep(entries[i], &bufs[i], 1);
  }
  ASSERT_EQ(flexsc_submit(ctx), kN);
  // Give a syscall thread the time to claim the first read and block in it
  // (a claimed entry may stay SUBMITTED: the drain may skip the BUSY store).
  // In a ring, the owner moves completions only when it calls in: peeking
  // lets it put the reads' first attempts (not waiting) back, waiting.
  for (int i = 0; i < 25; ++i) {
    flexsc_entry* e = nullptr;
    if (uring_backend() && !on_syscall_thread) {
      EXPECT_EQ(flexsc_peek(ctx, &e), -EAGAIN) << "a read completed with nothing written";
    }
    usleep(2'000);
  }
  for (int i = 0; i < kN; ++i) {
    const uint16_t s = status_ref(entries[i]).load();
    EXPECT_TRUE(s == FLEXSC_SUBMITTED || s == FLEXSC_BUSY) << "entry " << i << " status " << s;
  }

  const pid_t pid = fork_child([&] {
    for (int i = 0; i < kN; ++i) {
      flexsc_entry* e = nullptr;
      CHILD_CHECK_EQ(flexsc_wait(ctx, &e), 0);
      CHILD_CHECK(e != nullptr);
      CHILD_CHECK_EQ(e->ret, -ECANCELED);
      flexsc_seen(ctx, e);
    }
    flexsc_entry* e = nullptr;
    CHILD_CHECK_EQ(flexsc_peek(ctx, &e), -EAGAIN);
    CHILD_CHECK_EQ(flexsc_wait(ctx, &e), -EAGAIN);
    // The context works again in the child.
    e = flexsc_get_entry(ctx);
    CHILD_CHECK(e != nullptr);
    flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
    CHILD_CHECK_EQ(flexsc_submit(ctx), 1);
    CHILD_CHECK_EQ(flexsc_wait_entry(ctx, e), parent);
    flexsc_seen(ctx, e);
    CHILD_CHECK_EQ(flexsc_ctx_destroy(ctx), 0);
    if (int rc = child_basic_calls(parent, -1, ""); rc != 0) return rc;
    flexsc_shutdown();
    return 0;
  });
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(child_exits_zero(pid));

  // In the parent the reads are still pending; feed them.
  EXPECT_EQ(flexsc_ctx_destroy(ctx), -EBUSY);
  ASSERT_EQ(write(p.w, "abcd", kN), kN);
  std::string got;
  for (int i = 0; i < kN; ++i) {
    flexsc_entry* e = nullptr;
    ASSERT_EQ(flexsc_wait(ctx, &e), 0);
    EXPECT_EQ(e->ret, 1);
    got += bufs[flexsc_entry_index(ctx, e)];
    flexsc_seen(ctx, e);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, "abcd");
  EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
}

TEST_F(ForkExec, BatchInFlightIsCancelledInChild) {
  {
    SCOPED_TRACE(uring_backend() ? "pipe reads in the ring" : "pipe reads");
    batch_in_flight_is_cancelled_in_child(parent_, false);
  }
  if (uring_backend()) {
    SCOPED_TRACE("reads on syscall threads");
    batch_in_flight_is_cancelled_in_child(parent_, true);
  }
  parent_still_works();
}

// Another thread is blocked in flexsc_syscall (a pipe read executed by a
// syscall thread) at fork: in the child neither thread exists, and the
// child's calls must not wait behind that read.  With the io_uring
// backends the pipe read waits in the reader's ring; there the same runs
// again with a read on a syscall thread (recvfrom with an address).
void fork_while_another_thread_is_blocked(pid_t parent, bool on_syscall_thread) {
  BlockingChannel p(on_syscall_thread);
  std::atomic<long> result{-999};
  std::thread reader([&] {
    char c;
    result = p.call(&c, 1);
  });
  usleep(50'000);  // the reader is parked, its read blocked in a syscall thread or its ring
  const pid_t pid = fork_child([parent] { return child_basic_calls(parent, -1, ""); });
  EXPECT_GT(pid, 0);
  if (pid > 0) {
    EXPECT_TRUE(child_exits_zero(pid));
  }
  EXPECT_EQ(result.load(), -999) << "the read returned before anything was written";
  EXPECT_EQ(write(p.w, "z", 1), 1);
  reader.join();
  EXPECT_EQ(result.load(), 1);
}

TEST_F(ForkExec, ForkWhileAnotherThreadIsBlockedInACall) {
  if (flexsc::test::kForkUnsafeSanitizer) GTEST_SKIP() << flexsc::test::kSanitizerForkSkip;
  {
    SCOPED_TRACE(uring_backend() ? "a pipe read in the ring" : "a pipe read");
    fork_while_another_thread_is_blocked(parent_, false);
  }
  if (uring_backend()) {
    SCOPED_TRACE("a read on a syscall thread");
    fork_while_another_thread_is_blocked(parent_, true);
  }
  parent_still_works();
}

// ---- exec: no descriptor of the runtime survives ---------------------------

// Runs the fd lister (this binary re-executed) from a child forked with
// fork() or posix_spawn(), and returns fd -> link target.
std::map<int, std::string> list_fds_of_exec(bool use_posix_spawn, std::string* err,
                                            bool child_calls_first = false) {
  std::map<int, std::string> fds;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    *err = "pipe2";
    return fds;
  }
  // Everything the child needs is prepared before fork.
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, kListFdsEnv, std::strlen(kListFdsEnv)) != 0) env_store.emplace_back(*e);
  env_store.push_back(std::string(kListFdsEnv) + "=1");
  std::vector<char*> envp;
  for (auto& s : env_store) envp.push_back(s.data());
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char arg0[] = "fd-lister";
  char* argv[] = {arg0, nullptr};
  pid_t pid = -1;
  if (use_posix_spawn) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    // /proc/self/exe would be resolved in the child: use the real path.
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    const int rc = posix_spawn(&pid, path, &fa, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      *err = std::string("posix_spawn: ") + std::strerror(rc);
      close(out[0]);
      close(out[1]);
      return fds;
    }
  } else {
    const pid_t me = getpid();
    pid = fork();
    if (pid == 0) {
      if (child_calls_first) {
        // The child starts a runtime of its own (threads, pages) first.
        if (flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0) != me) _exit(3);
        flexsc_ctx* ctx;
        if (flexsc_ctx_create(2, &ctx) != 0) _exit(4);
      }
      dup2(out[1], 1);
      execve(self, argv, envp.data());
      _exit(127);
    }
  }
  close(out[1]);
  const std::string text = read_all(out[0]);
  close(out[0]);
  const ::testing::AssertionResult r = child_exits_zero(pid);
  if (!r) {
    *err = r.message();
    return fds;
  }
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    fds[std::atoi(line.c_str())] = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  if (fds.empty()) *err = "the lister printed nothing: '" + text + "'";
  return fds;
}

std::string show(const std::map<int, std::string>& fds) {
  std::string s;
  for (const auto& [fd, target] : fds) s += std::to_string(fd) + " -> " + target + "\n";
  return s;
}

// The descriptors an exec'd child may have: 0, 1, 2, those the test
// runner handed us, and `extra`.
std::set<int> allowed_fds(std::initializer_list<int> extra) {
  std::set<int> s{0, 1, 2};
  for (int i = 0; i < g_ninherited; ++i) s.insert(g_inherited[i]);
  s.insert(extra.begin(), extra.end());
  return s;
}

std::set<int> keys(const std::map<int, std::string>& m) {
  std::set<int> s;
  for (const auto& kv : m) s.insert(kv.first);
  return s;
}

// Every descriptor of this process that is not close-on-exec, but for
// those allowed: a direct look, with names.
std::string non_cloexec_fds(const std::set<int>& allowed) {
  std::string s;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return "opendir failed";
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    const int fd = std::atoi(de->d_name);
    if (fd == dirfd(d) || allowed.count(fd)) continue;
    const int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) {
      char target[512];
      const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
      target[n > 0 ? n : 0] = '\0';
      s += std::to_string(fd) + " -> " + target + "\n";
    }
  }
  closedir(d);
  return s;
}

// Makes the runtime do everything it does: calls, a batch, a blocking call
// that makes a spare syscall thread start (with the io_uring backends a
// pipe read waits in the ring instead, so a call a syscall thread runs
// blocks as well).
void exercise_runtime() {
  for (int i = 0; i < 50; ++i) ASSERT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
  flexsc_ctx* ctx = nullptr;
  ASSERT_EQ(flexsc_ctx_create(2, &ctx), 0);
  for (int i = 0; i < 100; ++i) {
    flexsc_entry* e = flexsc_get_entry(ctx);
    ASSERT_NE(e, nullptr);
    flexsc_prep(e, SYS_getpid, 0, 0, 0, 0, 0, 0);
  }
  ASSERT_EQ(flexsc_submit(ctx), 100);
  for (int i = 0; i < 100; ++i) {
    flexsc_entry* e = nullptr;
    ASSERT_EQ(flexsc_wait(ctx, &e), 0);
    ASSERT_EQ(e->ret, getpid());
    flexsc_seen(ctx, e);
  }
  ASSERT_EQ(flexsc_ctx_destroy(ctx), 0);
  for (bool on_syscall_thread : {false, true}) {
    if (on_syscall_thread && !uring_backend()) break;  // the pipe read was on one
    BlockingChannel p(on_syscall_thread);
    std::thread reader([&] {
      char c;
      EXPECT_EQ(p.call(&c, 1), 1);
    });
    usleep(20'000);
    EXPECT_EQ(flexsc_syscall(SYS_write, p.w, reinterpret_cast<long>("q"), 1, 0, 0, 0), 1);
    reader.join();
  }
}

TEST_F(ForkExec, ExecDoesNotLeakRuntimeDescriptors) {
  exercise_runtime();
  // Left open on purpose, without close-on-exec: the child must see it.
  const int keep = open("/dev/null", O_RDONLY);
  ASSERT_GE(keep, 0);
  const int keep_high = fcntl(keep, F_DUPFD, 200);  // F_DUPFD clears FD_CLOEXEC
  ASSERT_GE(keep_high, 200);
  const std::set<int> want = allowed_fds({keep, keep_high});

  EXPECT_EQ(non_cloexec_fds(want), "") << "descriptors the runtime opened without O_CLOEXEC";
  for (bool spawn : {false, true}) {
    SCOPED_TRACE(spawn ? "posix_spawn" : "fork+execve");
    std::string err;
    const auto fds = list_fds_of_exec(spawn, &err);
    ASSERT_EQ(err, "");
    EXPECT_EQ(keys(fds), want) << "the exec'd program has:\n" << show(fds);
    EXPECT_EQ(fds.count(keep) ? fds.at(keep) : "", "/dev/null");
  }
  close(keep);
  close(keep_high);
  parent_still_works();
}

TEST_F(ForkExec, ExecFromChildWithItsOwnRuntimeDoesNotLeak) {
  exercise_runtime();
  std::string err;
  const auto fds = list_fds_of_exec(false, &err, /*child_calls_first=*/true);
  ASSERT_EQ(err, "");
  EXPECT_EQ(keys(fds), allowed_fds({})) << "the exec'd program has:\n" << show(fds);
}

std::string temp_path(const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir && *dir ? dir : "/tmp") + "/flexsc-test-" + tag + "-" + std::to_string(getpid());
}

bool any_fd_points_to(const std::string& path, int except = -1) {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return false;
  bool found = false;
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    const int fd = std::atoi(de->d_name);
    if (fd == dirfd(d) || fd == except) continue;
    char target[4096];
    const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == path) found = true;
  }
  closedir(d);
  return found;
}

// The statistics file FLEXSC_STATS=/path is written at shutdown; its
// descriptor is closed afterwards and never survives an exec.
TEST(ForkExecStats, StatsFileWrittenAndClosed) {
  const std::string path = temp_path("stats");
  unlink(path.c_str());
  ASSERT_EQ(setenv("FLEXSC_STATS", path.c_str(), 1), 0);
  const int rc = flexsc_init(nullptr);
  unsetenv("FLEXSC_STATS");
  ASSERT_EQ(rc, 0);
  exercise_runtime();
  flexsc_shutdown();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0) << "FLEXSC_STATS file not created";
  EXPECT_GT(st.st_size, 0);
  EXPECT_FALSE(any_fd_points_to(path)) << "the statistics file is still open after shutdown";
  std::string err;
  const auto fds = list_fds_of_exec(false, &err);
  ASSERT_EQ(err, "");
  EXPECT_EQ(keys(fds), allowed_fds({})) << show(fds);
  unlink(path.c_str());
}

// The window in which the runtime holds the statistics file open is made
// long: the file is a FIFO whose buffer is full, so shutdown blocks in its
// write().  Meanwhile the descriptor must be close-on-exec: a program
// spawned then must not get it.  (posix_spawn, not fork: the atfork
// handlers wait for shutdown to finish.)
TEST(ForkExecStats, StatsDescriptorIsCloseOnExecWhileOpen) {
  const std::string path = temp_path("fifo");
  unlink(path.c_str());
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  // Both ends at once, so the runtime's open() finds a reader at once.
  const int fifo = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fifo, 0);
  fcntl(fifo, F_SETPIPE_SZ, 4096);
  char junk[4096];
  std::memset(junk, '#', sizeof junk);
  long filled = 0;
  for (;;) {
    const ssize_t n = write(fifo, junk, sizeof junk);
    if (n <= 0) break;
    filled += n;
  }
  ASSERT_GT(filled, 0);

  flexsc_options o{};
  o.size = sizeof o;
  o.stats = path.c_str();
  ASSERT_EQ(flexsc_init(&o), 0);
  exercise_runtime();
  std::atomic<bool> done{false};
  std::thread shut([&] {
    flexsc_shutdown();
    done = true;
  });
  // Wait for the runtime to open the FIFO.
  int runtime_fd = -1;
  for (int i = 0; i < 5000 && runtime_fd < 0 && !done; ++i) {
    DIR* d = opendir("/proc/self/fd");
    while (struct dirent* de = d ? readdir(d) : nullptr) {
      if (de->d_name[0] == '.') continue;
      const int fd = std::atoi(de->d_name);
      if (fd == dirfd(d) || fd == fifo) continue;
      char target[4096];
      const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
      if (n > 0 && std::string(target, static_cast<size_t>(n)) == path) runtime_fd = fd;
    }
    if (d) closedir(d);
    if (runtime_fd < 0) usleep(1000);
  }
  if (runtime_fd >= 0) {
    EXPECT_FALSE(done.load()) << "shutdown finished although the FIFO is full";
    const int flags = fcntl(runtime_fd, F_GETFD);
    EXPECT_TRUE(flags >= 0 && (flags & FD_CLOEXEC))
        << "the statistics descriptor " << runtime_fd << " is not close-on-exec";
    std::string err;
    const auto fds = list_fds_of_exec(true, &err);
    EXPECT_EQ(err, "");
    EXPECT_EQ(keys(fds), allowed_fds({})) << "spawned while the statistics file was open:\n" << show(fds);
    for (const auto& [fd, target] : fds) EXPECT_NE(target, path) << "fd " << fd << " leaked";
  } else {
    ADD_FAILURE() << "the runtime never opened the statistics FIFO " << path;
  }
  // Drain: the runtime's write completes, shutdown returns.
  std::string tail;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    const ssize_t n = read(fifo, buf, sizeof buf);
    if (n > 0)
      tail.append(buf, static_cast<size_t>(n));
    else
      usleep(1000);
  }
  for (;;) {
    char buf[4096];
    const ssize_t n = read(fifo, buf, sizeof buf);
    if (n <= 0) break;
    tail.append(buf, static_cast<size_t>(n));
  }
  ASSERT_TRUE(done.load()) << "shutdown still blocked after the FIFO was drained";
  shut.join();
  ASSERT_GE(tail.size(), static_cast<size_t>(filled));
  const std::string report = tail.substr(static_cast<size_t>(filled));
  EXPECT_FALSE(report.empty()) << "no statistics written";
  EXPECT_NE(report.find("backend " + test_backend() + ","), std::string::npos)
      << "the report names the backend:\n"
      << report;
  close(fifo);
  unlink(path.c_str());
  EXPECT_FALSE(any_fd_points_to(path));
}

}  // namespace
