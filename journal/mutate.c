/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mutation API: every change to the backing tree goes through one of
 * these functions, which do, in this order, under j->mut_lock (shared):
 *
 *   1. the durable dirty mark of the object whose content changes (for
 *      namespace operations: the directories whose entries change), one
 *      synchronous commit per object per snapshot interval;
 *   2. the copy-on-write hook (cow_i.h);
 *   3. the backing syscall, on the fds the caller gave us (O_PATH fds go
 *      through /proc/self/fd/N where the syscall needs a real file);
 *   4. the record, queued for the writer's next group commit. The caller
 *      does not wait for it: step 1 already made the change recoverable
 *      (after a crash, recovery reconciles every dirty directory with the
 *      backing tree and records every dirty file as wholly changed), so a
 *      reply never waits for sqlite. journal_fsync(), journal_flush() and
 *      snapshot creation wait for everything queued before them.
 *
 * Names and other record payloads are copied before the syscall, so once
 * the syscall has run, recording cannot fail for lack of memory. If a step
 * after the syscall fails (the journal failed), the change is still
 * covered by the dirty mark of step 1 and the next open's recovery.
 *
 * Concurrency: the FUSE kernel module serialises namespace operations on
 * one directory (the directory's i_rwsem), so the victim we look up before
 * unlink/rename is the one the syscall removes.
 *
 * Data writes: journal_write_prepare() takes mut_lock shared and, on
 * success, keeps it until journal_write_done() in the same thread, so a
 * snapshot barrier never falls between a write's copy-on-write and its
 * record. Every successful prepare must be followed by write_done (with
 * written = 0 if the write failed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"

#define PROC_FD_PATH_MAX 32

static void proc_path(char buf[PROC_FD_PATH_MAX], int fd)
{
	snprintf(buf, PROC_FD_PATH_MAX, "/proc/self/fd/%d", fd);
}

static int mut_begin(struct journal *j)
{
	if (j->flags & JOURNAL_OPEN_READONLY)
		return -EROFS;
	pthread_rwlock_rdlock(&j->mut_lock);
	if (atomic_load_explicit(&j->failed, memory_order_relaxed)) {
		pthread_rwlock_unlock(&j->mut_lock);
		return -EIO;
	}
	return 0;
}

static void mut_end(struct journal *j)
{
	pthread_rwlock_unlock(&j->mut_lock);
}

/*
 * The object a data or attribute mutation is about: the live object, or,
 * for a file that was unlinked while open (the kernel still hands us its
 * handle), a transient stand-in. The syscall must still work on such a file
 * and its copy-on-write still applies (a snapshot may see it through its
 * orphan), but it is in no namespace, so nothing is recorded for it.
 */
static int mut_obj(struct journal *j, uint64_t ino, int fd, struct jobj **ret)
{
	struct jobj *o = obj_get(j, ino);
	struct stat st;

	if (o) {
		*ret = o;
		return 0;
	}
	if (fd < 0 || fstat(fd, &st) < 0)
		return -ENOENT;
	o = obj_new(ino, st.st_dev, st.st_ino, st.st_mode);
	if (!o)
		return -ENOMEM;
	o->transient = true;
	atomic_store(&o->dead, true);
	/* no dirty mark: a dead object is not in the tree recovery rebuilds */
	atomic_store(&o->dirty_tag, atomic_load(&j->interval) + 1);
	*ret = o;
	return 0;
}

/* Queue `rec` unless it is about a transient object (then drop it). */
static int mut_record(struct journal *j, struct jobj *o, struct jrec *rec)
{
	if (o->transient) {
		jrec_release(rec);
		return 0;
	}
	return writer_submit(j, rec, NULL);
}

int mut_mark_dirty(struct journal *j, struct jobj *o)
{
	uint64_t tag = atomic_load_explicit(&j->interval, memory_order_relaxed) + 1;
	struct jrec rec;
	int r;

	if (atomic_load_explicit(&o->dirty_tag, memory_order_acquire) == tag)
		return 0;
	rec = (struct jrec){ .op = JREC_DIRTY, .obj = obj_ref(o) };
	r = writer_submit_wait(j, &rec);
	if (r == 0)
		atomic_store_explicit(&o->dirty_tag, tag, memory_order_release);
	return r;
}

static int alloc_ino(struct journal *j, uint64_t *ret)
{
	uint64_t ino = atomic_fetch_add(&j->next_ino, 1);

	if (ino > JOURNAL_INO_MAX)
		return -ENOSPC;
	*ret = ino;
	return 0;
}

/* Directory object `dir` (referenced) for a namespace change. */
static int get_dir(struct journal *j, uint64_t dir, struct jobj **ret)
{
	struct jobj *d = obj_get(j, dir);

	if (!d)
		return -ENOENT;
	if (!S_ISDIR(d->type)) {
		obj_put(d);
		return -ENOTDIR;
	}
	*ret = d;
	return 0;
}

static int dup_name(const char *name, char **ret)
{
	int r = util_check_name(name);

	if (r < 0)
		return r;
	*ret = strdup(name);
	return *ret ? 0 : -ENOMEM;
}

/* ---- ownership of created objects ---------------------------------------- */

struct credsave {
	bool active;
	int old_fsgid;
};

/*
 * The kernel picks the group of a new object from the thread's fsgid, or
 * from a setgid directory: so set the fsgid (per thread) for the create,
 * and the owner afterwards (changing fsuid would drop our capabilities).
 */
static void cred_push(const struct journal_cred *c, struct credsave *s)
{
	s->active = false;
	if (!c || c->gid == getegid())
		return;
	s->old_fsgid = (int)syscall(SYS_setfsgid, c->gid);
	s->active = true;
}

static void cred_pop(struct credsave *s)
{
	if (s->active)
		syscall(SYS_setfsgid, s->old_fsgid);
}

/*
 * Give the new entry `name` (fd >= 0: that fd) to cred->uid, keeping the
 * suid/sgid bits the chown clears: the mode the entry was made with (the
 * umask applied), not the one asked for.
 */
static int own_new(const struct journal_cred *c, int dirfd, const char *name, int fd,
		   mode_t mode)
{
	mode_t keep = 0;
	struct stat st;
	int r;

	if (!c || c->uid == geteuid())
		return 0;
	if (!S_ISLNK(mode) && (mode & (S_ISUID | S_ISGID))) {
		r = fd >= 0 ? fstat(fd, &st) : fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
		if (r < 0)
			return -errno;
		keep = st.st_mode & 07777;
	}
	if (fd >= 0)
		r = fchown(fd, c->uid, (gid_t)-1);
	else
		r = fchownat(dirfd, name, c->uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return -errno;
	if (keep & (S_ISUID | S_ISGID)) {
		if (fd >= 0)
			r = fchmod(fd, keep);
		else
			r = fchmodat(dirfd, name, keep, 0);
		if (r < 0)
			return -errno;
	}
	return 0;
}

/*
 * The jino a replica's receiver asks for (cred->ino): free, never used.
 * Later allocations stay above it. A jino above every one the journal has
 * seen needs no look-up (the common case: the source hands them out in
 * ascending order); otherwise the rows are asked, after the queued records
 * have landed.
 */
static int claim_ino(struct journal *j, uint64_t ino)
{
	uint64_t cur;
	struct jobj *o;
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	if (ino <= JOURNAL_ROOT_INO || ino > JOURNAL_INO_MAX)
		return -EINVAL;
	cur = atomic_load(&j->source_ino_max);
	while (ino < JOURNAL_LOCAL_INO_BASE && ino > cur)
		if (atomic_compare_exchange_weak(&j->source_ino_max, &cur, ino))
			goto fresh;
	o = obj_get(j, ino);
	if (o) {
		obj_put(o);
		return -EEXIST;
	}
	r = journal_flush(j);
	if (r < 0)
		return r;
	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = db_stmt(c, ST_OBJ_GET, &s);
	if (r == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		rc = sqlite3_step(s);
		r = rc == SQLITE_ROW ? -ESTALE : rc == SQLITE_DONE ? 0 : journal_err(rc);
		sqlite3_reset(s);
	}
	db_conn_put(j, c);
	if (r < 0)
		return r;
fresh:
	cur = atomic_load(&j->next_ino);
	while (cur <= ino && !atomic_compare_exchange_weak(&j->next_ino, &cur, ino + 1))
		;
	return 0;
}

/* Check (before the syscall) that a requested jino can be used. */
static int check_requested_ino(struct journal *j, const struct journal_cred *cred)
{
	return cred && cred->ino ? claim_ino(j, cred->ino) : 0;
}

/* Publish a new object for `st`; *ret referenced. */
static int new_object(struct journal *j, const struct journal_cred *cred, const struct stat *st,
		      struct jobj **ret)
{
	struct jobj *o;
	uint64_t ino;
	int r;

	if (cred && cred->ino)
		ino = cred->ino;  /* checked by check_requested_ino(); obj_insert() is the arbiter */
	else if ((r = alloc_ino(j, &ino)) < 0)
		return r;
	o = obj_new(ino, st->st_dev, st->st_ino, st->st_mode);
	if (!o)
		return -ENOMEM;
	o->size = S_ISDIR(st->st_mode) ? 0 : st->st_size;
	r = obj_insert(j, o, false, NULL);
	if (r < 0) {
		obj_put(o);
		return r;
	}
	*ret = o;
	return 0;
}

/* Record the creation of `o` as (dir, name) and wait; takes `name`, `aux`. */
static int record_new(struct journal *j, enum journal_op op, struct jobj *o, uint64_t dir,
		      char *name, char *aux, const struct stat *st)
{
	uint64_t tag = atomic_load(&j->interval) + 1;
	struct jrec rec = {
		.op = (uint16_t)op, .flags = JREC_DIRTY_NEW, .mode = st->st_mode,
		.obj = obj_ref(o), .parent = dir, .name = name, .aux = aux, .size = o->size,
	};
	int r = writer_submit(j, &rec, NULL);

	if (r == 0)
		atomic_store(&o->dirty_tag, tag);
	return r;
}

static void stat_out(struct stat *ret_st, const struct stat *st, uint64_t ino)
{
	if (ret_st) {
		*ret_st = *st;
		ret_st->st_ino = (ino_t)ino;
	}
}

/*
 * Steps 1 and 2 for a new entry in directory `dir` (open as `dirfd`): room
 * for it (space.c), the directory's durable dirty mark, and its attributes
 * preserved for snapshots (its mtime changes). *ret_d is referenced.
 */
static int mut_new_entry(struct journal *j, uint64_t dir, int dirfd, struct jobj **ret_d)
{
	int r;

	r = space_check(j, 0);
	if (r < 0)
		return r;
	r = get_dir(j, dir, ret_d);
	if (r < 0)
		return r;
	r = mut_mark_dirty(j, *ret_d);
	if (r == 0)
		r = cow_before_attr(j, *ret_d, dirfd);
	return r;
}

int journal_mknod(struct journal *j, const struct journal_cred *cred,
		  int dirfd, uint64_t dir, const char *name, mode_t mode,
		  dev_t rdev, const char *link_target, struct stat *ret_st)
{
	char *namecp = NULL, *aux = NULL;
	struct jobj *d = NULL, *o = NULL;
	enum journal_op op;
	struct credsave cs;
	struct stat st;
	int r, k;

	switch (mode & S_IFMT) {
	case S_IFDIR: op = JOP_MKDIR; break;
	case S_IFLNK: op = JOP_SYMLINK; break;
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		op = JOP_MKNOD;
		break;
	default:
		return -EINVAL;
	}
	if (op == JOP_SYMLINK) {
		if (!link_target || !*link_target)
			return -EINVAL;
		if (strlen(link_target) >= PATH_MAX)
			return -ENAMETOOLONG;
		aux = strdup(link_target);
		if (!aux)
			return -ENOMEM;
	}
	if (S_ISREG(mode))
		op = JOP_CREATE;
	r = dup_name(name, &namecp);
	if (r < 0)
		goto out_free;
	r = mut_begin(j);
	if (r < 0)
		goto out_free;
	r = mut_new_entry(j, dir, dirfd, &d);
	if (r == 0)
		r = check_requested_ino(j, cred);
	if (r < 0)
		goto out;

	cred_push(cred, &cs);
	if (op == JOP_MKDIR)
		k = mkdirat(dirfd, name, mode & 07777);
	else if (op == JOP_SYMLINK)
		k = symlinkat(link_target, dirfd, name);
	else
		k = mknodat(dirfd, name, mode, rdev);
	r = k < 0 ? -errno : 0;
	cred_pop(&cs);
	if (r < 0)
		goto out;

	r = own_new(cred, dirfd, name, -1, mode);
	if (r == 0 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r == 0)
		r = new_object(j, cred, &st, &o);
	if (r < 0) {
		/* nothing recorded yet: undo the syscall */
		unlinkat(dirfd, name, op == JOP_MKDIR ? AT_REMOVEDIR : 0);
		goto out;
	}
	r = record_new(j, op, o, dir, namecp, aux, &st);
	namecp = aux = NULL;
	if (r == 0)
		stat_out(ret_st, &st, o->ino);
out:
	obj_put(o);
	obj_put(d);
	mut_end(j);
out_free:
	free(namecp);
	free(aux);
	return r;
}

/* Truncate `o` (open as `fd`, access mode `accmode`) to 0 and record it; waits. */
static int truncate_existing(struct journal *j, struct jobj *o, int fd, int accmode)
{
	char pp[PROC_FD_PATH_MAX];
	struct jrec rec;
	int r;

	r = mut_mark_dirty(j, o);
	if (r < 0)
		return r;
	r = cow_before_truncate(j, o, fd, 0);
	if (r < 0)
		return r;
	/*
	 * An open(O_TRUNC) of its own, not ftruncate(): the kernel then
	 * updates mtime and ctime even when the file was empty, exactly as
	 * open(O_TRUNC) does on a local filesystem.
	 */
	(void)accmode;
	proc_path(pp, fd);
	r = open(pp, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (r < 0)
		return -errno;
	close(r);
	rec = (struct jrec){ .op = JOP_TRUNCATE, .obj = obj_ref(o), .off = 0, .len = 0, .size = 0 };
	return writer_submit(j, &rec, NULL);
}

/* The object behind an existing entry; adopted if the journal lacks it. */
static int get_or_adopt(struct journal *j, struct jobj *d, int dirfd, const char *name,
			const struct stat *st, struct jobj **ret)
{
	uint64_t ino, ticket = 0;
	struct jobj *o;
	int r;

	o = obj_get_bino(j, st->st_dev, st->st_ino);
	if (o) {
		*ret = o;
		return 0;
	}
	r = recover_adopt_tree(j, d, dirfd, name, st, &ino, &ticket);
	if (r == 0)
		r = writer_wait(j, ticket);
	if (r < 0)
		return r;
	o = obj_get(j, ino);
	if (!o)
		return -ENOENT;
	*ret = o;
	return 0;
}

int journal_create(struct journal *j, const struct journal_cred *cred,
		   int dirfd, uint64_t dir, const char *name, int flags,
		   mode_t mode, int *ret_fd, struct stat *ret_st)
{
	struct jobj *d = NULL, *o = NULL;
	char *namecp = NULL;
	bool created = false;
	struct credsave cs;
	struct stat st;
	int fd = -1, r;

	r = dup_name(name, &namecp);
	if (r < 0)
		return r;
	r = mut_begin(j);
	if (r < 0)
		goto out_free;
	r = mut_new_entry(j, dir, dirfd, &d);
	if (r == 0)
		r = check_requested_ino(j, cred);
	if (r < 0)
		goto out;

	for (;;) {
		cred_push(cred, &cs);
		fd = openat(dirfd, name, (flags & ~(O_TRUNC | O_CREAT | O_EXCL)) | O_CREAT | O_EXCL |
			    O_CLOEXEC, (mode & 07777));
		r = fd < 0 ? -errno : 0;
		cred_pop(&cs);
		if (fd >= 0) {
			created = true;
			break;
		}
		if (r != -EEXIST || (flags & O_EXCL))
			goto out;
		fd = openat(dirfd, name, (flags & ~(O_TRUNC | O_CREAT | O_EXCL)) | O_NOFOLLOW |
			    O_CLOEXEC);
		if (fd >= 0)
			break;
		r = -errno;
		if (r != -ENOENT)
			goto out;
		/* unlinked between the two opens: try to create again */
	}

	if (created) {
		r = own_new(cred, dirfd, name, fd, S_IFREG | mode);
		if (r == 0 && fstat(fd, &st) < 0)
			r = -errno;
		if (r == 0)
			r = new_object(j, cred, &st, &o);
		if (r < 0) {
			unlinkat(dirfd, name, 0);
			goto out;
		}
		r = record_new(j, JOP_CREATE, o, dir, namecp, NULL, &st);
		namecp = NULL;
		if (r < 0)
			goto out;
	} else {
		if (fstat(fd, &st) < 0) {
			r = -errno;
			goto out;
		}
		r = get_or_adopt(j, d, dirfd, name, &st, &o);
		if (r < 0)
			goto out;
		if ((flags & O_TRUNC) && S_ISREG(st.st_mode)) {
			r = truncate_existing(j, o, fd, flags & O_ACCMODE);
			if (r == 0 && fstat(fd, &st) < 0)
				r = -errno;
			if (r < 0)
				goto out;
		}
	}
	stat_out(ret_st, &st, o->ino);
	*ret_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	obj_put(o);
	obj_put(d);
	mut_end(j);
out_free:
	free(namecp);
	return r;
}

int journal_open_fd(struct journal *j, int fd, uint64_t ino, int flags, int *ret_fd)
{
	char pp[PROC_FD_PATH_MAX];
	struct jobj *o = NULL;
	struct stat st;
	int nfd, r;

	proc_path(pp, fd);
	nfd = open(pp, (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW)) | O_CLOEXEC);
	if (nfd < 0)
		return -errno;
	if (!(flags & O_TRUNC)) {
		*ret_fd = nfd;
		return 0;
	}
	if (fstat(nfd, &st) < 0) {
		r = -errno;
		close(nfd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		*ret_fd = nfd;
		return 0;
	}
	r = mut_begin(j);
	if (r < 0) {
		close(nfd);
		return r;
	}
	o = obj_get(j, ino);
	r = o ? truncate_existing(j, o, nfd, flags & O_ACCMODE) : -ENOENT;
	obj_put(o);
	mut_end(j);
	if (r < 0) {
		close(nfd);
		return r;
	}
	*ret_fd = nfd;
	return 0;
}

int journal_link(struct journal *j, int fd, uint64_t ino, int newdirfd,
		 uint64_t newdir, const char *newname, struct stat *ret_st)
{
	char pp[PROC_FD_PATH_MAX];
	struct jobj *d = NULL, *o = NULL;
	char *namecp = NULL;
	struct jrec rec;
	struct stat st;
	int r;

	r = dup_name(newname, &namecp);
	if (r < 0)
		return r;
	r = mut_begin(j);
	if (r < 0)
		goto out_free;
	r = space_check(j, 0);
	if (r < 0)
		goto out;
	r = get_dir(j, newdir, &d);
	if (r < 0)
		goto out;
	r = mut_obj(j, ino, fd, &o);
	if (r < 0) {
		o = NULL;
		goto out;
	}
	r = mut_mark_dirty(j, d);
	if (r == 0)
		r = cow_before_attr(j, d, newdirfd);
	if (r == 0)
		r = cow_before_attr(j, o, fd);
	if (r < 0)
		goto out;
	proc_path(pp, fd);
	if (linkat(AT_FDCWD, pp, newdirfd, newname, AT_SYMLINK_FOLLOW) < 0) {
		r = -errno;
		goto out;
	}
	rec = (struct jrec){ .op = JOP_LINK, .obj = obj_ref(o), .new_parent = newdir,
			     .new_name = namecp };
	namecp = NULL;
	r = writer_submit(j, &rec, NULL);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0)
		stat_out(ret_st, &st, o->ino);
out:
	obj_put(o);
	obj_put(d);
	mut_end(j);
out_free:
	free(namecp);
	return r;
}

/* The entry `name` of `dirfd` as an O_PATH fd, its stat and its object. */
static int open_victim(struct journal *j, struct jobj *d, int dirfd, const char *name,
		       int *ret_fd, struct stat *ret_st, struct jobj **ret_o)
{
	int fd, r;

	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret_st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = get_or_adopt(j, d, dirfd, name, ret_st, ret_o);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int remove_entry(struct journal *j, int dirfd, uint64_t dir, const char *name, bool rmdir)
{
	struct jobj *d = NULL, *v = NULL;
	char *namecp = NULL;
	struct stat st;
	struct jrec rec;
	int vfd = -1, orphaned = 0, r;

	r = dup_name(name, &namecp);
	if (r < 0)
		return r;
	r = mut_begin(j);
	if (r < 0)
		goto out_free;
	r = get_dir(j, dir, &d);
	if (r < 0)
		goto out;
	r = mut_mark_dirty(j, d);
	if (r < 0)
		goto out;
	r = open_victim(j, d, dirfd, name, &vfd, &st, &v);
	if (r < 0)
		goto out;
	r = cow_before_attr(j, d, dirfd);
	if (r == 0)
		r = cow_before_unlink(j, v, dirfd, name, st.st_nlink);
	if (r < 0)
		goto out;
	orphaned = r;   /* 1: its orphan link now counts in st_nlink */
	if (unlinkat(dirfd, name, rmdir ? AT_REMOVEDIR : 0) < 0) {
		r = -errno;
		goto out;
	}
	rec = (struct jrec){ .op = rmdir ? JOP_RMDIR : JOP_UNLINK, .obj = obj_ref(v),
			     .parent = dir, .name = namecp };
	namecp = NULL;
	if (rmdir)
		rec.flags |= JREC_DIES;
	else if (fstat(vfd, &st) < 0)
		rec.flags |= JREC_DIES_IF_ORPHAN;
	else if (st.st_nlink == (nlink_t)orphaned)
		rec.flags |= JREC_DIES;
	r = writer_submit(j, &rec, NULL);
out:
	if (vfd >= 0)
		close(vfd);
	obj_put(v);
	obj_put(d);
	mut_end(j);
out_free:
	free(namecp);
	return r;
}

int journal_unlink(struct journal *j, int dirfd, uint64_t dir, const char *name)
{
	return remove_entry(j, dirfd, dir, name, false);
}

int journal_rmdir(struct journal *j, int dirfd, uint64_t dir, const char *name)
{
	return remove_entry(j, dirfd, dir, name, true);
}

int journal_rename(struct journal *j, int olddirfd, uint64_t olddir,
		   const char *oldname, int newdirfd, uint64_t newdir,
		   const char *newname, unsigned flags)
{
	struct jobj *od = NULL, *nd = NULL, *s = NULL, *v = NULL;
	char *oldcp = NULL, *newcp = NULL;
	struct stat sst, vst;
	int sfd = -1, vfd = -1, orphaned = 0, r;
	struct jrec rec;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	r = dup_name(oldname, &oldcp);
	if (r == 0)
		r = dup_name(newname, &newcp);
	if (r < 0)
		goto out_free;
	r = mut_begin(j);
	if (r < 0)
		goto out_free;
	r = get_dir(j, olddir, &od);
	if (r == 0)
		r = get_dir(j, newdir, &nd);
	if (r < 0)
		goto out;
	r = mut_mark_dirty(j, od);
	if (r == 0)
		r = mut_mark_dirty(j, nd);
	if (r < 0)
		goto out;
	r = open_victim(j, od, olddirfd, oldname, &sfd, &sst, &s);
	if (r < 0)
		goto out;
	if (!(flags & RENAME_NOREPLACE)) {
		r = open_victim(j, nd, newdirfd, newname, &vfd, &vst, &v);
		if (r == -ENOENT && !(flags & RENAME_EXCHANGE))
			r = 0;
		if (r < 0)
			goto out;
	}
	if (v == s && !(flags & RENAME_EXCHANGE)) {
		/* two links of one file: rename(2) does nothing */
		obj_put(v);
		v = NULL;
		r = renameat2(olddirfd, oldname, newdirfd, newname, flags) < 0 ? -errno : 0;
		goto out;
	}
	r = cow_before_attr(j, od, olddirfd);
	if (r == 0 && nd != od)
		r = cow_before_attr(j, nd, newdirfd);
	if (r == 0 && v && !(flags & RENAME_EXCHANGE))
		r = cow_before_unlink(j, v, newdirfd, newname, vst.st_nlink);
	if (r < 0)
		goto out;
	orphaned = r;   /* 1: the victim's orphan link now counts in its st_nlink */
	if (renameat2(olddirfd, oldname, newdirfd, newname, flags) < 0) {
		r = -errno;
		goto out;
	}
	rec = (struct jrec){ .op = (flags & RENAME_EXCHANGE) ? JOP_EXCHANGE : JOP_RENAME,
			     .obj = obj_ref(s), .obj2 = obj_ref(v), .parent = olddir,
			     .name = oldcp, .new_parent = newdir, .new_name = newcp };
	oldcp = newcp = NULL;
	if (v && !(flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(vst.st_mode))
			rec.flags |= JREC_DIES2;
		else if (fstat(vfd, &vst) < 0)
			rec.flags |= JREC_DIES_IF_ORPHAN;
		else if (vst.st_nlink == (nlink_t)orphaned)
			rec.flags |= JREC_DIES2;
	}
	r = writer_submit(j, &rec, NULL);
out:
	if (sfd >= 0)
		close(sfd);
	if (vfd >= 0)
		close(vfd);
	obj_put(s);
	obj_put(v);
	obj_put(od);
	obj_put(nd);
	mut_end(j);
out_free:
	free(oldcp);
	free(newcp);
	return r;
}

int journal_setattr(struct journal *j, int fd, int wfd, uint64_t ino,
		    const struct journal_attr *attr, struct stat *ret_st)
{
	char pp[PROC_FD_PATH_MAX];
	struct jobj *o = NULL;
	unsigned done = 0;
	struct jrec rec;
	struct stat st;
	int r, k;

	r = mut_begin(j);
	if (r < 0)
		return r;
	r = mut_obj(j, ino, fd, &o);
	if (r < 0) {
		o = NULL;
		goto out;
	}
	r = mut_mark_dirty(j, o);
	if (r == 0)
		r = cow_before_attr(j, o, fd);
	if (r == 0 && (attr->valid & JOURNAL_ATTR_SIZE)) {
		if (attr->size < 0)
			r = -EINVAL;
		else
			r = cow_before_truncate(j, o, wfd >= 0 ? wfd : fd, attr->size);
	}
	if (r < 0)
		goto out;
	proc_path(pp, fd);

	if ((attr->valid & JOURNAL_ATTR_MODE) && !S_ISLNK(o->type)) {
		if (fchmodat(AT_FDCWD, pp, attr->mode & 07777, 0) < 0) {
			r = -errno;
			goto record;
		}
		done |= JOURNAL_ATTR_MODE;
	}
	if (attr->valid & (JOURNAL_ATTR_UID | JOURNAL_ATTR_GID)) {
		uid_t uid = (attr->valid & JOURNAL_ATTR_UID) ? attr->uid : (uid_t)-1;
		gid_t gid = (attr->valid & JOURNAL_ATTR_GID) ? attr->gid : (gid_t)-1;
		if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			goto record;
		}
		done |= attr->valid & (JOURNAL_ATTR_UID | JOURNAL_ATTR_GID);
	}
	if (attr->valid & JOURNAL_ATTR_SIZE) {
		k = wfd >= 0 ? ftruncate(wfd, attr->size) : truncate(pp, attr->size);
		if (k < 0) {
			r = -errno;
			goto record;
		}
		done |= JOURNAL_ATTR_SIZE;
	}
	if (attr->valid & (JOURNAL_ATTR_ATIME | JOURNAL_ATTR_MTIME)) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT },
		};
		if (attr->valid & JOURNAL_ATTR_ATIME)
			ts[0] = attr->atime;
		if (attr->valid & JOURNAL_ATTR_MTIME)
			ts[1] = attr->mtime;
		/*
		 * The fd itself (O_PATH too, symlinks included). A kernel whose
		 * utimensat() takes no AT_EMPTY_PATH says EINVAL: then the magic
		 * link, which resolves to the same object.
		 */
		k = utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (k < 0 && errno == EINVAL)
			k = utimensat(AT_FDCWD, pp, ts, 0);
		if (k < 0) {
			r = -errno;
			goto record;
		}
		done |= attr->valid & (JOURNAL_ATTR_ATIME | JOURNAL_ATTR_MTIME);
	}
	done |= attr->valid & JOURNAL_ATTR_CTIME;

record:
	/* record whatever was changed, even if a later step failed */
	if (done & JOURNAL_ATTR_SIZE) {
		rec = (struct jrec){ .op = JOP_TRUNCATE, .obj = obj_ref(o), .off = 0,
				     .len = attr->size, .size = attr->size };
		k = mut_record(j, o, &rec);
		if (k < 0 && r == 0)
			r = k;
	}
	if (done) {
		rec = (struct jrec){ .op = JOP_SETATTR, .obj = obj_ref(o), .mode = done };
		k = mut_record(j, o, &rec);
		if (k < 0 && r == 0)
			r = k;
	}
	if (r == 0 && ret_st) {
		if (fstat(fd, &st) < 0)
			r = -errno;
		else
			stat_out(ret_st, &st, o->ino);
	}
out:
	obj_put(o);
	mut_end(j);
	return r;
}

