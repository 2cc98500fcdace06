#include "backends/uring/uring_map.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>

#include "base/raw_syscall.h"

namespace flexsc::detail {
namespace {

template <class T>
T* ptr(long v) {
  return reinterpret_cast<T*>(v);
}

// Copies n bytes from the process's own memory without faulting: a bad
// pointer gives false, as the kernel would give -EFAULT.
bool safe_copy(void* to, long from, size_t n) {
  struct iovec local {
    to, n
  }, remote{ptr<void>(from), n};
  return raw_syscall6(SYS_process_vm_readv, raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0),
                      reinterpret_cast<long>(&local), 1, reinterpret_cast<long>(&remote), 1,
                      0) == static_cast<long>(n);
}

bool fd_is_nonblocking(long fd) {
  const long fl = raw_syscall6(SYS_fcntl, fd, F_GETFL, 0, 0, 0, 0);
  return fl >= 0 && (fl & O_NONBLOCK);
}

// A socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) the syscall would honour
// while it waits; io_uring waits by polling and never does.
bool has_socket_timeout(long fd, bool sending) {
  struct timeval tv {};
  socklen_t len = sizeof tv;
  return raw_syscall6(SYS_getsockopt, fd, SOL_SOCKET, sending ? SO_SNDTIMEO : SO_RCVTIMEO,
                      reinterpret_cast<long>(&tv), reinterpret_cast<long>(&len), 0) == 0 &&
         (tv.tv_sec != 0 || tv.tv_usec != 0);
}

// Regular files and block devices ignore O_NONBLOCK; everything else
// (pipes, sockets, terminals, eventfds...) honours it.
RingOp::FdKind classify_fd(long fd) {
  struct stat st;
  if (raw_syscall6(SYS_fstat, fd, reinterpret_cast<long>(&st), 0, 0, 0, 0) == 0 &&
      (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
    return RingOp::FdKind::Seekable;
  return fd_is_nonblocking(fd) ? RingOp::FdKind::NonblockingStream : RingOp::FdKind::BlockingStream;
}

// A nanosleep/clock_nanosleep request the kernel would accept, copied.
bool copy_timespec(long addr, __kernel_timespec* out) {
  struct timespec ts;
  if (!safe_copy(&ts, addr, sizeof ts)) return false;
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L) return false;
  out->tv_sec = ts.tv_sec;
  out->tv_nsec = ts.tv_nsec;
  return true;
}

// MSG_WAITALL on a blocking socket: a first attempt without waiting would
// return what is there; waiting, io_uring itself receives until all came
// (but knows no SO_RCVTIMEO: such a socket goes to syscall threads).
bool wait_for_all(RingOp* op, FdKinds* kinds, long fd) {
  op->fd_kind = kinds->of(fd);
  if (op->fd_kind != RingOp::FdKind::BlockingStream) return true;
  op->mode = RingOp::Mode::Wait;
  return !has_socket_timeout(fd, false);
}

// Conditions: a row's `takes`, beyond its opcode and u32_arg.

// read, write, readv, writev: io_uring knows the file position as offset -1.
bool at_position(const OpSupport& s, const long*, RingOp*, FdKinds*) {
  return s.cur_pos;
}

// pread64, pwrite64, preadv, pwritev.  A negative offset is -EINVAL for
// the syscall, "the file position" for io_uring; and io_uring ignores the
// offset on a stream, where the syscall fails with -ESPIPE.
bool at_offset(const OpSupport&, const long* a, RingOp* op, FdKinds* kinds) {
  if (a[3] < 0 || kinds->of(static_cast<int>(a[0])) != RingOp::FdKind::Seekable) return false;
  op->fd_kind = RingOp::FdKind::Seekable;
  return true;
}

// preadv2, pwritev2: flags io_uring takes as the syscall does (it refuses
// RWF_HIPRI without IOPOLL, for one); others go to syscall threads.
bool at_offset_v2(const OpSupport& s, const long* a, RingOp* op, FdKinds* kinds) {
  if (a[5] & ~long{RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND}) return false;
  return a[3] == -1 ? s.cur_pos : at_offset(s, a, op, kinds);
}

// recvmsg, and recvfrom below.
bool receive(const OpSupport&, const long* a, RingOp* op, FdKinds* kinds) {
  return !(a[op->call->completion.msg_flags_arg()] & MSG_WAITALL) || wait_for_all(op, kinds, a[0]);
}

// recvfrom and sendto without an address: IORING_OP_RECV and SEND take none.
bool recv_from(const OpSupport& s, const long* a, RingOp* op, FdKinds* kinds) {
  return a[4] == 0 && a[5] == 0 && receive(s, a, op, kinds);
}
bool send_to(const OpSupport&, const long* a, RingOp*, FdKinds*) {
  return a[4] == 0;
}

bool statx_path(const OpSupport&, const long* a, RingOp*, FdKinds*) {
  return a[1] != 0;  // a NULL path: newer kernels only
}

// io_uring waits even on a non-blocking socket; such an accept never
// blocks, so a syscall thread answers it at once.
bool accept_waits(const OpSupport&, const long* a, RingOp*, FdKinds*) {
  return !fd_is_nonblocking(a[0]) && !has_socket_timeout(a[0], false);
}

// Offsets are pointers the syscall updates; io_uring takes values.
bool splice_values(const OpSupport&, const long* a, RingOp*, FdKinds*) {
  return a[1] == 0 && a[3] == 0;
}

bool sleep_time(const OpSupport&, const long* a, RingOp* op, FdKinds*) {
  return copy_timespec(a[0], &op->ts);
}

bool clock_sleep(const OpSupport& s, const long* a, RingOp* op, FdKinds*) {
  const bool clock_ok =
      a[0] == CLOCK_MONOTONIC || ((a[0] == CLOCK_REALTIME || a[0] == CLOCK_BOOTTIME) && s.timeout_clocks);
  return clock_ok && (a[1] == 0 || a[1] == TIMER_ABSTIME) && copy_timespec(a[2], &op->ts);
}

// Fills: a row's `fill`, into an SQE that is zero but for the opcode.

int i32(long v) {
  return static_cast<int>(v);
}
uint32_t u32(long v) {
  return static_cast<uint32_t>(v);
}
uint64_t u64(long v) {
  return static_cast<uint64_t>(v);
}
uint64_t addr_of(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}

// The fields io_uring_prep_rw sets; the others are each operation's own.
void set(io_uring_sqe* q, int fd, uint64_t addr, uint32_t len, uint64_t off) {
  q->fd = fd;
  q->addr = addr;
  q->len = len;
  q->off = off;
}

// Transfers, for every attempt: from where the earlier ones stopped.
uint64_t transfer_offset(const Completion& c, const long* a, uint64_t done) {
  using Shape = Completion::Shape;
  switch (c.shape) {
    case Shape::BufferAt:
    case Shape::VectorAt:
      return u64(a[3]) + done;
    case Shape::VectorV2:
      return a[3] == -1 ? UINT64_MAX : u64(a[3]) + done;
    case Shape::Socket:
    case Shape::Msg:
      return 0;
    default:
      return UINT64_MAX;  // the file position
  }
}

int rw_nowait(const RingOp& op) {
  return op.mode == RingOp::Mode::Nowait ? RWF_NOWAIT : 0;
}

// Waiting, MSG_WAITALL makes io_uring finish a stream send as the blocking
// syscall would (the syscall ignores it for sends).
uint32_t msg_flags(const Completion& c, const long* a, RingOp::Mode mode) {
  const uint32_t flags = u32(a[c.msg_flags_arg()]);
  if (mode == RingOp::Mode::Nowait) return flags | MSG_DONTWAIT;
  return c.dir == Dir::Out ? flags | MSG_WAITALL : flags;
}

void fill_buffer(const long* a, const RingOp& op, io_uring_sqe* q) {
  const Completion& c = op.call->completion;
  set(q, i32(a[0]), u64(a[1]) + op.done, static_cast<uint32_t>(u64(a[2]) - op.done),
      transfer_offset(c, a, op.done));
  if (c.socket())
    q->msg_flags = msg_flags(c, a, op.mode);
  else
    q->rw_flags = rw_nowait(op);
}

void fill_vector(const long* a, const RingOp& op, io_uring_sqe* q) {
  const Completion& c = op.call->completion;
  const std::vector<iovec>* rest = op.rest_iov.get();
  set(q, i32(a[0]), rest ? addr_of(rest->data()) : u64(a[1]),
      rest ? static_cast<uint32_t>(rest->size()) : u32(a[2]), transfer_offset(c, a, op.done));
  q->rw_flags = (c.shape == Completion::Shape::VectorV2 ? i32(a[5]) : 0) | rw_nowait(op);
}

void fill_msg(const long* a, const RingOp& op, io_uring_sqe* q) {
  set(q, i32(a[0]), op.rest_msg ? addr_of(op.rest_msg.get()) : u64(a[1]), 1, 0);
  q->msg_flags = msg_flags(op.call->completion, a, op.mode);
}

void fill_nop(const long*, const RingOp&, io_uring_sqe* q) {
  q->fd = -1;
}

void fill_open(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, AT_FDCWD, u64(a[0]), u32(a[2]), 0);
  q->open_flags = u32(a[1]);
}

void fill_creat(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, AT_FDCWD, u64(a[0]), u32(a[1]), 0);
  q->open_flags = O_CREAT | O_WRONLY | O_TRUNC;
}

