/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The in-memory table of live objects: jino -> struct jobj and
 * (st_dev, backing st_ino) -> struct jobj, two chained hash maps over the
 * same refcounted objects, protected by j->obj_lock.
 *
 * Lifetime: the table holds one reference to every live object; a record
 * in the writer's queue holds one to each object it names, so the writer
 * can use an object whose death a later record will apply. An object
 * leaves the maps when the writer applies its death (obj_remove()), so
 * records queued before that can still find it as a parent by jino. The
 * (dev, bino) entry may go earlier: a new object whose backing inode number
 * was reused displaces it (obj_insert()).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "mirrorfs/log.h"
#include "journal_i.h"

#define OBJ_MIN_BUCKETS 1024

static inline size_t hash_ino(uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 20);
}

static inline size_t hash_bino(uint64_t dev, uint64_t bino)
{
	uint64_t h = (bino ^ (dev * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 20);
}

struct jobj *obj_new(uint64_t ino, uint64_t dev, uint64_t bino, uint32_t type)
{
	struct jobj *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->ino = ino;
	o->dev = dev;
	o->bino = bino;
	o->type = type & S_IFMT;
	o->nlink = 1;
	atomic_init(&o->refcnt, 1);
	atomic_init(&o->dead, false);
	atomic_init(&o->dirty_tag, 0);
	return o;
}

struct jobj *obj_ref(struct jobj *o)
{
	if (o)
		atomic_fetch_add_explicit(&o->refcnt, 1, memory_order_relaxed);
	return o;
}

void obj_put(struct jobj *o)
{
	if (!o)
		return;
	if (atomic_fetch_sub_explicit(&o->refcnt, 1, memory_order_acq_rel) == 1) {
		cow_state_release(&o->cow);
		free(o);
	}
}

static struct jobj *find_ino_locked(struct journal *j, uint64_t ino)
{
	struct jobj *o;

	if (!j->objs.nbuckets)
		return NULL;
	o = j->objs.by_ino[hash_ino(ino) & (j->objs.nbuckets - 1)];
	while (o && o->ino != ino)
		o = o->next_ino;
	return o;
}

static struct jobj **find_bino_slot(struct journal *j, uint64_t dev, uint64_t bino)
{
	struct jobj **p = &j->objs.by_bino[hash_bino(dev, bino) & (j->objs.nbuckets - 1)];

	while (*p && ((*p)->dev != dev || (*p)->bino != bino))
		p = &(*p)->next_bino;
	return p;
}

struct jobj *obj_get(struct journal *j, uint64_t ino)
{
	struct jobj *o;

	pthread_rwlock_rdlock(&j->obj_lock);
	o = obj_ref(find_ino_locked(j, ino));
	pthread_rwlock_unlock(&j->obj_lock);
	return o;
}

struct jobj *obj_get_bino(struct journal *j, uint64_t dev, uint64_t bino)
{
	struct jobj *o = NULL;

	pthread_rwlock_rdlock(&j->obj_lock);
	if (j->objs.nbuckets)
		o = obj_ref(*find_bino_slot(j, dev, bino));
	pthread_rwlock_unlock(&j->obj_lock);
	return o;
}

static int objtab_resize(struct journal *j, size_t nb)
{
	struct jobj **bi, **bb;
	size_t old = j->objs.nbuckets;

	bi = calloc(nb, sizeof(*bi));
	bb = calloc(nb, sizeof(*bb));
	if (!bi || !bb) {
		free(bi);
		free(bb);
		return -ENOMEM;
	}
	for (size_t i = 0; i < old; i++) {
		struct jobj *o, *next;
		for (o = j->objs.by_ino[i]; o; o = next) {
			size_t h = hash_ino(o->ino) & (nb - 1);
			next = o->next_ino;
			o->next_ino = bi[h];
			bi[h] = o;
		}
		for (o = j->objs.by_bino[i]; o; o = next) {
			size_t h = hash_bino(o->dev, o->bino) & (nb - 1);
			next = o->next_bino;
			o->next_bino = bb[h];
			bb[h] = o;
		}
	}
	free(j->objs.by_ino);
	free(j->objs.by_bino);
	j->objs.by_ino = bi;
	j->objs.by_bino = bb;
	j->objs.nbuckets = nb;
	return 0;
}

/* The table or a row holds `ino`: keep source_ino_max above it (journal_i.h). */
static void raise_source_ino_max(struct journal *j, uint64_t ino)
{
	uint64_t cur = atomic_load(&j->source_ino_max);

	if (ino >= JOURNAL_LOCAL_INO_BASE)
		return;
	while (cur < ino && !atomic_compare_exchange_weak(&j->source_ino_max, &cur, ino))
		;
}

static int insert_locked(struct journal *j, struct jobj *o, bool unique, struct jobj **ret_existing)
{
	struct jobj **slot, *old;
	size_t h;
	int r;

	if (j->objs.count + 1 > j->objs.nbuckets) {
		r = objtab_resize(j, j->objs.nbuckets ? j->objs.nbuckets * 2 : OBJ_MIN_BUCKETS);
		if (r < 0)
			return r;
	}
	if (find_ino_locked(j, o->ino))
		return -EEXIST;  /* a jino is never in use twice */
	slot = find_bino_slot(j, o->dev, o->bino);
	old = *slot;
	if (old) {
		if (unique) {
			if (ret_existing)
				*ret_existing = obj_ref(old);
			return -EEXIST;
		}
		/* inode number reused: the old object's death is still queued */
		*slot = old->next_bino;
		old->next_bino = NULL;
	}
	o->next_bino = NULL;
	*find_bino_slot(j, o->dev, o->bino) = o;
	h = hash_ino(o->ino) & (j->objs.nbuckets - 1);
	o->next_ino = j->objs.by_ino[h];
	j->objs.by_ino[h] = o;
	j->objs.count++;
	obj_ref(o);
	raise_source_ino_max(j, o->ino);
	return 0;
}

int obj_insert(struct journal *j, struct jobj *o, bool unique, struct jobj **ret_existing)
{
	int r;

	pthread_rwlock_wrlock(&j->obj_lock);
	r = insert_locked(j, o, unique, ret_existing);
	pthread_rwlock_unlock(&j->obj_lock);
	return r;
}

void obj_remove(struct journal *j, struct jobj *o)
{
	struct jobj **p;
	bool found = false;

	if (atomic_exchange(&o->dead, true))
		return;
	pthread_rwlock_wrlock(&j->obj_lock);
	if (j->objs.nbuckets) {
		for (p = &j->objs.by_ino[hash_ino(o->ino) & (j->objs.nbuckets - 1)]; *p;
		     p = &(*p)->next_ino) {
			if (*p == o) {
				*p = o->next_ino;
				found = true;
				break;
			}
		}
		p = find_bino_slot(j, o->dev, o->bino);
		if (*p == o)
			*p = o->next_bino;
	}
	if (found)
		j->objs.count--;
	pthread_rwlock_unlock(&j->obj_lock);
	if (found)
		obj_put(o);  /* the table's reference */
}

void obj_foreach(struct journal *j, void (*fn)(void *arg, struct jobj *o), void *arg)
{
	pthread_rwlock_rdlock(&j->obj_lock);
	for (size_t i = 0; i < j->objs.nbuckets; i++)
		for (struct jobj *o = j->objs.by_ino[i]; o; o = o->next_ino)
			fn(arg, o);
	pthread_rwlock_unlock(&j->obj_lock);
}

int obj_load(struct journal *j, sqlite3 *db)
{
	static const char sql[] =
		"SELECT o.ino, o.dev, o.bino, o.type, o.size, o.nlink, "
		"  CASE WHEN (o.type & 61440) = 16384 THEN "
		"    (SELECT parent FROM ns WHERE ns.ino = o.ino AND ns.died_seq IS NULL LIMIT 1) "
		"  END, r.rctime "
		"FROM objects o LEFT JOIN rstat r ON r.ino = o.ino WHERE o.died_seq IS NULL";
	sqlite3_stmt *s = NULL;
	size_t nb = OBJ_MIN_BUCKETS;
	int64_t count = 0;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM objects WHERE died_seq IS NULL", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		count = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return journal_err(rc);
	while ((int64_t)nb < count)
		nb *= 2;

	pthread_rwlock_wrlock(&j->obj_lock);
	if (j->objs.nbuckets < nb)
		r = objtab_resize(j, nb);
	pthread_rwlock_unlock(&j->obj_lock);
	if (r < 0)
		return r;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	pthread_rwlock_wrlock(&j->obj_lock);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct jobj *o = obj_new((uint64_t)sqlite3_column_int64(s, 0),
					 (uint64_t)sqlite3_column_int64(s, 1),
					 (uint64_t)sqlite3_column_int64(s, 2),
					 (uint32_t)sqlite3_column_int64(s, 3));
		if (!o) {
			r = -ENOMEM;
			break;
		}
		o->size = o->wsize = sqlite3_column_int64(s, 4);
		o->nlink = (uint32_t)sqlite3_column_int64(s, 5);
		o->parent = (uint64_t)sqlite3_column_int64(s, 6);
		o->rctime = sqlite3_column_int64(s, 7);
		r = insert_locked(j, o, false, NULL);
		obj_put(o);
		if (r < 0)
			break;
	}
	pthread_rwlock_unlock(&j->obj_lock);
	sqlite3_finalize(s);
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : journal_err(rc);
}

