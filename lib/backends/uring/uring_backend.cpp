#include "backends/uring/uring_backend.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "backends/syscall_threads/syscall_threads.h"
#include "base/context.h"
#include "base/mapping.h"
#include "base/process.h"
#include "base/thread_state.h"

namespace flexsc::detail {
namespace {

static_assert(sizeof(io_uring_sqe) == 64, "Context::submit_lines counts 64-byte lines");
constexpr uint64_t kWakeTag = UINT64_MAX;  // user_data of the owner's wake-up read
// Rings are no larger than this: a context with more entries in flight
// queues the rest (the backlog) and feeds them in as completions make room.
// Large enough for a fiber scheduler's sockets to wait in it by hundreds.
constexpr unsigned kMaxRingEntries = 1024;
// Without SQPOLL, io_uring finishes a call that had to wait (a read on an
// empty pipe) in the submitting thread, as task work; by default it
// interrupts that thread to do so, and a blocking syscall the thread is
// making meanwhile, outside flexsc, fails with EINTR.  Deferred task work
// runs only when the submitter enters the ring (reaping, waiting), which
// also binds the ring to that one thread (SINGLE_ISSUER).  Linux 6.1.
constexpr unsigned kOwnerRunsCompletions =
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
// Completions whose lines a submit asks for ahead of the next reap.
constexpr unsigned kPrefetchCqes = 32;
// Shutdown gives operations that ignore cancellation this long.
constexpr uint64_t kCancelGiveUpNs = 2'000'000'000;

// liburing maps and unmaps rings with system calls of its own, which the
// sanitizers do not see.  To ThreadSanitizer a ring mapped where another
// thread's old one was looks like memory written by two threads without
// synchronization (the kernel orders the old unmap before the new map:
// these say so); to AddressSanitizer it may still carry stale poison
// (base/mapping.h).  Nothing in other builds.
#if defined(__SANITIZE_THREAD__)
char g_ring_memory;  // only a synchronization object for ThreadSanitizer
void ring_memory_unmapping() {
  __tsan_release(&g_ring_memory);
}
void ring_memory_mapped(const io_uring&) {
  __tsan_acquire(&g_ring_memory);
}
#else
void ring_memory_unmapping() {}
void ring_memory_mapped(const io_uring& ring) {
  declare_clean(ring.sq.ring_ptr, ring.sq.ring_sz);
  declare_clean(ring.cq.ring_ptr, ring.cq.ring_sz);
  declare_clean(ring.sq.sqes, ring.sq.ring_entries * sizeof(io_uring_sqe));
}
#endif

// A context's ring and the state of its entries in it.  Touched by the
// owner inside the API, or by shutdown once the owner has left; the
// counts shutdown reads while the owner may be inside are atomics.
struct ContextRing final : BackendState {
  io_uring ring{};
  std::vector<RingOp> ops;        // by slot
  std::vector<uint32_t> backlog;  // FIFO of slots waiting for room in the ring
  unsigned backlog_head = 0;
  std::atomic<unsigned> backlog_count{0};
  std::atomic<unsigned> in_ring{0};  // operations submitted and not yet reaped
  unsigned max_in_ring = 0;          // the completion queue's size, less the wake-up read
  bool ring_ok = false;
  bool sqpoll = false;
  uint64_t owner = 0;        // without SQPOLL: thread_token() of the only thread that may submit and reap
  bool cancel_sent = false;  // without SQPOLL: the owner has cancelled at shutdown
  std::atomic<bool> unsubmitted{false};  // SQEs written since the last io_uring_submit
  unsigned sq_room = 0;                  // free SQEs seen at the last look at the kernel's head
  bool wake_armed = false;
  uint64_t wake_value = 0;
  int wake_fd = -1;
  std::atomic<uint64_t> cancel_started{0};  // shutdown cancels (now_ns() when it began)
  // Reaping: the owner's, or, at shutdown, that of the thread the ring
  // belongs to (without SQPOLL) while another thread waits on the context.
  // Only ever tried, never waited for; released by a plain store, not a
  // locked instruction, so the reaper does not stall until its store to
  // the CQ head (a line the kernel reads) has left the core.
  std::atomic<bool> reaping{false};

