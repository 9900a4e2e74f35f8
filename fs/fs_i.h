/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_FS_I_H
#define MIRRORFS_FS_I_H

/*
 * Private to fs/: the FUSE layer's state, the inode table and the
 * handlers (each ops_*.c holds one op family; mount.c gathers them in one
 * struct fuse_lowlevel_ops).
 *
 * Node ids: the kernel's node id of a live object is its journal inode
 * number (jino, 1 ..= JOURNAL_INO_MAX; the root is FUSE_ROOT_ID ==
 * JOURNAL_ROOT_INO == 1). Ids above JOURNAL_INO_MAX (top bits set) are
 * the `.snap` directory and snapshot views (snapdir.c): every handler
 * first checks fs_is_live() and hands any other id to its fs_snap_op_*
 * counterpart (or fails with EROFS for a mutation) before resolving a
 * live id with fs_inode_get(), which refuses the others.
 *
 * Locks: the inode table has one mutex (fs_itable.lock). It is a leaf lock:
 * nothing else is taken while it is held, it is never held across a
 * syscall that may block on the backing filesystem, a call into the journal,
 * or a fuse_reply_*.
 */

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mirrorfs/journal.h"

/*
 * Entry and attribute timeouts. Every change to the tree goes through this
 * process (the backing directory belongs to mirrorfs while mounted, like an
 * overlayfs upper dir), so the kernel may cache names, attributes and
 * negative lookups for a long time. Changes made behind the mount's back
 * show up after this long, or after a remount.
 */
#define FS_TIMEOUT 86400.0

/* Largest write the kernel may send in one request. */
#define FS_MAX_WRITE (1U << 20)

struct fs_inode {
	uint64_t jino;        /* immutable */
	/*
	 * O_PATH|O_NOFOLLOW fd of the backing object, or -1 while closed to
	 * save descriptors (reopened from `handle`). Protected by
	 * fs_itable.lock; stable (and >= 0) while the caller holds a
	 * reference from fs_inode_get().
	 */
	int fd;
	struct file_handle *handle; /* to reopen fd; NULL: fd is never closed; immutable */
	dev_t dev;            /* backing identity; immutable */
	ino_t bino;
	mode_t type;          /* S_IFMT bits; immutable */
	uint64_t nlookup;     /* kernel lookups not yet forgotten; protected by fs_itable.lock */
	unsigned refcount;    /* 1 while nlookup > 0, +1 per handler using it; protected by fs_itable.lock */
	unsigned users;       /* handlers using it (fs_inode_get); protected by fs_itable.lock */
	unsigned opens;       /* open files (fd kept: fstat of an unlinked open file); ditto */
	struct fs_inode *next; /* hash chain; protected by fs_itable.lock */
	/* On the LRU of closable fds (fd >= 0, handle, no users, no opens, in the table). */
	struct fs_inode *lru_prev, *lru_next; /* protected by fs_itable.lock */
	bool on_lru;          /* protected by fs_itable.lock */
};

/*
 * Descriptors: every inode the kernel caches has an O_PATH fd, but the
 * kernel may cache more inodes than the process may open files (a hard
 * RLIMIT_NOFILE of 20,000 is common in containers). Past `fd_max` open
 * O_PATH fds, the least recently used ones of inodes nobody is using are
 * closed; fs_inode_get() reopens them by file handle (open_by_handle_at,
 * like NFS servers), which also survives renames and unlinks of other links.
 */
struct fs_itable {
	pthread_mutex_t lock;  /* leaf lock, see above */
	struct fs_inode **buckets;  /* protected by lock */
	size_t nbuckets;            /* protected by lock */
	size_t count;               /* protected by lock */
	struct fs_inode *lru_head, *lru_tail; /* most / least recently used; protected by lock */
	size_t nfds;                /* O_PATH fds open; protected by lock */
	size_t fd_max;              /* keep at most this many (closable ones); immutable */
	int mount_fd;               /* the backing root, O_RDONLY, for open_by_handle_at; immutable */
	dev_t mount_dev;            /* its st_dev: handles only for objects on it; immutable */
};

/*
 * DR mode: a read-only mount of a replica (dr.c). The root serves the
 * newest snapshot; a watcher thread notices a change, drops what the
 * kernel cached of the root's entries, and only then moves the root.
 * Lock order: fs_dr.lock is a leaf lock like fs_itable.lock (never both
 * held).
 */
struct fs_dr {
	pthread_mutex_t lock;     /* leaf: never held across a journal call or a notify */
	pthread_cond_t wake;      /* the watcher waits on it; signalled to stop it */
	/* The snapshot the root shows, 0 = none; written by the watcher only. Protected by lock. */
	uint64_t snap;
	/* The root is moving: the kernel must not cache entries of it. Protected by lock. */
	bool moving;
	bool stop;                /* protected by lock */
	bool running;             /* the watcher thread exists; owner: fs_mount_run's thread */
	pthread_t thread;
	/* The watcher's own (fs_dr_start before it exists): */
	struct journal_snap *seen; /* the snapshot list the kernel was last told about */
	size_t nseen;
	char **names;             /* the names in the root of `snap` (without .snap) */
	size_t nnames;
	bool names_known;         /* false: they could not be read */
};

