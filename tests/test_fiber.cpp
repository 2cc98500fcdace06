// M:N fibers (FlexSC-Threads): every test runs twice, with fibers whose
// syscalls post-and-switch through the backend under test, and with fibers
// issuing synchronous syscalls.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <flexsc/posix.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <flexsc/fiber.hpp>
#include <flexsc/flexsc.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "watchdog.h"

namespace fib = flexsc::fiber;
using flexsc::test::scaled;
using flexsc::test::Watchdog;
using namespace std::chrono_literals;

namespace {

class FiberTest : public ::testing::TestWithParam<bool> {
 protected:
  bool exception_less() const { return GetParam(); }
  fib::PoolOptions options(unsigned schedulers = 0) const {
    fib::PoolOptions o;
    o.exception_less = exception_less();
    o.schedulers = schedulers;
    return o;
  }
  static uint64_t total(const std::vector<fib::SchedulerStats>& stats, uint64_t fib::SchedulerStats::*field) {
    uint64_t n = 0;
    for (const auto& s : stats) n += s.*field;
    return n;
  }
};

// A temporary file holding bytes i % 251 at offset i.
struct PatternFile {
  static constexpr int kSize = 8192;
  int fd = -1;
  PatternFile() {
    char path[] = "/tmp/flexsc-fiber-XXXXXX";
    fd = mkstemp(path);
    unlink(path);
    std::string bytes(kSize, '\0');
    for (int i = 0; i < kSize; ++i) bytes[i] = static_cast<char>(i % 251);
    if (write(fd, bytes.data(), bytes.size()) != kSize) fd = -1;
  }
  ~PatternFile() { close(fd); }
};

// A listening Unix stream socket on an abstract address.
struct Listener {
  int fd = -1;
  sockaddr_un addr{};
  socklen_t len = 0;
  Listener() {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sun_family = AF_UNIX;
    const std::string name = "flexsc-fiber-test-" + std::to_string(getpid()) + "-" + std::to_string(fd);
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 128) != 0) {
      close(fd);
      fd = -1;
    }
  }
  ~Listener() { close(fd); }
  int connect_client() const {
    const int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(c, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
      close(c);
      return -1;
    }
    return c;
  }
};

TEST_P(FiberTest, TenThousandFibersEachMakeSyscallsWithCorrectResults) {
  Watchdog dog("10,000 fibers", 240s);
  PatternFile file;
  ASSERT_GE(file.fd, 0);
  const long n = scaled(10000);
  const long parent = getppid();
  std::atomic<long> wrong{0}, done{0};
  {
    fib::Pool pool(options());
    fib::WaitGroup wg;
    wg.add(n);
    for (long i = 0; i < n; ++i) {
      pool.spawn([&, i] {
            if (flexsc::syscall(SYS_getppid) != parent) wrong.fetch_add(1);
            unsigned char buf[16];
            const long off = (i * 37) % (PatternFile::kSize - 16);
            if (flexsc::syscall(SYS_pread64, file.fd, buf, sizeof buf, off) != 16) wrong.fetch_add(1);
            for (int k = 0; k < 16; ++k)
              if (buf[k] != (off + k) % 251) {
                wrong.fetch_add(1);
                break;
              }
            fib::this_fiber::yield();
            if (flexsc::syscall(SYS_getppid) != parent) wrong.fetch_add(1);
            done.fetch_add(1);
            wg.done();
          })
          .detach();
    }
    wg.wait();
    const auto stats = pool.stats();
    if (exception_less()) {
      EXPECT_GE(total(stats, &fib::SchedulerStats::syscalls_posted), static_cast<uint64_t>(3 * n));
      EXPECT_GE(total(stats, &fib::SchedulerStats::harvested), static_cast<uint64_t>(3 * n));
    } else {
      EXPECT_EQ(total(stats, &fib::SchedulerStats::syscalls_posted), 0u);
      EXPECT_GE(total(stats, &fib::SchedulerStats::syscalls_on_caller), static_cast<uint64_t>(3 * n));
    }
  }
  EXPECT_EQ(done.load(), n);
  EXPECT_EQ(wrong.load(), 0);
}

