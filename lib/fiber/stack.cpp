#include "stack.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "base/mapping.h"
#include "switch.h"

namespace flexsc::fiber::detail {

std::size_t Stack::page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

StackPool::StackPool(std::size_t usable_size, std::size_t keep) : keep_(keep) {
  const std::size_t page = Stack::page_size();
  size_ = (usable_size + page - 1) / page * page;
  if (size_ < 4 * page) size_ = 4 * page;
}

namespace {
// A fiber's last frames stay poisoned in ASan's shadow after its final
// switch; memory mapped later at the same address would inherit that.
void unmap(const Stack& s) {
#if FLEXSC_FIBER_ASAN
  ASAN_UNPOISON_MEMORY_REGION(s.bottom(), s.size);
#endif
  munmap(s.base, s.size + Stack::page_size());
}
}  // namespace

StackPool::~StackPool() {
  for (Stack& s : free_) unmap(s);
}

Stack StackPool::get() {
  if (!free_.empty()) {
    Stack s = free_.back();
    free_.pop_back();
#if FLEXSC_FIBER_ASAN
    // Frames of the fiber that used it last may still be poisoned.
    ASAN_UNPOISON_MEMORY_REGION(s.bottom(), s.size);
#endif
    return s;
  }
  const std::size_t page = Stack::page_size();
  // Reserved, not committed: a fiber costs the pages it touches.
  void* mem = flexsc::detail::map_anonymous(size_ + page, MAP_NORESERVE | MAP_STACK);
  if (!mem) return {};
  if (mprotect(mem, page, PROT_NONE) != 0) {
    munmap(mem, size_ + page);
    return {};
  }
  return Stack{static_cast<char*>(mem), size_};
}

void StackPool::put(Stack s) {
  if (!s.base) return;
  if (free_.size() < keep_) {
    free_.push_back(s);
    return;
  }
  unmap(s);
}

namespace {

thread_local const Stack* t_running_stack = nullptr;
thread_local unsigned long t_running_fiber = 0;

std::once_flag g_handler_once;
struct sigaction g_previous;  // the handler we chain to for other faults

constexpr std::size_t kAltStackSize = 64 * 1024;

// Async-signal-safe: formats into a buffer and writes it.
void report_overflow(const void* addr) {
  char msg[160];
  char* p = msg;
  auto put = [&p, &msg](const char* s) {
    while (*s && p < msg + sizeof msg - 1) *p++ = *s++;
  };
  auto put_num = [&put](unsigned long v, int base) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v && n < 23);
    char out[26];
    int k = 0;
    if (base == 16) out[k++] = '0', out[k++] = 'x';
    while (n) out[k++] = digits[--n];
    out[k] = 0;
    put(out);
  };
  put("flexsc: fiber ");
  put_num(t_running_fiber, 10);
  put(" overflowed its stack (");
  put_num(t_running_stack->size, 10);
  put(" bytes): fault at ");
  put_num(reinterpret_cast<unsigned long>(addr), 16);
  put(" in its guard page\n");
  if (write(2, msg, static_cast<size_t>(p - msg)) < 0) {
  }
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  const Stack* s = t_running_stack;
  const char* addr = static_cast<const char*>(info->si_addr);
  if (s && addr >= s->guard() && addr < s->guard() + Stack::page_size()) {
    report_overflow(addr);
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  // Not ours: what would have happened without this handler.
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(sig, info, uctx);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {
    // Faulting again with the default action gives the usual core dump.
    signal(SIGSEGV, SIG_DFL);
  }
}

}  // namespace

void* prepare_overflow_reporting() {
  std::call_once(g_handler_once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous);
  });
  void* mem = flexsc::detail::map_anonymous(kAltStackSize);
  if (!mem) return nullptr;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, kAltStackSize);
    return nullptr;
  }
  return mem;
}

void release_overflow_reporting(void* altstack) {
  if (!altstack) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(altstack, kAltStackSize);
}

void set_running_stack(const Stack* s, unsigned long fiber_id) {
  t_running_stack = s;
  t_running_fiber = fiber_id;
}

}  // namespace flexsc::fiber::detail
