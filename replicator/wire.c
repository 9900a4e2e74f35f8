/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Payload encoding, decoding and validation of every record except DATA
 * (whose bytes are compressed by the writer and checked by the reader).
 * The byte layouts are specified in docs/STREAM.md; keep the two in step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "mirrorfs/journal.h"
#include "repl_i.h"

const char *repl_rec_type_name(unsigned type)
{
	switch (type) {
	case REPL_REC_HELLO: return "hello";
	case REPL_REC_TRAILER: return "trailer";
	case REPL_REC_READY: return "ready";
	case REPL_REC_REFUSE: return "refuse";
	case REPL_REC_ACK: return "ack";
	case REPL_REC_NAK: return "nak";
	case REPL_REC_CREATE: return "create";
	case REPL_REC_LINK: return "link";
	case REPL_REC_UNLINK: return "unlink";
	case REPL_REC_RMDIR: return "rmdir";
	case REPL_REC_RENAME: return "rename";
	case REPL_REC_SETATTR: return "setattr";
	case REPL_REC_SETXATTR: return "setxattr";
	case REPL_REC_REMOVEXATTR: return "removexattr";
	case REPL_REC_DATA: return "data";
	case REPL_REC_PUNCH: return "punch";
	default: return "unknown";
	}
}

/* ---- decoding cursor -------------------------------------------------------- */

bool repl_dec_bytes(struct repl_dec *d, size_t n, const uint8_t **ret)
{
	if (d->bad || d->len - d->pos < n) {
		d->bad = true;
		return false;
	}
	*ret = d->p + d->pos;
	d->pos += n;
	return true;
}

bool repl_dec_u16(struct repl_dec *d, uint16_t *v)
{
	const uint8_t *b;

	if (!repl_dec_bytes(d, 2, &b))
		return false;
	*v = repl_get16(b);
	return true;
}

bool repl_dec_u32(struct repl_dec *d, uint32_t *v)
{
	const uint8_t *b;

	if (!repl_dec_bytes(d, 4, &b))
		return false;
	*v = repl_get32(b);
	return true;
}

bool repl_dec_u64(struct repl_dec *d, uint64_t *v)
{
	const uint8_t *b;

	if (!repl_dec_bytes(d, 8, &b))
		return false;
	*v = repl_get64(b);
	return true;
}

/* ---- UUIDs ----------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int repl_uuid_parse(const char *s, uint8_t out[16])
{
	uint8_t b[16];
	size_t n = 0;
	bool nonzero = false;

	for (size_t i = 0; i < REPL_UUID_STRLEN; i += 2) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i--;
			continue;
		}
		int hi = hexval(s[i]), lo = hi < 0 ? -1 : hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		b[n] = (uint8_t)(hi << 4 | lo);
		nonzero |= b[n] != 0;
		n++;
	}
	if (n != 16 || s[REPL_UUID_STRLEN] != '\0' || !nonzero)
		return -EINVAL;
	memcpy(out, b, 16);
	return 0;
}

void repl_uuid_format(const uint8_t in[16], char out[REPL_UUID_STRLEN + 1])
{
	snprintf(out, REPL_UUID_STRLEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8],
		 in[9], in[10], in[11], in[12], in[13], in[14], in[15]);
}

/* ---- validation -------------------------------------------------------------- */

int repl_check_name(const char *name, size_t len, const char *what, char *msg, size_t msgsz)
{
	if (!name || len == 0) {
		snprintf(msg, msgsz, "empty %s", what);
		return -EINVAL;
	}
	if (len > REPL_NAME_MAX) {
		snprintf(msg, msgsz, "%s too long (%zu bytes, at most %d)", what, len, REPL_NAME_MAX);
		return -EINVAL;
	}
	if (memchr(name, '\0', len)) {
		snprintf(msg, msgsz, "%s contains a NUL byte", what);
		return -EINVAL;
	}
	if (memchr(name, '/', len)) {
		snprintf(msg, msgsz, "%s '%.*s' contains '/'", what, (int)len, name);
		return -EINVAL;
	}
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
		snprintf(msg, msgsz, "%s '%.*s' is not allowed", what, (int)len, name);
		return -EINVAL;
	}
	return 0;
}

