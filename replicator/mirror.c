/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The replicator thread of a mount daemon (DESIGN §5, docs/MIRRORING.md):
 * for every peer, ship the snapshots it does not have yet, oldest first,
 * each as the change set from the previous one; keep the session open
 * between syncs; on failure back off (capped) and say why in the status.
 * Taking snapshots on a schedule (--snap-interval) happens here too.
 *
 * One thread, woken through a self-pipe: by a snapshot (journal hook), by
 * SIGUSR1 (`mirrorfs sync`), by a timer, or to stop. Losing the network
 * never touches the mount: this thread only reads snapshots.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mirrorfs/journal.h"
#include "mirrorfs/log.h"
#include "mirrorfs/mirror.h"
#include "mirrorfs/repl.h"
#include "mirrorfs/util.h"

#define BACKOFF_MIN_NS (2LL * 1000000000LL)
#define BACKOFF_MAX_NS (300LL * 1000000000LL)
#define IDLE_WAIT_MS 60000
#define MAX_PEERS 64

struct peer_conn {
	char uuid[37];
	struct repl_transport *t;   /* open session, reused between syncs */
};

struct repl_mirror {
	struct journal *j;
	struct repl_mirror_opts o;
	char *self_exe;
	int wake_pipe[2];
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* replicator thread only: */
	struct peer_conn conns[MAX_PEERS];
	int64_t next_snap_ns;
};

void repl_mirror_wake(struct repl_mirror *m)
{
	char c = 1;

	/* async-signal-safe: a full pipe already means "wake up" */
	if (m && write(m->wake_pipe[1], &c, 1) < 0) {
		/* nothing to do */
	}
}

static void drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static struct peer_conn *conn_of(struct repl_mirror *m, const char *uuid)
{
	struct peer_conn *free_slot = NULL;

	for (size_t i = 0; i < MAX_PEERS; i++) {
		if (strcmp(m->conns[i].uuid, uuid) == 0)
			return &m->conns[i];
		if (!free_slot && !m->conns[i].uuid[0])
			free_slot = &m->conns[i];
	}
	if (free_slot)
		snprintf(free_slot->uuid, sizeof(free_slot->uuid), "%s", uuid);
	return free_slot;
}

static void conn_close(struct peer_conn *pc)
{
	if (pc && pc->t) {
		repl_transport_close(pc->t);
		pc->t = NULL;
	}
}

int repl_mirror_connect(const struct journal_peer *p, const char *self_exe,
			struct repl_transport **ret)
{
	struct repl_url url;
	int r;

	r = repl_url_parse(p->url, &url);
	if (r < 0)
		return r;
	if (url.scheme == REPL_URL_FILE) {
		char *argv[] = { (char *)self_exe, "serve", "--replica", url.path, NULL };

		r = repl_transport_spawn(argv, ret);
	} else {
		char *cmd = repl_ssh_serve_command(url.path);

		r = cmd ? repl_ssh_connect(&url, p->identity[0] ? p->identity : NULL,
					   p->host_key[0] ? p->host_key : NULL, cmd, ret, NULL)
			: -ENOMEM;
		free(cmd);
	}
	repl_url_release(&url);
	return r;
}

/* Snapshots newer than `after` ("" = all), oldest first. */
static int pending_snaps(struct journal *j, const char *after, struct journal_snap **ret,
			 size_t *ret_n, size_t *ret_first)
{
	struct journal_snap *v;
	size_t n, first = 0;
	int r;

	r = journal_snap_list(j, false, &v, &n);
	if (r < 0)
		return r;
	if (after[0]) {
		first = n;   /* `after` gone: nothing to build on */
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].name, after) == 0)
				first = i + 1;
	}
	*ret = v;
	*ret_n = n;
	*ret_first = first;
	return 0;
}

struct progress_ctx {
	struct journal *j;
	const char *uuid;
	struct journal_peer_status *st;
	const struct repl_mirror_opts *o;
};

