/*
 * etcdstore.c - credentials in etcd, through its v3 HTTP/JSON gateway.
 *
 *   etcd://[USER@]HOST:PORT[,HOST:PORT...]/PREFIX[?lock_ttl=S&timeout=S&ca_file=PATH
 *                                               &cert_file=PATH&key_file=PATH]
 *   etcds://...   the same over https
 *
 * PREFIX/credentials/<id> holds the same Fernet token a .enc file holds.
 * Every write is a transaction that compares the key's mod_revision with
 * the one this process last read (or that the key is absent), so writers on
 * different machines never overwrite what they have not seen. A refresh is
 * locked fleet-wide by PREFIX/locks/<id>, created in a transaction only if
 * absent, attached to a lease: a holder that dies releases it when the
 * lease expires. A local file store is kept as a cache: every credential
 * read or written is saved there, and when etcd cannot be reached reads
 * fall back to it.
 */
#include "buf.h"
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ENDPOINTS 8
#define MAX_REVS 64
#define MAX_TOKEN 65536   /* an etcd auth token (a JWT) longer than this is not one */

typedef struct rev_entry {
    char *id;
    char rev[24];      /* mod_revision as etcd prints it; "0": absent */
} rev_entry;

typedef struct etcd_storage {
    hive_storage base;
    char *endpoints[MAX_ENDPOINTS];
    size_t nendpoints;
    size_t good;             /* the endpoint that answered last */
    bool tls;
    char *prefix;            /* without a trailing '/' */
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *user;
    char *token;             /* etcd auth token, when user is set */
    long timeout_ms;
    long lock_ttl;
    hive_storage *cache;     /* local file store: key, encryption, offline reads */
    rev_entry revs[MAX_REVS];
    size_t nrevs;
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    bool warned_offline;
} etcd_storage;

static const hive_storage_ops etcd_ops;

/* --- the gateway ---------------------------------------------------------- */

static char *b64std(const char *s, size_t len)
{
    char *out = malloc(hive__b64_encoded_len(len) + 1);

    if (out == NULL)
        return NULL;
    hive_base64_encode(out, s, len, 0);
    return out;
}

static char *unb64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    uint8_t *out = malloc(n / 4 * 3 + 4);

    if (out == NULL || hive__b64_decode_lenient(out, len, s, n) != HIVE_OK) {
        free(out);
        return NULL;
    }
    out[*len] = '\0';
    return (char *)out;
}

/* POST body (JSON) to path on the first endpoint that answers. *out: the
 * answer's JSON object. HIVE_ERR_NETWORK when no endpoint answers. */
