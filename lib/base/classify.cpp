#include "base/classify.h"

#include <fcntl.h>
#include <flexsc/thread_args.h>
#include <linux/close_range.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

namespace flexsc::detail {
namespace {

// The shared header spells the kernel's constants out: they must be glibc's.
static_assert(FLEXSC_PRIO_PROCESS == PRIO_PROCESS && FLEXSC_RUSAGE_THREAD == RUSAGE_THREAD);
static_assert(FLEXSC_CLOCK_THREAD_CPUTIME_ID == CLOCK_THREAD_CPUTIME_ID && FLEXSC_WNOTHREAD == __WNOTHREAD);
static_assert(FLEXSC_CLOSE_RANGE_UNSHARE == CLOSE_RANGE_UNSHARE);
static_assert(FLEXSC_PROT_EXEC == PROT_EXEC &&
              FLEXSC_PROT_GROWS ==
                  (PROT_GROWSDOWN | PROT_GROWSUP));  // linux/ioprio.h is not C++: the module checks that one
static_assert(FLEXSC_FUTEX_CMD_MASK == FUTEX_CMD_MASK && FLEXSC_FUTEX_LOCK_PI == FUTEX_LOCK_PI &&
              FLEXSC_FUTEX_UNLOCK_PI == FUTEX_UNLOCK_PI && FLEXSC_FUTEX_TRYLOCK_PI == FUTEX_TRYLOCK_PI &&
              FLEXSC_FUTEX_WAIT_REQUEUE_PI == FUTEX_WAIT_REQUEUE_PI &&
              FLEXSC_FUTEX_CMP_REQUEUE_PI == FUTEX_CMP_REQUEUE_PI && FLEXSC_FUTEX_WAIT == FUTEX_WAIT &&
              FLEXSC_FUTEX_WAIT_BITSET == FUTEX_WAIT_BITSET);

bool is_futex_wait(int op) {
  switch (op & FUTEX_CMD_MASK) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET:
      return true;
    default:
      return false;
  }
}

}  // namespace

SyscallClass classify(long nr, const long a[6]) {
  if (nr < 0 || nr >= static_cast<long>(kSyscallTableSize)) return SyscallClass::Unknown;
  const SyscallClass table = kSyscallTable[nr].cls;
  if (!kSyscallTable[nr].by_args) return table;
  const unsigned long regs[6] = {static_cast<unsigned long>(a[0]), static_cast<unsigned long>(a[1]),
                                 static_cast<unsigned long>(a[2]), static_cast<unsigned long>(a[3]),
                                 static_cast<unsigned long>(a[4]), static_cast<unsigned long>(a[5])};
  if (flexsc_acts_on_caller(static_cast<unsigned>(nr), regs) > 0) return SyscallClass::Local;
  // Arguments that make a call blocking, or not.
  switch (nr) {
    case SYS_futex:
      return is_futex_wait(flexsc_int_arg(a[1])) ? SyscallClass::Blocking : SyscallClass::Remote;
    case SYS_fcntl:
      return flexsc_int_arg(a[1]) == F_SETLKW || flexsc_int_arg(a[1]) == F_OFD_SETLKW ? SyscallClass::Blocking
                                                                                      : table;
    case SYS_flock:
      return (a[1] & LOCK_NB) ? SyscallClass::Remote : table;
    default:
      return table;
  }
}

const char* class_name(SyscallClass c) {
  switch (c) {
    case SyscallClass::Unknown:
      return "unknown";
    case SyscallClass::Local:
      return "local";
    case SyscallClass::Remote:
      return "remote";
    case SyscallClass::Blocking:
      return "blocking";
  }
  return "?";
}

}  // namespace flexsc::detail
