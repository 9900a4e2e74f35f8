/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sender and the receiver end to end, without FUSE: a source tree built
 * through the journal's mutation API in a temporary backing directory,
 * snapshots, repl_send() over a socketpair to repl_serve() in a thread with
 * its own replica journal, and then, for every snapshot, the replica's
 * snapshot view compared with the source's: names, jinos (hard links),
 * types, sizes, data and holes, mode/uid/gid/mtime, symlink targets, xattrs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/repl.h"
#include "mirrorfs/util.h"

#define ROOT JOURNAL_ROOT_INO

struct side {
	char dir[64];
	struct journal *j;
};

struct fx {
	struct side src, dst;
};

/* ---- fixtures -------------------------------------------------------------- */

static void rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static void side_open(struct side *s)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/mfs-sync-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	assert_int_equal(journal_open(s->dir, NULL, &s->j), 0);
}

static void side_close(struct side *s)
{
	if (s->j)
		assert_int_equal(journal_close(s->j), 0);
	s->j = NULL;
	rm_rf(s->dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	side_open(&f->src);
	side_open(&f->dst);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	side_close(&f->src);
	side_close(&f->dst);
	free(f);
	return 0;
}

/* ---- building a source through the mutation API ---------------------------- */

static const struct journal_cred root_cred = { .uid = 0, .gid = 0 };

/* The live object at `path` (relative, "" = root): an O_PATH fd and its jino. */
static int obj(struct side *s, const char *path, uint64_t *ret_ino)
{
	char p[512];
	struct stat st;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", s->dir, path);
	fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	if (!*path)
		*ret_ino = ROOT;
	else
		assert_int_equal(journal_ino_find(s->j, &st, ret_ino), 0);
	return fd;
}

/* Directory fd and jino of the parent of `path`, and its last component. */
static int parent(struct side *s, const char *path, uint64_t *ret_dir, const char **ret_name)
{
	static char buf[512];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	slash = strrchr(buf, '/');
	if (!slash) {
		*ret_name = path;
		return obj(s, "", ret_dir);
	}
	*slash = '\0';
	*ret_name = path + (slash - buf) + 1;
	return obj(s, buf, ret_dir);
}

static void mk(struct side *s, const char *path, mode_t mode, const char *target)
{
	const char *name;
	uint64_t dir;
	int dfd = parent(s, path, &dir, &name);

	assert_int_equal(journal_mknod(s->j, &root_cred, dfd, dir, name, mode,
				       S_ISCHR(mode) ? makedev(1, 3) : 0, target, NULL), 0);
	close(dfd);
}

static void write_at(struct side *s, const char *path, off_t off, const void *buf, size_t len)
{
	uint64_t ino;
	int ofd = obj(s, path, &ino), fd;
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", ofd);
	fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(journal_pwrite(s->j, ino, fd, buf, len, off), (ssize_t)len);
	close(fd);
	close(ofd);
}

/* A file of `len` bytes of a pattern seeded by `seed`. */
static void put_file(struct side *s, const char *path, off_t off, size_t len, int seed)
{
	char *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 31 + (size_t)seed) % 251);
	write_at(s, path, off, buf, len);
	free(buf);
}

static void setattr(struct side *s, const char *path, const struct journal_attr *a)
{
	uint64_t ino;
	int fd = obj(s, path, &ino);

	assert_int_equal(journal_setattr(s->j, fd, -1, ino, a, NULL), 0);
	close(fd);
}

static void truncate_to(struct side *s, const char *path, off_t size)
{
	struct journal_attr a = { .valid = JOURNAL_ATTR_SIZE, .size = size };

	setattr(s, path, &a);
}

static void punch(struct side *s, const char *path, off_t off, off_t len)
{
	uint64_t ino;
	int ofd = obj(s, path, &ino), fd;
	char p[64];

	snprintf(p, sizeof(p), "/proc/self/fd/%d", ofd);
	fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(journal_fallocate(s->j, ino, fd, FALLOC_FL_PUNCH_HOLE |
					   FALLOC_FL_KEEP_SIZE, off, len), 0);
	close(fd);
	close(ofd);
}

static void xset(struct side *s, const char *path, const char *name, const char *value)
{
	uint64_t ino;
	int fd = obj(s, path, &ino);

	assert_int_equal(journal_setxattr(s->j, fd, ino, name, value, strlen(value), 0), 0);
	close(fd);
}

static void xrm(struct side *s, const char *path, const char *name)
{
	uint64_t ino;
	int fd = obj(s, path, &ino);

	assert_int_equal(journal_removexattr(s->j, fd, ino, name), 0);
	close(fd);
}

static void mv(struct side *s, const char *from, const char *to, unsigned flags)
{
	const char *on, *nn;
	uint64_t od, nd;
	int ofd = parent(s, from, &od, &on);
	char oname[256];
	int nfd;

	snprintf(oname, sizeof(oname), "%s", on);
	nfd = parent(s, to, &nd, &nn);
	assert_int_equal(journal_rename(s->j, ofd, od, oname, nfd, nd, nn, flags), 0);
	close(ofd);
	close(nfd);
}

static void ln(struct side *s, const char *from, const char *to)
{
	const char *name;
	uint64_t ino, dir;
	int fd = obj(s, from, &ino);
	int dfd = parent(s, to, &dir, &name);

	assert_int_equal(journal_link(s->j, fd, ino, dfd, dir, name, NULL), 0);
	close(fd);
	close(dfd);
}

static void rm(struct side *s, const char *path, bool dir)
{
	const char *name;
	uint64_t d;
	int dfd = parent(s, path, &d, &name);

	if (dir)
		assert_int_equal(journal_rmdir(s->j, dfd, d, name), 0);
	else
		assert_int_equal(journal_unlink(s->j, dfd, d, name), 0);
	close(dfd);
}

static void snap(struct side *s, const char *name)
{
	assert_int_equal(journal_snap_create(s->j, name, NULL), 0);
}

