/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening objects by their current name, for the threads that open many
 * (the sender reads each object of a stream, the receiver writes them).
 *
 * The namespace gives an object's path one component at a time, and the
 * kernel walks it again from the root: for a file three levels down that is
 * three queries and a three-name walk, paid for every open. A thread that
 * asked for it (journal_keep_open()) keeps, until it asks no longer:
 *   - the object it opened last (the sender opens each object for its
 *     stat, its data and its xattrs in a row);
 *   - up to OC_DIRS directories it opened on the way, so an object whose
 *     parent is kept costs one query and one openat() of one name.
 * A kept directory fd follows its inode through renames; one that was
 * removed finds nothing and is dropped; whatever a kept fd leads to is
 * checked against the object's backing inode like any open by path, and
 * anything unexpected falls back to the walk from the root. The fds pin
 * their inodes, so the scope is one stream, never the life of a mount.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_i.h"

#define OC_DIRS 64

struct oc_dir {
	uint64_t ino;           /* 0: free */
	uint64_t used;          /* LRU tick */
	int fd;                 /* O_PATH | O_DIRECTORY */
};

static _Thread_local struct {
	const struct journal *j;        /* whose objects the fds are; NULL: none */
	bool on;
	uint64_t last_ino;
	int last_fd;                    /* -1: none; any open mode of last_ino */
	uint64_t tick;
	struct oc_dir dirs[OC_DIRS];
} oc = { .last_fd = -1 };

static void oc_drop_all(void)
{
	if (oc.last_fd >= 0)
		close(oc.last_fd);
	oc.last_fd = -1;
	for (size_t i = 0; i < OC_DIRS; i++) {
		if (oc.dirs[i].ino)
			close(oc.dirs[i].fd);
		oc.dirs[i].ino = 0;
	}
	oc.j = NULL;
}

void journal_keep_open(struct journal *j, bool on)
{
	oc_drop_all();
	oc.on = on;
	oc.j = on ? j : NULL;
}

static bool oc_active(const struct journal *j)
{
	return oc.on && oc.j == j;
}

/* ---- the last object --------------------------------------------------------- */

int oc_last_open(struct journal *j, uint64_t ino, uint32_t type, int flags, int *ret_fd,
		 struct stat *st)
{
	char path[40];
	int fd;

	if (!oc_active(j) || oc.last_fd < 0 || oc.last_ino != ino)
		return 0;
	if (!ret_fd)
		return fstat(oc.last_fd, st) == 0;
	if (flags == O_PATH || type == S_IFLNK) {
		/* what O_PATH callers do (fstat, xattrs by /proc path) works on any fd */
		fd = fcntl(oc.last_fd, F_DUPFD_CLOEXEC, 0);
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", oc.last_fd);
		fd = open(path, flags | O_CLOEXEC);
	}
	if (fd < 0)
		return 0;   /* the long way */
	*ret_fd = fd;
	return 1;
}

void oc_last_keep(struct journal *j, uint64_t ino, int fd)
{
	if (!oc_active(j))
		return;
	if (oc.last_fd >= 0)
		close(oc.last_fd);
	oc.last_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	oc.last_ino = ino;
}

/* ---- directories -------------------------------------------------------------- */

static int oc_dir_find(uint64_t ino)
{
	for (size_t i = 0; i < OC_DIRS; i++) {
		if (oc.dirs[i].ino == ino) {
			oc.dirs[i].used = ++oc.tick;
			return oc.dirs[i].fd;
		}
	}
	return -1;
}

static void oc_dir_forget(uint64_t ino)
{
	for (size_t i = 0; i < OC_DIRS; i++) {
		if (oc.dirs[i].ino == ino) {
			close(oc.dirs[i].fd);
			oc.dirs[i].ino = 0;
		}
	}
}

