/* SPDX-License-Identifier: MIT */
/*
 * posix.h - the usual server calls, fiber-aware, with libc's conventions:
 * -1 and errno on failure, so ordinary blocking code runs unchanged inside
 * fibers (<flexsc/fiber.hpp>).
 *
 * On a fiber, a call that would block on a socket, pipe or other pollable
 * descriptor parks the fiber until epoll reports the descriptor ready, then
 * tries again; other calls post-and-switch.  A descriptor the program made
 * O_NONBLOCK still gives EAGAIN.  On a plain thread each call behaves as
 * libc's does, through flexsc_syscall().
 *
 * What each call knows about a descriptor (its kind, O_NONBLOCK) is cached
 * and forgotten by flexsc_posix_close(), flexsc_posix_dup2/3() and
 * flexsc_posix_fcntl(F_SETFL): a descriptor the fibers wait on should be
 * closed and reconfigured through these, not behind their back.
 */
#ifndef FLEXSC_POSIX_H
#define FLEXSC_POSIX_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

ssize_t flexsc_posix_read(int fd, void *buf, size_t count);
ssize_t flexsc_posix_write(int fd, const void *buf, size_t count);
ssize_t flexsc_posix_pread(int fd, void *buf, size_t count, off_t offset);
ssize_t flexsc_posix_pwrite(int fd, const void *buf, size_t count, off_t offset);
ssize_t flexsc_posix_recv(int fd, void *buf, size_t len, int flags);
ssize_t flexsc_posix_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
			      socklen_t *fromlen);
ssize_t flexsc_posix_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t flexsc_posix_send(int fd, const void *buf, size_t len, int flags);
ssize_t flexsc_posix_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
			    socklen_t tolen);
ssize_t flexsc_posix_sendmsg(int fd, const struct msghdr *msg, int flags);
int flexsc_posix_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
int flexsc_posix_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int flexsc_posix_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
int flexsc_posix_socket(int domain, int type, int protocol);
int flexsc_posix_pipe2(int fds[2], int flags);
int flexsc_posix_open(const char *path, int flags, ... /* mode_t mode */);
int flexsc_posix_openat(int dirfd, const char *path, int flags, ... /* mode_t mode */);
int flexsc_posix_close(int fd);
int flexsc_posix_dup2(int oldfd, int newfd);
int flexsc_posix_dup3(int oldfd, int newfd, int flags);
int flexsc_posix_fcntl(int fd, int cmd, ... /* long arg */);
int flexsc_posix_shutdown(int fd, int how);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* FLEXSC_POSIX_H */
