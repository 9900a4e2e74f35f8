/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs sync`, `status`, `pause`, `resume`: driving and watching the
 * mirroring of a tree (docs/MIRRORING.md).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirror_i.h"
#include "mirrorfs/mirror.h"
#include "mirrorfs/util.h"

/*
 * Following the daemon: a status read is one small query, so poll often at
 * first (an incremental sync takes tens of milliseconds and the poll
 * interval would be most of the wait), then back off.
 */
#define POLL_FIRST_US 1000
#define POLL_MAX_US 25000

/* ---- status ---------------------------------------------------------------- */

static const struct cli_help status_help = {
	.synopsis = "mirrorfs status [--json] MOUNTPOINT|BACKING",
	.description =
	"Per mirror peer: UUID, URL, site, state (idle, syncing, failed, paused),\n"
	"the last snapshot complete on the peer and when it completed, snapshots\n"
	"synced, bytes of the last sync and in total (raw data and on the wire),\n"
	"duration of the last sync, the current lag (the recovery point: seconds\n"
	"since the last synced snapshot was taken here), snapshots pending, the\n"
	"progress of a sync in flight, and the last error with its time and the\n"
	"next retry. Works while mounted.\n"
	"\n"
	"options:\n"
	"  --json       one JSON array of objects with those fields\n"
	"  -h, --help   show this help\n",
};

/* Snapshots newer than `last` (all if `last` is "" or gone). */
static uint64_t count_pending(const struct journal_snap *v, size_t n, const char *last)
{
	size_t first = 0;

	if (last[0])
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].name, last) == 0)
				first = i + 1;
	return n - first;
}

static json_object *jtime(int64_t ns)
{
	char buf[64];

	if (!ns)
		return NULL;
	cli_format_time(ns, buf, sizeof(buf));
	return json_object_new_string(buf);
}

static void print_status_text(const struct journal_peer *p, const struct journal_peer_status *st,
			      uint64_t pending, int64_t now)
{
	char t1[64], b1[32], b2[32], b3[32], b4[32];

	printf("peer %s\n", p->uuid);
	printf("  url:          %s\n", p->url);
	printf("  site:         %s\n", p->site[0] ? p->site : "-");
	printf("  state:        %s\n", journal_peer_state_name(p->paused ? JOURNAL_PEER_PAUSED :
								   st->state));
	if (st->last_snap[0]) {
		cli_format_time(st->last_sync_ns, t1, sizeof(t1));
		printf("  last synced:  ");
		cli_put_escaped(stdout, st->last_snap);
		printf(" (synced %s)\n", t1);
		printf("  lag:          %lld s\n",
		       (long long)((now - st->last_snap_created_ns) / 1000000000LL));
	} else {
		printf("  last synced:  none\n");
		printf("  lag:          -\n");
	}
	printf("  pending:      %llu\n", (unsigned long long)pending);
	printf("  snapshots:    %llu synced, %llu deleted\n", (unsigned long long)st->snaps_synced,
	       (unsigned long long)st->snaps_deleted);
	cli_format_bytes(st->last_bytes_raw, b1, sizeof(b1));
	cli_format_bytes(st->last_bytes_wire, b2, sizeof(b2));
	cli_format_bytes(st->total_bytes_raw, b3, sizeof(b3));
	cli_format_bytes(st->total_bytes_wire, b4, sizeof(b4));
	printf("  last sync:    %s raw, %s sent, %.2f s\n", b1, b2,
	       (double)st->last_duration_ns / 1e9);
	printf("  total:        %s raw, %s sent\n", b3, b4);
	if (st->state == JOURNAL_PEER_SYNCING && st->cur_snap[0]) {
		cli_format_bytes(st->cur_bytes, b1, sizeof(b1));
		cli_format_bytes(st->cur_total, b2, sizeof(b2));
		printf("  syncing:      ");
		cli_put_escaped(stdout, st->cur_snap);
		printf(" (%s of %s, %llu files)\n", b1, b2, (unsigned long long)st->cur_files);
	}
	if (st->last_error[0]) {
		cli_format_time(st->last_error_ns, t1, sizeof(t1));
		printf("  last error:   %s (%s)\n", st->last_error, t1);
		if (st->next_retry_ns) {
			cli_format_time(st->next_retry_ns, t1, sizeof(t1));
			printf("  next retry:   %s\n", t1);
		}
	} else {
		printf("  last error:   none\n");
	}
}

static json_object *status_json(const struct journal_peer *p, const struct journal_peer_status *st,
				uint64_t pending, int64_t now)
{
	json_object *o = json_object_new_object();

#define ADD(k, v) json_object_object_add(o, k, v)
	ADD("uuid", json_object_new_string(p->uuid));
	ADD("url", json_object_new_string(p->url));
	ADD("site", json_object_new_string(p->site));
	ADD("state", json_object_new_string(journal_peer_state_name(p->paused ?
			JOURNAL_PEER_PAUSED : st->state)));
	ADD("last_snapshot", st->last_snap[0] ? json_object_new_string(st->last_snap) : NULL);
	ADD("last_sync_time", jtime(st->last_sync_ns));
	ADD("last_sync_time_ns", json_object_new_int64(st->last_sync_ns));
	ADD("lag_seconds", st->last_snap[0] ?
	    json_object_new_double((double)(now - st->last_snap_created_ns) / 1e9) : NULL);
	ADD("pending", json_object_new_uint64(pending));
	ADD("snapshots_synced", json_object_new_uint64(st->snaps_synced));
	ADD("snapshots_deleted", json_object_new_uint64(st->snaps_deleted));
	ADD("last_bytes_raw", json_object_new_uint64(st->last_bytes_raw));
	ADD("last_bytes_sent", json_object_new_uint64(st->last_bytes_wire));
	ADD("total_bytes_raw", json_object_new_uint64(st->total_bytes_raw));
	ADD("total_bytes_sent", json_object_new_uint64(st->total_bytes_wire));
	ADD("last_duration_seconds", json_object_new_double((double)st->last_duration_ns / 1e9));
	ADD("syncing_snapshot", st->state == JOURNAL_PEER_SYNCING && st->cur_snap[0] ?
	    json_object_new_string(st->cur_snap) : NULL);
	ADD("syncing_bytes", json_object_new_uint64(st->cur_bytes));
	ADD("syncing_total", json_object_new_uint64(st->cur_total));
	ADD("last_error", st->last_error[0] ? json_object_new_string(st->last_error) : NULL);
	ADD("last_error_time", jtime(st->last_error_ns));
	ADD("next_retry_time", jtime(st->next_retry_ns));
	ADD("failures", json_object_new_int((int)st->failures));
	ADD("paused", json_object_new_boolean(p->paused));
	ADD("keep_deleted", json_object_new_boolean(p->keep_deleted));
#undef ADD
	return o;
}

int cli_cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, CLI_HELP_OPTION, { 0 },
	};
	struct journal_peer *peers = NULL;
	struct journal_snap *snaps = NULL;
	size_t np = 0, ns = 0;
	struct cli_tree t;
	json_object *arr = NULL;
	bool json = false;
	int c, ex, r, ret;
	int64_t now = util_now_ns();

	while ((c = cli_getopt(argc, argv, "", opts, &status_help, &ex)) != -1) {
		if (c == CLI_OPT_EXIT)
			return ex;
		if (c == 'j')
			json = true;
	}
	if (argc - optind != 1)
		return cli_usage_error(&status_help, argv[0], "expected MOUNTPOINT or BACKING");
	ret = cli_tree_open(argv[optind], CLI_TREE_READ, "show the status of", &t);
	if (ret)
		return ret;
	r = journal_peer_list(t.j, &peers, &np);
	if (r >= 0)
		r = journal_snap_list(t.j, false, &snaps, &ns);
	if (r < 0) {
		ret = cli_error("cannot show the status of '%s': %s", argv[optind],
				journal_strerror(r));
		goto out;
	}
	cli_ignore_sigpipe();
	if (json)
		arr = json_object_new_array();
	else if (np == 0)
		printf("no peers\n");
	for (size_t i = 0; i < np; i++) {
		struct journal_peer_status st;
		uint64_t pending;

		r = journal_peer_status_get(t.j, peers[i].uuid, &st);
		if (r < 0) {
			ret = cli_error("cannot show the status of '%s': %s", argv[optind],
					journal_strerror(r));
			goto out;
		}
		pending = count_pending(snaps, ns, st.last_snap);
		if (json)
			json_object_array_add(arr, status_json(&peers[i], &st, pending, now));
		else
			print_status_text(&peers[i], &st, pending, now);
	}
	if (json)
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	ret = cli_stdout_finish();
out:
	if (arr)
		json_object_put(arr);
	free(peers);
	free(snaps);
	return cli_tree_close(&t, ret);
}

/* ---- pause / resume --------------------------------------------------------- */

static const struct cli_help pause_help = {
	.synopsis = "mirrorfs pause MOUNTPOINT|BACKING [UUID]\n"
		    "       mirrorfs resume MOUNTPOINT|BACKING [UUID]",
	.description =
	"Stop (pause) or restart (resume) mirroring to every peer, or to the peer\n"
	"UUID. Snapshots taken while paused are shipped after resume. A sync in\n"
	"flight finishes first.\n",
};

static int pause_resume(int argc, char **argv, bool paused)
{
	static const struct option opts[] = { CLI_HELP_OPTION, { 0 } };
	struct journal_peer *peers = NULL;
	size_t np = 0;
	struct cli_tree t;
	const char *only;
	int c, ex, r = 0, ret, done = 0;

	while ((c = cli_getopt(argc, argv, "", opts, &pause_help, &ex)) != -1)
		if (c == CLI_OPT_EXIT)
			return ex;
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage_error(&pause_help, argv[0], "expected MOUNTPOINT [UUID]");
	only = argc - optind == 2 ? argv[optind + 1] : NULL;
	ret = cli_tree_open(argv[optind], CLI_TREE_CONFIG, argv[0], &t);
	if (ret)
		return ret;
	r = journal_peer_list(t.j, &peers, &np);
	for (size_t i = 0; r >= 0 && i < np; i++) {
		if (only && strcmp(only, peers[i].uuid) != 0)
			continue;
		r = journal_peer_set_paused(t.j, peers[i].uuid, paused);
		done++;
	}
	if (r < 0)
		ret = cli_error("cannot %s '%s': %s", argv[0], argv[optind], journal_strerror(r));
	else if (only && !done)
		ret = cli_error("cannot %s peer '%s': no such peer of '%s'", argv[0], only,
				argv[optind]);
	else if (!done)
		ret = cli_error("cannot %s '%s': it has no peers", argv[0], argv[optind]);
	else
		cli_tree_wake(&t);
	free(peers);
	return cli_tree_close(&t, ret);
}

int cli_cmd_pause(int argc, char **argv)
{
	return pause_resume(argc, argv, true);
}

int cli_cmd_resume(int argc, char **argv)
{
	return pause_resume(argc, argv, false);
}

/* ---- sync ------------------------------------------------------------------- */

static const struct cli_help sync_help = {
	.synopsis = "mirrorfs sync [--peer UUID] [--scan] [--snap-pattern PATTERN] [--no-wait]\n"
		    "              MOUNTPOINT|BACKING",
	.description =
	"Mirror now: take a snapshot (named by PATTERN, strftime(3) in UTC, default\n"
	"mirror-%Y%m%d-%H%M%S) unless one is already waiting to be shipped, then\n"
	"bring every unpaused peer (or only UUID) up to it, and wait until they\n"
	"have it. On a terminal, shows progress (bytes, files, rate, estimated\n"
	"time left). When MOUNTPOINT is mounted, the mount daemon does the work and\n"
	"this command follows it; otherwise the sync runs in this process.\n"
	"Safe to run every minute: a peer that cannot be reached fails this run\n"
	"with the reason, and the snapshot is shipped by a later one.\n"
	"\n"
	"options:\n"
	"  --peer UUID            only this peer\n"
	"  --scan                 find the changes by comparing the snapshot trees\n"
	"                         (descending only into directories whose rctime is\n"
	"                         newer than the peer's last snapshot) instead of\n"
	"                         reading the journal's change log\n"
	"  --snap-pattern PATTERN name of the snapshot taken\n"
	"  --no-wait              (mounted) return once the daemon has been told\n"
	"  -h, --help             show this help\n",
};

struct sync_progress {
	bool tty;
	int64_t started;
};

static void show_progress(struct sync_progress *sp, const char *uuid, uint64_t done,
			  uint64_t total, uint64_t files)
{
	double secs = (double)(util_mono_ns() - sp->started) / 1e9;
	double rate = secs > 0 ? (double)done / secs : 0;
	char b1[32], b2[32], b3[32], eta[32] = "-";

	if (!sp->tty)
		return;
	if (rate > 0 && total > done)
		snprintf(eta, sizeof(eta), "%.0f s", (double)(total - done) / rate);
	cli_format_bytes(done, b1, sizeof(b1));
	cli_format_bytes(total, b2, sizeof(b2));
	cli_format_bytes((uint64_t)rate, b3, sizeof(b3));
	fprintf(stderr, "\r%.8s: %s / %s, %llu files, %s/s, eta %s\033[K", uuid, b1, b2,
		(unsigned long long)files, b3, eta);
}

static void on_progress(void *arg, const char *uuid, const struct repl_send_progress *p)
{
	show_progress(arg, uuid, p->bytes_done, p->bytes_total, p->files_done);
}

/* Is there a snapshot newer than what each target peer has? Then no new one. */
static int newest_pending(struct journal *j, const char *only, char ret_name[256], bool *ret_need)
{
	struct journal_peer *peers = NULL;
	struct journal_snap *snaps = NULL;
	size_t np = 0, ns = 0, targets = 0;
	bool need = false;
	int r;

	r = journal_peer_list(j, &peers, &np);
	if (r >= 0)
		r = journal_snap_list(j, false, &snaps, &ns);
	for (size_t i = 0; r >= 0 && i < np; i++) {
		struct journal_peer_status st;

		if ((only && strcmp(only, peers[i].uuid) != 0) || peers[i].paused)
			continue;
		targets++;
		r = journal_peer_status_get(j, peers[i].uuid, &st);
		if (r >= 0 && count_pending(snaps, ns, st.last_snap) == 0)
			need = true;
	}
	if (r >= 0 && targets == 0)
		r = -ENOENT;
	if (r >= 0) {
		*ret_need = need || ns == 0;
		snprintf(ret_name, 256, "%s", ns ? snaps[ns - 1].name : "");
	}
	free(peers);
	free(snaps);
	return r;
}

/* Wait until every target peer has `snap`, following the daemon's status. */
static int follow_daemon(struct cli_tree *t, const char *only, const char *snap,
			 int64_t started_ns, struct sync_progress *sp)
{
	useconds_t poll_us = POLL_FIRST_US;

	for (;;) {
		struct journal_peer *peers = NULL;
		size_t np = 0;
		int r, waiting = 0;

		r = journal_peer_list(t->j, &peers, &np);
		for (size_t i = 0; r >= 0 && i < np; i++) {
			struct journal_peer_status st;

			if ((only && strcmp(only, peers[i].uuid) != 0) || peers[i].paused)
				continue;
			r = journal_peer_status_get(t->j, peers[i].uuid, &st);
			if (r < 0)
				break;
			if (strcmp(st.last_snap, snap) == 0)
				continue;
			if (st.state == JOURNAL_PEER_FAILED && st.last_error_ns >= started_ns) {
				if (sp->tty)
					fputc('\n', stderr);
				r = cli_error("cannot sync '%s' to peer %s (%s): %s", t->arg,
					      peers[i].uuid, peers[i].url, st.last_error);
				free(peers);
				return r;
			}
			if (st.state == JOURNAL_PEER_SYNCING)
				show_progress(sp, peers[i].uuid, st.cur_bytes, st.cur_total,
					      st.cur_files);
			waiting++;
		}
		free(peers);
		if (r < 0)
			return cli_error("cannot sync '%s': %s", t->arg, journal_strerror(r));
		if (!waiting)
			break;
		usleep(poll_us);
		poll_us = poll_us + poll_us / 4 < POLL_MAX_US ? poll_us + poll_us / 4 : POLL_MAX_US;
	}
	if (sp->tty)
		fputs("\r\033[K", stderr);
	return CLI_EXIT_OK;
}

/*
 * Let the daemon retry failed peers now instead of after their backoff,
 * and (--scan) compute their next sync by scanning.
 */
static void clear_backoff(struct cli_tree *t, const char *only, bool scan)
{
	struct journal_peer *peers = NULL;
	size_t np = 0;

	if (journal_peer_list(t->j, &peers, &np) < 0)
		return;
	for (size_t i = 0; i < np; i++) {
		struct journal_peer_status st;

		if (only && strcmp(only, peers[i].uuid) != 0)
			continue;
		if (journal_peer_status_get(t->j, peers[i].uuid, &st) == 0 &&
		    (st.next_retry_ns || scan)) {
			st.next_retry_ns = 0;
			st.scan_next = st.scan_next || scan;
			journal_peer_status_set(t->j, peers[i].uuid, &st);
		}
	}
	free(peers);
}

int cli_cmd_sync(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "snap-pattern", required_argument, NULL, 's' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "scan", no_argument, NULL, 'S' },
		CLI_HELP_OPTION, { 0 },
	};
	struct sync_progress sp = { .tty = isatty(STDERR_FILENO), .started = util_mono_ns() };
	const char *only = NULL, *pattern = NULL;
	char snap[256] = "", newname[256];
	bool need, nowait = false, scan = false;
	struct cli_tree t;
	int64_t started_ns = util_now_ns();
	int c, ex, r, ret;

	while ((c = cli_getopt(argc, argv, "", opts, &sync_help, &ex)) != -1) {
		if (c == CLI_OPT_EXIT)
			return ex;
		if (c == 'p')
			only = optarg;
		else if (c == 's')
			pattern = optarg;
		else if (c == 'n')
			nowait = true;
		else if (c == 'S')
			scan = true;
	}
	if (argc - optind != 1)
		return cli_usage_error(&sync_help, argv[0], "expected MOUNTPOINT or BACKING");
	if (repl_mirror_snap_name(pattern, newname) < 0)
		return cli_usage_error(&sync_help, argv[0], "bad --snap-pattern '%s'",
				       pattern ? pattern : "");
	/* A running daemon does the work: take a config open to talk to it. */
	ret = cli_tree_open(argv[optind], CLI_TREE_CONFIG, "sync", &t);
	if (ret)
		return ret;
	r = newest_pending(t.j, only, snap, &need);
	if (r == -ENOENT) {
		ret = cli_error("cannot sync '%s': %s", argv[optind], only ?
				"no such unpaused peer" : "it has no unpaused peers");
		goto out;
	}
	if (r < 0) {
		ret = cli_error("cannot sync '%s': %s", argv[optind], journal_strerror(r));
		goto out;
	}
	/* before the snapshot: taking it wakes the daemon at once */
	if (t.daemon)
		clear_backoff(&t, only, scan);
	/* Two syncs in one second: the pattern's name exists, add -2, -3, ... */
	for (int k = 1; need && k < 100; k++) {
		if (k == 1)
			snprintf(snap, sizeof(snap), "%s", newname);
		else if (snprintf(snap, sizeof(snap), "%.240s-%d", newname, k) >= (int)sizeof(snap))
			break;
		if (t.daemon) {
			char *path = NULL;

			if (!t.mountpoint || asprintf(&path, "%s/.snap/%s", t.mountpoint, snap) < 0 ||
			    mkdir(path, 0755) < 0)
				r = t.mountpoint && path ? -errno : -ENOTCONN;
			else
				r = 0;
			free(path);
		} else {
			r = journal_snap_create(t.j, snap, NULL);
		}
		if (r != -EEXIST)
			break;
	}
	if (need) {
		if (r < 0) {
			ret = cli_error("cannot sync '%s': cannot take snapshot '%s': %s",
					argv[optind], snap, strerror(-r));
			goto out;
		}
	}
	if (t.daemon) {
		cli_tree_wake(&t);
		if (!nowait)
			ret = follow_daemon(&t, only, snap, started_ns, &sp);
		goto out;
	}
	/* No daemon: the journal is ours (cli_tree_open took it); sync here. */
	{
		struct repl_mirror_opts mo = { .progress = on_progress, .progress_arg = &sp,
					       .scan = scan };

		r = repl_mirror_sync_peers(t.j, only, cli_self_exe(), &mo);
	}
	if (sp.tty)
		fputs("\r\033[K", stderr);
	if (r < 0)
		ret = cli_error("cannot sync '%s': %s", argv[optind],
				*repl_last_errmsg() ? repl_last_errmsg() : strerror(-r));
out:
	return cli_tree_close(&t, ret);
}
