/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inode table: jino -> struct fs_inode (O_PATH fd of the backing
 * object, kernel lookup count, reference count), and the small helpers the
 * handlers share.
 *
 * Life of an inode: created by a lookup (or a create) with nlookup 1 and
 * refcount 1; each further lookup adds to nlookup; each handler working on
 * it holds a reference (fs_inode_get/put) so a concurrent forget cannot
 * close the fd under it. When nlookup drops to 0 the table unlinks the
 * inode and drops the lookups' reference; the last reference closes the fd.
 * An O_PATH fd follows its inode across renames and unlinks, so the fd
 * stays right for the inode's whole life.
 *
 * Descriptors (fs_i.h, struct fs_itable): past fd_max open O_PATH fds, the
 * least recently used fds of inodes no handler uses and no open file pins
 * are closed, and fs_inode_get() reopens them by file handle. Closing
 * happens outside the lock (a batch at a time).
 *
 * Lock order: fs_itable.lock is a leaf (see fs_i.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sched.h>
#include <sys/resource.h>

#include "fs_i.h"
#include "mirrorfs/log.h"
#include "mirrorfs/util.h"

#define FS_ITABLE_MIN_BUCKETS 1024

/* Bounds of fd_max: half the open file limit, the rest for open files. */
#define FS_FD_MAX_MIN 16
#define FS_FD_MAX_MAX (1U << 20)
/* fds closed per batch (outside the lock) */
#define FS_FD_BATCH 64

static size_t fs_hash(uint64_t jino, size_t nbuckets)
{
	/* Fibonacci hashing; nbuckets is a power of two. */
	return (size_t)((jino * 0x9E3779B97F4A7C15ULL) >> 32) & (nbuckets - 1);
}

int fs_itable_init(struct fs_itable *t)
{
	int r;

	t->buckets = calloc(FS_ITABLE_MIN_BUCKETS, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->nbuckets = FS_ITABLE_MIN_BUCKETS;
	t->count = 0;
	t->lru_head = t->lru_tail = NULL;
	t->nfds = 0;
	t->fd_max = FS_FD_MAX_MAX;
	t->mount_fd = -1;
	r = pthread_mutex_init(&t->lock, NULL);
	if (r != 0) {
		free(t->buckets);
		t->buckets = NULL;
		return -r;
	}
	return 0;
}

void fs_itable_release(struct fs_itable *t)
{
	if (!t->buckets)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct fs_inode *n, *next;

		for (n = t->buckets[i]; n; n = next) {
			next = n->next;
			if (n->fd >= 0)
				close(n->fd);
			free(n->handle);
			free(n);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	if (t->mount_fd >= 0)
		close(t->mount_fd);
	t->mount_fd = -1;
	pthread_mutex_destroy(&t->lock);
}

/* Called with t->lock held. */
static struct fs_inode *fs_itable_find(struct fs_itable *t, uint64_t jino)
{
	struct fs_inode *n;

	for (n = t->buckets[fs_hash(jino, t->nbuckets)]; n; n = n->next)
		if (n->jino == jino)
			return n;
	return NULL;
}

/* Called with t->lock held. Growing is best effort: a full table still works. */
static void fs_itable_grow(struct fs_itable *t)
{
	size_t nb = t->nbuckets * 2;
	struct fs_inode **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct fs_inode *n, *next;

		for (n = t->buckets[i]; n; n = next) {
			size_t h = fs_hash(n->jino, nb);

			next = n->next;
			n->next = b[h];
			b[h] = n;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* Called with t->lock held. */
static void fs_itable_insert(struct fs_itable *t, struct fs_inode *n)
{
	size_t h;

	if (t->count >= t->nbuckets)
		fs_itable_grow(t);
	h = fs_hash(n->jino, t->nbuckets);
	n->next = t->buckets[h];
	t->buckets[h] = n;
	t->count++;
}

/* Called with t->lock held. */
static void fs_itable_remove(struct fs_itable *t, struct fs_inode *n)
{
	struct fs_inode **pp = &t->buckets[fs_hash(n->jino, t->nbuckets)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			t->count--;
			return;
		}
	}
}

/* ---- the LRU of closable fds ------------------------------------------- */

/* Called with t->lock held. */
static bool fs_fd_closable(const struct fs_inode *n)
{
	return n->fd >= 0 && n->handle && n->users == 0 && n->opens == 0 && n->nlookup > 0;
}

/* Called with t->lock held. */
static void fs_lru_del(struct fs_itable *t, struct fs_inode *n)
{
	if (!n->on_lru)
		return;
	if (n->lru_prev)
		n->lru_prev->lru_next = n->lru_next;
	else
		t->lru_head = n->lru_next;
	if (n->lru_next)
		n->lru_next->lru_prev = n->lru_prev;
	else
		t->lru_tail = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
	n->on_lru = false;
}

/* Put `n` at the head if it is closable. Called with t->lock held. */
static void fs_lru_touch(struct fs_itable *t, struct fs_inode *n)
{
	fs_lru_del(t, n);
	if (!fs_fd_closable(n))
		return;
	n->lru_prev = NULL;
	n->lru_next = t->lru_head;
	if (t->lru_head)
		t->lru_head->lru_prev = n;
	else
		t->lru_tail = n;
	t->lru_head = n;
	n->on_lru = true;
}

/*
 * Take up to FS_FD_BATCH fds off the least recently used inodes while more
 * than `keep` are open; the caller closes out[0..return) after unlocking.
 * Called with t->lock held.
 */
static size_t fs_lru_trim(struct fs_itable *t, size_t keep, int out[FS_FD_BATCH])
{
	size_t k = 0;

	while (k < FS_FD_BATCH && t->nfds > keep && t->lru_tail) {
		struct fs_inode *n = t->lru_tail;

		fs_lru_del(t, n);
		out[k++] = n->fd;
		n->fd = -1;
		t->nfds--;
	}
	return k;
}

static void fs_close_all(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Close fds past the cap, a batch at a time. Called without the lock. */
static void fs_fd_trim(struct fs_itable *t)
{
	int out[FS_FD_BATCH];
	size_t k;

	pthread_mutex_lock(&t->lock);
	/* some slack so a table at the cap does not close one fd per lookup */
	k = t->nfds > t->fd_max ? fs_lru_trim(t, t->fd_max - t->fd_max / 16, out) : 0;
	pthread_mutex_unlock(&t->lock);
	fs_close_all(out, k);
}

bool fs_fd_relief(struct fs *fs)
{
	struct fs_itable *t = &fs->itable;
	int out[FS_FD_BATCH];
	size_t k, total = 0;

	do {
		pthread_mutex_lock(&t->lock);
		k = fs_lru_trim(t, t->fd_max / 4, out);
		pthread_mutex_unlock(&t->lock);
		fs_close_all(out, k);
		total += k;
	} while (k == FS_FD_BATCH);
	if (total)
		log_debug("too many open files: closed %zu cached O_PATH fds", total);
	return total > 0;
}

/*
 * A handle to reopen the object of `fd` by, or NULL if it has none on the
 * backing root's filesystem (another filesystem mounted below the backing
 * directory, or one without handles): then its fd stays open.
 */
static struct file_handle *fs_handle_of(struct fs_itable *t, int fd, const struct stat *st)
{
	struct file_handle *h;
	int mount_id;

	if (t->mount_fd < 0 || st->st_dev != t->mount_dev)
		return NULL;
	h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
	if (!h)
		return NULL;
	h->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", h, &mount_id, AT_EMPTY_PATH) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

/* Reopen the closed fd of `n`, which the caller holds (users > 0). */
static int fs_inode_reopen(struct fs *fs, struct fs_inode *n)
{
	struct fs_itable *t = &fs->itable;
	struct stat st;
	int fd;

	fd = open_by_handle_at(t->mount_fd, n->handle, O_PATH | O_CLOEXEC);
	if (fd < 0 && errno == EMFILE && fs_fd_relief(fs))
		fd = open_by_handle_at(t->mount_fd, n->handle, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? -errno : -ESTALE;
	if (fstat(fd, &st) < 0 || st.st_dev != n->dev || st.st_ino != n->bino) {
		close(fd);
		return -ESTALE;
	}
	pthread_mutex_lock(&t->lock);
	if (n->fd < 0) {
		n->fd = fd;
		t->nfds++;
		fd = -1;
	}
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);   /* another handler reopened it first */
	fs_fd_trim(t);
	return 0;
}

/* The handle mount fd and the cap, from the root and the open file limit. */
static void fs_itable_setup(struct fs_itable *t, int rootfd, const struct stat *st)
{
	struct rlimit rl;
	rlim_t max = FS_FD_MAX_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur / 2;
	t->fd_max = (size_t)UTIL_MAX(UTIL_MIN(max, (rlim_t)FS_FD_MAX_MAX), (rlim_t)FS_FD_MAX_MIN);
	t->mount_fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	t->mount_dev = st->st_dev;
	if (t->mount_fd < 0)
		log_warning("cannot open the backing root for file handles (%m): every "
			    "cached inode keeps an open fd");
	log_debug("inode table: at most %zu cached O_PATH fds", t->fd_max);
}

int fs_inode_add_root(struct fs *fs, int fd, struct fs_inode **ret)
{
	struct fs_inode *n;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->jino = JOURNAL_ROOT_INO;
	n->fd = fd;
	n->dev = st.st_dev;
	n->bino = st.st_ino;
	n->type = st.st_mode & S_IFMT;
	n->nlookup = 1;     /* the kernel never forgets the root */
	n->refcount = 1;
	fs_itable_setup(&fs->itable, fd, &st);
	pthread_mutex_lock(&fs->itable.lock);
	fs_itable_insert(&fs->itable, n);
	fs->itable.nfds++;
	pthread_mutex_unlock(&fs->itable.lock);
	*ret = n;
	return 0;
}

int fs_inode_get(struct fs *fs, fuse_ino_t nodeid, struct fs_inode **ret)
{
	struct fs_inode *n;
	int fd = -1;

	/* .snap and snapshot views: the handlers dispatch them to snapdir.c first. */
	if (!fs_is_live(fs, nodeid))
		return -ESTALE;
	if (nodeid == FUSE_ROOT_ID) {
		*ret = fs->root;   /* never freed while the session runs */
		return 0;
	}
	pthread_mutex_lock(&fs->itable.lock);
	n = fs_itable_find(&fs->itable, nodeid);
	if (n) {
		n->refcount++;
		n->users++;
		fs_lru_del(&fs->itable, n);
		fd = n->fd;
	}
	pthread_mutex_unlock(&fs->itable.lock);
	if (!n)
		return -ESTALE;
	if (fd < 0) {
		int r = fs_inode_reopen(fs, n);

		if (r < 0) {
			fs_inode_put(fs, n);
			return r;
		}
	}
	*ret = n;
	return 0;
}

/* Free an inode whose last reference went; it is out of the table and the LRU. */
static void fs_inode_free(struct fs_itable *t, struct fs_inode *n)
{
	if (n->fd >= 0) {
		pthread_mutex_lock(&t->lock);
		t->nfds--;
		pthread_mutex_unlock(&t->lock);
		close(n->fd);
	}
	free(n->handle);
	free(n);
}

void fs_inode_put(struct fs *fs, struct fs_inode *n)
{
	bool last;

	if (!n || n == fs->root)
		return;
	pthread_mutex_lock(&fs->itable.lock);
	n->users--;
	last = --n->refcount == 0;
	if (!last)
		fs_lru_touch(&fs->itable, n);
	pthread_mutex_unlock(&fs->itable.lock);
	if (last)
		fs_inode_free(&fs->itable, n);
	else
		fs_fd_trim(&fs->itable);
}

void fs_inode_opened(struct fs *fs, struct fs_inode *n)
{
	if (n == fs->root)
		return;
	pthread_mutex_lock(&fs->itable.lock);
	n->opens++;
	fs_lru_del(&fs->itable, n);
	pthread_mutex_unlock(&fs->itable.lock);
}

void fs_inode_released(struct fs *fs, fuse_ino_t nodeid)
{
	struct fs_inode *n;

	if (nodeid == FUSE_ROOT_ID || !fs_is_live(fs, nodeid))
		return;
	pthread_mutex_lock(&fs->itable.lock);
	n = fs_itable_find(&fs->itable, nodeid);
	if (n && n->opens > 0) {
		n->opens--;
		fs_lru_touch(&fs->itable, n);
	}
	pthread_mutex_unlock(&fs->itable.lock);
}

int fs_inode_remember(struct fs *fs, uint64_t jino, int fd, const struct stat *bst, bool open)
{
	struct fs_itable *t = &fs->itable;
	struct fs_inode *n, *fresh;

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		close(fd);
		return -ENOMEM;
	}
	fresh->jino = jino;
	fresh->fd = fd;
	fresh->dev = bst->st_dev;
	fresh->bino = bst->st_ino;
	fresh->type = bst->st_mode & S_IFMT;
	fresh->nlookup = 1;
	fresh->refcount = 1;
	fresh->opens = open ? 1 : 0;
	fresh->handle = fs_handle_of(t, fd, bst);

	pthread_mutex_lock(&t->lock);
	n = fs_itable_find(t, jino);
	if (n) {
		n->nlookup++;
		if (open)
			n->opens++;
		if (n->fd < 0 && n->dev == bst->st_dev && n->bino == bst->st_ino) {
			n->fd = fd;   /* closed to save fds: take this one */
			t->nfds++;
			fd = -1;
		}
		fs_lru_touch(t, n);
	} else {
		fs_itable_insert(t, fresh);
		t->nfds++;
		fs_lru_touch(t, fresh);
	}
	pthread_mutex_unlock(&t->lock);

	if (n) {
		/* Known already (another name, or a racing lookup): keep the old fd. */
		if (n->dev != bst->st_dev || n->bino != bst->st_ino)
			log_debug("inode %llu: backing object changed behind the mount",
				  (unsigned long long)jino);
		if (fd >= 0)
			close(fd);
		free(fresh->handle);
		free(fresh);
	}
	fs_fd_trim(t);
	return 0;
}

void fs_inode_add_lookup(struct fs *fs, struct fs_inode *n)
{
	pthread_mutex_lock(&fs->itable.lock);
	n->nlookup++;
	pthread_mutex_unlock(&fs->itable.lock);
}

void fs_inode_forget(struct fs *fs, fuse_ino_t nodeid, uint64_t count)
{
	struct fs_inode *n;
	bool last = false;

	if (nodeid == FUSE_ROOT_ID || !fs_is_live(fs, nodeid))
		return;
	pthread_mutex_lock(&fs->itable.lock);
	n = fs_itable_find(&fs->itable, nodeid);
	if (n) {
		if (count > n->nlookup) {
			log_debug("inode %llu: forget %llu > nlookup %llu",
				  (unsigned long long)nodeid, (unsigned long long)count,
				  (unsigned long long)n->nlookup);
			count = n->nlookup;
		}
		n->nlookup -= count;
		if (n->nlookup == 0) {
			fs_itable_remove(&fs->itable, n);
			fs_lru_del(&fs->itable, n);
			last = --n->refcount == 0;
		}
	}
	pthread_mutex_unlock(&fs->itable.lock);
	if (last)
		fs_inode_free(&fs->itable, n);
}

int fs_inode_stat(const struct fs_inode *n, struct stat *ret_st)
{
	struct stat st;

	if (fstatat(n->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	st.st_ino = n->jino;
	*ret_st = st;
	return 0;
}

void fs_stat_hide_state_links(struct fs *fs, const struct fs_inode *n, struct stat *st)
{
	char name[64];
	struct stat o;

	if (n == fs->root) {
		if (S_ISDIR(st->st_mode) && st->st_nlink > 2 &&
		    fstatat(n->fd, JOURNAL_STATE_DIR, &o, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(o.st_mode))
			st->st_nlink--;
		return;
	}
	if (!S_ISREG(st->st_mode) || st->st_nlink == 0)
		return;
	snprintf(name, sizeof(name), "%s/orphans/%llu", JOURNAL_STATE_DIR,
		 (unsigned long long)n->jino);
	if (fstatat(fs->root->fd, name, &o, AT_SYMLINK_NOFOLLOW) == 0 &&
	    o.st_ino == n->bino && o.st_dev == n->dev)
		st->st_nlink--;
}

void fs_fill_entry(struct fuse_entry_param *e, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = st->st_ino;
	e->generation = 0;   /* jinos are never reused */
	e->attr = *st;
	e->attr_timeout = FS_TIMEOUT;
	e->entry_timeout = FS_TIMEOUT;
}

bool fs_is_state_dir(const struct fs_inode *parent, const char *name)
{
	return parent->jino == JOURNAL_ROOT_INO && strcmp(name, JOURNAL_STATE_DIR) == 0;
}

int fs_check_new_name(const struct fs_inode *parent, const char *name)
{
	int r = util_check_name(name);

	if (r < 0)
		return r;
	if (fs_is_state_dir(parent, name))
		return -EPERM;
	if (fs_is_snapdir(parent->jino, name))
		return -EEXIST;
	return 0;
}

int fs_do_lookup(struct fs *fs, struct fs_inode *parent, const char *name,
		 struct fuse_entry_param *ret_e)
{
	struct stat st;
	uint64_t jino;
	int fd, r;

	r = util_check_name(name);
	if (r == -ENAMETOOLONG)
		return r;
	if (r < 0 || fs_is_state_dir(parent, name))
		return -ENOENT;   /* ".", ".." are the kernel's; the state dir is hidden */

	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EMFILE && fs_fd_relief(fs))
		fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	r = journal_ino_find(fs->j, &st, &jino);
	if (r == -ENOENT) {
		/* Made behind the mount's back: adopt it. */
		r = journal_adopt(fs->j, parent->jino, name, &st, &jino);
		if (r >= 0)
			log_debug("adopted '%s' in %llu as %llu", name,
				  (unsigned long long)parent->jino, (unsigned long long)jino);
	}
	if (r < 0)
		goto fail;
	r = fs_inode_remember(fs, jino, fd, &st, false);   /* takes fd */
	if (r < 0)
		return r;
	st.st_ino = jino;
	fs_fill_entry(ret_e, &st);
	return 0;
fail:
	close(fd);
	return r;
}

/*
 * The umask of a request applies to the creation syscalls made by the
 * worker thread serving it. Each worker gets its own fs_struct
 * (unshare(CLONE_FS), once), so umask() there affects that thread only.
 */
static __thread bool fs_thread_unshared;

void fs_apply_umask(struct fs *fs, fuse_req_t req)
{
	mode_t mask = fs->dont_mask ? fuse_req_ctx(req)->umask : 0;

	if (!fs_thread_unshared) {
		if (unshare(CLONE_FS) < 0) {
			log_warning("cannot give a worker thread its own umask: %m");
			return;
		}
		fs_thread_unshared = true;
	}
	umask(mask);
}

void fs_req_cred(fuse_req_t req, struct journal_cred *ret)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	/* Designated: fields we do not set (ino: allocate a new jino) are 0. */
	*ret = (struct journal_cred){ .uid = ctx->uid, .gid = ctx->gid };
}

void fs_proc_path(int fd, char buf[FS_PROC_FD_LEN])
{
	snprintf(buf, FS_PROC_FD_LEN, "/proc/self/fd/%d", fd);
}
