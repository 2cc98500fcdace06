/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Calls whose arguments make them act on the calling thread: pid 0 for
 * the scheduler calls, a thread CPU clock, RUSAGE_THREAD, a signal mask
 * swapped in for the call, PI futexes, execute-only memory, and so on.  The library runs them
 * on the caller (lib/base/classify.cpp); the kernel shim refuses them on a
 * serving thread.  Plain C, included by both, so the rules are one piece
 * of code.
 *
 * The constants are the kernel ABI's, spelled out here: glibc's headers
 * and the kernel's uapi ones clash when a file includes both.  Each side
 * checks them against its own headers at build time.
 */
#ifndef FLEXSC_THREAD_ARGS_H
#define FLEXSC_THREAD_ARGS_H

#include <asm/unistd.h>

#define FLEXSC_PRIO_PROCESS 0
#define FLEXSC_IOPRIO_WHO_PROCESS 1
#define FLEXSC_RUSAGE_THREAD 1
#define FLEXSC_CLOCK_THREAD_CPUTIME_ID 3
#define FLEXSC_CPUCLOCK_PERTHREAD_MASK 4 /* in a clock id built per thread (negative) */
#define FLEXSC_CLOSE_RANGE_UNSHARE 2
#define FLEXSC_WNOTHREAD 0x20000000
#define FLEXSC_FUTEX_CMD_MASK (~(128 | 256)) /* without FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME */
#define FLEXSC_FUTEX_WAIT 0
#define FLEXSC_FUTEX_LOCK_PI 6
#define FLEXSC_FUTEX_UNLOCK_PI 7
#define FLEXSC_FUTEX_TRYLOCK_PI 8
#define FLEXSC_FUTEX_WAIT_BITSET 9
#define FLEXSC_FUTEX_WAIT_REQUEUE_PI 11
#define FLEXSC_FUTEX_CMP_REQUEUE_PI 12
#define FLEXSC_FUTEX_LOCK_PI2 13
#define FLEXSC_PROT_EXEC 4
#define FLEXSC_PROT_GROWS (0x01000000 | 0x02000000) /* PROT_GROWSDOWN | PROT_GROWSUP */

/* An int argument is the low 32 bits of its register: what the call reads. */
static inline int flexsc_int_arg(unsigned long reg)
{
	return (int)reg;
}

/* CLOCK_THREAD_CPUTIME_ID, or a clock id built for one thread. */
static inline int flexsc_thread_clock(int id)
{
	return id == FLEXSC_CLOCK_THREAD_CPUTIME_ID || (id < 0 && (id & FLEXSC_CPUCLOCK_PERTHREAD_MASK));
}

/*
 * Execute-only memory: on CPUs with protection keys the kernel gives it a
 * key and denies that key in the calling thread's PKRU (mmap with
 * PROT_EXEC alone; mprotect with no key of its own, and only PROT_EXEC
 * once the grow flags are off).
 */
static inline int flexsc_execute_only(unsigned long prot)
{
	return (prot & ~(unsigned long)FLEXSC_PROT_GROWS) == FLEXSC_PROT_EXEC;
}

static inline int flexsc_pi_futex(int op)
{
	switch (op & FLEXSC_FUTEX_CMD_MASK) {
	case FLEXSC_FUTEX_LOCK_PI:
	case FLEXSC_FUTEX_UNLOCK_PI:
	case FLEXSC_FUTEX_TRYLOCK_PI:
	case FLEXSC_FUTEX_WAIT_REQUEUE_PI:
	case FLEXSC_FUTEX_CMP_REQUEUE_PI:
	case FLEXSC_FUTEX_LOCK_PI2:
		return 1;
	default:
		return 0;
	}
}

/*
 * 1 when call nr with these argument registers (rdi, rsi, rdx, r10, r8,
 * r9) acts on the calling thread, 0 when it does not, -1 for a call whose
 * arguments never make it do so.
 */
static inline int flexsc_acts_on_caller(unsigned int nr, const unsigned long a[6])
{
	switch (nr) {
	case __NR_sched_setparam:
	case __NR_sched_getparam:
	case __NR_sched_setscheduler:
	case __NR_sched_getscheduler:
	case __NR_sched_rr_get_interval:
	case __NR_sched_setaffinity:
	case __NR_sched_getaffinity:
	case __NR_sched_setattr:
	case __NR_sched_getattr:
		return flexsc_int_arg(a[0]) == 0; /* pid 0 */
	case __NR_perf_event_open:
		return flexsc_int_arg(a[1]) == 0;
	case __NR_getpriority:
	case __NR_setpriority:
		return flexsc_int_arg(a[0]) == FLEXSC_PRIO_PROCESS && flexsc_int_arg(a[1]) == 0;
	case __NR_ioprio_get:
	case __NR_ioprio_set:
		return flexsc_int_arg(a[0]) == FLEXSC_IOPRIO_WHO_PROCESS && flexsc_int_arg(a[1]) == 0;
	case __NR_getrusage:
		return flexsc_int_arg(a[0]) == FLEXSC_RUSAGE_THREAD;
	case __NR_clock_gettime:
	case __NR_clock_getres:
	case __NR_clock_nanosleep:
	case __NR_timer_create:
		return flexsc_thread_clock(flexsc_int_arg(a[0]));
	case __NR_close_range:
		return (a[2] & FLEXSC_CLOSE_RANGE_UNSHARE) != 0;
	/* A signal mask swapped in for the call is the calling thread's. */
	case __NR_ppoll:
		return a[3] != 0;
	case __NR_pselect6:
	case __NR_io_pgetevents:
		return a[5] != 0;
	case __NR_epoll_pwait:
#ifdef __NR_epoll_pwait2
	case __NR_epoll_pwait2:
#endif
		return a[4] != 0;
	case __NR_futex:
		return flexsc_pi_futex(flexsc_int_arg(a[1]));
	case __NR_mmap:
		return a[2] == FLEXSC_PROT_EXEC; /* do_mmap keeps the grow flags */
	case __NR_mprotect:
		return flexsc_execute_only(a[2]);
	case __NR_pkey_mprotect:
		return flexsc_int_arg(a[3]) == -1 && flexsc_execute_only(a[2]);
	case __NR_wait4:
		return (a[2] & FLEXSC_WNOTHREAD) != 0;
	case __NR_waitid:
		return (a[3] & FLEXSC_WNOTHREAD) != 0;
	default:
		return -1;
	}
}

#endif /* FLEXSC_THREAD_ARGS_H */
