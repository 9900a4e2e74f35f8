/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.db: opening and creating it, schema and migrations, the state
 * directory lock, the read-connection pool, and the translation of sqlite
 * result codes into -errno (journal_err(), the only place that does it).
 *
 * State directory: BACKING/.mirrorfs (0700) holds journal.db (+ -wal/-shm)
 * and `lock`, a file flock()ed exclusively by the process that has the
 * journal open for writing (it also holds that process's pid, for humans).
 *
 * A journal.db that exists is never created over nor rewritten when it
 * cannot be read: open, the meta table (and after an unclean shutdown a
 * full PRAGMA quick_check) are checked before the first write (even before
 * switching to WAL). A new
 * journal is built under a temporary name, adopted, synced and renamed
 * into place, so a crash during the first mount leaves no half-built
 * journal.db behind.
 *
 * The root directory (jino 1) has no row in `ns`: its path is "/" and a
 * path walk stops at it. Its `objects` row has born_seq of the adoption.
 *
 * Schema v1 (see `migrations` below):
 *   meta(key, value): schema_version, source_id, next_ino, next_seq, clean,
 *       interval, created (ns).
 *   objects: one row per object ever, died_seq set when its last link goes;
 *       size is the size as of the newest record, target a symlink's target.
 *   ns: the versioned namespace; live rows have died_seq NULL. Names are
 *       BLOBs of the exact bytes.
 *   changes: the change log. Besides the columns the API exposes: `size`
 *       (object size after write/truncate/fallocate/punch), `mode`
 *       (fallocate mode, setattr valid mask, st_mode of a created object) and
 *       `ino2` (the other object of an exchange or of a rename-over). A WRITE
 *       row is extended in place (off/len/size updated, seq and time kept)
 *       while the writes of an object stay adjacent within one interval and
 *       nothing else happens to the object in between.
 *   rstat: one row per live directory. dirty: objects durably marked dirty
 *       in the current interval (cleared by a clean close).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"

#define DB_BUSY_TIMEOUT_MS 10000
#define DB_POOL_MAX_IDLE 4

static const char *const stmt_sql[ST__MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_READ_BEGIN] = "BEGIN",
	[ST_SYNC_FULL] = "PRAGMA synchronous=FULL",
	[ST_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
	[ST_META_GET] = "SELECT value FROM meta WHERE key=?1",
	[ST_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) "
			"ON CONFLICT(key) DO UPDATE SET value=excluded.value",
	[ST_CHANGE_INSERT] = "INSERT INTO changes(seq, time, op, ino, parent, name, "
			     "new_parent, new_name, off, len, xname, size, mode, ino2) "
			     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[ST_CHANGE_MERGE_WRITE] = "UPDATE changes SET seq=?5, time=?6, off=?2, len=?3, size=?4 "
				  "WHERE seq=?1",
	[ST_OBJ_INSERT] = "INSERT INTO objects(ino, dev, bino, type, born_seq, died_seq, "
			  "size, nlink, target) VALUES(?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8)",
	[ST_OBJ_SET_SIZE] = "UPDATE objects SET size=?2 WHERE ino=?1",
	[ST_OBJ_SET_NLINK] = "UPDATE objects SET nlink=?2 WHERE ino=?1",
	[ST_OBJ_DIE] = "UPDATE objects SET died_seq=?2, nlink=0 WHERE ino=?1 AND died_seq IS NULL",
	[ST_NS_INSERT] = "INSERT INTO ns(parent, name, ino, born_seq, died_seq) "
			 "VALUES(?1, ?2, ?3, ?4, NULL)",
	[ST_NS_KILL] = "UPDATE ns SET died_seq=?3 WHERE parent=?1 AND name=?2 "
		       "AND died_seq IS NULL RETURNING ino",
	[ST_NS_KILL_INO] = "UPDATE ns SET died_seq=?2 WHERE ino=?1 AND died_seq IS NULL",
	[ST_NS_PARENTS] = "SELECT parent FROM ns WHERE ino=?1 AND died_seq IS NULL",
	[ST_NS_LIVE_COUNT] = "SELECT count(*) FROM ns WHERE ino=?1 AND died_seq IS NULL",
	[ST_RSTAT_INSERT] = "INSERT OR REPLACE INTO rstat(ino, rctime, rbytes, rfiles, rsubdirs) "
			    "VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_RSTAT_ADD] = "UPDATE rstat SET rbytes=rbytes+?2, rfiles=rfiles+?3, "
			 "rsubdirs=rsubdirs+?4, rctime=max(rctime, ?5) WHERE ino=?1",
	[ST_RSTAT_GET] = "SELECT rctime, rbytes, rfiles, rsubdirs FROM rstat WHERE ino=?1",
	[ST_RSTAT_DELETE] = "DELETE FROM rstat WHERE ino=?1",
	[ST_RSTAT_SET] = "INSERT INTO rstat(ino, rctime, rbytes, rfiles, rsubdirs) "
			 "VALUES(?1, ?5, ?2, ?3, ?4) ON CONFLICT(ino) DO UPDATE SET "
			 "rbytes=excluded.rbytes, rfiles=excluded.rfiles, "
			 "rsubdirs=excluded.rsubdirs, rctime=max(rctime, excluded.rctime)",
	[ST_DIRTY_INSERT] = "INSERT OR IGNORE INTO dirty(ino, seq) VALUES(?1, ?2)",
	[ST_CHANGES_SINCE] = "SELECT seq, time, op, ino, parent, name, new_parent, new_name, "
			     "off, len, xname, size, ino2 FROM changes WHERE seq > ?1 ORDER BY seq",
	[ST_PATH_AT] = "SELECT parent, name FROM ns WHERE ino=?1 AND born_seq<=?2 AND "
		       "(died_seq IS NULL OR died_seq>?2) ORDER BY born_seq, rowid LIMIT 1",
	[ST_NS_CHILDREN] = "SELECT name, ino FROM ns WHERE parent=?1 AND died_seq IS NULL",
	[ST_OBJ_GET] = "SELECT type, size, nlink, died_seq FROM objects WHERE ino=?1",
	[ST_JSON_LINE] =
		"SELECT json_patch(json_object('seq', ?1, 'time', "
		"strftime('%Y-%m-%dT%H:%M:%S', ?2 / 1000000000, 'unixepoch') || "
		"printf('.%09dZ', ?2 % 1000000000), 'time_ns', ?2, 'op', ?3, 'ino', ?4, "
		"'path', ?5), json_object('new_path', ?6, 'offset', ?7, 'length', ?8, "
		"'xattr', ?9, 'path_hex', iif(?10 IS NULL, NULL, hex(?10)), "
		"'new_path_hex', iif(?11 IS NULL, NULL, hex(?11))))",
	[ST_SV_SNAP_SEQ] = "SELECT seq FROM snapshots WHERE id=?1",
	[ST_SV_OBJ] = "SELECT type, dev, bino, born_seq, coalesce(died_seq, 0) FROM objects "
		      "WHERE ino=?1",
	[ST_SV_ATTR] = "SELECT mode, uid, gid, size, rdev, blocks, atime, mtime, ctime, xattrs "
		       "FROM cow_attr WHERE ino=?1 AND interval>=?2 ORDER BY interval LIMIT 1",
	[ST_SV_NLINK_DIR] = "SELECT count(*) FROM ns JOIN objects o ON o.ino = ns.ino "
			    "WHERE ns.parent=?1 AND ns.born_seq<=?2 AND "
			    "(ns.died_seq IS NULL OR ns.died_seq>?2) AND o.type=?3",
	[ST_SV_NLINK] = "SELECT count(*) FROM ns WHERE ino=?1 AND born_seq<=?2 AND "
			"(died_seq IS NULL OR died_seq>?2)",
	[ST_SV_LOOKUP] = "SELECT ino FROM ns WHERE parent=?1 AND name=?2 AND born_seq<=?3 AND "
			 "(died_seq IS NULL OR died_seq>?3) LIMIT 1",
	[ST_SV_READDIR] = "SELECT ns.name, ns.ino, o.type FROM ns JOIN objects o ON o.ino = ns.ino "
			  "WHERE ns.parent=?1 AND ns.born_seq<=?2 AND "
			  "(ns.died_seq IS NULL OR ns.died_seq>?2) ORDER BY ns.name",
	[ST_SV_TARGET] = "SELECT target FROM objects WHERE ino=?1",
	[ST_SV_CHUNKS] = "SELECT chunk, min(interval) FROM cow_chunk WHERE ino=?1 AND "
			 "interval>=?2 GROUP BY chunk ORDER BY chunk",
	[ST_SV_CHUNK_ONE] = "SELECT 1 FROM cow_chunk WHERE ino=?1 AND chunk=?2 AND interval>=?3 "
			    "LIMIT 1",
	[ST_TREE_ALL] = "SELECT ns.parent, ns.ino, o.type, o.size FROM ns "
			"JOIN objects o ON o.ino = ns.ino WHERE ns.died_seq IS NULL",
};

/*
 * Schema migrations: step i upgrades schema_version i to i + 1, all of them
 * in one transaction. A new journal starts with only `meta` at version 0
 * and runs every step, so the path that upgrades old journals is the path
 * that creates new ones. Steps must be idempotent (IF NOT EXISTS), so a
 * journal whose version row was rewritten by hand survives an upgrade.
 */
static const char *const migrations[JOURNAL_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE IF NOT EXISTS objects(ino INTEGER PRIMARY KEY, dev INTEGER NOT NULL, "
	"  bino INTEGER NOT NULL, type INTEGER NOT NULL, born_seq INTEGER NOT NULL, "
	"  died_seq INTEGER, size INTEGER NOT NULL DEFAULT 0, "
	"  nlink INTEGER NOT NULL DEFAULT 1, target BLOB);"
	"CREATE INDEX IF NOT EXISTS objects_born ON objects(born_seq);"
	"CREATE TABLE IF NOT EXISTS ns(parent INTEGER NOT NULL, name BLOB NOT NULL, "
	"  ino INTEGER NOT NULL, born_seq INTEGER NOT NULL, died_seq INTEGER);"
	"CREATE UNIQUE INDEX IF NOT EXISTS ns_live ON ns(parent, name) WHERE died_seq IS NULL;"
	"CREATE INDEX IF NOT EXISTS ns_ino ON ns(ino);"
	"CREATE INDEX IF NOT EXISTS ns_parent_name ON ns(parent, name);"
	/* change sets between snapshots (diff.c) read rows born or died in a seq range */
	"CREATE INDEX IF NOT EXISTS ns_born ON ns(born_seq);"
	"CREATE INDEX IF NOT EXISTS ns_died ON ns(died_seq) WHERE died_seq IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
	"  op INTEGER NOT NULL, ino INTEGER NOT NULL, parent INTEGER, name BLOB, "
	"  new_parent INTEGER, new_name BLOB, off INTEGER, len INTEGER, xname TEXT, "
	"  size INTEGER, mode INTEGER, ino2 INTEGER);"
	"CREATE TABLE IF NOT EXISTS rstat(ino INTEGER PRIMARY KEY, rctime INTEGER NOT NULL, "
	"  rbytes INTEGER NOT NULL, rfiles INTEGER NOT NULL, rsubdirs INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS dirty(ino INTEGER PRIMARY KEY, seq INTEGER NOT NULL);"
	/* snapshots and copy-on-write (snap.c, cow.c, docs/SNAPSHOTS.md) */
	"CREATE TABLE IF NOT EXISTS snapshots(id INTEGER PRIMARY KEY AUTOINCREMENT, "
	"  name BLOB NOT NULL UNIQUE, seq INTEGER NOT NULL, created INTEGER NOT NULL, "
	"  next_ino INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS snap_holds(snap_id INTEGER NOT NULL, tag TEXT NOT NULL, "
	"  PRIMARY KEY(snap_id, tag));"
	"CREATE TABLE IF NOT EXISTS cow_attr(ino INTEGER NOT NULL, interval INTEGER NOT NULL, "
	"  mode INTEGER, uid INTEGER, gid INTEGER, size INTEGER, rdev INTEGER, blocks INTEGER, "
	"  atime INTEGER, mtime INTEGER, ctime INTEGER, xattrs BLOB, "
	"  PRIMARY KEY(ino, interval)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS cow_chunk(ino INTEGER NOT NULL, chunk INTEGER NOT NULL, "
	"  interval INTEGER NOT NULL, PRIMARY KEY(ino, chunk, interval)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS orphans(ino INTEGER PRIMARY KEY);"
	/* replication (replica.c, docs/MIRRORING.md) */
	"CREATE TABLE IF NOT EXISTS peers(uuid TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, "
	"  site TEXT NOT NULL, identity TEXT NOT NULL, host_key TEXT NOT NULL, "
	"  keep_deleted INTEGER NOT NULL, paused INTEGER NOT NULL, added INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS peer_status(uuid TEXT PRIMARY KEY, state INTEGER, "
	"  last_snap BLOB, last_snap_created INTEGER, last_sync INTEGER, snaps_synced INTEGER, "
	"  snaps_deleted INTEGER, last_bytes_raw INTEGER, last_bytes_wire INTEGER, "
	"  total_bytes_raw INTEGER, total_bytes_wire INTEGER, last_duration INTEGER, "
	"  pending INTEGER, last_error TEXT, last_error_time INTEGER, next_retry INTEGER, "
	"  failures INTEGER, cur_snap BLOB, cur_bytes INTEGER, cur_total INTEGER, "
	"  cur_files INTEGER, cur_started INTEGER, del_cursor INTEGER NOT NULL DEFAULT 0, "
	"  scan_next INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS changes_snap ON changes(op, seq) WHERE op IN (17, 18);"
	"CREATE TABLE IF NOT EXISTS recv_pos(source TEXT NOT NULL, from_snap BLOB NOT NULL, "
	"  to_snap BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(source, from_snap, to_snap));",
	/* 1 -> 2: compaction (compact.c) finds dead objects by died_seq */
	"CREATE INDEX IF NOT EXISTS objects_died ON objects(died_seq) WHERE died_seq IS NOT NULL;",
};

int journal_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_PROTOCOL:
		return -EPROTO;
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

const char *journal_strerror(int r)
{
	switch (r) {
	case -EPROTONOSUPPORT:
		return "journal was written by a newer version of mirrorfs";
	case -EUCLEAN:
		return "journal is corrupt";
	case -EBUSY:
		return "backing directory is in use by another mirrorfs process";
	case -EROFS:
		return "state directory is not writable";
	case -ENOSPC:
		return "no space left for the journal";
	default: {
		const char *s = strerrordesc_np(r < 0 ? -r : r);
		return s ? s : "unknown error";
	}
	}
}

int db_exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		log_debug("journal: '%.60s': %s", sql, sqlite3_errmsg(db));
		return journal_err(rc);
	}
	return 0;
}

