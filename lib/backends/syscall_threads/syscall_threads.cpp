#include "backends/syscall_threads/syscall_threads.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "base/context.h"
#include "base/futex.h"
#include "base/process.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"

namespace flexsc::detail {
namespace {

constexpr size_t kSyscallThreadStack = 256 * 1024;
// A call of any class that makes no progress this long counts as stuck.
constexpr uint64_t kLongWaitNs = 10'000'000;

void wake_one(SyscallCore* core) {
  core->sleep_word.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&core->sleep_word, 1);
}

// A plain release store: no locked instruction, so the drain loop never
// stalls waiting to own the entry's line; the store buffer absorbs it.
// The owner parks with waiting = 1 then re-reads the status; the load of
// waiting here may pass the store, so a drain visit ends with a full fence
// and one more look (end_visit), and a park never outlasts its timeout.
[[gnu::always_inline]] inline void complete(Context* ctx, flexsc_entry* e, long ret) {
  set_done(e, ret);
  if (ctx->waiting.load(std::memory_order_relaxed)) wake_owner(ctx);
}

// A plain store, no locked instruction: the owner polls this line, and a
// locked add would stall until this thread owned it again.  Two syscall
// threads serving one context may lose an update; a waiter only looks for
// a change, and checks its entries directly every so often anyway.
void bump_completed(Context* ctx, unsigned n) {
  ctx->completed.store(ctx->completed.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

void end_visit(Context* ctx, unsigned unbumped) {
  if (unbumped) bump_completed(ctx, unbumped);
  // A read-modify-write: a full barrier after the DONE stores (and one
  // ThreadSanitizer understands, unlike a fence).
  if (ctx->waiting.fetch_add(0, std::memory_order_seq_cst)) wake_owner(ctx);
}

class Drainer {
 public:
  explicit Drainer(SyscallThread* self) : self_(self), core_(self->core) {}

  // A drainer holds a context (one reference, ctx->queued set) from the
  // pop until it releases it.  Between visits it keeps watching the last
  // one while it spins, so an owner that submits again finds queued set and
  // needs no queue push and no wake-up.
  void run() {
    Context* held = nullptr;
    while (!core_->stop.load(std::memory_order_acquire)) {
      if (!held && !(held = pop_ready())) {
        idle(held);
        continue;
      }
      const unsigned n = drain(held);
      if (n) {
        self_->stats.drains.add();
        self_->stats.batches[batch_bucket(n)].add();
      }
      if (!core_->ready.empty()) {
        if (release(held)) held = nullptr;
        continue;
      }
      idle(held);
    }
    if (held) {
      held->queued.store(0, std::memory_order_relaxed);
      held->release();
    }
  }

 private:
  // Boost.Lockfree's pop may write its argument and still fail (it copies
  // before its compare-and-swap): pop into a scratch variable.
  Context* pop_ready() {
    Context* ctx;
    return core_->ready.pop(ctx) ? ctx : nullptr;
  }

  // Gives ctx up, unless its owner submitted meanwhile.  True if released.
  static bool release(Context* ctx) {
    ctx->queued.store(0, std::memory_order_seq_cst);
    if (ctx->sq_tail.load(std::memory_order_seq_cst) > ctx->sq_head.load(std::memory_order_relaxed) &&
        !ctx->queued.exchange(1, std::memory_order_seq_cst))
      return false;
    ctx->release();
    return true;
  }

  // Claims a run of submitted entries with one compare-and-swap: up to
  // kMaxRun entries that cannot block, or one that can (so a thread stuck
  // in it holds nothing else).  The entries are looked up before the CAS,
  // which proves the lookups current: once a position is claimed its sq
  // slot may be reused (another thread may complete later entries, and the
  // owner then publish more).  Returns how many, 0 when nothing is submitted.
  static constexpr unsigned kMaxRun = 16;
  unsigned claim_run(Context* ctx, flexsc_entry* run[kMaxRun], unsigned max) {
    // A stopping runtime cancels what is left, rather than run it here.
    if (core_->stop.load(std::memory_order_relaxed)) return 0;
    uint64_t head = ctx->sq_head.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t tail = ctx->sq_ready.load(std::memory_order_acquire);
      if (head >= tail) return 0;
      const unsigned limit = static_cast<unsigned>(std::min<uint64_t>(tail - head, max));
      unsigned n = 0;
      while (n < limit) {
        bool blocking;
        flexsc_entry* e = ctx->submitted(head + n, &blocking);
        prefetch_for_write(e);
        if (blocking && n > 0) break;
        run[n++] = e;
        if (blocking) break;
      }
      if (ctx->sq_head.compare_exchange_weak(head, head + n, std::memory_order_acquire,
                                             std::memory_order_relaxed))
        return n;
    }
  }

  // Runs the context's submitted entries.  A run's last result is published
  // after the next run is claimed: the claim's locked instruction then
  // waits only for stores made before the previous syscall, never for the
  // line of an entry its owner may be reading right now.
  unsigned drain(Context* ctx) {
    // Runs and progress reports grow 1, 2, 4, 8, then 16 entries: an owner
    // waiting for the first results of a batch gets them at once, and a
    // long batch costs few claims and few writes to the progress counter.
    unsigned grow = 1;
    flexsc_entry* run[kMaxRun];
    unsigned size = claim_run(ctx, run, grow);
    unsigned n = 0, unbumped = 0, bump_every = 1;
    for (unsigned i = 0; i < size;) {
      flexsc_entry* e = run[i];
      const long ret = execute(ctx, e);
      // The first result of a visit is published at once (its owner may be
      // waiting for it); later ones after the next claim.
      if (n == 0) complete(ctx, e, ret);
      if (++i == size) {
        i = 0;
        grow = std::min(grow * 2, kMaxRun);
        size = claim_run(ctx, run, grow);
      }
      if (n != 0) complete(ctx, e, ret);
      ++n;
      if (++unbumped == bump_every) {
        bump_completed(ctx, std::exchange(unbumped, 0));
        bump_every = std::min(bump_every * 2, kMaxRun);
      }
    }
    end_visit(ctx, unbumped);
    return n;
  }

  [[gnu::always_inline]] inline long execute(Context* ctx, flexsc_entry* e) {
    // Claimed through sq_head, the entry needs no BUSY store: one write
    // less to a line the owner may be polling.
    if (e->flags & FLEXSC_ENTRY_NOP) {
      self_->stats.nops.add();
      return 0;
    }
    const bool blocking = e->flags & kEntryBlocking;
    const uint64_t s = self_->state.load(std::memory_order_relaxed) + SyscallThread::kOneCall;
    self_->state.store(s | SyscallThread::kInCall | (blocking ? SyscallThread::kInBlockingCall : 0),
                       std::memory_order_relaxed);
    long ret;
    if (blocking) [[unlikely]] {
      ret = execute_interruptible(e);
    } else {
      ret = raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]);
    }
    self_->state.store(s, std::memory_order_release);
    self_->stats.calls[e->nr].add();
    if (blocking) self_->stats.blocking.add();
    if (ret == -EINTR && core_->stop.load(std::memory_order_relaxed)) {
      ret = -ECANCELED;
      self_->stats.cancelled.add();
    }
    if (ret == -EPIPE || ret == -EFBIG) [[unlikely]]
      forward_thread_signal(ctx->submitter_tid.load(std::memory_order_relaxed));
    return ret;
  }

