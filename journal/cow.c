/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copy-on-write preservation for snapshots (DESIGN §4, docs/SNAPSHOTS.md).
 *
 * An object is "seen" by a snapshot when its jino is below the watermark of
 * the newest existing snapshot (jinos are handed out under mut_lock shared,
 * snapshots are taken under mut_lock exclusive, so every object born before
 * a snapshot has a smaller jino). Only seen objects pay anything here.
 *
 * Data: before the first overwrite of a chunk in an interval, its old bytes
 * are copied into BACKING/.mirrorfs/cow/<jino>.<interval> at the same offset
 * (holes stay holes), then a cow_chunk row is committed, then the caller's
 * syscall runs. Attributes and xattrs likewise go to cow_attr. A file whose
 * last link goes is hard-linked into BACKING/.mirrorfs/orphans/<jino>.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"
#include "cow_i.h"

#define CHUNK ((off_t)JOURNAL_CHUNK_SIZE)

void cow_procpath(char buf[64], int fd)
{
	snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

void cow_store_name(char buf[COW_STORE_NAME_MAX], uint64_t ino, uint64_t interval)
{
	snprintf(buf, COW_STORE_NAME_MAX, "%" PRIu64 ".%" PRIu64, ino, interval);
}

pthread_rwlock_t *cow_stripe(struct journal *j, uint64_t ino)
{
	return &j->cow_stripe[(ino * 0x9E3779B97F4A7C15ULL) >> 58];
}

static bool cow_seen(struct journal *j, const struct jobj *o)
{
	return o->ino < atomic_load_explicit(&j->cow_watermark, memory_order_acquire);
}

/*
 * A preservation of `o` is committed: tell snapshot readers. The journal's
 * count moves first, so a reader that sees the new cow.gen sees it too
 * (db_read_catch_up).
 */
static void cow_count(struct journal *j, struct jobj *o)
{
	atomic_fetch_add(&j->cow_commits, 1);
	atomic_fetch_add(&o->cow.gen, 1);
}

static uint64_t cow_interval(struct journal *j)
{
	return atomic_load(&j->interval);
}

/* ---- inline write transactions ------------------------------------------ */

int jtxn_begin(struct journal *j, bool durable, struct jconn **ret)
{
	int r;

	if (j->flags & JOURNAL_OPEN_READONLY)
		return -EROFS;
	pthread_mutex_lock(&j->wconn_lock);
	r = db_wconn_ensure(j);
	if (r < 0) {
		pthread_mutex_unlock(&j->wconn_lock);
		return r;
	}
	r = db_wconn_sync(j, durable);
	if (r < 0) {
		pthread_mutex_unlock(&j->wconn_lock);
		return r;
	}
	r = db_exec_stmt(j->wconn, ST_BEGIN);
	if (r < 0) {
		pthread_mutex_unlock(&j->wconn_lock);
		return r;
	}
	*ret = j->wconn;
	return 0;
}

int jtxn_end(struct journal *j, struct jconn *c, int r)
{
	int q;

	q = db_exec_stmt(c, r >= 0 ? ST_COMMIT : ST_ROLLBACK);
	if (q < 0 && r >= 0) {
		/* A failed COMMIT leaves the transaction open: roll it back. */
		(void)db_exec_stmt(c, ST_ROLLBACK);
		r = q;
	}
	pthread_mutex_unlock(&j->wconn_lock);
	return r;
}

/* Prepare, bind int64s, step to done, finalize. */
int db_exec_i64(sqlite3 *db, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *s;
	int rc, i;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	for (i = 0; i < n; i++)
		sqlite3_bind_int64(s, i + 1, v[i]);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : journal_err(rc);
}

/* ---- xattrs ------------------------------------------------------------- */

static int buf_put(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		char *nb;

		while (ncap < *len + n)
			ncap *= 2;
		nb = realloc(*buf, ncap);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}

int cow_read_xattrs(int fd, char **ret, size_t *ret_len)
{
	char path[64], *names = NULL, *out = NULL, *val = NULL;
	size_t olen = 0, ocap = 0;
	ssize_t nl, vl;
	int r = 0;

	cow_procpath(path, fd);
	nl = listxattr(path, NULL, 0);
	if (nl < 0) {
		r = (errno == ENOTSUP || errno == EPERM) ? 0 : -errno;
		goto done;
	}
	if (nl == 0)
		goto done;
	names = malloc((size_t)nl);
	if (!names) {
		r = -ENOMEM;
		goto done;
	}
	nl = listxattr(path, names, (size_t)nl);
	if (nl < 0) {
		r = errno == ERANGE ? -EAGAIN : -errno;
		goto done;
	}
	for (char *n = names; n < names + nl; n += strlen(n) + 1) {
		uint32_t l32;

		vl = getxattr(path, n, NULL, 0);
		if (vl < 0) {
			if (errno == ENODATA)
				continue;
			r = -errno;
			goto done;
		}
		free(val);
		val = malloc(vl ? (size_t)vl : 1);
		if (!val) {
			r = -ENOMEM;
			goto done;
		}
		vl = getxattr(path, n, val, (size_t)vl);
		if (vl < 0) {
			r = errno == ERANGE ? -EAGAIN : -errno;
			goto done;
		}
		l32 = (uint32_t)strlen(n);
		if ((r = buf_put(&out, &olen, &ocap, &l32, 4)) < 0 ||
		    (r = buf_put(&out, &olen, &ocap, n, l32)) < 0)
			goto done;
		l32 = (uint32_t)vl;
		if ((r = buf_put(&out, &olen, &ocap, &l32, 4)) < 0 ||
		    (r = buf_put(&out, &olen, &ocap, val, (size_t)vl)) < 0)
			goto done;
		if (olen > COW_XATTR_MAX) {
			r = -E2BIG;
			goto done;
		}
	}
done:
	free(names);
	free(val);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret = out;
	*ret_len = olen;
	return 0;
}

/* ---- attributes ---------------------------------------------------------- */

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* Caller holds the object's stripe lock exclusively. */
static int preserve_attr_locked(struct journal *j, struct jobj *o, int fd, uint64_t interval)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO cow_attr(ino, interval, mode, uid, gid, size, rdev, "
		"blocks, atime, mtime, ctime, xattrs) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
		"?9, ?10, ?11, ?12)";
	struct jconn *c;
	sqlite3_stmt *s = NULL;
	struct stat st;
	char *xa = NULL;
	size_t xlen = 0;
	int r, rc, tries = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	do {
		r = cow_read_xattrs(fd, &xa, &xlen);
	} while (r == -EAGAIN && ++tries < 5);
	if (r < 0)
		return r;
	r = jtxn_begin(j, false, &c);
	if (r < 0)
		goto out;
	rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = jtxn_end(j, c, journal_err(rc));
		goto out;
	}
	sqlite3_bind_int64(s, 1, (int64_t)o->ino);
	sqlite3_bind_int64(s, 2, (int64_t)interval);
	sqlite3_bind_int64(s, 3, st.st_mode);
	sqlite3_bind_int64(s, 4, st.st_uid);
	sqlite3_bind_int64(s, 5, st.st_gid);
	sqlite3_bind_int64(s, 6, st.st_size);
	sqlite3_bind_int64(s, 7, (int64_t)st.st_rdev);
	sqlite3_bind_int64(s, 8, st.st_blocks);
	sqlite3_bind_int64(s, 9, ts_ns(&st.st_atim));
	sqlite3_bind_int64(s, 10, ts_ns(&st.st_mtim));
	sqlite3_bind_int64(s, 11, ts_ns(&st.st_ctim));
	if (xlen)
		sqlite3_bind_blob(s, 12, xa, (int)xlen, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	r = jtxn_end(j, c, rc == SQLITE_DONE ? 0 : journal_err(rc));
out:
	free(xa);
	return r;
}

int cow_before_attr(struct journal *j, struct jobj *o, int fd)
{
	uint64_t tag;
	pthread_rwlock_t *lk;
	int r = 0;

	if (!cow_seen(j, o))
		return 0;
	tag = cow_interval(j) + 1;
	if (atomic_load(&o->cow.attr_tag) == tag)
		return 0;
	lk = cow_stripe(j, o->ino);
	pthread_rwlock_wrlock(lk);
	if (atomic_load(&o->cow.attr_tag) != tag) {
		r = preserve_attr_locked(j, o, fd, tag - 1);
		if (r >= 0) {
			atomic_store(&o->cow.attr_tag, tag);
			cow_count(j, o);
		}
	}
	pthread_rwlock_unlock(lk);
	if (r < 0)
		log_debug("cannot preserve attributes of object %" PRIu64 ": %s", o->ino,
			  strerror(-r));
	return r;
}

/* ---- data chunks ---------------------------------------------------------- */

static bool bit_get(const struct cow_state *c, uint64_t i)
{
	return i / 64 < c->chunk_words && (c->chunk_bits[i / 64] >> (i % 64)) & 1;
}

static int bit_set(struct cow_state *c, uint64_t i)
{
	if (i / 64 >= c->chunk_words) {
		size_t nw = c->chunk_words ? c->chunk_words : 4;
		uint64_t *nb;

		while (nw <= i / 64)
			nw *= 2;
		nb = realloc(c->chunk_bits, nw * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		memset(nb + c->chunk_words, 0, (nw - c->chunk_words) * sizeof(*nb));
		c->chunk_bits = nb;
		c->chunk_words = nw;
	}
	c->chunk_bits[i / 64] |= 1ULL << (i % 64);
	return 0;
}

/*
 * Call fn(arg, v) for the first column of each row of `sql` (its ?1 bound
 * to `ino`, its ?2 to `v2`, if any) on a pooled connection; stops at the
 * first error fn returns.
 */
static int cow_each_row(struct journal *j, const char *sql, uint64_t ino, int64_t v2,
			int (*fn)(void *arg, int64_t v), void *arg)
{
	struct jconn *conn;
	sqlite3_stmt *s;
	int r, rc;

	r = db_conn_get(j, &conn);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(conn->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_conn_put(j, conn);
		return journal_err(rc);
	}
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, v2);
	while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
		r = fn(arg, sqlite3_column_int64(s, 0));
	sqlite3_finalize(s);
	db_conn_put(j, conn);
	if (r == 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	return r;
}

static int bitmap_row(void *arg, int64_t chunk)
{
	return bit_set(arg, (uint64_t)chunk);
}

/*
 * Make the bitmap describe interval `tag - 1`: after a new snapshot it
 * starts empty; after a remount within an interval it is loaded from the
 * rows committed before. Stripe lock held exclusively.
 */
static int bitmap_sync(struct journal *j, struct jobj *o, uint64_t tag)
{
	struct cow_state *c = &o->cow;
	int r;

	if (c->data_tag == tag)
		return 0;
	if (c->chunk_words)
		memset(c->chunk_bits, 0, c->chunk_words * sizeof(*c->chunk_bits));
	r = cow_each_row(j, "SELECT chunk FROM cow_chunk WHERE ino=?1 AND interval=?2",
			 o->ino, (int64_t)(tag - 1), bitmap_row, c);
	if (r < 0)
		return r;
	c->data_tag = tag;
	return 0;
}

/* Copy the data segments of [start, end) from src to dst at the same offsets. */
static int copy_range_sparse(int src, int dst, off_t start, off_t end)
{
	off_t pos = start;
	char *buf = NULL;
	int r = 0;

	while (pos < end) {
		off_t d = lseek(src, pos, SEEK_DATA), h, o_in, o_out;

		if (d < 0) {
			if (errno == ENXIO)
				break;
			r = -errno;
			break;
		}
		if (d >= end)
			break;
		h = lseek(src, d, SEEK_HOLE);
		if (h < 0) {
			r = -errno;
			break;
		}
		if (h > end)
			h = end;
		o_in = o_out = d;
		while (o_in < h) {
			ssize_t n = copy_file_range(src, &o_in, dst, &o_out, (size_t)(h - o_in), 0);

			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP)) {
				/* No in-kernel copy here: plain read/write. */
				ssize_t m;

				if (!buf && !(buf = malloc((size_t)CHUNK))) {
					r = -ENOMEM;
					goto out;
				}
				m = util_pread_all(src, buf, (size_t)UTIL_MIN(h - o_in, CHUNK), o_in);
				if (m < 0) {
					r = (int)m;
					goto out;
				}
				if (m == 0)
					break;
				r = util_pwrite_all(dst, buf, (size_t)m, o_out);
				if (r < 0)
					goto out;
				o_in += m;
				o_out += m;
				continue;
			}
			if (n < 0) {
				r = -errno;
				goto out;
			}
			if (n == 0)
				break;   /* the source shrank under us: nothing more to keep */
		}
		pos = h;
	}
out:
	free(buf);
	return r;
}

