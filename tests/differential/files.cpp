// Files: reads and writes, metadata, sizes and syncing, the descriptor table,
// copies between descriptors.
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/falloc.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void file_read_write(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  const long fd = r.sys("openat a.txt O_RDWR", SYS_openat, AT_FDCWD, "a.txt", O_RDWR | O_CLOEXEC);
  long n = r.sys("read 5", SYS_read, fd, buf, 5);
  r.log("read data", contents(buf, n));
  r.sys("lseek CUR", SYS_lseek, fd, 0, SEEK_CUR);
  r.sys("write", SYS_write, fd, "-BETA", 5);
  r.sys("lseek END", SYS_lseek, fd, 0, SEEK_END);
  r.sys("lseek SET 6", SYS_lseek, fd, 6, SEEK_SET);
  n = r.sys("pread64 fixture fd", SYS_pread64, f.fd_a, buf, 12, 0);
  r.log("pread64 data", contents(buf, n));
  r.sys("pwrite64 at 2", SYS_pwrite64, fd, "XX", 2, 2);
  char v1[4] = {}, v2[6] = {};
  iovec in[2] = {{v1, sizeof v1}, {v2, sizeof v2}};
  n = r.sys("readv", SYS_readv, fd, in, 2);
  r.log("readv data", quote(v1, sizeof v1) + quote(v2, sizeof v2));
  iovec out[2] = {{const_cast<char*>("<<"), 2}, {const_cast<char*>(">>"), 2}};
  r.sys("writev", SYS_writev, fd, out, 2);
  n = r.sys("preadv at 0", SYS_preadv, fd, in, 2, 0, 0);
  r.log("preadv data", quote(v1, sizeof v1) + quote(v2, sizeof v2));
  r.sys("pwritev at 20", SYS_pwritev, fd, out, 2, 20, 0);
  n = r.sys("preadv2 at current position", SYS_preadv2, fd, in, 1, -1, 0, 0);
  r.log("preadv2 data", contents(v1, n));
  r.sys("pwritev2 RWF_APPEND", SYS_pwritev2, fd, out, 2, -1, 0, RWF_APPEND);
  r.sys("preadv2 unknown flag", SYS_preadv2, fd, in, 2, 0, 0, 0x40000000);
  r.sys("lseek after", SYS_lseek, fd, 0, SEEK_CUR);
  r.sys("read 0 bytes", SYS_read, fd, buf, 0);
  r.sys("read from a directory", SYS_read, f.fd_dir, buf, 8);
  r.sys("write to O_RDONLY fd", SYS_write, f.fd_b, "x", 1);
  const long wo = r.sys("openat empty O_WRONLY", SYS_openat, AT_FDCWD, "empty", O_WRONLY);
  r.sys("read from O_WRONLY fd", SYS_read, wo, buf, 4);
  const long ap = r.sys("openat sub/c.txt O_APPEND", SYS_openat, AT_FDCWD, "sub/c.txt", O_WRONLY | O_APPEND);
  r.sys("write O_APPEND", SYS_write, ap, "more\n", 5);
  r.sys("lseek after O_APPEND write", SYS_lseek, ap, 0, SEEK_CUR);
  const long ex =
      r.sys("openat O_CREAT|O_EXCL", SYS_openat, AT_FDCWD, "created", O_RDWR | O_CREAT | O_EXCL, 0640);
  r.sys("write created", SYS_write, ex, "new\n", 4);
  const long old = r.sys("open (legacy) sub/c.txt", SYS_open, "sub/c.txt", O_RDONLY, 0);
  n = r.sys("read legacy fd", SYS_read, old, buf, sizeof buf);
  r.log("read data", contents(buf, n));
  const long cr = r.sys("creat", SYS_creat, "creat.txt", 0600);
  r.sys("write creat fd", SYS_write, cr, "c", 1);
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  r.sys("openat2", SYS_openat2, AT_FDCWD, "a.txt", &how, sizeof how);
  how.resolve = RESOLVE_NO_SYMLINKS;
  r.sys("openat2 RESOLVE_NO_SYMLINKS on a link", SYS_openat2, AT_FDCWD, "link", &how, sizeof how);
  r.sys("openat2 short struct", SYS_openat2, AT_FDCWD, "a.txt", &how, 7);
  r.sys("close", SYS_close, fd);
  r.sys("close again", SYS_close, fd);
  r.sys("close_range 3 fds not open", SYS_close_range, hi(600), hi(602), 0);
}