/* Keep `fd` (taken over) as directory `ino`'s. */
static void oc_dir_keep(uint64_t ino, int fd)
{
	size_t victim = 0;

	for (size_t i = 0; i < OC_DIRS; i++) {
		if (!oc.dirs[i].ino) {
			victim = i;
			break;
		}
		if (oc.dirs[i].used < oc.dirs[victim].used)
			victim = i;
	}
	if (oc.dirs[victim].ino)
		close(oc.dirs[victim].fd);
	oc.dirs[victim] = (struct oc_dir){ .ino = ino, .used = ++oc.tick, .fd = fd };
}

int oc_open_backing_at(int dfd, const char *name, int flags, uint64_t dev, uint64_t bino,
		       int *ret_fd)
{
	struct stat st;
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != bino) {
		close(fd);
		return -ESTALE;
	}
	*ret_fd = fd;
	return 0;
}

/* What `name` in directory `dfd` is, into *st, if it is backing inode (dev, bino). */
static int stat_backing_at(int dfd, const char *name, uint64_t dev, uint64_t bino,
			   struct stat *st)
{
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0)
		return -errno;
	if ((uint64_t)st->st_dev != dev || (uint64_t)st->st_ino != bino)
		return -ESTALE;
	return 0;
}

/*
 * The cached route: open `ino` by name in its parent, opening (and keeping)
 * the parents that are not kept yet; without `ret_fd`, only stat it. Any
 * failure: the caller walks instead.
 */
static int open_in_parent(struct journal *j, struct jconn *c, uint64_t ino, uint64_t dev,
			  uint64_t bino, int flags, unsigned depth, int *ret_fd, struct stat *st)
{
	char name[NAME_MAX + 1];
	struct objrow prow;
	uint64_t parent = 0;
	bool kept = true;
	size_t len = 0;
	int pfd, r;

	if (depth > 64)
		return -ELOOP;   /* deeper trees: the walk from the root */
	r = changes_name_at(c, ino, UINT64_MAX, &parent, name, &len);
	if (r < 0)
		return r;
	if (len == 0 || memchr(name, '\0', len) || memchr(name, '/', len))
		return -EINVAL;   /* not a name openat() takes: the walk says why */
	if (parent == JOURNAL_ROOT_INO) {
		pfd = j->root_fd;
	} else if ((pfd = oc_dir_find(parent)) < 0) {
		r = sv_obj_row(c, parent, &prow);
		if (r < 0)
			return r;
		if (prow.type != S_IFDIR)
			return -ENOTDIR;
		r = open_in_parent(j, c, parent, prow.dev, prow.bino, O_PATH | O_DIRECTORY, depth + 1,
				   &pfd, NULL);
		if (r < 0)
			return r;
		oc_dir_keep(parent, pfd);
		kept = false;
	}
	r = ret_fd ? oc_open_backing_at(pfd, name, flags, dev, bino, ret_fd) :
		stat_backing_at(pfd, name, dev, bino, st);
	if ((r == -ENOENT || r == -ENOTDIR) && kept)
		oc_dir_forget(parent);   /* removed since: find it anew */
	return r;
}

int oc_open_current(struct journal *j, struct jconn *c, uint64_t ino, uint64_t dev,
		    uint64_t bino, int flags, int *ret_fd, struct stat *st)
{
	char *path = NULL;
	int r;

	if (ino == JOURNAL_ROOT_INO)
		return ret_fd ? oc_open_backing_at(j->root_fd, ".", flags, dev, bino, ret_fd) :
			stat_backing_at(j->root_fd, "", dev, bino, st);
	if (oc_active(j) && open_in_parent(j, c, ino, dev, bino, flags, 0, ret_fd, st) == 0)
		return 0;
	/* paths are relative to the root; no component may be a symlink */
	r = changes_path_at(c, ino, UINT64_MAX, &path);
	if (r < 0)
		return r;
	r = ret_fd ? oc_open_backing_at(j->root_fd, path + 1, flags, dev, bino, ret_fd) :
		stat_backing_at(j->root_fd, path + 1, dev, bino, st);
	free(path);
	return r;
}
