// Helpers shared by the test suites.
#pragma once

#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace flexsc::test {

// Large counts times FLEXSC_TEST_SCALE (the sanitizer builds shrink them).
inline long scaled(long n) {
  const char* s = std::getenv("FLEXSC_TEST_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  const long v = static_cast<long>(static_cast<double>(n) * (f > 0 ? f : 1.0));
  return v > 0 ? v : 1;
}

// ---- the backend under test ------------------------------------------------
//
// ctest runs every suite that starts the runtime once per backend, naming
// it in FLEXSC_BACKEND (thread, uring, uring-sqpoll).  The name is taken
// before main(): tests set and unset FLEXSC_BACKEND themselves, and put it
// back with restore_backend_env().  A program run by hand without it tests
// the thread backend: FLEXSC_BACKEND is then set to "thread", so that is
// what flexsc_init() picks (`auto` may choose io_uring).  `auto` itself is
// no name a test can compare with: test_backend() refuses it.
namespace internal {
inline std::string backend_at_start() {
  const char* b = std::getenv("FLEXSC_BACKEND");
  if (b && *b) return b;
  setenv("FLEXSC_BACKEND", "thread", 1);
  return "thread";
}
inline const std::string g_backend_under_test = backend_at_start();
}  // namespace internal

// The backend the runtime runs in this test program: what flexsc_backend()
// says once it is started.
inline const std::string& test_backend() {
  if (internal::g_backend_under_test == "auto") {
    std::fprintf(stderr,
                 "FLEXSC_BACKEND=auto: these tests need the backend under test by name "
                 "(thread, uring or uring-sqpoll); test_api checks what auto picks\n");
    std::exit(2);
  }
  return internal::g_backend_under_test;
}

// The io_uring backends: calls io_uring can express (read, write, openat,
// nanosleep, ...) run in a ring and are counted in uring_calls; the rest
// (getppid, lseek, poll, ...) still go to syscall threads (remote_calls).
inline bool uring_backend() {
  return test_backend() == "uring" || test_backend() == "uring-sqpoll";
}

// FLEXSC_BACKEND set back to the backend under test.
inline void restore_backend_env() {
  setenv("FLEXSC_BACKEND", test_backend().c_str(), 1);
}

// Calls that left the caller: run by syscall threads or by io_uring.
inline uint64_t offloaded_calls(const flexsc_stats& s) {
  return s.remote_calls + s.uring_calls;
}

// True in a ThreadSanitizer build.
constexpr bool kTsan =
#if defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

// True in an ASan or TSan build.  GCC 12's sanitizer runtimes do not hold
// all their internal allocator locks across fork(): a child forked while
// another thread is inside the runtime's allocator can block forever on
// such a lock (seen here: ASan's SizeClassAllocator64 mutex, TSan's
// internal_allocator_cache_mu).  Tests that fork while other threads
// allocate skip there.
constexpr bool kForkUnsafeSanitizer =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif
inline constexpr const char* kSanitizerForkSkip =
    "GCC 12's sanitizer runtime is not fork-safe while other threads allocate (the child can block on "
    "its internal allocator lock); the plain build runs this test";

// A file's whole contents ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A pipe, closed on scope exit (both ends -1 if it could not be made).
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) r = fds[0], w = fds[1];
  }
  ~Pipe() {
    close(r);
    close(w);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

// A seccomp filter program that makes syscall nr fail with EPERM and lets
// every other call through; prog() is valid while the object lives.
struct EpermFilter {
  explicit EpermFilter(int nr)
      : filter{
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        } {}
  sock_fprog prog() { return {static_cast<unsigned short>(std::size(filter)), filter}; }
  sock_filter filter[4];
};

}  // namespace flexsc::test

// Runs a check in a freshly executed copy of this program (gtest's
// threadsafe death-test style re-executes the binary), where no runtime has
// ever been started.  The check returns "" or what went wrong.
#define EXPECT_IN_FRESH_PROCESS(check)                     \
  do {                                                     \
    GTEST_FLAG_SET(death_test_style, "threadsafe");        \
    EXPECT_EXIT(                                           \
        {                                                  \
          const std::string why = (check)();               \
          if (!why.empty()) {                              \
            std::fprintf(stderr, "%s\n", why.c_str());     \
            std::_Exit(1);                                 \
          }                                                \
          std::exit(0); /* the atexit shutdown runs too */ \
        },                                                 \
        ::testing::ExitedWithCode(0), "");                 \
  } while (0)
