// What libc's wrappers do around a syscall, for the layers that answer as
// libc does (the fiber POSIX calls, the drop-in wrapper).
#pragma once

#include <fcntl.h>
#include <stdarg.h>
#include <sys/types.h>

#include <cerrno>

namespace flexsc::detail {

// A raw result (-errno, in [-4095, -1], on failure) as libc returns it:
// -1 with errno set.
inline long libc_result(long ret) {
  if (ret < 0 && ret > -4096) {
    errno = static_cast<int>(-ret);
    return -1;
  }
  return ret;
}

// open's and openat's third argument, present only when flags create a file.
inline mode_t open_mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

}  // namespace flexsc::detail
