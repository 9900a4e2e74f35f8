/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The receiver's half that touches the replica: each body record becomes
 * calls of the journal's mutation API, so the replica is journaled (and can
 * be snapshotted) exactly like a primary.
 *
 * Safety against a hostile or diverged stream: nothing is addressed by path.
 * Directories are opened by jino (journal_open_ino), entries are single
 * names the reader validated, used with *at() calls relative to those fds
 * and never followed. Before a name is removed or renamed, the jino it
 * refers to is compared with the record's. Object ids must lie in the
 * source's range (below JOURNAL_LOCAL_INO_BASE), so a stream cannot reach
 * the receiver's own staging directory except through JOURNAL_STAGING_INO,
 * whose entries must be named by the jino they hold; the replica root's
 * names ".mirrorfs" and ".mirrorfs.recv" are refused.
 *
 * Idempotency (a resumed stream re-applies records after the last saved
 * position): CREATE of a live jino, LINK of a name that already holds the
 * object, UNLINK of a missing name, RENAME whose target already holds the
 * object are done already; DATA, PUNCH, SETATTR and xattrs converge by
 * themselves. Within the replay window (recv_i.h) a name holding another
 * object also means "done"; after it, it means divergence and fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"
#include "recv_i.h"

int repl_recv_fail(struct recv *c, int r, const char *fmt, ...)
{
	char what[480];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (c->rec)
		snprintf(c->msg, sizeof(c->msg), "record %" PRIu64 " (%s): %s: %s", c->rec->seq,
			 repl_rec_type_name(c->rec->type), what, strerror(-r));
	else
		snprintf(c->msg, sizeof(c->msg), "%s: %s", what, strerror(-r));
	return r;
}

void repl_recv_init(struct recv *c, struct journal *j)
{
	memset(c, 0, sizeof(*c));
	c->j = j;
	c->rootfd = journal_root_fd(j);
	c->staging_fd = -1;
	c->file_fd = -1;
	for (size_t i = 0; i < RECV_DIR_CACHE; i++)
		c->dirs[i].fd = -1;
	journal_keep_open(j, true);   /* objects opened by name in a kept parent */
}

static void file_close(struct recv *c)
{
	if (c->file_fd >= 0)
		close(c->file_fd);
	c->file_fd = -1;
	c->file_ino = 0;
}

void repl_recv_release(struct recv *c)
{
	for (size_t i = 0; i < RECV_DIR_CACHE; i++) {
		if (c->dirs[i].fd >= 0)
			close(c->dirs[i].fd);
		c->dirs[i].fd = -1;
		c->dirs[i].ino = 0;
	}
	if (c->staging_fd >= 0)
		close(c->staging_fd);
	c->staging_fd = -1;
	file_close(c);
	u64map_free(&c->hint_of);
	free(c->hints);
	free(c->names);
	c->hints = NULL;
	c->names = NULL;
	c->nhints = c->hints_cap = c->names_len = c->names_cap = 0;
	journal_keep_open(c->j, false);
}

/* ---- names and objects ---------------------------------------------------------- */

static void ino_name(uint64_t ino, char name[24])
{
	snprintf(name, 24, "%" PRIu64, ino);
}

/* An object id of the source: the staging directory's and other local ids are not. */
static int check_ino(struct recv *c, uint64_t ino, const char *what)
{
	if (ino == 0 || ino >= JOURNAL_LOCAL_INO_BASE)
		return repl_recv_fail(c, -EINVAL, "%s inode %" PRIu64 " is outside the source's range",
				 what, ino);
	return 0;
}

static int check_dir_ino(struct recv *c, uint64_t dir)
{
	return dir == JOURNAL_STAGING_INO ? 0 : check_ino(c, dir, "directory");
}

/* A name a record may use in directory `dir` for object `ino`. */
static int check_entry(struct recv *c, uint64_t dir, const char *name, uint64_t ino)
{
	char want[24];

	if (dir == JOURNAL_ROOT_INO &&
	    (strcmp(name, JOURNAL_STATE_DIR) == 0 || strcmp(name, REPL_STAGING_NAME) == 0))
		return repl_recv_fail(c, -EINVAL, "name '%s' is reserved in the replica root", name);
	if (dir == JOURNAL_STAGING_INO) {
		ino_name(ino, want);
		if (strcmp(name, want) != 0)
			return repl_recv_fail(c, -EINVAL, "staging entry '%s' does not name inode %" PRIu64,
					 name, ino);
	}
	return 0;
}

/*
 * What `name` in `dirfd` is: 1 with its jino in *ret_ino (0 if the journal
 * does not know the object), 0 if there is no such entry.
 */
