// The C++ layer: RAII runtime, a batch, typed arguments.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <flexsc/flexsc.hpp>
#include <iostream>
#include <string>

int main() {
  flexsc::Runtime runtime;
  const long fd = flexsc::check(
      flexsc::syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC), "open /proc/self/stat");
  char buf[64];
  flexsc::Batch batch;
  flexsc_entry* read = batch.prep(SYS_pread64, fd, buf, sizeof buf - 1, 0);
  flexsc_entry* ppid = batch.prep(SYS_getppid);
  batch.submit();
  const long n = flexsc::check(batch.wait(read), "pread");
  const long parent = batch.wait(ppid);
  batch.seen(read);
  batch.seen(ppid);
  flexsc::syscall(SYS_close, fd);
  buf[n] = '\0';
  const long pid = std::stol(buf);
  std::cout << "pid from /proc/self/stat: " << pid << " (getpid " << getpid() << ")\n"
            << "parent: " << parent << " (getppid " << getppid() << ")\n"
            << "backend: " << flexsc::Runtime::backend() << "\n";
  return pid == getpid() && parent == getppid() ? 0 : 1;
}
