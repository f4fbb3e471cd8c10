/*
 * utf8.c - strict UTF-8 (no overlongs, nothing above U+10FFFF).
 */
#include "utf8.h"

size_t hive__utf8_decode(const char *str, size_t n, bool allow_surrogates, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c;
    size_t len;
    uint32_t min;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        c = s[0] & 0x1F;
        min = 0x80;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        c = s[0] & 0x0F;
        min = 0x800;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        c = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF)
        return 0;
    if (c >= 0xD800 && c <= 0xDFFF && !allow_surrogates)
        return 0;
    *cp = c;
    return len;
}

bool hive__utf8_valid(const char *s, size_t n, bool allow_surrogates)
{
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t k;

        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        k = hive__utf8_decode(s + i, n - i, allow_surrogates, &cp);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

size_t hive__utf8_encode(char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t hive__utf8_space(const char *s, size_t n)
{
    unsigned char c;
    uint32_t cp;
    size_t len;

    if (n == 0)
        return 0;
    c = (unsigned char)s[0];
    if (c < 0x80)
        return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ? 1 : 0;
    len = hive__utf8_decode(s, n, false, &cp);
    if (len == 0)
        return 0;
    if (cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return len;
    return 0;
}
