/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal_diff_scan(): the change set between two snapshots found by
 * comparing their trees instead of reading the change log — what `mirrorfs
 * sync --scan` uses when the log cannot be trusted to be complete (trimmed
 * history, a replica seeded some other way). CephFS mirroring's key idea
 * keeps it cheap: a directory whose rctime is older than the base snapshot
 * holds no change anywhere below, so the walk does not descend into it.
 *
 * Both trees are the journal's snapshot views (`from` stands for what the
 * replica has). Files whose size, mtime or ctime differ are sent whole;
 * the sequence of callbacks is the one journal_diff() documents.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirrorfs/util.h"
#include "journal_i.h"
#include "diff_i.h"

/* Clocks may step back a little: treat rctimes this close to the base as changed. */
#define RCTIME_SLACK_NS (2LL * 1000000000LL)

struct sent {
	char *name;
	uint64_t ino;
	mode_t type;
};

struct sdir {
	struct sent *v;
	size_t n, cap;
};

struct scan {
	struct journal *j;
	uint64_t pid, sid;          /* from (0: none) and to */
	int64_t threshold;          /* rctime below this: unchanged since `from` */
	struct dent *un, *ln;
	size_t nun, capun, nln, capln;
	struct u64map created, data, attr, alive_p, alive_s;
	struct u64vec cre;
};

static int sdir_add(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct sdir *d = arg;

	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 32;
		struct sent *nv = realloc(d->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->v = nv;
		d->cap = nc;
	}
	d->v[d->n].name = strdup(name);
	if (!d->v[d->n].name)
		return -ENOMEM;
	d->v[d->n].ino = ino;
	d->v[d->n].type = type & S_IFMT;
	d->n++;
	return 0;
}

static void sdir_free(struct sdir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
}

/* Entries of `dir` in snapshot `id`, sorted by name (as the view returns them). */
static int list_dir(struct scan *sc, uint64_t id, uint64_t dir, struct sdir *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (!id)
		return 0;
	return journal_snap_readdir(sc->j, id, dir, 0, sdir_add, ret);
}

/* Is `ino` alive in snapshot `id`? Memoised. */
static int alive_in(struct scan *sc, struct u64map *m, uint64_t id, uint64_t ino, bool *ret)
{
	struct stat st;
	uint64_t v;
	int r;

	if (!id) {
		*ret = false;
		return 0;
	}
	if (!u64map_get(m, ino, &v)) {
		r = journal_snap_stat(sc->j, id, ino, &st);
		if (r < 0 && r != -ENOENT)
			return r;
		v = r == 0 ? 1 : 2;
		r = u64map_put(m, ino, v);
		if (r < 0)
			return r;
	}
	*ret = v == 1;
	return 0;
}

static int add_dent(struct dent **v, size_t *n, size_t *cap, uint64_t parent, const char *name,
		    uint64_t ino, uint32_t depth, uint32_t type, bool survives)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct dent *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[*n] = (struct dent){ .parent = parent, .ino = ino, .depth = depth, .type = type,
				  .survives = survives, .name = strdup(name) };
	if (!(*v)[*n].name)
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int mark_created(struct scan *sc, uint64_t ino, mode_t type)
{
	int r;

	if (u64map_get(&sc->created, ino, NULL))
		return 0;
	r = u64map_put(&sc->created, ino, type);
	if (r < 0)
		return r;
	r = u64vec_push(&sc->cre, ino);
	if (r < 0)
		return r;
	r = u64map_put(&sc->attr, ino, 1);
	if (r >= 0 && type == S_IFREG)
		r = u64map_put(&sc->data, ino, 1);
	return r;
}

