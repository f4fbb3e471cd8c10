/*
 * oauth2.c - the OAuth2 provider: refresh_token and client_credentials
 * grants against a token endpoint (RFC 6749 sections 4.4 and 6).
 *
 * The provider is itself a credential of type custom, named by the token
 * credential's provider_id, holding token_url, client_id, client_secret
 * and optionally scope, auth_method (client_secret_post, the default, or
 * client_secret_basic), ca_file and timeout (seconds). So the client
 * secret is encrypted like every other secret.
 */
#include "http.h"
#include "oauth2.h"
#include "providers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ATTEMPTS 3
#define DEFAULT_TIMEOUT_S 15
#define CONNECT_TIMEOUT_S 5

typedef hive_oauth2_client config;

static void config_free(config *c)
{
    hive__free_str(c->token_url);
    hive__free_str(c->client_id);
    hive__free_str(c->client_secret);
    hive__free_str(c->scope);
    hive__free_str(c->ca_file);
    memset(c, 0, sizeof(*c));
}

static char *opt_key(const hive_cred *c, const char *name)
{
    size_t len;
    const char *v = hive_cred_get_key(c, name, &len);

    return v && len > 0 ? hive__strndup(v, len) : NULL;
}

static hive_rc load_config(const hive_lookup *lookup, const hive_cred *cred, const char *what, config *cfg)
{
    const char *id = hive_cred_id(cred);
    const char *pid = hive_cred_provider_id(cred);
    hive_cred *pc = NULL;
    char *method = NULL;
    char *timeout = NULL;
    hive_rc rc;

    memset(cfg, 0, sizeof(*cfg));
    if (pid == NULL)
        return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': it has no provider_id "
                          "naming its OAuth2 provider credential", what, id);
    rc = lookup->load(lookup->ctx, &pc, pid);
    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': its provider '%s' is not "
                          "in the store (a custom credential with token_url, client_id, client_secret)",
                          what, id, pid);
    if (rc != HIVE_OK)
        return hive__fail_prefix(HIVE_ERR_REFRESH, "Failed to %s '%s'", what, id);
    cfg->token_url = opt_key(pc, "token_url");
    cfg->client_id = opt_key(pc, "client_id");
    cfg->client_secret = opt_key(pc, "client_secret");
    cfg->scope = opt_key(pc, "scope");
    cfg->ca_file = opt_key(pc, "ca_file");
    method = opt_key(pc, "auth_method");
    timeout = opt_key(pc, "timeout");
    hive_cred_free(&pc);
    if (cfg->token_url == NULL || cfg->client_id == NULL) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': provider '%s' lacks %s", what, id,
                        pid, cfg->token_url == NULL ? "token_url" : "client_id");
    } else if (method != NULL && strcmp(method, "client_secret_basic") != 0 &&
               strcmp(method, "client_secret_post") != 0) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': provider '%s' has auth_method "
                        "'%.64s' (expected client_secret_post or client_secret_basic)", what, id, pid, method);
    } else if (!hive__url_allowed(cfg->token_url)) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': provider '%s' has a token_url "
                        "that is not https (plain http is allowed to loopback addresses only)", what, id, pid);
    } else {
        cfg->basic = method != NULL && strcmp(method, "client_secret_basic") == 0;
        cfg->timeout_ms = DEFAULT_TIMEOUT_S * 1000L;
        if (timeout != NULL) {
            char *end;
            double t = hive__strtod(timeout, &end);
            if (*end != '\0' || t <= 0 || t > 600)
                rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': provider '%s' has a "
                                "timeout that is not a number of seconds (0 to 600)", what, id, pid);
            else
                cfg->timeout_ms = (long)(t * 1000);
        }
    }
    free(method);
    free(timeout);
    if (rc != HIVE_OK)
        config_free(cfg);
    return rc;
}

/* --- the request --------------------------------------------------------- */

static void add_field(hive_buf *b, const char *name, const char *value)
{
    if (b->len > 0)
        hive__buf_putc(b, '&');
    hive__buf_puts(b, name);
    hive__buf_putc(b, '=');
    hive__form_encode(b, value, strlen(value));
}

