/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the journal module: a fresh temporary backing directory and
 * journal per test. The test reads journal.db directly (sqlite3) to check
 * rows the public API does not expose, and uses journal_i.h for the writer's
 * counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"
#include "journal_i.h"

#include "journal_fx.h"

static int open_rw(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static void rstat(struct fx *f, uint64_t dir, uint64_t bytes, uint64_t files, uint64_t subdirs)
{
	struct journal_rstat rs;

	assert_int_equal(journal_rstat_get(f->j, dir, &rs), 0);
	assert_int_equal(rs.rbytes, bytes);
	assert_int_equal(rs.rfiles, files);
	assert_int_equal(rs.rsubdirs, subdirs);
}

static int64_t rctime(struct fx *f, uint64_t dir)
{
	struct journal_rstat rs;

	assert_int_equal(journal_rstat_get(f->j, dir, &rs), 0);
	return (int64_t)rs.rctime.tv_sec * 1000000000LL + rs.rctime.tv_nsec;
}

/* Collected changes. */
struct rec {
	uint64_t seq;
	enum journal_op op;
	uint64_t ino;
	char path[256], new_path[256];
	uint64_t off, len;
};
struct recs {
	struct rec v[4096];
	size_t n;
};

static int collect(void *arg, const struct journal_change *c)
{
	struct recs *r = arg;
	struct rec *e;

	if (r->n == UTIL_ARRAY_SIZE(r->v))
		return -ENOSPC;
	e = &r->v[r->n++];
	e->seq = c->seq;
	e->op = c->op;
	e->ino = c->ino;
	snprintf(e->path, sizeof(e->path), "%s", c->path ? c->path : "(null)");
	snprintf(e->new_path, sizeof(e->new_path), "%s", c->new_path ? c->new_path : "(null)");
	e->off = c->offset;
	e->len = c->length;
	return 0;
}

static struct recs *changes(struct fx *f, uint64_t since)
{
	struct recs *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	assert_int_equal(journal_changes(f->j, since, collect, r), 0);
	return r;
}

static const struct rec *find(const struct recs *r, enum journal_op op, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].op == op && !strcmp(r->v[i].path, path))
			return &r->v[i];
	return NULL;
}

