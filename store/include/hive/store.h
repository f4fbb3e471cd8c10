/*
 * hive/store.h - the credential store: a storage with a cache, providers
 * that refresh credentials, templates, usage specs, validation, accounts.
 * It mirrors the Python Hive CredentialStore.
 *
 * Threads: a hive_store handle over a storage that may be shared between
 * threads (hive/storage.h: memory, file) may be used by several threads at
 * once for reading and writing credentials: hive_store_get_credential,
 * _get_key, _refresh, _clear_in_doubt, _save, _delete, _exists, _list,
 * _invalidate, _provider_for, _can_refresh and the template functions
 * (_resolve, _resolve_headers, _resolve_params, _check_template); its cache and its
 * refresh notes are under a mutex, and each refresh holds the credential's
 * refresh lock. Providers the caller registers must then be thread-safe
 * too. Everything else (hive_store_add_provider, the usage functions,
 * validation, accounts, hive_store_free) needs the handle to itself: set
 * the store up before sharing it. The functions that open a store share
 * nothing; hive_store_open_from_env reads the environment, so no thread
 * may change it (setenv) meanwhile.
 */
#ifndef HIVE_STORE_H
#define HIVE_STORE_H

#include "common.h"
#include "cred.h"
#include "json.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hive_store hive_store;

#define HIVE_DEFAULT_CACHE_TTL 300
#define HIVE_DEFAULT_REFRESH_MARGIN 300

/*
 * A store's settings. Start from HIVE_STORE_OPTIONS_INIT and set what you
 * need: size tells the library which version of the struct the caller
 * was built with (an unknown size is HIVE_ERR_INVALID). NULL options: all
 * defaults.
 */
typedef struct hive_store_options {
    size_t size;              /* sizeof(hive_store_options) */
    int cache_ttl;            /* seconds a loaded credential is reused; 0: 300; <0: no cache */
    int refresh_margin;       /* refresh keys expiring within this; 0: 300; <0: only expired */
    const char *usage_file;   /* usage specs (JSON); NULL: usage.json in a file storage's
                               * directory, none for other storages */
    /* Warnings the store cannot return (a failed refresh that fell back to
     * the stored credential). The library never prints; NULL: dropped. */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    /* Where the aden_sync provider and hive_aden_sync find Aden (copied);
     * NULL: the defaults (hive_aden_options). */
    const struct hive_aden_options *aden;
    /* How hive_store_open opens the storage; NULL: the defaults, with warn
     * and warn_ctx above. Ignored by hive_store_new. */
    const hive_file_options *storage;
} hive_store_options;
#define HIVE_STORE_OPTIONS_INIT {sizeof(hive_store_options), 0, 0, NULL, NULL, NULL, NULL, NULL}

/* A store over storage, which it takes ownership of (also on failure). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_new(hive_store **out, hive_storage *storage,
                                   const hive_store_options *opts);

/* A store over the storage spec names (hive_storage_open: an etcd:// URL or
 * a directory; NULL: <opts->storage->home>/credentials). Reads no
 * environment variable. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_open(hive_store **out, const char *spec, const hive_store_options *opts);

/*
 * hive_store_open as the tools open a store, the one store entry point that
 * reads the environment: the storage as hive_storage_open_from_env opens
 * it (HIVE_HOME, HOME, HIVE_ETCD_USER, HIVE_ETCD_PASSWORD, for what
 * opts->storage leaves unset), and, when opts->aden is NULL, Aden from
 * ADEN_API_URL, ADEN_API_KEY and ADEN_TIMEOUT (seconds, up to 3600; any
 * other value: the default).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_open_from_env(hive_store **out, const char *spec,
                                             const hive_store_options *opts);

/*
 * An in-memory store filled from a table of {id, key, value} rows ended by
 * a row whose id is NULL, as Hive's CredentialStore.for_testing:
 *   {{"brave_search", "api_key", "test-brave-key"}, {NULL, NULL, NULL}}
 * Each credential has type api_key.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_for_testing(hive_store **out, const char *const (*table)[3]);

/* Free the store, its cache (wiped), its storage and its providers (their
 * destroy), and set *store to NULL. NULL is fine. Not while another thread
 * uses the store. */
