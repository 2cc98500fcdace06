// Which CPUs run syscall threads and which user cores each one serves,
// decided from the hwloc topology restricted to the CPUs the process may use.
#pragma once

#include <hwloc.h>

#include <string>
#include <vector>

namespace flexsc::detail {

struct Placement {
  struct SyscallCore {
    std::vector<int> cpus;    // OS CPU numbers its syscall threads are pinned to
    std::vector<int> serves;  // user CPUs whose threads post to it
    // No dedicated CPU: the syscall threads share the user CPUs, and
    // entries run when their owner waits (FlexSC's single-core mode).
    bool shared = false;
  };
  std::vector<SyscallCore> syscall_cores;
  std::vector<int> user_cpus;
  std::vector<int> core_of_cpu;  // OS CPU number -> index into syscall_cores, -1 if not allowed
  // The syscall core serving a thread on `cpu`: the first one for a CPU
  // outside the plan (or -1 from a failed sched_getcpu).
  size_t core_serving(int cpu) const {
    const int idx = cpu >= 0 && static_cast<size_t>(cpu) < core_of_cpu.size()
                        ? core_of_cpu[static_cast<size_t>(cpu)]
                        : -1;
    return idx < 0 ? 0 : static_cast<size_t>(idx);
  }
  // No CPU could be reserved at all (one core, or FLEXSC_SYSCALL_CORES=none):
  // one shared syscall core serves everything.
  bool single_core = false;
};

// Parses a taskset-style list ("1", "2-3,6"). Returns false on bad syntax.
bool parse_cpu_list(const char* text, std::vector<int>* cpus);
std::string format_cpu_list(const std::vector<int>& cpus);

// topo must be restricted to the allowed CPUs already.  forced: the
// syscall CPUs the user asked for (nullptr: choose; empty: single-core
// mode).  Returns 0, or -EINVAL with *error set.
int plan_placement(hwloc_topology_t topo, const std::vector<int>* forced, Placement* out, std::string* error);

// Loads this machine's topology (or a synthetic one, for tests) and
// restricts it to `allowed` (OS CPU numbers; empty: the calling thread's
// affinity).  Returns 0 or -errno.
int load_topology(hwloc_topology_t* topo, const char* synthetic, const std::vector<int>& allowed);

}  // namespace flexsc::detail
