/*
 * framewire.h: a framewire client for microcontrollers (protocol versions 1 and 2, docs/PROTOCOL.md).
 *
 * C99, no heap, no sockets, nothing beyond the C standard library. The caller owns every byte:
 * a context struct and two buffers (one for incoming messages, one for outgoing ones). Bytes move
 * through three callbacks, so the same code runs over BSD sockets, lwIP or an AT-command WiFi
 * module. Every integer is encoded byte by byte, little-endian, whatever the CPU.
 *
 * Two layers:
 *   - fw_encode_* / fw_decode_*: pure functions on buffers, no I/O (checked against
 *     docs/protocol-vectors.json by tests/test_vectors.c);
 *   - fw_handshake, fw_send_file, fw_publish*, fw_register_device, fw_poll, fw_send_text,
 *     fw_ping: whole exchanges over the transport callbacks.
 *
 * Compile with -DFRAMEWIRE_NO_BLAKE3 to leave BLAKE3 out: uploads then end without a hash, set
 * NO_RESUME on every offer, and trust the hub's Stored size (PROTOCOL.md "End without a hash").
 */
#ifndef FRAMEWIRE_H
#define FRAMEWIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- protocol constants */

/* The newest protocol version spoken (sent in Hello), and the oldest accepted in Welcome. Version
 * 2 adds the hub's answers Registered and Subscribed. */
#define FW_PROTOCOL_VERSION 2u
#define FW_MIN_PROTOCOL_VERSION 1u
#define FW_HEADER_LEN 8u
#define FW_HASH_LEN 32u

/* Message types (PROTOCOL.md 3.1). */
#define FW_MSG_HELLO 0x0001u
#define FW_MSG_WELCOME 0x0002u
#define FW_MSG_ERROR 0x0003u
#define FW_MSG_PING 0x0004u
#define FW_MSG_PONG 0x0005u
#define FW_MSG_TEXT 0x0010u
#define FW_MSG_TEXT_TO 0x0011u
#define FW_MSG_DELIVERY 0x0012u
#define FW_MSG_TEXT_FROM 0x0013u
#define FW_MSG_COMMAND 0x0020u
#define FW_MSG_REPLY 0x0021u
#define FW_MSG_REGISTER_DEVICE 0x0022u
#define FW_MSG_REGISTERED 0x0023u
#define FW_MSG_OFFER 0x0030u
#define FW_MSG_ACCEPT 0x0031u
#define FW_MSG_DATA 0x0032u
#define FW_MSG_END 0x0033u
#define FW_MSG_STORED 0x0034u
#define FW_MSG_REJECTED 0x0035u
#define FW_MSG_CANCEL 0x0036u
#define FW_MSG_GET 0x0038u
#define FW_MSG_FILE_INFO 0x0039u
#define FW_MSG_LIST 0x003Au
#define FW_MSG_LIST_PAGE 0x003Bu
#define FW_MSG_DELETE 0x003Cu
#define FW_MSG_DELETED 0x003Du
#define FW_MSG_FRAME 0x0040u
#define FW_MSG_SUBSCRIBE 0x0041u
#define FW_MSG_UNSUBSCRIBE 0x0042u
#define FW_MSG_FRAME_ACK 0x0043u
#define FW_MSG_PUBLISH 0x0044u
#define FW_MSG_SUBSCRIBED 0x0045u

/* Offer flags (PROTOCOL.md 3.2). */
#define FW_OFFER_OVERWRITE 0x01u
#define FW_OFFER_NO_RESUME 0x02u

/* Stored status. */
#define FW_STORED_NEW 0u
#define FW_STORED_REPLACED 1u
#define FW_STORED_UNCHANGED 2u

/* Reply status. */
#define FW_REPLY_OK 0u
#define FW_REPLY_FAILED 1u
#define FW_REPLY_UNKNOWN_DEVICE 2u
#define FW_REPLY_UNKNOWN_COMMAND 3u
#define FW_REPLY_TIMEOUT 4u

