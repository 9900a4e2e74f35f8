/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Paths and the mount table: which mount point is a mirrorfs mount, and of
 * which backing directory (read from /proc/self/mountinfo, where our mounts
 * have fstype "fuse.mirrorfs" and the backing path as their source).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"

#define MIRRORFS_FSTYPE "fuse.mirrorfs"

void cli_mount_release(struct cli_mount *m)
{
	free(m->mountpoint);
	free(m->backing);
	m->mountpoint = m->backing = NULL;
}

int cli_path_abs(const char *path, char **ret_abs)
{
	char *abs, *copy, *slash, *parent_abs;
	const char *parent, *last;
	int r;

	abs = realpath(path, NULL);
	if (abs) {
		*ret_abs = abs;
		return 0;
	}
	r = -errno;

	/* Resolve the parent, keep the last component (e.g. a dead FUSE mount). */
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		parent = ".";
		last = copy;
	} else if (slash == copy) {
		parent = "/";
		last = slash + 1;
	} else {
		*slash = '\0';
		parent = copy;
		last = slash + 1;
	}
	if (!*last || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
		free(copy);
		return r;
	}
	parent_abs = realpath(parent, NULL);
	if (!parent_abs) {
		free(copy);
		return r;
	}
	if (asprintf(&abs, "%s/%s", strcmp(parent_abs, "/") == 0 ? "" : parent_abs, last) < 0) {
		abs = NULL;
		r = -ENOMEM;
	}
	free(parent_abs);
	free(copy);
	if (!abs)
		return r;
	*ret_abs = abs;
	return 0;
}

const char *cli_backing_resolve(const char *arg, char **ret_backing)
{
	_cleanup_free_ char *backing = NULL, *db = NULL;
	struct stat st;

	backing = realpath(arg, NULL);
	if (!backing)
		return strerror(errno);
	if (stat(backing, &st) < 0)
		return strerror(errno);
	if (!S_ISDIR(st.st_mode))
		return strerror(ENOTDIR);
	if (asprintf(&db, "%s/%s/%s", backing, JOURNAL_STATE_DIR, JOURNAL_DB_NAME) < 0) {
		db = NULL;
		return strerror(ENOMEM);
	}
	if (access(db, F_OK) < 0)
		return errno == ENOENT ? "it has no journal (never mounted)" : strerror(errno);
	*ret_backing = backing;
	backing = NULL;
	return NULL;
}

/* Undo mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) in place. */
static void unescape_octal(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/*
 * Split one mountinfo line into the mount point, fstype and source:
 * "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
 * Modifies `line`. Returns false if it does not parse.
 */
static bool parse_line(char *line, char **ret_mountpoint, char **ret_fstype, char **ret_source)
{
	char *field[6], *save = NULL, *tok, *fstype, *source;
	int n = 0;

	line[strcspn(line, "\n")] = '\0';
	while (n < 6 && (tok = strtok_r(n ? NULL : line, " ", &save)))
		field[n++] = tok;
	if (n < 6)
		return false;
	/* Skip the optional fields up to the "-" separator. */
	for (tok = strtok_r(NULL, " ", &save); tok && strcmp(tok, "-") != 0;
	     tok = strtok_r(NULL, " ", &save))
		;
	if (!tok)
		return false;
	fstype = strtok_r(NULL, " ", &save);
	source = strtok_r(NULL, " ", &save);
	if (!fstype || !source)
		return false;
	unescape_octal(field[4]);
	unescape_octal(fstype);
	unescape_octal(source);
	*ret_mountpoint = field[4];
	*ret_fstype = fstype;
	*ret_source = source;
	return true;
}

enum match_by { MATCH_MOUNTPOINT, MATCH_BACKING };

/*
 * Find the last (topmost) mount matching `abs` by mount point or source.
 * Matching by mount point, the topmost mount there must be mirrorfs;
 * matching by source, only mirrorfs mounts are considered.
 */
static int mount_find(const char *abs, enum match_by by, struct cli_mount *ret)
{
	char *line = NULL, *mountpoint, *fstype, *source;
	char *found_mp = NULL, *found_src = NULL;
	bool found_is_ours = false;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		bool ours;

		if (!parse_line(line, &mountpoint, &fstype, &source))
			continue;
		ours = strcmp(fstype, MIRRORFS_FSTYPE) == 0;
		if (by == MATCH_MOUNTPOINT ? strcmp(mountpoint, abs) != 0
					   : (!ours || strcmp(source, abs) != 0))
			continue;
		free(found_mp);
		free(found_src);
		found_mp = strdup(mountpoint);
		found_src = strdup(source);
		if (!found_mp || !found_src) {
			r = -ENOMEM;
			goto out;
		}
		found_is_ours = ours;
	}
	if (ferror(f)) {
		r = -EIO;
		goto out;
	}
	if (found_mp && found_is_ours) {
		ret->mountpoint = found_mp;
		ret->backing = found_src;
		found_mp = found_src = NULL;
		r = 1;
	}
out:
	free(found_mp);
	free(found_src);
	free(line);
	fclose(f);
	return r;
}

int cli_mount_find(const char *path, struct cli_mount *ret)
{
	char *abs;
	int r;

	r = cli_path_abs(path, &abs);
	if (r < 0)
		return r == -ENOENT || r == -ENOTDIR ? 0 : r;
	r = mount_find(abs, MATCH_MOUNTPOINT, ret);
	free(abs);
	return r;
}

int cli_mount_find_backing(const char *backing, struct cli_mount *ret)
{
	return mount_find(backing, MATCH_BACKING, ret);
}
