/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Snapshot views: the tree as a snapshot saw it (docs/SNAPSHOTS.md).
 * Namespace from the versioned rows, attributes from the earliest
 * preserved copy at or after the snapshot (else live), data chunk by chunk
 * likewise. Everything here is read-only and runs on pooled connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mirrorfs/log.h"
#include "mirrorfs/util.h"
#include "journal_i.h"
#include "cow_i.h"

#define CHUNK ((off_t)JOURNAL_CHUNK_SIZE)

int sv_snap_seq(struct jconn *c, uint64_t snap_id, uint64_t *ret)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, ST_SV_SNAP_SEQ, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)snap_id);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		*ret = (uint64_t)sqlite3_column_int64(s, 0);
		r = 0;
	} else {
		r = r == SQLITE_DONE ? -ENOENT : journal_err(r);
	}
	sqlite3_reset(s);
	return r;
}

int sv_obj_row(struct jconn *c, uint64_t ino, struct objrow *ret)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, ST_SV_OBJ, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		ret->type = (uint32_t)sqlite3_column_int64(s, 0);
		ret->dev = (uint64_t)sqlite3_column_int64(s, 1);
		ret->bino = (uint64_t)sqlite3_column_int64(s, 2);
		ret->born_seq = (uint64_t)sqlite3_column_int64(s, 3);
		ret->died_seq = (uint64_t)sqlite3_column_int64(s, 4);
		r = 0;
	} else {
		r = r == SQLITE_DONE ? -ENOENT : journal_err(r);
	}
	sqlite3_reset(s);
	return r;
}

/* 1 + 2 + 4 + 22 x 8 ms: about 0.2 s for another process to commit */
#define SV_OPEN_TRIES_RO 25

/* The object's orphan (BACKING/.mirrorfs/orphans/<jino>), if it has one; as sv_open_obj_as(). */
static bool sv_open_orphan(struct journal *j, uint64_t ino, int flags, int *ret_fd,
			   struct stat *st)
{
	char oname[32];
	int fd;

	if (j->orphan_fd < 0)
		return false;
	snprintf(oname, sizeof(oname), "%" PRIu64, ino);
	if (!ret_fd)
		return fstatat(j->orphan_fd, oname, st, AT_SYMLINK_NOFOLLOW) == 0;
	fd = openat(j->orphan_fd, oname, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	oc_last_keep(j, ino, fd);
	*ret_fd = fd;
	return true;
}

/*
 * Open the object's data as it is now: its orphan if it died, else its live
 * path, checked to be the same backing inode. `flags` is O_PATH or O_RDONLY,
 * with O_NOATIME or not. The row says which to try first (an object alive
 * in it rarely has an orphan, and looking costs a failed lookup); either
 * way both are tried before waiting for pending records. With ret_fd
 * NULL it is only stat'ed, into *st (no open, no close).
 */
static int sv_open_obj_as(struct journal *j, struct jconn *c, uint64_t ino,
			  const struct objrow *o, int flags, int *ret_fd, struct stat *st)
{
	bool live_first = o->died_seq == 0;
	int fd, tries, r;
	bool ro;

	if (oc_last_open(j, ino, o->type, flags, ret_fd, st))
		return 0;
	/*
	 * Another process (a receiver, for a read-only journal) may have moved
	 * or orphaned the object and not committed the record yet: wait for it
	 * a little, as the writer commits within milliseconds.
	 */
	ro = j->flags & JOURNAL_OPEN_READONLY;
	for (tries = 0; tries < (ro ? SV_OPEN_TRIES_RO : 2); tries++) {
		if (!live_first && sv_open_orphan(j, ino, flags, ret_fd, st))
			return 0;
		r = oc_open_current(j, c, ino, o->dev, o->bino, flags, ret_fd ? &fd : NULL, st);
		if (r == -ELOOP && flags != O_PATH && ret_fd)
			r = oc_open_current(j, c, ino, o->dev, o->bino, O_PATH, &fd, NULL);
		if (r == 0) {
			if (ret_fd) {
				oc_last_keep(j, ino, fd);
				*ret_fd = fd;
			}
			return 0;
		}
		if (r == -ENOMEM || r == -EMFILE || r == -ENFILE || r == -EIO || r == -EPERM ||
		    r == -EACCES)
			return r;
		if (live_first && sv_open_orphan(j, ino, flags, ret_fd, st))
			return 0;
		/* Renamed or replaced while we looked: let pending records land. */
		if (!ro)
			journal_flush(j);
		else
			usleep(1000u << (tries < 3 ? tries : 3));
		db_read_restart(c);   /* and read them */
	}
	return -ESTALE;
}

/*
 * Reading a snapshot must not change what it shows: an object unchanged
 * since the snapshot shows its live atime, so its data is read with
 * O_NOATIME (allowed to the file's owner and to root; others read without).
 */
static int sv_open_obj(struct journal *j, struct jconn *c, uint64_t ino, const struct objrow *o,
		       int flags, int *ret_fd)
{
	if (flags == O_RDONLY) {
		int r = sv_open_obj_as(j, c, ino, o, O_RDONLY | O_NOATIME, ret_fd, NULL);

		if (r != -EPERM)
			return r;
	}
	return sv_open_obj_as(j, c, ino, o, flags, ret_fd, NULL);
}

/* The earliest preserved attributes at or after `seq`: 1 found, 0 none. */
static int preserved_attr(struct jconn *c, uint64_t ino, uint64_t seq, struct stat *st,
			  char **ret_xattrs, size_t *ret_xlen)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, ST_SV_ATTR, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)seq);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		int64_t t;

		if (st) {
			st->st_mode = (mode_t)sqlite3_column_int64(s, 0);
			st->st_uid = (uid_t)sqlite3_column_int64(s, 1);
			st->st_gid = (gid_t)sqlite3_column_int64(s, 2);
			st->st_size = sqlite3_column_int64(s, 3);
			st->st_rdev = (dev_t)sqlite3_column_int64(s, 4);
			st->st_blocks = sqlite3_column_int64(s, 5);
			t = sqlite3_column_int64(s, 6);
			st->st_atim.tv_sec = t / 1000000000LL;
			st->st_atim.tv_nsec = t % 1000000000LL;
			t = sqlite3_column_int64(s, 7);
			st->st_mtim.tv_sec = t / 1000000000LL;
			st->st_mtim.tv_nsec = t % 1000000000LL;
			t = sqlite3_column_int64(s, 8);
			st->st_ctim.tv_sec = t / 1000000000LL;
			st->st_ctim.tv_nsec = t % 1000000000LL;
		}
		if (ret_xattrs) {
			int n = sqlite3_column_bytes(s, 9);
			const void *b = sqlite3_column_blob(s, 9);

			*ret_xattrs = NULL;
			*ret_xlen = 0;
			if (n > 0) {
				*ret_xattrs = malloc((size_t)n);
				if (!*ret_xattrs) {
					sqlite3_reset(s);
					return -ENOMEM;
				}
				memcpy(*ret_xattrs, b, (size_t)n);
				*ret_xlen = (size_t)n;
			}
		}
		r = 1;
	} else {
		r = r == SQLITE_DONE ? 0 : journal_err(r);
	}
	sqlite3_reset(s);
	return r;
}