/* Frame formats. */
#define FW_FORMAT_JPEG 1u
#define FW_FORMAT_PNG 2u
#define FW_FORMAT_RGB8 3u
#define FW_FORMAT_GRAY8 4u

/* The hub's error codes (Error.code, Rejected.code); fw_code_name() spells them. */
#define FW_CODE_NOT_FRAMEWIRE 1u
#define FW_CODE_UNSUPPORTED_VERSION 2u
#define FW_CODE_MALFORMED 3u
#define FW_CODE_TOO_LARGE 4u
#define FW_CODE_BAD_PATH 5u
#define FW_CODE_EXISTS 6u
#define FW_CODE_HASH_MISMATCH 7u
#define FW_CODE_STORAGE_FULL 8u
#define FW_CODE_NOT_FOUND 9u
#define FW_CODE_BUSY 10u
#define FW_CODE_UNAUTHORIZED 11u
#define FW_CODE_FORBIDDEN 12u
#define FW_CODE_TIMEOUT 13u
#define FW_CODE_PROTOCOL_VIOLATION 14u
#define FW_CODE_SIZE_MISMATCH 15u
#define FW_CODE_CANCELLED 16u
#define FW_CODE_SHUTTING_DOWN 17u
#define FW_CODE_INTERNAL 18u

/* ---------------------------------------------------------------- library results */

/* Every function that can fail returns FW_OK (0) or one of these (negative). */
enum {
    FW_OK = 0,
    FW_E_IO = -1,        /* the write or read callback failed: reconnect */
    FW_E_CLOSED = -2,    /* the hub closed the connection: reconnect */
    FW_E_TIMEOUT = -3,   /* no answer in time (also what a read callback returns on timeout) */
    FW_E_PROTOCOL = -4,  /* the hub sent bytes that do not decode: reconnect */
    FW_E_TOO_LARGE = -5, /* a message does not fit a buffer or a hub limit */
    FW_E_HUB = -6,       /* the hub sent Error: ctx->hub_code, ctx->hub_text */
    FW_E_REJECTED = -7,  /* the hub rejected the upload: ctx->hub_code, ctx->hub_text */
    FW_E_ARG = -8,       /* a bad argument (string too long, buffer too small...) */
    FW_E_SOURCE = -9,    /* the file or frame source callback failed or ended early */
    FW_E_MISMATCH = -10, /* the hub stored another size or hash than we sent */
    FW_E_STATE = -11     /* not connected, connection unusable, or called from a handler */
};

/* ---------------------------------------------------------------- BLAKE3 */

#ifndef FRAMEWIRE_NO_BLAKE3
/* Largest file the hasher can take: 2^FW_BLAKE3_MAX_DEPTH KiB. 32 (4 TiB) costs 1 KiB of RAM in
 * the hasher; 22 (4 GiB) costs 704 bytes. */
#ifndef FW_BLAKE3_MAX_DEPTH
#define FW_BLAKE3_MAX_DEPTH 32
#endif

/* Incremental BLAKE3-256 (default hash mode). Portable, no SIMD. */
typedef struct fw_blake3 {
    uint32_t cv[8];         /* the current chunk's chaining value */
    uint64_t chunk_counter; /* index of the current chunk */
    uint8_t block[64];      /* the current block's bytes */
    uint8_t block_len;      /* bytes in block */
    uint8_t blocks_done;    /* blocks of the current chunk already compressed */
    uint8_t stack_len;      /* entries in stack */
    uint32_t stack[FW_BLAKE3_MAX_DEPTH][8]; /* chaining values of complete subtrees */
} fw_blake3;

void fw_blake3_init(fw_blake3 *h);
void fw_blake3_update(fw_blake3 *h, const void *data, size_t len);
/* Writes the 32-byte digest of everything so far. Does not change h: more input may follow. */
void fw_blake3_final(const fw_blake3 *h, uint8_t out[FW_HASH_LEN]);
#endif