void fill_openat(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), u32(a[3]), 0);
  q->open_flags = u32(a[2]);
}

// The caller's size of struct open_how: the kernel checks it.
void fill_openat2(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), u32(a[3]), u64(a[2]));
}

void fill_statx(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), u32(a[3]), u64(a[4]));
  q->statx_flags = u32(a[2]);
}

// close, fsync: the descriptor is all.
void fill_fd(const long* a, const RingOp&, io_uring_sqe* q) {
  q->fd = i32(a[0]);
}

void fill_fdatasync(const long* a, const RingOp& op, io_uring_sqe* q) {
  fill_fd(a, op, q);
  q->fsync_flags = IORING_FSYNC_DATASYNC;
}

void fill_sync_file_range(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), 0, u32(a[2]), u64(a[1]));
  q->sync_range_flags = u32(a[3]);
}

void fill_fallocate(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[3]), u32(a[1]), u64(a[2]));  // the length goes in addr, the mode in len
}

void fill_fadvise64(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), 0, u32(a[2]), u64(a[1]));
  q->fadvise_advice = u32(a[3]);
}

void fill_madvise(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, -1, u64(a[0]), u32(a[1]), 0);
  q->fadvise_advice = u32(a[2]);
}

void fill_accept(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), 0, u64(a[2]));
}

