/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_MIRROR_H
#define MIRRORFS_MIRROR_H

/*
 * The mount daemon's replicator (replicator/mirror.c, docs/MIRRORING.md):
 * one thread that ships every peer the snapshots it lacks, oldest first,
 * over a session kept open between syncs, backs off on failure and keeps
 * each peer's status in the journal. Part of the replicator module.
 */

#include <stdbool.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/repl.h"

#define REPL_SNAP_PATTERN_DEFAULT "mirror-%Y%m%d-%H%M%S"

struct repl_mirror;

struct repl_mirror_opts {
	int snap_interval_s;        /* take a snapshot this often (0: never) */
	const char *snap_pattern;   /* strftime(3) pattern, UTC; NULL: the default */
	int level;                  /* zstd level (0: 1) */
	bool scan;                  /* compute change sets by scanning (sync --scan) */
	/* progress of a running sync (may be NULL) */
	void (*progress)(void *arg, const char *peer_uuid, const struct repl_send_progress *p);
	void *progress_arg;
};

/* Start the thread. `self_exe` is this program (for file:// peers' `serve`). */
int repl_mirror_start(struct journal *j, const char *self_exe,
		      const struct repl_mirror_opts *o, struct repl_mirror **ret);
/* Look at the peers now (a snapshot was taken, `mirrorfs sync`). Async-signal-safe. */
void repl_mirror_wake(struct repl_mirror *m);
/* Stop the thread and close its sessions. NULL-safe. */
void repl_mirror_stop(struct repl_mirror *m);

/*
 * One pass in the calling thread: bring every unpaused peer (or only
 * `only_uuid`) up to date. For `mirrorfs sync` on an unmounted tree.
 * Returns the first error (each peer's status says why).
 */
int repl_mirror_sync_peers(struct journal *j, const char *only_uuid, const char *self_exe,
			   const struct repl_mirror_opts *o);

/* Open a session to a peer: `serve` on a pipe (file://) or over ssh. */
int repl_mirror_connect(const struct journal_peer *p, const char *self_exe,
			struct repl_transport **ret);

/* A snapshot name from `pattern` (NULL: the default) for now. */
int repl_mirror_snap_name(const char *pattern, char ret[256]);

#endif /* MIRRORFS_MIRROR_H */
