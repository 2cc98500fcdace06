#include "mn/threads.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "base/futex.h"
#include "base/mapping.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"
#include "fiber/fiber.h"
#include "fiber/scheduler.h"
#include "mn/parking_lot.h"

// glibc's: the smallest stack a thread with these attributes may have
// (its static TLS included).
extern "C" size_t __pthread_get_minstack(const pthread_attr_t* attr);
// glibc 2.35: the size of the rseq area glibc registered per thread (0: none).
extern "C" const unsigned int __rseq_size __attribute__((weak));

namespace flexsc::mn {

using flexsc::detail::futex_wait;
using flexsc::detail::futex_wake;
using flexsc::detail::raw_syscall6;
using flexsc::fiber::detail::BorrowedThread;
using flexsc::fiber::detail::FiberControl;
using flexsc::fiber::detail::PoolImpl;
using flexsc::fiber::detail::Stack;
using flexsc::fiber::detail::WaitQueue;

struct ThreadRecord {
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* result = nullptr;
  int tid = 0;  // the anchor's: the thread's id for good
  char name[16] = {};
  // The fiber's stack: [map, map + map_bytes) when we mapped it.
  Stack stack;
  char* map = nullptr;
  std::size_t map_bytes = 0;
  std::size_t guard = 0;
  const void* anchor_stack_bottom = nullptr;
  std::size_t anchor_stack_size = 0;
  // Set once the fiber has made its last switch: `finished` for joiners
  // (under end_mutex), then kEnded in `anchor_word` for the anchor.
  std::mutex end_mutex;  // the runtime's own lock: joiners park under it
  bool finished = false;
  WaitQueue joiners;
  // What the anchor sleeps on (a futex word: it cannot use anything that
  // reads its TLS, which the fiber has): a count of posted calls, and
  // kEnded once the fiber ended.
  std::atomic<uint32_t> anchor_word{0};
  // A system call that must run on the thread's own kernel task (the
  // anchor), posted by the fiber: kCallPosted, then kCallDone.
  long call_nr = 0;
  long call_args[6] = {};
  long call_result = 0;
  std::atomic<uint32_t> call_state{0};
  // The anchor's reference and, while the thread is joinable, its handle's.
  std::atomic<int> refs{2};
  // The innermost cleanup buffer of C code (pthread_cleanup_push).
  __pthread_unwind_buf_t* cleanup_top = nullptr;

