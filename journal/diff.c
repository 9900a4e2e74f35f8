/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal_diff(): the change set between two snapshots, computed from the
 * versioned namespace and the change log alone — never a tree scan — so an
 * incremental send costs what changed, not what exists.
 *
 * An entry row is alive at seq X when born_seq <= X < died_seq (died_seq
 * NULL = still alive). The net difference between `from` (seq P) and `to`
 * (seq S) is:
 *   - entries alive at P, not at S              -> UNLINK (deepest first)
 *   - objects born in (P, S] and alive at S     -> CREATE
 *   - entries alive at S, not at P              -> LINK (shallowest first)
 *   - data records in (P, S] of files alive at S, and every created
 *     file's [0, size)                          -> DATA ranges, merged
 *   - every object touched in (P, S], every directory whose entries
 *     changed, every created object, the root   -> ATTR
 * Intermediate states inside (P, S] (a file created and deleted, a name
 * renamed twice) cancel out by construction.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"
#include "diff_i.h"

/* Granularity of allocation assumed for hole maps (filesystem block). */
#define DIFF_BLOCK 4096ULL

/* ---- the state of one diff ----------------------------------------------- */


struct drange {
	uint64_t ino, off, end;   /* end may be UINT64_MAX: "to the end of the file" */
};

struct diff {
	struct journal *j;
	struct jconn *c;
	uint64_t p, s;            /* seqs of from and to (p = 0: none) */
	struct u64map depth_p, depth_s;   /* dir -> depth + 1 */
	struct u64map alive_s;    /* ino -> 1 alive at s, 2 not alive */
	struct u64map types;      /* ino -> S_IFMT */
	struct u64map attr;       /* objects that get an ATTR */
	sqlite3_stmt *st_parent, *st_alive, *st_type, *st_size_cow, *st_size_obj;
};

static int prep(struct diff *d, sqlite3_stmt **s, const char *sql)
{
	int rc = sqlite3_prepare_v2(d->c->db, sql, -1, s, NULL);

	return rc == SQLITE_OK ? 0 : journal_err(rc);
}

static int diff_prepare(struct diff *d)
{
	int r;

	if ((r = prep(d, &d->st_parent, "SELECT parent FROM ns WHERE ino=?1 AND born_seq<=?2 "
				       "AND (died_seq IS NULL OR died_seq>?2) LIMIT 1")) < 0 ||
	    (r = prep(d, &d->st_alive, "SELECT 1 FROM ns WHERE ino=?1 AND born_seq<=?2 AND "
				      "(died_seq IS NULL OR died_seq>?2) LIMIT 1")) < 0 ||
	    (r = prep(d, &d->st_type, "SELECT type FROM objects WHERE ino=?1")) < 0 ||
	    (r = prep(d, &d->st_size_cow, "SELECT size FROM cow_attr WHERE ino=?1 AND "
					 "interval>=?2 ORDER BY interval LIMIT 1")) < 0 ||
	    (r = prep(d, &d->st_size_obj, "SELECT size FROM objects WHERE ino=?1")) < 0)
		return r;
	return 0;
}

static void diff_release(struct diff *d)
{
	sqlite3_finalize(d->st_parent);
	sqlite3_finalize(d->st_alive);
	sqlite3_finalize(d->st_type);
	sqlite3_finalize(d->st_size_cow);
	sqlite3_finalize(d->st_size_obj);
	u64map_free(&d->depth_p);
	u64map_free(&d->depth_s);
	u64map_free(&d->alive_s);
	u64map_free(&d->types);
	u64map_free(&d->attr);
}

/* One integer column of a one-row query; 0 found, -ENOENT none. */
static int q_int(sqlite3_stmt *s, uint64_t a, uint64_t b, bool bind_b, int64_t *ret)
{
	int rc;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (int64_t)a);
	if (bind_b)
		sqlite3_bind_int64(s, 2, (int64_t)b);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		return 0;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
}

