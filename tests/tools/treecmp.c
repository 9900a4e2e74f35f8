/* SPDX-License-Identifier: GPL-2.0-or-later */
/* treecmp: compare two directory trees (see treecmp.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "treecmp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* One non-directory seen during the walk: its path and its inode. */
struct link_ent {
	char *path;
	dev_t dev;
	ino_t ino;
	const char *rep;   /* smallest path sharing the inode (borrowed from the array) */
};

struct link_set {
	struct link_ent *v;
	size_t n, cap;
};

struct cmp {
	const struct treecmp_opts *o;
	FILE *out;
	long diffs;
	struct link_set links[2];
};

static const char *const default_prefixes[] = { "user.", "trusted.", "system.posix_acl_", NULL };

static void diff(struct cmp *c, const char *rel, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void diff(struct cmp *c, const char *rel, const char *fmt, ...)
{
	va_list ap;

	fprintf(c->out, "treecmp: %s: ", rel);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	c->diffs++;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (!p)
		abort();
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

/* "." + "x" -> "x"; "d" + "x" -> "d/x" */
static char *rel_join(const char *rel, const char *name)
{
	return strcmp(rel, ".") == 0 ? xstrdup(name) : path_join(rel, name);
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "char device";
	case S_IFBLK: return "block device";
	default: return "unknown type";
	}
}

static bool excluded(const struct cmp *c, const char *rel)
{
	if (!c->o->exclude)
		return false;
	for (const char *const *e = c->o->exclude; *e; e++)
		if (strcmp(*e, rel) == 0)
			return true;
	return false;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of the directory open at `fd` (without . and ..). */
static int list_dir(int fd, char ***ret_names, size_t *ret_n)
{
	int dfd = dup(fd);
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	rewinddir(d);
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			r = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				abort();
		}
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_strp);
	*ret_names = v;
	*ret_n = n;
	return 0;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- regular file content and holes ------------------------------------------ */

static void cmp_content(struct cmp *c, const char *rel, int fa, int fb)
{
	enum { BUF = 128 * 1024 };
	static char ba[BUF], bb[BUF];
	off_t off = 0;

	for (;;) {
		ssize_t na = pread(fa, ba, BUF, off);
		ssize_t nb = pread(fb, bb, BUF, off);

		if (na < 0 || nb < 0) {
			diff(c, rel, "read error at offset %lld: A=%s B=%s", (long long)off,
			     na < 0 ? strerror(errno) : "ok", nb < 0 ? strerror(errno) : "ok");
			return;
		}
		if (na != nb || memcmp(ba, bb, (size_t)na) != 0) {
			ssize_t i = 0, m = na < nb ? na : nb;

			while (i < m && ba[i] == bb[i])
				i++;
			diff(c, rel, "content differs from offset %lld", (long long)(off + i));
			return;
		}
		if (na == 0)
			return;
		off += na;
	}
}

struct extent {
	off_t start, end;
};

/* The data segments of `fd` per SEEK_DATA/SEEK_HOLE; -errno on failure. */
static int data_map(int fd, struct extent **ret_v, size_t *ret_n)
{
	struct extent *v = NULL;
	size_t n = 0, cap = 0;
	off_t off = 0;

	for (;;) {
		off_t d = lseek(fd, off, SEEK_DATA), h;

		if (d < 0) {
			if (errno == ENXIO)
				break;
			free(v);
			return -errno;
		}
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0) {
			int r = -errno;

			free(v);
			return r;
		}
		if (h <= d) {   /* a broken SEEK_HOLE must not loop forever */
			free(v);
			return -EINVAL;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				abort();
		}
		v[n++] = (struct extent){ d, h };
		off = h;
	}
	*ret_v = v;
	*ret_n = n;
	return 0;
}

static void format_map(char *buf, size_t len, const struct extent *v, size_t n)
{
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && used + 48 < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s[%lld,%lld)", i ? " " : "",
					 (long long)v[i].start, (long long)v[i].end);
	if (n == 0)
		snprintf(buf, len, "(all hole)");
	else if (used + 48 >= len)
		snprintf(buf + used, len - used, " ...");
}

static void cmp_holes(struct cmp *c, const char *rel, int fa, int fb)
{
	struct extent *va = NULL, *vb = NULL;
	size_t na = 0, nb = 0;
	int ra = data_map(fa, &va, &na), rb = data_map(fb, &vb, &nb);

	if (ra < 0 || rb < 0) {
		diff(c, rel, "SEEK_DATA/SEEK_HOLE failed: A=%s B=%s",
		     ra < 0 ? strerror(-ra) : "ok", rb < 0 ? strerror(-rb) : "ok");
	} else if (na != nb || (na && memcmp(va, vb, na * sizeof(*va)) != 0)) {
		char sa[256], sb[256];

		format_map(sa, sizeof(sa), va, na);
		format_map(sb, sizeof(sb), vb, nb);
		diff(c, rel, "data/hole map differs: A=%s B=%s", sa, sb);
	}
	free(va);
	free(vb);
}

