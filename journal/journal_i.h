/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_JOURNAL_I_H
#define MIRRORFS_JOURNAL_I_H

/*
 * Private to journal/: struct journal, the in-memory object table, the
 * writer's record, and the prototypes the journal's files share.
 *
 * Threads and locks. Lock order (take left before right, never the
 * reverse; locks not listed next to each other are never nested):
 *
 *   j->mut_lock  >  j->cow_stripe[]  >  j->wconn_lock  >  j->obj_lock  >  j->q.lock
 *   j->pool_lock is a leaf.
 *
 * - mut_lock (rwlock): every public mutation holds it shared for its whole
 *   duration (for data writes: from journal_write_prepare() to
 *   journal_write_done(), in the same thread). The snapshot code takes it
 *   exclusive as a write barrier; journal_check() takes it exclusive too.
 * - cow_stripe[] (rwlocks, cow.c): per-object copy-on-write serialisation.
 * - wconn_lock (mutex): whoever uses the write connection holds it: the
 *   writer thread applying a batch; before journal_start(), the thread that
 *   waits for its records (see writer.c, "inline mode"); and the short
 *   inline transactions of cow.c / snap.c (jtxn_begin()..jtxn_end()).
 * - obj_lock (rwlock): the two hash maps of the object table.
 * - q.lock (mutex): the submission queue, tickets, and jobj.size.
 *
 * Field ownership inside struct jobj is written next to each field:
 * "immutable" (set before the object is published), "q.lock", "writer"
 * (only touched by whoever holds wconn_lock), or atomic.
 *
 * Memory: a record's submission never fails for lack of memory once its
 * syscall has run: names are copied before the syscall, and the queue's
 * growth (amortised, bounded by JOURNAL_QUEUE_MAX) aborts the process on
 * OOM, since a change the journal cannot record must not be acknowledged.
 */

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mirrorfs/journal.h"
#include "cow_i.h"

/* ---- object table (objects.c) ------------------------------------------- */

struct jobj {
	uint64_t ino;               /* immutable */
	uint64_t dev;               /* immutable: backing st_dev */
	uint64_t bino;              /* immutable: backing st_ino */
	struct jobj *next_ino;      /* protected by j->obj_lock */
	struct jobj *next_bino;     /* protected by j->obj_lock */
	atomic_uint refcnt;
	uint32_t type;              /* immutable: S_IFMT bits */
	atomic_bool dead;           /* set once, when the writer applies its death */
	bool transient;             /* immutable: a dead object still open (mut_obj()); never
				       in the maps, never recorded */
	atomic_uint_fast64_t dirty_tag;  /* interval + 1 it is durably dirty in; 0: none */
	int64_t size;               /* protected by j->q.lock: size as of the newest submitted record */
	/* writer: */
	int64_t wsize;              /* size as of the newest applied record (rbytes) */
	uint64_t parent;            /* directories: parent jino (0 for the root) */
	int64_t rctime;             /* directories: stored rstat rctime */
	uint64_t wlast_seq;         /* WRITE row that a following write may extend (0: none) */
	uint64_t wlast_interval;
	int64_t wlast_off, wlast_end;
	uint32_t nlink;             /* writer: live namespace links */
	struct cow_state cow;       /* cow.c */
};

struct objtab {
	struct jobj **by_ino;       /* protected by j->obj_lock */
	struct jobj **by_bino;      /* protected by j->obj_lock */
	size_t nbuckets;            /* power of two; protected by j->obj_lock */
	size_t count;               /* protected by j->obj_lock */
};

/* New object with one reference (the caller's). NULL on OOM. */
struct jobj *obj_new(uint64_t ino, uint64_t dev, uint64_t bino, uint32_t type);
struct jobj *obj_ref(struct jobj *o);
void obj_put(struct jobj *o);
/* Referenced lookups; NULL if unknown. */
struct jobj *obj_get(struct journal *j, uint64_t ino);
struct jobj *obj_get_bino(struct journal *j, uint64_t dev, uint64_t bino);
/*
 * Publish `o` in both maps (the table takes its own reference). If `unique`
 * and a live object with the same (dev, bino) exists, nothing is inserted
 * and that object is returned referenced in *ret_existing (-EEXIST).
 * Otherwise a stale (dev, bino) entry is displaced: the backing filesystem
 * reused the inode number of an object whose death is still queued.
 */