static int count_query(struct jconn *c, enum jstmt id, uint64_t a, uint64_t b, uint64_t *ret)
{
	sqlite3_stmt *s;
	int r;

	r = db_stmt(c, id, &s);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)a);
	sqlite3_bind_int64(s, 2, (int64_t)b);
	sqlite3_bind_int64(s, 3, S_IFDIR);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		*ret = (uint64_t)sqlite3_column_int64(s, 0);
		r = 0;
	} else {
		r = journal_err(r);
	}
	sqlite3_reset(s);
	return r;
}

/* Does snapshot `seq` see object `o` at all? */
static bool seen_at(const struct objrow *o, uint64_t seq)
{
	return o->born_seq <= seq && (o->died_seq == 0 || o->died_seq > seq);
}

/*
 * The attributes snapshot `seq` shows for object `ino` (row `o`): those its
 * first change after the snapshot preserved, else the live ones, from *fdp
 * if it is open, else by the object's name (`fdp` NULL). That change
 * preserves, then changes the object, possibly between our two reads; so
 * the preserved ones are asked again when it may have happened (another
 * process's journal: always; ours: when the object's cow.gen moved), in a
 * read transaction that sees every preservation counted in cow.gen.
 */
static int snap_attr(struct journal *j, struct jconn *c, uint64_t ino, uint64_t seq,
		     const struct objrow *o, int *fdp, struct stat *st)
{
	bool ro = j->flags & JOURNAL_OPEN_READONLY;
	struct jobj *mem = ro ? NULL : obj_get(j, ino);
	uint64_t gen = 0;
	int r;

	if (mem) {
		gen = atomic_load(&mem->cow.gen);
		db_read_catch_up(c);
	}
	memset(st, 0, sizeof(*st));
	r = preserved_attr(c, ino, seq, st, NULL, NULL);
	if (r == 0 && !fdp)
		r = sv_open_obj_as(j, c, ino, o, O_PATH, NULL, st);
	else if (r == 0)
		r = fstat(*fdp, st) < 0 ? -errno : 0;
	if (r == 0 && (ro || (mem && atomic_load(&mem->cow.gen) != gen))) {
		db_read_restart(c);
		r = preserved_attr(c, ino, seq, st, NULL, NULL);
	}
	if (mem)
		obj_put(mem);
	return r < 0 ? r : 0;
}

static int snap_stat_conn(struct journal *j, struct jconn *c, uint64_t seq, uint64_t ino,
			  struct stat *ret)
{
	struct objrow o;
	struct stat st;
	uint64_t n;
	int r;

