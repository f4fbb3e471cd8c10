/*
 * store.c - the credential store: cache, providers, refresh.
 */
#include "store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The id whose refresh lock this thread holds through store (a provider at
 * work): its writes through the store must not wait for that lock. Per
 * thread: another thread saving the same id through the same store must. */
static _Thread_local struct {
    const hive_store *store;
    const char *id;
} refreshing;

static int64_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

int64_t (*hive__store_clock)(void) = mono_now;

void hive__store_warn(hive_store *s, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    if (s->warn == NULL)
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;   /* the whole warning or, out of memory, none */
    va_end(ap);
    if (msg != NULL)
        s->warn(s->warn_ctx, msg);
    free(msg);
}

/* Whether provider i is replaced by a later one with the same id. */
static bool shadowed(const hive_store *s, size_t i)
{
    for (size_t j = i + 1; j < s->nproviders; j++)
        if (strcmp(s->providers[j]->id, s->providers[i]->id) == 0)
            return true;
    return false;
}

hive_rc hive_store_add_provider(hive_store *s, hive_provider *p)
{
    hive_provider **grown;

    hive__clear_error();
    if (p == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no provider");
    if (hive__check_size(p->size, sizeof(*p), "hive_provider", "HIVE_PROVIDER_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
    if (p->id == NULL)
        return hive__fail(HIVE_ERR_INVALID, "a provider needs an id");
    grown = realloc(s->providers, (s->nproviders + 1) * sizeof(*grown));
    if (grown == NULL) {
        if (p->destroy)
            p->destroy(p);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    s->providers = grown;
    s->providers[s->nproviders++] = p;
    return HIVE_OK;
}

/*
 * The provider of cred: (1) the provider registered under its provider_id
 * (the last one, so a user's provider replaces a built-in one); (2) the
 * first user-registered provider that handles its type; (3) when
 * provider_id names no registered provider, the built-in OAuth2 provider,
 * for which provider_id names the provider's credential; (4) the first
 * built-in provider that handles its type.
 */
hive_provider *hive_store_provider_for(hive_store *s, const hive_cred *cred)
{
    const char *pid = hive_cred_provider_id(cred);
    hive_cred_type t = hive_cred_get_type(cred);

    for (size_t i = s->nproviders; pid != NULL && i-- > 0;)
        if (strcmp(s->providers[i]->id, pid) == 0)
            return s->providers[i];
    for (size_t i = s->nbuiltin; i < s->nproviders; i++)
        if (s->providers[i]->handles != NULL && s->providers[i]->handles(s->providers[i], t))
            return s->providers[i];
    for (size_t i = 0; pid != NULL && i < s->nbuiltin; i++)
        if (strcmp(s->providers[i]->id, HIVE_OAUTH2_PROVIDER) == 0 && !shadowed(s, i))
            return s->providers[i];
    for (size_t i = 0; i < s->nbuiltin; i++)
        if (!shadowed(s, i) && s->providers[i]->handles != NULL && s->providers[i]->handles(s->providers[i], t))
            return s->providers[i];
    return NULL;
}

/* --- life cycle --------------------------------------------------------- */

static int init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int e = pthread_mutexattr_init(&a);

    if (e == 0) {
        e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
        if (e == 0)
            e = pthread_mutex_init(m, &a);
        pthread_mutexattr_destroy(&a);
    }
    return e;
}

/* The store's way for its providers to read a credential: as stored (from
 * the cache), never refreshed. */
static hive_rc lookup_load(void *ctx, hive_cred **out, const char *id)
{
    return hive_store_get_credential(ctx, out, id, HIVE_GET_NO_REFRESH);
}

hive_lookup hive__store_lookup(hive_store *s)
{
    hive_lookup l = {lookup_load, s};

    return l;
}

hive_rc hive__store_create(hive_store **out, hive_storage *storage, const hive_store_options *opts,
                           hive_provider *const *builtin, size_t n)
{
    hive_store *s;
    hive_store_options none = {0};
    hive_rc rc = HIVE_OK;

    if (opts == NULL)
        opts = &none;
    s = calloc(1, sizeof(*s));
    if (s == NULL || init_lock(&s->lock) != 0) {
        free(s);
        for (size_t i = 0; i < n; i++)
            if (builtin[i]->destroy)
                builtin[i]->destroy(builtin[i]);
        hive_storage_free(&storage);
        return hive__fail(HIVE_ERR_NOMEM, "cannot create the store");
    }
    s->storage = storage;
    s->cache_ttl = opts->cache_ttl == 0 ? HIVE_DEFAULT_CACHE_TTL : opts->cache_ttl;
    s->margin = opts->refresh_margin == 0 ? HIVE_DEFAULT_REFRESH_MARGIN
                : opts->refresh_margin < 0 ? 0 : opts->refresh_margin;
    s->warn = opts->warn;
    s->warn_ctx = opts->warn_ctx;
    s->aden.size = sizeof(s->aden);
    if (opts->aden != NULL) {
        s->aden_url = opts->aden->url ? hive__strdup(opts->aden->url) : NULL;
        s->aden_key = opts->aden->api_key ? hive__strdup(opts->aden->api_key) : NULL;
        s->aden.url = s->aden_url;
        s->aden.api_key = s->aden_key;
        s->aden.timeout = opts->aden->timeout;
        if ((opts->aden->url && !s->aden_url) || (opts->aden->api_key && !s->aden_key))
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (opts->usage_file != NULL) {
        s->usage_file = hive__strdup(opts->usage_file);
    } else if (hive_file_storage_dir(storage) != NULL) {
        s->usage_file = hive__aprintf("%s/usage.json", hive_file_storage_dir(storage));
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == HIVE_OK)
            rc = hive_store_add_provider(s, builtin[i]);   /* destroys it on failure */
        else if (builtin[i]->destroy)
            builtin[i]->destroy(builtin[i]);
    }
    s->nbuiltin = s->nproviders;
    if (rc != HIVE_OK) {
        hive_store_free(&s);
        return rc;
    }
    *out = s;
    return HIVE_OK;
}

void hive_store_invalidate(hive_store *s, const char *id)
{
    size_t w = 0;

    pthread_mutex_lock(&s->lock);
    /* a refresh tried is forgotten with the cached credential */
    for (size_t i = 0; i < s->nnotes; i++) {
        if (id == NULL || strcmp(s->notes[i].id, id) == 0) {
            free(s->notes[i].id);
            free(s->notes[i].message);
            s->notes[i].id = NULL;
        } else {
            s->notes[w++] = s->notes[i];
        }
    }
    s->nnotes = w;
    w = 0;

    for (size_t i = 0; i < s->ncache; i++) {
        if (id == NULL || strcmp(hive_cred_id(s->cache[i].cred), id) == 0)
            hive_cred_free(&s->cache[i].cred);
        else
            s->cache[w++] = s->cache[i];
    }
    s->ncache = w;
    pthread_mutex_unlock(&s->lock);
}

void hive_store_free(hive_store **store)
{
    hive_store *s;

    if (store == NULL || *store == NULL)
        return;
    s = *store;
    hive_store_invalidate(s, NULL);
    free(s->cache);
    for (size_t i = 0; i < s->nproviders; i++)
        if (s->providers[i]->destroy)
            s->providers[i]->destroy(s->providers[i]);
    free(s->providers);
    hive_json_free(&s->usage);
    free(s->usage_file);
    free(s->aden_url);
    hive__free_str(s->aden_key);
    free(s->notes);
    hive_storage_free(&s->storage);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *store = NULL;
}

hive_storage *hive_store_storage(hive_store *s)
{
    return s->storage;
}

/* --- the cache ---------------------------------------------------------- */

/* The cached copy of id, or NULL; the caller holds s->lock. */
static hive_cred *cached(hive_store *s, const char *id)
{
    int64_t now = hive__store_clock();

    for (size_t i = 0; i < s->ncache; i++) {
        if (strcmp(hive_cred_id(s->cache[i].cred), id) != 0)
            continue;
        if (s->cache_ttl > 0 && now - s->cache[i].loaded_at < s->cache_ttl)
            return s->cache[i].cred;
        hive_store_invalidate(s, id);
        return NULL;
    }
    return NULL;
}

/* Keep a copy of cred in the cache (best effort). */
static void remember(hive_store *s, const hive_cred *cred)
{
    hive_cred *copy = NULL;
    struct hive_cache_entry *grown;

    if (s->cache_ttl <= 0 || hive_cred_clone(&copy, cred) != HIVE_OK) {
        hive_store_invalidate(s, hive_cred_id(cred));
        return;
    }
    pthread_mutex_lock(&s->lock);
    hive_store_invalidate(s, hive_cred_id(cred));
    grown = realloc(s->cache, (s->ncache + 1) * sizeof(*grown));
    if (grown == NULL) {
        hive_cred_free(&copy);
    } else {
        s->cache = grown;
        s->cache[s->ncache].cred = copy;
        s->cache[s->ncache].loaded_at = hive__store_clock();
        s->ncache++;
    }
    pthread_mutex_unlock(&s->lock);
}

/* --- reading ------------------------------------------------------------- */

/*
 * The keys whose expiry makes cred due: its access token when it has one,
 * as Hive's OAuth2 and Aden providers decide - an id_token or a refresh
 * token may carry an expiry of its own, which a refresh does not renew, so
 * counting it would make the credential due again right after every
 * refresh. Without an access token, every key (Hive's default rule).
 */
bool hive_cred_refresh_due(const hive_cred *cred, hive_time *due, int margin)
{
    hive_time refreshed = hive_cred_time(cred, HIVE_CRED_LAST_REFRESHED);
    bool access = hive_cred_get_key(cred, "access_token", NULL) != NULL;
    bool any = false;

    if (!hive_cred_auto_refresh(cred))
        return false;
    for (size_t i = 0; i < hive_cred_key_count(cred); i++) {
        const char *name = hive_cred_key_name(cred, i);
        hive_time t = hive_cred_key_expires(cred, name);
        int64_t m = margin < 0 ? 0 : margin;
        if (t.form == HIVE_TIME_NONE || (access && strcmp(name, "access_token") != 0))
            continue;
        /* A short-lived token is due after two thirds of its life, not
         * margin seconds before its end: else it would always be due. */
        if (refreshed.form != HIVE_TIME_NONE && t.sec > refreshed.sec && (t.sec - refreshed.sec) / 3 < m)
            m = (t.sec - refreshed.sec) / 3;
        t.sec -= m;
        if (!any || hive_time_cmp(&t, due) < 0)
            *due = t;
        any = true;
    }
    return any;
}

bool hive_cred_needs_refresh(const hive_cred *cred, int margin, hive_time now)
{
    hive_time due;

    return hive_cred_refresh_due(cred, &due, margin) && hive_time_cmp(&due, &now) <= 0;
}

static hive_rc load(hive_store *s, hive_cred **out, const char *id)
{
    hive_cred *c;
    hive_rc rc;

    pthread_mutex_lock(&s->lock);
    c = cached(s, id);
    rc = c != NULL ? hive_cred_clone(out, c) : HIVE_OK;
    pthread_mutex_unlock(&s->lock);
    if (c != NULL)
        return rc;
    rc = hive_storage_load(s->storage, out, id);
    if (rc == HIVE_OK)
        remember(s, *out);
    return rc;
}

/* Whether a and b are the same credential, byte for byte as stored. */
static bool same_cred(const hive_cred *a, const hive_cred *b)
{
    char *ta = NULL;
    char *tb = NULL;
    size_t la = 0;
    size_t lb = 0;
    bool same = hive__cred_emit(&ta, &la, a) == HIVE_OK && hive__cred_emit(&tb, &lb, b) == HIVE_OK &&
                la == lb && hive_memeq(ta, tb, la);

    hive__clear_error();
    hive__free_secret(ta, ta ? la + 1 : 0);
    hive__free_secret(tb, tb ? lb + 1 : 0);
    return same;
}

/*
 * Save fresh, the refresh of seen, unless the stored credential is no
 * longer seen: replaced or deleted while the token request was out by a
 * writer that did not wait for the refresh lock (Hive itself, an older
 * hive; on etcd, any writer). What that writer left stays: *result is the
 * stored credential (forced: HIVE_ERR_CHANGED, since the refresh asked for
 * was not saved), or, deleted, HIVE_ERR_NOT_FOUND with *gone set. Called
 * with the refresh lock held.
 */
static hive_rc save_unless_changed(hive_store *s, hive_cred **result, bool *gone, const hive_cred *fresh,
                                   const hive_cred *seen, bool force)
{
    const hive_storage_ops *ops = s->storage->ops;
    const char *id = hive_cred_id(seen);
    hive_cred *now = NULL;
    char *why;
    hive_rc rc = HIVE_OK;

    if (!ops->cas) {
        rc = hive_storage_load(s->storage, &now, id);
        if (rc == HIVE_OK && !same_cred(now, seen))
            rc = hive__fail(HIVE_ERR_CHANGED, "Credential '%s' was changed by another writer while it was "
                            "being refreshed; the new tokens were not saved over it", id);
        hive_cred_free(&now);
    }
    if (rc == HIVE_OK)
        rc = ops->save(s->storage, fresh);   /* not hive_storage_save: the lock is ours */
    if (rc == HIVE_OK) {
        remember(s, fresh);
        return hive_cred_clone(result, fresh);
    }
    if (rc != HIVE_ERR_CHANGED && rc != HIVE_ERR_NOT_FOUND)
        return hive__fail_prefix(rc, "Failed to refresh credential '%s'", id);
    why = hive__strdup(hive_last_error());
    rc = hive_storage_load(s->storage, &now, id);
    if (rc == HIVE_ERR_NOT_FOUND) {
        *gone = true;
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' was deleted while it was being refreshed; "
                        "the new tokens were not saved", id);
    } else if (rc == HIVE_OK) {
        remember(s, now);
        if (force)
            rc = hive__fail(HIVE_ERR_CHANGED, "%s", why ? why : "changed by another writer");
        else
            *result = now;
        if (force)
            hive_cred_free(&now);
    }
    free(why);
    return rc;
}

/*
 * Refresh *cred through its provider, single-flight: take the storage's
 * lock for the id (which writes through hive_storage_save and _delete
 * take too), read the credential again, and refresh only if it is still
 * due (unless forced) - another process may just have done it. The result
 * is saved before it is used, and only over what the refresh read; on
 * failure nothing is written. *cred becomes the stored credential. *gone:
 * the credential is not in the storage (any more).
 */
static hive_rc run_refresh(hive_store *s, hive_cred **cred, bool force, bool *gone, hive_provider *via)
{
    hive_provider *p = via != NULL ? via : hive_store_provider_for(s, *cred);
    const hive_storage_ops *ops = s->storage->ops;
    char *id = hive__strdup(hive_cred_id(*cred));
    hive_cred *seen = NULL;
    hive_cred *fresh = NULL;
    hive_cred *result = NULL;
    const hive_store *outer_store = refreshing.store;
    const char *outer = refreshing.id;
    hive_time now;
    int lock = -1;
    hive_rc rc;

    *gone = false;
    if (id == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (p == NULL) {
        rc = hive__fail(HIVE_ERR_UNSUPPORTED, "No provider can refresh credential '%s'", id);
        goto out;
    }
    if (p->refresh == NULL) {
        rc = hive__fail(HIVE_ERR_UNSUPPORTED, "Credential '%s' is handled by the '%s' provider, "
                        "which never refreshes", id, p->id);
        goto out;
    }
    if (ops->lock != NULL && (rc = ops->lock(s->storage, id, &lock)) != HIVE_OK)
        goto out;
    refreshing.store = s;
    refreshing.id = id;
    rc = hive_storage_load(s->storage, &seen, id);
    *gone = rc == HIVE_ERR_NOT_FOUND;
    if (rc != HIVE_OK)
        goto out;
    if (!force && !hive_cred_needs_refresh(seen, s->margin, hive_time_now())) {
        /* refreshed by someone else while we waited for the lock */
        remember(s, seen);
        result = seen;
        seen = NULL;
        goto done;
    }
    p = via != NULL ? via : hive_store_provider_for(s, seen);
    if (p == NULL || p->refresh == NULL) {
        rc = hive__fail(HIVE_ERR_UNSUPPORTED, "No provider can refresh credential '%s'", id);
        goto out;
    }
    rc = hive_cred_clone(&fresh, seen);
    if (rc == HIVE_OK) {
        hive_lookup lookup = hive__store_lookup(s);
        rc = p->refresh(p, &lookup, fresh);
    }
    if (rc == HIVE_ERR_IN_DOUBT) {
        /* the provider marked a one-time token that may have been spent:
         * save the mark (still under the lock), so that no process sends
         * it again, and report the refresh's own message */
        char *why = hive__strdup(hive_last_error());
        hive_cred *kept = NULL;
        hive_rc saved = same_cred(fresh, seen) ? HIVE_OK : save_unless_changed(s, &kept, gone, fresh, seen, true);
        hive_cred_free(&kept);
        rc = hive__fail(HIVE_ERR_IN_DOUBT, "%s%s%s", why ? why : "refresh token in doubt",
                        saved == HIVE_OK ? "" : " The mark could not be saved: ",
                        saved == HIVE_OK ? "" : hive_last_error());
        free(why);
        goto out;
    }
    if (rc == HIVE_OK) {
        now = hive_time_now();
        rc = hive_cred_set_time(fresh, HIVE_CRED_LAST_REFRESHED, &now);
        if (rc == HIVE_OK)
            rc = hive_cred_set_time(fresh, HIVE_CRED_UPDATED_AT, &now);
    }
    if (rc == HIVE_OK)
        rc = save_unless_changed(s, &result, gone, fresh, seen, force);
    if (rc != HIVE_OK)
        goto out;
done:
    hive_cred_free(cred);
    *cred = result;
out:
    refreshing.store = outer_store;
    refreshing.id = outer;
    rc = hive__storage_unlock(s->storage, lock, rc);
    hive_cred_free(&seen);
    hive_cred_free(&fresh);
    free(id);
    return rc;
}

/* A static provider's credentials are never due: nothing to try or say. */
static bool is_static(const hive_provider *p)
{
    return p != NULL && p->refresh == NULL;
}

/* The note on id, or NULL; the caller holds s->lock. */
static const struct hive_refresh_note *noted(const hive_store *s, const char *id)
{
    for (size_t i = 0; i < s->nnotes; i++)
        if (strcmp(s->notes[i].id, id) == 0)
            return &s->notes[i];
    return NULL;
}

/*
 * Remember a refresh tried and how it ended (best effort), so that one
 * launch resolving a credential several times asks a failing provider
 * once and warns once, and refreshes once even when what the refresh left
 * (cred) is due at once (a token that expires as it comes, or another
 * writer's). A credential that the refresh left not due needs no note: it
 * is refreshed again when it becomes due again, as a long-lived handle
 * needs.
 */
static void note_refresh(hive_store *s, const char *id, hive_rc rc, const hive_cred *cred)
{
    struct hive_refresh_note *grown;
    struct hive_refresh_note *n;

    if (rc == HIVE_OK && !hive_cred_needs_refresh(cred, s->margin, hive_time_now()))
        return;
    pthread_mutex_lock(&s->lock);
    grown = realloc(s->notes, (s->nnotes + 1) * sizeof(*grown));
    if (grown != NULL) {
        s->notes = grown;
        n = &grown[s->nnotes];
        n->id = hive__strdup(id);
        n->message = rc == HIVE_OK ? NULL : hive__strdup(hive_last_error());
        n->rc = rc;
        if (n->id == NULL || (rc != HIVE_OK && n->message == NULL)) {
            free(n->id);
            free(n->message);
        } else {
            s->nnotes++;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

hive_rc hive_store_get_credential(hive_store *s, hive_cred **out, const char *id, unsigned flags)
{
    hive_cred *c = NULL;
    hive_rc rc;

    hive__clear_error();
    if (id == NULL || out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    rc = load(s, &c, id);
    if (rc != HIVE_OK)
        return rc;
    if (!(flags & HIVE_GET_NO_REFRESH) && hive_cred_needs_refresh(c, s->margin, hive_time_now()) &&
        !is_static(hive_store_provider_for(s, c))) {
        const struct hive_refresh_note *n;
        bool warn;
        bool gone = false;
        pthread_mutex_lock(&s->lock);
        n = noted(s, id);
        warn = n == NULL;
        if (n != NULL) {
            /* tried in this launch, and c is what it left (due at once) */
            rc = n->rc == HIVE_OK ? HIVE_OK : hive__fail(n->rc, "%s", n->message);
        }
        pthread_mutex_unlock(&s->lock);
        if (warn) {
            rc = run_refresh(s, &c, false, &gone, NULL);
            if (gone) {
                hive_store_invalidate(s, id);
                hive_cred_free(&c);
                return rc;
            }
            note_refresh(s, id, rc, c);
        }
        if (rc != HIVE_OK) {
            if (flags & HIVE_GET_STRICT) {
                hive_cred_free(&c);
                return rc;
            }
            if (warn)
                hive__store_warn(s, "%s", hive_last_error());
            hive__clear_error();
        }
    }
    *out = c;
    return HIVE_OK;
}

hive_rc hive_store_clear_in_doubt(hive_store *s, bool *was, const char *id)
{
    hive_cred *c = NULL;
    hive_rc rc;

    hive__clear_error();
    *was = false;
    hive_store_invalidate(s, id);
    rc = hive_storage_load(s->storage, &c, id);
    if (rc == HIVE_OK)
        rc = hive__oauth2_clear_in_doubt(c, was);
    if (rc == HIVE_OK && *was)
        rc = hive_storage_save(s->storage, c);
    hive_cred_free(&c);
    hive_store_invalidate(s, id);
    return rc;
}

hive_rc hive_store_refresh(hive_store *s, hive_cred **out, const char *id)
{
    return hive__store_refresh_via(s, out, id, NULL);
}

hive_rc hive__store_refresh_via(hive_store *s, hive_cred **out, const char *id, hive_provider *via)
{
    hive_cred *c = NULL;
    bool gone = false;
    hive_rc rc;

    hive__clear_error();
    hive_store_invalidate(s, id);
    rc = hive_storage_load(s->storage, &c, id);
    if (rc == HIVE_OK) {
        rc = run_refresh(s, &c, true, &gone, via);
        if (rc == HIVE_OK)
            note_refresh(s, id, rc, c);
    }
    if (rc != HIVE_OK) {
        hive_cred_free(&c);
        return rc;
    }
    if (out != NULL)
        *out = c;
    else
        hive_cred_free(&c);
    return HIVE_OK;
}

hive_rc hive__cred_value(char **value, size_t *len, const hive_cred *c, const char *key)
{
    const char *id = hive_cred_id(c);
    const char *name = key ? key : hive_cred_default_key(c);
    const char *v;
    size_t n = 0;

    if (name == NULL)
        return hive__fail(HIVE_ERR_KEY_NOT_FOUND, "Credential '%s' has no keys", id);
    v = hive_cred_get_key(c, name, &n);
    if (v == NULL)
        return hive__fail(HIVE_ERR_KEY_NOT_FOUND, "Key '%s' not found in credential '%s'", name, id);
    *value = hive__strndup(v, n);
    if (*value == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    *len = n;
    return HIVE_OK;
}

hive_rc hive_store_get_key(hive_store *s, hive_secret *value, const char *id, const char *key,
                           unsigned flags)
{
    hive__clear_error();
    if (value == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no place for the value");
    return hive__store_get_key(s, &value->data, &value->len, id, key, flags);
}

hive_rc hive__store_get_key(hive_store *s, char **value, size_t *len, const char *id, const char *key,
                            unsigned flags)
{
    hive__clear_error();
    hive_cred *c = NULL;
    hive_rc rc = hive_store_get_credential(s, &c, id, flags);
    size_t n = 0;

    if (rc != HIVE_OK)
        return rc;
    rc = hive__cred_value(value, &n, c, key);
    hive_cred_free(&c);
    if (rc == HIVE_OK && len != NULL)
        *len = n;
    return rc;
}

/* --- writing ------------------------------------------------------------- */

/* Whether this store holds id's refresh lock: a provider at work on id
 * writing it (hive_storage_save and _delete would wait for that lock). */
static bool holds_lock(const hive_store *s, const char *id)
{
    return refreshing.store == s && refreshing.id != NULL && strcmp(refreshing.id, id) == 0;
}

hive_rc hive_store_save(hive_store *s, const hive_cred *cred)
{
    hive__clear_error();
    hive_rc rc = holds_lock(s, hive_cred_id(cred)) ? s->storage->ops->save(s->storage, cred)
                                                   : hive_storage_save(s->storage, cred);

    if (rc == HIVE_OK)
        remember(s, cred);
    else
        hive_store_invalidate(s, hive_cred_id(cred));
    return rc;
}

hive_rc hive_store_delete(hive_store *s, const char *id)
{
    hive__clear_error();
    hive_store_invalidate(s, id);
    return holds_lock(s, id) ? s->storage->ops->del(s->storage, id) : hive_storage_delete(s->storage, id);
}

hive_rc hive_store_exists(hive_store *s, bool *found, const char *id)
{
    bool hit;

    hive__clear_error();
    pthread_mutex_lock(&s->lock);
    hit = cached(s, id) != NULL;
    pthread_mutex_unlock(&s->lock);
    if (hit) {
        *found = true;
        return HIVE_OK;
    }
    return hive_storage_exists(s->storage, found, id);
}

hive_rc hive_store_list(hive_store *s, hive_strlist *out)
{
    hive__clear_error();
    return hive_storage_list(s->storage, out);
}

bool hive_store_is_available(hive_store *s, const char *id)
{
    hive_cred *c = NULL;
    const char *key;
    bool ok = false;

    if (load(s, &c, id) != HIVE_OK) {
        hive__clear_error();
        return false;
    }
    key = hive_cred_default_key(c);
    if (key != NULL) {
        hive_time exp = hive_cred_key_expires(c, key);
        hive_time now = hive_time_now();
        hive_provider *p = hive_store_provider_for(s, c);
        ok = exp.form == HIVE_TIME_NONE || hive_time_cmp(&exp, &now) > 0 ||
             (hive_cred_auto_refresh(c) && hive__provider_can_refresh(s, p, c));
    }
    hive_cred_free(&c);
    return ok;
}

bool hive__provider_can_refresh(hive_store *s, hive_provider *p, const hive_cred *cred)
{
    hive_lookup lookup = hive__store_lookup(s);

    if (p == NULL || p->refresh == NULL)
        return false;
    if (p->can_refresh != NULL && !p->can_refresh(p, &lookup, cred)) {
        hive__clear_error();
        return false;
    }
    return true;
}

bool hive_store_can_refresh(hive_store *s, const hive_cred *cred)
{
    hive_provider *p = hive_store_provider_for(s, cred);
    hive_lookup lookup = hive__store_lookup(s);

    hive__clear_error();
    if (p == NULL || p->refresh == NULL) {
        hive__fail(HIVE_ERR_UNSUPPORTED, "No provider can refresh credential '%s'", hive_cred_id(cred));
        return false;
    }
    return p->can_refresh == NULL || p->can_refresh(p, &lookup, cred);
}
