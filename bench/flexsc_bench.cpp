// flexsc_bench: exception-less system calls against the synchronous
// `syscall` instruction, in one run, on the same machine.
//
// Every figure is items per second of wall-clock time (UseRealTime), and
// every benchmark waits for and checks every result it posts: a wrong
// result ends the benchmark with SkipWithError (and the program exits 1).
//
//   Sync/<call>                    the `syscall` instruction inline in the loop
//   SyncLibc/<call>                glibc's syscall(2) (a function return after
//                                  the instruction: SRSO safe-RET costs extra)
//   Sync/getppid/threads:2         synchronous getppid on both cores: the
//                                  honest two-core reference
//   ExLess/<backend>/<call>/batch:n
//                                  the batch API on one posting context:
//                                  batch:n means n entries per flexsc_submit,
//                                  with TWO groups in flight (group k+1 is
//                                  prepared and submitted before group k is
//                                  harvested, so the syscall thread never idles
//                                  while the user side harvests); results are
//                                  harvested with flexsc_wait_entry in
//                                  submission order, checked, marked seen
//   ExLess/<backend>/nop/batch:n   the same with flexsc_prep_nop entries: the
//                                  handoff cost alone
//   Overlap/sync/<call>/work:W     per item W ns of calibrated dependent
//                                  integer work, then the syscall inline
//   Overlap/<backend>/<call>/work:W/batch:n
//                                  per item the same work, then post an entry;
//                                  submit every n items (three groups in
//                                  flight), each item taking the result of an
//                                  item two groups older
//   Mix/sync/pread4k               a file-I/O mix, synchronously: pread 4 KiB
//                                  from a cached file and pwrite 4 KiB to
//                                  another, alternately, with an fsync of the
//                                  written file as every 64th call
//   Mix/sync/pread4k/threads:2     the same on both cores, each thread on its
//                                  own files: the honest two-core reference
//   Mix/<backend>/pread4k/batch:n  the same calls through the batch API, as
//                                  ExLess posts them
//
// <call>: getppid; read (1 byte from /dev/zero); write (1 byte to /dev/null).
// <backend>: every backend this machine can start (thread, uring,
// uring-sqpoll), each measured in the same run; the runtime is restarted
// with the row's backend before the row runs.
//
// Counters besides items_per_second: rq_wait_user_pct / rq_wait_sys_pct, the
// share of the run the benchmark thread / the syscall threads were runnable
// but waiting for their core (schedstat); for the exception-less ones also
// per_drain, parks, sleeps and sys_threads from flexsc_get_stats().  After
// the console output comes a Markdown table: items/s (the median aggregate
// with --benchmark_repetitions) and the ratio to the synchronous baseline
// measured in the same run, with a footnote naming the figures taken while
// a core was shared.  With --benchmark_out in JSON, that ratio is also the
// counter ratio_to_sync of the run it was taken from.
//
// Extra flags (stripped before Google Benchmark sees the command line):
//   --flexsc_table=<path>      also write the Markdown table to <path>
//   --flexsc_backends=a,b,...  the backends to measure (default: all that
//                              start here; FLEXSC_BACKEND, if set, is the only one)
//   --flexsc_mix_dir=<dir>     where the Mix files live (default /var/tmp: a disk)
// Default --benchmark_min_time is 0.3 s unless given on the command line.
// Typical full run:
//   flexsc_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//                --flexsc_table=table.md --benchmark_out=bench.json
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/raw_syscall.h"

namespace {

using flexsc::detail::raw_syscall6;

// ---- the calls -----------------------------------------------------------

// Mix: item i of the file-I/O mix (see mix_step).
enum class Call { Getppid, Read, Write, Nop, Mix };

const char* call_name(Call c) {
  switch (c) {
    case Call::Getppid:
      return "getppid";
    case Call::Read:
      return "read";
    case Call::Write:
      return "write";
    case Call::Nop:
      return "nop";
    case Call::Mix:
      return "pread4k";
  }
  return "?";
}

struct Env {
  long ppid = 0;
  int zero_fd = -1;  // /dev/zero
  int null_fd = -1;  // /dev/null
  double work_iters_per_ns = 0;
  std::vector<int> all_cpus;  // the process's CPUs before binding
  std::vector<std::string> backends;
  std::string mix_dir = "/var/tmp";
} g_env;

// ---- the file-I/O mix ---------------------------------------------------

constexpr size_t kMixBlock = 4096;
constexpr unsigned kMixBlocks = 256;  // 1 MiB files, read back from the page cache
constexpr unsigned kMixFsyncEvery = 64;

// One thread's files: one read, one written (and fsync'ed).
struct MixFiles {
  int rd = -1, wr = -1;
  std::vector<char> wbuf = std::vector<char>(kMixBlock, 'w');
  std::string error;