/* Authorization: Basic base64(form(id) ":" form(secret)) - RFC 6749 2.3.1 */
static char *basic_header(const config *cfg)
{
    hive_buf pair = {0};
    hive_buf h = {0};
    char *out = NULL;
    size_t len = 0;
    char *enc;

    hive__form_encode(&pair, cfg->client_id, strlen(cfg->client_id));
    hive__buf_putc(&pair, ':');
    if (cfg->client_secret)
        hive__form_encode(&pair, cfg->client_secret, strlen(cfg->client_secret));
    if (pair.failed || pair.data == NULL) {
        hive__buf_free(&pair);
        return NULL;
    }
    enc = malloc(hive__b64_encoded_len(pair.len) + 1);
    if (enc != NULL) {
        size_t n = hive_base64_encode(enc, pair.data, pair.len, 0);   /* standard alphabet for HTTP Basic */
        hive__buf_puts(&h, "Authorization: Basic ");
        hive__buf_append(&h, enc, n);
        hive__free_secret(enc, n + 1);
        if (hive__buf_finish(&h, &out, &len) != HIVE_OK)
            out = NULL;
    }
    hive__buf_free(&pair);
    hive__buf_free(&h);
    return out;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* --- the response ------------------------------------------------------------ */

static char *form_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && hive__hexval(s[i + 1]) >= 0 && hive__hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hive__hexval(s[i + 1]) << 4 | hive__hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* The body as an object: JSON, or application/x-www-form-urlencoded (as
 * GitHub answers without an Accept header). NULL when it is neither. */
hive_json *hive__oauth2_parse_body(const hive_http_response *rs)
{
    hive_json *obj = NULL;
    const char *p = rs->body;
    size_t len = rs->len;

    while (len > 0 && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
        len--;
    }
    if (len > 0 && *p == '{') {
        if (hive_json_parse(&obj, p, len) != HIVE_OK || hive_json_typeof(obj) != HIVE_JSON_OBJECT) {
            hive_json_free(&obj);
            hive__clear_error();
        }
        return obj;
    }
    if (len == 0 || memchr(p, '=', len) == NULL || memchr(p, '<', len) != NULL)
        return NULL;
    obj = hive_json_new(HIVE_JSON_OBJECT);
    for (const char *q = p; obj != NULL && q < p + len;) {
        const char *amp = memchr(q, '&', (size_t)(p + len - q));
        const char *end = amp ? amp : p + len;
        const char *eq = memchr(q, '=', (size_t)(end - q));
        if (eq != NULL && eq > q) {
            char *k = form_decode(q, (size_t)(eq - q));
            char *v = form_decode(eq + 1, (size_t)(end - eq - 1));
            if (k != NULL && v != NULL && strlen(k) > 0 &&
                hive_json_set(obj, k, hive_json_new_string(v, strlen(v))) != HIVE_OK)
                hive_json_free(&obj);   /* out of memory: no half answer */
            free(k);
            hive__free_str(v);
        }
        q = end + 1;
    }
    return obj;
}

static const char *field(const hive_json *obj, const char *name)
{
    const hive_json *v = hive_json_get(obj, name);

    return hive_json_typeof(v) == HIVE_JSON_STRING ? hive_json_string(v, NULL) : NULL;
}

/* expires_in as a number or a string of digits; -1 when absent or bad. */
static long long expires_in(const hive_json *obj)
{
    const hive_json *v = hive_json_get(obj, "expires_in");
    const char *s;
    char *end;
    long long n;

    if (hive_json_typeof(v) != HIVE_JSON_NUMBER && hive_json_typeof(v) != HIVE_JSON_STRING)
        return -1;
    s = hive_json_string(v, NULL);
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || (*end != '\0' && *end != '.') || n < 0 || n > 100LL * 365 * 86400)
        return -1;
    return n;
}

/* Write the new tokens into cred as Hive does: the access token with its
 * new expiry, and the refresh token when the server rotated it. Other keys
 * (scope, ...) stay as they were. */
/* Where a refresh token that may have been spent is marked: a field of
 * its key's metadata (Hive keeps metadata as it is), holding the time. */
#define IN_DOUBT "refresh_in_doubt_since"

/* Whether cred's refresh token is marked in doubt; *since: when. */
static bool in_doubt(const hive_cred *cred, const char **since)
{
    const hive_json *v = hive_json_get(hive_cred_key_metadata(cred, "refresh_token"), IN_DOUBT);

    *since = hive_json_typeof(v) == HIVE_JSON_STRING ? hive_json_string(v, NULL) : "an unknown time";
    return v != NULL;
}

hive_rc hive__oauth2_clear_in_doubt(hive_cred *cred, bool *was)
{
    const char *since;

    *was = hive_cred_get_key(cred, "refresh_token", NULL) != NULL && in_doubt(cred, &since);
    return *was ? hive__cred_key_meta_set(cred, "refresh_token", IN_DOUBT, NULL) : HIVE_OK;
}

