#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <new>

#include "raw_syscall.h"
#include "runtime.h"

namespace flexsc::detail {

namespace {

void ignore_signal(int) {}

}  // namespace

void CancelSignal::take() {
  for (int sig = SIGRTMAX; sig > SIGRTMIN + 2; --sig) {
    struct sigaction sa;
    if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL) {
      struct sigaction mine {};
      mine.sa_handler = ignore_signal;  // no SA_RESTART: a blocked call returns
      sigemptyset(&mine.sa_mask);
      sigaction(sig, &mine, &old_);
      sig_ = sig;
      return;
    }
  }
}

void CancelSignal::give_back() {
  if (!sig_) return;
  sigaction(sig_, &old_, nullptr);
  sig_ = 0;
}

namespace {
// A runtime thread is flexsc's own code for its whole life.
struct ThreadStart {
  void* (*fn)(void*);
  void* arg;
};
void* run_runtime_thread(void* p) {
  const ThreadStart start = *static_cast<ThreadStart*>(p);
  delete static_cast<ThreadStart*>(p);
  ++t_runtime_depth;
  return start.fn(start.arg);
}
}  // namespace

int start_runtime_thread(pthread_t* handle, size_t stack, const std::vector<int>* cpus, void* (*fn)(void*),
                         void* arg) {
  auto* start = new (std::nothrow) ThreadStart{fn, arg};
  if (!start) return -ENOMEM;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack);
  if (cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : *cpus) CPU_SET(c, &set);
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const int rc = pthread_create(handle, &attr, run_runtime_thread, start);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) delete start;
  return -rc;
}

void forward_thread_signal(int submitter_tid) {
  for (int sig : {SIGPIPE, SIGXFSZ}) {
    uint64_t set = uint64_t{1} << (sig - 1);
    struct timespec zero {};
    if (raw_syscall6(SYS_rt_sigtimedwait, reinterpret_cast<long>(&set), 0, reinterpret_cast<long>(&zero),
                     sizeof set, 0, 0) == sig &&
        submitter_tid)
      raw_syscall6(SYS_tgkill, getpid(), submitter_tid, sig, 0, 0, 0);
  }
}

void interrupt_and_join(pthread_t* handle, const std::atomic<bool>& exited, int signal) {
  for (unsigned tries = 0; !exited.load(std::memory_order_acquire); ++tries) {
    if (signal && tries % 10 == 0) pthread_kill(*handle, signal);
    usleep(1000);
  }
  pthread_join(*handle, nullptr);
  *handle = {};
}

int move_fd_high(int fd) {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur < 64) return fd;
  const int top = static_cast<int>(std::min<rlim_t>(lim.rlim_cur, 1 << 20)) - 1;
  // F_DUPFD takes the lowest free number from `from` up: step down from
  // the top until a window has one.
  for (int from = top; from > top / 2; from -= 64) {
    const int high = fcntl(fd, F_DUPFD_CLOEXEC, from);
    if (high >= 0) {
      close(fd);
      return high;
    }
  }
  return fd;
}

}  // namespace flexsc::detail
