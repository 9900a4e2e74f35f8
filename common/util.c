/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "mirrorfs/util.h"

int64_t util_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t util_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int util_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EINVAL;
	if (len > 255)
		return -ENAMETOOLONG;
	return 0;
}

int util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
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

int util_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t util_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t util_pread_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int util_uuid_new(char ret[37])
{
	unsigned char b[16];
	ssize_t n;

	n = getrandom(b, sizeof(b), 0);
	if (n != (ssize_t)sizeof(b))
		return n < 0 ? -errno : -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(ret, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int util_base64_encode(const void *data, size_t len, char **ret)
{
	const unsigned char *p = data;
	size_t olen = (len + 2) / 3 * 4;
	char *out = malloc(olen + 1), *o = out;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64_alphabet[(v >> 18) & 63];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	*ret = out;
	return 0;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;

	return p ? (int)(p - b64_alphabet) : -1;
}

int util_base64_decode(const char *s, size_t slen, unsigned char **ret, size_t *ret_len)
{
	unsigned char *out, *o;
	size_t pad = 0;

	if (slen == 0 || slen % 4)
		return -EINVAL;
	if (s[slen - 1] == '=')
		pad++;
	if (s[slen - 2] == '=')
		pad++;
	out = malloc(slen / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	for (size_t i = 0; i < slen; i += 4) {
		bool last = i + 4 == slen;
		int a = b64_value(s[i]), b = b64_value(s[i + 1]);
		int c = last && pad == 2 ? 0 : b64_value(s[i + 2]);
		int d = last && pad >= 1 ? 0 : b64_value(s[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c < 0 || d < 0)
			goto bad;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		/* the bits padding leaves out must be zero (one encoding per input) */
		if (last && ((pad == 2 && (v & 0xffff)) || (pad == 1 && (v & 0xff))))
			goto bad;
		*o++ = (unsigned char)(v >> 16);
		if (!(last && pad == 2))
			*o++ = (unsigned char)(v >> 8);
		if (!(last && pad >= 1))
			*o++ = (unsigned char)v;
	}
	*o = '\0';
	*ret = out;
	*ret_len = (size_t)(o - out);
	return 0;
bad:
	free(out);
	return -EINVAL;
}

int u64map_put(struct u64map *m, uint64_t k, uint64_t v)
{
	if ((m->n + 1) * 2 > (m->mask ? m->mask + 1 : 0)) {
		size_t ncap = m->mask ? (m->mask + 1) * 2 : 64;
		uint64_t *nk = calloc(ncap, sizeof(*nk)), *nv = calloc(ncap, sizeof(*nv));

		if (!nk || !nv) {
			free(nk);
			free(nv);
			return -ENOMEM;
		}
		for (size_t i = 0; m->mask && i <= m->mask; i++) {
			size_t h;

			if (!m->keys[i])
				continue;
			h = (m->keys[i] * 0x9E3779B97F4A7C15ULL) & (ncap - 1);
			while (nk[h])
				h = (h + 1) & (ncap - 1);
			nk[h] = m->keys[i];
			nv[h] = m->vals[i];
		}
		free(m->keys);
		free(m->vals);
		m->keys = nk;
		m->vals = nv;
		m->mask = ncap - 1;
	}
	for (size_t h = (k * 0x9E3779B97F4A7C15ULL) & m->mask;; h = (h + 1) & m->mask) {
		if (m->keys[h] == k) {
			m->vals[h] = v;
			return 0;
		}
		if (!m->keys[h]) {
			m->keys[h] = k;
			m->vals[h] = v;
			m->n++;
			return 0;
		}
	}
}

bool u64map_get(const struct u64map *m, uint64_t k, uint64_t *ret)
{
	if (!m->mask)
		return false;
	for (size_t h = (k * 0x9E3779B97F4A7C15ULL) & m->mask;; h = (h + 1) & m->mask) {
		if (m->keys[h] == k) {
			if (ret)
				*ret = m->vals[h];
			return true;
		}
		if (!m->keys[h])
			return false;
	}
}

void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

int util_opendirat(int dirfd, const char *name, int flags, DIR **ret)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags), r;

	if (fd < 0)
		return -errno;
	*ret = fdopendir(fd);
	if (!*ret) {
		r = -errno;
		close(fd);
		return r;
	}
	return 0;
}

int u64vec_push(struct u64vec *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		uint64_t *nv = realloc(a->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = x;
	return 0;
}

bool u64vec_has_sorted(const struct u64vec *a, uint64_t x)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n && a->v[lo] == x;
}

void u64vec_free(struct u64vec *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}