/* ---------------------------------------------------------------- decoded messages */

/* Bytes inside a receive buffer (not NUL-terminated). Valid until the next read. */
typedef struct fw_str {
    const char *ptr;
    uint32_t len;
} fw_str;

typedef struct fw_welcome {
    uint16_t version;
    int64_t hub_time_us;
    uint32_t max_payload;
    uint64_t max_file_size;
    uint32_t chunk_size;
    uint16_t max_inflight;
    fw_str hub_name;
} fw_welcome;

/* Error (code, id, message) and Rejected (id, code, reason) share this shape. */
typedef struct fw_error_msg {
    uint16_t code;
    uint32_t id;
    fw_str text;
} fw_error_msg;

typedef struct fw_pong {
    uint64_t nonce;
    int64_t ping_time_us;
    int64_t time_us;
} fw_pong;

typedef struct fw_ping_msg {
    uint64_t nonce;
    int64_t time_us;
} fw_ping_msg;

typedef struct fw_text_msg {
    uint32_t id;
    fw_str text;
} fw_text_msg;

/* TextFrom: a text addressed to this connection's device name. */
typedef struct fw_text_from {
    fw_str from;
    fw_str to;
    fw_str text;
} fw_text_from;

/* Delivery.status values. */
#define FW_DELIVERED 0u
#define FW_NO_RECEIVER 1u
#define FW_RECEIVER_BUSY 2u

/* A Command. Read the arguments with fw_command_arg(). */
typedef struct fw_command {
    uint32_t id;
    fw_str target;
    fw_str command;
    uint16_t argc;
    const uint8_t *args; /* argc str16 back to back */
    uint32_t args_len;
} fw_command;

typedef struct fw_reply_msg {
    uint32_t id;
    uint8_t status;
    fw_str body;
} fw_reply_msg;

typedef struct fw_accept {
    uint32_t id;
    uint64_t offset;
    uint8_t prefix_hash[FW_HASH_LEN];
} fw_accept;

typedef struct fw_stored {
    uint32_t id;
    uint8_t status;
    uint64_t size;
    uint8_t hash[FW_HASH_LEN];
} fw_stored;

/* End (id, has_hash, hash) and FileInfo (id, size, hash). */
typedef struct fw_end {
    uint32_t id;
    uint8_t has_hash;
    uint8_t hash[FW_HASH_LEN];
} fw_end;

typedef struct fw_file_info {
    uint32_t id;
    uint64_t size;
    uint8_t hash[FW_HASH_LEN];
} fw_file_info;

/* Deleted (id, size of the removed file). */
typedef struct fw_deleted {
    uint32_t id;
    uint64_t size;
} fw_deleted;

typedef struct fw_frame_ack {
    fw_str stream;
    uint64_t seq;
} fw_frame_ack;

typedef struct fw_frame {
    fw_str stream;
    uint64_t seq;
    int64_t capture_us;
    uint8_t format;
    uint32_t width;
    uint32_t height;
    const uint8_t *payload;
    uint32_t payload_len;
} fw_frame;

/* Registered (version 2): the hub's answer to RegisterDevice. */
typedef struct fw_registered {
    fw_str name;
} fw_registered;

/* Subscribed (version 2): the hub's answer to Subscribe, with the window it grants. */
typedef struct fw_subscribed {
    fw_str stream;
    uint16_t window;
} fw_subscribed;

typedef struct fw_data {
    uint32_t id;
    const uint8_t *bytes;
    uint32_t len;
} fw_data;

/* ---------------------------------------------------------------- encoders (no I/O)
 *
 * Each writes one whole message (8-byte header included) into buf and returns its length, or 0
 * if it does not fit in cap or a string is longer than 65 535 bytes. Strings are (pointer,
 * length) and need not be NUL-terminated. */

