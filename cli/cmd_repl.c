/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs serve`, `mirrorfs send`, `mirrorfs receive`: the two ends of
 * the mirroring stream (docs/STREAM.md) as commands. serve is what an ssh
 * forced command or a file:// peer runs; send and receive move one stream
 * through a file or a pipe, like zfs send/receive.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_i.h"
#include "cmd_repl.h"
#include "mirrorfs/journal.h"
#include "mirrorfs/log.h"
#include "mirrorfs/repl.h"

/* ---- serve ------------------------------------------------------------------ */

static const struct cli_help serve_help = {
	.synopsis = "mirrorfs serve --replica DIR",
	.description =
	"Receive mirroring streams on standard input and answer on standard output,\n"
	"until the input ends: each stream is applied to the replica DIR, which then\n"
	"gets a snapshot of the same name. This is the command an ssh key of a\n"
	"replica forces (see 'mirrorfs peer bootstrap create'); the sender starts it.\n"
	"The replica is locked while a stream is applied (a mount of it fails then).\n"
	"Messages go to standard error.\n"
	"\n"
	"options:\n"
	"  --replica DIR   the replica's backing directory (must exist)\n"
	"  -v, --verbose   log each stream received\n"
	"  -h, --help      show this help\n",
};

int cli_cmd_serve(int argc, char **argv)
{
	enum { OPT_REPLICA = 256 };
	static const struct option longopts[] = {
		{ "replica", required_argument, NULL, OPT_REPLICA },
		{ "verbose", no_argument, NULL, 'v' },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct repl_transport *t = NULL;
	const char *replica = NULL;
	char *abs = NULL;
	int c, r, out_fd, ret = CLI_EXIT_OK;

	while ((c = cli_getopt(argc, argv, "v", longopts, &serve_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			return ret;
		case OPT_REPLICA:
			replica = optarg;
			break;
		case 'v':
			log_set_level(LOG_INFO);
			break;
		}
	}
	if (argc - optind != 0)
		return cli_usage_error(&serve_help, argv[0], "unexpected argument '%s'",
				       argv[optind]);
	if (!replica)
		return cli_usage_error(&serve_help, argv[0], "--replica DIR is required");
	r = cli_path_abs(replica, &abs);
	if (r < 0)
		return cli_error("serve: cannot resolve '%s': %s", replica, strerror(-r));

	cli_ignore_sigpipe();
	/* Standard output carries the protocol: anything printed by mistake goes to stderr. */
	out_fd = dup(STDOUT_FILENO);
	if (out_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		ret = cli_error("serve: cannot set up standard output: %s", strerror(errno));
		goto out;
	}
	r = repl_transport_fd_new(STDIN_FILENO, out_fd, true, &t);
	if (r < 0) {
		close(out_fd);
		ret = cli_error("serve: %s", repl_last_errmsg());
		goto out;
	}
	snprintf(t->peer, sizeof(t->peer), "%s", "the sender");
	r = repl_serve(NULL, abs, t, NULL, NULL);
	if (r < 0)
		ret = cli_error("serve: replica '%s': %s", abs, repl_last_errmsg());
	repl_transport_close(t);
out:
	free(abs);
	return ret;
}

/* ---- send -------------------------------------------------------------------- */

static const struct cli_help send_help = {
	.synopsis = "mirrorfs send [--from SNAP] [--level N] [-v] MOUNTPOINT|BACKING SNAP > FILE",
	.description =
	"Write snapshot SNAP as a mirroring stream to standard output: all of it, or\n"
	"with --from only the changes since the older snapshot SNAP. 'mirrorfs receive'\n"
	"applies it to a replica that has the --from snapshot as its newest. The\n"
	"stream is read from the journal and the snapshots (no tree scan); it works\n"
	"while mounted. Standard output must not be a terminal.\n"
	"\n"
	"options:\n"
	"  --from SNAP     an incremental stream from SNAP\n"
	"  --level N       zstd compression level (default 1)\n"
	"  -v, --verbose   print what was sent to standard error\n"
	"  -h, --help      show this help\n",
};

static int parse_level(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < -100 || v > 22)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* The backing directory of MOUNTPOINT|BACKING (caller frees), or NULL after an error. */
static char *backing_of(const char *arg, const char *what)
{
	struct cli_mount m = { 0 };
	char *backing = NULL;
	const char *why;
	int r;

	r = cli_mount_find(arg, &m);
	if (r < 0) {
		cli_error("cannot %s '%s': cannot read the mount table: %s", what, arg, strerror(-r));
		return NULL;
	}
	if (r > 0) {
		backing = m.backing;
		m.backing = NULL;
		cli_mount_release(&m);
		return backing;
	}
	why = cli_backing_resolve(arg, &backing);
	if (why) {
		cli_error("cannot %s '%s': %s", what, arg, why);
		return NULL;
	}
	return backing;
}

int cli_cmd_send(int argc, char **argv)
{
	enum { OPT_FROM = 256, OPT_LEVEL };
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, OPT_FROM },
		{ "level", required_argument, NULL, OPT_LEVEL },
		{ "verbose", no_argument, NULL, 'v' },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct journal_open_opts jo = { .flags = JOURNAL_OPEN_READONLY };
	struct repl_send_opts so = { .one_way = true };
	struct repl_send_stats st = { 0 };
	struct repl_transport *t = NULL;
	struct journal *j = NULL;
	const char *from = NULL;
	char *backing = NULL;
	bool verbose = false;
	int c, r, ret = CLI_EXIT_OK;

	while ((c = cli_getopt(argc, argv, "v", longopts, &send_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			return ret;
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_LEVEL:
			if (parse_level(optarg, &so.level) < 0)
				return cli_usage_error(&send_help, argv[0], "invalid --level '%s'",
						       optarg);
			break;
		case 'v':
			verbose = true;
			break;
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(&send_help, argv[0], "expected MOUNTPOINT|BACKING and SNAP");
	if (isatty(STDOUT_FILENO))
		return cli_error("send: refusing to write a stream to a terminal; redirect "
				 "standard output to a file or a pipe");
	backing = backing_of(argv[optind], "send from");
	if (!backing)
		return CLI_EXIT_FAILURE;
	r = journal_open(backing, &jo, &j);
	if (r < 0) {
		ret = cli_error("cannot send from '%s': %s", argv[optind], journal_strerror(r));
		goto out;
	}
	cli_ignore_sigpipe();
	r = repl_transport_fd_new(STDIN_FILENO, STDOUT_FILENO, false, &t);
	if (r < 0) {
		ret = cli_error("send: %s", repl_last_errmsg());
		goto out;
	}
	snprintf(t->peer, sizeof(t->peer), "%s", "standard output");
	r = repl_send(j, from, argv[optind + 1], t, &so, &st);
	if (r < 0) {
		ret = cli_error("send: %s", repl_last_errmsg());
		goto out;
	}
	if (verbose)
		fprintf(stderr, "sent '%s'%s%s%s: %" PRIu64 " records, %" PRIu64 " data bytes in %"
			PRIu64 " files, %" PRIu64 " bytes written, %.1f s\n", argv[optind + 1],
			from ? " (from '" : "", from ? from : "", from ? "')" : "", st.records,
			st.data_bytes, st.files, st.wire_bytes, (double)st.duration_ns / 1e9);
out:
	repl_transport_close(t);
	journal_close(j);
	free(backing);
	return ret;
}

/* ---- receive ------------------------------------------------------------------- */

static const struct cli_help receive_help = {
	.synopsis = "mirrorfs receive [-v] REPLICA < FILE",
	.description =
	"Apply one mirroring stream from standard input (made by 'mirrorfs send') to\n"
	"the replica directory REPLICA and snapshot it under the stream's name. An\n"
	"incremental stream needs its --from snapshot as the replica's newest; a\n"
	"full stream needs an empty replica. An interrupted receive of the same\n"
	"stream continues where it stopped. The replica must not be mounted.\n"
	"\n"
	"options:\n"
	"  -v, --verbose   print what was received to standard error\n"
	"  -h, --help      show this help\n",
};

int cli_cmd_receive(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct repl_serve_opts so = { .one_way = true };
	struct repl_serve_stats st = { 0 };
	struct repl_transport *t = NULL;
	bool verbose = false;
	char *abs = NULL;
	int c, r, ret = CLI_EXIT_OK;

	while ((c = cli_getopt(argc, argv, "v", longopts, &receive_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			return ret;
		case 'v':
			verbose = true;
			break;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&receive_help, argv[0], "expected REPLICA");
	if (isatty(STDIN_FILENO))
		return cli_error("receive: refusing to read a stream from a terminal; redirect "
				 "standard input from a file or a pipe");
	r = cli_path_abs(argv[optind], &abs);
	if (r < 0)
		return cli_error("cannot receive into '%s': %s", argv[optind], strerror(-r));
	r = repl_transport_fd_new(STDIN_FILENO, STDOUT_FILENO, false, &t);
	if (r < 0) {
		ret = cli_error("receive: %s", repl_last_errmsg());
		goto out;
	}
	snprintf(t->peer, sizeof(t->peer), "%s", "standard input");
	r = repl_serve(NULL, abs, t, &so, &st);
	if (r < 0) {
		ret = cli_error("cannot receive into '%s': %s", argv[optind], repl_last_errmsg());
		goto out;
	}
	if (verbose)
		fprintf(stderr, "received '%s': %" PRIu64 " records applied%s\n", st.last_snapshot,
			st.records_applied, st.resumed_from ? " (resumed)" : "");
out:
	repl_transport_close(t);
	free(abs);
	return ret;
}