static void set_times(struct side *s, const char *path, time_t sec)
{
	struct journal_attr a = {
		.valid = JOURNAL_ATTR_ATIME | JOURNAL_ATTR_MTIME,
		.atime = { .tv_sec = sec, .tv_nsec = 123 },
		.mtime = { .tv_sec = sec, .tv_nsec = 456789 },
	};

	setattr(s, path, &a);
}

/* ---- transports that fail on purpose ------------------------------------------ */

/*
 * Wraps the sender's transport: after `cut_after` bytes it delivers nothing
 * more (the connection breaks), and it flips the byte at `flip_at`.
 */
struct evil {
	struct repl_transport base;
	struct repl_transport *inner;
	int sock;
	uint64_t written, cut_after, flip_at;  /* 0 = never */
};

static ssize_t evil_read(struct repl_transport *t, void *buf, size_t len)
{
	return repl_transport_read(((struct evil *)t)->inner, buf, len);
}

static int evil_write(struct repl_transport *t, const void *buf, size_t len)
{
	struct evil *e = (struct evil *)t;
	uint8_t *copy = malloc(len);
	int r;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	if (e->flip_at && e->flip_at > e->written && e->flip_at <= e->written + len)
		copy[e->flip_at - e->written - 1] ^= 0x5a;
	if (e->cut_after && e->written + len > e->cut_after) {
		size_t n = (size_t)(e->cut_after > e->written ? e->cut_after - e->written : 0);

		if (n)
			repl_transport_write(e->inner, copy, n);
		e->written += n;
		shutdown(e->sock, SHUT_WR);
		free(copy);
		return -EPIPE;
	}
	r = repl_transport_write(e->inner, copy, len);
	free(copy);
	if (r == 0)
		e->written += len;
	return r;
}

static int evil_close(struct repl_transport *t)
{
	return 0;
}

static const struct repl_transport_ops evil_ops = {
	.read = evil_read, .write = evil_write, .close = evil_close,
};

/* ---- one sync: sender here, receiver in a thread ------------------------------ */

struct receiver {
	struct journal *j;
	int fd;
	struct repl_serve_opts opts;
	struct repl_serve_stats stats;
	int r;
	char msg[512];
};

static void *receiver_main(void *arg)
{
	struct receiver *rc = arg;
	struct repl_transport *t;

	assert_int_equal(repl_transport_fd_new(rc->fd, rc->fd, true, &t), 0);
	rc->r = repl_serve(rc->j, NULL, t, &rc->opts, &rc->stats);
	snprintf(rc->msg, sizeof(rc->msg), "%s", repl_last_errmsg());
	repl_transport_close(t);
	return NULL;
}

struct sync_opts {
	uint64_t cut_after, flip_at;
	unsigned save_every;
	uint64_t flush_every;
};

struct sync_result {
	int r;                           /* sender */
	char msg[512];
	struct repl_send_stats st;
	int serve_r;
	char serve_msg[512];
	struct repl_serve_stats serve;
};

static void sync_run(struct side *src, struct side *dst, const char *from, const char *to,
		     const struct sync_opts *so, struct sync_result *ret)
{
	struct receiver rc = { .j = dst->j };
	struct evil e = { .base = { .ops = &evil_ops, .timeout_ms = -1 } };
	struct repl_transport *t;
	pthread_t th;
	int sv[2];

	memset(ret, 0, sizeof(*ret));
	if (so) {
		rc.opts.save_every = so->save_every;
		rc.opts.flush_every = so->flush_every;
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	rc.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, receiver_main, &rc), 0);
	assert_int_equal(repl_transport_fd_new(sv[0], sv[0], true, &t), 0);
	e.inner = t;
	e.sock = sv[0];
	snprintf(e.base.peer, sizeof(e.base.peer), "test replica");
	if (so) {
		e.cut_after = so->cut_after;
		e.flip_at = so->flip_at;
	}
	ret->r = repl_send(src->j, from, to, &e.base, NULL, &ret->st);
	snprintf(ret->msg, sizeof(ret->msg), "%s", repl_last_errmsg());
	repl_transport_close(t);
	assert_int_equal(pthread_join(th, NULL), 0);
	ret->serve_r = rc.r;
	ret->serve = rc.stats;
	snprintf(ret->serve_msg, sizeof(ret->serve_msg), "%s", rc.msg);
}

static void sync_ok(struct fx *f, const char *from, const char *to, struct sync_result *ret)
{
	struct sync_result res;

	sync_run(&f->src, &f->dst, from, to, NULL, ret ? ret : &res);
	ret = ret ? ret : &res;
	if (ret->r != 0 || ret->serve_r != 0)
		fail_msg("sync %s -> %s: sender %d (%s), receiver %d (%s)", from ? from : "(full)",
			 to, ret->r, ret->msg, ret->serve_r, ret->serve_msg);
}

/* ---- comparing snapshot views --------------------------------------------------- */

struct ent {
	char name[256];
	uint64_t ino;
	mode_t type;
};

struct ents {
	struct ent *v;
	size_t n, cap;
};

static int collect(void *arg, const char *name, uint64_t ino, mode_t type, uint64_t next)
{
	struct ents *e = arg;

	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 16;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
		assert_non_null(e->v);
	}
	snprintf(e->v[e->n].name, sizeof(e->v[e->n].name), "%s", name);
	e->v[e->n].ino = ino;
	e->v[e->n].type = type & S_IFMT;
	e->n++;
	return 0;
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static void list_dir(struct side *s, uint64_t snap, uint64_t dir, struct ents *ret)
{
	memset(ret, 0, sizeof(*ret));
	assert_int_equal(journal_snap_readdir(s->j, snap, dir, 0, collect, ret), 0);
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), cmp_ent);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void compare_xattrs(struct side *a, uint64_t sa, struct side *b, uint64_t sb,
			   uint64_t ino, const char *path)
{
	char la[4096], lb[4096], va[4096], vb[4096];
	char *na[64], *nb[64];
	ssize_t ka = journal_snap_listxattr(a->j, sa, ino, la, sizeof(la));
	ssize_t kb = journal_snap_listxattr(b->j, sb, ino, lb, sizeof(lb));
	size_t n = 0, m = 0;

	assert_true(ka >= 0 && kb >= 0);
	for (char *p = la; p < la + ka; p += strlen(p) + 1)
		na[n++] = p;
	for (char *p = lb; p < lb + kb; p += strlen(p) + 1)
		nb[m++] = p;
	if (n != m)
		fail_msg("%s: %zu xattrs on the source, %zu on the replica", path, n, m);
	qsort(na, n, sizeof(*na), cmp_str);
	qsort(nb, m, sizeof(*nb), cmp_str);
	for (size_t i = 0; i < n; i++) {
		ssize_t x, y;

		assert_string_equal(na[i], nb[i]);
		x = journal_snap_getxattr(a->j, sa, ino, na[i], va, sizeof(va));
		y = journal_snap_getxattr(b->j, sb, ino, nb[i], vb, sizeof(vb));
		assert_true(x >= 0);
		assert_int_equal(x, y);
		assert_memory_equal(va, vb, (size_t)x);
	}
}