static void unsynced_add(struct cow_state *c, uint64_t interval)
{
	c->copies++;
	for (unsigned i = 0; i < c->nunsynced; i++)
		if (c->unsynced[i] == interval)
			return;
	if (c->nunsynced < sizeof(c->unsynced) / sizeof(c->unsynced[0]))
		c->unsynced[c->nunsynced++] = interval;
	else
		c->unsynced_more = true;
}

/*
 * Preserve the chunks [first, last] of `o` that are below `size` and not yet
 * preserved in this interval; mark every chunk of the range as handled.
 * Stripe lock held exclusively.
 */
static int preserve_chunks_locked(struct journal *j, struct jobj *o, int fd,
				  uint64_t first, uint64_t last, off_t size, uint64_t interval)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO cow_chunk(ino, chunk, interval) VALUES(?1, ?2, ?3)";
	uint64_t *todo = NULL;
	size_t ntodo = 0;
	char path[64], name[COW_STORE_NAME_MAX];
	int src = -1, dst = -1, r = 0, rc;
	struct jconn *c;
	sqlite3_stmt *s;

	for (uint64_t i = first; i <= last; i++) {
		if (bit_get(&o->cow, i) || (off_t)(i * (uint64_t)CHUNK) >= size)
			continue;
		if (!todo && !(todo = malloc((last - i + 1) * sizeof(*todo))))
			return -ENOMEM;
		todo[ntodo++] = i;
	}
	if (ntodo == 0)
		goto mark;
	/* the copies must not eat the journal's headroom (space.c) */
	r = space_check(j, ntodo * (uint64_t)CHUNK);
	if (r < 0)
		goto out;

	cow_procpath(path, fd);
	src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		r = -errno;
		goto out;
	}
	cow_store_name(name, o->ino, interval);
	dst = openat(j->cow_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (dst < 0) {
		r = -errno;
		goto out;
	}
	for (size_t k = 0, run; k < ntodo; k += run) {
		off_t a = (off_t)(todo[k] * (uint64_t)CHUNK);

		/* one copy per run of adjacent chunks */
		for (run = 1; k + run < ntodo && todo[k + run] == todo[k] + run; run++)
			;
		r = copy_range_sparse(src, dst, a, UTIL_MIN(a + (off_t)run * CHUNK, size));
		if (r < 0)
			goto undo;
		/*
		 * Start writing the copy back now: the next fsync of the file
		 * waits for it (cow_sync), better it is on its way already.
		 */
		if (run > 1)
			(void)sync_file_range(dst, a, (off_t)run * CHUNK, SYNC_FILE_RANGE_WRITE);
	}
	r = jtxn_begin(j, false, &c);
	if (r < 0)
		goto undo;
	rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = jtxn_end(j, c, journal_err(rc));
		goto undo;
	}
	for (size_t k = 0; k < ntodo && r >= 0; k++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, (int64_t)o->ino);
		sqlite3_bind_int64(s, 2, (int64_t)todo[k]);
		sqlite3_bind_int64(s, 3, (int64_t)interval);
		rc = sqlite3_step(s);
		if (rc != SQLITE_DONE)
			r = journal_err(rc);
	}
	sqlite3_finalize(s);
	r = jtxn_end(j, c, r);
	if (r < 0)
		goto undo;
	cow_count(j, o);
	unsynced_add(&o->cow, interval);
