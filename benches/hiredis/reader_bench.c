/* hiredis reader benchmark over the codec corpora written by `write-corpora`.
 *
 * Each corpus is fed to a fresh redisReader in 16 KiB reads (as hiredis's own
 * redisBufferRead does), taking every reply after each read; the time of one
 * whole pass is sampled repeatedly and the median reported.
 *
 * Usage: reader_bench <corpus-dir> <seconds-per-corpus> name...
 */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_SIZE (16 * 1024)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? n : 1);
    if (fread(buf, 1, n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
    fclose(f);
    *len = n;
    return buf;
}

/* One pass; returns replies decoded, or -1 on a protocol error. */
static long pass(const char *data, size_t len) {
    redisReader *r = redisReaderCreate();
    long replies = 0;
    for (size_t off = 0; off < len; off += READ_SIZE) {
        size_t n = len - off < READ_SIZE ? len - off : READ_SIZE;
        redisReaderFeed(r, data + off, n);
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(r, &reply) != REDIS_OK) {
                fprintf(stderr, "hiredis: %s\n", r->errstr);
                redisReaderFree(r);
                return -1;
            }
            if (!reply) break;
            freeReplyObject(reply);
            replies++;
        }
    }
    redisReaderFree(r);
    return replies;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s <corpus-dir> <seconds> name...\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[2]);
    printf("%-16s %14s %12s %16s\n", "corpus", "median_ns", "MB/s", "replies/s");
    for (int i = 3; i < argc; i++) {
        char path[4096];
        size_t len, rlen;
        snprintf(path, sizeof path, "%s/%s.resp", argv[1], argv[i]);
        char *data = slurp(path, &len);
        snprintf(path, sizeof path, "%s/%s.replies", argv[1], argv[i]);
        char *rtext = slurp(path, &rlen);
        if (!data || !rtext) { fprintf(stderr, "cannot read corpus %s\n", argv[i]); return 1; }
        rtext = realloc(rtext, rlen + 1);
        rtext[rlen] = 0;
        long expected = atol(rtext);
        if (pass(data, len) != expected) {
            printf("%-16s %14s %12s %16s\n", argv[i], "unsupported", "-", "-");
            free(data); free(rtext);
            continue;
        }
        size_t cap = 1 << 16, count = 0;
        double *samples = malloc(cap * sizeof *samples);
        double start = now();
        while ((now() - start < seconds || count < 5) && count < cap) {
            double t0 = now();
            pass(data, len);
            samples[count++] = now() - t0;
        }
        qsort(samples, count, sizeof *samples, cmp);
        double med = samples[count / 2];
        printf("%-16s %14.0f %12.1f %16.0f\n", argv[i], med * 1e9, len / med / 1e6, expected / med);
        free(samples); free(data); free(rtext);
    }
    return 0;
}