size_t fw_encode_hello(uint8_t *buf, size_t cap, uint16_t version, const char *name, size_t name_len,
                       const char *token, size_t token_len);
size_t fw_encode_ping(uint8_t *buf, size_t cap, uint64_t nonce, int64_t time_us);
size_t fw_encode_pong(uint8_t *buf, size_t cap, uint64_t nonce, int64_t ping_time_us,
                      int64_t time_us);
size_t fw_encode_text(uint8_t *buf, size_t cap, uint32_t id, const char *text, size_t len);
size_t fw_encode_command(uint8_t *buf, size_t cap, uint32_t id, const char *target,
                         size_t target_len, const char *command, size_t command_len,
                         const fw_str *args, uint16_t argc);
size_t fw_encode_reply(uint8_t *buf, size_t cap, uint32_t id, uint8_t status, const void *body,
                       size_t body_len);
size_t fw_encode_text_to(uint8_t *buf, size_t cap, uint32_t id, const char *to, size_t to_len,
                         const char *text, size_t len);
size_t fw_encode_register_device(uint8_t *buf, size_t cap, const char *name, size_t len);
size_t fw_encode_offer(uint8_t *buf, size_t cap, uint32_t id, uint8_t flags, uint64_t size,
                       const char *path, size_t path_len);
/* The 12-byte head of a Data message carrying n bytes: send the bytes right after it. */
void fw_encode_data_head(uint8_t out[12], uint32_t id, uint32_t n);
/* hash may be NULL: has_hash = 0 and 32 zero bytes. */
size_t fw_encode_end(uint8_t *buf, size_t cap, uint32_t id, const uint8_t *hash);
size_t fw_encode_cancel(uint8_t *buf, size_t cap, uint32_t id);
size_t fw_encode_get(uint8_t *buf, size_t cap, uint32_t id, uint64_t offset, const char *path,
                     size_t path_len);
size_t fw_encode_list(uint8_t *buf, size_t cap, uint32_t id, uint32_t limit, const char *prefix,
                      size_t prefix_len, const char *after, size_t after_len);
size_t fw_encode_delete(uint8_t *buf, size_t cap, uint32_t id, const char *path, size_t path_len);
/* The 35 + stream_len byte head of a Frame whose image has payload_len bytes: send the image
 * right after it. Returns the head's length. */
size_t fw_encode_frame_head(uint8_t *buf, size_t cap, const char *stream, size_t stream_len,
                            uint64_t seq, int64_t capture_us, uint8_t format, uint32_t width,
                            uint32_t height, uint32_t payload_len);
size_t fw_encode_subscribe(uint8_t *buf, size_t cap, const char *stream, size_t len,
                           uint16_t window);
size_t fw_encode_unsubscribe(uint8_t *buf, size_t cap, const char *stream, size_t len);
size_t fw_encode_frame_ack(uint8_t *buf, size_t cap, const char *stream, size_t len, uint64_t seq);
size_t fw_encode_publish(uint8_t *buf, size_t cap, const char *stream, size_t len,
                         uint32_t max_latency_ms);

/* ---------------------------------------------------------------- decoders (no I/O)
 *
 * fw_check_header checks an 8-byte header (flags 0, a known type) and returns FW_OK with *type
 * and *len set, or FW_E_PROTOCOL. Each fw_decode_* takes one payload (without its header) and
 * returns FW_OK or FW_E_PROTOCOL (wrong length, bad UTF-8 in a str16, enum out of range). The
 * fw_str fields point into the payload. */

