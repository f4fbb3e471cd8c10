/*
 * login.c - the OAuth2 user flows and revocation (hive/login.h): the
 * authorization code grant with PKCE and a loopback redirect (RFC 7636,
 * RFC 8252), the device authorization grant (RFC 8628), token revocation
 * (RFC 7009). The client is the one a refresh uses (oauth2.c); the new
 * tokens are saved through the refresh's own path (lock, re-read, save
 * only over what was read).
 */
#include "http.h"
#include "oauth2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <mbedtls/sha256.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 5000L
#define MAX_REQUEST 8192            /* a redirect's request line and headers */
#define CONN_TIMEOUT_MS 5000        /* for one connection to say what it wants */
#define MAX_STRAY 64                /* requests that are not the redirect, before giving up */
#define CALLBACK_PATH "/callback"
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"
#define DEVICE_INTERVAL_S 5         /* RFC 8628 3.2: when the server names none */
#define DEVICE_MAX_WAIT_S 3600
#define MAX_SECRETS 12

/* What one login or revocation needs: the client, the endpoints, and the
 * secrets its requests carry (to take out of whatever a server says). */
typedef struct flow {
    const char *id;
    const char *what;               /* "log in for credential", ... */
    const char *provider;
    hive_oauth2_client client;
    char *authorization_endpoint;
    char *device_endpoint;
    char *revocation_endpoint;
    char *issuer;
    char *secrets[MAX_SECRETS];
    size_t nsecrets;
} flow;

static const char *str_field(const hive_json *obj, const char *name)
{
    const hive_json *v = hive_json_get(obj, name);

    return hive_json_typeof(v) == HIVE_JSON_STRING ? hive_json_string(v, NULL) : NULL;
}

/* A number of seconds given as a number or a string of digits; dflt when
 * absent, -1 when it is no such number. */
static long seconds_field(const hive_json *obj, const char *name, long dflt)
{
    const hive_json *v = hive_json_get(obj, name);
    const char *s;
    char *end;
    double d;

    if (v == NULL)
        return dflt;
    if (hive_json_typeof(v) != HIVE_JSON_NUMBER && hive_json_typeof(v) != HIVE_JSON_STRING)
        return -1;
    s = hive_json_string(v, NULL);
    d = hive__strtod(s, &end);
    return end == s || *end != '\0' || d < 0 || d > 86400 ? -1 : (long)d;
}

/* Keep secret (raw and form-encoded) for redaction. */
static void keep_secret(flow *f, const char *secret)
{
    hive_buf b = {0};
    char *out = NULL;
    size_t n = 0;

    if (secret == NULL || *secret == '\0' || f->nsecrets + 2 > MAX_SECRETS)
        return;
    f->secrets[f->nsecrets] = hive__strdup(secret);
    if (f->secrets[f->nsecrets] != NULL)
        f->nsecrets++;
    hive__form_encode(&b, secret, strlen(secret));
    if (hive__buf_finish(&b, &out, &n) == HIVE_OK)
        f->secrets[f->nsecrets++] = out;
    hive__buf_free(&b);
}

static void flow_free(flow *f)
{
    hive__oauth2_client_free(&f->client);
    free(f->authorization_endpoint);
    free(f->device_endpoint);
    free(f->revocation_endpoint);
    free(f->issuer);
    for (size_t i = 0; i < f->nsecrets; i++)
        hive__free_str(f->secrets[i]);
    memset(f, 0, sizeof(*f));
}

