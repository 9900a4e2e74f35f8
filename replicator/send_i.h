/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_SEND_I_H
#define MIRRORFS_SEND_I_H

/* Private to replicator/: the sender's state (send.c, send_data.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/repl.h"

#define STAGING_NAME_MAX 24     /* decimal jino */

/* A set of jinos (open addressing, linear probing). */
struct inoset {
	uint64_t *v;    /* 0 = empty slot (jino 0 does not exist) */
	size_t cap, n;  /* cap: power of two */
};

/*
 * The attributes on_create() read for a created object (not a file sent
 * with its CREATE: struct send_created), which its ATTR entry (after all
 * the data) needs again: keeping them saves a second stat
 * in the snapshot (four queries, an open and an fstat) per object. At most
 * SEND_ATTRS_MAX objects; beyond, ATTR stats again.
 */
#define SEND_ATTRS_MAX (1u << 18)
struct sattr {
	uint64_t ino;           /* 0: empty slot */
	uint64_t size;
	int64_t atime, mtime;
	uint32_t atime_ns, mtime_ns;
	uint32_t mode, uid, gid;
};
struct sattrs {
	struct sattr *v;
	size_t cap, n;          /* cap: power of two */
};

/* A regular file created in place, sent as one group (send_data.c). */
struct send_created {
	struct repl_create c;       /* its CREATE; the name is owned */
	struct stat st;             /* in the snapshot: what its ATTR sends */
};

/* DATA entries a sender reads ahead at most (send_data.c). */
#define SEND_AHEAD_FILES 128

struct send {
	struct journal *j;
	struct repl_writer *w;
	uint64_t from_id, to_id;
	enum journal_diff_kind last_kind;
	bool swept;                 /* objects left in staging after the links handled */
	struct inoset staging;      /* objects in the receiver's staging directory */
	struct sattrs attrs;        /* of created objects, for their ATTR entries */
	uint8_t *buf;               /* REPL_DATA_CHUNK */
	uint64_t resume;            /* K: records up to it are counted, not sent */
	bool failed;                /* the callback failed: message already set */

	const struct repl_send_opts *o;
	struct repl_send_progress prog;
	int64_t next_progress_ns, progress_every_ns;
	uint64_t data_ino;          /* file of the last DATA entry */
	struct send_ahead {         /* DATA entries read ahead, not sent yet (send_data.c) */
		uint64_t ino, off, len;
		struct journal_snapfile *f;
		struct send_created *cf; /* a file created in place (owned) */
	} ahead[SEND_AHEAD_FILES];
	struct inoset inlined;      /* files whose DATA and ATTR went with their CREATE */
	size_t ahead_n;
	uint64_t ahead_bytes;
	struct send_ra *ra;         /* the read-ahead helper; NULL: hints inline */
	struct send_estimate *est;  /* the thread adding up progress totals (send.c) */
	uint64_t data_sent;
	uint64_t files;
};

/* The attributes on_create() kept for `ino` (its stat's st_mode, uid, gid, size, times). */
bool repl_send_attrs_get(const struct send *s, uint64_t ino, struct stat *ret);

/* A writer error: its message becomes the thread's (repl_last_errmsg()). */
int repl_send_wfail(struct send *s, int r);
/* Fail with "MESSAGE: strerror(r)" as the thread's message. */
int repl_send_sfail(struct send *s, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Call the progress callback if it is time (or `final`). */
void repl_send_progress(struct send *s, bool final);

/*
 * JDIFF_DATA: DATA and PUNCH records for the range, queued (and read
 * ahead) until repl_send_data_flush(), which sends the queue in order
 * (and on failure still closes every queued file).
 */
int repl_send_data(struct send *s, const struct journal_diff *d);
/*
 * A regular file created in place, `st` its stat in the snapshot: its
 * CREATE `c`, queued like a DATA entry; the flush sends the CREATE, all
 * its data and its ATTR together (see send.c).
 */
int repl_send_create_file(struct send *s, const struct repl_create *c, const struct stat *st);
int repl_send_data_flush(struct send *s);
/*
 * Start and stop the thread that issues the read-ahead hints of queued
 * DATA entries; without it (it could not start) they are issued inline.
 */
void repl_send_ra_start(struct send *s);
void repl_send_ra_stop(struct send *s);
/* Close what is queued without sending it (the stream failed). */
void repl_send_data_flush_drop(struct send *s);
/* JDIFF_ATTR: SETATTR, then the xattrs that differ from `from`. */
int repl_send_attr(struct send *s, const struct journal_diff *d);

#endif /* MIRRORFS_SEND_I_H */
