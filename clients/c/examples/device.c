/*
 * device HOST PORT NAME: registers as the device NAME and answers commands until SIGINT/SIGTERM,
 * reconnecting (with backoff up to 5 s) when the hub goes away.
 *
 *   capture  uploads a JPEG to NAME/captures/<ms since the epoch>.jpg over a second connection
 *            and replies with the stored path. The JPEG is the newest .jpg in
 *            $FRAMEWIRE_CAPTURE_DIR, or a tiny embedded 8x8 grey image when there is none.
 *   status   replies with the uptime and counters.
 *   tell TO TEXT  sends TEXT to whichever client holds the name TO (a program following events
 *            under it) once the command is answered, and prints `told TO: delivered|nobody|busy`.
 * Texts addressed to NAME are printed as `text from FROM: TEXT`.
 *   others   UnknownCommand.
 */
#include "posix_transport.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An 8x8 mid-grey baseline JPEG: DC-only, one-code Huffman tables (141 bytes). */
static const uint8_t TINY_JPEG[] = {
    0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08,
    0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff, 0xd9,
};

/* The command connection and the upload connection each own their buffers: no heap. */
static uint8_t rx[1024], tx[1024];
static uint8_t up_rx[512], up_tx[12 + 16 * 1024];
static fw_ctx up_ctx;

