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
#define JOURNAL_SCHEMA_VERSION 2

struct journal;

/* ---- lifecycle ----------------------------------------------------------- */

enum journal_open_flags {
	JOURNAL_OPEN_READONLY = 1 << 0,  /* inspect only: no lock, no writer, no adopt */
	JOURNAL_OPEN_NO_START = 1 << 1,  /* do not start the writer thread yet
					    (call journal_start() after fork/daemonize) */
	JOURNAL_OPEN_CONFIG = 1 << 2,    /* configuration only (peers), while another
					    process holds the journal: no lock, no
					    writer, no adoption or recovery, no objects
					    loaded (snapshots, peers and their status
					    only), and every tree mutation fails with
					    -EROFS */
	JOURNAL_OPEN_BULK = 1 << 3,      /* a bulk loader (the receiver): records nobody
					    waits for are committed in batches of up
					    to 50 ms, not 1 ms - fewer, larger
					    transactions, so each B-tree page is
					    written to the WAL once per batch */
};

/* What journal_close_keep() leaves for the next open of the same tree. */
struct journal_keep;

struct journal_open_opts {
	unsigned flags;
	/* Called now and then during the first-mount adoption scan (may be NULL). */
	void (*progress)(void *arg, uint64_t entries_scanned);
	void *progress_arg;
	/*
	 * Compaction keeps at least this many newest change records (what
	 * `mirrorfs journal` can show), besides what snapshots and peers
	 * need; 0: JOURNAL_HISTORY_KEEP.
	 */
	uint64_t history_keep;
	/*
	 * From journal_close_keep() in this process (may be NULL); taken over
	 * (freed) in every case. A read-write open of the same backing root
	 * that no other process opened for writing since reuses its objects
	 * instead of loading them all.
	 */
	struct journal_keep *keep;
};

#define JOURNAL_HISTORY_KEEP 100000

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
/*
 * journal_close(), but keep the table of objects for the next
 * journal_open() of the same tree in this process (opts.keep): a receiver
 * that opens a big replica for each stream then pays for what the stream
 * changes, not for the size of the tree. *ret_keep is NULL if the journal
 * was read-only or did not close cleanly.
 */
int journal_close_keep(struct journal *j, struct journal_keep **ret_keep);
/* NULL-safe. */
void journal_keep_free(struct journal_keep *k);

/*
 * Fold away now what no snapshot, no peer and the kept history need
 * (compaction; the writer also does it on its own, in steps). The number
 * of rows removed in *ret_removed (may be NULL). -EROFS if read-only.
 */
int journal_compact(struct journal *j, uint64_t *ret_removed);

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
 * On success the change's record is queued for the writer's next group
 * commit when the function returns; the durable dirty mark taken before the
 * syscall already makes the change recoverable after a crash
 * (docs/HACKING.md, "Records are not waited for"). journal_flush(),
 * journal_fsync() and snapshot creation wait for every record queued before.
 * The backing stat of a created object is returned with st_ino replaced by
 * its jino and st_dev left as the backing's.
 */

