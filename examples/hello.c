/* The lecture's "Hello, world!": one write(2), posted into a syscall page
 * and executed by a syscall thread on another core (by io_uring with the
 * uring backends). */
#include <flexsc/flexsc.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

int main(void)
{
	static const char msg[] = "Hello, world!\n";
	long ret = flexsc_syscall(SYS_write, 1, (long)msg, sizeof msg - 1, 0, 0, 0);

	if (ret != (long)(sizeof msg - 1)) {
		fprintf(stderr, "write through flexsc: %s\n", strerror((int)-ret));
		return 1;
	}
	fprintf(stderr, "(backend: %s)\n", flexsc_backend());
	flexsc_shutdown();
	return 0;
}
