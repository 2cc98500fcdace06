// How entries get executed.  A backend knows posting contexts and entries,
// nothing about who posts them (threads or fibers).
#pragma once

#include "stats.h"
#include "topology.h"

namespace flexsc::detail {

struct Context;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Binds a context to the syscall core serving the calling thread's CPU.
  virtual void bind(Context* ctx) = 0;

  // The owner published new entries of ctx.  Makes no syscall while a
  // syscall thread of ctx's core is awake.
  virtual void submitted(Context* ctx) = 0;

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

  virtual void collect(StatsTotals* totals) const = 0;

  // Where syscall threads run and which CPUs are left to the user.
  virtual const Placement& placement() const = 0;

  // The owner is about to wait on ctx (before spinning).
  virtual void wait_begin(Context* ctx) = 0;

  // In a forked child: the syscall threads do not exist there.  Forget
  // them so the backend can be destroyed without joining them.
  virtual void forget_threads() = 0;
};

}  // namespace flexsc::detail