int db_stmt(struct jconn *c, enum jstmt id, sqlite3_stmt **ret)
{
	int rc;

	if (!c->st[id]) {
		rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					&c->st[id], NULL);
		if (rc != SQLITE_OK) {
			log_debug("journal: prepare %d: %s", (int)id, sqlite3_errmsg(c->db));
			return journal_err(rc);
		}
	}
	sqlite3_reset(c->st[id]);
	sqlite3_clear_bindings(c->st[id]);
	*ret = c->st[id];
	return 0;
}

int db_step_done(sqlite3_stmt *s)
{
	int rc;

	do
		rc = sqlite3_step(s);
	while (rc == SQLITE_ROW);
	if (rc != SQLITE_DONE) {
		log_debug("journal: step: %s", sqlite3_errmsg(sqlite3_db_handle(s)));
		sqlite3_reset(s);
		return journal_err(rc);
	}
	sqlite3_reset(s);
	return 0;
}

int db_bind_name(sqlite3_stmt *s, int idx, const char *name)
{
	int rc;

	if (!name)
		rc = sqlite3_bind_null(s, idx);
	else
		rc = sqlite3_bind_blob(s, idx, name, (int)strlen(name), SQLITE_TRANSIENT);
	return journal_err(rc);
}

int db_meta_get_int(struct jconn *c, const char *key, int64_t *ret)
{
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(c, ST_META_GET, &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(s, 0) != SQLITE_INTEGER)
			r = -EUCLEAN;
		else
			*ret = sqlite3_column_int64(s, 0);
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int db_meta_get_text(struct jconn *c, const char *key, char *buf, size_t size)
{
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(c, ST_META_GET, &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		if (!t || strlen((const char *)t) >= size)
			r = -EUCLEAN;
		else
			strcpy(buf, (const char *)t);
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : journal_err(rc);
	}
	sqlite3_reset(s);
	return r;
}

int db_meta_set_int(struct jconn *c, const char *key, int64_t v)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, ST_META_SET, &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, v);
	return db_step_done(s);
}

