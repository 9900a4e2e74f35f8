/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The receiver's staging directory, REPL_STAGING_NAME in the replica root:
 * where the stream parks objects between their old and new names
 * (JOURNAL_STAGING_INO on the wire). It is a local object (a jino of the
 * replica's own range), created on first use, found again after an
 * interruption, and removed, empty, before the snapshot. Creating and
 * removing it does not change the root's times.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirrorfs/journal.h"
#include "recv_i.h"

/* ---- the staging directory ---------------------------------------------------------- */

/* Keep the root's times across creating/removing the staging directory. */
static int root_times_restore(struct recv *c, const struct stat *st)
{
	struct journal_attr a = {
		.valid = JOURNAL_ATTR_ATIME | JOURNAL_ATTR_MTIME,
		.atime = st->st_atim,
		.mtime = st->st_mtim,
	};

	return journal_setattr(c->j, c->rootfd, -1, JOURNAL_ROOT_INO, &a, NULL);
}

int repl_recv_staging_find(struct recv *c)
{
	struct stat st;
	uint64_t ino;
	int r;

	r = repl_recv_entry_get(c, c->rootfd, REPL_STAGING_NAME, &ino, &st);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot look up '%s'", REPL_STAGING_NAME);
	if (r == 0)
		return 0;
	if (!S_ISDIR(st.st_mode) || ino == 0 || ino < JOURNAL_LOCAL_INO_BASE)
		return repl_recv_fail(c, -EEXIST, "the replica root holds a '%s' that is not "
				 "mirrorfs's staging directory", REPL_STAGING_NAME);
	r = journal_open_ino(c->j, ino, O_PATH | O_DIRECTORY, &c->staging_fd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot open '%s'", REPL_STAGING_NAME);
	c->staging_ino = ino;
	return 1;
}

int repl_recv_staging_get(struct recv *c)
{
	struct journal_cred cred = { .uid = geteuid(), .gid = getegid(), .ino = 0 };
	struct stat rst, st;
	int r;

	if (c->staging_ino)
		return 0;
	if (fstat(c->rootfd, &rst) < 0)
		return repl_recv_fail(c, -errno, "cannot stat the replica root");
	r = journal_mknod(c->j, &cred, c->rootfd, JOURNAL_ROOT_INO, REPL_STAGING_NAME,
			  S_IFDIR | 0700, 0, NULL, &st);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot create '%s'", REPL_STAGING_NAME);
	r = root_times_restore(c, &rst);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot restore the times of the replica root");
	r = journal_open_ino(c->j, (uint64_t)st.st_ino, O_PATH | O_DIRECTORY, &c->staging_fd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot open '%s'", REPL_STAGING_NAME);
	c->staging_ino = (uint64_t)st.st_ino;
	return 0;
}

/* Entries of an O_PATH directory fd other than . and .. (up to 2 counted). */
static int dir_count(int dirfd, int *ret_n)
{
	struct dirent *de;
	DIR *d;
	int n = 0, r = util_opendirat(dirfd, ".", 0, &d);

	if (r < 0)
		return r;
	while (n < 2 && (errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	*ret_n = n;
	return 0;
}

int repl_recv_staging_remove(struct recv *c)
{
	struct stat rst;
	int r, n = 0;

	if (!c->staging_ino)
		return 0;
	r = dir_count(c->staging_fd, &n);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot read '%s'", REPL_STAGING_NAME);
	if (n > 0)
		return repl_recv_fail(c, -ENOTEMPTY, "objects are left in '%s' at the end of the stream",
				 REPL_STAGING_NAME);
	if (fstat(c->rootfd, &rst) < 0)
		return repl_recv_fail(c, -errno, "cannot stat the replica root");
	r = journal_rmdir(c->j, c->rootfd, JOURNAL_ROOT_INO, REPL_STAGING_NAME);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot remove '%s'", REPL_STAGING_NAME);
	close(c->staging_fd);
	c->staging_fd = -1;
	c->staging_ino = 0;
	r = root_times_restore(c, &rst);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot restore the times of the replica root");
	return 0;
}

int repl_recv_root_is_empty(struct recv *c)
{
	struct dirent *de;
	bool empty = true;
	DIR *d;
	int r = util_opendirat(c->rootfd, ".", 0, &d);

	if (r < 0)
		return r;
	while (empty && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, JOURNAL_STATE_DIR) && strcmp(de->d_name, REPL_STAGING_NAME))
			empty = false;
	closedir(d);
	return empty;
}