void file_stat(Run& r) {
  Fixture& f = r.fx;
  struct stat st {};
  long rc = r.sys("fstat fixture a.txt", SYS_fstat, f.fd_a, &st);
  if (rc == 0) r.log("fstat", stat_line(f, st, "a.txt"));
  rc = r.sys("stat b.bin", SYS_stat, "b.bin", &st);
  if (rc == 0) r.log("stat", stat_line(f, st, "b.bin"));
  rc = r.sys("stat link (follows)", SYS_stat, "link", &st);
  if (rc == 0) r.log("stat link", stat_line(f, st, "a.txt"));
  rc = r.sys("lstat link", SYS_lstat, "link", &st);
  if (rc == 0) r.log("lstat link", stat_line(f, st, "link"));
  rc = r.sys("newfstatat dirfd sub/c.txt", SYS_newfstatat, f.fd_dir, "sub/c.txt", &st, 0);
  if (rc == 0) r.log("newfstatat", stat_line(f, st, "sub/c.txt"));
  rc = r.sys("newfstatat AT_EMPTY_PATH", SYS_newfstatat, f.fd_dir, "", &st, AT_EMPTY_PATH);
  if (rc == 0) r.log("newfstatat dir", stat_line(f, st, "."));
  rc = r.sys("newfstatat sub (dir)", SYS_newfstatat, AT_FDCWD, "sub", &st, AT_SYMLINK_NOFOLLOW);
  if (rc == 0) r.log("newfstatat sub", stat_line(f, st, "sub"));
  struct statx sx {};
  rc = r.sys("statx b.bin", SYS_statx, AT_FDCWD, "b.bin", AT_STATX_SYNC_AS_STAT,
             STATX_BASIC_STATS | STATX_BTIME, &sx);
  if (rc == 0) {
    struct stat ref {};
    sc(SYS_stat, "b.bin", &ref);
    r.log("statx",
          fmt("mask=%#x mode=%06o nlink=%u size=%llu blocks=%llu blksize=%u attributes=%#llx/%#llx ino-ok=%d",
              sx.stx_mask, sx.stx_mode, sx.stx_nlink, static_cast<unsigned long long>(sx.stx_size),
              static_cast<unsigned long long>(sx.stx_blocks), sx.stx_blksize,
              static_cast<unsigned long long>(sx.stx_attributes),
              static_cast<unsigned long long>(sx.stx_attributes_mask), sx.stx_ino == ref.st_ino) +
              " btime=" + f.when(timespec{sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec}));
  }
  r.sys("statx reserved mask bit", SYS_statx, AT_FDCWD, "b.bin", 0, 0x80000000u, &sx);
  r.sys("statx bad flags", SYS_statx, AT_FDCWD, "b.bin", 0x7000000, STATX_BASIC_STATS, &sx);
  r.sys("stat missing", SYS_stat, "missing", &st);
  r.sys("stat through a file", SYS_stat, "a.txt/x", &st);
  r.sys("stat bad path pointer", SYS_stat, kBadPtr, &st);
  r.sys("stat bad buffer", SYS_stat, "a.txt", kBadPtr);
  r.sys("fstat bad fd", SYS_fstat, -1, &st);
  r.sys("newfstatat bad flags", SYS_newfstatat, AT_FDCWD, "a.txt", &st, 0x12345);
  const std::string long_name(5000, 'n');
  r.sys("lstat name too long", SYS_lstat, long_name.c_str(), &st);
}

