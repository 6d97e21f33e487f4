/* posix_transport.c: see posix_transport.h. */
#include "posix_transport.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define SEND_TIMEOUT_MS 10000

static long fwx_write(fw_ctx *ctx, const uint8_t *buf, size_t len)
{
    fwx_conn *c = ctx->user;
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? FW_E_TIMEOUT : FW_E_IO;
    }
}

static long fwx_read(fw_ctx *ctx, uint8_t *buf, size_t len)
{
    fwx_conn *c = ctx->user;
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? FW_E_TIMEOUT : FW_E_IO;
    }
}

static int64_t fwx_now_us(fw_ctx *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const fw_io FWX_IO = {fwx_write, fwx_read, fwx_now_us};

static void set_timeout(int fd, int opt, int ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

static int tcp_connect(const char *host, const char *port, int recv_timeout_ms)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc, one = 1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "cannot resolve %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        set_timeout(fd, SO_SNDTIMEO, SEND_TIMEOUT_MS);
        set_timeout(fd, SO_RCVTIMEO, recv_timeout_ms);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        rc = errno;
        close(fd);
        fd = -1;
        errno = rc;
    }
    if (fd < 0) fprintf(stderr, "cannot reach hub at %s:%s: %s\n", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

int fwx_open(fw_ctx *ctx, fwx_conn *conn, const char *host, const char *port, const char *name,
             uint8_t *rx, size_t rx_size, uint8_t *tx, size_t tx_size, int recv_timeout_ms)
{
    const char *token = getenv("FRAMEWIRE_TOKEN");
    int rc;
    conn->fd = tcp_connect(host, port, recv_timeout_ms);
    if (conn->fd < 0) return FW_E_IO;
    if ((rc = fw_init(ctx, &FWX_IO, conn, rx, rx_size, tx, tx_size)) != FW_OK) {
        fwx_report("init", ctx, rc);
        fwx_close(conn);
        return rc;
    }
    if ((rc = fw_handshake(ctx, name, token ? token : "")) != FW_OK) {
        fwx_report("handshake", ctx, rc);
        fwx_close(conn);
    }
    return rc;
}

void fwx_close(fwx_conn *conn)
{
    if (conn->fd >= 0) close(conn->fd);
    conn->fd = -1;
}

void fwx_report(const char *what, const fw_ctx *ctx, int rc)
{
    if (rc == FW_E_HUB || rc == FW_E_REJECTED)
        fprintf(stderr, "%s: %s: %s (%s)\n", what, fw_strerror(rc), fw_code_name(ctx->hub_code),
                ctx->hub_text);
    else if (ctx->detail != NULL && ctx->detail[0] != '\0')
        fprintf(stderr, "%s: %s: %s\n", what, fw_strerror(rc), ctx->detail);
    else
        fprintf(stderr, "%s: %s\n", what, fw_strerror(rc));
}
