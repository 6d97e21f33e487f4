/*
 * framewire.c: see framewire.h. No heap, no sockets, C99. Integers are written and read byte by
 * byte, so neither the CPU's endianness nor struct packing ever reaches the wire.
 */
#include "framewire.h"

#include <string.h>

/* ================================================================ byte order */

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    int i;
    for (i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32); }

/* ================================================================ BLAKE3 (portable, from the spec) */

#ifndef FRAMEWIRE_NO_BLAKE3

#define B3_CHUNK_START 1u
#define B3_CHUNK_END 2u
#define B3_PARENT 4u
#define B3_ROOT 8u

static const uint32_t B3_IV[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                                  0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

/* The message word order of each of the 7 rounds (the permutation applied round after round). */
static const uint8_t B3_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

/* State words each G call mixes: four columns, then four diagonals. */
static const uint8_t B3_G[8][4] = {{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15},
                                   {0, 5, 10, 15}, {1, 6, 11, 12}, {2, 7, 8, 13}, {3, 4, 9, 14}};

static uint32_t rotr32(uint32_t w, unsigned c) { return (w >> c) | (w << (32 - c)); }

static void b3_compress(const uint32_t cv[8], const uint32_t m[16], uint64_t counter,
                        uint32_t block_len, uint32_t flags, uint32_t out[16])
{
    uint32_t v[16];
    int r, j, i;
    for (i = 0; i < 8; i++) v[i] = cv[i];
    for (i = 0; i < 4; i++) v[8 + i] = B3_IV[i];
    v[12] = (uint32_t)counter;
    v[13] = (uint32_t)(counter >> 32);
    v[14] = block_len;
    v[15] = flags;
    for (r = 0; r < 7; r++) {
        for (j = 0; j < 8; j++) {
            const uint8_t *g = B3_G[j];
            uint32_t a = v[g[0]], b = v[g[1]], c = v[g[2]], d = v[g[3]];
            a = a + b + m[B3_SCHEDULE[r][2 * j]];
            d = rotr32(d ^ a, 16);
            c = c + d;
            b = rotr32(b ^ c, 12);
            a = a + b + m[B3_SCHEDULE[r][2 * j + 1]];
            d = rotr32(d ^ a, 8);
            c = c + d;
            b = rotr32(b ^ c, 7);
            v[g[0]] = a;
            v[g[1]] = b;
            v[g[2]] = c;
            v[g[3]] = d;
        }
    }
    for (i = 0; i < 8; i++) {
        out[i] = v[i] ^ v[i + 8];
        out[i + 8] = v[i + 8] ^ cv[i];
    }
}

static void b3_block_words(const uint8_t *block, uint32_t m[16])
{
    int i;
    for (i = 0; i < 16; i++) m[i] = get_u32(block + 4 * i);
}

static uint32_t b3_start_flag(const fw_blake3 *h) { return h->blocks_done == 0 ? B3_CHUNK_START : 0u; }

void fw_blake3_init(fw_blake3 *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->cv, B3_IV, sizeof h->cv);
}

/* A finished chunk's chaining value joins the stack, merged with completed subtrees: as many
 * merges as there are trailing zero bits in the new chunk count. */
static void b3_push_chunk(fw_blake3 *h, uint32_t cv[8], uint64_t total_chunks)
{
    uint32_t m[16], out[16];
    while ((total_chunks & 1u) == 0 && h->stack_len > 0) {
        h->stack_len--;
        memcpy(m, h->stack[h->stack_len], 32);
        memcpy(m + 8, cv, 32);
        b3_compress(B3_IV, m, 0, 64, B3_PARENT, out);
        memcpy(cv, out, 32);
        total_chunks >>= 1;
    }
    if (h->stack_len < FW_BLAKE3_MAX_DEPTH) memcpy(h->stack[h->stack_len++], cv, 32);
}

void fw_blake3_update(fw_blake3 *h, const void *data, size_t len)
{
    const uint8_t *in = (const uint8_t *)data;
    uint32_t m[16], out[16];
    while (len > 0) {
        size_t take;
        if (h->block_len == 64) {
            /* A full block and more input: it is not the last block, so compress it now. */
            b3_block_words(h->block, m);
            if (h->blocks_done == 15) { /* the chunk's 16th block: the chunk is done */
                b3_compress(h->cv, m, h->chunk_counter, 64, b3_start_flag(h) | B3_CHUNK_END, out);
                b3_push_chunk(h, out, h->chunk_counter + 1);
                memcpy(h->cv, B3_IV, sizeof h->cv);
                h->chunk_counter++;
                h->blocks_done = 0;
            } else {
                b3_compress(h->cv, m, h->chunk_counter, 64, b3_start_flag(h), out);
                memcpy(h->cv, out, 32);
                h->blocks_done++;
            }
            h->block_len = 0;
        }
        take = 64u - h->block_len;
        if (take > len) take = len;
        memcpy(h->block + h->block_len, in, take);
        h->block_len = (uint8_t)(h->block_len + take);
        in += take;
        len -= take;
    }
}

void fw_blake3_final(const fw_blake3 *h, uint8_t out[FW_HASH_LEN])
{
    uint8_t block[64];
    uint32_t cv[8], m[16], o[16];
    uint64_t counter = h->chunk_counter;
    uint32_t block_len = h->block_len;
    uint32_t flags = b3_start_flag(h) | B3_CHUNK_END;
    int i = h->stack_len;
    memset(block, 0, sizeof block);
    memcpy(block, h->block, h->block_len);
    b3_block_words(block, m);
    memcpy(cv, h->cv, sizeof cv);
    /* Fold the current chunk into the stacked subtrees, right to left; the last node is root. */
    while (i > 0) {
        i--;
        b3_compress(cv, m, counter, block_len, flags, o);
        memcpy(m, h->stack[i], 32);
        memcpy(m + 8, o, 32);
        memcpy(cv, B3_IV, sizeof cv);
        counter = 0;
        block_len = 64;
        flags = B3_PARENT;
    }
    b3_compress(cv, m, counter, block_len, flags | B3_ROOT, o);
    for (i = 0; i < 8; i++) put_u32(out + 4 * i, o[i]);
}

#endif /* FRAMEWIRE_NO_BLAKE3 */

/* ================================================================ encoders */

static uint8_t *put_header(uint8_t *p, uint16_t type, uint32_t len)
{
    p = put_u16(p, type);
    p = put_u16(p, 0);
    return put_u32(p, len);
}

static uint8_t *put_bytes(uint8_t *p, const void *s, size_t n)
{
    if (n > 0) memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_str16(uint8_t *p, const char *s, size_t n) { return put_bytes(put_u16(p, (uint16_t)n), s, n); }

/* The whole message's length if its payload of `payload` bytes fits in cap, else 0. */
static size_t fits(size_t cap, size_t payload)
{
    if (payload > 0xFFFFFFFFu - FW_HEADER_LEN || FW_HEADER_LEN + payload > cap) return 0;
    return FW_HEADER_LEN + payload;
}

#define STR16_OK(n) ((n) <= 0xFFFFu)

size_t fw_encode_hello(uint8_t *buf, size_t cap, uint16_t version, const char *name, size_t name_len,
                       const char *token, size_t token_len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(name_len) || !STR16_OK(token_len)) return 0;
    if ((n = fits(cap, 10 + name_len + token_len)) == 0) return 0;
    p = put_header(buf, FW_MSG_HELLO, (uint32_t)(n - FW_HEADER_LEN));
    p = put_bytes(p, "FWIR", 4);
    p = put_u16(p, version);
    p = put_str16(p, name, name_len);
    put_str16(p, token, token_len);
    return n;
}

