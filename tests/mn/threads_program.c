// Thread life under --threads mn, as a program sees it: the same results
// natively and as fibers.  C built without exceptions, so pthread_exit's
// cleanup handlers are glibc's registered kind.  No mutex here (the
// handshakes are atomics): each check holds on its own.
// Prints one line per check, then how many threads it made; exits 1 on
// the first failure, saying which.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "threads_program: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

static atomic_int created;
static __thread long tls_value;

static pthread_t start(void* (*fn)(void*), void* arg, size_t stack) {
  pthread_attr_t a;
  pthread_attr_init(&a);
  if (stack) pthread_attr_setstacksize(&a, stack);
  pthread_t t;
  CHECK(pthread_create(&t, &a, fn, arg) == 0);
  pthread_attr_destroy(&a);
  atomic_fetch_add(&created, 1);
  return t;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

// ---- results, TLS, errno, identity -------------------------------------------

static pthread_t ids[8];
static atomic_int ids_ready;
static pid_t tids[8];

static void* identity(void* arg) {
  const long i = (long)arg;
  tls_value = i;
  errno = (int)(100 + i);
  for (int round = 0; round < 20; ++round) {  // switches and sleeps keep them
    if (round % 2)
      sched_yield();
    else
      usleep(200);
    CHECK(tls_value == i);
    CHECK(errno == (int)(100 + i));
  }
  while (!atomic_load(&ids_ready)) sched_yield();
  CHECK(pthread_equal(pthread_self(), ids[i]));
  tids[i] = gettid();
  return (void*)(i * 2);
}

static void check_identity(void) {
  for (long i = 0; i < 8; ++i) ids[i] = start(identity, (void*)i, 0);
  atomic_store(&ids_ready, 1);
  for (long i = 0; i < 8; ++i) {
    void* r = NULL;
    CHECK(pthread_join(ids[i], &r) == 0);
    CHECK(r == (void*)(i * 2));
  }
  for (int i = 0; i < 8; ++i) {
    CHECK(tids[i] > 0 && tids[i] != getpid());
    for (int j = 0; j < i; ++j) CHECK(tids[i] != tids[j]);
  }
  puts("ok results, TLS, errno, pthread_self, gettid");
}

// ---- pthread_exit with cleanup handlers ---------------------------------------

static char trail[16];
static void note(void* c) {
  const size_t n = strlen(trail);
  trail[n] = *(const char*)c;
  trail[n + 1] = '\0';
}

static void exit_inner(void) {
  pthread_cleanup_push(note, "b");
  pthread_exit((void*)42);
  pthread_cleanup_pop(0);
}

static void exit_outer(void) {
  pthread_cleanup_push(note, "c");
  exit_inner();
  pthread_cleanup_pop(0);
}

static void* exits(void* arg) {
  (void)arg;
  pthread_cleanup_push(note, "a");
  pthread_cleanup_push(note, "x");
  pthread_cleanup_pop(0);  // popped without running
  exit_outer();
  pthread_cleanup_pop(0);
  return NULL;
}

static void check_exit(void) {
  void* r = NULL;
  CHECK(pthread_join(start(exits, NULL, 0), &r) == 0);
  CHECK(r == (void*)42);
  CHECK(strcmp(trail, "bca") == 0);  // innermost first
  puts("ok pthread_exit: result, cleanup handlers innermost first");
}

// ---- keys with destructors -----------------------------------------------------

static pthread_key_t key;
static atomic_int destroyed;
static void destroy(void* v) {
  CHECK(v == (void*)7);
  atomic_fetch_add(&destroyed, 1);
}
static void* keyed(void* arg) {
  (void)arg;
  CHECK(pthread_getspecific(key) == NULL);
  CHECK(pthread_setspecific(key, (void*)7) == 0);
  usleep(100);
  CHECK(pthread_getspecific(key) == (void*)7);
  return NULL;
}

static void check_keys(void) {
  CHECK(pthread_key_create(&key, destroy) == 0);
  pthread_t t[6];
  for (int i = 0; i < 6; ++i) t[i] = start(keyed, NULL, 0);
  for (int i = 0; i < 6; ++i) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(atomic_load(&destroyed) == 6);
  puts("ok keys: values per thread, destructors at exit");
}

// ---- detach, tryjoin, timedjoin ------------------------------------------------

static atomic_int detached_done;
static void* short_lived(void* arg) {
  (void)arg;
  usleep(1000);
  atomic_fetch_add(&detached_done, 1);
  return NULL;
}
static atomic_int release_sleeper;
static void* sleeper(void* arg) {
  (void)arg;
  while (!atomic_load(&release_sleeper)) usleep(500);
  return (void*)5;
}

static void check_detach_and_timed_joins(void) {
  for (int i = 0; i < 4; ++i) CHECK(pthread_detach(start(short_lived, NULL, 0)) == 0);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  CHECK(pthread_create(&t, &a, short_lived, NULL) == 0);
  atomic_fetch_add(&created, 1);
  pthread_attr_destroy(&a);
  const long deadline = now_ms() + 10000;
  while (atomic_load(&detached_done) < 5) {
    CHECK(now_ms() < deadline);
    usleep(500);
  }
  pthread_t s = start(sleeper, NULL, 0);
  CHECK(pthread_tryjoin_np(s, NULL) == EBUSY);
  struct timespec abs;
  clock_gettime(CLOCK_REALTIME, &abs);
  const long before = now_ms();
  abs.tv_nsec += 20 * 1000000L;
  if (abs.tv_nsec >= 1000000000L) abs.tv_sec += 1, abs.tv_nsec -= 1000000000L;
  CHECK(pthread_timedjoin_np(s, NULL, &abs) == ETIMEDOUT);
  CHECK(now_ms() - before >= 19);
  atomic_store(&release_sleeper, 1);
  void* r = NULL;
  CHECK(pthread_join(s, &r) == 0 && r == (void*)5);
  puts("ok detach, tryjoin (EBUSY), timedjoin (ETIMEDOUT), join");
}

// ---- stack attributes, names, sleeping -------------------------------------------

static void* attributes(void* arg) {
  (void)arg;
  pthread_attr_t a;
  CHECK(pthread_getattr_np(pthread_self(), &a) == 0);
  void* addr = NULL;
  size_t size = 0;
  CHECK(pthread_attr_getstack(&a, &addr, &size) == 0);
  pthread_attr_destroy(&a);
  char local;
  CHECK(size >= 256 * 1024 && size < 2 * 1024 * 1024);
  CHECK((char*)addr <= &local && &local < (char*)addr + size);
  CHECK(pthread_setname_np(pthread_self(), "worker-7") == 0);
  char name[16];
  CHECK(pthread_getname_np(pthread_self(), name, sizeof name) == 0);
  CHECK(strcmp(name, "worker-7") == 0);
  char path[64], comm[32] = {0};
  snprintf(path, sizeof path, "/proc/self/task/%d/comm", gettid());
  FILE* f = fopen(path, "r");
  CHECK(f != NULL);
  CHECK(fgets(comm, sizeof comm, f) != NULL);
  fclose(f);
  CHECK(strcmp(comm, "worker-7\n") == 0);
  // What acts on the calling kernel task acts on the thread's: its name
  // set with prctl, and its tid address, as stress-ng exercises it.
  CHECK(prctl(PR_SET_NAME, "prctl-7") == 0);
  CHECK(pthread_getname_np(pthread_self(), name, sizeof name) == 0);
  CHECK(strcmp(name, "prctl-7") == 0);
  unsigned long tid_address = 0;
  if (prctl(PR_GET_TID_ADDRESS, &tid_address) == 0) {  // CONFIG_CHECKPOINT_RESTORE
    CHECK(tid_address != 0);
    CHECK(syscall(SYS_set_tid_address, NULL) == gettid());
    CHECK(syscall(SYS_set_tid_address, tid_address) == gettid());  // joins still see the end
  }
  const long before = now_ms();
  const struct timespec twenty = {0, 20 * 1000000L};
  CHECK(nanosleep(&twenty, NULL) == 0);
  CHECK(now_ms() - before >= 19);
  return NULL;
}

static void check_attributes(void) {
  CHECK(pthread_join(start(attributes, NULL, 256 * 1024), NULL) == 0);
  puts("ok stack from the attributes, names (also by prctl), the tid address, nanosleep");
}

// ---- fork from a thread ------------------------------------------------------------

static pthread_mutex_t g_fork_mutex = PTHREAD_MUTEX_INITIALIZER;
static int g_fork_counter;
static void* fork_helper(void* arg) {
  (void)arg;
  CHECK(pthread_mutex_lock(&g_fork_mutex) == 0);
  ++g_fork_counter;
  CHECK(pthread_mutex_unlock(&g_fork_mutex) == 0);
  return (void*)3;
}

// The child's one thread (the forking one) makes a thread of its own,
// shares a mutex with it, and then returns from its start routine: the
// child ends with status 0, as glibc's last thread ends a process.
static void* forker(void* arg) {
  (void)arg;
  CHECK(pthread_mutex_lock(&g_fork_mutex) == 0);  // used before the fork
  CHECK(pthread_mutex_unlock(&g_fork_mutex) == 0);
  const pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fork_helper, NULL) == 0);
    void* r = NULL;
    CHECK(pthread_join(t, &r) == 0 && r == (void*)3);
    CHECK(g_fork_counter == 1);
    return NULL;
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return NULL;
}

static void check_fork(void) {
  CHECK(pthread_join(start(forker, NULL, 0), NULL) == 0);
  puts("ok fork from a thread: the child's threads and locks work, its last thread ends it");
}

// ---- many small threads ----------------------------------------------------------

static atomic_int ran;
static void* tiny(void* arg) {
  (void)arg;
  atomic_fetch_add(&ran, 1);
  sched_yield();
  return NULL;
}

static void check_many(int n) {
  pthread_t* t = calloc((size_t)n, sizeof *t);
  CHECK(t != NULL);
  for (int i = 0; i < n; ++i) t[i] = start(tiny, NULL, 64 * 1024);
  for (int i = 0; i < n; ++i) CHECK(pthread_join(t[i], NULL) == 0);
  free(t);
  CHECK(atomic_load(&ran) == n);
  printf("ok %d threads with 64 KiB stacks\n", n);
}

int main(int argc, char** argv) {
  const int many = argc > 1 ? atoi(argv[1]) : 1000;
  check_identity();
  check_exit();
  check_keys();
  check_detach_and_timed_joins();
  check_attributes();
  check_fork();
  check_many(many);
  printf("threads created: %d\n", atomic_load(&created));
  return 0;
}
