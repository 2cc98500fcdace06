// Readiness waits for sockets, pipes and other pollable descriptors: a
// fiber whose call would block parks until epoll reports the descriptor
// ready, so 10,000 idle connections cost 10,000 table entries and no
// thread.  Each scheduler has an epoll instance, watched by one
// epoll_wait that is itself a posted entry (exception-less schedulers) or
// that the scheduler makes when idle (synchronous ones).
//
// Descriptors are registered once, edge-triggered, in the epoll of the
// scheduler that first waits on them; the per-descriptor state is shared
// by the process, so a fiber on any scheduler can wait on any descriptor.
// Events are counted per descriptor and direction: a caller notes the
// count before it tries its call, and waits only if no event came since,
// so an edge is never slept through, however many fibers wait.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <flexsc/fiber.hpp>
#include <memory>
#include <mutex>

namespace flexsc::fiber::detail {

enum class Direction { In, Out };

// What a descriptor is, as far as waiting goes (cached per descriptor).
enum class FdKind : uint8_t {
  Unknown,
  TcpSocket,     // a stream socket whose short receive means its queue was empty
  StreamSocket,  // waits by trying with MSG_DONTWAIT first
  PacketSocket,  // datagram and seqpacket sockets: the same, no partial sends
  Pipe,          // pipes and FIFOs: poll, then the call; writes in PIPE_BUF pieces
  Pollable,      // terminals, eventfds, other character devices...: poll, then the call
  Plain,         // regular files, directories, block devices: never "not ready"
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
  // How many readiness events fd has had in direction d: a caller takes it
  // before trying its call, and passes it to wait().
  uint32_t events(int fd, Direction d);
  // Parks the running fiber until fd has an event in direction d (ready,
  // an error or a hangup) beyond `seen`; returns at once if it had one
  // already.  mine: the caller's scheduler's epoll, where fd is registered
  // if it is not yet.  Returns 0, or -errno when fd cannot be watched
  // (-EPERM: a regular file or directory; -EBADF).
  int wait(int fd, Direction d, Readiness* mine, uint32_t seen);

  // The cached kind and O_NONBLOCK state of fd (Unknown / -1 until set).
  FdKind kind(int fd);
  void set_kind(int fd, FdKind kind);
  int nonblocking(int fd);
  void set_nonblocking(int fd, bool nonblocking);
  // A TCP socket's receive queue was empty after a short plain receive
  // begun when events(fd, In) was `seen`: data that comes later brings an
  // event beyond it, so the next receive may wait for one before trying.
  // drained() gives that count, or -1 (also once a hangup or error came:
  // no event follows those).  Not for Unix stream sockets, whose receives
  // also stop short before passed descriptors, credentials or OOB data.
  int64_t drained(int fd);
  void set_drained(int fd, int64_t seen);

  // An epoll event for fd: counted, and its waiters woken.
  void on_event(int fd, uint32_t events);
  // fd is about to be closed (or replaced by dup2), or was: forget its
  // registration and what is cached about it, and wake its waiters, who
  // retry and see the new state.
  void forget(int fd);
  // An epoll instance closes: forget every registration in it (waking
  // whoever waits there).
  void forget_all_in(Readiness* r);

 private:
  struct Entry;
  Entry* entry(int fd, bool create);
  static void signal(Entry* e, int dir);
  static void unregister(Entry* e);
  static constexpr int kChunkBits = 10;
  static constexpr int kChunks = 4096;  // up to 4M descriptors
  std::atomic<Entry*> chunks_[kChunks];
};

// The pool-wide descriptor table.
FdTable& fd_table();

}  // namespace flexsc::fiber::detail
