// The drop-in's side of --threads mn for synchronization (lib/mn/sync.h):
// pthread's blocking objects, semaphores, pthread_once and the futex
// through syscall(), interposed so that a thread that waits parks only
// its fiber.  Plain kernel threads of the program (main, say) go through
// the same code and sleep on a futex, so objects shared between them and
// fibers work both ways.  Outside the mode, in a vfork child, and for
// flexsc's own locks (the caller's code is flexsc's: it must not park
// inside the scheduler), each call is libc's.
#include "mn/sync.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <time.h>

#include "base/libc_abi.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"
#include "mn/threads.h"

extern "C" __attribute__((visibility("hidden"))) int flexsc_preload_in_vfork_child;
// This library's first byte and the end of its code (the linker's).
extern "C" const char __ehdr_start[] __attribute__((visibility("hidden")));
extern "C" const char __etext[] __attribute__((visibility("hidden")));

namespace {

namespace mn = flexsc::mn;

template <class F>
F next(const char* name) {
  const int saved = errno;  // dlsym may change it
  void* f = dlsym(RTLD_NEXT, name);
  errno = saved;
  return reinterpret_cast<F>(f);
}
#define FLEXSC_REAL(name) static const auto real_##name = next<decltype(&::name)>(#name)

// The mode takes the call: it is on, and the caller is the program (not
// flexsc's own code, whose short internal locks must never park a fiber
// inside the scheduler, nor a vfork child).
inline bool mode_takes(const void* caller) {
  return mn::enabled() && !(caller >= __ehdr_start && caller < __etext) &&
         flexsc::detail::t_runtime_depth == 0 &&
         !__atomic_load_n(&flexsc_preload_in_vfork_child, __ATOMIC_RELAXED);
}
#define CALLER __builtin_return_address(0)

struct KeepErrno {
  const int saved = errno;
  ~KeepErrno() { errno = saved; }
};

template <class F>
int keeping_errno(F f) {
  KeepErrno keep;
  return f();
}

// sem_*'s convention: 0, or -1 and errno.
int sem_result(int rc) {
  if (rc == 0) return 0;
  errno = rc;
  return -1;
}

}  // namespace

// The body of an interposer: glibc's function unless the mode takes the
// call and the object is one it emulates; then the mode's, errno kept.
#define FLEXSC_PTHREAD(name, object, mn_call, ...)                                  \
  FLEXSC_REAL(name);                                                                \
  if (!mode_takes(CALLER) || !mn::handles(object)) return real_##name(__VA_ARGS__); \
  return keeping_errno([&] { return mn_call(__VA_ARGS__); })
// The same for a semaphore call, whose errors go to errno.
#define FLEXSC_SEM(name, ...)                                                  \
  FLEXSC_REAL(name);                                                           \
  if (!mode_takes(CALLER) || !mn::handles(s)) return real_##name(__VA_ARGS__); \
  return sem_result(keeping_errno([&] { return mn::name(__VA_ARGS__); }))

namespace {}  // namespace

#pragma GCC visibility push(default)  // libc's names, exported (preload.map)
extern "C" {

// ---- mutexes ------------------------------------------------------------------

int pthread_mutex_lock(pthread_mutex_t* m) {
  FLEXSC_PTHREAD(pthread_mutex_lock, m, mn::mutex_lock, m);
}
int pthread_mutex_trylock(pthread_mutex_t* m) {
  FLEXSC_PTHREAD(pthread_mutex_trylock, m, mn::mutex_trylock, m);
}
int pthread_mutex_timedlock(pthread_mutex_t* m, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_mutex_timedlock, m, mn::mutex_timedlock, m, abstime);
}
int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_mutex_clocklock, m, mn::mutex_clocklock, m, clock, abstime);
}
int pthread_mutex_unlock(pthread_mutex_t* m) {
  FLEXSC_PTHREAD(pthread_mutex_unlock, m, mn::mutex_unlock, m);
}

// ---- condition variables --------------------------------------------------------

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  FLEXSC_PTHREAD(pthread_cond_wait, c, mn::cond_wait, c, m);
}
int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_cond_timedwait, c, mn::cond_timedwait, c, m, abstime);
}
int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                           const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_cond_clockwait, c, mn::cond_clockwait, c, m, clock, abstime);
}
int pthread_cond_signal(pthread_cond_t* c) {
  FLEXSC_PTHREAD(pthread_cond_signal, c, mn::cond_signal, c);
}
int pthread_cond_broadcast(pthread_cond_t* c) {
  FLEXSC_PTHREAD(pthread_cond_broadcast, c, mn::cond_broadcast, c);
}
int pthread_cond_destroy(pthread_cond_t* c) {
  FLEXSC_PTHREAD(pthread_cond_destroy, c, mn::cond_destroy, c);
}

// ---- rwlocks ---------------------------------------------------------------------

