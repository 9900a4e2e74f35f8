/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Names and attributes: lookup, forget, getattr, setattr, readlink and the
 * namespace mutations (mknod, mkdir, symlink, link, unlink, rmdir, rename).
 * Every mutation goes through the journal's mutation API.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_i.h"
#include "mirrorfs/log.h"

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *p;
	struct fuse_entry_param e;
	int r;

	if (!fs_is_live(fs, parent) || fs_is_snapdir(parent, name))
		return fs_snap_op_lookup(req, parent, name);
	r = fs_inode_get(fs, parent, &p);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	r = fs_do_lookup(fs, p, name, &e);
	if (r == -ENOENT && !fs_is_state_dir(p, name)) {
		/* Negative entry: every create goes through us, so it may be cached. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FS_TIMEOUT;
		r = 0;
	}
	fs_inode_put(fs, p);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fuse_req_userdata(req);

	fs_inode_forget(fs, ino, nlookup);
	fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fuse_req_userdata(req);

	for (size_t i = 0; i < count; i++)
		fs_inode_forget(fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *n;
	struct stat st;
	int r;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_getattr(req, ino);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	r = fs_inode_stat(n, &st);
	if (r >= 0)
		fs_stat_hide_state_links(fs, n, &st);
	fs_inode_put(fs, n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_attr(req, &st, FS_TIMEOUT);
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct journal_attr a = { 0 };
	struct fs_inode *n;
	struct stat st;
	int r;

	if (fs->read_only || !fs_is_live(fs, ino))   /* snapshots are read-only */
		return (void) fuse_reply_err(req, EROFS);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);

	if (to_set & FUSE_SET_ATTR_MODE) {
		a.valid |= JOURNAL_ATTR_MODE;
		a.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		a.valid |= JOURNAL_ATTR_UID;
		a.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		a.valid |= JOURNAL_ATTR_GID;
		a.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		a.valid |= JOURNAL_ATTR_SIZE;
		a.size = attr->st_size;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		a.valid |= JOURNAL_ATTR_ATIME;
		a.atime = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			a.atime.tv_nsec = UTIME_NOW;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		a.valid |= JOURNAL_ATTR_MTIME;
		a.mtime = attr->st_mtim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			a.mtime.tv_nsec = UTIME_NOW;
	}
	if (to_set & FUSE_SET_ATTR_CTIME)
		a.valid |= JOURNAL_ATTR_CTIME;
	/*
	 * Nothing to set is chown(-1, -1), which changes the ctime alone (the
	 * kernel sends FATTR_CTIME only with the writeback cache): do the
	 * same chown to the backing object.
	 */
	if (!(a.valid & ~JOURNAL_ATTR_CTIME)) {
		a.valid |= JOURNAL_ATTR_UID | JOURNAL_ATTR_GID;
		a.uid = (uid_t)-1;
		a.gid = (gid_t)-1;
	}

	r = journal_setattr(fs->j, n->fd, fi ? (int)fi->fh : -1, n->jino, &a, &st);
	if (r >= 0) {
		st.st_ino = n->jino;
		fs_stat_hide_state_links(fs, n, &st);
	}
	fs_inode_put(fs, n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_attr(req, &st, FS_TIMEOUT);
}

void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	char buf[PATH_MAX + 1];
	struct fs_inode *n;
	ssize_t len;
	int r;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_readlink(req, ino);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	len = readlinkat(n->fd, "", buf, sizeof(buf));
	r = len < 0 ? -errno : 0;
	fs_inode_put(fs, n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	if ((size_t)len >= sizeof(buf))
		return (void) fuse_reply_err(req, ENAMETOOLONG);
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

/*
 * Create a non-regular object (or an empty regular file) named `name` in
 * `parent` through journal_mknod and count the kernel's lookup of it.
 */
static int fs_make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev, const char *link,
			struct fuse_entry_param *ret_e)
{
	struct fs *fs = fuse_req_userdata(req);
	struct journal_cred cred;
	struct fs_inode *p;
	struct stat st, bst;
	int fd, r;

	if (fs->read_only || !fs_is_live(fs, parent))   /* in .snap or a snapshot */
		return -EROFS;
	r = fs_inode_get(fs, parent, &p);
	if (r < 0)
		return r;
	r = fs_check_new_name(p, name);
	if (r < 0)
		goto out;

