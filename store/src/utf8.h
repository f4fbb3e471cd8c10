/*
 * utf8.h - UTF-8 checks. Strings read from JSON may hold lone surrogates
 * (Python allows "\ud800"); they are kept as WTF-8, the 3-byte form a
 * surrogate would have.
 */
#ifndef HIVE_UTF8_H
#define HIVE_UTF8_H

#include "internal.h"

/* Decode one code point at s; returns its length, or 0 when invalid. */
size_t hive__utf8_decode(const char *s, size_t n, bool allow_surrogates, uint32_t *cp);
/* true when all n bytes are UTF-8 (WTF-8 when allow_surrogates). */
bool hive__utf8_valid(const char *s, size_t n, bool allow_surrogates);
/* The length of the whitespace character at s (n bytes available), as
 * Python's str.isspace() and the regex \s see it (29 code points, some
 * multi-byte); 0 when s does not start with one. */
size_t hive__utf8_space(const char *s, size_t n);
/* Encode cp (surrogates included) into out; returns 1 to 4. */
size_t hive__utf8_encode(char out[4], uint32_t cp);

#endif
