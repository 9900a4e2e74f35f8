/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_JOURNAL_H
#define MIRRORFS_JOURNAL_H

/*
 * The journal: the single source of truth about what changed and when.
 *
 * It owns BACKING/.mirrorfs/journal.db (sqlite, WAL) and, through the
 * mutation API below, every change made to the backing directory: a
 * mutation is one function that does (1) the durable dirty mark /
 * copy-on-write preservation, (2) the backing-filesystem syscall, (3) the
 * journal record — in that order. The FUSE layer (fs/) and the replica
 * receiver (replicator/) both change the tree only through these functions.
 *
 * Identity: every object (file, directory, symlink, special file) has a
 * mirrorfs inode number ("jino"), assigned at creation, never reused,
 * 1 <= jino <= JOURNAL_INO_MAX. The root of the tree is JOURNAL_ROOT_INO.
 * The kernel sees jino as st_ino and as the FUSE node id.
 *
 * Threads: a journal has one writer thread (group commit) and a small pool
 * of read-only sqlite connections. Every function here is thread-safe
 * unless it says otherwise. Only journal/ includes sqlite3.h.
 *
 * Errors: functions return >= 0 on success and -errno on failure; ret_*
 * outputs are untouched on failure. Special codes from journal_open():
 *   -EPROTONOSUPPORT  journal.db has a newer schema than this program
 *   -EUCLEAN          journal.db is corrupt (never overwritten)
 *   -EBUSY            the backing directory is in use by another process
 *   -EROFS            state directory not writable
 * journal_strerror() turns any of these into a phrase for a user message.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define JOURNAL_ROOT_INO 1ULL
#define JOURNAL_INO_BITS 40
#define JOURNAL_INO_MAX ((1ULL << JOURNAL_INO_BITS) - 1)
#define JOURNAL_STATE_DIR ".mirrorfs"
#define JOURNAL_DB_NAME "journal.db"
#define JOURNAL_SCHEMA_VERSION 1

struct journal;

/* ---- lifecycle ----------------------------------------------------------- */

enum journal_open_flags {
	JOURNAL_OPEN_READONLY = 1 << 0,  /* inspect only: no lock, no writer, no adopt */
	JOURNAL_OPEN_NO_START = 1 << 1,  /* do not start the writer thread yet
					    (call journal_start() after fork/daemonize) */
};

struct journal_open_opts {
	unsigned flags;
	/* Called now and then during the first-mount adoption scan (may be NULL). */
	void (*progress)(void *arg, uint64_t entries_scanned);
	void *progress_arg;
};

/*
 * Open (creating on first use) the journal of the backing directory
 * `backing` (an absolute path to an existing directory). The first open
 * adopts the existing tree into the namespace with one scan. After an
 * unclean shutdown, open recovers: every object marked dirty in the current
 * interval is reconciled with the backing tree (lost entries are recorded,
 * files are recorded as wholly changed). Takes an exclusive lock on the
 * state directory (-EBUSY if another process holds it) unless READONLY.
 */
int journal_open(const char *backing, const struct journal_open_opts *opts,
		 struct journal **ret);
/* Start the writer thread (only needed after JOURNAL_OPEN_NO_START). */
int journal_start(struct journal *j);
/*
 * Flush every pending record, mark the journal cleanly closed, release the
 * lock and free everything. NULL-safe. Returns the first error seen while
 * flushing (the journal is freed regardless).
 */
int journal_close(struct journal *j);

/* Phrase for a journal error code, e.g. "journal is corrupt". */
const char *journal_strerror(int r);

/* O_PATH|O_DIRECTORY fd of the backing root, owned by the journal (borrowed). */
int journal_root_fd(struct journal *j);
/* The backing directory path (borrowed). */
const char *journal_backing_path(struct journal *j);

/* ---- identity ------------------------------------------------------------ */

/* Map a backing object (st_dev, st_ino) to its jino. -ENOENT if unknown. */
int journal_ino_find(struct journal *j, const struct stat *backing_st, uint64_t *ret_ino);

/*
 * An entry that exists in the backing tree but not in the journal (made
 * behind the mount's back) is adopted: assigned a jino and recorded as
 * created. `st` is its backing stat. Returns the jino in *ret_ino.
 */
int journal_adopt(struct journal *j, uint64_t dir, const char *name,
		  const struct stat *st, uint64_t *ret_ino);

