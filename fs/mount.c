/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The life of a mount: validate, open the journal (adopting the tree on
 * first use) BEFORE mounting so that every error is reported before
 * anything is mounted, mount, daemonize, start the journal writer (threads
 * do not survive fork), serve, unmount, close the journal.
 *
 * Mount options we always add:
 *  - fsname=BACKING,subtype=mirrorfs: /proc/mounts shows "BACKING MNT
 *    fuse.mirrorfs".
 *  - default_permissions: the daemon runs as root and does every syscall
 *    with its own credentials, so the kernel must check permissions (and,
 *    with FUSE_CAP_POSIX_ACL, ACLs) for the caller. This matters with
 *    allow_other, where other users reach the mount, and is right without
 *    it too.
 *  - ro with -o ro / --read-only; the handlers refuse mutations as well.
 *
 * A replica (a backing directory whose journal names the source that owns
 * it, journal_replica_owner()) refuses a read-write mount, and a read-only
 * mount of it runs in DR mode (dr.c): the journal is opened READONLY (no
 * lock, so the receiver can apply streams meanwhile, no writer, no
 * replicator hooks) and the root shows the newest snapshot. Whether it is
 * a replica is read with a READONLY open before anything is mounted; the
 * DR journal itself is opened after daemonizing, like the writer is
 * started then, because no sqlite connection may cross the fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_i.h"
#include "mirrorfs/fs.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_op_init,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.readlink = fs_op_readlink,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.symlink = fs_op_symlink,
	.link = fs_op_link,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.rename = fs_op_rename,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.fsyncdir = fs_op_fsyncdir,
	.statfs = fs_op_statfs,
	.create = fs_op_create,
	.open = fs_op_open,
	.read = fs_op_read,
	.write_buf = fs_op_write_buf,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.fallocate = fs_op_fallocate,
	.lseek = fs_op_lseek,
	.copy_file_range = fs_op_copy_file_range,
	.setxattr = fs_op_setxattr,
	.getxattr = fs_op_getxattr,
	.listxattr = fs_op_listxattr,
	.removexattr = fs_op_removexattr,
	/*
	 * No getlk/setlk/flock: the kernel then does POSIX and BSD locking
	 * locally, which is exact for a single-host passthrough.
	 */
};

void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	unsigned want_if_capable = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
		FUSE_CAP_SPLICE_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_DONT_MASK |
		FUSE_CAP_POSIX_ACL | FUSE_CAP_ASYNC_READ | FUSE_CAP_ASYNC_DIO;

	conn->want |= conn->capable & want_if_capable;
	/*
	 * Off: kernel-local locks (see fs_ops); the kernel, not us, clears
	 * suid/sgid on write/truncate/chown by sending a setattr (no
	 * HANDLE_KILLPRIV: only the kernel knows whether the caller has
	 * CAP_FSETID); no ATOMIC_O_TRUNC, under which the kernel would drop
	 * that setattr for open(O_TRUNC) and leave suid/sgid set; no
	 * writeback cache (shared writable mmap and O_APPEND stay exact).
	 */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS |
			FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_WRITEBACK_CACHE |
			FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_ATOMIC_O_TRUNC);
	/*
	 * With DONT_MASK the kernel passes the mode unmasked and the umask
	 * separately; fs_apply_umask() hands it to the backing filesystem,
	 * which applies it or the parent's default ACL, as locally.
	 */
	fs->dont_mask = (conn->want & FUSE_CAP_DONT_MASK) != 0;
	conn->max_write = FS_MAX_WRITE;
	conn->time_gran = 1;
	log_debug("fuse: proto %u.%u, capable 0x%x, want 0x%x", conn->proto_major,
		  conn->proto_minor, conn->capable, conn->want);
}

/* ---- libfuse's log -------------------------------------------------------- */

/*
 * Until the mount is up, libfuse's messages explain why setting up failed
 * (an unknown option, a bad mount point): keep the last one for the
 * "cannot mount" line instead of printing it.
 */
static bool fs_log_capture;
static char fs_log_captured[512];   /* everything libfuse said at level err */

static void fs_fuse_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if (fs_log_capture && level <= FUSE_LOG_ERR) {
		size_t len = strlen(fs_log_captured);

		/* libfuse writes some messages in pieces: collect them. */
		vsnprintf(fs_log_captured + len, sizeof(fs_log_captured) - len, fmt, ap);
		return;
	}
	log_vmsg((int)level, fmt, ap);
}

