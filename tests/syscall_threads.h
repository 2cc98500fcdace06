// What the runtime's syscall threads are doing, seen from /proc: lets a
// test wait until its blocking calls really sit in the kernel before it
// goes on, instead of sleeping and hoping.
#pragma once

#include <dirent.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace flexsc::test {

// Number of threads named flexsc-sys/N now inside syscall `nr` (any: -1).
inline int syscall_threads_in(long nr) {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return -1;
  while (dirent* d = readdir(dir)) {
    if (d->d_name[0] == '.') continue;
    const std::string task = std::string("/proc/self/task/") + d->d_name;
    std::string comm, sys;
    std::ifstream(task + "/comm") >> comm;
    if (comm.rfind("flexsc-sys/", 0) != 0) continue;
    std::ifstream(task + "/syscall") >> sys;  // "<nr> <args...>", or "running"
    if (nr == -1 || sys == std::to_string(nr)) ++n;
  }
  closedir(dir);
  return n;
}

// Polls `ready` until it holds or `limit` passes.  Returns whether it held.
inline bool eventually(const std::function<bool()>& ready, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace flexsc::test
