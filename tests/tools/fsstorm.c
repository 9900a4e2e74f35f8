/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsstorm: a deterministic random generator of filesystem operations.
 *
 *   fsstorm --seed S --ops N [-v] [--no-settle] DIR_A [DIR_B]
 *	Apply the same pseudo-random sequence of N operations to DIR_A and
 *	DIR_B (normally: a directory in a mirrorfs mount and a plain reference
 *	directory) in lockstep. Every operation must give the same result
 *	(return value, errno, data read) on both; the first divergence is
 *	reported with its operation number and exits 1. Afterwards every
 *	entry's atime/mtime is set to a fixed value derived from its path
 *	("settle"), so that `--compare` can check mtimes to the nanosecond.
 *
 *   fsstorm --storm --seed S [--ops N] [--duration SEC] DIR
 *	Apply operations to DIR until killed (or N operations, or SEC
 *	seconds), ignoring their results. Several processes with different
 *	seeds may storm the same DIR. Exits 3 as soon as the filesystem is
 *	gone (ENOTCONN/ECONNABORTED).
 *
 *   fsstorm --compare [--ignore LIST] [--exclude REL]... DIR_A DIR_B
 *	Compare two trees (see treecmp.h); every difference is printed, exit 1
 *	if there is any. LIST: mtime,holes,owner,mode,xattr,links,root.
 *
 * The operations work on a small namespace (directories d0..d3, files
 * f0..f7, up to two directory levels) so that they collide often: writes at
 * random offsets (also far past EOF, making holes), truncates up and down,
 * hole punching, copy_file_range, renames of files and directories across
 * directories and over existing entries (also RENAME_NOREPLACE and
 * RENAME_EXCHANGE), hard links, unlinks (also of open files), mkdir/rmdir,
 * symlinks, fifos, chmod, chown, utimensat with fixed times, user.* xattrs,
 * fsync, and reads/stats/readdirs that compare what both sides see.
 * Operations that leave unwritten extents (plain fallocate, zero range) are
 * not generated: whether SEEK_DATA reports those as data depends on the page
 * cache, which would make the data/hole map nondeterministic.
 *
 * Exit: 0 ok, 1 divergence/difference, 2 usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"
#include "treecmp.h"

#define NSLOTS 4
#define MAX_WRITE (64 * 1024)
#define MAX_XATTR 200
#define RES_LEN 1024

/* ---- random choices (rng.h) --------------------------------------------------- */

static bool chance(struct rng *r, unsigned percent)
{
	return below(r, 100) < percent;
}

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001B3ULL;
	return h;
}

#define FNV_INIT 0xCBF29CE484222325ULL

/* ---- operations ------------------------------------------------------------------ */

enum op_kind {
	OP_CREATE, OP_WRITE, OP_READ, OP_TRUNCATE, OP_PUNCH, OP_COPY,
	OP_MKDIR, OP_RMDIR, OP_UNLINK, OP_RENAME, OP_LINK, OP_SYMLINK, OP_MKFIFO,
	OP_CHMOD, OP_CHOWN, OP_UTIMENS,
	OP_SETXATTR, OP_REMOVEXATTR, OP_GETXATTR, OP_LISTXATTR,
	OP_STAT, OP_READDIR, OP_READLINK, OP_FSYNC,
	OP_SLOT_OPEN, OP_SLOT_WRITE, OP_SLOT_READ, OP_SLOT_TRUNCATE, OP_SLOT_FSYNC,
	OP_SLOT_STAT, OP_SLOT_CLOSE,
	OP_COUNT
};

static const struct {
	const char *name;
	unsigned weight;
} op_info[OP_COUNT] = {
	[OP_CREATE] = { "create", 8 },      [OP_WRITE] = { "write", 14 },
	[OP_READ] = { "read", 6 },          [OP_TRUNCATE] = { "truncate", 4 },
	[OP_PUNCH] = { "punch", 3 },        [OP_COPY] = { "copy_range", 2 },
	[OP_MKDIR] = { "mkdir", 5 },        [OP_RMDIR] = { "rmdir", 3 },
	[OP_UNLINK] = { "unlink", 5 },      [OP_RENAME] = { "rename", 8 },
	[OP_LINK] = { "link", 4 },          [OP_SYMLINK] = { "symlink", 3 },
	[OP_MKFIFO] = { "mkfifo", 1 },      [OP_CHMOD] = { "chmod", 3 },
	[OP_CHOWN] = { "chown", 1 },        [OP_UTIMENS] = { "utimens", 3 },
	[OP_SETXATTR] = { "setxattr", 3 },  [OP_REMOVEXATTR] = { "removexattr", 2 },
	[OP_GETXATTR] = { "getxattr", 2 },  [OP_LISTXATTR] = { "listxattr", 1 },
	[OP_STAT] = { "stat", 5 },          [OP_READDIR] = { "readdir", 3 },
	[OP_READLINK] = { "readlink", 1 },  [OP_FSYNC] = { "fsync", 1 },
	[OP_SLOT_OPEN] = { "slot_open", 3 }, [OP_SLOT_WRITE] = { "slot_write", 4 },
	[OP_SLOT_READ] = { "slot_read", 2 }, [OP_SLOT_TRUNCATE] = { "slot_truncate", 1 },
	[OP_SLOT_FSYNC] = { "slot_fsync", 1 }, [OP_SLOT_STAT] = { "slot_stat", 2 },
	[OP_SLOT_CLOSE] = { "slot_close", 2 },
};

