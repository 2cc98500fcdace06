#include "scheduler.h"

#include <hwloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

#include "base/classify.h"
#include "base/futex.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"

namespace flexsc::fiber::detail {

using flexsc::detail::classify;
using flexsc::detail::futex_wait;
using flexsc::detail::futex_wake;
using flexsc::detail::now_ns;
using flexsc::detail::raw_syscall6;
using flexsc::detail::runs_on_caller;

namespace {

thread_local Scheduler* t_scheduler = nullptr;
thread_local FiberControl* t_fiber = nullptr;

constexpr unsigned kSubmitBatch = 64;       // entries posted before a round ends
constexpr uint64_t kPollerTickNs = 50'000;  // batch-API waiters are re-checked this often when idle
constexpr unsigned kSyncPollRounds = 64;    // a busy synchronous scheduler polls epoll this often
constexpr std::size_t kShedMax = 64;

// Values of Scheduler::sleeping_.
constexpr uint32_t kAwake = 0;
constexpr uint32_t kSleepCtx = 1;    // parked on its context (futex or the backend's wait)
constexpr uint32_t kSleepEpoll = 2;  // in epoll_wait, woken through wake_fd_

void fiber_main(fc::transfer_t t);

// The thread-locals a running fiber reads, written into the TCB loaded
// now.  Not inlined: the caller may have computed thread-local addresses
// under another fs base.
[[gnu::noinline]] void publish_locals(Scheduler* s, FiberControl* f) {
  t_scheduler = s;
  t_fiber = f;
  flexsc::detail::t_fiber_syscalls = s;
  set_running_stack(&f->stack, f->id);
}

}  // namespace

FiberControl* current_fiber() {
  return t_fiber;
}
Scheduler* current_scheduler() {
  return t_scheduler;
}

}  // namespace flexsc::fiber::detail

// ---- the default policy -----------------------------------------------------

namespace flexsc::fiber {

Policy::~Policy() = default;

FiberRef FifoPolicy::pick_next() {
  if (ready_.empty()) return nullptr;
  FiberRef f = ready_.front();
  ready_.pop_front();
  return f;
}

std::size_t FifoPolicy::shed(FiberRef* out, std::size_t max) {
  std::size_t n = 0;
  while (n < max && ready_.size() > 1) {
    out[n++] = ready_.back();
    ready_.pop_back();
  }
  return n;
}

}  // namespace flexsc::fiber

namespace flexsc::fiber::detail {

// ---- a scheduler ------------------------------------------------------------

Scheduler::Scheduler(PoolImpl* pool, unsigned index, int cpu, std::unique_ptr<Policy> policy)
    : pool_(pool),
      index_(index),
      cpu_(cpu),
      policy_(std::move(policy)),
      stacks_(pool->options().stack_size) {}

void Scheduler::start() {
  thread_ = std::thread([this] { loop(); });
}

void Scheduler::notify() {
  posts_.fetch_add(1, std::memory_order_seq_cst);
  const uint32_t s = sleeping_.load(std::memory_order_seq_cst);
  if (s == kSleepCtx) {
    flexsc::detail::wake_owner(ctx_);
  } else if (s == kSleepEpoll) {
    kick_epoll();
  }
}

// Makes the scheduler's epoll ready (the eventfd in its set, level-triggered).
void Scheduler::kick_epoll() {
  const uint64_t one = 1;
  raw_syscall6(SYS_write, wake_fd_, reinterpret_cast<long>(&one), sizeof one, 0, 0, 0);
}

void Scheduler::enqueue(FiberControl* f) {
  if (t_scheduler == this) {
    policy_->awakened(f);
    return;
  }
  inbox_.push(f);
  notify();
}

void Scheduler::request_stop() {
  stop_.store(true, std::memory_order_seq_cst);
  notify();
}

// Pins the thread, names it, and keeps asynchronous signals off it: a
// handler running on a fiber's stack could switch fibers, or resume on
// another thread.  Faults (and the guard-page report) still arrive here.
void Scheduler::prepare_thread() {
  char name[16];
  std::snprintf(name, sizeof name, "flexsc-fiber/%u", index_);
  pthread_setname_np(pthread_self(), name);
  if (cpu_ >= 0 && pool_->topology()) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_bitmap_only(set, static_cast<unsigned>(cpu_));
    if (hwloc_set_cpubind(pool_->topology(), set, HWLOC_CPUBIND_THREAD) != 0) cpu_ = -1;
    hwloc_bitmap_free(set);
  }
  sigset_t block;
  sigfillset(&block);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) sigdelset(&block, sig);
  pthread_sigmask(SIG_BLOCK, &block, nullptr);
  altstack_ = prepare_overflow_reporting();
  void* bottom = nullptr;
  std::size_t size = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &bottom, &size);
    pthread_attr_destroy(&attr);
  }
  self_.adopt_thread(bottom, size);
  // x86-64 glibc: a thread's pthread_t is its TCB, the fs base.
  carrier_tcb_ = reinterpret_cast<uint64_t>(pthread_self());
}

