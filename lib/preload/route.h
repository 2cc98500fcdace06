// Which calls the drop-in wrapper sends through the syscall pages, and
// which it passes straight to the kernel, with the count of each decision
// by reason (printed at exit with FLEXSC_STATS).
//
//   FLEXSC_ROUTE=all    every call the class table lets a syscall thread run
//   FLEXSC_ROUTE=auto   only where a handoff pays (the default)
//   FLEXSC_ROUTE=none   nothing: the wrapper only passes calls through
//   FLEXSC_ROUTE_ONLY=read,write,...   routes only these (by name)
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "../classify.h"

namespace flexsc::preload {

enum class Mode { All, Auto, None };

// Why a call went where it went.
enum class Reason : uint8_t {
  Routed,
  NotReady,      // before the runtime started, after it stopped, or it could not start
  SignalHandler, // from one of the program's signal handlers
  ModeNone,      // FLEXSC_ROUTE=none
  NotListed,     // not in FLEXSC_ROUTE_ONLY
  CallerClass,   // depends on the calling thread, or unknown to the class table
  Cheap,         // auto: cheaper than a handoff
  MayBlock,      // auto: may wait without bound (a syscall thread would be held)
  kCount
};

const char* reason_name(Reason r);

struct Policy {
  Mode mode = Mode::Auto;
  bool only_listed = false;
  uint8_t listed[512] = {};  // by syscall number, when only_listed

  // Reads FLEXSC_ROUTE and FLEXSC_ROUTE_ONLY; false with *error set for a
  // bad value.
  bool load(std::string* error);
  // Where a call of class cls (classify()) goes.
  Reason decide(long nr, flexsc::detail::SyscallClass cls) const;
};

// Decisions, by syscall number and reason: relaxed counters, read at exit.
struct Counts {
  std::atomic<uint64_t> by[512][static_cast<int>(Reason::kCount)];
  void add(long nr, Reason r) {
    if (nr >= 0 && nr < 512) by[nr][static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  std::string report() const;
};

}  // namespace flexsc::preload
