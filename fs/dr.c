/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DR mode: `mirrorfs mount --read-only REPLICA MNT` of a replica, on the
 * replica's host. The root shows the newest snapshot of the replica (only
 * ever a complete one: the receiver applies a stream to the live tree,
 * which this mount never shows, and then snapshots), MNT/.snap lists every
 * snapshot, everything is read-only. The receiver (`mirrorfs serve`,
 * another process) keeps adding and deleting snapshots while we are
 * mounted, so the journal is opened JOURNAL_OPEN_READONLY (no lock, no
 * writer: the receiver must be able to take the journal at any time) and
 * the snapshot behind the root is read again now and then.
 *
 * How a new snapshot reaches the kernel (the root's node id, FUSE_ROOT_ID,
 * stays; the ids of the names in it encode their snapshot, snapdir.c):
 *  - fs_dr_snap() caches the newest snapshot id for FS_DR_TIMEOUT; the root's
 *    attributes, names and negative lookups time out as fast, and its
 *    listing is never cached. That alone bounds the delay by about twice
 *    FS_DR_TIMEOUT.
 *  - A watcher thread reads the newest snapshot every FS_DR_TIMEOUT and, on
 *    a change, invalidates the root's attributes and listing
 *    (fuse_lowlevel_notify_inval_inode) and each name the kernel may hold in
 *    the root (fuse_lowlevel_notify_inval_entry), so that the next path walk
 *    looks them up again and lands in the new snapshot. Notifications are
 *    sent from this thread, never from a request handler, and with no lock
 *    held: the kernel may wait for a request on the root to finish first.
 *    Past FS_DR_NAMES_MAX remembered names, the timeouts do the rest.
 *    Likewise for .snap when snapshots come or go: its listing and the
 *    names that changed (FS_SNAPDIR_TIMEOUT bounds the delay otherwise).
 * Files and directories already open keep the snapshot they were opened in
 * (it never changes); a path walk that starts below a directory the kernel
 * has already resolved (a cwd, an fd) stays in that directory's snapshot.
 * When the shown snapshot is deleted on the replica, its ids fail with
 * ENOENT and the root moves to the newest remaining one.
 *
 * Threads: the FUSE workers call fs_dr_snap() and fs_dr_note_name(); the
 * watcher is the only other thread. struct fs_dr's lock is a leaf lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_i.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"

#define FS_DR_PERIOD_NS ((int64_t)(FS_DR_TIMEOUT * 1e9))

/* The newest snapshot in `v`: its id, 0 if none. */
static uint64_t fs_dr_newest(const struct journal_snap *v, size_t n)
{
	uint64_t newest = 0, seq = 0;

	/* Newest = highest seq (the list is oldest first; do not rely on it). */
	for (size_t i = 0; i < n; i++) {
		if (!newest || v[i].seq > seq || (v[i].seq == seq && v[i].id > newest)) {
			newest = v[i].id;
			seq = v[i].seq;
		}
	}
	return newest;
}

/* The newest snapshot of the journal: its id, 0 if none, or -errno. */
static int64_t fs_dr_read_newest(struct fs *fs)
{
	struct journal_snap *v = NULL;
	uint64_t newest;
	size_t n = 0;
	int r;

	r = journal_snap_list(fs->j, false, &v, &n);
	if (r < 0)
		return r;
	newest = fs_dr_newest(v, n);
	free(v);
	return (int64_t)newest;
}

/* Is snapshot `id` in `v`? */
static bool fs_dr_has(const struct journal_snap *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return true;
	return false;
}

/* Do `a` and `b` hold the same snapshots? */
static bool fs_dr_same(const struct journal_snap *a, size_t na, const struct journal_snap *b,
		       size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!fs_dr_has(b, nb, a[i].id))
			return false;
	return true;
}

/*
 * Snapshots came or went: drop .snap's cached attributes and listing, and
 * the cached (or negative) entries of the names that changed. Watcher only.
 */
static void fs_dr_invalidate_snapdir(struct fs *fs, const struct journal_snap *old, size_t nold,
				     const struct journal_snap *cur, size_t ncur)
{
	int r;

	r = fuse_lowlevel_notify_inval_inode(fs->se, FS_SNAPDIR_INO, 0, 0);
	if (r < 0 && r != -ENOENT)
		log_debug("dr: cannot invalidate .snap: %s", strerror(-r));
	for (size_t k = 0; k < 2; k++) {
		const struct journal_snap *a = k ? cur : old, *b = k ? old : cur;
		size_t na = k ? ncur : nold, nb = k ? nold : ncur;

		for (size_t i = 0; i < na; i++) {
			if (fs_dr_has(b, nb, a[i].id))
				continue;
			r = fuse_lowlevel_notify_inval_entry(fs->se, FS_SNAPDIR_INO, a[i].name,
							     strlen(a[i].name));
			if (r < 0 && r != -ENOENT)
				log_debug("dr: cannot invalidate '%s' in .snap: %s", a[i].name,
					  strerror(-r));
		}
	}
}

