#include "thread_backend.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "context.h"
#include "futex.h"
#include "raw_syscall.h"

namespace flexsc::detail {
namespace {

constexpr size_t kSyscallThreadStack = 256 * 1024;

void ignore_signal(int) {}

// A real-time signal nobody handles, used to interrupt a syscall thread
// blocked in a call when the runtime shuts down.
int pick_cancel_signal() {
  for (int sig = SIGRTMAX; sig > SIGRTMIN + 2; --sig) {
    struct sigaction sa;
    if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL) return sig;
  }
  return 0;
}

void wake_one(SyscallCore* core) {
  core->sleep_word.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&core->sleep_word, 1);
}

void wake_owner(Context* ctx) {
  if (ctx->waiting.exchange(0)) futex_wake(&ctx->waiting);
}

// A plain release store: no locked instruction, so the drain loop never
// stalls waiting to own the entry's line; the store buffer absorbs it.
// The owner parks with waiting = 1 then re-reads the status; the load of
// waiting here may pass the store, so a drain visit ends with a full fence
// and one more look (end_visit), and a park never outlasts its timeout.
[[gnu::always_inline]] inline void complete(Context* ctx, flexsc_entry* e, long ret) {
  e->ret = ret;
  status_of(e).store(FLEXSC_DONE, std::memory_order_release);
  if (ctx->waiting.load(std::memory_order_relaxed)) wake_owner(ctx);
}

constexpr unsigned kCompletionsPerBump = 16;

void bump_completed(Context* ctx, unsigned n) { ctx->completed.fetch_add(n, std::memory_order_release); }

void end_visit(Context* ctx, unsigned unbumped) {
  if (unbumped) bump_completed(ctx, unbumped);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (ctx->waiting.load(std::memory_order_relaxed)) wake_owner(ctx);
}

// Fetch a line for writing ahead of time (a no-op on CPUs without it).
inline void prefetch_for_write(const void* p) { asm volatile("prefetchw %0" : : "m"(*(const char*)p)); }

// Deliberately wrong results, so the differential suite can show it fails.
long perturb(long ret) { return ret >= 0 ? ret + 1 : (ret == -EINVAL ? -EBADF : -EINVAL); }

struct StartArg {
  SyscallThread* self;
  int cancel_signal;
  bool perturb;
};

class Drainer {
 public:
  Drainer(SyscallThread* self, bool perturb) : self_(self), core_(self->core), perturb_(perturb) {}

  void run() {
    while (!core_->stop.load(std::memory_order_acquire)) {
      Context* ctx;
      if (core_->ready.pop(ctx)) {
        ctx->queued.store(0, std::memory_order_seq_cst);
        const unsigned n = perturb_ ? drain<true>(ctx) : drain<false>(ctx);
        if (n) {
          self_->stats.drains.add();
          self_->stats.batches[batch_bucket(n)].add();
        }
        ctx->release();
        continue;
      }
      idle();
    }
  }

 private:
  // Claims the next submitted entry of ctx, or returns nullptr.
  flexsc_entry* claim(Context* ctx, uint64_t& head, uint64_t& tail) {
    for (;;) {
      if (head >= tail) {
        tail = ctx->sq_tail.load(std::memory_order_acquire);
        if (head >= tail) return nullptr;
      }
      if (ctx->sq_head.compare_exchange_weak(head, head + 1, std::memory_order_acquire,
                                             std::memory_order_relaxed))
        break;
    }
    flexsc_entry* e = &ctx->entries[ctx->sq[head % ctx->capacity]];
    ++head;
    // The next entry's line travels while this one's syscall runs.
    if (head < tail) prefetch_for_write(&ctx->entries[ctx->sq[head % ctx->capacity]]);
    // About to sleep maybe: let a spare thread find the entries behind it.
    if ((e->flags & kEntryBlocking) && head < tail && !ctx->queued.load(std::memory_order_relaxed) &&
        !ctx->queued.exchange(1, std::memory_order_seq_cst)) {
      ctx->add_ref();
      core_->ready.push(ctx);
    }
    return e;
  }