struct journal_cred {
	uid_t uid;   /* owner of created objects */
	gid_t gid;   /* group of created objects, unless the directory is setgid */
	uint64_t ino;  /* 0: allocate a jino. A replica's receiver passes the
			  source's jino, so object ids match on both sides
			  (-EEXIST if that jino is alive, -ESTALE if it died) */
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
 * bytes actually written (0 if the write failed: a successful prepare keeps
 * the mutation lock until write_done, in the same thread). journal_pwrite()
 * is the three in one.
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

/* ---- snapshots (DESIGN §4, docs/SNAPSHOTS.md) ----------------------------- */

#define JOURNAL_SNAP_ID_BITS 22
#define JOURNAL_SNAP_ID_MAX ((1ULL << JOURNAL_SNAP_ID_BITS) - 1)
#define JOURNAL_CHUNK_SIZE (64 * 1024)

struct journal_snap {
	uint64_t id;               /* 1..JOURNAL_SNAP_ID_MAX, never reused */
	char name[256];
	uint64_t seq;              /* the journal seq at the instant it was taken */
	int64_t created_ns;        /* CLOCK_REALTIME */
	uint64_t exclusive_bytes;  /* bytes deleting it would free (list only) */
	char hold[64];             /* "" or who holds it, e.g. "peer:UUID" */
};

/*
 * Take a snapshot of the whole tree in O(1): a write barrier for the instant
 * it takes to commit one row. Every mutation that returned before is in it,
 * none that starts after. -EEXIST, -EINVAL/-ENAMETOOLONG for bad names,
 * -EROFS on a read-only journal.
 */
int journal_snap_create(struct journal *j, const char *name, struct journal_snap *ret);
/*
 * Call `fn(arg)` after every snapshot this journal creates or deletes has
 * been committed (from the thread that did it, no lock held). The mount
 * daemon wakes its replicator with it. One hook; NULL removes it. Set it
 * before the journal is shared between threads.
 */
void journal_set_snap_hook(struct journal *j, void (*fn)(void *arg), void *arg);

/* -ENOENT if missing, -EBUSY if held. Frees what no other snapshot needs. */
int journal_snap_delete(struct journal *j, const char *name);
/* All snapshots, oldest first; caller frees *ret with free(). */
int journal_snap_list(struct journal *j, bool with_exclusive_bytes,
		      struct journal_snap **ret, size_t *ret_n);
int journal_snap_get(struct journal *j, const char *name, struct journal_snap *ret);
int journal_snap_get_by_id(struct journal *j, uint64_t id, struct journal_snap *ret);
/* Holds keep a snapshot from being deleted or expired. `tag` <= 63 bytes. */
int journal_snap_hold(struct journal *j, const char *name, const char *tag);
int journal_snap_release(struct journal *j, const char *name, const char *tag);

/*
 * Snapshot views: the tree as snapshot `snap_id` saw it. Objects keep their
 * jino; the caller composes view inode numbers. All read-only.
 * -ENOENT when the snapshot does not see the object or name.
 */
int journal_snap_stat(struct journal *j, uint64_t snap_id, uint64_t ino, struct stat *ret);
int journal_snap_lookup(struct journal *j, uint64_t snap_id, uint64_t dir,
			const char *name, uint64_t *ret_ino, struct stat *ret_st);
/*
 * Entries of `dir` in the snapshot, in a stable order, starting after
 * `cookie` (0 = from the start); `cb` gets each entry and the cookie to
 * resume after it, and returns > 0 to stop (buffer full), < 0 on error.
 */
int journal_snap_readdir(struct journal *j, uint64_t snap_id, uint64_t dir, uint64_t cookie,
			 int (*cb)(void *arg, const char *name, uint64_t ino, mode_t type,
				   uint64_t next_cookie),
			 void *arg);
int journal_snap_readlink(struct journal *j, uint64_t snap_id, uint64_t ino,
			  char *buf, size_t size, size_t *ret_len);
/* Like getxattr/listxattr(2): size 0 asks for the length; -ERANGE if too small. */
ssize_t journal_snap_getxattr(struct journal *j, uint64_t snap_id, uint64_t ino,
			      const char *name, void *buf, size_t size);
ssize_t journal_snap_listxattr(struct journal *j, uint64_t snap_id, uint64_t ino,
			       char *buf, size_t size);

/*
 * For the calling thread only, until called again with false (or with
 * another journal): keep the object last opened for a snapshot view open,
 * so that the next stat, xattr or file open of the same object skips the
 * lookup by name (the sender reads each object three times in a row), and
 * up to 64 directories opened on the way to objects, so that opening an
 * object in one of them costs one query and one name, not a walk from the
 * root (snapshot views and journal_open_ino()). The fds pin their inodes:
 * scope it to one stream.
 */
void journal_keep_open(struct journal *j, bool on);

/* An open regular file of a snapshot. */
struct journal_snapfile;
int journal_snapfile_open(struct journal *j, uint64_t snap_id, uint64_t ino,
			  struct journal_snapfile **ret);
/* Its size in the snapshot (what journal_snap_stat() says). */
off_t journal_snapfile_size(const struct journal_snapfile *f);
/* pread semantics: short only at the snapshot's EOF; holes read as zeros. */
ssize_t journal_snapfile_read(struct journal_snapfile *f, void *buf, size_t len, off_t off);
/*
 * A piece of a snapshot file's data: `len` bytes of `fd` at `pos` if
 * fd >= 0, else at `mem`.
 */
struct journal_snapseg {
	int fd;
	off_t pos;
	const void *mem;
	size_t len;
};
#define JOURNAL_SNAPFILE_IO_MAX (1U << 20)
typedef int (*journal_snapseg_fn)(void *arg, const struct journal_snapseg *seg, size_t nseg);
/*
 * journal_snapfile_read() without copying: hands [off, off + len) (at most
 * JOURNAL_SNAPFILE_IO_MAX bytes; short only at EOF) to `reply` as `nseg`
 * segments. The fds are borrowed for the call, and their data stays as the
 * snapshot saw it until `reply` returns (copy-on-write of these chunks
 * waits), so `reply` consumes it then, quickly, and waits for no other
 * thread. Returns what `reply` returned, or -errno if it was not called.
 */
int journal_snapfile_read_segs(struct journal_snapfile *f, size_t len, off_t off,
			       journal_snapseg_fn reply, void *arg);
/*
 * Start reading [off, off + len) of the file (at most 8 MiB) into the page
 * cache in the background (POSIX_FADV_WILLNEED on the backing fds), for a
 * reader that knows what it will read next. Best effort.
 */
void journal_snapfile_willneed(struct journal_snapfile *f, off_t off, off_t len);
/* SEEK_DATA / SEEK_HOLE as the file was; -ENXIO past the end. */
off_t journal_snapfile_seek(struct journal_snapfile *f, off_t off, int whence);
/*
 * May be called while a journal_snapfile_read_segs() that has replied
 * still runs: that call frees the file when it returns.
 */
void journal_snapfile_close(struct journal_snapfile *f);
/* Another reference to `f` (for another thread), dropped by journal_snapfile_close(). */
struct journal_snapfile *journal_snapfile_ref(struct journal_snapfile *f);

/* ---- replication support (DESIGN §5, docs/MIRRORING.md) ------------------- */

/*
 * Object ids a replica allocates for itself (its receiver's staging
 * directory) come from the upper half of the jino space, so they never
 * collide with the source's ids, which the receiver reuses.
 */
#define JOURNAL_LOCAL_INO_BASE (1ULL << (JOURNAL_INO_BITS - 1))
/* The parent id that stands for the receiver's staging directory in a stream. */
#define JOURNAL_STAGING_INO JOURNAL_INO_MAX

/* The journal's identity, a UUID made when it was created (borrowed). */
const char *journal_source_id(struct journal *j);

/*
 * Open a live object by jino: `flags` O_PATH, O_RDONLY or O_RDWR (regular
 * files), O_RDONLY|O_DIRECTORY. -ENOENT if it is not alive.
 */
int journal_open_ino(struct journal *j, uint64_t ino, int flags, int *ret_fd);
/*
 * The same through a name the caller believes is the object's: `name` in
 * `dirfd` opened with `flags` (O_NOFOLLOW added), and kept only if it is
 * the object's backing inode. -ESTALE if the name is gone or is another
 * object (the caller then asks journal_open_ino()), -ENOENT if `ino` is
 * not a live object. Nothing is read from the database.
 */
int journal_open_ino_at(struct journal *j, uint64_t ino, int dirfd, const char *name, int flags,
			int *ret_fd);

enum journal_diff_kind {
	JDIFF_UNLINK = 1,  /* entry alive in `from`, gone in `to` */
	JDIFF_CREATE,      /* object alive in `to`, not in `from` */
	JDIFF_LINK,        /* entry alive in `to`, not in `from` */
	JDIFF_DATA,        /* a range of a regular file that may differ */
	JDIFF_ATTR,        /* attributes/xattrs of an object that may differ */
};

struct journal_diff {
	enum journal_diff_kind kind;
	uint64_t ino;
	uint32_t type;        /* S_IFMT bits of ino */
	uint64_t parent;      /* UNLINK, LINK: the entry's directory; CREATE: see below */
	const char *name;     /* UNLINK, LINK: borrowed, valid during the callback;
				 CREATE: NULL, or the object's first LINK (below) */
	bool survives;        /* UNLINK: ino is still alive in `to` */
	uint64_t off, len;    /* DATA: clipped to the size in `to` (len > 0) */
};

/*
 * The change set from snapshot `from_id` (0: none, a full send) to
 * `to_id`, read from the journal alone (no tree scan), in this order:
 *   1. UNLINK of every entry alive in `from` and not in `to`, deepest
 *      first (depth in `from`), then by (parent, name);
 *   2. CREATE of every object alive in `to` and not in `from`, by jino;
 *      with the (parent, name) of its first entry in LINK order if that
 *      directory exists at this point (not created in the interval, or
 *      created with a smaller jino), so the object can be created in place
 *      (the name is free: its old holder went in 1); journal_diff_scan()
 *      gives no name;
 *   3. LINK of every entry alive in `to` and not in `from`, shallowest
 *      first (depth in `to`: parents before children), then (parent, name);
 *   4. DATA of every changed range of a regular file, merged, by (jino,
 *      offset); a created file's range is [0, size);
 *   5. ATTR of every object alive in `to` whose attributes, xattrs or data
 *      changed, of every directory whose entries changed, and of the root;
 *      by jino.
 * The same pair of snapshots always yields the same sequence (streams are
 * resumable by record number). `cb` returning < 0 stops with that value.
 */
int journal_diff(struct journal *j, uint64_t from_id, uint64_t to_id,
		 int (*cb)(void *arg, const struct journal_diff *d), void *arg);

/*
 * The same change set, in the same order, found by comparing the two
 * snapshot trees instead of reading the change log (`sync --scan`): the
 * walk descends only into directories whose rctime is not older than
 * `from` was (CephFS mirroring's key idea); files that differ in size,
 * mtime or ctime are whole DATA ranges. from_id 0: everything in `to`.
 */
int journal_diff_scan(struct journal *j, uint64_t from_id, uint64_t to_id,
		      int (*cb)(void *arg, const struct journal_diff *d), void *arg);

/*
 * A replica records which source owns it (ceph.mirror.info). claim sets
 * the owner if there is none, or returns -EEXIST with the owner in
 * *ret_owner (may be NULL) if it is another source. owner "" = none.
 */
int journal_replica_owner(struct journal *j, char ret_owner[37]);
int journal_replica_claim(struct journal *j, const char *source_id, char ret_owner[37]);

/*
 * The receiver's durable resume position for the stream (from, to) of
 * `source_id`: the last body record applied. 0 = start over. set with
 * seq 0 forgets it.
 */
int journal_recv_pos_get(struct journal *j, const char *source_id, const char *from,
			 const char *to, uint64_t *ret_seq);
int journal_recv_pos_set(struct journal *j, const char *source_id, const char *from,
			 const char *to, uint64_t seq);

/* ---- mirror peers and their sync state (source side) ---------------------- */

struct journal_peer {
	char uuid[37];
	char url[1024];          /* ssh://user@host[:port]/path or file:///path */
	char site[64];           /* site name ("" if none) */
	char identity[1024];     /* private key file for ssh ("" = none) */
	char host_key[128];      /* pinned host key fingerprint "SHA256:..." ("" = file://) */
	bool keep_deleted;       /* snapshots deleted here are kept on the replica */
	bool paused;
	int64_t added_ns;
};

enum journal_peer_state {
	JOURNAL_PEER_IDLE = 0,
	JOURNAL_PEER_SYNCING,
	JOURNAL_PEER_FAILED,
	JOURNAL_PEER_PAUSED,
};
/* "idle", "syncing", "failed", "paused" */
const char *journal_peer_state_name(enum journal_peer_state s);

struct journal_peer_status {
	enum journal_peer_state state;
	char last_snap[256];         /* newest snapshot complete on the peer ("" none) */
	int64_t last_snap_created_ns;/* its creation time here: lag = now - this */
	int64_t last_sync_ns;        /* when that sync completed */
	uint64_t snaps_synced, snaps_deleted;
	uint64_t last_bytes_raw, last_bytes_wire;   /* of the last sync */
	uint64_t total_bytes_raw, total_bytes_wire;
	int64_t last_duration_ns;
	uint64_t pending;            /* snapshots not yet on the peer */
	char last_error[512];        /* "" if the last attempt succeeded */
	int64_t last_error_ns;
	int64_t next_retry_ns;       /* 0 = none scheduled */
	uint32_t failures;           /* consecutive failures (backoff) */
	uint64_t del_cursor;         /* snapshot deletions up to this seq are handled */
	bool scan_next;              /* compute the next sync by scanning (sync --scan) */
	/* a sync in progress */
	char cur_snap[256];
	uint64_t cur_bytes, cur_total, cur_files;
	int64_t cur_started_ns;
};

/*
 * Peers live in the source's journal. These work on a journal opened
 * normally or with JOURNAL_OPEN_CONFIG (the command line, while the mount
 * daemon holds the journal). add: -EEXIST if the URL is already a peer.
 */
int journal_peer_add(struct journal *j, const struct journal_peer *p);
int journal_peer_remove(struct journal *j, const char *uuid);
int journal_peer_get(struct journal *j, const char *uuid, struct journal_peer *ret);
int journal_peer_list(struct journal *j, struct journal_peer **ret, size_t *ret_n);
int journal_peer_set_paused(struct journal *j, const char *uuid, bool paused);
/* A peer that never synced has a zeroed status with state IDLE. */
int journal_peer_status_get(struct journal *j, const char *uuid, struct journal_peer_status *ret);
int journal_peer_status_set(struct journal *j, const char *uuid,
			    const struct journal_peer_status *st);
/*
 * Snapshots deleted after change `since` (their JOP_SNAP_DELETE records),
 * oldest first: `cb(arg, seq, name)`; a negative return stops with it.
 */
int journal_snap_deletions(struct journal *j, uint64_t since,
			   int (*cb)(void *arg, uint64_t seq, const char *name), void *arg);

/* pid of the process that holds the journal (the mount daemon), 0 if none. */
int journal_holder_pid(const char *backing, pid_t *ret);

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