bool Scheduler::open_context() {
  const unsigned pages = pool_->exception_less() ? pool_->options().context_pages : 1;
  flexsc_ctx* handle = nullptr;
  if (flexsc_ctx_create(pages, &handle) < 0) return false;
  ctx_ = reinterpret_cast<Context*>(handle);
  owner_.assign(ctx_->capacity, nullptr);
  // Without an epoll and its wake-up eventfd, readiness waits fail and
  // calls block as they were asked (in a syscall thread, or this one).
  if (readiness_.open() < 0) return true;
  wake_fd_ = static_cast<int>(raw_syscall6(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK, 0, 0, 0, 0));
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: it stays ready until read
  ev.data.fd = -1;
  if (wake_fd_ < 0 || raw_syscall6(SYS_epoll_ctl, readiness_.epfd, EPOLL_CTL_ADD, wake_fd_,
                                   reinterpret_cast<long>(&ev), 0, 0) < 0) {
    readiness_.close();
    return true;
  }
  readiness_.notify = [](void* self) { static_cast<Scheduler*>(self)->notify(); };
  readiness_.notify_arg = this;
  return true;
}

// At the end of the loop: takes back our epoll_wait entry, if one is in
// flight (interrupting it).  The context itself goes in the destructor,
// after the thread is joined: until then other threads may notify().
void Scheduler::drain_context() {
  for (; !timers_.empty(); timers_.pop()) timers_.top().fiber->release();
  while (in_flight_) {
    disarm_readiness();
    harvest(true);
    if (in_flight_) usleep(100);
  }
}

Scheduler::~Scheduler() {
  fd_table().forget_all_in(&readiness_);
  readiness_.close();
  if (wake_fd_ >= 0) raw_syscall6(SYS_close, wake_fd_, 0, 0, 0, 0, 0);
  if (ctx_) flexsc_ctx_destroy(reinterpret_cast<flexsc_ctx*>(ctx_));
}

void Scheduler::loop() {
  prepare_thread();
  t_scheduler = this;
  if (!open_context()) {
    std::fprintf(stderr, "flexsc: fiber scheduler %u: no memory for its posting context\n", index_);
    std::abort();
  }
  started_.store(1, std::memory_order_release);
  futex_wake(&started_);
  for (unsigned round = 0;; ++round) {
    // Before looking at the inbox: a notify() after this is seen by the
    // idle wait below, one before it by take_inbox().
    seen_posts_ = posts_.load(std::memory_order_seq_cst);
    take_inbox();
    if (!timers_.empty()) fire_timers(now_ns());
    if (!pollers_.empty()) check_pollers();
    // A round runs the fibers that were ready when it began; their
    // syscalls are submitted together (at most kSubmitBatch at a time).
    for (std::size_t n = policy_->ready_count(); n > 0; --n) {
      FiberControl* f = policy_->pick_next();
      if (!f) break;
      run(f);
      if (ctx_->prepared_count >= kSubmitBatch) submit();
    }
    if (ctx_->prepared_count) submit();
    if (in_flight_) harvest(false);
    if (readiness_.waiters.load(std::memory_order_acquire) > 0) {
      if (posts_syscalls())
        arm_readiness();
      else if (round % kSyncPollRounds == 0 && !readiness_.armed)
        poll_readiness(0);
    }
    if (pool_->options().migrate && pool_->hungry_count().load(std::memory_order_relaxed) > 0) share_work();
    if (policy_->ready_count() || !inbox_.empty()) continue;
    if (stop_.load(std::memory_order_acquire) && pool_->live() == 0) break;
    idle_wait();
  }
  drain_context();
  t_scheduler = nullptr;
  release_overflow_reporting(altstack_);
  self_.release();
}

