// The fiber echo server example (examples/fiber_echo.cpp), driven by
// clients in this process: many connections at once, every byte echoed in
// order, and the server ends cleanly after the last client.
//   test_echo_example <path of fiber_echo>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "watchdog.h"

namespace {

std::string g_server;

std::string read_all(int fd) {
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(FiberEchoExample, ServesConcurrentClientsExactly) {
  using namespace std::chrono_literals;
  flexsc::test::Watchdog dog("echo example", 110s);
  const int clients = static_cast<int>(flexsc::test::scaled(200));
  const int rounds = 20;
  const std::string path = "/tmp/flexsc-echo-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t server = fork();
  ASSERT_GE(server, 0);
  if (server == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives a test that aborted
    dup2(out[1], 1);
    close(out[0]);
    execl(g_server.c_str(), g_server.c_str(), path.c_str(), std::to_string(clients).c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  // The server says when it listens.
  std::string banner;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') banner += c;
  ASSERT_EQ(banner, "listening on " + path);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::vector<int> fds;
      for (int i = t; i < clients; i += 4) {
        const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          bad.fetch_add(1);
          close(fd);
          continue;
        }
        fds.push_back(fd);
      }
      // All of this thread's connections are open at once; each round
      // sends on every one, then reads every echo back.
      for (int r = 0; r < rounds; ++r) {
        for (size_t i = 0; i < fds.size(); ++i) {
          const std::string msg = "client " + std::to_string(i) + " round " + std::to_string(r) + ";";
          if (write(fds[i], msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) bad.fetch_add(1);
        }
        for (size_t i = 0; i < fds.size(); ++i) {
          const std::string msg = "client " + std::to_string(i) + " round " + std::to_string(r) + ";";
          std::string got(msg.size(), '\0');
          size_t have = 0;
          while (have < got.size()) {
            const ssize_t n = read(fds[i], got.data() + have, got.size() - have);
            if (n <= 0) break;
            have += static_cast<size_t>(n);
          }
          if (got != msg) bad.fetch_add(1);
        }
      }
      for (int fd : fds) close(fd);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  const std::string rest = read_all(out[0]);
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(server, &status, 0), server);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_NE(rest.find("served " + std::to_string(clients) + " connections"), std::string::npos) << rest;
  unlink(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <path of fiber_echo>\n", argv[0]);
    return 2;
  }
  g_server = argv[1];
  return RUN_ALL_TESTS();
}