/* Same bytes and the same data/hole map. */
static void compare_data(struct side *a, uint64_t sa, struct side *b, uint64_t sb,
			 uint64_t ino, off_t size, const char *path)
{
	struct journal_snapfile *fa, *fb;
	static char ba[65536], bb[65536];

	assert_int_equal(journal_snapfile_open(a->j, sa, ino, &fa), 0);
	assert_int_equal(journal_snapfile_open(b->j, sb, ino, &fb), 0);
	for (off_t off = 0; off < size; off += (off_t)sizeof(ba)) {
		ssize_t x = journal_snapfile_read(fa, ba, sizeof(ba), off);
		ssize_t y = journal_snapfile_read(fb, bb, sizeof(bb), off);

		assert_int_equal(x, y);
		if (memcmp(ba, bb, (size_t)x) != 0)
			fail_msg("%s: data differs in [%lld, %lld)", path, (long long)off,
				 (long long)(off + x));
	}
	for (off_t off = 0; off < size;) {
		off_t da = journal_snapfile_seek(fa, off, SEEK_DATA);
		off_t db = journal_snapfile_seek(fb, off, SEEK_DATA);
		off_t ha, hb;

		if (da != db)
			fail_msg("%s: data after %lld at %lld on the source, %lld on the replica",
				 path, (long long)off, (long long)da, (long long)db);
		if (da < 0)
			break;
		ha = journal_snapfile_seek(fa, da, SEEK_HOLE);
		hb = journal_snapfile_seek(fb, db, SEEK_HOLE);
		if (ha != hb)
			fail_msg("%s: hole after %lld at %lld on the source, %lld on the replica",
				 path, (long long)da, (long long)ha, (long long)hb);
		off = ha;
	}
	journal_snapfile_close(fa);
	journal_snapfile_close(fb);
}

static void compare_obj(struct side *a, uint64_t sa, struct side *b, uint64_t sb,
			uint64_t ino, const char *path)
{
	struct stat x, y;

	assert_int_equal(journal_snap_stat(a->j, sa, ino, &x), 0);
	if (journal_snap_stat(b->j, sb, ino, &y) != 0)
		fail_msg("%s: inode %" PRIu64 " missing on the replica", path, ino);
	if (x.st_mode != y.st_mode || x.st_uid != y.st_uid || x.st_gid != y.st_gid)
		fail_msg("%s: mode/owner 0%o %u:%u on the source, 0%o %u:%u on the replica", path,
			 x.st_mode, x.st_uid, x.st_gid, y.st_mode, y.st_uid, y.st_gid);
	if (!S_ISDIR(x.st_mode) && x.st_nlink != y.st_nlink)
		fail_msg("%s: %lu links on the source, %lu on the replica", path,
			 (unsigned long)x.st_nlink, (unsigned long)y.st_nlink);
	if (x.st_mtim.tv_sec != y.st_mtim.tv_sec || x.st_mtim.tv_nsec != y.st_mtim.tv_nsec)
		fail_msg("%s: mtime %lld.%09ld on the source, %lld.%09ld on the replica", path,
			 (long long)x.st_mtim.tv_sec, x.st_mtim.tv_nsec,
			 (long long)y.st_mtim.tv_sec, y.st_mtim.tv_nsec);
	if (S_ISREG(x.st_mode)) {
		assert_int_equal(x.st_size, y.st_size);
		compare_data(a, sa, b, sb, ino, x.st_size, path);
	}
	if (S_ISCHR(x.st_mode) || S_ISBLK(x.st_mode))
		assert_int_equal(x.st_rdev, y.st_rdev);
	if (S_ISLNK(x.st_mode)) {
		char ta[4096], tb[4096];
		size_t la = 0, lb = 0;

		assert_int_equal(journal_snap_readlink(a->j, sa, ino, ta, sizeof(ta), &la), 0);
		assert_int_equal(journal_snap_readlink(b->j, sb, ino, tb, sizeof(tb), &lb), 0);
		assert_int_equal(la, lb);
		assert_memory_equal(ta, tb, la);
	}
	compare_xattrs(a, sa, b, sb, ino, path);
}

static void compare_tree(struct side *a, uint64_t sa, struct side *b, uint64_t sb,
			 uint64_t dir, const char *path)
{
	struct ents ea, eb;

	compare_obj(a, sa, b, sb, dir, path);
	list_dir(a, sa, dir, &ea);
	list_dir(b, sb, dir, &eb);
	if (ea.n != eb.n)
		fail_msg("%s: %zu entries on the source, %zu on the replica", path, ea.n, eb.n);
	for (size_t i = 0; i < ea.n; i++) {
		char sub[1024];

		snprintf(sub, sizeof(sub), "%s/%s", path, ea.v[i].name);
		if (strcmp(ea.v[i].name, eb.v[i].name) != 0 || ea.v[i].ino != eb.v[i].ino ||
		    ea.v[i].type != eb.v[i].type)
			fail_msg("%s: entry '%s' (inode %" PRIu64 ") on the source, '%s' (inode %"
				 PRIu64 ") on the replica", path, ea.v[i].name, ea.v[i].ino,
				 eb.v[i].name, eb.v[i].ino);
		if (ea.v[i].type == S_IFDIR)
			compare_tree(a, sa, b, sb, ea.v[i].ino, sub);
		else
			compare_obj(a, sa, b, sb, ea.v[i].ino, sub);
	}
	free(ea.v);
	free(eb.v);
}

