// The fixture and what the cases share: formatting, the process-wide
// state, a fresh directory, descriptors and memory before each run, and
// the description of the state a run left.
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "differential.h"

namespace flexsc::test::diff {

// ---- formatting ------------------------------------------------------------

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

uint64_t fnv(const void* p, size_t n, uint64_t h) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

std::string yes(bool b) {
  return b ? "yes" : "no";
}

bool before_or_equal(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
}

namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
  return s;
}

}  // namespace

// ---- process-wide state, set up once -------------------------------------

Globals g;

namespace {

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

std::string read_file(const std::string& path) {
  std::string out;
  const long fd = sc(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (long n; (n = sc(SYS_read, fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  sc(SYS_close, fd);
  return out;
}

}  // namespace

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

namespace {

long must(long r, const char* what) {
  if (r < 0) throw std::runtime_error(std::string(what) + ": " + ret_str(r));
  return r;
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

}  // namespace

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

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

// ---- a case's view -----------------------------------------------------------

std::string region_off(long addr) {
  if (addr < 0 && addr >= -4095) return ret_str(addr);
  const long off = addr - reinterpret_cast<long>(g.region);
  return off >= 0 && off < kRegionPages * kPage ? fmt("R+%#lx", off) : "outside R";
}

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

}  // namespace flexsc::test::diff
