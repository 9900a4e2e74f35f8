/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stream reader: buffers input from a transport and returns records
 * only after every check in docs/STREAM.md §Receiver validation passed.
 * Any failure is final: the reader keeps the error and its message.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

#include "repl_i.h"

#define IN_CAP (REPL_REC_OVERHEAD + REPL_PAYLOAD_MAX + 256u * 1024)
#define DCTX_WINDOW_LOG_MAX 21   /* 2 MiB: a DATA chunk is at most 1 MiB */

enum reader_state {
	R_IDLE,   /* stream role: expecting HELLO or a clean end; replies role: always */
	R_BODY,   /* after HELLO: body records, then TRAILER */
};

struct repl_reader {
	struct repl_transport *t;   /* borrowed */
	enum repl_reader_role role;
	ZSTD_DCtx *dctx;

	uint8_t *in;                /* input buffer: [pos, len) not yet consumed */
	size_t pos, len;
	uint8_t *data;              /* decompressed DATA chunk */
	char scratch[REPL_SCRATCH_SIZE];

	enum reader_state state;
	bool body_started;          /* a body record arrived since HELLO */
	bool ready;                 /* the receiver set the resume point (sent READY) */
	bool seen_any;              /* a record was accepted on this reader */
	uint64_t next_seq;
	uint64_t records, data_bytes;
	uint32_t digest;

	int error;
	char errmsg[320];
};

int repl_reader_new(struct repl_transport *t, enum repl_reader_role role,
		    struct repl_reader **ret)
{
	struct repl_reader *r;
	int e;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->t = t;
	r->role = role;
	r->in = malloc(IN_CAP);
	r->data = malloc(REPL_DATA_CHUNK);
	r->dctx = ZSTD_createDCtx();
	if (!r->in || !r->data || !r->dctx) {
		e = -ENOMEM;
		goto fail;
	}
	e = repl_zstd_err(ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, DCTX_WINDOW_LOG_MAX));
	if (e < 0)
		goto fail;
	*ret = r;
	return 0;
fail:
	repl_reader_free(r);
	return e;
}

void repl_reader_free(struct repl_reader *r)
{
	if (!r)
		return;
	ZSTD_freeDCtx(r->dctx);
	free(r->in);
	free(r->data);
	free(r);
}

const char *repl_reader_errmsg(const struct repl_reader *r)
{
	return r->errmsg;
}

/* Where we are, for messages: "record 17", "stream header", "reply". */
static void where(const struct repl_reader *r, char *buf, size_t sz)
{
	if (r->role == REPL_READ_REPLIES)
		snprintf(buf, sz, "reply");
	else if (r->state == R_IDLE)
		snprintf(buf, sz, "stream header");
	else
		snprintf(buf, sz, "record %" PRIu64, r->next_seq);
}