int repl_recv_entry_get(struct recv *c, int dirfd, const char *name, uint64_t *ret_ino,
			struct stat *ret_st)
{
	struct stat st;
	uint64_t ino = 0;
	int r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	r = journal_ino_find(c->j, &st, &ino);
	if (r == -ENOENT)
		ino = 0;
	else if (r < 0)
		return r;
	*ret_ino = ino;
	if (ret_st)
		*ret_st = st;
	return 1;
}

/* ---- names the stream gave (struct recv_hint) ------------------------------------ */

static struct recv_hint *hint_find(struct recv *c, uint64_t ino)
{
	uint64_t i;

	return u64map_get(&c->hint_of, ino, &i) ? &c->hints[i - 1] : NULL;
}

/* An object lost or gained a name: a RENAME out of staging is no longer known to be done. */
static void hint_moved(struct recv *c, uint64_t ino)
{
	struct recv_hint *h = hint_find(c, ino);

	if (h)
		h->in_place = false;
}

/* `ino` is now `name` in `parent`. Best effort: without memory, the hint stays stale. */
static void hint_put(struct recv *c, uint64_t ino, uint64_t parent, const char *name,
		     bool in_place)
{
	struct recv_hint *h = hint_find(c, ino);
	size_t len = strlen(name) + 1;

	if (c->names_len + len > c->names_cap) {
		size_t cap = c->names_cap ? c->names_cap * 2 : 65536;
		char *p = NULL;

		while (cap < c->names_len + len)
			cap *= 2;
		if (cap <= RECV_HINT_NAMES_MAX)
			p = realloc(c->names, cap);
		if (!p) {
			hint_moved(c, ino);
			return;
		}
		c->names = p;
		c->names_cap = cap;
	}
	if (!h) {
		if (c->nhints == c->hints_cap) {
			size_t cap = c->hints_cap ? c->hints_cap * 2 : 1024;
			struct recv_hint *v = realloc(c->hints, cap * sizeof(*v));

			if (!v)
				return;
			c->hints = v;
			c->hints_cap = cap;
		}
		if (u64map_put(&c->hint_of, ino, c->nhints + 1) < 0)
			return;
		h = &c->hints[c->nhints++];
	}
	memcpy(c->names + c->names_len, name, len);
	*h = (struct recv_hint){ .parent = parent, .off = (uint32_t)c->names_len,
				 .in_place = in_place };
	c->names_len += len;
}

/* ---- fds by jino ------------------------------------------------------------------ */

/* An O_PATH fd (borrowed) and the journal's jino of directory `dir` of the stream. */
static int dir_get(struct recv *c, uint64_t dir, int *ret_fd, uint64_t *ret_jino)
{
	size_t victim = 0;
	int fd, r;

	if (dir == JOURNAL_STAGING_INO) {
		r = repl_recv_staging_get(c);
		if (r < 0)
			return r;
		*ret_fd = c->staging_fd;
		*ret_jino = c->staging_ino;
		return 0;
	}
	*ret_jino = dir;
	if (dir == JOURNAL_ROOT_INO) {
		*ret_fd = c->rootfd;
		return 0;
	}
	for (size_t i = 0; i < RECV_DIR_CACHE; i++) {
		if (c->dirs[i].ino == dir) {
			c->dirs[i].used = ++c->tick;
			*ret_fd = c->dirs[i].fd;
			return 0;
		}
		if (c->dirs[i].used < c->dirs[victim].used)
			victim = i;
	}
	r = journal_open_ino(c->j, dir, O_PATH | O_DIRECTORY, &fd);
	if (r < 0)
		return r;
	if (c->dirs[victim].fd >= 0)
		close(c->dirs[victim].fd);
	c->dirs[victim].ino = dir;
	c->dirs[victim].fd = fd;
	c->dirs[victim].used = ++c->tick;
	*ret_fd = fd;
	return 0;
}

static void dir_forget(struct recv *c, uint64_t dir)
{
	for (size_t i = 0; i < RECV_DIR_CACHE; i++) {
		if (c->dirs[i].ino == dir) {
			close(c->dirs[i].fd);
			c->dirs[i].fd = -1;
			c->dirs[i].ino = 0;
			c->dirs[i].used = 0;
		}
	}
}

static int dir_get_or_fail(struct recv *c, uint64_t dir, int *ret_fd, uint64_t *ret_jino)
{
	int r = dir_get(c, dir, ret_fd, ret_jino);

	if (r < 0 && r != -ENOENT && dir == JOURNAL_STAGING_INO)
		return r;   /* message set by repl_recv_staging_get() */
	if (r < 0)
		return repl_recv_fail(c, r, "cannot open directory %" PRIu64, dir);
	return 0;
}

