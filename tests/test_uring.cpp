// What only the io_uring backends do, on `uring` and `uring-sqpoll`:
//   - blocking calls are asynchronous: a pending accept and a pending pipe
//     read do not delay 10,000 writes posted after them, and need no thread;
//   - more entries in flight than a ring has slots all complete;
//   - the semantics io_uring changes are put back (O_NONBLOCK, short
//     transfers, -ESPIPE, timeouts);
//   - shutdown cancels what is in the kernel, whether or not its owner waits;
//   - a forced io_uring backend fails clearly where io_uring_setup is
//     denied (seccomp), and `auto` falls back to `thread` there;
//   - SQPOLL: one kernel submission thread per syscall core, pinned there;
//   - the statistics say which calls went through io_uring.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "syscall_threads.h"
#include "test_util.h"
#include "watchdog.h"

namespace {

using flexsc::test::Pipe;
using flexsc::test::scaled;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

uint16_t status(const flexsc_entry* e) {
  return __atomic_load_n(&e->status, __ATOMIC_ACQUIRE);
}

// A context, destroyed on scope exit.
struct Ctx {
  flexsc_ctx* ctx = nullptr;
  explicit Ctx(unsigned pages) { EXPECT_EQ(flexsc_ctx_create(pages, &ctx), 0); }
  ~Ctx() {
    if (ctx) {
      EXPECT_EQ(flexsc_ctx_destroy(ctx), 0);
    }
  }
  flexsc_entry* post(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0) {
    flexsc_entry* e = flexsc_get_entry(ctx);
    EXPECT_NE(e, nullptr);
    if (e) {
      flexsc_prep(e, nr, a1, a2, a3, a4, 0, 0);
    }
    return e;
  }
  long wait_seen(flexsc_entry* e) {
    const long r = flexsc_wait_entry(ctx, e);
    flexsc_seen(ctx, e);
    return r;
  }
};

// A listening Unix socket at an abstract address, and a way to connect to it.
struct Listener {
  int fd = -1;
  sockaddr_un addr{};
  socklen_t len = 0;
  explicit Listener(int flags = 0) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    addr.sun_family = AF_UNIX;
    const std::string name = "flexsc-uring-test-" + std::to_string(getpid()) + "-" + std::to_string(fd);
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(fd, 16), 0);
  }
  ~Listener() { close(fd); }
  int connect_client() const {
    const int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(connect(c, reinterpret_cast<const sockaddr*>(&addr), len), 0);
    return c;
  }
};

class Uring : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    flexsc_shutdown();
    setenv("FLEXSC_BACKEND", GetParam(), 1);
    ASSERT_EQ(flexsc_init(nullptr), 0);
    ASSERT_STREQ(flexsc_backend(), GetParam());
  }
  void TearDown() override {
    flexsc_shutdown();
    unsetenv("FLEXSC_BACKEND");
  }
};