HIVE_EXPORT void hive_store_free(hive_store **store);
/* The storage under the store, owned by the store (for the storage's own
 * functions: hive_file_storage_init, rotation, the index). */
HIVE_EXPORT hive_storage *hive_store_storage(hive_store *store);

/*
 * Flags for reading. By default a read refreshes a credential that is due
 * (hive_cred_needs_refresh) through its provider, as Hive's
 * CredentialStore does, and a failed refresh is warned about (opts->warn)
 * and the stored credential returned; see hive_store_refresh.
 */
#define HIVE_GET_STRICT     2u   /* fail when that refresh fails, instead of warning
                                  * and returning the stored credential */
#define HIVE_GET_NO_REFRESH 4u   /* never refresh: the credential as stored */

/* The credential id (a copy: *out is the caller's, hive_cred_free). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_get_credential(hive_store *s, hive_cred **out, const char *id,
                                              unsigned flags);

/*
 * The value of key (NULL: the default key) of credential id. *value is the
 * caller's (hive_secret_free).
 * Errors: "Credential 'ID' not found", "Key 'K' not found in credential 'ID'".
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_get_key(hive_store *s, hive_secret *value, const char *id,
                                       const char *key, unsigned flags);

/* Save cred (a copy; the caller keeps cred) through the storage, as
 * hive_storage_save, and cache it. HIVE_ERR_READ_ONLY for a read-only
 * storage; HIVE_ERR_BAD_ID for an id no file can hold. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_save(hive_store *s, const hive_cred *cred);
/* Delete credential id (and drop it from the cache); HIVE_ERR_NOT_FOUND. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_delete(hive_store *s, const char *id);
/* *found = whether id exists (cached, or in the storage, decrypting nothing). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_exists(hive_store *s, bool *found, const char *id);
/* Every id in the storage, sorted, appended to *out (hive_strlist_free). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_list(hive_store *s, hive_strlist *out);

/* Whether id can be used now: it loads, has a default key, and that key
 * is not expired (or can be refreshed). */
HIVE_EXPORT HIVE_NODISCARD bool hive_store_is_available(hive_store *s, const char *id);

/* Drop id (NULL: everything) from the cache. */
HIVE_EXPORT void hive_store_invalidate(hive_store *s, const char *id);

/* --- providers --------------------------------------------------------- */

typedef struct hive_provider hive_provider;

/*
 * What a provider is given besides the credential it refreshes: a way to
 * read another credential as stored, never refreshed (the OAuth2
 * provider's configuration credential, the Aden API key). A provider
 * knows nothing of the store; the store fills this in for each call.
 * load: *out is the caller's (hive_cred_free); HIVE_ERR_NOT_FOUND when
 * there is no such credential.
 */
typedef struct hive_lookup {
    hive_rc (*load)(void *ctx, hive_cred **out, const char *id);
    void *ctx;
} hive_lookup;

/* A provider: the caller fills this in (or a struct that starts with it)
 * from HIVE_PROVIDER_INIT; size tells the library which version of the
 * struct the caller was built with (an unknown one is refused). */
struct hive_provider {
    size_t size;          /* sizeof(hive_provider) */
    const char *id;
    /* Whether this provider manages credentials of type t. */
    bool (*handles)(const hive_provider *p, hive_cred_type t);
    /*
     * Refresh cred in place: new values and expiries. NULL: the provider's
     * credentials never change (static). The store saves the result (only
     * over what it read; the refresh does not save cred itself).
     */
    hive_rc (*refresh)(hive_provider *p, const hive_lookup *lookup, hive_cred *cred);
    void (*destroy)(hive_provider *p);
    void *ctx;
    /* Optional: whether refresh could work for cred (configured, has what
     * it needs), without contacting anyone; false sets the detail message. */
    bool (*can_refresh)(hive_provider *p, const hive_lookup *lookup, const hive_cred *cred);
};
#define HIVE_PROVIDER_INIT {sizeof(hive_provider), NULL, NULL, NULL, NULL, NULL, NULL}

/* The built-in OAuth2 provider's id. A credential whose provider_id names
 * no registered provider is refreshed by it, with provider_id naming the
 * custom credential that holds token_url, client_id, client_secret and
 * optionally scope, auth_method, ca_file and timeout. */
