// The drop-in's side of --threads mn (lib/mn/threads.h): libc's thread
// calls, interposed.  Outside the mode, in flexsc's own code, in a vfork
// child, and for threads the mode did not make, each one is libc's.
#include "mn/threads.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/libc_abi.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"

extern "C" __attribute__((visibility("hidden"))) int flexsc_preload_in_vfork_child;

namespace {

using flexsc::detail::raw_syscall6;
namespace mn = flexsc::mn;

// libc's own function.  dlsym may leave errno changed (EAGAIN seen): the
// program's errno must not change across the call it made.
template <class F>
F next(const char* name) {
  const int saved = errno;
  void* f = dlsym(RTLD_NEXT, name);
  errno = saved;
  return reinterpret_cast<F>(f);
}
#define FLEXSC_REAL(name) static const auto real_##name = next<decltype(&::name)>(#name)

// The program's errno across an interposed call: flexsc's code on the way
// (a scheduler allocating, dlsym) runs on the thread's TCB, and a call
// that answers with an error number leaves errno as it was.
struct KeepErrno {
  const int saved = errno;
  ~KeepErrno() { errno = saved; }
};

// Whether the mode takes this call at all.
bool mode_takes_call() {
  return mn::enabled() && flexsc::detail::t_runtime_depth == 0 &&
         !__atomic_load_n(&flexsc_preload_in_vfork_child, __ATOMIC_RELAXED);
}

// The caller's record when it is one of the mode's threads (a fiber).
mn::ThreadRecord* calling_fiber() {
  return mode_takes_call() ? mn::self_record() : nullptr;
}

// The record of thread t when the mode made it.
mn::ThreadRecord* made_by_mode(pthread_t t) {
  return mode_takes_call() ? mn::record_of(t) : nullptr;
}

}  // namespace

#pragma GCC visibility push(default)  // libc's names, exported (preload.map)
extern "C" {

int pthread_create(pthread_t* t, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_create);
  if (!mode_takes_call()) return real_pthread_create(t, attr, start, arg);
  return mn::create(t, attr, start, arg);
}

int pthread_join(pthread_t t, void** result) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_join);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::join(r, t, result, CLOCK_REALTIME, nullptr, false);
  return real_pthread_join(t, result);
}

int pthread_tryjoin_np(pthread_t t, void** result) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_tryjoin_np);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::join(r, t, result, CLOCK_REALTIME, nullptr, true);
  return real_pthread_tryjoin_np(t, result);
}

int pthread_timedjoin_np(pthread_t t, void** result, const struct timespec* abstime) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_timedjoin_np);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::join(r, t, result, CLOCK_REALTIME, abstime, false);
  return real_pthread_timedjoin_np(t, result, abstime);
}

int pthread_clockjoin_np(pthread_t t, void** result, clockid_t clock, const struct timespec* abstime) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_clockjoin_np);
  if (mn::ThreadRecord* r = made_by_mode(t)) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
    return mn::join(r, t, result, clock, abstime, false);
  }
  return real_pthread_clockjoin_np(t, result, clock, abstime);
}

int pthread_detach(pthread_t t) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_detach);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::detach(r, t);
  return real_pthread_detach(t);
}

void pthread_exit(void* result) {
  FLEXSC_REAL(pthread_exit);
  if (mn::ThreadRecord* self = calling_fiber()) mn::exit_thread(self, result);
  if (mode_takes_call() && getpid() == raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0)) mn::main_exits();
  real_pthread_exit(result);
  __builtin_unreachable();
}

pid_t gettid(void) {
  KeepErrno keep;
  if (mn::ThreadRecord* self = calling_fiber()) return mn::tid_of(self);
  return static_cast<pid_t>(raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0));
}

int pthread_getattr_np(pthread_t t, pthread_attr_t* attr) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_getattr_np);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::getattr(r, t, attr);
  return real_pthread_getattr_np(t, attr);
}