int db_meta_set_text(struct jconn *c, const char *key, const char *v)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, ST_META_SET, &s);
	if (r < 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, v, -1, SQLITE_TRANSIENT);
	return db_step_done(s);
}

void db_conn_close(struct jconn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__MAX; i++)
		sqlite3_finalize(c->st[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_warning("journal: closing the database: %s", sqlite3_errmsg(c->db));
	free(c);
}

static int db_conn_open(const char *path, int flags, struct jconn **ret)
{
	struct jconn *c;
	int rc, r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = journal_err(rc);
		if (c->db)
			log_debug("journal: open '%s': %s", path, sqlite3_errmsg(c->db));
		if (r == -ENOENT || r == -EIO)
			r = -EUCLEAN;
		sqlite3_close(c->db);
		free(c);
		return r;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, DB_BUSY_TIMEOUT_MS);
	/*
	 * 32 MiB of page cache (used only as pages are read): sqlite's default
	 * 2 MiB holds a tenth of the journal of 100,000 files, and a send or a
	 * receive re-read pages with pread() thousands of times a second.
	 */
	sqlite3_exec(c->db, "PRAGMA cache_size=-32768", NULL, NULL, NULL);
	*ret = c;
	return 0;
}

int db_conn_get(struct journal *j, struct jconn **ret)
{
	struct jconn *c;
	int r;

	pthread_mutex_lock(&j->pool_lock);
	c = j->pool;
	if (c) {
		j->pool = c->next;
		j->pool_idle--;
	}
	pthread_mutex_unlock(&j->pool_lock);
	if (!c) {
		r = db_conn_open(j->db_path, SQLITE_OPEN_READONLY, &c);
		if (r < 0)
			return r;
	}
	c->next = NULL;
	c->cow_commits = &j->cow_commits;
	*ret = c;
	return 0;
}

