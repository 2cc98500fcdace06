// The `shim` backend: the kernel shim (kernel-shim/, /dev/flexsc) runs the
// entries.  Serving threads of this process, pinned to the syscall cores,
// enter the kernel once and stay there draining every registered context's
// pages; each context's pages are registered when it is bound.  Posting
// bumps a doorbell word in a shared control page and makes a syscall only
// when no server is ready (abi/flexsc/shim.h); waiters park in the
// shim's wait.
#pragma once

#include <flexsc/shim.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "base/config.h"
#include "base/process.h"
#include "base/topology.h"

namespace flexsc::detail {

class ShimBackend final : public Backend {
 public:
  // Fails, with *error saying why, when /dev/flexsc cannot be opened or
  // the process cannot attach (no module, a seccomp filter, ...).
  static int create(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error);
  ~ShimBackend() override;

  const char* name() const override { return "shim"; }
  void bind(Context* ctx) override;
  void unbind(Context* ctx) override;
  void submit(Context* ctx, uint32_t* slots, unsigned count) override;
  uint32_t prepare_park(Context* ctx) override;
  void park(Context* ctx, uint32_t how, uint64_t timeout_ns, const flexsc_entry* target) override;
  uint64_t progress_mark(Context* ctx) const override;
  void before_park(Context* ctx, uint64_t since, uint64_t waited_ns) override;
  void stop() override;
  bool cancel_ops(Context* ctx, bool owner_outside) override;
  void collect(StatsTotals* totals) const override;
  const Placement& placement() const override { return placement_; }
  void wait_begin(Context*) override {}
  void forget_threads() override;
  // Serving threads sit in the shim's ioctl as far as /proc can tell: the
  // control page says which call that may block each one sits in.
  int threads_in_call(long nr) const override;

 private:
  struct Server {
    ShimBackend* backend = nullptr;
    unsigned core = 0;
    pthread_t handle{};
    std::atomic<bool> exited{false};
  };

  ShimBackend() = default;
  int spawn(unsigned core);
  static void* server_main(void* arg);
  void serve(Server* self);
  static int submitter_of(uint64_t addr);
  static void notify(uint64_t payload);

  Config cfg_;
  Placement placement_;
  uint32_t park_kind_ = park_kind(notify);
  int fd_ = -1;
  flexsc_shim_control* control_ = nullptr;
  CancelSignal stop_signal_;
  std::atomic<bool> stopping_{false};
  std::mutex servers_mutex_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::vector<unsigned> per_core_;  // servers started, by syscall core
  std::atomic<uint64_t> spawned_{0};
  std::atomic<uint64_t> cancelled_{0};
};

}  // namespace flexsc::detail