int pthread_setname_np(pthread_t t, const char* name) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_setname_np);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::setname(r, name);
  return real_pthread_setname_np(t, name);
}

int pthread_getname_np(pthread_t t, char* buf, size_t len) {
  KeepErrno keep;
  FLEXSC_REAL(pthread_getname_np);
  if (mn::ThreadRecord* r = made_by_mode(t)) return mn::getname(r, buf, len);
  return real_pthread_getname_np(t, buf, len);
}

// Cleanup handlers of C code built without exceptions.
void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
  KeepErrno keep;
  FLEXSC_REAL(__pthread_register_cancel);
  if (mn::ThreadRecord* self = calling_fiber()) return mn::register_cancel(self, buf);
  real___pthread_register_cancel(buf);
}

void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
  KeepErrno keep;
  FLEXSC_REAL(__pthread_unregister_cancel);
  if (mn::ThreadRecord* self = calling_fiber()) return mn::unregister_cancel(self, buf);
  real___pthread_unregister_cancel(buf);
}

void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
  FLEXSC_REAL(__pthread_unwind_next);
  if (mn::ThreadRecord* self = calling_fiber()) mn::unwind_next(self, buf);
  real___pthread_unwind_next(buf);
}

// prctl acts on the calling kernel task for most options (its name, the
// tid address, capabilities...): a fiber's runs on its own, the anchor.
int prctl(int option, ...) {
  va_list ap;
  va_start(ap, option);
  long a[6] = {option};
  for (int i = 1; i < 5; ++i) a[i] = va_arg(ap, long);
  va_end(ap);
  if (mn::ThreadRecord* self = calling_fiber()) {
    long r;
    {
      KeepErrno keep;
      r = mn::on_own_task(self, SYS_prctl, a);
    }
    return static_cast<int>(flexsc::detail::libc_result(r));
  }
  return static_cast<int>(
      flexsc::detail::libc_result(raw_syscall6(SYS_prctl, a[0], a[1], a[2], a[3], a[4], 0)));
}

// ---- sleeping parks the fiber -----------------------------------------------

int nanosleep(const struct timespec* req, struct timespec* rem) {
  if (calling_fiber()) {
    int rc;
    {
      KeepErrno keep;
      rc = mn::sleep_for(req);
    }
    if (rc == 0) return 0;
    errno = rc;
    return -1;
  }
  const long rc =
      raw_syscall6(SYS_nanosleep, reinterpret_cast<long>(req), reinterpret_cast<long>(rem), 0, 0, 0, 0);
  if (rc < 0) {
    errno = static_cast<int>(-rc);
    return -1;
  }
  return 0;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec* req, struct timespec* rem) {
  KeepErrno keep;
  if (calling_fiber() && (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME))
    return (flags & TIMER_ABSTIME) ? mn::sleep_until(clock, req) : mn::sleep_for(req);
  return static_cast<int>(-raw_syscall6(SYS_clock_nanosleep, clock, flags, reinterpret_cast<long>(req),
                                        reinterpret_cast<long>(rem), 0, 0));
}

unsigned int sleep(unsigned int seconds) {
  KeepErrno keep;
  FLEXSC_REAL(sleep);
  if (!calling_fiber()) return real_sleep(seconds);
  const struct timespec rel = {static_cast<time_t>(seconds), 0};
  mn::sleep_for(&rel);
  return 0;
}

int usleep(useconds_t us) {
  KeepErrno keep;
  FLEXSC_REAL(usleep);
  if (!calling_fiber()) return real_usleep(us);
  const struct timespec rel = {static_cast<time_t>(us / 1'000'000), static_cast<long>(us % 1'000'000) * 1000};
  mn::sleep_for(&rel);
  return 0;
}

int sched_yield(void) {
  KeepErrno keep;
  if (calling_fiber()) {
    mn::yield();
    return 0;
  }
  return static_cast<int>(raw_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0));
}

}  // extern "C"
#pragma GCC visibility pop
