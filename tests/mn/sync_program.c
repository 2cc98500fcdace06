// pthread's blocking objects under --threads mn, as natively: each mutex
// kind and its errors, condition variables with timeouts on both clocks,
// rwlocks, barriers, semaphores, once, and the futex through syscall(),
// contended by threads that sleep while they hold them (one carrier
// blocked by a waiter would deadlock), with the main thread (a kernel
// thread) taking part.  Prints one line per check, then how many threads
// it made; exits 1 on the first failure, saying which.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "sync_program: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

enum { kThreads = 6, kRounds = 300 };
static int created;

static void run_threads(int n, void* (*fn)(void*)) {
  pthread_t t[16];
  for (long i = 0; i < n; ++i) CHECK(pthread_create(&t[i], NULL, fn, (void*)i) == 0);
  created += n;
  for (int i = 0; i < n; ++i) CHECK(pthread_join(t[i], NULL) == 0);
}

static struct timespec in_ms(clockid_t clock, long ms) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  ts.tv_nsec += (ms % 1000) * 1000000L;
  ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  return ts;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

// ---- mutexes: exclusion under contention, with sleeps while held ----------------

static pthread_mutex_t g_mutex;
static long g_counter;
static atomic_int g_inside;

static void* contend(void* arg) {
  (void)arg;
  for (int k = 0; k < kRounds; ++k) {
    CHECK(pthread_mutex_lock(&g_mutex) == 0);
    CHECK(atomic_fetch_add(&g_inside, 1) == 0);
    ++g_counter;
    if (k % 64 == 0) usleep(300);  // the others must park, not block the carrier
    atomic_fetch_sub(&g_inside, 1);
    CHECK(pthread_mutex_unlock(&g_mutex) == 0);
  }
  return NULL;
}

static void check_mutex_kind(int kind, const char* name) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, kind);
  CHECK(pthread_mutex_init(&g_mutex, &a) == 0);
  pthread_mutexattr_destroy(&a);
  g_counter = 0;
  run_threads(kThreads, contend);
  CHECK(g_counter == (long)kThreads * kRounds);
  CHECK(pthread_mutex_destroy(&g_mutex) == 0);
  printf("ok mutex %s: %d locked updates\n", name, kThreads * kRounds);
}

static pthread_mutex_t g_static = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_static_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static atomic_int g_hold, g_held;

static void* hold_static(void* arg) {
  (void)arg;
  CHECK(pthread_mutex_lock(&g_static) == 0);
  atomic_store(&g_held, 1);
  while (!atomic_load(&g_hold)) usleep(200);
  CHECK(pthread_mutex_unlock(&g_static) == 0);
  return NULL;
}

static void check_mutex_errors(void) {
  // errorcheck: relock and foreign unlock
  pthread_mutexattr_t a;
  pthread_mutex_t m;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  CHECK(pthread_mutex_init(&m, &a) == 0);
  CHECK(pthread_mutex_unlock(&m) == EPERM);
  CHECK(pthread_mutex_lock(&m) == 0);
  CHECK(pthread_mutex_lock(&m) == EDEADLK);
  CHECK(pthread_mutex_unlock(&m) == 0);
  pthread_mutex_destroy(&m);
  pthread_mutexattr_destroy(&a);
  // recursive (static initializer)
  for (int i = 0; i < 3; ++i) CHECK(pthread_mutex_lock(&g_static_recursive) == 0);
  for (int i = 0; i < 3; ++i) CHECK(pthread_mutex_unlock(&g_static_recursive) == 0);
  CHECK(pthread_mutex_unlock(&g_static_recursive) == EPERM);
  // held by a thread that sleeps: trylock EBUSY, timedlock ETIMEDOUT
  pthread_t t;
  CHECK(pthread_create(&t, NULL, hold_static, NULL) == 0);
  ++created;
  while (!atomic_load(&g_held)) usleep(200);
  CHECK(pthread_mutex_trylock(&g_static) == EBUSY);
  const long before = now_ms();
  struct timespec abs = in_ms(CLOCK_REALTIME, 20);
  CHECK(pthread_mutex_timedlock(&g_static, &abs) == ETIMEDOUT);
  abs = in_ms(CLOCK_MONOTONIC, 20);
  CHECK(pthread_mutex_clocklock(&g_static, CLOCK_MONOTONIC, &abs) == ETIMEDOUT);
  CHECK(now_ms() - before >= 39);
  atomic_store(&g_hold, 1);
  CHECK(pthread_mutex_lock(&g_static) == 0);  // the main thread waits for a fiber
  CHECK(pthread_mutex_unlock(&g_static) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  puts("ok mutex errors: EPERM, EDEADLK, EBUSY, ETIMEDOUT on both clocks; recursion");
}

// ---- condition variables ----------------------------------------------------------

static pthread_mutex_t g_qm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_qc = PTHREAD_COND_INITIALIZER;
static int g_queue[4], g_qn;
static long g_sum;
static int g_taken;

static void* producer(void* arg) {
  const long base = (long)arg * 1000;
  for (long i = 0; i < 200; ++i) {
    pthread_mutex_lock(&g_qm);
    while (g_qn == 4) pthread_cond_wait(&g_qc, &g_qm);
    g_queue[g_qn++] = (int)(base + i);
    pthread_cond_broadcast(&g_qc);
    pthread_mutex_unlock(&g_qm);
  }
  return NULL;
}

static void* consumer(void* arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&g_qm);
    while (g_qn == 0 && g_taken < 600) pthread_cond_wait(&g_qc, &g_qm);
    if (g_taken == 600) {
      pthread_mutex_unlock(&g_qm);
      return NULL;
    }
    g_sum += g_queue[--g_qn];
    if (++g_taken == 600) pthread_cond_broadcast(&g_qc);
    pthread_cond_broadcast(&g_qc);
    pthread_mutex_unlock(&g_qm);
  }
}

