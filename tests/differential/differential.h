// Differential tests: an exception-less call must return exactly what the
// synchronous `syscall` instruction returns for the same process state, with
// the same side effects (docs/architecture.md).
//
// Every case is a function that makes its calls through an executor
// (`long(long nr, long a1..a6)`) and writes a transcript: raw results
// (-errno on failure), output buffers, and observations of the calling
// thread.  It runs twice, each time from an identical fresh fixture (a
// directory of known files, descriptors in known states, a reserved memory
// region, a known signal mask): once with the synchronous instruction, once
// with the executor under test.  After the case, the resulting state is
// appended to the transcript: the directory tree (types, modes, sizes,
// contents, links, xattrs), the descriptor table (targets, flags, offsets,
// queued bytes, fdinfo), the memory region (mappings and contents) and the
// calling thread (pending and blocked signals, dispositions, personality,
// limits).  The transcripts must be equal.
//
// What legitimately differs between two runs is normalised into something
// that holds in both, never dropped: inode numbers become "the same inode as
// <path>" or first-seen indices, timestamps "recent" (or their value when a
// case set them), ports the name of the fixture socket they belong to, pids
// "self" or "child1", clock readings "between two direct readings".
//
// Executors: "sync" (the instruction again: proves the case deterministic),
// "flexsc_syscall" and "batch" (flexsc_ctx_create, flexsc_get_entry,
// flexsc_prep, flexsc_submit, flexsc_wait_entry, flexsc_wait, flexsc_seen;
// each call travels with a NOP entry in a batch of two).  The runtime's
// statistics must count every call made through them, and show that the
// remote ones did run on syscall threads.  Cases that change the calling
// thread for good run each time in a forked child.
//
// This header is what the cases see; fixture.cpp builds and describes the
// fixture, runner.cpp runs every case through every executor, and each
// other file holds one group of cases, which registers itself at the end.
//
// FLEXSC_DIFF_VERBOSE=1 prints every synchronous transcript.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace flexsc::test::diff {

// ---- the synchronous syscall instruction ---------------------------------

// Not lib/base/raw_syscall.h: the reference shares no code with what it checks.
inline long raw6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

template <class T>
long arg(T v) {
  if constexpr (std::is_null_pointer_v<T>)
    return 0;
  else if constexpr (std::is_pointer_v<T>)
    return reinterpret_cast<long>(v);
  else
    return static_cast<long>(v);
}

// A direct call, for the fixture and the observations: never an executor.
template <class... A>
long sc(long nr, A... a) {
  static_assert(sizeof...(A) <= 6);
  const long v[6] = {arg(a)...};
  return raw6(nr, v[0], v[1], v[2], v[3], v[4], v[5]);
}

// ---- formatting ------------------------------------------------------------

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
// A raw result: -ENAME for an error, else the number.
std::string ret_str(long r);
// n bytes, printable ones as they are; "(none)" for n < 0.
std::string quote(const void* p, long n);
uint64_t fnv(const void* p, size_t n, uint64_t h = 1469598103934665603ull);
std::string yes(bool b);
bool before_or_equal(const timespec& a, const timespec& b);

// What a call put into an array: n is its result, which a wrong executor
// may make larger than the array.
template <size_t N>
std::string contents(const char (&buf)[N], long n) {
  return n > static_cast<long>(N) ? fmt("(length %ld exceeds the buffer)", n) : quote(buf, n);
}

// ---- process-wide state, set up once -------------------------------------

inline constexpr long kPage = 4096;
inline constexpr long kRegionPages = 64;
inline constexpr int kFixtureSignals[] = {SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};  // blocked during a case
inline constexpr int kObservedSignals[] = {SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGTERM};
inline constexpr int kObservedLimits[] = {RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_STACK, RLIMIT_FSIZE};

struct KSigaction {  // the kernel's struct sigaction on x86-64
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  uint64_t mask;
};

inline uint64_t sigbit(int sig) {
  return uint64_t{1} << (sig - 1);
}

struct Globals {
  std::string root;        // a private temporary directory
  std::string dir;         // the fixture directory: the same path in every run
  char* region = nullptr;  // reserved, kRegionPages long; cases map at fixed places in it
  long pid = 0;
  int cwd_fd = -1;
  std::set<int> baseline_fds;
  uint64_t sigmask = 0;
  long umask = 022;
  long personality = 0;
  long priority = 0;
  KSigaction actions[std::size(kObservedSignals)] = {};
  rlimit limits[std::size(kObservedLimits)] = {};
  uint64_t affinity[16] = {};
  long affinity_len = 0;
  bool single_core = false;  // remote calls may run inline on the caller (not in the public stats)
  long fd_base = 100;        // cases use fixed descriptor numbers from here up
};
extern Globals g;

// The open descriptors, without the runtime's own.
std::vector<int> open_fds();
void rm_rf(const std::string& path);

