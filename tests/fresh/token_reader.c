/*
 * token_reader - reads a variable with getenv() every INTERVAL ms for
 * SECONDS seconds and prints each distinct value once, with the time it
 * was first seen: what a long-running legacy program does.
 *   token_reader NAME SECONDS [INTERVAL_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *name;
    double seconds;
    long interval = 500;
    char last[8192] = "";
    struct timespec t0, now;

    if (argc < 3)
        return 2;
    name = argv[1];
    seconds = atof(argv[2]);
    if (argc > 3)
        interval = atol(argv[3]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const char *v = getenv(name);
        double el;
        clock_gettime(CLOCK_MONOTONIC, &now);
        el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (v != NULL && strcmp(v, last) != 0) {
            printf("%.2f %s\n", el, v);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", v);
        }
        if (el >= seconds)
            break;
        usleep((useconds_t)interval * 1000);
    }
    return 0;
}