/* ---- mutations ------------------------------------------------------------
 * `dirfd` is an fd (O_PATH is fine) of the backing directory whose jino is
 * `dir`. `fd` of an object may be O_PATH (then the function goes through
 * /proc/self/fd/N where the syscall needs it) or a regular open fd.
 * On success the change is committed to the journal before the function
 * returns, except journal_write_done() (see below).
 * The backing stat of a created object is returned with st_ino replaced by
 * its jino and st_dev left as the backing's.
 */

struct journal_cred {
	uid_t uid;   /* owner of created objects */
	gid_t gid;   /* group of created objects, unless the directory is setgid */
};

/*
 * Create a non-regular object or an empty regular file: `mode` carries the
 * type (S_IFDIR, S_IFLNK with `link_target`, S_IFREG, S_IFIFO, S_IFSOCK,
 * S_IFCHR, S_IFBLK with `rdev`). Ownership follows `cred` (setgid
 * directories pass their group on, as on a local filesystem).
 */
int journal_mknod(struct journal *j, const struct journal_cred *cred,
		  int dirfd, uint64_t dir, const char *name, mode_t mode,
		  dev_t rdev, const char *link_target, struct stat *ret_st);

/*
 * open(O_CREAT | flags) of `name` in `dir`, returning an open fd. If the file
 * was created it is recorded as a create; if it existed and O_TRUNC was
 * given with a non-zero size, it is recorded as a truncate to 0.
 * O_EXCL semantics are the backing filesystem's.
 */
int journal_create(struct journal *j, const struct journal_cred *cred,
		   int dirfd, uint64_t dir, const char *name, int flags,
		   mode_t mode, int *ret_fd, struct stat *ret_st);

/* Open an existing object by fd (O_PATH) with `flags`; O_TRUNC is recorded. */
int journal_open_fd(struct journal *j, int fd, uint64_t ino, int flags, int *ret_fd);

int journal_link(struct journal *j, int fd, uint64_t ino, int newdirfd,
		 uint64_t newdir, const char *newname, struct stat *ret_st);
int journal_unlink(struct journal *j, int dirfd, uint64_t dir, const char *name);
int journal_rmdir(struct journal *j, int dirfd, uint64_t dir, const char *name);
/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (RENAME_WHITEOUT: -EINVAL). */
int journal_rename(struct journal *j, int olddirfd, uint64_t olddir,
		   const char *oldname, int newdirfd, uint64_t newdir,
		   const char *newname, unsigned flags);

enum journal_attr_valid {
	JOURNAL_ATTR_MODE = 1 << 0,
	JOURNAL_ATTR_UID = 1 << 1,
	JOURNAL_ATTR_GID = 1 << 2,
	JOURNAL_ATTR_SIZE = 1 << 3,
	JOURNAL_ATTR_ATIME = 1 << 4,   /* atime.tv_nsec may be UTIME_NOW */
	JOURNAL_ATTR_MTIME = 1 << 5,   /* mtime.tv_nsec may be UTIME_NOW */
	JOURNAL_ATTR_CTIME = 1 << 6,   /* ignored by the backing fs; accepted */
};

struct journal_attr {
	unsigned valid;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	off_t size;
	struct timespec atime, mtime;
};

/* `fd` may be O_PATH; `wfd` >= 0 is an fd open for writing (ftruncate), else -1. */
int journal_setattr(struct journal *j, int fd, int wfd, uint64_t ino,
		    const struct journal_attr *attr, struct stat *ret_st);

/*
 * Data writes are split so the FUSE layer can splice: call
 * journal_write_prepare() before writing [off, off+len) to `fd` (it makes the
 * first write of an interval durable as a dirty mark, and later preserves
 * chunks for snapshots), then the write, then journal_write_done() with the
 * bytes actually written. write_done does not wait for the commit (group
 * commit); journal_fsync() does. journal_pwrite() is the three in one.
 */
int journal_write_prepare(struct journal *j, uint64_t ino, int fd, off_t off, size_t len);
void journal_write_done(struct journal *j, uint64_t ino, int fd, off_t off, size_t written);
ssize_t journal_pwrite(struct journal *j, uint64_t ino, int fd, const void *buf,
		       size_t len, off_t off);

/* fallocate(2) with any mode the backing fs supports, recorded by mode. */
int journal_fallocate(struct journal *j, uint64_t ino, int fd, int mode, off_t off, off_t len);

/* copy_file_range(2) into `fd_out`; the destination range is recorded as written. */
ssize_t journal_copy_file_range(struct journal *j, int fd_in, off_t off_in,
				uint64_t ino_out, int fd_out, off_t off_out,
				size_t len, unsigned flags);