/*
 * `ino` opened with `flags`: where its hint says if that still holds (no
 * database lookup), else found by jino.
 */
static int open_ino(struct recv *c, uint64_t ino, int flags, int *ret_fd)
{
	struct recv_hint *h = hint_find(c, ino);
	uint64_t dj;
	int dfd;

	/* (a hint into staging only while it is open: dir_get() would create it) */
	if (h && (h->parent != JOURNAL_STAGING_INO || c->staging_fd >= 0) &&
	    dir_get(c, h->parent, &dfd, &dj) == 0 &&
	    journal_open_ino_at(c->j, ino, dfd, c->names + h->off, flags, ret_fd) == 0)
		return 0;
	return journal_open_ino(c->j, ino, flags, ret_fd);
}

/* The regular file `ino` open for writing (cached, borrowed). */
static int file_get(struct recv *c, uint64_t ino, int *ret_fd)
{
	int fd, r;

	if (c->file_ino == ino) {
		*ret_fd = c->file_fd;
		return 0;
	}
	file_close(c);
	r = open_ino(c, ino, O_RDWR, &fd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot open inode %" PRIu64 " for writing", ino);
	c->file_ino = ino;
	c->file_fd = fd;
	*ret_fd = fd;
	return 0;
}

/* An O_PATH fd of any object, owned by the caller (the root's is a dup). */
static int obj_open(struct recv *c, uint64_t ino, int *ret_fd)
{
	int r;

	if (ino == JOURNAL_ROOT_INO) {
		*ret_fd = fcntl(c->rootfd, F_DUPFD_CLOEXEC, 0);
		return *ret_fd < 0 ? repl_recv_fail(c, -errno, "cannot open the replica root") : 0;
	}
	r = open_ino(c, ino, O_PATH, ret_fd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot open inode %" PRIu64, ino);
	return 0;
}

/*
 * An fd of object `ino` to change its attributes: the file open for
 * writing if it is that one (*ret_own false), else an O_PATH fd the
 * caller closes.
 */
static int attr_fd(struct recv *c, uint64_t ino, int *ret_fd, bool *ret_own)
{
	*ret_own = c->file_ino != ino;
	if (!*ret_own) {
		*ret_fd = c->file_fd;
		return 0;
	}
	return obj_open(c, ino, ret_fd);
}

static bool replaying(const struct recv *c)
{
	return c->rec && c->rec->seq <= c->replay_hi;
}

/* ---- what a crash left ---------------------------------------------------------------
 *
 * A receiver killed between changing the replica and committing those
 * changes to its journal leaves objects the journal's recovery then
 * adopts under local jinos (the replica has no other local objects but
 * the staging directory). Their records are replayed after the resume
 * position and make the objects anew under the stream's jinos; a
 * leftover in the way goes. A directory's entries (its own leftovers, or
 * objects a later record moved in) move into the directory that takes its
 * place, where their own records find them or replace them in turn.
 */

/* Only met while replaying: afterwards a local object in the way is divergence. */
static bool is_leftover(const struct recv *c, uint64_t ino)
{
	return replaying(c) && ino >= JOURNAL_LOCAL_INO_BASE && ino != c->staging_ino;
}

/*
 * Remove the leftover `ino` at `name` in `dfd`: a non-directory is
 * unlinked; a directory is moved into staging (named by its jino) and its
 * jino returned in *ret_aside, for leftover_merge() once its successor (a
 * directory: `into_dir`) exists; if the successor is no directory, the
 * leftover directory must be empty and is removed.
 */
static int leftover_away(struct recv *c, int dfd, uint64_t dj, const char *name, uint64_t ino,
			 const struct stat *st, bool into_dir, uint64_t *ret_aside)
{
	char aside[24];
	int r;

	*ret_aside = 0;
	if (!S_ISDIR(st->st_mode) || !into_dir) {
		if (S_ISDIR(st->st_mode))
			dir_forget(c, ino);
		r = S_ISDIR(st->st_mode) ? journal_rmdir(c->j, dfd, dj, name) :
			journal_unlink(c->j, dfd, dj, name);
		return r < 0 ? repl_recv_fail(c, r, "cannot remove the leftover '%s' of an "
					      "interrupted stream", name) : 0;
	}
	r = repl_recv_staging_get(c);
	if (r < 0)
		return r;
	ino_name(ino, aside);
	dir_forget(c, ino);
	r = journal_rename(c->j, dfd, dj, name, c->staging_fd, c->staging_ino, aside,
			   RENAME_NOREPLACE);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot move the leftover directory '%s' of an "
				      "interrupted stream", name);
	*ret_aside = ino;
	return 0;
}

/* Move the entries of the set-aside directory `aside` into directory `dir`, and remove it. */
static int leftover_merge(struct recv *c, uint64_t aside, uint64_t dir)
{
	char name[24];
	struct dirent *de;
	uint64_t dj;
	int dfd, r = 0;
	DIR *d;

	if (!aside)
		return 0;
	ino_name(aside, name);
	r = dir_get_or_fail(c, dir, &dfd, &dj);
	if (r < 0)
		return r;
	r = util_opendirat(c->staging_fd, name, O_NOFOLLOW, &d);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot read the leftover directory %" PRIu64, aside);
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = journal_rename(c->j, dirfd(d), aside, de->d_name, dfd, dj, de->d_name,
				   RENAME_NOREPLACE);
		if (r < 0)
			r = repl_recv_fail(c, r, "cannot move '%s' out of the leftover directory %"
					   PRIu64, de->d_name, aside);
	}
	if (r == 0 && errno)
		r = repl_recv_fail(c, -errno, "cannot read the leftover directory %" PRIu64, aside);
	closedir(d);
	if (r == 0) {
		r = journal_rmdir(c->j, c->staging_fd, c->staging_ino, name);
		if (r < 0)
			r = repl_recv_fail(c, r, "cannot remove the leftover directory %" PRIu64, aside);
	}
	return r;
}