int fw_check_header(const uint8_t hdr[8], uint16_t *type, uint32_t *len);
int fw_decode_welcome(const uint8_t *p, uint32_t len, fw_welcome *out);
int fw_decode_error(const uint8_t *p, uint32_t len, fw_error_msg *out);
int fw_decode_rejected(const uint8_t *p, uint32_t len, fw_error_msg *out);
int fw_decode_ping(const uint8_t *p, uint32_t len, fw_ping_msg *out);
int fw_decode_pong(const uint8_t *p, uint32_t len, fw_pong *out);
int fw_decode_text(const uint8_t *p, uint32_t len, fw_text_msg *out);
int fw_decode_text_from(const uint8_t *p, uint32_t len, fw_text_from *out);
int fw_decode_delivery(const uint8_t *p, uint32_t len, uint32_t *id, uint8_t *status);
int fw_decode_command(const uint8_t *p, uint32_t len, fw_command *out);
/* Argument i of a decoded command; FW_E_ARG if i >= argc. */
int fw_command_arg(const fw_command *c, uint16_t i, fw_str *out);
int fw_decode_reply(const uint8_t *p, uint32_t len, fw_reply_msg *out);
int fw_decode_accept(const uint8_t *p, uint32_t len, fw_accept *out);
int fw_decode_stored(const uint8_t *p, uint32_t len, fw_stored *out);
int fw_decode_end(const uint8_t *p, uint32_t len, fw_end *out);
int fw_decode_file_info(const uint8_t *p, uint32_t len, fw_file_info *out);
int fw_decode_deleted(const uint8_t *p, uint32_t len, fw_deleted *out);
int fw_decode_frame_ack(const uint8_t *p, uint32_t len, fw_frame_ack *out);
int fw_decode_frame(const uint8_t *p, uint32_t len, fw_frame *out);
int fw_decode_data(const uint8_t *p, uint32_t len, fw_data *out);
int fw_decode_registered(const uint8_t *p, uint32_t len, fw_registered *out);
int fw_decode_subscribed(const uint8_t *p, uint32_t len, fw_subscribed *out);

/* ---------------------------------------------------------------- the connection */

typedef struct fw_ctx fw_ctx;

/* Transport callbacks. ctx->user is yours.
 *   write: send up to len bytes; return how many were sent (>0), or <0 on error.
 *   read:  receive up to len bytes; return how many (>0), 0 if the peer closed, FW_E_TIMEOUT if
 *          nothing came within your timeout, any other negative value on error. Bound the wait
 *          (SO_RCVTIMEO, an lwIP recv timeout, the AT module's timeout).
 *   now_us (optional, may be NULL): microseconds on any clock that does not jump (wall clock or
 *          time since boot). It enables time limits on answers, Ping round trips, and Frame
 *          capture times (converted to the hub's clock with the measured offset). */
typedef struct fw_io {
    long (*write)(fw_ctx *ctx, const uint8_t *buf, size_t len);
    long (*read)(fw_ctx *ctx, uint8_t *buf, size_t len);
    int64_t (*now_us)(fw_ctx *ctx);
} fw_io;

/* A device's command handler, called from fw_poll (or from any call that reads while the device
 * is registered). Write the reply body (up to reply_cap bytes) to reply, set *reply_len, and
 * return an FW_REPLY_* status. cmd's strings and reply live in the context's buffers: they are
 * valid only during the call, and the handler must not call framewire functions on the same
 * ctx (they return FW_E_STATE). Another connection, with its own ctx, is fine. */
typedef uint8_t (*fw_command_fn)(fw_ctx *ctx, const fw_command *cmd, char *reply, size_t reply_cap,
                                 size_t *reply_len);

/* A file's bytes: fill buf with up to len bytes starting at offset. Return how many (>0), 0 at
 * the end of the data, or <0 on error. Offsets only go forward, except that an upload may start
 * again from 0 (after the hub's partial copy turned out to differ). */
/* Called from fw_poll (or any call that reads) with a text addressed to this connection's device
 * name (TextFrom). The strings live in the receive buffer (the text may be cut to what fits it):
 * valid only during the call; do not call framewire functions on the same ctx from it. */
typedef void (*fw_text_fn)(fw_ctx *ctx, const fw_text_from *t);

typedef long (*fw_source_fn)(void *user, uint64_t offset, uint8_t *buf, size_t len);

