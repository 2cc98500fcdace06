// Sockets: Unix stream and datagram, TCP and UDP on the loopback.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "differential.h"

namespace flexsc::test::diff {
namespace {

void unix_sockets(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  long n = r.sys("recvfrom fixture pair", SYS_recvfrom, f.us0, buf, sizeof buf, 0, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  int sv[2] = {-1, -1};
  r.sys("socketpair STREAM|CLOEXEC", SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  r.log("socketpair fds", fmt("%d %d", sv[0], sv[1]));
  r.sys("sendto", SYS_sendto, sv[0], "hi", 2, 0, nullptr, 0);
  n = r.sys("recvfrom DONTWAIT", SYS_recvfrom, sv[1], buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  r.sys("recvfrom empty DONTWAIT", SYS_recvfrom, sv[1], buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
  int val = 0;
  socklen_t len = sizeof val;
  r.sys("getsockopt SO_TYPE", SYS_getsockopt, sv[0], SOL_SOCKET, SO_TYPE, &val, &len);
  r.log("SO_TYPE", fmt("%d len=%u", val, len));
  ucred cred{};
  len = sizeof cred;
  r.sys("getsockopt SO_PEERCRED", SYS_getsockopt, sv[0], SOL_SOCKET, SO_PEERCRED, &cred, &len);
  r.log("SO_PEERCRED", "pid=" + f.pid_name(cred.pid) + fmt(" uid=%u gid=%u len=%u", cred.uid, cred.gid, len));
  val = 65536;
  r.sys("setsockopt SO_SNDBUF", SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &val, sizeof val);
  len = sizeof val;
  r.sys("getsockopt SO_SNDBUF", SYS_getsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &val, &len);
  r.log("SO_SNDBUF", std::to_string(val));
  r.sys("setsockopt bad option", SYS_setsockopt, sv[0], SOL_SOCKET, 9999, &val, sizeof val);
  r.sys("setsockopt short optlen", SYS_setsockopt, sv[0], SOL_SOCKET, SO_SNDBUF, &val, 1);
  // Pass a descriptor.
  char data = 'F';
  iovec iov{&data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  const int passed = static_cast<int>(f.fd_a);
  std::memcpy(CMSG_DATA(cm), &passed, sizeof passed);
  r.sys("sendmsg SCM_RIGHTS", SYS_sendmsg, sv[0], &msg, 0);
  char got = 0;
  iovec riov{&got, 1};
  alignas(cmsghdr) char rcontrol[CMSG_SPACE(sizeof(int))] = {};
  msghdr rmsg{};
  rmsg.msg_iov = &riov;
  rmsg.msg_iovlen = 1;
  rmsg.msg_control = rcontrol;
  rmsg.msg_controllen = sizeof rcontrol;
  r.sys("recvmsg CMSG_CLOEXEC", SYS_recvmsg, sv[1], &rmsg, MSG_CMSG_CLOEXEC);
  int received = -1;
  if (cmsghdr* c = CMSG_FIRSTHDR(&rmsg); c && c->cmsg_type == SCM_RIGHTS)
    std::memcpy(&received, CMSG_DATA(c), sizeof received);
  char target[256];
  const std::string link = "/proc/self/fd/" + std::to_string(received);
  const long tl = sc(SYS_readlink, link.c_str(), target, sizeof target);
  r.log("received", fmt("data=%c fd=%d flags=%#x controllen=%zu -> ", got, received, rmsg.msg_flags,
                        static_cast<size_t>(rmsg.msg_controllen)) +
                        (tl > 0 ? f.path(std::string(target, static_cast<size_t>(tl))) : ret_str(tl)));
  sockaddr_un un{};
  len = sizeof un;
  r.sys("getsockname unnamed", SYS_getsockname, sv[0], &un, &len);
  r.log("getsockname", f.addr(&un, len));
  r.sys("shutdown SHUT_WR", SYS_shutdown, sv[0], SHUT_WR);
  r.sys("recvfrom after peer shutdown", SYS_recvfrom, sv[1], buf, sizeof buf, 0, nullptr, nullptr);
  r.sys("sendto after SHUT_WR (MSG_NOSIGNAL)", SYS_sendto, sv[0], "x", 1, MSG_NOSIGNAL, nullptr, 0);
  r.sys("shutdown bad how", SYS_shutdown, sv[0], 99);
  // Datagrams through a named socket in the fixture directory.
  const long d = r.sys("socket UNIX DGRAM", SYS_socket, AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un name{};
  name.sun_family = AF_UNIX;
  std::strcpy(name.sun_path, "sock");
  const socklen_t name_len = offsetof(sockaddr_un, sun_path) + 5;
  r.sys("bind sock", SYS_bind, d, &name, name_len);
  r.sys("bind existing path", SYS_bind, sv[1], &name, name_len);
  const long c = r.sys("socket UNIX DGRAM client", SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  r.sys("sendto sock", SYS_sendto, c, "dgram", 5, 0, &name, name_len);
  sockaddr_un from{};
  len = sizeof from;
  n = r.sys("recvfrom with address", SYS_recvfrom, d, buf, sizeof buf, 0, &from, &len);
  r.log("recvfrom", contents(buf, n) + " from " + f.addr(&from, len));
  r.sys("connect client", SYS_connect, c, &name, name_len);
  len = sizeof from;
  r.sys("getpeername client", SYS_getpeername, c, &from, &len);
  r.log("getpeername", f.addr(&from, len));
  std::strcpy(name.sun_path, "missing");
  r.sys("connect missing path", SYS_connect, c, &name, offsetof(sockaddr_un, sun_path) + 8);
  r.sys("socket bad domain", SYS_socket, 9999, SOCK_STREAM, 0);
  r.sys("socket bad type", SYS_socket, AF_UNIX, 9999, 0);
  r.sys("socket bad protocol", SYS_socket, AF_INET, SOCK_STREAM, 9999);
  r.sys("getsockopt on a file", SYS_getsockopt, f.fd_a, SOL_SOCKET, SO_TYPE, &val, &len);
  r.sys("sendto fixture pair", SYS_sendto, f.us1, "more", 4, 0, nullptr, 0);
  r.sys("recvfrom bad buffer", SYS_recvfrom, f.us0, kBadPtr, 4, MSG_DONTWAIT, nullptr, nullptr);
}

void tcp_loopback(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  const long acc = r.sys("accept4 the pending connection", SYS_accept4, f.lfd, &peer, &len, SOCK_CLOEXEC);
  r.log("accept4 peer", f.addr(&peer, len));
  len = sizeof peer;
  r.sys("getsockname accepted", SYS_getsockname, acc, &peer, &len);
  r.log("getsockname", f.addr(&peer, len));
  len = sizeof peer;
  r.sys("getpeername accepted", SYS_getpeername, acc, &peer, &len);
  r.log("getpeername", f.addr(&peer, len));
  r.sys("F_SETFL listener O_NONBLOCK", SYS_fcntl, f.lfd, F_SETFL, O_NONBLOCK);
  r.sys("accept4 empty queue", SYS_accept4, f.lfd, nullptr, nullptr, 0);
  r.sys("accept4 bad flags", SYS_accept4, f.lfd, nullptr, nullptr, 0x1);
  r.sys("accept on a connected socket", SYS_accept, f.cfd, nullptr, nullptr);
  long n = r.sys("recvfrom established", SYS_recvfrom, f.sfd, buf, sizeof buf, 0, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  r.sys("sendto accepted -> pending client", SYS_sendto, acc, "hello", 5, 0, nullptr, 0);
  char a3[3] = {}, a2[2] = {};
  iovec iov[2] = {{a3, 3}, {a2, 2}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  r.sys("recvmsg WAITALL into 3+2", SYS_recvmsg, f.pfd, &msg, MSG_WAITALL);
  r.log("recvmsg data", quote(a3, 3) + quote(a2, 2) + fmt(" flags=%#x", msg.msg_flags));
  iovec out[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
  msghdr smsg{};
  smsg.msg_iov = out;
  smsg.msg_iovlen = 2;
  r.sys("sendmsg 2+2", SYS_sendmsg, f.pfd, &smsg, 0);
  n = r.sys("recvfrom MSG_PEEK|WAITALL", SYS_recvfrom, acc, buf, 4, MSG_PEEK | MSG_WAITALL, nullptr, nullptr);
  r.log("peek data", contents(buf, n));
  n = r.sys("recvfrom WAITALL", SYS_recvfrom, acc, buf, 4, MSG_WAITALL, nullptr, nullptr);
  r.log("recvfrom data", contents(buf, n));
  // A new connection.
  const long s = r.sys("socket INET STREAM", SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in listen_addr = loopback(f.port_listen);
  r.sys("connect to the listener", SYS_connect, s, &listen_addr, sizeof listen_addr);
  r.sys("connect again", SYS_connect, s, &listen_addr, sizeof listen_addr);
  pollfd p{static_cast<int>(f.lfd), POLLIN, 0};
  r.sys("poll listener", SYS_poll, &p, 1, 5000);
  r.log("poll revents", fmt("%#x", p.revents));
  const long acc2 = r.sys("accept (no address)", SYS_accept, f.lfd, nullptr, nullptr);
  sockaddr_in mine{}, theirs{};
  socklen_t l1 = sizeof mine, l2 = sizeof theirs;
  sc(SYS_getsockname, s, &mine, &l1);
  sc(SYS_getpeername, acc2, &theirs, &l2);
  r.log("accepted peer is the connecting socket", yes(acc2 >= 0 && mine.sin_port == theirs.sin_port));
  int one = 1;
  r.sys("setsockopt TCP_NODELAY", SYS_setsockopt, s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int val = -1;
  len = sizeof val;
  r.sys("getsockopt TCP_NODELAY", SYS_getsockopt, s, IPPROTO_TCP, TCP_NODELAY, &val, &len);
  r.log("TCP_NODELAY", fmt("%d len=%u", val, len));
  len = sizeof val;
  r.sys("getsockopt SO_ERROR", SYS_getsockopt, s, SOL_SOCKET, SO_ERROR, &val, &len);
  r.log("SO_ERROR", std::to_string(val));
  r.sys("listen on a connected socket", SYS_listen, s, 4);
  const long t = r.sys("socket for errors", SYS_socket, AF_INET, SOCK_STREAM, 0);
  r.sys("bind the listener's port", SYS_bind, t, &listen_addr, sizeof listen_addr);
  r.sys("bind bad length", SYS_bind, t, &listen_addr, 3);
  const sockaddr_in dead = loopback(f.port_dead);
  r.sys("connect to a closed port", SYS_connect, t, &dead, sizeof dead);
  r.sys("getpeername unconnected", SYS_getpeername, f.lfd, &peer, &len);
  r.sys("shutdown SHUT_WR established client", SYS_shutdown, f.cfd, SHUT_WR);
  r.sys("recvfrom at FIN", SYS_recvfrom, f.sfd, buf, sizeof buf, 0, nullptr, nullptr);
  r.sys("sendto after SHUT_WR (MSG_NOSIGNAL)", SYS_sendto, f.cfd, "x", 1, MSG_NOSIGNAL, nullptr, 0);
  r.sys("sendto 'still' back (stays queued)", SYS_sendto, acc2, "still", 5, 0, nullptr, 0);
  pollfd q{static_cast<int>(s), POLLIN, 0};
  r.sys("poll for it", SYS_poll, &q, 1, 5000);
}

void udp_loopback(Run& r) {
  Fixture& f = r.fx;
  char buf[64] = {};
  const long u = r.sys("socket INET DGRAM", SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in any = loopback(0);
  r.sys("bind 127.0.0.1:0", SYS_bind, u, &any, sizeof any);
  sockaddr_in mine{};
  socklen_t len = sizeof mine;
  r.sys("getsockname", SYS_getsockname, u, &mine, &len);
  r.log("getsockname", f.addr(&mine, len, SOCK_DGRAM));
  const sockaddr_in to = loopback(f.port_udp);
  r.sys("sendto fixture socket", SYS_sendto, u, "dgram1", 6, 0, &to, sizeof to);
  sockaddr_in from{};
  len = sizeof from;
  long n = r.sys("recvfrom", SYS_recvfrom, f.ufd, buf, sizeof buf, 0, &from, &len);
  r.log("recvfrom", contents(buf, n) + " from " + f.addr(&from, len, SOCK_DGRAM) +
                        " sender-port-ok=" + yes(from.sin_port == mine.sin_port));
  r.sys("recvfrom empty DONTWAIT", SYS_recvfrom, f.ufd, buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr);
  r.sys("sendto no address", SYS_sendto, u, "x", 1, 0, nullptr, 0);
  r.sys("connect", SYS_connect, u, &to, sizeof to);
  mmsghdr msgs[2] = {};
  iovec iov[2] = {{const_cast<char*>("one"), 3}, {const_cast<char*>("three"), 5}};
  msgs[0].msg_hdr.msg_iov = &iov[0];
  msgs[0].msg_hdr.msg_iovlen = 1;
  msgs[1].msg_hdr.msg_iov = &iov[1];
  msgs[1].msg_hdr.msg_iovlen = 1;
  r.sys("sendmmsg 2", SYS_sendmmsg, u, msgs, 2, 0);
  r.log("sendmmsg lengths", fmt("%u %u", msgs[0].msg_len, msgs[1].msg_len));
  char b1[8] = {}, b2[8] = {};
  iovec riov[2] = {{b1, sizeof b1}, {b2, sizeof b2}};
  mmsghdr rmsgs[2] = {};
  rmsgs[0].msg_hdr.msg_iov = &riov[0];
  rmsgs[0].msg_hdr.msg_iovlen = 1;
  rmsgs[1].msg_hdr.msg_iov = &riov[1];
  rmsgs[1].msg_hdr.msg_iovlen = 1;
  r.sys("recvmmsg 2", SYS_recvmmsg, f.ufd, rmsgs, 2, 0, nullptr);
  r.log("recvmmsg", contents(b1, rmsgs[0].msg_len) + contents(b2, rmsgs[1].msg_len));
  r.sys("send (connected) 'left' (stays queued)", SYS_sendto, u, "left", 4, 0, nullptr, 0);
  pollfd p{static_cast<int>(f.ufd), POLLIN, 0};
  r.sys("poll for it", SYS_poll, &p, 1, 5000);
  r.sys("sendto oversized datagram", SYS_sendto, u, g.region, 70000, 0, nullptr, 0);
}

const Case kCases[] = {
    {"unix_sockets", unix_sockets},
    {"tcp_loopback", tcp_loopback},
    {"udp_loopback", udp_loopback},
};
const bool kRegistered = register_cases(Group::kSockets, kCases);

}  // namespace
}  // namespace flexsc::test::diff
