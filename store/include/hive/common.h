/*
 * hive/common.h - export macro, return codes and error details.
 *
 * Threads: the functions here may be called from any thread at any time;
 * the detail message is per thread.
 *
 * What holds for every function in these headers (docs/libhive.md says it
 * at length, with an example program):
 *  - Errors: a function that can fail returns a hive_rc (HIVE_OK = 0) and
 *    sets this thread's detail message (hive_last_error); each function's
 *    comment names the codes that mean something particular there, and
 *    any may also give HIVE_ERR_NOMEM, or HIVE_ERR_INVALID for a NULL
 *    where an argument is required. HIVE_NODISCARD: ignoring the result
 *    does not compile with -Werror.
 *  - Outputs are written only on success, and then belong to the caller:
 *    an object to give back with its _free function, a hive_secret with
 *    hive_secret_free. A const char * or const hive_json * returned by an
 *    accessor belongs to the object it came from and lives as long as it
 *    is not changed or freed. Every _free takes the address of what it
 *    frees, wipes what may be secret, and clears it; NULL is fine.
 *  - Argument order: the object acted on first, then outputs, then inputs;
 *    a function with no object to act on puts its output first.
 *  - Threads: each header says at its top what may be shared.
 */
#ifndef HIVE_COMMON_H
#define HIVE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* On every function that returns a hive_rc or a verdict (memeq, a check):
 * ignoring it is a bug, so the compiler says so. */
#if defined(__GNUC__) || defined(__clang__)
#define HIVE_NODISCARD __attribute__((warn_unused_result))
#else
#define HIVE_NODISCARD
#endif

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
 * numbers are part of the ABI. After each code: its hive_strerror() text,
 * then what it means.
 */
typedef enum hive_rc {
    HIVE_OK = 0,                 /* "success" */
    HIVE_ERR_NOMEM = 1,          /* "out of memory" */
    HIVE_ERR_INVALID = 2,        /* "invalid argument": bad argument or malformed input */
    HIVE_ERR_NOT_FOUND = 3,      /* "credential not found": no such credential */
    HIVE_ERR_KEY_NOT_FOUND = 4,  /* "key not found in credential": credential has no such key */
    HIVE_ERR_NO_KEY = 5,         /* "no encryption key configured" */
    HIVE_ERR_BAD_KEY = 6,        /* "encryption key is not a valid Fernet key" */
    HIVE_ERR_DECRYPT = 7,        /* "token could not be decrypted": token rejected (MAC, format, padding, time) */
    HIVE_ERR_FORMAT = 8,         /* "not a valid credential": decrypted data is not a valid credential */
    HIVE_ERR_IO = 9,             /* "input/output error": file system error */
    HIVE_ERR_PERM = 10,          /* "unsafe permissions or access denied": unsafe permissions, symlink, or EACCES */
    HIVE_ERR_BAD_ID = 11,        /* "invalid credential id": id cannot name a credential file */
    HIVE_ERR_TOO_LARGE = 12,     /* "input too large": input above a size limit */
    HIVE_ERR_READ_ONLY = 13,     /* "storage is read-only": storage cannot be written */
    HIVE_ERR_LOCK = 14,          /* "could not lock the store" */
    HIVE_ERR_CONFLICT = 15,      /* "credential id conflict": id collides with another credential */
    HIVE_ERR_RANDOM = 16,        /* "no randomness available" */
    HIVE_ERR_UNSUPPORTED = 17,   /* "not supported": not possible here (read-only, no provider, no libcurl) */
    HIVE_ERR_NETWORK = 18,       /* "network error": no answer: connection refused, time-out, TLS failure */
    HIVE_ERR_REFRESH = 19,       /* "refresh failed": the provider refused or failed a refresh */
    HIVE_ERR_REAUTH = 20,        /* "re-authorization required": the refresh token is invalid or revoked */
    HIVE_ERR_CHANGED = 21,       /* "changed by another writer": since it was read; read it again */
    HIVE_ERR_IN_DOUBT = 22       /* "refresh token in doubt": a one-time token may have been spent
                                  * by a request that got no answer */
} hive_rc;

/* A static, generic description of rc: the quoted text after each code
 * above ("unknown error" for a number not in the list). Never NULL. */
HIVE_EXPORT const char *hive_strerror(hive_rc rc);

/*
 * The detail message of the last failure in this thread ("Failed to decrypt
 * credential 'x': bad MAC"); "" when the last function that returns a
 * hive_rc succeeded: every such function clears it when called, so that a
 * stale message never outlives a success. Messages never contain secret
 * values. Valid until the next library call in this thread. Never NULL.
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
 * storages written outside the library. Not HIVE_NODISCARD: it returns its
 * own argument, so that "return hive_fail(...)" reads as one step. */
HIVE_EXPORT hive_rc hive_fail(hive_rc rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