/* text from a server, fit for a message (secrets out, printable ASCII) */
static void quote(const flow *f, char *out, size_t size, const char *text)
{
    hive__server_text(out, size, text, f->secrets, f->nsecrets);
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* --- requests ------------------------------------------------------------- */

static void request_init(const flow *f, hive_http_request *rq, const char *url, const char *const *headers)
{
    memset(rq, 0, sizeof(*rq));
    rq->url = url;
    rq->headers = headers;
    rq->ca_file = f->client.ca_file;
    rq->timeout_ms = f->client.timeout_ms;
    rq->connect_timeout_ms = CONNECT_TIMEOUT_MS < f->client.timeout_ms ? CONNECT_TIMEOUT_MS : f->client.timeout_ms;
}

/* A failure to reach name (no answer, a refused certificate). */
static hive_rc unreachable(const flow *f, hive_rc rc, const char *name)
{
    return hive__fail_prefix(rc == HIVE_ERR_NETWORK ? HIVE_ERR_NETWORK : HIVE_ERR_REFRESH,
                             "Failed to %s '%s': the %s did not answer", f->what, f->id, name);
}

/*
 * POST body (its fields; the client's authentication is added) to url,
 * the endpoint called name in messages. *obj: the answer as an object
 * (NULL when it is none), *status its HTTP status. Only a failure to get
 * any answer is an error.
 */
static hive_rc post_form(flow *f, const char *url, const char *name, hive_buf *body, long *status,
                         hive_json **obj)
{
    const char *headers[3] = {"Accept: application/json", NULL, NULL};
    char *auth = NULL;
    char *text = NULL;
    size_t len = 0;
    hive_http_request rq;
    hive_http_response rs = {0};
    hive_rc rc = hive__oauth2_client_auth(&f->client, body, &auth);

    *obj = NULL;
    if (rc == HIVE_OK)
        rc = hive__buf_finish(body, &text, &len);
    if (rc != HIVE_OK)
        goto out;
    if (auth != NULL) {
        keep_secret(f, auth + strlen("Authorization: Basic "));
        headers[1] = auth;
    }
    request_init(f, &rq, url, headers);
    rq.body = text;
    rq.body_len = len;
    rc = hive__http_post(&rq, &rs);
    if (rc != HIVE_OK) {
        rc = unreachable(f, rc, name);
        goto out;
    }
    *status = rs.status;
    *obj = hive__oauth2_parse_body(&rs);
out:
    hive__http_response_free(&rs);
    hive__buf_free(body);
    hive__free_secret(text, text ? len + 1 : 0);
    hive__free_str(auth);
    return rc;
}

/* The endpoint's refusal as a message: its error and description, quoted. */
static hive_rc refused(const flow *f, const char *name, long status, const hive_json *obj)
{
    const char *err = str_field(obj, "error");
    const char *desc = str_field(obj, "error_description");
    char err_text[104];
    char desc_text[204];

    if (err == NULL)
        return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the %s answered HTTP %ld", f->what, f->id, name,
                          status);
    quote(f, err_text, sizeof(err_text), err);
    quote(f, desc_text, sizeof(desc_text), desc ? desc : "");
    return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the %s answered HTTP %ld: %s%s%s", f->what, f->id,
                      name, status, err_text, desc ? ": " : "", desc_text);
}

/* A token endpoint's answer: tokens (*tokens, taken from *obj), or why not. */
static hive_rc take_tokens(flow *f, long status, hive_json **obj, hive_json **tokens)
{
    const char *access = str_field(*obj, "access_token");

    if (status >= 200 && status < 300 && access != NULL && *access != '\0') {
        *tokens = *obj;
        *obj = NULL;
        return HIVE_OK;
    }
    if (status >= 200 && status < 300 && str_field(*obj, "error") == NULL)
        return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the token endpoint answered HTTP %ld "
                          "without an access_token", f->what, f->id, status);
    return refused(f, "token endpoint", status, *obj);
}

/* --- the provider's endpoints ------------------------------------------------ */

static char *key_copy(const hive_cred *c, const char *name)
{
    size_t len = 0;
    const char *v = hive_cred_get_key(c, name, &len);

    return v != NULL && len > 0 ? hive__strndup(v, len) : NULL;
}

/* Whether two issuer identifiers are the same, trailing slashes aside. */
static bool same_issuer(const char *a, const char *b)
{
    size_t na = strlen(a);
    size_t nb = strlen(b);

    while (na > 0 && a[na - 1] == '/')
        na--;
    while (nb > 0 && b[nb - 1] == '/')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

/* Fill the endpoints still missing from the issuer's discovery document
 * (OpenID Connect Discovery 1.0, RFC 8414), whose issuer must be ours. */
static hive_rc discover(flow *f)
{
    static const char *const accept[] = {"Accept: application/json", NULL};
    size_t n = strlen(f->issuer);
    char *url;
    hive_http_request rq;
    hive_http_response rs = {0};
    hive_json *doc = NULL;
    const char *iss;
    hive_rc rc;

    while (n > 0 && f->issuer[n - 1] == '/')
        n--;
    url = hive__aprintf("%.*s/.well-known/openid-configuration", (int)n, f->issuer);
    if (url == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    request_init(f, &rq, url, accept);
    rq.method = "GET";
    rc = hive__http_post(&rq, &rs);
    if (rc != HIVE_OK) {
        rc = unreachable(f, rc, "issuer's discovery document");
        goto out;
    }
    if (rs.status != 200 || hive_json_parse(&doc, rs.body, rs.len) != HIVE_OK ||
        hive_json_typeof(doc) != HIVE_JSON_OBJECT) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the issuer's discovery document (%.300s) "
                        "answered HTTP %ld without a JSON object", f->what, f->id, url, rs.status);
        goto out;
    }
    iss = str_field(doc, "issuer");
    if (iss == NULL || !same_issuer(iss, f->issuer)) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the discovery document at %.300s names another "
                        "issuer than provider '%s' has", f->what, f->id, url, f->provider);
        goto out;
    }