/* One generated operation: everything needed to apply it identically twice. */
struct op {
	enum op_kind kind;
	char p1[512], p2[512];   /* paths relative to the root ("" = the root) */
	char target[64];         /* symlink target */
	char xname[16];          /* xattr name */
	int flags;               /* open, rename, xattr flags */
	mode_t mode;
	int64_t off, off2, len;
	uint64_t data_seed;      /* write data / xattr value */
	int slot;
	bool nofollow;           /* l* variants */
	bool alt;                /* ftruncate for truncate, fdatasync for fsync, ... */
	uid_t uid;
	gid_t gid;
	struct timespec ts[2];
};

/* A tree the operations are applied to, with its open-file slots. */
struct side {
	const char *root;
	int slot[NSLOTS];
};

enum leaf { LEAF_FILE, LEAF_DIR, LEAF_ANY };

/*
 * Paths that operations recently created, so that operations on existing
 * entries are generated often (random paths alone mostly give ENOENT). It is
 * updated from results, which are the same on every side (or the run stops),
 * so a seed still replays the same sequence.
 */
#define RECENT 64
struct recent {
	char path[RECENT][512];
	unsigned n, next;
};

static void recent_add(struct recent *rc, const char *path)
{
	if (!path[0])
		return;
	snprintf(rc->path[rc->next], sizeof(rc->path[0]), "%s", path);
	rc->next = (rc->next + 1) % RECENT;
	if (rc->n < RECENT)
		rc->n++;
}

static void gen_path(struct rng *r, enum leaf leaf, char *buf, size_t len)
{
	unsigned depth = (unsigned)below(r, 100);
	size_t used = 0;
	bool dir;

	depth = depth < 55 ? 0 : depth < 88 ? 1 : 2;
	for (unsigned i = 0; i < depth; i++)
		used += (size_t)snprintf(buf + used, len - used, "d%u/", (unsigned)below(r, 4));
	switch (leaf) {
	case LEAF_FILE: dir = chance(r, 10); break;
	case LEAF_DIR: dir = chance(r, 85); break;
	default: dir = chance(r, 40); break;
	}
	if (dir)
		snprintf(buf + used, len - used, "d%u", (unsigned)below(r, 4));
	else
		snprintf(buf + used, len - used, "f%u", (unsigned)below(r, 8));
}

/* A path that probably exists (40%: a recently created one), else a random one. */
static void gen_existing(struct rng *r, const struct recent *rc, enum leaf leaf,
			 char *buf, size_t len)
{
	if (rc->n && chance(r, 40))
		snprintf(buf, len, "%s", rc->path[below(r, rc->n)]);
	else
		gen_path(r, leaf, buf, len);
}

/* Offsets: mostly near the start, sometimes far past any EOF (holes). */
static int64_t gen_off(struct rng *r)
{
	unsigned k = (unsigned)below(r, 100);

	if (k < 50)
		return (int64_t)below(r, 64 * 1024);
	if (k < 80)
		return (int64_t)below(r, 512 * 1024);
	return (int64_t)below(r, 2 * 1024 * 1024);
}

static int64_t gen_len(struct rng *r)
{
	unsigned k = (unsigned)below(r, 100);

	if (k < 50)
		return 1 + (int64_t)below(r, 512);
	if (k < 85)
		return 1 + (int64_t)below(r, 8192);
	return 1 + (int64_t)below(r, MAX_WRITE);
}

static enum op_kind gen_kind(struct rng *r)
{
	static unsigned total;
	unsigned k;

	if (!total)
		for (int i = 0; i < OP_COUNT; i++)
			total += op_info[i].weight;
	k = (unsigned)below(r, total);
	for (int i = 0; i < OP_COUNT; i++) {
		if (k < op_info[i].weight)
			return (enum op_kind)i;
		k -= op_info[i].weight;
	}
	return OP_STAT;
}

static void gen_time(struct rng *r, struct timespec *ts)
{
	ts->tv_sec = 1500000000 + (time_t)below(r, 200000000);
	ts->tv_nsec = (long)below(r, 1000000000);
}