static void* cond_role(void* arg) {
  return (long)arg < 3 ? producer(arg) : consumer(arg);
}

static void check_cond(void) {
  run_threads(6, cond_role);
  CHECK(g_taken == 600);
  CHECK(g_sum == 3 * 199 * 100 + 200 * (0 + 1000 + 2000));
  // timeouts on both clocks
  pthread_condattr_t a;
  pthread_cond_t c;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  CHECK(pthread_cond_init(&c, &a) == 0);
  pthread_mutex_lock(&g_qm);
  const long before = now_ms();
  struct timespec abs = in_ms(CLOCK_MONOTONIC, 20);
  CHECK(pthread_cond_timedwait(&c, &g_qm, &abs) == ETIMEDOUT);
  abs = in_ms(CLOCK_REALTIME, 20);
  CHECK(pthread_cond_clockwait(&c, &g_qm, CLOCK_REALTIME, &abs) == ETIMEDOUT);
  abs = in_ms(CLOCK_REALTIME, 20);
  CHECK(pthread_cond_timedwait(&g_qc, &g_qm, &abs) == ETIMEDOUT);  // a realtime cond
  CHECK(now_ms() - before >= 59);
  pthread_mutex_unlock(&g_qm);
  CHECK(pthread_cond_destroy(&c) == 0);
  pthread_condattr_destroy(&a);
  puts("ok condition variables: 600 items through a queue of 4, timeouts on both clocks");
}

// ---- rwlocks -----------------------------------------------------------------------

static pthread_rwlock_t g_rw = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int g_readers, g_writers, g_max_readers;
static long g_written;

static void* rw_role(void* arg) {
  const long i = (long)arg;
  for (int k = 0; k < 100; ++k) {
    if (i < 2) {
      CHECK(pthread_rwlock_wrlock(&g_rw) == 0);
      CHECK(atomic_fetch_add(&g_writers, 1) == 0 && atomic_load(&g_readers) == 0);
      ++g_written;
      if (k % 25 == 0) usleep(200);
      atomic_fetch_sub(&g_writers, 1);
    } else {
      CHECK(pthread_rwlock_rdlock(&g_rw) == 0);
      const int r = atomic_fetch_add(&g_readers, 1) + 1;
      CHECK(atomic_load(&g_writers) == 0);
      if (r > atomic_load(&g_max_readers)) atomic_store(&g_max_readers, r);
      usleep(50);
      atomic_fetch_sub(&g_readers, 1);
    }
    CHECK(pthread_rwlock_unlock(&g_rw) == 0);
  }
  return NULL;
}

static void check_rwlock(void) {
  run_threads(6, rw_role);
  CHECK(g_written == 200);
  CHECK(pthread_rwlock_wrlock(&g_rw) == 0);
  CHECK(pthread_rwlock_wrlock(&g_rw) == EDEADLK);
  CHECK(pthread_rwlock_tryrdlock(&g_rw) == EBUSY);
  struct timespec abs = in_ms(CLOCK_REALTIME, 10);
  const int rc = pthread_rwlock_timedrdlock(&g_rw, &abs);  // glibc: EDEADLK
  CHECK(rc == EDEADLK || rc == ETIMEDOUT);
  CHECK(pthread_rwlock_unlock(&g_rw) == 0);
  CHECK(pthread_rwlock_rdlock(&g_rw) == 0);
  CHECK(pthread_rwlock_rdlock(&g_rw) == 0);  // recursive read lock
  CHECK(pthread_rwlock_trywrlock(&g_rw) == EBUSY);
  CHECK(pthread_rwlock_unlock(&g_rw) == 0);
  CHECK(pthread_rwlock_unlock(&g_rw) == 0);
  puts("ok rwlocks: writers alone, readers together, EDEADLK and EBUSY");
}

// ---- barriers, semaphores, once ------------------------------------------------------

static pthread_barrier_t g_barrier;
static atomic_int g_serial, g_phase_count[5];

