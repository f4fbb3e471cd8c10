/*
 * store_int.h - the store's insides, shared by store.c and the modules
 * above it: template.c, usage.c, adensync.c and open.c. The providers
 * (providers.h) are below the store and never include this.
 */
#ifndef HIVE_STORE_INT_H
#define HIVE_STORE_INT_H

#include "internal.h"
#include "hive/store.h"

#include <pthread.h>

struct hive_cache_entry {
    hive_cred *cred;
    int64_t loaded_at;   /* monotonic seconds */
};

struct hive_store {
    /* Guards cache, ncache, notes and nnotes: threads share a store
     * (hive/store.h). Recursive: remember() invalidates. Never held
     * across a call into the storage or a provider. */
    pthread_mutex_t lock;
    hive_storage *storage;
    int cache_ttl;
    int margin;
    struct hive_cache_entry *cache;
    size_t ncache;
    hive_provider **providers;
    size_t nproviders;
    size_t nbuiltin;         /* providers[0..nbuiltin) are the built-in ones */
    char *usage_file;
    hive_json *usage;        /* id -> spec, loaded on first use */
    bool usage_loaded;
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    /* Where Aden is, for the store-level sync (adensync.c): a copy of
     * hive_store_options.aden, its strings in aden_url and aden_key. */
    hive_aden_options aden;
    char *aden_url;
    char *aden_key;
    /* Refreshes this store tried that failed or left the credential due
     * at once, kept as long as its cached copy (one launch): replayed
     * instead of tried again. */
    struct hive_refresh_note {
        char *id;
        char *message;       /* the failure's message; NULL after a success */
        hive_rc rc;          /* HIVE_OK: refreshed */
    } *notes;
    size_t nnotes;
};

/* The cache's clock, in monotonic seconds (CLOCK_MONOTONIC); the tests
 * replace it to step over a cache_ttl without sleeping. */
extern int64_t (*hive__store_clock)(void);

/*
 * A store over storage with the built-in providers builtin[0..n) (open.c
 * makes them; a provider registered later by the caller comes first for
 * the types it handles). Takes storage and every provider, also on
 * failure.
 */
hive_rc hive__store_create(hive_store **out, hive_storage *storage, const hive_store_options *opts,
                           hive_provider *const *builtin, size_t n);
void hive__store_warn(hive_store *s, const char *fmt, ...) HIVE_PRINTF(2, 3);
/* What the store gives its providers: credentials read as stored. */
hive_lookup hive__store_lookup(hive_store *s);
/* A copy of key's value (NULL: the default key), with Hive's messages. */
HIVE_NODISCARD hive_rc hive__cred_value(char **value, size_t *len, const hive_cred *c, const char *key);
/* Whether p can produce a new token for cred (not static, not a bearer
 * token, and configured: see hive_provider.can_refresh). */
bool hive__provider_can_refresh(hive_store *s, hive_provider *p, const hive_cred *cred);
/* store.c: hive_store_refresh, with via's refresh in place of the
 * credential's provider (same lock, same checks, same save). */
HIVE_NODISCARD hive_rc hive__store_refresh_via(hive_store *s, hive_cred **out, const char *id, hive_provider *via);
/* Render every string of an object of templates. */
HIVE_NODISCARD hive_rc hive__resolve_object(hive_store *s, hive_json **out, const hive_json *in, unsigned flags);

#endif
