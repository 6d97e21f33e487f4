/*
 * posix_transport.h: the framewire C client's transport callbacks over a BSD socket, for the
 * example programs. Every wait is bounded: connect and send by SO_SNDTIMEO, recv by SO_RCVTIMEO
 * (a recv timeout is reported to the library as FW_E_TIMEOUT).
 */
#ifndef POSIX_TRANSPORT_H
#define POSIX_TRANSPORT_H

#include "../framewire.h"

/* One TCP connection; point ctx->user at it (fwx_open does). */
typedef struct fwx_conn {
    int fd;
} fwx_conn;

/* write/read over conn->fd, now_us from CLOCK_MONOTONIC (like a microcontroller's time since
 * boot: the library turns it into hub time with the Ping/Pong offset). */
extern const fw_io FWX_IO;

/* Connects to host:port (IPv4 or IPv6 by name), initialises ctx with the given buffers and
 * shakes hands as `name` with the token from $FRAMEWIRE_TOKEN. recv_timeout_ms bounds each read.
 * Prints the reason and returns a negative FW_E_* on failure (conn is then closed). */
int fwx_open(fw_ctx *ctx, fwx_conn *conn, const char *host, const char *port, const char *name,
             uint8_t *rx, size_t rx_size, uint8_t *tx, size_t tx_size, int recv_timeout_ms);

void fwx_close(fwx_conn *conn);

/* Prints "what: reason" for a failed call to standard error, with the hub's code and text
 * when the hub said no. */
void fwx_report(const char *what, const fw_ctx *ctx, int rc);

#endif