  // Runs the context's submitted entries.  Each result is published after
  // the next entry is claimed: the claim's locked instruction then waits
  // only for stores made before the previous syscall, never for the line
  // of an entry its owner is polling right now.
  template <bool Perturb>
  unsigned drain(Context* ctx) {
    uint64_t head = ctx->sq_head.load(std::memory_order_relaxed);
    uint64_t tail = ctx->sq_tail.load(std::memory_order_seq_cst);
    unsigned n = 0;
    for (flexsc_entry* e = claim(ctx, head, tail); e; ++n) {
      const long ret = execute<Perturb>(e);
      flexsc_entry* next = claim(ctx, head, tail);
      complete(ctx, e, ret);
      if ((n + 1) % kCompletionsPerBump == 0) bump_completed(ctx, kCompletionsPerBump);
      e = next;
    }
    end_visit(ctx, n % kCompletionsPerBump);
    return n;
  }

  template <bool Perturb>
  [[gnu::always_inline]] inline long execute(flexsc_entry* e) {
    // Claimed through sq_head, the entry needs no BUSY store: one write
    // less to a line the owner may be polling.
    if (e->flags & FLEXSC_ENTRY_NOP) {
      self_->stats.nops.add();
      return 0;
    }
    const uint64_t s = self_->state.load(std::memory_order_relaxed);
    self_->state.store(s + SyscallThread::kOneCall + SyscallThread::kInCall, std::memory_order_relaxed);
    long ret = raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]);
    self_->state.store(s + SyscallThread::kOneCall, std::memory_order_release);
    self_->stats.calls[e->nr].add();
    if (e->flags & kEntryBlocking) self_->stats.blocking.add();
    if (ret == -EINTR && core_->stop.load(std::memory_order_relaxed)) {
      ret = -ECANCELED;
      self_->stats.cancelled.add();
    }
    if constexpr (Perturb) ret = perturb(ret);
    return ret;
  }

  void idle() {
    if (core_->spin_ns && !core_->spinner.exchange(1, std::memory_order_acquire)) {
      const uint64_t deadline = now_ns() + core_->spin_ns;
      bool work = false;
      for (unsigned i = 1;; ++i) {
        if (!core_->ready.empty() || core_->stop.load(std::memory_order_relaxed)) {
          work = true;
          break;
        }
        cpu_relax();
        if ((i & 255) == 0 && now_ns() > deadline) break;
      }
      core_->spinner.store(0, std::memory_order_release);
      if (work) {
        self_->stats.idle_spins_with_work.add();
        return;
      }
    }
    const uint32_t word = core_->sleep_word.load(std::memory_order_seq_cst);
    const uint64_t s = self_->state.load(std::memory_order_relaxed);
    self_->state.store(s | SyscallThread::kSleeping, std::memory_order_relaxed);
    core_->awake.fetch_sub(1, std::memory_order_seq_cst);
    if (core_->ready.empty() && !core_->stop.load(std::memory_order_seq_cst)) {
      self_->stats.sleeps.add();
      futex_wait(&core_->sleep_word, word);
    }
    core_->awake.fetch_add(1, std::memory_order_seq_cst);
    self_->state.store(s, std::memory_order_relaxed);
  }

  SyscallThread* self_;
  SyscallCore* core_;
  bool perturb_;
};

void* syscall_thread_main(void* p) {
  std::unique_ptr<StartArg> arg(static_cast<StartArg*>(p));
  SyscallThread* self = arg->self;
  // Only the runtime's own signal reaches a syscall thread: the program's
  // handlers run on the program's threads.
  sigset_t set;
  sigfillset(&set);
  if (arg->cancel_signal) sigdelset(&set, arg->cancel_signal);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  char name[16];
  std::snprintf(name, sizeof name, "flexsc-sys/%d", self->core->cpus.front());
  pthread_setname_np(pthread_self(), name);
  Drainer(self, arg->perturb).run();
  self->core->awake.fetch_sub(1, std::memory_order_seq_cst);
  self->exited.store(true, std::memory_order_release);
  return nullptr;
}

}  // namespace