void file_size_and_sync(Run& r) {
  Fixture& f = r.fx;
  r.sys("ftruncate a.txt 5", SYS_ftruncate, f.fd_a, 5);
  r.sys("truncate b.bin 100", SYS_truncate, "b.bin", 100);
  r.sys("ftruncate O_RDONLY fd", SYS_ftruncate, f.fd_b, 0);
  r.sys("ftruncate pipe", SYS_ftruncate, f.pipe_w, 0);
  r.sys("truncate negative", SYS_truncate, "a.txt", -1);
  r.sys("truncate missing", SYS_truncate, "missing", 0);
  r.sys("fallocate 16 KiB", SYS_fallocate, f.fd_a, 0, 0, 16384);
  r.sys("fallocate punch hole", SYS_fallocate, f.fd_a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
  r.sys("fallocate zero length", SYS_fallocate, f.fd_a, 0, 0, 0);
  r.sys("fallocate unknown mode", SYS_fallocate, f.fd_a, 0x1000, 0, 1);
  r.sys("lseek SEEK_DATA", SYS_lseek, f.fd_a, 0, SEEK_DATA);
  r.sys("lseek SEEK_HOLE", SYS_lseek, f.fd_a, 0, SEEK_HOLE);
  r.sys("fadvise64 SEQUENTIAL", SYS_fadvise64, f.fd_b, 0, 0, POSIX_FADV_SEQUENTIAL);
  r.sys("fadvise64 bad advice", SYS_fadvise64, f.fd_b, 0, 0, 99);
  r.sys("fadvise64 pipe", SYS_fadvise64, f.pipe_r, 0, 0, POSIX_FADV_NORMAL);
  r.sys("readahead", SYS_readahead, f.fd_b, 0, 4096);
  r.sys("readahead pipe", SYS_readahead, f.pipe_r, 0, 4096);
  r.sys("fsync", SYS_fsync, f.fd_a);
  r.sys("fdatasync", SYS_fdatasync, f.fd_a);
  r.sys("fsync bad fd", SYS_fsync, -1);
  r.sys("fdatasync pipe", SYS_fdatasync, f.pipe_r);
  r.sys("sync_file_range", SYS_sync_file_range, f.fd_a, 0, 0, SYNC_FILE_RANGE_WRITE);
  r.sys("sync_file_range bad flags", SYS_sync_file_range, f.fd_a, 0, 0, 0x100);
}

void fd_table(Run& r) {
  Fixture& f = r.fx;
  r.sys("dup", SYS_dup, f.fd_a);
  r.sys("dup2 to hi+0", SYS_dup2, f.fd_a, hi(0));
  r.sys("dup2 onto itself", SYS_dup2, f.fd_a, f.fd_a);
  r.sys("dup2 bad fd", SYS_dup2, -1, hi(1));
  r.sys("dup3 O_CLOEXEC to hi+1", SYS_dup3, f.fd_a, hi(1), O_CLOEXEC);
  r.sys("dup3 onto itself", SYS_dup3, f.fd_a, f.fd_a, 0);
  r.sys("dup3 bad flags", SYS_dup3, f.fd_a, hi(2), 0x1);
  r.sys("F_GETFD hi+1", SYS_fcntl, hi(1), F_GETFD);
  r.sys("F_SETFD hi+0", SYS_fcntl, hi(0), F_SETFD, FD_CLOEXEC);
  r.sys("F_GETFL", SYS_fcntl, f.fd_a, F_GETFL);
  r.sys("F_SETFL O_APPEND|O_NONBLOCK", SYS_fcntl, f.fd_a, F_SETFL, O_APPEND | O_NONBLOCK);
  r.sys("F_GETFL after", SYS_fcntl, f.fd_a, F_GETFL);
  r.sys("F_DUPFD hi+10", SYS_fcntl, f.fd_a, F_DUPFD, hi(10));
  r.sys("F_DUPFD_CLOEXEC hi+10", SYS_fcntl, f.fd_a, F_DUPFD_CLOEXEC, hi(10));
  r.sys("F_DUPFD negative", SYS_fcntl, f.fd_a, F_DUPFD, -1);
  r.sys("fcntl unknown command", SYS_fcntl, f.fd_a, 9999);
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_len = 10;
  r.sys("F_SETLK write lock 0..10", SYS_fcntl, f.fd_a, F_SETLK, &lk);
  lk.l_type = F_WRLCK;
  r.sys("F_GETLK (own lock)", SYS_fcntl, f.fd_a, F_GETLK, &lk);
  r.log("F_GETLK type", std::to_string(lk.l_type));
  const long second = r.sys("openat a.txt again", SYS_openat, AT_FDCWD, "a.txt", O_RDWR);
  struct flock ofd {};
  ofd.l_type = F_WRLCK;
  ofd.l_whence = SEEK_SET;
  ofd.l_len = 4;
  r.sys("F_OFD_SETLK over the process lock", SYS_fcntl, second, F_OFD_SETLK, &ofd);
  ofd.l_type = F_WRLCK;
  r.sys("F_OFD_GETLK", SYS_fcntl, second, F_OFD_GETLK, &ofd);
  r.log("F_OFD_GETLK conflict",
        fmt("type=%d start=%ld len=%ld pid=", ofd.l_type, ofd.l_start, ofd.l_len) + f.pid_name(ofd.l_pid));
  ofd.l_start = 20;
  ofd.l_pid = 0;
  r.sys("F_OFD_SETLK 20..24", SYS_fcntl, second, F_OFD_SETLK, &ofd);
  lk.l_type = F_WRLCK;
  r.sys("F_SETLK write lock on O_RDONLY fd", SYS_fcntl, f.fd_b, F_SETLK, &lk);
  struct flock wait {};
  wait.l_type = F_WRLCK;
  wait.l_whence = SEEK_SET;
  wait.l_start = 50;
  wait.l_len = 10;
  r.sys("F_SETLKW uncontended 50..60", SYS_fcntl, f.fd_a, F_SETLKW, &wait);
  r.sys("F_GETPIPE_SZ", SYS_fcntl, f.pipe_w, F_GETPIPE_SZ);
  r.sys("F_SETPIPE_SZ 8192", SYS_fcntl, f.pipe_w, F_SETPIPE_SZ, 8192);
  r.sys("F_GETPIPE_SZ on a file", SYS_fcntl, f.fd_a, F_GETPIPE_SZ);
  r.sys("flock LOCK_EX|LOCK_NB", SYS_flock, f.fd_b, LOCK_EX | LOCK_NB);
  const long other = r.sys("openat b.bin again", SYS_openat, AT_FDCWD, "b.bin", O_RDONLY);
  r.sys("flock conflicting", SYS_flock, other, LOCK_EX | LOCK_NB);
  r.sys("flock LOCK_SH|LOCK_NB on the holder", SYS_flock, f.fd_b, LOCK_SH | LOCK_NB);
  r.sys("flock operation 99", SYS_flock, f.fd_b, 99);
  r.sys("flock LOCK_UN without LOCK_NB", SYS_flock, other, LOCK_UN);
  r.sys("flock LOCK_SH without LOCK_NB", SYS_flock, f.fd_dir, LOCK_SH);
  r.sys("ioctl FIOCLEX", SYS_ioctl, hi(0), FIOCLEX);
  r.sys("ioctl FIONCLEX", SYS_ioctl, hi(1), FIONCLEX);
  char tbuf[64];
  r.sys("ioctl TCGETS on a file", SYS_ioctl, f.fd_a, TCGETS, tbuf);
  r.sys("close_range hi+10..11", SYS_close_range, hi(10), hi(11), 0);
  r.sys("close_range CLOEXEC", SYS_close_range, hi(0), hi(0), CLOSE_RANGE_CLOEXEC);
  r.sys("close_range reversed", SYS_close_range, 10, 5, 0);
  r.sys("close_range bad flags", SYS_close_range, hi(100), hi(101), 0x40);
  r.sys("close never opened", SYS_close, hi(700));
}

void file_copy(Run& r) {
  Fixture& f = r.fx;
  const long out =
      r.sys("openat copy.bin", SYS_openat, AT_FDCWD, "copy.bin", O_RDWR | O_CREAT | O_EXCL, 0644);
  long long off = 100;
  r.sys("sendfile 1000 from 100", SYS_sendfile, out, f.fd_b, &off, 1000);
  r.log("sendfile offset", std::to_string(off));
  r.sys("lseek b.bin (unchanged)", SYS_lseek, f.fd_b, 0, SEEK_CUR);
  r.sys("sendfile from own offset", SYS_sendfile, out, f.fd_b, nullptr, 16);
  long long in_off = 4000;
  r.sys("copy_file_range 500", SYS_copy_file_range, f.fd_b, &in_off, out, nullptr, 500, 0);
  r.log("copy_file_range in offset", std::to_string(in_off));
  r.sys("copy_file_range bad flags", SYS_copy_file_range, f.fd_b, &in_off, out, nullptr, 5, 1);
  r.sys("splice pipe -> file", SYS_splice, f.pipe_r, nullptr, out, nullptr, 8, 0);
  int a[2] = {-1, -1}, b[2] = {-1, -1};
  r.sys("pipe2 a", SYS_pipe2, a, O_NONBLOCK);
  r.sys("pipe2 b", SYS_pipe2, b, O_NONBLOCK);
  r.log("pipes", fmt("%d %d %d %d", a[0], a[1], b[0], b[1]));
  r.sys("write a", SYS_write, a[1], "teedata", 7);
  r.sys("tee a -> b", SYS_tee, a[0], b[1], 64, SPLICE_F_NONBLOCK);
  r.sys("tee b -> a", SYS_tee, b[0], a[1], 64, SPLICE_F_NONBLOCK);
  char buf[16] = {};
  long n = r.sys("read b", SYS_read, b[0], buf, sizeof buf);
  r.log("read b data", contents(buf, n));
  iovec v{const_cast<char*>("vm"), 2};
  r.sys("vmsplice into b", SYS_vmsplice, b[1], &v, 1, 0);
  r.sys("splice file -> b", SYS_splice, f.fd_b, nullptr, b[1], nullptr, 32, SPLICE_F_NONBLOCK);
  r.sys("splice between two files", SYS_splice, f.fd_b, nullptr, out, nullptr, 8, 0);
  r.sys("lseek copy.bin", SYS_lseek, out, 0, SEEK_CUR);
}

const Case kCases[] = {
    {"file_read_write", file_read_write},
    {"file_stat", file_stat},
    {"file_size_and_sync", file_size_and_sync},
    {"fd_table", fd_table},
    {"file_copy", file_copy},
};
const bool kRegistered = register_cases(Group::kFiles, kCases);

}  // namespace
}  // namespace flexsc::test::diff
