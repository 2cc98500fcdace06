// A deadline for one step of a test: when the step hangs, the program says
// which step, prints every thread's stack of itself and of the processes
// it started (tests/watchdog.sh, which runs gdb) and aborts, instead of
// sitting until ctest's timeout kills it without a word.  Keep the limit
// below the test's TIMEOUT less the margin that script takes.
#pragma once

#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace flexsc::test {

class Watchdog {
 public:
  Watchdog(std::string what, std::chrono::seconds limit)
      : what_(std::move(what)), thread_([this, limit] {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: '%s' did not finish within %lld s: hung; stacks follow\n",
                         what_.c_str(), static_cast<long long>(limit.count()));
            print_stacks();
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  static void print_stacks() {
    // gdb, started from here, may attach to its ancestor (Yama's
    // ptrace_scope 1 would refuse it otherwise).
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    const std::string pid = std::to_string(getpid());
    const char* argv[] = {"bash", FLEXSC_TEST_WATCHDOG, "--stacks", pid.c_str(), nullptr};
    pid_t child;
    if (posix_spawnp(&child, "bash", nullptr, nullptr, const_cast<char**>(argv), environ) == 0)
      waitpid(child, nullptr, 0);
  }

  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace flexsc::test
