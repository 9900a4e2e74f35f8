/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `mirrorfs` command: git-style dispatch to one function per subcommand.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli_i.h"
#include "cmd_repl.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;   /* NULL: an alias, not listed */
};

/* One line per subcommand; `mirrorfs help` lists them in this order. */
static const struct cli_command commands[] = {
	{ "mount",   cli_cmd_mount,   "mount a backing directory; every change is journaled" },
	{ "umount",  cli_cmd_umount,  "unmount, and wait until the journal is closed" },
	{ "unmount", cli_cmd_umount,  NULL },
	{ "journal", cli_cmd_journal, "show the changes recorded in the journal" },
	{ "check",   cli_cmd_check,   "compare the journal with the backing tree (unmounted)" },
	{ "snap",    cli_cmd_snap,    "create, delete, list and expire snapshots" },
	{ "peer",    cli_cmd_peer,    "add, remove, list and bootstrap mirror peers" },
	{ "sync",    cli_cmd_sync,    "snapshot and ship it to the mirror peers now" },
	{ "status",  cli_cmd_status,  "mirroring state, lag and errors of every peer" },
	{ "pause",   cli_cmd_pause,   "stop mirroring to all peers, or one" },
	{ "resume",  cli_cmd_resume,  "restart mirroring to all peers, or one" },
	{ "send",    cli_cmd_send,    "write a snapshot as a mirroring stream to standard output" },
	{ "receive", cli_cmd_receive, "apply a mirroring stream from standard input to a replica" },
	{ "recv",    cli_cmd_receive, NULL },
	{ "serve",   cli_cmd_serve,   "the receiving end of mirroring (run by ssh or a file:// peer)" },
};

static const char main_synopsis[] =
	"mirrorfs [--version] [--help] COMMAND [ARGS...]";

static void print_main_help(FILE *f)
{
	fprintf(f, "usage: %s\n\n", main_synopsis);
	fputs("A FUSE passthrough filesystem that journals every change.\n\n"
	      "commands:\n", f);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(commands); i++)
		if (commands[i].summary)
			fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'mirrorfs COMMAND --help' (or 'mirrorfs help COMMAND') describes one command.\n",
	      f);
}

/* "mirrorfs: [CMD: ]MESSAGE" on stderr, in one write so that lines do not interleave. */
static void vreport(const char *cmd, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void vreport(const char *cmd, const char *fmt, va_list ap)
{
	char buf[4096];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "mirrorfs: %s%s%s\n", cmd ? cmd : "", cmd ? ": " : "", buf);
}

static int main_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int main_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(NULL, fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s\n", main_synopsis);
	return CLI_EXIT_USAGE;
}

static const struct cli_command *command_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* `mirrorfs help [COMMAND]` */
static int run_help(int argc, char **argv)
{
	const struct cli_command *cmd;
	char *help_argv[] = { NULL, (char *)"--help", NULL };

	if (argc < 2) {
		print_main_help(stdout);
		return cli_stdout_finish();
	}
	if (argc > 2)
		return main_usage_error("help: too many arguments");
	cmd = command_find(argv[1]);
	if (!cmd)
		return main_usage_error("help: unknown command '%s'", argv[1]);
	help_argv[0] = (char *)cmd->name;
	return cmd->run(2, help_argv);
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;

	log_set_sink(LOG_SINK_STDERR, "mirrorfs");

	if (argc < 2) {
		fprintf(stderr, "usage: %s\n", main_synopsis);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return run_help(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("mirrorfs %s\n", MIRRORFS_VERSION);
		return cli_stdout_finish();
	}
	if (argv[1][0] == '-')
		return main_usage_error("unknown option '%s'", argv[1]);

	cmd = command_find(argv[1]);
	if (!cmd)
		return main_usage_error("unknown command '%s'; see 'mirrorfs help'", argv[1]);
	return cmd->run(argc - 1, argv + 1);
}

/* ---- helpers shared by the subcommands ------------------------------------ */

void cli_print_help(FILE *f, const struct cli_help *help)
{
	fprintf(f, "usage: %s\n\n%s", help->synopsis, help->description);
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(NULL, fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAILURE;
}

int cli_usage_error(const struct cli_help *help, const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(cmd, fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s\n", help->synopsis);
	return CLI_EXIT_USAGE;
}

/*
 * After getopt_long() returned '?' or ':': was the culprit a long option? It
 * then is the previous argument; a short one may sit inside a group ("-fx"),
 * so only optopt names it. glibc sets optopt to 0 for an unknown long option
 * and to the option's value for a known one used wrongly.
 */
static bool bad_option_is_long(char **argv, const struct option *longopts)
{
	const char *arg = argv[optind - 1];
	size_t len;

	if (optopt == 0 || optopt > 255)
		return true;
	if (optind < 2 || strncmp(arg, "--", 2) != 0)
		return false;
	arg += 2;
	len = strcspn(arg, "=");
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == optopt && strncmp(o->name, arg, len) == 0)
			return true;
	return false;
}

int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts, const struct cli_help *help,
	       int *ret_exit)
{
	char opts[64];
	int c;

	/* ':' first: report a missing argument as ':', and print nothing ourselves. */
	snprintf(opts, sizeof(opts), ":%sh", shortopts);
	opterr = 0;
	c = getopt_long(argc, argv, opts, longopts, NULL);
	switch (c) {
	case 'h':
		cli_print_help(stdout, help);
		*ret_exit = cli_stdout_finish();
		return CLI_OPT_EXIT;
	case '?':
	case ':':
		if (bad_option_is_long(argv, longopts))
			snprintf(opts, sizeof(opts), "%.60s", argv[optind - 1]);
		else
			snprintf(opts, sizeof(opts), "-%c", optopt);
		*ret_exit = cli_usage_error(help, argv[0],
					    c == ':' ? "option '%s' requires an argument"
						     : "unknown option '%s'", opts);
		return CLI_OPT_EXIT;
	default:
		return c;
	}
}
