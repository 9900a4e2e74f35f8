/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the journal's snapshots: copy-on-write bookkeeping (which
 * preserved chunk serves which snapshot), freeing on deletion, orphans,
 * attributes, and the change set between two snapshots (journal_diff).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"
#include "journal_fx.h"
#include "fdcount.h"

#define CH JOURNAL_CHUNK_SIZE

/* A regular file made through the journal, open read-write. */
static uint64_t mkfile(struct fx *f, uint64_t dir, int dirfd, const char *name, int *ret_fd)
{
	struct journal_cred cred = { getuid(), getgid(), 0 };
	struct stat st;
	int fd;

	assert_int_equal(journal_create(f->j, &cred, dirfd, dir, name, O_RDWR, 0644, &fd, &st), 0);
	*ret_fd = fd;
	return st.st_ino;
}

/* Write `len` bytes of `c` at `off` through the journal. */
static void put(struct fx *f, uint64_t ino, int fd, char c, off_t off, size_t len)
{
	char *b = malloc(len);

	assert_non_null(b);
	memset(b, c, len);
	assert_int_equal(journal_pwrite(f->j, ino, fd, b, len, off), (ssize_t)len);
	free(b);
}

static uint64_t snap(struct fx *f, const char *name)
{
	struct journal_snap s;

	assert_int_equal(journal_snap_create(f->j, name, &s), 0);
	return s.id;
}

/* The byte at `off` of `ino` as snapshot `id` sees it (-1 past its end). */
static int snap_byte(struct fx *f, uint64_t id, uint64_t ino, off_t off)
{
	struct journal_snapfile *sf;
	unsigned char c;
	ssize_t n;

	assert_int_equal(journal_snapfile_open(f->j, id, ino, &sf), 0);
	n = journal_snapfile_read(sf, &c, 1, off);
	journal_snapfile_close(sf);
	assert_true(n >= 0);
	return n == 1 ? c : -1;
}

static off_t snap_size(struct fx *f, uint64_t id, uint64_t ino)
{
	struct stat st;

	assert_int_equal(journal_snap_stat(f->j, id, ino, &st), 0);
	return st.st_size;
}

/* truncate(2) `ino` to `size` through the journal. */
static void resize(struct fx *f, uint64_t ino, int fd, off_t size)
{
	struct journal_attr a = { .valid = JOURNAL_ATTR_SIZE, .size = size };

	assert_int_equal(journal_setattr(f->j, fd, fd, ino, &a, NULL), 0);
}

/* Punch [off, off + len) out of `ino`, keeping its size. */
static void punch(struct fx *f, uint64_t ino, int fd, off_t off, off_t len)
{
	assert_int_equal(journal_fallocate(f->j, ino, fd, FALLOC_FL_PUNCH_HOLE |
					   FALLOC_FL_KEEP_SIZE, off, len), 0);
}

/*
 * Open the journal and make "f": `size` bytes of 'x' with a hole in chunk 1
 * (which a snapshot taken next must keep as a hole).
 */
static uint64_t holed_file(struct fx *f, off_t size, int *ret_fd)
{
	uint64_t ino;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", ret_fd);
	put(f, ino, *ret_fd, 'x', 0, (size_t)size);
	punch(f, ino, *ret_fd, CH, CH);
	return ino;
}

/* ---- copy-on-write -------------------------------------------------------- */

