// An echo server on fibers: one fiber per connection, written as ordinary
// blocking code.  Its reads and writes park the fiber (readiness waits and
// post-and-switch syscalls), never the scheduler thread.
//
//   fiber_echo <unix-socket-path> [connections]
//
// Serves until `connections` clients have come and gone (forever without
// it), then prints what it served.  FLEXSC_BACKEND picks the backend;
// FLEXSC_STATS=1 prints the schedulers' counters at the end.
#include <flexsc/posix.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <flexsc/fiber.hpp>

namespace fib = flexsc::fiber;

namespace {

std::atomic<long> g_bytes{0};

void serve(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = flexsc_posix_read(fd, buf, sizeof buf);
    if (n <= 0) break;  // end of stream or error: the client is gone
    if (flexsc_posix_write(fd, buf, static_cast<size_t>(n)) != n) break;
    g_bytes.fetch_add(n);
  }
  flexsc_posix_close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <unix-socket-path> [connections]\n", argv[0]);
    return 2;
  }
  const long connections = argc > 2 ? std::atol(argv[2]) : -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (std::strlen(argv[1]) >= sizeof addr.sun_path) {
    std::fprintf(stderr, "socket path too long\n");
    return 2;
  }
  std::strcpy(addr.sun_path, argv[1]);

  fib::Pool pool;  // one scheduler per user core; syscalls exception-less
  const int listener = flexsc_posix_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 1024) != 0) {
    std::perror("listen");
    return 1;
  }
  std::printf("listening on %s\n", argv[1]);
  std::fflush(stdout);

  fib::WaitGroup clients;
  pool.spawn([&] {
        for (long served = 0; connections < 0 || served < connections; ++served) {
          const int fd = flexsc_posix_accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
          if (fd < 0) {
            std::perror("accept");
            return;
          }
          clients.add();
          fib::spawn([fd, &clients] {
            serve(fd);
            clients.done();
          }).detach();
        }
      })
      .join();
  clients.wait();
  flexsc_posix_close(listener);
  std::printf("served %ld connections, %ld bytes echoed\n", connections, g_bytes.load());
  return 0;
}
