// The kernel shim's own interface, /dev/flexsc, driven directly (no
// library): run inside the QEMU guest by tests/shim/guest.sh.
#include <fcntl.h>
#include <flexsc/entry.h>
#include <flexsc/shim.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

long sys_ioctl(int fd, unsigned long cmd, void* arg) {
  const long r = ioctl(fd, cmd, arg);
  return r < 0 ? -errno : r;
}

// One process's attachment: the control page, a region of syscall pages
// and serving threads that loop in FLEXSC_IOC_SERVE until told to leave.
class Shim {
 public:
  // Servers pinned to `cpu` (-1: anywhere).
  explicit Shim(unsigned pages = 1, unsigned servers = 1, int cpu = -1) : pages_(pages), cpu_(cpu) {
    fd_ = open(FLEXSC_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
    if (fd_ < 0) return;
    control_ = static_cast<flexsc_shim_control*>(map(FLEXSC_SHIM_CONTROL_PAGES));
    entries_ = static_cast<flexsc_entry*>(map(pages));
    flexsc_shim_attach a{FLEXSC_SHIM_ABI, 0, reinterpret_cast<uint64_t>(control_)};
    attach_rc_ = sys_ioctl(fd_, FLEXSC_IOC_ATTACH, &a);
    flexsc_shim_region r{reinterpret_cast<uint64_t>(entries_), pages, 0};
    register_rc_ = sys_ioctl(fd_, FLEXSC_IOC_REGISTER, &r);
    id_ = r.id;
    for (unsigned i = 0; i < servers; ++i) servers_.emplace_back([this] { serve(); });
  }
  ~Shim() {
    if (fd_ < 0) return;
    sys_ioctl(fd_, FLEXSC_IOC_LEAVE, nullptr);
    for (auto& t : servers_) t.join();
    close(fd_);
    munmap(control_, FLEXSC_SHIM_CONTROL_PAGES * 4096);
    munmap(entries_, size_t{pages_} * 4096);
  }
  bool ok() const { return fd_ >= 0 && attach_rc_ == 0 && register_rc_ == 0; }
  int fd() const { return fd_; }
  uint32_t id() const { return id_; }
  flexsc_entry* entry(unsigned i) { return &entries_[i]; }
  const flexsc_shim_control* control() const { return control_; }
  // The module's counters.
  flexsc_shim_stats stats() const {
    flexsc_shim_stats st{};
    EXPECT_EQ(sys_ioctl(fd_, FLEXSC_IOC_STATS, &st), 0);
    return st;
  }

  // Posts entry i: fills it, publishes SUBMITTED, rings the doorbell.
  void post(unsigned i, long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
            long a5 = 0) {
    prepare(i, nr, a0, a1, a2, a3, a4, a5);
    ring();
  }
  // Fills entry i and publishes it SUBMITTED, without counting it yet.
  void prepare(unsigned i, long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
               long a5 = 0) {
    flexsc_entry* e = entry(i);
    e->nr = static_cast<uint32_t>(nr);
    // Calls that may sleep are marked, as the library marks its blocking
    // class (observers see them in control()->servers).
    const bool may_block = nr == SYS_read || nr == SYS_write || nr == SYS_nanosleep || nr == SYS_ppoll;
    e->flags = may_block && mark_blocking ? FLEXSC_ENTRY_MAY_BLOCK : 0;
    const long args[6] = {a0, a1, a2, a3, a4, a5};
    std::memcpy(e->args, args, sizeof args);
    e->ret = LONG_MIN;
    __atomic_store_n(&e->status, FLEXSC_SUBMITTED, __ATOMIC_RELEASE);
  }
  // Counts n prepared entries; wakes a server when none is ready.
  void ring(unsigned n = 1) {
    __atomic_fetch_add(&control_->posted, n, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&control_->ready, __ATOMIC_SEQ_CST) == 0) sys_ioctl(fd_, FLEXSC_IOC_WAKE, nullptr);
  }
  // Waits for entry i in the kernel, then takes its result and frees it.
  long wait(unsigned i, std::chrono::nanoseconds timeout = 20s) {
    flexsc_shim_wait w{id_, static_cast<int32_t>(i), static_cast<uint64_t>(timeout.count())};
    while (__atomic_load_n(&entry(i)->status, __ATOMIC_ACQUIRE) != FLEXSC_DONE) {
      const long rc = sys_ioctl(fd_, FLEXSC_IOC_WAIT, &w);
      if (rc == -ETIMEDOUT) return LONG_MIN;
      if (rc < 0 && rc != -EINTR) return LONG_MIN + 1;
    }
    const long r = entry(i)->ret;
    __atomic_store_n(&entry(i)->status, FLEXSC_FREE, __ATOMIC_RELAXED);
    return r;
  }
  long call(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0) {
    post(0, nr, a0, a1, a2, a3, a4, a5);
    return wait(0);
  }

