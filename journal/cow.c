/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copy-on-write preservation for snapshots (DESIGN §4). Until snapshots
 * exist no object is seen by one, and every hook is a no-op by definition.
 */
#include <stdlib.h>

#include "journal_i.h"
#include "cow_i.h"

int cow_before_write(struct journal *j, struct jobj *o, int fd, off_t off, off_t len)
{
	return 0;
}

int cow_before_truncate(struct journal *j, struct jobj *o, int fd, off_t new_size)
{
	return 0;
}

int cow_before_fallocate(struct journal *j, struct jobj *o, int fd, int mode, off_t off, off_t len)
{
	return 0;
}

int cow_before_attr(struct journal *j, struct jobj *o, int fd)
{
	return 0;
}

int cow_before_unlink(struct journal *j, struct jobj *o, int dirfd, const char *name, nlink_t nlink)
{
	return 0;
}

void cow_state_release(struct cow_state *c)
{
	free(c->chunk_bits);
	c->chunk_bits = NULL;
	c->chunk_words = 0;
}
