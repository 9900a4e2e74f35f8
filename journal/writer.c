/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The journal writer: one thread owns the write connection and commits
 * everything submitted since its last transaction as one batch (group
 * commit). Submitters put fixed-size records in a queue and, if they must,
 * wait for their ticket.
 *
 * Inline mode: until journal_start() (JOURNAL_OPEN_NO_START, and during
 * journal_open's recovery) there is no thread; a submitter that waits
 * applies the queued batch itself under wconn_lock. Either way, exactly
 * one thread at a time uses the write connection: the holder of
 * wconn_lock.
 *
 * A batch is one transaction: seqs are assigned in queue order and each
 * record is applied in that order (change row, namespace rows, object
 * rows, dirty rows, rstat deltas); then the rstat accumulators are written,
 * meta.next_seq / next_ino, COMMIT, and the batch's tickets are published.
 * If a batch fails (disk full...), its waiters get the error, the journal
 * turns failed and every later submission gets -EIO: no record is ever
 * dropped silently. Objects changed by lost records were dirty-marked
 * before their syscall, so the next open's recovery records them.
 */
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"

static void *writer_main(void *arg);

/* How long the writer waits to gather records nobody waits for, and how many. */
#define WRITER_LINGER_NS 1000000L
#define WRITER_LINGER_BULK_NS 50000000L   /* JOURNAL_OPEN_BULK */
#define WRITER_LINGER_MAX 4096

int writer_init(struct journal *j)
{
	struct jqueue *q = &j->q;

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->done, NULL);
	pthread_cond_init(&q->space, NULL);
	return 0;
}

void jrec_release(struct jrec *r)
{
	free(r->name);
	free(r->new_name);
	free(r->aux);
	obj_put(r->obj);
	obj_put(r->obj2);
	r->name = r->new_name = r->aux = NULL;
	r->obj = r->obj2 = NULL;
}

void writer_free(struct journal *j)
{
	struct jqueue *q = &j->q;

	for (size_t i = 0; i < q->n; i++)
		jrec_release(&q->recs[i]);
	free(q->recs);
	free(j->wbatch);
	q->recs = j->wbatch = NULL;
	q->n = q->cap = j->wbatch_cap = 0;
	rstat_batch_free(j);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->done);
	pthread_cond_destroy(&q->space);
}

