/* The kernel shim's decision code (kernel-shim/flexsc_decide.h), built for
 * userspace by module_decide.c, as the agreement test calls it. */
#ifndef FLEXSC_TEST_MODULE_DECIDE_H
#define FLEXSC_TEST_MODULE_DECIDE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Fills the module's table of call kinds, as its init does. */
void flexsc_module_decide_init(void);

/* The module's NR_syscalls here: numbers from it on are refused unread. */
unsigned int flexsc_module_nr_syscalls(void);

/* 1 when a server runs call nr with these argument registers (rdi, rsi,
 * rdx, r10, r8, r9), 0 when it refuses it (-ENOSYS or -EPERM). */
int flexsc_module_serves(unsigned int nr, const unsigned long args[6]);

#ifdef __cplusplus
}
#endif

#endif /* FLEXSC_TEST_MODULE_DECIDE_H */
