/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bringing the journal in line with the backing tree:
 *
 *  - recover_create(): the first open of a backing directory builds a new
 *    journal.db and adopts the existing tree in one scan (one transaction,
 *    one JOP_ADOPT change for the root; every adopted entry is born at that
 *    seq). Hard links (same st_dev, st_ino) become one object; mount points
 *    below the root are recorded as directories and not descended into.
 *  - recover_dirty(): after an unclean shutdown, every object durably
 *    marked dirty in the current interval is reconciled: a directory's live
 *    entries are compared with the backing entries (vanished -> unlink /
 *    rmdir, moved within the dirty directories -> rename, new -> link or
 *    adopt), and a file is recorded as wholly changed.
 *  - helpers shared with check.c and mutate.c (adopt / remove a subtree).
 *
 * Everything after recover_create() is recorded through the writer, so the
 * rstats stay consistent by construction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"

#define PROGRESS_EVERY 1000

/* ---- listings ------------------------------------------------------------ */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_nsents(const void *a, const void *b)
{
	return strcmp(((const struct nsent *)a)->name, ((const struct nsent *)b)->name);
}

void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void nsents_free(struct nsent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int backing_children(struct journal *j, int dirfd, bool is_root, char ***ret, size_t *ret_n)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int r;

	(void)j;
	r = util_opendirat(dirfd, ".", 0, &d);
	if (r < 0)
		return r;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			r = -errno;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (is_root && !strcmp(de->d_name, JOURNAL_STATE_DIR))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n] = strdup(de->d_name);
		if (!v[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (r < 0) {
		names_free(v, n);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*ret = v;
	*ret_n = n;
	return 0;
}

int ns_children(struct journal *j, uint64_t dir, struct nsent **ret, size_t *ret_n)
{
	struct nsent *v = NULL;
	size_t n = 0, cap = 0;
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = db_stmt(c, ST_NS_CHILDREN, &s);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int len = sqlite3_column_bytes(s, 0);
		const void *p = sqlite3_column_blob(s, 0);
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			struct nsent *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n].name = malloc((size_t)len + 1);
		if (!v[n].name) {
			r = -ENOMEM;
			break;
		}
		if (len)
			memcpy(v[n].name, p, (size_t)len);
		v[n].name[len] = 0;
		v[n].ino = (uint64_t)sqlite3_column_int64(s, 1);
		n++;
	}
	sqlite3_reset(s);
	if (r == 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
out:
	db_conn_put(j, c);
	if (r < 0) {
		nsents_free(v, n);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_nsents);
	*ret = v;
	*ret_n = n;
	return 0;
}

int open_obj_dir(struct journal *j, struct jobj *o, int *ret_fd)
{
	return open_obj(j, o, O_RDONLY | O_DIRECTORY, ret_fd);
}

int journal_open_ino(struct journal *j, uint64_t ino, int flags, int *ret_fd)
{
	struct jobj *o = obj_get(j, ino);
	int r;

	if (!o)
		return -ENOENT;
	r = open_obj(j, o, flags, ret_fd);
	obj_put(o);
	return r == -ESTALE ? -ENOENT : r;
}

int journal_open_ino_at(struct journal *j, uint64_t ino, int dirfd, const char *name, int flags,
			int *ret_fd)
{
	struct jobj *o = obj_get(j, ino);
	bool dead;
	int r = 0;

	if (!o)
		return -ENOENT;
	dead = atomic_load(&o->dead);
	if (!dead)
		r = oc_open_backing_at(dirfd, name, flags & ~(O_CREAT | O_EXCL | O_TRUNC), o->dev,
				       o->bino, ret_fd);
	obj_put(o);
	if (dead)
		return -ENOENT;
	/* the name is gone, or leads to another object: the caller's belief is stale */
	return r == -ENOENT || r == -ENOTDIR || r == -ELOOP ? -ESTALE : r;
}

int open_obj(struct journal *j, struct jobj *o, int flags, int *ret_fd)
{
	struct jconn *c;
	int r;

	flags &= ~(O_CREAT | O_EXCL | O_TRUNC);
	if (o->ino != JOURNAL_ROOT_INO) {
		/* the path comes from the namespace rows: only name changes must land */
		r = writer_flush_names(j);
		if (r < 0)
			return r;
	}
	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	db_read_begin(c);   /* one read lock for the path's components */
	r = oc_open_current(j, c, o->ino, o->dev, o->bino, flags, ret_fd, NULL);
	db_conn_put(j, c);
	return r;
}

/* ---- adopting and removing subtrees (through the writer) ---------------- */

static int read_target(int dirfd, const char *name, char **ret)
{
	char buf[PATH_MAX];
	ssize_t n;

	n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

int recover_adopt_tree(struct journal *j, struct jobj *dir, int dirfd,
		       const char *name, const struct stat *st, uint64_t *ret_ino,
		       uint64_t *ret_ticket)
{
	struct jobj *o = NULL, *existing = NULL;
	char *namecp = NULL, *target = NULL, **kids = NULL;
	size_t nkids = 0;
	struct jrec rec;
	uint64_t ino;
	int fd = -1, r;

	namecp = strdup(name);
	if (!namecp)
		return -ENOMEM;
	if (S_ISLNK(st->st_mode) && dirfd >= 0) {
		r = read_target(dirfd, name, &target);
		if (r < 0)
			goto out;
	}
	ino = atomic_fetch_add(&j->next_ino, 1);
	if (ino > JOURNAL_INO_MAX) {
		r = -ENOSPC;
		goto out;
	}
	o = obj_new(ino, st->st_dev, st->st_ino, st->st_mode);
	if (!o) {
		r = -ENOMEM;
		goto out;
	}
	o->size = S_ISDIR(st->st_mode) ? 0 : st->st_size;
	r = obj_insert(j, o, true, &existing);
	if (r == -EEXIST && existing && existing->type != (st->st_mode & S_IFMT)) {
		/*
		 * The backing filesystem reused the inode number of an object
		 * the journal still knows (its death was lost in the crash, or
		 * it has another name): a different type cannot be another link
		 * to it. The new object displaces the stale entry.
		 */
		obj_put(existing);
		existing = NULL;
		r = obj_insert(j, o, false, NULL);
	}
	if (r == -EEXIST && existing) {
		/* another link to a known object */
		rec = (struct jrec){ .op = JOP_ADOPT, .obj = existing, .parent = dir->ino,
				     .name = namecp };
		namecp = NULL;
		*ret_ino = existing->ino;
		r = writer_submit(j, &rec, ret_ticket);
		goto out;
	}
	if (r < 0)
		goto out;
	rec = (struct jrec){ .op = JOP_ADOPT, .flags = JREC_NEW, .mode = st->st_mode,
			     .obj = obj_ref(o), .parent = dir->ino, .name = namecp,
			     .aux = target, .size = o->size };
	namecp = target = NULL;
	r = writer_submit(j, &rec, ret_ticket);
	if (r < 0)
		goto out;
	*ret_ino = o->ino;

	/* the subtree, without crossing into another filesystem */
	if (!S_ISDIR(st->st_mode) || dirfd < 0 || st->st_dev != j->root_dev)
		goto out;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = backing_children(j, fd, false, &kids, &nkids);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < nkids; i++) {
		struct stat cst;
		uint64_t cino;
		if (fstatat(fd, kids[i], &cst, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			goto out;
		}
		r = recover_adopt_tree(j, o, fd, kids[i], &cst, &cino, ret_ticket);
		if (r < 0)
			goto out;
	}
out:
	names_free(kids, nkids);
	if (fd >= 0)
		close(fd);
	obj_put(o);
	free(namecp);
	free(target);
	return r;
}

int recover_remove_tree(struct journal *j, struct jobj *dir, const char *name,
			struct jobj *o, uint64_t *ret_ticket)
{
	struct nsent *kids = NULL;
	size_t nkids = 0;
	struct jrec rec;
	char *namecp;
	int r;

	if (o && S_ISDIR(o->type)) {
		r = journal_flush(j);
		if (r == 0)
			r = ns_children(j, o->ino, &kids, &nkids);
		if (r < 0)
			return r;
		for (size_t i = 0; i < nkids; i++) {
			struct jobj *k = obj_get(j, kids[i].ino);
			r = recover_remove_tree(j, o, kids[i].name, k, ret_ticket);
			obj_put(k);
			if (r < 0)
				break;
		}
		nsents_free(kids, nkids);
		if (r < 0)
			return r;
	}
	namecp = strdup(name);
	if (!namecp)
		return -ENOMEM;
	rec = (struct jrec){ .op = o && S_ISDIR(o->type) ? JOP_RMDIR : JOP_UNLINK,
			     .flags = o && S_ISDIR(o->type) ? JREC_DIES : JREC_DIES_IF_ORPHAN,
			     .obj = obj_ref(o), .parent = dir->ino, .name = namecp };
	return writer_submit(j, &rec, ret_ticket);
}

int recover_touch(struct journal *j, struct jobj *o, const struct stat *st, uint64_t *ret_ticket)
{
	struct jrec rec;
	int r;

	if (S_ISREG(o->type)) {
		if (st->st_size == 0 || st->st_size < o->size) {
			rec = (struct jrec){ .op = JOP_TRUNCATE, .obj = obj_ref(o),
					     .len = st->st_size, .size = st->st_size };
			r = writer_submit(j, &rec, ret_ticket);
			if (r < 0)
				return r;
		}
		if (st->st_size > 0) {
			rec = (struct jrec){ .op = JOP_WRITE, .obj = obj_ref(o), .off = 0,
					     .len = st->st_size, .size = st->st_size };
			r = writer_submit(j, &rec, ret_ticket);
			if (r < 0)
				return r;
		}
	}
	rec = (struct jrec){ .op = JOP_SETATTR, .obj = obj_ref(o), .mode = 0 };
	return writer_submit(j, &rec, ret_ticket);
}

/* ---- first open: adoption scan ------------------------------------------ */

struct scan {
	struct journal *j;
	struct jconn *c;
	uint64_t seq;
	int64_t now;
	uint64_t next_ino;
	uint64_t entries;
	const struct journal_open_opts *opts;
};

struct tot {
	int64_t bytes, files, subdirs, ctime;
};

static int scan_obj_insert(struct scan *sc, uint64_t ino, const struct stat *st, const char *target)
{
	sqlite3_stmt *s;
	int r = db_stmt(sc->c, ST_OBJ_INSERT, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)st->st_dev);
	sqlite3_bind_int64(s, 3, (int64_t)st->st_ino);
	sqlite3_bind_int64(s, 4, st->st_mode & S_IFMT);
	sqlite3_bind_int64(s, 5, (int64_t)sc->seq);
	sqlite3_bind_int64(s, 6, S_ISDIR(st->st_mode) ? 0 : st->st_size);
	sqlite3_bind_int64(s, 7, 1);
	db_bind_name(s, 8, target);
	return db_step_done(s);
}

static int scan_ns_insert(struct scan *sc, uint64_t parent, const char *name, uint64_t ino)
{
	sqlite3_stmt *s;
	int r = db_stmt(sc->c, ST_NS_INSERT, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	db_bind_name(s, 2, name);
	sqlite3_bind_int64(s, 3, (int64_t)ino);
	sqlite3_bind_int64(s, 4, (int64_t)sc->seq);
	return db_step_done(s);
}

static int scan_rstat_insert(struct scan *sc, uint64_t ino, const struct tot *t)
{
	sqlite3_stmt *s;
	int r = db_stmt(sc->c, ST_RSTAT_INSERT, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, UTIL_MIN(t->ctime, sc->now));
	sqlite3_bind_int64(s, 3, t->bytes);
	sqlite3_bind_int64(s, 4, t->files);
	sqlite3_bind_int64(s, 5, t->subdirs);
	return db_step_done(s);
}

static int obj_set_nlink_scan(struct jconn *c, uint64_t ino, uint32_t nlink)
{
	sqlite3_stmt *s;
	int r = db_stmt(c, ST_OBJ_SET_NLINK, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, nlink);
	return db_step_done(s);
}

static int64_t ctime_ns(const struct stat *st)
{
	return (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

/* Adopt every entry of `dfd` (directory `dino`) into `tot`. */
static int scan_dir(struct scan *sc, int dfd, uint64_t dino, bool is_root, struct tot *tot)
{
	struct journal *j = sc->j;
	char **names = NULL, *target = NULL;
	size_t n = 0;
	int r;

	r = backing_children(j, dfd, is_root, &names, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct jobj *o, *existing = NULL;
		struct stat st;
		uint64_t ino;

		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			break;
		}
		if (++sc->entries % PROGRESS_EVERY == 0 && sc->opts->progress)
			sc->opts->progress(sc->opts->progress_arg, sc->entries);
		tot->ctime = UTIL_MAX(tot->ctime, ctime_ns(&st));

		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
			/* hard links: one object, found by (dev, bino) */
			o = obj_new(sc->next_ino, st.st_dev, st.st_ino, st.st_mode);
			if (!o) {
				r = -ENOMEM;
				break;
			}
			r = obj_insert(j, o, true, &existing);
			obj_put(o);
			if (r == -EEXIST) {
				existing->nlink++;
				r = obj_set_nlink_scan(sc->c, existing->ino, existing->nlink);
				if (r == 0)
					r = scan_ns_insert(sc, dino, names[i], existing->ino);
				obj_put(existing);
				if (r < 0)
					break;
				tot->files++;
				tot->bytes += S_ISREG(st.st_mode) ? st.st_size : 0;
				continue;
			}
			if (r < 0)
				break;
		}
		ino = sc->next_ino++;
		if (S_ISLNK(st.st_mode)) {
			r = read_target(dfd, names[i], &target);
			if (r < 0)
				break;
		}
		r = scan_obj_insert(sc, ino, &st, target);
		free(target);
		target = NULL;
		if (r == 0)
			r = scan_ns_insert(sc, dino, names[i], ino);
		if (r < 0)
			break;
		if (S_ISDIR(st.st_mode)) {
			struct tot sub = { .ctime = ctime_ns(&st) };
			if (st.st_dev == j->root_dev) {
				int cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						 O_CLOEXEC);
				if (cfd < 0) {
					r = -errno;
					break;
				}
				r = scan_dir(sc, cfd, ino, false, &sub);
				close(cfd);
				if (r < 0)
					break;
			}
			r = scan_rstat_insert(sc, ino, &sub);
			if (r < 0)
				break;
			tot->bytes += sub.bytes;
			tot->files += sub.files;
			tot->subdirs += sub.subdirs + 1;
			tot->ctime = UTIL_MAX(tot->ctime, sub.ctime);
		} else {
			tot->files++;
			tot->bytes += S_ISREG(st.st_mode) ? st.st_size : 0;
		}
	}
	names_free(names, n);
	return r;
}

static void unlink_db_files(int dirfd, const char *base)
{
	static const char *const sfx[] = { "", "-journal", "-wal", "-shm" };
	char name[64];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(sfx); i++) {
		snprintf(name, sizeof(name), "%s%s", base, sfx[i]);
		unlinkat(dirfd, name, 0);
	}
}

