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
 * absent, attached to a lease that a thread keeps alive while the refresh
 * runs: a holder that dies releases it when the lease expires, and the
 * save of the refreshed credential also checks that the lock is still on
 * the holder's lease (a holder that lost it writes nothing). A local copy is kept as a cache, one file per credential
 * (its mod_revision, its id, the token), written only when the revision
 * changed; when etcd cannot be reached reads fall back to it. The copy is
 * keyed by the set of endpoints and the prefix, so the order in which the
 * URL lists the members does not matter. The endpoint that answered last
 * is remembered there too: a new process starts with it, and a member that
 * accepts connections but does not answer costs a read at most a short
 * attempt time-out, once.
 */
#include "buf.h"
#include "etcdurl.h"
#include "fileio.h"
#include "http.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENDPOINTS HIVE__ETCD_MAX_ENDPOINTS
#define MAX_REVS 64
#define MAX_TOKEN 65536   /* an etcd auth token (a JWT) longer than this is not one */
#define MAX_PREFETCH 64
#define PREFETCH_MS 2000  /* a read-ahead serves the launch that asked, not a long-lived process */
#define ATTEMPT_MS 400    /* a read's time on one member while others remain to be tried */
#define DOWN_MS 10000     /* after no member answered: that long, reads go to the copy at once */
#define SUSPECT_S 60      /* and for that long, later processes wait ATTEMPT_MS (last: 2x) on each */
#define CACHE_MAX (1024u * 1024)
#define MAX_LOCKS 16

typedef struct rev_entry {
    char *id;
    char rev[24];      /* mod_revision as etcd prints it; "0": absent */
} rev_entry;

/* A credential read ahead by hive_storage_prefetch, for one later load. */
typedef struct prefetched {
    char *id;
    char *token;       /* NULL: etcd holds nothing for id */
    size_t len;
    char rev[24];
    int64_t at;        /* monotonic ms of the answer: older than PREFETCH_MS, it is read again */
} prefetched;

struct etcd_storage;

/* A refresh lock this process holds: PREFIX/locks/<id>, put on a lease
 * that a thread keeps alive every lock_ttl/3 s until the unlock joins it
 * (a token endpoint slower than lock_ttl must not let a second machine in). */
typedef struct held_lock {
    bool used;
    bool running;                 /* the keep-alive thread was started */
    char *id;
    char lease[24];
    pthread_t thread;
    pthread_mutex_t mu;           /* guards stop, lost and lost_why */
    pthread_cond_t wake;
    bool stop;
    bool lost;                    /* etcd said the lease is gone */
    char lost_why[200];
    /* the thread's own */
    const struct etcd_storage *es;   /* its endpoints and settings only, fixed once open */
    char *auth;                   /* "Authorization: TOKEN" as at the lock, or NULL */
    size_t first;                 /* the endpoint it tries first */
    hive_http1_conn conn;
} held_lock;

