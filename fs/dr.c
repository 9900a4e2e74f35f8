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
 * The root's node id, FUSE_ROOT_ID, stays while the snapshot behind it
 * changes; the ids of the names in it encode their snapshot (snapdir.c),
 * and the kernel caches those entries for FS_DR_TIMEOUT. The root moves
 * as one: once a path walk from the root sees the new snapshot anywhere,
 * it sees it everywhere, even when the old one was deleted (then a stale
 * entry would fail with ENOENT, not just show the old snapshot):
 *  - Only the watcher thread reads the newest snapshot (every
 *    FS_DR_TIMEOUT) and sets what the root shows (fs_dr.snap), so the root
 *    never goes back to an older snapshot: each read starts after the
 *    previous one ended. (Request handlers refreshing it themselves could
 *    store a read that began before a deletion after one that began after
 *    it, and bring a deleted snapshot back for a second.)
 *  - On a change it first marks the root as moving: lookups in the root
 *    still resolve in the old snapshot but are not cached, nor are
 *    readdirplus entries of the root. Then it invalidates every name of
 *    the old snapshot's root (fuse_lowlevel_notify_inval_entry): a
 *    positive entry of the root can only be one of them, and negative
 *    ones are never cached. Then the root shows the new snapshot and its
 *    attributes are invalidated. The kernel serializes an invalidation
 *    after a lookup or readdir in flight in the root (it holds the root's
 *    lock across them), so an entry resolved in the old snapshot before
 *    the move began is dropped too.
 *  - If the old root's names could not be read, the entries cached before
 *    the move began are left to time out instead (the move waits for it).
 * Notifications are sent from the watcher only, never from a request
 * handler, and with no lock held: the kernel may wait for a request on the
 * root to finish first. Likewise for .snap when snapshots come or go: its
 * listing and the names that changed (FS_SNAPDIR_TIMEOUT bounds the delay
 * otherwise).
 *
 * Files and directories already open keep the snapshot they were opened in
 * (it never changes); a path walk that starts below a directory the kernel
 * has already resolved (a cwd, an fd) stays in that directory's snapshot.
 * When that snapshot is deleted on the replica, its ids fail with ENOENT.
 *
 * Threads: the FUSE workers call fs_dr_snap() and fs_dr_may_cache(); the
 * watcher is the only other thread. struct fs_dr's lock is a leaf lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_i.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"

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

uint64_t fs_dr_snap(struct fs *fs, bool *ret_cache)
{
	struct fs_dr *d = &fs->drs;
	uint64_t snap;

	pthread_mutex_lock(&d->lock);
	snap = d->snap;
	if (ret_cache)
		*ret_cache = !d->moving;
	pthread_mutex_unlock(&d->lock);
	return snap;
}

bool fs_dr_may_cache(struct fs *fs, uint64_t snap)
{
	struct fs_dr *d = &fs->drs;
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = !d->moving && d->snap == snap;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/*
 * Wait `seconds` or until told to stop. False if stopping. Watcher only,
 * with d->lock held.
 */
static bool fs_dr_wait(struct fs_dr *d, double seconds)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)seconds;
	until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!d->stop && pthread_cond_timedwait(&d->wake, &d->lock, &until) == 0)
		;
	return !d->stop;
}

static void fs_dr_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

struct fs_dr_names {
	char **v;
	size_t n, cap;
};

static int fs_dr_names_add(void *arg, const char *name, uint64_t ino, mode_t type,
			   uint64_t next_cookie)
{
	struct fs_dr_names *l = arg;

	/* The virtual .snap shadows it: the kernel's entry is never this one. */
	if (strcmp(name, FS_SNAPDIR_NAME) == 0)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		char **nv = realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n] = strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* The names in the root of snapshot `snap` (none for 0), or -errno. */
static int fs_dr_read_names(struct fs *fs, uint64_t snap, char ***ret, size_t *ret_n)
{
	struct fs_dr_names l = { 0 };
	int r = 0;

	if (snap)
		r = journal_snap_readdir(fs->j, snap, JOURNAL_ROOT_INO, 0, fs_dr_names_add, &l);
	if (r < 0) {
		fs_dr_names_free(l.v, l.n);
		return r;
	}
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}

/*
 * Move the root to snapshot `to` (0: none), see the top of this file.
 * Watcher only, with d->lock held (dropped meanwhile). False if stopping.
 */