/*
 * The write connection, (re)made on first use after a NO_START open closed
 * it (see journal_open()). Caller holds wconn_lock.
 */
static int db_pragmas(struct jconn *c, bool fast_unsafe);

int db_wconn_ensure(struct journal *j)
{
	int r;

	if (j->wconn || (j->flags & JOURNAL_OPEN_READONLY))
		return 0;
	r = db_conn_open(j->db_path, SQLITE_OPEN_READWRITE, &j->wconn);
	if (r < 0)
		return r;
	r = db_pragmas(j->wconn, false);
	if (r < 0) {
		db_conn_close(j->wconn);
		j->wconn = NULL;
	}
	j->sync_full = false;   /* a new connection starts at NORMAL */
	return r;
}

/*
 * Make the write connection's commits durable against power loss (FULL:
 * the WAL is synced at COMMIT) or only against the death of the process
 * (NORMAL). Caller holds wconn_lock.
 */
int db_wconn_sync(struct journal *j, bool full)
{
	int r;

	if (full == j->sync_full)
		return 0;
	r = db_exec_stmt(j->wconn, full ? ST_SYNC_FULL : ST_SYNC_NORMAL);
	if (r >= 0)
		j->sync_full = full;
	return r;
}

/* Close every idle pooled connection. */
static void db_pool_drain(struct journal *j)
{
	struct jconn *c;

	pthread_mutex_lock(&j->pool_lock);
	c = j->pool;
	j->pool = NULL;
	j->pool_idle = 0;
	pthread_mutex_unlock(&j->pool_lock);
	while (c) {
		struct jconn *next = c->next;

		db_conn_close(c);
		c = next;
	}
}

