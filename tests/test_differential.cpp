// Differential tests: an exception-less call must return exactly what the
// synchronous `syscall` instruction returns for the same process state, with
// the same side effects (docs/architecture.md, "Semantics").
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
// FLEXSC_DIFF_VERBOSE=1 prints every synchronous transcript.
#include <dirent.h>
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <linux/openat2.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "test_util.h"

namespace {

// ---- the synchronous syscall instruction ---------------------------------

// Not lib/base/raw_syscall.h: the reference shares no code with what it checks.

long raw6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
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

// ---- executors -------------------------------------------------------------

using SyscallFn = long (*)(long, long, long, long, long, long, long);

long exec_sync(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  return raw6(nr, a1, a2, a3, a4, a5, a6);
}

long exec_flexsc(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  return flexsc_syscall(nr, a1, a2, a3, a4, a5, a6);
}

flexsc_ctx* g_batch_ctx = nullptr;
std::vector<std::string> g_api_errors;  // batch API misbehaviour, appended to the transcript

void api_error(const std::string& what) {
  if (g_api_errors.size() < 20) g_api_errors.push_back(what);
}

long exec_batch(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  flexsc_ctx* ctx = g_batch_ctx;
  flexsc_entry* e = flexsc_get_entry(ctx);
  flexsc_entry* nop = flexsc_get_entry(ctx);
  if (!e || !nop) {
    api_error("flexsc_get_entry returned NULL with a free context");
    return -ENOMEM;
  }
  flexsc_prep(e, nr, a1, a2, a3, a4, a5, a6);
  flexsc_prep_nop(nop);
  if (const int n = flexsc_submit(ctx); n != 2) api_error("flexsc_submit returned " + std::to_string(n));
  const long ret = flexsc_wait_entry(ctx, e);
  if (ret != e->ret) api_error("flexsc_wait_entry's result differs from the entry's ret");
  flexsc_entry* done = nullptr;
  // The call was submitted first and is DONE: it is the oldest DONE entry.
  if (flexsc_wait(ctx, &done) != 0 || done != e)
    api_error("flexsc_wait did not return the oldest DONE entry");
  flexsc_seen(ctx, e);
  if (flexsc_wait(ctx, &done) != 0 || done != nop)
    api_error("flexsc_wait did not return the NOP");
  else if (nop->ret != 0)
    api_error("a NOP completed with " + std::to_string(nop->ret));
  flexsc_seen(ctx, nop);
  if (flexsc_peek(ctx, &done) != -EAGAIN) api_error("flexsc_peek found an entry after all were seen");
  return ret;
}

struct Executor {
  const char* name;
  SyscallFn fn;
  bool batch;
};

const Executor kSync{"sync", exec_sync, false};
const Executor kExecutors[] = {kSync, {"flexsc_syscall", exec_flexsc, false}, {"batch", exec_batch, true}};

// ---- formatting ------------------------------------------------------------

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string ret_str(long r) {
  if (r < 0 && r >= -4095) {
    const char* name = strerrorname_np(static_cast<int>(-r));
    return name ? std::string("-") + name : "-E" + std::to_string(-r);
  }
  return std::to_string(r);
}

std::string quote(const void* p, long n) {
  if (n < 0) return "(none)";
  const auto* c = static_cast<const unsigned char*>(p);
  std::string s = "\"";
  for (long i = 0; i < n; ++i)
    s += (c[i] >= 32 && c[i] < 127 && c[i] != '"') ? std::string(1, char(c[i])) : fmt("\\x%02x", c[i]);
  return s + "\"";
}

// What a call put into an array: n is its result, which a wrong executor
// may make larger than the array.
template <size_t N>
std::string contents(const char (&buf)[N], long n) {
  return n > static_cast<long>(N) ? fmt("(length %ld exceeds the buffer)", n) : quote(buf, n);
}

uint64_t fnv(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

std::string yes(bool b) {
  return b ? "yes" : "no";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
  return s;
}

bool before_or_equal(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

// ---- process-wide state, set up once -------------------------------------

constexpr long kPage = 4096;
constexpr long kRegionPages = 64;
constexpr int kFixtureSignals[] = {SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};  // blocked during a case
constexpr int kObservedSignals[] = {SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGTERM};
constexpr int kObservedLimits[] = {RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_STACK, RLIMIT_FSIZE};

struct KSigaction {  // the kernel's struct sigaction on x86-64
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  uint64_t mask;
};

uint64_t sigbit(int sig) {
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
Globals g;

// Names in a directory (raw getdents64), sorted, without "." and "..".
std::vector<std::pair<std::string, unsigned char>> list_dir(int dfd) {
  std::vector<std::pair<std::string, unsigned char>> out;
  alignas(8) char buf[8192];
  for (;;) {
    const long n = sc(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      const unsigned char type = static_cast<unsigned char>(buf[off + 18]);
      const std::string name(buf + off + 19);
      if (name != "." && name != "..") out.emplace_back(name, type);
      off += reclen;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The io_uring backends keep a ring and an eventfd per posting context,
// at the top of the descriptor range: they are the runtime's, not the case's.
bool runtime_fd(int fd) {
  if (fd < 512) return false;
  char target[64];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const long n = sc(SYS_readlink, link.c_str(), target, sizeof target - 1);
  const std::string t = n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
  return t == "anon_inode:[io_uring]" || t == "anon_inode:[eventfd]" || t == "/dev/flexsc";
}

std::vector<int> open_fds() {
  std::vector<int> fds;
  const long dfd = sc(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fds;
  for (const auto& [name, type] : list_dir(static_cast<int>(dfd))) {
    const int fd = std::atoi(name.c_str());
    if (fd != dfd && !runtime_fd(fd)) fds.push_back(fd);
  }
  sc(SYS_close, dfd);
  std::sort(fds.begin(), fds.end());
  return fds;
}

std::string read_file(const std::string& path) {
  std::string out;
  const long fd = sc(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (long n; (n = sc(SYS_read, fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  sc(SYS_close, fd);
  return out;
}

void rm_rf(const std::string& path) {
  struct stat st;
  if (sc(SYS_newfstatat, AT_FDCWD, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return;
  if (S_ISDIR(st.st_mode)) {
    sc(SYS_chmod, path.c_str(), 0700);
    const long dfd = sc(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      for (const auto& [name, type] : list_dir(static_cast<int>(dfd))) rm_rf(path + "/" + name);
      sc(SYS_close, dfd);
    }
    sc(SYS_rmdir, path.c_str());
  } else {
    sc(SYS_unlink, path.c_str());
  }
}

// ---- the fixture -----------------------------------------------------------

long must(long r, const char* what) {
  if (r < 0) throw std::runtime_error(std::string(what) + ": " + ret_str(r));
  return r;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t local_port(long fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  must(sc(SYS_getsockname, fd, &a, &len), "getsockname");
  return ntohs(a.sin_port);
}

// Receives on fixture sockets give up after a while instead of waiting for
// ever: a wrong result from the executor (an fd off by one) must make the
// case fail, not hang.
void bound_waits(long fd) {
  const timeval limit{2, 0};
  must(sc(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), "SO_RCVTIMEO");
  must(sc(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit), "SO_SNDTIMEO");
}

void wait_readable(long fd) {
  pollfd p{static_cast<int>(fd), POLLIN, 0};
  must(sc(SYS_poll, &p, 1, 5000), "poll");
}

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

void Fixture::write_file(const char* name, const std::string& data, long mode) const {
  const long fd = must(sc(SYS_openat, AT_FDCWD, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode), name);
  if (!data.empty()) must(sc(SYS_write, fd, data.data(), data.size()), "write");
  must(sc(SYS_fchmod, fd, mode), "fchmod");
  sc(SYS_close, fd);
}

void Fixture::setup() {
  start_ = std::time(nullptr);
  must(sc(SYS_mkdir, g.dir.c_str(), 0755), "mkdir fixture dir");
  must(sc(SYS_chmod, g.dir.c_str(), 0755), "chmod fixture dir");
  must(sc(SYS_chdir, g.dir.c_str()), "chdir");
  sc(SYS_umask, 022);
  write_file("a.txt", "alpha beta gamma delta\n", 0644);
  std::string bin(8192, '\0');
  for (size_t i = 0; i < bin.size(); ++i) bin[i] = static_cast<char>(i * 7 + 3);
  write_file("b.bin", bin, 0600);
  write_file("empty", "", 0640);
  must(sc(SYS_mkdir, "sub", 0755), "mkdir sub");
  write_file("sub/c.txt", "nested file\n", 0644);
  must(sc(SYS_symlink, "a.txt", "link"), "symlink");

  fd_a = must(sc(SYS_openat, AT_FDCWD, "a.txt", O_RDWR), "open a.txt");
  fd_b = must(sc(SYS_openat, AT_FDCWD, "b.bin", O_RDONLY), "open b.bin");
  fd_dir = must(sc(SYS_openat, AT_FDCWD, ".", O_RDONLY | O_DIRECTORY), "open dir");
  int p[2];
  must(sc(SYS_pipe2, p, 0), "pipe2");
  pipe_r = p[0];
  pipe_w = p[1];
  must(sc(SYS_write, pipe_w, "pipedata", 8), "write pipe");
  must(sc(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, p), "socketpair");
  us0 = p[0];
  us1 = p[1];
  bound_waits(us0);
  bound_waits(us1);
  must(sc(SYS_write, us1, "unixmsg", 7), "write unix");

  lfd = must(sc(SYS_socket, AF_INET, SOCK_STREAM, 0), "socket");
  bound_waits(lfd);  // accepted sockets inherit it
  sockaddr_in a = loopback(0);
  must(sc(SYS_bind, lfd, &a, sizeof a), "bind");
  must(sc(SYS_listen, lfd, 8), "listen");
  port_listen = local_port(lfd);
  a = loopback(port_listen);
  cfd = must(sc(SYS_socket, AF_INET, SOCK_STREAM, 0), "socket");
  bound_waits(cfd);
  must(sc(SYS_connect, cfd, &a, sizeof a), "connect");
  sfd = must(sc(SYS_accept4, lfd, nullptr, nullptr, 0), "accept4");
  port_client = local_port(cfd);
  pfd = must(sc(SYS_socket, AF_INET, SOCK_STREAM, 0), "socket");
  bound_waits(pfd);
  must(sc(SYS_connect, pfd, &a, sizeof a), "connect");
  port_pending = local_port(pfd);
  must(sc(SYS_write, cfd, "tcpdata", 7), "write tcp");
  wait_readable(sfd);
  wait_readable(lfd);
  ufd = must(sc(SYS_socket, AF_INET, SOCK_DGRAM, 0), "socket");
  bound_waits(ufd);
  a = loopback(0);
  must(sc(SYS_bind, ufd, &a, sizeof a), "bind udp");
  port_udp = local_port(ufd);
  // Bound and not listening: connecting to it is refused, and no other
  // socket can take its port.
  dead = must(sc(SYS_socket, AF_INET, SOCK_STREAM, 0), "socket");
  must(sc(SYS_bind, dead, &a, sizeof a), "bind");
  port_dead = local_port(dead);

  // Region pages 0-3: read-write, a known pattern.
  must(sc(SYS_mmap, g.region, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
          0),
       "mmap region");
  for (long i = 0; i < 4 * kPage; ++i) g.region[i] = static_cast<char>((i / kPage) * 31 + i);

  uint64_t block = 0;
  for (int sig : kFixtureSignals) block |= sigbit(sig);
  must(sc(SYS_rt_sigprocmask, SIG_BLOCK, &block, nullptr, 8), "rt_sigprocmask");
}

std::string Fixture::path(std::string s) const {
  s = replace_all(s, g.dir, "$D");
  s = replace_all(s, g.root, "$ROOT");
  s = replace_all(s, "/proc/" + std::to_string(g.pid) + "/", "/proc/$PID/");
  s = replace_all(s, "/task/" + std::to_string(g.pid) + "/", "/task/$TID/");
  return s;
}

std::string Fixture::port_name(uint16_t port, int type) const {
  if (port == 0) return "0";
  if (type == SOCK_DGRAM) return port == port_udp ? "udp" : "ephemeral";
  if (port == port_listen) return "listener";
  if (port == port_client) return "client";
  if (port == port_pending) return "pending";
  if (port == port_dead) return "dead";
  return "ephemeral";
}

std::string Fixture::addr(const void* sa, long len, int type) const {
  if (len < 2) return fmt("len=%ld", len);
  sa_family_t family;
  std::memcpy(&family, sa, sizeof family);
  if (family == AF_INET && len >= static_cast<long>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof in);
    return fmt("inet %s:", in.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "127.0.0.1" : "?") +
           port_name(ntohs(in.sin_port), type);
  }
  if (family == AF_UNIX) {
    if (len == 2) return "unix unnamed";
    const char* p = static_cast<const char*>(sa) + 2;
    return "unix " + path(std::string(p, strnlen(p, static_cast<size_t>(len - 2))));
  }
  return fmt("family=%d len=%ld", family, len);
}

std::string Fixture::when(const timespec& t) const {
  if (t.tv_sec < 1000000000) return fmt("%ld.%09ld", t.tv_sec, t.tv_nsec);  // set by the case
  if (t.tv_sec >= start_ - 2 && t.tv_sec <= std::time(nullptr) + 2) return "recent";
  return fmt("unexpected(%ld)", t.tv_sec);
}

std::string Fixture::pid_name(long pid) const {
  if (pid == g.pid) return "self";
  if (auto it = child_names.find(pid); it != child_names.end()) return it->second;
  return pid < 0 ? ret_str(pid) : "other-pid";
}

long Fixture::spawn(int exit_code, const char* name) {
  const long pid = sc(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    if (exit_code < 0)
      for (;;) sc(SYS_pause);
    for (;;) sc(SYS_exit_group, exit_code);
  }
  must(pid, "clone");
  children.push_back(pid);
  child_names[pid] = name;
  return pid;
}

void Fixture::walk(const std::string& rel, std::map<uint64_t, int>& inodes,
                   std::vector<std::string>& out) const {
  const std::string full = rel.empty() ? g.dir : g.dir + "/" + rel;
  struct stat st;
  if (const long rc = sc(SYS_newfstatat, AT_FDCWD, full.c_str(), &st, AT_SYMLINK_NOFOLLOW); rc < 0) {
    out.push_back("tree " + rel + ": " + ret_str(rc));
    return;
  }
  const auto [it, fresh] = inodes.emplace(st.st_ino, static_cast<int>(inodes.size()));
  std::string line = fmt("tree %s mode=%06o nlink=%lu uid=%u gid=%u size=%ld blocks=%ld ino#%d",
                         rel.empty() ? "." : rel.c_str(), st.st_mode, st.st_nlink, st.st_uid, st.st_gid,
                         st.st_size, st.st_blocks, it->second);
  line += " mtime=" + when(st.st_mtim) + " atime=" + when(st.st_atim) + " ctime=" + when(st.st_ctim);
  if (S_ISREG(st.st_mode)) {
    const std::string data = read_file(full);
    line += st.st_size <= 64 ? " data=" + quote(data.data(), static_cast<long>(data.size()))
                             : fmt(" fnv=%016lx", fnv(data.data(), data.size()));
  } else if (S_ISLNK(st.st_mode)) {
    char target[256];
    const long n = sc(SYS_readlink, full.c_str(), target, sizeof target);
    line += " -> " + quote(target, n);
  }
  char names[1024];
  const long n = sc(SYS_llistxattr, full.c_str(), names, sizeof names);
  for (long off = 0; n > 0 && off < n; off += static_cast<long>(std::strlen(names + off)) + 1) {
    char value[256];
    const long v = sc(SYS_lgetxattr, full.c_str(), names + off, value, sizeof value);
    line += fmt(" xattr %s=", names + off) + (v >= 0 ? quote(value, v) : ret_str(v));
  }
  out.push_back(line);
  if (S_ISDIR(st.st_mode)) {
    const long dfd = sc(SYS_openat, AT_FDCWD, full.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      out.push_back("tree " + rel + " open: " + ret_str(dfd));
      return;
    }
    const auto entries = list_dir(static_cast<int>(dfd));
    sc(SYS_close, dfd);
    for (const auto& [name, type] : entries) walk(rel.empty() ? name : rel + "/" + name, inodes, out);
  }
}

// Keeps the fdinfo fields that are the same in equal states; drops inode,
// mount and object ids, pids, and the time left on timers.  Lines are
// sorted: epoll lists its targets in the order of kernel addresses.
std::string filter_fdinfo(const std::string& text) {
  static const std::set<std::string> keep = {
      "pos", "flags",  "eventfd-count", "eventfd-semaphore", "clockid", "ticks", "settime",     "it_interval",
      "tfd", "events", "data",          "sigmask",           "wd",      "mask",  "ignored_mask"};
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    std::vector<std::string> tokens;
    for (size_t p = 0; p < line.size();) {
      const size_t q = line.find_first_of(" \t", p);
      const std::string t = line.substr(p, q == std::string::npos ? std::string::npos : q - p);
      if (!t.empty()) tokens.push_back(t);
      if (q == std::string::npos) break;
      p = q + 1;
    }
    std::string out;
    if (!tokens.empty() && tokens[0] == "lock:") {  // lock: N: POSIX ADVISORY WRITE pid dev:ino start end
      out += " lock";
      for (size_t i = 2; i < tokens.size(); ++i)
        if (i != 5 && i != 6) out += " " + tokens[i];
      tokens.clear();
    }
    bool kept = false;
    for (const std::string& t : tokens) {
      const size_t colon = t.find(':');
      if (colon != std::string::npos) {
        kept = keep.count(t.substr(0, colon)) != 0;
        if (kept) out += " " + t;
      } else if (kept) {
        out += t;  // the value of a "key:" token
      } else if (t == "inotify") {
        out += " inotify";
      }
    }
    if (!out.empty()) lines.push_back(out);
  }
  std::sort(lines.begin(), lines.end());
  std::string all;
  for (const std::string& l : lines) all += l;
  return all;
}

void Fixture::describe_fds(std::vector<std::string>& out) const {
  std::map<std::string, int> objects;  // pipe:[ino] / socket:[ino] -> first-seen index
  for (int fd : open_fds()) {
    if (g.baseline_fds.count(fd)) continue;
    char target[512];
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const long n = sc(SYS_readlink, link.c_str(), target, sizeof target - 1);
    std::string t = n >= 0 ? std::string(target, static_cast<size_t>(n)) : ret_str(n);
    const bool is_pipe = t.rfind("pipe:[", 0) == 0, is_socket = t.rfind("socket:[", 0) == 0;
    if (is_pipe || is_socket) {
      const auto [it, fresh] = objects.emplace(t, static_cast<int>(objects.size()));
      t = t.substr(0, t.find('[')) + "#" + std::to_string(it->second);
    } else {
      t = path(t);
    }
    std::string line = fmt("fd %d -> %s fd_flags=%ld fl=%#lo pos=", fd, t.c_str(), sc(SYS_fcntl, fd, F_GETFD),
                           sc(SYS_fcntl, fd, F_GETFL)) +
                       ret_str(sc(SYS_lseek, fd, 0, SEEK_CUR));
    if (is_pipe || is_socket) {
      int queued = -1;
      const long rc = sc(SYS_ioctl, fd, FIONREAD, &queued);
      line += " queued=" + (rc < 0 ? ret_str(rc) : std::to_string(queued));
    }
    if (is_socket) {
      int type = 0, domain = 0, listening = 0;
      socklen_t len = sizeof(int);
      sc(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len);
      sc(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
      sc(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
      sockaddr_storage sa{};
      socklen_t salen = sizeof sa;
      const long rc = sc(SYS_getsockname, fd, &sa, &salen);
      line += fmt(" domain=%d type=%d listening=%d local=", domain, type, listening) +
              (rc < 0 ? ret_str(rc) : addr(&sa, salen, type));
      salen = sizeof sa;
      const long pr = sc(SYS_getpeername, fd, &sa, &salen);
      line += " peer=" + (pr < 0 ? ret_str(pr) : addr(&sa, salen, type));
    }
    line += " fdinfo:" + filter_fdinfo(read_file("/proc/self/fdinfo/" + std::to_string(fd)));
    out.push_back(line);
  }
}

void Fixture::describe_region(std::vector<std::string>& out) const {
  const auto base = reinterpret_cast<uintptr_t>(g.region), end = base + kRegionPages * kPage;
  const std::string maps = read_file("/proc/self/maps");
  std::vector<std::pair<uintptr_t, uintptr_t>> readable;
  size_t start = 0;
  while (start < maps.size()) {
    size_t nl = maps.find('\n', start);
    if (nl == std::string::npos) nl = maps.size();
    const std::string line = maps.substr(start, nl - start);
    start = nl + 1;
    unsigned long lo, hi, offset;
    char perms[8] = {};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %*s %*s%n", &lo, &hi, perms, &offset, &consumed) < 4)
      continue;
    if (hi <= base || lo >= end) continue;
    std::string name = line.substr(static_cast<size_t>(consumed));
    name.erase(0, name.find_first_not_of(' '));
    lo = std::max<uintptr_t>(lo, base);
    hi = std::min<uintptr_t>(hi, end);
    out.push_back(fmt("map R+%#lx-R+%#lx %s off=%#lx ", lo - base, hi - base, perms, offset) + path(name));
    if (perms[0] == 'r') readable.emplace_back(lo, hi);
  }
  // Contents through process_vm_readv: a page beyond the end of a file
  // gives an error instead of SIGBUS.
  for (const auto& [lo, hi] : readable) {
    for (uintptr_t p = lo; p < hi; p += kPage) {
      char page[kPage];
      iovec local{page, kPage}, remote{reinterpret_cast<void*>(p), kPage};
      const long n = sc(SYS_process_vm_readv, g.pid, &local, 1, &remote, 1, 0);
      out.push_back(fmt("page R+%#lx ", p - base) +
                    (n == kPage ? fmt("fnv=%016lx", fnv(page, kPage)) : ret_str(n)));
    }
  }
}

void Fixture::describe_thread(std::vector<std::string>& out) const {
  char cwd[512];
  const long n = sc(SYS_getcwd, cwd, sizeof cwd);
  out.push_back("cwd " + (n > 0 ? path(cwd) : ret_str(n)));
  const long mask = sc(SYS_umask, 022);
  sc(SYS_umask, mask);
  out.push_back(fmt("umask %03lo", mask));
  uint64_t pending = 0, blocked = 0;
  sc(SYS_rt_sigpending, &pending, 8);
  sc(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &blocked, 8);
  out.push_back(fmt("signals pending=%#lx blocked=%#lx", pending, blocked));
  for (int sig : kObservedSignals) {
    KSigaction k{};
    sc(SYS_rt_sigaction, sig, nullptr, &k, 8);
    const char* h = k.handler == reinterpret_cast<unsigned long>(SIG_DFL)   ? "default"
                    : k.handler == reinterpret_cast<unsigned long>(SIG_IGN) ? "ignore"
                                                                            : "handler";
    out.push_back(fmt("sigaction %s %s flags=%#lx mask=%#lx", sigabbrev_np(sig), h, k.flags, k.mask));
  }
  out.push_back(fmt("personality %#lx priority %ld", sc(SYS_personality, 0xffffffffL),
                    sc(SYS_getpriority, PRIO_PROCESS, 0)));
  for (int res : kObservedLimits) {
    rlimit rl{};
    sc(SYS_prlimit64, 0, res, nullptr, &rl);
    out.push_back(
        fmt("rlimit %d %ld %ld", res, static_cast<long>(rl.rlim_cur), static_cast<long>(rl.rlim_max)));
  }
  uint64_t aff[16] = {};
  const long len = sc(SYS_sched_getaffinity, 0, sizeof aff, aff);
  out.push_back(fmt("affinity len=%ld first=%#lx", len, aff[0]));
}

void Fixture::snapshot(std::vector<std::string>& out) const {
  std::map<uint64_t, int> inodes;
  walk("", inodes, out);
  describe_fds(out);
  describe_region(out);
  describe_thread(out);
}

// Back to the process state of before setup().  Returns what went wrong.
std::string Fixture::teardown() {
  std::string problems;
  for (long pid : children) {
    sc(SYS_kill, pid, SIGKILL);
    sc(SYS_wait4, pid, nullptr, 0, nullptr);
  }
  uint64_t set = 0;
  for (int sig : kFixtureSignals) set |= sigbit(sig);
  const timespec zero{};
  while (sc(SYS_rt_sigtimedwait, &set, nullptr, &zero, 8) > 0) {
  }
  for (size_t i = 0; i < std::size(kObservedSignals); ++i)
    sc(SYS_rt_sigaction, kObservedSignals[i], &g.actions[i], nullptr, 8);
  sc(SYS_rt_sigprocmask, SIG_SETMASK, &g.sigmask, nullptr, 8);
  sc(SYS_personality, g.personality);
  sc(SYS_setpriority, PRIO_PROCESS, 0, 20 - g.priority);
  for (size_t i = 0; i < std::size(kObservedLimits); ++i)
    sc(SYS_prlimit64, 0, kObservedLimits[i], &g.limits[i], nullptr);
  sc(SYS_sched_setaffinity, 0, g.affinity_len, g.affinity);
  sc(SYS_umask, g.umask);
  if (sc(SYS_fchdir, g.cwd_fd) < 0) problems += " fchdir";
  for (int fd : open_fds())
    if (!g.baseline_fds.count(fd)) sc(SYS_close, fd);
  rm_rf(g.dir);
  struct stat st;
  if (sc(SYS_newfstatat, AT_FDCWD, g.dir.c_str(), &st, AT_SYMLINK_NOFOLLOW) != -ENOENT) problems += " rm -rf";
  if (sc(SYS_mmap, g.region, kRegionPages * kPage, PROT_NONE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) != reinterpret_cast<long>(g.region))
    problems += " region";
  return problems;
}

// ---- a case's view: the executor and the transcript ------------------------

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
void* const kBadPtr = reinterpret_cast<void*>(8);
char* region(long page) {
  return g.region + page * kPage;
}
// Descriptor numbers above everything open before the suite started.
long hi(long n) {
  return g.fd_base + n;
}
std::string region_off(long addr) {
  if (addr < 0 && addr >= -4095) return ret_str(addr);
  const long off = addr - reinterpret_cast<long>(g.region);
  return off >= 0 && off < kRegionPages * kPage ? fmt("R+%#lx", off) : "outside R";
}

// Memory a case mapped, read without faulting when the mapping is not there.
std::string peek(const void* p, size_t n) {
  char tmp[64];
  n = std::min(n, sizeof tmp);
  iovec local{tmp, n}, remote{const_cast<void*>(p), n};
  const long got = sc(SYS_process_vm_readv, g.pid, &local, 1, &remote, 1, 0);
  return got == static_cast<long>(n) ? quote(tmp, got) : "unreadable: " + ret_str(got);
}

std::string stat_line(const Fixture& fx, const struct stat& s, const char* same_as) {
  struct stat ref {};
  const bool same = sc(SYS_newfstatat, AT_FDCWD, same_as, &ref, AT_SYMLINK_NOFOLLOW) == 0 &&
                    ref.st_ino == s.st_ino && ref.st_dev == s.st_dev;
  return fmt("mode=%06o nlink=%lu uid=%u gid=%u size=%ld rdev=%#lx blksize=%ld blocks=%ld ", s.st_mode,
             s.st_nlink, s.st_uid, s.st_gid, s.st_size, s.st_rdev, s.st_blksize, s.st_blocks) +
         "inode of " + same_as + "=" + yes(same) + " mtime=" + fx.when(s.st_mtim) +
         " ctime=" + fx.when(s.st_ctim);
}

// ---- cases: files ------------------------------------------------------------

void file_read_write(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  const long fd = r.sys("openat a.txt O_RDWR", SYS_openat, AT_FDCWD, "a.txt", O_RDWR | O_CLOEXEC);
  long n = r.sys("read 5", SYS_read, fd, buf, 5);
  r.log("read data", contents(buf, n));
  r.sys("lseek CUR", SYS_lseek, fd, 0, SEEK_CUR);
  r.sys("write", SYS_write, fd, "-BETA", 5);
  r.sys("lseek END", SYS_lseek, fd, 0, SEEK_END);
  r.sys("lseek SET 6", SYS_lseek, fd, 6, SEEK_SET);
  n = r.sys("pread64 fixture fd", SYS_pread64, f.fd_a, buf, 12, 0);
  r.log("pread64 data", contents(buf, n));
  r.sys("pwrite64 at 2", SYS_pwrite64, fd, "XX", 2, 2);
  char v1[4] = {}, v2[6] = {};
  iovec in[2] = {{v1, sizeof v1}, {v2, sizeof v2}};
  n = r.sys("readv", SYS_readv, fd, in, 2);
  r.log("readv data", quote(v1, sizeof v1) + quote(v2, sizeof v2));
  iovec out[2] = {{const_cast<char*>("<<"), 2}, {const_cast<char*>(">>"), 2}};
  r.sys("writev", SYS_writev, fd, out, 2);
  n = r.sys("preadv at 0", SYS_preadv, fd, in, 2, 0, 0);
  r.log("preadv data", quote(v1, sizeof v1) + quote(v2, sizeof v2));
  r.sys("pwritev at 20", SYS_pwritev, fd, out, 2, 20, 0);
  n = r.sys("preadv2 at current position", SYS_preadv2, fd, in, 1, -1, 0, 0);
  r.log("preadv2 data", contents(v1, n));
  r.sys("pwritev2 RWF_APPEND", SYS_pwritev2, fd, out, 2, -1, 0, RWF_APPEND);
  r.sys("preadv2 unknown flag", SYS_preadv2, fd, in, 2, 0, 0, 0x40000000);
  r.sys("lseek after", SYS_lseek, fd, 0, SEEK_CUR);
  r.sys("read 0 bytes", SYS_read, fd, buf, 0);
  r.sys("read from a directory", SYS_read, f.fd_dir, buf, 8);
  r.sys("write to O_RDONLY fd", SYS_write, f.fd_b, "x", 1);
  const long wo = r.sys("openat empty O_WRONLY", SYS_openat, AT_FDCWD, "empty", O_WRONLY);
  r.sys("read from O_WRONLY fd", SYS_read, wo, buf, 4);
  const long ap = r.sys("openat sub/c.txt O_APPEND", SYS_openat, AT_FDCWD, "sub/c.txt", O_WRONLY | O_APPEND);
  r.sys("write O_APPEND", SYS_write, ap, "more\n", 5);
  r.sys("lseek after O_APPEND write", SYS_lseek, ap, 0, SEEK_CUR);
  const long ex =
      r.sys("openat O_CREAT|O_EXCL", SYS_openat, AT_FDCWD, "created", O_RDWR | O_CREAT | O_EXCL, 0640);
  r.sys("write created", SYS_write, ex, "new\n", 4);
  const long old = r.sys("open (legacy) sub/c.txt", SYS_open, "sub/c.txt", O_RDONLY, 0);
  n = r.sys("read legacy fd", SYS_read, old, buf, sizeof buf);
  r.log("read data", contents(buf, n));
  const long cr = r.sys("creat", SYS_creat, "creat.txt", 0600);
  r.sys("write creat fd", SYS_write, cr, "c", 1);
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  r.sys("openat2", SYS_openat2, AT_FDCWD, "a.txt", &how, sizeof how);
  how.resolve = RESOLVE_NO_SYMLINKS;
  r.sys("openat2 RESOLVE_NO_SYMLINKS on a link", SYS_openat2, AT_FDCWD, "link", &how, sizeof how);
  r.sys("openat2 short struct", SYS_openat2, AT_FDCWD, "a.txt", &how, 7);
  r.sys("close", SYS_close, fd);
  r.sys("close again", SYS_close, fd);
  r.sys("close_range 3 fds not open", SYS_close_range, hi(600), hi(602), 0);
}

void file_stat(Run& r) {
  Fixture& f = r.fx;
  struct stat st {};
  long rc = r.sys("fstat fixture a.txt", SYS_fstat, f.fd_a, &st);
  if (rc == 0) r.log("fstat", stat_line(f, st, "a.txt"));
  rc = r.sys("stat b.bin", SYS_stat, "b.bin", &st);
  if (rc == 0) r.log("stat", stat_line(f, st, "b.bin"));
  rc = r.sys("stat link (follows)", SYS_stat, "link", &st);
  if (rc == 0) r.log("stat link", stat_line(f, st, "a.txt"));
  rc = r.sys("lstat link", SYS_lstat, "link", &st);
  if (rc == 0) r.log("lstat link", stat_line(f, st, "link"));
  rc = r.sys("newfstatat dirfd sub/c.txt", SYS_newfstatat, f.fd_dir, "sub/c.txt", &st, 0);
  if (rc == 0) r.log("newfstatat", stat_line(f, st, "sub/c.txt"));
  rc = r.sys("newfstatat AT_EMPTY_PATH", SYS_newfstatat, f.fd_dir, "", &st, AT_EMPTY_PATH);
  if (rc == 0) r.log("newfstatat dir", stat_line(f, st, "."));
  rc = r.sys("newfstatat sub (dir)", SYS_newfstatat, AT_FDCWD, "sub", &st, AT_SYMLINK_NOFOLLOW);
  if (rc == 0) r.log("newfstatat sub", stat_line(f, st, "sub"));
  struct statx sx {};
  rc = r.sys("statx b.bin", SYS_statx, AT_FDCWD, "b.bin", AT_STATX_SYNC_AS_STAT,
             STATX_BASIC_STATS | STATX_BTIME, &sx);
  if (rc == 0) {
    struct stat ref {};
    sc(SYS_stat, "b.bin", &ref);
    r.log("statx",
          fmt("mask=%#x mode=%06o nlink=%u size=%llu blocks=%llu blksize=%u attributes=%#llx/%#llx ino-ok=%d",
              sx.stx_mask, sx.stx_mode, sx.stx_nlink, static_cast<unsigned long long>(sx.stx_size),
              static_cast<unsigned long long>(sx.stx_blocks), sx.stx_blksize,
              static_cast<unsigned long long>(sx.stx_attributes),
              static_cast<unsigned long long>(sx.stx_attributes_mask), sx.stx_ino == ref.st_ino) +
              " btime=" + f.when(timespec{sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec}));
  }
  r.sys("statx reserved mask bit", SYS_statx, AT_FDCWD, "b.bin", 0, 0x80000000u, &sx);
  r.sys("statx bad flags", SYS_statx, AT_FDCWD, "b.bin", 0x7000000, STATX_BASIC_STATS, &sx);
  r.sys("stat missing", SYS_stat, "missing", &st);
  r.sys("stat through a file", SYS_stat, "a.txt/x", &st);
  r.sys("stat bad path pointer", SYS_stat, kBadPtr, &st);
  r.sys("stat bad buffer", SYS_stat, "a.txt", kBadPtr);
  r.sys("fstat bad fd", SYS_fstat, -1, &st);
  r.sys("newfstatat bad flags", SYS_newfstatat, AT_FDCWD, "a.txt", &st, 0x12345);
  const std::string long_name(5000, 'n');
  r.sys("lstat name too long", SYS_lstat, long_name.c_str(), &st);
}

void file_size_and_sync(Run& r) {
  Fixture& f = r.fx;
  r.sys("ftruncate a.txt 5", SYS_ftruncate, f.fd_a, 5);
  r.sys("truncate b.bin 100", SYS_truncate, "b.bin", 100);
  r.sys("ftruncate O_RDONLY fd", SYS_ftruncate, f.fd_b, 0);
  r.sys("ftruncate pipe", SYS_ftruncate, f.pipe_w, 0);
  r.sys("truncate negative", SYS_truncate, "a.txt", -1);
  r.sys("truncate missing", SYS_truncate, "missing", 0);
  r.sys("fallocate 16 KiB", SYS_fallocate, f.fd_a, 0, 0, 16384);
  r.sys("fallocate punch hole", SYS_fallocate, f.fd_a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
  r.sys("fallocate zero length", SYS_fallocate, f.fd_a, 0, 0, 0);
  r.sys("fallocate unknown mode", SYS_fallocate, f.fd_a, 0x1000, 0, 1);
  r.sys("lseek SEEK_DATA", SYS_lseek, f.fd_a, 0, SEEK_DATA);
  r.sys("lseek SEEK_HOLE", SYS_lseek, f.fd_a, 0, SEEK_HOLE);
  r.sys("fadvise64 SEQUENTIAL", SYS_fadvise64, f.fd_b, 0, 0, POSIX_FADV_SEQUENTIAL);
  r.sys("fadvise64 bad advice", SYS_fadvise64, f.fd_b, 0, 0, 99);
  r.sys("fadvise64 pipe", SYS_fadvise64, f.pipe_r, 0, 0, POSIX_FADV_NORMAL);
  r.sys("readahead", SYS_readahead, f.fd_b, 0, 4096);
  r.sys("readahead pipe", SYS_readahead, f.pipe_r, 0, 4096);
  r.sys("fsync", SYS_fsync, f.fd_a);
  r.sys("fdatasync", SYS_fdatasync, f.fd_a);
  r.sys("fsync bad fd", SYS_fsync, -1);
  r.sys("fdatasync pipe", SYS_fdatasync, f.pipe_r);
  r.sys("sync_file_range", SYS_sync_file_range, f.fd_a, 0, 0, SYNC_FILE_RANGE_WRITE);
  r.sys("sync_file_range bad flags", SYS_sync_file_range, f.fd_a, 0, 0, 0x100);
}

void fd_table(Run& r) {
  Fixture& f = r.fx;
  r.sys("dup", SYS_dup, f.fd_a);
  r.sys("dup2 to hi+0", SYS_dup2, f.fd_a, hi(0));
  r.sys("dup2 onto itself", SYS_dup2, f.fd_a, f.fd_a);
  r.sys("dup2 bad fd", SYS_dup2, -1, hi(1));
  r.sys("dup3 O_CLOEXEC to hi+1", SYS_dup3, f.fd_a, hi(1), O_CLOEXEC);
  r.sys("dup3 onto itself", SYS_dup3, f.fd_a, f.fd_a, 0);
  r.sys("dup3 bad flags", SYS_dup3, f.fd_a, hi(2), 0x1);
  r.sys("F_GETFD hi+1", SYS_fcntl, hi(1), F_GETFD);
  r.sys("F_SETFD hi+0", SYS_fcntl, hi(0), F_SETFD, FD_CLOEXEC);
  r.sys("F_GETFL", SYS_fcntl, f.fd_a, F_GETFL);
  r.sys("F_SETFL O_APPEND|O_NONBLOCK", SYS_fcntl, f.fd_a, F_SETFL, O_APPEND | O_NONBLOCK);
  r.sys("F_GETFL after", SYS_fcntl, f.fd_a, F_GETFL);
  r.sys("F_DUPFD hi+10", SYS_fcntl, f.fd_a, F_DUPFD, hi(10));
  r.sys("F_DUPFD_CLOEXEC hi+10", SYS_fcntl, f.fd_a, F_DUPFD_CLOEXEC, hi(10));
  r.sys("F_DUPFD negative", SYS_fcntl, f.fd_a, F_DUPFD, -1);
  r.sys("fcntl unknown command", SYS_fcntl, f.fd_a, 9999);
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_len = 10;
  r.sys("F_SETLK write lock 0..10", SYS_fcntl, f.fd_a, F_SETLK, &lk);
  lk.l_type = F_WRLCK;
  r.sys("F_GETLK (own lock)", SYS_fcntl, f.fd_a, F_GETLK, &lk);
  r.log("F_GETLK type", std::to_string(lk.l_type));
  const long second = r.sys("openat a.txt again", SYS_openat, AT_FDCWD, "a.txt", O_RDWR);
  struct flock ofd {};
  ofd.l_type = F_WRLCK;
  ofd.l_whence = SEEK_SET;
  ofd.l_len = 4;
  r.sys("F_OFD_SETLK over the process lock", SYS_fcntl, second, F_OFD_SETLK, &ofd);
  ofd.l_type = F_WRLCK;
  r.sys("F_OFD_GETLK", SYS_fcntl, second, F_OFD_GETLK, &ofd);
  r.log("F_OFD_GETLK conflict",
        fmt("type=%d start=%ld len=%ld pid=", ofd.l_type, ofd.l_start, ofd.l_len) + f.pid_name(ofd.l_pid));
  ofd.l_start = 20;
  ofd.l_pid = 0;
  r.sys("F_OFD_SETLK 20..24", SYS_fcntl, second, F_OFD_SETLK, &ofd);
  lk.l_type = F_WRLCK;
  r.sys("F_SETLK write lock on O_RDONLY fd", SYS_fcntl, f.fd_b, F_SETLK, &lk);
  struct flock wait {};
  wait.l_type = F_WRLCK;
  wait.l_whence = SEEK_SET;
  wait.l_start = 50;
  wait.l_len = 10;
  r.sys("F_SETLKW uncontended 50..60", SYS_fcntl, f.fd_a, F_SETLKW, &wait);
  r.sys("F_GETPIPE_SZ", SYS_fcntl, f.pipe_w, F_GETPIPE_SZ);
  r.sys("F_SETPIPE_SZ 8192", SYS_fcntl, f.pipe_w, F_SETPIPE_SZ, 8192);
  r.sys("F_GETPIPE_SZ on a file", SYS_fcntl, f.fd_a, F_GETPIPE_SZ);
  r.sys("flock LOCK_EX|LOCK_NB", SYS_flock, f.fd_b, LOCK_EX | LOCK_NB);
  const long other = r.sys("openat b.bin again", SYS_openat, AT_FDCWD, "b.bin", O_RDONLY);
  r.sys("flock conflicting", SYS_flock, other, LOCK_EX | LOCK_NB);
  r.sys("flock LOCK_SH|LOCK_NB on the holder", SYS_flock, f.fd_b, LOCK_SH | LOCK_NB);
  r.sys("flock operation 99", SYS_flock, f.fd_b, 99);
  r.sys("flock LOCK_UN without LOCK_NB", SYS_flock, other, LOCK_UN);
  r.sys("flock LOCK_SH without LOCK_NB", SYS_flock, f.fd_dir, LOCK_SH);
  r.sys("ioctl FIOCLEX", SYS_ioctl, hi(0), FIOCLEX);
  r.sys("ioctl FIONCLEX", SYS_ioctl, hi(1), FIONCLEX);
  char tbuf[64];
  r.sys("ioctl TCGETS on a file", SYS_ioctl, f.fd_a, TCGETS, tbuf);
  r.sys("close_range hi+10..11", SYS_close_range, hi(10), hi(11), 0);
  r.sys("close_range CLOEXEC", SYS_close_range, hi(0), hi(0), CLOSE_RANGE_CLOEXEC);
  r.sys("close_range reversed", SYS_close_range, 10, 5, 0);
  r.sys("close_range bad flags", SYS_close_range, hi(100), hi(101), 0x40);
  r.sys("close never opened", SYS_close, hi(700));
}

void file_copy(Run& r) {
  Fixture& f = r.fx;
  const long out =
      r.sys("openat copy.bin", SYS_openat, AT_FDCWD, "copy.bin", O_RDWR | O_CREAT | O_EXCL, 0644);
  long long off = 100;
  r.sys("sendfile 1000 from 100", SYS_sendfile, out, f.fd_b, &off, 1000);
  r.log("sendfile offset", std::to_string(off));
  r.sys("lseek b.bin (unchanged)", SYS_lseek, f.fd_b, 0, SEEK_CUR);
  r.sys("sendfile from own offset", SYS_sendfile, out, f.fd_b, nullptr, 16);
  long long in_off = 4000;
  r.sys("copy_file_range 500", SYS_copy_file_range, f.fd_b, &in_off, out, nullptr, 500, 0);
  r.log("copy_file_range in offset", std::to_string(in_off));
  r.sys("copy_file_range bad flags", SYS_copy_file_range, f.fd_b, &in_off, out, nullptr, 5, 1);
  r.sys("splice pipe -> file", SYS_splice, f.pipe_r, nullptr, out, nullptr, 8, 0);
  int a[2] = {-1, -1}, b[2] = {-1, -1};
  r.sys("pipe2 a", SYS_pipe2, a, O_NONBLOCK);
  r.sys("pipe2 b", SYS_pipe2, b, O_NONBLOCK);
  r.log("pipes", fmt("%d %d %d %d", a[0], a[1], b[0], b[1]));
  r.sys("write a", SYS_write, a[1], "teedata", 7);
  r.sys("tee a -> b", SYS_tee, a[0], b[1], 64, SPLICE_F_NONBLOCK);
  r.sys("tee b -> a", SYS_tee, b[0], a[1], 64, SPLICE_F_NONBLOCK);
  char buf[16] = {};
  long n = r.sys("read b", SYS_read, b[0], buf, sizeof buf);
  r.log("read b data", contents(buf, n));
  iovec v{const_cast<char*>("vm"), 2};
  r.sys("vmsplice into b", SYS_vmsplice, b[1], &v, 1, 0);
  r.sys("splice file -> b", SYS_splice, f.fd_b, nullptr, b[1], nullptr, 32, SPLICE_F_NONBLOCK);
  r.sys("splice between two files", SYS_splice, f.fd_b, nullptr, out, nullptr, 8, 0);
  r.sys("lseek copy.bin", SYS_lseek, out, 0, SEEK_CUR);
}

// ---- cases: directories -----------------------------------------------------

void dir_entries(Run& r) {
  Fixture& f = r.fx;
  char buf[128] = {};
  r.sys("mkdir d1", SYS_mkdir, "d1", 0750);
  r.sys("mkdir d1 again", SYS_mkdir, "d1", 0750);
  r.sys("mkdirat dirfd d2", SYS_mkdirat, f.fd_dir, "d2", 0700);
  r.sys("mkdir in missing parent", SYS_mkdir, "nope/d", 0755);
  r.sys("rmdir d2", SYS_rmdir, "d2");
  r.sys("rmdir non-empty", SYS_rmdir, "sub");
  r.sys("rmdir missing", SYS_rmdir, "missing");
  r.sys("rmdir a file", SYS_rmdir, "a.txt");
  r.sys("unlink a directory", SYS_unlink, "sub");
  r.sys("unlinkat AT_REMOVEDIR d1", SYS_unlinkat, f.fd_dir, "d1", AT_REMOVEDIR);
  r.sys("unlinkat bad flags", SYS_unlinkat, f.fd_dir, "a.txt", 0x1);
  r.sys("rename empty -> empty2", SYS_rename, "empty", "empty2");
  r.sys("rename missing", SYS_rename, "missing", "x");
  r.sys("renameat2 NOREPLACE onto existing", SYS_renameat2, AT_FDCWD, "a.txt", AT_FDCWD, "b.bin",
        RENAME_NOREPLACE);
  r.sys("renameat2 EXCHANGE", SYS_renameat2, AT_FDCWD, "a.txt", f.fd_dir, "b.bin", RENAME_EXCHANGE);
  r.sys("renameat2 bad flags", SYS_renameat2, AT_FDCWD, "a.txt", AT_FDCWD, "z", 0x100);
  r.sys("renameat sub/c.txt -> c2", SYS_renameat, f.fd_dir, "sub/c.txt", AT_FDCWD, "c2");
  r.sys("link", SYS_link, "a.txt", "hard");
  r.sys("link existing", SYS_link, "a.txt", "hard");
  r.sys("linkat", SYS_linkat, f.fd_dir, "hard", f.fd_dir, "hard2", 0);
  r.sys("linkat AT_SYMLINK_FOLLOW", SYS_linkat, AT_FDCWD, "link", AT_FDCWD, "hard3", AT_SYMLINK_FOLLOW);
  r.sys("unlink hard2", SYS_unlink, "hard2");
  r.sys("symlink", SYS_symlink, "sub", "s2");
  r.sys("symlinkat dangling", SYS_symlinkat, "nowhere", f.fd_dir, "dangling");
  r.sys("symlink existing", SYS_symlink, "x", "link");
  long n = r.sys("readlink link", SYS_readlink, "link", buf, sizeof buf);
  r.log("readlink data", contents(buf, n));
  n = r.sys("readlinkat s2", SYS_readlinkat, f.fd_dir, "s2", buf, sizeof buf);
  r.log("readlinkat data", contents(buf, n));
  n = r.sys("readlink short buffer", SYS_readlink, "dangling", buf, 3);
  r.log("readlink short data", contents(buf, n));
  r.sys("readlink not a link", SYS_readlink, "a.txt", buf, sizeof buf);
  r.sys("readlink zero size", SYS_readlink, "link", buf, 0);
  r.sys("mknodat fifo", SYS_mknodat, AT_FDCWD, "fifo", S_IFIFO | 0640, 0);
  r.sys("mknod regular", SYS_mknod, "node", S_IFREG | 0600, 0);
  r.sys("mknod bad type", SYS_mknod, "bad", 0170000 | 0600, 0);
  r.sys("unlink", SYS_unlink, "node");
  r.sys("unlink missing", SYS_unlink, "node");
}

void dir_listing(Run& r) {
  Fixture& f = r.fx;
  alignas(8) char buf[4096];
  const long d = r.sys("openat . O_DIRECTORY", SYS_openat, AT_FDCWD, ".", O_RDONLY | O_DIRECTORY);
  auto parse = [&](long n, bool legacy, const std::string& prefix = "") {
    std::string names;
    if (n > static_cast<long>(sizeof buf)) return fmt("(length %ld exceeds the buffer)", n);
    for (long off = 0; off + 20 <= n;) {
      unsigned short reclen;
      std::string name;
      unsigned char type;
      uint64_t ino;
      std::memcpy(&ino, buf + off, sizeof ino);
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      if (legacy) {
        name = buf + off + 18;
        type = static_cast<unsigned char>(buf[off + reclen - 1]);
      } else {
        name = buf + off + 19;
        type = static_cast<unsigned char>(buf[off + 18]);
      }
      struct stat st {};
      sc(SYS_newfstatat, f.fd_dir, (prefix + name).c_str(), &st, AT_SYMLINK_NOFOLLOW);
      names += fmt(" %s(type=%u reclen=%u ino-ok=%d)", name.c_str(), type, reclen, st.st_ino == ino);
      if (reclen < 20 || off + reclen > n) return names + " (bad record)";
      off += reclen;
    }
    return names;
  };
  long n = r.sys("getdents64", SYS_getdents64, d, buf, sizeof buf);
  r.log("getdents64 entries", parse(n, false));
  r.sys("getdents64 at end", SYS_getdents64, d, buf, sizeof buf);
  r.sys("lseek dir to 0", SYS_lseek, d, 0, SEEK_SET);
  n = r.sys("getdents (legacy)", SYS_getdents, d, buf, sizeof buf);
  r.log("getdents entries", parse(n, true));
  r.sys("lseek dir to 0 again", SYS_lseek, d, 0, SEEK_SET);
  r.sys("getdents64 tiny buffer", SYS_getdents64, d, buf, 10);
  r.sys("getdents64 bad buffer", SYS_getdents64, d, kBadPtr, sizeof buf);
  r.sys("getdents64 on a file", SYS_getdents64, f.fd_a, buf, sizeof buf);
  r.sys("getdents64 bad fd", SYS_getdents64, -1, buf, sizeof buf);
  const long s = r.sys("openat sub", SYS_openat, f.fd_dir, "sub", O_RDONLY | O_DIRECTORY);
  n = r.sys("getdents64 sub", SYS_getdents64, s, buf, sizeof buf);
  r.log("getdents64 sub entries", parse(n, false, "sub/"));
  r.sys("openat O_DIRECTORY on a file", SYS_openat, AT_FDCWD, "a.txt", O_RDONLY | O_DIRECTORY);
}

void dir_cwd(Run& r) {
  Fixture& f = r.fx;
  char buf[512] = {};
  long n = r.sys("getcwd", SYS_getcwd, buf, sizeof buf);
  r.log("getcwd data", n > 0 ? f.path(buf) : "");
  r.sys("getcwd too small", SYS_getcwd, buf, 2);
  r.sys("getcwd bad buffer", SYS_getcwd, kBadPtr, sizeof buf);
  r.sys("chdir sub", SYS_chdir, "sub");
  n = r.sys("getcwd in sub", SYS_getcwd, buf, sizeof buf);
  r.log("getcwd data", n > 0 ? f.path(buf) : "");
  r.sys("access c.txt (relative to new cwd)", SYS_access, "c.txt", R_OK);
  r.sys("fchdir fixture dir", SYS_fchdir, f.fd_dir);
  n = r.sys("getcwd back", SYS_getcwd, buf, sizeof buf);
  r.log("getcwd data", n > 0 ? f.path(buf) : "");
  r.sys("chdir missing", SYS_chdir, "missing");
  r.sys("chdir a file", SYS_chdir, "a.txt");
  r.sys("fchdir a file", SYS_fchdir, f.fd_a);
  r.sys("fchdir bad fd", SYS_fchdir, -1);
  r.sys("chdir sub (stays)", SYS_chdir, "sub");
}

void file_attributes(Run& r) {
  Fixture& f = r.fx;
  r.sys("chmod a.txt 0600", SYS_chmod, "a.txt", 0600);
  r.sys("fchmod b.bin 0444", SYS_fchmod, f.fd_b, 0444);
  r.sys("fchmodat sub 0700", SYS_fchmodat, f.fd_dir, "sub", 0700);
  r.sys("chmod missing", SYS_chmod, "missing", 0600);
  r.sys("chown a.txt to own ids", SYS_chown, "a.txt", sc(SYS_getuid), sc(SYS_getgid));
  r.sys("fchown -1 -1", SYS_fchown, f.fd_a, -1, -1);
  r.sys("lchown link", SYS_lchown, "link", -1, -1);
  r.sys("fchownat AT_SYMLINK_NOFOLLOW", SYS_fchownat, AT_FDCWD, "link", -1, -1, AT_SYMLINK_NOFOLLOW);
  r.sys("fchownat bad flags", SYS_fchownat, AT_FDCWD, "link", -1, -1, 0x1);
  r.sys("access R_OK", SYS_access, "a.txt", R_OK);
  r.sys("access missing", SYS_access, "missing", F_OK);
  r.sys("access bad mode", SYS_access, "a.txt", 0x10);
  r.sys("faccessat X_OK on 0600 file", SYS_faccessat, f.fd_dir, "a.txt", X_OK);
  r.sys("faccessat2 AT_EACCESS", SYS_faccessat2, f.fd_dir, "sub", X_OK, AT_EACCESS);
  r.sys("faccessat2 bad flags", SYS_faccessat2, f.fd_dir, "a.txt", R_OK, 0x1);
  const timespec times[2] = {{1000, 1}, {2000, 2}};
  r.sys("utimensat fixed times", SYS_utimensat, AT_FDCWD, "a.txt", times, 0);
  const timespec omit[2] = {{0, UTIME_OMIT}, {3000, 3}};
  r.sys("utimensat UTIME_OMIT atime", SYS_utimensat, f.fd_dir, "sub/c.txt", omit, 0);
  const timespec bad[2] = {{0, 2000000000}, {0, 0}};
  r.sys("utimensat bad nsec", SYS_utimensat, AT_FDCWD, "a.txt", bad, 0);
  r.sys("utimensat on a symlink itself", SYS_utimensat, AT_FDCWD, "link", times, AT_SYMLINK_NOFOLLOW);
  timeval tv[2] = {{4000, 4}, {5000, 5}};
  r.sys("utimes", SYS_utimes, "empty", tv);
  r.sys("umask 077", SYS_umask, 077);
  r.sys("creat under umask 077", SYS_creat, "masked", 0666);
  r.sys("mkdir under umask 077", SYS_mkdir, "maskdir", 0777);
  r.sys("umask 027 (returns 077)", SYS_umask, 027);
  // Extended attributes (user namespace).
  r.sys("setxattr", SYS_setxattr, "a.txt", "user.k", "v1", 2, 0);
  r.sys("fsetxattr XATTR_CREATE existing", SYS_fsetxattr, f.fd_a, "user.k", "v2", 2, XATTR_CREATE);
  r.sys("lsetxattr on b.bin", SYS_lsetxattr, "b.bin", "user.other", "xyz", 3, 0);
  char buf[64] = {};
  long n = r.sys("getxattr", SYS_getxattr, "a.txt", "user.k", buf, sizeof buf);
  r.log("getxattr data", contents(buf, n));
  r.sys("getxattr size query", SYS_getxattr, "a.txt", "user.k", nullptr, 0);
  r.sys("getxattr too small", SYS_getxattr, "a.txt", "user.k", buf, 1);
  r.sys("fgetxattr missing name", SYS_fgetxattr, f.fd_a, "user.none", buf, sizeof buf);
  n = r.sys("listxattr", SYS_listxattr, "a.txt", buf, sizeof buf);
  r.log("listxattr data", contents(buf, n));
  r.sys("flistxattr", SYS_flistxattr, f.fd_b, buf, sizeof buf);
  r.sys("llistxattr link", SYS_llistxattr, "link", buf, sizeof buf);
  r.sys("lgetxattr", SYS_lgetxattr, "b.bin", "user.other", buf, sizeof buf);
  r.sys("removexattr", SYS_removexattr, "b.bin", "user.other");
  r.sys("fremovexattr missing", SYS_fremovexattr, f.fd_b, "user.other");
  r.sys("lremovexattr missing", SYS_lremovexattr, "a.txt", "user.none");
  r.sys("setxattr bad namespace", SYS_setxattr, "a.txt", "bogus.k", "v", 1, 0);
}

void filesystem_info(Run& r) {
  Fixture& f = r.fx;
  struct statfs s {
  }, ref{};
  auto line = [&](const struct statfs& v) {
    return fmt("type=%#lx bsize=%ld namelen=%ld frsize=%ld flags=%#lx blocks=%lu files=%lu free<=blocks=%d",
               static_cast<long>(v.f_type), static_cast<long>(v.f_bsize), static_cast<long>(v.f_namelen),
               static_cast<long>(v.f_frsize), static_cast<long>(v.f_flags),
               static_cast<unsigned long>(v.f_blocks), static_cast<unsigned long>(v.f_files),
               v.f_bfree <= v.f_blocks && v.f_bavail <= v.f_bfree);
  };
  sc(SYS_statfs, ".", &ref);
  long rc = r.sys("statfs .", SYS_statfs, ".", &s);
  if (rc == 0)
    r.log("statfs", line(s) + " fsid-ok=" + yes(!std::memcmp(&s.f_fsid, &ref.f_fsid, sizeof s.f_fsid)));
  rc = r.sys("fstatfs a.txt", SYS_fstatfs, f.fd_a, &s);
  if (rc == 0) r.log("fstatfs", line(s));
  r.sys("statfs missing", SYS_statfs, "missing", &s);
  r.sys("statfs bad buffer", SYS_statfs, ".", kBadPtr);
  r.sys("fstatfs bad fd", SYS_fstatfs, -1, &s);
}

// ---- cases: pipes, polling, event descriptors --------------------------------

void pipes(Run& r) {
  Fixture& f = r.fx;
  char buf[32] = {};
  long n = r.sys("read fixture pipe", SYS_read, f.pipe_r, buf, sizeof buf);
  r.log("read data", contents(buf, n));
  int p[2] = {-1, -1};
  r.sys("pipe2 O_NONBLOCK|O_CLOEXEC", SYS_pipe2, p, O_NONBLOCK | O_CLOEXEC);
  r.log("pipe2 fds", fmt("%d %d", p[0], p[1]));
  r.sys("write 5", SYS_write, p[1], "hello", 5);
  int queued = -1;
  r.sys("ioctl FIONREAD", SYS_ioctl, p[0], FIONREAD, &queued);
  r.log("FIONREAD", std::to_string(queued));
  n = r.sys("read 3", SYS_read, p[0], buf, 3);
  r.log("read data", contents(buf, n));
  n = r.sys("read rest", SYS_read, p[0], buf, sizeof buf);
  r.log("read data", contents(buf, n));
  r.sys("read empty O_NONBLOCK", SYS_read, p[0], buf, sizeof buf);
  r.sys("write to the read end", SYS_write, p[0], "x", 1);
  r.sys("read from the write end", SYS_read, p[1], buf, 1);
  r.sys("lseek on a pipe", SYS_lseek, p[0], 0, SEEK_SET);
  r.sys("pread64 on a pipe", SYS_pread64, p[0], buf, 1, 0);
  r.sys("write 3 more", SYS_write, p[1], "abc", 3);
  r.sys("close write end", SYS_close, p[1]);
  n = r.sys("read after close", SYS_read, p[0], buf, sizeof buf);
  r.log("read data", contents(buf, n));
  r.sys("read at EOF", SYS_read, p[0], buf, sizeof buf);
  int q[2] = {-1, -1};
  r.sys("pipe (legacy)", SYS_pipe, q);
  r.log("pipe fds", fmt("%d %d", q[0], q[1]));
  r.sys("write legacy pipe (stays queued)", SYS_write, q[1], "queued", 6);
  r.sys("pipe2 bad flags", SYS_pipe2, p, 0x1);
  r.sys("pipe2 bad pointer", SYS_pipe2, kBadPtr, 0);
  r.sys("ioctl FIONBIO on", SYS_ioctl, q[0], FIONBIO, &(queued = 1));
  r.sys("read empty after FIONBIO", SYS_read, q[0], buf, 0);
}

void polling(Run& r) {
  Fixture& f = r.fx;
  pollfd fds[] = {{static_cast<int>(f.pipe_r), POLLIN, 0},
                  {static_cast<int>(f.pipe_w), POLLOUT, 0},
                  {static_cast<int>(f.sfd), POLLIN, 0},
                  {static_cast<int>(f.lfd), POLLIN, 0},
                  {static_cast<int>(f.us0), POLLIN, 0},
                  {static_cast<int>(f.ufd), POLLIN, 0},
                  {static_cast<int>(f.fd_a), POLLIN | POLLOUT, 0},
                  {9999, POLLIN, 0}};
  auto revents = [&] {
    std::string s;
    for (const pollfd& p : fds) s += fmt(" %#x", p.revents);
    return s;
  };
  r.sys("poll timeout 0", SYS_poll, fds, std::size(fds), 0);
  r.log("poll revents", revents());
  const timespec zero{};
  r.sys("ppoll zero timeout", SYS_ppoll, fds, std::size(fds), &zero, nullptr, 8);
  r.log("ppoll revents", revents());
  pollfd idle{static_cast<int>(f.ufd), POLLIN, 0};
  r.sys("poll 20 ms on an idle socket", SYS_poll, &idle, 1, 20);
  r.sys("poll too many fds", SYS_poll, fds, 1 << 30, 0);
  r.sys("poll bad pointer", SYS_poll, kBadPtr, 1, 0);
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(static_cast<int>(f.pipe_r), &rd);
  FD_SET(static_cast<int>(f.ufd), &rd);
  FD_SET(static_cast<int>(f.pipe_w), &wr);
  const int nfds = static_cast<int>(std::max({f.pipe_r, f.pipe_w, f.ufd})) + 1;
  timeval tv{0, 0};
  r.sys("select", SYS_select, nfds, &rd, &wr, nullptr, &tv);
  r.log("select sets",
        fmt("r:%d,%d w:%d", FD_ISSET(static_cast<int>(f.pipe_r), &rd), FD_ISSET(static_cast<int>(f.ufd), &rd),
            FD_ISSET(static_cast<int>(f.pipe_w), &wr)));
  FD_ZERO(&rd);
  FD_SET(static_cast<int>(f.us0), &rd);
  timespec ts{0, 0};
  struct {
    const void* set;
    size_t size;
  } no_mask{nullptr, 8};
  r.sys("pselect6", SYS_pselect6, f.us0 + 1, &rd, nullptr, nullptr, &ts, &no_mask);
  r.log("pselect6 set", std::to_string(FD_ISSET(static_cast<int>(f.us0), &rd)));
  r.sys("select negative nfds", SYS_select, -1, nullptr, nullptr, nullptr, &tv);
  FD_ZERO(&rd);
  FD_SET(static_cast<int>(hi(50)), &rd);
  r.sys("select on a closed fd", SYS_select, hi(51), &rd, nullptr, nullptr, &tv);
}

void event_descriptors(Run& r) {
  Fixture& f = r.fx;
  const long efd = r.sys("eventfd2 3 NONBLOCK", SYS_eventfd2, 3, EFD_NONBLOCK);
  uint64_t v = 4;
  r.sys("write eventfd +4", SYS_write, efd, &v, 8);
  r.sys("write eventfd short", SYS_write, efd, &v, 4);
  v = 0;
  r.sys("read eventfd", SYS_read, efd, &v, 8);
  r.log("eventfd value", std::to_string(v));
  r.sys("read eventfd empty", SYS_read, efd, &v, 8);
  r.sys("eventfd2 bad flags", SYS_eventfd2, 0, 0x2);
  r.sys("write eventfd +2 (stays)", SYS_write, efd, &(v = 2), 8);
  const long ep = r.sys("epoll_create1 CLOEXEC", SYS_epoll_create1, EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0xE;
  r.sys("epoll_ctl ADD eventfd", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, efd, &ev);
  ev.data.u64 = 0xA;
  r.sys("epoll_ctl ADD pipe", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, f.pipe_r, &ev);
  ev.data.u64 = 0xB;
  ev.events = EPOLLIN | EPOLLET;
  r.sys("epoll_ctl ADD udp", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, f.ufd, &ev);
  r.sys("epoll_ctl ADD twice", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, efd, &ev);
  r.sys("epoll_ctl DEL not a member", SYS_epoll_ctl, ep, EPOLL_CTL_DEL, f.us0, nullptr);
  r.sys("epoll_ctl ADD a regular file", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, f.fd_a, &ev);
  r.sys("epoll_ctl ADD itself", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, ep, &ev);
  ev.events = EPOLLOUT;
  ev.data.u64 = 0xAA;
  r.sys("epoll_ctl MOD pipe", SYS_epoll_ctl, ep, EPOLL_CTL_MOD, f.pipe_r, &ev);
  epoll_event out[8]{};
  auto events = [&](long n) {
    std::string s;
    std::vector<std::pair<uint64_t, uint32_t>> got;
    for (long i = 0; i < n && i < 8; ++i) {
      const uint64_t data = out[i].data.u64;
      const uint32_t evs = out[i].events;
      got.emplace_back(data, evs);
    }
    std::sort(got.begin(), got.end());
    for (const auto& [data, evs] : got) s += fmt(" %#lx:%#x", data, evs);
    return s;
  };
  long n = r.sys("epoll_wait timeout 0", SYS_epoll_wait, ep, out, 8, 0);
  r.log("epoll_wait events", events(n));
  n = r.sys("epoll_pwait timeout 0", SYS_epoll_pwait, ep, out, 8, 0, nullptr, 8);
  r.log("epoll_pwait events", events(n));
  r.sys("epoll_wait maxevents 0", SYS_epoll_wait, ep, out, 0, 0);
  r.sys("epoll_wait on a non-epoll fd", SYS_epoll_wait, f.fd_a, out, 8, 0);
  r.sys("epoll_create1 bad flags", SYS_epoll_create1, 0x1);
  r.sys("epoll_ctl DEL udp", SYS_epoll_ctl, ep, EPOLL_CTL_DEL, f.ufd, nullptr);
}

void timer_descriptors(Run& r) {
  Fixture& f = r.fx;
  const long t =
      r.sys("timerfd_create MONOTONIC", SYS_timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  itimerspec its{{0, 0}, {100, 0}}, old{};
  r.sys("timerfd_settime 100 s", SYS_timerfd_settime, t, 0, &its, &old);
  r.log("old setting", fmt("%ld.%09ld", old.it_value.tv_sec, old.it_value.tv_nsec));
  itimerspec cur{};
  r.sys("timerfd_gettime", SYS_timerfd_gettime, t, &cur);
  r.log("remaining within (99,100] s",
        yes(cur.it_value.tv_sec == 99 || (cur.it_value.tv_sec == 100 && cur.it_value.tv_nsec == 0)));
  uint64_t ticks = 0;
  r.sys("read before expiry", SYS_read, t, &ticks, 8);
  const itimerspec past{{0, 0}, {0, 1}};
  r.sys("timerfd_settime absolute in the past", SYS_timerfd_settime, t, TFD_TIMER_ABSTIME, &past, nullptr);
  // The expiry arrives through the timer interrupt: wait for it (on a slow
  // or emulated CPU the read can come first).
  pollfd pfd{static_cast<int>(t), POLLIN, 0};
  const timespec ten_s{10, 0};
  r.sys("ppoll until expired", SYS_ppoll, &pfd, 1, &ten_s, nullptr, 8);
  r.sys("read expired", SYS_read, t, &ticks, 8);
  r.log("ticks", std::to_string(ticks));
  r.sys("read 4 bytes", SYS_read, t, &ticks, 4);
  const itimerspec interval{{5, 0}, {5, 0}};
  r.sys("timerfd_settime with interval (stays armed)", SYS_timerfd_settime, t, 0, &interval, nullptr);
  r.sys("timerfd_create bad clock", SYS_timerfd_create, 12345, 0);
  r.sys("timerfd_create bad flags", SYS_timerfd_create, CLOCK_MONOTONIC, 0x1);
  r.sys("timerfd_settime bad flags", SYS_timerfd_settime, t, 0x100, &its, nullptr);
  const itimerspec bad{{0, 0}, {0, 1000000000}};
  r.sys("timerfd_settime bad nsec", SYS_timerfd_settime, t, 0, &bad, nullptr);
  r.sys("timerfd_gettime on a file", SYS_timerfd_gettime, f.fd_a, &cur);
}

void inotify(Run& r) {
  const long in = r.sys("inotify_init1 NONBLOCK", SYS_inotify_init1, IN_NONBLOCK);
  r.sys("inotify_add_watch . IN_CREATE|IN_DELETE", SYS_inotify_add_watch, in, ".", IN_CREATE | IN_DELETE);
  r.sys("inotify_add_watch missing", SYS_inotify_add_watch, in, "missing", IN_CREATE);
  r.sys("inotify_add_watch no events", SYS_inotify_add_watch, in, ".", 0);
  r.sys("creat watched", SYS_creat, "watched", 0644);
  r.sys("unlink empty", SYS_unlink, "empty");
  alignas(8) char buf[512];
  const long n = r.sys("read events", SYS_read, in, buf, sizeof buf);
  std::string events;
  for (long off = 0;
       n <= static_cast<long>(sizeof buf) && off + static_cast<long>(sizeof(inotify_event)) <= n;) {
    inotify_event ev;
    std::memcpy(&ev, buf + off, sizeof ev);
    off += static_cast<long>(sizeof ev);
    const char* name = buf + off;
    events += fmt(" wd=%d mask=%#x name=", ev.wd, ev.mask) +
              std::string(name, strnlen(name, static_cast<size_t>(std::clamp<long>(n - off, 0, ev.len))));
    off += ev.len;
  }
  r.log("events", events);
  r.sys("read empty", SYS_read, in, buf, sizeof buf);
  r.sys("inotify_rm_watch 1", SYS_inotify_rm_watch, in, 1);
  r.sys("inotify_rm_watch again", SYS_inotify_rm_watch, in, 1);
  r.sys("inotify_init1 bad flags", SYS_inotify_init1, 0x1);
}

// ---- cases: sockets -----------------------------------------------------------

void unix_sockets(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  long n = r.sys("recvfrom fixture pair", SYS_recvfrom, f.us0, buf, sizeof buf, 0, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  int sv[2] = {-1, -1};
  r.sys("socketpair STREAM|CLOEXEC", SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  r.log("socketpair fds", fmt("%d %d", sv[0], sv[1]));
  r.sys("sendto", SYS_sendto, sv[0], "hi", 2, 0, nullptr, 0);
  n = r.sys("recvfrom DONTWAIT", SYS_recvfrom, sv[1], buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  r.sys("recvfrom empty DONTWAIT", SYS_recvfrom, sv[1], buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
  int val = 0;
  socklen_t len = sizeof val;
  r.sys("getsockopt SO_TYPE", SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &val, &len);
  r.log("SO_TYPE", fmt("%d len=%u", val, len));
  ucred cred{};
  len = sizeof cred;
  r.sys("getsockopt SO_PEERCRED", SYS_getsockopt, sv[0], SOL_SOCKET, SO_PEERCRED, &cred, &len);
  r.log("SO_PEERCRED", "pid=" + f.pid_name(cred.pid) + fmt(" uid=%u gid=%u len=%u", cred.uid, cred.gid, len));
  val = 65536;
  r.sys("setsockopt SO_SNDBUF", SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &val, sizeof val);
  len = sizeof val;
  r.sys("getsockopt SO_SNDBUF", SYS_getsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &val, &len);
  r.log("SO_SNDBUF", std::to_string(val));
  r.sys("setsockopt bad option", SYS_setsockopt, sv[0], SOL_SOCKET, 9999, &val, sizeof val);
  r.sys("setsockopt short optlen", SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &val, 1);
  // Pass a descriptor.
  char data = 'F';
  iovec iov{&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  const int passed = static_cast<int>(f.fd_a);
  std::memcpy(CMSG_DATA(cm), &passed, sizeof passed);
  r.sys("sendmsg SCM_RIGHTS", SYS_sendmsg, sv[0], &msg, 0);
  char got = 0;
  iovec riov{&got, 1};
  alignas(cmsghdr) char rcontrol[CMSG_SPACE(sizeof(int))] = {};
  msghdr rmsg{};
  rmsg.msg_iov = &riov;
  rmsg.msg_iovlen = 1;
  rmsg.msg_control = rcontrol;
  rmsg.msg_controllen = sizeof rcontrol;
  r.sys("recvmsg CMSG_CLOEXEC", SYS_recvmsg, sv[1], &rmsg, MSG_CMSG_CLOEXEC);
  int received = -1;
  if (cmsghdr* c = CMSG_FIRSTHDR(&rmsg); c && c->cmsg_type == SCM_RIGHTS)
    std::memcpy(&received, CMSG_DATA(c), sizeof received);
  char target[256];
  const std::string link = "/proc/self/fd/" + std::to_string(received);
  const long tl = sc(SYS_readlink, link.c_str(), target, sizeof target);
  r.log("received", fmt("data=%c fd=%d flags=%#x controllen=%zu -> ", got, received, rmsg.msg_flags,
                        static_cast<size_t>(rmsg.msg_controllen)) +
                        (tl > 0 ? f.path(std::string(target, static_cast<size_t>(tl))) : ret_str(tl)));
  sockaddr_un un{};
  len = sizeof un;
  r.sys("getsockname unnamed", SYS_getsockname, sv[0], &un, &len);
  r.log("getsockname", f.addr(&un, len));
  r.sys("shutdown SHUT_WR", SYS_shutdown, sv[0], SHUT_WR);
  r.sys("recvfrom after peer shutdown", SYS_recvfrom, sv[1], buf, sizeof buf, 0, nullptr, nullptr);
  r.sys("sendto after SHUT_WR (MSG_NOSIGNAL)", SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, nullptr, 0);
  r.sys("shutdown bad how", SYS_shutdown, sv[0], 99);
  // Datagrams through a named socket in the fixture directory.
  const long d = r.sys("socket UNIX DGRAM", SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un name{};
  name.sun_family = AF_UNIX;
  std::strcpy(name.sun_path, "sock");
  const socklen_t name_len = offsetof(sockaddr_un, sun_path) + 5;
  r.sys("bind sock", SYS_bind, d, &name, name_len);
  r.sys("bind existing path", SYS_bind, sv[1], &name, name_len);
  const long c = r.sys("socket UNIX DGRAM client", SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  r.sys("sendto sock", SYS_sendto, c, "dgram", 5, 0, &name, name_len);
  sockaddr_un from{};
  len = sizeof from;
  n = r.sys("recvfrom with address", SYS_recvfrom, d, buf, sizeof buf, 0, &from, &len);
  r.log("recvfrom", contents(buf, n) + " from " + f.addr(&from, len));
  r.sys("connect client", SYS_connect, c, &name, name_len);
  len = sizeof from;
  r.sys("getpeername client", SYS_getpeername, c, &from, &len);
  r.log("getpeername", f.addr(&from, len));
  std::strcpy(name.sun_path, "missing");
  r.sys("connect missing path", SYS_connect, c, &name, offsetof(sockaddr_un, sun_path) + 8);
  r.sys("socket bad domain", SYS_socket, 9999, SOCK_STREAM, 0);
  r.sys("socket bad type", SYS_socket, AF_UNIX, 9999, 0);
  r.sys("socket bad protocol", SYS_socket, AF_INET, SOCK_STREAM, 9999);
  r.sys("getsockopt on a file", SYS_getsockopt, f.fd_a, SOL_SOCKET, SO_TYPE, &val, &len);
  r.sys("sendto fixture pair", SYS_sendto, f.us1, "more", 4, 0, nullptr, 0);
  r.sys("recvfrom bad buffer", SYS_recvfrom, f.us0, kBadPtr, 4, MSG_DONTWAIT, nullptr, nullptr);
}

void tcp_loopback(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  const long acc = r.sys("accept4 the pending connection", SYS_accept4, f.lfd, &peer, &len, SOCK_CLOEXEC);
  r.log("accept4 peer", f.addr(&peer, len));
  len = sizeof peer;
  r.sys("getsockname accepted", SYS_getsockname, acc, &peer, &len);
  r.log("getsockname", f.addr(&peer, len));
  len = sizeof peer;
  r.sys("getpeername accepted", SYS_getpeername, acc, &peer, &len);
  r.log("getpeername", f.addr(&peer, len));
  r.sys("F_SETFL listener O_NONBLOCK", SYS_fcntl, f.lfd, F_SETFL, O_NONBLOCK);
  r.sys("accept4 empty queue", SYS_accept4, f.lfd, nullptr, nullptr, 0);
  r.sys("accept4 bad flags", SYS_accept4, f.lfd, nullptr, nullptr, 0x1);
  r.sys("accept on a connected socket", SYS_accept, f.cfd, nullptr, nullptr);
  long n = r.sys("recvfrom established", SYS_recvfrom, f.sfd, buf, sizeof buf, 0, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  r.sys("sendto accepted -> pending client", SYS_sendto, acc, "hello", 5, 0, nullptr, 0);
  char a3[3] = {}, a2[2] = {};
  iovec iov[2] = {{a3, 3}, {a2, 2}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  r.sys("recvmsg WAITALL into 3+2", SYS_recvmsg, f.pfd, &msg, MSG_WAITALL);
  r.log("recvmsg data", quote(a3, 3) + quote(a2, 2) + fmt(" flags=%#x", msg.msg_flags));
  iovec out[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
  msghdr smsg{};
  smsg.msg_iov = out;
  smsg.msg_iovlen = 2;
  r.sys("sendmsg 2+2", SYS_sendmsg, f.pfd, &smsg, 0);
  n = r.sys("recvfrom MSG_PEEK|WAITALL", SYS_recvfrom, acc, buf, 4, MSG_PEEK | MSG_WAITALL, nullptr, nullptr);
  r.log("peek data", contents(buf, n));
  n = r.sys("recvfrom WAITALL", SYS_recvfrom, acc, buf, 4, MSG_WAITALL, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  // A new connection.
  const long s = r.sys("socket INET STREAM", SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in listen_addr = loopback(f.port_listen);
  r.sys("connect to the listener", SYS_connect, s, &listen_addr, sizeof listen_addr);
  r.sys("connect again", SYS_connect, s, &listen_addr, sizeof listen_addr);
  pollfd p{static_cast<int>(f.lfd), POLLIN, 0};
  r.sys("poll listener", SYS_poll, &p, 1, 5000);
  r.log("poll revents", fmt("%#x", p.revents));
  const long acc2 = r.sys("accept (no address)", SYS_accept, f.lfd, nullptr, nullptr);
  sockaddr_in mine{}, theirs{};
  socklen_t l1 = sizeof mine, l2 = sizeof theirs;
  sc(SYS_getsockname, s, &mine, &l1);
  sc(SYS_getpeername, acc2, &theirs, &l2);
  r.log("accepted peer is the connecting socket", yes(acc2 >= 0 && mine.sin_port == theirs.sin_port));
  int one = 1;
  r.sys("setsockopt TCP_NODELAY", SYS_setsockopt, s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int val = -1;
  len = sizeof val;
  r.sys("getsockopt TCP_NODELAY", SYS_getsockopt, s, IPPROTO_TCP, TCP_NODELAY, &val, &len);
  r.log("TCP_NODELAY", fmt("%d len=%u", val, len));
  len = sizeof val;
  r.sys("getsockopt SO_ERROR", SYS_getsockopt, s, SOL_SOCKET, SO_ERROR, &val, &len);
  r.log("SO_ERROR", std::to_string(val));
  r.sys("listen on a connected socket", SYS_listen, s, 4);
  const long t = r.sys("socket for errors", SYS_socket, AF_INET, SOCK_STREAM, 0);
  r.sys("bind the listener's port", SYS_bind, t, &listen_addr, sizeof listen_addr);
  r.sys("bind bad length", SYS_bind, t, &listen_addr, 3);
  const sockaddr_in dead = loopback(f.port_dead);
  r.sys("connect to a closed port", SYS_connect, t, &dead, sizeof dead);
  r.sys("getpeername unconnected", SYS_getpeername, f.lfd, &peer, &len);
  r.sys("shutdown SHUT_WR established client", SYS_shutdown, f.cfd, SHUT_WR);
  r.sys("recvfrom at FIN", SYS_recvfrom, f.sfd, buf, sizeof buf, 0, nullptr, nullptr);
  r.sys("sendto after SHUT_WR (MSG_NOSIGNAL)", SYS_sendto, f.cfd, "x", 1, MSG_NOSIGNAL, nullptr, 0);
  r.sys("sendto 'still' back (stays queued)", SYS_sendto, acc2, "still", 5, 0, nullptr, 0);
  pollfd q{static_cast<int>(s), POLLIN, 0};
  r.sys("poll for it", SYS_poll, &q, 1, 5000);
}

void udp_loopback(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  const long u = r.sys("socket INET DGRAM", SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in any = loopback(0);
  r.sys("bind 127.0.0.1:0", SYS_bind, u, &any, sizeof any);
  sockaddr_in mine{};
  socklen_t len = sizeof mine;
  r.sys("getsockname", SYS_getsockname, u, &mine, &len);
  r.log("getsockname", f.addr(&mine, len, SOCK_DGRAM));
  const sockaddr_in to = loopback(f.port_udp);
  r.sys("sendto fixture socket", SYS_sendto, u, "dgram1", 6, 0, &to, sizeof to);
  sockaddr_in from{};
  len = sizeof from;
  long n = r.sys("recvfrom", SYS_recvfrom, f.ufd, buf, sizeof buf, 0, &from, &len);
  r.log("recvfrom", contents(buf, n) + " from " + f.addr(&from, len, SOCK_DGRAM) +
                        " sender-port-ok=" + yes(from.sin_port == mine.sin_port));
  r.sys("recvfrom empty DONTWAIT", SYS_recvfrom, f.ufd, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
  r.sys("sendto no address", SYS_sendto, u, "x", 1, 0, nullptr, 0);
  r.sys("connect", SYS_connect, u, &to, sizeof to);
  mmsghdr msgs[2] = {};
  iovec iov[2] = {{const_cast<char*>("one"), 3}, {const_cast<char*>("three"), 5}};
  msgs[0].msg_hdr.msg_iov = &iov[0];
  msgs[0].msg_hdr.msg_iovlen = 1;
  msgs[1].msg_hdr.msg_iov = &iov[1];
  msgs[1].msg_hdr.msg_iovlen = 1;
  r.sys("sendmmsg 2", SYS_sendmmsg, u, msgs, 2, 0);
  r.log("sendmmsg lengths", fmt("%u %u", msgs[0].msg_len, msgs[1].msg_len));
  char b1[8] = {}, b2[8] = {};
  iovec riov[2] = {{b1, sizeof b1}, {b2, sizeof b2}};
  mmsghdr rmsgs[2] = {};
  rmsgs[0].msg_hdr.msg_iov = &riov[0];
  rmsgs[0].msg_hdr.msg_iovlen = 1;
  rmsgs[1].msg_hdr.msg_iov = &riov[1];
  rmsgs[1].msg_hdr.msg_iovlen = 1;
  r.sys("recvmmsg 2", SYS_recvmmsg, f.ufd, rmsgs, 2, 0, nullptr);
  r.log("recvmmsg", contents(b1, rmsgs[0].msg_len) + contents(b2, rmsgs[1].msg_len));
  r.sys("send (connected) 'left' (stays queued)", SYS_sendto, u, "left", 4, 0, nullptr, 0);
  pollfd p{static_cast<int>(f.ufd), POLLIN, 0};
  r.sys("poll for it", SYS_poll, &p, 1, 5000);
  r.sys("sendto oversized datagram", SYS_sendto, u, g.region, 70000, 0, nullptr, 0);
}

// ---- cases: memory ------------------------------------------------------------

void memory_anonymous(Run& r) {
  char* p = region(8);
  const long m =
      r.call(SYS_mmap, p, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  r.log("mmap fixed anon 4 pages", region_off(m));
  if (m == reinterpret_cast<long>(p)) std::memset(p, 'x', 4 * kPage);
  r.sys("mprotect page 8 read-only", SYS_mprotect, p, kPage, PROT_READ);
  r.sys("read into read-only memory", SYS_read, r.fx.fd_a, p, 4);
  unsigned char vec[4] = {};
  r.sys("mincore", SYS_mincore, p, 4 * kPage, vec);
  r.log("mincore resident", fmt("%d%d%d%d", vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1));
  r.sys("madvise DONTNEED page 9", SYS_madvise, p + kPage, kPage, MADV_DONTNEED);
  r.log("page 9 after DONTNEED", peek(p + kPage, 4));
  r.sys("mlock page 10", SYS_mlock, p + 2 * kPage, kPage);
  r.sys("munlock page 10", SYS_munlock, p + 2 * kPage, kPage);
  r.sys("mlock2 ONFAULT page 10", SYS_mlock2, p + 2 * kPage, kPage, MLOCK_ONFAULT);
  r.sys("munlock again", SYS_munlock, p + 2 * kPage, kPage);
  r.log("mremap pages 10-11 to 20", region_off(r.call(SYS_mremap, p + 2 * kPage, 2 * kPage, 2 * kPage,
                                                      MREMAP_MAYMOVE | MREMAP_FIXED, region(20))));
  r.log("moved content", peek(region(20), 4));
  r.log("mremap grow in place", region_off(r.call(SYS_mremap, region(20), 2 * kPage, 3 * kPage, 0)));
  r.sys("msync anonymous", SYS_msync, p, kPage, MS_SYNC);
  r.sys("munmap page 8", SYS_munmap, p, kPage);
  r.sys("munmap unaligned", SYS_munmap, p + kPage + 1, kPage);
  r.sys("munmap nothing mapped", SYS_munmap, region(40), kPage);
  r.log("mmap neither private nor shared",
        region_off(r.call(SYS_mmap, nullptr, kPage, PROT_READ, MAP_ANONYMOUS, -1, 0)));
  r.log("mmap length 0",
        region_off(r.call(SYS_mmap, nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  r.log("mmap FIXED_NOREPLACE over a mapping",
        region_off(r.call(SYS_mmap, region(0), kPage, PROT_READ,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)));
  const long any =
      r.call(SYS_mmap, nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  r.log("mmap anywhere", any < 0 && any >= -4095 ? ret_str(any) : "page-aligned=" + yes(any % kPage == 0));
  if (any > 0) r.sys("munmap it", SYS_munmap, any, kPage);
  r.sys("mprotect bad prot", SYS_mprotect, region(0), kPage, 0x1000);
  r.sys("mprotect unmapped", SYS_mprotect, region(40), kPage, PROT_READ | PROT_WRITE);
  r.sys("madvise bad advice", SYS_madvise, region(0), kPage, 12345);
  r.sys("mincore unaligned", SYS_mincore, region(0) + 1, kPage, vec);
  r.sys("mincore unmapped", SYS_mincore, region(40), kPage, vec);
  r.log("mremap to size 0", region_off(r.call(SYS_mremap, region(0), kPage, 0, 0)));
  r.sys("mlock2 bad flags", SYS_mlock2, region(0), kPage, 0x100);
  r.sys("write from PROT_NONE memory", SYS_write, r.fx.pipe_w, region(50), 4);
  r.sys("madvise DONTNEED page 1 (fixture data)", SYS_madvise, region(1), kPage, MADV_DONTNEED);
}

void memory_files(Run& r) {
  Fixture& f = r.fx;
  const long m = r.sys("memfd_create", SYS_memfd_create, "diff", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  r.sys("ftruncate memfd 2 pages", SYS_ftruncate, m, 2 * kPage);
  r.sys("pwrite64 memfd", SYS_pwrite64, m, "memfd!", 6, 0);
  char* p = region(30);
  const long mapped = r.call(SYS_mmap, p, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m, 0);
  r.log("mmap memfd shared", region_off(mapped));
  r.log("mapped data", peek(p, 6));
  if (mapped == reinterpret_cast<long>(p)) std::memcpy(p + kPage, "through memory", 14);
  char buf[32] = {};
  long n = r.sys("pread64 memfd page 1", SYS_pread64, m, buf, 14, kPage);
  r.log("pread64 data", contents(buf, n));
  r.sys("msync MS_SYNC", SYS_msync, p, 2 * kPage, MS_SYNC);
  r.sys("msync bad flags", SYS_msync, p, kPage, MS_SYNC | MS_ASYNC);
  r.sys("F_ADD_SEALS SEAL_SHRINK", SYS_fcntl, m, F_ADD_SEALS, F_SEAL_SHRINK);
  r.sys("F_GET_SEALS", SYS_fcntl, m, F_GET_SEALS);
  r.sys("ftruncate sealed memfd smaller", SYS_ftruncate, m, kPage);
  r.sys("F_ADD_SEALS on a file", SYS_fcntl, f.fd_a, F_ADD_SEALS, F_SEAL_SHRINK);
  r.log("mmap a.txt private read-only",
        region_off(r.call(SYS_mmap, region(40), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, f.fd_a, 0)));
  r.log("mapped a.txt", peek(region(40), 10));
  r.log("mmap a.txt shared writable via O_RDONLY fd",
        region_off(
            r.call(SYS_mmap, region(42), kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f.fd_b, 0)));
  r.log("mmap file without fd",
        region_off(r.call(SYS_mmap, region(42), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, -1, 0)));
  r.log("mmap a pipe",
        region_off(r.call(SYS_mmap, region(42), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, f.pipe_r, 0)));
  r.log("mmap unaligned offset",
        region_off(r.call(SYS_mmap, region(42), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, f.fd_a, 1)));
  r.sys("memfd_create bad flags", SYS_memfd_create, "x", 0x1000);
  const std::string long_name(300, 'm');
  r.sys("memfd_create long name", SYS_memfd_create, long_name.c_str(), 0);
}

void memory_misc(Run& r) {
  const long brk = r.call(SYS_brk, 0);
  const long now = sc(SYS_brk, 0);
  r.log("brk(0) is the current break", yes(brk == now));
  const long low = r.call(SYS_brk, 1);
  r.log("brk too low returns the current break", yes(low == sc(SYS_brk, 0)));
  char buf[16] = {};
  iovec local{buf, sizeof buf}, remote{region(0) + 100, sizeof buf};
  r.sys("process_vm_readv self", SYS_process_vm_readv, g.pid, &local, 1, &remote, 1, 0);
  r.log("read data", quote(buf, sizeof buf));
  iovec src{const_cast<char*>("written"), 7}, dst{region(2), 7};
  r.sys("process_vm_writev self", SYS_process_vm_writev, g.pid, &src, 1, &dst, 1, 0);
  r.sys("process_vm_readv bad flags", SYS_process_vm_readv, g.pid, &local, 1, &remote, 1, 1);
  iovec bad{region(50), sizeof buf};
  r.sys("process_vm_readv PROT_NONE", SYS_process_vm_readv, g.pid, &local, 1, &bad, 1, 0);
  r.sys("membarrier QUERY", SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  r.sys("membarrier bad command", SYS_membarrier, 1 << 20, 0, 0);
  r.sys("mlockall bad flags", SYS_mlockall, 0);
  r.sys("munlockall", SYS_munlockall);
}

// Many calls through the same executor: nothing may go wrong intermittently.
void burst(Run& r) {
  const long count = flexsc::test::scaled(400);
  uint64_t h = 0;
  long errors = 0;
  for (long i = 0; i < count; ++i) {
    unsigned char buf[8];
    const long n = r.call(SYS_pread64, r.fx.fd_b, buf, sizeof buf, (i * 37) % 8000);
    if (n != 8) ++errors;
    h = fnv(buf, sizeof buf, h ^ static_cast<uint64_t>(n));
  }
  r.log("pread64 burst", fmt("count=%ld short=%ld fnv=%016lx", count, errors, h));
}

// ---- cases: time -----------------------------------------------------------

void clocks(Run& r) {
  // Readings go between two direct readings of the same clock.
  for (const auto& [id, name] : {std::pair{CLOCK_REALTIME, "REALTIME"},
                                 {CLOCK_MONOTONIC, "MONOTONIC"},
                                 {CLOCK_BOOTTIME, "BOOTTIME"},
                                 {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME"},
                                 {CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME"}}) {
    timespec a{}, v{}, b{};
    sc(SYS_clock_gettime, id, &a);
    const long rc = r.call(SYS_clock_gettime, id, &v);
    sc(SYS_clock_gettime, id, &b);
    r.log(std::string("clock_gettime ") + name,
          ret_str(rc) + " between direct readings=" + yes(before_or_equal(a, v) && before_or_equal(v, b)));
  }
  timespec res{};
  r.sys("clock_getres MONOTONIC", SYS_clock_getres, CLOCK_MONOTONIC, &res);
  r.log("resolution", fmt("%ld.%09ld", res.tv_sec, res.tv_nsec));
  r.sys("clock_getres THREAD_CPUTIME", SYS_clock_getres, CLOCK_THREAD_CPUTIME_ID, &res);
  r.log("resolution", fmt("%ld.%09ld", res.tv_sec, res.tv_nsec));
  r.sys("clock_gettime bad clock", SYS_clock_gettime, 12345, &res);
  r.sys("clock_gettime bad pointer", SYS_clock_gettime, CLOCK_MONOTONIC, kBadPtr);
  r.sys("clock_settime MONOTONIC (not settable)", SYS_clock_settime, CLOCK_MONOTONIC, &res);
  timeval tv{}, ta{}, tb{};
  sc(SYS_gettimeofday, &ta, nullptr);
  long rc = r.call(SYS_gettimeofday, &tv, nullptr);
  sc(SYS_gettimeofday, &tb, nullptr);
  auto us = [](const timeval& t) { return t.tv_sec * 1000000L + t.tv_usec; };
  r.log("gettimeofday", ret_str(rc) + " between=" + yes(us(ta) <= us(tv) && us(tv) <= us(tb)));
  const long t0 = sc(SYS_time, nullptr);
  long tt = 0;
  rc = r.call(SYS_time, &tt);
  const long t1 = sc(SYS_time, nullptr);
  r.log("time", fmt("returned-matches-stored=%d between=%d", rc == tt, t0 <= rc && rc <= t1));
  tms ta_tms{}, v_tms{};
  const long k0 = sc(SYS_times, &ta_tms);
  const long k = r.call(SYS_times, &v_tms);
  const long k1 = sc(SYS_times, nullptr);
  r.log("times",
        fmt("ticks between=%d utime monotonic=%d", k0 <= k && k <= k1, ta_tms.tms_utime <= v_tms.tms_utime));
  const timespec short_sleep{0, 1000}, bad_nsec{0, 2000000000};
  r.sys("nanosleep 1 us", SYS_nanosleep, &short_sleep, nullptr);
  r.sys("nanosleep bad nsec", SYS_nanosleep, &bad_nsec, nullptr);
  r.sys("nanosleep bad pointer", SYS_nanosleep, kBadPtr, nullptr);
  r.sys("clock_nanosleep MONOTONIC 1 us", SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &short_sleep, nullptr);
  const timespec epoch{0, 0};
  r.sys("clock_nanosleep absolute in the past", SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &epoch,
        nullptr);
  r.sys("clock_nanosleep THREAD_CPUTIME", SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &short_sleep,
        nullptr);
  r.sys("clock_nanosleep bad clock", SYS_clock_nanosleep, 12345, 0, &short_sleep, nullptr);
  rusage ru_a{}, ru{}, ru_b{};
  for (const auto& [who, name] : {std::pair{RUSAGE_SELF, "SELF"}, {RUSAGE_THREAD, "THREAD"}}) {
    sc(SYS_getrusage, who, &ru_a);
    rc = r.call(SYS_getrusage, who, &ru);
    sc(SYS_getrusage, who, &ru_b);
    auto cpu = [](const rusage& u) {
      return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000L + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
    };
    r.log(std::string("getrusage ") + name,
          ret_str(rc) + " cpu between direct readings=" + yes(cpu(ru_a) <= cpu(ru) && cpu(ru) <= cpu(ru_b)));
  }
  r.sys("getrusage CHILDREN", SYS_getrusage, RUSAGE_CHILDREN, &ru);
  r.sys("getrusage bad who", SYS_getrusage, 5, &ru);
  itimerval itv{};
  r.sys("getitimer REAL", SYS_getitimer, ITIMER_REAL, &itv);
  r.log("itimer", fmt("%ld.%06ld", itv.it_value.tv_sec, itv.it_value.tv_usec));
  r.sys("getitimer bad which", SYS_getitimer, 9, &itv);
  r.sys("alarm 0 (none pending)", SYS_alarm, 0);
}

// ---- cases: processes and identity -------------------------------------------

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

// ---- cases: error paths and numbers the table does not know -----------------

void error_paths(Run& r) {
  Fixture& f = r.fx;
  char buf[16];
  r.sys("syscall 1000", 1000);
  r.sys("syscall -1", -1);
  r.sys("syscall 0x7fffffff", 0x7fffffff);
  r.sys("syscall 400 (a gap in the table)", 400);
  r.sys("tuxcall (not implemented)", SYS_tuxcall);
  r.sys("getppid with high bits set in the number", (1L << 32) | SYS_getppid);
  r.sys("x32 getppid", 0x40000000L | SYS_getppid);
  constexpr long kFchmodat2 = 452, kCachestat = 451;  // newer than the headers the table came from
  r.sys("fchmodat2 (unknown to the table)", kFchmodat2, AT_FDCWD, "a.txt", 0640, 0);
  r.sys("fchmodat2 bad flags", kFchmodat2, AT_FDCWD, "a.txt", 0640, 0x1);
  struct {
    uint64_t off, len;
  } range{0, 0};
  uint64_t cs[5] = {};
  r.sys("cachestat (unknown to the table)", kCachestat, f.fd_a, &range, cs, 0);
  r.log("cachestat", fmt("cached=%lu dirty+writeback=%lu", cs[0], cs[1] + cs[2]));
  r.sys("read bad fd", SYS_read, -1, buf, 1);
  r.sys("write fd 99999", SYS_write, 99999, buf, 1);
  r.sys("read into NULL page", SYS_read, f.fd_a, kBadPtr, 4);
  r.sys("write from a kernel address", SYS_write, f.pipe_w, 0xffff800000000000L, 4);
  r.sys("openat missing", SYS_openat, AT_FDCWD, "missing", O_RDONLY);
  r.sys("openat O_EXCL existing", SYS_openat, AT_FDCWD, "a.txt", O_RDWR | O_CREAT | O_EXCL, 0600);
  r.sys("openat relative to a file fd", SYS_openat, f.fd_a, "x", O_RDONLY);
  r.sys("openat bad dirfd", SYS_openat, -5, "x", O_RDONLY);
  r.sys("openat bad path pointer", SYS_openat, AT_FDCWD, kBadPtr, O_RDONLY);
  r.sys("openat O_TMPFILE without write", SYS_openat, AT_FDCWD, ".", O_TMPFILE | O_RDONLY, 0600);
  r.sys("openat O_CREAT|O_DIRECTORY", SYS_openat, AT_FDCWD, "newdir", O_CREAT | O_DIRECTORY | O_RDWR, 0600);
  r.sys("openat write a directory", SYS_openat, AT_FDCWD, "sub", O_WRONLY);
  const std::string long_path(5000, 'p');
  r.sys("openat path too long", SYS_openat, AT_FDCWD, long_path.c_str(), O_RDONLY);
  r.sys("lseek bad whence", SYS_lseek, f.fd_a, 0, 99);
  r.sys("lseek negative", SYS_lseek, f.fd_a, -10, SEEK_SET);
  r.sys("mkdir bad path pointer", SYS_mkdir, kBadPtr, 0755);
  r.sys("ioctl unknown request", SYS_ioctl, f.fd_a, 0xdeadbeef, 0);
  r.sys("writev negative count", SYS_writev, f.fd_a, buf, -1);
  r.sys("readv bad iovec pointer", SYS_readv, f.fd_a, kBadPtr, 1);
  r.sys("fcntl bad fd", SYS_fcntl, -1, F_GETFD);
  r.sys("lseek after the errors", SYS_lseek, f.fd_a, 0, SEEK_CUR);
}

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

// ---- cases: side effects that belong to the calling thread -------------------

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
  r.sys("prctl SET_SECCOMP filter, option with high bits", SYS_prctl, PR_SET_SECCOMP + kHigh, SECCOMP_MODE_FILTER,
        &prog, 0, 0);
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

// ---- the runner ----------------------------------------------------------------

// A deadline for each run: a run that hangs ends the process with its name
// instead of a ctest timeout that names nothing.  One thread for the whole
// suite, unlike watchdog.h's thread per step: runs fork, and a thread just
// starting may hold a sanitizer allocator lock the child then waits for.
// It is born with every signal blocked: the cases send signals to the
// process, which must reach only the caller.
class RunWatchdog {
 public:
  void start() {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!stop_) {
        if (armed_ && std::chrono::steady_clock::now() > deadline_) {
          std::fprintf(stderr, "test_differential: %s did not finish within %d s: hung\n", what_.c_str(),
                       kSeconds);
          std::abort();
        }
        cv_.wait_for(lock, std::chrono::milliseconds(250));
      }
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void arm(std::string what) {
    std::lock_guard lock(mutex_);
    what_ = std::move(what);
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(kSeconds);
    armed_ = true;
  }
  void disarm() {
    std::lock_guard lock(mutex_);
    armed_ = false;
  }

 private:
  static constexpr int kSeconds = 60;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false, stop_ = false;
  std::thread thread_;
};
RunWatchdog g_watchdog;

struct Case {
  const char* name;
  void (*fn)(Run&);
  enum Kind {
    kRemote,    // makes calls the runtime runs on a syscall thread
    kLocal,     // makes only calls the runtime runs on the caller
    kIsolated,  // changes the calling thread for good: runs in a forked child
  } kind = kRemote;
};

const Case kCases[] = {
    {"file_read_write", file_read_write},
    {"file_stat", file_stat},
    {"file_size_and_sync", file_size_and_sync},
    {"fd_table", fd_table},
    {"file_copy", file_copy},
    {"dir_entries", dir_entries},
    {"dir_listing", dir_listing},
    {"dir_cwd", dir_cwd},
    {"file_attributes", file_attributes},
    {"filesystem_info", filesystem_info},
    {"pipes", pipes},
    {"polling", polling},
    {"event_descriptors", event_descriptors},
    {"timer_descriptors", timer_descriptors},
    {"inotify", inotify},
    {"unix_sockets", unix_sockets},
    {"tcp_loopback", tcp_loopback},
    {"udp_loopback", udp_loopback},
    {"memory_anonymous", memory_anonymous},
    {"memory_files", memory_files},
    {"memory_misc", memory_misc},
    {"burst", burst},
    {"clocks", clocks},
    {"identity", identity},
    {"scheduling_and_limits", scheduling_and_limits},
    {"signals", signals},
    {"children", children},
    {"randomness", randomness},
    {"futexes", futexes},
    {"error_paths", error_paths},
    {"caller_thread", caller_thread, Case::kLocal},
    {"sigpipe_to_caller", sigpipe_to_caller},
    {"thread_cpu_timer", thread_cpu_timer},
    {"personality_of_caller", personality_of_caller, Case::kIsolated},
    {"close_range_unshare", close_range_unshare, Case::kIsolated},
    {"seccomp_of_caller", seccomp_of_caller, Case::kIsolated},
};

constexpr const char* kFixtureError = "fixture error: ";

struct Result {
  std::vector<std::string> lines;
  long calls = 0;
  std::string backend;  // of a forked child
};

Result run_here(const Case& c, const Executor& x) {
  Result res;
  g_api_errors.clear();
  if (x.batch) {
    if (const int rc = flexsc_ctx_create(1, &g_batch_ctx); rc < 0) {
      res.lines.push_back(kFixtureError + std::string("flexsc_ctx_create ") + ret_str(rc));
      return res;
    }
  }
  Fixture fx;
  try {
    fx.setup();
    Run run(x.fn, fx);
    c.fn(run);
    res.lines = std::move(run.lines);
    res.calls = run.calls;
    res.lines.push_back("---- resulting state");
    fx.snapshot(res.lines);
  } catch (const std::exception& e) {
    res.lines.push_back(kFixtureError + std::string(e.what()));
  }
  if (const std::string problems = fx.teardown(); !problems.empty())
    res.lines.push_back(kFixtureError + std::string("teardown:") + problems);
  for (const std::string& e : g_api_errors) res.lines.push_back("batch API: " + e);
  if (g_batch_ctx) {
    if (const int rc = flexsc_ctx_destroy(g_batch_ctx); rc < 0)
      res.lines.push_back("flexsc_ctx_destroy " + ret_str(rc));
    g_batch_ctx = nullptr;
  }
  return res;
}

// The case in a forked child, which sends its transcript back.
Result run_in_child(const Case& c, const Executor& x) {
  Result res;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    res.lines.push_back(kFixtureError + std::string("pipe2"));
    return res;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    sc(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // dies with a parent the watchdog ends
    close(p[0]);
    g.baseline_fds.insert(p[1]);  // the teardown closes everything else
    const Result child = run_here(c, x);
    std::string text = std::string(flexsc_backend()) + "\n";
    for (const std::string& l : child.lines) text += l + "\n";
    for (size_t off = 0; off < text.size();) {
      const long n = sc(SYS_write, p[1], text.data() + off, text.size() - off);
      if (n <= 0) _exit(2);
      off += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(p[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    res.lines.push_back(kFixtureError + fmt("child failed, status %#x", status));
    return res;
  }
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (start == 0)
      res.backend = text.substr(0, nl);
    else
      res.lines.push_back(text.substr(start, nl - start));
  }
  return res;
}

Result run_case(const Case& c, const Executor& x) {
  g_watchdog.arm(std::string("case ") + c.name + " through " + x.name);
  Result res = c.kind == Case::kIsolated ? run_in_child(c, x) : run_here(c, x);
  g_watchdog.disarm();
  return res;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += "    " + l + "\n";
  return s;
}

bool has_fixture_error(const std::vector<std::string>& lines) {
  return std::any_of(lines.begin(), lines.end(),
                     [](const std::string& l) { return l.rfind(kFixtureError, 0) == 0; });
}

void expect_same(const std::vector<std::string>& want, const std::vector<std::string>& got,
                 const char* executor) {
  if (want == got) return;
  std::string diff;
  int shown = 0;
  for (size_t i = 0; i < std::max(want.size(), got.size()) && shown < 25; ++i) {
    const std::string* a = i < want.size() ? &want[i] : nullptr;
    const std::string* b = i < got.size() ? &got[i] : nullptr;
    if (a && b && *a == *b) continue;
    ++shown;
    diff += fmt("  line %zu\n    sync:  %s\n    %-6s %s\n", i, a ? a->c_str() : "(none)", executor,
                b ? b->c_str() : "(none)");
  }
  ADD_FAILURE() << "transcripts differ (" << want.size() << " lines from the synchronous run, " << got.size()
                << " from " << executor << "):\n"
                << diff << "synchronous transcript:\n"
                << join(want);
}

void PrintTo(const Case* c, std::ostream* os) {
  *os << c->name;
}
void PrintTo(const Executor* x, std::ostream* os) {
  *os << x->name;
}

class Differential : public ::testing::TestWithParam<std::tuple<const Case*, const Executor*>> {};

TEST_P(Differential, SameAsSynchronous) {
  const Case& c = *std::get<0>(GetParam());
  const Executor& x = *std::get<1>(GetParam());
  const Result want = run_case(c, kSync);
  ASSERT_FALSE(has_fixture_error(want.lines)) << join(want.lines);
  ASSERT_GT(want.lines.size(), 10u);
  if (std::getenv("FLEXSC_DIFF_VERBOSE") && x.fn == exec_sync) std::printf("%s", join(want.lines).c_str());
  const bool counted = c.kind != Case::kIsolated && x.fn != exec_sync;
  flexsc_stats before{}, after{};
  if (counted) {
    ASSERT_EQ(flexsc_get_stats(&before), 0);
  }
  const Result got = run_case(c, x);
  if (counted) {
    ASSERT_EQ(flexsc_get_stats(&after), 0);
  }
  if (c.kind == Case::kIsolated && x.fn != exec_sync && got.backend == "sync")
    GTEST_SKIP() << "a forked child may not start syscall threads in this build: its calls are synchronous";
  ASSERT_FALSE(has_fixture_error(got.lines)) << join(got.lines);
  expect_same(want.lines, got.lines, x.name);
  if (counted) {
    // Every call went through the runtime and was counted once, and the
    // remote ones really left the caller (for syscall threads, or io_uring).
    // In single-core mode the waiter runs remote entries itself, which the
    // public stats do not count.
    const uint64_t remote =
        after.remote_calls - before.remote_calls + (after.uring_calls - before.uring_calls);
    const uint64_t handled =
        remote + (after.local_calls - before.local_calls) + (after.unknown_calls - before.unknown_calls);
    const uint64_t calls = static_cast<uint64_t>(got.calls);
    if (g.single_core) {
      EXPECT_LE(handled, calls);
    } else {
      EXPECT_EQ(handled, calls) << "calls made through " << x.name << " vs calls the runtime counted";
      if (c.kind == Case::kLocal)
        EXPECT_EQ(remote, 0u) << "calls that depend on the caller ran on syscall threads";
      else
        EXPECT_GT(remote, 0u) << "no call ran on a syscall thread: this case compared nothing";
      if (x.batch) {
        EXPECT_EQ(after.nops - before.nops, calls) << "one NOP travelled with each call";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Differential,
                         ::testing::Combine(::testing::ValuesIn([] {
                                              std::vector<const Case*> v;
                                              for (const Case& c : kCases) v.push_back(&c);
                                              return v;
                                            }()),
                                            ::testing::ValuesIn([] {
                                              std::vector<const Executor*> v;
                                              for (const Executor& x : kExecutors) v.push_back(&x);
                                              return v;
                                            }())),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)->name) + "__" +
                                  std::get<1>(info.param)->name;
                         });

// ---- documented limits ----------------------------------------------------------
//
// Two things name the calling thread in a way flexsc cannot see when a call
// is posted (docs/limits.md): a signalfd (reads dequeue the reader's own
// thread-directed signals) and paths under /proc/thread-self.  Remote calls
// on them answer for the syscall thread.  These tests pin the documented
// behaviour down, so lifting a limit shows here and docs/limits.md gets updated.

TEST(KnownLimits, SignalfdReadAnswersForTheSyscallThread) {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigset_t old;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
  const uint64_t bit = sigbit(SIGUSR1);
  const long sfd = sc(SYS_signalfd4, -1, &bit, 8, SFD_NONBLOCK | SFD_CLOEXEC);
  ASSERT_GE(sfd, 0);
  ASSERT_EQ(sc(SYS_tgkill, g.pid, sc(SYS_gettid), SIGUSR1), 0);
  signalfd_siginfo ssi{};
  const long got = flexsc_syscall(SYS_read, sfd, reinterpret_cast<long>(&ssi), sizeof ssi, 0, 0, 0);
  if (std::string(flexsc_backend()) == "uring") {
    // Without SQPOLL, io_uring tries the read inside the caller's own
    // io_uring_enter: the kernel answers for the caller, as the syscall would.
    EXPECT_EQ(got, static_cast<long>(sizeof ssi)) << "uring reads a signalfd in the caller (docs/limits.md)";
  } else {
    EXPECT_EQ(got, -EAGAIN)
        << "a thread-directed signal read through flexsc: the documented limit is gone, update docs/limits.md";
    EXPECT_EQ(sc(SYS_read, sfd, &ssi, sizeof ssi), static_cast<long>(sizeof ssi)) << "still pending on the caller";
  }
  EXPECT_EQ(ssi.ssi_signo, static_cast<uint32_t>(SIGUSR1));
  sc(SYS_close, sfd);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST(KnownLimits, ProcThreadSelfNamesTheSyscallThread) {
  char buf[64] = {};
  const long fd = flexsc_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/thread-self/comm"),
                                 O_RDONLY | O_CLOEXEC, 0, 0, 0);
  ASSERT_GE(fd, 0);
  const long n = sc(SYS_read, fd, buf, sizeof buf - 1);
  sc(SYS_close, fd);
  ASSERT_GT(n, 0);
  // A syscall thread (the kernel shim's serving threads are syscall threads
  // too), or one of io_uring's kernel workers (iou-wrk, iou-sqp).
  const std::string name(buf, static_cast<size_t>(n));
  EXPECT_TRUE(name.rfind("flexsc-sys/", 0) == 0 || name.rfind("iou-", 0) == 0)
      << name << ": /proc/thread-self through flexsc: the documented limit is gone, update docs/limits.md";
}

// ---- the runtime's life cycle and the process-wide state ---------------------

class FlexscEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const int rc = flexsc_init(nullptr);
    ASSERT_TRUE(rc == 0 || rc == -EALREADY) << "flexsc_init: " << ret_str(rc);
    // Start everything the runtime starts lazily before the descriptor
    // baseline.  Results are the cases' business: a wrong backend must
    // fail there, by name.
    flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
    flexsc_ctx* ctx = nullptr;
    ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
    g_batch_ctx = ctx;
    exec_batch(SYS_getppid, 0, 0, 0, 0, 0, 0);
    g_api_errors.clear();
    ASSERT_EQ(flexsc_ctx_destroy(ctx), 0);
    g_batch_ctx = nullptr;
    std::printf("flexsc backend: %s\n", flexsc_backend());
    const char* cores = std::getenv("FLEXSC_SYSCALL_CORES");
    g.single_core = (cores && std::strcmp(cores, "none") == 0) || sysconf(_SC_NPROCESSORS_ONLN) < 2;

    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/flexsc-diff-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    g.root = tmpl;
    g.dir = g.root + "/w";
    void* mem =
        mmap(nullptr, kRegionPages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    g.region = static_cast<char*>(mem);
    g.pid = getpid();
    ASSERT_EQ(sc(SYS_gettid), g.pid) << "the cases run on the main thread";
    g.cwd_fd = static_cast<int>(sc(SYS_openat, AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_GE(g.cwd_fd, 0);
    sc(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &g.sigmask, 8);
    g.umask = sc(SYS_umask, 022);
    sc(SYS_umask, g.umask);
    g.personality = sc(SYS_personality, 0xffffffffL);
    g.priority = sc(SYS_getpriority, PRIO_PROCESS, 0);
    for (size_t i = 0; i < std::size(kObservedSignals); ++i)
      sc(SYS_rt_sigaction, kObservedSignals[i], nullptr, &g.actions[i], 8);
    for (size_t i = 0; i < std::size(kObservedLimits); ++i)
      sc(SYS_prlimit64, 0, kObservedLimits[i], nullptr, &g.limits[i]);
    g.affinity_len = sc(SYS_sched_getaffinity, 0, sizeof g.affinity, g.affinity);
    g_watchdog.start();
    for (int fd : open_fds()) g.baseline_fds.insert(fd);
    g.fd_base = (*g.baseline_fds.rbegin() / 100 + 1) * 100;
    ASSERT_LT(g.fd_base + 51, FD_SETSIZE) << "select needs a closed descriptor below FD_SETSIZE";
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    ASSERT_GT(static_cast<long>(nofile.rlim_cur), g.fd_base + 700)
        << "cases use descriptors up to fd_base + 700";
  }

  void TearDown() override {
    g_watchdog.stop();
    flexsc_shutdown();
    if (!g.root.empty()) {
      rm_rf(g.root);
      if (g.region) munmap(g.region, kRegionPages * kPage);
    }
  }
};

[[maybe_unused]] const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new FlexscEnvironment);

}  // namespace
