/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sender's second half: a changed file's data as DATA/PUNCH records
 * from the `to` snapshot (SEEK_DATA/SEEK_HOLE), and attributes and xattrs
 * as SETATTR, REMOVEXATTR and SETXATTR. See send.c for the whole picture.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "repl_i.h"
#include "send_i.h"

/* Send [off, off+len) of a data segment in REPL_DATA_CHUNK pieces. */
static int send_segment(struct send *s, struct journal_snapfile *f, uint64_t ino,
			uint64_t off, uint64_t len)
{
	while (len > 0) {
		size_t n = (size_t)UTIL_MIN(len, (uint64_t)REPL_DATA_CHUNK);
		int r;

		/* A chunk the receiver already has is counted, not read (nor sent). */
		if (repl_writer_next_seq(s->w) > s->resume) {
			ssize_t k = journal_snapfile_read(f, s->buf, n, (off_t)off);

			if (k < 0)
				return repl_send_sfail(s, (int)k, "cannot read inode %" PRIu64 " at %" PRIu64
					     " in the snapshot", ino, off);
			if ((size_t)k != n)
				return repl_send_sfail(s, -EIO, "inode %" PRIu64 " ends at %" PRIu64
					     " in the snapshot, before its data", ino, off + (uint64_t)k);
			s->data_sent += n;
		}
		r = repl_writer_data(s->w, ino, off, s->buf, n);
		if (r < 0)
			return repl_send_wfail(s, r);
		off += n;
		len -= n;
		s->prog.bytes_done += n;
		repl_send_progress(s, false);
	}
	return 0;
}

/* Allocation granularity assumed for hole maps (a filesystem block). */
#define HOLE_BLOCK 4096ULL

/* DATA and PUNCH records for [off, off + len) of `ino`, read from `f`. */
static int send_data_file(struct send *s, uint64_t ino, uint64_t off, uint64_t len,
			  struct journal_snapfile *f)
{
	uint64_t pos = off, end = off + len, fsize;
	int r = 0;

	if (ino != s->data_ino) {
		if (s->data_ino)
			s->prog.files_done++;
		s->data_ino = ino;
		s->files++;
	}
	fsize = (uint64_t)journal_snapfile_size(f);
	while (pos < end) {
		off_t dpos, hpos;

		dpos = journal_snapfile_seek(f, (off_t)pos, SEEK_DATA);
		if (dpos == -ENXIO || (dpos >= 0 && (uint64_t)dpos > end))
			dpos = (off_t)end;       /* a hole to the end of the range */
		if (dpos < 0) {
			r = repl_send_sfail(s, (int)dpos, "cannot seek in inode %" PRIu64, ino);
			break;
		}
		if ((uint64_t)dpos < pos) {
			r = repl_send_sfail(s, -EIO, "inode %" PRIu64 ": data offset went backwards", ino);
			break;
		}
		if ((uint64_t)dpos > pos) {
			uint64_t plen = (uint64_t)dpos - pos;

			/*
			 * A hole that runs to the end of the file: punch to the end
			 * of its last block, or the receiver's filesystem keeps that
			 * partial block allocated and the hole maps differ. Past the
			 * end nothing exists, and the final size comes with SETATTR.
			 */
			if ((uint64_t)dpos == end && end == fsize && end % HOLE_BLOCK)
				plen += HOLE_BLOCK - end % HOLE_BLOCK;
			r = repl_writer_punch(s->w, ino, pos, plen);
			if (r < 0) {
				r = repl_send_wfail(s, r);
				break;
			}
			s->prog.bytes_done += (uint64_t)dpos - pos;
			pos = (uint64_t)dpos;
		}
		if (pos >= end)
			break;
		hpos = journal_snapfile_seek(f, (off_t)pos, SEEK_HOLE);
		if (hpos < 0) {
			r = repl_send_sfail(s, (int)hpos, "cannot seek in inode %" PRIu64, ino);
			break;
		}
		if ((uint64_t)hpos <= pos) {
			r = repl_send_sfail(s, -EIO, "inode %" PRIu64 ": empty data segment at %" PRIu64,
				  ino, pos);
			break;
		}
		if ((uint64_t)hpos > end)
			hpos = (off_t)end;
		r = send_segment(s, f, ino, pos, (uint64_t)hpos - pos);
		if (r < 0)
			break;
		pos = (uint64_t)hpos;
	}
	return r;
}

/*
 * A hint for a cold small file costs the sender about as much as sending
 * it: the disk request is submitted inside posix_fadvise() (in a VM, an
 * exit to the host for each). So a helper thread issues the hints and the
 * sender only queues them, with a reference to the file. A hint the ring
 * has no room for is dropped: that file is then read synchronously, as
 * without a hint.
 */
