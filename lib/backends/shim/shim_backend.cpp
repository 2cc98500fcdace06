#include "backends/shim/shim_backend.h"

#include <fcntl.h>
#include <hwloc.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/classify.h"
#include "base/context.h"
#include "base/mapping.h"
#include "base/process.h"
#include "base/raw_syscall.h"
#include "base/thread_state.h"

namespace flexsc::detail {
namespace {

// Serving threads started per syscall core: one serves, one is spare for
// when the first blocks in a call; more start when both are stuck.
constexpr unsigned kInitialServers = 2;
// A waiter whose entry nobody claimed for this long, while no server is
// ready, starts another server.
constexpr uint64_t kStuckNs = 10'000'000;
constexpr size_t kServerStack = 256 * 1024;

// The context's region at the shim.
struct ShimRegion final : BackendState {
  int fd = -1;
  uint32_t id = 0;
  ~ShimRegion() override {
    flexsc_shim_region r{0, 0, id};
    ioctl(fd, FLEXSC_IOC_UNREGISTER, &r);
  }
};

ShimRegion* region_of(Context* ctx) {
  return static_cast<ShimRegion*>(ctx->backend_state.get());
}

long shim_ioctl(int fd, unsigned long cmd, void* arg) {
  return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

// The control area, mapped once for the life of the process: contexts'
// waiters may still poll its completion word while a runtime stops.
void* control_area() {
  static void* const area = [] { return map_anonymous(FLEXSC_SHIM_CONTROL_PAGES * 4096); }();
  return area;
}

// The control area's completion word, as the atomic waiters poll.
const std::atomic<uint64_t>* completion_word(flexsc_shim_control* control) {
  static_assert(sizeof(std::atomic<uint64_t>) == sizeof(control->completed) &&
                std::atomic<uint64_t>::is_always_lock_free);
  return reinterpret_cast<const std::atomic<uint64_t>*>(&control->completed);
}

}  // namespace

int ShimBackend::create(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error) {
  std::unique_ptr<ShimBackend> b(new ShimBackend());
  b->cfg_ = cfg;
  const int fd = open(FLEXSC_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *error = std::string("the kernel shim is not available: " FLEXSC_SHIM_DEVICE ": ") +
             std::strerror(errno) + (errno == ENOENT ? " (load kernel-shim/flexsc_shim.ko)" : "");
    return -ENODEV;
  }
  b->fd_ = move_fd_high(fd);
  void* page = control_area();
  if (!page) {
    *error = "cannot map the shim's control page";
    return -ENOMEM;
  }
  std::memset(page, 0, FLEXSC_SHIM_CONTROL_PAGES * 4096);  // a fresh doorbell for this attachment
  b->control_ = static_cast<flexsc_shim_control*>(page);
  flexsc_shim_attach a{FLEXSC_SHIM_ABI, 0, reinterpret_cast<uint64_t>(page)};
  if (long rc = shim_ioctl(b->fd_, FLEXSC_IOC_ATTACH, &a); rc < 0) {
    *error = std::string("the kernel shim refuses this process: ") + std::strerror(static_cast<int>(-rc)) +
             (rc == -EPERM ? " (a seccomp filter is installed: offloaded calls would bypass it)" : "");
    return -ENODEV;
  }
  hwloc_topology_t topo = nullptr;
  int rc = load_topology(&topo, nullptr, {});
  if (rc < 0) {
    *error = "cannot read the CPU topology (hwloc)";
    return rc;
  }
  rc = plan_placement(topo, cfg.cores_forced ? &cfg.syscall_cpus : nullptr, &b->placement_, error);
  hwloc_topology_destroy(topo);
  if (rc < 0) return rc;
  b->stop_signal_.take();
  b->per_core_.assign(b->placement_.syscall_cores.size(), 0);
  for (unsigned core = 0; core < b->placement_.syscall_cores.size(); ++core) {
    for (unsigned i = 0; i < std::min(kInitialServers, cfg.max_syscall_threads); ++i) {
      if ((rc = b->spawn(core)) < 0) {
        *error = std::string("cannot start a serving thread: ") + std::strerror(-rc);
        b->stop();
        return rc;
      }
    }
  }
  *out = std::move(b);
  return 0;
}

ShimBackend::~ShimBackend() {
  stop();
  if (fd_ >= 0) close(fd_);
}

int ShimBackend::spawn(unsigned core) {
  std::lock_guard lock(servers_mutex_);
  if (per_core_[core] >= cfg_.max_syscall_threads || stopping_.load()) return -EAGAIN;
  std::lock_guard starting(thread_start_mutex());
  auto server = std::make_unique<Server>();
  server->backend = this;
  server->core = core;
  // Pinned from birth to its syscall core (single-core mode: left on the
  // user's CPUs); the shim opens only the stop signal.
  const auto& pc = placement_.syscall_cores[core];
  if (const int rc = start_runtime_thread(&server->handle, kServerStack, pc.shared ? nullptr : &pc.cpus,
                                          server_main, server.get());
      rc < 0)
    return rc;
  ++per_core_[core];
  spawned_.fetch_add(1, std::memory_order_relaxed);
  servers_.push_back(std::move(server));
  return 0;
}

void* ShimBackend::server_main(void* arg) {
  ++t_runtime_depth;  // flexsc's own thread: its libc calls are not the program's
  auto* self = static_cast<Server*>(arg);
  char name[16];
  // Syscall threads, as the thread backend's: in the kernel, serving.
  std::snprintf(name, sizeof name, "flexsc-sys/%d",
                self->backend->placement_.syscall_cores[self->core].cpus.front());
  pthread_setname_np(pthread_self(), name);
  self->backend->serve(self);
  self->exited.store(true, std::memory_order_release);
  return nullptr;
}

// Serves until the runtime stops.  SERVE comes back for a signal (the stop
// signal), for task work (entries it publishes on the next call) or for
// LEAVE; what is still pending at the end is published (interrupted calls
// complete with -ECANCELED once LEAVE was called).
void ShimBackend::serve(Server* self) {
  flexsc_shim_serve s{};
  s.cpu = -1;  // pinned already
  s.spin_ns = placement_.syscall_cores[self->core].shared ? 0 : cfg_.drain_spin_ns;
  s.stop_signal = static_cast<uint32_t>(stop_signal_.number());
  while (!stopping_.load(std::memory_order_acquire)) {
    const long rc = shim_ioctl(fd_, FLEXSC_IOC_SERVE, &s);
    if (rc == -ENOMEM) {
      // The module had no memory for this call: what it holds for this
      // thread is published only by this thread's next SERVE.
      usleep(1000);
      continue;
    }
    if (rc < 0 && rc != -EINTR) {
      std::fprintf(stderr, "flexsc: a shim serving thread stops: %s\n", std::strerror(static_cast<int>(-rc)));
      break;
    }
    if (s.reason == FLEXSC_SERVE_CALLER_SIGNAL && s.npending)
      forward_thread_signal(submitter_of(s.pending[s.npending - 1]));
    if (s.reason == FLEXSC_SERVE_LEAVE) break;
  }
  s.flags = FLEXSC_SERVE_PUBLISH_ONLY;
  for (int tries = 0; s.npending && tries < 1000; ++tries) shim_ioctl(fd_, FLEXSC_IOC_SERVE, &s);
}

// The thread that last submitted to the context holding the entry at addr.
int ShimBackend::submitter_of(uint64_t addr) {
  std::lock_guard lock(registry_mutex());
  for (Context* c = registry_head(); c; c = c->next) {
    const auto begin = reinterpret_cast<uint64_t>(c->entries);
    if (addr >= begin && addr < begin + uint64_t{c->capacity} * FLEXSC_ENTRY_SIZE)
      return c->submitter_tid.load(std::memory_order_relaxed);
  }
  return 0;
}

void ShimBackend::bind(Context* ctx) {
  ctx->core = nullptr;  // the thread backend's; servers here serve every context
  ctx->wait_spin_ns =
      placement_.syscall_cores[placement_.core_serving(sched_getcpu())].shared ? 0 : cfg_.wait_spin_ns;
  unbind(ctx);
  auto region = std::make_unique<ShimRegion>();
  region->fd = fd_;
  flexsc_shim_region r{reinterpret_cast<uint64_t>(ctx->entries), ctx->capacity / FLEXSC_ENTRIES_PER_PAGE, 0};
  if (shim_ioctl(fd_, FLEXSC_IOC_REGISTER, &r) < 0) return;  // no region: submit runs the calls on the caller
  region->id = r.id;
  ctx->backend_state = std::move(region);
  // The payload holds the descriptor in 24 bits: beyond (an nr_open past
  // 16M), owners woken by others wait out their park's timeout instead.
  if (fd_ < (1 << 24))
    ctx->wake_target.store(wake_target_of(park_kind_, uint64_t{static_cast<uint32_t>(fd_)} << 32 | r.id),
                           std::memory_order_release);
  ctx->progress.store(completion_word(control_), std::memory_order_release);
}

void ShimBackend::unbind(Context* ctx) {
  ctx->wake_target.store(kNoWakeTarget, std::memory_order_release);
  ctx->progress.store(&ctx->completed, std::memory_order_release);
  ctx->backend_state.reset();
}

void ShimBackend::submit(Context* ctx, uint32_t* slots, unsigned count) {
  if (!region_of(ctx)) {
    // The module could not take this context's pages (the locked-memory
    // limit, or regions exhausted): its calls run on the caller, as plain
    // syscalls, rather than fail.
    for (unsigned i = 0; i < count; ++i) {
      flexsc_entry* e = &ctx->entries[slots[i] & ~Context::kSqBlocking];
      ctx->stats.inline_calls.add();
      set_done(e, e->flags & FLEXSC_ENTRY_NOP ? 0
                                              : raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2],
                                                             e->args[3], e->args[4], e->args[5]));
    }
    return;
  }
  // The entries are SUBMITTED (release stores); the doorbell counts them
  // (servers claim no more than were counted per scan) and its full barrier
  // orders them before the look at the sleepers (shim.h).
  __atomic_fetch_add(&control_->posted, count, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&control_->ready, __ATOMIC_SEQ_CST) == 0) shim_ioctl(fd_, FLEXSC_IOC_WAKE, nullptr);
}

