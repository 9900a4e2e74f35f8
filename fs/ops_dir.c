/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Directories: opendir, readdir(plus), releasedir, fsyncdir, and statfs.
 * The state directory is never listed, nor is .snap (or a real backing
 * entry of that name, which it shadows). .snap and snapshot directories
 * are served by snapdir.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_i.h"
#include "mirrorfs/log.h"

/* d_ino of an entry the journal does not know (what libfuse's fuse.c uses). */
#define FS_UNKNOWN_INO 0xffffffffULL

/* An open directory; only the kernel's readdir of this handle touches it. */
struct fs_dir {
	DIR *dp;
	off_t offset;           /* position of `entry` (or of the next readdir) */
	struct dirent *entry;   /* read but not yet returned to the kernel */
};

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *n;
	struct fs_dir *d;
	int fd, r;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_opendir(req, ino, fi);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	d = calloc(1, sizeof(*d));
	if (!d) {
		r = -ENOMEM;
		goto out;
	}
	fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == EMFILE && fs_fd_relief(fs))
		fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		r = -errno;
		close(fd);
		goto out;
	}
	fi->fh = (uintptr_t)d;
	fi->keep_cache = 1;     /* every change goes through us */
	fi->cache_readdir = 1;
	d = NULL;
out:
	free(d);
	fs_inode_put(fs, n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_open(req, fi);
}

/* The jino of a directory entry, for d_ino. */
static uint64_t fs_dirent_ino(struct fs *fs, const struct fs_inode *dir,
			      const struct dirent *de)
{
	struct stat st;
	uint64_t jino;

	if (strcmp(de->d_name, ".") == 0 ||
	    (dir->jino == JOURNAL_ROOT_INO && strcmp(de->d_name, "..") == 0))
		return dir->jino;
	memset(&st, 0, sizeof(st));
	st.st_dev = dir->dev;
	st.st_ino = de->d_ino;
	if (journal_ino_find(fs->j, &st, &jino) < 0)
		return FS_UNKNOWN_INO;
	return jino;
}

static void fs_do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	struct fs_inode *n;
	char *buf, *p;
	size_t rem;
	int r;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_readdir(req, ino, size, off, fi, plus);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	buf = malloc(size);
	if (!buf) {
		fs_inode_put(fs, n);
		return (void) fuse_reply_err(req, ENOMEM);
	}
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	p = buf;
	rem = size;
	r = 0;
	for (;;) {
		struct fuse_entry_param e;
		const char *name;
		size_t entsize;
		off_t nextoff;
		bool dots;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				r = errno ? -errno : 0;
				break;
			}
		}
		name = d->entry->d_name;
		nextoff = d->entry->d_off;
		if (fs_is_state_dir(n, name) || fs_is_snapdir(n->jino, name))
			goto next;
		dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;

		if (plus && !dots) {
			r = fs_do_lookup(fs, n, name, &e);
			if (r == -ENOENT) {   /* gone since readdir saw it */
				r = 0;
				goto next;
			}
			if (r < 0)
				break;
			entsize = fuse_add_direntry_plus(req, p, rem, name, &e, nextoff);
			if (entsize > rem) {
				/* Did not fit: the kernel never saw this lookup. */
				fs_inode_forget(fs, e.ino, 1);
				break;
			}
		} else if (plus) {
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = fs_dirent_ino(fs, n, d->entry);
			e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			entsize = fuse_add_direntry_plus(req, p, rem, name, &e, nextoff);
			if (entsize > rem)
				break;
		} else {
			struct stat st;

			memset(&st, 0, sizeof(st));
			st.st_ino = fs_dirent_ino(fs, n, d->entry);
			st.st_mode = (mode_t)d->entry->d_type << 12;
			entsize = fuse_add_direntry(req, p, rem, name, &st, nextoff);
			if (entsize > rem)
				break;
		}
		p += entsize;
		rem -= entsize;
next:
		d->entry = NULL;
		d->offset = nextoff;
	}
	fs_inode_put(fs, n);
	/* An error after some entries: return those; the next call reports it. */
	if (r < 0 && rem == size) {
		free(buf);
		return (void) fuse_reply_err(req, -r);
	}
	fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	fs_do_readdir(req, ino, size, off, fi, false);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	fs_do_readdir(req, ino, size, off, fi, true);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_releasedir(req, ino, fi);
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	int r;

	if (!fs_is_live(fs, ino))   /* nothing to make durable in a snapshot */
		return (void) fuse_reply_err(req, 0);
	r = journal_fsync(fs->j, ino, dirfd(d->dp), datasync != 0);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct statvfs sv;

	/* The same everywhere, .snap and snapshots included. */
	if (fstatvfs(fs->root->fd, &sv) < 0)
		return (void) fuse_reply_err(req, errno);
	fuse_reply_statfs(req, &sv);
}
