/*
 * aden.h - a client of the Aden platform's credential API (aden.c), shared
 * by the aden_sync provider (aden.c) and the store-level sync (adensync.c).
 */
#ifndef HIVE_ADEN_H
#define HIVE_ADEN_H

#include "internal.h"
#include "hive/store.h"

typedef struct hive__aden {
    char *base;       /* the server's URL, no trailing '/' */
    char *api_key;
    long timeout_ms;
} hive__aden;

/* A client for the server o names (NULL: the defaults); the API key is
 * o->api_key, else the credential aden_api_key read through lookup (may
 * be NULL: then o->api_key is needed). Close it with hive__aden_close. */
hive_rc hive__aden_open(hive__aden *a, const hive_aden_options *o, const hive_lookup *lookup);
void hive__aden_close(hive__aden *a);
/* One call (retried on connection errors); *out: the answer's JSON object.
 * The error cases of Hive's AdenCredentialClient, with its messages. */
hive_rc hive__aden_call(const hive__aden *a, const char *method, const char *path, hive_json **out);
/* The string member k of o, or NULL. */
const char *hive__aden_str(const hive_json *o, const char *k);
/* /v1/credentials/<id, percent-encoded><suffix>, or NULL (out of memory). */
char *hive__aden_path(const char *id, const char *suffix);
/* Put a token answer into a credential with the keys Hive's
 * AdenSyncProvider writes: a new one when *cred is NULL (sync), else an
 * update of *cred (refresh). */
hive_rc hive__aden_apply(hive_cred **cred, const char *id, const hive_json *tok);

#endif
