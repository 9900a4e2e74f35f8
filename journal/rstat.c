/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Recursive statistics (CephFS rstats) of every directory: rctime, rbytes,
 * rfiles, rsubdirs, one `rstat` row per directory.
 *
 * The writer maintains them inside each batch's transaction, in two
 * accumulation levels so that a batch of 1000 writes to one file costs one
 * walk to the root, not 1000:
 *
 *  1. object deltas (omap): size changes and change times of non-directory
 *     objects, keyed by object. They become directory deltas, one per live
 *     parent of the object (every hard link counts), when the namespace is
 *     about to change (rstat_flush_objects()) and at the end of the batch.
 *  2. directory deltas (rmap): changes of a directory's direct children
 *     totals and change times. rstat_flush() walks each touched directory's
 *     chain of parents once, sums the deltas per ancestor (to the root) and
 *     raises rctime until the first ancestor that is already as new, then
 *     writes each touched row once. It runs before anything moves or
 *     removes a directory (the parent chains are only valid until then)
 *     and at the end of the batch.
 *
 * Directories have exactly one parent, cached in jobj.parent (writer), and
 * their stored rctime in jobj.rctime (writer), so the walk needs no query.
 * All of this is writer state: callers hold j->wconn_lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirrorfs/log.h"
#include "journal_i.h"

#define RSTAT_MAX_DEPTH 65536

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		/* Writer state; see "Memory" in journal_i.h. */
		log_err("journal: out of memory in the writer");
		abort();
	}
	return q;
}

static inline size_t hash64(uint64_t k)
{
	return (size_t)((k * 0x9E3779B97F4A7C15ULL) >> 17);
}

/* Open addressing over an index array; returns the slot for `key`. */
static uint32_t *slot_find(uint32_t *idx, size_t mask, uint64_t key,
			   const void *v, size_t esize, size_t keyoff)
{
	size_t h = hash64(key) & mask;

	for (;;) {
		uint32_t i = idx[h];
		if (!i)
			return &idx[h];
		const char *e = (const char *)v + (size_t)(i - 1) * esize;
		uint64_t k;
		memcpy(&k, e + keyoff, sizeof(k));
		if (k == key)
			return &idx[h];
		h = (h + 1) & mask;
	}
}

/* ---- directory deltas ---------------------------------------------------- */

static void rmap_grow(struct rmap *m)
{
	size_t nm = m->mask ? (m->mask + 1) * 2 : 64;

	free(m->idx);
	m->idx = xrealloc(NULL, nm * sizeof(*m->idx));
	memset(m->idx, 0, nm * sizeof(*m->idx));
	m->mask = nm - 1;
	for (size_t i = 0; i < m->n; i++)
		*slot_find(m->idx, m->mask, m->v[i].ino, m->v, sizeof(*m->v),
			   offsetof(struct rdelta, ino)) = (uint32_t)(i + 1);
}

static size_t rmap_get(struct journal *j, uint64_t ino)
{
	struct rmap *m = &j->rmap;
	uint32_t *slot;

	if ((m->n + 1) * 2 > m->mask + 1)
		rmap_grow(m);
	slot = slot_find(m->idx, m->mask, ino, m->v, sizeof(*m->v), offsetof(struct rdelta, ino));
	if (*slot)
		return *slot - 1;
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
	}
	memset(&m->v[m->n], 0, sizeof(m->v[m->n]));
	m->v[m->n].ino = ino;
	m->v[m->n].o = obj_get(j, ino);
	*slot = (uint32_t)(m->n + 1);
	return m->n++;
}

void rstat_dir_delta(struct journal *j, uint64_t dir, int64_t d_bytes, int64_t d_files,
		     int64_t d_subdirs, int64_t t)
{
	struct rdelta *e;
	size_t i;

	if (!dir)
		return;
	i = rmap_get(j, dir);  /* may move j->rmap.v */
	e = &j->rmap.v[i];
	e->d_bytes += d_bytes;
	e->d_files += d_files;
	e->d_subdirs += d_subdirs;
	if (t > e->t_direct)
		e->t_direct = t;
}

