/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Extended attributes: passed through (user.*, trusted.*, security.*, and
 * POSIX ACLs as system.posix_acl_*; trusted.* names are listed to root
 * only, see fs_xattr_list()), plus the read-only virtual
 * `mirrorfs.dir.*` attributes of directories and `mirrorfs.mount.pid` of
 * the root, CephFS style: decimal values without a trailing NUL or
 * newline, never listed, never settable.
 *
 * An O_PATH fd cannot do xattr syscalls, so reads go through the
 * /proc/self/fd/N magic link (which names the object itself, even an
 * unlinked file or a symlink).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"
#include "mirrorfs/fs.h"
#include "mirrorfs/log.h"

#define FS_VXATTR_PREFIX "mirrorfs."
#define FS_VXATTR_MAX 64

static bool fs_is_vxattr(const char *name)
{
	return strncmp(name, FS_VXATTR_PREFIX, strlen(FS_VXATTR_PREFIX)) == 0;
}

/* Reply to a getxattr of `size` with the virtual value `buf` (`len` bytes). */
static void fs_reply_vxattr(fuse_req_t req, const char *buf, size_t len, size_t size)
{
	if (size == 0)
		return (void) fuse_reply_xattr(req, len);
	if (len > size)
		return (void) fuse_reply_err(req, ERANGE);
	fuse_reply_buf(req, buf, len);
}

/*
 * Format the virtual xattr `name` of directory `n` into buf (no NUL
 * counted). Returns the length, -ENODATA for an unknown name or a
 * non-directory.
 */
static int fs_vxattr_get(struct fs *fs, const struct fs_inode *n, const char *name,
			 char buf[FS_VXATTR_MAX])
{
	struct journal_rstat rs;
	int r, len;

	if (!S_ISDIR(n->type))
		return -ENODATA;
	if (strcmp(name, "mirrorfs.dir.rctime") != 0 &&
	    strcmp(name, "mirrorfs.dir.rbytes") != 0 &&
	    strcmp(name, "mirrorfs.dir.rfiles") != 0 &&
	    strcmp(name, "mirrorfs.dir.rsubdirs") != 0 &&
	    strcmp(name, "mirrorfs.dir.rentries") != 0)
		return -ENODATA;
	r = journal_rstat_get(fs->j, n->jino, &rs);
	if (r < 0)
		return r;
	if (strcmp(name, "mirrorfs.dir.rctime") == 0)
		len = snprintf(buf, FS_VXATTR_MAX, "%lld.%09ld",
			       (long long)rs.rctime.tv_sec, (long)rs.rctime.tv_nsec);
	else if (strcmp(name, "mirrorfs.dir.rbytes") == 0)
		len = snprintf(buf, FS_VXATTR_MAX, "%" PRIu64, rs.rbytes);
	else if (strcmp(name, "mirrorfs.dir.rfiles") == 0)
		len = snprintf(buf, FS_VXATTR_MAX, "%" PRIu64, rs.rfiles);
	else if (strcmp(name, "mirrorfs.dir.rsubdirs") == 0)
		len = snprintf(buf, FS_VXATTR_MAX, "%" PRIu64, rs.rsubdirs);
	else
		len = snprintf(buf, FS_VXATTR_MAX, "%" PRIu64, rs.rfiles + rs.rsubdirs);
	return len;
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	char proc[FS_PROC_FD_LEN];
	char vbuf[FS_VXATTR_MAX];
	struct fs_inode *n;
	char *value = NULL;
	ssize_t len;
	int r;

	/* Before the dispatch: the root of a DR mount is a view. */
	if (ino == FUSE_ROOT_ID && strcmp(name, FS_MOUNT_PID_XATTR) == 0) {
		r = snprintf(vbuf, sizeof(vbuf), "%ld", (long)getpid());
		return fs_reply_vxattr(req, vbuf, (size_t)r, size);
	}
	if (!fs_is_live(fs, ino))   /* no other virtual attributes there */
		return fs_snap_op_getxattr(req, ino, name, size);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);

	if (fs_is_vxattr(name)) {
		r = fs_vxattr_get(fs, n, name, vbuf);
		fs_inode_put(fs, n);
		if (r < 0)
			return (void) fuse_reply_err(req, -r);
		return fs_reply_vxattr(req, vbuf, (size_t)r, size);
	}

	fs_proc_path(n->fd, proc);
	if (size) {
		value = malloc(size);
		if (!value) {
			r = -ENOMEM;
			goto out;
		}
	}
	len = getxattr(proc, name, value, size);
	r = len < 0 ? -errno : 0;
