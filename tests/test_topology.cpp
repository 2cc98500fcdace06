// The placement policy (docs/architecture.md, Topology) on synthetic hwloc
// topologies: which CPUs become syscall cores, whom each serves, and the
// forced lists of FLEXSC_SYSCALL_CORES.
#include <errno.h>
#include <gtest/gtest.h>
#include <hwloc.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/topology.h"

namespace {

using flexsc::detail::format_cpu_list;
using flexsc::detail::load_topology;
using flexsc::detail::parse_cpu_list;
using flexsc::detail::Placement;
using flexsc::detail::plan_placement;

// An hwloc topology loaded from a synthetic description, destroyed at scope end.
class Topo {
 public:
  explicit Topo(const char* synthetic, std::vector<int> allowed = {}) {
    // An empty `allowed` would mean "this thread's affinity": pass every
    // CPU of the description instead, so the tests do not depend on the
    // machine they run on.
    if (allowed.empty()) allowed = all_pus(synthetic);
    rc_ = load_topology(&topo_, synthetic, allowed);
  }
  ~Topo() {
    if (rc_ == 0) hwloc_topology_destroy(topo_);
  }
  Topo(const Topo&) = delete;
  Topo& operator=(const Topo&) = delete;

  int rc() const { return rc_; }
  hwloc_topology_t get() const { return topo_; }

  // The object of `type` above OS CPU `cpu` (nullptr if none).
  hwloc_obj_t ancestor(int cpu, hwloc_obj_type_t type) const {
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo_, static_cast<unsigned>(cpu));
    if (!pu) return nullptr;
    return hwloc_get_ancestor_obj_by_type(topo_, type, pu);
  }
  std::vector<int> allowed_cpus() const {
    std::vector<int> out;
    int i;
    hwloc_bitmap_foreach_begin(i, hwloc_get_root_obj(topo_)->cpuset) out.push_back(i);
    hwloc_bitmap_foreach_end();
    return out;
  }

  static std::vector<int> all_pus(const char* synthetic) {
    hwloc_topology_t t;
    std::vector<int> out;
    if (hwloc_topology_init(&t) < 0) return out;
    if (hwloc_topology_set_synthetic(t, synthetic) == 0 && hwloc_topology_load(t) == 0) {
      int i;
      hwloc_bitmap_foreach_begin(i, hwloc_get_root_obj(t)->cpuset) out.push_back(i);
      hwloc_bitmap_foreach_end();
    }
    hwloc_topology_destroy(t);
    return out;
  }

 private:
  hwloc_topology_t topo_ = nullptr;
  int rc_ = -1;
};

