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

// True in an AddressSanitizer build.  GCC 12's ASan does not take its
// allocator's locks around fork(): a child forked while another thread is
// inside malloc can block forever on that lock (seen here, stack in the
// ASan allocator).  Tests that fork while other threads allocate skip there.
constexpr bool kAsan =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif
inline constexpr const char* kAsanForkSkip =
    "GCC 12's ASan allocator is not fork-safe while other threads allocate; the plain and TSan builds "
    "run this test";

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