	r = sv_obj_row(c, ino, &o);
	if (r < 0)
		return r;
	if (!seen_at(&o, seq))
		return -ENOENT;
	r = snap_attr(j, c, ino, seq, &o, NULL, &st);
	if (r < 0)
		return r;
	st.st_dev = (dev_t)o.dev;
	st.st_ino = ino;
	st.st_blksize = 4096;
	if (o.type == S_IFDIR)
		r = count_query(c, ST_SV_NLINK_DIR, ino, seq, &n), n += 2;
	else
		r = count_query(c, ST_SV_NLINK, ino, seq, &n);
	if (r < 0)
		return r;
	st.st_nlink = (nlink_t)(n ? n : 1);
	*ret = st;
	return 0;
}

int journal_snap_stat(struct journal *j, uint64_t snap_id, uint64_t ino, struct stat *ret)
{
	struct jconn *c;
	uint64_t seq;
	int r;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	db_read_begin(c);
	r = sv_snap_seq(c, snap_id, &seq);
	if (r >= 0)
		r = snap_stat_conn(j, c, seq, ino, ret);
	db_conn_put(j, c);
	return r;
}

int journal_snap_lookup(struct journal *j, uint64_t snap_id, uint64_t dir,
			const char *name, uint64_t *ret_ino, struct stat *ret_st)
{
	struct jconn *c;
	sqlite3_stmt *s;
	uint64_t seq, ino = 0;
	struct stat st;
	int r;

	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	db_read_begin(c);
	r = sv_snap_seq(c, snap_id, &seq);
	if (r < 0)
		goto out;
	r = db_stmt(c, ST_SV_LOOKUP, &s);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	db_bind_name(s, 2, name);
	sqlite3_bind_int64(s, 3, (int64_t)seq);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		ino = (uint64_t)sqlite3_column_int64(s, 0);
		r = 0;
	} else {
		r = r == SQLITE_DONE ? -ENOENT : journal_err(r);
	}
	sqlite3_reset(s);
	if (r < 0)
		goto out;
	if (ret_st) {
		r = snap_stat_conn(j, c, seq, ino, &st);
		if (r < 0)
			goto out;
		*ret_st = st;
	}
	*ret_ino = ino;
out:
	db_conn_put(j, c);
	return r;
}

int journal_snap_readdir(struct journal *j, uint64_t snap_id, uint64_t dir, uint64_t cookie,
			 int (*cb)(void *arg, const char *name, uint64_t ino, mode_t type,
				   uint64_t next_cookie),
			 void *arg)
{
	struct jconn *c;
	sqlite3_stmt *s;
	uint64_t seq, pos = 0;
	char name[256];
	int r, rc;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	r = sv_snap_seq(c, snap_id, &seq);
	if (r < 0)
		goto out;
	r = db_stmt(c, ST_SV_READDIR, &s);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)dir);
	sqlite3_bind_int64(s, 2, (int64_t)seq);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int n = sqlite3_column_bytes(s, 0);

		if (pos++ < cookie)
			continue;
		if (n > 255)
			n = 255;
		memcpy(name, sqlite3_column_blob(s, 0), (size_t)n);
		name[n] = '\0';
		r = cb(arg, name, (uint64_t)sqlite3_column_int64(s, 1),
		       (mode_t)sqlite3_column_int64(s, 2), pos);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		r = journal_err(rc);
	sqlite3_reset(s);
	if (r > 0)
		r = 0;
out:
	db_conn_put(j, c);
	return r;
}

int journal_snap_readlink(struct journal *j, uint64_t snap_id, uint64_t ino,
			  char *buf, size_t size, size_t *ret_len)
{
	struct jconn *c;
	sqlite3_stmt *s;
	struct objrow o;
	uint64_t seq;
	int r;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	db_read_begin(c);
	r = sv_snap_seq(c, snap_id, &seq);
	if (r >= 0)
		r = sv_obj_row(c, ino, &o);
	if (r >= 0 && !seen_at(&o, seq))
		r = -ENOENT;
	if (r >= 0 && o.type != S_IFLNK)
		r = -EINVAL;
	if (r < 0)
		goto out;
	r = db_stmt(c, ST_SV_TARGET, &s);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 0);

		memcpy(buf, sqlite3_column_blob(s, 0), UTIL_MIN(n, size));
		*ret_len = n;
		r = 0;
	} else {
		r = r == SQLITE_DONE ? -ENOENT : journal_err(r);
	}
	sqlite3_reset(s);
out:
	db_conn_put(j, c);
	return r;
}