static void* barrier_role(void* arg) {
  (void)arg;
  for (int round = 0; round < 5; ++round) {
    atomic_fetch_add(&g_phase_count[round], 1);
    if (round % 2) usleep(100);
    const int rc = pthread_barrier_wait(&g_barrier);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    if (rc == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&g_serial, 1);
    CHECK(atomic_load(&g_phase_count[round]) == 6);  // everyone arrived first
  }
  return NULL;
}

static sem_t g_sem;
static atomic_int g_in_sem, g_max_in_sem;
static void* sem_role(void* arg) {
  (void)arg;
  for (int k = 0; k < 50; ++k) {
    CHECK(sem_wait(&g_sem) == 0);
    const int n = atomic_fetch_add(&g_in_sem, 1) + 1;
    CHECK(n <= 2);
    if (n > atomic_load(&g_max_in_sem)) atomic_store(&g_max_in_sem, n);
    usleep(100);
    atomic_fetch_sub(&g_in_sem, 1);
    CHECK(sem_post(&g_sem) == 0);
  }
  return NULL;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_int g_once_runs, g_once_done;
static void once_init(void) {
  usleep(5000);  // the others wait meanwhile
  atomic_fetch_add(&g_once_runs, 1);
  atomic_store(&g_once_done, 1);
}
static void* once_role(void* arg) {
  (void)arg;
  CHECK(pthread_once(&g_once, once_init) == 0);
  CHECK(atomic_load(&g_once_done) == 1);
  return NULL;
}

static void check_barrier_sem_once(void) {
  CHECK(pthread_barrier_init(&g_barrier, NULL, 6) == 0);
  run_threads(6, barrier_role);
  CHECK(atomic_load(&g_serial) == 5);
  CHECK(pthread_barrier_destroy(&g_barrier) == 0);
  CHECK(sem_init(&g_sem, 0, 2) == 0);
  run_threads(6, sem_role);
  int v = -1;
  CHECK(sem_getvalue(&g_sem, &v) == 0 && v == 2);
  CHECK(sem_trywait(&g_sem) == 0 && sem_trywait(&g_sem) == 0);
  CHECK(sem_trywait(&g_sem) == -1 && errno == EAGAIN);
  struct timespec abs = in_ms(CLOCK_REALTIME, 10);
  CHECK(sem_timedwait(&g_sem, &abs) == -1 && errno == ETIMEDOUT);
  sem_destroy(&g_sem);
  run_threads(6, once_role);
  CHECK(atomic_load(&g_once_runs) == 1);
  puts("ok barriers (one serial thread a round), semaphores (at most 2 inside), once (run once)");
}

// ---- the futex through syscall() ---------------------------------------------------------

static uint32_t g_word;
static atomic_int g_woken;
static void* futex_waiter(void* arg) {
  (void)arg;
  while (__atomic_load_n(&g_word, __ATOMIC_ACQUIRE) == 0) {
    const long r = syscall(SYS_futex, &g_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    CHECK(r == 0 || (r == -1 && (errno == EAGAIN || errno == EINTR)));
  }
  atomic_fetch_add(&g_woken, 1);
  return NULL;
}

static void check_futex(void) {
  pthread_t t[4];
  for (long i = 0; i < 4; ++i) CHECK(pthread_create(&t[i], NULL, futex_waiter, NULL) == 0);
  created += 4;
  usleep(20000);
  CHECK(atomic_load(&g_woken) == 0);
  __atomic_store_n(&g_word, 1, __ATOMIC_RELEASE);
  CHECK(syscall(SYS_futex, &g_word, FUTEX_WAKE_PRIVATE, 4, NULL, NULL, 0) >= 0);
  for (int i = 0; i < 4; ++i) CHECK(pthread_join(t[i], NULL) == 0);
  CHECK(atomic_load(&g_woken) == 4);
  uint32_t other = 5;
  CHECK(syscall(SYS_futex, &other, FUTEX_WAIT_PRIVATE, 4, NULL, NULL, 0) == -1 && errno == EAGAIN);
  const struct timespec ten_ms = {0, 10 * 1000000L};
  const long before = now_ms();
  CHECK(syscall(SYS_futex, &other, FUTEX_WAIT_PRIVATE, 5, &ten_ms, NULL, 0) == -1 && errno == ETIMEDOUT);
  CHECK(now_ms() - before >= 9);
  CHECK(syscall(SYS_gettid) == gettid());
  puts("ok futex through syscall(): wait, wake, EAGAIN, ETIMEDOUT; gettid");
}

int main(void) {
  check_mutex_kind(PTHREAD_MUTEX_NORMAL, "normal");
  check_mutex_kind(PTHREAD_MUTEX_RECURSIVE, "recursive");
  check_mutex_kind(PTHREAD_MUTEX_ERRORCHECK, "errorcheck");
  check_mutex_kind(PTHREAD_MUTEX_ADAPTIVE_NP, "adaptive");
  check_mutex_errors();
  check_cond();
  check_rwlock();
  check_barrier_sem_once();
  check_futex();
  printf("threads created: %d\n", created);
  return 0;
}
