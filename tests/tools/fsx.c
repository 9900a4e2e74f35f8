/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsx: a data-integrity exerciser. A deterministic (seeded) random sequence
 * of data operations on a few files in one directory, checked against an
 * in-memory model of every file's contents and size.
 *
 *   fsx [options] DIR
 *
 * The files are DIR/fsx.0 .. DIR/fsx.N-1. Operations: pwrite (sizes from 1
 * byte to --max-io, unaligned, across 4 KiB and 64 KiB boundaries, past EOF),
 * runs of sequential pwrites, pread, mmap read, mmap write + msync,
 * ftruncate and truncate(2) down and up, open(O_TRUNC), fallocate (plain,
 * KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE with and without KEEP_SIZE,
 * COLLAPSE_RANGE, INSERT_RANGE), copy_file_range between two files and
 * within one (non-overlapping), O_APPEND writes, O_DIRECT writes and reads
 * (4 KiB aligned), close and reopen, fsync, fdatasync, SEEK_DATA/SEEK_HOLE
 * (what they call a hole must read as zeros); with snapshots also reads of
 * snapshot files (buffered and O_DIRECT) and copy_file_range from a
 * snapshot file into a live one.
 *
 * After every operation the size (fstat) and the bytes around the range it
 * touched are read back and compared with the model; every --verify-every
 * operations the whole of every file is. An operation the filesystem
 * refuses with EOPNOTSUPP (or ENOSYS; EINVAL for O_DIRECT) is noted once and
 * not generated again. Any other error, or any byte that differs, stops the
 * run: the last --log operations, the offset, the expected and actual bytes
 * and a replay command are printed, exit status 1.
 *
 * Snapshots (--snap-dir MNT/.snap): every --snap-every operations
 * `mkdir MNT/.snap/NAME` and a copy of the model for it; some snapshots are
 * deleted again (rmdir) along the way. Every snapshot kept is checked
 * (contents, size, holes as zeros, at MNT/.snap/NAME/<DIR below MNT>/fsx.K)
 * after each deletion, at a few random moments, and at the end.
 * --snap-readers N threads meanwhile read random ranges of the snapshots
 * (mostly O_DIRECT) while the main thread changes the files. --save STATE
 * keeps the models in a directory (each snapshot's from when it is taken,
 * the files' at the end); a later `fsx --check-saved STATE` (after a
 * remount, or a kill -9 of the daemon with --no-live) checks the files and
 * the snapshots against them.
 *
 * The data written by an operation is a pattern of its own (tag + offset,
 * never a zero byte), so a mismatch report can tell which recent operation
 * wrote the bytes found instead.
 *
 * Exit: 0 ok, 1 mismatch or unexpected error, 2 usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"

#define MAX_FILES 4
#define BLK 4096                 /* alignment of O_DIRECT, collapse and insert */
#define IO_CHUNK ((size_t)1 << 20)

/* ---- random choices (rng.h) -------------------------------------------------------- */

/* uniform in [lo, hi] */
static int64_t between(struct rng *r, int64_t lo, int64_t hi)
{
	return hi <= lo ? lo : lo + (int64_t)below(r, (uint64_t)(hi - lo) + 1);
}

static bool one_in(struct rng *r, uint64_t n)
{
	return below(r, n) == 0;
}

/* ---- operations -------------------------------------------------------------------- */

enum op {
	OP_WRITE, OP_READ, OP_MAPREAD, OP_MAPWRITE, OP_FTRUNCATE, OP_TRUNCATE, OP_OPENTRUNC,
	OP_FALLOC, OP_FALLOC_KEEP, OP_PUNCH, OP_ZERO, OP_ZERO_KEEP, OP_COLLAPSE, OP_INSERT,
	OP_COPY, OP_COPY_SELF, OP_APPEND, OP_DWRITE, OP_DREAD, OP_REOPEN, OP_FSYNC,
	OP_FDATASYNC, OP_SNAPREAD, OP_SNAPCOPY, OP_SEQWRITE, OP_SEEK,
	OP_COUNT,
	/* events in the log, not generated as operations */
	EV_SNAP = OP_COUNT, EV_SNAPDEL, EV_SNAPCHECK,
};

static const struct {
	const char *name;
	unsigned weight;
} op_info[] = {
	[OP_WRITE] = { "pwrite", 20 },          [OP_READ] = { "pread", 10 },
	[OP_MAPREAD] = { "mapread", 5 },        [OP_MAPWRITE] = { "mapwrite", 5 },
	[OP_FTRUNCATE] = { "ftruncate", 5 },    [OP_TRUNCATE] = { "truncate", 2 },
	[OP_OPENTRUNC] = { "open_trunc", 1 },   [OP_FALLOC] = { "falloc", 2 },
	[OP_FALLOC_KEEP] = { "falloc_keep", 2 }, [OP_PUNCH] = { "punch_hole", 4 },
	[OP_ZERO] = { "zero_range", 2 },        [OP_ZERO_KEEP] = { "zero_range_keep", 2 },
	[OP_COLLAPSE] = { "collapse_range", 2 }, [OP_INSERT] = { "insert_range", 2 },
	[OP_COPY] = { "copy_range", 4 },        [OP_COPY_SELF] = { "copy_range_self", 3 },
	[OP_APPEND] = { "append", 4 },          [OP_DWRITE] = { "dwrite", 3 },
	[OP_DREAD] = { "dread", 2 },            [OP_REOPEN] = { "reopen", 2 },
	[OP_FSYNC] = { "fsync", 1 },            [OP_FDATASYNC] = { "fdatasync", 1 },
	[OP_SNAPREAD] = { "snap_read", 3 },     [OP_SNAPCOPY] = { "snap_copy_range", 2 },
	[OP_SEQWRITE] = { "seq_write", 2 },     [OP_SEEK] = { "seek_data_hole", 2 },
	[EV_SNAP] = { "SNAPSHOT", 0 },          [EV_SNAPDEL] = { "SNAP-DELETE", 0 },
	[EV_SNAPCHECK] = { "SNAP-CHECK", 0 },
};

/* One entry of the operation log. */
struct logent {
	uint64_t n;              /* operation number (1-based); events: ops done */
	enum op op;
	int f, f2;               /* file (and source file of a copy) */
	int64_t off, off2, len;  /* off2: source offset of a copy */
	int64_t size0, size1;    /* size of file f before and after */
	uint32_t tag;            /* data pattern of a write */
	char note[96];           /* snapshot name */
};

struct file {
	char path[PATH_MAX];
	int fd;
	int dfd;                 /* O_DIRECT fd, -1 until needed */
	uint8_t *model;          /* max_size bytes; zeros past size */
	int64_t size;
};

struct snap {
	unsigned readers;        /* snap_lock: reader threads using it */
	char name[64];
	uint64_t at;             /* operations done when taken */
	int64_t size[MAX_FILES];
	uint8_t *data[MAX_FILES];
};

struct fsx {
	/* options */
	uint64_t seed, nops, verify_every, snap_every;
	unsigned nfiles, snap_keep, nlog;
	int64_t max_size;
	size_t max_io;
	double duration;
	bool verbose, reuse, rm_snaps;
	const char *dir, *snap_dir, *save, *check_saved;
	char snap_prefix[32];
	bool no_live;
	bool disabled[OP_COUNT];
	char **argv;
	int argc;

	/* state */
	struct rng rng;          /* the operations */
	struct rng aux;          /* snapshot schedule, read chunking: not the ops */
	struct file file[MAX_FILES];
	uint8_t *buf, *rbuf;     /* max_io + 2 * BLK, aligned */
	uint64_t n;              /* operations done */
	bool unsupported[OP_COUNT];
	uint64_t count[OP_COUNT];
	uint64_t checked;        /* bytes compared */
	char rel[PATH_MAX];      /* DIR below the mount root, "" or "a/b/" */
	struct snap **snaps;     /* changed under snap_lock by the main thread only */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;   /* a snapshot's readers dropped to 0 */
	unsigned nreaders;
	pthread_t readers[8];
	atomic_bool stop;
	atomic_uint_fast64_t reader_checked, reader_reads;
	unsigned nsnaps, snaps_taken, snaps_deleted, snap_checks;
	uint64_t snap_serial;
	struct logent *log;      /* ring of nlog entries */
	uint64_t nlogged;
	const char *phase;       /* what a mismatch was found by */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fsx: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* The byte an operation with `tag` writes at file offset `pos`: never 0. */
static uint8_t pattern(uint32_t tag, int64_t pos)
{
	return (uint8_t)(1 + ((uint64_t)tag + (uint64_t)pos + (uint64_t)pos / 251) % 255);
}

static void fill(uint8_t *p, uint32_t tag, int64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(tag, off + (int64_t)i);
}

/* ---- the operation log -------------------------------------------------------------- */

static struct logent *log_add(struct fsx *x, enum op op, int f)
{
	struct logent *e = &x->log[x->nlogged++ % x->nlog];

