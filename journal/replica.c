/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The replica side of mirroring, as the journal keeps it: which source owns
 * a replica (ceph.mirror.info's guard) and the receiver's durable resume
 * position per stream. docs/MIRRORING.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mirrorfs/util.h"
#include "journal_i.h"

#define META_OWNER "mirrored_from"

int journal_replica_owner(struct journal *j, char ret_owner[37])
{
	struct jconn *c;
	char buf[64] = "";
	int r;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = db_meta_get_text(c, META_OWNER, buf, sizeof(buf));
	db_conn_put(j, c);
	if (r == -ENOENT) {
		buf[0] = '\0';
		r = 0;
	}
	if (r < 0)
		return r;
	snprintf(ret_owner, 37, "%.36s", buf);
	return 0;
}

/* Live objects other than the root: a replica must start empty. */
static int live_objects(struct jconn *c, int64_t *ret)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(c->db, "SELECT count(*) FROM objects WHERE died_seq IS NULL "
				"AND ino != 1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : journal_err(rc);
}

int journal_replica_claim(struct journal *j, const char *source_id, char ret_owner[37])
{
	char owner[64] = "";
	struct jconn *c;
	int64_t n = 0;
	uint64_t base = JOURNAL_LOCAL_INO_BASE, cur;
	int r;

	if (!source_id || strlen(source_id) != 36)
		return -EINVAL;
	if (strcmp(source_id, j->source_id) == 0)
		return -ELOOP;   /* mirroring a tree onto itself */
	r = journal_flush(j);
	if (r < 0)
		return r;
	r = jtxn_begin(j, true, &c);
	if (r < 0)
		return r;
	r = db_meta_get_text(c, META_OWNER, owner, sizeof(owner));
	if (r == 0 && owner[0]) {
		if (strcmp(owner, source_id) != 0) {
			if (ret_owner)
				snprintf(ret_owner, 37, "%.36s", owner);
			r = -EEXIST;
		}
		return jtxn_end(j, c, r);
	}
	if (r == -ENOENT)
		r = 0;
	/* Object ids come from the source from now on: the tree must be empty. */
	if (r >= 0)
		r = live_objects(c, &n);
	if (r >= 0 && n > 0)
		r = -ENOTEMPTY;
	if (r >= 0)
		r = db_meta_set_text(c, META_OWNER, source_id);
	/* This replica's own ids (its staging directory) keep out of the source's way. */
	cur = atomic_load(&j->next_ino);
	if (r >= 0 && cur < base)
		r = db_meta_set_int(c, "next_ino", (int64_t)base);
	r = jtxn_end(j, c, r);
	if (r >= 0 && cur < base)
		atomic_compare_exchange_strong(&j->next_ino, &cur, base);
	return r;
}

int journal_recv_pos_get(struct journal *j, const char *source_id, const char *from,
			 const char *to, uint64_t *ret_seq)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "SELECT seq FROM recv_pos WHERE source=?1 AND "
				"from_snap=?2 AND to_snap=?3", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_conn_put(j, c);
		return journal_err(rc);
	}
	sqlite3_bind_text(s, 1, source_id, -1, SQLITE_STATIC);
	db_bind_name(s, 2, from ? from : "");
	db_bind_name(s, 3, to);
	rc = sqlite3_step(s);
	*ret_seq = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	db_conn_put(j, c);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : journal_err(rc);
}

int journal_recv_pos_set(struct journal *j, const char *source_id, const char *from,
			 const char *to, uint64_t seq)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	/* The position may only say what the journal has: everything before it lands first. */
	r = journal_flush(j);
	if (r < 0)
		return r;
	/* a position lost with a power loss only replays records: NORMAL */
	r = jtxn_begin(j, false, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, seq ?
		"INSERT INTO recv_pos(source, from_snap, to_snap, seq) VALUES(?1, ?2, ?3, ?4) "
		"ON CONFLICT(source, from_snap, to_snap) DO UPDATE SET seq=excluded.seq" :
		"DELETE FROM recv_pos WHERE source=?1 AND from_snap=?2 AND to_snap=?3",
		-1, &s, NULL);
	if (rc != SQLITE_OK)
		return jtxn_end(j, c, journal_err(rc));
	sqlite3_bind_text(s, 1, source_id, -1, SQLITE_STATIC);
	db_bind_name(s, 2, from ? from : "");
	db_bind_name(s, 3, to);
	if (seq)
		sqlite3_bind_int64(s, 4, (int64_t)seq);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return jtxn_end(j, c, rc == SQLITE_DONE ? 0 : journal_err(rc));
}