void fill_accept4(const long* a, const RingOp& op, io_uring_sqe* q) {
  fill_accept(a, op, q);
  q->accept_flags = u32(a[3]);
}

// The type goes in off as an int widened, as liburing writes it.
void fill_socket(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), 0, u32(a[2]), u64(i32(a[1])));
}

void fill_shutdown(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), 0, u32(a[1]), 0);
}

// rename, link and their *at forms name two paths: the second directory
// goes in len, the second path in off.
void fill_two_paths(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, AT_FDCWD, u64(a[0]), u32(AT_FDCWD), u64(a[1]));
}

void fill_two_paths_at(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), u32(a[2]), u64(a[3]));
}

void fill_renameat2(const long* a, const RingOp& op, io_uring_sqe* q) {
  fill_two_paths_at(a, op, q);
  q->rename_flags = u32(a[4]);
}

void fill_linkat(const long* a, const RingOp& op, io_uring_sqe* q) {
  fill_two_paths_at(a, op, q);
  q->hardlink_flags = u32(a[4]);
}

void fill_symlink(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, AT_FDCWD, u64(a[0]), 0, u64(a[1]));
}

void fill_symlinkat(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[1]), u64(a[0]), 0, u64(a[2]));
}

void fill_unlink(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, AT_FDCWD, u64(a[0]), 0, 0);
}

void fill_rmdir(const long* a, const RingOp& op, io_uring_sqe* q) {
  fill_unlink(a, op, q);
  q->unlink_flags = AT_REMOVEDIR;
}

void fill_unlinkat(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), 0, 0);
  q->unlink_flags = u32(a[2]);
}

void fill_mkdir(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, AT_FDCWD, u64(a[0]), u32(a[1]), 0);
}

void fill_mkdirat(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[1]), u32(a[2]), 0);
}

// The offsets are -1: the row takes only NULL offset pointers.
void fill_splice(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[2]), 0, u32(a[4]), UINT64_MAX);
  q->splice_off_in = UINT64_MAX;
  q->splice_fd_in = i32(a[0]);
  q->splice_flags = u32(a[5]);
}

void fill_tee(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[1]), 0, u32(a[2]), 0);
  q->splice_fd_in = i32(a[0]);
  q->splice_flags = u32(a[3]);
}

