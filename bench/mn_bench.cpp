// M:N experiments, in one run (Google Benchmark, wall-clock time):
//
//   Switch/fiber, Switch/kernel_thread
//       a handoff between two fibers of one scheduler (yield) against one
//       between two kernel threads on one CPU (futex wake, then wait);
//   RR/<build>/conns:<n>
//       a request/response loop over Unix stream sockets: n connections,
//       each with one 64-byte request outstanding at a time, driven by a
//       client in a second process; the server reads into a 4 KiB buffer
//       and writes back what it read.
//       Builds: threads-sync (one kernel thread per connection, synchronous
//       syscalls), fibers-sync (fibers issuing synchronous syscalls, with
//       epoll readiness), fibers-<backend> (fibers whose syscalls
//       post-and-switch through that flexsc backend).
//
// Counters: req/s; server_cores and client_cores (CPU time over wall time);
// submit_batch (entries a scheduler hands the backend at once) and
// drain_batch (entries a syscall thread takes per visit), where they apply.
// The label names the CPUs the server's threads run on.  At the end a
// Markdown table gives req/s and the ratio to threads-sync per connection
// count.
//
//   mn_bench [--mn_table=<path>] [--mn_conns=1,10,...] [--mn_builds=a,b,...]
//            [--benchmark_* flags]
// (bench/mn-bench.sh draws req/s against connections from the JSON.)
#include <benchmark/benchmark.h>
#include <flexsc/flexsc.h>
#include <flexsc/posix.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <flexsc/fiber.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fib = flexsc::fiber;

namespace {

constexpr size_t kMsg = 64;

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t cpu_ns_self() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](timeval t) {
    return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000ull + t.tv_usec * 1000ull;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

bool read_full(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n) {
    const ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool write_full(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n) {
    const ssize_t r = write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// ---- the client process -----------------------------------------------------

enum class Cmd : int { Connect, Run, Close, Exit };
struct Command {
  Cmd cmd;
  long n;  // connections (Connect), requests (Run)
  sockaddr_un addr;
  socklen_t addr_len;
};
struct Reply {
  long ok;
  uint64_t elapsed_ns;
  uint64_t cpu_ns;
};

// Keeps one request outstanding on every connection until `requests`
// responses came back; epoll tells which connection answered.
Reply client_run(const std::vector<int>& conns, int epfd, long requests) {
  Reply r{1, 0, 0};
  char req[kMsg];
  std::memset(req, 'q', sizeof req);
  const uint64_t cpu0 = cpu_ns_self(), t0 = now_ns();
  long issued = 0, answered = 0;
  for (size_t i = 0; i < conns.size() && issued < requests; ++i, ++issued)
    if (!write_full(conns[i], req, kMsg)) r.ok = 0;
  std::vector<epoll_event> events(1024);
  while (answered < issued && r.ok) {
    const int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 10'000);
    if (n <= 0) {
      r.ok = 0;  // ten seconds without an answer: the server is stuck
      break;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      char resp[kMsg];
      if (!read_full(fd, resp, kMsg) || resp[0] != 'q') {
        r.ok = 0;
        break;
      }
      ++answered;
      if (issued < requests) {
        if (!write_full(fd, req, kMsg)) r.ok = 0;
        ++issued;
      }
    }
  }
  r.elapsed_ns = now_ns() - t0;
  r.cpu_ns = cpu_ns_self() - cpu0;
  return r;
}

[[noreturn]] void client_main(int ctl) {
  std::vector<int> conns;
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  for (Command c; read_full(ctl, &c, sizeof c);) {
    Reply r{1, 0, 0};
    switch (c.cmd) {
      case Cmd::Connect:
        for (long i = 0; i < c.n; ++i) {
          const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
          if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&c.addr), c.addr_len) != 0) {
            r.ok = 0;
            if (fd >= 0) close(fd);
            break;
          }
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = fd;
          epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
          conns.push_back(fd);
        }
        break;
      case Cmd::Run:
        r = client_run(conns, epfd, c.n);
        break;
      case Cmd::Close:
        for (int fd : conns) close(fd);  // closing drops them from the epoll set
        conns.clear();
        break;
      case Cmd::Exit:
        _exit(0);
    }
    if (!write_full(ctl, &r, sizeof r)) break;
  }
  _exit(0);
}