int obj_insert(struct journal *j, struct jobj *o, bool unique, struct jobj **ret_existing);
/* The object died (writer): drop it from the maps and the table's reference. */
void obj_remove(struct journal *j, struct jobj *o);
/* Load every live object from `db` (single-threaded, at open). */
int obj_load(struct journal *j, sqlite3 *db);
/* Set source_ino_max from the rows (at open). */
int obj_load_source_ino_max(struct journal *j, sqlite3 *db);
/*
 * Take over the objects of `from` (a closed journal's, of the same tree,
 * nobody wrote to since), as obj_load() would have loaded them: no dirty
 * marks (the clean close removed them), no write row to extend.
 */
void objtab_adopt(struct journal *j, struct objtab *from);
/* Drop the table's references and free it; it is empty afterwards. */
void objtab_release(struct objtab *t);
void objtab_free(struct journal *j);
/* Call fn for every live object (obj_lock held shared: fn must not lock). */
void obj_foreach(struct journal *j, void (*fn)(void *arg, struct jobj *o), void *arg);

/* ---- sqlite connections (db.c) ------------------------------------------ */

enum jstmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_READ_BEGIN,
	ST_SYNC_FULL, ST_SYNC_NORMAL,
	ST_META_GET, ST_META_SET,
	ST_CHANGE_INSERT, ST_CHANGE_MERGE_WRITE,
	ST_OBJ_INSERT, ST_OBJ_SET_SIZE, ST_OBJ_SET_NLINK, ST_OBJ_DIE,
	ST_NS_INSERT, ST_NS_KILL, ST_NS_KILL_INO, ST_NS_PARENTS, ST_NS_LIVE_COUNT,
	ST_RSTAT_INSERT, ST_RSTAT_ADD, ST_RSTAT_GET, ST_RSTAT_DELETE, ST_RSTAT_SET,
	ST_DIRTY_INSERT,
	ST_CHANGES_SINCE, ST_PATH_AT, ST_NS_CHILDREN, ST_OBJ_GET, ST_JSON_LINE,
	ST_SV_SNAP_SEQ, ST_SV_OBJ, ST_SV_ATTR, ST_SV_NLINK_DIR, ST_SV_NLINK, ST_SV_LOOKUP,
	ST_SV_READDIR, ST_SV_TARGET, ST_SV_CHUNKS, ST_SV_CHUNK_ONE,
	ST_TREE_ALL,
	ST__MAX
};

struct jconn {
	sqlite3 *db;
	sqlite3_stmt *st[ST__MAX];  /* prepared lazily, reset after use */
	/*
	 * j->cow_commits as it was before the open read transaction began
	 * (db_read_begin/db_read_restart), if cow_seen_ok: see db_read_catch_up.
	 */
	const atomic_uint_fast64_t *cow_commits;
	uint64_t cow_seen;
	bool cow_seen_ok;
	struct jconn *next;         /* pool free list; protected by j->pool_lock */
};

/* The one place where sqlite result codes become -errno. */
int journal_err(int rc);
/*
 * Prepared statement `id` of `c`, reset and with bindings cleared, ready
 * to bind. -errno if it cannot be prepared.
 */
int db_stmt(struct jconn *c, enum jstmt id, sqlite3_stmt **ret);
/* Step a statement that returns no row (or whose rows are ignored); resets it. */
int db_step_done(sqlite3_stmt *s);
/* Step a statement without a result (BEGIN, COMMIT, a PRAGMA) to its end. */
int db_exec_stmt(struct jconn *c, enum jstmt id);
/* sqlite3_exec() with errors translated. */
int db_exec(sqlite3 *db, const char *sql);
/* Prepare `sql`, bind `n` int64s (?1..?n), step to the end, finalize. */
int db_exec_i64(sqlite3 *db, const char *sql, int n, const int64_t *v);

/* ---- compact.c ---- */
/* Records after which the writer runs a compaction step. */
#define JOURNAL_COMPACT_EVERY 16384
/*
 * Run compaction steps (at most `max_steps`, 0: until done) in their own
 * transactions (takes wconn_lock); clears compact_due when done.
 */