#define FILL(field, name)                                              \
    if (f->field == NULL && str_field(doc, name) != NULL)              \
        f->field = hive__strdup(str_field(doc, name));
    FILL(authorization_endpoint, "authorization_endpoint")
    FILL(device_endpoint, "device_authorization_endpoint")
    FILL(revocation_endpoint, "revocation_endpoint")
#undef FILL
out:
    hive_json_free(&doc);
    hive__http_response_free(&rs);
    free(url);
    return rc;
}

/*
 * The client and endpoints of cred's provider; need: the key that must be
 * there (or discovered), *endpoint then points to it.
 */
static hive_rc flow_load(flow *f, hive_store *s, const hive_cred *cred, const char *what, const char *need,
                         const char **endpoint)
{
    hive_cred *pc = NULL;
    char **slot;
    hive_rc rc;

    memset(f, 0, sizeof(*f));
    f->id = hive_cred_id(cred);
    f->what = what;
    f->provider = hive_cred_provider_id(cred);
    {
        hive_lookup lookup = hive__store_lookup(s);
        rc = hive__oauth2_client_load(&lookup, cred, what, &f->client);
    }
    if (rc != HIVE_OK)
        return rc;
    keep_secret(f, f->client.client_secret);
    rc = hive_store_get_credential(s, &pc, f->provider, HIVE_GET_NO_REFRESH);
    if (rc != HIVE_OK)
        return hive__fail_prefix(HIVE_ERR_REFRESH, "Failed to %s '%s'", what, f->id);
    f->authorization_endpoint = key_copy(pc, "authorization_endpoint");
    f->device_endpoint = key_copy(pc, "device_authorization_endpoint");
    f->revocation_endpoint = key_copy(pc, "revocation_endpoint");
    f->issuer = key_copy(pc, "issuer");
    hive_cred_free(&pc);
    slot = strcmp(need, "authorization_endpoint") == 0 ? &f->authorization_endpoint
           : strcmp(need, "revocation_endpoint") == 0 ? &f->revocation_endpoint : &f->device_endpoint;
    if (*slot == NULL && f->issuer != NULL) {
        if (!hive__url_allowed(f->issuer))
            return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': provider '%s' has an issuer that is not "
                              "https (plain http is allowed to loopback addresses only)", what, f->id, f->provider);
        rc = discover(f);
        if (rc != HIVE_OK)
            return rc;
    }
    if (*slot == NULL)
        return hive__fail(strcmp(need, "revocation_endpoint") == 0 ? HIVE_ERR_UNSUPPORTED : HIVE_ERR_REFRESH,
                          "Failed to %s '%s': provider '%s' has no %s%s: add the key %s to it, or an issuer "
                          "whose /.well-known/openid-configuration gives one", what, f->id, f->provider, need,
                          f->issuer ? " (nor does its issuer's discovery document)" : "", need);
    if (!hive__url_allowed(*slot))
        return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': provider '%s' has a %s that is not https "
                          "(plain http is allowed to loopback addresses only)", what, f->id, f->provider, need);
    *endpoint = *slot;
    return HIVE_OK;
}

/* --- scopes --------------------------------------------------------------- */

/* Add each space-separated scope of text to out, once. */
static void add_scopes(hive_buf *out, const char *text)
{
    const char *p = text;

    while (p != NULL && *p != '\0') {
        size_t n;
        bool seen = false;
        p += strspn(p, " ");
        n = strcspn(p, " ");
        for (size_t i = 0; n > 0 && !seen && i + n <= out->len; i++)
            seen = (i == 0 || out->data[i - 1] == ' ') && memcmp(out->data + i, p, n) == 0 &&
                   (i + n == out->len || out->data[i + n] == ' ');
        if (n > 0 && !seen) {
            if (out->len > 0)
                hive__buf_putc(out, ' ');
            hive__buf_append(out, p, n);
        }
        p += n;
    }
}