std::string describe(const Placement& p) {
  std::string s = p.single_core ? "single_core; " : "";
  for (size_t i = 0; i < p.syscall_cores.size(); ++i)
    s += "sys[" + std::to_string(i) + "] cpus=" + format_cpu_list(p.syscall_cores[i].cpus) +
         " serves=" + format_cpu_list(p.syscall_cores[i].serves) + "; ";
  s += "user=" + format_cpu_list(p.user_cpus);
  return s;
}

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The invariants every placement must satisfy, whatever the policy:
// every allowed CPU is a syscall CPU or a user CPU (never both, outside
// single-core mode), every user CPU is served by exactly one syscall core,
// and core_of_cpu agrees.
void check_consistent(const Topo& topo, const Placement& p) {
  SCOPED_TRACE(describe(p));
  const std::vector<int> allowed = topo.allowed_cpus();
  const std::set<int> allowed_set(allowed.begin(), allowed.end());
  ASSERT_FALSE(p.syscall_cores.empty()) << "no syscall core at all";

  if (p.single_core) {
    EXPECT_EQ(sorted(p.user_cpus), allowed);
    ASSERT_EQ(p.syscall_cores.size(), 1u);
    EXPECT_EQ(sorted(p.syscall_cores[0].serves), allowed);
    for (int c : allowed) {
      ASSERT_LT(static_cast<size_t>(c), p.core_of_cpu.size()) << "cpu " << c;
      EXPECT_EQ(p.core_of_cpu[static_cast<size_t>(c)], 0) << "cpu " << c;
    }
    return;
  }

  std::map<int, int> syscall_cpu_owner;  // cpu -> syscall core index
  std::map<int, int> served_by;          // user cpu -> syscall core index
  for (size_t i = 0; i < p.syscall_cores.size(); ++i) {
    const auto& sc = p.syscall_cores[i];
    EXPECT_FALSE(sc.cpus.empty()) << "syscall core " << i << " has no CPU";
    for (int c : sc.cpus) {
      EXPECT_TRUE(allowed_set.count(c)) << "syscall cpu " << c << " is not allowed";
      EXPECT_TRUE(syscall_cpu_owner.emplace(c, static_cast<int>(i)).second)
          << "cpu " << c << " belongs to two syscall cores";
    }
    for (int c : sc.serves) {
      EXPECT_TRUE(allowed_set.count(c)) << "served cpu " << c << " is not allowed";
      EXPECT_TRUE(served_by.emplace(c, static_cast<int>(i)).second)
          << "cpu " << c << " is served by two syscall cores";
    }
  }
  const std::set<int> user_set(p.user_cpus.begin(), p.user_cpus.end());
  EXPECT_EQ(user_set.size(), p.user_cpus.size()) << "user_cpus has duplicates";
  EXPECT_FALSE(user_set.empty()) << "no user CPU left";
  for (int c : allowed) {
    const bool sys = syscall_cpu_owner.count(c) != 0;
    const bool user = user_set.count(c) != 0;
    EXPECT_NE(sys, user) << "cpu " << c
                         << (sys ? " is both a syscall and a user CPU"
                                 : " is neither a syscall nor a user CPU");
    if (user) {
      EXPECT_TRUE(served_by.count(c)) << "user cpu " << c << " is served by no syscall core";
    }
    if (sys) {
      EXPECT_FALSE(served_by.count(c)) << "syscall cpu " << c << " is also served as a user CPU";
    }
    ASSERT_LT(static_cast<size_t>(c), p.core_of_cpu.size()) << "core_of_cpu misses cpu " << c;
    const int want = sys ? syscall_cpu_owner[c] : (served_by.count(c) ? served_by[c] : -1);
    EXPECT_EQ(p.core_of_cpu[static_cast<size_t>(c)], want) << "core_of_cpu[" << c << "]";
  }
  for (int c : p.user_cpus) EXPECT_TRUE(allowed_set.count(c)) << "user cpu " << c << " is not allowed";
  for (size_t c = 0; c < p.core_of_cpu.size(); ++c) {
    if (!allowed_set.count(static_cast<int>(c))) {
      EXPECT_EQ(p.core_of_cpu[c], -1) << "core_of_cpu maps cpu " << c << ", which is not allowed";
    }
  }
}

// Hyperthread siblings are never split between a user and a syscall role.
void check_siblings_together(const Topo& topo, const Placement& p) {
  SCOPED_TRACE(describe(p));
  std::set<int> sys;
  for (const auto& sc : p.syscall_cores) sys.insert(sc.cpus.begin(), sc.cpus.end());
  for (int c : topo.allowed_cpus()) {
    hwloc_obj_t core = topo.ancestor(c, HWLOC_OBJ_CORE);
    ASSERT_NE(core, nullptr);
    int s;
    hwloc_bitmap_foreach_begin(s, core->cpuset) EXPECT_EQ(sys.count(c), sys.count(s))
        << "siblings " << c << " and " << s << " split between roles";
    hwloc_bitmap_foreach_end();
  }
  // One syscall core is one physical core, whole.
  for (const auto& sc : p.syscall_cores) {
    std::set<hwloc_obj_t> cores;
    for (int c : sc.cpus) cores.insert(topo.ancestor(c, HWLOC_OBJ_CORE));
    EXPECT_EQ(cores.size(), 1u) << "syscall core spans several physical cores: " << format_cpu_list(sc.cpus);
  }
}

