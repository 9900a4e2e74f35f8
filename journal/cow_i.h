/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_JOURNAL_COW_I_H
#define MIRRORFS_JOURNAL_COW_I_H

/*
 * Copy-on-write hooks, private to the journal module (docs/SNAPSHOTS.md).
 * Every mutation in mutate.c calls the matching hook after taking
 * j->mut_lock (shared) and before its backing syscall. A hook preserves, for
 * the snapshots that still see the object, whatever the syscall is about to
 * destroy: old chunk contents, old attributes and xattrs, or the whole
 * object when its last link goes. When no snapshot sees the object the
 * hooks return 0 at once (one atomic load).
 *
 * A hook that fails (e.g. -ENOSPC while copying) leaves nothing
 * half-preserved, and the mutation must then fail with that error without
 * touching the backing tree.
 *
 * Lock order: j->mut_lock > j->cow_stripe[] > j->wconn_lock (journal_i.h).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct journal;
struct jobj;
struct jconn;

#define COW_STRIPES 64
#define COW_XATTR_MAX (256 * 1024)   /* all xattrs of one object, preserved */

/* Per-object copy-on-write state, embedded in struct jobj (cow.c owns it). */
struct cow_state {
	atomic_uint_fast64_t attr_tag; /* interval + 1 whose attrs are preserved; 0: none */
	atomic_uint_fast64_t gen;      /* bumped after each preservation (snapshot readers) */
	uint64_t data_tag;             /* stripe lock: interval + 1 the bitmap is for */
	uint64_t *chunk_bits;          /* stripe lock: chunks preserved in that interval */
	size_t chunk_words;            /* stripe lock */
	uint64_t next_chunk;           /* stripe lock: chunk after the last preservation */
	/* stripe lock: intervals whose store file has copies not yet fsynced */
	uint64_t unsynced[4];
	unsigned nunsynced;
	bool unsynced_more;            /* more intervals than that: ask the table */
	uint64_t copies;               /* stripe lock: preservations so far */
};

int cow_before_write(struct journal *j, struct jobj *o, int fd, off_t off, off_t len);
int cow_before_truncate(struct journal *j, struct jobj *o, int fd, off_t new_size);
int cow_before_fallocate(struct journal *j, struct jobj *o, int fd, int mode, off_t off, off_t len);
/* Attributes or xattrs of `o` (file or directory) are about to change. */
int cow_before_attr(struct journal *j, struct jobj *o, int fd);
/*
 * `o` is about to lose the link `name` in `dirfd`; `nlink` is its current
 * link count. Returns 1 if it hard-linked the file into the orphan store
 * (so the file's st_nlink counts that link from now on), else 0, or -errno.
 */
int cow_before_unlink(struct journal *j, struct jobj *o, int dirfd, const char *name, nlink_t nlink);
/*
 * After an unclean shutdown (journal open, single-threaded): give back the
 * store space that no row names - copies written but never committed,
 * rows deleted but their data never punched, orphan links never recorded
 * or whose row is gone. Best effort: logs what it cannot do, returns 0.
 */
int cow_sweep(struct journal *j);
/* Free the cow_state of an object being dropped from memory. */
void cow_state_release(struct cow_state *c);
/*
 * Make the preserved copies of `o` durable (fdatasync of its store files
 * with copies since the last call): an fsync of the live file runs this
 * first, so that a power loss cannot keep the overwrite and lose the old
 * data a snapshot reads. 1 if there were copies to sync (their rows, only
 * committed against the death of the process, must then be made durable
 * too before the file is synced), 0 if none, or -errno.
 */
int cow_sync(struct journal *j, struct jobj *o);

/* ---- used by snap.c / snapview.c ---------------------------------------- */

/* Open state: the store directories and the stripe locks. */
int cow_init(struct journal *j);
void cow_free(struct journal *j);
/* Recompute which objects the newest existing snapshot sees (after open,
 * snapshot create/delete). Caller holds mut_lock exclusive or is single-threaded. */
int cow_refresh_watermark(struct journal *j, struct jconn *c);
pthread_rwlock_t *cow_stripe(struct journal *j, uint64_t ino);
/* Free the preserved data that no remaining snapshot needs, after snapshot
 * `seq` was deleted (inside the caller's write transaction on `c`); the store
 * files are punched after the commit via the returned list. */
struct cow_garbage;
int cow_collect(struct journal *j, struct jconn *c, uint64_t seq, bool dry_run,
		uint64_t *ret_bytes, struct cow_garbage **ret);
void cow_garbage_free_data(struct journal *j, struct cow_garbage *g);

/* Serialized xattrs: repeated { u32 name_len, name bytes, u32 value_len, value }. */
int cow_read_xattrs(int fd, char **ret, size_t *ret_len);
/* "/proc/self/fd/N" */
void cow_procpath(char buf[64], int fd);
/* The name of the store file of `ino`'s copies made in `interval`, in j->cow_fd. */
#define COW_STORE_NAME_MAX 48
void cow_store_name(char buf[COW_STORE_NAME_MAX], uint64_t ino, uint64_t interval);

#endif /* MIRRORFS_JOURNAL_COW_I_H */