/* ---- object deltas ------------------------------------------------------- */

static void omap_grow(struct omap *m)
{
	size_t nm = m->mask ? (m->mask + 1) * 2 : 64;

	free(m->idx);
	m->idx = xrealloc(NULL, nm * sizeof(*m->idx));
	memset(m->idx, 0, nm * sizeof(*m->idx));
	m->mask = nm - 1;
	for (size_t i = 0; i < m->n; i++) {
		uint64_t key = m->v[i].o->ino;
		size_t h = hash64(key) & m->mask;
		while (m->idx[h])
			h = (h + 1) & m->mask;
		m->idx[h] = (uint32_t)(i + 1);
	}
}

void rstat_obj_delta(struct journal *j, struct jobj *o, int64_t d_bytes, int64_t t)
{
	struct omap *m = &j->omap;
	struct odelta *e;
	size_t h;

	if (S_ISDIR(o->type)) {
		/* a directory's own change: its rctime, and up */
		rstat_dir_delta(j, o->ino, 0, 0, 0, t);
		return;
	}
	if ((m->n + 1) * 2 > m->mask + 1)
		omap_grow(m);
	for (h = hash64(o->ino) & m->mask; m->idx[h]; h = (h + 1) & m->mask)
		if (m->v[m->idx[h] - 1].o == o)
			break;
	if (!m->idx[h]) {
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 64;
			m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
		}
		m->v[m->n] = (struct odelta){ .o = obj_ref(o) };
		m->idx[h] = (uint32_t)(m->n + 1);
		m->n++;
	}
	e = &m->v[m->idx[h] - 1];
	e->d_bytes += d_bytes;
	if (t > e->t)
		e->t = t;
}

int rstat_flush_objects(struct journal *j)
{
	struct omap *m = &j->omap;
	sqlite3_stmt *s;
	int r = 0, rc;

	for (size_t i = 0; i < m->n; i++) {
		struct odelta *e = &m->v[i];
		if (r == 0 && (e->d_bytes || e->t)) {
			r = db_stmt(j->wconn, ST_NS_PARENTS, &s);
			if (r == 0) {
				sqlite3_bind_int64(s, 1, (int64_t)e->o->ino);
				while ((rc = sqlite3_step(s)) == SQLITE_ROW)
					rstat_dir_delta(j, (uint64_t)sqlite3_column_int64(s, 0),
							e->d_bytes, 0, 0, e->t);
				if (rc != SQLITE_DONE)
					r = journal_err(rc);
				sqlite3_reset(s);
			}
		}
		obj_put(e->o);
	}
	m->n = 0;
	if (m->idx)
		memset(m->idx, 0, (m->mask + 1) * sizeof(*m->idx));
	return r;
}

static void rmap_clear(struct journal *j)
{
	struct rmap *m = &j->rmap;

	for (size_t i = 0; i < m->n; i++)
		obj_put(m->v[i].o);
	m->n = 0;
	if (m->idx)
		memset(m->idx, 0, (m->mask + 1) * sizeof(*m->idx));
}

