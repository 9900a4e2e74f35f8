/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading the change log: changes in seq order with the paths they had at
 * the time, computed from the versioned namespace. The path of an object
 * as of seq s follows, from the object up to the root, the namespace rows
 * alive at s (born_seq <= s < died_seq). A change that removes or moves a
 * name reports its old path as of s - 1 (just before the change) and its
 * new path as of s. Objects with several links report their oldest link.
 *
 * JSON output is built by sqlite's json_object(): no escaping by hand.
 * Names that are not valid UTF-8 are sanitised here (each bad byte becomes
 * U+FFFD) and their exact bytes added as hex (path_hex / new_path_hex).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"

#define PATH_MAX_DEPTH 4096

static const char *const op_names[] = {
	[JOP_CREATE] = "create", [JOP_MKDIR] = "mkdir", [JOP_SYMLINK] = "symlink",
	[JOP_MKNOD] = "mknod", [JOP_LINK] = "link", [JOP_UNLINK] = "unlink",
	[JOP_RMDIR] = "rmdir", [JOP_RENAME] = "rename", [JOP_EXCHANGE] = "exchange",
	[JOP_SETATTR] = "setattr", [JOP_WRITE] = "write", [JOP_TRUNCATE] = "truncate",
	[JOP_FALLOCATE] = "fallocate", [JOP_PUNCH] = "punch", [JOP_SETXATTR] = "setxattr",
	[JOP_REMOVEXATTR] = "removexattr", [JOP_SNAP_CREATE] = "snap_create",
	[JOP_SNAP_DELETE] = "snap_delete", [JOP_ADOPT] = "adopt",
};

const char *journal_op_name(enum journal_op op)
{
	if ((unsigned)op < UTIL_ARRAY_SIZE(op_names) && op_names[op])
		return op_names[op];
	return "unknown";
}

/* ---- paths --------------------------------------------------------------- */

int changes_name_at(struct jconn *c, uint64_t ino, uint64_t seq, uint64_t *ret_parent,
		    char name[NAME_MAX + 1], size_t *ret_len)
{
	int64_t sq = seq > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)seq;
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(c, ST_PATH_AT, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, sq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(s, 1);

		if (n > NAME_MAX) {
			r = -ENAMETOOLONG;
		} else {
			*ret_parent = (uint64_t)sqlite3_column_int64(s, 0);
			if (n > 0)
				memcpy(name, sqlite3_column_blob(s, 1), (size_t)n);
			name[n] = '\0';
			*ret_len = (size_t)n;
		}
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int changes_path_at(struct jconn *c, uint64_t ino, uint64_t seq, char **ret)
{
	struct comp {
		char name[NAME_MAX + 1];
		size_t len;
	} *v = NULL;
	size_t n = 0, cap = 0, total = 0;
	char *out, *p;
	int r = 0;

	if (ino == JOURNAL_ROOT_INO) {
		*ret = strdup("/");
		return *ret ? 0 : -ENOMEM;
	}
	while (ino != JOURNAL_ROOT_INO) {
		if (n == PATH_MAX_DEPTH) {
			r = -ELOOP;
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct comp *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			v = nv;
			cap = nc;
		}
		r = changes_name_at(c, ino, seq, &ino, v[n].name, &v[n].len);
		if (r < 0)
			goto out;
		total += v[n].len + 1;
		n++;
	}
	out = p = malloc(total + 1);
	if (!out) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = n; i-- > 0;) {
		*p++ = '/';
		memcpy(p, v[i].name, v[i].len);
		p += v[i].len;
	}
	*p = 0;
	*ret = out;
out:
	free(v);
	return r;
}

