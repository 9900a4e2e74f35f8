/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Local transports: a pair of file descriptors (pipes or a socket), a
 * spawned child (`mirrorfs serve` for file:// URLs) over a socketpair, and
 * an in-memory transport for tests.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "repl_i.h"

extern char **environ;

int repl_transport_close(struct repl_transport *t)
{
	if (!t)
		return 0;
	return t->ops->close(t);
}

ssize_t repl_transport_read_full(struct repl_transport *t, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t k = repl_transport_read(t, (char *)buf + done, len - done);

		if (k < 0)
			return k;
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

/* ---- file descriptors ------------------------------------------------------ */

struct fd_transport {
	struct repl_transport base;
	int in_fd, out_fd;
	bool own;
	pid_t child;           /* > 0: spawned, reaped by close */
};

/* Wait until fd is ready for `events`, honouring the transport timeout. */
static int wait_fd(struct fd_transport *f, int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	if (f->base.timeout_ms < 0)
		return 0;
	do
		n = poll(&pfd, 1, f->base.timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return 0;
}

static ssize_t fd_read(struct repl_transport *t, void *buf, size_t len)
{
	struct fd_transport *f = (struct fd_transport *)t;

	for (;;) {
		int r = wait_fd(f, f->in_fd, POLLIN);
		if (r < 0)
			return r;
		ssize_t n = read(f->in_fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

static int fd_write(struct repl_transport *t, const void *buf, size_t len)
{
	struct fd_transport *f = (struct fd_transport *)t;
	const char *p = buf;
	bool sock = true;

	while (len > 0) {
		int r = wait_fd(f, f->out_fd, POLLOUT);
		if (r < 0)
			return r;
		/* send(MSG_NOSIGNAL) so a dead peer is -EPIPE, not a SIGPIPE. */
		ssize_t n = sock ? send(f->out_fd, p, len, MSG_NOSIGNAL) : write(f->out_fd, p, len);
		if (n < 0 && errno == ENOTSOCK && sock) {
			sock = false;
			continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_close(struct repl_transport *t)
{
	struct fd_transport *f = (struct fd_transport *)t;
	int r = 0;

	if (f->own) {
		if (f->out_fd != f->in_fd && f->out_fd >= 0)
			close(f->out_fd);
		else if (f->child > 0)
			shutdown(f->out_fd, SHUT_WR);   /* the child sees end of input */
		if (f->in_fd >= 0)
			close(f->in_fd);
	}
	if (f->child > 0) {
		int status;
		pid_t p;

		do
			p = waitpid(f->child, &status, 0);
		while (p < 0 && errno == EINTR);
		if (p < 0) {
			r = -errno;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			log_debug("replicator: %s exited with status 0x%x", f->base.peer, status);
			r = repl_fail(-ECHILD, "%s failed (%s %d)", f->base.peer,
				      WIFEXITED(status) ? "exit status" : "signal",
				      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		}
	}
	free(f);
	return r;
}

static const struct repl_transport_ops fd_ops = {
	.read = fd_read,
	.write = fd_write,
	.close = fd_close,
};

static int fd_new(int in_fd, int out_fd, bool own, struct fd_transport **ret)
{
	struct fd_transport *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->base.ops = &fd_ops;
	f->base.timeout_ms = -1;
	snprintf(f->base.peer, sizeof(f->base.peer), "fd %d/%d", in_fd, out_fd);
	f->in_fd = in_fd;
	f->out_fd = out_fd;
	f->own = own;
	*ret = f;
	return 0;
}

int repl_transport_fd_new(int in_fd, int out_fd, bool take_ownership,
			  struct repl_transport **ret)
{
	struct fd_transport *f;
	int r;

	if (in_fd < 0 || out_fd < 0)
		return repl_fail(-EBADF, "invalid file descriptor");
	r = fd_new(in_fd, out_fd, take_ownership, &f);
	if (r < 0)
		return r;
	*ret = &f->base;
	return 0;
}

int repl_transport_spawn(char *const argv[], struct repl_transport **ret)
{
	posix_spawn_file_actions_t fa;
	struct fd_transport *f;
	int sv[2], r;
	pid_t pid;

	if (!argv || !argv[0])
		return repl_fail(-EINVAL, "no command to run");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return repl_fail(-errno, "cannot create a socket pair: %m");
	r = -posix_spawn_file_actions_init(&fa);
	if (r < 0) {
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	/* dup2 clears close-on-exec on the child's 0 and 1; sv[] stay CLOEXEC. */
	r = -posix_spawn_file_actions_adddup2(&fa, sv[1], STDIN_FILENO);
	if (r == 0)
		r = -posix_spawn_file_actions_adddup2(&fa, sv[1], STDOUT_FILENO);
	if (r == 0)
		r = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return repl_fail(r, "cannot run '%s': %s", argv[0], strerror(-r));
	}
	r = fd_new(sv[0], sv[0], true, &f);
	if (r < 0) {
		close(sv[0]);
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return r;
	}
	f->child = pid;
	snprintf(f->base.peer, sizeof(f->base.peer), "'%s' (pid %d)", argv[0], (int)pid);
	*ret = &f->base;
	return 0;
}

/* ---- memory -------------------------------------------------------------------- */

struct mem_transport {
	struct repl_transport base;
	uint8_t *in;
	size_t in_len, in_pos;
	uint8_t *out;
	size_t out_len, out_cap;
};

static ssize_t mem_read(struct repl_transport *t, void *buf, size_t len)
{
	struct mem_transport *m = (struct mem_transport *)t;
	size_t n = m->in_len - m->in_pos;

	if (n > len)
		n = len;
	if (n)
		memcpy(buf, m->in + m->in_pos, n);
	m->in_pos += n;
	return (ssize_t)n;
}

static int mem_write(struct repl_transport *t, const void *buf, size_t len)
{
	struct mem_transport *m = (struct mem_transport *)t;

	if (m->out_cap - m->out_len < len) {
		size_t cap = m->out_cap ? m->out_cap : 4096;
		uint8_t *p;

		while (cap - m->out_len < len)
			cap *= 2;
		p = realloc(m->out, cap);
		if (!p)
			return -ENOMEM;
		m->out = p;
		m->out_cap = cap;
	}
	memcpy(m->out + m->out_len, buf, len);
	m->out_len += len;
	return 0;
}

static int mem_close(struct repl_transport *t)
{
	struct mem_transport *m = (struct mem_transport *)t;

	free(m->in);
	free(m->out);
	free(m);
	return 0;
}

static const struct repl_transport_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.close = mem_close,
};

int repl_transport_mem_new(const void *in, size_t in_len, struct repl_transport **ret)
{
	struct mem_transport *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->base.ops = &mem_ops;
	m->base.timeout_ms = -1;
	snprintf(m->base.peer, sizeof(m->base.peer), "memory");
	if (in_len) {
		m->in = malloc(in_len);
		if (!m->in) {
			free(m);
			return -ENOMEM;
		}
		memcpy(m->in, in, in_len);
		m->in_len = in_len;
	}
	*ret = &m->base;
	return 0;
}

void repl_transport_mem_output(struct repl_transport *t, const void **ret_buf, size_t *ret_len)
{
	struct mem_transport *m = (struct mem_transport *)t;

	assert(t->ops == &mem_ops);
	*ret_buf = m->out;
	*ret_len = m->out_len;
}