 private:
  static void* map(unsigned pages) {
    void* p = mmap(nullptr, size_t{pages} * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  void serve() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    flexsc_shim_serve s{};
    s.cpu = cpu_;
    s.spin_ns = 50'000;
    for (;;) {
      const long rc = sys_ioctl(fd_, FLEXSC_IOC_SERVE, &s);
      if (s.reason == FLEXSC_SERVE_CALLER_SIGNAL) ++caller_signals_;
      if (rc < 0 || s.reason == FLEXSC_SERVE_LEAVE) break;
    }
    // Whatever is still pending is published before the thread goes.
    s.flags = FLEXSC_SERVE_PUBLISH_ONLY;
    for (int i = 0; i < 100 && s.npending; ++i) sys_ioctl(fd_, FLEXSC_IOC_SERVE, &s);
  }

  unsigned pages_;
  int cpu_;
  int fd_ = -1;
  long attach_rc_ = -1, register_rc_ = -1;
  uint32_t id_ = 0;
  flexsc_shim_control* control_ = nullptr;
  flexsc_entry* entries_ = nullptr;
  std::vector<std::thread> servers_;

 public:
  std::atomic<int> caller_signals_{0};  // SERVE calls back for a SIGPIPE/SIGXFSZ to send on
  bool mark_blocking = true;            // post() marks calls that may sleep FLEXSC_ENTRY_MAY_BLOCK
};

// Runs f in a child process; its exit status (0 = pass).
template <class F>
int in_child(F f) {
  const pid_t pid = fork();
  if (pid == 0) _exit(f());
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(Shim, RunsCallsAsTheProcess) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  EXPECT_EQ(shim.call(SYS_getppid), getppid());
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
  EXPECT_EQ(shim.stats().calls[SYS_getpid], 1u);  // counted before DONE
  EXPECT_EQ(shim.call(SYS_getpgrp), getpgrp());
  char cwd[256] = {}, mine[256] = {};
  ASSERT_NE(getcwd(mine, sizeof mine), nullptr);
  EXPECT_EQ(shim.call(SYS_getcwd, reinterpret_cast<long>(cwd), sizeof cwd),
            static_cast<long>(strlen(mine) + 1));
  EXPECT_STREQ(cwd, mine);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  // A descriptor of the process, a buffer of the process.
  EXPECT_EQ(shim.call(SYS_write, p[1], reinterpret_cast<long>("hello"), 5), 5);
  char buf[8] = {};
  EXPECT_EQ(read(p[0], buf, sizeof buf), 5);
  EXPECT_STREQ(buf, "hello");
  EXPECT_EQ(shim.call(SYS_write, p[1], 1, 5), -EFAULT);  // a bad pointer
  EXPECT_EQ(shim.call(SYS_close, 12345), -EBADF);
  close(p[0]);
  close(p[1]);
}

TEST(Shim, UnknownNumbersAndThreadCallsAreRefused) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  EXPECT_EQ(shim.call(100000), -ENOSYS);
  EXPECT_EQ(shim.call(-1), -ENOSYS);  // nr is 32 bits: 0xffffffff
  // Local class: would act on the serving thread.
  EXPECT_EQ(shim.call(SYS_gettid), -EPERM);
  EXPECT_EQ(shim.call(SYS_exit, 0), -EPERM);
  EXPECT_EQ(shim.call(SYS_rt_sigprocmask, SIG_BLOCK, 0, 0), -EPERM);
  EXPECT_EQ(shim.call(SYS_clone, SIGCHLD), -EPERM);
  // In a PID namespace reboot ends the calling thread, a server inside
  // SERVE; run, these bad magic numbers would give EINVAL.
  EXPECT_EQ(shim.call(SYS_reboot, 0, 0, 0), -EPERM);
  // A new key's rights would go into the server's PKRU.
  EXPECT_EQ(shim.call(SYS_pkey_alloc, 0, 0), -EPERM);
  // The process is still whole and the server still serves.
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
}

