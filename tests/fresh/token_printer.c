/*
 * token_printer - what a chatty program under hive-run --fresh --mask
 * does with its token: reads NAME with getenv() every INTERVAL ms for
 * SECONDS seconds, and prints it, each line "fp=FINGERPRINT tok=VALUE
 * hex=HEX" (FINGERPRINT: an FNV-1a hash of the value, so that a test can
 * count distinct values without their text; HEX: the value in lowercase
 * hex, an encoding --mask masks too).
 *   token_printer NAME SECONDS INTERVAL_MS each [SKIP]   a line on every read
 *   token_printer NAME SECONDS INTERVAL_MS last [SKIP]   silent while it
 *       reads, then a line for each distinct value it read, in order
 * With SKIP, the value printed is what follows its first SKIP bytes (the
 * token in "Bearer TOKEN"), and the line ends with " all=" and the whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 64

static size_t skip;

static void print(const char *all)
{
    const char *v = strlen(all) >= skip ? all + skip : "";
    uint64_t h = 1469598103934665603u;

    for (const char *p = v; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    printf("fp=%016llx tok=%s hex=", (unsigned long long)h, v);
    for (const char *p = v; *p != '\0'; p++)
        printf("%02x", (unsigned char)*p);
    if (skip > 0)
        printf(" all=%s", all);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static char seen[MAX_SEEN][4096];
    size_t nseen = 0;
    struct timespec t0, now;
    double seconds;
    long interval;
    int each;

    if (argc != 5 && argc != 6)
        return 2;
    if (argc == 6)
        skip = (size_t)atol(argv[5]);
    seconds = atof(argv[2]);
    interval = atol(argv[3]);
    each = strcmp(argv[4], "each") == 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const char *v = getenv(argv[1]);
        if (v != NULL && each)
            print(v);
        if (v != NULL && !each && nseen < MAX_SEEN && (nseen == 0 || strcmp(seen[nseen - 1], v) != 0))
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", v);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
            break;
        usleep((useconds_t)interval * 1000);
    }
    for (size_t i = 0; i < nseen; i++)
        print(seen[i]);
    return 0;
}
