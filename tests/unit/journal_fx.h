/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fixture shared by the journal's unit tests: a fresh temp directory and
 * journal per test, and small helpers. Included by one .c file each.
 */
#ifndef MIRRORFS_TEST_JOURNAL_FX_H
#define MIRRORFS_TEST_JOURNAL_FX_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"

#define ROOT JOURNAL_ROOT_INO

struct fx {
	char dir[64];
	char db[128];
	struct journal *j;
	int root;
};

/* ---- helpers ------------------------------------------------------------- */

static inline void rm_rf(const char *path)
{
	char cmd[256];

	if (getenv("MIRRORFS_TEST_KEEP"))
		return;   /* debugging: keep the fixture directory */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static inline void write_file(struct fx *f, const char *rel, size_t size)
{
	char p[256], buf[4096];
	int fd;

	memset(buf, 'x', sizeof(buf));
	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	while (size > 0) {
		size_t n = UTIL_MIN(size, sizeof(buf));
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		size -= n;
	}
	close(fd);
}

static inline void mkdir_raw(struct fx *f, const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static inline void fx_open(struct fx *f, unsigned flags)
{
	struct journal_open_opts o = { .flags = flags };

	assert_int_equal(journal_open(f->dir, &o, &f->j), 0);
	f->root = journal_root_fd(f->j);
}

static inline void fx_close(struct fx *f)
{
	assert_int_equal(journal_close(f->j), 0);
	f->j = NULL;
}

static inline int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_journal.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/.mirrorfs/journal.db", f->dir);
	*state = f;
	return 0;
}

static inline int teardown(void **state)
{
	struct fx *f = *state;

	if (f->j)
		journal_close(f->j);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* One integer from journal.db (read-only, independent connection). */
static inline int64_t q_int(struct fx *f, const char *sql, ...)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;
	va_list ap;

	assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	va_start(ap, sql);
	for (int i = 1; i <= sqlite3_bind_parameter_count(s); i++)
		sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
	va_end(ap);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_type(s, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static inline void q_exec(struct fx *f, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static inline uint64_t mk(struct fx *f, uint64_t dir, int dirfd, const char *name, mode_t mode)
{
	struct journal_cred cred = { getuid(), getgid(), 0 };
	struct stat st;

	assert_int_equal(journal_mknod(f->j, &cred, dirfd, dir, name, mode, 0,
				       S_ISLNK(mode) ? "target" : NULL, &st), 0);
	return st.st_ino;
}

static inline int opath(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

#endif /* MIRRORFS_TEST_JOURNAL_FX_H */