static int check_ino(uint64_t ino, bool allow_root, const char *what, char *msg, size_t msgsz)
{
	if (ino == 0 || ino > JOURNAL_INO_MAX || (!allow_root && ino == JOURNAL_ROOT_INO)) {
		snprintf(msg, msgsz, "invalid %s inode %" PRIu64, what, ino);
		return -EINVAL;
	}
	return 0;
}

int repl_check_xattr_name(const char *name, char *msg, size_t msgsz)
{
	static const char *const prefixes[] = { "user.", "trusted.", "security." };
	static const char *const exact[] = { "system.posix_acl_access", "system.posix_acl_default" };
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > REPL_NAME_MAX) {
		snprintf(msg, msgsz, "invalid xattr name length %zu", len);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(name, exact[i]) == 0)
			return 0;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (len > pl && strncmp(name, prefixes[i], pl) == 0)
			return 0;
	}
	snprintf(msg, msgsz, "unsupported xattr name '%s'", name);
	return -EINVAL;
}

static int check_extent(uint64_t off, uint64_t len, char *msg, size_t msgsz)
{
	if (off > INT64_MAX || len > INT64_MAX - off) {
		snprintf(msg, msgsz, "extent %" PRIu64 "+%" PRIu64 " beyond the largest file offset",
			 off, len);
		return -EFBIG;
	}
	return 0;
}

#define CHECK(expr)                  \
	do {                         \
		int r_ = (expr);     \
		if (r_ < 0)          \
			return r_;   \
	} while (0)
#define NAME(s, what) CHECK(repl_check_name((s), (s) ? strlen(s) : 0, (what), msg, msgsz))

static int check_create(const struct repl_create *c, char *msg, size_t msgsz)
{
	CHECK(check_ino(c->ino, false, "object", msg, msgsz));
	CHECK(check_ino(c->parent, true, "directory", msg, msgsz));
	NAME(c->name, "name");
	if (c->mode & ~(uint32_t)(S_IFMT | 07777))
		goto bad_mode;
	switch (c->mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK: case S_IFLNK:
		break;
	default:
		goto bad_mode;
	}
	if ((c->mode & S_IFMT) == S_IFLNK) {
		size_t tl = c->target ? strlen(c->target) : 0;
		if (tl == 0 || tl > REPL_SYMLINK_MAX) {
			snprintf(msg, msgsz, "symlink '%s' has a target of %zu bytes (1..%d)",
				 c->name, tl, REPL_SYMLINK_MAX);
			return -EINVAL;
		}
	} else if (c->target) {
		snprintf(msg, msgsz, "'%s' is not a symlink but has a target", c->name);
		return -EINVAL;
	}
	if ((c->rdev_major || c->rdev_minor) && !S_ISCHR(c->mode) && !S_ISBLK(c->mode)) {
		snprintf(msg, msgsz, "'%s' is not a device but has a device number", c->name);
		return -EINVAL;
	}
	return 0;
bad_mode:
	snprintf(msg, msgsz, "invalid mode 0%o for '%s'", c->mode, c->name);
	return -EINVAL;
}