  MixFiles() {
    char path[] = "/flexsc-mix-XXXXXX";
    std::string rp = g_env.mix_dir + path, wp = g_env.mix_dir + path;
    rd = mkostemp(rp.data(), O_CLOEXEC);
    wr = mkostemp(wp.data(), O_CLOEXEC);
    if (rd < 0 || wr < 0) {
      error = "cannot create files in " + g_env.mix_dir + ": " + std::strerror(errno);
      return;
    }
    unlink(rp.c_str());
    unlink(wp.c_str());
    std::vector<char> block(kMixBlock, 'r');
    for (unsigned i = 0; i < kMixBlocks; ++i)
      if (pwrite(rd, block.data(), kMixBlock, static_cast<off_t>(i) * kMixBlock) != kMixBlock)
        error = "cannot fill the read file";
    std::vector<char> sink(kMixBlock);
    for (unsigned i = 0; i < kMixBlocks; ++i)  // into the page cache
      if (pread(rd, sink.data(), kMixBlock, static_cast<off_t>(i) * kMixBlock) != kMixBlock)
        error = "cannot read the read file back";
  }
  ~MixFiles() {
    close(rd);
    close(wr);
  }
};

// Item i of the mix: pread and pwrite alternately at a moving block, and
// an fsync of the written file as every 64th.  Returns the call's args.
struct MixCall {
  long nr, a[4];
  long expected;
};
inline MixCall mix_step(const MixFiles& f, uint64_t i, char* rbuf) {
  const long off = static_cast<long>((i / 2) % kMixBlocks * kMixBlock);
  if (i % kMixFsyncEvery == kMixFsyncEvery - 1) return {SYS_fsync, {f.wr, 0, 0, 0}, 0};
  if (i % 2 == 0) return {SYS_pread64, {f.rd, reinterpret_cast<long>(rbuf), kMixBlock, off}, kMixBlock};
  return {SYS_pwrite64, {f.wr, reinterpret_cast<long>(f.wbuf.data()), kMixBlock, off}, kMixBlock};
}

const char g_write_byte = 'x';

// What the kernel returns for the call.
long expected(Call c) {
  switch (c) {
    case Call::Getppid:
      return g_env.ppid;
    case Call::Read:
    case Call::Write:
      return 1;
    case Call::Nop:
      return 0;
    case Call::Mix:
      return -1;  // per item: mix_step
  }
  return -1;
}

// The `syscall` instruction inline (no function return after it).
[[gnu::always_inline]] inline long sync_call(Call c, char* buf) {
  switch (c) {
    case Call::Getppid:
      return raw_syscall6(SYS_getppid, 0, 0, 0, 0, 0, 0);
    case Call::Read:
      return raw_syscall6(SYS_read, g_env.zero_fd, reinterpret_cast<long>(buf), 1, 0, 0, 0);
    case Call::Write:
      return raw_syscall6(SYS_write, g_env.null_fd, reinterpret_cast<long>(&g_write_byte), 1, 0, 0, 0);
    case Call::Nop:
    case Call::Mix:
      return 0;
  }
  return -ENOSYS;
}

// glibc's syscall(2), turned back into the raw convention.
inline long libc_call(Call c, char* buf) {
  long r = -1;
  switch (c) {
    case Call::Getppid:
      r = ::syscall(SYS_getppid);
      break;
    case Call::Read:
      r = ::syscall(SYS_read, g_env.zero_fd, buf, 1);
      break;
    case Call::Write:
      r = ::syscall(SYS_write, g_env.null_fd, &g_write_byte, 1);
      break;
    case Call::Nop:
    case Call::Mix:
      return 0;
  }
  return r == -1 ? -errno : r;
}

[[gnu::always_inline]] inline void prep_call(flexsc_entry* e, Call c, char* buf) {
  switch (c) {
    case Call::Getppid:
      flexsc_prep(e, SYS_getppid, 0, 0, 0, 0, 0, 0);
      break;
    case Call::Read:
      flexsc_prep(e, SYS_read, g_env.zero_fd, reinterpret_cast<long>(buf), 1, 0, 0, 0);
      break;
    case Call::Write:
      flexsc_prep(e, SYS_write, g_env.null_fd, reinterpret_cast<long>(&g_write_byte), 1, 0, 0, 0);
      break;
    case Call::Nop:
      flexsc_prep_nop(e);
      break;
    case Call::Mix:
      break;  // prepared per item by the caller
  }
}

std::string wrong_result(const char* what, Call c, long got) {
  char msg[160];
  std::snprintf(msg, sizeof msg, "%s %s: got %ld (%s), expected %ld", what, call_name(c), got,
                got < 0 && got > -4096 ? std::strerror(static_cast<int>(-got)) : "value", expected(c));
  return msg;
}

// ---- calibrated work -----------------------------------------------------

// A dependent multiply/add chain; the empty asm keeps the compiler from
// folding or vectorizing it.  Never reads the clock.
[[gnu::always_inline]] inline uint64_t work(uint64_t x, uint64_t iters) {
  for (uint64_t i = 0; i < iters; ++i) {
    x = x * 0x5851F42D4C957F2DULL + 0x14057B7EF767814FULL;
    asm volatile("" : "+r"(x));
  }
  return x;
}

// Iterations of work() per ns: the median of many short runs, each timed
// with the thread's CPU-time clock, so time the thread spends preempted by
// other processes (these machines are shared) does not shrink the figure.
double thread_cpu_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double calibrate_work() {
  constexpr uint64_t kIters = 300'000;  // about 0.4 ms
  std::vector<double> rates;
  uint64_t x = 1;
  x = work(x, 10 * kIters);  // warm up (frequency, caches)
  for (int run = 0; run < 21; ++run) {
    const double t0 = thread_cpu_ns();
    x = work(x, kIters);
    const double t1 = thread_cpu_ns();
    rates.push_back(static_cast<double>(kIters) / (t1 - t0));
  }
  benchmark::DoNotOptimize(x);
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

uint64_t work_iters_for(unsigned ns) {
  return static_cast<uint64_t>(std::llround(ns * g_env.work_iters_per_ns));
}

// ---- helpers -------------------------------------------------------------

void bind_user(benchmark::State& state) {
  if (int rc = flexsc_bind_user_thread(); rc < 0)
    state.SkipWithError((std::string("flexsc_bind_user_thread: ") + std::strerror(-rc)).c_str());
}

// Restarts the runtime with the given backend unless it runs already.
int start_backend(const std::string& backend) {
  if (backend == flexsc_backend()) return 0;
  flexsc_shutdown();
  flexsc_options o{};
  o.size = sizeof o;
  o.backend = backend.c_str();
  return flexsc_init(&o);
}

void use_backend(benchmark::State& state, const std::string& backend) {
  if (int rc = start_backend(backend); rc < 0) {
    state.SkipWithError(("flexsc_init(" + backend + "): " + std::strerror(-rc)).c_str());
    return;
  }
  bind_user(state);
}

// Time the benchmark thread and the runtime's syscall threads spent
// runnable but waiting for their core (the second field of schedstat), as a
// percentage of the run's wall-clock time: another process taking the core
// (these machines are shared), or syscall threads of the runtime sharing the
// syscall core.  A figure taken while either core was shared says so in the
// table's footnote.
uint64_t runqueue_wait_ns(const std::string& schedstat) {
  std::ifstream in(schedstat);
  uint64_t run = 0, wait = 0;
  in >> run >> wait;
  return in ? wait : 0;
}

// Run-queue wait per thread of the runtime (syscall threads, io_uring's
// submission thread and workers), by thread id: threads come and go
// during a run, so only per-thread differences add up.
std::map<std::string, uint64_t> syscall_threads_wait_ns() {
  std::map<std::string, uint64_t> waits;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return waits;
  while (dirent* d = readdir(dir)) {
    if (d->d_name[0] == '.') continue;
    const std::string task = std::string("/proc/self/task/") + d->d_name;
    std::ifstream comm(task + "/comm");
    std::string name;
    if (std::getline(comm, name) && (name.rfind("flexsc-sys", 0) == 0 || name.rfind("iou-", 0) == 0))
      waits[d->d_name] = runqueue_wait_ns(task + "/schedstat");
  }
  closedir(dir);
  return waits;
}

struct Disturbance {
  uint64_t user0 = 0;
  std::map<std::string, uint64_t> sys0;
  double t0 = 0;
  static double wall_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }
  Disturbance()
      : user0(runqueue_wait_ns("/proc/thread-self/schedstat")),
        sys0(syscall_threads_wait_ns()),
        t0(wall_ns()) {}
  void finish(benchmark::State& state) const {
    const double dt = wall_ns() - t0;
    if (dt <= 0) return;
    const uint64_t user = runqueue_wait_ns("/proc/thread-self/schedstat");
    uint64_t sys = 0;
    for (const auto& [tid, wait] : syscall_threads_wait_ns()) {
      auto before = sys0.find(tid);
      sys += wait - (before != sys0.end() && before->second <= wait ? before->second : 0);
    }
    state.counters["rq_wait_user_pct"] = 100.0 * static_cast<double>(user - user0) / dt;
    state.counters["rq_wait_sys_pct"] = 100.0 * static_cast<double>(sys) / dt;
  }
};

struct StatsDelta {
  flexsc_stats before{};
  bool ok = false;
  void start() { ok = flexsc_get_stats(&before) == 0; }
  // Runtime counters over the run, as benchmark counters: per_drain, the
  // entries a syscall thread ran per visit to the context; parks, how often
  // the waiter parked on its futex after spinning; sleeps, how often an idle
  // syscall thread went to sleep; sys_threads, the syscall threads started
  // so far (more than one per syscall core means spares were started for
  // threads that looked stuck); via_uring, the share of calls io_uring ran.
  void finish(benchmark::State& state) {
    flexsc_stats after{};
    if (!ok || flexsc_get_stats(&after) != 0) return;
    const double entries =
        static_cast<double>((after.remote_calls - before.remote_calls) + (after.nops - before.nops));
    const double drains = static_cast<double>(after.drains - before.drains);
    state.counters["per_drain"] = drains > 0 ? entries / drains : 0;
    state.counters["parks"] = static_cast<double>(after.wait_parks - before.wait_parks);
    state.counters["sleeps"] = static_cast<double>(after.drain_sleeps - before.drain_sleeps);
    state.counters["sys_threads"] = static_cast<double>(after.syscall_threads);
    const double ring = static_cast<double>(after.uring_calls - before.uring_calls);
    const double remote = static_cast<double>(after.remote_calls - before.remote_calls);
    state.counters["via_uring"] = ring + remote > 0 ? ring / (ring + remote) : 0;
  }
};

// ---- synchronous baselines -----------------------------------------------

// One call per iteration, issued by Issue: the inline instruction (Sync)
// or glibc's syscall(2) (SyncLibc).
template <long (*Issue)(Call, char*)>
void BM_SyncWith(benchmark::State& state, Call call, const char* label) {
  bind_user(state);
  const Disturbance noise;
  const long want = expected(call);
  char buf = 0;
  for (auto _ : state) {
    const long r = Issue(call, &buf);
    if (__builtin_expect(r != want, 0)) {
      state.SkipWithError(wrong_result(label, call, r).c_str());
      break;
    }
  }
  noise.finish(state);
  state.SetItemsProcessed(state.iterations());
}

void BM_Sync(benchmark::State& state, Call call) {
  BM_SyncWith<sync_call>(state, call, "Sync");
}
void BM_SyncLibc(benchmark::State& state, Call call) {
  BM_SyncWith<libc_call>(state, call, "SyncLibc");
}

// Synchronous getppid on both cores: thread i pinned to the i-th CPU of the
// process (the affinity is put back afterwards: thread 0 is the main thread).
void BM_SyncThreads(benchmark::State& state) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  sched_getaffinity(0, sizeof saved, &saved);
  const auto& cpus = g_env.all_cpus;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus[static_cast<size_t>(state.thread_index()) % cpus.size()], &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) state.SkipWithError("sched_setaffinity failed");
  const long want = expected(Call::Getppid);
  for (auto _ : state) {
    const long r = raw_syscall6(SYS_getppid, 0, 0, 0, 0, 0, 0);
    if (__builtin_expect(r != want, 0)) {
      state.SkipWithError(wrong_result("Sync threads", Call::Getppid, r).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  sched_setaffinity(0, sizeof saved, &saved);
}

void BM_OverlapSync(benchmark::State& state, Call call, unsigned work_ns) {
  bind_user(state);
  const Disturbance noise;
  const uint64_t iters = work_iters_for(work_ns);
  const long want = expected(call);
  char buf = 0;
  uint64_t x = 12345;
  for (auto _ : state) {
    x = work(x, iters);
    const long r = sync_call(call, &buf);
    if (__builtin_expect(r != want, 0)) {
      state.SkipWithError(wrong_result("Overlap sync", call, r).c_str());
      break;
    }
  }
  benchmark::DoNotOptimize(x);
  noise.finish(state);
  state.SetItemsProcessed(state.iterations());
}

// The file-I/O mix, synchronously (on each thread with /threads:N).
void BM_MixSync(benchmark::State& state) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  sched_getaffinity(0, sizeof saved, &saved);
  if (state.threads() > 1) {
    cpu_set_t one;
    CPU_ZERO(&one);
    const auto& cpus = g_env.all_cpus;
    CPU_SET(cpus[static_cast<size_t>(state.thread_index()) % cpus.size()], &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) state.SkipWithError("sched_setaffinity failed");
  } else {
    bind_user(state);
  }
  const MixFiles files;
  if (!files.error.empty()) state.SkipWithError(files.error.c_str());
  const Disturbance noise;
  std::vector<char> rbuf(kMixBlock);
  uint64_t i = 0;
  for (auto _ : state) {
    const MixCall m = mix_step(files, i++, rbuf.data());
    const long r = raw_syscall6(m.nr, m.a[0], m.a[1], m.a[2], m.a[3], 0, 0);
    if (__builtin_expect(r != m.expected, 0)) {
      state.SkipWithError(("Mix sync: got " + std::to_string(r)).c_str());
      break;
    }
  }
  noise.finish(state);
  state.SetItemsProcessed(state.iterations());
  sched_setaffinity(0, sizeof saved, &saved);
}

// ---- exception-less ------------------------------------------------------

// batch:n = n entries per flexsc_submit, with two groups of n in flight: each
// timed iteration does (work and) prepares and submits group k+1, then
// harvests group k in submission order with flexsc_wait_entry, checks every
// result and marks it seen.  The first group is submitted before the timed
// loop and the last one harvested (and checked) after it.
template <bool kWork>
void BM_ExLess(benchmark::State& state, std::string backend, Call call, unsigned n, unsigned work_ns) {
  use_backend(state, backend);
  std::unique_ptr<MixFiles> mix;
  if (call == Call::Mix && !state.error_occurred()) {
    mix = std::make_unique<MixFiles>();
    if (!mix->error.empty()) state.SkipWithError(mix->error.c_str());
  }
  if (state.error_occurred()) {
    for (auto _ : state) {
    }
    return;
  }
  // Groups in flight: two for ExLess (group k+1 is submitted before k is
  // harvested); three for Overlap, whose items take the results of the group
  // submitted two groups earlier, so the syscall core's start-up latency on
  // a fresh group never stalls the user core.
  constexpr unsigned kGroups = kWork ? 3 : 2;
  const unsigned pages = (kGroups * n + FLEXSC_ENTRIES_PER_PAGE - 1) / FLEXSC_ENTRIES_PER_PAGE;
  flexsc_ctx* ctx = nullptr;
  if (int rc = flexsc_ctx_create(pages, &ctx); rc < 0) {
    state.SkipWithError((std::string("flexsc_ctx_create: ") + std::strerror(-rc)).c_str());
    for (auto _ : state) {
    }
    return;
  }
  [[maybe_unused]] const uint64_t iters = kWork ? work_iters_for(work_ns) : 0;
  std::vector<flexsc_entry*> slots(kGroups * size_t{n});
  std::vector<long> wants(kGroups * size_t{n}, expected(call));
  // A byte per item, or a 4 KiB block for the mix's preads.
  const size_t buf_size = call == Call::Mix ? kMixBlock : 1;
  std::vector<char> bufs(kGroups * size_t{n} * buf_size);
  uint64_t mix_item = 0;
  unsigned count[kGroups] = {};  // entries of each group taken from the context
  bool in_flight[kGroups] = {};
  std::string error;
  uint64_t x = 12345;
  StatsDelta stats;
  stats.start();
  const Disturbance noise;

  // One result of group g: waited for, checked, marked seen.
  auto take = [&](unsigned g, unsigned i) -> bool {
    flexsc_entry* e = slots[g * n + i];
    const long r = flexsc_entry_done(e) ? e->ret : flexsc_wait_entry(ctx, e);
    flexsc_seen(ctx, e);
    if (__builtin_expect(r != wants[g * n + i], 0)) {
      if (error.empty()) error = wrong_result("exception-less", call, r);
      return false;
    }
    return true;
  };
  // Work (Overlap), prepare and submit group g.  With work, item i also
  // takes result i of the other group, submitted a whole group earlier:
  // reading it (a line the syscall core wrote) then overlaps with the
  // next item's work instead of stalling a harvest loop.
  auto post = [&](unsigned g) -> bool {
    flexsc_entry** es = &slots[g * n];
    char* b = &bufs[g * n * buf_size];
    const unsigned other = (g + 1) % kGroups;  // the oldest group in flight
    const bool interleave = kWork && in_flight[other];
    bool ok = true;
    in_flight[g] = true;
    count[g] = 0;
    for (unsigned i = 0; i < n; ++i) {
      if constexpr (kWork) x = work(x, iters);
      if (interleave && i < count[other]) {
        ok &= take(other, i);
        if (i + 1 < count[other]) __builtin_prefetch(slots[other * n + i + 1]);
      }
      flexsc_entry* e = flexsc_get_entry(ctx);
      if (__builtin_expect(!e, 0)) {
        error = "flexsc_get_entry: no FREE entry in the context";
        return false;
      }
      if (call == Call::Mix) {
        const MixCall m = mix_step(*mix, mix_item++, b + i * buf_size);
        flexsc_prep(e, m.nr, m.a[0], m.a[1], m.a[2], m.a[3], 0, 0);
        wants[g * n + i] = m.expected;
      } else {
        prep_call(e, call, b + i);
      }
      es[i] = e;
      count[g] = i + 1;
    }
    if (interleave) {
      in_flight[other] = false;
      count[other] = 0;
    }
    const int s = flexsc_submit(ctx);
    if (__builtin_expect(s != static_cast<int>(n), 0)) {
      error = "flexsc_submit returned " + std::to_string(s) + ", expected " + std::to_string(n);
      return false;
    }
    return ok;
  };
  // Harvest group g in submission order; every result is checked.
  auto harvest = [&](unsigned g) -> bool {
    bool ok = true;
    for (unsigned i = 0; i < count[g]; ++i) ok &= take(g, i);
    in_flight[g] = false;
    count[g] = 0;
    return ok;
  };

  unsigned cur = 0;
  bool ok = post(cur);
  if (!ok) state.SkipWithError(error.c_str());  // the loop below then runs no iteration
  for (auto _ : state) {
    const unsigned next = (cur + 1) % kGroups;
    if (__builtin_expect(!post(next) || !harvest((next + 1) % kGroups), 0)) {
      ok = false;
      state.SkipWithError(error.c_str());
      break;
    }
    cur = next;
  }
  // Whatever is still in flight (the last group, or the remains of a
  // failure) is submitted, waited for and checked.
  flexsc_submit(ctx);
  for (unsigned g = 0; g < kGroups; ++g) {
    if (in_flight[g] && !harvest(g) && ok) {
      ok = false;
      state.SkipWithError(error.c_str());
    }
  }
  benchmark::DoNotOptimize(x);
  stats.finish(state);
  noise.finish(state);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
  if (int rc = flexsc_ctx_destroy(ctx); rc < 0 && ok)
    state.SkipWithError((std::string("flexsc_ctx_destroy: ") + std::strerror(-rc)).c_str());
}

// ---- the table -------------------------------------------------------------

// What the table needs of one benchmark: items/s and the runqueue waits,
// per repetition and as reported median aggregates.
constexpr const char* kFigures[] = {"items_per_second", "rq_wait_user_pct", "rq_wait_sys_pct"};

// The benchmarks' names in the order they were registered: the table keeps
// it when the runs are interleaved (--benchmark_enable_random_interleaving).
std::vector<std::string> g_registered;

size_t registration_index(const std::string& function) {
  const auto it = std::find(g_registered.begin(), g_registered.end(), function);
  return static_cast<size_t>(it - g_registered.begin());
}

// The benchmark's own name, without Google Benchmark's /real_time or
// /min_time: suffixes, with /threads:N kept: the table's row.
std::string clean_name(const benchmark::BenchmarkReporter::Run& run) {
  std::string name = run.run_name.function_name;
  if (!run.run_name.args.empty()) name += "/" + run.run_name.args;
  if (!run.run_name.threads.empty()) name += "/" + run.run_name.threads;
  return name;
}

struct Result {
  std::string name;
  std::string function;                             // the registered name, without /threads:N
  std::map<std::string, std::vector<double>> runs;  // of single repetitions
  std::map<std::string, double> median;             // the median aggregate, when reported
  std::string error;
};

// A console reporter that also keeps every benchmark's items/s: the median
// aggregate with --benchmark_repetitions, else the single run.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  explicit TableReporter(OutputOptions opts) : ConsoleReporter(opts) {}

  void ReportRuns(const std::vector<Run>& reports) override {
    ConsoleReporter::ReportRuns(reports);
    for (const Run& run : reports) collect(run);
  }

  bool any_error() const {
    for (const Result& r : results_)
      if (!r.error.empty()) return true;
    return false;
  }

  std::string table(const std::string& machine) const {
    std::ostringstream out;
    out << "\n" << machine << "\n\n";
    out << "| benchmark | items/s (M/s) | ratio to its synchronous baseline |\n";
    out << "| --- | ---: | ---: |\n";
    char cell[96];
    const std::vector<Result> rows = in_registration_order();
    for (const Result& r : rows) {
      out << "| " << r.name << " | ";
      if (!r.error.empty()) {
        out << "ERROR: " << r.error << " | |\n";
        continue;
      }
      std::snprintf(cell, sizeof cell, "%.3f", figure(r, "items_per_second") / 1e6);
      out << cell << " | ";
      const std::string base = baseline_of(r.name);
      const double q = ratio(r.name);
      if (base.empty()) {
        out << "1.00 (baseline) |\n";
      } else if (std::isnan(q)) {
        out << "n/a (no " << base << ") |\n";
      } else {
        std::snprintf(cell, sizeof cell, "%.2f", q);
        out << cell << " |\n";
      }
    }
    // Figures taken while another thread kept taking one of the cores.
    std::string disturbed;
    for (const Result& r : rows) {
      const double u = figure(r, "rq_wait_user_pct"), y = figure(r, "rq_wait_sys_pct");
      if (!(u >= kDisturbedPct || y >= kDisturbedPct)) continue;
      std::snprintf(cell, sizeof cell, " (user core %.1f%%, syscall threads %.1f%%)", u,
                    std::isnan(y) ? 0.0 : y);
      disturbed += "- " + r.name + cell + "\n";
    }
    if (!disturbed.empty())
      out << "\nRunnable but waiting for their core during the measurement (share of wall-clock\n"
             "time, from schedstat: another process on the core, or spare syscall threads sharing\n"
             "the syscall core); these figures are less trustworthy:\n\n"
          << disturbed;
    return out.str();
  }

  static constexpr double kDisturbedPct = 1.0;

  // The synchronous baseline of a benchmark, "" for a baseline itself.
  static std::string baseline_of(const std::string& name) {
    std::vector<std::string> p;
    std::stringstream ss(name);
    for (std::string part; std::getline(ss, part, '/');) p.push_back(part);
    if (p.size() >= 2 && p[0] == "SyncLibc") return "Sync/" + p[1];
    if (p.size() >= 3 && p[0] == "Sync") return "Sync/" + p[1];  // Sync/getppid/threads:2
    if (p.size() >= 3 && p[0] == "ExLess") return p[2] == "nop" ? "Sync/getppid" : "Sync/" + p[2];
    if (p.size() >= 4 && p[0] == "Overlap" && p[1] != "sync") return "Overlap/sync/" + p[2] + "/" + p[3];
    if (p.size() >= 3 && p[0] == "Mix" && p[1] == "sync") return "Mix/sync/" + p[2];  // threads:2
    if (p.size() >= 3 && p[0] == "Mix") return "Mix/sync/" + p[2];
    return "";
  }

  // A benchmark's items/s over its synchronous baseline's; NaN for a
  // baseline itself, or when either figure is missing.
  double ratio(const std::string& name) const {
    const Result* row = find(name);
    const Result* base = find(baseline_of(name));
    if (!row || !base) return NAN;
    const double v = figure(*row, "items_per_second"), b = figure(*base, "items_per_second");
    return b > 0 ? v / b : NAN;
  }

 private:
  const Result* find(const std::string& name) const {
    for (const Result& r : results_)
      if (r.name == name && r.error.empty()) return &r;
    return nullptr;
  }

  std::vector<Result> in_registration_order() const {
    std::vector<Result> rows = results_;
    // A name registered twice (Sync/getppid, and with /threads:2) sorts by its full name.
    std::sort(rows.begin(), rows.end(), [](const Result& a, const Result& b) {
      const size_t ia = registration_index(a.function), ib = registration_index(b.function);
      return ia != ib ? ia < ib : a.name < b.name;
    });
    return rows;
  }

  static double counter(const Run& run, const char* key) {
    auto it = run.counters.find(key);
    return it != run.counters.end() ? static_cast<double>(it->second) : NAN;
  }

  // The median aggregate if reported, else the median of the repetitions.
  static double figure(const Result& r, const std::string& key) {
    if (auto it = r.median.find(key); it != r.median.end()) return it->second;
    auto it = r.runs.find(key);
    if (it == r.runs.end() || it->second.empty()) return NAN;
    std::vector<double> v = it->second;
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }

  void collect(const Run& run) {
    const std::string name = clean_name(run);
    Result* r = nullptr;
    for (Result& x : results_)
      if (x.name == name) r = &x;
    if (!r) {
      results_.push_back(Result{name, run.run_name.function_name, {}, {}, {}});
      r = &results_.back();
    }
    if (run.error_occurred) {
      if (r->error.empty()) r->error = run.error_message;
      return;
    }
    const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    if (run.run_type == Run::RT_Aggregate && !median) return;
    for (const char* key : kFigures) {
      const double v = counter(run, key);
      if (std::isnan(v)) continue;
      if (median)
        r->median[key] = v;
      else
        r->runs[key].push_back(v);
    }
  }

  std::vector<Result> results_;
};

