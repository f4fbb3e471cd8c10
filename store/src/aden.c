/*
 * aden.c - the Aden platform's credential API, as the Python Hive uses it:
 *
 *   GET  /v1/credentials                 {"integrations": [{integration_id, provider,
 *                                          alias, status, email, expires_at}]}
 *   GET  /v1/credentials/{id}            {access_token, token_type, expires_at, provider,
 *                                          alias, email, scopes, metadata}
 *   POST /v1/credentials/{id}/refresh    the same, with a new token
 *   GET  /v1/credentials/{id}/validate   {valid, status, expires_at, error}
 *
 * Bearer authentication with ADEN_API_KEY, or the stored credential
 * aden_api_key. Connection errors and time-outs are retried (3 attempts,
 * 1 s then 2 s apart); HTTP errors never. Synced credentials are saved with
 * the keys Hive uses, in its order (see hive__aden_apply); provider_id "aden_sync",
 * auto_refresh on.
 */
#include "aden.h"
#include "buf.h"
#include "http.h"
#include "providers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_URL "https://api.adenhq.com"
#define DEFAULT_TIMEOUT_MS 30000L
#define ATTEMPTS 3
#define MAX_KEY 16384   /* an API key longer than this is not one */
#define SAID_MAX 304   /* 300 characters of what a server says, and "..." */

void hive__aden_close(hive__aden *a)
{
    free(a->base);
    hive__free_str(a->api_key);
    memset(a, 0, sizeof(*a));
}