static int drift_count;
static void on_drift(void *arg, const struct journal_drift *d)
{
	(void)arg;
	drift_count++;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "drift %d %s: %s\n", d->kind, d->path, d->detail);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void test_open_close_reopen(void **state)
{
	struct fx *f = *state;
	struct stat st;
	uint64_t seq, ino, ino2;

	write_file(f, "pre", 10);
	fx_open(f, 0);
	assert_int_equal(fstatat(f->root, ".mirrorfs", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_string_equal(journal_backing_path(f->j), f->dir);
	ino = mk(f, ROOT, f->root, "a", S_IFDIR | 0755);
	assert_true(ino > ROOT);
	/* mutations return once queued; a flush makes them visible */
	assert_int_equal(journal_flush(f->j), 0);
	seq = journal_seq(f->j);
	assert_true(seq >= 2);
	fx_close(f);
	assert_int_equal(q_int(f, "SELECT value FROM meta WHERE key='clean'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM dirty"), 0);

	fx_open(f, 0);
	assert_int_equal(journal_seq(f->j), seq);
	assert_int_equal(fstatat(f->root, "a", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &ino2), 0);
	assert_int_equal(ino2, ino);
	ino2 = mk(f, ROOT, f->root, "b", S_IFDIR | 0755);
	assert_true(ino2 > ino);  /* never reused */
	assert_int_equal(q_int(f, "SELECT value FROM meta WHERE key='clean'"), 0);
	fx_close(f);

	/* READONLY: no lock, no writer */
	fx_open(f, JOURNAL_OPEN_READONLY);
	assert_int_equal(journal_mknod(f->j, NULL, f->root, ROOT, "c", S_IFDIR | 0755, 0, NULL, NULL),
			 -EROFS);
	fx_close(f);
}

/*
 * journal_close_keep() + journal_open(opts.keep): the objects come back
 * without a load, the dirty marks are taken again (the clean close removed
 * them), and a read-write open by anyone else in between makes the next
 * open load instead.
 */
static void test_close_keep(void **state)
{
	struct fx *f = *state;
	struct journal_keep *keep = NULL;
	struct journal_open_opts o = { 0 };
	struct stat st;
	uint64_t a, b, ino;
	int fd;

	fx_open(f, 0);
	a = mk(f, ROOT, f->root, "a", S_IFDIR | 0755);
	assert_int_equal(journal_close_keep(f->j, &keep), 0);
	f->j = NULL;
	assert_non_null(keep);
	assert_int_equal(q_int(f, "SELECT value FROM meta WHERE key='clean'"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM dirty"), 0);

	/* reopened with the kept objects: same ids, and changes mark dirty again */
	o.keep = keep;
	assert_int_equal(journal_open(f->dir, &o, &f->j), 0);
	f->root = journal_root_fd(f->j);
	assert_int_equal(fstatat(f->root, "a", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &ino), 0);
	assert_int_equal(ino, a);
	b = mk(f, ROOT, f->root, "b", S_IFDIR | 0755);
	assert_true(b > a);
	assert_int_equal(q_int(f, "SELECT count(*) FROM dirty WHERE ino = 1"), 1);
	assert_int_equal(journal_close_keep(f->j, &keep), 0);
	f->j = NULL;
	assert_non_null(keep);

	/* another read-write open in between (here: this one) makes it stale */
	fx_open(f, 0);
	assert_int_equal(journal_rmdir(f->j, f->root, ROOT, "a"), 0);
	fx_close(f);
	o.keep = keep;
	assert_int_equal(journal_open(f->dir, &o, &f->j), 0);
	f->root = journal_root_fd(f->j);
	assert_int_equal(journal_open_ino(f->j, a, O_PATH, &fd), -ENOENT);
	assert_int_equal(fstatat(f->root, "b", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &ino), 0);
	assert_int_equal(ino, b);
	fx_close(f);

	/* a read-only journal keeps nothing */
	fx_open(f, JOURNAL_OPEN_READONLY);
	assert_int_equal(journal_close_keep(f->j, &keep), 0);
	f->j = NULL;
	assert_null(keep);
}

static void test_busy(void **state)
{
	struct fx *f = *state;
	struct journal *j2 = NULL;

	fx_open(f, 0);
	assert_int_equal(journal_open(f->dir, NULL, &j2), -EBUSY);
	assert_null(j2);
	/* inspection while it is open */
	assert_int_equal(journal_open(f->dir, &(struct journal_open_opts){
		.flags = JOURNAL_OPEN_READONLY }, &j2), 0);
	assert_int_equal(journal_close(j2), 0);
	fx_close(f);
	assert_int_equal(journal_open(f->dir, NULL, &j2), 0);
	assert_int_equal(journal_close(j2), 0);
}

static void test_not_writable(void **state)
{
	struct fx *f = *state;
	struct journal *j = NULL;
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		assert_int_equal(chmod(f->dir, 0555), 0);
		assert_int_equal(journal_open(f->dir, NULL, &j), -EROFS);
		assert_int_equal(chmod(f->dir, 0755), 0);
		return;
	}
	/* root ignores modes: try as nobody */
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		_exit(journal_open(f->dir, NULL, &j) == -EROFS ? 0 : 11);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* a state directory made by someone else */
	fx_open(f, 0);
	fx_close(f);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		_exit(journal_open(f->dir, NULL, &j) == -EROFS ? 0 : 11);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_schema_version(void **state)
{
	struct fx *f = *state;

	fx_open(f, 0);
	fx_close(f);
	q_exec(f, "UPDATE meta SET value=999 WHERE key='schema_version'");
	assert_int_equal(journal_open(f->dir, NULL, &f->j), -EPROTONOSUPPORT);
	assert_null(f->j);
	assert_int_equal(q_int(f, "SELECT value FROM meta WHERE key='schema_version'"), 999);

	/* an older version is upgraded by the migrations, in one transaction */
	q_exec(f, "UPDATE meta SET value=0 WHERE key='schema_version'");
	fx_open(f, 0);
	assert_int_equal(q_int(f, "SELECT value FROM meta WHERE key='schema_version'"),
			 JOURNAL_SCHEMA_VERSION);
	mk(f, ROOT, f->root, "d", S_IFDIR | 0755);
	fx_close(f);
	assert_string_equal(journal_strerror(-EPROTONOSUPPORT),
			    "journal was written by a newer version of mirrorfs");
}

static void read_all(const char *p, char *buf, size_t size, ssize_t *ret)
{
	int fd = open(p, O_RDONLY);

	assert_true(fd >= 0);
	*ret = read(fd, buf, size);
	close(fd);
}

static void test_corrupt_refused(void **state)
{
	struct fx *f = *state;
	char junk[8192], back[8192 + 1];
	ssize_t n;
	int fd;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	mkdir_raw(f, ".mirrorfs");
	fd = open(f->db, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	assert_int_equal(journal_open(f->dir, NULL, &f->j), -EUCLEAN);
	assert_int_equal(journal_open(f->dir, NULL, &f->j), -EUCLEAN);
	read_all(f->db, back, sizeof(back), &n);
	assert_int_equal(n, (ssize_t)sizeof(junk));
	assert_memory_equal(back, junk, sizeof(junk));

	/* a valid sqlite database that is not a journal */
	unlink(f->db);
	q_exec(f, "CREATE TABLE t(x)");
	assert_int_equal(journal_open(f->dir, NULL, &f->j), -EUCLEAN);
	assert_int_equal(q_int(f, "SELECT count(*) FROM sqlite_master"), 1);

	/* a journal truncated in the middle */
	unlink(f->db);
	fx_open(f, 0);
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "d%d", i);
		mk(f, ROOT, f->root, name, S_IFDIR | 0755);
	}
	fx_close(f);
	assert_int_equal(truncate(f->db, 4096 + 100), 0);
	assert_int_equal(journal_open(f->dir, NULL, &f->j), -EUCLEAN);
}

/* ---- namespace and change records --------------------------------------- */

static void test_namespace_versions(void **state)
{
	struct fx *f = *state;
	uint64_t a, file, s_create, s_rename, s_unlink;
	struct recs *r;
	int afd;

	fx_open(f, 0);
	a = mk(f, ROOT, f->root, "a", S_IFDIR | 0755);
	afd = opath(f->root, "a");
	file = mk(f, a, afd, "f", S_IFREG | 0644);
	assert_int_equal(journal_flush(f->j), 0);
	s_create = journal_seq(f->j);
	assert_int_equal(journal_rename(f->j, afd, a, "f", afd, a, "g", 0), 0);
	assert_int_equal(journal_flush(f->j), 0);
	s_rename = journal_seq(f->j);
	assert_int_equal(journal_unlink(f->j, afd, a, "g"), 0);
	assert_int_equal(journal_flush(f->j), 0);
	s_unlink = journal_seq(f->j);
	assert_true(s_create < s_rename && s_rename < s_unlink);

	assert_int_equal(q_int(f, "SELECT born_seq FROM ns WHERE ino=? AND name=CAST('f' AS BLOB)",
			       (int64_t)file), (int64_t)s_create);
	assert_int_equal(q_int(f, "SELECT died_seq FROM ns WHERE ino=? AND name=CAST('f' AS BLOB)",
			       (int64_t)file), (int64_t)s_rename);
	assert_int_equal(q_int(f, "SELECT born_seq FROM ns WHERE ino=? AND name=CAST('g' AS BLOB)",
			       (int64_t)file), (int64_t)s_rename);
	assert_int_equal(q_int(f, "SELECT died_seq FROM ns WHERE ino=? AND name=CAST('g' AS BLOB)",
			       (int64_t)file), (int64_t)s_unlink);
	assert_int_equal(q_int(f, "SELECT died_seq FROM objects WHERE ino=?", (int64_t)file),
			 (int64_t)s_unlink);
	assert_int_equal(q_int(f, "SELECT typeof(name) = 'blob' FROM ns WHERE ino=? LIMIT 1",
			       (int64_t)file), 1);

	r = changes(f, 0);
	assert_non_null(find(r, JOP_CREATE, "/a/f"));
	const struct rec *rn = find(r, JOP_RENAME, "/a/f");
	assert_non_null(rn);
	assert_string_equal(rn->new_path, "/a/g");
	assert_int_equal(rn->seq, s_rename);
	assert_non_null(find(r, JOP_UNLINK, "/a/g"));
	free(r);

	/* paths of a moved directory: as of each change */
	uint64_t b = mk(f, ROOT, f->root, "b", S_IFDIR | 0755);
	uint64_t x = mk(f, a, afd, "x", S_IFREG | 0644);
	int xfd = open_rw(afd, "x");
	uint64_t before = journal_seq(f->j);
	int bfd = opath(f->root, "b");
	assert_int_equal(journal_pwrite(f->j, x, xfd, "hello", 5, 0), 5);
	assert_int_equal(journal_flush(f->j), 0);
	assert_int_equal(journal_rename(f->j, f->root, ROOT, "a", bfd, b, "a2", 0), 0);
	assert_int_equal(journal_pwrite(f->j, x, xfd, "world", 5, 100), 5);
	r = changes(f, before);
	assert_non_null(find(r, JOP_WRITE, "/a/x"));
	assert_non_null(find(r, JOP_WRITE, "/b/a2/x"));
	rn = find(r, JOP_RENAME, "/a");
	assert_non_null(rn);
	assert_string_equal(rn->new_path, "/b/a2");
	free(r);
	close(xfd);
	close(bfd);
	close(afd);
	fx_close(f);
}

static void test_every_op(void **state)
{
	struct fx *f = *state;
	struct journal_attr attr = { 0 };
	struct journal_cred cred = { getuid(), getgid(), 0 };
	uint64_t d, file, g, l, fifo;
	struct stat st, lst;
	struct recs *r;
	int dfd, fd, ffd, gfd, lfd, cfd, k;

	fx_open(f, 0);
	d = mk(f, ROOT, f->root, "d", S_IFDIR | 0755);
	dfd = opath(f->root, "d");
	assert_int_equal(journal_create(f->j, &cred, dfd, d, "file", O_RDWR, 0644, &fd, &st), 0);
	file = st.st_ino;
	assert_true(S_ISREG(st.st_mode));
	/* existed: O_EXCL fails, plain open succeeds; O_TRUNC of a non-empty file is recorded */
	assert_int_equal(journal_create(f->j, &cred, dfd, d, "file", O_RDWR | O_EXCL, 0644, &k, &st),
			 -EEXIST);
	assert_int_equal(journal_pwrite(f->j, file, fd, "0123456789", 10, 0), 10);
	assert_int_equal(journal_create(f->j, &cred, dfd, d, "file", O_RDWR | O_TRUNC, 0644, &k, &st), 0);
	assert_int_equal(st.st_ino, file);
	assert_int_equal(st.st_size, 0);
	close(k);

	assert_int_equal(journal_pwrite(f->j, file, fd, "abcdefgh", 8, 0), 8);
	fifo = mk(f, d, dfd, "fifo", S_IFIFO | 0600);
	assert_true(fifo > file);
	l = mk(f, d, dfd, "sym", S_IFLNK | 0777);
	ffd = opath(dfd, "file");
	assert_int_equal(journal_link(f->j, ffd, file, f->root, ROOT, "hard", &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_ino, file);

	attr.valid = JOURNAL_ATTR_MODE | JOURNAL_ATTR_SIZE | JOURNAL_ATTR_MTIME;
	attr.mode = 0600;
	attr.size = 4;
	attr.mtime = (struct timespec){ 1000000, 5 };
	assert_int_equal(journal_setattr(f->j, ffd, -1, file, &attr, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(st.st_mtim.tv_sec, 1000000);
	assert_int_equal(st.st_ino, file);

	/* symlink times: the link itself changes, not its (missing) target */
	lfd = opath(dfd, "sym");
	attr = (struct journal_attr){ .valid = JOURNAL_ATTR_ATIME | JOURNAL_ATTR_MTIME | JOURNAL_ATTR_MODE,
				      .mode = 0600,
				      .atime = { 0, UTIME_OMIT }, .mtime = { 2000000, 0 } };
	assert_int_equal(journal_setattr(f->j, lfd, -1, l, &attr, &st), 0);
	assert_int_equal(fstatat(dfd, "sym", &lst, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(lst.st_mtim.tv_sec, 2000000);
	assert_int_equal(lst.st_mode & 0777, 0777);  /* mode of a symlink is ignored */
	close(lfd);

	assert_int_equal(journal_fallocate(f->j, file, fd, 0, 0, 8192), 0);
	assert_int_equal(journal_fallocate(f->j, file, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   0, 4096), 0);
	k = journal_setxattr(f->j, ffd, file, "user.test", "v", 1, 0);
	if (k == -ENOTSUP || k == -EOPNOTSUPP) {
		print_message("no user xattrs on this filesystem\n");
	} else {
		assert_int_equal(k, 0);
		assert_int_equal(journal_removexattr(f->j, ffd, file, "user.test"), 0);
	}

	g = mk(f, d, dfd, "g", S_IFREG | 0644);
	gfd = open_rw(dfd, "g");
	assert_int_equal(journal_pwrite(f->j, g, gfd, "xyz", 3, 0), 3);
	cfd = open_rw(dfd, "file");
	assert_int_equal(journal_copy_file_range(f->j, gfd, 0, file, cfd, 100, 3, 0), 3);
	close(cfd);
	assert_int_equal(journal_fsync(f->j, file, fd, false), 0);

	assert_int_equal(journal_rename(f->j, dfd, d, "g", dfd, d, "fifo", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(journal_rename(f->j, dfd, d, "g", dfd, d, "g2", RENAME_NOREPLACE), 0);
	assert_int_equal(journal_rename(f->j, dfd, d, "g2", f->root, ROOT, "hard", RENAME_EXCHANGE), 0);
	assert_int_equal(journal_rename(f->j, dfd, d, "g2", dfd, d, "x", RENAME_WHITEOUT), -EINVAL);
	/* rename over a victim with another link: the victim lives on */
	assert_int_equal(journal_rename(f->j, dfd, d, "fifo", dfd, d, "g2", 0), 0);
	assert_int_equal(fstat(ffd, &st), 0);
	assert_int_equal(st.st_nlink, 1);
	uint64_t e = mk(f, d, dfd, "e", S_IFDIR | 0755);
	assert_int_equal(journal_rmdir(f->j, dfd, d, "e"), 0);
	assert_int_equal(journal_rmdir(f->j, dfd, d, "nope"), -ENOENT);
	assert_int_equal(journal_unlink(f->j, dfd, d, "sym"), 0);

	r = changes(f, 0);
	assert_non_null(find(r, JOP_ADOPT, "/"));
	assert_non_null(find(r, JOP_MKDIR, "/d"));
	assert_non_null(find(r, JOP_CREATE, "/d/file"));
	assert_non_null(find(r, JOP_TRUNCATE, "/d/file"));
	assert_non_null(find(r, JOP_MKNOD, "/d/fifo"));
	assert_non_null(find(r, JOP_SYMLINK, "/d/sym"));
	const struct rec *c = find(r, JOP_LINK, "/d/file");
	assert_non_null(c);
	assert_string_equal(c->new_path, "/hard");
	assert_non_null(find(r, JOP_SETATTR, "/d/file"));
	assert_non_null(find(r, JOP_SETATTR, "/d/sym"));
	c = find(r, JOP_FALLOCATE, "/d/file");
	assert_non_null(c);
	assert_int_equal(c->len, 8192);
	c = find(r, JOP_PUNCH, "/d/file");
	assert_non_null(c);
	assert_int_equal(c->len, 4096);
	if (k == 0) {
		assert_non_null(find(r, JOP_SETXATTR, "/d/file"));
		assert_non_null(find(r, JOP_REMOVEXATTR, "/d/file"));
	}
	c = find(r, JOP_RENAME, "/d/g");
	assert_non_null(c);
	assert_string_equal(c->new_path, "/d/g2");
	c = find(r, JOP_EXCHANGE, "/d/g2");
	assert_non_null(c);
	assert_string_equal(c->new_path, "/hard");
	assert_int_equal(c->ino, g);
	c = find(r, JOP_RENAME, "/d/fifo");
	assert_non_null(c);
	assert_string_equal(c->new_path, "/d/g2");
	assert_non_null(find(r, JOP_RMDIR, "/d/e"));
	assert_non_null(find(r, JOP_UNLINK, "/d/sym"));
	for (size_t i = 1; i < r->n; i++)
		assert_true(r->v[i].seq > r->v[i - 1].seq);
	free(r);
	/* after the exchange, "hard" is g and d/g2 (then replaced by fifo) was file */
	assert_int_equal(q_int(f, "SELECT ino FROM ns WHERE parent=1 AND name=CAST('hard' AS BLOB) "
			       "AND died_seq IS NULL"), (int64_t)g);
	assert_int_equal(q_int(f, "SELECT ino FROM ns WHERE parent=? AND name=CAST('g2' AS BLOB) "
			       "AND died_seq IS NULL", (int64_t)d), (int64_t)fifo);
	assert_int_equal(q_int(f, "SELECT died_seq IS NOT NULL FROM objects WHERE ino=?",
			       (int64_t)file), 0);
	assert_int_equal(q_int(f, "SELECT died_seq IS NOT NULL FROM objects WHERE ino=?",
			       (int64_t)e), 1);
	assert_int_equal(q_int(f, "SELECT died_seq IS NOT NULL FROM objects WHERE ino=?",
			       (int64_t)l), 1);

	drift_count = 0;
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	close(ffd);
	close(gfd);
	close(fd);
	close(dfd);
	fx_close(f);
}

static void test_ownership(void **state)
{
	struct fx *f = *state;
	struct journal_cred cred = { 1234, 5678, 0 };
	struct stat st;
	int fd, sgid;

	if (geteuid() != 0) {
		skip();
		return;
	}
	fx_open(f, 0);
	/* as mkdir(2): S_ISGID in the mode is not taken (only inherited) */
	assert_int_equal(journal_mknod(f->j, &cred, f->root, ROOT, "d", S_IFDIR | 02755, 0, NULL, &st), 0);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_false(st.st_mode & S_ISGID);
	sgid = opath(f->root, "d");
	{
		struct journal_attr a = { .valid = JOURNAL_ATTR_MODE, .mode = 02755 };

		assert_int_equal(journal_setattr(f->j, sgid, -1, st.st_ino, &a, &st), 0);
		assert_true(st.st_mode & S_ISGID);
	}
	/* setgid directory: its group is inherited */
	cred = (struct journal_cred){ 42, 43, 0 };
	assert_int_equal(journal_create(f->j, &cred, sgid, st.st_ino, "f", O_RDWR, 04755, &fd, &st), 0);
	assert_int_equal(st.st_uid, 42);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mode & 07777, 04755);
	close(fd);
	assert_int_equal(journal_mknod(f->j, &cred, f->root, ROOT, "l", S_IFLNK | 0777, 0, "x", &st), 0);
	assert_int_equal(st.st_uid, 42);
	assert_int_equal(st.st_gid, 43);
	/* the thread's fsgid is back */
	assert_int_equal((int)syscall(SYS_setfsgid, (gid_t)-1), (int)getegid());
	close(sgid);
	fx_close(f);
}

/* ---- writes -------------------------------------------------------------- */

static void test_write_coalescing(void **state)
{
	struct fx *f = *state;
	char buf[4096];
	uint64_t a, b;
	int fa, fb;

	memset(buf, 'q', sizeof(buf));
	fx_open(f, 0);
	a = mk(f, ROOT, f->root, "seq", S_IFREG | 0644);
	b = mk(f, ROOT, f->root, "rnd", S_IFREG | 0644);
	fa = open_rw(f->root, "seq");
	fb = open_rw(f->root, "rnd");
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(journal_pwrite(f->j, a, fa, buf, sizeof(buf), (off_t)i * 4096), 4096);
		if (i % 97 == 0)
			assert_int_equal(journal_flush(f->j), 0);  /* cross batch boundaries */
	}
	for (int i = 0; i < 50; i++)
		assert_int_equal(journal_pwrite(f->j, b, fb, buf, 100, (off_t)((i * 37) % 50) * 10000), 100);
	assert_int_equal(journal_flush(f->j), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=? AND ino=?",
			       (int64_t)JOP_WRITE, (int64_t)a), 1);
	assert_int_equal(q_int(f, "SELECT len FROM changes WHERE op=? AND ino=?",
			       (int64_t)JOP_WRITE, (int64_t)a), 1000 * 4096);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=? AND ino=?",
			       (int64_t)JOP_WRITE, (int64_t)b), 50);
	assert_int_equal(q_int(f, "SELECT size FROM objects WHERE ino=?", (int64_t)a), 1000 * 4096);
	rstat(f, ROOT, 1000 * 4096 + 49 * 10000 + 100, 2, 0);

	/* a truncate in between: no merge across it */
	assert_int_equal(journal_pwrite(f->j, a, fa, buf, 10, 1000 * 4096), 10);
	struct journal_attr at = { .valid = JOURNAL_ATTR_SIZE, .size = 0 };
	assert_int_equal(journal_setattr(f->j, fa, fa, a, &at, NULL), 0);
	assert_int_equal(journal_pwrite(f->j, a, fa, buf, 10, 0), 10);
	assert_int_equal(journal_flush(f->j), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=? AND ino=?",
			       (int64_t)JOP_WRITE, (int64_t)a), 2);
	rstat(f, ROOT, 10 + 49 * 10000 + 100, 2, 0);
	close(fa);
	close(fb);
	fx_close(f);
}

/* ---- rstats -------------------------------------------------------------- */

static void test_rstats(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, c, d, x, file;
	int afd, bfd, cfd, dfd, xfd, fd;
	int64_t t0, t1;

	fx_open(f, 0);
	a = mk(f, ROOT, f->root, "a", S_IFDIR | 0755);
	afd = opath(f->root, "a");
	b = mk(f, a, afd, "b", S_IFDIR | 0755);
	bfd = opath(afd, "b");
	c = mk(f, b, bfd, "c", S_IFDIR | 0755);
	cfd = opath(bfd, "c");
	file = mk(f, c, cfd, "f", S_IFREG | 0644);
	fd = open_rw(cfd, "f");
	assert_int_equal(journal_pwrite(f->j, file, fd, "0123456789", 10, 90), 10);
	rstat(f, ROOT, 100, 1, 3);
	rstat(f, a, 100, 1, 2);
	rstat(f, b, 100, 1, 1);
	rstat(f, c, 100, 1, 0);
	t0 = rctime(f, c);
	assert_true(rctime(f, ROOT) >= t0);
	assert_int_equal(rctime(f, a), t0);

	/* move b under another directory: both chains change */
	x = mk(f, ROOT, f->root, "x", S_IFDIR | 0755);
	xfd = opath(f->root, "x");
	d = mk(f, x, xfd, "d", S_IFDIR | 0755);
	dfd = opath(xfd, "d");
	assert_int_equal(journal_rename(f->j, afd, a, "b", dfd, d, "b", 0), 0);
	rstat(f, a, 0, 0, 0);
	rstat(f, x, 100, 1, 3);
	rstat(f, d, 100, 1, 2);
	rstat(f, ROOT, 100, 1, 5);

	/* a hard link in another directory counts twice; a write updates both rctimes */
	int ffd = opath(cfd, "f");
	assert_int_equal(journal_link(f->j, ffd, file, afd, a, "link", NULL), 0);
	rstat(f, a, 100, 1, 0);
	rstat(f, ROOT, 200, 2, 5);
	t0 = rctime(f, a);
	t1 = rctime(f, c);
	usleep(2000);
	assert_int_equal(journal_pwrite(f->j, file, fd, "z", 1, 199), 1);
	rstat(f, a, 200, 1, 0);
	rstat(f, c, 200, 1, 0);
	rstat(f, ROOT, 400, 2, 5);
	assert_true(rctime(f, a) > t0);
	assert_true(rctime(f, c) > t1);
	assert_true(rctime(f, d) > t1);

	/* unlink of one link */
	assert_int_equal(journal_unlink(f->j, afd, a, "link"), 0);
	rstat(f, a, 0, 0, 0);
	rstat(f, ROOT, 200, 1, 5);
	/* truncate, then remove everything */
	struct journal_attr at = { .valid = JOURNAL_ATTR_SIZE, .size = 50 };
	assert_int_equal(journal_setattr(f->j, ffd, fd, file, &at, NULL), 0);
	rstat(f, x, 50, 1, 3);
	assert_int_equal(journal_unlink(f->j, cfd, c, "f"), 0);
	rstat(f, ROOT, 0, 0, 5);
	assert_int_equal(journal_rmdir(f->j, bfd, b, "c"), 0);
	rstat(f, ROOT, 0, 0, 4);
	assert_int_equal(journal_rstat_get(f->j, c, &(struct journal_rstat){ 0 }), -ENOENT);
	assert_int_equal(journal_rstat_get(f->j, a, &(struct journal_rstat){ 0 }), 0);

	drift_count = 0;
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	close(ffd);
	close(fd);
	close(afd);
	close(bfd);
	close(cfd);
	close(dfd);
	close(xfd);
	fx_close(f);
}

/* ---- group commit -------------------------------------------------------- */

#define GC_THREADS 8
#define GC_EACH 100

struct gc_arg {
	struct fx *f;
	int id;
	int failures;
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;
	struct journal_cred cred = { getuid(), getgid(), 0 };
	char name[32];

	for (int i = 0; i < GC_EACH; i++) {
		snprintf(name, sizeof(name), "t%d_%d", a->id, i);
		if (journal_mknod(a->f->j, &cred, a->f->root, ROOT, name, S_IFREG | 0644, 0, NULL,
				  NULL) != 0)
			a->failures++;
	}
	return NULL;
}

static void test_group_commit(void **state)
{
	struct fx *f = *state;
	struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	uint64_t b0, r0, batches, records;

	fx_open(f, 0);
	mk(f, ROOT, f->root, "warm", S_IFREG | 0644);
	assert_int_equal(journal_flush(f->j), 0);
	b0 = journal_debug_batches(f->j);
	r0 = journal_debug_records(f->j);
	for (int i = 0; i < GC_THREADS; i++) {
		args[i] = (struct gc_arg){ f, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, gc_thread, &args[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(journal_flush(f->j), 0);
	batches = journal_debug_batches(f->j) - b0;
	records = journal_debug_records(f->j) - r0;
	assert_int_equal(records, GC_THREADS * GC_EACH);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=?", (int64_t)JOP_CREATE),
			 GC_THREADS * GC_EACH + 1);
	assert_int_equal(q_int(f, "SELECT count(DISTINCT seq) FROM changes WHERE op=?",
			       (int64_t)JOP_CREATE), GC_THREADS * GC_EACH + 1);
	print_message("group commit: %" PRIu64 " records in %" PRIu64 " transactions\n",
		      records, batches);
	/*
	 * Records from concurrent threads share transactions. How many depends
	 * on how fast the writer is against the submitters (machine load), so
	 * only "grouped at all" is a property; the ratio is printed above.
	 */
	assert_true(batches < records);
	rstat(f, ROOT, 0, GC_THREADS * GC_EACH + 1, 0);
	fx_close(f);
}

/* ---- unclean shutdown ---------------------------------------------------- */

static void test_unclean_recovery(void **state)
{
	struct fx *f = *state;
	uint64_t file, d, moved;
	struct stat st;
	pid_t pid;
	int status;

	mkdir_raw(f, "d");
	write_file(f, "d/old", 10);
	write_file(f, "d/mv", 20);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct journal_open_opts o = { .flags = JOURNAL_OPEN_NO_START };
		struct journal_cred cred = { getuid(), getgid(), 0 };
		struct journal *j;
		uint64_t file_ino;
		int dfd, fd;

		/* inline mode: a record nobody waits for stays in memory */
		if (journal_open(f->dir, &o, &j) < 0)
			_exit(1);
		if (journal_create(j, &cred, journal_root_fd(j), ROOT, "f", O_RDWR, 0644, &fd, &st) < 0)
			_exit(2);
		file_ino = st.st_ino;
		dfd = openat(journal_root_fd(j), "d", O_PATH);
		if (fstatat(dfd, "old", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    journal_ino_find(j, &st, &(uint64_t){ 0 }) < 0)
			_exit(4);
		/* dirty-mark d, then change it behind the journal's back */
		if (journal_mknod(j, &cred, dfd, 0, "bad", S_IFDIR | 0755, 0, NULL, NULL) != -ENOENT)
			_exit(5);
		struct stat dst;
		uint64_t dino;
		fstat(dfd, &dst);
		journal_ino_find(j, &dst, &dino);
		if (journal_mknod(j, &cred, dfd, dino, "new", S_IFDIR | 0755, 0, NULL, NULL) < 0)
			_exit(6);
		unlinkat(dfd, "old", 0);
		mkdirat(dfd, "sub", 0755);
		close(openat(dfd, "sub/inner", O_CREAT | O_WRONLY, 0644));
		renameat(dfd, "mv", dfd, "moved");
		/* last: a queued record that nobody waits for is lost with us */
		if (journal_pwrite(j, file_ino, fd, "not recorded", 12, 0) != 12)
			_exit(3);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(q_int(f, "SELECT value FROM meta WHERE key='clean'"), 0);

	fx_open(f, 0);
	assert_int_equal(fstatat(f->root, "f", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &file), 0);
	assert_int_equal(st.st_size, 12);
	assert_int_equal(q_int(f, "SELECT size FROM objects WHERE ino=?", (int64_t)file), 12);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes WHERE op=? AND ino=? AND off=0 AND len=12",
			       (int64_t)JOP_WRITE, (int64_t)file), 1);
	assert_int_equal(fstatat(f->root, "d/moved", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &moved), 0);
	assert_int_equal(fstatat(f->root, "d", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &d), 0);
	struct recs *r = changes(f, 0);
	const struct rec *c = find(r, JOP_RENAME, "/d/mv");
	assert_non_null(c);
	assert_string_equal(c->new_path, "/d/moved");
	assert_int_equal(c->ino, moved);
	assert_non_null(find(r, JOP_UNLINK, "/d/old"));
	assert_non_null(find(r, JOP_ADOPT, "/d/sub"));
	assert_non_null(find(r, JOP_ADOPT, "/d/sub/inner"));
	free(r);
	rstat(f, ROOT, 12 + 20, 3, 3);
	drift_count = 0;
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	fx_close(f);

	/* and a clean reopen has nothing to recover */
	fx_open(f, 0);
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	fx_close(f);
}

/* ---- adoption ------------------------------------------------------------ */

static int progress_calls;
static void on_progress(void *arg, uint64_t n)
{
	(void)arg;
	(void)n;
	progress_calls++;
}

static void test_adoption(void **state)
{
	struct fx *f = *state;
	struct journal_open_opts o = { .progress = on_progress };
	char p1[256], p2[256];
	uint64_t i1, i2, d1;
	struct stat st;

	mkdir_raw(f, "d1");
	mkdir_raw(f, "d2");
	mkdir_raw(f, "d1/sub");
	write_file(f, "d1/f", 100);
	write_file(f, "d1/sub/g", 50);
	snprintf(p1, sizeof(p1), "%s/d1/f", f->dir);
	snprintf(p2, sizeof(p2), "%s/d2/hl", f->dir);
	assert_int_equal(link(p1, p2), 0);
	snprintf(p2, sizeof(p2), "%s/d1/s", f->dir);
	assert_int_equal(symlink("f", p2), 0);
	for (int i = 0; i < 1500; i++) {
		char n[32];
		snprintf(n, sizeof(n), "d2/e%d", i);
		write_file(f, n, 0);
	}

	progress_calls = 0;
	assert_int_equal(journal_open(f->dir, &o, &f->j), 0);
	f->root = journal_root_fd(f->j);
	assert_true(progress_calls >= 1);
	assert_int_equal(fstatat(f->root, "d1/f", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &i1), 0);
	assert_int_equal(fstatat(f->root, "d2/hl", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &i2), 0);
	assert_int_equal(i1, i2);
	assert_int_equal(q_int(f, "SELECT nlink FROM objects WHERE ino=?", (int64_t)i1), 2);
	assert_int_equal(fstatat(f->root, "d1", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &d1), 0);
	/* f, hl, s, g and the 1500 empty files; d1, d2, sub */
	rstat(f, ROOT, 100 + 100 + 50, 4 + 1500, 3);
	rstat(f, d1, 150, 3, 1);
	assert_int_equal(fstatat(f->root, ".mirrorfs", &st, 0), 0);
	assert_int_equal(journal_ino_find(f->j, &st, &i2), -ENOENT);
	assert_int_equal(q_int(f, "SELECT count(*) FROM changes"), 1);
	assert_int_equal(q_int(f, "SELECT count(*) FROM ns WHERE born_seq != 1"), 0);
	assert_int_equal(q_int(f, "SELECT count(*) FROM objects WHERE ino=1 AND (type & 61440) = 16384"), 1);
	struct recs *r = changes(f, 0);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->v[0].op, JOP_ADOPT);
	assert_string_equal(r->v[0].path, "/");
	free(r);
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);

	/* a later adoption of one entry made behind our back */
	write_file(f, "d1/late", 7);
	assert_int_equal(fstatat(f->root, "d1/late", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(journal_adopt(f->j, d1, "late", &st, &i2), 0);
	assert_int_equal(journal_adopt(f->j, d1, "late", &st, &i1), 0);
	assert_int_equal(i1, i2);
	rstat(f, d1, 157, 4, 1);
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	fx_close(f);
}

/* ---- check --------------------------------------------------------------- */

static void test_check_repair(void **state)
{
	struct fx *f = *state;
	uint64_t d;
	char p[256];
	int dfd;

	fx_open(f, 0);
	d = mk(f, ROOT, f->root, "d", S_IFDIR | 0755);
	dfd = opath(f->root, "d");
	mk(f, d, dfd, "gone", S_IFREG | 0644);
	mk(f, d, dfd, "grow", S_IFREG | 0644);
	mk(f, d, dfd, "gonedir", S_IFDIR | 0755);
	assert_int_equal(journal_check(f->j, false, NULL, NULL), 0);

	/* behind the journal's back */
	write_file(f, "d/unknown", 33);
	write_file(f, "d/grow", 1000);
	snprintf(p, sizeof(p), "%s/d/gone", f->dir);
	assert_int_equal(unlink(p), 0);
	snprintf(p, sizeof(p), "%s/d/gonedir", f->dir);
	assert_int_equal(rmdir(p), 0);
	mkdir_raw(f, "newdir");
	write_file(f, "newdir/x", 5);

	drift_count = 0;
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 5);
	assert_int_equal(drift_count, 5);
	assert_int_equal(journal_check(f->j, true, on_drift, NULL), 5);
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	rstat(f, ROOT, 33 + 1000 + 5, 3, 2);

	/* stored rstats that went wrong */
	q_exec(f, "UPDATE rstat SET rbytes = rbytes + 1 WHERE ino = 1");
	assert_int_equal(journal_check(f->j, false, NULL, NULL), 1);
	assert_int_equal(journal_check(f->j, true, NULL, NULL), 1);
	assert_int_equal(journal_check(f->j, false, NULL, NULL), 0);
	close(dfd);
	fx_close(f);

	/* read-only: check, no repair */
	fx_open(f, JOURNAL_OPEN_READONLY);
	assert_int_equal(journal_check(f->j, false, NULL, NULL), 0);
	assert_int_equal(journal_check(f->j, true, NULL, NULL), -EROFS);
	fx_close(f);
}

/* ---- JSON ---------------------------------------------------------------- */

static void test_json(void **state)
{
	struct fx *f = *state;
	const char *name = "a\"b\nc\xff\\";
	char tmpl[] = "/tmp/test_journal_json.XXXXXX";
	char buf[65536];
	sqlite3 *db;
	sqlite3_stmt *s;
	ssize_t n;
	int out, lines = 0, hexes = 0;
	uint64_t file;
	int fd;

	fx_open(f, 0);
	file = mk(f, ROOT, f->root, name, S_IFREG | 0644);
	fd = open_rw(f->root, name);
	assert_int_equal(journal_pwrite(f->j, file, fd, "x", 1, 5), 1);
	close(fd);
	out = mkstemp(tmpl);
	assert_true(out >= 0);
	assert_int_equal(journal_changes_json(f->j, 0, out), 0);
	n = pread(out, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = 0;
	close(out);
	unlink(tmpl);

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT json_valid(?1), json_extract(?1, '$.path'), json_extract(?1, '$.path_hex'), "
		"json_extract(?1, '$.op'), json_extract(?1, '$.time'), json_extract(?1, '$.offset')",
		-1, &s, NULL), SQLITE_OK);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		sqlite3_bind_text(s, 1, line, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(s, 0), 1);
		const char *op = (const char *)sqlite3_column_text(s, 3);
		const char *t = (const char *)sqlite3_column_text(s, 4);
		assert_non_null(t);
		assert_int_equal(strlen(t), strlen("2026-11-22T10:00:00.123456789Z"));
		assert_int_equal(t[strlen(t) - 1], 'Z');
		if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
			hexes++;
			assert_string_equal((const char *)sqlite3_column_text(s, 1),
					    "/a\"b\nc\xEF\xBF\xBD\\");
			assert_string_equal((const char *)sqlite3_column_text(s, 2),
					    "2F6122620A63FF5C");
		}
		if (!strcmp(op, "write"))
			assert_int_equal(sqlite3_column_int(s, 5), 5);
		else
			assert_int_equal(sqlite3_column_type(s, 5), SQLITE_NULL);
		sqlite3_reset(s);
		lines++;
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_int_equal(lines, 3);  /* adopt, create, write */
	assert_int_equal(hexes, 2);
	fx_close(f);
}

/* ---- a failing writer --------------------------------------------------- */

static void test_disk_full(void **state)
{
	struct fx *f = *state;
	char name[256], pad[2048];
	int r = 0, i;

	memset(pad, 'n', sizeof(pad) - 1);
	pad[200] = 0;
	fx_open(f, 0);
	mk(f, ROOT, f->root, "ok", S_IFDIR | 0755);
	/* simulate a full disk: the database may not grow any more */
	pthread_mutex_lock(&f->j->wconn_lock);
	assert_int_equal(sqlite3_exec(f->j->wconn->db, "PRAGMA max_page_count = 1",
				      NULL, NULL, NULL), SQLITE_OK);
	pthread_mutex_unlock(&f->j->wconn_lock);
	for (i = 0; i < 10000 && r == 0; i++) {
		snprintf(name, sizeof(name), "%.200s%d", pad, i);
		name[0] = 'x';
		r = journal_mknod(f->j, NULL, f->root, ROOT, name, S_IFDIR | 0755, 0, NULL, NULL);
	}
	/*
	 * Records are committed after the mutation returns: the batch that
	 * hits the full disk fails, and from then on mutations are refused
	 * (-EIO), or the synchronous dirty mark reports the cause itself.
	 */
	assert_true(r == -EIO || r == -ENOSPC);
	assert_int_equal(journal_mknod(f->j, NULL, f->root, ROOT, "later", S_IFDIR | 0755, 0,
				       NULL, NULL), -EIO);
	assert_int_equal(journal_flush(f->j), -ENOSPC);  /* the cause, not dropped silently */
	assert_int_not_equal(journal_close(f->j), 0);
	f->j = NULL;
	/* the next open recovers what the lost batch held (its directory was dirty) */
	fx_open(f, 0);
	assert_int_equal(journal_check(f->j, false, on_drift, NULL), 0);
	fx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_close_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_op, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ownership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_coalescing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rstats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclean_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adoption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