/* Depth of directory `dir` at `seq` (root 0); memoised in `m`. */
static int depth_at(struct diff *d, struct u64map *m, uint64_t dir, uint64_t seq, uint32_t *ret)
{
	uint64_t chain[256], v = 0;
	size_t n = 0;
	uint32_t depth;
	int64_t parent = 0;
	int r;

	/* Walk up until a known depth or the root; then fill in downwards. */
	while (dir != JOURNAL_ROOT_INO && !u64map_get(m, dir, &v)) {
		if (n == UTIL_ARRAY_SIZE(chain))
			break;   /* very deep: treat the rest as one level each (order only) */
		chain[n++] = dir;
		r = q_int(d->st_parent, dir, seq, true, &parent);
		if (r == -ENOENT)
			break;   /* not alive then: ordering only, depth 0 below */
		if (r < 0)
			return r;
		dir = (uint64_t)parent;
	}
	depth = dir == JOURNAL_ROOT_INO ? 0 : (u64map_get(m, dir, &v) ? (uint32_t)(v - 1) : 0);
	while (n > 0) {
		depth++;
		r = u64map_put(m, chain[--n], depth + 1);
		if (r < 0)
			return r;
	}
	*ret = depth;
	return 0;
}

static int alive_at_s(struct diff *d, uint64_t ino, bool *ret)
{
	uint64_t v;
	int64_t one;
	int r;

	if (ino == JOURNAL_ROOT_INO) {
		*ret = true;
		return 0;
	}
	if (!u64map_get(&d->alive_s, ino, &v)) {
		r = q_int(d->st_alive, ino, d->s, true, &one);
		if (r < 0 && r != -ENOENT)
			return r;
		v = r == 0 ? 1 : 2;
		r = u64map_put(&d->alive_s, ino, v);
		if (r < 0)
			return r;
	}
	*ret = v == 1;
	return 0;
}

static int type_of(struct diff *d, uint64_t ino, uint32_t *ret)
{
	uint64_t v = 0;
	int64_t t = 0;
	int r;

	if (!u64map_get(&d->types, ino, &v)) {
		r = q_int(d->st_type, ino, 0, false, &t);
		if (r < 0)
			return r;
		v = (uint64_t)t;
		r = u64map_put(&d->types, ino, v);
		if (r < 0)
			return r;
	}
	*ret = (uint32_t)v;
	return 0;
}

/* Size of a regular file as snapshot `to` saw it. */
static int size_at_s(struct diff *d, uint64_t ino, uint64_t *ret)
{
	int64_t v = 0;
	int r;

	r = q_int(d->st_size_cow, ino, d->s, true, &v);
	if (r == -ENOENT)
		r = q_int(d->st_size_obj, ino, 0, false, &v);
	if (r < 0)
		return r;
	*ret = v < 0 ? 0 : (uint64_t)v;
	return 0;
}

/* Mark `ino` for an ATTR record if it is alive at S. */
static int want_attr(struct diff *d, uint64_t ino)
{
	bool alive;
	int r;

	if (!ino || ino > JOURNAL_INO_MAX)
		return 0;
	r = alive_at_s(d, ino, &alive);
	if (r < 0 || !alive)
		return r;
	return u64map_put(&d->attr, ino, 1);
}

/* ---- the entry sets -------------------------------------------------------- */

int dent_cmp_unlink(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;
	int c;

	if (x->depth != y->depth)
		return x->depth > y->depth ? -1 : 1;   /* deepest first */
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	c = strcmp(x->name, y->name);
	return c;
}

int dent_cmp_link(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;   /* shallowest first */
	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	return strcmp(x->name, y->name);
}