hive_rc hive__aden_open(hive__aden *a, const hive_aden_options *o, const hive_lookup *lookup)
{
    const char *url = o != NULL ? o->url : NULL;
    const char *key = o != NULL ? o->api_key : NULL;

    memset(a, 0, sizeof(*a));
    a->base = hive__strdup(url && *url ? url : DEFAULT_URL);
    a->timeout_ms = o != NULL && o->timeout > 0 ? (long)(o->timeout * 1000) : DEFAULT_TIMEOUT_MS;
    if (a->base == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    while (strlen(a->base) > 1 && a->base[strlen(a->base) - 1] == '/')
        a->base[strlen(a->base) - 1] = '\0';
    if (key != NULL && *key != '\0') {
        a->api_key = hive__strdup(key);
    } else {
        hive_cred *c = NULL;
        char *v = NULL;
        size_t len = 0;
        hive_rc rc = lookup != NULL ? lookup->load(lookup->ctx, &c, "aden_api_key") : HIVE_ERR_NOT_FOUND;
        if (rc == HIVE_OK) {
            const char *k = hive_cred_get_key(c, "api_key", &len);
            v = k != NULL ? hive__strndup(k, len) : NULL;
            rc = k == NULL ? HIVE_ERR_KEY_NOT_FOUND : v == NULL ? HIVE_ERR_NOMEM : HIVE_OK;
        }
        hive_cred_free(&c);
        if (rc != HIVE_OK) {
            hive__aden_close(a);
            if (rc == HIVE_ERR_NOMEM)
                return hive__fail(HIVE_ERR_NOMEM, "out of memory");
            return hive__fail(HIVE_ERR_NO_KEY, "no Aden API key: set ADEN_API_KEY or store it as the "
                              "credential aden_api_key (key api_key)");   /* the hint follows the text */
        }
        a->api_key = v;
    }
    if (a->api_key == NULL) {
        hive__aden_close(a);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (strlen(a->api_key) > MAX_KEY) {
        hive__aden_close(a);
        return hive__fail(HIVE_ERR_TOO_LARGE, "the Aden API key is longer than %d bytes", MAX_KEY);
    }
    return HIVE_OK;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One call; *out: the answer's JSON object. The error cases of Hive's
 * AdenCredentialClient, with its messages. */
hive_rc hive__aden_call(const hive__aden *a, const char *method, const char *path, hive_json **out)
{
    /* both as long as they are: a key cut short is a wrong key */
    char *url = hive__aprintf("%s%s", a->base, path);
    char *auth = hive__aprintf("Authorization: Bearer %s", a->api_key);
    const char *headers[5] = {auth, "Content-Type: application/json", "Accept: application/json",
                              "User-Agent: hive-credential-store/1.0", NULL};
    hive_http_request rq = {0};
    hive_http_response rs = {0};
    hive_json *obj = NULL;
    char said[504];   /* what the server says, without the API key (hive__server_text) */
    hive_rc rc = HIVE_OK;

    if (url == NULL || auth == NULL) {
        free(url);
        hive__free_str(auth);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rq.method = method;
    rq.url = url;
    rq.body = "{}";
    rq.body_len = strcmp(method, "POST") == 0 ? 2 : 0;
    rq.headers = headers;
    rq.connect_timeout_ms = a->timeout_ms < 5000 ? a->timeout_ms : 5000;
    rq.timeout_ms = a->timeout_ms;
    for (int attempt = 1;; attempt++) {
        hive__http_response_free(&rs);
        rc = hive__http_post(&rq, &rs);
        if (rc != HIVE_ERR_NETWORK || attempt == ATTEMPTS)
            break;
        pause_ms(1000L << (attempt - 1));
    }
    hive__free_str(auth);
    free(url);
    if (rc == HIVE_ERR_NETWORK) {
        rc = hive__fail_prefix(HIVE_ERR_NETWORK, "Failed to connect to Aden server");
        goto out;
    }
    if (rc != HIVE_OK)
        goto out;
    if (rs.len > 0 && hive_json_parse(&obj, rs.body, rs.len) != HIVE_OK) {
        hive__clear_error();
        obj = NULL;
    }
    if (rs.status == 401) {
        rc = hive__fail(HIVE_ERR_PERM, "Agent API key is invalid or revoked");
    } else if (rs.status == 403) {
        const char *m = hive_json_string(hive_json_get(obj, "message"), NULL);
        hive__server_text(said, SAID_MAX, m ? m : "Forbidden", &a->api_key, 1);
        rc = hive__fail(HIVE_ERR_PERM, "%s", said);
    } else if (rs.status == 404) {
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Integration not found: %s", path);
    } else if (rs.status == 429) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Rate limited by Aden server; retry after %ld s",
                        rs.retry_after >= 0 ? rs.retry_after : 60);
    } else if (rs.status == 400) {
        const char *err = hive_json_string(hive_json_get(obj, "error"), NULL);
        const char *m = hive_json_string(hive_json_get(obj, "message"), NULL);
        if ((err && strcmp(err, "refresh_failed") == 0) || (m && strstr(m, "refresh"))) {
            const char *reauth = hive_json_string(hive_json_get(obj, "reauthorization_url"), NULL);
            hive__server_text(said, sizeof(said), reauth ? reauth : "your Aden dashboard", &a->api_key, 1);
            rc = hive__fail(HIVE_ERR_REAUTH, "requires re-authorization. Visit: %s", said);
        } else {
            hive__server_text(said, SAID_MAX, m ? m : (err ? err : ""), &a->api_key, 1);
            rc = hive__fail(HIVE_ERR_INVALID, "Bad request: %s", said);
        }
    } else if (rs.status < 200 || rs.status >= 300) {
        rc = hive__fail(HIVE_ERR_IO, "Aden server answered HTTP %ld", rs.status);
    } else if (hive_json_typeof(obj) != HIVE_JSON_OBJECT) {
        rc = hive__fail(HIVE_ERR_IO, "Aden server answered something that is not a JSON object");
    } else {
        *out = obj;
        obj = NULL;
    }
out:
    hive_json_free(&obj);
    hive__http_response_free(&rs);
    return rc;
}

const char *hive__aden_str(const hive_json *o, const char *k)
{
    const hive_json *v = hive_json_get(o, k);

    return hive_json_typeof(v) == HIVE_JSON_STRING ? hive_json_string(v, NULL) : NULL;
}

static hive_rc set_text(hive_cred *c, const char *key, const char *value, const hive_time *exp)
{
    return value ? hive_cred_set_key(c, key, value, strlen(value), exp) : HIVE_OK;
}

/* scope: the answer's scopes joined by spaces, when there are any. */
static hive_rc set_scope(hive_cred *c, const char *id, const hive_json *scopes)
{
    hive_buf b = {0};
    char *joined = NULL;
    size_t jl = 0;
    hive_rc rc;

    if (hive_json_typeof(scopes) != HIVE_JSON_ARRAY || hive_json_size(scopes) == 0)
        return HIVE_OK;
    for (size_t i = 0; i < hive_json_size(scopes); i++) {
        const char *sc = hive_json_typeof(hive_json_at(scopes, i, NULL)) == HIVE_JSON_STRING
                             ? hive_json_string(hive_json_at(scopes, i, NULL), NULL) : NULL;
        if (sc == NULL) {
            hive__buf_free(&b);
            return hive__fail(HIVE_ERR_FORMAT, "Aden's answer for '%s' has a scope that is not a string", id);
        }
        if (i > 0)
            hive__buf_putc(&b, ' ');
        hive__buf_puts(&b, sc);
    }
    rc = hive__buf_finish(&b, &joined, &jl);
    if (rc == HIVE_OK)
        rc = hive_cred_set_key(c, "scope", joined, jl, NULL);
    free(joined);
    return rc;
}

/*
 * _identity_<k> for each non-empty string in the answer's metadata, or,
 * when metadata is empty or absent, _identity_email from its email (Hive's
 * AdenCredentialResponse.from_dict).
 */
static hive_rc set_identity(hive_cred *c, const char *id, const hive_json *tok)
{
    const hive_json *meta = hive_json_get(tok, "metadata");
    const char *email = hive__aden_str(tok, "email");
    hive_json_type t = hive_json_typeof(meta);
    hive_rc rc = HIVE_OK;

    if (meta != NULL && t != HIVE_JSON_NULL && t != HIVE_JSON_FALSE && hive_json_size(meta) > 0 &&
        t != HIVE_JSON_OBJECT)
        return hive__fail(HIVE_ERR_FORMAT, "Aden's answer for '%s' has metadata that is not an object", id);
    if (t != HIVE_JSON_OBJECT || hive_json_size(meta) == 0)
        return email != NULL && *email != '\0' ? set_text(c, "_identity_email", email, NULL) : HIVE_OK;
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(meta); i++) {
        const char *k;
        const hive_json *v = hive_json_at(meta, i, &k);
        size_t len = 0;
        const char *s = hive_json_typeof(v) == HIVE_JSON_STRING ? hive_json_string(v, &len) : NULL;
        hive_buf name = {0};
        char *key = NULL;
        size_t klen = 0;
        if (s == NULL || len == 0)
            continue;
        hive__buf_puts(&name, "_identity_");
        hive__buf_puts(&name, k);
        rc = hive__buf_finish(&name, &key, &klen);
        if (rc == HIVE_OK)
            rc = hive_cred_set_key(c, key, s, len, NULL);
        free(key);
    }
    return rc;
}

/*
 * Put a token answer into a credential with the keys Hive's
 * AdenSyncProvider writes, in its order: a new credential when *cred is
 * NULL (sync: access_token, _aden_managed, _integration_type, _alias,
 * scope, _identity_*; last_refreshed left unset), else an update of *cred
 * (refresh: access_token, scope, _aden_managed, _integration_type, _alias,
 * _identity_*; last_refreshed now). _alias only when the alias is not
 * empty; _integration_type always, empty when the answer names no provider.
 */
hive_rc hive__aden_apply(hive_cred **cred, const char *id, const hive_json *tok)
{
    const char *access = hive__aden_str(tok, "access_token");
    const char *exp_text = hive__aden_str(tok, "expires_at");
    const char *provider = hive__aden_str(tok, "provider");
    const char *alias = hive__aden_str(tok, "alias");
    hive_time exp = {0, 0, 0, HIVE_TIME_NONE};
    bool fresh = *cred == NULL;
    hive_rc rc = HIVE_OK;

    if (access == NULL || *access == '\0')
        return hive__fail(HIVE_ERR_FORMAT, "Aden's answer for '%s' has no access_token", id);
    if (exp_text != NULL && *exp_text != '\0' && hive_time_parse(&exp, exp_text, strlen(exp_text)) != HIVE_OK)
        return hive__fail(HIVE_ERR_FORMAT, "Aden's answer for '%s' has an expires_at that is not a datetime", id);
    if (fresh) {
        rc = hive_cred_new(cred, id, "oauth2");
        if (rc == HIVE_OK)
            rc = hive_cred_set_provider_id(*cred, "aden_sync");
        if (rc == HIVE_OK)
            rc = hive_cred_set_auto_refresh(*cred, true);
    }
    if (rc == HIVE_OK)
        rc = hive_cred_set_key(*cred, "access_token", access, strlen(access), &exp);
    if (rc == HIVE_OK && !fresh)
        rc = set_scope(*cred, id, hive_json_get(tok, "scopes"));
    if (rc == HIVE_OK)
        rc = set_text(*cred, "_aden_managed", "true", NULL);
    if (rc == HIVE_OK)
        rc = set_text(*cred, "_integration_type", provider ? provider : "", NULL);
    if (rc == HIVE_OK && alias != NULL && *alias != '\0')
        rc = set_text(*cred, "_alias", alias, NULL);
    if (rc == HIVE_OK && fresh)
        rc = set_scope(*cred, id, hive_json_get(tok, "scopes"));
    if (rc == HIVE_OK)
        rc = set_identity(*cred, id, tok);
    if (rc == HIVE_OK && !fresh) {
        hive_time now = hive_time_now();
        rc = hive_cred_set_time(*cred, HIVE_CRED_LAST_REFRESHED, &now);
        if (rc == HIVE_OK)
            rc = hive_cred_set_provider_id(*cred, "aden_sync");
    }
    return rc;
}

/* /v1/credentials/<id, percent-encoded><suffix> */
char *hive__aden_path(const char *id, const char *suffix)
{
    hive_buf b = {0};
    char *out = NULL;
    size_t len = 0;

    hive__buf_puts(&b, "/v1/credentials/");
    hive__form_encode(&b, id, strlen(id));
    hive__buf_puts(&b, suffix);
    if (hive__buf_finish(&b, &out, &len) != HIVE_OK)
        return NULL;
    return out;
}

/* The aden_sync provider: ask Aden for a new token. When Aden cannot be
 * reached, a token that has not expired is kept (as Hive does). */
typedef struct aden_provider {
    hive_provider base;   /* first: the store's hive_provider * is ours */
    hive_aden_options opts;
    char *url;
    char *api_key;
} aden_provider;

static hive_rc aden_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    const char *id = hive_cred_id(cred);
    hive__aden a;
    hive_json *tok = NULL;
    char *path = NULL;
    hive_rc rc;

    rc = hive__aden_open(&a, &((aden_provider *)p)->opts, lookup);
    if (rc == HIVE_OK) {
        path = hive__aden_path(id, "/refresh");
        rc = path ? hive__aden_call(&a, "POST", path, &tok) : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (rc == HIVE_OK)
        rc = hive__aden_apply(&cred, id, tok);
    else if (rc == HIVE_ERR_REAUTH) {
        /* the URL Aden sent, whole: hive__fail is about to reuse its buffer */
        const char *v = strstr(hive_last_error(), "Visit: ");
        char *visit = hive__strdup(v ? v : "Visit: your Aden dashboard");
        rc = visit ? hive__fail(HIVE_ERR_REAUTH, "Integration '%s' requires re-authorization. %s", id, visit)
                   : hive__fail(HIVE_ERR_NOMEM, "out of memory");
        free(visit);
    }
    else if (rc == HIVE_ERR_NETWORK) {
        hive_time exp = hive_cred_key_expires(cred, "access_token");
        hive_time now = hive_time_now();
        rc = exp.form != HIVE_TIME_NONE && hive_time_cmp(&exp, &now) <= 0
                 ? hive__fail(HIVE_ERR_REFRESH, "Aden server unavailable and token expired for '%s'", id)
                 : hive__fail_prefix(HIVE_ERR_NETWORK, "Failed to refresh credential '%s'", id);
    } else if (rc != HIVE_ERR_NOMEM) {
        /* whatever Aden said (400, 401, 403, 404, 429...), the refresh failed */
        rc = hive__fail_prefix(HIVE_ERR_REFRESH, "Failed to refresh credential '%s'", id);
    }
    free(path);
    hive_json_free(&tok);
    hive__aden_close(&a);
    return rc;
}

/* Refreshable when there is an API key to ask Aden with. */
static bool aden_can_refresh(hive_provider *p, const hive_lookup *lookup, const hive_cred *cred)
{
    hive__aden a;
    hive_rc rc = hive__aden_open(&a, &((aden_provider *)p)->opts, lookup);

    (void)cred;
    hive__aden_close(&a);
    return rc == HIVE_OK;
}

static bool aden_handles(const hive_provider *p, hive_cred_type t)
{
    (void)p;
    (void)t;
    return false;   /* only by provider_id "aden_sync" */
}

static void aden_destroy(hive_provider *p)
{
    aden_provider *ap = (aden_provider *)p;

    free(ap->url);
    hive__free_str(ap->api_key);
    free(ap);
}

hive_rc hive__aden_provider_new(hive_provider **out, const hive_aden_options *o)
{
    aden_provider *ap = calloc(1, sizeof(*ap));

    if (ap == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    ap->base.size = sizeof(ap->base);
    ap->base.id = "aden_sync";
    ap->base.handles = aden_handles;
    ap->base.refresh = aden_refresh;
    ap->base.can_refresh = aden_can_refresh;
    ap->base.destroy = aden_destroy;
    ap->opts.size = sizeof(ap->opts);
    if (o != NULL) {
        ap->url = o->url ? hive__strdup(o->url) : NULL;
        ap->api_key = o->api_key ? hive__strdup(o->api_key) : NULL;
        ap->opts.timeout = o->timeout;
        if ((o->url && ap->url == NULL) || (o->api_key && ap->api_key == NULL)) {
            aden_destroy(&ap->base);
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
    }
    ap->opts.url = ap->url;
    ap->opts.api_key = ap->api_key;
    *out = &ap->base;
    return HIVE_OK;
}
