/*
 * store_int.h - the store's insides, shared by store.c, template.c and
 * usage.c.
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

void hive__store_warn(hive_store *s, const char *fmt, ...) HIVE_PRINTF(2, 3);
/* A copy of key's value (NULL: the default key), with Hive's messages. */
HIVE_NODISCARD hive_rc hive__cred_value(char **value, size_t *len, const hive_cred *c, const char *key);
/* Whether p can produce a new token for cred (not static, not a bearer
 * token, and configured: see hive_provider.can_refresh). */
bool hive__provider_can_refresh(hive_store *s, hive_provider *p, const hive_cred *cred);
/* store.c: hive_store_refresh, with via's refresh in place of the
 * credential's provider (same lock, same checks, same save). */
hive_rc hive__store_refresh_via(hive_store *s, hive_cred **out, const char *id, hive_provider *via);
/* Register the Aden provider (aden.c). */
HIVE_NODISCARD hive_rc hive__add_aden_provider(hive_store *s);
/*
 * text, from a server, fit for a message in out (size bytes): each of the
 * secrets the request carried (in every form it carried them) becomes
 * [redacted], matched without regard to case (a re-encoded %2f too);
 * every byte outside printable ASCII becomes '?' (no terminal escapes, no
 * forged lines); what does not fit is cut with "...". Secrets go before
 * the cut, so no part of one is left. A server may quote the request.
 */
void hive__server_text(char *out, size_t size, const char *text, char *const *secrets, size_t nsecrets);
/* Register the OAuth2 provider (oauth2.c). */
HIVE_NODISCARD hive_rc hive__add_oauth2_provider(hive_store *s);
/* Render every string of an object of templates. */
HIVE_NODISCARD hive_rc hive__resolve_object(hive_store *s, hive_json **out, const hive_json *in, unsigned flags);

#endif
