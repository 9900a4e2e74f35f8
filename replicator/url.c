/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Peer URLs: file:///abs/path and ssh://[user@]host[:port]/abs/path.
 * Deliberately small: no percent-decoding, no query or fragment, no
 * relative or home-relative paths. Every rejection says why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "repl_i.h"

void repl_url_release(struct repl_url *u)
{
	if (!u)
		return;
	free(u->user);
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

static bool is_user_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

static bool is_v6_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == ':' || c == '.';
}

static int check_path(const char *url, const char *path)
{
	if (*path == '\0')
		return repl_fail(-EINVAL, "invalid url '%s': missing path", url);
	if (*path != '/')
		return repl_fail(-EINVAL, "invalid url '%s': path '%s' is not absolute", url, path);
	return 0;
}

/* Parse "[user@]host[:port]" in [a, b). */
static int parse_authority(const char *url, const char *a, const char *b, struct repl_url *u)
{
	const char *at = memchr(a, '@', (size_t)(b - a));
	const char *h, *he, *colon = NULL;

	if (at) {
		if (at == a)
			return repl_fail(-EINVAL, "invalid url '%s': empty user name", url);
		for (const char *c = a; c < at; c++)
			if (!is_user_char(*c))
				return repl_fail(-EINVAL, "invalid url '%s': bad character in user name", url);
		if (a[0] == '-')
			return repl_fail(-EINVAL, "invalid url '%s': user name starts with '-'", url);
		u->user = strndup(a, (size_t)(at - a));
		if (!u->user)
			return -ENOMEM;
		a = at + 1;
	}
	if (a < b && *a == '[') {
		he = memchr(a, ']', (size_t)(b - a));
		if (!he)
			return repl_fail(-EINVAL, "invalid url '%s': unterminated '[' in host", url);
		h = a + 1;
		for (const char *c = h; c < he; c++)
			if (!is_v6_char(*c))
				return repl_fail(-EINVAL, "invalid url '%s': bad IPv6 address", url);
		if (he + 1 < b) {
			if (he[1] != ':')
				return repl_fail(-EINVAL, "invalid url '%s': junk after ']'", url);
			colon = he + 1;
		}
	} else {
		h = a;
		colon = memchr(a, ':', (size_t)(b - a));
		he = colon ? colon : b;
		for (const char *c = h; c < he; c++)
			if (!is_host_char(*c))
				return repl_fail(-EINVAL, "invalid url '%s': bad character in host", url);
		if (he > h && *h == '-')
			return repl_fail(-EINVAL, "invalid url '%s': host starts with '-'", url);
	}
	if (he == h)
		return repl_fail(-EINVAL, "invalid url '%s': missing host", url);
	u->host = strndup(h, (size_t)(he - h));
	if (!u->host)
		return -ENOMEM;
	u->port = 22;
	if (colon) {
		unsigned long port = 0;
		const char *c = colon + 1;

		if (c == b)
			return repl_fail(-EINVAL, "invalid url '%s': empty port", url);
		for (; c < b; c++) {
			if (*c < '0' || *c > '9' || port > 65535)
				return repl_fail(-EINVAL, "invalid url '%s': bad port", url);
			port = port * 10 + (unsigned long)(*c - '0');
		}
		if (port == 0 || port > 65535)
			return repl_fail(-EINVAL, "invalid url '%s': port %lu out of range (1..65535)",
					 url, port);
		u->port = (uint16_t)port;
	}
	return 0;
}

int repl_url_parse(const char *s, struct repl_url *ret)
{
	struct repl_url u = { 0 };
	const char *rest, *slash;
	int r;

	if (!s || !*s)
		return repl_fail(-EINVAL, "empty url");
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return repl_fail(-EINVAL, "invalid url: control character");

	if (strncmp(s, "file://", 7) == 0) {
		u.scheme = REPL_URL_FILE;
		rest = s + 7;
		if (strncmp(rest, "localhost/", 10) == 0)
			rest += 9;
		else if (*rest != '/' && *rest != '\0') {
			slash = strchr(rest, '/');
			return repl_fail(-EINVAL, "invalid url '%s': file urls take an absolute path "
					 "(file:///path), not host '%.*s'", s,
					 (int)(slash ? slash - rest : (ptrdiff_t)strlen(rest)), rest);
		}
		r = check_path(s, rest);
		if (r < 0)
			return r;
	} else if (strncmp(s, "ssh://", 6) == 0) {
		u.scheme = REPL_URL_SSH;
		rest = s + 6;
		slash = strchr(rest, '/');
		r = parse_authority(s, rest, slash ? slash : rest + strlen(rest), &u);
		if (r < 0)
			goto fail;
		rest = slash ? slash : "";
		r = check_path(s, rest);
		if (r < 0)
			goto fail;
	} else {
		const char *colon = strstr(s, "://");
		return repl_fail(-EINVAL, "invalid url '%s': %s%.*s%s (use ssh:// or file://)", s,
				 colon ? "unsupported scheme '" : "not a url",
				 colon ? (int)(colon - s) : 0, s, colon ? "'" : "");
	}
	if (strchr(rest, '?') || strchr(rest, '#')) {
		r = repl_fail(-EINVAL, "invalid url '%s': queries and fragments are not supported", s);
		goto fail;
	}
	u.path = strdup(rest);
	if (!u.path) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = u;
	return 0;
fail:
	repl_url_release(&u);
	return r;
}

char *repl_url_format(const struct repl_url *u)
{
	char *s = NULL;
	bool v6;

	if (u->scheme == REPL_URL_FILE) {
		if (asprintf(&s, "file://%s", u->path) < 0)
			return NULL;
		return s;
	}
	v6 = u->host && strchr(u->host, ':');
	if (asprintf(&s, "ssh://%s%s%s%s%s:%u%s", u->user ? u->user : "", u->user ? "@" : "",
		     v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, u->path) < 0)
		return NULL;
	return s;
}