/* ---- data ---------------------------------------------------------------- */

int journal_write_prepare(struct journal *j, uint64_t ino, int fd, off_t off, size_t len)
{
	struct jobj *o;
	int r;

	r = mut_begin(j);
	if (r < 0)
		return r;
	r = mut_obj(j, ino, fd, &o);
	if (r < 0) {
		mut_end(j);
		return r;
	}
	r = space_check(j, len);
	if (r == 0)
		r = mut_mark_dirty(j, o);
	if (r == 0)
		r = cow_before_write(j, o, fd, off, (off_t)len);
	obj_put(o);
	if (r < 0)
		mut_end(j);
	return r;
}

void journal_write_done(struct journal *j, uint64_t ino, int fd, off_t off, size_t written)
{
	struct jobj *o;

	if (written > 0) {
		o = obj_get(j, ino);
		if (o) {
			writer_submit_write(j, o, off, (int64_t)written);
			obj_put(o);
		}
	}
	mut_end(j);
}

ssize_t journal_pwrite(struct journal *j, uint64_t ino, int fd, const void *buf,
		       size_t len, off_t off)
{
	ssize_t n;
	int r;

	r = journal_write_prepare(j, ino, fd, off, len);
	if (r < 0)
		return r;
	n = pwrite(fd, buf, len, off);
	r = n < 0 ? -errno : 0;
	journal_write_done(j, ino, fd, off, n > 0 ? (size_t)n : 0);
	return n < 0 ? r : n;
}

