/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_CLI_MIRROR_I_H
#define MIRRORFS_CLI_MIRROR_I_H

/*
 * Private to cli/: what the mirroring commands (peer, sync, status, pause,
 * resume, and the mount daemon's replicator hooks) share. mirror.c.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "mirrorfs/journal.h"

/* A mirrored tree as a command sees it. */
struct cli_tree {
	char *arg;          /* as the user wrote it (borrowed) */
	char *backing;      /* absolute */
	char *mountpoint;   /* absolute, NULL if not mounted */
	pid_t daemon;       /* the process holding the journal, 0 if none */
	struct journal *j;
};

enum cli_tree_access {
	CLI_TREE_READ,      /* status, lists: never blocks a running daemon */
	CLI_TREE_CONFIG,    /* peers: a configuration open if a daemon holds it */
	CLI_TREE_SYNC,      /* sync: the tree itself if no daemon holds it */
};

/*
 * Resolve MOUNTPOINT|BACKING and open its journal for `access`. On failure
 * prints "mirrorfs: cannot VERB 'ARG': why" and returns CLI_EXIT_FAILURE.
 */
int cli_tree_open(const char *arg, enum cli_tree_access access, const char *verb,
		  struct cli_tree *ret);
/* Close the journal (reporting a failure) and free. Returns `exit_code` or 1. */
int cli_tree_close(struct cli_tree *t, int exit_code);

/* Tell the mount daemon to look at its peers now (SIGUSR1). */
void cli_tree_wake(const struct cli_tree *t);

/* This program's absolute path (for `serve` of file:// peers). Static buffer. */
const char *cli_self_exe(void);

/* "12.3 MiB" */
void cli_format_bytes(uint64_t n, char *buf, size_t size);

/* ---- the mount daemon (mirror.c) ---------------------------------------- */

struct cli_mount_mirror {
	int snap_interval_s;
	const char *snap_pattern;
	struct repl_mirror *m;
};
/* fs_mount_opts.on_start / on_stop: the replicator thread and SIGUSR1. */
int cli_mirror_on_start(void *arg, struct journal *j);
void cli_mirror_on_stop(void *arg);

#endif /* MIRRORFS_CLI_MIRROR_I_H */