  ~ContextRing() override {
    // Only a ring that was set up: liburing would close ring_fd (0) otherwise.
    if (ring_ok) {
      ring_memory_unmapping();
      io_uring_queue_exit(&ring);
    }
    if (wake_fd >= 0) close(wake_fd);
  }
};

ContextRing* ring_of(Context* ctx) {
  return static_cast<ContextRing*>(ctx->backend_state.get());
}

// Tells get_entry which SQE the next prepared entry will most likely fill
// (a hint: the backlog or syscall threads may take it instead).
void point_submit_lines(Context* ctx, const ContextRing* r) {
  const io_uring_sq& sq = r->ring.sq;
  ctx->submit_lines.mask.store(sq.ring_mask, std::memory_order_relaxed);
  ctx->submit_lines.next.store(sq.sqe_tail, std::memory_order_relaxed);
  ctx->submit_lines.base.store(reinterpret_cast<char*>(sq.sqes), std::memory_order_relaxed);
}

void forget_submit_lines(Context* ctx) {
  ctx->submit_lines.base.store(nullptr, std::memory_order_relaxed);
}

// Asks for the lines of count completions from head on: the kernel wrote
// them on the syscall core, and fetched together their misses overlap
// instead of coming one after another.
void prefetch_cqes(const io_uring_cq& cq, unsigned head, unsigned count) {
  for (unsigned i = 0; i < count; i += 64 / sizeof(io_uring_cqe))
    __builtin_prefetch(&cq.cqes[(head + i) & cq.ring_mask]);
}

unsigned ring_size_for(unsigned capacity) {
  unsigned n = 8;
  while (n < capacity && n < kMaxRingEntries) n *= 2;
  return n;
}

// An idle submission thread gives its core back after this long (the
// kernel counts whole milliseconds).
unsigned sq_idle_ms(const Config& cfg) {
  return static_cast<unsigned>(std::max<uint64_t>(1, cfg.drain_spin_ns / 1'000'000));
}

cpu_set_t cpu_set_of(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  return set;
}

// An SQE to fill, or nullptr when the submission queue is full (or, for
// an operation, when the completion queue could not take one more).  The
// kernel's SQ head, a line its submission thread writes, is read only
// when the room seen last is used up.
io_uring_sqe* next_sqe(ContextRing* r, bool operation = true) {
  if (operation && r->in_ring.load(std::memory_order_relaxed) >= r->max_in_ring) return nullptr;
  if (r->sq_room == 0 && (r->sq_room = io_uring_sq_space_left(&r->ring)) == 0) return nullptr;
  --r->sq_room;
  io_uring_sq& sq = r->ring.sq;
  return &sq.sqes[sq.sqe_tail++ & sq.ring_mask];
}

void fill(Context* ctx, ContextRing* r, uint32_t slot, io_uring_sqe* sqe) {
  prep_sqe(ctx->entries[slot], r->ops[slot], sqe);
  io_uring_sqe_set_data64(sqe, slot);
  r->ops[slot].in_ring = true;
  r->in_ring.store(r->in_ring.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  r->unsubmitted.store(true, std::memory_order_relaxed);
}

// Puts an entry into the ring, or at the end of the backlog when the ring
// is full (or others wait already: entries enter in submission order).
void queue(Context* ctx, ContextRing* r, uint32_t slot) {
  const unsigned n = r->backlog_count.load(std::memory_order_relaxed);
  if (n == 0) {
    if (io_uring_sqe* sqe = next_sqe(r)) {
      fill(ctx, r, slot, sqe);
      return;
    }
  }
  r->backlog[(r->backlog_head + n) % r->backlog.size()] = slot;
  r->backlog_count.store(n + 1, std::memory_order_relaxed);
  ctx->stats.ring_backlog.add();
}

// A number no other thread of the process ever has (thread ids are
// reused once a thread has exited).
uint64_t thread_token() {
  static std::atomic<uint64_t> next{1};
  thread_local const uint64_t token = next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

// Without SQPOLL only the thread that made the ring may submit to it or
// run its completions.
bool owns(const ContextRing* r) {
  return r->sqpoll || r->owner == thread_token();
}

// Operations in the kernel, or waiting for room to go there.
bool busy(const ContextRing* r) {
  return r->in_ring.load(std::memory_order_relaxed) || r->backlog_count.load(std::memory_order_relaxed);
}

bool cancelling(const ContextRing* r) {
  return r->cancel_started.load(std::memory_order_relaxed) != 0;
}

// Moves backlogged entries into the ring while it has room; during
// shutdown, cancels them instead (they never started).
void refill(Context* ctx, ContextRing* r) {
  unsigned n = r->backlog_count.load(std::memory_order_relaxed);
  while (n) {
    const uint32_t slot = r->backlog[r->backlog_head];
    if (!cancelling(r)) {
      io_uring_sqe* sqe = next_sqe(r);
      if (!sqe) break;
      fill(ctx, r, slot, sqe);
    } else {
      set_done(&ctx->entries[slot], -ECANCELED);
      ctx->stats.ring_cancelled.add();
    }
    r->backlog_head = (r->backlog_head + 1) % static_cast<unsigned>(r->backlog.size());
    r->backlog_count.store(--n, std::memory_order_relaxed);
  }
}

// Hands new SQEs to the kernel.  In SQPOLL mode that publishes the tail
// and enters the kernel only to wake a sleeping submission thread;
// otherwise SQEs the kernel refuses for now (-EBUSY, -EAGAIN) stay in the
// submission queue for the next flush.  Nothing new, nothing done: a
// waiter reaping in a loop reads no line the kernel writes but the CQ tail.
void flush(ContextRing* r) {
  if (!r->unsubmitted.load(std::memory_order_relaxed)) return;
  io_uring_submit(&r->ring);
  r->unsubmitted.store(!r->sqpoll && io_uring_sq_ready(&r->ring) > 0, std::memory_order_relaxed);
}

// One completion: the entry is done, goes into the ring again, or to the
// syscall threads (returns true then: the caller hands it over).
bool complete(Context* ctx, ContextRing* r, uint32_t slot, int res, bool sqpoll) {
  RingOp& op = r->ops[slot];
  flexsc_entry* e = &ctx->entries[slot];
  op.in_ring = false;
  r->in_ring.store(r->in_ring.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  long ret = res;
  bool reran = false;
  // The common case, a call done in one go, needs no fixing up.
  const bool as_is = op.fix == RingOp::Fix::Plain ||
                     (op.fix == RingOp::Fix::Transfer && res >= 0 && static_cast<uint64_t>(res) == op.full);
  const uint64_t done_before = op.done;
  switch (as_is ? Next::Done : finish(*e, &op, res, sqpoll, &ret, &reran)) {
    case Next::Done:
      break;
    case Next::Retry:
      if (op.done != done_before)
        ctx->stats.ring_splits.add();
      else
        ctx->stats.ring_retries.add();
      if (!cancelling(r)) {
        // Only the ring's thread flushes it: another one (a context handed
        // over) gives an untouched call to the syscall threads.
        if (!owns(r) && op.done == 0) return true;
        queue(ctx, r, slot);
        return false;
      }
      ret = op.done ? static_cast<long>(op.done) : -ECANCELED;
      break;
    case Next::ToThreads:
      if (!cancelling(r)) return true;
      ret = -ECANCELED;
      break;
  }
  if (reran) ctx->stats.ring_reruns.add();
  if (op.rest_iov) {
    op.rest_iov.reset();
    op.rest_msg.reset();
  }
  if (e->flags & FLEXSC_ENTRY_NOP)
    ctx->stats.ring_nops.add();
  else
    ctx->stats.ring_calls[e->nr].add();
  if (ret == -ECANCELED && cancelling(r)) ctx->stats.ring_cancelled.add();
  set_done(e, ret);
  return false;
}

void cancel_all(ContextRing* r) {
  io_uring_sync_cancel_reg reg{};
  reg.flags = IORING_ASYNC_CANCEL_ANY;
  reg.timeout = {0, 1'000'000};
  io_uring_register_sync_cancel(&r->ring, &reg);
}

// Shutdown, when the kernel has not given operations back in time: they
// complete with -ECANCELED (the ring's teardown cancels them for good).
void abandon(Context* ctx, ContextRing* r) {
  for (uint32_t slot = 0; slot < r->ops.size(); ++slot) {
    if (!r->ops[slot].in_ring) continue;
    r->ops[slot].in_ring = false;
    set_done(&ctx->entries[slot], -ECANCELED);
    ctx->stats.ring_cancelled.add();
  }
  r->in_ring.store(0, std::memory_order_relaxed);
}

}  // namespace

int UringBackend::create(const Config& cfg, bool sqpoll, std::unique_ptr<Backend>* out, std::string* error) {
  std::unique_ptr<UringBackend> b(new UringBackend());
  b->cfg_ = cfg;
  b->sqpoll_ = sqpoll;
  // Probes on a thread of their own: tearing down a ring the caller made
  // or entered would later interrupt one of the caller's own blocking
  // syscalls (the kernel's exit work reaches that thread as task work).
  int rc = 0;
  std::thread([&] {
    ++t_runtime_depth;  // flexsc's own thread
    if ((rc = probe_io_uring(&b->support_, error)) < 0 || sqpoll) return;
    io_uring probe;
    io_uring_params p{};
    p.flags = kOwnerRunsCompletions;
    if ((rc = io_uring_queue_init_params(2, &probe, &p)) < 0) {
      *error =
          "io_uring without SQPOLL needs IORING_SETUP_DEFER_TASKRUN (Linux 6.1), so completions do not "
          "interrupt the caller's own system calls: " +
          std::string(std::strerror(-rc));
      return;
    }
    io_uring_queue_exit(&probe);
  }).join();
  if (rc < 0) return rc;
  // With SQPOLL the kernel's submission thread already polls the syscall
  // core.  Syscall threads that spun there as long as usual would take
  // turns with it, each holding the core for a scheduler slice while the
  // other has the work (a loop mixing ring and thread calls took 170 us
  // a round, 50 us with this): they spin only briefly, enough for
  // back-to-back calls.
  Config threads_cfg = cfg;
  if (sqpoll) threads_cfg.drain_spin_ns = std::min<uint64_t>(cfg.drain_spin_ns, 5'000);
  if ((rc = SyscallThreads::create(threads_cfg, &b->threads_, error)) < 0) return rc;
  if (sqpoll) {
    const Placement& pl = b->threads_->placement();
    for (const auto& core : pl.syscall_cores) {
      auto anchor = std::make_unique<io_uring>();
      io_uring_params p{};
      p.flags = IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF;
      p.sq_thread_cpu = static_cast<unsigned>(core.cpus.front());
      p.sq_thread_idle = sq_idle_ms(cfg);
      if ((rc = io_uring_queue_init_params(4, anchor.get(), &p)) < 0) {
        *error = std::string("io_uring SQPOLL is not available: ") + std::strerror(-rc);
        b->threads_->stop();
        return rc;
      }
      anchor->ring_fd = anchor->enter_ring_fd = move_fd_high(anchor->ring_fd);
      // The kernel's workers for calls that block run on the syscall core too.
      cpu_set_t set = cpu_set_of(core.cpus);
      io_uring_register_iowq_aff(anchor.get(), sizeof set, &set);
      b->anchors_.push_back(std::move(anchor));
    }
  }
  *out = std::move(b);
  return 0;
}

UringBackend::~UringBackend() {
  for (auto& a : anchors_) io_uring_queue_exit(a.get());
}

// A waiting call keeps its place in the ring: half the ring stays free for
// the calls that complete at once (a send behind waiting receives).
unsigned UringBackend::socket_waits_without_thread(const Context* ctx) const {
  return ring_size_for(ctx->capacity) / 2;
}

void UringBackend::bind(Context* ctx) {
  threads_->bind(ctx);
  unbind(ctx);
  make_ring(ctx);
}

void UringBackend::context_gone(Context* ctx) {
  pool(ctx);
}

// Keeps ctx's ring, idle, for a later context (of its thread, without
// SQPOLL); tears it down when it is busy or the pool is full.
void UringBackend::pool(Context* ctx) {
  ContextRing* r = ring_of(ctx);
  constexpr size_t kMaxPooled = 64;
  if (r && !busy(r)) {
    std::lock_guard lock(pool_mutex_);
    if (pool_.size() < kMaxPooled) {
      ctx->reaps.store(false, std::memory_order_relaxed);
      ctx->wake_target.store(kNoWakeTarget, std::memory_order_relaxed);
      forget_submit_lines(ctx);
      pool_.push_back(std::move(ctx->backend_state));
      return;
    }
  }
  unbind(ctx);
}

// A pooled ring of the right size this thread may use, made ready for ctx.
bool UringBackend::reuse_ring(Context* ctx, unsigned size) {
  std::unique_ptr<BackendState> found;
  {
    std::lock_guard lock(pool_mutex_);
    for (auto it = pool_.begin(); it != pool_.end(); ++it) {
      auto* r = static_cast<ContextRing*>(it->get());
      if (r->ring.sq.ring_entries == size && owns(r)) {
        found = std::move(*it);
        pool_.erase(it);
        break;
      }
    }
  }
  if (!found) return false;
  auto* r = static_cast<ContextRing*>(found.get());
  r->ops.clear();
  r->ops.resize(ctx->capacity);
  r->backlog.assign(ctx->capacity, 0);
  r->backlog_head = 0;
  ctx->wake_target.store(wake_target_of(park_kind_, static_cast<uint32_t>(r->wake_fd)),
                         std::memory_order_relaxed);
  point_submit_lines(ctx, r);
  ctx->backend_state = std::move(found);
  ctx->reaps.store(true, std::memory_order_release);
  return true;
}

void UringBackend::make_ring(Context* ctx) {
  const unsigned size = ring_size_for(ctx->capacity);
  if (reuse_ring(ctx, size)) return;
  auto r = std::make_unique<ContextRing>();
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  p.cq_entries = size * 2;
  if (sqpoll_) {
    p.flags |= IORING_SETUP_SQPOLL | IORING_SETUP_ATTACH_WQ;
    p.wq_fd = static_cast<unsigned>(anchors_[ctx->core->index]->ring_fd);
    p.sq_thread_idle = sq_idle_ms(cfg_);
  } else {
    p.flags |= kOwnerRunsCompletions;
  }
  int rc = io_uring_queue_init_params(size, &r->ring, &p);
  if (rc == -EINVAL) {  // a kernel before 5.18 knows no SUBMIT_ALL
    p.flags &= ~IORING_SETUP_SUBMIT_ALL;
    rc = io_uring_queue_init_params(size, &r->ring, &p);
  }
  if (rc < 0) return;  // no ring (descriptors or memory exhausted): syscall threads run everything
  ring_memory_mapped(r->ring);
  r->ring_ok = true;
  r->ring.ring_fd = r->ring.enter_ring_fd = move_fd_high(r->ring.ring_fd);
  r->wake_fd = eventfd(0, EFD_CLOEXEC);
  if (r->wake_fd < 0) return;
  r->wake_fd = move_fd_high(r->wake_fd);
  if (!sqpoll_) {
    // The owner's io-wq workers (calls that must block) run on the syscall core.
    cpu_set_t set = cpu_set_of(ctx->core->cpus);
    io_uring_register_iowq_aff(&r->ring, sizeof set, &set);
  }
  r->max_in_ring = p.cq_entries - 1;
  r->sqpoll = sqpoll_;
  r->owner = thread_token();
  r->ops.resize(ctx->capacity);
  r->backlog.resize(ctx->capacity);
  ctx->wake_target.store(wake_target_of(park_kind_, static_cast<uint32_t>(r->wake_fd)),
                         std::memory_order_relaxed);
  point_submit_lines(ctx, r.get());
  ctx->backend_state = std::move(r);
  ctx->reaps.store(true, std::memory_order_release);
}

void UringBackend::unbind(Context* ctx) {
  ctx->reaps.store(false, std::memory_order_relaxed);
  ctx->wake_target.store(kNoWakeTarget, std::memory_order_relaxed);
  forget_submit_lines(ctx);
  ctx->backend_state.reset();
}

void UringBackend::submit(Context* ctx, uint32_t* slots, unsigned count) {
  ContextRing* r = ring_of(ctx);
  if (r && !owns(r)) {
    // The context changed hands.  Its ring is bound to the thread that
    // made it: a new one once the old one is idle; until then, threads.
    if (!busy(r) && ctx->in_flight_count() == count) {  // nothing but this batch
      pool(ctx);                                        // for its thread, should it come back
      make_ring(ctx);
    }
    r = ring_of(ctx);
    if (r && !owns(r)) r = nullptr;
  }
  if (!r) {
    threads_->submit(ctx, slots, count);
    return;
  }
  // The SQE lines were last read by the kernel, on the syscall core: ask
  // for them all at once, so their transfers overlap instead of stalling
  // the first store of each SQE in turn.
  const io_uring_sq& sq = r->ring.sq;
  for (unsigned i = 0; i < count && i < sq.ring_entries; ++i)
    prefetch_for_write(&sq.sqes[(sq.sqe_tail + i) & sq.ring_mask]);
  unsigned rest = 0;
  FdKinds kinds;
  for (unsigned i = 0; i < count; ++i) {
    const uint32_t slot = slots[i] & ~Context::kSqBlocking;
    if (map_entry(support_, ctx->entries[slot], &r->ops[slot], &kinds))
      queue(ctx, r, slot);
    else
      slots[rest++] = slots[i];
  }
  if (rest) threads_->submit(ctx, slots, rest);
  flush(r);
  point_submit_lines(ctx, r);
  // The next reap reads the CQ tail and the oldest completions, lines
  // written on the syscall core: have them on the way.
  if (const unsigned in_ring = r->in_ring.load(std::memory_order_relaxed)) {
    __builtin_prefetch(r->ring.cq.ktail);
    prefetch_cqes(r->ring.cq, *r->ring.cq.khead, std::min(in_ring, kPrefetchCqes));
  }
}

bool UringBackend::reap(Context* ctx) {
  ContextRing* r = ring_of(ctx);
  if (!r) return false;
  // Nothing new, nothing to do: a waiter polling here takes no lock.
  const bool taskrun = !r->sqpoll && (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN);
  if (!io_uring_cq_ready(&r->ring) && !taskrun && !r->backlog_count.load(std::memory_order_relaxed) &&
      !r->unsubmitted.load(std::memory_order_relaxed) && !cancelling(r))
    return false;
  if (r->reaping.exchange(true, std::memory_order_acquire)) return false;
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag.store(false, std::memory_order_release); }
  } release{r->reaping};
  const bool owner = owns(r);
  if (owner && !r->sqpoll) {
    if (cancelling(r) && !r->cancel_sent) {
      r->cancel_sent = true;
      cancel_all(r);
    }
    // Completions that waited (deferred task work) are run by the owner.
    if (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN) io_uring_get_events(&r->ring);
  }
  unsigned n = 0, handed = 0;
  uint32_t to_threads[64];
  // The completions there are now, by one look at the CQ tail: the kernel
  // keeps writing that line while it completes more, and every further
  // look would wait for it to come back.
  const io_uring_cq& cq = r->ring.cq;
  const unsigned head = *cq.khead;
  const unsigned ready = io_uring_smp_load_acquire(cq.ktail) - head;
  prefetch_cqes(cq, head, ready);
  while (n < ready && handed < std::size(to_threads)) {
    const io_uring_cqe* cqe = &cq.cqes[(head + n++) & cq.ring_mask];
    const uint32_t slot = static_cast<uint32_t>(cqe->user_data);
    if (cqe->user_data == kWakeTag)
      r->wake_armed = false;
    else if (complete(ctx, r, slot, cqe->res, sqpoll_))
      to_threads[handed++] = slot | (ctx->entries[slot].flags & kEntryBlocking ? Context::kSqBlocking : 0);
  }
  if (n) io_uring_cq_advance(&r->ring, n);
  if (handed) threads_->submit(ctx, to_threads, handed);
  if (cancelling(r) && now_ns() - r->cancel_started.load(std::memory_order_relaxed) > kCancelGiveUpNs)
    abandon(ctx, r);
  if (owner) {
    refill(ctx, r);
    flush(r);
    point_submit_lines(ctx, r);
  }
  return n > 0;
}

uint32_t UringBackend::prepare_park(Context* ctx) {
  ContextRing* r = ring_of(ctx);
  if (!r || !owns(r) || !busy(r) || park_kind_ == kParkedFutex) return kParkedFutex;
  // Completions by syscall threads must wake a wait in the ring: they
  // write the eventfd this read waits on.
  if (!r->wake_armed) {
    if (io_uring_sqe* sqe = next_sqe(r, false)) {
      prep_wake_read(sqe, r->wake_fd, &r->wake_value);
      io_uring_sqe_set_data64(sqe, kWakeTag);
      r->wake_armed = true;
      r->unsubmitted.store(true, std::memory_order_relaxed);
    }
  }
  return park_kind_;
}

// Wakes an owner parked in its ring: the payload is the eventfd its wait reads.
void UringBackend::wake_ring(uint64_t payload) {
  const uint64_t one = 1;
  raw_syscall6(SYS_write, static_cast<long>(payload), reinterpret_cast<long>(&one), sizeof one, 0, 0, 0);
}

void UringBackend::park(Context* ctx, uint32_t how, uint64_t timeout_ns, const flexsc_entry* target) {
  ContextRing* r = ring_of(ctx);
  if (how != park_kind_ || how == kParkedFutex || !r) {
    Backend::park(ctx, how, timeout_ns, target);
    return;
  }
  __kernel_timespec ts{static_cast<long long>(timeout_ns / 1'000'000'000),
                       static_cast<long long>(timeout_ns % 1'000'000'000)};
  io_uring_cqe* cqe;
  io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, nullptr);
  r->unsubmitted.store(!r->sqpoll && io_uring_sq_ready(&r->ring) > 0, std::memory_order_relaxed);
}

// An operation in the ring is cancelled by its user_data (its slot); it
// completes with -ECANCELED, which the owner reports as -EINTR.  A call
// syscall threads run is theirs to interrupt.
bool UringBackend::interrupt(Context* ctx, flexsc_entry* e) {
  ContextRing* r = ring_of(ctx);
  const uint32_t slot = ctx->index_of(e);
  if (!(e->flags & kEntryBlocking)) return true;  // cannot wait: it completes
  if (!r || !owns(r) || slot >= r->ops.size() || !r->ops[slot].in_ring) return threads_->interrupt(ctx, e);
  io_uring_sync_cancel_reg reg{};
  reg.addr = slot;
  reg.timeout = {0, 1'000'000};
  io_uring_register_sync_cancel(&r->ring, &reg);
  return true;
}

bool UringBackend::cancel_ops(Context* ctx, bool owner_outside) {
  ContextRing* r = ring_of(ctx);
  if (!r) return false;
  uint64_t expected = 0;
  r->cancel_started.compare_exchange_strong(expected, now_ns(), std::memory_order_relaxed);
  if (!r->sqpoll) {
    // Only the thread the ring belongs to may cancel or run completions:
    // this one (a context submitted here and waited for elsewhere), or the
    // owner, woken to do it in its reap.  For an owner outside the API,
    // what is in the kernel is given up (the ring's teardown cancels it).
    if (owns(r)) {
      reap(ctx);
    } else if (!owner_outside) {
      wake_owner(ctx);
    }
    if (owns(r) || !owner_outside) return busy(r);
    abandon(ctx, r);
    refill(ctx, r);
    return false;
  }
  // Synchronous cancellation touches no ring memory, so it is safe while
  // the owner reaps.  Operations not yet consumed by the submission thread
  // are met on a later round.
  if (r->in_ring.load(std::memory_order_relaxed)) cancel_all(r);
  if (owner_outside) reap(ctx);
  return busy(r);
}

uint64_t UringBackend::progress_mark(Context* ctx) const {
  return threads_->progress_mark(ctx);
}

void UringBackend::before_park(Context* ctx, uint64_t since, uint64_t waited_ns) {
  threads_->before_park(ctx, since, waited_ns);
}

void UringBackend::stop() {
  threads_->stop();
}

void UringBackend::collect(StatsTotals* totals) const {
  threads_->collect(totals);
}

const Placement& UringBackend::placement() const {
  return threads_->placement();
}

void UringBackend::wait_begin(Context* ctx) {
  threads_->wait_begin(ctx);
}

void UringBackend::forget_threads() {
  threads_->forget_threads();
}

}  // namespace flexsc::detail