int journal_fallocate(struct journal *j, uint64_t ino, int fd, int mode, off_t off, off_t len)
{
	struct jobj *o;
	struct jrec rec;
	struct stat st;
	int r;

	r = mut_begin(j);
	if (r < 0)
		return r;
	r = mut_obj(j, ino, fd, &o);
	if (r < 0) {
		o = NULL;
		goto out;
	}
	r = (mode & FALLOC_FL_PUNCH_HOLE) ? 0 : space_check(j, (uint64_t)len);
	if (r == 0)
		r = mut_mark_dirty(j, o);
	if (r == 0)
		r = cow_before_fallocate(j, o, fd, mode, off, len);
	if (r < 0)
		goto out;
	if (fallocate(fd, mode, off, len) < 0) {
		r = -errno;
		goto out;
	}
	rec = (struct jrec){ .op = (mode & FALLOC_FL_PUNCH_HOLE) ? JOP_PUNCH : JOP_FALLOCATE,
			     .mode = (uint32_t)mode, .obj = obj_ref(o), .off = off, .len = len };
	pthread_mutex_lock(&j->q.lock);
	rec.size = o->size;
	pthread_mutex_unlock(&j->q.lock);
	if (fstat(fd, &st) == 0)
		rec.size = st.st_size;
	r = mut_record(j, o, &rec);
out:
	obj_put(o);
	mut_end(j);
	return r;
}

