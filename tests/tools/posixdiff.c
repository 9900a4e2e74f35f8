/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * posixdiff: a fixed, deterministic list of small POSIX checks, run in a
 * directory, printing one line per check, so that two runs can be compared
 * with diff(1): one on a plain directory of the backing filesystem (the
 * reference: the kernel's own ext4 behaviour), one on a mirrorfs mount.
 *
 *   posixdiff DIR             the main suite; DIR should be empty
 *   posixdiff --fixture DIR   build the tree the read-only suite reads
 *   posixdiff --readonly [--snapshot] DIR
 *                             the read-only suite, on that tree once it is
 *                             read-only (a read-only bind mount of it, a
 *                             read-only mount); --snapshot: it is a mirrorfs
 *                             snapshot, which cannot say EROFS first in
 *                             a few cases (skipped then)
 *   posixdiff --list          the names of the checks of the main suite
 *   --no-skip                 run the skipped checks too (do their reasons
 *                             still hold, after a kernel or libfuse update?)
 *
 * A line is "NAME: OUTCOME...", one outcome per step of the check: OK (and
 * a result) or the errno name, stat fields (type, mode, nlink, size, owner;
 * never inode numbers, devices or absolute times, except times the check
 * set itself), and whether mtime/ctime changed since a mark ("m+c-").
 *
 * Each check runs as root in a fresh directory of its own (DIR/cNNN, mode
 * 0755, umask 022). Steps after "su UID GID [GROUPS]" run in a child
 * process with those credentials (setgroups, setresgid, setresuid) until
 * "root". Non-root steps on a FUSE mount need -o allow_other.
 *
 * A check may be skipped: it then prints "NAME: skipped" on every
 * filesystem, and the table says why (a FUSE limitation, see
 * docs/HACKING.md). So that both sides of a comparison skip the same,
 * --snapshot must be given to both. The steps are a tiny language, see
 * run_step().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOKENS 16
#define MAX_STEPS 64
#define MAX_MARKS 8
#define MAX_TOKEN_LEN 8192

struct check {
	const char *name;
	const char *script;
	const char *skip;        /* non-NULL: not run, and why */
	const char *snap_skip;   /* non-NULL: not run with --snapshot, and why */
};

static bool snapshot_mode;   /* --snapshot: the read-only tree is a snapshot */
static bool no_skip;         /* --no-skip: run the skipped checks too */

/* ---- state of the running check ------------------------------------------ */

static int cur_fd = -1;   /* the "current file" of the f* steps */

static struct {
	char path[PATH_MAX];
	struct stat st;
	bool used;
} marks[MAX_MARKS];

/* ---- output ----------------------------------------------------------------- */

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;

	putchar(' ');
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static const char *errno_name(int e)
{
	static char buf[32];
	const char *n = strerrorname_np(e);

	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

/* "OK" for r >= 0, else the name of -r. */
static const char *res(int r)
{
	return r >= 0 ? "OK" : errno_name(-r);
}

static int sys(int r)
{
	return r < 0 ? -errno : r;
}

static void print_escaped(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c >= 0x21 && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return "reg";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "lnk";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	default: return "?";
	}
}

/* type,mode,nNLINK,sSIZE,uUID:GID[,rMAJ:MIN] */
static void print_stat(const struct stat *st)
{
	printf(" %s,%04o,n%lu,s%lld,u%u:%u", type_name(st->st_mode),
	       (unsigned)(st->st_mode & 07777), (unsigned long)st->st_nlink,
	       (long long)st->st_size, (unsigned)st->st_uid, (unsigned)st->st_gid);
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		printf(",r%u:%u", major(st->st_rdev), minor(st->st_rdev));
}

/* ---- argument parsing --------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("posixdiff: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static long long num(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end)
		die("bad number '%s'", s);
	return v;
}

static mode_t octal(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || end == s || *end || v > 0177777)
		die("bad mode '%s'", s);
	return (mode_t)v;
}

static const struct {
	const char *name;
	int flag;
} open_flags[] = {
	{ "rdonly", O_RDONLY }, { "wronly", O_WRONLY }, { "rdwr", O_RDWR },
	{ "creat", O_CREAT }, { "excl", O_EXCL }, { "trunc", O_TRUNC },
	{ "append", O_APPEND }, { "directory", O_DIRECTORY }, { "nofollow", O_NOFOLLOW },
	{ "nonblock", O_NONBLOCK }, { "path", O_PATH }, { "tmpfile", O_TMPFILE },
	{ "noatime", O_NOATIME }, { "sync", O_SYNC }, { "direct", O_DIRECT },
};

static int oflags(const char *s)
{
	char buf[256], *save = NULL, *tok;
	int flags = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(open_flags) / sizeof(open_flags[0]); i++)
			if (strcmp(tok, open_flags[i].name) == 0)
				break;
		if (i == sizeof(open_flags) / sizeof(open_flags[0]))
			die("bad open flag '%s'", tok);
		flags |= open_flags[i].flag;
	}
	return flags;
}

/* "now", "omit" or SECONDS[.NANOSECONDS] (the fraction as 9 digits or fewer). */
static struct timespec tspec(const char *s)
{
	struct timespec ts = { 0, 0 };
	const char *dot;

	if (strcmp(s, "now") == 0) {
		ts.tv_nsec = UTIME_NOW;
		return ts;
	}
	if (strcmp(s, "omit") == 0) {
		ts.tv_nsec = UTIME_OMIT;
		return ts;
	}
	dot = strchr(s, '.');
	if (!dot) {
		ts.tv_sec = num(s);
		return ts;
	}
	{
		char sec[32];
		long long ns = 0;
		int digits = 0;

		snprintf(sec, sizeof(sec), "%.*s", (int)(dot - s), s);
		ts.tv_sec = num(sec);
		for (const char *p = dot + 1; *p; p++, digits++) {
			if (!isdigit((unsigned char)*p))
				die("bad time '%s'", s);
			ns = ns * 10 + (*p - '0');
		}
		for (; digits < 9; digits++)
			ns *= 10;
		/* "-1.5" is tv_sec -1, tv_nsec 500000000; 10 digits make an invalid nsec */
		ts.tv_nsec = ns;
	}
	return ts;
}

/*
 * Binary POSIX ACL (the system.posix_acl_* xattr format) from a spec like
 * "u::rwx,u:65534:rw-,g::r-x,m::rwx,o::---" (entries in the kernel's order).
 */
static size_t acl_blob(const char *spec, char *buf, size_t cap)
{
	char tmp[512], *save = NULL, *e;
	size_t len = 4;
	uint32_t v2 = 2;

	memcpy(buf, &v2, 4);
	snprintf(tmp, sizeof(tmp), "%s", spec);
	for (e = strtok_r(tmp, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		char *c1 = strchr(e, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		uint16_t tag, perm = 0;
		uint32_t id = UINT32_MAX;
		bool named;

		if (!c2 || strlen(c2 + 1) != 3 || len + 8 > cap)
			die("bad acl entry '%s'", e);
		named = c2 > c1 + 1;
		switch (e[0]) {
		case 'u': tag = named ? 0x02 : 0x01; break;
		case 'g': tag = named ? 0x08 : 0x04; break;
		case 'm': tag = 0x10; break;
		case 'o': tag = 0x20; break;
		default: die("bad acl entry '%s'", e);
		}
		if (named) {
			*c2 = '\0';
			id = (uint32_t)num(c1 + 1);
		}
		perm = (uint16_t)((c2[1] == 'r') << 2 | (c2[2] == 'w') << 1 | (c2[3] == 'x'));
		memcpy(buf + len, &tag, 2);
		memcpy(buf + len + 2, &perm, 2);
		memcpy(buf + len + 4, &id, 4);
		len += 8;
	}
	return len;
}

/*
 * An xattr value: "-" is empty, "@N" is N bytes of 'v', "acl:SPEC" a
 * binary ACL, "hex:0a0b.." those bytes, anything else the string itself.
 */
static size_t xvalue(const char *s, char *buf, size_t cap)
{
	size_t n;

	if (strcmp(s, "-") == 0)
		return 0;
	if (s[0] == '@') {
		n = (size_t)num(s + 1);
		if (n > cap)
			die("value too large");
		memset(buf, 'v', n);
		return n;
	}
	if (strncmp(s, "acl:", 4) == 0)
		return acl_blob(s + 4, buf, cap);
	if (strncmp(s, "hex:", 4) == 0) {
		n = strlen(s + 4) / 2;
		if (n > cap)
			die("value too large");
		for (size_t i = 0; i < n; i++) {
			unsigned v;

			if (sscanf(s + 4 + 2 * i, "%2x", &v) != 1)
				die("bad hex value '%s'", s);
			buf[i] = (char)v;
		}
		return n;
	}
	n = strlen(s);
	if (n > cap)
		die("value too large");
	memcpy(buf, s, n);
	return n;
}

static int xflags(const char *s)
{
	if (!s)
		return 0;
	if (strcmp(s, "create") == 0)
		return XATTR_CREATE;
	if (strcmp(s, "replace") == 0)
		return XATTR_REPLACE;
	die("bad xattr flag '%s'", s);
}

static int amode(const char *s)
{
	int m = 0;

	for (; *s; s++) {
		switch (*s) {
		case 'f': m |= F_OK; break;
		case 'r': m |= R_OK; break;
		case 'w': m |= W_OK; break;
		case 'x': m |= X_OK; break;
		default: die("bad access mode '%s'", s);
		}
	}
	return m;
}

/*
 * Expand a token: "$N<len>" anywhere becomes a name of <len> 'n's, and
 * "$LONGPATH" a path longer than PATH_MAX ("./" repeated, then "f").
 */
static void expand(const char *in, char *outbuf, size_t cap)
{
	size_t o = 0;

	while (*in && o + 1 < cap) {
		if (strncmp(in, "$LONGPATH", 9) == 0) {
			for (int i = 0; i < 2100 && o + 3 < cap; i++) {
				outbuf[o++] = '.';
				outbuf[o++] = '/';
			}
			outbuf[o++] = 'f';
			in += 9;
		} else if (in[0] == '$' && in[1] == 'N' && isdigit((unsigned char)in[2])) {
			long n = strtol(in + 2, (char **)&in, 10);

			for (long i = 0; i < n && o + 1 < cap; i++)
				outbuf[o++] = 'n';
		} else {
			outbuf[o++] = *in++;
		}
	}
	outbuf[o] = '\0';
}

/* ---- time marks ------------------------------------------------------------- */

/*
 * Wait until the kernel's coarse clock (what file timestamps come from)
 * has moved on, so that any change after this gets a newer timestamp than
 * anything before it.
 */
static void tick(void)
{
	struct timespec a, b;

	clock_gettime(CLOCK_REALTIME_COARSE, &a);
	do {
		struct timespec d = { 0, 500000 };

		nanosleep(&d, NULL);
		clock_gettime(CLOCK_REALTIME_COARSE, &b);
	} while (a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec);
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* mark PATH: remember its lstat; "dt PATH" says what changed since. */
static int do_mark(const char *path)
{
	struct stat st;
	int i;

	if (lstat(path, &st) < 0)
		return -errno;
	for (i = 0; i < MAX_MARKS; i++)
		if (!marks[i].used || strcmp(marks[i].path, path) == 0)
			break;
	if (i == MAX_MARKS)
		die("too many marks");
	snprintf(marks[i].path, sizeof(marks[i].path), "%s", path);
	marks[i].st = st;
	marks[i].used = true;
	tick();
	return 0;
}

/* dt PATH [MARKED]: compare PATH now with the mark of MARKED (default PATH) */
static void do_dt(const char *path, const char *marked)
{
	struct stat st;

	for (int i = 0; i < MAX_MARKS; i++) {
		if (!marks[i].used || strcmp(marks[i].path, marked) != 0)
			continue;
		if (lstat(path, &st) < 0)
			return out("%s", errno_name(errno));
		return out("m%cc%c", ts_eq(st.st_mtim, marks[i].st.st_mtim) ? '-' : '+',
			   ts_eq(st.st_ctim, marks[i].st.st_ctim) ? '-' : '+');
	}
	die("dt '%s' without a mark", marked);
}

/* da PATH: did atime change since the mark of PATH? */
static void do_da(const char *path)
{
	struct stat st;

	for (int i = 0; i < MAX_MARKS; i++) {
		if (!marks[i].used || strcmp(marks[i].path, path) != 0)
			continue;
		if (lstat(path, &st) < 0)
			return out("%s", errno_name(errno));
		return out("a%c", ts_eq(st.st_atim, marks[i].st.st_atim) ? '-' : '+');
	}
	die("da '%s' without a mark", path);
}

/* ---- steps ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void do_ls(const char *path)
{
	char *names[512];
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(path);

	if (!d)
		return out("%s", errno_name(errno));
	while ((de = readdir(d)) && n < 512) {
		char buf[300];

		snprintf(buf, sizeof(buf), "%s:%c", de->d_name,
			 de->d_type == DT_DIR ? 'd' : de->d_type == DT_REG ? 'f' :
			 de->d_type == DT_LNK ? 'l' : de->d_type == DT_FIFO ? 'p' :
			 de->d_type == DT_SOCK ? 's' : de->d_type == DT_CHR ? 'c' :
			 de->d_type == DT_BLK ? 'b' : '?');
		names[n++] = strdup(buf);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	putchar(' ');
	for (size_t i = 0; i < n; i++) {
		printf("%s%s", i ? "," : "", names[i]);
		free(names[i]);
	}
	if (!n)
		printf("(empty)");
}

/* dino DIR: does every entry's d_ino equal the st_ino of what the name leads to? */
static void do_dino(const char *path)
{
	char bad[1024] = "";
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(path);

	if (!d)
		return out("%s", errno_name(errno));
	while ((de = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		n++;
		if (lstat(p, &st) < 0 || st.st_ino != de->d_ino)
			snprintf(bad + strlen(bad), sizeof(bad) - strlen(bad), ",%s", de->d_name);
	}
	closedir(d);
	if (*bad)
		out("d_ino-mismatch:%s", bad + 1);
	else
		out("d_ino-ok:%zu", n);
}

static void print_list(const char *list, ssize_t len)
{
	const char *names[256];
	size_t n = 0;

	for (ssize_t i = 0; i < len && n < 256; i += (ssize_t)strlen(list + i) + 1)
		names[n++] = list + i;
	qsort(names, n, sizeof(names[0]), cmp_str);
	printf(" OK[");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", names[i]);
	printf("]");
}

static void do_read(int fd, off_t off, size_t len)
{
	char buf[256];
	ssize_t n;

	if (len > sizeof(buf))
		len = sizeof(buf);
	n = off < 0 ? read(fd, buf, len) : pread(fd, buf, len, off);
	if (n < 0)
		return out("%s", errno_name(errno));
	printf(" OK:");
	print_escaped(buf, (size_t)n);
}

static int falloc_mode(const char *s)
{
	if (strcmp(s, "0") == 0)
		return 0;
	if (strcmp(s, "keep") == 0)
		return FALLOC_FL_KEEP_SIZE;
	if (strcmp(s, "punch") == 0)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (strcmp(s, "punchonly") == 0)
		return FALLOC_FL_PUNCH_HOLE;
	if (strcmp(s, "zero") == 0)
		return FALLOC_FL_ZERO_RANGE;
	if (strcmp(s, "collapse") == 0)
		return FALLOC_FL_COLLAPSE_RANGE;
	if (strcmp(s, "insert") == 0)
		return FALLOC_FL_INSERT_RANGE;
	die("bad fallocate mode '%s'", s);
}

static int whence(const char *s)
{
	if (strcmp(s, "set") == 0)
		return SEEK_SET;
	if (strcmp(s, "end") == 0)
		return SEEK_END;
	if (strcmp(s, "data") == 0)
		return SEEK_DATA;
	if (strcmp(s, "hole") == 0)
		return SEEK_HOLE;
	die("bad whence '%s'", s);
}

static int mknod_type(const char *s, mode_t *ret)
{
	if (strcmp(s, "fifo") == 0)
		*ret = S_IFIFO;
	else if (strcmp(s, "reg") == 0)
		*ret = S_IFREG;
	else if (strcmp(s, "sock") == 0)
		*ret = S_IFSOCK;
	else if (strcmp(s, "chr") == 0)
		*ret = S_IFCHR;
	else if (strcmp(s, "blk") == 0)
		*ret = S_IFBLK;
	else if (strcmp(s, "none") == 0)
		*ret = 0;
	else if (strcmp(s, "bad") == 0)
		*ret = S_IFMT;   /* not a type */
	else
		return -1;
	return 0;
}

static void close_cur(void)
{
	if (cur_fd >= 0)
		close(cur_fd);
	cur_fd = -1;
}

/* One step; argv[0] is the command. Prints its outcome (nothing if quiet). */
static void run_step(int argc, char **argv, bool quiet)
{
	static char vbuf[70000];
	const char *c = argv[0];
	int r = 0;
	bool print = true;   /* print res(r) at the end */

#define NEED(n) do { if (argc < (n) + 1) die("'%s' needs %d arguments", c, (n)); } while (0)
#define ARG(i) (argc > (i) ? argv[i] : NULL)
	if (strcmp(c, "touch") == 0) {
		NEED(1);
		r = sys(open(argv[1], O_CREAT | O_WRONLY | O_CLOEXEC, ARG(2) ? octal(argv[2]) : 0644));
		if (r >= 0)
			close(r);
	} else if (strcmp(c, "open") == 0 || strcmp(c, "fopen") == 0) {
		NEED(2);
		r = sys(open(argv[1], oflags(argv[2]) | O_CLOEXEC, ARG(3) ? octal(argv[3]) : 0644));
		if (r >= 0 && c[0] == 'f') {
			close_cur();
			cur_fd = r;
		} else if (r >= 0) {
			close(r);
		}
	} else if (strcmp(c, "fclose") == 0) {
		r = cur_fd >= 0 ? sys(close(cur_fd)) : -EBADF;
		cur_fd = -1;
	} else if (strcmp(c, "mkdir") == 0) {
		NEED(1);
		r = sys(mkdir(argv[1], ARG(2) ? octal(argv[2]) : 0755));
	} else if (strcmp(c, "rmdir") == 0) {
		NEED(1);
		r = sys(rmdir(argv[1]));
	} else if (strcmp(c, "unlink") == 0) {
		NEED(1);
		r = sys(unlink(argv[1]));
	} else if (strcmp(c, "unlinkdir") == 0) {
		NEED(1);
		r = sys(unlinkat(AT_FDCWD, argv[1], AT_REMOVEDIR));
	} else if (strcmp(c, "link") == 0 || strcmp(c, "linkf") == 0) {
		NEED(2);
		r = sys(linkat(AT_FDCWD, argv[1], AT_FDCWD, argv[2],
			       c[4] == 'f' ? AT_SYMLINK_FOLLOW : 0));
	} else if (strcmp(c, "flink") == 0) {
		/* link the current fd (O_TMPFILE) by its /proc/self/fd magic link */
		char pp[64];

		NEED(1);
		snprintf(pp, sizeof(pp), "/proc/self/fd/%d", cur_fd);
		r = sys(linkat(AT_FDCWD, pp, AT_FDCWD, argv[1], AT_SYMLINK_FOLLOW));
	} else if (strcmp(c, "symlink") == 0) {
		NEED(2);
		/* "-": the empty target */
		r = sys(symlink(strcmp(argv[1], "-") == 0 ? "" : argv[1], argv[2]));
	} else if (strcmp(c, "symchain") == 0) {
		/* symchain N: s0 -> s1 -> ... -> s(N-1) -> f */
		NEED(1);
		for (long i = 0, n = (long)num(argv[1]); i < n && r >= 0; i++) {
			char a[32], b[32];

			snprintf(a, sizeof(a), "s%ld", i);
			if (i + 1 < n)
				snprintf(b, sizeof(b), "s%ld", i + 1);
			else
				snprintf(b, sizeof(b), "f");
			r = sys(symlink(b, a));
		}
	} else if (strcmp(c, "rename") == 0) {
		unsigned flags = 0;

		NEED(2);
		if (ARG(3) && strcmp(argv[3], "noreplace") == 0)
			flags = RENAME_NOREPLACE;
		else if (ARG(3) && strcmp(argv[3], "exchange") == 0)
			flags = RENAME_EXCHANGE;
		else if (ARG(3) && strcmp(argv[3], "whiteout") == 0)
			flags = RENAME_WHITEOUT;
		else if (ARG(3))
			die("bad rename flag '%s'", argv[3]);
		r = sys(renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], flags));
	} else if (strcmp(c, "mknod") == 0) {
		mode_t type;

		NEED(3);
		if (mknod_type(argv[2], &type) < 0)
			die("bad mknod type '%s'", argv[2]);
		r = sys(mknod(argv[1], type | octal(argv[3]),
			      ARG(5) ? makedev((unsigned)num(argv[4]), (unsigned)num(argv[5])) : 0));
	} else if (strcmp(c, "mkfifo") == 0) {
		NEED(1);
		r = sys(mkfifo(argv[1], ARG(2) ? octal(argv[2]) : 0644));
	} else if (strcmp(c, "chmod") == 0) {
		NEED(2);
		r = sys(chmod(argv[1], octal(argv[2])));
	} else if (strcmp(c, "lchmod") == 0) {
		NEED(2);
		r = sys(fchmodat(AT_FDCWD, argv[1], octal(argv[2]), AT_SYMLINK_NOFOLLOW));
	} else if (strcmp(c, "chown") == 0 || strcmp(c, "lchown") == 0) {
		NEED(3);
		r = sys(fchownat(AT_FDCWD, argv[1], (uid_t)num(argv[2]), (gid_t)num(argv[3]),
				 c[0] == 'l' ? AT_SYMLINK_NOFOLLOW : 0));
	} else if (strcmp(c, "truncate") == 0) {
		NEED(2);
		r = sys(truncate(argv[1], (off_t)num(argv[2])));
	} else if (strcmp(c, "utimens") == 0 || strcmp(c, "lutimens") == 0) {
		struct timespec ts[2];

		NEED(3);
		ts[0] = tspec(argv[2]);
		ts[1] = tspec(argv[3]);
		r = sys(utimensat(AT_FDCWD, argv[1], ts, c[0] == 'l' ? AT_SYMLINK_NOFOLLOW : 0));
	} else if (strcmp(c, "utimes0") == 0) {
		/* utimensat(path, NULL): both times to now */
		NEED(1);
		r = sys(utimensat(AT_FDCWD, argv[1], NULL, 0));
	} else if (strcmp(c, "setxattr") == 0 || strcmp(c, "lsetxattr") == 0) {
		size_t n;

		NEED(3);
		n = xvalue(argv[3], vbuf, sizeof(vbuf));
		r = sys(c[0] == 'l' ? lsetxattr(argv[1], argv[2], vbuf, n, xflags(ARG(4))) :
			setxattr(argv[1], argv[2], vbuf, n, xflags(ARG(4))));
	} else if (strcmp(c, "getxattr") == 0 || strcmp(c, "lgetxattr") == 0) {
		ssize_t n;
		size_t size = ARG(3) ? (size_t)num(argv[3]) : 256;

		NEED(2);
		n = c[0] == 'l' ? lgetxattr(argv[1], argv[2], size ? vbuf : NULL, size) :
			getxattr(argv[1], argv[2], size ? vbuf : NULL, size);
		print = false;
		if (n < 0) {
			out("%s", errno_name(errno));
		} else if (size == 0) {
			out("OK=%zd", n);
		} else if (strncmp(argv[2], "system.posix_acl", 16) == 0 || n > 64) {
			out("OK=%zd", n);   /* binary, or long: the length says enough */
		} else {
			out("OK=");
			print_escaped(vbuf, (size_t)n);
		}
	} else if (strcmp(c, "listxattr") == 0 || strcmp(c, "llistxattr") == 0) {
		ssize_t n;

		NEED(1);
		n = c[0] == 'l' ? llistxattr(argv[1], vbuf, sizeof(vbuf)) :
			listxattr(argv[1], vbuf, sizeof(vbuf));
		print = false;
		if (n < 0)
			out("%s", errno_name(errno));
		else
			print_list(vbuf, n);
	} else if (strcmp(c, "removexattr") == 0 || strcmp(c, "lremovexattr") == 0) {
		NEED(2);
		r = sys(c[0] == 'l' ? lremovexattr(argv[1], argv[2]) : removexattr(argv[1], argv[2]));
	} else if (strcmp(c, "access") == 0 || strcmp(c, "eaccess") == 0) {
		NEED(2);
		r = sys(faccessat(AT_FDCWD, argv[1], amode(argv[2]), c[0] == 'e' ? AT_EACCESS : 0));
	} else if (strcmp(c, "st") == 0 || strcmp(c, "sst") == 0 || strcmp(c, "fst") == 0) {
		struct stat st;

		if (strcmp(c, "fst") == 0) {
			r = sys(fstat(cur_fd, &st));
		} else {
			NEED(1);
			r = sys(strcmp(c, "sst") == 0 ? stat(argv[1], &st) : lstat(argv[1], &st));
		}
		print = false;
		if (r < 0)
			out("%s", res(r));
		else
			print_stat(&st);
	} else if (strcmp(c, "times") == 0) {
		/* the exact times a check set itself */
		struct stat st;

		NEED(1);
		print = false;
		if (lstat(argv[1], &st) < 0)
			out("%s", errno_name(errno));
		else
			out("a%lld.%09ld,m%lld.%09ld", (long long)st.st_atim.tv_sec,
			    st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	} else if (strcmp(c, "mark") == 0) {
		NEED(1);
		r = do_mark(argv[1]);
		print = r < 0;
	} else if (strcmp(c, "dt") == 0) {
		NEED(1);
		do_dt(argv[1], ARG(2) ? argv[2] : argv[1]);
		print = false;
	} else if (strcmp(c, "write") == 0 || strcmp(c, "append") == 0) {
		/* write PATH OFF STR (O_WRONLY) | append PATH STR (O_WRONLY|O_APPEND) */
		bool app = c[0] == 'a';
		const char *s;
		int fd;

		NEED(app ? 2 : 3);
		s = argv[app ? 2 : 3];
		fd = open(argv[1], O_WRONLY | O_CLOEXEC | (app ? O_APPEND : 0));
		r = fd < 0 ? -errno : 0;
		if (fd >= 0) {
			ssize_t n = app ? write(fd, s, strlen(s)) :
				pwrite(fd, s, strlen(s), (off_t)num(argv[2]));

			r = n < 0 ? -errno : 0;
			close(fd);
		}
	} else if (strcmp(c, "fwrite") == 0) {
		/*
		 * fwrite OFF STR on the current fd (OFF "-": write(2) at the
		 * position; STR "-": nothing, a write of 0 bytes)
		 */
		const char *data;
		ssize_t n;

		NEED(2);
		data = strcmp(argv[2], "-") == 0 ? "" : argv[2];
		n = strcmp(argv[1], "-") == 0 ? write(cur_fd, data, strlen(data)) :
			pwrite(cur_fd, data, strlen(data), (off_t)num(argv[1]));
		print = false;
		if (n < 0)
			out("%s", errno_name(errno));
		else
			out("OK=%zd", n);
	} else if (strcmp(c, "read") == 0) {
		int fd;

		NEED(3);
		print = false;
		fd = open(argv[1], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return (void) out("%s", errno_name(errno));
		do_read(fd, (off_t)num(argv[2]), (size_t)num(argv[3]));
		close(fd);
	} else if (strcmp(c, "fread") == 0) {
		/* fread OFF LEN (OFF "-": read(2) at the position) */
		NEED(2);
		print = false;
		do_read(cur_fd, strcmp(argv[1], "-") == 0 ? -1 : (off_t)num(argv[1]),
			(size_t)num(argv[2]));
	} else if (strcmp(c, "ftruncate") == 0) {
		NEED(1);
		r = sys(ftruncate(cur_fd, (off_t)num(argv[1])));
	} else if (strcmp(c, "fchmod") == 0) {
		NEED(1);
		r = sys(fchmod(cur_fd, octal(argv[1])));
	} else if (strcmp(c, "fchown") == 0) {
		NEED(2);
		r = sys(fchown(cur_fd, (uid_t)num(argv[1]), (gid_t)num(argv[2])));
	} else if (strcmp(c, "futimens") == 0) {
		struct timespec ts[2];

		NEED(2);
		ts[0] = tspec(argv[1]);
		ts[1] = tspec(argv[2]);
		r = sys(futimens(cur_fd, ts));
	} else if (strcmp(c, "fsetxattr") == 0) {
		size_t n;

		NEED(2);
		n = xvalue(argv[2], vbuf, sizeof(vbuf));
		r = sys(fsetxattr(cur_fd, argv[1], vbuf, n, xflags(ARG(3))));
	} else if (strcmp(c, "fallocate") == 0) {
		NEED(3);
		r = sys(fallocate(cur_fd, falloc_mode(argv[1]), (off_t)num(argv[2]),
				  (off_t)num(argv[3])));
	} else if (strcmp(c, "pfallocate") == 0) {
		NEED(2);
		r = -posix_fallocate(cur_fd, (off_t)num(argv[1]), (off_t)num(argv[2]));
	} else if (strcmp(c, "fsync") == 0) {
		r = sys(fsync(cur_fd));
	} else if (strcmp(c, "lseek") == 0) {
		off_t o;

		NEED(2);
		o = lseek(cur_fd, (off_t)num(argv[2]), whence(argv[1]));
		print = false;
		if (o < 0)
			out("%s", errno_name(errno));
		else
			out("OK=%lld", (long long)o);
	} else if (strcmp(c, "cfr") == 0) {
		/* cfr SRC DST LEN: copy_file_range from SRC's start into DST (must exist) */
		int in, o;
		ssize_t n = -1;

		NEED(3);
		print = false;
		in = open(argv[1], O_RDONLY | O_CLOEXEC);
		o = open(argv[2], O_WRONLY | O_CLOEXEC);
		if (in >= 0 && o >= 0)
			n = copy_file_range(in, NULL, o, NULL, (size_t)num(argv[3]), 0);
		if (n < 0)
			out("%s", errno_name(errno));
		else
			out("OK=%zd", n);
		if (in >= 0)
			close(in);
		if (o >= 0)
			close(o);
	} else if (strcmp(c, "readlink") == 0) {
		char buf[PATH_MAX + 1];
		ssize_t n;

		NEED(1);
		print = false;
		n = readlink(argv[1], buf, sizeof(buf));
		if (n < 0) {
			out("%s", errno_name(errno));
		} else if (n > 64) {
			out("OK=%zd", n);
		} else {
			out("OK=");
			print_escaped(buf, (size_t)n);
		}
	} else if (strcmp(c, "ls") == 0) {
		NEED(1);
		print = false;
		do_ls(argv[1]);
	} else if (strcmp(c, "cd") == 0) {
		/* cd PATH: can we chdir there? (and come back) */
		int here = open(".", O_PATH | O_CLOEXEC);

		NEED(1);
		r = sys(chdir(argv[1]));
		if (fchdir(here) < 0)
			die("cannot come back from '%s'", argv[1]);
		close(here);
	} else if (strcmp(c, "statfs") == 0) {
		struct statfs sf;

		NEED(1);
		print = false;
		if (statfs(argv[1], &sf) < 0)
			out("%s", errno_name(errno));
		else
			out("OK,namelen=%ld", (long)sf.f_namelen);
	} else if (strcmp(c, "da") == 0) {
		NEED(1);
		do_da(argv[1]);
		print = false;
	} else if (strcmp(c, "dino") == 0) {
		NEED(1);
		do_dino(argv[1]);
		print = false;
	} else if (strcmp(c, "sameino") == 0) {
		struct stat a, b;

		NEED(2);
		print = false;
		if (lstat(argv[1], &a) < 0 || lstat(argv[2], &b) < 0)
			out("%s", errno_name(errno));
		else
			out(a.st_ino == b.st_ino ? "same-ino" : "other-ino");
	} else if (strcmp(c, "blocks") == 0) {
		struct stat st;

		NEED(1);
		print = false;
		if (lstat(argv[1], &st) < 0)
			out("%s", errno_name(errno));
		else
			out("blocks=%lld,blksize=%ld", (long long)st.st_blocks, (long)st.st_blksize);
	} else if (strcmp(c, "statx") == 0) {
		/* which of the basic fields and the birth time statx reports */
		struct statx stx;

		NEED(1);
		print = false;
		if (statx(AT_FDCWD, argv[1], AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &stx) < 0)
			out("%s", errno_name(errno));
		else
			out("basic=%s,btime=%s",
			    (stx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS ? "yes" : "no",
			    stx.stx_mask & STATX_BTIME ? "yes" : "no");
	} else if (strcmp(c, "mkmany") == 0) {
		/* mkmany N: files m0 .. m(N-1) */
		NEED(1);
		for (long i = 0, n = (long)num(argv[1]); i < n && r >= 0; i++) {
			char name[32];

			snprintf(name, sizeof(name), "m%ld", i);
			r = sys(open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
			if (r >= 0)
				r = sys(close(r));
		}
	} else if (strcmp(c, "count") == 0) {
		/* count DIR: entries readdir returns, . and .. included */
		struct dirent *de;
		size_t n = 0;
		DIR *d;

		NEED(1);
		print = false;
		d = opendir(argv[1]);
		if (!d)
			return (void) out("%s", errno_name(errno));
		while ((de = readdir(d)))
			n++;
		closedir(d);
		out("entries=%zu", n);
	} else if (strcmp(c, "bindsock") == 0 || strcmp(c, "connsock") == 0) {
		/* bind (create) or connect to a unix socket at PATH */
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd;

		NEED(1);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (c[0] == 'b')
			r = sys(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
		else
			r = sys(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
		if (r >= 0 && c[0] == 'b')
			r = sys(listen(fd, 1));
		if (r >= 0 && c[0] == 'b') {
			close_cur();   /* keep the listener open while the check runs */
			cur_fd = fd;
		} else {
			close(fd);
		}
	} else if (strcmp(c, "mmapw") == 0) {
		/* mmapw PATH OFF STR: store STR through a shared writable mapping */
		size_t len, off;
		void *m;
		int fd;

		NEED(3);
		off = (size_t)num(argv[2]);
		len = off + strlen(argv[3]);
		fd = open(argv[1], O_RDWR | O_CLOEXEC);
		r = fd < 0 ? -errno : 0;
		if (fd >= 0) {
			m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (m == MAP_FAILED) {
				r = -errno;
			} else {
				memcpy((char *)m + off, argv[3], strlen(argv[3]));
				r = sys(msync(m, len, MS_SYNC));
				munmap(m, len);
			}
			close(fd);
		}
	} else if (strcmp(c, "umask") == 0) {
		NEED(1);
		umask(octal(argv[1]));
		print = false;
	} else {
		die("unknown step '%s'", c);
	}
#undef NEED
#undef ARG
	if (!print)
		return;
	if (quiet) {
		if (r < 0)
			out("!%s=%s", c, res(r));
		return;
	}
	out("%s", res(r));
}

/* ---- running a check ------------------------------------------------------- */

struct step {
	int argc;
	char *argv[MAX_TOKENS];
	bool quiet;
};

static int parse_script(const char *script, char *buf, size_t cap, struct step *steps)
{
	int n = 0;
	char *save = NULL, *s;

	snprintf(buf, cap, "%s", script);
	for (s = strtok_r(buf, ";", &save); s; s = strtok_r(NULL, ";", &save)) {
		char *save2 = NULL, *tok;
		struct step *st = &steps[n];

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			continue;
		if (n == MAX_STEPS)
			die("script too long");
		st->quiet = *s == '.';
		if (st->quiet)
			s++;
		st->argc = 0;
		for (tok = strtok_r(s, " \t\n", &save2); tok; tok = strtok_r(NULL, " \t\n", &save2)) {
			char tmp[MAX_TOKEN_LEN];

			if (st->argc == MAX_TOKENS)
				die("too many arguments in '%s'", script);
			expand(tok, tmp, sizeof(tmp));
			st->argv[st->argc++] = strdup(tmp);
		}
		if (st->argc)
			n++;
	}
	return n;
}

/* Parse "1,2,3" into groups; returns the count. */
static int parse_groups(const char *s, gid_t *g, int max)
{
	char tmp[128], *save = NULL, *tok;
	int n = 0;

	if (!s || strcmp(s, "-") == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s", s);
	for (tok = strtok_r(tmp, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
		g[n++] = (gid_t)num(tok);
	return n;
}

static void run_steps(struct step *steps, int from, int to);

/*
 * "su UID GID [GROUPS]": steps up to the next "root" run in a child with
 * those credentials. Returns the index of that "root" step (or `to`).
 */
static int run_su(struct step *steps, int i, int to)
{
	struct step *su = &steps[i];
	gid_t groups[16];
	int ngroups, end, status;
	pid_t pid;

	if (su->argc < 3)
		die("su needs UID GID");
	for (end = i + 1; end < to; end++)
		if (strcmp(steps[end].argv[0], "root") == 0)
			break;
	ngroups = parse_groups(su->argc > 3 ? su->argv[3] : NULL, groups, 16);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		uid_t uid = (uid_t)num(su->argv[1]);
		gid_t gid = (gid_t)num(su->argv[2]);

		if (setgroups((size_t)ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0) {
			printf(" !su=%s", errno_name(errno));
			fflush(stdout);
			_exit(1);
		}
		run_steps(steps, i + 1, end);
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		printf(" !su-child-died");
	return end;
}

static void run_steps(struct step *steps, int from, int to)
{
	for (int i = from; i < to; i++) {
		if (strcmp(steps[i].argv[0], "su") == 0)
			i = run_su(steps, i, to);
		else if (strcmp(steps[i].argv[0], "root") == 0)
			continue;
		else
			run_step(steps[i].argc, steps[i].argv, steps[i].quiet);
	}
}

static void run_check(const struct check *ck, int idx, bool own_dir)
{
	static char buf[1 << 16];
	struct step steps[MAX_STEPS];
	char dir[32];
	int n;

	printf("%s:", ck->name);
	if (!no_skip && (ck->skip || (snapshot_mode && ck->snap_skip))) {
		printf(" skipped\n");
		return;
	}
	memset(marks, 0, sizeof(marks));
	umask(022);
	snprintf(dir, sizeof(dir), "c%03d", idx);
	if (own_dir && (mkdir(dir, 0755) < 0 || chdir(dir) < 0))
		die("cannot make the check directory '%s': %s", dir, strerror(errno));
	n = parse_script(ck->script, buf, sizeof(buf), steps);
	run_steps(steps, 0, n);
	close_cur();
	for (int i = 0; i < n; i++)
		for (int k = 0; k < steps[i].argc; k++)
			free(steps[i].argv[k]);
	if (own_dir && chdir("..") < 0)
		die("cannot leave '%s': %s", dir, strerror(errno));
	putchar('\n');
	fflush(stdout);
}

/* ---- the checks ------------------------------------------------------------- */

/* The tables leave `skip` out where a check runs: NULL. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Users and groups: 65534 (nobody/nogroup), 1000/1000, group 4242. */
#define U "su 65534 65534 - ; "
#define U2 "su 1000 1000 - ; "
#define UG "su 65534 65534 4242 ; "
#define R " ; root"

/*
 * Skip reasons: differences that cannot be avoided through FUSE, and one
 * that mirrorfs makes by design (docs/HACKING.md, "POSIX conformance").
 * They stay in the table, skipped on every filesystem, so that the list
 * documents them.
 */
#define FUSE_NO_TMPFILE \
	"FUSE: libfuse 3.14 (Debian 12) has no tmpfile op: O_TMPFILE fails " \
	"with EOPNOTSUPP"
/* Not FUSE's but mirrorfs's own, by design (docs/HACKING.md): */
#define MFS_NO_WHITEOUT \
	"mirrorfs: the journal has no whiteout record, so RENAME_WHITEOUT " \
	"fails with EINVAL, as on filesystems without whiteouts"
#define FUSE_KILLPRIV_SGID \
	"FUSE: without HANDLE_KILLPRIV the kernel's FUSE setattr clears S_ISGID on " \
	"write/truncate only if S_IXGRP is set too; local filesystems also clear it " \
	"when the writer is not in the file's group"
#define FUSE_CACHED_ATIME \
	"FUSE: a read served from the kernel's page cache (keep_cache) does not " \
	"reach the backing file, so it does not update the atime there"
#define FUSE_FALLOC_MODES \
	"FUSE: the kernel forwards only keep-size, punch-hole and zero-range " \
	"fallocate modes; collapse/insert fail with EOPNOTSUPP"

static const struct check checks[] = {
	/* ---- open, creat --------------------------------------------------------- */
	{ "open/creat mode", "mark .; touch f 0644; st f; dt ." },
	{ "open/creat umask 022 0777", "touch f 0777; st f" },
	{ "open/creat umask 077", "umask 077; touch f 0666; st f" },
	{ "open/creat umask 000", "umask 000; touch f 0666; st f" },
	{ "open/creat suid umask 022", "touch f 04777; st f" },
	{ "open/creat sgid umask 022", "touch f 02777; st f" },
	{ "open/creat sticky", "touch f 01777; st f" },
	{ "open/creat as user", ".chmod . 0777; " U "touch f 0666; st f" R "; st f" },
	{ "open/creat suid as user", ".chmod . 0777; " U "touch f 04777; st f" R },
	{ "open/creat suid as user umask 0", ".chmod . 0777; " U "umask 0; touch f 04777; st f" R },
	{ "open/creat existing", ".touch f; .write f 0 abc; open f creat,wronly; st f" },
	{ "open/excl existing", ".touch f; open f creat,excl,wronly; st f" },
	{ "open/excl new", "open f creat,excl,rdwr 0600; st f" },
	{ "open/excl dir", ".mkdir d; open d creat,excl,wronly" },
	{ "open/excl symlink", ".touch f; .symlink f s; open s creat,excl,wronly; st f; st s" },
	{ "open/excl dangling symlink", ".symlink nowhere s; open s creat,excl,wronly; st nowhere" },
	{ "open/creat dangling symlink", ".symlink t s; open s creat,wronly 0600; st t; st s" },
	{ "open/excl without creat", ".touch f; open f excl,rdonly" },
	{ "open/noent", "open nothere rdonly" },
	{ "open/noent dir", "open nodir/f creat,wronly" },
	{ "open/enotdir", ".touch f; open f/x rdonly; open f/x creat,wronly" },
	{ "open/trailing slash file", ".touch f; open f/ rdonly" },
	{ "open/trailing slash creat", "open new/ creat,wronly; st new" },
	{ "open/dir rdonly", ".mkdir d; open d rdonly" },
	{ "open/dir wronly", ".mkdir d; open d wronly; open d rdwr" },
	{ "open/dir creat", ".mkdir d; open d creat,rdonly; open d creat,wronly" },
	{ "open/dir trunc", ".mkdir d; open d rdonly,trunc" },
	{ "open/directory on file", ".touch f; open f rdonly,directory" },
	{ "open/creat directory", "open d creat,directory,rdonly; st d" },
	{ "open/nofollow symlink", ".touch f; .symlink f s; open s rdonly,nofollow; open s path,nofollow" },
	{ "open/nofollow file", ".touch f; open f rdonly,nofollow" },
	{ "open/name 255", "touch $N255; st $N255" },
	{ "open/name 256", "touch $N256; open $N256 rdonly; st $N256" },
	{ "open/name 1100", "touch $N1100; st $N1100" },
	{ "open/path too long", "touch $LONGPATH" },
	{ "open/eloop", ".symlink a b; .symlink b a; open a rdonly; open a creat,wronly" },
	{ "open/symlink chain 40", ".touch f; .symchain 40; open s0 rdonly" },
	{ "open/symlink chain 41", ".touch f; .symchain 41; open s0 rdonly" },
	{ "open/trunc", ".touch f; .write f 0 hello; mark f; open f wronly,trunc; st f; dt f" },
	{ "open/trunc empty", ".touch f; mark f; open f wronly,trunc; st f; dt f" },
	{ "open/trunc rdonly", ".touch f; .write f 0 hello; open f rdonly,trunc; st f" },
	{ "open/creat trunc existing", ".touch f; .write f 0 hello; mark f; open f creat,trunc,wronly 0600; st f; dt f" },
	{ "open/creat parent times", "mark .; touch f; dt .; mark .; open f creat,wronly; dt ." },
	{ "open/append", ".touch f; .write f 0 hello; append f XY; read f 0 100; st f" },
	{ "open/append pwrite", ".touch f; .write f 0 hello; fopen f wronly,append; fwrite 0 AB; fclose; read f 0 100" },
	{ "open/rdwr read write", "fopen f creat,rdwr; fwrite 0 abcdef; fread 2 3; fst; fclose" },
	{ "open/wronly read", ".touch f; fopen f wronly; fread 0 1; fclose" },
	{ "open/rdonly write", ".touch f; fopen f rdonly; fwrite 0 x; fclose" },
	{ "open/fifo nonblock rdonly", ".mkfifo p; open p rdonly,nonblock" },
	{ "open/fifo nonblock wronly", ".mkfifo p; open p wronly,nonblock" },
	{ "open/socket", ".mknod s sock 0644; open s rdonly" },
	{ "open/chr null", ".mknod n chr 0666 1 3; fopen n rdwr; fwrite 0 x; fread 0 1; fclose" },
	{ "open/path", ".touch f 0000; fopen f path; fst; fread 0 1; fchmod 0644; fclose" },
	{ "open/tmpfile", ".mkdir d; fopen d tmpfile,rdwr 0600; fwrite 0 tmp; fst; flink d/named; st d/named; read d/named 0 10",
	  FUSE_NO_TMPFILE },
	{ "open/tmpfile excl", ".mkdir d; fopen d tmpfile,excl,rdwr 0600; flink d/named", FUSE_NO_TMPFILE },
	{ "open/tmpfile on file", ".touch f; open f tmpfile,rdwr" },
	{ "open/tmpfile rdonly", ".mkdir d; open d tmpfile,rdonly" },
	{ "open/user rdonly 0644", ".touch f 0644; " U "open f rdonly; open f wronly; open f rdwr" R },
	{ "open/user 0600", ".touch f 0600; " U "open f rdonly; open f wronly" R },
	{ "open/user 0606", ".touch f 0606; .chmod f 0606; " U "open f rdonly; open f rdwr" R },
	{ "open/user group 0060", ".touch f; .chmod f 0060; .chown f 0 4242; " UG "open f rdwr" R "; " U "open f rdonly" R },
	{ "open/user owner 0066", ".touch f; .chmod f 0066; .chown f 65534 65534; " U "open f rdonly" R },
	{ "open/user creat in 0755", U "open f creat,wronly" R },
	{ "open/user creat existing in 0755", ".touch f 0666; .chmod f 0666; " U "open f creat,wronly" R },
	{ "open/user excl existing in 0755", ".touch f 0666; .chmod f 0666; " U "open f creat,excl,wronly" R },
	{ "open/user search denied", ".mkdir d 0700; .touch d/f 0644; " U "open d/f rdonly; st d/f" R },
	{ "open/user trunc denied", ".touch f 0644; .write f 0 hello; " U "open f rdonly,trunc" R "; st f" },
	{ "open/user noatime other's", ".touch f 0644; " U "open f rdonly,noatime" R },
	{ "open/user noatime own", ".chmod . 0777; " U "touch f; open f rdonly,noatime" R },
	{ "open/user dir write", ".mkdir d 0777; .chmod d 0777; " U "open d wronly" R },

	/* ---- chmod ------------------------------------------------------------------ */
	{ "chmod/file", ".touch f; mark f; chmod f 0751; st f; dt f" },
	{ "chmod/dir", ".mkdir d; mark d; chmod d 0700; st d; dt d" },
	{ "chmod/all bits", ".touch f; chmod f 07777; st f" },
	{ "chmod/dir all bits", ".mkdir d; chmod d 07777; st d" },
	{ "chmod/same mode ctime", ".touch f; mark f; chmod f 0644; dt f" },
	{ "chmod/follows symlink", ".touch f; .symlink f s; chmod s 0600; st f; st s" },
	{ "chmod/lchmod symlink", ".touch f; .symlink f s; lchmod s 0600; st s; st f" },
	{ "chmod/lchmod file", ".touch f; lchmod f 0600; st f" },
	{ "chmod/noent", "chmod nothere 0644" },
	{ "chmod/enotdir", ".touch f; chmod f/x 0644" },
	{ "chmod/name 256", "chmod $N256 0644" },
	{ "chmod/eloop", ".symlink a b; .symlink b a; chmod a 0644" },
	{ "chmod/fifo", ".mkfifo p; chmod p 0600; st p" },
	{ "chmod/fchmod", ".touch f; fopen f rdonly; fchmod 0600; fst; fclose" },
	{ "chmod/user not owner", ".touch f; " U "chmod f 0777" R "; st f" },
	{ "chmod/user owner", ".touch f; .chown f 65534 65534; " U "chmod f 0600" R "; st f" },
	{ "chmod/user owner sgid not member", ".touch f; .chown f 65534 4242; " U "chmod f 02755" R "; st f" },
	{ "chmod/user owner sgid member", ".touch f; .chown f 65534 4242; " UG "chmod f 02755" R "; st f" },
	{ "chmod/user owner sgid dir not member", ".mkdir d; .chown d 65534 4242; " U "chmod d 02755" R "; st d" },
	{ "chmod/user sticky file", ".touch f; .chown f 65534 65534; " U "chmod f 01644" R "; st f" },
	{ "chmod/user suid own file", ".touch f; .chown f 65534 65534; " U "chmod f 04755" R "; st f" },
	{ "chmod/user fchmod own", ".touch f; .chown f 65534 65534; " U "fopen f rdonly; fchmod 0640; fclose" R "; st f" },
	{ "chmod/user on symlink target", ".touch f; .chown f 65534 65534; .symlink f s; " U "chmod s 0600" R "; st f" },
	{ "chmod/root other's file", ".touch f; .chown f 65534 65534; mark f; chmod f 0600; st f; dt f" },

	/* ---- chown ------------------------------------------------------------------ */
	{ "chown/file", ".touch f; mark f; chown f 65534 65534; st f; dt f" },
	{ "chown/uid only", ".touch f; chown f 65534 -1; st f" },
	{ "chown/gid only", ".touch f; chown f -1 4242; st f" },
	{ "chown/nothing", ".touch f; mark f; chown f -1 -1; st f; dt f" },
	{ "chown/same", ".touch f; mark f; chown f 0 0; st f; dt f" },
	{ "chown/dir", ".mkdir d; chown d 65534 4242; st d" },
	{ "chown/follows symlink", ".touch f; .symlink f s; chown s 65534 65534; st f; st s" },
	{ "chown/lchown symlink", ".touch f; .symlink f s; lchown s 65534 65534; st s; st f" },
	{ "chown/dangling symlink", ".symlink nowhere s; chown s 1 1; lchown s 1 1; st s" },
	{ "chown/root clears suid exec", ".touch f; .chmod f 06755; chown f 65534 -1; st f" },
	{ "chown/root clears sgid exec gid", ".touch f; .chmod f 06755; chown f -1 4242; st f" },
	{ "chown/root keeps sgid no gexec", ".touch f; .chmod f 02644; chown f 65534 -1; st f" },
	{ "chown/root keeps suid no exec", ".touch f; .chmod f 04644; chown f 65534 -1; st f" },
	{ "chown/root same owner suid", ".touch f; .chmod f 06755; chown f 0 0; st f" },
	{ "chown/root -1 -1 suid", ".touch f; .chmod f 06755; chown f -1 -1; st f" },
	{ "chown/dir keeps sgid", ".mkdir d; .chmod d 02755; chown d 65534 4242; st d" },
	{ "chown/dir keeps suid", ".mkdir d; .chmod d 04755; chown d 65534 4242; st d" },
	{ "chown/fchown", ".touch f; .chmod f 04755; fopen f rdonly; fchown 65534 65534; fst; fclose" },
	{ "chown/noent", "chown nothere 1 1" },
	{ "chown/enotdir", ".touch f; chown f/x 1 1" },
	{ "chown/user to other uid", ".touch f; .chown f 65534 65534; " U "chown f 1000 -1" R "; st f" },
	{ "chown/user to own uid", ".touch f; .chown f 65534 65534; " U "chown f 65534 -1" R "; st f" },
	{ "chown/user not owner -1 -1", ".touch f; " U "chown f -1 -1" R },
	{ "chown/user not owner same", ".touch f; " U "chown f 0 0" R },
	{ "chown/user group member", ".touch f; .chown f 65534 65534; " UG "chown f -1 4242" R "; st f" },
	{ "chown/user group not member", ".touch f; .chown f 65534 65534; " U "chown f -1 4242" R "; st f" },
	{ "chown/user group member clears suid",
	  ".touch f; .chown f 65534 65534; .chmod f 06755; " UG "chown f -1 4242" R "; st f" },
	{ "chown/user same group clears suid",
	  ".touch f; .chown f 65534 65534; .chmod f 06755; " U "chown f -1 65534" R "; st f" },
	{ "chown/user -1 -1 keeps suid",
	  ".touch f; .chown f 65534 65534; .chmod f 06755; " U "chown f -1 -1" R "; st f" },
	{ "chown/user member dir sgid",
	  ".mkdir d; .chown d 65534 65534; .chmod d 02755; " UG "chown d -1 4242" R "; st d" },
	{ "chown/user lchown own symlink", ".chmod . 0777; " U "symlink x s; lchown s -1 65534" R "; st s" },

	/* ---- link ------------------------------------------------------------------ */
	{ "link/file", ".touch f; mark f; mark .; link f g; st f; st g; dt f; dt ." },
	{ "link/other dir", ".touch f; .mkdir d; mark d; link f d/g; st d/g; dt d" },
	{ "link/three", ".touch f; link f g; link g h; st f" },
	{ "link/dir", ".mkdir d; link d e; st d" },
	{ "link/existing", ".touch f; .touch g; link f g; st f" },
	{ "link/existing dir", ".touch f; .mkdir d; link f d" },
	{ "link/noent", "link nothere g; st g" },
	{ "link/noent target dir", ".touch f; link f nodir/g" },
	{ "link/enotdir", ".touch f; link f f/g; link f/x g" },
	{ "link/name 256", ".touch f; link f $N256" },
	{ "link/name 255", ".touch f; link f $N255; st f" },
	{ "link/symlink nofollow", ".touch f; .symlink f s; link s t; st t; st f; st s" },
	{ "link/symlink follow", ".touch f; .symlink f s; linkf s t; st t; st f" },
	{ "link/dangling symlink follow", ".symlink nowhere s; linkf s t; link s u; st u" },
	{ "link/fifo", ".mkfifo p; link p q; st q" },
	{ "link/exdev", ".touch f; link f /dev/shm/posixdiff.link" },
	{ "link/then unlink", ".touch f; .link f g; mark f; unlink g; st f; dt f" },
	{ "link/trailing slash", ".touch f; link f g/; link f/ g" },
	{ "link/user no write dir", ".touch f 0644; .mkdir d 0755; " U "link f d/g" R },
	{ "link/user unreadable (protected_hardlinks)", ".mkdir d 0777; .chmod d 0777; .touch f 0600; " U "link f d/g" R },
	{ "link/user readable other's", ".mkdir d 0777; .chmod d 0777; .touch f 0644; " U "link f d/g" R },
	{ "link/user own", ".chmod . 0777; " U "touch f; link f g; st g" R },
	{ "link/user search denied", ".mkdir d 0700; .touch d/f; .chmod . 0777; " U "link d/f g" R },

	/* ---- mkdir ------------------------------------------------------------------ */
	{ "mkdir/basic", "mark .; st .; mkdir d 0755; st d; st .; dt ." },
	{ "mkdir/modes", "mkdir a 0700; mkdir b 0777; mkdir c 0111; st a; st b; st c" },
	{ "mkdir/sticky", "mkdir d 01777; st d" },
	{ "mkdir/sgid suid bits", "mkdir d 06777; st d" },
	{ "mkdir/umask 077", "umask 077; mkdir d 0777; st d" },
	{ "mkdir/umask 000", "umask 000; mkdir d 0777; st d" },
	{ "mkdir/existing", ".mkdir d; mkdir d" },
	{ "mkdir/existing file", ".touch f; mkdir f" },
	{ "mkdir/existing symlink", ".symlink nowhere s; mkdir s; st nowhere" },
	{ "mkdir/noent", "mkdir a/b" },
	{ "mkdir/enotdir", ".touch f; mkdir f/d" },
	{ "mkdir/trailing slash", "mkdir d/; st d" },
	{ "mkdir/dot", "mkdir .; mkdir ..; mkdir d/." },
	{ "mkdir/name 255", "mkdir $N255; st $N255" },
	{ "mkdir/name 256", "mkdir $N256" },
	{ "mkdir/eloop", ".symlink a b; .symlink b a; mkdir a/d" },
	{ "mkdir/nested nlink", "mkdir a; mkdir a/b; mkdir a/c; mkdir a/b/x; st a; st a/b" },
	{ "mkdir/user", ".chmod . 0777; " U "mkdir d 0777; st d" R "; st d" },
	{ "mkdir/user no write", U "mkdir d" R },
	{ "mkdir/user no search", ".mkdir d 0766; .chmod d 0766; " U "mkdir d/e" R },
	{ "mkdir/sgid parent", ".mkdir d; .chown d 0 4242; .chmod d 02755; mkdir d/e 0755; st d/e" },
	{ "mkdir/sgid parent user member",
	  ".mkdir d; .chown d 0 4242; .chmod d 02777; " UG "mkdir d/e 0755; st d/e" R },
	{ "mkdir/sgid parent user not member",
	  ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "mkdir d/e 0755; st d/e; mkdir d/e/f; st d/e/f" R },
	{ "mkdir/user group", ".chmod . 0777; " UG "mkdir d; st d" R },

	/* ---- mknod, mkfifo -------------------------------------------------------------- */
	{ "mknod/fifo", "mark .; mkfifo p 0644; st p; dt ." },
	{ "mknod/fifo via mknod", "mknod p fifo 0600; st p" },
	{ "mknod/reg", "mknod f reg 0640; st f" },
	{ "mknod/reg no type", "mknod f none 0640; st f" },
	{ "mknod/sock", "mknod s sock 0644; st s" },
	{ "mknod/chr", "mknod c chr 0644 1 3; st c" },
	{ "mknod/blk", "mknod b blk 0600 7 0; st b" },
	{ "mknod/bad type", "mknod x bad 0644" },
	{ "mknod/existing", ".touch f; mknod f fifo 0644; mkfifo f" },
	{ "mknod/umask", "umask 027; mkfifo p 0777; st p" },
	{ "mknod/sgid bits", "mknod p fifo 07777; st p" },
	{ "mknod/noent", "mkfifo a/p" },
	{ "mknod/enotdir", ".touch f; mkfifo f/p" },
	{ "mknod/name 256", "mkfifo $N256" },
	{ "mknod/user fifo", ".chmod . 0777; " U "mkfifo p 0666; st p" R },
	{ "mknod/user chr", ".chmod . 0777; " U "mknod c chr 0666 1 3" R },
	{ "mknod/user no write", U "mkfifo p" R },
	{ "mknod/sgid parent user not member",
	  ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "mkfifo d/p 02666; st d/p" R },

	/* ---- symlink ---------------------------------------------------------------- */
	{ "symlink/basic", "mark .; symlink target s; st s; readlink s; dt ." },
	{ "symlink/umask ignored", "umask 077; symlink t s; st s" },
	{ "symlink/existing", ".touch f; symlink t f; st f" },
	{ "symlink/existing symlink", ".symlink a s; symlink b s; readlink s" },
	{ "symlink/empty target", "symlink - s" },
	{ "symlink/target 4095", "symlink x$N4094 s; st s; readlink s" },
	{ "symlink/target 4096", "symlink x$N4095 s" },
	{ "symlink/name 256", "symlink t $N256" },
	{ "symlink/noent", "symlink t a/s" },
	{ "symlink/enotdir", ".touch f; symlink t f/s" },
	{ "symlink/follow", ".touch f; .write f 0 data; .symlink f s; read s 0 10; sst s" },
	{ "symlink/dir", ".mkdir d; .touch d/f; .symlink d s; ls s; st s/f; open s rdonly,directory" },
	{ "symlink/dangling stat", ".symlink nowhere s; sst s; st s" },
	{ "symlink/readlink not link", ".touch f; readlink f; readlink nothere" },
	{ "symlink/user", ".chmod . 0777; " U "symlink t s; st s" R },
	{ "symlink/user no write", U "symlink t s" R },
	{ "symlink/sgid parent", ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "symlink t d/s; st d/s" R },

	/* ---- unlink --------------------------------------------------------------- */
	{ "unlink/file", ".touch f; mark .; unlink f; st f; dt ." },
	{ "unlink/other link", ".touch f; .link f g; mark g; unlink f; st g; dt g" },
	{ "unlink/dir", ".mkdir d; unlink d" },
	{ "unlink/noent", "unlink nothere" },
	{ "unlink/enotdir", ".touch f; unlink f/x" },
	{ "unlink/trailing slash", ".touch f; unlink f/" },
	{ "unlink/symlink", ".touch f; .symlink f s; unlink s; st s; st f" },
	{ "unlink/symlink to dir slash", ".mkdir d; .symlink d s; unlink s/; st s" },
	{ "unlink/fifo sock", ".mkfifo p; .mknod s sock 0644; unlink p; unlink s; ls ." },
	{ "unlink/name 256", "unlink $N256" },
	{ "unlink/open file", ".touch f; fopen f rdwr; unlink f; fst; fwrite 0 still; fread 0 5; fclose; st f" },
	{ "unlink/open file with link", ".touch f; .link f g; fopen f rdwr; unlink f; fst; fclose" },
	{ "unlinkat/removedir on file", ".touch f; unlinkdir f" },
	{ "unlink/user no write", ".touch f; " U "unlink f" R },
	{ "unlink/user sticky other's", ".mkdir d 01777; .chmod d 01777; .touch d/f; .chmod d/f 0666; " U "unlink d/f" R },
	{ "unlink/user sticky own", ".mkdir d 01777; .chmod d 01777; " U "touch d/f; unlink d/f" R },
	{ "unlink/user sticky dir owner",
	  ".mkdir d 01777; .chmod d 01777; .chown d 65534 65534; .touch d/f; " U "unlink d/f" R },
	{ "unlink/user sticky other user's",
	  ".mkdir d 01777; .chmod d 01777; " U2 "touch d/f 0666" R "; " U "unlink d/f" R },
	{ "unlink/user nonsticky other's", ".mkdir d 0777; .chmod d 0777; .touch d/f; " U "unlink d/f" R },
	{ "unlink/user no search", ".mkdir d 0766; .chmod d 0766; .touch d/f; " U "unlink d/f" R },

	/* ---- rmdir ------------------------------------------------------------------ */
	{ "rmdir/empty", ".mkdir d; mark .; st .; rmdir d; st d; st .; dt ." },
	{ "rmdir/not empty", ".mkdir d; .touch d/f; rmdir d" },
	{ "rmdir/not empty subdir", ".mkdir d; .mkdir d/e; rmdir d; st d" },
	{ "rmdir/file", ".touch f; rmdir f" },
	{ "rmdir/noent", "rmdir nothere" },
	{ "rmdir/dot", ".mkdir d; rmdir d/.; rmdir .; rmdir d/.." },
	{ "rmdir/trailing slash", ".mkdir d; rmdir d/; st d" },
	{ "rmdir/symlink", ".mkdir d; .symlink d s; rmdir s; rmdir s/" },
	{ "rmdir/name 256", "rmdir $N256" },
	{ "rmdir/open dir", ".mkdir d; fopen d rdonly,directory; rmdir d; fst; fclose" },
	{ "rmdir/user no write", ".mkdir d; " U "rmdir d" R },
	{ "rmdir/user sticky other's", ".mkdir s 01777; .chmod s 01777; .mkdir s/d; " U "rmdir s/d" R },
	{ "rmdir/user sticky own", ".mkdir s 01777; .chmod s 01777; " U "mkdir s/d; rmdir s/d" R },
	{ "rmdir/user sticky dir owner",
	  ".mkdir s 01777; .chmod s 01777; .chown s 65534 65534; .mkdir s/d; " U "rmdir s/d" R },

	/* ---- rename ---------------------------------------------------------------- */
	{ "rename/file", ".touch f; mark f; mark .; rename f g; st f; st g; dt g f; dt ." },
	{ "rename/other dir", ".touch f; .mkdir a; .mkdir b; .link f a/x; mark a; mark b; mark f;"
	  "rename a/x b/y; dt a; dt b; dt f; st b/y" },
	{ "rename/over file", ".touch f; .write f 0 new; .touch g; .write g 0 old; .link g h; mark h;"
	  "rename f g; read g 0 10; st h; dt h" },
	{ "rename/over itself", ".touch f; mark f; rename f f; st f; dt f" },
	{ "rename/hard links", ".touch f; .link f g; rename f g; st f; st g" },
	{ "rename/dir", ".mkdir d; .touch d/f; mark d; rename d e; st e; ls e; dt e d" },
	{ "rename/dir other parent nlink", ".mkdir a; .mkdir b; .mkdir a/d; st a; st b; mark a/d;"
	  "rename a/d b/d; st a; st b; dt b/d a/d" },
	{ "rename/dir over empty dir", ".mkdir a; .mkdir b; .touch a/f; rename a b; ls b; st a; st ." },
	{ "rename/dir over nonempty dir", ".mkdir a; .mkdir b; .touch b/f; rename a b" },
	{ "rename/dir over file", ".mkdir d; .touch f; rename d f" },
	{ "rename/file over dir", ".mkdir d; .touch f; rename f d" },
	{ "rename/into own subdir", ".mkdir d; .mkdir d/e; rename d d/e/x; rename d d/x" },
	{ "rename/ancestor over descendant", ".mkdir d; .mkdir d/e; rename d/e d" },
	{ "rename/dot", ".mkdir d; rename d/. x; rename x d/.; rename . x; rename d/.. x" },
	{ "rename/noent", "rename nothere x; st x" },
	{ "rename/noent target dir", ".touch f; rename f nodir/x; st f" },
	{ "rename/enotdir", ".touch f; rename f/x y; rename f f/x" },
	{ "rename/trailing slash file", ".touch f; rename f g/; rename f/ g; st f" },
	{ "rename/trailing slash dir", ".mkdir d; rename d/ e/; st e" },
	{ "rename/name 256", ".touch f; rename f $N256; rename $N256 f" },
	{ "rename/symlink", ".symlink t s; rename s s2; readlink s2; st s" },
	{ "rename/symlink over dir symlink", ".mkdir d; .symlink d s; .touch f; rename f s; st s; st d" },
	{ "rename/noreplace", ".touch f; .touch g; rename f g noreplace; rename f h noreplace; st f; st h" },
	{ "rename/exchange", ".touch f; .write f 0 F; .mkdir d; mark f; mark d; rename f d exchange;"
	  "st f; st d; read d 0 5; dt d f; dt f d" },
	{ "rename/exchange noent", ".touch f; rename f g exchange" },
	{ "rename/exchange dirs nlink", ".mkdir a; .mkdir b; .mkdir a/x; .mkdir a/x/y; .touch b/f;"
	  "rename a/x b/f exchange; st a; st b; st a/f; st b/f" },
	{ "rename/exchange into own subdir", ".mkdir d; .mkdir d/e; rename d d/e exchange" },
	{ "rename/whiteout", ".touch f; rename f g whiteout; st f; st g", MFS_NO_WHITEOUT },
	{ "rename/exdev", ".touch f; rename f /dev/shm/posixdiff.rename" },
	{ "rename/open file", ".touch f; fopen f rdwr; rename f g; fwrite 0 moved; fclose; read g 0 10" },
	{ "rename/user no write", ".touch f; " U "rename f g" R },
	{ "rename/user sticky other's", ".mkdir d 01777; .chmod d 01777; .touch d/f; " U "rename d/f d/g" R },
	{ "rename/user sticky over other's",
	  ".mkdir d 01777; .chmod d 01777; .touch d/g; " U "touch d/f; rename d/f d/g" R "; st d/g" },
	{ "rename/user sticky own", ".mkdir d 01777; .chmod d 01777; " U "touch d/f; rename d/f d/g; st d/g" R },
	{ "rename/user dir not writable", ".mkdir a 0777; .chmod a 0777; .mkdir b 0777; .chmod b 0777;"
	  ".mkdir a/d 0755; " U "rename a/d b/d; rename a/d a/e" R },
	{ "rename/user own dir", ".mkdir a 0777; .chmod a 0777; .mkdir b 0777; .chmod b 0777; "
	  U "mkdir a/d; rename a/d b/d; st b/d" R },

	/* ---- truncate, ftruncate ---------------------------------------------------- */
	{ "truncate/grow", ".touch f; .write f 0 abc; mark f; truncate f 10; st f; read f 0 20; dt f" },
	{ "truncate/shrink", ".touch f; .write f 0 abcdef; mark f; truncate f 2; st f; read f 0 20; dt f" },
	{ "truncate/same size", ".touch f; .write f 0 abc; mark f; truncate f 3; st f; dt f" },
	{ "truncate/zero empty", ".touch f; mark f; truncate f 0; dt f" },
	{ "truncate/negative", ".touch f; truncate f -1" },
	{ "truncate/big", ".touch f; truncate f 1099511627776; st f" },
	{ "truncate/too big", ".touch f; truncate f 0x7fffffffffffffff" },
	{ "truncate/dir", ".mkdir d; truncate d 0" },
	{ "truncate/noent", "truncate nothere 0" },
	{ "truncate/enotdir", ".touch f; truncate f/x 0" },
	{ "truncate/symlink", ".touch f; .symlink f s; truncate s 5; st f" },
	{ "truncate/fifo", ".mkfifo p; truncate p 0" },
	{ "truncate/user no write", ".touch f; " U "truncate f 0" R },
	{ "truncate/user other's writable", ".touch f; .chmod f 0666; " U "truncate f 4" R "; st f" },
	{ "truncate/user clears suid", ".touch f; .chown f 65534 65534; .chmod f 06755; " U "truncate f 4" R "; st f" },
	{ "truncate/root keeps suid", ".touch f; .chown f 65534 65534; .chmod f 06755; truncate f 4; st f" },
	{ "ftruncate/grow", ".touch f; fopen f wronly; mark f; ftruncate 100; fst; dt f; fclose" },
	{ "ftruncate/rdonly", ".touch f; fopen f rdonly; ftruncate 1; fclose" },
	{ "ftruncate/append", ".touch f; fopen f wronly,append; ftruncate 4; fst; fclose" },
	{ "ftruncate/negative", ".touch f; fopen f wronly; ftruncate -1; fclose" },
	{ "ftruncate/path fd", ".touch f; fopen f path; ftruncate 1; fclose" },
	{ "ftruncate/after chmod 0", ".touch f; fopen f rdwr; .chmod f 0000; ftruncate 7; fst; fclose" },
	{ "ftruncate/user writable fd on 0444",
	  ".chmod . 0777; " U "touch f 0644; fopen f rdwr; chmod f 0444; ftruncate 3; fst; fclose" R },
	{ "ftruncate/user clears suid",
	  ".touch f; .chown f 65534 65534; .chmod f 06755; " U "fopen f wronly; ftruncate 3; fclose" R "; st f" },

	/* ---- write, read --------------------------------------------------------------- */
	{ "write/mtime ctime", ".touch f; mark f; write f 0 hello; dt f; st f" },
	{ "write/hole", ".touch f; write f 10 x; st f; read f 0 20" },
	{ "write/user clears suid", ".touch f; .chown f 65534 65534; .chmod f 06775; " U "write f 0 x" R "; st f" },
	{ "write/user other clears suid", ".touch f; .chmod f 06777; " U "write f 0 x" R "; st f" },
	{ "write/root keeps suid", ".touch f; .chmod f 06777; write f 0 x; st f" },

	{ "write/zero bytes", ".touch f; mark f; fopen f wronly; fwrite 0 -; fclose; dt f" },
	{ "read/eof", ".touch f; .write f 0 abc; read f 3 10; read f 100 10" },
	{ "read/dir", ".mkdir d; fopen d rdonly; fread 0 10; fclose" },
	{ "copy_file_range", ".touch f; .write f 0 copied; .touch g; cfr f g 100; read g 0 100; st g" },
	{ "copy_file_range dir", ".touch f; .mkdir d; cfr d f 10" },
	{ "lseek/data hole", ".touch f; .write f 1048576 x; fopen f rdonly; lseek data 0; lseek hole 0; lseek end 0;"
	  "lseek data 2000000; fclose" },
	{ "lseek/empty", ".touch f; fopen f rdonly; lseek data 0; lseek hole 0; fclose" },
	{ "fsync/file dir", ".touch f; fopen f rdonly; fsync; fclose; fopen . rdonly; fsync; fclose" },

	/* ---- utimensat --------------------------------------------------------------- */
	{ "utimens/explicit", ".touch f; mark f; utimens f 1000000000.5 1200000000.25; times f; dt f" },
	{ "utimens/now", ".touch f; .utimens f 1000 1000; mark f; utimens f now now; dt f" },
	{ "utimens/null", ".touch f; .utimens f 1000 1000; mark f; utimes0 f; dt f" },
	{ "utimens/omit both", ".touch f; .utimens f 1000 1000; mark f; utimens f omit omit; times f; dt f" },
	{ "utimens/atime only", ".touch f; .utimens f 1000 1000; mark f; utimens f 5 omit; times f; dt f" },
	{ "utimens/mtime only", ".touch f; .utimens f 1000 1000; mark f; utimens f omit 7; times f; dt f" },
	{ "utimens/negative", ".touch f; utimens f -100 -1.5; times f" },
	{ "utimens/far future", ".touch f; utimens f 8589934591 17179869184; times f" },
	{ "utimens/pre 1901", ".touch f; utimens f -2147483649 -4000000000; times f" },
	{ "utimens/nsec invalid", ".touch f; utimens f 1.1234567890 0" },
	{ "utimens/dir", ".mkdir d; utimens d 3000 4000; times d" },
	{ "utimens/symlink nofollow", ".touch f; .symlink f s; lutimens s 11 12; times s" },
	{ "utimens/symlink follow", ".touch f; .symlink f s; utimens s 11 12; times f" },
	{ "utimens/noent", "utimens nothere 1 1" },
	{ "utimens/futimens", ".touch f; fopen f rdonly; futimens 21 22; fclose; times f" },
	{ "utimens/user own explicit", ".touch f; .chown f 65534 65534; " U "utimens f 31 32" R "; times f" },
	{ "utimens/user other's writable now", ".touch f; .chmod f 0666; " U "utimens f now now; utimes0 f" R },
	{ "utimens/user other's writable explicit", ".touch f; .chmod f 0666; " U "utimens f 1 1; utimens f omit 1" R },
	{ "utimens/user other's writable omit", ".touch f; .chmod f 0666; " U "utimens f omit omit; utimens f now omit" R },
	{ "utimens/user other's not writable now", ".touch f; " U "utimens f now now; utimes0 f" R },
	{ "utimens/user futimens rdonly fd other's writable",
	  ".touch f; .chmod f 0666; " U "fopen f rdonly; futimens now now; fclose" R },

	/* ---- posix_fallocate, fallocate -------------------------------------------------- */
	{ "posix_fallocate/grow", ".touch f; fopen f rdwr; mark f; pfallocate 0 8192; fst; dt f; fclose" },
	{ "posix_fallocate/inside", ".touch f; .write f 0 0123456789; fopen f rdwr; pfallocate 2 4; fst; fclose" },
	{ "posix_fallocate/rdonly", ".touch f; fopen f rdonly; pfallocate 0 10; fclose" },
	{ "posix_fallocate/bad len", ".touch f; fopen f rdwr; pfallocate 0 0; pfallocate -1 10; fclose" },
	{ "posix_fallocate/fifo", ".mkfifo p; fopen p rdwr; pfallocate 0 10; fclose" },
	{ "fallocate/keep size", ".touch f; fopen f rdwr; fallocate keep 0 65536; fst; fclose" },
	{ "fallocate/punch", ".touch f; .write f 0 0123456789; fopen f rdwr; mark f; fallocate punch 2 3; fread 0 10; fst; dt f; fclose" },
	{ "fallocate/punch without keep", ".touch f; .write f 0 0123456789; fopen f rdwr; fallocate punchonly 2 3; fclose" },
	{ "fallocate/zero range", ".touch f; .write f 0 0123456789; fopen f rdwr; fallocate zero 2 3; fread 0 10; fclose" },
	{ "fallocate/collapse", ".touch f; .truncate f 65536; fopen f rdwr; fallocate collapse 0 4096; fst; fclose",
	  FUSE_FALLOC_MODES },
	{ "fallocate/insert", ".touch f; .truncate f 65536; fopen f rdwr; fallocate insert 0 4096; fst; fclose",
	  FUSE_FALLOC_MODES },
	{ "fallocate/append fd", ".touch f; fopen f wronly,append; fallocate 0 0 10; fclose" },

	/* ---- extended attributes --------------------------------------------------------- */
	{ "xattr/set get", ".touch f; mark f; setxattr f user.a hello; getxattr f user.a; dt f" },
	{ "xattr/list", ".touch f; setxattr f user.b 2; setxattr f user.a 1; listxattr f" },
	{ "xattr/get missing", ".touch f; getxattr f user.nothere" },
	{ "xattr/size query", ".touch f; .setxattr f user.a hello; getxattr f user.a 0" },
	{ "xattr/too small", ".touch f; .setxattr f user.a hello; getxattr f user.a 2" },
	{ "xattr/create existing", ".touch f; .setxattr f user.a 1; setxattr f user.a 2 create; getxattr f user.a" },
	{ "xattr/replace missing", ".touch f; setxattr f user.a 2 replace; getxattr f user.a" },
	{ "xattr/replace", ".touch f; .setxattr f user.a 1; setxattr f user.a 2 replace; getxattr f user.a" },
	{ "xattr/empty value", ".touch f; setxattr f user.e -; getxattr f user.e; getxattr f user.e 0" },
	{ "xattr/big value", ".touch f; setxattr f user.big @4000; getxattr f user.big 0" },
	{ "xattr/too big value", ".touch f; setxattr f user.big @65537" },
	{ "xattr/name 255", ".touch f; setxattr f user.$N250 x; getxattr f user.$N250" },
	{ "xattr/name 256", ".touch f; setxattr f user.$N251 x; getxattr f user.$N251" },
	{ "xattr/no namespace", ".touch f; setxattr f foo x; getxattr f foo" },
	{ "xattr/unknown namespace", ".touch f; setxattr f bogus.x x" },
	{ "xattr/remove", ".touch f; .setxattr f user.a 1; mark f; removexattr f user.a; getxattr f user.a; dt f" },
	{ "xattr/remove missing", ".touch f; removexattr f user.a" },
	{ "xattr/dir", ".mkdir d; setxattr d user.a 1; getxattr d user.a; listxattr d" },
	{ "xattr/user on symlink", ".touch f; .symlink f s; lsetxattr s user.a 1; lgetxattr s user.a; llistxattr s" },
	{ "xattr/user via symlink", ".touch f; .symlink f s; setxattr s user.a 1; getxattr f user.a" },
	{ "xattr/user on fifo", ".mkfifo p; setxattr p user.a 1" },
	{ "xattr/trusted root", ".touch f; setxattr f trusted.t 1; getxattr f trusted.t; listxattr f" },
	{ "xattr/trusted on symlink", ".symlink t s; lsetxattr s trusted.t 1; lgetxattr s trusted.t" },
	{ "xattr/security root", ".touch f; setxattr f security.s 1; getxattr f security.s" },
	{ "xattr/fsetxattr", ".touch f; fopen f rdonly; fsetxattr user.f 1; fclose; getxattr f user.f" },
	{ "xattr/noent", "setxattr nothere user.a 1; getxattr nothere user.a; listxattr nothere" },
	{ "xattr/user own", ".touch f; .chown f 65534 65534; " U "setxattr f user.a 1; getxattr f user.a" R },
	{ "xattr/user own 0444", ".touch f 0444; .chown f 65534 65534; " U "setxattr f user.a 1" R },
	{ "xattr/user other's readonly", ".touch f; .setxattr f user.a 1; " U "getxattr f user.a; setxattr f user.b 1; removexattr f user.a" R },
	{ "xattr/user other's unreadable", ".touch f 0600; .setxattr f user.a 1; " U "getxattr f user.a; listxattr f" R },
	{ "xattr/user other's writable", ".touch f; .chmod f 0666; " U "setxattr f user.b 1" R "; getxattr f user.b" },
	{ "xattr/user trusted", ".touch f; .setxattr f trusted.t 1; .chown f 65534 65534; " U "getxattr f trusted.t; setxattr f trusted.u 1; listxattr f" R },
	{ "xattr/user sticky dir other's",
	  ".mkdir d 01777; .chmod d 01777; " U2 "setxattr d user.a 1" R },
	{ "xattr/ctime on dir", ".mkdir d; mark d; setxattr d user.a 1; dt d" },

	/* ---- POSIX ACLs ------------------------------------------------------------- */
	{ "acl/set access", ".touch f; setxattr f system.posix_acl_access acl:u::rw-,u:65534:rwx,g::r--,m::rwx,o::---;"
	  "st f; getxattr f system.posix_acl_access" },
	{ "acl/minimal equivalent", ".touch f; setxattr f system.posix_acl_access acl:u::rwx,g::r-x,o::r--; st f;"
	  "getxattr f system.posix_acl_access" },
	{ "acl/chmod changes mask", ".touch f; .setxattr f system.posix_acl_access acl:u::rw-,u:65534:rwx,g::r--,m::rwx,o::---;"
	  "chmod f 0640; st f; " U "open f rdwr; open f rdonly" R },
	{ "acl/grants user", ".touch f 0600; .setxattr f system.posix_acl_access acl:u::rw-,u:65534:rw-,g::---,m::rw-,o::---;"
	  U "open f rdwr" R "; " U2 "open f rdonly" R },
	{ "acl/invalid", ".touch f; setxattr f system.posix_acl_access acl:u::rw-,u:65534:rwx,g::r--,o::---" },
	{ "acl/user not owner", ".touch f; .chmod f 0666; " U "setxattr f system.posix_acl_access acl:u::rw-,g::r--,o::r--" R },
	{ "acl/default dir", ".mkdir d; setxattr d system.posix_acl_default acl:u::rwx,g::r-x,m::rwx,o::---;"
	  "getxattr d system.posix_acl_default; touch d/f 0666; st d/f; mkdir d/e 0777; st d/e;"
	  "getxattr d/e system.posix_acl_default; getxattr d/f system.posix_acl_access" },
	{ "acl/default umask ignored", ".mkdir d; .setxattr d system.posix_acl_default acl:u::rwx,g::rwx,o::rwx;"
	  "umask 077; touch d/f 0666; mkdir d/e 0777; mkfifo d/p 0666; st d/f; st d/e; st d/p" },
	{ "acl/default on file", ".touch f; setxattr f system.posix_acl_default acl:u::rwx,g::r-x,o::---" },
	{ "acl/remove default", ".mkdir d; .setxattr d system.posix_acl_default acl:u::rwx,g::r-x,o::---;"
	  "removexattr d system.posix_acl_default; getxattr d system.posix_acl_default; touch d/f 0666; st d/f" },
	{ "acl/user default dir create", ".mkdir d 0777; .chmod d 0777;"
	  ".setxattr d system.posix_acl_default acl:u::rwx,g::rwx,m::rwx,o::rwx; "
	  U "umask 022; touch d/f 0666; st d/f" R },

	/* ---- permission checks, access ------------------------------------------------- */
	{ "access/root", ".touch f 0000; .chmod f 0000; access f r; access f w; access f x; access f f" },
	{ "access/root exec any x", ".touch f; .chmod f 0010; access f x" },
	{ "access/root dir", ".mkdir d 0000; .chmod d 0000; access d rwx" },
	{ "access/user", ".touch f; .chmod f 0754; " U "access f r; access f w; access f x; access f rx" R },
	{ "access/user group", ".touch f; .chown f 0 4242; .chmod f 0070; " UG "access f rwx" R "; " U "access f r" R },
	{ "access/user owner denied", ".touch f; .chown f 65534 65534; .chmod f 0077; " U "access f r" R },
	{ "access/noent", "access nothere f; access nodir/x f" },
	{ "access/eaccess", ".touch f; .chmod f 0700; " U "eaccess f r" R },
	{ "access/user cd", ".mkdir a 0755; .mkdir b 0644; .chmod b 0644; .mkdir c 0711; " U "cd a; cd b; cd c" R },
	{ "access/user readdir 0711", ".mkdir d 0711; .touch d/f; " U "ls d; st d/f" R },
	{ "access/user readdir 0744", ".mkdir d 0744; .chmod d 0744; .touch d/f; " U "ls d; st d/f; open d/f rdonly" R },
	{ "access/user supplementary group",
	  ".mkdir d 0070; .chmod d 0070; .chown d 0 4242; .touch d/f; " UG "ls d; st d/f" R },

	/* ---- setgid directories ----------------------------------------------------- */
	{ "sgid/root file", ".mkdir d; .chown d 0 4242; .chmod d 02775; touch d/f 0664; st d/f" },
	{ "sgid/root sgid request", ".mkdir d; .chown d 0 4242; .chmod d 02775; touch d/f 02775; st d/f" },
	{ "sgid/member file", ".mkdir d; .chown d 0 4242; .chmod d 02777; " UG "touch d/f 0664; st d/f" R },
	{ "sgid/member sgid request", ".mkdir d; .chown d 0 4242; .chmod d 02777; " UG "touch d/f 02775; st d/f" R },
	{ "sgid/nonmember file", ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "touch d/f 0664; st d/f" R },
	{ "sgid/nonmember sgid request", ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "touch d/f 02775; st d/f" R },
	{ "sgid/nonmember sgid no gexec", ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "touch d/f 02664; st d/f" R },
	{ "sgid/nonmember mknod", ".mkdir d; .chown d 0 4242; .chmod d 02777; " U "mknod d/f reg 02775; st d/f" R },
	{ "sgid/rename keeps gid", ".mkdir d; .chown d 0 4242; .chmod d 02777; .touch f; rename f d/f; st d/f" },
	{ "sgid/link keeps gid", ".mkdir d; .chown d 0 4242; .chmod d 02777; .touch f; link f d/f; st d/f" },
	{ "sgid/nested", ".mkdir d; .chown d 0 4242; .chmod d 02755; mkdir d/a; mkdir d/a/b; st d/a/b;"
	  "touch d/a/b/f; st d/a/b/f" },
	{ "sgid/user creates own group", ".chmod . 0777; " U "touch f; mkdir d; st f; st d" R },

	/* ---- ctime, mtime, nlink bookkeeping ----------------------------------------- */
	{ "times/link target ctime", ".touch f; mark f; link f g; dt f" },
	{ "times/rename ctime", ".touch f; mark f; rename f g; dt g f" },
	{ "times/rename dir ctime", ".mkdir a; .mkdir b; .mkdir a/d; mark a/d; rename a/d b/d; dt b/d a/d" },
	{ "times/rename over victim dirs", ".touch f; .touch g; mark .; rename f g; dt ." },
	{ "times/chmod ctime only", ".touch f; mark f; chmod f 0600; dt f" },
	{ "times/chown ctime only", ".touch f; mark f; chown f 1 1; dt f" },
	{ "times/truncate", ".touch f; .write f 0 abc; mark f; truncate f 1; dt f" },
	{ "times/unlink other link ctime", ".touch f; .link f g; mark g; unlink f; dt g" },
	{ "times/unlink dir times", ".touch f; mark .; unlink f; dt ." },
	{ "times/rmdir parent", ".mkdir d; mark .; rmdir d; dt ." },
	{ "times/mkdir parent", "mark .; mkdir d; dt ." },
	{ "times/symlink parent", "mark .; symlink t s; dt ." },
	{ "times/mknod parent", "mark .; mkfifo p; dt ." },
	{ "times/link parent", ".touch f; .mkdir d; mark d; link f d/g; dt d" },
	{ "times/setxattr", ".touch f; mark f; setxattr f user.x 1; dt f" },
	{ "times/failed ops", ".touch f; .mkdir d; .touch d/x; mark .; mark d; mkdir d; rmdir d; link f f; dt .; dt d" },
	{ "times/read no change", ".touch f; .write f 0 abc; mark f; read f 0 3; dt f" },
	{ "times/readdir no change", ".mkdir d; .touch d/f; mark d; ls d; dt d" },
	{ "times/rename dir parents", ".mkdir a; .mkdir b; .mkdir a/d; mark a; mark b; rename a/d b/d; dt a; dt b" },
	{ "times/exchange parents", ".mkdir a; .mkdir b; .touch a/f; .touch b/g; mark a; mark b; rename a/f b/g exchange; dt a; dt b" },
	{ "nlink/dir", "mkdir d; st d; mkdir d/a; mkdir d/b; st d; rmdir d/a; st d; touch d/f; st d" },
	{ "nlink/parent of check dirs", "st ..; st ." },
	{ "nlink/rename dir away", ".mkdir a; .mkdir a/d; .mkdir b; rename a/d b/d; st a; st b; rename b/d b/e; st b" },
	{ "nlink/rename dir over dir", ".mkdir a; .mkdir a/x; .mkdir b; .mkdir b/y; rename a/x b/y; st a; st b" },

	/* ---- directories ------------------------------------------------------------- */
	{ "readdir/types", ".touch f; .mkdir d; .symlink f l; .mkfifo p; .mknod s sock 0644; ls ." },
	{ "readdir/empty dir", ".mkdir d; ls d" },
	{ "readdir/file", ".touch f; ls f" },
	{ "readdir/many", ".mkdir d; .touch d/a; .touch d/b; .touch d/c; .mkdir d/e; .link d/a d/hl; ls d" },
	{ "readdir/removed dir", ".mkdir d; fopen d rdonly,directory; rmdir d; fst; fclose; ls d" },
	{ "stat/dir", ".mkdir d; st d; st d/.; st d/..; st ." },
	{ "stat/file via dot dot", ".mkdir d; .touch f; st d/../f" },
	{ "statfs", "statfs ." },
	{ "path/long name component ENAMETOOLONG", "st $N256; st $N256/x; st x/$N256" },
	{ "path/eloop", ".symlink a b; .symlink b a; st a; sst a; st a/x" },
	{ "path/dot dot of root escapes nothing", ".mkdir d; st d/../d/../d" },

	/* ---- suid/sgid removal (killpriv) on every path ------------------------------ */
	{ "killpriv/user trunc open clears suid", ".touch f; .write f 0 abc; .chmod f 06777; " U "open f wronly,trunc" R "; st f" },
	{ "killpriv/user append clears suid", ".touch f; .chmod f 06777; " U "append f x" R "; st f" },
	{ "killpriv/user fallocate clears suid", ".touch f; .chmod f 06777; " U "fopen f rdwr; pfallocate 0 100; fclose" R "; st f" },
	{ "killpriv/user copy_file_range clears suid", ".touch f; .chmod f 06777; .touch g; .write g 0 abc; .chmod g 0644;"
	  U "cfr g f 3" R "; st f" },
	{ "killpriv/user mmap write clears suid", ".touch f; .write f 0 abcd; .chmod f 06777; " U "mmapw f 0 x" R "; st f; read f 0 4" },
	{ "killpriv/user truncate sgid no gexec", ".touch f; .chmod f 02666; " U "truncate f 1" R "; st f",
	  FUSE_KILLPRIV_SGID },
	{ "killpriv/user write sgid no gexec", ".touch f; .chmod f 02666; " U "write f 0 x" R "; st f",
	  FUSE_KILLPRIV_SGID },
	{ "killpriv/user write sgid no gexec member", ".touch f; .chown f 0 4242; .chmod f 02666; " UG "write f 0 x" R "; st f" },
	{ "killpriv/user chown sgid no gexec", ".touch f; .chown f 65534 65534; .chmod f 02644; " UG "chown f -1 4242" R "; st f" },
	{ "killpriv/root write sgid no gexec", ".touch f; .chmod f 02666; write f 0 x; st f" },
	{ "killpriv/capability write", ".touch f; .setxattr f security.capability hex:0100000200040000000000000000000000000000;"
	  "getxattr f security.capability 0; write f 0 x; getxattr f security.capability 0" },
	{ "killpriv/capability chown", ".touch f; .setxattr f security.capability hex:0100000200040000000000000000000000000000;"
	  "chown f 65534 -1; getxattr f security.capability 0" },
	{ "killpriv/capability chmod keeps", ".touch f; .setxattr f security.capability hex:0100000200040000000000000000000000000000;"
	  "chmod f 0755; getxattr f security.capability 0" },

	/* ---- inode numbers, blocks, atime ------------------------------------------------ */
	{ "ino/hard links", ".touch f; .mkdir d; .link f d/g; sameino f d/g; sameino f d" },
	{ "ino/after rename", ".touch f; .link f keep; rename f g; sameino g keep" },
	{ "ino/d_ino", ".touch f; .mkdir d; .symlink f s; .mkfifo p; .link f h; dino .; dino d" },
	{ "ino/dot and dotdot", ".mkdir d; .mkdir d/e; sameino d/e/.. d; sameino d/. d; sameino d/e/../.. ." },
	{ "blocks/sparse", ".touch f; .write f 5368709120 x; st f; blocks f; read f 5368709120 5" },
	{ "blocks/fallocated", ".touch f; fopen f rdwr; pfallocate 0 65536; fclose; blocks f" },
	{ "statx", ".touch f; statx f", "FUSE: libfuse 3.14 has no statx op, so no birth time through FUSE" },
	{ "atime/read relatime", ".touch f; .write f 0 abc; .utimens f 1000 2000; mark f; read f 0 3; da f" },
	{ "atime/cached read", ".touch f; .write f 0 abc; .read f 0 3; .utimens f 1000 2000; mark f; read f 0 3; da f",
	  FUSE_CACHED_ATIME },
	{ "atime/noatime", ".touch f; .write f 0 abc; .utimens f 1000 2000; mark f; fopen f rdonly,noatime; fread 0 3; fclose; da f" },
	{ "atime/readdir", ".mkdir d; .touch d/f; .utimens d 1000 2000; mark d; ls d; da d" },

	/* ---- special files, mappings, more namespace -------------------------------------- */
	{ "fifo/rw", ".mkfifo p; fopen p rdwr; fwrite - abc; fread - 3; fclose; st p" },
	{ "socket/bind connect", "bindsock s; st s; connsock s; bindsock s" },
	{ "socket/connect not socket", ".touch f; connsock f; connsock nothere" },
	{ "mknod/whiteout", "mknod w chr 0000 0 0; st w" },
	{ "mmap/shared write", ".touch f; .write f 0 hello; mark f; mmapw f 1 EL; read f 0 5; dt f" },
	{ "readdir/300 entries", ".mkdir d; mkmany 300; count .; unlink m7; count ." },
	{ "link/after unlink of open file", ".touch f; fopen f rdwr; unlink f; flink g; st g; fclose" },
	{ "rename/over open file", ".touch f; .write f 0 old; .touch g; .write g 0 new; fopen f rdonly; rename g f; fread 0 3;"
	  "fst; fclose; read f 0 3" },
	{ "rename/user sticky dir exchange", ".mkdir d 01777; .chmod d 01777; .touch d/r; " U "touch d/f; rename d/f d/r exchange" R },
	{ "rename/user sticky dir move dir", ".mkdir d 01777; .chmod d 01777; .mkdir d/x; .mkdir t 0777; .chmod t 0777;"
	  U "rename d/x t/x" R },
	{ "chmod/open file", ".touch f; fopen f rdwr; chmod f 0000; fwrite 0 abc; fread 0 3; fclose; st f" },
	{ "open/creat existing fifo", ".mkfifo p; open p creat,rdonly,nonblock; st p" },
	{ "open/user creat sticky other's", ".mkdir d 01777; .chmod d 01777; .touch d/f 0666; .chmod d/f 0666; "
	  U "open d/f creat,wronly" R },
	{ "utimens/user own 0444 now", ".touch f 0444; .chown f 65534 65534; " U "utimens f now now; utimens f 1 1" R },
	{ "rmdir/user no perms nonempty", ".mkdir d; .mkdir d/e; .touch d/e/f; " U "rmdir d/e" R },
	{ "xattr/many", ".touch f; setxattr f user.a 1; setxattr f user.b 2; setxattr f user.c 3; setxattr f trusted.t 1;"
	  "setxattr f security.s 1; listxattr f; removexattr f user.b; listxattr f" },
	{ "xattr/list size", ".touch f; .setxattr f user.abc 1; .setxattr f trusted.t 1; " U "listxattr f" R },
};

/* ---- the read-only suite ---------------------------------------------------------- */

/*
 * The fixture: built by "posixdiff --fixture DIR" (as root), then made
 * read-only (a read-only bind mount, a snapshot), then read by the checks
 * below. Owners, modes and times are set explicitly so that they are the
 * same wherever it is built.
 */
static const char fixture[] =
	"touch f 0640; write f 0 hello; chown f 65534 65534; setxattr f user.a 1; setxattr f trusted.t 2;"
	"link f f2; symlink f sl; symlink nowhere dl; mkdir d 0750; touch d/g; mkfifo p 0600;"
	"mknod sock sock 0644; mknod null chr 0666 1 3;"
	"mkdir sg 02775; chown sg 0 4242; chmod sg 02775; mkdir st 01777; chmod st 01777; touch st/x 0666;"
	"touch x 0755; chmod x 04755; touch t; utimens t 1000000000.5 1200000000.25;"
	"touch sparse; write sparse 1048576 end; mkdir e; mkdir e/sub;"
	"touch acl; setxattr acl system.posix_acl_access acl:u::rw-,u:65534:rwx,g::r--,m::rwx,o::---;"
	"touch secret 0600; utimens d 2000 2000";

/*
 * Mutations on a read-only tree fail with EROFS. Only the kernel of a
 * read-only superblock or mount can say EROFS before it has looked the
 * name up, so mutations of names that do not exist are left out: through
 * FUSE (whose superblock is writable) they fail with ENOENT first (see
 * docs/HACKING.md, "POSIX conformance").
 */
#define RO_SKIP_ACCESS_W \
	"FUSE: with default_permissions, access(W_OK) is decided on the mode bits " \
	"alone; a snapshot is read-only per object, not per superblock, so W_OK " \
	"is granted where a read-only mount says EROFS"

#define RO_SKIP_PERM_FIRST \
	"FUSE: the VFS makes its own checks (sticky bit, permissions, a rename " \
	"between two links of one file is a no-op) before asking the filesystem; " \
	"only a read-only superblock or mount says EROFS first"

static const struct check ro_checks[] = {
	{ "ro/stat", "st f; st f2; st sl; st dl; st d; st d/g; st p; st sock; st null; st sg; st st; st x; st e; st acl" },
	{ "ro/times", "times t; times d" },
	{ "ro/read", "read f 0 100; read f2 1 3; read sl 0 100; read t 0 1; read sparse 1048574 10" },
	{ "ro/readlink", "readlink sl; readlink dl; readlink f" },
	{ "ro/ls", "ls .; ls d; ls e; ls e/sub" },
	{ "ro/xattr", "getxattr f user.a; getxattr f trusted.t; listxattr f; getxattr f user.none; llistxattr sl;"
	  "getxattr acl system.posix_acl_access" },
	{ "ro/seek", "fopen sparse rdonly; lseek data 0; lseek hole 0; lseek end 0; fclose" },
	{ "ro/open rdonly", "open f rdonly; open d rdonly,directory; open sl rdonly; open dl rdonly; open f rdonly,nofollow;"
	  "open sl rdonly,nofollow; open f path" },
	{ "ro/open write", "open f wronly; open f rdwr; open f rdonly,trunc; open f wronly,append; open f creat,wronly;"
	  "open new creat,wronly; open new creat,excl,wronly; open d wronly" },
	{ "ro/open fifo", "open p rdonly,nonblock" },
	{ "ro/chr null", "fopen null rdwr; fwrite 0 x; fread 0 1; fclose" },
	{ "ro/access", "access f r; access x x; access d x; access f f" },
	{ "ro/access w", "access f w; access d w", NULL, RO_SKIP_ACCESS_W },
	{ "ro/user access w", U "access f w" R, NULL, RO_SKIP_ACCESS_W },
	{ "ro/mkdir", "mkdir d; mkdir newdir; mkdir d/h" },
	{ "ro/create", "touch newfile; mkfifo d/p; mknod n sock 0644; symlink t newlink; symlink t f" },
	{ "ro/remove", "unlink f; unlink d/g; rmdir e/sub; rmdir e; unlink sl; rmdir d" },
	{ "ro/rename", "rename f g; rename d e; rename f d/f; rename sl sl2 noreplace; rename f sl exchange" },
	{ "ro/link", "link f g; link f d/g2" },
	{ "ro/setattr", "chmod f 0600; chmod d 0700; chown f 0 0; lchown sl 0 0; truncate f 0; truncate f 5;"
	  "utimens f now now; utimens f 1 1; utimes0 f; lutimens sl 1 1" },
	{ "ro/setattr fd", "fopen f rdonly; fchmod 0600; fchown 0 0; futimens 1 1; ftruncate 0; fclose" },
	{ "ro/xattr set", "setxattr f user.a 2; setxattr f user.new 1; removexattr f user.a; setxattr d user.a 1;"
	  "setxattr acl system.posix_acl_access acl:u::rw-,g::r--,o::---" },
	{ "ro/fd ops", "fopen f rdonly; fwrite 0 x; pfallocate 0 10; fallocate keep 0 10; fsync; fclose" },
	{ "ro/statfs", "statfs ." },
	{ "ro/user read", U "read f 0 100; read secret 0 1; ls d; read d/g 0 1; access f r; access d x" R },
	{ "ro/user xattr", U "listxattr f; getxattr f user.a; getxattr f trusted.t; listxattr acl" R },
	{ "ro/user group", UG "ls d; ls sg" R },
	{ "ro/user mutations", U "chmod f 0600; touch st/new; setxattr f user.b 1; utimens f now now" R },
	{ "ro/user sticky unlink", U "unlink st/x" R, NULL, RO_SKIP_PERM_FIRST },
	{ "ro/rename links of one file", "rename f f2", NULL, RO_SKIP_PERM_FIRST },
};

#pragma GCC diagnostic pop

/* ---- main ------------------------------------------------------------------------------- */

static void run_table(const struct check *t, size_t n, bool own_dir)
{
	for (size_t i = 0; i < n; i++)
		run_check(&t[i], (int)i, own_dir);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: posixdiff [--no-skip] DIR | --fixture DIR | "
		"[--no-skip] --readonly [--snapshot] DIR | --list\n");
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *dir;

	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
			printf("%s\n", checks[i].name);
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "--no-skip") == 0) {
		no_skip = true;
		argv++;
		argc--;
	}
	if (argc == 4 && strcmp(argv[1], "--readonly") == 0 && strcmp(argv[2], "--snapshot") == 0) {
		snapshot_mode = true;
		mode = argv[1];
		dir = argv[3];
	} else if (argc == 3 && argv[1][0] == '-' && argv[1][1] == '-') {
		mode = argv[1];
		dir = argv[2];
	} else if (argc == 2 && argv[1][0] != '-') {
		dir = argv[1];
	} else {
		usage(stderr);
		return 2;
	}
	if (geteuid() != 0)
		die("must run as root (the checks switch to other users)");
	if (chdir(dir) < 0)
		die("cannot enter '%s': %s", dir, strerror(errno));
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (!mode) {
		run_table(checks, sizeof(checks) / sizeof(checks[0]), true);
	} else if (strcmp(mode, "--fixture") == 0) {
		const struct check fx = { "fixture", fixture, NULL, NULL };

		run_check(&fx, 0, false);
	} else if (strcmp(mode, "--readonly") == 0) {
		run_table(ro_checks, sizeof(ro_checks) / sizeof(ro_checks[0]), false);
	} else {
		usage(stderr);
		return 2;
	}
	/* leftovers of the EXDEV checks */
	unlink("/dev/shm/posixdiff.link");
	unlink("/dev/shm/posixdiff.rename");
	fflush(stdout);
	return 0;
}