/*
 * The last line libfuse logged while setting up, without its "fuse: "
 * prefix and trailing punctuation, or `fallback`.
 */
static const char *fs_fuse_reason(const char *fallback)
{
	char *msg = fs_log_captured, *nl;
	size_t len = strlen(msg);

	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '.' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	nl = strrchr(msg, '\n');
	if (nl)
		msg = nl + 1;
	if (strncmp(msg, "fuse: ", 6) == 0)
		msg += 6;
	return *msg ? msg : fallback;
}

/* ---- validation ----------------------------------------------------------- */

static int fs_fail(const char *backing, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fs_fail(const char *backing, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mirrorfs: cannot mount '%s': %s\n", backing, why);
	return 1;
}

/* Is `inner` equal to or below `outer` (both canonical)? */
static bool fs_path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return true;
	return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

/* Undo mountinfo's octal escapes (\040 etc.) in place. */
static void fs_unescape_mountinfo(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

/* Is `path` the mount point of a mirrorfs mount? */
static bool fs_is_mirrorfs_mount(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char mnt[PATH_MAX], type[64];
		char *sep = strstr(line, " - ");

		/* id parent maj:min root MOUNTPOINT opts ... - FSTYPE source ... */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", type) != 1)
			continue;
		fs_unescape_mountinfo(mnt);
		found = strcmp(mnt, path) == 0 && strcmp(type, "fuse.mirrorfs") == 0;
	}
	free(line);
	fclose(f);
	return found;
}

static int fs_resolve_dir(const char *backing_arg, const char *what, const char *path,
			  char ret[PATH_MAX])
{
	struct stat st;

	if (!realpath(path, ret)) {
		if (errno == ENOENT)
			return fs_fail(backing_arg, "%s '%s' does not exist", what, path);
		return fs_fail(backing_arg, "%s '%s': %s", what, path, strerror(errno));
	}
	if (stat(ret, &st) < 0)
		return fs_fail(backing_arg, "%s '%s': %s", what, path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fs_fail(backing_arg, "%s '%s' is not a directory", what, path);
	return 0;
}

/* ---- the rest of the life cycle ------------------------------------------- */

/*
 * Does close() on the backing filesystem report anything (NFS, CIFS, FUSE
 * and the like report write-back errors there)? Local disk filesystems do
 * not: for them the FLUSH of every close() is skipped (fi->noflush).
 * Unknown types are assumed to.
 */
static bool fs_backing_flushes(int rootfd)
{
	static const unsigned long local[] = {
		EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC, TMPFS_MAGIC,
		F2FS_SUPER_MAGIC, 0x2fc12fc1 /* zfs */, 0xca451a4e /* bcachefs */,
		0x3153464a /* jfs */, REISERFS_SUPER_MAGIC,
	};
	struct statfs sf;

	if (fstatfs(rootfd, &sf) < 0)
		return true;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(local); i++)
		if ((unsigned long)sf.f_type == local[i])
			return false;
	return true;
}

static void fs_raise_nofile(void)
{
	struct rlimit rl;

	/* Every inode the kernel knows holds an O_PATH fd. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warning("cannot raise the open file limit: %m");
	}
}

struct fs_progress {
	bool shown;
};

static void fs_adopt_progress(void *arg, uint64_t entries)
{
	struct fs_progress *p = arg;

	fprintf(stderr, "\radopting: %llu entries", (unsigned long long)entries);
	fflush(stderr);
	p->shown = true;
}

/* Append `s` to `buf` as one -o value, escaping ',' and '\'. */
static int fs_opt_append(char *buf, size_t cap, const char *key, const char *val)
{
	size_t len = strlen(buf);

	if (len && len + 1 < cap)
		buf[len++] = ',';
	for (const char *s = key; *s && len + 1 < cap; s++)
		buf[len++] = *s;
	for (const char *s = val; s && *s && len + 2 < cap; s++) {
		if (*s == ',' || *s == '\\')
			buf[len++] = '\\';
		buf[len++] = *s;
	}
	buf[len] = '\0';
	return len + 2 < cap ? 0 : -ENAMETOOLONG;
}

/*
 * The owner of the journal of `backing` if it is a replica ("" if not, or
 * if it has no journal yet or it cannot be read: the normal open then
 * reports why). No lock is taken, no connection is kept.
 */
static void fs_replica_owner(const char *backing, char ret_owner[37])
{
	struct journal_open_opts o = { .flags = JOURNAL_OPEN_READONLY };
	struct journal *j = NULL;

	ret_owner[0] = '\0';
	if (journal_open(backing, &o, &j) < 0)
		return;
	if (journal_replica_owner(j, ret_owner) < 0)
		ret_owner[0] = '\0';
	journal_close(j);
}

/* Does the comma separated list `opts` hold the option `name`? */
static bool fs_opts_have(const char *opts, const char *name)
{
	size_t n = strlen(name);

	for (const char *s = opts; s && *s;) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == n && strncmp(s, name, n) == 0)
			return true;
		s = e ? e + 1 : NULL;
	}
	return false;
}

