/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the mirroring commands: finding a tree and opening its journal
 * without getting in the way of a running mount daemon; waking that
 * daemon; the daemon's replicator hooks.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirror_i.h"
#include "mirrorfs/log.h"
#include "mirrorfs/mirror.h"

int cli_tree_open(const char *arg, enum cli_tree_access access, const char *verb,
		  struct cli_tree *ret)
{
	struct journal_open_opts oo = { 0 };
	struct cli_mount m = { 0 };
	struct cli_tree t = { .arg = (char *)arg };
	const char *why;
	int r;

	r = cli_mount_find(arg, &m);
	if (r < 0)
		return cli_error("cannot %s '%s': cannot read the mount table: %s", verb, arg,
				 strerror(-r));
	if (r > 0) {
		t.backing = m.backing;
		t.mountpoint = m.mountpoint;
	} else {
		why = cli_backing_resolve(arg, &t.backing);
		if (why)
			return cli_error("cannot %s '%s': %s", verb, arg, why);
		if (cli_mount_find_backing(t.backing, &m) > 0) {
			t.mountpoint = m.mountpoint;
			free(m.backing);
		}
	}
	r = journal_holder_pid(t.backing, &t.daemon);
	if (r < 0) {
		r = cli_error("cannot %s '%s': %s", verb, arg, strerror(-r));
		goto fail;
	}
	if (access == CLI_TREE_READ)
		oo.flags = JOURNAL_OPEN_READONLY;
	else if (t.daemon)
		oo.flags = access == CLI_TREE_CONFIG ? JOURNAL_OPEN_CONFIG : JOURNAL_OPEN_READONLY;
	r = journal_open(t.backing, &oo, &t.j);
	if (r == -EBUSY) {
		/* a daemon started meanwhile */
		oo.flags = access == CLI_TREE_CONFIG ? JOURNAL_OPEN_CONFIG : JOURNAL_OPEN_READONLY;
		journal_holder_pid(t.backing, &t.daemon);
		r = journal_open(t.backing, &oo, &t.j);
	}
	if (r < 0) {
		r = cli_error("cannot %s '%s': %s", verb, arg, journal_strerror(r));
		goto fail;
	}
	*ret = t;
	return 0;
fail:
	free(t.backing);
	free(t.mountpoint);
	return r;
}

int cli_tree_close(struct cli_tree *t, int exit_code)
{
	int r = journal_close(t->j);

	if (r < 0 && exit_code == CLI_EXIT_OK)
		exit_code = cli_error("cannot close the journal of '%s': %s", t->arg,
				      journal_strerror(r));
	free(t->backing);
	free(t->mountpoint);
	memset(t, 0, sizeof(*t));
	return exit_code;
}

void cli_tree_wake(const struct cli_tree *t)
{
	if (t->daemon > 0)
		kill(t->daemon, SIGUSR1);
}

const char *cli_self_exe(void)
{
	static char buf[PATH_MAX];
	ssize_t n;

	if (buf[0])
		return buf;
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		snprintf(buf, sizeof(buf), "mirrorfs");
	else
		buf[n] = '\0';
	return buf;
}

void cli_format_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, size, "%.1f %s", v, unit[u]);
}

/* ---- the mount daemon's replicator --------------------------------------- */

static struct repl_mirror *daemon_mirror;   /* for the signal handler */

static void on_sigusr1(int sig)
{
	(void)sig;
	repl_mirror_wake(daemon_mirror);   /* async-signal-safe: one write(2) */
}

static void on_snapshot(void *arg)
{
	repl_mirror_wake(arg);
}

int cli_mirror_on_start(void *arg, struct journal *j)
{
	struct cli_mount_mirror *mm = arg;
	struct repl_mirror_opts o = {
		.snap_interval_s = mm->snap_interval_s,
		.snap_pattern = mm->snap_pattern,
	};
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	int r;

	r = repl_mirror_start(j, cli_self_exe(), &o, &mm->m);
	if (r < 0)
		return r;
	daemon_mirror = mm->m;
	journal_set_snap_hook(j, on_snapshot, mm->m);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	return 0;
}

void cli_mirror_on_stop(void *arg)
{
	struct cli_mount_mirror *mm = arg;
	struct sigaction sa = { .sa_handler = SIG_IGN };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	daemon_mirror = NULL;
	repl_mirror_stop(mm->m);
	mm->m = NULL;
}