int compact_run(struct journal *j, unsigned max_steps, uint64_t *ret_removed);
/* A read-only connection from the pool; give it back with db_conn_put(). */
int db_conn_get(struct journal *j, struct jconn **ret);
void db_conn_put(struct journal *j, struct jconn *c);
/*
 * Several queries on `c` read one snapshot in one read transaction: the
 * WAL read lock (a few fcntl calls) is taken once, not per statement.
 * db_conn_put() ends it; db_read_restart() moves it to the newest commit.
 * Best effort: without it every statement is its own transaction.
 */
void db_read_begin(struct jconn *c);
void db_read_restart(struct jconn *c);
/*
 * Make the open read transaction see every copy-on-write preservation
 * counted so far (in any object's cow.gen): restart it only if one was
 * counted since it began (j->cow_commits moved), which is rare, instead of
 * on every look at a snapshot's attributes.
 */
void db_read_catch_up(struct jconn *c);
void db_conn_close(struct jconn *c);
/* Bind a name as a BLOB of its exact bytes (NULL binds NULL). */
int db_bind_name(sqlite3_stmt *s, int idx, const char *name);

/* ---- the writer (writer.c) ---------------------------------------------- */

enum jrec_op_private {
	JREC_DIRTY = 100,           /* durable dirty mark of rec.obj (no change row) */
	JREC_SYNC,                  /* commit this batch with synchronous=FULL */
	JREC_RSTAT_SET,             /* check repair: rstat of rec.obj := off/len/size */
};

enum jrec_flags {
	JREC_DIES = 1 << 0,         /* rec.obj's last link goes: it dies */
	JREC_DIES2 = 1 << 1,        /* rec.obj2 (rename victim) dies */
	JREC_DIES_IF_ORPHAN = 1 << 2,  /* recovery: dies if no live link remains */
	JREC_DIRTY_NEW = 1 << 3,    /* a new object: mark it dirty in the same batch */
	JREC_NEW = 1 << 4,          /* ADOPT/LINK-less creation: insert the objects row */
};

#define JOURNAL_QUEUE_MAX 65536

struct jrec {
	uint16_t op;                /* enum journal_op or enum jrec_op_private */
	uint16_t flags;             /* enum jrec_flags */
	uint32_t mode;              /* fallocate mode, setattr valid mask, st_mode */
	uint64_t ticket;
	int64_t time_ns;
	struct jobj *obj;           /* referenced; the object the record is about */
	struct jobj *obj2;          /* referenced; rename victim / exchange partner */
	uint64_t parent, new_parent;
	char *name, *new_name;      /* owned */
	char *aux;                  /* owned: xattr name, or symlink target */
	int64_t off, len, size;
};

struct jqueue {
	pthread_mutex_t lock;
	pthread_cond_t work;        /* writer waits for records or stop */
	pthread_cond_t done;        /* submitters wait for done_ticket */
	pthread_cond_t space;       /* submitters wait while the queue is full */
	struct jrec *recs;          /* protected by lock */
	size_t n, cap;              /* protected by lock */
	uint64_t last_ticket;       /* protected by lock: newest ticket handed out */
	uint64_t names_ticket;      /* protected by lock: newest ticket of a record that
				       changes the namespace (writer_flush_names()) */
	uint64_t done_ticket;       /* protected by lock: newest ticket applied (or failed) */
	int err;                    /* protected by lock: first batch error, sticky */
	uint64_t err_ticket;        /* protected by lock: first ticket of the failed batch */
	uint64_t err_last;          /* protected by lock: its last ticket (later ones get -EIO) */
	bool stop;                  /* protected by lock */
	bool running;               /* protected by lock: the writer thread exists */
	unsigned waiters;           /* protected by lock: threads in writer_wait() */
};