static int check_setattr(const struct repl_setattr *a, char *msg, size_t msgsz)
{
	CHECK(check_ino(a->ino, true, "object", msg, msgsz));
	if (a->valid & ~(uint32_t)0x3f) {
		snprintf(msg, msgsz, "unknown attribute bits 0x%x", a->valid & ~0x3fu);
		return -EPROTO;
	}
	if ((a->mode & ~07777u) ||
	    (!(a->valid & REPL_ATTR_MODE) && a->mode) ||
	    (!(a->valid & REPL_ATTR_UID) && a->uid) ||
	    (!(a->valid & REPL_ATTR_GID) && a->gid) ||
	    (!(a->valid & REPL_ATTR_SIZE) && a->size) ||
	    (!(a->valid & REPL_ATTR_ATIME) && (a->atime_sec || a->atime_nsec)) ||
	    (!(a->valid & REPL_ATTR_MTIME) && (a->mtime_sec || a->mtime_nsec))) {
		snprintf(msg, msgsz, "invalid attributes for inode %" PRIu64, a->ino);
		return -EINVAL;
	}
	if (a->atime_nsec >= 1000000000u || a->mtime_nsec >= 1000000000u) {
		snprintf(msg, msgsz, "invalid timestamp for inode %" PRIu64, a->ino);
		return -EINVAL;
	}
	if (a->size > INT64_MAX) {
		snprintf(msg, msgsz, "size %" PRIu64 " too large", a->size);
		return -EFBIG;
	}
	return 0;
}

int repl_check_record(const struct repl_record *rec, char *msg, size_t msgsz)
{
	switch (rec->type) {
	case REPL_REC_HELLO: {
		uint8_t u[16];
		const struct repl_hello *h = &rec->hello;

		if (repl_uuid_parse(h->source_uuid, u) < 0) {
			snprintf(msg, msgsz, "invalid source uuid");
			return -EINVAL;
		}
		if (h->from_snap)
			NAME(h->from_snap, "from-snapshot name");
		NAME(h->to_snap, "to-snapshot name");
		if ((h->flags & ~REPL_HELLO_DELETE) || ((h->flags & REPL_HELLO_DELETE) && h->from_snap)) {
			snprintf(msg, msgsz, "invalid hello flags 0x%" PRIx32, h->flags);
			return -EINVAL;
		}
		if (h->from_snap && strcmp(h->from_snap, h->to_snap) == 0) {
			snprintf(msg, msgsz, "from- and to-snapshot are both '%s'", h->to_snap);
			return -EINVAL;
		}
		return 0;
	}
	case REPL_REC_TRAILER:
	case REPL_REC_READY:
		return 0;
	case REPL_REC_REFUSE:
	case REPL_REC_NAK:
		if (rec->status.error >= 0) {
			snprintf(msg, msgsz, "%s without an error", repl_rec_type_name(rec->type));
			return -EINVAL;
		}
		if (rec->status.message && strlen(rec->status.message) > REPL_MESSAGE_MAX) {
			snprintf(msg, msgsz, "message too long");
			return -EFBIG;
		}
		return 0;
	case REPL_REC_ACK:
		NAME(rec->ack.snapshot, "snapshot name");
		return 0;
	case REPL_REC_CREATE:
		return check_create(&rec->create, msg, msgsz);
	case REPL_REC_LINK:
		CHECK(check_ino(rec->link.ino, false, "object", msg, msgsz));
		CHECK(check_ino(rec->link.parent, true, "directory", msg, msgsz));
		NAME(rec->link.name, "name");
		return 0;
	case REPL_REC_UNLINK:
	case REPL_REC_RMDIR:
		CHECK(check_ino(rec->unlink.ino, false, "object", msg, msgsz));
		CHECK(check_ino(rec->unlink.parent, true, "directory", msg, msgsz));
		NAME(rec->unlink.name, "name");
		return 0;
	case REPL_REC_RENAME: {
		const struct repl_rename *rn = &rec->rename;

		CHECK(check_ino(rn->ino, false, "object", msg, msgsz));
		CHECK(check_ino(rn->old_parent, true, "directory", msg, msgsz));
		CHECK(check_ino(rn->new_parent, true, "directory", msg, msgsz));
		NAME(rn->old_name, "old name");
		NAME(rn->new_name, "new name");
		if (rn->flags != 0 && rn->flags != REPL_RENAME_NOREPLACE &&
		    rn->flags != REPL_RENAME_EXCHANGE) {
			snprintf(msg, msgsz, "invalid rename flags 0x%x", rn->flags);
			return -EINVAL;
		}
		if (rn->ino == rn->new_parent) {
			snprintf(msg, msgsz, "rename of inode %" PRIu64 " into itself", rn->ino);
			return -EINVAL;
		}
		return 0;
	}
	case REPL_REC_SETATTR:
		return check_setattr(&rec->setattr, msg, msgsz);
	case REPL_REC_SETXATTR:
	case REPL_REC_REMOVEXATTR:
		CHECK(check_ino(rec->xattr.ino, true, "object", msg, msgsz));
		CHECK(repl_check_xattr_name(rec->xattr.name, msg, msgsz));
		if (rec->xattr.size > REPL_XATTR_VALUE_MAX) {
			snprintf(msg, msgsz, "xattr '%s' value of %zu bytes exceeds %d",
				 rec->xattr.name, rec->xattr.size, REPL_XATTR_VALUE_MAX);
			return -EFBIG;
		}
		if (rec->type == REPL_REC_REMOVEXATTR && rec->xattr.size) {
			snprintf(msg, msgsz, "removexattr with a value");
			return -EINVAL;
		}
		if (rec->xattr.size && !rec->xattr.value) {
			snprintf(msg, msgsz, "xattr value missing");
			return -EINVAL;
		}
		return 0;
	case REPL_REC_DATA:
		CHECK(check_ino(rec->data.ino, true, "object", msg, msgsz));
		if (rec->data.length == 0 || rec->data.length > REPL_DATA_CHUNK) {
			snprintf(msg, msgsz, "data chunk of %zu bytes (1..%u)",
				 rec->data.length, REPL_DATA_CHUNK);
			return rec->data.length ? -EFBIG : -EINVAL;
		}
		return check_extent(rec->data.offset, rec->data.length, msg, msgsz);
	case REPL_REC_PUNCH:
		CHECK(check_ino(rec->punch.ino, true, "object", msg, msgsz));
		if (rec->punch.length == 0) {
			snprintf(msg, msgsz, "empty hole");
			return -EINVAL;
		}
		return check_extent(rec->punch.offset, rec->punch.length, msg, msgsz);
	}
	snprintf(msg, msgsz, "unknown record type %u", (unsigned)rec->type);
	return -EPROTO;
}

