/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MIRRORFS_REPL_H
#define MIRRORFS_REPL_H

/*
 * The replicator's foundation: the mirroring stream (docs/STREAM.md), its
 * writer and validating reader, the transports it travels over, URL
 * parsing, and the ssh key helpers used by `peer bootstrap`.
 *
 * Errors: functions return >= 0 on success and -errno on failure; ret_*
 * outputs are untouched on failure. A reader or writer keeps a human message
 * for its last error (repl_reader_errmsg(), repl_writer_errmsg()); the
 * object-less functions (URL parsing, transports, keys) leave theirs in a
 * per-thread buffer read with repl_last_errmsg(), as libgit2's
 * git_error_last() does. Messages are lowercase, subject first, cause last.
 *
 * Threads: a writer, a reader and a transport belong to one thread at a
 * time (each holds a zstd context or an ssh session). Nothing here is
 * shared between threads.
 *
 * Ownership: a `struct X **ret` result is owned by the caller and freed with
 * X's _free/_close. Pointers inside a struct repl_record returned by the
 * reader are borrowed and valid until the next repl_reader_next() call.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- limits and constants (docs/STREAM.md §Limits) ----------------------- */

#define REPL_STREAM_VERSION 2
#define REPL_NAME_MAX 255              /* directory entry, snapshot, xattr name */
#define REPL_SYMLINK_MAX 4095          /* symlink target bytes */
#define REPL_XATTR_VALUE_MAX 65536     /* 64 KiB */
#define REPL_MESSAGE_MAX 1024          /* REFUSE/NAK message bytes */
#define REPL_DATA_CHUNK 1048576u       /* logical bytes per DATA record (fixed) */
#define REPL_PAYLOAD_MAX (REPL_DATA_CHUNK + 4096u)
#define REPL_UUID_STRLEN 36            /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */

/* Last error message of an object-less repl_ call in this thread ("" if none). */
const char *repl_last_errmsg(void);

/* CRC-32C (Castagnoli), as used by every record. crc = 0 to start. */
uint32_t repl_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same without the CPU's crc32 instruction (what other CPUs use; tests). */
uint32_t repl_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* ---- records ------------------------------------------------------------- */

enum repl_rec_type {
	/* handshake, sender -> receiver */
	REPL_REC_HELLO = 1,
	REPL_REC_TRAILER = 2,
	/* replies, receiver -> sender */
	REPL_REC_READY = 3,
	REPL_REC_REFUSE = 4,
	REPL_REC_ACK = 5,
	REPL_REC_NAK = 6,
	/* body, sender -> receiver, sequence numbers 1..N */
	REPL_REC_CREATE = 16,
	REPL_REC_LINK = 17,
	REPL_REC_UNLINK = 18,
	REPL_REC_RMDIR = 19,
	REPL_REC_RENAME = 20,
	REPL_REC_SETATTR = 21,
	REPL_REC_SETXATTR = 22,
	REPL_REC_REMOVEXATTR = 23,
	REPL_REC_DATA = 24,
	REPL_REC_PUNCH = 25,
};

/* "hello", "create", ... ("unknown" for anything else). */
const char *repl_rec_type_name(unsigned type);

/* HELLO flags */
#define REPL_HELLO_DELETE 0x1u   /* not a stream: delete snapshot `to_snap` (from NULL);
				    answered by ACK (deleted or absent) or REFUSE */

struct repl_hello {
	uint32_t version;                 /* reader: always REPL_STREAM_VERSION */
	uint32_t flags;                   /* REPL_HELLO_* */
	char source_uuid[REPL_UUID_STRLEN + 1];
	const char *from_snap;            /* P; NULL = none (a full stream) */
	const char *to_snap;              /* S */
};

struct repl_trailer {
	uint64_t records;    /* body records carried by this connection (after resume) */
	uint64_t data_bytes; /* logical DATA bytes carried by this connection */
	uint32_t digest;     /* CRC-32C over those records' bytes, as sent */
};

struct repl_ready {
	uint64_t resume_from; /* last body seq the receiver has durably applied; 0 = all */
};

/* REFUSE and NAK. */
struct repl_status {
	int error;            /* -errno (mapped from the wire code) */
	const char *message;  /* for the user; may be "" */
};