int writer_start(struct journal *j)
{
	struct jqueue *q = &j->q;
	int r;

	pthread_mutex_lock(&q->lock);
	if (q->running) {
		pthread_mutex_unlock(&q->lock);
		return -EALREADY;
	}
	q->stop = false;
	r = -pthread_create(&j->writer_thread, NULL, writer_main, j);
	if (r == 0) {
		q->running = true;
		/* the name `top -H` and scripts/bench show */
		pthread_setname_np(j->writer_thread, "mfs-journal");
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void writer_stop(struct journal *j)
{
	struct jqueue *q = &j->q;
	bool running;

	pthread_mutex_lock(&q->lock);
	running = q->running;
	q->stop = true;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	if (running)
		pthread_join(j->writer_thread, NULL);
	pthread_mutex_lock(&q->lock);
	q->running = false;
	pthread_cond_broadcast(&q->done);
	pthread_mutex_unlock(&q->lock);
}

int writer_error(struct journal *j)
{
	int r;

	pthread_mutex_lock(&j->q.lock);
	r = j->q.err;
	pthread_mutex_unlock(&j->q.lock);
	return r;
}

uint64_t journal_debug_batches(struct journal *j)
{
	return atomic_load(&j->stats.batches);
}

uint64_t journal_debug_records(struct journal *j)
{
	return atomic_load(&j->stats.records);
}

/* q->lock held. Make room for one more record (never fails: see journal_i.h). */
static void queue_reserve(struct jqueue *q)
{
	if (q->n == q->cap) {
		size_t nc = q->cap ? q->cap * 2 : 256;
		struct jrec *nr = realloc(q->recs, nc * sizeof(*nr));
		if (!nr) {
			log_err("journal: out of memory queueing a record");
			abort();
		}
		q->recs = nr;
		q->cap = nc;
	}
}

static void run_batch(struct journal *j);

/* q->lock held; may drop it. Wait (or, inline, work) until the queue has room. */
static void queue_wait_space(struct journal *j)
{
	struct jqueue *q = &j->q;

	while (q->n >= JOURNAL_QUEUE_MAX && !q->err) {
		if (q->running) {
			pthread_cond_wait(&q->space, &q->lock);
		} else {
			pthread_mutex_unlock(&q->lock);
			run_batch(j);
			pthread_mutex_lock(&q->lock);
		}
	}
}

/* Does a record of `op` create, move or remove a name (a namespace row)? */
static bool changes_names(uint16_t op)
{
	switch (op) {
	case JOP_CREATE: case JOP_MKDIR: case JOP_SYMLINK: case JOP_MKNOD: case JOP_LINK:
	case JOP_UNLINK: case JOP_RMDIR: case JOP_RENAME: case JOP_EXCHANGE: case JOP_ADOPT:
		return true;
	default:
		return false;
	}
}

int writer_submit(struct journal *j, struct jrec *r, uint64_t *ret_ticket)
{
	struct jqueue *q = &j->q;

	if (!r->time_ns)
		r->time_ns = util_now_ns();
	pthread_mutex_lock(&q->lock);
	queue_wait_space(j);
	if (q->err) {
		pthread_mutex_unlock(&q->lock);
		jrec_release(r);
		return -EIO;
	}
	queue_reserve(q);
	r->ticket = ++q->last_ticket;
	if (changes_names(r->op))
		q->names_ticket = r->ticket;
	if (r->obj && (r->op == JOP_TRUNCATE || r->op == JOP_FALLOCATE || r->op == JOP_PUNCH ||
		       r->op == JOP_WRITE))
		r->obj->size = r->size;  /* sizes change in queue order */
	q->recs[q->n++] = *r;
	if (ret_ticket)
		*ret_ticket = r->ticket;
	/* the writer lingers for more: wake it for the first record or a full batch */
	if (q->n == 1 || q->n >= WRITER_LINGER_MAX)
		pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	memset(r, 0, sizeof(*r));  /* moved into the queue */
	return 0;
}

void writer_submit_write(struct journal *j, struct jobj *o, int64_t off, int64_t len)
{
	struct jqueue *q = &j->q;
	int64_t end = off + len, now = util_now_ns();
	struct jrec *t;

	pthread_mutex_lock(&q->lock);
	queue_wait_space(j);
	if (q->err)
		goto out;
	if (end > o->size)
		o->size = end;
	t = q->n ? &q->recs[q->n - 1] : NULL;
	if (t && t->op == JOP_WRITE && t->obj == o && off <= t->off + t->len && end >= t->off) {
		/* extend the newest queued record in place */
		int64_t tend = t->off + t->len;
		if (off < t->off)
			t->off = off;
		t->len = UTIL_MAX(end, tend) - t->off;
		t->size = o->size;
		t->time_ns = now;
		goto out;
	}
	queue_reserve(q);
	t = &q->recs[q->n++];
	*t = (struct jrec){ .op = JOP_WRITE, .ticket = ++q->last_ticket, .time_ns = now,
			    .obj = obj_ref(o), .off = off, .len = len, .size = o->size };
	if (q->n == 1 || q->n >= WRITER_LINGER_MAX)
		pthread_cond_signal(&q->work);
out:
	pthread_mutex_unlock(&q->lock);
}

int writer_wait(struct journal *j, uint64_t ticket)
{
	struct jqueue *q = &j->q;
	int r = 0;

	pthread_mutex_lock(&q->lock);
	while (q->done_ticket < ticket) {
		if (q->running) {
			/* someone waits: the writer stops lingering (writer_main) */
			q->waiters++;
			pthread_cond_signal(&q->work);
			pthread_cond_wait(&q->done, &q->lock);
			q->waiters--;
		} else {
			pthread_mutex_unlock(&q->lock);
			run_batch(j);
			pthread_mutex_lock(&q->lock);
		}
	}
	if (q->err && ticket >= q->err_ticket)
		r = ticket <= q->err_last ? q->err : -EIO;
	pthread_mutex_unlock(&q->lock);
	return r;
}

int writer_submit_wait(struct journal *j, struct jrec *r)
{
	uint64_t t;
	int k = writer_submit(j, r, &t);

	return k < 0 ? k : writer_wait(j, t);
}

int writer_flush_names(struct journal *j)
{
	uint64_t t;

	if (j->flags & JOURNAL_OPEN_READONLY)
		return 0;
	pthread_mutex_lock(&j->q.lock);
	t = j->q.names_ticket;
	pthread_mutex_unlock(&j->q.lock);
	return writer_wait(j, t);
}

int journal_flush(struct journal *j)
{
	uint64_t t;

	if (j->flags & JOURNAL_OPEN_READONLY)
		return 0;
	int r;

	pthread_mutex_lock(&j->q.lock);
	t = j->q.last_ticket;
	pthread_mutex_unlock(&j->q.lock);
	r = writer_wait(j, t);
	/* Whoever flushes wants to know why records were lost: the first cause. */
	if (r < 0) {
		pthread_mutex_lock(&j->q.lock);
		if (j->q.err)
			r = j->q.err;
		pthread_mutex_unlock(&j->q.lock);
	}
	return r;
}

/* ---- applying records ---------------------------------------------------- */

static int change_insert(struct journal *j, const struct jrec *rec, uint64_t seq)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(j->wconn, ST_CHANGE_INSERT, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)seq);
	sqlite3_bind_int64(s, 2, rec->time_ns);
	sqlite3_bind_int(s, 3, rec->op);
	sqlite3_bind_int64(s, 4, rec->obj ? (int64_t)rec->obj->ino : 0);
	if (rec->name || rec->parent)
		sqlite3_bind_int64(s, 5, (int64_t)rec->parent);
	db_bind_name(s, 6, rec->name);
	if (rec->new_name)
		sqlite3_bind_int64(s, 7, (int64_t)rec->new_parent);
	db_bind_name(s, 8, rec->new_name);
	switch (rec->op) {
	case JOP_WRITE: case JOP_TRUNCATE: case JOP_FALLOCATE: case JOP_PUNCH:
		sqlite3_bind_int64(s, 9, rec->off);
		sqlite3_bind_int64(s, 10, rec->len);
		sqlite3_bind_int64(s, 12, rec->size);
		break;
	case JOP_SETXATTR: case JOP_REMOVEXATTR:
		sqlite3_bind_text(s, 11, rec->aux, -1, SQLITE_STATIC);
		break;
	default:
		break;
	}
	if (rec->mode)
		sqlite3_bind_int64(s, 13, rec->mode);
	if (rec->obj2)
		sqlite3_bind_int64(s, 14, (int64_t)rec->obj2->ino);
	return db_step_done(s);
}