struct Client {
  int ctl = -1;
  pid_t pid = -1;
  Reply ask(Cmd cmd, long n, const sockaddr_un* addr = nullptr, socklen_t len = 0) {
    Command c{};
    c.cmd = cmd;
    c.n = n;
    if (addr) c.addr = *addr, c.addr_len = len;
    Reply r{0, 0, 0};
    if (!write_full(ctl, &c, sizeof c) || !read_full(ctl, &r, sizeof r)) r.ok = 0;
    return r;
  }
};
Client g_client;

// ---- servers ------------------------------------------------------------------

// Echoes what arrives until the client closes, reading into a buffer
// larger than a request, as servers do.
template <class Read, class Write>
void echo_loop(int fd, Read rd, Write wr) {
  char buf[4096];
  for (;;) {
    const long n = rd(fd, buf, sizeof buf);
    if (n <= 0 || wr(fd, buf, static_cast<size_t>(n)) != n) return;
  }
}

long raw_read(int fd, void* b, size_t n) {
  return syscall(SYS_read, fd, b, n);
}
long raw_write(int fd, const void* b, size_t n) {
  return syscall(SYS_write, fd, b, n);
}
long fiber_read(int fd, void* b, size_t n) {
  return flexsc_posix_read(fd, b, n);
}
long fiber_write(int fd, const void* b, size_t n) {
  return flexsc_posix_write(fd, b, n);
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  sched_getaffinity(0, sizeof set, &set);
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

std::string join(const std::vector<int>& cpus) {
  std::string out;
  for (int c : cpus) {
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return out;
}

class Server {
 public:
  virtual ~Server() = default;
  // Accepts n connections from listener and serves each until it closes.
  virtual void start(int listener, long n) = 0;
  // After the client closed every connection: waits for the handlers.
  virtual void stop() = 0;
  virtual void batch_stats(uint64_t*, uint64_t*) const {}
};

class ThreadServer final : public Server {
 public:
  void start(int listener, long n) override {
    acceptor_ = std::thread([this, listener, n] {
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstacksize(&attr, 64 * 1024);
      for (long i = 0; i < n; ++i) {
        const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) break;
        pthread_t t;
        auto* arg = new int(fd);
        if (pthread_create(
                &t, &attr,
                [](void* p) -> void* {
                  const int fd = *static_cast<int*>(p);
                  delete static_cast<int*>(p);
                  echo_loop(fd, raw_read, raw_write);
                  close(fd);
                  return nullptr;
                },
                arg) != 0) {
          delete arg;
          close(fd);
          break;
        }
        threads_.push_back(t);
      }
      pthread_attr_destroy(&attr);
    });
  }
  void stop() override {
    acceptor_.join();
    for (pthread_t t : threads_) pthread_join(t, nullptr);
  }

 private:
  std::thread acceptor_;
  std::vector<pthread_t> threads_;
};

class FiberServer final : public Server {
 public:
  explicit FiberServer(bool exception_less) {
    fib::PoolOptions o;
    o.exception_less = exception_less;
    pool_ = std::make_unique<fib::Pool>(o);
  }
  void start(int listener, long n) override {
    pool_
        ->spawn([listener, n] {
          for (long i = 0; i < n; ++i) {
            const int fd = flexsc_posix_accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) break;
            fib::spawn([fd] {
              echo_loop(fd, fiber_read, fiber_write);
              flexsc_posix_close(fd);
            }).detach();
          }
        })
        .detach();
  }
  void stop() override { pool_->wait_idle(); }
  void batch_stats(uint64_t* posted, uint64_t* submits) const override {
    *posted = *submits = 0;
    for (const auto& s : pool_->stats()) *posted += s.syscalls_posted, *submits += s.submits;
  }
  // "schedulers on cpus 0; syscalls on cpus 1 (uring)"
  std::string placement() const {
    std::vector<int> mine;
    for (const auto& s : pool_->stats()) mine.push_back(s.cpu);
    std::string out = "schedulers on cpus " + join(mine);
    if (pool_->exception_less()) {
      std::vector<int> rest;
      for (int c : allowed_cpus())
        if (std::find(mine.begin(), mine.end(), c) == mine.end()) rest.push_back(c);
      out += "; syscalls on cpus " + (rest.empty() ? std::string("the same") : join(rest)) + " (" +
             flexsc_backend() + ")";
    }
    return out;
  }

 private:
  std::unique_ptr<fib::Pool> pool_;
};

