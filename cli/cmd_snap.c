/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs snap`: create, delete, list and expire snapshots.
 *
 * TARGET is a mirrorfs mount point or a backing directory. While mounted,
 * create and delete go through the mount (mkdir/rmdir MNT/.snap/NAME), so
 * the daemon, which owns the journal, does them; a backing directory that
 * is mounted stands for its mount. Unmounted, the journal is opened here.
 * list opens the journal read-only, which works while mounted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirrorfs/journal.h"
#include "mirrorfs/util.h"

/* TODO(lead): belongs in cli_i.h's list of subcommands (not ours to edit now). */
int cli_cmd_snap(int argc, char **argv);

static const struct cli_help snap_help = {
	.synopsis =
	"mirrorfs snap create TARGET NAME\n"
	"       mirrorfs snap delete [--force] TARGET NAME\n"
	"       mirrorfs snap list [--json] TARGET\n"
	"       mirrorfs snap expire (--keep N | --keep-within DURATION) [--dry-run] TARGET",
	.description =
	"Manage the snapshots of a mirrorfs tree. TARGET is a mount point or a backing\n"
	"directory (mounted or not). While mounted, the snapshots are also reachable\n"
	"as MOUNTPOINT/.snap/NAME (read-only); mkdir and rmdir there create and\n"
	"delete them, which is what create and delete do through a mount.\n"
	"\n"
	"  create   take a snapshot NAME of the whole tree (1-255 bytes, no '/',\n"
	"           not '.' or '..')\n"
	"  delete   delete snapshot NAME, freeing what no other snapshot needs;\n"
	"           fails while the snapshot is held (e.g. by a mirror peer)\n"
	"  list     one line per snapshot, oldest first: NAME, CREATED (local time),\n"
	"           SEQ (journal sequence number), EXCLUSIVE (what deleting it alone\n"
	"           would free), HOLD (who holds it, or -)\n"
	"  expire   delete old snapshots: --keep N keeps the newest N, --keep-within\n"
	"           DURATION keeps those younger than DURATION (a number and a unit:\n"
	"           s, m, h, d or w, e.g. 30m, 12h, 7d, 2w). A held snapshot is never\n"
	"           deleted. Prints each snapshot it deletes (or keeps because held).\n"
	"\n"
	"options:\n"
	"  --json          list: print one JSON array of objects {name, created (UTC,\n"
	"                  ISO-8601), created_ns, seq, exclusive_bytes, hold (null\n"
	"                  if not held)}; a name that is not UTF-8 has each bad byte\n"
	"                  as U+FFFD, and name_hex holds the exact bytes\n"
	"  --keep N        expire: keep the newest N snapshots\n"
	"  --keep-within DURATION\n"
	"                  expire: keep the snapshots younger than DURATION\n"
	"  --dry-run       expire: only print what would be deleted\n"
	"  --force         delete: also a replica's newest snapshot, the base of the\n"
	"                  next incremental stream (mirroring then fails until the\n"
	"                  replica gets that snapshot again)\n"
	"  -h, --help      show this help\n"
	"\n"
	"Exit status: 0 ok, 1 failure, 2 usage.\n",
};

/* Where the snapshots of TARGET live: a mount (mnt != NULL) or a backing dir. */
struct snap_target {
	const char *arg;   /* as given, for messages */
	char *mnt;         /* the mount point if mounted, else NULL */
	char *backing;
	char owner[37];    /* a replica: the source that owns it, else "" */
	char newest[256];  /* a replica: its newest snapshot, the next stream's base */
};

/*
 * Is the target a replica? Its snapshots come from its source: none may be
 * created here, and its newest is the base of the next stream. Its DR mount
 * is read-only, so snapshots are deleted in its journal directly.
 */
static void snap_target_replica(struct snap_target *t)
{
	struct journal_open_opts oo = { .flags = JOURNAL_OPEN_READONLY };
	struct journal_snap *v = NULL;
	struct journal *j;
	size_t n = 0;

	if (journal_open(t->backing, &oo, &j) < 0)
		return;
	if (journal_replica_owner(j, t->owner) == 0 && t->owner[0] &&
	    journal_snap_list(j, false, &v, &n) == 0 && n > 0)
		snprintf(t->newest, sizeof(t->newest), "%s", v[n - 1].name);
	free(v);
	journal_close(j);
	if (t->owner[0]) {
		free(t->mnt);
		t->mnt = NULL;
	}
}

static void snap_target_release(struct snap_target *t)
{
	free(t->mnt);
	free(t->backing);
	t->mnt = t->backing = NULL;
}

/* Resolve TARGET; on failure print "cannot VERB: why" and return 1. */
static int snap_target_resolve(const char *arg, const char *what, struct snap_target *ret)
{
	struct cli_mount m = { 0 };
	const char *why;
	char *backing = NULL;
	int r;

	ret->arg = arg;
	r = cli_mount_find(arg, &m);
	if (r < 0)
		return cli_error("cannot %s '%s': cannot read the mount table: %s", what, arg,
				 strerror(-r));
	if (r == 0) {
		why = cli_backing_resolve(arg, &backing);
		if (why)
			return cli_error("cannot %s '%s': %s", what, arg, why);
		/* A mounted backing directory: the daemon owns its journal. */
		r = cli_mount_find_backing(backing, &m);
		if (r < 0) {
			free(backing);
			return cli_error("cannot %s '%s': cannot read the mount table: %s", what,
					 arg, strerror(-r));
		}
		if (r > 0) {
			free(m.backing);
			m.backing = backing;
		} else {
			ret->mnt = NULL;
			ret->backing = backing;
			snap_target_replica(ret);
			return 0;
		}
	}
	ret->mnt = m.mountpoint;
	ret->backing = m.backing;
	snap_target_replica(ret);
	return 0;
}

/* Open the journal of an unmounted target (read-only for listing). */
static int snap_journal_open(const struct snap_target *t, bool read_only, struct journal **ret)
{
	struct journal_open_opts opts = { .flags = read_only ? JOURNAL_OPEN_READONLY : 0 };

	return journal_open(t->backing, &opts, ret);
}

/*
 * A phrase for the error of a snapshot operation. Not journal_strerror():
 * that one explains journal_open()'s codes (its EBUSY is "in use by
 * another process", not "held").
 */
static const char *snap_strerror(int r)
{
	return strerror(-r);
}

/* "MNT/.snap/NAME" */
static char *snap_path(const struct snap_target *t, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s/%s", strcmp(t->mnt, "/") == 0 ? "" : t->mnt, ".snap", name) < 0)
		return NULL;
	return p;
}

/* Create or delete snapshot `name` of a mounted target through the mount. */
static int snap_through_mount(const struct snap_target *t, const char *name, bool create)
{
	char *path = snap_path(t, name);
	int r;

	if (!path)
		return -ENOMEM;
	r = create ? mkdir(path, 0755) : rmdir(path);
	r = r < 0 ? -errno : 0;
	free(path);
	return r;
}

/* Delete `name` of target `t`: through the mount, or with `j` (unmounted). */
static int snap_delete_one(const struct snap_target *t, struct journal *j, const char *name)
{
	if (t->owner[0] && strcmp(name, t->newest) == 0)
		return -EBUSY;   /* the replica's newest: the base of the next stream */
	if (t->mnt)
		return snap_through_mount(t, name, false);
	return journal_snap_delete(j, name);
}

static int snap_check_name(const struct cli_help *help, const char *cmd, const char *name)
{
	int r = util_check_name(name);

	if (r == -ENAMETOOLONG)
		return cli_usage_error(help, cmd, "invalid snapshot name: longer than 255 bytes");
	if (r < 0)
		return cli_usage_error(help, cmd, "invalid snapshot name '%s': it must not be "
				       "empty, '.', '..' or contain '/'", name);
	return 0;
}

/* ---- create, delete ---------------------------------------------------------- */

static int snap_create_delete(const char *name, const char *arg, bool create, bool force)
{
	const char *verb = create ? "create" : "delete";
	struct snap_target t = { 0 };
	struct journal *j = NULL;
	char what[300];
	int r, ret = CLI_EXIT_OK;

	snprintf(what, sizeof(what), "%s a snapshot of", verb);
	if (snap_target_resolve(arg, what, &t))
		return CLI_EXIT_FAILURE;
	if (create && t.owner[0]) {
		ret = cli_error("cannot create snapshot '%s' of '%s': it is a replica of %s; its "
				"snapshots come from its source", name, arg, t.owner);
		goto out;
	}
	if (!create && !force && t.owner[0] && strcmp(name, t.newest) == 0) {
		ret = cli_error("cannot delete snapshot '%s' of '%s': it is the replica's newest, "
				"the base of the next stream", name, arg);
		goto out;
	}
	if (force)
		t.newest[0] = '\0';
	if (t.mnt) {
		r = snap_through_mount(&t, name, create);
	} else {
		r = snap_journal_open(&t, false, &j);
		if (r < 0) {
			ret = cli_error("cannot %s snapshot '%s' of '%s': %s", verb, name, arg,
					journal_strerror(r));
			goto out;
		}
		r = create ? journal_snap_create(j, name, NULL) : journal_snap_delete(j, name);
	}
	if (r == -ENOENT && !create)
		ret = cli_error("cannot delete snapshot '%s' of '%s': no such snapshot", name, arg);
	else if (r == -EBUSY && !create)
		ret = cli_error("cannot delete snapshot '%s' of '%s': it is held (see 'mirrorfs "
				"snap list')", name, arg);
	else if (r < 0)
		ret = cli_error("cannot %s snapshot '%s' of '%s': %s", verb, name, arg,
				snap_strerror(r));
out:
	r = journal_close(j);
	if (r < 0 && ret == CLI_EXIT_OK)
		ret = cli_error("cannot %s snapshot '%s' of '%s': closing the journal failed: %s",
				verb, name, arg, journal_strerror(r));
	snap_target_release(&t);
	return ret;
}

/* ---- list ------------------------------------------------------------------------ */

/* 1536 -> "1.5K", 65536 -> "64K", 100 -> "100B" (binary units, like zfs list). */
static void snap_human(uint64_t v, char *buf, size_t size)
{
	static const char units[] = "BKMGTPE";
	double d = (double)v;
	size_t u = 0;

	while (d >= 1024 && u + 1 < sizeof(units) - 1) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 "B", v);
	else if (d < 10)
		snprintf(buf, size, "%.1f%c", d, units[u]);
	else
		snprintf(buf, size, "%.0f%c", d, units[u]);
}

/* UTC ISO-8601 with nanoseconds, as `mirrorfs journal --json` writes times. */
static void snap_utc(int64_t ns, char *buf, size_t size)
{
	int64_t sec = ns / 1000000000, frac = ns % 1000000000;
	char date[32];
	struct tm tm;
	time_t tt;

	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	tt = (time_t)sec;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(buf, size, "%" PRId64, ns);
		return;
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09" PRId64 "Z", date, frac);
}

/* Display width of a name printed with cli_put_escaped() (bytes, close enough). */
static size_t snap_escaped_len(const char *name)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return strlen(name);
	cli_put_escaped(f, name);
	fclose(f);
	free(s);
	return len;
}

static void snap_print_json(const struct journal_snap *v, size_t n)
{
	char when[64];

	putchar('[');
	for (size_t i = 0; i < n; i++) {
		snap_utc(v[i].created_ns, when, sizeof(when));
		fputs(i ? ",\n  {\"name\":" : "\n  {\"name\":", stdout);
		cli_put_json_string(stdout, v[i].name);
		if (!cli_utf8_valid(v[i].name)) {
			fputs(",\"name_hex\":", stdout);
			cli_put_json_hex(stdout, v[i].name);
		}
		printf(",\"created\":\"%s\",\"created_ns\":%" PRId64 ",\"seq\":%" PRIu64
		       ",\"exclusive_bytes\":%" PRIu64 ",\"hold\":", when, v[i].created_ns,
		       v[i].seq, v[i].exclusive_bytes);
		if (v[i].hold[0])
			cli_put_json_string(stdout, v[i].hold);
		else
			fputs("null", stdout);
		putchar('}');
	}
	fputs(n ? "\n]\n" : "]\n", stdout);
}

static void snap_print_table(const struct journal_snap *v, size_t n)
{
	size_t w = 4;   /* "NAME" */
	char when[64], excl[32];

	for (size_t i = 0; i < n; i++)
		w = UTIL_MAX(w, snap_escaped_len(v[i].name));
	printf("%-*s  %-29s  %8s  %9s  %s\n", (int)w, "NAME", "CREATED", "SEQ", "EXCLUSIVE",
	       "HOLD");
	for (size_t i = 0; i < n; i++) {
		cli_format_time(v[i].created_ns, when, sizeof(when));
		snap_human(v[i].exclusive_bytes, excl, sizeof(excl));
		cli_put_escaped(stdout, v[i].name);
		printf("%*s  %-29s  %8" PRIu64 "  %9s  ", (int)(w - snap_escaped_len(v[i].name)),
		       "", when, v[i].seq, excl);
		if (v[i].hold[0])
			cli_put_escaped(stdout, v[i].hold);
		else
			putchar('-');
		putchar('\n');
	}
}

static int snap_list(const char *arg, bool json)
{
	struct snap_target t = { 0 };
	struct journal_snap *v = NULL;
	struct journal *j = NULL;
	size_t n = 0;
	int r, ret;

	if (snap_target_resolve(arg, "list the snapshots of", &t))
		return CLI_EXIT_FAILURE;
	r = snap_journal_open(&t, true, &j);
	if (r >= 0)
		r = journal_snap_list(j, true, &v, &n);
	if (r < 0) {
		ret = cli_error("cannot list the snapshots of '%s': %s", arg, journal_strerror(r));
		goto out;
	}
	cli_ignore_sigpipe();
	if (json)
		snap_print_json(v, n);
	else
		snap_print_table(v, n);
	ret = cli_stdout_finish();
out:
	free(v);
	journal_close(j);
	snap_target_release(&t);
	return ret;
}

/* ---- expire ----------------------------------------------------------------------- */

/* "30m", "12h", "7d", "2w", "90s" -> nanoseconds. */
static int snap_parse_duration(const char *s, int64_t *ret_ns)
{
	static const struct { char unit; int64_t sec; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	unsigned long long v;
	char *end;

	if (!*s || !strchr("0123456789", *s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || strlen(end) != 1)
		return -EINVAL;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(units); i++) {
		if (*end != units[i].unit)
			continue;
		if (v > (unsigned long long)(INT64_MAX / 1000000000 / units[i].sec))
			return -ERANGE;
		*ret_ns = (int64_t)v * units[i].sec * 1000000000;
		return 0;
	}
	return -EINVAL;
}

static int snap_parse_count(const char *s, size_t *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > SIZE_MAX)
		return -ERANGE;
	*ret = (size_t)v;
	return 0;
}

static int snap_expire(const char *arg, bool by_count, size_t keep, int64_t within_ns,
		       bool dry_run)
{
	struct snap_target t = { 0 };
	struct journal_snap *v = NULL;
	struct journal *j = NULL;
	int64_t cutoff = util_now_ns() - within_ns;
	size_t n = 0;
	int r, ret = CLI_EXIT_OK;

	if (snap_target_resolve(arg, "expire the snapshots of", &t))
		return CLI_EXIT_FAILURE;
	/* Mounted: list read-only, delete through the mount. Else one journal for both. */
	r = snap_journal_open(&t, t.mnt != NULL || dry_run, &j);
	if (r >= 0)
		r = journal_snap_list(j, false, &v, &n);
	if (r < 0) {
		ret = cli_error("cannot expire the snapshots of '%s': %s", arg, journal_strerror(r));
		goto out;
	}
	/* v is oldest first (by seq): the newest `keep` are at the end. */
	for (size_t i = 0; i < n; i++) {
		bool expired = by_count ? i + keep < n : v[i].created_ns < cutoff;

		if (!expired)
			continue;
		if (v[i].hold[0]) {
			fputs("kept '", stdout);
			cli_put_escaped(stdout, v[i].name);
			fputs("': held by ", stdout);
			cli_put_escaped(stdout, v[i].hold);
			putchar('\n');
			continue;
		}
		r = dry_run ? 0 : snap_delete_one(&t, t.mnt ? NULL : j, v[i].name);
		if (r == -EBUSY) {   /* held since we listed */
			fputs("kept '", stdout);
			cli_put_escaped(stdout, v[i].name);
			fputs("': held\n", stdout);
		} else if (r < 0 && r != -ENOENT) {   /* ENOENT: someone else deleted it */
			fflush(stdout);
			ret = cli_error("cannot delete snapshot '%s' of '%s': %s", v[i].name, arg,
					snap_strerror(r));
		} else if (r >= 0) {
			fputs(dry_run ? "would delete '" : "deleted '", stdout);
			cli_put_escaped(stdout, v[i].name);
			fputs("'\n", stdout);
		}
	}
	if (ret == CLI_EXIT_OK)
		ret = cli_stdout_finish();
out:
	free(v);
	r = journal_close(j);
	if (r < 0 && ret == CLI_EXIT_OK)
		ret = cli_error("cannot expire the snapshots of '%s': closing the journal "
				"failed: %s", arg, journal_strerror(r));
	snap_target_release(&t);
	return ret;
}

/* ---- dispatch ----------------------------------------------------------------------- */

int cli_cmd_snap(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_KEEP, OPT_KEEP_WITHIN, OPT_DRY_RUN, OPT_FORCE };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "keep-within", required_argument, NULL, OPT_KEEP_WITHIN },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "force", no_argument, NULL, OPT_FORCE },
		CLI_HELP_OPTION,
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, dry_run = false, have_keep = false, have_within = false, force = false;
	const char *action;
	int64_t within_ns = 0;
	size_t keep = 0;
	int c, ret = CLI_EXIT_OK, nargs;
	char **args;

	while ((c = cli_getopt(argc, argv, "", longopts, &snap_help, &ret)) != -1) {
		switch (c) {
		case CLI_OPT_EXIT:
			return ret;
		case OPT_JSON:
			json = true;
			break;
		case OPT_KEEP:
			if (snap_parse_count(optarg, &keep) < 0)
				return cli_usage_error(&snap_help, argv[0], "invalid --keep '%s': "
						       "expected a number of snapshots", optarg);
			have_keep = true;
			break;
		case OPT_KEEP_WITHIN:
			if (snap_parse_duration(optarg, &within_ns) < 0)
				return cli_usage_error(&snap_help, argv[0], "invalid --keep-within "
						       "'%s': expected a duration like 30m, 12h, "
						       "7d or 2w", optarg);
			have_within = true;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case OPT_FORCE:
			force = true;
			break;
		}
	}
	args = argv + optind;
	nargs = argc - optind;
	if (nargs < 1)
		return cli_usage_error(&snap_help, argv[0], "expected create, delete, list or expire");
	action = args[0];
	args++;
	nargs--;

	if (strcmp(action, "list") != 0 && json)
		return cli_usage_error(&snap_help, argv[0], "--json is for list");
	if (strcmp(action, "delete") != 0 && force)
		return cli_usage_error(&snap_help, argv[0], "--force is for delete");
	if (strcmp(action, "expire") != 0 && (have_keep || have_within || dry_run))
		return cli_usage_error(&snap_help, argv[0],
				       "--keep, --keep-within and --dry-run are for expire");

	if (strcmp(action, "create") == 0 || strcmp(action, "delete") == 0) {
		if (nargs != 2)
			return cli_usage_error(&snap_help, argv[0], "%s: expected TARGET and NAME",
					       action);
		if (snap_check_name(&snap_help, argv[0], args[1]))
			return CLI_EXIT_USAGE;
		return snap_create_delete(args[1], args[0], action[0] == 'c', force);
	}
	if (strcmp(action, "list") == 0) {
		if (nargs != 1)
			return cli_usage_error(&snap_help, argv[0], "list: expected TARGET");
		return snap_list(args[0], json);
	}
	if (strcmp(action, "expire") == 0) {
		if (nargs != 1)
			return cli_usage_error(&snap_help, argv[0], "expire: expected TARGET");
		if (have_keep == have_within)
			return cli_usage_error(&snap_help, argv[0],
					       "expire: give one of --keep N or --keep-within DURATION");
		return snap_expire(args[0], have_keep, keep, within_ns, dry_run);
	}
	return cli_usage_error(&snap_help, argv[0], "unknown action '%s'", action);
}
