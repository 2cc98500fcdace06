#include "base/topology.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>

namespace flexsc::detail {

bool parse_cpu_list(const char* text, std::vector<int>* cpus) {
  cpus->clear();
  const char* p = text;
  while (*p) {
    char* end;
    long lo = std::strtol(p, &end, 10);
    if (end == p || lo < 0 || lo >= CPU_SETSIZE) return false;
    long hi = lo;
    p = end;
    if (*p == '-') {
      hi = std::strtol(p + 1, &end, 10);
      if (end == p + 1 || hi < lo || hi >= CPU_SETSIZE) return false;
      p = end;
    }
    for (long c = lo; c <= hi; ++c) cpus->push_back(static_cast<int>(c));
    if (*p == ',') {
      ++p;
      if (!*p) return false;
    } else if (*p) {
      return false;
    }
  }
  std::sort(cpus->begin(), cpus->end());
  cpus->erase(std::unique(cpus->begin(), cpus->end()), cpus->end());
  return !cpus->empty();
}

std::string format_cpu_list(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

namespace {

std::vector<int> os_cpus_of(hwloc_const_cpuset_t set) {
  std::vector<int> cpus;
  int i;
  hwloc_bitmap_foreach_begin(i, set) cpus.push_back(i);
  hwloc_bitmap_foreach_end();
  return cpus;
}

// The domain whose cores share a syscall core: the L3 cache if it holds
// two or more cores, else the package (the machine, where hwloc shows no
// package), else the core alone.
hwloc_obj_t domain_of(hwloc_topology_t topo, hwloc_obj_t core) {
  auto cores_in = [topo](hwloc_obj_t o) {
    return hwloc_get_nbobjs_inside_cpuset_by_type(topo, o->cpuset, HWLOC_OBJ_CORE);
  };
  hwloc_obj_t l3 = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_L3CACHE, core);
  if (l3 && cores_in(l3) >= 2) return l3;
  hwloc_obj_t pack = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, core);
  if (!pack) pack = hwloc_get_root_obj(topo);
  return cores_in(pack) >= 2 ? pack : core;
}

void fill_core_map(Placement* p) {
  int max_cpu = -1;
  for (auto& sc : p->syscall_cores)
    for (int c : sc.cpus) max_cpu = std::max(max_cpu, c);
  for (int c : p->user_cpus) max_cpu = std::max(max_cpu, c);
  p->core_of_cpu.assign(static_cast<size_t>(max_cpu + 1), -1);
  for (size_t i = 0; i < p->syscall_cores.size(); ++i) {
    for (int c : p->syscall_cores[i].cpus) p->core_of_cpu[static_cast<size_t>(c)] = static_cast<int>(i);
    for (int c : p->syscall_cores[i].serves) p->core_of_cpu[static_cast<size_t>(c)] = static_cast<int>(i);
  }
}

void plan_single_core(hwloc_topology_t topo, Placement* p) {
  p->single_core = true;
  p->user_cpus = os_cpus_of(hwloc_get_root_obj(topo)->cpuset);
  p->syscall_cores = {{p->user_cpus, p->user_cpus, true}};
}

// Automatic choice: in each domain of n >= 2 cores the last ceil(n/8)
// cores (whole cores, hyperthreads included) become syscall cores, each
// serving an equal share of the domain's other cores.  A core alone in its
// socket gets a shared syscall core of its own: it is never served from
// another socket.
void plan_auto(hwloc_topology_t topo, Placement* p) {
  std::map<hwloc_obj_t, std::vector<hwloc_obj_t>> domains;
  std::vector<hwloc_obj_t> order;  // domains in topology order
  const int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  for (int i = 0; i < ncores; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, static_cast<unsigned>(i));
    hwloc_obj_t dom = domain_of(topo, core);
    if (domains.find(dom) == domains.end()) order.push_back(dom);
    domains[dom].push_back(core);
  }
  for (hwloc_obj_t dom : order) {
    const auto& cores = domains[dom];
    const size_t n = cores.size();
    if (n == 1) {
      const std::vector<int> cpus = os_cpus_of(cores[0]->cpuset);
      p->syscall_cores.push_back({cpus, cpus, true});
      p->user_cpus.insert(p->user_cpus.end(), cpus.begin(), cpus.end());
      continue;
    }
    const size_t k = (n + 7) / 8;
    const size_t users = n - k;
    for (size_t s = 0; s < k; ++s) {
      Placement::SyscallCore sc;
      sc.cpus = os_cpus_of(cores[users + s]->cpuset);
      for (size_t u = s * users / k; u < (s + 1) * users / k; ++u)
        for (int c : os_cpus_of(cores[u]->cpuset)) sc.serves.push_back(c);
      p->syscall_cores.push_back(std::move(sc));
    }
    for (size_t u = 0; u < users; ++u)
      for (int c : os_cpus_of(cores[u]->cpuset)) p->user_cpus.push_back(c);
  }
  std::sort(p->user_cpus.begin(), p->user_cpus.end());
}

