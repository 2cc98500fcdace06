#include "base/thread_state.h"

#include <sys/syscall.h>

#include "base/raw_syscall.h"

namespace flexsc::detail {
namespace {

thread_local int t_tid = 0;  // current_tid()'s cache
// The thread's own descriptor table, credentials, namespaces, seccomp
// filter...: syscall threads can no longer act for it.
thread_local bool t_diverged = false;

}  // namespace

thread_local int t_runtime_depth = 0;

int current_tid() {
  if (!t_tid) t_tid = static_cast<int>(raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0));
  return t_tid;
}

bool thread_diverged() {
  return t_diverged;
}
void mark_thread_diverged() {
  t_diverged = true;
}

void reset_thread_state_after_fork() {
  t_tid = 0;
  t_diverged = false;
}

}  // namespace flexsc::detail
