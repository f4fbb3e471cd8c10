/*
 * internal.h - declarations shared between libhive's files (hive__ tier).
 */
#ifndef HIVE_INTERNAL_H
#define HIVE_INTERNAL_H

#include "hive/hive.h"

#include <stdio.h>

#define HIVE_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Set this thread's detail message and return rc. */
hive_rc hive__fail(hive_rc rc, const char *fmt, ...) HIVE_PRINTF(2, 3);
/* Prefix the current detail message: "<prefix>: <old message>". */
hive_rc hive__fail_prefix(hive_rc rc, const char *fmt, ...) HIVE_PRINTF(2, 3);
/* Forget the detail message. */
void hive__clear_error(void);
/* An options struct's size field: HIVE_OK when it is one this library
 * knows (known: sizeof the struct; a later version accepts its older
 * sizes too), else HIVE_ERR_INVALID naming type and init, the macro to
 * start from. */
hive_rc hive__check_size(size_t size, size_t known, const char *type, const char *init);

/* Wipe n bytes at p, then free it; NULL is fine. The library's own
 * buffers; what it hands over is a hive_secret (hive_secret_free). */
void hive__free_secret(void *p, size_t n);
/* Wipe and free a NUL-terminated string; NULL is fine. */
void hive__free_str(char *s);

/* The hive_secret forms of the public functions, for the library's own
 * callers: *out and *len as before hive_secret (NUL-terminated; release
 * with hive__free_secret(*out, *len + 1)). */
HIVE_NODISCARD hive_rc hive__json_emit(char **out, size_t *len, const hive_json *v, int indent);
HIVE_NODISCARD hive_rc hive__cred_emit(char **out, size_t *len, const hive_cred *cred);
HIVE_NODISCARD hive_rc hive__fernet_decrypt(uint8_t **msg, size_t *len, const char *token,
                                            size_t token_len, const uint8_t key[HIVE_FERNET_KEY_BYTES]);
HIVE_NODISCARD hive_rc hive__store_get_key(hive_store *s, char **value, size_t *len, const char *id,
                                           const char *key, unsigned flags);
HIVE_NODISCARD hive_rc hive__store_resolve(hive_store *s, char **out, size_t *len, const char *text,
                                           unsigned flags);

/* Base64 (RFC 4648) with the urlsafe alphabet and padding. out must hold
 * hive__b64_encoded_len(len) + 1 bytes; returns the length written. */
size_t hive__b64_encoded_len(size_t len);
size_t hive__b64url_encode(char *out, const uint8_t *in, size_t len);
/*
 * Decode as Python's base64.urlsafe_b64decode does: both alphabets, other
 * characters skipped, input ends at complete padding, a partial final group
 * without padding is an error. out holds len * 3 / 4 + 3 bytes.
 */
HIVE_NODISCARD hive_rc hive__b64_decode_lenient(uint8_t *out, size_t *out_len, const char *in, size_t len);

/*
 * oauth2.c: text, from a server, fit for a message in out (size bytes):
 * each of the secrets the request carried (in every form it carried them)
 * becomes [redacted], matched without regard to case (a re-encoded %2f
 * too); every byte outside printable ASCII becomes '?' (no terminal
 * escapes, no forged lines); what does not fit is cut with "...". Secrets
 * go before the cut, so no part of one is left. A server may quote the
 * request.
 */
void hive__server_text(char *out, size_t size, const char *text, char *const *secrets, size_t nsecrets);

/* oauth2.c: take the in-doubt mark off cred's refresh token; *was: it had one. */
HIVE_NODISCARD hive_rc hive__oauth2_clear_in_doubt(hive_cred *cred, bool *was);

/* Set field of key name's metadata to val (taken); val NULL removes it. */
HIVE_NODISCARD hive_rc hive__cred_key_meta_set(hive_cred *cred, const char *name, const char *field, hive_json *val);

/* OBJECT: append a member the caller knows is not there yet (no search,
 * so building an object of n members is O(n)); takes val, also on failure. */
HIVE_NODISCARD hive_rc hive__json_add_member(hive_json *obj, const char *key, size_t key_len, hive_json *val);

/* Keep the pages holding p..p+n in RAM (no swap) and out of core dumps,
 * where the system allows. */
void hive__protect(void *p, size_t n);

/* Fill buf with n random bytes from the kernel. */
HIVE_NODISCARD hive_rc hive__random(void *buf, size_t n);

/* Storage vtable. */
typedef struct hive_storage_ops {
    const char *name;
    hive_rc (*load)(hive_storage *s, hive_cred **out, const char *id);
    hive_rc (*save)(hive_storage *s, const hive_cred *cred);
    hive_rc (*del)(hive_storage *s, const char *id);
    hive_rc (*exists)(hive_storage *s, const char *id, bool *found);
    hive_rc (*list)(hive_storage *s, hive_strlist *out);
    void (*destroy)(hive_storage *s);
    /* Optional: an exclusive lock on id across processes (and machines, for
     * a shared storage), held while a refresh runs. */
    hive_rc (*lock)(hive_storage *s, const char *id, int *handle);
    void (*unlock)(hive_storage *s, int handle);
    /* Whether save compares and swaps on the version this handle last read
     * (etcd), failing with HIVE_ERR_CHANGED: then a refresh cannot save
     * over a write it did not read, and writers need not wait for the
     * refresh lock. Else writes take the refresh lock (hive_storage_save). */
    bool cas;
} hive_storage_ops;

struct hive_storage {
    const hive_storage_ops *ops;
};

/* Release a lock taken with ops->lock (handle < 0: none), keeping rc and
 * its detail message; returns rc. */
HIVE_NODISCARD hive_rc hive__storage_unlock(hive_storage *s, int handle, hive_rc rc);

/* A token decrypted and parsed with a file storage's key (either key in
 * the middle of a rotation), and a credential encrypted with the key new
 * writes use: for storages that keep Hive's tokens elsewhere (etcd). */
HIVE_NODISCARD hive_rc hive__file_decrypt(hive_storage *local, const char *token, size_t len, hive_cred **out);
HIVE_NODISCARD hive_rc hive__file_encrypt(hive_storage *local, const hive_cred *cred, char **token, size_t *len);
bool hive__is_etcd_url(const char *spec);
/* open.c, for the _from_env entry points only: $HIVE_HOME, else
 * $HOME/.hive, else the password database's home/.hive; NULL when no home
 * is known (the caller says "set HIVE_HOME"). Free it. */
char *hive__home_dir(void);

/* Sorted, deduplicated list helpers. */
HIVE_NODISCARD hive_rc hive__strlist_add(hive_strlist *list, const char *s);
void hive__strlist_sort_unique(hive_strlist *list);

/* File I/O (whole-file reads, atomic writes, locks): fileio.h. */

/* Take key's value out of obj (the caller owns it), without a copy; NULL
 * when obj has no such key. */
hive_json *hive__json_detach(hive_json *obj, const char *key);

/* strtod in the C locale ('.' is the decimal point), whatever the
 * program's locale. */
double hive__strtod(const char *s, char **end);
/* Whether text is all a number of seconds from 0 to max (a setting: '.'
 * as the decimal point in every locale); it into *out if so. */
bool hive__parse_seconds(double *out, const char *text, double max);

/* The value of a hex digit, or -1. */
int hive__hexval(char c);

/* Checked string helpers. */
char *hive__strdup(const char *s);
char *hive__strndup(const char *s, size_t n);
char *hive__aprintf(const char *fmt, ...) HIVE_PRINTF(1, 2);

#endif