/* All xattrs of `ino` as snapshot `snap_id` saw them, serialized (cow_read_xattrs). */
static int snap_xattrs(struct journal *j, uint64_t snap_id, uint64_t ino, char **ret, size_t *ret_len)
{
	bool ro = j->flags & JOURNAL_OPEN_READONLY;
	struct jobj *mem = NULL;
	uint64_t seq, gen = 0;
	struct jconn *c;
	struct objrow o;
	int r, fd;

	r = db_conn_get(j, &c);
	if (r < 0)
		return r;
	db_read_begin(c);
	r = sv_snap_seq(c, snap_id, &seq);
	if (r >= 0)
		r = sv_obj_row(c, ino, &o);
	if (r >= 0 && !seen_at(&o, seq))
		r = -ENOENT;
	/* as snap_attr(): the first change after the snapshot may be under way */
	if (r >= 0 && !ro && (mem = obj_get(j, ino))) {
		gen = atomic_load(&mem->cow.gen);
		db_read_catch_up(c);
	}
	if (r >= 0)
		r = preserved_attr(c, ino, seq, NULL, ret, ret_len);
	if (r == 0) {
		r = sv_open_obj(j, c, ino, &o, O_PATH, &fd);
		if (r >= 0) {
			r = cow_read_xattrs(fd, ret, ret_len);
			close(fd);
		}
		if (r >= 0 && (ro || (mem && atomic_load(&mem->cow.gen) != gen))) {
			char *px = NULL;
			size_t plen = 0;

			db_read_restart(c);
			r = preserved_attr(c, ino, seq, NULL, &px, &plen);
			if (r == 1) {
				free(*ret);
				*ret = px;
				*ret_len = plen;
			}
		}
	}
	if (mem)
		obj_put(mem);
	db_conn_put(j, c);
	return r < 0 ? r : 0;
}

ssize_t journal_snap_getxattr(struct journal *j, uint64_t snap_id, uint64_t ino,
			      const char *name, void *buf, size_t size)
{
	char *xa = NULL;
	size_t xlen = 0, p = 0;
	ssize_t r;

	r = snap_xattrs(j, snap_id, ino, &xa, &xlen);
	if (r < 0)
		return r;
	r = -ENODATA;
	while (p + 4 <= xlen) {
		uint32_t nl, vl;

		memcpy(&nl, xa + p, 4);
		p += 4;
		if (p + nl + 4 > xlen)
			break;
		memcpy(&vl, xa + p + nl, 4);
		if (nl == strlen(name) && memcmp(xa + p, name, nl) == 0) {
			p += nl + 4;
			if (size == 0)
				r = vl;
			else if (size < vl)
				r = -ERANGE;
			else
				memcpy(buf, xa + p, vl), r = vl;
			break;
		}
		p += nl + 4 + vl;
	}
	free(xa);
	return r;
}

ssize_t journal_snap_listxattr(struct journal *j, uint64_t snap_id, uint64_t ino,
			       char *buf, size_t size)
{
	char *xa = NULL;
	size_t xlen = 0, p = 0, out = 0;
	ssize_t r;

	r = snap_xattrs(j, snap_id, ino, &xa, &xlen);
	if (r < 0)
		return r;
	while (p + 4 <= xlen) {
		uint32_t nl, vl;

		memcpy(&nl, xa + p, 4);
		p += 4;
		if (p + nl + 4 > xlen)
			break;
		memcpy(&vl, xa + p + nl, 4);
		if (size && out + nl + 1 > size) {
			free(xa);
			return -ERANGE;
		}
		if (size) {
			memcpy(buf + out, xa + p, nl);
			buf[out + nl] = '\0';
		}
		out += nl + 1;
		p += nl + 4 + vl;
	}
	free(xa);
	return (ssize_t)out;
}

/* ---- snapshot files ------------------------------------------------------- */

struct chunk_src {
	uint64_t chunk;
	uint64_t interval;
};

struct journal_snapfile {
	/*
	 * The opener's reference, and one per journal_snapfile_read_segs()
	 * in flight: once it has replied, the kernel may release the file
	 * while it still issues its readahead hints.
	 */
	atomic_uint refs;
	struct journal *j;
	uint64_t ino, seq;
	off_t size;
	int live_fd;                 /* the object's data now (live or orphan) */
	struct jobj *obj;            /* referenced if in memory: its cow.gen */
	uint64_t gen;                /* cow.gen the map was loaded at (+1; 0 = never) */
	struct chunk_src *map;       /* chunks with a preserved copy, sorted */
	size_t nmap;
	struct { uint64_t interval; int fd; } store[8];   /* store files opened */
	size_t nstore;
	/*
	 * Readahead hints and replies (journal_snapfile_read_segs) use store
	 * fds without f->lock: one evicted meanwhile is closed only once none
	 * is in flight.
	 */
	unsigned busy;
	int *dead;                   /* evicted store fds to close when !busy */
	size_t ndead;
	off_t seq_end;               /* end of the furthest read of the current stream */
	off_t ra_end;                /* readahead hinted up to here */
	pthread_mutex_t lock;        /* all the above but j, ino, seq, size, live_fd, obj */
};