TEST(Shim, CallsActingOnTheServingThreadByTheirArgumentsAreRefused) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  EXPECT_EQ(shim.call(SYS_sched_setaffinity, 0, sizeof set, reinterpret_cast<long>(&set)), -EPERM);
  EXPECT_EQ(shim.call(SYS_close_range, 1000, 1001, 2 /* CLOSE_RANGE_UNSHARE */), -EPERM);
  sigset_t none;
  sigemptyset(&none);
  const timespec zero{0, 0};
  shim.post(0, SYS_ppoll, 0, 0, reinterpret_cast<long>(&zero), reinterpret_cast<long>(&none), 8);
  EXPECT_EQ(shim.wait(0), -EPERM);
  // Without a signal mask it is an ordinary call.
  EXPECT_EQ(shim.call(SYS_ppoll, 0, 0, reinterpret_cast<long>(&zero)), 0);
  EXPECT_EQ(shim.call(SYS_close_range, 1000, 1001, 0), 0);
  // Execute-only memory: its protection key would be denied in the server's PKRU.
  void* page = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  EXPECT_EQ(shim.call(SYS_mprotect, reinterpret_cast<long>(page), 4096, PROT_EXEC), -EPERM);
  EXPECT_EQ(shim.call(SYS_mprotect, reinterpret_cast<long>(page), 4096, PROT_READ | PROT_EXEC), 0);
  munmap(page, 4096);
  EXPECT_EQ(shim.call(SYS_mmap, 0, 4096, PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), -EPERM);
}

TEST(Shim, ASignalForTheCallerComesBackToUserspaceFirst) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[0]);
  // The write raises SIGPIPE at the server; the entry completes only after
  // the server has been back in userspace to send it on.
  EXPECT_EQ(shim.call(SYS_write, p[1], reinterpret_cast<long>("x"), 1), -EPIPE);
  EXPECT_EQ(shim.caller_signals_.load(), 1);
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
  close(p[1]);
}

TEST(Shim, AnEntryCannotCallIntoTheShim) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  flexsc_shim_serve s{};
  s.cpu = -1;
  // Would nest SERVE in the server without bound.
  EXPECT_EQ(shim.call(SYS_ioctl, shim.fd(), static_cast<long>(FLEXSC_IOC_SERVE), reinterpret_cast<long>(&s)),
            -EDEADLK);
  flexsc_shim_wait w{shim.id(), 5, 0};
  EXPECT_EQ(shim.call(SYS_ioctl, shim.fd(), static_cast<long>(FLEXSC_IOC_WAIT), reinterpret_cast<long>(&w)),
            -EDEADLK);
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
}

TEST(Shim, AStoppedSleepIsFinishedAfterTheProcessContinues) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  const timespec ts{0, 300'000'000};
  const auto t0 = std::chrono::steady_clock::now();
  shim.post(0, SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
  const pid_t self = getpid();
  const int rc = in_child([self] {
    usleep(50'000);
    kill(self, SIGSTOP);
    usleep(50'000);
    kill(self, SIGCONT);
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(shim.wait(0), 0);  // restarted as restart_syscall, not -EPERM or -EINTR
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 290ms);
}

TEST(Shim, NopEntriesCompleteWithoutACall) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  shim.entry(0)->flags = FLEXSC_ENTRY_NOP;
  shim.entry(0)->nr = SYS_exit;
  __atomic_store_n(&shim.entry(0)->status, FLEXSC_SUBMITTED, __ATOMIC_RELEASE);
  shim.ring();
  EXPECT_EQ(shim.wait(0), 0);
}

TEST(Shim, CloseHasTakenEffectWhenTheEntryIsDone) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  for (int round = 0; round < 50; ++round) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ASSERT_EQ(shim.call(SYS_close, sv[1]), 0);
    // The release (and the peer's EOF) ran before DONE: no wait needed.
    char c;
    ASSERT_EQ(recv(sv[0], &c, 1, MSG_DONTWAIT), 0) << "round " << round;
    close(sv[0]);
  }
}

