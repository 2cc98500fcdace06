// The pool of schedulers, fiber handles, this_fiber and fiber-local storage.
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "api.h"
#include "base/config.h"
#include "base/futex.h"
#include "base/stats.h"
#include "scheduler.h"

namespace flexsc::fiber::detail {

using flexsc::detail::futex_wait;
using flexsc::detail::futex_wake;

namespace {

// The CPUs schedulers run on: the runtime's user cores when fibers post
// their syscalls (the others are syscall cores), else every CPU the
// process may use.
std::vector<int> scheduler_cpus(bool exception_less) {
  std::vector<int> cpus;
  if (exception_less && flexsc::detail::runtime_user_cpus(&cpus) && !cpus.empty()) return cpus;
  cpus.clear();
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

}  // namespace

PoolImpl::PoolImpl(const PoolOptions& options) : options_(options) {
  exception_less_ = options.exception_less;
  if (exception_less_) {
    // The runtime with its defaults (and environment) if nobody started it.
    const int rc = flexsc_init(nullptr);
    if (rc < 0 && rc != -EALREADY) throw std::system_error(-rc, std::generic_category(), "flexsc_init");
  }
  // The report goes where the runtime's goes; without one running, where
  // a runtime started now would send it.
  if (!flexsc::detail::runtime_stats_destination(&stats_to_))
    stats_to_ = flexsc::detail::stats_destination(nullptr);
  const std::vector<int> cpus = scheduler_cpus(exception_less_);
  const unsigned n =
      options.schedulers ? options.schedulers : static_cast<unsigned>(std::max<size_t>(cpus.size(), 1));
  if (options.pin && !cpus.empty()) {
    if (hwloc_topology_init(&topology_) == 0 && hwloc_topology_load(topology_) != 0) {
      hwloc_topology_destroy(topology_);
      topology_ = nullptr;
    }
  }
  for (unsigned i = 0; i < n; ++i) {
    const int cpu = options.pin && !cpus.empty() ? cpus[i % cpus.size()] : -1;
    std::unique_ptr<Policy> policy = options.policy ? options.policy() : std::make_unique<FifoPolicy>();
    schedulers_.push_back(std::make_unique<Scheduler>(this, i, cpu, std::move(policy)));
  }
  for (auto& s : schedulers_) s->start();
  for (auto& s : schedulers_) s->wait_started();
}

PoolImpl::~PoolImpl() {
  wait_idle();
  for (auto& s : schedulers_) s->request_stop();
  for (auto& s : schedulers_) s->join();
  print_stats();
  schedulers_.clear();
  if (topology_) hwloc_topology_destroy(topology_);
}

FiberControl* PoolImpl::new_fiber(std::function<void()> fn) {
  if (!fn) throw std::invalid_argument("flexsc::fiber::spawn: empty function");
  auto* f = new FiberControl();
  f->fn = std::move(fn);
  f->id = next_id_.fetch_add(1, std::memory_order_relaxed);
  f->pool = this;
  return f;
}

void PoolImpl::start(FiberControl* f) {
  Scheduler* to = schedulers_[next_.fetch_add(1, std::memory_order_relaxed) % schedulers_.size()].get();
  f->home.store(to, std::memory_order_relaxed);
  live_.fetch_add(1, std::memory_order_acq_rel);
  to->enqueue(f);
}

Fiber PoolImpl::spawn(std::function<void()> fn) {
  FiberControl* f = new_fiber(std::move(fn));
  start(f);
  return Fiber(f);
}

void PoolImpl::spawn_thread(std::function<void()> fn, Stack stack, const BorrowedThread& borrowed) {
  FiberControl* f = new_fiber(std::move(fn));
  f->stack = stack;
  f->own_stack = true;
  f->detached = true;  // an uncaught exception ends the process, as in a thread
  f->borrowed = borrowed;
  f->refs.fetch_sub(1, std::memory_order_relaxed);  // no handle holds it
  start(f);
}

void PoolImpl::fiber_ended() {
  if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1) futex_wake(&live_);
}

void PoolImpl::wait_idle() {
  if (current_fiber() && current_fiber()->pool == this)
    throw std::logic_error("flexsc::fiber::Pool::wait_idle from one of its own fibers would never return");
  for (uint32_t n; (n = live_.load(std::memory_order_acquire)) != 0;) futex_wait(&live_, n);
}

Scheduler* PoolImpl::find_hungry(Scheduler* self) {
  for (auto& s : schedulers_) {
    if (s.get() == self) continue;
    bool expected = true;
    if (s->hungry_flag().compare_exchange_strong(expected, false, std::memory_order_acq_rel)) {
      hungry_count_.fetch_sub(1, std::memory_order_acq_rel);
      return s.get();
    }
  }
  return nullptr;
}

std::vector<SchedulerStats> PoolImpl::stats() const {
  std::vector<SchedulerStats> out;
  for (const auto& s : schedulers_) out.push_back(s->stats());
  return out;
}

void PoolImpl::print_stats() const {
  if (stats_to_.empty()) return;
  std::string text =
      "flexsc: fibers: " + std::to_string(schedulers_.size()) + " schedulers, syscalls " +
      (exception_less_ ? std::string("exception-less (") + flexsc_backend() + ")" : "synchronous") + "\n";
  for (const SchedulerStats& s : stats()) {
    char line[400];
    const double per_harvest =
        s.harvests ? static_cast<double>(s.harvested) / static_cast<double>(s.harvests) : 0;
    std::snprintf(
        line, sizeof line,
        "flexsc:   scheduler on cpu %d: %llu switches, %llu syscalls posted (%llu on its thread), "
        "%llu submits, %.1f harvested per harvest, %llu idle waits, %llu readiness waits, "
        "%llu fibers migrated in\n",
        s.cpu, static_cast<unsigned long long>(s.switches),
        static_cast<unsigned long long>(s.syscalls_posted),
        static_cast<unsigned long long>(s.syscalls_on_caller), static_cast<unsigned long long>(s.submits),
        per_harvest, static_cast<unsigned long long>(s.idle_waits),
        static_cast<unsigned long long>(s.readiness_waits), static_cast<unsigned long long>(s.migrated_in));
    text += line;
  }
  flexsc::detail::write_stats(stats_to_.c_str(), text);
}

// ---- fiber-local storage ---------------------------------------------------

namespace {
std::atomic<std::size_t> g_next_fls_key{0};

// Plain threads keep their values here, destroyed at thread exit.
struct ThreadLocals {
  std::vector<std::pair<void*, void (*)(void*)>> slots;
  ~ThreadLocals() {
    for (auto& [value, destroy] : slots)
      if (value && destroy) destroy(value);
  }
};
thread_local ThreadLocals t_locals;
}  // namespace

std::size_t fls_new_key() {
  return g_next_fls_key.fetch_add(1, std::memory_order_relaxed);
}

void** fls_slot(std::size_t key, void (*destroy)(void*)) {
  FiberControl* f = current_fiber();
  auto& slots = f ? f->fls : t_locals.slots;
  if (slots.size() <= key) slots.resize(key + 1, {nullptr, nullptr});
  slots[key].second = destroy;
  return &slots[key].first;
}

}  // namespace flexsc::fiber::detail