static void gen_op(struct rng *r, const struct recent *rc, struct op *op)
{
	static const mode_t file_modes[] = { 0600, 0644, 0664, 0666, 0700, 0755, 0444, 0640 };
	static const mode_t dir_modes[] = { 0755, 0700, 0777, 0750, 02775, 0711 };

	memset(op, 0, sizeof(*op));
	op->kind = gen_kind(r);
	op->slot = (int)below(r, NSLOTS);
	op->data_seed = rng_next(r);
	switch (op->kind) {
	case OP_CREATE:
		gen_path(r, LEAF_FILE, op->p1, sizeof(op->p1));
		op->flags = O_CREAT | O_WRONLY | (chance(r, 25) ? O_EXCL : 0) |
			    (chance(r, 20) ? O_TRUNC : 0);
		op->mode = file_modes[below(r, 8)];
		break;
	case OP_WRITE:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		op->flags = (chance(r, 10) ? O_APPEND : 0) | (chance(r, 30) ? O_CREAT : 0);
		op->off = gen_off(r);
		op->len = gen_len(r);
		break;
	case OP_READ:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		op->off = gen_off(r);
		op->len = gen_len(r);
		break;
	case OP_TRUNCATE:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		op->len = chance(r, 40) ? (int64_t)below(r, 4097) : gen_off(r);
		op->alt = chance(r, 50);
		break;
	case OP_PUNCH:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		op->off = chance(r, 50) ? gen_off(r) & ~4095 : gen_off(r);
		op->len = chance(r, 50) ? 4096 * (1 + (int64_t)below(r, 32)) : gen_len(r);
		break;
	case OP_COPY:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		gen_path(r, LEAF_FILE, op->p2, sizeof(op->p2));
		op->off = gen_off(r);
		op->off2 = gen_off(r);
		op->len = gen_len(r) * 2;
		break;
	case OP_MKDIR:
		gen_path(r, LEAF_DIR, op->p1, sizeof(op->p1));
		op->mode = dir_modes[below(r, 6)];
		break;
	case OP_RMDIR:
		gen_existing(r, rc, LEAF_DIR, op->p1, sizeof(op->p1));
		break;
	case OP_UNLINK:
		gen_existing(r, rc, chance(r, 80) ? LEAF_FILE : LEAF_ANY, op->p1, sizeof(op->p1));
		break;
	case OP_RENAME: {
		enum leaf l = chance(r, 60) ? LEAF_FILE : LEAF_DIR;
		unsigned k = (unsigned)below(r, 100);

		gen_existing(r, rc, l, op->p1, sizeof(op->p1));
		if (chance(r, 15))   /* over an existing entry */
			gen_existing(r, rc, LEAF_ANY, op->p2, sizeof(op->p2));
		else
			gen_path(r, chance(r, 70) ? l : LEAF_ANY, op->p2, sizeof(op->p2));
		op->flags = k < 80 ? 0 : k < 90 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
		break;
	}
	case OP_LINK:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		gen_path(r, LEAF_FILE, op->p2, sizeof(op->p2));
		break;
	case OP_SYMLINK: {
		unsigned k = (unsigned)below(r, 100);

		gen_path(r, LEAF_FILE, op->p1, sizeof(op->p1));
		/* relative and never climbing: a target never leaves the tree */
		if (k < 60)
			snprintf(op->target, sizeof(op->target), "%c%u", chance(r, 70) ? 'f' : 'd',
				 (unsigned)below(r, 8));
		else if (k < 90)
			snprintf(op->target, sizeof(op->target), "d%u/f%u", (unsigned)below(r, 4),
				 (unsigned)below(r, 8));
		else
			snprintf(op->target, sizeof(op->target), "nx%u", (unsigned)below(r, 4));
		break;
	}
	case OP_MKFIFO:
		gen_path(r, LEAF_FILE, op->p1, sizeof(op->p1));
		break;
	case OP_CHMOD:
		gen_existing(r, rc, LEAF_ANY, op->p1, sizeof(op->p1));
		op->mode = chance(r, 70) ? file_modes[below(r, 8)] : dir_modes[below(r, 6)];
		break;
	case OP_CHOWN: {
		static const uid_t uids[] = { 0, 1000, 1001, (uid_t)-1 };
		static const gid_t gids[] = { 0, 1000, 2000, (gid_t)-1 };

		gen_existing(r, rc, LEAF_ANY, op->p1, sizeof(op->p1));
		op->uid = uids[below(r, 4)];
		op->gid = gids[below(r, 4)];
		op->nofollow = chance(r, 50);
		break;
	}
	case OP_UTIMENS:
		gen_existing(r, rc, LEAF_ANY, op->p1, sizeof(op->p1));
		gen_time(r, &op->ts[0]);
		gen_time(r, &op->ts[1]);
		if (chance(r, 20))
			op->ts[0].tv_nsec = UTIME_OMIT;
		op->nofollow = chance(r, 50);
		break;
	case OP_SETXATTR:
	case OP_REMOVEXATTR:
	case OP_GETXATTR:
		gen_existing(r, rc, LEAF_ANY, op->p1, sizeof(op->p1));
		snprintf(op->xname, sizeof(op->xname), "user.k%u", (unsigned)below(r, 4));
		op->len = (int64_t)below(r, MAX_XATTR + 1);
		op->flags = chance(r, 70) ? 0 : chance(r, 50) ? XATTR_CREATE : XATTR_REPLACE;
		op->nofollow = chance(r, 50);
		break;
	case OP_LISTXATTR:
	case OP_STAT:
	case OP_READLINK:
		gen_existing(r, rc, LEAF_ANY, op->p1, sizeof(op->p1));
		op->nofollow = chance(r, 50);
		break;
	case OP_READDIR:
		if (chance(r, 80))
			gen_existing(r, rc, LEAF_DIR, op->p1, sizeof(op->p1));
		break;
	case OP_FSYNC:
		gen_existing(r, rc, LEAF_ANY, op->p1, sizeof(op->p1));
		op->alt = chance(r, 50);
		break;
	case OP_SLOT_OPEN:
		gen_existing(r, rc, LEAF_FILE, op->p1, sizeof(op->p1));
		op->flags = (chance(r, 50) ? O_CREAT : 0) | (chance(r, 10) ? O_APPEND : 0);
		break;
	case OP_SLOT_WRITE:
	case OP_SLOT_READ:
		op->off = gen_off(r);
		op->len = gen_len(r);
		break;
	case OP_SLOT_TRUNCATE:
		op->len = chance(r, 40) ? (int64_t)below(r, 4097) : gen_off(r);
		break;
	case OP_SLOT_FSYNC:
		op->alt = chance(r, 50);
		break;
	default:
		break;
	}
}