/* Snapshot `name` of the replica equals the source's. */
static void compare_snap(struct fx *f, const char *name)
{
	struct journal_snap x, y;

	assert_int_equal(journal_snap_get(f->src.j, name, &x), 0);
	if (journal_snap_get(f->dst.j, name, &y) != 0)
		fail_msg("snapshot '%s' missing on the replica", name);
	compare_tree(&f->src, x.id, &f->dst, y.id, ROOT, name);
}

static void assert_no_snap(struct side *s, const char *name)
{
	struct journal_snap x;

	assert_int_equal(journal_snap_get(s->j, name, &x), -ENOENT);
}

/* ---- a tree with a bit of everything ----------------------------------------- */

static void build_tree(struct side *s)
{
	mk(s, "a", S_IFDIR | 0755, NULL);
	mk(s, "a/b", S_IFDIR | 0750, NULL);
	mk(s, "a/b/f1", S_IFREG | 0644, NULL);
	put_file(s, "a/b/f1", 0, 100000, 1);
	mk(s, "a/b/f2", S_IFREG | 0600, NULL);
	put_file(s, "a/b/f2", 0, 3000, 2);
	mk(s, "sparse", S_IFREG | 0644, NULL);
	put_file(s, "sparse", 4096, 8192, 3);
	put_file(s, "sparse", 3 * 1048576, 5000, 4);   /* a hole of ~3 MiB between */
	mk(s, "big", S_IFREG | 0644, NULL);
	put_file(s, "big", 0, 2 * 1048576 + 12345, 5);  /* three DATA records */
	mk(s, "empty", S_IFREG | 0444, NULL);
	mk(s, "link", S_IFLNK | 0777, "../outside/target");
	mk(s, "fifo", S_IFIFO | 0640, NULL);
	mk(s, "null", S_IFCHR | 0666, NULL);
	mk(s, "setuid", S_IFREG | 04755, NULL);
	ln(s, "a/b/f2", "hard");
	xset(s, "a/b/f1", "user.color", "blue");
	xset(s, "a", "user.dir", "yes");
	xset(s, "", "user.root", "r");
	set_times(s, "a/b/f2", 1000000000);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_full_then_incremental(void **state)
{
	struct fx *f = *state;
	struct sync_result res;
	struct journal_attr a = { .valid = JOURNAL_ATTR_MODE | JOURNAL_ATTR_UID | JOURNAL_ATTR_GID,
				  .mode = 0700, .uid = 1234, .gid = 5678 };

	build_tree(&f->src);
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", &res);
	assert_int_equal(res.st.resumed_from, 0);
	assert_true(res.st.records > 0);
	assert_true(res.st.wire_bytes > 0);
	compare_snap(f, "s1");

	put_file(&f->src, "a/b/f1", 50000, 10, 9);          /* a small overwrite */
	mk(&f->src, "a/new", S_IFREG | 0644, NULL);
	put_file(&f->src, "a/new", 0, 777, 7);
	setattr(&f->src, "a/b/f2", &a);
	xset(&f->src, "a/b/f1", "user.color", "red");
	xset(&f->src, "a/b/f1", "user.shape", "round");
	xrm(&f->src, "a", "user.dir");
	punch(&f->src, "big", 4096, 65536);
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", &res);
	compare_snap(f, "s1");
	compare_snap(f, "s2");
	/* incremental: only what changed travels */
	assert_true(res.st.data_bytes < 200000);

	/* the ACK was lost: the same stream again is acknowledged at once */
	sync_ok(f, "s1", "s2", &res);
	assert_int_equal(res.st.records_sent, 0);
	compare_snap(f, "s2");
}

/* Writeback started along the way (flush_every): the same replica, and it ran. */
static void test_flush_along_the_way(void **state)
{
	struct fx *f = *state;
	struct sync_opts so = { .flush_every = 65536 };
	struct sync_result res;

	build_tree(&f->src);
	snap(&f->src, "s1");
	sync_run(&f->src, &f->dst, NULL, "s1", &so, &res);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.serve_r, 0);
	assert_true(res.serve.flushes >= 3);   /* one per DATA record of 64 KiB or more */
	compare_snap(f, "s1");
	put_file(&f->src, "big", 0, 1048576, 8);
	snap(&f->src, "s2");
	sync_run(&f->src, &f->dst, "s1", "s2", &so, &res);
	assert_int_equal(res.serve_r, 0);
	compare_snap(f, "s2");
}

static void test_rename_dir_with_changes(void **state)
{
	struct fx *f = *state;

	build_tree(&f->src);
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	mk(&f->src, "c", S_IFDIR | 0755, NULL);
	mv(&f->src, "a/b", "c/moved", 0);
	put_file(&f->src, "c/moved/f1", 0, 4096, 11);
	mk(&f->src, "c/moved/f3", S_IFREG | 0644, NULL);
	mv(&f->src, "a", "c/moved/a", 0);                   /* parent moves under its child's new place */
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", NULL);
	compare_snap(f, "s2");
	compare_snap(f, "s1");
}

static void test_replace_by_rename(void **state)
{
	struct fx *f = *state;

	mk(&f->src, "x", S_IFREG | 0644, NULL);
	put_file(&f->src, "x", 0, 1000, 1);
	mk(&f->src, "y", S_IFREG | 0600, NULL);
	put_file(&f->src, "y", 0, 2000, 2);
	mk(&f->src, "d", S_IFDIR | 0755, NULL);
	mk(&f->src, "d/inner", S_IFREG | 0644, NULL);
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	mv(&f->src, "y", "x", 0);               /* x replaced: old x dies */
	mk(&f->src, "tmp", S_IFREG | 0644, NULL);
	put_file(&f->src, "tmp", 0, 10, 3);
	mv(&f->src, "tmp", "d/inner", 0);       /* write-to-temp-then-rename */
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", NULL);
	compare_snap(f, "s2");
}

