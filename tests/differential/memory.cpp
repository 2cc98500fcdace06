// Memory: anonymous and file mappings, the break, process_vm_*, and a burst
// of calls through one executor.
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "differential.h"
#include "test_util.h"

namespace flexsc::test::diff {
namespace {

void memory_anonymous(Run& r) {
  char* p = region(8);
  const long m =
      r.call(SYS_mmap, p, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  r.log("mmap fixed anon 4 pages", region_off(m));
  if (m == reinterpret_cast<long>(p)) std::memset(p, 'x', 4 * kPage);
  r.sys("mprotect page 8 read-only", SYS_mprotect, p, kPage, PROT_READ);
  r.sys("read into read-only memory", SYS_read, r.fx.fd_a, p, 4);
  unsigned char vec[4] = {};
  r.sys("mincore", SYS_mincore, p, 4 * kPage, vec);
  r.log("mincore resident", fmt("%d%d%d%d", vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1));
  r.sys("madvise DONTNEED page 9", SYS_madvise, p + kPage, kPage, MADV_DONTNEED);
  r.log("page 9 after DONTNEED", peek(p + kPage, 4));
  r.sys("mlock page 10", SYS_mlock, p + 2 * kPage, kPage);
  r.sys("munlock page 10", SYS_munlock, p + 2 * kPage, kPage);
  r.sys("mlock2 ONFAULT page 10", SYS_mlock2, p + 2 * kPage, kPage, MLOCK_ONFAULT);
  r.sys("munlock again", SYS_munlock, p + 2 * kPage, kPage);
  r.log("mremap pages 10-11 to 20", region_off(r.call(SYS_mremap, p + 2 * kPage, 2 * kPage, 2 * kPage,
                                                      MREMAP_MAYMOVE | MREMAP_FIXED, region(20))));
  r.log("moved content", peek(region(20), 4));
  r.log("mremap grow in place", region_off(r.call(SYS_mremap, region(20), 2 * kPage, 3 * kPage, 0)));
  r.sys("msync anonymous", SYS_msync, p, kPage, MS_SYNC);
  r.sys("munmap page 8", SYS_munmap, p, kPage);
  r.sys("munmap unaligned", SYS_munmap, p + kPage + 1, kPage);
  r.sys("munmap nothing mapped", SYS_munmap, region(40), kPage);
  r.log("mmap neither private nor shared",
        region_off(r.call(SYS_mmap, nullptr, kPage, PROT_READ, MAP_ANONYMOUS, -1, 0)));
  r.log("mmap length 0",
        region_off(r.call(SYS_mmap, nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  r.log("mmap FIXED_NOREPLACE over a mapping",
        region_off(r.call(SYS_mmap, region(0), kPage, PROT_READ,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)));
  const long any =
      r.call(SYS_mmap, nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  r.log("mmap anywhere", any < 0 && any >= -4095 ? ret_str(any) : "page-aligned=" + yes(any % kPage == 0));
  if (any > 0) r.sys("munmap it", SYS_munmap, any, kPage);
  r.sys("mprotect bad prot", SYS_mprotect, region(0), kPage, 0x1000);
  r.sys("mprotect unmapped", SYS_mprotect, region(40), kPage, PROT_READ | PROT_WRITE);
  r.sys("madvise bad advice", SYS_madvise, region(0), kPage, 12345);
  r.sys("mincore unaligned", SYS_mincore, region(0) + 1, kPage, vec);
  r.sys("mincore unmapped", SYS_mincore, region(40), kPage, vec);
  r.log("mremap to size 0", region_off(r.call(SYS_mremap, region(0), kPage, 0, 0)));
  r.sys("mlock2 bad flags", SYS_mlock2, region(0), kPage, 0x100);
  r.sys("write from PROT_NONE memory", SYS_write, r.fx.pipe_w, region(50), 4);
  r.sys("madvise DONTNEED page 1 (fixture data)", SYS_madvise, region(1), kPage, MADV_DONTNEED);
}

void memory_files(Run& r) {
  Fixture& f = r.fx;
  const long m = r.sys("memfd_create", SYS_memfd_create, "diff", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  r.sys("ftruncate memfd 2 pages", SYS_ftruncate, m, 2 * kPage);
  r.sys("pwrite64 memfd", SYS_pwrite64, m, "memfd!", 6, 0);
  char* p = region(30);
  const long mapped = r.call(SYS_mmap, p, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m, 0);
  r.log("mmap memfd shared", region_off(mapped));
  r.log("mapped data", peek(p, 6));
  if (mapped == reinterpret_cast<long>(p)) std::memcpy(p + kPage, "through memory", 14);
  char buf[32] = {};
  long n = r.sys("pread64 memfd page 1", SYS_pread64, m, buf, 14, kPage);
  r.log("pread64 data", contents(buf, n));
  r.sys("msync MS_SYNC", SYS_msync, p, 2 * kPage, MS_SYNC);
  r.sys("msync bad flags", SYS_msync, p, kPage, MS_SYNC | MS_ASYNC);
  r.sys("F_ADD_SEALS SEAL_SHRINK", SYS_fcntl, m, F_ADD_SEALS, F_SEAL_SHRINK);
  r.sys("F_GET_SEALS", SYS_fcntl, m, F_GET_SEALS);
  r.sys("ftruncate sealed memfd smaller", SYS_ftruncate, m, kPage);
  r.sys("F_ADD_SEALS on a file", SYS_fcntl, f.fd_a, F_ADD_SEALS, F_SEAL_SHRINK);
  r.log("mmap a.txt private read-only",
        region_off(r.call(SYS_mmap, region(40), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, f.fd_a, 0)));
  r.log("mapped a.txt", peek(region(40), 10));
  r.log("mmap a.txt shared writable via O_RDONLY fd",
        region_off(
            r.call(SYS_mmap, region(42), kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f.fd_b, 0)));
  r.log("mmap file without fd",
        region_off(r.call(SYS_mmap, region(42), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, -1, 0)));
  r.log("mmap a pipe",
        region_off(r.call(SYS_mmap, region(42), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, f.pipe_r, 0)));
  r.log("mmap unaligned offset",
        region_off(r.call(SYS_mmap, region(42), kPage, PROT_READ, MAP_PRIVATE | MAP_FIXED, f.fd_a, 1)));
  r.sys("memfd_create bad flags", SYS_memfd_create, "x", 0x1000);
  const std::string long_name(300, 'm');
  r.sys("memfd_create long name", SYS_memfd_create, long_name.c_str(), 0);
}

void memory_misc(Run& r) {
  const long brk = r.call(SYS_brk, 0);
  const long now = sc(SYS_brk, 0);
  r.log("brk(0) is the current break", yes(brk == now));
  const long low = r.call(SYS_brk, 1);
  r.log("brk too low returns the current break", yes(low == sc(SYS_brk, 0)));
  char buf[16] = {};
  iovec local{buf, sizeof buf}, remote{region(0) + 100, sizeof buf};
  r.sys("process_vm_readv self", SYS_process_vm_readv, g.pid, &local, 1, &remote, 1, 0);
  r.log("read data", quote(buf, sizeof buf));
  iovec src{const_cast<char*>("written"), 7}, dst{region(2), 7};
  r.sys("process_vm_writev self", SYS_process_vm_writev, g.pid, &src, 1, &dst, 1, 0);
  r.sys("process_vm_readv bad flags", SYS_process_vm_readv, g.pid, &local, 1, &remote, 1, 1);
  iovec bad{region(50), sizeof buf};
  r.sys("process_vm_readv PROT_NONE", SYS_process_vm_readv, g.pid, &local, 1, &bad, 1, 0);
  r.sys("membarrier QUERY", SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  r.sys("membarrier bad command", SYS_membarrier, 1 << 20, 0, 0);
  r.sys("mlockall bad flags", SYS_mlockall, 0);
  r.sys("munlockall", SYS_munlockall);
}

// Many calls through the same executor: nothing may go wrong intermittently.
void burst(Run& r) {
  const long count = flexsc::test::scaled(400);
  uint64_t h = 0;
  long errors = 0;
  for (long i = 0; i < count; ++i) {
    unsigned char buf[8];
    const long n = r.call(SYS_pread64, r.fx.fd_b, buf, sizeof buf, (i * 37) % 8000);
    if (n != 8) ++errors;
    h = fnv(buf, sizeof buf, h ^ static_cast<uint64_t>(n));
  }
  r.log("pread64 burst", fmt("count=%ld short=%ld fnv=%016lx", count, errors, h));
}

const Case kCases[] = {
    {"memory_anonymous", memory_anonymous},
    {"memory_files", memory_files},
    {"memory_misc", memory_misc},
    {"burst", burst},
};
const bool kRegistered = register_cases(Group::kMemory, kCases);

}  // namespace
}  // namespace flexsc::test::diff