size_t fw_encode_ping(uint8_t *buf, size_t cap, uint64_t nonce, int64_t time_us)
{
    uint8_t *p;
    if (fits(cap, 16) == 0) return 0;
    p = put_header(buf, FW_MSG_PING, 16);
    p = put_u64(p, nonce);
    put_u64(p, (uint64_t)time_us);
    return 24;
}

size_t fw_encode_pong(uint8_t *buf, size_t cap, uint64_t nonce, int64_t ping_time_us, int64_t time_us)
{
    uint8_t *p;
    if (fits(cap, 24) == 0) return 0;
    p = put_header(buf, FW_MSG_PONG, 24);
    p = put_u64(p, nonce);
    p = put_u64(p, (uint64_t)ping_time_us);
    put_u64(p, (uint64_t)time_us);
    return 32;
}

/* A message made of a u32 id and a rest field (Text). */
static size_t encode_id_rest(uint8_t *buf, size_t cap, uint16_t type, uint32_t id, const void *rest,
                             size_t len)
{
    size_t n;
    uint8_t *p;
    if ((n = fits(cap, 4 + len)) == 0) return 0;
    p = put_header(buf, type, (uint32_t)(n - FW_HEADER_LEN));
    put_bytes(put_u32(p, id), rest, len);
    return n;
}

size_t fw_encode_text(uint8_t *buf, size_t cap, uint32_t id, const char *text, size_t len)
{
    return encode_id_rest(buf, cap, FW_MSG_TEXT, id, text, len);
}

size_t fw_encode_text_to(uint8_t *buf, size_t cap, uint32_t id, const char *to, size_t to_len,
                         const char *text, size_t len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(to_len)) return 0;
    if ((n = fits(cap, 6 + to_len + len)) == 0) return 0;
    p = put_header(buf, FW_MSG_TEXT_TO, (uint32_t)(6 + to_len + len));
    p = put_u32(p, id);
    p = put_str16(p, to, to_len);
    put_bytes(p, text, len);
    return n;
}

size_t fw_encode_command(uint8_t *buf, size_t cap, uint32_t id, const char *target, size_t target_len,
                         const char *command, size_t command_len, const fw_str *args, uint16_t argc)
{
    size_t payload = 10 + target_len + command_len, n;
    uint8_t *p;
    uint16_t i;
    if (!STR16_OK(target_len) || !STR16_OK(command_len)) return 0;
    for (i = 0; i < argc; i++) {
        if (!STR16_OK(args[i].len)) return 0;
        payload += 2 + (size_t)args[i].len;
    }
    if ((n = fits(cap, payload)) == 0) return 0;
    p = put_header(buf, FW_MSG_COMMAND, (uint32_t)payload);
    p = put_u32(p, id);
    p = put_str16(p, target, target_len);
    p = put_str16(p, command, command_len);
    p = put_u16(p, argc);
    for (i = 0; i < argc; i++) p = put_str16(p, args[i].ptr, args[i].len);
    return n;
}

size_t fw_encode_reply(uint8_t *buf, size_t cap, uint32_t id, uint8_t status, const void *body,
                       size_t body_len)
{
    size_t n;
    uint8_t *p;
    if ((n = fits(cap, 5 + body_len)) == 0) return 0;
    p = put_header(buf, FW_MSG_REPLY, (uint32_t)(n - FW_HEADER_LEN));
    p = put_u32(p, id);
    *p++ = status;
    put_bytes(p, body, body_len);
    return n;
}

/* A message whose payload is one str16, optionally followed by `tail_len` bytes from tail. */
static size_t encode_str_tail(uint8_t *buf, size_t cap, uint16_t type, const char *s, size_t len,
                              const uint8_t *tail, size_t tail_len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(len) || (n = fits(cap, 2 + len + tail_len)) == 0) return 0;
    p = put_header(buf, type, (uint32_t)(n - FW_HEADER_LEN));
    put_bytes(put_str16(p, s, len), tail, tail_len);
    return n;
}

size_t fw_encode_register_device(uint8_t *buf, size_t cap, const char *name, size_t len)
{
    return encode_str_tail(buf, cap, FW_MSG_REGISTER_DEVICE, name, len, NULL, 0);
}

size_t fw_encode_offer(uint8_t *buf, size_t cap, uint32_t id, uint8_t flags, uint64_t size,
                       const char *path, size_t path_len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(path_len) || (n = fits(cap, 15 + path_len)) == 0) return 0;
    p = put_header(buf, FW_MSG_OFFER, (uint32_t)(n - FW_HEADER_LEN));
    p = put_u32(p, id);
    *p++ = flags;
    p = put_u64(p, size);
    put_str16(p, path, path_len);
    return n;
}

void fw_encode_data_head(uint8_t out[12], uint32_t id, uint32_t n)
{
    put_u32(put_header(out, FW_MSG_DATA, 4u + n), id);
}

size_t fw_encode_end(uint8_t *buf, size_t cap, uint32_t id, const uint8_t *hash)
{
    uint8_t *p;
    if (fits(cap, 37) == 0) return 0;
    p = put_header(buf, FW_MSG_END, 37);
    p = put_u32(p, id);
    *p++ = hash != NULL;
    if (hash != NULL) memcpy(p, hash, FW_HASH_LEN);
    else memset(p, 0, FW_HASH_LEN);
    return 45;
}

size_t fw_encode_cancel(uint8_t *buf, size_t cap, uint32_t id)
{
    return encode_id_rest(buf, cap, FW_MSG_CANCEL, id, NULL, 0);
}

size_t fw_encode_get(uint8_t *buf, size_t cap, uint32_t id, uint64_t offset, const char *path,
                     size_t path_len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(path_len) || (n = fits(cap, 14 + path_len)) == 0) return 0;
    p = put_header(buf, FW_MSG_GET, (uint32_t)(n - FW_HEADER_LEN));
    p = put_u32(p, id);
    p = put_u64(p, offset);
    put_str16(p, path, path_len);
    return n;
}

size_t fw_encode_delete(uint8_t *buf, size_t cap, uint32_t id, const char *path, size_t path_len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(path_len) || (n = fits(cap, 6 + path_len)) == 0) return 0;
    p = put_header(buf, FW_MSG_DELETE, (uint32_t)(n - FW_HEADER_LEN));
    put_str16(put_u32(p, id), path, path_len);
    return n;
}