/* The scopes to ask for: the provider's, the credential's, the options'. */
static hive_rc scopes(char **out, const flow *f, const hive_cred *cred, const hive_login_options *o)
{
    hive_buf b = {0};
    size_t len = 0;
    char *own = key_copy(cred, "scope");
    hive_rc rc;

    add_scopes(&b, f->client.scope);
    add_scopes(&b, own);
    free(own);
    for (size_t i = 0; i < o->nscopes; i++)
        add_scopes(&b, o->scopes[i]);
    for (size_t i = 0; i < o->nextra_scopes; i++)
        add_scopes(&b, o->extra_scopes[i]);
    *out = NULL;
    if (b.len == 0 && !b.failed) {
        hive__buf_free(&b);
        return HIVE_OK;
    }
    rc = hive__buf_finish(&b, out, &len);
    hive__buf_free(&b);
    return rc;
}

/* --- the browser flow ---------------------------------------------------------- */

/* n random bytes as unpadded base64url (out: hive__b64_encoded_len(n) + 1). */
static hive_rc random_text(char *out, size_t n)
{
    unsigned char raw[32];
    hive_rc rc = hive__random(raw, n);

    if (rc == HIVE_OK)
        hive_base64_encode(out, raw, n, HIVE_B64_URL | HIVE_B64_NOPAD);
    hive_memzero(raw, sizeof(raw));
    return rc;
}

static hive_rc listen_loopback(int *fd, unsigned *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;   /* ephemeral */
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 8) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
        int e = errno;
        if (s >= 0)
            close(s);
        return hive__fail(HIVE_ERR_IO, "cannot listen on 127.0.0.1 for the login's redirect: %s", strerror(e));
    }
    *fd = s;
    *port = ntohs(a.sin_port);
    return HIVE_OK;
}

/* A small page for the browser; it says nothing the request carried. */
static void answer_page(int fd, int status, const char *title, const char *text)
{
    char page[1024];
    char head[512];
    int n = snprintf(page, sizeof(page),
                     "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hive-cred login</title></head>\n"
                     "<body style=\"font-family:sans-serif;margin:3em\"><h1>%s</h1><p>%s</p></body></html>\n",
                     title, text);
    int h = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
                     "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : status == 404 ? "Not Found" : status == 405 ? "Method Not Allowed"
                     : "Bad Request", n);

    if (n > 0 && (size_t)n < sizeof(page) && h > 0 && (size_t)h < sizeof(head)) {
        (void)!send(fd, head, (size_t)h, MSG_NOSIGNAL);
        (void)!send(fd, page, (size_t)n, MSG_NOSIGNAL);
    }
}

/* Read one request head from fd, within ms; its length, 0: none. */
static size_t read_request(int fd, char *buf, size_t size, long long ms)
{
    long long until = mono_ms() + ms;
    size_t len = 0;

    while (len + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = until - mono_ms();
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        n = recv(fd, buf + len, size - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
            return len;
    }
    return 0;
}

enum redirect { STRAY, GOT_CODE, GOT_ERROR };

/*
 * One request to the loopback port: the redirect (GET /callback with our
 * state), which ends the wait, or anything else, which is refused and
 * waited past. *query: the redirect's parameters.
 */
static enum redirect serve_one(int fd, const char *state, const char *issuer, hive_json **query)
{
    char buf[MAX_REQUEST];
    size_t len = read_request(fd, buf, sizeof(buf), CONN_TIMEOUT_MS);
    char *target;
    char *end;
    const char *got;
    const char *iss;
    hive_http_response as_body;
    enum redirect r = STRAY;

    *query = NULL;
    if (len == 0) {
        answer_page(fd, 400, "Bad request", "This is hive-cred's login redirect address.");
        goto out;
    }
    if (strncmp(buf, "GET ", 4) != 0) {
        answer_page(fd, 405, "Method not allowed", "This is hive-cred's login redirect address.");
        goto out;
    }
    target = buf + 4;
    end = strchr(target, ' ');
    if (end == NULL || strncmp(end, " HTTP/1.", 8) != 0 ||
        strncmp(target, CALLBACK_PATH, strlen(CALLBACK_PATH)) != 0 ||
        (target[strlen(CALLBACK_PATH)] != '?' && target + strlen(CALLBACK_PATH) != end)) {
        answer_page(fd, 404, "Not found", "This is hive-cred's login redirect address.");
        goto out;
    }
    *end = '\0';
    memset(&as_body, 0, sizeof(as_body));
    as_body.body = target + strlen(CALLBACK_PATH) + (target[strlen(CALLBACK_PATH)] == '?');
    as_body.len = strlen(as_body.body);
    *query = hive__oauth2_parse_body(&as_body);
    got = str_field(*query, "state");
    iss = str_field(*query, "iss");
    if (got == NULL || strlen(got) != strlen(state) || !hive_memeq(got, state, strlen(state))) {
        answer_page(fd, 400, "Not this login", "This answer does not belong to the login hive-cred is waiting "
                    "for (its state does not match). Nothing was done.");
    } else if (iss != NULL && issuer != NULL && !same_issuer(iss, issuer)) {
        /* RFC 9207: an answer from another authorization server */
        answer_page(fd, 400, "Not this login", "This answer comes from another authorization server than the one "
                    "hive-cred asked. Nothing was done.");
    } else if (str_field(*query, "error") != NULL) {
        answer_page(fd, 200, "Login failed", "The authorization server refused the login. hive-cred says why; "
                    "you can close this window.");
        r = GOT_ERROR;
    } else if (str_field(*query, "code") != NULL && *str_field(*query, "code") != '\0') {
        answer_page(fd, 200, "Logged in", "hive-cred has the authorization. You can close this window and go back "
                    "to the terminal.");
        r = GOT_CODE;
    } else {
        answer_page(fd, 400, "Bad request", "The answer has neither a code nor an error.");
    }
    if (r == STRAY)
        hive_json_free(query);
out:
    hive_memzero(buf, sizeof(buf));
    return r;
}

/* Wait for the browser's redirect; *query its parameters. */
static hive_rc await_redirect(flow *f, int lfd, const char *state, int timeout_s, hive_json **query)
{
    long long until = mono_ms() + (long long)timeout_s * 1000;
    int stray = 0;

    for (;;) {
        struct pollfd p = {lfd, POLLIN, 0};
        long long left = until - mono_ms();
        enum redirect r;
        int c;
        if (left <= 0)
            return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': no login came back from the browser within "
                              "%d s", f->what, f->id, timeout_s);
        if (poll(&p, 1, (int)(left < 60000 ? left : 60000)) <= 0)
            continue;
        c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        r = serve_one(c, state, f->issuer, query);
        close(c);
        if (r != STRAY)
            return HIVE_OK;
        if (++stray == MAX_STRAY)
            return hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': %d requests to the login's redirect address "
                              "were not the login's answer; gave up", f->what, f->id, stray);
    }
}

