/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Snapshots: create (O(1), under the mutation barrier), delete (freeing
 * what no other snapshot needs), list, holds. docs/SNAPSHOTS.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"
#include "cow_i.h"

static const char snap_cols[] =
	"SELECT s.id, s.name, s.seq, s.created, "
	"(SELECT group_concat(tag, ',') FROM snap_holds h WHERE h.snap_id = s.id) "
	"FROM snapshots s ";

static void snap_from_row(sqlite3_stmt *s, struct journal_snap *ret)
{
	const void *name = sqlite3_column_blob(s, 1);
	int nlen = sqlite3_column_bytes(s, 1);
	const unsigned char *hold = sqlite3_column_text(s, 4);

	memset(ret, 0, sizeof(*ret));
	ret->id = (uint64_t)sqlite3_column_int64(s, 0);
	if (nlen > 255)
		nlen = 255;
	if (name)
		memcpy(ret->name, name, (size_t)nlen);
	ret->seq = (uint64_t)sqlite3_column_int64(s, 2);
	ret->created_ns = sqlite3_column_int64(s, 3);
	if (hold)
		snprintf(ret->hold, sizeof(ret->hold), "%s", (const char *)hold);
}

/* One snapshot by name (name != NULL) or by id, on connection `c`. */
static int snap_query(struct jconn *c, const char *name, uint64_t id, struct journal_snap *ret)
{
	sqlite3_stmt *s;
	char sql[512];
	int rc, r;

	snprintf(sql, sizeof(sql), "%s WHERE %s", snap_cols, name ? "s.name = ?1" : "s.id = ?1");
	rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	if (name)
		db_bind_name(s, 1, name);
	else
		sqlite3_bind_int64(s, 1, (int64_t)id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snap_from_row(s, ret);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
	}
	sqlite3_finalize(s);
	return r;
}

int journal_snap_get(struct journal *j, const char *name, struct journal_snap *ret)
{
	struct jconn *c;
	int r;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = snap_query(c, name, 0, ret);
	db_conn_put(j, c);
	return r;
}

int journal_snap_get_by_id(struct journal *j, uint64_t id, struct journal_snap *ret)
{
	struct jconn *c;
	int r;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = snap_query(c, NULL, id, ret);
	db_conn_put(j, c);
	return r;
}

int journal_snap_list(struct journal *j, bool with_exclusive_bytes,
		      struct journal_snap **ret, size_t *ret_n)
{
	struct journal_snap *v = NULL;
	size_t n = 0, cap = 0;
	struct jconn *c;
	sqlite3_stmt *s;
	char sql[512];
	int rc, r = 0;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "%s ORDER BY s.seq", snap_cols);
	rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = journal_err(rc);
		goto out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct journal_snap *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		snap_from_row(s, &v[n++]);
	}
	sqlite3_finalize(s);
	if (r >= 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	for (size_t i = 0; r >= 0 && with_exclusive_bytes && i < n; i++)
		r = cow_collect(j, c, v[i].seq, true, &v[i].exclusive_bytes, NULL);
out:
	db_conn_put(j, c);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* A change row for a snapshot operation (inside the caller's transaction). */
static int snap_record(struct journal *j, struct jconn *c, enum journal_op op,
		       const char *name, uint64_t seq)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, ST_CHANGE_INSERT, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)seq);
	sqlite3_bind_int64(s, 2, util_now_ns());
	sqlite3_bind_int(s, 3, op);
	sqlite3_bind_int64(s, 4, (int64_t)JOURNAL_ROOT_INO);
	db_bind_name(s, 6, name);
	return db_step_done(s);
}

static int exec_sql(struct jconn *c, const char *sql, const char *name, int64_t a, int64_t b,
		    int64_t cc)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	if (name)
		db_bind_name(s, 1, name);
	sqlite3_bind_int64(s, 2, a);
	sqlite3_bind_int64(s, 3, b);
	sqlite3_bind_int64(s, 4, cc);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : journal_err(rc);
}

void journal_set_snap_hook(struct journal *j, void (*fn)(void *arg), void *arg)
{
	j->snap_hook = fn;
	j->snap_hook_arg = arg;
}

