/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_REPL_I_H
#define MIRRORFS_REPL_I_H

/* Private to replicator/: wire encoding helpers shared by writer and reader. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mirrorfs/repl.h"

/*
 * Record framing (docs/STREAM.md §Records):
 *   0  u16 type   2  u16 flags   4  u32 length   8  u64 seq
 *  16  u32 hcrc = crc32c(bytes 0..15)
 *  20  payload[length]
 *  20+length  u32 pcrc = crc32c continued from hcrc over the payload
 */
#define REPL_HDR_SIZE 20u
#define REPL_CRC_SIZE 4u
#define REPL_REC_OVERHEAD (REPL_HDR_SIZE + REPL_CRC_SIZE)

#define REPL_MAGIC "MIRRORFS"
#define REPL_MAGIC_LEN 8u

/* Record flags. */
#define REPL_F_ZSTD 0x0001u   /* DATA: bytes are one zstd frame */
#define REPL_F_KNOWN REPL_F_ZSTD

/* Fixed part of each payload, before variable-length fields. */
#define REPL_DATA_FIXED 20u   /* u64 ino, u64 offset, u32 length */

static inline bool repl_type_is_body(unsigned type)
{
	return type >= REPL_REC_CREATE && type <= REPL_REC_PUNCH;
}

/* ---- little-endian put/get ----------------------------------------------- */

static inline void repl_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void repl_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void repl_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t repl_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t repl_get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t repl_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* An encoding cursor over a caller-sized buffer (sizes checked beforehand). */
struct repl_enc {
	uint8_t *p;
	size_t len;
};

static inline void repl_enc_u16(struct repl_enc *e, uint16_t v) { repl_put16(e->p + e->len, v); e->len += 2; }
static inline void repl_enc_u32(struct repl_enc *e, uint32_t v) { repl_put32(e->p + e->len, v); e->len += 4; }
static inline void repl_enc_u64(struct repl_enc *e, uint64_t v) { repl_put64(e->p + e->len, v); e->len += 8; }
static inline void repl_enc_bytes(struct repl_enc *e, const void *b, size_t n)
{
	if (n)
		memcpy(e->p + e->len, b, n);
	e->len += n;
}

/* A decoding cursor; `bad` is set (and stays) when a read runs past the end. */
struct repl_dec {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

bool repl_dec_u16(struct repl_dec *d, uint16_t *v);
bool repl_dec_u32(struct repl_dec *d, uint32_t *v);
bool repl_dec_u64(struct repl_dec *d, uint64_t *v);
/* Borrow n bytes. */
bool repl_dec_bytes(struct repl_dec *d, size_t n, const uint8_t **ret);

/* ---- payloads (wire.c) ----------------------------------------------------- */

/*
 * Validation shared by the writer (refuses to send) and the reader (refuses
 * to accept). Return 0 or -EINVAL/-EFBIG/-EPROTO with a phrase in msg.
 */
int repl_check_name(const char *name, size_t len, const char *what, char *msg, size_t msgsz);
int repl_check_record(const struct repl_record *rec, char *msg, size_t msgsz);
/* An xattr name the stream carries: user.*, trusted.*, security.*, system.posix_acl_*. */
int repl_check_xattr_name(const char *name, char *msg, size_t msgsz);

/* Upper bound of the encoded payload of a non-DATA record. */
size_t repl_payload_size(const struct repl_record *rec);
/* Encode a non-DATA record's payload into buf (of repl_payload_size()). */
size_t repl_payload_encode(const struct repl_record *rec, uint8_t *buf);

/*
 * Decode a non-DATA payload. Strings are copied NUL-terminated into
 * `scratch` (REPL_SCRATCH_SIZE bytes) and rec points into it.
 * Returns 0 or -EBADMSG (framing) / -EPROTONOSUPPORT / -EFBIG, message in msg.
 * The result still needs repl_check_record().
 */
#define REPL_SCRATCH_SIZE (2 * (REPL_NAME_MAX + 1) + REPL_SYMLINK_MAX + 1 + REPL_MESSAGE_MAX + 1)
int repl_payload_decode(unsigned type, const uint8_t *buf, size_t len,
			struct repl_record *rec, char *scratch, char *msg, size_t msgsz);

/* Errors exchanged in REFUSE/NAK use portable wire codes, not errno values. */
uint32_t repl_code_from_errno(int error);
int repl_code_to_errno(uint32_t code);

/* UUID text <-> 16 bytes. */
int repl_uuid_parse(const char *s, uint8_t out[16]);
void repl_uuid_format(const uint8_t in[16], char out[REPL_UUID_STRLEN + 1]);

/* ---- errors (error.c) ---------------------------------------------------- */

/* Set the per-thread message and return r (a -errno). */
int repl_fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* zstd's reason for a code, for messages. */
const char *repl_zstd_reason(size_t code);

#endif /* MIRRORFS_REPL_I_H */