// Starts (or stops) the flexsc runtime a build needs.  "" for none.
std::string use_backend(const std::string& backend) {
  flexsc_shutdown();
  if (backend.empty()) return "";
  flexsc_options o{};
  o.size = sizeof o;
  o.backend = backend.c_str();
  const int rc = flexsc_init(&o);
  if (rc < 0) return std::string("backend ") + backend + " cannot start here: " + std::strerror(-rc);
  return "";
}

std::string backend_of(const std::string& build) {
  return build.rfind("fibers-", 0) == 0 && build != "fibers-sync" ? build.substr(7) : "";
}

void BM_RequestResponse(benchmark::State& state, std::string build) {
  const long conns = state.range(0);
  const std::string backend = backend_of(build);
  if (std::string why = use_backend(backend); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  std::unique_ptr<Server> server;
  std::string label;
  if (build == "threads-sync") {
    server = std::make_unique<ThreadServer>();
    label = "threads on cpus " + join(allowed_cpus());
  } else {
    auto f = std::make_unique<FiberServer>(!backend.empty());
    label = f->placement();
    server = std::move(f);
  }
  state.SetLabel(label);

  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "flexsc-mn-bench-" + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listener, 4096) != 0) {
    state.SkipWithError("cannot listen");
    if (listener >= 0) close(listener);
    return;
  }
  server->start(listener, conns);
  bool ok = g_client.ask(Cmd::Connect, conns, &addr, len).ok != 0;
  const long requests = std::max<long>(50'000, 20 * conns);
  if (ok) ok = g_client.ask(Cmd::Run, std::max<long>(conns, 2'000)).ok != 0;  // warm-up
  flexsc_stats fs0{}, fs1{};
  flexsc_get_stats(&fs0);
  uint64_t posted0 = 0, submits0 = 0, posted1 = 0, submits1 = 0;
  server->batch_stats(&posted0, &submits0);
  uint64_t wall = 0, client_cpu = 0;
  const uint64_t server_cpu0 = cpu_ns_self();
  long total = 0;
  for (auto _ : state) {
    if (!ok) break;
    const Reply r = g_client.ask(Cmd::Run, requests);
    if (!r.ok) {
      ok = false;
      break;
    }
    state.SetIterationTime(static_cast<double>(r.elapsed_ns) / 1e9);
    wall += r.elapsed_ns;
    client_cpu += r.cpu_ns;
    total += requests;
  }
  const uint64_t server_cpu = cpu_ns_self() - server_cpu0;
  flexsc_get_stats(&fs1);
  server->batch_stats(&posted1, &submits1);
  g_client.ask(Cmd::Close, 0);
  server->stop();
  close(listener);
  if (!ok) {
    state.SkipWithError("the request/response loop failed (a connection broke or stalled)");
    return;
  }
  const double secs = static_cast<double>(wall) / 1e9;
  state.counters["req/s"] = benchmark::Counter(static_cast<double>(total) / secs);
  // The server's CPU time includes its idle syscall threads' spinning.
  state.counters["server_cores"] = static_cast<double>(server_cpu) / static_cast<double>(wall);
  state.counters["client_cores"] = static_cast<double>(client_cpu) / static_cast<double>(wall);
  if (submits1 > submits0)
    state.counters["submit_batch"] =
        static_cast<double>(posted1 - posted0) / static_cast<double>(submits1 - submits0);
  if (fs1.drains > fs0.drains)
    state.counters["drain_batch"] = static_cast<double>(fs1.remote_calls - fs0.remote_calls) /
                                    static_cast<double>(fs1.drains - fs0.drains);
}

// ---- switches ---------------------------------------------------------------

constexpr long kSwitches = 200'000;

void BM_FiberSwitch(benchmark::State& state) {
  use_backend("");
  fib::PoolOptions o;
  o.exception_less = false;
  o.schedulers = 1;
  fib::Pool pool(o);
  for (auto _ : state) {
    auto a = pool.spawn([] {
      for (long i = 0; i < kSwitches / 2; ++i) fib::this_fiber::yield();
    });
    auto b = pool.spawn([] {
      for (long i = 0; i < kSwitches / 2; ++i) fib::this_fiber::yield();
    });
    a.join();
    b.join();
  }
  state.SetItemsProcessed(state.iterations() * kSwitches);
  state.SetLabel("handoffs between two fibers (yield)");
}

void BM_KernelThreadSwitch(benchmark::State& state) {
  use_backend("");
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  std::atomic<uint32_t> turn{0};
  auto futex = [](std::atomic<uint32_t>* w, int op, uint32_t v) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op, v, nullptr, nullptr, 0);
  };
  // Two threads on one CPU hand a turn back and forth: each handoff wakes
  // the other and sleeps, a switch through the kernel's scheduler.
  auto player = [&](uint32_t me) {
    sched_setaffinity(0, sizeof one, &one);
    for (long i = 0; i < kSwitches / 2; ++i) {
      while (turn.load(std::memory_order_acquire) != me) futex(&turn, FUTEX_WAIT_PRIVATE, 1 - me);
      turn.store(1 - me, std::memory_order_release);
      futex(&turn, FUTEX_WAKE_PRIVATE, 1);
    }
  };
  for (auto _ : state) {
    turn = 0;
    std::thread a(player, 0), b(player, 1);
    a.join();
    b.join();
  }
  state.SetItemsProcessed(state.iterations() * kSwitches);
  state.SetLabel("handoffs between two threads on one CPU (futex)");
}

