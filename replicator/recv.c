/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The receiver's conversation (`mirrorfs serve`, `mirrorfs receive`): for
 * each HELLO the guards, READY with the resume position, the body applied
 * record by record (apply.c), and after a good TRAILER the snapshot and ACK.
 *
 * Resume state lives in the replica's journal:
 *   recv_pos(source, P, S)          last applied record, saved in batches;
 *   recv_pos(source, P, MARKER)     a tag of S while a stream P -> S is
 *                                   partially applied, so no stream P -> S'
 *                                   is applied over it (the live tree is
 *                                   no longer at P; it needs S or a rollback).
 * A full stream uses "" for P. MARKER contains a '/', so it is never a
 * snapshot name.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "recv_i.h"
#include "repl_i.h"

#define MARKER "/in-progress"
#define DEFAULT_SAVE_EVERY 2048u
/* ... or after this much file data, so that a resume re-sends little */
#define SAVE_EVERY_BYTES ((uint64_t)4 << 20)
#define DEFAULT_SAVE_MS 1000

struct serve {
	struct journal *j;            /* given by the caller, or NULL */
	const char *replica_dir;
	const struct repl_serve_opts *o;
	struct repl_reader *rd;
	struct repl_writer *w;        /* NULL in one-way mode */
	struct repl_transport *t;
	struct repl_serve_stats *stats;
	/*
	 * The replica's objects between two requests: the journal is closed
	 * (its lock released) while the connection idles, but reopening it
	 * does not load the whole tree again unless someone else wrote to it.
	 */
	struct journal_keep *keep;
	int error;                    /* one-way: why the stream was refused */
	char errmsg[640];
};

/*
 * Non-zero tag of a stream to snapshot `name` in this stream version
 * (FNV-1a, 64 bit). The version is in it because the record order is: a
 * stream that another version began cannot be resumed by record number.
 * (Version 1 tagged the name alone.)
 */
static uint64_t stream_tag(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ REPL_STREAM_VERSION) * 0x100000001b3ULL;
	return h | 1;
}