static void test_hard_links(void **state)
{
	struct fx *f = *state;

	mk(&f->src, "d", S_IFDIR | 0755, NULL);
	mk(&f->src, "f", S_IFREG | 0644, NULL);
	put_file(&f->src, "f", 0, 5000, 1);
	mk(&f->src, "keep", S_IFREG | 0644, NULL);
	ln(&f->src, "keep", "keep2");
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);

	ln(&f->src, "f", "g");
	ln(&f->src, "f", "d/h");
	rm(&f->src, "keep2", false);            /* loses a name, keeps one that did not change */
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", NULL);
	compare_snap(f, "s2");

	rm(&f->src, "f", false);                /* the first name goes, two stay */
	rm(&f->src, "d/h", false);
	ln(&f->src, "g", "d/again");
	mv(&f->src, "g", "d/g2", 0);            /* every old name gone, new ones made */
	snap(&f->src, "s3");
	sync_ok(f, "s2", "s3", NULL);
	compare_snap(f, "s3");
	compare_snap(f, "s1");
}

static void test_truncate_then_extend(void **state)
{
	struct fx *f = *state;

	mk(&f->src, "f", S_IFREG | 0644, NULL);
	put_file(&f->src, "f", 0, 200000, 1);
	mk(&f->src, "g", S_IFREG | 0644, NULL);
	put_file(&f->src, "g", 0, 300000, 2);
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	truncate_to(&f->src, "f", 10000);
	put_file(&f->src, "f", 300000, 5000, 3);   /* extends, a hole in between */
	truncate_to(&f->src, "g", 1000);            /* only shrinks */
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", NULL);
	compare_snap(f, "s2");
	truncate_to(&f->src, "f", 0);
	truncate_to(&f->src, "g", 1 << 20);          /* grows by a hole */
	snap(&f->src, "s3");
	sync_ok(f, "s2", "s3", NULL);
	compare_snap(f, "s3");
	compare_snap(f, "s1");
}

static void test_exchange(void **state)
{
	struct fx *f = *state;

	mk(&f->src, "a", S_IFREG | 0644, NULL);
	put_file(&f->src, "a", 0, 100, 1);
	mk(&f->src, "b", S_IFDIR | 0755, NULL);
	mk(&f->src, "b/c", S_IFREG | 0644, NULL);
	mk(&f->src, "p", S_IFDIR | 0755, NULL);
	mk(&f->src, "q", S_IFDIR | 0755, NULL);
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	mv(&f->src, "a", "b", RENAME_EXCHANGE);     /* a file and a directory swap names */
	mv(&f->src, "p", "q", RENAME_EXCHANGE);
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", NULL);
	compare_snap(f, "s2");
}

static void test_delete_tree(void **state)
{
	struct fx *f = *state;

	mk(&f->src, "t", S_IFDIR | 0755, NULL);
	mk(&f->src, "t/u", S_IFDIR | 0755, NULL);
	mk(&f->src, "t/u/v", S_IFDIR | 0755, NULL);
	mk(&f->src, "t/u/v/f", S_IFREG | 0644, NULL);
	put_file(&f->src, "t/u/v/f", 0, 1234, 1);
	mk(&f->src, "t/u/g", S_IFREG | 0644, NULL);
	mk(&f->src, "t/l", S_IFLNK | 0777, "u/g");
	mk(&f->src, "keep", S_IFREG | 0644, NULL);
	ln(&f->src, "t/u/g", "keep2");             /* survives outside the deleted tree */
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	rm(&f->src, "t/u/v/f", false);
	rm(&f->src, "t/u/v", true);
	rm(&f->src, "t/u/g", false);
	rm(&f->src, "t/u", true);
	rm(&f->src, "t/l", false);
	rm(&f->src, "t", true);
	snap(&f->src, "s2");
	sync_ok(f, "s1", "s2", NULL);
	compare_snap(f, "s2");
	compare_snap(f, "s1");
}

/* A change set with namespace work and data, for the interruption tests. */
static void busy_change_set(struct fx *f)
{
	char p[64], q[64];

	mk(&f->src, "d", S_IFDIR | 0755, NULL);
	for (int i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "d/f%02d", i);
		mk(&f->src, p, S_IFREG | 0644, NULL);
		put_file(&f->src, p, 0, 1000 + (size_t)i, i);
	}
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	for (int i = 0; i + 1 < 40; i += 2) {       /* swap pairs of names */
		snprintf(p, sizeof(p), "d/f%02d", i);
		snprintf(q, sizeof(q), "d/f%02d", i + 1);
		mv(&f->src, p, q, RENAME_EXCHANGE);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "d/n%02d", i);
		mk(&f->src, p, S_IFREG | 0644, NULL);
		put_file(&f->src, p, 0, 3000, 100 + i);
	}
	mk(&f->src, "big", S_IFREG | 0644, NULL);
	put_file(&f->src, "big", 0, 3 * 1048576, 9);
	snap(&f->src, "s2");
}

static void test_interrupt_and_resume(void **state)
{
	struct fx *f = *state;
	struct sync_opts so = { .cut_after = 2500 };
	struct sync_result res, res2;

	busy_change_set(f);
	sync_run(&f->src, &f->dst, "s1", "s2", &so, &res);
	assert_true(res.r < 0);
	assert_true(res.serve_r < 0);
	assert_true(res.serve.records_applied > 0);
	assert_no_snap(&f->dst, "s2");
	compare_snap(f, "s1");                       /* untouched */

	sync_ok(f, "s1", "s2", &res2);
	/* resumed where the receiver stopped: nothing it applied is sent again */
	assert_int_equal(res2.st.resumed_from, res.serve.records_applied);
	assert_int_equal(res2.st.records_sent, res2.st.records - res2.st.resumed_from);
	compare_snap(f, "s2");
}

/*
 * A stream interrupted under another stream version, whose record order
 * may differ, is not resumed by record number: refused, the replica kept.
 */