// Every syscall core serves only CPUs of its own `type` object (L3, package).
void check_served_within(const Topo& topo, const Placement& p, hwloc_obj_type_t type, const char* what) {
  SCOPED_TRACE(describe(p));
  if (p.single_core) return;  // syscall work runs on the user's own CPUs
  for (size_t i = 0; i < p.syscall_cores.size(); ++i) {
    const auto& sc = p.syscall_cores[i];
    ASSERT_FALSE(sc.cpus.empty());
    hwloc_obj_t home = topo.ancestor(sc.cpus[0], type);
    ASSERT_NE(home, nullptr) << what << " of cpu " << sc.cpus[0];
    for (int c : sc.cpus)
      EXPECT_EQ(topo.ancestor(c, type), home) << "syscall core " << i << " spans " << what;
    for (int c : sc.serves)
      EXPECT_EQ(topo.ancestor(c, type), home)
          << "syscall core " << i << " (cpu " << sc.cpus[0] << ") serves cpu " << c << " in another " << what;
  }
}

Placement plan(const Topo& topo, const std::vector<int>* forced = nullptr) {
  Placement p;
  std::string error;
  EXPECT_EQ(topo.rc(), 0) << "load_topology failed";
  const int rc = plan_placement(topo.get(), forced, &p, &error);
  EXPECT_EQ(rc, 0) << error;
  return p;
}

std::vector<int> cpus(const char* list) {
  std::vector<int> v;
  EXPECT_TRUE(parse_cpu_list(list, &v)) << list;
  return v;
}

// ---- automatic placement ---------------------------------------------------

TEST(Topology, SyntheticLoads) {
  Topo t("pack:2 l3:2 core:8 pu:2");
  ASSERT_EQ(t.rc(), 0);
  EXPECT_EQ(hwloc_get_nbobjs_by_type(t.get(), HWLOC_OBJ_PU), 64);
  EXPECT_EQ(hwloc_get_nbobjs_by_type(t.get(), HWLOC_OBJ_CORE), 32);
  EXPECT_EQ(hwloc_get_nbobjs_by_type(t.get(), HWLOC_OBJ_PACKAGE), 2);
  EXPECT_EQ(hwloc_get_nbobjs_by_type(t.get(), HWLOC_OBJ_L3CACHE), 4);
}

TEST(Topology, BadSyntheticDescriptionIsAnError) {
  hwloc_topology_t topo;
  EXPECT_LT(load_topology(&topo, "frobnicate:3", {0}), 0);
}

TEST(Topology, AllowedSetOutsideTheMachineIsAnError) {
  hwloc_topology_t topo;
  EXPECT_EQ(load_topology(&topo, "core:2 pu:1", {5, 6}), -EINVAL);
}

TEST(Topology, OneCoreIsSingleCoreMode) {
  Topo t("core:1 pu:1");
  const Placement p = plan(t);
  EXPECT_TRUE(p.single_core) << describe(p);
  EXPECT_EQ(p.user_cpus, std::vector<int>{0});
  check_consistent(t, p);
}

TEST(Topology, OneCoreWithHyperthreadsIsSingleCoreMode) {
  // Two PUs but one physical core: reserving a sibling would split the core.
  Topo t("core:1 pu:2");
  const Placement p = plan(t);
  EXPECT_TRUE(p.single_core) << describe(p);
  check_consistent(t, p);
}

