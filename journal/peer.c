/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Mirror peers and their sync state, kept in the source's journal
 * (docs/MIRRORING.md). The mount daemon's replicator writes the status;
 * the command line adds/removes/pauses peers through a configuration open
 * (JOURNAL_OPEN_CONFIG) while the daemon holds the journal — sqlite
 * serialises the two processes' transactions.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "mirrorfs/util.h"
#include "journal_i.h"

const char *journal_peer_state_name(enum journal_peer_state s)
{
	switch (s) {
	case JOURNAL_PEER_IDLE: return "idle";
	case JOURNAL_PEER_SYNCING: return "syncing";
	case JOURNAL_PEER_FAILED: return "failed";
	case JOURNAL_PEER_PAUSED: return "paused";
	}
	return "unknown";
}

/* A write transaction on whichever read-write connection this journal has. */
static int ptxn_begin(struct journal *j, struct jconn **ret)
{
	if (!(j->flags & JOURNAL_OPEN_READONLY))
		return jtxn_begin(j, true, ret);
	if (!j->cconn)
		return -EROFS;
	pthread_mutex_lock(&j->cconn_lock);
	if (db_exec(j->cconn->db, "BEGIN IMMEDIATE") < 0) {
		pthread_mutex_unlock(&j->cconn_lock);
		return -EBUSY;
	}
	*ret = j->cconn;
	return 0;
}

static int ptxn_end(struct journal *j, struct jconn *c, int r)
{
	int q;

	if (c != j->cconn)
		return jtxn_end(j, c, r);
	q = db_exec(c->db, r >= 0 ? "COMMIT" : "ROLLBACK");
	if (q < 0 && r >= 0) {
		db_exec(c->db, "ROLLBACK");
		r = q;
	}
	pthread_mutex_unlock(&j->cconn_lock);
	return r;
}

static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : journal_err(rc);
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *s, int col)
{
	const void *p = sqlite3_column_blob(s, col);
	size_t n = (size_t)sqlite3_column_bytes(s, col);

	if (n >= size)
		n = size - 1;
	if (p)
		memcpy(dst, p, n);
	dst[p ? n : 0] = '\0';
}

int journal_peer_add(struct journal *j, const struct journal_peer *p)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	if (strlen(p->uuid) != 36 || !p->url[0])
		return -EINVAL;
	r = ptxn_begin(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "INSERT INTO peers(uuid, url, site, identity, host_key, "
				"keep_deleted, paused, added) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return ptxn_end(j, c, journal_err(rc));
	sqlite3_bind_text(s, 1, p->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, p->site, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, p->identity, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, p->host_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, p->keep_deleted);
	sqlite3_bind_int(s, 7, p->paused);
	sqlite3_bind_int64(s, 8, p->added_ns ? p->added_ns : util_now_ns());
	r = step_done(s);
	/* Deletions from before the peer existed are none of its business. */
	if (r >= 0) {
		rc = sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO peer_status(uuid, state, "
					"del_cursor) VALUES(?1, 0, (SELECT coalesce(max(seq), 0) "
					"FROM changes))", -1, &s, NULL);
		if (rc != SQLITE_OK)
			r = journal_err(rc);
		else {
			sqlite3_bind_text(s, 1, p->uuid, -1, SQLITE_STATIC);
			r = step_done(s);
		}
	}
	return ptxn_end(j, c, r);
}

int journal_peer_remove(struct journal *j, const char *uuid)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = ptxn_begin(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "DELETE FROM peers WHERE uuid=?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return ptxn_end(j, c, journal_err(rc));
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	r = step_done(s);
	if (r >= 0 && sqlite3_changes(c->db) == 0)
		r = -ENOENT;
	if (r >= 0) {
		rc = sqlite3_prepare_v2(c->db, "DELETE FROM peer_status WHERE uuid=?1", -1, &s, NULL);
		if (rc != SQLITE_OK)
			r = journal_err(rc);
		else {
			sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
			r = step_done(s);
		}
	}
	/* Its holds on snapshots go with it. */
	if (r >= 0) {
		char tag[64];

		snprintf(tag, sizeof(tag), "peer:%s", uuid);
		rc = sqlite3_prepare_v2(c->db, "DELETE FROM snap_holds WHERE tag=?1", -1, &s, NULL);
		if (rc != SQLITE_OK)
			r = journal_err(rc);
		else {
			sqlite3_bind_text(s, 1, tag, -1, SQLITE_TRANSIENT);
			r = step_done(s);
		}
	}
	return ptxn_end(j, c, r);
}