	memset(e, 0, sizeof(*e));
	e->n = op < OP_COUNT ? x->n + 1 : x->n;
	e->op = op;
	e->f = f;
	e->f2 = -1;
	e->size0 = e->size1 = f >= 0 ? x->file[f].size : 0;
	return e;
}

static void log_print(const struct logent *e, FILE *out)
{
	fprintf(out, "%8" PRIu64 " %-16s", e->n, op_info[e->op].name);
	if (e->op >= OP_COUNT) {
		fprintf(out, " %s\n", e->note);
		return;
	}
	fprintf(out, " f%d", e->f);
	switch (e->op) {
	case OP_REOPEN: case OP_FSYNC: case OP_FDATASYNC: case OP_OPENTRUNC:
		break;
	case OP_FTRUNCATE: case OP_TRUNCATE:
		fprintf(out, " to 0x%" PRIx64, e->size1);
		break;
	case OP_COPY: case OP_COPY_SELF:
		fprintf(out, " from f%d 0x%" PRIx64 " to 0x%" PRIx64 " len 0x%" PRIx64,
			e->f2, e->off2, e->off, e->len);
		break;
	case OP_SNAPCOPY:
		fprintf(out, " from %s f%d 0x%" PRIx64 " to 0x%" PRIx64 " len 0x%" PRIx64,
			e->note, e->f2, e->off2, e->off, e->len);
		break;
	case OP_SNAPREAD:
		fprintf(out, " of %s 0x%" PRIx64 " len 0x%" PRIx64, e->note, e->off, e->len);
		break;
	default:
		fprintf(out, " 0x%" PRIx64 " len 0x%" PRIx64 " [0x%" PRIx64 ", 0x%" PRIx64 ")",
			e->off, e->len, e->off, e->off + e->len);
	}
	if (e->tag)
		fprintf(out, " tag %08" PRIx32, e->tag);
	if (e->size0 != e->size1)
		fprintf(out, " size 0x%" PRIx64 " -> 0x%" PRIx64, e->size0, e->size1);
	fputc('\n', out);
}

static void log_dump(const struct fsx *x, FILE *out)
{
	uint64_t first = x->nlogged > x->nlog ? x->nlogged - x->nlog : 0;

	fprintf(out, "fsx: the last %" PRIu64 " operations and events (newest last):\n",
		x->nlogged - first);
	for (uint64_t i = first; i < x->nlogged; i++)
		log_print(&x->log[i % x->nlog], out);
}

static void replay_hint(const struct fsx *x, FILE *out)
{
	fprintf(out, "fsx: replay:");
	for (int i = 0; i < x->argc; i++) {
		if (!strcmp(x->argv[i], "--ops") || !strcmp(x->argv[i], "-N")) {
			i++;
			continue;
		}
		fprintf(out, " %s", x->argv[i]);
	}
	fprintf(out, " --ops %" PRIu64 "\n", x->n + 1);
}

/*
 * The first thread to find a failure reports it and exits; any other one
 * that finds one meanwhile waits for that.
 */
static void fail_enter(void)
{
	static atomic_flag taken = ATOMIC_FLAG_INIT;
	static _Thread_local bool mine;

	if (mine)
		return;
	if (atomic_flag_test_and_set(&taken))
		for (;;)
			pause();
	mine = true;
}

static void fail(struct fsx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void fail(struct fsx *x, const char *fmt, ...)
{
	va_list ap;

	fail_enter();
	fflush(stdout);
	fprintf(stderr, "fsx: seed %" PRIu64 ": FAILED at operation %" PRIu64 " (%s): ",
		x->seed, x->n + 1, x->phase);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	log_dump(x, stderr);
	replay_hint(x, stderr);
	exit(1);
}

/* ---- reading back and comparing ------------------------------------------------------ */

static void hexline(FILE *out, const uint8_t *p, size_t n, const uint8_t *other)
{
	for (size_t i = 0; i < 16; i++) {
		if (i < n)
			fprintf(out, other && p[i] != other[i] ? "%02x*" : "%02x ", p[i]);
		else
			fprintf(out, "   ");
	}
}

#define SHIFT_MAX ((int64_t)256 << 10)

/* Which logged write put `act` (n bytes) at `pos` of file f? */
static void guess_writer(const struct fsx *x, int f, int64_t pos, const uint8_t *act, size_t n)
{
	uint64_t first = x->nlogged > x->nlog ? x->nlogged - x->nlog : 0;
	bool zeros = true;

	for (size_t i = 0; i < n; i++)
		zeros = zeros && act[i] == 0;
	if (zeros) {
		fprintf(stderr, "fsx:   the actual bytes there are zeros (a hole, or data lost)\n");
		return;
	}
	for (uint64_t i = x->nlogged; i-- > first;) {
		const struct logent *e = &x->log[i % x->nlog];
		size_t k;

		if (!e->tag)
			continue;
		for (k = 0; k < n && act[k] == pattern(e->tag, pos + (int64_t)k); k++)
			;
		if (k == n) {
			fprintf(stderr, "fsx:   the actual bytes there are the pattern of operation %"
				PRIu64 "%s (%s, tag %08" PRIx32 ")\n", e->n,
				e->f == f ? "" : " on another file", op_info[e->op].name, e->tag);
			return;
		}
	}
	for (uint64_t i = x->nlogged; i-- > first;) {
		const struct logent *e = &x->log[i % x->nlog];

		if (!e->tag)
			continue;
		for (int64_t d = -SHIFT_MAX; d <= SHIFT_MAX; d++) {
			size_t k;

			for (k = 0; k < n && act[k] == pattern(e->tag, pos + d + (int64_t)k); k++)
				;
			if (k == n) {
				fprintf(stderr, "fsx:   the actual bytes there are the pattern of operation %"
					PRIu64 " (%s, tag %08" PRIx32 ") for offset 0x%" PRIx64
					" (shifted by %+" PRId64 ")\n", e->n, op_info[e->op].name,
					e->tag, pos + d, d);
				return;
			}
		}
	}
	fprintf(stderr, "fsx:   the actual bytes there are not the pattern of any logged write\n");
}

static void report_mismatch(struct fsx *x, const char *what, int f, int64_t base,
			    const uint8_t *exp, const uint8_t *act, size_t n, size_t i)
{
	size_t j = i, from, to;

	fail_enter();
	while (j < n && exp[j] != act[j])
		j++;
	fflush(stdout);
	fprintf(stderr, "fsx: MISMATCH in %s at offset 0x%" PRIx64 " (%" PRId64 "): "
		"expected %02x, read %02x; %zu%s byte(s) differ from there on\n", what,
		base + (int64_t)i, base + (int64_t)i, exp[i], act[i], j - i,
		j == n ? "+" : "");
	fprintf(stderr, "fsx:   %-18s %-48s   %s\n", "offset", "expected", "actual");
	from = i & ~(size_t)15;
	from = from >= 32 ? from - 32 : 0;
	to = min_sz(n, (i & ~(size_t)15) + 64);
	for (size_t k = from; k < to; k += 16) {
		size_t m = min_sz(16, to - k);

		fprintf(stderr, "fsx:   0x%016" PRIx64 " ", base + (int64_t)k);
		hexline(stderr, exp + k, m, act + k);
		fprintf(stderr, "  ");
		hexline(stderr, act + k, m, exp + k);
		fputc('\n', stderr);
	}
	guess_writer(x, f, base + (int64_t)i, act + i, min_sz(16, j - i));
	fail(x, "%s: data mismatch at offset 0x%" PRIx64, what, base + (int64_t)i);
}

static ssize_t pread_full(int fd, void *buf, size_t len, int64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + (int64_t)done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * Read [off, off + len) of fd and compare it with model[0, size): the read
 * must return exactly the model's bytes and stop at `size`.
 */
static void check_fd(struct fsx *x, const char *what, int f, int fd, const uint8_t *model,
		     int64_t size, int64_t off, size_t len, uint8_t *rb)
{
	size_t want = off >= size ? 0 : min_sz(len, (size_t)(size - off));
	ssize_t n;

	n = pread_full(fd, rb, len, off);
	if (n < 0)
		fail(x, "%s: pread 0x%" PRIx64 " len 0x%zx: %s", what, off, len, strerror(errno));
	if ((size_t)n != want)
		fail(x, "%s: pread 0x%" PRIx64 " len 0x%zx returned 0x%zx bytes, expected 0x%zx "
		     "(size 0x%" PRIx64 ")", what, off, len, (size_t)n, want, size);
	if (memcmp(rb, model + off, want)) {
		for (size_t i = 0; i < want; i++)
			if (rb[i] != model[off + (int64_t)i])
				report_mismatch(x, what, f, off, model + off, rb, want, i);
	}
	x->checked += want;
}

static void check_size(struct fsx *x, const char *what, int fd, int64_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		fail(x, "%s: fstat: %s", what, strerror(errno));
	if (st.st_size != size)
		fail(x, "%s: size is 0x%" PRIx64 ", expected 0x%" PRIx64, what,
		     (int64_t)st.st_size, size);
}

/* The bytes around [off, off + len) of file f, and its size. */
static void check_around(struct fsx *x, int f, int64_t off, int64_t len)
{
	struct file *fl = &x->file[f];
	int64_t a = off > 64 ? off - 64 : 0, b = off + len + 64;
	char what[64];

	snprintf(what, sizeof(what), "f%d", f);
	check_size(x, what, fl->fd, fl->size);
	if (b > x->max_size + 1)
		b = x->max_size + 1;
	while (a < b) {
		size_t n = min_sz((size_t)(b - a), x->max_io + 2 * BLK);

		check_fd(x, what, f, fl->fd, fl->model, fl->size, a, n, x->rbuf);
		a += (int64_t)n;
	}
}

/* The whole of file f through fd, in reads of random lengths. */
static void check_whole(struct fsx *x, const char *what, int f, int fd, const uint8_t *model,
			int64_t size)
{
	int64_t off = 0;

	check_size(x, what, fd, size);
	while (off <= size) {
		size_t n = one_in(&x->aux, 2) ? IO_CHUNK : (size_t)between(&x->aux, 1, IO_CHUNK);

		check_fd(x, what, f, fd, model, size, off, n, x->rbuf);
		off += (int64_t)n;
	}
}

/*
 * SEEK_DATA/SEEK_HOLE from `off` on fd: whatever they call a hole must read
 * as zeros in the model (a filesystem may call zeros data, never data a
 * hole), and they must stay within [off, size].
 */
static void check_seek_at(struct fsx *x, const char *what, int fd, const uint8_t *model,
			  int64_t size, int64_t off)
{
	off_t d = lseek(fd, off, SEEK_DATA), h, d2;

	if (d < 0 && errno != ENXIO)
		fail(x, "%s: SEEK_DATA from 0x%" PRIx64 ": %s", what, off, strerror(errno));
	if (d < 0 && off < size)
		d = size;   /* ENXIO: no data from off on: a hole to EOF */
	if (off >= size) {
		if (lseek(fd, off, SEEK_DATA) >= 0 || errno != ENXIO)
			fail(x, "%s: SEEK_DATA from 0x%" PRIx64 " at or past EOF 0x%" PRIx64
			     " did not fail with ENXIO", what, off, size);
		return;
	}
	if (d < off || d > size)
		fail(x, "%s: SEEK_DATA from 0x%" PRIx64 " gave 0x%" PRIx64 " (size 0x%" PRIx64 ")",
		     what, off, (int64_t)d, size);
	for (int64_t i = off; i < d; i++)
		if (model[i])
			fail(x, "%s: SEEK_DATA from 0x%" PRIx64 " skipped data: 0x%" PRIx64
			     " is not zero but lies before 0x%" PRIx64, what, off, i, (int64_t)d);
	h = lseek(fd, off, SEEK_HOLE);
	if (h < 0)
		fail(x, "%s: SEEK_HOLE from 0x%" PRIx64 ": %s", what, off, strerror(errno));
	if (h < off || h > size)
		fail(x, "%s: SEEK_HOLE from 0x%" PRIx64 " gave 0x%" PRIx64 " (size 0x%" PRIx64 ")",
		     what, off, (int64_t)h, size);
	if (h == size)
		return;
	d2 = lseek(fd, h, SEEK_DATA);
	if (d2 < 0 && errno != ENXIO)
		fail(x, "%s: SEEK_DATA from 0x%" PRIx64 ": %s", what, (int64_t)h, strerror(errno));
	if (d2 < 0)
		d2 = size;
	for (int64_t i = h; i < d2; i++)
		if (model[i])
			fail(x, "%s: [0x%" PRIx64 ", 0x%" PRIx64 ") is a hole per SEEK_HOLE/SEEK_DATA "
			     "from 0x%" PRIx64 ", but 0x%" PRIx64 " is not zero", what, (int64_t)h,
			     (int64_t)d2, off, i);
}

/* Walk the whole file by SEEK_DATA/SEEK_HOLE, data segment by data segment. */
static void check_seek_walk(struct fsx *x, const char *what, int fd, const uint8_t *model,
			    int64_t size)
{
	int64_t off = 0;

	while (off < size) {
		off_t d, h;

		check_seek_at(x, what, fd, model, size, off);
		d = lseek(fd, off, SEEK_DATA);
		if (d < 0)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h <= d)
			fail(x, "%s: SEEK_HOLE from data at 0x%" PRIx64 " gave 0x%" PRIx64, what,
			     (int64_t)d, (int64_t)h);
		off = h;
	}
	check_seek_at(x, what, fd, model, size, size);
}

static void check_all_live(struct fsx *x, const char *phase)
{
	const char *saved = x->phase;

	x->phase = phase;
	for (unsigned f = 0; f < x->nfiles; f++) {
		char what[64];

		snprintf(what, sizeof(what), "f%u", f);
		check_whole(x, what, (int)f, x->file[f].fd, x->file[f].model, x->file[f].size);
		check_seek_walk(x, what, x->file[f].fd, x->file[f].model, x->file[f].size);
	}
	x->phase = saved;
}

/* ---- files ------------------------------------------------------------------------------ */

static int file_open(struct fsx *x, int f, int extra)
{
	struct file *fl = &x->file[f];

	fl->fd = open(fl->path, O_RDWR | O_CLOEXEC | extra);
	return fl->fd;
}

static void file_close(struct fsx *x, int f)
{
	struct file *fl = &x->file[f];

	if (fl->dfd >= 0 && close(fl->dfd) < 0)
		fail(x, "f%d: close of the O_DIRECT fd: %s", f, strerror(errno));
	fl->dfd = -1;
	if (close(fl->fd) < 0)
		fail(x, "f%d: close: %s", f, strerror(errno));
	fl->fd = -1;
}

/* Set the model's size; what lies past it reads as zeros later. */
static void model_resize(struct file *fl, int64_t size)
{
	if (size < fl->size)
		memset(fl->model + size, 0, (size_t)(fl->size - size));
	fl->size = size;
}

static void model_extend(struct file *fl, int64_t end)
{
	if (end > fl->size)
		fl->size = end;
}

/* ---- choosing ranges --------------------------------------------------------------------- */

/* A length from 1 to max (at most --max-io): mostly small, sometimes large or block aligned. */
static size_t rand_len(struct fsx *x, size_t max)
{
	size_t n;

	max = min_sz(max, x->max_io);
	if (max == 0)
		return 0;
	switch (below(&x->rng, 10)) {
	case 0:
		n = (size_t)between(&x->rng, 1, 16);
		break;
	case 1: case 2: case 3:
		n = (size_t)between(&x->rng, 1, 4096);
		break;
	case 4: case 5:
		n = (size_t)between(&x->rng, 1, 65536);
		break;
	case 6:
		n = (size_t)between(&x->rng, 1, 16) * BLK;
		break;
	case 7:
		n = (size_t)between(&x->rng, 4096, 4 * 65536);
		break;
	default:
		n = (size_t)between(&x->rng, 1, (int64_t)x->max_io);
	}
	return n > max ? (size_t)between(&x->rng, 1, (int64_t)max) : n;
}

/*
 * An offset in [0, limit] for `len` bytes: uniform, near a 4 KiB or 64 KiB
 * boundary so that [off, off + len) crosses it, or near `eof`.
 */
static int64_t rand_off(struct fsx *x, int64_t limit, int64_t len, int64_t eof)
{
	int64_t off, b;

	if (limit <= 0)
		return 0;
	switch (below(&x->rng, 6)) {
	case 0: case 1:
		off = between(&x->rng, 0, limit);
		break;
	case 2:
	case 3:
		b = below(&x->rng, 2) ? BLK : 65536;
		off = (int64_t)below(&x->rng, (uint64_t)(limit / b) + 1) * b;
		off -= between(&x->rng, 0, len < b ? len : b);
		break;
	case 4:
		off = eof - between(&x->rng, -(int64_t)BLK, len + BLK);
		break;
	default:
		off = (int64_t)below(&x->rng, (uint64_t)(limit / BLK) + 1) * BLK;
	}
	if (off < 0)
		off = 0;
	return off > limit ? limit : off;
}

/* A range inside a file of `size` (> 0) bytes, into e->off and e->len; its length. */
static size_t rand_range_inside(struct fsx *x, struct logent *e, int64_t size)
{
	size_t len = rand_len(x, (size_t)size);

	e->off = rand_off(x, size - (int64_t)len, (int64_t)len, size);
	e->len = (int64_t)len;
	return len;
}

/* ---- one operation -------------------------------------------------------------------------- */

static void note_unsupported(struct fsx *x, enum op op, int err)
{
	x->unsupported[op] = true;
	printf("fsx: %s: not supported here (%s): not generated from now on\n",
	       op_info[op].name, strerror(err));
}

static bool is_unsupported_errno(int err)
{
	return err == EOPNOTSUPP || err == ENOSYS;
}

/*
 * Write `len` bytes of a fresh tag at `off` through `fd` (the file's plain
 * or O_DIRECT fd), log them in `e` and put them in the model.
 */
static void write_tagged(struct fsx *x, struct logent *e, struct file *fl, int fd, int64_t off,
			 size_t len, const char *what)
{
	ssize_t n;

	e->off = off;
	e->len = (int64_t)len;
	e->tag = (uint32_t)rng_next(&x->rng) | 1;
	fill(x->buf, e->tag, off, len);
	n = pwrite(fd, x->buf, len, off);
	if (n < 0)
		fail(x, "%s: %s", what, strerror(errno));
	if ((size_t)n != len)
		fail(x, "%s: short write of 0x%zx of 0x%zx bytes", what, (size_t)n, len);
	memcpy(fl->model + off, x->buf, len);
	model_extend(fl, off + (int64_t)len);
}

static void do_write(struct fsx *x, struct logent *e, struct file *fl)
{
	size_t len = rand_len(x, x->max_io);
	int64_t off;

	if ((int64_t)len > x->max_size)
		len = (size_t)x->max_size;
	off = rand_off(x, x->max_size - (int64_t)len, (int64_t)len, fl->size);
	write_tagged(x, e, fl, fl->fd, off, len, "pwrite");
}

/*
 * A run of pwrites one after the other (as a copy or a database log writes),
 * each of its own length: one pattern, so one log entry for all of them.
 */
static void do_seqwrite(struct fsx *x, struct logent *e, struct file *fl)
{
	int64_t off = rand_off(x, x->max_size - 1, x->max_size, fl->size), pos = off;
	int64_t end = off + (int64_t)rand_len(x, (size_t)(x->max_size - off));
	size_t step = one_in(&x->rng, 2) ? 65536 : rand_len(x, x->max_io);

	if (one_in(&x->rng, 2))   /* far more: several windows of copy-on-write readahead */
		end = x->max_size;
	e->off = off;
	e->len = end - off;
	e->tag = (uint32_t)rng_next(&x->rng) | 1;
	while (pos < end) {
		size_t len = min_sz(one_in(&x->rng, 4) ? rand_len(x, x->max_io) : step,
				    (size_t)(end - pos));
		ssize_t n;

		fill(x->buf, e->tag, pos, len);
		n = pwrite(fl->fd, x->buf, len, pos);
		if (n < 0)
			fail(x, "pwrite at 0x%" PRIx64 ": %s", pos, strerror(errno));
		if ((size_t)n != len)
			fail(x, "pwrite at 0x%" PRIx64 ": short write of 0x%zx of 0x%zx bytes", pos,
			     (size_t)n, len);
		memcpy(fl->model + pos, x->buf, len);
		pos += (int64_t)len;
	}
	model_extend(fl, end);
}

static void do_read(struct fsx *x, struct logent *e, int f)
{
	struct file *fl = &x->file[f];
	size_t len = rand_len(x, x->max_io);
	char what[64];

	e->off = rand_off(x, fl->size + BLK, (int64_t)len, fl->size);
	e->len = (int64_t)len;
	snprintf(what, sizeof(what), "f%d pread", f);
	check_fd(x, what, f, fl->fd, fl->model, fl->size, e->off, len, x->rbuf);
}

/* mmap [off, off + len) of a file of `size` bytes; returns the mapping of the page range */
static uint8_t *map_range(struct fsx *x, int fd, int prot, int64_t off, int64_t len,
			  int64_t *ret_pgoff, size_t *ret_maplen)
{
	int64_t pg = sysconf(_SC_PAGESIZE), pgoff = off & ~(pg - 1);
	size_t maplen = (size_t)(off + len - pgoff);
	void *p;

	p = mmap(NULL, maplen, prot, MAP_SHARED, fd, pgoff);
	if (p == MAP_FAILED)
		fail(x, "mmap 0x%" PRIx64 " len 0x%zx: %s", pgoff, maplen, strerror(errno));
	*ret_pgoff = pgoff;
	*ret_maplen = maplen;
	return p;
}

/*
 * The rest of the page that holds EOF, seen through a mapping, must be
 * zeros (POSIX: a mapping past EOF within the last page reads zeros).
 */
static void check_eof_page(struct fsx *x, int f)
{
	struct file *fl = &x->file[f];
	int64_t pg = sysconf(_SC_PAGESIZE), pgoff = (fl->size - 1) & ~(pg - 1);
	size_t maplen;
	uint8_t *p;

	if (fl->size % pg == 0)
		return;
	p = map_range(x, fl->fd, PROT_READ, pgoff, pg, &pgoff, &maplen);
	for (int64_t i = fl->size - pgoff; i < pg; i++)
		if (p[i]) {
			uint8_t v = p[i];

			munmap(p, maplen);
			fail(x, "f%d: mmap of the page holding EOF 0x%" PRIx64 ": byte 0x%" PRIx64
			     " past EOF is %02x, not zero", f, fl->size, pgoff + i, v);
		}
	munmap(p, maplen);
}

static bool do_mapread(struct fsx *x, struct logent *e, int f)
{
	struct file *fl = &x->file[f];
	int64_t pgoff;
	size_t maplen, len;
	uint8_t *p;

	if (fl->size == 0)
		return false;
	len = rand_range_inside(x, e, fl->size);
	p = map_range(x, fl->fd, PROT_READ, e->off, e->len, &pgoff, &maplen);
	memcpy(x->rbuf, p + (e->off - pgoff), len);
	munmap(p, maplen);
	check_eof_page(x, f);
	if (memcmp(x->rbuf, fl->model + e->off, len)) {
		char what[64];

		snprintf(what, sizeof(what), "f%d mmap read", f);
		for (size_t i = 0; i < len; i++)
			if (x->rbuf[i] != fl->model[e->off + (int64_t)i])
				report_mismatch(x, what, f, e->off, fl->model + e->off, x->rbuf, len, i);
	}
	x->checked += len;
	return true;
}

static bool do_mapwrite(struct fsx *x, struct logent *e, struct file *fl)
{
	int64_t pgoff;
	size_t maplen, len;
	uint8_t *p;

	if (fl->size == 0)
		return false;
	len = rand_range_inside(x, e, fl->size);
	e->tag = (uint32_t)rng_next(&x->rng) | 1;
	p = map_range(x, fl->fd, PROT_READ | PROT_WRITE, e->off, e->len, &pgoff, &maplen);
	fill(p + (e->off - pgoff), e->tag, e->off, len);
	if (msync(p, maplen, MS_SYNC) < 0)
		fail(x, "msync: %s", strerror(errno));
	munmap(p, maplen);
	fill(fl->model + e->off, e->tag, e->off, len);
	return true;
}

static int64_t rand_size(struct fsx *x, const struct file *fl)
{
	switch (below(&x->rng, 8)) {
	case 0:
		return 0;
	case 1: case 2: case 3:
		return between(&x->rng, 0, fl->size);            /* down */
	case 4:
		return (between(&x->rng, 0, x->max_size) / 65536) * 65536;
	default:
		return between(&x->rng, fl->size, x->max_size);   /* up */
	}
}

static void do_truncate(struct fsx *x, struct logent *e, struct file *fl, bool by_path)
{
	int64_t size = rand_size(x, fl);
	int r;

	e->off = min_sz((size_t)size, (size_t)fl->size);
	e->len = size > fl->size ? size - fl->size : fl->size - size;
	r = by_path ? truncate(fl->path, size) : ftruncate(fl->fd, size);
	if (r < 0)
		fail(x, "%s to 0x%" PRIx64 ": %s", by_path ? "truncate" : "ftruncate", size,
		     strerror(errno));
	model_resize(fl, size);
}

static void do_open_trunc(struct fsx *x, struct logent *e, int f)
{
	struct file *fl = &x->file[f];

	e->off = 0;
	e->len = fl->size;
	file_close(x, f);
	if (file_open(x, f, O_TRUNC) < 0)
		fail(x, "open(O_TRUNC) %s: %s", fl->path, strerror(errno));
	model_resize(fl, 0);
}

/* fallocate with `mode`; false if it is not supported here */
static bool do_falloc(struct fsx *x, struct logent *e, struct file *fl, enum op op, int mode)
{
	int64_t len = (int64_t)rand_len(x, x->max_io), off;

	if (len > x->max_size)
		len = x->max_size;
	off = rand_off(x, x->max_size - len, len, fl->size);
	if (op == OP_PUNCH && one_in(&x->rng, 4) && fl->size > 0) {
		/* to or beyond EOF */
		off = between(&x->rng, 0, fl->size);
		len = x->max_size - off;
	}
	if (len == 0)
		return false;
	e->off = off;
	e->len = len;
	if (fallocate(fl->fd, mode, off, len) < 0) {
		if (is_unsupported_errno(errno) && !x->unsupported[op]) {
			note_unsupported(x, op, errno);
			return false;
		}
		fail(x, "fallocate mode 0x%x 0x%" PRIx64 " len 0x%" PRIx64 ": %s", mode, off, len,
		     strerror(errno));
	}
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		int64_t end = off + len;

		if (mode & FALLOC_FL_KEEP_SIZE)
			end = end < fl->size ? end : fl->size;
		if (end > off)
			memset(fl->model + off, 0, (size_t)(end - off));
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE))
		model_extend(fl, off + len);
	return true;
}

