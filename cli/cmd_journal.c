/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs journal`: print the change log.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirrorfs/journal.h"

static const struct cli_help journal_help = {
	.synopsis = "mirrorfs journal [--since SEQ] [--json] MOUNTPOINT|BACKING",
	.description =
	"Print the changes recorded in the journal, oldest first, one per line:\n"
	"\n"
	"  SEQ  TIME  OP  PATH[ -> NEW_PATH][ off=N len=N][ size=N][ xattr=NAME]\n"
	"\n"
	"TIME is local time with milliseconds; PATH is as of the change, from the\n"
	"root of the tree. In paths, a backslash prints as \\\\ and control characters\n"
	"and bytes that are not UTF-8 as \\xNN. off/len are given for writes,\n"
	"fallocate and punch; size for truncate. Works while mounted (read-only\n"
	"access to the journal).\n"
	"\n"
	"options:\n"
	"  --since SEQ   only changes after sequence number SEQ\n"
	"  --json        one JSON object per line with the keys seq, time (UTC,\n"
	"                ISO-8601), time_ns (since the epoch), op, ino, path, and\n"
	"                new_path, offset, length, xattr where they apply; in a path\n"
	"                that is not UTF-8 each bad byte is U+FFFD, and path_hex\n"
	"                (new_path_hex) holds the exact bytes in hex\n"
	"  -h, --help    show this help\n",
};

static int print_change(void *arg, const struct journal_change *c)
{
	const char *path = c->path ? c->path : c->name ? c->name : "-";
	char when[64];

	cli_format_time(c->time_ns, when, sizeof(when));
	printf("%llu  %s  %s  ", (unsigned long long)c->seq, when, journal_op_name(c->op));
	cli_put_escaped(stdout, path);
	if (c->new_path || c->new_name) {
		fputs(" -> ", stdout);
		cli_put_escaped(stdout, c->new_path ? c->new_path : c->new_name);
	}
	switch (c->op) {
	case JOP_WRITE:
	case JOP_FALLOCATE:
	case JOP_PUNCH:
		printf(" off=%llu len=%llu", (unsigned long long)c->offset,
		       (unsigned long long)c->length);
		break;
	case JOP_TRUNCATE:
		printf(" size=%llu", (unsigned long long)c->length);
		break;
	default:
		break;
	}
	if (c->xattr_name) {
		fputs(" xattr=", stdout);
		cli_put_escaped(stdout, c->xattr_name);
	}
	putchar('\n');
	return cli_stdout_error();
}

/* journal_changes_json() fails so only when writing to its fd. */
static bool is_write_error(int r)
{
	return r == -ENOSPC || r == -EDQUOT || r == -EFBIG || r == -EBADF;
}

/* A sequence number: decimal digits only, no sign, no overflow. */
static int parse_seq(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -ERANGE;
	*ret = v;
	return 0;
}

int cli_cmd_journal(int argc, char **argv)
{
	enum { OPT_SINCE = 256, OPT_JSON };
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "json", no_argument, NULL, OPT_JSON },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct journal_open_opts open_opts = { .flags = JOURNAL_OPEN_READONLY };
	struct cli_mount m = { 0 };
	struct journal *j = NULL;
	char *backing = NULL;
	const char *arg, *why;
	uint64_t since = 0;
	bool json = false;
	int c, r, ret = CLI_EXIT_OK;

	while ((c = cli_getopt(argc, argv, "", longopts, &journal_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			return ret;
		case OPT_SINCE:
			if (parse_seq(optarg, &since) < 0)
				return cli_usage_error(&journal_help, argv[0],
						       "invalid --since '%s': expected a "
						       "sequence number", optarg);
			break;
		case OPT_JSON:
			json = true;
			break;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&journal_help, argv[0], "expected MOUNTPOINT or BACKING");
	arg = argv[optind];

	/* A mount point stands for its backing directory. */
	r = cli_mount_find(arg, &m);
	if (r < 0)
		return cli_error("cannot read the journal of '%s': cannot read the mount "
				 "table: %s", arg, strerror(-r));
	if (r > 0) {
		backing = m.backing;
		m.backing = NULL;
	} else {
		why = cli_backing_resolve(arg, &backing);
		if (why) {
			ret = cli_error("cannot read the journal of '%s': %s", arg, why);
			goto out;
		}
	}

	r = journal_open(backing, &open_opts, &j);
	if (r < 0) {
		ret = cli_error("cannot read the journal of '%s': %s", arg, journal_strerror(r));
		goto out;
	}

	cli_ignore_sigpipe();
	if (json) {
		fflush(stdout);
		r = journal_changes_json(j, since, STDOUT_FILENO);
	} else {
		r = journal_changes(j, since, print_change, NULL);
	}
	/* -EPIPE: the reader has what it wanted (| head); quiet. */
	if (r == -EPIPE || (r < 0 && r == cli_stdout_error()))
		ret = cli_stdout_finish();
	else if (json && is_write_error(r))   /* reading never fails like these */
		ret = cli_error("cannot write to standard output: %s", strerror(-r));
	else if (r < 0)
		ret = cli_error("cannot read the journal of '%s': %s", arg, journal_strerror(r));
	else
		ret = cli_stdout_finish();
out:
	journal_close(j);
	cli_mount_release(&m);
	free(backing);
	return ret;
}