int64_t fs_dr_snap(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;
	int64_t now = util_mono_ns(), snap;

	pthread_mutex_lock(&d->lock);
	snap = (int64_t)d->snap;
	if (d->checked_ns && now - d->checked_ns < FS_DR_PERIOD_NS) {
		pthread_mutex_unlock(&d->lock);
		return snap;
	}
	pthread_mutex_unlock(&d->lock);

	/*
	 * Stale: read it again, without the lock (a journal call). Two workers
	 * may both do it; the watcher owns the invalidation, so a change seen
	 * here first is still noticed there (it compares with what it last
	 * announced, not with d->snap).
	 */
	snap = fs_dr_read_newest(fs);
	if (snap < 0) {
		log_debug("dr: cannot read the newest snapshot: %s", journal_strerror((int)snap));
		return snap;
	}
	pthread_mutex_lock(&d->lock);
	d->snap = (uint64_t)snap;
	d->checked_ns = now;
	pthread_mutex_unlock(&d->lock);
	return snap;
}

void fs_dr_note_name(struct fs *fs, const char *name)
{
	struct fs_dr *d = &fs->drs;
	char *copy = NULL;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nnames; i++) {
		if (strcmp(d->names[i], name) == 0) {
			pthread_mutex_unlock(&d->lock);
			return;
		}
	}
	if (d->nnames < FS_DR_NAMES_MAX)
		copy = strdup(name);
	if (copy)
		d->names[d->nnames++] = copy;
	else
		d->names_overflow = true;   /* its entry times out instead */
	pthread_mutex_unlock(&d->lock);
}

/*
 * Tell the kernel to forget what it cached of the root and the names in
 * it. Called by the watcher only, with no lock held.
 */
static void fs_dr_invalidate(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;
	char **names;
	size_t n;
	int r;

	/* Take the list: names looked up from now on are in the new snapshot. */
	pthread_mutex_lock(&d->lock);
	names = d->names;
	n = d->nnames;
	d->names = calloc(FS_DR_NAMES_MAX, sizeof(*d->names));
	if (!d->names) {   /* keep the old list; try again next time */
		d->names = names;
		pthread_mutex_unlock(&d->lock);
		names = NULL;
		n = 0;
	} else {
		d->nnames = 0;
		d->names_overflow = false;
		pthread_mutex_unlock(&d->lock);
	}

	r = fuse_lowlevel_notify_inval_inode(fs->se, FUSE_ROOT_ID, 0, 0);
	if (r < 0 && r != -ENOENT)
		log_debug("dr: cannot invalidate the root: %s", strerror(-r));
	for (size_t i = 0; i < n; i++) {
		/* -ENOENT: the kernel holds no such entry (any more). */
		r = fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, names[i],
						     strlen(names[i]));
		if (r < 0 && r != -ENOENT)
			log_debug("dr: cannot invalidate '%s' in the root: %s", names[i],
				  strerror(-r));
		free(names[i]);
	}
	free(names);
}

static void *fs_dr_watch(void *arg)
{
	struct fs *fs = arg;
	struct fs_dr *d = &fs->drs;
	struct journal_snap *seen = NULL;   /* the list the kernel was last told about */
	size_t nseen = 0;
	bool first = true;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		struct journal_snap *v = NULL;
		struct timespec until;
		uint64_t snap, was;
		size_t n = 0;
		int r;

		pthread_mutex_unlock(&d->lock);
		r = journal_snap_list(fs->j, false, &v, &n);
		if (r >= 0) {
			snap = fs_dr_newest(v, n);
			was = fs_dr_newest(seen, nseen);
			pthread_mutex_lock(&d->lock);
			d->snap = snap;
			d->checked_ns = util_mono_ns();
			pthread_mutex_unlock(&d->lock);
			if (!first && snap != was) {
				log_info("dr: the root now shows snapshot %llu (was %llu)",
					 (unsigned long long)snap, (unsigned long long)was);
				fs_dr_invalidate(fs);
			}
			if (!first && !fs_dr_same(v, n, seen, nseen))
				fs_dr_invalidate_snapdir(fs, seen, nseen, v, n);
			free(seen);
			seen = v;
			nseen = n;
			first = false;
		} else {
			log_debug("dr: cannot read the snapshots: %s", journal_strerror(r));
		}

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)FS_DR_TIMEOUT;
		until.tv_nsec += (long)((FS_DR_TIMEOUT - (time_t)FS_DR_TIMEOUT) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&d->lock);
		while (!d->stop && pthread_cond_timedwait(&d->wake, &d->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&d->lock);
	free(seen);
	return NULL;
}

int fs_dr_init(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;
	pthread_condattr_t ca;
	int r;

	memset(d, 0, sizeof(*d));
	d->names = calloc(FS_DR_NAMES_MAX, sizeof(*d->names));
	if (!d->names)
		return -ENOMEM;
	r = pthread_condattr_init(&ca);
	if (r == 0) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		r = pthread_cond_init(&d->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (r != 0) {
		free(d->names);
		d->names = NULL;
		return -r;
	}
	pthread_mutex_init(&d->lock, NULL);
	fs->dr = true;
	return 0;
}

int fs_dr_start(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;
	int r;

	r = pthread_create(&d->thread, NULL, fs_dr_watch, fs);
	if (r != 0)
		return -r;
	d->running = true;
	return 0;
}

void fs_dr_release(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;

	if (!fs->dr)
		return;
	if (d->running) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_signal(&d->wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->thread, NULL);
		d->running = false;
	}
	for (size_t i = 0; i < d->nnames; i++)
		free(d->names[i]);
	free(d->names);
	d->names = NULL;
	d->nnames = 0;
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
}