#define SEND_RA_RING (2 * SEND_AHEAD_FILES)

struct send_ra {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* the ring got its first entry, or stop */
	struct {
		struct journal_snapfile *f;
		off_t off, len;
	} v[SEND_RA_RING];
	size_t head, n;
	bool stop;
};

static void *send_ra_main(void *arg)
{
	struct send_ra *ra = arg;

	pthread_mutex_lock(&ra->lock);
	for (;;) {
		struct journal_snapfile *f;
		off_t off, len;

		while (ra->n == 0 && !ra->stop)
			pthread_cond_wait(&ra->cond, &ra->lock);
		if (ra->stop)
			break;   /* what is left is dropped by repl_send_ra_stop() */
		f = ra->v[ra->head].f;
		off = ra->v[ra->head].off;
		len = ra->v[ra->head].len;
		ra->head = (ra->head + 1) % SEND_RA_RING;
		ra->n--;
		pthread_mutex_unlock(&ra->lock);
		journal_snapfile_willneed(f, off, len);
		journal_snapfile_close(f);
		pthread_mutex_lock(&ra->lock);
	}
	pthread_mutex_unlock(&ra->lock);
	return NULL;
}

void repl_send_ra_start(struct send *s)
{
	struct send_ra *ra = calloc(1, sizeof(*ra));

	if (!ra)
		return;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->cond, NULL);
	if (pthread_create(&ra->thread, NULL, send_ra_main, ra) != 0) {
		log_debug("send: no read-ahead thread: hints inline");
		pthread_cond_destroy(&ra->cond);
		pthread_mutex_destroy(&ra->lock);
		free(ra);
		return;
	}
	s->ra = ra;
}

void repl_send_ra_stop(struct send *s)
{
	struct send_ra *ra = s->ra;

	if (!ra)
		return;
	pthread_mutex_lock(&ra->lock);
	ra->stop = true;
	pthread_cond_signal(&ra->cond);
	pthread_mutex_unlock(&ra->lock);
	pthread_join(ra->thread, NULL);
	for (; ra->n; ra->n--, ra->head = (ra->head + 1) % SEND_RA_RING)
		journal_snapfile_close(ra->v[ra->head].f);
	pthread_cond_destroy(&ra->cond);
	pthread_mutex_destroy(&ra->lock);
	free(ra);
	s->ra = NULL;
}

static void send_willneed(struct send *s, struct journal_snapfile *f, off_t off, off_t len)
{
	struct send_ra *ra = s->ra;

	if (!ra) {
		journal_snapfile_willneed(f, off, len);
		return;
	}
	pthread_mutex_lock(&ra->lock);
	if (ra->n < SEND_RA_RING) {
		size_t i = (ra->head + ra->n) % SEND_RA_RING;

		ra->v[i].f = journal_snapfile_ref(f);
		ra->v[i].off = off;
		ra->v[i].len = len;
		if (ra->n++ == 0)
			pthread_cond_signal(&ra->cond);
	}
	pthread_mutex_unlock(&ra->lock);
}

/*
 * The change set lists every file's DATA after all creates and links, one
 * file after another; reading them one by one, each cold small file would
 * cost one synchronous disk read. So DATA entries are queued, up to
 * SEND_AHEAD_FILES files or SEND_AHEAD_BYTES: each is opened when queued
 * and its first SEND_AHEAD_HEAD bytes are read ahead in the background,
 * and the queue is sent in order when full, before the first ATTR entry
 * and at the end. The stream is the same, record for record.
 */
#define SEND_AHEAD_BYTES ((uint64_t)32 << 20)
#define SEND_AHEAD_HEAD ((uint64_t)1 << 20)

/* Queue [off, off + len) of `ino` (len 0: nothing to read) and read its head ahead. */
static int ahead_add(struct send *s, uint64_t ino, uint64_t off, uint64_t len,
		     struct send_created *cf)
{
	struct send_ahead *a;
	int r;

	if (s->ahead_n == SEND_AHEAD_FILES || s->ahead_bytes >= SEND_AHEAD_BYTES) {
		r = repl_send_data_flush(s);
		if (r < 0)
			return r;
	}
	a = &s->ahead[s->ahead_n];
	*a = (struct send_ahead){ .ino = ino, .off = off, .len = len };
	if (len) {
		r = journal_snapfile_open(s->j, s->to_id, ino, &a->f);
		if (r < 0)
			return repl_send_sfail(s, r, "cannot open inode %" PRIu64 " in the snapshot",
					       ino);
		send_willneed(s, a->f, (off_t)off, (off_t)UTIL_MIN(len, SEND_AHEAD_HEAD));
		s->ahead_bytes += UTIL_MIN(len, SEND_AHEAD_HEAD);
	}
	a->cf = cf;
	s->ahead_n++;
	return 0;
}