bool Scheduler::posts_syscalls() const {
  return pool_->exception_less() && !runtime_gone_;
}

void Scheduler::run(FiberControl* f) {
  if (!f->exec.stack_bottom) {  // its first run
    if (!f->stack.base) f->stack = stacks_.get();
    if (!f->stack.base) {
      fail_to_start(f);
      return;
    }
    f->exec.make(f->stack.bottom(), f->stack.size, fiber_main);
  }
  running_ = f;
  publish_locals(this, f);
  counters_.switches.fetch_add(1, std::memory_order_relaxed);
  after_ = After::None;
  if (f->borrowed.tcb) {
    // The thread's own TCB from here on; the runtime's thread-locals the
    // fiber reads (its scheduler, itself) are published into it.
    write_fs_base(f->borrowed.tcb);
    publish_locals(this, f);
  }
  switch_context(self_, f->exec);
  set_running_stack(nullptr, 0);
  flexsc::detail::t_fiber_syscalls = nullptr;
  t_fiber = nullptr;
  running_ = nullptr;
  switch (after_) {
    case After::Yield:
      policy_->awakened(f);
      break;
    case After::Park:
    case After::None:
      break;
    case After::Exit:
      if (!f->own_stack) stacks_.put(f->stack);
      f->stack = {};
      f->exec.release();
      if (f->borrowed.on_end) f->borrowed.on_end(f->borrowed.on_end_arg);
      pool_->fiber_ended();
      f->release();  // the running fiber's reference
      break;
  }
}

// No stack could be mapped: the fiber ends at once, and join() throws.
void Scheduler::fail_to_start(FiberControl* f) {
  f->fn = nullptr;
  f->error =
      std::make_exception_ptr(std::system_error(ENOMEM, std::generic_category(), "flexsc: fiber stack"));
  finish(f);
  pool_->fiber_ended();
  f->release();
}

void Scheduler::switch_out(After after) {
  after_ = after;
  FiberControl* f = running_;
  if (f->borrowed.tcb) {
#if FLEXSC_FIBER_ASAN
    if (after == After::Exit) {
      // The anchor's ASan state (in its TCB) is back on the anchor's stack.
      void* fake = nullptr;
      __sanitizer_start_switch_fiber(&fake, f->borrowed.anchor_stack_bottom, f->borrowed.anchor_stack_size);
      __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
    }
#endif
    // The switch starts and ends under the carrier's identity (ASan's
    // per-thread state follows the fs base).
    write_fs_base(carrier_tcb_);
  }
  switch_context(f->exec, self_, after == After::Exit);
}

void Scheduler::yield_running() {
  switch_out(After::Yield);
}
void Scheduler::park_running() {
  switch_out(After::Park);
}

void Scheduler::park_running_until(uint64_t seq, uint64_t deadline_ns) {
  FiberControl* f = running_;
  f->refs.fetch_add(1, std::memory_order_relaxed);  // the timer's
  timers_.push(Timer{deadline_ns, f, seq});
  switch_out(After::Park);
}

void Scheduler::exit_running() {
  switch_out(After::Exit);
  __builtin_unreachable();
}

void Scheduler::take_inbox() {
  inbox_.consume_all([this](FiberControl* f) { policy_->awakened(f); });
}

void Scheduler::fire_timers(uint64_t now) {
  while (!timers_.empty() && timers_.top().deadline <= now) {
    const Timer t = timers_.top();
    timers_.pop();
    if (t.fiber->claim_wake(t.seq)) policy_->awakened(t.fiber);
    t.fiber->release();
  }
}

void Scheduler::check_pollers() {
  for (std::size_t i = 0; i < pollers_.size();) {
    if (pollers_[i].done(pollers_[i].arg)) {
      policy_->awakened(pollers_[i].fiber);
      pollers_[i] = pollers_.back();
      pollers_.pop_back();
    } else {
      ++i;
    }
  }
}

// ---- syscalls -----------------------------------------------------------