static void test_other_version_not_resumed(void **state)
{
	struct fx *f = *state;
	struct sync_opts so = { .cut_after = 2500 };
	struct sync_result res;
	uint64_t tag = 0xcbf29ce484222325ULL;

	busy_change_set(f);
	sync_run(&f->src, &f->dst, "s1", "s2", &so, &res);
	assert_true(res.serve_r < 0);
	assert_true(res.serve.records_applied > 0);
	/* the in-progress marker as version 1 wrote it: a hash of the name alone */
	for (const char *p = "s2"; *p; p++)
		tag = (tag ^ (unsigned char)*p) * 0x100000001b3ULL;
	assert_int_equal(journal_recv_pos_set(f->dst.j, journal_source_id(f->src.j), "s1",
					      "/in-progress", tag | 1), 0);
	sync_run(&f->src, &f->dst, "s1", "s2", NULL, &res);
	assert_int_equal(res.r, -EBUSY);
	assert_non_null(strstr(res.msg, "of another stream version"));
	assert_no_snap(&f->dst, "s2");
}

/*
 * A receiver killed between two position saves re-applies the records
 * after the saved one: simulate it by moving the saved position back.
 */
static void test_replay_after_crash(void **state)
{
	struct fx *f = *state;
	struct sync_opts so = { .cut_after = 4000, .save_every = 8 };
	struct sync_result res, res2;
	uint64_t k;

	busy_change_set(f);
	sync_run(&f->src, &f->dst, "s1", "s2", &so, &res);
	assert_true(res.r < 0);
	k = res.serve.records_applied;
	assert_true(k > 8);
	assert_int_equal(journal_recv_pos_set(f->dst.j, journal_source_id(f->src.j), "s1", "s2",
					      k - 7), 0);
	so = (struct sync_opts){ .save_every = 8 };
	sync_run(&f->src, &f->dst, "s1", "s2", &so, &res2);
	if (res2.r != 0)
		fail_msg("replay: %s / %s", res2.msg, res2.serve_msg);
	assert_int_equal(res2.st.resumed_from, k - 7);
	compare_snap(f, "s2");
}

static void test_corrupted_byte(void **state)
{
	struct fx *f = *state;
	struct sync_opts so = { .flip_at = 1500 };
	struct sync_result res;

	busy_change_set(f);
	sync_run(&f->src, &f->dst, "s1", "s2", &so, &res);
	assert_int_equal(res.r, -EBADMSG);          /* the receiver's NAK */
	assert_int_equal(res.serve_r, -EBADMSG);
	assert_non_null(strstr(res.msg, "checksum"));
	assert_no_snap(&f->dst, "s2");
	compare_snap(f, "s1");
	sync_ok(f, "s1", "s2", NULL);               /* a clean retry converges */
	compare_snap(f, "s2");
}

static void test_second_source_refused(void **state)
{
	struct fx *f = *state;
	struct side other = { 0 };
	struct sync_result res;

	build_tree(&f->src);
	snap(&f->src, "s1");
	sync_ok(f, NULL, "s1", NULL);
	side_open(&other);
	mk(&other, "x", S_IFREG | 0644, NULL);
	snap(&other, "o1");
	snap(&other, "o2");
	sync_run(&other, &f->dst, "o1", "o2", NULL, &res);
	assert_int_equal(res.r, -EPERM);
	assert_non_null(strstr(res.msg, "mirrored from"));
	assert_non_null(strstr(res.msg, journal_source_id(f->src.j)));
	assert_int_equal(res.serve_r, 0);           /* a refusal is not a failure of serve */
	assert_int_equal(res.serve.refused, 1);
	side_close(&other);
	compare_snap(f, "s1");
}

static void test_from_missing_refused(void **state)
{
	struct fx *f = *state;
	struct sync_result res;

	mk(&f->src, "x", S_IFREG | 0644, NULL);
	snap(&f->src, "s1");
	snap(&f->src, "s2");
	sync_run(&f->src, &f->dst, "s1", "s2", NULL, &res);
	assert_int_equal(res.r, -ENOENT);
	assert_non_null(strstr(res.msg, "replica lacks snapshot 's1'"));
	assert_no_snap(&f->dst, "s2");

	sync_ok(f, NULL, "s1", NULL);
	sync_ok(f, "s1", "s2", NULL);
	snap(&f->src, "s3");
	/* a full stream into a replica with snapshots, and a stale `from` */
	sync_run(&f->src, &f->dst, NULL, "s3", NULL, &res);
	assert_int_equal(res.r, -EEXIST);
	sync_run(&f->src, &f->dst, "s1", "s3", NULL, &res);
	assert_int_equal(res.r, -ESTALE);
	sync_ok(f, "s2", "s3", NULL);
	compare_snap(f, "s3");
}

/* ---- one-way streams in memory ------------------------------------------------------ */

struct stream {
	uint8_t *p;
	size_t len;
};

/* The stream written by transport `t` (closed), as a copy of our own. */
static struct stream stream_take(struct repl_transport *t)
{
	struct stream st;
	const void *out;

	repl_transport_mem_output(t, &out, &st.len);
	st.p = malloc(st.len ? st.len : 1);
	assert_non_null(st.p);
	memcpy(st.p, out, st.len);
	repl_transport_close(t);
	return st;
}

/* `mirrorfs send` of snapshot `to` (full), into memory. */
static struct stream send_full(struct side *src, const char *to,
			       const struct repl_send_opts *opts)
{
	struct repl_send_opts so = opts ? *opts : (struct repl_send_opts){ 0 };
	struct repl_transport *t;

	so.one_way = true;
	assert_int_equal(repl_transport_mem_new(NULL, 0, &t), 0);
	assert_int_equal(repl_send(src->j, NULL, to, t, &so, NULL), 0);
	return stream_take(t);
}

/* `mirrorfs receive` of the first `len` bytes of `st` into `dst`: repl_serve()'s result. */
static int receive_mem(struct side *dst, const struct stream *st, size_t len,
		       struct repl_serve_stats *ret_stats)
{
	struct repl_serve_opts ro = { .one_way = true };
	struct repl_serve_stats rst;
	struct repl_transport *t;
	int r;

