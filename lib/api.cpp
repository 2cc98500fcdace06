// The C API: the runtime's life cycle (init, shutdown, fork) and the calls
// programs make.
#include "api.h"

#include <flexsc/thread_args.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

#include "base/classify.h"
#include "base/futex.h"
#include "base/process.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"
#include "runtime.h"

using namespace flexsc::detail;

namespace {

enum class State {
  Never,  // no flexsc_init yet: the first call initializes with defaults
  Running,
  Shut,       // after flexsc_shutdown: -ESHUTDOWN until the next init
  ForkChild,  // forked child: the first call starts a runtime like the parent's
  ForkSync,   // forked child that may not start threads: synchronous calls
};

// Plain globals, constant-initialized: usable from atexit and fork handlers.
std::mutex g_life;  // init, shutdown, fork
std::atomic<Runtime*> g_rt{nullptr};
std::atomic<State> g_state{State::Never};
uint64_t g_next_gen = 1;
Config g_fork_config;  // the parent's, for a child's runtime
int g_forking_tid = 0;

std::once_flag g_hooks_once;

// FLEXSC_UNDER_TSAN: the wrapper of a TSan build, not instrumented but
// under TSan's runtime all the same (lib/CMakeLists.txt).
#if defined(__SANITIZE_THREAD__) || defined(FLEXSC_UNDER_TSAN)
constexpr bool kChildMayStartThreads = false;  // TSan kills a forked child that does
#else
constexpr bool kChildMayStartThreads = true;
#endif

// The fork handlers hold the runtime depth across fork(): before_fork
// raises it and both after_fork handlers (one runs in each process) lower it.
void before_fork() {
  ++t_runtime_depth;
  g_life.lock();
  registry_mutex().lock();
  lock_process_for_fork();
  g_forking_tid = gettid();
}

void after_fork_parent() {
  unlock_process_after_fork();
  registry_mutex().unlock();
  g_life.unlock();
  --t_runtime_depth;
}

// Only the forking thread exists here.  Entries in flight belonged to the
// parent's syscall threads: they are cancelled; contexts of threads that
// do not exist here are dropped.
void after_fork_child() {
  for (Context* c = registry_head(); c;) {
    Context* next = c->next;
    if (c->thread_owned && c->owner_tid != g_forking_tid) {
      registry_unlink_locked(c);
      c->refs.store(1);  // queue references died with the parent's runtime
      c->release();
    } else {
      if (c->thread_owned) c->owner_tid = gettid();
      c->submitter_tid.store(0);
      for (unsigned i = 0; i < c->capacity; ++i) {
        const uint16_t s = status_of(&c->entries[i]).load();
        if (s == FLEXSC_SUBMITTED || s == FLEXSC_BUSY) {
          c->entries[i].ret = -ECANCELED;
          status_of(&c->entries[i]).store(FLEXSC_DONE);
        }
      }
      c->sq_head.store(c->sq_tail.load());
      c->sq_ready.store(c->sq_tail.load());
      c->queued.store(0);
      c->refs.store(1);
      c->waiting.store(0);
      // The parent's rings: the child only closes its copies.
      c->reaps.store(false);
      c->wake_target.store(kNoWakeTarget);
      c->backend_state.reset();
      c->in_api.store(0);
      c->gen = 0;
    }
    c = next;
  }
  reset_thread_state_after_fork();
  unlock_process_after_fork();
  registry_mutex().unlock();
  if (Runtime* rt = g_rt.exchange(nullptr)) {
    g_fork_config = rt->config();
    rt->discard_after_fork();
    delete rt;
    g_state = kChildMayStartThreads ? State::ForkChild : State::ForkSync;
  }
  g_life.unlock();
  --t_runtime_depth;
}

void shutdown_at_exit() {
  flexsc_shutdown();
}

bool diverges_from_process(long nr, const long a[6]) {
  switch (nr) {
    case SYS_unshare:
    case SYS_setns:
    case SYS_setuid:
    case SYS_setgid:
    case SYS_setreuid:
    case SYS_setregid:
    case SYS_setresuid:
    case SYS_setresgid:
    case SYS_setfsuid:
    case SYS_setfsgid:
    case SYS_setgroups:
    case SYS_capset:
    case SYS_seccomp:
    case SYS_landlock_restrict_self:
      return true;
    case SYS_personality:
      return static_cast<uint32_t>(a[0]) != 0xffffffff;  // not a query (persona is an unsigned int)
    case SYS_close_range:
      return (a[2] & 2) != 0;  // CLOSE_RANGE_UNSHARE
    case SYS_prctl:
      return flexsc_int_arg(a[0]) == PR_SET_SECCOMP || flexsc_int_arg(a[0]) == PR_SET_NO_NEW_PRIVS;
    default:
      return false;
  }
}

// A raw fork (clone/clone3 without CLONE_VM) through flexsc skips glibc's
// fork handlers: run ours around it.  vfork and CLONE_VM
// children share our memory and must not touch the runtime: they pass
// straight through, as with syscall(2).
bool is_fork_like(long nr, const long a[6]) {
  if (nr == SYS_clone) return !(a[0] & CLONE_VM);
  if (nr == SYS_clone3) {
    // clone_args.flags is its first field.  Copied with process_vm_readv,
    // so a bad pointer gives an error, not a crash: the kernel then answers.
    uint64_t flags = 0;
    struct iovec to {
      &flags, sizeof flags
    }, from{reinterpret_cast<void*>(a[0]), sizeof flags};
    if (raw_syscall6(SYS_process_vm_readv, getpid(), reinterpret_cast<long>(&to), 1,
                     reinterpret_cast<long>(&from), 1, 0) != sizeof flags)
      return false;
    return !(flags & CLONE_VM);
  }
  return false;
}

int start_locked(const Config& cfg) {
  std::unique_ptr<Runtime> rt;
  std::string error;
  const int rc = Runtime::start(cfg, g_next_gen++, &rt, &error);
  if (rc < 0) {
    std::fprintf(stderr, "flexsc: cannot start: %s\n", error.c_str());
    return rc;
  }
  std::call_once(g_hooks_once, [] {
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    std::atexit(shutdown_at_exit);
  });
  g_rt.store(rt.release(), std::memory_order_seq_cst);
  g_state = State::Running;
  return 0;
}

// Set when the thread's ThreadContext is destroyed: calls the thread still
// makes (exit handlers) go to the kernel.  Trivially destructible, so it
// stays readable after that.
thread_local bool t_ctx_gone = false;

// The hidden per-thread context of flexsc_syscall.
struct ThreadContext {
  Context* ctx = nullptr;
  int depth = 0;  // > 0 while inside flexsc_syscall (a signal handler may re-enter)
  ~ThreadContext() {
    t_ctx_gone = true;
    if (!ctx) return;
    RuntimeScope scope;
    retire_context(ctx);
    ctx->release();
    ctx = nullptr;
  }
};
thread_local ThreadContext t_ctx;

// The calling thread's context; nullptr without memory, or once its
// thread-local storage was destroyed (the main thread's, at exit, before
// the atexit handlers run, which may still make calls).
Context* thread_context() {
  if (t_ctx_gone) return nullptr;
  if (!t_ctx.ctx) {
    t_ctx.ctx = Context::create(1, true);
    if (t_ctx.ctx) t_ctx.ctx->owner_tid = gettid();
  }
  return t_ctx.ctx;
}

constexpr long kRunSynchronously = 1;  // not an errno: the caller runs the call itself

// enter(), starting the runtime on first use.  Returns nullptr with *why
// set to -errno, or kRunSynchronously in a child that may not start threads.
Runtime* enter_or_start(Context* ctx, long* why) {
  for (;;) {
    if (Runtime* rt = enter(ctx)) return rt;
    const State s = g_state.load();
    if (s == State::Never || s == State::ForkChild) {
      std::lock_guard lock(g_life);
      if (g_state == State::Never || g_state == State::ForkChild) {
        Config cfg;
        std::string error;
        int rc = g_state == State::ForkChild ? 0 : Config::load(nullptr, &cfg, &error);
        if (g_state == State::ForkChild) cfg = g_fork_config;
        if (rc == 0)
          rc = start_locked(cfg);
        else
          std::fprintf(stderr, "flexsc: %s\n", error.c_str());
        if (rc < 0) {
          *why = rc;
          return nullptr;
        }
      }
      continue;
    }
    *why = s == State::ForkSync ? kRunSynchronously : -ESHUTDOWN;
    return nullptr;
  }
}

}  // namespace