static hive_rc browser_flow(flow *f, const char *endpoint, const char *scope, const hive_login_options *o,
                            hive_json **tokens)
{
    char verifier[48];
    char challenge[48];
    char state[32];
    unsigned char digest[32];
    char redirect[64];
    hive_buf url = {0};
    hive_buf body = {0};
    char *url_text = NULL;
    size_t url_len = 0;
    hive_json *query = NULL;
    hive_json *obj = NULL;
    hive_login_prompt prompt;
    unsigned port = 0;
    long status = 0;
    int lfd = -1;
    hive_rc rc;

    rc = random_text(verifier, 32);   /* 43 characters: RFC 7636 4.1 */
    if (rc == HIVE_OK)
        rc = random_text(state, 16);
    if (rc != HIVE_OK)
        return rc;
    mbedtls_sha256_ret((const unsigned char *)verifier, strlen(verifier), digest, 0);
    hive_base64_encode(challenge, digest, sizeof(digest), HIVE_B64_URL | HIVE_B64_NOPAD);
    keep_secret(f, verifier);
    keep_secret(f, state);
    rc = listen_loopback(&lfd, &port);
    if (rc != HIVE_OK)
        goto out;
    snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u" CALLBACK_PATH, port);
    hive__buf_puts(&url, endpoint);
    hive__buf_putc(&url, strchr(endpoint, '?') ? '&' : '?');
    hive__oauth2_add_field(&body, "response_type", "code");   /* body: a scratch form, then the url's query */
    hive__oauth2_add_field(&body, "client_id", f->client.client_id);
    hive__oauth2_add_field(&body, "redirect_uri", redirect);
    if (scope != NULL)
        hive__oauth2_add_field(&body, "scope", scope);
    hive__oauth2_add_field(&body, "state", state);
    hive__oauth2_add_field(&body, "code_challenge", challenge);
    hive__oauth2_add_field(&body, "code_challenge_method", "S256");
    hive__buf_append(&url, body.data, body.len);
    hive__buf_free(&body);
    rc = hive__buf_finish(&url, &url_text, &url_len);
    if (rc != HIVE_OK)
        goto out;
    memset(&prompt, 0, sizeof(prompt));
    prompt.authorization_url = url_text;
    prompt.expires_in = o->timeout > 0 ? o->timeout : HIVE_LOGIN_DEFAULT_TIMEOUT;
    o->prompt(o->prompt_ctx, &prompt);
    rc = await_redirect(f, lfd, state, (int)prompt.expires_in, &query);
    close(lfd);   /* one answer: the port closes */
    lfd = -1;
    if (rc != HIVE_OK)
        goto out;
    if (str_field(query, "error") != NULL) {
        const char *desc = str_field(query, "error_description");
        char err_text[104];
        char desc_text[204];
        quote(f, err_text, sizeof(err_text), str_field(query, "error"));
        quote(f, desc_text, sizeof(desc_text), desc ? desc : "");
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the authorization server answered %s%s%s", f->what,
                        f->id, err_text, desc ? ": " : "", desc_text);
        goto out;
    }
    keep_secret(f, str_field(query, "code"));
    hive__oauth2_add_field(&body, "grant_type", "authorization_code");
    hive__oauth2_add_field(&body, "code", str_field(query, "code"));
    hive__oauth2_add_field(&body, "redirect_uri", redirect);
    hive__oauth2_add_field(&body, "code_verifier", verifier);
    rc = post_form(f, f->client.token_url, "token endpoint", &body, &status, &obj);
    if (rc == HIVE_OK)
        rc = take_tokens(f, status, &obj, tokens);