size_t fw_encode_list(uint8_t *buf, size_t cap, uint32_t id, uint32_t limit, const char *prefix,
                      size_t prefix_len, const char *after, size_t after_len)
{
    size_t n;
    uint8_t *p;
    if (!STR16_OK(prefix_len) || !STR16_OK(after_len)) return 0;
    if ((n = fits(cap, 12 + prefix_len + after_len)) == 0) return 0;
    p = put_header(buf, FW_MSG_LIST, (uint32_t)(n - FW_HEADER_LEN));
    p = put_u32(p, id);
    p = put_u32(p, limit);
    p = put_str16(p, prefix, prefix_len);
    put_str16(p, after, after_len);
    return n;
}

size_t fw_encode_frame_head(uint8_t *buf, size_t cap, const char *stream, size_t stream_len,
                            uint64_t seq, int64_t capture_us, uint8_t format, uint32_t width,
                            uint32_t height, uint32_t payload_len)
{
    size_t head = FW_HEADER_LEN + 27 + stream_len;
    uint8_t *p;
    if (!STR16_OK(stream_len) || head > cap || payload_len > 0xFFFFFFFFu - (27 + stream_len)) return 0;
    p = put_header(buf, FW_MSG_FRAME, (uint32_t)(27 + stream_len) + payload_len);
    p = put_str16(p, stream, stream_len);
    p = put_u64(p, seq);
    p = put_u64(p, (uint64_t)capture_us);
    *p++ = format;
    p = put_u32(p, width);
    put_u32(p, height);
    return head;
}

size_t fw_encode_subscribe(uint8_t *buf, size_t cap, const char *stream, size_t len, uint16_t window)
{
    uint8_t w[2];
    put_u16(w, window);
    return encode_str_tail(buf, cap, FW_MSG_SUBSCRIBE, stream, len, w, 2);
}

size_t fw_encode_unsubscribe(uint8_t *buf, size_t cap, const char *stream, size_t len)
{
    return encode_str_tail(buf, cap, FW_MSG_UNSUBSCRIBE, stream, len, NULL, 0);
}

size_t fw_encode_frame_ack(uint8_t *buf, size_t cap, const char *stream, size_t len, uint64_t seq)
{
    uint8_t s[8];
    put_u64(s, seq);
    return encode_str_tail(buf, cap, FW_MSG_FRAME_ACK, stream, len, s, 8);
}

size_t fw_encode_publish(uint8_t *buf, size_t cap, const char *stream, size_t len, uint32_t max_latency_ms)
{
    uint8_t m[4];
    put_u32(m, max_latency_ms);
    return encode_str_tail(buf, cap, FW_MSG_PUBLISH, stream, len, m, 4);
}

/* ================================================================ decoders */

/* A cursor over one payload. Reading past the end sets bad; decoders check bad and that
 * nothing is left over (trailing bytes are a decode error too). */
typedef struct reader {
    const uint8_t *p;
    uint32_t left;
    int bad;
} reader;