static int reply_refuse(struct serve *sv, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* REFUSE (a guard): the connection goes on. Returns 1, or -errno if the reply failed. */
static int reply_refuse(struct serve *sv, int error, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(sv->errmsg, sizeof(sv->errmsg), fmt, ap);
	va_end(ap);
	if (sv->w)   /* one-way: the caller reports it */
		log_notice("refused a stream from %s: %s", sv->t->peer, sv->errmsg);
	sv->stats->refused++;
	sv->error = error;
	if (!sv->w)
		return 1;
	r = repl_writer_refuse(sv->w, error, sv->errmsg);
	return r < 0 ? repl_fail(r, "%s", repl_writer_errmsg(sv->w)) : 1;
}

/* NAK: the stream failed and the connection ends with `error`. */
static int reply_nak(struct serve *sv, int error, const char *msg)
{
	if (sv->w) {
		log_notice("stream from %s failed: %s", sv->t->peer, msg);
		repl_writer_nak(sv->w, error, msg);   /* best effort: the peer may be gone */
	}
	return repl_fail(error, "%s", msg);
}

static int save_pos(struct recv *c, bool force)
{
	int64_t now = util_mono_ns();
	int r;

	if (c->applied <= c->saved)
		return 0;
	if (!force && c->applied - c->saved < c->save_every &&
	    c->unsaved_bytes < SAVE_EVERY_BYTES && now - c->saved_ns < c->save_every_ns)
		return 0;
	/* what the position covers must be committed first */
	r = journal_flush(c->j);
	if (r == 0)
		r = journal_recv_pos_set(c->j, c->source, c->from, c->to, c->applied);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot save the resume position");
	c->saved = c->applied;
	c->unsaved_bytes = 0;
	c->saved_ns = now;
	return 0;
}

static int forget_stream(struct recv *c)
{
	int r = journal_recv_pos_set(c->j, c->source, c->from, c->to, 0);

	if (r == 0)
		r = journal_recv_pos_set(c->j, c->source, c->from, MARKER, 0);
	return r;
}

/*
 * The guards. Returns 0 to go on with *ret_resume (K) and *ret_resuming
 * (a partial stream of this (P, S) exists), 1 when answered (REFUSE, or
 * ACK of a retried complete stream), or -errno.
 */
static int guards(struct serve *sv, struct recv *c, uint64_t *ret_resume, bool *ret_resuming)
{
	struct journal_snap *snaps = NULL;
	char owner[REPL_UUID_STRLEN + 1] = "";
	const char *self = journal_source_id(c->j);
	const struct journal_snap *newest;
	uint64_t marker = 0, k = 0;
	bool have_to = false, have_from = false;
	size_t n = 0;
	int r;

	if (self && strcmp(self, c->source) == 0)
		return reply_refuse(sv, -EINVAL, "replica '%s' is the source itself",
				    journal_backing_path(c->j));
	r = journal_replica_owner(c->j, owner);
	if (r < 0)
		return reply_refuse(sv, r, "cannot read the owner of the replica: %s",
				    journal_strerror(r));
	if (owner[0] && strcmp(owner, c->source) != 0)
		return reply_refuse(sv, -EPERM, "replica is mirrored from %s", owner);

	r = journal_snap_list(c->j, false, &snaps, &n);
	if (r < 0)
		return reply_refuse(sv, r, "cannot list the replica's snapshots: %s",
				    journal_strerror(r));
	newest = n ? &snaps[n - 1] : NULL;
	for (size_t i = 0; i < n; i++) {
		have_to |= strcmp(snaps[i].name, c->to) == 0;
		have_from |= c->from[0] && strcmp(snaps[i].name, c->from) == 0;
	}
	if (have_to) {
		bool retry = strcmp(newest->name, c->to) == 0 &&
			     (c->from[0] ? n >= 2 && strcmp(snaps[n - 2].name, c->from) == 0 : n == 1);

		if (!retry) {
			r = reply_refuse(sv, -EEXIST, "replica already has snapshot '%s'", c->to);
			goto out;
		}
		/* The stream made it; its ACK was lost. */
		r = forget_stream(c);
		if (r < 0) {
			r = reply_refuse(sv, r, "cannot clear the resume position: %s",
					 journal_strerror(r));
			goto out;
		}
		log_info("snapshot '%s' from %s was complete already", c->to, sv->t->peer);
		sv->stats->streams++;
		snprintf(sv->stats->last_snapshot, sizeof(sv->stats->last_snapshot), "%s", c->to);
		r = sv->w ? repl_writer_ack(sv->w, c->to) : 0;
		r = r < 0 ? repl_fail(r, "%s", repl_writer_errmsg(sv->w)) : 1;
		goto out;
	}
	if (c->from[0] && !have_from) {
		r = reply_refuse(sv, -ENOENT, "replica lacks snapshot '%s'", c->from);
		goto out;
	}
	if (c->from[0] && strcmp(newest->name, c->from) != 0) {
		r = reply_refuse(sv, -ESTALE, "replica has snapshots newer than '%s' (newest is '%s')",
				 c->from, newest->name);
		goto out;
	}
	if (!c->from[0] && newest) {
		r = reply_refuse(sv, -EEXIST, "replica already has snapshots (newest is '%s'); "
				 "send an incremental stream", newest->name);
		goto out;
	}

	r = journal_recv_pos_get(c->j, c->source, c->from, MARKER, &marker);
	if (r == 0)
		r = journal_recv_pos_get(c->j, c->source, c->from, c->to, &k);
	if (r < 0) {
		r = reply_refuse(sv, r, "cannot read the resume position: %s", journal_strerror(r));
		goto out;
	}
	if (marker && marker != stream_tag(c->to)) {
		r = reply_refuse(sv, -EBUSY, "replica holds a partially received stream from '%s' "
				 "to another snapshot, or of another stream version; send that "
				 "one again, or roll the replica back to '%s'",
				 c->from[0] ? c->from : "(nothing)", c->from[0] ? c->from : "(empty)");
		goto out;
	}
	if (!marker && !c->from[0]) {
		int e = repl_recv_root_is_empty(c);

		if (e <= 0) {
			r = e == 0 ? reply_refuse(sv, -ENOTEMPTY, "replica '%s' is not empty",
						  journal_backing_path(c->j)) :
				reply_refuse(sv, e, "cannot read the replica root: %s", strerror(-e));
			goto out;
		}
	}
	r = journal_replica_claim(c->j, c->source, owner);
	if (r == -EEXIST) {
		r = reply_refuse(sv, -EPERM, "replica is mirrored from %s", owner);
		goto out;
	}
	if (r == 0 && !marker)
		r = journal_recv_pos_set(c->j, c->source, c->from, MARKER, stream_tag(c->to));
	if (r < 0) {
		r = reply_refuse(sv, r, "cannot record the stream on the replica: %s",
				 journal_strerror(r));
		goto out;
	}
	*ret_resume = marker ? k : 0;
	*ret_resuming = marker != 0;
	r = 0;
out:
	free(snaps);
	return r;
}

/*
 * Starting writeback early. A stream's data must be on disk before its
 * snapshot is taken, but the kernel starts writing dirty pages back only at
 * 10% of memory or after 30 s: the syncfs() before the snapshot waited for
 * the whole of an initial sync. After every flush_every bytes of data
 * (repl_serve_opts) a thread runs syncfs() while the stream goes on, so
 * that the last one finds little to do. Its first error is the stream's (a
 * later syncfs() through another fd would not report it again).
 */
#define DEFAULT_FLUSH_EVERY ((uint64_t)128 << 20)

struct flusher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;                 /* the replica root (syncfs needs a non-O_PATH fd) */
	bool running, failed, due, stop;
	int err;                /* first syncfs() error, under lock */
	uint64_t every;
	uint64_t unflushed;     /* data applied since the last start (apply thread) */
};