#define HIVE_OAUTH2_PROVIDER "oauth2"

/*
 * Register p (the store owns it from now on, also when it cannot be
 * added, except a p of an unknown size or without an id, which is
 * HIVE_ERR_INVALID and left to the caller). A credential is handled by
 * the provider whose id is its provider_id, else by the first provider
 * registered by the caller that handles its type, else (provider_id set
 * but unknown) by the OAuth2 provider, else by a built-in one for its type. Built in: "static" (api_key, basic_auth,
 * custom; never refreshes), "bearer_token" (cannot be refreshed) and
 * "oauth2" (refresh_token and client_credentials grants).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_add_provider(hive_store *s, hive_provider *p);
HIVE_EXPORT hive_provider *hive_store_provider_for(hive_store *s, const hive_cred *cred);

/* Whether cred's provider could refresh it now (it refreshes at all and is
 * configured: its can_refresh), asking no one; false sets the detail
 * message saying why. */
HIVE_EXPORT HIVE_NODISCARD bool hive_store_can_refresh(hive_store *s, const hive_cred *cred);

/* Whether cred should be refreshed at time now: auto_refresh is on and its
 * access token (when it has one, as Hive's OAuth2 provider decides; else
 * any key) expires within margin seconds, or, for a token whose whole life
 * (from last_refreshed to its expiry) is shorter than three margins,
 * within the last third of its life. Other keys' expiries (an id_token, a
 * refresh token) do not count: a refresh does not renew them. */
HIVE_EXPORT HIVE_NODISCARD bool hive_cred_needs_refresh(const hive_cred *cred, int margin, hive_time now);

/* When cred next becomes due for refresh by that rule: false when it never
 * does (auto_refresh off, or no key expires). */
HIVE_EXPORT HIVE_NODISCARD bool hive_cred_refresh_due(const hive_cred *cred, hive_time *due, int margin);

/*
 * Refresh id through its provider now, whether or not it is due, and save
 * it. *out (may be NULL) gets the refreshed credential.
 *
 * Every refresh is single-flight: the storage's lock for id is taken, the
 * credential is read again, and (unless forced) refreshed only if still
 * due; the new tokens are saved atomically before they are used. With
 * refresh-token rotation, parallel launches cause one token request.
 * Writes through hive_storage_save and hive_storage_delete wait for that
 * lock, and the new tokens are saved only over what the refresh read:
 * HIVE_ERR_CHANGED when another writer replaced the credential meanwhile
 * (what it wrote stays), HIVE_ERR_NOT_FOUND when it was deleted.
 *
 * A read without HIVE_GET_NO_REFRESH refreshes a due credential the same way.
 * While the credential stays cached (a launch), a failed refresh is not
 * tried again (later reads get the same failure), nor one that left the
 * credential due at once (later reads get what the store kept); else the
 * credential is refreshed again when it becomes due again.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_refresh(hive_store *s, hive_cred **out, const char *id);

/*
 * A refresh token whose request got no usable answer (a time-out after it
 * was sent, a 5xx, an answer that cannot be read) may have been spent by
 * the server; it is marked in doubt in the stored credential and never sent
 * again (HIVE_ERR_IN_DOUBT), by any process sharing the store, until new
 * tokens are saved. For a user who knows the server never acted on it:
 * take the mark off credential id (*was: there was one), so the next
 * refresh sends it once more.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_clear_in_doubt(hive_store *s, bool *was, const char *id);

/* --- templates --------------------------------------------------------- */

/*
 * {{id}} and {{id.key}} with id and key of [A-Za-z0-9_-]+ (Hive's
 * pattern), found in one left-to-right pass; anything else stays literal;
 * substituted text is never scanned again. {{id}} means the default key.
 * hive adds one form Hive's pattern lacks: an id "provider/alias" (two
 * parts around one '/'), the ids Hive gives local accounts, as in
 * {{brave_search/work.api_key}}; Hive leaves such text as it is.
 */
typedef struct hive_template_refs hive_template_refs;

