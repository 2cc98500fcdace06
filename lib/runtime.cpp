#include "runtime.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "api.h"
#include "backends/registry.h"
#include "base/classify.h"
#include "base/futex.h"
#include "base/thread_state.h"

namespace flexsc::detail {
namespace {

// Statistics of contexts that went away while the current runtime ran.
StatsTotals g_retired;       // under registry_mutex()
uint64_t g_retired_gen = 0;  // the generation g_retired belongs to

constexpr uint64_t kFirstParkNs = 200'000;   // parked waiters re-check for stuck
constexpr uint64_t kMaxParkNs = 64'000'000;  // syscall threads this often at least
constexpr uint64_t kGraceNs = 100'000'000;   // shutdown lets calls finish this long

}  // namespace

void retire_context(Context* ctx) {
  std::lock_guard lock(registry_mutex());
  if (ctx->gen != 0 && ctx->gen == g_retired_gen) g_retired.add(ctx->stats);
  registry_unlink_locked(ctx);
  // What the backend keeps for it goes now, under the lock that
  // Runtime::stop() unbinds under: while the backend that made it is
  // alive (the kernel shim's region is unregistered on the descriptor it
  // was registered on, not on one a later runtime reopened with the same
  // number), or already gone with it.
  ctx->backend_state.reset();
}

int Runtime::start(const Config& cfg, uint64_t gen, std::unique_ptr<Runtime>* out, std::string* error) {
  std::unique_ptr<Runtime> rt(new Runtime());
  rt->cfg_ = cfg;
  rt->gen_ = gen;
  if (int rc = create_backend(cfg, &rt->backend_, error); rc < 0) return rc;
  {
    std::lock_guard lock(registry_mutex());
    g_retired = StatsTotals{};
    g_retired_gen = gen;
  }
  *out = std::move(rt);
  return 0;
}

void Runtime::bind(Context* ctx) {
  ctx->stats.reset();
  ctx->queued.store(0, std::memory_order_relaxed);  // no syscall thread of an older runtime holds it
  ctx->progress.store(&ctx->completed, std::memory_order_release);
  backend_->bind(ctx);
  ctx->rt = this;
  ctx->gen = gen_;
}

int Runtime::submit(Context* ctx) {
  const unsigned n = ctx->prepared_count;
  const bool diverged = thread_diverged();
  unsigned remote = 0;
  for (unsigned i = 0; i < n; ++i) {
    const uint32_t slot = ctx->prepared[i];
    flexsc_entry* e = &ctx->entries[slot];
    ctx->record_order(slot);
    if (e->flags & FLEXSC_ENTRY_NOP) {
      e->flags = FLEXSC_ENTRY_NOP;
    } else {
      const long args[6] = {e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]};
      const SyscallClass cls = classify(e->nr, args);
      if (diverged || runs_on_caller(cls)) {
        ctx->local_slots[ctx->local_count++] = slot;
        continue;
      }
      e->flags = cls == SyscallClass::Blocking ? kEntryBlocking : 0;
    }
    // Release: the kernel shim's servers find entries by their status.
    status_of(e).store(FLEXSC_SUBMITTED, std::memory_order_release);
    ctx->prepared[remote++] = slot | (e->flags & kEntryBlocking ? Context::kSqBlocking : 0);
  }
  ctx->prepared_count = 0;
  if (remote) {
    ctx->submitter_tid.store(current_tid(), std::memory_order_relaxed);
    backend_->submit(ctx, ctx->prepared, remote);
  }
  return static_cast<int>(n);
}

void run_local_entries(Context* ctx) {
  for (unsigned i = 0; i < ctx->local_count; ++i) {
    flexsc_entry* e = &ctx->entries[ctx->local_slots[i]];
    const long args[6] = {e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]};
    if (e->flags & FLEXSC_ENTRY_NOP) {
      e->ret = 0;
    } else {
      count_on_caller(ctx, e->nr, classify(e->nr, args));
      e->ret = run_on_caller(e->nr, args);
    }
    status_of(e).store(FLEXSC_DONE, std::memory_order_release);
  }
  ctx->local_count = 0;
}

void count_on_caller(Context* ctx, long nr, SyscallClass cls) {
  if (cls == SyscallClass::Local) {
    ctx->stats.local.add();
    ctx->stats.calls[nr].add();
  } else {
    ctx->stats.unknown.add();
  }
}

void Backend::park(Context* ctx, uint32_t how, uint64_t timeout_ns, const flexsc_entry*) {
  futex_wait(&ctx->waiting, how, timeout_ns);
}