static void test_cow_overlapping(void **state)
{
	struct fx *f = *state;
	uint64_t ino, s1, s2, s3;
	int fd;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", &fd);
	put(f, ino, fd, 'a', 0, 2 * CH);             /* chunks 0,1 = a */
	s1 = snap(f, "s1");
	put(f, ino, fd, 'b', 10, 100);                /* chunk 0 -> b (partly) */
	s2 = snap(f, "s2");
	put(f, ino, fd, 'c', CH - 5, 10);             /* chunks 0 and 1 */
	s3 = snap(f, "s3");
	put(f, ino, fd, 'd', CH + 100, 1);            /* chunk 1 again */

	assert_int_equal(snap_byte(f, s1, ino, 10), 'a');
	assert_int_equal(snap_byte(f, s1, ino, CH - 1), 'a');
	assert_int_equal(snap_byte(f, s1, ino, CH + 100), 'a');
	assert_int_equal(snap_byte(f, s2, ino, 10), 'b');
	assert_int_equal(snap_byte(f, s2, ino, CH - 1), 'a');
	assert_int_equal(snap_byte(f, s2, ino, CH + 2), 'a');
	assert_int_equal(snap_byte(f, s3, ino, CH - 1), 'c');
	assert_int_equal(snap_byte(f, s3, ino, CH + 2), 'c');
	assert_int_equal(snap_byte(f, s3, ino, CH + 100), 'a');

	/* Deleting s2 frees the copies only s2 read, and s1/s3 stay exact. */
	assert_int_equal(journal_snap_delete(f->j, "s2"), 0);
	assert_int_equal(snap_byte(f, s1, ino, 10), 'a');
	assert_int_equal(snap_byte(f, s1, ino, CH + 100), 'a');
	assert_int_equal(snap_byte(f, s3, ino, 10), 'b');
	assert_int_equal(snap_byte(f, s3, ino, CH - 1), 'c');
	assert_int_equal(snap_byte(f, s3, ino, CH + 100), 'a');
	assert_int_equal(journal_snap_stat(f->j, s2, ino, &(struct stat){ 0 }), -ENOENT);
	close(fd);
	fx_close(f);
	/*
	 * Chunk 0's copy from interval s2 served only s2 (s3 reads it live):
	 * freed. Chunk 1's copy from interval s2 also serves s1: kept.
	 */
	assert_int_equal(q_int(f, "SELECT count(*) FROM cow_chunk WHERE ino=? AND chunk=0",
			       (int64_t)ino), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM cow_chunk WHERE ino=? AND chunk=1",
			       (int64_t)ino), 2);

	/* Deleting every snapshot frees every copy and its store file. */
	fx_open(f, 0);
	assert_int_equal(journal_snap_delete(f->j, "s1"), 0);
	assert_int_equal(journal_snap_delete(f->j, "s3"), 0);
	fx_close(f);
	assert_int_equal(q_int(f, "SELECT count(*) FROM cow_chunk"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM cow_attr"), 0);
}

static void test_cow_truncate_punch_append(void **state)
{
	struct fx *f = *state;
	struct journal_snapfile *sf;
	uint64_t ino, s1;
	int fd;

	ino = holed_file(f, 3 * CH, &fd);
	s1 = snap(f, "s1");
	resize(f, ino, fd, 100);                       /* truncate down */
	resize(f, ino, fd, 4 * CH);                    /* and up again */
	put(f, ino, fd, 'y', 4 * CH, 10);              /* append */
	punch(f, ino, fd, 0, 50);

	assert_int_equal(snap_size(f, s1, ino), 3 * CH);
	assert_int_equal(snap_byte(f, s1, ino, 0), 'x');
	assert_int_equal(snap_byte(f, s1, ino, 200), 'x');
	assert_int_equal(snap_byte(f, s1, ino, CH + 5), 0);
	assert_int_equal(snap_byte(f, s1, ino, 2 * CH + 5), 'x');
	assert_int_equal(snap_byte(f, s1, ino, 3 * CH), -1);
	assert_int_equal(journal_snapfile_open(f->j, s1, ino, &sf), 0);
	assert_int_equal(journal_snapfile_seek(sf, 0, SEEK_HOLE), CH);
	assert_int_equal(journal_snapfile_seek(sf, CH, SEEK_DATA), 2 * CH);
	assert_int_equal(journal_snapfile_seek(sf, 2 * CH, SEEK_HOLE), 3 * CH);
	assert_int_equal(journal_snapfile_seek(sf, 3 * CH, SEEK_DATA), -ENXIO);
	journal_snapfile_close(sf);
	close(fd);
	fx_close(f);
}

/* The byte chunk `i` of the test file holds before any overwrite. */
static char seq_orig(uint64_t i)
{
	return (char)('a' + i % 26);
}

/*
 * A sequential overwrite preserves a window of chunks ahead of the write
 * at once; a snapshot taken in the middle, the chunks taken early and the
 * random writes after must all stay exact, and random writes take only
 * what they overwrite.
 */
static void test_cow_sequential_ahead(void **state)
{
	enum { N = 200 };
	struct fx *f = *state;
	uint64_t ino, s1, s2, s3;
	int fd;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", &fd);
	for (uint64_t i = 0; i < N; i++)
		put(f, ino, fd, seq_orig(i), (off_t)(i * CH), CH);
	s1 = snap(f, "s1");
	for (uint64_t i = 0; i < N / 2; i++)
		put(f, ino, fd, 'Z', (off_t)(i * CH), CH);
	/* chunks past the write were taken early, not all of the file */
	assert_true(q_int(f, "SELECT count(*) FROM cow_chunk WHERE ino=?", (int64_t)ino) > N / 2);
	assert_true(q_int(f, "SELECT count(*) FROM cow_chunk WHERE ino=?", (int64_t)ino) < N);
	s2 = snap(f, "s2");
	for (uint64_t i = N / 2; i < N; i++)
		put(f, ino, fd, 'Y', (off_t)(i * CH), CH);
	for (uint64_t i = 0; i < N; i++)
		put(f, ino, fd, 'W', (off_t)(i * CH), CH);
	s3 = snap(f, "s3");
	/* random overwrites after s3: no window */
	put(f, ino, fd, 'R', 150 * CH + 10, 100);
	put(f, ino, fd, 'R', 20 * CH, 10);
	put(f, ino, fd, 'R', 60 * CH, 10);
	assert_int_equal(q_int(f, "SELECT count(*) FROM cow_chunk WHERE ino=? AND interval="
			       "(SELECT max(interval) FROM cow_chunk)", (int64_t)ino), 3);

	for (uint64_t i = 0; i < N; i++) {
		off_t a = (off_t)(i * CH), b = a + CH - 1;

		assert_int_equal(snap_byte(f, s1, ino, a), seq_orig(i));
		assert_int_equal(snap_byte(f, s1, ino, b), seq_orig(i));
		assert_int_equal(snap_byte(f, s2, ino, a), i < N / 2 ? 'Z' : seq_orig(i));
		assert_int_equal(snap_byte(f, s2, ino, b), i < N / 2 ? 'Z' : seq_orig(i));
		assert_int_equal(snap_byte(f, s3, ino, a + 10), 'W');
	}
	/* fsync first syncs the store files holding copies (three intervals here) */
	assert_int_equal(journal_fsync(f->j, ino, fd, true), 0);
	/* more intervals than the object remembers: found through the table */
	for (int k = 0; k < 6; k++) {
		char name[8];

		snprintf(name, sizeof(name), "m%d", k);
		snap(f, name);
		put(f, ino, fd, 'M', (off_t)k * 3 * CH, 10);
	}
	assert_int_equal(journal_fsync(f->j, ino, fd, false), 0);
	assert_int_equal(journal_fsync(f->j, ino, fd, false), 0);
	assert_int_equal(snap_byte(f, s3, ino, 0), 'W');
	close(fd);
	fx_close(f);
}

/*
 * journal_keep_open(): the same answers with the object kept open,
 * the kept object follows its inode through a rename and an unlink, and
 * nothing stays open once the thread is done.
 */
static void test_snap_keep_open(void **state)
{
	struct fx *f = *state;
	struct stat st, st2;
	uint64_t ino, s1;
	int fd, fds0;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", &fd);
	put(f, ino, fd, 'k', 0, 3 * CH);
	s1 = snap(f, "s1");
	put(f, ino, fd, 'n', CH, 10);
	fds0 = count_fds();

	journal_keep_open(f->j, true);
	assert_int_equal(journal_snap_stat(f->j, s1, ino, &st), 0);
	assert_int_equal(snap_byte(f, s1, ino, 0), 'k');
	assert_int_equal(count_fds(), fds0 + 1);       /* kept */
	assert_int_equal(journal_rename(f->j, f->root, ROOT, "f", f->root, ROOT, "g", 0), 0);
	assert_int_equal(journal_snap_stat(f->j, s1, ino, &st2), 0);
	assert_int_equal(st2.st_size, st.st_size);
	assert_int_equal(snap_byte(f, s1, ino, CH + 1), 'k');
	assert_int_equal(snap_byte(f, s1, ino, 2 * CH + 1), 'k');
	assert_int_equal(journal_unlink(f->j, f->root, ROOT, "g"), 0);
	assert_int_equal(snap_byte(f, s1, ino, CH + 1), 'k');
	journal_keep_open(f->j, false);
	assert_int_equal(count_fds(), fds0);           /* released */
	assert_int_equal(snap_byte(f, s1, ino, 0), 'k');
	assert_int_equal(count_fds(), fds0);           /* not kept without asking */
	close(fd);
	fx_close(f);
}

/*
 * journal_keep_open() and objects in directories: opened through kept
 * parents, right after the parent is renamed, removed and made anew with
 * the same name, by a snapshot view and by journal_open_ino(); every kept
 * fd is closed when the thread is done.
 */
static void test_keep_open_dirs(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, b2, ino, ino2, s1;
	int afd, bfd, b2fd, fd, fd2, probe, fds0;
	struct stat st, want;

	fx_open(f, 0);
	a = mk(f, ROOT, f->root, "a", S_IFDIR | 0755);
	afd = opath(f->root, "a");
	b = mk(f, a, afd, "b", S_IFDIR | 0755);
	bfd = opath(afd, "b");
	ino = mkfile(f, b, bfd, "f", &fd);
	put(f, ino, fd, 'x', 0, CH);
	s1 = snap(f, "s1");
	fds0 = count_fds();

	journal_keep_open(f->j, true);
	assert_int_equal(snap_byte(f, s1, ino, 1), 'x');
	assert_true(count_fds() > fds0);                 /* a, b and f kept */
	/* the kept parent follows its inode through a rename */
	assert_int_equal(journal_rename(f->j, f->root, ROOT, "a", f->root, ROOT, "a2", 0), 0);
	assert_int_equal(journal_open_ino(f->j, ino, O_RDONLY, &probe), 0);
	assert_int_equal(fstat(probe, &st), 0);
	assert_int_equal(fstat(fd, &want), 0);
	assert_int_equal(st.st_ino, want.st_ino);
	close(probe);
	/* b removed and made anew under the same name: the new one's file */
	assert_int_equal(journal_unlink(f->j, bfd, b, "f"), 0);
	assert_int_equal(journal_rmdir(f->j, afd, a, "b"), 0);
	b2 = mk(f, a, afd, "b", S_IFDIR | 0755);
	assert_true(b2 != b);
	b2fd = opath(afd, "b");
	ino2 = mkfile(f, b2, b2fd, "f", &fd2);
	put(f, ino2, fd2, 'y', 0, 10);
	assert_int_equal(journal_open_ino(f->j, ino2, O_RDONLY, &probe), 0);
	assert_int_equal(fstat(probe, &st), 0);
	assert_int_equal(fstat(fd2, &want), 0);
	assert_int_equal(st.st_ino, want.st_ino);
	close(probe);
	assert_int_equal(snap_byte(f, s1, ino, 1), 'x');   /* the orphan */
	assert_int_equal(journal_open_ino(f->j, b, O_PATH, &probe), -ENOENT);
	journal_keep_open(f->j, false);
	assert_int_equal(count_fds(), fds0 + 2);            /* b2fd and fd2, ours */
	close(fd2);
	close(b2fd);
	close(bfd);
	close(afd);
	close(fd);
	fx_close(f);
}

/*
 * The first change after a snapshot preserves the attributes and xattrs,
 * then changes the file: a stat, an open or a getxattr of the snapshot
 * racing it must still see the snapshot's size and value, never the new.
 */
struct racer {
	struct fx *f;
	uint64_t snap, ino;
	off_t want;
	atomic_bool stop;
	atomic_int wrong, reads;
};

static void *race_reader(void *arg)
{
	struct racer *rc = arg;

	while (!atomic_load(&rc->stop)) {
		struct journal_snapfile *sf;
		struct stat st;
		off_t v = 0;

		if (journal_snap_stat(rc->f->j, rc->snap, rc->ino, &st) == 0 && st.st_size != rc->want)
			atomic_fetch_add(&rc->wrong, 1);
		if (journal_snapfile_open(rc->f->j, rc->snap, rc->ino, &sf) == 0) {
			if (journal_snapfile_size(sf) != rc->want)
				atomic_fetch_add(&rc->wrong, 1);
			journal_snapfile_close(sf);
		}
		if (journal_snap_getxattr(rc->f->j, rc->snap, rc->ino, "user.v", &v, sizeof(v)) !=
		    (ssize_t)sizeof(v) || v != rc->want)
			atomic_fetch_add(&rc->wrong, 1);
		atomic_fetch_add(&rc->reads, 1);
	}
	return NULL;
}

static void test_snap_attr_race(void **state)
{
	struct fx *f = *state;
	int fd;
	uint64_t ino;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", &fd);
	for (int i = 0; i < 150; i++) {
		struct racer rc = { .f = f, .ino = ino, .want = 1000 + i };
		struct journal_attr a = { .valid = JOURNAL_ATTR_SIZE, .size = 1000 + i };
		pthread_t th;
		char name[16];
		int before;

		off_t v = rc.want, v2 = -1;

		assert_int_equal(journal_setattr(f->j, fd, fd, ino, &a, NULL), 0);
		assert_int_equal(journal_setxattr(f->j, fd, ino, "user.v", &v, sizeof(v), 0), 0);
		snprintf(name, sizeof(name), "r%d", i);
		rc.snap = snap(f, name);
		assert_int_equal(pthread_create(&th, NULL, race_reader, &rc), 0);
		while ((before = atomic_load(&rc.reads)) < 1 + i % 4)
			;   /* let it start, at a different point each time */
		if (i % 2) {
			a.size = 70000 + i;
			assert_int_equal(journal_setattr(f->j, fd, fd, ino, &a, NULL), 0);
		} else {
			assert_int_equal(journal_setxattr(f->j, fd, ino, "user.v", &v2, sizeof(v2), 0), 0);
		}
		while (atomic_load(&rc.reads) < before + 2)
			;
		atomic_store(&rc.stop, true);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(atomic_load(&rc.wrong), 0);
	}
	close(fd);
	fx_close(f);
}

/*
 * Reading a snapshot does not change it: relatime would update the atime
 * of a file read after its last change, and the snapshot shows the live
 * atime of an unchanged file.
 */
static void test_snap_read_keeps_atime(void **state)
{
	struct fx *f = *state;
	struct timespec old[2] = { { .tv_sec = 1000000000 }, { .tv_nsec = UTIME_OMIT } };
	struct stat st, live;
	uint64_t ino, s1;
	int fd;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", &fd);
	put(f, ino, fd, 'a', 0, 3 * CH);
	assert_int_equal(futimens(fd, old), 0);
	s1 = snap(f, "s1");
	assert_int_equal(snap_byte(f, s1, ino, 2 * CH), 'a');
	assert_int_equal(journal_snap_stat(f->j, s1, ino, &st), 0);
	assert_int_equal(st.st_atim.tv_sec, 1000000000);
	assert_int_equal(fstat(fd, &live), 0);
	assert_int_equal(live.st_atim.tv_sec, 1000000000);
	close(fd);
	fx_close(f);
}

/* Gathers what journal_snapfile_read_segs() hands over into one buffer. */
struct seg_sink {
	char buf[4 * CH + 64];
	size_t len;
	int calls;
};

static int seg_collect(void *arg, const struct journal_snapseg *seg, size_t nseg)
{
	struct seg_sink *k = arg;
	struct stat st;

	k->calls++;
	for (size_t i = 0; i < nseg; i++) {
		assert_true(k->len + seg[i].len <= sizeof(k->buf));
		if (seg[i].fd >= 0) {
			/* an fd segment never reaches past its source's end */
			assert_int_equal(fstat(seg[i].fd, &st), 0);
			assert_true(seg[i].pos + (off_t)seg[i].len <= st.st_size);
			assert_int_equal(pread(seg[i].fd, k->buf + k->len, seg[i].len, seg[i].pos),
					 (ssize_t)seg[i].len);
		} else {
			memcpy(k->buf + k->len, seg[i].mem, seg[i].len);
		}
		k->len += seg[i].len;
	}
	return 0;
}

/* The segments of a read give the bytes journal_snapfile_read() gives. */
static void check_segs(struct journal_snapfile *sf, off_t off, size_t len)
{
	static struct seg_sink k;
	static char want[sizeof(k.buf)];
	ssize_t n;

	memset(&k, 0, sizeof(k));
	n = journal_snapfile_read(sf, want, len, off);
	assert_true(n >= 0);
	assert_int_equal(journal_snapfile_read_segs(sf, len, off, seg_collect, &k), 0);
	assert_int_equal(k.calls, 1);
	assert_int_equal(k.len, (size_t)n);
	assert_memory_equal(k.buf, want, (size_t)n);
}

static void test_read_segs(void **state)
{
	struct fx *f = *state;
	struct journal_snapfile *sf;
	uint64_t ino, s1;
	int fd;

	ino = holed_file(f, 4 * CH, &fd);
	put(f, ino, fd, 'w', 2 * CH, 10);
	punch(f, ino, fd, 3 * CH, CH);                 /* and one in the last chunk */
	s1 = snap(f, "s1");
	put(f, ino, fd, 'z', 10, 20);                  /* chunk 0 -> store */
	resize(f, ino, fd, 2 * CH + 100);              /* chunks 2, 3 -> store */
	/* chunk 1 still live; chunk 3 is past the end of its store file */

	assert_int_equal(journal_snapfile_open(f->j, s1, ino, &sf), 0);
	check_segs(sf, 0, 4 * CH);
	check_segs(sf, CH - 7, 2 * CH + 20);
	check_segs(sf, 3 * CH + 5, CH);
	check_segs(sf, 4 * CH - 1, 10);
	check_segs(sf, 4 * CH, 10);                    /* at EOF: nothing */
	journal_snapfile_close(sf);
	/* and the same on a file read from the live one only */
	assert_int_equal(journal_snapfile_open(f->j, snap(f, "s2"), ino, &sf), 0);
	check_segs(sf, 0, 4 * CH);
	check_segs(sf, 5, CH);
	journal_snapfile_close(sf);
	close(fd);
	fx_close(f);
}

static void test_cow_attrs_orphans(void **state)
{
	struct fx *f = *state;
	struct journal_attr a = { .valid = JOURNAL_ATTR_MODE, .mode = 0600 };
	struct stat st;
	char v[8];
	uint64_t ino, s1;
	int fd;

	fx_open(f, 0);
	ino = mkfile(f, ROOT, f->root, "f", &fd);
	put(f, ino, fd, 'q', 0, 1000);
	assert_int_equal(journal_setxattr(f->j, fd, ino, "user.k", "v1", 2, 0), 0);
	s1 = snap(f, "s1");
	assert_int_equal(journal_setattr(f->j, fd, -1, ino, &a, NULL), 0);
	assert_int_equal(journal_setxattr(f->j, fd, ino, "user.k", "v2", 2, 0), 0);
	assert_int_equal(journal_unlink(f->j, f->root, ROOT, "f"), 0);
	put(f, ino, fd, 'z', 0, 10);                   /* written after unlink, still open */

	assert_int_equal(journal_snap_stat(f->j, s1, ino, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_size, 1000);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(journal_snap_getxattr(f->j, s1, ino, "user.k", v, sizeof(v)), 2);
	assert_memory_equal(v, "v1", 2);
	assert_int_equal(snap_byte(f, s1, ino, 0), 'q');
	close(fd);
	assert_int_equal(q_int(f, "SELECT count(*) FROM orphans WHERE ino=?", (int64_t)ino), 1);
	assert_int_equal(journal_snap_delete(f->j, "s1"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM orphans"), 0);
	{
		char op[64];

		snprintf(op, sizeof(op), ".mirrorfs/orphans/%" PRIu64, ino);
		assert_int_equal(faccessat(f->root, op, F_OK, 0), -1);
	}
	fx_close(f);
}

/* Bytes of the store file of `ino` for interval `seq` (0 if absent). */
static uint64_t store_bytes(struct fx *f, uint64_t ino, uint64_t seq, off_t *ret_blksize)
{
	char name[96];
	struct stat st;

	snprintf(name, sizeof(name), ".mirrorfs/cow/%" PRIu64 ".%" PRIu64, ino, seq);
	if (fstatat(f->root, name, &st, 0) < 0)
		return 0;
	if (ret_blksize)
		*ret_blksize = st.st_blksize;
	return (uint64_t)st.st_blocks * 512;
}

/* exclusive_bytes of snapshot `name` as journal_snap_list() gives it */
static uint64_t exclusive(struct fx *f, const char *name)
{
	struct journal_snap *v;
	uint64_t b = UINT64_MAX;
	size_t n;

	assert_int_equal(journal_snap_list(f->j, true, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			b = v[i].exclusive_bytes;
	free(v);
	assert_true(b != UINT64_MAX);
	return b;
}

/*
 * exclusive_bytes is what deleting the snapshot frees: the blocks its
 * copies take, not 64 KiB per preserved chunk. A preserved hole takes
 * nothing, a last chunk only its blocks.
 */
static void test_exclusive_bytes(void **state)
{
	struct fx *f = *state;
	struct journal_snap s1, s2;
	uint64_t a, b;
	off_t blk = 0;
	int fa, fb;

	fx_open(f, 0);
	a = mkfile(f, ROOT, f->root, "a", &fa);
	b = mkfile(f, ROOT, f->root, "b", &fb);
	put(f, a, fa, 'x', 0, 3 * CH + 100);           /* 3 chunks and 100 bytes */
	resize(f, b, fb, 100 * CH);                    /* 6.4 MB, of which ... */
	put(f, b, fb, 'x', 10 * CH, 4096);             /* ... 4 KiB of data */
	assert_int_equal(journal_snap_create(f->j, "s1", &s1), 0);
	assert_int_equal(exclusive(f, "s1"), 0);       /* nothing changed yet */

	put(f, a, fa, 'y', 0, 3 * CH + 100);
	resize(f, b, fb, 0);
	assert_int_equal(journal_fsync(f->j, a, fa, true), 0);
	assert_int_equal(journal_fsync(f->j, b, fb, true), 0);
	assert_true(store_bytes(f, a, s1.seq, &blk) > 0);
	assert_true(blk > 0);
	assert_int_equal(store_bytes(f, a, s1.seq, NULL), 3 * CH + blk);
	assert_int_equal(store_bytes(f, b, s1.seq, NULL), blk);
	assert_int_equal(exclusive(f, "s1"), 3 * CH + 2 * blk);

	/* a copy an older snapshot shares is not exclusive to the newer one */
	assert_int_equal(journal_snap_create(f->j, "s2", &s2), 0);
	assert_int_equal(exclusive(f, "s2"), 0);
	put(f, a, fa, 'z', 0, 100);                    /* chunk 0 again, for s2 */
	assert_int_equal(exclusive(f, "s2"), CH);
	assert_int_equal(exclusive(f, "s1"), 3 * CH + 2 * blk);

	assert_int_equal(journal_snap_delete(f->j, "s1"), 0);
	assert_int_equal(store_bytes(f, a, s1.seq, NULL), 0);
	assert_int_equal(store_bytes(f, b, s1.seq, NULL), 0);
	assert_int_equal(exclusive(f, "s2"), CH);

	/*
	 * A file made after s2: s2 never reads the copies s3 needs, so they
	 * are s3's alone, and deleting s3 frees them while s2 stays.
	 */
	{
		struct journal_snap s3;
		uint64_t c;
		int fc;

		c = mkfile(f, ROOT, f->root, "c", &fc);
		put(f, c, fc, 'x', 0, 2 * CH);
		assert_int_equal(journal_snap_create(f->j, "s3", &s3), 0);
		put(f, c, fc, 'y', 0, 2 * CH);
		assert_int_equal(journal_fsync(f->j, c, fc, true), 0);
		assert_int_equal(exclusive(f, "s3"), 2 * CH);
		assert_int_equal(exclusive(f, "s2"), CH);
		assert_int_equal(journal_snap_delete(f->j, "s3"), 0);
		assert_int_equal(store_bytes(f, c, s3.seq, NULL), 0);
		assert_int_equal(exclusive(f, "s2"), CH);
		close(fc);
	}
	close(fa);
	close(fb);
	fx_close(f);
}

/* Write `len` bytes of `c` at `off` of BACKING/rel, outside the journal. */
static void raw_put(struct fx *f, const char *rel, char c, off_t off, size_t len)
{
	char p[256], *b = malloc(len);
	int fd;

	assert_non_null(b);
	memset(b, c, len);
	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, len, off), (ssize_t)len);
	close(fd);
	free(b);
}

/*
 * A process killed between writing a copy and committing its row, or
 * between deleting rows and punching their data, leaves store data no row
 * names. The next open after such an unclean shutdown gives it back, and
 * keeps every byte a snapshot still reads.
 */
static void test_sweep_after_unclean(void **state)
{
	struct fx *f = *state;
	struct journal_snap s1;
	char store[96], stray[96], junk_orphan[96], gone[96];
	uint64_t a, k, g;
	struct stat st;
	int fa, fk, fg;

	fx_open(f, 0);
	a = mkfile(f, ROOT, f->root, "a", &fa);
	k = mkfile(f, ROOT, f->root, "keep", &fk);
	g = mkfile(f, ROOT, f->root, "gone", &fg);
	put(f, a, fa, 'x', 0, 2 * CH);
	put(f, k, fk, 'k', 0, 100);
	put(f, g, fg, 'g', 0, 100);
	assert_int_equal(journal_snap_create(f->j, "s1", &s1), 0);
	put(f, a, fa, 'y', 0, 10);                     /* chunk 0 preserved for s1 */
	assert_int_equal(journal_unlink(f->j, f->root, ROOT, "gone"), 0);   /* an orphan for s1 */
	close(fa);
	close(fk);
	close(fg);
	fx_close(f);
	/* a power loss kept the unlink and lost the orphan's row */
	q_exec(f, "DELETE FROM orphans");

	snprintf(store, sizeof(store), ".mirrorfs/cow/%" PRIu64 ".%" PRIu64, a, s1.seq);
	snprintf(stray, sizeof(stray), ".mirrorfs/cow/%" PRIu64 ".%" PRIu64, a, s1.seq + 1000);
	snprintf(junk_orphan, sizeof(junk_orphan), ".mirrorfs/orphans/%" PRIu64, k + 1000);
	raw_put(f, store, 'j', 5 * CH, CH);            /* a chunk no row names */
	raw_put(f, stray, 'j', 0, 3 * CH);             /* a store file no row names */
	raw_put(f, ".mirrorfs/cow/notes.txt", 'n', 0, 10);   /* not a store name: left */
	{
		int dfd = open(f->dir, O_PATH | O_DIRECTORY);

		assert_true(dfd >= 0);
		assert_int_equal(linkat(dfd, "keep", dfd, junk_orphan, 0), 0);
		close(dfd);
	}
	q_exec(f, "UPDATE meta SET value=0 WHERE key='clean'");

	fx_open(f, 0);
	{
		int fd = openat(f->root, store, O_RDONLY);

		assert_true(fd >= 0);
		assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);              /* s1's copy stays */
		assert_int_equal(lseek(fd, CH, SEEK_DATA), -1);            /* the stray chunk went */
		assert_int_equal(errno, ENXIO);
		close(fd);
	}
	assert_int_equal(fstatat(f->root, stray, &st, 0), -1);
	assert_int_equal(fstatat(f->root, junk_orphan, &st, 0), -1);
	assert_int_equal(fstatat(f->root, ".mirrorfs/cow/notes.txt", &st, 0), 0);
	assert_int_equal(fstatat(f->root, "keep", &st, 0), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(snap_byte(f, s1.id, a, 0), 'x');
	assert_int_equal(snap_byte(f, s1.id, a, CH + 1), 'x');
	/* the orphan s1 still reads is kept, and its row written again */
	snprintf(gone, sizeof(gone), ".mirrorfs/orphans/%" PRIu64, g);
	assert_int_equal(fstatat(f->root, gone, &st, 0), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM orphans WHERE ino=?", (int64_t)g), 1);
	assert_int_equal(snap_byte(f, s1.id, g, 0), 'g');
	fx_close(f);

	/* a clean open sweeps nothing: a stray copy then stays until an unclean one */
	raw_put(f, stray, 'j', 0, CH);
	fx_open(f, 0);
	assert_int_equal(fstatat(f->root, stray, &st, 0), 0);
	fx_close(f);
}

/*
 * The order of the syncs: this program's fsync() and fdatasync() stand in
 * for libc's (for the journal, linked in, and for libsqlite3 alike) and,
 * while sync_log_on, note what each synced: 'S' a store file, 'W' the
 * journal's WAL, 'F' anything else.
 */
static bool sync_log_on;
static char sync_log[64];
static size_t sync_log_n;

static void sync_note(int fd)
{
	char link[64], path[512];
	ssize_t n;

	if (!sync_log_on || sync_log_n + 1 >= sizeof(sync_log))
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return;
	path[n] = 0;
	sync_log[sync_log_n++] = strstr(path, "/.mirrorfs/cow/") ? 'S' :
				 strstr(path, "journal.db-wal") ? 'W' : 'F';
	sync_log[sync_log_n] = 0;
}

int fsync(int fd)
{
	sync_note(fd);
	return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
	sync_note(fd);
	return (int)syscall(SYS_fdatasync, fd);
}

/*
 * An fsync of a file overwritten after a snapshot makes the old data
 * durable first, then the rows that say where it is, then the file: a
 * power loss can keep the new data only with the old and its rows. The
 * rows were committed only against the death of the process, and nothing
 * else is pending, so the WAL is synced for them alone.
 */
static void test_fsync_order(void **state)
{
	struct fx *f = *state;
	uint64_t a;
	int fa;

	fx_open(f, 0);
	a = mkfile(f, ROOT, f->root, "a", &fa);
	put(f, a, fa, 'x', 0, 2 * CH);
	assert_int_equal(journal_fsync(f->j, a, fa, false), 0);
	snap(f, "s1");
	put(f, a, fa, 'y', 0, 10);                     /* a copy and its row */
	assert_int_equal(journal_flush(f->j), 0);      /* nothing left to commit */
	sync_log_n = 0;
	sync_log_on = true;
	assert_int_equal(journal_fsync(f->j, a, fa, false), 0);
	sync_log_on = false;
	assert_non_null(strstr(sync_log, "SWF"));
	/* no copies since: no store sync, no sync of the rows before the file */
	sync_log_n = 0;
	sync_log_on = true;
	assert_int_equal(journal_fsync(f->j, a, fa, false), 0);
	sync_log_on = false;
	assert_null(strchr(sync_log, 'S'));
	assert_int_equal(sync_log[0], 'F');
	close(fa);
	fx_close(f);
}

static void test_snap_names_and_holds(void **state)
{
	struct fx *f = *state;
	struct journal_snap *v;
	size_t n;
	char big[300];

	fx_open(f, 0);
	snap(f, "a");
	assert_int_equal(journal_snap_create(f->j, "a", NULL), -EEXIST);
	assert_int_equal(journal_snap_create(f->j, "", NULL), -EINVAL);
	assert_int_equal(journal_snap_create(f->j, "..", NULL), -EINVAL);
	assert_int_equal(journal_snap_create(f->j, "x/y", NULL), -EINVAL);
	memset(big, 'n', 256);
	big[256] = 0;
	assert_int_equal(journal_snap_create(f->j, big, NULL), -ENAMETOOLONG);
	assert_int_equal(journal_snap_delete(f->j, "nope"), -ENOENT);
	assert_int_equal(journal_snap_hold(f->j, "a", "peer:1"), 0);
	assert_int_equal(journal_snap_delete(f->j, "a"), -EBUSY);
	assert_int_equal(journal_snap_list(f->j, true, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].hold, "peer:1");
	free(v);
	assert_int_equal(journal_snap_release(f->j, "a", "peer:1"), 0);
	assert_int_equal(journal_snap_delete(f->j, "a"), 0);
	fx_close(f);
	/* creation and deletion are journal records */
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=?",
			       (int64_t)JOP_SNAP_CREATE), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=?",
			       (int64_t)JOP_SNAP_DELETE), 1);
}

/* ---- the change set --------------------------------------------------------- */

struct seen {
	char lines[64][128];
	size_t n;
};

static int collect(void *arg, const struct journal_diff *d)
{
	struct seen *s = arg;
	static const char *const kind[] = { "", "unlink", "create", "link", "data", "attr" };

	assert_true(s->n < 64);
	switch (d->kind) {
	case JDIFF_UNLINK:
		snprintf(s->lines[s->n++], 128, "unlink %" PRIu64 "/%s %" PRIu64 "%s", d->parent,
			 d->name, d->ino, d->survives ? " survives" : "");
		break;
	case JDIFF_LINK:
		snprintf(s->lines[s->n++], 128, "link %" PRIu64 "/%s %" PRIu64, d->parent, d->name,
			 d->ino);
		break;
	case JDIFF_DATA:
		snprintf(s->lines[s->n++], 128, "data %" PRIu64 " %" PRIu64 "+%" PRIu64, d->ino,
			 d->off, d->len);
		break;
	default:
		snprintf(s->lines[s->n++], 128, "%s %" PRIu64, kind[d->kind], d->ino);
		break;
	}
	return 0;
}

static bool has(const struct seen *s, const char *line)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->lines[i], line) == 0)
			return true;
	return false;
}