/* The references in text[0..len), in order, as a new list: *out is the
 * caller's (hive_template_refs_free), also when there is none. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_template_refs_parse(hive_template_refs **out, const char *text, size_t len);
/* How many references refs holds (NULL: 0). */
HIVE_EXPORT size_t hive_template_refs_count(const hive_template_refs *refs);
/* Reference i's id, or NULL when i is not below the count; refs keeps it. */
HIVE_EXPORT const char *hive_template_refs_id(const hive_template_refs *refs, size_t i);
/* Reference i's key; NULL for {{id}}, the default key (or when i is not
 * below the count); refs keeps it. */
HIVE_EXPORT const char *hive_template_refs_key(const hive_template_refs *refs, size_t i);
/* Where reference i is in the text: *start the byte offset of its "{{",
 * *end one past its "}}" (both 0 when i is not below the count). */
HIVE_EXPORT void hive_template_refs_span(const hive_template_refs *refs, size_t *start, size_t *end, size_t i);
/* Free the list at *refs and set *refs to NULL. */
HIVE_EXPORT void hive_template_refs_free(hive_template_refs **refs);

/*
 * HIVE_OK when every "{{" in text starts a template; else HIVE_ERR_INVALID,
 * *column (when not NULL) the 1-based column, in characters, of the first
 * "{{" that does not, and a message saying what is wrong ("a space inside
 * '{{ }}'", "no closing '}}'", ...). For tools that want a typo to be an
 * error rather than text passed on (hive-run, validate).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_template_check(const char *text, size_t len, size_t *column);

/* Render text. *out is the caller's (hive_secret_free). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_resolve(hive_store *s, hive_secret *out, const char *text,
                                       unsigned flags);

/* Render every string value of an object (headers, query parameters);
 * *out is a new object (hive_json_free). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_resolve_headers(hive_store *s, hive_json **out, const hive_json *headers,
                                               unsigned flags);
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_resolve_params(hive_store *s, hive_json **out, const hive_json *params,
                                              unsigned flags);

/* Check the references of text without failing: every problem ("Credential
 * 'ID' not found", "Key 'K' not found in credential 'ID'") is added to
 * problems. Returns an error only when it cannot check at all. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_check_template(hive_store *s, hive_strlist *problems, const char *text);

/* --- usage specs -------------------------------------------------------- */

/*
 * A usage spec is a JSON object:
 *   {"credential_id": "brave_search", "required_keys": ["api_key"],
 *    "headers": {...}, "query_params": {...}, "body_fields": {...},
 *    "env": {"BRAVE_API_KEY": "{{brave_search.api_key}}"},
 *    "description": "...", "help_url": "..."}
 * Every map holds templates, never secrets. Specs are keyed by
 * credential_id and kept in the usage file. "required_scopes": ["repo"]
 * (optional) lists the OAuth2 scopes the tool needs the credential's
 * token to have been granted (its "scope" key, as token endpoints return
 * it: separated by spaces, or by commas as GitHub's are).
 */

/* Register spec (copied, normalised). persist: also write the usage file. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_register_usage(hive_store *s, const hive_json *spec, bool persist);
/* Remove a spec. persist: also write the usage file. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_unregister_usage(hive_store *s, const char *id, bool persist);
/* The spec for id, or NULL (owned by the store). */
HIVE_EXPORT const hive_json *hive_store_get_usage(hive_store *s, const char *id);
/* The ids of every spec, sorted. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_list_usage(hive_store *s, hive_strlist *out);

/*
 * Resolve spec id for use: an object with only the non-empty parts among
 * "headers", "params", "data" and "env", each rendered. An unknown spec is
 * HIVE_ERR_NOT_FOUND ("No usage spec registered for 'ID'").
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_resolve_for_usage(hive_store *s, hive_json **out, const char *id,
                                                 unsigned flags);

/* --- scopes ----------------------------------------------------------- */

/* Longest scope hive accepts in a usage spec. */
#define HIVE_SCOPE_MAX 256

/* Whether scope is one scope token (RFC 6749 section 3.3: printable
 * ASCII, no space, '"' or '\\'), and holds no ',' (hive splits a granted
 * scope list at commas too) and is at most HIVE_SCOPE_MAX bytes. */
HIVE_EXPORT HIVE_NODISCARD bool hive_scope_valid(const char *scope);

