// What the runtime's syscall threads are doing, seen from /proc: lets a
// test wait until its blocking calls really sit in the kernel before it
// goes on, instead of sleeping and hoping.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "api.h"
#include "test_util.h"

namespace flexsc::test {

// Ids of this process's threads whose name starts with `prefix`
// ("flexsc-sys/", io_uring's "iou-sqp-").
inline std::vector<int> threads_named(const std::string& prefix) {
  std::vector<int> tids;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return tids;
  while (dirent* d = readdir(dir)) {
    if (d->d_name[0] == '.') continue;
    std::string comm;
    std::ifstream(std::string("/proc/self/task/") + d->d_name + "/comm") >> comm;
    if (comm.rfind(prefix, 0) == 0) tids.push_back(std::atoi(d->d_name));
  }
  closedir(dir);
  return tids;
}

// Number of threads named flexsc-sys/N now inside syscall `nr` (any: -1).
// The kernel shim's serving threads sit in its ioctl as far as /proc can
// tell; the backend says what they run.
inline int syscall_threads_in(long nr) {
  if (test_backend() == "shim") {
    if (const int n = flexsc::detail::backend_threads_in_call(nr); n >= 0) return n;
  }
  int n = 0;
  for (int tid : threads_named("flexsc-sys/")) {
    std::string sys;
    std::ifstream("/proc/self/task/" + std::to_string(tid) + "/syscall") >>
        sys;  // "<nr> <args...>", or "running"
    if (nr == -1 || sys == std::to_string(nr)) ++n;
  }
  return n;
}

// Whether thread `tid` of this process is now inside syscall `nr`.  A
// caller waiting for an io_uring backend's ring sits in io_uring_enter.
inline bool thread_in_syscall(long tid, long nr) {
  std::string sys;
  std::ifstream("/proc/self/task/" + std::to_string(tid) + "/syscall") >> sys;
  return sys == std::to_string(nr);
}

// Polls `ready` until it holds or `limit` passes.  Returns whether it held.
inline bool eventually(const std::function<bool()>& ready,
                       std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Something a call blocks on until the test writes to it, for tests about
// syscall threads blocked in the kernel.  With the thread backend it is a
// pipe and read(2), as these tests have always used; the io_uring backends
// would run that read in a ring, with no syscall thread in it, so there it
// is a Unix socket pair and recvfrom(2) with a buffer for the source
// address, which io_uring cannot carry: a syscall thread runs it (in the
// blocking class, as read).  Either way the call consumes what was written
// and returns its length; syscall_threads_in(nr) finds it blocked.
class BlockingChannel {
 public:
  explicit BlockingChannel(bool use_socket) {
    int fds[2];
    if (use_socket ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0
                   : pipe2(fds, O_CLOEXEC) == 0)
      r = fds[0], w = fds[1];
    nr = use_socket ? SYS_recvfrom : SYS_read;
  }
  // The kind for the backend under test.
  BlockingChannel() : BlockingChannel(uring_backend()) {}
  ~BlockingChannel() {
    close(r);
    close(w);
  }
  BlockingChannel(const BlockingChannel&) = delete;
  BlockingChannel& operator=(const BlockingChannel&) = delete;

  // Closes the writing end: calls on the channel then return 0.
  void close_w() {
    if (w >= 0) close(w);
    w = -1;
  }

  // The call's arguments (the source address goes to this channel's own
  // buffer: calls pending together on it may share it, nobody reads it).
  void prep(flexsc_entry* e, void* buf, long len) {
    flexsc_prep(e, nr, r, reinterpret_cast<long>(buf), len, 0, nr == SYS_recvfrom ? addr() : 0,
                nr == SYS_recvfrom ? addr_len() : 0);
  }
  // The call through flexsc_syscall.
  long call(void* buf, long len) {
    return flexsc_syscall(nr, r, reinterpret_cast<long>(buf), len, 0, nr == SYS_recvfrom ? addr() : 0,
                          nr == SYS_recvfrom ? addr_len() : 0);
  }

  int r = -1, w = -1;
  long nr = SYS_read;  // what syscall_threads_in() looks for

 private:
  long addr() {
    from_len_ = sizeof from_;
    return reinterpret_cast<long>(&from_);
  }
  long addr_len() { return reinterpret_cast<long>(&from_len_); }
  sockaddr_storage from_{};
  socklen_t from_len_ = sizeof from_;
};

}  // namespace flexsc::test