// A pending accept and a pending pipe read, posted first, do not delay the
// 10,000 writes posted after them in the same context; nor does any of it
// need another syscall thread.
TEST_P(Uring, BlockingCallsDoNotDelayLaterEntries) {
  Watchdog dog("asynchrony", 60s);
  Ctx c(4);
  Listener l;
  Pipe p;
  flexsc_stats before{};
  ASSERT_EQ(flexsc_get_stats(&before), 0);
  char buf[8] = {};
  flexsc_entry* acc = c.post(SYS_accept4, l.fd, 0, 0, SOCK_CLOEXEC);
  flexsc_entry* rd = c.post(SYS_read, p.r, reinterpret_cast<long>(buf), sizeof buf);
  ASSERT_EQ(flexsc_submit(c.ctx), 2);
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  const long writes = scaled(10000);
  for (long done = 0; done < writes;) {
    std::vector<flexsc_entry*> batch;
    for (int i = 0; i < 128 && done + static_cast<long>(batch.size()) < writes; ++i)
      batch.push_back(c.post(SYS_write, null_fd, reinterpret_cast<long>("0123456789"), 10));
    ASSERT_EQ(flexsc_submit(c.ctx), static_cast<int>(batch.size()));
    for (flexsc_entry* e : batch) ASSERT_EQ(c.wait_seen(e), 10);
    done += static_cast<long>(batch.size());
  }
  EXPECT_NE(status(acc), FLEXSC_DONE) << "the accept completed without a client";
  EXPECT_NE(status(rd), FLEXSC_DONE) << "the read completed without data";
  flexsc_stats mid{};
  ASSERT_EQ(flexsc_get_stats(&mid), 0);
  EXPECT_EQ(mid.syscall_threads, before.syscall_threads) << "a blocked call took a syscall thread";
  EXPECT_GE(mid.uring_calls - before.uring_calls, static_cast<uint64_t>(writes));
  // Now release them: both complete with what the syscalls return.
  const int client = l.connect_client();
  ASSERT_EQ(write(p.w, "ping", 4), 4);
  const long accepted = c.wait_seen(acc);
  EXPECT_GE(accepted, 0);
  EXPECT_EQ(fcntl(static_cast<int>(accepted), F_GETFD), FD_CLOEXEC) << "accept4 flags lost";
  EXPECT_EQ(c.wait_seen(rd), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  close(static_cast<int>(accepted));
  close(client);
  close(null_fd);
}

// More entries in flight at once than the ring has completion slots (a
// context of 64 pages has 4,096 entries; its ring holds 1,024 submissions
// and 2,048 completions): every one completes, with its own result.
TEST_P(Uring, MoreInFlightThanTheRingHolds) {
  Watchdog dog("ring pressure", 60s);
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  constexpr int kPipes = 2100;
  if (lim.rlim_max < 4 * kPipes) GTEST_SKIP() << "needs " << 4 * kPipes << " descriptors";
  lim.rlim_cur = std::max<rlim_t>(lim.rlim_cur, 4 * kPipes);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  Ctx c(64);
  std::vector<std::unique_ptr<Pipe>> pipes;
  std::vector<flexsc_entry*> reads;
  std::vector<char> bufs(kPipes * 8);
  for (int i = 0; i < kPipes; ++i) {
    pipes.push_back(std::make_unique<Pipe>());
    ASSERT_GE(pipes.back()->r, 0);
    reads.push_back(c.post(SYS_read, pipes.back()->r, reinterpret_cast<long>(&bufs[i * 8]), 8));
  }
  ASSERT_EQ(flexsc_submit(c.ctx), kPipes);
  // All of them are in flight (blocked on empty pipes) before any completes.
  flexsc_entry* none = nullptr;
  EXPECT_EQ(flexsc_peek(c.ctx, &none), -EAGAIN);
  for (int i = kPipes - 1; i >= 0; --i) {
    const std::string msg = std::to_string(i);
    ASSERT_EQ(write(pipes[i]->w, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
  }
  for (int i = 0; i < kPipes; ++i) {
    const std::string msg = std::to_string(i);
    ASSERT_EQ(c.wait_seen(reads[i]), static_cast<long>(msg.size())) << "read " << i;
    EXPECT_EQ(std::string(&bufs[i * 8], msg.size()), msg) << "read " << i;
  }
}

// io_uring waits where the syscall would not, or moves fewer bytes: the
// backend gives the syscall's answer.
TEST_P(Uring, SemanticsIoUringChangesArePutBack) {
  Watchdog dog("semantics", 60s);
  // A non-blocking empty pipe: -EAGAIN at once (io_uring would wait).
  int nb[2];
  ASSERT_EQ(pipe2(nb, O_NONBLOCK | O_CLOEXEC), 0);
  char buf[64];
  EXPECT_EQ(flexsc_syscall(SYS_read, nb[0], reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0), -EAGAIN);
  // Filling it: the write stops where the pipe is full, as the syscall does.
  std::vector<char> big(1 << 20, 'x');
  const long first =
      flexsc_syscall(SYS_write, nb[1], reinterpret_cast<long>(big.data()), big.size(), 0, 0, 0);
  const long sync_next = write(nb[1], big.data(), big.size());
  EXPECT_GT(first, 0);
  EXPECT_LT(first, static_cast<long>(big.size()));
  EXPECT_EQ(sync_next, -1) << "the flexsc write did not fill the pipe";
  // pread on a pipe is -ESPIPE (io_uring would read from it).
  EXPECT_EQ(flexsc_syscall(SYS_pread64, nb[0], reinterpret_cast<long>(buf), 1, 0, 0, 0), -ESPIPE);
  EXPECT_EQ(flexsc_syscall(SYS_pwrite64, nb[1], reinterpret_cast<long>("x"), 1, 0, 0, 0), -ESPIPE);
  close(nb[0]);
  close(nb[1]);
  // A blocking pipe and a slow reader: the whole megabyte goes in one call
  // (io_uring alone would stop at the pipe's capacity).
  Pipe p;
  std::atomic<size_t> drained{0};
  std::thread reader([&] {
    std::vector<char> sink(4096);
    for (ssize_t n; drained < big.size() && (n = read(p.r, sink.data(), sink.size())) > 0;) drained += n;
  });
  EXPECT_EQ(flexsc_syscall(SYS_write, p.w, reinterpret_cast<long>(big.data()), big.size(), 0, 0, 0),
            static_cast<long>(big.size()));
  reader.join();
  EXPECT_EQ(drained.load(), big.size());
  // Sockets: non-blocking receive and send semantics.
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_EQ(flexsc_syscall(SYS_recvfrom, sv[0], reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0), -EAGAIN);
  EXPECT_EQ(flexsc_syscall(SYS_sendto, sv[1], reinterpret_cast<long>("hey"), 3, 0, 0, 0), 3);
  EXPECT_EQ(flexsc_syscall(SYS_recvfrom, sv[0], reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0), 3);
  close(sv[0]);
  close(sv[1]);
  // MSG_WAITALL on a blocking socket: all of it, though it comes in parts.
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(write(sv[1], "0123456789", 10), 10);
  std::thread late([&] {
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(write(sv[1], "abcdefghij", 10), 10);
  });
  EXPECT_EQ(flexsc_syscall(SYS_recvfrom, sv[0], reinterpret_cast<long>(buf), 20, MSG_WAITALL, 0, 0), 20);
  late.join();
  // SO_RCVTIMEO: the read gives up after it, as the syscall does (io_uring
  // alone would wait for ever).
  const timeval hundred_ms{0, 100'000};
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &hundred_ms, sizeof hundred_ms), 0);
  const auto t_read = std::chrono::steady_clock::now();
  EXPECT_EQ(flexsc_syscall(SYS_read, sv[0], reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0), -EAGAIN);
  EXPECT_GE(std::chrono::steady_clock::now() - t_read, 90ms);
  close(sv[0]);
  close(sv[1]);
  // preadv2 flags io_uring would refuse without IOPOLL: the syscall's answer.
  char tmpl[] = "/tmp/flexsc-uring-hipri-XXXXXX";
  const int file = mkostemp(tmpl, O_CLOEXEC);
  ASSERT_GE(file, 0);
  unlink(tmpl);
  ASSERT_EQ(write(file, "content", 7), 7);
  iovec iov{buf, 7};
  const long sync_hipri = syscall(SYS_preadv2, file, &iov, 1, 0, 0, RWF_HIPRI);
  EXPECT_EQ(flexsc_syscall(SYS_preadv2, file, reinterpret_cast<long>(&iov), 1, 0, 0, RWF_HIPRI),
            sync_hipri < 0 ? -errno : sync_hipri);
  close(file);
  // accept on a non-blocking listener: -EAGAIN at once.
  Listener nbl(SOCK_NONBLOCK);
  EXPECT_EQ(flexsc_syscall(SYS_accept, nbl.fd, 0, 0, 0, 0, 0), -EAGAIN);
  // Sleeps: at least as long as asked, 0 on success, -EINVAL on a bad request.
  const timespec twenty_ms{0, 20'000'000};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(flexsc_syscall(SYS_nanosleep, reinterpret_cast<long>(&twenty_ms), 0, 0, 0, 0, 0), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  const timespec bad{0, 1'000'000'000};
  EXPECT_EQ(flexsc_syscall(SYS_nanosleep, reinterpret_cast<long>(&bad), 0, 0, 0, 0, 0), -EINVAL);
  EXPECT_EQ(flexsc_syscall(SYS_nanosleep, 8, 0, 0, 0, 0, 0), -EFAULT);
  timespec past{};
  clock_gettime(CLOCK_MONOTONIC, &past);
  EXPECT_EQ(flexsc_syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, reinterpret_cast<long>(&past),
                           0, 0, 0),
            0);
}

// A call waiting in the caller's ring completes while the caller sits in
// a blocking syscall of its own: that syscall is not interrupted (io_uring
// runs such completions as task work in the submitting thread, and by
// default interrupts it to do so: EINTR from the program's epoll_wait).
// In a fresh process: tearing down an earlier runtime's rings sends the
// threads that used them task work too, at a moment of the kernel's choice.
std::string completion_leaves_epoll_wait_alone() {
  if (flexsc_init(nullptr) != 0) return "init";
  flexsc_ctx* ctx;
  if (flexsc_ctx_create(1, &ctx) != 0) return "ctx";
  Pipe p;
  char byte = 0;
  flexsc_entry* e = flexsc_get_entry(ctx);
  flexsc_prep(e, SYS_read, p.r, reinterpret_cast<long>(&byte), 1, 0, 0, 0);
  if (flexsc_submit(ctx) != 1) return "submit";
  flexsc_entry* none;
  for (int i = 0; i < 5; ++i) {  // the read now waits in the ring
    if (flexsc_peek(ctx, &none) != -EAGAIN) return "the read completed without data";
    std::this_thread::sleep_for(1ms);
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    if (write(p.w, "x", 1) != 1) std::abort();
  });
  epoll_event ev;
  const int r = epoll_wait(ep, &ev, 1, 200);
  const int err = errno;
  writer.join();
  close(ep);
  if (r != 0) return std::string("epoll_wait: ") + std::strerror(err);
  if (flexsc_wait_entry(ctx, e) != 1 || byte != 'x') return "the read";
  flexsc_seen(ctx, e);
  return flexsc_ctx_destroy(ctx) == 0 ? "" : "destroy";
}

TEST(UringFresh, CompletionsDoNotInterruptTheCallersOwnSyscalls) {
  flexsc_shutdown();
  for (const char* mode : {"uring", "uring-sqpoll"}) {
    SCOPED_TRACE(mode);
    setenv("FLEXSC_BACKEND", mode, 1);
    EXPECT_IN_FRESH_PROCESS(completion_leaves_epoll_wait_alone);
  }
  unsetenv("FLEXSC_BACKEND");
}

// A context handed to another thread keeps working there (without SQPOLL
// a ring belongs to the thread that made it: the new owner gets its own).
TEST_P(Uring, AContextChangesHands) {
  Watchdog dog("hand-over", 30s);
  Ctx c(1);
  Pipe p;
  auto round = [&](char what) {
    char byte = 0;
    flexsc_entry* w = c.post(SYS_write, p.w, reinterpret_cast<long>(&what), 1);
    ASSERT_EQ(flexsc_submit(c.ctx), 1);
    EXPECT_EQ(c.wait_seen(w), 1);
    flexsc_entry* r = c.post(SYS_read, p.r, reinterpret_cast<long>(&byte), 1);
    ASSERT_EQ(flexsc_submit(c.ctx), 1);
    EXPECT_EQ(c.wait_seen(r), 1);
    EXPECT_EQ(byte, what);
  };
  round('a');
  std::thread([&] { round('b'); }).join();
  round('c');
  flexsc_stats s{};
  ASSERT_EQ(flexsc_get_stats(&s), 0);
  EXPECT_GE(s.uring_calls, 6u) << "the hand-overs left io_uring";
}

// Shutdown with calls pending in the kernel: each completes with
// -ECANCELED, whether its owner waits for it or has gone elsewhere.
TEST_P(Uring, ShutdownCancelsWhatIsInTheKernel) {
  Watchdog dog("cancellation", 30s);
  Listener l;
  Pipe p;
  char buf[8];
  // A waiting owner on another thread.
  std::atomic<long> waited{LONG_MIN};
  std::thread owner([&] {
    Ctx c(1);
    flexsc_entry* e = c.post(SYS_accept, l.fd, 0, 0);
    ASSERT_EQ(flexsc_submit(c.ctx), 1);
    waited = c.wait_seen(e);
  });
  // And one that submitted and does not wait.
  flexsc_ctx* idle;
  ASSERT_EQ(flexsc_ctx_create(1, &idle), 0);
  flexsc_entry* e = flexsc_get_entry(idle);
  flexsc_prep(e, SYS_read, p.r, reinterpret_cast<long>(buf), sizeof buf, 0, 0, 0);
  ASSERT_EQ(flexsc_submit(idle), 1);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(status(e), FLEXSC_SUBMITTED);
  flexsc_shutdown();
  owner.join();
  EXPECT_EQ(waited.load(), -ECANCELED);
  EXPECT_EQ(status(e), FLEXSC_DONE);
  EXPECT_EQ(e->ret, -ECANCELED);
  flexsc_seen(idle, e);
  EXPECT_EQ(flexsc_ctx_destroy(idle), 0);
  // Nothing was lost: the pipe's data is still there for the next reader.
  ASSERT_EQ(write(p.w, "left", 4), 4);
  EXPECT_EQ(read(p.r, buf, sizeof buf), 4);
}

// SQPOLL: one kernel submission thread per syscall core, pinned to it; it
// goes away with the runtime.
TEST_P(Uring, SubmissionThreadsArePinnedToTheSyscallCore) {
  if (std::string(GetParam()) != "uring-sqpoll") GTEST_SKIP() << "no submission thread without SQPOLL";
  flexsc_shutdown();
  auto sqpoll_threads = [] { return flexsc::test::threads_named("iou-sqp-"); };
  // Those of earlier runtimes leave asynchronously.
  ASSERT_TRUE(flexsc::test::eventually([&] { return sqpoll_threads().empty(); }));
  setenv("FLEXSC_SYSCALL_CORES", "1", 1);
  const int init = flexsc_init(nullptr);
  unsetenv("FLEXSC_SYSCALL_CORES");
  ASSERT_EQ(init, 0);
  // Calls from two threads (two rings) share the core's one submission thread.
  Pipe p;
  ASSERT_EQ(flexsc_syscall(SYS_write, p.w, reinterpret_cast<long>("ab"), 2, 0, 0, 0), 2);
  std::thread([&] {
    EXPECT_EQ(flexsc_syscall(SYS_write, p.w, reinterpret_cast<long>("cd"), 2, 0, 0, 0), 2);
  }).join();
  const std::vector<int> tids = sqpoll_threads();
  ASSERT_EQ(tids.size(), 1u) << "one submission thread for the one syscall core";
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(tids[0], sizeof set, &set), 0);
  EXPECT_EQ(CPU_COUNT(&set), 1);
  EXPECT_TRUE(CPU_ISSET(1, &set)) << "not pinned to CPU 1";
  flexsc_shutdown();
  EXPECT_TRUE(flexsc::test::eventually([&] { return sqpoll_threads().empty(); }))
      << "the submission thread outlived the runtime";
}

// FLEXSC_STATS tells which calls went through io_uring and which through
// syscall threads.
TEST_P(Uring, StatisticsSayWhichPathEachCallTook) {
  flexsc_shutdown();
  const std::string path = "/tmp/flexsc-uring-stats-" + std::to_string(getpid());
  setenv("FLEXSC_STATS", path.c_str(), 1);
  ASSERT_EQ(flexsc_init(nullptr), 0);
  unsetenv("FLEXSC_STATS");
  Pipe p;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0), getppid());
    EXPECT_EQ(flexsc_syscall(SYS_write, p.w, reinterpret_cast<long>("z"), 1, 0, 0, 0), 1);
  }
  flexsc_stats s{};
  ASSERT_EQ(flexsc_get_stats(&s), 0);
  EXPECT_EQ(s.remote_calls, 3u);
  EXPECT_EQ(s.uring_calls, 3u);
  flexsc_shutdown();
  const std::string report = flexsc::test::read_file(path);
  unlink(path.c_str());
  EXPECT_NE(report.find(std::string("backend ") + GetParam()), std::string::npos) << report;
  EXPECT_NE(report.find("io_uring: 3 calls"), std::string::npos) << report;
  auto line_of = [&](const std::string& name) {
    std::istringstream in(report);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string prefix, word;
      if (words >> prefix >> word && word == name) return line;
    }
    return std::string();
  };
  EXPECT_NE(line_of("getppid").find("remote 3 io_uring 0"), std::string::npos) << report;
  EXPECT_NE(line_of("write").find("remote 0 io_uring 3"), std::string::npos) << report;
}

