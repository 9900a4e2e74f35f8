/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_CLI_I_H
#define MIRRORFS_CLI_I_H

/*
 * Private to cli/: the subcommands and the helpers they share.
 *
 * A subcommand is `int cli_cmd_<name>(int argc, char **argv)`: argv[0] is
 * the subcommand's name, the rest its arguments. It returns the process
 * exit code: 0 ok, 1 failure, 2 usage. Adding one is a function in its
 * cmd_*.c file, a prototype here and one line in main.c's table.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

/* ---- subcommands ----------------------------------------------------------- */

int cli_cmd_mount(int argc, char **argv);    /* cmd_mount.c */
int cli_cmd_umount(int argc, char **argv);   /* cmd_mount.c */
int cli_cmd_journal(int argc, char **argv);  /* cmd_journal.c */
int cli_cmd_check(int argc, char **argv);    /* cmd_check.c */
int cli_cmd_snap(int argc, char **argv);     /* cmd_snap.c */
int cli_cmd_peer(int argc, char **argv);    /* cmd_peer.c */
int cli_cmd_sync(int argc, char **argv);    /* cmd_sync.c */
int cli_cmd_status(int argc, char **argv);  /* cmd_sync.c */
int cli_cmd_pause(int argc, char **argv);   /* cmd_sync.c */
int cli_cmd_resume(int argc, char **argv);  /* cmd_sync.c */

/* ---- help and option parsing (main.c) --------------------------------------- */

/*
 * What `mirrorfs CMD --help` prints: "usage: " + `synopsis` (one or more
 * lines, each a complete command line), a blank line, then `description`.
 * A usage error prints only the synopsis, to stderr.
 */
struct cli_help {
	const char *synopsis;
	const char *description;
};

/* Every subcommand's long option table ends with this before its {0} entry. */
#define CLI_HELP_OPTION { "help", no_argument, NULL, 'h' }

/* cli_getopt() returns this when the subcommand must return *ret_exit now. */
#define CLI_OPT_EXIT 0

/*
 * getopt_long() with what every subcommand shares: -h/--help prints the help
 * to stdout (*ret_exit = 0), an unknown option or a missing argument prints a
 * usage error (*ret_exit = 2); both return CLI_OPT_EXIT. Otherwise returns
 * the option's value, or -1 when the options are done (operands are then
 * argv[optind..argc-1]; GNU permutation lets options follow operands).
 * `shortopts` must not start with ':' or contain 'h'.
 */
int cli_getopt(int argc, char **argv, const char *shortopts,
	       const struct option *longopts, const struct cli_help *help,
	       int *ret_exit);

void cli_print_help(FILE *f, const struct cli_help *help);

/* "mirrorfs: " + message + newline, to stderr. Returns CLI_EXIT_FAILURE. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * "mirrorfs: CMD: " + message, then the subcommand's synopsis, to stderr.
 * Returns CLI_EXIT_USAGE.
 */
int cli_usage_error(const struct cli_help *help, const char *cmd,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- paths and the mount table (mountinfo.c) ------------------------------- */

/*
 * A mirrorfs mount as /proc/self/mountinfo shows it: fstype "fuse.mirrorfs",
 * source = the absolute path of the backing directory.
 */
struct cli_mount {
	char *mountpoint;  /* absolute, unescaped */
	char *backing;     /* absolute, unescaped */
};

void cli_mount_release(struct cli_mount *m);

/*
 * The absolute, canonical form of `path`. A path whose last component
 * cannot be resolved (a dead FUSE mount answers ENOTCONN) is resolved up to
 * its parent and the last component appended as given. Caller frees
 * *ret_abs. -errno on failure.
 */
int cli_path_abs(const char *path, char **ret_abs);

/*
 * Resolve `arg`, a backing directory, to its canonical path in *ret_backing
 * (caller frees) and return NULL if it is a directory with a journal.
 * Otherwise return why not, a phrase for "cannot X 'ARG': WHY" (*ret_backing
 * untouched). Never creates anything: only a mount creates a journal.
 */
const char *cli_backing_resolve(const char *arg, char **ret_backing);

/*
 * If `path` is the mount point of a mirrorfs mount (the topmost mount
 * there), fill *ret and return 1; return 0 if it is not; -errno if the
 * mount table cannot be read.
 */
int cli_mount_find(const char *path, struct cli_mount *ret);

/* Like cli_mount_find(), for the mount of `backing` (absolute and canonical). */
int cli_mount_find_backing(const char *backing, struct cli_mount *ret);

/* ---- output (output.c) ------------------------------------------------------ */

/*
 * Let a write to a closed pipe fail with EPIPE instead of killing the
 * process, so `mirrorfs journal MNT | head -1` ends quietly.
 */
void cli_ignore_sigpipe(void);

/*
 * Flush stdout. Returns CLI_EXIT_OK if everything reached it or the reader
 * went away (EPIPE: quiet, as `| head` expects), else prints the error and
 * returns CLI_EXIT_FAILURE.
 */
int cli_stdout_finish(void);

/*
 * 0, or -errno of the first failed write to stdout. Call it right after
 * writing (errno must still be the write's) to stop producing output early.
 */
int cli_stdout_error(void);

/*
 * Write `s` to `f` so that one record stays one line and nothing is lost:
 * valid UTF-8 as is, backslash as "\\", every control character and every
 * byte that is not part of valid UTF-8 as "\xNN".
 */
void cli_put_escaped(FILE *f, const char *s);

/* True if `s` is valid UTF-8. */
bool cli_utf8_valid(const char *s);

/*
 * Write `s` as a JSON string (with quotes). Bytes that are not valid UTF-8
 * become U+FFFD (cli_put_json_hex() gives the exact bytes).
 */
void cli_put_json_string(FILE *f, const char *s);

/* Write the bytes of `s` as uppercase hex (like journal's path_hex), with quotes. */
void cli_put_json_hex(FILE *f, const char *s);

/* Local time as ISO-8601 with milliseconds: 2024-05-01T12:34:56.789+02:00. */
void cli_format_time(int64_t time_ns, char *buf, size_t size);

#endif /* MIRRORFS_CLI_I_H */