#ifndef FW_HUB_TEXT_MAX
#define FW_HUB_TEXT_MAX 96 /* bytes of the hub's error text kept in ctx->hub_text */
#endif
#ifndef FW_HUB_NAME_MAX
#define FW_HUB_NAME_MAX 32
#endif

/* The connection state. Allocate it yourself (static or on the stack), then fw_init. Read the
 * documented fields; leave the ones marked private alone. */
struct fw_ctx {
    void *user;        /* yours: the socket, the UART handle... */
    int64_t timeout_us; /* longest wait for an answer when now_us is set (fw_init: 10 s) */

    /* From Welcome (after fw_handshake). */
    uint16_t version;
    uint32_t max_payload;
    uint64_t max_file_size;
    uint32_t chunk_size;
    uint16_t max_inflight;
    char hub_name[FW_HUB_NAME_MAX + 1];

    /* Set with FW_E_HUB and FW_E_REJECTED: the hub's code and text (NUL-terminated, truncated).
     * detail: a short explanation of the last local failure, or "". */
    uint16_t hub_code;
    char hub_text[FW_HUB_TEXT_MAX + 1];
    const char *detail;

    /* Clock (PROTOCOL.md 2.4): hub clock - our clock, from the sample with the smallest round
     * trip so far (the Welcome, then each fw_ping). clock_rtt_us < 0: no sample yet. */
    int64_t clock_offset_us;
    int64_t clock_rtt_us;

    /* Counters. */
    uint32_t frame_acks;      /* FrameAcks received */
    uint32_t frames_unacked;  /* Frames sent and not yet acknowledged */
    uint64_t frame_seq;       /* seq of the next Frame; add to it to report skipped frames */
    uint32_t commands;        /* Commands answered */
    uint32_t pings_answered;  /* Pings from the hub answered with Pong */

    /* private */
    const fw_io *io;
    uint8_t *rx;
    size_t rx_size;
    uint8_t *tx;
    size_t tx_size;
    uint8_t state;
    uint8_t in_handler;
    uint8_t rx_hdr[8];
    uint8_t rx_hdr_have;
    uint16_t rx_type;
    uint32_t rx_len;
    uint32_t rx_keep;
    uint32_t rx_pos;
    uint32_t next_id;
    uint64_t ping_nonce;
    const char *stream;
    uint16_t stream_len;
    uint16_t window;
    fw_command_fn on_command;
    fw_text_fn on_text;
#ifndef FRAMEWIRE_NO_BLAKE3
    fw_blake3 hasher;
#endif
};

/* Smallest buffers fw_init accepts. rx must hold the largest message you need whole (a
 * Command with its arguments, a Welcome: 30 + the hub's name); tx the largest you send (an
 * Offer is 23 + path; a Data chunk is 12 + the chunk, so tx_size sets the upload chunk size). */
#define FW_MIN_RX 64u
#define FW_MIN_TX 64u

/* Prepares ctx for a new connection (call again after a reconnect). The buffers must not
 * overlap and stay valid while ctx is used. FW_E_ARG if a buffer is too small or io lacks
 * read/write. */
int fw_init(fw_ctx *ctx, const fw_io *io, void *user, uint8_t *rx, size_t rx_size, uint8_t *tx,
            size_t tx_size);

/* Sends Hello{name, token} and waits for Welcome (limits in ctx). FW_E_HUB if the hub answers
 * Error (Unauthorized, UnsupportedVersion...): see ctx->hub_code and ctx->hub_text. */
int fw_handshake(fw_ctx *ctx, const char *name, const char *token);

