// What belongs to the calling thread: calls that depend on it, and side
// effects that must land on it.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <cstdint>
#include <cstring>
#include <ctime>

#include "differential.h"
#include "test_util.h"

namespace flexsc::test::diff {
namespace {

// Calls the table classes as local depend on the calling thread: the
// results must be the caller's.
void caller_thread(Run& r) {
  uint64_t mask[16] = {};
  const long len = sc(SYS_sched_getaffinity, 0, sizeof mask, mask);
  int cpu = -1;
  for (int c = 0; len > 0 && c < 1024; ++c)
    if (mask[c / 64] & (uint64_t{1} << (c % 64))) cpu = c;  // the last allowed CPU
  uint64_t one[16] = {};
  one[cpu / 64] = uint64_t{1} << (cpu % 64);
  if (sc(SYS_sched_setaffinity, 0, sizeof one, one) == 0) {
    unsigned got = ~0u, node = ~0u;
    r.sys("getcpu pinned to one CPU", SYS_getcpu, &got, &node, nullptr);
    r.log("getcpu is the pinned CPU", yes(static_cast<int>(got) == cpu));
    uint64_t seen[16] = {};
    r.sys("sched_getaffinity 0 while pinned", SYS_sched_getaffinity, 0, sizeof seen, seen);
    r.log("affinity is the pinned CPU", yes(std::memcmp(seen, one, sizeof one) == 0));
    sc(SYS_sched_setaffinity, 0, len, mask);
  }
  r.log("gettid is the caller", yes(r.call(SYS_gettid) == sc(SYS_gettid)));
  const uint64_t usr1 = sigbit(SIGUSR1);
  r.sys("rt_sigprocmask unblock USR1", SYS_rt_sigprocmask, SIG_UNBLOCK, &usr1, nullptr, 8);
  uint64_t now = 0;
  sc(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &now, 8);
  r.log("caller's mask changed", yes(!(now & usr1)));
  r.sys("rt_sigprocmask block USR1", SYS_rt_sigprocmask, SIG_BLOCK, &usr1, nullptr, 8);
  r.sys("prctl PR_SET_NAME", SYS_prctl, PR_SET_NAME, "diff-caller", 0, 0, 0);
  char name[17] = {};
  sc(SYS_prctl, PR_GET_NAME, name, 0, 0, 0);
  r.log("caller's name", name);
  const char* original = "test_differenti";
  r.sys("prctl PR_SET_NAME back", SYS_prctl, PR_SET_NAME, original, 0, 0, 0);
  const long nice_prio = sc(SYS_getpriority, PRIO_PROCESS, 0);
  r.sys("setpriority PROCESS 0 (nice +2)", SYS_setpriority, PRIO_PROCESS, 0, 20 - nice_prio + 2);
  r.log("caller's priority", std::to_string(sc(SYS_getpriority, PRIO_PROCESS, 0)));
  timespec a{}, v{}, b{};
  for (int i = 0; i < 3; ++i) {
    sc(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &a);
    r.call(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &v);
    sc(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &b);
    r.log("thread CPU clock is the caller's", yes(before_or_equal(a, v) && before_or_equal(v, b)));
  }
}

// The kernel raises SIGPIPE on the thread that wrote to a broken pipe or
// socket: with the synchronous call that is the caller.
void sigpipe_to_caller(Run& r) {
  Fixture& f = r.fx;
  const uint64_t pipe_bit = sigbit(SIGPIPE);
  auto pending_on_caller = [&] {
    uint64_t pending = 0;
    sc(SYS_rt_sigpending, &pending, 8);
    const timespec zero{};
    if (pending & pipe_bit) sc(SYS_rt_sigtimedwait, &pipe_bit, nullptr, &zero, 8);  // consume it
    return yes(pending & pipe_bit);
  };
  r.sys("close pipe read end", SYS_close, f.pipe_r);
  r.sys("write to a pipe without readers", SYS_write, f.pipe_w, "x", 1);
  r.log("SIGPIPE pending on the caller", pending_on_caller());
  r.sys("shutdown TCP client SHUT_WR", SYS_shutdown, f.cfd, SHUT_WR);
  r.sys("send after SHUT_WR with MSG_NOSIGNAL", SYS_sendto, f.cfd, "x", 1, MSG_NOSIGNAL, nullptr, 0);
  r.log("SIGPIPE pending on the caller", pending_on_caller());
  r.sys("send after SHUT_WR", SYS_sendto, f.cfd, "x", 1, 0, nullptr, 0);
  r.log("SIGPIPE pending on the caller", pending_on_caller());
}

// personality() reads and sets the calling task's personality (what a
// following execve uses, e.g. setarch -R).
void personality_of_caller(Run& r) {
  const long old = r.sys("personality query", SYS_personality, 0xffffffffL);
  r.sys("personality set ADDR_NO_RANDOMIZE", SYS_personality, (old & 0xffffffffL) | ADDR_NO_RANDOMIZE);
  r.log("caller's personality", fmt("%#lx", sc(SYS_personality, 0xffffffffL)));
  r.sys("personality restore", SYS_personality, old & 0xffffffffL);
  r.log("caller's personality", fmt("%#lx", sc(SYS_personality, 0xffffffffL)));
}

// A seccomp filter installed by the calling thread filters that thread's
// later calls, which must then not run elsewhere.  The prctl option is an
// int: high bits in its register must not hide what it does.
void seccomp_of_caller(Run& r) {
  constexpr long kHigh = 1L << 32;
  flexsc::test::EpermFilter filter(SYS_getppid);
  sock_fprog prog = filter.prog();
  r.sys("prctl NO_NEW_PRIVS, option with high bits", SYS_prctl, PR_SET_NO_NEW_PRIVS + kHigh, 1, 0, 0, 0);
  r.sys("prctl SET_SECCOMP filter, option with high bits", SYS_prctl, PR_SET_SECCOMP + kHigh,
        SECCOMP_MODE_FILTER, &prog, 0, 0);
  r.sys("getppid under the filter", SYS_getppid);
  r.sys("getuid, allowed", SYS_getuid);
}

// A POSIX timer on CLOCK_THREAD_CPUTIME_ID measures the creating thread.
void thread_cpu_timer(Run& r) {
  sigevent sev{};
  sev.sigev_notify = SIGEV_NONE;
  int id = -1;
  r.sys("timer_create THREAD_CPUTIME", SYS_timer_create, CLOCK_THREAD_CPUTIME_ID, &sev, &id);
  const itimerspec its{{0, 0}, {10, 0}};
  r.sys("timer_settime 10 s", SYS_timer_settime, id, 0, &its, nullptr);
  timespec start{}, now{};
  sc(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &start);
  do sc(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &now);  // 30 ms of the caller's CPU time
  while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 30000000L);
  itimerspec cur{};
  r.sys("timer_gettime", SYS_timer_gettime, id, &cur);
  const long left = cur.it_value.tv_sec * 1000000000L + cur.it_value.tv_nsec;
  r.log("timer counted the caller's 30 ms", yes(left > 0 && left <= 10000000000L - 20000000L));
  r.sys("timer_getoverrun", SYS_timer_getoverrun, id);
  r.sys("timer_delete", SYS_timer_delete, id);
  r.sys("timer_delete again", SYS_timer_delete, id);
  r.sys("timer_create bad clock", SYS_timer_create, 12345, &sev, &id);
}

// close_range(CLOSE_RANGE_UNSHARE) gives the calling thread a private
// descriptor table.  Runs in a forked child: it changes the process for good.
void close_range_unshare(Run& r) {
  const long fd = r.sys("openat a.txt", SYS_openat, AT_FDCWD, "a.txt", O_RDONLY);
  r.sys("close_range UNSHARE", SYS_close_range, fd, fd, CLOSE_RANGE_UNSHARE);
  r.log("caller's table still has it", yes(sc(SYS_fcntl, fd, F_GETFD) >= 0));
  const long fd2 = r.sys("openat b.bin", SYS_openat, AT_FDCWD, "b.bin", O_RDONLY);
  r.log("caller's table has the new fd", yes(fd2 >= 0 && sc(SYS_fcntl, fd2, F_GETFD) >= 0));
}

const Case kCases[] = {
    {"caller_thread", caller_thread, Case::kLocal},
    {"sigpipe_to_caller", sigpipe_to_caller},
    {"thread_cpu_timer", thread_cpu_timer},
    {"personality_of_caller", personality_of_caller, Case::kIsolated},
    {"close_range_unshare", close_range_unshare, Case::kIsolated},
    {"seccomp_of_caller", seccomp_of_caller, Case::kIsolated},
};
const bool kRegistered = register_cases(Group::kThreadState, kCases);

}  // namespace
}  // namespace flexsc::test::diff