static int load_map(struct journal_snapfile *f)
{
	struct jconn *c;
	sqlite3_stmt *s;
	struct chunk_src *v = NULL;
	size_t n = 0, cap = 0;
	int r, rc;

	r = db_conn_get(f->j, &c);
	if (r < 0)
		return r;
	r = db_stmt(c, ST_SV_CHUNKS, &s);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)f->ino);
	sqlite3_bind_int64(s, 2, (int64_t)f->seq);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct chunk_src *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n].chunk = (uint64_t)sqlite3_column_int64(s, 0);
		v[n].interval = (uint64_t)sqlite3_column_int64(s, 1);
		n++;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = journal_err(rc);
	sqlite3_reset(s);
out:
	db_conn_put(f->j, c);
	if (r < 0) {
		free(v);
		return r;
	}
	free(f->map);
	f->map = v;
	f->nmap = n;
	return 0;
}

int journal_snapfile_open(struct journal *j, uint64_t snap_id, uint64_t ino,
			  struct journal_snapfile **ret)
{
	struct journal_snapfile *f;
	struct jconn *c;
	struct objrow o;
	struct stat st;
	int r;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	atomic_init(&f->refs, 1);
	f->j = j;
	f->ino = ino;
	f->live_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	r = db_conn_get(j, &c);
	if (r < 0)
		goto fail;
	db_read_begin(c);
	r = sv_snap_seq(c, snap_id, &f->seq);
	if (r >= 0)
		r = sv_obj_row(c, ino, &o);
	if (r >= 0 && o.type != S_IFREG)
		r = o.type == S_IFDIR ? -EISDIR : -EINVAL;
	if (r >= 0 && !seen_at(&o, f->seq))
		r = -ENOENT;
	if (r >= 0)
		r = sv_open_obj(j, c, ino, &o, O_RDONLY, &f->live_fd);
	/* the size as snap_stat_conn() finds it, without opening the object twice */
	if (r >= 0)
		r = snap_attr(j, c, ino, f->seq, &o, &f->live_fd, &st);
	db_conn_put(j, c);
	if (r < 0)
		goto fail;
	f->size = st.st_size;
	f->obj = obj_get(j, ino);
	*ret = f;
	return 0;
fail:
	journal_snapfile_close(f);
	return r;
}

static int store_fd(struct journal_snapfile *f, uint64_t interval)
{
	char name[COW_STORE_NAME_MAX];
	int fd;

	for (size_t i = 0; i < f->nstore; i++)
		if (f->store[i].interval == interval)
			return f->store[i].fd;
	cow_store_name(name, f->ino, interval);
	fd = openat(f->j->cow_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (f->nstore == UTIL_ARRAY_SIZE(f->store)) {
		if (f->busy) {
			int *nd = realloc(f->dead, (f->ndead + 1) * sizeof(*nd));

			if (!nd) {
				close(fd);
				return -ENOMEM;
			}
			f->dead = nd;
			f->dead[f->ndead++] = f->store[0].fd;
		} else {
			close(f->store[0].fd);
		}
		memmove(&f->store[0], &f->store[1], sizeof(f->store[0]) * (f->nstore - 1));
		f->nstore--;
	}
	f->store[f->nstore].interval = interval;
	f->store[f->nstore].fd = fd;
	f->nstore++;
	return fd;
}

/*
 * The fd holding chunk `chunk` as the snapshot saw it. Called with the
 * stripe lock held shared and f->lock held. -ENOENT: its store file is
 * gone, which cow_garbage_free_data() does once the file holds no data
 * (the other chunks in it were freed), so a chunk still recorded there
 * was a hole when it was preserved: it reads as zeros.
 */
static int chunk_fd(struct journal_snapfile *f, uint64_t chunk)
{
	size_t lo = 0, hi;
	uint64_t gen;
	int r;

	gen = f->obj ? atomic_load(&f->obj->cow.gen) + 1 : 1;
	if (f->gen != gen) {
		r = load_map(f);
		if (r < 0)
			return r;
		f->gen = gen;
	}
	hi = f->nmap;   /* after a (re)load */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (f->map[mid].chunk < chunk)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->nmap && f->map[lo].chunk == chunk)
		return store_fd(f, f->map[lo].interval);
	return f->live_fd;
}

/* Does a preserved copy of `chunk` for this snapshot exist now? 1 yes, 0 no. */
static int copy_appeared(struct journal_snapfile *f, uint64_t chunk)
{
	struct jconn *c;
	sqlite3_stmt *s;
	int r;

	r = db_conn_get(f->j, &c);
	if (r < 0)
		return r;
	r = db_stmt(c, ST_SV_CHUNK_ONE, &s);
	if (r >= 0) {
		sqlite3_bind_int64(s, 1, (int64_t)f->ino);
		sqlite3_bind_int64(s, 2, (int64_t)chunk);
		sqlite3_bind_int64(s, 3, (int64_t)f->seq);
		r = sqlite3_step(s);
		r = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : journal_err(r);
		sqlite3_reset(s);
	}
	db_conn_put(f->j, c);
	return r;
}

