/*
 * getenv_bench - nanoseconds per getenv() call, measured in one process,
 * interleaved: libc's own getenv (looked up in libc.so.6) and getenv as
 * the program sees it (the preload's, under hive-run --fresh), for an
 * unmanaged name and for NAME.
 *   getenv_bench NAME  ->  lines "libc NS", "unmanaged NS", "managed NS"
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef char *(*getenv_fn)(const char *);

static double run(getenv_fn f, const char *name, long n)
{
    struct timespec a, b;
    volatile const char *sink;

    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        sink = f(name);
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)sink;
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    enum { ROUNDS = 15 };
    long n = 400000;
    double libc_t[ROUNDS], un_t[ROUNDS], man_t[ROUNDS];
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    getenv_fn libc_getenv = libc ? (getenv_fn)dlsym(libc, "getenv") : NULL;

    if (argc < 2 || libc_getenv == NULL)
        return 2;
    for (int r = 0; r < ROUNDS; r++) {
        libc_t[r] = run(libc_getenv, "HOME", n);
        un_t[r] = run(getenv, "HOME", n);
        man_t[r] = run(getenv, argv[1], n);
    }
    qsort(libc_t, ROUNDS, sizeof(double), cmp);
    qsort(un_t, ROUNDS, sizeof(double), cmp);
    qsort(man_t, ROUNDS, sizeof(double), cmp);
    printf("libc %.2f\nunmanaged %.2f\nmanaged %.2f\n", libc_t[ROUNDS / 2], un_t[ROUNDS / 2], man_t[ROUNDS / 2]);
    return 0;
}