/* ---- encoding ---------------------------------------------------------------- */

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

size_t repl_payload_size(const struct repl_record *rec)
{
	/* Generous: fixed fields plus every string with its length prefix. */
	switch (rec->type) {
	case REPL_REC_HELLO:
		return 64 + slen(rec->hello.from_snap) + slen(rec->hello.to_snap);
	case REPL_REC_REFUSE:
	case REPL_REC_NAK:
		return 8 + slen(rec->status.message);
	case REPL_REC_ACK:
		return 2 + slen(rec->ack.snapshot);
	case REPL_REC_CREATE:
		return 64 + slen(rec->create.name) + slen(rec->create.target);
	case REPL_REC_LINK:
		return 24 + slen(rec->link.name);
	case REPL_REC_UNLINK:
	case REPL_REC_RMDIR:
		return 24 + slen(rec->unlink.name);
	case REPL_REC_RENAME:
		return 40 + slen(rec->rename.old_name) + slen(rec->rename.new_name);
	case REPL_REC_SETXATTR:
	case REPL_REC_REMOVEXATTR:
		return 16 + slen(rec->xattr.name) + rec->xattr.size;
	default:
		return 64;
	}
}

static void enc_str(struct repl_enc *e, const char *s)
{
	size_t n = slen(s);

	repl_enc_u16(e, (uint16_t)n);
	repl_enc_bytes(e, s, n);
}

