// libflexsc-preload.so: interposes libc's wrappers for the calls servers
// spend their time in.  Each one either posts its call through flexsc
// (flexsc_syscall) or passes it straight to the kernel, as the routing
// policy says, and answers as libc would: the result, or -1 and errno.
//
// Nothing here calls libc for a syscall: pass-through is the raw
// instruction, so the wrapper never recurses into itself; the calls
// flexsc's own code makes to these functions (t_runtime_depth > 0: an API
// call in progress, a runtime thread, exit and fork handlers) pass straight
// through as well.
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "api.h"
#include "base/classify.h"
#include "base/config.h"
#include "base/futex.h"
#include "base/libc_abi.h"
#include "base/process.h"
#include "base/raw_syscall.h"
#include "base/stats.h"
#include "base/thread_state.h"
#include "mn/threads.h"
#include "route.h"

using flexsc::detail::libc_result;
using flexsc::detail::open_mode_arg;
using flexsc::detail::raw_syscall6;
using namespace flexsc::preload;

// Set by the vfork stub (vfork.S) in the child, cleared in the parent when
// it resumes: the child shares the parent's memory and thread state, so
// every call it makes goes straight to the kernel.
extern "C" {
__attribute__((visibility("hidden"))) int flexsc_preload_in_vfork_child = 0;
}

namespace {

// ---- signals: a routed call that blocks must end as the syscall would --
//
// The program's handlers are installed behind a trampoline that counts, per
// thread, the signals handled (and those whose handler lacks SA_RESTART).
// A routed blocking call whose caller handled such a signal while it
// waited is interrupted in its syscall thread (-EINTR), as the kernel
// would have interrupted it on the caller; with SA_RESTART it just goes on,
// as a restarted call would.  poll and epoll_wait end with EINTR either way.
struct ProgramHandler {
  std::atomic<void*> fn{nullptr};
  std::atomic<int> flags{0};
};
constexpr int kSignals = 65;
ProgramHandler g_handlers[kSignals];
__attribute__((tls_model("initial-exec"))) thread_local std::atomic<unsigned> t_handled{0};
__attribute__((tls_model("initial-exec"))) thread_local std::atomic<unsigned> t_handled_no_restart{0};

// > 0 while one of the program's handlers runs on this thread: its calls
// go straight to the kernel (it may have interrupted anything, flexsc
// included).
__attribute__((tls_model("initial-exec"))) thread_local int t_in_handler = 0;

void trampoline(int sig, siginfo_t* info, void* uctx) {
  const int flags = g_handlers[sig].flags.load(std::memory_order_relaxed);
  void* fn = g_handlers[sig].fn.load(std::memory_order_relaxed);
  t_handled.fetch_add(1, std::memory_order_relaxed);
  if (!(flags & SA_RESTART)) t_handled_no_restart.fetch_add(1, std::memory_order_relaxed);
  if (flags & SA_RESETHAND)
    g_handlers[sig].fn.store(nullptr, std::memory_order_relaxed);  // the kernel reset it
  ++t_in_handler;
  if (flags & SA_SIGINFO)
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, info, uctx);
  else
    reinterpret_cast<void (*)(int)>(fn)(sig);
  --t_in_handler;
}

struct CallSignals {
  unsigned handled, no_restart;
  bool always_interrupted;  // poll, epoll_wait: EINTR whatever SA_RESTART says
};

bool interrupted(void* p) {
  const auto* c = static_cast<const CallSignals*>(p);
  return t_handled_no_restart.load(std::memory_order_relaxed) != c->no_restart ||
         (c->always_interrupted && t_handled.load(std::memory_order_relaxed) != c->handled);
}

bool ends_on_any_signal(long nr) {
  return nr == SYS_poll || nr == SYS_epoll_wait || nr == SYS_epoll_pwait;
}

enum class State : int { Starting, Running, PassThrough };

std::atomic<State> g_state{State::Starting};
// constinit: no static constructor of theirs may run after start().
constinit Policy g_policy;
constinit Counts g_counts;
constinit Estimates g_estimates;
constinit DescriptorKinds g_fds;

