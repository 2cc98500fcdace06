// Interrupting a blocking call in flight (Backend::interrupt), as a signal
// interrupts the syscall on its caller: what the drop-in wrapper uses when
// the program handled a signal without SA_RESTART.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "api.h"
#include "test_util.h"
#include "watchdog.h"

using flexsc::detail::syscall_interruptible;
using namespace std::chrono_literals;

namespace {

bool flag_set(void* p) {
  return static_cast<std::atomic<bool>*>(p)->load();
}

// A read on an empty pipe, asked to stop while it waits in the backend.
TEST(Interrupt, BlockingReadEndsWithEintrWhenAsked) {
  flexsc::test::Watchdog dog("interrupt a blocking read", 60s);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  flexsc::test::Pipe pipe;
  char buf[8];
  std::atomic<bool> stop{false};
  long ret = 0;
  std::thread reader([&] {
    const long a[6] = {pipe.r, reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0};
    ret = syscall_interruptible(SYS_read, a, flag_set, &stop);
  });
  std::this_thread::sleep_for(50ms);  // in its call by now
  stop = true;
  reader.join();
  EXPECT_EQ(ret, -EINTR);
  // Nothing was consumed: the pipe works on, and a call nobody stops
  // gets its data.
  ASSERT_EQ(write(pipe.w, "abc", 3), 3);
  std::atomic<bool> never{false};
  const long a[6] = {pipe.r, reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0};
  EXPECT_EQ(syscall_interruptible(SYS_read, a, flag_set, &never), 3);
  flexsc_shutdown();
}

// A call that cannot wait is not interrupted, as a signal would not
// interrupt its syscall: the real result stands.
TEST(Interrupt, CallThatCannotWaitKeepsItsResult) {
  ASSERT_EQ(flexsc_init(nullptr), 0);
  std::atomic<bool> stop{true};
  const long a[6] = {0, 0, 0, 0, 0, 0};
  EXPECT_EQ(syscall_interruptible(SYS_getppid, a, flag_set, &stop), getppid());
  flexsc_shutdown();
}

}  // namespace