static bool do_collapse(struct fsx *x, struct logent *e, struct file *fl)
{
	int64_t blocks = fl->size / BLK, off, len;

	if (blocks < 2)
		return false;
	/* off + len must stay below EOF */
	off = between(&x->rng, 0, blocks - 2) * BLK;
	len = between(&x->rng, 1, min_sz((size_t)((fl->size - off - 1) / BLK), 64)) * BLK;
	e->off = off;
	e->len = len;
	if (fallocate(fl->fd, FALLOC_FL_COLLAPSE_RANGE, off, len) < 0) {
		if (is_unsupported_errno(errno)) {
			note_unsupported(x, OP_COLLAPSE, errno);
			return false;
		}
		fail(x, "collapse range 0x%" PRIx64 " len 0x%" PRIx64 ": %s", off, len,
		     strerror(errno));
	}
	memmove(fl->model + off, fl->model + off + len, (size_t)(fl->size - off - len));
	model_resize(fl, fl->size - len);
	return true;
}

static bool do_insert(struct fsx *x, struct logent *e, struct file *fl)
{
	int64_t off, len, room = (x->max_size - fl->size) / BLK;

	if (fl->size < 1 || room < 1)
		return false;
	off = between(&x->rng, 0, (fl->size - 1) / BLK) * BLK;
	len = between(&x->rng, 1, min_sz((size_t)room, 64)) * BLK;
	e->off = off;
	e->len = len;
	if (fallocate(fl->fd, FALLOC_FL_INSERT_RANGE, off, len) < 0) {
		if (is_unsupported_errno(errno)) {
			note_unsupported(x, OP_INSERT, errno);
			return false;
		}
		fail(x, "insert range 0x%" PRIx64 " len 0x%" PRIx64 ": %s", off, len,
		     strerror(errno));
	}
	memmove(fl->model + off + len, fl->model + off, (size_t)(fl->size - off));
	memset(fl->model + off, 0, (size_t)len);
	fl->size += len;
	return true;
}

