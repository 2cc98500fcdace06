#include "readiness.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "../raw_syscall.h"

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
  Readiness* owner = nullptr;  // the epoll fd is registered in
  bool edge[2] = {false, false};  // an edge came while nobody waited
  WaitQueue waiters[2];
  FdKind kind = FdKind::Unknown;
  int8_t nonblocking = -1;  // O_NONBLOCK, -1: not known
  bool drained = false;
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
    if (chunks_[chunk].compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) c = fresh;
    else delete[] fresh;  // another thread won; c is its chunk
  }
  return &c[static_cast<unsigned>(fd) & ((1u << kChunkBits) - 1)];
}

int FdTable::wait(int fd, Direction d, Readiness* mine) {
  Entry* e = entry(fd, true);
  if (!e) return -EBADF;
  const int dir = d == Direction::In ? 0 : 1;
  std::unique_lock lock(e->m);
  if (!e->owner) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    const long rc = raw_syscall6(SYS_epoll_ctl, mine->epfd, EPOLL_CTL_ADD, fd, reinterpret_cast<long>(&ev), 0, 0);
    if (rc < 0 && rc != -EEXIST) return static_cast<int>(rc);
    e->owner = mine;
    // Registering reports the current state as a first edge: the caller
    // tries again once it arrives (or at once, if it came already).
  }
  if (e->edge[dir]) {
    e->edge[dir] = false;
    return 0;
  }
  Readiness* owner = e->owner;
  if (owner->waiters.fetch_add(1, std::memory_order_acq_rel) == 0 && owner != mine) owner->notify(owner->notify_arg);
  e->waiters[dir].park(lock);
  owner->waiters.fetch_sub(1, std::memory_order_acq_rel);
  return 0;
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

bool FdTable::drained(int fd) {
  Entry* e = entry(fd, false);
  if (!e) return false;
  std::lock_guard lock(e->m);
  return e->drained;
}

void FdTable::set_drained(int fd, bool drained) {
  if (Entry* e = entry(fd, drained)) {
    std::lock_guard lock(e->m);
    e->drained = drained;
  }
}

void FdTable::on_event(int fd, uint32_t events) {
  Entry* e = entry(fd, false);
  if (!e) return;
  std::lock_guard lock(e->m);
  if (events & kInEvents) {
    if (e->waiters[0].empty()) e->edge[0] = true;
    else e->waiters[0].wake_all();
  }
  if (events & kOutEvents) {
    if (e->waiters[1].empty()) e->edge[1] = true;
    else e->waiters[1].wake_all();
  }
}

void FdTable::forget(int fd) {
  Entry* e = entry(fd, false);
  if (!e) return;
  std::lock_guard lock(e->m);
  if (e->owner) raw_syscall6(SYS_epoll_ctl, e->owner->epfd, EPOLL_CTL_DEL, fd, 0, 0, 0);
  e->owner = nullptr;
  e->edge[0] = e->edge[1] = false;
  e->kind = FdKind::Unknown;
  e->nonblocking = -1;
  e->drained = false;
  e->waiters[0].wake_all();
  e->waiters[1].wake_all();
}

void FdTable::forget_all_in(Readiness* r) {
  for (auto& chunk : chunks_) {
    Entry* c = chunk.load(std::memory_order_acquire);
    if (!c) continue;
    for (unsigned i = 0; i < (1u << kChunkBits); ++i) {
      std::lock_guard lock(c[i].m);
      if (c[i].owner != r) continue;
      c[i].owner = nullptr;
      c[i].edge[0] = c[i].edge[1] = false;
    }
  }
}

}  // namespace flexsc::fiber::detail
