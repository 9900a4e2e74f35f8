/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal_check(): compare the journal with the backing tree.
 *
 * 1. A walk of the backing tree (never following symlinks, skipping
 *    BACKING/.mirrorfs, not descending into other filesystems) against the
 *    live namespace: MISSING, UNKNOWN, TYPE (same name, another object or
 *    type) and SIZE drifts.
 * 2. Every directory's stored rstat against a recomputation from the live
 *    namespace and object sizes (rbytes, rfiles, rsubdirs; rctime comes
 *    from our own clock at record time and is not compared).
 *
 * With `repair`, each difference is recorded (adopt, unlink/rmdir, write +
 * setattr, rstat fix) so a second check finds none. The check holds
 * mut_lock exclusively: mutations wait, so the comparison is of a quiet
 * tree (changes made behind the journal's back meanwhile are, of course,
 * still possible).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "journal_i.h"

struct chk {
	struct journal *j;
	bool repair;
	void (*cb)(void *arg, const struct journal_drift *d);
	void *arg;
	int count;
	uint64_t ticket;
};

__attribute__((format(printf, 4, 5)))
static void report(struct chk *k, enum journal_drift_kind kind, const char *path,
		   const char *fmt, ...)
{
	struct journal_drift d = { .kind = kind, .path = path };
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	d.detail = detail;
	k->count++;
	if (k->cb)
		k->cb(k->arg, &d);
}

static char *join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name) < 0)
		return NULL;
	return p;
}

static const char *type_name(uint32_t type)
{
	switch (type & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	default: return "unknown";
	}
}

static int check_dir(struct chk *k, struct jobj *d, int fd, const char *path)
{
	struct journal *j = k->j;
	struct nsent *ns = NULL;
	char **be = NULL;
	size_t nns = 0, nbe = 0, a = 0, b = 0;
	int r;

	r = ns_children(j, d->ino, &ns, &nns);
	if (r == 0)
		r = backing_children(j, fd, d->ino == JOURNAL_ROOT_INO, &be, &nbe);
	while (r == 0 && (a < nns || b < nbe)) {
		int c = a == nns ? 1 : b == nbe ? -1 : strcmp(ns[a].name, be[b]);
		const char *name = c <= 0 ? ns[a].name : be[b];
		char *cpath = join(path, name);
		struct jobj *o = NULL;
		struct stat st;
		uint64_t ino;
		bool have_st = false;

		if (!cpath) {
			r = -ENOMEM;
			break;
		}
		if (c >= 0) {
			if (fstatat(fd, be[b], &st, AT_SYMLINK_NOFOLLOW) == 0)
				have_st = true;
			else if (errno != ENOENT)
				r = -errno;
		}
		if (c <= 0)
			o = obj_get(j, ns[a].ino);

		if (r < 0) {
			/* fall through to cleanup */
		} else if (c <= 0 && !have_st) {
			report(k, JOURNAL_DRIFT_MISSING, cpath, "%s is in the journal but not on disk",
			       o ? type_name(o->type) : "entry");
			if (k->repair)
				r = recover_remove_tree(j, d, name, o, &k->ticket);
		} else if (c > 0) {
			if (have_st) {
				report(k, JOURNAL_DRIFT_UNKNOWN, cpath,
				       "%s is on disk but not in the journal", type_name(st.st_mode));
				if (k->repair)
					r = recover_adopt_tree(j, d, fd, name, &st, &ino, &k->ticket);
			}
		} else if (!o || o->dev != st.st_dev || o->bino != st.st_ino ||
			   o->type != (st.st_mode & S_IFMT)) {
			report(k, JOURNAL_DRIFT_TYPE, cpath, "journal has a %s, disk has another %s",
			       o ? type_name(o->type) : "lost object", type_name(st.st_mode));
			if (k->repair) {
				r = recover_remove_tree(j, d, name, o, &k->ticket);
				if (r == 0)
					r = journal_flush(j);
				if (r == 0)
					r = recover_adopt_tree(j, d, fd, name, &st, &ino, &k->ticket);
			}
		} else {
			int64_t jsize;
			pthread_mutex_lock(&j->q.lock);
			jsize = o->size;
			pthread_mutex_unlock(&j->q.lock);
			if (S_ISREG(st.st_mode) && jsize != st.st_size) {
				report(k, JOURNAL_DRIFT_SIZE, cpath,
				       "size is %" PRId64 " in the journal, %lld on disk", jsize,
				       (long long)st.st_size);
				if (k->repair)
					r = recover_touch(j, o, &st, &k->ticket);
			}
			if (r == 0 && S_ISDIR(st.st_mode) && st.st_dev == j->root_dev) {
				int cfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (cfd < 0) {
					r = errno == ENOENT ? 0 : -errno;
				} else {
					r = check_dir(k, o, cfd, cpath);
					close(cfd);
				}
			}
		}
		obj_put(o);
		free(cpath);
		if (c <= 0)
			a++;
		if (c >= 0)
			b++;
	}
	nsents_free(ns, nns);
	names_free(be, nbe);
	if (r == 0 && k->repair)
		r = journal_flush(j);
	return r;
}

