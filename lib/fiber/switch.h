// The context switch, apart from any scheduling: Boost.Context's fcontext
// (a few instructions of assembly that save and restore the callee-saved
// registers and the stack pointer), plus the sanitizer annotations Debian's
// Boost is built without.  ASan must be told which stack is live, or it
// reports false stack-buffer overflows and leaks fake frames; TSan keeps a
// shadow state per fiber and must be told which one runs.
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define FLEXSC_FIBER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define FLEXSC_FIBER_TSAN 1
#endif

namespace flexsc::fiber::detail {

namespace fc = boost::context::detail;

// One side of a switch: a fiber, or a scheduler's own thread stack.
struct ExecutionContext {
  fc::fcontext_t fctx = nullptr;       // where it stopped (nullptr while it runs)
  const void* stack_bottom = nullptr;  // lowest usable address (ASan)
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
  bool owns_tsan_fiber = false;  // a thread's own is TSan's to keep

  // A new fiber's context: starts entry(transfer) on the stack [bottom, bottom+size).
  void make(void* bottom, std::size_t size, void (*entry)(fc::transfer_t)) {
    stack_bottom = bottom;
    stack_size = size;
    fctx = fc::make_fcontext(static_cast<char*>(bottom) + size, size, entry);
#if FLEXSC_FIBER_TSAN
    tsan_fiber = __tsan_create_fiber(0);
    owns_tsan_fiber = true;
#endif
  }
  // The calling thread's own context (its stack is already known to ASan);
  // bottom and size are that stack, for switches back to it.
  void adopt_thread(const void* bottom, std::size_t size) {
    stack_bottom = bottom;
    stack_size = size;
#if FLEXSC_FIBER_TSAN
    tsan_fiber = __tsan_get_current_fiber();
#endif
  }
  void release() {
#if FLEXSC_FIBER_TSAN
    if (tsan_fiber && owns_tsan_fiber) __tsan_destroy_fiber(tsan_fiber);
    tsan_fiber = nullptr;
    owns_tsan_fiber = false;
#endif
  }
};

// Each switch passes the ExecutionContext it leaves as the jump's data, so
// the side that receives control records where the other one stopped.

// On arrival (after a switch, or at a fiber's first instruction): records
// where the side we came from stopped, and tells ASan which stack is live.
// Every context knows its stack already: what ASan answers here is the
// previous stack of the identity (TCB) the switch ran under, which for a
// borrowed TCB is not the side we came from.
inline void arrive(ExecutionContext& self, fc::transfer_t t) {
  auto* came_from = static_cast<ExecutionContext*>(t.data);
  came_from->fctx = t.fctx;
#if FLEXSC_FIBER_ASAN
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, nullptr, nullptr);
#else
  (void)self;
#endif
}

// The fs base: the thread control block glibc and the sanitizers find
// their per-thread state through (x86-64, CPU flag fsgsbase).
inline void write_fs_base(uint64_t base) {
  asm volatile("wrfsbase %0" : : "r"(base) : "memory");
}

// Switches from `from` (running) to `to`.  from_ends: `from` never runs
// again (a fiber's last switch), so ASan drops its fake frames.
inline void switch_context(ExecutionContext& from, ExecutionContext& to, bool from_ends = false) {
#if FLEXSC_FIBER_ASAN
  __sanitizer_start_switch_fiber(from_ends ? nullptr : &from.asan_fake_stack, to.stack_bottom, to.stack_size);
#else
  (void)from_ends;
#endif
#if FLEXSC_FIBER_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  const fc::fcontext_t target = to.fctx;
  to.fctx = nullptr;
  arrive(from, fc::jump_fcontext(target, &from));
}

}  // namespace flexsc::fiber::detail
