// What the C API (api.cpp) offers the layers built on it, the fibers and
// the drop-in wrapper, beyond <flexsc/flexsc.h>.
#pragma once

#include <string>
#include <vector>

#include "base/context.h"
#include "runtime.h"

namespace flexsc::detail {

// The hazard protocol between API calls and shutdown: enter() marks ctx as
// inside the API, then returns the running runtime (binding ctx to it), or
// nullptr.  Shutdown waits for every bound context to leave().
Runtime* enter(Context* ctx);
inline void leave(Context* ctx) {
  ctx->in_api.store(0, std::memory_order_release);
}

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

// Runs a syscall on the calling thread (local and unknown classes), with
// the fork handlers around a raw fork.
long run_on_caller(long nr, const long args[6]);

// The running runtime's user CPUs (those not reserved for syscall
// threads); false when no runtime runs.
bool runtime_user_cpus(std::vector<int>* out);
// Where the running runtime's statistics go (Config::stats); false when
// no runtime runs.
bool runtime_stats_destination(std::string* out);

// For tests: Backend::threads_in_call of the running runtime (-1 when none
// runs, or when /proc tells).
int backend_threads_in_call(long nr);

}  // namespace flexsc::detail
