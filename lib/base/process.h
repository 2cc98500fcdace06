// What the runtime takes from the process it runs in: a signal to interrupt
// its own threads, descriptors out of the program's way.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

namespace flexsc::detail {

// A real-time signal nobody handles, taken for the runtime's own threads:
// its handler does nothing and has no SA_RESTART, so a call such a thread
// is blocked in returns when it arrives.  Shutdown interrupts them with it.
class CancelSignal {
 public:
  void take();       // none free: number() stays 0
  void give_back();  // the program's action again
  int number() const { return sig_; }

 private:
  int sig_ = 0;
  struct sigaction old_ {};
};

// Starts a thread of the runtime, born with every signal blocked (it opens
// what it needs) and, when cpus is given, pinned to them from its first
// instruction.  fn raises t_runtime_depth for the thread's life (it runs
// flexsc's own code only).  Returns 0 once the thread runs fn, or -errno.
int start_runtime_thread(pthread_t* handle, size_t stack, const std::vector<int>* cpus, void* (*fn)(void*),
                         void* arg);

// A fork and the making of a thread of the runtime exclude each other: a
// thread being made or starting up holds locks inside a sanitizer's
// runtime (GCC 12's ASan takes none around fork), and a child forked then
// blocks on one for ever at its first allocation.  A backend holds this
// from the allocation of the thread's record until start_runtime_thread
// has returned.
std::mutex& thread_start_mutex();

// Around fork(), from the runtime's fork handlers: no thread of the
// runtime is being made, and the child finds the locks of what this file
// keeps free.  The unlock runs in both processes.
void lock_process_for_fork();
void unlock_process_after_fork();

// The runtime's descriptors live at the top of the descriptor range, out
// of the way of a program that expects the lowest free numbers (and of
// tests comparing descriptor tables).  Returns the new number, or fd.
int move_fd_high(int fd);

// Whether fd is one of the runtime's (moved high by move_fd_high and still
// the same open file).  The drop-in wrapper keeps a program that closes
// every descriptor from closing these.
bool runtime_owns_fd(int fd);
// The runtime's descriptors, ascending, at most max of them into out.
int runtime_owned_fds(int* out, int max);

// A write to a broken pipe (SIGPIPE) or past RLIMIT_FSIZE (SIGXFSZ)
// signals the thread that made it: a thread of the runtime, where the
// signal stays blocked.  Takes it there and sends it on to the thread that
// submitted the entry (if known), as the kernel would have signalled it.
// Call before the entry completes.
void forward_thread_signal(int submitter_tid);

// Joins a thread of the runtime that may sit in a blocking call: `signal`
// (when non-zero) interrupts it every 10 ms until it has set `exited`.
// Clears *handle.
void interrupt_and_join(pthread_t* handle, const std::atomic<bool>& exited, int signal);

}  // namespace flexsc::detail