struct repl_ack {
	const char *snapshot; /* S, now complete on the replica */
};

struct repl_create {
	uint64_t ino;         /* new object's jino */
	uint64_t parent;      /* directory jino */
	const char *name;
	uint32_t mode;        /* S_IFREG|S_IFDIR|S_IFLNK|S_IFIFO|S_IFSOCK|S_IFCHR|S_IFBLK | 07777 */
	uint32_t uid, gid;
	uint32_t rdev_major, rdev_minor; /* S_IFCHR/S_IFBLK only, else 0 */
	const char *target;   /* S_IFLNK only, else NULL */
};

struct repl_link {
	uint64_t ino;         /* existing object */
	uint64_t parent;      /* directory of the new name */
	const char *name;
};

/* UNLINK (non-directory) and RMDIR. */
struct repl_unlink {
	uint64_t parent;
	const char *name;
	uint64_t ino;         /* the object the name must refer to */
};

enum repl_rename_flags {
	REPL_RENAME_NOREPLACE = 1 << 0,
	REPL_RENAME_EXCHANGE = 1 << 1,
};

struct repl_rename {
	uint64_t ino;         /* object at old_parent/old_name */
	uint64_t old_parent;
	const char *old_name;
	uint64_t new_parent;
	const char *new_name;
	uint32_t flags;       /* 0, REPL_RENAME_NOREPLACE or REPL_RENAME_EXCHANGE */
};

enum repl_attr_valid {
	REPL_ATTR_MODE = 1 << 0,   /* permission bits only (07777) */
	REPL_ATTR_UID = 1 << 1,
	REPL_ATTR_GID = 1 << 2,
	REPL_ATTR_SIZE = 1 << 3,
	REPL_ATTR_ATIME = 1 << 4,
	REPL_ATTR_MTIME = 1 << 5,
};

struct repl_setattr {
	uint64_t ino;
	uint32_t valid;       /* REPL_ATTR_*; fields not named must be zero */
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t atime_sec, mtime_sec;
	uint32_t atime_nsec, mtime_nsec; /* < 1e9: concrete times, never UTIME_NOW */
};

/* SETXATTR and REMOVEXATTR (value NULL/0). */
struct repl_xattr {
	uint64_t ino;
	const char *name;     /* user.*, trusted.*, security.*, system.posix_acl_{access,default} */
	const void *value;
	size_t size;          /* <= REPL_XATTR_VALUE_MAX */
};

struct repl_data {
	uint64_t ino;
	uint64_t offset;
	const void *data;     /* reader: decompressed, borrowed */
	size_t length;        /* reader: 1..REPL_DATA_CHUNK */
};

/* A hole: [offset, offset+length) reads as zeros and holds no data. */
struct repl_punch {
	uint64_t ino;
	uint64_t offset, length;
};

struct repl_record {
	enum repl_rec_type type;
	uint64_t seq;
	union {
		struct repl_hello hello;
		struct repl_trailer trailer;
		struct repl_ready ready;
		struct repl_status status;    /* REFUSE, NAK */
		struct repl_ack ack;
		struct repl_create create;
		struct repl_link link;
		struct repl_unlink unlink;    /* UNLINK, RMDIR */
		struct repl_rename rename;
		struct repl_setattr setattr;
		struct repl_xattr xattr;      /* SETXATTR, REMOVEXATTR */
		struct repl_data data;
		struct repl_punch punch;
	};
};

/* ---- transports ---------------------------------------------------------- */

struct repl_transport;

struct repl_transport_ops {
	/*
	 * Read what is available, blocking for at least one byte: returns
	 * 1..len, 0 at end of stream, or -errno (-ETIMEDOUT after
	 * t->timeout_ms without progress). The reader buffers on top.
	 */
	ssize_t (*read)(struct repl_transport *t, void *buf, size_t len);
	/* Write all `len` bytes or fail with -errno (-EPIPE: peer gone). */
	int (*write)(struct repl_transport *t, const void *buf, size_t len);
	/* Signal end of stream to the peer, release everything, free t. */
	int (*close)(struct repl_transport *t);
};

/*
 * A byte stream to a peer. Implementations embed this as their first
 * member; tests may implement their own ops.
 */