namespace flexsc::detail {

thread_local FiberSyscalls* t_fiber_syscalls = nullptr;

long syscall_interruptible(long nr, const long args[6], bool (*interrupted)(void*), void* arg) {
  RuntimeScope scope;
  Context* ctx = thread_context();
  if (!ctx || t_ctx.depth > 0) {
    // No memory for a context, or re-entered from a signal handler that
    // interrupted this thread's own call: the kernel answers directly.
    return raw_syscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  }
  long why = 0;
  Runtime* rt = enter_or_start(ctx, &why);
  if (!rt)
    return why == kRunSynchronously ? raw_syscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5])
                                    : why;
  const SyscallClass cls = thread_diverged() ? SyscallClass::Local : classify(nr, args);
  if (runs_on_caller(cls)) {
    // Not inside the runtime while it runs: a local call may block for long.
    leave(ctx);
    count_on_caller(ctx, nr, cls);
    return run_on_caller(nr, args);
  }
  ++t_ctx.depth;
  flexsc_entry* e = ctx->get_entry();
  flexsc_prep(e, nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  rt->submit(ctx);
  const long ret =
      interrupted ? rt->wait_entry_or_interrupt(ctx, e, interrupted, arg) : rt->wait_entry(ctx, e);
  ctx->seen(e);
  --t_ctx.depth;
  leave(ctx);
  return ret;
}