constexpr long kKernelSigsetSize = 8;

long pass(long nr, const long a[6]) {
  return raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// The calling thread's CPU time (a system call: read only on sampled
// routed calls), less what reading it twice costs.
uint64_t g_cpu_clock_cost_ns = 0;
uint64_t thread_cpu_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

long routed(long nr, const long a[6], flexsc::detail::SyscallClass cls) {
  if (cls != flexsc::detail::SyscallClass::Blocking)
    return flexsc_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  CallSignals c{t_handled.load(std::memory_order_relaxed),
                t_handled_no_restart.load(std::memory_order_relaxed), ends_on_any_signal(nr)};
  return flexsc::detail::syscall_interruptible(nr, a, interrupted, &c);
}

// Shut down between the decision and the call: the kernel answers.
long finish_routed(long nr, const long a[6], long ret) {
  return ret == -ESHUTDOWN && g_state.load(std::memory_order_acquire) != State::Running ? pass(nr, a) : ret;
}

// The class auto weighs a call by: a blocking-class call on descriptors
// that finish on their own (regular files) as one that cannot wait.  It
// still runs as the class it is.
flexsc::detail::SyscallClass weighed_class(long nr, const long a[6], flexsc::detail::SyscallClass cls) {
  using flexsc::detail::SyscallClass;
  int fds[2];
  if (cls != SyscallClass::Blocking || g_policy.mode != Mode::Auto) return cls;
  const int n = descriptors_it_waits_on(nr, a, fds);
  for (int i = 0; i < n; ++i)
    if (!g_fds.finishes_on_its_own(fds[i])) return cls;
  return n ? SyscallClass::Remote : cls;
}

long dispatch(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0) {
  const long a[6] = {a0, a1, a2, a3, a4, a5};
  // Not counted: a vfork child shares our counters, and flexsc's own calls
  // are not the program's.
  if (__atomic_load_n(&flexsc_preload_in_vfork_child, __ATOMIC_RELAXED) ||
      flexsc::detail::t_runtime_depth > 0)
    return pass(nr, a);
  Reason why;
  bool sample = false;
  flexsc::detail::SyscallClass cls = flexsc::detail::SyscallClass::Unknown;
  if (t_in_handler) {
    why = Reason::SignalHandler;
  } else if (g_state.load(std::memory_order_acquire) != State::Running) {
    why = Reason::NotReady;
  } else {
    cls = flexsc::detail::classify(nr, a);
    why = g_policy.decide(nr, weighed_class(nr, a, cls), g_estimates, &sample);
  }
  g_counts.add(nr, why);
  using flexsc::detail::now_ns;
  if (!is_routed(why)) {
    if (!sample) return pass(nr, a);
    const uint64_t start = now_ns();
    const long ret = pass(nr, a);
    const uint64_t end = now_ns();
    g_estimates.add_direct(nr, end - start);
    g_estimates.advance(end);
    return ret;
  }
  if (!sample) return finish_routed(nr, a, routed(nr, a, cls));
  const uint64_t cpu_start = thread_cpu_ns(), start = now_ns();
  const long ret = routed(nr, a, cls);
  const uint64_t end = now_ns(), cpu = thread_cpu_ns() - cpu_start;
  // A call the runtime did not take (it was stopping) says nothing of routing.
  if (ret != -ESHUTDOWN)
    g_estimates.add_routed(nr, end - start, cpu > g_cpu_clock_cost_ns ? cpu - g_cpu_clock_cost_ns : 0);
  g_estimates.advance(end);
  return finish_routed(nr, a, ret);
}

// The program's errno changes only when the call fails: flexsc's own code
// on the way (a fiber's scheduler allocating, say) must leave it alone.
template <class... A>
long call(long nr, A... a) {
  const int saved = errno;
  const long r = dispatch(nr, (long)a...);
  errno = saved;
  return libc_result(r);
}

// A call that hands out a descriptor: what was known of its number is not
// known of the new one.
template <class... A>
int call_new_fd(long nr, A... a) {
  const int saved = errno;
  const long r = dispatch(nr, (long)a...);
  errno = saved;
  g_fds.forget(r);
  return static_cast<int>(libc_result(r));
}

// LD_PRELOAD reaches programs this one executes only if asked
// (FLEXSC_INHERIT=1): our entries leave the variable.
void stop_inheritance() {
  const char* inherit = getenv("FLEXSC_INHERIT");
  if (inherit && !strcmp(inherit, "1")) return;
  const char* v = getenv("LD_PRELOAD");
  if (!v) return;
  std::string kept, list = v;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find_first_of(": ", start);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(start, end - start);
    if (!item.empty() && item.find("libflexsc-preload.so") == std::string::npos)
      kept += (kept.empty() ? "" : ":") + item;
    start = end + 1;
  }
  if (kept.empty())
    unsetenv("LD_PRELOAD");
  else
    setenv("LD_PRELOAD", kept.c_str(), 1);
}