/*
 * The request carrying the refresh token may have reached the server, and
 * no usable answer came: a server that rotates refresh tokens may have
 * spent it, and would take a second use as a replay and revoke the whole
 * grant (for every machine sharing it). Mark the token in doubt on cred,
 * which the store saves, so that no process anywhere sends it again, and
 * say so. what: what happened.
 */
static hive_rc mark_in_doubt(hive_cred *cred, const char *id, const char *what)
{
    char when[HIVE_TIME_TEXT];
    hive_time now = hive_time_now();
    char *msg;
    hive_rc rc;

    hive_time_format(when, &now, true);
    msg = hive__aprintf("Refresh token for '%s' may have been spent: %s. It will not be sent again (a server "
                        "that rotates refresh tokens would take a second use as a replay and revoke the "
                        "grant). Re-authorization required.", id, what);
    rc = hive__cred_key_meta_set(cred, "refresh_token", IN_DOUBT, hive_json_new_string(when, strlen(when)));
    if (rc != HIVE_OK || msg == NULL) {
        free(msg);
        return rc != HIVE_OK ? rc : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rc = hive__fail(HIVE_ERR_IN_DOUBT, "%s", msg);
    free(msg);
    return rc;
}

static hive_rc apply_tokens(hive_cred *cred, const hive_json *obj)
{
    /* a rotated refresh token; the granted scope (RFC 6749 5.1: when the
     * answer omits it, the grant is unchanged and so is the record) */
    static const char *const extras[] = {"refresh_token", "scope"};
    const char *access = field(obj, "access_token");
    long long ttl = expires_in(obj);
    hive_time exp = hive_time_now();
    hive_rc rc;

    exp.usec = 0;
    if (ttl >= 0)
        exp.sec += ttl;
    else
        exp.form = HIVE_TIME_NONE;
    rc = hive_cred_set_key(cred, "access_token", access, strlen(access), &exp);
    for (size_t i = 0; rc == HIVE_OK && i < sizeof(extras) / sizeof(extras[0]); i++) {
        const char *v = field(obj, extras[i]);
        if (v != NULL && *v != '\0') {
            hive_time keep = hive_cred_key_expires(cred, extras[i]);
            rc = hive_cred_set_key(cred, extras[i], v, strlen(v), &keep);
        }
    }
    if (rc == HIVE_OK && hive_cred_get_key(cred, "refresh_token", NULL) != NULL) {
        bool was;
        rc = hive__oauth2_clear_in_doubt(cred, &was);   /* an answer came: whatever it holds is current */
    }
    return rc;
}

/* --- what the server says -------------------------------------------------- */

/* The secrets the request carried, in every form it carried them: a
 * server may quote the request in its error_description. */
typedef struct carried {
    char *forms[5];
    size_t n;
} carried;

static void carry(carried *c, const char *secret, size_t len, bool form_encoded)
{
    hive_buf b = {0};
    char *out = NULL;
    size_t n = 0;

    if (secret == NULL || len == 0 || c->n == sizeof(c->forms) / sizeof(c->forms[0]))
        return;
    if (form_encoded)
        hive__form_encode(&b, secret, len);
    else
        hive__buf_append(&b, secret, len);
    if (hive__buf_finish(&b, &out, &n) == HIVE_OK)
        c->forms[c->n++] = out;
    hive__buf_free(&b);
}

static void carried_free(carried *c)
{
    for (size_t i = 0; i < c->n; i++)
        hive__free_str(c->forms[i]);
    c->n = 0;
}

void hive__server_text(char *out, size_t size, const char *text, char *const *secrets, size_t nsecrets)
{
    const char *end = text + strlen(text);
    const char *p = text;
    size_t o = 0;

    while (p < end) {
        size_t skip = 0;
        for (size_t i = 0; i < nsecrets; i++) {
            size_t n = secrets[i] != NULL ? strlen(secrets[i]) : 0;
            if (n > skip && (size_t)(end - p) >= n && strncasecmp(p, secrets[i], n) == 0)
                skip = n;
        }
        if (o + (skip > 0 ? 10 : 1) + 4 > size)
            break;
        if (skip > 0) {
            memcpy(out + o, "[redacted]", 10);
            o += 10;
            p += skip;
        } else {
            out[o++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
            p++;
        }
    }
    if (p < end) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static hive_rc answer_error(const char *id, bool refresh_grant, long status, const hive_json *obj,
                            const carried *c)
{
    const char *err = field(obj, "error");
    const char *desc = field(obj, "error_description");
    char err_text[104];
    char desc_text[204];

    if (refresh_grant && err != NULL && strcmp(err, "invalid_grant") == 0)
        return hive__fail(HIVE_ERR_REAUTH, "Refresh token for '%s' is invalid or revoked. "
                          "Re-authorization required.", id);
    if (err == NULL)
        return hive__fail(HIVE_ERR_REFRESH, "Failed to refresh credential '%s': HTTP %ld from the token "
                          "endpoint", id, status);
    hive__server_text(err_text, sizeof(err_text), err, c->forms, c->n);
    hive__server_text(desc_text, sizeof(desc_text), desc ? desc : "", c->forms, c->n);
    return hive__fail(HIVE_ERR_REFRESH, "Failed to refresh credential '%s': HTTP %ld: %s%s%s", id, status,
                      err_text, desc ? ": " : "", desc_text);
}

static hive_rc oauth2_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    const char *id = hive_cred_id(cred);
    const char *refresh = hive_cred_get_key(cred, "refresh_token", NULL);
    bool refresh_grant = refresh != NULL && *refresh != '\0';
    config cfg;
    hive_buf body = {0};
    char *body_text = NULL;
    size_t body_len = 0;
    char *auth = NULL;
    const char *headers[3] = {"Accept: application/json", NULL, NULL};
    hive_http_request rq;
    hive_http_response rs = {0};
    hive_json *obj = NULL;
    carried secrets = {{NULL}, 0};
    char ctype[104];
    hive_rc rc;

    (void)p;
    if (refresh_grant) {
        const char *since;
        if (in_doubt(cred, &since))
            return hive__fail(HIVE_ERR_IN_DOUBT, "Refresh token for '%s' may have been spent (a request "
                              "carrying it got no usable answer, %s); it is not sent again. "
                              "Re-authorization required.", id, since);
    }
    rc = load_config(lookup, cred, "refresh credential", &cfg);
    if (rc != HIVE_OK)
        return rc;
    if (refresh_grant) {
        add_field(&body, "grant_type", "refresh_token");
        add_field(&body, "refresh_token", refresh);
    } else {
        add_field(&body, "grant_type", "client_credentials");
        if (cfg.scope != NULL)
            add_field(&body, "scope", cfg.scope);
    }
    rc = hive__oauth2_client_auth(&cfg, &body, &auth);
    headers[1] = auth;
    if (rc == HIVE_OK)
        rc = hive__buf_finish(&body, &body_text, &body_len);
    if (rc != HIVE_OK)
        goto out;
    if (cfg.client_secret != NULL) {
        carry(&secrets, cfg.client_secret, strlen(cfg.client_secret), false);
        carry(&secrets, cfg.client_secret, strlen(cfg.client_secret), true);
    }
    if (refresh_grant) {
        carry(&secrets, refresh, strlen(refresh), false);
        carry(&secrets, refresh, strlen(refresh), true);
    }
    if (auth != NULL)
        carry(&secrets, auth + strlen("Authorization: Basic "), strlen(auth + strlen("Authorization: Basic ")),
              false);

    memset(&rq, 0, sizeof(rq));
    rq.url = cfg.token_url;
    rq.body = body_text;
    rq.body_len = body_len;
    rq.headers = headers;
    rq.ca_file = cfg.ca_file;
    rq.connect_timeout_ms = CONNECT_TIMEOUT_S * 1000L < cfg.timeout_ms ? CONNECT_TIMEOUT_S * 1000L : cfg.timeout_ms;
    rq.timeout_ms = cfg.timeout_ms;
    /* Retry what may be passing (no answer, 5xx), never a 4xx: a refused
     * refresh token must not be tried again. A refresh token is spent
     * once: its request is repeated only when the failure proves it never
     * left (no connection); anything else puts it in doubt. */
    for (int attempt = 1;; attempt++) {
        hive__http_response_free(&rs);
        rc = hive__http_post(&rq, &rs);
        if (rc == HIVE_OK && rs.status < 500)
            break;
        if (refresh_grant && rs.sent)
            break;
        if (attempt == ATTEMPTS || (rc != HIVE_OK && rc != HIVE_ERR_NETWORK))
            break;
        pause_ms(250L << (attempt - 1));
    }
    if (refresh_grant && rs.sent && (rc == HIVE_ERR_NETWORK || rc == HIVE_ERR_TOO_LARGE)) {
        char what[400];
        snprintf(what, sizeof(what), "the request was sent but no answer came (%.300s)", hive_last_error());
        rc = mark_in_doubt(cred, id, what);
        goto out;
    }
    if (refresh_grant && rc == HIVE_OK && rs.status >= 500) {
        char what[100];
        snprintf(what, sizeof(what), "the token endpoint answered HTTP %ld", rs.status);
        rc = mark_in_doubt(cred, id, what);
        goto out;
    }
    if (rc == HIVE_ERR_NETWORK || rc == HIVE_ERR_TOO_LARGE || rc == HIVE_ERR_INVALID || rc == HIVE_ERR_PERM) {
        rc = hive__fail_prefix(rc == HIVE_ERR_NETWORK ? HIVE_ERR_NETWORK : HIVE_ERR_REFRESH,
                               "Failed to refresh credential '%s'", id);
        goto out;
    }
    if (rc != HIVE_OK) {
        rc = hive__fail_prefix(HIVE_ERR_REFRESH, "Failed to refresh credential '%s'", id);
        goto out;
    }
    obj = hive__oauth2_parse_body(&rs);
    if (rs.status < 200 || rs.status >= 300) {
        rc = answer_error(id, refresh_grant, rs.status, obj, &secrets);
        goto out;
    }
    if (obj == NULL) {
        hive__server_text(ctype, sizeof(ctype), *rs.content_type ? rs.content_type : "no content type",
                          secrets.forms, secrets.n);
        if (refresh_grant) {
            /* a success we cannot read: the server may have rotated */
            char what[200];
            snprintf(what, sizeof(what), "the token endpoint's answer (HTTP %ld, %s) is neither JSON nor "
                     "form data", rs.status, ctype);
            rc = mark_in_doubt(cred, id, what);
        } else {
            rc = hive__fail(HIVE_ERR_REFRESH, "Failed to refresh credential '%s': the token endpoint's answer "
                            "(HTTP %ld, %s) is neither JSON nor form data", id, rs.status, ctype);
        }
        goto out;
    }
    if (field(obj, "access_token") == NULL || *field(obj, "access_token") == '\0') {
        if (field(obj, "error"))
            rc = answer_error(id, refresh_grant, rs.status, obj, &secrets);
        else if (refresh_grant)
            rc = mark_in_doubt(cred, id, "the token endpoint answered without an access_token");
        else
            rc = hive__fail(HIVE_ERR_REFRESH, "Failed to refresh credential '%s': the token endpoint "
                            "answered without an access_token", id);
        goto out;
    }
    rc = apply_tokens(cred, obj);
out:
    hive_json_free(&obj);
    hive__http_response_free(&rs);
    hive__buf_free(&body);
    hive__free_secret(body_text, body_len + 1);
    hive__free_str(auth);
    carried_free(&secrets);
    config_free(&cfg);
    return rc;
}

static bool oauth2_can_refresh(hive_provider *p, const hive_lookup *lookup, const hive_cred *cred)
{
    config cfg;
    const char *since;

    (void)p;
    if (hive_cred_get_key(cred, "refresh_token", NULL) != NULL && in_doubt(cred, &since)) {
        hive__fail(HIVE_ERR_IN_DOUBT, "its refresh token may have been spent (in doubt since %s); "
                   "re-authorization required", since);
        return false;
    }
    if (load_config(lookup, cred, "refresh credential", &cfg) != HIVE_OK)
        return false;
    config_free(&cfg);
    return true;
}

static bool oauth2_handles(const hive_provider *p, hive_cred_type t)
{
    (void)p;
    return t == HIVE_TYPE_OAUTH2;
}

hive_rc hive__oauth2_provider_new(hive_provider **out)
{
    return hive__provider_new(out, HIVE_OAUTH2_PROVIDER, oauth2_handles, oauth2_refresh, oauth2_can_refresh);
}

/* --- shared with login.c ------------------------------------------------ */

hive_rc hive__oauth2_client_load(const hive_lookup *lookup, const hive_cred *cred, const char *what,
                                 hive_oauth2_client *client)
{
    return load_config(lookup, cred, what, client);
}

void hive__oauth2_client_free(hive_oauth2_client *client)
{
    config_free(client);
}

void hive__oauth2_add_field(hive_buf *b, const char *name, const char *value)
{
    add_field(b, name, value);
}

hive_rc hive__oauth2_client_auth(const hive_oauth2_client *client, hive_buf *body, char **auth)
{
    *auth = NULL;
    if (client->basic) {
        *auth = basic_header(client);
        return *auth != NULL ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    add_field(body, "client_id", client->client_id);
    if (client->client_secret != NULL)
        add_field(body, "client_secret", client->client_secret);
    return HIVE_OK;
}

hive_rc hive__oauth2_apply_tokens(hive_cred *cred, const hive_json *obj)
{
    return apply_tokens(cred, obj);
}
