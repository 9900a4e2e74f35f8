/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sender: the journal's change set between two snapshots, as a stream
 * (docs/STREAM.md §The change set). Everything is read from journal_diff()
 * and the snapshot views; the live tree is never touched and never scanned.
 *
 * Namespace changes go through the receiver's staging directory
 * (JOURNAL_STAGING_INO, entries named by jino): an object that loses its
 * last old name before it gets a new one, or that is new, waits there, so
 * renames, swaps and hard links need no ordering beyond journal_diff's:
 *
 *   UNLINK, deepest first: surviving object, first time → RENAME to staging;
 *                          otherwise UNLINK / RMDIR
 *   CREATE:                CREATE in place if journal_diff names an entry whose
 *                          directory exists by then, else CREATE in staging;
 *                          a regular file created in place is followed at once
 *                          by its DATA and ATTR (below), so the receiver writes
 *                          it while it is at hand, and the sender reads files
 *                          while the receiver creates them (stream version 2)
 *   LINK, shallowest first: object (said to be) in staging → RENAME out; else LINK
 *
 * An object created in place still gets its RENAME out of staging, which
 * the receiver finds done (the target holds it): every stream keeps the
 * records, one for one, of the form that created every object in staging,
 * so a stream that an older sender partly sent resumes correctly.
 *   end of links:          objects still in staging kept another name → UNLINK
 *   DATA:                  DATA / PUNCH from the `to` view, by SEEK_DATA/SEEK_HOLE
 *                          (files sent with their CREATE are skipped)
 *   ATTR:                  SETATTR; REMOVEXATTR/SETXATTR for what differs from `from`
 *                          (the same)
 *
 * The same pair of snapshots always yields the same records, which is
 * what resuming by record number needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "repl_i.h"
#include "send_i.h"

#define DEFAULT_PROGRESS_MS 250

/* ---- a set of jinos (open addressing, linear probing) ----------------------- */


/* The home slot of `ino` in a table of `cap` (a power of two) slots. */
static size_t ino_slot(uint64_t ino, size_t cap)
{
	uint64_t x = ino;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

static size_t inoset_slot(const struct inoset *s, uint64_t ino)
{
	return ino_slot(ino, s->cap);
}

static bool inoset_has(const struct inoset *s, uint64_t ino)
{
	if (!s->cap)
		return false;
	for (size_t i = inoset_slot(s, ino);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == ino)
			return true;
		if (s->v[i] == 0)
			return false;
	}
}

static int inoset_add(struct inoset *s, uint64_t ino);

static int inoset_grow(struct inoset *s)
{
	struct inoset bigger = { .cap = s->cap ? s->cap * 2 : 64 };

	bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
	if (!bigger.v)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->v[i])
			inoset_add(&bigger, s->v[i]);
	free(s->v);
	*s = bigger;
	return 0;
}

static int inoset_add(struct inoset *s, uint64_t ino)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		int r = inoset_grow(s);
		if (r < 0)
			return r;
	}
	for (i = inoset_slot(s, ino); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == ino)
			return 0;
	s->v[i] = ino;
	s->n++;
	return 0;
}

