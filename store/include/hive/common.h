/*
 * hive/common.h - export macro, return codes and error details.
 *
 * Threads: the functions here may be called from any thread at any time;
 * the detail message is per thread.
 */
#ifndef HIVE_COMMON_H
#define HIVE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(HIVE_BUILDING_LIBRARY)
#define HIVE_EXPORT __attribute__((visibility("default")))
#else
#define HIVE_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every fallible function returns a hive_rc. The list is append-only: the
 * numbers are part of the ABI.
 */
typedef enum hive_rc {
    HIVE_OK = 0,
    HIVE_ERR_NOMEM = 1,          /* out of memory */
    HIVE_ERR_INVALID = 2,        /* bad argument or malformed input */
    HIVE_ERR_NOT_FOUND = 3,      /* no such credential */
    HIVE_ERR_KEY_NOT_FOUND = 4,  /* credential has no such key */
    HIVE_ERR_NO_KEY = 5,         /* no encryption key configured */
    HIVE_ERR_BAD_KEY = 6,        /* encryption key is not a Fernet key */
    HIVE_ERR_DECRYPT = 7,        /* token rejected (MAC, format, padding, time) */
    HIVE_ERR_FORMAT = 8,         /* decrypted data is not a valid credential */
    HIVE_ERR_IO = 9,             /* file system error */
    HIVE_ERR_PERM = 10,          /* unsafe permissions, symlink, or EACCES */
    HIVE_ERR_BAD_ID = 11,        /* id cannot name a credential file */
    HIVE_ERR_TOO_LARGE = 12,     /* input above a size limit */
    HIVE_ERR_READ_ONLY = 13,     /* storage cannot be written */
    HIVE_ERR_LOCK = 14,          /* could not take the store lock */
    HIVE_ERR_CONFLICT = 15,      /* id collides with another credential */
    HIVE_ERR_RANDOM = 16,        /* no randomness available */
    HIVE_ERR_UNSUPPORTED = 17,   /* not possible here (read-only, no provider, no libcurl) */
    HIVE_ERR_NETWORK = 18,       /* no answer: connection refused, time-out, TLS failure */
    HIVE_ERR_REFRESH = 19,       /* the provider refused or failed a refresh */
    HIVE_ERR_REAUTH = 20,        /* the refresh token is invalid or revoked: re-authorize */
    HIVE_ERR_CHANGED = 21,       /* changed by another writer since it was read: read it again */
    HIVE_ERR_IN_DOUBT = 22       /* a one-time token may have been spent by a request that got no answer */
} hive_rc;

/* A static, generic description of rc. Never NULL. */
HIVE_EXPORT const char *hive_strerror(hive_rc rc);

/*
 * The detail message of the last failure in this thread ("Failed to decrypt
 * credential 'x': bad MAC"), or hive_strerror's text when none was set.
 * Messages never contain secret values. Valid until the next library call
 * in this thread.
 */
HIVE_EXPORT const char *hive_last_error(void);

/*
 * The version of the library that is running: "1.2.3", and 0xMMmmpp (as
 * HIVE_VERSION_NUMBER in hive/version.h, the version of the headers a
 * program was built with). Thread-safe.
 */
HIVE_EXPORT const char *hive_version(void);
HIVE_EXPORT unsigned hive_version_number(void);

/* Set this thread's detail message and return rc: for providers and
 * storages written outside the library. */
HIVE_EXPORT hive_rc hive_fail(hive_rc rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