TEST(Shim, ABlockedServerDoesNotStallTheOthers) {
  Shim shim(1, 2);
  ASSERT_TRUE(shim.ok());
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char c;
  shim.post(1, SYS_read, p[0], reinterpret_cast<long>(&c), 1);  // blocks one server
  std::this_thread::sleep_for(50ms);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(shim.call(SYS_getppid), getppid());
  ASSERT_EQ(write(p[1], "x", 1), 1);
  EXPECT_EQ(shim.wait(1), 1);
  close(p[0]);
  close(p[1]);
}

// FlexSC's spare: two servers on one CPU; the one that falls asleep in a
// call nobody marked as blocking hands over (the scheduler tells the
// module) to the other, which the calls after it need.
TEST(Shim, AServerAsleepInAnUnmarkedCallHandsOverToASpareOnItsCore) {
  Shim shim(1, 2, 0);
  ASSERT_TRUE(shim.ok());
  shim.mark_blocking = false;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char c;
  shim.post(1, SYS_read, p[0], reinterpret_cast<long>(&c), 1);
  std::this_thread::sleep_for(50ms);  // the spare has long gone to sleep
  int wrong = 0;
  for (int i = 0; i < 100 && !wrong; ++i)
    wrong += shim.call(SYS_getppid) != getppid();  // 20 s each when stuck
  const uint64_t overlapped = shim.stats().overlapped;
  ASSERT_EQ(write(p[1], "x", 1), 1);  // the read returns whatever happened: the servers can leave
  EXPECT_EQ(shim.wait(1), 1);
  EXPECT_EQ(wrong, 0) << "getppid stalled behind the sleeping read";
  EXPECT_GT(overlapped, 0u) << "no call ran while the read slept";
  close(p[0]);
  close(p[1]);
}

// One server drains a region at a time, claiming with plain stores; when it
// falls asleep in a call it lets go of the region, and the entries posted
// behind that call in the same ring go to another server.
TEST(Shim, EntriesBehindACallThatSleepsGoToAnotherServer) {
  Shim shim(1, 2);
  ASSERT_TRUE(shim.ok());
  shim.mark_blocking = false;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char c;
  constexpr unsigned kBehind = 16;
  shim.prepare(0, SYS_read, p[0], reinterpret_cast<long>(&c), 1);
  for (unsigned i = 1; i <= kBehind; ++i) shim.prepare(i, SYS_getppid);
  shim.ring(kBehind + 1);
  unsigned done = 0;
  for (unsigned i = 1; i <= kBehind; ++i) done += shim.wait(i, 5s) == getppid();
  ASSERT_EQ(write(p[1], "x", 1), 1);
  EXPECT_EQ(shim.wait(0), 1);
  EXPECT_EQ(done, kBehind) << "entries waited behind the sleeping read";
  close(p[0]);
  close(p[1]);
}

