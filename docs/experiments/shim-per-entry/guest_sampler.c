// In-guest sampling profiler (no hardware counters under TCG): samples the
// software cpu-clock of CPUs 0 and 1 every 400 us while a child program
// runs, then prints, per CPU, the most frequent kernel symbols (flexsc_*
// with offsets, to read against objdump of the module) and user offsets
// (to read with addr2line).  Build: gcc -O2 -static -o sampler guest_sampler.c
//   sampler <seconds to wait before sampling> <program> [args...]
// Under TCG an interrupt lands at the start of a translation block, so a
// sample names the block after the one that took the time.
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>

#define NPAGES 1024
struct ksym { uint64_t a; char n[96]; };
static struct ksym* ks; static size_t nks;
static int cmpk(const void* x, const void* y) { uint64_t a = ((struct ksym*)x)->a, b = ((struct ksym*)y)->a; return a < b ? -1 : a > b; }
static char knbuf[160];
static const char* kname(uint64_t ip) {
  size_t lo = 0, hi = nks;
  if (!nks || ip < ks[0].a) return "?";
  while (hi - lo > 1) { size_t m = (lo + hi) / 2; if (ks[m].a <= ip) lo = m; else hi = m; }
  if (!strncmp(ks[lo].n, "flexsc_", 7)) { snprintf(knbuf, sizeof knbuf, "%s+0x%lx", ks[lo].n, (unsigned long)(ip - ks[lo].a)); return knbuf; }
  return ks[lo].n;
}
struct cnt { char n[128]; long c; };
static struct cnt tab[2][4096]; static int ntab[2]; static long tot[2];
static void add(int cpu, const char* n) {
  for (int i = 0; i < ntab[cpu]; i++) if (!strcmp(tab[cpu][i].n, n)) { tab[cpu][i].c++; return; }
  if (ntab[cpu] < 4096) { snprintf(tab[cpu][ntab[cpu]].n, 128, "%s", n); tab[cpu][ntab[cpu]++].c = 1; }
}
static int cmpc(const void* x, const void* y) { return ((struct cnt*)y)->c - ((struct cnt*)x)->c > 0 ? 1 : ((struct cnt*)y)->c == ((struct cnt*)x)->c ? 0 : -1; }
static pid_t child;
static char maps[1<<20];
static void user_name(uint64_t ip, char* out) {
  // maps of the child, read at the end: offset into the mapped file
  char* p = maps;
  while (p && *p) {
    unsigned long lo, hi, off; char perm[8], path[256] = "";
    if (sscanf(p, "%lx-%lx %7s %lx %*s %*s %255s", &lo, &hi, perm, &off, path) >= 4 && ip >= lo && ip < hi) {
      const char* b = strrchr(path, '/');
      snprintf(out, 128, "U %s+0x%lx", b ? b + 1 : path, ip - lo + off);
      return;
    }
    p = strchr(p, '\n'); if (p) p++;
  }
  snprintf(out, 128, "U ?");
}
struct rec { struct perf_event_header h; uint64_t ip; uint32_t pid, tid; };
static struct rec* recs[2]; static size_t nrec[2], caprec[2];
static void drain(int cpu, struct perf_event_mmap_page* m) {
  char* data = (char*)m + m->data_offset; uint64_t size = m->data_size;
  uint64_t head = __atomic_load_n(&m->data_head, __ATOMIC_ACQUIRE), tail = m->data_tail;
  while (tail < head) {
    struct perf_event_header h; char buf[256];
    for (size_t i = 0; i < sizeof h; i++) ((char*)&h)[i] = data[(tail + i) % size];
    for (size_t i = 0; i < h.size && i < sizeof buf; i++) buf[i] = data[(tail + i) % size];
    if (h.type == PERF_RECORD_SAMPLE) {
      if (nrec[cpu] == caprec[cpu]) { caprec[cpu] = caprec[cpu] ? caprec[cpu] * 2 : 65536; recs[cpu] = realloc(recs[cpu], caprec[cpu] * sizeof(struct rec)); }
      memcpy(&recs[cpu][nrec[cpu]++], buf, sizeof(struct rec));
    }
    tail += h.size;
  }
  __atomic_store_n(&m->data_tail, tail, __ATOMIC_RELEASE);
}
int main(int argc, char** argv) {
  if (argc < 3) { fprintf(stderr, "sampler delay_s prog args...\n"); return 2; }
  int delay = atoi(argv[1]);
  FILE* f = fopen("/proc/kallsyms", "r"); char line[512];
  size_t cap = 1 << 18; ks = malloc(cap * sizeof *ks);
  while (fgets(line, sizeof line, f)) {
    unsigned long a; char t; char n[96];
    if (sscanf(line, "%lx %c %95s", &a, &t, n) == 3 && (t == 't' || t == 'T')) {
      if (nks == cap) { cap *= 2; ks = realloc(ks, cap * sizeof *ks); }
      ks[nks].a = a; snprintf(ks[nks].n, 96, "%s", n); nks++;
    }
  }
  fclose(f); qsort(ks, nks, sizeof *ks, cmpk);
  child = fork();
  if (!child) { execv(argv[2], argv + 2); _exit(127); }
  sleep(delay);
  int fd[2]; struct perf_event_mmap_page* m[2];
  for (int c = 0; c < 2; c++) {
    struct perf_event_attr a; memset(&a, 0, sizeof a);
    a.size = sizeof a; a.type = PERF_TYPE_SOFTWARE; a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.sample_period = 400000; a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID;
    fd[c] = syscall(SYS_perf_event_open, &a, -1, c, -1, 0);
    if (fd[c] < 0) { perror("perf_event_open"); return 1; }
    m[c] = mmap(0, (NPAGES + 1) * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd[c], 0);
    if (m[c] == MAP_FAILED) { perror("mmap"); return 1; }
  }
  // copy maps now, while the child lives
  int st;
  char path[64]; snprintf(path, sizeof path, "/proc/%d/maps", child);
  for (;;) {
    static int reads; if (reads++ == 50) { FILE* mf = fopen(path, "r"); if (mf) { size_t n = 0, k; while ((k = fread(maps + n, 1, sizeof maps - 1 - n, mf)) > 0) n += k; maps[n] = 0; fclose(mf); } }
    for (int c = 0; c < 2; c++) drain(c, m[c]);
    if (waitpid(child, &st, WNOHANG) == child) break;
    usleep(50000);
  }
  for (int c = 0; c < 2; c++) { drain(c, m[c]); close(fd[c]); }
  for (int c = 0; c < 2; c++) {
    for (size_t i = 0; i < nrec[c]; i++) {
      char n[128]; uint64_t ip = recs[c][i].ip;
      if (ip >= 0xffff800000000000ull) snprintf(n, 128, "K %s", kname(ip)); else if (recs[c][i].pid == (uint32_t)child) user_name(ip, n); else snprintf(n, 128, "U pid%u", recs[c][i].pid);
      if (recs[c][i].pid == 0) snprintf(n, 128, "idle %s", kname(ip));
      add(c, n); tot[c]++;
    }
    qsort(tab[c], ntab[c], sizeof tab[c][0], cmpc);
    printf("PROF cpu%d: %ld samples\n", c, tot[c]);
    for (int i = 0; i < ntab[c] && i < 90; i++) printf("PROF cpu%d %6.2f%% %s\n", c, 100.0 * tab[c][i].c / tot[c], tab[c][i].n);
  }
  return WEXITSTATUS(st);
}