bool runtime_user_cpus(std::vector<int>* out) {
  std::lock_guard lock(g_life);
  Runtime* rt = g_rt.load();
  if (!rt) return false;
  *out = rt->backend().placement().user_cpus;
  return true;
}

bool runtime_stats_destination(std::string* out) {
  std::lock_guard lock(g_life);
  const Runtime* rt = g_rt.load();
  if (rt) *out = rt->config().stats;
  return rt != nullptr;
}

long run_on_caller(long nr, const long a[6]) {
  // glibc's fork runs every fork handler (ours, malloc's, the sanitizers').
  if (nr == SYS_fork) {
    const int saved = errno;
    const pid_t pid = fork();
    const long ret = pid < 0 ? -errno : pid;
    errno = saved;
    return ret;
  }
  if (!is_fork_like(nr, a)) {
    const long ret = raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (ret >= 0 && diverges_from_process(nr, a)) mark_thread_diverged();
    return ret;
  }
  before_fork();
  const long ret = raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (ret == 0)
    after_fork_child();
  else
    after_fork_parent();
  return ret;
}

int backend_threads_in_call(long nr) {
  std::lock_guard lock(g_life);
  Runtime* rt = g_rt.load();
  return rt ? rt->backend().threads_in_call(nr) : -1;
}

Runtime* enter(Context* ctx) {
  ctx->in_api.exchange(1, std::memory_order_seq_cst);  // a full barrier before reading g_rt
  Runtime* rt = g_rt.load(std::memory_order_acquire);
  if (!rt) {
    leave(ctx);
    return nullptr;
  }
  if (ctx->gen != rt->gen()) rt->bind(ctx);
  return rt;
}

}  // namespace flexsc::detail