// Producers and consumers on four schedulers, through a one-slot buffer
// guarded by a Mutex and two condition variables: every item arrives once,
// and nobody sleeps through a wake-up (the watchdog catches a hang).
TEST_P(FiberTest, MutexAndConditionVariableLoseNoWakeupAcrossSchedulers) {
  Watchdog dog("mutex and condition variable stress", 240s);
  const long items = scaled(20000);
  constexpr int kProducers = 4, kConsumers = 4;
  fib::Mutex m;
  fib::ConditionVariable not_empty, not_full;
  bool full = false;
  long slot = 0;
  std::atomic<long> sum{0}, received{0};
  {
    fib::Pool pool(options(4));
    std::vector<fib::Fiber> fibers;
    for (int p = 0; p < kProducers; ++p)
      fibers.push_back(pool.spawn([&, p] {
        for (long i = p; i < items; i += kProducers) {
          std::unique_lock lock(m);
          not_full.wait(lock, [&] { return !full; });
          slot = i;
          full = true;
          not_empty.notify_one();
        }
      }));
    for (int c = 0; c < kConsumers; ++c)
      fibers.push_back(pool.spawn([&] {
        for (;;) {
          std::unique_lock lock(m);
          not_empty.wait(lock, [&] { return full || received.load() == items; });
          if (!full) return;
          sum.fetch_add(slot);
          full = false;
          if (received.fetch_add(1) + 1 == items) not_empty.notify_all();
          not_full.notify_one();
        }
      }));
    for (auto& f : fibers) f.join();
  }
  EXPECT_EQ(received.load(), items);
  EXPECT_EQ(sum.load(), items * (items - 1) / 2);
}

// A plain thread and a fiber hand a turn back and forth: every wake-up
// from outside reaches a scheduler that may be just going idle.
TEST_P(FiberTest, ThreadAndFiberPingPongLoseNoWakeup) {
  Watchdog dog("thread and fiber ping-pong", 120s);
  const long rounds = scaled(50000);
  fib::Semaphore to_fiber, to_thread;
  fib::Pool pool(options(1));
  auto f = pool.spawn([&] {
    for (long i = 0; i < rounds; ++i) {
      to_fiber.acquire();
      to_thread.release();
    }
  });
  for (long i = 0; i < rounds; ++i) {
    to_fiber.release();
    to_thread.acquire();
  }
  f.join();
}

TEST_P(FiberTest, ChannelSemaphoreAndWaitGroup) {
  Watchdog dog("channel", 120s);
  const long items = scaled(5000);
  fib::Channel<long> ch(8);
  fib::Semaphore slots(2);
  std::atomic<int> inside{0}, most{0};
  std::atomic<long> sum{0};
  fib::Pool pool(options(3));
  fib::WaitGroup producers, consumers;
  producers.add(2);
  for (int p = 0; p < 2; ++p)
    pool.spawn([&, p] {
          for (long i = p; i < items; i += 2) EXPECT_TRUE(ch.send(i));
          producers.done();
        })
        .detach();
  consumers.add(3);
  for (int c = 0; c < 3; ++c)
    pool.spawn([&] {
          while (auto v = ch.receive()) {
            slots.acquire();
            const int now = inside.fetch_add(1) + 1;
            int seen = most.load();
            while (now > seen && !most.compare_exchange_weak(seen, now)) {
            }
            fib::this_fiber::yield();
            inside.fetch_sub(1);
            slots.release();
            sum.fetch_add(*v);
          }
          consumers.done();
        })
        .detach();
  producers.wait();  // from the main thread: a plain thread blocks
  ch.close();
  EXPECT_FALSE(ch.send(1));
  consumers.wait();
  EXPECT_EQ(sum.load(), items * (items - 1) / 2);
  EXPECT_LE(most.load(), 2);
}

