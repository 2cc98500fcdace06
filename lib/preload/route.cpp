#include "route.h"

#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/classify.h"
#include "base/futex.h"
#include "base/raw_syscall.h"

namespace flexsc::preload {

using flexsc::detail::SyscallClass;

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::Routed:
      return "routed";
    case Reason::Probe:
      return "auto: probe";
    case Reason::NotReady:
      return "runtime not running";
    case Reason::SignalHandler:
      return "in a signal handler";
    case Reason::ModeNone:
      return "FLEXSC_ROUTE=none";
    case Reason::NotListed:
      return "not in FLEXSC_ROUTE_ONLY";
    case Reason::CallerClass:
      return "acts on the calling thread";
    case Reason::Measuring:
      return "auto: measuring";
    case Reason::Cheap:
      return "auto: waiting costs more than the call";
    case Reason::Busy:
      return "auto: syscall threads slow to answer";
    case Reason::MayBlock:
      return "auto: may block";
    case Reason::DirectProbe:
      return "auto: probe of the direct cost";
    case Reason::kCount:
      break;
  }
  return "?";
}

namespace {

constexpr unsigned kWeightShift = 3;  // EWMA weight 1/8

// One sample is counted at most 4 times the average: a call preempted
// once does not swing it, while a real change still shows within a few
// samples.
void blend(std::atomic<uint32_t>& avg, uint64_t sample) {
  const uint32_t old = avg.load(std::memory_order_relaxed);
  const uint64_t s = std::max<uint64_t>(
      1, std::min<uint64_t>(old ? std::min<uint64_t>(sample, uint64_t{old} * 4) : sample, UINT32_MAX));
  // The step rounds to nearest, alike both ways (a plain shift would
  // round down, and the average would sit low).
  const int64_t diff = static_cast<int64_t>(s) - old;
  const int64_t half = int64_t{1} << (kWeightShift - 1);
  const int64_t step = diff >= 0 ? (diff + half) >> kWeightShift : -((-diff + half) >> kWeightShift);
  avg.store(old ? static_cast<uint32_t>(old + step) : static_cast<uint32_t>(s), std::memory_order_relaxed);
}

bool valid(long nr) {
  return nr >= 0 && nr < kMaxSyscall;
}

}  // namespace

void Estimates::add_direct(long nr, uint64_t ns) {
  if (!valid(nr)) return;
  blend(direct_ns_[nr], ns);
  const uint32_t n = direct_samples_[nr].load(std::memory_order_relaxed);
  if (n < UINT32_MAX) direct_samples_[nr].store(n + 1, std::memory_order_relaxed);
}

void Estimates::add_routed(long nr, uint64_t round_trip_ns, uint64_t caller_cpu_ns) {
  if (!valid(nr)) return;
  blend(routed_ns_[nr], round_trip_ns);
  blend(routed_cpu_ns_[nr], caller_cpu_ns);
}

CallCosts Estimates::costs(long nr) const {
  if (!valid(nr)) return {};
  return {direct_ns_[nr].load(std::memory_order_relaxed), direct_samples_[nr].load(std::memory_order_relaxed),
          routed_ns_[nr].load(std::memory_order_relaxed), routed_cpu_ns_[nr].load(std::memory_order_relaxed)};
}

Load Estimates::load() const {
  const int now = active_[interval_.load(std::memory_order_relaxed) & 1].load(std::memory_order_relaxed);
  return {idle_handoff_ns.load(std::memory_order_relaxed),
          std::max({1, now, last_active_.load(std::memory_order_relaxed)}),
          std::max(1, program_cpus.load(std::memory_order_relaxed))};
}

void Estimates::advance(uint64_t now_ns) {
  const auto next = static_cast<uint32_t>(now_ns / kActivityIntervalNs);
  // Forward only: a thread preempted between its clock read and here
  // brings an old time.
  if (static_cast<int32_t>(next - interval_.load(std::memory_order_relaxed)) <= 0 ||
      advancing_.exchange(true, std::memory_order_acquire))
    return;
  const uint32_t current = interval_.load(std::memory_order_relaxed);
  if (static_cast<int32_t>(next - current) > 0) {
    // The count of the interval just ended; none when intervals went by
    // without a clock read (too few calls to sample: few threads busy).
    last_active_.store(next == current + 1 ? active_[current & 1].load(std::memory_order_relaxed) : 0,
                       std::memory_order_relaxed);
    active_[next & 1].store(0, std::memory_order_relaxed);
    interval_.store(next, std::memory_order_relaxed);
  }
  advancing_.store(false, std::memory_order_release);
}