/* Per-batch rstat accumulators (rstat.c), owned by the writer. */
struct rdelta {
	uint64_t ino;
	struct jobj *o;             /* borrowed; lives at least until the batch ends */
	int64_t d_bytes, d_files, d_subdirs;   /* own (direct) deltas */
	int64_t t_bytes, t_files, t_subdirs;   /* totals to apply to this row */
	int64_t t_direct;           /* rctime to propagate from here */
	int64_t t_set;              /* rctime to store here (0: none) */
};
struct rmap {
	struct rdelta *v;
	size_t n, cap;
	uint32_t *idx;              /* open addressing: index+1 into v; 0 empty */
	size_t mask;
};
struct odelta {
	struct jobj *o;             /* referenced until converted */
	int64_t d_bytes;
	int64_t t;
};
struct omap {
	struct odelta *v;
	size_t n, cap;
	uint32_t *idx;
	size_t mask;
};

struct jstats {
	atomic_uint_fast64_t batches;   /* committed transactions of the writer */
	atomic_uint_fast64_t records;   /* records applied */
};

/* ---- struct journal ---------------------------------------------------- */

struct journal {
	char *backing;              /* immutable */
	int root_fd;                /* immutable: O_PATH|O_DIRECTORY */
	int state_fd;               /* immutable: BACKING/.mirrorfs */
	int lock_fd;                /* immutable: flock'ed, -1 if READONLY */
	uint64_t root_dev;          /* immutable */
	uint64_t root_bino;         /* immutable: backing st_ino of the root */
	int64_t opens;              /* immutable: meta.opens as this open set it (read-write) */
	unsigned flags;             /* immutable: enum journal_open_flags */
	char source_id[37];         /* immutable */

	pthread_rwlock_t mut_lock;  /* see the lock order above */
	pthread_mutex_t wconn_lock;
	pthread_rwlock_t obj_lock;
	pthread_mutex_t pool_lock;

	struct objtab objs;         /* protected by obj_lock */
	atomic_uint_fast64_t next_ino;  /* next jino to hand out */
	/* highest jino below JOURNAL_LOCAL_INO_BASE any object ever had (rows,
	   dead ones included, and the table): a receiver's requested jino above
	   it was never used (mutate.c claim_ino()) */
	atomic_uint_fast64_t source_ino_max;
	atomic_uint_fast64_t interval;  /* current snapshot interval (meta.interval) */
	atomic_uint_fast64_t committed_seq;  /* newest committed change seq */
	atomic_bool compact_due;    /* a compaction step is worth running (compact.c) */
	uint64_t compact_records;   /* records since the last step; writer thread only */
	uint64_t history_keep;      /* newest records compaction keeps; immutable */
	atomic_bool failed;         /* a batch failed: mutations return -EIO (q.err says why) */
	/* free space kept for the journal (space.c) */
	uint64_t space_headroom;             /* immutable after open; 0: no check */
	atomic_int_fast64_t space_free;      /* bytes free at the last check */
	atomic_int_fast64_t space_checked;   /* CLOCK_MONOTONIC ns of that check */

	struct jqueue q;
	pthread_t writer_thread;    /* valid while q.running */

	/* writer (protected by wconn_lock): */
	struct jconn *wconn;        /* the one write connection (NULL if READONLY) */
	uint64_t next_seq;          /* next change seq */
	struct jrec *wbatch;        /* the batch being applied */
	size_t wbatch_cap;
	struct rmap rmap;
	struct omap omap;
	bool sync_full;             /* wconn currently runs synchronous=FULL */

	struct jconn *pool;         /* protected by pool_lock: idle read connections */
	unsigned pool_idle;         /* protected by pool_lock */

	void (*snap_hook)(void *arg);   /* journal_set_snap_hook(); set before sharing */
	void *snap_hook_arg;
	struct jconn *cconn;        /* JOURNAL_OPEN_CONFIG: read-write connection for peers */
	pthread_mutex_t cconn_lock; /* serialises cconn's transactions; a leaf lock */
	struct jstats stats;
	char *db_path;              /* immutable */

	/* copy-on-write and snapshots (cow.c, snap.c): */
	int cow_fd, orphan_fd;      /* immutable after cow_init(); -1 if absent */
	bool cow_inited;            /* immutable */
	pthread_rwlock_t cow_stripe[COW_STRIPES];
	atomic_uint_fast64_t cow_watermark;  /* objects with ino below it are seen by a snapshot */
	/* preservations committed, counted before each object's cow.gen (db_read_catch_up) */
	atomic_uint_fast64_t cow_commits;
};