/* Path of entry `name` of directory `dir` as of `seq`; NULL if unknown. */
static int child_path(struct jconn *c, uint64_t dir, const char *name, uint64_t seq, char **ret)
{
	char *dp = NULL;
	int r;

	*ret = NULL;
	if (!name)
		return 0;
	r = changes_path_at(c, dir, seq, &dp);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = asprintf(ret, "%s%s%s", dp, strcmp(dp, "/") ? "/" : "", name);
	free(dp);
	if (r < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int obj_path(struct jconn *c, uint64_t ino, uint64_t seq, char **ret)
{
	int r = changes_path_at(c, ino, seq, ret);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r;
}

/* ---- iteration ----------------------------------------------------------- */

static char *col_name(sqlite3_stmt *s, int col)
{
	int n = sqlite3_column_bytes(s, col);
	const void *p = sqlite3_column_blob(s, col);
	char *out;

	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return NULL;
	out = malloc((size_t)n + 1);
	if (!out)
		return NULL;
	if (n)
		memcpy(out, p, (size_t)n);
	out[n] = 0;
	return out;
}

typedef int (*change_fn)(void *arg, struct jconn *c, const struct journal_change *ch);

static int fill_paths(struct jconn *c, struct journal_change *ch, char **path, char **new_path)
{
	uint64_t s = ch->seq, before = ch->seq - 1;
	int r = 0;

	*path = *new_path = NULL;
	switch (ch->op) {
	case JOP_CREATE: case JOP_MKDIR: case JOP_SYMLINK: case JOP_MKNOD: case JOP_ADOPT:
		if (ch->name)
			r = child_path(c, ch->parent, ch->name, s, path);
		else
			r = obj_path(c, ch->ino, s, path);
		break;
	case JOP_LINK:
		r = obj_path(c, ch->ino, before, path);
		if (r == 0)
			r = child_path(c, ch->new_parent, ch->new_name, s, new_path);
		break;
	case JOP_UNLINK: case JOP_RMDIR:
		r = child_path(c, ch->parent, ch->name, before, path);
		break;
	case JOP_RENAME:
		r = child_path(c, ch->parent, ch->name, before, path);
		if (r == 0)
			r = child_path(c, ch->new_parent, ch->new_name, s, new_path);
		break;
	case JOP_EXCHANGE:
		r = child_path(c, ch->parent, ch->name, before, path);
		if (r == 0)
			r = child_path(c, ch->new_parent, ch->new_name, before, new_path);
		break;
	default:
		r = obj_path(c, ch->ino, s, path);
		break;
	}
	return r;
}

static int changes_iter(struct journal *j, uint64_t since, change_fn fn, void *arg)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	if (!(j->flags & JOURNAL_OPEN_READONLY)) {
		r = journal_flush(j);
		if (r < 0)
			return r;
	}
	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	/* one read transaction: the paths and the changes are one snapshot */
	r = db_exec(c->db, "BEGIN");
	if (r < 0)
		goto out;
	r = db_stmt(c, ST_CHANGES_SINCE, &s);
	if (r < 0)
		goto out_txn;
	sqlite3_bind_int64(s, 1, since > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct journal_change ch = { 0 };
		char *name = col_name(s, 5), *new_name = col_name(s, 7);
		char *xname = (char *)sqlite3_column_text(s, 10);
		char *path = NULL, *new_path = NULL;

		ch.seq = (uint64_t)sqlite3_column_int64(s, 0);
		ch.time_ns = sqlite3_column_int64(s, 1);
		ch.op = (enum journal_op)sqlite3_column_int(s, 2);
		ch.ino = (uint64_t)sqlite3_column_int64(s, 3);
		ch.parent = (uint64_t)sqlite3_column_int64(s, 4);
		ch.name = name;
		ch.new_parent = (uint64_t)sqlite3_column_int64(s, 6);
		ch.new_name = new_name;
		ch.offset = (uint64_t)sqlite3_column_int64(s, 8);
		ch.length = (uint64_t)sqlite3_column_int64(s, 9);
		ch.xattr_name = xname;
		if ((sqlite3_column_type(s, 5) != SQLITE_NULL && !name) ||
		    (sqlite3_column_type(s, 7) != SQLITE_NULL && !new_name))
			r = -ENOMEM;
		if (r == 0)
			r = fill_paths(c, &ch, &path, &new_path);
		ch.path = path;
		ch.new_path = new_path;
		if (r == 0)
			r = fn(arg, c, &ch);
		free(name);
		free(new_name);
		free(path);
		free(new_path);
		if (r < 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	sqlite3_reset(s);
out_txn:
	db_exec(c->db, "COMMIT");
out:
	db_conn_put(j, c);
	return r;
}

struct user_cb {
	int (*cb)(void *arg, const struct journal_change *c);
	void *arg;
};

static int call_user(void *arg, struct jconn *c, const struct journal_change *ch)
{
	struct user_cb *u = arg;
	int r = u->cb(u->arg, ch);

	(void)c;
	return r < 0 ? r : 0;
}

int journal_changes(struct journal *j, uint64_t since,
		    int (*cb)(void *arg, const struct journal_change *c), void *arg)
{
	struct user_cb u = { cb, arg };

	return changes_iter(j, since, call_user, &u);
}

/* ---- JSON ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* Copy of `s` with each byte of invalid UTF-8 replaced by U+FFFD. */
static int utf8_sanitize(const char *s, char **ret, bool *ret_changed)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;
	char *out = malloc(n * 3 + 1);

	*ret_changed = false;
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			*ret_changed = true;
		} else {
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		}
	}
	out[o] = 0;
	*ret = out;
	return 0;
}

struct json_ctx {
	int fd;
};

static int bind_text_sanitized(sqlite3_stmt *s, int idx, int hex_idx, const char *v, char **keep)
{
	bool changed;
	int r;

	*keep = NULL;
	if (!v)
		return 0;
	r = utf8_sanitize(v, keep, &changed);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, idx, *keep, -1, SQLITE_STATIC);
	if (changed && hex_idx)
		sqlite3_bind_blob(s, hex_idx, v, (int)strlen(v), SQLITE_STATIC);
	return 0;
}

static int json_line(void *arg, struct jconn *c, const struct journal_change *ch)
{
	struct json_ctx *ctx = arg;
	char *p = NULL, *np = NULL, *xn = NULL;
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(c, ST_JSON_LINE, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ch->seq);
	sqlite3_bind_int64(s, 2, ch->time_ns);
	sqlite3_bind_text(s, 3, journal_op_name(ch->op), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t)ch->ino);
	r = bind_text_sanitized(s, 5, 10, ch->path, &p);
	if (r == 0)
		r = bind_text_sanitized(s, 6, 11, ch->new_path, &np);
	switch (ch->op) {
	case JOP_WRITE: case JOP_TRUNCATE: case JOP_FALLOCATE: case JOP_PUNCH:
		sqlite3_bind_int64(s, 7, (int64_t)ch->offset);
		sqlite3_bind_int64(s, 8, (int64_t)ch->length);
		break;
	case JOP_SETXATTR: case JOP_REMOVEXATTR:
		if (r == 0)
			r = bind_text_sanitized(s, 9, 0, ch->xattr_name, &xn);
		break;
	default:
		break;
	}
	if (r == 0) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			const char *line = (const char *)sqlite3_column_text(s, 0);
			size_t len = (size_t)sqlite3_column_bytes(s, 0);
			r = util_write_all(ctx->fd, line, len);
			if (r == 0)
				r = util_write_all(ctx->fd, "\n", 1);
		} else {
			r = journal_err(rc);
			if (r == 0)
				r = -EIO;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	free(p);
	free(np);
	free(xn);
	return r;
}

int journal_changes_json(struct journal *j, uint64_t since, int out_fd)
{
	struct json_ctx ctx = { out_fd };

	return changes_iter(j, since, json_line, &ctx);
}
