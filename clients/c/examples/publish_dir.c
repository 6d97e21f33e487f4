/*
 * publish_dir HOST PORT NAME DIR [FPS] [COUNT]: publishes the .jpg files of DIR, in name order,
 * as the live stream NAME; loops over them until COUNT frames (default: one pass). FPS 0 sends
 * as fast as the hub acknowledges (default 10). At most 2 frames are ever unacknowledged.
 */
#include "posix_transport.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static uint8_t rx[512];
static uint8_t tx[256];

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_jpeg_name(const char *n)
{
    size_t l = strlen(n);
    return (l > 4 && strcasecmp(n + l - 4, ".jpg") == 0) || (l > 5 && strcasecmp(n + l - 5, ".jpeg") == 0);
}

/* Width and height from the JPEG's SOF marker; 0 x 0 if there is none. */
static void jpeg_size(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    size_t i = 2;
    *w = *h = 0;
    while (i + 9 < n && p[i] == 0xFF) {
        uint8_t m = p[i + 1];
        size_t seg = (size_t)(p[i + 2] << 8 | p[i + 3]);
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            *h = (uint32_t)(p[i + 5] << 8 | p[i + 6]);
            *w = (uint32_t)(p[i + 7] << 8 | p[i + 8]);
            return;
        }
        i += 2 + seg;
    }
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void sleep_until(struct timespec *t)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR) {
    }
}

int main(int argc, char **argv)
{
    fw_ctx ctx;
    fwx_conn conn;
    DIR *d;
    struct dirent *e;
    char **files = NULL;
    size_t nfiles = 0, i;
    double fps = argc > 5 ? atof(argv[5]) : 10.0;
    long count;
    struct timespec next;
    int rc = FW_OK, k;
    if (argc < 5 || argc > 7 || fps < 0) {
        fprintf(stderr, "usage: publish_dir HOST PORT NAME DIR [FPS] [COUNT]\n");
        return 2;
    }
    if ((d = opendir(argv[4])) == NULL) {
        fprintf(stderr, "%s: cannot open the folder\n", argv[4]);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_jpeg_name(e->d_name)) continue;
        files = realloc(files, (nfiles + 1) * sizeof *files);
        files[nfiles] = malloc(strlen(argv[4]) + strlen(e->d_name) + 2);
        sprintf(files[nfiles++], "%s/%s", argv[4], e->d_name);
    }
    closedir(d);
    if (nfiles == 0) {
        fprintf(stderr, "%s: no .jpg files\n", argv[4]);
        return 1;
    }
    qsort(files, nfiles, sizeof *files, by_name);
    count = argc > 6 ? atol(argv[6]) : (long)nfiles;

    if (fwx_open(&ctx, &conn, argv[1], argv[2], argv[3], rx, sizeof rx, tx, sizeof tx, 1000) != FW_OK)
        return 1;
    /* A few pings tighten the clock offset that puts capture times on the hub's clock. */
    for (k = 0; k < 3 && rc == FW_OK; k++) rc = fw_ping(&ctx, NULL, NULL);
    if (rc == FW_OK) rc = fw_publish(&ctx, argv[3], 0, 2);
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (i = 0; rc == FW_OK && (long)i < count; i++) {
        size_t len = 0;
        uint32_t w, h;
        uint8_t *jpeg = read_all(files[i % nfiles], &len);
        if (jpeg == NULL) {
            fprintf(stderr, "%s: cannot read\n", files[i % nfiles]);
            rc = FW_E_SOURCE;
            break;
        }
        jpeg_size(jpeg, len, &w, &h);
        rc = fw_publish_frame(&ctx, FW_FORMAT_JPEG, w, h, jpeg, (uint32_t)len);
        free(jpeg);
        if (fps > 0) {
            long step_ns = (long)(1e9 / fps);
            next.tv_nsec += step_ns % 1000000000L;
            next.tv_sec += step_ns / 1000000000L + next.tv_nsec / 1000000000L;
            next.tv_nsec %= 1000000000L;
            sleep_until(&next);
        }
    }
    if (rc == FW_OK) rc = fw_publish_drain(&ctx);
    fwx_close(&conn);
    while (nfiles > 0) free(files[--nfiles]);
    free(files);
    if (rc != FW_OK) {
        fwx_report("publish", &ctx, rc);
        return 1;
    }
    printf("published %lu frames to %s (%u acknowledged, clock offset %lld us, rtt %lld us)\n",
           (unsigned long)i, argv[3], ctx.frame_acks, (long long)ctx.clock_offset_us,
           (long long)ctx.clock_rtt_us);
    return 0;
}
