// Helpers shared by the test suites.
#pragma once

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

}  // namespace flexsc::test