// ---- the fixture -----------------------------------------------------------

sockaddr_in loopback(uint16_t port);

class Fixture {
 public:
  // Descriptors in known states (numbers are the same in every run).
  long fd_a = -1;                 // a.txt, O_RDWR, offset 0
  long fd_b = -1;                 // b.bin, O_RDONLY, offset 0
  long fd_dir = -1;               // the fixture directory
  long pipe_r = -1, pipe_w = -1;  // "pipedata" queued
  long us0 = -1, us1 = -1;        // Unix stream pair, "unixmsg" queued for us0
  long lfd = -1;                  // TCP listener on 127.0.0.1, one connection (pfd's) pending
  long cfd = -1, sfd = -1;        // established TCP pair, "tcpdata" queued for sfd
  long pfd = -1;                  // TCP client whose connection waits in lfd's queue
  long ufd = -1;                  // UDP socket bound on 127.0.0.1, nothing queued
  long dead = -1;                 // TCP socket bound on 127.0.0.1, not listening
  uint16_t port_listen = 0, port_client = 0, port_pending = 0, port_udp = 0, port_dead = 0;
  std::vector<long> children;
  std::map<long, std::string> child_names;

  void setup();
  void snapshot(std::vector<std::string>& out) const;
  std::string teardown();

  // Normalisations.
  std::string path(std::string s) const;
  // Ports are named per protocol: TCP and UDP numbers are separate spaces.
  std::string port_name(uint16_t port, int type) const;
  std::string addr(const void* sa, long len, int type = SOCK_STREAM) const;
  std::string when(const timespec& t) const;
  std::string pid_name(long pid) const;

  // A child that exits with `code` at once, or pauses until killed.  Raw
  // clone: the child runs nothing but raw syscalls.
  long spawn(int exit_code, const char* name);

 private:
  void write_file(const char* name, const std::string& data, long mode) const;
  void walk(const std::string& rel, std::map<uint64_t, int>& inodes, std::vector<std::string>& out) const;
  void describe_fds(std::vector<std::string>& out) const;
  void describe_region(std::vector<std::string>& out) const;
  void describe_thread(std::vector<std::string>& out) const;
  long start_ = 0;
};

// ---- a case's view: the executor and the transcript ------------------------

using SyscallFn = long (*)(long, long, long, long, long, long, long);

class Run {
 public:
  Run(SyscallFn fn, Fixture& fixture) : fx(fixture), fn_(fn) {}

  // A call through the executor; the caller logs a normalised result.
  template <class... A>
  long call(long nr, A... a) {
    static_assert(sizeof...(A) <= 6);
    const long v[6] = {arg(a)...};
    ++calls;
    return fn_(nr, v[0], v[1], v[2], v[3], v[4], v[5]);
  }
  // A call through the executor whose raw result goes into the transcript.
  template <class... A>
  long sys(const std::string& what, long nr, A... a) {
    const long r = call(nr, a...);
    log(what, ret_str(r));
    return r;
  }
  void log(const std::string& what, const std::string& value) { lines.push_back(what + ": " + value); }

  Fixture& fx;
  std::vector<std::string> lines;
  long calls = 0;

 private:
  SyscallFn fn_;
};

// A pointer the kernel refuses (the first page is never mapped), and one
// in the reserved region (PROT_NONE).
inline void* const kBadPtr = reinterpret_cast<void*>(8);
inline char* region(long page) {
  return g.region + page * kPage;
}
// Descriptor numbers above everything open before the suite started.
inline long hi(long n) {
  return g.fd_base + n;
}
std::string region_off(long addr);
// Memory a case mapped, read without faulting when the mapping is not there.
std::string peek(const void* p, size_t n);
std::string stat_line(const Fixture& fx, const struct stat& s, const char* same_as);

// ---- the cases ---------------------------------------------------------------

struct Case {
  const char* name;
  void (*fn)(Run&);
  enum Kind {
    kRemote,    // makes calls the runtime runs on a syscall thread
    kLocal,     // makes only calls the runtime runs on the caller
    kIsolated,  // changes the calling thread for good: runs in a forked child
  } kind = kRemote;
};

// The files of cases, in the order the suite runs them.
enum class Group {
  kFiles,
  kDirectories,
  kPipes,
  kSockets,
  kMemory,
  kTime,
  kProcesses,
  kErrors,
  kThreadState
};

// Adds a file's cases to the suite, from an initializer at namespace scope:
//   const Case kCases[] = {{"name", fn}, ...};
//   const bool kRegistered = register_cases(Group::kFiles, kCases);
// The suite reads them only once main() has started (gtest expands its
// parameters then), so the order in which the files are initialised does
// not matter.
bool register_cases(Group group, std::span<const Case> cases);

}  // namespace flexsc::test::diff
