#include "base/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>

#include "base/raw_syscall.h"

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

std::mutex g_thread_start_mutex;

// What a new thread runs first: it takes fn and arg from its maker's
// stack, then says it runs.
struct Launch {
  void* (*fn)(void*);
  void* arg;
  std::atomic<bool> running{false};
};

void* launch(void* p) {
  auto* l = static_cast<Launch*>(p);
  void* (*fn)(void*) = l->fn;
  void* arg = l->arg;
  l->running.store(true, std::memory_order_release);
  return fn(arg);
}

}  // namespace

std::mutex& thread_start_mutex() {
  return g_thread_start_mutex;
}

int start_runtime_thread(pthread_t* handle, size_t stack, const std::vector<int>* cpus, void* (*fn)(void*),
                         void* arg) {
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
  Launch launched{fn, arg};
  const int rc = pthread_create(handle, &attr, launch, &launched);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  // Until then the thread is starting up (thread_start_mutex()); it soon
  // runs, pinned to its own CPUs or, sharing ours, once we yield.
  while (rc == 0 && !launched.running.load(std::memory_order_acquire)) sched_yield();
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

namespace {
// The runtime's descriptors, with the identity of the file each named when
// it was moved: a number the runtime has closed since may name a file of
// the program by now.
struct OwnedFd {
  int fd;
  uint64_t dev, ino;
};
constexpr int kMaxOwned = 1024;
std::mutex g_owned_mutex;
OwnedFd g_owned[kMaxOwned];
int g_owned_count = 0;
std::atomic<int> g_lowest_owned{INT32_MAX};

bool identity(int fd, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (raw_syscall6(SYS_fstat, fd, reinterpret_cast<long>(&st), 0, 0, 0, 0) != 0) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

void remember_owned(int fd) {
  uint64_t dev, ino;
  if (!identity(fd, &dev, &ino)) return;
  std::lock_guard lock(g_owned_mutex);
  for (int i = 0; i < g_owned_count; ++i)
    if (g_owned[i].fd == fd) {
      g_owned[i] = {fd, dev, ino};
      return;
    }
  if (g_owned_count == kMaxOwned) return;
  g_owned[g_owned_count++] = {fd, dev, ino};
  if (fd < g_lowest_owned.load(std::memory_order_relaxed))
    g_lowest_owned.store(fd, std::memory_order_relaxed);
}
}  // namespace

bool runtime_owns_fd(int fd) {
  if (fd < g_lowest_owned.load(std::memory_order_relaxed)) return false;  // the common case: a low number
  uint64_t dev, ino;
  std::lock_guard lock(g_owned_mutex);
  for (int i = 0; i < g_owned_count; ++i) {
    if (g_owned[i].fd != fd) continue;
    if (identity(fd, &dev, &ino) && dev == g_owned[i].dev && ino == g_owned[i].ino) return true;
    g_owned[i] = g_owned[--g_owned_count];  // closed by the runtime since
    return false;
  }
  return false;
}

int runtime_owned_fds(int* out, int max) {
  int candidates[kMaxOwned];
  int n = 0, kept = 0;
  {
    std::lock_guard lock(g_owned_mutex);
    for (int i = 0; i < g_owned_count; ++i) candidates[n++] = g_owned[i].fd;
  }
  std::sort(candidates, candidates + n);
  for (int i = 0; i < n && kept < max; ++i)
    if (runtime_owns_fd(candidates[i])) out[kept++] = candidates[i];
  return kept;
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
      remember_owned(high);
      return high;
    }
  }
  remember_owned(fd);
  return fd;
}

void lock_process_for_fork() {
  g_thread_start_mutex.lock();
  g_owned_mutex.lock();
}

void unlock_process_after_fork() {
  g_owned_mutex.unlock();
  g_thread_start_mutex.unlock();
}

}  // namespace flexsc::detail
