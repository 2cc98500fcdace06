/* A batch in liburing's manner: prepare many entries, submit them at once,
 * harvest the results as they complete. */
#include <fcntl.h>
#include <flexsc/flexsc.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N 100 /* more than one page holds: the context gets two */

int main(void)
{
	struct flexsc_ctx *ctx;
	char bufs[N][8];
	int fd, rc, i;

	rc = flexsc_init(NULL);
	if (rc < 0) {
		fprintf(stderr, "flexsc_init: %s\n", strerror(-rc));
		return 1;
	}
	rc = flexsc_ctx_create(2, &ctx);
	if (rc < 0)
		return 1;
	fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	/* N reads of i+1 bytes each: every result tells which entry it was. */
	for (i = 0; i < N; i++) {
		struct flexsc_entry *e = flexsc_get_entry(ctx);
		flexsc_prep(e, SYS_read, fd, (long)bufs[i], i % 8 + 1, 0, 0, 0);
	}
	printf("submitted %d entries\n", flexsc_submit(ctx));

	long total = 0;
	for (i = 0; i < N; i++) {
		struct flexsc_entry *e;
		rc = flexsc_wait(ctx, &e);
		if (rc < 0 || e->ret != (long)(flexsc_entry_index(ctx, e) % 8 + 1)) {
			fprintf(stderr, "entry %u: %ld\n", flexsc_entry_index(ctx, e), (long)e->ret);
			return 1;
		}
		total += e->ret;
		flexsc_seen(ctx, e);
	}
	printf("harvested %d results, %ld bytes read\n", N, total);
	close(fd);
	flexsc_ctx_destroy(ctx);
	flexsc_shutdown();
	return 0;
}
