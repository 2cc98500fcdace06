#include "classify.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

namespace flexsc::detail {
namespace {

constexpr long kIoprioWhoProcess = 1;    // IOPRIO_WHO_PROCESS, not in glibc's headers
constexpr long kCloseRangeUnshare = 2;  // CLOSE_RANGE_UNSHARE

// Thread CPU-time clock ids: CLOCK_THREAD_CPUTIME_ID, or a negative id
// built by pthread_getcpuclockid/clock_getcpuclockid with the per-thread bit.
bool is_thread_clock(int id) {
  return id == CLOCK_THREAD_CPUTIME_ID || (id < 0 && (id & 4) != 0);
}


bool is_pi_futex(int op) {
  switch (op & FUTEX_CMD_MASK) {
    case FUTEX_LOCK_PI:
    case FUTEX_UNLOCK_PI:
    case FUTEX_TRYLOCK_PI:
    case FUTEX_WAIT_REQUEUE_PI:
    case FUTEX_CMP_REQUEUE_PI:
    case 13:  // FUTEX_LOCK_PI2
      return true;
    default:
      return false;
  }
}

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
  constexpr auto local = SyscallClass::Local;
  switch (nr) {
    case SYS_sched_setparam:
    case SYS_sched_getparam:
    case SYS_sched_setscheduler:
    case SYS_sched_getscheduler:
    case SYS_sched_rr_get_interval:
    case SYS_sched_setaffinity:
    case SYS_sched_getaffinity:
    case SYS_sched_setattr:
    case SYS_sched_getattr:
      return int_arg(a[0]) == 0 ? local : table;
    case SYS_getpriority:
    case SYS_setpriority:
      return int_arg(a[0]) == PRIO_PROCESS && int_arg(a[1]) == 0 ? local : table;
    case SYS_ioprio_get:
    case SYS_ioprio_set:
      return int_arg(a[0]) == kIoprioWhoProcess && int_arg(a[1]) == 0 ? local : table;
    case SYS_getrusage:
      return int_arg(a[0]) == RUSAGE_THREAD ? local : table;
    case SYS_clock_gettime:
    case SYS_clock_getres:
    case SYS_clock_nanosleep:
    case SYS_timer_create:
      return is_thread_clock(int_arg(a[0])) ? local : table;
    case SYS_close_range:
      return (a[2] & kCloseRangeUnshare) ? local : table;
    case SYS_perf_event_open:
      return int_arg(a[1]) == 0 ? local : table;
    // A signal mask swapped in for the call is the calling thread's (and
    // a signal it lets through interrupts that thread's call).
    case SYS_ppoll:
      return a[3] ? local : table;
    case SYS_pselect6:
    case SYS_io_pgetevents:
      return a[5] ? local : table;
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
      return a[4] ? local : table;
    case SYS_futex:
      if (is_pi_futex(int_arg(a[1]))) return local;
      return is_futex_wait(int_arg(a[1])) ? SyscallClass::Blocking : SyscallClass::Remote;
    case SYS_wait4:
      return (a[2] & __WNOTHREAD) ? local : table;
    case SYS_waitid:
      return (a[3] & __WNOTHREAD) ? local : table;
    case SYS_fcntl:
      return int_arg(a[1]) == F_SETLKW || int_arg(a[1]) == F_OFD_SETLKW ? SyscallClass::Blocking : table;
    case SYS_flock:
      return (a[1] & LOCK_NB) ? SyscallClass::Remote : table;
    default:
      return table;
  }
}

const char* class_name(SyscallClass c) {
  switch (c) {
    case SyscallClass::Unknown: return "unknown";
    case SyscallClass::Local: return "local";
    case SyscallClass::Remote: return "remote";
    case SyscallClass::Blocking: return "blocking";
  }
  return "?";
}

}  // namespace flexsc::detail