// The operation goes in len, the descriptor it is about in off.
void fill_epoll_ctl(const long* a, const RingOp&, io_uring_sqe* q) {
  set(q, i32(a[0]), u64(a[3]), u32(a[1]), u32(a[2]));
}

void fill_nanosleep(const long*, const RingOp& op, io_uring_sqe* q) {
  set(q, -1, addr_of(&op.ts), 1, 0);
}

void fill_clock_nanosleep(const long* a, const RingOp& op, io_uring_sqe* q) {
  fill_nanosleep(a, op, q);
  q->timeout_flags = (a[1] == TIMER_ABSTIME ? IORING_TIMEOUT_ABS : 0) |
                     (a[0] == CLOCK_REALTIME ? IORING_TIMEOUT_REALTIME : 0) |
                     (a[0] == CLOCK_BOOTTIME ? IORING_TIMEOUT_BOOTTIME : 0);
}

constexpr Completion kPlain{};
constexpr Completion kTimer{RingOp::Fix::Timer};
constexpr Completion in(Completion::Shape s) {
  return {RingOp::Fix::Transfer, Dir::In, s};
}
constexpr Completion out(Completion::Shape s) {
  return {RingOp::Fix::Transfer, Dir::Out, s};
}
using S = Completion::Shape;

}  // namespace