static int ns_kill(struct journal *j, uint64_t parent, const char *name, uint64_t seq,
		   uint64_t *ret_ino);

static int ns_insert(struct journal *j, uint64_t parent, const char *name, uint64_t ino, uint64_t seq)
{
	sqlite3_stmt *s;
	uint64_t stale = 0;
	int r, tries;

	for (tries = 0; tries < 2; tries++) {
		r = db_stmt(j->wconn, ST_NS_INSERT, &s);
		if (r < 0)
			return r;
		sqlite3_bind_int64(s, 1, (int64_t)parent);
		db_bind_name(s, 2, name);
		sqlite3_bind_int64(s, 3, (int64_t)ino);
		sqlite3_bind_int64(s, 4, (int64_t)seq);
		r = db_step_done(s);
		if (r != -EEXIST || tries > 0)
			return r;
		/*
		 * The journal still has a live entry under this name, but the
		 * syscall that made the new one succeeded: the old one vanished
		 * behind the mount's back. The backing tree is the truth; one
		 * drifted name must not stop the journal (`mirrorfs check
		 * --repair` settles the rest).
		 */
		r = ns_kill(j, parent, name, seq, &stale);
		if (r < 0)
			return r;
		log_warning("journal: entry '%s' in directory %" PRIu64 " replaced object %"
			    PRIu64 ", which vanished behind the mount's back", name, parent, stale);
	}
	return r;
}