struct repl_transport {
	const struct repl_transport_ops *ops;
	int timeout_ms;       /* per read/write without progress; -1 = none */
	char peer[320];       /* for messages: "ssh://u@h:22", "pid 123", "memory" */
};

static inline ssize_t repl_transport_read(struct repl_transport *t, void *buf, size_t len)
{
	return t->ops->read(t, buf, len);
}
/* Read exactly len bytes: returns len, fewer only at end of stream, or -errno. */
ssize_t repl_transport_read_full(struct repl_transport *t, void *buf, size_t len);
static inline int repl_transport_write(struct repl_transport *t, const void *buf, size_t len)
{
	return t->ops->write(t, buf, len);
}
/* NULL-safe. For a spawned child, also waits for it (-ECHILD if it failed). */
int repl_transport_close(struct repl_transport *t);

/*
 * A transport over file descriptors: read from `in_fd`, write to `out_fd`
 * (may be the same socket). With `take_ownership` they are closed by
 * repl_transport_close(). Writes never raise SIGPIPE on sockets.
 */
int repl_transport_fd_new(int in_fd, int out_fd, bool take_ownership,
			  struct repl_transport **ret);

/*
 * fork/exec argv (argv[0] searched in PATH) with its stdin and stdout
 * connected to the returned transport (a socketpair); stderr is inherited.
 * The transport's close sends end-of-stream and reaps the child.
 */
int repl_transport_spawn(char *const argv[], struct repl_transport **ret);

/*
 * An in-memory transport for tests and tools: reads come from a copy of
 * `in` (then end of stream), writes are appended to an output buffer.
 */
int repl_transport_mem_new(const void *in, size_t in_len, struct repl_transport **ret);
/* The bytes written so far (borrowed, valid until the next write/close). */
void repl_transport_mem_output(struct repl_transport *t, const void **ret_buf, size_t *ret_len);

/* ---- URLs ---------------------------------------------------------------- */

enum repl_url_scheme {
	REPL_URL_FILE = 1,   /* file:///abs/path */
	REPL_URL_SSH,        /* ssh://[user@]host[:port]/abs/path, host may be [v6] */
};

struct repl_url {
	enum repl_url_scheme scheme;
	char *user;          /* NULL: libssh's default (the local user name) */
	char *host;          /* without brackets; NULL for file:// */
	uint16_t port;       /* 22 unless given; 0 for file:// */
	char *path;          /* absolute */
};

/*
 * Parse and validate. Errors (-EINVAL, message in repl_last_errmsg()):
 * unknown scheme, missing or relative path, empty host, bad port, bad
 * user name, control characters, a file:// authority other than
 * "localhost". No percent-decoding: paths are taken literally.
 */
int repl_url_parse(const char *s, struct repl_url *ret);
/* Free the strings of *u and zero it. NULL-safe. */
void repl_url_release(struct repl_url *u);
/* "ssh://user@host:port/path" or "file:///path" (malloc'd). */
char *repl_url_format(const struct repl_url *u);

/* ---- ssh ------------------------------------------------------------------ */

/*
 * Connect to url (REPL_URL_SSH), check the server's host key, then
 * authenticate as url->user with the private key in `identity_file`, open a
 * session channel and exec `remote_command` (normally replaced by the
 * key's forced command). The session stays open until the transport is
 * closed, so one connection carries any number of streams.
 *
 * Host key: its SHA256 fingerprint ("SHA256:" + unpadded base64, as
 * ssh-keygen -l prints it) must equal `pinned_fingerprint`, checked before
 * authenticating; mismatch is -EKEYREJECTED. With pinned_fingerprint NULL
 * any key is accepted (trust on first use) and its fingerprint returned in
 * *ret_fingerprint (malloc'd; may be NULL if not wanted).
 *
 * Ciphers: aes128-gcm@openssh.com, then chacha20-poly1305@openssh.com, then
 * aes128-ctr; ssh-level compression off (the stream is zstd already).
 * Errors: -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH/... from the TCP connect,
 * -EKEYREJECTED host key mismatch, -EACCES authentication failed, -ENOENT
 * identity file missing, -EIO other ssh failures; message in
 * repl_last_errmsg().
 */