static const uint8_t *take(reader *r, uint32_t n)
{
    const uint8_t *at = r->p;
    if (r->bad || n > r->left) {
        r->bad = 1;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return at;
}

static uint8_t rd_u8(reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

static uint16_t rd_u16(reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? get_u16(p) : 0;
}

static uint32_t rd_u32(reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t rd_u64(reader *r)
{
    const uint8_t *p = take(r, 8);
    return p ? get_u64(p) : 0;
}

static void rd_hash(reader *r, uint8_t out[FW_HASH_LEN])
{
    const uint8_t *p = take(r, FW_HASH_LEN);
    if (p) memcpy(out, p, FW_HASH_LEN);
}

static int utf8_valid(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint32_t need, cp, min, k;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= need) return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += need + 1;
    }
    return 1;
}

static fw_str rd_str16(reader *r)
{
    fw_str s;
    s.len = rd_u16(r);
    s.ptr = (const char *)take(r, s.len);
    if (s.ptr == NULL) s.len = 0;
    else if (!utf8_valid((const uint8_t *)s.ptr, s.len)) r->bad = 1;
    return s;
}

/* Everything left (a rest field). */
static fw_str rd_rest(reader *r)
{
    fw_str s;
    s.len = r->left;
    s.ptr = (const char *)take(r, s.len);
    return s;
}

static reader rd_open(const uint8_t *p, uint32_t len)
{
    reader r;
    r.p = p;
    r.left = len;
    r.bad = 0;
    return r;
}

static int rd_done(const reader *r) { return r->bad || r->left != 0 ? FW_E_PROTOCOL : FW_OK; }

static int known_type(uint16_t t)
{
    return (t >= 0x01 && t <= 0x05) || (t >= 0x10 && t <= 0x13) || (t >= 0x20 && t <= 0x23) ||
           (t >= 0x30 && t <= 0x36) || (t >= 0x38 && t <= 0x3D) || (t >= 0x40 && t <= 0x45) ||
           (t >= 0x50 && t <= 0x52);
}

int fw_check_header(const uint8_t hdr[8], uint16_t *type, uint32_t *len)
{
    *type = get_u16(hdr);
    *len = get_u32(hdr + 4);
    return get_u16(hdr + 2) == 0 && known_type(*type) ? FW_OK : FW_E_PROTOCOL;
}

int fw_decode_welcome(const uint8_t *p, uint32_t len, fw_welcome *out)
{
    reader r = rd_open(p, len);
    out->version = rd_u16(&r);
    out->hub_time_us = (int64_t)rd_u64(&r);
    out->max_payload = rd_u32(&r);
    out->max_file_size = rd_u64(&r);
    out->chunk_size = rd_u32(&r);
    out->max_inflight = rd_u16(&r);
    out->hub_name = rd_str16(&r);
    return rd_done(&r);
}

int fw_decode_error(const uint8_t *p, uint32_t len, fw_error_msg *out)
{
    reader r = rd_open(p, len);
    out->code = rd_u16(&r);
    out->id = rd_u32(&r);
    out->text = rd_rest(&r);
    return rd_done(&r);
}

int fw_decode_rejected(const uint8_t *p, uint32_t len, fw_error_msg *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->code = rd_u16(&r);
    out->text = rd_rest(&r);
    return rd_done(&r);
}

int fw_decode_ping(const uint8_t *p, uint32_t len, fw_ping_msg *out)
{
    reader r = rd_open(p, len);
    out->nonce = rd_u64(&r);
    out->time_us = (int64_t)rd_u64(&r);
    return rd_done(&r);
}

int fw_decode_pong(const uint8_t *p, uint32_t len, fw_pong *out)
{
    reader r = rd_open(p, len);
    out->nonce = rd_u64(&r);
    out->ping_time_us = (int64_t)rd_u64(&r);
    out->time_us = (int64_t)rd_u64(&r);
    return rd_done(&r);
}

int fw_decode_text(const uint8_t *p, uint32_t len, fw_text_msg *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->text = rd_rest(&r);
    return rd_done(&r);
}

int fw_decode_text_from(const uint8_t *p, uint32_t len, fw_text_from *out)
{
    reader r = rd_open(p, len);
    out->from = rd_str16(&r);
    out->to = rd_str16(&r);
    out->text = rd_rest(&r);
    return rd_done(&r);
}

int fw_decode_delivery(const uint8_t *p, uint32_t len, uint32_t *id, uint8_t *status)
{
    reader r = rd_open(p, len);
    *id = rd_u32(&r);
    *status = rd_u8(&r);
    if (*status > FW_RECEIVER_BUSY) return FW_E_PROTOCOL;
    return rd_done(&r);
}

int fw_decode_command(const uint8_t *p, uint32_t len, fw_command *out)
{
    reader r = rd_open(p, len);
    uint16_t i;
    out->id = rd_u32(&r);
    out->target = rd_str16(&r);
    out->command = rd_str16(&r);
    out->argc = rd_u16(&r);
    out->args = r.p;
    for (i = 0; i < out->argc && !r.bad; i++) rd_str16(&r);
    out->args_len = (uint32_t)(r.p - out->args);
    return rd_done(&r);
}

int fw_command_arg(const fw_command *c, uint16_t i, fw_str *out)
{
    reader r = rd_open(c->args, c->args_len);
    uint16_t k;
    if (i >= c->argc) return FW_E_ARG;
    for (k = 0; k < i; k++) rd_str16(&r);
    *out = rd_str16(&r);
    return r.bad ? FW_E_PROTOCOL : FW_OK;
}

int fw_decode_reply(const uint8_t *p, uint32_t len, fw_reply_msg *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->status = rd_u8(&r);
    out->body = rd_rest(&r);
    if (out->status > FW_REPLY_TIMEOUT) r.bad = 1;
    return rd_done(&r);
}

int fw_decode_accept(const uint8_t *p, uint32_t len, fw_accept *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->offset = rd_u64(&r);
    rd_hash(&r, out->prefix_hash);
    return rd_done(&r);
}

int fw_decode_stored(const uint8_t *p, uint32_t len, fw_stored *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->status = rd_u8(&r);
    out->size = rd_u64(&r);
    rd_hash(&r, out->hash);
    if (out->status > FW_STORED_UNCHANGED) r.bad = 1;
    return rd_done(&r);
}

int fw_decode_end(const uint8_t *p, uint32_t len, fw_end *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->has_hash = rd_u8(&r);
    rd_hash(&r, out->hash);
    if (out->has_hash > 1) r.bad = 1;
    return rd_done(&r);
}

int fw_decode_file_info(const uint8_t *p, uint32_t len, fw_file_info *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->size = rd_u64(&r);
    rd_hash(&r, out->hash);
    return rd_done(&r);
}

int fw_decode_deleted(const uint8_t *p, uint32_t len, fw_deleted *out)
{
    reader r = rd_open(p, len);
    out->id = rd_u32(&r);
    out->size = rd_u64(&r);
    return rd_done(&r);
}

int fw_decode_frame_ack(const uint8_t *p, uint32_t len, fw_frame_ack *out)
{
    reader r = rd_open(p, len);
    out->stream = rd_str16(&r);
    out->seq = rd_u64(&r);
    return rd_done(&r);
}

int fw_decode_frame(const uint8_t *p, uint32_t len, fw_frame *out)
{
    reader r = rd_open(p, len);
    fw_str rest;
    out->stream = rd_str16(&r);
    out->seq = rd_u64(&r);
    out->capture_us = (int64_t)rd_u64(&r);
    out->format = rd_u8(&r);
    out->width = rd_u32(&r);
    out->height = rd_u32(&r);
    rest = rd_rest(&r);
    out->payload = (const uint8_t *)rest.ptr;
    out->payload_len = rest.len;
    return rd_done(&r);
}

int fw_decode_data(const uint8_t *p, uint32_t len, fw_data *out)
{
    reader r = rd_open(p, len);
    fw_str rest;
    out->id = rd_u32(&r);
    rest = rd_rest(&r);
    out->bytes = (const uint8_t *)rest.ptr;
    out->len = rest.len;
    return rd_done(&r);
}

int fw_decode_registered(const uint8_t *p, uint32_t len, fw_registered *out)
{
    reader r = rd_open(p, len);
    out->name = rd_str16(&r);
    return rd_done(&r);
}

int fw_decode_subscribed(const uint8_t *p, uint32_t len, fw_subscribed *out)
{
    reader r = rd_open(p, len);
    out->stream = rd_str16(&r);
    out->window = rd_u16(&r);
    return rd_done(&r);
}

/* ================================================================ the connection */

enum { ST_NEW = 0, ST_READY = 1, ST_DEAD = 2 };

/* Hub messages that are only useful whole (fixed layouts, str16 fields). Messages ending in a
 * rest field are kept up to the buffer's size and the rest is skipped; bulk and hub-bound
 * messages are skipped without being stored. */
enum { KEEP_NONE, KEEP_PREFIX, KEEP_WHOLE };

static int keep_policy(uint16_t type)
{
    switch (type) {
    case FW_MSG_ERROR:
    case FW_MSG_TEXT:
    case FW_MSG_REPLY:
    case FW_MSG_REJECTED:
    case FW_MSG_TEXT_FROM:
        return KEEP_PREFIX;
    case FW_MSG_WELCOME:
    case FW_MSG_PING:
    case FW_MSG_PONG:
    case FW_MSG_COMMAND:
    case FW_MSG_ACCEPT:
    case FW_MSG_STORED:
    case FW_MSG_END:
    case FW_MSG_FILE_INFO:
    case FW_MSG_DELETED:
    case FW_MSG_FRAME_ACK:
    case FW_MSG_REGISTERED:
    case FW_MSG_SUBSCRIBED:
    case FW_MSG_DELIVERY:
        return KEEP_WHOLE;
    default:
        return KEEP_NONE;
    }
}

/* A failure after which the byte stream can no longer be trusted: the connection is done. */
static int fatal(fw_ctx *ctx, int err, const char *detail)
{
    ctx->state = ST_DEAD;
    ctx->detail = detail;
    return err;
}

/* A failure that leaves the connection usable (a refused request, a bad argument, a wait that
 * timed out between messages). */
static int refuse(fw_ctx *ctx, int err, const char *detail)
{
    ctx->detail = detail;
    return err;
}

static void set_hub_error(fw_ctx *ctx, uint16_t code, fw_str text)
{
    uint32_t n = text.len < FW_HUB_TEXT_MAX ? text.len : FW_HUB_TEXT_MAX;
    ctx->hub_code = code;
    if (n > 0) memcpy(ctx->hub_text, text.ptr, n);
    ctx->hub_text[n] = '\0';
}

static int64_t now(fw_ctx *ctx) { return ctx->io->now_us ? ctx->io->now_us(ctx) : 0; }

/* 0 means "no clock": the first transport timeout ends the wait. */
static int64_t deadline(fw_ctx *ctx) { return ctx->io->now_us ? now(ctx) + ctx->timeout_us : 0; }

static int ready(fw_ctx *ctx)
{
    if (ctx->in_handler) return refuse(ctx, FW_E_STATE, "called from a command handler");
    if (ctx->state != ST_READY) return refuse(ctx, FW_E_STATE, "not connected (handshake first, or reconnect)");
    return FW_OK;
}

static int write_all(fw_ctx *ctx, const uint8_t *p, size_t len)
{
    while (len > 0) {
        long w = ctx->io->write(ctx, p, len);
        /* A message cut short leaves the stream out of step: no retry, the connection is done. */
        if (w == FW_E_TIMEOUT) return fatal(ctx, FW_E_TIMEOUT, "write timed out");
        if (w <= 0 || (unsigned long)w > len) return fatal(ctx, FW_E_IO, "write failed");
        p += w;
        len -= (size_t)w;
    }
    return FW_OK;
}

static int read_failed(fw_ctx *ctx, long r)
{
    if (r == 0) return fatal(ctx, FW_E_CLOSED, "the hub closed the connection");
    if (r == FW_E_TIMEOUT) return refuse(ctx, FW_E_TIMEOUT, "no answer in time");
    return fatal(ctx, FW_E_IO, "read failed");
}

/* Reads until one whole message has arrived: its type in rx_type, its first rx_keep payload
 * bytes in rx. Resumable: a timeout keeps what has arrived, and the next call goes on. */
static int read_message(fw_ctx *ctx)
{
    long r;
    while (ctx->rx_hdr_have < 8) {
        r = ctx->io->read(ctx, ctx->rx_hdr + ctx->rx_hdr_have, 8u - ctx->rx_hdr_have);
        if (r <= 0 || r > 8 - ctx->rx_hdr_have) return read_failed(ctx, r > 0 ? -1 : r);
        ctx->rx_hdr_have = (uint8_t)(ctx->rx_hdr_have + r);
        if (ctx->rx_hdr_have == 8) {
            int policy;
            /* Check the header before reading any payload (PROTOCOL.md 1.1). */
            if (fw_check_header(ctx->rx_hdr, &ctx->rx_type, &ctx->rx_len) != FW_OK)
                return fatal(ctx, FW_E_PROTOCOL, "bad message header");
            policy = keep_policy(ctx->rx_type);
            if (policy == KEEP_WHOLE && ctx->rx_len > ctx->rx_size)
                return fatal(ctx, FW_E_TOO_LARGE, "message larger than the receive buffer");
            ctx->rx_keep = policy == KEEP_NONE ? 0
                           : ctx->rx_len < ctx->rx_size ? ctx->rx_len
                                                        : (uint32_t)ctx->rx_size;
            ctx->rx_pos = 0;
        }
    }
    while (ctx->rx_pos < ctx->rx_len) {
        uint8_t scratch[16];
        uint8_t *dst = scratch;
        uint32_t want = ctx->rx_len - ctx->rx_pos;
        if (ctx->rx_pos < ctx->rx_keep) {
            dst = ctx->rx + ctx->rx_pos;
            want = ctx->rx_keep - ctx->rx_pos;
        } else if (ctx->rx_size > ctx->rx_keep) { /* discard into the unused part of rx */
            dst = ctx->rx + ctx->rx_keep;
            if (want > ctx->rx_size - ctx->rx_keep) want = (uint32_t)(ctx->rx_size - ctx->rx_keep);
        } else if (want > sizeof scratch) {
            want = sizeof scratch;
        }
        r = ctx->io->read(ctx, dst, want);
        if (r <= 0 || (unsigned long)r > want) return read_failed(ctx, r > 0 ? -1 : r);
        ctx->rx_pos += (uint32_t)r;
    }
    ctx->rx_hdr_have = 0;
    return FW_OK;
}

static int answer_command(fw_ctx *ctx)
{
    fw_command c;
    size_t cap = ctx->tx_size - 13, n = 0;
    uint8_t status;
    if (fw_decode_command(ctx->rx, ctx->rx_keep, &c) != FW_OK)
        return fatal(ctx, FW_E_PROTOCOL, "bad Command");
    if (ctx->max_payload > 5 && cap > ctx->max_payload - 5) cap = ctx->max_payload - 5;
    if (ctx->on_command == NULL) {
        static const char msg[] = "not a device";
        status = FW_REPLY_UNKNOWN_COMMAND;
        n = sizeof msg - 1 < cap ? sizeof msg - 1 : cap;
        memcpy(ctx->tx + 13, msg, n);
    } else {
        ctx->in_handler = 1;
        status = ctx->on_command(ctx, &c, (char *)ctx->tx + 13, cap, &n);
        ctx->in_handler = 0;
        if (n > cap) n = cap;
        if (status > FW_REPLY_TIMEOUT) status = FW_REPLY_FAILED;
    }
    /* The body is already in place after the 13-byte head. */
    put_u32(put_header(ctx->tx, FW_MSG_REPLY, (uint32_t)(5 + n)), c.id);
    ctx->tx[12] = status;
    ctx->commands++;
    return write_all(ctx, ctx->tx, 13 + n);
}

/* Handles what any wait must handle, whoever waits: Ping, FrameAck, Command, Error{id 0}.
 * Returns 1 if handled, 0 if the message is for the caller, or an error. */
static int dispatch(fw_ctx *ctx)
{
    const uint8_t *p = ctx->rx;
    uint32_t len = ctx->rx_keep;
    switch (ctx->rx_type) {
    case FW_MSG_PING: {
        fw_ping_msg ping;
        uint8_t pong[32];
        if (fw_decode_ping(p, len, &ping) != FW_OK) return fatal(ctx, FW_E_PROTOCOL, "bad Ping");
        fw_encode_pong(pong, sizeof pong, ping.nonce, ping.time_us, now(ctx));
        ctx->pings_answered++;
        return write_all(ctx, pong, sizeof pong) == FW_OK ? 1 : FW_E_IO;
    }
    case FW_MSG_FRAME_ACK: {
        fw_frame_ack ack;
        if (fw_decode_frame_ack(p, len, &ack) != FW_OK) return fatal(ctx, FW_E_PROTOCOL, "bad FrameAck");
        ctx->frame_acks++;
        if (ctx->frames_unacked > 0) ctx->frames_unacked--;
        return 1;
    }
    case FW_MSG_COMMAND: {
        int rc = answer_command(ctx);
        return rc == FW_OK ? 1 : rc;
    }
    case FW_MSG_TEXT_FROM: {
        fw_text_from t;
        if (ctx->on_text == NULL) return 1;
        if (fw_decode_text_from(p, len, &t) != FW_OK) return 1; /* cut short: not for us to judge */
        ctx->in_handler = 1;
        ctx->on_text(ctx, &t);
        ctx->in_handler = 0;
        return 1;
    }
    case FW_MSG_ERROR: {
        fw_error_msg e;
        if (fw_decode_error(p, len, &e) != FW_OK) return fatal(ctx, FW_E_PROTOCOL, "bad Error");
        if (e.id != 0) return 0;
        set_hub_error(ctx, e.code, e.text);
        return fatal(ctx, FW_E_HUB, "the hub closed the connection with an error");
    }
    default:
        return 0;
    }
}

/* Reads and dispatches one message. 1: a message for the caller is in rx; 0: it was handled;
 * <0: error. Transport timeouts are retried until `until` (0: not at all). */
static int step(fw_ctx *ctx, int64_t until)
{
    int rc;
    for (;;) {
        rc = read_message(ctx);
        if (rc == FW_E_TIMEOUT && until != 0 && now(ctx) < until) continue;
        if (rc != FW_OK) return rc;
        rc = dispatch(ctx);
        if (rc == 0) return 1;
        if (rc < 0) return rc;
        return 0;
    }
}

/* Reads until a message the caller must look at arrives, within `until`. */
static int next_message(fw_ctx *ctx, int64_t until)
{
    for (;;) {
        int rc = step(ctx, until);
        if (rc != 0) return rc;
        if (until != 0 && now(ctx) >= until) return refuse(ctx, FW_E_TIMEOUT, "no answer in time");
    }
}

static uint32_t new_id(fw_ctx *ctx)
{
    if (ctx->next_id == 0) ctx->next_id = 1;
    return ctx->next_id++;
}

static void clock_sample(fw_ctx *ctx, int64_t sent, int64_t remote, int64_t received)
{
    int64_t rtt = received - sent;
    if (rtt < 0) rtt = 0;
    /* Keep the tightest sample; a tie goes to the newer one (PROTOCOL.md 2.4). */
    if (ctx->clock_rtt_us < 0 || rtt <= ctx->clock_rtt_us) {
        ctx->clock_rtt_us = rtt;
        ctx->clock_offset_us = remote - (sent + received) / 2;
    }
}

int fw_init(fw_ctx *ctx, const fw_io *io, void *user, uint8_t *rx, size_t rx_size, uint8_t *tx,
            size_t tx_size)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->user = user;
    ctx->io = io;
    ctx->rx = rx;
    ctx->rx_size = rx_size;
    ctx->tx = tx;
    ctx->tx_size = tx_size;
    ctx->timeout_us = 10000000;
    ctx->clock_rtt_us = -1;
    ctx->detail = "";
    ctx->state = ST_DEAD;
    if (io == NULL || io->write == NULL || io->read == NULL || rx == NULL || tx == NULL ||
        rx_size < FW_MIN_RX || tx_size < FW_MIN_TX)
        return refuse(ctx, FW_E_ARG, "fw_init: missing callback or buffer too small");
    ctx->state = ST_NEW;
    return FW_OK;
}

