/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_REPL_SSH_I_H
#define MIRRORFS_REPL_SSH_I_H

/* Private to replicator/: the libssh pieces shared by transport_ssh.c and keys.c. */

#include <libssh/libssh.h>

/*
 * The one translation of a libssh failure to -errno. `session` may be NULL
 * (the pki functions have none); `what` says what failed. Sets the
 * per-thread message to "WHAT: libssh's reason".
 */
int repl_ssh_err(ssh_session session, const char *what);

/* "SHA256:..." of a key (malloc'd, free()). */
int repl_key_fingerprint(ssh_key key, char **ret);

#endif /* MIRRORFS_REPL_SSH_I_H */