static hive_rc call(etcd_storage *es, const char *path, const hive_json *body, hive_json **out)
{
    char *text = NULL;
    size_t len = 0;
    char *auth = NULL;
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    hive_rc rc = hive_json_emit(&text, &len, body, -1);

    if (rc != HIVE_OK)
        return rc;
    if (es->token != NULL) {
        /* as long as the token is (a JWT runs to kilobytes); wiped below */
        auth = hive__aprintf("Authorization: %s", es->token);
        if (auth == NULL) {
            hive_free_secret(text, len + 1);
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        headers[1] = auth;
    }
    rc = HIVE_ERR_NETWORK;
    for (size_t k = 0; k < es->nendpoints && rc == HIVE_ERR_NETWORK; k++) {
        size_t i = (es->good + k) % es->nendpoints;
        char *url = hive__aprintf("%s://%s%s", es->tls ? "https" : "http", es->endpoints[i], path);
        hive_http_request rq = {0};
        hive_http_response rs = {0};
        if (url == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            break;
        }
        rq.url = url;
        rq.body = text;
        rq.body_len = len;
        rq.headers = headers;
        rq.ca_file = es->ca_file;
        rq.cert_file = es->cert_file;
        rq.key_file = es->key_file;
        rq.connect_timeout_ms = es->timeout_ms < 2000 ? es->timeout_ms : 2000;
        rq.timeout_ms = es->timeout_ms;
        rc = hive__http_post(&rq, &rs);
        if (rc == HIVE_OK) {
            es->good = i;
            if (rs.status >= 500 && k + 1 < es->nendpoints) {
                rc = HIVE_ERR_NETWORK;   /* a member without quorum: try another */
            } else if (rs.status != 200) {
                hive_json *err = NULL;
                const char *msg = NULL;
                if (hive_json_parse(&err, rs.body, rs.len) == HIVE_OK)
                    msg = hive_json_string(hive_json_get(err, "message"), NULL);
                if (msg == NULL && err != NULL)
                    msg = hive_json_string(hive_json_get(err, "error"), NULL);
                rc = hive__fail(rs.status == 401 || rs.status == 403 ? HIVE_ERR_PERM : HIVE_ERR_IO,
                                "etcd refused %s: HTTP %ld%s%.200s", path, rs.status, msg ? ": " : "",
                                msg ? msg : "");
                hive_json_free(&err);
            } else if (hive_json_parse(out, rs.body, rs.len) != HIVE_OK) {
                rc = hive__fail(HIVE_ERR_IO, "etcd answered %s with something that is not JSON", path);
            }
        }
        hive__http_response_free(&rs);
        free(url);
    }
    if (rc == HIVE_ERR_NETWORK)
        rc = hive__fail_prefix(HIVE_ERR_NETWORK, "etcd at %s is unreachable", es->endpoints[0]);
    hive_free_secret(text, len + 1);
    hive_free_str(auth);
    return rc;
}

static hive_json *obj(void)
{
    return hive_json_new(HIVE_JSON_OBJECT);
}

static void put_str(hive_json *o, const char *k, const char *v)
{
    hive_json_set(o, k, hive_json_new_string(v, strlen(v)));
}

/* put a base64 field */
static void put_b64(hive_json *o, const char *k, const char *v, size_t len)
{
    char *e = b64std(v, len);

    if (e != NULL)
        put_str(o, k, e);
    free(e);
}

static char *key_of(const etcd_storage *es, const char *kind, const char *id)
{
    return hive__aprintf("%s/%s/%s", es->prefix, kind, id);
}

/* The "range_end" that makes a range a prefix scan. */
static char *prefix_end(const char *p)
{
    size_t n = strlen(p);
    char *e = hive__strndup(p, n);

    if (e != NULL && n > 0)
        e[n - 1] = (char)(e[n - 1] + 1);
    return e;
}

/* --- revisions read ------------------------------------------------------- */

/* A revision or lease ID as etcd prints it: an int64 in decimal. It fits
 * the 24 bytes kept for it, or it is not one. */
static bool is_int64_text(const char *s)
{
    size_t n = s != NULL ? strspn(s, "0123456789") : 0;

    return n > 0 && n <= 19 && s[n] == '\0';
}

/* rev: "0" or is_int64_text, so it fits */
static void note_rev(etcd_storage *es, const char *id, const char *rev)
{
    rev_entry *e = NULL;

    for (size_t i = 0; i < es->nrevs; i++)
        if (strcmp(es->revs[i].id, id) == 0)
            e = &es->revs[i];
    if (e == NULL) {
        if (es->nrevs == MAX_REVS) {
            free(es->revs[0].id);
            memmove(&es->revs[0], &es->revs[1], (MAX_REVS - 1) * sizeof(rev_entry));
            es->nrevs--;
        }
        e = &es->revs[es->nrevs];
        e->id = hive__strdup(id);
        if (e->id == NULL)
            return;
        es->nrevs++;
    }
    snprintf(e->rev, sizeof(e->rev), "%s", rev);
}

static const char *known_rev(const etcd_storage *es, const char *id)
{
    for (size_t i = 0; i < es->nrevs; i++)
        if (strcmp(es->revs[i].id, id) == 0)
            return es->revs[i].rev;
    return NULL;
}

/* --- reading -------------------------------------------------------------- */

/* The token stored for id (NULL when absent) and its mod_revision. */
static hive_rc fetch(etcd_storage *es, const char *id, char **token, size_t *len, char rev[24])
{
    hive_json *rq = obj();
    hive_json *rs = NULL;
    char *key = key_of(es, "credentials", id);
    const hive_json *kv;
    hive_rc rc;

    *token = NULL;
    snprintf(rev, 24, "0");
    if (rq == NULL || key == NULL) {
        hive_json_free(&rq);
        free(key);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    put_b64(rq, "key", key, strlen(key));
    rc = call(es, "/v3/kv/range", rq, &rs);
    hive_json_free(&rq);
    free(key);
    if (rc != HIVE_OK)
        return rc;
    kv = hive_json_at(hive_json_get(rs, "kvs"), 0, NULL);
    if (kv != NULL) {
        const char *v = hive_json_string(hive_json_get(kv, "value"), NULL);
        const char *r = hive_json_string(hive_json_get(kv, "mod_revision"), NULL);
        *token = v ? unb64(v, len) : NULL;
        if (*token == NULL) {
            rc = hive__fail(HIVE_ERR_IO, "etcd holds something that is not base64 for '%s'", id);
        } else if (r != NULL && !is_int64_text(r)) {
            hive_free_secret(*token, *len + 1);
            *token = NULL;
            rc = hive__fail(HIVE_ERR_IO, "etcd answered a mod_revision for '%s' that is not a number", id);
        } else {
            memcpy(rev, r ? r : "0", strlen(r ? r : "0") + 1);
        }
    }
    hive_json_free(&rs);
    return rc;
}


static void offline(etcd_storage *es)
{
    char msg[1200];

    if (es->warned_offline || es->warn == NULL)
        return;
    es->warned_offline = true;
    snprintf(msg, sizeof(msg), "%s; using the local cache", hive_last_error());
    es->warn(es->warn_ctx, msg);
}

static hive_rc etcd_load(hive_storage *s, hive_cred **out, const char *id)
{
    etcd_storage *es = (etcd_storage *)s;
    char *token = NULL;
    size_t len = 0;
    char rev[24];
    hive_cred *cred = NULL;
    hive_rc rc = fetch(es, id, &token, &len, rev);

    if (rc == HIVE_ERR_NETWORK) {
        offline(es);
        return hive_storage_load(es->cache, out, id);
    }
    if (rc != HIVE_OK)
        return rc;
    if (token == NULL) {
        note_rev(es, id, "0");
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    }
    rc = hive__file_decrypt(es->cache, token, len, &cred);
    hive_free_secret(token, len + 1);
    if (rc != HIVE_OK)
        return hive__fail_prefix(rc, "Failed to decrypt credential '%s'", id);
    if (strcmp(hive_cred_id(cred), id) != 0) {
        hive_cred_free(&cred);
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    }
    note_rev(es, id, rev);
    /* keep the local cache current (best effort: a cache is a cache) */
    if (hive_storage_save(es->cache, cred) != HIVE_OK)
        hive__clear_error();
    *out = cred;
    return HIVE_OK;
}

static hive_rc etcd_exists(hive_storage *s, const char *id, bool *found)
{
    etcd_storage *es = (etcd_storage *)s;
    char *token = NULL;
    size_t len = 0;
    char rev[24];
    hive_rc rc = fetch(es, id, &token, &len, rev);

    if (rc == HIVE_ERR_NETWORK) {
        offline(es);
        return hive_storage_exists(es->cache, id, found);
    }
    *found = rc == HIVE_OK && token != NULL;
    hive_free_secret(token, len + 1);
    return rc;
}

static hive_rc etcd_list(hive_storage *s, hive_strlist *out)
{
    etcd_storage *es = (etcd_storage *)s;
    char *prefix = hive__aprintf("%s/credentials/", es->prefix);
    char *end = prefix ? prefix_end(prefix) : NULL;
    hive_json *rq = obj();
    hive_json *rs = NULL;
    hive_strlist ids = {0};
    hive_rc rc;

    if (prefix == NULL || end == NULL || rq == NULL) {
        free(prefix);
        free(end);
        hive_json_free(&rq);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    put_b64(rq, "key", prefix, strlen(prefix));
    put_b64(rq, "range_end", end, strlen(end));
    hive_json_set(rq, "keys_only", hive_json_new(HIVE_JSON_TRUE));
    rc = call(es, "/v3/kv/range", rq, &rs);
    if (rc == HIVE_ERR_NETWORK) {
        offline(es);
        rc = hive_storage_list(es->cache, out);
        goto done;
    }
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(hive_json_get(rs, "kvs")); i++) {
        const hive_json *kv = hive_json_at(hive_json_get(rs, "kvs"), i, NULL);
        size_t klen = 0;
        char *k = unb64(hive_json_string(hive_json_get(kv, "key"), NULL) ? hive_json_string(hive_json_get(kv, "key"), NULL) : "", &klen);
        if (k != NULL && klen > strlen(prefix))
            rc = hive__strlist_add(&ids, k + strlen(prefix));
        free(k);
    }
    if (rc == HIVE_OK) {
        hive__strlist_sort_unique(&ids);
        *out = ids;
    } else {
        hive_strlist_free(&ids);
    }
done:
    hive_json_free(&rq);
    hive_json_free(&rs);
    free(prefix);
    free(end);
    return rc;
}

/* --- writing -------------------------------------------------------------- */

/* A transaction: if the key's mod_revision is rev ("0": it is absent),
 * then `then` (a request_put or request_delete_range object). */
static hive_rc txn(etcd_storage *es, const char *key, const char *rev, const char *then_name, hive_json *then,
                   bool *succeeded, hive_json **answer)
{
    hive_json *rq = obj();
    hive_json *cmp = obj();
    hive_json *cmps = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *ops = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *op = obj();
    hive_json *rs = NULL;
    hive_rc rc;

    if (rq == NULL || cmp == NULL || cmps == NULL || ops == NULL || op == NULL) {
        hive_json_free(&rq);
        hive_json_free(&cmp);
        hive_json_free(&cmps);
        hive_json_free(&ops);
        hive_json_free(&op);
        hive_json_free(&then);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    put_b64(cmp, "key", key, strlen(key));
    if (strcmp(rev, "0") == 0) {
        put_str(cmp, "target", "CREATE");
        put_str(cmp, "create_revision", "0");
    } else {
        put_str(cmp, "target", "MOD");
        put_str(cmp, "mod_revision", rev);
    }
    put_str(cmp, "result", "EQUAL");
    hive_json_append(cmps, cmp);
    hive_json_set(op, then_name, then);
    hive_json_append(ops, op);
    hive_json_set(rq, "compare", cmps);
    hive_json_set(rq, "success", ops);
    rc = call(es, "/v3/kv/txn", rq, &rs);
    hive_json_free(&rq);
    if (rc == HIVE_OK)
        *succeeded = hive_json_typeof(hive_json_get(rs, "succeeded")) == HIVE_JSON_TRUE;
    if (rc == HIVE_OK && answer != NULL)
        *answer = rs;
    else
        hive_json_free(&rs);
    return rc;
}

static hive_rc etcd_save(hive_storage *s, const hive_cred *cred)
{
    etcd_storage *es = (etcd_storage *)s;
    const char *id = hive_cred_id(cred);
    const char *known = known_rev(es, id);
    char *key = key_of(es, "credentials", id);
    char *token = NULL;
    size_t len = 0;
    hive_rc rc;

    if (key == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive__file_encrypt(es->cache, cred, &token, &len);
    for (int attempt = 0; rc == HIVE_OK; attempt++) {
        char rev[24];
        hive_json *put = obj();
        bool ok = false;
        if (known != NULL) {
            snprintf(rev, sizeof(rev), "%s", known);
        } else {
            /* a blind write: compare with what is there now */
            char *cur = NULL;
            size_t clen = 0;
            rc = fetch(es, id, &cur, &clen, rev);
            hive_free_secret(cur, clen + 1);
            if (rc != HIVE_OK) {
                hive_json_free(&put);
                break;
            }
        }
        put_b64(put, "key", key, strlen(key));
        put_b64(put, "value", token, len);
        {
            hive_json *answer = NULL;
            rc = txn(es, key, rev, "request_put", put, &ok, &answer);
            if (rc == HIVE_OK && ok) {
                /* the transaction's revision is our write's mod_revision */
                const char *r = hive_json_string(hive_json_get(hive_json_get(answer, "header"), "revision"), NULL);
                if (is_int64_text(r))
                    note_rev(es, id, r);
            }
            hive_json_free(&answer);
        }
        if (rc != HIVE_OK)
            break;
        if (ok) {
            if (hive_storage_save(es->cache, cred) != HIVE_OK)
                hive__clear_error();
            break;
        }
        if (known != NULL) {
            rc = hive__fail(HIVE_ERR_CHANGED, "credential '%s' was changed in etcd by another writer since "
                            "it was read; read it again", id);
            break;
        }
        if (attempt == 20) {
            rc = hive__fail(HIVE_ERR_CHANGED, "credential '%s' keeps changing in etcd", id);
            break;
        }
    }
    hive_free_secret(token, len + 1);
    free(key);
    return rc;
}

static hive_rc etcd_delete(hive_storage *s, const char *id)
{
    etcd_storage *es = (etcd_storage *)s;
    char *key = key_of(es, "credentials", id);
    hive_json *rq = obj();
    hive_json *rs = NULL;
    hive_rc rc;

    if (key == NULL || rq == NULL) {
        free(key);
        hive_json_free(&rq);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    put_b64(rq, "key", key, strlen(key));
    rc = call(es, "/v3/kv/deleterange", rq, &rs);
    if (rc == HIVE_OK) {
        const char *deleted = hive_json_string(hive_json_get(rs, "deleted"), NULL);
        if (deleted == NULL || strcmp(deleted, "0") == 0)
            rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
        if (hive_storage_delete(es->cache, id) != HIVE_OK)
            hive__clear_error();
    }
    hive_json_free(&rq);
    hive_json_free(&rs);
    free(key);
    return rc;
}

/* --- the fleet-wide refresh lock ---------------------------------------- */

#define MAX_LOCKS 16
static struct {
    char lease[24];
    bool used;
} leases[MAX_LOCKS];

/* A lease of lock_ttl seconds; its ID into out. */
static hive_rc grant(etcd_storage *es, char *out, size_t size)
{
    hive_json *rq = obj();
    hive_json *rs = NULL;
    const char *lease;
    hive_rc rc;

    if (rq == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    hive_json_set(rq, "TTL", hive_json_new_int(es->lock_ttl));
    rc = call(es, "/v3/lease/grant", rq, &rs);
    lease = hive_json_string(hive_json_get(rs, "ID"), NULL);
    if (rc == HIVE_OK && !is_int64_text(lease))
        rc = hive__fail(HIVE_ERR_LOCK, "etcd granted no lease");
    if (rc == HIVE_OK && strlen(lease) >= size)
        rc = hive__fail(HIVE_ERR_LOCK, "etcd granted a lease ID longer than %zu bytes", size - 1);
    if (rc == HIVE_OK)
        memcpy(out, lease, strlen(lease) + 1);
    hive_json_free(&rq);
    hive_json_free(&rs);
    return rc;
}

static hive_rc etcd_lock(hive_storage *s, const char *id, int *handle)
{
    etcd_storage *es = (etcd_storage *)s;
    char *key = key_of(es, "locks", id);
    int slot = -1;
    time_t deadline = time(NULL) + 120;
    hive_rc rc;

    for (int i = 0; i < MAX_LOCKS && slot < 0; i++)
        if (!leases[i].used)
            slot = i;
    if (key == NULL || slot < 0) {
        free(key);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rc = grant(es, leases[slot].lease, sizeof(leases[slot].lease));
    while (rc == HIVE_OK) {
        hive_json *put = obj();
        bool ok = false;
        put_b64(put, "key", key, strlen(key));
        put_b64(put, "value", "hive", 4);
        put_str(put, "lease", leases[slot].lease);
        rc = txn(es, key, "0", "request_put", put, &ok, NULL);
        if (rc != HIVE_OK && strstr(hive_last_error(), "lease not found") != NULL) {
            /* our lease ran out while we waited: take a new one */
            hive__clear_error();
            rc = grant(es, leases[slot].lease, sizeof(leases[slot].lease));
            continue;
        }
        if (rc != HIVE_OK || ok)
            break;
        if (time(NULL) > deadline) {
            rc = hive__fail(HIVE_ERR_LOCK, "credential '%s' stayed locked for refresh in etcd", id);
            break;
        }
        {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    free(key);
    if (rc != HIVE_OK)
        return rc == HIVE_ERR_NETWORK ? hive__fail_prefix(HIVE_ERR_LOCK, "cannot lock '%s' for refresh", id) : rc;
    leases[slot].used = true;
    *handle = slot;
    return HIVE_OK;
}

static void etcd_unlock(hive_storage *s, int handle)
{
    etcd_storage *es = (etcd_storage *)s;
    hive_json *rq;
    hive_json *rs = NULL;

    if (handle < 0 || handle >= MAX_LOCKS || !leases[handle].used)
        return;
    rq = obj();
    if (rq != NULL) {
        put_str(rq, "ID", leases[handle].lease);
        /* revoking the lease deletes the lock key */
        if (call(es, "/v3/lease/revoke", rq, &rs) != HIVE_OK)
            hive__clear_error();   /* it expires anyway */
    }
    hive_json_free(&rq);
    hive_json_free(&rs);
    leases[handle].used = false;
}

/* --- open and free ---------------------------------------------------------- */

static void etcd_destroy(hive_storage *s)
{
    etcd_storage *es = (etcd_storage *)s;

    for (size_t i = 0; i < es->nendpoints; i++)
        free(es->endpoints[i]);
    for (size_t i = 0; i < es->nrevs; i++)
        free(es->revs[i].id);
    free(es->prefix);
    free(es->ca_file);
    free(es->cert_file);
    free(es->key_file);
    free(es->user);
    hive_free_str(es->token);
    hive_storage_free(&es->cache);
    free(es);
}

static const hive_storage_ops etcd_ops = {
    "etcd", etcd_load, etcd_save, etcd_delete, etcd_exists, etcd_list, etcd_destroy,
    etcd_lock, etcd_unlock,
};

static hive_rc authenticate(etcd_storage *es)
{
    const char *pw = getenv("HIVE_ETCD_PASSWORD");
    hive_json *rq;
    hive_json *rs = NULL;
    const char *tok;
    hive_rc rc;

    if (pw == NULL)
        return hive__fail(HIVE_ERR_PERM, "etcd user '%s' given, but HIVE_ETCD_PASSWORD is not set", es->user);
    rq = obj();
    if (rq == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    put_str(rq, "name", es->user);
    put_str(rq, "password", pw);
    rc = call(es, "/v3/auth/authenticate", rq, &rs);
    hive_json_free(&rq);
    tok = hive_json_string(hive_json_get(rs, "token"), NULL);
    if (rc == HIVE_OK && tok == NULL)
        rc = hive__fail(HIVE_ERR_PERM, "etcd did not authenticate user '%s'", es->user);
    if (rc == HIVE_OK && strlen(tok) > MAX_TOKEN)
        rc = hive__fail(HIVE_ERR_PERM, "etcd answered an auth token longer than %d bytes", MAX_TOKEN);
    if (rc == HIVE_OK && (es->token = hive__strdup(tok)) == NULL)
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    hive_json_free(&rs);
    return rc;
}

bool hive__is_etcd_url(const char *spec)
{
    return spec != NULL && (strncmp(spec, "etcd://", 7) == 0 || strncmp(spec, "etcds://", 8) == 0);
}

hive_rc hive_etcd_storage_open(hive_storage **out, const char *url, const hive_file_options *opts)
{
    etcd_storage *es = calloc(1, sizeof(*es));
    hive_file_options fo = {0};
    const char *p;
    const char *slash;
    const char *q;
    char *hosts = NULL;
    char *home = NULL;
    char *cache_dir = NULL;
    hive_rc rc = HIVE_OK;

    if (es == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    es->base.ops = &etcd_ops;
    es->timeout_ms = 5000;
    es->lock_ttl = 60;
    if (!hive__is_etcd_url(url)) {
        free(es);
        return hive__fail(HIVE_ERR_INVALID, "not an etcd:// URL");
    }
    es->tls = url[4] == 's';
    p = url + (es->tls ? 8 : 7);
    slash = strchr(p, '/');
    q = strchr(p, '?');
    if (slash == NULL || (q != NULL && q < slash) || slash == p) {
        free(es);
        return hive__fail(HIVE_ERR_INVALID, "an etcd store is etcd://HOST:PORT[,HOST:PORT]/PREFIX");
    }
    hosts = hive__strndup(p, (size_t)(slash - p));
    es->prefix = q ? hive__strndup(slash, (size_t)(q - slash)) : hive__strdup(slash);
    if (hosts == NULL || es->prefix == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    while (strlen(es->prefix) > 0 && es->prefix[strlen(es->prefix) - 1] == '/')
        es->prefix[strlen(es->prefix) - 1] = '\0';
    if (es->prefix[0] == '\0') {
        rc = hive__fail(HIVE_ERR_INVALID, "an etcd store is etcd://HOST:PORT[,HOST:PORT]/PREFIX");
        goto out;
    }
    {
        char *at = strchr(hosts, '@');
        char *h = hosts;
        if (at != NULL) {
            *at = '\0';
            es->user = hive__strdup(hosts);
            h = at + 1;
        } else if (getenv("HIVE_ETCD_USER") != NULL && *getenv("HIVE_ETCD_USER") != '\0') {
            es->user = hive__strdup(getenv("HIVE_ETCD_USER"));
        }
        for (char *tok = strtok(h, ","); tok != NULL && es->nendpoints < MAX_ENDPOINTS; tok = strtok(NULL, ","))
            es->endpoints[es->nendpoints++] = hive__strdup(tok);
    }
    if (es->nendpoints == 0) {
        rc = hive__fail(HIVE_ERR_INVALID, "an etcd store is etcd://HOST:PORT[,HOST:PORT]/PREFIX");
        goto out;
    }
    for (const char *o = q ? q + 1 : NULL; o != NULL && *o;) {
        const char *amp = strchr(o, '&');
        size_t n = amp ? (size_t)(amp - o) : strlen(o);
        char *opt = hive__strndup(o, n);   /* whole: a path is as long as it is */
        double sec = 0;
        if (opt == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (strncmp(opt, "lock_ttl=", 9) == 0)
            es->lock_ttl = hive__parse_seconds(&sec, opt + 9, 86400) ? (long)sec : 0;
        else if (strncmp(opt, "timeout=", 8) == 0)
            es->timeout_ms = hive__parse_seconds(&sec, opt + 8, 86400) ? (long)(sec * 1000) : 0;
        else if (strncmp(opt, "ca_file=", 8) == 0)
            es->ca_file = hive__strdup(opt + 8);
        else if (strncmp(opt, "cert_file=", 10) == 0)
            es->cert_file = hive__strdup(opt + 10);
        else if (strncmp(opt, "key_file=", 9) == 0)
            es->key_file = hive__strdup(opt + 9);
        else {
            rc = hive__fail(HIVE_ERR_INVALID, "unknown etcd store option '%.64s' (lock_ttl, timeout, ca_file, "
                            "cert_file, key_file)", opt);
            free(opt);
            goto out;
        }
        free(opt);
        o = amp ? amp + 1 : NULL;
    }
    if (es->lock_ttl < 2 || es->timeout_ms < 100) {
        rc = hive__fail(HIVE_ERR_INVALID, "etcd store: lock_ttl must be 2 to 86400 s and timeout 0.1 to 86400 s");
        goto out;
    }
    /* the local cache: $HIVE_HOME/etcd-cache/<hosts+prefix>/credentials */
    home = hive__home_dir();
    if (home == NULL) {
        rc = hive__fail(HIVE_ERR_INVALID, "cannot find the home directory for the etcd cache: set " HIVE_ENV_HOME);
        goto out;
    }
    {
        char *name = hive__aprintf("%s%s", es->endpoints[0], es->prefix);
        for (char *c = name; c && *c; c++)
            if (*c == '/' || *c == ':' || *c == '.')
                *c = '_';
        cache_dir = name ? hive__aprintf("%s/etcd-cache/%s/credentials", home, name) : NULL;
        free(name);
    }
    if (cache_dir == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (opts != NULL)
        fo = *opts;
    fo.dir = cache_dir;
    if (fo.key_file == NULL) {
        char *kf = hive__aprintf("%s/secrets/credential_key", home);
        fo.key_file = kf;
        rc = hive_file_storage_open(&es->cache, &fo);
        free(kf);
    } else {
        rc = hive_file_storage_open(&es->cache, &fo);
    }
    es->warn = fo.warn;
    es->warn_ctx = fo.warn_ctx;
    if (rc == HIVE_OK && es->user != NULL)
        rc = authenticate(es);
out:
    free(hosts);
    free(home);
    free(cache_dir);
    if (rc != HIVE_OK) {
        etcd_destroy(&es->base);
        return rc;
    }
    *out = &es->base;
    return HIVE_OK;
}

hive_rc hive_storage_open(hive_storage **out, const char *spec, const hive_file_options *opts)
{
    hive_file_options fo = {0};

    if (hive__is_etcd_url(spec))
        return hive_etcd_storage_open(out, spec, opts);
    /* etcd:/x or etcds:host is a mistyped URL, never a directory name */
    if (spec != NULL && (strncmp(spec, "etcd:", 5) == 0 || strncmp(spec, "etcds:", 6) == 0))
        return hive__fail(HIVE_ERR_INVALID, "malformed etcd URL '%.200s': an etcd store is "
                          "etcd://HOST:PORT[,HOST:PORT]/PREFIX", spec);
    if (opts != NULL)
        fo = *opts;
    fo.dir = spec;
    return hive_file_storage_open(out, &fo);
}
