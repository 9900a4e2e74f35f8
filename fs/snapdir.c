/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `.snap` directory and the read-only snapshot views below it
 * (DESIGN §4, docs/SNAPSHOTS.md), ZFS `.zfs/snapshot` style:
 *
 *   MNT/.snap              virtual, dr-xr-xr-x root:root; never listed in the
 *                          root (like snapdir=hidden) but reachable by name;
 *                          mtime = the newest snapshot's creation (else the
 *                          root's); nlink = 2 + number of snapshots
 *   mkdir MNT/.snap/NAME   journal_snap_create (EROFS on a read-only mount)
 *   rmdir MNT/.snap/NAME   journal_snap_delete (EBUSY while held)
 *   MNT/.snap/NAME/...     the tree as of that snapshot; every mutation EROFS;
 *                          the snapshot root's mtime/ctime = its creation time
 *
 * In the root, `.snap` behaves like a mount point: creating anything by that
 * name fails with EEXIST (it exists), renaming to or from it and rmdir of it
 * fail with EBUSY (what the kernel answers for a mount point). An entry named
 * `.snap` that really exists in the backing root is shadowed: it cannot be
 * reached through the mount (rename it in the backing directory while
 * unmounted to get at it).
 *
 * Node ids (and st_ino), never colliding with live ids (<= JOURNAL_INO_MAX):
 *   .snap                              FS_SNAPDIR_INO = 1 << 62
 *   object `jino` of snapshot `id`     1 << 63 | id << JOURNAL_INO_BITS | jino
 * so a hard link inside one snapshot has one st_ino, and the same object in
 * two snapshots has two. They need no inode table entry and no fd: every
 * handler decodes the id and asks the journal's views, so lookup counts
 * need no bookkeeping and forget is a no-op.
 *
 * A view is "snapshot S seen through node ids composed by fs_view_nodeid()".
 * The handlers below only ever go through fs_view_decode()/fs_view_nodeid(),
 * so serving snapshot N at another node is a change to those two functions
 * and to the hook that decides which ids are views, not to the handlers.
 *
 * DR mode (dr.c, the read-only mount of a replica) does exactly that: no id
 * is live (fs_is_live()), and fs_view_decode() turns FUSE_ROOT_ID into the
 * root of the snapshot the root shows (fs_dr_snap()), flagged `dr_root`,
 * or into FS_VK_DR_EMPTY, an empty directory, while the replica has no
 * snapshot. Below the root every id names its snapshot, so a lookup that
 * went through the root stays in that snapshot. The root itself changes
 * behind its fixed id: its attributes and the names in it time out after
 * FS_DR_TIMEOUT, names resolved while it moves are not cached at all
 * (`dr_cache`, see dr.c), nor are negative lookups in it, its listing is
 * never cached, its st_ino is FUSE_ROOT_ID (stable for tools that walk
 * trees), its attributes are the snapshot root's own (not the creation
 * time .snap/NAME shows), and a `.snap` entry of the snapshot root is not
 * listed (the virtual one shadows it, as on a primary).
 *
 * Caching: a snapshot never changes, so views get FS_TIMEOUT, keep_cache
 * and cache_readdir. `.snap` itself can change without a request through
 * this mount (a replica's receiver adds snapshots in another process), so
 * its attributes and lookups (also negative ones) time out after
 * FS_SNAPDIR_TIMEOUT and its listing is read afresh at each opendir and
 * never cached. After a snapshot is deleted every view op on its node ids
 * fails (the journal no longer knows the id: ENOENT).
 *
 * Threads: no state of its own besides per-handle buffers that only the
 * kernel's requests on that handle touch; the journal views are
 * thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs_i.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"

#define FS_VIEW_BIT (1ULL << 63)
#define FS_SNAPDIR_TIMEOUT 1.0
/* Largest read/copy done at once for a snapshot file (the kernel asks for <= max_read). */
#define FS_SNAP_IO_MAX (1U << 20)

/* An object of a snapshot view. */
struct fs_vnode {
	uint64_t snap;   /* snapshot id */
	uint64_t jino;   /* the object's journal inode number */
	bool dr_root;    /* FUSE_ROOT_ID of a DR mount (jino is the root) */
	bool dr_cache;   /* dr_root: the kernel may cache entries resolved in it now */
};

enum fs_vkind { FS_VK_BAD, FS_VK_SNAPDIR, FS_VK_VIEW, FS_VK_DR_EMPTY };

/* ---- node ids ------------------------------------------------------------- */

static uint64_t fs_view_nodeid(uint64_t snap, uint64_t jino)
{
	return FS_VIEW_BIT | snap << JOURNAL_INO_BITS | jino;
}

/* What `nodeid` is. */
static enum fs_vkind fs_view_decode(struct fs *fs, fuse_ino_t nodeid, struct fs_vnode *ret)
{
	uint64_t id = (uint64_t)nodeid;

	ret->dr_root = false;
	ret->dr_cache = false;
	if (fs->dr && id == FUSE_ROOT_ID) {
		uint64_t snap = fs_dr_snap(fs, &ret->dr_cache);

		if (snap == 0)
			return FS_VK_DR_EMPTY;
		ret->snap = snap;
		ret->jino = JOURNAL_ROOT_INO;
		ret->dr_root = true;
		return FS_VK_VIEW;
	}
	if (id == FS_SNAPDIR_INO)
		return FS_VK_SNAPDIR;
	if (!(id & FS_VIEW_BIT))
		return FS_VK_BAD;
	ret->snap = (id & ~FS_VIEW_BIT) >> JOURNAL_INO_BITS;
	ret->jino = id & JOURNAL_INO_MAX;
	if (ret->snap == 0 || ret->snap > JOURNAL_SNAP_ID_MAX || ret->jino == 0)
		return FS_VK_BAD;
	return FS_VK_VIEW;
}

bool fs_is_snapdir(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && strcmp(name, FS_SNAPDIR_NAME) == 0;
}

/* ---- attributes ------------------------------------------------------------ */

/* Attributes of a view object, st_ino = its node id. */
static int fs_view_stat(struct fs *fs, const struct fs_vnode *vn, struct stat *ret)
{
	struct journal_snap sn;
	struct stat st;
	int r;

	r = journal_snap_stat(fs->j, vn->snap, vn->jino, &st);
	if (r < 0)
		return r;
	if (vn->dr_root) {
		st.st_ino = FUSE_ROOT_ID;
		*ret = st;
		return 0;
	}
	if (vn->jino == JOURNAL_ROOT_INO) {
		/* The entry in .snap: its times are the snapshot's creation. */
		r = journal_snap_get_by_id(fs->j, vn->snap, &sn);
		if (r < 0)
			return r;
		st.st_mtim.tv_sec = sn.created_ns / 1000000000;
		st.st_mtim.tv_nsec = sn.created_ns % 1000000000;
		st.st_ctim = st.st_mtim;
	}
	st.st_ino = fs_view_nodeid(vn->snap, vn->jino);
	*ret = st;
	return 0;
}

static int fs_snapdir_stat(struct fs *fs, struct stat *ret)
{
	struct journal_snap *v = NULL;
	struct stat st;
	size_t n = 0;
	int r;

	r = fs_inode_stat(fs->root, &st);
	if (r < 0)
		return r;
	r = journal_snap_list(fs->j, false, &v, &n);
	if (r < 0)
		return r;
	if (n) {
		int64_t newest = v[0].created_ns;

		for (size_t i = 1; i < n; i++)
			newest = UTIL_MAX(newest, v[i].created_ns);
		st.st_mtim.tv_sec = newest / 1000000000;
		st.st_mtim.tv_nsec = newest % 1000000000;
	}
	free(v);
	st.st_ctim = st.st_mtim;
	st.st_atim = st.st_mtim;
	st.st_ino = FS_SNAPDIR_INO;
	st.st_mode = S_IFDIR | 0555;
	st.st_uid = 0;
	st.st_gid = 0;
	st.st_nlink = (nlink_t)(2 + n);
	st.st_size = 0;
	st.st_blocks = 0;
	st.st_rdev = 0;
	*ret = st;
	return 0;
}

/* The root of a DR mount while the replica has no snapshot: empty, read-only. */
static int fs_dr_empty_stat(struct fs *fs, struct stat *ret)
{
	struct stat st;
	int r;

	r = fs_inode_stat(fs->root, &st);
	if (r < 0)
		return r;
	st.st_ino = FUSE_ROOT_ID;
	st.st_mode &= ~(mode_t)0222;
	st.st_nlink = 2;
	*ret = st;
	return 0;
}

static void fs_snap_entry(struct fuse_entry_param *e, const struct stat *st, double timeout)
{
	fs_fill_entry(e, st);
	e->attr_timeout = timeout;
	e->entry_timeout = timeout;
}

/* The entry of snapshot `sn` in .snap. */
static int fs_snapdir_child(struct fs *fs, uint64_t snap, struct fuse_entry_param *ret_e)
{
	struct fs_vnode vn = { .snap = snap, .jino = JOURNAL_ROOT_INO };
	struct stat st;
	int r;

	r = fs_view_stat(fs, &vn, &st);
	if (r < 0)
		return r;
	fs_snap_entry(ret_e, &st, FS_SNAPDIR_TIMEOUT);
	return 0;
}

/* ---- names ------------------------------------------------------------------ */

void fs_snap_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	struct journal_snap sn;
	struct fs_vnode vn;
	struct stat st;
	double neg_timeout = FS_TIMEOUT, timeout = FS_TIMEOUT;
	uint64_t jino;
	int r;

	if (strlen(name) > 255)
		return (void) fuse_reply_err(req, ENAMETOOLONG);
	if (fs_is_snapdir(parent, name)) {
		r = fs_snapdir_stat(fs, &st);
		if (r < 0)
			return (void) fuse_reply_err(req, -r);
		fs_snap_entry(&e, &st, FS_SNAPDIR_TIMEOUT);
		return (void) fuse_reply_entry(req, &e);
	}
	switch (fs_view_decode(fs, parent, &vn)) {
	case FS_VK_SNAPDIR:
		neg_timeout = FS_SNAPDIR_TIMEOUT;
		r = journal_snap_get(fs->j, name, &sn);
		if (r >= 0)
			r = fs_snapdir_child(fs, sn.id, &e);
		break;
	case FS_VK_VIEW:
		if (vn.dr_root) {
			/*
			 * The name may lead to another snapshot soon: the
			 * entry is dropped when the root moves (dr.c), a
			 * negative one could not be, and none resolved
			 * while it moves may be cached.
			 */
			neg_timeout = 0;
			timeout = vn.dr_cache ? FS_DR_TIMEOUT : 0;
		}
		r = journal_snap_lookup(fs->j, vn.snap, vn.jino, name, &jino, NULL);
		if (r >= 0) {
			vn.jino = jino;
			vn.dr_root = false;
			r = fs_view_stat(fs, &vn, &st);
		}
		if (r >= 0) {
			fs_snap_entry(&e, &st, FS_TIMEOUT);
			e.entry_timeout = timeout;   /* its attributes never change */
		}
		break;
	case FS_VK_DR_EMPTY:
		neg_timeout = 0;   /* the first snapshot may have it */
		r = -ENOENT;
		break;
	default:
		r = -ESTALE;
	}
	if (r == -ENOENT) {
		/* Negative entry: a snapshot never changes; .snap may. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = neg_timeout;
		r = 0;
	}
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

void fs_snap_op_getattr(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_vnode vn;
	struct stat st;
	double timeout = FS_TIMEOUT;
	int r;

	switch (fs_view_decode(fs, ino, &vn)) {
	case FS_VK_SNAPDIR:
		r = fs_snapdir_stat(fs, &st);
		timeout = FS_SNAPDIR_TIMEOUT;
		break;
	case FS_VK_VIEW:
		r = fs_view_stat(fs, &vn, &st);
		if (vn.dr_root)
			timeout = FS_DR_TIMEOUT;
		break;
	case FS_VK_DR_EMPTY:
		r = fs_dr_empty_stat(fs, &st);
		timeout = FS_DR_TIMEOUT;
		break;
	default:
		r = -ESTALE;
	}
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_attr(req, &st, timeout);
}

void fs_snap_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	char buf[PATH_MAX + 1];
	struct fs_vnode vn;
	size_t len;
	int r;

	if (fs_view_decode(fs, ino, &vn) != FS_VK_VIEW)
		return (void) fuse_reply_err(req, EINVAL);
	r = journal_snap_readlink(fs->j, vn.snap, vn.jino, buf, sizeof(buf) - 1, &len);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	if (len >= sizeof(buf))
		return (void) fuse_reply_err(req, ENAMETOOLONG);
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

/* mkdir in .snap takes a snapshot; anywhere else below .snap: EROFS. */
void fs_snap_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	struct journal_snap sn;
	struct fs_vnode vn;
	int r;

	if (fs->read_only || fs_view_decode(fs, parent, &vn) != FS_VK_SNAPDIR)
		return (void) fuse_reply_err(req, EROFS);
	r = journal_snap_create(fs->j, name, &sn);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	log_debug("snapshot '%s' created (id %llu)", name, (unsigned long long)sn.id);
	r = fs_snapdir_child(fs, sn.id, &e);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	fuse_reply_entry(req, &e);
}

/* rmdir in .snap deletes a snapshot; anywhere else below .snap: EROFS. */
void fs_snap_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_vnode vn;
	int r;

	if (fs->read_only || fs_view_decode(fs, parent, &vn) != FS_VK_SNAPDIR)
		return (void) fuse_reply_err(req, EROFS);
	r = journal_snap_delete(fs->j, name);
	if (r >= 0)
		log_debug("snapshot '%s' deleted", name);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

/* ---- directories ---------------------------------------------------------- */

struct fs_vdirent {
	char *name;
	uint64_t nodeid;
	mode_t type;          /* S_IFMT bits */
};

/* An open .snap or view directory: all entries, read at opendir. */
struct fs_vdir {
	enum fs_vkind kind;
	struct fs_vnode vn;   /* FS_VK_VIEW: the directory */
	double timeout;       /* entry timeout of the names in it (readdirplus) */
	struct fs_vdirent *e;
	size_t n, cap;
};

static void fs_vdir_free(struct fs_vdir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

static int fs_vdir_add(struct fs_vdir *d, const char *name, uint64_t nodeid, mode_t type)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 32;
		struct fs_vdirent *ne = realloc(d->e, nc * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		d->e = ne;
		d->cap = nc;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n].nodeid = nodeid;
	d->e[d->n].type = type & S_IFMT;
	d->n++;
	return 0;
}

static int fs_vdir_add_cb(void *arg, const char *name, uint64_t ino, mode_t type,
			  uint64_t next_cookie)
{
	struct fs_vdir *d = arg;

	/* The DR root, like a primary's, does not list what .snap shadows. */
	if (d->vn.dr_root && strcmp(name, FS_SNAPDIR_NAME) == 0)
		return 0;
	return fs_vdir_add(d, name, fs_view_nodeid(d->vn.snap, ino), type);
}

/*
 * The node id of `..` of a view directory: .snap for a snapshot root; for
 * a deeper directory the journal has no view of an object's parent, so
 * it is left unknown (d_ino of ".." is ignored by the tools that walk trees).
 */
static uint64_t fs_view_dotdot(const struct fs_vnode *vn)
{
	if (vn->dr_root)
		return FUSE_ROOT_ID;
	return vn->jino == JOURNAL_ROOT_INO ? FS_SNAPDIR_INO : 0xffffffffULL;
}

void fs_snap_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct journal_snap *v = NULL;
	struct fs_vdir *d;
	struct stat st;
	size_t n = 0;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return (void) fuse_reply_err(req, ENOMEM);
	d->kind = fs_view_decode(fs, ino, &d->vn);
	d->timeout = FS_TIMEOUT;
	switch (d->kind) {
	case FS_VK_SNAPDIR:
		d->timeout = FS_SNAPDIR_TIMEOUT;
		r = fs_vdir_add(d, ".", FS_SNAPDIR_INO, S_IFDIR);
		if (r >= 0)
			r = fs_vdir_add(d, "..", FUSE_ROOT_ID, S_IFDIR);
		if (r >= 0)
			r = journal_snap_list(fs->j, false, &v, &n);
		for (size_t i = 0; r >= 0 && i < n; i++)
			r = fs_vdir_add(d, v[i].name, fs_view_nodeid(v[i].id, JOURNAL_ROOT_INO),
					S_IFDIR);
		free(v);
		/* Snapshots may come and go behind our back: list afresh each time. */
		fi->cache_readdir = 0;
		fi->keep_cache = 0;
		break;
	case FS_VK_VIEW:
		/* Fails (ENOENT) once the snapshot is gone, ENOTDIR for a non-directory. */
		r = journal_snap_stat(fs->j, d->vn.snap, d->vn.jino, &st);
		if (r >= 0 && !S_ISDIR(st.st_mode))
			r = -ENOTDIR;
		if (r >= 0)
			r = fs_vdir_add(d, ".", d->vn.dr_root ? FUSE_ROOT_ID :
					fs_view_nodeid(d->vn.snap, d->vn.jino), S_IFDIR);
		if (r >= 0)
			r = fs_vdir_add(d, "..", fs_view_dotdot(&d->vn), S_IFDIR);
		if (r >= 0)
			r = journal_snap_readdir(fs->j, d->vn.snap, d->vn.jino, 0, fs_vdir_add_cb, d);
		/* A snapshot never changes; the snapshot behind the DR root does. */
		fi->cache_readdir = !d->vn.dr_root;
		fi->keep_cache = !d->vn.dr_root;
		if (d->vn.dr_root)
			d->timeout = FS_DR_TIMEOUT;
		break;
	case FS_VK_DR_EMPTY:
		r = fs_vdir_add(d, ".", FUSE_ROOT_ID, S_IFDIR);
		if (r >= 0)
			r = fs_vdir_add(d, "..", FUSE_ROOT_ID, S_IFDIR);
		fi->cache_readdir = 0;
		fi->keep_cache = 0;
		break;
	default:
		r = -ESTALE;
	}
	if (r < 0) {
		fs_vdir_free(d);
		return (void) fuse_reply_err(req, -r);
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

/* readdir(plus) from the entries read at opendir; offsets are indexes + 1. */
void fs_snap_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_vdir *d = (struct fs_vdir *)(uintptr_t)fi->fh;
	size_t rem = size;
	char *buf, *p;

	buf = malloc(size);
	if (!buf)
		return (void) fuse_reply_err(req, ENOMEM);
	p = buf;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < d->n; i++) {
		const struct fs_vdirent *de = &d->e[i];
		struct fuse_entry_param e;
		struct fs_vnode vn;
		size_t entsize;
		bool dots = i < 2;   /* "." and ".." come first */

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = de->nodeid;
		e.attr.st_mode = de->type;
		/*
		 * An entry of the DR root read at opendir, when the root
		 * showed d->vn.snap: it may be cached only while it still
		 * does (dr.c), else the plain entry.
		 */
		if (plus && !dots && fs_view_decode(fs, de->nodeid, &vn) == FS_VK_VIEW &&
		    (!d->vn.dr_root || fs_dr_may_cache(fs, d->vn.snap))) {
			struct stat st;
			int r = fs_view_stat(fs, &vn, &st);

			/*
			 * Attributes with the entry count as a lookup; none need
			 * counting here. If they cannot be had, the plain entry
			 * (ino 0 in the entry: no lookup) lets a later lookup
			 * report why.
			 */
			if (r >= 0) {
				fs_snap_entry(&e, &st, FS_TIMEOUT);
				e.entry_timeout = d->timeout;
				if (d->kind == FS_VK_SNAPDIR)
					e.attr_timeout = FS_SNAPDIR_TIMEOUT;
			}
		}
		if (plus)
			entsize = fuse_add_direntry_plus(req, p, rem, de->name, &e, (off_t)i + 1);
		else
			entsize = fuse_add_direntry(req, p, rem, de->name, &e.attr, (off_t)i + 1);
		if (entsize > rem)
			break;
		p += entsize;
		rem -= entsize;
	}
	fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

void fs_snap_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_vdir_free((struct fs_vdir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- files -------------------------------------------------------------------- */

void fs_snap_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct journal_snapfile *f;
	struct fs_vnode vn;
	int r;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_CREAT)))
		return (void) fuse_reply_err(req, EROFS);
	switch (fs_view_decode(fs, ino, &vn)) {
	case FS_VK_SNAPDIR:
	case FS_VK_DR_EMPTY:
		return (void) fuse_reply_err(req, EISDIR);
	case FS_VK_VIEW:
		break;
	default:
		return (void) fuse_reply_err(req, ESTALE);
	}
	r = journal_snapfile_open(fs->j, vn.snap, vn.jino, &f);
	if (r < 0)
		return (void) fuse_reply_err(req, -r);
	/* As for live files: O_DIRECT bypasses the page cache. */
	if (fi->flags & O_DIRECT)
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;   /* a snapshot never changes */
	fi->noflush = 1;
	fi->fh = (uintptr_t)f;
	fuse_reply_open(req, fi);
}