extern "C" {

int flexsc_init(const struct flexsc_options* opts) {
  RuntimeScope scope;
  Config cfg;
  std::string error;
  if (int rc = Config::load(opts, &cfg, &error); rc < 0) {
    std::fprintf(stderr, "flexsc: %s\n", error.c_str());
    return rc;
  }
  std::lock_guard lock(g_life);
  if (g_rt.load()) return -EALREADY;
  return start_locked(cfg);
}

void flexsc_shutdown(void) {
  RuntimeScope scope;
  std::lock_guard lock(g_life);
  Runtime* rt = g_rt.exchange(nullptr, std::memory_order_seq_cst);
  if (rt) {
    rt->stop();
    delete rt;
  }
  if (g_state != State::Never || rt) g_state = State::Shut;
}

const char* flexsc_backend(void) {
  RuntimeScope scope;
  std::lock_guard lock(g_life);
  if (Runtime* rt = g_rt.load()) return rt->backend_name();
  return g_state == State::ForkSync ? "sync" : "none";
}

long flexsc_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  const long args[6] = {a1, a2, a3, a4, a5, a6};
  // On a fiber: post into its scheduler's context and switch.
  if (FiberSyscalls* fibers = t_fiber_syscalls) return fibers->syscall(nr, args);
  return syscall_interruptible(nr, args, nullptr, nullptr);
}