/*
 * A CREATE found `name` in `dfd` taken: if a leftover holds it, move it
 * away (*ret_aside as leftover_away()); 1 if so, 0 if it is no leftover.
 */
static int leftover_clear(struct recv *c, int dfd, uint64_t dj, const char *name,
			  bool into_dir, uint64_t *ret_aside)
{
	struct stat st;
	uint64_t cur = 0;
	int r;

	*ret_aside = 0;
	if (!replaying(c))
		return 0;   /* no lookup: there is no leftover to find */
	r = repl_recv_entry_get(c, dfd, name, &cur, &st);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot look up '%s'", name);
	if (r == 0 || !is_leftover(c, cur))
		return 0;
	r = leftover_away(c, dfd, dj, name, cur, &st, into_dir, ret_aside);
	return r < 0 ? r : 1;
}

/* ---- namespace ---------------------------------------------------------------------- */

/*
 * The object of a CREATE. A regular file is opened as it is made and kept
 * as the file to write (its DATA follows at once, see send.c).
 */
static int make_object(struct recv *c, const struct journal_cred *cred, int dfd, uint64_t dj,
		       const struct repl_create *cr, struct stat *st)
{
	int fd, r;

	if (!S_ISREG(cr->mode))
		return journal_mknod(c->j, cred, dfd, dj, cr->name, cr->mode,
				     makedev(cr->rdev_major, cr->rdev_minor), cr->target, st);
	r = journal_create(c->j, cred, dfd, dj, cr->name, O_RDWR | O_EXCL, cr->mode & 07777,
			   &fd, st);
	if (r < 0)
		return r;
	file_close(c);
	c->file_ino = cr->ino;
	c->file_fd = fd;
	return 0;
}