void dents_free(struct dent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/*
 * Entries alive at `a` and not at `b` (and not re-born identically):
 * `unlink` selects the UNLINK set (a = P, b = S), else the LINK set
 * (a = S, b = P).
 */
static int collect_entries(struct diff *d, bool unlink, struct dent **ret, size_t *ret_n)
{
	static const char sql_unlink[] =
		"SELECT n.parent, n.name, n.ino FROM ns n WHERE n.born_seq <= ?1 "
		"AND n.died_seq > ?1 AND n.died_seq <= ?2 "
		"AND NOT EXISTS (SELECT 1 FROM ns m WHERE m.parent = n.parent AND m.name = n.name "
		"  AND m.ino = n.ino AND m.born_seq <= ?2 AND (m.died_seq IS NULL OR m.died_seq > ?2))";
	static const char sql_link[] =
		"SELECT n.parent, n.name, n.ino FROM ns n WHERE n.born_seq > ?1 AND n.born_seq <= ?2 "
		"AND (n.died_seq IS NULL OR n.died_seq > ?2) "
		"AND NOT EXISTS (SELECT 1 FROM ns m WHERE m.parent = n.parent AND m.name = n.name "
		"  AND m.ino = n.ino AND m.born_seq <= ?1 AND (m.died_seq IS NULL OR m.died_seq > ?1))";
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int r, rc;

	r = prep(d, &s, unlink ? sql_unlink : sql_link);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)d->p);
	sqlite3_bind_int64(s, 2, (int64_t)d->s);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct dent *e;
		int nl = sqlite3_column_bytes(s, 1);

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct dent *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		e = &v[n];
		memset(e, 0, sizeof(*e));
		e->parent = (uint64_t)sqlite3_column_int64(s, 0);
		e->ino = (uint64_t)sqlite3_column_int64(s, 2);
		e->name = malloc((size_t)nl + 1);
		if (!e->name) {
			r = -ENOMEM;
			break;
		}
		memcpy(e->name, sqlite3_column_blob(s, 1), (size_t)nl);
		e->name[nl] = '\0';
		n++;
	}
	sqlite3_finalize(s);
	if (r >= 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct dent *e = &v[i];

		r = depth_at(d, unlink ? &d->depth_p : &d->depth_s, e->parent,
			     unlink ? d->p : d->s, &e->depth);
		if (r >= 0)
			r = type_of(d, e->ino, &e->type);
		if (r >= 0 && unlink)
			r = alive_at_s(d, e->ino, &e->survives);
		/* the directories whose entries change get their times sent */
		if (r >= 0)
			r = want_attr(d, e->parent);
		if (r >= 0)
			r = want_attr(d, e->ino);
	}
	if (r < 0) {
		dents_free(v, n);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), unlink ? dent_cmp_unlink : dent_cmp_link);
	*ret = v;
	*ret_n = n;
	return 0;
}

int emit_entries(enum journal_diff_kind kind, const struct dent *v, size_t n,
		 int (*cb)(void *, const struct journal_diff *), void *arg)
{
	for (size_t i = 0; i < n; i++) {
		struct journal_diff e = {
			.kind = kind, .ino = v[i].ino, .type = v[i].type, .parent = v[i].parent,
			.name = v[i].name, .survives = v[i].survives,
		};
		int r = cb(arg, &e);

		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- objects: creates, data, attributes ---------------------------------- */

/*
 * The created objects, by jino, with their types in *ret_types (parallel
 * to *ret, owned by the caller); each is put in `created` and `d->attr`.
 */
static int collect_creates(struct diff *d, struct u64map *created, uint64_t **ret,
			   uint32_t **ret_types, size_t *ret_n)
{
	uint64_t *v = NULL;
	uint32_t *t = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int r, rc;

	r = prep(d, &s, "SELECT o.ino, o.type FROM objects o WHERE o.born_seq > ?1 AND "
			"o.born_seq <= ?2 AND o.ino != 1 AND EXISTS (SELECT 1 FROM ns n WHERE "
			"n.ino = o.ino AND n.born_seq <= ?2 AND (n.died_seq IS NULL OR "
			"n.died_seq > ?2)) ORDER BY o.ino");
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)d->p);
	sqlite3_bind_int64(s, 2, (int64_t)d->s);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t ino = (uint64_t)sqlite3_column_int64(s, 0);

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			uint64_t *nv = realloc(v, nc * sizeof(*nv));
			uint32_t *nt = nv ? realloc(t, nc * sizeof(*nt)) : NULL;

			if (nv)
				v = nv;
			if (nt)
				t = nt;
			if (!nv || !nt) {
				r = -ENOMEM;
				break;
			}
			cap = nc;
		}
		v[n] = ino;
		t[n++] = (uint32_t)sqlite3_column_int64(s, 1);
		r = u64map_put(created, ino, 1);
		if (r >= 0)
			r = u64map_put(&d->attr, ino, 1);
		if (r < 0)
			break;
	}
	sqlite3_finalize(s);
	if (r >= 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	if (r < 0) {
		free(v);
		free(t);
		return r;
	}
	*ret = v;
	*ret_types = t;
	*ret_n = n;
	return 0;
}

/*
 * CREATE of every created object, by jino. Where the object's first new
 * entry (in LINK order, `ln`) is in a directory that exists at this point
 * of the sequence (not created in the interval, or created with a smaller
 * jino, i.e. already emitted), that entry comes with it: a receiver can
 * create the object in place. Its name is free by then: whatever held it
 * in `from` went in the UNLINK part.
 */