int flexsc_bind_user_thread(void) {
  RuntimeScope scope;
  std::vector<int> cpus;
  {
    std::lock_guard lock(g_life);
    Runtime* rt = g_rt.load();
    if (!rt) return -ESHUTDOWN;
    cpus = rt->backend().placement().user_cpus;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  return static_cast<int>(
      raw_syscall6(SYS_sched_setaffinity, 0, sizeof set, reinterpret_cast<long>(&set), 0, 0, 0));
}

int flexsc_ctx_create(unsigned pages, struct flexsc_ctx** out) {
  RuntimeScope scope;
  if (!out || pages == 0 || pages > 1024) return -EINVAL;
  Context* ctx = Context::create(pages, false);
  if (!ctx) return -ENOMEM;
  *out = reinterpret_cast<flexsc_ctx*>(ctx);
  return 0;
}

int flexsc_ctx_destroy(struct flexsc_ctx* handle) {
  RuntimeScope scope;
  auto* ctx = reinterpret_cast<Context*>(handle);
  if (!ctx) return -EINVAL;
  if (ctx->in_flight()) return -EBUSY;
  if (ctx->reaps.load(std::memory_order_relaxed)) {
    if (Runtime* rt = enter(ctx)) {
      rt->backend().context_gone(ctx);
      leave(ctx);
    }
  }
  retire_context(ctx);
  ctx->release();
  return 0;
}

unsigned flexsc_ctx_capacity(const struct flexsc_ctx* handle) {
  return handle ? reinterpret_cast<const Context*>(handle)->capacity : 0;
}

struct flexsc_entry* flexsc_get_entry(struct flexsc_ctx* handle) {
  return handle ? reinterpret_cast<Context*>(handle)->get_entry() : nullptr;
}

int flexsc_submit(struct flexsc_ctx* handle) {
  RuntimeScope scope;
  auto* ctx = reinterpret_cast<Context*>(handle);
  if (!ctx) return -EINVAL;
  if (ctx->prepared_count == 0) return 0;
  long why = 0;
  Runtime* rt = enter_or_start(ctx, &why);
  if (!rt && why == kRunSynchronously) {
    // Forked child without threads: every prepared entry runs here.
    const unsigned n = ctx->prepared_count;
    for (unsigned i = 0; i < n; ++i) {
      ctx->record_order(ctx->prepared[i]);
      ctx->local_slots[ctx->local_count++] = ctx->prepared[i];
    }
    ctx->prepared_count = 0;
    run_local_entries(ctx);
    return static_cast<int>(n);
  }
  if (!rt) return static_cast<int>(why);
  const int n = rt->submit(ctx);
  leave(ctx);
  run_local_entries(ctx);
  return n;
}

namespace {

// Completions that wait in a ring (the io_uring backends) come into their
// entries only when the owner reaps them, inside the runtime.
void reap_if_needed(Context* ctx) {
  if (!ctx->reaps.load(std::memory_order_relaxed)) return;
  if (Runtime* rt = enter(ctx)) {
    rt->backend().reap(ctx);
    leave(ctx);
  }
}

bool any_done_reaping(Context* ctx) {
  reap_if_needed(ctx);
  return ctx->oldest_done() != nullptr;
}

}  // namespace

int flexsc_peek(struct flexsc_ctx* handle, struct flexsc_entry** out) {
  RuntimeScope scope;
  auto* ctx = reinterpret_cast<Context*>(handle);
  if (!ctx || !out) return -EINVAL;
  if (!(*out = ctx->oldest_done())) {
    reap_if_needed(ctx);
    *out = ctx->oldest_done();
  }
  return *out ? 0 : -EAGAIN;
}

// The waits spin before entering the runtime: the common case, an entry
// completing within microseconds, costs no fence and touches nothing shared.
int flexsc_wait(struct flexsc_ctx* handle, struct flexsc_entry** out) {
  auto* ctx = reinterpret_cast<Context*>(handle);
  if (!ctx || !out) return -EINVAL;
  if (!ctx->any_unseen()) return -EAGAIN;
  auto done = [ctx, out] { return (*out = ctx->oldest_done()) != nullptr; };
  if (FiberSyscalls* fibers = t_fiber_syscalls) {
    // On a fiber: the others run until an entry is DONE.
    fibers->wait_polling([](void* c) { return any_done_reaping(static_cast<Context*>(c)); }, ctx);
    *out = ctx->oldest_done();
    return 0;
  }
  RuntimeScope scope;
  const bool spin = ctx->wait_spin_ns && !ctx->reaps.load(std::memory_order_relaxed);
  if (done() || (spin && spin_until(done, ctx->progress_word(), ctx->wait_spin_ns))) return 0;
  Runtime* rt = enter(ctx);
  if (!rt) return done() ? 0 : -ESHUTDOWN;
  const int rc = rt->wait_any(ctx, out, true);
  leave(ctx);
  return rc;
}

long flexsc_wait_entry(struct flexsc_ctx* handle, struct flexsc_entry* e) {
  auto* ctx = reinterpret_cast<Context*>(handle);
  if (!ctx || !e || e < ctx->entries || e >= ctx->entries + ctx->capacity) return -EINVAL;
  const uint16_t s = status_of(e).load(std::memory_order_acquire);
  if (s == FLEXSC_DONE) return e->ret;
  if (s == FLEXSC_FREE) return -EINVAL;  // never submitted
  auto done = [e] { return is_done(e); };
  if (FiberSyscalls* fibers = t_fiber_syscalls) {
    struct Wait {
      Context* ctx;
      flexsc_entry* e;
    } w{ctx, e};
    fibers->wait_polling(
        [](void* p) {
          auto* w = static_cast<Wait*>(p);
          reap_if_needed(w->ctx);
          return is_done(w->e);
        },
        &w);
    return e->ret;
  }
  RuntimeScope scope;
  const bool spin = ctx->wait_spin_ns && !ctx->reaps.load(std::memory_order_relaxed);
  if (spin && spin_until(done, ctx->progress_word(), ctx->wait_spin_ns)) return e->ret;
  Runtime* rt = enter(ctx);
  if (!rt) return done() ? e->ret : -ESHUTDOWN;
  const long ret = rt->wait_entry(ctx, e, true);
  leave(ctx);
  return ret;
}

void flexsc_seen(struct flexsc_ctx* handle, struct flexsc_entry* e) {
  auto* ctx = reinterpret_cast<Context*>(handle);
  if (ctx && e >= ctx->entries && e < ctx->entries + ctx->capacity &&
      status_of(e).load(std::memory_order_acquire) == FLEXSC_DONE)
    ctx->seen(e);
}

unsigned flexsc_entry_index(const struct flexsc_ctx* handle, const struct flexsc_entry* e) {
  return reinterpret_cast<const Context*>(handle)->index_of(e);
}

int flexsc_get_stats(struct flexsc_stats* out) {
  RuntimeScope scope;
  if (!out) return -EINVAL;
  std::lock_guard lock(g_life);
  Runtime* rt = g_rt.load();
  if (!rt) return -ESHUTDOWN;
  const StatsTotals t = rt->totals();
  *out = flexsc_stats{t.remote, t.local,      t.unknown,   t.blocking,        t.nops + t.ring_nops, t.drains,
                      t.sleeps, t.wait_parks, t.takeovers, t.syscall_threads, t.cancelled,          t.ring};
  return 0;
}

}  // extern "C"
