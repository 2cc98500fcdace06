// Anonymous memory the runtime maps for itself.  Under ASan a new
// mapping's shadow may still hold the poison of a thread stack that lay
// there before: after fork, glibc unmaps the stacks of the parent's other
// threads (gone in the child) without ASan seeing it, and a later mapping
// can land on them.  So each mapping is declared clean (a no-op elsewhere).
#pragma once

#include <sys/mman.h>

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace flexsc::detail {

inline void declare_clean(const void* p, std::size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
  __asan_unpoison_memory_region(p, bytes);
#else
  (void)p;
  (void)bytes;
#endif
}

// Private anonymous read-write memory, or nullptr (errno says why).
inline void* map_anonymous(std::size_t bytes, int extra_flags = 0) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  declare_clean(p, bytes);
  return p;
}

}  // namespace flexsc::detail
