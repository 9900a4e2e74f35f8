/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsop: perform one filesystem operation from the command line and print its
 * outcome, so that shell tests can assert exact errno values.
 *
 *   fsop [-u UMASK] COMMAND ARGS...
 *
 * Output is one line: "OK" followed by the result (if any), or the name of the
 * errno the operation failed with ("ENOENT", "EEXIST", ...). The exit status
 * is 0 either way. A compound command (unlink_open, mmap_rw, direct, flock,
 * lockf) that detects wrong behaviour prints "FAIL: why" and exits 1; bad
 * usage exits 2. Run without arguments for the list of commands.
 *
 * Data written by "pwrite PATH OFF LEN" follows a pattern that depends on the
 * file offset only (pattern_byte()), so "verify PATH OFF LEN" can check that
 * every byte landed where it was written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_FAIL 1
/* Returned by a handler that already printed "FAIL: ..." */
#define R_FAIL INT_MIN

static const char *progname = "fsop";

/* ---- small helpers --------------------------------------------------------- */

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_USAGE);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("FAIL: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	return R_FAIL;
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

/* Decimal (or 0x hex) size with an optional K/M/G binary suffix. */
static long long parse_size(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || v < 0)
		usage_error("bad number '%s'", s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		usage_error("bad number '%s'", s);
	return v;
}

/* Like parse_size() but "-1" is allowed (for chown). */
static long long parse_id(const char *s)
{
	if (strcmp(s, "-1") == 0)
		return -1;
	return parse_size(s);
}

static mode_t parse_mode(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || end == s || *end || v > 07777)
		usage_error("bad mode '%s' (octal)", s);
	return (mode_t)v;
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* The byte that "pwrite PATH OFF LEN" stores at file offset `off`. */
static unsigned char pattern_byte(uint64_t off)
{
	uint64_t x = off / 251 * 0x9E3779B97F4A7C15ULL + off % 251;

	return (unsigned char)(x ^ (x >> 29) ^ (off >> 8));
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(off + i);
}

/* Print `len` bytes, printable ASCII as is, everything else as \xNN. */
static void print_escaped(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = buf[i];

		if (c >= 0x21 && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * A value argument: "hex:0a0b..." is decoded, anything else is taken as is.
 * Returns a malloc'd buffer and its length.
 */
static unsigned char *parse_value(const char *s, size_t *ret_len)
{
	unsigned char *buf;
	size_t n;

	if (strncmp(s, "hex:", 4) == 0) {
		s += 4;
		n = strlen(s);
		if (n % 2)
			usage_error("odd number of hex digits");
		buf = malloc(n / 2 + 1);
		if (!buf)
			abort();
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

			if (hi < 0 || lo < 0)
				usage_error("bad hex digit in '%s'", s);
			buf[i] = (unsigned char)(hi << 4 | lo);
		}
		*ret_len = n / 2;
		return buf;
	}
	n = strlen(s);
	buf = malloc(n + 1);
	if (!buf)
		abort();
	memcpy(buf, s, n + 1);
	*ret_len = n;
	return buf;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

static int write_full(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Returns bytes read (short only at EOF) or -errno. */
static ssize_t read_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* close() whose error counts (FUSE reports flush errors here). */
static int close_checked(int fd)
{
	if (close(fd) < 0)
		return -errno;
	return 0;
}

/* ---- open flags ------------------------------------------------------------- */

static const struct {
	const char *name;
	int flag;
} open_flags[] = {
	{ "rdonly", O_RDONLY }, { "wronly", O_WRONLY }, { "rdwr", O_RDWR },
	{ "creat", O_CREAT }, { "excl", O_EXCL }, { "trunc", O_TRUNC },
	{ "append", O_APPEND }, { "direct", O_DIRECT }, { "directory", O_DIRECTORY },
	{ "nofollow", O_NOFOLLOW }, { "path", O_PATH }, { "sync", O_SYNC },
	{ "dsync", O_DSYNC }, { "noatime", O_NOATIME }, { "nonblock", O_NONBLOCK },
	{ "tmpfile", O_TMPFILE }, { "cloexec", O_CLOEXEC }, { "noctty", O_NOCTTY },
};

static int parse_open_flags(const char *s)
{
	char *copy = strdup(s), *save = NULL;
	int flags = 0;

	if (!copy)
		abort();
	for (char *tok = strtok_r(copy, ",|", &save); tok; tok = strtok_r(NULL, ",|", &save)) {
		size_t i;

		for (i = 0; i < sizeof(open_flags) / sizeof(open_flags[0]); i++)
			if (strcmp(tok, open_flags[i].name) == 0)
				break;
		if (i == sizeof(open_flags) / sizeof(open_flags[0]))
			usage_error("unknown open flag '%s'", tok);
		flags |= open_flags[i].flag;
	}
	free(copy);
	return flags;
}

/* ---- time ------------------------------------------------------------------- */

/* "now", "omit" or "SEC[.FRACTION]" (fraction: up to 9 digits). */
static struct timespec parse_time(const char *s)
{
	struct timespec ts = { 0, 0 };
	const char *dot;
	char *end;

	if (strcmp(s, "now") == 0) {
		ts.tv_nsec = UTIME_NOW;
		return ts;
	}
	if (strcmp(s, "omit") == 0) {
		ts.tv_nsec = UTIME_OMIT;
		return ts;
	}
	errno = 0;
	ts.tv_sec = (time_t)strtoll(s, &end, 10);
	if (errno || end == s || (*end && *end != '.'))
		usage_error("bad time '%s' (now, omit or SEC.NSEC)", s);
	dot = end;
	if (*dot == '.') {
		long mult = 100000000;
		const char *p;

		for (p = dot + 1; *p && mult; p++, mult /= 10) {
			if (!isdigit((unsigned char)*p))
				usage_error("bad time '%s'", s);
			ts.tv_nsec += (*p - '0') * mult;
		}
		if (*p)
			usage_error("bad time '%s' (more than 9 fraction digits)", s);
	}
	return ts;
}

/* ---- commands --------------------------------------------------------------- */

/* fsop open PATH FLAGS [MODE] -> OK size=N (size after open) */
static int cmd_open(int argc, char **argv)
{
	int flags = parse_open_flags(argv[1]);
	mode_t mode = argc > 2 ? parse_mode(argv[2]) : 0644;
	struct stat st;
	int fd, r;

	fd = open(argv[0], flags, mode);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = close_checked(fd);
	if (r < 0)
		return r;
	printf("OK size=%lld\n", (long long)st.st_size);
	return 0;
}

/* fsop write PATH FLAGS DATA [MODE] -> OK BYTES size=N (write(2) at the fd's offset) */
static int cmd_write(int argc, char **argv)
{
	int flags = parse_open_flags(argv[1]);
	mode_t mode = argc > 3 ? parse_mode(argv[3]) : 0644;
	size_t len;
	unsigned char *data = parse_value(argv[2], &len);
	struct stat st;
	ssize_t n;
	int fd, r = 0;

	fd = open(argv[0], flags, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	n = write(fd, data, len);
	if (n < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		goto out;
	}
	r = close_checked(fd);
	if (r < 0)
		goto out;
	printf("OK %zd size=%lld\n", n, (long long)st.st_size);
out:
	free(data);
	return r;
}

/*
 * fsop pwrite PATH OFF LEN|DATA -> OK BYTES size=N
 * All digits: LEN bytes of the offset pattern; "str:..." or anything else:
 * that string; "hex:..." decoded bytes. Opens O_WRONLY|O_CREAT, mode 0644.
 */
static int cmd_pwrite(int argc, char **argv)
{
	off_t off = (off_t)parse_size(argv[1]);
	unsigned char *data;
	size_t len;
	struct stat st;
	int fd, r;

	if (is_number(argv[2])) {
		len = (size_t)parse_size(argv[2]);
		data = xmalloc(len);
		fill_pattern(data, len, (uint64_t)off);
	} else {
		data = parse_value(strncmp(argv[2], "str:", 4) == 0 ? argv[2] + 4 : argv[2], &len);
	}
	fd = open(argv[0], O_WRONLY | O_CREAT, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_full(fd, data, len, off);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		goto out;
	}
	r = close_checked(fd);
	if (r == 0)
		printf("OK %zu size=%lld\n", len, (long long)st.st_size);
out:
	free(data);
	(void)argc;
	return r;
}

/* fsop pread PATH OFF LEN -> OK BYTES <data, non-printables as \xNN> */
static int cmd_pread(int argc, char **argv)
{
	off_t off = (off_t)parse_size(argv[1]);
	size_t len = (size_t)parse_size(argv[2]);
	unsigned char *buf = xmalloc(len);
	ssize_t n;
	int fd, r = 0;

	fd = open(argv[0], O_RDONLY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	n = read_full(fd, buf, len, off);
	if (n < 0) {
		r = (int)n;
		close(fd);
		goto out;
	}
	r = close_checked(fd);
	if (r < 0)
		goto out;
	printf("OK %zd ", n);
	print_escaped(buf, (size_t)n);
	putchar('\n');
out:
	free(buf);
	(void)argc;
	return r;
}

/* fsop verify PATH OFF LEN -> OK if [OFF, OFF+LEN) holds the pwrite pattern */
static int cmd_verify(int argc, char **argv)
{
	off_t off = (off_t)parse_size(argv[1]);
	size_t len = (size_t)parse_size(argv[2]);
	unsigned char *buf = xmalloc(len);
	ssize_t n;
	int fd, r = 0;

	fd = open(argv[0], O_RDONLY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	n = read_full(fd, buf, len, off);
	close(fd);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if ((size_t)n < len) {
		r = fail("short read: %zd of %zu bytes at %lld", n, len, (long long)off);
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != pattern_byte((uint64_t)off + i)) {
			r = fail("byte at offset %lld is 0x%02x, expected 0x%02x",
				 (long long)off + (long long)i, buf[i],
				 pattern_byte((uint64_t)off + i));
			goto out;
		}
	}
	printf("OK\n");
out:
	free(buf);
	(void)argc;
	return r;
}

/* fsop truncate PATH LEN */
static int cmd_truncate(int argc, char **argv)
{
	if (truncate(argv[0], (off_t)parse_size(argv[1])) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/* fsop ftruncate PATH LEN (open O_WRONLY, ftruncate) */
static int cmd_ftruncate(int argc, char **argv)
{
	off_t len = (off_t)parse_size(argv[1]);
	int fd = open(argv[0], O_WRONLY);
	int r;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, len) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = close_checked(fd);
	if (r == 0)
		printf("OK\n");
	(void)argc;
	return r;
}

static int parse_falloc_mode(const char *s)
{
	char *copy = strdup(s), *save = NULL;
	int mode = 0;

	if (!copy)
		abort();
	for (char *tok = strtok_r(copy, ",|", &save); tok; tok = strtok_r(NULL, ",|", &save)) {
		if (strcmp(tok, "0") == 0 || strcmp(tok, "none") == 0 || strcmp(tok, "default") == 0)
			;
		else if (strcmp(tok, "keep") == 0)
			mode |= FALLOC_FL_KEEP_SIZE;
		else if (strcmp(tok, "punch") == 0)
			mode |= FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		else if (strcmp(tok, "zero") == 0)
			mode |= FALLOC_FL_ZERO_RANGE;
		else if (strcmp(tok, "collapse") == 0)
			mode |= FALLOC_FL_COLLAPSE_RANGE;
		else if (strcmp(tok, "insert") == 0)
			mode |= FALLOC_FL_INSERT_RANGE;
		else if (strcmp(tok, "unshare") == 0)
			mode |= FALLOC_FL_UNSHARE_RANGE;
		else
			usage_error("unknown fallocate mode '%s'", tok);
	}
	free(copy);
	return mode;
}

/* fsop fallocate PATH MODE OFF LEN -> OK size=N; MODE: 0,keep,punch,zero,collapse,insert (comma list) */
static int cmd_fallocate(int argc, char **argv)
{
	int mode = parse_falloc_mode(argv[1]);
	off_t off = (off_t)parse_size(argv[2]), len = (off_t)parse_size(argv[3]);
	struct stat st;
	int fd, r;

	fd = open(argv[0], O_RDWR);
	if (fd < 0)
		return -errno;
	if (fallocate(fd, mode, off, len) < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = close_checked(fd);
	if (r == 0)
		printf("OK size=%lld\n", (long long)st.st_size);
	(void)argc;
	return r;
}

/* fsop seek PATH data|hole OFF -> OK RESULT_OFFSET */
static int cmd_seek(int argc, char **argv)
{
	int whence;
	off_t off = (off_t)parse_size(argv[2]), res;
	int fd, r;

	if (strcmp(argv[1], "data") == 0)
		whence = SEEK_DATA;
	else if (strcmp(argv[1], "hole") == 0)
		whence = SEEK_HOLE;
	else if (strcmp(argv[1], "set") == 0)
		whence = SEEK_SET;
	else if (strcmp(argv[1], "end") == 0)
		whence = SEEK_END;
	else
		usage_error("seek: whence must be data, hole, set or end");
	fd = open(argv[0], O_RDONLY);
	if (fd < 0)
		return -errno;
	res = lseek(fd, off, whence);
	if (res < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	close(fd);
	printf("OK %lld\n", (long long)res);
	(void)argc;
	return 0;
}

/* fsop copy_range SRC DST OFFIN OFFOUT LEN -> OK COPIED (DST opened O_WRONLY|O_CREAT) */
static int cmd_copy_range(int argc, char **argv)
{
	loff_t off_in = parse_size(argv[2]), off_out = parse_size(argv[3]);
	size_t len = (size_t)parse_size(argv[4]), done = 0;
	int in, out, r = 0;

	in = open(argv[0], O_RDONLY);
	if (in < 0)
		return -errno;
	out = open(argv[1], O_WRONLY | O_CREAT, 0644);
	if (out < 0) {
		r = -errno;
		close(in);
		return r;
	}
	while (done < len) {
		ssize_t n = copy_file_range(in, &off_in, out, &off_out, len - done, 0);

		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(in);
	if (r < 0) {
		close(out);
		return r;
	}
	r = close_checked(out);
	if (r == 0)
		printf("OK %zu\n", done);
	(void)argc;
	return r;
}

/* fsop mkdir PATH [MODE] */
static int cmd_mkdir(int argc, char **argv)
{
	if (mkdir(argv[0], argc > 1 ? parse_mode(argv[1]) : 0755) < 0)
		return -errno;
	printf("OK\n");
	return 0;
}

static int cmd_rmdir(int argc, char **argv)
{
	if (rmdir(argv[0]) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

static int cmd_unlink(int argc, char **argv)
{
	if (unlink(argv[0]) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/* fsop link OLD NEW */
static int cmd_link(int argc, char **argv)
{
	if (link(argv[0], argv[1]) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/* fsop symlink TARGET LINKPATH */
static int cmd_symlink(int argc, char **argv)
{
	if (symlink(argv[0], argv[1]) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/* fsop readlink PATH -> OK TARGET */
static int cmd_readlink(int argc, char **argv)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlink(argv[0], buf, sizeof(buf) - 1);

	if (n < 0)
		return -errno;
	printf("OK ");
	print_escaped((unsigned char *)buf, (size_t)n);
	putchar('\n');
	(void)argc;
	return 0;
}

/* fsop rename OLD NEW [noreplace|exchange|whiteout] (renameat2 via syscall) */
static int cmd_rename(int argc, char **argv)
{
	unsigned flags = 0;

	if (argc > 2) {
		if (strcmp(argv[2], "noreplace") == 0)
			flags = RENAME_NOREPLACE;
		else if (strcmp(argv[2], "exchange") == 0)
			flags = RENAME_EXCHANGE;
		else if (strcmp(argv[2], "whiteout") == 0)
			flags = RENAME_WHITEOUT;
		else if (strcmp(argv[2], "0") != 0 && strcmp(argv[2], "none") != 0)
			usage_error("rename: flag must be noreplace, exchange or whiteout");
	}
	if (syscall(SYS_renameat2, AT_FDCWD, argv[0], AT_FDCWD, argv[1], flags) < 0)
		return -errno;
	printf("OK\n");
	return 0;
}

/* fsop mknod PATH fifo|sock|chr|blk|reg [MAJ MIN] [MODE] */
static int cmd_mknod(int argc, char **argv)
{
	mode_t type, perm = 0644;
	dev_t dev = 0;
	int i = 2;

	if (strcmp(argv[1], "fifo") == 0)
		type = S_IFIFO;
	else if (strcmp(argv[1], "sock") == 0)
		type = S_IFSOCK;
	else if (strcmp(argv[1], "chr") == 0)
		type = S_IFCHR;
	else if (strcmp(argv[1], "blk") == 0)
		type = S_IFBLK;
	else if (strcmp(argv[1], "reg") == 0)
		type = S_IFREG;
	else
		usage_error("mknod: type must be fifo, sock, chr, blk or reg");
	if (type == S_IFCHR || type == S_IFBLK) {
		if (argc < 4)
			usage_error("mknod: chr/blk need MAJ MIN");
		dev = makedev((unsigned)parse_size(argv[2]), (unsigned)parse_size(argv[3]));
		i = 4;
	}
	if (argc > i)
		perm = parse_mode(argv[i]);
	if (mknod(argv[0], type | perm, dev) < 0)
		return -errno;
	printf("OK\n");
	return 0;
}

/* fsop chmod PATH MODE */
static int cmd_chmod(int argc, char **argv)
{
	if (chmod(argv[0], parse_mode(argv[1])) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/* fsop chown|lchown PATH UID GID (-1 = unchanged) */
static int cmd_chown(int argc, char **argv)
{
	if (chown(argv[0], (uid_t)parse_id(argv[1]), (gid_t)parse_id(argv[2])) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

static int cmd_lchown(int argc, char **argv)
{
	if (lchown(argv[0], (uid_t)parse_id(argv[1]), (gid_t)parse_id(argv[2])) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/* fsop utimens PATH ATIME MTIME [nofollow]; times: now, omit or SEC.NSEC */
static int cmd_utimens(int argc, char **argv)
{
	struct timespec ts[2] = { parse_time(argv[1]), parse_time(argv[2]) };
	int flags = 0;

	if (argc > 3) {
		if (strcmp(argv[3], "nofollow") != 0)
			usage_error("utimens: 4th argument must be nofollow");
		flags = AT_SYMLINK_NOFOLLOW;
	}
	if (utimensat(AT_FDCWD, argv[0], ts, flags) < 0)
		return -errno;
	printf("OK\n");
	return 0;
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
	default: return "unknown";
	}
}

/*
 * fsop statx PATH [nofollow] (also: stat PATH, lstat PATH) ->
 * OK ino= type= mode= uid= gid= size= blocks= nlink= rdev=MAJ:MIN
 *    atime=S.N mtime=S.N ctime=S.N dev=MAJ:MIN
 */
static int do_statx(const char *path, int flags)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, flags, STATX_BASIC_STATS, &stx) < 0)
		return -errno;
	printf("OK ino=%" PRIu64 " type=%s mode=%04o uid=%u gid=%u size=%" PRIu64
	       " blocks=%" PRIu64 " nlink=%u rdev=%u:%u"
	       " atime=%lld.%09u mtime=%lld.%09u ctime=%lld.%09u dev=%u:%u\n",
	       (uint64_t)stx.stx_ino, type_name(stx.stx_mode), stx.stx_mode & 07777u,
	       stx.stx_uid, stx.stx_gid, (uint64_t)stx.stx_size, (uint64_t)stx.stx_blocks,
	       stx.stx_nlink, stx.stx_rdev_major, stx.stx_rdev_minor,
	       (long long)stx.stx_atime.tv_sec, stx.stx_atime.tv_nsec,
	       (long long)stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec,
	       (long long)stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec,
	       stx.stx_dev_major, stx.stx_dev_minor);
	return 0;
}

static int cmd_statx(int argc, char **argv)
{
	int flags = 0;

	if (argc > 1) {
		if (strcmp(argv[1], "nofollow") != 0)
			usage_error("statx: 2nd argument must be nofollow");
		flags = AT_SYMLINK_NOFOLLOW;
	}
	return do_statx(argv[0], flags);
}

static int cmd_lstat(int argc, char **argv)
{
	(void)argc;
	return do_statx(argv[0], AT_SYMLINK_NOFOLLOW);
}

/* fsop setxattr PATH NAME VALUE [create|replace] [nofollow]; VALUE may be hex:.. */
static int cmd_setxattr(int argc, char **argv)
{
	int flags = 0, r = 0;
	bool nofollow = false;
	size_t len;
	unsigned char *value;

	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "create") == 0)
			flags = XATTR_CREATE;
		else if (strcmp(argv[i], "replace") == 0)
			flags = XATTR_REPLACE;
		else if (strcmp(argv[i], "nofollow") == 0)
			nofollow = true;
		else
			usage_error("setxattr: unknown option '%s'", argv[i]);
	}
	value = parse_value(argv[2], &len);
	if ((nofollow ? lsetxattr : setxattr)(argv[0], argv[1], value, len, flags) < 0)
		r = -errno;
	else
		printf("OK\n");
	free(value);
	return r;
}

/* fsop getxattr PATH NAME [nofollow] -> OK VALUE (escaped) */
static int cmd_getxattr(int argc, char **argv)
{
	bool nofollow = argc > 2 && strcmp(argv[2], "nofollow") == 0;
	unsigned char buf[65536];
	ssize_t n;

	n = (nofollow ? lgetxattr : getxattr)(argv[0], argv[1], buf, sizeof(buf));
	if (n < 0)
		return -errno;
	printf("OK ");
	print_escaped(buf, (size_t)n);
	putchar('\n');
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* fsop listxattr PATH [nofollow] -> OK NAME... (sorted) */
static int cmd_listxattr(int argc, char **argv)
{
	bool nofollow = argc > 1 && strcmp(argv[1], "nofollow") == 0;
	char buf[65536];
	char *names[4096];
	size_t count = 0;
	ssize_t n;

	n = (nofollow ? llistxattr : listxattr)(argv[0], buf, sizeof(buf));
	if (n < 0)
		return -errno;
	for (char *p = buf; p < buf + n && count < 4096; p += strlen(p) + 1)
		names[count++] = p;
	if (count)
		qsort(names, count, sizeof(names[0]), cmp_str);
	printf("OK");
	for (size_t i = 0; i < count; i++)
		printf(" %s", names[i]);
	putchar('\n');
	return 0;
}

/* fsop removexattr PATH NAME [nofollow] */
static int cmd_removexattr(int argc, char **argv)
{
	bool nofollow = argc > 2 && strcmp(argv[2], "nofollow") == 0;

	if ((nofollow ? lremovexattr : removexattr)(argv[0], argv[1]) < 0)
		return -errno;
	printf("OK\n");
	return 0;
}

/* fsop statfs PATH -> OK type=0x.. bsize= frsize= blocks= bfree= bavail= files= ffree= namemax= flags=0x.. */
static int cmd_statfs(int argc, char **argv)
{
	struct statfs s;

	if (statfs(argv[0], &s) < 0)
		return -errno;
	printf("OK type=0x%lx bsize=%ld frsize=%ld blocks=%llu bfree=%llu bavail=%llu"
	       " files=%llu ffree=%llu namemax=%ld flags=0x%lx\n",
	       (unsigned long)s.f_type, (long)s.f_bsize, (long)s.f_frsize,
	       (unsigned long long)s.f_blocks, (unsigned long long)s.f_bfree,
	       (unsigned long long)s.f_bavail, (unsigned long long)s.f_files,
	       (unsigned long long)s.f_ffree, (long)s.f_namelen, (unsigned long)s.f_flags);
	(void)argc;
	return 0;
}

/* fsop fsync|fdatasync PATH (opened O_RDONLY, works for directories too) */
static int do_sync(const char *path, bool datasync)
{
	int fd = open(path, O_RDONLY), r;

	if (fd < 0)
		return -errno;
	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = close_checked(fd);
	if (r == 0)
		printf("OK\n");
	return r;
}

static int cmd_fsync(int argc, char **argv)
{
	(void)argc;
	return do_sync(argv[0], false);
}

static int cmd_fdatasync(int argc, char **argv)
{
	(void)argc;
	return do_sync(argv[0], true);
}

/* fsop access PATH r|w|x|f (any combination of rwx, or f) */
static int cmd_access(int argc, char **argv)
{
	int mode = 0;

	for (const char *p = argv[1]; *p; p++) {
		switch (*p) {
		case 'r': mode |= R_OK; break;
		case 'w': mode |= W_OK; break;
		case 'x': mode |= X_OK; break;
		case 'f': mode |= F_OK; break;
		default: usage_error("access: mode is a combination of r, w, x or f");
		}
	}
	if (access(argv[0], mode) < 0)
		return -errno;
	printf("OK\n");
	(void)argc;
	return 0;
}

/*
 * fsop readdir PATH [ino] -> OK NAME... (sorted, including . and ..; bytes
 * outside 0x21..0x7e and backslash as \xNN); with "ino": NAME=D_INO (the
 * inode number readdir returns)
 */
static int cmd_readdir(int argc, char **argv)
{
	bool with_ino = argc > 1 && strcmp(argv[1], "ino") == 0;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t count = 0, cap = 0;
	int r = 0;

	if (argc > 1 && !with_ino)
		usage_error("readdir: 2nd argument must be ino");
	d = opendir(argv[0]);
	if (!d)
		return -errno;
	errno = 0;
	while ((de = readdir(d))) {
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		if (with_ino) {
			if (asprintf(&names[count], "%s=%ju", de->d_name, (uintmax_t)de->d_ino) < 0)
				abort();
			count++;
		} else {
			names[count] = strdup(de->d_name);
			if (!names[count++])
				abort();
		}
	}
	if (errno)
		r = -errno;
	closedir(d);
	if (r == 0) {
		if (count)
			qsort(names, count, sizeof(*names), cmp_str);
		printf("OK");
		for (size_t i = 0; i < count; i++) {
			putchar(' ');
			print_escaped((unsigned char *)names[i], strlen(names[i]));
		}
		putchar('\n');
	}
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return r;
}

/*
 * fsop unlink_open PATH: create/open PATH read-write, unlink it, then write and
 * read through the fd (also past the old end), ftruncate and fsync it.
 */
static int cmd_unlink_open(int argc, char **argv)
{
	static const char msg[] = "still here after unlink";
	char buf[sizeof(msg)];
	struct stat st;
	int fd, r;

	fd = open(argv[0], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	if (unlink(argv[0]) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (access(argv[0], F_OK) == 0 || errno != ENOENT) {
		r = fail("'%s' still visible after unlink", argv[0]);
		goto out;
	}
	if ((r = write_full(fd, msg, sizeof(msg), 0)) < 0 ||
	    (r = write_full(fd, msg, sizeof(msg), 1 << 20)) < 0)
		goto out;
	for (off_t off = 0; off <= 1 << 20; off += 1 << 20) {
		ssize_t n = read_full(fd, buf, sizeof(buf), off);

		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if (n != (ssize_t)sizeof(buf) || memcmp(buf, msg, sizeof(buf)) != 0) {
			r = fail("read back at %lld through the unlinked fd differs", (long long)off);
			goto out;
		}
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_nlink != 0 || st.st_size != (1 << 20) + (off_t)sizeof(msg)) {
		r = fail("fstat of unlinked file: nlink=%ju size=%lld",
			 (uintmax_t)st.st_nlink, (long long)st.st_size);
		goto out;
	}
	if (ftruncate(fd, 10) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	r = close_checked(fd);
	fd = -1;
	if (r == 0)
		printf("OK\n");
out:
	if (fd >= 0)
		close(fd);
	(void)argc;
	return r;
}

/*
 * fsop mmap_rw PATH [LEN]: map LEN bytes (default 3 pages + 100) of PATH
 * shared (extending the file with ftruncate if it is shorter), check the map
 * reads what read(2) reads, write a pattern through the map, msync, munmap,
 * close, and check that read(2) on a new fd returns the pattern.
 */
static int cmd_mmap_rw(int argc, char **argv)
{
	size_t len = argc > 1 ? (size_t)parse_size(argv[1]) : 3 * 4096 + 100;
	unsigned char *map = MAP_FAILED, *buf = xmalloc(len);
	struct stat st;
	ssize_t n;
	int fd, r = 0;

	fd = open(argv[0], O_RDWR);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size < (off_t)len && ftruncate(fd, (off_t)len) < 0) {
		r = -errno;
		goto out;
	}
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	n = read_full(fd, buf, len, 0);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if ((size_t)n != len || memcmp(buf, map, len) != 0) {
		r = fail("mapped content differs from read(2) before writing");
		goto out;
	}
	for (size_t i = 0; i < len; i++)
		map[i] = (unsigned char)(pattern_byte(i) ^ 0xa5);
	if (msync(map, len, MS_SYNC) < 0) {
		r = -errno;
		goto out;
	}
	munmap(map, len);
	map = MAP_FAILED;
	r = close_checked(fd);
	fd = -1;
	if (r < 0)
		goto out;
	fd = open(argv[0], O_RDONLY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	n = read_full(fd, buf, len, 0);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		if ((size_t)n <= i || buf[i] != (unsigned char)(pattern_byte(i) ^ 0xa5)) {
			r = fail("byte %zu written through the map reads back wrong", i);
			goto out;
		}
	}
	printf("OK\n");
out:
	if (map != MAP_FAILED)
		munmap(map, len);
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/*
 * fsop direct PATH [LEN]: open O_RDWR|O_CREAT|O_DIRECT, write LEN (default
 * 8192, a multiple of 4096) aligned pattern bytes at 0, read them back through
 * the same fd, then again through a buffered fd.
 */
static int cmd_direct(int argc, char **argv)
{
	size_t len = argc > 1 ? (size_t)parse_size(argv[1]) : 8192;
	unsigned char *wbuf = NULL, *rbuf = NULL;
	ssize_t n;
	int fd = -1, r = 0;

	if (len == 0 || len % 4096)
		usage_error("direct: LEN must be a positive multiple of 4096");
	if (posix_memalign((void **)&wbuf, 4096, len) || posix_memalign((void **)&rbuf, 4096, len))
		abort();
	fill_pattern(wbuf, len, 0);
	fd = open(argv[0], O_RDWR | O_CREAT | O_DIRECT, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_full(fd, wbuf, len, 0);
	if (r < 0)
		goto out;
	n = read_full(fd, rbuf, len, 0);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if ((size_t)n != len || memcmp(wbuf, rbuf, len) != 0) {
		r = fail("O_DIRECT read back differs (%zd bytes)", n);
		goto out;
	}
	r = close_checked(fd);
	fd = -1;
	if (r < 0)
		goto out;
	fd = open(argv[0], O_RDONLY);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	memset(rbuf, 0, len);
	n = read_full(fd, rbuf, len, 0);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if ((size_t)n != len || memcmp(wbuf, rbuf, len) != 0) {
		r = fail("buffered read after O_DIRECT write differs");
		goto out;
	}
	printf("OK\n");
out:
	if (fd >= 0)
		close(fd);
	free(wbuf);
	free(rbuf);
	return r;
}

/*
 * Run `fn(path, arg)` in a child process; returns its exit status (0..255) or
 * -errno if the child could not be run.
 */
static int in_child(int (*fn)(const char *path, int arg), const char *path, int arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(fn(path, arg));
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Child exit codes of the lock probes. */
enum { PROBE_GOT = 0, PROBE_BLOCKED = 1, PROBE_ERROR = 2, PROBE_WRONG_OWNER = 3 };

static int probe_flock(const char *path, int op)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return PROBE_ERROR;
	if (flock(fd, op | LOCK_NB) == 0)
		return PROBE_GOT;
	return errno == EWOULDBLOCK ? PROBE_BLOCKED : PROBE_ERROR;
}

/*
 * fsop flock PATH: this process holds LOCK_EX; another process's LOCK_EX and
 * LOCK_SH must fail with EWOULDBLOCK. Then this process holds LOCK_SH; another
 * LOCK_SH must succeed and LOCK_EX fail. After LOCK_UN another LOCK_EX succeeds.
 */
static int cmd_flock(int argc, char **argv)
{
	const char *path = argv[0];
	int fd, c, r = 0;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		goto out;
	}
	if ((c = in_child(probe_flock, path, LOCK_EX)) != PROBE_BLOCKED) {
		r = fail("another process's LOCK_EX while LOCK_EX held: probe result %d", c);
		goto out;
	}
	if ((c = in_child(probe_flock, path, LOCK_SH)) != PROBE_BLOCKED) {
		r = fail("another process's LOCK_SH while LOCK_EX held: probe result %d", c);
		goto out;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		r = -errno;
		goto out;
	}
	if ((c = in_child(probe_flock, path, LOCK_SH)) != PROBE_GOT) {
		r = fail("another process's LOCK_SH while LOCK_SH held: probe result %d", c);
		goto out;
	}
	if ((c = in_child(probe_flock, path, LOCK_EX)) != PROBE_BLOCKED) {
		r = fail("another process's LOCK_EX while LOCK_SH held: probe result %d", c);
		goto out;
	}
	if (flock(fd, LOCK_UN) < 0) {
		r = -errno;
		goto out;
	}
	if ((c = in_child(probe_flock, path, LOCK_EX)) != PROBE_GOT) {
		r = fail("another process's LOCK_EX after LOCK_UN: probe result %d", c);
		goto out;
	}
	printf("OK\n");
out:
	close(fd);
	(void)argc;
	return r;
}

/* POSIX lock probe: try a write lock on [start, start+10); arg = start. */
static int probe_posix(const char *path, int start)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 10 };
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return PROBE_ERROR;
	if (fcntl(fd, F_SETLK, &fl) == 0)
		return PROBE_GOT;
	if (errno != EAGAIN && errno != EACCES)
		return PROBE_ERROR;
	/* F_GETLK must name the holder: our parent. */
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 10 };
	if (fcntl(fd, F_GETLK, &fl) < 0)
		return PROBE_ERROR;
	if (fl.l_type != F_WRLCK || fl.l_pid != getppid())
		return PROBE_WRONG_OWNER;
	return PROBE_BLOCKED;
}

/* OFD lock probe from a second open file description in this process. */
static int probe_ofd(const char *path, int start)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 10 };
	int fd = open(path, O_RDWR), r;

	if (fd < 0)
		return PROBE_ERROR;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		r = PROBE_GOT;
	else
		r = errno == EAGAIN ? PROBE_BLOCKED : PROBE_ERROR;
	close(fd);
	return r;
}

/*
 * fsop lockf PATH: this process write-locks [0, 100) with F_SETLK; another
 * process must get EAGAIN/EACCES on [50, 60) and F_GETLK must report this
 * process as the holder, while [200, 210) is free; after unlocking [50, 60)
 * can be taken. Then OFD locks: two open file descriptions of one process
 * conflict.
 */
static int cmd_lockf(int argc, char **argv)
{
	const char *path = argv[0];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	int fd, c, r = 0;

	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		r = -errno;
		goto out;
	}
	if ((c = in_child(probe_posix, path, 50)) != PROBE_BLOCKED) {
		r = fail("another process's write lock on a locked range: probe result %d", c);
		goto out;
	}
	if ((c = in_child(probe_posix, path, 200)) != PROBE_GOT) {
		r = fail("another process's write lock on a free range: probe result %d", c);
		goto out;
	}
	fl.l_type = F_UNLCK;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		r = -errno;
		goto out;
	}
	if ((c = in_child(probe_posix, path, 50)) != PROBE_GOT) {
		r = fail("another process's write lock after unlock: probe result %d", c);
		goto out;
	}
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		r = -errno;
		goto out;
	}
	if ((c = probe_ofd(path, 50)) != PROBE_BLOCKED) {
		r = fail("second open file description's OFD lock on a locked range: probe result %d", c);
		goto out;
	}
	printf("OK\n");
out:
	close(fd);
	(void)argc;
	return r;
}

/* ---- dispatch ---------------------------------------------------------------- */

struct command {
	const char *name;
	int min_args, max_args;
	int (*fn)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "open", 2, 3, cmd_open, "PATH FLAGS [MODE]        FLAGS: rdonly,wronly,rdwr,creat,excl,trunc,append,direct,..." },
	{ "write", 3, 4, cmd_write, "PATH FLAGS DATA [MODE]   open with FLAGS, write(2) DATA" },
	{ "pwrite", 3, 3, cmd_pwrite, "PATH OFF LEN|DATA        LEN: pattern bytes; str:DATA, hex:DATA" },
	{ "pread", 3, 3, cmd_pread, "PATH OFF LEN" },
	{ "verify", 3, 3, cmd_verify, "PATH OFF LEN             check the pwrite pattern" },
	{ "truncate", 2, 2, cmd_truncate, "PATH LEN" },
	{ "ftruncate", 2, 2, cmd_ftruncate, "PATH LEN" },
	{ "fallocate", 4, 4, cmd_fallocate, "PATH MODE OFF LEN        MODE: 0,keep,punch,zero,collapse,insert" },
	{ "seek", 3, 3, cmd_seek, "PATH data|hole OFF" },
	{ "copy_range", 5, 5, cmd_copy_range, "SRC DST OFFIN OFFOUT LEN" },
	{ "mkdir", 1, 2, cmd_mkdir, "PATH [MODE]" },
	{ "rmdir", 1, 1, cmd_rmdir, "PATH" },
	{ "unlink", 1, 1, cmd_unlink, "PATH" },
	{ "link", 2, 2, cmd_link, "OLD NEW" },
	{ "symlink", 2, 2, cmd_symlink, "TARGET LINKPATH" },
	{ "readlink", 1, 1, cmd_readlink, "PATH" },
	{ "rename", 2, 3, cmd_rename, "OLD NEW [noreplace|exchange|whiteout]" },
	{ "mknod", 2, 5, cmd_mknod, "PATH fifo|sock|chr|blk|reg [MAJ MIN] [MODE]" },
	{ "chmod", 2, 2, cmd_chmod, "PATH MODE" },
	{ "chown", 3, 3, cmd_chown, "PATH UID GID" },
	{ "lchown", 3, 3, cmd_lchown, "PATH UID GID" },
	{ "utimens", 3, 4, cmd_utimens, "PATH ATIME MTIME [nofollow]   now|omit|SEC.NSEC" },
	{ "statx", 1, 2, cmd_statx, "PATH [nofollow]" },
	{ "stat", 1, 1, cmd_statx, "PATH" },
	{ "lstat", 1, 1, cmd_lstat, "PATH" },
	{ "setxattr", 3, 5, cmd_setxattr, "PATH NAME VALUE [create|replace] [nofollow]" },
	{ "getxattr", 2, 3, cmd_getxattr, "PATH NAME [nofollow]" },
	{ "listxattr", 1, 2, cmd_listxattr, "PATH [nofollow]" },
	{ "removexattr", 2, 3, cmd_removexattr, "PATH NAME [nofollow]" },
	{ "statfs", 1, 1, cmd_statfs, "PATH" },
	{ "fsync", 1, 1, cmd_fsync, "PATH" },
	{ "fdatasync", 1, 1, cmd_fdatasync, "PATH" },
	{ "access", 2, 2, cmd_access, "PATH r|w|x|f" },
	{ "readdir", 1, 2, cmd_readdir, "PATH [ino]" },
	{ "unlink_open", 1, 1, cmd_unlink_open, "PATH" },
	{ "mmap_rw", 1, 2, cmd_mmap_rw, "PATH [LEN]" },
	{ "direct", 1, 2, cmd_direct, "PATH [LEN]" },
	{ "flock", 1, 1, cmd_flock, "PATH" },
	{ "lockf", 1, 1, cmd_lockf, "PATH" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: %s [-u UMASK] COMMAND ARGS...\n"
		   "prints OK [result] or the errno name; exit 0 either way,\n"
		   "1 when a compound check fails (FAIL: ...), 2 on bad usage\n\n", progname);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].usage);
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	int i = 1, r;

	if (argc > 2 && strcmp(argv[1], "-u") == 0) {
		umask(parse_mode(argv[2]));
		i = 3;
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			cmd = &commands[k];
	if (!cmd)
		usage_error("unknown command '%s' (run without arguments for a list)", argv[i]);
	argc -= i + 1;
	argv += i + 1;
	if (argc < cmd->min_args || argc > cmd->max_args)
		usage_error("usage: %s %s %s", progname, cmd->name, cmd->usage);
	r = cmd->fn(argc, argv);
	if (r == R_FAIL)
		return EXIT_FAIL;
	if (r < 0)
		printf("%s\n", errno_name(-r));
	return 0;
}