int repl_ssh_connect(const struct repl_url *url, const char *identity_file,
		     const char *pinned_fingerprint, const char *remote_command,
		     struct repl_transport **ret, char **ret_fingerprint);

/* "mirrorfs serve --replica 'PATH'" with PATH shell-quoted (malloc'd). */
char *repl_ssh_serve_command(const char *replica_path);

/*
 * Generate an ed25519 key pair: the private key (OpenSSH format) goes to
 * `private_path`, created with mode 0600 (-EEXIST if it exists), the public
 * line to `private_path`.pub (0644). *ret_public_line (malloc'd, may be
 * NULL if not wanted) is "ssh-ed25519 AAAA... comment", ready for
 * authorized_keys.
 */
int repl_key_generate(const char *private_path, const char *comment,
		      char **ret_public_line);
/* SHA256 fingerprint of a public key file (e.g. ssh_host_ed25519_key.pub). */
int repl_key_fingerprint_file(const char *public_path, char **ret_fingerprint);
/* SHA256 fingerprint of an OpenSSH public key line "type base64 [comment]". */
int repl_key_fingerprint_line(const char *public_line, char **ret_fingerprint);

/* ---- stream writer ------------------------------------------------------- */

struct repl_writer;

struct repl_writer_opts {
	int level;            /* zstd level; 0 = 1 (fast); negative levels allowed */
	size_t flush_at;      /* flush the buffer when it holds this much; 0 = 256 KiB */
};

/* `t` is borrowed and must outlive the writer. `opts` may be NULL. */
int repl_writer_new(struct repl_transport *t, const struct repl_writer_opts *opts,
		    struct repl_writer **ret);
/* NULL-safe. Does not flush. */
void repl_writer_free(struct repl_writer *w);
/* Message for the writer's last error. */
const char *repl_writer_errmsg(const struct repl_writer *w);

/*
 * Sender side. hello() starts a stream (seq 0) and flushes; after the
 * receiver's READY, set_resume(K) makes the writer count but not send body
 * records with seq <= K (DATA chunks are not even compressed). The caller
 * must produce the same records in the same order for the same (P, S);
 * DATA is split in REPL_DATA_CHUNK pieces relative to `offset`, so it
 * must also pass the same extents. trailer() ends the stream and flushes.
 * A transport error is sticky: every later call returns it.
 */
int repl_writer_hello(struct repl_writer *w, const struct repl_hello *h);
int repl_writer_set_resume(struct repl_writer *w, uint64_t resume_from);
int repl_writer_create(struct repl_writer *w, const struct repl_create *c);
int repl_writer_link(struct repl_writer *w, const struct repl_link *l);
int repl_writer_unlink(struct repl_writer *w, const struct repl_unlink *u);
int repl_writer_rmdir(struct repl_writer *w, const struct repl_unlink *u);
int repl_writer_rename(struct repl_writer *w, const struct repl_rename *r);
int repl_writer_setattr(struct repl_writer *w, const struct repl_setattr *a);
int repl_writer_setxattr(struct repl_writer *w, const struct repl_xattr *x);
int repl_writer_removexattr(struct repl_writer *w, uint64_t ino, const char *name);
/* Any length; emitted as ceil(len / REPL_DATA_CHUNK) DATA records. */
int repl_writer_data(struct repl_writer *w, uint64_t ino, uint64_t offset,
		     const void *buf, size_t len);
int repl_writer_punch(struct repl_writer *w, uint64_t ino, uint64_t offset, uint64_t length);
int repl_writer_trailer(struct repl_writer *w);
/* Receiver side; each flushes. `error` is -errno. */
int repl_writer_ready(struct repl_writer *w, uint64_t resume_from);
int repl_writer_refuse(struct repl_writer *w, int error, const char *message);
int repl_writer_ack(struct repl_writer *w, const char *snapshot);
int repl_writer_nak(struct repl_writer *w, int error, const char *message);

int repl_writer_flush(struct repl_writer *w);
/* Sequence number the next body record will get. */
uint64_t repl_writer_next_seq(const struct repl_writer *w);

/*
 * For tests and tools only: emit one record of any type with a raw payload,
 * bypassing validation. Body types take the next body seq; others seq 0.
 */
