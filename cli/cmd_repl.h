/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_CMD_REPL_H
#define MIRRORFS_CMD_REPL_H

/* Private to cli/: the mirroring stream's subcommands (cmd_repl.c). */

int cli_cmd_serve(int argc, char **argv);    /* the receiving end, over stdin/stdout */
int cli_cmd_send(int argc, char **argv);     /* a stream to stdout (zfs send) */
int cli_cmd_receive(int argc, char **argv);  /* a stream from stdin (zfs receive) */

#endif /* MIRRORFS_CMD_REPL_H */