mark:
	for (uint64_t i = first; i <= last; i++) {
		r = bit_set(&o->cow, i);
		if (r < 0)
			break;
	}
	goto out;
undo:
	/* Nothing half-preserved: the copies made so far are not recorded. */
	for (size_t k = 0; k < ntodo; k++)
		fallocate(dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(todo[k] * (uint64_t)CHUNK), CHUNK);
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	free(todo);
	if (r < 0)
		log_debug("cannot preserve data of object %" PRIu64 ": %s", o->ino, strerror(-r));
	return r;
}

/*
 * A sequential overwrite preserves chunk after chunk. When a preservation
 * continues the previous one, it takes the next COW_AHEAD bytes too: one
 * copy and one commit per window instead of one per write. Chunks taken
 * early are exact: not written since the snapshot, they still hold its
 * data. The old data of the window after that is asked for at once, so that
 * its copy finds it in the page cache. Random overwrites take only what
 * they overwrite. Stripe lock held exclusively.
 */
#define COW_AHEAD ((off_t)8 << 20)

static bool cow_sequential(const struct cow_state *c, uint64_t first)
{
	return first != 0 && first == c->next_chunk;
}

static uint64_t cow_ahead_last(const struct cow_state *c, uint64_t first, uint64_t last, off_t size)
{
	uint64_t want = last + (uint64_t)(COW_AHEAD / CHUNK), eof;

	if (!cow_sequential(c, first) || size <= 0)
		return last;
	eof = (uint64_t)((size - 1) / CHUNK);
	return UTIL_MAX(last, UTIL_MIN(want, eof));
}