long Scheduler::syscall(long nr, const long args[6]) {
  if (!pool_->exception_less() || flexsc::detail::thread_diverged() || runs_on_caller(classify(nr, args))) {
    // The synchronous build, or a call that depends on the calling thread.
    counters_.on_caller.fetch_add(1, std::memory_order_relaxed);
    return flexsc::detail::run_on_caller(nr, args);
  }
  FiberControl* me = running_;
  flexsc_entry* e = ctx_->get_entry();
  if (!e) {
    // Every entry is in flight: wait for the harvest to free one, then
    // start over on whichever scheduler runs us then.
    entry_waiters_.push_back(me);
    park_running();
    return current_scheduler()->syscall(nr, args);
  }
  flexsc_prep(e, nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  owner_[ctx_->index_of(e)] = me;
  ++in_flight_;
  counters_.posted.fetch_add(1, std::memory_order_relaxed);
  park_running();
  // Possibly on another scheduler now (migration): only `me` is ours.
  return me->syscall_ret;
}

void Scheduler::wait_polling(bool (*done)(void*), void* arg) {
  if (done(arg)) return;
  pollers_.push_back(Poller{running_, done, arg});
  park_running();
}

void Scheduler::submit() {
  const int rc = flexsc_submit(reinterpret_cast<flexsc_ctx*>(ctx_));
  if (rc < 0) {
    // No runtime (-ESHUTDOWN), or it could not start again: the prepared
    // entries complete here with that error.
    runtime_gone_ = true;
    for (unsigned i = 0; i < ctx_->prepared_count; ++i) {
      const uint32_t slot = ctx_->prepared[i];
      ctx_->record_order(slot);
      flexsc::detail::set_done(&ctx_->entries[slot], rc);
    }
    ctx_->prepared_count = 0;
  } else {
    runtime_gone_ = false;
    counters_.submits.fetch_add(1, std::memory_order_relaxed);
    if (ctx_->gen.load(std::memory_order_relaxed) != backend_gen_) learn_backend();
  }
  // Entries completed here, or run on this thread (local ones, a forked
  // child's), are DONE without any progress announced.
  force_harvest_ = true;
}

// What the backend the context is bound to can do (once per runtime).
void Scheduler::learn_backend() {
  if (flexsc::detail::Runtime* rt = flexsc::detail::enter(ctx_)) {
    socket_wait_budget_ = rt->backend().socket_waits_without_thread(ctx_);
    backend_gen_ = rt->gen();
    flexsc::detail::leave(ctx_);
  }
}

// Completions wait in a ring for the io_uring backends: reap them first.
bool Scheduler::reap() {
  if (!ctx_->reaps.load(std::memory_order_relaxed)) return false;
  flexsc::detail::Runtime* rt = flexsc::detail::enter(ctx_);
  if (!rt) return false;
  const bool got = rt->backend().reap(ctx_);
  flexsc::detail::leave(ctx_);
  return got;
}

// Makes the fibers whose entries are DONE ready.  Unless forced, it looks
// at the entries only when the progress word moved or a reap brought
// something: reading lines syscall threads write would slow them down.
void Scheduler::harvest(bool force) {
  const bool reaped = reap();
  const uint64_t progress = ctx_->progress_word().load(std::memory_order_acquire);
  if (!force && !force_harvest_ && !reaped && progress == seen_progress_ && (++harvest_skips_ & 63) != 0)
    return;
  seen_progress_ = progress;
  force_harvest_ = false;
  unsigned n = 0;
  for (uint32_t slot = ctx_->order_head; slot != Context::kNoSlot;) {
    const uint32_t next = ctx_->order_next[slot];
    flexsc_entry* e = &ctx_->entries[slot];
    if (flexsc::detail::is_done(e)) {
      const long ret = e->ret;
      FiberControl* f = owner_[slot];
      owner_[slot] = nullptr;
      ctx_->seen(e);
      --in_flight_;
      ++n;
      if (f) {
        f->syscall_ret = ret;
        policy_->awakened(f);
      } else {
        readiness_done(ret);
      }
    }
    slot = next;
  }
  if (n) {
    counters_.harvests.fetch_add(1, std::memory_order_relaxed);
    counters_.harvested.fetch_add(n, std::memory_order_relaxed);
  }
  for (unsigned k = ctx_->free_count; k > 0 && !entry_waiters_.empty(); --k) {
    policy_->awakened(entry_waiters_.back());
    entry_waiters_.pop_back();
  }
}

// True if some entry is DONE (idle waits; walks until the first one).
// No reap here: inside Runtime::wait_for the wait reaps itself, and a
// nested enter()/leave() would mark us outside the runtime while we wait.
bool Scheduler::any_done() {
  for (uint32_t slot = ctx_->order_head; slot != Context::kNoSlot; slot = ctx_->order_next[slot])
    if (flexsc::detail::is_done(&ctx_->entries[slot])) return true;
  return false;
}

// ---- readiness ------------------------------------------------------------

// Exception-less: the epoll_wait is an entry like any other (a blocking
// one: the backend keeps it from stalling the rest).
void Scheduler::arm_readiness() {
  if (readiness_.armed || readiness_.epfd < 0) return;
  flexsc_entry* e = ctx_->get_entry();
  if (!e) return;  // the next harvest frees one
  flexsc_prep(e, SYS_epoll_wait, readiness_.epfd, reinterpret_cast<long>(readiness_.events),
              Readiness::kEvents, -1, 0, 0);
  owner_[ctx_->index_of(e)] = nullptr;
  readiness_.armed = true;
  ++in_flight_;
  submit();
}

void Scheduler::readiness_done(long ret) {
  readiness_.armed = false;
  dispatch_events(ret);
}

void Scheduler::dispatch_events(long n) {
  for (long i = 0; i < n; ++i) {
    const epoll_event& ev = readiness_.events[i];
    if (ev.data.fd == -1) {
      uint64_t v;
      raw_syscall6(SYS_read, wake_fd_, reinterpret_cast<long>(&v), sizeof v, 0, 0, 0);
      continue;
    }
    fd_table().on_event(ev.data.fd, ev.events);
  }
  // Fibers of this scheduler woken above went to its inbox.
  take_inbox();
}

// Synchronous: the scheduler asks epoll itself (timeout_ms 0: a poll).
void Scheduler::poll_readiness(int timeout_ms) {
  const long n = raw_syscall6(SYS_epoll_wait, readiness_.epfd, reinterpret_cast<long>(readiness_.events),
                              Readiness::kEvents, timeout_ms, 0, 0);
  dispatch_events(n);
}

// ---- idle -----------------------------------------------------------------

void Scheduler::share_work() {
  if (policy_->ready_count() < 2) return;
  Scheduler* to = pool_->find_hungry(this);
  if (!to) return;
  FiberRef moved[kShedMax];
  const std::size_t n = policy_->shed(moved, std::min(kShedMax, policy_->ready_count() / 2));
  for (std::size_t i = 0; i < n; ++i) {
    moved[i]->home.store(to, std::memory_order_relaxed);
    to->inbox_.push(moved[i]);
  }
  to->counters_.migrated_in.fetch_add(n, std::memory_order_relaxed);
  to->notify();
}

bool Scheduler::has_events() {
  if (posts_.load(std::memory_order_seq_cst) != seen_posts_) return true;
  if (in_flight_ && any_done()) return true;
  return false;
}

void Scheduler::set_hungry(bool hungry) {
  if (pool_->size() < 2 || !pool_->options().migrate) return;
  bool expected = !hungry;
  if (hungry_.compare_exchange_strong(expected, hungry, std::memory_order_acq_rel))
    pool_->hungry_count().fetch_add(hungry ? 1 : -1, std::memory_order_acq_rel);
}

// A posted epoll_wait nobody waits on any more: interrupt it, so it gives
// its syscall thread back and the idle wait need not stay in the runtime.
void Scheduler::disarm_readiness() {
  if (!readiness_.armed || readiness_.waiters.load(std::memory_order_acquire) > 0) return;
  kick_epoll();
}

void Scheduler::idle_wait() {
  set_hungry(true);
  disarm_readiness();
  uint64_t deadline = timers_.empty() ? 0 : timers_.top().deadline;
  if (!pollers_.empty()) {
    const uint64_t tick = now_ns() + kPollerTickNs;
    deadline = deadline ? std::min(deadline, tick) : tick;
  }
  counters_.idle_waits.fetch_add(1, std::memory_order_relaxed);
  const bool sync_readiness =
      !posts_syscalls() && !readiness_.armed && readiness_.waiters.load(std::memory_order_acquire) > 0;
  if (sync_readiness) {
    sleeping_.store(kSleepEpoll, std::memory_order_seq_cst);
    if (!has_events()) {
      int timeout_ms = -1;
      if (deadline) {
        const uint64_t now = now_ns();
        timeout_ms = deadline > now ? static_cast<int>((deadline - now + 999'999) / 1'000'000) : 0;
      }
      poll_readiness(timeout_ms);
    }
  } else if (in_flight_ && !runtime_gone_) {
    // Entries in flight: FlexSC's flexsc_wait, through the backend.
    sleeping_.store(kSleepCtx, std::memory_order_seq_cst);
    if (flexsc::detail::Runtime* rt = flexsc::detail::enter(ctx_)) {
      rt->wait_for(
          ctx_, [](void* s) { return static_cast<Scheduler*>(s)->has_events(); }, this, deadline);
      flexsc::detail::leave(ctx_);
    }
    force_harvest_ = true;
  } else {
    // Nothing in flight: a futex on the context's word (wake_owner's kind),
    // outside the runtime, so its shutdown never waits for us.
    sleeping_.store(kSleepCtx, std::memory_order_seq_cst);
    ctx_->waiting.store(flexsc::detail::kParkedFutex, std::memory_order_seq_cst);
    if (!has_events() && !stop_.load(std::memory_order_seq_cst)) {
      uint64_t timeout = 0;
      if (deadline) {
        const uint64_t now = now_ns();
        timeout = deadline > now ? deadline - now : 1;
      }
      futex_wait(&ctx_->waiting, flexsc::detail::kParkedFutex, timeout);
    }
    ctx_->waiting.store(0, std::memory_order_relaxed);
  }
  sleeping_.store(kAwake, std::memory_order_seq_cst);
  set_hungry(false);
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.switches = counters_.switches.load(std::memory_order_relaxed);
  s.syscalls_posted = counters_.posted.load(std::memory_order_relaxed);
  s.syscalls_on_caller = counters_.on_caller.load(std::memory_order_relaxed);
  s.harvests = counters_.harvests.load(std::memory_order_relaxed);
  s.harvested = counters_.harvested.load(std::memory_order_relaxed);
  s.submits = counters_.submits.load(std::memory_order_relaxed);
  s.idle_waits = counters_.idle_waits.load(std::memory_order_relaxed);
  s.readiness_waits = counters_.readiness_waits.load(std::memory_order_relaxed);
  s.migrated_in = counters_.migrated_in.load(std::memory_order_relaxed);
  s.cpu = cpu_;
  return s;
}

// ---- a fiber's life -------------------------------------------------------

void finish(FiberControl* f) {
  for (auto& [value, destroy] : f->fls)
    if (value && destroy) destroy(value);
  f->fls.clear();
  bool detached;
  {
    std::lock_guard lock(f->end_mutex);
    f->finished = true;
    detached = f->detached;
    f->joiners.wake_all();
  }
  if (detached && f->error) report_uncaught(f->id, f->error);
}

[[noreturn]] void report_uncaught(uint64_t id, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flexsc: detached fiber %llu ended with an uncaught exception: %s\n",
                 static_cast<unsigned long long>(id), e.what());
  } catch (...) {
    std::fprintf(stderr, "flexsc: detached fiber %llu ended with an uncaught exception\n",
                 static_cast<unsigned long long>(id));
  }
  std::terminate();
}

namespace {

void fiber_main(fc::transfer_t t) {
  FiberControl* f = t_fiber;
  arrive(f->exec, t);
  try {
    f->fn();
  } catch (...) {
    f->error = std::current_exception();
  }
  end_running_fiber();
}

}  // namespace

const void* fiber_entry_function() {
  return reinterpret_cast<const void*>(&fiber_main);
}

void end_running_fiber() {
  FiberControl* f = t_fiber;
  f->fn = nullptr;  // its captures die here, on the fiber
  finish(f);
  current_scheduler()->exit_running();
}

void forget_borrowed_locals() {
  t_scheduler = nullptr;
  t_fiber = nullptr;
  flexsc::detail::t_fiber_syscalls = nullptr;
  set_running_stack(nullptr, 0);
}

void make_ready(FiberControl* f) {
  f->home.load(std::memory_order_acquire)->enqueue(f);
}

void suspend_parked() {
  current_scheduler()->park_running();
}

void suspend_parked_until(uint64_t seq, uint64_t deadline_ns) {
  current_scheduler()->park_running_until(seq, deadline_ns);
}

bool Waiter::wake() {
  if (fiber) {
    if (!fiber->claim_wake(seq)) return false;
    woken = true;
    make_ready(fiber);
    return true;
  }
  uint32_t expected = 0;
  if (!signaled.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return false;
  woken = true;
  futex_wake(&signaled, 1);
  return true;
}

}  // namespace flexsc::fiber::detail