ssize_t journal_copy_file_range(struct journal *j, int fd_in, off_t off_in,
				uint64_t ino_out, int fd_out, off_t off_out,
				size_t len, unsigned flags)
{
	loff_t in = off_in, out = off_out;
	struct jobj *o;
	size_t done = 0;
	ssize_t n = 0;
	int r;

	r = mut_begin(j);
	if (r < 0)
		return r;
	if (mut_obj(j, ino_out, fd_out, &o) < 0)
		o = NULL;
	r = space_check(j, len);
	if (r < 0)
		goto out;
	if (o) {
		r = mut_mark_dirty(j, o);
		if (r == 0)
			r = cow_before_write(j, o, fd_out, off_out, (off_t)len);
		if (r < 0)
			goto out;
	}
	while (done < len) {
		n = copy_file_range(fd_in, &in, fd_out, &out, len - done, flags);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (n < 0 && done == 0)
		r = -errno;
	if (done > 0 && o && !o->transient)
		writer_submit_write(j, o, off_out, (int64_t)done);
out:
	obj_put(o);
	mut_end(j);
	return r < 0 ? r : (ssize_t)done;
}

/* ---- xattrs -------------------------------------------------------------- */

static int xattr_change(struct journal *j, int fd, uint64_t ino, const char *name,
			const void *value, size_t size, int flags, bool remove)
{
	char pp[PROC_FD_PATH_MAX];
	struct jobj *o = NULL;
	char *namecp;
	struct jrec rec;
	int r;

	if (!name || !*name)
		return -EINVAL;
	namecp = strdup(name);
	if (!namecp)
		return -ENOMEM;
	r = mut_begin(j);
	if (r < 0)
		goto out_free;
	r = mut_obj(j, ino, fd, &o);
	if (r < 0) {
		o = NULL;
		goto out;
	}
	r = remove ? 0 : space_check(j, size);
	if (r == 0)
		r = mut_mark_dirty(j, o);
	if (r == 0)
		r = cow_before_attr(j, o, fd);
	if (r < 0)
		goto out;
	proc_path(pp, fd);
	if (remove)
		r = removexattr(pp, name);
	else
		r = setxattr(pp, name, value, size, flags);
	if (r < 0) {
		r = -errno;
		goto out;
	}
	rec = (struct jrec){ .op = remove ? JOP_REMOVEXATTR : JOP_SETXATTR, .obj = obj_ref(o),
			     .aux = namecp };
	namecp = NULL;
	r = mut_record(j, o, &rec);
out:
	obj_put(o);
	mut_end(j);
out_free:
	free(namecp);
	return r;
}

int journal_setxattr(struct journal *j, int fd, uint64_t ino, const char *name,
		     const void *value, size_t size, int flags)
{
	return xattr_change(j, fd, ino, name, value, size, flags, false);
}

int journal_removexattr(struct journal *j, int fd, uint64_t ino, const char *name)
{
	return xattr_change(j, fd, ino, name, NULL, 0, 0, true);
}

/* ---- durability and identity --------------------------------------------- */

int journal_fsync(struct journal *j, uint64_t ino, int fd, bool datasync)
{
	struct jrec rec = { .op = JREC_SYNC };

	if (fd >= 0 && !(j->flags & JOURNAL_OPEN_READONLY)) {
		/*
		 * The old data snapshots read, and the rows that say where it
		 * is, must not be lost while the new data is kept: the copies
		 * first, then their rows (a commit with synchronous=FULL syncs
		 * the WAL, and the rows with it), then the file.
		 */
		struct jobj *o = obj_get(j, ino);
		int r = o ? cow_sync(j, o) : 0;

		obj_put(o);
		if (r > 0) {
			struct jrec rows = { .op = JREC_SYNC };

			r = writer_submit_wait(j, &rows);
		}
		if (r < 0)
			return r;
	}
	if (fd >= 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	if (j->flags & JOURNAL_OPEN_READONLY)
		return 0;
	/* a SYNC record commits its batch (and every one before) with synchronous=FULL */
	return writer_submit_wait(j, &rec);
}

int journal_ino_find(struct journal *j, const struct stat *backing_st, uint64_t *ret_ino)
{
	struct jobj *o = obj_get_bino(j, backing_st->st_dev, backing_st->st_ino);

	if (!o)
		return -ENOENT;
	*ret_ino = o->ino;
	obj_put(o);
	return 0;
}

int journal_adopt(struct journal *j, uint64_t dir, const char *name,
		  const struct stat *st, uint64_t *ret_ino)
{
	struct jobj *d = NULL, *o;
	uint64_t ino = 0, ticket = 0;
	int dfd = -1, r;

	r = util_check_name(name);
	if (r < 0)
		return r;
	r = mut_begin(j);
	if (r < 0)
		return r;
	o = obj_get_bino(j, st->st_dev, st->st_ino);
	if (o) {
		/* already known (another link, or a concurrent adopt) */
		*ret_ino = o->ino;
		obj_put(o);
		goto out;
	}
	r = get_dir(j, dir, &d);
	if (r < 0)
		goto out;
	/* symlink targets and a directory's subtree are read through the parent */
	(void)open_obj_dir(j, d, &dfd);
	r = recover_adopt_tree(j, d, dfd, name, st, &ino, &ticket);
	if (r == 0)
		r = writer_wait(j, ticket);
	if (r == 0)
		*ret_ino = ino;
out:
	if (dfd >= 0)
		close(dfd);
	obj_put(d);
	mut_end(j);
	return r;
}