struct fs {
	struct journal *j;        /* owned by fs_mount_run */
	struct fs_inode *root;    /* never freed before fs_itable_release */
	struct fs_itable itable;
	bool read_only;           /* -o ro: every mutation fails with EROFS */
	bool dr;                  /* DR mode (implies read_only); immutable */
	bool dont_mask;           /* kernel passes the umask (FUSE_CAP_DONT_MASK granted) */
	bool backing_flush;       /* the backing filesystem reports errors at close (NFS); immutable */
	bool debug;
	struct fuse_session *se;  /* set before serving; immutable then */
	struct fs_dr drs;         /* DR mode only */
};

/*
 * Is `nodeid` a live object (not a snapshot view)? Handlers that work on a
 * file handle alone check this before mutating. In DR mode nothing is
 * live: even the root (FUSE_ROOT_ID) is a view (dr.c).
 */
static inline bool fs_is_live(const struct fs *fs, fuse_ino_t nodeid)
{
	return !fs->dr && nodeid >= FUSE_ROOT_ID && nodeid <= JOURNAL_INO_MAX;
}

/* ---- inode.c ------------------------------------------------------------- */

int fs_itable_init(struct fs_itable *t);
/* Closes every fd and frees every inode (the session is gone). */
void fs_itable_release(struct fs_itable *t);

/*
 * Insert the root (jino 1) with its O_PATH fd `fd` (the table owns it).
 * The root is never forgotten and its fd never closed.
 */
int fs_inode_add_root(struct fs *fs, int fd, struct fs_inode **ret);

/*
 * Take a reference to the live inode `nodeid`: -ESTALE if the kernel
 * asks for an id the table does not hold (or one that is not live: the
 * callers dispatch those to snapdir.c first). Drop it with fs_inode_put().
 */
int fs_inode_get(struct fs *fs, fuse_ino_t nodeid, struct fs_inode **ret);
void fs_inode_put(struct fs *fs, struct fs_inode *ino);

/*
 * Look `name` up in `parent` in the backing tree: open it O_PATH, stat it,
 * map it to its jino (adopting an object made behind our back), and count
 * one kernel lookup. ENOENT is returned as -ENOENT for the caller to cache
 * as a negative entry. `ret_e` is filled for fuse_reply_entry/create.
 */
int fs_do_lookup(struct fs *fs, struct fs_inode *parent, const char *name,
		 struct fuse_entry_param *ret_e);

/*
 * Count one kernel lookup of the object `jino`, whose O_PATH fd `fd` the
 * table takes over (closed at once if `jino` is already present with an
 * fd). `bst` is the object's backing stat. `open`: the object was just
 * opened (fs_inode_released() at its release). For objects just created.
 */
int fs_inode_remember(struct fs *fs, uint64_t jino, int fd, const struct stat *bst, bool open);

/*
 * Open files of an inode keep its O_PATH fd open (an unlinked open file
 * cannot be reopened by handle). The kernel may forget the inode before
 * the release reaches us; then there is nothing left to unpin.
 */
void fs_inode_opened(struct fs *fs, struct fs_inode *ino);
void fs_inode_released(struct fs *fs, fuse_ino_t nodeid);

/*
 * Too many open files: close every closable O_PATH fd (down to a quarter
 * of the cap). True if any was closed, so the caller may retry once.
 */
bool fs_fd_relief(struct fs *fs);

/* Count one more kernel lookup of an inode the caller holds (a new link). */
void fs_inode_add_lookup(struct fs *fs, struct fs_inode *ino);

/* Drop `n` kernel lookups; closes and frees the inode at zero. */
void fs_inode_forget(struct fs *fs, fuse_ino_t nodeid, uint64_t n);

/* fstat an inode, with st_ino set to its jino. */
int fs_inode_stat(const struct fs_inode *ino, struct stat *ret_st);

/*
 * Take the links the state directory adds out of `st`'s st_nlink, which
 * are not the user's: a file whose last link went while a snapshot still
 * sees it keeps its data through a hard link there (docs/SNAPSHOTS.md:
 * .mirrorfs/orphans/<jino>), so fstat of an unlinked open file says 0, as
 * locally; and the state directory's ".." counts in the root's st_nlink,
 * so the root says 2 + the subdirectories a listing shows, as locally.
 */
void fs_stat_hide_state_links(struct fs *fs, const struct fs_inode *ino, struct stat *st);

/* Fill an entry reply for `jino` with attributes `st` (st_ino already jino). */
void fs_fill_entry(struct fuse_entry_param *e, const struct stat *st);

/* ---- helpers shared by the handlers (inode.c) ----------------------------- */

/*
 * Check a name a request wants to create in `parent`: 0, -ENAMETOOLONG,
 * -EINVAL, -EPERM for the state directory's name in the root, or -EEXIST
 * for .snap in the root (it exists, virtually).
 */