// Google Benchmark's JSON with the table's ratios in it: the run each row's
// figure comes from (the median aggregate, or the only run) gets the counter
// ratio_to_sync, so plots drawn from the JSON show the table's numbers.  The
// runs are held until the end, when every baseline is known.
class RatioJSONReporter : public benchmark::JSONReporter {
 public:
  explicit RatioJSONReporter(const TableReporter& table) : table_(table) {}

  void ReportRuns(const std::vector<Run>& reports) override {
    runs_.insert(runs_.end(), reports.begin(), reports.end());
  }

  void Finalize() override {
    for (Run& run : runs_) {
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      const bool only = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      const double q = table_.ratio(clean_name(run));
      if ((median || only) && !run.error_occurred && !std::isnan(q)) run.counters["ratio_to_sync"] = q;
    }
    if (!runs_.empty()) JSONReporter::ReportRuns(runs_);
    JSONReporter::Finalize();
  }

 private:
  const TableReporter& table_;
  std::vector<Run> runs_;
};

// ---- machine description ---------------------------------------------------

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "unknown";
}

std::string cpu_list(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    if (!out.empty()) out += ',';
    out += std::to_string(c);
  }
  return out;
}

// RegisterBenchmark, remembering the order for the table.
template <class... Args>
benchmark::internal::Benchmark* add_benchmark(const std::string& name, Args&&... args) {
  g_registered.push_back(name);
  return benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...);
}

