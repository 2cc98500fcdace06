// Processes and identity: ids, scheduling and limits, signals, children,
// randomness, futexes.
#include <linux/capability.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void identity(Run& r) {
  Fixture& f = r.fx;
  r.sys("getpid", SYS_getpid);
  r.sys("getppid", SYS_getppid);
  r.sys("gettid", SYS_gettid);
  r.sys("getuid", SYS_getuid);
  r.sys("geteuid", SYS_geteuid);
  r.sys("getgid", SYS_getgid);
  r.sys("getegid", SYS_getegid);
  unsigned ids[3] = {};
  r.sys("getresuid", SYS_getresuid, &ids[0], &ids[1], &ids[2]);
  r.log("resuid", fmt("%u %u %u", ids[0], ids[1], ids[2]));
  r.sys("getresgid", SYS_getresgid, &ids[0], &ids[1], &ids[2]);
  r.log("resgid", fmt("%u %u %u", ids[0], ids[1], ids[2]));
  r.sys("getresuid bad pointer", SYS_getresuid, kBadPtr, &ids[1], &ids[2]);
  const long ng = r.sys("getgroups count", SYS_getgroups, 0, nullptr);
  gid_t groups[64] = {};
  const long got = r.sys("getgroups", SYS_getgroups, 64, groups);
  std::string list;
  for (long i = 0; i < got && i < 64; ++i) list += fmt(" %u", groups[i]);
  r.log("groups", list);
  if (ng > 0) r.sys("getgroups too small", SYS_getgroups, ng - 1 > 0 ? ng - 1 : 0, groups);
  r.sys("getgroups negative", SYS_getgroups, -1, groups);
  r.sys("getpgrp", SYS_getpgrp);
  r.sys("getpgid 0", SYS_getpgid, 0);
  r.sys("getpgid no such process", SYS_getpgid, 0x3fffffff);
  r.sys("getsid 0", SYS_getsid, 0);
  r.sys("getsid no such process", SYS_getsid, 0x3fffffff);
  r.sys("setpgid to its own group", SYS_setpgid, 0, sc(SYS_getpgid, 0));
  struct utsname u {};
  r.sys("uname", SYS_uname, &u);
  r.log("uname",
        fmt("%s|%s|%s|%s|%s|%s", u.sysname, u.nodename, u.release, u.version, u.machine, u.domainname));
  r.sys("uname bad pointer", SYS_uname, kBadPtr);
  struct sysinfo si {
  }, sa{}, sb{};
  sc(SYS_sysinfo, &sa);
  const long rc = r.call(SYS_sysinfo, &si);
  sc(SYS_sysinfo, &sb);
  r.log("sysinfo",
        ret_str(rc) + fmt(" totalram=%lu totalswap=%lu mem_unit=%u uptime between=%d", si.totalram,
                          si.totalswap, si.mem_unit, sa.uptime <= si.uptime && si.uptime <= sb.uptime));
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2] = {};
  r.sys("capget self", SYS_capget, &hdr, caps);
  r.log("caps", fmt("%#x/%#x %#x/%#x %#x/%#x", caps[0].effective, caps[1].effective, caps[0].permitted,
                    caps[1].permitted, caps[0].inheritable, caps[1].inheritable));
  hdr = {0x12345678, 0};
  r.sys("capget bad version", SYS_capget, &hdr, caps);
  r.log("version written back", fmt("%#x", hdr.version));
  char name[17] = {};
  r.sys("prctl PR_GET_NAME", SYS_prctl, PR_GET_NAME, name, 0, 0, 0);
  r.log("thread name", quote(name, static_cast<long>(std::strlen(name))));
  r.sys("prctl PR_GET_DUMPABLE", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
  r.sys("prctl PR_GET_NO_NEW_PRIVS", SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  r.sys("prctl unknown option", SYS_prctl, 9999, 0, 0, 0, 0);
  r.sys("personality query", SYS_personality, 0xffffffffL);
  r.log("getpid is self", f.pid_name(r.call(SYS_getpid)));
}

void scheduling_and_limits(Run& r) {
  uint64_t mask[16] = {};
  const long n = r.sys("sched_getaffinity 0", SYS_sched_getaffinity, 0, sizeof mask, mask);
  r.log("affinity", fmt("%#lx", mask[0]));
  r.sys("sched_getaffinity pid", SYS_sched_getaffinity, g.pid, sizeof mask, mask);
  r.log("affinity", fmt("%#lx", mask[0]));
  r.sys("sched_getaffinity tiny buffer", SYS_sched_getaffinity, 0, 1, mask);
  if (n > 0) r.sys("sched_setaffinity unchanged", SYS_sched_setaffinity, 0, n, mask);
  r.sys("sched_getscheduler 0", SYS_sched_getscheduler, 0);
  r.sys("sched_getscheduler pid", SYS_sched_getscheduler, g.pid);
  r.sys("sched_getscheduler no such process", SYS_sched_getscheduler, 0x3fffffff);
  sched_param sp{-1};
  r.sys("sched_getparam 0", SYS_sched_getparam, 0, &sp);
  r.log("priority", std::to_string(sp.sched_priority));
  r.sys("sched_setparam 0 (unchanged)", SYS_sched_setparam, 0, &sp);
  r.sys("sched_get_priority_max FIFO", SYS_sched_get_priority_max, SCHED_FIFO);
  r.sys("sched_get_priority_min RR", SYS_sched_get_priority_min, SCHED_RR);
  r.sys("sched_get_priority_max bad policy", SYS_sched_get_priority_max, 12345);
  timespec ts{-1, -1};
  r.sys("sched_rr_get_interval 0", SYS_sched_rr_get_interval, 0, &ts);
  r.log("interval non-negative", yes(ts.tv_sec >= 0 && ts.tv_nsec >= 0));
  struct {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
  } attr{};
  r.sys("sched_getattr 0", SYS_sched_getattr, 0, &attr, sizeof attr, 0);
  r.log("sched_attr", fmt("size=%u policy=%u flags=%#lx nice=%d priority=%u", attr.size, attr.policy,
                          attr.flags, attr.nice, attr.priority));
  r.sys("sched_getattr bad flags", SYS_sched_getattr, 0, &attr, sizeof attr, 1);
  r.sys("sched_yield", SYS_sched_yield);
  const long prio = r.sys("getpriority PROCESS 0", SYS_getpriority, PRIO_PROCESS, 0);
  r.sys("getpriority PROCESS pid", SYS_getpriority, PRIO_PROCESS, g.pid);
  r.sys("getpriority PGRP 0", SYS_getpriority, PRIO_PGRP, 0);
  r.sys("getpriority bad which", SYS_getpriority, 99, 0);
  r.sys("setpriority PROCESS 0 (nice +1)", SYS_setpriority, PRIO_PROCESS, 0, 20 - prio + 1);
  r.sys("getpriority after", SYS_getpriority, PRIO_PROCESS, 0);
  constexpr long kIoprioWhoProcess = 1;
  r.sys("ioprio_get PROCESS 0", SYS_ioprio_get, kIoprioWhoProcess, 0);
  r.sys("ioprio_get PROCESS pid", SYS_ioprio_get, kIoprioWhoProcess, g.pid);
  r.sys("ioprio_get bad which", SYS_ioprio_get, 99, 0);
  rlimit rl{};
  r.sys("getrlimit NOFILE", SYS_getrlimit, RLIMIT_NOFILE, &rl);
  r.log("NOFILE", fmt("%ld %ld", static_cast<long>(rl.rlim_cur), static_cast<long>(rl.rlim_max)));
  r.sys("getrlimit bad resource", SYS_getrlimit, 99, &rl);
  r.sys("getrlimit bad pointer", SYS_getrlimit, RLIMIT_NOFILE, kBadPtr);
  rlimit old{}, core{0, 0};
  r.sys("prlimit64 query STACK", SYS_prlimit64, 0, RLIMIT_STACK, nullptr, &old);
  r.log("STACK", fmt("%ld %ld", static_cast<long>(old.rlim_cur), static_cast<long>(old.rlim_max)));
  sc(SYS_prlimit64, 0, RLIMIT_CORE, nullptr, &core);
  core.rlim_cur = core.rlim_max == 0 ? 0 : std::min<rlim_t>(core.rlim_max, 4096);
  r.sys("setrlimit CORE", SYS_setrlimit, RLIMIT_CORE, &core);
  rlimit inverted{10, 5};
  r.sys("setrlimit soft above hard", SYS_setrlimit, RLIMIT_NOFILE, &inverted);
  r.sys("prlimit64 bad resource", SYS_prlimit64, 0, 99, nullptr, &old);
  r.sys("prlimit64 no such process", SYS_prlimit64, 0x3fffffff, RLIMIT_NOFILE, nullptr, &old);
}

void signals(Run& r) {
  Fixture& f = r.fx;
  uint64_t old = 0;
  r.sys("rt_sigprocmask query", SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &old, 8);
  r.log("blocked", fmt("%#lx", old));
  const uint64_t alrm = sigbit(SIGALRM) | sigbit(SIGTERM);
  r.sys("rt_sigprocmask block TERM", SYS_rt_sigprocmask, SIG_BLOCK, &alrm, nullptr, 8);
  r.sys("rt_sigprocmask bad how", SYS_rt_sigprocmask, 99, &alrm, nullptr, 8);
  r.sys("rt_sigprocmask bad size", SYS_rt_sigprocmask, SIG_BLOCK, &alrm, nullptr, 4);
  r.sys("kill self SIGUSR2 (blocked)", SYS_kill, g.pid, SIGUSR2);
  r.sys("tgkill this thread SIGUSR1 (blocked)", SYS_tgkill, g.pid, sc(SYS_gettid), SIGUSR1);
  uint64_t pending = 0;
  r.sys("rt_sigpending", SYS_rt_sigpending, &pending, 8);
  r.log("pending", fmt("%#lx", pending));
  r.sys("kill self 0", SYS_kill, g.pid, 0);
  r.sys("kill no such process", SYS_kill, 0x3fffffff, 0);
  r.sys("kill bad signal", SYS_kill, g.pid, 9999);
  r.sys("tgkill wrong tgid", SYS_tgkill, 0x3fffffff, sc(SYS_gettid), 0);
  KSigaction act{}, prev{};
  r.sys("rt_sigaction query USR2", SYS_rt_sigaction, SIGUSR2, nullptr, &prev, 8);
  r.log("USR2 handler", prev.handler == reinterpret_cast<unsigned long>(SIG_DFL) ? "default" : "other");
  act.handler = reinterpret_cast<unsigned long>(SIG_IGN);
  r.sys("rt_sigaction ignore ALRM", SYS_rt_sigaction, SIGALRM, &act, nullptr, 8);
  r.sys("rt_sigaction KILL", SYS_rt_sigaction, SIGKILL, &act, nullptr, 8);
  r.sys("rt_sigaction bad size", SYS_rt_sigaction, SIGUSR2, nullptr, &prev, 4);
  siginfo_t info{};
  const timespec zero{};
  const uint64_t usr2 = sigbit(SIGUSR2);
  r.sys("rt_sigtimedwait USR2", SYS_rt_sigtimedwait, &usr2, &info, &zero, 8);
  r.log("siginfo", fmt("signo=%d code=%d pid=", info.si_signo, info.si_code) + f.pid_name(info.si_pid));
  r.sys("rt_sigtimedwait nothing pending", SYS_rt_sigtimedwait, &usr2, &info, &zero, 8);
  stack_t ss{};
  r.sys("sigaltstack query", SYS_sigaltstack, nullptr, &ss);
  r.log("altstack flags", std::to_string(ss.ss_flags));
  stack_t tiny{region(0), 0, 16};
  r.sys("sigaltstack too small", SYS_sigaltstack, &tiny, nullptr);
  const long sfd = r.sys("signalfd4 USR2", SYS_signalfd4, -1, &usr2, 8, SFD_NONBLOCK | SFD_CLOEXEC);
  r.sys("kill self SIGUSR2 again", SYS_kill, g.pid, SIGUSR2);
  signalfd_siginfo ssi{};
  r.sys("read signalfd (process-directed)", SYS_read, sfd, &ssi, sizeof ssi);
  r.log("ssi", fmt("signo=%u code=%d pid=", ssi.ssi_signo, ssi.ssi_code) + f.pid_name(ssi.ssi_pid));
  r.sys("signalfd4 bad size", SYS_signalfd4, -1, &usr2, 4, 0);
  r.sys("signalfd4 bad flags", SYS_signalfd4, -1, &usr2, 8, 0x1);
}

void children(Run& r) {
  Fixture& f = r.fx;
  const long c1 = f.spawn(7, "child1");
  int status = -1;
  rusage ru{};
  r.log("wait4 child1", f.pid_name(r.call(SYS_wait4, c1, &status, 0, &ru)));
  r.log("status", fmt("%#x exited=%d code=%d", status, WIFEXITED(status), WEXITSTATUS(status)));
  r.sys("wait4 nothing left", SYS_wait4, -1, &status, WNOHANG, nullptr);
  r.sys("wait4 bad options", SYS_wait4, -1, &status, 0x1000, nullptr);
  r.sys("wait4 __WNOTHREAD|WNOHANG", SYS_wait4, -1, &status, __WNOTHREAD | WNOHANG, nullptr);
  const long c2 = f.spawn(-1, "child2");
  const long pidfd = r.sys("pidfd_open child2", SYS_pidfd_open, c2, 0);
  r.sys("pidfd_open bad flags", SYS_pidfd_open, c2, 0x1);
  r.sys("pidfd_open bad pid", SYS_pidfd_open, -5, 0);
  r.sys("wait4 running child WNOHANG", SYS_wait4, c2, &status, WNOHANG, nullptr);
  r.sys("kill child2 0", SYS_kill, c2, 0);
  r.sys("pidfd_send_signal SIGTERM", SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
  siginfo_t info{};
  constexpr long kPidfd = 3;  // P_PIDFD
  r.sys("waitid P_PIDFD WEXITED", SYS_waitid, kPidfd, pidfd, &info, WEXITED, nullptr);
  r.log("siginfo", fmt("signo=%d code=%d status=%d pid=", info.si_signo, info.si_code, info.si_status) +
                       f.pid_name(info.si_pid));
  r.sys("kill reaped child", SYS_kill, c2, 0);
  r.sys("pidfd_send_signal to the reaped child", SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
  r.sys("waitid nothing left", SYS_waitid, P_ALL, 0, &info, WEXITED | WNOHANG, nullptr);
  r.sys("waitid bad idtype", SYS_waitid, 99, 0, &info, WEXITED, nullptr);
  r.sys("pidfd_send_signal on a file", SYS_pidfd_send_signal, f.fd_a, SIGTERM, nullptr, 0);
  const long c3 = f.spawn(-1, "child3");
  r.sys("kill child3 SIGKILL", SYS_kill, c3, SIGKILL);
  r.log("wait4 child3", f.pid_name(r.call(SYS_wait4, c3, &status, 0, nullptr)));
  r.log("status", fmt("%#x signaled=%d sig=%d", status, WIFSIGNALED(status), WTERMSIG(status)));
}

void randomness(Run& r) {
  unsigned char a[32] = {}, b[32] = {};
  r.sys("getrandom 32", SYS_getrandom, a, sizeof a, 0);
  r.sys("getrandom 32 NONBLOCK", SYS_getrandom, b, sizeof b, GRND_NONBLOCK);
  r.log("two draws differ", yes(std::memcmp(a, b, sizeof a) != 0));
  r.sys("getrandom 0 bytes", SYS_getrandom, a, 0, 0);
  r.sys("getrandom bad flags", SYS_getrandom, a, sizeof a, 0x100);
  r.sys("getrandom bad pointer", SYS_getrandom, kBadPtr, sizeof a, 0);
}

// Futexes: wake and wait are remote (wait in the blocking class); PI
// operations write the caller's TID into the word and are local.
void futexes(Run& r) {
  alignas(4) uint32_t word = 5;
  r.sys("FUTEX_WAKE nobody waiting", SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  r.sys("FUTEX_WAIT value changed", SYS_futex, &word, FUTEX_WAIT_PRIVATE, 4, nullptr, nullptr, 0);
  const timespec ms{0, 1000000};
  r.sys("FUTEX_WAIT 1 ms timeout", SYS_futex, &word, FUTEX_WAIT_PRIVATE, 5, &ms, nullptr, 0);
  r.sys("FUTEX_WAIT_BITSET bitset 0", SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 5, &ms, nullptr, 0);
  r.sys("futex unknown op", SYS_futex, &word, 99, 0, nullptr, nullptr, 0);
  r.sys("futex unaligned", SYS_futex, reinterpret_cast<char*>(&word) + 1, FUTEX_WAKE_PRIVATE, 1, nullptr,
        nullptr, 0);
  word = 0;
  r.sys("FUTEX_TRYLOCK_PI free word", SYS_futex, &word, FUTEX_TRYLOCK_PI_PRIVATE, 0, nullptr, nullptr, 0);
  r.log("owner written into the word is the caller",
        yes((word & FUTEX_TID_MASK) == static_cast<uint32_t>(sc(SYS_gettid))));
  r.sys("FUTEX_TRYLOCK_PI held by the caller", SYS_futex, &word, FUTEX_TRYLOCK_PI_PRIVATE, 0, nullptr,
        nullptr, 0);
  r.sys("FUTEX_UNLOCK_PI", SYS_futex, &word, FUTEX_UNLOCK_PI_PRIVATE, 0, nullptr, nullptr, 0);
  r.log("word after unlock", std::to_string(word));
  r.sys("FUTEX_UNLOCK_PI not owner", SYS_futex, &word, FUTEX_UNLOCK_PI_PRIVATE, 0, nullptr, nullptr, 0);
  uint32_t robust_len = 0;
  void* head = nullptr;
  r.sys("get_robust_list 0", SYS_get_robust_list, 0, &head, &robust_len);
  void* own = nullptr;
  sc(SYS_get_robust_list, 0, &own, &robust_len);
  r.log("robust list is the caller's", yes(head != nullptr && head == own));
}

const Case kCases[] = {
    {"identity", identity},     {"scheduling_and_limits", scheduling_and_limits},
    {"signals", signals},       {"children", children},
    {"randomness", randomness}, {"futexes", futexes},
};
const bool kRegistered = register_cases(Group::kProcesses, kCases);

}  // namespace
}  // namespace flexsc::test::diff
