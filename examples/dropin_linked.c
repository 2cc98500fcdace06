/* The drop-in wrapper linked instead of preloaded: linked before libc,
 * libflexsc-preload.so's read, write, open, ... are the ones this program
 * calls.  Plain POSIX code, nothing flexsc-specific in it.
 *
 *   cc dropin_linked.c -lflexsc-preload -o dropin_linked
 *   FLEXSC_ROUTE=all FLEXSC_STATS=1 ./dropin_linked
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char path[] = "/tmp/flexsc-dropin-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	const char msg[] = "written and read back through the wrapper\n";
	if (pwrite(fd, msg, sizeof msg - 1, 0) != (ssize_t)(sizeof msg - 1))
		return 1;
	char buf[64] = {0};
	if (pread(fd, buf, sizeof msg - 1, 0) != (ssize_t)(sizeof msg - 1))
		return 1;
	close(fd);
	unlink(path);
	if (write(1, buf, strlen(buf)) < 0)
		return 1;
	return strcmp(buf, msg) == 0 ? 0 : 1;
}