int ThreadBackend::create(const Config& cfg, bool perturb, std::unique_ptr<Backend>* out,
                          std::string* error) {
  std::unique_ptr<ThreadBackend> b(new ThreadBackend());
  b->cfg_ = cfg;
  b->perturb_ = perturb;
  int rc = load_topology(&b->topo_, nullptr, {});
  if (rc < 0) {
    *error = "cannot read the CPU topology (hwloc)";
    return rc;
  }
  rc = plan_placement(b->topo_, cfg.cores_forced ? &cfg.syscall_cpus : nullptr, &b->placement_, error);
  if (rc < 0) return rc;
  b->cancel_signal_ = pick_cancel_signal();
  if (b->cancel_signal_) {
    struct sigaction sa{};
    sa.sa_handler = ignore_signal;  // no SA_RESTART: a blocked call returns -EINTR
    sigemptyset(&sa.sa_mask);
    sigaction(b->cancel_signal_, &sa, &b->old_action_);
  }
  for (size_t i = 0; i < b->placement_.syscall_cores.size(); ++i) {
    auto core = std::make_unique<SyscallCore>();
    core->index = static_cast<unsigned>(i);
    core->cpus = b->placement_.syscall_cores[i].cpus;
    core->cpuset = hwloc_bitmap_alloc();
    for (int c : core->cpus) hwloc_bitmap_set(core->cpuset, static_cast<unsigned>(c));
    core->single_core = b->placement_.single_core;
    core->spin_ns = core->single_core ? 0 : cfg.drain_spin_ns;
    b->cores_.push_back(std::move(core));
  }
  for (auto& core : b->cores_) {
    if ((rc = b->spawn(core.get())) < 0) {
      *error = std::string("cannot start a syscall thread: ") + std::strerror(-rc);
      b->stop();
      return rc;
    }
  }
  *out = std::move(b);
  return 0;
}

ThreadBackend::~ThreadBackend() {
  stop();
  for (auto& core : cores_) {
    for (unsigned i = 0; i < core->nthreads.load(); ++i) delete core->threads[i];
    hwloc_bitmap_free(core->cpuset);
  }
  if (topo_) hwloc_topology_destroy(topo_);
}

int ThreadBackend::spawn(SyscallCore* core) {
  std::lock_guard lock(core->spawn_mutex);
  const unsigned n = core->nthreads.load(std::memory_order_relaxed);
  if (n >= cfg_.max_syscall_threads || core->stop.load()) return -EAGAIN;
  auto* t = new SyscallThread();
  t->core = core;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kSyscallThreadStack);
  // Pinned from birth: the thread never runs on a user core.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (int c : core->cpus) CPU_SET(c, &cpus);
  pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
  // Born with every signal blocked; the thread then opens the cancel signal.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  core->awake.fetch_add(1, std::memory_order_seq_cst);
  auto* arg = new StartArg{t, cancel_signal_, perturb_};
  int rc = pthread_create(&t->handle, &attr, syscall_thread_main, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    core->awake.fetch_sub(1, std::memory_order_seq_cst);
    delete arg;
    delete t;
    return -rc;
  }
  // hwloc's binding, as DESIGN.md asks, on top of the attribute above.
  hwloc_set_thread_cpubind(topo_, t->handle, core->cpuset, 0);
  core->threads[n] = t;
  core->nthreads.store(n + 1, std::memory_order_release);
  return 0;
}

void ThreadBackend::bind(Context* ctx) {
  const int cpu = sched_getcpu();
  const auto& map = placement_.core_of_cpu;
  int idx = cpu >= 0 && static_cast<size_t>(cpu) < map.size() ? map[static_cast<size_t>(cpu)] : -1;
  ctx->core = cores_[idx < 0 ? 0 : static_cast<size_t>(idx)].get();
}

void ThreadBackend::enqueue(Context* ctx) {
  if (ctx->queued.load(std::memory_order_seq_cst) || ctx->queued.exchange(1, std::memory_order_seq_cst))
    return;
  SyscallCore* core = ctx->core;
  ctx->add_ref();
  core->ready.push(ctx);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (core->awake.load(std::memory_order_relaxed) == 0) wake_one(core);
}

void ThreadBackend::submitted(Context* ctx) {
  // Single-core mode: the owner runs its entries when it waits (FlexSC's
  // single-core mode), so posting never makes a syscall.
  if (!ctx->core->single_core) enqueue(ctx);
}

uint64_t ThreadBackend::progress_mark(Context* ctx) const {
  const SyscallCore* core = ctx->core;
  const unsigned n = core->nthreads.load(std::memory_order_acquire);
  uint64_t mark = n;
  for (unsigned i = 0; i < n; ++i) mark += core->threads[i]->state.load(std::memory_order_acquire) << 8;
  return mark;
}