/* ---- shared prototypes -------------------------------------------------- */

/* cow.c: a short write transaction on the write connection, inline (takes
 * wconn_lock until jtxn_end(), which commits if r >= 0, else rolls back).
 * `durable`: the commit survives a power loss (snapshots, peers, replica
 * state); otherwise only the death of the process, as the records do. */
int jtxn_begin(struct journal *j, bool durable, struct jconn **ret);
int jtxn_end(struct journal *j, struct jconn *c, int r);

/* writer.c */
int writer_init(struct journal *j);
void writer_free(struct journal *j);
int writer_start(struct journal *j);
void writer_stop(struct journal *j);
/* Queue a record (ownership of its names and references moves to the
 * queue, also on failure); *ret_ticket for writer_wait(). */
int writer_submit(struct journal *j, struct jrec *r, uint64_t *ret_ticket);
/* Wait until `ticket` is applied; its batch's error if that failed. */
int writer_wait(struct journal *j, uint64_t ticket);
/* Submit and wait. */
int writer_submit_wait(struct journal *j, struct jrec *r);
/*
 * Wait until every namespace record queued so far (names created, moved or
 * removed) is applied: then the namespace rows, and the paths built from
 * them, are current. Cheaper than journal_flush() while data records keep
 * coming: those are not waited for.
 */
int writer_flush_names(struct journal *j);
/* Coalescing WRITE submission for journal_write_done(); never waits. */
void writer_submit_write(struct journal *j, struct jobj *o, int64_t off, int64_t len);
/* Sticky error of the writer (0 if healthy). */
int writer_error(struct journal *j);
void jrec_release(struct jrec *r);
uint64_t journal_debug_batches(struct journal *j);
uint64_t journal_debug_records(struct journal *j);

/* rstat.c (writer side) */
void rstat_batch_reset(struct journal *j);
void rstat_batch_free(struct journal *j);
/* Object `o` (not a directory) changed size by d_bytes at time t. */
void rstat_obj_delta(struct journal *j, struct jobj *o, int64_t d_bytes, int64_t t);
/* Directory `dir` gains (or loses, negative) these direct children totals. */
void rstat_dir_delta(struct journal *j, uint64_t dir, int64_t d_bytes, int64_t d_files,
		     int64_t d_subdirs, int64_t t);
/* Object-level deltas become directory deltas (before the namespace changes). */
int rstat_flush_objects(struct journal *j);
/* Everything accumulated is written (before the directory tree changes). */
int rstat_flush(struct journal *j);
/* The totals of a directory's subtree as stored (after rstat_flush). */
int rstat_read(struct jconn *c, uint64_t dir, struct journal_rstat *ret);
/* Recompute every directory's rstat from the live namespace (check). */
struct rstat_calc;
int rstat_compute_all(struct journal *j, struct jconn *c, struct rstat_calc **ret);
int rstat_calc_get(struct rstat_calc *rc, uint64_t dir, struct journal_rstat *ret);
void rstat_calc_free(struct rstat_calc *rc);

/* db.c */
/* A fresh database at `path` with the current schema (fast, unsynced
 * pragmas: the caller syncs and renames it into place). */
int db_open_new(const char *path, struct jconn **ret);
/* Switch it to WAL and close it. */
int db_close_new(struct jconn *c);
int db_meta_set_int(struct jconn *c, const char *key, int64_t v);
int db_meta_get_int(struct jconn *c, const char *key, int64_t *ret);
int db_meta_get_text(struct jconn *c, const char *key, char *buf, size_t size);
/* The write connection, made now if a NO_START open closed it; wconn_lock held. */
int db_wconn_ensure(struct journal *j);
/* synchronous=FULL or NORMAL for the write connection's commits; wconn_lock held. */
int db_wconn_sync(struct journal *j, bool full);
int db_meta_set_text(struct jconn *c, const char *key, const char *v);

/* recover.c */
/* Build a fresh journal.db for an existing tree (first open). */
int recover_create(struct journal *j, const char *path,
		   const struct journal_open_opts *opts);