int repl_send_data(struct send *s, const struct journal_diff *d)
{
	return ahead_add(s, d->ino, d->off, d->len, NULL);
}

static void created_free(struct send_created *cf)
{
	if (cf) {
		free((char *)cf->c.name);
		free(cf);
	}
}

int repl_send_create_file(struct send *s, const struct repl_create *c, const struct stat *st)
{
	struct send_created *cf = malloc(sizeof(*cf));
	int r;

	if (cf) {
		cf->c = *c;
		cf->c.target = NULL;
		cf->c.name = strdup(c->name);
		cf->st = *st;
	}
	if (!cf || !cf->c.name) {
		free(cf);
		return repl_send_sfail(s, -ENOMEM, "cannot queue inode %" PRIu64, c->ino);
	}
	r = ahead_add(s, c->ino, 0, (uint64_t)st->st_size, cf);
	if (r < 0)
		created_free(cf);
	return r;
}

static int send_attr_of(struct send *s, uint64_t ino, const struct stat *st);

/* One queued entry: the CREATE of an inlined file first and its ATTR last. */
static int send_ahead_one(struct send *s, const struct send_ahead *a)
{
	int r;

	if (a->cf) {
		r = repl_writer_create(s->w, &a->cf->c);
		if (r < 0)
			return repl_send_wfail(s, r);
	}
	if (a->len) {
		r = send_data_file(s, a->ino, a->off, a->len, a->f);
		if (r < 0)
			return r;
	}
	return a->cf ? send_attr_of(s, a->ino, &a->cf->st) : 0;
}

static int send_ahead_flush(struct send *s, bool send)
{
	int r = send ? 0 : -ECANCELED;

	for (size_t i = 0; i < s->ahead_n; i++) {
		struct send_ahead *a = &s->ahead[i];

		if (r >= 0)
			r = send_ahead_one(s, a);
		if (a->f)
			journal_snapfile_close(a->f);
		created_free(a->cf);
		*a = (struct send_ahead){ 0 };
	}
	s->ahead_n = 0;
	s->ahead_bytes = 0;
	return send ? r : 0;
}

int repl_send_data_flush(struct send *s)
{
	return send_ahead_flush(s, true);
}

void repl_send_data_flush_drop(struct send *s)
{
	send_ahead_flush(s, false);
}

/* ---- xattrs of a snapshot ------------------------------------------------------ */

struct xattrs {
	char *buf;
	const char **names;   /* sorted, replicable namespaces only */
	size_t n;
};

