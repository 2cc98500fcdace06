/* A multithreaded program that knows nothing of flexsc: threads doing file
 * I/O, fork while other threads run, exec, and a daemon-style close of
 * every descriptor followed by more I/O.  It prints what it found; the
 * test compares that with and without the drop-in wrapper. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

/* Writes 200 blocks to its own file, reads them back, returns a checksum
 * (0 on any error). */
static void *file_worker(void *arg)
{
	const long id = (long)arg;
	char path[128], block[512], back[512];
	snprintf(path, sizeof path, "%s/worker-%ld", dir, id);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return (void *)0;
	unsigned long sum = 0;
	for (int i = 0; i < 200; i++) {
		memset(block, 'a' + (int)((id + i) % 26), sizeof block);
		if (pwrite(fd, block, sizeof block, (off_t)i * 512) != (ssize_t)sizeof block)
			sum = 0;
	}
	for (int i = 0; i < 200; i++) {
		if (pread(fd, back, sizeof back, (off_t)i * 512) != (ssize_t)sizeof back)
			return (void *)0;
		sum += (unsigned char)back[i % 512] * (unsigned long)(i + 1);
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size != 200 * 512)
		sum = 0;
	close(fd);
	unlink(path);
	return (void *)sum;
}

static unsigned long run_workers(int n)
{
	pthread_t t[16];
	unsigned long total = 0;
	for (long i = 0; i < n; i++)
		pthread_create(&t[i], NULL, file_worker, (void *)i);
	for (int i = 0; i < n; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (unsigned long)r;
	}
	return total;
}

/* A file written and read back: 1 if it all worked. */
static int small_io(const char *name)
{
	char path[128], buf[16] = {0};
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	int ok = write(fd, "payload", 7) == 7 && lseek(fd, 0, SEEK_SET) == 0 && read(fd, buf, sizeof buf) == 7 &&
		 strcmp(buf, "payload") == 0;
	close(fd);
	unlink(path);
	return ok;
}

/* What a child wrote into pipe p, once it has exited. */
static void collect(int p[2], pid_t child, char *out, size_t size)
{
	ssize_t n, got = 0;
	close(p[1]);
	memset(out, 0, size);
	while ((n = read(p[0], out + got, size - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	waitpid(child, NULL, 0);
}

/* The busy threads: each says when its I/O has begun, and goes on (300
 * rounds at least) until the main thread has forked. */
static atomic_int busy_started, forked;

static void *busy(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300 || !atomic_load(&forked); i++) {
		small_io("busy");
		if (i == 0)
			atomic_fetch_add(&busy_started, 1);
	}
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(dir, sizeof dir, "/tmp/flexsc-mt-XXXXXX");
	if (!mkdtemp(dir))
		return 1;

	printf("threads: checksum %lu\n", run_workers(8));

	/* fork from a parent whose other threads are busy with I/O: once they
	 * all are, and before any ends.  A thread starting or ending holds
	 * locks of GCC 12's ASan runtime, which takes none around fork: a
	 * child forked then would block on one for ever in its first
	 * allocation. */
	pthread_t b[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&b[i], NULL, busy, NULL);
	while (atomic_load(&busy_started) < 4)
		sched_yield();
	pid_t child = fork();
	if (child == 0)
		_exit(small_io("child") && run_workers(2) != 0 ? 42 : 1);
	atomic_store(&forked, 1);
	int status = 0;
	waitpid(child, &status, 0);
	for (int i = 0; i < 4; i++)
		pthread_join(b[i], NULL);
	printf("fork from a busy parent: child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	/* exec, its output through a pipe */
	int p[2];
	if (pipe(p) != 0)
		return 1;
	child = fork();
	if (child == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl("/bin/echo", "echo", "exec ok", (char *)NULL);
		_exit(127);
	}
	char out[64];
	collect(p, child, out, sizeof out);
	printf("exec: %s", out);

	/* vfork: the child's calls (dup2, close, execve) share the parent's
	 * memory until it executes */
	if (pipe(p) != 0)
		return 1;
	child = vfork();
	if (child == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl("/bin/echo", "echo", "vfork ok", (char *)NULL);
		_exit(127);
	}
	collect(p, child, out, sizeof out);
	printf("vfork: %s", out);

	/* a daemon closes every descriptor it did not open itself */
	struct rlimit lim;
	getrlimit(RLIMIT_NOFILE, &lim);
	for (int fd = 3; fd < (int)lim.rlim_cur; fd++)
		close(fd);
	printf("after closing every descriptor: I/O %s\n", small_io("after-close") ? "ok" : "FAILED");
	close_range(3, ~0u, 0);
	printf("after close_range: I/O %s, threads: checksum %lu\n", small_io("after-range") ? "ok" : "FAILED",
	       run_workers(4));
	rmdir(dir);
	return 0;
}
