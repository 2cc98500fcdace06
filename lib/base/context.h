// A posting context: a ring of syscall pages owned by one thread at a time
// (a user thread, or an M:N scheduler), plus the submission queue its
// syscall threads drain.
//
// The owner takes FREE entries, prepares them and submits them: each is
// marked SUBMITTED (release), its slot index, with kSqBlocking for the
// blocking class, goes into `sq`, and sq_tail (seq_cst) then sq_ready
// (release) are published.  Syscall threads claim a run of positions with
// one compare-and-swap on sq_head: up to 16 entries that cannot block, or
// a single one that can, so a thread stuck in it holds nothing else and
// several threads can serve one context (a spare takes over when one
// blocks).  Claimed through sq_head, an entry gets no BUSY store; it
// turns DONE (release) with its result.  The kernel shim's servers do not
// read `sq`: they find SUBMITTED entries in the registered pages and claim
// them by status (abi/flexsc/shim.h); io_uring takes the entries the owner
// turned into SQEs.  Results are read in any order: the owner keeps,
// privately, the order it submitted in, for flexsc_peek.
#pragma once

#include <flexsc/flexsc.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "base/futex.h"
#include "base/raw_syscall.h"
#include "base/stats.h"

namespace flexsc::detail {

class Runtime;
struct SyscallCore;

// Library-internal entry flag: the entry is in the blocking class.
inline constexpr uint16_t kEntryBlocking = FLEXSC_ENTRY_MAY_BLOCK;

inline std::atomic_ref<uint16_t> status_of(flexsc_entry* e) {
  return std::atomic_ref<uint16_t>(e->status);
}
inline bool is_done(flexsc_entry* e) {
  return status_of(e).load(std::memory_order_acquire) == FLEXSC_DONE;
}
// Publishes e's result: the owner sees ret once it sees DONE.
inline void set_done(flexsc_entry* e, long ret) {
  e->ret = ret;
  status_of(e).store(FLEXSC_DONE, std::memory_order_release);
}

// Values of Context::waiting: how its owner is parked.  0: not parked;
// kParkedFutex: on the word itself; any other value is a backend's own
// way (park_kind()).
inline constexpr uint32_t kParkedFutex = 1;

// Wakes an owner parked in its backend's own wait (an io_uring wait, the
// kernel shim's): the payload is what the backend stored into
// Context::wake_target when it bound the context (a descriptor, a region).
using OwnerWake = void (*)(uint64_t payload);
// The Context::waiting value for owners that `wake` wakes, the same for
// every call with the same function.  At most a few kinds exist.
uint32_t park_kind(OwnerWake wake);
// Context::wake_target for a kind and a payload of at most 56 bits.
inline uint64_t wake_target_of(uint32_t kind, uint64_t payload) {
  return uint64_t{kind} << 56 | payload;
}
inline constexpr uint64_t kNoWakeTarget = 0;

// What a backend keeps per context (an io_uring ring, a registered region).
struct BackendState {
  virtual ~BackendState() = default;
};

struct Context {
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  // Cache lines are laid out by who writes them, so a syscall thread
  // reading the context never fights the owner writing its own fields.

  // ---- read-mostly: set at creation and when bound to a runtime
  flexsc_entry* entries = nullptr;  // pages * 64, page-aligned mmap
  // Submitted slots, each with kSqBlocking if its entry is of the blocking
  // class: a syscall thread plans its claim from this alone (atomics), never
  // from entries it has not claimed yet.
  std::atomic<uint32_t>* sq = nullptr;
  unsigned capacity = 0;
  bool thread_owned = false;     // the hidden context of flexsc_syscall
  int owner_tid = 0;             // of a thread-owned context
  std::atomic<uint64_t> gen{0};  // generation of the runtime it is bound to
  Runtime* rt = nullptr;
  // The syscall core whose syscall threads drain it (their queue, on the
  // submit path), when syscall threads do (backends/syscall_threads).
  SyscallCore* core = nullptr;
  uint64_t wait_spin_ns = 0;
  // Completions wait in a backend's queue until the owner reaps them
  // (Backend::reap: an io_uring completion queue), so waits go through
  // the runtime.
  std::atomic<bool> reaps{false};
  // How an owner parked in its backend's own wait is woken: the kind it
  // parked with (Context::waiting) << 56 | the backend's payload.  Other
  // threads wake the owner while shutdown may free the backend's state,
  // so this word is all they read; a stale one, checked against the kind,
  // costs at most a spurious wake-up.
  std::atomic<uint64_t> wake_target{kNoWakeTarget};
  std::unique_ptr<BackendState> backend_state;