static void *flusher_main(void *arg)
{
	struct flusher *f = arg;
	int r;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->due && !f->stop)
			pthread_cond_wait(&f->cond, &f->lock);
		if (f->stop)
			break;
		f->due = false;
		pthread_mutex_unlock(&f->lock);
		r = syncfs(f->fd) < 0 ? -errno : 0;
		pthread_mutex_lock(&f->lock);
		if (r < 0 && !f->err)
			f->err = r;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* `bytes` of data applied: start a syncfs() in the background now and then (true). */
static bool flusher_add(struct flusher *f, int rootfd, uint64_t bytes)
{
	f->unflushed += bytes;
	if (f->unflushed < f->every || f->failed)
		return false;
	f->unflushed = 0;
	if (!f->running) {
		f->fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (f->fd < 0) {
			f->failed = true;   /* the syncfs() at the end does it all */
			return false;
		}
		pthread_mutex_init(&f->lock, NULL);
		pthread_cond_init(&f->cond, NULL);
		if (pthread_create(&f->thread, NULL, flusher_main, f) != 0) {
			pthread_cond_destroy(&f->cond);
			pthread_mutex_destroy(&f->lock);
			close(f->fd);
			f->failed = true;
			return false;
		}
		f->running = true;
	}
	pthread_mutex_lock(&f->lock);
	f->due = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return true;
}

/* Wait for the thread (if any) to end: its first syncfs() error, or 0. */
static int flusher_stop(struct flusher *f)
{
	int r;

	if (!f->running)
		return 0;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	r = f->err;
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	close(f->fd);
	*f = (struct flusher){ .failed = true };   /* once stopped, stays stopped */
	return r;
}