typedef struct etcd_storage {
    hive_storage base;
    char *endpoints[MAX_ENDPOINTS];
    size_t nendpoints;
    size_t good;             /* the endpoint that answered last */
    size_t remembered;       /* the one the local copy names (nendpoints: none) */
    int64_t down_until;      /* monotonic ms: no member answered; until then, do not wait again */
    bool suspect;            /* a recent process found no member answering (<cache_dir>/down) */
    char down_why[512];
    bool tls;
    char *prefix;            /* without a trailing '/' */
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *user;
    char *password;          /* kept to authenticate again when the token expires */
    size_t password_len;
    char *token;             /* etcd auth token, when user is set */
    bool plain_remote;       /* plain http to a host that is not this machine */
    long timeout_ms;
    long lock_ttl;
    hive_storage *key;       /* a file storage, for its key only (encryption) */
    char *cache_dir;         /* the local copy: one file per credential */
    rev_entry revs[MAX_REVS];
    size_t nrevs;
    prefetched pf[MAX_PREFETCH];
    size_t npf;
    hive_http1_conn conn;    /* etcd:// : one kept-alive connection */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    bool warned_offline;
    held_lock locks[MAX_LOCKS];
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

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mkdir -p path, 0700 for what is made. */
static hive_rc make_dirs(const char *path)
{
    char *p = hive__strdup(path);
    hive_rc rc = HIVE_OK;

    if (p == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (char *c = p + 1; rc == HIVE_OK; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        {
            char saved = *c;
            *c = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                rc = hive__fail(HIVE_ERR_IO, "cannot create %s: %s", p, strerror(errno));
            *c = saved;
        }
        if (*c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* The local copy names the endpoint that answered last: a new process
 * starts there instead of waiting on a member that stopped answering.
 * Written only when it changes (best effort: it is a hint). */
static void mark_down(etcd_storage *es, bool down);

static void remember_endpoint(etcd_storage *es, size_t i)
{
    char *path;

    if (es->suspect)
        mark_down(es, false);
    es->good = i;
    if (es->remembered == i)
        return;
    es->remembered = i;
    path = hive__aprintf("%s/endpoint", es->cache_dir);
    if (path == NULL || make_dirs(es->cache_dir) != HIVE_OK ||
        hive__write_file_atomic(path, es->endpoints[i], strlen(es->endpoints[i])) != HIVE_OK)
        hive__clear_error();
    free(path);
}

static hive_rc authenticate(etcd_storage *es);

/* <cache_dir>/down: no member answered a read lately (its time is the
 * file's mtime). A later process then waits briefly on every member, so a
 * machine cut off from the cluster spends little on each launch. */
static void mark_down(etcd_storage *es, bool down)
{
    char *path = hive__aprintf("%s/down", es->cache_dir);

    if (path != NULL && down) {
        int fd = -1;
        if (make_dirs(es->cache_dir) == HIVE_OK)
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            futimens(fd, NULL);
            close(fd);
        }
        hive__clear_error();
        es->suspect = true;
    } else if (path != NULL && es->suspect) {
        unlink(path);
        es->suspect = false;
    }
    free(path);
}

/* One request to endpoint i: libcurl for etcds://; etcd:// is spoken
 * directly over one kept-alive connection (http1.c), libcurl's loading
 * alone costing a launch more than everything else it does. */
static hive_rc post_on(const etcd_storage *es, hive_http1_conn *conn, size_t i, const char *path,
                       const char *const *headers, const char *text, size_t len, long t, hive_http_response *rs)
{
    hive_http_request rq = {0};
    char *url;
    hive_rc rc;

    if (!es->tls)
        return hive__http1_post(conn, es->endpoints[i], path, headers, text, len, t, rs);
    url = hive__aprintf("https://%s%s", es->endpoints[i], path);
    if (url == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rq.url = url;
    rq.body = text;
    rq.body_len = len;
    rq.headers = headers;
    rq.ca_file = es->ca_file;
    rq.cert_file = es->cert_file;
    rq.key_file = es->key_file;
    rq.connect_timeout_ms = t < 2000 ? t : 2000;
    rq.timeout_ms = t;
    rc = hive__http_post(&rq, rs);
    free(url);
    return rc;
}

static hive_rc post_to(etcd_storage *es, size_t i, const char *path, const char *const *headers,
                       const char *text, size_t len, long t, hive_http_response *rs)
{
    return post_on(es, &es->conn, i, path, headers, text, len, t, rs);
}

/* One POST of text to path: the first endpoint that answers, starting
 * with the one that answered last. A read (idempotent) waits ATTEMPT_MS
 * on a member while others remain, and none at all for DOWN_MS after no
 * member answered; a write waits the full time-out on each (a write that
 * timed out may have been applied: sending it elsewhere at once could
 * make it look like a conflict). */
static hive_rc call_once(etcd_storage *es, const char *path, const char *text, size_t len, bool read,
                         hive_json **out)
{
    char *auth = NULL;
    const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
    char why[400] = "";
    char last_err[200] = "";
    const char *last_ep = "";
    size_t tried = 0;
    hive_rc rc;

    if (read && es->down_until > now_ms())
        return hive__fail(HIVE_ERR_NETWORK, "%s", es->down_why);
    if (es->token != NULL) {
        /* as long as the token is (a JWT runs to kilobytes); wiped below */
        auth = hive__aprintf("Authorization: %s", es->token);
        if (auth == NULL)
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        headers[1] = auth;
    }
    rc = HIVE_ERR_NETWORK;
    for (size_t k = 0; k < es->nendpoints && rc == HIVE_ERR_NETWORK; k++) {
        size_t i = (es->good + k) % es->nendpoints;
        hive_http_response rs = {0};
        long t = es->timeout_ms;
        if (read && k + 1 < es->nendpoints && t > ATTEMPT_MS)
            t = ATTEMPT_MS;
        else if (read && es->suspect && t > 2 * ATTEMPT_MS)
            t = 2 * ATTEMPT_MS;   /* the whole cluster was just unreachable: do not wait long on it */
        rc = post_to(es, i, path, headers, text, len, t, &rs);
        if (rc == HIVE_ERR_NETWORK) {
            size_t used = strlen(why);
            snprintf(last_err, sizeof(last_err), "%s", hive_last_error());
            last_ep = es->endpoints[i];
            if (used < sizeof(why))
                snprintf(why + used, sizeof(why) - used, "%s%s (%.100s)", tried ? ", " : "", last_ep, last_err);
            tried++;
        } else if (rc == HIVE_OK) {
            if (rs.status >= 500 && k + 1 < es->nendpoints) {
                rc = HIVE_ERR_NETWORK;   /* a member without quorum: try another */
            } else if (rs.status != 200) {
                hive_json *err = NULL;
                const char *msg = NULL;
                remember_endpoint(es, i);
                if (hive_json_parse(&err, rs.body, rs.len) == HIVE_OK)
                    msg = hive_json_string(hive_json_get(err, "message"), NULL);
                if (msg == NULL && err != NULL)
                    msg = hive_json_string(hive_json_get(err, "error"), NULL);
                rc = hive__fail(rs.status == 401 || rs.status == 403 ? HIVE_ERR_PERM : HIVE_ERR_IO,
                                "etcd refused %s: HTTP %ld%s%.200s", path, rs.status, msg ? ": " : "",
                                msg ? msg : "");
                hive_json_free(&err);
            } else if (hive_json_parse(out, rs.body, rs.len) != HIVE_OK) {
                remember_endpoint(es, i);
                rc = hive__fail(HIVE_ERR_IO, "etcd answered %s with something that is not JSON", path);
            } else {
                remember_endpoint(es, i);
            }
        }
        hive__http_response_free(&rs);
    }
    if (rc == HIVE_ERR_NETWORK) {
        if (tried == 1)
            snprintf(es->down_why, sizeof(es->down_why), "etcd at %.200s is unreachable: %.200s", last_ep, last_err);
        else
            snprintf(es->down_why, sizeof(es->down_why), "etcd is unreachable at %.400s", why);
        es->down_until = now_ms() + DOWN_MS;
        if (read)
            mark_down(es, true);
        rc = hive__fail(HIVE_ERR_NETWORK, "%s", es->down_why);
    }
    hive__free_str(auth);
    return rc;
}

/* POST body (JSON) to path; *out: the answer's JSON object.
 * HIVE_ERR_NETWORK when no endpoint answers. An auth token that expired
 * (etcd's default TTL is 300 s; a --fresh refresher lives longer) is
 * renewed once. */
static hive_rc call_as(etcd_storage *es, const char *path, const hive_json *body, bool read, hive_json **out)
{
    char *text = NULL;
    size_t len = 0;
    hive_rc rc;

    if (body == NULL)   /* a part could not be added (hive_json_put) */
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive__json_emit(&text, &len, body, -1);
    if (rc != HIVE_OK)
        return rc;
    rc = call_once(es, path, text, len, read, out);
    if (rc == HIVE_ERR_PERM && es->token != NULL && es->password != NULL &&
        strstr(hive_last_error(), "invalid auth token") != NULL) {
        hive__free_str(es->token);
        es->token = NULL;
        rc = authenticate(es);
        if (rc == HIVE_OK)
            rc = call_once(es, path, text, len, read, out);
    }
    hive__free_secret(text, len + 1);
    return rc;
}

static hive_rc call(etcd_storage *es, const char *path, const hive_json *body, hive_json **out)
{
    return call_as(es, path, body, strcmp(path, "/v3/kv/range") == 0, out);
}

static hive_json *obj(void)
{
    return hive_json_new(HIVE_JSON_OBJECT);
}

/* Requests are built with hive_json_put and _push: a part that cannot be
 * added leaves the request NULL, and call_as() fails on NULL, so a request
 * missing a part (a compare of a transaction) is never sent. */
static void put_str(hive_json **o, const char *k, const char *v)
{
    hive_json_put(o, k, hive_json_new_string(v, strlen(v)));
}

/* put a base64 field */
static void put_b64(hive_json **o, const char *k, const char *v, size_t len)
{
    char *e = b64std(v, len);

    if (e != NULL)
        put_str(o, k, e);
    else
        hive_json_free(o);
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

/* --- the local copy -------------------------------------------------------- */

#define COPY_MAGIC "hive-etcd-copy 1\n"

/* <cache_dir>/<stem>.enc, or NULL for an id no file can hold (not copied) */
static char *copy_path(const etcd_storage *es, const char *id)
{
    char stem[HIVE_ID_MAX + 1];

    if (hive_file_stem(stem, sizeof(stem), id) != HIVE_OK) {
        hive__clear_error();
        return NULL;
    }
    return hive__aprintf("%s/%s.enc", es->cache_dir, stem);
}

/* Parse a copy: COPY_MAGIC, the revision, the id, the token, a line each.
 * *id_out points into data. false when it is not one. */
static bool copy_parse(const char *data, size_t len, char rev[24], const char **id_out, const char **token,
                       size_t *token_len)
{
    const char *p = data;
    const char *end = data + len;
    const char *nl;
    size_t n;

    if (len < strlen(COPY_MAGIC) || memcmp(data, COPY_MAGIC, strlen(COPY_MAGIC)) != 0)
        return false;
    p += strlen(COPY_MAGIC);
    n = strspn(p, "0123456789");
    if (n == 0 || n > 19 || p + n >= end || p[n] != '\n')
        return false;
    memcpy(rev, p, n);
    rev[n] = '\0';
    p += n + 1;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
        return false;
    *id_out = p;
    *token = nl + 1;
    *token_len = (size_t)(end - *token);
    return true;
}

/* The copy of id: its token (the caller's) and revision. HIVE_ERR_NOT_FOUND
 * (no message) when there is none, or it is another id's. */
static hive_rc copy_read(const etcd_storage *es, const char *id, char **token, size_t *len, char rev[24])
{
    char *path = copy_path(es, id);
    char *data = NULL;
    size_t dlen = 0;
    const char *cid;
    const char *t;
    size_t tlen;
    hive_rc rc;

    *token = NULL;
    if (path == NULL)
        return HIVE_ERR_NOT_FOUND;
    rc = hive__read_at(AT_FDCWD, path, true, CACHE_MAX, "the local copy", &data, &dlen);
    free(path);
    if (rc != HIVE_OK) {
        hive__clear_error();
        return HIVE_ERR_NOT_FOUND;
    }
    rc = HIVE_ERR_NOT_FOUND;
    if (copy_parse(data, dlen, rev, &cid, &t, &tlen) && (size_t)(t - 1 - cid) == strlen(id) &&
        memcmp(cid, id, strlen(id)) == 0) {
        *token = hive__strndup(t, tlen);
        *len = tlen;
        rc = *token != NULL ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    hive__free_secret(data, dlen + 1);
    return rc;
}

/* Keep the copy of id current: written only when etcd's revision is not
 * the one it holds (best effort: a copy is a copy). */
static void copy_write(etcd_storage *es, const char *id, const char *rev, const char *token, size_t len)
{
    char *path = copy_path(es, id);
    char *old = NULL;
    size_t olen = 0;
    char orev[24];
    hive_buf b = {0};
    char *data = NULL;
    size_t dlen = 0;

    if (path == NULL)
        return;
    if (copy_read(es, id, &old, &olen, orev) == HIVE_OK && strcmp(orev, rev) == 0 && olen == len &&
        memcmp(old, token, len) == 0) {
        hive__free_secret(old, olen + 1);
        free(path);
        return;
    }
    hive__free_secret(old, olen + 1);
    hive__buf_append(&b, COPY_MAGIC, strlen(COPY_MAGIC));
    hive__buf_append(&b, rev, strlen(rev));
    hive__buf_putc(&b, '\n');
    hive__buf_append(&b, id, strlen(id));
    hive__buf_putc(&b, '\n');
    hive__buf_append(&b, token, len);
    if (hive__buf_finish(&b, &data, &dlen) != HIVE_OK || make_dirs(es->cache_dir) != HIVE_OK ||
        hive__write_file_atomic(path, data, dlen) != HIVE_OK)
        hive__clear_error();
    hive__buf_free(&b);
    hive__free_secret(data, dlen + 1);
    free(path);
}

static void copy_remove(const etcd_storage *es, const char *id)
{
    char *path = copy_path(es, id);
    char *old = NULL;
    size_t olen = 0;
    char orev[24];

    /* only id's own copy: another id may share the file name */
    if (path != NULL && copy_read(es, id, &old, &olen, orev) == HIVE_OK)
        unlink(path);
    hive__free_secret(old, olen + 1);
    free(path);
}

/* The ids of the local copy. */
static hive_rc copy_list(const etcd_storage *es, hive_strlist *out)
{
    DIR *d = opendir(es->cache_dir);
    struct dirent *e;
    hive_strlist ids = {0};
    hive_rc rc = HIVE_OK;

    if (d == NULL) {
        *out = ids;
        return errno == ENOENT ? HIVE_OK : hive__fail(HIVE_ERR_IO, "cannot list the local copy of etcd: %s",
                                                      strerror(errno));
    }
    while (rc == HIVE_OK && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *path;
        char *data = NULL;
        size_t dlen = 0;
        char rev[24];
        const char *cid;
        const char *t;
        size_t tlen;
        if (n < 5 || strcmp(e->d_name + n - 4, ".enc") != 0)
            continue;
        path = hive__aprintf("%s/%s", es->cache_dir, e->d_name);
        if (path != NULL && hive__read_at(AT_FDCWD, path, true, CACHE_MAX, "the local copy", &data, &dlen) == HIVE_OK) {
            if (copy_parse(data, dlen, rev, &cid, &t, &tlen)) {
                char *id = hive__strndup(cid, (size_t)(t - 1 - cid));
                rc = id != NULL ? hive__strlist_add(&ids, id) : hive__fail(HIVE_ERR_NOMEM, "out of memory");
                free(id);
            }
        } else {
            hive__clear_error();
        }
        hive__free_secret(data, dlen + 1);
        free(path);
    }
    closedir(d);
    if (rc != HIVE_OK) {
        hive_strlist_free(&ids);
        return rc;
    }
    hive__strlist_sort_unique(&ids);
    *out = ids;
    return HIVE_OK;
}

/* --- reading -------------------------------------------------------------- */

/* One key-value of a range answer: its token (NULL when kv is NULL) and
 * mod_revision. */
static hive_rc take_kv(const hive_json *kv, const char *id, char **token, size_t *len, char rev[24])
{
    const char *v;
    const char *r;

    *token = NULL;
    snprintf(rev, 24, "0");
    if (kv == NULL)
        return HIVE_OK;
    v = hive_json_string(hive_json_get(kv, "value"), NULL);
    r = hive_json_string(hive_json_get(kv, "mod_revision"), NULL);
    *token = v ? unb64(v, len) : NULL;
    if (*token == NULL)
        return hive__fail(HIVE_ERR_IO, "etcd holds something that is not base64 for '%s'", id);
    if (r != NULL && !is_int64_text(r)) {
        hive__free_secret(*token, *len + 1);
        *token = NULL;
        return hive__fail(HIVE_ERR_IO, "etcd answered a mod_revision for '%s' that is not a number", id);
    }
    memcpy(rev, r ? r : "0", strlen(r ? r : "0") + 1);
    return HIVE_OK;
}

/* A prefetched answer for id, taken (used once), or false. */
static bool take_prefetched(etcd_storage *es, const char *id, char **token, size_t *len, char rev[24])
{
    for (size_t i = 0; i < es->npf; i++) {
        bool fresh;
        if (strcmp(es->pf[i].id, id) != 0)
            continue;
        fresh = now_ms() - es->pf[i].at <= PREFETCH_MS;
        if (fresh) {
            *token = es->pf[i].token;
            *len = es->pf[i].len;
            memcpy(rev, es->pf[i].rev, 24);
        } else {
            hive__free_secret(es->pf[i].token, es->pf[i].len + 1);
        }
        free(es->pf[i].id);
        es->pf[i] = es->pf[--es->npf];
        return fresh;
    }
    return false;
}

/* The token stored for id (NULL when absent) and its mod_revision. */
static hive_rc fetch(etcd_storage *es, const char *id, char **token, size_t *len, char rev[24])
{
    hive_json *rq;
    hive_json *rs = NULL;
    char *key;
    hive_rc rc;

    *token = NULL;
    snprintf(rev, 24, "0");
    if (take_prefetched(es, id, token, len, rev))
        return HIVE_OK;
    rq = obj();
    key = key_of(es, "credentials", id);
    if (rq == NULL || key == NULL) {
        hive_json_free(&rq);
        free(key);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    put_b64(&rq, "key", key, strlen(key));
    rc = call(es, "/v3/kv/range", rq, &rs);
    hive_json_free(&rq);
    free(key);
    if (rc == HIVE_OK)
        rc = take_kv(hive_json_at(hive_json_get(rs, "kvs"), 0, NULL), id, token, len, rev);
    hive_json_free(&rs);
    return rc;
}

hive_rc hive_storage_prefetch(hive_storage *s, const char *const *ids, size_t n)
{
    etcd_storage *es = (etcd_storage *)s;
    hive_json *rq;
    hive_json *ops;
    hive_json *rs = NULL;
    const char *asked[MAX_PREFETCH];
    size_t nasked = 0;
    hive_rc rc = HIVE_OK;

    if (s == NULL || s->ops != &etcd_ops)
        return HIVE_OK;
    /* drop what no load took in time (taking a stale answer drops it) */
    for (size_t i = es->npf; i-- > 0;) {
        char *tok = NULL;
        size_t tl = 0;
        char rev[24];
        if (now_ms() - es->pf[i].at > PREFETCH_MS && take_prefetched(es, es->pf[i].id, &tok, &tl, rev))
            hive__free_secret(tok, tl + 1);   /* not reached: it was stale */
    }
    rq = obj();
    ops = hive_json_new(HIVE_JSON_ARRAY);
    if (rq == NULL || ops == NULL) {
        hive_json_free(&rq);
        hive_json_free(&ops);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && nasked + es->npf < MAX_PREFETCH; i++) {
        bool dup = false;
        hive_json *op = obj();
        hive_json *range = obj();
        char *key = key_of(es, "credentials", ids[i]);
        for (size_t k = 0; k < nasked; k++)
            dup = dup || strcmp(asked[k], ids[i]) == 0;
        for (size_t k = 0; k < es->npf; k++)
            dup = dup || strcmp(es->pf[k].id, ids[i]) == 0;
        if (op == NULL || range == NULL || key == NULL || dup) {
            hive_json_free(&op);
            hive_json_free(&range);
            free(key);
            continue;
        }
        put_b64(&range, "key", key, strlen(key));
        hive_json_put(&op, "request_range", range);
        hive_json_push(&ops, op);
        asked[nasked++] = ids[i];
        free(key);
    }
    hive_json_put(&rq, "success", ops);
    if (nasked > 0)
        rc = call_as(es, "/v3/kv/txn", rq, true, &rs);
    for (size_t k = 0; rc == HIVE_OK && k < nasked; k++) {
        const hive_json *r = hive_json_get(hive_json_at(hive_json_get(rs, "responses"), k, NULL),
                                           "response_range");
        prefetched *p = &es->pf[es->npf];
        if (r == NULL)
            break;   /* not an answer to what was asked: the loads ask again */
        rc = take_kv(hive_json_at(hive_json_get(r, "kvs"), 0, NULL), asked[k], &p->token, &p->len, p->rev);
        if (rc == HIVE_OK && (p->id = hive__strdup(asked[k])) == NULL) {
            hive__free_secret(p->token, p->len + 1);
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        p->at = now_ms();
        if (rc == HIVE_OK)
            es->npf++;
    }
    hive_json_free(&rq);
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

static hive_rc decrypt(etcd_storage *es, hive_cred **out, const char *id, const char *token, size_t len)
{
    hive_cred *cred = NULL;
    hive_rc rc = hive__file_decrypt(es->key, token, len, &cred);

    if (rc != HIVE_OK)
        return hive__fail_prefix(rc, "Failed to decrypt credential '%s'", id);
    if (strcmp(hive_cred_id(cred), id) != 0) {
        hive_cred_free(&cred);
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    }
    *out = cred;
    return HIVE_OK;
}

/* etcd is unreachable (why), and the copy does not have id: not "not
 * found", which would say etcd has no such credential. */
static hive_rc not_in_copy(const char *why, const char *id)
{
    return hive__fail(HIVE_ERR_NETWORK, "%s, and '%s' is not in the local copy", why ? why : "etcd is unreachable",
                      id);
}

/* etcd is unreachable (the error says why): the local copy of id. */
static hive_rc load_copy(etcd_storage *es, hive_cred **out, const char *id)
{
    char *why = hive__strdup(hive_last_error());
    char *token = NULL;
    size_t len = 0;
    char rev[24];
    hive_rc rc;

    offline(es);
    rc = copy_read(es, id, &token, &len, rev);
    if (rc == HIVE_ERR_NOT_FOUND)
        rc = not_in_copy(why, id);
    else if (rc == HIVE_OK)
        rc = decrypt(es, out, id, token, len);
    hive__free_secret(token, len + 1);
    free(why);
    return rc;
}

static hive_rc etcd_load(hive_storage *s, hive_cred **out, const char *id)
{
    etcd_storage *es = (etcd_storage *)s;
    char *token = NULL;
    size_t len = 0;
    char rev[24];
    hive_rc rc = fetch(es, id, &token, &len, rev);

    if (rc == HIVE_ERR_NETWORK)
        return load_copy(es, out, id);
    if (rc != HIVE_OK)
        return rc;
    if (token == NULL) {
        note_rev(es, id, "0");
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    }
    rc = decrypt(es, out, id, token, len);
    if (rc == HIVE_OK) {
        note_rev(es, id, rev);
        copy_write(es, id, rev, token, len);
    }
    hive__free_secret(token, len + 1);
    return rc;
}

static hive_rc etcd_exists(hive_storage *s, const char *id, bool *found)
{
    etcd_storage *es = (etcd_storage *)s;
    char *token = NULL;
    size_t len = 0;
    char rev[24];
    hive_rc rc = fetch(es, id, &token, &len, rev);

    if (rc == HIVE_ERR_NETWORK) {
        char *why = hive__strdup(hive_last_error());
        offline(es);
        rc = copy_read(es, id, &token, &len, rev);
        *found = rc == HIVE_OK;
        hive__free_secret(token, len + 1);
        if (rc == HIVE_ERR_NOT_FOUND)
            rc = not_in_copy(why, id);
        free(why);
        return rc;
    }
    *found = rc == HIVE_OK && token != NULL;
    hive__free_secret(token, len + 1);
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
    put_b64(&rq, "key", prefix, strlen(prefix));
    put_b64(&rq, "range_end", end, strlen(end));
    hive_json_put(&rq, "keys_only", hive_json_new(HIVE_JSON_TRUE));
    rc = call(es, "/v3/kv/range", rq, &rs);
    if (rc == HIVE_ERR_NETWORK) {
        offline(es);
        rc = copy_list(es, out);
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
 * and, with a fence, the key fence_key is on the lease fence_lease (the
 * refresh lock is still ours), then `then` (a request_put or
 * request_delete_range object). */
static hive_rc txn(etcd_storage *es, const char *key, const char *rev, const char *fence_key,
                   const char *fence_lease, const char *then_name, hive_json *then, bool *succeeded,
                   hive_json **answer)
{
    hive_json *rq = obj();
    hive_json *cmp = obj();
    hive_json *cmps = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *ops = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *op = obj();
    hive_json *fence = fence_key != NULL ? obj() : NULL;
    hive_json *rs = NULL;
    hive_rc rc;

    if (rq == NULL || cmp == NULL || cmps == NULL || ops == NULL || op == NULL ||
        (fence_key != NULL && fence == NULL)) {
        hive_json_free(&rq);
        hive_json_free(&cmp);
        hive_json_free(&cmps);
        hive_json_free(&ops);
        hive_json_free(&op);
        hive_json_free(&fence);
        hive_json_free(&then);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (fence != NULL) {
        /* an absent key compares as lease 0, which no lease is */
        put_b64(&fence, "key", fence_key, strlen(fence_key));
        put_str(&fence, "target", "LEASE");
        put_str(&fence, "lease", fence_lease);
        put_str(&fence, "result", "EQUAL");
        hive_json_push(&cmps, fence);
    }
    put_b64(&cmp, "key", key, strlen(key));
    if (strcmp(rev, "0") == 0) {
        put_str(&cmp, "target", "CREATE");
        put_str(&cmp, "create_revision", "0");
    } else {
        put_str(&cmp, "target", "MOD");
        put_str(&cmp, "mod_revision", rev);
    }
    put_str(&cmp, "result", "EQUAL");
    hive_json_push(&cmps, cmp);
    hive_json_put(&op, then_name, then);
    hive_json_push(&ops, op);
    hive_json_put(&rq, "compare", cmps);
    hive_json_put(&rq, "success", ops);
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

/* Before attempt+1 of a write that lost a race with other writers: sleep
 * a random time up to 5 ms doubled per attempt (at most 500 ms), so that
 * writers on many machines spread out. false once WRITE_BUDGET_MS have
 * passed since the first call (*deadline 0: not started). */
#define WRITE_BUDGET_MS 30000
static bool backoff(int attempt, int64_t *deadline)
{
    uint32_t r = 0;
    long cap = attempt < 7 ? 5L << attempt : 500;
    long ms;
    struct timespec ts;

    if (*deadline == 0)
        *deadline = now_ms() + WRITE_BUDGET_MS;
    if (now_ms() >= *deadline)
        return false;
    if (hive__random(&r, sizeof(r)) != HIVE_OK) {
        hive__clear_error();
        r = (uint32_t)now_ms();
    }
    ms = 1 + (long)(r % (uint32_t)cap);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
    return true;
}

/* The refresh lock this process holds on id, or NULL. */
static held_lock *held_for(etcd_storage *es, const char *id)
{
    for (int i = 0; i < MAX_LOCKS; i++)
        if (es->locks[i].used && es->locks[i].id != NULL && strcmp(es->locks[i].id, id) == 0)
            return &es->locks[i];
    return NULL;
}

static hive_rc lost_lock(const char *id, const char *how)
{
    return hive__fail(HIVE_ERR_LOCK, "lost the refresh lock on etcd while refreshing '%s' (%s): the new "
                      "tokens were not saved; the refresh token it used may have been spent (if the next "
                      "refresh is refused, authorize again); was this machine cut off from etcd for "
                      "longer than lock_ttl?", id, how);
}

/* After a fenced write failed: whether the lock key is still on h's lease
 * (if not, the failure was the fence's). */
static hive_rc still_ours(etcd_storage *es, const char *lock_key, const held_lock *h, bool *ours)
{
    hive_json *rq = obj();
    hive_json *rs = NULL;
    const hive_json *kv;
    const char *lease;
    hive_rc rc;

    if (rq == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    put_b64(&rq, "key", lock_key, strlen(lock_key));
    rc = call(es, "/v3/kv/range", rq, &rs);
    kv = hive_json_at(hive_json_get(rs, "kvs"), 0, NULL);
    lease = hive_json_string(hive_json_get(kv, "lease"), NULL);
    if (rc == HIVE_OK)
        *ours = lease != NULL && strcmp(lease, h->lease) == 0;
    hive_json_free(&rq);
    hive_json_free(&rs);
    return rc;
}

/* A save of what this process refreshes under its lock is fenced: the
 * transaction also checks that the lock key is still on our lease, so a
 * holder whose lease expired (another machine may hold the lock now and
 * have saved newer tokens) never overwrites anything. */
static hive_rc etcd_save(hive_storage *s, const hive_cred *cred)
{
    etcd_storage *es = (etcd_storage *)s;
    const char *id = hive_cred_id(cred);
    const char *known = known_rev(es, id);
    held_lock *h = held_for(es, id);
    char *key = key_of(es, "credentials", id);
    char *fence_key = h != NULL ? key_of(es, "locks", id) : NULL;
    char *token = NULL;
    size_t len = 0;
    int64_t deadline = 0;
    bool lost = false;
    hive_rc rc;

    if (key == NULL || (h != NULL && fence_key == NULL)) {
        free(key);
        free(fence_key);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (h != NULL) {
        pthread_mutex_lock(&h->mu);
        lost = h->lost;
        pthread_mutex_unlock(&h->mu);
    }
    rc = lost ? lost_lock(id, "lease expired") : hive__file_encrypt(es->key, cred, &token, &len);
    for (int attempt = 0; rc == HIVE_OK; attempt++) {
        char rev[24] = "0";
        hive_json *put = obj();
        bool ok = false;
        if (known != NULL) {
            snprintf(rev, sizeof(rev), "%s", known);
        } else {
            /* a blind write: compare with what is there now */
            char *cur = NULL;
            size_t clen = 0;
            rc = fetch(es, id, &cur, &clen, rev);
            hive__free_secret(cur, clen + 1);
            if (rc != HIVE_OK) {
                hive_json_free(&put);
                break;
            }
        }
        put_b64(&put, "key", key, strlen(key));
        put_b64(&put, "value", token, len);
        {
            hive_json *answer = NULL;
            rc = txn(es, key, rev, fence_key, h ? h->lease : NULL, "request_put", put, &ok, &answer);
            if (rc == HIVE_OK && ok) {
                /* the transaction's revision is our write's mod_revision */
                const char *r = hive_json_string(hive_json_get(hive_json_get(answer, "header"), "revision"), NULL);
                if (is_int64_text(r)) {
                    note_rev(es, id, r);
                    copy_write(es, id, r, token, len);
                }
            }
            hive_json_free(&answer);
        }
        if (rc != HIVE_OK)
            break;
        if (ok)
            break;
        if (h != NULL) {
            bool ours = true;
            rc = still_ours(es, fence_key, h, &ours);
            if (rc != HIVE_OK)
                break;
            if (!ours) {
                rc = lost_lock(id, "lease expired");
                break;
            }
        }
        if (known != NULL) {
            rc = hive__fail(HIVE_ERR_CHANGED, "credential '%s' was changed in etcd by another writer since "
                            "it was read; read it again", id);
            break;
        }
        if (!backoff(attempt, &deadline)) {
            rc = hive__fail(HIVE_ERR_CHANGED, "credential '%s' keeps changing in etcd", id);
            break;
        }
    }
    hive__free_secret(token, len + 1);
    free(key);
    free(fence_key);
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
    put_b64(&rq, "key", key, strlen(key));
    rc = call(es, "/v3/kv/deleterange", rq, &rs);
    if (rc == HIVE_OK) {
        const char *deleted = hive_json_string(hive_json_get(rs, "deleted"), NULL);
        if (deleted == NULL || strcmp(deleted, "0") == 0)
            rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
        copy_remove(es, id);
    }
    hive_json_free(&rq);
    hive_json_free(&rs);
    free(key);
    return rc;
}

/* --- the fleet-wide refresh lock ---------------------------------------- */

/* A lease of lock_ttl seconds; its ID into out. */
static hive_rc grant(etcd_storage *es, char *out, size_t size)
{
    hive_json *rq = obj();
    hive_json *rs = NULL;
    const char *lease;
    hive_rc rc;

    if (rq == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    hive_json_put(&rq, "TTL", hive_json_new_int(es->lock_ttl));
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

/* One keep-alive of h's lease: false when etcd answered that the lease is
 * gone (why says so); a member that does not answer is not a verdict (the
 * next period tries again, and the save's fence has the last word). */
static bool renew(held_lock *h, long t, char *why, size_t size)
{
    const etcd_storage *es = h->es;
    const char *headers[3] = {"Content-Type: application/json", h->auth, NULL};
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"ID\":\"%s\"}", h->lease);
    bool alive = true;
    bool answered = false;

    for (size_t k = 0; k < es->nendpoints && !answered; k++) {
        size_t i = (h->first + k) % es->nendpoints;
        hive_http_response rs = {0};
        hive_json *js = NULL;
        if (post_on(es, &h->conn, i, "/v3/lease/keepalive", headers, body, (size_t)n, t, &rs) == HIVE_OK &&
            rs.status == 200 && hive_json_parse(&js, rs.body, rs.len) == HIVE_OK) {
            /* a stream of one answer: {"result":{"ID":..,"TTL":..}}; TTL 0 or none: no such lease */
            const char *ttl = hive_json_string(hive_json_get(hive_json_get(js, "result"), "TTL"), NULL);
            answered = true;
            h->first = i;
            if (ttl == NULL || strcmp(ttl, "0") == 0) {
                alive = false;
                snprintf(why, size, "lease expired");
            }
        }
        hive_json_free(&js);
        hive__http_response_free(&rs);
    }
    hive__clear_error();   /* this thread's own; nobody reads it */
    return alive;
}

static void *keep_alive(void *arg)
{
    held_lock *h = arg;
    long every = h->es->lock_ttl * 1000 / 3;
    long t = h->es->timeout_ms < every ? h->es->timeout_ms : every;
    struct timespec next;

    clock_gettime(CLOCK_MONOTONIC, &next);   /* at once: the lease may be old from waiting */
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        char why[sizeof(h->lost_why)] = "";
        bool alive;
        if (pthread_cond_timedwait(&h->wake, &h->mu, &next) != ETIMEDOUT)
            continue;
        pthread_mutex_unlock(&h->mu);
        alive = renew(h, t, why, sizeof(why));
        pthread_mutex_lock(&h->mu);
        if (!alive) {
            h->lost = true;
            memcpy(h->lost_why, why, sizeof(why));
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &next);
        next.tv_sec += every / 1000;
        next.tv_nsec += (every % 1000) * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* h, just taken (h->lease holds the lock key): keep its lease alive. */
static hive_rc start_keep_alive(etcd_storage *es, held_lock *h, const char *id)
{
    pthread_condattr_t ca;
    int err;

    h->es = es;
    h->first = es->good;
    h->conn.fd = -1;
    h->stop = false;
    h->lost = false;
    h->lost_why[0] = '\0';
    h->running = false;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    h->used = true;   /* from here on, release() undoes it all (and revokes the lease) */
    h->id = hive__strdup(id);
    h->auth = es->token != NULL ? hive__aprintf("Authorization: %s", es->token) : NULL;
    if (h->id == NULL || (es->token != NULL && h->auth == NULL))
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    err = pthread_create(&h->thread, NULL, keep_alive, h);
    h->running = err == 0;
    if (err != 0)
        return hive__fail(HIVE_ERR_LOCK, "cannot start the thread that keeps the refresh lock on '%s': %s", id,
                          strerror(err));
    return HIVE_OK;
}

static void release(etcd_storage *es, held_lock *h)
{
    hive_json *rq;
    hive_json *rs = NULL;

    if (h->running) {
        pthread_mutex_lock(&h->mu);
        h->stop = true;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
        h->running = false;
    }
    rq = obj();
    if (rq != NULL) {
        put_str(&rq, "ID", h->lease);
        /* revoking the lease deletes the lock key; an error (the lease
         * expired, etcd is unreachable) leaves nothing behind that the
         * lease's expiry does not remove, and must not replace the
         * error the refresh is reporting */
        if (call(es, "/v3/lease/revoke", rq, &rs) != HIVE_OK)
            hive__clear_error();
    }
    hive_json_free(&rq);
    hive_json_free(&rs);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->wake);
    hive__http1_close(&h->conn);
    hive__free_str(h->auth);
    h->auth = NULL;
    free(h->id);
    h->id = NULL;
    h->used = false;
}

static hive_rc etcd_lock(hive_storage *s, const char *id, int *handle)
{
    etcd_storage *es = (etcd_storage *)s;
    char *key = key_of(es, "locks", id);
    held_lock *h = NULL;
    time_t deadline = time(NULL) + 120;
    hive_rc rc;

    for (int i = 0; i < MAX_LOCKS && h == NULL; i++)
        if (!es->locks[i].used)
            h = &es->locks[i];
    if (key == NULL || h == NULL) {
        free(key);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rc = grant(es, h->lease, sizeof(h->lease));
    while (rc == HIVE_OK) {
        hive_json *put = obj();
        bool ok = false;
        put_b64(&put, "key", key, strlen(key));
        put_b64(&put, "value", "hive", 4);
        put_str(&put, "lease", h->lease);
        rc = txn(es, key, "0", NULL, NULL, "request_put", put, &ok, NULL);
        if (rc != HIVE_OK && strstr(hive_last_error(), "lease not found") != NULL) {
            /* our lease ran out while we waited: take a new one */
            hive__clear_error();
            rc = grant(es, h->lease, sizeof(h->lease));
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
    rc = start_keep_alive(es, h, id);
    if (rc != HIVE_OK) {
        char *why = hive__strdup(hive_last_error());
        release(es, h);
        hive__fail(rc, "%s", why ? why : "cannot keep the refresh lock");
        free(why);
        return rc;
    }
    *handle = (int)(h - es->locks);
    return HIVE_OK;
}

static void etcd_unlock(hive_storage *s, int handle)
{
    etcd_storage *es = (etcd_storage *)s;

    if (handle < 0 || handle >= MAX_LOCKS || !es->locks[handle].used)
        return;
    release(es, &es->locks[handle]);
}

/* --- open and free ---------------------------------------------------------- */

static void etcd_destroy(hive_storage *s)
{
    etcd_storage *es = (etcd_storage *)s;

    for (int i = 0; i < MAX_LOCKS; i++)
        if (es->locks[i].used)
            release(es, &es->locks[i]);
    for (size_t i = 0; i < es->nendpoints; i++)
        free(es->endpoints[i]);
    for (size_t i = 0; i < es->nrevs; i++)
        free(es->revs[i].id);
    free(es->prefix);
    free(es->ca_file);
    free(es->cert_file);
    free(es->key_file);
    hive__http1_close(&es->conn);
    free(es->user);
    hive__free_secret(es->password, es->password_len + 1);
    hive__free_str(es->token);
    for (size_t i = 0; i < es->npf; i++) {
        free(es->pf[i].id);
        hive__free_secret(es->pf[i].token, es->pf[i].len + 1);
    }
    hive_storage_free(&es->key);
    free(es->cache_dir);
    free(es);
}

static const hive_storage_ops etcd_ops = {
    "etcd", etcd_load, etcd_save, etcd_delete, etcd_exists, etcd_list, etcd_destroy,
    etcd_lock, etcd_unlock, true,
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* $HIVE_HOME/etcd-cache/<16 hex digits>: a hash of the sorted endpoints and
 * the prefix, so that listing the members in another order finds the same
 * copy. NULL: out of memory. */
static char *cache_name(const etcd_storage *es, const char *home)
{
    const char *sorted[MAX_ENDPOINTS];
    hive_buf b = {0};
    unsigned char h[32];
    char hex[17];
    char *text = NULL;
    size_t len = 0;

    memcpy(sorted, es->endpoints, es->nendpoints * sizeof(sorted[0]));
    qsort(sorted, es->nendpoints, sizeof(sorted[0]), cmp_str);
    hive__buf_append(&b, es->tls ? "etcds\n" : "etcd\n", es->tls ? 6 : 5);
    for (size_t i = 0; i < es->nendpoints; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        hive__buf_append(&b, sorted[i], strlen(sorted[i]));
        hive__buf_putc(&b, '\n');
    }
    hive__buf_append(&b, es->prefix, strlen(es->prefix));
    if (hive__buf_finish(&b, &text, &len) != HIVE_OK) {
        hive__buf_free(&b);
        hive__clear_error();
        return NULL;
    }
    hive__buf_free(&b);
    mbedtls_sha256_ret((const unsigned char *)text, len, h, 0);
    free(text);
    for (size_t i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    return hive__aprintf("%s/etcd-cache/%s", home, hex);
}

/* The endpoint the local copy names, if the URL lists it. */
static void read_remembered(etcd_storage *es)
{
    char *path = hive__aprintf("%s/endpoint", es->cache_dir);
    char *data = NULL;
    size_t len = 0;

    struct stat st;
    char *down = hive__aprintf("%s/down", es->cache_dir);

    es->suspect = down != NULL && stat(down, &st) == 0 && st.st_mtime + SUSPECT_S > time(NULL) &&
                  st.st_mtime <= time(NULL) + 5;
    free(down);
    es->remembered = es->nendpoints;
    if (path != NULL && hive__read_at(AT_FDCWD, path, true, 1024, "the remembered etcd endpoint", &data, &len) == HIVE_OK) {
        for (size_t i = 0; i < es->nendpoints; i++)
            if (strcmp(es->endpoints[i], data) == 0)
                es->good = es->remembered = i;
    } else {
        hive__clear_error();
    }
    hive__free_secret(data, len + 1);
    free(path);
}

static hive_rc authenticate(etcd_storage *es)
{
    hive_json *rq;
    hive_json *rs = NULL;
    const char *tok;
    hive_rc rc;

    rq = obj();
    if (rq == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    put_str(&rq, "name", es->user);
    put_str(&rq, "password", es->password);
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

/* Take what the parsed URL holds (u is left empty). */
static void take_url(etcd_storage *es, hive__etcd_url *u)
{
    es->tls = u->tls;
    es->user = u->user;
    memcpy(es->endpoints, u->endpoints, u->nendpoints * sizeof(es->endpoints[0]));
    es->nendpoints = u->nendpoints;
    es->plain_remote = u->plain_remote;
    es->prefix = u->prefix;
    es->lock_ttl = u->lock_ttl;
    es->timeout_ms = u->timeout_ms;
    es->ca_file = u->ca_file;
    es->cert_file = u->cert_file;
    es->key_file = u->key_file;
    memset(u, 0, sizeof(*u));
}

hive_rc hive_etcd_storage_open(hive_storage **out, const char *url, const hive_file_options *opts)
{
    etcd_storage *es;
    hive__etcd_url u;
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    const char *home;
    char *cache_dir = NULL;
    hive_rc rc;

    hive__clear_error();
    if (opts != NULL && hive__check_size(opts->size, sizeof(*opts), "hive_file_options",
                                         "HIVE_FILE_OPTIONS_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
    if (opts != NULL)
        fo = *opts;
    home = fo.home;
    rc = hive__etcd_url_parse(&u, url);
    if (rc != HIVE_OK)
        return rc;
    es = calloc(1, sizeof(*es));
    if (es == NULL) {
        hive__etcd_url_free(&u);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    es->base.ops = &etcd_ops;
    es->conn.fd = -1;
    take_url(es, &u);
    if (es->user == NULL && fo.etcd_user != NULL && *fo.etcd_user != '\0' &&
        (es->user = hive__strdup(fo.etcd_user)) == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (es->plain_remote && es->user != NULL) {
        rc = hive__fail(HIVE_ERR_INVALID, "etcd user '%s' over plain http to a host that is not this machine: the "
                        "password and etcd's token would cross the network in the clear; use etcds://",
                        es->user);
        goto out;
    }
    /* the local copy: $HIVE_HOME/etcd-cache/<hash of the endpoint set and the prefix>/ */
    if (home == NULL || *home == '\0') {
        rc = hive__fail(HIVE_ERR_INVALID, "no home directory for the etcd storage's local copy: set "
                        "hive_file_options.home (hive_storage_open_from_env finds it: set " HIVE_ENV_HOME ")");
        goto out;
    }
    es->cache_dir = cache_name(es, home);
    cache_dir = es->cache_dir != NULL ? hive__aprintf("%s/credentials", es->cache_dir) : NULL;
    if (cache_dir == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    read_remembered(es);
    if (es->user != NULL) {
        const char *pw = fo.etcd_password;
        if (pw == NULL) {
            rc = hive__fail(HIVE_ERR_PERM, "etcd user '%s' given, but no password (HIVE_ETCD_PASSWORD is not set)",
                            es->user);
            goto out;
        }
        es->password_len = strlen(pw);
        if ((es->password = hive__strdup(pw)) == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            goto out;
        }
        hive__protect(es->password, es->password_len + 1);
    }
    /* a file storage for its key alone: nothing is written there */
    fo.dir = cache_dir;
    if (fo.key_file == NULL) {
        char *kf = hive__aprintf("%s/secrets/credential_key", home);
        fo.key_file = kf;
        rc = hive_file_storage_open(&es->key, &fo);
        free(kf);
    } else {
        rc = hive_file_storage_open(&es->key, &fo);
    }
    es->warn = fo.warn;
    es->warn_ctx = fo.warn_ctx;
    if (rc == HIVE_OK && es->plain_remote && es->warn != NULL) {
        char msg[600];
        snprintf(msg, sizeof(msg), "etcd at %.200s%s is reached over plain http: the values are encrypted, but the "
                 "ids and the traffic are not; use etcds:// on a network you do not trust", es->endpoints[0],
                 es->nendpoints > 1 ? " and the other members" : "");
        es->warn(es->warn_ctx, msg);
    }
    if (rc == HIVE_OK && es->user != NULL)
        rc = authenticate(es);
out:
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
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;

    hive__clear_error();
    if (opts != NULL && hive__check_size(opts->size, sizeof(*opts), "hive_file_options",
                                         "HIVE_FILE_OPTIONS_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
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