static void on_progress(void *arg, const struct repl_send_progress *p)
{
	struct progress_ctx *pc = arg;

	pc->st->cur_bytes = p->bytes_done;
	pc->st->cur_total = p->bytes_total;
	pc->st->cur_files = p->files_done;
	journal_peer_status_set(pc->j, pc->uuid, pc->st);
	if (pc->o && pc->o->progress)
		pc->o->progress(pc->o->progress_arg, pc->uuid, p);
}

static char *hold_tag(const char *uuid, char buf[64])
{
	snprintf(buf, 64, "peer:%s", uuid);
	return buf;
}

struct del_ctx {
	struct journal *j;
	struct repl_transport *t;
	struct journal_peer_status *st;
	size_t n;
};

static int count_del(void *arg, uint64_t seq, const char *name)
{
	((struct del_ctx *)arg)->n++;
	return 0;
}

static int send_del(void *arg, uint64_t seq, const char *name)
{
	struct del_ctx *d = arg;
	int r = repl_send_delete(d->j, name, d->t);

	if (r < 0)
		return r;
	d->st->snaps_deleted++;
	d->st->del_cursor = seq;
	return 0;
}

/*
 * Snapshots deleted here since the peer's cursor are deleted there too,
 * unless it keeps them (--keep-deleted: the cursor just moves on).
 */
static int propagate_deletions(struct journal *j, const struct journal_peer *p,
			       const char *self_exe, struct peer_conn *pc,
			       struct journal_peer_status *st)
{
	struct del_ctx d = { .j = j, .st = st };
	int r;

	r = journal_snap_deletions(j, st->del_cursor, count_del, &d);
	if (r < 0 || d.n == 0)
		return r;
	if (p->keep_deleted) {
		st->del_cursor = journal_seq(j);
		return 0;
	}
	if (!pc->t) {
		r = repl_mirror_connect(p, self_exe, &pc->t);
		if (r < 0)
			return r;
	}
	d.t = pc->t;
	r = journal_snap_deletions(j, st->del_cursor, send_del, &d);
	if (r < 0)
		conn_close(pc);
	return r;
}

/*
 * Bring one peer up to date. Returns 0 when it has every snapshot, or the
 * error that stopped it (recorded in its status with the next retry).
 */
static int sync_peer(struct journal *j, const struct journal_peer *p, const char *self_exe,
		     struct peer_conn *pc, const struct repl_mirror_opts *o)
{
	struct journal_peer_status st;
	struct journal_snap *snaps = NULL;
	size_t n = 0, first = 0;
	char tag[64];
	int r;