struct snap_reply {
	fuse_req_t req;
	bool replied;
};

/*
 * Called with the chunks' stripe lock held (see journal_snapfile_read_segs):
 * libfuse splices the fd segments to /dev/fuse inside fuse_reply_data(), so
 * the data is sent before a copy-on-write can overwrite it, and we copy none.
 */
static int snap_reply_segs(void *arg, const struct journal_snapseg *seg, size_t nseg)
{
	struct snap_reply *sr = arg;
	struct fuse_bufvec *bv;
	int r;

	if (nseg == 0) {
		sr->replied = true;
		return fuse_reply_buf(sr->req, NULL, 0);
	}
	bv = calloc(1, sizeof(*bv) + nseg * sizeof(bv->buf[0]));
	if (!bv)
		return -ENOMEM;
	bv->count = nseg;
	for (size_t i = 0; i < nseg; i++) {
		bv->buf[i].size = seg[i].len;
		if (seg[i].fd >= 0) {
			bv->buf[i].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			bv->buf[i].fd = seg[i].fd;
			bv->buf[i].pos = seg[i].pos;
		} else {
			bv->buf[i].mem = (void *)seg[i].mem;   /* only read from */
		}
	}
	/*
	 * No FUSE_BUF_SPLICE_MOVE (which lets the kernel try to steal the
	 * backing files' page cache pages): with it, cold reads of a
	 * half-CoW file measured ~700 MiB/s, without it ~1100.
	 */
	sr->replied = true;
	r = fuse_reply_data(sr->req, bv, 0);
	free(bv);
	return r;
}