static bool fs_dr_move(struct fs *fs, uint64_t to)
{
	struct fs_dr *d = &fs->drs;
	char **names = NULL;
	size_t n = 0;
	uint64_t from = d->snap;
	int r, rn;

	d->moving = true;
	pthread_mutex_unlock(&d->lock);

	/* Kept for the next move, read while `to` surely exists. */
	rn = fs_dr_read_names(fs, to, &names, &n);
	if (rn < 0)
		log_warning("dr: cannot read the names in the root of snapshot %llu: %s",
			    (unsigned long long)to, journal_strerror(rn));
	for (size_t i = 0; d->names_known && i < d->nnames; i++) {
		/* -ENOENT: the kernel holds no such entry (any more). */
		r = fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, d->names[i],
						     strlen(d->names[i]));
		if (r < 0 && r != -ENOENT)
			log_debug("dr: cannot invalidate '%s' in the root: %s", d->names[i],
				  strerror(-r));
	}
	fs_dr_names_free(d->names, d->nnames);
	d->names = names;
	d->nnames = n;

	pthread_mutex_lock(&d->lock);
	/* Unknown names: what the kernel cached before the move times out. */
	if (!d->names_known && !fs_dr_wait(d, FS_DR_TIMEOUT * 1.5))
		return false;
	d->names_known = rn >= 0;
	d->snap = to;
	d->moving = false;
	pthread_mutex_unlock(&d->lock);

	log_info("dr: the root now shows snapshot %llu (was %llu)", (unsigned long long)to,
		 (unsigned long long)from);
	r = fuse_lowlevel_notify_inval_inode(fs->se, FUSE_ROOT_ID, 0, 0);
	if (r < 0 && r != -ENOENT)
		log_debug("dr: cannot invalidate the root: %s", strerror(-r));
	pthread_mutex_lock(&d->lock);
	return true;
}

static void *fs_dr_watch(void *arg)
{
	struct fs *fs = arg;
	struct fs_dr *d = &fs->drs;

	pthread_mutex_lock(&d->lock);
	while (fs_dr_wait(d, FS_DR_TIMEOUT)) {
		struct journal_snap *v = NULL;
		uint64_t newest;
		size_t n = 0;
		int r;

		pthread_mutex_unlock(&d->lock);
		r = journal_snap_list(fs->j, false, &v, &n);
		pthread_mutex_lock(&d->lock);
		if (r < 0) {
			log_debug("dr: cannot read the snapshots: %s", journal_strerror(r));
			continue;
		}
		newest = fs_dr_newest(v, n);
		if (newest != d->snap && !fs_dr_move(fs, newest)) {
			free(v);
			break;
		}
		if (!fs_dr_same(v, n, d->seen, d->nseen)) {
			pthread_mutex_unlock(&d->lock);
			fs_dr_invalidate_snapdir(fs, d->seen, d->nseen, v, n);
			pthread_mutex_lock(&d->lock);
		}
		free(d->seen);
		d->seen = v;
		d->nseen = n;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int fs_dr_init(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;
	pthread_condattr_t ca;
	int r;

	memset(d, 0, sizeof(*d));
	r = pthread_condattr_init(&ca);
	if (r == 0) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		r = pthread_cond_init(&d->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (r != 0)
		return -r;
	pthread_mutex_init(&d->lock, NULL);
	fs->dr = true;
	return 0;
}

int fs_dr_start(struct fs *fs)
{
	struct fs_dr *d = &fs->drs;
	int r;

	/*
	 * What the root shows from the first request on. Unreadable now: an
	 * empty root until the watcher can read it.
	 */
	r = journal_snap_list(fs->j, false, &d->seen, &d->nseen);
	if (r < 0) {
		log_warning("dr: cannot read the snapshots: %s", journal_strerror(r));
		d->seen = NULL;
		d->nseen = 0;
	}
	d->snap = fs_dr_newest(d->seen, d->nseen);
	r = fs_dr_read_names(fs, d->snap, &d->names, &d->nnames);
	d->names_known = r >= 0;
	if (r < 0)
		log_warning("dr: cannot read the names in the root of snapshot %llu: %s",
			    (unsigned long long)d->snap, journal_strerror(r));

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
	fs_dr_names_free(d->names, d->nnames);
	d->names = NULL;
	d->nnames = 0;
	free(d->seen);
	d->seen = NULL;
	d->nseen = 0;
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->lock);
}