/*
 * A snapshot file read in order reads its live file and its store files in
 * strides (every other chunk from each, after overwriting every other one),
 * which the backing filesystem's readahead does not see as sequential: each
 * chunk would become a small synchronous read. So when the reads form a
 * stream, ask for each fd's own chunks of the next SNAP_RA_WINDOW bytes,
 * one hint per run of chunks from one fd, a batch at a time.
 */
#define SNAP_RA_WINDOW ((off_t)8 << 20)
#define SNAP_RA_BATCH  ((off_t)1 << 20)
#define SNAP_RA_RUNS   ((size_t)(SNAP_RA_WINDOW / CHUNK) + 1)

struct ra_run {
	int fd;
	off_t off, len;
};

/*
 * The hints a read of [off, end) calls for, into `run` (SNAP_RA_RUNS long).
 * Called with the stripe lock held shared and f->lock held; the caller
 * pins the fds (f->busy) and issues them after unlocking: each hint starts
 * I/O and takes a while, and a reader should not wait for it.
 */
/* The runs of [from, to) (at most SNAP_RA_WINDOW), locks held as below. */
static size_t snap_ra_runs(struct journal_snapfile *f, off_t from, off_t to, struct ra_run *run)
{
	size_t n = 0;
	int prev = -1;

	for (off_t pos = from / CHUNK * CHUNK; pos < to; pos += CHUNK) {
		int fd = chunk_fd(f, (uint64_t)(pos / CHUNK));

		if (fd >= 0 && fd == prev)
			run[n - 1].len = UTIL_MIN(pos + CHUNK, to) - run[n - 1].off;
		else if (fd >= 0)   /* not a hole, nor an error */
			run[n++] = (struct ra_run){ .fd = fd, .off = pos,
						    .len = UTIL_MIN(pos + CHUNK, to) - pos };
		prev = fd;
	}
	return n;
}

static size_t snap_ra_plan(struct journal_snapfile *f, off_t off, off_t end, struct ra_run *run)
{
	off_t from, to;

	/*
	 * In the stream: at or before the furthest end read so far, not far
	 * behind it (several FUSE workers serve the kernel's readahead out
	 * of order). Elsewhere: a new stream may start at `end`.
	 */
	if (off > f->seq_end || off + SNAP_RA_WINDOW < f->seq_end) {
		f->seq_end = end;
		f->ra_end = end;
		if (off != 0)
			return 0;
	}
	f->seq_end = UTIL_MAX(f->seq_end, end);
	from = UTIL_MAX(f->ra_end, f->seq_end);
	to = UTIL_MIN(f->seq_end + SNAP_RA_WINDOW, f->size);
	if (to <= from || (to - from < SNAP_RA_BATCH && to < f->size))
		return 0;
	f->ra_end = to;
	return snap_ra_runs(f, from, to, run);
}

static void snap_ra_issue(const struct ra_run *run, size_t n)
{
	for (size_t i = 0; i < n; i++)
		posix_fadvise(run[i].fd, run[i].off, run[i].len, POSIX_FADV_WILLNEED);
}

/* Drop a pin (f->busy) on the store fds; the last one closes the evicted. */
static void snap_unpin(struct journal_snapfile *f)
{
	pthread_mutex_lock(&f->lock);
	if (--f->busy == 0) {
		for (size_t i = 0; i < f->ndead; i++)
			close(f->dead[i]);
		f->ndead = 0;
	}
	pthread_mutex_unlock(&f->lock);
}

off_t journal_snapfile_size(const struct journal_snapfile *f)
{
	return f->size;
}

