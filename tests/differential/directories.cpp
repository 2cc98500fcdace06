// Directories: entries, listings, the working directory, attributes and
// extended attributes, filesystem information.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void dir_entries(Run& r) {
  Fixture& f = r.fx;
  char buf[128] = {};
  r.sys("mkdir d1", SYS_mkdir, "d1", 0750);
  r.sys("mkdir d1 again", SYS_mkdir, "d1", 0750);
  r.sys("mkdirat dirfd d2", SYS_mkdirat, f.fd_dir, "d2", 0700);
  r.sys("mkdir in missing parent", SYS_mkdir, "nope/d", 0755);
  r.sys("rmdir d2", SYS_rmdir, "d2");
  r.sys("rmdir non-empty", SYS_rmdir, "sub");
  r.sys("rmdir missing", SYS_rmdir, "missing");
  r.sys("rmdir a file", SYS_rmdir, "a.txt");
  r.sys("unlink a directory", SYS_unlink, "sub");
  r.sys("unlinkat AT_REMOVEDIR d1", SYS_unlinkat, f.fd_dir, "d1", AT_REMOVEDIR);
  r.sys("unlinkat bad flags", SYS_unlinkat, f.fd_dir, "a.txt", 0x1);
  r.sys("rename empty -> empty2", SYS_rename, "empty", "empty2");
  r.sys("rename missing", SYS_rename, "missing", "x");
  r.sys("renameat2 NOREPLACE onto existing", SYS_renameat2, AT_FDCWD, "a.txt", AT_FDCWD, "b.bin",
        RENAME_NOREPLACE);
  r.sys("renameat2 EXCHANGE", SYS_renameat2, AT_FDCWD, "a.txt", f.fd_dir, "b.bin", RENAME_EXCHANGE);
  r.sys("renameat2 bad flags", SYS_renameat2, AT_FDCWD, "a.txt", AT_FDCWD, "z", 0x100);
  r.sys("renameat sub/c.txt -> c2", SYS_renameat, f.fd_dir, "sub/c.txt", AT_FDCWD, "c2");
  r.sys("link", SYS_link, "a.txt", "hard");
  r.sys("link existing", SYS_link, "a.txt", "hard");
  r.sys("linkat", SYS_linkat, f.fd_dir, "hard", f.fd_dir, "hard2", 0);
  r.sys("linkat AT_SYMLINK_FOLLOW", SYS_linkat, AT_FDCWD, "link", AT_FDCWD, "hard3", AT_SYMLINK_FOLLOW);
  r.sys("unlink hard2", SYS_unlink, "hard2");
  r.sys("symlink", SYS_symlink, "sub", "s2");
  r.sys("symlinkat dangling", SYS_symlinkat, "nowhere", f.fd_dir, "dangling");
  r.sys("symlink existing", SYS_symlink, "x", "link");
  long n = r.sys("readlink link", SYS_readlink, "link", buf, sizeof buf);
  r.log("readlink data", contents(buf, n));
  n = r.sys("readlinkat s2", SYS_readlinkat, f.fd_dir, "s2", buf, sizeof buf);
  r.log("readlinkat data", contents(buf, n));
  n = r.sys("readlink short buffer", SYS_readlink, "dangling", buf, 3);
  r.log("readlink short data", contents(buf, n));
  r.sys("readlink not a link", SYS_readlink, "a.txt", buf, sizeof buf);
  r.sys("readlink zero size", SYS_readlink, "link", buf, 0);
  r.sys("mknodat fifo", SYS_mknodat, AT_FDCWD, "fifo", S_IFIFO | 0640, 0);
  r.sys("mknod regular", SYS_mknod, "node", S_IFREG | 0600, 0);
  r.sys("mknod bad type", SYS_mknod, "bad", 0170000 | 0600, 0);
  r.sys("unlink", SYS_unlink, "node");
  r.sys("unlink missing", SYS_unlink, "node");
}