static const char *host, *port, *name;
static unsigned long captures;
static time_t started;
static volatile sig_atomic_t stop;
/* A `tell` waiting to be sent (a handler may not use its own connection). */
static char tell_to[64], tell_text[256];
static int tell_pending;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Formats a reply body; the length never exceeds what was written. */
static void say(char *reply, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(reply, cap, fmt, ap);
    va_end(ap);
    *len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The image to upload: a file or the embedded JPEG. */
typedef struct capture_source {
    int fd;
    const uint8_t *mem;
    uint64_t size;
} capture_source;

static long read_capture(void *user, uint64_t offset, uint8_t *buf, size_t len)
{
    capture_source *s = user;
    if (s->fd >= 0) {
        ssize_t n = pread(s->fd, buf, len, (off_t)offset);
        return n < 0 ? -1 : (long)n;
    }
    if (offset >= s->size) return 0;
    if (len > s->size - offset) len = (size_t)(s->size - offset);
    memcpy(buf, s->mem + offset, len);
    return (long)len;
}

/* The newest .jpg in dir (by modification time, then name) into out; 0 if there is none. */
static int newest_jpeg(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    time_t best = 0;
    int found = 0;
    if (d == NULL) return 0;
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        struct stat sb;
        size_t l = strlen(e->d_name);
        if (l < 5 || strcasecmp(e->d_name + l - 4, ".jpg") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        if (!found || sb.st_mtime > best || (sb.st_mtime == best && strcmp(path, out) > 0)) {
            best = sb.st_mtime;
            snprintf(out, cap, "%s", path);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

static uint8_t capture(char *reply, size_t cap, size_t *len)
{
    const char *dir = getenv("FRAMEWIRE_CAPTURE_DIR");
    char file[1024] = "", remote[256];
    capture_source src;
    fwx_conn conn;
    fw_stored st;
    struct timespec now;
    unsigned long long ms;
    int rc, attempt;
    struct stat sb;
    src.fd = -1;
    src.mem = TINY_JPEG;
    src.size = sizeof TINY_JPEG;
    if (dir != NULL && newest_jpeg(dir, file, sizeof file)) {
        src.fd = open(file, O_RDONLY);
        if (src.fd < 0 || fstat(src.fd, &sb) != 0) {
            say(reply, cap, len, "cannot read %s", file);
            return FW_REPLY_FAILED;
        }
        src.size = (uint64_t)sb.st_size;
    }
    if (fwx_open(&up_ctx, &conn, host, port, name, up_rx, sizeof up_rx, up_tx, sizeof up_tx, 2000) != FW_OK) {
        if (src.fd >= 0) close(src.fd);
        say(reply, cap, len, "cannot open an upload connection to the hub");
        return FW_REPLY_FAILED;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    ms = (unsigned long long)now.tv_sec * 1000 + (unsigned long long)now.tv_nsec / 1000000;
    /* Names are capture times in ms; two captures in one ms take the next free number. */
    for (attempt = 0;; attempt++) {
        snprintf(remote, sizeof remote, "%s/captures/%llu.jpg", name, ms + (unsigned long long)attempt);
        rc = fw_send_file(&up_ctx, remote, src.size, 0, read_capture, &src, &st);
        if (!(rc == FW_E_REJECTED && up_ctx.hub_code == FW_CODE_EXISTS && attempt < 4)) break;
    }
    fwx_close(&conn);
    if (src.fd >= 0) close(src.fd);
    if (rc != FW_OK) {
        if (rc == FW_E_REJECTED || rc == FW_E_HUB)
            say(reply, cap, len, "upload of %s failed: %s (%s)", remote, fw_code_name(up_ctx.hub_code), up_ctx.hub_text);
        else
            say(reply, cap, len, "upload of %s failed: %s: %s", remote, fw_strerror(rc), up_ctx.detail);
        return FW_REPLY_FAILED;
    }
    captures++;
    say(reply, cap, len, "%s", remote);
    return FW_REPLY_OK;
}

static int is(fw_str s, const char *word) { return s.len == strlen(word) && memcmp(s.ptr, word, s.len) == 0; }

static uint8_t on_command(fw_ctx *ctx, const fw_command *cmd, char *reply, size_t cap, size_t *len)
{
    uint8_t status;
    if (is(cmd->command, "capture")) {
        status = capture(reply, cap, len);
    } else if (is(cmd->command, "tell") && cmd->argc == 2) {
        /* The arguments are str16s back to back: u16 length (little-endian), then the bytes. */
        const uint8_t *a = cmd->args;
        size_t to_len = (size_t)a[0] | (size_t)a[1] << 8, text_len;
        const uint8_t *b = a + 2 + to_len;
        text_len = (size_t)b[0] | (size_t)b[1] << 8;
        if (to_len >= sizeof tell_to || text_len >= sizeof tell_text) {
            say(reply, cap, len, "tell: name or text too long");
            status = FW_REPLY_FAILED;
        } else {
            memcpy(tell_to, a + 2, to_len);
            tell_to[to_len] = '\0';
            memcpy(tell_text, b + 2, text_len);
            tell_text[text_len] = '\0';
            tell_pending = 1;
            say(reply, cap, len, "telling %s", tell_to);
            status = FW_REPLY_OK;
        }
    } else if (is(cmd->command, "status")) {
        say(reply, cap, len, "device %s: up %lds, %lu captures, %u commands, hub %s", name,
            (long)(time(NULL) - started), captures, ctx->commands + 1, ctx->hub_name);
        status = FW_REPLY_OK;
    } else {
        say(reply, cap, len, "unknown command %.*s (this device knows capture and status)", (int)cmd->command.len,
            cmd->command.ptr);
        status = FW_REPLY_UNKNOWN_COMMAND;
    }
    printf("command %.*s -> %s: %.*s\n", (int)cmd->command.len, cmd->command.ptr,
           status == FW_REPLY_OK ? "ok" : "failed", (int)*len, reply);
    fflush(stdout);
    return status;
}

static void on_text(fw_ctx *ctx, const fw_text_from *t)
{
    (void)ctx;
    printf("text from %.*s: %.*s\n", (int)t->from.len, t->from.ptr, (int)t->text.len, t->text.ptr);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    fw_ctx ctx;
    fwx_conn conn;
    unsigned backoff = 1;
    if (argc != 4) {
        fprintf(stderr, "usage: device HOST PORT NAME\n");
        return 2;
    }
    host = argv[1];
    port = argv[2];
    name = argv[3];
    started = time(NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!stop) {
        int rc;
        if (fwx_open(&ctx, &conn, host, port, name, rx, sizeof rx, tx, sizeof tx, 1000) != FW_OK) {
            sleep(backoff);
            backoff = backoff < 5 ? backoff * 2 : 5;
            continue;
        }
        fw_on_text(&ctx, on_text);
        rc = fw_register_device(&ctx, name, on_command);
        if (rc == FW_OK) {
            backoff = 1;
            printf("registered as device %s on %s:%s (hub %s)\n", name, host, port, ctx.hub_name);
            fflush(stdout);
        }
        /* fw_poll returns FW_E_TIMEOUT once a second (the recv timeout): a chance to see stop. */
        while (rc >= 0 || rc == FW_E_TIMEOUT) {
            if (stop) break;
            rc = fw_poll(&ctx);
            if (tell_pending && (rc >= 0 || rc == FW_E_TIMEOUT)) {
                uint8_t st = 0;
                tell_pending = 0;
                rc = fw_send_text_to(&ctx, tell_to, tell_text, &st);
                if (rc == FW_OK)
                    printf("told %s: %s\n", tell_to,
                           st == FW_DELIVERED ? "delivered" : st == FW_NO_RECEIVER ? "nobody" : "busy");
                fflush(stdout);
            }
        }
        if (!stop) fwx_report("connection lost", &ctx, rc);
        fwx_close(&conn);
    }
    return 0;
}