out:
	fs_inode_put(fs, n);
	if (r < 0) {
		free(value);
		return (void) fuse_reply_err(req, -r);
	}
	if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, value, (size_t)len);
	free(value);
}

/* Take the trusted.* names out of a listxattr list; returns its new length. */
static size_t fs_xattr_drop_trusted(char *list, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		size_t n = strnlen(list + in, len - in) + 1;

		if (n > len - in)
			n = len - in;
		if (strncmp(list + in, "trusted.", 8) != 0) {
			memmove(list + out, list + in, n);
			out += n;
		}
		in += n;
	}
	return out;
}

ssize_t fs_xattr_list(fuse_req_t req, size_t size, fs_xattr_lister list, void *arg,
		      char **ret_buf)
{
	char *buf = NULL;
	ssize_t len;

	if (fuse_req_ctx(req)->uid == 0) {
		/* All of it, in the size asked for. */
		if (size) {
			buf = malloc(size);
			if (!buf)
				return -ENOMEM;
		}
		len = list(arg, buf, size);
		goto out;
	}
	/* All of it (again if it grew meanwhile), then without trusted.* */
	do {
		free(buf);
		buf = NULL;
		len = list(arg, NULL, 0);
		if (len <= 0)
			break;
		buf = malloc((size_t)len);
		if (!buf) {
			len = -ENOMEM;
			break;
		}
		len = list(arg, buf, (size_t)len);
	} while (len == -ERANGE);
	if (len > 0)
		len = (ssize_t)fs_xattr_drop_trusted(buf, (size_t)len);
	if (len > 0 && size && (size_t)len > size)
		len = -ERANGE;
out:
	if (len < 0) {
		free(buf);
		return len;
	}
	*ret_buf = buf;
	return len;
}

static ssize_t fs_live_list(void *arg, char *buf, size_t size)
{
	ssize_t len = listxattr(arg, buf, size);

	return len < 0 ? -errno : len;
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	char proc[FS_PROC_FD_LEN];
	struct fs_inode *n;
	char *list = NULL;
	ssize_t len;
	int r;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_listxattr(req, ino, size);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fs_proc_path(n->fd, proc);
	/* The virtual mirrorfs.* names are never listed. */
	len = fs_xattr_list(req, size, fs_live_list, proc, &list);
	fs_inode_put(fs, n);
	if (len < 0)
		return (void) fuse_reply_err(req, (int)-len);
	if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, list, (size_t)len);
	free(list);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *n;
	int r;

	if (!fs_is_live(fs, ino))   /* snapshots are read-only, whatever the name */
		return (void) fuse_reply_err(req, EROFS);
	if (fs_is_vxattr(name))
		return (void) fuse_reply_err(req, EPERM);
	if (fs->read_only)
		return (void) fuse_reply_err(req, EROFS);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	r = journal_setxattr(fs->j, n->fd, n->jino, name, value, size, flags);
	fs_inode_put(fs, n);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *n;
	int r;

	if (!fs_is_live(fs, ino))
		return (void) fuse_reply_err(req, EROFS);
	if (fs_is_vxattr(name))
		return (void) fuse_reply_err(req, EPERM);
	if (fs->read_only)
		return (void) fuse_reply_err(req, EROFS);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	r = journal_removexattr(fs->j, n->fd, n->jino, name);
	fs_inode_put(fs, n);
	fuse_reply_err(req, r < 0 ? -r : 0);
}