static int apply_create(struct recv *c, const struct repl_create *cr)
{
	struct journal_cred cred = { .uid = cr->uid, .gid = cr->gid, .ino = cr->ino };
	uint64_t dj, aside = 0;
	struct stat st;
	int fd, dfd, r;

	if ((r = check_ino(c, cr->ino, "new")) < 0 || (r = check_dir_ino(c, cr->parent)) < 0 ||
	    (r = check_entry(c, cr->parent, cr->name, cr->ino)) < 0)
		return r;
	r = journal_open_ino(c->j, cr->ino, O_PATH, &fd);
	if (r == 0) {
		/* created before (a replayed record) */
		r = fstat(fd, &st) < 0 ? -errno : 0;
		close(fd);
		if (r < 0)
			return repl_recv_fail(c, r, "cannot stat inode %" PRIu64, cr->ino);
		if ((st.st_mode & S_IFMT) != (cr->mode & S_IFMT))
			return repl_recv_fail(c, -EEXIST, "inode %" PRIu64 " exists with another type",
					 cr->ino);
		return 0;
	}
	if (r != -ENOENT)
		return repl_recv_fail(c, r, "cannot open inode %" PRIu64, cr->ino);
	r = dir_get_or_fail(c, cr->parent, &dfd, &dj);
	if (r < 0)
		return r;
	r = make_object(c, &cred, dfd, dj, cr, &st);
	if (r == -EEXIST) {
		int k = leftover_clear(c, dfd, dj, cr->name, S_ISDIR(cr->mode), &aside);

		if (k < 0)
			return k;
		if (k > 0)
			r = make_object(c, &cred, dfd, dj, cr, &st);
	}
	if (r == -ESTALE)
		return repl_recv_fail(c, r, "inode %" PRIu64 " was deleted on the replica", cr->ino);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot create '%s' in directory %" PRIu64, cr->name,
				 cr->parent);
	hint_put(c, cr->ino, cr->parent, cr->name,
		 cr->parent != JOURNAL_STAGING_INO && !replaying(c));
	r = leftover_merge(c, aside, cr->ino);
	if (r < 0)
		return r;
	/* the umask may have cut permission bits: SETATTR would fix them later, do it now */
	if (!S_ISLNK(cr->mode) && (st.st_mode & 07777) != (cr->mode & 07777)) {
		struct journal_attr a = { .valid = JOURNAL_ATTR_MODE, .mode = cr->mode & 07777 };
		bool own;

		r = attr_fd(c, cr->ino, &fd, &own);
		if (r < 0)
			return r;
		r = journal_setattr(c->j, fd, -1, cr->ino, &a, NULL);
		if (own)
			close(fd);
		if (r < 0)
			return repl_recv_fail(c, r, "cannot set the mode of inode %" PRIu64, cr->ino);
	}
	return 0;
}

static int apply_link(struct recv *c, const struct repl_link *l)
{
	uint64_t dj, cur, aside;
	struct stat st;
	int fd, dfd, r;

	if ((r = check_ino(c, l->ino, "linked")) < 0 || (r = check_dir_ino(c, l->parent)) < 0 ||
	    (r = check_entry(c, l->parent, l->name, l->ino)) < 0)
		return r;
	hint_moved(c, l->ino);
	r = dir_get_or_fail(c, l->parent, &dfd, &dj);
	if (r < 0)
		return r;
	r = repl_recv_entry_get(c, dfd, l->name, &cur, &st);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot look up '%s' in directory %" PRIu64, l->name, l->parent);
	if (r > 0 && cur == l->ino)
		return 0;
	if (r > 0 && is_leftover(c, cur))
		r = leftover_away(c, dfd, dj, l->name, cur, &st, false, &aside);
	if (r < 0)
		return r;
	if (r > 0)
		return repl_recv_fail(c, -EEXIST, "'%s' in directory %" PRIu64 " is inode %" PRIu64
				 ", not %" PRIu64, l->name, l->parent, cur, l->ino);
	r = obj_open(c, l->ino, &fd);
	if (r < 0)
		return r;
	r = journal_link(c->j, fd, l->ino, dfd, dj, l->name, NULL);
	close(fd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot link inode %" PRIu64 " as '%s' in directory %" PRIu64,
				 l->ino, l->name, l->parent);
	return 0;
}

static int apply_unlink(struct recv *c, const struct repl_unlink *u, bool rmdir)
{
	struct stat st;
	uint64_t dj, cur;
	int dfd, r;

	if ((r = check_ino(c, u->ino, "unlinked")) < 0 || (r = check_dir_ino(c, u->parent)) < 0 ||
	    (r = check_entry(c, u->parent, u->name, u->ino)) < 0)
		return r;
	r = dir_get(c, u->parent, &dfd, &dj);
	if (r == -ENOENT && replaying(c))
		return 0;   /* the directory went too */
	if (r < 0)
		return u->parent == JOURNAL_STAGING_INO ? r :
			repl_recv_fail(c, r, "cannot open directory %" PRIu64, u->parent);
	r = repl_recv_entry_get(c, dfd, u->name, &cur, &st);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot look up '%s' in directory %" PRIu64, u->name, u->parent);
	if (r == 0)
		return 0;   /* gone already */
	if (cur != u->ino) {
		if (replaying(c))
			return 0;
		return repl_recv_fail(c, -ESTALE, "'%s' in directory %" PRIu64 " is inode %" PRIu64
				 ", not %" PRIu64 " (the replica diverged)", u->name, u->parent,
				 cur, u->ino);
	}
	if (rmdir && !S_ISDIR(st.st_mode))
		return repl_recv_fail(c, -ENOTDIR, "cannot remove directory '%s'", u->name);
	if (!rmdir && S_ISDIR(st.st_mode))
		return repl_recv_fail(c, -EISDIR, "cannot unlink '%s'", u->name);
	hint_moved(c, u->ino);
	if (rmdir) {
		dir_forget(c, u->ino);
		r = journal_rmdir(c->j, dfd, dj, u->name);
	} else {
		if (c->file_ino == u->ino)
			file_close(c);
		r = journal_unlink(c->j, dfd, dj, u->name);
	}
	if (r < 0)
		return repl_recv_fail(c, r, "cannot remove '%s' from directory %" PRIu64, u->name,
				 u->parent);
	return 0;
}