// Wakes an owner parked in FLEXSC_IOC_WAIT: payload = descriptor << 32 | region.
void ShimBackend::notify(uint64_t payload) {
  uint32_t id = static_cast<uint32_t>(payload);
  raw_syscall6(SYS_ioctl, static_cast<int>(payload >> 32), FLEXSC_IOC_NOTIFY, reinterpret_cast<long>(&id), 0,
               0, 0);
}

uint32_t ShimBackend::prepare_park(Context* ctx) {
  return region_of(ctx) ? park_kind_ : kParkedFutex;
}

void ShimBackend::park(Context* ctx, uint32_t how, uint64_t timeout_ns, const flexsc_entry* target) {
  ShimRegion* region = region_of(ctx);
  if (how != park_kind_ || how == kParkedFutex || !region) {
    Backend::park(ctx, how, timeout_ns, target);
    return;
  }
  flexsc_shim_wait w{region->id, target ? static_cast<int32_t>(target - ctx->entries) : -1, timeout_ns};
  shim_ioctl(fd_, FLEXSC_IOC_WAIT, &w);
}

uint64_t ShimBackend::progress_mark(Context*) const {
  return 0;
}

// An entry nobody has claimed after a long wait, and no server ready: every
// server sleeps in a call (the module woke the spares already, from the
// scheduler).  One more starts.
void ShimBackend::before_park(Context* ctx, uint64_t, uint64_t waited_ns) {
  if (waited_ns < kStuckNs || __atomic_load_n(&control_->ready, __ATOMIC_SEQ_CST)) return;
  bool unclaimed = false;
  for (unsigned i = 0; i < ctx->capacity && !unclaimed; ++i)
    unclaimed = status_of(&ctx->entries[i]).load(std::memory_order_relaxed) == FLEXSC_SUBMITTED;
  if (!unclaimed) return;
  spawn(static_cast<unsigned>(placement_.core_serving(sched_getcpu())));
}

