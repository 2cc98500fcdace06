/* The kernel shim's decision code built for userspace: the few definitions
 * the kernel gives it, then kernel-shim/flexsc_decide.h itself, compiled as
 * C (gnu11) as the kernel compiles it.  Its list of calls (remote_calls.h)
 * is made from this system's syscall header by the same generator. */
#include <stdbool.h>
#include <stdint.h>
#include <asm/unistd.h>

#include "module_decide.h"

/* glibc's <sys/cdefs.h> gives __always_inline. */
typedef uint8_t u8;
#define __init
#define __ro_after_init
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Larger than any number the headers know, as a newer kernel's is: then
 * flexsc_allowed() decides numbers the class list cannot name. */
#define NR_syscalls 512

/* The registers the decision reads, by the kernel's x86-64 names (the
 * uapi struct spells them rdi, rsi, ...). */
struct pt_regs {
	unsigned long di, si, dx, r10, r8, r9;
};

#include "flexsc_decide.h"

void flexsc_module_decide_init(void)
{
	flexsc_build_call_kinds();
}

unsigned int flexsc_module_nr_syscalls(void)
{
	return NR_syscalls;
}

/* What flexsc_run() decides for an entry, its arguments loaded. */
int flexsc_module_serves(unsigned int nr, const unsigned long args[6])
{
	const struct pt_regs regs = {
		.di = args[0], .si = args[1], .dx = args[2], .r10 = args[3], .r8 = args[4], .r9 = args[5],
	};

	if (nr >= NR_syscalls)
		return 0;
	return !flexsc_refused(nr, &regs);
}