int journal_snap_create(struct journal *j, const char *name, struct journal_snap *ret)
{
	struct journal_snap tmp;
	struct jconn *c;
	uint64_t seq = 0;
	int64_t now = util_now_ns();
	int r;

	r = util_check_name(name);
	if (r < 0)
		return r;
	if (j->flags & JOURNAL_OPEN_READONLY)
		return -EROFS;
	/* The barrier: no mutation is in flight while the row is written. */
	pthread_rwlock_wrlock(&j->mut_lock);
	r = journal_flush(j);
	if (r < 0)
		goto out;
	r = jtxn_begin(j, true, &c);
	if (r < 0)
		goto out;
	if (snap_query(c, name, 0, &tmp) == 0) {
		r = jtxn_end(j, c, -EEXIST);
		goto out;
	}
	seq = j->next_seq++;
	r = snap_record(j, c, JOP_SNAP_CREATE, name, seq);
	if (r >= 0)
		r = exec_sql(c, "INSERT INTO snapshots(name, seq, created, next_ino) "
				"VALUES(?1, ?2, ?3, ?4)", name, (int64_t)seq, now,
			     (int64_t)atomic_load(&j->next_ino));
	/* Snapshot ids are part of inode numbers in views: never past the max. */
	if (r >= 0 && (uint64_t)sqlite3_last_insert_rowid(c->db) > JOURNAL_SNAP_ID_MAX)
		r = -ENOSPC;
	if (r >= 0)
		r = db_meta_set_int(c, "interval", (int64_t)seq);
	if (r >= 0)
		r = db_meta_set_int(c, "next_seq", (int64_t)j->next_seq);
	/* Everything before is committed: the dirty marks of the old interval are moot. */
	if (r >= 0)
		r = db_exec(c->db, "DELETE FROM dirty");
	r = jtxn_end(j, c, r);
	if (r < 0) {
		j->next_seq = seq;   /* nothing was committed */
		goto out;
	}
	atomic_store(&j->interval, seq);
	atomic_store(&j->committed_seq, seq);
	atomic_store_explicit(&j->cow_watermark, atomic_load(&j->next_ino), memory_order_release);
	log_debug("snapshot '%s' taken at seq %" PRIu64, name, seq);
out:
	pthread_rwlock_unlock(&j->mut_lock);
	if (r >= 0 && j->snap_hook)
		j->snap_hook(j->snap_hook_arg);
	if (r >= 0 && ret)
		r = journal_snap_get(j, name, ret);
	return r < 0 ? r : 0;
}

int journal_snap_delete(struct journal *j, const char *name)
{
	struct cow_garbage *g = NULL;
	struct journal_snap sn;
	struct jconn *c, *rc_conn;
	uint64_t seq = 0;
	int r;

	r = util_check_name(name);
	if (r < 0)
		return r == -ENAMETOOLONG ? r : -ENOENT;
	if (j->flags & JOURNAL_OPEN_READONLY)
		return -EROFS;
	pthread_rwlock_wrlock(&j->mut_lock);
	r = journal_flush(j);
	if (r < 0)
		goto out;
	r = jtxn_begin(j, true, &c);
	if (r < 0)
		goto out;
	r = snap_query(c, name, 0, &sn);
	if (r >= 0 && sn.hold[0])
		r = -EBUSY;
	if (r < 0) {
		r = jtxn_end(j, c, r);
		goto out;
	}
	seq = j->next_seq++;
	r = snap_record(j, c, JOP_SNAP_DELETE, name, seq);
	if (r >= 0)
		r = exec_sql(c, "DELETE FROM snapshots WHERE id = ?2", NULL, (int64_t)sn.id, 0, 0);
	if (r >= 0)
		r = cow_collect(j, c, sn.seq, false, NULL, &g);
	if (r >= 0)
		r = db_meta_set_int(c, "next_seq", (int64_t)j->next_seq);
	r = jtxn_end(j, c, r);
	if (r < 0) {
		j->next_seq = seq;
		cow_garbage_free_data(NULL, g);
		g = NULL;
		goto out;
	}
	atomic_store(&j->committed_seq, seq);
	if (db_conn_get(j, &rc_conn) >= 0) {
		cow_refresh_watermark(j, rc_conn);
		db_conn_put(j, rc_conn);
	}
	cow_garbage_free_data(j, g);
	atomic_store(&j->compact_due, true);   /* its records may go now (compact.c) */
	log_debug("snapshot '%s' deleted", name);
out:
	pthread_rwlock_unlock(&j->mut_lock);
	if (r >= 0 && j->snap_hook)
		j->snap_hook(j->snap_hook_arg);
	return r < 0 ? r : 0;
}

static int snap_hold_change(struct journal *j, const char *name, const char *tag, bool hold)
{
	struct journal_snap sn;
	struct jconn *c;
	int r;

	if (!tag || !*tag || strlen(tag) > 63 || strchr(tag, ','))
		return -EINVAL;
	r = jtxn_begin(j, true, &c);
	if (r < 0)
		return r;
	r = snap_query(c, name, 0, &sn);
	if (r >= 0) {
		sqlite3_stmt *s;
		int rc = sqlite3_prepare_v2(c->db, hold ?
			"INSERT OR IGNORE INTO snap_holds(snap_id, tag) VALUES(?1, ?2)" :
			"DELETE FROM snap_holds WHERE snap_id = ?1 AND tag = ?2", -1, &s, NULL);

		if (rc != SQLITE_OK) {
			r = journal_err(rc);
		} else {
			sqlite3_bind_int64(s, 1, (int64_t)sn.id);
			sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
			rc = sqlite3_step(s);
			sqlite3_finalize(s);
			r = rc == SQLITE_DONE ? 0 : journal_err(rc);
		}
	}
	return jtxn_end(j, c, r);
}

int journal_snap_hold(struct journal *j, const char *name, const char *tag)
{
	return snap_hold_change(j, name, tag, true);
}

int journal_snap_release(struct journal *j, const char *name, const char *tag)
{
	return snap_hold_change(j, name, tag, false);
}
