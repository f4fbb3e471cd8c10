/*
 * buf.h - a growable byte buffer that wipes what it leaves behind.
 */
#ifndef HIVE_BUF_H
#define HIVE_BUF_H

#include "internal.h"

typedef struct hive_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;     /* an allocation failed; further appends are ignored */
} hive_buf;

void hive__buf_append(hive_buf *b, const void *p, size_t n);
void hive__buf_putc(hive_buf *b, char c);
void hive__buf_puts(hive_buf *b, const char *s);
/* Hand the NUL-terminated contents to the caller (or fail if an append
 * failed); the buffer is left empty. */
HIVE_NODISCARD hive_rc hive__buf_finish(hive_buf *b, char **out, size_t *len);
/* Wipe and free. */
void hive__buf_free(hive_buf *b);

#endif
