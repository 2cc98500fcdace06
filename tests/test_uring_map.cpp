// The io_uring mapping's table (lib/backends/uring/uring_map.*), without a
// runtime:
//   - every row the table has is taken with suitable arguments, and filled:
//     its SQE carries the row's opcode, something of the call's arguments,
//     and nothing of what the slot held before;
//   - numbers outside the table are left to syscall threads;
//   - an SQ slot reused by the kernel-facing path keeps nothing of its last
//     operation: a splice, then an openat and the owner's wake-up read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "backends/uring/uring_map.h"
#include "base/classify.h"
#include "test_util.h"

namespace {

using flexsc::detail::FdKinds;
using flexsc::detail::map_entry;
using flexsc::detail::OpSupport;
using flexsc::detail::prep_sqe;
using flexsc::detail::RingOp;
using flexsc::detail::UringCall;
using flexsc::test::Pipe;

flexsc_entry entry(long nr, std::vector<long> args, uint16_t flags = 0) {
  flexsc_entry e{};
  e.nr = static_cast<uint32_t>(nr);
  e.flags = flags;
  for (size_t i = 0; i < args.size(); ++i) e.args[i] = args[i];
  return e;
}

// A kernel that offers every operation and feature.
OpSupport everything() {
  OpSupport s;
  for (bool& o : s.op) o = true;
  s.cur_pos = s.timeout_clocks = true;
  return s;
}

std::string name_of(const UringCall& c) {
  const char* n = c.nr < 0 ? "FLEXSC_ENTRY_NOP" : flexsc::detail::syscall_name(c.nr);
  return n ? n : "syscall " + std::to_string(c.nr);
}

// A regular file, blocking: what the descriptor conditions want.
struct TempFile {
  int fd = -1;
  TempFile() {
    char path[] = "/tmp/flexsc-uring-map-XXXXXX";
    fd = mkostemp(path, O_CLOEXEC);
    unlink(path);
  }
  ~TempFile() { close(fd); }
};

constexpr uint8_t kPoison = 0xA5;

// For every row: arguments the table takes it with, and an SQE that holds
// the row's opcode and the fill's work, whatever the slot held before.
// Fails for a row no argument set here makes the table take (add one), a
// row whose fill forgets a field it should overwrite, or a fill that
// writes another opcode than the one the probe was asked about.
TEST(UringMap, EveryRowIsTakenAndFilled) {
  TempFile file;
  ASSERT_GE(file.fd, 0);
  const timespec ts{0, 1};
  const long f = file.fd, t = reinterpret_cast<long>(&ts);
  const std::vector<std::vector<long>> candidates = {
      {f, 8, 8, 0, 0, 0},                // descriptor, pointer or count, length: most calls
      {f, 0, f, 0, 8, 0},                // splice: no offset pointers
      {t, 0, 0, 0, 0, 0},                // nanosleep
      {CLOCK_MONOTONIC, 0, t, 0, 0, 0},  // clock_nanosleep
  };
  const OpSupport s = everything();
  const std::span<const UringCall> rows = flexsc::detail::uring_calls();
  ASSERT_GT(rows.size(), 40u);
  for (const UringCall& row : rows) {
    SCOPED_TRACE(name_of(row));
    ASSERT_NE(row.fill, nullptr);
    const uint16_t flags = row.nr < 0 ? FLEXSC_ENTRY_NOP : 0;
    bool taken = false;
    for (const std::vector<long>& args : candidates) {
      const flexsc_entry e = entry(row.nr, args, flags);
      ASSERT_EQ(flexsc::detail::uring_call(e), &row) << "the index by number does not lead to this row";
      RingOp op;
      FdKinds kinds;
      if (!map_entry(s, e, &op, &kinds)) continue;
      taken = true;
      EXPECT_EQ(op.call, &row);
      EXPECT_EQ(op.fix, row.completion.fix);
      // A transfer is filled in its first attempt's mode, and waiting.
      for (const RingOp::Mode mode : {op.mode, RingOp::Mode::Wait}) {
        op.mode = mode;
        io_uring_sqe poisoned, clean, bare{};
        std::memset(&poisoned, kPoison, sizeof poisoned);
        std::memset(&clean, 0, sizeof clean);
        prep_sqe(e, op, &poisoned);
        prep_sqe(e, op, &clean);
        EXPECT_EQ(poisoned.opcode, row.opcode) << "the fill wrote another opcode";
        EXPECT_EQ(std::memcmp(&poisoned, &clean, sizeof clean), 0)
            << "a field of the slot's previous operation survived the fill";
        EXPECT_EQ(poisoned.user_data, 0u) << "user_data is the caller's to set";
        bare.opcode = row.opcode;
        EXPECT_NE(std::memcmp(&clean, &bare, sizeof bare), 0) << "the fill wrote nothing";
      }
      break;
    }
    EXPECT_TRUE(taken) << "no argument set in this test makes the table take the row: add one";
  }
}

TEST(UringMap, CallsOutsideTheTableAreLeftToThreads) {
  const OpSupport s = everything();
  // connect is left out on purpose (see the table); the others have no
  // io_uring operation; the last ones are past every syscall number.
  for (const long nr :
       {long{SYS_connect}, long{SYS_getppid}, long{SYS_ioctl}, long{SYS_poll}, 511L, 4096L, -1L}) {
    SCOPED_TRACE(nr);
    const flexsc_entry e = entry(nr, {3, 8, 8, 0, 0, 0});
    RingOp op;
    FdKinds kinds;
    EXPECT_EQ(flexsc::detail::uring_call(e), nullptr);
    EXPECT_FALSE(map_entry(s, e, &op, &kinds));
  }
  // And a call the kernel's probe does not list.
  OpSupport no_read = s;
  no_read.op[IORING_OP_READ] = false;
  char byte;
  RingOp op;
  FdKinds kinds;
  EXPECT_FALSE(map_entry(no_read, entry(SYS_read, {0, reinterpret_cast<long>(&byte), 1}), &op, &kinds));
}

// A ring of one SQ slot, used as the backend uses its rings: SQEs are
// taken by index, not through io_uring_get_sqe (which newer liburing
// clears).
class OneSlotRing {
 public:
  OneSlotRing() { rc_ = io_uring_queue_init(1, &ring_, 0); }
  ~OneSlotRing() {
    if (rc_ == 0) io_uring_queue_exit(&ring_);
  }
  int rc() const { return rc_; }
  unsigned slots() const { return ring_.sq.ring_entries; }

