/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stream writer: frames records (docs/STREAM.md), compresses DATA with
 * one reused zstd context, and batches small records in a buffer that is
 * flushed when it reaches `flush_at` and at the explicit points of the
 * protocol (after HELLO, TRAILER and every reply).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

#include "repl_i.h"

#define DEFAULT_FLUSH_AT (256u * 1024)
/* Incompressible-data probe: compress this much first, give up if it does not shrink. */
#define SAMPLE_SIZE (64u * 1024)
/* Send compressed only if it is at most 95% of the raw size. */
#define WORTH(n) ((n) - (n) / 20)

struct repl_writer {
	struct repl_transport *t;   /* borrowed */
	ZSTD_CCtx *cctx;
	uint8_t *buf;
	size_t len, cap, flush_at;

	bool in_stream;             /* between HELLO and TRAILER */
	uint64_t next_seq;          /* next body seq */
	uint64_t resume_from;       /* body records <= this are counted, not sent */
	uint64_t records, data_bytes;
	uint32_t digest;

	int error;                  /* sticky transport error */
	char errmsg[256];
};

static int writer_fail(struct repl_writer *w, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int writer_fail(struct repl_writer *w, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
	va_end(ap);
	return r;
}

int repl_writer_new(struct repl_transport *t, const struct repl_writer_opts *opts,
		    struct repl_writer **ret)
{
	struct repl_writer *w;
	int level = opts && opts->level ? opts->level : 1;
	int r;

	if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
		return repl_fail(-EINVAL, "invalid zstd level %d (%d..%d)", level,
				 ZSTD_minCLevel(), ZSTD_maxCLevel());
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->t = t;
	w->flush_at = opts && opts->flush_at ? opts->flush_at : DEFAULT_FLUSH_AT;
	/* Room for the batch plus one maximal record, so a record always fits after a flush. */
	w->cap = w->flush_at + REPL_REC_OVERHEAD + REPL_PAYLOAD_MAX;
	w->buf = malloc(w->cap);
	w->cctx = ZSTD_createCCtx();
	if (!w->buf || !w->cctx) {
		r = -ENOMEM;
		goto fail;
	}
	r = repl_zstd_err(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level));
	if (r == 0)
		r = repl_zstd_err(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1));
	if (r == 0)
		r = repl_zstd_err(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1));
	if (r < 0)
		goto fail;
	*ret = w;
	return 0;
fail:
	repl_writer_free(w);
	return r;
}

void repl_writer_free(struct repl_writer *w)
{
	if (!w)
		return;
	ZSTD_freeCCtx(w->cctx);
	free(w->buf);
	free(w);
}

const char *repl_writer_errmsg(const struct repl_writer *w)
{
	return w->errmsg;
}

uint64_t repl_writer_next_seq(const struct repl_writer *w)
{
	return w->next_seq;
}

int repl_writer_flush(struct repl_writer *w)
{
	int r;

	if (w->error)
		return w->error;
	if (w->len == 0)
		return 0;
	r = repl_transport_write(w->t, w->buf, w->len);
	if (r < 0) {
		w->error = r;
		return writer_fail(w, r, "cannot send to %s: %s", w->t->peer, strerror(-r));
	}
	w->len = 0;
	return 0;
}

/* Make room for a record with up to `max_payload` bytes; returns the payload area. */
static int reserve(struct repl_writer *w, size_t max_payload, uint8_t **ret)
{
	int r;

	if (w->error)
		return w->error;
	if (max_payload > REPL_PAYLOAD_MAX)
		return writer_fail(w, -EFBIG, "record payload of %zu bytes exceeds %u",
				   max_payload, REPL_PAYLOAD_MAX);
	if (w->len + REPL_REC_OVERHEAD + max_payload > w->cap) {
		r = repl_writer_flush(w);
		if (r < 0)
			return r;
	}
	*ret = w->buf + w->len + REPL_HDR_SIZE;
	return 0;
}

/* Frame the payload placed by reserve(): header, checksums, digest, maybe flush. */
static int commit(struct repl_writer *w, unsigned type, unsigned flags, uint64_t seq,
		  size_t plen)
{
	uint8_t *h = w->buf + w->len;
	uint32_t crc;

	repl_put16(h, (uint16_t)type);
	repl_put16(h + 2, (uint16_t)flags);
	repl_put32(h + 4, (uint32_t)plen);
	repl_put64(h + 8, seq);
	crc = repl_crc32c(0, h, 16);
	repl_put32(h + 16, crc);
	crc = repl_crc32c(crc, h + REPL_HDR_SIZE, plen);
	repl_put32(h + REPL_HDR_SIZE + plen, crc);
	w->len += REPL_REC_OVERHEAD + plen;
	if (repl_type_is_body(type)) {
		uint8_t c[4];

		repl_put32(c, crc);
		w->digest = repl_crc32c(w->digest, c, 4);
		w->records++;
	}
	if (w->len >= w->flush_at)
		return repl_writer_flush(w);
	return 0;
}

