// Runtime settings: flexsc_options overridden by the environment.
#pragma once

#include <flexsc/flexsc.h>

#include <cstdint>
#include <string>
#include <vector>

namespace flexsc::detail {

struct Config {
  std::string backend = "auto";
  bool cores_forced = false;
  std::vector<int> syscall_cpus;  // cores_forced and empty: single-core mode
  std::string stats;              // as stats_destination()
  uint64_t drain_spin_ns = 50'000;
  uint64_t wait_spin_ns = 20'000;
  unsigned max_syscall_threads = 64;  // per syscall core

  // Reads opts (NULL: defaults) then the FLEXSC_* variables.  Returns 0,
  // or -EINVAL with *error saying which setting is wrong.
  static int load(const flexsc_options* opts, Config* out, std::string* error);
};

inline constexpr unsigned kMaxSyscallThreadsPerCore = 256;

// Where statistics go: FLEXSC_STATS, or option (flexsc_options.stats)
// when the variable is unset or empty.  "" for nowhere (unset, or "0"),
// "1" for stderr, anything else a file the report is appended to.  The
// runtime, the fiber layer and the drop-in wrapper all read it here.
std::string stats_destination(const char* option);

}  // namespace flexsc::detail