size_t repl_payload_encode(const struct repl_record *rec, uint8_t *buf)
{
	struct repl_enc e = { .p = buf };

	switch (rec->type) {
	case REPL_REC_HELLO: {
		uint8_t u[16];

		repl_uuid_parse(rec->hello.source_uuid, u);
		repl_enc_bytes(&e, REPL_MAGIC, REPL_MAGIC_LEN);
		repl_enc_u32(&e, REPL_STREAM_VERSION);
		repl_enc_u32(&e, rec->hello.flags);
		repl_enc_bytes(&e, u, 16);
		enc_str(&e, rec->hello.from_snap);
		enc_str(&e, rec->hello.to_snap);
		break;
	}
	case REPL_REC_TRAILER:
		repl_enc_u64(&e, rec->trailer.records);
		repl_enc_u64(&e, rec->trailer.data_bytes);
		repl_enc_u32(&e, rec->trailer.digest);
		break;
	case REPL_REC_READY:
		repl_enc_u64(&e, rec->ready.resume_from);
		break;
	case REPL_REC_REFUSE:
	case REPL_REC_NAK:
		repl_enc_u32(&e, repl_code_from_errno(rec->status.error));
		enc_str(&e, rec->status.message);
		break;
	case REPL_REC_ACK:
		enc_str(&e, rec->ack.snapshot);
		break;
	case REPL_REC_CREATE:
		repl_enc_u64(&e, rec->create.ino);
		repl_enc_u64(&e, rec->create.parent);
		repl_enc_u32(&e, rec->create.mode);
		repl_enc_u32(&e, rec->create.uid);
		repl_enc_u32(&e, rec->create.gid);
		repl_enc_u32(&e, rec->create.rdev_major);
		repl_enc_u32(&e, rec->create.rdev_minor);
		enc_str(&e, rec->create.name);
		enc_str(&e, rec->create.target);
		break;
	case REPL_REC_LINK:
		repl_enc_u64(&e, rec->link.ino);
		repl_enc_u64(&e, rec->link.parent);
		enc_str(&e, rec->link.name);
		break;
	case REPL_REC_UNLINK:
	case REPL_REC_RMDIR:
		repl_enc_u64(&e, rec->unlink.parent);
		repl_enc_u64(&e, rec->unlink.ino);
		enc_str(&e, rec->unlink.name);
		break;
	case REPL_REC_RENAME:
		repl_enc_u64(&e, rec->rename.ino);
		repl_enc_u64(&e, rec->rename.old_parent);
		repl_enc_u64(&e, rec->rename.new_parent);
		repl_enc_u32(&e, rec->rename.flags);
		enc_str(&e, rec->rename.old_name);
		enc_str(&e, rec->rename.new_name);
		break;
	case REPL_REC_SETATTR: {
		const struct repl_setattr *a = &rec->setattr;

		repl_enc_u64(&e, a->ino);
		repl_enc_u32(&e, a->valid);
		repl_enc_u32(&e, a->mode);
		repl_enc_u32(&e, a->uid);
		repl_enc_u32(&e, a->gid);
		repl_enc_u64(&e, a->size);
		repl_enc_u64(&e, (uint64_t)a->atime_sec);
		repl_enc_u32(&e, a->atime_nsec);
		repl_enc_u64(&e, (uint64_t)a->mtime_sec);
		repl_enc_u32(&e, a->mtime_nsec);
		break;
	}
	case REPL_REC_SETXATTR:
	case REPL_REC_REMOVEXATTR:
		repl_enc_u64(&e, rec->xattr.ino);
		enc_str(&e, rec->xattr.name);
		if (rec->type == REPL_REC_SETXATTR) {
			repl_enc_u32(&e, (uint32_t)rec->xattr.size);
			repl_enc_bytes(&e, rec->xattr.value, rec->xattr.size);
		}
		break;
	case REPL_REC_PUNCH:
		repl_enc_u64(&e, rec->punch.ino);
		repl_enc_u64(&e, rec->punch.offset);
		repl_enc_u64(&e, rec->punch.length);
		break;
	case REPL_REC_DATA:
		break; /* the writer frames DATA itself */
	}
	return e.len;
}

/* ---- decoding ---------------------------------------------------------------- */

struct strbuf {
	char *p;
	size_t used;
};

