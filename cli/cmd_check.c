/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs check`: compare the journal with the backing tree, and repair.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirrorfs/journal.h"

static const struct cli_help check_help = {
	.synopsis = "mirrorfs check [--repair] [--json] BACKING",
	.description =
	"Compare the journal of the backing directory BACKING with the tree:\n"
	"entries missing from the tree or unknown to the journal, changed types,\n"
	"file sizes, recursive stats. Such drift comes from changes made to BACKING\n"
	"while it was not mounted. Prints one line per difference,\n"
	"\n"
	"  KIND: PATH: DETAIL     (KIND: missing, unknown, type, size, rstat)\n"
	"\n"
	"then 'N differences' or 'no drift'. BACKING must not be mounted.\n"
	"Exit status: 0 no drift (or all of it repaired), 1 drift remains or error.\n"
	"\n"
	"options:\n"
	"  --repair     record every difference in the journal, so that it matches\n"
	"               the tree again (what a mount would have recorded)\n"
	"  --json       print one JSON object: backing, differences (an array of\n"
	"               {kind, path, detail}, plus path_hex when the path is not\n"
	"               UTF-8), count, repaired, remaining\n"
	"  -h, --help   show this help\n",
};

struct check_ctx {
	bool json;
	unsigned long n;   /* differences printed so far */
};

static const char *drift_kind_name(enum journal_drift_kind kind)
{
	switch (kind) {
	case JOURNAL_DRIFT_MISSING: return "missing";
	case JOURNAL_DRIFT_UNKNOWN: return "unknown";
	case JOURNAL_DRIFT_TYPE:    return "type";
	case JOURNAL_DRIFT_SIZE:    return "size";
	case JOURNAL_DRIFT_RSTAT:   return "rstat";
	}
	return "drift";
}

static void print_drift(void *arg, const struct journal_drift *d)
{
	struct check_ctx *ctx = arg;
	const char *path = d->path ? d->path : "";

	if (ctx->json) {
		fputs(ctx->n ? ",\n  {" : "\n  {", stdout);
		printf("\"kind\":\"%s\",\"path\":", drift_kind_name(d->kind));
		cli_put_json_string(stdout, path);
		if (!cli_utf8_valid(path)) {
			fputs(",\"path_hex\":", stdout);
			cli_put_json_hex(stdout, path);
		}
		fputs(",\"detail\":", stdout);
		cli_put_json_string(stdout, d->detail ? d->detail : "");
		putchar('}');
	} else {
		printf("%s: ", drift_kind_name(d->kind));
		cli_put_escaped(stdout, path);
		if (d->detail) {
			fputs(": ", stdout);
			cli_put_escaped(stdout, d->detail);
		}
		putchar('\n');
	}
	ctx->n++;
}

static void print_summary(const struct check_ctx *ctx, const char *backing, int found,
			  bool repair, int remaining)
{
	if (ctx->json) {   /* the rest of the object print_drift() began */
		fputs("\"backing\":", stdout);
		cli_put_json_string(stdout, backing);
		printf(",\"count\":%d,\"repaired\":%s,\"remaining\":%d}\n", found,
		       repair && found > 0 ? "true" : "false", remaining);
		return;
	}
	if (found == 0)
		puts("no drift");
	else if (!repair)
		printf("%d difference%s\n", found, found == 1 ? "" : "s");
	else if (remaining == 0)
		printf("%d difference%s, repaired\n", found, found == 1 ? "" : "s");
	else
		printf("%d difference%s, %d remain%s after repair\n", found,
		       found == 1 ? "" : "s", remaining, remaining == 1 ? "s" : "");
}

static void ignore_drift(void *arg, const struct journal_drift *d)
{
}

/* Why journal_open() failed, for "cannot check 'X': ...". */
static int open_error(const char *arg, const char *backing, int r)
{
	struct cli_mount m = { 0 };

	if (r != -EBUSY)
		return cli_error("cannot check '%s': %s", arg, journal_strerror(r));
	if (cli_mount_find_backing(backing, &m) > 0) {
		cli_error("cannot check '%s': it is mounted at '%s'; unmount it first", arg,
			  m.mountpoint);
		cli_mount_release(&m);
		return CLI_EXIT_FAILURE;
	}
	return cli_error("cannot check '%s': it is mounted; unmount it first", arg);
}

int cli_cmd_check(int argc, char **argv)
{
	enum { OPT_REPAIR = 256, OPT_JSON };
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, OPT_REPAIR },
		{ "json", no_argument, NULL, OPT_JSON },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct journal_open_opts open_opts = { 0 };
	struct check_ctx ctx = { 0 };
	struct cli_mount m = { 0 };
	struct journal *j = NULL;
	char *backing = NULL;
	bool repair = false;
	int c, r, found, remaining = 0, ret = CLI_EXIT_OK;
	const char *arg, *why;

	while ((c = cli_getopt(argc, argv, "", longopts, &check_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			return ret;
		case OPT_REPAIR:
			repair = true;
			break;
		case OPT_JSON:
			ctx.json = true;
			break;
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&check_help, argv[0], "expected BACKING");
	arg = argv[optind];

	r = cli_mount_find(arg, &m);
	if (r > 0) {
		ret = cli_error("cannot check '%s': it is a mirrorfs mount of '%s'; "
				"unmount it first, then check '%s'", arg, m.backing, m.backing);
		goto out;
	}
	why = cli_backing_resolve(arg, &backing);
	if (why) {
		ret = cli_error("cannot check '%s': %s", arg, why);
		goto out;
	}

	r = journal_open(backing, &open_opts, &j);
	if (r < 0) {
		ret = open_error(arg, backing, r);
		goto out;
	}

	cli_ignore_sigpipe();   /* a repair goes on even if the reader of its report leaves */
	if (ctx.json)
		fputs("{\"differences\":[", stdout);
	found = journal_check(j, repair, print_drift, &ctx);
	remaining = found;
	if (found > 0 && repair)   /* verify: what is left after the repair? */
		remaining = journal_check(j, false, ignore_drift, NULL);
	if (found < 0 || remaining < 0) {
		if (ctx.json)
			fputs("]}\n", stdout);   /* keep stdout parseable; the error is on stderr */
		cli_stdout_finish();
		ret = cli_error("cannot check '%s': %s", arg,
				journal_strerror(found < 0 ? found : remaining));
		goto out;
	}
	if (ctx.json)
		fputs(ctx.n ? "\n]," : "],", stdout);
	print_summary(&ctx, backing, found, repair, remaining);
	ret = cli_stdout_finish();
	if (ret == CLI_EXIT_OK && remaining > 0)
		ret = CLI_EXIT_FAILURE;
	r = journal_close(j);
	j = NULL;
	if (r < 0)
		ret = cli_error("cannot check '%s': cannot close the journal: %s", arg,
				journal_strerror(r));
out:
	journal_close(j);
	cli_mount_release(&m);
	free(backing);
	return ret;
}
