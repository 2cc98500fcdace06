// The `test-perturb` backend, built only into the tests: it runs each
// entry on its owner as the entry is submitted and answers wrongly on
// purpose (a result one too high, another errno), so that a differential
// suite can show it fails on a wrong backend, and option tests can tell
// which backend answered.
#include <sched.h>

#include <cerrno>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/registry.h"
#include "base/raw_syscall.h"

namespace flexsc::detail {
namespace {

long perturb(long ret) {
  return ret >= 0 ? ret + 1 : (ret == -EINVAL ? -EBADF : -EINVAL);
}

class PerturbBackend final : public Backend {
 public:
  PerturbBackend() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) placement_.user_cpus.push_back(cpu);
    placement_.single_core = true;
  }

  const char* name() const override { return "test-perturb"; }
  void bind(Context* ctx) override { ctx->wait_spin_ns = 0; }

  // Only the owner claims here, so the head moves without a race.
  void submit(Context* ctx, uint32_t* slots, unsigned count) override {
    ctx->publish(slots, count);
    for (uint64_t head = ctx->sq_head.load(std::memory_order_relaxed);
         head < ctx->sq_tail.load(std::memory_order_relaxed); ++head) {
      flexsc_entry* e = ctx->submitted(head);
      ctx->sq_head.store(head + 1, std::memory_order_release);
      long ret = 0;
      if (!(e->flags & FLEXSC_ENTRY_NOP)) {
        ret = raw_syscall6(e->nr, e->args[0], e->args[1], e->args[2], e->args[3], e->args[4], e->args[5]);
        ctx->stats.calls[e->nr].add();
      }
      ctx->stats.inline_calls.add();
      set_done(e, perturb(ret));
    }
    ctx->completed.fetch_add(count, std::memory_order_release);
  }

  uint64_t progress_mark(Context*) const override { return 0; }
  void before_park(Context*, uint64_t, uint64_t) override {}
  void stop() override {}
  void collect(StatsTotals*) const override {}
  const Placement& placement() const override { return placement_; }
  void wait_begin(Context*) override {}
  void forget_threads() override {}

 private:
  Placement placement_;
};

int create(const Config&, std::unique_ptr<Backend>* out, std::string*) {
  out->reset(new PerturbBackend());
  return 0;
}

[[maybe_unused]] const bool registered = register_backend("test-perturb", create);

}  // namespace
}  // namespace flexsc::detail