// Spin for the configured time, then park until done().  Parking has a
// timeout: each time it runs out, the waiter checks that the syscall
// threads serving it are not all stuck in blocking calls.  Contexts whose
// completions wait in a ring are reaped on every check.
template <class Done>
void Runtime::wait_until(Context* ctx, Done done_now, bool spun, const flexsc_entry* target,
                         uint64_t deadline_ns) {
  const bool reaps = ctx->reaps.load(std::memory_order_relaxed);
  auto done = [&] {
    if (reaps) backend_->reap(ctx);
    return done_now();
  };
  if (done()) return;
  ctx->stats.waits.add();
  backend_->wait_begin(ctx);
  const uint64_t start = now_ns();
  const uint64_t spin_ns =
      deadline_ns ? std::min<uint64_t>(ctx->wait_spin_ns, deadline_ns > start ? deadline_ns - start : 0)
                  : ctx->wait_spin_ns;
  // A context whose completions wait in a ring reaps on every round, and
  // looks at its entries only when a reap or a syscall thread brought
  // something: polling an entry line a syscall thread writes would stall it.
  if (reaps) {
    if (spin_until(done_now, ctx->progress_word(), spin_ns, [&] { return backend_->reap(ctx); })) return;
  } else if (!spun && spin_until(done_now, ctx->progress_word(), spin_ns)) {
    return;
  }
  uint64_t mark = backend_->progress_mark(ctx);
  uint64_t park_ns = kFirstParkNs;
  for (;;) {
    if (deadline_ns) {
      const uint64_t now = now_ns();
      if (now >= deadline_ns) return;
      park_ns = std::min(park_ns, deadline_ns - now);
    }
    const uint32_t how = backend_->prepare_park(ctx);
    ctx->waiting.store(how, std::memory_order_seq_cst);
    if (done()) {
      ctx->waiting.store(0, std::memory_order_relaxed);
      return;
    }
    ctx->stats.wait_parks.add();
    backend_->park(ctx, how, park_ns, target);
    ctx->waiting.store(0, std::memory_order_relaxed);
    if (done()) return;
    backend_->before_park(ctx, mark, now_ns() - start);
    mark = backend_->progress_mark(ctx);
    park_ns = std::min(park_ns * 2, kMaxParkNs);
  }
}

long Runtime::wait_entry(Context* ctx, flexsc_entry* e, bool spun) {
  wait_until(
      ctx, [e] { return is_done(e); }, spun, e);
  return e->ret;
}

long Runtime::wait_entry_or_interrupt(Context* ctx, flexsc_entry* e, bool (*interrupted)(void*), void* arg) {
  constexpr uint64_t kAskAgainNs = 1'000'000;
  bool asked = false;
  uint64_t last_ask = 0;
  wait_until(
      ctx,
      [&] {
        if (is_done(e)) return true;
        // Asked again every millisecond until e is DONE: a signal to a
        // syscall thread can race with the end of its call.
        if (interrupted(arg) && (!asked || now_ns() - last_ask >= kAskAgainNs) &&
            backend_->interrupt(ctx, e)) {
          asked = true;
          last_ask = now_ns();
        }
        return false;
      },
      false, e);
  return asked && e->ret == -ECANCELED ? -EINTR : e->ret;
}

void Runtime::wait_for(Context* ctx, bool (*ready)(void*), void* arg, uint64_t deadline_ns) {
  wait_until(
      ctx, [ready, arg] { return ready(arg); }, false, nullptr, deadline_ns);
}

int Runtime::wait_any(Context* ctx, flexsc_entry** out, bool spun) {
  if (!ctx->any_unseen()) return -EAGAIN;
  wait_until(
      ctx, [ctx, out] { return (*out = ctx->oldest_done()) != nullptr; }, spun, nullptr);
  return 0;
}

namespace {

// Completes every unclaimed entry of ctx with -ECANCELED.
uint64_t cancel_unclaimed(Context* ctx) {
  uint64_t n = 0;
  uint64_t head = ctx->sq_head.load(std::memory_order_acquire);
  while (head < ctx->sq_tail.load(std::memory_order_acquire)) {
    // Looked up before the claim: afterwards the sq slot may be reused.
    flexsc_entry* e = ctx->submitted(head);
    if (!ctx->sq_head.compare_exchange_weak(head, head + 1)) continue;
    ++head;
    e->ret = -ECANCELED;
    status_of(e).store(FLEXSC_DONE, std::memory_order_seq_cst);
    ++n;
  }
  if (n) {
    ctx->completed.fetch_add(n);
    wake_owner(ctx);
  }
  return n;
}

}  // namespace

void Runtime::stop() {
  // 1. Calls in progress finish normally for a while (g_rt is null already,
  //    so no new ones start).
  // A context of another generation inside the API may be binding to this
  // runtime right now (enter() read g_rt before it went): it counts too.
  auto any_inside = [] {
    std::lock_guard lock(registry_mutex());
    for (Context* c = registry_head(); c; c = c->next)
      if (c->in_api.load(std::memory_order_acquire)) return true;
    return false;
  };
  const uint64_t grace_end = now_ns() + kGraceNs;
  while (any_inside() && now_ns() < grace_end) usleep(200);
  // 2. Syscall threads stop; calls blocked in the kernel are interrupted.
  backend_->stop();
  // 3. What nobody claimed is cancelled, until every caller has left.
  uint64_t cancelled = 0;
  for (;;) {
    bool inside = false, in_kernel = false;
    {
      std::lock_guard lock(registry_mutex());
      for (Context* c = registry_head(); c; c = c->next) {
        const bool in = c->in_api.load(std::memory_order_acquire) != 0;
        inside |= in;
        if (c->gen != gen_) continue;
        cancelled += cancel_unclaimed(c);
        in_kernel |= backend_->cancel_ops(c, !in);
      }
    }
    if (!inside && !in_kernel) break;
    usleep(200);
  }
  // 4. Nothing is in flight: what the backend kept per context goes.
  {
    std::lock_guard lock(registry_mutex());
    for (Context* c = registry_head(); c; c = c->next)
      if (c->gen == gen_) backend_->unbind(c);
  }
  if (!cfg_.stats.empty()) {
    StatsTotals t = totals();
    t.cancelled += cancelled;
    write_stats(cfg_.stats.c_str(), t.report(backend_name()));
  }
}

void Runtime::discard_after_fork() {
  backend_->forget_threads();
}

StatsTotals Runtime::totals() const {
  StatsTotals t;
  backend_->collect(&t);
  std::lock_guard lock(registry_mutex());
  for (Context* c = registry_head(); c; c = c->next)
    if (c->gen == gen_) t.add(c->stats);
  if (g_retired_gen == gen_) t += g_retired;
  return t;
}

}  // namespace flexsc::detail
