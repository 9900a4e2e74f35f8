/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The libssh client transport. The TCP connection is made here (so its
 * errno reaches the caller: connection refused, unreachable, timeout), the
 * host key is checked against the pinned fingerprint before anything is
 * sent that depends on trusting it, then the client authenticates with an
 * ed25519 key and execs the remote command on one session channel that
 * lives as long as the transport.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "repl_i.h"
#include "ssh_i.h"

#define CONNECT_TIMEOUT_S 10
#define CIPHERS "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr"
#define HOSTKEYS "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," \
		 "rsa-sha2-512,rsa-sha2-256"
#define IO_CHUNK (256u * 1024)

struct ssh_transport {
	struct repl_transport base;
	ssh_session session;
	ssh_channel channel;
	int fd;                /* ours: libssh does not close an SSH_OPTIONS_FD socket */
};

int repl_ssh_err(ssh_session session, const char *what)
{
	int r = -EIO;

	if (session) {
		switch (ssh_get_error_code(session)) {
		case SSH_REQUEST_DENIED:
			r = -EACCES;
			break;
		case SSH_EINTR:
			r = -EINTR;
			break;
		default:
			r = -EIO;
			break;
		}
		return repl_fail(r, "%s: %s", what, ssh_get_error(session));
	}
	return repl_fail(r, "%s: libssh error", what);
}

/* Keep the tail of the remote's stderr for the user: it says why serve quit. */
static void drain_stderr(struct ssh_transport *s)
{
	char buf[512];
	int n;

	n = ssh_channel_read_nonblocking(s->channel, buf, sizeof(buf) - 1, 1);
	if (n > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		log_debug("replicator: %s stderr: %s", s->base.peer, buf);
		repl_fail(0, "%s: %s", s->base.peer, buf);
	}
}

static ssize_t ssh_read(struct repl_transport *t, void *buf, size_t len)
{
	struct ssh_transport *s = (struct ssh_transport *)t;
	uint32_t n = len > IO_CHUNK ? IO_CHUNK : (uint32_t)len;

	for (;;) {
		int k = ssh_channel_read_timeout(s->channel, buf, n, 0, t->timeout_ms);

		if (k > 0)
			return k;
		if (k == SSH_ERROR)
			return repl_ssh_err(s->session, "cannot read from the ssh channel");
		if (ssh_channel_is_eof(s->channel) || ssh_channel_is_closed(s->channel)) {
			drain_stderr(s);
			return 0;
		}
		if (t->timeout_ms >= 0)
			return -ETIMEDOUT;
	}
}

static int ssh_write(struct repl_transport *t, const void *buf, size_t len)
{
	struct ssh_transport *s = (struct ssh_transport *)t;
	const char *p = buf;

	while (len > 0) {
		uint32_t n = len > IO_CHUNK ? IO_CHUNK : (uint32_t)len;
		int k = ssh_channel_write(s->channel, p, n);

		if (k == SSH_ERROR)
			return repl_ssh_err(s->session, "cannot write to the ssh channel");
		if (k == 0 && (ssh_channel_is_closed(s->channel) || ssh_channel_is_eof(s->channel)))
			return -EPIPE;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

static void ssh_transport_free(struct ssh_transport *s)
{
	if (s->channel) {
		if (ssh_channel_is_open(s->channel)) {
			ssh_channel_send_eof(s->channel);
			ssh_channel_close(s->channel);
		}
		ssh_channel_free(s->channel);
	}
	if (s->session) {
		ssh_disconnect(s->session);
		ssh_free(s->session);
	}
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static int ssh_close(struct repl_transport *t)
{
	ssh_transport_free((struct ssh_transport *)t);
	return 0;
}

static const struct repl_transport_ops ssh_ops = {
	.read = ssh_read,
	.write = ssh_write,
	.close = ssh_close,
};

/* Non-blocking connect with a timeout, each address in turn. Returns a blocking fd. */
static int tcp_connect(const char *host, uint16_t port, const char *peer)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	char portstr[8];
	int r, last = -EHOSTUNREACH;

	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0)
		return repl_fail(-EHOSTUNREACH, "cannot resolve '%s': %s", host, gai_strerror(r));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(r);
		int fd, one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			last = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			last = -errno;
			close(fd);
			continue;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		r = poll(&pfd, 1, CONNECT_TIMEOUT_S * 1000);
		if (r == 0)
			last = -ETIMEDOUT;
		else if (r < 0)
			last = -errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &r, &sl) < 0)
			last = -errno;
		else if (r != 0)
			last = -r;
		else {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			freeaddrinfo(res);
			return fd;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return repl_fail(last, "cannot connect to %s: %s", peer, strerror(-last));
}

static int set_options(ssh_session session, const struct repl_url *url, int fd)
{
	long timeout = CONNECT_TIMEOUT_S * 3;
	unsigned port = url->port;
	bool no = false;

	if (ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_HOST, url->host) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_PORT, &port) < 0 ||
	    (url->user && ssh_options_set(session, SSH_OPTIONS_USER, url->user) < 0) ||
	    ssh_options_set(session, SSH_OPTIONS_FD, &fd) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_CIPHERS_C_S, CIPHERS) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_CIPHERS_S_C, CIPHERS) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_COMPRESSION, "no") < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_HOSTKEYS, HOSTKEYS) < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
	    ssh_options_set(session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0)
		return repl_ssh_err(session, "cannot configure the ssh session");
	return 0;
}