// A thread parked in FLEXSC_IOC_WAIT on one entry, for up to 5 s, by the
// time the constructor returns.  join() gives what the ioctl returned.
class ParkedWaiter {
 public:
  ParkedWaiter(Shim& shim, int index)
      : thread_([this, &shim, index] {
          flexsc_shim_wait w{shim.id(), index, 5'000'000'000};
          rc_ = sys_ioctl(shim.fd(), FLEXSC_IOC_WAIT, &w);
        }) {
    std::this_thread::sleep_for(100ms);  // parked by now
  }
  long join() {
    thread_.join();
    return rc_;
  }

 private:
  long rc_ = LONG_MIN;
  std::thread thread_;
};

// A waiter parked on an entry the server has made DONE is woken when the
// server then falls asleep in a call nobody marked as blocking, not when
// that call returns.
TEST(Shim, AWaiterIsWokenWhenItsServerSleepsInAnUnmarkedCall) {
  Shim shim(1, 1);
  ASSERT_TRUE(shim.ok());
  shim.mark_blocking = false;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ParkedWaiter waiter(shim, 0);
  char c;
  shim.prepare(0, SYS_getppid);
  shim.prepare(1, SYS_read, p[0], reinterpret_cast<long>(&c), 1);
  shim.ring(2);  // one pass: entry 0, then the read, which sleeps
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(waiter.join(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "the waiter slept until its timeout";
  EXPECT_EQ(shim.wait(0), getppid());
  ASSERT_EQ(write(p[1], "x", 1), 1);
  EXPECT_EQ(shim.wait(1), 1);
  close(p[0]);
  close(p[1]);
}

TEST(Shim, WaitTimesOutAndWakes) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  flexsc_shim_wait w{shim.id(), 3, 10'000'000};  // entry 3 is never posted
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_WAIT, &w), -ETIMEDOUT);
  const timespec ts{0, 100'000'000};
  shim.post(2, SYS_nanosleep, reinterpret_cast<long>(&ts), 0);
  EXPECT_EQ(shim.wait(2), 0);
}

// An entry the process completes itself (the library cancels entries at
// shutdown) wakes a waiter parked on it through FLEXSC_IOC_NOTIFY.
TEST(Shim, NotifyWakesAWaiterOfAnEntryCompletedOutsideTheModule) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  ParkedWaiter waiter(shim, 3);  // entry 3 is never posted
  shim.entry(3)->ret = -ECANCELED;
  __atomic_store_n(&shim.entry(3)->status, FLEXSC_DONE, __ATOMIC_RELEASE);
  uint32_t id = shim.id();
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_NOTIFY, &id), 0);
  EXPECT_EQ(waiter.join(), 0) << "the waiter was not woken (-ETIMEDOUT after 5 s)";
  id = 999;
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_NOTIFY, &id), -ENOENT);
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_NOTIFY, reinterpret_cast<void*>(8)), -EFAULT);
  __atomic_store_n(&shim.entry(3)->status, FLEXSC_FREE, __ATOMIC_RELAXED);
}

// NOTIFY with nothing DONE: the owner has something else to look at (a
// fiber scheduler told of a fiber to run).  A NOTIFY made before the WAIT
// ends it at once; it is used up then.
TEST(Shim, NotifyWakesAWaiterWhenNothingIsDone) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  uint32_t id = shim.id();
  ParkedWaiter waiter(shim, 3);  // entry 3 is never posted
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_NOTIFY, &id), 0);
  EXPECT_EQ(waiter.join(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "the waiter slept until its timeout";
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_NOTIFY, &id), 0);
  flexsc_shim_wait w{shim.id(), 3, 5'000'000'000};
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_WAIT, &w), 0) << "a NOTIFY before the WAIT was lost";
  w.timeout_ns = 10'000'000;
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_WAIT, &w), -ETIMEDOUT) << "a NOTIFY counted twice";
}