static int emit_creates(struct diff *d, const struct u64map *created, const uint64_t *v,
			const uint32_t *types, size_t n, const struct dent *ln, size_t nln,
			int (*cb)(void *, const struct journal_diff *), void *arg)
{
	struct u64map first = { 0 };
	int r = 0;

	for (size_t i = 0; i < nln && r >= 0; i++)
		if (u64map_get(created, ln[i].ino, NULL) && !u64map_get(&first, ln[i].ino, NULL))
			r = u64map_put(&first, ln[i].ino, i);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct journal_diff e = { .kind = JDIFF_CREATE, .ino = v[i], .type = types[i] };
		uint64_t k;

		if (u64map_get(&first, v[i], &k) &&
		    (!u64map_get(created, ln[k].parent, NULL) || ln[k].parent < v[i])) {
			e.parent = ln[k].parent;
			e.name = ln[k].name;
		}
		r = cb(arg, &e);
	}
	u64map_free(&first);
	return r;
}

static int range_cmp(const void *a, const void *b)
{
	const struct drange *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return 0;
}

static int range_add(struct drange **v, size_t *n, size_t *cap, uint64_t ino, uint64_t off,
		     uint64_t end)
{
	if (end <= off)
		return 0;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct drange *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct drange){ ino, off, end };
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Every object touched in (P, S] gets an ATTR; data records become ranges. */
static int collect_changes(struct diff *d, const struct u64map *created, struct drange **ret,
			   size_t *ret_n)
{
	struct drange *v = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;
	int r, rc;

	r = prep(d, &s, "SELECT ino, op, off, len, mode, parent, new_parent FROM changes "
			"WHERE seq > ?1 AND seq <= ?2 ORDER BY seq");
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)d->p);
	sqlite3_bind_int64(s, 2, (int64_t)d->s);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t ino = (uint64_t)sqlite3_column_int64(s, 0);
		int op = sqlite3_column_int(s, 1);
		uint64_t off = (uint64_t)sqlite3_column_int64(s, 2);
		uint64_t len = (uint64_t)sqlite3_column_int64(s, 3);
		int mode = sqlite3_column_int(s, 4);

		if (op == JOP_SNAP_CREATE || op == JOP_SNAP_DELETE)
			continue;
		r = want_attr(d, ino);
		if (r >= 0 && sqlite3_column_type(s, 5) != SQLITE_NULL)
			r = want_attr(d, (uint64_t)sqlite3_column_int64(s, 5));
		if (r >= 0 && sqlite3_column_type(s, 6) != SQLITE_NULL)
			r = want_attr(d, (uint64_t)sqlite3_column_int64(s, 6));
		if (r < 0)
			break;
		if (u64map_get(created, ino, NULL))
			continue;   /* sent whole anyway */
		switch (op) {
		case JOP_WRITE:
		case JOP_PUNCH:
			r = range_add(&v, &n, &cap, ino, off, add_sat(off, len));
			break;
		case JOP_FALLOCATE:
			r = range_add(&v, &n, &cap, ino, off,
				      mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE) ?
				      UINT64_MAX : add_sat(off, len));
			break;
		case JOP_TRUNCATE:
			/*
			 * Everything from the new size on is gone (or zeros); and the
			 * block holding the new end may have changed from hole to
			 * data (a write past it that the truncate cut off), so the
			 * range starts at that block for the hole map to match.
			 */
			r = range_add(&v, &n, &cap, ino, len - len % DIFF_BLOCK, UINT64_MAX);
			break;
		default:
			break;
		}
		if (r < 0)
			break;
	}
	sqlite3_finalize(s);
	if (r >= 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int emit_data(struct diff *d, const struct u64map *created, struct drange *v, size_t n,
		     int (*cb)(void *, const struct journal_diff *), void *arg)
{
	struct drange *all = v;
	size_t total = n, cap = n;
	int r = 0;

	/* created regular files: [0, size) */
	for (size_t i = 0; created->mask && i <= created->mask; i++) {
		uint32_t type;

		if (!created->keys[i])
			continue;
		r = type_of(d, created->keys[i], &type);
		if (r < 0)
			goto out;
		if (type == S_IFREG) {
			r = range_add(&all, &total, &cap, created->keys[i], 0, UINT64_MAX);
			if (r < 0)
				goto out;
		}
	}
	if (total)
		qsort(all, total, sizeof(*all), range_cmp);
	for (size_t i = 0; i < total;) {
		uint64_t ino = all[i].ino, size, off, end;
		uint32_t type;
		bool alive;

		r = alive_at_s(d, ino, &alive);
		if (r >= 0 && alive)
			r = type_of(d, ino, &type);
		if (r < 0)
			goto out;
		if (!alive || type != S_IFREG) {
			while (i < total && all[i].ino == ino)
				i++;
			continue;
		}
		r = size_at_s(d, ino, &size);
		if (r < 0)
			goto out;
		while (i < total && all[i].ino == ino) {
			off = all[i].off;
			end = all[i].end;
			for (i++; i < total && all[i].ino == ino && all[i].off <= end; i++)
				end = UTIL_MAX(end, all[i].end);
			if (end > size)
				end = size;
			if (off < end) {
				struct journal_diff e = {
					.kind = JDIFF_DATA, .ino = ino, .type = S_IFREG,
					.off = off, .len = end - off,
				};
				r = cb(arg, &e);
				if (r < 0)
					goto out;
			}
		}
	}
out:
	free(all);
	return r;
}

int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int emit_attrs(struct diff *d, int (*cb)(void *, const struct journal_diff *), void *arg)
{
	uint64_t *v;
	size_t n = 0;
	int r = 0;

	r = u64map_put(&d->attr, JOURNAL_ROOT_INO, 1);
	if (r < 0)
		return r;
	v = malloc(d->attr.n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i <= d->attr.mask; i++)
		if (d->attr.keys[i])
			v[n++] = d->attr.keys[i];
	if (n)
		qsort(v, n, sizeof(*v), u64_cmp);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct journal_diff e = { .kind = JDIFF_ATTR, .ino = v[i] };

		r = type_of(d, v[i], &e.type);
		if (r >= 0)
			r = cb(arg, &e);
	}
	free(v);
	return r;
}