int pthread_rwlock_rdlock(pthread_rwlock_t* rw) {
  FLEXSC_PTHREAD(pthread_rwlock_rdlock, rw, mn::rwlock_rdlock, rw);
}
int pthread_rwlock_tryrdlock(pthread_rwlock_t* rw) {
  FLEXSC_PTHREAD(pthread_rwlock_tryrdlock, rw, mn::rwlock_tryrdlock, rw);
}
int pthread_rwlock_timedrdlock(pthread_rwlock_t* rw, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_rwlock_timedrdlock, rw, mn::rwlock_timedrdlock, rw, abstime);
}
int pthread_rwlock_clockrdlock(pthread_rwlock_t* rw, clockid_t clock, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_rwlock_clockrdlock, rw, mn::rwlock_clockrdlock, rw, clock, abstime);
}
int pthread_rwlock_wrlock(pthread_rwlock_t* rw) {
  FLEXSC_PTHREAD(pthread_rwlock_wrlock, rw, mn::rwlock_wrlock, rw);
}
int pthread_rwlock_trywrlock(pthread_rwlock_t* rw) {
  FLEXSC_PTHREAD(pthread_rwlock_trywrlock, rw, mn::rwlock_trywrlock, rw);
}
int pthread_rwlock_timedwrlock(pthread_rwlock_t* rw, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_rwlock_timedwrlock, rw, mn::rwlock_timedwrlock, rw, abstime);
}
int pthread_rwlock_clockwrlock(pthread_rwlock_t* rw, clockid_t clock, const struct timespec* abstime) {
  FLEXSC_PTHREAD(pthread_rwlock_clockwrlock, rw, mn::rwlock_clockwrlock, rw, clock, abstime);
}
int pthread_rwlock_unlock(pthread_rwlock_t* rw) {
  FLEXSC_PTHREAD(pthread_rwlock_unlock, rw, mn::rwlock_unlock, rw);
}

// ---- barriers (init decides by the attributes: process-shared ones stay glibc's) --

int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) {
  FLEXSC_REAL(pthread_barrier_init);
  if (!mode_takes(CALLER) || !mn::handles(attr)) return real_pthread_barrier_init(b, attr, count);
  return keeping_errno([&] { return mn::barrier_init(b, count); });
}
int pthread_barrier_wait(pthread_barrier_t* b) {
  FLEXSC_PTHREAD(pthread_barrier_wait, b, mn::barrier_wait, b);
}
int pthread_barrier_destroy(pthread_barrier_t* b) {
  FLEXSC_PTHREAD(pthread_barrier_destroy, b, mn::barrier_destroy, b);
}

// ---- semaphores ---------------------------------------------------------------------

int sem_wait(sem_t* s) {
  FLEXSC_SEM(sem_wait, s);
}
int sem_trywait(sem_t* s) {
  FLEXSC_SEM(sem_trywait, s);
}
int sem_timedwait(sem_t* s, const struct timespec* abstime) {
  FLEXSC_SEM(sem_timedwait, s, abstime);
}
int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abstime) {
  FLEXSC_SEM(sem_clockwait, s, clock, abstime);
}
int sem_post(sem_t* s) {
  FLEXSC_SEM(sem_post, s);
}

// ---- once ----------------------------------------------------------------------------

int pthread_once(pthread_once_t* control, void (*init)(void)) {
  FLEXSC_REAL(pthread_once);
  if (!mode_takes(CALLER)) return real_pthread_once(control, init);
  return keeping_errno([&] { return mn::once(control, init); });
}

// ---- syscall(): the futex parks a fiber; gettid answers the thread's ----------------

// Takes six arguments whatever the caller passed, as libc's does (the
// sixth comes from the caller's stack: ASan must not check that read).
__attribute__((no_sanitize("address"))) long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);
  va_end(ap);
  if (mode_takes(CALLER)) {
    if (nr == SYS_futex && mn::futex_handles(static_cast<int>(a[1]))) {
      long r;
      {
        KeepErrno keep;
        r = mn::futex(reinterpret_cast<uint32_t*>(a[0]), static_cast<int>(a[1]), static_cast<uint32_t>(a[2]),
                      static_cast<unsigned long>(a[3]), reinterpret_cast<uint32_t*>(a[4]),
                      static_cast<uint32_t>(a[5]));
      }
      return flexsc::detail::libc_result(r);
    }
    if (mn::ThreadRecord* self = mn::self_record()) {
      if (nr == SYS_gettid) return mn::tid_of(self);
      // Acts on the calling kernel task: the thread's is its anchor.
      if (nr == SYS_set_tid_address) return flexsc::detail::libc_result(mn::on_own_task(self, nr, a));
    }
  }
  return flexsc::detail::libc_result(flexsc::detail::raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
}

}  // extern "C"
#pragma GCC visibility pop