INSTANTIATE_TEST_SUITE_P(Modes, Uring, ::testing::Values("uring", "uring-sqpoll"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param) == "uring" ? std::string("plain")
                                                                     : std::string("sqpoll");
                         });

// Runs fn in a forked child whose seccomp filter makes io_uring_setup fail
// with EPERM (as container runtimes do); returns the child's exit status.
int in_child_without_io_uring(int (*fn)()) {
  const pid_t pid = fork();
  if (pid == 0) {
    flexsc::test::EpermFilter filter(SYS_io_uring_setup);
    sock_fprog prog = filter.prog();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      _exit(90);
    _exit(fn());
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(UringSelection, ForcedBackendFailsClearlyWithoutIoUring) {
  flexsc_shutdown();
  for (const char* mode : {"uring", "uring-sqpoll"}) {
    setenv("FLEXSC_BACKEND", mode, 1);
    const int code = in_child_without_io_uring([] {
      const int rc = flexsc_init(nullptr);
      if (rc == -EPERM || rc == -ENOSYS) return std::strcmp(flexsc_backend(), "none") == 0 ? 0 : 2;
      return 1;
    });
    EXPECT_EQ(code, 0) << mode << ": a forced io_uring backend started (1), or left a runtime behind (2)";
  }
  unsetenv("FLEXSC_BACKEND");
}

TEST(UringSelection, AutoFallsBackToThreadsWithoutIoUring) {
  flexsc_shutdown();
  unsetenv("FLEXSC_BACKEND");
  const int code = in_child_without_io_uring([] {
    if (flexsc_init(nullptr) != 0) return 1;
    if (std::strcmp(flexsc_backend(), "thread") != 0) return 2;
    return flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0) == getppid() ? 0 : 3;
  });
  EXPECT_EQ(code, 0)
      << "auto without io_uring: init failed (1), chose another backend (2), a call failed (3)";
}

TEST(UringSelection, AutoPrefersIoUringWhereItWorks) {
  flexsc_shutdown();
  unsetenv("FLEXSC_BACKEND");
  ASSERT_EQ(flexsc_init(nullptr), 0);
  const std::string chosen = flexsc_backend();
  flexsc_shutdown();
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  const bool several_cpus = CPU_COUNT(&set) > 1;
  EXPECT_EQ(chosen, several_cpus ? "uring-sqpoll" : "uring");
}

}  // namespace