int fw_handshake(fw_ctx *ctx, const char *name, const char *token)
{
    size_t n;
    int64_t sent;
    int rc;
    fw_welcome w;
    if (ctx->state != ST_NEW) return refuse(ctx, FW_E_STATE, "fw_handshake needs a fresh fw_init");
    n = fw_encode_hello(ctx->tx, ctx->tx_size, FW_PROTOCOL_VERSION, name, strlen(name), token,
                        strlen(token));
    if (n == 0 || n > 8 + 4096) return refuse(ctx, FW_E_ARG, "name and token too long for Hello");
    sent = now(ctx);
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
    /* Nothing but Welcome (or Error, handled by dispatch) may come first. */
    ctx->state = ST_READY;
    rc = next_message(ctx, deadline(ctx));
    if (rc < 0) {
        ctx->state = ST_DEAD;
        return rc;
    }
    if (ctx->rx_type == FW_MSG_ERROR) {
        fw_error_msg e;
        fw_decode_error(ctx->rx, ctx->rx_keep, &e);
        set_hub_error(ctx, e.code, e.text);
        return fatal(ctx, FW_E_HUB, "the hub refused the handshake");
    }
    if (ctx->rx_type != FW_MSG_WELCOME || fw_decode_welcome(ctx->rx, ctx->rx_keep, &w) != FW_OK)
        return fatal(ctx, FW_E_PROTOCOL, "expected Welcome");
    if (w.version < FW_MIN_PROTOCOL_VERSION || w.version > FW_PROTOCOL_VERSION)
        return fatal(ctx, FW_E_PROTOCOL, "the hub chose a protocol version this client does not speak");
    ctx->version = w.version;
    ctx->max_payload = w.max_payload;
    ctx->max_file_size = w.max_file_size;
    ctx->chunk_size = w.chunk_size;
    ctx->max_inflight = w.max_inflight;
    n = w.hub_name.len < FW_HUB_NAME_MAX ? w.hub_name.len : FW_HUB_NAME_MAX;
    memcpy(ctx->hub_name, w.hub_name.ptr, n);
    ctx->hub_name[n] = '\0';
    if (ctx->io->now_us) clock_sample(ctx, sent, w.hub_time_us, now(ctx));
    return FW_OK;
}