// One row per syscall io_uring takes.  Deliberately absent: connect (a TCP
// connect that fails through io_uring leaves the socket bound to its local
// address, where the syscall leaves it unbound), and everything else.
// clang-format off
constexpr UringCall kUringCalls[] = {
  // syscall            opcode                     completion       u32  takes          fill
  {-1,                  IORING_OP_NOP,             kPlain,           -1, nullptr,       fill_nop},
  {SYS_read,            IORING_OP_READ,            in(S::Buffer),     2, at_position,   fill_buffer},
  {SYS_write,           IORING_OP_WRITE,           out(S::Buffer),    2, at_position,   fill_buffer},
  {SYS_pread64,         IORING_OP_READ,            in(S::BufferAt),   2, at_offset,     fill_buffer},
  {SYS_pwrite64,        IORING_OP_WRITE,           out(S::BufferAt),  2, at_offset,     fill_buffer},
  {SYS_recvfrom,        IORING_OP_RECV,            in(S::Socket),     2, recv_from,     fill_buffer},
  {SYS_sendto,          IORING_OP_SEND,            out(S::Socket),    2, send_to,       fill_buffer},
  {SYS_readv,           IORING_OP_READV,           in(S::Vector),     2, at_position,   fill_vector},
  {SYS_writev,          IORING_OP_WRITEV,          out(S::Vector),    2, at_position,   fill_vector},
  {SYS_preadv,          IORING_OP_READV,           in(S::VectorAt),   2, at_offset,     fill_vector},
  {SYS_pwritev,         IORING_OP_WRITEV,          out(S::VectorAt),  2, at_offset,     fill_vector},
  {SYS_preadv2,         IORING_OP_READV,           in(S::VectorV2),   2, at_offset_v2,  fill_vector},
  {SYS_pwritev2,        IORING_OP_WRITEV,          out(S::VectorV2),  2, at_offset_v2,  fill_vector},
  {SYS_recvmsg,         IORING_OP_RECVMSG,         in(S::Msg),       -1, receive,       fill_msg},
  {SYS_sendmsg,         IORING_OP_SENDMSG,         out(S::Msg),      -1, nullptr,       fill_msg},
  {SYS_open,            IORING_OP_OPENAT,          kPlain,           -1, nullptr,       fill_open},
  {SYS_creat,           IORING_OP_OPENAT,          kPlain,           -1, nullptr,       fill_creat},
  {SYS_openat,          IORING_OP_OPENAT,          kPlain,           -1, nullptr,       fill_openat},
  {SYS_openat2,         IORING_OP_OPENAT2,         kPlain,           -1, nullptr,       fill_openat2},
  {SYS_close,           IORING_OP_CLOSE,           kPlain,           -1, nullptr,       fill_fd},
  {SYS_statx,           IORING_OP_STATX,           kPlain,           -1, statx_path,    fill_statx},
  {SYS_fsync,           IORING_OP_FSYNC,           kPlain,           -1, nullptr,       fill_fd},
  {SYS_fdatasync,       IORING_OP_FSYNC,           kPlain,           -1, nullptr,       fill_fdatasync},
  {SYS_sync_file_range, IORING_OP_SYNC_FILE_RANGE, kPlain,            2, nullptr,       fill_sync_file_range},
  {SYS_fallocate,       IORING_OP_FALLOCATE,       kPlain,           -1, nullptr,       fill_fallocate},
  {SYS_fadvise64,       IORING_OP_FADVISE,         kPlain,            2, nullptr,       fill_fadvise64},
  {SYS_madvise,         IORING_OP_MADVISE,         kPlain,            1, nullptr,       fill_madvise},
  {SYS_accept,          IORING_OP_ACCEPT,          kPlain,           -1, accept_waits,  fill_accept},
  {SYS_accept4,         IORING_OP_ACCEPT,          kPlain,           -1, accept_waits,  fill_accept4},
  {SYS_socket,          IORING_OP_SOCKET,          kPlain,           -1, nullptr,       fill_socket},
  {SYS_shutdown,        IORING_OP_SHUTDOWN,        kPlain,           -1, nullptr,       fill_shutdown},
  {SYS_rename,          IORING_OP_RENAMEAT,        kPlain,           -1, nullptr,       fill_two_paths},
  {SYS_renameat,        IORING_OP_RENAMEAT,        kPlain,           -1, nullptr,       fill_two_paths_at},
  {SYS_renameat2,       IORING_OP_RENAMEAT,        kPlain,           -1, nullptr,       fill_renameat2},
  {SYS_unlink,          IORING_OP_UNLINKAT,        kPlain,           -1, nullptr,       fill_unlink},
  {SYS_unlinkat,        IORING_OP_UNLINKAT,        kPlain,           -1, nullptr,       fill_unlinkat},
  {SYS_rmdir,           IORING_OP_UNLINKAT,        kPlain,           -1, nullptr,       fill_rmdir},
  {SYS_mkdir,           IORING_OP_MKDIRAT,         kPlain,           -1, nullptr,       fill_mkdir},
  {SYS_mkdirat,         IORING_OP_MKDIRAT,         kPlain,           -1, nullptr,       fill_mkdirat},
  {SYS_symlink,         IORING_OP_SYMLINKAT,       kPlain,           -1, nullptr,       fill_symlink},
  {SYS_symlinkat,       IORING_OP_SYMLINKAT,       kPlain,           -1, nullptr,       fill_symlinkat},
  {SYS_link,            IORING_OP_LINKAT,          kPlain,           -1, nullptr,       fill_two_paths},
  {SYS_linkat,          IORING_OP_LINKAT,          kPlain,           -1, nullptr,       fill_linkat},
  {SYS_splice,          IORING_OP_SPLICE,          kPlain,            4, splice_values, fill_splice},
  {SYS_tee,             IORING_OP_TEE,             kPlain,            2, nullptr,       fill_tee},
  {SYS_epoll_ctl,       IORING_OP_EPOLL_CTL,       kPlain,           -1, nullptr,       fill_epoll_ctl},
  {SYS_nanosleep,       IORING_OP_TIMEOUT,         kTimer,           -1, sleep_time,    fill_nanosleep},
  {SYS_clock_nanosleep, IORING_OP_TIMEOUT,         kTimer,           -1, clock_sleep,   fill_clock_nanosleep},
};
// clang-format on

namespace {

// Every row filled, each call once, transfers with a shape and only they.
constexpr bool rows_are_sound() {
  if (kUringCalls[0].opcode != IORING_OP_NOP) return false;
  bool seen[kUringCallOfSize] = {};
  for (size_t i = 0; i < std::size(kUringCalls); ++i) {
    const UringCall& c = kUringCalls[i];
    if (!c.fill) return false;
    const bool transfer = c.completion.fix == RingOp::Fix::Transfer;
    if (transfer != (c.completion.shape != S::None) || transfer != (c.completion.dir != Dir::None))
      return false;
    if (i == 0) continue;
    if (c.nr < 0 || c.nr >= static_cast<int>(kUringCallOfSize) || seen[c.nr]) return false;
    seen[c.nr] = true;
  }
  return std::size(kUringCalls) <= UINT8_MAX;
}
static_assert(rows_are_sound(),
              "kUringCalls: a row without a fill, a call twice, or a transfer without a shape");

constexpr std::array<uint8_t, kUringCallOfSize> index_by_number() {
  std::array<uint8_t, kUringCallOfSize> of{};
  for (size_t i = 1; i < std::size(kUringCalls); ++i) of[kUringCalls[i].nr] = static_cast<uint8_t>(i);
  return of;
}

}  // namespace

