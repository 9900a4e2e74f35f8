/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Headroom for the journal (like ZFS's slop space). The journal must always
 * be able to record what happened: when the backing filesystem is nearly
 * full, mutations that consume space (data writes, copy-on-write copies,
 * new objects, xattrs) fail with ENOSPC before their syscall, while those
 * that free space (unlink, rmdir, truncate without snapshots) go on. The
 * journal's own commits use the headroom. Without it, a full disk would
 * fail a commit and leave the mount read-only until remounted; with it,
 * freeing space is all it takes.
 *
 * The headroom is 1/64 of the filesystem, between 16 MiB and 256 MiB. Far
 * from full, the free space is checked at most every 100 ms; near full, at
 * every call (one fstatvfs).
 */
#include <errno.h>
#include <sys/statvfs.h>

#include "mirrorfs/util.h"
#include "journal_i.h"

#define HEADROOM_MIN (16ULL << 20)   /* above a WAL between checkpoints (~4 MiB) */
#define HEADROOM_MAX (256ULL << 20)
#define RECHECK_NS (100LL * 1000000)

static int64_t fs_free(struct journal *j)
{
	struct statvfs sv;

	if (fstatvfs(j->state_fd, &sv) < 0)
		return -1;
	/* the daemon runs as root: the blocks reserved for root are ours too */
	return (int64_t)((uint64_t)sv.f_bfree * sv.f_frsize);
}

void space_init(struct journal *j)
{
	struct statvfs sv;
	uint64_t total, hr;

	j->space_headroom = 0;
	if (fstatvfs(j->state_fd, &sv) < 0 || sv.f_blocks == 0)
		return;
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	hr = total / 64;
	j->space_headroom = UTIL_MAX(HEADROOM_MIN, UTIL_MIN(hr, HEADROOM_MAX));
	atomic_store(&j->space_free, fs_free(j));
	atomic_store(&j->space_checked, util_mono_ns());
}

int space_check(struct journal *j, uint64_t need)
{
	uint64_t hr = j->space_headroom;
	int64_t free = atomic_load_explicit(&j->space_free, memory_order_relaxed);
	int64_t now;

	if (!hr)
		return 0;
	now = util_mono_ns();
	if (free >= 0 && (uint64_t)free > 8 * hr + need &&
	    now - atomic_load_explicit(&j->space_checked, memory_order_relaxed) < RECHECK_NS)
		return 0;
	free = fs_free(j);
	atomic_store_explicit(&j->space_free, free, memory_order_relaxed);
	atomic_store_explicit(&j->space_checked, now, memory_order_relaxed);
	if (free < 0)
		return 0;   /* cannot tell: let the syscall decide */
	return (uint64_t)free < hr + need ? -ENOSPC : 0;
}