static void cow_read_ahead(struct cow_state *c, int fd, bool seq, uint64_t last, off_t size)
{
	off_t end = (off_t)((last + 1) * (uint64_t)CHUNK);

	c->next_chunk = last + 1;
	if (seq && end < size)
		(void)posix_fadvise(fd, end, UTIL_MIN(COW_AHEAD, size - end), POSIX_FADV_WILLNEED);
}

/* Preserve what [off, end) of a regular file is about to lose. */
static int preserve_range(struct journal *j, struct jobj *o, int fd, off_t off, off_t end)
{
	uint64_t tag = cow_interval(j) + 1, first, last, ahead;
	pthread_rwlock_t *lk;
	struct stat st;
	int r;
	bool all = true, seq;

	if (end <= off)
		return 0;
	first = (uint64_t)(off / CHUNK);
	last = (uint64_t)((end - 1) / CHUNK);
	lk = cow_stripe(j, o->ino);
	pthread_rwlock_wrlock(lk);
	r = bitmap_sync(j, o, tag);
	if (r < 0)
		goto out;
	for (uint64_t i = first; i <= last && all; i++)
		all = bit_get(&o->cow, i);
	if (all)
		goto out;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	seq = cow_sequential(&o->cow, first);
	ahead = cow_ahead_last(&o->cow, first, last, st.st_size);
	r = preserve_chunks_locked(j, o, fd, first, ahead, st.st_size, tag - 1);
	/* short of space for the window: what this write needs may still fit */
	if (r == -ENOSPC && ahead > last)
		r = preserve_chunks_locked(j, o, fd, first, ahead = last, st.st_size, tag - 1);
	if (r >= 0)
		cow_read_ahead(&o->cow, fd, seq, ahead, st.st_size);
out:
	pthread_rwlock_unlock(lk);
	return r;
}

int cow_before_write(struct journal *j, struct jobj *o, int fd, off_t off, off_t len)
{
	int r;

	if (!cow_seen(j, o))
		return 0;
	r = cow_before_attr(j, o, fd);
	if (r < 0 || o->type != S_IFREG)
		return r;
	return preserve_range(j, o, fd, off, off + len);
}

int cow_before_truncate(struct journal *j, struct jobj *o, int fd, off_t new_size)
{
	struct stat st;
	int r;

	if (!cow_seen(j, o))
		return 0;
	r = cow_before_attr(j, o, fd);
	if (r < 0 || o->type != S_IFREG)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (new_size >= st.st_size)
		return 0;
	return preserve_range(j, o, fd, new_size, st.st_size);
}

int cow_before_fallocate(struct journal *j, struct jobj *o, int fd, int mode, off_t off, off_t len)
{
	struct stat st;
	off_t end;
	int r;

	if (!cow_seen(j, o))
		return 0;
	r = cow_before_attr(j, o, fd);
	if (r < 0 || o->type != S_IFREG)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))
		end = st.st_size;    /* everything after `off` moves */
	else
		end = UTIL_MIN(off + len, st.st_size);
	return preserve_range(j, o, fd, off, end);
}

/* ---- whole objects ------------------------------------------------------- */

