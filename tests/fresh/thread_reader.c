/*
 * thread_reader - THREADS threads (default 8) call getenv(NAME) in a tight
 * loop for SECONDS seconds while hive-run's refresher rotates the value.
 * Every returned pointer must point to a NUL-terminated string of MIN..MAX
 * base64url characters; a pointer, once returned, must still hold the same
 * string at the end (pointers stay valid for the life of the process).
 *   thread_reader NAME SECONDS [MIN_LEN MAX_LEN [THREADS]]
 * Prints "reads N", "invalid N", "changed N", "distinct N" and one
 * "value V" line per distinct value; exit 0 when no read was invalid.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MAX_SEEN 256

struct seen {
    const char *ptr;
    char copy[1024];
};

struct worker {
    pthread_t t;
    long reads;
    long invalid;
    int nseen;
    struct seen seen[MAX_SEEN];
    char first_bad[128];
};

static const char *name;
static double seconds;
static size_t min_len = 16, max_len = 512;
static atomic_int go;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int valid(const char *v)
{
    size_t n = 0;

    if (v == NULL)
        return 0;
    for (; v[n] != '\0'; n++) {
        char c = v[n];
        if (n > max_len)
            return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return 0;
    }
    return n >= min_len && n <= max_len;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    const char *last = NULL;
    double end;

    while (!atomic_load(&go))
        ;
    end = now() + seconds;
    for (;;) {
        for (int k = 0; k < 1000; k++) {
            const char *v = getenv(name);
            w->reads++;
            if (!valid(v)) {
                if (w->invalid++ == 0)
                    snprintf(w->first_bad, sizeof(w->first_bad), "%s", v ? v : "(null)");
                continue;
            }
            if (v != last) {
                int i;
                for (i = 0; i < w->nseen; i++)
                    if (w->seen[i].ptr == v)
                        break;
                if (i == w->nseen && w->nseen < MAX_SEEN) {
                    w->seen[i].ptr = v;
                    snprintf(w->seen[i].copy, sizeof(w->seen[i].copy), "%s", v);
                    w->nseen++;
                }
                last = v;
            }
        }
        if (now() >= end)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static struct worker w[MAX_THREADS];
    static const char *distinct[MAX_THREADS * MAX_SEEN];
    int nthreads = 8, ndistinct = 0;
    long reads = 0, invalid = 0, changed = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: thread_reader NAME SECONDS [MIN_LEN MAX_LEN [THREADS]]\n");
        return 2;
    }
    name = argv[1];
    seconds = atof(argv[2]);
    if (argc > 4) {
        min_len = (size_t)atol(argv[3]);
        max_len = (size_t)atol(argv[4]);
    }
    if (argc > 5)
        nthreads = atoi(argv[5]);
    if (nthreads < 1 || nthreads > MAX_THREADS)
        return 2;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&w[i].t, NULL, run, &w[i]) != 0) {
            perror("pthread_create");
            return 2;
        }
    atomic_store(&go, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(w[i].t, NULL);
    for (int i = 0; i < nthreads; i++) {
        reads += w[i].reads;
        invalid += w[i].invalid;
        if (w[i].invalid)
            printf("bad %s\n", w[i].first_bad);
        for (int s = 0; s < w[i].nseen; s++) {
            int d;
            /* the pointer still holds what it held when first returned */
            if (strcmp(w[i].seen[s].ptr, w[i].seen[s].copy) != 0)
                changed++;
            for (d = 0; d < ndistinct; d++)
                if (strcmp(distinct[d], w[i].seen[s].copy) == 0)
                    break;
            if (d == ndistinct)
                distinct[ndistinct++] = w[i].seen[s].copy;
        }
    }
    printf("reads %ld\ninvalid %ld\nchanged %ld\ndistinct %d\n", reads, invalid, changed, ndistinct);
    for (int d = 0; d < ndistinct; d++)
        printf("value %s\n", distinct[d]);
    return invalid == 0 && changed == 0 ? 0 : 1;
}
