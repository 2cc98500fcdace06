// An outside C++ program on the installed fiber API: a fiber whose
// syscall posts and switches, joined from main.
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <flexsc/fiber.hpp>
#include <flexsc/flexsc.hpp>

int main() {
  long ppid = 0;
  {
    flexsc::fiber::Pool pool;
    pool.spawn([&] { ppid = flexsc::syscall(SYS_getppid); }).join();
  }
  if (ppid != getppid()) return 1;
  std::printf("flexsc fiber consumer: ok\n");
  return 0;
}