Reason auto_rule(const CallCosts& call, const Load& load) {
  // A few direct samples first: the first call of a kind is often a cold one.
  constexpr uint32_t kMinSamples = 4;
  // Slow to answer: the handoff costs this many times what it cost idle.
  constexpr uint32_t kBusyFactor = 4;
  if (call.direct_samples < kMinSamples || !call.routed_ns) return Reason::Measuring;
  const uint32_t handoff = call.routed_ns > call.direct_ns ? call.routed_ns - call.direct_ns : 0;
  if (load.idle_handoff_ns && handoff > kBusyFactor * load.idle_handoff_ns) return Reason::Busy;
  const bool cores_short = load.active_threads > load.program_cpus;
  const uint32_t cost_of_waiting = cores_short ? call.routed_cpu_ns : call.routed_ns;
  return cost_of_waiting < call.direct_ns ? Reason::Routed : Reason::Cheap;
}

bool Policy::load(std::string* error) {
  const char* m = std::getenv("FLEXSC_ROUTE");
  if (!m || !*m || !std::strcmp(m, "auto"))
    mode = Mode::Auto;
  else if (!std::strcmp(m, "all"))
    mode = Mode::All;
  else if (!std::strcmp(m, "none"))
    mode = Mode::None;
  else {
    *error = std::string("FLEXSC_ROUTE=") + m + ": expected all, auto or none";
    return false;
  }
  const char* only = std::getenv("FLEXSC_ROUTE_ONLY");
  if (!only || !*only) return true;
  only_listed = true;
  std::stringstream ss(only);
  for (std::string name; std::getline(ss, name, ',');) {
    if (name.empty()) continue;
    bool found = false;
    for (unsigned nr = 0; nr < flexsc::detail::kSyscallTableSize && nr < kMaxSyscall; ++nr) {
      const char* n = flexsc::detail::syscall_name(nr);
      if (n && name == n) listed[nr] = found = true;
    }
    if (!found) {
      *error = "FLEXSC_ROUTE_ONLY: no syscall named '" + name + "'";
      return false;
    }
  }
  return true;
}

Reason Policy::decide(long nr, SyscallClass cls, Estimates& est, bool* sample) {
  *sample = false;
  if (mode == Mode::None) return Reason::ModeNone;
  if (only_listed && (!valid(nr) || !listed[nr])) return Reason::NotListed;
  if (flexsc::detail::runs_on_caller(cls)) return Reason::CallerClass;
  if (mode == Mode::All) return Reason::Routed;
  [[gnu::tls_model("initial-exec")]] static thread_local uint32_t t_interval = UINT32_MAX;
  est.note_active(&t_interval);
  if (cls == SyscallClass::Blocking || !valid(nr)) return Reason::MayBlock;

  // A routed probe in progress on this thread goes on.
  [[gnu::tls_model("initial-exec")]] static thread_local struct {
    long nr;
    int left;
  } t_burst = {-1, 0};
  if (t_burst.left > 0 && t_burst.nr == nr) {
    --t_burst.left;
    *sample = true;
    return Reason::Probe;
  }
  const Reason rule = auto_rule(est.costs(nr), est.load());
  // Timed (two clock reads): a routed call one time in 8 (the clocks are
  // little beside the round trip), a passed one in 64 (they are not).  The
  // clock is read for the probes and the activity count on one in 64.
  // Counted per call, so that the calls of a loop are all sampled,
  // whatever their number and order.
  [[gnu::tls_model("initial-exec")]] static thread_local uint16_t t_calls[kMaxSyscall];
  const unsigned n = ++t_calls[nr];
  *sample = rule == Reason::Measuring || (n & (rule == Reason::Routed ? 7 : 63)) == 0;
  if ((n & 63) != 0) return rule;
  const uint64_t now = clock();
  est.advance(now);
  // One burst at a time on a thread: another call's probe waits its turn.
  if (t_burst.left > 0) return rule;
  uint64_t due = next_probe_ns_[nr].load(std::memory_order_relaxed);
  if (now < due) return rule;
  const uint64_t gap = probe_gap_ns_[nr].load(std::memory_order_relaxed);
  const bool same = gap && probed_rule_[nr].load(std::memory_order_relaxed) == rule;
  const uint64_t next_gap = same ? std::min(2 * gap, kMaxProbeGapNs) : kMinProbeGapNs;
  if (!next_probe_ns_[nr].compare_exchange_strong(due, now + next_gap, std::memory_order_relaxed))
    return rule;
  probe_gap_ns_[nr].store(next_gap, std::memory_order_relaxed);
  probed_rule_[nr].store(rule, std::memory_order_relaxed);
  if (rule == Reason::Routed) {
    *sample = true;
    return Reason::DirectProbe;
  }
  t_burst = {nr, kProbeBurst - 1};
  *sample = false;  // the syscall threads may be asleep: not what routing would cost if it went on
  return Reason::Probe;
}

uint64_t Policy::default_clock() {
  return flexsc::detail::now_ns();
}

