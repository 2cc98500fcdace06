#include "base/context.h"

#include <sys/mman.h>

#include <new>

#include "base/mapping.h"

namespace flexsc::detail {

namespace {
// Plain globals, constant-initialized: usable from atexit and fork handlers.
std::mutex g_registry_mutex;
Context* g_registry_head = nullptr;

// The backends' ways to wake a parked owner, by kind - kFirstBackendKind.
constexpr uint32_t kFirstBackendKind = kParkedFutex + 1;
constexpr uint32_t kMaxParkKinds = 8;
std::atomic<OwnerWake> g_park_kinds[kMaxParkKinds];
constexpr uint64_t kPayloadMask = (uint64_t{1} << 56) - 1;
}  // namespace

uint32_t park_kind(OwnerWake wake) {
  for (uint32_t i = 0; i < kMaxParkKinds; ++i) {
    OwnerWake seen = nullptr;
    if (g_park_kinds[i].compare_exchange_strong(seen, wake) || seen == wake) return kFirstBackendKind + i;
  }
  return kParkedFutex;  // no room (more kinds than backends exist): park on the word
}

void wake_parked_owner(Context* ctx, uint32_t how) {
  if (how == kParkedFutex) {
    futex_wake(&ctx->waiting);
    return;
  }
  const uint64_t target = ctx->wake_target.load(std::memory_order_acquire);
  const uint32_t i = how - kFirstBackendKind;
  if (target >> 56 != how || i >= kMaxParkKinds) return;
  if (OwnerWake wake = g_park_kinds[i].load(std::memory_order_acquire)) wake(target & kPayloadMask);
}

std::mutex& registry_mutex() {
  return g_registry_mutex;
}

Context* registry_head() {
  return g_registry_head;
}

void registry_add(Context* ctx) {
  std::lock_guard lock(registry_mutex());
  ctx->next = g_registry_head;
  if (g_registry_head) g_registry_head->prev = ctx;
  g_registry_head = ctx;
}

void registry_unlink_locked(Context* ctx) {
  if (ctx->prev)
    ctx->prev->next = ctx->next;
  else
    g_registry_head = ctx->next;
  if (ctx->next) ctx->next->prev = ctx->prev;
  ctx->prev = ctx->next = nullptr;
}

Context* Context::create(unsigned pages, bool thread_owned) {
  auto* ctx = new (std::nothrow) Context();
  if (!ctx) return nullptr;
  const size_t bytes = size_t{pages} * FLEXSC_PAGE_SIZE;
  void* mem = map_anonymous(bytes);
  if (!mem) {
    delete ctx;
    return nullptr;
  }
  ctx->entries = static_cast<flexsc_entry*>(mem);
  ctx->capacity = pages * FLEXSC_ENTRIES_PER_PAGE;
  const unsigned n = ctx->capacity;
  ctx->free_slots = new (std::nothrow) uint32_t[n];
  ctx->prepared = new (std::nothrow) uint32_t[n];
  ctx->local_slots = new (std::nothrow) uint32_t[n];
  ctx->order_next = new (std::nothrow) uint32_t[n];
  ctx->order_prev = new (std::nothrow) uint32_t[n];
  ctx->sq = new (std::nothrow) std::atomic<uint32_t>[n];
  if (!ctx->free_slots || !ctx->prepared || !ctx->local_slots || !ctx->order_next || !ctx->order_prev ||
      !ctx->sq) {
    delete ctx;
    return nullptr;
  }
  // Hand slots out lowest first, so a small batch stays in few cache lines.
  for (unsigned i = 0; i < n; ++i) ctx->free_slots[i] = n - 1 - i;
  ctx->free_count = n;
  ctx->thread_owned = thread_owned;
  registry_add(ctx);
  return ctx;
}

Context::~Context() {
  if (entries) munmap(entries, size_t{capacity} * sizeof(flexsc_entry));
  delete[] free_slots;
  delete[] prepared;
  delete[] local_slots;
  delete[] order_next;
  delete[] order_prev;
  delete[] sq;
}

void Context::release() {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

flexsc_entry* Context::get_entry() {
  if (free_count == 0) return nullptr;
  const uint32_t slot = free_slots[--free_count];
  if (char* base = submit_lines.base.load(std::memory_order_relaxed)) {
    const unsigned line = submit_lines.next.load(std::memory_order_relaxed) + prepared_count;
    prefetch_for_write(base + size_t{line & submit_lines.mask.load(std::memory_order_relaxed)} * 64);
  }
  prepared[prepared_count++] = slot;
  return &entries[slot];
}

void Context::record_order(uint32_t slot) {
  order_next[slot] = kNoSlot;
  order_prev[slot] = order_tail;
  if (order_tail == kNoSlot)
    order_head = slot;
  else
    order_next[order_tail] = slot;
  order_tail = slot;
}

void Context::forget_order(uint32_t slot) {
  const uint32_t prev = order_prev[slot], next = order_next[slot];
  if (prev == kNoSlot)
    order_head = next;
  else
    order_next[prev] = next;
  if (next == kNoSlot)
    order_tail = prev;
  else
    order_prev[next] = prev;
}

void Context::publish(const uint32_t* slots, unsigned count) {
  uint64_t tail = sq_tail.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < count; ++i) sq[(tail + i) % capacity].store(slots[i], std::memory_order_relaxed);
  sq_tail.store(tail + count, std::memory_order_seq_cst);
  sq_ready.store(tail + count, std::memory_order_release);
}

void Context::seen(flexsc_entry* e) {
  const uint32_t slot = index_of(e);
  forget_order(slot);
  status_of(e).store(FLEXSC_FREE, std::memory_order_relaxed);
  free_slots[free_count++] = slot;
}

flexsc_entry* Context::oldest_done() {
  for (uint32_t slot = order_head; slot != kNoSlot; slot = order_next[slot]) {
    flexsc_entry* e = &entries[slot];
    if (status_of(e).load(std::memory_order_acquire) == FLEXSC_DONE) return e;
  }
  return nullptr;
}

unsigned Context::in_flight_count() const {
  unsigned n = 0;
  for (unsigned i = 0; i < capacity; ++i) {
    const uint16_t s = status_of(&entries[i]).load(std::memory_order_acquire);
    n += s == FLEXSC_SUBMITTED || s == FLEXSC_BUSY;
  }
  return n;
}

}  // namespace flexsc::detail
