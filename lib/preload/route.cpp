#include "route.h"

#include <sys/syscall.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "../classify.h"

namespace flexsc::preload {

using flexsc::detail::SyscallClass;

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::Routed: return "routed";
    case Reason::NotReady: return "runtime not running";
    case Reason::SignalHandler: return "in a signal handler";
    case Reason::ModeNone: return "FLEXSC_ROUTE=none";
    case Reason::NotListed: return "not in FLEXSC_ROUTE_ONLY";
    case Reason::CallerClass: return "acts on the calling thread";
    case Reason::Cheap: return "auto: cheaper than a handoff";
    case Reason::MayBlock: return "auto: may block";
    case Reason::kCount: break;
  }
  return "?";
}

bool Policy::load(std::string* error) {
  const char* m = std::getenv("FLEXSC_ROUTE");
  if (!m || !*m || !std::strcmp(m, "auto")) mode = Mode::Auto;
  else if (!std::strcmp(m, "all")) mode = Mode::All;
  else if (!std::strcmp(m, "none")) mode = Mode::None;
  else {
    *error = std::string("FLEXSC_ROUTE=") + m + ": expected all, auto or none";
    return false;
  }
  const char* only = std::getenv("FLEXSC_ROUTE_ONLY");
  if (!only || !*only) return true;
  only_listed = true;
  std::stringstream ss(only);
  for (std::string name; std::getline(ss, name, ',');) {
    if (name.empty()) continue;
    bool found = false;
    for (unsigned nr = 0; nr < flexsc::detail::kSyscallTableSize && nr < 512; ++nr) {
      const char* n = flexsc::detail::syscall_name(nr);
      if (n && name == n) listed[nr] = found = true;
    }
    if (!found) {
      *error = "FLEXSC_ROUTE_ONLY: no syscall named '" + name + "'";
      return false;
    }
  }
  return true;
}

namespace {
// Calls that cost more than a cross-core handoff (tens to hundreds of
// nanoseconds here) and cannot wait without bound: what auto routes.
bool worth_a_handoff(long nr) {
  switch (nr) {
    case SYS_open: case SYS_openat: case SYS_stat: case SYS_lstat: case SYS_newfstatat: case SYS_statx:
    case SYS_fsync: case SYS_fdatasync: case SYS_sendfile: case SYS_copy_file_range:
    case SYS_pread64: case SYS_pwrite64: case SYS_preadv: case SYS_pwritev:
      return true;
    default:
      return false;
  }
}
}  // namespace

Reason Policy::decide(long nr, SyscallClass cls) const {
  if (mode == Mode::None) return Reason::ModeNone;
  if (only_listed && (nr < 0 || nr >= 512 || !listed[nr])) return Reason::NotListed;
  if (flexsc::detail::runs_on_caller(cls)) return Reason::CallerClass;
  if (mode == Mode::All) return Reason::Routed;
  if (cls == SyscallClass::Blocking) return Reason::MayBlock;
  return worth_a_handoff(nr) ? Reason::Routed : Reason::Cheap;
}

std::string Counts::report() const {
  uint64_t total[static_cast<int>(Reason::kCount)] = {};
  std::ostringstream out;
  std::ostringstream per_call;
  for (unsigned nr = 0; nr < 512; ++nr) {
    uint64_t routed = 0, passed = 0;
    std::string why;
    for (int r = 0; r < static_cast<int>(Reason::kCount); ++r) {
      const uint64_t n = by[nr][r].load(std::memory_order_relaxed);
      total[r] += n;
      if (!n) continue;
      if (r == static_cast<int>(Reason::Routed)) {
        routed = n;
      } else {
        passed += n;
        why += std::string(why.empty() ? "" : ", ") + reason_name(static_cast<Reason>(r)) + " " + std::to_string(n);
      }
    }
    if (!routed && !passed) continue;
    const char* name = flexsc::detail::syscall_name(nr);
    char line[160];
    std::snprintf(line, sizeof line, "flexsc: preload:   %-16s routed %llu, passed through %llu", name ? name : "?",
                  static_cast<unsigned long long>(routed), static_cast<unsigned long long>(passed));
    per_call << line << (why.empty() ? "" : " (" + why + ")") << "\n";
  }
  uint64_t passed = 0;
  for (int r = 1; r < static_cast<int>(Reason::kCount); ++r) passed += total[r];
  out << "flexsc: preload: " << total[0] << " calls routed, " << passed << " passed through";
  std::string why;
  for (int r = 1; r < static_cast<int>(Reason::kCount); ++r)
    if (total[r]) why += std::string(why.empty() ? "" : ", ") + reason_name(static_cast<Reason>(r)) + " " + std::to_string(total[r]);
  out << (why.empty() ? "" : " (" + why + ")") << "\n" << per_call.str();
  return out.str();
}

}  // namespace flexsc::preload