  // A call that may wait without bound, which its owner may interrupt
  // (Backend::interrupt).  The cancel signal is the only one this thread
  // takes, so -EINTR comes from it: for another entry (a race with the
  // end of this one's call), or at shutdown, this call runs again.
  long execute_interruptible(flexsc_entry* e) {
    self_->interrupt_target.store(nullptr, std::memory_order_relaxed);  // one left from an earlier call
    self_->current.store(e, std::memory_order_seq_cst);
    long ret;
    for (;;) {
      ret = raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]);
      if (ret != -EINTR || core_->stop.load(std::memory_order_relaxed)) break;
      if (self_->interrupt_target.load(std::memory_order_acquire) == e) break;
    }
    self_->current.store(nullptr, std::memory_order_seq_cst);
    self_->interrupt_target.store(nullptr, std::memory_order_relaxed);
    return ret;
  }

  // Idle: one thread per core spins for a bounded time, watching the ready
  // queue and `held`; the others sleep at once.  Returns with `held` still
  // held if its owner submitted again, else released and null.
  void idle(Context*& held) {
    if (core_->spin_ns && !core_->spinner.exchange(1, std::memory_order_acquire)) {
      const uint64_t deadline = now_ns() + core_->spin_ns;
      bool work = false;
      for (unsigned i = 1;; ++i) {
        if ((held && held->has_ready()) || !core_->ready.empty() ||
            core_->stop.load(std::memory_order_relaxed)) {
          work = true;
          break;
        }
        cpu_relax();
        if ((i & 255) == 0 && now_ns() > deadline) break;
      }
      core_->spinner.store(0, std::memory_order_release);
      if (work) {
        self_->stats.idle_spins_with_work.add();
        if (held && !held->has_ready() && release(held)) held = nullptr;
        return;
      }
    }
    if (held) {
      if (!release(held)) return;  // its owner submitted meanwhile
      held = nullptr;
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
};

void* syscall_thread_main(void* p) {
  ++t_runtime_depth;  // flexsc's own thread: its libc calls are not the program's
  // What it needs to begin lives in the thread's record, not on the heap:
  // a child forked before the thread read it would hold it for ever.
  SyscallThread* self = static_cast<SyscallThread*>(p);

  // Only the runtime's own signal reaches a syscall thread: the program's
  // handlers run on the program's threads.
  sigset_t set;
  sigfillset(&set);
  if (self->cancel_signal) sigdelset(&set, self->cancel_signal);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  char name[16];
  std::snprintf(name, sizeof name, "flexsc-sys/%d", self->core->cpus.front());
  pthread_setname_np(pthread_self(), name);
  Drainer(self).run();
  self->core->awake.fetch_sub(1, std::memory_order_seq_cst);
  self->exited.store(true, std::memory_order_release);
  return nullptr;
}

}  // namespace

