// The drop-in wrapper's routing policy: the auto rule on measured costs,
// the estimates it keeps, its probes, its settings and its report.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "base/classify.h"
#include "preload/route.h"

using namespace flexsc::preload;
using C = flexsc::detail::SyscallClass;

namespace {

CallCosts costs(uint32_t direct, uint32_t routed, uint32_t routed_cpu, uint32_t samples = 10) {
  return {direct, samples, routed, routed_cpu};
}
Load load(int active_threads, int program_cpus, uint32_t idle_handoff = 1'000) {
  return {idle_handoff, active_threads, program_cpus};
}

TEST(AutoRule, MeasuresBothWaysBeforeJudging) {
  EXPECT_EQ(auto_rule(costs(50'000, 5'000, 1'000, 3), load(4, 1)), Reason::Measuring)
      << "three direct samples";
  EXPECT_EQ(auto_rule(costs(50'000, 0, 0), load(4, 1)), Reason::Measuring) << "never routed";
  EXPECT_EQ(auto_rule(costs(50'000, 50'500, 1'000, 4), load(4, 1)), Reason::Routed);
}

TEST(AutoRule, AThreadWithACoreToItselfRoutesOnlyWhatComesBackSooner) {
  // One thread, one user core: the round trip is what it waits.
  EXPECT_EQ(auto_rule(costs(5'000, 5'800, 500), load(1, 1)), Reason::Cheap)
      << "freeing the caller's CPU is worth nothing when nobody else wants it";
  EXPECT_EQ(auto_rule(costs(5'000, 4'500, 4'500), load(1, 1)), Reason::Routed);
  EXPECT_EQ(auto_rule(costs(5'000, 5'800, 500), load(2, 2)), Reason::Cheap) << "as many threads as CPUs";
}

TEST(AutoRule, ThreadsShortOfCoresRouteWhatLeavesThemCPU) {
  // More threads making calls than CPUs: a routed call that takes
  // less of the caller's CPU than making it gives the rest to the others.
  EXPECT_EQ(auto_rule(costs(5'000, 5'800, 500), load(2, 1)), Reason::Routed);
  EXPECT_EQ(auto_rule(costs(5'000, 5'800, 5'200), load(2, 1)), Reason::Cheap)
      << "the caller spun it all away";
  EXPECT_EQ(auto_rule(costs(300, 1'100, 1'000), load(8, 1)), Reason::Cheap) << "cheaper than posting it";
}

TEST(AutoRule, PassesWhileTheSyscallThreadsAnswerSlowly) {
  // The handoff (round trip less the call) is 20 us against 1 us idle.
  EXPECT_EQ(auto_rule(costs(5'000, 25'000, 500), load(4, 1, 1'000)), Reason::Busy);
  EXPECT_EQ(auto_rule(costs(5'000, 8'900, 500), load(4, 1, 1'000)), Reason::Routed) << "within 4x of idle";
}

TEST(Estimates, AverageTheirSamplesAndShrugOffOneOutlier) {
  auto est = std::make_unique<Estimates>();
  for (int i = 0; i < 20; ++i) est->add_direct(SYS_fstat, 1'000);
  EXPECT_EQ(est->costs(SYS_fstat).direct_ns, 1'000u);
  EXPECT_EQ(est->costs(SYS_fstat).direct_samples, 20u);
  est->add_direct(SYS_fstat, 10'000'000);  // preempted once
  EXPECT_LE(est->costs(SYS_fstat).direct_ns, 1'000u + 3'000u / 8 + 1);
  for (int i = 0; i < 60; ++i) est->add_direct(SYS_fstat, 50'000);  // a real change still shows
  EXPECT_GT(est->costs(SYS_fstat).direct_ns, 45'000u);
  est->add_routed(SYS_openat, 9'000, 2'000);
  EXPECT_EQ(est->costs(SYS_openat).routed_ns, 9'000u);
  EXPECT_EQ(est->costs(SYS_openat).routed_cpu_ns, 2'000u);
  EXPECT_EQ(est->costs(SYS_openat).direct_ns, 0u);
  EXPECT_EQ(est->costs(-1).routed_ns, 0u) << "out of range: nothing";
}

TEST(Estimates, CountTheThreadsActiveInAnInterval) {
  auto est = std::make_unique<Estimates>();
  constexpr uint64_t kI = Estimates::kActivityIntervalNs;
  est->advance(100 * kI);
  uint32_t mine[3] = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
  for (uint32_t& t : mine) est->note_active(&t);
  est->note_active(&mine[0]);  // once per interval
  EXPECT_EQ(est->load().active_threads, 3);
  est->advance(101 * kI);  // the last interval's count holds through the next
  est->note_active(&mine[0]);
  EXPECT_EQ(est->load().active_threads, 3);
  est->advance(102 * kI);
  EXPECT_EQ(est->load().active_threads, 1) << "one thread in the interval before";
  est->advance(110 * kI);
  EXPECT_EQ(est->load().active_threads, 1) << "idle intervals: at least the caller";
  for (uint32_t& t : mine) est->note_active(&t);
  est->advance(109 * kI);  // a thread late with an old time
  EXPECT_EQ(est->load().active_threads, 3) << "intervals only move forward";
}

TEST(DescriptorKinds, FilesFinishOnTheirOwnPipesAndSocketsMayWait) {
  auto kinds = std::make_unique<DescriptorKinds>();
  char path[] = "/tmp/flexsc-route-XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  int p[2], sv[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  EXPECT_TRUE(kinds->finishes_on_its_own(file));
  EXPECT_FALSE(kinds->finishes_on_its_own(p[0]));
  EXPECT_FALSE(kinds->finishes_on_its_own(sv[0]));
  EXPECT_FALSE(kinds->finishes_on_its_own(-1));
  // The file's number reused by a pipe: the cached answer stands until the
  // number is forgotten (the wrapper forgets on close, dup2, open...).
  ASSERT_EQ(dup2(p[0], file), file);
  EXPECT_TRUE(kinds->finishes_on_its_own(file)) << "cached";
  kinds->forget(file);
  EXPECT_FALSE(kinds->finishes_on_its_own(file));
  EXPECT_FALSE(kinds->finishes_on_its_own(1 << 20)) << "not open: asked, and no answer kept";
  for (int fd : {file, p[0], p[1], sv[0], sv[1]}) close(fd);
}

TEST(DescriptorKinds, TheCallsThatWaitOnlyOnTheirDescriptors) {
  int fds[2] = {-1, -1};
  const long rw[6] = {7, 0, 0, 0, 0, 0};
  EXPECT_EQ(descriptors_it_waits_on(SYS_pread64, rw, fds), 1);
  EXPECT_EQ(fds[0], 7);
  const long sendfile_args[6] = {4, 5, 0, 100, 0, 0};  // out, in
  EXPECT_EQ(descriptors_it_waits_on(SYS_sendfile, sendfile_args, fds), 2);
  EXPECT_EQ(fds[0], 4);
  EXPECT_EQ(fds[1], 5);
  const long copy_args[6] = {4, 0, 6, 0, 100, 0};  // in, off, out
  EXPECT_EQ(descriptors_it_waits_on(SYS_copy_file_range, copy_args, fds), 2);
  EXPECT_EQ(fds[1], 6);
  EXPECT_EQ(descriptors_it_waits_on(SYS_recvfrom, rw, fds), 0) << "a socket call";
  EXPECT_EQ(descriptors_it_waits_on(SYS_epoll_wait, rw, fds), 0);
  EXPECT_EQ(descriptors_it_waits_on(SYS_openat, rw, fds), 0) << "a path may name a FIFO";
}

TEST(Policy, ModesAndClasses) {
  auto est = std::make_unique<Estimates>();
  auto p = std::make_unique<Policy>();
  bool sample;
  p->mode = Mode::None;
  EXPECT_EQ(p->decide(SYS_read, C::Remote, *est, &sample), Reason::ModeNone);
  p->mode = Mode::All;
  EXPECT_EQ(p->decide(SYS_read, C::Blocking, *est, &sample), Reason::Routed);
  EXPECT_EQ(p->decide(SYS_fstat, C::Remote, *est, &sample), Reason::Routed);
  EXPECT_FALSE(sample) << "nothing is measured outside auto";
  EXPECT_EQ(p->decide(SYS_rt_sigprocmask, C::Local, *est, &sample), Reason::CallerClass);
  p->mode = Mode::Auto;
  EXPECT_EQ(p->decide(SYS_read, C::Blocking, *est, &sample), Reason::MayBlock);
  EXPECT_EQ(p->decide(SYS_fstat, C::Remote, *est, &sample), Reason::Measuring);
  EXPECT_TRUE(sample) << "measuring: every call is timed";
  p->only_listed = true;
  p->listed[SYS_read] = 1;
  EXPECT_EQ(p->decide(SYS_fstat, C::Remote, *est, &sample), Reason::NotListed);
}

// Decisions on nr of one class, n at a time, counted by reason and by
// whether they were to be timed.
struct Tally {
  std::map<Reason, int> by;
  int sampled = 0;
};
Tally decide_n(Policy& p, Estimates& est, long nr, unsigned n) {
  Tally t;
  for (unsigned i = 0; i < n; ++i) {
    bool sample;
    ++t.by[p.decide(nr, C::Remote, est, &sample)];
    t.sampled += sample;
  }
  return t;
}

uint64_t g_fake_now = 0;
uint64_t fake_clock() {
  return g_fake_now;
}

// A policy on the fake clock, which starts at `now`.
std::unique_ptr<Policy> policy_at(uint64_t now) {
  auto p = std::make_unique<Policy>();
  p->clock = fake_clock;
  g_fake_now = now;
  return p;
}

// Measurements that make nr cheap: 0.3 us made directly, 1.5 us routed.
void measured_cheap(Estimates& est, long nr) {
  for (int i = 0; i < 8; ++i) est.add_direct(nr, 300);
  est.add_routed(nr, 1'500, 1'500);
}

TEST(Policy, ProbesTheOtherWayOncePerInterval) {
  auto est = std::make_unique<Estimates>();
  auto p = policy_at(1'000'000'000);
  est->idle_handoff_ns = 1'000;
  for (int i = 0; i < 8; ++i) est->add_direct(SYS_openat, 5'000);
  est->add_routed(SYS_openat, 4'000, 4'000);  // comes back sooner: routed
  measured_cheap(*est, SYS_fstat);

  const Tally open = decide_n(*p, *est, SYS_openat, 1000);
  EXPECT_EQ(open.by.at(Reason::DirectProbe), 1) << "a routed call is made directly once";
  EXPECT_EQ(open.by.at(Reason::Routed), 999);
  EXPECT_EQ(open.sampled, 1000 / 8) << "one in 8 (the probe, the 64th, among them)";

  const Tally stat = decide_n(*p, *est, SYS_fstat, 1000);
  EXPECT_EQ(stat.by.at(Reason::Probe), Policy::kProbeBurst) << "a cheap call is routed in a burst";
  EXPECT_EQ(stat.by.at(Reason::Cheap), 1000 - Policy::kProbeBurst);

  g_fake_now += Policy::kMinProbeGapNs - 1;
  EXPECT_EQ(decide_n(*p, *est, SYS_fstat, 1000).by.count(Reason::Probe), 0u) << "not before the gap is out";
  g_fake_now += 1;
  EXPECT_EQ(decide_n(*p, *est, SYS_fstat, 1000).by.at(Reason::Probe), Policy::kProbeBurst);
}

// The probe's time-to-next: kMinProbeGapNs, doubling while the rule holds,
// back to the minimum when it changes.
TEST(Policy, ProbesLessOftenWhileTheDecisionHolds) {
  auto est = std::make_unique<Estimates>();
  auto p = policy_at(9'000'000'000);
  measured_cheap(*est, SYS_fstat);
  // Bursts of routed probes after waiting this long (each burst is kProbeBurst calls).
  auto bursts_after = [&](uint64_t wait) {
    g_fake_now += wait;
    const int probes = decide_n(*p, *est, SYS_fstat, 200).by[Reason::Probe];
    EXPECT_EQ(probes % Policy::kProbeBurst, 0) << probes;
    return probes / Policy::kProbeBurst;
  };
  ASSERT_EQ(bursts_after(0), 1);
  EXPECT_EQ(bursts_after(Policy::kMinProbeGapNs), 1) << "the first gap";
  EXPECT_EQ(bursts_after(Policy::kMinProbeGapNs), 0) << "the gap has doubled";
  EXPECT_EQ(bursts_after(Policy::kMinProbeGapNs), 1);
  uint64_t gap = 4 * Policy::kMinProbeGapNs;
  for (; gap < Policy::kMaxProbeGapNs; gap *= 2) {
    EXPECT_EQ(bursts_after(gap - 1), 0) << gap;
    EXPECT_EQ(bursts_after(1), 1) << gap;
  }
  EXPECT_EQ(bursts_after(Policy::kMaxProbeGapNs), 1) << "no further than the maximum";
  EXPECT_EQ(bursts_after(Policy::kMaxProbeGapNs), 1);
  // The call turns costly: the next probe finds the rule changed (routed
  // now, so a direct probe) and the gap starts again from the minimum.
  for (int i = 0; i < 40; ++i) est->add_direct(SYS_fstat, 9'000);
  g_fake_now += Policy::kMaxProbeGapNs;
  EXPECT_EQ(decide_n(*p, *est, SYS_fstat, 200).by[Reason::DirectProbe], 1);
  g_fake_now += Policy::kMinProbeGapNs;
  EXPECT_EQ(decide_n(*p, *est, SYS_fstat, 200).by[Reason::DirectProbe], 1);
}

// Calls interleaved in a loop are each sampled and probed, whatever their
// number: a count shared by all calls would land every 64th decision on
// the same call of a two-call loop.
TEST(Policy, SamplesAndProbesEveryCallOfALoop) {
  auto est = std::make_unique<Estimates>();
  auto p = policy_at(20'000'000'000);
  est->idle_handoff_ns = 1'000;
  for (int i = 0; i < 8; ++i) est->add_direct(SYS_lseek, 5'000);
  est->add_routed(SYS_lseek, 4'000, 4'000);  // routed
  measured_cheap(*est, SYS_access);
  // Calls no other test makes: the per-thread counts start from zero.
  std::map<long, Tally> by_call;
  for (int round = 0; round < 640; ++round) {
    for (long nr : {long{SYS_lseek}, long{SYS_access}}) {
      bool sample;
      ++by_call[nr].by[p->decide(nr, C::Remote, *est, &sample)];
      by_call[nr].sampled += sample;
    }
  }
  EXPECT_EQ(by_call[SYS_lseek].by[Reason::DirectProbe], 1);
  EXPECT_EQ(by_call[SYS_lseek].sampled, 640 / 8) << "routed: one in 8 (the probe among them)";
  EXPECT_EQ(by_call[SYS_access].by[Reason::Probe], Policy::kProbeBurst);
  // The burst's calls are not counted as decisions: 632 counted, every
  // 64th timed (9), less the 64th, which started the burst cold, plus the
  // burst's 7 warm calls.
  EXPECT_EQ(by_call[SYS_access].sampled, 9 - 1 + (Policy::kProbeBurst - 1));
}

TEST(Policy, PassesCallsWhileTheSyscallThreadsAnswerSlowly) {
  auto est = std::make_unique<Estimates>();
  auto p = policy_at(30'000'000'000);
  est->idle_handoff_ns = 500;
  for (int i = 0; i < 8; ++i) est->add_direct(SYS_statx, 1'000);
  est->add_routed(SYS_statx, 20'000, 400);  // 19 us of handoff against 0.5 us idle
  bool sample;
  EXPECT_EQ(p->decide(SYS_statx, C::Remote, *est, &sample), Reason::Busy);
}

TEST(Policy, ABurstTimesAllButItsColdFirstCall) {
  auto est = std::make_unique<Estimates>();
  auto p = policy_at(5'000'000'000);
  measured_cheap(*est, SYS_fstat);
  int probes = 0, timed = 0;
  for (int i = 0; i < 200; ++i) {
    bool sample;
    if (p->decide(SYS_fstat, C::Remote, *est, &sample) != Reason::Probe) continue;
    timed += sample;
    EXPECT_EQ(sample, probes++ > 0) << "probe " << probes;
  }
  EXPECT_EQ(probes, Policy::kProbeBurst);
  EXPECT_EQ(timed, Policy::kProbeBurst - 1);
}

TEST(Policy, RejectsBadSettings) {
  auto p = std::make_unique<Policy>();
  std::string error;
  setenv("FLEXSC_ROUTE", "sometimes", 1);
  EXPECT_FALSE(p->load(&error));
  EXPECT_NE(error.find("sometimes"), std::string::npos) << error;
  setenv("FLEXSC_ROUTE", "all", 1);
  setenv("FLEXSC_ROUTE_ONLY", "read,no_such_call", 1);
  EXPECT_FALSE(p->load(&error));
  EXPECT_NE(error.find("no_such_call"), std::string::npos) << error;
  setenv("FLEXSC_ROUTE_ONLY", "read,fstat", 1);
  ASSERT_TRUE(p->load(&error)) << error;
  EXPECT_EQ(p->mode, Mode::All);
  EXPECT_TRUE(p->listed[SYS_read] && p->listed[SYS_fstat] && !p->listed[SYS_write]);
  unsetenv("FLEXSC_ROUTE");
  unsetenv("FLEXSC_ROUTE_ONLY");
}

TEST(Counts, ReportTotalsReasonsAndMeasurements) {
  auto counts = std::make_unique<Counts>();
  auto est = std::make_unique<Estimates>();
  for (int i = 0; i < 5; ++i) counts->add(SYS_openat, Reason::Routed);
  counts->add(SYS_fstat, Reason::Probe);
  for (int i = 0; i < 3; ++i) counts->add(SYS_fstat, Reason::Cheap);
  est->add_direct(SYS_fstat, 250);
  est->add_routed(SYS_fstat, 2'000, 1'750);
  est->idle_handoff_ns = 1'500;
  const std::string text = counts->report(est.get());
  EXPECT_NE(
      text.find("6 calls routed (1 probes), 3 passed through (auto: waiting costs more than the call 3)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("routing added 1.50 us to a call at start"), std::string::npos) << text;
  EXPECT_NE(text.find("fstat            routed 1 (1 probes), passed through 3"), std::string::npos) << text;
  EXPECT_NE(text.find("measured: direct 0.25 us, routed 2.00 us (caller CPU 1.75 us)"), std::string::npos)
      << text;
  EXPECT_EQ(counts->report(nullptr).find("auto policy"), std::string::npos) << "no measurements outside auto";
  counts->forget();  // a forked child's start
  EXPECT_EQ(counts->count(SYS_openat, Reason::Routed), 0u);
  EXPECT_NE(counts->report(nullptr).find("0 calls routed, 0 passed through"), std::string::npos);
  counts->add(SYS_fstat, Reason::Cheap);
  EXPECT_EQ(counts->count(SYS_fstat, Reason::Cheap), 1u);
}

}  // namespace