// FLEXSC_STATS as it was at start: a server may clear its workers'
// environment (nginx does), and the workers report too.  A plain array:
// constant-initialized, so no static constructor runs after ours.
char g_stats_where[4096];

void report_at_exit() {
  // From here on, calls go straight to the kernel; flexsc's own atexit
  // shutdown (registered before this) runs after us.
  g_state.store(State::PassThrough, std::memory_order_release);
  if (*g_stats_where)
    flexsc::detail::write_stats(
        g_stats_where,
        g_counts.report(g_policy.mode == Mode::Auto ? &g_estimates : nullptr) + flexsc::mn::report());
}

// The auto policy's references, measured at start: what routing adds to
// a call with nothing else posting (the median over a few getppid calls
// each way), what reading the thread's CPU clock twice costs, and how many
// CPUs the program's threads have.
template <class F>
uint64_t median_ns(F&& f) {
  constexpr int kRounds = 15;
  uint64_t t[kRounds];
  for (uint64_t& v : t) v = f();
  std::nth_element(t, t + kRounds / 2, t + kRounds);
  return t[kRounds / 2];
}

void measure_references() {
  using flexsc::detail::now_ns;
  const uint64_t direct = median_ns([] {
    const uint64_t start = now_ns();
    raw_syscall6(SYS_getppid, 0, 0, 0, 0, 0, 0);
    return now_ns() - start;
  });
  const uint64_t routed = median_ns([] {
    const uint64_t start = now_ns();
    flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
    return now_ns() - start;
  });
  // At least 100 ns: a reference near zero (a runtime that answered on the
  // caller) would have the 4x test call every syscall thread slow.
  constexpr uint64_t kMinIdleHandoffNs = 100;
  g_estimates.idle_handoff_ns.store(static_cast<uint32_t>(
      std::clamp<uint64_t>(routed - std::min(routed, direct), kMinIdleHandoffNs, UINT32_MAX)));
  g_cpu_clock_cost_ns = median_ns([] {
    const uint64_t start = thread_cpu_ns();
    return thread_cpu_ns() - start;
  });
  // The CPUs the program's threads may run on (the syscall cores too,
  // unless it was confined to the others).
  cpu_set_t mine;
  if (sched_getaffinity(0, sizeof mine, &mine) == 0)
    g_estimates.program_cpus.store(std::max(1, CPU_COUNT(&mine)));
}

// FLEXSC_THREADS: kernel (one kernel thread per thread, as without
// flexsc) or mn, whose fibers post their calls when the runtime runs.  A
// mode that cannot run ends the program: it never runs 1:1 while the user
// asked for M:N.
void start_threads_mode() {
  const char* mode = getenv("FLEXSC_THREADS");
  if (!mode || !*mode || !strcmp(mode, "kernel")) return;
  std::string why = "FLEXSC_THREADS must be kernel or mn, not '" + std::string(mode) + "'";
#ifdef FLEXSC_UNDER_TSAN
  if (!strcmp(mode, "mn")) why = "it is not supported under ThreadSanitizer (docs/mn.md)";
#else
  if (!strcmp(mode, "mn") && flexsc::mn::enable(g_state.load() == State::Running, &why)) return;
#endif
  fprintf(stderr, "flexsc-preload: --threads mn cannot run: %s\n", why.c_str());
  _exit(1);
}