int cow_before_unlink(struct journal *j, struct jobj *o, int dirfd, const char *name, nlink_t nlink)
{
	bool linked = false;
	char oname[32];
	int fd, r;
	struct stat a, b;

	if (!cow_seen(j, o))
		return 0;
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = cow_before_attr(j, o, fd);
	if (r < 0 || o->type != S_IFREG || nlink > 1)
		goto out;
	/* The last link goes: keep the file for the snapshots that see it. */
	snprintf(oname, sizeof(oname), "%" PRIu64, o->ino);
	linked = true;
	if (linkat(dirfd, name, j->orphan_fd, oname, 0) < 0) {
		r = -errno;
		if (r != -EEXIST)
			goto out;
		/* A leftover from an earlier attempt: it must be this very file. */
		if (fstat(fd, &a) < 0 || fstatat(j->orphan_fd, oname, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
		    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
			r = -EEXIST;
			goto out;
		}
	}
	{
		int64_t v[1] = { (int64_t)o->ino };
		struct jconn *c;

		r = jtxn_begin(j, false, &c);
		if (r >= 0)
			r = jtxn_end(j, c, db_exec_i64(c->db,
				"INSERT OR IGNORE INTO orphans(ino) VALUES(?1)", 1, v));
		if (r < 0) {
			unlinkat(j->orphan_fd, oname, 0);
			linked = false;
		}
	}
out:
	close(fd);
	if (r < 0)
		return r;
	return linked ? 1 : 0;
}

void cow_state_release(struct cow_state *c)
{
	free(c->chunk_bits);
	c->chunk_bits = NULL;
	c->chunk_words = 0;
	c->data_tag = 0;
}

static int sync_store_file(struct journal *j, uint64_t ino, uint64_t interval)
{
	char name[COW_STORE_NAME_MAX];
	int fd, r = 0;

	cow_store_name(name, ino, interval);
	fd = openat(j->cow_fd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;   /* freed since: nothing to keep */
	if (fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

struct store_sync {
	struct journal *j;
	uint64_t ino;
};

static int store_row(void *arg, int64_t interval)
{
	struct store_sync *ss = arg;

	return sync_store_file(ss->j, ss->ino, (uint64_t)interval);
}

/* Every interval with a store file of `ino` (more than cow_state remembers). */
static int sync_store_all(struct journal *j, uint64_t ino)
{
	struct store_sync ss = { j, ino };

	return cow_each_row(j, "SELECT DISTINCT interval FROM cow_chunk WHERE ino=?1", ino, 0,
			    store_row, &ss);
}

int cow_sync(struct journal *j, struct jobj *o)
{
	pthread_rwlock_t *lk = cow_stripe(j, o->ino);
	uint64_t iv[4], copies;
	unsigned n;
	bool more;
	int r = 0;

	pthread_rwlock_rdlock(lk);
	n = o->cow.nunsynced;
	memcpy(iv, o->cow.unsynced, sizeof(iv));
	more = o->cow.unsynced_more;
	copies = o->cow.copies;
	pthread_rwlock_unlock(lk);
	if (n == 0 && !more)
		return 0;
	if (more)
		r = sync_store_all(j, o->ino);
	for (unsigned i = 0; i < n && r == 0 && !more; i++)
		r = sync_store_file(j, o->ino, iv[i]);
	if (r < 0)
		return r;
	/* forget them unless copies were made meanwhile (those may not be synced) */
	pthread_rwlock_wrlock(lk);
	if (o->cow.copies == copies) {
		o->cow.nunsynced = 0;
		o->cow.unsynced_more = false;
	}
	pthread_rwlock_unlock(lk);
	return 1;
}

/* ---- life cycle ----------------------------------------------------------- */

static int open_subdir(int parent, const char *name, bool create, int *ret)
{
	int fd;

	if (create && mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(parent, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret = fd;
	return 0;
}

int cow_init(struct journal *j)
{
	bool rw = !(j->flags & JOURNAL_OPEN_READONLY);
	int r;

	j->cow_fd = j->orphan_fd = -1;
	for (size_t i = 0; i < COW_STRIPES; i++)
		pthread_rwlock_init(&j->cow_stripe[i], NULL);
	r = open_subdir(j->state_fd, "cow", rw, &j->cow_fd);
	if (r < 0 && !(r == -ENOENT && !rw))
		return r;
	r = open_subdir(j->state_fd, "orphans", rw, &j->orphan_fd);
	if (r < 0 && !(r == -ENOENT && !rw))
		return r;
	return 0;
}

void cow_free(struct journal *j)
{
	if (j->cow_fd >= 0)
		close(j->cow_fd);
	if (j->orphan_fd >= 0)
		close(j->orphan_fd);
	j->cow_fd = j->orphan_fd = -1;
	for (size_t i = 0; i < COW_STRIPES; i++)
		pthread_rwlock_destroy(&j->cow_stripe[i]);
}

int cow_refresh_watermark(struct journal *j, struct jconn *c)
{
	sqlite3_stmt *s;
	int rc;
	uint64_t wm = 0;

	rc = sqlite3_prepare_v2(c->db, "SELECT next_ino FROM snapshots ORDER BY seq DESC LIMIT 1",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		wm = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_err(rc);
	atomic_store_explicit(&j->cow_watermark, wm, memory_order_release);
	return 0;
}

/* ---- freeing ------------------------------------------------------------- */

struct garbage_chunk {
	uint64_t ino, chunk, interval;
};

struct cow_garbage {
	struct garbage_chunk *chunks;
	size_t nchunks, cap;
	struct u64vec orphans;
};

static int garbage_add_chunk(struct cow_garbage *g, uint64_t ino, uint64_t chunk, uint64_t iv)
{
	if (g->nchunks == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 64;
		void *n = realloc(g->chunks, nc * sizeof(*g->chunks));

		if (!n)
			return -ENOMEM;
		g->chunks = n;
		g->cap = nc;
	}
	g->chunks[g->nchunks].ino = ino;
	g->chunks[g->nchunks].chunk = chunk;
	g->chunks[g->nchunks].interval = iv;
	g->nchunks++;
	return 0;
}

static int chunk_cmp(const void *pa, const void *pb)
{
	const struct garbage_chunk *a = pa, *b = pb;

	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	if (a->interval != b->interval)
		return a->interval < b->interval ? -1 : 1;
	return a->chunk < b->chunk ? -1 : a->chunk > b->chunk;
}

/*
 * The space the chunks of `g` take in their store files: the allocated
 * blocks inside each chunk's range. A preserved hole takes nothing, nor
 * does the part of a last chunk past the file's end. One pass of
 * SEEK_DATA / SEEK_HOLE per store file, chunks in order (sorts g).
 */
static uint64_t garbage_chunk_bytes(struct journal *j, struct cow_garbage *g)
{
	uint64_t bytes = 0;
	size_t i = 0, k;

	if (g->nchunks > 1)
		qsort(g->chunks, g->nchunks, sizeof(*g->chunks), chunk_cmp);
	for (; i < g->nchunks; i = k) {
		off_t data = -1, hole = -1, blk = 4096;
		struct stat st;
		char name[COW_STORE_NAME_MAX];
		int fd;

		for (k = i; k < g->nchunks && g->chunks[k].ino == g->chunks[i].ino &&
			    g->chunks[k].interval == g->chunks[i].interval; k++)
			;
		cow_store_name(name, g->chunks[i].ino, g->chunks[i].interval);
		fd = openat(j->cow_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;   /* nothing there (all holes, or freed): nothing to free */
		if (fstat(fd, &st) == 0 && st.st_blksize > 0)
			blk = st.st_blksize;
		for (size_t c = i; c < k; c++) {
			off_t pos = (off_t)(g->chunks[c].chunk * (uint64_t)CHUNK), end = pos + CHUNK, next;

			while (pos < end) {
				/* [data, hole) is the first data segment at or after pos */
				if (pos >= hole) {
					data = lseek(fd, pos, SEEK_DATA);
					hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
					if (data < 0 || hole < 0) {
						data = hole = INT64_MAX;   /* no data after pos */
						break;
					}
				}
				if (data >= end)
					break;
				/* up to the segment's end; the file's last block counts whole */
				next = UTIL_MIN(end, (hole + blk - 1) / blk * blk);
				bytes += (uint64_t)(next - UTIL_MAX(pos, data));
				pos = next;
			}
			if (data == INT64_MAX)
				break;
		}
		close(fd);
	}
	return bytes;
}


/*
 * The copy a deleted snapshot read (the earliest at or after its seq) is
 * garbage unless a remaining snapshot lies after the previous copy of the
 * same thing and at or before it, and sees the object (taken after its
 * birth: an older snapshot never reads a file made after it). `skip_id`
 * excludes one snapshot from "remaining" (the one being deleted, or the
 * one a dry run asks about).
 */
static const char sql_chunks[] =
	"SELECT c.ino, c.chunk, c.interval FROM cow_chunk c "
	"WHERE c.interval >= ?1 AND c.interval = (SELECT min(c2.interval) FROM cow_chunk c2 "
	"  WHERE c2.ino = c.ino AND c2.chunk = c.chunk AND c2.interval >= ?1) "
	"AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.id != ?2 AND s.seq <= c.interval "
	"  AND s.seq >= coalesce((SELECT born_seq FROM objects WHERE ino = c.ino), 0) "
	"  AND s.seq > coalesce((SELECT max(c3.interval) FROM cow_chunk c3 "
	"    WHERE c3.ino = c.ino AND c3.chunk = c.chunk AND c3.interval < c.interval), 0))";
static const char sql_attrs[] =
	"SELECT a.ino, a.interval FROM cow_attr a "
	"WHERE a.interval >= ?1 AND a.interval = (SELECT min(a2.interval) FROM cow_attr a2 "
	"  WHERE a2.ino = a.ino AND a2.interval >= ?1) "
	"AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.id != ?2 AND s.seq <= a.interval "
	"  AND s.seq >= coalesce((SELECT born_seq FROM objects WHERE ino = a.ino), 0) "
	"  AND s.seq > coalesce((SELECT max(a3.interval) FROM cow_attr a3 "
	"    WHERE a3.ino = a.ino AND a3.interval < a.interval), 0))";
/*
 * An orphan is garbage if its object is unknown, alive again (a live name
 * serves its data), or no remaining snapshot lies in [born_seq, death).
 * The death is objects.died_seq, or, where that was not recorded, when
 * its last name died: the unlink/rename-over of a file that just got its
 * orphan link sees st_nlink 1 (that link), not 0, so the object is not
 * marked dead (see the report on mutate.c remove_entry/journal_rename).
 */
static const char sql_orphans[] =
	"SELECT o.ino FROM orphans o LEFT JOIN objects b ON b.ino = o.ino "
	"WHERE b.ino IS NULL "
	"OR (b.died_seq IS NULL AND EXISTS (SELECT 1 FROM ns n WHERE n.ino = o.ino "
	"  AND n.died_seq IS NULL)) "
	"OR NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.id != ?2 AND s.seq >= b.born_seq "
	"  AND s.seq < coalesce(b.died_seq, (SELECT max(n.died_seq) FROM ns n "
	"    WHERE n.ino = o.ino)))";

int cow_collect(struct journal *j, struct jconn *c, uint64_t seq, bool dry_run,
		uint64_t *ret_bytes, struct cow_garbage **ret)
{
	struct cow_garbage *g;
	uint64_t bytes = 0, skip_id = 0;
	sqlite3_stmt *s = NULL;
	int r = 0, rc;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	if (dry_run) {
		/* Which snapshot has this seq: it is "deleted" for the question. */
		rc = sqlite3_prepare_v2(c->db, "SELECT id FROM snapshots WHERE seq=?1", -1, &s, NULL);
		if (rc != SQLITE_OK)
			goto sqlerr;
		sqlite3_bind_int64(s, 1, (int64_t)seq);
		if (sqlite3_step(s) == SQLITE_ROW)
			skip_id = (uint64_t)sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}

	rc = sqlite3_prepare_v2(c->db, sql_chunks, -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(s, 1, (int64_t)seq);
	sqlite3_bind_int64(s, 2, (int64_t)skip_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && r >= 0)
		r = garbage_add_chunk(g, (uint64_t)sqlite3_column_int64(s, 0),
				      (uint64_t)sqlite3_column_int64(s, 1),
				      (uint64_t)sqlite3_column_int64(s, 2));
	sqlite3_finalize(s);
	if (r < 0)
		goto fail;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto sqlerr;
	if (ret_bytes)
		bytes += garbage_chunk_bytes(j, g);

	rc = sqlite3_prepare_v2(c->db, sql_orphans, -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto sqlerr;
	sqlite3_bind_int64(s, 2, (int64_t)skip_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && r >= 0) {
		uint64_t ino = (uint64_t)sqlite3_column_int64(s, 0);
		char oname[32];
		struct stat st;

		snprintf(oname, sizeof(oname), "%" PRIu64, ino);
		if (j->orphan_fd >= 0 && fstatat(j->orphan_fd, oname, &st, AT_SYMLINK_NOFOLLOW) == 0)
			bytes += (uint64_t)st.st_blocks * 512;
		if (!dry_run)
			r = u64vec_push(&g->orphans, ino);
	}
	sqlite3_finalize(s);
	if (r < 0)
		goto fail;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto sqlerr;

	if (!dry_run) {
		/* Attribute rows hold no store data: delete them right here. */
		static const char del_attr[] =
			"DELETE FROM cow_attr WHERE (ino, interval) IN (SELECT * FROM (%s))";
		char *sql = NULL;

		if (asprintf(&sql, del_attr, sql_attrs) < 0) {
			r = -ENOMEM;
			goto fail;
		}
		rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
		free(sql);
		if (rc != SQLITE_OK)
			goto sqlerr;
		sqlite3_bind_int64(s, 1, (int64_t)seq);
		sqlite3_bind_int64(s, 2, 0);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			goto sqlerr;
		for (size_t i = 0; i < g->nchunks && r >= 0; i++) {
			int64_t v[3] = { (int64_t)g->chunks[i].ino, (int64_t)g->chunks[i].chunk,
					 (int64_t)g->chunks[i].interval };
			r = db_exec_i64(c->db, "DELETE FROM cow_chunk WHERE ino=?1 AND chunk=?2 "
					    "AND interval=?3", 3, v);
		}
		for (size_t i = 0; i < g->orphans.n && r >= 0; i++) {
			int64_t v[1] = { (int64_t)g->orphans.v[i] };
			r = db_exec_i64(c->db, "DELETE FROM orphans WHERE ino=?1", 1, v);
		}
		if (r < 0)
			goto fail;
	}
	if (ret_bytes)
		*ret_bytes = bytes;
	if (ret && !dry_run) {
		*ret = g;
		return 0;
	}
	cow_garbage_free_data(NULL, g);
	return 0;
sqlerr:
	r = journal_err(rc);
fail:
	cow_garbage_free_data(NULL, g);
	return r;
}

/*
 * After the commit that dropped their rows: punch the freed chunks out of
 * the store files, remove store files that hold nothing any more, unlink
 * the freed orphans. With j == NULL only frees the list.
 */
/* ---- after an unclean shutdown ------------------------------------------ */

/* cow_each_row() callback: collect the column into a struct u64vec */
static int row_push(void *arg, int64_t x)
{
	return u64vec_push(arg, (uint64_t)x);
}

/* cow_store_name() read back: false for any other name */
static bool store_name(const char *name, uint64_t *ino, uint64_t *interval)
{
	char *end;

	if (name[0] < '0' || name[0] > '9')
		return false;
	errno = 0;
	*ino = strtoull(name, &end, 10);
	if (errno || *end != '.' || end[1] < '0' || end[1] > '9')
		return false;
	*interval = strtoull(end + 1, &end, 10);
	return !errno && *end == '\0';
}

/*
 * Punch the chunks of one store file that no cow_chunk row names; unlink
 * it if no row names any. Adds what it freed to *freed.
 */
static int sweep_store_file(struct journal *j, const char *name, uint64_t *freed)
{
	struct u64vec rows = { 0 };
	uint64_t ino, interval;
	off_t pos = 0;
	struct stat st;
	int fd, r;

	if (!store_name(name, &ino, &interval))
		return 0;   /* not ours to judge */
	r = cow_each_row(j, "SELECT chunk FROM cow_chunk WHERE ino=?1 AND interval=?2 "
			 "ORDER BY chunk", ino, (int64_t)interval, row_push, &rows);
	if (r < 0)
		goto out;
	if (rows.n == 0) {
		if (fstatat(j->cow_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			*freed += (uint64_t)st.st_blocks * 512;
		if (unlinkat(j->cow_fd, name, 0) < 0 && errno != ENOENT)
			r = -errno;
		goto out;
	}
	fd = openat(j->cow_fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	for (;;) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;

		if (d < 0)
			break;   /* ENXIO: no data after pos */
		h = lseek(fd, d, SEEK_HOLE);
		if (h <= d)
			break;
		for (uint64_t c = (uint64_t)(d / CHUNK); (off_t)(c * (uint64_t)CHUNK) < h; c++) {
			off_t a = (off_t)(c * (uint64_t)CHUNK);

			if (u64vec_has_sorted(&rows, c))
				continue;
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, a, CHUNK) < 0) {
				r = -errno;
				break;
			}
			*freed += (uint64_t)(UTIL_MIN(h, a + CHUNK) - UTIL_MAX(d, a));
		}
		if (r < 0)
			break;
		pos = h;
	}
	close(fd);
out:
	u64vec_free(&rows);
	return r;
}

/*
 * An orphan link no orphans row names: unlink it, unless a snapshot may
 * still read the file through it. A power loss can keep the unlink of the
 * file's last name and lose the row committed before it (not synced): the
 * row is then written again, and freeing goes on by the usual rule.
 */
static const char sql_orphan_fate[] =
	"SELECT CASE "
	"WHEN EXISTS (SELECT 1 FROM orphans WHERE ino=?1) THEN 0 "
	"WHEN NOT EXISTS (SELECT 1 FROM objects WHERE ino=?1) THEN 1 "
	"WHEN EXISTS (SELECT 1 FROM ns WHERE ino=?1 AND died_seq IS NULL) THEN 1 "
	"WHEN EXISTS (SELECT 1 FROM snapshots s, objects o WHERE o.ino=?1 "
	"  AND s.seq >= o.born_seq AND (o.died_seq IS NULL OR o.died_seq > s.seq)) THEN 2 "
	"ELSE 1 END";

static int sweep_orphan(struct journal *j, const char *name, uint64_t *freed)
{
	struct u64vec fate = { 0 };
	struct jconn *c;
	struct stat st;
	char *end;
	uint64_t ino;
	int r;

	if (name[0] < '0' || name[0] > '9')
		return 0;
	errno = 0;
	ino = strtoull(name, &end, 10);
	if (errno || *end)
		return 0;
	r = cow_each_row(j, sql_orphan_fate, ino, 0, row_push, &fate);
	if (r < 0 || fate.n != 1 || fate.v[0] == 0)
		goto out;
	if (fate.v[0] == 2) {
		int64_t v[1] = { (int64_t)ino };

		r = jtxn_begin(j, false, &c);
		if (r >= 0)
			r = jtxn_end(j, c, db_exec_i64(c->db,
				"INSERT OR IGNORE INTO orphans(ino) VALUES(?1)", 1, v));
		goto out;
	}
	if (fstatat(j->orphan_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_nlink == 1)
		*freed += (uint64_t)st.st_blocks * 512;
	if (unlinkat(j->orphan_fd, name, 0) < 0 && errno != ENOENT)
		r = -errno;
out:
	u64vec_free(&fate);
	return r;
}

static int sweep_dir(struct journal *j, int dirfd,
		     int (*fn)(struct journal *j, const char *name, uint64_t *freed),
		     uint64_t *freed, unsigned *nfail)
{
	struct dirent *e;
	DIR *d;
	int r = util_opendirat(dirfd, ".", 0, &d);

	if (r < 0)
		return r;
	while ((e = readdir(d)))
		if (fn(j, e->d_name, freed) < 0)
			(*nfail)++;
	closedir(d);
	return 0;
}

int cow_sweep(struct journal *j)
{
	uint64_t freed = 0;
	unsigned nfail = 0;
	int r = 0;

	if (j->cow_fd >= 0)
		r = sweep_dir(j, j->cow_fd, sweep_store_file, &freed, &nfail);
	if (r >= 0 && j->orphan_fd >= 0)
		r = sweep_dir(j, j->orphan_fd, sweep_orphan, &freed, &nfail);
	if (r < 0 || nfail)
		log_warning("journal: snapshot store of '%s': could not check %u entries: %s", j->backing,
			 nfail, strerror(r < 0 ? -r : EIO));
	if (freed)
		log_notice("journal: freed %" PRIu64 " bytes of the snapshot store of '%s' that an "
			   "interrupted copy or deletion had left behind", freed, j->backing);
	return 0;
}

void cow_garbage_free_data(struct journal *j, struct cow_garbage *g)
{
	if (!g)
		return;
	for (size_t i = 0; j && i < g->nchunks; i++) {
		char name[COW_STORE_NAME_MAX];
		int fd;
		off_t hole;

		cow_store_name(name, g->chunks[i].ino, g->chunks[i].interval);
		fd = openat(j->cow_fd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(g->chunks[i].chunk * (uint64_t)CHUNK), CHUNK);
		/* Nothing but holes left: the file goes. */
		hole = lseek(fd, 0, SEEK_DATA);
		if (hole < 0 && errno == ENXIO)
			unlinkat(j->cow_fd, name, 0);
		close(fd);
	}
	for (size_t i = 0; j && i < g->orphans.n; i++) {
		char oname[32];

		snprintf(oname, sizeof(oname), "%" PRIu64, g->orphans.v[i]);
		unlinkat(j->orphan_fd, oname, 0);
	}
	free(g->chunks);
	u64vec_free(&g->orphans);
	free(g);
}