int fs_mount_run(const struct fs_mount_opts *opts)
{
	char backing[PATH_MAX], mnt[PATH_MAX];
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct journal_open_opts jopts = { 0 };
	struct fs_progress progress = { false };
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	struct fs fs = { 0 };
	bool foreground, mounted = false, handlers = false, started = false;
	char owner[37];
	char *optstr = NULL;
	size_t optcap;
	int r, ret = 1, rootfd;

	if (!opts || !opts->backing || !opts->mountpoint) {
		fprintf(stderr, "mirrorfs: mount: missing BACKING or MOUNTPOINT\n");
		return 2;
	}
	foreground = opts->foreground || opts->debug;
	fs.read_only = opts->read_only || fs_opts_have(opts->fuse_opts, "ro");
	fs.debug = opts->debug;
	if (opts->debug)
		log_set_level(LOG_DEBUG);
	fuse_set_log_func(fs_fuse_log);
	fs_raise_nofile();

	/* Validate before touching anything. */
	if (fs_resolve_dir(opts->backing, "backing directory", opts->backing, backing) ||
	    fs_resolve_dir(opts->backing, "mount point", opts->mountpoint, mnt))
		return 1;
	if (strcmp(backing, mnt) == 0)
		return fs_fail(opts->backing, "the backing directory and the mount point are the same");
	if (fs_path_within(mnt, backing))
		return fs_fail(opts->backing, "the mount point '%s' is inside the backing directory",
			       opts->mountpoint);
	if (fs_path_within(backing, mnt))
		return fs_fail(opts->backing, "the backing directory is inside the mount point '%s'",
			       opts->mountpoint);
	if (fs_is_mirrorfs_mount(mnt))
		return fs_fail(opts->backing, "'%s' is already a mirrorfs mount", opts->mountpoint);

	/* Options for libfuse and the kernel. */
	optcap = strlen(backing) * 2 + (opts->fuse_opts ? strlen(opts->fuse_opts) : 0) + 128;
	optstr = calloc(1, optcap);
	if (!optstr)
		return fs_fail(opts->backing, "%s", strerror(ENOMEM));
	fs_opt_append(optstr, optcap, "fsname=", backing);
	fs_opt_append(optstr, optcap, "subtype=mirrorfs", NULL);
	fs_opt_append(optstr, optcap, "default_permissions", NULL);
	if (fs.read_only && !fs_opts_have(opts->fuse_opts, "ro"))
		fs_opt_append(optstr, optcap, "ro", NULL);
	if (opts->fuse_opts && *opts->fuse_opts) {
		/* The user's list as given (its escapes are theirs). */
		strcat(optstr, ",");
		strcat(optstr, opts->fuse_opts);
	}
	if (fuse_opt_add_arg(&args, "mirrorfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, optstr) || (opts->debug && fuse_opt_add_arg(&args, "-d"))) {
		ret = fs_fail(opts->backing, "%s", strerror(ENOMEM));
		goto out;
	}

	/* A replica: refuse read-write, else DR mode (its journal comes later). */
	fs_replica_owner(backing, owner);
	if (owner[0] && !fs.read_only) {
		ret = fs_fail(opts->backing, "it is a replica of %s; mount it --read-only "
			      "(or promote it with takeover)", owner);
		goto out;
	}
	if (owner[0]) {
		r = fs_dr_init(&fs);
		if (r < 0) {
			ret = fs_fail(opts->backing, "%s", strerror(-r));
			goto out;
		}
		log_debug("'%s' is a replica of %s: DR mode", backing, owner);
	}

	/* The journal first: its errors come before anything is mounted. */
	jopts.flags = JOURNAL_OPEN_NO_START;
	/*
	 * Parse the mount options before anything touches BACKING: a bad option
	 * must leave no state directory behind.
	 */
	fs_log_capture = true;
	fs_log_captured[0] = '\0';
	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se) {
		ret = fs_fail(opts->backing, "%s", fs_fuse_reason("invalid mount options"));
		goto out;
	}
	if (isatty(STDERR_FILENO)) {
		jopts.progress = fs_adopt_progress;
		jopts.progress_arg = &progress;
	}
	r = fs.dr ? 0 : journal_open(backing, &jopts, &fs.j);
	if (progress.shown)
		fputc('\n', stderr);
	if (r == -EBUSY) {
		ret = fs_fail(opts->backing, "already mounted");
		goto out;
	}
	if (r < 0) {
		ret = fs_fail(opts->backing, "%s", journal_strerror(r));
		goto out;
	}

	r = fs_itable_init(&fs.itable);
	if (r < 0) {
		ret = fs_fail(opts->backing, "%s", strerror(-r));
		goto out;
	}
	rootfd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		ret = fs_fail(opts->backing, "%s", strerror(errno));
		goto out;
	}
	fs.backing_flush = fs_backing_flushes(rootfd);
	r = fs_inode_add_root(&fs, rootfd, &fs.root);
	if (r < 0) {
		close(rootfd);
		ret = fs_fail(opts->backing, "%s", strerror(-r));
		goto out;
	}

	if (fuse_set_signal_handlers(se) != 0) {
		ret = fs_fail(opts->backing, "cannot set signal handlers");
		goto out;
	}
	handlers = true;
	if (fuse_session_mount(se, mnt) != 0) {
		ret = fs_fail(opts->backing, "%s", fs_fuse_reason("mount failed"));
		goto out;
	}
	mounted = true;
	fs_log_capture = false;

	if (fuse_daemonize(foreground) != 0) {
		ret = fs_fail(opts->backing, "cannot daemonize");
		goto out;
	}
	if (!foreground)
		log_set_sink(LOG_SINK_SYSLOG, "mirrorfs");

	/* After daemonizing: threads do not survive fork, nor may sqlite connections. */
	fs.se = se;
	if (fs.dr) {
		jopts.flags = JOURNAL_OPEN_READONLY;
		jopts.progress = NULL;
		r = journal_open(backing, &jopts, &fs.j);
		if (r < 0) {
			log_err("cannot open the journal of '%s': %s", backing, journal_strerror(r));
			goto out;
		}
		r = fs_dr_start(&fs);
		if (r < 0) {
			log_err("cannot serve '%s': %s", mnt, strerror(-r));
			goto out;
		}
	} else {
		r = journal_start(fs.j);
		if (r < 0) {
			log_err("cannot start the journal of '%s': %s", backing,
				journal_strerror(r));
			goto out;
		}
	}
	/* The replicator needs a writable journal: none in DR mode. */
	if (opts->on_start && !fs.dr) {
		r = opts->on_start(opts->hook_arg, fs.j);
		if (r < 0) {
			log_err("cannot start serving '%s': %s", backing, strerror(-r));
			goto out;
		}
		started = true;
	}

	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		log_err("cannot serve '%s': %s", mnt, strerror(ENOMEM));
		goto out;
	}
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_idle_threads(cfg, 10);
	r = fuse_session_loop_mt(se, cfg);
	/* 0: unmounted; > 0: stopped by that signal; < 0: failed. */
	if (r < 0)
		log_err("serving '%s' failed: %s", mnt, strerror(-r));
	else
		ret = 0;
out:
	fs_log_capture = false;
	/* The watcher notifies through the session: stop it first. */
	fs_dr_release(&fs);
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	fs_itable_release(&fs.itable);
	if (started && opts->on_stop)
		opts->on_stop(opts->hook_arg);
	if (fs.j) {
		r = journal_close(fs.j);
		if (r < 0) {
			log_err("closing the journal of '%s' failed: %s", backing,
				journal_strerror(r));
			ret = 1;
		}
	}
	fuse_opt_free_args(&args);
	free(optstr);
	return ret;
}
