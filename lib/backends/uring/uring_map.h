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
#include <sys/socket.h>
#include <sys/syscall.h>
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
  enum class Mode : uint8_t { Nowait, Wait };  // indexes buffer_flags
  enum class FdKind : uint8_t { Unknown, Seekable, BlockingStream, NonblockingStream };

  Fix fix = Fix::Plain;
  Mode mode = Mode::Wait;
  FdKind fd_kind = FdKind::Unknown;
  bool in_ring = false;
  // A transfer from or to one buffer (read, write, pread64, pwrite64,
  // recvfrom, sendto) is written into its SQE from these, with no look at
  // the call number: the SQE of every attempt, the most frequent calls.
  uint8_t buffer_opcode = IORING_OP_NOP;  // NOP: not such a transfer
  bool buffer_at_offset = false;          // offset + done; otherwise offset as is
  uint32_t buffer_flags[2] = {};          // rw_flags / msg_flags, by Mode
  uint64_t offset = 0;                    // -1: the file position
  uint64_t done = 0;                      // bytes moved by earlier parts
  uint64_t full = UINT64_MAX;             // a one-buffer transfer's length: done in one go
  __kernel_timespec ts{};                 // a validated copy, for Timer
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

enum class Dir { None, In, Out };

// The transfer calls: which way data moves, and whether the first attempt
// may be made without waiting (calls whose descriptor may be a stream).
struct TransferInfo {
  Dir dir = Dir::None;
  bool nowait_first = false;
  bool vector = false;
  bool socket = false;
};

inline TransferInfo transfer_info(const flexsc_entry& e) {
  const long* a = reinterpret_cast<const long*>(e.args);
  switch (e.nr) {
    case SYS_read: return {Dir::In, true, false, false};
    case SYS_write: return {Dir::Out, true, false, false};
    case SYS_readv: return {Dir::In, true, true, false};
    case SYS_writev: return {Dir::Out, true, true, false};
    case SYS_pread64: return {Dir::In, false, false, false};
    case SYS_pwrite64: return {Dir::Out, false, false, false};
    case SYS_preadv: return {Dir::In, false, true, false};
    case SYS_pwritev: return {Dir::Out, false, true, false};
    // At the file position (-1) these are readv/writev with flags.
    case SYS_preadv2: return {Dir::In, a[3] == -1 && !(a[5] & RWF_NOWAIT), true, false};
    case SYS_pwritev2: return {Dir::Out, a[3] == -1 && !(a[5] & RWF_NOWAIT), true, false};
    case SYS_recvfrom: return {Dir::In, !(a[3] & MSG_DONTWAIT), false, true};
    case SYS_sendto: return {Dir::Out, !(a[3] & MSG_DONTWAIT), false, true};
    case SYS_recvmsg: return {Dir::In, !(a[2] & MSG_DONTWAIT), true, true};
    case SYS_sendmsg: return {Dir::Out, !(a[2] & MSG_DONTWAIT), true, true};
    default: return {};
  }
}

inline bool fits_u32(long v) { return v >= 0 && v <= long{UINT32_MAX}; }  // SQE lengths are 32 bits

// Sets op up for a transfer call.  Inlined where the call number is known,
// it folds to a few stores.
[[gnu::always_inline]] inline void start_transfer(const flexsc_entry& e, RingOp* op) {
  const TransferInfo t = transfer_info(e);
  op->fix = RingOp::Fix::Transfer;
  op->mode = t.nowait_first ? RingOp::Mode::Nowait : RingOp::Mode::Wait;
  if (t.vector) return;
  op->full = static_cast<uint64_t>(e.args[2]);
  const long* a = reinterpret_cast<const long*>(e.args);
  const auto flags = [op](uint32_t nowait, uint32_t wait) {
    op->buffer_flags[static_cast<unsigned>(RingOp::Mode::Nowait)] = nowait;
    op->buffer_flags[static_cast<unsigned>(RingOp::Mode::Wait)] = wait;
  };
  switch (e.nr) {
    case SYS_read:
    case SYS_write:
      op->buffer_opcode = e.nr == SYS_read ? IORING_OP_READ : IORING_OP_WRITE;
      op->offset = UINT64_MAX;
      flags(RWF_NOWAIT, 0);
      break;
    case SYS_pread64:
    case SYS_pwrite64:
      op->buffer_opcode = e.nr == SYS_pread64 ? IORING_OP_READ : IORING_OP_WRITE;
      op->buffer_at_offset = true;
      op->offset = static_cast<uint64_t>(a[3]);
      flags(0, 0);
      break;
    case SYS_recvfrom:
      op->buffer_opcode = IORING_OP_RECV;
      flags(static_cast<uint32_t>(a[3]) | MSG_DONTWAIT, static_cast<uint32_t>(a[3]));
      break;
    case SYS_sendto:
      // Waiting, MSG_WAITALL makes io_uring finish a stream send as the
      // blocking syscall would (the syscall ignores it for sends).
      op->buffer_opcode = IORING_OP_SEND;
      flags(static_cast<uint32_t>(a[3]) | MSG_DONTWAIT, static_cast<uint32_t>(a[3]) | MSG_WAITALL);
      break;
  }
}