  void drop() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

namespace {

// Nanoseconds from now (on `clock`) until abs, 0 if passed; saturated, so
// that "for ever" (tv_sec near its maximum) stays for ever.
constexpr int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
int64_t ns_until(clockid_t clock, const struct timespec& abs) {
  struct timespec now;
  clock_gettime(clock, &now);
  const int64_t seconds =
      std::clamp<int64_t>(static_cast<int64_t>(abs.tv_sec) - now.tv_sec, -kMaxSeconds, kMaxSeconds);
  return std::max<int64_t>(seconds * 1'000'000'000 + (abs.tv_nsec - now.tv_nsec), 0);
}

constexpr uint32_t kEnded = 1u << 31;
constexpr uint32_t kCallIdle = 0, kCallPosted = 1, kCallDone = 2;

// This TCB's record, while the thread runs as a fiber (nullptr elsewhere,
// and in the destructors glibc runs on the anchor at the end).
[[gnu::tls_model("initial-exec")]] thread_local ThreadRecord* t_record = nullptr;
// This TCB's record for the thread's handle (pthread_join, pthread_detach):
// kept until the anchor is gone.  Initial-exec: at a fixed offset from
// every TCB, so record_of() can read another thread's.
[[gnu::tls_model("initial-exec")]] thread_local ThreadRecord* t_handle = nullptr;

std::atomic<bool> g_enabled{false};
bool g_exception_less = true;
// The schedulers, started at the first thread and never destroyed: fibers
// may run until exit_group.  Not a std::once_flag: a forked child starts
// them again.
std::atomic<PoolImpl*> g_pool{nullptr};
std::atomic<bool> g_pool_starting{false};
std::atomic<int> g_live{0};  // mn threads not yet ended
std::atomic<bool> g_main_exited{false};
std::atomic<bool> g_forked_child{false};  // threads are kernel threads here
std::atomic<uint64_t> g_created{0}, g_ran{0}, g_ended{0};

template <class F>
F real(const char* name) {
  const int saved = errno;  // dlsym may change it; the program's must stay
  void* p = dlsym(RTLD_NEXT, name);
  errno = saved;
  if (!p) {
    std::fprintf(stderr, "flexsc: --threads mn: libc has no %s\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(p);
}

int real_pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*fn)(void*), void* arg) {
  static const auto f =
      real<int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*)>("pthread_create");
  return f(t, a, fn, arg);
}
int real_pthread_join(pthread_t t, void** ret) {
  static const auto f = real<int (*)(pthread_t, void**)>("pthread_join");
  return f(t, ret);
}
int real_pthread_tryjoin_np(pthread_t t, void** ret) {
  static const auto f = real<int (*)(pthread_t, void**)>("pthread_tryjoin_np");
  return f(t, ret);
}
int real_pthread_detach(pthread_t t) {
  static const auto f = real<int (*)(pthread_t)>("pthread_detach");
  return f(t);
}
int real_pthread_getattr_np(pthread_t t, pthread_attr_t* a) {
  static const auto f = real<int (*)(pthread_t, pthread_attr_t*)>("pthread_getattr_np");
  return f(t, a);
}

// nullptr when they could not start (said on stderr; pthread_create then
// answers EAGAIN).
PoolImpl* pool() {
  if (PoolImpl* p = g_pool.load(std::memory_order_acquire)) return p;
  while (g_pool_starting.exchange(true, std::memory_order_acquire)) sched_yield();
  PoolImpl* p = g_pool.load(std::memory_order_acquire);
  if (!p) {
    flexsc::detail::RuntimeScope runtime;  // its threads are real ones
    flexsc::fiber::PoolOptions options;
    options.exception_less = g_exception_less;
    try {
      p = new PoolImpl(options);
      g_pool.store(p, std::memory_order_release);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flexsc: --threads mn: the schedulers did not start: %s\n", e.what());
    }
  }
  g_pool_starting.store(false, std::memory_order_release);
  return p;
}

// The fiber's stack, as pthread_create would give the thread: the size
// and guard of the attributes (glibc's defaults without), or the
// program's own memory (pthread_attr_setstack; no guard then).
int make_stack(const pthread_attr_t* attr, ThreadRecord* r) {
  pthread_attr_t defaults;
  if (!attr) {
    if (pthread_getattr_default_np(&defaults) != 0) return EAGAIN;
    attr = &defaults;
  }
  std::size_t size = 0, guard = 0, user_size = 0;
  void* user = nullptr;
  pthread_attr_getstacksize(attr, &size);
  pthread_attr_getguardsize(attr, &guard);
  // Attributes without a stack of the program's answer (address 0) - size.
  pthread_attr_getstack(attr, &user, &user_size);
  if (attr == &defaults) pthread_attr_destroy(&defaults);
  const std::size_t page = Stack::page_size();
  if (reinterpret_cast<uintptr_t>(user) + user_size != 0) {
    r->stack = Stack{static_cast<char*>(user) - page, user_size};
    return 0;
  }
  if (size == 0) size = 8 << 20;
  size = (size + page - 1) & ~(page - 1);
  guard = (guard + page - 1) & ~(page - 1);
  char* mem = static_cast<char*>(flexsc::detail::map_anonymous(guard + size, MAP_NORESERVE | MAP_STACK));
  if (!mem) return EAGAIN;
  if (guard && mprotect(mem, guard, PROT_NONE) != 0) {
    munmap(mem, guard + size);
    return EAGAIN;
  }
  r->map = mem;
  r->map_bytes = guard + size;
  r->guard = guard;
  r->stack = Stack{mem + guard - page, size};  // Stack: one guard page below bottom()
  return 0;
}

void fiber_ended(void* arg) {
  auto* r = static_cast<ThreadRecord*>(arg);
  {
    std::lock_guard lock(r->end_mutex);
    r->finished = true;
    r->joiners.wake_all();
  }
  // Last: once the anchor sees it, it may free r (a detached thread's);
  // the wake after it reads nothing of r's memory.
  r->anchor_word.fetch_or(kEnded, std::memory_order_release);
  futex_wake(&r->anchor_word);
}

// The anchor's life while its fiber runs: it runs the calls the fiber
// posts to it, until the fiber ended.  Raw system calls only: errno and
// everything else in the TCB are the fiber's.
void serve_fiber(ThreadRecord* r) {
  for (;;) {
    const uint32_t word = r->anchor_word.load(std::memory_order_acquire);
    if (word & kEnded) return;
    if (r->call_state.load(std::memory_order_acquire) == kCallPosted) {
      const long* a = r->call_args;
      r->call_result = raw_syscall6(r->call_nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      r->call_state.store(kCallDone, std::memory_order_release);
      continue;
    }
    futex_wait(&r->anchor_word, word);
  }
}

void* anchor_main(void* arg) {
  auto* r = static_cast<ThreadRecord*>(arg);
  t_record = r;
  t_handle = r;
  r->tid = flexsc::detail::current_tid();  // also primes this TCB's cache
  if (r->name[0]) raw_syscall6(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>(r->name), 0, 0, 0, 0);
  pthread_attr_t self;
  if (real_pthread_getattr_np(pthread_self(), &self) == 0) {
    void* bottom = nullptr;
    pthread_attr_getstack(&self, &bottom, &r->anchor_stack_size);
    r->anchor_stack_bottom = bottom;
    pthread_attr_destroy(&self);
  }
  BorrowedThread borrowed;
  borrowed.tcb = reinterpret_cast<uint64_t>(pthread_self());
  borrowed.anchor_stack_bottom = r->anchor_stack_bottom;
  borrowed.anchor_stack_size = r->anchor_stack_size;
  borrowed.on_end = fiber_ended;
  borrowed.on_end_arg = r;
  // From here until the fiber ends, the TCB (and its TLS) is the fiber's:
  // the anchor touches nothing of it, and sleeps with a raw futex.
  g_pool.load(std::memory_order_acquire)
      ->spawn_thread(
          [r] {
            g_ran.fetch_add(1, std::memory_order_relaxed);
            r->result = r->start(r->arg);
            // In a child this fiber forked, its thread is the only one
            // and no scheduler is left to end it: it ends the process,
            // as glibc's last thread does.
            if (g_forked_child.load(std::memory_order_relaxed)) std::exit(0);
          },
          r->stack, borrowed);
  serve_fiber(r);
  // Back on our own kernel thread: from here on (and in the destructors
  // glibc runs after we return) this is a kernel thread to flexsc.
  flexsc::fiber::detail::forget_borrowed_locals();
  t_record = nullptr;
  void* result = r->result;
  if (r->map) munmap(r->map, r->map_bytes);
  r->map = nullptr;
  // A detached thread's handle is dead from here on; a joinable one's
  // record lives until the join (or a detach) drops the other reference.
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    t_handle = nullptr;
    delete r;
  }
  g_ended.fetch_add(1, std::memory_order_relaxed);
  // The last thread after main's pthread_exit ends the process, as glibc's does.
  // seq_cst with main_exits(): each side's store must be seen before its
  // load of the other's, or neither would end the process.
  if (g_live.fetch_sub(1, std::memory_order_seq_cst) == 1 && g_main_exited.load(std::memory_order_seq_cst))
    std::exit(0);
  return result;
}

}  // namespace

bool enabled() {
  return g_enabled.load(std::memory_order_acquire);
}

bool enable(bool exception_less, std::string* why) {
#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif
  if (!(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE)) {
    *why = "the CPU or the kernel does not let user space write the fs base (no fsgsbase; Linux >= 5.9)";
    return false;
  }
  if (&__rseq_size && __rseq_size != 0) {
    *why =
        "glibc registered rseq for each thread (a fiber would read its anchor's); start the program "
        "with GLIBC_TUNABLES=glibc.pthread.rseq=0 (flexsc-run --threads mn does)";
    return false;
  }
  g_exception_less = exception_less;
  g_enabled.store(true, std::memory_order_release);
  // A forked child has one thread and no schedulers: it runs 1:1.  If a
  // fiber forked, that thread is the fiber, on its anchor's TCB.
  // A forked child has one thread (the forking one; if a fiber forked, it
  // runs on, as a kernel thread, on its anchor's TCB) and no schedulers:
  // the threads it creates are kernel threads (docs/mn.md).  The
  // synchronization stays the mode's, for the objects the parent used
  // keep its encoding.  Nothing of the parent's threads (their waits,
  // their count) is the child's.
  pthread_atfork(nullptr, nullptr, [] {
    g_forked_child.store(true, std::memory_order_relaxed);
    g_pool.store(nullptr, std::memory_order_relaxed);
    g_pool_starting.store(false, std::memory_order_relaxed);
    g_live.store(0, std::memory_order_relaxed);
    forget_waiters_after_fork();
    if (t_record) flexsc::fiber::detail::forget_borrowed_locals();
    t_record = nullptr;
    t_handle = nullptr;
  });
  return true;
}

ThreadRecord* self_record() {
  return t_record;
}

ThreadRecord* record_of(pthread_t t) {
  if (!t) return nullptr;
  // t_handle's address relative to our TCB is its address relative to t's.
  const auto offset = reinterpret_cast<intptr_t>(&t_handle) - static_cast<intptr_t>(pthread_self());
  return *reinterpret_cast<ThreadRecord* const*>(static_cast<intptr_t>(t) + offset);
}

int create(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  if (g_forked_child.load(std::memory_order_relaxed)) return real_pthread_create(out, attr, start, arg);
  if (!pool()) return EAGAIN;
  auto* r = new (std::nothrow) ThreadRecord();
  if (!r) return EAGAIN;
  r->start = start;
  r->arg = arg;
  if (ThreadRecord* creator = t_record)
    std::memcpy(r->name, creator->name, sizeof r->name);
  else
    raw_syscall6(SYS_prctl, PR_GET_NAME, reinterpret_cast<long>(r->name), 0, 0, 0, 0);
  int detach_state = PTHREAD_CREATE_JOINABLE;
  if (attr) pthread_attr_getdetachstate(attr, &detach_state);
  if (detach_state == PTHREAD_CREATE_DETACHED) r->refs.store(1, std::memory_order_relaxed);
  if (const int rc = make_stack(attr, r)) {
    delete r;
    return rc;
  }
  // The anchor: small (it only sleeps, then runs the thread's destructors),
  // with every signal blocked from its first instruction, so that two
  // kernel tasks never run on one TCB.
  pthread_attr_t anchor;
  pthread_attr_init(&anchor);
  pthread_attr_setstacksize(&anchor, __pthread_get_minstack(&anchor) + 256 * 1024);
  pthread_attr_setdetachstate(&anchor, detach_state);
  sigset_t all;
  sigfillset(&all);
  pthread_attr_setsigmask_np(&anchor, &all);
  g_live.fetch_add(1, std::memory_order_acq_rel);
  const int rc = real_pthread_create(out, &anchor, anchor_main, r);
  pthread_attr_destroy(&anchor);
  if (rc != 0) {
    g_live.fetch_sub(1, std::memory_order_acq_rel);
    if (r->map) munmap(r->map, r->map_bytes);
    delete r;
    return rc;
  }
  g_created.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

int join(ThreadRecord* r, pthread_t t, void** result, clockid_t clock, const struct timespec* deadline,
         bool try_only) {
  if (r == t_record) return EDEADLK;
  {
    std::unique_lock lock(r->end_mutex);
    if (!r->finished) {
      if (try_only) return EBUSY;
      if (deadline) {
        if (deadline->tv_nsec < 0 || deadline->tv_nsec >= 1'000'000'000) return EINVAL;
        const auto until =
            std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns_until(clock, *deadline));
        while (!r->finished)
          if (!r->joiners.park_until(lock, until)) return ETIMEDOUT;
      } else {
        while (!r->finished) r->joiners.park(lock);
      }
    }
  }
  // The fiber ended; the anchor still runs the thread's destructors, which
  // may wait for locks that fibers hold.  A fiber must not block its
  // carrier meanwhile: it looks again every few microseconds.
  int rc;
  if (t_record) {
    while ((rc = real_pthread_tryjoin_np(t, nullptr)) == EBUSY) {
      if (try_only) return EBUSY;
      if (deadline && ns_until(clock, *deadline) == 0) return ETIMEDOUT;
      flexsc::fiber::this_fiber::sleep_for(std::chrono::microseconds(20));
    }
  } else {
    rc = real_pthread_join(t, nullptr);  // a kernel thread (main) may block
  }
  if (rc != 0) return rc;
  if (result) *result = r->result;
  r->drop();
  return 0;
}

int detach(ThreadRecord* r, pthread_t t) {
  const int rc = real_pthread_detach(t);
  if (rc == 0) r->drop();
  return rc;
}

// ---- pthread_exit: a forced unwind of the fiber's stack -------------------
//
// glibc's own would end at the anchor's start frame, on another stack.
// Ours runs the same cleanups (C++ destructors, catch(...) that rethrow,
// cleanup handlers compiled with exceptions) and, at the fiber's entry
// function, ends the fiber there.  C code
// built without exceptions registers its cleanup handlers with
// __pthread_register_cancel: those are taken in turn as the unwind passes
// their frames, as glibc does.

namespace {

constexpr _Unwind_Exception_Class kExitClass = 0x464c5853'4d4e4558;  // "FLXSMNEX"

// A catch (...) that ended without rethrowing: the thread cannot go on
// (glibc aborts alike).
void exit_not_rethrown(_Unwind_Reason_Code, _Unwind_Exception*) {
  std::fprintf(stderr, "flexsc: pthread_exit's unwinding was caught and not rethrown\n");
  std::abort();
}

_Unwind_Reason_Code exit_stop(int, _Unwind_Action actions, _Unwind_Exception_Class, _Unwind_Exception* e,
                              struct _Unwind_Context* context, void* arg) {
  auto* r = static_cast<ThreadRecord*>(arg);
  __pthread_unwind_buf_t* buf = r->cleanup_top;
  // The frame that holds the innermost registered buffer is being left:
  // run that handler (it calls __pthread_unwind_next when done).
  if (buf && (_Unwind_GetCFA(context) > reinterpret_cast<uintptr_t>(buf) || (actions & _UA_END_OF_STACK))) {
    delete e;
    r->cleanup_top = static_cast<__pthread_unwind_buf_t*>(buf->__pad[0]);
    longjmp(reinterpret_cast<struct __jmp_buf_tag*>(buf->__cancel_jmp_buf), 1);
  }
  if ((actions & _UA_END_OF_STACK) ||
      _Unwind_FindEnclosingFunction(reinterpret_cast<void*>(_Unwind_GetIP(context))) ==
          flexsc::fiber::detail::fiber_entry_function()) {
    delete e;
    flexsc::fiber::detail::end_running_fiber();
  }
  return _URC_NO_REASON;
}

[[noreturn]] void unwind(ThreadRecord* r) {
  auto* e = new _Unwind_Exception();
  e->exception_class = kExitClass;
  e->exception_cleanup = exit_not_rethrown;
  _Unwind_ForcedUnwind(e, exit_stop, r);
  std::fprintf(stderr, "flexsc: pthread_exit could not unwind the thread's stack\n");
  std::abort();
}

}  // namespace

void exit_thread(ThreadRecord* self, void* result) {
  self->result = result;
  unwind(self);
}

void main_exits() {
  g_main_exited.store(true, std::memory_order_seq_cst);
  if (g_live.load(std::memory_order_seq_cst) == 0) std::exit(0);
}

void register_cancel(ThreadRecord* self, void* p) {
  auto* buf = static_cast<__pthread_unwind_buf_t*>(p);
  buf->__pad[0] = self->cleanup_top;
  self->cleanup_top = buf;
}

void unregister_cancel(ThreadRecord* self, void* p) {
  self->cleanup_top = static_cast<__pthread_unwind_buf_t*>(static_cast<__pthread_unwind_buf_t*>(p)->__pad[0]);
}

void unwind_next(ThreadRecord* self, void*) {
  unwind(self);  // the buffer was taken off the chain when its handler was run
}

// ---- what the program asks of a thread ------------------------------------

int tid_of(const ThreadRecord* r) {
  return r->tid;
}

long on_own_task(ThreadRecord* self, long nr, const long args[6]) {
  self->call_nr = nr;
  std::copy(args, args + 6, self->call_args);
  self->call_state.store(kCallPosted, std::memory_order_release);
  self->anchor_word.fetch_add(1, std::memory_order_release);
  futex_wake(&self->anchor_word);
  // The anchor cannot wake a fiber (that reads the TLS it shares with
  // us): look again every few microseconds, letting others run.
  while (self->call_state.load(std::memory_order_acquire) != kCallDone)
    flexsc::fiber::this_fiber::sleep_for(std::chrono::microseconds(20));
  self->call_state.store(kCallIdle, std::memory_order_relaxed);
  return self->call_result;
}

int getattr(ThreadRecord* r, pthread_t t, pthread_attr_t* attr) {
  const int rc = real_pthread_getattr_np(t, attr);
  if (rc != 0) return rc;
  // The thread's stack is the fiber's, not its anchor's.
  pthread_attr_setstack(attr, r->stack.bottom(), r->stack.size);
  pthread_attr_setguardsize(attr, r->guard);
  return 0;
}

// Names live in the kernel task's comm: the anchor's, which glibc would
// take for "another thread" (prctl on self would rename the carrier).
int setname(ThreadRecord* r, const char* name) {
  if (std::strlen(name) >= sizeof r->name) return ERANGE;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", r->tid);
  const int fd = static_cast<int>(
      raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_WRONLY | O_CLOEXEC, 0, 0, 0));
  if (fd < 0) return static_cast<int>(-fd);
  const long n = raw_syscall6(SYS_write, fd, reinterpret_cast<long>(name),
                              static_cast<long>(std::strlen(name)), 0, 0, 0);
  raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
  if (n < 0) return static_cast<int>(-n);
  std::memcpy(r->name, name, std::strlen(name) + 1);
  return 0;
}

int getname(ThreadRecord* r, char* buf, size_t len) {
  // The kernel's comm, which prctl(PR_SET_NAME) on the anchor also sets.
  char path[64], name[32] = {};
  std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", r->tid);
  const int fd = static_cast<int>(
      raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC, 0, 0, 0));
  if (fd < 0) return static_cast<int>(-fd);
  const long n = raw_syscall6(SYS_read, fd, reinterpret_cast<long>(name), sizeof name - 1, 0, 0, 0);
  raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
  if (n < 0) return static_cast<int>(-n);
  if (n > 0 && name[n - 1] == '\n') name[n - 1] = '\0';
  if (len < std::strlen(name) + 1) return ERANGE;
  std::memcpy(buf, name, std::strlen(name) + 1);
  return 0;
}

// ---- sleeping --------------------------------------------------------------

int sleep_until(clockid_t clock, const struct timespec* abs) {
  if (abs->tv_nsec < 0 || abs->tv_nsec >= 1'000'000'000) return EINVAL;
  struct timespec probe;
  if (clock_gettime(clock, &probe) != 0) return EINVAL;
  if (const int64_t left_ns = ns_until(clock, *abs))
    flexsc::fiber::this_fiber::sleep_for(std::chrono::nanoseconds(left_ns));
  return 0;
}

int sleep_for(const struct timespec* rel) {
  if (rel->tv_nsec < 0 || rel->tv_nsec >= 1'000'000'000 || rel->tv_sec < 0) return EINVAL;
  // Saturated: a sleep "for ever" (tv_sec near its maximum) stays one.
  const int64_t seconds = std::min<int64_t>(rel->tv_sec, kMaxSeconds);
  flexsc::fiber::this_fiber::sleep_for(std::chrono::nanoseconds(seconds * 1'000'000'000 + rel->tv_nsec));
  return 0;
}

void yield() {
  flexsc::fiber::this_fiber::yield();
}

std::string report() {
  if (!enabled()) return "";
  std::string text = "flexsc: mn: " + std::to_string(g_created.load()) + " threads created, " +
                     std::to_string(g_ran.load()) + " run as fibers, " + std::to_string(g_ended.load()) +
                     " ended";
  if (PoolImpl* p = g_pool.load(std::memory_order_acquire)) {
    uint64_t switches = 0, posted = 0, on_caller = 0, readiness = 0;
    for (const auto& s : p->stats()) {
      switches += s.switches;
      posted += s.syscalls_posted;
      on_caller += s.syscalls_on_caller;
      readiness += s.readiness_waits;
    }
    text += "; " + std::to_string(p->size()) + " carriers, " + std::to_string(switches) +
            " switches; calls: " + std::to_string(posted) + " posted, " + std::to_string(on_caller) +
            " on the carrier, " + std::to_string(readiness) + " waited on readiness";
  }
  return text + "\n";
}

}  // namespace flexsc::mn