	fs_req_cred(req, &cred);
	if (!S_ISLNK(mode))
		fs_apply_umask(fs, req);
	r = journal_mknod(fs->j, &cred, p->fd, p->jino, name, mode, rdev, link, &st);
	if (r < 0)
		goto out;

	/*
	 * The kernel holds the parent's lock for the whole operation, so the
	 * name still refers to the object just made.
	 */
	fd = openat(p->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &bst) < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	r = fs_inode_remember(fs, st.st_ino, fd, &bst, false);
	if (r < 0)
		goto out;
	fs_fill_entry(ret_e, &st);
out:
	fs_inode_put(fs, p);
	return r;
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	int r;

	r = fs_make_node(req, parent, name, mode, rdev, NULL, &e);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	int r;

	if (!fs_is_live(fs, parent))   /* mkdir .snap/NAME takes a snapshot */
		return fs_snap_op_mkdir(req, parent, name);
	r = fs_make_node(req, parent, name, S_IFDIR | (mode & ~S_IFMT), 0, NULL, &e);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r;

	r = fs_make_node(req, parent, name, S_IFLNK | 0777, 0, link, &e);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *n = NULL, *p = NULL;
	struct fuse_entry_param e;
	struct stat st;
	int r;

	/* From or into a snapshot (or .snap): read-only. */
	if (fs->read_only || !fs_is_live(fs, ino) || !fs_is_live(fs, newparent))
		return (void) fuse_reply_err(req, EROFS);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		goto out;
	r = fs_inode_get(fs, newparent, &p);
	if (r < 0)
		goto out;
	r = fs_check_new_name(p, newname);
	if (r < 0)
		goto out;
	r = journal_link(fs->j, n->fd, n->jino, p->fd, p->jino, newname, &st);
	if (r < 0)
		goto out;
	/* The new name is one more kernel lookup of the same inode. */
	fs_inode_add_lookup(fs, n);
	st.st_ino = n->jino;
	fs_fill_entry(&e, &st);
out:
	fs_inode_put(fs, p);
	fs_inode_put(fs, n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *p;
	int r;

	if (fs->read_only || !fs_is_live(fs, parent))
		return (void) fuse_reply_err(req, EROFS);
	if (fs_is_snapdir(parent, name))   /* a directory (the kernel says so first) */
		return (void) fuse_reply_err(req, EISDIR);
	r = fs_inode_get(fs, parent, &p);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	if (fs_is_state_dir(p, name))
		r = -ENOENT;
	else
		r = journal_unlink(fs->j, p->fd, p->jino, name);
	fs_inode_put(fs, p);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *p;
	int r;

	if (!fs_is_live(fs, parent))   /* rmdir .snap/NAME deletes a snapshot */
		return fs_snap_op_rmdir(req, parent, name);
	if (fs->read_only)
		return (void) fuse_reply_err(req, EROFS);
	if (fs_is_snapdir(parent, name))   /* like a mount point */
		return (void) fuse_reply_err(req, EBUSY);
	r = fs_inode_get(fs, parent, &p);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	if (fs_is_state_dir(p, name))
		r = -ENOENT;
	else
		r = journal_rmdir(fs->j, p->fd, p->jino, name);
	fs_inode_put(fs, p);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *p = NULL, *np = NULL;
	int r;

	/* Either side in .snap or a snapshot: read-only (not EXDEV: same mount). */
	if (fs->read_only || !fs_is_live(fs, parent) || !fs_is_live(fs, newparent))
		return (void) fuse_reply_err(req, EROFS);
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return (void) fuse_reply_err(req, EINVAL);
	/* .snap itself cannot move or be replaced, like a mount point. */
	if (fs_is_snapdir(parent, name) || fs_is_snapdir(newparent, newname))
		return (void) fuse_reply_err(req, EBUSY);
	r = fs_inode_get(fs, parent, &p);
	if (r < 0)
		goto out;
	r = fs_inode_get(fs, newparent, &np);
	if (r < 0)
		goto out;
	if (fs_is_state_dir(p, name) || fs_is_state_dir(np, newname)) {
		r = -EPERM;
		goto out;
	}
	r = fs_check_new_name(np, newname);
	if (r < 0)
		goto out;
	r = journal_rename(fs->j, p->fd, p->jino, name, np->fd, np->jino, newname, flags);
out:
	fs_inode_put(fs, np);
	fs_inode_put(fs, p);
	fuse_reply_err(req, r < 0 ? -r : 0);
}
