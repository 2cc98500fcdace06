// The kernel shim and the library decide alike which calls a syscall thread
// may run: the module's own decision code (kernel-shim/flexsc_decide.h,
// built for userspace in module_decide.c) against classify(), over every
// syscall number and each edge of every argument rule.  A server must run
// exactly what the library would post to it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/close_range.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <array>
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "abi/module_decide.h"
#include "base/classify.h"

namespace flexsc::detail {
namespace {

using Args = std::array<unsigned long, 6>;

class AbiAgreement : public testing::Test {
 protected:
  static void SetUpTestSuite() { flexsc_module_decide_init(); }
};

bool module_serves(long nr, const Args& a) {
  // An entry carries the low 32 bits of the number.
  return flexsc_module_serves(static_cast<uint32_t>(nr), a.data());
}

bool library_offloads(long nr, const Args& a, std::string* cls) {
  long args[6];
  for (int i = 0; i < 6; ++i) args[i] = static_cast<long>(a[i]);
  const auto c = classify(nr, args);
  *cls = class_name(c);
  return !runs_on_caller(c);
}

// Every number the headers know, the module's table past them, numbers past
// both, negative ones and the x32 range.
std::vector<long> numbers() {
  std::vector<long> nrs;
  for (long nr = -64; nr < static_cast<long>(flexsc_module_nr_syscalls()) + 64; ++nr) nrs.push_back(nr);
  for (long nr : {0x40000000L, 0x40000000L + SYS_getppid, 0x40000000L + SYS_read, static_cast<long>(INT_MAX),
                  static_cast<long>(INT_MIN), static_cast<long>(UINT32_MAX)})
    nrs.push_back(nr);
  return nrs;
}

// Values on an edge of some argument rule (abi/flexsc/thread_args.h, the
// module's register wrapper) or of the blocking refinements of classify().
std::vector<unsigned long> edge_values() {
  constexpr long kHigh = 1L << 32;  // an int argument is its low 32 bits
  std::vector<unsigned long> v;
  // pid 0 or another; PRIO_* and IOPRIO_WHO_* which; RUSAGE_*; the clock ids;
  // every futex command; PROT_* bits; CLOSE_RANGE_* flags; WNOHANG.
  for (long i = 0; i < 16; ++i) {
    for (long x : {i, i + kHigh, i | FUTEX_PRIVATE_FLAG, i | FUTEX_CLOCK_REALTIME,
                   i | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME})
      v.push_back(static_cast<unsigned long>(x));
  }
  for (long x : std::initializer_list<long>{
           1234L, 1234L + kHigh, -1L, 0xffffffffL, kHigh, -kHigh,
           // clock ids: of the calling thread, of thread 1 (CPUCLOCK_SCHED,
           // then PROF), of process 1; sign-extended or not
           -2L, -10L, 0xfffffff6L, -12L, -14L, 0xfffffff2L,
           // execute-only memory, and not
           PROT_EXEC | PROT_GROWSDOWN, PROT_EXEC | PROT_GROWSUP, PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP,
           PROT_READ | PROT_EXEC | PROT_GROWSDOWN, PROT_GROWSDOWN, PROT_EXEC + kHigh,
           // a signal mask for the call
           0x1000L, 0x7ffd0000L,
           // wait flags
           __WNOTHREAD, __WNOTHREAD | __WALL, __WNOTHREAD | WNOHANG, __WALL, __WCLONE, __WNOTHREAD + kHigh,
           // close_range, fcntl, flock
           CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC, F_SETLKW, F_OFD_SETLKW, F_OFD_SETLK, LOCK_EX | LOCK_NB,
           LOCK_SH | LOCK_NB})
    v.push_back(static_cast<unsigned long>(x));
  return v;
}

// Zero; each value alone in each register; every pair in the registers
// whose rules read two (which and who; prot and pkey); all ones.
std::vector<Args> edge_args() {
  const std::vector<unsigned long> values = edge_values();
  std::vector<Args> all = {Args{}};
  for (int reg = 0; reg < 6; ++reg) {
    for (unsigned long x : values) {
      Args a{};
      a[reg] = x;
      all.push_back(a);
    }
  }
  for (int first : {0, 2}) {
    for (unsigned long x : values) {
      for (unsigned long y : values) {
        Args a{};
        a[first] = x;
        a[first + 1] = y;
        all.push_back(a);
      }
    }
  }
  all.push_back(Args{~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL});
  return all;
}

std::string call_text(long nr, const Args& a) {
  std::ostringstream s;
  const char* name = syscall_name(nr);
  s << (name ? name : "nr " + std::to_string(nr)) << "(" << std::hex;
  for (int i = 0; i < 6; ++i) s << (i ? ", 0x" : "0x") << a[i];
  s << std::dec << ")";
  if (name) s << " (nr " << nr << ")";
  return s.str();
}

// One failure per number that disagrees, naming its first such arguments.
TEST_F(AbiAgreement, EveryNumberAndArgumentEdge) {
  const std::vector<Args> args = edge_args();
  uint64_t checked = 0, disagreements = 0;
  for (long nr : numbers()) {
    unsigned wrong = 0;
    std::string first;
    for (const Args& a : args) {
      std::string cls;
      const bool lib = library_offloads(nr, a, &cls);
      const bool mod = module_serves(nr, a);
      ++checked;
      if (lib == mod || wrong++) continue;
      first = call_text(nr, a) + ": the library classes it " + cls + ", but the module " +
              (mod ? "serves it" : "refuses it");
    }
    if (wrong) ADD_FAILURE() << first << " (" << wrong << " of " << args.size() << " argument sets disagree)";
    disagreements += wrong;
  }
  EXPECT_EQ(disagreements, 0u) << "of " << checked << " calls";
}

// The comparison is not empty: the module's code runs, serves most
// numbers, and refuses by number and by arguments.
TEST_F(AbiAgreement, TheModuleDecides) {
  EXPECT_GT(flexsc_module_nr_syscalls(), kSyscallTableSize);
  const Args zero{};
  unsigned served = 0;
  for (unsigned nr = 0; nr < flexsc_module_nr_syscalls(); ++nr)
    served += flexsc_module_serves(nr, zero.data());
  EXPECT_GT(served, 250u);
  EXPECT_TRUE(module_serves(SYS_getppid, zero));
  EXPECT_FALSE(module_serves(SYS_gettid, zero));
  EXPECT_FALSE(module_serves(SYS_sched_setaffinity, zero));  // pid 0
  EXPECT_TRUE(module_serves(SYS_sched_setaffinity, Args{1234}));
  EXPECT_FALSE(module_serves(SYS_futex, Args{0, FUTEX_LOCK_PI_PRIVATE}));
  EXPECT_TRUE(module_serves(SYS_futex, Args{0, FUTEX_WAKE_PRIVATE}));
  EXPECT_FALSE(module_serves(SYS_mprotect, Args{0x10000, 4096, PROT_EXEC}));
  EXPECT_FALSE(module_serves(-1, zero));
  EXPECT_FALSE(module_serves(flexsc_module_nr_syscalls(), zero));
}

}  // namespace
}  // namespace flexsc::detail