// One scheduler: while a fiber waits in a pipe read (or accept), the
// others keep running; then the read completes with the data.
TEST_P(FiberTest, FiberBlockedInPipeReadLeavesOthersRunning) {
  Watchdog dog("blocked pipe read", 60s);
  flexsc::test::Pipe pipe;
  ASSERT_GE(pipe.r, 0);
  fib::Pool pool(options(1));
  std::atomic<bool> reader_started{false};
  char got[8] = {};
  auto reader = pool.spawn([&] {
    reader_started = true;
    EXPECT_EQ(flexsc_posix_read(pipe.r, got, sizeof got), 5);
  });
  std::atomic<int> ticks{0};
  auto ticker = pool.spawn([&] {
    while (!reader_started) fib::this_fiber::yield();
    for (int i = 0; i < 50; ++i) {
      fib::this_fiber::sleep_for(1ms);
      ticks.fetch_add(1);
    }
  });
  ticker.join();  // ran to the end while the reader waited
  EXPECT_EQ(ticks.load(), 50);
  EXPECT_EQ(got[0], 0);
  ASSERT_EQ(write(pipe.w, "hello", 5), 5);
  reader.join();
  EXPECT_STREQ(got, "hello");
  EXPECT_GE(total(pool.stats(), &fib::SchedulerStats::readiness_waits), 1u);
}

TEST_P(FiberTest, FiberBlockedInAcceptLeavesOthersRunning) {
  Watchdog dog("blocked accept", 60s);
  Listener listener;
  ASSERT_GE(listener.fd, 0);
  fib::Pool pool(options(1));
  std::atomic<bool> accepting{false};
  int accepted = -1;
  auto acceptor = pool.spawn([&] {
    accepting = true;
    accepted = flexsc_posix_accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  });
  std::atomic<int> ticks{0};
  auto ticker = pool.spawn([&] {
    while (!accepting) fib::this_fiber::yield();
    for (int i = 0; i < 20; ++i) {
      fib::this_fiber::sleep_for(1ms);
      ticks.fetch_add(1);
    }
  });
  ticker.join();
  EXPECT_EQ(ticks.load(), 20);
  const int client = listener.connect_client();
  ASSERT_GE(client, 0);
  acceptor.join();
  ASSERT_GE(accepted, 0);
  // A round trip through the accepted socket, both sides fiber-aware.
  auto server = pool.spawn([&] {
    char buf[4];
    ASSERT_EQ(flexsc_posix_read(accepted, buf, 4), 4);
    ASSERT_EQ(flexsc_posix_write(accepted, buf, 4), 4);
  });
  ASSERT_EQ(write(client, "ping", 4), 4);
  char back[5] = {};
  ASSERT_EQ(read(client, back, 4), 4);
  EXPECT_STREQ(back, "ping");
  server.join();
  flexsc_posix_close(accepted);
  close(client);
}

// The process's threads, from /proc/self/status.
int thread_count() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

// Thousands of fibers blocked on idle sockets cost no threads: they wait
// for readiness (or inside io_uring), not in syscall threads.
TEST_P(FiberTest, IdleConnectionsCostNoThreads) {
  Watchdog dog("idle connections", 120s);
  const int n = static_cast<int>(scaled(4000));
  std::vector<int> ends(2 * static_cast<size_t>(n), -1);
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, &ends[2 * static_cast<size_t>(i)]), 0) << i;
  fib::Pool pool(options());
  const int before = thread_count();
  std::atomic<int> waiting{0}, echoed{0};
  fib::WaitGroup wg;
  wg.add(n);
  for (int i = 0; i < n; ++i)
    pool.spawn([&, i] {
          const int fd = ends[2 * static_cast<size_t>(i)];
          char c = 0;
          waiting.fetch_add(1);
          if (flexsc_posix_read(fd, &c, 1) == 1 && c == static_cast<char>(i)) echoed.fetch_add(1);
          wg.done();
        })
        .detach();
  while (waiting.load() < n) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);  // let every read reach its wait
  EXPECT_LE(thread_count(), before + 10) << n << " idle connections";
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>(i);
    ASSERT_EQ(write(ends[2 * static_cast<size_t>(i) + 1], &c, 1), 1);
  }
  wg.wait();
  EXPECT_EQ(echoed.load(), n);
  for (int i = 0; i < n; ++i) {
    flexsc_posix_close(ends[2 * static_cast<size_t>(i)]);
    close(ends[2 * static_cast<size_t>(i) + 1]);
  }
}