/*
 * Decode a u16-length-prefixed string of at most `max` bytes into the
 * scratch area. An empty string yields NULL when `empty_is_null`.
 */
static int dec_str(struct repl_dec *d, struct strbuf *sb, size_t max, int over_err,
		   bool empty_is_null, bool is_name, const char *what, const char **ret,
		   char *msg, size_t msgsz)
{
	uint16_t n;
	const uint8_t *b;

	if (!repl_dec_u16(d, &n) || !repl_dec_bytes(d, n, &b))
		return 0; /* d->bad reports the framing error */
	if (is_name && n > 0) {
		int r = repl_check_name((const char *)b, n, what, msg, msgsz);
		if (r < 0)
			return r;
	}
	if (n > max) {
		snprintf(msg, msgsz, "%s too long (%u bytes, at most %zu)", what, n, max);
		return over_err;
	}
	if (memchr(b, '\0', n)) {
		snprintf(msg, msgsz, "%s contains a NUL byte", what);
		return -EINVAL;
	}
	if (n == 0 && empty_is_null) {
		*ret = NULL;
		return 0;
	}
	memcpy(sb->p + sb->used, b, n);
	sb->p[sb->used + n] = '\0';
	*ret = sb->p + sb->used;
	sb->used += (size_t)n + 1;
	return 0;
}

#define DSTR(max, err, null, isname, what, out)                                         \
	do {                                                                            \
		int r_ = dec_str(&d, &sb, (max), (err), (null), (isname), (what), (out), \
				 msg, msgsz);                                           \
		if (r_ < 0)                                                             \
			return r_;                                                      \
	} while (0)

