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
  struct iovec local{to, n}, remote{ptr<void>(from), n};
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
  struct timeval tv{};
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

// Total length of an iovec array the kernel has just accepted.
uint64_t iov_total(const iovec* iov, long n) {
  uint64_t t = 0;
  for (long i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// The original iovec array of a vector transfer, and its length.
void original_iov(const flexsc_entry& e, const iovec** iov, long* n) {
  const long* a = reinterpret_cast<const long*>(e.args);
  if (e.nr == SYS_sendmsg || e.nr == SYS_recvmsg) {
    const auto* m = ptr<const msghdr>(a[1]);
    *iov = m->msg_iov;
    *n = static_cast<long>(m->msg_iovlen);
  } else {
    *iov = ptr<const iovec>(a[1]);
    *n = a[2];
  }
}

uint64_t wanted_bytes(const flexsc_entry& e, const TransferInfo& t) {
  if (!t.vector) return static_cast<uint64_t>(e.args[2]);
  const iovec* iov;
  long n;
  original_iov(e, &iov, &n);
  return iov_total(iov, n);
}

// Sets op->rest_iov (and rest_msg for sendmsg) to what is left after done bytes.
void advance_vector(const flexsc_entry& e, RingOp* op) {
  const iovec* iov;
  long n;
  original_iov(e, &iov, &n);
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
  if (e.nr == SYS_sendmsg) {
    // Ancillary data went with the first part, as one sendmsg would send it.
    auto m = std::make_unique<msghdr>(*ptr<const msghdr>(e.args[1]));
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
bool signal_missed(const flexsc_entry& e, const TransferInfo& t, int res, bool sqpoll) {
  if (res != -EPIPE && res != -EFBIG) return false;
  // A write that would pass RLIMIT_FSIZE runs in io_uring's workers on
  // filesystems that cannot start it without blocking (ext4, tmpfs), and
  // they block every signal.
  if (sqpoll || res == -EFBIG) return true;
  const long flags = e.nr == SYS_sendmsg ? e.args[2] : e.args[3];
  return t.socket && !(flags & MSG_NOSIGNAL);
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

// MSG_WAITALL on a blocking socket: a first attempt without waiting would
// return what is there; waiting, io_uring itself receives until all came
// (but knows no SO_RCVTIMEO: such a socket goes to syscall threads).
bool wait_for_all(RingOp* op, FdKinds* kinds, long fd) {
  op->fd_kind = kinds->of(fd);
  if (op->fd_kind != RingOp::FdKind::BlockingStream) return true;
  op->mode = RingOp::Mode::Wait;
  return !has_socket_timeout(fd, false);
}

// A positioned transfer goes to io_uring only where the syscall accepts an
// offset: io_uring ignores it on a stream, where the syscall fails with -ESPIPE.
bool seekable(RingOp* op, FdKinds* kinds, long fd) {
  if (kinds->of(static_cast<int>(fd)) != RingOp::FdKind::Seekable) return false;
  op->fd_kind = RingOp::FdKind::Seekable;
  return true;
}

bool map_call(const OpSupport& s, const flexsc_entry& e, RingOp* op, FdKinds* kinds) {
  const long* a = reinterpret_cast<const long*>(e.args);
  switch (e.nr) {
    case SYS_readv:
    case SYS_writev:
      start_transfer(e, op);
      return s.cur_pos && s.has(e.nr == SYS_readv ? IORING_OP_READV : IORING_OP_WRITEV) && fits_u32(a[2]);
    case SYS_preadv:
    case SYS_pwritev:
      start_transfer(e, op);
      return s.has(e.nr == SYS_preadv ? IORING_OP_READV : IORING_OP_WRITEV) && fits_u32(a[2]) && a[3] >= 0 &&
             seekable(op, kinds, a[0]);
    case SYS_preadv2:
    case SYS_pwritev2:
      start_transfer(e, op);
      // Flags io_uring takes as the syscall does (it refuses RWF_HIPRI
      // without IOPOLL, for one); others go to syscall threads.
      return s.has(e.nr == SYS_preadv2 ? IORING_OP_READV : IORING_OP_WRITEV) && fits_u32(a[2]) &&
             (a[3] >= 0 || (a[3] == -1 && s.cur_pos)) &&
             (a[5] & ~long{RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND}) == 0 &&
             (a[3] == -1 || seekable(op, kinds, a[0]));
    case SYS_recvmsg:
      start_transfer(e, op);
      if ((a[2] & MSG_WAITALL) && !wait_for_all(op, kinds, a[0])) return false;
      return s.has(IORING_OP_RECVMSG);
    case SYS_sendmsg:
      start_transfer(e, op);
      return s.has(IORING_OP_SENDMSG);
    case SYS_open:
    case SYS_openat:
    case SYS_creat:
      return s.has(IORING_OP_OPENAT);
    case SYS_openat2:
      return s.has(IORING_OP_OPENAT2);
    case SYS_close:
      return s.has(IORING_OP_CLOSE);
    case SYS_statx:
      return s.has(IORING_OP_STATX) && a[1] != 0;  // a NULL path: newer kernels only
    case SYS_fsync:
    case SYS_fdatasync:
      return s.has(IORING_OP_FSYNC);
    case SYS_sync_file_range:
      return s.has(IORING_OP_SYNC_FILE_RANGE) && fits_u32(a[2]);
    case SYS_fallocate:
      return s.has(IORING_OP_FALLOCATE);
    case SYS_fadvise64:
      return s.has(IORING_OP_FADVISE) && fits_u32(a[2]);
    case SYS_madvise:
      return s.has(IORING_OP_MADVISE) && fits_u32(a[1]);
    case SYS_accept:
    case SYS_accept4:
      // io_uring waits even on a non-blocking socket; such an accept never
      // blocks, so a syscall thread answers it at once.
      return s.has(IORING_OP_ACCEPT) && !fd_is_nonblocking(a[0]) && !has_socket_timeout(a[0], false);
    // connect is left to syscall threads: a TCP connect that fails through
    // io_uring leaves the socket bound to its local address, where the
    // syscall leaves it unbound.
    case SYS_socket:
      return s.has(IORING_OP_SOCKET);
    case SYS_shutdown:
      return s.has(IORING_OP_SHUTDOWN);
    case SYS_rename:
    case SYS_renameat:
    case SYS_renameat2:
      return s.has(IORING_OP_RENAMEAT);
    case SYS_unlink:
    case SYS_unlinkat:
    case SYS_rmdir:
      return s.has(IORING_OP_UNLINKAT);
    case SYS_mkdir:
    case SYS_mkdirat:
      return s.has(IORING_OP_MKDIRAT);
    case SYS_symlink:
    case SYS_symlinkat:
      return s.has(IORING_OP_SYMLINKAT);
    case SYS_link:
    case SYS_linkat:
      return s.has(IORING_OP_LINKAT);
    case SYS_splice:
      // Offsets are pointers the syscall updates; io_uring takes values.
      return s.has(IORING_OP_SPLICE) && a[1] == 0 && a[3] == 0 && fits_u32(a[4]);
    case SYS_tee:
      return s.has(IORING_OP_TEE) && fits_u32(a[2]);
    case SYS_epoll_ctl:
      return s.has(IORING_OP_EPOLL_CTL);
    case SYS_nanosleep:
      op->fix = RingOp::Fix::Timer;
      return s.has(IORING_OP_TIMEOUT) && copy_timespec(a[0], &op->ts);
    case SYS_clock_nanosleep: {
      op->fix = RingOp::Fix::Timer;
      const bool clock_ok = a[0] == CLOCK_MONOTONIC ||
                            ((a[0] == CLOCK_REALTIME || a[0] == CLOCK_BOOTTIME) && s.timeout_clocks);
      return s.has(IORING_OP_TIMEOUT) && clock_ok && (a[1] == 0 || a[1] == TIMER_ABSTIME) &&
             copy_timespec(a[2], &op->ts);
    }
    default:
      return false;
  }
}

void prep_call_sqe(const flexsc_entry& e, const RingOp& op, io_uring_sqe* sqe) {
  if (e.flags & FLEXSC_ENTRY_NOP) {
    io_uring_prep_nop(sqe);
    return;
  }
  // Each case computes only what it uses.
  const long* a = reinterpret_cast<const long*>(e.args);
  const int fd = static_cast<int>(a[0]);
  const bool nowait = op.mode == RingOp::Mode::Nowait;
  // The first attempt of a read or write that may meet a stream must not wait.
  const int nowait_rw = nowait ? RWF_NOWAIT : 0;
  const uint64_t done = op.done;
  auto iov = [&] { return op.rest_iov ? op.rest_iov->data() : ptr<const iovec>(a[1]); };
  auto iovcnt = [&] {
    return op.rest_iov ? static_cast<unsigned>(op.rest_iov->size()) : static_cast<unsigned>(a[2]);
  };
  switch (e.nr) {
    case SYS_readv:
      io_uring_prep_readv(sqe, fd, iov(), iovcnt(), -1);
      sqe->rw_flags = nowait_rw;
      break;
    case SYS_writev:
      io_uring_prep_writev(sqe, fd, iov(), iovcnt(), -1);
      sqe->rw_flags = nowait_rw;
      break;
    case SYS_preadv:
    case SYS_preadv2:
    case SYS_pwritev:
    case SYS_pwritev2: {
      const uint64_t off = a[3] == -1 ? UINT64_MAX : static_cast<uint64_t>(a[3]) + done;
      if (e.nr == SYS_preadv || e.nr == SYS_preadv2) io_uring_prep_readv(sqe, fd, iov(), iovcnt(), off);
      else io_uring_prep_writev(sqe, fd, iov(), iovcnt(), off);
      if (e.nr == SYS_preadv2 || e.nr == SYS_pwritev2) sqe->rw_flags = static_cast<int>(a[5]) | nowait_rw;
      break;
    }
    case SYS_recvmsg:
      io_uring_prep_recvmsg(sqe, fd, ptr<msghdr>(a[1]), static_cast<unsigned>(a[2]) | (nowait ? MSG_DONTWAIT : 0));
      break;
    case SYS_sendmsg:
      io_uring_prep_sendmsg(sqe, fd, op.rest_msg ? op.rest_msg.get() : ptr<const msghdr>(a[1]),
                            static_cast<unsigned>(a[2]) | (nowait ? MSG_DONTWAIT : MSG_WAITALL));
      break;
    case SYS_open:
      io_uring_prep_openat(sqe, AT_FDCWD, ptr<const char>(a[0]), static_cast<int>(a[1]), static_cast<mode_t>(a[2]));
      break;
    case SYS_creat:
      io_uring_prep_openat(sqe, AT_FDCWD, ptr<const char>(a[0]), O_CREAT | O_WRONLY | O_TRUNC,
                           static_cast<mode_t>(a[1]));
      break;
    case SYS_openat:
      io_uring_prep_openat(sqe, fd, ptr<const char>(a[1]), static_cast<int>(a[2]), static_cast<mode_t>(a[3]));
      break;
    case SYS_openat2:
      io_uring_prep_openat2(sqe, fd, ptr<const char>(a[1]), ptr<open_how>(a[2]));
      sqe->len = static_cast<uint32_t>(a[3]);  // the caller's size: the kernel checks it
      break;
    case SYS_close:
      io_uring_prep_close(sqe, fd);
      break;
    case SYS_statx:
      io_uring_prep_statx(sqe, fd, ptr<const char>(a[1]), static_cast<int>(a[2]), static_cast<unsigned>(a[3]),
                          ptr<struct statx>(a[4]));
      break;
    case SYS_fsync:
      io_uring_prep_fsync(sqe, fd, 0);
      break;
    case SYS_fdatasync:
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      break;
    case SYS_sync_file_range:
      io_uring_prep_sync_file_range(sqe, fd, static_cast<unsigned>(a[2]), a[1], static_cast<int>(a[3]));
      break;
    case SYS_fallocate:
      io_uring_prep_fallocate(sqe, fd, static_cast<int>(a[1]), a[2], a[3]);
      break;
    case SYS_fadvise64:
      io_uring_prep_fadvise(sqe, fd, a[1], a[2], static_cast<int>(a[3]));
      break;
    case SYS_madvise:
      io_uring_prep_madvise(sqe, ptr<void>(a[0]), a[1], static_cast<int>(a[2]));
      break;
    case SYS_accept:
      io_uring_prep_accept(sqe, fd, ptr<sockaddr>(a[1]), ptr<socklen_t>(a[2]), 0);
      break;
    case SYS_accept4:
      io_uring_prep_accept(sqe, fd, ptr<sockaddr>(a[1]), ptr<socklen_t>(a[2]), static_cast<int>(a[3]));
      break;
    case SYS_socket:
      io_uring_prep_socket(sqe, fd, static_cast<int>(a[1]), static_cast<int>(a[2]), 0);
      break;
    case SYS_shutdown:
      io_uring_prep_shutdown(sqe, fd, static_cast<int>(a[1]));
      break;
    case SYS_rename:
      io_uring_prep_renameat(sqe, AT_FDCWD, ptr<const char>(a[0]), AT_FDCWD, ptr<const char>(a[1]), 0);
      break;
    case SYS_renameat:
    case SYS_renameat2:
      io_uring_prep_renameat(sqe, fd, ptr<const char>(a[1]), static_cast<int>(a[2]), ptr<const char>(a[3]),
                             e.nr == SYS_renameat2 ? static_cast<unsigned>(a[4]) : 0);
      break;
    case SYS_unlink:
      io_uring_prep_unlinkat(sqe, AT_FDCWD, ptr<const char>(a[0]), 0);
      break;
    case SYS_rmdir:
      io_uring_prep_unlinkat(sqe, AT_FDCWD, ptr<const char>(a[0]), AT_REMOVEDIR);
      break;
    case SYS_unlinkat:
      io_uring_prep_unlinkat(sqe, fd, ptr<const char>(a[1]), static_cast<int>(a[2]));
      break;
    case SYS_mkdir:
      io_uring_prep_mkdirat(sqe, AT_FDCWD, ptr<const char>(a[0]), static_cast<mode_t>(a[1]));
      break;
    case SYS_mkdirat:
      io_uring_prep_mkdirat(sqe, fd, ptr<const char>(a[1]), static_cast<mode_t>(a[2]));
      break;
    case SYS_symlink:
      io_uring_prep_symlinkat(sqe, ptr<const char>(a[0]), AT_FDCWD, ptr<const char>(a[1]));
      break;
    case SYS_symlinkat:
      io_uring_prep_symlinkat(sqe, ptr<const char>(a[0]), static_cast<int>(a[1]), ptr<const char>(a[2]));
      break;
    case SYS_link:
      io_uring_prep_linkat(sqe, AT_FDCWD, ptr<const char>(a[0]), AT_FDCWD, ptr<const char>(a[1]), 0);
      break;
    case SYS_linkat:
      io_uring_prep_linkat(sqe, fd, ptr<const char>(a[1]), static_cast<int>(a[2]), ptr<const char>(a[3]),
                           static_cast<int>(a[4]));
      break;
    case SYS_splice:
      io_uring_prep_splice(sqe, fd, -1, static_cast<int>(a[2]), -1, static_cast<unsigned>(a[4]),
                           static_cast<unsigned>(a[5]));
      break;
    case SYS_tee:
      io_uring_prep_tee(sqe, fd, static_cast<int>(a[1]), static_cast<unsigned>(a[2]), static_cast<unsigned>(a[3]));
      break;
    case SYS_epoll_ctl:
      io_uring_prep_epoll_ctl(sqe, fd, static_cast<int>(a[2]), static_cast<int>(a[1]), ptr<epoll_event>(a[3]));
      break;
    case SYS_nanosleep:
      io_uring_prep_timeout(sqe, const_cast<__kernel_timespec*>(&op.ts), 0, 0);
      break;
    case SYS_clock_nanosleep: {
      unsigned flags = a[1] == TIMER_ABSTIME ? IORING_TIMEOUT_ABS : 0;
      if (a[0] == CLOCK_REALTIME) flags |= IORING_TIMEOUT_REALTIME;
      if (a[0] == CLOCK_BOOTTIME) flags |= IORING_TIMEOUT_BOOTTIME;
      io_uring_prep_timeout(sqe, const_cast<__kernel_timespec*>(&op.ts), 0, flags);
      break;
    }
  }
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
  const TransferInfo t = transfer_info(e);
  const long fd = static_cast<int>(e.args[0]);
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
    if (op->fd_kind == RingOp::FdKind::BlockingStream && has_socket_timeout(fd, t.dir == Dir::Out)) {
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
    } else if (t.dir == Dir::Out && signal_missed(e, t, res, sqpoll)) {
      // The caller runs the call again itself, and the kernel raises the
      // signal there (nothing was written: the call fails the same way).
      const long* a = reinterpret_cast<const long*>(e.args);
      *ret = raw_syscall6(e.nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      *reran = true;
    } else {
      *ret = res;
    }
    return Next::Done;
  }
  const uint64_t total = op->done + static_cast<uint64_t>(res);
  if (res == 0 || total >= wanted_bytes(e, t) || (t.socket && t.dir == Dir::In) ||
      !continues_after_short(t.dir, op, fd)) {
    *ret = static_cast<long>(total);
    return Next::Done;
  }
  op->done = total;
  op->mode = RingOp::Mode::Wait;
  if (t.vector) advance_vector(e, op);
  return Next::Retry;
}

}  // namespace flexsc::detail
