// How entries get executed.  A backend knows posting contexts and entries,
// nothing about who posts them (threads or fibers).
#pragma once

#include <cstdint>

#include "base/context.h"
#include "base/stats.h"
#include "base/topology.h"

namespace flexsc::detail {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Binds a context to the syscall core serving the calling thread's CPU
  // (called by the context's owner, inside the API).
  virtual void bind(Context* ctx) = 0;
  // The runtime stops (nothing is in flight and nobody inside the API), or
  // the context is going away: release what bind() set up for it.
  virtual void unbind(Context*) {}
  // The owner destroys ctx (nothing of it in flight): what bind() set up
  // may be kept for the next context (the owner is inside the API).
  virtual void context_gone(Context* ctx) { unbind(ctx); }

  // The owner submits entries: slots (kSqBlocking set where it applies)
  // are the context's, SUBMITTED, in submission order.  Makes no syscall
  // while a syscall thread of ctx's core is awake.
  virtual void submit(Context* ctx, uint32_t* slots, unsigned count) = 0;

  // Moves completions that are waiting for the owner into their entries
  // (io_uring's completion queue).  True if any.
  virtual bool reap(Context*) { return false; }

  // The owner of ctx is about to park: returns how, to be stored into
  // ctx->waiting before the last check (kParkedFutex, or the backend's own
  // park_kind(), whose wake function and ctx->wake_target it set up);
  // then park() sleeps.
  // target: the entry it waits for, or nullptr for any of ctx's.
  virtual uint32_t prepare_park(Context*) { return kParkedFutex; }
  virtual void park(Context* ctx, uint32_t how, uint64_t timeout_ns, const flexsc_entry* target);

  // The owner of ctx has spun without seeing its entries complete and is
  // about to park: make sure they progress (run them inline in single-core
  // mode, or wake a spare syscall thread when the serving ones are stuck in
  // blocking calls).  `since` is what progress_mark() returned at the
  // owner's previous check, waited_ns how long it has waited in all.
  virtual void before_park(Context* ctx, uint64_t since, uint64_t waited_ns) = 0;
  virtual uint64_t progress_mark(Context* ctx) const = 0;

  // Finishes or cancels every claimed entry (-ECANCELED) and joins the
  // syscall threads.  Entries still unclaimed afterwards are the caller's.
  virtual void stop() = 0;

  // During shutdown, after stop(): cancels ctx's operations still in the
  // kernel (completing each with -ECANCELED or its real result, reaped
  // here if owner_outside).  True while some are still in flight.
  virtual bool cancel_ops(Context*, bool /*owner_outside*/) { return false; }

  virtual void collect(StatsTotals* totals) const = 0;

  // Where syscall threads run and which CPUs are left to the user.
  virtual const Placement& placement() const = 0;

  // The owner is about to wait on ctx (before spinning).
  virtual void wait_begin(Context* ctx) = 0;

  // For observers (tests): how many of the backend's syscall threads are
  // now running syscall nr (-1: alive at all), or -1 when /proc tells
  // (the threads make the calls themselves).
  virtual int threads_in_call(long /*nr*/) const { return -1; }

  // How many calls that wait for a socket to become ready ctx may have in
  // flight with the backend waiting inside itself, holding no thread
  // (io_uring arms its own poll), without holding up its other entries.
  // 0: each such call holds a thread while it waits.
  virtual unsigned socket_waits_without_thread(const Context*) const { return 0; }

  // ctx's owner wants its in-flight entry e stopped as a signal stops the
  // syscall it stands for: e completes soon, with -EINTR if the call was
  // interrupted (or its real result, if it finished first).  The owner
  // calls it again while waiting (a signal can race with the call's end).
  // False when this backend cannot interrupt a call: the owner waits.
  virtual bool interrupt(Context*, flexsc_entry*) { return false; }

  // In a forked child: the syscall threads do not exist there.  Forget
  // them so the backend can be destroyed without joining them.
  virtual void forget_threads() = 0;
};

}  // namespace flexsc::detail
