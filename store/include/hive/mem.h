/*
 * hive/mem.h - the one type for a secret handed over, the one wipe and
 * the one constant-time compare.
 *
 * Threads: these functions share nothing and may run in several threads
 * at once; a hive_secret is plain data, owned by one thread at a time.
 */
#ifndef HIVE_MEM_H
#define HIVE_MEM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Overwrite n bytes at p with zeros; never optimised away. p may be NULL. */
HIVE_EXPORT void hive_memzero(void *p, size_t n);

/* 1 when the n bytes at a and b are equal, else 0, in time that depends on
 * n only. */
HIVE_EXPORT HIVE_NODISCARD int hive_memeq(const void *a, const void *b, size_t n);

/*
 * A secret the library hands over: a key's value, a rendered template, a
 * decrypted token, a serialised credential. data holds len bytes and a NUL
 * after them (data[len] == '\0', for convenience: the bytes may hold NUL
 * too); data is NULL when the struct holds nothing. Start from
 * HIVE_SECRET_INIT (or {0}); a function that fills one leaves it untouched
 * on failure. The caller owns what it holds and gives it back with
 * hive_secret_free, the one way to free a secret.
 */
typedef struct hive_secret {
    char *data;
    size_t len;
} hive_secret;

#define HIVE_SECRET_INIT {NULL, 0}

/* Wipe the len + 1 bytes of s->data, free them, and set *s to
 * HIVE_SECRET_INIT. s and s->data may be NULL; freeing twice is harmless. */
HIVE_EXPORT void hive_secret_free(hive_secret *s);

#ifdef __cplusplus
}
#endif
#endif