/* Messages from the peer are shown to a user: no control characters. */
static void sanitize(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int repl_payload_decode(unsigned type, const uint8_t *buf, size_t len,
			struct repl_record *rec, char *scratch, char *msg, size_t msgsz)
{
	struct repl_dec d = { .p = buf, .len = len };
	struct strbuf sb = { .p = scratch };
	const uint8_t *b;

	switch (type) {
	case REPL_REC_HELLO: {
		uint32_t version = 0, flags;

		if (!repl_dec_bytes(&d, REPL_MAGIC_LEN, &b) || memcmp(b, REPL_MAGIC, REPL_MAGIC_LEN)) {
			snprintf(msg, msgsz, "not a mirrorfs stream (bad magic)");
			return -EBADMSG;
		}
		/* The version comes before anything whose layout it may change. */
		if (repl_dec_u32(&d, &version) && version != REPL_STREAM_VERSION) {
			snprintf(msg, msgsz, "unsupported stream version %" PRIu32
				 " (this mirrorfs speaks %d)", version, REPL_STREAM_VERSION);
			return -EPROTONOSUPPORT;
		}
		rec->hello.version = version;
		if (repl_dec_u32(&d, &flags) && (flags & ~REPL_HELLO_DELETE)) {
			snprintf(msg, msgsz, "unknown hello flags 0x%" PRIx32, flags);
			return -EPROTO;
		}
		rec->hello.flags = flags;
		if (repl_dec_bytes(&d, 16, &b))
			repl_uuid_format(b, rec->hello.source_uuid);
		DSTR(REPL_NAME_MAX, -EINVAL, true, true, "from-snapshot name", &rec->hello.from_snap);
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "to-snapshot name", &rec->hello.to_snap);
		break;
	}
	case REPL_REC_TRAILER:
		repl_dec_u64(&d, &rec->trailer.records);
		repl_dec_u64(&d, &rec->trailer.data_bytes);
		repl_dec_u32(&d, &rec->trailer.digest);
		break;
	case REPL_REC_READY:
		repl_dec_u64(&d, &rec->ready.resume_from);
		break;
	case REPL_REC_REFUSE:
	case REPL_REC_NAK: {
		uint32_t code = 0;

		repl_dec_u32(&d, &code);
		rec->status.error = repl_code_to_errno(code);
		DSTR(REPL_MESSAGE_MAX, -EFBIG, false, false, "message", &rec->status.message);
		sanitize((char *)rec->status.message);
		break;
	}
	case REPL_REC_ACK:
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "snapshot name", &rec->ack.snapshot);
		break;
	case REPL_REC_CREATE:
		repl_dec_u64(&d, &rec->create.ino);
		repl_dec_u64(&d, &rec->create.parent);
		repl_dec_u32(&d, &rec->create.mode);
		repl_dec_u32(&d, &rec->create.uid);
		repl_dec_u32(&d, &rec->create.gid);
		repl_dec_u32(&d, &rec->create.rdev_major);
		repl_dec_u32(&d, &rec->create.rdev_minor);
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "name", &rec->create.name);
		DSTR(REPL_SYMLINK_MAX, -EINVAL, true, false, "symlink target", &rec->create.target);
		break;
	case REPL_REC_LINK:
		repl_dec_u64(&d, &rec->link.ino);
		repl_dec_u64(&d, &rec->link.parent);
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "name", &rec->link.name);
		break;
	case REPL_REC_UNLINK:
	case REPL_REC_RMDIR:
		repl_dec_u64(&d, &rec->unlink.parent);
		repl_dec_u64(&d, &rec->unlink.ino);
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "name", &rec->unlink.name);
		break;
	case REPL_REC_RENAME:
		repl_dec_u64(&d, &rec->rename.ino);
		repl_dec_u64(&d, &rec->rename.old_parent);
		repl_dec_u64(&d, &rec->rename.new_parent);
		repl_dec_u32(&d, &rec->rename.flags);
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "old name", &rec->rename.old_name);
		DSTR(REPL_NAME_MAX, -EINVAL, false, true, "new name", &rec->rename.new_name);
		break;
	case REPL_REC_SETATTR: {
		struct repl_setattr *a = &rec->setattr;
		uint64_t at = 0, mt = 0;

		repl_dec_u64(&d, &a->ino);
		repl_dec_u32(&d, &a->valid);
		repl_dec_u32(&d, &a->mode);
		repl_dec_u32(&d, &a->uid);
		repl_dec_u32(&d, &a->gid);
		repl_dec_u64(&d, &a->size);
		repl_dec_u64(&d, &at);
		repl_dec_u32(&d, &a->atime_nsec);
		repl_dec_u64(&d, &mt);
		repl_dec_u32(&d, &a->mtime_nsec);
		a->atime_sec = (int64_t)at;
		a->mtime_sec = (int64_t)mt;
		break;
	}
	case REPL_REC_SETXATTR:
	case REPL_REC_REMOVEXATTR: {
		repl_dec_u64(&d, &rec->xattr.ino);
		DSTR(REPL_NAME_MAX, -EINVAL, false, false, "xattr name", &rec->xattr.name);
		rec->xattr.value = NULL;
		rec->xattr.size = 0;
		if (type == REPL_REC_SETXATTR) {
			uint32_t vl = 0;

			if (repl_dec_u32(&d, &vl) && vl > REPL_XATTR_VALUE_MAX) {
				snprintf(msg, msgsz, "xattr value of %" PRIu32 " bytes exceeds %d",
					 vl, REPL_XATTR_VALUE_MAX);
				return -EFBIG;
			}
			if (repl_dec_bytes(&d, vl, &b)) {
				rec->xattr.value = vl ? b : NULL;
				rec->xattr.size = vl;
			}
		}
		break;
	}
	case REPL_REC_PUNCH:
		repl_dec_u64(&d, &rec->punch.ino);
		repl_dec_u64(&d, &rec->punch.offset);
		repl_dec_u64(&d, &rec->punch.length);
		break;
	default:
		snprintf(msg, msgsz, "unknown record type %u", type);
		return -EPROTO;
	}
	if (d.bad || d.pos != d.len) {
		snprintf(msg, msgsz, "malformed %s payload (%zu bytes)", repl_rec_type_name(type), len);
		return -EBADMSG;
	}
	return 0;
}