static size_t idx(const struct seen *s, const char *line)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->lines[i], line) == 0)
			return i;
	fail_msg("missing line '%s'", line);
	return 0;
}

static void test_diff(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };
	uint64_t d1, d2, sub, g, h, vic, s0, s1;
	char line[128];
	int d1fd, d2fd, subfd, gfd, hfd, vfd;

	fx_open(f, 0);
	d1 = mk(f, ROOT, f->root, "d1", S_IFDIR | 0755);
	d2 = mk(f, ROOT, f->root, "d2", S_IFDIR | 0755);
	d1fd = opath(f->root, "d1");
	d2fd = opath(f->root, "d2");
	sub = mk(f, d1, d1fd, "sub", S_IFDIR | 0755);
	subfd = opath(d1fd, "sub");
	g = mkfile(f, sub, subfd, "g", &gfd);
	put(f, g, gfd, 'g', 0, 3 * CH);
	h = mkfile(f, d1, d1fd, "h", &hfd);
	put(f, h, hfd, 'h', 0, 100);
	vic = mkfile(f, d2, d2fd, "victim", &vfd);
	s0 = snap(f, "s0");

	/* full: everything is created and linked, data of every file */
	assert_int_equal(journal_diff(f->j, 0, s0, collect, &s), 0);
	snprintf(line, sizeof(line), "link 1/d1 %" PRIu64, d1);
	assert_true(idx(&s, line) < idx(&s, (snprintf(line, sizeof(line), "link %" PRIu64
						       "/sub %" PRIu64, d1, sub), line)));
	snprintf(line, sizeof(line), "data %" PRIu64 " 0+%d", g, 3 * CH);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "create %" PRIu64, vic);
	assert_true(has(&s, line));

	/* rename a directory holding a changed file; replace a file by rename;
	 * a hard link added; truncate then extend */
	assert_int_equal(journal_rename(f->j, d1fd, d1, "sub", d2fd, d2, "moved", 0), 0);
	put(f, g, gfd, 'G', CH + 1, 10);
	assert_int_equal(journal_rename(f->j, d1fd, d1, "h", d2fd, d2, "victim", 0), 0);
	assert_int_equal(journal_link(f->j, gfd, g, f->root, ROOT, "glink", NULL), 0);
	resize(f, g, gfd, 10);
	resize(f, g, gfd, 2 * CH);
	s1 = snap(f, "s1");

	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_diff(f->j, s0, s1, collect, &s), 0);
	snprintf(line, sizeof(line), "unlink %" PRIu64 "/sub %" PRIu64 " survives", d1, sub);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "unlink %" PRIu64 "/victim %" PRIu64, d2, vic);
	assert_true(has(&s, line));   /* the replaced file dies */
	snprintf(line, sizeof(line), "unlink %" PRIu64 "/h %" PRIu64 " survives", d1, h);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "link %" PRIu64 "/moved %" PRIu64, d2, sub);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "link %" PRIu64 "/victim %" PRIu64, d2, h);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "link 1/glink %" PRIu64, g);
	assert_true(has(&s, line));
	/* the file inside the moved directory is not re-created or re-linked */
	snprintf(line, sizeof(line), "link %" PRIu64 "/g %" PRIu64, sub, g);
	assert_false(has(&s, line));
	snprintf(line, sizeof(line), "create %" PRIu64, g);
	assert_false(has(&s, line));
	/*
	 * truncate to 10 then extend to 2 chunks: everything from 10 may
	 * differ, from the start of its block (the hole map of that block too)
	 */
	snprintf(line, sizeof(line), "data %" PRIu64 " 0+%d", g, 2 * CH);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "attr %" PRIu64, g);
	assert_true(has(&s, line));
	snprintf(line, sizeof(line), "attr %" PRIu64, d1);
	assert_true(has(&s, line));
	assert_true(has(&s, "attr 1"));
	/* nothing about the untouched victim's replacement data */
	snprintf(line, sizeof(line), "data %" PRIu64 " 0+100", h);
	assert_false(has(&s, line));

	/* a hard link removed again: the diff from s1 to s2 unlinks it */
	assert_int_equal(journal_unlink(f->j, f->root, ROOT, "glink"), 0);
	snap(f, "s2");
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_diff(f->j, s1, s1 + 1, collect, &s), 0);
	snprintf(line, sizeof(line), "unlink 1/glink %" PRIu64 " survives", g);
	assert_true(has(&s, line));
	close(gfd);
	close(hfd);
	close(vfd);
	close(d1fd);
	close(d2fd);
	close(subfd);
	fx_close(f);
}