void dir_listing(Run& r) {
  Fixture& f = r.fx;
  alignas(8) char buf[4096];
  const long d = r.sys("openat . O_DIRECTORY", SYS_openat, AT_FDCWD, ".", O_RDONLY | O_DIRECTORY);
  auto parse = [&](long n, bool legacy, const std::string& prefix = "") {
    std::string names;
    if (n > static_cast<long>(sizeof buf)) return fmt("(length %ld exceeds the buffer)", n);
    for (long off = 0; off + 20 <= n;) {
      unsigned short reclen;
      std::string name;
      unsigned char type;
      uint64_t ino;
      std::memcpy(&ino, buf + off, sizeof ino);
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      if (legacy) {
        name = buf + off + 18;
        type = static_cast<unsigned char>(buf[off + reclen - 1]);
      } else {
        name = buf + off + 19;
        type = static_cast<unsigned char>(buf[off + 18]);
      }
      struct stat st {};
      sc(SYS_newfstatat, f.fd_dir, (prefix + name).c_str(), &st, AT_SYMLINK_NOFOLLOW);
      names += fmt(" %s(type=%u reclen=%u ino-ok=%d)", name.c_str(), type, reclen, st.st_ino == ino);
      if (reclen < 20 || off + reclen > n) return names + " (bad record)";
      off += reclen;
    }
    return names;
  };
  long n = r.sys("getdents64", SYS_getdents64, d, buf, sizeof buf);
  r.log("getdents64 entries", parse(n, false));
  r.sys("getdents64 at end", SYS_getdents64, d, buf, sizeof buf);
  r.sys("lseek dir to 0", SYS_lseek, d, 0, SEEK_SET);
  n = r.sys("getdents (legacy)", SYS_getdents, d, buf, sizeof buf);
  r.log("getdents entries", parse(n, true));
  r.sys("lseek dir to 0 again", SYS_lseek, d, 0, SEEK_SET);
  r.sys("getdents64 tiny buffer", SYS_getdents64, d, buf, 10);
  r.sys("getdents64 bad buffer", SYS_getdents64, d, kBadPtr, sizeof buf);
  r.sys("getdents64 on a file", SYS_getdents64, f.fd_a, buf, sizeof buf);
  r.sys("getdents64 bad fd", SYS_getdents64, -1, buf, sizeof buf);
  const long s = r.sys("openat sub", SYS_openat, f.fd_dir, "sub", O_RDONLY | O_DIRECTORY);
  n = r.sys("getdents64 sub", SYS_getdents64, s, buf, sizeof buf);
  r.log("getdents64 sub entries", parse(n, false, "sub/"));
  r.sys("openat O_DIRECTORY on a file", SYS_openat, AT_FDCWD, "a.txt", O_RDONLY | O_DIRECTORY);
}

void dir_cwd(Run& r) {
  Fixture& f = r.fx;
  char buf[512] = {};
  long n = r.sys("getcwd", SYS_getcwd, buf, sizeof buf);
  r.log("getcwd data", n > 0 ? f.path(buf) : "");
  r.sys("getcwd too small", SYS_getcwd, buf, 2);
  r.sys("getcwd bad buffer", SYS_getcwd, kBadPtr, sizeof buf);
  r.sys("chdir sub", SYS_chdir, "sub");
  n = r.sys("getcwd in sub", SYS_getcwd, buf, sizeof buf);
  r.log("getcwd data", n > 0 ? f.path(buf) : "");
  r.sys("access c.txt (relative to new cwd)", SYS_access, "c.txt", R_OK);
  r.sys("fchdir fixture dir", SYS_fchdir, f.fd_dir);
  n = r.sys("getcwd back", SYS_getcwd, buf, sizeof buf);
  r.log("getcwd data", n > 0 ? f.path(buf) : "");
  r.sys("chdir missing", SYS_chdir, "missing");
  r.sys("chdir a file", SYS_chdir, "a.txt");
  r.sys("fchdir a file", SYS_fchdir, f.fd_a);
  r.sys("fchdir bad fd", SYS_fchdir, -1);
  r.sys("chdir sub (stays)", SYS_chdir, "sub");
}

