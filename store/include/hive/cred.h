/*
 * hive/cred.h - the credential object of the Hive store.
 *
 * Threads: one hive_cred, one thread at a time; distinct credentials share
 * nothing, and a const one may be read by several threads at once.
 *
 * A credential is kept as its Hive JSON document, normalised the way Hive's
 * pydantic model normalises it: known fields in Hive's order with their
 * defaults, datetimes in Hive's form, unknown fields kept after them in the
 * order read. So what is read and written again is byte-identical to what
 * Hive writes for the same object.
 */
#ifndef HIVE_CRED_H
#define HIVE_CRED_H

#include "common.h"
#include "datetime.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hive_cred_type {
    HIVE_TYPE_UNKNOWN = 0,   /* a type this version does not know; kept as read */
    HIVE_TYPE_API_KEY,
    HIVE_TYPE_OAUTH2,
    HIVE_TYPE_BASIC_AUTH,
    HIVE_TYPE_BEARER_TOKEN,
    HIVE_TYPE_CUSTOM
} hive_cred_type;

typedef struct hive_cred hive_cred;

/* The datetime fields of a credential (the other fields have typed
 * accessors below). An enum, so that a misspelt field does not compile. */
typedef enum hive_cred_time_field {
    HIVE_CRED_CREATED_AT,        /* "created_at" (never null) */
    HIVE_CRED_UPDATED_AT,        /* "updated_at" (never null) */
    HIVE_CRED_LAST_REFRESHED,    /* "last_refreshed" (null until refreshed) */
    HIVE_CRED_LAST_USED          /* "last_used" (null until used) */
} hive_cred_time_field;

/* Hive's name of a datetime field ("created_at", ...); NULL for a number
 * that names none. */
HIVE_EXPORT const char *hive_cred_time_field_name(hive_cred_time_field field);

/* "api_key", ... for a known type; NULL for HIVE_TYPE_UNKNOWN. */
HIVE_EXPORT const char *hive_cred_type_name(hive_cred_type type);
/* The type named by name, or HIVE_TYPE_UNKNOWN. */
HIVE_EXPORT hive_cred_type hive_cred_type_parse(const char *name);

/*
 * A new credential with no keys, created and updated now. type_name must be
 * one of Hive's five types (HIVE_ERR_INVALID otherwise; HIVE_ERR_BAD_ID for
 * an empty id). *out is the caller's (hive_cred_free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_new(hive_cred **out, const char *id, const char *type_name);

/*
 * Parse a credential from its JSON text (the plaintext of a .enc file).
 * HIVE_ERR_FORMAT when it is not JSON or not a credential.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_parse(hive_cred **out, const char *json, size_t len);

/* The credential's JSON text exactly as Hive writes it, secrets and all.
 * *out is the caller's (hive_secret_free). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_emit(const hive_cred *cred, hive_secret *out);

/* Wipe every value in *cred, free it, and set *cred to NULL. NULL and a
 * NULL *cred are fine. */
HIVE_EXPORT void hive_cred_free(hive_cred **cred);

/* A deep copy of cred; *out is the caller's (hive_cred_free).
 * HIVE_ERR_NOMEM only. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_clone(hive_cred **out, const hive_cred *cred);

/*
 * Fields. The strings and JSON nodes returned are owned by the credential
 * and valid until it is changed or freed; none of these fails.
 */
/* The id ("github", "brave_search/work"). Never NULL. */
HIVE_EXPORT const char *hive_cred_id(const hive_cred *cred);
/* credential_type as stored ("oauth2"; also a type this version does not know). */
HIVE_EXPORT const char *hive_cred_type_str(const hive_cred *cred);
/* credential_type as an enum (HIVE_TYPE_UNKNOWN for a type not listed). */
HIVE_EXPORT hive_cred_type hive_cred_get_type(const hive_cred *cred);
/* provider_id, or NULL when null (the provider is then chosen by type). */
HIVE_EXPORT const char *hive_cred_provider_id(const hive_cred *cred);
/* description ("" when empty). */
HIVE_EXPORT const char *hive_cred_description(const hive_cred *cred);
/* auto_refresh: whether the store refreshes it when due. */
HIVE_EXPORT bool hive_cred_auto_refresh(const hive_cred *cred);
/* A datetime field (form HIVE_TIME_NONE when null or unreadable). */
HIVE_EXPORT hive_time hive_cred_time(const hive_cred *cred, hive_cred_time_field field);
/* tags: an array of strings. */
HIVE_EXPORT const hive_json *hive_cred_tags(const hive_cred *cred);
/* The whole document, read-only (clone it to change a copy). */
HIVE_EXPORT const hive_json *hive_cred_json(const hive_cred *cred);

/* The number of keys, and the name of key i in stored order (NULL past
 * the end). */
HIVE_EXPORT size_t hive_cred_key_count(const hive_cred *cred);
HIVE_EXPORT const char *hive_cred_key_name(const hive_cred *cred, size_t i);

/*
 * The value of key name (or NULL when absent), NUL-terminated, owned by the
 * credential; *len (may be NULL) gets its length.
 */
HIVE_EXPORT const char *hive_cred_get_key(const hive_cred *cred, const char *name, size_t *len);

/* The key's expiry (form HIVE_TIME_NONE when it has none or is absent). */
HIVE_EXPORT hive_time hive_cred_key_expires(const hive_cred *cred, const char *name);

/* The key's metadata object, or NULL when absent. */
HIVE_EXPORT const hive_json *hive_cred_key_metadata(const hive_cred *cred, const char *name);

/*
 * The name of the default key: "value", then "api_key", then
 * "access_token", else the first key; NULL when there are no keys.
 */
HIVE_EXPORT const char *hive_cred_default_key(const hive_cred *cred);

/* The earliest expiry over all keys (HIVE_TIME_NONE if none expires). */
HIVE_EXPORT hive_time hive_cred_expires(const hive_cred *cred);

/*
 * Setters. Each keeps the document in Hive's form and copies what it is
 * given (the caller keeps its strings). Errors: HIVE_ERR_INVALID for text
 * that is not UTF-8 or an empty key name, HIVE_ERR_NOMEM.
 */
/* Set key name to the len bytes at value (a new key goes last; an existing
 * one keeps its place and metadata), expiring at *expires_at (NULL: never). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_set_key(hive_cred *cred, const char *name,
                                      const char *value, size_t len,
                                      const hive_time *expires_at);
/* Change only the expiry of key name (NULL: never); HIVE_ERR_KEY_NOT_FOUND. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_set_key_expires(hive_cred *cred, const char *name,
                                              const hive_time *expires_at);
/* Remove key name, wiping its value; HIVE_ERR_KEY_NOT_FOUND when absent. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_remove_key(hive_cred *cred, const char *name);
/* description (NULL: ""). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_set_description(hive_cred *cred, const char *text);
/* provider_id (NULL: null). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_set_provider_id(hive_cred *cred, const char *provider_id);
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_set_auto_refresh(hive_cred *cred, bool on);
/* Append tag to tags unless it is there already. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_add_tag(hive_cred *cred, const char *tag);
/* Set a datetime field; t NULL or HIVE_TIME_NONE writes null, which only
 * last_refreshed and last_used may hold (else HIVE_ERR_INVALID). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_set_time(hive_cred *cred, hive_cred_time_field field,
                                                      const hive_time *t);

#ifdef __cplusplus
}
#endif
#endif
