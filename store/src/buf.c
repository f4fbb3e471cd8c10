/*
 * buf.c - growable buffer; growth copies and wipes instead of realloc, so
 * no secret is left in freed memory.
 */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool grow(hive_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 64;
    char *p;

    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    p = malloc(cap);
    if (p == NULL)
        return false;
    if (b->len > 0)
        memcpy(p, b->data, b->len);
    hive__free_secret(b->data, b->cap);
    b->data = p;
    b->cap = cap;
    return true;
}

void hive__buf_append(hive_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    /* len + n + 1 must not wrap around to a size that seems to fit */
    if (n > SIZE_MAX - b->len - 1 || (b->len + n + 1 > b->cap && !grow(b, b->len + n + 1))) {
        b->failed = true;
        return;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hive__buf_putc(hive_buf *b, char c)
{
    hive__buf_append(b, &c, 1);
}

void hive__buf_puts(hive_buf *b, const char *s)
{
    hive__buf_append(b, s, strlen(s));
}

hive_rc hive__buf_finish(hive_buf *b, char **out, size_t *len)
{
    if (!b->failed && b->data == NULL)
        hive__buf_append(b, "", 0);
    if (b->failed) {
        hive__buf_free(b);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    *out = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return HIVE_OK;
}

void hive__buf_free(hive_buf *b)
{
    hive__free_secret(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