int db_exec_stmt(struct jconn *c, enum jstmt id)
{
	sqlite3_stmt *s;
	int r = db_stmt(c, id, &s);

	return r < 0 ? r : db_step_done(s);
}

/*
 * The transaction's snapshot is taken at its first read, after BEGIN, so
 * j->cow_commits read before BEGIN counts only preservations it sees.
 */
static void db_read_open(struct jconn *c)
{
	c->cow_seen_ok = c->cow_commits != NULL;
	if (c->cow_seen_ok)
		c->cow_seen = atomic_load(c->cow_commits);
	(void)db_exec_stmt(c, ST_READ_BEGIN);
	if (sqlite3_get_autocommit(c->db))
		c->cow_seen_ok = false;   /* BEGIN failed: every statement reads anew */
}

void db_read_begin(struct jconn *c)
{
	if (sqlite3_get_autocommit(c->db))
		db_read_open(c);
}

void db_read_restart(struct jconn *c)
{
	if (sqlite3_get_autocommit(c->db))
		return;
	(void)db_exec_stmt(c, ST_COMMIT);
	if (!sqlite3_get_autocommit(c->db)) {
		c->cow_seen_ok = false;   /* still the old snapshot: never skip a restart */
		return;
	}
	db_read_open(c);
}

void db_read_catch_up(struct jconn *c)
{
	if (c->cow_seen_ok && atomic_load(c->cow_commits) == c->cow_seen)
		return;
	db_read_restart(c);
}

void db_conn_put(struct journal *j, struct jconn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST__MAX; i++)
		if (c->st[i])
			sqlite3_reset(c->st[i]);
	if (!sqlite3_get_autocommit(c->db))
		(void)db_exec_stmt(c, ST_COMMIT);   /* db_read_begin() */
	c->cow_seen_ok = false;
	pthread_mutex_lock(&j->pool_lock);
	if (j->pool_idle < DB_POOL_MAX_IDLE) {
		c->next = j->pool;
		j->pool = c;
		j->pool_idle++;
		c = NULL;
	}
	pthread_mutex_unlock(&j->pool_lock);
	db_conn_close(c);
}

/*
 * Refuse anything that is not a readable mirrorfs journal, without writing
 * to it. Returns the schema version.
 */
/* PRAGMA quick_check: every page of the database is read. */
static int db_quick_check(struct jconn *c)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		log_debug("journal: quick_check: %s", sqlite3_errmsg(c->db));
		r = journal_err(rc);
		return r == -ENOMEM || r == -EBUSY ? r : -EUCLEAN;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = journal_err(rc);
		sqlite3_finalize(s);
		return r == -ENOMEM || r == -EBUSY ? r : -EUCLEAN;
	}
	if (strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
		log_debug("journal: quick_check: %s", sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		return -EUCLEAN;
	}
	sqlite3_finalize(s);
	return 0;
}

/*
 * Refuse anything that is not a readable mirrorfs journal, without writing
 * to it. A damaged header or meta table fails here on any open. The full
 * page check (quick_check reads the whole file: seconds for a large
 * journal, and a receiver opens its replica's journal for every stream)
 * runs only when a read-write open follows an unclean shutdown, when
 * damage is possible. Returns the schema version.
 */
static int db_validate(struct jconn *c, bool full_check_if_unclean, int64_t *ret_version)
{
	int64_t v, clean = 0;
	int r;

	r = db_meta_get_int(c, "schema_version", &v);
	if (r < 0)
		return r == -ENOMEM || r == -EBUSY ? r : -EUCLEAN;
	if (v < 0)
		return -EUCLEAN;
	if (v > JOURNAL_SCHEMA_VERSION)
		return -EPROTONOSUPPORT;
	if (full_check_if_unclean &&
	    (db_meta_get_int(c, "clean", &clean) < 0 || clean != 1)) {
		r = db_quick_check(c);
		if (r < 0)
			return r;
	}
	*ret_version = v;
	return 0;
}

/* Run the migrations from `from` to the current version, in one transaction. */
static int db_migrate(struct jconn *c, int64_t from)
{
	int r;

	if (from >= JOURNAL_SCHEMA_VERSION)
		return 0;
	r = db_exec(c->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	for (int64_t v = from; v < JOURNAL_SCHEMA_VERSION; v++) {
		r = db_exec(c->db, migrations[v]);
		if (r < 0)
			goto fail;
	}
	r = db_meta_set_int(c, "schema_version", JOURNAL_SCHEMA_VERSION);
	if (r < 0)
		goto fail;
	r = db_exec(c->db, "COMMIT");
	if (r < 0)
		goto fail;
	if (from > 0)
		log_notice("journal: upgraded the schema from version %" PRId64 " to %d",
			   from, JOURNAL_SCHEMA_VERSION);
	return 0;
fail:
	db_exec(c->db, "ROLLBACK");
	return r;
}

static int db_pragmas(struct jconn *c, bool fast_unsafe)
{
	int r;

	if (fast_unsafe)
		r = db_exec(c->db, "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; "
				   "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536");
	else
		r = db_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
				   "PRAGMA foreign_keys=OFF");
	return r;
}

