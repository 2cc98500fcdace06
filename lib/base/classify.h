// The classification table over every x86-64 syscall number: which thread
// may execute a syscall, and whether it may sleep without bound.
#pragma once

#include <cstdint>

namespace flexsc::detail {

enum class SyscallClass : uint8_t {
  Unknown,   // not in the table (newer than our headers, or no syscall): caller runs it
  Local,     // depends on the calling thread: caller runs it
  Remote,    // any thread of the process may run it
  Blocking,  // remote, and may sleep without bound
};

struct SyscallInfo {
  const char* name;
  SyscallClass cls;
  bool by_args;  // classify() refines the class from the arguments
};

#include "syscall_table.inc"

// Class of one call; some classes depend on the arguments (pid 0 means the
// calling thread, PI futexes, thread CPU clocks, ...).
SyscallClass classify(long nr, const long args[6]);

inline bool runs_on_caller(SyscallClass c) {
  return c == SyscallClass::Unknown || c == SyscallClass::Local;
}

// Name for the statistics, or nullptr.
inline const char* syscall_name(long nr) {
  return nr >= 0 && nr < static_cast<long>(kSyscallTableSize) ? kSyscallTable[nr].name : nullptr;
}

const char* class_name(SyscallClass c);

}  // namespace flexsc::detail