static bool do_copy(struct fsx *x, struct logent *e, int fo, int fi)
{
	struct file *out = &x->file[fo], *in = &x->file[fi];
	int64_t len, off_in, off_out;
	loff_t pin, pout;
	size_t done = 0;

	if (in->size == 0)
		return false;
	len = (int64_t)rand_len(x, min_sz((size_t)in->size, x->max_io));
	off_in = rand_off(x, in->size - len, len, in->size);
	if (fo != fi) {
		off_out = rand_off(x, x->max_size - len, len, out->size);
	} else {
		/* a destination that does not overlap the source */
		int64_t before = off_in - len, after = x->max_size - len;   /* [0, before], [off_in + len, after] */

		if (before < 0 && after < off_in + len)
			return false;
		if (before >= 0 && (after < off_in + len || one_in(&x->rng, 2)))
			off_out = between(&x->rng, 0, before);
		else
			off_out = between(&x->rng, off_in + len, after);
		if (one_in(&x->rng, 3))
			off_out = off_out / BLK * BLK;
		if (off_out < off_in + len && off_out + len > off_in)
			return false;
	}
	e->f2 = fi;
	e->off = off_out;
	e->off2 = off_in;
	e->len = len;
	pin = off_in;
	pout = off_out;
	while (done < (size_t)len) {
		ssize_t n = copy_file_range(in->fd, &pin, out->fd, &pout, (size_t)len - done, 0);

		if (n < 0) {
			enum op op = fo == fi ? OP_COPY_SELF : OP_COPY;

			if (done == 0 && (is_unsupported_errno(errno) || errno == EXDEV)) {
				note_unsupported(x, op, errno);
				return false;
			}
			fail(x, "copy_file_range: %s (after 0x%zx bytes)", strerror(errno), done);
		}
		if (n == 0)
			fail(x, "copy_file_range: copied 0x%zx of 0x%" PRIx64 " bytes, then 0 "
			     "(source size 0x%" PRIx64 ")", done, len, in->size);
		done += (size_t)n;
	}
	memmove(out->model + off_out, in->model + off_in, (size_t)len);
	model_extend(out, off_out + len);
	return true;
}