int journal_diff(struct journal *j, uint64_t from_id, uint64_t to_id,
		 int (*cb)(void *arg, const struct journal_diff *d), void *arg)
{
	struct diff d = { .j = j };
	struct u64map created = { 0 };
	struct dent *un = NULL, *ln = NULL;
	struct drange *ranges = NULL;
	uint64_t *cre = NULL;
	uint32_t *cre_types = NULL;
	size_t nun = 0, nln = 0, nranges = 0, ncre = 0;
	int r;

	r = db_conn_get(j, &d.c);
	if (r < 0)
		return r;
	r = sv_snap_seq(d.c, to_id, &d.s);
	if (r >= 0 && from_id)
		r = sv_snap_seq(d.c, from_id, &d.p);
	if (r >= 0 && d.p > d.s)
		r = -EINVAL;
	/* one read transaction: a consistent view of everything below */
	if (r >= 0)
		r = db_exec(d.c->db, "BEGIN");
	if (r < 0)
		goto out_conn;
	r = diff_prepare(&d);
	if (r >= 0)
		r = collect_entries(&d, true, &un, &nun);
	if (r >= 0)
		r = collect_entries(&d, false, &ln, &nln);
	if (r >= 0)
		r = emit_entries(JDIFF_UNLINK, un, nun, cb, arg);
	if (r >= 0)
		r = collect_creates(&d, &created, &cre, &cre_types, &ncre);
	if (r >= 0)
		r = emit_creates(&d, &created, cre, cre_types, ncre, ln, nln, cb, arg);
	if (r >= 0)
		r = emit_entries(JDIFF_LINK, ln, nln, cb, arg);
	if (r >= 0)
		r = collect_changes(&d, &created, &ranges, &nranges);
	if (r >= 0) {
		r = emit_data(&d, &created, ranges, nranges, cb, arg);
		ranges = NULL;   /* emit_data owns and frees it */
	}
	if (r >= 0)
		r = emit_attrs(&d, cb, arg);
	free(ranges);
	free(cre);
	free(cre_types);
	dents_free(un, nun);
	dents_free(ln, nln);
	u64map_free(&created);
	diff_release(&d);
	db_exec(d.c->db, "COMMIT");
out_conn:
	db_conn_put(j, d.c);
	return r;
}