ssize_t journal_snapfile_read(struct journal_snapfile *f, void *buf, size_t len, off_t off)
{
	pthread_rwlock_t *lk = cow_stripe(f->j, f->ino);
	struct ra_run run[SNAP_RA_RUNS];
	size_t done = 0, nrun;
	char *p = buf;

	if (off < 0)
		return -EINVAL;
	if (off >= f->size)
		return 0;
	if ((off_t)len > f->size - off)
		len = (size_t)(f->size - off);
	while (done < len) {
		off_t pos = off + (off_t)done;
		uint64_t chunk = (uint64_t)(pos / CHUNK);
		size_t n = (size_t)UTIL_MIN((off_t)(len - done), (off_t)(chunk + 1) * CHUNK - pos);
		ssize_t got;
		int fd;

		pthread_rwlock_rdlock(lk);
		pthread_mutex_lock(&f->lock);
		fd = chunk_fd(f, chunk);
		if (fd == -ENOENT)   /* a store file of holes only: freed (see chunk_fd) */
			got = 0;
		else
			got = fd < 0 ? fd : util_pread_all(fd, p + done, n, pos);
		if (got >= 0 && fd == f->live_fd && (f->j->flags & JOURNAL_OPEN_READONLY)) {
			/*
			 * Another process (the mount daemon) may be overwriting
			 * this chunk: our stripe lock does not stop it. It commits
			 * the preserved copy before it overwrites, so if no copy
			 * exists after our read, we read the old data; if one
			 * does now, read that instead.
			 */
			int k = copy_appeared(f, chunk);

			if (k > 0) {
				f->gen = 0;   /* reload the map */
				fd = chunk_fd(f, chunk);
				got = fd < 0 ? fd : util_pread_all(fd, p + done, n, pos);
			} else if (k < 0) {
				got = k;
			}
		}
		pthread_mutex_unlock(&f->lock);
		pthread_rwlock_unlock(lk);
		if (got < 0)
			return done ? (ssize_t)done : got;
		/* Past the end of the source: it was a hole (or zeros) then. */
		if ((size_t)got < n)
			memset(p + done + got, 0, n - (size_t)got);
		done += n;
	}
	/* After the read: the caller has its data sooner. */
	pthread_rwlock_rdlock(lk);
	pthread_mutex_lock(&f->lock);
	f->busy++;   /* before the plan: it may evict a store fd already in run */
	nrun = snap_ra_plan(f, off, off + (off_t)len, run);
	pthread_mutex_unlock(&f->lock);
	pthread_rwlock_unlock(lk);
	snap_ra_issue(run, nrun);
	snap_unpin(f);
	return (ssize_t)done;
}

void journal_snapfile_willneed(struct journal_snapfile *f, off_t off, off_t len)
{
	pthread_rwlock_t *lk = cow_stripe(f->j, f->ino);
	struct ra_run run[SNAP_RA_RUNS];
	off_t end;
	size_t nrun;

	if (off < 0 || off >= f->size || len <= 0)
		return;
	end = UTIL_MIN(off + UTIL_MIN(len, SNAP_RA_WINDOW), f->size);
	pthread_rwlock_rdlock(lk);
	pthread_mutex_lock(&f->lock);
	f->busy++;   /* before the lookups: they may evict a store fd already in run */
	nrun = snap_ra_runs(f, off, end, run);
	pthread_mutex_unlock(&f->lock);
	pthread_rwlock_unlock(lk);
	snap_ra_issue(run, nrun);
	snap_unpin(f);
}

/* What a read past the end of a source gives: it was a hole (or zeros) then. */
static const char snap_zeros[JOURNAL_CHUNK_SIZE];

struct src_size {
	int fd;
	off_t size;
};

/* Size of `fd` now, looked up once per fd and request in `cache`. */
static int seg_src_size(struct src_size *cache, size_t *ncache, int fd, off_t *ret)
{
	struct stat st;

	for (size_t i = 0; i < *ncache; i++)
		if (cache[i].fd == fd) {
			*ret = cache[i].size;
			return 0;
		}
	if (fstat(fd, &st) < 0)
		return -errno;
	cache[*ncache].fd = fd;
	cache[*ncache].size = st.st_size;
	(*ncache)++;
	*ret = st.st_size;
	return 0;
}

static void seg_add(struct journal_snapseg *seg, size_t *nseg, int fd, off_t pos,
		    const void *mem, size_t len)
{
	struct journal_snapseg *last = *nseg ? &seg[*nseg - 1] : NULL;

	if (len == 0)
		return;
	if (last && fd >= 0 && last->fd == fd && last->pos + (off_t)last->len == pos) {
		last->len += len;
		return;
	}
	seg[(*nseg)++] = (struct journal_snapseg){ .fd = fd, .pos = pos, .mem = mem, .len = len };
}

/*
 * The segments of [off, off + len), which is inside the file. Called with
 * the stripe lock held shared and f->lock held; `seg` has room for two per
 * chunk.
 */
static int snap_segments(struct journal_snapfile *f, size_t len, off_t off,
			 struct journal_snapseg *seg, size_t *ret_nseg)
{
	struct src_size src[JOURNAL_SNAPFILE_IO_MAX / JOURNAL_CHUNK_SIZE + 1];
	size_t nsrc = 0, nseg = 0, done = 0;

	while (done < len) {
		off_t pos = off + (off_t)done, src_size = 0;
		uint64_t chunk = (uint64_t)(pos / CHUNK);
		size_t n = (size_t)UTIL_MIN((off_t)(len - done), (off_t)(chunk + 1) * CHUNK - pos);
		size_t have;
		int fd, r;

		fd = chunk_fd(f, chunk);
		if (fd == -ENOENT) {   /* a store file of holes only: freed (see chunk_fd) */
			seg_add(seg, &nseg, -1, 0, snap_zeros, n);
			done += n;
			continue;
		}
		if (fd < 0)
			return fd;
		/* An fd buffer cannot give the zeros past the source's end. */
		r = seg_src_size(src, &nsrc, fd, &src_size);
		if (r < 0)
			return r;
		have = pos >= src_size ? 0 : (size_t)UTIL_MIN((off_t)n, src_size - pos);
		seg_add(seg, &nseg, fd, pos, NULL, have);
		seg_add(seg, &nseg, -1, 0, snap_zeros, n - have);
		done += n;
	}
	*ret_nseg = nseg;
	return 0;
}