static void do_append(struct fsx *x, struct logent *e, int f)
{
	struct file *fl = &x->file[f];
	size_t len = rand_len(x, (size_t)(x->max_size - fl->size));
	ssize_t n;
	int fd;

	if (len == 0) {
		/* full: make room first, as part of this operation */
		if (ftruncate(fl->fd, x->max_size / 2) < 0)
			fail(x, "ftruncate before append: %s", strerror(errno));
		model_resize(fl, x->max_size / 2);
		e->size0 = fl->size;
		len = rand_len(x, (size_t)(x->max_size - fl->size));
	}
	e->off = fl->size;
	e->len = (int64_t)len;
	e->tag = (uint32_t)rng_next(&x->rng) | 1;
	fill(x->buf, e->tag, fl->size, len);
	fd = open(fl->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		fail(x, "open(O_APPEND): %s", strerror(errno));
	n = write(fd, x->buf, len);
	if (n < 0)
		fail(x, "append write: %s", strerror(errno));
	if ((size_t)n != len)
		fail(x, "append write: short write of 0x%zx of 0x%zx bytes", (size_t)n, len);
	if (close(fd) < 0)
		fail(x, "close after append: %s", strerror(errno));
	memcpy(fl->model + fl->size, x->buf, len);
	fl->size += (int64_t)len;
}

static bool direct_fd(struct fsx *x, enum op op, struct file *fl)
{
	if (fl->dfd >= 0)
		return true;
	fl->dfd = open(fl->path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fl->dfd >= 0)
		return true;
	if (errno == EINVAL || is_unsupported_errno(errno)) {
		note_unsupported(x, OP_DWRITE, errno);
		x->unsupported[OP_DREAD] = true;
		return false;
	}
	fail(x, "%s: open(O_DIRECT): %s", op_info[op].name, strerror(errno));
}

static bool do_dwrite(struct fsx *x, struct logent *e, struct file *fl)
{
	int64_t blocks = x->max_size / BLK, off;
	size_t len;

	if (blocks < 1 || !direct_fd(x, OP_DWRITE, fl))
		return false;
	len = (size_t)between(&x->rng, 1, min_sz((size_t)blocks, x->max_io / BLK)) * BLK;
	off = between(&x->rng, 0, blocks - (int64_t)(len / BLK)) * BLK;
	if (one_in(&x->rng, 3))   /* at EOF */
		off = min_sz((size_t)((fl->size + BLK - 1) / BLK * BLK),
				  (size_t)(x->max_size - (int64_t)len));
	write_tagged(x, e, fl, fl->dfd, off, len, "O_DIRECT pwrite");
	return true;
}

static bool do_dread(struct fsx *x, struct logent *e, int f)
{
	struct file *fl = &x->file[f];
	int64_t blocks = (fl->size + BLK - 1) / BLK;
	char what[64];
	size_t len;

	if (blocks < 1 || !direct_fd(x, OP_DREAD, fl))
		return false;
	len = (size_t)between(&x->rng, 1, min_sz((size_t)blocks + 1, x->max_io / BLK)) * BLK;
	e->off = between(&x->rng, 0, blocks) * BLK;
	e->len = (int64_t)len;
	snprintf(what, sizeof(what), "f%d O_DIRECT pread", f);
	check_fd(x, what, f, fl->dfd, fl->model, fl->size, e->off, len, x->rbuf);
	return true;
}

static void snap_path(const struct fsx *x, const char *name, unsigned f, char *buf, size_t n);

/* Open file f of a random snapshot; -1 if there is none. */
static int snap_open(struct fsx *x, struct logent *e, int f, int flags, struct snap **ret)
{
	char path[PATH_MAX];
	struct snap *s;
	int fd;

	if (x->nsnaps == 0)
		return -1;
	s = x->snaps[below(&x->rng, x->nsnaps)];
	snprintf(e->note, sizeof(e->note), "%s", s->name);
	snap_path(x, s->name, (unsigned)f, path, sizeof(path));
	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		fail(x, "open %s: %s", path, strerror(errno));
	*ret = s;
	return fd;
}

/* A random range of file f in a random snapshot, buffered or O_DIRECT. */
static bool do_snapread(struct fsx *x, struct logent *e, int f)
{
	bool direct = one_in(&x->rng, 3);
	size_t len = rand_len(x, x->max_io);
	char what[PATH_MAX];
	struct snap *s;
	int fd = snap_open(x, e, f, O_RDONLY | (direct ? O_DIRECT : 0), &s);

	if (fd < 0)
		return false;
	e->off = rand_off(x, s->size[f] + BLK, (int64_t)len, s->size[f]);
	e->len = (int64_t)len;
	snprintf(what, sizeof(what), "snapshot %s f%d%s", s->name, f, direct ? " O_DIRECT" : "");
	check_fd(x, what, f, fd, s->data[f], s->size[f], e->off, len, x->rbuf);
	close(fd);
	return true;
}

/* copy_file_range from file f2 of a random snapshot into file f */
static bool do_snapcopy(struct fsx *x, struct logent *e, int f, int f2)
{
	struct file *out = &x->file[f];
	int64_t len, off_in, off_out;
	loff_t pin, pout;
	struct snap *s;
	size_t done = 0;
	int fd = snap_open(x, e, f2, O_RDONLY, &s);

	if (fd < 0)
		return false;
	if (s->size[f2] == 0) {
		close(fd);
		return false;
	}
	len = (int64_t)rand_len(x, min_sz((size_t)s->size[f2], x->max_io));
	off_in = rand_off(x, s->size[f2] - len, len, s->size[f2]);
	off_out = rand_off(x, x->max_size - len, len, out->size);
	e->f2 = f2;
	e->off = off_out;
	e->off2 = off_in;
	e->len = len;
	pin = off_in;
	pout = off_out;
	while (done < (size_t)len) {
		ssize_t n = copy_file_range(fd, &pin, out->fd, &pout, (size_t)len - done, 0);

		if (n < 0) {
			if (done == 0 && (is_unsupported_errno(errno) || errno == EXDEV)) {
				note_unsupported(x, OP_SNAPCOPY, errno);
				close(fd);
				return false;
			}
			fail(x, "copy_file_range from %s: %s (after 0x%zx bytes)", s->name,
			     strerror(errno), done);
		}
		if (n == 0)
			fail(x, "copy_file_range from %s: copied 0x%zx of 0x%" PRIx64 " bytes, then 0 "
			     "(source size 0x%" PRIx64 ")", s->name, done, len, s->size[f2]);
		done += (size_t)n;
	}
	close(fd);
	memcpy(out->model + off_out, s->data[f2] + off_in, (size_t)len);
	model_extend(out, off_out + len);
	return true;
}

static void do_reopen(struct fsx *x, int f)
{
	file_close(x, f);
	if (file_open(x, f, 0) < 0)
		fail(x, "reopen %s: %s", x->file[f].path, strerror(errno));
}

static enum op pick_op(struct fsx *x)
{
	unsigned total = 0, w;

	for (int i = 0; i < OP_COUNT; i++)
		if (!x->disabled[i] && !x->unsupported[i])
			total += op_info[i].weight;
	if (total == 0)
		die("every operation is disabled");
	w = (unsigned)below(&x->rng, total);
	for (int i = 0; i < OP_COUNT; i++) {
		if (x->disabled[i] || x->unsupported[i])
			continue;
		if (w < op_info[i].weight)
			return (enum op)i;
		w -= op_info[i].weight;
	}
	return OP_WRITE;
}

/* Generate and apply one operation, then check what it touched. */
static void one_op(struct fsx *x)
{
	for (;;) {
		enum op op = pick_op(x);
		int f = (int)below(&x->rng, x->nfiles), f2;
		struct file *fl = &x->file[f];
		struct logent *e = log_add(x, op, f);
		bool done = true;

		x->phase = op_info[op].name;
		switch (op) {
		case OP_WRITE: do_write(x, e, fl); break;
		case OP_SEQWRITE: do_seqwrite(x, e, fl); break;
		case OP_READ: do_read(x, e, f); break;
		case OP_MAPREAD: done = do_mapread(x, e, f); break;
		case OP_MAPWRITE: done = do_mapwrite(x, e, fl); break;
		case OP_FTRUNCATE: do_truncate(x, e, fl, false); break;
		case OP_TRUNCATE: do_truncate(x, e, fl, true); break;
		case OP_OPENTRUNC: do_open_trunc(x, e, f); break;
		case OP_FALLOC: done = do_falloc(x, e, fl, op, 0); break;
		case OP_FALLOC_KEEP: done = do_falloc(x, e, fl, op, FALLOC_FL_KEEP_SIZE); break;
		case OP_PUNCH:
			done = do_falloc(x, e, fl, op, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
			break;
		case OP_ZERO: done = do_falloc(x, e, fl, op, FALLOC_FL_ZERO_RANGE); break;
		case OP_ZERO_KEEP:
			done = do_falloc(x, e, fl, op, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
			break;
		case OP_COLLAPSE: done = do_collapse(x, e, fl); break;
		case OP_INSERT: done = do_insert(x, e, fl); break;
		case OP_COPY:
			if (x->nfiles < 2) {
				done = false;
				break;
			}
			f2 = (f + 1 + (int)below(&x->rng, x->nfiles - 1)) % (int)x->nfiles;
			done = do_copy(x, e, f, f2);
			break;
		case OP_COPY_SELF: done = do_copy(x, e, f, f); break;
		case OP_APPEND: do_append(x, e, f); break;
		case OP_DWRITE: done = do_dwrite(x, e, fl); break;
		case OP_DREAD: done = do_dread(x, e, f); break;
		case OP_REOPEN: do_reopen(x, f); break;
		case OP_SNAPREAD: done = do_snapread(x, e, f); break;
		case OP_SEEK:
			e->off = between(&x->rng, 0, fl->size);
			check_seek_at(x, "f SEEK_DATA/SEEK_HOLE", fl->fd, fl->model, fl->size, e->off);
			break;
		case OP_SNAPCOPY:
			done = do_snapcopy(x, e, f, (int)below(&x->rng, x->nfiles));
			break;
		case OP_FSYNC:
			if (fsync(fl->fd) < 0)
				fail(x, "fsync: %s", strerror(errno));
			break;
		case OP_FDATASYNC:
			if (fdatasync(fl->fd) < 0)
				fail(x, "fdatasync: %s", strerror(errno));
			break;
		default:
			abort();
		}
		if (!done) {
			/* not applicable now (or not supported): forget it, draw again */
			x->nlogged--;
			continue;
		}
		e->size1 = fl->size;
		if (x->verbose)
			log_print(e, stdout);
		x->count[op]++;
		x->phase = "check after the operation";
		if (e->op == OP_TRUNCATE || e->op == OP_FTRUNCATE || e->op == OP_OPENTRUNC ||
		    e->op == OP_COLLAPSE || e->op == OP_INSERT)
			check_around(x, f, min_sz((size_t)e->size0, (size_t)e->size1), BLK);
		else if (e->op != OP_READ && e->op != OP_MAPREAD && e->op != OP_DREAD &&
			 e->op != OP_SNAPREAD && e->op != OP_SEEK)
			check_around(x, f, e->off, e->len);
		else
			check_size(x, "size", fl->fd, fl->size);
		x->n++;
		return;
	}
}

/* ---- snapshots ------------------------------------------------------------------------ */

/* --save (below) */
static void state_write_list(struct fsx *x, const struct snap *except);
static void state_snap_taken(struct fsx *x, const struct snap *s);
static void state_snap_deleted(struct fsx *x, const struct snap *s);

static void snap_path(const struct fsx *x, const char *name, unsigned f, char *buf, size_t n)
{
	int r = snprintf(buf, n, "%s/%s/%sfsx.%u", x->snap_dir, name, x->rel, f);

	if (r < 0 || (size_t)r >= n)
		die("path too long: %s/%s/%s", x->snap_dir, name, x->rel);
}

static void snap_free(struct snap *s)
{
	if (!s)
		return;
	for (unsigned f = 0; f < MAX_FILES; f++)
		free(s->data[f]);
	free(s);
}

/* Check one snapshot's files against its model. */
static void snap_check(struct fsx *x, const struct snap *s)
{
	const char *saved = x->phase;
	char path[PATH_MAX], what[PATH_MAX + 64];

	x->phase = "snapshot check";
	for (unsigned f = 0; f < x->nfiles; f++) {
		bool direct = one_in(&x->aux, 4);
		int fd;

		snap_path(x, s->name, f, path, sizeof(path));
		snprintf(what, sizeof(what), "snapshot %s (taken after operation %" PRIu64 ") f%u%s",
			 s->name, s->at, f, direct ? " O_DIRECT" : "");
		fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
		if (fd < 0)
			fail(x, "%s: open %s: %s", what, path, strerror(errno));
		check_whole(x, what, (int)f, fd, s->data[f], s->size[f]);
		check_seek_walk(x, what, fd, s->data[f], s->size[f]);
		if (s->size[f] > 0 && !direct && one_in(&x->aux, 3)) {
			/* a part of it through a mapping too (not of an O_DIRECT fd: FUSE
			 * refuses to map a direct_io file, ENODEV) */
			int64_t len = between(&x->aux, 1, min_sz((size_t)s->size[f], IO_CHUNK));
			int64_t off = between(&x->aux, 0, s->size[f] - len), pgoff;
			size_t maplen;
			uint8_t *p = map_range(x, fd, PROT_READ, off, len, &pgoff, &maplen);

			memcpy(x->rbuf, p + (off - pgoff), (size_t)len);
			munmap(p, maplen);
			for (int64_t i = 0; i < len; i++)
				if (x->rbuf[i] != s->data[f][off + i])
					report_mismatch(x, what, (int)f, off, s->data[f] + off, x->rbuf,
							(size_t)len, (size_t)i);
			x->checked += (uint64_t)len;
		}
		close(fd);
	}
	x->phase = saved;
}

/*
 * --snap-readers: threads that read random ranges of random snapshots,
 * mostly O_DIRECT (every read reaches the filesystem, not the page cache),
 * while the main thread changes the live files: a read of a snapshot must
 * never see a write that came after it, however the two interleave.
 */
static void *snap_reader(void *arg)
{
	struct fsx *x = arg;
	uint8_t *rb;
	struct rng r;

	rng_seed(&r, x->seed ^ (uint64_t)(uintptr_t)pthread_self());
	if (posix_memalign((void **)&rb, BLK, x->max_io + 2 * BLK))
		die("out of memory");
	while (!atomic_load(&x->stop)) {
		char path[PATH_MAX], what[PATH_MAX + 64];
		unsigned f = (unsigned)below(&r, x->nfiles);
		bool direct = !one_in(&r, 4);
		int64_t off, size, a, b;
		struct snap *s = NULL;
		size_t len;
		ssize_t n;
		int fd;

		pthread_mutex_lock(&x->snap_lock);
		if (x->nsnaps) {
			/* the newest half the time: it changes from its first to its last read */
			s = x->snaps[one_in(&r, 2) ? x->nsnaps - 1 : below(&r, x->nsnaps)];
			s->readers++;
		}
		pthread_mutex_unlock(&x->snap_lock);
		if (!s) {
			usleep(1000);
			continue;
		}
		size = s->size[f];
		snap_path(x, s->name, f, path, sizeof(path));
		snprintf(what, sizeof(what), "snapshot %s f%u (reader thread%s)", s->name, f,
			 direct ? ", O_DIRECT" : "");
		fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
		if (fd < 0) {
			fprintf(stderr, "fsx: %s: open %s: %s\n", what, path, strerror(errno));
			exit(1);
		}
		for (int k = 0; k < 8; k++) {
			len = (size_t)between(&r, 1, (int64_t)x->max_io);
			off = between(&r, 0, size);
			n = pread_full(fd, rb, len, off);
			if (n < 0) {
				fprintf(stderr, "fsx: %s: pread 0x%" PRIx64 ": %s\n", what, off,
					strerror(errno));
				exit(1);
			}
			a = off;
			b = off + n;
			if (b != (off + (int64_t)len < size ? off + (int64_t)len : size)) {
				fprintf(stderr, "fsx: %s: pread 0x%" PRIx64 " len 0x%zx returned 0x%zx "
					"(size 0x%" PRIx64 ")\n", what, off, len, (size_t)n, size);
				exit(1);
			}
			if (memcmp(rb, s->data[f] + a, (size_t)(b - a))) {
				for (int64_t i = 0; i < b - a; i++)
					if (rb[i] != s->data[f][a + i])
						report_mismatch(x, what, (int)f, a, s->data[f] + a, rb,
								(size_t)(b - a), (size_t)i);
			}
			atomic_fetch_add(&x->reader_checked, (uint64_t)(b - a));
			atomic_fetch_add(&x->reader_reads, 1);
		}
		close(fd);
		pthread_mutex_lock(&x->snap_lock);
		if (--s->readers == 0)
			pthread_cond_broadcast(&x->snap_cond);
		pthread_mutex_unlock(&x->snap_lock);
	}
	free(rb);
	return NULL;
}

static void snap_check_all(struct fsx *x, const char *why)
{
	struct logent *e = log_add(x, EV_SNAPCHECK, -1);

	snprintf(e->note, sizeof(e->note), "%u snapshots (%s)", x->nsnaps, why);
	for (unsigned i = 0; i < x->nsnaps; i++)
		snap_check(x, x->snaps[i]);
	x->snap_checks++;
}

/* Delete snapshot i, once no reader thread uses it. */
static void snap_delete(struct fsx *x, unsigned i)
{
	struct logent *e = log_add(x, EV_SNAPDEL, -1);
	struct snap *s = x->snaps[i];
	char path[PATH_MAX];

	snprintf(e->note, sizeof(e->note), "%s", s->name);
	x->phase = "snapshot delete";
	if (x->save)
		state_write_list(x, s);
	pthread_mutex_lock(&x->snap_lock);
	memmove(&x->snaps[i], &x->snaps[i + 1], (x->nsnaps - i - 1) * sizeof(*x->snaps));
	x->nsnaps--;
	while (s->readers)
		pthread_cond_wait(&x->snap_cond, &x->snap_lock);
	pthread_mutex_unlock(&x->snap_lock);
	snprintf(path, sizeof(path), "%s/%s", x->snap_dir, s->name);
	if (rmdir(path) < 0)
		fail(x, "rmdir %s: %s", path, strerror(errno));
	if (x->save)
		state_snap_deleted(x, s);
	snap_free(s);
	x->snaps_deleted++;
}

static void snap_take(struct fsx *x)
{
	struct snap *s = xmalloc(sizeof(*s));
	struct logent *e = log_add(x, EV_SNAP, -1);
	char path[PATH_MAX];

	snprintf(s->name, sizeof(s->name), "%s%" PRIu64, x->snap_prefix, ++x->snap_serial);
	snprintf(e->note, sizeof(e->note), "%s", s->name);
	x->phase = "snapshot create";
	snprintf(path, sizeof(path), "%s/%s", x->snap_dir, s->name);
	if (mkdir(path, 0755) < 0)
		fail(x, "mkdir %s: %s", path, strerror(errno));
	s->at = x->n;
	for (unsigned f = 0; f < x->nfiles; f++) {
		s->size[f] = x->file[f].size;
		s->data[f] = xmalloc((size_t)s->size[f]);
		memcpy(s->data[f], x->file[f].model, (size_t)s->size[f]);
	}
	pthread_mutex_lock(&x->snap_lock);
	x->snaps[x->nsnaps++] = s;
	pthread_mutex_unlock(&x->snap_lock);
	x->snaps_taken++;
	if (x->save)
		state_snap_taken(x, s);
}

/* After operation x->n: snapshots to take, delete, check. */
static void snap_step(struct fsx *x)
{
	bool deleted = false;

	if (!x->snap_dir)
		return;
	if (x->n % x->snap_every == 0) {
		if (x->nsnaps == x->snap_keep) {
			/* full: delete one, older ones more likely */
			snap_delete(x, (unsigned)below(&x->aux, below(&x->aux, x->nsnaps) + 1));
			deleted = true;
		}
		snap_take(x);
		if (x->nsnaps > 2 && one_in(&x->aux, 4)) {
			/* and now and then one more, not the newest */
			snap_delete(x, (unsigned)below(&x->aux, x->nsnaps - 1));
			deleted = true;
		}
	}
	if (deleted || (x->nsnaps > 0 && one_in(&x->aux, 2 * x->snap_every)))
		snap_check_all(x, deleted ? "after a delete" : "at random");
}

/* ---- saved state -------------------------------------------------------------------------- */

static void write_file(const char *path, const uint8_t *p, int64_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int64_t off = 0;

	if (fd < 0)
		die("cannot create '%s': %s", path, strerror(errno));
	while (off < len) {
		ssize_t n = pwrite(fd, p + off, (size_t)(len - off), off);

		if (n <= 0)
			die("cannot write '%s': %s", path, n < 0 ? strerror(errno) : "short write");
		off += n;
	}
	if (close(fd) < 0)
		die("cannot write '%s': %s", path, strerror(errno));
}

static uint8_t *read_file(const char *path, int64_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *p;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0)
		die("cannot read '%s': %s", path, strerror(errno));
	p = xmalloc((size_t)st.st_size);
	n = pread_full(fd, p, (size_t)st.st_size, 0);
	if (n != st.st_size)
		die("cannot read '%s': %s", path, n < 0 ? strerror(errno) : "short read");
	close(fd);
	*ret_len = st.st_size;
	return p;
}

/*
 * STATE/files (the number of files), STATE/snapshots (one name per line),
 * STATE/live.K and STATE/<snapshot>.K: each model's bytes, its size the
 * file's size. A snapshot's model is written once mkdir returned and its
 * name listed after that; a snapshot is unlisted before rmdir: if the run
 * dies (a killed daemon), every listed snapshot exists and is checkable.
 */
static void state_write_list(struct fsx *x, const struct snap *except)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/snapshots", x->save);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fp = fopen(tmp, "w");
	if (!fp)
		die("cannot create '%s': %s", tmp, strerror(errno));
	for (unsigned i = 0; i < x->nsnaps; i++)
		if (x->snaps[i] != except)
			fprintf(fp, "%s %" PRIu64 "\n", x->snaps[i]->name, x->snaps[i]->at);
	if (fflush(fp) != 0 || fsync(fileno(fp)) < 0 || fclose(fp) != 0)
		die("cannot write '%s': %s", tmp, strerror(errno));
	if (rename(tmp, path) < 0)
		die("cannot rename '%s': %s", tmp, strerror(errno));
}

static void state_init(struct fsx *x)
{
	char path[PATH_MAX];
	FILE *fp;

	if (mkdir(x->save, 0755) < 0 && errno != EEXIST)
		die("cannot create '%s': %s", x->save, strerror(errno));
	snprintf(path, sizeof(path), "%s/files", x->save);
	fp = fopen(path, "w");
	if (!fp)
		die("cannot create '%s': %s", path, strerror(errno));
	fprintf(fp, "%u\n", x->nfiles);
	if (fclose(fp) != 0)
		die("cannot write '%s': %s", path, strerror(errno));
	state_write_list(x, NULL);
}

static void state_snap_taken(struct fsx *x, const struct snap *s)
{
	char path[PATH_MAX];

	for (unsigned f = 0; f < x->nfiles; f++) {
		snprintf(path, sizeof(path), "%s/%s.%u", x->save, s->name, f);
		write_file(path, s->data[f], s->size[f]);
	}
	state_write_list(x, NULL);
}

static void state_snap_deleted(struct fsx *x, const struct snap *s)
{
	char path[PATH_MAX];

	for (unsigned f = 0; f < x->nfiles; f++) {
		snprintf(path, sizeof(path), "%s/%s.%u", x->save, s->name, f);
		unlink(path);
	}
}

static void state_save_live(struct fsx *x)
{
	char path[PATH_MAX];

	for (unsigned f = 0; f < x->nfiles; f++) {
		snprintf(path, sizeof(path), "%s/live.%u", x->save, f);
		write_file(path, x->file[f].model, x->file[f].size);
	}
}

/* --check-saved: check the live files and the snapshots against STATE */
static int state_check(struct fsx *x)
{
	unsigned nfiles = x->nfiles, nsnaps = 0;
	char path[PATH_MAX], name[64];
	uint64_t at;
	FILE *fp;

	x->phase = "check against saved models";
	for (unsigned f = 0; f < nfiles && !x->no_live; f++) {
		struct file *fl = &x->file[f];
		int64_t len;
		uint8_t *m;
		int fd;

		snprintf(path, sizeof(path), "%s/live.%u", x->check_saved, f);
		m = read_file(path, &len);
		fd = open(fl->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail(x, "open %s: %s", fl->path, strerror(errno));
		check_whole(x, fl->path, (int)f, fd, m, len);
		close(fd);
		free(m);
	}
	snprintf(path, sizeof(path), "%s/snapshots", x->check_saved);
	fp = fopen(path, "r");
	if (!fp)
		die("cannot read '%s': %s", path, strerror(errno));
	while (fscanf(fp, "%63s %" SCNu64, name, &at) == 2) {
		struct snap *s = xmalloc(sizeof(*s));

		if (!x->snap_dir)
			die("--check-saved with snapshots needs --snap-dir");
		s->at = at;
		snprintf(s->name, sizeof(s->name), "%s", name);
		for (unsigned f = 0; f < nfiles; f++) {
			snprintf(path, sizeof(path), "%s/%s.%u", x->check_saved, name, f);
			s->data[f] = read_file(path, &s->size[f]);
		}
		snap_check(x, s);
		snap_free(s);
		nsnaps++;
	}
	fclose(fp);
	printf("fsx: %s: %s%u snapshot(s) as saved, %" PRIu64 " bytes checked\n",
	       x->check_saved, x->no_live ? "" : "live files and ", nsnaps, x->checked);
	return 0;
}

/* ---- setup and main -------------------------------------------------------------------- */

/* --check-saved: as many files as were saved */
static void state_files(struct fsx *x)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/files", x->check_saved);
	fp = fopen(path, "r");
	if (!fp || fscanf(fp, "%u", &x->nfiles) != 1 || x->nfiles < 1 || x->nfiles > MAX_FILES)
		die("cannot read '%s'", path);
	fclose(fp);
}

static void setup_files(struct fsx *x)
{
	for (unsigned f = 0; f < x->nfiles; f++) {
		struct file *fl = &x->file[f];
		int r = snprintf(fl->path, sizeof(fl->path), "%s/fsx.%u", x->dir, f);

		if (r < 0 || (size_t)r >= sizeof(fl->path))
			die("path too long: %s", x->dir);
		fl->dfd = -1;
		if (x->check_saved)
			continue;
		fl->model = xmalloc((size_t)x->max_size);
		fl->fd = open(fl->path, O_RDWR | O_CREAT | O_CLOEXEC | (x->reuse ? 0 : O_TRUNC), 0644);
		if (fl->fd < 0)
			die("cannot open '%s': %s", fl->path, strerror(errno));
		if (x->reuse) {
			struct stat st;
			ssize_t n;

			if (fstat(fl->fd, &st) < 0)
				die("cannot stat '%s': %s", fl->path, strerror(errno));
			if (st.st_size > x->max_size)
				die("'%s' is larger than --max-size", fl->path);
			n = pread_full(fl->fd, fl->model, (size_t)st.st_size, 0);
			if (n != st.st_size)
				die("cannot read '%s': %s", fl->path, n < 0 ? strerror(errno) : "short read");
			fl->size = st.st_size;
		}
	}
}

/* x->rel: DIR relative to the mount root (the parent of --snap-dir) */
static void setup_rel(struct fsx *x)
{
	char sd[PATH_MAX], d[PATH_MAX], *root;
	size_t n;

	if (!realpath(x->snap_dir, sd))
		die("cannot resolve '%s': %s", x->snap_dir, strerror(errno));
	if (!realpath(x->dir, d))
		die("cannot resolve '%s': %s", x->dir, strerror(errno));
	root = dirname(sd);
	n = strlen(root);
	if (!strcmp(root, "/"))
		n = 0;
	if (strncmp(d, root, n) || (d[n] != '/' && d[n] != '\0'))
		die("'%s' is not below the mount of '%s'", x->dir, x->snap_dir);
	if (d[n] == '\0')
		x->rel[0] = '\0';
	else
		snprintf(x->rel, sizeof(x->rel), "%s/", d + n + 1);
}

static int64_t parse_size(const char *s, const char *opt)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		die("%s: bad number '%s'", opt, s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end || v > INT64_MAX / 2)
		die("%s: bad number '%s'", opt, s);
	return (int64_t)v;
}