/* Kill the live entry (parent, name); *ret_ino is its ino, 0 if there was none. */
static int ns_kill(struct journal *j, uint64_t parent, const char *name, uint64_t seq,
		   uint64_t *ret_ino)
{
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(j->wconn, ST_NS_KILL, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	db_bind_name(s, 2, name);
	sqlite3_bind_int64(s, 3, (int64_t)seq);
	*ret_ino = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*ret_ino = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : journal_err(rc);
}

static int obj_set_int(struct journal *j, enum jstmt id, uint64_t ino, int64_t v)
{
	sqlite3_stmt *s;
	int r = db_stmt(j->wconn, id, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, v);
	return db_step_done(s);
}

static int obj_db_insert(struct journal *j, struct jobj *o, uint64_t seq, const char *target)
{
	sqlite3_stmt *s;
	int r = db_stmt(j->wconn, ST_OBJ_INSERT, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)o->ino);
	sqlite3_bind_int64(s, 2, (int64_t)o->dev);
	sqlite3_bind_int64(s, 3, (int64_t)o->bino);
	sqlite3_bind_int64(s, 4, o->type);
	sqlite3_bind_int64(s, 5, (int64_t)seq);
	sqlite3_bind_int64(s, 6, o->wsize);
	sqlite3_bind_int64(s, 7, o->nlink);
	db_bind_name(s, 8, target);
	return db_step_done(s);
}

static int rstat_row_insert(struct journal *j, uint64_t ino, int64_t t)
{
	sqlite3_stmt *s;
	int r = db_stmt(j->wconn, ST_RSTAT_INSERT, &s);

	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, t);
	sqlite3_bind_int64(s, 3, 0);
	sqlite3_bind_int64(s, 4, 0);
	sqlite3_bind_int64(s, 5, 0);
	return db_step_done(s);
}

/* What an entry naming `o` adds to its directory's totals. */
struct contrib {
	int64_t bytes, files, subdirs;
};

static int contrib_of(struct journal *j, struct jobj *o, struct contrib *ret)
{
	struct journal_rstat rs;
	int r;

	if (!o) {
		*ret = (struct contrib){ 0, 0, 0 };
		return 0;
	}
	if (!S_ISDIR(o->type)) {
		*ret = (struct contrib){ S_ISREG(o->type) ? o->wsize : 0, 1, 0 };
		return 0;
	}
	/* the caller flushed the accumulators: the row is current */
	r = rstat_read(j->wconn, o->ino, &rs);
	if (r == -ENOENT) {
		*ret = (struct contrib){ 0, 0, 1 };
		return 0;
	}
	if (r < 0)
		return r;
	*ret = (struct contrib){ (int64_t)rs.rbytes, (int64_t)rs.rfiles, (int64_t)rs.rsubdirs + 1 };
	return 0;
}

static void dir_add(struct journal *j, uint64_t dir, const struct contrib *c, int sign, int64_t t)
{
	rstat_dir_delta(j, dir, sign * c->bytes, sign * c->files, sign * c->subdirs, t);
}

static int obj_die(struct journal *j, struct jobj *o, uint64_t seq)
{
	sqlite3_stmt *s;
	int r;

	r = obj_set_int(j, ST_OBJ_DIE, o->ino, (int64_t)seq);
	if (r < 0)
		return r;
	r = obj_set_int(j, ST_NS_KILL_INO, o->ino, (int64_t)seq);
	if (r < 0)
		return r;
	if (S_ISDIR(o->type)) {
		r = db_stmt(j->wconn, ST_RSTAT_DELETE, &s);
		if (r < 0)
			return r;
		sqlite3_bind_int64(s, 1, (int64_t)o->ino);
		r = db_step_done(s);
		if (r < 0)
			return r;
	}
	o->nlink = 0;
	obj_remove(j, o);
	return 0;
}