/* Encode and frame a validated record. */
static int put(struct repl_writer *w, const struct repl_record *rec, bool flush)
{
	uint8_t *p = NULL;
	size_t n;
	int r;

	r = reserve(w, repl_payload_size(rec), &p);
	if (r < 0)
		return r;
	n = repl_payload_encode(rec, p);
	r = commit(w, rec->type, 0, rec->seq, n);
	if (r == 0 && flush)
		r = repl_writer_flush(w);
	return r;
}

static int emit(struct repl_writer *w, const struct repl_record *rec, bool flush)
{
	int r = repl_check_record(rec, w->errmsg, sizeof(w->errmsg));

	return r < 0 ? r : put(w, rec, flush);
}

/* Body records: take the next seq; skip (successfully) what the receiver already has. */
static int emit_body(struct repl_writer *w, struct repl_record *rec)
{
	int r;

	if (!w->in_stream)
		return writer_fail(w, -EPROTO, "%s record outside a stream",
				   repl_rec_type_name(rec->type));
	r = repl_check_record(rec, w->errmsg, sizeof(w->errmsg));
	if (r < 0)
		return r;
	rec->seq = w->next_seq++;
	if (rec->seq <= w->resume_from)
		return 0;
	return put(w, rec, false);
}

int repl_writer_hello(struct repl_writer *w, const struct repl_hello *h)
{
	struct repl_record rec = { .type = REPL_REC_HELLO, .hello = *h };

	/* A new HELLO may follow one the receiver refused (nothing sent since). */
	if (w->in_stream && w->next_seq != 1)
		return writer_fail(w, -EPROTO, "hello inside a stream");
	rec.hello.version = REPL_STREAM_VERSION;
	w->next_seq = 1;
	w->resume_from = 0;
	w->records = w->data_bytes = 0;
	w->digest = 0;
	int r = emit(w, &rec, true);
	if (r == 0)
		w->in_stream = true;
	return r;
}

int repl_writer_set_resume(struct repl_writer *w, uint64_t resume_from)
{
	if (!w->in_stream || w->next_seq != 1)
		return writer_fail(w, -EPROTO, "resume point set after the stream started");
	w->resume_from = resume_from;
	return 0;
}

int repl_writer_create(struct repl_writer *w, const struct repl_create *c)
{
	struct repl_record rec = { .type = REPL_REC_CREATE, .create = *c };

	return emit_body(w, &rec);
}

int repl_writer_link(struct repl_writer *w, const struct repl_link *l)
{
	struct repl_record rec = { .type = REPL_REC_LINK, .link = *l };

	return emit_body(w, &rec);
}

int repl_writer_unlink(struct repl_writer *w, const struct repl_unlink *u)
{
	struct repl_record rec = { .type = REPL_REC_UNLINK, .unlink = *u };

	return emit_body(w, &rec);
}

int repl_writer_rmdir(struct repl_writer *w, const struct repl_unlink *u)
{
	struct repl_record rec = { .type = REPL_REC_RMDIR, .unlink = *u };

	return emit_body(w, &rec);
}

int repl_writer_rename(struct repl_writer *w, const struct repl_rename *rn)
{
	struct repl_record rec = { .type = REPL_REC_RENAME, .rename = *rn };

	return emit_body(w, &rec);
}

int repl_writer_setattr(struct repl_writer *w, const struct repl_setattr *a)
{
	struct repl_record rec = { .type = REPL_REC_SETATTR, .setattr = *a };

	return emit_body(w, &rec);
}

int repl_writer_setxattr(struct repl_writer *w, const struct repl_xattr *x)
{
	struct repl_record rec = { .type = REPL_REC_SETXATTR, .xattr = *x };

	return emit_body(w, &rec);
}

int repl_writer_removexattr(struct repl_writer *w, uint64_t ino, const char *name)
{
	struct repl_record rec = {
		.type = REPL_REC_REMOVEXATTR,
		.xattr = { .ino = ino, .name = name },
	};

	return emit_body(w, &rec);
}

int repl_writer_punch(struct repl_writer *w, uint64_t ino, uint64_t offset, uint64_t length)
{
	struct repl_record rec = {
		.type = REPL_REC_PUNCH,
		.punch = { .ino = ino, .offset = offset, .length = length },
	};

	return emit_body(w, &rec);
}

/*
 * Compress `n` bytes into dst if that saves at least 5%: returns the frame
 * size, 0 to send raw, or -errno.
 */
static ssize_t try_compress(struct repl_writer *w, uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t z;
	int r;

	if (n >= 2 * SAMPLE_SIZE) {
		/* Probe: don't spend a whole chunk's CPU on incompressible data. */
		z = ZSTD_compress2(w->cctx, dst, WORTH(n), src, SAMPLE_SIZE);
		r = repl_zstd_err(z);
		if (r == -ENOBUFS || (r == 0 && z > WORTH(SAMPLE_SIZE)))
			return 0;
		if (r < 0)
			return writer_fail(w, r, "cannot compress: %s", repl_zstd_reason(z));
	}
	z = ZSTD_compress2(w->cctx, dst, WORTH(n), src, n);
	r = repl_zstd_err(z);
	if (r == -ENOBUFS)
		return 0;
	if (r < 0)
		return writer_fail(w, r, "cannot compress: %s", repl_zstd_reason(z));
	return (ssize_t)z;
}