TEST(Topology, TwoCoresAreOneSyscallAndOneUserCore) {
  Topo t("core:2 pu:1");
  const Placement p = plan(t);
  EXPECT_FALSE(p.single_core) << describe(p);
  ASSERT_EQ(p.syscall_cores.size(), 1u) << describe(p);
  EXPECT_EQ(p.syscall_cores[0].cpus.size(), 1u);
  EXPECT_EQ(p.user_cpus.size(), 1u);
  EXPECT_EQ(sorted(p.syscall_cores[0].serves), p.user_cpus);
  check_consistent(t, p);
}

TEST(Topology, TwoCoresInOnePackageWithL3) {
  Topo t("pack:1 l3:1 core:2 pu:1");
  const Placement p = plan(t);
  EXPECT_FALSE(p.single_core);
  EXPECT_EQ(p.syscall_cores.size(), 1u) << describe(p);
  EXPECT_EQ(p.user_cpus.size(), 1u) << describe(p);
  check_consistent(t, p);
}

TEST(Topology, SixteenCoreSocketHasTwoSyscallCores) {
  Topo t("pack:1 l3:1 core:16 pu:1");
  const Placement p = plan(t);
  EXPECT_FALSE(p.single_core);
  ASSERT_EQ(p.syscall_cores.size(), 2u) << describe(p);
  EXPECT_EQ(p.user_cpus.size(), 14u) << describe(p);
  for (const auto& sc : p.syscall_cores) EXPECT_FALSE(sc.serves.empty()) << describe(p);
  // Shared fairly: 7 user cores each.
  EXPECT_EQ(p.syscall_cores[0].serves.size(), 7u) << describe(p);
  EXPECT_EQ(p.syscall_cores[1].serves.size(), 7u) << describe(p);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
  check_served_within(t, p, HWLOC_OBJ_L3CACHE, "L3");
}

TEST(Topology, SixteenCoreSocketWithHyperthreads) {
  Topo t("pack:1 l3:1 core:16 pu:2");
  const Placement p = plan(t);
  ASSERT_EQ(p.syscall_cores.size(), 2u) << describe(p);
  for (const auto& sc : p.syscall_cores) EXPECT_EQ(sc.cpus.size(), 2u) << "both siblings: " << describe(p);
  EXPECT_EQ(p.user_cpus.size(), 28u) << describe(p);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_L3CACHE, "L3");
}

TEST(Topology, TwoSocketsSeveralL3sHyperthreads) {
  Topo t("pack:2 l3:2 core:8 pu:2");
  const Placement p = plan(t);
  EXPECT_FALSE(p.single_core);
  // At least one syscall core per L3 domain, each in its own domain.
  ASSERT_GE(p.syscall_cores.size(), 4u) << describe(p);
  std::set<hwloc_obj_t> l3s_with_syscall_core;
  for (const auto& sc : p.syscall_cores)
    l3s_with_syscall_core.insert(t.ancestor(sc.cpus[0], HWLOC_OBJ_L3CACHE));
  EXPECT_EQ(l3s_with_syscall_core.size(), 4u) << describe(p);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
  check_served_within(t, p, HWLOC_OBJ_L3CACHE, "L3");
}

TEST(Topology, TwoSocketsManyCoresPerL3) {
  // 2 x 2 x 16 cores x 2 PUs: 128 CPUs, several syscall cores per L3.
  Topo t("pack:2 l3:2 core:16 pu:2");
  const Placement p = plan(t);
  EXPECT_GE(p.syscall_cores.size(), 8u) << describe(p);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
  check_served_within(t, p, HWLOC_OBJ_L3CACHE, "L3");
}

TEST(Topology, TwoSocketsWithoutL3NeverServeAcross) {
  Topo t("pack:2 core:8 pu:2");
  const Placement p = plan(t);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
}

TEST(Topology, LargeMachine192Cores) {
  Topo t("pack:4 l3:4 core:12 pu:2");
  const Placement p = plan(t);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
  check_served_within(t, p, HWLOC_OBJ_L3CACHE, "L3");
}