static void disable_ops(struct fsx *x, const char *list)
{
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		die("out of memory");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i;

		for (i = 0; i < OP_COUNT && strcmp(op_info[i].name, t); i++)
			;
		if (i == OP_COUNT)
			die("--disable: unknown operation '%s'", t);
		x->disabled[i] = true;
	}
	free(copy);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fsx [options] DIR\n"
		"  -S, --seed N           random seed (1)\n"
		"  -N, --ops N            operations (10000)\n"
		"  -F, --files N          files DIR/fsx.0.. (2, at most %d)\n"
		"  -l, --max-size BYTES   largest file size (4M)\n"
		"  -o, --max-io BYTES     longest write, read, copy (1280K)\n"
		"  -c, --verify-every N   check every whole file every N operations (100);\n"
		"                         the range an op touched is checked after every op\n"
		"      --snap-dir DIR     the .snap of the mount DIR is in: take snapshots\n"
		"      --snap-every N     a snapshot every N operations (500)\n"
		"      --snap-keep N      at most N snapshots at a time (6)\n"
		"      --snap-prefix P    snapshot names: P1, P2, ... (fsx-SEED-)\n"
		"      --snap-readers N   threads reading snapshots meanwhile (0, at most 8)\n"
		"      --rm-snaps         delete the snapshots kept at the end\n"
		"      --duration SEC     stop after SEC seconds even if operations remain\n"
		"      --disable LIST     operations not to generate (comma separated names)\n"
		"      --reuse            start from the files' contents instead of truncating them\n"
		"      --save STATE       write the models to the directory STATE: each snapshot's\n"
		"                         when taken, the files' at the end\n"
		"      --check-saved STATE  only check DIR's files and the snapshots (with\n"
		"                         --snap-dir) against the models saved in STATE\n"
		"      --no-live          with --check-saved: the snapshots only\n"
		"      --log N            operations printed on a failure (50)\n"
		"  -v, --verbose          print every operation\n"
		"operations:", MAX_FILES);
	for (int i = 0; i < OP_COUNT; i++)
		fprintf(out, " %s", op_info[i].name);
	fprintf(out, "\n");
}