/*
 * The union of the required_scopes of every usage spec whose
 * credential_id is id, sorted, without duplicates (empty: none). For a
 * login to request, and for the tools to check. *out is the caller's
 * (hive_strlist_free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_required_scopes(hive_store *s, hive_strlist *out, const char *id);

/*
 * The scopes of required (in its order) that cred's stored "scope" key
 * does not list; *recorded: whether cred has a "scope" key at all. Without
 * one every required scope is missing: an unrecorded grant cannot be
 * checked. *missing is the caller's (hive_strlist_free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_cred_missing_scopes(hive_strlist *missing, bool *recorded, const hive_cred *cred,
                                             const hive_strlist *required);

/*
 * Check cred against hive_store_required_scopes of its id: *problem is
 * NULL when its token has them all, else a message naming the missing
 * ones ("Credential 'gh' lacks scopes its usage spec requires: repo (its
 * token has: gist)", or that it has no scope record), the caller's
 * (free). *recorded as in hive_cred_missing_scopes.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_check_scopes(hive_store *s, char **problem, bool *recorded, const hive_cred *cred);

/* --- validation ---------------------------------------------------------- */

/* Problems of credential id: not found, unreadable, no keys, an expired
 * key that cannot be refreshed. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_validate_credential(hive_store *s, hive_strlist *problems, const char *id);
/* Problems of spec id: "Credential 'ID' not found", "Missing required key
 * 'K'", a required scope its token lacks (hive_store_check_scopes' message),
 * and its templates' problems. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_validate_for_usage(hive_store *s, hive_strlist *problems, const char *id);
/* Every spec: an object id -> [problems], with only the specs that have some. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_validate_all(hive_store *s, hive_json **out);

/* --- accounts ---------------------------------------------------------- */

/*
 * The accounts of provider: credentials whose _integration_type is
 * provider, or whose id is "provider/alias". *out is an array of
 * {"id", "provider", "alias", "identity": {...}} sorted by id.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_list_accounts(hive_store *s, hive_json **out, const char *provider);

/* The credential of provider's account alias. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_get_by_alias(hive_store *s, hive_cred **out, const char *provider,
                                            const char *alias);

/* --- Aden sync --------------------------------------------------------- */

/*
 * The Aden platform's credential API. Credentials synced from it are
 * oauth2 credentials with provider_id "aden_sync" (refreshed by asking
 * Aden) and the keys Hive uses: access_token, _aden_managed,
 * _integration_type, _alias, _identity_email, scope. Where the store
 * finds Aden: hive_store_options.aden (hive_store_open_from_env reads
 * ADEN_API_URL, ADEN_API_KEY and ADEN_TIMEOUT into it).
 */
typedef struct hive_aden_options {
    size_t size;           /* sizeof(hive_aden_options): start from HIVE_ADEN_OPTIONS_INIT */
    const char *url;       /* NULL or "": https://api.adenhq.com */
    const char *api_key;   /* NULL or "": the stored credential aden_api_key (key api_key) */
    double timeout;        /* seconds a request may take; 0: 30 */
} hive_aden_options;
#define HIVE_ADEN_OPTIONS_INIT {sizeof(hive_aden_options), NULL, NULL, 0}

/* What hive_aden_sync did: filled by the library. Start from
 * HIVE_ADEN_SYNC_RESULT_INIT; an unknown size is refused (HIVE_ERR_INVALID). */
typedef struct hive_aden_sync_result {
    size_t size;       /* sizeof(hive_aden_sync_result): start from HIVE_ADEN_SYNC_RESULT_INIT */
    size_t listed;     /* integrations Aden listed */
    size_t synced;     /* saved to the store */
    size_t skipped;    /* not active */
    size_t failed;     /* could not be fetched or saved (each warned about) */
} hive_aden_sync_result;
#define HIVE_ADEN_SYNC_RESULT_INIT {.size = sizeof(hive_aden_sync_result)}

/* Pull every active integration into the store; *out (started from
 * HIVE_ADEN_SYNC_RESULT_INIT; another size: HIVE_ERR_INVALID, before
 * Aden is asked) counts what was done, also when a network or key error
 * stopped the sync part way. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_aden_sync(hive_store *s, hive_aden_sync_result *out);

/* Ask Aden whether integration id is valid; why: its error or status. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_aden_validate(hive_store *s, bool *valid, char *why, size_t size, const char *id);

#ifdef __cplusplus
}
#endif
#endif