__attribute__((constructor)) void start() {
  struct ThreadsMode {  // last, whichever way start() ends
    ~ThreadsMode() { start_threads_mode(); }
  } threads_mode;
  stop_inheritance();
  snprintf(g_stats_where, sizeof g_stats_where, "%s", flexsc::detail::stats_destination(nullptr).c_str());
  std::string error;
  if (!g_policy.load(&error)) {
    fprintf(stderr, "flexsc-preload: %s; every call goes straight to the kernel\n", error.c_str());
    g_state.store(State::PassThrough);
    return;
  }
  if (g_policy.mode != Mode::None) {
    const int rc = flexsc_init(nullptr);
    if (rc < 0 && rc != -EALREADY) {
      fprintf(stderr,
              "flexsc-preload: the runtime did not start (%s); every call goes straight to the kernel\n",
              strerror(-rc));
      g_state.store(State::PassThrough);
      atexit(report_at_exit);
      return;
    }
  }
  if (g_policy.mode == Mode::Auto) measure_references();
  // A forked child reports its own decisions, not its parent's as well
  // (it keeps the measurements: same program, same machine).  Not run in a
  // vfork child, which shares the parent's counters.
  pthread_atfork(nullptr, nullptr, [] { g_counts.forget(); });
  atexit(report_at_exit);
  g_state.store(g_policy.mode == Mode::None ? State::PassThrough : State::Running, std::memory_order_release);
}

// close_range, in pieces around the runtime's descriptors.
int close_range_around_runtime(unsigned first, unsigned last, int flags) {
  if (flexsc::detail::t_runtime_depth > 0 || (flags & CLOSE_RANGE_CLOEXEC))
    return static_cast<int>(call(SYS_close_range, first, last, flags));
  int owned[64];
  const int n = flexsc::detail::runtime_owned_fds(owned, 64);
  unsigned from = first;
  for (int i = 0; i < n && from <= last; ++i) {
    const unsigned fd = static_cast<unsigned>(owned[i]);
    if (fd < from || fd > last) continue;
    if (fd > from)
      if (const long rc = call(SYS_close_range, from, fd - 1, flags); rc < 0) return static_cast<int>(rc);
    from = fd + 1;
  }
  return from > last ? 0 : static_cast<int>(call(SYS_close_range, from, last, flags));
}

}  // namespace

// Called by the vfork stub when the kernel refused: sets errno, returns -1.
extern "C" __attribute__((visibility("hidden"))) long flexsc_preload_vfork_failed(long neg_errno) {
  return libc_result(neg_errno);
}

// ---- the interposed functions ---------------------------------------------
// Each is exported under libc's name (preload.map); the ...64 names are the
// same calls on x86-64.

#pragma GCC visibility push(default)
extern "C" {

ssize_t read(int fd, void* buf, size_t n) {
  return call(SYS_read, fd, buf, n);
}
ssize_t write(int fd, const void* buf, size_t n) {
  return call(SYS_write, fd, buf, n);
}
ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  return call(SYS_pread64, fd, buf, n, off);
}
ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  return call(SYS_pread64, fd, buf, n, off);
}
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  return call(SYS_pwrite64, fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  return call(SYS_pwrite64, fd, buf, n, off);
}
ssize_t readv(int fd, const struct iovec* iov, int cnt) {
  return call(SYS_readv, fd, iov, cnt);
}
ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  return call(SYS_writev, fd, iov, cnt);
}
// preadv/pwritev take the offset split in two registers (low, high).
ssize_t preadv(int fd, const struct iovec* iov, int cnt, off_t off) {
  return call(SYS_preadv, fd, iov, cnt, off, 0);
}
ssize_t preadv64(int fd, const struct iovec* iov, int cnt, off64_t off) {
  return call(SYS_preadv, fd, iov, cnt, off, 0);
}
ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  return call(SYS_pwritev, fd, iov, cnt, off, 0);
}
ssize_t pwritev64(int fd, const struct iovec* iov, int cnt, off64_t off) {
  return call(SYS_pwritev, fd, iov, cnt, off, 0);
}