/*
 * A brand-new journal at `path` (the caller renames it into place): meta
 * at version 0, then every migration.
 */
static int db_create_schema(struct jconn *c)
{
	char uuid[37];
	int r;

	r = util_uuid_new(uuid);
	if (r < 0)
		return r;
	r = db_exec(c->db, "CREATE TABLE meta(key TEXT PRIMARY KEY, value)");
	if (r < 0)
		return r;
	r = db_meta_set_int(c, "schema_version", 0);
	if (r < 0)
		return r;
	r = db_migrate(c, 0);
	if (r < 0)
		return r;
	r = db_exec(c->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	if ((r = db_meta_set_text(c, "source_id", uuid)) < 0 ||
	    (r = db_meta_set_int(c, "next_ino", JOURNAL_ROOT_INO + 1)) < 0 ||
	    (r = db_meta_set_int(c, "next_seq", 1)) < 0 ||
	    (r = db_meta_set_int(c, "clean", 1)) < 0 ||
	    (r = db_meta_set_int(c, "interval", 0)) < 0 ||
	    (r = db_meta_set_int(c, "created", util_now_ns())) < 0) {
		db_exec(c->db, "ROLLBACK");
		return r;
	}
	return db_exec(c->db, "COMMIT");
}

/* Open a fresh temporary database for recover_create(). */
int db_open_new(const char *path, struct jconn **ret)
{
	struct jconn *c;
	int r;

	r = db_conn_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &c);
	if (r < 0)
		return r;
	r = db_pragmas(c, true);
	if (r < 0)
		goto fail;
	r = db_create_schema(c);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	db_conn_close(c);
	return r;
}

/* Switch the finished temporary database to WAL mode and close it. */
int db_close_new(struct jconn *c)
{
	int r = db_exec(c->db, "PRAGMA journal_mode=WAL");

	db_conn_close(c);
	return r;
}

/* ---- the state directory and its lock ----------------------------------- */

/* The lock file names the process holding it (rewritten after daemonizing). */
static int lock_write_pid(struct journal *j)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(j->lock_fd, 0) < 0 || pwrite(j->lock_fd, buf, (size_t)n, 0) != n)
		return errno == EROFS || errno == EACCES ? -EROFS : -errno;
	return 0;
}