/* Remove ino; returns whether it was there. Backward-shift deletion, no tombstones. */
static bool inoset_del(struct inoset *s, uint64_t ino)
{
	size_t i, j, mask = s->cap - 1;

	if (!s->cap)
		return false;
	for (i = inoset_slot(s, ino); s->v[i] != ino; i = (i + 1) & mask)
		if (s->v[i] == 0)
			return false;
	s->v[i] = 0;
	s->n--;
	for (j = (i + 1) & mask; s->v[j]; j = (j + 1) & mask) {
		size_t home = inoset_slot(s, s->v[j]);
		/* move v[j] into the hole at i unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			s->v[i] = s->v[j];
			s->v[j] = 0;
			i = j;
		}
	}
	return true;
}

/* ---- attributes of created objects (struct sattrs) --------------------------------- */

static size_t sattrs_slot(const struct sattrs *a, uint64_t ino)
{
	return ino_slot(ino, a->cap);
}

static int sattrs_grow(struct sattrs *a)
{
	struct sattrs bigger = { .cap = a->cap ? a->cap * 2 : 1024 };

	bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
	if (!bigger.v)
		return -ENOMEM;
	for (size_t i = 0; i < a->cap; i++) {
		size_t k;

		if (!a->v[i].ino)
			continue;
		for (k = sattrs_slot(&bigger, a->v[i].ino); bigger.v[k].ino; k = (k + 1) & (bigger.cap - 1))
			;
		bigger.v[k] = a->v[i];
	}
	bigger.n = a->n;
	free(a->v);
	*a = bigger;
	return 0;
}

/* Keep what ATTR will need of `st`; best effort (full or out of memory: ATTR stats). */
static void sattrs_put(struct sattrs *a, uint64_t ino, const struct stat *st)
{
	size_t i;

	if (a->n >= SEND_ATTRS_MAX || ((a->n + 1) * 2 > a->cap && sattrs_grow(a) < 0))
		return;
	for (i = sattrs_slot(a, ino); a->v[i].ino && a->v[i].ino != ino; i = (i + 1) & (a->cap - 1))
		;
	if (!a->v[i].ino)
		a->n++;
	a->v[i] = (struct sattr){
		.ino = ino, .size = (uint64_t)st->st_size,
		.atime = st->st_atim.tv_sec, .atime_ns = (uint32_t)st->st_atim.tv_nsec,
		.mtime = st->st_mtim.tv_sec, .mtime_ns = (uint32_t)st->st_mtim.tv_nsec,
		.mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
	};
}

bool repl_send_attrs_get(const struct send *s, uint64_t ino, struct stat *ret)
{
	const struct sattrs *a = &s->attrs;

	if (!a->cap)
		return false;
	for (size_t i = sattrs_slot(a, ino); a->v[i].ino; i = (i + 1) & (a->cap - 1)) {
		const struct sattr *v = &a->v[i];

		if (v->ino != ino)
			continue;
		memset(ret, 0, sizeof(*ret));
		ret->st_mode = v->mode;
		ret->st_uid = v->uid;
		ret->st_gid = v->gid;
		ret->st_size = (off_t)v->size;
		ret->st_atim.tv_sec = v->atime;
		ret->st_atim.tv_nsec = v->atime_ns;
		ret->st_mtim.tv_sec = v->mtime;
		ret->st_mtim.tv_nsec = v->mtime_ns;
		return true;
	}
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- a transport that counts what is written ----------------------------------- */

struct count_transport {
	struct repl_transport base;
	struct repl_transport *inner;   /* borrowed */
	uint64_t written;
};

static ssize_t count_read(struct repl_transport *t, void *buf, size_t len)
{
	return repl_transport_read(((struct count_transport *)t)->inner, buf, len);
}

static int count_write(struct repl_transport *t, const void *buf, size_t len)
{
	struct count_transport *c = (struct count_transport *)t;
	int r = repl_transport_write(c->inner, buf, len);

	if (r == 0)
		c->written += len;
	return r;
}

static int count_close(struct repl_transport *t)
{
	return 0;   /* never closed: the caller owns the inner transport */
}

static const struct repl_transport_ops count_ops = {
	.read = count_read, .write = count_write, .close = count_close,
};

/* ---- the sender --------------------------------------------------------------- */


static void staging_name(uint64_t ino, char name[STAGING_NAME_MAX])
{
	snprintf(name, STAGING_NAME_MAX, "%" PRIu64, ino);
}

/* A writer error: its message becomes the thread's. */
int repl_send_wfail(struct send *s, int r)
{
	s->failed = true;
	return repl_fail(r, "%s", repl_writer_errmsg(s->w));
}

int repl_send_sfail(struct send *s, int r, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->failed = true;
	return repl_fail(r, "%s: %s", msg, strerror(-r));
}

/*
 * Progress totals: one pass over the change set (journal only, no data),
 * on a thread of its own, so that the stream starts at once; until it is
 * done, progress reports give totals of 0.
 */
struct send_estimate {
	pthread_t thread;
	struct journal *j;
	uint64_t from_id, to_id;
	bool scan;
	atomic_bool stop, done;
	uint64_t files_total, bytes_total, last_ino;   /* the thread's until `done` */
};

static int estimate_cb(void *arg, const struct journal_diff *d)
{
	struct send_estimate *e = arg;

	if (atomic_load_explicit(&e->stop, memory_order_relaxed))
		return -ECANCELED;
	if (d->kind == JDIFF_DATA) {
		if (d->ino != e->last_ino)
			e->files_total++;
		e->last_ino = d->ino;
		e->bytes_total += d->len;
	}
	return 0;
}

static void *estimate_main(void *arg)
{
	struct send_estimate *e = arg;

	if ((e->scan ? journal_diff_scan : journal_diff)(e->j, e->from_id, e->to_id,
							  estimate_cb, e) == 0)
		atomic_store_explicit(&e->done, true, memory_order_release);
	return NULL;
}

/* The totals, once the thread has them. */
static void estimate_take(struct send *s)
{
	struct send_estimate *e = s->est;

	if (e && atomic_load_explicit(&e->done, memory_order_acquire)) {
		s->prog.files_total = e->files_total;
		s->prog.bytes_total = e->bytes_total;
	}
}

static void estimate_start(struct send *s, bool scan)
{
	struct send_estimate *e = calloc(1, sizeof(*e));

	if (!e)
		return;   /* no totals: progress still counts what is done */
	*e = (struct send_estimate){ .j = s->j, .from_id = s->from_id, .to_id = s->to_id,
				     .scan = scan };
	if (pthread_create(&e->thread, NULL, estimate_main, e) != 0) {
		free(e);
		return;
	}
	s->est = e;
}

/* Wait for the totals (`cancel`: give them up if not there yet). */
static void estimate_stop(struct send *s, bool cancel)
{
	if (!s->est)
		return;
	if (cancel)
		atomic_store(&s->est->stop, true);
	pthread_join(s->est->thread, NULL);
	estimate_take(s);
	free(s->est);
	s->est = NULL;
}

void repl_send_progress(struct send *s, bool final)
{
	int64_t now;

	if (!s->o->progress)
		return;
	now = util_mono_ns();
	if (!final && now < s->next_progress_ns)
		return;
	s->next_progress_ns = now + s->progress_every_ns;
	estimate_take(s);
	s->prog.records = repl_writer_next_seq(s->w) - 1;
	s->o->progress(s->o->progress_arg, &s->prog);
}

static int on_unlink(struct send *s, const struct journal_diff *d)
{
	struct repl_unlink u = { .parent = d->parent, .name = d->name, .ino = d->ino };
	char sname[STAGING_NAME_MAX];
	int r;

	if (d->survives && !inoset_has(&s->staging, d->ino)) {
		struct repl_rename rn = {
			.ino = d->ino, .old_parent = d->parent, .old_name = d->name,
			.new_parent = JOURNAL_STAGING_INO, .new_name = sname,
			.flags = REPL_RENAME_NOREPLACE,
		};

		staging_name(d->ino, sname);
		r = inoset_add(&s->staging, d->ino);
		if (r < 0)
			return repl_send_sfail(s, r, "cannot track inode %" PRIu64, d->ino);
		r = repl_writer_rename(s->w, &rn);
		return r < 0 ? repl_send_wfail(s, r) : 0;
	}
	if (d->survives && S_ISDIR(d->type))
		return repl_send_sfail(s, -EIO, "change set unlinks directory %" PRIu64 " twice",
				       d->ino);
	r = S_ISDIR(d->type) ? repl_writer_rmdir(s->w, &u) : repl_writer_unlink(s->w, &u);
	return r < 0 ? repl_send_wfail(s, r) : 0;
}

static int on_create(struct send *s, const struct journal_diff *d)
{
	char sname[STAGING_NAME_MAX], target[REPL_SYMLINK_MAX + 1];
	struct repl_create c = { .ino = d->ino, .parent = JOURNAL_STAGING_INO, .name = sname };
	struct stat st;
	size_t len = 0;
	int r;

	r = journal_snap_stat(s->j, s->to_id, d->ino, &st);
	if (r < 0)
		return repl_send_sfail(s, r, "cannot stat inode %" PRIu64 " in the snapshot", d->ino);
	if (S_ISLNK(st.st_mode)) {
		r = journal_snap_readlink(s->j, s->to_id, d->ino, target, sizeof(target) - 1, &len);
		if (r == 0 && (len == 0 || len > REPL_SYMLINK_MAX))
			r = -ENAMETOOLONG;
		if (r < 0)
			return repl_send_sfail(s, r, "cannot read symlink %" PRIu64 " in the snapshot",
					       d->ino);
		target[len] = '\0';
		c.target = target;
	}
	if (d->name) {
		/* in place: no entry in a staging directory as big as the change */
		c.parent = d->parent;
		c.name = d->name;
	} else {
		staging_name(d->ino, sname);
	}
	c.mode = st.st_mode & (S_IFMT | 07777);
	c.uid = st.st_uid;
	c.gid = st.st_gid;
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		c.rdev_major = major(st.st_rdev);
		c.rdev_minor = minor(st.st_rdev);
	}
	/* in place too: the RENAME out of staging follows (a no-op, see the top) */
	r = inoset_add(&s->staging, d->ino);
	if (r < 0)
		return repl_send_sfail(s, r, "cannot track inode %" PRIu64, d->ino);
	if (d->name && S_ISREG(st.st_mode)) {
		/* with its data and attributes (see the top) */
		r = inoset_add(&s->inlined, d->ino);
		if (r < 0)
			return repl_send_sfail(s, r, "cannot track inode %" PRIu64, d->ino);
		return repl_send_create_file(s, &c, &st);
	}
	sattrs_put(&s->attrs, d->ino, &st);   /* for its ATTR, after all the data */
	r = repl_writer_create(s->w, &c);
	return r < 0 ? repl_send_wfail(s, r) : 0;
}

static int on_link(struct send *s, const struct journal_diff *d)
{
	char sname[STAGING_NAME_MAX];
	int r;

	if (inoset_del(&s->staging, d->ino)) {
		struct repl_rename rn = {
			.ino = d->ino, .old_parent = JOURNAL_STAGING_INO, .old_name = sname,
			.new_parent = d->parent, .new_name = d->name,
			.flags = REPL_RENAME_NOREPLACE,
		};

		staging_name(d->ino, sname);
		r = repl_writer_rename(s->w, &rn);
	} else {
		struct repl_link l = { .ino = d->ino, .parent = d->parent, .name = d->name };

		r = repl_writer_link(s->w, &l);
	}
	return r < 0 ? repl_send_wfail(s, r) : 0;
}

/*
 * After the links: an object still in staging lost one name but kept
 * another that did not change; drop the staging name. In jino order, so the
 * stream stays deterministic.
 */
static int sweep(struct send *s)
{
	uint64_t *left = NULL;
	size_t n = 0;
	int r = 0;

	s->swept = true;
	if (s->staging.n == 0)
		return 0;
	left = malloc(s->staging.n * sizeof(*left));
	if (!left)
		return repl_send_sfail(s, -ENOMEM, "cannot sweep the staging directory");
	for (size_t i = 0; i < s->staging.cap; i++)
		if (s->staging.v[i])
			left[n++] = s->staging.v[i];
	qsort(left, n, sizeof(*left), cmp_u64);
	for (size_t i = 0; i < n && r == 0; i++) {
		char sname[STAGING_NAME_MAX];
		struct repl_unlink u = { .parent = JOURNAL_STAGING_INO, .name = sname, .ino = left[i] };
		struct stat st;

		r = journal_snap_stat(s->j, s->to_id, left[i], &st);
		if (r < 0) {
			r = repl_send_sfail(s, r, "cannot stat inode %" PRIu64 " in the snapshot",
					    left[i]);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			r = repl_send_sfail(s, -EIO, "change set leaves inode %" PRIu64 " without a name",
				  left[i]);
			break;
		}
		staging_name(left[i], sname);
		r = repl_writer_unlink(s->w, &u);
		if (r < 0)
			r = repl_send_wfail(s, r);
	}
	free(s->staging.v);
	s->staging = (struct inoset){ 0 };
	free(left);
	return r;
}

static int diff_cb(void *arg, const struct journal_diff *d)
{
	struct send *s = arg;
	int r;

	if (d->kind < s->last_kind || d->kind > JDIFF_ATTR)
		return repl_send_sfail(s, -EIO, "change set out of order (%d after %d)", (int)d->kind,
			     (int)s->last_kind);
	/* the queue of one kind is sent before the next kind begins */
	if (d->kind != s->last_kind && s->ahead_n) {
		r = repl_send_data_flush(s);
		if (r < 0)
			return r;
	}
	s->last_kind = d->kind;
	if (d->kind >= JDIFF_DATA && !s->swept) {
		r = sweep(s);
		if (r < 0)
			return r;
	}
	switch (d->kind) {
	case JDIFF_UNLINK: r = on_unlink(s, d); break;
	case JDIFF_CREATE: r = on_create(s, d); break;
	case JDIFF_LINK: r = on_link(s, d); break;
	case JDIFF_DATA:
		r = inoset_has(&s->inlined, d->ino) ? 0 : repl_send_data(s, d);
		break;
	case JDIFF_ATTR:
		r = inoset_has(&s->inlined, d->ino) ? 0 : repl_send_attr(s, d);
		break;
	default: r = repl_send_sfail(s, -EIO, "unknown change kind %d", (int)d->kind); break;
	}
	repl_send_progress(s, false);
	return r;
}

/* ---- the conversation ------------------------------------------------------------ */

static int status_fail(const struct repl_record *rec, struct repl_transport *t,
		       const char *to_snap)
{
	return repl_fail(rec->status.error, "%s %s snapshot '%s': %s", t->peer,
			 rec->type == REPL_REC_REFUSE ? "refused" : "did not accept",
			 to_snap, rec->status.message);
}

/* Read one reply; REFUSE/NAK become their error with the peer's message. */
static int await_reply(struct repl_reader *rd, struct repl_transport *t, const char *to_snap,
		       struct repl_record *ret)
{
	int r = repl_reader_next(rd, ret);

	if (r == 0)
		return repl_fail(-ECONNRESET, "%s closed the connection", t->peer);
	if (r < 0)
		return repl_fail(r, "bad reply from %s: %s", t->peer, repl_reader_errmsg(rd));
	if (ret->type == REPL_REC_REFUSE || ret->type == REPL_REC_NAK)
		return status_fail(ret, t, to_snap);
	return 1;
}

/*
 * The stream broke while sending: if the peer explained itself first (a
 * NAK before it hung up), that is the better error.
 */
static int broken_stream(struct repl_reader *rd, struct repl_transport *t, const char *to_snap,
			 int r)
{
	struct repl_record rec;
	char msg[512];

	if (!rd || (r != -EPIPE && r != -ECONNRESET))
		return r;
	snprintf(msg, sizeof(msg), "%s", repl_last_errmsg());
	if (repl_reader_next(rd, &rec) == 1 &&
	    (rec.type == REPL_REC_NAK || rec.type == REPL_REC_REFUSE))
		return status_fail(&rec, t, to_snap);
	return repl_fail(r, "%s", msg);
}

int repl_send(struct journal *j, const char *from_snap, const char *to_snap,
	      struct repl_transport *t, const struct repl_send_opts *o,
	      struct repl_send_stats *ret_stats)
{
	static const struct repl_send_opts defaults = { 0 };
	struct count_transport ct = { .base = { .ops = &count_ops }, .inner = t };
	struct repl_writer_opts wo = { 0 };
	struct journal_snap from = { 0 }, to;
	struct repl_reader *rd = NULL;
	struct repl_hello h = { 0 };
	struct repl_record rec;
	struct send s = { .j = j, .last_kind = JDIFF_UNLINK };
	int64_t t0 = util_mono_ns();
	const char *src;
	int r;

	o = o ? o : &defaults;
	s.o = o;
	r = journal_snap_get(j, to_snap, &to);
	if (r < 0)
		return repl_fail(r, "cannot send snapshot '%s': %s", to_snap,
				 r == -ENOENT ? "no such snapshot" : journal_strerror(r));
	if (from_snap) {
		r = journal_snap_get(j, from_snap, &from);
		if (r < 0)
			return repl_fail(r, "cannot send from snapshot '%s': %s", from_snap,
					 r == -ENOENT ? "no such snapshot" : journal_strerror(r));
		if (from.seq >= to.seq || from.id == to.id)
			return repl_fail(-EINVAL, "cannot send from '%s' to '%s': "
					 "'%s' is not older", from_snap, to_snap, from_snap);
	}
	src = journal_source_id(j);
	if (!src || strlen(src) != REPL_UUID_STRLEN)
		return repl_fail(-EINVAL, "cannot send: the journal has no source id");
	memcpy(h.source_uuid, src, REPL_UUID_STRLEN + 1);
	h.from_snap = from_snap;
	h.to_snap = to_snap;
	s.from_id = from.id;
	s.to_id = to.id;

	if (o->progress) {
		s.progress_every_ns = (int64_t)(o->progress_interval_ms > 0 ?
						o->progress_interval_ms : DEFAULT_PROGRESS_MS) * 1000000;
		estimate_start(&s, o->scan);   /* meanwhile, the handshake */
	}
	ct.base.timeout_ms = t->timeout_ms;
	snprintf(ct.base.peer, sizeof(ct.base.peer), "%s", t->peer);
	wo.level = o->level;
	r = repl_writer_new(&ct.base, &wo, &s.w);
	if (r == 0 && !o->one_way)
		r = repl_reader_new(&ct.base, REPL_READ_REPLIES, &rd);
	s.buf = malloc(REPL_DATA_CHUNK);
	if (r == 0 && !s.buf)
		r = -ENOMEM;
	if (r < 0) {
		repl_fail(r, "cannot send snapshot '%s': %s", to_snap, strerror(-r));
		goto out;
	}

	r = repl_writer_hello(s.w, &h);
	if (r < 0) {
		r = broken_stream(rd, t, to_snap, repl_send_wfail(&s, r));
		goto out;
	}
	if (!o->one_way) {
		r = await_reply(rd, t, to_snap, &rec);
		if (r < 0)
			goto out;
		if (rec.type == REPL_REC_ACK && strcmp(rec.ack.snapshot, to_snap) == 0) {
			/* the receiver completed this stream before; its ACK was lost */
			log_debug("%s has '%s' already", t->peer, to_snap);
			r = 0;
			goto out;
		}
		if (rec.type != REPL_REC_READY) {
			r = repl_fail(-EPROTO, "%s answered hello with %s", t->peer,
				      repl_rec_type_name(rec.type));
			goto out;
		}
		s.resume = rec.ready.resume_from;
	}
	r = repl_writer_set_resume(s.w, s.resume);
	if (r < 0) {
		r = repl_send_wfail(&s, r);
		goto out;
	}
	log_debug("sending '%s' -> '%s' to %s from record %" PRIu64,
		  from_snap ? from_snap : "(full)", to_snap, t->peer, s.resume + 1);

	if (o->progress)
		repl_send_progress(&s, true);

	journal_keep_open(j, true);
	repl_send_ra_start(&s);
	r = (o->scan ? journal_diff_scan : journal_diff)(j, s.from_id, s.to_id, diff_cb, &s);
	if (r == 0 && !s.swept)
		r = sweep(&s);
	repl_send_ra_stop(&s);
	journal_keep_open(j, false);
	/* what is still queued: sent if all went well, closed in any case */
	if (r == 0)
		r = repl_send_data_flush(&s);
	else
		repl_send_data_flush_drop(&s);
	if (r < 0) {
		if (!s.failed)
			repl_fail(r, "cannot read the change set of '%s': %s", to_snap,
				  journal_strerror(r));
		r = broken_stream(rd, t, to_snap, r);
		goto out;
	}
	if (s.data_ino)
		s.prog.files_done++;
	r = repl_writer_trailer(s.w);
	if (r < 0) {
		r = broken_stream(rd, t, to_snap, repl_send_wfail(&s, r));
		goto out;
	}
	estimate_stop(&s, false);   /* done by now: it reads what the send read, and no data */
	repl_send_progress(&s, true);
	if (!o->one_way) {
		r = await_reply(rd, t, to_snap, &rec);
		if (r < 0)
			goto out;
		if (rec.type != REPL_REC_ACK || strcmp(rec.ack.snapshot, to_snap) != 0) {
			r = repl_fail(-EPROTO, "%s answered the stream of '%s' with %s", t->peer,
				      to_snap, repl_rec_type_name(rec.type));
			goto out;
		}
	}
	r = 0;
out:
	estimate_stop(&s, true);
	/* also on failure: what an interrupted attempt carried counts in totals */
	if (ret_stats && s.w) {
		uint64_t n = repl_writer_next_seq(s.w) - 1;

		*ret_stats = (struct repl_send_stats){
			.resumed_from = s.resume,
			.records = n,
			.records_sent = n > s.resume ? n - s.resume : 0,
			.data_bytes = s.data_sent,
			.wire_bytes = ct.written,
			.files = s.files,
			.duration_ns = util_mono_ns() - t0,
		};
	}
	free(s.staging.v);
	free(s.inlined.v);
	free(s.attrs.v);
	free(s.buf);
	repl_reader_free(rd);
	repl_writer_free(s.w);
	return r;
}

int repl_send_delete(struct journal *j, const char *name, struct repl_transport *t)
{
	struct repl_hello h = { .flags = REPL_HELLO_DELETE, .to_snap = name };
	struct repl_writer *w = NULL;
	struct repl_reader *rd = NULL;
	struct repl_record rec;
	const char *src = journal_source_id(j);
	int r;

	if (!src || strlen(src) != REPL_UUID_STRLEN)
		return repl_fail(-EINVAL, "cannot delete snapshot '%s': no source id", name);
	memcpy(h.source_uuid, src, REPL_UUID_STRLEN + 1);
	r = repl_writer_new(t, NULL, &w);
	if (r == 0)
		r = repl_reader_new(t, REPL_READ_REPLIES, &rd);
	if (r < 0) {
		r = repl_fail(r, "cannot delete snapshot '%s': %s", name, strerror(-r));
		goto out;
	}
	r = repl_writer_hello(w, &h);
	if (r == 0)
		r = repl_writer_flush(w);
	if (r < 0) {
		r = broken_stream(rd, t, name, repl_fail(r, "%s", repl_writer_errmsg(w)));
		goto out;
	}
	r = await_reply(rd, t, name, &rec);
	if (r > 0 && (rec.type != REPL_REC_ACK || strcmp(rec.ack.snapshot, name) != 0))
		r = repl_fail(-EPROTO, "%s answered the deletion of '%s' with %s", t->peer, name,
			      repl_rec_type_name(rec.type));
	if (r > 0)
		r = 0;
out:
	repl_reader_free(rd);
	repl_writer_free(w);
	return r;
}
