// FlexSC-Threads for unmodified programs (flexsc-run --threads mn): every
// thread the program creates runs as a fiber on the M:N schedulers.
//
// Each such thread has an anchor: a real pthread, made by glibc's own
// pthread_create, that lends the fiber its thread control block and
// otherwise sleeps.  The scheduler loads the anchor's fs base around every
// switch into the fiber, so TLS, errno, pthread_self() and glibc's
// per-thread state are the thread's own on whichever carrier runs it.
// When the fiber ends, the anchor wakes and returns its result: glibc runs
// the thread's TLS and key destructors there, on the same TCB, and the
// real pthread_join and pthread_detach work on the anchor.
//
// The main thread stays a kernel thread: its stack is the process's, and
// it is the thread signals, exit and the kernel's view of the process are
// tied to.  It uses the same fiber-aware synchronization as fibers do.
#pragma once

#include <pthread.h>
#include <time.h>

#include <cstdint>
#include <string>

namespace flexsc::mn {

struct ThreadRecord;

// Whether the mode is on in this process (set once by enable()).
bool enabled();
// Turns the mode on after checking that it can run (fsgsbase, rseq not
// registered): false and why otherwise.  exception_less: the fibers'
// system calls may post through flexsc (false with --route none).
bool enable(bool exception_less, std::string* why);

// The record of the thread running the caller: its own under mn (a
// fiber), nullptr on a kernel thread (main, the runtime's, an anchor
// running its destructors).
ThreadRecord* self_record();
// The record of thread t, or nullptr if t is not a thread made under mn.
// t must be a thread that was not joined yet (as for pthread_join).
ThreadRecord* record_of(pthread_t t);

// The thread-life calls, with pthread's results.
int create(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg);
// deadline: nullptr waits for ever; else an absolute time on `clock`.
int join(ThreadRecord* r, pthread_t t, void** result, clockid_t clock, const struct timespec* deadline,
         bool try_only);
int detach(ThreadRecord* r, pthread_t t);
// pthread_exit from a fiber: unwinds its stack (C++ destructors, cleanup
// handlers) and ends it with `result`.
[[noreturn]] void exit_thread(ThreadRecord* self, void* result);
// pthread_exit from the main thread: the process lives while mn threads do.
void main_exits();

// What the program asks a thread of, answered for a fiber's thread.
int tid_of(const ThreadRecord* r);
// Runs a system call on the thread's own kernel task, its anchor, for
// what acts on the calling task (set_tid_address): the raw result.
long on_own_task(ThreadRecord* self, long nr, const long args[6]);
int getattr(ThreadRecord* r, pthread_t t, pthread_attr_t* attr);
int setname(ThreadRecord* r, const char* name);
int getname(ThreadRecord* r, char* buf, size_t len);

// Cleanup handlers of C code built without exceptions (pthread_cleanup_push).
void register_cancel(ThreadRecord* self, void* buf);
void unregister_cancel(ThreadRecord* self, void* buf);
[[noreturn]] void unwind_next(ThreadRecord* self, void* buf);

// Sleeping and yielding park the fiber.  clock_nanosleep's result.
int sleep_until(clockid_t clock, const struct timespec* abs);
int sleep_for(const struct timespec* rel);
void yield();

// The mode's line of the statistics report ("" when it is off).
std::string report();

}  // namespace flexsc::mn
