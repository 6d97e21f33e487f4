/*
 * The C client against docs/protocol-vectors.json (every client->hub vector encoded, every
 * hub->client vector decoded), BLAKE3 against the official test vectors, and the I/O layer
 * against a scripted hub whose bytes arrive in odd splits, with timeouts in the middle.
 *
 * Usage: test_vectors [path/to/protocol-vectors.json]   (default ../../docs/protocol-vectors.json)
 * The test may use the heap and stdio; the library may not.
 */
#include "../framewire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* ================================================================ a tiny JSON reader */

typedef struct jv {
    char kind; /* o a s n t f z */
    char *s;   /* string bytes (NUL-terminated), kind s */
    size_t slen;
    uint64_t num; /* magnitude, kind n (integers only: 64-bit values exceed a double) */
    int neg;
    size_t n;        /* items of an array or object */
    struct jv *items;
    char **keys; /* object keys */
} jv;

static const char *jp; /* parse position */

static void jfail(const char *what)
{
    printf("FAIL json: %s near \"%.20s\"\n", what, jp);
    exit(2);
}

static void jws(void)
{
    while (*jp == ' ' || *jp == '\n' || *jp == '\r' || *jp == '\t') jp++;
}

static void jutf8(char **out, unsigned long cp)
{
    char *o = *out;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *out = o;
}

static unsigned long jhex4(void)
{
    unsigned long v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = *jp++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned long)(c - 'A' + 10);
        else jfail("bad \\u escape");
    }
    return v;
}

static char *jstring(size_t *len)
{
    const char *end;
    char *out, *o;
    if (*jp != '"') jfail("expected a string");
    jp++;
    for (end = jp; *end && *end != '"'; end++)
        if (*end == '\\' && end[1]) end++;
    out = o = malloc((size_t)(end - jp) + 1);
    while (*jp != '"') {
        if (*jp == '\0') jfail("unterminated string");
        if (*jp != '\\') {
            *o++ = *jp++;
            continue;
        }
        jp++;
        switch (*jp++) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned long cp = jhex4();
            if (cp >= 0xD800 && cp < 0xDC00 && jp[0] == '\\' && jp[1] == 'u') {
                unsigned long lo;
                jp += 2;
                lo = jhex4();
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            jutf8(&o, cp);
            break;
        }
        default: jfail("bad escape");
        }
    }
    jp++;
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

static void jvalue(jv *v)
{
    memset(v, 0, sizeof *v);
    jws();
    if (*jp == '{' || *jp == '[') {
        char close = *jp == '{' ? '}' : ']';
        v->kind = *jp == '{' ? 'o' : 'a';
        jp++;
        jws();
        while (*jp != close) {
            v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
            if (v->kind == 'o') {
                size_t kl;
                v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
                v->keys[v->n] = jstring(&kl);
                jws();
                if (*jp++ != ':') jfail("expected ':'");
            }
            jvalue(&v->items[v->n++]);
            jws();
            if (*jp == ',') {
                jp++;
                jws();
            } else if (*jp != close) {
                jfail("expected ',' or a closing bracket");
            }
        }
        jp++;
    } else if (*jp == '"') {
        v->kind = 's';
        v->s = jstring(&v->slen);
    } else if (*jp == '-' || (*jp >= '0' && *jp <= '9')) {
        v->kind = 'n';
        if (*jp == '-') {
            v->neg = 1;
            jp++;
        }
        while (*jp >= '0' && *jp <= '9') v->num = v->num * 10 + (uint64_t)(*jp++ - '0');
        if (*jp == '.' || *jp == 'e' || *jp == 'E') jfail("only integers are expected");
    } else if (strncmp(jp, "true", 4) == 0) {
        v->kind = 't';
        jp += 4;
    } else if (strncmp(jp, "false", 5) == 0) {
        v->kind = 'f';
        jp += 5;
    } else if (strncmp(jp, "null", 4) == 0) {
        v->kind = 'z';
        jp += 4;
    } else {
        jfail("unexpected character");
    }
}

static const jv *jget(const jv *o, const char *key)
{
    size_t i;
    for (i = 0; o && o->kind == 'o' && i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0) return &o->items[i];
    return NULL;
}

static const char *jstr(const jv *o, const char *key)
{
    const jv *v = jget(o, key);
    if (!v || v->kind != 's') {
        printf("FAIL json: missing string field %s\n", key);
        exit(2);
    }
    return v->s;
}

static size_t jstrlen(const jv *o, const char *key)
{
    jstr(o, key);
    return jget(o, key)->slen;
}

static uint64_t jnum(const jv *o, const char *key)
{
    const jv *v = jget(o, key);
    if (!v || v->kind != 'n') {
        printf("FAIL json: missing number field %s\n", key);
        exit(2);
    }
    return v->neg ? (uint64_t)(-(int64_t)v->num) : v->num;
}