/* Uploads size bytes from src to the remote path (PROTOCOL.md 4.1): Offer, Accept, Data chunks
 * of at most chunk_size built in the tx buffer, End (with BLAKE3 unless FRAMEWIRE_NO_BLAKE3),
 * then Stored. flags: FW_OFFER_OVERWRITE and/or FW_OFFER_NO_RESUME. With hashing, resumes what
 * the hub kept of an interrupted upload and skips a file already stored with the same bytes.
 * out (may be NULL) gets the hub's status, size and hash. FW_E_REJECTED with ctx->hub_code
 * (Exists, BadPath, TooLarge...) if the hub refuses; FW_E_MISMATCH if the stored size or hash
 * differs from ours. */
int fw_send_file(fw_ctx *ctx, const char *path, uint64_t size, uint8_t flags, fw_source_fn src,
                 void *src_user, fw_stored *out);

/* Announces the stream this connection publishes (Publish). max_latency_ms: the hub drops
 * frames older than this on arrival (0: no limit; forced to 0 without a now_us callback).
 * window: most frames unacknowledged at once (0: 2). The stream string must stay valid. */
int fw_publish(fw_ctx *ctx, const char *stream, uint32_t max_latency_ms, uint16_t window);

/* Sends one frame of the published stream (seq = ctx->frame_seq++, capture_us = now on the
 * hub's clock, or 0 without now_us). Waits for a FrameAck first while the window is full, so
 * frames never queue up; bounded by the answer time limit. The image goes straight from data
 * to the write callback. */
int fw_publish_frame(fw_ctx *ctx, uint8_t format, uint32_t width, uint32_t height,
                     const uint8_t *data, uint32_t len);
/* The same, reading the len image bytes from src through the tx buffer (a camera FIFO). */
int fw_publish_frame_from(fw_ctx *ctx, uint8_t format, uint32_t width, uint32_t height,
                          uint32_t len, fw_source_fn src, void *src_user);
/* Waits until every frame sent has been acknowledged. */
int fw_publish_drain(fw_ctx *ctx);

/* Makes this connection the device name (RegisterDevice); handler answers its commands. With a
 * version 2 hub it then waits (within the answer time limit) for the hub's Registered: FW_OK
 * means commands for name come here from now on. A version 1 hub does not answer: FW_OK once the
 * RegisterDevice is sent. */
int fw_register_device(fw_ctx *ctx, const char *name, fw_command_fn handler);

/* Reads one message and handles it: a Command goes to the handler and its Reply is sent, a Ping
 * is answered with Pong, a FrameAck is counted; other messages (Registered, Subscribed...) are
 * skipped. Returns the
 * message's type (> 0), FW_E_TIMEOUT if none arrived within the read callback's timeout (call
 * again: a message split across calls is kept), or an error. */
int fw_poll(fw_ctx *ctx);

/* Sends Text and waits for the hub's echo, copied NUL-terminated (truncated) to echo (may be
 * NULL). */
int fw_send_text(fw_ctx *ctx, const char *text, char *echo, size_t echo_cap);

/* Delivers text to whichever client holds the name to (a program following events under that
 * name, or a device) and waits for the hub's Delivery: *status (may be NULL) gets FW_DELIVERED,
 * FW_NO_RECEIVER or FW_RECEIVER_BUSY. FW_OK means the hub answered, whatever the status. */
int fw_send_text_to(fw_ctx *ctx, const char *to, const char *text, uint8_t *status);

/* Texts addressed to this connection's device name go to handler (NULL: skipped). */
void fw_on_text(fw_ctx *ctx, fw_text_fn handler);

/* Sends Ping and waits for Pong. rtt_us and offset_us (hub clock - ours) may be NULL; both are
 * 0 without a now_us callback. The best sample updates ctx->clock_offset_us. */
int fw_ping(fw_ctx *ctx, int64_t *rtt_us, int64_t *offset_us);

/* A short English description of an FW_E_* result. */
const char *fw_strerror(int err);
/* The name of a hub error code ("BadPath", "Exists"...), "Unknown" for others. */
const char *fw_code_name(uint16_t code);

#ifdef __cplusplus
}
#endif

#endif /* FRAMEWIRE_H */
