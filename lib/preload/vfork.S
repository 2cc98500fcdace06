/* vfork for the drop-in wrapper.  The child runs on the parent's stack
 * and memory until it executes or exits, so the return address is kept in
 * a register, as glibc's own vfork does, and the child marks itself in a
 * shared flag: every call it makes then goes straight to the kernel.  The
 * parent runs again only after that and clears the flag. */
	.text
	.globl	vfork
	.type	vfork, @function
vfork:
	.cfi_startproc
	popq	%rdi			/* the return address, out of the shared stack */
	.cfi_adjust_cfa_offset -8
	.cfi_register rip, rdi
	movl	$58, %eax		/* SYS_vfork */
	syscall
	pushq	%rdi
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rip, 0
	cmpq	$-4095, %rax
	jae	1f
	xorl	%edx, %edx
	testq	%rax, %rax
	sete	%dl			/* 1 in the child, 0 in the parent */
	movl	%edx, flexsc_preload_in_vfork_child(%rip)
	ret
1:	movq	%rax, %rdi		/* no child: errno, -1 */
	jmp	flexsc_preload_vfork_failed
	.cfi_endproc
	.size	vfork, .-vfork
	.section .note.GNU-stack,"",@progbits