  // ---- owner side: touched only by the thread using the context
  alignas(64) uint32_t* free_slots = nullptr;  // stack of FREE slots
  unsigned free_count = 0;
  uint32_t* prepared = nullptr;  // slots handed out since the last submit, in order
  unsigned prepared_count = 0;
  uint32_t* local_slots = nullptr;  // submitted entries the caller must run itself
  unsigned local_count = 0;
  // Submitted, unseen entries in submission order: a list through slots.
  uint32_t* order_next = nullptr;
  uint32_t* order_prev = nullptr;
  uint32_t order_head = kNoSlot, order_tail = kNoSlot;
  // Where the backend will write the next submissions, if it writes them
  // into lines another core reads (an io_uring SQ ring: the kernel read
  // them last, on the syscall core).  get_entry asks for the line of each
  // entry it hands out, so the transfer overlaps with the caller filling
  // it instead of stalling the submit.  Set and cleared by the backend;
  // atomics, since shutdown clears them while the owner may be preparing
  // (a prefetch of a stale address is harmless: it never faults).
  struct SubmitLines {
    std::atomic<char*> base{nullptr};
    std::atomic<unsigned> next{0};  // index of the next submission's line
    std::atomic<unsigned> mask{0};
  } submit_lines;
  std::atomic<uint32_t> in_api{0};    // the owner is inside a call that uses the runtime
  std::atomic<int> submitter_tid{0};  // who gets the signals its entries raise
  CallerStats stats;

  // ---- shared with syscall threads
  // The submission tail, twice: sq_tail is the owner's (a seq_cst store,
  // paired with `queued`), sq_ready the copy syscall threads poll.  Were
  // they one, every submit would first have to win the line back from a
  // polling syscall thread before its locked store could finish.
  alignas(64) std::atomic<uint64_t> sq_tail{0};
  alignas(64) std::atomic<uint64_t> sq_ready{0};
  alignas(64) std::atomic<uint64_t> sq_head{0};  // syscall threads claim
  // Bumped by syscall threads every few completions and at the end of each
  // visit.  Waiters poll this instead of the entries themselves: an entry
  // line the owner keeps reading is a line the syscall thread must win back
  // (a stall at its next locked instruction or kernel exit) to publish.
  alignas(64) std::atomic<uint64_t> completed{0};
  // The word waiters poll: `completed`, or one the backend keeps elsewhere
  // (the kernel shim's servers bump one in its control page, whose memory
  // outlives every runtime).
  std::atomic<const std::atomic<uint64_t>*> progress{&completed};
  const std::atomic<uint64_t>& progress_word() const { return *progress.load(std::memory_order_acquire); }
  alignas(64) std::atomic<uint32_t> waiting{0};  // futex word: the owner is parked
  std::atomic<uint32_t> queued{0};               // a ready-queue reference is pending
  std::atomic<uint32_t> refs{1};                 // the owner's, plus one per queue reference

  // ---- global registry (under the registry lock)
  alignas(64) Context* prev = nullptr;
  Context* next = nullptr;

  static Context* create(unsigned pages, bool thread_owned);  // nullptr on ENOMEM
  void add_ref() { refs.fetch_add(1, std::memory_order_relaxed); }
  void release();  // frees on the last reference

  flexsc_entry* get_entry();
  void seen(flexsc_entry* e);
  unsigned index_of(const flexsc_entry* e) const { return static_cast<unsigned>(e - entries); }
  bool in_flight() const { return in_flight_count() != 0; }
  unsigned in_flight_count() const;  // entries SUBMITTED or BUSY
  bool has_unclaimed() const {
    return sq_head.load(std::memory_order_acquire) < sq_tail.load(std::memory_order_acquire);
  }
  // As seen by syscall threads (may lag has_unclaimed() by a store's flight).
  bool has_ready() const {
    return sq_head.load(std::memory_order_relaxed) < sq_ready.load(std::memory_order_acquire);
  }
  flexsc_entry* oldest_done();  // flexsc_peek's answer, or nullptr
  bool any_unseen() const { return order_head != kNoSlot; }

  static constexpr uint32_t kSqBlocking = 1u << 31;
  // The entry at submission position pos; *blocking tells its class.
  flexsc_entry* submitted(uint64_t pos, bool* blocking = nullptr) const {
    const uint32_t v = sq[pos % capacity].load(std::memory_order_relaxed);
    if (blocking) *blocking = v & kSqBlocking;
    return &entries[v & ~kSqBlocking];
  }

  // Appends a prepared slot to the submission order (owner-private).
  void record_order(uint32_t slot);
  void forget_order(uint32_t slot);
  // Publishes `count` slots (with kSqBlocking where it applies) to the
  // syscall threads.
  void publish(const uint32_t* slots, unsigned count);

 private:
  Context() = default;
  ~Context();
};

// Wakes ctx's owner if it is parked (it stored its way into `waiting`).
void wake_parked_owner(Context* ctx, uint32_t how);
inline void wake_owner(Context* ctx) {
  if (const uint32_t how = ctx->waiting.exchange(0)) wake_parked_owner(ctx, how);
}

// Registry of live contexts, for shutdown (cancellation), statistics and
// fork.  Walk it from registry_head() with registry_mutex() held.
std::mutex& registry_mutex();
Context* registry_head();
void registry_add(Context* ctx);
void registry_unlink_locked(Context* ctx);

}  // namespace flexsc::detail