static void xattrs_release(struct xattrs *x)
{
	free(x->buf);
	free(x->names);
	*x = (struct xattrs){ 0 };
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The xattr names of ino in snapshot `snap` (none if the snapshot lacks ino). */
static int xattrs_list(struct journal *j, uint64_t snap, uint64_t ino, struct xattrs *ret)
{
	struct xattrs x = { 0 };
	ssize_t len;
	char msg[128];

	for (;;) {
		len = journal_snap_listxattr(j, snap, ino, NULL, 0);
		if (len == -ENOENT || len == 0) {
			*ret = x;
			return 0;
		}
		if (len < 0)
			return (int)len;
		x.buf = malloc((size_t)len + 1);
		if (!x.buf)
			return -ENOMEM;
		len = journal_snap_listxattr(j, snap, ino, x.buf, (size_t)len);
		if (len != -ERANGE)
			break;
		free(x.buf);   /* grew meanwhile (cannot happen to a snapshot; be safe) */
		x.buf = NULL;
	}
	if (len < 0) {
		free(x.buf);
		return (int)len;
	}
	x.buf[len] = '\0';
	x.names = calloc((size_t)len + 1, sizeof(*x.names));
	if (!x.names) {
		free(x.buf);
		return -ENOMEM;
	}
	for (char *p = x.buf; p < x.buf + len; p += strlen(p) + 1) {
		if (repl_check_xattr_name(p, msg, sizeof(msg)) < 0) {
			log_debug("inode %" PRIu64 ": xattr not mirrored: %s", ino, msg);
			continue;
		}
		x.names[x.n++] = p;
	}
	qsort(x.names, x.n, sizeof(*x.names), cmp_str);
	*ret = x;
	return 0;
}

static bool xattrs_has(const struct xattrs *x, const char *name)
{
	return x->n && bsearch(&name, x->names, x->n, sizeof(*x->names), cmp_str);
}

/* The value of `name` (malloc'd in *ret, at least 1 byte allocated); -ENODATA if none. */
static int xattr_get(struct journal *j, uint64_t snap, uint64_t ino, const char *name,
		     void **ret, size_t *ret_len)
{
	for (;;) {
		ssize_t len = journal_snap_getxattr(j, snap, ino, name, NULL, 0);
		void *v;

		if (len == -ENOENT)
			return -ENODATA;
		if (len < 0)
			return (int)len;
		v = malloc((size_t)len + 1);
		if (!v)
			return -ENOMEM;
		len = journal_snap_getxattr(j, snap, ino, name, v, (size_t)len);
		if (len >= 0) {
			*ret = v;
			*ret_len = (size_t)len;
			return 0;
		}
		free(v);
		if (len != -ERANGE)
			return len == -ENOENT ? -ENODATA : (int)len;
	}
}

/*
 * The receiver holds `from`'s xattrs (it is at snapshot `from`): remove what
 * `to` lacks, set what differs. A full stream sets every xattr.
 */
static int send_xattrs(struct send *s, uint64_t ino)
{
	struct xattrs xf = { 0 }, xt = { 0 };
	void *vt = NULL, *vf = NULL;
	size_t lt = 0, lf = 0;
	int r;

	r = xattrs_list(s->j, s->to_id, ino, &xt);
	if (r == 0 && s->from_id)
		r = xattrs_list(s->j, s->from_id, ino, &xf);
	if (r < 0) {
		r = repl_send_sfail(s, r, "cannot list the xattrs of inode %" PRIu64 " in the snapshot", ino);
		goto out;
	}
	for (size_t i = 0; i < xf.n; i++) {
		if (xattrs_has(&xt, xf.names[i]))
			continue;
		r = repl_writer_removexattr(s->w, ino, xf.names[i]);
		if (r < 0) {
			r = repl_send_wfail(s, r);
			goto out;
		}
	}
	for (size_t i = 0; i < xt.n; i++) {
		struct repl_xattr x = { .ino = ino, .name = xt.names[i] };

		r = xattr_get(s->j, s->to_id, ino, xt.names[i], &vt, &lt);
		if (r < 0) {
			r = repl_send_sfail(s, r, "cannot read xattr '%s' of inode %" PRIu64 " in the snapshot",
				  xt.names[i], ino);
			goto out;
		}
		if (xattrs_has(&xf, xt.names[i])) {
			r = xattr_get(s->j, s->from_id, ino, xt.names[i], &vf, &lf);
			if (r < 0 && r != -ENODATA) {
				r = repl_send_sfail(s, r, "cannot read xattr '%s' of inode %" PRIu64
					  " in the snapshot", xt.names[i], ino);
				goto out;
			}
			if (r == 0 && lf == lt && memcmp(vf, vt, lt) == 0) {
				free(vt);
				free(vf);
				vt = vf = NULL;
				continue;
			}
			free(vf);
			vf = NULL;
		}
		x.value = lt ? vt : NULL;
		x.size = lt;
		r = repl_writer_setxattr(s->w, &x);
		free(vt);
		vt = NULL;
		if (r < 0) {
			r = repl_send_wfail(s, r);
			goto out;
		}
	}
	r = 0;
out:
	free(vt);
	free(vf);
	xattrs_release(&xf);
	xattrs_release(&xt);
	return r;
}

/* SETATTR from `st` (the object's stat in the snapshot), then the xattrs that differ. */
static int send_attr_of(struct send *s, uint64_t ino, const struct stat *st)
{
	struct repl_setattr a = { .ino = ino };
	int r;

	a.valid = REPL_ATTR_UID | REPL_ATTR_GID | REPL_ATTR_ATIME | REPL_ATTR_MTIME;
	a.uid = st->st_uid;
	a.gid = st->st_gid;
	if (!S_ISLNK(st->st_mode)) {
		a.valid |= REPL_ATTR_MODE;
		a.mode = st->st_mode & 07777;
	}
	if (S_ISREG(st->st_mode)) {
		a.valid |= REPL_ATTR_SIZE;
		a.size = (uint64_t)st->st_size;
	}
	a.atime_sec = st->st_atim.tv_sec;
	a.atime_nsec = (uint32_t)st->st_atim.tv_nsec;
	a.mtime_sec = st->st_mtim.tv_sec;
	a.mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	r = repl_writer_setattr(s->w, &a);
	if (r < 0)
		return repl_send_wfail(s, r);
	return send_xattrs(s, ino);
}

int repl_send_attr(struct send *s, const struct journal_diff *d)
{
	struct stat st;
	int r;

	r = repl_send_attrs_get(s, d->ino, &st) ? 0 : journal_snap_stat(s->j, s->to_id, d->ino, &st);
	if (r < 0)
		return repl_send_sfail(s, r, "cannot stat inode %" PRIu64 " in the snapshot", d->ino);
	return send_attr_of(s, d->ino, &st);
}
