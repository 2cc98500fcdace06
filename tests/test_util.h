// Helpers shared by the test suites.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace flexsc::test {

// Large counts times FLEXSC_TEST_SCALE (the sanitizer builds shrink them).
inline long scaled(long n) {
  const char* s = std::getenv("FLEXSC_TEST_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  const long v = static_cast<long>(static_cast<double>(n) * (f > 0 ? f : 1.0));
  return v > 0 ? v : 1;
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

}  // namespace flexsc::test
