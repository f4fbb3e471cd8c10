/*
 * mem.c - wiping, constant-time compare, randomness and small string helpers.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

void hive_memzero(void *p, size_t n)
{
    if (p != NULL && n > 0)
        mbedtls_platform_zeroize(p, n);
}

int hive_memeq(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    /* (diff - 1) >> 8 is all ones only when diff == 0. */
    return (int)((((unsigned)diff - 1u) >> 8) & 1u);
}

void hive__free_str(char *s)
{
    if (s != NULL)
        hive__free_secret(s, strlen(s));
}

void hive__free_secret(void *p, size_t n)
{
    if (p == NULL)
        return;
    hive_memzero(p, n);
    free(p);
}

void hive_secret_free(hive_secret *s)
{
    if (s == NULL)
        return;
    hive__free_secret(s->data, s->len + 1);
    s->data = NULL;
    s->len = 0;
}

void hive__protect(void *p, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start;
    uintptr_t end;

    if (p == NULL || n == 0 || page <= 0)
        return;
    start = (uintptr_t)p & ~((uintptr_t)page - 1);
    end = ((uintptr_t)p + n + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    /* best effort: RLIMIT_MEMLOCK may say no */
    (void)mlock((void *)start, end - start);
    (void)madvise((void *)start, end - start, MADV_DONTDUMP);
}

hive_rc hive__random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return hive__fail(HIVE_ERR_RANDOM, "getrandom failed: %s", strerror(errno));
        }
        p += got;
        n -= (size_t)got;
    }
    return HIVE_OK;
}

char *hive__strdup(const char *s)
{
    return s ? hive__strndup(s, strlen(s)) : NULL;
}

char *hive__strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *hive__aprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *buf;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    buf = malloc((size_t)n + 1);
    if (buf == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return buf;
}

hive_rc hive__strlist_add(hive_strlist *list, const char *s)
{
    char **items;
    char *copy = hive__strdup(s);

    if (copy == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    items = realloc(list->items, (list->count + 1) * sizeof(*items));
    if (items == NULL) {
        free(copy);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    items[list->count++] = copy;
    list->items = items;
    return HIVE_OK;
}

hive_rc hive_strlist_add(hive_strlist *list, const char *s)
{
    hive__clear_error();
    return hive__strlist_add(list, s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void hive__strlist_sort_unique(hive_strlist *list)
{
    size_t w = 0;

    if (list->count == 0)
        return;
    qsort(list->items, list->count, sizeof(char *), cmp_str);
    for (size_t r = 0; r < list->count; r++) {
        if (w > 0 && strcmp(list->items[w - 1], list->items[r]) == 0) {
            free(list->items[r]);
            continue;
        }
        list->items[w++] = list->items[r];
    }
    list->count = w;
}

void hive_strlist_free(hive_strlist *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}
