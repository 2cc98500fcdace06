// Pipes, polling, and the event descriptors (eventfd, epoll, timerfd,
// inotify).
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void pipes(Run& r) {
  Fixture& f = r.fx;
  char buf[32] = {};
  long n = r.sys("read fixture pipe", SYS_read, f.pipe_r, buf, sizeof buf);
  r.log("read data", contents(buf, n));
  int p[2] = {-1, -1};
  r.sys("pipe2 O_NONBLOCK|O_CLOEXEC", SYS_pipe2, p, O_NONBLOCK | O_CLOEXEC);
  r.log("pipe2 fds", fmt("%d %d", p[0], p[1]));
  r.sys("write 5", SYS_write, p[1], "hello", 5);
  int queued = -1;
  r.sys("ioctl FIONREAD", SYS_ioctl, p[0], FIONREAD, &queued);
  r.log("FIONREAD", std::to_string(queued));
  n = r.sys("read 3", SYS_read, p[0], buf, 3);
  r.log("read data", contents(buf, n));
  n = r.sys("read rest", SYS_read, p[0], buf, sizeof buf);
  r.log("read data", contents(buf, n));
  r.sys("read empty O_NONBLOCK", SYS_read, p[0], buf, sizeof buf);
  r.sys("write to the read end", SYS_write, p[0], "x", 1);
  r.sys("read from the write end", SYS_read, p[1], buf, 1);
  r.sys("lseek on a pipe", SYS_lseek, p[0], 0, SEEK_SET);
  r.sys("pread64 on a pipe", SYS_pread64, p[0], buf, 1, 0);
  r.sys("write 3 more", SYS_write, p[1], "abc", 3);
  r.sys("close write end", SYS_close, p[1]);
  n = r.sys("read after close", SYS_read, p[0], buf, sizeof buf);
  r.log("read data", contents(buf, n));
  r.sys("read at EOF", SYS_read, p[0], buf, sizeof buf);
  int q[2] = {-1, -1};
  r.sys("pipe (legacy)", SYS_pipe, q);
  r.log("pipe fds", fmt("%d %d", q[0], q[1]));
  r.sys("write legacy pipe (stays queued)", SYS_write, q[1], "queued", 6);
  r.sys("pipe2 bad flags", SYS_pipe2, p, 0x1);
  r.sys("pipe2 bad pointer", SYS_pipe2, kBadPtr, 0);
  r.sys("ioctl FIONBIO on", SYS_ioctl, q[0], FIONBIO, &(queued = 1));
  r.sys("read empty after FIONBIO", SYS_read, q[0], buf, 0);
}

void polling(Run& r) {
  Fixture& f = r.fx;
  pollfd fds[] = {{static_cast<int>(f.pipe_r), POLLIN, 0},
                  {static_cast<int>(f.pipe_w), POLLOUT, 0},
                  {static_cast<int>(f.sfd), POLLIN, 0},
                  {static_cast<int>(f.lfd), POLLIN, 0},
                  {static_cast<int>(f.us0), POLLIN, 0},
                  {static_cast<int>(f.ufd), POLLIN, 0},
                  {static_cast<int>(f.fd_a), POLLIN | POLLOUT, 0},
                  {9999, POLLIN, 0}};
  auto revents = [&] {
    std::string s;
    for (const pollfd& p : fds) s += fmt(" %#x", p.revents);
    return s;
  };
  r.sys("poll timeout 0", SYS_poll, fds, std::size(fds), 0);
  r.log("poll revents", revents());
  const timespec zero{};
  r.sys("ppoll zero timeout", SYS_ppoll, fds, std::size(fds), &zero, nullptr, 8);
  r.log("ppoll revents", revents());
  pollfd idle{static_cast<int>(f.ufd), POLLIN, 0};
  r.sys("poll 20 ms on an idle socket", SYS_poll, &idle, 1, 20);
  r.sys("poll too many fds", SYS_poll, fds, 1 << 30, 0);
  r.sys("poll bad pointer", SYS_poll, kBadPtr, 1, 0);
  fd_set rd, wr;
  FD_ZERO(&rd);
  FD_ZERO(&wr);
  FD_SET(static_cast<int>(f.pipe_r), &rd);
  FD_SET(static_cast<int>(f.ufd), &rd);
  FD_SET(static_cast<int>(f.pipe_w), &wr);
  const int nfds = static_cast<int>(std::max({f.pipe_r, f.pipe_w, f.ufd})) + 1;
  timeval tv{0, 0};
  r.sys("select", SYS_select, nfds, &rd, &wr, nullptr, &tv);
  r.log("select sets",
        fmt("r:%d,%d w:%d", FD_ISSET(static_cast<int>(f.pipe_r), &rd), FD_ISSET(static_cast<int>(f.ufd), &rd),
            FD_ISSET(static_cast<int>(f.pipe_w), &wr)));
  FD_ZERO(&rd);
  FD_SET(static_cast<int>(f.us0), &rd);
  timespec ts{0, 0};
  struct {
    const void* set;
    size_t size;
  } no_mask{nullptr, 8};
  r.sys("pselect6", SYS_pselect6, f.us0 + 1, &rd, nullptr, nullptr, &ts, &no_mask);
  r.log("pselect6 set", std::to_string(FD_ISSET(static_cast<int>(f.us0), &rd)));
  r.sys("select negative nfds", SYS_select, -1, nullptr, nullptr, nullptr, &tv);
  FD_ZERO(&rd);
  FD_SET(static_cast<int>(hi(50)), &rd);
  r.sys("select on a closed fd", SYS_select, hi(51), &rd, nullptr, nullptr, &tv);
}