static void peer_from_row(sqlite3_stmt *s, struct journal_peer *p)
{
	memset(p, 0, sizeof(*p));
	copy_text(p->uuid, sizeof(p->uuid), s, 0);
	copy_text(p->url, sizeof(p->url), s, 1);
	copy_text(p->site, sizeof(p->site), s, 2);
	copy_text(p->identity, sizeof(p->identity), s, 3);
	copy_text(p->host_key, sizeof(p->host_key), s, 4);
	p->keep_deleted = sqlite3_column_int(s, 5);
	p->paused = sqlite3_column_int(s, 6);
	p->added_ns = sqlite3_column_int64(s, 7);
}

#define PEER_COLS "SELECT uuid, url, site, identity, host_key, keep_deleted, paused, added FROM peers"

int journal_peer_list(struct journal *j, struct journal_peer **ret, size_t *ret_n)
{
	struct journal_peer *v = NULL;
	size_t n = 0, cap = 0;
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, PEER_COLS " ORDER BY added, uuid", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_conn_put(j, c);
		return journal_err(rc);
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct journal_peer *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		peer_from_row(s, &v[n++]);
	}
	sqlite3_finalize(s);
	db_conn_put(j, c);
	if (r >= 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int journal_peer_get(struct journal *j, const char *uuid, struct journal_peer *ret)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, PEER_COLS " WHERE uuid=?1", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_conn_put(j, c);
		return journal_err(rc);
	}
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		peer_from_row(s, ret);
	sqlite3_finalize(s);
	db_conn_put(j, c);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
}

int journal_peer_set_paused(struct journal *j, const char *uuid, bool paused)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = ptxn_begin(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "UPDATE peers SET paused=?2 WHERE uuid=?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return ptxn_end(j, c, journal_err(rc));
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, paused);
	r = step_done(s);
	if (r >= 0 && sqlite3_changes(c->db) == 0)
		r = -ENOENT;
	return ptxn_end(j, c, r);
}

#define STATUS_COLS "state, last_snap, last_snap_created, last_sync, snaps_synced, " \
	"snaps_deleted, last_bytes_raw, last_bytes_wire, total_bytes_raw, total_bytes_wire, " \
	"last_duration, pending, last_error, last_error_time, next_retry, failures, cur_snap, " \
	"cur_bytes, cur_total, cur_files, cur_started, del_cursor, scan_next"

int journal_peer_status_get(struct journal *j, const char *uuid, struct journal_peer_status *ret)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	memset(ret, 0, sizeof(*ret));
	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "SELECT " STATUS_COLS " FROM peer_status WHERE uuid=?1",
				-1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_conn_put(j, c);
		return journal_err(rc);
	}
	sqlite3_bind_text(s, 1, uuid, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		ret->state = (enum journal_peer_state)sqlite3_column_int(s, 0);
		copy_text(ret->last_snap, sizeof(ret->last_snap), s, 1);
		ret->last_snap_created_ns = sqlite3_column_int64(s, 2);
		ret->last_sync_ns = sqlite3_column_int64(s, 3);
		ret->snaps_synced = (uint64_t)sqlite3_column_int64(s, 4);
		ret->snaps_deleted = (uint64_t)sqlite3_column_int64(s, 5);
		ret->last_bytes_raw = (uint64_t)sqlite3_column_int64(s, 6);
		ret->last_bytes_wire = (uint64_t)sqlite3_column_int64(s, 7);
		ret->total_bytes_raw = (uint64_t)sqlite3_column_int64(s, 8);
		ret->total_bytes_wire = (uint64_t)sqlite3_column_int64(s, 9);
		ret->last_duration_ns = sqlite3_column_int64(s, 10);
		ret->pending = (uint64_t)sqlite3_column_int64(s, 11);
		copy_text(ret->last_error, sizeof(ret->last_error), s, 12);
		ret->last_error_ns = sqlite3_column_int64(s, 13);
		ret->next_retry_ns = sqlite3_column_int64(s, 14);
		ret->failures = (uint32_t)sqlite3_column_int(s, 15);
		copy_text(ret->cur_snap, sizeof(ret->cur_snap), s, 16);
		ret->cur_bytes = (uint64_t)sqlite3_column_int64(s, 17);
		ret->cur_total = (uint64_t)sqlite3_column_int64(s, 18);
		ret->cur_files = (uint64_t)sqlite3_column_int64(s, 19);
		ret->cur_started_ns = sqlite3_column_int64(s, 20);
		ret->del_cursor = (uint64_t)sqlite3_column_int64(s, 21);
		ret->scan_next = sqlite3_column_int(s, 22);
	}
	sqlite3_finalize(s);
	db_conn_put(j, c);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : journal_err(rc);
}