	r = journal_peer_status_get(j, p->uuid, &st);
	if (r < 0)
		return r;
	hold_tag(p->uuid, tag);
	r = pending_snaps(j, st.last_snap, &snaps, &n, &first);
	if (r < 0)
		goto out;
	st.pending = n - first;
	if (st.pending == 0) {
		r = propagate_deletions(j, p, self_exe, pc, &st);
		if (r < 0)
			goto fail;
		st.state = JOURNAL_PEER_IDLE;
		st.failures = 0;
		st.next_retry_ns = 0;
		st.last_error[0] = '\0';
		goto save;
	}
	/* Shipped in order, one snapshot at a time (docs/MIRRORING.md). */
	for (size_t i = first; i < n; i++) {
		struct progress_ctx ctx = { j, p->uuid, &st, o };
		struct repl_send_opts so = {
			.level = o ? o->level : 0, .progress = on_progress, .progress_arg = &ctx,
			.progress_interval_ms = 500,
			.scan = st.scan_next || (o && o->scan),
		};
		struct repl_send_stats ss = { 0 };
		const char *from = st.last_snap[0] ? st.last_snap : NULL;

		if (!pc->t) {
			r = repl_mirror_connect(p, self_exe, &pc->t);
			if (r < 0)
				goto fail;
		}
		r = journal_snap_hold(j, snaps[i].name, tag);
		if (r < 0)
			goto fail;
		st.state = JOURNAL_PEER_SYNCING;
		snprintf(st.cur_snap, sizeof(st.cur_snap), "%s", snaps[i].name);
		st.cur_bytes = st.cur_total = st.cur_files = 0;
		st.cur_started_ns = util_now_ns();
		journal_peer_status_set(j, p->uuid, &st);
		r = repl_send(j, from, snaps[i].name, pc->t, &so, &ss);
		/* bytes on the wire count in the totals whether the attempt completed or not */
		st.total_bytes_raw += ss.data_bytes;
		st.total_bytes_wire += ss.wire_bytes;
		if (r < 0) {
			journal_snap_release(j, snaps[i].name, tag);
			conn_close(pc);
			goto fail;
		}
		if (from)
			journal_snap_release(j, from, tag);
		snprintf(st.last_snap, sizeof(st.last_snap), "%s", snaps[i].name);
		st.last_snap_created_ns = snaps[i].created_ns;
		st.last_sync_ns = util_now_ns();
		st.snaps_synced++;
		st.last_bytes_raw = ss.data_bytes;
		st.last_bytes_wire = ss.wire_bytes;
		st.last_duration_ns = ss.duration_ns;
		st.pending = n - i - 1;
		st.cur_snap[0] = '\0';
		st.scan_next = false;
		st.failures = 0;
		st.last_error[0] = '\0';
		st.next_retry_ns = 0;
		st.state = st.pending ? JOURNAL_PEER_SYNCING : JOURNAL_PEER_IDLE;
		journal_peer_status_set(j, p->uuid, &st);
		log_info("peer %s: snapshot '%s' synced (%" PRIu64 " bytes, %" PRIu64
			 " on the wire)", p->uuid, snaps[i].name, ss.data_bytes, ss.wire_bytes);
	}
	r = propagate_deletions(j, p, self_exe, pc, &st);
	if (r < 0)
		goto fail;
	goto save;
fail:
	{
		int64_t backoff = BACKOFF_MIN_NS;
		const char *why = repl_last_errmsg();

		for (uint32_t k = 0; k < st.failures && backoff < BACKOFF_MAX_NS; k++)
			backoff *= 2;
		if (backoff > BACKOFF_MAX_NS)
			backoff = BACKOFF_MAX_NS;
		st.failures++;
		st.state = JOURNAL_PEER_FAILED;
		st.cur_snap[0] = '\0';
		snprintf(st.last_error, sizeof(st.last_error), "%s",
			 why && *why ? why : strerror(-r));
		st.last_error_ns = util_now_ns();
		st.next_retry_ns = st.last_error_ns + backoff;
		log_warning("peer %s: sync failed: %s (retry in %" PRId64 " s)", p->uuid,
			    st.last_error, (int64_t)(backoff / 1000000000LL));
	}
save:
	journal_peer_status_set(j, p->uuid, &st);
out:
	free(snaps);
	return r;
}

int repl_mirror_sync_peers(struct journal *j, const char *only_uuid, const char *self_exe,
			   const struct repl_mirror_opts *o)
{
	struct journal_peer *peers;
	size_t n;
	int r, first_err = 0;

	r = journal_peer_list(j, &peers, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct peer_conn pc = { .t = NULL };

		if (only_uuid && strcmp(only_uuid, peers[i].uuid) != 0)
			continue;
		if (peers[i].paused)
			continue;
		r = sync_peer(j, &peers[i], self_exe, &pc, o);
		conn_close(&pc);
		if (r < 0 && !first_err)
			first_err = r;
	}
	free(peers);
	return first_err;
}

/* Next snapshot name from the pattern (strftime; default mirror-%Y%m%d-%H%M%S). */
int repl_mirror_snap_name(const char *pattern, char ret[256])
{
	time_t now = time(NULL);
	struct tm tm;

	if (!pattern || !*pattern)
		pattern = REPL_SNAP_PATTERN_DEFAULT;
	gmtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	/* the pattern is the user's, by design (--snap-pattern) */
	if (strftime(ret, 256, pattern, &tm) == 0)
		return -EINVAL;
#pragma GCC diagnostic pop
	return util_check_name(ret);
}

static void take_scheduled_snapshot(struct repl_mirror *m)
{
	char name[256];
	int r;

	r = repl_mirror_snap_name(m->o.snap_pattern, name);
	if (r >= 0)
		r = journal_snap_create(m->j, name, NULL);
	if (r == -EEXIST)
		r = 0;   /* one already this second */
	if (r < 0)
		log_warning("cannot take scheduled snapshot: %s", strerror(-r));
}

