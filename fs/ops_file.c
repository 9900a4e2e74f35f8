/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Open files: create, open, read, write_buf, flush, release, fsync,
 * fallocate, lseek, copy_file_range. fi->fh is the backing fd of a live
 * file; for a snapshot file (node id not live) it is the journal's
 * snapshot file (snapdir.c), and every write to it fails with EROFS.
 *
 * Data moves by splice where the kernel allows it: reads reply with the
 * backing fd (fuse_reply_data), writes are copied from the request buffer
 * (a pipe when splicing) straight into the backing fd (fuse_buf_copy),
 * bracketed by journal_write_prepare()/journal_write_done().
 *
 * Locks (flock, POSIX) are left to the kernel: no lock ops, and
 * FUSE_CAP_POSIX_LOCKS / FUSE_CAP_FLOCK_LOCKS stay off (see mount.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_i.h"
#include "mirrorfs/log.h"

/*
 * Turn the kernel's open flags into the backing open's and set the reply
 * flags. O_DIRECT: the backing file is opened without it (the request
 * buffers are not aligned) and the kernel bypasses its page cache
 * (direct_io). O_APPEND: the kernel already turns each append into a write
 * at the end of the file it knows (every change goes through us), so the
 * backing fd writes exactly where the journal records.
 */
static int fs_backing_flags(struct fuse_file_info *fi)
{
	int flags = fi->flags;

	if (flags & O_DIRECT) {
		flags &= ~O_DIRECT;
		fi->direct_io = 1;
	} else {
		fi->keep_cache = 1;   /* every change goes through us */
	}
	flags &= ~(O_APPEND | O_NOFOLLOW);
	return flags | O_CLOEXEC;
}

/*
 * FLUSH (each close()) is worth a round trip only if a close() of the
 * backing file can report something: on a local filesystem it cannot
 * (fs_backing_flushes() in mount.c), so the kernel skips it.
 */
static void fs_set_noflush(const struct fs *fs, struct fuse_file_info *fi)
{
	if (!fs->backing_flush)
		fi->noflush = 1;
}

static bool fs_flags_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct journal_cred cred;
	struct fuse_entry_param e;
	char proc[FS_PROC_FD_LEN];
	struct fs_inode *p;
	struct stat st, bst;
	int fd = -1, pfd, r;

	if (fs->read_only || !fs_is_live(fs, parent))   /* in .snap or a snapshot */
		return (void) fuse_reply_err(req, EROFS);
	r = fs_inode_get(fs, parent, &p);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	r = fs_check_new_name(p, name);
	if (r < 0)
		goto out;

	fs_req_cred(req, &cred);
	fs_apply_umask(fs, req);
	do {
		r = journal_create(fs->j, &cred, p->fd, p->jino, name,
				   fs_backing_flags(fi) | O_CREAT, S_IFREG | (mode & ~S_IFMT),
				   &fd, &st);
	} while (r == -EMFILE && fs_fd_relief(fs));   /* nothing made: the fd comes first */
	if (r < 0)
		goto out;

	/* The table's O_PATH fd for the very inode just opened. */
	fs_proc_path(fd, proc);
	pfd = open(proc, O_PATH | O_CLOEXEC);
	if (pfd < 0 && errno == EMFILE && fs_fd_relief(fs))
		pfd = open(proc, O_PATH | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, &bst) < 0) {
		r = -errno;
		if (pfd >= 0)
			close(pfd);
		goto out;
	}
	r = fs_inode_remember(fs, st.st_ino, pfd, &bst, true);
	if (r < 0)
		goto out;
	fs_fill_entry(&e, &st);
	fs_set_noflush(fs, fi);
	fi->fh = (uint64_t)fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	fs_inode_put(fs, p);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_create(req, &e, fi);
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_inode *n;
	int fd, r;

	if (fs->read_only && fs_flags_write(fi->flags))
		return (void) fuse_reply_err(req, EROFS);
	if (!fs_is_live(fs, ino))
		return fs_snap_op_open(req, ino, fi);
	r = fs_inode_get(fs, ino, &n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	r = journal_open_fd(fs->j, n->fd, n->jino, fs_backing_flags(fi), &fd);
	if (r == -EMFILE && fs_fd_relief(fs))
		r = journal_open_fd(fs->j, n->fd, n->jino, fs_backing_flags(fi), &fd);
	if (r >= 0)
		fs_inode_opened(fs, n);
	fs_inode_put(fs, n);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fs_set_noflush(fs, fi);
	fi->fh = (uint64_t)fd;
	fuse_reply_open(req, fi);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	if (!fs_is_live(fs, ino))
		return fs_snap_op_read(req, ino, size, off, fi);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void fs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf,
		     off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	size_t len = fuse_buf_size(in_buf);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);
	int fd = (int)fi->fh;
	ssize_t res;
	int r;

	if (fs->read_only || !fs_is_live(fs, ino))
		return (void) fuse_reply_err(req, EROFS);
	r = journal_write_prepare(fs->j, ino, fd, off, len);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	res = fuse_buf_copy(&out, in_buf, 0);
	/*
	 * A failed copy may still have written a part: record the whole range
	 * then, so a replica never misses bytes (re-sending some is harmless).
	 */
	journal_write_done(fs->j, ino, fd, off, res < 0 ? len : (size_t)res);
	if (res < 0)
		return (void) fuse_reply_err(req, (int)-res);
	fuse_reply_write(req, (size_t)res);
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	int r;

	if (!fs_is_live(fs, ino))   /* a snapshot file has no backing fd */
		return (void) fuse_reply_err(req, 0);
	/*
	 * close() of a duplicate: what a close() of the backing file reports
	 * (NFS). If the daemon itself is out of descriptors there is nothing
	 * to learn that way, and the application's close() has not failed.
	 */
	r = dup((int)fi->fh);
	if (r < 0)
		return (void) fuse_reply_err(req, errno == EMFILE || errno == ENFILE ? 0 : errno);
	r = close(r);
	fuse_reply_err(req, r < 0 ? errno : 0);
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	if (!fs_is_live(fs, ino))
		return fs_snap_op_release(req, ino, fi);
	close((int)fi->fh);
	fs_inode_released(fs, ino);
	fuse_reply_err(req, 0);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	int r;

	if (!fs_is_live(fs, ino))   /* nothing to make durable in a snapshot */
		return (void) fuse_reply_err(req, 0);
	r = journal_fsync(fs->j, ino, (int)fi->fh, datasync != 0);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		     struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	int r;

	if (fs->read_only || !fs_is_live(fs, ino))
		return (void) fuse_reply_err(req, EROFS);
	r = journal_fallocate(fs->j, ino, (int)fi->fh, mode, offset, length);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	off_t res;

	if (!fs_is_live(fs, ino))
		return fs_snap_op_lseek(req, ino, off, whence, fi);
	res = lseek((int)fi->fh, off, whence);
	if (res < 0)
		return (void) fuse_reply_err(req, errno);
	fuse_reply_lseek(req, res);
}

void fs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			   struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct fs *fs = fuse_req_userdata(req);
	ssize_t res;

	if (fs->read_only || !fs_is_live(fs, ino_out))
		return (void) fuse_reply_err(req, EROFS);
	if (!fs_is_live(fs, ino_in))   /* out of a snapshot: no backing fd to copy from */
		res = fs_snap_copy_out(fs, fi_in, off_in, ino_out, (int)fi_out->fh, off_out, len);
	else
		res = journal_copy_file_range(fs->j, (int)fi_in->fh, off_in, ino_out,
					      (int)fi_out->fh, off_out, len, (unsigned)flags);
	if (res < 0)
		return (void) fuse_reply_err(req, (int)-res);
	fuse_reply_write(req, (size_t)res);
}
