/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_JOURNAL_DIFF_I_H
#define MIRRORFS_JOURNAL_DIFF_I_H

/*
 * Shared by the two ways of computing a change set: from the change log
 * (diff.c, journal_diff()) and by comparing snapshot trees guided by
 * rctime (scan.c, journal_diff_scan()). Both emit the same sequence.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mirrorfs/journal.h"

/* A directory entry of an UNLINK or LINK. */
struct dent {
	uint64_t parent, ino;
	char *name;             /* owned */
	uint32_t depth, type;
	bool survives;
};
/* qsort orders: UNLINK deepest first, LINK shallowest first; then (parent, name). */
int dent_cmp_unlink(const void *a, const void *b);
int dent_cmp_link(const void *a, const void *b);
void dents_free(struct dent *v, size_t n);
int emit_entries(enum journal_diff_kind kind, const struct dent *v, size_t n,
		 int (*cb)(void *, const struct journal_diff *), void *arg);
int u64_cmp(const void *a, const void *b);

#endif /* MIRRORFS_JOURNAL_DIFF_I_H */