static void *mirror_main(void *arg)
{
	struct repl_mirror *m = arg;

	for (;;) {
		struct journal_peer *peers = NULL;
		size_t n = 0;
		int64_t now = util_now_ns(), wake_at = now + (int64_t)IDLE_WAIT_MS * 1000000;
		struct pollfd pfd = { .fd = m->wake_pipe[0], .events = POLLIN };
		int timeout_ms;

		if (m->o.snap_interval_s > 0) {
			if (now >= m->next_snap_ns) {
				take_scheduled_snapshot(m);
				m->next_snap_ns = now + (int64_t)m->o.snap_interval_s * 1000000000LL;
			}
			if (m->next_snap_ns < wake_at)
				wake_at = m->next_snap_ns;
		}
		if (journal_peer_list(m->j, &peers, &n) == 0) {
			for (size_t i = 0; i < n; i++) {
				struct journal_peer_status st;
				struct peer_conn *pc;

				if (journal_peer_status_get(m->j, peers[i].uuid, &st) < 0)
					continue;
				if (peers[i].paused) {
					if (st.state != JOURNAL_PEER_PAUSED) {
						st.state = JOURNAL_PEER_PAUSED;
						journal_peer_status_set(m->j, peers[i].uuid, &st);
					}
					continue;
				}
				if (st.next_retry_ns > now) {
					if (st.next_retry_ns < wake_at)
						wake_at = st.next_retry_ns;
					continue;
				}
				pc = conn_of(m, peers[i].uuid);
				if (!pc)
					continue;
				if (sync_peer(m->j, &peers[i], m->self_exe, pc, &m->o) < 0 &&
				    journal_peer_status_get(m->j, peers[i].uuid, &st) == 0 &&
				    st.next_retry_ns && st.next_retry_ns < wake_at)
					wake_at = st.next_retry_ns;
			}
			/* sessions of peers that were removed go */
			for (size_t k = 0; k < MAX_PEERS; k++) {
				bool found = false;

				if (!m->conns[k].uuid[0])
					continue;
				for (size_t i = 0; i < n && !found; i++)
					found = strcmp(peers[i].uuid, m->conns[k].uuid) == 0;
				if (!found) {
					conn_close(&m->conns[k]);
					m->conns[k].uuid[0] = '\0';
				}
			}
			free(peers);
		}
		now = util_now_ns();
		timeout_ms = wake_at <= now ? 0 : (int)UTIL_MIN((wake_at - now) / 1000000 + 1,
							       IDLE_WAIT_MS);
		if (atomic_load(&m->stop))
			break;
		if (poll(&pfd, 1, timeout_ms) > 0)
			drain(m->wake_pipe[0]);
		if (atomic_load(&m->stop))
			break;
	}
	for (size_t k = 0; k < MAX_PEERS; k++)
		conn_close(&m->conns[k]);
	return NULL;
}

int repl_mirror_start(struct journal *j, const char *self_exe, const struct repl_mirror_opts *o,
		      struct repl_mirror **ret)
{
	struct repl_mirror *m;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->j = j;
	if (o)
		m->o = *o;
	m->self_exe = strdup(self_exe);
	if (!m->self_exe || pipe2(m->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = m->self_exe ? -errno : -ENOMEM;
		free(m->self_exe);
		free(m);
		return r;
	}
	m->next_snap_ns = util_now_ns() + (int64_t)m->o.snap_interval_s * 1000000000LL;
	r = -pthread_create(&m->thread, NULL, mirror_main, m);
	if (r < 0) {
		close(m->wake_pipe[0]);
		close(m->wake_pipe[1]);
		free(m->self_exe);
		free(m);
		return r;
	}
	pthread_setname_np(m->thread, "mfs-mirror");
	m->running = true;
	*ret = m;
	return 0;
}

void repl_mirror_stop(struct repl_mirror *m)
{
	if (!m)
		return;
	if (m->running) {
		atomic_store(&m->stop, true);
		repl_mirror_wake(m);
		pthread_join(m->thread, NULL);
	}
	close(m->wake_pipe[0]);
	close(m->wake_pipe[1]);
	free(m->self_exe);
	free(m);
}