static int live_links(struct journal *j, uint64_t ino, int64_t *ret)
{
	sqlite3_stmt *s;
	int r, rc;

	r = db_stmt(j->wconn, ST_NS_LIVE_COUNT, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : journal_err(rc);
}

/* `o` lost the entry (dir, name); it dies per `dies`, else its nlink drops. */
static int lose_link(struct journal *j, struct jobj *o, bool dies, bool if_orphan, uint64_t seq, int64_t t)
{
	int64_t n = 0;
	int r;

	if (!dies && if_orphan) {
		r = live_links(j, o->ino, &n);
		if (r < 0)
			return r;
		dies = n == 0;
	}
	if (dies)
		return obj_die(j, o, seq);
	if (o->nlink > 0)
		o->nlink--;
	r = obj_set_int(j, ST_OBJ_SET_NLINK, o->ino, o->nlink);
	if (r < 0)
		return r;
	rstat_obj_delta(j, o, 0, t);  /* ctime of the remaining links' parents */
	return 0;
}

static int set_size(struct journal *j, struct jobj *o, int64_t size, int64_t t)
{
	int64_t d = size - o->wsize;

	if (S_ISREG(o->type))
		rstat_obj_delta(j, o, d, t);
	else
		rstat_obj_delta(j, o, 0, t);
	if (!d)
		return 0;
	o->wsize = size;
	return obj_set_int(j, ST_OBJ_SET_SIZE, o->ino, size);
}

static int apply_new_entry(struct journal *j, struct jrec *rec, uint64_t seq)
{
	struct jobj *o = rec->obj;
	struct contrib c;
	int r;

	if (rec->op != JOP_ADOPT || (rec->flags & JREC_NEW)) {
		o->wsize = rec->size;
		o->nlink = 1;
		r = obj_db_insert(j, o, seq, S_ISLNK(o->type) ? rec->aux : NULL);
		if (r < 0)
			return r;
		if (S_ISDIR(o->type)) {
			o->parent = rec->parent;
			o->rctime = rec->time_ns;
			r = rstat_row_insert(j, o->ino, rec->time_ns);
			if (r < 0)
				return r;
		}
	} else {
		/* another name for a known object (recovery, check) */
		if (S_ISDIR(o->type)) {
			r = rstat_flush(j);
			if (r < 0)
				return r;
			o->parent = rec->parent;
		} else {
			r = rstat_flush_objects(j);
			if (r < 0)
				return r;
		}
		o->nlink++;
		r = obj_set_int(j, ST_OBJ_SET_NLINK, o->ino, o->nlink);
		if (r < 0)
			return r;
		rstat_obj_delta(j, o, 0, rec->time_ns);
	}
	r = ns_insert(j, rec->parent, rec->name, o->ino, seq);
	if (r < 0)
		return r;
	r = contrib_of(j, o, &c);
	if (r < 0)
		return r;
	dir_add(j, rec->parent, &c, 1, rec->time_ns);
	if (rec->flags & JREC_DIRTY_NEW) {
		sqlite3_stmt *s;
		r = db_stmt(j->wconn, ST_DIRTY_INSERT, &s);
		if (r < 0)
			return r;
		sqlite3_bind_int64(s, 1, (int64_t)o->ino);
		sqlite3_bind_int64(s, 2, (int64_t)seq);
		r = db_step_done(s);
	}
	return r;
}

static int apply_unlink(struct journal *j, struct jrec *rec, uint64_t seq)
{
	struct jobj *o = rec->obj;
	uint64_t killed;
	struct contrib c;
	int r;

	r = o && S_ISDIR(o->type) ? rstat_flush(j) : rstat_flush_objects(j);
	if (r < 0)
		return r;
	r = contrib_of(j, o, &c);
	if (r < 0)
		return r;
	r = ns_kill(j, rec->parent, rec->name, seq, &killed);
	if (r < 0)
		return r;
	if (o && killed != o->ino) {
		log_debug("journal: unlink of a name the journal did not have (ino %llu)",
			  (unsigned long long)o->ino);
		c = (struct contrib){ 0, 0, 0 };
	}
	dir_add(j, rec->parent, &c, -1, rec->time_ns);
	if (!o || (killed != o->ino && !(rec->flags & JREC_DIES)))
		return 0;  /* the name was not a link the journal counted */
	return lose_link(j, o, rec->flags & JREC_DIES, rec->flags & JREC_DIES_IF_ORPHAN,
			 seq, rec->time_ns);
}

static int apply_rename(struct journal *j, struct jrec *rec, uint64_t seq)
{
	struct jobj *o = rec->obj, *v = rec->obj2;
	struct contrib c, cv;
	uint64_t killed;
	int64_t t = rec->time_ns;
	int r;

	if (S_ISDIR(o->type) || (v && S_ISDIR(v->type)))
		r = rstat_flush(j);
	else
		r = rstat_flush_objects(j);
	if (r < 0)
		return r;
	r = contrib_of(j, o, &c);
	if (r == 0)
		r = contrib_of(j, v, &cv);
	if (r < 0)
		return r;

	if (rec->op == JOP_EXCHANGE) {
		r = ns_kill(j, rec->parent, rec->name, seq, &killed);
		if (r == 0)
			r = ns_kill(j, rec->new_parent, rec->new_name, seq, &killed);
		if (r == 0)
			r = ns_insert(j, rec->parent, rec->name, v->ino, seq);
		if (r == 0)
			r = ns_insert(j, rec->new_parent, rec->new_name, o->ino, seq);
		if (r < 0)
			return r;
		if (rec->parent != rec->new_parent) {
			dir_add(j, rec->parent, &c, -1, t);
			dir_add(j, rec->parent, &cv, 1, t);
			dir_add(j, rec->new_parent, &cv, -1, t);
			dir_add(j, rec->new_parent, &c, 1, t);
		} else {
			rstat_dir_delta(j, rec->parent, 0, 0, 0, t);
		}
		if (S_ISDIR(o->type))
			o->parent = rec->new_parent;
		if (S_ISDIR(v->type))
			v->parent = rec->parent;
		rstat_obj_delta(j, o, 0, t);
		rstat_obj_delta(j, v, 0, t);
		return 0;
	}

	if (v) {
		r = ns_kill(j, rec->new_parent, rec->new_name, seq, &killed);
		if (r < 0)
			return r;
		dir_add(j, rec->new_parent, &cv, -1, t);
		r = lose_link(j, v, rec->flags & JREC_DIES2, rec->flags & JREC_DIES_IF_ORPHAN, seq, t);
		if (r < 0)
			return r;
	}
	r = ns_kill(j, rec->parent, rec->name, seq, &killed);
	if (r == 0)
		r = ns_insert(j, rec->new_parent, rec->new_name, o->ino, seq);
	if (r < 0)
		return r;
	dir_add(j, rec->parent, &c, -1, t);
	dir_add(j, rec->new_parent, &c, 1, t);
	if (S_ISDIR(o->type))
		o->parent = rec->new_parent;
	rstat_obj_delta(j, o, 0, t);
	return 0;
}

static int apply_link(struct journal *j, struct jrec *rec, uint64_t seq)
{
	struct jobj *o = rec->obj;
	struct contrib c;
	int r;

	r = rstat_flush_objects(j);
	if (r < 0)
		return r;
	r = ns_insert(j, rec->new_parent, rec->new_name, o->ino, seq);
	if (r < 0)
		return r;
	o->nlink++;
	r = obj_set_int(j, ST_OBJ_SET_NLINK, o->ino, o->nlink);
	if (r < 0)
		return r;
	r = contrib_of(j, o, &c);
	if (r < 0)
		return r;
	dir_add(j, rec->new_parent, &c, 1, rec->time_ns);
	rstat_obj_delta(j, o, 0, rec->time_ns);
	return 0;
}

static bool write_mergeable(struct journal *j, const struct jobj *o, const struct jrec *rec)
{
	return o->wlast_seq && o->wlast_interval == atomic_load(&j->interval) &&
	       rec->off <= o->wlast_end && rec->off + rec->len >= o->wlast_off;
}

static int apply_write(struct journal *j, struct jrec *rec)
{
	struct jobj *o = rec->obj;
	bool merged = false;
	sqlite3_stmt *s;
	int r;

	if (write_mergeable(j, o, rec)) {
		/*
		 * The merged row moves to a new seq: a reader following the log
		 * (`journal --since`) must see that it grew, and its path is
		 * the object's path as of the newest write it covers.
		 */
		int64_t off = UTIL_MIN(o->wlast_off, rec->off);
		int64_t end = UTIL_MAX(o->wlast_end, rec->off + rec->len);

		r = db_stmt(j->wconn, ST_CHANGE_MERGE_WRITE, &s);
		if (r < 0)
			return r;
		sqlite3_bind_int64(s, 1, (int64_t)o->wlast_seq);
		sqlite3_bind_int64(s, 2, off);
		sqlite3_bind_int64(s, 3, end - off);
		sqlite3_bind_int64(s, 4, rec->size);
		sqlite3_bind_int64(s, 5, (int64_t)j->next_seq);
		sqlite3_bind_int64(s, 6, rec->time_ns);
		r = db_step_done(s);
		if (r < 0)
			return r;
		/* 0 rows: compaction folded the row away meanwhile; a new one then */
		merged = sqlite3_changes(j->wconn->db) > 0;
		if (merged) {
			o->wlast_seq = j->next_seq++;
			o->wlast_off = off;
			o->wlast_end = end;
		}
	}
	if (!merged) {
		uint64_t seq = j->next_seq++;

		r = change_insert(j, rec, seq);
		if (r < 0)
			return r;
		o->wlast_seq = seq;
		o->wlast_interval = atomic_load(&j->interval);
		o->wlast_off = rec->off;
		o->wlast_end = rec->off + rec->len;
	}
	return set_size(j, o, rec->size, rec->time_ns);
}

static int apply_one(struct journal *j, struct jrec *rec)
{
	struct jobj *o = rec->obj;
	sqlite3_stmt *s;
	uint64_t seq;
	int r;

	switch (rec->op) {
	case JREC_SYNC:
		return 0;
	case JREC_DIRTY:
		r = db_stmt(j->wconn, ST_DIRTY_INSERT, &s);
		if (r < 0)
			return r;
		sqlite3_bind_int64(s, 1, (int64_t)o->ino);
		sqlite3_bind_int64(s, 2, (int64_t)j->next_seq);
		return db_step_done(s);
	case JREC_RSTAT_SET:
		r = rstat_flush(j);
		if (r < 0)
			return r;
		r = db_stmt(j->wconn, ST_RSTAT_SET, &s);
		if (r < 0)
			return r;
		sqlite3_bind_int64(s, 1, (int64_t)o->ino);
		sqlite3_bind_int64(s, 2, rec->off);
		sqlite3_bind_int64(s, 3, rec->len);
		sqlite3_bind_int64(s, 4, rec->size);
		sqlite3_bind_int64(s, 5, rec->time_ns);
		return db_step_done(s);
	case JOP_WRITE:
		return apply_write(j, rec);
	default:
		break;
	}

	if (o)
		o->wlast_seq = 0;  /* a later write must not be merged across this */
	seq = j->next_seq++;
	r = change_insert(j, rec, seq);
	if (r < 0)
		return r;
	switch (rec->op) {
	case JOP_CREATE: case JOP_MKDIR: case JOP_SYMLINK: case JOP_MKNOD: case JOP_ADOPT:
		return apply_new_entry(j, rec, seq);
	case JOP_LINK:
		return apply_link(j, rec, seq);
	case JOP_UNLINK: case JOP_RMDIR:
		return apply_unlink(j, rec, seq);
	case JOP_RENAME: case JOP_EXCHANGE:
		return apply_rename(j, rec, seq);
	case JOP_TRUNCATE: case JOP_FALLOCATE: case JOP_PUNCH:
		return set_size(j, o, rec->size, rec->time_ns);
	case JOP_SETATTR: case JOP_SETXATTR: case JOP_REMOVEXATTR:
		rstat_obj_delta(j, o, 0, rec->time_ns);
		return 0;
	default:
		log_err("journal: unknown record type %u", rec->op);
		return -EINVAL;
	}
}

static int batch_apply(struct journal *j, struct jrec *recs, size_t n)
{
	uint64_t seq0 = j->next_seq;
	bool want_full = false;
	int r;

	for (size_t i = 0; i < n; i++)
		if (recs[i].op == JREC_SYNC)
			want_full = true;
	r = db_wconn_sync(j, want_full);
	if (r < 0)
		return r;
	r = db_exec_stmt(j->wconn, ST_BEGIN);
	if (r < 0)
		return r;
	rstat_batch_reset(j);
	for (size_t i = 0; i < n; i++) {
		r = apply_one(j, &recs[i]);
		if (r < 0)
			goto fail;
	}
	r = rstat_flush(j);
	if (r < 0)
		goto fail;
	r = db_meta_set_int(j->wconn, "next_seq", (int64_t)j->next_seq);
	if (r == 0)
		r = db_meta_set_int(j->wconn, "next_ino", (int64_t)atomic_load(&j->next_ino));
	/*
	 * A commit that changes no page writes nothing to the WAL, so it
	 * syncs nothing either: a batch that must make everything before it
	 * durable changes one row for sure.
	 */
	if (r == 0 && want_full)
		r = db_meta_set_int(j->wconn, "synced_ns", util_now_ns());
	if (r < 0)
		goto fail;
	r = db_exec_stmt(j->wconn, ST_COMMIT);
	if (r < 0)
		goto fail;
	atomic_store(&j->committed_seq, j->next_seq - 1);
	atomic_fetch_add(&j->stats.batches, 1);
	atomic_fetch_add(&j->stats.records, n);
	j->compact_records += n;
	if (j->compact_records >= JOURNAL_COMPACT_EVERY) {
		j->compact_records = 0;
		atomic_store(&j->compact_due, true);
	}
	return 0;
fail:
	db_exec_stmt(j->wconn, ST_ROLLBACK);
	rstat_batch_reset(j);
	j->next_seq = seq0;
	return r;
}

/* Apply whatever is queued as one batch (writer thread or inline). */
static void run_batch(struct journal *j)
{
	struct jqueue *q = &j->q;
	uint64_t first, last;
	struct jrec *tmp;
	size_t n, tcap;
	bool failed;
	int r, conn_err;

	pthread_mutex_lock(&j->wconn_lock);
	/* inline mode after a NO_START open: the connection is made on first use */
	conn_err = db_wconn_ensure(j);
	pthread_mutex_lock(&q->lock);
	n = q->n;
	if (n == 0) {
		pthread_mutex_unlock(&q->lock);
		pthread_mutex_unlock(&j->wconn_lock);
		return;
	}
	tmp = j->wbatch;
	tcap = j->wbatch_cap;
	j->wbatch = q->recs;
	j->wbatch_cap = q->cap;
	q->recs = tmp;
	q->cap = tcap;
	q->n = 0;
	first = j->wbatch[0].ticket;
	last = q->last_ticket;
	failed = q->err != 0;
	pthread_cond_broadcast(&q->space);
	pthread_mutex_unlock(&q->lock);

	/* no connection: the batch fails as a failed commit would */
	r = failed ? -EIO : conn_err < 0 ? conn_err : batch_apply(j, j->wbatch, n);
	for (size_t i = 0; i < n; i++)
		jrec_release(&j->wbatch[i]);

	pthread_mutex_lock(&q->lock);
	q->done_ticket = last;
	if (r < 0 && !q->err) {
		q->err = r;
		q->err_ticket = first;
		q->err_last = last;
		atomic_store(&j->failed, true);
		log_err("journal: cannot commit %zu record(s) to '%s': %s; "
			"the journal is read-only until it is reopened",
			n, j->db_path, journal_strerror(r));
	}
	pthread_cond_broadcast(&q->done);
	pthread_mutex_unlock(&q->lock);
	pthread_mutex_unlock(&j->wconn_lock);
}

static void *writer_main(void *arg)
{
	struct journal *j = arg;
	struct jqueue *q = &j->q;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->n == 0 && !q->stop)
			pthread_cond_wait(&q->work, &q->lock);
		if (q->n == 0 && q->stop)
			break;
		/*
		 * Group commit: nobody waits for these records (the dirty marks
		 * make them recoverable), so linger a moment and commit many in
		 * one transaction - unless someone waits (a dirty mark, fsync,
		 * flush, snapshot) or the batch is already large.
		 */
		if (!q->stop && q->waiters == 0 && q->n < WRITER_LINGER_MAX) {
			struct timespec dl;

			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_nsec += j->flags & JOURNAL_OPEN_BULK ? WRITER_LINGER_BULK_NS :
				      WRITER_LINGER_NS;
			if (dl.tv_nsec >= 1000000000L) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000L;
			}
			while (!q->stop && q->waiters == 0 && q->n < WRITER_LINGER_MAX)
				if (pthread_cond_timedwait(&q->work, &q->lock, &dl) == ETIMEDOUT)
					break;
		}
		pthread_mutex_unlock(&q->lock);
		run_batch(j);
		/* one bounded step between batches: records never wait long */
		if (atomic_load(&j->compact_due) && !atomic_load(&j->failed) &&
		    compact_run(j, 1, NULL) < 0)
			atomic_store(&j->compact_due, false);   /* retried after more records */
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}
