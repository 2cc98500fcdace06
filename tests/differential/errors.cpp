// Error paths, and numbers the table does not know.
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void error_paths(Run& r) {
  Fixture& f = r.fx;
  char buf[16];
  r.sys("syscall 1000", 1000);
  r.sys("syscall -1", -1);
  r.sys("syscall 0x7fffffff", 0x7fffffff);
  r.sys("syscall 400 (a gap in the table)", 400);
  r.sys("tuxcall (not implemented)", SYS_tuxcall);
  r.sys("getppid with high bits set in the number", (1L << 32) | SYS_getppid);
  r.sys("x32 getppid", 0x40000000L | SYS_getppid);
  constexpr long kFchmodat2 = 452, kCachestat = 451;  // newer than the headers the table came from
  r.sys("fchmodat2 (unknown to the table)", kFchmodat2, AT_FDCWD, "a.txt", 0640, 0);
  r.sys("fchmodat2 bad flags", kFchmodat2, AT_FDCWD, "a.txt", 0640, 0x1);
  struct {
    uint64_t off, len;
  } range{0, 0};
  uint64_t cs[5] = {};
  r.sys("cachestat (unknown to the table)", kCachestat, f.fd_a, &range, cs, 0);
  r.log("cachestat", fmt("cached=%lu dirty+writeback=%lu", cs[0], cs[1] + cs[2]));
  r.sys("read bad fd", SYS_read, -1, buf, 1);
  r.sys("write fd 99999", SYS_write, 99999, buf, 1);
  r.sys("read into NULL page", SYS_read, f.fd_a, kBadPtr, 4);
  r.sys("write from a kernel address", SYS_write, f.pipe_w, 0xffff800000000000L, 4);
  r.sys("openat missing", SYS_openat, AT_FDCWD, "missing", O_RDONLY);
  r.sys("openat O_EXCL existing", SYS_openat, AT_FDCWD, "a.txt", O_RDWR | O_CREAT | O_EXCL, 0600);
  r.sys("openat relative to a file fd", SYS_openat, f.fd_a, "x", O_RDONLY);
  r.sys("openat bad dirfd", SYS_openat, -5, "x", O_RDONLY);
  r.sys("openat bad path pointer", SYS_openat, AT_FDCWD, kBadPtr, O_RDONLY);
  r.sys("openat O_TMPFILE without write", SYS_openat, AT_FDCWD, ".", O_TMPFILE | O_RDONLY, 0600);
  r.sys("openat O_CREAT|O_DIRECTORY", SYS_openat, AT_FDCWD, "newdir", O_CREAT | O_DIRECTORY | O_RDWR, 0600);
  r.sys("openat write a directory", SYS_openat, AT_FDCWD, "sub", O_WRONLY);
  const std::string long_path(5000, 'p');
  r.sys("openat path too long", SYS_openat, AT_FDCWD, long_path.c_str(), O_RDONLY);
  r.sys("lseek bad whence", SYS_lseek, f.fd_a, 0, 99);
  r.sys("lseek negative", SYS_lseek, f.fd_a, -10, SEEK_SET);
  r.sys("mkdir bad path pointer", SYS_mkdir, kBadPtr, 0755);
  r.sys("ioctl unknown request", SYS_ioctl, f.fd_a, 0xdeadbeef, 0);
  r.sys("writev negative count", SYS_writev, f.fd_a, buf, -1);
  r.sys("readv bad iovec pointer", SYS_readv, f.fd_a, kBadPtr, 1);
  r.sys("fcntl bad fd", SYS_fcntl, -1, F_GETFD);
  r.sys("lseek after the errors", SYS_lseek, f.fd_a, 0, SEEK_CUR);
}

const Case kCases[] = {
    {"error_paths", error_paths},
};
const bool kRegistered = register_cases(Group::kErrors, kCases);

}  // namespace
}  // namespace flexsc::test::diff
