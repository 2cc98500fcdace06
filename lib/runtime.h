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

// Runs the entries Runtime::submit left to the caller (local and unknown
// classes), once the caller has left the runtime.
void run_local_entries(Context* ctx);
void count_on_caller(Context* ctx, long nr, SyscallClass cls);

// A context goes away: its statistics join those of the contexts destroyed
// while the current runtime ran, and it leaves the registry, in one step
// under the registry lock (a report in between would count it twice).
void retire_context(Context* ctx);

}  // namespace flexsc::detail