int SyscallThreads::create(const Config& cfg, std::unique_ptr<SyscallThreads>* out, std::string* error) {
  std::unique_ptr<SyscallThreads> b(new SyscallThreads());
  b->cfg_ = cfg;
  int rc = load_topology(&b->topo_, nullptr, {});
  if (rc < 0) {
    *error = "cannot read the CPU topology (hwloc)";
    return rc;
  }
  rc = plan_placement(b->topo_, cfg.cores_forced ? &cfg.syscall_cpus : nullptr, &b->placement_, error);
  if (rc < 0) return rc;
  b->cancel_signal_.take();
  for (size_t i = 0; i < b->placement_.syscall_cores.size(); ++i) {
    auto core = std::make_unique<SyscallCore>();
    core->index = static_cast<unsigned>(i);
    core->cpus = b->placement_.syscall_cores[i].cpus;
    core->cpuset = hwloc_bitmap_alloc();
    for (int c : core->cpus) hwloc_bitmap_set(core->cpuset, static_cast<unsigned>(c));
    core->single_core = b->placement_.syscall_cores[i].shared;
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

SyscallThreads::~SyscallThreads() {
  stop();
  for (auto& core : cores_) {
    for (unsigned i = 0; i < core->nthreads.load(); ++i) delete core->threads[i];
    hwloc_bitmap_free(core->cpuset);
  }
  if (topo_) hwloc_topology_destroy(topo_);
}

int SyscallThreads::spawn(SyscallCore* core) {
  std::lock_guard lock(core->spawn_mutex);
  const unsigned n = core->nthreads.load(std::memory_order_relaxed);
  if (n >= cfg_.max_syscall_threads || core->stop.load()) return -EAGAIN;
  std::lock_guard starting(thread_start_mutex());
  auto* t = new SyscallThread();
  t->core = core;
  core->awake.fetch_add(1, std::memory_order_seq_cst);
  t->cancel_signal = cancel_signal_.number();
  // Pinned from birth (it never runs on a user core); it then opens the
  // cancel signal.
  const int rc = start_runtime_thread(&t->handle, kSyscallThreadStack, &core->cpus, syscall_thread_main, t);
  if (rc < 0) {
    core->awake.fetch_sub(1, std::memory_order_seq_cst);
    delete t;
    return rc;
  }
  // hwloc's binding (docs/architecture.md), on top of the attribute above.
  hwloc_set_thread_cpubind(topo_, t->handle, core->cpuset, 0);
  core->threads[n] = t;
  core->nthreads.store(n + 1, std::memory_order_release);
  return 0;
}

void SyscallThreads::bind(Context* ctx) {
  ctx->core = cores_[placement_.core_serving(sched_getcpu())].get();
  // Spinning is pointless where the owner itself runs its entries.
  ctx->wait_spin_ns = ctx->core->single_core ? 0 : cfg_.wait_spin_ns;
}

void SyscallThreads::enqueue(Context* ctx) {
  if (ctx->queued.load(std::memory_order_seq_cst) || ctx->queued.exchange(1, std::memory_order_seq_cst))
    return;
  SyscallCore* core = ctx->core;
  ctx->add_ref();
  core->ready.push(ctx);
  // fetch_add(0): a full barrier between the push and the read of awake.
  if (core->awake.fetch_add(0, std::memory_order_seq_cst) == 0 || only_blocked_awake(core)) wake_one(core);
}

// True when every awake thread of the core sits in a blocking-class call
// and one sleeps: wake it rather than leave the context to a waiter's
// takeover.
bool SyscallThreads::only_blocked_awake(const SyscallCore* core) {
  const unsigned n = core->nthreads.load(std::memory_order_acquire);
  bool sleeper = false;
  for (unsigned i = 0; i < n; ++i) {
    const uint64_t s = core->threads[i]->state.load(std::memory_order_relaxed);
    if (s & SyscallThread::kSleeping)
      sleeper = true;
    else if (!(s & SyscallThread::kInBlockingCall))
      return false;
  }
  return sleeper;
}

void SyscallThreads::submit(Context* ctx, uint32_t* slots, unsigned count) {
  ctx->publish(slots, count);
  // Single-core mode: the owner runs its entries when it waits (FlexSC's
  // single-core mode), so posting never makes a syscall.
  if (!ctx->core->single_core) enqueue(ctx);
}

uint64_t SyscallThreads::progress_mark(Context* ctx) const {
  const SyscallCore* core = ctx->core;
  const unsigned n = core->nthreads.load(std::memory_order_acquire);
  uint64_t mark = n;
  for (unsigned i = 0; i < n; ++i) mark += core->threads[i]->state.load(std::memory_order_acquire) << 8;
  return mark;
}

// Single-core mode: run the context's non-blocking entries on the caller;
// the first blocking one, and all behind it, go to a syscall thread.
void SyscallThreads::run_inline(Context* ctx) {
  uint64_t head = ctx->sq_head.load(std::memory_order_acquire);
  while (head < ctx->sq_tail.load(std::memory_order_acquire)) {
    bool blocking;
    flexsc_entry* e = ctx->submitted(head, &blocking);
    if (blocking) {
      enqueue(ctx);
      return;
    }
    if (!ctx->sq_head.compare_exchange_weak(head, head + 1, std::memory_order_acquire)) continue;
    ++head;
    long ret = 0;
    if (!(e->flags & FLEXSC_ENTRY_NOP)) {
      ret = raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]);
      ctx->stats.calls[e->nr].add();
    }
    ctx->stats.inline_calls.add();
    complete(ctx, e, ret);
    bump_completed(ctx, 1);
  }
}