/* ---------------------------------------------------------------- upload */

/* Waits for the hub's answer to offer `id`: Accept, Stored or Rejected (Rejected: FW_E_REJECTED
 * with the hub's code). Returns FW_OK with the message in rx. */
static int wait_offer_answer(fw_ctx *ctx, uint32_t id, uint16_t want)
{
    int64_t until = deadline(ctx);
    for (;;) {
        int rc = next_message(ctx, until);
        uint16_t t = ctx->rx_type;
        fw_error_msg e;
        if (rc < 0) return rc;
        if (t == FW_MSG_REJECTED || t == FW_MSG_ERROR) {
            if ((t == FW_MSG_REJECTED ? fw_decode_rejected : fw_decode_error)(ctx->rx, ctx->rx_keep, &e) != FW_OK)
                return fatal(ctx, FW_E_PROTOCOL, "bad Rejected");
            if (e.id != id) continue;
            set_hub_error(ctx, e.code, e.text);
            return refuse(ctx, t == FW_MSG_REJECTED ? FW_E_REJECTED : FW_E_HUB, "the hub refused the file");
        }
        if (t == want && ctx->rx_keep >= 4 && get_u32(ctx->rx) == id) return FW_OK;
    }
}

static int send_cancel(fw_ctx *ctx, uint32_t id)
{
    size_t n = fw_encode_cancel(ctx->tx, ctx->tx_size, id);
    return write_all(ctx, ctx->tx, n);
}

/* Reads [from, to) of the source through the tx buffer in chunks; hashes it (if hashing), and
 * sends it as Data chunks when send is set. */
static int pump(fw_ctx *ctx, uint32_t id, fw_source_fn src, void *user, uint64_t from, uint64_t to,
                int send, uint32_t chunk)
{
    while (from < to) {
        uint32_t n = to - from < chunk ? (uint32_t)(to - from) : chunk, got = 0;
        int rc;
        while (got < n) {
            long r = src(user, from + got, ctx->tx + 12 + got, n - got);
            if (r <= 0 || (unsigned long)r > n - got)
                return refuse(ctx, FW_E_SOURCE, r == 0 ? "the source ended before the announced size" : "the source failed");
            got += (uint32_t)r;
        }
#ifndef FRAMEWIRE_NO_BLAKE3
        fw_blake3_update(&ctx->hasher, ctx->tx + 12, n);
#endif
        if (send) {
            fw_encode_data_head(ctx->tx, id, n);
            if ((rc = write_all(ctx, ctx->tx, 12u + n)) != FW_OK) return rc;
        }
        from += n;
    }
    return FW_OK;
}