/* ================================================================ helpers */

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2, i;
    if (n > cap) {
        printf("FAIL hex longer than %lu bytes\n", (unsigned long)cap);
        exit(2);
    }
    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void tohex(const uint8_t *p, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

static int same_bytes(const char *what, const uint8_t *got, size_t got_len, const uint8_t *want,
                      size_t want_len)
{
    static char a[8192], b[8192];
    if (got_len == want_len && memcmp(got, want, want_len) == 0) return 1;
    tohex(got, got_len < 4000 ? got_len : 4000, a);
    tohex(want, want_len < 4000 ? want_len : 4000, b);
    printf("  %s:\n    got  %s\n    want %s\n", what, a, b);
    return 0;
}

static int str_is(fw_str s, const char *want, size_t want_len)
{
    return s.len == want_len && memcmp(s.ptr, want, want_len) == 0;
}

/* ================================================================ vectors: encoders */

/* Encodes a client->hub vector's fields. Returns the length, 0 if the library cannot encode it. */
static size_t encode_vector(const char *name, const jv *f, uint8_t *buf, size_t cap)
{
    uint8_t tmp[1024];
    if (strcmp(name, "hello") == 0)
        return fw_encode_hello(buf, cap, (uint16_t)jnum(f, "version"), jstr(f, "name"),
                               jstrlen(f, "name"), jstr(f, "token"), jstrlen(f, "token"));
    if (strcmp(name, "ping") == 0)
        return fw_encode_ping(buf, cap, jnum(f, "nonce"), (int64_t)jnum(f, "time_us"));
    if (strcmp(name, "pong") == 0)
        return fw_encode_pong(buf, cap, jnum(f, "nonce"), (int64_t)jnum(f, "ping_time_us"),
                              (int64_t)jnum(f, "time_us"));
    if (strcmp(name, "text") == 0)
        return fw_encode_text(buf, cap, (uint32_t)jnum(f, "id"), jstr(f, "text"), jstrlen(f, "text"));
    if (strcmp(name, "command") == 0) {
        const jv *a = jget(f, "args");
        fw_str args[16];
        size_t i;
        for (i = 0; i < a->n && i < 16; i++) {
            args[i].ptr = a->items[i].s;
            args[i].len = (uint32_t)a->items[i].slen;
        }
        return fw_encode_command(buf, cap, (uint32_t)jnum(f, "id"), jstr(f, "target"),
                                 jstrlen(f, "target"), jstr(f, "command"), jstrlen(f, "command"),
                                 args, (uint16_t)a->n);
    }
    if (strcmp(name, "reply") == 0) {
        size_t n = unhex(jstr(f, "body_hex"), tmp, sizeof tmp);
        return fw_encode_reply(buf, cap, (uint32_t)jnum(f, "id"), (uint8_t)jnum(f, "status"), tmp, n);
    }
    if (strcmp(name, "text_to") == 0)
        return fw_encode_text_to(buf, cap, (uint32_t)jnum(f, "id"), jstr(f, "to"), jstrlen(f, "to"),
                                 jstr(f, "text"), jstrlen(f, "text"));
    if (strcmp(name, "register_device") == 0)
        return fw_encode_register_device(buf, cap, jstr(f, "name"), jstrlen(f, "name"));
    if (strcmp(name, "offer") == 0)
        return fw_encode_offer(buf, cap, (uint32_t)jnum(f, "id"), (uint8_t)jnum(f, "flags"),
                               jnum(f, "size"), jstr(f, "path"), jstrlen(f, "path"));
    if (strcmp(name, "data") == 0) {
        size_t n = unhex(jstr(f, "bytes_hex"), tmp, sizeof tmp);
        if (12 + n > cap) return 0;
        fw_encode_data_head(buf, (uint32_t)jnum(f, "id"), (uint32_t)n);
        memcpy(buf + 12, tmp, n);
        return 12 + n;
    }
    if (strcmp(name, "end") == 0 || strcmp(name, "end_without_hash") == 0) {
        unhex(jstr(f, "hash"), tmp, sizeof tmp);
        return fw_encode_end(buf, cap, (uint32_t)jnum(f, "id"), jnum(f, "has_hash") ? tmp : NULL);
    }
    if (strcmp(name, "cancel") == 0) return fw_encode_cancel(buf, cap, (uint32_t)jnum(f, "id"));
    if (strcmp(name, "get") == 0)
        return fw_encode_get(buf, cap, (uint32_t)jnum(f, "id"), jnum(f, "offset"), jstr(f, "path"),
                             jstrlen(f, "path"));
    if (strcmp(name, "list") == 0)
        return fw_encode_list(buf, cap, (uint32_t)jnum(f, "id"), (uint32_t)jnum(f, "limit"),
                              jstr(f, "prefix"), jstrlen(f, "prefix"), jstr(f, "after"),
                              jstrlen(f, "after"));
    if (strcmp(name, "delete") == 0)
        return fw_encode_delete(buf, cap, (uint32_t)jnum(f, "id"), jstr(f, "path"), jstrlen(f, "path"));
    if (strcmp(name, "frame") == 0) {
        size_t n = unhex(jstr(f, "payload_hex"), tmp, sizeof tmp), h;
        h = fw_encode_frame_head(buf, cap, jstr(f, "stream"), jstrlen(f, "stream"), jnum(f, "seq"),
                                 (int64_t)jnum(f, "capture_us"), (uint8_t)jnum(f, "format"),
                                 (uint32_t)jnum(f, "width"), (uint32_t)jnum(f, "height"), (uint32_t)n);
        if (h == 0 || h + n > cap) return 0;
        memcpy(buf + h, tmp, n);
        return h + n;
    }
    if (strcmp(name, "subscribe") == 0)
        return fw_encode_subscribe(buf, cap, jstr(f, "stream"), jstrlen(f, "stream"),
                                   (uint16_t)jnum(f, "window"));
    if (strcmp(name, "unsubscribe") == 0)
        return fw_encode_unsubscribe(buf, cap, jstr(f, "stream"), jstrlen(f, "stream"));
    if (strcmp(name, "frame_ack") == 0)
        return fw_encode_frame_ack(buf, cap, jstr(f, "stream"), jstrlen(f, "stream"), jnum(f, "seq"));
    if (strcmp(name, "publish") == 0)
        return fw_encode_publish(buf, cap, jstr(f, "stream"), jstrlen(f, "stream"),
                                 (uint32_t)jnum(f, "max_latency_ms"));
    return 0;
}

/* ================================================================ vectors: decoders */

static int hash_is(const uint8_t *got, const jv *f, const char *key)
{
    uint8_t want[FW_HASH_LEN];
    return unhex(jstr(f, key), want, sizeof want) == FW_HASH_LEN && memcmp(got, want, FW_HASH_LEN) == 0;
}

static int bytes_is(const void *got, size_t len, const jv *f, const char *key)
{
    uint8_t want[1024];
    size_t n = unhex(jstr(f, key), want, sizeof want);
    return n == len && memcmp(got, want, n) == 0;
}

#define STR_FIELD(s, key) str_is((s), jstr(f, key), jstrlen(f, key))

/* Decodes a hub->client vector and compares with its fields: 1 ok, 0 mismatch, -1 not decoded. */
static int decode_vector(const char *name, const jv *f, const uint8_t *p, uint32_t len)
{
    if (strcmp(name, "welcome") == 0) {
        fw_welcome w;
        return fw_decode_welcome(p, len, &w) == FW_OK && w.version == jnum(f, "version") &&
               (uint64_t)w.hub_time_us == jnum(f, "hub_time_us") &&
               w.max_payload == jnum(f, "max_payload") && w.max_file_size == jnum(f, "max_file_size") &&
               w.chunk_size == jnum(f, "chunk_size") && w.max_inflight == jnum(f, "max_inflight") &&
               STR_FIELD(w.hub_name, "hub_name");
    }
    if (strcmp(name, "error") == 0) {
        fw_error_msg e;
        return fw_decode_error(p, len, &e) == FW_OK && e.code == jnum(f, "code") &&
               e.id == jnum(f, "id") && STR_FIELD(e.text, "message");
    }
    if (strcmp(name, "rejected") == 0) {
        fw_error_msg e;
        return fw_decode_rejected(p, len, &e) == FW_OK && e.code == jnum(f, "code") &&
               e.id == jnum(f, "id") && STR_FIELD(e.text, "reason");
    }
    if (strcmp(name, "ping") == 0) {
        fw_ping_msg m;
        return fw_decode_ping(p, len, &m) == FW_OK && m.nonce == jnum(f, "nonce") &&
               (uint64_t)m.time_us == jnum(f, "time_us");
    }
    if (strcmp(name, "pong") == 0) {
        fw_pong m;
        return fw_decode_pong(p, len, &m) == FW_OK && m.nonce == jnum(f, "nonce") &&
               (uint64_t)m.ping_time_us == jnum(f, "ping_time_us") &&
               (uint64_t)m.time_us == jnum(f, "time_us");
    }
    if (strcmp(name, "text") == 0) {
        fw_text_msg t;
        return fw_decode_text(p, len, &t) == FW_OK && t.id == jnum(f, "id") && STR_FIELD(t.text, "text");
    }
    if (strcmp(name, "command") == 0) {
        fw_command c;
        const jv *a = jget(f, "args");
        size_t i;
        if (fw_decode_command(p, len, &c) != FW_OK || c.id != jnum(f, "id") ||
            !STR_FIELD(c.target, "target") || !STR_FIELD(c.command, "command") || c.argc != a->n)
            return 0;
        for (i = 0; i < a->n; i++) {
            fw_str s;
            if (fw_command_arg(&c, (uint16_t)i, &s) != FW_OK || !str_is(s, a->items[i].s, a->items[i].slen))
                return 0;
        }
        return 1;
    }
    if (strcmp(name, "reply") == 0) {
        fw_reply_msg r;
        return fw_decode_reply(p, len, &r) == FW_OK && r.id == jnum(f, "id") &&
               r.status == jnum(f, "status") && bytes_is(r.body.ptr, r.body.len, f, "body_hex");
    }
    if (strcmp(name, "accept") == 0) {
        fw_accept a;
        return fw_decode_accept(p, len, &a) == FW_OK && a.id == jnum(f, "id") &&
               a.offset == jnum(f, "offset") && hash_is(a.prefix_hash, f, "prefix_hash");
    }
    if (strcmp(name, "data") == 0) {
        fw_data d;
        return fw_decode_data(p, len, &d) == FW_OK && d.id == jnum(f, "id") &&
               bytes_is(d.bytes, d.len, f, "bytes_hex");
    }
    if (strcmp(name, "end") == 0 || strcmp(name, "end_without_hash") == 0) {
        fw_end e;
        return fw_decode_end(p, len, &e) == FW_OK && e.id == jnum(f, "id") &&
               e.has_hash == jnum(f, "has_hash") && hash_is(e.hash, f, "hash");
    }
    if (strcmp(name, "stored") == 0) {
        fw_stored s;
        return fw_decode_stored(p, len, &s) == FW_OK && s.id == jnum(f, "id") &&
               s.status == jnum(f, "status") && s.size == jnum(f, "size") && hash_is(s.hash, f, "hash");
    }
    if (strcmp(name, "file_info") == 0) {
        fw_file_info i;
        return fw_decode_file_info(p, len, &i) == FW_OK && i.id == jnum(f, "id") &&
               i.size == jnum(f, "size") && hash_is(i.hash, f, "hash");
    }
    if (strcmp(name, "deleted") == 0) {
        fw_deleted d;
        return fw_decode_deleted(p, len, &d) == FW_OK && d.id == jnum(f, "id") && d.size == jnum(f, "size");
    }
    if (strcmp(name, "frame_ack") == 0) {
        fw_frame_ack a;
        return fw_decode_frame_ack(p, len, &a) == FW_OK && STR_FIELD(a.stream, "stream") &&
               a.seq == jnum(f, "seq");
    }
    if (strcmp(name, "frame") == 0) {
        fw_frame fr;
        return fw_decode_frame(p, len, &fr) == FW_OK && STR_FIELD(fr.stream, "stream") &&
               fr.seq == jnum(f, "seq") && (uint64_t)fr.capture_us == jnum(f, "capture_us") &&
               fr.format == jnum(f, "format") && fr.width == jnum(f, "width") &&
               fr.height == jnum(f, "height") && bytes_is(fr.payload, fr.payload_len, f, "payload_hex");
    }
    if (strcmp(name, "delivery") == 0) {
        uint32_t id;
        uint8_t st;
        return fw_decode_delivery(p, len, &id, &st) == FW_OK && id == jnum(f, "id") && st == jnum(f, "status");
    }
    if (strcmp(name, "text_from") == 0) {
        fw_text_from t;
        return fw_decode_text_from(p, len, &t) == FW_OK && STR_FIELD(t.from, "from") && STR_FIELD(t.to, "to") &&
               STR_FIELD(t.text, "text");
    }
    if (strcmp(name, "registered") == 0) {
        fw_registered r;
        return fw_decode_registered(p, len, &r) == FW_OK && STR_FIELD(r.name, "name");
    }
    if (strcmp(name, "subscribed") == 0) {
        fw_subscribed s;
        return fw_decode_subscribed(p, len, &s) == FW_OK && STR_FIELD(s.stream, "stream") &&
               s.window == jnum(f, "window");
    }
    return -1;
}

/* Vectors the library neither encodes nor decodes, on purpose (a device does not list). */
/* Following the hub's events is for programs, not devices. */
static const char *const NOT_FOR_DEVICES[] = {"list_page", "follow", "following", "event"};

static void test_vectors(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *text;
    long size;
    jv root;
    const jv *vectors;
    size_t i, k;
    if (!fp) {
        printf("FAIL cannot open %s (pass the vectors' path as the first argument)\n", path);
        exit(2);
    }
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    text = malloc((size_t)size + 1);
    if (fread(text, 1, (size_t)size, fp) != (size_t)size) jfail("short read");
    text[size] = '\0';
    fclose(fp);
    jp = text;
    jvalue(&root);
    vectors = jget(&root, "vectors");
    CHECK(vectors && vectors->kind == 'a' && vectors->n >= 28, "the file has a vectors array");
    CHECK(jnum(&root, "version") == FW_PROTOCOL_VERSION, "protocol version %u", FW_PROTOCOL_VERSION);
    for (i = 0; vectors && i < vectors->n; i++) {
        const jv *v = &vectors->items[i], *f = jget(v, "fields");
        const char *name = jstr(v, "name");
        static uint8_t want[4096], got[4096];
        size_t want_len = unhex(jstr(v, "hex"), want, sizeof want), got_len;
        uint16_t type;
        uint32_t len;
        int covered = 0, d;
        CHECK(fw_check_header(want, &type, &len) == FW_OK && type == jnum(v, "type") &&
                  len == want_len - 8,
              "%s: header type %u len %lu", name, (unsigned)type, (unsigned long)len);
        got_len = encode_vector(name, f, got, sizeof got);
        if (got_len > 0) {
            covered = 1;
            CHECK(same_bytes(name, got, got_len, want, want_len), "encode %s", name);
            /* One byte less room than needed: the encoder refuses instead of overflowing. */
            CHECK(encode_vector(name, f, got, want_len - 1) == 0, "encode %s into a short buffer", name);
        }
        d = decode_vector(name, f, want + 8, (uint32_t)(want_len - 8));
        if (d >= 0) {
            covered = 1;
            CHECK(d == 1, "decode %s", name);
            /* A payload one byte short or one byte long is a decode error. */
            if (strcmp(name, "data") != 0 && strcmp(name, "frame") != 0 && strcmp(name, "text") != 0 &&
                strcmp(name, "error") != 0 && strcmp(name, "rejected") != 0 && strcmp(name, "reply") != 0 &&
                strcmp(name, "text_from") != 0) {
                CHECK(decode_vector(name, f, want + 8, (uint32_t)(want_len - 9)) == 0, "decode short %s", name);
                CHECK(decode_vector(name, f, want + 8, (uint32_t)(want_len - 7)) == 0, "decode long %s", name);
            }
        }
        for (k = 0; k < sizeof NOT_FOR_DEVICES / sizeof NOT_FOR_DEVICES[0]; k++)
            if (strcmp(name, NOT_FOR_DEVICES[k]) == 0) covered = 1;
        CHECK(covered, "vector %s is neither encoded nor decoded by the C client", name);
    }
    printf("vectors: %lu checked from %s\n", (unsigned long)(vectors ? vectors->n : 0), path);
}

/* ================================================================ decoder strictness */

static void test_decoder_rules(void)
{
    uint8_t h[8] = {0x37, 0, 0, 0, 0, 0, 0, 0}, p[64];
    uint16_t type;
    uint32_t len;
    fw_stored st;
    fw_command c;
    fw_end e;
    fw_reply_msg r;
    CHECK(fw_check_header(h, &type, &len) == FW_E_PROTOCOL, "type 0x37 is unknown");
    h[0] = 0x44;
    CHECK(fw_check_header(h, &type, &len) == FW_OK, "type 0x44 (Publish) is known");
    h[0] = 0x23;
    CHECK(fw_check_header(h, &type, &len) == FW_OK, "type 0x23 (Registered) is known");
    h[0] = 0x45;
    CHECK(fw_check_header(h, &type, &len) == FW_OK, "type 0x45 (Subscribed) is known");
    h[0] = 0x24;
    CHECK(fw_check_header(h, &type, &len) == FW_E_PROTOCOL, "type 0x24 is unknown");
    h[0] = 0x46;
    CHECK(fw_check_header(h, &type, &len) == FW_E_PROTOCOL, "type 0x46 is unknown");
    h[0] = 0x44;
    h[2] = 1;
    CHECK(fw_check_header(h, &type, &len) == FW_E_PROTOCOL, "flags must be 0");
    memset(p, 0, sizeof p);
    p[4] = 3; /* Stored.status 3 */
    CHECK(fw_decode_stored(p, 45, &st) == FW_E_PROTOCOL, "Stored status 3 is a decode error");
    p[4] = 2;
    CHECK(fw_decode_stored(p, 45, &st) == FW_OK, "Stored status 2 (Unchanged)");
    p[4] = 2;
    CHECK(fw_decode_end(p, 37, &e) == FW_E_PROTOCOL, "End has_hash 2 is a decode error");
    p[4] = 5;
    CHECK(fw_decode_reply(p, 5, &r) == FW_E_PROTOCOL, "Reply status 5 is a decode error");
    /* Command{1, target "\xff", command "", argc 0}: not UTF-8. */
    memset(p, 0, sizeof p);
    p[0] = 1;
    p[4] = 1;
    p[6] = 0xFF;
    CHECK(fw_decode_command(p, 11, &c) == FW_E_PROTOCOL, "a str16 that is not UTF-8");
    p[6] = 'a';
    CHECK(fw_decode_command(p, 11, &c) == FW_OK && c.argc == 0, "Command with no arguments");
    p[9] = 1; /* argc 1 but no argument bytes */
    CHECK(fw_decode_command(p, 11, &c) == FW_E_PROTOCOL, "argc larger than the arguments");
    CHECK(strcmp(fw_code_name(6), "Exists") == 0 && strcmp(fw_code_name(99), "Unknown") == 0, "code names");
}

/* ================================================================ BLAKE3 */

#ifndef FRAMEWIRE_NO_BLAKE3
static void test_blake3(void)
{
    /* Official test vectors (BLAKE3 test_vectors.json, input byte i = i % 251), checked with
     * the Python blake3 package. */
    static const struct {
        size_t len;
        const char *hex;
    } V[] = {
        {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
        {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
        {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
        {1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
        {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
        {2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
        {3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
        {31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
        {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
    };
    static const size_t pieces[] = {1, 7, 63, 64, 65, 1000, 1024, 4096};
    size_t i, j, k;
    uint8_t *in = malloc(102400), out[32];
    char hex[65];
    for (i = 0; i < 102400; i++) in[i] = (uint8_t)(i % 251);
    for (i = 0; i < sizeof V / sizeof V[0]; i++) {
        fw_blake3 h;
        fw_blake3_init(&h);
        fw_blake3_update(&h, in, V[i].len);
        fw_blake3_final(&h, out);
        tohex(out, 32, hex);
        CHECK(strcmp(hex, V[i].hex) == 0, "blake3 of %lu bytes: %s", (unsigned long)V[i].len, hex);
        /* The same input fed in pieces, finalizing half-way (final does not disturb the state). */
        for (j = 0; j < sizeof pieces / sizeof pieces[0]; j++) {
            fw_blake3_init(&h);
            for (k = 0; k < V[i].len; k += pieces[j]) {
                fw_blake3_update(&h, in + k, V[i].len - k < pieces[j] ? V[i].len - k : pieces[j]);
                if (k == V[i].len / 2) fw_blake3_final(&h, out);
            }
            fw_blake3_final(&h, out);
            tohex(out, 32, hex);
            CHECK(strcmp(hex, V[i].hex) == 0, "blake3 of %lu bytes in pieces of %lu", (unsigned long)V[i].len,
                  (unsigned long)pieces[j]);
        }
    }
    free(in);
    printf("blake3: %lu vectors\n", (unsigned long)(sizeof V / sizeof V[0]));
}
#endif

/* ================================================================ a scripted hub */

/* The hub's bytes are given up front; reads hand them out in pieces of 1, 2, ... `split`
 * bytes; one read returns FW_E_TIMEOUT when the position reaches `timeout_at`. Writes are
 * accepted at most 700 bytes at a time and collected in out. */
typedef struct mock {
    uint8_t in[65536];
    size_t in_len, in_pos, split, reads;
    size_t timeout_at;
    int timed_out;
    uint8_t *out;
    size_t out_len, out_cap;
    int64_t clock;
} mock;

static long m_write(fw_ctx *ctx, const uint8_t *b, size_t n)
{
    mock *m = ctx->user;
    if (n > 700) n = 700;
    if (m->out_len + n > m->out_cap) {
        m->out_cap = (m->out_len + n) * 2;
        m->out = realloc(m->out, m->out_cap);
    }
    memcpy(m->out + m->out_len, b, n);
    m->out_len += n;
    return (long)n;
}

static long m_read(fw_ctx *ctx, uint8_t *b, size_t n)
{
    mock *m = ctx->user;
    size_t piece = 1 + m->reads++ % m->split;
    if (!m->timed_out && m->timeout_at != 0 && m->in_pos == m->timeout_at) {
        m->timed_out = 1;
        return FW_E_TIMEOUT;
    }
    if (m->in_pos == m->in_len) return 0;
    if (n > piece) n = piece;
    if (n > m->in_len - m->in_pos) n = m->in_len - m->in_pos;
    memcpy(b, m->in + m->in_pos, n);
    m->in_pos += n;
    return (long)n;
}

static int64_t m_now(fw_ctx *ctx)
{
    mock *m = ctx->user;
    return m->clock += 10;
}

static const fw_io MOCK_IO = {m_write, m_read, m_now};

static void m_add(mock *m, const uint8_t *p, size_t n)
{
    memcpy(m->in + m->in_len, p, n);
    m->in_len += n;
}

static uint8_t *le(uint8_t *p, uint64_t v, int n)
{
    int i;
    for (i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + n;
}

/* Hub -> client messages the library has no encoder for. */
static void hub_msg(mock *m, uint16_t type, const uint8_t *payload, size_t len)
{
    uint8_t h[8];
    le(le(le(h, type, 2), 0, 2), len, 4);
    m_add(m, h, 8);
    m_add(m, payload, len);
}

static uint16_t welcome_version = 1; /* what the mock hub answers in Welcome */

static void hub_welcome(mock *m)
{
    uint8_t p[64], *q = p;
    q = le(q, welcome_version, 2);
    q = le(q, 1700000000000000ull, 8);
    q = le(q, 16u << 20, 4);
    q = le(q, 1ull << 40, 8);
    q = le(q, 1u << 20, 4);
    q = le(q, 64, 2);
    q = le(q, 3, 2);
    memcpy(q, "hub", 3);
    hub_msg(m, FW_MSG_WELCOME, p, 33);
}

static void hub_accept(mock *m, uint32_t id, uint64_t offset, const uint8_t *hash)
{
    uint8_t p[44];
    le(le(p, id, 4), offset, 8);
    if (hash) memcpy(p + 12, hash, 32);
    else memset(p + 12, 0, 32);
    hub_msg(m, FW_MSG_ACCEPT, p, 44);
}

static void hub_stored(mock *m, uint32_t id, uint8_t status, uint64_t size, const uint8_t *hash)
{
    uint8_t p[45];
    le(p, id, 4);
    p[4] = status;
    le(p + 5, size, 8);
    memcpy(p + 13, hash, 32);
    hub_msg(m, FW_MSG_STORED, p, 45);
}

static void hub_rejected(mock *m, uint32_t id, uint16_t code, const char *reason)
{
    uint8_t p[128];
    le(le(p, id, 4), code, 2);
    memcpy(p + 6, reason, strlen(reason));
    hub_msg(m, FW_MSG_REJECTED, p, 6 + strlen(reason));
}

static void hub_error(mock *m, uint16_t code, uint32_t id, const char *text)
{
    uint8_t p[128];
    le(le(p, code, 2), id, 4);
    memcpy(p + 6, text, strlen(text));
    hub_msg(m, FW_MSG_ERROR, p, 6 + strlen(text));
}

/* A message in what the client wrote: its type, and its payload at *payload. */
typedef struct out_cursor {
    const mock *m;
    size_t pos;
} out_cursor;

static int next_out(out_cursor *c, uint16_t *type, const uint8_t **payload, uint32_t *len)
{
    if (c->pos + 8 > c->m->out_len) return 0;
    *type = (uint16_t)(c->m->out[c->pos] | (c->m->out[c->pos + 1] << 8));
    *len = (uint32_t)c->m->out[c->pos + 4] | ((uint32_t)c->m->out[c->pos + 5] << 8) |
           ((uint32_t)c->m->out[c->pos + 6] << 16) | ((uint32_t)c->m->out[c->pos + 7] << 24);
    *payload = c->m->out + c->pos + 8;
    c->pos += 8 + *len;
    return c->pos <= c->m->out_len;
}

static uint32_t u32_at(const uint8_t *p) { return (uint32_t)(p[0] | (p[1] << 8) | (p[2] << 16)) | ((uint32_t)p[3] << 24); }

static mock *mock_new(size_t split)
{
    mock *m = calloc(1, sizeof *m);
    m->split = split;
    m->clock = 5000000;
    return m;
}

static void mock_free(mock *m)
{
    free(m->out);
    free(m);
}

static uint8_t RX[512], TX[1024];

/* A connected ctx: the Welcome is consumed, the Hello dropped from out. */
static void connect_mock(fw_ctx *ctx, mock *m)
{
    size_t start = m->in_len;
    int rc;
    /* The Welcome goes first: move what the test queued behind it. */
    static uint8_t queued[65536];
    memcpy(queued, m->in, start);
    m->in_len = 0;
    hub_welcome(m);
    m_add(m, queued, start);
    CHECK(fw_init(ctx, &MOCK_IO, m, RX, sizeof RX, TX, sizeof TX) == FW_OK, "fw_init");
    rc = fw_handshake(ctx, "cam-1", "s3cret");
    CHECK(rc == FW_OK, "handshake: %s (%s)", fw_strerror(rc), ctx->detail);
    m->out_len = 0;
}

/* ---------------------------------------------------------------- handshake */

static void test_handshake(void)
{
    static const uint8_t hello[] = {0x01, 0, 0, 0, 0x15, 0, 0, 0, 'F', 'W', 'I', 'R', 2, 0, 5, 0, 'c', 'a', 'm',
                                    '-', '1', 6, 0, 's', '3', 'c', 'r', 'e', 't'};
    mock *m = mock_new(1); /* the Welcome arrives one byte per read */
    fw_ctx ctx;
    int rc;
    hub_welcome(m);
    CHECK(fw_init(&ctx, &MOCK_IO, m, RX, sizeof RX, TX, sizeof TX) == FW_OK, "fw_init");
    rc = fw_handshake(&ctx, "cam-1", "s3cret");
    CHECK(rc == FW_OK, "handshake: %s", fw_strerror(rc));
    CHECK(same_bytes("hello", m->out, m->out_len, hello, sizeof hello), "the Hello is vector `hello`");
    CHECK(ctx.max_payload == 16u << 20 && ctx.chunk_size == 1u << 20 && ctx.max_inflight == 64 &&
              ctx.max_file_size == 1ull << 40 && strcmp(ctx.hub_name, "hub") == 0,
          "Welcome limits");
    CHECK(ctx.clock_rtt_us >= 0 && ctx.clock_offset_us != 0, "Welcome gives a first clock sample");
    mock_free(m);

    /* The hub refuses the token. */
    m = mock_new(3);
    hub_error(m, FW_CODE_UNAUTHORIZED, 0, "unknown token");
    fw_init(&ctx, &MOCK_IO, m, RX, sizeof RX, TX, sizeof TX);
    rc = fw_handshake(&ctx, "cam-1", "bad");
    CHECK(rc == FW_E_HUB && ctx.hub_code == FW_CODE_UNAUTHORIZED && strcmp(ctx.hub_text, "unknown token") == 0,
          "a refused handshake: %s code %u text %s", fw_strerror(rc), ctx.hub_code, ctx.hub_text);
    CHECK(fw_ping(&ctx, NULL, NULL) == FW_E_STATE, "the connection is unusable afterwards");
    mock_free(m);

    /* A hub speaking a version this client does not know. */
    m = mock_new(2);
    welcome_version = FW_PROTOCOL_VERSION + 1;
    hub_welcome(m);
    welcome_version = 1;
    fw_init(&ctx, &MOCK_IO, m, RX, sizeof RX, TX, sizeof TX);
    CHECK(fw_handshake(&ctx, "x", "") == FW_E_PROTOCOL, "Welcome version %u is refused", FW_PROTOCOL_VERSION + 1);
    mock_free(m);

    /* The hub closes without a word. */
    m = mock_new(2);
    fw_init(&ctx, &MOCK_IO, m, RX, sizeof RX, TX, sizeof TX);
    CHECK(fw_handshake(&ctx, "x", "") == FW_E_CLOSED, "closed before Welcome");
    mock_free(m);
    CHECK(fw_init(&ctx, &MOCK_IO, NULL, RX, 10, TX, sizeof TX) == FW_E_ARG, "a tiny rx buffer is refused");
}

/* ---------------------------------------------------------------- uploads */

static long src_pattern(void *user, uint64_t offset, uint8_t *buf, size_t len)
{
    size_t i, n = len > 333 ? 333 : len; /* a source that returns short reads */
    (void)user;
    for (i = 0; i < n; i++) buf[i] = (uint8_t)((offset + i) * 7 % 256);
    return (long)n;
}

static void pattern_hash(uint64_t size, uint8_t out[32])
{
#ifndef FRAMEWIRE_NO_BLAKE3
    fw_blake3 h;
    uint8_t b[512];
    uint64_t at = 0;
    fw_blake3_init(&h);
    while (at < size) {
        long n = src_pattern(NULL, at, b, size - at < sizeof b ? (size_t)(size - at) : sizeof b);
        fw_blake3_update(&h, b, (size_t)n);
        at += (uint64_t)n;
    }
    fw_blake3_final(&h, out);
#else
    (void)size;
    memset(out, 0xAB, 32); /* whatever the hub says */
#endif
}

/* Checks that out holds Offer(id, flags), Data covering [from, size) in chunks <= chunk, End. */
static void check_upload_bytes(out_cursor *c, uint32_t id, uint8_t flags, uint64_t size, uint64_t from,
                               uint32_t chunk, const uint8_t *hash)
{
    uint16_t type;
    const uint8_t *p;
    uint32_t len;
    uint64_t at = from;
    int ok = 1, chunks = 0;
    CHECK(next_out(c, &type, &p, &len) && type == FW_MSG_OFFER && u32_at(p) == id && p[4] == flags,
          "Offer id %u flags %u (got type %u flags %u)", id, flags, type, p[4]);
    while (next_out(c, &type, &p, &len) && (type == FW_MSG_DATA || type == FW_MSG_PONG)) {
        uint32_t i;
        if (type == FW_MSG_PONG) continue; /* answers to the hub's Pings may come in between */
        chunks++;
        if (u32_at(p) != id || len - 4 > chunk) ok = 0;
        for (i = 0; i < len - 4; i++)
            if (p[4 + i] != (uint8_t)((at + i) * 7 % 256)) ok = 0;
        at += len - 4;
    }
    CHECK(ok && at == size, "Data chunks carry [%lu, %lu) (%d chunks, ended at %lu)", (unsigned long)from,
          (unsigned long)size, chunks, (unsigned long)at);
    CHECK(type == FW_MSG_END && len == 37 && u32_at(p) == id, "End follows the Data");
#ifndef FRAMEWIRE_NO_BLAKE3
    CHECK(p[4] == 1 && memcmp(p + 5, hash, 32) == 0, "End carries the file's BLAKE3");
#else
    (void)hash;
    CHECK(p[4] == 0, "End without a hash");
#endif
}

#ifndef FRAMEWIRE_NO_BLAKE3
#define BASE_FLAGS 0
#else
#define BASE_FLAGS FW_OFFER_NO_RESUME
#endif

static void test_upload(void)
{
    mock *m = mock_new(13);
    fw_ctx ctx;
    fw_stored st;
    uint8_t hash[32], pong_frame[64], big[5000];
    size_t n;
    int rc;
    out_cursor c;
    uint16_t type;
    const uint8_t *p;
    uint32_t len;
    pattern_hash(3000, hash);
    /* Before the Accept the hub sends a Ping, a FrameAck and a large Frame (to be skipped). */
    n = fw_encode_ping(pong_frame, sizeof pong_frame, 77, 123);
    m_add(m, pong_frame, n);
    n = fw_encode_frame_ack(pong_frame, sizeof pong_frame, "cam", 3, 9);
    m_add(m, pong_frame, n);
    n = fw_encode_frame_head(big, sizeof big, "other", 5, 1, 2, FW_FORMAT_JPEG, 4, 4, 4000);
    memset(big + n, 0x5A, 4000);
    m_add(m, big, n + 4000);
    hub_accept(m, 1, 0, NULL);
    hub_stored(m, 1, FW_STORED_NEW, 3000, hash);
    connect_mock(&ctx, m);
    rc = fw_send_file(&ctx, "photos/a.jpg", 3000, 0, src_pattern, NULL, &st);
    CHECK(rc == FW_OK, "upload: %s (%s)", fw_strerror(rc), ctx.detail);
    CHECK(st.status == FW_STORED_NEW && st.size == 3000 && memcmp(st.hash, hash, 32) == 0, "Stored reported");
    CHECK(ctx.pings_answered == 1 && ctx.frame_acks == 1, "Ping answered and FrameAck counted during the wait");
    c.m = m;
    c.pos = 0;
    CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_OFFER, "Offer first");
    CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_PONG && len == 24 && p[0] == 77 && p[8] == 123,
          "Pong{77, 123} answers the Ping");
    c.pos = 0;
    check_upload_bytes(&c, 1, BASE_FLAGS, 3000, 0, (uint32_t)sizeof TX - 12, hash);
    mock_free(m);

    /* The hub rejects the offer. */
    m = mock_new(5);
    hub_rejected(m, 1, FW_CODE_EXISTS, "a different file is stored at photos/a.jpg");
    connect_mock(&ctx, m);
    rc = fw_send_file(&ctx, "photos/a.jpg", 3000, 0, src_pattern, NULL, &st);
    CHECK(rc == FW_E_REJECTED && ctx.hub_code == FW_CODE_EXISTS && strncmp(ctx.hub_text, "a different", 11) == 0,
          "Rejected{Exists}: %s %s", fw_strerror(rc), ctx.hub_text);
    CHECK(fw_ping(&ctx, NULL, NULL) == FW_E_CLOSED, "the connection is still usable after a rejection");
    mock_free(m);

    /* Stored with another size: the library notices. */
    m = mock_new(4);
    hub_accept(m, 1, 0, NULL);
    hub_stored(m, 1, FW_STORED_NEW, 2999, hash);
    connect_mock(&ctx, m);
    CHECK(fw_send_file(&ctx, "a", 3000, 0, src_pattern, NULL, NULL) == FW_E_MISMATCH, "Stored size checked");
    mock_free(m);

#ifndef FRAMEWIRE_NO_BLAKE3
    {
        uint8_t prefix[32], wrong[32];
        pattern_hash(1000, prefix);
        memset(wrong, 7, 32);
        /* Resume: the hub holds the first 1000 bytes, and they are ours. */
        m = mock_new(9);
        hub_accept(m, 1, 1000, prefix);
        hub_stored(m, 1, FW_STORED_NEW, 3000, hash);
        connect_mock(&ctx, m);
        rc = fw_send_file(&ctx, "a", 3000, 0, src_pattern, NULL, &st);
        CHECK(rc == FW_OK, "resume: %s (%s)", fw_strerror(rc), ctx.detail);
        c.m = m;
        c.pos = 0;
        check_upload_bytes(&c, 1, 0, 3000, 1000, (uint32_t)sizeof TX - 12, hash);
        mock_free(m);

        /* The same file is already stored: End without Data, Stored{Unchanged}. */
        m = mock_new(9);
        hub_accept(m, 1, 3000, hash);
        hub_stored(m, 1, FW_STORED_UNCHANGED, 3000, hash);
        connect_mock(&ctx, m);
        rc = fw_send_file(&ctx, "a", 3000, 0, src_pattern, NULL, &st);
        CHECK(rc == FW_OK && st.status == FW_STORED_UNCHANGED, "unchanged: %s", fw_strerror(rc));
        c.m = m;
        c.pos = 0;
        check_upload_bytes(&c, 1, 0, 3000, 3000, (uint32_t)sizeof TX - 12, hash);
        mock_free(m);

        /* The hub's partial is not ours: Cancel, then a new Offer with NO_RESUME. */
        m = mock_new(9);
        hub_accept(m, 1, 1000, wrong);
        hub_rejected(m, 1, FW_CODE_CANCELLED, "cancelled");
        hub_accept(m, 2, 0, NULL);
        hub_stored(m, 2, FW_STORED_NEW, 3000, hash);
        connect_mock(&ctx, m);
        rc = fw_send_file(&ctx, "a", 3000, 0, src_pattern, NULL, &st);
        CHECK(rc == FW_OK, "restart after a foreign partial: %s (%s)", fw_strerror(rc), ctx.detail);
        c.m = m;
        c.pos = 0;
        CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_OFFER && u32_at(p) == 1, "Offer 1");
        CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_CANCEL && u32_at(p) == 1, "Cancel 1");
        check_upload_bytes(&c, 2, FW_OFFER_NO_RESUME, 3000, 0, (uint32_t)sizeof TX - 12, hash);
        mock_free(m);
    }
#endif
}

/* ---------------------------------------------------------------- device, frames, text, ping */

static int handler_calls;

static uint8_t on_command(fw_ctx *ctx, const fw_command *cmd, char *reply, size_t cap, size_t *len)
{
    fw_str a;
    handler_calls++;
    CHECK(fw_ping(ctx, NULL, NULL) == FW_E_STATE, "no framewire calls on the same ctx from a handler");
    if (str_is(cmd->command, "set", 3) && cmd->argc == 2 && fw_command_arg(cmd, 1, &a) == FW_OK) {
        *len = (size_t)snprintf(reply, cap, "fps=%.*s", (int)a.len, a.ptr);
        return FW_REPLY_OK;
    }
    *len = (size_t)snprintf(reply, cap, "unknown command");
    return FW_REPLY_UNKNOWN_COMMAND;
}

static void test_device(void)
{
    mock *m = mock_new(6);
    fw_ctx ctx;
    uint8_t buf[600];
    fw_str args[2];
    size_t n;
    int rc;
    out_cursor c;
    uint16_t type;
    const uint8_t *p;
    uint32_t len;
    args[0].ptr = "fps";
    args[0].len = 3;
    args[1].ptr = "15";
    args[1].len = 2;
    n = fw_encode_command(buf, sizeof buf, 42, "cam-1", 5, "set", 3, args, 2);
    m_add(m, buf, n);
    n = fw_encode_command(buf, sizeof buf, 43, "cam-1", 5, "zoom", 4, NULL, 0);
    m_add(m, buf, n);
    /* A command larger than the receive buffer (512): refused before it is read. */
    {
        static char xs[520];
        static uint8_t huge[2048];
        memset(xs, 'x', sizeof xs);
        args[0].ptr = xs;
        args[0].len = sizeof xs;
        n = fw_encode_command(huge, sizeof huge, 44, "cam-1", 5, "big", 3, args, 1);
        m_add(m, huge, n);
    }
    connect_mock(&ctx, m);
    CHECK(fw_register_device(&ctx, "cam-1", on_command) == FW_OK, "register");
    rc = fw_poll(&ctx);
    CHECK(rc == FW_MSG_COMMAND && handler_calls == 1, "poll answers set: %d", rc);
    rc = fw_poll(&ctx);
    CHECK(rc == FW_MSG_COMMAND && handler_calls == 2, "poll answers zoom: %d", rc);
    rc = fw_poll(&ctx);
    CHECK(rc == FW_E_TOO_LARGE && handler_calls == 2, "a Command over the buffer: %s", fw_strerror(rc));
    CHECK(m->in_len - m->in_pos > 500, "its payload was not read");
    c.m = m;
    c.pos = 0;
    CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_REGISTER_DEVICE && len == 7, "RegisterDevice");
    CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_REPLY && u32_at(p) == 42 && p[4] == FW_REPLY_OK &&
              len == 11 && memcmp(p + 5, "fps=15", 6) == 0,
          "Reply{42, Ok, fps=15} (vector `reply`)");
    CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_REPLY && u32_at(p) == 43 &&
              p[4] == FW_REPLY_UNKNOWN_COMMAND,
          "Reply{43, UnknownCommand}");
    mock_free(m);

    /* A timeout in the middle of a message: poll says so, and the next poll finishes it. */
    m = mock_new(3);
    n = fw_encode_command(buf, sizeof buf, 7, "cam-1", 5, "zoom", 4, NULL, 0);
    m_add(m, buf, n);
    connect_mock(&ctx, m);
    m->timeout_at = m->in_pos + 11;
    fw_register_device(&ctx, "cam-1", on_command);
    rc = fw_poll(&ctx);
    CHECK(rc == FW_E_TIMEOUT, "timeout mid-message: %s", fw_strerror(rc));
    rc = fw_poll(&ctx);
    CHECK(rc == FW_MSG_COMMAND && handler_calls == 3, "the next poll completes it: %d", rc);
    rc = fw_poll(&ctx);
    CHECK(rc == FW_E_CLOSED, "then the hub closes: %s", fw_strerror(rc));
    mock_free(m);
}

/* Version 2: fw_register_device returns once the hub's Registered arrived; a Ping and a
 * Subscribed for someone else on the way are handled or skipped. */
static void test_device_registered(void)
{
    mock *m = mock_new(4);
    fw_ctx ctx;
    uint8_t buf[64], reg[16];
    size_t n;
    int rc;
    n = fw_encode_ping(buf, sizeof buf, 5, 6);
    m_add(m, buf, n);
    hub_msg(m, FW_MSG_SUBSCRIBED, (const uint8_t *)"\x03\x00" "cam" "\x01\x00", 7);
    memcpy(reg, "\x05\x00" "other", 7);
    hub_msg(m, FW_MSG_REGISTERED, reg, 7); /* not ours: keeps waiting */
    memcpy(reg, "\x05\x00" "cam-1", 7);
    hub_msg(m, FW_MSG_REGISTERED, reg, 7);
    welcome_version = 2;
    connect_mock(&ctx, m);
    welcome_version = 1;
    CHECK(ctx.version == 2, "version 2 negotiated");
    rc = fw_register_device(&ctx, "cam-1", on_command);
    CHECK(rc == FW_OK && ctx.pings_answered == 1, "registered: %s", fw_strerror(rc));
    CHECK(m->in_pos == m->in_len, "everything up to Registered was read");
    rc = fw_poll(&ctx);
    CHECK(rc == FW_E_CLOSED, "nothing after it: %s", fw_strerror(rc));
    mock_free(m);

    /* The hub closes instead of answering. */
    m = mock_new(4);
    welcome_version = 2;
    connect_mock(&ctx, m);
    welcome_version = 1;
    rc = fw_register_device(&ctx, "cam-1", on_command);
    CHECK(rc == FW_E_CLOSED, "no Registered: %s", fw_strerror(rc));
    mock_free(m);
}

static void test_publish(void)
{
    mock *m = mock_new(7);
    fw_ctx ctx;
    uint8_t buf[64], jpeg[3000];
    size_t n;
    int rc, i;
    out_cursor c;
    uint16_t type;
    const uint8_t *p;
    uint32_t len;
    for (i = 0; i < 3; i++) {
        n = fw_encode_frame_ack(buf, sizeof buf, "cam", 3, (uint64_t)i);
        m_add(m, buf, n);
    }
    memset(jpeg, 0xD8, sizeof jpeg);
    connect_mock(&ctx, m);
    CHECK(fw_publish(&ctx, "cam", 80, 2) == FW_OK, "publish");
    for (i = 0; i < 4; i++) {
        rc = fw_publish_frame(&ctx, FW_FORMAT_JPEG, 640, 480, jpeg, sizeof jpeg);
        CHECK(rc == FW_OK, "frame %d: %s", i, fw_strerror(rc));
        CHECK(ctx.frames_unacked <= 2, "at most 2 unacknowledged (%u)", ctx.frames_unacked);
    }
    CHECK(ctx.frame_acks == 2, "frames 2 and 3 each waited for one ack (%u)", ctx.frame_acks);
    CHECK(fw_publish_drain(&ctx) == FW_E_CLOSED, "draining runs out of acks: the hub closed");
    c.m = m;
    c.pos = 0;
    CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_PUBLISH && len == 9 && p[5] == 80,
          "Publish{cam, 80} (vector `publish`)");
    for (i = 0; i < 4; i++) {
        fw_frame f;
        CHECK(next_out(&c, &type, &p, &len) && type == FW_MSG_FRAME && fw_decode_frame(p, len, &f) == FW_OK &&
                  f.seq == (uint64_t)i && f.width == 640 && f.height == 480 && f.payload_len == sizeof jpeg &&
                  f.capture_us > 1700000000000000 && memcmp(f.payload, jpeg, sizeof jpeg) == 0,
              "Frame %d on the hub's clock", i);
    }
    mock_free(m);
}

static void test_text_and_ping(void)
{
    mock *m = mock_new(5);
    fw_ctx ctx;
    uint8_t buf[64];
    char echo[32];
    size_t n;
    int64_t rtt = -1, offset = 0;
    int rc;
    n = fw_encode_text(buf, sizeof buf, 99, "stray", 5);
    m_add(m, buf, n);
    n = fw_encode_text(buf, sizeof buf, 1, "hello hub", 9);
    m_add(m, buf, n);
    hub_error(m, FW_CODE_TOO_LARGE, 2, "too long");
    n = fw_encode_pong(buf, sizeof buf, 1, 5000000 + 400, 1700000000000000);
    m_add(m, buf, n);
    connect_mock(&ctx, m);
    rc = fw_send_text(&ctx, "hello hub", echo, sizeof echo);
    CHECK(rc == FW_OK && strcmp(echo, "hello hub") == 0, "text echo: %s %s", fw_strerror(rc), echo);
    rc = fw_send_text(&ctx, "again", echo, sizeof echo);
    CHECK(rc == FW_E_HUB && ctx.hub_code == FW_CODE_TOO_LARGE, "Error{id 2} answers the text");
    rc = fw_ping(&ctx, &rtt, &offset);
    CHECK(rc == FW_OK && rtt >= 0, "ping: %s rtt %ld", fw_strerror(rc), (long)rtt);
    mock_free(m);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "../../docs/protocol-vectors.json";
    test_vectors(path);
    test_decoder_rules();
#ifndef FRAMEWIRE_NO_BLAKE3
    test_blake3();
    printf("build: with BLAKE3\n");
#else
    printf("build: FRAMEWIRE_NO_BLAKE3\n");
#endif
    test_handshake();
    test_upload();
    test_device();
    test_device_registered();
    test_publish();
    test_text_and_ping();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