/* A file in both snapshots: what differs? */
static int compare_object(struct scan *sc, uint64_t ino, mode_t type)
{
	struct stat a, b;
	int r;

	r = journal_snap_stat(sc->j, sc->pid, ino, &a);
	if (r >= 0)
		r = journal_snap_stat(sc->j, sc->sid, ino, &b);
	if (r < 0)
		return r;
	if (a.st_size != b.st_size || a.st_mtim.tv_sec != b.st_mtim.tv_sec ||
	    a.st_mtim.tv_nsec != b.st_mtim.tv_nsec) {
		if (type == S_IFREG)
			r = u64map_put(&sc->data, ino, 1);
		if (r >= 0)
			r = u64map_put(&sc->attr, ino, 1);
	} else if (a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid ||
		   a.st_ctim.tv_sec != b.st_ctim.tv_sec || a.st_ctim.tv_nsec != b.st_ctim.tv_nsec) {
		r = u64map_put(&sc->attr, ino, 1);
	}
	return r;
}

/* Every entry below a directory that `to` no longer has goes, children first. */
static int scan_gone_dir(struct scan *sc, uint64_t dir, uint32_t depth)
{
	struct sdir p;
	int r;

	r = list_dir(sc, sc->pid, dir, &p);
	for (size_t i = 0; r >= 0 && i < p.n; i++) {
		bool survives;

		r = alive_in(sc, &sc->alive_s, sc->sid, p.v[i].ino, &survives);
		if (r >= 0)
			r = add_dent(&sc->un, &sc->nun, &sc->capun, dir, p.v[i].name, p.v[i].ino,
				     depth, p.v[i].type, survives);
		if (r >= 0 && p.v[i].type == S_IFDIR && !survives)
			r = scan_gone_dir(sc, p.v[i].ino, depth + 1);
	}
	sdir_free(&p);
	return r;
}

