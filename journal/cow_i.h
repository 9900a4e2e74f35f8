/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_JOURNAL_COW_I_H
#define MIRRORFS_JOURNAL_COW_I_H

/*
 * Copy-on-write hooks, private to the journal module. Every mutation in
 * mutate.c calls the matching hook after taking j->mut_lock (shared) and
 * before its backing syscall. A hook preserves, for the snapshots that
 * still see the object, whatever the syscall is about to destroy: old
 * chunk contents, old attributes and xattrs, or the whole object when its
 * last link goes. When no snapshot sees the object the hooks return 0 at
 * once (one comparison, no lock).
 *
 * A hook that fails (e.g. -ENOSPC while copying) must leave nothing
 * half-preserved, and the mutation must then fail with that error without
 * touching the backing tree.
 */

#include <stdint.h>
#include <sys/types.h>

struct journal;
struct jobj;

/* Per-object copy-on-write state, embedded in struct jobj (cow.c owns it). */
struct cow_state {
	uint64_t attr_interval;   /* interval whose attrs are preserved; protected by jobj lock */
	uint64_t data_interval;   /* interval the bitmap below belongs to */
	uint64_t *chunk_bits;     /* chunks preserved in data_interval (malloc'd) */
	size_t chunk_words;
};

int cow_before_write(struct journal *j, struct jobj *o, int fd, off_t off, off_t len);
int cow_before_truncate(struct journal *j, struct jobj *o, int fd, off_t new_size);
int cow_before_fallocate(struct journal *j, struct jobj *o, int fd, int mode, off_t off, off_t len);
/* Attributes or xattrs of `o` (file or directory) are about to change. */
int cow_before_attr(struct journal *j, struct jobj *o, int fd);
/* `o` is about to lose the link `name` in `dirfd`; `nlink` is its current link count. */
int cow_before_unlink(struct journal *j, struct jobj *o, int dirfd, const char *name, nlink_t nlink);
/* Free the cow_state of an object being dropped from memory. */
void cow_state_release(struct cow_state *c);

#endif /* MIRRORFS_JOURNAL_COW_I_H */