out:
    if (lfd >= 0)
        close(lfd);
    hive_json_free(&query);
    hive_json_free(&obj);
    hive__buf_free(&url);
    hive__buf_free(&body);
    free(url_text);
    hive_memzero(verifier, sizeof(verifier));
    hive_memzero(state, sizeof(state));
    return rc;
}

/* --- the device flow ---------------------------------------------------------- */

static hive_rc device_flow(flow *f, const char *endpoint, const char *scope, const hive_login_options *o,
                           hive_json **tokens)
{
    hive_buf body = {0};
    hive_json *auth = NULL;
    hive_json *obj = NULL;
    hive_login_prompt prompt;
    const char *device_code;
    long status = 0;
    long interval;
    long expires;
    long long until;
    hive_rc rc;

    if (scope != NULL)
        hive__oauth2_add_field(&body, "scope", scope);
    rc = post_form(f, endpoint, "device authorization endpoint", &body, &status, &auth);
    if (rc != HIVE_OK)
        goto out;
    if (status < 200 || status >= 300) {
        rc = refused(f, "device authorization endpoint", status, auth);
        goto out;
    }
    device_code = str_field(auth, "device_code");
    memset(&prompt, 0, sizeof(prompt));
    prompt.device = true;
    prompt.user_code = str_field(auth, "user_code");
    prompt.verification_uri = str_field(auth, "verification_uri");
    if (prompt.verification_uri == NULL)
        prompt.verification_uri = str_field(auth, "verification_url");   /* as Google names it */
    prompt.verification_uri_complete = str_field(auth, "verification_uri_complete");
    expires = seconds_field(auth, "expires_in", -1);
    interval = seconds_field(auth, "interval", DEVICE_INTERVAL_S);
    if (device_code == NULL || prompt.user_code == NULL || prompt.verification_uri == NULL || expires <= 0 ||
        interval < 0) {
        rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the device authorization endpoint's answer lacks "
                        "%s", f->what, f->id, device_code == NULL ? "a device_code" : prompt.user_code == NULL ?
                        "a user_code" : prompt.verification_uri == NULL ? "a verification_uri" :
                        "a valid expires_in and interval");
        goto out;
    }
    keep_secret(f, device_code);
    if (expires > DEVICE_MAX_WAIT_S)
        expires = DEVICE_MAX_WAIT_S;
    if (interval == 0)
        interval = 1;
    prompt.expires_in = expires;
    o->prompt(o->prompt_ctx, &prompt);
    until = mono_ms() + (long long)expires * 1000;
    for (;;) {
        const char *err;
        if (mono_ms() + interval * 1000L >= until) {
            rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the device code expired before the login was "
                            "completed (the user had %ld s to enter it)", f->what, f->id, expires);
            goto out;
        }
        sleep_ms(interval * 1000L);
        hive__oauth2_add_field(&body, "grant_type", DEVICE_GRANT);
        hive__oauth2_add_field(&body, "device_code", device_code);
        hive_json_free(&obj);
        rc = post_form(f, f->client.token_url, "token endpoint", &body, &status, &obj);
        if (rc != HIVE_OK)
            goto out;
        err = status >= 400 ? str_field(obj, "error") : NULL;
        if (err != NULL && strcmp(err, "authorization_pending") == 0)
            continue;
        if (err != NULL && strcmp(err, "slow_down") == 0) {
            interval += 5;   /* RFC 8628 3.5 */
            continue;
        }
        if (err != NULL && strcmp(err, "access_denied") == 0)
            rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the user denied the request (access_denied)",
                            f->what, f->id);
        else if (err != NULL && strcmp(err, "expired_token") == 0)
            rc = hive__fail(HIVE_ERR_REFRESH, "Failed to %s '%s': the device code expired before the login was "
                            "completed (expired_token)", f->what, f->id);
        else
            rc = take_tokens(f, status, &obj, tokens);
        goto out;
    }