static void cmp_regular(struct cmp *c, const char *rel, int da, int db, const char *name)
{
	int fa = openat(da, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int fb = openat(db, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fa < 0 || fb < 0) {
		int ea = fa < 0 ? errno : 0;

		diff(c, rel, "cannot open: A=%s B=%s", fa < 0 ? strerror(ea) : "ok",
		     fb < 0 ? strerror(errno) : "ok");
	} else {
		cmp_content(c, rel, fa, fb);
		if (!(c->o->flags & TREECMP_NO_HOLES))
			cmp_holes(c, rel, fa, fb);
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
}

/* ---- extended attributes ------------------------------------------------------ */

static bool xattr_wanted(const struct cmp *c, const char *name)
{
	const char *const *p = c->o->xattr_prefixes ? c->o->xattr_prefixes : default_prefixes;

	for (; *p; p++)
		if (strncmp(name, *p, strlen(*p)) == 0)
			return true;
	return false;
}

/* Sorted wanted xattr names of `path` (not following symlinks). */
static int xattr_names(const struct cmp *c, const char *path, char ***ret_v, size_t *ret_n)
{
	ssize_t len = llistxattr(path, NULL, 0);
	char *buf, **v = NULL;
	size_t n = 0;

	if (len < 0) {
		if (errno != ENOTSUP)
			return -errno;
		*ret_v = NULL;
		*ret_n = 0;
		return 0;
	}
	buf = malloc((size_t)len + 1);
	if (!buf)
		abort();
	len = llistxattr(path, buf, (size_t)len);
	if (len < 0) {
		int r = -errno;

		free(buf);
		return r;
	}
	for (char *p = buf; p < buf + len; p += strlen(p) + 1) {
		if (!xattr_wanted(c, p))
			continue;
		v = realloc(v, (n + 1) * sizeof(*v));
		if (!v)
			abort();
		v[n++] = xstrdup(p);
	}
	free(buf);
	if (n)
		qsort(v, n, sizeof(*v), cmp_strp);
	*ret_v = v;
	*ret_n = n;
	return 0;
}

static ssize_t xattr_value(const char *path, const char *name, char **ret)
{
	ssize_t len = lgetxattr(path, name, NULL, 0);
	char *buf;

	if (len < 0)
		return -errno;
	buf = malloc((size_t)len + 1);
	if (!buf)
		abort();
	len = lgetxattr(path, name, buf, (size_t)len);
	if (len < 0) {
		ssize_t r = -errno;

		free(buf);
		return r;
	}
	*ret = buf;
	return len;
}

static void cmp_xattrs(struct cmp *c, const char *rel, const char *pa, const char *pb)
{
	char **va = NULL, **vb = NULL;
	size_t na = 0, nb = 0, i = 0, k = 0;
	int ra = xattr_names(c, pa, &va, &na), rb = xattr_names(c, pb, &vb, &nb);

	if (ra < 0 || rb < 0) {
		diff(c, rel, "listxattr failed: A=%s B=%s", ra < 0 ? strerror(-ra) : "ok",
		     rb < 0 ? strerror(-rb) : "ok");
		goto out;
	}
	while (i < na || k < nb) {
		int o = i == na ? 1 : k == nb ? -1 : strcmp(va[i], vb[k]);

		if (o < 0) {
			diff(c, rel, "xattr %s only in A", va[i++]);
		} else if (o > 0) {
			diff(c, rel, "xattr %s only in B", vb[k++]);
		} else {
			char *xa = NULL, *xb = NULL;
			ssize_t la = xattr_value(pa, va[i], &xa), lb = xattr_value(pb, vb[k], &xb);

			if (la < 0 || lb < 0)
				diff(c, rel, "getxattr %s failed: A=%s B=%s", va[i],
				     la < 0 ? strerror((int)-la) : "ok",
				     lb < 0 ? strerror((int)-lb) : "ok");
			else if (la != lb || (la > 0 && memcmp(xa, xb, (size_t)la) != 0))
				diff(c, rel, "xattr %s value differs (%zd vs %zd bytes)", va[i], la, lb);
			free(xa);
			free(xb);
			i++;
			k++;
		}
	}
out:
	free_names(va, na);
	free_names(vb, nb);
}

/* ---- entries -------------------------------------------------------------------- */

static void add_link(struct link_set *s, const char *rel, const struct stat *st)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	s->v[s->n++] = (struct link_ent){ xstrdup(rel), st->st_dev, st->st_ino, NULL };
}

static void cmp_dir(struct cmp *c, const char *rel, int da, int db, const char *pa, const char *pb);

/* Compare attributes every type has: mode bits, owner, mtime, xattrs, nlink. */
static void cmp_attrs(struct cmp *c, const char *rel, const struct stat *a,
		      const struct stat *b, const char *pa, const char *pb)
{
	unsigned f = c->o->flags;

	if (!(f & TREECMP_NO_MODE) && (a->st_mode & 07777) != (b->st_mode & 07777))
		diff(c, rel, "mode differs: A=%04o B=%04o", a->st_mode & 07777, b->st_mode & 07777);
	if (!(f & TREECMP_NO_OWNER) && (a->st_uid != b->st_uid || a->st_gid != b->st_gid))
		diff(c, rel, "owner differs: A=%u:%u B=%u:%u", a->st_uid, a->st_gid,
		     b->st_uid, b->st_gid);
	if (!(f & TREECMP_NO_MTIME) && (a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
					 a->st_mtim.tv_nsec != b->st_mtim.tv_nsec))
		diff(c, rel, "mtime differs: A=%lld.%09ld B=%lld.%09ld",
		     (long long)a->st_mtim.tv_sec, a->st_mtim.tv_nsec,
		     (long long)b->st_mtim.tv_sec, b->st_mtim.tv_nsec);
	if (!(f & TREECMP_NO_LINKS) && !S_ISDIR(a->st_mode) && a->st_nlink != b->st_nlink)
		diff(c, rel, "nlink differs: A=%ju B=%ju", (uintmax_t)a->st_nlink,
		     (uintmax_t)b->st_nlink);
	if (!(f & TREECMP_NO_XATTR))
		cmp_xattrs(c, rel, pa, pb);
}

static void cmp_entry(struct cmp *c, const char *rel, int da, int db, const char *name,
		      const char *pa, const char *pb)
{
	struct stat a, b;

	if (fstatat(da, name, &a, AT_SYMLINK_NOFOLLOW) < 0) {
		diff(c, rel, "cannot stat in A: %s", strerror(errno));
		return;
	}
	if (fstatat(db, name, &b, AT_SYMLINK_NOFOLLOW) < 0) {
		diff(c, rel, "cannot stat in B: %s", strerror(errno));
		return;
	}
	if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) {
		diff(c, rel, "type differs: A=%s B=%s", type_name(a.st_mode), type_name(b.st_mode));
		return;
	}
	cmp_attrs(c, rel, &a, &b, pa, pb);
	if (!S_ISDIR(a.st_mode)) {
		add_link(&c->links[0], rel, &a);
		add_link(&c->links[1], rel, &b);
	}
	switch (a.st_mode & S_IFMT) {
	case S_IFREG:
		if (a.st_size != b.st_size)
			diff(c, rel, "size differs: A=%lld B=%lld", (long long)a.st_size,
			     (long long)b.st_size);
		cmp_regular(c, rel, da, db, name);
		break;
	case S_IFLNK: {
		char ta[PATH_MAX + 1], tb[PATH_MAX + 1];
		ssize_t la = readlinkat(da, name, ta, PATH_MAX);
		ssize_t lb = readlinkat(db, name, tb, PATH_MAX);

		if (la < 0 || lb < 0) {
			diff(c, rel, "readlink failed");
			break;
		}
		ta[la] = tb[lb] = 0;
		if (la != lb || memcmp(ta, tb, (size_t)la) != 0)
			diff(c, rel, "symlink target differs: A='%s' B='%s'", ta, tb);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
		if (a.st_rdev != b.st_rdev)
			diff(c, rel, "device differs: A=%u:%u B=%u:%u", major(a.st_rdev),
			     minor(a.st_rdev), major(b.st_rdev), minor(b.st_rdev));
		break;
	case S_IFDIR: {
		int sa = openat(da, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int sb = openat(db, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sa < 0 || sb < 0) {
			int ea = sa < 0 ? errno : 0;

			diff(c, rel, "cannot open directory: A=%s B=%s",
			     sa < 0 ? strerror(ea) : "ok", sb < 0 ? strerror(errno) : "ok");
		} else {
			cmp_dir(c, rel, sa, sb, pa, pb);
		}
		if (sa >= 0)
			close(sa);
		if (sb >= 0)
			close(sb);
		break;
	}
	default:
		break;
	}
}

static void cmp_dir(struct cmp *c, const char *rel, int da, int db, const char *pa, const char *pb)
{
	char **na = NULL, **nb = NULL;
	size_t ca = 0, cb = 0, i = 0, k = 0;
	int ra = list_dir(da, &na, &ca), rb = list_dir(db, &nb, &cb);

	if (ra < 0 || rb < 0) {
		diff(c, rel, "readdir failed: A=%s B=%s", ra < 0 ? strerror(-ra) : "ok",
		     rb < 0 ? strerror(-rb) : "ok");
		goto out;
	}
	while (i < ca || k < cb) {
		int o = i == ca ? 1 : k == cb ? -1 : strcmp(na[i], nb[k]);
		const char *name = o <= 0 ? na[i] : nb[k];
		char *r = rel_join(rel, name);

		if (excluded(c, r)) {
			/* skip */
		} else if (o < 0) {
			diff(c, r, "only in A");
		} else if (o > 0) {
			diff(c, r, "only in B");
		} else {
			char *sa = path_join(pa, name), *sb = path_join(pb, name);

			cmp_entry(c, r, da, db, name, sa, sb);
			free(sa);
			free(sb);
		}
		free(r);
		if (o <= 0)
			i++;
		if (o >= 0)
			k++;
	}
out:
	free_names(na, ca);
	free_names(nb, cb);
}

/* ---- hard-link structure ------------------------------------------------------------ */

static int cmp_by_inode(const void *x, const void *y)
{
	const struct link_ent *a = x, *b = y;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return strcmp(a->path, b->path);
}

static int cmp_by_path(const void *x, const void *y)
{
	return strcmp(((const struct link_ent *)x)->path, ((const struct link_ent *)y)->path);
}

/* Give every entry the smallest path of its inode, then sort by path. */
static void link_reps(struct link_set *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_by_inode);
	for (size_t i = 0; i < s->n; i++) {
		bool same = i > 0 && s->v[i].dev == s->v[i - 1].dev && s->v[i].ino == s->v[i - 1].ino;

		s->v[i].rep = same ? s->v[i - 1].rep : s->v[i].path;
	}
	/* rep pointers point at path strings, which do not move with the entries */
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_by_path);
}