TEST(Topology, RestrictedAffinityToOneCpuIsSingleCore) {
  Topo t("core:2 pu:1", {0});
  ASSERT_EQ(t.rc(), 0);
  EXPECT_EQ(t.allowed_cpus(), std::vector<int>{0});
  const Placement p = plan(t);
  EXPECT_TRUE(p.single_core) << describe(p);
  EXPECT_EQ(p.user_cpus, std::vector<int>{0});
  check_consistent(t, p);
}

TEST(Topology, RestrictedAffinityToBothSiblingsOfOneCoreIsSingleCore) {
  Topo t("core:4 pu:2", {2, 3});
  const Placement p = plan(t);
  EXPECT_TRUE(p.single_core) << describe(p);
  EXPECT_EQ(sorted(p.user_cpus), (std::vector<int>{2, 3}));
  check_consistent(t, p);
}

TEST(Topology, RestrictedAffinityUsesOnlyAllowedCpus) {
  // Half of the second socket, with siblings.
  Topo t("pack:2 l3:1 core:8 pu:2", cpus("16-23"));
  const Placement p = plan(t);
  EXPECT_FALSE(p.single_core) << describe(p);
  check_consistent(t, p);
  check_siblings_together(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
}

TEST(Topology, RestrictedAffinityAcrossTwoSocketsStaysPerSocket) {
  // Four cores of each socket allowed.
  Topo t("pack:2 l3:1 core:8 pu:1", cpus("0-3,8-11"));
  const Placement p = plan(t);
  check_consistent(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
}

// docs/architecture.md: "Each syscall core must serve user cores in its own L3 domain
// and socket, never across sockets".  A socket with one usable core has no
// core of its own to spare; the rule still forbids handing its syscalls to
// another socket's syscall core (it can run them itself, as in single-core
// mode).  Only the cross-socket handoff and coverage are checked, so any
// rule-abiding way of serving the lone core passes.
void check_lone_core_not_served_across(const char* desc, const std::vector<int>& allowed) {
  SCOPED_TRACE(desc);
  Topo t(desc, allowed);
  const Placement p = plan(t);
  SCOPED_TRACE(describe(p));
  for (int c : t.allowed_cpus()) {
    ASSERT_LT(static_cast<size_t>(c), p.core_of_cpu.size());
    EXPECT_GE(p.core_of_cpu[static_cast<size_t>(c)], 0) << "cpu " << c << " is served by nobody";
  }
  if (p.single_core) return;  // syscall work runs on the user's own CPUs
  for (const auto& sc : p.syscall_cores) {
    hwloc_obj_t home = t.ancestor(sc.cpus[0], HWLOC_OBJ_PACKAGE);
    for (int c : sc.serves)
      EXPECT_EQ(t.ancestor(c, HWLOC_OBJ_PACKAGE), home)
          << "syscall cpu " << sc.cpus[0] << " serves cpu " << c << " on another socket";
  }
}

TEST(Topology, LoneCoreInASocketIsNeverServedAcrossSockets) {
  // Affinity leaves one core (cpu 8) of the second socket.
  check_lone_core_not_served_across("pack:2 core:8 pu:1", cpus("0-8"));
  // Two single-core sockets.
  check_lone_core_not_served_across("pack:2 core:1 pu:2", {});
}

// ---- forced syscall CPUs ----------------------------------------------------

TEST(Topology, ForcedSingleCpu) {
  Topo t("core:4 pu:1");
  const std::vector<int> forced = cpus("1");
  const Placement p = plan(t, &forced);
  EXPECT_FALSE(p.single_core);
  ASSERT_EQ(p.syscall_cores.size(), 1u) << describe(p);
  EXPECT_EQ(p.syscall_cores[0].cpus, std::vector<int>{1});
  EXPECT_EQ(sorted(p.user_cpus), (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(sorted(p.syscall_cores[0].serves), (std::vector<int>{0, 2, 3}));
  check_consistent(t, p);
}

TEST(Topology, ForcedListWithRange) {
  Topo t("pack:1 core:8 pu:1");
  const std::vector<int> forced = cpus("2-3,6");
  const Placement p = plan(t, &forced);
  ASSERT_EQ(p.syscall_cores.size(), 3u) << describe(p);
  std::set<int> sys;
  for (const auto& sc : p.syscall_cores) sys.insert(sc.cpus.begin(), sc.cpus.end());
  EXPECT_EQ(sys, (std::set<int>{2, 3, 6}));
  EXPECT_EQ(sorted(p.user_cpus), (std::vector<int>{0, 1, 4, 5, 7}));
  check_consistent(t, p);
}

TEST(Topology, ForcedSiblingsFormOneSyscallCore) {
  Topo t("core:4 pu:2");
  const std::vector<int> forced = cpus("2-3");  // both PUs of core 1
  const Placement p = plan(t, &forced);
  ASSERT_EQ(p.syscall_cores.size(), 1u) << describe(p);
  EXPECT_EQ(sorted(p.syscall_cores[0].cpus), (std::vector<int>{2, 3}));
  check_consistent(t, p);
  check_siblings_together(t, p);
}

TEST(Topology, ForcedOneSiblingIsHonoured) {
  // "unless asked": the user may split a core on purpose.
  Topo t("core:2 pu:2");
  const std::vector<int> forced = cpus("1");
  const Placement p = plan(t, &forced);
  ASSERT_EQ(p.syscall_cores.size(), 1u);
  EXPECT_EQ(p.syscall_cores[0].cpus, std::vector<int>{1});
  EXPECT_EQ(sorted(p.user_cpus), (std::vector<int>{0, 2, 3}));
  check_consistent(t, p);
}

TEST(Topology, ForcedPerSocketServesOwnSocket) {
  Topo t("pack:2 l3:1 core:8 pu:1");
  const std::vector<int> forced = cpus("7,15");
  const Placement p = plan(t, &forced);
  ASSERT_EQ(p.syscall_cores.size(), 2u) << describe(p);
  check_consistent(t, p);
  check_served_within(t, p, HWLOC_OBJ_PACKAGE, "package");
  for (const auto& sc : p.syscall_cores) EXPECT_EQ(sc.serves.size(), 7u) << describe(p);
}

TEST(Topology, ForcedCpuNotAllowedIsEinval) {
  Topo t("core:4 pu:1", {0, 1, 2});
  ASSERT_EQ(t.rc(), 0);
  const std::pair<const char*, const char*> cases[] = {{"3", "3"}, {"9", "9"}, {"1,3", "3"}};
  for (const auto& [list, culprit] : cases) {
    const std::vector<int> forced = cpus(list);
    Placement p;
    std::string error;
    EXPECT_EQ(plan_placement(t.get(), &forced, &p, &error), -EINVAL) << list << ": " << describe(p);
    EXPECT_NE(error.find(culprit), std::string::npos)
        << "the message should name CPU " << culprit << ": '" << error << "'";
  }
}

TEST(Topology, ForcedCpuOutsideHwlocBitmapRange) {
  // A CPU number far beyond the machine (but below CPU_SETSIZE).
  Topo t("core:2 pu:1");
  const std::vector<int> forced = cpus("1000");
  Placement p;
  std::string error;
  EXPECT_EQ(plan_placement(t.get(), &forced, &p, &error), -EINVAL);
  EXPECT_NE(error.find("1000"), std::string::npos) << error;
}

TEST(Topology, ForcedEveryCpuIsEinval) {
  Topo t("core:4 pu:1");
  const std::vector<int> forced = cpus("0-3");
  Placement p;
  std::string error;
  EXPECT_EQ(plan_placement(t.get(), &forced, &p, &error), -EINVAL) << describe(p);
  EXPECT_FALSE(error.empty());
}

TEST(Topology, ForcedEveryAllowedCpuIsEinval) {
  Topo t("core:4 pu:1", {1, 2});
  const std::vector<int> forced = cpus("1-2");
  Placement p;
  std::string error;
  EXPECT_EQ(plan_placement(t.get(), &forced, &p, &error), -EINVAL) << describe(p);
  EXPECT_FALSE(error.empty());
}

TEST(Topology, ForcedNoneIsSingleCore) {
  // FLEXSC_SYSCALL_CORES=none: an empty forced list.
  for (const char* desc : {"core:2 pu:1", "pack:2 l3:2 core:8 pu:2"}) {
    Topo t(desc);
    const std::vector<int> none;
    const Placement p = plan(t, &none);
    EXPECT_TRUE(p.single_core) << desc << ": " << describe(p);
    check_consistent(t, p);
  }
}

TEST(Topology, PlacementIsDeterministic) {
  Topo t1("pack:2 l3:2 core:8 pu:2"), t2("pack:2 l3:2 core:8 pu:2");
  const Placement a = plan(t1), b = plan(t2);
  ASSERT_EQ(a.syscall_cores.size(), b.syscall_cores.size());
  for (size_t i = 0; i < a.syscall_cores.size(); ++i) {
    EXPECT_EQ(a.syscall_cores[i].cpus, b.syscall_cores[i].cpus);
    EXPECT_EQ(a.syscall_cores[i].serves, b.syscall_cores[i].serves);
  }
  EXPECT_EQ(a.user_cpus, b.user_cpus);
}

// ---- CPU lists ------------------------------------------------------------------

TEST(CpuList, Parses) {
  std::vector<int> v;
  ASSERT_TRUE(parse_cpu_list("1", &v));
  EXPECT_EQ(v, std::vector<int>{1});
  ASSERT_TRUE(parse_cpu_list("2-3,6", &v));
  EXPECT_EQ(v, (std::vector<int>{2, 3, 6}));
  ASSERT_TRUE(parse_cpu_list("0", &v));
  EXPECT_EQ(v, std::vector<int>{0});
  ASSERT_TRUE(parse_cpu_list("5,1,3-4,1", &v));  // sorted, duplicates merged
  EXPECT_EQ(v, (std::vector<int>{1, 3, 4, 5}));
  ASSERT_TRUE(parse_cpu_list("7-7", &v));
  EXPECT_EQ(v, std::vector<int>{7});
}

TEST(CpuList, RejectsGarbage) {
  for (const char* bad : {"", "a", "3-1", "1,", "-1", ",1", "1,,2", "1-", "1-2-3", "1 2", "1x", "2-a",
                          "99999", "0-99999", "none"}) {
    std::vector<int> v{42};
    EXPECT_FALSE(parse_cpu_list(bad, &v)) << "'" << bad << "' accepted as " << format_cpu_list(v);
  }
}

TEST(CpuList, Formats) {
  EXPECT_EQ(format_cpu_list({}), "");
  EXPECT_EQ(format_cpu_list({1}), "1");
  EXPECT_EQ(format_cpu_list({2, 3, 6}), "2-3,6");
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3}), "0-3");
  EXPECT_EQ(format_cpu_list({0, 2, 4}), "0,2,4");
  EXPECT_EQ(format_cpu_list({0, 1, 3, 4, 5, 9}), "0-1,3-5,9");
}

TEST(CpuList, RoundTrips) {
  for (const char* text : {"0", "1", "2-3,6", "0-63", "0,2,4-7,10", "1-2,4-5,100-101", "1023"}) {
    std::vector<int> v;
    ASSERT_TRUE(parse_cpu_list(text, &v)) << text;
    EXPECT_EQ(format_cpu_list(v), text);
    std::vector<int> again;
    ASSERT_TRUE(parse_cpu_list(format_cpu_list(v).c_str(), &again));
    EXPECT_EQ(again, v);
  }
}

}  // namespace
