/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_FS_H
#define MIRRORFS_FS_H

#include <stdbool.h>

struct journal;

/*
 * The FUSE layer. fs_mount_run() does the whole life of a mount: validates
 * the arguments, opens the journal of `backing` (adopting the tree on first
 * use, printing progress on a terminal), mounts `mountpoint`, daemonizes
 * unless `foreground`, serves requests until unmounted or signalled, then
 * closes the journal cleanly. Errors that happen before daemonizing are
 * printed to stderr as one line "mirrorfs: cannot mount 'X': why" and
 * returned.
 *
 * A replica (its journal has an owner, journal_replica_owner()) refuses a
 * read-write mount; a read-only mount of it is a DR mount: the root shows
 * the replica's newest snapshot and follows newer ones, .snap lists them
 * all, the journal is opened read-only (no lock: the receiver keeps
 * working), and on_start/on_stop are not called (see fs/dr.c).
 *
 * Returns 0 after a clean unmount, 1 on failure, 2 on bad usage.
 */
struct fs_mount_opts {
	const char *backing;      /* backing directory (any path; resolved) */
	const char *mountpoint;   /* mount point (any path; resolved) */
	bool foreground;          /* -f */
	bool debug;               /* -d: FUSE debug output, implies foreground */
	bool read_only;           /* -o ro / --read-only */
	const char *fuse_opts;    /* -o list, comma separated, may be NULL */
	/*
	 * Called in the serving process once the journal runs (after
	 * daemonizing: threads started here survive), and before the journal
	 * closes. The command line starts and stops the replicator here, so
	 * this module never touches the network. on_start failing ends the mount.
	 * Neither is called for a DR mount (its journal is read-only).
	 */
	int (*on_start)(void *arg, struct journal *j);
	void (*on_stop)(void *arg);
	void *hook_arg;
};

int fs_mount_run(const struct fs_mount_opts *opts);

/*
 * The virtual extended attribute of the root of every mount (DR ones too)
 * that holds the pid of the daemon serving it, in decimal: what `mirrorfs
 * umount` waits for.
 */
#define FS_MOUNT_PID_XATTR "mirrorfs.mount.pid"

#endif /* MIRRORFS_FS_H */