/* `fresh`: the directory did not exist in `from`, everything below is new. */
static int scan_dir(struct scan *sc, uint64_t dir, uint32_t depth, bool fresh)
{
	struct sdir p = { 0 }, s = { 0 };
	size_t i = 0, k = 0;
	bool changed = false;
	int r;

	if (!fresh) {
		struct journal_rstat rs;

		/* The key idea: nothing below changed since `from` was taken. */
		if (journal_rstat_get(sc->j, dir, &rs) == 0 &&
		    (int64_t)rs.rctime.tv_sec * 1000000000LL + rs.rctime.tv_nsec < sc->threshold)
			return 0;
		r = list_dir(sc, sc->pid, dir, &p);
		if (r < 0)
			return r;
	}
	r = list_dir(sc, sc->sid, dir, &s);
	/* Both lists are sorted by name: merge them. */
	while (r >= 0 && (i < p.n || k < s.n)) {
		int c = i == p.n ? 1 : k == s.n ? -1 : strcmp(p.v[i].name, s.v[k].name);
		bool gone = c < 0 || (c == 0 && p.v[i].ino != s.v[k].ino);
		bool added = c > 0 || (c == 0 && p.v[i].ino != s.v[k].ino);

		if (gone) {
			bool survives;

			changed = true;
			r = alive_in(sc, &sc->alive_s, sc->sid, p.v[i].ino, &survives);
			if (r >= 0)
				r = add_dent(&sc->un, &sc->nun, &sc->capun, dir, p.v[i].name,
					     p.v[i].ino, depth, p.v[i].type, survives);
			if (r >= 0 && p.v[i].type == S_IFDIR && !survives)
				r = scan_gone_dir(sc, p.v[i].ino, depth + 1);
		}
		if (r >= 0 && added) {
			bool was;

			changed = true;
			r = alive_in(sc, &sc->alive_p, sc->pid, s.v[k].ino, &was);
			if (r >= 0)
				r = add_dent(&sc->ln, &sc->nln, &sc->capln, dir, s.v[k].name,
					     s.v[k].ino, depth, s.v[k].type, false);
			if (r >= 0 && !was)
				r = mark_created(sc, s.v[k].ino, s.v[k].type);
			else if (r >= 0)
				r = compare_object(sc, s.v[k].ino, s.v[k].type);
			if (r >= 0 && s.v[k].type == S_IFDIR)
				r = scan_dir(sc, s.v[k].ino, depth + 1, !was);
		}
		if (r >= 0 && c == 0 && !gone) {
			/* the same object under the same name */
			r = compare_object(sc, s.v[k].ino, s.v[k].type);
			if (r >= 0 && s.v[k].type == S_IFDIR)
				r = scan_dir(sc, s.v[k].ino, depth + 1, false);
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			k++;
	}
	if (r >= 0 && changed)
		r = u64map_put(&sc->attr, dir, 1);
	sdir_free(&p);
	sdir_free(&s);
	return r;
}

int journal_diff_scan(struct journal *j, uint64_t from_id, uint64_t to_id,
		      int (*cb)(void *arg, const struct journal_diff *d), void *arg)
{
	struct scan sc = { .j = j, .pid = from_id, .sid = to_id };
	struct journal_snap from, to;
	uint64_t *v = NULL;
	size_t n = 0;
	int r;

	r = journal_snap_get_by_id(j, to_id, &to);
	if (r >= 0 && from_id) {
		r = journal_snap_get_by_id(j, from_id, &from);
		if (r >= 0 && from.seq >= to.seq)
			r = -EINVAL;
		sc.threshold = from.created_ns - RCTIME_SLACK_NS;
	}
	if (r >= 0)
		r = scan_dir(&sc, JOURNAL_ROOT_INO, 0, from_id == 0);
	if (r >= 0) {
		if (sc.nun)
			qsort(sc.un, sc.nun, sizeof(*sc.un), dent_cmp_unlink);
		if (sc.nln)
			qsort(sc.ln, sc.nln, sizeof(*sc.ln), dent_cmp_link);
		if (sc.cre.n)
			qsort(sc.cre.v, sc.cre.n, sizeof(*sc.cre.v), u64_cmp);
		r = emit_entries(JDIFF_UNLINK, sc.un, sc.nun, cb, arg);
	}
	for (size_t i = 0; r >= 0 && i < sc.cre.n; i++) {
		uint64_t type = 0;
		struct journal_diff e = { .kind = JDIFF_CREATE, .ino = sc.cre.v[i] };

		u64map_get(&sc.created, sc.cre.v[i], &type);
		e.type = (uint32_t)type;
		r = cb(arg, &e);
	}
	if (r >= 0)
		r = emit_entries(JDIFF_LINK, sc.ln, sc.nln, cb, arg);
	/* DATA: whole files, by jino; then ATTR (and always the root), by jino */
	for (int pass = 0; r >= 0 && pass < 2; pass++) {
		struct u64map *m = pass == 0 ? &sc.data : &sc.attr;

		if (pass == 1)
			r = u64map_put(m, JOURNAL_ROOT_INO, 1);
		free(v);
		v = malloc((m->n ? m->n : 1) * sizeof(*v));
		if (!v) {
			r = -ENOMEM;
			break;
		}
		n = 0;
		for (size_t i = 0; m->mask && i <= m->mask; i++)
			if (m->keys[i])
				v[n++] = m->keys[i];
		if (n)
			qsort(v, n, sizeof(*v), u64_cmp);
		for (size_t i = 0; r >= 0 && i < n; i++) {
			struct journal_diff e = { .kind = pass == 0 ? JDIFF_DATA : JDIFF_ATTR,
						  .ino = v[i] };
			struct stat st;

			r = journal_snap_stat(j, to_id, v[i], &st);
			if (r < 0)
				break;
			e.type = st.st_mode & S_IFMT;
			if (pass == 0) {
				if (e.type != S_IFREG || st.st_size == 0)
					continue;
				e.off = 0;
				e.len = (uint64_t)st.st_size;
			}
			r = cb(arg, &e);
		}
	}
	free(v);
	dents_free(sc.un, sc.nun);
	dents_free(sc.ln, sc.nln);
	u64vec_free(&sc.cre);
	u64map_free(&sc.created);
	u64map_free(&sc.data);
	u64map_free(&sc.attr);
	u64map_free(&sc.alive_p);
	u64map_free(&sc.alive_s);
	return r;
}
