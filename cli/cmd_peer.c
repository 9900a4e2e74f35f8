/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mirrorfs peer`: the mirror peers of a tree (CephFS's verbs), and the
 * bootstrap tokens that set one up over ssh (docs/MIRRORING.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_i.h"
#include "mirror_i.h"
#include "mirrorfs/mirror.h"
#include "mirrorfs/repl.h"
#include "mirrorfs/util.h"

#define TOKEN_MAX (64 * 1024)
#define TOKEN_VERSION 1

static const struct cli_help peer_help = {
	.synopsis =
	"mirrorfs peer add [--identity KEYFILE] [--host-key SHA256:...] [--site NAME]\n"
	"                  [--keep-deleted] MOUNTPOINT|BACKING URL\n"
	"       mirrorfs peer remove MOUNTPOINT|BACKING UUID\n"
	"       mirrorfs peer list [--json] MOUNTPOINT|BACKING\n"
	"       mirrorfs peer bootstrap create --site NAME [--host H] [--port P] [--user U]\n"
	"                  [--host-key-file FILE] [--authorized-keys FILE] [--output FILE]\n"
	"                  REPLICA_DIR\n"
	"       mirrorfs peer bootstrap import MOUNTPOINT|BACKING [TOKEN_FILE|-]",
	.description =
	"Mirror peers: replicas every snapshot of the tree is shipped to.\n"
	"\n"
	"add        add the replica at URL, either ssh://USER@HOST[:PORT]/PATH (needs\n"
	"           --identity, the private key; the host key is pinned: given with\n"
	"           --host-key or learned on this first connection) or file:///PATH (a\n"
	"           replica directory on this machine, created if missing). The\n"
	"           connection is checked. Prints the peer's UUID.\n"
	"remove     forget a peer (the replica keeps what it has).\n"
	"list       the peers, one per line (UUID, URL, site, flags), or --json.\n"
	"bootstrap create\n"
	"           on the replica host: initialise REPLICA_DIR as a replica, make an\n"
	"           ed25519 key pair, authorise its public half for USER (default: you)\n"
	"           restricted to running 'mirrorfs serve --replica REPLICA_DIR', and\n"
	"           print a token (base64 of JSON: host, port, user, host-key\n"
	"           fingerprint, replica path, site name, private key) to standard\n"
	"           output or to --output FILE (mode 0600). The private key is kept\n"
	"           nowhere else. Treat the token like a password.\n"
	"bootstrap import\n"
	"           on the source: read a token from TOKEN_FILE or standard input\n"
	"           (never from the command line), store its key (mode 0600) and its\n"
	"           pinned host key, check the connection, add the peer.\n"
	"\n"
	"Adding the tree itself, its backing directory, or a directory inside\n"
	"either as a peer is refused, as is a replica another source owns.\n",
};

enum {
	OPT_IDENTITY = 1000, OPT_HOST_KEY, OPT_SITE, OPT_KEEP_DELETED, OPT_JSON, OPT_HOST,
	OPT_PORT, OPT_USER, OPT_HOST_KEY_FILE, OPT_AUTH_KEYS, OPT_OUTPUT,
};

static const struct option peer_options[] = {
	{ "identity", required_argument, NULL, OPT_IDENTITY },
	{ "host-key", required_argument, NULL, OPT_HOST_KEY },
	{ "site", required_argument, NULL, OPT_SITE },
	{ "keep-deleted", no_argument, NULL, OPT_KEEP_DELETED },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "user", required_argument, NULL, OPT_USER },
	{ "host-key-file", required_argument, NULL, OPT_HOST_KEY_FILE },
	{ "authorized-keys", required_argument, NULL, OPT_AUTH_KEYS },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	CLI_HELP_OPTION,
	{ 0 },
};

struct peer_args {
	const char *identity, *host_key, *site, *host, *user, *host_key_file, *auth_keys;
	const char *output;
	int port;
	bool keep_deleted, json;
};

/*
 * The canonical form of `path`, which need not exist: the longest prefix
 * that exists is resolved (symlinks, "..") and the rest appended, with "."
 * and ".." in the rest refused.
 */
static int cli_path_abs_nonexist(const char *path, char **ret)
{
	char buf[PATH_MAX], *cut, *res, *out;
	const char *rest = "";

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (;;) {
		res = realpath(buf, NULL);
		if (res)
			break;
		if (errno != ENOENT)
			return -errno;
		cut = strrchr(buf, '/');
		if (!cut || cut == buf)
			return -ENOENT;
		*cut = '\0';
		rest = path + (cut - buf);   /* "/a/b" of what does not exist yet */
	}
	{
		char comp[PATH_MAX], *save = NULL, *tok;

		snprintf(comp, sizeof(comp), "%s", rest);
		for (tok = strtok_r(comp, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
			if (strcmp(tok, ".") == 0 || strcmp(tok, "..") == 0) {
				free(res);
				return -EINVAL;
			}
		}
	}
	if (asprintf(&out, "%s%s", strcmp(res, "/") == 0 && *rest ? "" : res, rest) < 0) {
		free(res);
		return -ENOMEM;
	}
	free(res);
	*ret = out;
	return 0;
}

/* Is `a` equal to `b` or one inside the other? */
static bool paths_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	if (strncmp(a, b, n) != 0)
		return false;
	if (la == lb)
		return true;
	return (la > lb ? a[n] : b[n]) == '/' || n == 1;   /* n == 1: one is "/" */
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The guards of `peer add` for a replica directory on this machine: not
 * the tree itself, not overlapping it, not owned by another source.
 */
static int check_local_replica(const struct cli_tree *t, const char *path, const char *what)
{
	char *abs = NULL, owner[37] = "";
	struct journal_open_opts oo = { .flags = JOURNAL_OPEN_READONLY };
	struct journal *rj;
	char db[PATH_MAX];
	int r;

	/* Refuse before creating anything: a refused peer leaves no trace. */
	r = cli_path_abs_nonexist(path, &abs);
	if (r == -EINVAL)
		return cli_error("cannot add peer '%s': '.' or '..' in a part of the path that "
				 "does not exist yet", what);
	if (r < 0)
		return cli_error("cannot add peer '%s': %s", what, strerror(-r));
	if (paths_overlap(abs, t->backing) || (t->mountpoint && paths_overlap(abs, t->mountpoint))) {
		r = cli_error("cannot add peer '%s': '%s' is the tree '%s' itself or overlaps it",
			      what, abs, t->arg);
		goto out;
	}
	r = mkdir_p(abs, 0755);
	if (r < 0) {
		r = cli_error("cannot add peer '%s': cannot create '%s': %s", what, abs,
			      strerror(-r));
		goto out;
	}
	snprintf(db, sizeof(db), "%s/" JOURNAL_STATE_DIR "/" JOURNAL_DB_NAME, abs);
	r = 0;
	if (access(db, F_OK) == 0 && journal_open(abs, &oo, &rj) == 0) {
		if (strcmp(journal_source_id(rj), journal_source_id(t->j)) == 0)
			r = cli_error("cannot add peer '%s': it is this tree itself", what);
		else if (journal_replica_owner(rj, owner) == 0 && owner[0] &&
			 strcmp(owner, journal_source_id(t->j)) != 0)
			r = cli_error("cannot add peer '%s': replica is mirrored from %s", what,
				      owner);
		journal_close(rj);
	}
out:
	free(abs);
	return r;
}

/* Connect once: proves the peer works, and learns its host key if needed. */
static int check_connection(struct journal_peer *p)
{
	struct repl_transport *t = NULL;
	char *fp = NULL;
	int r;

	if (strncmp(p->url, "ssh://", 6) == 0) {
		struct repl_url url;
		char *cmd;

		r = repl_url_parse(p->url, &url);
		if (r < 0)
			return r;
		cmd = repl_ssh_serve_command(url.path);
		r = cmd ? repl_ssh_connect(&url, p->identity, p->host_key[0] ? p->host_key : NULL,
					   cmd, &t, &fp) : -ENOMEM;
		free(cmd);
		repl_url_release(&url);
		if (r >= 0 && !p->host_key[0] && fp) {
			snprintf(p->host_key, sizeof(p->host_key), "%s", fp);
			fprintf(stderr, "mirrorfs: pinned the host key of '%s': %s\n", p->url, fp);
		}
		free(fp);
	} else {
		r = repl_mirror_connect(p, cli_self_exe(), &t);
	}
	if (r >= 0)
		r = repl_transport_close(t);
	return r;
}

static int peer_add(const struct peer_args *a, const char *tree, const char *urlstr)
{
	struct journal_peer p = { .keep_deleted = a->keep_deleted };
	struct repl_url url;
	struct cli_tree t;
	int r, ret;

	r = repl_url_parse(urlstr, &url);
	if (r < 0)
		return cli_error("cannot add peer '%s': %s", urlstr, repl_last_errmsg());
	ret = cli_tree_open(tree, CLI_TREE_CONFIG, "add a peer to", &t);
	if (ret != 0) {
		repl_url_release(&url);
		return ret;
	}
	snprintf(p.url, sizeof(p.url), "%s", urlstr);
	snprintf(p.site, sizeof(p.site), "%s", a->site ? a->site : "");
	if (url.scheme == REPL_URL_FILE) {
		ret = check_local_replica(&t, url.path, urlstr);
		if (ret)
			goto out;
		if (a->identity || a->host_key) {
			ret = cli_error("cannot add peer '%s': --identity and --host-key are for "
					"ssh:// peers", urlstr);
			goto out;
		}
	} else {
		char *abs = NULL;

		if (!a->identity) {
			ret = cli_error("cannot add peer '%s': an ssh peer needs --identity KEYFILE "
					"(or use 'peer bootstrap import')", urlstr);
			goto out;
		}
		if (cli_path_abs(a->identity, &abs) < 0 || access(abs, R_OK) < 0) {
			ret = cli_error("cannot add peer '%s': cannot read identity '%s': %s",
					urlstr, a->identity, strerror(errno));
			free(abs);
			goto out;
		}
		snprintf(p.identity, sizeof(p.identity), "%s", abs);
		free(abs);
		if (a->host_key)
			snprintf(p.host_key, sizeof(p.host_key), "%s", a->host_key);
	}
	r = check_connection(&p);
	if (r < 0) {
		ret = cli_error("cannot add peer '%s': %s", urlstr,
				*repl_last_errmsg() ? repl_last_errmsg() : strerror(-r));
		goto out;
	}
	r = util_uuid_new(p.uuid);
	if (r >= 0)
		r = journal_peer_add(t.j, &p);
	if (r == -EEXIST) {
		ret = cli_error("cannot add peer '%s': it is already a peer of '%s'", urlstr, tree);
		goto out;
	}
	if (r < 0) {
		ret = cli_error("cannot add peer '%s': %s", urlstr, journal_strerror(r));
		goto out;
	}
	printf("%s\n", p.uuid);
	cli_tree_wake(&t);
out:
	repl_url_release(&url);
	return cli_tree_close(&t, ret);
}

static int peer_remove(const char *tree, const char *uuid)
{
	struct cli_tree t;
	int r, ret;

	ret = cli_tree_open(tree, CLI_TREE_CONFIG, "remove a peer of", &t);
	if (ret)
		return ret;
	r = journal_peer_remove(t.j, uuid);
	if (r == -ENOENT)
		ret = cli_error("cannot remove peer '%s': no such peer of '%s'", uuid, tree);
	else if (r < 0)
		ret = cli_error("cannot remove peer '%s': %s", uuid, journal_strerror(r));
	else
		cli_tree_wake(&t);
	return cli_tree_close(&t, ret);
}

static int peer_list(const struct peer_args *a, const char *tree)
{
	struct journal_peer *v = NULL;
	struct cli_tree t;
	size_t n = 0;
	int r, ret;

	ret = cli_tree_open(tree, CLI_TREE_READ, "list the peers of", &t);
	if (ret)
		return ret;
	r = journal_peer_list(t.j, &v, &n);
	if (r < 0) {
		ret = cli_error("cannot list the peers of '%s': %s", tree, journal_strerror(r));
		goto out;
	}
	if (a->json) {
		json_object *arr = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "uuid", json_object_new_string(v[i].uuid));
			json_object_object_add(o, "url", json_object_new_string(v[i].url));
			json_object_object_add(o, "site", json_object_new_string(v[i].site));
			json_object_object_add(o, "host_key", json_object_new_string(v[i].host_key));
			json_object_object_add(o, "keep_deleted",
					       json_object_new_boolean(v[i].keep_deleted));
			json_object_object_add(o, "paused", json_object_new_boolean(v[i].paused));
			json_object_array_add(arr, o);
		}
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s  %s  %s%s%s\n", v[i].uuid, v[i].url,
			       v[i].site[0] ? v[i].site : "-", v[i].paused ? "  paused" : "",
			       v[i].keep_deleted ? "  keep-deleted" : "");
	}
	ret = cli_stdout_finish();
out:
	free(v);
	return cli_tree_close(&t, ret);
}

/* ---- bootstrap ------------------------------------------------------------ */

static int read_file_all(const char *path, size_t max, char **ret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	ssize_t n;

	if (fd < 0)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = util_read_all(fd, buf, max + 1);
	close(fd);
	if (n < 0 || (size_t)n > max) {
		free(buf);
		return n < 0 ? (int)n : -EFBIG;
	}
	buf[n] = '\0';
	*ret = buf;
	return 0;
}

/* Append `line` to the authorized_keys file `path` (0600, in a 0700 directory). */
static int authorize_key(const char *path, const char *line, uid_t uid, gid_t gid)
{
	char dir[PATH_MAX], *slash;
	int fd, r;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) == 0 && chown(dir, uid, gid) < 0)
			return -errno;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	r = util_write_all(fd, line, strlen(line));
	if (r >= 0 && fchown(fd, uid, gid) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	return r;
}

static int bootstrap_create(const struct peer_args *a, const char *dir)
{
	struct journal_open_opts oo = { 0 };
	char keypath[PATH_MAX], comment[128], hostname[256] = "localhost";
	char *abs = NULL, *pub = NULL, *priv = NULL, *hostfp = NULL, *token = NULL;
	char *line = NULL, *cmd = NULL;
	const char *user = a->user, *hkf = a->host_key_file ? a->host_key_file :
				       "/etc/ssh/ssh_host_ed25519_key.pub";
	struct passwd *pw;
	struct journal *j;
	json_object *o = NULL;
	const char *json;
	int r, ret = CLI_EXIT_FAILURE;

	if (!a->site || !*a->site || strlen(a->site) > 63)
		return cli_error("cannot bootstrap '%s': --site NAME (1..63 bytes) is required", dir);
	pw = user ? getpwnam(user) : getpwuid(geteuid());
	if (!pw)
		return cli_error("cannot bootstrap '%s': no such user '%s'", dir, user ? user : "?");
	user = pw->pw_name;
	r = mkdir_p(dir, 0755);
	if (r >= 0)
		r = cli_path_abs(dir, &abs);
	if (r < 0)
		return cli_error("cannot bootstrap '%s': %s", dir, strerror(-r));
	/* Initialise the replica (its journal) now: the token names a working replica. */
	r = journal_open(abs, &oo, &j);
	if (r >= 0)
		r = journal_close(j);
	if (r < 0) {
		ret = cli_error("cannot bootstrap '%s': %s", dir, journal_strerror(r));
		goto out;
	}
	r = repl_key_fingerprint_file(hkf, &hostfp);
	if (r < 0) {
		ret = cli_error("cannot bootstrap '%s': cannot read the host key '%s': %s", dir,
				hkf, *repl_last_errmsg() ? repl_last_errmsg() : strerror(-r));
		goto out;
	}
	gethostname(hostname, sizeof(hostname) - 1);
	snprintf(keypath, sizeof(keypath), "%s/" JOURNAL_STATE_DIR "/bootstrap-key.XXXXXX", abs);
	{
		int tfd = mkstemp(keypath);

		if (tfd < 0) {
			ret = cli_error("cannot bootstrap '%s': %s", dir, strerror(errno));
			goto out;
		}
		close(tfd);
		unlink(keypath);   /* repl_key_generate() refuses to overwrite */
	}
	snprintf(comment, sizeof(comment), "mirrorfs:%s", a->site);
	r = repl_key_generate(keypath, comment, &pub);
	if (r >= 0)
		r = read_file_all(keypath, TOKEN_MAX, &priv);
	{
		char pubpath[PATH_MAX + 8];

		unlink(keypath);   /* the private half lives only in the token */
		snprintf(pubpath, sizeof(pubpath), "%s.pub", keypath);
		unlink(pubpath);
	}
	if (r < 0) {
		ret = cli_error("cannot bootstrap '%s': cannot make a key: %s", dir,
				*repl_last_errmsg() ? repl_last_errmsg() : strerror(-r));
		goto out;
	}
	cmd = repl_ssh_serve_command(abs);
	if (!cmd || asprintf(&line, "restrict,command=\"%s %s\" %s\n", cli_self_exe(),
			     strchr(cmd, ' ') ? strchr(cmd, ' ') + 1 : cmd, pub) < 0) {
		ret = cli_error("cannot bootstrap '%s': %s", dir, strerror(ENOMEM));
		goto out;
	}
	{
		char akpath[PATH_MAX];

		if (a->auth_keys)
			snprintf(akpath, sizeof(akpath), "%s", a->auth_keys);
		else
			snprintf(akpath, sizeof(akpath), "%s/.ssh/authorized_keys", pw->pw_dir);
		r = authorize_key(akpath, line, pw->pw_uid, pw->pw_gid);
		if (r < 0) {
			ret = cli_error("cannot bootstrap '%s': cannot write '%s': %s", dir, akpath,
					strerror(-r));
			goto out;
		}
	}
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(TOKEN_VERSION));
	json_object_object_add(o, "host", json_object_new_string(a->host ? a->host : hostname));
	json_object_object_add(o, "port", json_object_new_int(a->port ? a->port : 22));
	json_object_object_add(o, "user", json_object_new_string(user));
	json_object_object_add(o, "host_key", json_object_new_string(hostfp));
	json_object_object_add(o, "path", json_object_new_string(abs));
	json_object_object_add(o, "site", json_object_new_string(a->site));
	json_object_object_add(o, "key", json_object_new_string(priv));
	/* every byte counts: a token changed anywhere must be refused */
	json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	{
		char sum[16];

		snprintf(sum, sizeof(sum), "%08x", repl_crc32c(0, json, strlen(json)));
		json_object_object_add(o, "check", json_object_new_string(sum));
	}
	json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	r = util_base64_encode(json, strlen(json), &token);
	if (r < 0) {
		ret = cli_error("cannot bootstrap '%s': %s", dir, strerror(-r));
		goto out;
	}
	if (a->output) {
		int fd = open(a->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd < 0 || fchmod(fd, 0600) < 0 || util_write_all(fd, token, strlen(token)) < 0 ||
		    util_write_all(fd, "\n", 1) < 0) {
			ret = cli_error("cannot write the token to '%s': %s", a->output,
					strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	} else {
		printf("%s\n", token);
	}
	ret = cli_stdout_finish();
out:
	if (o)
		json_object_put(o);
	if (priv) {
		explicit_bzero(priv, strlen(priv));
		free(priv);
	}
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	free(abs);
	free(pub);
	free(hostfp);
	free(line);
	free(cmd);
	return ret;
}

/* A string member of the token, checked. */
static const char *tok_str(json_object *o, const char *key, size_t max)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return s && *s && strlen(s) <= max ? s : NULL;
}

static int bootstrap_import(const char *tree, const char *src)
{
	char *raw = NULL, *keyfile = NULL, *p, *end;
	unsigned char *json = NULL;
	size_t jlen = 0;
	json_object *o = NULL, *v;
	struct json_tokener *tk = NULL;
	struct journal_peer peer = { 0 };
	const char *host, *user, *hk, *path, *site, *key;
	int port, r, ret, fd;
	struct cli_tree t;

	if (!src || strcmp(src, "-") == 0)
		r = read_file_all("/dev/stdin", TOKEN_MAX, &raw);
	else
		r = read_file_all(src, TOKEN_MAX, &raw);
	if (r < 0)
		return cli_error("cannot import token: cannot read '%s': %s", src ? src : "-",
				 r == -EFBIG ? "too large" : strerror(-r));
	/* surrounding white space is fine; nothing else */
	for (p = raw; *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'; p++)
		;
	for (end = p + strlen(p); end > p && (end[-1] == ' ' || end[-1] == '\n' ||
					      end[-1] == '\r' || end[-1] == '\t'); end--)
		;
	r = util_base64_decode(p, (size_t)(end - p), &json, &jlen);
	explicit_bzero(raw, strlen(raw));
	free(raw);
	if (r < 0)
		return cli_error("cannot import token: malformed token (not base64)");
	tk = json_tokener_new();
	o = tk ? json_tokener_parse_ex(tk, (const char *)json, (int)jlen) : NULL;
	if (!o || json_tokener_get_error(tk) != json_tokener_success ||
	    json_tokener_get_parse_end(tk) != jlen || strlen((char *)json) != jlen ||
	    !json_object_is_type(o, json_type_object)) {
		ret = cli_error("cannot import token: malformed token (not a JSON object)");
		goto out;
	}
	/* the check covers everything else, exactly as bootstrap create wrote it */
	{
		const char *want = tok_str(o, "check", 8), *rest;
		char sum[16];

		if (want)
			want = strdup(want);
		json_object_object_del(o, "check");
		rest = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		snprintf(sum, sizeof(sum), "%08x", repl_crc32c(0, rest, strlen(rest)));
		if (!want || strcmp(want, sum) != 0) {
			free((char *)want);
			ret = cli_error("cannot import token: malformed token (its check does not "
					"match: damaged or tampered)");
			goto out;
		}
		free((char *)want);
	}
	if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != TOKEN_VERSION) {
		ret = cli_error("cannot import token: unsupported token version");
		goto out;
	}
	host = tok_str(o, "host", 255);
	user = tok_str(o, "user", 64);
	hk = tok_str(o, "host_key", 120);
	path = tok_str(o, "path", 4000);
	site = tok_str(o, "site", 63);
	key = tok_str(o, "key", TOKEN_MAX);
	port = json_object_object_get_ex(o, "port", &v) && json_object_is_type(v, json_type_int) ?
	       json_object_get_int(v) : -1;
	if (!host || !user || !hk || !path || !site || !key || port < 1 || port > 65535 ||
	    strncmp(hk, "SHA256:", 7) != 0 || path[0] != '/' ||
	    strncmp(key, "-----BEGIN OPENSSH PRIVATE KEY-----", 35) != 0) {
		ret = cli_error("cannot import token: malformed token (missing or invalid fields)");
		goto out;
	}
	snprintf(peer.url, sizeof(peer.url), "ssh://%s@%s:%d%s", user, host, port, path);
	{
		struct repl_url u;

		if (repl_url_parse(peer.url, &u) < 0) {
			ret = cli_error("cannot import token: malformed token (%s)",
					repl_last_errmsg());
			goto out;
		}
		repl_url_release(&u);
	}
	snprintf(peer.site, sizeof(peer.site), "%s", site);
	snprintf(peer.host_key, sizeof(peer.host_key), "%s", hk);

	ret = cli_tree_open(tree, CLI_TREE_CONFIG, "import a peer into", &t);
	if (ret)
		goto out;
	r = util_uuid_new(peer.uuid);
	if (r >= 0 && asprintf(&keyfile, "%s/" JOURNAL_STATE_DIR "/keys", t.backing) < 0)
		r = -ENOMEM;
	if (r >= 0 && mkdir(keyfile, 0700) < 0 && errno != EEXIST)
		r = -errno;
	free(keyfile);
	keyfile = NULL;
	if (r >= 0 && asprintf(&keyfile, "%s/" JOURNAL_STATE_DIR "/keys/%s", t.backing,
			       peer.uuid) < 0)
		r = -ENOMEM;
	if (r < 0) {
		ret = cli_tree_close(&t, cli_error("cannot import token: %s", strerror(-r)));
		goto out;
	}
	fd = open(keyfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || util_write_all(fd, key, strlen(key)) < 0 || close(fd) < 0) {
		ret = cli_error("cannot import token: cannot store the key: %s", strerror(errno));
		unlink(keyfile);
		ret = cli_tree_close(&t, ret);
		goto out;
	}
	snprintf(peer.identity, sizeof(peer.identity), "%s", keyfile);
	r = check_connection(&peer);
	if (r >= 0)
		r = journal_peer_add(t.j, &peer);
	if (r < 0) {
		const char *why = r == -EEXIST ? "it is already a peer" :
				  *repl_last_errmsg() ? repl_last_errmsg() : strerror(-r);

		ret = cli_error("cannot import token for '%s': %s", peer.url, why);
		unlink(keyfile);
		ret = cli_tree_close(&t, ret);
		goto out;
	}
	printf("%s\n", peer.uuid);
	cli_tree_wake(&t);
	ret = cli_tree_close(&t, cli_stdout_finish());
out:
	if (tk)
		json_tokener_free(tk);
	if (o)
		json_object_put(o);
	if (json) {
		explicit_bzero(json, jlen);
		free(json);
	}
	free(keyfile);
	return ret;
}

int cli_cmd_peer(int argc, char **argv)
{
	struct peer_args a = { 0 };
	const char *verb;
	int c, ex;

	while ((c = cli_getopt(argc, argv, "", peer_options, &peer_help, &ex)) != -1) {
		if (c == CLI_OPT_EXIT)
			return ex;
		switch (c) {
		case OPT_IDENTITY: a.identity = optarg; break;
		case OPT_HOST_KEY: a.host_key = optarg; break;
		case OPT_SITE: a.site = optarg; break;
		case OPT_KEEP_DELETED: a.keep_deleted = true; break;
		case OPT_JSON: a.json = true; break;
		case OPT_HOST: a.host = optarg; break;
		case OPT_USER: a.user = optarg; break;
		case OPT_HOST_KEY_FILE: a.host_key_file = optarg; break;
		case OPT_AUTH_KEYS: a.auth_keys = optarg; break;
		case OPT_OUTPUT: a.output = optarg; break;
		case OPT_PORT: {
			char *e;
			long v = strtol(optarg, &e, 10);

			if (*e || v < 1 || v > 65535)
				return cli_usage_error(&peer_help, argv[0], "bad port '%s'", optarg);
			a.port = (int)v;
			break;
		}
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return cli_usage_error(&peer_help, "peer", "expected add, remove, list or bootstrap");
	verb = argv[0];
	if (strcmp(verb, "add") == 0 && argc == 3)
		return peer_add(&a, argv[1], argv[2]);
	if (strcmp(verb, "remove") == 0 && argc == 3)
		return peer_remove(argv[1], argv[2]);
	if (strcmp(verb, "list") == 0 && argc == 2)
		return peer_list(&a, argv[1]);
	if (strcmp(verb, "bootstrap") == 0 && argc >= 2) {
		if (strcmp(argv[1], "create") == 0 && argc == 3)
			return bootstrap_create(&a, argv[2]);
		if (strcmp(argv[1], "import") == 0 && (argc == 3 || argc == 4))
			return bootstrap_import(argv[2], argc == 4 ? argv[3] : NULL);
	}
	return cli_usage_error(&peer_help, "peer", "bad arguments for '%s'", verb);
}