static int reader_fail(struct repl_reader *r, int e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reader_fail(struct repl_reader *r, int e, const char *fmt, ...)
{
	char at[48], what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	where(r, at, sizeof(at));
	snprintf(r->errmsg, sizeof(r->errmsg), "%s: %s", at, what);
	r->error = e;
	return e;
}

/* Make n bytes available at in+pos; returns n, fewer at end of input, or -errno. */
static ssize_t fill(struct repl_reader *r, size_t n)
{
	if (r->len - r->pos >= n)
		return (ssize_t)n;
	if (r->pos > 0) {
		memmove(r->in, r->in + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	while (r->len < n) {
		ssize_t k = repl_transport_read(r->t, r->in + r->len, IN_CAP - r->len);

		if (k < 0)
			return k;
		if (k == 0)
			break;
		r->len += (size_t)k;
	}
	return (ssize_t)(r->len < n ? r->len : n);
}

static bool type_known(unsigned type)
{
	return (type >= REPL_REC_HELLO && type <= REPL_REC_NAK) || repl_type_is_body(type);
}

/* Is `type` allowed here? */
static int check_order(struct repl_reader *r, unsigned type)
{
	bool ok;

	if (r->role == REPL_READ_REPLIES)
		ok = type >= REPL_REC_READY && type <= REPL_REC_NAK;
	else if (r->state == R_IDLE)
		ok = type == REPL_REC_HELLO;
	else if (!r->ready)
		/* The receiver refused the last HELLO: only a new one may come. */
		ok = type == REPL_REC_HELLO;
	else
		ok = repl_type_is_body(type) || type == REPL_REC_TRAILER;
	if (!ok)
		return reader_fail(r, -EPROTO, "unexpected %s record", repl_rec_type_name(type));
	return 0;
}

static int decode_data(struct repl_reader *r, unsigned flags, const uint8_t *p, size_t plen,
		       struct repl_record *rec)
{
	const uint8_t *src = p + REPL_DATA_FIXED;
	size_t srclen, z;
	char msg[200];
	int e;

	if (plen < REPL_DATA_FIXED)
		return reader_fail(r, -EBADMSG, "malformed data payload (%zu bytes)", plen);
	srclen = plen - REPL_DATA_FIXED;
	rec->data.ino = repl_get64(p);
	rec->data.offset = repl_get64(p + 8);
	rec->data.length = repl_get32(p + 16);
	e = repl_check_record(rec, msg, sizeof(msg));
	if (e < 0)
		return reader_fail(r, e, "%s", msg);
	if (!(flags & REPL_F_ZSTD)) {
		if (srclen != rec->data.length)
			return reader_fail(r, -EBADMSG, "data of %zu bytes declared as %zu",
					   srclen, rec->data.length);
		rec->data.data = src;
		return 0;
	}
	/* Exactly one frame, with its content size and checksum, of the declared size. */
	z = ZSTD_findFrameCompressedSize(src, srclen);
	if (ZSTD_isError(z) || z != srclen)
		return reader_fail(r, -EBADMSG, "data is not one zstd frame");
	/*
	 * RFC 8878: magic (4 bytes), then the frame header descriptor whose
	 * bit 2 is Content_Checksum_flag. We require it: the content checksum
	 * is what proves the decompressed bytes are the sender's.
	 */
	if (ZSTD_getFrameContentSize(src, srclen) != rec->data.length || srclen < 5 ||
	    !(src[4] & 0x04))
		return reader_fail(r, -EBADMSG, "zstd frame header does not match the data record");
	z = ZSTD_decompressDCtx(r->dctx, r->data, rec->data.length, src, srclen);
	e = repl_zstd_err(z);
	if (e < 0)
		return reader_fail(r, e, "cannot decompress data: %s", repl_zstd_reason(z));
	if (z != rec->data.length)
		return reader_fail(r, -EBADMSG, "data decompressed to %zu bytes, not %zu",
				   z, rec->data.length);
	rec->data.data = r->data;
	return 0;
}

static int check_trailer(struct repl_reader *r, const struct repl_trailer *tr)
{
	if (tr->records != r->records || tr->data_bytes != r->data_bytes)
		return reader_fail(r, -EPROTO,
				   "trailer counts %" PRIu64 " records, %" PRIu64 " data bytes;"
				   " received %" PRIu64 " records, %" PRIu64 " data bytes",
				   tr->records, tr->data_bytes, r->records, r->data_bytes);
	if (tr->digest != r->digest)
		return reader_fail(r, -EBADMSG, "stream digest mismatch");
	return 0;
}

int repl_reader_next(struct repl_reader *r, struct repl_record *ret)
{
	struct repl_record rec;
	const uint8_t *h, *p;
	unsigned type, flags;
	uint32_t plen, crc;
	uint64_t seq;
	char msg[256];
	ssize_t k;
	int e;

	if (r->error)
		return r->error;

	k = fill(r, REPL_HDR_SIZE);
	if (k < 0)
		return reader_fail(r, (int)k, "cannot read from %s: %s", r->t->peer, strerror((int)-k));
	/* between streams, which includes after a HELLO the receiver refused */
	if (k == 0 && (r->state == R_IDLE || (r->role == REPL_READ_STREAM && !r->ready)))
		return 0;
	if (k == 0)
		return reader_fail(r, -EBADMSG, "stream truncated before the trailer");
	if ((size_t)k < REPL_HDR_SIZE)
		return reader_fail(r, -EBADMSG, "truncated record header (%zd of %u bytes)",
				   k, REPL_HDR_SIZE);
	h = r->in + r->pos;
	crc = repl_crc32c(0, h, 16);
	if (crc != repl_get32(h + 16))
		return reader_fail(r, -EBADMSG, "header checksum mismatch%s",
				   !r->seen_any ?
				   " (not a mirrorfs stream?)" : "");
	type = repl_get16(h);
	flags = repl_get16(h + 2);
	plen = repl_get32(h + 4);
	seq = repl_get64(h + 8);

	if (plen > REPL_PAYLOAD_MAX)
		return reader_fail(r, -EFBIG, "payload of %" PRIu32 " bytes exceeds the limit of %u",
				   plen, REPL_PAYLOAD_MAX);
	if (!type_known(type))
		return reader_fail(r, -EPROTO, "unknown record type %u", type);
	e = check_order(r, type);
	if (e < 0)
		return e;
	if ((flags & ~REPL_F_KNOWN) || (flags && type != REPL_REC_DATA))
		return reader_fail(r, -EPROTO, "unknown flags 0x%x on a %s record", flags,
				   repl_rec_type_name(type));
	if (repl_type_is_body(type) || type == REPL_REC_TRAILER) {
		if (seq != r->next_seq)
			return reader_fail(r, -EPROTO, "out of sequence (%s record with seq %" PRIu64 ")",
					   repl_rec_type_name(type), seq);
	} else if (seq != 0) {
		return reader_fail(r, -EPROTO, "%s record with seq %" PRIu64 ", not 0",
				   repl_rec_type_name(type), seq);
	}

	k = fill(r, REPL_REC_OVERHEAD + plen);
	if (k < 0)
		return reader_fail(r, (int)k, "cannot read from %s: %s", r->t->peer, strerror((int)-k));
	if ((size_t)k < REPL_REC_OVERHEAD + plen)
		return reader_fail(r, -EBADMSG, "truncated %s record (%zd of %zu bytes)",
				   repl_rec_type_name(type), k, (size_t)REPL_REC_OVERHEAD + plen);
	h = r->in + r->pos;
	p = h + REPL_HDR_SIZE;
	crc = repl_crc32c(crc, p, plen);
	if (crc != repl_get32(p + plen))
		return reader_fail(r, -EBADMSG, "checksum mismatch");

	memset(&rec, 0, sizeof(rec));
	rec.type = type;
	rec.seq = seq;
	if (type == REPL_REC_DATA) {
		e = decode_data(r, flags, p, plen, &rec);
		if (e < 0)
			return e;
	} else {
		e = repl_payload_decode(type, p, plen, &rec, r->scratch, msg, sizeof(msg));
		if (e == 0)
			e = repl_check_record(&rec, msg, sizeof(msg));
		if (e < 0)
			return reader_fail(r, e, "%s", msg);
	}

	/* Accepted: advance the state. */
	switch (type) {
	case REPL_REC_HELLO:
		r->state = R_BODY;
		r->body_started = false;
		r->ready = false;
		r->next_seq = 1;
		r->records = r->data_bytes = 0;
		r->digest = 0;
		break;
	case REPL_REC_TRAILER:
		e = check_trailer(r, &rec.trailer);
		if (e < 0)
			return e;
		r->state = R_IDLE;
		break;
	default:
		if (repl_type_is_body(type)) {
			uint8_t c[4];

			repl_put32(c, crc);
			r->digest = repl_crc32c(r->digest, c, 4);
			r->records++;
			if (type == REPL_REC_DATA)
				r->data_bytes += rec.data.length;
			r->next_seq++;
			r->body_started = true;
		}
		break;
	}
	r->pos += REPL_REC_OVERHEAD + plen;
	r->seen_any = true;
	*ret = rec;
	return 1;
}

int repl_reader_set_resume(struct repl_reader *r, uint64_t resume_from)
{
	if (r->role != REPL_READ_STREAM || r->state != R_BODY || r->ready)
		return reader_fail(r, -EPROTO, "resume point set outside the start of a stream");
	if (resume_from >= UINT64_MAX - 1)
		return reader_fail(r, -EINVAL, "invalid resume point");
	r->next_seq = resume_from + 1;
	r->ready = true;
	return 0;
}
