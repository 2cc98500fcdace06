// Fiber stacks: mmap'd, with an inaccessible guard page below each, kept
// in a per-scheduler pool for reuse.  An overflow faults on the guard page;
// a SIGSEGV handler, running on an alternate signal stack, reports it.
#pragma once

#include <cstddef>
#include <vector>

namespace flexsc::fiber::detail {

struct Stack {
  char* base = nullptr;  // the mapping, guard page first
  std::size_t size = 0;  // usable bytes, above the guard page
  char* bottom() const { return base + page_size(); }
  char* guard() const { return base; }
  static std::size_t page_size();
};

class StackPool {
 public:
  explicit StackPool(std::size_t usable_size, std::size_t keep = 64);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A stack, reused or new; base == nullptr when memory ran out.
  Stack get();
  // Back into the pool, or unmapped when the pool is full.
  void put(Stack s);
  std::size_t usable_size() const { return size_; }

 private:
  std::size_t size_;
  std::size_t keep_;
  std::vector<Stack> free_;
};

// Called by each scheduler thread before it runs fibers: installs (once
// per process) the SIGSEGV handler that reports guard-page hits, and gives
// the thread an alternate signal stack for it.  Returns the alternate
// stack, for release_overflow_reporting() at thread exit.
void* prepare_overflow_reporting();
void release_overflow_reporting(void* altstack);

// The stack of the fiber running on this thread (nullptr on none), for the
// report; set by the scheduler around each switch.
void set_running_stack(const Stack* s, unsigned long fiber_id);

}  // namespace flexsc::fiber::detail
