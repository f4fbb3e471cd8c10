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
    case HIVE_ERR_INVALID: return "bad argument or malformed input";
    case HIVE_ERR_NOT_FOUND: return "no such credential";
    case HIVE_ERR_KEY_NOT_FOUND: return "credential has no such key";
    case HIVE_ERR_NO_KEY: return "no encryption key configured";
    case HIVE_ERR_BAD_KEY: return "encryption key is not a Fernet key";
    case HIVE_ERR_DECRYPT: return "token rejected (MAC, format, padding, time)";
    case HIVE_ERR_FORMAT: return "decrypted data is not a valid credential";
    case HIVE_ERR_IO: return "file system error";
    case HIVE_ERR_PERM: return "unsafe permissions, a symlink, or access denied";
    case HIVE_ERR_BAD_ID: return "id cannot name a credential file";
    case HIVE_ERR_TOO_LARGE: return "input above a size limit";
    case HIVE_ERR_READ_ONLY: return "storage cannot be written";
    case HIVE_ERR_LOCK: return "could not take the store lock";
    case HIVE_ERR_CONFLICT: return "id collides with another credential";
    case HIVE_ERR_RANDOM: return "no randomness available";
    case HIVE_ERR_UNSUPPORTED: return "not possible here (read-only, no provider, no libcurl)";
    case HIVE_ERR_NETWORK: return "no answer: connection refused, time-out, TLS failure";
    case HIVE_ERR_REFRESH: return "the provider refused or failed a refresh";
    case HIVE_ERR_REAUTH: return "the refresh token is invalid or revoked: re-authorize";
    case HIVE_ERR_CHANGED: return "changed by another writer since it was read: read it again";
    case HIVE_ERR_IN_DOUBT: return "a one-time token may have been spent by a request that got no answer";
    }
    return "unknown error";
}

const char *hive_last_error(void)
{
    return detail[0] ? detail : "unknown error";
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
