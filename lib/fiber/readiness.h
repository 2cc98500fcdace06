// Readiness waits for sockets, pipes and other pollable descriptors: a
// fiber whose call would block parks until epoll reports the descriptor
// ready, so 10,000 idle connections cost 10,000 table entries and no
// thread.  Each scheduler has an epoll instance, watched by one
// epoll_wait that is itself a posted entry (exception-less schedulers) or
// that the scheduler makes when idle (synchronous ones).
//
// Descriptors are registered once, edge-triggered, in the epoll of the
// scheduler that first waits on them; the per-descriptor state is shared
// by the pool, so a fiber on any scheduler can wait on any descriptor.  An
// edge that arrives while nobody waits is remembered, so the next waiter
// retries at once instead of sleeping through it.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include <flexsc/fiber.hpp>

namespace flexsc::fiber::detail {

enum class Direction { In, Out };

// What a descriptor is, as far as waiting goes (cached per descriptor).
enum class FdKind : uint8_t {
  Unknown,
  StreamSocket,     // waits by trying with MSG_DONTWAIT first
  PacketSocket,     // datagram and seqpacket sockets: the same, no partial sends
  Pollable,         // pipes, FIFOs, terminals, eventfds...: poll, then the call
  Plain,            // regular files, directories, block devices: never "not ready"
};

// A scheduler's epoll instance.
struct Readiness {
  static constexpr int kEvents = 256;
  int epfd = -1;
  // Fibers parked on descriptors registered here (from any scheduler): the
  // owning scheduler keeps an epoll_wait going while there are any.
  std::atomic<int> waiters{0};
  bool armed = false;  // an epoll_wait entry is in flight (exception-less)
  epoll_event events[kEvents];
  // Asks the owning scheduler to look at `waiters` (it may be idle).
  void (*notify)(void*) = nullptr;
  void* notify_arg = nullptr;

  int open();  // 0 or -errno
  void close();
};

class FdTable {
 public:
  FdTable();
  ~FdTable();
  // Parks the running fiber until fd is ready in direction d (or has an
  // error or hangup).  mine: the caller's scheduler's epoll, where fd is
  // registered if it is not yet.  Returns 0 (woken, or an edge came while
  // nobody waited: try again), or -errno when fd cannot be watched
  // (-EPERM: a regular file or directory; -EBADF).
  int wait(int fd, Direction d, Readiness* mine);
  // The cached kind and O_NONBLOCK state of fd (Unknown / -1 until set).
  FdKind kind(int fd);
  void set_kind(int fd, FdKind kind);
  int nonblocking(int fd);
  void set_nonblocking(int fd, bool nonblocking);
  // A stream socket's receive queue was empty after the last receive (a
  // short one, or EAGAIN): any data that comes later brings an edge, so
  // the next receive may wait for one before trying.
  bool drained(int fd);
  void set_drained(int fd, bool drained);

  // An epoll event for fd: wakes its waiters, or remembers the edge.
  void on_event(int fd, uint32_t events);
  // fd is about to be closed (or replaced by dup2): forget its
  // registration and what is cached about it, and wake its waiters, who
  // retry and see the new state.
  void forget(int fd);
  // An epoll instance closes: forget every registration in it.
  void forget_all_in(Readiness* r);

 private:
  struct Entry;
  Entry* entry(int fd, bool create);
  static constexpr int kChunkBits = 10;
  static constexpr int kChunks = 4096;  // up to 4M descriptors
  std::atomic<Entry*> chunks_[kChunks];
};

// The pool-wide descriptor table.
FdTable& fd_table();

}  // namespace flexsc::fiber::detail