static int apply_rename(struct recv *c, const struct repl_rename *rn)
{
	uint64_t odj = 0, ndj, src = 0, dst = 0, aside = 0;
	int odfd = -1, ndfd, rs = 0, rd, r, fd;
	struct recv_hint *h;
	struct stat sst, dst_st;

	if (rn->flags & REPL_RENAME_EXCHANGE)
		return repl_recv_fail(c, -EINVAL, "exchange records are not applied (not idempotent)");
	if ((r = check_ino(c, rn->ino, "renamed")) < 0 ||
	    (r = check_dir_ino(c, rn->old_parent)) < 0 ||
	    (r = check_dir_ino(c, rn->new_parent)) < 0 ||
	    (r = check_entry(c, rn->old_parent, rn->old_name, rn->ino)) < 0 ||
	    (r = check_entry(c, rn->new_parent, rn->new_name, rn->ino)) < 0)
		return r;
	h = hint_find(c, rn->ino);
	if (h && h->in_place && rn->old_parent == JOURNAL_STAGING_INO &&
	    h->parent == rn->new_parent && strcmp(c->names + h->off, rn->new_name) == 0) {
		/* created right there by this connection (see send.c): nothing to look up */
		h->in_place = false;
		return 0;
	}
	r = dir_get_or_fail(c, rn->new_parent, &ndfd, &ndj);
	if (r < 0)
		return r;
	r = dir_get(c, rn->old_parent, &odfd, &odj);
	if (r < 0 && (r != -ENOENT || rn->old_parent == JOURNAL_STAGING_INO))
		return rn->old_parent == JOURNAL_STAGING_INO ? r :
			repl_recv_fail(c, r, "cannot open directory %" PRIu64, rn->old_parent);
	if (r == 0) {
		rs = repl_recv_entry_get(c, odfd, rn->old_name, &src, &sst);
		if (rs < 0)
			return repl_recv_fail(c, rs, "cannot look up '%s' in directory %" PRIu64,
					 rn->old_name, rn->old_parent);
	}
	rd = repl_recv_entry_get(c, ndfd, rn->new_name, &dst, &dst_st);
	if (rd < 0)
		return repl_recv_fail(c, rd, "cannot look up '%s' in directory %" PRIu64,
				 rn->new_name, rn->new_parent);

	if (rs > 0 && src == rn->ino) {
		if (odj == ndj && strcmp(rn->old_name, rn->new_name) == 0)
			return 0;
		if (rd > 0 && dst == rn->ino) {
			/* both names are links of the object: rename(2) would keep both */
			r = journal_unlink(c->j, odfd, odj, rn->old_name);
			if (r < 0)
				return repl_recv_fail(c, r, "cannot remove '%s' from directory %" PRIu64,
						 rn->old_name, rn->old_parent);
			hint_put(c, rn->ino, rn->new_parent, rn->new_name, false);
			return 0;
		}
		if (rd > 0 && is_leftover(c, dst)) {
			r = leftover_away(c, ndfd, ndj, rn->new_name, dst, &dst_st,
					  S_ISDIR(sst.st_mode), &aside);
			if (r < 0)
				return r;
			rd = 0;
		}
		if (rd > 0 && (rn->flags & REPL_RENAME_NOREPLACE))
			return repl_recv_fail(c, -EEXIST, "cannot rename '%s' to '%s' in directory %"
					 PRIu64 ": inode %" PRIu64 " is in the way", rn->old_name,
					 rn->new_name, rn->new_parent, dst);
		if (rd > 0) {
			dir_forget(c, dst);
			hint_moved(c, dst);
		}
		r = journal_rename(c->j, odfd, odj, rn->old_name, ndfd, ndj, rn->new_name,
				   (rn->flags & REPL_RENAME_NOREPLACE) ? RENAME_NOREPLACE : 0);
		if (r < 0)
			return repl_recv_fail(c, r, "cannot rename '%s' in directory %" PRIu64 " to '%s'"
					 " in directory %" PRIu64, rn->old_name, rn->old_parent,
					 rn->new_name, rn->new_parent);
		hint_put(c, rn->ino, rn->new_parent, rn->new_name, false);
		return leftover_merge(c, aside, rn->ino);
	}
	if (rs > 0 && !replaying(c))
		return repl_recv_fail(c, -ESTALE, "'%s' in directory %" PRIu64 " is inode %" PRIu64
				 ", not %" PRIu64 " (the replica diverged)", rn->old_name,
				 rn->old_parent, src, rn->ino);
	if (rd > 0 && dst == rn->ino) {
		hint_put(c, rn->ino, rn->new_parent, rn->new_name, false);
		return 0;   /* renamed before */
	}
	if (replaying(c) && journal_open_ino(c->j, rn->ino, O_PATH, &fd) == 0) {
		close(fd);  /* moved on by a later record that was applied too */
		return 0;
	}
	return repl_recv_fail(c, -ENOENT, "cannot rename '%s' in directory %" PRIu64, rn->old_name,
			 rn->old_parent);
}