static int state_dir_open(struct journal *j)
{
	bool ro = j->flags & JOURNAL_OPEN_READONLY;
	int fd;

	if (!ro && mkdirat(j->root_fd, JOURNAL_STATE_DIR, 0700) < 0 && errno != EEXIST)
		return errno == EACCES || errno == EPERM || errno == EROFS ? -EROFS : -errno;
	fd = openat(j->root_fd, JOURNAL_STATE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return !ro && (errno == EACCES || errno == EPERM) ? -EROFS : -errno;
	j->state_fd = fd;
	if (ro)
		return 0;

	fd = openat(j->state_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EACCES || errno == EPERM || errno == EROFS ? -EROFS : -errno;
	j->lock_fd = fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (faccessat(j->state_fd, ".", W_OK, AT_EACCESS) < 0)
		return -EROFS;
	return lock_write_pid(j);
}

/* ---- open / close ------------------------------------------------------- */

static int journal_alloc(const char *backing, unsigned flags, struct journal **ret)
{
	pthread_rwlockattr_t attr;
	struct journal *j;
	int r;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->root_fd = j->state_fd = j->lock_fd = -1;
	j->cow_fd = j->orphan_fd = -1;
	j->flags = flags;
	/* writer-preferring: a snapshot barrier is not starved by a stream of mutations */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&j->mut_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&j->wconn_lock, NULL);
	pthread_rwlock_init(&j->obj_lock, NULL);
	pthread_mutex_init(&j->pool_lock, NULL);
	pthread_mutex_init(&j->cconn_lock, NULL);
	r = writer_init(j);
	if (r < 0)
		goto fail;
	j->backing = strdup(backing);
	if (!j->backing ||
	    asprintf(&j->db_path, "%s/%s/%s", backing, JOURNAL_STATE_DIR, JOURNAL_DB_NAME) < 0) {
		j->db_path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	*ret = j;
	return 0;
fail:
	writer_free(j);
	free(j->backing);
	free(j);
	return r;
}

static void journal_free(struct journal *j)
{
	struct jconn *c;

	while ((c = j->pool)) {
		j->pool = c->next;
		db_conn_close(c);
	}
	db_conn_close(j->wconn);
	j->wconn = NULL;
	objtab_free(j);
	writer_free(j);
	if (j->cow_inited)
		cow_free(j);
	if (j->state_fd >= 0)
		close(j->state_fd);
	if (j->cconn)
		db_conn_close(j->cconn);
	if (j->lock_fd >= 0)
		close(j->lock_fd);  /* releases the flock */
	if (j->root_fd >= 0)
		close(j->root_fd);
	pthread_rwlock_destroy(&j->mut_lock);
	pthread_mutex_destroy(&j->wconn_lock);
	pthread_rwlock_destroy(&j->obj_lock);
	pthread_mutex_destroy(&j->pool_lock);
	pthread_mutex_destroy(&j->cconn_lock);
	free(j->db_path);
	free(j->backing);
	free(j);
}

static int load_dirty_marks(struct journal *j)
{
	sqlite3_stmt *s = NULL;
	uint64_t tag = atomic_load(&j->interval) + 1;
	int rc;

	rc = sqlite3_prepare_v2(j->wconn->db, "SELECT ino FROM dirty", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct jobj *o = obj_get(j, (uint64_t)sqlite3_column_int64(s, 0));
		if (o) {
			atomic_store(&o->dirty_tag, tag);
			obj_put(o);
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : journal_err(rc);
}

struct journal_keep {
	struct objtab objs;
	uint64_t root_dev, root_bino;  /* the tree they are of */
	int64_t opens;                 /* meta.opens of the open that closed */
};

void journal_keep_free(struct journal_keep *k)
{
	if (!k)
		return;
	objtab_release(&k->objs);
	free(k);
}

/*
 * meta.opens counts the read-write opens of the journal: a table of objects
 * kept by journal_close_keep() is what a fresh load would give only if no
 * other open wrote in between.
 */
static int opens_get(struct jconn *c, int64_t *ret)
{
	int r = db_meta_get_int(c, "opens", ret);

	if (r == -ENOENT) {
		*ret = 0;
		r = 0;
	}
	return r;
}

static int journal_load(struct journal *j, struct jconn *c, struct journal_keep *keep)
{
	int64_t v;
	int r;

	r = db_meta_get_text(c, "source_id", j->source_id, sizeof(j->source_id));
	if (r < 0)
		return r == -ENOENT ? -EUCLEAN : r;
	r = db_meta_get_int(c, "next_ino", &v);
	if (r < 0)
		return r == -ENOENT ? -EUCLEAN : r;
	atomic_store(&j->next_ino, (uint64_t)v);
	r = db_meta_get_int(c, "next_seq", &v);
	if (r < 0)
		return r == -ENOENT ? -EUCLEAN : r;
	j->next_seq = (uint64_t)v;
	atomic_store(&j->committed_seq, (uint64_t)v - 1);
	r = db_meta_get_int(c, "interval", &v);
	if (r < 0)
		return r == -ENOENT ? -EUCLEAN : r;
	atomic_store(&j->interval, (uint64_t)v);
	/*
	 * A configuration open reads peers, snapshots and their status, never
	 * an object: loading every object would make `mirrorfs sync` and
	 * `peer add` cost O(tree) each time while a daemon runs.
	 */
	if (!(j->flags & JOURNAL_OPEN_CONFIG)) {
		r = obj_load_source_ino_max(j, c->db);
		if (r < 0)
			return r;
		if (keep)
			objtab_adopt(j, &keep->objs);
		else
			r = obj_load(j, c->db);
		if (r < 0)
			return r;
	}
	return cow_refresh_watermark(j, c);
}

int journal_open(const char *backing, const struct journal_open_opts *opts,
		 struct journal **ret)
{
	static const struct journal_open_opts no_opts;
	struct journal_keep *keep = opts ? opts->keep : NULL;
	struct journal *j = NULL;
	struct stat st;
	int64_t version, clean, opens = 0;
	bool ro;
	int r;

	if (!opts)
		opts = &no_opts;
	if (!backing || backing[0] != '/') {
		journal_keep_free(keep);
		return -EINVAL;
	}
	ro = opts->flags & (JOURNAL_OPEN_READONLY | JOURNAL_OPEN_CONFIG);
	/* A configuration open is a read-only open plus one connection for peers. */
	r = journal_alloc(backing, opts->flags | (ro ? JOURNAL_OPEN_READONLY : 0), &j);
	if (r < 0) {
		journal_keep_free(keep);
		return r;
	}
	j->history_keep = opts->history_keep ? opts->history_keep : JOURNAL_HISTORY_KEEP;
	j->root_fd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (j->root_fd < 0 || fstat(j->root_fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	j->root_dev = st.st_dev;
	j->root_bino = st.st_ino;
	r = state_dir_open(j);
	if (r < 0)
		goto fail;
	space_init(j);
	r = cow_init(j);
	j->cow_inited = true;
	if (r < 0)
		goto fail;

	if (fstatat(j->state_fd, JOURNAL_DB_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT || ro) {
			r = -errno;
			goto fail;
		}
		r = recover_create(j, j->db_path, opts);
		if (r < 0)
			goto fail;
	}

	r = db_conn_open(j->db_path, ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, &j->wconn);
	if (r < 0)
		goto fail;
	r = db_validate(j->wconn, !ro, &version);
	if (r < 0)
		goto fail;
	if (ro) {
		if (version != JOURNAL_SCHEMA_VERSION) {
			/* cannot upgrade without writing */
			r = -EPROTONOSUPPORT;
			goto fail;
		}
	} else {
		r = db_pragmas(j->wconn, false);
		if (r < 0)
			goto fail;
		r = db_migrate(j->wconn, version);
		if (r < 0)
			goto fail;
		r = opens_get(j->wconn, &opens);
		if (r < 0)
			goto fail;
	}
	if (keep && (ro || keep->opens != opens || keep->root_dev != j->root_dev ||
		     keep->root_bino != j->root_bino)) {
		journal_keep_free(keep);   /* another tree, or written to since */
		keep = NULL;
	}
	r = journal_load(j, j->wconn, keep);
	journal_keep_free(keep);
	keep = NULL;
	if (r < 0)
		goto fail;

	if (ro) {
		/* Readers use the pool; the connection we validated with joins it. */
		db_conn_put(j, j->wconn);
		j->wconn = NULL;
		if (opts->flags & JOURNAL_OPEN_CONFIG) {
			r = db_conn_open(j->db_path, SQLITE_OPEN_READWRITE, &j->cconn);
			if (r < 0)
				goto fail;
		}
		*ret = j;
		return 0;
	}

	j->opens = opens + 1;
	r = db_meta_set_int(j->wconn, "opens", j->opens);
	if (r < 0)
		goto fail;
	r = load_dirty_marks(j);
	if (r < 0)
		goto fail;
	r = db_meta_get_int(j->wconn, "clean", &clean);
	if (r < 0)
		goto fail;
	if (!clean) {
		r = recover_dirty(j);
		if (r < 0)
			goto fail;
		cow_sweep(j);
	} else {
		r = db_meta_set_int(j->wconn, "clean", 0);
		if (r < 0)
			goto fail;
	}
	if (opts->flags & JOURNAL_OPEN_NO_START) {
		/*
		 * The caller is about to fork (daemonize). An sqlite connection
		 * must not cross a fork: the child does not inherit the
		 * parent's POSIX locks on the database, so another process
		 * would think it the last user, checkpoint and delete the WAL
		 * the child still writes to. Close everything; journal_start()
		 * opens again in the process that will use it.
		 */
		db_conn_close(j->wconn);
		j->wconn = NULL;
		db_pool_drain(j);
	} else {
		r = writer_start(j);
		if (r < 0)
			goto fail;
	}
	*ret = j;
	return 0;
fail:
	log_debug("journal: cannot open '%s': %s", backing, journal_strerror(r));
	journal_keep_free(keep);
	writer_stop(j);
	journal_free(j);
	return r;
}

int journal_start(struct journal *j)
{
	int r;

	if (j->flags & JOURNAL_OPEN_READONLY)
		return -EROFS;
	r = lock_write_pid(j);   /* we may be a daemonized child now */
	if (r < 0)
		return r;
	pthread_mutex_lock(&j->wconn_lock);
	r = db_wconn_ensure(j);
	pthread_mutex_unlock(&j->wconn_lock);
	if (r < 0)
		return r;
	return writer_start(j);
}

/* journal_close(); with `keep`, the objects move there if it closed cleanly. */
static int close_journal(struct journal *j, struct journal_keep *keep)
{
	int r = 0, k;

	if (!j)
		return 0;
	if (!(j->flags & JOURNAL_OPEN_READONLY)) {
		/* opened with NO_START and never started: reconnect */
		pthread_mutex_lock(&j->wconn_lock);
		db_wconn_ensure(j);
		pthread_mutex_unlock(&j->wconn_lock);
		r = journal_flush(j);
		writer_stop(j);
		if (!j->wconn && r == 0)
			r = -EIO;
		if (r == 0 && writer_error(j) == 0) {
			/* Everything is recorded: the dirty marks are no longer needed. */
			pthread_mutex_lock(&j->wconn_lock);
			k = db_exec(j->wconn->db, "BEGIN IMMEDIATE; DELETE FROM dirty;");
			if (k == 0)
				k = db_meta_set_int(j->wconn, "clean", 1);
			if (k == 0)
				k = db_exec(j->wconn->db, "COMMIT");
			else
				db_exec(j->wconn->db, "ROLLBACK");
			pthread_mutex_unlock(&j->wconn_lock);
			if (k < 0)
				r = k;
			if (r == 0 && keep) {
				keep->objs = j->objs;
				keep->root_dev = j->root_dev;
				keep->root_bino = j->root_bino;
				keep->opens = j->opens;
				j->objs = (struct objtab){ 0 };
			}
		}
	}
	journal_free(j);
	return r;
}

int journal_close(struct journal *j)
{
	return close_journal(j, NULL);
}

int journal_close_keep(struct journal *j, struct journal_keep **ret_keep)
{
	struct journal_keep *keep = NULL;
	int r;

	*ret_keep = NULL;
	if (j && !(j->flags & JOURNAL_OPEN_READONLY))
		keep = calloc(1, sizeof(*keep));
	r = close_journal(j, keep);
	if (keep && (r < 0 || !keep->objs.nbuckets)) {
		journal_keep_free(keep);
		keep = NULL;
	}
	*ret_keep = keep;
	return r;
}

int journal_root_fd(struct journal *j)
{
	return j->root_fd;
}

const char *journal_source_id(struct journal *j)
{
	return j->source_id;
}

const char *journal_backing_path(struct journal *j)
{
	return j->backing;
}

uint64_t journal_seq(struct journal *j)
{
	return atomic_load(&j->committed_seq);
}