int fw_send_file(fw_ctx *ctx, const char *path, uint64_t size, uint8_t flags, fw_source_fn src,
                 void *src_user, fw_stored *out)
{
    size_t path_len = strlen(path), n;
    uint32_t chunk, id = 0;
    uint8_t hash[FW_HASH_LEN];
    const uint8_t *end_hash = NULL;
    fw_accept acc;
    fw_stored st;
    int rc, attempt;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    if (ctx->max_file_size != 0 && size > ctx->max_file_size)
        return refuse(ctx, FW_E_TOO_LARGE, "the file is larger than the hub's max_file_size");
    chunk = ctx->chunk_size != 0 ? ctx->chunk_size : 65536u;
    if (chunk > ctx->tx_size - 12) chunk = (uint32_t)(ctx->tx_size - 12);
    if (ctx->max_payload > 4 && chunk > ctx->max_payload - 4) chunk = ctx->max_payload - 4;
    if (chunk == 0 || ctx->max_payload <= 4) return refuse(ctx, FW_E_ARG, "no room for a Data chunk");
    flags &= FW_OFFER_OVERWRITE | FW_OFFER_NO_RESUME; /* the other bits are reserved */
#ifdef FRAMEWIRE_NO_BLAKE3
    flags |= FW_OFFER_NO_RESUME; /* a device that cannot hash cannot check a kept partial */
#endif
    for (attempt = 0;; attempt++) {
        id = new_id(ctx);
        n = fw_encode_offer(ctx->tx, ctx->tx_size, id, flags, size, path, path_len);
        if (n == 0 || n - 8 > ctx->max_payload) return refuse(ctx, FW_E_ARG, "path too long for the tx buffer");
        if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
        if ((rc = wait_offer_answer(ctx, id, FW_MSG_ACCEPT)) != FW_OK) return rc;
        if (fw_decode_accept(ctx->rx, ctx->rx_keep, &acc) != FW_OK) return fatal(ctx, FW_E_PROTOCOL, "bad Accept");
        if (acc.offset > size || (acc.offset > 0 && (flags & FW_OFFER_NO_RESUME)))
            return fatal(ctx, FW_E_PROTOCOL, "Accept offset out of range");
#ifndef FRAMEWIRE_NO_BLAKE3
        fw_blake3_init(&ctx->hasher);
        if (acc.offset > 0) {
            /* The hub holds [0, offset): continue only if those are our bytes. */
            if ((rc = pump(ctx, id, src, src_user, 0, acc.offset, 0, chunk)) != FW_OK) {
                send_cancel(ctx, id);
                return rc;
            }
            fw_blake3_final(&ctx->hasher, hash);
            if (memcmp(hash, acc.prefix_hash, FW_HASH_LEN) != 0) {
                if (attempt > 0) return fatal(ctx, FW_E_PROTOCOL, "resumed twice");
                if ((rc = send_cancel(ctx, id)) != FW_OK) return rc;
                rc = wait_offer_answer(ctx, id, 0); /* Rejected{Cancelled} ends the old id */
                if (rc != FW_E_REJECTED) return rc == FW_OK ? FW_E_PROTOCOL : rc;
                flags |= FW_OFFER_NO_RESUME;
                continue;
            }
        }
#endif
        break;
    }
    if ((rc = pump(ctx, id, src, src_user, acc.offset, size, 1, chunk)) != FW_OK) {
        if (rc == FW_E_SOURCE && send_cancel(ctx, id) == FW_OK) {
            wait_offer_answer(ctx, id, 0);
            ctx->detail = "the source failed or ended early; upload cancelled";
        }
        return rc;
    }
#ifndef FRAMEWIRE_NO_BLAKE3
    fw_blake3_final(&ctx->hasher, hash);
    end_hash = hash;
#else
    (void)hash;
#endif
    n = fw_encode_end(ctx->tx, ctx->tx_size, id, end_hash);
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
    if ((rc = wait_offer_answer(ctx, id, FW_MSG_STORED)) != FW_OK) return rc;
    if (fw_decode_stored(ctx->rx, ctx->rx_keep, &st) != FW_OK) return fatal(ctx, FW_E_PROTOCOL, "bad Stored");
    if (out != NULL) *out = st;
    if (st.size != size) return refuse(ctx, FW_E_MISMATCH, "the hub stored another size");
    if (end_hash != NULL && memcmp(st.hash, end_hash, FW_HASH_LEN) != 0)
        return refuse(ctx, FW_E_MISMATCH, "the hub stored another hash");
    return FW_OK;
}

/* ---------------------------------------------------------------- live frames */

int fw_publish(fw_ctx *ctx, const char *stream, uint32_t max_latency_ms, uint16_t window)
{
    size_t len = strlen(stream), n;
    int rc;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    if (len > 0xFFFF || 35 + len > ctx->tx_size) return refuse(ctx, FW_E_ARG, "stream name too long");
    /* Without a clock capture_us is 0, which any latency limit would count as ancient. */
    if (ctx->io->now_us == NULL) max_latency_ms = 0;
    n = fw_encode_publish(ctx->tx, ctx->tx_size, stream, len, max_latency_ms);
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
    ctx->stream = stream;
    ctx->stream_len = (uint16_t)len;
    ctx->window = window != 0 ? window : 2;
    return FW_OK;
}

/* Reads until fewer than `limit` frames are unacknowledged. */
static int wait_acks(fw_ctx *ctx, uint32_t limit)
{
    int64_t until = deadline(ctx);
    while (ctx->frames_unacked >= limit) {
        int rc = step(ctx, until);
        if (rc < 0) return rc;
        if (ctx->frames_unacked >= limit && until != 0 && now(ctx) >= until)
            return refuse(ctx, FW_E_TIMEOUT, "no FrameAck in time");
    }
    return FW_OK;
}

static int frame_head(fw_ctx *ctx, uint8_t format, uint32_t width, uint32_t height, uint32_t len)
{
    int64_t capture = 0;
    size_t n;
    int rc;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    if (ctx->stream == NULL) return refuse(ctx, FW_E_STATE, "fw_publish first");
    if ((uint64_t)27 + ctx->stream_len + len > ctx->max_payload)
        return refuse(ctx, FW_E_TOO_LARGE, "frame larger than the hub's max_payload");
    if ((rc = wait_acks(ctx, ctx->window)) != FW_OK) return rc;
    if (ctx->io->now_us) capture = now(ctx) + (ctx->clock_rtt_us >= 0 ? ctx->clock_offset_us : 0);
    n = fw_encode_frame_head(ctx->tx, ctx->tx_size, ctx->stream, ctx->stream_len, ctx->frame_seq,
                             capture, format, width, height, len);
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
    ctx->frame_seq++;
    ctx->frames_unacked++;
    return FW_OK;
}

int fw_publish_frame(fw_ctx *ctx, uint8_t format, uint32_t width, uint32_t height, const uint8_t *data,
                     uint32_t len)
{
    int rc = frame_head(ctx, format, width, height, len);
    return rc != FW_OK ? rc : write_all(ctx, data, len);
}