void register_benchmarks() {
  auto sync = [](Call c) {
    add_benchmark(std::string("Sync/") + call_name(c), BM_Sync, c)->UseRealTime();
    add_benchmark(std::string("SyncLibc/") + call_name(c), BM_SyncLibc, c)->UseRealTime();
  };
  auto exless = [](Call c) {
    for (const std::string& be : g_env.backends) {
      for (unsigned n : {1u, 8u, 32u, 64u, 256u}) {
        const std::string name = "ExLess/" + be + "/" + call_name(c) + "/batch:" + std::to_string(n);
        add_benchmark(name, BM_ExLess<false>, be, c, n, 0u)->UseRealTime();
      }
    }
  };
  // Each baseline runs right before what is compared with it, so the
  // ratios compare figures taken close together in time.
  sync(Call::Getppid);
  add_benchmark("Sync/getppid", BM_SyncThreads)->Threads(2)->UseRealTime();
  exless(Call::Nop);
  exless(Call::Getppid);
  sync(Call::Read);
  exless(Call::Read);
  sync(Call::Write);
  exless(Call::Write);
  for (Call c : {Call::Getppid, Call::Read}) {
    for (unsigned w : {100u, 200u, 400u}) {
      const std::string tail = std::string(call_name(c)) + "/work:" + std::to_string(w);
      add_benchmark("Overlap/sync/" + tail, BM_OverlapSync, c, w)->UseRealTime();
      for (const std::string& be : g_env.backends) {
        for (unsigned n : {8u, 32u}) {
          const std::string name = "Overlap/" + be + "/" + tail + "/batch:" + std::to_string(n);
          add_benchmark(name, BM_ExLess<true>, be, c, n, w)->UseRealTime();
        }
      }
    }
  }
  add_benchmark("Mix/sync/pread4k", BM_MixSync)->UseRealTime();
  add_benchmark("Mix/sync/pread4k", BM_MixSync)->Threads(2)->UseRealTime();
  for (const std::string& be : g_env.backends) {
    for (unsigned n : {8u, 64u}) {
      const std::string name = "Mix/" + be + "/pread4k/batch:" + std::to_string(n);
      add_benchmark(name, BM_ExLess<false>, be, Call::Mix, n, 0u)->UseRealTime();
    }
  }
}