int obj_load_source_ino_max(struct journal *j, sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* every row counts, dead ones too: their jinos are never handed out again */
	rc = sqlite3_prepare_v2(db, "SELECT max(ino) FROM objects WHERE ino < ?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return journal_err(rc);
	sqlite3_bind_int64(s, 1, (int64_t)JOURNAL_LOCAL_INO_BASE);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		raise_source_ino_max(j, (uint64_t)sqlite3_column_int64(s, 0));
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : journal_err(rc);
}

void objtab_adopt(struct journal *j, struct objtab *from)
{
	pthread_rwlock_wrlock(&j->obj_lock);
	objtab_free(j);
	j->objs = *from;
	*from = (struct objtab){ 0 };
	for (size_t i = 0; i < j->objs.nbuckets; i++)
		for (struct jobj *o = j->objs.by_ino[i]; o; o = o->next_ino) {
			atomic_store(&o->dirty_tag, 0);
			o->wlast_seq = 0;
			o->wlast_interval = 0;
		}
	pthread_rwlock_unlock(&j->obj_lock);
}

void objtab_release(struct objtab *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct jobj *o, *next;
		for (o = t->by_ino[i]; o; o = next) {
			next = o->next_ino;
			obj_put(o);
		}
	}
	free(t->by_ino);
	free(t->by_bino);
	*t = (struct objtab){ 0 };
}

void objtab_free(struct journal *j)
{
	objtab_release(&j->objs);
}
