// pthread synchronization for M:N threads: what the drop-in wrapper's
// interposers call under `--threads mn`.  A call that blocks parks only the
// calling fiber (its scheduler runs others meanwhile); from a plain kernel
// thread it sleeps on a futex.  Everything works on glibc's own objects
// (glibc 2.36, x86-64), so static initializers, objects set up by the real
// pthread_*_init with their attributes, and objects shared by fibers and
// plain threads all work.  Waits are in the parking lot (mn/parking_lot.h).
//
// Each call returns 0 or an errno value, as the pthread calls do (the
// semaphore interposers turn it into -1 and errno).
//
// Not emulated: the interposer asks handles() and, when it says false,
// calls the real glibc function instead:
// - mutexes that are robust, priority-inheriting, priority-protecting or
//   process-shared, or destroyed (their __kind);
// - process-shared condition variables (bit 0 of __wrefs) and rwlocks
//   (__shared);
// - barriers not made by barrier_init() (process-shared ones: the
//   interposer of pthread_barrier_init asks handles(attr));
// - process-shared semaphores (sem_init with pshared, sem_open);
// - futex operations on shared (not FUTEX_PRIVATE_FLAG) words and the PI
//   ones: futex_handles(op).
// No interposer is needed for pthread_mutex_init, _destroy,
// pthread_cond_init, pthread_rwlock_init, _destroy, sem_init, sem_destroy
// and sem_getvalue: the real ones read and write the same layout.
//
// Mutexes and semaphores keep glibc's encoding: its real functions may
// take and give them too, and every release that finds no waiter of its
// own here also wakes the kernel's futex waiters of the word (though a
// waiter here is never woken by a real release).  Condition variables,
// rwlocks and barriers encode their state their own way in glibc's bytes
// (keeping the flags its init writes): once handled, only these functions
// may use one (the real init, and the real destroy of conds and rwlocks,
// still work).  A timed wait turns its absolute time into a
// CLOCK_MONOTONIC deadline when it starts: a later step of the realtime
// clock is not followed.  Cancellation points are the interposers' to add.
#pragma once

#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include <cstdint>

namespace flexsc::mn {

// Who owns what: glibc records its owner's tid in a mutex (__owner) and a
// rwlock (__cur_writer).  flexsc::detail::current_tid() by default; under
// mn an anchor's TCB answers the thread's own.  A fiber of a plain Pool
// shares its carrier's tid: tests name their fibers through this.
void set_owner_id_source(int (*source)());

// ---- mutexes: kinds NORMAL (TIMED), RECURSIVE, ERRORCHECK, ADAPTIVE
bool handles(const pthread_mutex_t* m);
int mutex_lock(pthread_mutex_t* m);
int mutex_trylock(pthread_mutex_t* m);
int mutex_timedlock(pthread_mutex_t* m, const struct timespec* abstime);  // CLOCK_REALTIME
int mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abstime);
int mutex_unlock(pthread_mutex_t* m);

// ---- condition variables; the mutex may be of any kind (one handles()
// refuses is unlocked and locked again through the real functions)
bool handles(const pthread_cond_t* c);
int cond_wait(pthread_cond_t* c, pthread_mutex_t* m);
// On the cond's clock (pthread_condattr_setclock; CLOCK_REALTIME by default).
int cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abstime);
int cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const struct timespec* abstime);
int cond_signal(pthread_cond_t* c);
int cond_broadcast(pthread_cond_t* c);
// Waits (parked) until woken waiters have left the cond's memory.
int cond_destroy(pthread_cond_t* c);

// ---- rwlocks: glibc's reader preference by default (a reader gets in
// while a writer waits), PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
bool handles(const pthread_rwlock_t* rw);
int rwlock_rdlock(pthread_rwlock_t* rw);
int rwlock_tryrdlock(pthread_rwlock_t* rw);
int rwlock_timedrdlock(pthread_rwlock_t* rw, const struct timespec* abstime);  // CLOCK_REALTIME
int rwlock_clockrdlock(pthread_rwlock_t* rw, clockid_t clock, const struct timespec* abstime);
int rwlock_wrlock(pthread_rwlock_t* rw);
int rwlock_trywrlock(pthread_rwlock_t* rw);
int rwlock_timedwrlock(pthread_rwlock_t* rw, const struct timespec* abstime);  // CLOCK_REALTIME
int rwlock_clockwrlock(pthread_rwlock_t* rw, clockid_t clock, const struct timespec* abstime);
int rwlock_unlock(pthread_rwlock_t* rw);

// ---- barriers: a layout of their own in the 32 bytes, marked as ours
bool handles(const pthread_barrierattr_t* attr);  // nullptr: the default, handled
bool handles(const pthread_barrier_t* b);
int barrier_init(pthread_barrier_t* b, unsigned count);
// PTHREAD_BARRIER_SERIAL_THREAD for one waiter of each round, 0 for the others.
int barrier_wait(pthread_barrier_t* b);
int barrier_destroy(pthread_barrier_t* b);

// ---- semaphores: glibc's layout (value in the low 32 bits of the first
// word, waiters in the high 32)
bool handles(const sem_t* s);
int sem_wait(sem_t* s);
int sem_trywait(sem_t* s);
int sem_timedwait(sem_t* s, const struct timespec* abstime);  // CLOCK_REALTIME
int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abstime);
int sem_post(sem_t* s);

// ---- pthread_once, with glibc's values (2: done)
int once(pthread_once_t* control, void (*init)());

// ---- the futex, as a program calls it through syscall(SYS_futex, ...):
// WAIT, WAIT_BITSET (absolute; FUTEX_CLOCK_REALTIME honoured), WAKE,
// WAKE_BITSET, REQUEUE, CMP_REQUEUE, WAKE_OP.  arg4 is the timeout pointer
// of the waits and val2 (a count) of the others.  Returns what the kernel
// would: a count, 0, or -errno (-EAGAIN when *uaddr differs, -ETIMEDOUT,
// -EINVAL, -ENOSYS).  An address the kernel would answer -EFAULT for
// faults here instead.
bool futex_handles(int op);
long futex(uint32_t* uaddr, int op, uint32_t val, unsigned long arg4, uint32_t* uaddr2, uint32_t val3);

}  // namespace flexsc::mn