// The backends to measure: those asked for, or every one that starts here.
int choose_backends(const std::string& asked) {
  std::vector<std::string> wanted;
  if (const char* env = std::getenv("FLEXSC_BACKEND"); env && *env && std::strcmp(env, "auto") != 0)
    wanted = {env};  // it overrides flexsc_init's options: the only one possible
  else if (!asked.empty()) {
    std::stringstream ss(asked);
    for (std::string b; std::getline(ss, b, ',');) wanted.push_back(b);
  } else {
    wanted = {"thread", "uring", "uring-sqpoll", "shim"};
  }
  for (const std::string& b : wanted) {
    if (const int rc = start_backend(b); rc < 0) {
      std::fprintf(stderr, "flexsc_bench: backend %s does not start here (%s): not measured\n", b.c_str(),
                   std::strerror(-rc));
      if (!asked.empty()) return rc;  // asked for by name: an error
      continue;
    }
    g_env.backends.push_back(b);
  }
  return g_env.backends.empty() ? -ENODEV : start_backend(g_env.backends.front());
}

}  // namespace

int main(int argc, char** argv) {
  // Our flag out, a default minimum time in (the command line overrides it).
  std::string table_path, backends_asked;
  std::vector<char*> args;
  static char default_min_time[] = "--benchmark_min_time=0.3";
  bool min_time_given = false;
  bool json_out = false, json_format = true;  // --benchmark_out=<path>, in JSON
  args.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--flexsc_table=", 0) == 0) {
      table_path = a.substr(std::strlen("--flexsc_table="));
      continue;
    }
    if (a.rfind("--flexsc_backends=", 0) == 0) {
      backends_asked = a.substr(std::strlen("--flexsc_backends="));
      continue;
    }
    if (a.rfind("--flexsc_mix_dir=", 0) == 0) {
      g_env.mix_dir = a.substr(std::strlen("--flexsc_mix_dir="));
      continue;
    }
    if (a.rfind("--benchmark_min_time", 0) == 0) min_time_given = true;
    if (a.rfind("--benchmark_out=", 0) == 0) json_out = a.size() > std::strlen("--benchmark_out=");
    if (a.rfind("--benchmark_out_format=", 0) == 0) json_format = a == "--benchmark_out_format=json";
    if (a == "--help" || a == "-h")
      std::printf(
          "flexsc_bench: exception-less against synchronous system calls.\n"
          "  [--flexsc_table=<path>]      also write the Markdown table of ratios to <path>\n"
          "  [--flexsc_backends=a,b,...] backends to measure (default: all that start here)\n"
          "  [--flexsc_mix_dir=<dir>]    directory of the Mix files (default /var/tmp)\n"
          "  (default --benchmark_min_time=0.3 unless given)\n\n");
  }
  if (!min_time_given) args.push_back(default_min_time);
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--flexsc_", 0) != 0) args.push_back(argv[i]);
  int bargc = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&bargc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bargc, args.data())) return 1;

  cpu_set_t all;
  CPU_ZERO(&all);
  sched_getaffinity(0, sizeof all, &all);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &all)) g_env.all_cpus.push_back(c);

  if (int rc = choose_backends(backends_asked); rc < 0) {
    std::fprintf(stderr, "flexsc_init: %s\n", std::strerror(-rc));
    return 1;
  }
  if (int rc = flexsc_bind_user_thread(); rc < 0) {
    std::fprintf(stderr, "flexsc_bind_user_thread: %s\n", std::strerror(-rc));
    return 1;
  }
  cpu_set_t user;
  CPU_ZERO(&user);
  sched_getaffinity(0, sizeof user, &user);
  cpu_set_t reserved;
  CPU_XOR(&reserved, &all, &user);

  std::string backend_list;
  for (const std::string& b : g_env.backends) backend_list += (backend_list.empty() ? "" : ",") + b;
  g_env.ppid = getppid();
  g_env.zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  g_env.null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (g_env.zero_fd < 0 || g_env.null_fd < 0) {
    std::perror("open /dev/zero, /dev/null");
    return 1;
  }
  g_env.work_iters_per_ns = calibrate_work();

  struct utsname u {};
  uname(&u);
  const std::string kernel = std::string(u.sysname) + " " + u.release + " " + u.version;
  const std::string model = cpu_model();
  const long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  char calib[64];
  std::snprintf(calib, sizeof calib, "%.4f", g_env.work_iters_per_ns);
  benchmark::AddCustomContext("cpu_model", model);
  benchmark::AddCustomContext("nproc", std::to_string(nproc));
  benchmark::AddCustomContext("kernel", kernel);
  benchmark::AddCustomContext("flexsc_backends", backend_list);
  benchmark::AddCustomContext("user_cpus", cpu_list(user));
  benchmark::AddCustomContext("syscall_cpus", cpu_list(reserved));
  benchmark::AddCustomContext("work_iters_per_ns", calib);

  register_benchmarks();

  const bool color = isatty(STDOUT_FILENO) && std::getenv("TERM") && std::strcmp(std::getenv("TERM"), "dumb");
  TableReporter reporter(color ? benchmark::ConsoleReporter::OO_Color : benchmark::ConsoleReporter::OO_None);
  RatioJSONReporter json(reporter);
  benchmark::RunSpecifiedBenchmarks(&reporter, json_out && json_format ? &json : nullptr);
  benchmark::Shutdown();
  flexsc_shutdown();
  char calib_end[64];  // the same measure after the run: a drift shows a disturbed run
  std::snprintf(calib_end, sizeof calib_end, "%.4f", calibrate_work());

  std::string machine = "Machine: " + model + ", nproc " + std::to_string(nproc) + ", " + u.sysname + " " +
                        u.release + "; backends " + backend_list + ", user CPUs " + cpu_list(user) +
                        ", syscall CPUs " + cpu_list(reserved) + "; work " + calib + " iterations/ns (" +
                        calib_end + " re-measured after the run).";
  const std::string table = reporter.table(machine);
  std::cout << table << std::flush;
  if (!table_path.empty()) {
    std::ofstream f(table_path);
    f << table;
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", table_path.c_str());
      return 1;
    }
  }
  return reporter.any_error() ? 1 : 0;
}