int repl_writer_raw(struct repl_writer *w, unsigned type, unsigned flags,
		    const void *payload, size_t len);

/* ---- stream reader ------------------------------------------------------- */

struct repl_reader;

enum repl_reader_role {
	REPL_READ_STREAM,   /* receiver: HELLO, body..., TRAILER, HELLO, ... */
	REPL_READ_REPLIES,  /* sender: READY, REFUSE, ACK, NAK */
};

/* `t` is borrowed and must outlive the reader. */
int repl_reader_new(struct repl_transport *t, enum repl_reader_role role,
		    struct repl_reader **ret);
void repl_reader_free(struct repl_reader *r);

/*
 * Read, check and decode the next record. Returns 1 with *ret filled, 0 at a
 * clean end of input (only between streams / between replies), or:
 *   -EBADMSG          checksum mismatch, bad framing, truncation, bad zstd frame
 *   -EPROTO           sequence/order error, unknown type or flag, bad trailer
 *   -EPROTONOSUPPORT  stream version other than REPL_STREAM_VERSION
 *   -EINVAL           bad name, mode, xattr namespace, inode number, ...
 *   -EFBIG            oversized payload, value, data chunk or extent
 *   transport errors as returned by the transport
 * with the reason in repl_reader_errmsg(). After an error the reader is
 * unusable (every call returns the same error): the stream is abandoned.
 * The TRAILER is returned only after the reader checked its counts and
 * digest; the caller acknowledges only after seeing it.
 */
int repl_reader_next(struct repl_reader *r, struct repl_record *ret);
/*
 * Receiver, after HELLO: the resume point it sent in READY (0 = from the
 * start). Required before body records are accepted; a receiver that sent
 * REFUSE instead does not call it, and then only a new HELLO is accepted.
 */
int repl_reader_set_resume(struct repl_reader *r, uint64_t resume_from);
const char *repl_reader_errmsg(const struct repl_reader *r);

/* ---- sender and receiver ------------------------------------------------- */

/*
 * The two ends of mirroring (DESIGN §5, docs/STREAM.md §The change set):
 * repl_send() turns the journal's change set between two snapshots into a
 * stream, repl_serve() applies streams to a replica through the journal's
 * mutation API and snapshots it. Both run on the calling thread and own
 * nothing but what they create; the journal and the transport are
 * borrowed. Errors are -errno with the reason in repl_last_errmsg().
 */

struct journal;

/* The receiver's directory for objects between their names (root entry). */
#define REPL_STAGING_NAME ".mirrorfs.recv"

struct repl_send_progress {
	uint64_t bytes_done;    /* logical data bytes of the change set handled so far */
	uint64_t bytes_total;   /* estimate: total of the changed ranges (holes included) */
	uint64_t files_done;    /* regular files whose changed data is done */
	uint64_t files_total;   /* regular files with changed data */
	uint64_t records;       /* body records produced so far (skipped ones included) */
};

struct repl_send_opts {
	int level;              /* zstd level; 0 = 1 */
	/*
	 * A one-way stream (`mirrorfs send > FILE`): no READY is awaited (the
	 * stream starts at record 1) and no ACK; repl_send() returns once the
	 * TRAILER is written.
	 */
	bool one_way;
	/*
	 * Find the change set by comparing the snapshot trees, guided by
	 * rctime (journal_diff_scan()), instead of reading the change log.
	 */
	bool scan;
	/* Called at most every progress_interval_ms (0 = 250) and at the end. */
	void (*progress)(void *arg, const struct repl_send_progress *p);
	void *progress_arg;
	int progress_interval_ms;
};

struct repl_send_stats {
	uint64_t resumed_from;  /* K of the receiver's READY (0: from the start) */
	uint64_t records;       /* body records of the stream, N */
	uint64_t records_sent;  /* those sent on this connection, N - K */
	uint64_t data_bytes;    /* logical DATA bytes sent on this connection */
	uint64_t wire_bytes;    /* bytes written to the transport (framed, compressed) */
	uint64_t files;         /* regular files with changed data */
	int64_t duration_ns;
};