static int emit_data_chunk(struct repl_writer *w, uint64_t seq, uint64_t ino, uint64_t off,
			   const uint8_t *src, size_t n)
{
	uint8_t *p = NULL;
	ssize_t z;
	unsigned flags = 0;
	int r;

	r = reserve(w, REPL_DATA_FIXED + n, &p);
	if (r < 0)
		return r;
	repl_put64(p, ino);
	repl_put64(p + 8, off);
	repl_put32(p + 16, (uint32_t)n);
	z = try_compress(w, p + REPL_DATA_FIXED, src, n);
	if (z < 0)
		return (int)z;
	if (z > 0) {
		flags = REPL_F_ZSTD;
	} else {
		memcpy(p + REPL_DATA_FIXED, src, n);
		z = (ssize_t)n;
	}
	w->data_bytes += n;
	return commit(w, REPL_REC_DATA, flags, seq, REPL_DATA_FIXED + (size_t)z);
}

int repl_writer_data(struct repl_writer *w, uint64_t ino, uint64_t offset,
		     const void *buf, size_t len)
{
	const uint8_t *src = buf;
	struct repl_record rec = {
		.type = REPL_REC_DATA,
		.data = { .ino = ino, .offset = offset, .length = 1 },
	};
	int r;

	if (!w->in_stream)
		return writer_fail(w, -EPROTO, "data record outside a stream");
	r = repl_check_record(&rec, w->errmsg, sizeof(w->errmsg));
	if (r < 0)
		return r;
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return writer_fail(w, -EFBIG, "extent %" PRIu64 "+%zu beyond the largest file offset",
				   offset, len);
	while (len > 0) {
		size_t n = len < REPL_DATA_CHUNK ? len : REPL_DATA_CHUNK;
		uint64_t seq = w->next_seq++;

		if (seq > w->resume_from) {
			r = emit_data_chunk(w, seq, ino, offset, src, n);
			if (r < 0)
				return r;
		}
		src += n;
		offset += n;
		len -= n;
	}
	return 0;
}

int repl_writer_trailer(struct repl_writer *w)
{
	struct repl_record rec = { .type = REPL_REC_TRAILER };
	int r;

	if (!w->in_stream)
		return writer_fail(w, -EPROTO, "trailer outside a stream");
	if (w->next_seq - 1 < w->resume_from)
		return writer_fail(w, -EPROTO,
				   "receiver resumes after record %" PRIu64
				   " but the stream has only %" PRIu64,
				   w->resume_from, w->next_seq - 1);
	rec.seq = w->next_seq;
	rec.trailer.records = w->records;
	rec.trailer.data_bytes = w->data_bytes;
	rec.trailer.digest = w->digest;
	r = emit(w, &rec, true);
	if (r == 0)
		w->in_stream = false;
	return r;
}

int repl_writer_ready(struct repl_writer *w, uint64_t resume_from)
{
	struct repl_record rec = { .type = REPL_REC_READY, .ready.resume_from = resume_from };

	return emit(w, &rec, true);
}

static int emit_status(struct repl_writer *w, enum repl_rec_type type, int error,
		       const char *message)
{
	struct repl_record rec = {
		.type = type,
		.status = { .error = error, .message = message },
	};
	char buf[REPL_MESSAGE_MAX + 1];

	/* A long message is cut, never a reason to fail the reply. */
	if (message && strlen(message) > REPL_MESSAGE_MAX) {
		memcpy(buf, message, REPL_MESSAGE_MAX);
		buf[REPL_MESSAGE_MAX] = '\0';
		rec.status.message = buf;
	}
	return emit(w, &rec, true);
}

int repl_writer_refuse(struct repl_writer *w, int error, const char *message)
{
	return emit_status(w, REPL_REC_REFUSE, error, message);
}

int repl_writer_nak(struct repl_writer *w, int error, const char *message)
{
	return emit_status(w, REPL_REC_NAK, error, message);
}

int repl_writer_ack(struct repl_writer *w, const char *snapshot)
{
	struct repl_record rec = { .type = REPL_REC_ACK, .ack.snapshot = snapshot };

	return emit(w, &rec, true);
}

int repl_writer_raw(struct repl_writer *w, unsigned type, unsigned flags,
		    const void *payload, size_t len)
{
	uint64_t seq = 0;
	uint8_t *p = NULL;
	int r;

	r = reserve(w, len, &p);
	if (r < 0)
		return r;
	if (repl_type_is_body(type))
		seq = w->next_seq++;
	else if (type == REPL_REC_TRAILER)
		seq = w->next_seq;
	if (len)
		memcpy(p, payload, len);
	return commit(w, type, flags, seq, len);
}
