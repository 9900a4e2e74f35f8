/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_UTIL_H
#define MIRRORFS_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_REALTIME in nanoseconds since the epoch. */
int64_t util_now_ns(void);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t util_mono_ns(void);

/*
 * A snapshot or directory-entry name is valid when it is 1..255 bytes,
 * holds no '/' and no NUL, and is not "." or "..".
 * Returns 0, -EINVAL or -ENAMETOOLONG.
 */
int util_check_name(const char *name);

/* Full-length I/O that retries on EINTR and short counts. -errno on error. */
int util_write_all(int fd, const void *buf, size_t len);
int util_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Returns bytes read (short only at EOF) or -errno. */
ssize_t util_read_all(int fd, void *buf, size_t len);
ssize_t util_pread_all(int fd, void *buf, size_t len, off_t off);

/* RFC 4122 version 4 UUID as 36 characters + NUL, from getrandom(). */
int util_uuid_new(char ret[37]);

/*
 * Standard base64 (RFC 4648, with padding). encode: *ret is NUL-terminated,
 * caller frees. decode: strict (no whitespace, correct padding, canonical
 * final bits), *ret holds *ret_len bytes plus a NUL, caller frees;
 * -EINVAL for anything else.
 */
int util_base64_encode(const void *data, size_t len, char **ret);
int util_base64_decode(const char *s, size_t slen, unsigned char **ret, size_t *ret_len);

/* A u64 -> u64 map with open addressing; key 0 cannot be stored. */
struct u64map {
	uint64_t *keys, *vals;
	size_t mask, n;
};
/* Insert or replace; -ENOMEM (the map unchanged) if it cannot grow. */
int u64map_put(struct u64map *m, uint64_t k, uint64_t v);
bool u64map_get(const struct u64map *m, uint64_t k, uint64_t *ret);
void u64map_free(struct u64map *m);

/*
 * opendir() of `name` in `dirfd` ("." for dirfd itself), close-on-exec;
 * `flags` are more open(2) flags (O_NOFOLLOW). -errno on failure.
 */
int util_opendirat(int dirfd, const char *name, int flags, DIR **ret);

/* A growing array of u64. */
struct u64vec {
	uint64_t *v;
	size_t n, cap;
};
/* Append; -ENOMEM (the array unchanged) if it cannot grow. */
int u64vec_push(struct u64vec *a, uint64_t x);
/* Is x in a, whose elements are in ascending order? */
bool u64vec_has_sorted(const struct u64vec *a, uint64_t x);
void u64vec_free(struct u64vec *a);

/* Cleanup helpers (systemd style); use either these or goto out, not both. */
static inline void util_freep(void *p) { free(*(void **)p); }
static inline void util_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_free_ __attribute__((cleanup(util_freep)))
#define _cleanup_close_ __attribute__((cleanup(util_closep)))

#define UTIL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UTIL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define UTIL_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* MIRRORFS_UTIL_H */