int fs_check_new_name(const struct fs_inode *parent, const char *name);
/* Is `name` in `parent` the hidden state directory? */
bool fs_is_state_dir(const struct fs_inode *parent, const char *name);

/*
 * Give the calling worker thread the umask of the request (the thread has
 * its own fs_struct, see fs_thread_umask() in inode.c), so that the backing
 * filesystem applies it, or the parent's default ACL instead, exactly as
 * for a local process.
 */
void fs_apply_umask(struct fs *fs, fuse_req_t req);

/* The journal credentials of a request: the caller's uid and gid. */
void fs_req_cred(fuse_req_t req, struct journal_cred *ret);

/* "/proc/self/fd/N" for an O_PATH fd. */
#define FS_PROC_FD_LEN 32
void fs_proc_path(int fd, char buf[FS_PROC_FD_LEN]);

/* ---- ops_xattr.c ------------------------------------------------------------ */

/* Reads a whole xattr name list like listxattr(2), -errno on failure. */
typedef ssize_t (*fs_xattr_lister)(void *arg, char *buf, size_t size);

/*
 * The name list `list` reads, as the caller of `req` would see it on a
 * local filesystem, for a listxattr of `size` (0: only the length): the
 * kernel leaves the list to the filesystem, which shows trusted.* names
 * only to callers with CAP_SYS_ADMIN, and the daemon sees them all. FUSE
 * tells us the caller's uid, not its capabilities: uid 0 stands for them.
 * Returns the length (-ERANGE if over `size`) and, for size > 0, the
 * names in *ret_buf (the caller frees it).
 */
ssize_t fs_xattr_list(fuse_req_t req, size_t size, fs_xattr_lister list, void *arg,
		      char **ret_buf);

/* ---- snapdir.c: `.snap` and snapshot views ------------------------------ */

#define FS_SNAPDIR_NAME ".snap"
#define FS_SNAPDIR_INO (1ULL << 62)   /* node id and st_ino of .snap */

/*
 * Is `name` in `parent` the virtual .snap directory (in the root)? It
 * shadows a real entry of that name in the backing root.
 */
bool fs_is_snapdir(fuse_ino_t parent, const char *name);

/*
 * The handlers for every node id that is not live (`.snap` and the views
 * below it), and for the lookup of .snap itself. The live handlers call
 * them first; what they do not cover (a mutation, flush, fsync) the live
 * handler answers itself (EROFS, or 0).
 */
void fs_snap_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_snap_op_getattr(fuse_req_t req, fuse_ino_t ino);
void fs_snap_op_readlink(fuse_req_t req, fuse_ino_t ino);
void fs_snap_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_snap_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_snap_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_snap_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi, bool plus);
void fs_snap_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_snap_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_snap_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void fs_snap_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_snap_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi);
void fs_snap_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_snap_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
/*
 * copy_file_range from an open snapshot file (fi_in) into the live file
 * `ino_out` (fd_out): read, then journal_pwrite; may copy less than `len`.
 */
ssize_t fs_snap_copy_out(struct fs *fs, struct fuse_file_info *fi_in, off_t off_in,
			 uint64_t ino_out, int fd_out, off_t off_out, size_t len);

/* ---- dr.c: DR mode, the read-only mount of a replica ---------------------- */

/*
 * Attribute timeout of the DR root and entry timeout of the names in it
 * (negative ones are not cached): the root's node id stays while the
 * snapshot behind it changes. Also how often the newest snapshot is read
 * again.
 */
#define FS_DR_TIMEOUT 1.0

int fs_dr_init(struct fs *fs);
/*
 * Read the newest snapshot, then start the watcher thread (after
 * daemonizing, fs->se set, before serving).
 */
int fs_dr_start(struct fs *fs);
/* Stop the watcher (before the session is destroyed) and free the DR state. */
void fs_dr_release(struct fs *fs);
/*
 * The snapshot the root shows now, 0 if the replica has none yet, and
 * in *ret_cache (if not NULL) whether the kernel may cache entries of the
 * root resolved in it now (not while the root is moving). Never reads the
 * journal; never goes back to an older snapshot.
 */
uint64_t fs_dr_snap(struct fs *fs, bool *ret_cache);
/*
 * May the kernel cache an entry of the root resolved in `snap` (a
 * listing read at opendir)? Only while `snap` is what the root shows.
 */
bool fs_dr_may_cache(struct fs *fs, uint64_t snap);

/* ---- handlers, gathered in mount.c's fs_ops ---------------------------- */

/* mount.c */
void fs_op_init(void *userdata, struct fuse_conn_info *conn);

/* ops_entry.c */
void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void fs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname, unsigned int flags);

/* ops_dir.c */
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_statfs(fuse_req_t req, fuse_ino_t ino);

/* ops_file.c */
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf,
		     off_t off, struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		     struct fuse_file_info *fi);
void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi);
void fs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			   struct fuse_file_info *fi_out, size_t len, int flags);

/* ops_xattr.c */
void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags);
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif /* MIRRORFS_FS_I_H */