void SyscallThreads::wait_begin(Context* ctx) {
  if (ctx->core->single_core) run_inline(ctx);
}

void SyscallThreads::forget_threads() {
  for (auto& core : cores_) {
    const unsigned n = core->nthreads.load();
    for (unsigned i = 0; i < n; ++i) {
      core->threads[i]->handle = {};
      core->threads[i]->exited.store(true);
    }
    // The queue's context references died with the parent's threads (the
    // child resets the contexts' counts), and a parent thread may have held
    // the spawn lock at the fork.
    Context* ctx;
    while (core->ready.pop(ctx)) {
    }
    new (&core->spawn_mutex) std::mutex();
  }
}

void SyscallThreads::before_park(Context* ctx, uint64_t since, uint64_t waited_ns) {
  SyscallCore* core = ctx->core;
  if (core->single_core) run_inline(ctx);
  if (!ctx->has_unclaimed()) return;        // a syscall thread is executing them
  if (progress_mark(ctx) != since) return;  // some thread made progress: it will get to us
  // Stuck: sitting in one call of the blocking class for the whole wait (or
  // in any call for very long).  Anything else will get to our entries.
  const bool long_wait = waited_ns >= kLongWaitNs;
  const unsigned n = core->nthreads.load(std::memory_order_acquire);
  unsigned sleeping = 0, stuck = 0;
  for (unsigned i = 0; i < n; ++i) {
    const uint64_t s = core->threads[i]->state.load(std::memory_order_acquire);
    if (s & SyscallThread::kSleeping)
      ++sleeping;
    else if ((s & SyscallThread::kInBlockingCall) || ((s & SyscallThread::kInCall) && long_wait))
      ++stuck;
    else
      return;
  }
  if (!stuck) {
    // All asleep: a poster's wake-up is on its way; make sure of it.
    if (core->awake.load(std::memory_order_seq_cst) == 0) wake_one(core);
    return;
  }
  // Our context may be held by a stuck thread: give a spare a reference.
  ctx->stats.takeovers.add();
  ctx->add_ref();
  ctx->queued.store(1, std::memory_order_relaxed);
  core->ready.push(ctx);
  if (sleeping)
    wake_one(core);
  else if (spawn(core) < 0)
    wake_one(core);
}