static void describe(const struct op *op, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s", op_info[op->kind].name);

#define ADD(...) do { if (n >= 0 && (size_t)n < len) n += snprintf(buf + n, len - (size_t)n, __VA_ARGS__); } while (0)
	if (op->kind >= OP_SLOT_OPEN)
		ADD(" slot=%d", op->slot);
	if (op->p1[0] || op->kind == OP_READDIR)
		ADD(" '%s'", op->p1);
	if (op->p2[0])
		ADD(" '%s'", op->p2);
	if (op->target[0])
		ADD(" target='%s'", op->target);
	if (op->xname[0])
		ADD(" %s", op->xname);
	if (op->off || op->len)
		ADD(" off=%" PRId64 " len=%" PRId64, op->off, op->len);
	if (op->off2)
		ADD(" off_out=%" PRId64, op->off2);
	if (op->flags)
		ADD(" flags=%#x", (unsigned)op->flags);
	if (op->mode)
		ADD(" mode=%04o", (unsigned)op->mode);
	if (op->kind == OP_CHOWN)
		ADD(" uid=%d gid=%d", (int)op->uid, (int)op->gid);
	for (int i = 0; op->kind == OP_UTIMENS && i < 2; i++) {
		if (op->ts[i].tv_nsec == UTIME_OMIT)
			ADD(" %s=omit", i ? "mtime" : "atime");
		else
			ADD(" %s=%lld.%09ld", i ? "mtime" : "atime", (long long)op->ts[i].tv_sec,
			    op->ts[i].tv_nsec);
	}
	if (op->nofollow)
		ADD(" nofollow");
	if (op->alt)
		ADD(" alt");
#undef ADD
}

/* ---- applying an operation to one side ------------------------------------------------ */

static void fill_data(unsigned char *buf, size_t len, uint64_t seed)
{
	struct rng r;
	size_t i = 0;

	rng_seed(&r, seed);
	while (i < len) {
		uint64_t x = rng_next(&r);

		for (int k = 0; k < 8 && i < len; k++, x >>= 8)
			buf[i++] = (unsigned char)x;
	}
	/* runs of zeros too, like real files */
	if (len > 64 && (seed & 3) == 0)
		memset(buf + len / 4, 0, len / 2);
}

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static void full_path(const struct side *s, const char *rel, char *buf, size_t len)
{
	if (rel[0])
		snprintf(buf, len, "%s/%s", s->root, rel);
	else
		snprintf(buf, len, "%s", s->root);
}

#define RES(...) snprintf(res, RES_LEN, __VA_ARGS__)
#define RES_ERRNO() RES("%s", ename(errno))

/* Closes fd; appends " close=ERR" to res if close fails. */
static void close_into(int fd, char *res)
{
	if (close(fd) < 0) {
		size_t n = strlen(res);

		snprintf(res + n, RES_LEN - n, " close=%s", ename(errno));
	}
}