// Two fibers wait on one datagram socket; two datagrams arrive together:
// both fibers get one (an event is never slept through by a second waiter).
TEST_P(FiberTest, TwoFibersWaitingOnOneSocketBothGetData) {
  Watchdog dog("two waiters", 60s);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
  fib::Pool pool(options(2));
  std::atomic<int> got{0}, started{0};
  std::vector<fib::Fiber> readers;
  for (int i = 0; i < 2; ++i)
    readers.push_back(pool.spawn([&] {
      char c;
      started.fetch_add(1);
      if (flexsc_posix_recv(sv[0], &c, 1, 0) == 1) got.fetch_add(1);
    }));
  while (started.load() < 2) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(send(sv[1], "a", 1, 0), 1);
  ASSERT_EQ(send(sv[1], "b", 1, 0), 1);
  for (auto& r : readers) r.join();
  EXPECT_EQ(got.load(), 2);
  flexsc_posix_close(sv[0]);
  close(sv[1]);
}

// MSG_WAITALL waits for everything asked for, as the blocking call does.
TEST_P(FiberTest, RecvWaitallGetsEverything) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  fib::Pool pool(options(1));
  char buf[9] = {};
  auto reader = pool.spawn([&] { EXPECT_EQ(flexsc_posix_recv(sv[0], buf, 8, MSG_WAITALL), 8); });
  ASSERT_EQ(write(sv[1], "abcd", 4), 4);
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(write(sv[1], "efgh", 4), 4);
  reader.join();
  EXPECT_STREQ(buf, "abcdefgh");
  flexsc_posix_close(sv[0]);
  close(sv[1]);
}

