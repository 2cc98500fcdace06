#include "readiness.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "base/raw_syscall.h"

namespace flexsc::fiber::detail {

using flexsc::detail::raw_syscall6;

namespace {
constexpr uint32_t kInEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr uint32_t kOutEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;
}  // namespace

int Readiness::open() {
  epfd = static_cast<int>(raw_syscall6(SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0, 0, 0, 0));
  return epfd < 0 ? epfd : 0;
}

void Readiness::close() {
  if (epfd >= 0) raw_syscall6(SYS_close, epfd, 0, 0, 0, 0, 0);
  epfd = -1;
}

struct FdTable::Entry {
  std::mutex m;
  Readiness* owner = nullptr;                // the epoll fd is registered in
  std::atomic<uint32_t> events[2] = {0, 0};  // by direction, bumped under m
  WaitQueue waiters[2];
  FdKind kind = FdKind::Unknown;
  int8_t nonblocking = -1;  // O_NONBLOCK, -1: not known
  int64_t drained = -1;
  bool hung_up = false;  // hangup or error seen: no event will follow the last one
};

FdTable::FdTable() {
  for (auto& c : chunks_) c.store(nullptr, std::memory_order_relaxed);
}

FdTable::~FdTable() {
  for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
}

FdTable& fd_table() {
  static FdTable* table = new FdTable();  // never destroyed: fibers may outlive static destructors
  return *table;
}

FdTable::Entry* FdTable::entry(int fd, bool create) {
  if (fd < 0) return nullptr;
  const unsigned chunk = static_cast<unsigned>(fd) >> kChunkBits;
  if (chunk >= kChunks) return nullptr;
  Entry* c = chunks_[chunk].load(std::memory_order_acquire);
  if (!c) {
    if (!create) return nullptr;
    Entry* fresh = new Entry[1u << kChunkBits];
    if (chunks_[chunk].compare_exchange_strong(c, fresh, std::memory_order_acq_rel))
      c = fresh;
    else
      delete[] fresh;  // another thread won; c is its chunk
  }
  return &c[static_cast<unsigned>(fd) & ((1u << kChunkBits) - 1)];
}

uint32_t FdTable::events(int fd, Direction d) {
  Entry* e = entry(fd, true);
  return e ? e->events[d == Direction::In ? 0 : 1].load(std::memory_order_acquire) : 0;
}

int FdTable::wait(int fd, Direction d, Readiness* mine, uint32_t seen) {
  Entry* e = entry(fd, true);
  if (!e) return -EBADF;
  const int dir = d == Direction::In ? 0 : 1;
  std::unique_lock lock(e->m);
  if (!e->owner) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    const long rc =
        raw_syscall6(SYS_epoll_ctl, mine->epfd, EPOLL_CTL_ADD, fd, reinterpret_cast<long>(&ev), 0, 0);
    if (rc < 0 && rc != -EEXIST) return static_cast<int>(rc);
    e->owner = mine;
    // Registering reports the current state as a first event.
  }
  if (e->events[dir].load(std::memory_order_relaxed) != seen) return 0;
  // The owner keeps an epoll_wait going while anyone waits on it; whoever
  // wakes a waiter takes its count back (the owner may be gone by the time
  // the waiter runs again).
  Readiness* owner = e->owner;
  if (owner->waiters.fetch_add(1, std::memory_order_acq_rel) == 0 && owner != mine)
    owner->notify(owner->notify_arg);
  e->waiters[dir].park(lock);
  return 0;
}

// Counts an event in direction dir and wakes its waiters (e->m held).
void FdTable::signal(Entry* e, int dir) {
  e->events[dir].fetch_add(1, std::memory_order_release);
  int woken = 0;
  while (e->waiters[dir].wake_one()) ++woken;
  if (woken && e->owner) e->owner->waiters.fetch_sub(woken, std::memory_order_acq_rel);
}

// No longer registered anywhere: waiters retry (and register afresh).
void FdTable::unregister(Entry* e) {
  signal(e, 0);
  signal(e, 1);
  e->owner = nullptr;
}

FdKind FdTable::kind(int fd) {
  Entry* e = entry(fd, false);
  if (!e) return FdKind::Unknown;
  std::lock_guard lock(e->m);
  return e->kind;
}

void FdTable::set_kind(int fd, FdKind kind) {
  if (Entry* e = entry(fd, true)) {
    std::lock_guard lock(e->m);
    e->kind = kind;
  }
}

int FdTable::nonblocking(int fd) {
  Entry* e = entry(fd, false);
  if (!e) return -1;
  std::lock_guard lock(e->m);
  return e->nonblocking;
}

void FdTable::set_nonblocking(int fd, bool nonblocking) {
  if (Entry* e = entry(fd, true)) {
    std::lock_guard lock(e->m);
    e->nonblocking = nonblocking ? 1 : 0;
  }
}

int64_t FdTable::drained(int fd) {
  Entry* e = entry(fd, false);
  if (!e) return -1;
  std::lock_guard lock(e->m);
  return e->hung_up ? -1 : e->drained;
}

void FdTable::set_drained(int fd, int64_t seen) {
  if (Entry* e = entry(fd, seen >= 0)) {
    std::lock_guard lock(e->m);
    e->drained = seen;
  }
}

void FdTable::on_event(int fd, uint32_t events) {
  Entry* e = entry(fd, false);
  if (!e) return;
  std::lock_guard lock(e->m);
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->hung_up = true;
  if (events & kInEvents) signal(e, 0);
  if (events & kOutEvents) signal(e, 1);
}

void FdTable::forget(int fd) {
  Entry* e = entry(fd, false);
  if (!e) return;
  std::lock_guard lock(e->m);
  if (e->owner) raw_syscall6(SYS_epoll_ctl, e->owner->epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
  unregister(e);
  e->kind = FdKind::Unknown;
  e->nonblocking = -1;
  e->drained = -1;
  e->hung_up = false;
}

void FdTable::forget_all_in(Readiness* r) {
  for (auto& chunk : chunks_) {
    Entry* c = chunk.load(std::memory_order_acquire);
    if (!c) continue;
    for (unsigned i = 0; i < (1u << kChunkBits); ++i) {
      std::lock_guard lock(c[i].m);
      if (c[i].owner == r) unregister(&c[i]);
    }
  }
}

}  // namespace flexsc::fiber::detail