out:
    hive_json_free(&auth);
    hive_json_free(&obj);
    hive__buf_free(&body);
    return rc;
}

/* --- saving ------------------------------------------------------------------ */

/* The "refresh" that writes a login's tokens (p->ctx) into cred. */
static hive_rc apply_login(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    const hive_json *tokens = p->ctx;
    const char *rt = str_field(tokens, "refresh_token");
    hive_rc rc = HIVE_OK;

    (void)lookup;
    if ((rt == NULL || *rt == '\0') && hive_cred_get_key(cred, "refresh_token", NULL) != NULL)
        rc = hive_cred_remove_key(cred, "refresh_token");   /* an older grant's */
    if (rc == HIVE_OK)
        rc = hive__oauth2_apply_tokens(cred, tokens);
    if (rc == HIVE_OK)
        rc = hive_cred_set_auto_refresh(cred, true);
    return rc;
}

static hive_rc save_login(hive_store *s, hive_cred **out, hive_cred *made, const char *id, hive_json *tokens)
{
    hive_provider via = HIVE_PROVIDER_INIT;
    hive_time now = hive_time_now();
    hive_rc rc;

    via.id = "login";
    via.refresh = apply_login;
    via.ctx = tokens;
    if (made == NULL)
        return hive__store_refresh_via(s, out, id, &via);
    rc = apply_login(&via, NULL, made);
    if (rc == HIVE_OK)
        rc = hive_cred_set_time(made, HIVE_CRED_LAST_REFRESHED, &now);
    if (rc == HIVE_OK)
        rc = hive_store_save(s, made);
    if (rc == HIVE_OK && out != NULL)
        rc = hive_cred_clone(out, made);
    return rc;
}