namespace {

std::string us(uint32_t ns) {
  if (!ns) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f us", ns / 1000.0);
  return text;
}

// "reason n, reason n" over the reasons that passed calls through.
std::string passed_reasons(const uint64_t* by) {
  std::string why;
  for (int r = 0; r < static_cast<int>(Reason::kCount); ++r) {
    if (!by[r]) continue;
    const auto reason = static_cast<Reason>(r);
    if (is_routed(reason)) continue;
    why += std::string(why.empty() ? "" : ", ") + reason_name(reason) + " " + std::to_string(by[r]);
  }
  return why;
}

std::string probes(const uint64_t* by) {
  const uint64_t n = by[static_cast<int>(Reason::Probe)];
  return n ? " (" + std::to_string(n) + " probes)" : "";
}

}  // namespace

uint64_t Counts::count(long nr, Reason r) const {
  uint64_t n = 0;
  for (const auto& shard : by_) n += shard[nr][static_cast<int>(r)].load(std::memory_order_relaxed);
  return n;
}

bool DescriptorKinds::finishes_on_its_own(int fd) {
  if (fd < 0) return false;
  uint8_t kind = fd < kMax ? kind_[fd].load(std::memory_order_relaxed) : uint8_t{kUnknown};
  if (kind == kUnknown) {
    struct stat st;
    const long rc = flexsc::detail::raw_syscall6(SYS_fstat, fd, reinterpret_cast<long>(&st), 0, 0, 0, 0);
    kind = rc == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) ? uint8_t{kBounded} : uint8_t{kMayWait};
    if (rc == 0 && fd < kMax) kind_[fd].store(kind, std::memory_order_relaxed);
  }
  return kind == kBounded;
}

void DescriptorKinds::forget_range(unsigned first, unsigned last) {
  for (unsigned fd = first; fd <= last && fd < static_cast<unsigned>(kMax); ++fd) forget(fd);
}

int descriptors_it_waits_on(long nr, const long a[6], int fds[2]) {
  switch (nr) {
    case SYS_read:
    case SYS_write:
    case SYS_pread64:
    case SYS_pwrite64:
    case SYS_readv:
    case SYS_writev:
    case SYS_preadv:
    case SYS_pwritev:
    case SYS_fsync:
    case SYS_fdatasync:
      fds[0] = static_cast<int>(a[0]);
      return 1;
    case SYS_sendfile:  // out, in
    case SYS_copy_file_range:
    case SYS_splice:  // in, _, out
      fds[0] = static_cast<int>(a[0]);
      fds[1] = static_cast<int>(nr == SYS_sendfile ? a[1] : a[2]);
      return 2;
    default:
      return 0;
  }
}

void Counts::forget() {
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    if (!(used_[nr >> 6].load(std::memory_order_relaxed) & (uint64_t{1} << (nr & 63)))) continue;
    for (auto& shard : by_)
      for (auto& n : shard[nr])
        if (n.load(std::memory_order_relaxed)) n.store(0, std::memory_order_relaxed);
  }
}

std::string Counts::report(const Estimates* est) const {
  constexpr int kReasons = static_cast<int>(Reason::kCount);
  uint64_t total[kReasons] = {};
  std::ostringstream per_call;
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    uint64_t mine[kReasons], routed = 0, passed = 0;
    for (int r = 0; r < kReasons; ++r) {
      mine[r] = count(nr, static_cast<Reason>(r));
      total[r] += mine[r];
      (is_routed(static_cast<Reason>(r)) ? routed : passed) += mine[r];
    }
    if (!routed && !passed) continue;
    const char* name = flexsc::detail::syscall_name(nr);
    char line[160];
    std::snprintf(line, sizeof line, "flexsc: preload:   %-16s routed %llu", name ? name : "?",
                  static_cast<unsigned long long>(routed));
    per_call << line << probes(mine) << ", passed through " << passed;
    if (const std::string why = passed_reasons(mine); !why.empty()) per_call << " (" << why << ")";
    if (est) {
      const CallCosts c = est->costs(nr);
      if (c.direct_ns || c.routed_ns)
        per_call << "; measured: direct " << us(c.direct_ns) << ", routed " << us(c.routed_ns)
                 << " (caller CPU " << us(c.routed_cpu_ns) << ")";
    }
    per_call << "\n";
  }
  uint64_t routed = 0, passed = 0;
  for (int r = 0; r < kReasons; ++r) (is_routed(static_cast<Reason>(r)) ? routed : passed) += total[r];
  std::ostringstream out;
  out << "flexsc: preload: " << routed << " calls routed" << probes(total) << ", " << passed
      << " passed through";
  if (const std::string why = passed_reasons(total); !why.empty()) out << " (" << why << ")";
  out << "\n";
  if (est) {
    const Load l = est->load();
    out << "flexsc: preload: auto policy: routing added " << us(l.idle_handoff_ns)
        << " to a call at start; at exit " << l.active_threads << " threads making calls, " << l.program_cpus
        << " CPUs for them\n";
  }
  out << per_call.str();
  return out.str();
}

}  // namespace flexsc::preload
