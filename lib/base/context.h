// A posting context: a ring of syscall pages owned by one thread at a time
// (a user thread, or later an M:N scheduler), plus the submission queue its
// syscall threads drain.
//
// The owner takes FREE entries, prepares them and submits them: each
// submitted slot index goes into `sq` and sq_tail is published (release).
// Syscall threads claim positions of sq one at a time with a CAS on
// sq_head, so several of them can serve one context (a spare thread takes
// over when one blocks).  Results are read in any order: the owner keeps,
// privately, the order it submitted in, for flexsc_peek.
#pragma once

#include <flexsc/flexsc.h>
#include <flexsc/shim.h>
#include <sys/syscall.h>

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

inline std::atomic_ref<uint16_t> status_of(flexsc_entry* e) { return std::atomic_ref<uint16_t>(e->status); }
inline bool is_done(flexsc_entry* e) { return status_of(e).load(std::memory_order_acquire) == FLEXSC_DONE; }
// Publishes e's result: the owner sees ret once it sees DONE.
inline void set_done(flexsc_entry* e, long ret) {
  e->ret = ret;
  status_of(e).store(FLEXSC_DONE, std::memory_order_release);
}

// Values of Context::waiting: how its owner is parked.
inline constexpr uint32_t kParkedFutex = 1;  // on the word itself
inline constexpr uint32_t kParkedRing = 2;   // in its io_uring wait, woken through wake_fd
inline constexpr uint32_t kParkedShim = 3;   // in the kernel shim's wait, woken by its entries' completions

// What a backend keeps per context (an io_uring ring).
struct BackendState {
  virtual ~BackendState() = default;
};

// Context::shim_notify when no kernel shim region can wake the owner.
inline constexpr uint64_t kNoShimNotify = UINT64_MAX;

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
  bool thread_owned = false;        // the hidden context of flexsc_syscall
  int owner_tid = 0;                // of a thread-owned context
  std::atomic<uint64_t> gen{0};     // generation of the runtime it is bound to
  Runtime* rt = nullptr;
  SyscallCore* core = nullptr;
  uint64_t wait_spin_ns = 0;
  // The io_uring backends: completions wait in the context's ring until
  // the owner reaps them (so waits go through the runtime), and an owner
  // parked in the ring is woken by writing to this eventfd.
  std::atomic<bool> reaps{false};
  std::atomic<int> wake_fd{-1};
  // The kernel shim: what wakes an owner parked in its wait, the
  // descriptor and region id for FLEXSC_IOC_NOTIFY (descriptor << 32 | id),
  // or kNoShimNotify.  A word of its own, not backend state: other threads
  // wake the owner while shutdown may free that state, and a stale value
  // costs no more than a spurious wake-up.
  std::atomic<uint64_t> shim_notify{kNoShimNotify};
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
  std::atomic<uint32_t> in_api{0};  // the owner is inside a call that uses the runtime
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
  flexsc_entry* oldest_done();   // flexsc_peek's answer, or nullptr
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

// Wakes ctx's owner if it is parked (it stored kParked* into `waiting`).
inline void wake_owner(Context* ctx) {
  const uint32_t how = ctx->waiting.exchange(0);
  if (how == kParkedFutex) {
    futex_wake(&ctx->waiting);
  } else if (how == kParkedShim) {
    const uint64_t notify = ctx->shim_notify.load(std::memory_order_acquire);
    uint32_t id = static_cast<uint32_t>(notify);
    if (notify != kNoShimNotify)
      raw_syscall6(SYS_ioctl, static_cast<int>(notify >> 32), FLEXSC_IOC_NOTIFY, reinterpret_cast<long>(&id), 0, 0, 0);
  } else if (how == kParkedRing) {
    const uint64_t one = 1;
    raw_syscall6(SYS_write, ctx->wake_fd.load(std::memory_order_relaxed), reinterpret_cast<long>(&one), sizeof one, 0,
                 0, 0);
  }
}

// Registry of live contexts, for shutdown (cancellation), statistics and
// fork.  Walk it from registry_head() with registry_mutex() held.
std::mutex& registry_mutex();
Context* registry_head();
void registry_add(Context* ctx);
void registry_unlink_locked(Context* ctx);

}  // namespace flexsc::detail
