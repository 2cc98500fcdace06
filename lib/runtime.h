// The runtime: one per process at a time, between flexsc_init() and
// flexsc_shutdown().  It owns the backend and tracks which posting
// contexts are bound to it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "base/classify.h"
#include "base/config.h"
#include "base/context.h"

namespace flexsc::detail {

class Runtime {
 public:
  static int start(const Config& cfg, uint64_t gen, std::unique_ptr<Runtime>* out, std::string* error);

  const char* backend_name() const { return backend_->name(); }
  Backend& backend() { return *backend_; }
  const Config& config() const { return cfg_; }
  uint64_t gen() const { return gen_; }

  void bind(Context* ctx);
  // Publishes the prepared entries that syscall threads may run; local and
  // unknown ones go to ctx->local_slots, for run_local_entries() once the
  // caller has left the runtime (they may block, or fork).
  int submit(Context* ctx);
  // Wait for one entry, or for any unseen entry to be DONE.  spun: the
  // caller has spun for ctx->wait_spin_ns already, so park at once.
  long wait_entry(Context* ctx, flexsc_entry* e, bool spun = false);
  int wait_any(Context* ctx, flexsc_entry** out, bool spun = false);
  // As wait_entry, but when interrupted(arg) turns true (a signal the
  // caller handled) the backend is asked to interrupt e's call, as the
  // signal would have interrupted the syscall: then -EINTR, unless the
  // call finished first.  A backend that cannot interrupt lets it finish.
  long wait_entry_or_interrupt(Context* ctx, flexsc_entry* e, bool (*interrupted)(void*), void* arg);
  // Waits as above until ready(arg), or until CLOCK_MONOTONIC reaches
  // deadline_ns (0: no deadline).  For M:N schedulers, whose wake-ups are
  // their entries' completions and whatever ready() adds (others call
  // wake_owner(ctx)).
  void wait_for(Context* ctx, bool (*ready)(void*), void* arg, uint64_t deadline_ns);

  // Lets API calls in progress finish, stops the syscall threads, cancels
  // what is left and prints the statistics.
  void stop();
  // In a forked child: drop everything without touching the parent's threads.
  void discard_after_fork();

  StatsTotals totals() const;

 private:
  Runtime() = default;
  template <class Done>
  void wait_until(Context* ctx, Done done, bool spun, const flexsc_entry* target, uint64_t deadline_ns = 0);
  void print_stats() const;

  Config cfg_;
  uint64_t gen_ = 0;
  std::unique_ptr<Backend> backend_;
};

// The hazard protocol between API calls and shutdown: enter() marks ctx as
// inside the API, then returns the running runtime (binding ctx to it), or
// nullptr.  Shutdown waits for every bound context to leave().
Runtime* enter(Context* ctx);
inline void leave(Context* ctx) { ctx->in_api.store(0, std::memory_order_release); }

// Set on a thread while it runs a fiber: flexsc_syscall and the batch
// API's waits go through it, so a fiber posts and switches instead of
// blocking its kernel thread.  (Implemented by lib/fiber's schedulers: the
// layers below know only this interface.)
class FiberSyscalls {
 public:
  virtual long syscall(long nr, const long args[6]) = 0;
  // Lets other fibers run until done(arg).
  virtual void wait_polling(bool (*done)(void*), void* arg) = 0;

 protected:
  ~FiberSyscalls() = default;
};
extern thread_local FiberSyscalls* t_fiber_syscalls;

// flexsc_syscall on a plain thread, with interrupted() as in
// Runtime::wait_entry_or_interrupt (nullptr: never).  For the drop-in
// wrapper, whose callers expect signals to interrupt blocking calls.
long syscall_interruptible(long nr, const long args[6], bool (*interrupted)(void*), void* arg);

// The running runtime's user CPUs (those not reserved for syscall
// threads); false when no runtime runs.
bool runtime_user_cpus(std::vector<int>* out);
// Where the running runtime's statistics go (Config::stats); false when
// no runtime runs.
bool runtime_stats_destination(std::string* out);

// > 0 while the calling thread runs flexsc's own code (an API call, the
// runtime's threads for their whole life, exit and fork handlers): the
// drop-in wrapper passes the libc calls flexsc makes meanwhile straight to
// the kernel instead of routing them back into flexsc.
extern thread_local int t_runtime_depth;
struct RuntimeScope {
  RuntimeScope() { ++t_runtime_depth; }
  ~RuntimeScope() { --t_runtime_depth; }
  RuntimeScope(const RuntimeScope&) = delete;
  RuntimeScope& operator=(const RuntimeScope&) = delete;
};

// True once the calling thread has made itself unlike the process's other
// threads (unshare, raw setuid, seccomp...): its calls then all run on it.
bool thread_diverged();

// The calling thread's id, cached (and reset in a forked child).
int current_tid();

// Runs a syscall on the calling thread (local and unknown classes), with
// the fork handlers around a raw fork.
long run_on_caller(long nr, const long args[6]);

void run_local_entries(Context* ctx);

// For tests: Backend::threads_in_call of the running runtime (-1 when none
// runs, or when /proc tells).
int backend_threads_in_call(long nr);
void count_on_caller(Context* ctx, long nr, SyscallClass cls);

// A context goes away: its statistics join those of the contexts destroyed
// while the current runtime ran, and it leaves the registry, in one step
// under the registry lock (a report in between would count it twice).
void retire_context(Context* ctx);

}  // namespace flexsc::detail
