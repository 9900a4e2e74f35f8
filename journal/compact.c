/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Compaction (DESIGN §3): change records and dead namespace rows that no
 * snapshot, no peer and the recent history still need are folded away, so
 * the journal's size follows what is retained, not the age of the mount.
 *
 * What is still needed, and so kept:
 * - change records after the oldest snapshot: a change set between two
 *   snapshots (diff.c) reads the records in (from.seq, to.seq];
 * - the newest `history_keep` records, whatever the snapshots (what
 *   `mirrorfs journal` shows of a mount without snapshots);
 * - snapshot deletion records a peer has not propagated yet (after the
 *   smallest peer_status.del_cursor);
 * - namespace rows and objects alive at or after the cutoff: a snapshot
 *   sees a row iff born_seq <= snap.seq < died_seq, and the paths of a
 *   kept record are resolved as of its seq or the one before, so a row
 *   that died at or before the cutoff is seen by nothing kept;
 * - dead objects that something else still names (a namespace row, an
 *   orphan, preserved attributes or chunks).
 * Everything else with seq/died_seq <= cutoff goes.
 *
 * Work is done in bounded steps (COMPACT_BATCH rows of each table per
 * transaction) so the writer is never held up long: the writer thread runs
 * a step after every JOURNAL_COMPACT_EVERY records and after a snapshot is
 * deleted, and keeps stepping while a step finds a full batch. Freed pages
 * are reused by sqlite; the file does not shrink (VACUUM would rewrite it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

#include "mirrorfs/log.h"
#include "journal_i.h"

#define COMPACT_BATCH 4096

static int query_u64(sqlite3 *db, const char *sql, uint64_t *ret, bool *ret_null)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_null = sqlite3_column_type(s, 0) == SQLITE_NULL;
		*ret = (uint64_t)sqlite3_column_int64(s, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : journal_err(rc);
}

/* The seq at or below which nothing is needed, and the peers' deletion cursor. */
static int compact_cutoff(struct journal *j, struct jconn *c, uint64_t *ret_cut,
			  uint64_t *ret_del_keep)
{
	uint64_t committed = atomic_load(&j->committed_seq), v;
	uint64_t cut = committed > j->history_keep ? committed - j->history_keep : 0;
	bool null;
	int r;

	r = query_u64(c->db, "SELECT min(seq) FROM snapshots", &v, &null);
	if (r < 0)
		return r;
	if (!null && v < cut)
		cut = v;
	r = query_u64(c->db, "SELECT min(del_cursor) FROM peer_status "
			     "WHERE uuid IN (SELECT uuid FROM peers)", &v, &null);
	if (r < 0)
		return r;
	*ret_del_keep = null ? UINT64_MAX : v;
	*ret_cut = cut;
	return 0;
}

/* One bounded step: rows removed, in *ret_n (< 3 * COMPACT_BATCH: done). */
static int compact_step(struct journal *j, uint64_t *ret_n)
{
	uint64_t cut, del_keep, n = 0;
	struct jconn *c;
	int64_t v[4];
	int r;

	*ret_n = 0;
	r = jtxn_begin(j, false, &c);
	if (r < 0)
		return r;
	r = compact_cutoff(j, c, &cut, &del_keep);
	if (r < 0 || cut == 0)
		return jtxn_end(j, c, r);
	v[0] = (int64_t)cut;
	v[1] = del_keep > INT64_MAX ? INT64_MAX : (int64_t)del_keep;
	v[2] = COMPACT_BATCH;
	v[3] = JOP_SNAP_DELETE;
	r = db_exec_i64(c->db, "DELETE FROM changes WHERE seq IN (SELECT seq FROM changes "
			"WHERE seq <= ?1 AND NOT (op = ?4 AND seq > ?2) ORDER BY seq LIMIT ?3)",
			4, v);
	n += (uint64_t)sqlite3_changes(c->db);
	if (r >= 0) {
		v[1] = COMPACT_BATCH;
		r = db_exec_i64(c->db, "DELETE FROM ns WHERE rowid IN (SELECT rowid FROM ns "
				"WHERE died_seq <= ?1 LIMIT ?2)", 2, v);
		n += (uint64_t)sqlite3_changes(c->db);
	}
	if (r >= 0) {
		r = db_exec_i64(c->db, "DELETE FROM objects WHERE ino IN (SELECT ino FROM objects o "
				"WHERE died_seq <= ?1 "
				"AND NOT EXISTS (SELECT 1 FROM ns WHERE ns.ino = o.ino) "
				"AND NOT EXISTS (SELECT 1 FROM orphans WHERE orphans.ino = o.ino) "
				"AND NOT EXISTS (SELECT 1 FROM cow_attr WHERE cow_attr.ino = o.ino) "
				"AND NOT EXISTS (SELECT 1 FROM cow_chunk WHERE cow_chunk.ino = o.ino) "
				"LIMIT ?2)", 2, v);
		n += (uint64_t)sqlite3_changes(c->db);
	}
	r = jtxn_end(j, c, r);
	if (r >= 0)
		*ret_n = n;
	return r;
}

int compact_run(struct journal *j, unsigned max_steps, uint64_t *ret_removed)
{
	uint64_t total = 0, n;
	bool more = true;
	int r = 0;

	for (unsigned i = 0; more && (max_steps == 0 || i < max_steps); i++) {
		r = compact_step(j, &n);
		if (r < 0)
			break;
		total += n;
		/* a step that found less than a batch of the biggest table is the last */
		more = n >= COMPACT_BATCH;
	}
	if (r >= 0 && !more)
		atomic_store(&j->compact_due, false);
	if (total)
		log_debug("journal: compaction folded away %" PRIu64 " row(s)", total);
	if (ret_removed)
		*ret_removed = total;
	return r;
}

int journal_compact(struct journal *j, uint64_t *ret_removed)
{
	int r;

	if (j->flags & JOURNAL_OPEN_READONLY)
		return -EROFS;
	r = journal_flush(j);
	if (r < 0)
		return r;
	return compact_run(j, 0, ret_removed);
}