static int check_host_key(ssh_session session, const char *peer, const char *pinned,
			  char **ret_fp)
{
	ssh_key key = NULL;
	char *fp = NULL;
	int r;

	if (ssh_get_server_publickey(session, &key) != SSH_OK)
		return repl_ssh_err(session, "cannot get the server's host key");
	r = repl_key_fingerprint(key, &fp);
	ssh_key_free(key);
	if (r < 0)
		return r;
	if (pinned && strcmp(fp, pinned) != 0) {
		r = repl_fail(-EKEYREJECTED, "host key mismatch for %s: expected %s, got %s",
			      peer, pinned, fp);
		free(fp);
		return r;
	}
	*ret_fp = fp;
	return 0;
}

static int authenticate(ssh_session session, const char *peer, const char *identity_file)
{
	ssh_key priv = NULL;
	int r;

	r = ssh_pki_import_privkey_file(identity_file, NULL, NULL, NULL, &priv);
	if (r == SSH_EOF)
		return repl_fail(-ENOENT, "cannot read identity '%s': %s", identity_file,
				 strerror(ENOENT));
	if (r != SSH_OK)
		return repl_fail(-EINVAL, "cannot read identity '%s': not a private key", identity_file);
	r = ssh_userauth_publickey(session, NULL, priv);
	ssh_key_free(priv);
	if (r == SSH_AUTH_SUCCESS)
		return 0;
	if (r == SSH_AUTH_ERROR)
		return repl_ssh_err(session, "authentication failed");
	return repl_fail(-EACCES, "authentication failed for %s: the server refused key '%s'",
			 peer, identity_file);
}

int repl_ssh_connect(const struct repl_url *url, const char *identity_file,
		     const char *pinned_fingerprint, const char *remote_command,
		     struct repl_transport **ret, char **ret_fingerprint)
{
	struct ssh_transport *s;
	char peer[280], *fp = NULL;
	int fd, r;

	if (!url || url->scheme != REPL_URL_SSH || !url->host)
		return repl_fail(-EINVAL, "not an ssh url");
	if (pinned_fingerprint && strncmp(pinned_fingerprint, "SHA256:", 7) != 0)
		return repl_fail(-EINVAL, "invalid host key fingerprint '%s' (expected SHA256:...)",
				 pinned_fingerprint);
	snprintf(peer, sizeof(peer), strchr(url->host, ':') ? "[%s]:%u" : "%s:%u", url->host,
		 url->port);

	fd = tcp_connect(url->host, url->port, peer);
	if (fd < 0)
		return fd;
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->base.ops = &ssh_ops;
	s->base.timeout_ms = -1;
	s->fd = fd;
	snprintf(s->base.peer, sizeof(s->base.peer), "ssh://%s%s%s", url->user ? url->user : "",
		 url->user ? "@" : "", peer);
	s->session = ssh_new();
	if (!s->session) {
		r = -ENOMEM;
		goto fail;
	}
	r = set_options(s->session, url, fd);
	if (r < 0)
		goto fail;
	if (ssh_connect(s->session) != SSH_OK) {
		r = repl_ssh_err(s->session, "ssh handshake failed");
		goto fail;
	}
	r = check_host_key(s->session, peer, pinned_fingerprint, &fp);
	if (r < 0)
		goto fail;
	r = authenticate(s->session, s->base.peer, identity_file);
	if (r < 0)
		goto fail;
	s->channel = ssh_channel_new(s->session);
	if (!s->channel) {
		r = -ENOMEM;
		goto fail;
	}
	if (ssh_channel_open_session(s->channel) != SSH_OK) {
		r = repl_ssh_err(s->session, "cannot open an ssh channel");
		goto fail;
	}
	if (ssh_channel_request_exec(s->channel, remote_command) != SSH_OK) {
		r = repl_ssh_err(s->session, "cannot start the remote command");
		goto fail;
	}
	log_debug("replicator: connected to %s, host key %s, cipher %s", s->base.peer, fp,
		  ssh_get_cipher_in(s->session));
	if (ret_fingerprint)
		*ret_fingerprint = fp;
	else
		free(fp);
	*ret = &s->base;
	return 0;
fail:
	free(fp);
	ssh_transport_free(s);
	return r;
}

char *repl_ssh_serve_command(const char *replica_path)
{
	/* POSIX shell single quotes: ' becomes '\'' */
	size_t n = strlen(replica_path), quotes = 0;
	const char *prefix = "mirrorfs serve --replica '";
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		quotes += replica_path[i] == '\'';
	s = malloc(strlen(prefix) + n + 3 * quotes + 2);
	if (!s)
		return NULL;
	p = stpcpy(s, prefix);
	for (size_t i = 0; i < n; i++) {
		if (replica_path[i] == '\'')
			p = stpcpy(p, "'\\''");
		else
			*p++ = replica_path[i];
	}
	*p++ = '\'';
	*p = '\0';
	return s;
}