// Forced syscall CPUs: grouped by physical core; every other allowed CPU
// is served by the syscall core it shares the deepest cache with, ties
// going to the one serving fewer.
int plan_forced(hwloc_topology_t topo, const std::vector<int>& forced, Placement* p, std::string* error) {
  hwloc_const_cpuset_t allowed = hwloc_get_root_obj(topo)->cpuset;
  std::map<hwloc_obj_t, std::vector<int>> by_core;
  std::vector<hwloc_obj_t> order;
  for (int c : forced) {
    if (!hwloc_bitmap_isset(allowed, static_cast<unsigned>(c))) {
      *error = "syscall CPU " + std::to_string(c) +
               " is not one this process may use (allowed: " + format_cpu_list(os_cpus_of(allowed)) + ")";
      return -EINVAL;
    }
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, static_cast<unsigned>(c));
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    if (!core) core = pu;
    if (by_core.find(core) == by_core.end()) order.push_back(core);
    by_core[core].push_back(c);
  }
  for (hwloc_obj_t core : order) p->syscall_cores.push_back({by_core[core], {}, false});
  for (int c : os_cpus_of(allowed)) {
    if (std::binary_search(forced.begin(), forced.end(), c)) continue;
    p->user_cpus.push_back(c);
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo, static_cast<unsigned>(c));
    size_t best = 0;
    int best_depth = -1;
    for (size_t i = 0; i < order.size(); ++i) {
      int depth = hwloc_get_common_ancestor_obj(topo, pu, order[i])->depth;
      if (depth > best_depth ||
          (depth == best_depth && p->syscall_cores[i].serves.size() < p->syscall_cores[best].serves.size()))
        best = i, best_depth = depth;
    }
    p->syscall_cores[best].serves.push_back(c);
  }
  if (p->user_cpus.empty()) {
    *error = "FLEXSC_SYSCALL_CORES leaves no CPU for user threads";
    return -EINVAL;
  }
  return 0;
}

}  // namespace

int plan_placement(hwloc_topology_t topo, const std::vector<int>* forced, Placement* out,
                   std::string* error) {
  *out = Placement{};
  int rc = 0;
  if (forced && forced->empty())
    plan_single_core(topo, out);
  else if (forced)
    rc = plan_forced(topo, *forced, out, error);
  else if (hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) < 2)
    plan_single_core(topo, out);
  else
    plan_auto(topo, out);
  if (rc == 0) {
    fill_core_map(out);
    out->single_core = std::all_of(out->syscall_cores.begin(), out->syscall_cores.end(),
                                   [](const Placement::SyscallCore& sc) { return sc.shared; });
  }
  return rc;
}

int load_topology(hwloc_topology_t* topo, const char* synthetic, const std::vector<int>& allowed) {
  if (hwloc_topology_init(topo) < 0) return -ENOMEM;
  int rc = 0;
  if (synthetic && hwloc_topology_set_synthetic(*topo, synthetic) < 0) rc = -EINVAL;
  if (rc == 0 && hwloc_topology_load(*topo) < 0) rc = -EIO;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (rc == 0) {
    if (allowed.empty()) {
      // The calling thread's CPUs, and every CPU an earlier start saw: a
      // runtime restarted from a thread that flexsc_bind_user_thread()
      // pinned to the user cores must still see the syscall cores.
      static cpu_set_t seen;  // under the runtime's life-cycle lock
      cpu_set_t mask;
      if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
        CPU_OR(&seen, &seen, &mask);
        for (int c = 0; c < CPU_SETSIZE; ++c)
          if (CPU_ISSET(c, &seen)) hwloc_bitmap_set(set, static_cast<unsigned>(c));
      } else {
        hwloc_bitmap_copy(set, hwloc_get_root_obj(*topo)->cpuset);
      }
    } else {
      for (int c : allowed) hwloc_bitmap_set(set, static_cast<unsigned>(c));
    }
    hwloc_bitmap_and(set, set, hwloc_get_root_obj(*topo)->cpuset);
    if (hwloc_bitmap_iszero(set) || hwloc_topology_restrict(*topo, set, 0) < 0) rc = -EINVAL;
  }
  hwloc_bitmap_free(set);
  if (rc != 0) hwloc_topology_destroy(*topo);
  return rc;
}

}  // namespace flexsc::detail
