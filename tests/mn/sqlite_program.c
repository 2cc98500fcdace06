// SQLite from several threads under --threads mn, as natively: each
// thread its own connection to one database file, writing in
// transactions that contend for the file's lock (busy waits sleep) and
// reading back; SQLite's own mutexes are pthread's.  Prints what it
// checked, then how many threads it made; exits 1 on the first failure.
#define _GNU_SOURCE
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "sqlite_program: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

enum { kThreads = 8, kTransactions = 25, kRowsEach = 20 };
static char g_path[256];

static void exec(sqlite3* db, const char* sql) {
  char* err = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite_program: %s: %s\n", sql, err ? err : "?");
    exit(1);
  }
}

static void* writer(void* arg) {
  const long id = (long)arg;
  sqlite3* db = NULL;
  CHECK(sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) == SQLITE_OK);
  sqlite3_busy_timeout(db, 60000);
  sqlite3_stmt* ins = NULL;
  CHECK(sqlite3_prepare_v2(db, "insert into t(writer, n, label) values (?, ?, ?)", -1, &ins, NULL) ==
        SQLITE_OK);
  for (int tx = 0; tx < kTransactions; ++tx) {
    exec(db, "begin immediate");
    for (int k = 0; k < kRowsEach; ++k) {
      char label[32];
      snprintf(label, sizeof label, "w%ld-%d-%d", id, tx, k);
      sqlite3_bind_int64(ins, 1, id);
      sqlite3_bind_int64(ins, 2, tx * kRowsEach + k);
      sqlite3_bind_text(ins, 3, label, -1, SQLITE_TRANSIENT);
      CHECK(sqlite3_step(ins) == SQLITE_DONE);
      sqlite3_reset(ins);
    }
    exec(db, "commit");
  }
  sqlite3_finalize(ins);
  // Reads its own rows back.
  sqlite3_stmt* q = NULL;
  CHECK(sqlite3_prepare_v2(db, "select count(*), sum(n) from t where writer = ?", -1, &q, NULL) == SQLITE_OK);
  sqlite3_bind_int64(q, 1, id);
  CHECK(sqlite3_step(q) == SQLITE_ROW);
  const long rows = kTransactions * kRowsEach;
  CHECK(sqlite3_column_int64(q, 0) == rows);
  CHECK(sqlite3_column_int64(q, 1) == rows * (rows - 1) / 2);
  sqlite3_finalize(q);
  CHECK(sqlite3_close(db) == SQLITE_OK);
  return NULL;
}

int main(void) {
  CHECK(sqlite3_threadsafe() != 0);
  snprintf(g_path, sizeof g_path, "%s/flexsc-mn-sqlite-%d.db", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           getpid());
  unlink(g_path);
  sqlite3* db = NULL;
  CHECK(sqlite3_open(g_path, &db) == SQLITE_OK);
  exec(db, "pragma journal_mode=wal");
  exec(db, "create table t(writer integer, n integer, label text)");
  pthread_t t[kThreads];
  for (long i = 0; i < kThreads; ++i) CHECK(pthread_create(&t[i], NULL, writer, (void*)i) == 0);
  for (int i = 0; i < kThreads; ++i) CHECK(pthread_join(t[i], NULL) == 0);
  sqlite3_stmt* q = NULL;
  CHECK(sqlite3_prepare_v2(db, "select count(*), count(distinct label) from t", -1, &q, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(q) == SQLITE_ROW);
  const long total = (long)kThreads * kTransactions * kRowsEach;
  CHECK(sqlite3_column_int64(q, 0) == total && sqlite3_column_int64(q, 1) == total);
  sqlite3_finalize(q);
  exec(db, "pragma integrity_check");
  CHECK(sqlite3_close(db) == SQLITE_OK);
  unlink(g_path);
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", g_path);
  unlink(wal);
  snprintf(wal, sizeof wal, "%s-shm", g_path);
  unlink(wal);
  printf("ok %d threads, %d transactions each on one database file: %ld rows, each read back\n", kThreads,
         kTransactions, total);
  printf("threads created: %d\n", kThreads);
  return 0;
}
