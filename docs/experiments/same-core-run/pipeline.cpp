// The shim's protocol without the library: one thread on CPU 0 posts
// batches of 64 getppid entries (two in flight) and harvests them in
// order; two serving threads on CPU 1 drain them.  Optionally the waiter
// runs half of what is unclaimed itself (FLEXSC_IOC_RUN, from
// same-core-run.patch), and spends W ns of its own work per entry, half
// when posting it and half when harvesting it, to stand for a library's
// bookkeeping.  Prints ns per entry for each mode against the inline
// `syscall` instruction measured in the same run.
//
// Build (static, for the guest), with the patch applied to the tree:
//   g++ -O2 -static -pthread -Iinclude -o /tmp/pipeline docs/experiments/same-core-run/pipeline.cpp
// Run in the QEMU guest with the patched module:
//   bash tests/shim/guest.sh /tmp/pipeline-guest kernel-shim /tmp/pipeline
//   grep -a -E 'sync|mode' /tmp/pipeline-guest/serial.log
#include <fcntl.h>
#include <flexsc/entry.h>
#include <flexsc/shim.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <initializer_list>
#include <thread>

namespace {

constexpr unsigned kBatch = 64, kGroups = 2, kItems = 300000;

unsigned long long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}

void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  sched_setaffinity(0, sizeof s, &s);
}

long inline_getppid() {
  long r;
  asm volatile("syscall" : "=a"(r) : "0"(SYS_getppid) : "rcx", "r11", "memory");
  return r;
}

void work(unsigned iterations) {
  for (unsigned i = 0; i < iterations; ++i) asm volatile("");
}

int fd;
flexsc_shim_control* control;
flexsc_entry* entries;
unsigned region;

enum Mode { kServersOnly, kWaiterRunsHalf };
const char* const kModeNames[] = {"servers only", "waiter runs half of what is unclaimed"};

// Posts, harvests and checks kItems entries; returns ns per entry and
// the share the waiter ran.
double pipeline(Mode mode, unsigned work_iterations, long want, double* waiter_share) {
  unsigned long long ran = 0, items = 0;
  auto post = [&](unsigned g) {
    for (unsigned i = 0; i < kBatch; ++i) {
      work(work_iterations);
      flexsc_entry* e = &entries[g * kBatch + i];
      e->nr = SYS_getppid;
      e->flags = 0;
      e->ret = -1;
      __atomic_store_n(&e->status, FLEXSC_SUBMITTED, __ATOMIC_RELEASE);
    }
    __atomic_fetch_add(&control->posted, kBatch, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&control->ready, __ATOMIC_SEQ_CST) == 0) ioctl(fd, FLEXSC_IOC_WAKE, 0);
  };
  auto run_own = [&] {
    flexsc_shim_run run{region, 0, -1, 0};
    ioctl(fd, FLEXSC_IOC_RUN, &run);
    ran += run.ran;
  };
  auto take = [&](flexsc_entry* e) {
    while (__atomic_load_n(&e->status, __ATOMIC_ACQUIRE) != FLEXSC_DONE) __builtin_ia32_pause();
    const bool ok = e->ret == want;
    e->status = FLEXSC_FREE;
    return ok;
  };
  const unsigned long long t0 = now_ns();
  post(0);
  unsigned g = 0;
  while (items < kItems) {
    post(g ^ 1);
    bool due = mode != kServersOnly;
    for (unsigned i = 0; i < kBatch; ++i) {
      flexsc_entry* e = &entries[g * kBatch + i];
      if (due && __atomic_load_n(&e->status, __ATOMIC_ACQUIRE) != FLEXSC_DONE) {
        due = false;
        run_own();
      }
      if (!take(e)) return -1;
      work(work_iterations);
    }
    items += kBatch;
    g ^= 1;
  }
  for (unsigned i = 0; i < kBatch; ++i)
    if (!take(&entries[g * kBatch + i])) return -1;
  *waiter_share = static_cast<double>(ran) / static_cast<double>(items);
  return static_cast<double>(now_ns() - t0) / static_cast<double>(items);
}

}  // namespace

int main() {
  pin(0);
  fd = open(FLEXSC_SHIM_DEVICE, O_RDWR);
  control = static_cast<flexsc_shim_control*>(mmap(nullptr, FLEXSC_SHIM_CONTROL_PAGES * 4096, PROT_READ | PROT_WRITE,
                                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  flexsc_shim_attach a{FLEXSC_SHIM_ABI, 0, reinterpret_cast<unsigned long long>(control)};
  if (fd < 0 || ioctl(fd, FLEXSC_IOC_ATTACH, &a)) {
    perror("attach");
    return 1;
  }
  entries = static_cast<flexsc_entry*>(
      mmap(nullptr, 4096 * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  flexsc_shim_region r{reinterpret_cast<unsigned long long>(entries), 2, 0};
  if (ioctl(fd, FLEXSC_IOC_REGISTER, &r)) {
    perror("register");
    return 1;
  }
  region = r.id;
  auto serve = [] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    flexsc_shim_serve s{};
    s.cpu = 1;
    s.spin_ns = 50000;
    while (ioctl(fd, FLEXSC_IOC_SERVE, &s) >= 0 && s.reason != FLEXSC_SERVE_LEAVE) {
    }
  };
  std::thread server1(serve), server2(serve);
  usleep(100000);
  const unsigned long long t0 = now_ns();
  work(10000000);
  const double iterations_per_ns = 1e7 / static_cast<double>(now_ns() - t0);
  const long want = getppid();
  const unsigned long long t1 = now_ns();
  for (int i = 0; i < 300000; ++i) inline_getppid();
  std::printf("sync: %.1f ns per getppid\n", static_cast<double>(now_ns() - t1) / 300000);
  for (unsigned w : {0u, 50u, 100u, 150u}) {
    for (Mode mode : {kServersOnly, kWaiterRunsHalf}) {
      double share = 0;
      const double ns = pipeline(mode, static_cast<unsigned>(w * iterations_per_ns / 2), want, &share);
      if (ns < 0) {
        std::printf("wrong result\n");
        return 1;
      }
      std::printf("W %u ns, mode %s: %.1f ns per entry, waiter ran %.0f%%\n", w, kModeNames[mode], ns, 100 * share);
    }
  }
  ioctl(fd, FLEXSC_IOC_LEAVE, 0);
  server1.join();
  server2.join();
  return 0;
}