/* ---- attributes ----------------------------------------------------------------------- */

static int apply_setattr(struct recv *c, const struct repl_setattr *a)
{
	struct journal_attr ja = { 0 };
	struct stat st;
	int fd, wfd = -1, r;
	bool chowned = false, own;

	if (a->ino != JOURNAL_ROOT_INO && (r = check_ino(c, a->ino, "changed")) < 0)
		return r;
	/* a created file's SETATTR follows its DATA: the fd it wrote with */
	r = attr_fd(c, a->ino, &fd, &own);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0) {
		r = repl_recv_fail(c, -errno, "cannot stat inode %" PRIu64, a->ino);
		goto out;
	}
	/* Owner first: chown clears set-id bits, the mode then restores them. */
	if (a->valid & (REPL_ATTR_UID | REPL_ATTR_GID)) {
		ja.valid = ((a->valid & REPL_ATTR_UID) ? JOURNAL_ATTR_UID : 0) |
			   ((a->valid & REPL_ATTR_GID) ? JOURNAL_ATTR_GID : 0);
		ja.uid = a->uid;
		ja.gid = a->gid;
		if ((uid_t)a->uid != st.st_uid || (gid_t)a->gid != st.st_gid) {
			r = journal_setattr(c->j, fd, -1, a->ino, &ja, NULL);
			if (r < 0) {
				r = repl_recv_fail(c, r, "cannot change the owner of inode %" PRIu64, a->ino);
				goto out;
			}
			chowned = true;
		}
	}
	/* What already holds (a new file's mode, the size its data gave it) costs nothing. */
	ja = (struct journal_attr){ 0 };
	if ((a->valid & REPL_ATTR_MODE) && !S_ISLNK(st.st_mode) &&
	    (chowned || (st.st_mode & 07777) != (a->mode & 07777))) {
		ja.valid |= JOURNAL_ATTR_MODE;
		ja.mode = a->mode;
	}
	if (a->valid & REPL_ATTR_SIZE) {
		if (!S_ISREG(st.st_mode)) {
			r = repl_recv_fail(c, -EINVAL, "inode %" PRIu64 " is not a regular file", a->ino);
			goto out;
		}
		if ((off_t)a->size != st.st_size) {
			r = file_get(c, a->ino, &wfd);
			if (r < 0)
				goto out;
			ja.valid |= JOURNAL_ATTR_SIZE;
			ja.size = (off_t)a->size;
		}
	}
	if (a->valid & REPL_ATTR_ATIME) {
		ja.valid |= JOURNAL_ATTR_ATIME;
		ja.atime = (struct timespec){ .tv_sec = a->atime_sec, .tv_nsec = a->atime_nsec };
	}
	if (a->valid & REPL_ATTR_MTIME) {
		ja.valid |= JOURNAL_ATTR_MTIME;
		ja.mtime = (struct timespec){ .tv_sec = a->mtime_sec, .tv_nsec = a->mtime_nsec };
	}
	if (ja.valid) {
		r = journal_setattr(c->j, fd, wfd, a->ino, &ja, NULL);
		if (r < 0) {
			r = repl_recv_fail(c, r, "cannot set the attributes of inode %" PRIu64, a->ino);
			goto out;
		}
	}
	r = 0;
out:
	if (own)
		close(fd);
	return r;
}