int recover_create(struct journal *j, const char *path, const struct journal_open_opts *opts)
{
	static const char tmpname[] = JOURNAL_DB_NAME ".new";
	struct scan sc = { .j = j, .seq = 1, .next_ino = JOURNAL_ROOT_INO + 1, .opts = opts };
	struct tot tot = { 0 };
	struct stat st;
	char *tmp = NULL;
	sqlite3_stmt *s;
	int r, fd;

	if (asprintf(&tmp, "%s.new", path) < 0)
		return -ENOMEM;
	unlink_db_files(j->state_fd, tmpname);
	r = db_open_new(tmp, &sc.c);
	if (r < 0)
		goto out;
	if (fstat(j->root_fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	sc.now = util_now_ns();
	tot.ctime = ctime_ns(&st);
	r = db_exec(sc.c->db, "BEGIN IMMEDIATE");
	if (r < 0)
		goto out;
	r = scan_obj_insert(&sc, JOURNAL_ROOT_INO, &st, NULL);
	if (r == 0)
		r = scan_dir(&sc, j->root_fd, JOURNAL_ROOT_INO, true, &tot);
	if (r == 0)
		r = scan_rstat_insert(&sc, JOURNAL_ROOT_INO, &tot);
	if (r == 0)
		r = db_stmt(sc.c, ST_CHANGE_INSERT, &s);
	if (r == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)sc.seq);
		sqlite3_bind_int64(s, 2, sc.now);
		sqlite3_bind_int(s, 3, JOP_ADOPT);
		sqlite3_bind_int64(s, 4, JOURNAL_ROOT_INO);
		r = db_step_done(s);
	}
	if (r == 0)
		r = db_meta_set_int(sc.c, "next_ino", (int64_t)sc.next_ino);
	if (r == 0)
		r = db_meta_set_int(sc.c, "next_seq", (int64_t)sc.seq + 1);
	if (r == 0)
		r = db_exec(sc.c->db, "COMMIT");
	else
		db_exec(sc.c->db, "ROLLBACK");
	objtab_free(j);  /* the hard-link map of the scan */
	if (r < 0)
		goto out;
	if (opts->progress)
		opts->progress(opts->progress_arg, sc.entries);
	r = db_close_new(sc.c);
	sc.c = NULL;
	if (r < 0)
		goto out;

	/* durable, then atomically in place */
	fd = openat(j->state_fd, tmpname, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (renameat(j->state_fd, tmpname, j->state_fd, JOURNAL_DB_NAME) < 0 ||
	    fsync(j->state_fd) < 0) {
		r = -errno;
		goto out;
	}
	log_info("journal: adopted %" PRIu64 " entries of '%s'", sc.entries, j->backing);
out:
	if (sc.c) {
		db_conn_close(sc.c);
		objtab_free(j);
	}
	if (r < 0)
		unlink_db_files(j->state_fd, tmpname);
	free(tmp);
	return r;
}

/* ---- unclean shutdown --------------------------------------------------- */

struct added {
	struct jobj *dir;
	char *name;
	struct stat st;
	bool moved;
};
struct removed {
	struct jobj *dir;
	char *name;
	struct jobj *o;
	struct added *to;   /* a move */
};
struct recon {
	struct added *add;
	size_t nadd, capadd;
	struct removed *rem;
	size_t nrem, caprem;
	uint64_t ticket;
	unsigned n_dirs, n_files, n_adopt, n_remove, n_move;
};

static int push_added(struct recon *rc, struct jobj *dir, const char *name, const struct stat *st)
{
	if (rc->nadd == rc->capadd) {
		size_t nc = rc->capadd ? rc->capadd * 2 : 16;
		struct added *nv = realloc(rc->add, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rc->add = nv;
		rc->capadd = nc;
	}
	rc->add[rc->nadd] = (struct added){ .dir = obj_ref(dir), .name = strdup(name), .st = *st };
	if (!rc->add[rc->nadd].name) {
		obj_put(dir);
		return -ENOMEM;
	}
	rc->nadd++;
	return 0;
}

static int push_removed(struct recon *rc, struct jobj *dir, const char *name, struct jobj *o)
{
	if (rc->nrem == rc->caprem) {
		size_t nc = rc->caprem ? rc->caprem * 2 : 16;
		struct removed *nv = realloc(rc->rem, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		rc->rem = nv;
		rc->caprem = nc;
	}
	rc->rem[rc->nrem] = (struct removed){ .dir = obj_ref(dir), .name = strdup(name),
					      .o = obj_ref(o) };
	if (!rc->rem[rc->nrem].name) {
		obj_put(dir);
		obj_put(o);
		return -ENOMEM;
	}
	rc->nrem++;
	return 0;
}

static void recon_clear(struct recon *rc)
{
	for (size_t i = 0; i < rc->nadd; i++) {
		obj_put(rc->add[i].dir);
		free(rc->add[i].name);
	}
	for (size_t i = 0; i < rc->nrem; i++) {
		obj_put(rc->rem[i].dir);
		obj_put(rc->rem[i].o);
		free(rc->rem[i].name);
	}
	rc->nadd = rc->nrem = 0;
}

/* Compare directory `d` (open as `fd`) with its live entries: fill rc. */
static int diff_dir(struct journal *j, struct jobj *d, int fd, struct recon *rc)
{
	struct nsent *ns = NULL;
	char **be = NULL;
	size_t nns = 0, nbe = 0, a = 0, b = 0;
	struct stat st;
	int r;

	r = ns_children(j, d->ino, &ns, &nns);
	if (r == 0)
		r = backing_children(j, fd, d->ino == JOURNAL_ROOT_INO, &be, &nbe);
	while (r == 0 && (a < nns || b < nbe)) {
		int c = a == nns ? 1 : b == nbe ? -1 : strcmp(ns[a].name, be[b]);
		struct jobj *o;

		if (c < 0) {
			o = obj_get(j, ns[a].ino);
			r = push_removed(rc, d, ns[a].name, o);
			obj_put(o);
			a++;
			continue;
		}
		if (fstatat(fd, be[b], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				r = -errno;
				break;
			}
			if (c == 0) {
				o = obj_get(j, ns[a].ino);
				r = push_removed(rc, d, ns[a].name, o);
				obj_put(o);
				a++;
			}
			b++;
			continue;
		}
		if (c > 0) {
			r = push_added(rc, d, be[b], &st);
			b++;
			continue;
		}
		o = obj_get(j, ns[a].ino);
		if (!o || o->dev != st.st_dev || o->bino != st.st_ino ||
		    o->type != (st.st_mode & S_IFMT)) {
			r = push_removed(rc, d, ns[a].name, o);
			if (r == 0)
				r = push_added(rc, d, be[b], &st);
		}
		obj_put(o);
		a++;
		b++;
	}
	nsents_free(ns, nns);
	names_free(be, nbe);
	return r;
}

static bool same_obj(const struct jobj *o, const struct stat *st)
{
	return o && o->dev == st->st_dev && o->bino == st->st_ino &&
	       o->type == (st->st_mode & S_IFMT);
}

/* Record what diff_dir() found. */
static int recon_apply(struct journal *j, struct recon *rc)
{
	struct jrec rec;
	int r = 0;

	/* which removals are moves */
	for (size_t i = 0; i < rc->nrem; i++)
		for (size_t k = 0; k < rc->nadd && !rc->rem[i].to; k++)
			if (!rc->add[k].moved && same_obj(rc->rem[i].o, &rc->add[k].st)) {
				rc->rem[i].to = &rc->add[k];
				rc->add[k].moved = true;
			}
	/* vanished entries */
	for (size_t i = 0; i < rc->nrem && r == 0; i++) {
		if (rc->rem[i].to)
			continue;
		r = recover_remove_tree(j, rc->rem[i].dir, rc->rem[i].name, rc->rem[i].o, &rc->ticket);
		rc->n_remove++;
	}
	if (r == 0)
		r = journal_flush(j);
	/* moves whose target name is free become renames; the others detach first */
	for (size_t i = 0; i < rc->nrem && r == 0; i++) {
		struct removed *m = &rc->rem[i];
		bool blocked = false;
		if (!m->to)
			continue;
		for (size_t k = 0; k < rc->nrem; k++)
			if (k != i && rc->rem[k].to && rc->rem[k].dir == m->to->dir &&
			    !strcmp(rc->rem[k].name, m->to->name))
				blocked = true;
		rec = (struct jrec){ .obj = obj_ref(m->o), .parent = m->dir->ino,
				     .name = strdup(m->name) };
		if (!rec.name) {
			obj_put(rec.obj);
			return -ENOMEM;
		}
		if (blocked) {
			rec.op = S_ISDIR(m->o->type) ? JOP_RMDIR : JOP_UNLINK;
			m->to->moved = false;  /* re-linked below */
		} else {
			rec.op = JOP_RENAME;
			rec.new_parent = m->to->dir->ino;
			rec.new_name = strdup(m->to->name);
			if (!rec.new_name) {
				jrec_release(&rec);
				return -ENOMEM;
			}
		}
		r = writer_submit(j, &rec, &rc->ticket);
		rc->n_move++;
	}
	if (r == 0)
		r = journal_flush(j);
	/* new entries: links to known objects, or adoptions */
	for (size_t k = 0; k < rc->nadd && r == 0; k++) {
		struct added *a = &rc->add[k];
		uint64_t ino;
		int dfd;

		if (a->moved)
			continue;
		r = open_obj_dir(j, a->dir, &dfd);
		if (r < 0) {
			log_debug("journal: recovery: cannot open directory %" PRIu64 ": %s",
				  a->dir->ino, strerror(-r));
			r = 0;
			continue;
		}
		/* a known (dev, bino) becomes another link, anything else is adopted */
		r = recover_adopt_tree(j, a->dir, dfd, a->name, &a->st, &ino, &rc->ticket);
		close(dfd);
		rc->n_adopt++;
	}
	/* data behind moved or re-linked regular files may have changed too */
	for (size_t k = 0; k < rc->nadd && r == 0; k++) {
		struct jobj *o = obj_get_bino(j, rc->add[k].st.st_dev, rc->add[k].st.st_ino);
		if (o && S_ISREG(o->type))
			r = recover_touch(j, o, &rc->add[k].st, &rc->ticket);
		obj_put(o);
	}
	if (r == 0)
		r = journal_flush(j);
	recon_clear(rc);
	return r;
}

int recover_dirty(struct journal *j)
{
	struct recon rc = { 0 };
	struct jobj **dirs = NULL, **files = NULL;
	size_t ndirs = 0, nfiles = 0;
	sqlite3_stmt *s = NULL;
	bool progress = true;
	int r = 0, rc_;

	rc_ = sqlite3_prepare_v2(j->wconn->db, "SELECT ino FROM dirty ORDER BY ino", -1, &s, NULL);
	if (rc_ != SQLITE_OK)
		return journal_err(rc_);
	while ((rc_ = sqlite3_step(s)) == SQLITE_ROW) {
		struct jobj *o = obj_get(j, (uint64_t)sqlite3_column_int64(s, 0));
		struct jobj ***v;
		size_t *n;
		if (!o)
			continue;
		v = S_ISDIR(o->type) ? &dirs : &files;
		n = S_ISDIR(o->type) ? &ndirs : &nfiles;
		struct jobj **nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (!nv) {
			obj_put(o);
			r = -ENOMEM;
			break;
		}
		*v = nv;
		(*v)[(*n)++] = o;
	}
	sqlite3_finalize(s);
	if (r == 0 && rc_ != SQLITE_DONE)
		r = journal_err(rc_);

	/* directories, in rounds: one may only be reachable after another's moves */
	while (r == 0 && progress) {
		progress = false;
		for (size_t i = 0; i < ndirs && r == 0; i++) {
			int fd;
			if (!dirs[i] || atomic_load(&dirs[i]->dead)) {
				continue;
			}
			if (open_obj_dir(j, dirs[i], &fd) < 0)
				continue;
			r = diff_dir(j, dirs[i], fd, &rc);
			close(fd);
			obj_put(dirs[i]);
			dirs[i] = NULL;
			rc.n_dirs++;
			progress = true;
		}
		if (r == 0 && (rc.nadd || rc.nrem))
			r = recon_apply(j, &rc);
	}
	for (size_t i = 0; i < ndirs; i++) {
		if (dirs[i] && !atomic_load(&dirs[i]->dead))
			log_warning("journal: recovery: directory %" PRIu64 " is not reachable",
				    dirs[i]->ino);
		obj_put(dirs[i]);
	}
	/* files: wholly changed */
	for (size_t i = 0; i < nfiles; i++) {
		struct jconn *c;
		struct stat st;
		char *path = NULL;

		if (r == 0 && !atomic_load(&files[i]->dead)) {
			r = journal_flush(j);
			if (r == 0)
				r = db_conn_get(j, &c);
			if (r == 0) {
				int k = changes_path_at(c, files[i]->ino, UINT64_MAX, &path);
				db_conn_put(j, c);
				if (k == 0 && fstatat(j->root_fd, path + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    same_obj(files[i], &st)) {
					r = recover_touch(j, files[i], &st, &rc.ticket);
					rc.n_files++;
				}
				free(path);
			}
		}
		obj_put(files[i]);
	}
	free(dirs);
	free(files);
	if (r == 0)
		r = journal_flush(j);
	recon_clear(&rc);
	free(rc.add);
	free(rc.rem);
	if (r == 0)
		log_notice("journal: recovered '%s' after an unclean shutdown: %u directories "
			   "reconciled (%u removed, %u moved, %u added), %u files recorded as changed",
			   j->backing, rc.n_dirs, rc.n_remove, rc.n_move, rc.n_adopt, rc.n_files);
	return r;
}
