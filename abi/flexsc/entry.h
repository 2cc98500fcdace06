/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * flexsc/entry.h - layout of syscall entries and syscall pages.
 *
 * Shared word for word by the user-space library and the kernel shim, like
 * a uapi header: fixed-width types only, no libc, no C++.
 *
 * An entry moves through FREE -> SUBMITTED -> BUSY -> DONE -> FREE:
 *   - the owner fills a FREE entry and publishes it with a release store
 *     of SUBMITTED;
 *   - a syscall thread claims it (the kernel shim with a plain store of
 *     BUSY, by the one serving thread that drains the page's region at the
 *     time; the userspace backends through the posting context's
 *     submission queue, which lets them skip the BUSY store), executes it,
 *     writes ret and publishes DONE with a release store;
 *   - the owner reads DONE with an acquire load, takes ret and marks the
 *     entry FREE.
 */
#ifndef FLEXSC_ENTRY_H
#define FLEXSC_ENTRY_H

#include <linux/types.h>

#define FLEXSC_ENTRY_SIZE 64
#define FLEXSC_PAGE_SIZE 4096
#define FLEXSC_ENTRIES_PER_PAGE (FLEXSC_PAGE_SIZE / FLEXSC_ENTRY_SIZE)

enum flexsc_status {
	FLEXSC_FREE = 0,
	FLEXSC_SUBMITTED = 1,
	FLEXSC_BUSY = 2,
	FLEXSC_DONE = 3,
};

/* Entry flags. */
#define FLEXSC_ENTRY_NOP (1u << 0) /* complete with ret 0, make no syscall */
/* Set by the library on submit: the call may sleep without bound (the
 * blocking class).  The kernel shim shows such a call to observers
 * (flexsc_shim_control.servers). */
#define FLEXSC_ENTRY_MAY_BLOCK (1u << 15)

/*
 * One syscall, one cache line.  nr holds the low 32 bits of the syscall
 * number, which is all the x86-64 kernel looks at (it dispatches on eax).
 * args are in the syscall ABI's register order: rdi, rsi, rdx, r10, r8, r9.
 * ret is the raw kernel result, -errno on failure.
 */
struct flexsc_entry {
	__u16 status; /* enum flexsc_status, accessed atomically */
	__u16 flags;  /* FLEXSC_ENTRY_* */
	__u32 nr;
	__s64 args[6];
	__s64 ret;
} __attribute__((aligned(FLEXSC_ENTRY_SIZE)));

struct flexsc_page {
	struct flexsc_entry entries[FLEXSC_ENTRIES_PER_PAGE];
};

#ifdef __cplusplus
static_assert(sizeof(struct flexsc_entry) == FLEXSC_ENTRY_SIZE, "entry size");
static_assert(sizeof(struct flexsc_page) == FLEXSC_PAGE_SIZE, "page size");
#else
_Static_assert(sizeof(struct flexsc_entry) == FLEXSC_ENTRY_SIZE, "entry size");
_Static_assert(sizeof(struct flexsc_page) == FLEXSC_PAGE_SIZE, "page size");
#endif

#endif /* FLEXSC_ENTRY_H */