	assert_int_equal(repl_transport_mem_new(st->p, len, &t), 0);
	r = repl_serve(dst->j, NULL, t, &ro, ret_stats ? ret_stats : &rst);
	repl_transport_close(t);
	return r;
}

/* `mirrorfs send > FILE` and `mirrorfs receive < FILE`: one-way, no replies. */
static void test_one_way_file(void **state)
{
	struct fx *f = *state;
	struct repl_serve_stats rst;
	struct stream st;

	build_tree(&f->src);
	snap(&f->src, "s1");
	st = send_full(&f->src, "s1", NULL);

	/* truncated: refused, nothing snapshotted; then the whole file resumes */
	assert_true(receive_mem(&f->dst, &st, st.len / 2, &rst) < 0);
	assert_no_snap(&f->dst, "s1");
	if (receive_mem(&f->dst, &st, st.len, &rst) != 0)
		fail_msg("receive: %s", repl_last_errmsg());
	assert_string_equal(rst.last_snapshot, "s1");
	compare_snap(f, "s1");
	free(st.p);
}

/* ---- streams written by hand ------------------------------------------------------ */

enum { HM_A = 10, HM_B = 11 };

/* Receive (one-way) a full stream of `body` records, written by `body`, into f->dst. */
static int receive_hand_made(struct fx *f, void (*body)(struct repl_writer *))
{
	struct repl_hello h = { .source_uuid = "0b9c1a52-3f4e-4d5a-9c6b-7e8f90a1b2c3", .to_snap = "s1" };
	struct repl_transport *t;
	struct repl_writer *w;
	struct stream st;
	int r;

	assert_int_equal(repl_transport_mem_new(NULL, 0, &t), 0);
	assert_int_equal(repl_writer_new(t, NULL, &w), 0);
	assert_int_equal(repl_writer_hello(w, &h), 0);
	body(w);
	assert_int_equal(repl_writer_trailer(w), 0);
	assert_int_equal(repl_writer_flush(w), 0);
	repl_writer_free(w);
	st = stream_take(t);
	r = receive_mem(&f->dst, &st, st.len, NULL);
	free(st.p);
	return r;
}

static void file_in_root(struct repl_writer *w, uint64_t ino, const char *name)
{
	struct repl_create c = { .ino = ino, .parent = ROOT, .name = name, .mode = S_IFREG | 0644 };

	assert_int_equal(repl_writer_create(w, &c), 0);
}

/* `a` gets a second name `l` and loses `a`, which then names another file. */
static void relinked(struct repl_writer *w)
{
	file_in_root(w, HM_A, "a");
	assert_int_equal(repl_writer_link(w, &(struct repl_link){ .ino = HM_A, .parent = ROOT,
								  .name = "l" }), 0);
	assert_int_equal(repl_writer_unlink(w, &(struct repl_unlink){ .parent = ROOT, .name = "a",
								      .ino = HM_A }), 0);
}

static void stale_name_body(struct repl_writer *w)
{
	relinked(w);
	file_in_root(w, HM_B, "a");
	assert_int_equal(repl_writer_data(w, HM_A, 0, "first", 5), 0);
	assert_int_equal(repl_writer_data(w, HM_B, 0, "second", 6), 0);
}

static void assert_file(struct side *s, const char *name, const char *want)
{
	char p[512], buf[64] = "";
	int fd;

	snprintf(p, sizeof(p), "%s/%s", s->dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(want));
	close(fd);
	assert_string_equal(buf, want);
}

/*
 * The receiver opens an object where the stream last named it; when that
 * name has since gone to another object, the data still reaches its own.
 */
static void test_name_given_to_another(void **state)
{
	struct fx *f = *state;

	if (receive_hand_made(f, stale_name_body) != 0)
		fail_msg("receive: %s", repl_last_errmsg());
	assert_file(&f->dst, "l", "first");
	assert_file(&f->dst, "a", "second");
}

static void rename_out_body(struct repl_writer *w)
{
	struct repl_rename rn = {
		.ino = HM_A, .old_parent = JOURNAL_STAGING_INO, .old_name = "10",
		.new_parent = ROOT, .new_name = "a", .flags = REPL_RENAME_NOREPLACE,
	};

	relinked(w);
	assert_int_equal(repl_writer_rename(w, &rn), 0);
}

/*
 * A RENAME out of staging of an object created in place is done already,
 * unless a record changed its names since: then it is looked at again (and
 * here fails, as the object is neither in staging nor at the target).
 */
static void test_rename_out_after_relink(void **state)
{
	struct fx *f = *state;

	assert_int_equal(receive_hand_made(f, rename_out_body), -ENOENT);
	assert_non_null(strstr(repl_last_errmsg(), "cannot rename '10'"));
}

/* A transport that serves a stream from memory and kills the process after `die_after` bytes. */
struct dying {
	struct repl_transport base;
	const uint8_t *p;
	size_t len, pos, die_after;
};

static ssize_t dying_read(struct repl_transport *t, void *buf, size_t len)
{
	struct dying *d = (struct dying *)t;

	if (d->pos >= d->die_after)
		_exit(0);   /* a receiver killed mid-stream: nothing is closed or saved */
	len = UTIL_MIN(len, UTIL_MIN(d->len, d->die_after) - d->pos);
	memcpy(buf, d->p + d->pos, len);
	d->pos += len;
	return (ssize_t)len;
}

static int dying_write(struct repl_transport *t, const void *buf, size_t len)
{
	return 0;
}

static const struct repl_transport_ops dying_ops = {
	.read = dying_read, .write = dying_write, .close = evil_close,
};

/*
 * The receiver dies after applying part of a stream whose changes its
 * journal had not committed yet; the journal's recovery adopts what it
 * finds under local jinos (directories with entries among them). The
 * stream received again replays those records: each leftover gives way to
 * the object the stream names, and the replica ends equal to the source.
 */