void fs_snap_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct journal_snapfile *f = (struct journal_snapfile *)(uintptr_t)fi->fh;
	struct snap_reply sr = { .req = req };
	int r;

	size = UTIL_MIN(size, (size_t)FS_SNAP_IO_MAX);
	r = journal_snapfile_read_segs(f, size, off, snap_reply_segs, &sr);
	if (!sr.replied)
		fuse_reply_err(req, r < 0 ? -r : EIO);
}

void fs_snap_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	journal_snapfile_close((struct journal_snapfile *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void fs_snap_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	struct journal_snapfile *f = (struct journal_snapfile *)(uintptr_t)fi->fh;
	off_t res;

	/* The kernel does SEEK_SET/CUR/END itself; it asks only for DATA/HOLE. */
	res = journal_snapfile_seek(f, off, whence);
	if (res < 0)
		return (void) fuse_reply_err(req, (int)-res);
	fuse_reply_lseek(req, res);
}

ssize_t fs_snap_copy_out(struct fs *fs, struct fuse_file_info *fi_in, off_t off_in,
			 uint64_t ino_out, int fd_out, off_t off_out, size_t len)
{
	struct journal_snapfile *f = (struct journal_snapfile *)(uintptr_t)fi_in->fh;
	ssize_t got, res;
	char *buf;

	/* A short copy is fine: the caller loops (copy_file_range semantics). */
	len = UTIL_MIN(len, (size_t)FS_SNAP_IO_MAX);
	if (len == 0)
		return 0;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	got = journal_snapfile_read(f, buf, len, off_in);
	res = got;
	if (got > 0)
		res = journal_pwrite(fs->j, ino_out, fd_out, buf, (size_t)got, off_out);
	free(buf);
	return res;
}

/* ---- extended attributes ------------------------------------------------------ */

void fs_snap_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fs_vnode vn;
	char *value = NULL;
	ssize_t len;

	switch (fs_view_decode(fs, ino, &vn)) {
	case FS_VK_SNAPDIR:
	case FS_VK_DR_EMPTY:
		return (void) fuse_reply_err(req, ENODATA);
	case FS_VK_VIEW:
		break;
	default:
		return (void) fuse_reply_err(req, ESTALE);
	}
	/* The virtual mirrorfs.dir.* attributes describe live trees only. */
	if (strncmp(name, "mirrorfs.", 9) == 0)
		return (void) fuse_reply_err(req, ENODATA);
	if (size) {
		value = malloc(size);
		if (!value)
			return (void) fuse_reply_err(req, ENOMEM);
	}
	len = journal_snap_getxattr(fs->j, vn.snap, vn.jino, name, value, size);
	if (len < 0)
		fuse_reply_err(req, (int)-len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, value, (size_t)len);
	free(value);
}

struct fs_snap_lister {
	struct fs *fs;
	struct fs_vnode vn;
};

static ssize_t fs_snap_list(void *arg, char *buf, size_t size)
{
	struct fs_snap_lister *l = arg;

	return journal_snap_listxattr(l->fs->j, l->vn.snap, l->vn.jino, buf, size);
}

void fs_snap_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_snap_lister l = { .fs = fuse_req_userdata(req) };
	char *list = NULL;
	ssize_t len;

	switch (fs_view_decode(l.fs, ino, &l.vn)) {
	case FS_VK_SNAPDIR:
	case FS_VK_DR_EMPTY:
		return (void) (size ? fuse_reply_buf(req, NULL, 0) : fuse_reply_xattr(req, 0));
	case FS_VK_VIEW:
		break;
	default:
		return (void) fuse_reply_err(req, ESTALE);
	}
	/* trusted.* names for root only, as on the live tree */
	len = fs_xattr_list(req, size, fs_snap_list, &l, &list);
	if (len < 0)
		fuse_reply_err(req, (int)-len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, list, (size_t)len);
	free(list);
}