void ShimBackend::stop() {
  if (stopping_.exchange(true)) return;
  if (fd_ >= 0) shim_ioctl(fd_, FLEXSC_IOC_LEAVE, nullptr);
  std::lock_guard lock(servers_mutex_);
  for (auto& s : servers_) {
    if (!s->handle) continue;
    // A server blocked in a call is interrupted; its entry gets -ECANCELED.
    interrupt_and_join(&s->handle, s->exited, stop_signal_.number());
  }
  stop_signal_.give_back();
}

// After stop(): entries no server claimed are cancelled, and their owner
// woken.
bool ShimBackend::cancel_ops(Context* ctx, bool) {
  uint64_t n = 0;
  for (unsigned i = 0; i < ctx->capacity; ++i) {
    uint16_t expected = FLEXSC_SUBMITTED;
    flexsc_entry* e = &ctx->entries[i];
    if (status_of(e).load(std::memory_order_relaxed) != FLEXSC_SUBMITTED ||
        !status_of(e).compare_exchange_strong(expected, FLEXSC_BUSY))
      continue;
    set_done(e, -ECANCELED);
    ++n;
  }
  cancelled_.fetch_add(n, std::memory_order_relaxed);
  // An owner parked in the shim's wait learns of them now (FLEXSC_IOC_NOTIFY).
  if (n) wake_owner(ctx);
  return false;
}

void ShimBackend::collect(StatsTotals* totals) const {
  // The module keeps its counters per CPU; the ioctl sums them.
  flexsc_shim_stats st{};
  if (shim_ioctl(fd_, FLEXSC_IOC_STATS, &st) == 0) {
    for (unsigned nr = 0; nr < FLEXSC_SHIM_COUNTED_CALLS && nr < kSyscallTableSize; ++nr) {
      totals->remote_calls[nr] += st.calls[nr];
      totals->remote += st.calls[nr];
      if (kSyscallTable[nr].cls == SyscallClass::Blocking) totals->blocking += st.calls[nr];
    }
    totals->nops += st.nops;
    totals->cancelled += st.cancelled;
    // The thread backend's takeovers are spares relieving a blocked thread;
    // here every server serves every page, and this counts their overlap.
    totals->takeovers += st.overlapped;
  }
  totals->syscall_threads += spawned_.load(std::memory_order_relaxed);
  totals->cancelled += cancelled_.load(std::memory_order_relaxed);
}

int ShimBackend::threads_in_call(long nr) const {
  int n = 0;
  for (const auto& slot : control_->servers) {
    const int tid = __atomic_load_n(&slot.tid, __ATOMIC_ACQUIRE);
    const int running = __atomic_load_n(&slot.nr, __ATOMIC_RELAXED);
    n += tid != 0 && (nr == -1 || running == nr);
  }
  return n;
}

void ShimBackend::forget_threads() {
  // In a forked child: the servers and the attachment are the parent's.
  for (auto& s : servers_) {
    s->handle = {};
    s->exited.store(true);
  }
  stopping_.store(true);
}

}  // namespace flexsc::detail
