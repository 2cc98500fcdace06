// What flexsc keeps per kernel thread: whether the thread runs flexsc's
// own code, its id, and whether it made itself unlike the process's other
// threads.
#pragma once

namespace flexsc::detail {

// > 0 while the calling thread runs flexsc's own code (an API call, the
// runtime's threads for their whole life, exit and fork handlers): the
// drop-in wrapper passes the libc calls flexsc makes meanwhile straight to
// the kernel instead of routing them back into flexsc.
extern thread_local int t_runtime_depth;
struct RuntimeScope {
  RuntimeScope() { ++t_runtime_depth; }
  ~RuntimeScope() { --t_runtime_depth; }
  RuntimeScope(const RuntimeScope&) = delete;
  RuntimeScope& operator=(const RuntimeScope&) = delete;
};

// The calling thread's id, cached.
int current_tid();

// True once the calling thread has made itself unlike the process's other
// threads (unshare, raw setuid, seccomp...): its calls then all run on it.
bool thread_diverged();
void mark_thread_diverged();

// In a forked child: the one thread left is another thread, like no other.
void reset_thread_state_after_fork();

}  // namespace flexsc::detail
