/* SPDX-License-Identifier: MIT */
/*
 * flexsc.h - exception-less system calls for Linux (C API).
 *
 * Every call returns the kernel's raw result: a value >= 0 on success,
 * -errno on failure.  errno is never touched.
 *
 * Two ways in:
 *   - flexsc_syscall(): post one entry from the calling thread and wait for
 *     it, a drop-in for syscall(2) that returns -errno instead of setting
 *     errno;
 *   - the batch API, in liburing's manner, on an explicit posting context
 *     that owns a ring of syscall pages: flexsc_get_entry(), flexsc_prep(),
 *     flexsc_submit(), flexsc_wait() or flexsc_peek(), flexsc_seen().
 *     Preparing an entry never makes a syscall; submitting makes none while
 *     a syscall thread is awake.
 *
 * Environment read by flexsc_init(), overriding the options:
 *   FLEXSC_BACKEND=auto|thread|uring|uring-sqpoll|shim
 *   FLEXSC_SYSCALL_CORES=1 | 2-3,6 | none   (OS CPU numbers; none: single core)
 *   FLEXSC_STATS=1 (report on stderr at shutdown) | FLEXSC_STATS=/path
 */
#ifndef FLEXSC_FLEXSC_H
#define FLEXSC_FLEXSC_H

#include <flexsc/entry.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * Options for flexsc_init().  Set size to sizeof(struct flexsc_options):
 * fields added later go at the end, so old binaries keep working.  Zero or
 * NULL in any field means "the default".
 */
struct flexsc_options {
	size_t size;
	const char *backend;       /* as FLEXSC_BACKEND */
	const char *syscall_cores; /* as FLEXSC_SYSCALL_CORES */
	const char *stats;         /* as FLEXSC_STATS */
	unsigned drain_spin_us;    /* idle syscall thread spins this long, then sleeps (default 50) */
	unsigned wait_spin_us;     /* waiting user thread spins this long, then parks (default 20) */
	unsigned max_syscall_threads; /* per syscall core, spares included (default 64) */
};

/* Start the runtime.  NULL means defaults.  -EALREADY if already running;
 * -EINVAL for a bad option (a message on stderr says which); -ENODEV or
 * -ENOSYS when a forced backend cannot start. */
int flexsc_init(const struct flexsc_options *opts);

/* Stop the runtime.  Entries in flight complete or get -ECANCELED; calls
 * made afterwards return -ESHUTDOWN until the next flexsc_init(). */
void flexsc_shutdown(void);

/* Post one syscall from the calling thread and wait for its result.  Any
 * thread may call it; before any flexsc_init() it initializes with defaults.
 * Syscalls whose meaning depends on the calling thread (gettid, signal
 * masks, ...) and numbers the runtime does not know run synchronously on the
 * caller, so the kernel itself answers. */
long flexsc_syscall(long nr, long a1, long a2, long a3, long a4, long a5,
		    long a6);

/* The active backend: "thread", "uring", "uring-sqpoll", "shim"; "sync"
 * in a forked child that fell back to synchronous calls; "none" when the
 * runtime is not running. */
const char *flexsc_backend(void);

/* Pin the calling thread to the user cores (those not reserved for syscall
 * threads).  Returns 0 or -errno. */
int flexsc_bind_user_thread(void);

/* ---- batch API ------------------------------------------------------- */

struct flexsc_ctx;

/* A posting context with `pages` syscall pages (64 entries each), owned by
 * one thread at a time.  Returns 0 and sets *ctx, or -errno. */
int flexsc_ctx_create(unsigned pages, struct flexsc_ctx **ctx);

/* -EBUSY while entries are submitted and not yet DONE; then nothing is
 * freed and the context stays usable. */
int flexsc_ctx_destroy(struct flexsc_ctx *ctx);

/* Number of entries the context holds (pages * 64). */
unsigned flexsc_ctx_capacity(const struct flexsc_ctx *ctx);

/* A FREE entry of the context, or NULL when every entry is in use. */
struct flexsc_entry *flexsc_get_entry(struct flexsc_ctx *ctx);

/* Submit every entry prepared since the last submit.  Returns how many,
 * or -ESHUTDOWN when the runtime is not running (the entries stay prepared). */
int flexsc_submit(struct flexsc_ctx *ctx);

/* The oldest submitted entry that is DONE, without waiting: 0 and *out, or
 * -EAGAIN when none is.  It stays returned until flexsc_seen(). */
int flexsc_peek(struct flexsc_ctx *ctx, struct flexsc_entry **out);

/* As flexsc_peek(), but waits until one is DONE: spins, then parks.  -EAGAIN
 * at once when nothing is in flight. */
int flexsc_wait(struct flexsc_ctx *ctx, struct flexsc_entry **out);

/* Wait until this entry is DONE.  Returns its result (and leaves it DONE). */
long flexsc_wait_entry(struct flexsc_ctx *ctx, struct flexsc_entry *e);

/* The caller has read e->ret: the entry becomes FREE again. */
void flexsc_seen(struct flexsc_ctx *ctx, struct flexsc_entry *e);

/* Index of an entry in its context, 0 .. capacity-1 (for user data). */
unsigned flexsc_entry_index(const struct flexsc_ctx *ctx,
			    const struct flexsc_entry *e);

static inline void flexsc_prep(struct flexsc_entry *e, long nr, long a1,
			       long a2, long a3, long a4, long a5, long a6)
{
	e->flags = 0;
	e->nr = (__u32)nr;
	e->args[0] = a1;
	e->args[1] = a2;
	e->args[2] = a3;
	e->args[3] = a4;
	e->args[4] = a5;
	e->args[5] = a6;
	e->ret = 0;
}

/* An entry a syscall thread completes with 0 without making a syscall:
 * measures the handoff alone. */
static inline void flexsc_prep_nop(struct flexsc_entry *e)
{
	flexsc_prep(e, 0, 0, 0, 0, 0, 0, 0);
	e->flags = FLEXSC_ENTRY_NOP;
}

/* Nonzero once e is DONE and e->ret may be read: a check that costs one
 * load, for harvest loops that usually find their results ready.  With the
 * io_uring backends a completion reaches its entry when the context's owner
 * calls flexsc_submit(), flexsc_peek() or a wait: a loop that only checks
 * this must call one of those too. */
static inline int flexsc_entry_done(const struct flexsc_entry *e)
{
	return __atomic_load_n(&e->status, __ATOMIC_ACQUIRE) == FLEXSC_DONE;
}

/* ---- statistics ------------------------------------------------------ */

struct flexsc_stats {
	uint64_t remote_calls;   /* executed by syscall threads */
	uint64_t local_calls;    /* depend on the caller: ran synchronously on it */
	uint64_t unknown_calls;  /* numbers the table does not know: ran on the caller */
	uint64_t blocking_calls; /* of the remote ones, in the blocking class */
	uint64_t nops;
	uint64_t drains;         /* visits of a syscall thread to a context */
	uint64_t drain_sleeps;   /* idle syscall thread went to sleep */
	uint64_t wait_parks;     /* waiting user thread parked after spinning */
	uint64_t takeovers;      /* a spare syscall thread was woken for a stuck one */
	uint64_t syscall_threads; /* started so far */
	uint64_t cancelled;      /* completed with -ECANCELED at shutdown */
	uint64_t uring_calls;    /* executed by io_uring (uring backends; not in remote_calls) */
};

/* Counters since flexsc_init(), summed over all threads. 0 or -ESHUTDOWN. */
int flexsc_get_stats(struct flexsc_stats *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* FLEXSC_FLEXSC_H */
