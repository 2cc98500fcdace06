/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * flexsc/shim.h - the interface of the kernel shim, /dev/flexsc.
 *
 * Shared word for word by the library and kernel-shim/ (like a uapi header:
 * fixed-width types only).  Syscall entries and pages are in entry.h.
 *
 * A process attaches once (FLEXSC_IOC_ATTACH) with one page of shared
 * control words, registers its syscall pages (FLEXSC_IOC_REGISTER, one
 * region per posting context), and turns some of its own threads into
 * serving threads (FLEXSC_IOC_SERVE): they stay in the kernel and claim
 * SUBMITTED entries of its regions, run them through the kernel's syscall
 * dispatcher and publish DONE.  One server at a time drains a region: it
 * takes the region with one compare-and-swap (on a word of the module's),
 * then claims with plain stores of BUSY, and lets go when its scan ends or
 * it falls asleep in a call.  So userspace must not take back a SUBMITTED
 * entry while a server may run (the library cancels only after LEAVE and
 * its servers are gone).  Only threads of the attaching process (the same
 * mm) may use the descriptor.
 */
#ifndef FLEXSC_SHIM_H
#define FLEXSC_SHIM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define FLEXSC_SHIM_DEVICE "/dev/flexsc"
#define FLEXSC_SHIM_ABI 3

/*
 * The control area, shared by the process and the module.  Posters publish
 * their entries (SUBMITTED), then add their number to `posted` with a full
 * barrier, then read `ready`:
 * zero means no serving thread is ready to take them (every one asleep,
 * idle or inside a call), and FLEXSC_IOC_WAKE wakes one.  A serving thread
 * about to sleep idle decrements `ready` with a full barrier, then looks at
 * `posted` once more.  Either side sees the other's store, so no
 * submission is left with no server ready, and posting makes no syscall
 * while one is.  A server that falls asleep inside a call (the scheduler
 * tells the module) stops counting too, and wakes a sleeping one if it was
 * the last ready.  Only one idle server spins; the others sleep.  The two
 * words have a cache line each: one is written by posters, the other by
 * serving threads.  Servers scan again only when `posted` moved, and a
 * scan stops once it has claimed as many entries as were posted and not
 * yet claimed: a poster that counts fewer than it submitted delays its own
 * entries until its next post.
 */
#define FLEXSC_SHIM_MAX_SERVERS 64     /* servers[] slots; more servers run unreported */

struct flexsc_shim_control {
	__u64 posted;
	__u64 pad0[7];
	__u32 ready;
	__u32 pad1[15];
	/*
	 * Entries published DONE, added by servers after the first entry of a
	 * scan, every 16 and at its end: waiters poll this line instead of the
	 * entries a server is about to write.  A line of its own, apart from
	 * `ready`, which posters read after every post.
	 */
	__u64 completed;
	__u64 pad1b[7];
	/*
	 * For observers (tests, tools): each serving thread's id and the call
	 * marked FLEXSC_ENTRY_MAY_BLOCK it sits in (-1: none; quick calls are
	 * not shown, which keeps two stores off every entry).
	 */
	struct {
		__s32 tid;
		__s32 nr;
	} servers[FLEXSC_SHIM_MAX_SERVERS];
};

/* The control area spans this many pages (page-aligned, registered whole). */
#define FLEXSC_SHIM_CONTROL_PAGES ((sizeof(struct flexsc_shim_control) + 4095) / 4096)

/* FLEXSC_IOC_ATTACH: the process's one attachment (per mm). */
struct flexsc_shim_attach {
	__u32 abi;      /* in: FLEXSC_SHIM_ABI */
	__u32 flags;    /* in: 0 */
	__u64 control;  /* in: page-aligned address of FLEXSC_SHIM_CONTROL_PAGES pages: struct flexsc_shim_control */
};

/*
 * FLEXSC_IOC_REGISTER / FLEXSC_IOC_UNREGISTER: a run of syscall pages.
 * REGISTER refuses a run that overlaps a registered one (-EBUSY).  Once
 * UNREGISTER returns, no server claims an entry of the region; one a
 * server holds (BUSY, in its `pending`) may still be run and published.
 */
struct flexsc_shim_region {
	__u64 addr;   /* in: page-aligned */
	__u32 pages;  /* in: 1 .. FLEXSC_SHIM_MAX_PAGES */
	__u32 id;     /* out (REGISTER), in (UNREGISTER) */
};

#define FLEXSC_SHIM_MAX_PAGES 1024
#define FLEXSC_SHIM_MAX_REGIONS 4096

/*
 * FLEXSC_IOC_SERVE: the caller serves until a signal, a LEAVE or task work
 * sends it back.  Entries it ran whose syscall queued task work (a close()
 * defers the file's release that way) are not DONE yet: the module holds
 * them for the same thread, their addresses come back in `pending` (for
 * the caller to look at: the module keeps its own record), the task work
 * runs on the way to userspace, and the thread's next SERVE call (or one
 * with FLEXSC_SERVE_PUBLISH_ONLY) publishes them first.  A call that
 * raised SIGPIPE or SIGXFSZ (a write to a broken pipe, past RLIMIT_FSIZE)
 * comes back the same way with reason FLEXSC_SERVE_CALLER_SIGNAL: the
 * signal is pending on the server, blocked, for it to send on to the
 * thread that submitted the entry before the entry completes.  After
 * FLEXSC_IOC_LEAVE, a call interrupted (by the stop signal) completes with
 * -ECANCELED.
 */
#define FLEXSC_SHIM_MAX_PENDING 16
#define FLEXSC_SERVE_PUBLISH_ONLY (1u << 0) /* finish what this thread left pending, then return */

enum flexsc_serve_reason {
	FLEXSC_SERVE_SIGNAL = 1,    /* a signal is pending (or the thread was frozen) */
	FLEXSC_SERVE_TASK_WORK = 2, /* an entry queued task work: see pending */
	FLEXSC_SERVE_LEAVE = 3,     /* FLEXSC_IOC_LEAVE was called */
	FLEXSC_SERVE_PUBLISHED = 4, /* FLEXSC_SERVE_PUBLISH_ONLY */
	FLEXSC_SERVE_CALLER_SIGNAL = 5, /* an entry's call raised SIGPIPE or SIGXFSZ: see below */
};

struct flexsc_shim_serve {
	__s32 cpu;          /* in: pin the caller to this CPU; -1 leaves its affinity */
	__u32 flags;        /* in: FLEXSC_SERVE_* */
	__u64 spin_ns;      /* in: spin this long idle before sleeping */
	__u32 stop_signal;  /* in: left unblocked, to interrupt a call at shutdown (0: none) */
	__u32 reason;       /* out: enum flexsc_serve_reason */
	__u64 executed;     /* out: entries run by this call */
	__u32 npending;     /* out */
	__u32 pad;
	__u64 pending[FLEXSC_SHIM_MAX_PENDING]; /* out: user addresses of the entries held */
};

/*
 * FLEXSC_IOC_WAIT: sleep until an entry of the region is DONE, or until a
 * NOTIFY of the region (one made since the last WAIT that returned 0
 * counts too).
 */
struct flexsc_shim_wait {
	__u32 id;          /* in: region */
	__s32 index;       /* in: this entry, or -1 for any entry of the region */
	__u64 timeout_ns;  /* in: 0 = no timeout */
};

/*
 * FLEXSC_IOC_STATS: what the serving threads ran.  Each counter is bumped
 * before the entry it counts is DONE, so a thread that saw an entry DONE
 * finds it counted.  The module keeps them per CPU (a server counts with
 * one unlocked add) and sums them here.
 */
#define FLEXSC_SHIM_COUNTED_CALLS 512 /* calls[] covers syscall numbers below this */

struct flexsc_shim_stats {
	__u64 nops;                             /* out: NOP entries completed */
	__u64 cancelled;                        /* out: calls interrupted at shutdown (-ECANCELED) */
	__u64 overlapped;                       /* out: entries of batches begun while another server sat in a call */
	__u64 calls[FLEXSC_SHIM_COUNTED_CALLS]; /* out: calls run, by syscall number */
};

#define FLEXSC_SHIM_IOC_MAGIC 0xF3
#define FLEXSC_IOC_ATTACH _IOW(FLEXSC_SHIM_IOC_MAGIC, 1, struct flexsc_shim_attach)
#define FLEXSC_IOC_REGISTER _IOWR(FLEXSC_SHIM_IOC_MAGIC, 2, struct flexsc_shim_region)
#define FLEXSC_IOC_UNREGISTER _IOW(FLEXSC_SHIM_IOC_MAGIC, 3, struct flexsc_shim_region)
#define FLEXSC_IOC_SERVE _IOWR(FLEXSC_SHIM_IOC_MAGIC, 4, struct flexsc_shim_serve)
#define FLEXSC_IOC_WAIT _IOW(FLEXSC_SHIM_IOC_MAGIC, 5, struct flexsc_shim_wait)
#define FLEXSC_IOC_WAKE _IO(FLEXSC_SHIM_IOC_MAGIC, 6)  /* wake one sleeping serving thread */
#define FLEXSC_IOC_LEAVE _IO(FLEXSC_SHIM_IOC_MAGIC, 7) /* send every serving thread back */
/*
 * Wake FLEXSC_IOC_WAIT's waiters on region *arg (a __u32 id): entries
 * completed outside the module, or anything else the owner must look at.
 */
#define FLEXSC_IOC_NOTIFY _IOW(FLEXSC_SHIM_IOC_MAGIC, 8, __u32)
#define FLEXSC_IOC_STATS _IOR(FLEXSC_SHIM_IOC_MAGIC, 9, struct flexsc_shim_stats)

#endif /* FLEXSC_SHIM_H */
