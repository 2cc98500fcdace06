// The classification table and its argument-dependent refinements.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "base/classify.h"

using flexsc::detail::classify;
using flexsc::detail::kSyscallTable;
using flexsc::detail::kSyscallTableSize;
using C = flexsc::detail::SyscallClass;

namespace {

C cls(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0) {
  const long a[6] = {a0, a1, a2, a3, a4, a5};
  return classify(nr, a);
}

TEST(Classify, EveryNumberOfTheHeadersHasANameAndAClass) {
  EXPECT_GT(kSyscallTableSize, static_cast<unsigned>(SYS_getppid));
  unsigned named = 0;
  for (unsigned nr = 0; nr < kSyscallTableSize; ++nr) {
    if (!kSyscallTable[nr].name) {
      EXPECT_EQ(kSyscallTable[nr].cls, C::Unknown) << nr;
      continue;
    }
    ++named;
    EXPECT_NE(kSyscallTable[nr].cls, C::Unknown) << kSyscallTable[nr].name;
  }
  EXPECT_GT(named, 300u);
  EXPECT_STREQ(kSyscallTable[SYS_read].name, "read");
}

TEST(Classify, PlainClasses) {
  EXPECT_EQ(cls(SYS_getppid), C::Remote);
  EXPECT_EQ(cls(SYS_read), C::Blocking);
  EXPECT_EQ(cls(SYS_accept4), C::Blocking);
  EXPECT_EQ(cls(SYS_gettid), C::Local);
  EXPECT_EQ(cls(SYS_rt_sigprocmask), C::Local);
  EXPECT_EQ(cls(SYS_clone3), C::Local);
  // Thread state behind a process-looking call: a PID namespace's reboot
  // ends the calling thread, and a new key's access rights go into the
  // calling thread's PKRU.
  EXPECT_EQ(cls(SYS_reboot), C::Local);
  EXPECT_EQ(cls(SYS_pkey_alloc, 0, 0), C::Local);
  EXPECT_EQ(cls(SYS_pkey_free, 1), C::Remote);
  EXPECT_EQ(cls(SYS_remap_file_pages), C::Local);
}

TEST(Classify, NumbersOutsideTheTableAreUnknown) {
  EXPECT_EQ(cls(-1), C::Unknown);
  EXPECT_EQ(cls(kSyscallTableSize), C::Unknown);
  EXPECT_EQ(cls(1L << 40), C::Unknown);
  EXPECT_EQ(cls(0x40000000L + SYS_getppid), C::Unknown);  // x32
}

// Each refinement both ways: a missing "# args" mark in syscall_classes.txt
// would make the table's class win here.
TEST(Classify, ArgumentsRefineTheClass) {
  EXPECT_EQ(cls(SYS_sched_setaffinity, 0), C::Local);
  EXPECT_EQ(cls(SYS_sched_setaffinity, 1234), C::Remote);
  EXPECT_EQ(cls(SYS_getpriority, PRIO_PROCESS, 0), C::Local);
  EXPECT_EQ(cls(SYS_getpriority, PRIO_PROCESS, 1234), C::Remote);
  EXPECT_EQ(cls(SYS_getrusage, RUSAGE_THREAD), C::Local);
  EXPECT_EQ(cls(SYS_getrusage, RUSAGE_SELF), C::Remote);
  EXPECT_EQ(cls(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID), C::Local);
  EXPECT_EQ(cls(SYS_clock_gettime, CLOCK_MONOTONIC), C::Remote);
  EXPECT_EQ(cls(SYS_timer_create, CLOCK_THREAD_CPUTIME_ID), C::Local);
  EXPECT_EQ(cls(SYS_timer_create, CLOCK_REALTIME), C::Remote);
  EXPECT_EQ(cls(SYS_perf_event_open, 0, 0), C::Local);
  EXPECT_EQ(cls(SYS_perf_event_open, 0, 1234), C::Remote);
  EXPECT_EQ(cls(SYS_futex, 0, FUTEX_LOCK_PI_PRIVATE), C::Local);
  EXPECT_EQ(cls(SYS_futex, 0, FUTEX_WAIT_PRIVATE), C::Blocking);
  EXPECT_EQ(cls(SYS_futex, 0, FUTEX_WAKE_PRIVATE), C::Remote);
  EXPECT_EQ(cls(SYS_wait4, -1, 0, __WNOTHREAD), C::Local);
  EXPECT_EQ(cls(SYS_wait4, -1, 0, 0), C::Blocking);
  EXPECT_EQ(cls(SYS_fcntl, 3, F_SETLKW), C::Blocking);
  EXPECT_EQ(cls(SYS_fcntl, 3, F_GETFL), C::Remote);
  EXPECT_EQ(cls(SYS_flock, 3, LOCK_EX | LOCK_NB), C::Remote);
  EXPECT_EQ(cls(SYS_flock, 3, LOCK_EX), C::Blocking);
  EXPECT_EQ(cls(SYS_close_range, 3, 10, 2 /* CLOSE_RANGE_UNSHARE */), C::Local);
  EXPECT_EQ(cls(SYS_close_range, 3, 10, 0), C::Remote);
  // A signal mask for the call is the calling thread's.
  EXPECT_EQ(cls(SYS_ppoll, 0, 0, 0, 0x1000), C::Local);
  EXPECT_EQ(cls(SYS_ppoll, 0, 0, 0, 0), C::Blocking);
  EXPECT_EQ(cls(SYS_pselect6, 0, 0, 0, 0, 0, 0x1000), C::Local);
  EXPECT_EQ(cls(SYS_pselect6, 0, 0, 0, 0, 0, 0), C::Blocking);
  EXPECT_EQ(cls(SYS_epoll_pwait, 3, 0, 1, -1, 0x1000), C::Local);
  EXPECT_EQ(cls(SYS_epoll_pwait, 3, 0, 1, -1, 0), C::Blocking);
  EXPECT_EQ(cls(SYS_epoll_pwait2, 3, 0, 1, 0, 0x1000), C::Local);
  EXPECT_EQ(cls(SYS_io_pgetevents, 0, 1, 1, 0, 0, 0x1000), C::Local);
  // Execute-only memory takes a protection key the calling thread's PKRU denies.
  EXPECT_EQ(cls(SYS_mmap, 0, 4096, PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), C::Local);
  EXPECT_EQ(cls(SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), C::Remote);
  EXPECT_EQ(cls(SYS_mmap, 0, 4096, PROT_EXEC | PROT_GROWSDOWN, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            C::Remote);
  EXPECT_EQ(cls(SYS_mprotect, 0x10000, 4096, PROT_EXEC), C::Local);
  EXPECT_EQ(cls(SYS_mprotect, 0x10000, 4096, PROT_EXEC | PROT_GROWSDOWN), C::Local);
  EXPECT_EQ(cls(SYS_mprotect, 0x10000, 4096, PROT_READ | PROT_EXEC), C::Remote);
  EXPECT_EQ(cls(SYS_mprotect, 0x10000, 4096, PROT_READ), C::Remote);
  EXPECT_EQ(cls(SYS_pkey_mprotect, 0x10000, 4096, PROT_EXEC, -1), C::Local);
  EXPECT_EQ(cls(SYS_pkey_mprotect, 0x10000, 4096, PROT_EXEC, 1), C::Remote);
}

// The kernel reads an int argument (pid_t, clockid_t, which, who, cmd) from
// the low 32 bits of its register: high garbage must not hide the thread.
TEST(Classify, IntArgumentsAreTheirLow32Bits) {
  constexpr long kHigh = 1L << 32;
  EXPECT_EQ(cls(SYS_sched_setaffinity, kHigh), C::Local);
  EXPECT_EQ(cls(SYS_sched_getattr, kHigh), C::Local);
  EXPECT_EQ(cls(SYS_getpriority, PRIO_PROCESS + kHigh, kHigh), C::Local);
  EXPECT_EQ(cls(SYS_getrusage, RUSAGE_THREAD + kHigh), C::Local);
  EXPECT_EQ(cls(SYS_perf_event_open, 0, kHigh), C::Local);
  EXPECT_EQ(cls(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID + kHigh), C::Local);
  EXPECT_EQ(cls(SYS_clock_gettime, static_cast<long>(0xfffffff6UL)),
            C::Local);  // tid 1, CPUCLOCK_SCHED, per thread
  EXPECT_EQ(cls(SYS_fcntl, 3, F_SETLKW + kHigh), C::Blocking);
  EXPECT_EQ(cls(SYS_futex, 0, FUTEX_LOCK_PI + kHigh), C::Local);
  EXPECT_EQ(cls(SYS_futex, 0, FUTEX_WAIT + kHigh), C::Blocking);
  EXPECT_EQ(cls(SYS_sched_setaffinity, 1234 + kHigh), C::Remote);
}

}  // namespace