enum { O_SNAPDIR = 256, O_SNAPEVERY, O_SNAPKEEP, O_SNAPPREFIX, O_SNAPREADERS, O_RMSNAPS, O_DURATION, O_DISABLE, O_REUSE,
       O_SAVE, O_CHECKSAVED, O_NOLIVE, O_LOG };

static void parse_args(struct fsx *x, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 'S' },
		{ "ops", required_argument, NULL, 'N' },
		{ "files", required_argument, NULL, 'F' },
		{ "max-size", required_argument, NULL, 'l' },
		{ "max-io", required_argument, NULL, 'o' },
		{ "verify-every", required_argument, NULL, 'c' },
		{ "snap-dir", required_argument, NULL, O_SNAPDIR },
		{ "snap-every", required_argument, NULL, O_SNAPEVERY },
		{ "snap-keep", required_argument, NULL, O_SNAPKEEP },
		{ "snap-prefix", required_argument, NULL, O_SNAPPREFIX },
		{ "snap-readers", required_argument, NULL, O_SNAPREADERS },
		{ "rm-snaps", no_argument, NULL, O_RMSNAPS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "disable", required_argument, NULL, O_DISABLE },
		{ "reuse", no_argument, NULL, O_REUSE },
		{ "save", required_argument, NULL, O_SAVE },
		{ "check-saved", required_argument, NULL, O_CHECKSAVED },
		{ "no-live", no_argument, NULL, O_NOLIVE },
		{ "log", required_argument, NULL, O_LOG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	x->seed = 1;
	x->nops = 10000;
	x->nfiles = 2;
	x->max_size = 4 << 20;
	x->max_io = 1280 << 10;
	x->verify_every = 100;
	x->snap_every = 500;
	x->snap_keep = 6;
	x->nlog = 50;
	x->argc = argc;
	x->argv = argv;
	while ((c = getopt_long(argc, argv, "S:N:F:l:o:c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': x->seed = (uint64_t)parse_size(optarg, "--seed"); break;
		case 'N': x->nops = (uint64_t)parse_size(optarg, "--ops"); break;
		case 'F': x->nfiles = (unsigned)parse_size(optarg, "--files"); break;
		case 'l': x->max_size = parse_size(optarg, "--max-size"); break;
		case 'o': x->max_io = (size_t)parse_size(optarg, "--max-io"); break;
		case 'c': x->verify_every = (uint64_t)parse_size(optarg, "--verify-every"); break;
		case O_SNAPDIR: x->snap_dir = optarg; break;
		case O_SNAPEVERY: x->snap_every = (uint64_t)parse_size(optarg, "--snap-every"); break;
		case O_SNAPKEEP: x->snap_keep = (unsigned)parse_size(optarg, "--snap-keep"); break;
		case O_SNAPPREFIX:
			if (strlen(optarg) >= sizeof(x->snap_prefix) || strchr(optarg, '/'))
				die("--snap-prefix: at most %zu characters, no '/'", sizeof(x->snap_prefix) - 1);
			snprintf(x->snap_prefix, sizeof(x->snap_prefix), "%s", optarg);
			break;
		case O_SNAPREADERS:
			x->nreaders = (unsigned)parse_size(optarg, "--snap-readers");
			if (x->nreaders > sizeof(x->readers) / sizeof(x->readers[0]))
				die("--snap-readers: at most %zu", sizeof(x->readers) / sizeof(x->readers[0]));
			break;
		case O_RMSNAPS: x->rm_snaps = true; break;
		case O_DURATION: x->duration = strtod(optarg, NULL); break;
		case O_DISABLE: disable_ops(x, optarg); break;
		case O_REUSE: x->reuse = true; break;
		case O_SAVE: x->save = optarg; break;
		case O_CHECKSAVED: x->check_saved = optarg; break;
		case O_NOLIVE: x->no_live = true; break;
		case O_LOG: x->nlog = (unsigned)parse_size(optarg, "--log"); break;
		case 'v': x->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (!x->snap_prefix[0])
		snprintf(x->snap_prefix, sizeof(x->snap_prefix), "fsx-%" PRIu64 "-", x->seed);
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	x->dir = argv[optind];
	if (x->nfiles < 1 || x->nfiles > MAX_FILES)
		die("--files: 1 to %d", MAX_FILES);
	if (x->max_size < BLK || x->max_io < BLK)
		die("--max-size and --max-io: at least %d", BLK);
	if (x->max_io > (size_t)x->max_size)
		x->max_io = (size_t)x->max_size;
	if (x->snap_every == 0 || x->snap_keep == 0 || x->nlog == 0)
		die("--snap-every, --snap-keep and --log: at least 1");
}

static void fsx_release(struct fsx *x)
{
	free(x->buf);
	free(x->rbuf);
	for (unsigned i = 0; i < x->nsnaps; i++)
		snap_free(x->snaps[i]);
	free(x->snaps);
	for (unsigned f = 0; f < x->nfiles; f++)
		free(x->file[f].model);
	free(x->log);
}

int main(int argc, char **argv)
{
	struct fsx x = { 0 };
	double t0 = now(), secs;
	bool stopped = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(&x, argc, argv);
	rng_seed(&x.rng, x.seed);
	rng_seed(&x.aux, x.seed ^ 0xA5A5A5A5DEADBEEFULL);
	x.log = xmalloc(x.nlog * sizeof(*x.log));
	if (posix_memalign((void **)&x.buf, BLK, x.max_io + 2 * BLK) ||
	    posix_memalign((void **)&x.rbuf, BLK, x.max_io + 2 * BLK + IO_CHUNK))
		die("out of memory");
	if (x.snap_dir)
		setup_rel(&x);
	if (x.check_saved)
		state_files(&x);
	setup_files(&x);
	x.phase = "setup";
	if (x.check_saved) {
		int r = state_check(&x);

		fsx_release(&x);
		return r;
	}
	x.snaps = xmalloc((x.snap_keep + 1) * sizeof(*x.snaps));
	pthread_mutex_init(&x.snap_lock, NULL);
	pthread_cond_init(&x.snap_cond, NULL);
	if (!x.snap_dir)   /* not generated at all: the same sequence as before they existed */
		x.disabled[OP_SNAPREAD] = x.disabled[OP_SNAPCOPY] = true;
	if (x.save)
		state_init(&x);
	for (unsigned i = 0; x.snap_dir && i < x.nreaders; i++)
		if (pthread_create(&x.readers[i], NULL, snap_reader, &x) != 0)
			die("cannot start a reader thread");

	while (x.n < x.nops) {
		one_op(&x);
		if (x.verify_every && x.n % x.verify_every == 0)
			check_all_live(&x, "periodic check of every file");
		snap_step(&x);
		if (x.duration > 0 && (x.n & 63) == 0 && now() - t0 > x.duration) {
			stopped = true;
			break;
		}
	}
	atomic_store(&x.stop, true);
	for (unsigned i = 0; x.snap_dir && i < x.nreaders; i++)
		pthread_join(x.readers[i], NULL);
	check_all_live(&x, "final check of every file");
	if (x.nsnaps)
		snap_check_all(&x, "at the end");
	if (x.save)
		state_save_live(&x);
	while (x.rm_snaps && x.nsnaps)
		snap_delete(&x, x.nsnaps - 1);
	for (unsigned f = 0; f < x.nfiles; f++)
		file_close(&x, (int)f);

	secs = now() - t0;
	printf("fsx: seed %" PRIu64 ": %" PRIu64 " ops%s in %.1f s:", x.seed, x.n,
	       stopped ? " (stopped by --duration)" : "", secs);
	for (int i = 0; i < OP_COUNT; i++)
		if (x.count[i])
			printf(" %s %" PRIu64, op_info[i].name, x.count[i]);
	printf("; %.1f MiB checked", (double)x.checked / (1 << 20));
	if (x.snap_dir)
		printf("; snapshots: %u taken, %u deleted, %u checks", x.snaps_taken,
		       x.snaps_deleted, x.snap_checks);
	if (x.snap_dir && x.nreaders)
		printf("; reader threads: %" PRIu64 " reads, %.1f MiB checked",
		       (uint64_t)atomic_load(&x.reader_reads),
		       (double)atomic_load(&x.reader_checked) / (1 << 20));
	for (int i = 0, first = 1; i < OP_COUNT; i++)
		if (x.unsupported[i]) {
			printf("%s %s", first ? "; not supported here:" : "", op_info[i].name);
			first = 0;
		}
	printf("\n");
	fsx_release(&x);
	return 0;
}
