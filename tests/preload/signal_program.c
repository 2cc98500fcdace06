/* Signals against blocking calls, in a program that knows nothing of
 * flexsc: a read on an empty pipe interrupted by a handler without
 * SA_RESTART (EINTR), and with SA_RESTART (the read goes on and gets the
 * data), a poll (EINTR whatever SA_RESTART says), and a handler set with
 * signal() (BSD semantics: restarts).  Each time it also says whether the
 * handler ran on the thread the signal was sent to. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int pipe_fds[2];
static _Atomic pid_t target_tid; /* main waits for the thread to set it */
static volatile sig_atomic_t on_target, handled;
static long result;
static int result_errno;

static void on_signal(int sig)
{
	(void)sig;
	handled++;
	if ((pid_t)syscall(SYS_gettid) == target_tid)
		on_target = 1;
}

static void *reader(void *arg)
{
	(void)arg;
	target_tid = (pid_t)syscall(SYS_gettid);
	char buf[16];
	errno = 0;
	result = read(pipe_fds[0], buf, sizeof buf);
	result_errno = errno;
	return NULL;
}

static void *poller(void *arg)
{
	(void)arg;
	target_tid = (pid_t)syscall(SYS_gettid);
	struct pollfd p = {pipe_fds[0], POLLIN, 0};
	errno = 0;
	result = poll(&p, 1, -1);
	result_errno = errno;
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {0, ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* Starts fn in a thread, signals it once it blocks, writes "hello" to the
 * pipe if asked, and reports what the call returned. */
static void scenario(const char *what, void *(*fn)(void *), int write_after)
{
	pthread_t t;
	on_target = handled = 0;
	target_tid = 0;
	pthread_create(&t, NULL, fn, NULL);
	while (!target_tid)
		sleep_ms(1);
	sleep_ms(100); /* blocked in its call by now */
	pthread_kill(t, SIGUSR1);
	if (write_after) {
		sleep_ms(50);
		if (write(pipe_fds[1], "hello", 5) != 5)
			return;
	}
	pthread_join(t, NULL);
	printf("%s: returned %ld (%s), handler ran %d time(s), on the signalled thread: %s\n", what, result,
	       result < 0 ? strerror(result_errno) : "no error", (int)handled, on_target ? "yes" : "no");
}

static void set_handler(int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (pipe(pipe_fds) != 0)
		return 1;
	set_handler(0);
	scenario("read, handler without SA_RESTART", reader, 0);
	set_handler(SA_RESTART);
	scenario("read, handler with SA_RESTART", reader, 1);
	scenario("poll, handler with SA_RESTART", poller, 0);
	signal(SIGUSR1, on_signal);
	scenario("read, handler set with signal()", reader, 1);
	struct sigaction back;
	sigaction(SIGUSR1, NULL, &back);
	printf("sigaction gives back the program's handler: %s\n", back.sa_handler == on_signal ? "yes" : "no");
	return 0;
}