bool SyscallThreads::interrupt(Context* ctx, flexsc_entry* e) {
  if (!cancel_signal_.number()) return false;
  // A call that cannot wait would not be interrupted either: it completes.
  if (!(e->flags & kEntryBlocking)) return true;
  // Not claimed yet: it never runs.
  uint64_t head = ctx->sq_head.load(std::memory_order_acquire);
  if (head < ctx->sq_tail.load(std::memory_order_acquire) && ctx->submitted(head) == e &&
      ctx->sq_head.compare_exchange_strong(head, head + 1)) {
    set_done(e, -EINTR);
    ctx->completed.fetch_add(1);
    return true;
  }
  SyscallCore* core = ctx->core;
  const unsigned n = core->nthreads.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; ++i) {
    SyscallThread* t = core->threads[i];
    if (t->current.load(std::memory_order_seq_cst) != e) continue;
    t->interrupt_target.store(e, std::memory_order_release);
    pthread_kill(t->handle, cancel_signal_.number());
    return true;
  }
  return true;  // claimed, not yet (or no longer) in its call: it completes by itself
}

void SyscallThreads::stop() {
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
      interrupt_and_join(&t->handle, t->exited, cancel_signal_.number());
    }
    Context* ctx;
    while (core->ready.pop(ctx)) {
      ctx->queued.store(0);
      ctx->release();
    }
  }
  cancel_signal_.give_back();
}

void SyscallThreads::collect(StatsTotals* totals) const {
  for (auto& core : cores_) {
    const unsigned n = core->nthreads.load(std::memory_order_acquire);
    totals->syscall_threads += n;
    for (unsigned i = 0; i < n; ++i) totals->add(core->threads[i]->stats);
  }
}

}  // namespace flexsc::detail