// A TCP peer sends a little and closes while the reader waits: the reader
// gets the data (a short read), then end of stream, never a hang.
TEST_P(FiberTest, ReadUntilEndOfStreamAfterShortReads) {
  Watchdog dog("read until EOF", 60s);
  const int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(lst, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(lst, 4), 0);
  ASSERT_EQ(getsockname(lst, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  fib::Pool pool(options(1));
  for (int round = 0; round < 20; ++round) {
    const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const int server = accept4(lst, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(server, 0);
    std::atomic<bool> reading{false};
    std::string got;
    auto reader = pool.spawn([&] {
      char buf[256];
      reading = true;
      for (ssize_t n; (n = flexsc_posix_read(server, buf, sizeof buf)) > 0;)
        got.append(buf, static_cast<size_t>(n));
    });
    while (!reading) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(round % 3));
    ASSERT_EQ(write(client, "hello", 5), 5);
    if (round % 2) std::this_thread::sleep_for(2ms);
    ASSERT_EQ(write(client, " world", 6), 6);
    close(client);
    reader.join();
    EXPECT_EQ(got, "hello world") << "round " << round;
    flexsc_posix_close(server);
  }
  close(lst);
}

// A write to a pipe larger than the pipe holds, read by a fiber of the
// same (single) scheduler: the writer waits for room in pieces instead of
// blocking the thread the reader needs.
TEST_P(FiberTest, LargePipeWriteWithReaderOnTheSameScheduler) {
  Watchdog dog("large pipe write", 60s);
  int fds[2];
  ASSERT_EQ(flexsc_posix_pipe2(fds, O_CLOEXEC), 0);
  fib::Pool pool(options(1));
  const std::string data(256 * 1024, 'x');
  size_t received = 0;
  auto writer = pool.spawn([&] {
    EXPECT_EQ(flexsc_posix_write(fds[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
    flexsc_posix_close(fds[1]);
  });
  auto reader = pool.spawn([&] {
    char buf[8192];
    for (ssize_t n; (n = flexsc_posix_read(fds[0], buf, sizeof buf)) > 0;) received += static_cast<size_t>(n);
  });
  writer.join();
  reader.join();
  EXPECT_EQ(received, data.size());
  flexsc_posix_close(fds[0]);
}

// A descriptor the program made O_NONBLOCK keeps giving EAGAIN.
TEST_P(FiberTest, NonBlockingDescriptorStillGivesEagain) {
  flexsc::test::Pipe pipe;
  ASSERT_EQ(flexsc_posix_fcntl(pipe.r, F_SETFL, O_NONBLOCK), 0);
  fib::Pool pool(options(1));
  pool.spawn([&] {
        char c;
        errno = 0;
        EXPECT_EQ(flexsc_posix_read(pipe.r, &c, 1), -1);
        EXPECT_EQ(errno, EAGAIN);
      })
      .join();
}

TEST_P(FiberTest, JoinRethrowsWhatTheFiberThrew) {
  fib::Pool pool(options());
  auto f = pool.spawn([] { throw std::runtime_error("from a fiber"); });
  try {
    f.join();
    FAIL() << "join did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "from a fiber");
  }
  EXPECT_FALSE(f.joinable());
  // Exceptions caught inside a fiber stay there.
  int caught = 0;
  pool.spawn([&] {
        try {
          throw 7;
        } catch (int v) {
          caught = v;
        }
      })
      .join();
  EXPECT_EQ(caught, 7);
}

TEST_P(FiberTest, DetachedFibersRunToTheEnd) {
  fib::Pool pool(options());
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i)
    pool.spawn([&] {
          fib::this_fiber::sleep_for(1ms);
          ran.fetch_add(1);
        })
        .detach();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 100);
}

TEST_P(FiberTest, FibersSpawnFibersAndJoinThem) {
  fib::Pool pool(options(2));
  std::atomic<long> sum{0};
  pool.spawn([&] {
        std::vector<fib::Fiber> children;
        for (int i = 1; i <= 50; ++i) children.push_back(fib::spawn([&, i] { sum.fetch_add(i); }));
        for (auto& c : children) c.join();
        EXPECT_EQ(sum.load(), 50 * 51 / 2);
      })
      .join();
  EXPECT_EQ(sum.load(), 50 * 51 / 2);
  EXPECT_THROW(fib::spawn([] {}), std::logic_error);  // not on a fiber
}

// Fibers spawned alternately onto two schedulers: those on scheduler 1
// end at once, those on scheduler 0 keep yielding.  Scheduler 1 runs dry
// and some of scheduler 0's ready fibers move to it; with migration off,
// none does.
TEST_P(FiberTest, ReadyFibersMoveToASchedulerThatRanDry) {
  for (bool migrate : {true, false}) {
    auto o = options(2);
    o.migrate = migrate;
    fib::Pool pool(o);
    std::atomic<int> moved{0}, wrong_start{0};
    std::vector<fib::Fiber> fibers;
    for (int i = 0; i < 64; ++i)
      fibers.push_back(pool.spawn([&, i] {
        if (fib::this_fiber::scheduler() != i % 2) wrong_start.fetch_add(1);
        if (i % 2) return;
        for (int k = 0; k < 2000; ++k) {
          fib::this_fiber::yield();
          if (fib::this_fiber::scheduler() != 0) {
            moved.fetch_add(1);
            break;
          }
        }
      }));
    for (auto& f : fibers) f.join();
    EXPECT_EQ(wrong_start.load(), 0) << "new fibers go round-robin";
    uint64_t migrated = 0;
    for (const auto& s : pool.stats()) migrated += s.migrated_in;
    if (migrate) {
      EXPECT_GT(moved.load(), 0);
      EXPECT_GT(migrated, 0u);
    } else {
      EXPECT_EQ(moved.load(), 0);
      EXPECT_EQ(migrated, 0u);
    }
  }
}

TEST_P(FiberTest, SleepWakesInDeadlineOrder) {
  fib::Pool pool(options(1));
  fib::Mutex m;
  std::vector<int> order;
  std::vector<fib::Fiber> fibers;
  const auto start = std::chrono::steady_clock::now();
  for (int ms : {30, 10, 20})
    fibers.push_back(pool.spawn([&, ms] {
      fib::this_fiber::sleep_for(std::chrono::milliseconds(ms));
      std::lock_guard lock(m);
      order.push_back(ms);
    }));
  for (auto& f : fibers) f.join();
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
}

TEST_P(FiberTest, FiberLocalValuesArePerFiberAndDestroyed) {
  static std::atomic<int> destroyed{0};
  struct Value {
    uint64_t owner = 0;
    ~Value() { destroyed.fetch_add(1); }
  };
  destroyed = 0;
  fib::FiberLocal<Value> local;
  std::atomic<int> wrong{0};
  {
    fib::Pool pool(options(2));
    fib::WaitGroup wg;
    wg.add(64);
    for (int i = 0; i < 64; ++i)
      pool.spawn([&] {
            local->owner = fib::this_fiber::id();
            for (int k = 0; k < 10; ++k) {
              fib::this_fiber::yield();
              if (local->owner != fib::this_fiber::id()) wrong.fetch_add(1);
            }
            wg.done();
          })
          .detach();
    wg.wait();
    pool.wait_idle();
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(destroyed.load(), 64);
}

// The batch API from a fiber: its wait lets the other fibers run.
TEST_P(FiberTest, BatchApiWaitsOnAFiber) {
  fib::Pool pool(options(1));
  pool.spawn([&] {
        flexsc::Batch batch(1);
        std::vector<flexsc_entry*> entries;
        for (int i = 0; i < 8; ++i) entries.push_back(batch.prep(SYS_getppid));
        ASSERT_EQ(batch.submit(), 8);
        EXPECT_EQ(flexsc_wait_entry(batch.native(), entries[7]), getppid());
        for (auto* e : entries) EXPECT_EQ(batch.wait(e), getppid());
        for (int i = 0; i < 8; ++i) {
          flexsc_entry* e = batch.wait_any();  // flexsc_wait
          ASSERT_NE(e, nullptr);
          batch.seen(e);
        }
      })
      .join();
}

class LifoPolicy final : public fib::Policy {
 public:
  explicit LifoPolicy(std::atomic<int>* picks) : picks_(picks) {}
  void awakened(fib::FiberRef f) override { ready_.push_back(f); }
  fib::FiberRef pick_next() override {
    if (ready_.empty()) return nullptr;
    picks_->fetch_add(1);
    auto f = ready_.back();
    ready_.pop_back();
    return f;
  }
  std::size_t ready_count() const override { return ready_.size(); }
  std::size_t shed(fib::FiberRef*, std::size_t) override { return 0; }

 private:
  std::atomic<int>* picks_;
  std::vector<fib::FiberRef> ready_;
};

TEST_P(FiberTest, PolicyIsPluggable) {
  std::atomic<int> picks{0};
  auto o = options(2);
  o.policy = [&picks] { return std::make_unique<LifoPolicy>(&picks); };
  fib::Pool pool(o);
  std::atomic<int> ran{0};
  std::vector<fib::Fiber> fibers;
  for (int i = 0; i < 20; ++i)
    fibers.push_back(pool.spawn([&] {
      fib::this_fiber::yield();
      EXPECT_EQ(flexsc::syscall(SYS_getppid), getppid());
      ran.fetch_add(1);
    }));
  for (auto& f : fibers) f.join();
  EXPECT_EQ(ran.load(), 20);
  EXPECT_GE(picks.load(), 40);  // each fiber picked at least at start and after its yield
}

TEST_P(FiberTest, StackOverflowHitsTheGuardPageAndIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto o = options();
  o.stack_size = 32 * 1024;
  EXPECT_DEATH(
      {
        fib::Pool pool(o);
        pool.spawn([] {
              struct Recurse {
                static int down(int n) {
                  volatile char pad[512];
                  pad[0] = static_cast<char>(n);
                  return n == 0 ? pad[0] : down(n - 1) + pad[0];
                }
              };
              std::printf("%d\n", Recurse::down(1 << 20));
            })
            .join();
      },
      "overflowed its stack|stack-overflow");
}

TEST_P(FiberTest, DetachedFiberWithUncaughtExceptionTerminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        fib::Pool pool(options());
        pool.spawn([] { throw std::runtime_error("nobody joins me"); }).detach();
        pool.wait_idle();
      },
      "detached fiber .* uncaught exception: nobody joins me");
}

// ---- the statistics report -------------------------------------------------
//
// A pool's report goes where the library's goes: FLEXSC_STATS (0: nowhere,
// 1: stderr, a path: appended to it), or flexsc_options.stats of the
// running runtime; a file is opened close-on-exec.

// The runtime stopped (it reads FLEXSC_STATS when it starts) and
// FLEXSC_STATS set to `value` (nullptr: unset); both undone at the end.
class StatsSetting {
 public:
  explicit StatsSetting(const char* value) {
    reset();
    if (value) setenv("FLEXSC_STATS", value, 1);
  }
  ~StatsSetting() { reset(); }

 private:
  static void reset() {
    flexsc_shutdown();
    unsetenv("FLEXSC_STATS");
  }
};

// What a pool printed on stderr from its start to its end.
std::string pool_stderr(const fib::PoolOptions& o) {
  ::testing::internal::CaptureStderr();
  {
    fib::Pool pool(o);
    pool.spawn([] {}).join();
  }
  return ::testing::internal::GetCapturedStderr();
}

std::string temp_path(const char* what) {
  return "/tmp/flexsc-fiber-" + std::string(what) + "-" + std::to_string(getpid());
}

TEST_P(FiberTest, StatsReportGoesWhereFlexscStatsSays) {
  {
    StatsSetting stats("0");
    const std::string err = pool_stderr(options(2));
    EXPECT_EQ(err.find("flexsc:"), std::string::npos) << err;
  }
  {
    StatsSetting stats("1");
    const std::string err = pool_stderr(options(2));
    EXPECT_NE(err.find("flexsc: fibers: 2 schedulers"), std::string::npos) << err;
  }
  const std::string path = temp_path("stats");
  {
    std::ofstream(path) << "written before\n";
    StatsSetting stats(path.c_str());
    const std::string err = pool_stderr(options(2));
    EXPECT_EQ(err.find("flexsc:"), std::string::npos) << err;
    const std::string report = flexsc::test::read_file(path);
    EXPECT_EQ(report.rfind("written before\nflexsc: fibers: 2 schedulers", 0), 0u) << report;
  }
  unlink(path.c_str());
}

TEST_P(FiberTest, StatsReportFollowsTheRuntimesOption) {
  const std::string path = temp_path("stats-option");
  unlink(path.c_str());
  StatsSetting stats(nullptr);
  flexsc_options o{};
  o.size = sizeof o;
  o.stats = path.c_str();
  ASSERT_EQ(flexsc_init(&o), 0);
  const std::string err = pool_stderr(options(2));
  EXPECT_EQ(err.find("flexsc:"), std::string::npos) << err;
  flexsc_shutdown();
  const std::string report = flexsc::test::read_file(path);
  unlink(path.c_str());
  EXPECT_EQ(report.rfind("flexsc: fibers: 2 schedulers", 0), 0u) << report;
  EXPECT_NE(report.find("\nflexsc: backend "), std::string::npos) << "no runtime report after:\n" << report;
}

// A descriptor of this process other than `except` open on `path`, or -1.
int open_on(const std::string& path, int except) {
  int found = -1;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = d ? readdir(d) : nullptr) {
    const int fd = std::atoi(e->d_name);
    char target[PATH_MAX];
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t n = readlink(link.c_str(), target, sizeof target);
    if (fd != except && n > 0 && std::string(target, static_cast<size_t>(n)) == path) found = fd;
  }
  if (d) closedir(d);
  return found;
}

// The report goes into a FIFO whose buffer is one page: the pool's report
// (32 schedulers) fills it, and its writer waits with the file open until
// the test reads.  Meanwhile the test looks at that descriptor's flags.
TEST_P(FiberTest, StatsFileIsOpenedCloseOnExec) {
  Watchdog dog("stats file close-on-exec", 60s);
  const std::string fifo = temp_path("stats-fifo");
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Open for reading and writing: no open of the FIFO waits for a peer.
  const int rd = open(fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(rd, 0);
  ASSERT_GE(fcntl(rd, F_SETPIPE_SZ, 4096), 0);
  StatsSetting stats(fifo.c_str());
  auto pool = std::make_unique<fib::Pool>(options(32));
  pool->spawn([] {}).join();
  std::atomic<bool> done{false};
  std::thread ender([&] {
    pool.reset();
    flexsc_shutdown();  // the runtime's report, when the pool started one
    done = true;
  });
  int writer = -1;
  while (writer < 0 && !done) {
    writer = open_on(fifo, rd);
    if (writer < 0) std::this_thread::sleep_for(1ms);
  }
  const int fd_flags = writer >= 0 ? fcntl(writer, F_GETFD) : -1;
  std::string report;
  for (bool last = false; !last;) {
    last = done;  // one more read after the writers are gone
    char buf[4096];
    ssize_t n;
    while ((n = read(rd, buf, sizeof buf)) > 0) report.append(buf, static_cast<size_t>(n));
    if (!last) std::this_thread::sleep_for(1ms);
  }
  ender.join();
  close(rd);
  unlink(fifo.c_str());
  ASSERT_GT(report.size(), 4096u) << "the report did not fill the FIFO: the writer never waited\n" << report;
  ASSERT_GE(writer, 0) << "no descriptor on the FIFO seen while the pool wrote its report";
  ASSERT_GE(fd_flags, 0);
  EXPECT_TRUE(fd_flags & FD_CLOEXEC) << "a program run meanwhile would inherit the statistics file";
  EXPECT_EQ(report.rfind("flexsc: fibers: 32 schedulers", 0), 0u) << report;
}

// The same with the raw syscall, no readiness wait: a blocking read posted
// as an entry.  Exception-less only: a synchronous fiber's raw read blocks
// its scheduler thread (that is what the POSIX layer is for).
TEST(FiberExceptionLess, RawBlockingReadPostsAndSwitches) {
  Watchdog dog("raw blocking read", 60s);
  flexsc::test::Pipe pipe;
  ASSERT_GE(pipe.r, 0);
  fib::PoolOptions o;
  o.schedulers = 1;
  fib::Pool pool(o);
  char got[8] = {};
  std::atomic<bool> reader_started{false};
  auto reader = pool.spawn([&] {
    reader_started = true;
    EXPECT_EQ(flexsc::syscall(SYS_read, pipe.r, got, sizeof got), 3);
  });
  auto other = pool.spawn([&] {
    while (!reader_started) fib::this_fiber::yield();
    for (int i = 0; i < 20; ++i) EXPECT_EQ(flexsc::syscall(SYS_getppid), getppid());
  });
  other.join();
  ASSERT_EQ(write(pipe.w, "abc", 3), 3);
  reader.join();
  EXPECT_STREQ(got, "abc");
}

INSTANTIATE_TEST_SUITE_P(Modes, FiberTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "ExceptionLess" : "Synchronous"; });

}  // namespace