/* Extended attributes (user.*, trusted.*, security.*, system.posix_acl_*). */
int journal_setxattr(struct journal *j, int fd, uint64_t ino, const char *name,
		     const void *value, size_t size, int flags);
int journal_removexattr(struct journal *j, int fd, uint64_t ino, const char *name);

/*
 * fsync/fdatasync `fd` (if >= 0) and make every journal record of `ino`
 * (and all before it) durable on disk.
 */
int journal_fsync(struct journal *j, uint64_t ino, int fd, bool datasync);

/* Wait until every record submitted so far is committed (not necessarily synced). */
int journal_flush(struct journal *j);

/* ---- recursive stats ----------------------------------------------------- */

/*
 * CephFS-style recursive stats of a directory. Every link counts (a file
 * with two links in a subtree counts twice, like `du -l`); rctime is the
 * newest change time of anything below (or of the directory itself) and
 * propagates through every parent of a hard-linked file.
 */
struct journal_rstat {
	struct timespec rctime;
	uint64_t rbytes;     /* sum of st_size of regular files below */
	uint64_t rfiles;     /* non-directories below */
	uint64_t rsubdirs;   /* directories below (not counting itself) */
};
/* Flushes pending records first, so a change that returned is reflected. */
int journal_rstat_get(struct journal *j, uint64_t dir, struct journal_rstat *ret);

/* ---- reading the change log ---------------------------------------------- */

enum journal_op {
	JOP_CREATE = 1, JOP_MKDIR, JOP_SYMLINK, JOP_MKNOD, JOP_LINK, JOP_UNLINK,
	JOP_RMDIR, JOP_RENAME, JOP_EXCHANGE, JOP_SETATTR, JOP_WRITE,
	JOP_TRUNCATE, JOP_FALLOCATE, JOP_PUNCH, JOP_SETXATTR, JOP_REMOVEXATTR,
	JOP_SNAP_CREATE, JOP_SNAP_DELETE, JOP_ADOPT,
};
/* "create", "mkdir", ... as printed by `mirrorfs journal`. */
const char *journal_op_name(enum journal_op op);

struct journal_change {
	uint64_t seq;
	int64_t time_ns;
	enum journal_op op;
	uint64_t ino;
	uint64_t parent;          /* namespace ops: directory of `name` */
	const char *name;         /* borrowed, valid during the callback */
	uint64_t new_parent;      /* rename/exchange/link target */
	const char *new_name;
	const char *path;         /* full path (from the root, "/a/b") as of the change */
	const char *new_path;
	uint64_t offset, length;  /* write/punch/fallocate/truncate (length = new size) */
	const char *xattr_name;
};

/* Calls `cb` for each change with seq > since, in seq order; stops on cb < 0. */
int journal_changes(struct journal *j, uint64_t since,
		    int (*cb)(void *arg, const struct journal_change *c), void *arg);

/*
 * The same, as one JSON object per line written to `out_fd` (keys: seq,
 * time, op, ino, path, and new_path, offset, length, xattr where they
 * apply). Built with sqlite's JSON functions. Names that are not valid
 * UTF-8 appear with each bad byte as U+FFFD, and the exact bytes as
 * hex in path_hex / new_path_hex.
 */
int journal_changes_json(struct journal *j, uint64_t since, int out_fd);

/* Highest committed seq. */
uint64_t journal_seq(struct journal *j);

/* ---- check --------------------------------------------------------------- */

enum journal_drift_kind {
	JOURNAL_DRIFT_MISSING = 1,  /* in the journal, not in the backing tree */
	JOURNAL_DRIFT_UNKNOWN,      /* in the backing tree, not in the journal */
	JOURNAL_DRIFT_TYPE,         /* same name, different object or type */
	JOURNAL_DRIFT_SIZE,         /* regular file size differs */
	JOURNAL_DRIFT_RSTAT,        /* stored recursive stats differ from the tree */
};
struct journal_drift {
	enum journal_drift_kind kind;
	const char *path;     /* borrowed */
	const char *detail;   /* borrowed, human readable */
};
/*
 * Compare the journal's live namespace, object sizes and rstats with the
 * backing tree; call `cb` for each difference. With `repair`, record every
 * difference as changes so the journal matches the tree afterwards.
 * Returns the number of differences found (>= 0) or -errno.
 */
int journal_check(struct journal *j, bool repair,
		  void (*cb)(void *arg, const struct journal_drift *d), void *arg);

#endif /* MIRRORFS_JOURNAL_H */