TEST(Shim, BadArgumentsAreRefusedCleanly) {
  Shim shim(1, 2);
  ASSERT_TRUE(shim.ok());
  const int fd = shim.fd();
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_REGISTER, reinterpret_cast<void*>(8)), -EFAULT);
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_SERVE, reinterpret_cast<void*>(-4096L)), -EFAULT);
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_STATS, reinterpret_cast<void*>(8)), -EFAULT);
  flexsc_shim_region r{12345, 1, 0};  // not page aligned
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_REGISTER, &r), -EINVAL);
  r = {0x1000, 0, 0};
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_REGISTER, &r), -EINVAL);
  r = {0x1000, FLEXSC_SHIM_MAX_PAGES + 1, 0};
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_REGISTER, &r), -EINVAL);
  r = {0x1000, 1, 0};  // nothing mapped there
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_REGISTER, &r), -EFAULT);
  r = {0, 1, 999};
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_UNREGISTER, &r), -ENOENT);
  flexsc_shim_wait w{77, -1, 1};
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_WAIT, &w), -ENOENT);
  w = {shim.id(), 64, 1};  // one page: entries 0..63
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_WAIT, &w), -EINVAL);
  flexsc_shim_serve s{};
  s.cpu = 100000;
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_SERVE, &s), -EINVAL);
  // `pending` passed in is not trusted: a thread finishes only what the
  // module held for it.  Entry 7 is BUSY in the other server's read.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char c;
  shim.post(7, SYS_read, p[0], reinterpret_cast<long>(&c), 1);
  for (int i = 0; i < 5000 && __atomic_load_n(&shim.entry(7)->status, __ATOMIC_ACQUIRE) != FLEXSC_BUSY; ++i)
    std::this_thread::sleep_for(1ms);
  s.cpu = -1;
  s.npending = FLEXSC_SHIM_MAX_PENDING + 1;
  s.pending[0] = 0;
  s.pending[1] = reinterpret_cast<uint64_t>(shim.entry(5)) + 8;
  s.pending[2] = reinterpret_cast<uint64_t>(shim.entry(6));
  s.pending[3] = reinterpret_cast<uint64_t>(shim.entry(7));
  s.flags = FLEXSC_SERVE_PUBLISH_ONLY;
  EXPECT_EQ(sys_ioctl(fd, FLEXSC_IOC_SERVE, &s), 0);
  EXPECT_EQ(s.npending, 0u);
  EXPECT_EQ(shim.entry(6)->status, FLEXSC_FREE);
  EXPECT_EQ(shim.entry(7)->status, FLEXSC_BUSY) << "another server's entry was published";
  ASSERT_EQ(write(p[1], "x", 1), 1);
  EXPECT_EQ(shim.wait(7), 1);
  close(p[0]);
  close(p[1]);
  // Random command numbers and arguments.
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    unsigned long cmd = static_cast<unsigned>(rng());
    if (i % 2)
      cmd = _IOC(static_cast<unsigned>(rng() % 4), FLEXSC_SHIM_IOC_MAGIC, static_cast<unsigned>(rng() % 16),
                 static_cast<unsigned>(rng() % 256));
    if (cmd == FLEXSC_IOC_SERVE || cmd == FLEXSC_IOC_LEAVE || cmd == FLEXSC_IOC_WAIT) continue;
    sys_ioctl(fd, cmd, reinterpret_cast<void*>(rng() % 2 ? rng() : 0));
  }
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
  // A second attachment of the same process.
  const int fd2 = open(FLEXSC_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd2, 0);
  const size_t control_bytes = FLEXSC_SHIM_CONTROL_PAGES * 4096;
  void* page = mmap(nullptr, control_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  flexsc_shim_attach a{FLEXSC_SHIM_ABI, 0, reinterpret_cast<uint64_t>(page)};
  EXPECT_EQ(sys_ioctl(fd2, FLEXSC_IOC_ATTACH, &a), -EBUSY);
  EXPECT_EQ(sys_ioctl(fd2, FLEXSC_IOC_WAKE, nullptr), -ENXIO);  // not attached
  close(fd2);
  munmap(page, control_bytes);
}

TEST(Shim, AnotherProcessCannotUseTheDescriptor) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  const int fd = shim.fd();
  const int rc = in_child([fd] {
    flexsc_shim_region r{0, 1, 0};
    flexsc_shim_serve s{};
    s.cpu = -1;
    return sys_ioctl(fd, FLEXSC_IOC_UNREGISTER, &r) == -EPERM &&
                   sys_ioctl(fd, FLEXSC_IOC_SERVE, &s) == -EPERM &&
                   sys_ioctl(fd, FLEXSC_IOC_WAKE, nullptr) == -EPERM
               ? 0
               : 1;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
}

// One server drains a region at a time and claims with plain stores: two
// regions over the same entries could both claim one, so the module
// refuses the second; once the first is gone the pages can be registered.
// A region right next to another is no overlap.
TEST(Shim, OverlappingRegionsAreRefused) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  flexsc_shim_region same{reinterpret_cast<uint64_t>(shim.entry(0)), 1, 0};
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &same), -EBUSY);
  void* two = mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(two, MAP_FAILED);
  flexsc_shim_region both{reinterpret_cast<uint64_t>(two), 2, 0};
  ASSERT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &both), 0);
  flexsc_shim_region second{reinterpret_cast<uint64_t>(two) + 4096, 1, 0};
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &second), -EBUSY);
  ASSERT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_UNREGISTER, &both), 0);
  ASSERT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &second), 0);
  flexsc_shim_region first{reinterpret_cast<uint64_t>(two), 1, 0};
  ASSERT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &first), 0) << "next to a region, not over it";
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_UNREGISTER, &first), 0);
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_UNREGISTER, &second), 0);
  munmap(two, 2 * 4096);
  EXPECT_EQ(shim.call(SYS_getppid), getppid()) << "the first region still serves";
}

