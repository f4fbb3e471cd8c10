/*
 * error.c - return codes and the per-thread detail message.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[1024];

/* Each text is the comment after the code in hive/common.h, word for word
 * (tests/unit/test_error.c compares them). */
const char *hive_strerror(hive_rc rc)
{
    switch (rc) {
    case HIVE_OK: return "success";
    case HIVE_ERR_NOMEM: return "out of memory";
    case HIVE_ERR_INVALID: return "invalid argument";
    case HIVE_ERR_NOT_FOUND: return "credential not found";
    case HIVE_ERR_KEY_NOT_FOUND: return "key not found in credential";
    case HIVE_ERR_NO_KEY: return "no encryption key configured";
    case HIVE_ERR_BAD_KEY: return "encryption key is not a valid Fernet key";
    case HIVE_ERR_DECRYPT: return "token could not be decrypted";
    case HIVE_ERR_FORMAT: return "not a valid credential";
    case HIVE_ERR_IO: return "input/output error";
    case HIVE_ERR_PERM: return "unsafe permissions or access denied";
    case HIVE_ERR_BAD_ID: return "invalid credential id";
    case HIVE_ERR_TOO_LARGE: return "input too large";
    case HIVE_ERR_READ_ONLY: return "storage is read-only";
    case HIVE_ERR_LOCK: return "could not lock the store";
    case HIVE_ERR_CONFLICT: return "credential id conflict";
    case HIVE_ERR_RANDOM: return "no randomness available";
    case HIVE_ERR_UNSUPPORTED: return "not supported";
    case HIVE_ERR_NETWORK: return "network error";
    case HIVE_ERR_REFRESH: return "refresh failed";
    case HIVE_ERR_REAUTH: return "re-authorization required";
    case HIVE_ERR_CHANGED: return "changed by another writer";
    case HIVE_ERR_IN_DOUBT: return "refresh token in doubt";
    }
    return "unknown error";
}

const char *hive_last_error(void)
{
    return detail;
}

void hive__clear_error(void)
{
    detail[0] = '\0';
}

/* A message that filled all of buf (size bytes) was cut: end it on a whole
 * UTF-8 character with "..." so that the cut shows. */
static void mark_cut(char *buf, size_t size)
{
    size_t n = size - 4;

    while (n > 0 && ((unsigned char)buf[n] & 0xC0) == 0x80)
        n--;
    memcpy(buf + n, "...", 4);
}

/* vsnprintf into buf, cut visibly when it does not fit. */
HIVE_PRINTF(3, 0) static void format(char *buf, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, size, fmt, ap);

    if (n < 0)
        snprintf(buf, size, "(the error message could not be formatted)");
    else if ((size_t)n >= size)
        mark_cut(buf, size);
}

hive_rc hive__fail(hive_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    format(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return rc;
}

/* The same, for code outside the library (providers, storages). */
hive_rc hive_fail(hive_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    format(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return rc;
}

hive_rc hive__fail_prefix(hive_rc rc, const char *fmt, ...)
{
    char old[sizeof(detail)];
    char prefix[512];
    va_list ap;

    /* the old message, or the generic text: a short literal, copied up to
     * its end and no further */
    snprintf(old, sizeof(old), "%s", detail[0] ? detail : hive_strerror(rc));
    va_start(ap, fmt);
    format(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    /* "<prefix>: <old>", the end of old cut to fit */
    hive__fail(rc, "%s: %s", prefix, old);
    return rc;
}

hive_rc hive__check_size(size_t size, size_t known, const char *type, const char *init)
{
    if (size == known)
        return HIVE_OK;
    return hive__fail(HIVE_ERR_INVALID, "%s.size is %zu, not a size this libhive knows for it (%zu): "
                      "start the options from %s", type, size, known, init);
}