/* Reconcile the objects marked dirty with the backing tree (unclean close). */
int recover_dirty(struct journal *j);
/* Adopt `name` in directory `dir` (and its subtree if it is a directory). */
int recover_adopt_tree(struct journal *j, struct jobj *dir, int dirfd,
		       const char *name, const struct stat *st, uint64_t *ret_ino,
		       uint64_t *ret_ticket);
/* Record the removal of entry (dir, name) -> o and of everything below it. */
int recover_remove_tree(struct journal *j, struct jobj *dir, const char *name,
			struct jobj *o, uint64_t *ret_ticket);
/* Record a regular file (or other object) as wholly changed. */
int recover_touch(struct journal *j, struct jobj *o, const struct stat *st,
		  uint64_t *ret_ticket);
/* A live name -> ino list of a directory from the journal. */
struct nsent {
	char *name;
	uint64_t ino;
};
int ns_children(struct journal *j, uint64_t dir, struct nsent **ret, size_t *ret_n);
void nsents_free(struct nsent *v, size_t n);
/* The backing entries of a directory fd, sorted; .mirrorfs skipped at root. */
int backing_children(struct journal *j, int dirfd, bool is_root, char ***ret, size_t *ret_n);
void names_free(char **v, size_t n);
/* Open the live path of an object with `flags`; -ESTALE unless (dev, bino) match. */
int open_obj(struct journal *j, struct jobj *o, int flags, int *ret_fd);
int open_obj_dir(struct journal *j, struct jobj *o, int *ret_fd);

/* space.c */
/* Compute the headroom for the filesystem of the state directory (at open). */
void space_init(struct journal *j);
/*
 * -ENOSPC if a mutation needing about `need` more bytes would eat into
 * the headroom kept for the journal; cheap (cached) while far from full.
 */
int space_check(struct journal *j, uint64_t need);

/* mutate.c */
/* Durable dirty mark (fast path: one atomic load). */
int mut_mark_dirty(struct journal *j, struct jobj *o);

/* snapview.c */
/* The seq of snapshot `snap_id` (-ENOENT if there is none). */
int sv_snap_seq(struct jconn *c, uint64_t snap_id, uint64_t *ret);
/* An object's row, alive or not (-ENOENT if there is none). */
struct objrow {
	uint32_t type;
	uint64_t dev, bino;
	uint64_t born_seq, died_seq;   /* died_seq 0: alive */
};
int sv_obj_row(struct jconn *c, uint64_t ino, struct objrow *ret);

/* changes.c */
/* Live (seq == UINT64_MAX) or historical path of an object into *ret (malloc'd). */
int changes_path_at(struct jconn *c, uint64_t ino, uint64_t seq, char **ret);
/* One step of it: the (parent, name) of `ino` as of `seq`; -ENOENT if it has none. */
int changes_name_at(struct jconn *c, uint64_t ino, uint64_t seq, uint64_t *ret_parent,
		    char name[NAME_MAX + 1], size_t *ret_len);

/* opencache.c (see journal_keep_open()) */
/*
 * openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC), kept only if it is
 * backing inode (dev, bino): 0, openat()'s -errno, or -ESTALE.
 */
int oc_open_backing_at(int dfd, const char *name, int flags, uint64_t dev, uint64_t bino,
		       int *ret_fd);
/*
 * Open object `ino` by its current name with `flags` (O_NOFOLLOW added),
 * checked to be backing inode (dev, bino): 0, a path error, -errno of
 * openat(), or -ESTALE if the name leads to another inode. With ret_fd
 * NULL it is only stat'ed (into *st), not opened.
 */
int oc_open_current(struct journal *j, struct jconn *c, uint64_t ino, uint64_t dev,
		    uint64_t bino, int flags, int *ret_fd, struct stat *st);
/*
 * The kept last object `ino` opened anew with `flags` (or, with ret_fd
 * NULL, stat'ed into *st): 1, or 0 if not kept.
 */
int oc_last_open(struct journal *j, uint64_t ino, uint32_t type, int flags, int *ret_fd,
		 struct stat *st);
/* Keep a duplicate of `fd` as object `ino` (if the thread asked to keep). */
void oc_last_keep(struct journal *j, uint64_t ino, int fd);

#endif /* MIRRORFS_JOURNAL_I_H */
