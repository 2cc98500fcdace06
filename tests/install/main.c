/* An outside program built against an installed flexsc: one call through
 * the runtime, checked against the synchronous answer. */
#include <errno.h>
#include <flexsc/flexsc.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	long ret = flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);

	if (ret != (long)getppid()) {
		fprintf(stderr, "getppid through flexsc: %ld, expected %ld\n", ret,
			(long)getppid());
		return 1;
	}
	if (strcmp(flexsc_backend(), "none") == 0) {
		fprintf(stderr, "the runtime is not running after a call\n");
		return 1;
	}
	flexsc_shutdown();
	if (flexsc_syscall(SYS_getppid, 0, 0, 0, 0, 0, 0) != -ESHUTDOWN) {
		fprintf(stderr, "a call after shutdown did not give -ESHUTDOWN\n");
		return 1;
	}
	printf("flexsc consumer: getppid ok\n");
	return 0;
}
