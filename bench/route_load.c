// A plain program for the routing-policy benchmark (route-bench.sh): it
// knows nothing of flexsc and is run natively and under flexsc-run.
// Threads make one kind of call in a loop for a while; every result is
// checked; the total rate is printed.
//
//   route_load <fstat|stat|open|pread> <threads> <seconds> <directory>
//     fstat   fstat() of an open file: cheaper than any handoff
//     stat    stat() of a file 16 directories deep: path walks cost more
//     open    open() and close() of that file
//     pread   pread() of 128 KiB of a cached file: a copy, no waiting
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char* g_kind;
static char g_deep[4096];
static int g_fd, g_big;
static off_t g_size;
static atomic_int g_stop;
static atomic_long g_ops;
static atomic_int g_failed;

static void* worker(void* arg) {
  (void)arg;
  long ops = 0;
  struct stat st;
  static __thread char buf[128 << 10];
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    for (int i = 0; i < 64; ++i) {
      if (!strcmp(g_kind, "fstat")) {
        if (fstat(g_fd, &st) != 0 || st.st_size != g_size) atomic_store(&g_failed, 1);
      } else if (!strcmp(g_kind, "stat")) {
        if (stat(g_deep, &st) != 0 || st.st_size != g_size) atomic_store(&g_failed, 1);
      } else if (!strcmp(g_kind, "pread")) {
        if (pread(g_big, buf, sizeof buf, 0) != (ssize_t)sizeof buf || buf[4096] != 'x') atomic_store(&g_failed, 1);
      } else {
        const int fd = open(g_deep, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || close(fd) != 0) atomic_store(&g_failed, 1);
      }
    }
    ops += 64;
  }
  atomic_fetch_add(&g_ops, ops);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 5 || (strcmp(argv[1], "fstat") && strcmp(argv[1], "stat") && strcmp(argv[1], "open") &&
                    strcmp(argv[1], "pread"))) {
    fprintf(stderr, "usage: route_load <fstat|stat|open|pread> <threads> <seconds> <directory>\n");
    return 2;
  }
  g_kind = argv[1];
  const int threads = atoi(argv[2]);
  const double seconds = atof(argv[3]);
  if (threads < 1 || threads > 256 || seconds <= 0) {
    fprintf(stderr, "route_load: 1 to 256 threads, a positive number of seconds\n");
    return 2;
  }
  // The file, 16 directories down.
  int n = snprintf(g_deep, sizeof g_deep, "%s", argv[4]);
  for (int i = 0; i < 16; ++i) {
    n += snprintf(g_deep + n, sizeof g_deep - (size_t)n, "/d%d", i);
    if (mkdir(g_deep, 0755) != 0 && access(g_deep, F_OK) != 0) {
      perror(g_deep);
      return 1;
    }
  }
  snprintf(g_deep + n, sizeof g_deep - (size_t)n, "/file");
  g_fd = open(g_deep, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (g_fd < 0 || write(g_fd, "0123456789", 10) != 10) {
    perror(g_deep);
    return 1;
  }
  g_size = 10;
  // The big file beside it, in the page cache once written.
  char big[4200];
  snprintf(big, sizeof big, "%s/big", argv[4]);
  static char block[128 << 10];
  memset(block, 'x', sizeof block);
  g_big = open(big, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (g_big < 0 || write(g_big, block, sizeof block) != (ssize_t)sizeof block) {
    perror(big);
    return 1;
  }
  pthread_t tids[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; ++i) pthread_create(&tids[i], NULL, worker, NULL);
  const struct timespec pause = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&pause, NULL);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < threads; ++i) pthread_join(tids[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (atomic_load(&g_failed)) {
    fprintf(stderr, "route_load: a call failed or returned a wrong result\n");
    return 1;
  }
  const double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("%.0f calls/s\n", (double)atomic_load(&g_ops) / elapsed);
  return 0;
}
