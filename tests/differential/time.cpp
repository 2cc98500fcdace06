// Time: clocks, sleeps, resource usage, interval timers.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>

#include <ctime>
#include <string>
#include <utility>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void clocks(Run& r) {
  // Readings go between two direct readings of the same clock.
  for (const auto& [id, name] : {std::pair{CLOCK_REALTIME, "REALTIME"},
                                 {CLOCK_MONOTONIC, "MONOTONIC"},
                                 {CLOCK_BOOTTIME, "BOOTTIME"},
                                 {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME"},
                                 {CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME"}}) {
    timespec a{}, v{}, b{};
    sc(SYS_clock_gettime, id, &a);
    const long rc = r.call(SYS_clock_gettime, id, &v);
    sc(SYS_clock_gettime, id, &b);
    r.log(std::string("clock_gettime ") + name,
          ret_str(rc) + " between direct readings=" + yes(before_or_equal(a, v) && before_or_equal(v, b)));
  }
  timespec res{};
  r.sys("clock_getres MONOTONIC", SYS_clock_getres, CLOCK_MONOTONIC, &res);
  r.log("resolution", fmt("%ld.%09ld", res.tv_sec, res.tv_nsec));
  r.sys("clock_getres THREAD_CPUTIME", SYS_clock_getres, CLOCK_THREAD_CPUTIME_ID, &res);
  r.log("resolution", fmt("%ld.%09ld", res.tv_sec, res.tv_nsec));
  r.sys("clock_gettime bad clock", SYS_clock_gettime, 12345, &res);
  r.sys("clock_gettime bad pointer", SYS_clock_gettime, CLOCK_MONOTONIC, kBadPtr);
  r.sys("clock_settime MONOTONIC (not settable)", SYS_clock_settime, CLOCK_MONOTONIC, &res);
  timeval tv{}, ta{}, tb{};
  sc(SYS_gettimeofday, &ta, nullptr);
  long rc = r.call(SYS_gettimeofday, &tv, nullptr);
  sc(SYS_gettimeofday, &tb, nullptr);
  auto us = [](const timeval& t) { return t.tv_sec * 1000000L + t.tv_usec; };
  r.log("gettimeofday", ret_str(rc) + " between=" + yes(us(ta) <= us(tv) && us(tv) <= us(tb)));
  const long t0 = sc(SYS_time, nullptr);
  long tt = 0;
  rc = r.call(SYS_time, &tt);
  const long t1 = sc(SYS_time, nullptr);
  r.log("time", fmt("returned-matches-stored=%d between=%d", rc == tt, t0 <= rc && rc <= t1));
  tms ta_tms{}, v_tms{};
  const long k0 = sc(SYS_times, &ta_tms);
  const long k = r.call(SYS_times, &v_tms);
  const long k1 = sc(SYS_times, nullptr);
  r.log("times",
        fmt("ticks between=%d utime monotonic=%d", k0 <= k && k <= k1, ta_tms.tms_utime <= v_tms.tms_utime));
  const timespec short_sleep{0, 1000}, bad_nsec{0, 2000000000};
  r.sys("nanosleep 1 us", SYS_nanosleep, &short_sleep, nullptr);
  r.sys("nanosleep bad nsec", SYS_nanosleep, &bad_nsec, nullptr);
  r.sys("nanosleep bad pointer", SYS_nanosleep, kBadPtr, nullptr);
  r.sys("clock_nanosleep MONOTONIC 1 us", SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &short_sleep, nullptr);
  const timespec epoch{0, 0};
  r.sys("clock_nanosleep absolute in the past", SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &epoch,
        nullptr);
  r.sys("clock_nanosleep THREAD_CPUTIME", SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &short_sleep,
        nullptr);
  r.sys("clock_nanosleep bad clock", SYS_clock_nanosleep, 12345, 0, &short_sleep, nullptr);
  rusage ru_a{}, ru{}, ru_b{};
  for (const auto& [who, name] : {std::pair{RUSAGE_SELF, "SELF"}, {RUSAGE_THREAD, "THREAD"}}) {
    sc(SYS_getrusage, who, &ru_a);
    rc = r.call(SYS_getrusage, who, &ru);
    sc(SYS_getrusage, who, &ru_b);
    auto cpu = [](const rusage& u) {
      return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000L + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
    };
    r.log(std::string("getrusage ") + name,
          ret_str(rc) + " cpu between direct readings=" + yes(cpu(ru_a) <= cpu(ru) && cpu(ru) <= cpu(ru_b)));
  }
  r.sys("getrusage CHILDREN", SYS_getrusage, RUSAGE_CHILDREN, &ru);
  r.sys("getrusage bad who", SYS_getrusage, 5, &ru);
  itimerval itv{};
  r.sys("getitimer REAL", SYS_getitimer, ITIMER_REAL, &itv);
  r.log("itimer", fmt("%ld.%06ld", itv.it_value.tv_sec, itv.it_value.tv_usec));
  r.sys("getitimer bad which", SYS_getitimer, 9, &itv);
  r.sys("alarm 0 (none pending)", SYS_alarm, 0);
}

const Case kCases[] = {
    {"clocks", clocks},
};
const bool kRegistered = register_cases(Group::kTime, kCases);

}  // namespace
}  // namespace flexsc::test::diff
