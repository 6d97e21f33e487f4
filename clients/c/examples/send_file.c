/*
 * send_file HOST PORT FILE [REMOTE]: uploads FILE to the hub as REMOTE (default: its base name)
 * and prints the hub's answer. The token comes from $FRAMEWIRE_TOKEN.
 */
#include "posix_transport.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A microcontroller would use a few KiB; 64 KiB chunks keep a PC's link busy. */
static uint8_t rx[512];
static uint8_t tx[12 + 64 * 1024];

static long read_file(void *user, uint64_t offset, uint8_t *buf, size_t len)
{
    int fd = *(int *)user;
    ssize_t n = pread(fd, buf, len, (off_t)offset);
    return n < 0 ? -1 : (long)n;
}

static const char *status_name(uint8_t s)
{
    return s == FW_STORED_NEW ? "new" : s == FW_STORED_REPLACED ? "replaced" : "unchanged";
}

int main(int argc, char **argv)
{
    fw_ctx ctx;
    fwx_conn conn;
    fw_stored st;
    struct stat sb;
    const char *remote;
    char hex[2 * FW_HASH_LEN + 1];
    int fd, rc;
    unsigned i;
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: send_file HOST PORT FILE [REMOTE]\n");
        return 2;
    }
    fd = open(argv[3], O_RDONLY);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "%s: cannot read this file\n", argv[3]);
        return 1;
    }
    remote = argc == 5 ? argv[4] : (strrchr(argv[3], '/') ? strrchr(argv[3], '/') + 1 : argv[3]);
    if (fwx_open(&ctx, &conn, argv[1], argv[2], "c-send-file", rx, sizeof rx, tx, sizeof tx, 2000) != FW_OK)
        return 1;
    rc = fw_send_file(&ctx, remote, (uint64_t)sb.st_size, 0, read_file, &fd, &st);
    fwx_close(&conn);
    close(fd);
    if (rc != FW_OK) {
        fwx_report(remote, &ctx, rc);
        return 1;
    }
    for (i = 0; i < FW_HASH_LEN; i++) sprintf(hex + 2 * i, "%02x", st.hash[i]);
    printf("stored %s %llu bytes %s blake3 %s\n", remote, (unsigned long long)st.size,
           status_name(st.status), hex);
    return 0;
}