namespace flexsc::fiber {

using detail::current_fiber;
using detail::current_scheduler;

Pool::Pool(const PoolOptions& options) : impl_(std::make_unique<detail::PoolImpl>(options)) {}
Pool::~Pool() = default;
Fiber Pool::spawn(std::function<void()> fn) {
  return impl_->spawn(std::move(fn));
}
void Pool::wait_idle() {
  impl_->wait_idle();
}
unsigned Pool::size() const {
  return impl_->size();
}
std::vector<SchedulerStats> Pool::stats() const {
  return impl_->stats();
}
bool Pool::exception_less() const {
  return impl_->exception_less();
}

Fiber spawn(std::function<void()> fn) {
  detail::FiberControl* self = current_fiber();
  if (!self) throw std::logic_error("flexsc::fiber::spawn outside a fiber: use Pool::spawn");
  return self->pool->spawn(std::move(fn));
}

Fiber& Fiber::operator=(Fiber&& o) noexcept {
  if (this != &o) {
    if (f_) std::terminate();  // as std::thread: a joinable handle is never dropped
    f_ = std::exchange(o.f_, nullptr);
  }
  return *this;
}

Fiber::~Fiber() {
  if (f_) {
    std::fprintf(stderr, "flexsc: fiber %llu's handle destroyed while joinable (join or detach it)\n",
                 static_cast<unsigned long long>(f_->id));
    std::terminate();
  }
}

uint64_t Fiber::id() const {
  return f_ ? f_->id : 0;
}

void Fiber::join() {
  if (!f_)
    throw std::system_error(EINVAL, std::generic_category(), "flexsc::fiber::Fiber::join: not joinable");
  if (f_ == current_fiber())
    throw std::system_error(EDEADLK, std::generic_category(), "flexsc::fiber::Fiber::join: joining itself");
  std::exception_ptr error;
  {
    std::unique_lock lock(f_->end_mutex);
    while (!f_->finished) f_->joiners.park(lock);
    error = std::exchange(f_->error, nullptr);
  }
  std::exchange(f_, nullptr)->release();
  if (error) std::rethrow_exception(error);
}

void Fiber::detach() {
  if (!f_)
    throw std::system_error(EINVAL, std::generic_category(), "flexsc::fiber::Fiber::detach: not joinable");
  std::exception_ptr error;
  {
    std::lock_guard lock(f_->end_mutex);
    f_->detached = true;
    if (f_->finished) error = std::exchange(f_->error, nullptr);
  }
  const uint64_t id = f_->id;
  std::exchange(f_, nullptr)->release();
  if (error) detail::report_uncaught(id, error);
}

namespace this_fiber {

bool inside() {
  return current_fiber() != nullptr;
}
uint64_t id() {
  return current_fiber() ? current_fiber()->id : 0;
}
int scheduler() {
  return current_scheduler() ? static_cast<int>(current_scheduler()->index()) : -1;
}

void yield() {
  if (current_fiber())
    current_scheduler()->yield_running();
  else
    std::this_thread::yield();
}

void sleep_until(std::chrono::steady_clock::time_point t) {
  detail::FiberControl* f = current_fiber();
  if (!f) {
    std::this_thread::sleep_until(t);
    return;
  }
  // steady_clock is CLOCK_MONOTONIC, the timers' clock.
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (ns <= 0 || static_cast<uint64_t>(ns) <= flexsc::detail::now_ns()) {
    yield();
    return;
  }
  detail::suspend_parked_until(f->begin_park(), static_cast<uint64_t>(ns));
}

}  // namespace this_fiber

}  // namespace flexsc::fiber
