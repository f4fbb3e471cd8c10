/*
 * hive/json.h - a JSON tree that reads and writes exactly as Python's json
 * module does: member order kept, duplicate keys resolved as dict() does
 * (first position, last value), integers of any size kept exactly, floats
 * printed as repr(), strings able to hold NUL and lone surrogates (kept as
 * WTF-8), output with ensure_ascii and lowercase \uXXXX escapes.
 *
 * Every string in a tree may be a secret: hive_json_free wipes them all.
 *
 * Threads: one tree, one thread at a time; distinct trees share nothing,
 * and a tree that no thread changes may be read by several at once.
 */
#ifndef HIVE_JSON_H
#define HIVE_JSON_H

#include "common.h"
#include "mem.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hive_json_type {
    HIVE_JSON_NULL,
    HIVE_JSON_FALSE,
    HIVE_JSON_TRUE,
    HIVE_JSON_NUMBER,
    HIVE_JSON_STRING,
    HIVE_JSON_ARRAY,
    HIVE_JSON_OBJECT
} hive_json_type;

typedef struct hive_json hive_json;

/* Limits on what the parser accepts. */
#define HIVE_JSON_MAX_DEPTH 256
#define HIVE_JSON_MAX_INPUT (64u * 1024 * 1024)

/*
 * Parse text (UTF-8, an optional BOM first) as one JSON value followed only
 * by whitespace. *out is the caller's, to free with hive_json_free. On
 * HIVE_ERR_INVALID the detail message gives the position, never the text.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_json_parse(hive_json **out, const char *text, size_t len);

/* Free a tree, wiping every string in it, and set *json to NULL. */
HIVE_EXPORT void hive_json_free(hive_json **json);

/*
 * Serialise as json.dumps(v) does (indent < 0: separators ", " and ": ") or
 * as json.dumps(v, indent=N). *out is the caller's (hive_secret_free: the
 * strings in a tree may be secrets).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_json_emit(const hive_json *v, hive_secret *out, int indent);

/* The type of v; HIVE_JSON_NULL for a NULL v (so a missing member reads
 * as null). */
HIVE_EXPORT hive_json_type hive_json_typeof(const hive_json *v);

/* STRING: its bytes (NUL-terminated; *len may count embedded NULs).
 * NUMBER: its text as Python prints it. NULL for other types. */
HIVE_EXPORT const char *hive_json_string(const hive_json *v, size_t *len);

/* NUMBER: its value as a double (integers beyond 2^53 are rounded). */
HIVE_EXPORT double hive_json_number(const hive_json *v);

/* ARRAY or OBJECT: the number of items or members; 0 otherwise. */
HIVE_EXPORT size_t hive_json_size(const hive_json *v);

/*
 * Lookups. What is reached through a const tree is const: these return
 * const nodes, owned by the tree (valid until it changes or is freed).
 * The _mut forms take and give a node that may be changed.
 */

/* ARRAY or OBJECT: item i, or NULL past the end (and, for an object, its
 * key in *key, which may be NULL). */
HIVE_EXPORT const hive_json *hive_json_at(const hive_json *v, size_t i, const char **key);
HIVE_EXPORT hive_json *hive_json_at_mut(hive_json *v, size_t i, const char **key);

/* ARRAY or OBJECT: as hive_json_at, with the length of the key: member
 * names are counted strings and may hold NUL, as in Python. */
HIVE_EXPORT const hive_json *hive_json_member(const hive_json *v, size_t i, const char **key, size_t *key_len);

/* OBJECT: the member named key, or NULL. */
HIVE_EXPORT const hive_json *hive_json_get(const hive_json *obj, const char *key);
HIVE_EXPORT hive_json *hive_json_get_mut(hive_json *obj, const char *key);
/* OBJECT: the member whose name is the key_len bytes at key, or NULL. */
HIVE_EXPORT const hive_json *hive_json_get_member(const hive_json *obj, const char *key, size_t key_len);

/* Constructors; each returns a new tree, the caller's (hive_json_free), or
 * NULL when out of memory. hive_json_new makes an empty ARRAY or OBJECT,
 * or the value NULL, FALSE or TRUE (not NUMBER or STRING). */
HIVE_EXPORT hive_json *hive_json_new(hive_json_type type);
HIVE_EXPORT hive_json *hive_json_new_string(const char *s, size_t len);
HIVE_EXPORT hive_json *hive_json_new_int(int64_t n);
HIVE_EXPORT hive_json *hive_json_clone(const hive_json *v);

/*
 * OBJECT: set key to val, taking ownership of val (also on failure). An
 * existing member keeps its position, as in a Python dict.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_json_set(hive_json *obj, const char *key, hive_json *val);
/* OBJECT: hive_json_set with a counted name (which may hold NUL). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_json_set_member(hive_json *obj, const char *key, size_t key_len, hive_json *val);

/* OBJECT: remove key if present (wiping it). */
HIVE_EXPORT void hive_json_remove(hive_json *obj, const char *key);

/* ARRAY: append val, taking ownership of val (also on failure). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_json_append(hive_json *arr, hive_json *val);

/*
 * Builders for a document checked once at the end: as hive_json_set and
 * hive_json_append, but a failure (out of memory; val NULL, as a
 * constructor that ran out of memory returns) frees the whole of *obj or
 * *arr and sets it to NULL, and adding to NULL only frees val. So a
 * document is either complete or NULL, never missing a part:
 *   hive_json *o = hive_json_new(HIVE_JSON_OBJECT);
 *   hive_json_put(&o, "id", hive_json_new_string(id, strlen(id)));
 *   hive_json_put(&o, "n", hive_json_new_int(n));
 *   if (o == NULL) ...out of memory...
 */
HIVE_EXPORT void hive_json_put(hive_json **obj, const char *key, hive_json *val);
HIVE_EXPORT void hive_json_push(hive_json **arr, hive_json *val);

#ifdef __cplusplus
}
#endif
#endif
