/*
 * masktest.h - for the tests of hive-run --mask's matcher: a sink that
 * collects what a stream writes.
 */
#ifndef HIVE_MASKTEST_H
#define HIVE_MASKTEST_H

#include <criterion/criterion.h>
#include <string.h>

typedef struct outbuf {
    char b[8192];
    size_t n;
} outbuf;

/* mask_sink: append to the outbuf ctx, NUL-terminated. */
static inline void to_outbuf(void *ctx, const char *p, size_t n)
{
    outbuf *o = ctx;

    cr_assert(n > 0 && o->n + n < sizeof(o->b));
    memcpy(o->b + o->n, p, n);
    o->n += n;
    o->b[o->n] = '\0';
}

#endif
