/*
 * hive/mem.h - the one wipe and the one constant-time compare.
 *
 * Threads: these functions share nothing and may run in several threads
 * at once.
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

/* Wipe and free a NUL-terminated string; NULL is fine. */
HIVE_EXPORT void hive_free_str(char *s);

/* Wipe n bytes at p, then free it; NULL is fine. */
HIVE_EXPORT void hive_free_secret(void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif
