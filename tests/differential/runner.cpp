// The runner: every registered case through every executor, each run
// against the synchronous one, and the runtime's life cycle around the
// suite.
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "differential.h"

namespace flexsc::test::diff {

namespace {

// ---- executors -------------------------------------------------------------

long exec_sync(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  return raw6(nr, a1, a2, a3, a4, a5, a6);
}

long exec_flexsc(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  return flexsc_syscall(nr, a1, a2, a3, a4, a5, a6);
}

flexsc_ctx* g_batch_ctx = nullptr;
std::vector<std::string> g_api_errors;  // batch API misbehaviour, appended to the transcript

void api_error(const std::string& what) {
  if (g_api_errors.size() < 20) g_api_errors.push_back(what);
}

long exec_batch(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  flexsc_ctx* ctx = g_batch_ctx;
  flexsc_entry* e = flexsc_get_entry(ctx);
  flexsc_entry* nop = flexsc_get_entry(ctx);
  if (!e || !nop) {
    api_error("flexsc_get_entry returned NULL with a free context");
    return -ENOMEM;
  }
  flexsc_prep(e, nr, a1, a2, a3, a4, a5, a6);
  flexsc_prep_nop(nop);
  if (const int n = flexsc_submit(ctx); n != 2) api_error("flexsc_submit returned " + std::to_string(n));
  const long ret = flexsc_wait_entry(ctx, e);
  if (ret != e->ret) api_error("flexsc_wait_entry's result differs from the entry's ret");
  flexsc_entry* done = nullptr;
  // The call was submitted first and is DONE: it is the oldest DONE entry.
  if (flexsc_wait(ctx, &done) != 0 || done != e)
    api_error("flexsc_wait did not return the oldest DONE entry");
  flexsc_seen(ctx, e);
  if (flexsc_wait(ctx, &done) != 0 || done != nop)
    api_error("flexsc_wait did not return the NOP");
  else if (nop->ret != 0)
    api_error("a NOP completed with " + std::to_string(nop->ret));
  flexsc_seen(ctx, nop);
  if (flexsc_peek(ctx, &done) != -EAGAIN) api_error("flexsc_peek found an entry after all were seen");
  return ret;
}

struct Executor {
  const char* name;
  SyscallFn fn;
  bool batch;
};

const Executor kSync{"sync", exec_sync, false};
const Executor kExecutors[] = {kSync, {"flexsc_syscall", exec_flexsc, false}, {"batch", exec_batch, true}};

// ---- the cases' table -----------------------------------------------------------

// Function-local, so that it exists whenever a file's initializer adds to it.
std::vector<std::pair<Group, Case>>& registry() {
  static std::vector<std::pair<Group, Case>> cases;
  return cases;
}

// Every case, group by group, each group in its file's order.  Called when
// gtest expands the parameters, after every registration.
std::vector<const Case*> all_cases() {
  std::vector<std::pair<Group, Case>>& r = registry();
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const Case*> cases;
  for (const auto& [group, c] : r) cases.push_back(&c);
  return cases;
}

}  // namespace

bool register_cases(Group group, std::span<const Case> cases) {
  for (const Case& c : cases) registry().emplace_back(group, c);
  return true;
}

// Outside the unnamed namespace: gtest finds it by argument-dependent lookup.
void PrintTo(const Case* c, std::ostream* os) {
  *os << c->name;
}

namespace {

// ---- the runner ----------------------------------------------------------------

// A deadline for each run: a run that hangs ends the process with its name
// instead of a ctest timeout that names nothing.  One thread for the whole
// suite, unlike watchdog.h's thread per step: runs fork, and a thread just
// starting may hold a sanitizer allocator lock the child then waits for.
// It is born with every signal blocked: the cases send signals to the
// process, which must reach only the caller.
class RunWatchdog {
 public:
  void start() {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      while (!stop_) {
        if (armed_ && std::chrono::steady_clock::now() > deadline_) {
          std::fprintf(stderr, "test_differential: %s did not finish within %d s: hung\n", what_.c_str(),
                       kSeconds);
          std::abort();
        }
        cv_.wait_for(lock, std::chrono::milliseconds(250));
      }
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void arm(std::string what) {
    std::lock_guard lock(mutex_);
    what_ = std::move(what);
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(kSeconds);
    armed_ = true;
  }
  void disarm() {
    std::lock_guard lock(mutex_);
    armed_ = false;
  }

 private:
  static constexpr int kSeconds = 60;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string what_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false, stop_ = false;
  std::thread thread_;
};
RunWatchdog g_watchdog;

constexpr const char* kFixtureError = "fixture error: ";

struct Result {
  std::vector<std::string> lines;
  long calls = 0;
  std::string backend;  // of a forked child
};

Result run_here(const Case& c, const Executor& x) {
  Result res;
  g_api_errors.clear();
  if (x.batch) {
    if (const int rc = flexsc_ctx_create(1, &g_batch_ctx); rc < 0) {
      res.lines.push_back(kFixtureError + std::string("flexsc_ctx_create ") + ret_str(rc));
      return res;
    }
  }
  Fixture fx;
  try {
    fx.setup();
    Run run(x.fn, fx);
    c.fn(run);
    res.lines = std::move(run.lines);
    res.calls = run.calls;
    res.lines.push_back("---- resulting state");
    fx.snapshot(res.lines);
  } catch (const std::exception& e) {
    res.lines.push_back(kFixtureError + std::string(e.what()));
  }
  if (const std::string problems = fx.teardown(); !problems.empty())
    res.lines.push_back(kFixtureError + std::string("teardown:") + problems);
  for (const std::string& e : g_api_errors) res.lines.push_back("batch API: " + e);
  if (g_batch_ctx) {
    if (const int rc = flexsc_ctx_destroy(g_batch_ctx); rc < 0)
      res.lines.push_back("flexsc_ctx_destroy " + ret_str(rc));
    g_batch_ctx = nullptr;
  }
  return res;
}

// The case in a forked child, which sends its transcript back.
Result run_in_child(const Case& c, const Executor& x) {
  Result res;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    res.lines.push_back(kFixtureError + std::string("pipe2"));
    return res;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    sc(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // dies with a parent the watchdog ends
    close(p[0]);
    g.baseline_fds.insert(p[1]);  // the teardown closes everything else
    const Result child = run_here(c, x);
    std::string text = std::string(flexsc_backend()) + "\n";
    for (const std::string& l : child.lines) text += l + "\n";
    for (size_t off = 0; off < text.size();) {
      const long n = sc(SYS_write, p[1], text.data() + off, text.size() - off);
      if (n <= 0) _exit(2);
      off += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(p[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    res.lines.push_back(kFixtureError + fmt("child failed, status %#x", status));
    return res;
  }
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (start == 0)
      res.backend = text.substr(0, nl);
    else
      res.lines.push_back(text.substr(start, nl - start));
  }
  return res;
}

Result run_case(const Case& c, const Executor& x) {
  g_watchdog.arm(std::string("case ") + c.name + " through " + x.name);
  Result res = c.kind == Case::kIsolated ? run_in_child(c, x) : run_here(c, x);
  g_watchdog.disarm();
  return res;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += "    " + l + "\n";
  return s;
}

bool has_fixture_error(const std::vector<std::string>& lines) {
  return std::any_of(lines.begin(), lines.end(),
                     [](const std::string& l) { return l.rfind(kFixtureError, 0) == 0; });
}

void expect_same(const std::vector<std::string>& want, const std::vector<std::string>& got,
                 const char* executor) {
  if (want == got) return;
  std::string diff;
  int shown = 0;
  for (size_t i = 0; i < std::max(want.size(), got.size()) && shown < 25; ++i) {
    const std::string* a = i < want.size() ? &want[i] : nullptr;
    const std::string* b = i < got.size() ? &got[i] : nullptr;
    if (a && b && *a == *b) continue;
    ++shown;
    diff += fmt("  line %zu\n    sync:  %s\n    %-6s %s\n", i, a ? a->c_str() : "(none)", executor,
                b ? b->c_str() : "(none)");
  }
  ADD_FAILURE() << "transcripts differ (" << want.size() << " lines from the synchronous run, " << got.size()
                << " from " << executor << "):\n"
                << diff << "synchronous transcript:\n"
                << join(want);
}

void PrintTo(const Executor* x, std::ostream* os) {
  *os << x->name;
}

class Differential : public ::testing::TestWithParam<std::tuple<const Case*, const Executor*>> {};

TEST_P(Differential, SameAsSynchronous) {
  const Case& c = *std::get<0>(GetParam());
  const Executor& x = *std::get<1>(GetParam());
  const Result want = run_case(c, kSync);
  ASSERT_FALSE(has_fixture_error(want.lines)) << join(want.lines);
  ASSERT_GT(want.lines.size(), 10u);
  if (std::getenv("FLEXSC_DIFF_VERBOSE") && x.fn == exec_sync) std::printf("%s", join(want.lines).c_str());
  const bool counted = c.kind != Case::kIsolated && x.fn != exec_sync;
  flexsc_stats before{}, after{};
  if (counted) {
    ASSERT_EQ(flexsc_get_stats(&before), 0);
  }
  const Result got = run_case(c, x);
  if (counted) {
    ASSERT_EQ(flexsc_get_stats(&after), 0);
  }
  if (c.kind == Case::kIsolated && x.fn != exec_sync && got.backend == "sync")
    GTEST_SKIP() << "a forked child may not start syscall threads in this build: its calls are synchronous";
  ASSERT_FALSE(has_fixture_error(got.lines)) << join(got.lines);
  expect_same(want.lines, got.lines, x.name);
  if (counted) {
    // Every call went through the runtime and was counted once, and the
    // remote ones really left the caller (for syscall threads, or io_uring).
    // In single-core mode the waiter runs remote entries itself, which the
    // public stats do not count.
    const uint64_t remote =
        after.remote_calls - before.remote_calls + (after.uring_calls - before.uring_calls);
    const uint64_t handled =
        remote + (after.local_calls - before.local_calls) + (after.unknown_calls - before.unknown_calls);
    const uint64_t calls = static_cast<uint64_t>(got.calls);
    if (g.single_core) {
      EXPECT_LE(handled, calls);
    } else {
      EXPECT_EQ(handled, calls) << "calls made through " << x.name << " vs calls the runtime counted";
      if (c.kind == Case::kLocal)
        EXPECT_EQ(remote, 0u) << "calls that depend on the caller ran on syscall threads";
      else
        EXPECT_GT(remote, 0u) << "no call ran on a syscall thread: this case compared nothing";
      if (x.batch) {
        EXPECT_EQ(after.nops - before.nops, calls) << "one NOP travelled with each call";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Differential,
                         ::testing::Combine(::testing::ValuesIn(all_cases()), ::testing::ValuesIn([] {
                                              std::vector<const Executor*> v;
                                              for (const Executor& x : kExecutors) v.push_back(&x);
                                              return v;
                                            }())),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)->name) + "__" +
                                  std::get<1>(info.param)->name;
                         });

// ---- the runtime's life cycle and the process-wide state ---------------------

class FlexscEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const int rc = flexsc_init(nullptr);
    ASSERT_TRUE(rc == 0 || rc == -EALREADY) << "flexsc_init: " << ret_str(rc);
    // Start everything the runtime starts lazily before the descriptor
    // baseline.  Results are the cases' business: a wrong backend must
    // fail there, by name.
    flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
    flexsc_ctx* ctx = nullptr;
    ASSERT_EQ(flexsc_ctx_create(1, &ctx), 0);
    g_batch_ctx = ctx;
    exec_batch(SYS_getppid, 0, 0, 0, 0, 0, 0);
    g_api_errors.clear();
    ASSERT_EQ(flexsc_ctx_destroy(ctx), 0);
    g_batch_ctx = nullptr;
    std::printf("flexsc backend: %s\n", flexsc_backend());
    const char* cores = std::getenv("FLEXSC_SYSCALL_CORES");
    g.single_core = (cores && std::strcmp(cores, "none") == 0) || sysconf(_SC_NPROCESSORS_ONLN) < 2;

    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/flexsc-diff-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    g.root = tmpl;
    g.dir = g.root + "/w";
    void* mem =
        mmap(nullptr, kRegionPages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    g.region = static_cast<char*>(mem);
    g.pid = getpid();
    ASSERT_EQ(sc(SYS_gettid), g.pid) << "the cases run on the main thread";
    g.cwd_fd = static_cast<int>(sc(SYS_openat, AT_FDCWD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_GE(g.cwd_fd, 0);
    sc(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &g.sigmask, 8);
    g.umask = sc(SYS_umask, 022);
    sc(SYS_umask, g.umask);
    g.personality = sc(SYS_personality, 0xffffffffL);
    g.priority = sc(SYS_getpriority, PRIO_PROCESS, 0);
    for (size_t i = 0; i < std::size(kObservedSignals); ++i)
      sc(SYS_rt_sigaction, kObservedSignals[i], nullptr, &g.actions[i], 8);
    for (size_t i = 0; i < std::size(kObservedLimits); ++i)
      sc(SYS_prlimit64, 0, kObservedLimits[i], nullptr, &g.limits[i]);
    g.affinity_len = sc(SYS_sched_getaffinity, 0, sizeof g.affinity, g.affinity);
    g_watchdog.start();
    for (int fd : open_fds()) g.baseline_fds.insert(fd);
    g.fd_base = (*g.baseline_fds.rbegin() / 100 + 1) * 100;
    ASSERT_LT(g.fd_base + 51, FD_SETSIZE) << "select needs a closed descriptor below FD_SETSIZE";
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    ASSERT_GT(static_cast<long>(nofile.rlim_cur), g.fd_base + 700)
        << "cases use descriptors up to fd_base + 700";
  }

  void TearDown() override {
    g_watchdog.stop();
    flexsc_shutdown();
    if (!g.root.empty()) {
      rm_rf(g.root);
      if (g.region) munmap(g.region, kRegionPages * kPage);
    }
  }
};

[[maybe_unused]] const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new FlexscEnvironment);

}  // namespace
}  // namespace flexsc::test::diff