void event_descriptors(Run& r) {
  Fixture& f = r.fx;
  const long efd = r.sys("eventfd2 3 NONBLOCK", SYS_eventfd2, 3, EFD_NONBLOCK);
  uint64_t v = 4;
  r.sys("write eventfd +4", SYS_write, efd, &v, 8);
  r.sys("write eventfd short", SYS_write, efd, &v, 4);
  v = 0;
  r.sys("read eventfd", SYS_read, efd, &v, 8);
  r.log("eventfd value", std::to_string(v));
  r.sys("read eventfd empty", SYS_read, efd, &v, 8);
  r.sys("eventfd2 bad flags", SYS_eventfd2, 0, 0x2);
  r.sys("write eventfd +2 (stays)", SYS_write, efd, &(v = 2), 8);
  const long ep = r.sys("epoll_create1 CLOEXEC", SYS_epoll_create1, EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0xE;
  r.sys("epoll_ctl ADD eventfd", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, efd, &ev);
  ev.data.u64 = 0xA;
  r.sys("epoll_ctl ADD pipe", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, f.pipe_r, &ev);
  ev.data.u64 = 0xB;
  ev.events = EPOLLIN | EPOLLET;
  r.sys("epoll_ctl ADD udp", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, f.ufd, &ev);
  r.sys("epoll_ctl ADD twice", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, efd, &ev);
  r.sys("epoll_ctl DEL not a member", SYS_epoll_ctl, ep, EPOLL_CTL_DEL, f.us0, nullptr);
  r.sys("epoll_ctl ADD a regular file", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, f.fd_a, &ev);
  r.sys("epoll_ctl ADD itself", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, ep, &ev);
  ev.events = EPOLLOUT;
  ev.data.u64 = 0xAA;
  r.sys("epoll_ctl MOD pipe", SYS_epoll_ctl, ep, EPOLL_CTL_MOD, f.pipe_r, &ev);
  epoll_event out[8]{};
  auto events = [&](long n) {
    std::string s;
    std::vector<std::pair<uint64_t, uint32_t>> got;
    for (long i = 0; i < n && i < 8; ++i) {
      const uint64_t data = out[i].data.u64;
      const uint32_t evs = out[i].events;
      got.emplace_back(data, evs);
    }
    std::sort(got.begin(), got.end());
    for (const auto& [data, evs] : got) s += fmt(" %#lx:%#x", data, evs);
    return s;
  };
  long n = r.sys("epoll_wait timeout 0", SYS_epoll_wait, ep, out, 8, 0);
  r.log("epoll_wait events", events(n));
  n = r.sys("epoll_pwait timeout 0", SYS_epoll_pwait, ep, out, 8, 0, nullptr, 8);
  r.log("epoll_pwait events", events(n));
  r.sys("epoll_wait maxevents 0", SYS_epoll_wait, ep, out, 0, 0);
  r.sys("epoll_wait on a non-epoll fd", SYS_epoll_wait, f.fd_a, out, 8, 0);
  r.sys("epoll_create1 bad flags", SYS_epoll_create1, 0x1);
  r.sys("epoll_ctl DEL udp", SYS_epoll_ctl, ep, EPOLL_CTL_DEL, f.ufd, nullptr);
}

void timer_descriptors(Run& r) {
  Fixture& f = r.fx;
  const long t =
      r.sys("timerfd_create MONOTONIC", SYS_timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  itimerspec its{{0, 0}, {100, 0}}, old{};
  r.sys("timerfd_settime 100 s", SYS_timerfd_settime, t, 0, &its, &old);
  r.log("old setting", fmt("%ld.%09ld", old.it_value.tv_sec, old.it_value.tv_nsec));
  itimerspec cur{};
  r.sys("timerfd_gettime", SYS_timerfd_gettime, t, &cur);
  r.log("remaining within (99,100] s",
        yes(cur.it_value.tv_sec == 99 || (cur.it_value.tv_sec == 100 && cur.it_value.tv_nsec == 0)));
  uint64_t ticks = 0;
  r.sys("read before expiry", SYS_read, t, &ticks, 8);
  const itimerspec past{{0, 0}, {0, 1}};
  r.sys("timerfd_settime absolute in the past", SYS_timerfd_settime, t, TFD_TIMER_ABSTIME, &past, nullptr);
  // The expiry arrives through the timer interrupt: wait for it (on a slow
  // or emulated CPU the read can come first).
  pollfd pfd{static_cast<int>(t), POLLIN, 0};
  const timespec ten_s{10, 0};
  r.sys("ppoll until expired", SYS_ppoll, &pfd, 1, &ten_s, nullptr, 8);
  r.sys("read expired", SYS_read, t, &ticks, 8);
  r.log("ticks", std::to_string(ticks));
  r.sys("read 4 bytes", SYS_read, t, &ticks, 4);
  const itimerspec interval{{5, 0}, {5, 0}};
  r.sys("timerfd_settime with interval (stays armed)", SYS_timerfd_settime, t, 0, &interval, nullptr);
  r.sys("timerfd_create bad clock", SYS_timerfd_create, 12345, 0);
  r.sys("timerfd_create bad flags", SYS_timerfd_create, CLOCK_MONOTONIC, 0x1);
  r.sys("timerfd_settime bad flags", SYS_timerfd_settime, t, 0x100, &its, nullptr);
  const itimerspec bad{{0, 0}, {0, 1000000000}};
  r.sys("timerfd_settime bad nsec", SYS_timerfd_settime, t, 0, &bad, nullptr);
  r.sys("timerfd_gettime on a file", SYS_timerfd_gettime, f.fd_a, &cur);
}

void inotify(Run& r) {
  const long in = r.sys("inotify_init1 NONBLOCK", SYS_inotify_init1, IN_NONBLOCK);
  r.sys("inotify_add_watch . IN_CREATE|IN_DELETE", SYS_inotify_add_watch, in, ".", IN_CREATE | IN_DELETE);
  r.sys("inotify_add_watch missing", SYS_inotify_add_watch, in, "missing", IN_CREATE);
  r.sys("inotify_add_watch no events", SYS_inotify_add_watch, in, ".", 0);
  r.sys("creat watched", SYS_creat, "watched", 0644);
  r.sys("unlink empty", SYS_unlink, "empty");
  alignas(8) char buf[512];
  const long n = r.sys("read events", SYS_read, in, buf, sizeof buf);
  std::string events;
  for (long off = 0;
       n <= static_cast<long>(sizeof buf) && off + static_cast<long>(sizeof(inotify_event)) <= n;) {
    inotify_event ev;
    std::memcpy(&ev, buf + off, sizeof ev);
    off += static_cast<long>(sizeof ev);
    const char* name = buf + off;
    events += fmt(" wd=%d mask=%#x name=", ev.wd, ev.mask) +
              std::string(name, strnlen(name, static_cast<size_t>(std::clamp<long>(n - off, 0, ev.len))));
    off += ev.len;
  }
  r.log("events", events);
  r.sys("read empty", SYS_read, in, buf, sizeof buf);
  r.sys("inotify_rm_watch 1", SYS_inotify_rm_watch, in, 1);
  r.sys("inotify_rm_watch again", SYS_inotify_rm_watch, in, 1);
  r.sys("inotify_init1 bad flags", SYS_inotify_init1, 0x1);
}

const Case kCases[] = {
    {"pipes", pipes},
    {"polling", polling},
    {"event_descriptors", event_descriptors},
    {"timer_descriptors", timer_descriptors},
    {"inotify", inotify},
};
const bool kRegistered = register_cases(Group::kPipes, kCases);

}  // namespace
}  // namespace flexsc::test::diff