void file_attributes(Run& r) {
  Fixture& f = r.fx;
  r.sys("chmod a.txt 0600", SYS_chmod, "a.txt", 0600);
  r.sys("fchmod b.bin 0444", SYS_fchmod, f.fd_b, 0444);
  r.sys("fchmodat sub 0700", SYS_fchmodat, f.fd_dir, "sub", 0700);
  r.sys("chmod missing", SYS_chmod, "missing", 0600);
  r.sys("chown a.txt to own ids", SYS_chown, "a.txt", sc(SYS_getuid), sc(SYS_getgid));
  r.sys("fchown -1 -1", SYS_fchown, f.fd_a, -1, -1);
  r.sys("lchown link", SYS_lchown, "link", -1, -1);
  r.sys("fchownat AT_SYMLINK_NOFOLLOW", SYS_fchownat, AT_FDCWD, "link", -1, -1, AT_SYMLINK_NOFOLLOW);
  r.sys("fchownat bad flags", SYS_fchownat, AT_FDCWD, "link", -1, -1, 0x1);
  r.sys("access R_OK", SYS_access, "a.txt", R_OK);
  r.sys("access missing", SYS_access, "missing", F_OK);
  r.sys("access bad mode", SYS_access, "a.txt", 0x10);
  r.sys("faccessat X_OK on 0600 file", SYS_faccessat, f.fd_dir, "a.txt", X_OK);
  r.sys("faccessat2 AT_EACCESS", SYS_faccessat2, f.fd_dir, "sub", X_OK, AT_EACCESS);
  r.sys("faccessat2 bad flags", SYS_faccessat2, f.fd_dir, "a.txt", R_OK, 0x1);
  const timespec times[2] = {{1000, 1}, {2000, 2}};
  r.sys("utimensat fixed times", SYS_utimensat, AT_FDCWD, "a.txt", times, 0);
  const timespec omit[2] = {{0, UTIME_OMIT}, {3000, 3}};
  r.sys("utimensat UTIME_OMIT atime", SYS_utimensat, f.fd_dir, "sub/c.txt", omit, 0);
  const timespec bad[2] = {{0, 2000000000}, {0, 0}};
  r.sys("utimensat bad nsec", SYS_utimensat, AT_FDCWD, "a.txt", bad, 0);
  r.sys("utimensat on a symlink itself", SYS_utimensat, AT_FDCWD, "link", times, AT_SYMLINK_NOFOLLOW);
  timeval tv[2] = {{4000, 4}, {5000, 5}};
  r.sys("utimes", SYS_utimes, "empty", tv);
  r.sys("umask 077", SYS_umask, 077);
  r.sys("creat under umask 077", SYS_creat, "masked", 0666);
  r.sys("mkdir under umask 077", SYS_mkdir, "maskdir", 0777);
  r.sys("umask 027 (returns 077)", SYS_umask, 027);
  // Extended attributes (user namespace).
  r.sys("setxattr", SYS_setxattr, "a.txt", "user.k", "v1", 2, 0);
  r.sys("fsetxattr XATTR_CREATE existing", SYS_fsetxattr, f.fd_a, "user.k", "v2", 2, XATTR_CREATE);
  r.sys("lsetxattr on b.bin", SYS_lsetxattr, "b.bin", "user.other", "xyz", 3, 0);
  char buf[64] = {};
  long n = r.sys("getxattr", SYS_getxattr, "a.txt", "user.k", buf, sizeof buf);
  r.log("getxattr data", contents(buf, n));
  r.sys("getxattr size query", SYS_getxattr, "a.txt", "user.k", nullptr, 0);
  r.sys("getxattr too small", SYS_getxattr, "a.txt", "user.k", buf, 1);
  r.sys("fgetxattr missing name", SYS_fgetxattr, f.fd_a, "user.none", buf, sizeof buf);
  n = r.sys("listxattr", SYS_listxattr, "a.txt", buf, sizeof buf);
  r.log("listxattr data", contents(buf, n));
  r.sys("flistxattr", SYS_flistxattr, f.fd_b, buf, sizeof buf);
  r.sys("llistxattr link", SYS_llistxattr, "link", buf, sizeof buf);
  r.sys("lgetxattr", SYS_lgetxattr, "b.bin", "user.other", buf, sizeof buf);
  r.sys("removexattr", SYS_removexattr, "b.bin", "user.other");
  r.sys("fremovexattr missing", SYS_fremovexattr, f.fd_b, "user.other");
  r.sys("lremovexattr missing", SYS_lremovexattr, "a.txt", "user.none");
  r.sys("setxattr bad namespace", SYS_setxattr, "a.txt", "bogus.k", "v", 1, 0);
}

void filesystem_info(Run& r) {
  Fixture& f = r.fx;
  struct statfs s {
  }, ref{};
  auto line = [&](const struct statfs& v) {
    return fmt("type=%#lx bsize=%ld namelen=%ld frsize=%ld flags=%#lx blocks=%lu files=%lu free<=blocks=%d",
               static_cast<long>(v.f_type), static_cast<long>(v.f_bsize), static_cast<long>(v.f_namelen),
               static_cast<long>(v.f_frsize), static_cast<long>(v.f_flags),
               static_cast<unsigned long>(v.f_blocks), static_cast<unsigned long>(v.f_files),
               v.f_bfree <= v.f_blocks && v.f_bavail <= v.f_bfree);
  };
  sc(SYS_statfs, ".", &ref);
  long rc = r.sys("statfs .", SYS_statfs, ".", &s);
  if (rc == 0)
    r.log("statfs", line(s) + " fsid-ok=" + yes(!std::memcmp(&s.f_fsid, &ref.f_fsid, sizeof s.f_fsid)));
  rc = r.sys("fstatfs a.txt", SYS_fstatfs, f.fd_a, &s);
  if (rc == 0) r.log("fstatfs", line(s));
  r.sys("statfs missing", SYS_statfs, "missing", &s);
  r.sys("statfs bad buffer", SYS_statfs, ".", kBadPtr);
  r.sys("fstatfs bad fd", SYS_fstatfs, -1, &s);
}

const Case kCases[] = {
    {"dir_entries", dir_entries},         {"dir_listing", dir_listing},         {"dir_cwd", dir_cwd},
    {"file_attributes", file_attributes}, {"filesystem_info", filesystem_info},
};
const bool kRegistered = register_cases(Group::kDirectories, kCases);

}  // namespace
}  // namespace flexsc::test::diff
