// Documented limits.  Two things name the calling thread in a way flexsc
// cannot see when a call is posted (docs/limits.md): a signalfd (reads
// dequeue the reader's own thread-directed signals) and paths under
// /proc/thread-self.  Remote calls on them answer for the syscall thread.
// These tests pin the documented behaviour down, so lifting a limit shows
// here and docs/limits.md gets updated.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

TEST(KnownLimits, SignalfdReadAnswersForTheSyscallThread) {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigset_t old;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
  const uint64_t bit = sigbit(SIGUSR1);
  const long sfd = sc(SYS_signalfd4, -1, &bit, 8, SFD_NONBLOCK | SFD_CLOEXEC);
  ASSERT_GE(sfd, 0);
  ASSERT_EQ(sc(SYS_tgkill, g.pid, sc(SYS_gettid), SIGUSR1), 0);
  signalfd_siginfo ssi{};
  const long got = flexsc_syscall(SYS_read, sfd, reinterpret_cast<long>(&ssi), sizeof ssi, 0, 0, 0);
  if (std::string(flexsc_backend()) == "uring") {
    // Without SQPOLL, io_uring tries the read inside the caller's own
    // io_uring_enter: the kernel answers for the caller, as the syscall would.
    EXPECT_EQ(got, static_cast<long>(sizeof ssi)) << "uring reads a signalfd in the caller (docs/limits.md)";
  } else {
    EXPECT_EQ(got, -EAGAIN) << "a thread-directed signal read through flexsc: the documented limit is gone, "
                               "update docs/limits.md";
    EXPECT_EQ(sc(SYS_read, sfd, &ssi, sizeof ssi), static_cast<long>(sizeof ssi))
        << "still pending on the caller";
  }
  EXPECT_EQ(ssi.ssi_signo, static_cast<uint32_t>(SIGUSR1));
  sc(SYS_close, sfd);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST(KnownLimits, ProcThreadSelfNamesTheSyscallThread) {
  char buf[64] = {};
  const long fd = flexsc_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/thread-self/comm"),
                                 O_RDONLY | O_CLOEXEC, 0, 0, 0);
  ASSERT_GE(fd, 0);
  const long n = sc(SYS_read, fd, buf, sizeof buf - 1);
  sc(SYS_close, fd);
  ASSERT_GT(n, 0);
  // A syscall thread (the kernel shim's serving threads are syscall threads
  // too), or one of io_uring's kernel workers (iou-wrk, iou-sqp).
  const std::string name(buf, static_cast<size_t>(n));
  EXPECT_TRUE(name.rfind("flexsc-sys/", 0) == 0 || name.rfind("iou-", 0) == 0)
      << name << ": /proc/thread-self through flexsc: the documented limit is gone, update docs/limits.md";
}

}  // namespace
}  // namespace flexsc::test::diff