/* ---- compaction ------------------------------------------------------------- */

static int64_t snap_seq(struct fx *f, uint64_t id)
{
	return q_int(f, "SELECT seq FROM snapshots WHERE id = ?1", (int64_t)id);
}

static void same_seen(const struct seen *a, const struct seen *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->lines[i], b->lines[i]);
}

/*
 * What no snapshot and no kept history need goes; change sets between the
 * snapshots left, and their views, are the same after as before; a write
 * that would merge into a folded-away row gets a new one.
 */
static void test_compact(void **state)
{
	struct fx *f = *state;
	struct journal_open_opts o = { .history_keep = 5 };
	struct seen full1 = { 0 }, d12 = { 0 }, after = { 0 };
	uint64_t d, a, b, x, s0, s1, s2, removed;
	int64_t kept;
	int dfd, afd, bfd, xfd;
	char name[32];

	assert_int_equal(journal_open(f->dir, &o, &f->j), 0);
	f->root = journal_root_fd(f->j);
	d = mk(f, ROOT, f->root, "d", S_IFDIR | 0755);
	dfd = opath(f->root, "d");
	a = mkfile(f, d, dfd, "a", &afd);
	b = mkfile(f, d, dfd, "b", &bfd);
	for (int i = 0; i < 20; i++)
		put(f, a, afd, 'a', (off_t)i * 2 * CH, 100);   /* 20 rows: not adjacent */
	put(f, b, bfd, 'b', 0, 10);
	s0 = snap(f, "s0");
	assert_int_equal(journal_rename(f->j, dfd, d, "b", dfd, d, "c", 0), 0);
	assert_int_equal(journal_unlink(f->j, dfd, d, "a"), 0);
	put(f, b, bfd, 'B', 5, 10);
	s1 = snap(f, "s1");
	x = mkfile(f, d, dfd, "x", &xfd);
	put(f, x, xfd, 'x', 0, 10);
	s2 = snap(f, "s2");
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		mk(f, d, dfd, name, S_IFREG | 0644);
	}
	assert_int_equal(journal_diff(f->j, 0, s1, collect, &full1), 0);
	assert_int_equal(journal_diff(f->j, s1, s2, collect, &d12), 0);

	/* the records before the oldest snapshot go; none after it */
	assert_int_equal(journal_flush(f->j), 0);   /* q_int reads what is committed */
	kept = q_int(f, "SELECT count(*) FROM changes WHERE seq > ?1", snap_seq(f, s0));
	assert_true(q_int(f, "SELECT count(*) FROM changes WHERE seq < ?1", snap_seq(f, s0)) >=
		    3 + 20 + 1);   /* d, a, b, the writes */
	assert_int_equal(journal_compact(f->j, &removed), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE seq <= ?1",
			       snap_seq(f, s0)), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE seq > ?1", snap_seq(f, s0)),
			 kept);
	/* b's old name died after s0: still seen by s0 */
	assert_int_equal(q_int(f, "SELECT count(*) FROM ns WHERE died_seq IS NOT NULL"), 2);

	assert_int_equal(journal_snap_delete(f->j, "s0"), 0);
	assert_int_equal(journal_compact(f->j, &removed), 0);
	assert_true(removed > 0);
	/* the oldest snapshot is s1: nothing at or before it is needed */
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE seq <= ?1",
			       snap_seq(f, s1)), 0);
	assert_true(q_int(f, "SELECT count(*) FROM changes WHERE seq > ?1", snap_seq(f, s1)) > 10);
	assert_int_equal(q_int(f, "SELECT count(*) FROM ns WHERE died_seq IS NOT NULL"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM objects WHERE ino = ?1", (int64_t)a), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM objects WHERE ino = ?1", (int64_t)b), 1);

	/* the same change sets and views as before */
	assert_int_equal(journal_diff(f->j, 0, s1, collect, &after), 0);
	same_seen(&full1, &after);
	memset(&after, 0, sizeof(after));
	assert_int_equal(journal_diff(f->j, s1, s2, collect, &after), 0);
	same_seen(&d12, &after);
	assert_int_equal(snap_byte(f, s1, b, 5), 'B');
	assert_int_equal(snap_byte(f, s2, x, 9), 'x');

	/* no snapshot left: only the newest 5 records stay */
	assert_int_equal(journal_snap_delete(f->j, "s1"), 0);
	assert_int_equal(journal_snap_delete(f->j, "s2"), 0);
	assert_int_equal(journal_compact(f->j, &removed), 0);
	assert_true(q_int(f, "SELECT count(*) FROM changes") <= 5);
	/* x's write row is gone; the next write to x must not be lost with it */
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE ino = ?1", (int64_t)x), 0);
	put(f, x, xfd, 'y', 0, 20);
	assert_int_equal(journal_flush(f->j), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE ino = ?1 AND op = ?2",
			       (int64_t)x, (int64_t)JOP_WRITE), 1);
	close(afd);
	close(bfd);
	close(xfd);
	close(dfd);
	fx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cow_overlapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cow_truncate_punch_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cow_sequential_ahead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snap_keep_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_open_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snap_read_keeps_atime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snap_attr_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_segs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cow_attrs_orphans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_after_unclean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snap_names_and_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
