// Which syscall entries io_uring can execute, as which operation, and how
// a completion becomes the result the synchronous call would have given.
//
// Where io_uring differs from the syscall the mapping either reproduces the
// syscall or leaves the entry to a syscall thread:
//   - io_uring waits on a pollable file even when it is O_NONBLOCK, where
//     the syscall returns -EAGAIN.  Reads, writes, sends and receives are
//     therefore first tried without waiting (RWF_NOWAIT, MSG_DONTWAIT);
//     only when that would block does the owner look at the descriptor
//     (fcntl, fstat: two syscalls on a path that was going to wait anyway)
//     and either return -EAGAIN or try again, waiting.
//   - A transfer io_uring cuts short where the syscall would not (a write
//     to a blocking pipe or socket, a read of a partly cached file) goes on
//     with the rest, and completes with the total.
//   - A write that fails with -EPIPE or -EFBIG raises SIGPIPE or SIGXFSZ in
//     the thread that ran it; under SQPOLL that is the kernel's submission
//     thread, and io_uring's sends never raise SIGPIPE.  The caller then
//     runs such a call again itself, so the kernel signals the caller.
//   - pread/pwrite and their vector forms go to io_uring only for regular
//     files and block devices (io_uring ignores the offset of a stream,
//     where the syscall fails with -ESPIPE): one fstat per descriptor and
//     submit tells.
//   - Arguments io_uring cannot carry (a length over 32 bits, an offset
//     pointer for splice, an address for sendto/recvfrom, a descriptor in
//     non-blocking mode for accept, an invalid timespec) leave the
//     entry to a syscall thread, so the kernel answers as it would.
#pragma once

#include <flexsc/entry.h>
#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace flexsc::detail {

// What the running kernel's io_uring offers, probed once.
struct OpSupport {
  bool op[IORING_OP_LAST] = {};
  bool cur_pos = false;         // offset -1 means the file position (5.6)
  bool timeout_clocks = false;  // IORING_TIMEOUT_BOOTTIME / REALTIME (5.15)

  bool has(io_uring_op o) const { return o < IORING_OP_LAST && op[o]; }
};

// Fills *out from a probe ring.  -errno (with *error) when io_uring cannot
// be used at all.
int probe_io_uring(OpSupport* out, std::string* error);

// Per entry while it is in a ring: the owner's private state.
struct RingOp {
  enum class Fix : uint8_t {
    Plain,     // the completion is the result
    Timer,     // a timeout standing for nanosleep: -ETIME is success
    Transfer,  // read/write/send/receive: attempts, continuation, signals
  };
  enum class Mode : uint8_t { Nowait, Wait };
  enum class FdKind : uint8_t { Unknown, Seekable, BlockingStream, NonblockingStream };

  Fix fix = Fix::Plain;
  Mode mode = Mode::Wait;
  FdKind fd_kind = FdKind::Unknown;
  bool in_ring = false;
  uint64_t done = 0;                 // bytes moved by earlier parts
  uint64_t full = UINT64_MAX;        // a plain-buffer transfer's length: done in one go
  __kernel_timespec ts{};            // a validated copy, for Timer
  std::unique_ptr<std::vector<iovec>> rest_iov;  // the vector still to move
  std::unique_ptr<msghdr> rest_msg;              // sendmsg's header for the rest
};

// What the descriptors of one submit are, looked up once each (fstat,
// fcntl): valid for that submit only, as a descriptor number may name
// another file by the next.
class FdKinds {
 public:
  RingOp::FdKind of(long fd);

 private:
  static constexpr unsigned kSlots = 8;
  long fd_[kSlots] = {};
  RingOp::FdKind kind_[kSlots] = {};
  unsigned n_ = 0;
};

// True (and *op set up) if io_uring can run e exactly; false leaves it to a
// syscall thread.  May make a syscall: io_uring ignores that pread/pwrite
// on a pipe or socket is -ESPIPE, and that accept on a non-blocking
// socket must not wait, so those look at their descriptor.
bool map_entry(const OpSupport& s, const flexsc_entry& e, RingOp* op, FdKinds* kinds);

// Fills the SQE for e's next attempt (user_data left to the caller).
void prep_sqe(const flexsc_entry& e, const RingOp& op, io_uring_sqe* sqe);

// What becomes of an entry after a completion.
enum class Next {
  Done,       // *ret is its result (*reran: the caller ran it again itself)
  Retry,      // into the ring again (op updated)
  ToThreads,  // io_uring cannot do it right after all: a syscall thread will
};
Next finish(const flexsc_entry& e, RingOp* op, int res, bool sqpoll, long* ret, bool* reran);

}  // namespace flexsc::detail
