/*
 * error.c - return codes and the per-thread detail message.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[1024];

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

HIVE_PRINTF(2, 0) static hive_rc vfail(hive_rc rc, const char *fmt, va_list ap)
{
    vsnprintf(detail, sizeof(detail), fmt, ap);
    return rc;
}

hive_rc hive__fail(hive_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = vfail(rc, fmt, ap);
    va_end(ap);
    return rc;
}

/* The same, for code outside the library (providers, storages). */
hive_rc hive_fail(hive_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = vfail(rc, fmt, ap);
    va_end(ap);
    return rc;
}

hive_rc hive__fail_prefix(hive_rc rc, const char *fmt, ...)
{
    char old[sizeof(detail)];
    char prefix[512];
    va_list ap;

    memcpy(old, detail[0] ? detail : hive_strerror(rc), sizeof(old));
    old[sizeof(old) - 1] = '\0';
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    {
        /* "<prefix>: <old>", cut to fit */
        size_t p = strlen(prefix);
        size_t o = strlen(old);
        if (p > sizeof(detail) - 3)
            p = sizeof(detail) - 3;
        memcpy(detail, prefix, p);
        memcpy(detail + p, ": ", 2);
        if (o > sizeof(detail) - p - 3)
            o = sizeof(detail) - p - 3;
        memcpy(detail + p + 2, old, o);
        detail[p + 2 + o] = '\0';
    }
    return rc;
}
