// The `uring` and `uring-sqpoll` backends: io_uring executes every entry it
// can express; the rest go to syscall threads (backends/syscall_threads).
//
// Each posting context gets its own ring, written and reaped only by the
// context's owner (inside the API) or, once it has left, by shutdown.  An
// entry io_uring can express becomes one SQE whose user_data is the entry's
// slot; its completion is moved into the entry when the owner reaps
// (flexsc_submit, flexsc_peek, the waits).  In `uring-sqpoll` mode every
// ring of a syscall core attaches to one kernel submission thread pinned to
// that core, so posting makes no syscall while it is awake (the
// IORING_SQ_NEED_WAKEUP protocol); in `uring` mode the owner submits each
// batch with one io_uring_enter.
#pragma once

#include <liburing.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/uring/uring_map.h"
#include "base/config.h"

namespace flexsc::detail {

class SyscallThreads;

class UringBackend final : public Backend {
 public:
  // sqpoll: the `uring-sqpoll` mode.  Fails (with *error saying why) when
  // io_uring, or SQPOLL for that mode, is not available.
  static int create(const Config& cfg, bool sqpoll, std::unique_ptr<Backend>* out, std::string* error);
  ~UringBackend() override;

  const char* name() const override { return sqpoll_ ? "uring-sqpoll" : "uring"; }
  unsigned socket_waits_without_thread(const Context* ctx) const override;
  void bind(Context* ctx) override;
  void unbind(Context* ctx) override;
  void context_gone(Context* ctx) override;
  void submit(Context* ctx, uint32_t* slots, unsigned count) override;
  bool reap(Context* ctx) override;
  uint32_t prepare_park(Context* ctx) override;
  void park(Context* ctx, uint32_t how, uint64_t timeout_ns, const flexsc_entry* target) override;
  uint64_t progress_mark(Context* ctx) const override;
  void before_park(Context* ctx, uint64_t since, uint64_t waited_ns) override;
  bool cancel_ops(Context* ctx, bool owner_outside) override;
  bool interrupt(Context* ctx, flexsc_entry* e) override;
  void stop() override;
  void collect(StatsTotals* totals) const override;
  const Placement& placement() const override;
  void wait_begin(Context* ctx) override;
  void forget_threads() override;

 private:
  UringBackend() = default;
  void make_ring(Context* ctx);
  void pool(Context* ctx);
  bool reuse_ring(Context* ctx, unsigned size);
  static void wake_ring(uint64_t payload);

  Config cfg_;
  bool sqpoll_ = false;
  uint32_t park_kind_ = park_kind(wake_ring);
  OpSupport support_;
  std::unique_ptr<SyscallThreads> threads_;  // for what io_uring cannot express
  // uring-sqpoll: per syscall core, the ring that owns the core's kernel
  // submission thread; the contexts' rings attach to it.
  std::vector<std::unique_ptr<io_uring>> anchors_;
  // Idle rings of destroyed contexts, for the next ones.  Tearing a ring
  // down makes the kernel send task work to every thread that entered it,
  // and that fails a blocking syscall such a thread is making with EINTR:
  // rings go only with the runtime (or their thread).
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<BackendState>> pool_;
};

}  // namespace flexsc::detail