static void cmp_links(struct cmp *c)
{
	struct link_set *a = &c->links[0], *b = &c->links[1];
	size_t i = 0, k = 0;

	link_reps(a);
	link_reps(b);
	while (i < a->n && k < b->n) {
		int o = strcmp(a->v[i].path, b->v[k].path);

		if (o < 0) {
			i++;
		} else if (o > 0) {
			k++;
		} else {
			if (strcmp(a->v[i].rep, b->v[k].rep) != 0)
				diff(c, a->v[i].path,
				     "hard links differ: A shares its inode with '%s', B with '%s'",
				     a->v[i].rep, b->v[k].rep);
			i++;
			k++;
		}
	}
}

static void link_set_free(struct link_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
}

/* ---- public -------------------------------------------------------------------------- */

int treecmp_parse_ignore(const char *list, unsigned *ret_flags)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {
		{ "mtime", TREECMP_NO_MTIME }, { "holes", TREECMP_NO_HOLES },
		{ "owner", TREECMP_NO_OWNER }, { "mode", TREECMP_NO_MODE },
		{ "xattr", TREECMP_NO_XATTR }, { "links", TREECMP_NO_LINKS },
		{ "root", TREECMP_NO_ROOT },
	};
	char *copy = xstrdup(list), *save = NULL;
	unsigned flags = 0;
	int r = 0;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(t, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			r = -1;
			break;
		}
		flags |= names[i].flag;
	}
	free(copy);
	if (r == 0)
		*ret_flags |= flags;
	return r;
}

long treecmp_trees(const char *a, const char *b, const struct treecmp_opts *opts)
{
	struct treecmp_opts defaults = { 0 };
	struct cmp c = { .o = opts ? opts : &defaults };
	struct stat sa, sb;
	int da, db, r;

	c.out = c.o->out ? c.o->out : stdout;
	da = open(a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (da < 0)
		return -errno;
	db = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (db < 0) {
		r = -errno;
		close(da);
		return r;
	}
	if (fstat(da, &sa) < 0 || fstat(db, &sb) < 0) {
		r = -errno;
		close(da);
		close(db);
		return r;
	}
	if (!(c.o->flags & TREECMP_NO_ROOT))
		cmp_attrs(&c, ".", &sa, &sb, a, b);
	cmp_dir(&c, ".", da, db, a, b);
	close(da);
	close(db);
	if (!(c.o->flags & TREECMP_NO_LINKS))
		cmp_links(&c);
	link_set_free(&c.links[0]);
	link_set_free(&c.links[1]);
	fflush(c.out);
	return c.diffs;
}