// Single-core mode: run the context's non-blocking entries on the caller;
// the first blocking one, and all behind it, go to a syscall thread.
void ThreadBackend::run_inline(Context* ctx) {
  uint64_t head = ctx->sq_head.load(std::memory_order_acquire);
  while (head < ctx->sq_tail.load(std::memory_order_acquire)) {
    flexsc_entry* e = &ctx->entries[ctx->sq[head % ctx->capacity]];
    if (e->flags & kEntryBlocking) {
      enqueue(ctx);
      return;
    }
    if (!ctx->sq_head.compare_exchange_weak(head, head + 1, std::memory_order_acquire)) continue;
    ++head;
    long ret = 0;
    if (!(e->flags & FLEXSC_ENTRY_NOP))
      ret = raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]);
    if (perturb_) ret = perturb(ret);
    ctx->stats.inline_calls.add();
    complete(ctx, e, ret);
    bump_completed(ctx, 1);
  }
}

void ThreadBackend::wait_begin(Context* ctx) {
  if (ctx->core->single_core) run_inline(ctx);
}

void ThreadBackend::forget_threads() {
  for (auto& core : cores_) {
    const unsigned n = core->nthreads.load();
    for (unsigned i = 0; i < n; ++i) {
      core->threads[i]->handle = {};
      core->threads[i]->exited.store(true);
    }
  }
}

void ThreadBackend::before_park(Context* ctx, uint64_t since) {
  SyscallCore* core = ctx->core;
  if (core->single_core) {
    run_inline(ctx);
    return;
  }
  if (!ctx->has_unclaimed()) return;  // a syscall thread is executing them
  // The thread holding our context may be stuck in a call: put it back in
  // the queue so any other thread can take it.
  enqueue(ctx);
  if (progress_mark(ctx) != since) return;  // some thread made progress: it will get to us
  const unsigned n = core->nthreads.load(std::memory_order_acquire);
  unsigned sleeping = 0, stuck = 0;
  for (unsigned i = 0; i < n; ++i) {
    const uint64_t s = core->threads[i]->state.load(std::memory_order_acquire);
    if (s & SyscallThread::kSleeping) ++sleeping;
    else if (s & SyscallThread::kInCall) ++stuck;
    else return;  // idle and spinning: it will find us
  }
  if (!stuck) {
    // All asleep: a poster's wake-up is on its way; make sure of it.
    if (core->awake.load(std::memory_order_seq_cst) == 0) wake_one(core);
    return;
  }
  // Every awake thread sat in one call for the whole spin: bring another.
  ctx->stats.takeovers.add();
  if (sleeping) wake_one(core);
  else if (spawn(core) < 0) wake_one(core);
}

void ThreadBackend::stop() {
  for (auto& core : cores_) {
    core->stop.store(true, std::memory_order_seq_cst);
    core->sleep_word.fetch_add(1);
    futex_wake(&core->sleep_word);
  }
  for (auto& core : cores_) {
    std::lock_guard lock(core->spawn_mutex);
    const unsigned n = core->nthreads.load();
    for (unsigned i = 0; i < n; ++i) {
      SyscallThread* t = core->threads[i];
      if (!t->handle) continue;
      // A thread blocked in a call is interrupted; its entry gets -ECANCELED.
      for (unsigned tries = 0; !t->exited.load(std::memory_order_acquire); ++tries) {
        if (cancel_signal_ && tries % 10 == 0) pthread_kill(t->handle, cancel_signal_);
        usleep(1000);
      }
      pthread_join(t->handle, nullptr);
      t->handle = {};
    }
    Context* ctx;
    while (core->ready.pop(ctx)) {
      ctx->queued.store(0);
      ctx->release();
    }
  }
  if (cancel_signal_) {
    sigaction(cancel_signal_, &old_action_, nullptr);
    cancel_signal_ = 0;
  }
}

void ThreadBackend::collect(StatsTotals* totals) const {
  for (auto& core : cores_) {
    const unsigned n = core->nthreads.load(std::memory_order_acquire);
    totals->syscall_threads += n;
    for (unsigned i = 0; i < n; ++i) totals->add(core->threads[i]->stats);
  }
}

}  // namespace flexsc::detail