constexpr std::array<uint8_t, kUringCallOfSize> kUringCallOf = index_by_number();

std::span<const UringCall> uring_calls() {
  return kUringCalls;
}

namespace {

// After a completion: transfers cut short, signals.

// Total length of an iovec array the kernel has just accepted.
uint64_t iov_total(const iovec* iov, long n) {
  uint64_t t = 0;
  for (long i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// The original iovec array of a vector transfer, and its length.
void original_iov(const Completion& c, const long* a, const iovec** iov, long* n) {
  if (c.shape == S::Msg) {
    const auto* m = ptr<const msghdr>(a[1]);
    *iov = m->msg_iov;
    *n = static_cast<long>(m->msg_iovlen);
  } else {
    *iov = ptr<const iovec>(a[1]);
    *n = a[2];
  }
}

uint64_t wanted_bytes(const Completion& c, const long* a) {
  if (!c.vector()) return static_cast<uint64_t>(a[2]);
  const iovec* iov;
  long n;
  original_iov(c, a, &iov, &n);
  return iov_total(iov, n);
}

// Sets op->rest_iov (and rest_msg for sendmsg) to what is left after done bytes.
void advance_vector(const Completion& c, const long* a, RingOp* op) {
  const iovec* iov;
  long n;
  original_iov(c, a, &iov, &n);
  auto rest = std::make_unique<std::vector<iovec>>();
  uint64_t skip = op->done;
  for (long i = 0; i < n; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    rest->push_back({static_cast<char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip});
    skip = 0;
  }
  if (c.shape == S::Msg) {
    // Ancillary data went with the first part, as one sendmsg would send it.
    auto m = std::make_unique<msghdr>(*ptr<const msghdr>(a[1]));
    m->msg_iov = rest->data();
    m->msg_iovlen = rest->size();
    m->msg_control = nullptr;
    m->msg_controllen = 0;
    op->rest_msg = std::move(m);
  }
  op->rest_iov = std::move(rest);
}

// Whether a transfer cut short goes on: decided once per entry, on the
// first short or would-block result, from what the descriptor is.
bool continues_after_short(Dir dir, RingOp* op, long fd) {
  if (op->fd_kind == RingOp::FdKind::Unknown) op->fd_kind = classify_fd(fd);
  switch (op->fd_kind) {
    case RingOp::FdKind::Seekable:
      // A file ends short only at its end or on an error: a second,
      // waiting attempt tells which.
      return op->mode == RingOp::Mode::Nowait;
    case RingOp::FdKind::BlockingStream:
      return dir == Dir::Out;  // a blocking write waits for room for all of it
    default:
      return false;  // reads of streams return what is there; O_NONBLOCK stops
  }
}

// A write that fails with -EPIPE raises SIGPIPE (-EFBIG: SIGXFSZ) in the
// thread that ran it.  Under SQPOLL that is the kernel's submission thread,
// where the signal is lost; and io_uring's sends never raise SIGPIPE at all
// (it adds MSG_NOSIGNAL), where the syscall does unless asked not to.
bool signal_missed(const Completion& c, const long* a, int res, bool sqpoll) {
  if (res != -EPIPE && res != -EFBIG) return false;
  // A write that would pass RLIMIT_FSIZE runs in io_uring's workers on
  // filesystems that cannot start it without blocking (ext4, tmpfs), and
  // they block every signal.
  if (sqpoll || res == -EFBIG) return true;
  return c.socket() && !(a[c.msg_flags_arg()] & MSG_NOSIGNAL);
}

}  // namespace

RingOp::FdKind FdKinds::of(long fd) {
  for (unsigned i = 0; i < n_; ++i)
    if (fd_[i] == fd) return kind_[i];
  const RingOp::FdKind k = classify_fd(fd);
  const unsigned i = n_ < kSlots ? n_++ : static_cast<unsigned>(fd) % kSlots;
  fd_[i] = fd;
  kind_[i] = k;
  return k;
}

int probe_io_uring(OpSupport* out, std::string* error) {
  io_uring ring;
  int rc = io_uring_queue_init(8, &ring, 0);
  if (rc < 0) {
    *error = std::string("io_uring_setup failed: ") + std::strerror(-rc);
    return rc;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (!probe) {
    io_uring_queue_exit(&ring);
    *error = "io_uring has no opcode probe (kernel older than 5.6)";
    return -ENOSYS;
  }
  for (int o = 0; o < IORING_OP_LAST; ++o) out->op[o] = io_uring_opcode_supported(probe, o);
  io_uring_free_probe(probe);
  out->cur_pos = ring.features & IORING_FEAT_RW_CUR_POS;
  if (!(ring.features & IORING_FEAT_NODROP) || !(ring.features & IORING_FEAT_EXT_ARG)) {
    io_uring_queue_exit(&ring);
    *error = "io_uring lacks IORING_FEAT_NODROP or IORING_FEAT_EXT_ARG (kernel older than 5.11)";
    return -ENOSYS;
  }
  // The clocks of timeouts: an expired absolute BOOTTIME timeout completes
  // with -ETIME where it is understood, -EINVAL where it is not.
  if (out->has(IORING_OP_TIMEOUT)) {
    static __kernel_timespec zero{};
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_timeout(sqe, &zero, 0, IORING_TIMEOUT_ABS | IORING_TIMEOUT_BOOTTIME);
    io_uring_cqe* cqe;
    if (io_uring_submit_and_wait(&ring, 1) >= 0 && io_uring_peek_cqe(&ring, &cqe) == 0) {
      out->timeout_clocks = cqe->res == -ETIME;
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  io_uring_queue_exit(&ring);
  return 0;
}

void prep_wake_read(io_uring_sqe* sqe, int fd, uint64_t* value) {
  start_sqe(sqe, IORING_OP_READ);
  set(sqe, fd, addr_of(value), sizeof *value, 0);
}

Next finish(const flexsc_entry& e, RingOp* op, int res, bool sqpoll, long* ret, bool* reran) {
  switch (op->fix) {
    case RingOp::Fix::Plain:
      *ret = res;
      return Next::Done;
    case RingOp::Fix::Timer:
      *ret = res == -ETIME ? 0 : res;
      return Next::Done;
    case RingOp::Fix::Transfer:
      break;
  }
  const Completion& c = op->call->completion;
  const long* a = reinterpret_cast<const long*>(e.args);
  const long fd = static_cast<int>(a[0]);
  if (op->mode == RingOp::Mode::Nowait && (res == -EAGAIN || res == -EOPNOTSUPP)) {
    // Would block, or the file cannot try without blocking.  Only a
    // non-blocking stream makes the syscall return at once; io_uring
    // would wait on it.
    if (op->fd_kind == RingOp::FdKind::Unknown) op->fd_kind = classify_fd(fd);
    if (op->fd_kind == RingOp::FdKind::NonblockingStream) {
      if (res == -EOPNOTSUPP && !op->done) return Next::ToThreads;
      *ret = op->done ? static_cast<long>(op->done) : -EAGAIN;
      return Next::Done;
    }
    // A socket with a timeout: the syscall gives up after it, io_uring
    // would wait for ever.  Nothing moved yet: a syscall thread does it.
    if (op->fd_kind == RingOp::FdKind::BlockingStream && has_socket_timeout(fd, c.dir == Dir::Out)) {
      if (!op->done) return Next::ToThreads;
      *ret = static_cast<long>(op->done);
      return Next::Done;
    }
    op->mode = RingOp::Mode::Wait;
    return Next::Retry;
  }
  if (res < 0) {
    if (op->done) {
      *ret = static_cast<long>(op->done);
    } else if (c.dir == Dir::Out && signal_missed(c, a, res, sqpoll)) {
      // The caller runs the call again itself, and the kernel raises the
      // signal there (nothing was written: the call fails the same way).
      *ret = raw_syscall6(e.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      *reran = true;
    } else {
      *ret = res;
    }
    return Next::Done;
  }
  const uint64_t total = op->done + static_cast<uint64_t>(res);
  if (res == 0 || total >= wanted_bytes(c, a) || (c.socket() && c.dir == Dir::In) ||
      !continues_after_short(c.dir, op, fd)) {
    *ret = static_cast<long>(total);
    return Next::Done;
  }
  op->done = total;
  op->mode = RingOp::Mode::Wait;
  if (c.vector()) advance_vector(c, a, op);
  return Next::Retry;
}

}  // namespace flexsc::detail