int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = open_mode_arg(flags, ap);
  va_end(ap);
  return call_new_fd(SYS_openat, dirfd, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) __attribute__((alias("openat")));
int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = open_mode_arg(flags, ap);
  va_end(ap);
  return call_new_fd(SYS_openat, AT_FDCWD, path, flags, mode);
}
int open64(const char* path, int flags, ...) __attribute__((alias("open")));
int creat(const char* path, mode_t mode) {
  return call_new_fd(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
// The runtime's own descriptors are not the program's to close: to it they
// are not open (a daemon closing every descriptor skips them).
int close(int fd) {
  if (flexsc::detail::t_runtime_depth == 0 && flexsc::detail::runtime_owns_fd(fd))
    return static_cast<int>(libc_result(-EBADF));
  const int rc = static_cast<int>(call(SYS_close, fd));
  g_fds.forget(fd);
  return rc;
}
int close_range(unsigned first, unsigned last, int flags) {
  const int rc = close_range_around_runtime(first, last, flags);
  if (!(flags & CLOSE_RANGE_CLOEXEC)) g_fds.forget_range(first, last);
  return rc;
}
// Replacing one of the runtime's descriptors would pull a ring or an
// eventfd from under it: refused, as the kernel refuses a number it is
// busy with.
int dup2(int oldfd, int newfd) {
  if (flexsc::detail::runtime_owns_fd(newfd)) return static_cast<int>(libc_result(-EBUSY));
  return call_new_fd(SYS_dup2, oldfd, newfd);
}
int dup3(int oldfd, int newfd, int flags) {
  if (flexsc::detail::runtime_owns_fd(newfd)) return static_cast<int>(libc_result(-EBUSY));
  return call_new_fd(SYS_dup3, oldfd, newfd, flags);
}

int stat(const char* path, struct stat* st) {
  return static_cast<int>(call(SYS_newfstatat, AT_FDCWD, path, st, 0));
}
int stat64(const char* path, struct stat64* st) {
  return static_cast<int>(call(SYS_newfstatat, AT_FDCWD, path, st, 0));
}
int lstat(const char* path, struct stat* st) {
  return static_cast<int>(call(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}
int lstat64(const char* path, struct stat64* st) {
  return static_cast<int>(call(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}
int fstat(int fd, struct stat* st) {
  return static_cast<int>(call(SYS_fstat, fd, st));
}
int fstat64(int fd, struct stat64* st) {
  return static_cast<int>(call(SYS_fstat, fd, st));
}
int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  return static_cast<int>(call(SYS_newfstatat, dirfd, path, st, flags));
}
int fstatat64(int dirfd, const char* path, struct stat64* st, int flags) {
  return static_cast<int>(call(SYS_newfstatat, dirfd, path, st, flags));
}
int statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* st) {
  return static_cast<int>(call(SYS_statx, dirfd, path, flags, mask, st));
}
off_t lseek(int fd, off_t off, int whence) {
  return call(SYS_lseek, fd, off, whence);
}
off64_t lseek64(int fd, off64_t off, int whence) {
  return call(SYS_lseek, fd, off, whence);
}

int fsync(int fd) {
  return static_cast<int>(call(SYS_fsync, fd));
}
int fdatasync(int fd) {
  return static_cast<int>(call(SYS_fdatasync, fd));
}
ssize_t sendfile(int out, int in, off_t* off, size_t n) {
  return call(SYS_sendfile, out, in, off, n);
}
ssize_t sendfile64(int out, int in, off64_t* off, size_t n) {
  return call(SYS_sendfile, out, in, off, n);
}
ssize_t splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t n, unsigned flags) {
  return call(SYS_splice, in, off_in, out, off_out, n, flags);
}
ssize_t copy_file_range(int in, off64_t* off_in, int out, off64_t* off_out, size_t n, unsigned flags) {
  return call(SYS_copy_file_range, in, off_in, out, off_out, n, flags);
}

int accept(int fd, struct sockaddr* addr, socklen_t* len) {
  return call_new_fd(SYS_accept, fd, addr, len);
}
int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return call_new_fd(SYS_accept4, fd, addr, len, flags);
}
int connect(int fd, const struct sockaddr* addr, socklen_t len) {
  return static_cast<int>(call(SYS_connect, fd, addr, len));
}
ssize_t send(int fd, const void* buf, size_t n, int flags) {
  return call(SYS_sendto, fd, buf, n, flags, 0, 0);
}
ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return call(SYS_recvfrom, fd, buf, n, flags, 0, 0);
}
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* to, socklen_t len) {
  return call(SYS_sendto, fd, buf, n, flags, to, len);
}
ssize_t recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* from, socklen_t* len) {
  return call(SYS_recvfrom, fd, buf, n, flags, from, len);
}
ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  return call(SYS_sendmsg, fd, msg, flags);
}
ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  return call(SYS_recvmsg, fd, msg, flags);
}