int rstat_flush(struct journal *j)
{
	struct rmap *m = &j->rmap;
	sqlite3_stmt *s;
	size_t n0;
	int r;

	r = rstat_flush_objects(j);
	if (r < 0)
		goto out;

	n0 = m->n;
	for (size_t i = 0; i < n0; i++) {
		struct rdelta d = m->v[i];
		size_t cur = i;
		int depth = 0;

		if (d.d_bytes || d.d_files || d.d_subdirs) {
			for (;;) {
				struct rdelta *e = &m->v[cur];
				e->t_bytes += d.d_bytes;
				e->t_files += d.d_files;
				e->t_subdirs += d.d_subdirs;
				if (!e->o || !e->o->parent || ++depth > RSTAT_MAX_DEPTH)
					break;
				cur = rmap_get(j, e->o->parent);
			}
		}
		cur = i;
		depth = 0;
		while (d.t_direct) {
			struct rdelta *e = &m->v[cur];
			if (!e->o) {
				e->t_set = d.t_direct;
				break;
			}
			if (e->o->rctime >= d.t_direct)
				break;
			e->o->rctime = e->t_set = d.t_direct;
			if (!e->o->parent || ++depth > RSTAT_MAX_DEPTH)
				break;
			cur = rmap_get(j, e->o->parent);
		}
	}

	for (size_t i = 0; i < m->n; i++) {
		struct rdelta *e = &m->v[i];
		if (!e->t_bytes && !e->t_files && !e->t_subdirs && !e->t_set)
			continue;
		r = db_stmt(j->wconn, ST_RSTAT_ADD, &s);
		if (r < 0)
			goto out;
		sqlite3_bind_int64(s, 1, (int64_t)e->ino);
		sqlite3_bind_int64(s, 2, e->t_bytes);
		sqlite3_bind_int64(s, 3, e->t_files);
		sqlite3_bind_int64(s, 4, e->t_subdirs);
		sqlite3_bind_int64(s, 5, e->t_set);
		r = db_step_done(s);
		if (r < 0)
			goto out;
	}
out:
	rmap_clear(j);
	return r;
}

void rstat_batch_reset(struct journal *j)
{
	struct omap *m = &j->omap;

	for (size_t i = 0; i < m->n; i++)
		obj_put(m->v[i].o);
	m->n = 0;
	if (m->idx)
		memset(m->idx, 0, (m->mask + 1) * sizeof(*m->idx));
	rmap_clear(j);
}

void rstat_batch_free(struct journal *j)
{
	rstat_batch_reset(j);
	free(j->rmap.v);
	free(j->rmap.idx);
	free(j->omap.v);
	free(j->omap.idx);
	memset(&j->rmap, 0, sizeof(j->rmap));
	memset(&j->omap, 0, sizeof(j->omap));
}

