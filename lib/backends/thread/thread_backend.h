// The `thread` backend: every entry goes to userspace syscall threads
// pinned to syscall cores (backends/syscall_threads).
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"
#include "backends/syscall_threads/syscall_threads.h"
#include "base/config.h"

namespace flexsc::detail {

class ThreadBackend final : public Backend {
 public:
  static int create(const Config& cfg, std::unique_ptr<Backend>* out, std::string* error);

  const char* name() const override { return "thread"; }
  void bind(Context* ctx) override { threads_->bind(ctx); }
  void submit(Context* ctx, uint32_t* slots, unsigned count) override { threads_->submit(ctx, slots, count); }
  uint64_t progress_mark(Context* ctx) const override { return threads_->progress_mark(ctx); }
  void before_park(Context* ctx, uint64_t since, uint64_t waited_ns) override {
    threads_->before_park(ctx, since, waited_ns);
  }
  void stop() override { threads_->stop(); }
  void collect(StatsTotals* totals) const override { threads_->collect(totals); }
  const Placement& placement() const override { return threads_->placement(); }
  void wait_begin(Context* ctx) override { threads_->wait_begin(ctx); }
  void forget_threads() override { threads_->forget_threads(); }
  bool interrupt(Context* ctx, flexsc_entry* e) override { return threads_->interrupt(ctx, e); }

 private:
  explicit ThreadBackend(std::unique_ptr<SyscallThreads> threads) : threads_(std::move(threads)) {}

  std::unique_ptr<SyscallThreads> threads_;
};

}  // namespace flexsc::detail
