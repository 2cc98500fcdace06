// Which syscall entries io_uring can execute, as which operation, and how
// a completion becomes the result the synchronous call would have given.
//
// One table says it, a row per syscall (kUringCalls in uring_map.cpp, in
// the manner of syscall_intercept's syscall_formats.c), indexed by call
// number once at compile time.  A row holds:
//   - opcode: the io_uring operation, taken only where the running
//     kernel's probe lists it (OpSupport);
//   - completion: how the completion becomes the result (Fix), and for
//     transfers the shape of their arguments, which finish() and the
//     fills read instead of the call number;
//   - u32_arg: an argument the SQE holds in 32 bits, so that a larger
//     value leaves the entry to a syscall thread;
//   - takes: any further condition on the arguments or the descriptor
//     (nullptr: none); it may set the RingOp up (a copied timespec, the
//     descriptor's kind);
//   - fill: the operation's own fields of the SQE.  prep_sqe zeroes the
//     whole SQE and writes the row's opcode before it, so nothing of the
//     slot's previous operation reaches the kernel: flexsc takes SQEs from
//     the ring itself, not through io_uring_get_sqe, which is where newer
//     liburing initializes them (its io_uring_prep_rw no longer does).
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
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace flexsc::detail {

// What the running kernel's io_uring offers, probed once.
struct OpSupport {
  bool op[IORING_OP_LAST] = {};
  bool cur_pos = false;         // offset -1 means the file position (5.6)
  bool timeout_clocks = false;  // IORING_TIMEOUT_BOOTTIME / REALTIME (5.15)

  bool has(unsigned o) const { return o < IORING_OP_LAST && op[o]; }
};

// Fills *out from a probe ring.  -errno (with *error) when io_uring cannot
// be used at all.
int probe_io_uring(OpSupport* out, std::string* error);

struct UringCall;

// Per entry while it is in a ring: the owner's private state.
struct RingOp {
  enum class Fix : uint8_t {
    Plain,     // the completion is the result
    Timer,     // a timeout standing for nanosleep: -ETIME is success
    Transfer,  // read/write/send/receive: attempts, continuation, signals
  };
  enum class Mode : uint8_t { Nowait, Wait };
  enum class FdKind : uint8_t { Unknown, Seekable, BlockingStream, NonblockingStream };

  const UringCall* call = nullptr;  // the table's row
  Fix fix = Fix::Plain;             // the row's, at hand for the completion
  Mode mode = Mode::Wait;
  FdKind fd_kind = FdKind::Unknown;
  bool in_ring = false;
  uint64_t done = 0;                             // bytes moved by earlier parts
  uint64_t full = UINT64_MAX;                    // a one-buffer transfer's length: done in one go
  __kernel_timespec ts{};                        // a validated copy, for Timer
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

enum class Dir : uint8_t { None, In, Out };

// How a completion becomes the synchronous result; for a transfer, also
// which way data moves and where its arguments are.
struct Completion {
  enum class Shape : uint8_t {
    None,      // not a transfer
    Buffer,    // fd, buffer, length, at the file position (read, write)
    BufferAt,  // ... at the offset in a[3] (pread64, pwrite64)
    Socket,    // fd, buffer, length, MSG_* flags in a[3] (recvfrom, sendto)
    Vector,    // fd, iovec array, count, at the file position (readv, writev)
    VectorAt,  // ... at the offset in a[3] (preadv, pwritev)
    VectorV2,  // ... a[3], -1 the file position; RWF_* flags in a[5] (preadv2, pwritev2)
    Msg,       // fd, msghdr, MSG_* flags in a[2] (recvmsg, sendmsg)
  };
  RingOp::Fix fix = RingOp::Fix::Plain;
  Dir dir = Dir::None;
  Shape shape = Shape::None;

  bool vector() const {
    return shape == Shape::Vector || shape == Shape::VectorAt || shape == Shape::VectorV2 ||
           shape == Shape::Msg;
  }
  bool socket() const { return shape == Shape::Socket || shape == Shape::Msg; }
  unsigned msg_flags_arg() const { return shape == Shape::Msg ? 2 : 3; }
};

// One syscall io_uring takes (see the top of this file).
struct UringCall {
  int nr;
  uint8_t opcode;
  Completion completion;
  int8_t u32_arg;
  bool (*takes)(const OpSupport& s, const long* a, RingOp* op, FdKinds* kinds);
  void (*fill)(const long* a, const RingOp& op, io_uring_sqe* sqe);
};

// The table: row 0 is the FLEXSC_ENTRY_NOP entry's; kUringCallOf[nr] is a
// call's row, 0 where io_uring does not take the call.  The size covers
// every x86-64 syscall number so far (a static_assert checks the rows).
inline constexpr unsigned kUringCallOfSize = 512;
extern const UringCall kUringCalls[];
extern const std::array<uint8_t, kUringCallOfSize> kUringCallOf;
std::span<const UringCall> uring_calls();  // every row, for tests

inline const UringCall* uring_call(const flexsc_entry& e) {
  if (e.flags & FLEXSC_ENTRY_NOP) return &kUringCalls[0];
  const unsigned row = e.nr < kUringCallOfSize ? kUringCallOf[e.nr] : 0;
  return row ? &kUringCalls[row] : nullptr;
}

// SQE lengths are 32 bits.
inline bool fits_u32(long v) {
  return v >= 0 && v <= long{UINT32_MAX};
}

// Whether a transfer's first attempt must not wait: its descriptor may be
// a stream the caller made non-blocking, where the syscall returns -EAGAIN.
inline bool nowait_first(const Completion& c, const long* a) {
  using Shape = Completion::Shape;
  switch (c.shape) {
    case Shape::Buffer:
    case Shape::Vector:
      return true;
    case Shape::VectorV2:  // at the file position these are readv/writev with flags
      return a[3] == -1 && !(a[5] & RWF_NOWAIT);
    case Shape::Socket:
    case Shape::Msg:
      return !(a[c.msg_flags_arg()] & MSG_DONTWAIT);
    default:
      return false;
  }
}

// True (and *op set up) if io_uring can run e exactly; false leaves it to a
// syscall thread.  A row's condition may make a syscall: io_uring ignores
// that pread/pwrite on a pipe or socket is -ESPIPE, and that accept on a
// non-blocking socket must not wait, so those look at their descriptor.
inline bool map_entry(const OpSupport& s, const flexsc_entry& e, RingOp* op, FdKinds* kinds) {
  const UringCall* c = uring_call(e);
  if (!c || !s.has(c->opcode)) return false;
  const long* a = reinterpret_cast<const long*>(e.args);
  if (c->u32_arg >= 0 && !fits_u32(a[c->u32_arg])) return false;
  // A fresh state (the continuation buffers were dropped at completion).
  op->call = c;
  op->fix = c->completion.fix;
  op->mode = RingOp::Mode::Wait;
  op->fd_kind = RingOp::FdKind::Unknown;
  op->done = 0;
  op->full = UINT64_MAX;
  if (op->fix == RingOp::Fix::Transfer) {
    if (nowait_first(c->completion, a)) op->mode = RingOp::Mode::Nowait;
    if (!c->completion.vector()) op->full = static_cast<uint64_t>(a[2]);
  }
  return !c->takes || c->takes(s, a, op, kinds);
}

// The start of every SQE flexsc writes: zero, with its opcode.
inline void start_sqe(io_uring_sqe* sqe, uint8_t opcode) {
  std::memset(sqe, 0, sizeof *sqe);
  sqe->opcode = opcode;
}

// Fills the SQE for e's next attempt (user_data left to the caller).
inline void prep_sqe(const flexsc_entry& e, const RingOp& op, io_uring_sqe* sqe) {
  start_sqe(sqe, op.call->opcode);
  op.call->fill(reinterpret_cast<const long*>(e.args), op, sqe);
}

// The owner's wake-up: a read of the eventfd syscall threads write when
// they complete one of its entries.
void prep_wake_read(io_uring_sqe* sqe, int fd, uint64_t* value);

// What becomes of an entry after a completion.
enum class Next {
  Done,       // *ret is its result (*reran: the caller ran it again itself)
  Retry,      // into the ring again (op updated)
  ToThreads,  // io_uring cannot do it right after all: a syscall thread will
};
Next finish(const flexsc_entry& e, RingOp* op, int res, bool sqpoll, long* ret, bool* reran);

}  // namespace flexsc::detail