/*
 * Send the changes from snapshot `from_snap` (NULL: a full stream) to
 * `to_snap` of journal `j` over `t`: HELLO, wait for READY(K) or REFUSE,
 * the body from record K + 1, TRAILER, wait for ACK or NAK. The body is
 * read from journal_diff() and the snapshot views only: no tree scan, no
 * live data. The caller keeps both snapshots from being deleted meanwhile
 * (journal_snap_hold()). Safe to call again on the same transport for the
 * next stream after a success or a REFUSE.
 *
 * Errors: -ENOENT a snapshot does not exist, -EINVAL `from` is not older
 * than `to`; the receiver's REFUSE/NAK code (message prefixed with the
 * peer); -EPROTO and the reader's codes for a bad reply; transport and
 * journal errors. *ret_stats (may be NULL) is filled on success, and on a
 * failure after the stream started (what the interrupted attempt carried).
 */
int repl_send(struct journal *j, const char *from_snap, const char *to_snap,
	      struct repl_transport *t, const struct repl_send_opts *o,
	      struct repl_send_stats *ret_stats);

/*
 * Delete snapshot `name` on the replica at the other end of `t` (a snapshot
 * deleted on the source): HELLO with REPL_HELLO_DELETE, answered by ACK
 * (deleted, or absent already) or REFUSE (-errno, the reason in
 * repl_last_errmsg()). The replica refuses to delete its newest snapshot.
 */
int repl_send_delete(struct journal *j, const char *name, struct repl_transport *t);

struct repl_serve_opts {
	/*
	 * The input is one stream from a file (`mirrorfs receive < FILE`): no
	 * replies are written, a REFUSE becomes the return value, and the
	 * stream always starts at record 1 (records the replica already applied
	 * in an interrupted receive are skipped).
	 */
	bool one_way;
	/* Persist the resume position every save_every records (0 = 256) ... */
	unsigned save_every;
	/* ... or save_interval_ms after the last save (0 = 1000), whichever is first. */
	int save_interval_ms;
	/*
	 * Start writing the replica's data back (a syncfs() on a thread of its
	 * own) after every flush_every bytes of DATA (0 = 128 MiB), so that the
	 * syncfs() before the snapshot does not wait for the whole stream.
	 */
	uint64_t flush_every;
};

struct repl_serve_stats {
	uint64_t streams;          /* streams completed (ACKed, including retries) */
	uint64_t refused;          /* HELLOs answered with REFUSE */
	uint64_t records_applied;  /* body records applied, all streams */
	uint64_t resumed_from;     /* K of the last stream */
	uint64_t flushes;          /* background syncfs() started (flush_every) */
	char last_snapshot[REPL_NAME_MAX + 1]; /* S of the last completed stream, or "" */
};

/*
 * The receiving end (`mirrorfs serve --replica DIR`): read streams from `t`
 * until a clean end of input, apply each to the replica, snapshot it and
 * acknowledge. `j` is the replica's open journal, or NULL: then the journal
 * of `replica_dir` (absolute) is opened for each stream and closed after
 * it, so the replica is locked (journal_open() -EBUSY: "replica is busy")
 * only while a stream is applied.
 *
 * Guards, answered with REFUSE (the connection goes on): another source
 * owns the replica; the source is the replica itself; `from` missing or
 * not the replica's newest snapshot; a full stream into a replica that has
 * snapshots or entries; `to` exists (unless it is a retry of the stream
 * that made it: then ACK); a partially applied stream to another snapshot.
 *
 * Every record is applied idempotently by (directory jino, name) with *at()
 * calls, checking the jino a name must refer to; the resume position is
 * saved as configured. After a good TRAILER the staging directory is
 * removed, the replica synced and snapshot `to` taken, then ACK. Any
 * failure answers NAK and ends the connection with that error; the
 * replica's snapshots are untouched and a later retry resumes.
 *
 * Returns 0 at a clean end of input (one_way: after one good stream).
 * *ret_stats (may be NULL) is filled in every case.
 */
int repl_serve(struct journal *j, const char *replica_dir, struct repl_transport *t,
	       const struct repl_serve_opts *o, struct repl_serve_stats *ret_stats);

/* ---- foreign errors ------------------------------------------------------- */

/* The one translation of a zstd result code to -errno (0 if not an error). */
int repl_zstd_err(size_t code);

#endif /* MIRRORFS_REPL_H */