int journal_peer_status_set(struct journal *j, const char *uuid,
			    const struct journal_peer_status *st)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc, i = 1;

	r = ptxn_begin(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO peer_status(uuid, " STATUS_COLS
				") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
				"?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return ptxn_end(j, c, journal_err(rc));
	sqlite3_bind_text(s, i++, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, i++, st->state);
	db_bind_name(s, i++, st->last_snap);
	sqlite3_bind_int64(s, i++, st->last_snap_created_ns);
	sqlite3_bind_int64(s, i++, st->last_sync_ns);
	sqlite3_bind_int64(s, i++, (int64_t)st->snaps_synced);
	sqlite3_bind_int64(s, i++, (int64_t)st->snaps_deleted);
	sqlite3_bind_int64(s, i++, (int64_t)st->last_bytes_raw);
	sqlite3_bind_int64(s, i++, (int64_t)st->last_bytes_wire);
	sqlite3_bind_int64(s, i++, (int64_t)st->total_bytes_raw);
	sqlite3_bind_int64(s, i++, (int64_t)st->total_bytes_wire);
	sqlite3_bind_int64(s, i++, st->last_duration_ns);
	sqlite3_bind_int64(s, i++, (int64_t)st->pending);
	sqlite3_bind_text(s, i++, st->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, i++, st->last_error_ns);
	sqlite3_bind_int64(s, i++, st->next_retry_ns);
	sqlite3_bind_int(s, i++, (int)st->failures);
	db_bind_name(s, i++, st->cur_snap);
	sqlite3_bind_int64(s, i++, (int64_t)st->cur_bytes);
	sqlite3_bind_int64(s, i++, (int64_t)st->cur_total);
	sqlite3_bind_int64(s, i++, (int64_t)st->cur_files);
	sqlite3_bind_int64(s, i++, st->cur_started_ns);
	sqlite3_bind_int64(s, i++, (int64_t)st->del_cursor);
	sqlite3_bind_int(s, i++, st->scan_next);
	return ptxn_end(j, c, step_done(s));
}

int journal_holder_pid(const char *backing, pid_t *ret)
{
	char path[4096], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" JOURNAL_STATE_DIR "/lock", backing);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret = 0;
			return 0;
		}
		return -errno;
	}
	/* Shared lock granted: nobody holds the exclusive one. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
		close(fd);
		*ret = 0;
		return 0;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*ret = (pid_t)atoi(buf);
	return 0;
}

int journal_snap_deletions(struct journal *j, uint64_t since,
			   int (*cb)(void *arg, uint64_t seq, const char *name), void *arg)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	rc = sqlite3_prepare_v2(c->db, "SELECT seq, name FROM changes WHERE op=?1 AND seq>?2 "
				"ORDER BY seq", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		db_conn_put(j, c);
		return journal_err(rc);
	}
	sqlite3_bind_int(s, 1, JOP_SNAP_DELETE);
	sqlite3_bind_int64(s, 2, (int64_t)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char name[256];
		int n = sqlite3_column_bytes(s, 1);

		if (n > 255)
			n = 255;
		memcpy(name, sqlite3_column_blob(s, 1), (size_t)n);
		name[n] = '\0';
		r = cb(arg, (uint64_t)sqlite3_column_int64(s, 0), name);
		if (r < 0)
			break;
	}
	sqlite3_finalize(s);
	db_conn_put(j, c);
	if (r >= 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = journal_err(rc);
	return r < 0 ? r : 0;
}