static void fstat_into(int fd, char *res, bool full)
{
	struct stat st;
	size_t n = strlen(res);

	if (fstat(fd, &st) < 0)
		snprintf(res + n, RES_LEN - n, " fstat=%s", ename(errno));
	else if (full)
		snprintf(res + n, RES_LEN - n, " mode=%06o nlink=%ju size=%lld",
			 (unsigned)st.st_mode, (uintmax_t)st.st_nlink,
			 S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
	else
		snprintf(res + n, RES_LEN - n, " size=%lld", (long long)st.st_size);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void do_readdir(const char *path, char *res)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char *names[512];
	size_t n = 0, used;

	if (!d) {
		RES_ERRNO();
		return;
	}
	errno = 0;
	while ((de = readdir(d)) && n < 512)
		names[n++] = strdup(de->d_name);
	if (errno) {
		RES_ERRNO();
		n = 0;
	} else {
		if (n)
			qsort(names, n, sizeof(names[0]), cmp_str);
		used = (size_t)RES("OK");
		for (size_t i = 0; i < n && used < RES_LEN; i++)
			used += (size_t)snprintf(res + used, RES_LEN - used, " %s", names[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	closedir(d);
}

static void do_listxattr(const char *path, bool nofollow, char *res)
{
	char buf[4096], *names[64];
	size_t n = 0, used;
	ssize_t len = (nofollow ? llistxattr : listxattr)(path, buf, sizeof(buf));

	if (len < 0) {
		RES_ERRNO();
		return;
	}
	for (char *p = buf; p < buf + len && n < 64; p += strlen(p) + 1)
		if (strncmp(p, "user.", 5) == 0)
			names[n++] = p;
	if (n)
		qsort(names, n, sizeof(names[0]), cmp_str);
	used = (size_t)RES("OK");
	for (size_t i = 0; i < n && used < RES_LEN; i++)
		used += (size_t)snprintf(res + used, RES_LEN - used, " %s", names[i]);
}

static void slot_close(struct side *s, int slot, char *res)
{
	if (s->slot[slot] < 0) {
		RES("EBADF");
		return;
	}
	RES("OK");
	close_into(s->slot[slot], res);
	s->slot[slot] = -1;
}

static void apply(const struct op *op, struct side *s, char *res)
{
	static unsigned char buf[2 * MAX_WRITE];
	char p1[PATH_MAX], p2[PATH_MAX];
	int fd, fd2, slot_fd = s->slot[op->slot];
	ssize_t n;

	full_path(s, op->p1, p1, sizeof(p1));
	full_path(s, op->p2, p2, sizeof(p2));
	if (op->kind >= OP_SLOT_WRITE && op->kind <= OP_SLOT_STAT && slot_fd < 0) {
		RES("EBADF");
		return;
	}
	switch (op->kind) {
	case OP_CREATE:
		fd = open(p1, op->flags | O_NONBLOCK, op->mode);
		if (fd < 0)
			return (void)RES_ERRNO();
		RES("OK");
		fstat_into(fd, res, true);
		close_into(fd, res);
		break;
	case OP_WRITE:
		fd = open(p1, O_WRONLY | O_NONBLOCK | op->flags, 0644);
		if (fd < 0)
			return (void)RES_ERRNO();
		fill_data(buf, (size_t)op->len, op->data_seed);
		n = pwrite(fd, buf, (size_t)op->len, op->off);
		if (n < 0)
			RES_ERRNO();
		else
			RES("OK %zd", n);
		fstat_into(fd, res, false);
		close_into(fd, res);
		break;
	case OP_READ:
		fd = open(p1, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			return (void)RES_ERRNO();
		n = pread(fd, buf, (size_t)op->len, op->off);
		if (n < 0)
			RES_ERRNO();
		else
			RES("OK %zd h=%016" PRIx64, n, fnv1a(buf, (size_t)n, FNV_INIT));
		close_into(fd, res);
		break;
	case OP_TRUNCATE:
		if (!op->alt) {
			if (truncate(p1, op->len) < 0)
				return (void)RES_ERRNO();
			return (void)RES("OK");
		}
		fd = open(p1, O_WRONLY | O_NONBLOCK);
		if (fd < 0)
			return (void)RES_ERRNO();
		if (ftruncate(fd, op->len) < 0)
			RES_ERRNO();
		else
			RES("OK");
		close_into(fd, res);
		break;
	case OP_PUNCH:
		fd = open(p1, O_RDWR | O_NONBLOCK);
		if (fd < 0)
			return (void)RES_ERRNO();
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, op->off, op->len) < 0)
			RES_ERRNO();
		else
			RES("OK");
		fstat_into(fd, res, false);
		close_into(fd, res);
		break;
	case OP_COPY: {
		loff_t in_off = op->off, out_off = op->off2;
		size_t done = 0;

		fd = open(p1, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			return (void)RES("src %s", ename(errno));
		fd2 = open(p2, O_WRONLY | O_CREAT | O_NONBLOCK, 0644);
		if (fd2 < 0) {
			RES("dst %s", ename(errno));
			close(fd);
			return;
		}
		RES("OK");
		while (done < (size_t)op->len) {
			n = copy_file_range(fd, &in_off, fd2, &out_off, (size_t)op->len - done, 0);
			if (n < 0) {
				RES("%s", ename(errno));
				break;
			}
			if (n == 0)
				break;
			done += (size_t)n;
		}
		n = (ssize_t)strlen(res);
		snprintf(res + n, RES_LEN - (size_t)n, " copied=%zu", done);
		fstat_into(fd2, res, false);
		close_into(fd2, res);
		close(fd);
		break;
	}
	case OP_MKDIR:
		if (mkdir(p1, op->mode) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_RMDIR:
		if (rmdir(p1) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_UNLINK:
		if (unlink(p1) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_RENAME:
		if (syscall(SYS_renameat2, AT_FDCWD, p1, AT_FDCWD, p2, (unsigned)op->flags) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_LINK:
		if (link(p1, p2) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_SYMLINK:
		if (symlink(op->target, p1) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_MKFIFO:
		if (mknod(p1, S_IFIFO | 0644, 0) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_CHMOD:
		if (chmod(p1, op->mode) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_CHOWN:
		if ((op->nofollow ? lchown : chown)(p1, op->uid, op->gid) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_UTIMENS:
		if (utimensat(AT_FDCWD, p1, op->ts, op->nofollow ? AT_SYMLINK_NOFOLLOW : 0) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_SETXATTR:
		fill_data(buf, (size_t)op->len, op->data_seed);
		if ((op->nofollow ? lsetxattr : setxattr)(p1, op->xname, buf, (size_t)op->len,
							   op->flags) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_REMOVEXATTR:
		if ((op->nofollow ? lremovexattr : removexattr)(p1, op->xname) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_GETXATTR:
		n = (op->nofollow ? lgetxattr : getxattr)(p1, op->xname, buf, sizeof(buf));
		if (n < 0)
			return (void)RES_ERRNO();
		RES("OK %zd h=%016" PRIx64, n, fnv1a(buf, (size_t)n, FNV_INIT));
		break;
	case OP_LISTXATTR:
		do_listxattr(p1, op->nofollow, res);
		break;
	case OP_STAT: {
		struct stat st;

		if ((op->nofollow ? lstat : stat)(p1, &st) < 0)
			return (void)RES_ERRNO();
		RES("OK mode=%06o uid=%u gid=%u nlink=%ju size=%lld", (unsigned)st.st_mode,
		    st.st_uid, st.st_gid, (uintmax_t)st.st_nlink,
		    S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size);
		break;
	}
	case OP_READDIR:
		do_readdir(p1, res);
		break;
	case OP_READLINK: {
		char t[PATH_MAX];

		n = readlink(p1, t, sizeof(t) - 1);
		if (n < 0)
			return (void)RES_ERRNO();
		t[n] = 0;
		RES("OK %.900s", t);
		break;
	}
	case OP_FSYNC:
		fd = open(p1, O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			return (void)RES_ERRNO();
		if ((op->alt ? fdatasync(fd) : fsync(fd)) < 0)
			RES_ERRNO();
		else
			RES("OK");
		close_into(fd, res);
		break;
	case OP_SLOT_OPEN: {
		char closed[RES_LEN] = "";

		if (slot_fd >= 0)
			slot_close(s, op->slot, closed);
		fd = open(p1, O_RDWR | O_NONBLOCK | op->flags, 0644);
		if (fd < 0)
			RES_ERRNO();
		else
			RES("OK");
		s->slot[op->slot] = fd;
		if (closed[0]) {
			size_t l = strlen(res);

			snprintf(res + l, RES_LEN - l, " (previous: %s)", closed);
		}
		break;
	}
	case OP_SLOT_WRITE:
		fill_data(buf, (size_t)op->len, op->data_seed);
		n = pwrite(slot_fd, buf, (size_t)op->len, op->off);
		if (n < 0)
			RES_ERRNO();
		else
			RES("OK %zd", n);
		fstat_into(slot_fd, res, false);
		break;
	case OP_SLOT_READ:
		n = pread(slot_fd, buf, (size_t)op->len, op->off);
		if (n < 0)
			return (void)RES_ERRNO();
		RES("OK %zd h=%016" PRIx64, n, fnv1a(buf, (size_t)n, FNV_INIT));
		break;
	case OP_SLOT_TRUNCATE:
		if (ftruncate(slot_fd, op->len) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_SLOT_FSYNC:
		if ((op->alt ? fdatasync(slot_fd) : fsync(slot_fd)) < 0)
			return (void)RES_ERRNO();
		RES("OK");
		break;
	case OP_SLOT_STAT:
		RES("OK");
		fstat_into(slot_fd, res, true);
		break;
	case OP_SLOT_CLOSE:
		slot_close(s, op->slot, res);
		break;
	case OP_COUNT:
		break;
	}
}

/* ---- lockstep driver ----------------------------------------------------------------- */

struct storm {
	uint64_t seed;
	struct side side[2];
	int nsides;
	bool verbose;
	uint64_t opno;
	uint64_t ok[OP_COUNT], total[OP_COUNT];
	struct recent recent;
};

/* Remember what a successful `op` created. */
static void note_created(struct recent *rc, const struct op *op, const char *res)
{
	if (strncmp(res, "OK", 2) != 0)
		return;
	switch (op->kind) {
	case OP_CREATE: case OP_MKDIR: case OP_SYMLINK: case OP_MKFIFO: case OP_SLOT_OPEN:
		recent_add(rc, op->p1);
		break;
	case OP_WRITE:
		if (op->flags & O_CREAT)
			recent_add(rc, op->p1);
		break;
	case OP_LINK: case OP_RENAME: case OP_COPY:
		recent_add(rc, op->p2);
		break;
	default:
		break;
	}
}

/* Apply `op` to every side; on a divergence report it and return -1. */
static int step(struct storm *st, const struct op *op)
{
	char res[2][RES_LEN], desc[512];

	st->opno++;
	describe(op, desc, sizeof(desc));
	for (int i = 0; i < st->nsides; i++) {
		res[i][0] = 0;
		apply(op, &st->side[i], res[i]);
	}
	st->total[op->kind]++;
	if (strncmp(res[0], "OK", 2) == 0)
		st->ok[op->kind]++;
	note_created(&st->recent, op, res[0]);
	if (st->verbose)
		printf("#%" PRIu64 " %s -> %s\n", st->opno, desc, res[0]);
	if (st->nsides == 2 && strcmp(res[0], res[1]) != 0) {
		fprintf(stderr,
			"fsstorm: divergence at operation #%" PRIu64 " (seed %" PRIu64 "): %s\n"
			"  A (%s): %s\n  B (%s): %s\n"
			"  replay: fsstorm --seed %" PRIu64 " --ops %" PRIu64 " -v A B (on fresh dirs)\n",
			st->opno, st->seed, desc, st->side[0].root, res[0], st->side[1].root,
			res[1], st->seed, st->opno);
		return -1;
	}
	return 0;
}

static uint64_t path_hash(uint64_t seed, const char *rel, uint64_t salt)
{
	uint64_t h = fnv1a(&seed, sizeof(seed), FNV_INIT ^ salt);

	return fnv1a(rel, strlen(rel), h);
}

/*
 * Give every entry (children before their directory, the root last) fixed
 * atime/mtime derived from its path, on every side, comparing results.
 */
static int settle_dir(struct storm *st, const char *rel)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *de;
	char *names[512];
	size_t n = 0;
	int r = 0;
	struct op op = { .kind = OP_UTIMENS, .nofollow = true };

	full_path(&st->side[0], rel, path, sizeof(path));
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "fsstorm: settle: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) && n < 512) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(names[0]), cmp_str);
	for (size_t i = 0; i < n && r == 0; i++) {
		char child[sizeof(op.p1)];
		struct stat sb;

		if ((size_t)snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "",
				     names[i]) >= sizeof(child)) {
			fprintf(stderr, "fsstorm: settle: path too deep below '%s'\n", rel);
			r = -1;
			break;
		}
		full_path(&st->side[0], child, path, sizeof(path));
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			r = settle_dir(st, child);
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		uint64_t h1, h2;

		snprintf(op.p1, sizeof(op.p1), "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
		h1 = path_hash(st->seed, op.p1, 1);
		h2 = path_hash(st->seed, op.p1, 2);
		op.ts[0] = (struct timespec){ 1400000000 + (time_t)(h1 % 300000000), (long)(h1 >> 34) % 1000000000 };
		op.ts[1] = (struct timespec){ 1400000000 + (time_t)(h2 % 300000000), (long)(h2 >> 34) % 1000000000 };
		r = step(st, &op);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return r;
}

static int settle(struct storm *st)
{
	struct op op = { .kind = OP_SLOT_CLOSE };

	for (int k = 0; k < NSLOTS; k++) {
		if (st->side[0].slot[k] < 0 && (st->nsides < 2 || st->side[1].slot[k] < 0))
			continue;
		op.slot = k;
		if (step(st, &op) < 0)
			return -1;
	}
	if (settle_dir(st, "") < 0)
		return -1;
	op = (struct op){ .kind = OP_UTIMENS, .nofollow = true,
			  .ts = { { 1400000000, 1 }, { 1400000001, 2 } } };
	return step(st, &op);
}

static int run_lockstep(struct storm *st, uint64_t nops, bool do_settle)
{
	struct rng r;
	struct op op;
	uint64_t ok = 0, all = 0;

	rng_seed(&r, st->seed);
	for (uint64_t i = 0; i < nops; i++) {
		gen_op(&r, &st->recent, &op);
		if (step(st, &op) < 0)
			return 1;
	}
	for (int k = 0; k < OP_COUNT; k++) {
		ok += st->ok[k];
		all += st->total[k];
	}
	if (do_settle && settle(st) < 0)
		return 1;
	printf("fsstorm: seed %" PRIu64 ": %" PRIu64 " operations%s, %" PRIu64 "%% succeeded\n",
	       st->seed, nops, st->nsides == 2 ? " with identical results" : "",
	       all ? ok * 100 / all : 0);
	if (st->verbose)
		for (int k = 0; k < OP_COUNT; k++)
			printf("  %-14s %6" PRIu64 " ok of %6" PRIu64 "\n", op_info[k].name,
			       st->ok[k], st->total[k]);
	return 0;
}

/* ---- storm mode ------------------------------------------------------------------------- */

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int run_storm(struct storm *st, uint64_t nops, int64_t duration)
{
	int64_t deadline = duration > 0 ? now_s() + duration : 0;
	struct rng r;
	struct op op;
	char res[RES_LEN];

	rng_seed(&r, st->seed);
	for (uint64_t i = 0; nops == 0 || i < nops; i++) {
		gen_op(&r, &st->recent, &op);
		res[0] = 0;
		apply(&op, &st->side[0], res);
		note_created(&st->recent, &op, res);
		if (strstr(res, "ENOTCONN") || strstr(res, "ECONNABORTED")) {
			fprintf(stderr, "fsstorm: seed %" PRIu64 ": filesystem gone after %" PRIu64
				" operations (%s)\n", st->seed, i, res);
			return 3;
		}
		if (deadline && (i & 63) == 0 && now_s() >= deadline)
			break;
	}
	return 0;
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fsstorm --seed S --ops N [-v] [--no-settle] DIR_A [DIR_B]\n"
		"       fsstorm --storm --seed S [--ops N] [--duration SEC] DIR\n"
		"       fsstorm --compare [--ignore mtime,holes,owner,mode,xattr,links,root]\n"
		"               [--exclude REL]... DIR_A DIR_B\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "ops", required_argument, NULL, 'n' },
		{ "storm", no_argument, NULL, 'S' },
		{ "duration", required_argument, NULL, 'd' },
		{ "compare", no_argument, NULL, 'c' },
		{ "ignore", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "no-settle", no_argument, NULL, 'N' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct storm st = { .seed = 1 };
	struct treecmp_opts copts = { 0 };
	const char *excludes[64] = { NULL };
	size_t nexcl = 0;
	uint64_t nops = 1000;
	int64_t duration = 0;
	bool storm = false, compare = false, do_settle = true, ops_given = false;
	int c;

	while ((c = getopt_long(argc, argv, "s:n:d:i:x:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': st.seed = strtoull(optarg, NULL, 0); break;
		case 'n': nops = strtoull(optarg, NULL, 0); ops_given = true; break;
		case 'S': storm = true; break;
		case 'd': duration = strtoll(optarg, NULL, 0); break;
		case 'c': compare = true; break;
		case 'i':
			if (treecmp_parse_ignore(optarg, &copts.flags) < 0) {
				fprintf(stderr, "fsstorm: unknown --ignore item in '%s'\n", optarg);
				return 2;
			}
			break;
		case 'x':
			if (nexcl + 1 >= sizeof(excludes) / sizeof(excludes[0])) {
				fprintf(stderr, "fsstorm: too many --exclude\n");
				return 2;
			}
			excludes[nexcl++] = optarg;
			break;
		case 'N': do_settle = false; break;
		case 'v': st.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (compare) {
		long r;

		if (argc != 2 || storm) {
			usage(stderr);
			return 2;
		}
		copts.exclude = excludes;
		r = treecmp_trees(argv[0], argv[1], &copts);
		if (r < 0) {
			fprintf(stderr, "fsstorm: cannot compare '%s' and '%s': %s\n", argv[0],
				argv[1], strerror((int)-r));
			return 2;
		}
		if (r > 0)
			fprintf(stderr, "fsstorm: %ld difference(s) between '%s' and '%s'\n", r,
				argv[0], argv[1]);
		return r ? 1 : 0;
	}
	if (argc < 1 || argc > (storm ? 1 : 2)) {
		usage(stderr);
		return 2;
	}
	umask(0);
	st.nsides = argc;
	for (int i = 0; i < argc; i++) {
		struct stat sb;

		if (stat(argv[i], &sb) < 0 && mkdir(argv[i], 0755) < 0) {
			fprintf(stderr, "fsstorm: cannot create '%s': %s\n", argv[i], strerror(errno));
			return 2;
		}
		st.side[i].root = argv[i];
		for (int k = 0; k < NSLOTS; k++)
			st.side[i].slot[k] = -1;
	}
	if (storm)
		return run_storm(&st, ops_given ? nops : 0, duration);
	return run_lockstep(&st, nops, do_settle);
}