int poll(struct pollfd* fds, nfds_t n, int timeout) {
  return static_cast<int>(call(SYS_poll, fds, n, timeout));
}
int epoll_wait(int epfd, struct epoll_event* ev, int n, int timeout) {
  return static_cast<int>(call(SYS_epoll_wait, epfd, ev, n, timeout));
}
// The kernel wants the size of its own signal set (8 bytes), not glibc's.
int epoll_pwait(int epfd, struct epoll_event* ev, int n, int timeout, const sigset_t* mask) {
  return static_cast<int>(call(SYS_epoll_pwait, epfd, ev, n, timeout, mask, kKernelSigsetSize));
}

// The program's handlers go behind the trampoline; what it asks back is
// its own handler.
int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  using Real = int (*)(int, const struct sigaction*, struct sigaction*);
  // No guarded static: TSan calls this from its own start, before its
  // interceptors of the guard (__cxa_guard_*) can run.
  static std::atomic<Real> resolved{nullptr};
  Real real = resolved.load(std::memory_order_relaxed);
  if (!real) {
    real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "sigaction"));
    resolved.store(real, std::memory_order_relaxed);
  }
  if (!real) return static_cast<int>(libc_result(-ENOSYS));
  if (sig <= 0 || sig >= kSignals || sig == SIGKILL || sig == SIGSTOP) return real(sig, act, old);
  struct sigaction mine;
  const struct sigaction* give = act;
  const bool function = act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
  if (function) {
    mine = *act;
    mine.sa_sigaction = trampoline;
    mine.sa_flags |= SA_SIGINFO;
    give = &mine;
  }
  // Recorded before the kernel can call the trampoline with it; what was
  // there is put back if the kernel refuses.
  void* const prev_fn = g_handlers[sig].fn.load();
  const int prev_flags = g_handlers[sig].flags.load();
  if (function) {
    g_handlers[sig].flags.store(act->sa_flags);
    g_handlers[sig].fn.store(act->sa_flags & SA_SIGINFO ? reinterpret_cast<void*>(act->sa_sigaction)
                                                        : reinterpret_cast<void*>(act->sa_handler));
  }
  const int rc = real(sig, give, old);
  if (rc != 0) {
    g_handlers[sig].fn.store(prev_fn);
    g_handlers[sig].flags.store(prev_flags);
    return rc;
  }
  if (old && old->sa_sigaction == trampoline) {
    old->sa_flags = prev_flags;
    if (prev_flags & SA_SIGINFO)
      old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(prev_fn);
    else
      old->sa_handler = reinterpret_cast<void (*)(int)>(prev_fn);
  }
  if (act && !function) g_handlers[sig].fn.store(nullptr);
  return 0;
}

// BSD semantics, as glibc's signal(): the handler stays, calls restart.
sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act {
  }, old{};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, sig);
  act.sa_flags = SA_RESTART;
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

}  // extern "C"
#pragma GCC visibility pop
