#include "base/stats.h"

#include <fcntl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "base/raw_syscall.h"

namespace flexsc::detail {

void DrainStats::reset() {
  for (auto& c : calls) c.reset();
  for (auto& c : batches) c.reset();
  for (Counter* c : {&blocking, &nops, &drains, &idle_spins_with_work, &sleeps, &cancelled}) c->reset();
}

void CallerStats::reset() {
  for (auto& c : calls) c.reset();
  for (auto& c : ring_calls) c.reset();
  for (Counter* c : {&local, &unknown, &inline_calls, &waits, &wait_parks, &takeovers, &ring_nops,
                     &ring_retries, &ring_splits, &ring_reruns, &ring_backlog, &ring_cancelled})
    c->reset();
}

void StatsTotals::add(const DrainStats& d) {
  for (unsigned i = 0; i < kSyscallTableSize; ++i) {
    remote_calls[i] += d.calls[i].get();
    remote += d.calls[i].get();
  }
  for (unsigned i = 0; i < kBatchBuckets; ++i) batches[i] += d.batches[i].get();
  blocking += d.blocking.get();
  nops += d.nops.get();
  drains += d.drains.get();
  idle_spins_with_work += d.idle_spins_with_work.get();
  sleeps += d.sleeps.get();
  cancelled += d.cancelled.get();
}

void StatsTotals::add(const CallerStats& c) {
  for (unsigned i = 0; i < kSyscallTableSize; ++i) {
    local_calls[i] += c.calls[i].get();
    ring_calls[i] += c.ring_calls[i].get();
    ring += c.ring_calls[i].get();
  }
  ring_nops += c.ring_nops.get();
  ring_retries += c.ring_retries.get();
  ring_splits += c.ring_splits.get();
  ring_reruns += c.ring_reruns.get();
  ring_backlog += c.ring_backlog.get();
  cancelled += c.ring_cancelled.get();
  local += c.local.get();
  unknown += c.unknown.get();
  inline_calls += c.inline_calls.get();
  waits += c.waits.get();
  wait_parks += c.wait_parks.get();
  takeovers += c.takeovers.get();
}

StatsTotals& StatsTotals::operator+=(const StatsTotals& o) {
  for (unsigned i = 0; i < kSyscallTableSize; ++i) {
    remote_calls[i] += o.remote_calls[i];
    local_calls[i] += o.local_calls[i];
    ring_calls[i] += o.ring_calls[i];
  }
  for (unsigned i = 0; i < kBatchBuckets; ++i) batches[i] += o.batches[i];
  for (auto [mine, theirs] : {std::pair{&remote, &o.remote},
                              {&blocking, &o.blocking},
                              {&local, &o.local},
                              {&unknown, &o.unknown},
                              {&inline_calls, &o.inline_calls},
                              {&nops, &o.nops},
                              {&drains, &o.drains},
                              {&idle_spins_with_work, &o.idle_spins_with_work},
                              {&sleeps, &o.sleeps},
                              {&waits, &o.waits},
                              {&wait_parks, &o.wait_parks},
                              {&takeovers, &o.takeovers},
                              {&syscall_threads, &o.syscall_threads},
                              {&cancelled, &o.cancelled},
                              {&ring, &o.ring},
                              {&ring_nops, &o.ring_nops},
                              {&ring_retries, &o.ring_retries},
                              {&ring_splits, &o.ring_splits},
                              {&ring_reruns, &o.ring_reruns},
                              {&ring_backlog, &o.ring_backlog}})
    *mine += *theirs;
  return *this;
}

std::string StatsTotals::report(const char* backend) const {
  std::string out;
  char line[256];
  auto emit = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += "flexsc: ";
    out += line;
    out += '\n';
  };
  const uint64_t entries = remote + nops;
  emit("backend %s, %llu syscall threads", backend, (unsigned long long)syscall_threads);
  emit("calls: %llu remote (%llu blocking class), %llu local, %llu unknown, %llu nop, %llu inline",
       (unsigned long long)remote, (unsigned long long)blocking, (unsigned long long)local,
       (unsigned long long)unknown, (unsigned long long)nops, (unsigned long long)inline_calls);
  if (ring || ring_nops)
    emit(
        "io_uring: %llu calls (+%llu nop); %llu retried waiting, %llu split transfers, %llu rerun on the "
        "caller, "
        "%llu waited for room in a ring",
        (unsigned long long)ring, (unsigned long long)ring_nops, (unsigned long long)ring_retries,
        (unsigned long long)ring_splits, (unsigned long long)ring_reruns, (unsigned long long)ring_backlog);
  emit("drains: %llu visits, %.1f entries per visit", (unsigned long long)drains,
       drains ? double(entries) / double(drains) : 0.0);
  std::string hist;
  for (unsigned i = 0; i < kBatchBuckets; ++i) {
    std::snprintf(line, sizeof line, "%s%u%s:%llu", i ? " " : "", 1u << i, i + 1 == kBatchBuckets ? "+" : "",
                  (unsigned long long)batches[i]);
    hist += line;
  }
  emit("batch sizes (entries per visit, log2 buckets): %s", hist.c_str());
  emit("syscall threads idle: %llu spins ended by work, %llu sleeps",
       (unsigned long long)idle_spins_with_work, (unsigned long long)sleeps);
  emit("waiters: %llu waits, %llu parked after spinning, %llu takeovers of stuck syscall threads",
       (unsigned long long)waits, (unsigned long long)wait_parks, (unsigned long long)takeovers);
  emit("cancelled at shutdown: %llu", (unsigned long long)cancelled);
  emit("per syscall: name, class, run by syscall threads (remote), by io_uring, on the caller (local)");
  for (unsigned i = 0; i < kSyscallTableSize; ++i) {
    if (!remote_calls[i] && !local_calls[i] && !ring_calls[i]) continue;
    emit("  %-24s %-8s remote %llu io_uring %llu local %llu",
         kSyscallTable[i].name ? kSyscallTable[i].name : "?", class_name(kSyscallTable[i].cls),
         (unsigned long long)remote_calls[i], (unsigned long long)ring_calls[i],
         (unsigned long long)local_calls[i]);
  }
  return out;
}

namespace {

bool write_all(long fd, std::string_view text) {
  while (!text.empty()) {
    const long n = raw_syscall6(SYS_write, fd, reinterpret_cast<long>(text.data()),
                                static_cast<long>(text.size()), 0, 0, 0);
    if (n == -EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

void write_stats(const char* destination, std::string_view text) {
  if (!*destination) return;
  const bool to_stderr = std::strcmp(destination, "1") == 0;
  const long fd = to_stderr ? 2
                            : raw_syscall6(SYS_openat, AT_FDCWD, reinterpret_cast<long>(destination),
                                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644, 0, 0);
  const bool written = fd >= 0 && write_all(fd, text);
  if (fd >= 0 && !to_stderr) raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
  if (!written) write_all(2, std::string("flexsc: cannot write statistics to ") + destination + "\n");
}

}  // namespace flexsc::detail