// Pages a file system backs are refused: the module writes them behind the
// page cache.  Anonymous shared memory (shmem) is taken.

TEST(Shim, FileBackedPagesAreRefused) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  const char* dir = "/tmp/flexsc-ramfs";
  ASSERT_TRUE(mkdir(dir, 0700) == 0 || errno == EEXIST);
  ASSERT_EQ(mount("none", dir, "ramfs", 0, nullptr), 0) << std::strerror(errno);
  struct Unmount {
    const char* dir;
    ~Unmount() { umount(dir); }
  } unmount{dir};
  const int file = open("/tmp/flexsc-ramfs/pages", O_RDWR | O_CREAT, 0600);
  ASSERT_GE(file, 0);
  ASSERT_EQ(ftruncate(file, 4096), 0);
  for (const int flags : {MAP_SHARED, MAP_PRIVATE}) {
    void* mapped = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, flags, file, 0);
    ASSERT_NE(mapped, MAP_FAILED);
    flexsc_shim_region r{reinterpret_cast<uint64_t>(mapped), 1, 0};
    EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &r), -EOPNOTSUPP)
        << (flags == MAP_SHARED ? "shared" : "private");
    munmap(mapped, 4096);
  }
  close(file);
  void* shared = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  flexsc_shim_region r{reinterpret_cast<uint64_t>(shared), 1, 0};
  ASSERT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_REGISTER, &r), 0);
  EXPECT_EQ(sys_ioctl(shim.fd(), FLEXSC_IOC_UNREGISTER, &r), 0);
  munmap(shared, 4096);
}

// A child sharing the memory but not the thread group (vfork, CLONE_VM
// without CLONE_THREAD) has descriptors and credentials of its own.
TEST(Shim, AChildSharingTheMemoryCannotUseTheDescriptor) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  static volatile long child_rc;  // the vfork child writes it in our memory
  child_rc = 1;
  const int fd = shim.fd();
  const pid_t pid = vfork();
  if (pid == 0) {
    child_rc = syscall(SYS_ioctl, fd, FLEXSC_IOC_WAKE, 0) < 0 ? -errno : 0;
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_EQ(child_rc, -EPERM);
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
}

TEST(Shim, AProcessUnderSeccompIsRefused) {
  const int rc = in_child([] {
    sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog prog{1, allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      return 2;
    Shim shim;
    return !shim.ok() ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

TEST(Shim, KillingAServingProcessReleasesEverything) {
  for (int round = 0; round < 5; ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      Shim shim(4, 2);
      int p[2];
      if (!shim.ok() || pipe(p) != 0) _exit(1);
      char c;
      shim.post(7, SYS_read, p[0], reinterpret_cast<long>(&c), 1);  // a server blocked in the kernel
      if (write(ready[1], "r", 1) != 1) _exit(1);
      for (;;) shim.call(SYS_getppid);
    }
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    std::this_thread::sleep_for(20ms);
    kill(pid, SIGKILL);
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    close(ready[0]);
    close(ready[1]);
  }
}

TEST(Shim, TheModuleStaysWhileInUse) {
  Shim shim;
  ASSERT_TRUE(shim.ok());
  EXPECT_EQ(syscall(SYS_delete_module, "flexsc_shim", O_NONBLOCK), -1);
  EXPECT_TRUE(errno == EBUSY || errno == EWOULDBLOCK) << std::strerror(errno);
  EXPECT_EQ(shim.call(SYS_getpid), getpid());
}

}  // namespace
