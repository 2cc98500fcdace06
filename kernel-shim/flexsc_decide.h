/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which calls a server runs: the module's whole decision over a call number
 * and its argument registers.  It sits apart from flexsc_shim.c so that it
 * also builds in userspace, where tests/abi runs it over every number and
 * each argument rule against the library's classify().
 *
 * The includer provides what the kernel does: bool, u8, __init,
 * __ro_after_init, __always_inline, unlikely, struct pt_regs (x86-64
 * register names), the __NR_* numbers and NR_syscalls.
 */
#ifndef FLEXSC_DECIDE_H
#define FLEXSC_DECIDE_H

#include <flexsc/thread_args.h>

/*
 * Only calls of the remote and blocking classes of abi/syscall_classes.txt
 * run on a server: the local ones act on the calling thread itself, and a
 * call the list does not know is treated as local, as the library does.
 */
static bool __init flexsc_allowed(unsigned int nr)
{
	switch (nr) {
#include "remote_calls.h"
		return true;
	default:
		return false;
	}
}

/*
 * Calls whose arguments make them act on the calling thread: the same
 * rules as the library's (abi/flexsc/thread_args.h).  1 when they do,
 * 0 when they do not, -1 for calls whose arguments never matter.
 */
static int flexsc_thread_args(unsigned int nr, const struct pt_regs *regs)
{
	const unsigned long a[6] = { regs->di, regs->si, regs->dx, regs->r10, regs->r8, regs->r9 };

	return flexsc_acts_on_caller(nr, a);
}

/* The two switches above as one table: a server reads a byte per entry. */
enum flexsc_call_kind {
	FLEXSC_CALL_LOCAL,  /* never on a server */
	FLEXSC_CALL_REMOTE, /* on a server, whatever its arguments */
	FLEXSC_CALL_ARGS,   /* on a server unless its arguments make it act on the caller */
};
static u8 flexsc_call_kind[NR_syscalls] __ro_after_init;

static void __init flexsc_build_call_kinds(void)
{
	const struct pt_regs zero = {};
	unsigned int nr;

	for (nr = 0; nr < NR_syscalls; nr++) {
		if (!flexsc_allowed(nr))
			flexsc_call_kind[nr] = FLEXSC_CALL_LOCAL;
		else if (flexsc_thread_args(nr, &zero) >= 0)
			flexsc_call_kind[nr] = FLEXSC_CALL_ARGS;
		else
			flexsc_call_kind[nr] = FLEXSC_CALL_REMOTE;
	}
}

/*
 * Whether a server refuses call nr (below NR_syscalls) with these argument
 * registers: a local call, or one whose arguments make it act on the
 * caller.
 */
static __always_inline bool flexsc_refused(unsigned int nr, const struct pt_regs *regs)
{
	u8 kind = flexsc_call_kind[nr];

	return unlikely(kind != FLEXSC_CALL_REMOTE) &&
	       (kind == FLEXSC_CALL_LOCAL || flexsc_thread_args(nr, regs) > 0);
}

#endif /* FLEXSC_DECIDE_H */