/*
 * A crash of the replica's owner: `child` runs in a forked process with
 * the replica's journal open in inline mode (a change is committed only
 * when something waits for it) and ends with _exit(0); then the journal
 * is opened again here, which recovers.
 */
static void crash_child(struct fx *f, void (*child)(struct journal *j, void *arg), void *arg)
{
	struct journal_open_opts o = { .flags = JOURNAL_OPEN_NO_START };
	struct journal *j;
	int status;
	pid_t pid;

	assert_int_equal(journal_close(f->dst.j), 0);
	f->dst.j = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (journal_open(f->dst.dir, &o, &j) < 0)
			_exit(1);
		child(j, arg);
		_exit(2);   /* the child was to end the process itself */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(journal_open(f->dst.dir, NULL, &f->dst.j), 0);
}

/* Receive two thirds of a stream, then die. */
static void die_receiving(struct journal *j, void *arg)
{
	const struct stream *str = arg;
	struct dying dt = { .base = { .ops = &dying_ops, .timeout_ms = -1 },
			    .p = str->p, .len = str->len, .die_after = str->len * 2 / 3 };
	struct repl_serve_opts ro = { .one_way = true };
	struct repl_serve_stats rst;

	repl_serve(j, NULL, &dt.base, &ro, &rst);
}

static void test_leftovers_of_a_killed_receiver(void **state)
{
	struct fx *f = *state;
	struct stat st;
	struct stream str;
	char p[64], q[64], path[128];

	for (int d = 0; d < 3; d++) {
		snprintf(p, sizeof(p), "d%d", d);
		mk(&f->src, p, S_IFDIR | 0755, NULL);
		snprintf(p, sizeof(p), "d%d/sub", d);
		mk(&f->src, p, S_IFDIR | 0700, NULL);
		for (int i = 0; i < 6; i++) {
			snprintf(p, sizeof(p), i % 2 ? "d%d/f%d" : "d%d/sub/f%d", d, i);
			mk(&f->src, p, S_IFREG | 0644, NULL);
			put_file(&f->src, p, 0, 20000 + (size_t)i * 1000, d * 10 + i);
		}
		snprintf(p, sizeof(p), "d%d/sub/f0", d);
		snprintf(q, sizeof(q), "d0/hard%d", d);
		ln(&f->src, p, q);
	}
	snap(&f->src, "s1");
	str = send_full(&f->src, "s1", NULL);

	crash_child(f, die_receiving, &str);
	/* what the child made before it died is there */
	snprintf(path, sizeof(path), "%s/d1/sub", f->dst.dir);
	assert_int_equal(lstat(path, &st), 0);

	if (receive_mem(&f->dst, &str, str.len, NULL) != 0)
		fail_msg("receive after the crash: %s", repl_last_errmsg());
	compare_snap(f, "s1");
	free(str.p);
}

/* The marker of a stream to `to` in progress, as the receiver writes it (recv.c). */
static void mark_in_progress(struct fx *f, const char *to)
{
	uint64_t tag = 0xcbf29ce484222325ULL;

	for (const char *p = to; *p; p++)
		tag = (tag ^ (unsigned char)*p) * 0x100000001b3ULL;
	tag = (tag ^ REPL_STREAM_VERSION) * 0x100000001b3ULL;
	assert_int_equal(journal_replica_claim(f->dst.j, journal_source_id(f->src.j), NULL), 0);
	assert_int_equal(journal_recv_pos_set(f->dst.j, journal_source_id(f->src.j), "",
					      "/in-progress", tag | 1), 0);
}

/*
 * The same with leftovers made by hand: whole directories with entries,
 * which the receiver must set aside and empty into their successors.
 */
/* Mark the root dirty, make what a receiver of build_tree() makes first, and die. */
static void leave_directories(struct journal *j, void *arg)
{
	struct journal_attr a = { .valid = JOURNAL_ATTR_MODE, .mode = 0755 };
	int rfd = journal_root_fd(j), fd;

	(void)arg;
	if (journal_setattr(j, rfd, -1, ROOT, &a, NULL) < 0)
		_exit(3);
	if (mkdirat(rfd, "a", 0755) < 0 || mkdirat(rfd, "a/b", 0755) < 0)
		_exit(4);
	fd = openat(rfd, "a/b/f1", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "stale", 5) != 5)
		_exit(5);
	close(fd);
	fd = openat(rfd, "empty", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		_exit(6);
	close(fd);
	_exit(0);
}

static void test_leftover_directories(void **state)
{
	struct fx *f = *state;
	struct stream str;

	build_tree(&f->src);
	snap(&f->src, "s1");
	str = send_full(&f->src, "s1", NULL);

	mark_in_progress(f, "s1");   /* the stream had begun */
	crash_child(f, leave_directories, NULL);

	if (receive_mem(&f->dst, &str, str.len, NULL) != 0)
		fail_msg("receive after the crash: %s", repl_last_errmsg());
	compare_snap(f, "s1");
	free(str.p);
}

static void last_progress(void *arg, const struct repl_send_progress *p)
{
	*(struct repl_send_progress *)arg = *p;
}

/*
 * Progress totals are added up on a thread of their own while the stream
 * goes; the last report has them, and they match what was done.
 */
static void test_progress_totals(void **state)
{
	struct fx *f = *state;
	struct repl_send_progress last = { 0 };
	struct repl_send_opts so = { .progress = last_progress, .progress_arg = &last };

	build_tree(&f->src);
	snap(&f->src, "s1");
	free(send_full(&f->src, "s1", &so).p);
	/* a/b/f1, a/b/f2 (also 'hard'), sparse (holes included), big */
	assert_int_equal(last.files_total, 4);
	assert_int_equal(last.bytes_total, 100000 + 3000 + (3 * 1048576 + 5000) + 2 * 1048576 + 12345);
	assert_int_equal(last.bytes_done, last.bytes_total);
	assert_int_equal(last.files_done, last.files_total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_then_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_along_the_way, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_dir_with_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_by_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_then_extend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_and_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_version_not_resumed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupted_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_source_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_missing_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_way_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_totals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_of_a_killed_receiver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftover_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_given_to_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_out_after_relink, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