static int apply_xattr(struct recv *c, const struct repl_xattr *x, bool set)
{
	char pp[40];
	void *cur = NULL;
	int fd, r;

	if (x->ino != JOURNAL_ROOT_INO && (r = check_ino(c, x->ino, "changed")) < 0)
		return r;
	r = obj_open(c, x->ino, &fd);
	if (r < 0)
		return r;
	if (set) {
		/* The same value already (a replayed record): leave it, no journal noise. */
		snprintf(pp, sizeof(pp), "/proc/self/fd/%d", fd);
		cur = malloc(x->size + 1);
		if (cur && getxattr(pp, x->name, cur, x->size + 1) == (ssize_t)x->size &&
		    memcmp(cur, x->value ? x->value : "", x->size) == 0)
			r = 0;
		else
			r = journal_setxattr(c->j, fd, x->ino, x->name, x->value, x->size, 0);
		free(cur);
	} else {
		r = journal_removexattr(c->j, fd, x->ino, x->name);
		if (r == -ENODATA)
			r = 0;
	}
	close(fd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot %s xattr '%s' of inode %" PRIu64,
				 set ? "set" : "remove", x->name, x->ino);
	return 0;
}

/* ---- data ------------------------------------------------------------------------------ */

static int apply_data(struct recv *c, const struct repl_data *d)
{
	const char *p = d->data;
	size_t left = d->length;
	off_t off = (off_t)d->offset;
	int fd, r;

	if (d->ino != JOURNAL_ROOT_INO && (r = check_ino(c, d->ino, "written")) < 0)
		return r;
	r = file_get(c, d->ino, &fd);
	if (r < 0)
		return r;
	while (left > 0) {
		ssize_t k = journal_pwrite(c->j, d->ino, fd, p, left, off);

		if (k < 0)
			return repl_recv_fail(c, (int)k, "cannot write inode %" PRIu64 " at %" PRIu64,
					 d->ino, (uint64_t)off);
		if (k == 0)
			return repl_recv_fail(c, -EIO, "cannot write inode %" PRIu64 " at %" PRIu64,
					 d->ino, (uint64_t)off);
		p += k;
		left -= (size_t)k;
		off += k;
	}
	return 0;
}

/* Without hole punching, zeros within the current size (past it, nothing is there). */
static int punch_by_writing(struct recv *c, uint64_t ino, int fd, uint64_t off, uint64_t len)
{
	static const char zeros[65536];
	struct stat st;
	uint64_t end;

	if (fstat(fd, &st) < 0)
		return -errno;
	end = UTIL_MIN(off + len, (uint64_t)st.st_size);
	while (off < end) {
		size_t n = (size_t)UTIL_MIN(end - off, (uint64_t)sizeof(zeros));
		ssize_t k = journal_pwrite(c->j, ino, fd, zeros, n, (off_t)off);

		if (k < 0)
			return (int)k;
		if (k == 0)
			return -EIO;
		off += (uint64_t)k;
	}
	return 0;
}

static int apply_punch(struct recv *c, const struct repl_punch *p)
{
	int fd, r;

	if (p->ino != JOURNAL_ROOT_INO && (r = check_ino(c, p->ino, "punched")) < 0)
		return r;
	r = file_get(c, p->ino, &fd);
	if (r < 0)
		return r;
	r = journal_fallocate(c->j, p->ino, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)p->offset, (off_t)p->length);
	if (r == -EOPNOTSUPP)
		r = punch_by_writing(c, p->ino, fd, p->offset, p->length);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot punch a hole in inode %" PRIu64 " at %" PRIu64,
				 p->ino, p->offset);
	return 0;
}

int repl_recv_apply(struct recv *c, const struct repl_record *rec)
{
	int r;

	c->rec = rec;
	switch (rec->type) {
	case REPL_REC_CREATE: r = apply_create(c, &rec->create); break;
	case REPL_REC_LINK: r = apply_link(c, &rec->link); break;
	case REPL_REC_UNLINK: r = apply_unlink(c, &rec->unlink, false); break;
	case REPL_REC_RMDIR: r = apply_unlink(c, &rec->unlink, true); break;
	case REPL_REC_RENAME: r = apply_rename(c, &rec->rename); break;
	case REPL_REC_SETATTR: r = apply_setattr(c, &rec->setattr); break;
	case REPL_REC_SETXATTR: r = apply_xattr(c, &rec->xattr, true); break;
	case REPL_REC_REMOVEXATTR: r = apply_xattr(c, &rec->xattr, false); break;
	case REPL_REC_DATA: r = apply_data(c, &rec->data); break;
	case REPL_REC_PUNCH: r = apply_punch(c, &rec->punch); break;
	default:
		r = repl_recv_fail(c, -EPROTO, "not a body record");
		break;
	}
	c->rec = NULL;
	return r;
}
