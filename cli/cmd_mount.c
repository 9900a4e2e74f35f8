/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs mount` and `mirrorfs umount`.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirror_i.h"
#include "mirrorfs/mirror.h"
#include "mirrorfs/fs.h"
#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"

/* ---- mount ---------------------------------------------------------------- */

static const struct cli_help mount_help = {
	.synopsis = "mirrorfs mount [-f] [-d] [-o OPTS] [--read-only] [--snap-interval SECS]\n"
		    "               [--snap-pattern PATTERN] BACKING MOUNTPOINT",
	.description =
	"Mount the directory BACKING at MOUNTPOINT. Every change made through\n"
	"MOUNTPOINT is recorded in the journal, BACKING/.mirrorfs/journal.db (the\n"
	"first mount adopts the existing tree). BACKING/.mirrorfs is hidden from the\n"
	"mount. While mounted, change BACKING only through MOUNTPOINT.\n"
	"\n"
	"The command returns once the file system is mounted, and the daemon serves\n"
	"it until 'mirrorfs umount MOUNTPOINT'.\n"
	"\n"
	"options:\n"
	"  -f, --foreground   do not daemonize; log to stderr\n"
	"  -d, --debug        print FUSE debug output (implies -f)\n"
	"  -o OPTS            comma-separated mount options, e.g. allow_other,\n"
	"                     default_permissions; 'ro' mounts read-only; may repeat\n"
	"  -r, --read-only    mount read-only\n"
	"  --snap-interval SECS\n"
	"                     take a snapshot every SECS seconds (and so ship it to\n"
	"                     every mirror peer)\n"
	"  --snap-pattern PATTERN\n"
	"                     name of those snapshots, strftime(3) in UTC (default\n"
	"                     mirror-%Y%m%d-%H%M%S)\n"
	"  -h, --help         show this help\n"
	"\n"
	"The daemon also ships every snapshot to the tree's mirror peers (see\n"
	"'mirrorfs peer'), in the background; losing the network never affects\n"
	"the mount.\n",
};

/* Append the -o list `add` to the comma-separated *opts, keeping 'ro'/'rw' out of it. */
static int add_fuse_opts(char **opts, const char *add, bool *read_only)
{
	char *copy, *save = NULL, *tok, *joined;
	size_t len = *opts ? strlen(*opts) : 0;
	int r = 0;

	copy = strdup(add);
	joined = malloc(len + strlen(add) + 2);
	if (!copy || !joined) {
		r = -ENOMEM;
		goto out;
	}
	if (*opts)
		memcpy(joined, *opts, len + 1);
	else
		joined[0] = '\0';
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "ro") == 0) {
			*read_only = true;
			continue;
		}
		if (strcmp(tok, "rw") == 0) {
			*read_only = false;
			continue;
		}
		if (joined[0])
			strcat(joined, ",");
		strcat(joined, tok);
	}
	free(*opts);
	*opts = joined;
	joined = NULL;
out:
	free(joined);
	free(copy);
	return r;
}

int cli_cmd_mount(int argc, char **argv)
{
	enum { OPT_READ_ONLY = 'r', OPT_SNAP_INTERVAL = 1000, OPT_SNAP_PATTERN };
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "read-only", no_argument, NULL, OPT_READ_ONLY },
		{ "snap-interval", required_argument, NULL, OPT_SNAP_INTERVAL },
		{ "snap-pattern", required_argument, NULL, OPT_SNAP_PATTERN },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct fs_mount_opts opts = { 0 };
	struct cli_mount_mirror mirror = { 0 };
	bool read_only_flag = false, o_read_only = false;
	char *fuse_opts = NULL;
	int c, ret = CLI_EXIT_OK;

	while ((c = cli_getopt(argc, argv, "fdo:r", longopts, &mount_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			goto out;
		case 'f':
			opts.foreground = true;
			break;
		case 'd':
			opts.debug = true;
			opts.foreground = true;
			break;
		case 'o':
			if (add_fuse_opts(&fuse_opts, optarg, &o_read_only) < 0) {
				ret = cli_error("cannot mount: %s", strerror(ENOMEM));
				goto out;
			}
			break;
		case OPT_READ_ONLY:
			read_only_flag = true;
			break;
		case OPT_SNAP_INTERVAL: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > 366L * 86400) {
				ret = cli_usage_error(&mount_help, argv[0],
						      "bad --snap-interval '%s' (seconds)", optarg);
				goto out;
			}
			mirror.snap_interval_s = (int)v;
			break;
		}
		case OPT_SNAP_PATTERN: {
			char name[256];

			if (repl_mirror_snap_name(optarg, name) < 0) {
				ret = cli_usage_error(&mount_help, argv[0],
						      "bad --snap-pattern '%s'", optarg);
				goto out;
			}
			mirror.snap_pattern = optarg;
			break;
		}
		}
	}
	if (argc - optind != 2) {
		ret = cli_usage_error(&mount_help, argv[0], "expected BACKING and MOUNTPOINT");
		goto out;
	}
	opts.backing = argv[optind];
	opts.mountpoint = argv[optind + 1];
	opts.read_only = read_only_flag || o_read_only;
	opts.fuse_opts = fuse_opts && fuse_opts[0] ? fuse_opts : NULL;
	/* The daemon's replicator: this module owns the network, fs/ does not. */
	opts.on_start = cli_mirror_on_start;
	opts.on_stop = cli_mirror_on_stop;
	opts.hook_arg = &mirror;
	ret = fs_mount_run(&opts);
out:
	free(fuse_opts);
	return ret;
}

/* ---- umount --------------------------------------------------------------- */

#define UMOUNT_WAIT_SECONDS 60

static const struct cli_help umount_help = {
	.synopsis = "mirrorfs umount MOUNTPOINT",
	.description =
	"Unmount a mirrorfs mount and wait (up to 60 seconds) until the daemon\n"
	"that served it has exited, after committing and closing the journal, so\n"
	"that when the command returns the backing directory is free (for\n"
	"'mirrorfs check', a new mount, a backup; for a read-only mount of a\n"
	"replica, the replica). Fails if files are still open under MOUNTPOINT.\n"
	"'unmount' is an alias.\n"
	"\n"
	"options:\n"
	"  -h, --help   show this help\n",
};

/* Run `fusermount3 -u MOUNTPOINT`; its own message explains a failure. */
static int run_fusermount(const char *mountpoint)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", mountpoint, (char *)NULL);
		cli_error("cannot run fusermount3: %s", strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

/*
 * Is the tree of `backing` a replica (its journal has an owner)? Then its
 * mount is a DR mount, whose daemon does not hold the journal (a receiver
 * may). False if that cannot be read.
 */
static bool backing_is_replica(const char *backing)
{
	struct journal_open_opts oo = { .flags = JOURNAL_OPEN_READONLY };
	struct journal *j = NULL;
	char owner[37] = "";

	if (journal_open(backing, &oo, &j) < 0)
		return false;
	if (journal_replica_owner(j, owner) < 0)
		owner[0] = '\0';
	journal_close(j);
	return owner[0] != '\0';
}

/*
 * The pid of the daemon serving the DR mount at `mountpoint`, from its
 * root's mirrorfs.mount.pid; 0 if it cannot say (a dead mount, an older
 * daemon). Only DR mounts are asked: the daemon of any other mount holds
 * the journal's lock, which names it, so a hung daemon cannot hang the
 * unmount.
 */
static int dr_daemon_pid(const char *mountpoint, pid_t *ret)
{
	char buf[32], *end;
	ssize_t n;
	long pid;

	*ret = 0;
	n = lgetxattr(mountpoint, FS_MOUNT_PID_XATTR, buf, sizeof(buf) - 1);
	if (n < 0)
		return errno == ENOTCONN || errno == ENODATA || errno == EOPNOTSUPP ? 0 : -errno;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno || end == buf || *end || pid <= 0 || pid > INT_MAX)
		return -EBADMSG;
	*ret = (pid_t)pid;
	return 0;
}

/* Wait until the process of `pidfd` has exited. Returns 0, -ETIMEDOUT, or -errno. */
static int wait_daemon_exit(int pidfd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int64_t left = deadline - util_mono_ns();
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)UTIL_MIN(left / 1000000 + 1, 1000));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Wait until nobody holds the journal's lock (BACKING/.mirrorfs/lock): the
 * daemon releases it only after journal_close(), so then every record is
 * committed. Returns 0, -ETIMEDOUT, or -errno.
 */
static int wait_journal_released(const char *backing, int64_t deadline)
{
	const struct timespec pause = { 0, 20 * 1000 * 1000 };
	_cleanup_free_ char *lock_path = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&lock_path, "%s/%s/lock", backing, JOURNAL_STATE_DIR) < 0) {
		lock_path = NULL;
		return -ENOMEM;
	}
	fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			flock(fd, LOCK_UN);
			return 0;
		}
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (util_mono_ns() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
	}
}

int cli_cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_mount m = { 0 };
	bool replica = false;
	pid_t pid = 0;
	int64_t deadline;
	int pidfd = -1;
	const char *arg;
	int c, r, ret = CLI_EXIT_OK;

	while ((c = cli_getopt(argc, argv, "", longopts, &umount_help, &ret)) != -1)
		if (c == CLI_OPT_EXIT)
			return ret;
	if (argc - optind != 1)
		return cli_usage_error(&umount_help, argv[0], "expected MOUNTPOINT");
	arg = argv[optind];

	r = cli_mount_find(arg, &m);
	if (r < 0)
		return cli_error("cannot unmount '%s': cannot read the mount table: %s", arg,
				 strerror(-r));
	if (r == 0)
		return cli_error("cannot unmount '%s': not a mirrorfs mount", arg);

	/*
	 * The process to wait for, pinned by a pidfd (readable once it has
	 * exited) while it still serves the mount. Without one (a dead mount,
	 * an older daemon, no pidfd_open), only the journal's lock is left to
	 * wait for, and a DR mount has none.
	 */
	replica = backing_is_replica(m.backing);
	r = replica ? dr_daemon_pid(m.mountpoint, &pid) : journal_holder_pid(m.backing, &pid);
	if (r >= 0 && pid > 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	/* As root, umount2() needs no helper; otherwise the setuid fusermount3 does it. */
	if (geteuid() == 0)
		r = umount2(m.mountpoint, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
	else
		r = run_fusermount(m.mountpoint);
	if (r == -ECHILD) {
		ret = cli_error("cannot unmount '%s': fusermount3 failed", arg);
		goto out;
	} else if (r == -EBUSY) {
		ret = cli_error("cannot unmount '%s': files are open or a process is "
				"inside it: %s", arg, strerror(-r));
		goto out;
	} else if (r < 0) {
		ret = cli_error("cannot unmount '%s': %s", arg, strerror(-r));
		goto out;
	}

	deadline = util_mono_ns() + (int64_t)UMOUNT_WAIT_SECONDS * 1000000000;
	r = pidfd >= 0 ? wait_daemon_exit(pidfd, deadline) : 0;
	if (r == -ETIMEDOUT) {
		ret = cli_error("unmounted '%s', but after %d seconds its daemon (pid %ld) is "
				"still running", arg, UMOUNT_WAIT_SECONDS, (long)pid);
		goto out;
	} else if (r < 0) {
		ret = cli_error("unmounted '%s', but cannot tell whether its daemon (pid %ld) "
				"has exited: %s", arg, (long)pid, strerror(-r));
		goto out;
	}
	/*
	 * The daemon's exit released the journal's lock (unless a child of it
	 * inherited the lock). A DR mount holds none: whoever holds it then
	 * is a receiver, not ours to wait for.
	 */
	if (replica)
		goto out;
	r = wait_journal_released(m.backing, deadline);
	if (r == -ETIMEDOUT)
		ret = cli_error("unmounted '%s', but after %d seconds the daemon still holds "
				"the journal of '%s'", arg, UMOUNT_WAIT_SECONDS, m.backing);
	else if (r < 0)
		ret = cli_error("unmounted '%s', but cannot tell whether the journal of '%s' "
				"is closed: %s", arg, m.backing, strerror(-r));
out:
	if (pidfd >= 0)
		close(pidfd);
	cli_mount_release(&m);
	return ret;
}