static int check_rstats(struct chk *k)
{
	struct journal *j = k->j;
	struct rstat_calc *calc = NULL;
	struct jconn *c;
	sqlite3_stmt *s = NULL;
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = db_exec(c->db, "BEGIN");
	if (r < 0)
		goto out;
	r = rstat_compute_all(j, c, &calc);
	if (r < 0)
		goto out_txn;
	rc = sqlite3_prepare_v2(c->db, "SELECT ino FROM objects WHERE died_seq IS NULL "
				"AND (type & 61440) = 16384 ORDER BY ino", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = journal_err(rc);
		goto out_txn;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t ino = (uint64_t)sqlite3_column_int64(s, 0);
		struct journal_rstat want, have;
		char *path = NULL;
		int k1;

		if (rstat_calc_get(calc, ino, &want) < 0)
			continue;  /* not reachable from the root: the tree walk reports it */
		k1 = rstat_read(c, ino, &have);
		if (k1 < 0 && k1 != -ENOENT) {
			r = k1;
			break;
		}
		if (k1 == 0 && have.rbytes == want.rbytes && have.rfiles == want.rfiles &&
		    have.rsubdirs == want.rsubdirs)
			continue;
		changes_path_at(c, ino, UINT64_MAX, &path);
		if (k1 < 0)
			report(k, JOURNAL_DRIFT_RSTAT, path ? path : "?", "recursive stats missing");
		else
			report(k, JOURNAL_DRIFT_RSTAT, path ? path : "?",
			       "rbytes/rfiles/rsubdirs %" PRIu64 "/%" PRIu64 "/%" PRIu64
			       " stored, %" PRIu64 "/%" PRIu64 "/%" PRIu64 " computed",
			       have.rbytes, have.rfiles, have.rsubdirs, want.rbytes,
			       want.rfiles, want.rsubdirs);
		free(path);
		if (k->repair) {
			struct jobj *o = obj_get(j, ino);
			struct jrec rec = { .op = JREC_RSTAT_SET, .obj = o,
					    .off = (int64_t)want.rbytes, .len = (int64_t)want.rfiles,
					    .size = (int64_t)want.rsubdirs };
			if (o)
				r = writer_submit(j, &rec, &k->ticket);
			if (r < 0)
				break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	sqlite3_finalize(s);
out_txn:
	db_exec(c->db, "COMMIT");
out:
	rstat_calc_free(calc);
	db_conn_put(j, c);
	return r;
}

int journal_check(struct journal *j, bool repair,
		  void (*cb)(void *arg, const struct journal_drift *d), void *arg)
{
	struct chk k = { .j = j, .repair = repair, .cb = cb, .arg = arg };
	bool ro = j->flags & JOURNAL_OPEN_READONLY;
	struct jobj *root;
	int fd, r;

	if (repair && ro)
		return -EROFS;
	root = obj_get(j, JOURNAL_ROOT_INO);
	if (!root)
		return -EUCLEAN;
	if (!ro)
		pthread_rwlock_wrlock(&j->mut_lock);
	r = journal_flush(j);
	if (r < 0)
		goto out;
	fd = openat(j->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = check_dir(&k, root, fd, "/");
	close(fd);
	if (r == 0)
		r = check_rstats(&k);
	if (r == 0)
		r = journal_flush(j);
out:
	if (!ro)
		pthread_rwlock_unlock(&j->mut_lock);
	obj_put(root);
	return r < 0 ? r : k.count;
}