// A positioned transfer goes to io_uring only where the syscall accepts an
// offset (io_uring ignores it on a stream, where the syscall fails with
// -ESPIPE): one fstat per descriptor and submit.
bool seekable(RingOp* op, FdKinds* kinds, long fd);
// MSG_WAITALL on a blocking socket (see the definition).
bool wait_for_all(RingOp* op, FdKinds* kinds, long fd);
// map_entry for every call but the one-buffer transfers.
bool map_call(const OpSupport& s, const flexsc_entry& e, RingOp* op, FdKinds* kinds);

// True (and *op set up) if io_uring can run e exactly; false leaves it to a
// syscall thread.  May make a syscall: io_uring ignores that pread/pwrite
// on a pipe or socket is -ESPIPE, and that accept on a non-blocking
// socket must not wait, so those look at their descriptor.  The one-buffer
// transfers, the calls submitted most, are mapped here, inline.
inline bool map_entry(const OpSupport& s, const flexsc_entry& e, RingOp* op, FdKinds* kinds) {
  const long* a = reinterpret_cast<const long*>(e.args);
  // A fresh state (the continuation buffers were dropped at completion).
  op->fix = RingOp::Fix::Plain;
  op->mode = RingOp::Mode::Wait;
  op->fd_kind = RingOp::FdKind::Unknown;
  op->buffer_opcode = IORING_OP_NOP;
  op->buffer_at_offset = false;
  op->offset = 0;
  op->done = 0;
  op->full = UINT64_MAX;
  if (e.flags & FLEXSC_ENTRY_NOP) return s.has(IORING_OP_NOP);
  switch (e.nr) {
    case SYS_read:
    case SYS_write:
      start_transfer(e, op);
      return s.cur_pos && s.has(e.nr == SYS_read ? IORING_OP_READ : IORING_OP_WRITE) && fits_u32(a[2]);
    case SYS_pread64:
    case SYS_pwrite64:
      start_transfer(e, op);
      // A negative offset is -EINVAL for the syscall, "the file position" for io_uring.
      return s.has(e.nr == SYS_pread64 ? IORING_OP_READ : IORING_OP_WRITE) && fits_u32(a[2]) && a[3] >= 0 &&
             seekable(op, kinds, a[0]);
    case SYS_recvfrom:
      start_transfer(e, op);
      if ((a[3] & MSG_WAITALL) && !wait_for_all(op, kinds, a[0])) return false;
      return s.has(IORING_OP_RECV) && fits_u32(a[2]) && a[4] == 0 && a[5] == 0;
    case SYS_sendto:
      start_transfer(e, op);
      return s.has(IORING_OP_SEND) && fits_u32(a[2]) && a[4] == 0;
    default:
      return map_call(s, e, op, kinds);
  }
}

// Fills the SQE for e's next attempt (user_data left to the caller):
// one-buffer transfers here, inline, the rest in prep_call_sqe.
void prep_call_sqe(const flexsc_entry& e, const RingOp& op, io_uring_sqe* sqe);

inline void prep_sqe(const flexsc_entry& e, const RingOp& op, io_uring_sqe* sqe) {
  if (op.buffer_opcode == IORING_OP_NOP) {
    prep_call_sqe(e, op, sqe);
    return;
  }
  io_uring_prep_rw(op.buffer_opcode, sqe, static_cast<int>(e.args[0]),
                   reinterpret_cast<char*>(e.args[1]) + op.done, static_cast<unsigned>(e.args[2] - op.done),
                   op.buffer_at_offset ? op.offset + op.done : op.offset);
  sqe->rw_flags = static_cast<int>(op.buffer_flags[static_cast<unsigned>(op.mode)]);
}

// What becomes of an entry after a completion.
enum class Next {
  Done,       // *ret is its result (*reran: the caller ran it again itself)
  Retry,      // into the ring again (op updated)
  ToThreads,  // io_uring cannot do it right after all: a syscall thread will
};
Next finish(const flexsc_entry& e, RingOp* op, int res, bool sqpoll, long* ret, bool* reran);

}  // namespace flexsc::detail