  io_uring_sqe* take() {
    io_uring_sq& sq = ring_.sq;
    return &sq.sqes[sq.sqe_tail++ & sq.ring_mask];
  }
  int submit_and_reap(io_uring_sqe* sqe) {
    io_uring_sqe_set_data64(sqe, 1);
    io_uring_cqe* cqe;
    if (io_uring_submit_and_wait(&ring_, 1) < 0 || io_uring_peek_cqe(&ring_, &cqe) != 0) return INT32_MIN;
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return res;
  }
  // An entry through the table, as the backend submits it.
  long run(const OpSupport& s, const flexsc_entry& e) {
    RingOp op;
    FdKinds kinds;
    if (!map_entry(s, e, &op, &kinds)) return INT32_MIN;
    io_uring_sqe* sqe = take();
    prep_sqe(e, op, sqe);
    return submit_and_reap(sqe);
  }

 private:
  io_uring ring_{};
  int rc_;
};

// A splice leaves its input descriptor in splice_fd_in, which an openat
// reads as file_index (open into that fixed-file slot: -EINVAL with
// O_CLOEXEC), and SPLICE_F_MOVE in the flags a read takes as RWF_HIPRI
// (refused on a ring without IOPOLL).  Filled into the same slot next,
// neither notices.
TEST(UringMap, ASlotKeepsNothingOfItsLastOperation) {
  OpSupport s;
  std::string why;
  if (flexsc::detail::probe_io_uring(&s, &why) < 0) GTEST_SKIP() << why;
  if (!s.has(IORING_OP_SPLICE) || !s.has(IORING_OP_OPENAT) || !s.has(IORING_OP_READ))
    GTEST_SKIP() << "the kernel's io_uring lacks splice, openat or read";
  OneSlotRing ring;
  ASSERT_EQ(ring.rc(), 0) << std::strerror(-ring.rc());
  ASSERT_EQ(ring.slots(), 1u) << "every SQE must land in the same slot";
  Pipe in, out;
  auto splice_four = [&] {
    ASSERT_EQ(write(in.w, "data", 4), 4);
    EXPECT_EQ(ring.run(s, entry(SYS_splice, {in.r, 0, out.w, 0, 4, SPLICE_F_MOVE})), 4);
    char got[4];
    ASSERT_EQ(read(out.r, got, sizeof got), 4);
  };

  splice_four();
  const long fd = ring.run(
      s, entry(SYS_openat, {AT_FDCWD, reinterpret_cast<long>("/dev/null"), O_RDONLY | O_CLOEXEC, 0}));
  ASSERT_GE(fd, 0) << "openat after a splice in its slot: " << std::strerror(static_cast<int>(-fd));
  EXPECT_EQ(fcntl(static_cast<int>(fd), F_GETFD), FD_CLOEXEC);
  close(static_cast<int>(fd));

  splice_four();
  const int efd = eventfd(1, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  uint64_t value = 0;
  io_uring_sqe* sqe = ring.take();
  flexsc::detail::prep_wake_read(sqe, efd, &value);
  const int res = ring.submit_and_reap(sqe);
  EXPECT_EQ(res, 8) << "wake-up read after a splice in its slot: " << std::strerror(-res);
  EXPECT_EQ(value, 1u);
  close(efd);
}

}  // namespace
