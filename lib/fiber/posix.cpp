// The fiber-aware POSIX-style calls: readiness waits for sockets and
// pollable descriptors, everything through flexsc_syscall (which posts and
// switches on a fiber).
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <flexsc/posix.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "base/libc_abi.h"
#include "readiness.h"
#include "scheduler.h"

using namespace flexsc::fiber::detail;
using flexsc::detail::libc_result;
using flexsc::detail::open_mode_arg;

namespace {

template <class... A>
long sys(long nr, A... a) {
  long r[6] = {(long)a...};
  return flexsc_syscall(nr, r[0], r[1], r[2], r[3], r[4], r[5]);
}

bool on_fiber() {
  return current_fiber() != nullptr;
}

FdKind kind_of(int fd) {
  FdKind k = fd_table().kind(fd);
  if (k != FdKind::Unknown) return k;
  struct stat st;
  if (sys(SYS_fstat, fd, &st) < 0) return FdKind::Unknown;  // the call itself reports it
  if (S_ISSOCK(st.st_mode)) {
    int type = 0;
    socklen_t len = sizeof type;
    if (sys(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return FdKind::Unknown;
    k = type == SOCK_STREAM ? FdKind::StreamSocket : FdKind::PacketSocket;
    int protocol = 0;
    len = sizeof protocol;
    if (k == FdKind::StreamSocket && sys(SYS_getsockopt, fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
        protocol == IPPROTO_TCP)
      k = FdKind::TcpSocket;
    // A socket with a receive or send timeout: the blocking call itself
    // keeps it (the kernel gives up after it; a readiness wait would not).
    for (int opt : {SO_RCVTIMEO, SO_SNDTIMEO}) {
      timeval tv{};
      len = sizeof tv;
      if (sys(SYS_getsockopt, fd, SOL_SOCKET, opt, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec))
        k = FdKind::Plain;
    }
  } else if (S_ISFIFO(st.st_mode)) {
    k = FdKind::Pipe;
  } else if (S_ISCHR(st.st_mode) || (st.st_mode & S_IFMT) == 0) {
    k = FdKind::Pollable;  // terminals, devices, anonymous inodes (eventfd, timerfd...)
  } else {
    k = FdKind::Plain;
  }
  fd_table().set_kind(fd, k);
  return k;
}

bool is_socket(FdKind k) {
  return k == FdKind::TcpSocket || k == FdKind::StreamSocket || k == FdKind::PacketSocket;
}
bool is_stream(FdKind k) {
  return k == FdKind::TcpSocket || k == FdKind::StreamSocket;
}

bool nonblocking(int fd) {
  int nb = fd_table().nonblocking(fd);
  if (nb < 0) {
    const long fl = sys(SYS_fcntl, fd, F_GETFL);
    if (fl < 0) return false;
    nb = (fl & O_NONBLOCK) != 0;
    fd_table().set_nonblocking(fd, nb);
  }
  return nb != 0;
}

// Parks the running fiber until fd is ready; false when fd cannot be
// watched (the caller then makes the call blocking, as it was asked).
bool wait_ready(int fd, Direction d, uint32_t seen) {
  Scheduler* s = current_scheduler();
  s->count_readiness_wait();
  return fd_table().wait(fd, d, s->readiness(), seen) == 0;
}

bool ready_now(int fd, short events) {
  struct pollfd p {
    fd, events, 0
  };
  return sys(SYS_poll, &p, 1, 0) != 0;  // ready, or an error the call will report
}

// The heart of the layer.  attempt(dontwait) makes the call, with
// MSG_DONTWAIT when dontwait (only when can_dontwait: socket transfers).
// The caller's own MSG_DONTWAIT (caller_dontwait) or O_NONBLOCK keeps
// EAGAIN its answer.  want: the bytes a plain receive asks for (0: not one,
// or flags that may stop it short); a receive that found its TCP socket
// drained last time waits for an event before trying (the try would only
// say EAGAIN).
template <class Attempt>
long call_waiting(int fd, Direction d, bool caller_dontwait, bool can_dontwait, Attempt attempt,
                  size_t want = 0) {
  if (!on_fiber() || caller_dontwait) return attempt(caller_dontwait);
  const FdKind k = kind_of(fd);
  if (k == FdKind::Plain || k == FdKind::Unknown) return attempt(false);
  Scheduler* s = current_scheduler();
  if (is_socket(k) && s->begin_socket_wait()) {
    // The backend waits for the socket itself.
    const long r = attempt(false);
    s->end_socket_wait();
    return r;
  }
  const bool tracks_drain = want && k == FdKind::TcpSocket;
  int64_t drained_at = tracks_drain && !nonblocking(fd) ? fd_table().drained(fd) : -1;
  for (;;) {
    uint32_t seen;
    if (drained_at >= 0) {
      seen = static_cast<uint32_t>(drained_at);  // nothing to read unless an event came since
      drained_at = -1;
    } else {
      seen = fd_table().events(fd, d);  // before the try: an event after it wakes us
      if (is_socket(k) && can_dontwait) {
        const long r = attempt(true);
        if (r != -EAGAIN || nonblocking(fd)) {
          if (tracks_drain) fd_table().set_drained(fd, r > 0 && static_cast<size_t>(r) < want ? seen : -1);
          return r;
        }
      } else if (nonblocking(fd) || ready_now(fd, d == Direction::In ? POLLIN : POLLOUT)) {
        return attempt(false);
      }
    }
    if (!wait_ready(fd, d, seen)) return attempt(false);
  }
}

// Sends all of [buf, buf+len) as a blocking send on a stream socket or
// write to a pipe would: partial sends continue after a readiness wait.
// send_some(offset, count, dontwait) sends part of it.
template <class SendSome>
long send_all(int fd, size_t len, bool caller_dontwait, SendSome send_some) {
  const FdKind k = on_fiber() && !caller_dontwait ? kind_of(fd) : FdKind::Unknown;
  // A pipe: at most PIPE_BUF at a time once poll says there is room, so
  // the write never blocks the thread it runs on (nor breaks atomicity:
  // a longer blocking write is not atomic either).
  const size_t chunk = k == FdKind::Pipe ? PIPE_BUF : len;
  if (!is_stream(k) && k != FdKind::Pipe)
    return call_waiting(fd, Direction::Out, caller_dontwait, true,
                        [&](bool dw) { return send_some(0, len, dw); });
  size_t done = 0;
  for (;;) {
    const long r = call_waiting(fd, Direction::Out, false, true,
                                [&](bool dw) { return send_some(done, std::min(chunk, len - done), dw); });
    if (r < 0) return done ? static_cast<long>(done) : r;
    done += static_cast<size_t>(r);
    if (done >= len || r == 0) return static_cast<long>(done);
  }
}

}  // namespace

extern "C" {

ssize_t flexsc_posix_read(int fd, void* buf, size_t count) {
  return libc_result(call_waiting(
      fd, Direction::In, false, true,
      [&](bool dontwait) {
        return dontwait ? sys(SYS_recvfrom, fd, buf, count, MSG_DONTWAIT, 0, 0)
                        : sys(SYS_read, fd, buf, count);
      },
      count));
}

ssize_t flexsc_posix_write(int fd, const void* buf, size_t count) {
  const char* p = static_cast<const char*>(buf);
  return libc_result(send_all(fd, count, false, [&](size_t off, size_t n, bool dontwait) {
    return dontwait ? sys(SYS_sendto, fd, p + off, n, MSG_DONTWAIT, 0, 0) : sys(SYS_write, fd, p + off, n);
  }));
}

ssize_t flexsc_posix_pread(int fd, void* buf, size_t count, off_t offset) {
  return libc_result(sys(SYS_pread64, fd, buf, count, offset));
}

ssize_t flexsc_posix_pwrite(int fd, const void* buf, size_t count, off_t offset) {
  return libc_result(sys(SYS_pwrite64, fd, buf, count, offset));
}

ssize_t flexsc_posix_recv(int fd, void* buf, size_t len, int flags) {
  return flexsc_posix_recvfrom(fd, buf, len, flags, nullptr, nullptr);
}

ssize_t flexsc_posix_recvfrom(int fd, void* buf, size_t len, int flags, struct sockaddr* from,
                              socklen_t* fromlen) {
  // Only a plain receive's short count says the queue is empty (MSG_PEEK,
  // MSG_OOB, MSG_ERRQUEUE... do not); MSG_WAITALL waits for all of len,
  // which a try with MSG_DONTWAIT would cut short.
  const size_t want = flags & ~(MSG_NOSIGNAL | MSG_CMSG_CLOEXEC) ? 0 : len;
  return libc_result(call_waiting(
      fd, Direction::In, flags & MSG_DONTWAIT, !(flags & MSG_WAITALL),
      [&](bool dontwait) {
        return sys(SYS_recvfrom, fd, buf, len, flags | (dontwait ? MSG_DONTWAIT : 0), from, fromlen);
      },
      want));
}

ssize_t flexsc_posix_recvmsg(int fd, struct msghdr* msg, int flags) {
  return libc_result(call_waiting(
      fd, Direction::In, flags & MSG_DONTWAIT, !(flags & MSG_WAITALL),
      [&](bool dontwait) { return sys(SYS_recvmsg, fd, msg, flags | (dontwait ? MSG_DONTWAIT : 0)); }));
}

ssize_t flexsc_posix_send(int fd, const void* buf, size_t len, int flags) {
  return flexsc_posix_sendto(fd, buf, len, flags, nullptr, 0);
}

ssize_t flexsc_posix_sendto(int fd, const void* buf, size_t len, int flags, const struct sockaddr* to,
                            socklen_t tolen) {
  const char* p = static_cast<const char*>(buf);
  return libc_result(send_all(fd, len, flags & MSG_DONTWAIT, [&](size_t off, size_t n, bool dontwait) {
    return sys(SYS_sendto, fd, p + off, n, flags | (dontwait ? MSG_DONTWAIT : 0), to, tolen);
  }));
}

// Not split: a message with ancillary data or several buffers goes whole,
// and a partial send is returned as the kernel gave it.
ssize_t flexsc_posix_sendmsg(int fd, const struct msghdr* msg, int flags) {
  return libc_result(call_waiting(fd, Direction::Out, flags & MSG_DONTWAIT, true, [&](bool dontwait) {
    return sys(SYS_sendmsg, fd, msg, flags | (dontwait ? MSG_DONTWAIT : 0));
  }));
}

int flexsc_posix_accept(int fd, struct sockaddr* addr, socklen_t* addrlen) {
  return flexsc_posix_accept4(fd, addr, addrlen, 0);
}

// accept has no per-call non-blocking flag: it waits until poll says a
// connection is there, then accepts.
int flexsc_posix_accept4(int fd, struct sockaddr* addr, socklen_t* addrlen, int flags) {
  const long r = call_waiting(fd, Direction::In, false, false,
                              [&](bool) { return sys(SYS_accept4, fd, addr, addrlen, flags); });
  if (r >= 0) {
    fd_table().forget(static_cast<int>(r));  // a number reused behind our back
    fd_table().set_nonblocking(static_cast<int>(r), flags & SOCK_NONBLOCK);
  }
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_connect(int fd, const struct sockaddr* addr, socklen_t addrlen) {
  return static_cast<int>(libc_result(sys(SYS_connect, fd, addr, addrlen)));
}

int flexsc_posix_socket(int domain, int type, int protocol) {
  const long r = sys(SYS_socket, domain, type, protocol);
  if (r >= 0) {
    fd_table().forget(static_cast<int>(r));
    fd_table().set_nonblocking(static_cast<int>(r), type & SOCK_NONBLOCK);
  }
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_pipe2(int fds[2], int flags) {
  const long r = sys(SYS_pipe2, fds, flags);
  if (r == 0) {
    for (int i = 0; i < 2; ++i) {
      fd_table().forget(fds[i]);
      fd_table().set_kind(fds[i], FdKind::Pipe);
      fd_table().set_nonblocking(fds[i], flags & O_NONBLOCK);
    }
  }
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = open_mode_arg(flags, ap);
  va_end(ap);
  return flexsc_posix_openat(AT_FDCWD, path, flags, mode);
}

int flexsc_posix_openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = open_mode_arg(flags, ap);
  va_end(ap);
  const long r = sys(SYS_openat, dirfd, path, flags, mode);
  if (r >= 0) fd_table().forget(static_cast<int>(r));
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_close(int fd) {
  fd_table().forget(fd);
  const long r = sys(SYS_close, fd);
  fd_table().forget(fd);  // a waiter woken above may have registered it again
  return static_cast<int>(libc_result(r));
}

// newfd is forgotten before (its waiters wake) and after (one of them may
// have registered the old file again meanwhile), as in close.
int flexsc_posix_dup2(int oldfd, int newfd) {
  if (oldfd == newfd) return static_cast<int>(libc_result(sys(SYS_dup2, oldfd, newfd)));
  fd_table().forget(newfd);
  const long r = sys(SYS_dup2, oldfd, newfd);
  fd_table().forget(newfd);
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_dup3(int oldfd, int newfd, int flags) {
  fd_table().forget(newfd);
  const long r = sys(SYS_dup3, oldfd, newfd, flags);
  fd_table().forget(newfd);
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  const long arg = va_arg(ap, long);
  va_end(ap);
  const long r = sys(SYS_fcntl, fd, cmd, arg);
  if (r >= 0 && cmd == F_SETFL) fd_table().set_nonblocking(fd, arg & O_NONBLOCK);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) fd_table().forget(static_cast<int>(r));
  return static_cast<int>(libc_result(r));
}

int flexsc_posix_shutdown(int fd, int how) {
  return static_cast<int>(libc_result(sys(SYS_shutdown, fd, how)));
}

}  // extern "C"