/* A journal another process writes: copy_appeared() needs the data read. */
static int snap_read_segs_buffered(struct journal_snapfile *f, size_t len, off_t off,
				   journal_snapseg_fn reply, void *arg)
{
	struct journal_snapseg seg = { .fd = -1 };
	ssize_t got;
	void *buf;
	int r;

	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	got = journal_snapfile_read(f, buf, len, off);
	if (got < 0) {
		free(buf);
		return (int)got;
	}
	seg.mem = buf;
	seg.len = (size_t)got;
	r = reply(arg, &seg, got ? 1 : 0);
	free(buf);
	return r;
}

int journal_snapfile_read_segs(struct journal_snapfile *f, size_t len, off_t off,
			       journal_snapseg_fn reply, void *arg)
{
	struct journal_snapseg seg[2 * (JOURNAL_SNAPFILE_IO_MAX / JOURNAL_CHUNK_SIZE + 1)];
	pthread_rwlock_t *lk = cow_stripe(f->j, f->ino);
	struct ra_run run[SNAP_RA_RUNS];
	size_t nseg = 0, nrun;
	int r;

	if (off < 0)
		return -EINVAL;
	len = UTIL_MIN(len, (size_t)JOURNAL_SNAPFILE_IO_MAX);
	if (off >= f->size)
		return reply(arg, NULL, 0);
	if ((off_t)len > f->size - off)
		len = (size_t)(f->size - off);
	if (f->j->flags & JOURNAL_OPEN_READONLY)
		return snap_read_segs_buffered(f, len, off, reply, arg);
	/*
	 * The stripe lock, shared, stays held until `reply` has consumed the
	 * data: a copy-on-write of one of these chunks (preserve_range(),
	 * exclusive) would otherwise be free to record the copy and let the
	 * live chunk be overwritten between our lookup and the splice, and we
	 * would send the new data. Holding it across the reply is the price
	 * of not copying; the reply only splices page cache pages (or waits
	 * for them to be read) into /dev/fuse and never waits for a writer.
	 */
	atomic_fetch_add(&f->refs, 1);   /* dropped below, by journal_snapfile_close() */
	pthread_rwlock_rdlock(lk);
	pthread_mutex_lock(&f->lock);
	f->busy++;   /* before the lookups: they may evict a store fd already in seg */
	r = snap_segments(f, len, off, seg, &nseg);
	nrun = r < 0 ? 0 : snap_ra_plan(f, off, off + (off_t)len, run);
	pthread_mutex_unlock(&f->lock);
	if (r >= 0)
		r = reply(arg, seg, nseg);
	pthread_rwlock_unlock(lk);
	/* After the reply: the kernel can send the next read meanwhile. */
	snap_ra_issue(run, nrun);
	snap_unpin(f);
	journal_snapfile_close(f);
	return r;
}

off_t journal_snapfile_seek(struct journal_snapfile *f, off_t off, int whence)
{
	pthread_rwlock_t *lk = cow_stripe(f->j, f->ino);

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off < 0 || off >= f->size)
		return -ENXIO;
	while (off < f->size) {
		uint64_t chunk = (uint64_t)(off / CHUNK);
		off_t end = UTIL_MIN((off_t)(chunk + 1) * CHUNK, f->size), got;
		int fd;

		pthread_rwlock_rdlock(lk);
		pthread_mutex_lock(&f->lock);
		fd = chunk_fd(f, chunk);
		if (fd == -ENOENT)   /* a store file of holes only: all hole */
			got = whence == SEEK_HOLE ? off : end;
		else
			got = fd < 0 ? fd : lseek(fd, off, whence);
		if (fd >= 0 && got < 0)
			got = errno == ENXIO ? (whence == SEEK_HOLE ? off : end) : -errno;
		pthread_mutex_unlock(&f->lock);
		pthread_rwlock_unlock(lk);
		if (got < 0)
			return got;
		if (got < end)
			return whence == SEEK_DATA || got >= off ? got : off;
		off = end;
	}
	return whence == SEEK_HOLE ? f->size : -ENXIO;
}

struct journal_snapfile *journal_snapfile_ref(struct journal_snapfile *f)
{
	atomic_fetch_add(&f->refs, 1);
	return f;
}

void journal_snapfile_close(struct journal_snapfile *f)
{
	if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	if (f->live_fd >= 0)
		close(f->live_fd);
	for (size_t i = 0; i < f->nstore; i++)
		close(f->store[i].fd);
	for (size_t i = 0; i < f->ndead; i++)
		close(f->dead[i]);
	free(f->dead);
	if (f->obj)
		obj_put(f->obj);
	free(f->map);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
