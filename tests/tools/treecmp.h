/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_TESTS_TREECMP_H
#define MIRRORFS_TESTS_TREECMP_H

/*
 * treecmp: compare two directory trees the way a user of a mirror would:
 * names, types, regular file sizes and contents (byte for byte), the data/hole
 * map (SEEK_DATA/SEEK_HOLE), permission bits, owner, mtime (to the
 * nanosecond), symlink targets, device numbers, extended attributes, and the
 * hard-link structure (which paths share an inode: the partition of paths is
 * compared, never inode numbers). Atime, ctime, st_blocks, inode numbers and
 * directory sizes are never compared.
 *
 * Each difference is printed as one line "treecmp: PATH: what: A=... B=..."
 * (PATH relative to the roots, "." for the roots themselves).
 */

#include <stdio.h>

enum treecmp_flags {
	TREECMP_NO_MTIME = 1 << 0,      /* do not compare mtimes */
	TREECMP_NO_HOLES = 1 << 1,      /* do not compare the data/hole map */
	TREECMP_NO_OWNER = 1 << 2,      /* do not compare uid/gid */
	TREECMP_NO_MODE = 1 << 3,       /* do not compare permission bits */
	TREECMP_NO_XATTR = 1 << 4,      /* do not compare extended attributes */
	TREECMP_NO_LINKS = 1 << 5,      /* do not compare nlink and hard-link structure */
	TREECMP_NO_ROOT = 1 << 6,       /* do not compare the attributes of the roots */
};

struct treecmp_opts {
	unsigned flags;              /* enum treecmp_flags */
	/*
	 * Relative paths (as printed, e.g. ".snap" or "d/x") left out of the
	 * comparison on both sides; NULL-terminated array, may be NULL.
	 */
	const char *const *exclude;
	/*
	 * Extended attributes whose name starts with one of these prefixes are
	 * compared; NULL-terminated, NULL means { "user.", "trusted.",
	 * "system.posix_acl_", NULL }.
	 */
	const char *const *xattr_prefixes;
	FILE *out;                   /* differences go here; NULL: stdout */
};

/* Parse "mtime,holes,owner,mode,xattr,links,root" into TREECMP_NO_* flags; -1 if unknown. */
int treecmp_parse_ignore(const char *list, unsigned *ret_flags);

/*
 * Compare the trees rooted at `a` and `b`. Returns the number of differences
 * found (0: equal) or -errno if a root cannot be opened. Errors reading
 * anything below the roots are reported as differences.
 */
long treecmp_trees(const char *a, const char *b, const struct treecmp_opts *opts);

#endif /* MIRRORFS_TESTS_TREECMP_H */
