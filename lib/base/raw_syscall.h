// The syscall instruction, inline, so no libc wrapper (and no function
// return after the syscall, which costs about 65 ns with SRSO mitigations)
// sits on the hot paths.
#pragma once

namespace flexsc::detail {

[[gnu::always_inline]] inline long raw_syscall6(long nr, long a1, long a2, long a3, long a4, long a5,
                                                long a6) {
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

}  // namespace flexsc::detail