hive_rc hive_store_login(hive_store *s, hive_cred **out, const char *id, const hive_login_options *o)
{
    static const char what[] = "log in for credential";
    hive_cred *cred = NULL;
    hive_json *tokens = NULL;
    bool made = false;
    char *scope = NULL;
    const char *endpoint = NULL;
    flow f;
    hive_rc rc;

    hive__clear_error();
    memset(&f, 0, sizeof(f));
    if (o != NULL && hive__check_size(o->size, sizeof(*o), "hive_login_options", "HIVE_LOGIN_OPTIONS_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
    if (s == NULL || id == NULL || o == NULL || o->prompt == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    hive_store_invalidate(s, id);
    rc = hive_store_get_credential(s, &cred, id, HIVE_GET_NO_REFRESH);
    if (rc == HIVE_ERR_NOT_FOUND && o->provider_id != NULL) {
        made = true;
        rc = hive_cred_new(&cred, id, "oauth2");
        if (rc == HIVE_OK)
            rc = hive_cred_set_provider_id(cred, o->provider_id);
    }
    if (rc != HIVE_OK)
        goto out;
    if (hive_cred_get_type(cred) != HIVE_TYPE_OAUTH2) {
        rc = hive__fail(HIVE_ERR_INVALID, "Failed to %s '%s': it has type %s; a login fills oauth2 credentials",
                        what, id, hive_cred_type_str(cred));
        goto out;
    }
    if (o->provider_id != NULL && hive_cred_provider_id(cred) != NULL &&
        strcmp(o->provider_id, hive_cred_provider_id(cred)) != 0) {
        rc = hive__fail(HIVE_ERR_INVALID, "Failed to %s '%s': its provider is '%s', not '%s'", what, id,
                        hive_cred_provider_id(cred), o->provider_id);
        goto out;
    }
    if (o->provider_id != NULL && hive_cred_provider_id(cred) == NULL)
        rc = hive_cred_set_provider_id(cred, o->provider_id);
    if (rc == HIVE_OK)
        rc = flow_load(&f, s, cred, what, o->device ? "device_authorization_endpoint" : "authorization_endpoint",
                       &endpoint);
    if (rc == HIVE_OK)
        rc = scopes(&scope, &f, cred, o);
    if (rc == HIVE_OK)
        rc = o->device ? device_flow(&f, endpoint, scope, o, &tokens) : browser_flow(&f, endpoint, scope, o, &tokens);
    /* RFC 6749 5.1: an answer without "scope" granted what was asked;
     * the credential records the grant in its "scope" key either way, for
     * the usage specs' required scopes to be checked against */
    if (rc == HIVE_OK && scope != NULL && *scope != '\0' && hive_json_get(tokens, "scope") == NULL)
        rc = hive_json_set(tokens, "scope", hive_json_new_string(scope, strlen(scope)));
    if (rc == HIVE_OK)
        rc = save_login(s, out, made ? cred : NULL, id, tokens);
out:
    flow_free(&f);
    free(scope);
    hive_json_free(&tokens);
    hive_cred_free(&cred);
    return rc;
}

/* --- revocation --------------------------------------------------------------- */

static hive_rc revoke_one(flow *f, const char *endpoint, const char *token, const char *hint)
{
    hive_buf body = {0};
    hive_json *obj = NULL;
    long status = 0;
    hive_rc rc;

    keep_secret(f, token);
    hive__oauth2_add_field(&body, "token", token);
    hive__oauth2_add_field(&body, "token_type_hint", hint);
    rc = post_form(f, endpoint, "revocation endpoint", &body, &status, &obj);
    if (rc == HIVE_OK && status != 200)   /* RFC 7009 2.2: 200, also for a token already invalid */
        rc = refused(f, "revocation endpoint", status, obj);
    hive_json_free(&obj);
    return rc;
}

hive_rc hive_store_revoke(hive_store *s, const char *id, int *revoked)
{
    static const char what[] = "revoke the tokens of credential";
    static const char *const kinds[] = {"refresh_token", "access_token"};
    char *sent[2] = {NULL, NULL};
    hive_cred *cred = NULL;
    const char *endpoint = NULL;
    int done = 0;
    flow f;
    hive_rc rc;
    hive_rc saved = HIVE_OK;

    hive__clear_error();
    memset(&f, 0, sizeof(f));
    if (s == NULL || id == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    hive_store_invalidate(s, id);
    rc = hive_store_get_credential(s, &cred, id, HIVE_GET_NO_REFRESH);
    if (rc != HIVE_OK)
        return rc;
    if (hive_cred_get_key(cred, "refresh_token", NULL) == NULL && hive_cred_get_key(cred, "access_token", NULL) == NULL) {
        rc = hive__fail(HIVE_ERR_KEY_NOT_FOUND, "Credential '%s' holds no refresh_token or access_token to revoke", id);
        goto out;
    }
    rc = flow_load(&f, s, cred, what, "revocation_endpoint", &endpoint);
    /* the refresh token first: revoking it ends the grant, so no new
     * access token can be made from it while the old one is revoked */
    for (size_t i = 0; rc == HIVE_OK && i < 2; i++) {
        const char *v = hive_cred_get_key(cred, kinds[i], NULL);
        if (v == NULL || *v == '\0')
            continue;
        rc = revoke_one(&f, endpoint, v, kinds[i]);
        if (rc == HIVE_OK) {
            sent[i] = hive__strdup(v);
            done++;
        }
    }
    if (done > 0) {
        /* remove what was revoked, from the credential as it is now
         * (hive_store_save waits for a refresh under way) */
        char *why = rc != HIVE_OK ? hive__strdup(hive_last_error()) : NULL;
        hive_cred *now = NULL;
        hive_store_invalidate(s, id);
        saved = hive_store_get_credential(s, &now, id, HIVE_GET_NO_REFRESH);
        for (size_t i = 0; saved == HIVE_OK && i < 2; i++) {
            const char *v = sent[i] ? hive_cred_get_key(now, kinds[i], NULL) : NULL;
            if (v != NULL && strcmp(v, sent[i]) == 0)
                saved = hive_cred_remove_key(now, kinds[i]);
        }
        if (saved == HIVE_OK && hive_cred_get_key(now, "refresh_token", NULL) == NULL)
            saved = hive_cred_set_auto_refresh(now, false);   /* nothing to refresh with until a login */
        if (saved == HIVE_OK)
            saved = hive_store_save(s, now);
        hive_cred_free(&now);
        if (rc != HIVE_OK)
            hive__fail(rc, "%s", why ? why : "revocation failed");
        free(why);
        if (rc == HIVE_OK)
            rc = saved;
    }
out:
    for (size_t i = 0; i < 2; i++)
        hive__free_str(sent[i]);
    flow_free(&f);
    hive_cred_free(&cred);
    if (rc == HIVE_OK && revoked != NULL)
        *revoked = done;
    return rc;
}