// ---- the table ----------------------------------------------------------------

class TableReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;
  void ReportRuns(const std::vector<Run>& reports) override {
    ConsoleReporter::ReportRuns(reports);
    for (const Run& run : reports) {
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      const std::string name = run.run_name.str();
      if (run.error_occurred) {
        errors_[name] = run.error_message;
        continue;
      }
      auto it = run.counters.find("req/s");
      if (it != run.counters.end() && (median || !rr_.count(name))) rr_[name] = it->second.value;
      auto ips = run.counters.find("items_per_second");
      if (ips != run.counters.end() && (median || !switch_.count(name))) switch_[name] = ips->second.value;
    }
  }
  bool any_error() const { return !errors_.empty(); }

  std::string table(const std::string& machine) const {
    std::ostringstream out;
    char cell[64];
    out << "\n" << machine << "\n\n| handoff | ns each |\n| --- | ---: |\n";
    for (const auto& [name, v] : switch_) {
      std::snprintf(cell, sizeof cell, "%.0f", 1e9 / v);
      out << "| " << name << " | " << cell << " |\n";
    }
    // RR/<build>/conns:<n>: one row per n, one column per build.
    std::map<long, std::map<std::string, double>> rows;
    std::vector<std::string> builds;
    for (const auto& [name, v] : rr_) {
      const size_t a = name.find('/'), b = name.find("/conns:");
      const std::string build = name.substr(a + 1, b - a - 1);
      rows[std::stol(name.substr(b + 7))][build] = v;
      if (std::find(builds.begin(), builds.end(), build) == builds.end()) builds.push_back(build);
    }
    std::sort(builds.begin(), builds.end(), [](const std::string& x, const std::string& y) {
      auto rank = [](const std::string& s) { return s == "threads-sync" ? 0 : s == "fibers-sync" ? 1 : 2; };
      return rank(x) != rank(y) ? rank(x) < rank(y) : x < y;
    });
    out << "\nRequests/s (thousands), and the ratio to threads-sync at the same connection count:\n\n| "
           "connections |";
    for (const auto& b : builds) out << " " << b << " |";
    out << "\n| ---: |";
    for (size_t i = 0; i < builds.size(); ++i) out << " ---: |";
    out << "\n";
    for (const auto& [n, by_build] : rows) {
      out << "| " << n << " |";
      auto base = by_build.find("threads-sync");
      for (const auto& b : builds) {
        auto it = by_build.find(b);
        if (it == by_build.end()) {
          out << " n/a |";
          continue;
        }
        std::snprintf(cell, sizeof cell, " %.1f", it->second / 1e3);
        out << cell;
        if (base != by_build.end() && b != "threads-sync") {
          std::snprintf(cell, sizeof cell, " (%.2fx)", it->second / base->second);
          out << cell;
        }
        out << " |";
      }
      out << "\n";
    }
    for (const auto& [name, why] : errors_) out << "\n- " << name << ": " << why;
    if (!errors_.empty()) out << "\n";
    return out.str();
  }

 private:
  std::map<std::string, double> rr_, switch_;
  std::map<std::string, std::string> errors_;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  std::string table_path;
  std::vector<long> conns = {1, 10, 100, 1000, 10000};
  std::vector<std::string> builds = {"threads-sync", "fibers-sync",         "fibers-thread",
                                     "fibers-uring", "fibers-uring-sqpoll", "fibers-shim"};
  std::vector<char*> args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--mn_table=", 0) == 0)
      table_path = a.substr(11);
    else if (a.rfind("--mn_conns=", 0) == 0) {
      conns.clear();
      for (const auto& c : split(a.substr(11))) conns.push_back(std::stol(c));
    } else if (a.rfind("--mn_builds=", 0) == 0)
      builds = split(a.substr(12));
    else
      args.push_back(argv[i]);
  }
  // The client process first, before any thread exists.
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  g_client.pid = fork();
  if (g_client.pid == 0) {
    close(pair[0]);
    client_main(pair[1]);
  }
  close(pair[1]);
  g_client.ctl = pair[0];

  int bargc = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&bargc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bargc, args.data())) return 1;

  benchmark::RegisterBenchmark("Switch/fiber", BM_FiberSwitch)->UseRealTime();
  benchmark::RegisterBenchmark("Switch/kernel_thread", BM_KernelThreadSwitch)->UseRealTime();
  // The shim only where its device exists (else the build is left out).
  const bool shim = access("/dev/flexsc", F_OK) == 0;
  for (const std::string& build : builds) {
    if (build == "fibers-shim" && !shim) continue;
    for (long n : conns)
      benchmark::RegisterBenchmark(("RR/" + build + "/conns:" + std::to_string(n)).c_str(),
                                   BM_RequestResponse, build)
          ->Arg(n)
          ->UseManualTime()
          ->Iterations(3)
          ->Unit(benchmark::kMillisecond);
  }
  utsname u{};
  uname(&u);
  const std::string machine = "Machine: " + cpu_model() + ", nproc " +
                              std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + ", " + u.sysname + " " +
                              u.release + "; clients in a second process, " +
                              "64-byte requests and responses over Unix stream sockets.";
  benchmark::AddCustomContext("machine", machine);

  TableReporter reporter(benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  g_client.ask(Cmd::Exit, 0);
  waitpid(g_client.pid, nullptr, 0);
  flexsc_shutdown();
  const std::string table = reporter.table(machine);
  std::cout << table << std::flush;
  if (!table_path.empty()) std::ofstream(table_path) << table;
  return reporter.any_error() ? 1 : 0;
}