int rstat_read(struct jconn *c, uint64_t dir, struct journal_rstat *ret)
{
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(c, ST_RSTAT_GET, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int64_t t = sqlite3_column_int64(s, 0);
		ret->rctime.tv_sec = t / 1000000000;
		ret->rctime.tv_nsec = t % 1000000000;
		ret->rbytes = (uint64_t)sqlite3_column_int64(s, 1);
		ret->rfiles = (uint64_t)sqlite3_column_int64(s, 2);
		ret->rsubdirs = (uint64_t)sqlite3_column_int64(s, 3);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int journal_rstat_get(struct journal *j, uint64_t dir, struct journal_rstat *ret)
{
	struct journal_rstat rs;
	struct jconn *c;
	struct jobj *o;
	int r;

	o = obj_get(j, dir);
	if (!o)
		return -ENOENT;
	r = S_ISDIR(o->type) ? 0 : -ENOTDIR;
	obj_put(o);
	if (r < 0)
		return r;
	if (!(j->flags & JOURNAL_OPEN_READONLY)) {
		r = journal_flush(j);
		if (r < 0)
			return r;
	}
	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = rstat_read(c, dir, &rs);
	db_conn_put(j, c);
	if (r < 0)
		return r;
	*ret = rs;
	return 0;
}

/* ---- recomputation from the namespace (journal_check) -------------------- */

struct rcalc_ent {
	uint64_t ino;
	uint64_t parent;
	uint64_t bytes, files, subdirs;
	bool is_dir;
};

struct rstat_calc {
	struct rcalc_ent *v;
	size_t n, cap;
	uint32_t *idx;
	size_t mask;
};

static struct rcalc_ent *rcalc_get(struct rstat_calc *rc, uint64_t ino, bool add)
{
	uint32_t *slot;

	if (add && (rc->n + 1) * 2 > rc->mask + 1) {
		size_t nm = rc->mask ? (rc->mask + 1) * 2 : 1024;
		uint32_t *ni = calloc(nm, sizeof(*ni));
		if (!ni)
			return NULL;
		free(rc->idx);
		rc->idx = ni;
		rc->mask = nm - 1;
		for (size_t i = 0; i < rc->n; i++)
			*slot_find(rc->idx, rc->mask, rc->v[i].ino, rc->v, sizeof(*rc->v),
				   offsetof(struct rcalc_ent, ino)) = (uint32_t)(i + 1);
	}
	if (!rc->idx)
		return NULL;
	slot = slot_find(rc->idx, rc->mask, ino, rc->v, sizeof(*rc->v), offsetof(struct rcalc_ent, ino));
	if (*slot)
		return &rc->v[*slot - 1];
	if (!add)
		return NULL;
	if (rc->n == rc->cap) {
		size_t nc = rc->cap ? rc->cap * 2 : 1024;
		struct rcalc_ent *nv = realloc(rc->v, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		rc->v = nv;
		rc->cap = nc;
	}
	rc->v[rc->n] = (struct rcalc_ent){ .ino = ino };
	*slot = (uint32_t)(rc->n + 1);
	return &rc->v[rc->n++];
}

void rstat_calc_free(struct rstat_calc *rc)
{
	if (!rc)
		return;
	free(rc->v);
	free(rc->idx);
	free(rc);
}

int rstat_compute_all(struct journal *j, struct jconn *c, struct rstat_calc **ret)
{
	struct rstat_calc *rc;
	struct {
		uint64_t parent;
		uint64_t bytes;
		bool is_dir;
	} *rows = NULL;
	size_t nrows = 0, caprows = 0;
	sqlite3_stmt *s;
	int r, sr;

	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return -ENOMEM;
	if (!rcalc_get(rc, JOURNAL_ROOT_INO, true)) {
		r = -ENOMEM;
		goto fail;
	}
	rcalc_get(rc, JOURNAL_ROOT_INO, false)->is_dir = true;
	r = db_stmt(c, ST_TREE_ALL, &s);
	if (r < 0)
		goto fail;
	while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t parent = (uint64_t)sqlite3_column_int64(s, 0);
		uint64_t ino = (uint64_t)sqlite3_column_int64(s, 1);
		uint32_t type = (uint32_t)sqlite3_column_int64(s, 2);
		int64_t size = sqlite3_column_int64(s, 3);

		if (nrows == caprows) {
			size_t nc = caprows ? caprows * 2 : 1024;
			void *nr = realloc(rows, nc * sizeof(*rows));
			if (!nr) {
				r = -ENOMEM;
				break;
			}
			rows = nr;
			caprows = nc;
		}
		rows[nrows].parent = parent;
		rows[nrows].is_dir = S_ISDIR(type);
		rows[nrows].bytes = S_ISREG(type) && size > 0 ? (uint64_t)size : 0;
		nrows++;
		if (S_ISDIR(type)) {
			struct rcalc_ent *e = rcalc_get(rc, ino, true);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			e->is_dir = true;
			e->parent = parent;
		}
	}
	sqlite3_reset(s);
	if (r < 0)
		goto fail;
	if (sr != SQLITE_DONE) {
		r = journal_err(sr);
		goto fail;
	}
	for (size_t i = 0; i < nrows; i++) {
		uint64_t cur = rows[i].parent;
		for (int depth = 0; cur && depth < RSTAT_MAX_DEPTH; depth++) {
			struct rcalc_ent *e = rcalc_get(rc, cur, false);
			if (!e)
				break;  /* an orphaned subtree: check reports it */
			e->bytes += rows[i].bytes;
			e->files += rows[i].is_dir ? 0 : 1;
			e->subdirs += rows[i].is_dir ? 1 : 0;
			cur = e->parent;
		}
	}
	free(rows);
	*ret = rc;
	return 0;
fail:
	free(rows);
	rstat_calc_free(rc);
	return r;
}

int rstat_calc_get(struct rstat_calc *rc, uint64_t dir, struct journal_rstat *ret)
{
	const struct rcalc_ent *e = rcalc_get(rc, dir, false);

	if (!e)
		return -ENOENT;
	memset(ret, 0, sizeof(*ret));
	ret->rbytes = e->bytes;
	ret->rfiles = e->files;
	ret->rsubdirs = e->subdirs;
	return 0;
}
