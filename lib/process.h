// What the runtime takes from the process it runs in: a signal to interrupt
// its own threads, descriptors out of the program's way.
#pragma once

#include <pthread.h>

#include <atomic>

namespace flexsc::detail {

// A handler that does nothing: installed without SA_RESTART, the signal
// makes a blocked call return -EINTR.
void ignore_signal(int);

// A real-time signal nobody handles, used to interrupt a thread of the
// runtime blocked in a call when the runtime shuts down; 0 if none is free.
int pick_cancel_signal();

// The runtime's descriptors live at the top of the descriptor range, out
// of the way of a program that expects the lowest free numbers (and of
// tests comparing descriptor tables).  Returns the new number, or fd.
int move_fd_high(int fd);

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
