/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_RECV_I_H
#define MIRRORFS_RECV_I_H

/*
 * Private to replicator/: the receiver's state while it applies one stream
 * (recv.c runs the conversation, apply.c turns records into journal
 * mutations on the replica).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mirrorfs/repl.h"
#include "mirrorfs/util.h"

struct journal;

#define RECV_DIR_CACHE 8
/* Names kept for hints (below), at most; past that, objects are found by jino. */
#define RECV_HINT_NAMES_MAX ((size_t)64 << 20)

/*
 * The name this connection last gave an object (its CREATE or RENAME):
 * the DATA and SETATTR records that follow open it there, checked against
 * the journal's inode (journal_open_ino_at()), instead of asking the
 * database for its path. A hint that no longer holds costs one failed
 * open, then the lookup by jino.
 */
struct recv_hint {
	uint64_t parent;
	uint32_t off;               /* of the NUL-terminated name in recv.names */
	bool in_place;              /* created there by this connection, no name changed since */
};

struct recv {
	struct journal *j;          /* the replica's journal (borrowed) */
	char source[REPL_UUID_STRLEN + 1];
	char from[REPL_NAME_MAX + 1];   /* "" for a full stream */
	char to[REPL_NAME_MAX + 1];

	/*
	 * Records up to replay_hi may have been applied before an interruption
	 * (the position is saved in batches): a name that no longer refers to
	 * the record's object means "already done" there, and divergence only
	 * after it.
	 */
	uint64_t replay_hi;
	uint64_t applied;           /* seq of the last applied record */
	uint64_t saved;             /* seq last written with journal_recv_pos_set() */
	uint64_t unsaved_bytes;     /* file data applied after it */
	int64_t saved_ns;
	unsigned save_every;
	int64_t save_every_ns;
	uint64_t count;             /* records applied on this connection */

	int rootfd;                 /* journal_root_fd(), borrowed */
	uint64_t staging_ino;       /* 0: no staging directory yet */
	int staging_fd;
	struct {
		uint64_t ino;
		int fd;
		uint64_t used;
	} dirs[RECV_DIR_CACHE];     /* O_PATH fds of directories by jino, LRU */
	uint64_t tick;
	uint64_t file_ino;          /* the regular file open for writing */
	int file_fd;

	struct u64map hint_of;      /* jino -> index + 1 in hints */
	struct recv_hint *hints;
	size_t nhints, hints_cap;
	char *names;
	size_t names_len, names_cap;

	const struct repl_record *rec;  /* being applied, for messages */
	char msg[640];
};

void repl_recv_init(struct recv *c, struct journal *j);
/* Close every cached fd. */
void repl_recv_release(struct recv *c);

/* Find an existing staging directory (left by an interrupted stream). */
int repl_recv_staging_find(struct recv *c);
/* Remove the staging directory, which must be empty; the root's times are kept. */
int repl_recv_staging_remove(struct recv *c);
/* Does the replica root hold anything but the state and staging directories? */
int repl_recv_root_is_empty(struct recv *c);

/*
 * What `name` in `dirfd` is: 1 with its jino in *ret_ino (0 if the journal
 * does not know the object), 0 if there is no such entry.
 */
int repl_recv_entry_get(struct recv *c, int dirfd, const char *name, uint64_t *ret_ino,
			struct stat *ret_st);
/* The staging directory, created if needed (c->staging_fd, c->staging_ino). */
int repl_recv_staging_get(struct recv *c);

/* Apply one body record; -errno with the reason in c->msg. */
int repl_recv_apply(struct recv *c, const struct repl_record *rec);

int repl_recv_fail(struct recv *c, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* MIRRORFS_RECV_I_H */