/* syncfs(2) of the replica's filesystem (it needs an fd that is not O_PATH). */
static int sync_backing(int rootfd)
{
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (syncfs(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* After a good TRAILER: staging gone, everything durable, snapshot, ACK. */
static int finish(struct serve *sv, struct recv *c, struct flusher *fl)
{
	struct journal_snap snap;
	int r;

	r = save_pos(c, true);
	if (r < 0)
		return r;
	r = repl_recv_staging_remove(c);
	if (r < 0)
		return r;
	repl_recv_release(c);
	r = journal_flush(c->j);
	if (r == 0)
		r = flusher_stop(fl);
	if (r == 0)
		r = sync_backing(c->rootfd);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot flush the replica");
	r = journal_snap_create(c->j, c->to, &snap);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot create snapshot '%s' on the replica", c->to);
	/* nothing acknowledged may be lost: the snapshot is durable before the ACK */
	r = journal_fsync(c->j, JOURNAL_ROOT_INO, -1, false);
	if (r < 0)
		return repl_recv_fail(c, r, "cannot sync the replica's journal");
	r = forget_stream(c);
	if (r < 0)
		log_warning("snapshot '%s' received, but its resume position stays: %s", c->to,
			    journal_strerror(r));
	sv->stats->streams++;
	snprintf(sv->stats->last_snapshot, sizeof(sv->stats->last_snapshot), "%s", c->to);
	log_info("received snapshot '%s' from %s (%" PRIu64 " records)", c->to, sv->t->peer,
		 c->count);
	if (sv->w) {
		r = repl_writer_ack(sv->w, c->to);
		if (r < 0)
			return repl_recv_fail(c, r, "cannot acknowledge '%s'", c->to);
	}
	return 0;
}

static int body(struct serve *sv, struct recv *c, uint64_t resume, struct flusher *fl)
{
	struct repl_record rec;
	int r;

	for (;;) {
		r = repl_reader_next(sv->rd, &rec);
		if (r == 0)
			r = -EBADMSG;   /* the reader reports a truncation itself; be safe */
		if (r < 0) {
			snprintf(c->msg, sizeof(c->msg), "%s", repl_reader_errmsg(sv->rd));
			return r;
		}
		if (rec.type == REPL_REC_TRAILER)
			return 0;
		if (rec.seq <= resume)
			continue;   /* one-way: applied by an earlier receive of this stream */
		r = repl_recv_apply(c, &rec);
		if (r < 0)
			return r;
		c->applied = rec.seq;
		if (rec.type == REPL_REC_DATA) {
			c->unsaved_bytes += rec.data.length;
			if (flusher_add(fl, c->rootfd, rec.data.length))
				sv->stats->flushes++;
		}
		c->count++;
		sv->stats->records_applied++;
		r = save_pos(c, false);
		if (r < 0)
			return r;
	}
}

/* One stream, from its HELLO. 0 done (ACK/REFUSE sent), -errno: the connection ends. */
/*
 * The replica's journal for one request: the caller's, or opened now (and
 * closed by replica_done()). Returns 0, 1 if refused (replied), or -errno.
 */
static int replica_journal(struct serve *sv, struct journal **ret)
{
	struct journal_open_opts jo = { 0 };
	struct stat st;
	int r;

	sv->error = 0;
	if (sv->j) {
		*ret = sv->j;
		return 0;
	}
	if (stat(sv->replica_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return reply_refuse(sv, -ENOENT, "replica directory '%s' does not exist",
				    sv->replica_dir);
	jo.flags = JOURNAL_OPEN_BULK;   /* only stream records: commit in large batches */
	jo.keep = sv->keep;   /* taken over in every case */
	sv->keep = NULL;
	r = journal_open(sv->replica_dir, &jo, ret);
	if (r == -EBUSY)
		return reply_refuse(sv, r, "replica '%s' is busy (mounted, or another "
				    "receive is running)", sv->replica_dir);
	if (r < 0)
		return reply_refuse(sv, r, "cannot open replica '%s': %s", sv->replica_dir,
				    journal_strerror(r));
	return 0;
}

static int replica_done(struct serve *sv, struct journal *j, int r)
{
	if (j != sv->j) {
		int k = journal_close_keep(j, &sv->keep);

		if (k < 0 && r == 0)
			r = repl_fail(k, "cannot close the replica's journal: %s", journal_strerror(k));
	}
	return r;
}

/*
 * A snapshot deleted on the source (HELLO with REPL_HELLO_DELETE): delete
 * it here too. Absent already: done. The replica's newest snapshot is the
 * base of the next stream and is refused (the source holds the snapshot a
 * peer last received, so it never asks for that).
 */
static int delete_snapshot(struct serve *sv, const struct repl_hello *h)
{
	struct journal_snap *v = NULL;
	struct journal *j;
	char owner[37] = "";
	size_t n = 0;
	int r;

	r = replica_journal(sv, &j);
	if (r != 0)
		return r < 0 ? r : 0;
	r = journal_replica_owner(j, owner);
	if (r >= 0 && strcmp(owner, h->source_uuid) != 0) {
		r = owner[0] ? reply_refuse(sv, -EPERM, "replica is mirrored from %s", owner) :
			       reply_refuse(sv, -EPERM, "replica is not mirrored from %s",
					    h->source_uuid);
		goto out;
	}
	if (r >= 0)
		r = journal_snap_list(j, false, &v, &n);
	if (r >= 0 && n > 0 && strcmp(v[n - 1].name, h->to_snap) == 0) {
		r = reply_refuse(sv, -EBUSY, "snapshot '%s' is the replica's newest (the base "
				 "of the next stream)", h->to_snap);
		goto out;
	}
	if (r >= 0) {
		r = journal_snap_delete(j, h->to_snap);
		if (r == -ENOENT)
			r = 0;
	}
	if (r < 0) {
		r = reply_refuse(sv, r, "cannot delete snapshot '%s': %s", h->to_snap,
				 journal_strerror(r));
		goto out;
	}
	log_info("snapshot '%s' deleted, as on %s", h->to_snap, sv->t->peer);
	if (sv->w) {
		r = repl_writer_ack(sv->w, h->to_snap);
		if (r < 0)
			r = repl_fail(r, "%s", repl_writer_errmsg(sv->w));
	}
out:
	free(v);
	return replica_done(sv, j, r < 0 ? r : 0);
}

static int stream(struct serve *sv, const struct repl_hello *h)
{
	struct flusher fl = { .fd = -1, .every = sv->o->flush_every ? sv->o->flush_every :
							       DEFAULT_FLUSH_EVERY };
	struct journal *j;
	struct recv c;
	uint64_t resume = 0;
	bool resuming = false;
	int r;

	r = replica_journal(sv, &j);
	if (r != 0)
		return r < 0 ? r : 0;
	repl_recv_init(&c, j);
	snprintf(c.source, sizeof(c.source), "%s", h->source_uuid);
	snprintf(c.from, sizeof(c.from), "%s", h->from_snap ? h->from_snap : "");
	snprintf(c.to, sizeof(c.to), "%s", h->to_snap);
	c.save_every = sv->o->save_every ? sv->o->save_every : DEFAULT_SAVE_EVERY;
	c.save_every_ns = (int64_t)(sv->o->save_interval_ms > 0 ? sv->o->save_interval_ms :
				    DEFAULT_SAVE_MS) * 1000000;
	c.saved_ns = util_mono_ns();

	r = guards(sv, &c, &resume, &resuming);
	if (r != 0) {
		r = r < 0 ? r : 0;
		goto out;
	}
	sv->stats->resumed_from = resume;
	c.applied = c.saved = resume;
	c.replay_hi = resuming ? resume + c.save_every : 0;
	log_debug("receiving '%s' -> '%s' from %s, resuming after record %" PRIu64,
		  c.from[0] ? c.from : "(full)", c.to, sv->t->peer, resume);
	if (sv->w) {
		r = repl_writer_ready(sv->w, resume);
		if (r < 0) {
			r = repl_fail(r, "%s", repl_writer_errmsg(sv->w));
			goto out;
		}
	}
	/* A one-way stream always starts at record 1: skip what was applied. */
	r = repl_reader_set_resume(sv->rd, sv->w ? resume : 0);
	if (r < 0) {
		r = reply_nak(sv, r, repl_reader_errmsg(sv->rd));
		goto out;
	}
	r = repl_recv_staging_find(&c);
	if (r >= 0)
		r = body(sv, &c, sv->w ? 0 : resume, &fl);
	if (r >= 0)
		r = finish(sv, &c, &fl);
	if (r < 0) {
		save_pos(&c, true);   /* keep what was applied; a retry resumes after it */
		r = reply_nak(sv, r, c.msg);
	}
out:
	flusher_stop(&fl);
	repl_recv_release(&c);
	return replica_done(sv, j, r);
}

int repl_serve(struct journal *j, const char *replica_dir, struct repl_transport *t,
	       const struct repl_serve_opts *o, struct repl_serve_stats *ret_stats)
{
	static const struct repl_serve_opts defaults = { 0 };
	struct repl_serve_stats stats = { 0 };
	struct serve sv = { .j = j, .replica_dir = replica_dir, .t = t, .stats = &stats };
	struct repl_record rec;
	int r;

	sv.o = o ? o : &defaults;
	if (!j && (!replica_dir || replica_dir[0] != '/')) {
		r = repl_fail(-EINVAL, "replica path '%s' is not absolute",
			      replica_dir ? replica_dir : "");
		goto out;
	}
	r = repl_reader_new(t, REPL_READ_STREAM, &sv.rd);
	if (r == 0 && !sv.o->one_way)
		r = repl_writer_new(t, NULL, &sv.w);
	if (r < 0) {
		repl_fail(r, "cannot receive: %s", strerror(-r));
		goto out;
	}
	for (;;) {
		r = repl_reader_next(sv.rd, &rec);
		if (r == 0 && sv.o->one_way && stats.streams == 0 && stats.refused == 0) {
			r = repl_fail(-EBADMSG, "no stream in the input");
			break;
		}
		if (r == 0)
			break;
		if (r < 0) {
			r = reply_nak(&sv, r, repl_reader_errmsg(sv.rd));
			break;
		}
		if (rec.hello.flags & REPL_HELLO_DELETE)
			r = sv.w ? delete_snapshot(&sv, &rec.hello) :
				   repl_fail(-EINVAL, "a snapshot deletion is not a stream");
		else
			r = stream(&sv, &rec.hello);
		if (r < 0)
			break;
		if (sv.o->one_way) {
			if (sv.error)
				r = repl_fail(sv.error, "%s", sv.errmsg);
			break;
		}
	}
out:
	journal_keep_free(sv.keep);
	repl_writer_free(sv.w);
	repl_reader_free(sv.rd);
	if (ret_stats)
		*ret_stats = stats;
	return r;
}