int fw_publish_frame_from(fw_ctx *ctx, uint8_t format, uint32_t width, uint32_t height, uint32_t len,
                          fw_source_fn src, void *src_user)
{
    uint32_t done = 0;
    int rc = frame_head(ctx, format, width, height, len);
    while (rc == FW_OK && done < len) {
        size_t want = len - done < ctx->tx_size ? len - done : ctx->tx_size;
        long r = src(src_user, done, ctx->tx, want);
        /* The head is out: a short image would leave the stream out of step. */
        if (r <= 0 || (unsigned long)r > want) return fatal(ctx, FW_E_SOURCE, "the frame source failed");
        rc = write_all(ctx, ctx->tx, (size_t)r);
        done += (uint32_t)r;
    }
    return rc;
}

int fw_publish_drain(fw_ctx *ctx)
{
    int rc = ready(ctx);
    return rc != FW_OK ? rc : wait_acks(ctx, 1);
}

/* ---------------------------------------------------------------- device, text, ping */

int fw_register_device(fw_ctx *ctx, const char *name, fw_command_fn handler)
{
    size_t n, name_len = strlen(name);
    int64_t until;
    int rc;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    n = fw_encode_register_device(ctx->tx, ctx->tx_size, name, name_len);
    if (n == 0) return refuse(ctx, FW_E_ARG, "device name too long");
    ctx->on_command = handler;
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK || ctx->version < 2) return rc;
    /* Version 2: the hub says when the registration took effect (before any command for it). */
    until = deadline(ctx);
    for (;;) {
        fw_registered reg;
        if ((rc = next_message(ctx, until)) < 0) return rc;
        if (ctx->rx_type == FW_MSG_REGISTERED && fw_decode_registered(ctx->rx, ctx->rx_keep, &reg) == FW_OK &&
            reg.name.len == name_len && memcmp(reg.name.ptr, name, name_len) == 0)
            return FW_OK;
    }
}

int fw_poll(fw_ctx *ctx)
{
    int rc = ready(ctx);
    if (rc == FW_OK) rc = step(ctx, 0);
    return rc < 0 ? rc : (int)ctx->rx_type;
}

int fw_send_text(fw_ctx *ctx, const char *text, char *echo, size_t echo_cap)
{
    size_t len = strlen(text), n;
    uint32_t id;
    int64_t until;
    int rc;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    id = new_id(ctx);
    n = fw_encode_text(ctx->tx, ctx->tx_size, id, text, len);
    if (n == 0 || n - 8 > ctx->max_payload) return refuse(ctx, FW_E_TOO_LARGE, "text too long");
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
    until = deadline(ctx);
    for (;;) {
        fw_text_msg t;
        fw_error_msg e;
        if ((rc = next_message(ctx, until)) < 0) return rc;
        if (ctx->rx_type == FW_MSG_ERROR && fw_decode_error(ctx->rx, ctx->rx_keep, &e) == FW_OK && e.id == id) {
            set_hub_error(ctx, e.code, e.text);
            return refuse(ctx, FW_E_HUB, "the hub refused the text");
        }
        if (ctx->rx_type == FW_MSG_TEXT && fw_decode_text(ctx->rx, ctx->rx_keep, &t) == FW_OK && t.id == id) {
            if (echo != NULL && echo_cap > 0) {
                n = t.text.len < echo_cap - 1 ? t.text.len : echo_cap - 1;
                memcpy(echo, t.text.ptr, n);
                echo[n] = '\0';
            }
            return FW_OK;
        }
    }
}

void fw_on_text(fw_ctx *ctx, fw_text_fn handler) { ctx->on_text = handler; }

int fw_send_text_to(fw_ctx *ctx, const char *to, const char *text, uint8_t *status)
{
    size_t n;
    uint32_t id, got;
    uint8_t st;
    int64_t until;
    int rc;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    id = new_id(ctx);
    n = fw_encode_text_to(ctx->tx, ctx->tx_size, id, to, strlen(to), text, strlen(text));
    if (n == 0 || n - 8 > ctx->max_payload) return refuse(ctx, FW_E_TOO_LARGE, "text too long");
    if ((rc = write_all(ctx, ctx->tx, n)) != FW_OK) return rc;
    until = deadline(ctx);
    for (;;) {
        if ((rc = next_message(ctx, until)) < 0) return rc;
        if (ctx->rx_type == FW_MSG_DELIVERY && fw_decode_delivery(ctx->rx, ctx->rx_keep, &got, &st) == FW_OK &&
            got == id) {
            if (status != NULL) *status = st;
            return FW_OK;
        }
    }
}

int fw_ping(fw_ctx *ctx, int64_t *rtt_us, int64_t *offset_us)
{
    uint8_t buf[24];
    uint64_t nonce;
    int64_t until, received;
    fw_pong pong;
    int rc;
    if ((rc = ready(ctx)) != FW_OK) return rc;
    nonce = ++ctx->ping_nonce;
    fw_encode_ping(buf, sizeof buf, nonce, now(ctx));
    if ((rc = write_all(ctx, buf, sizeof buf)) != FW_OK) return rc;
    until = deadline(ctx);
    do {
        if ((rc = next_message(ctx, until)) < 0) return rc;
    } while (ctx->rx_type != FW_MSG_PONG || fw_decode_pong(ctx->rx, ctx->rx_keep, &pong) != FW_OK ||
             pong.nonce != nonce);
    received = now(ctx);
    if (rtt_us) *rtt_us = received - pong.ping_time_us > 0 ? received - pong.ping_time_us : 0;
    if (offset_us) *offset_us = ctx->io->now_us ? pong.time_us - (pong.ping_time_us + received) / 2 : 0;
    if (ctx->io->now_us) clock_sample(ctx, pong.ping_time_us, pong.time_us, received);
    return FW_OK;
}

/* ---------------------------------------------------------------- names */

const char *fw_strerror(int err)
{
    switch (err) {
    case FW_OK: return "ok";
    case FW_E_IO: return "transport error";
    case FW_E_CLOSED: return "connection closed by the hub";
    case FW_E_TIMEOUT: return "timed out";
    case FW_E_PROTOCOL: return "protocol error";
    case FW_E_TOO_LARGE: return "too large";
    case FW_E_HUB: return "error from the hub";
    case FW_E_REJECTED: return "rejected by the hub";
    case FW_E_ARG: return "bad argument";
    case FW_E_SOURCE: return "source read failed";
    case FW_E_MISMATCH: return "stored size or hash differs";
    case FW_E_STATE: return "wrong state";
    default: return "unknown error";
    }
}

const char *fw_code_name(uint16_t code)
{
    static const char *const names[] = {
        "Unknown", "NotFramewire", "UnsupportedVersion", "Malformed", "TooLarge", "BadPath",
        "Exists", "HashMismatch", "StorageFull", "NotFound", "Busy", "Unauthorized", "Forbidden",
        "Timeout", "ProtocolViolation", "SizeMismatch", "Cancelled", "ShuttingDown", "Internal"};
    return code < sizeof names / sizeof names[0] ? names[code] : names[0];
}
