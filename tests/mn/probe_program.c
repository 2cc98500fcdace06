// 200 live threads ask the kernel which task runs them, with the raw
// syscall instruction (no libc, no wrapper): natively 200 tasks, under
// --threads mn at most one per carrier.  Prints "kernel tasks: K".
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { kThreads = 200 };
static atomic_int arrived, go;
static long task_of[kThreads];

static long raw_gettid(void) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_gettid) : "rcx", "r11", "memory");
  return r;
}

static void* body(void* arg) {
  task_of[(long)arg] = raw_gettid();
  atomic_fetch_add(&arrived, 1);
  while (!atomic_load(&go)) sched_yield();  // all alive at once
  return NULL;
}

int main(void) {
  pthread_t t[kThreads];
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 64 * 1024);
  for (long i = 0; i < kThreads; ++i)
    if (pthread_create(&t[i], &a, body, (void*)i) != 0) return 1;
  while (atomic_load(&arrived) < kThreads) usleep(1000);
  int tasks = 0;
  for (int i = 0; i < kThreads; ++i) {
    int seen = 0;
    for (int j = 0; j < i && !seen; ++j) seen = task_of[j] == task_of[i];
    tasks += !seen;
  }
  atomic_store(&go, 1);
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  printf("kernel tasks: %d\n", tasks);
  return 0;
}
