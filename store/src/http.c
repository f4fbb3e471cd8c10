/*
 * http.c - POST through libcurl, opened with dlopen on first use.
 */
#include "http.h"
#include "buf.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct curl_api {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*global_init)(long);
    curl_version_info_data *(*version_info)(CURLversion);
    bool loaded;
    char error[256];
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static const char *library_path;   /* NULL: the system's libcurl */

/* 7.85.0: CURLOPT_PROTOCOLS_STR, which keeps a request to http and https */
#define CURL_MIN_VERSION 0x075500
#define CURL_MIN_TEXT "7.85.0"

void hive__http_use_library(const char *path)
{
    library_path = path;
}

/* What this libcurl must offer, checked once when it is loaded. */
static bool curl_usable(void)
{
    const curl_version_info_data *v = api.version_info(CURLVERSION_NOW);

    if (v == NULL) {
        snprintf(api.error, sizeof(api.error), "libcurl does not say its version");
        return false;
    }
    if (v->version_num < CURL_MIN_VERSION) {
        snprintf(api.error, sizeof(api.error), "libcurl %.32s is too old: hive needs libcurl "
                 CURL_MIN_TEXT " or newer (CURLOPT_PROTOCOLS_STR)", v->version ? v->version : "?");
        return false;
    }
    if (!(v->features & CURL_VERSION_SSL)) {
        snprintf(api.error, sizeof(api.error), "libcurl %.32s was built without TLS: hive needs https",
                 v->version ? v->version : "?");
        return false;
    }
    return true;
}

static void load_curl(void)
{
    static const char *const names[] = {"libcurl.so.4", "libcurl.so", "libcurl-gnutls.so.4"};
    void *h = NULL;

    if (library_path != NULL)
        h = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
    for (size_t i = 0; library_path == NULL && h == NULL && i < sizeof(names) / sizeof(names[0]); i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        /* dlerror's text names a file, never a secret; cut, it is still clear */
        snprintf(api.error, sizeof(api.error), "cannot load libcurl (%.200s)", dlerror());
        return;
    }
#define SYM(field, name)                                                   \
    do {                                                                   \
        *(void **)(&api.field) = dlsym(h, name);                           \
        if (api.field == NULL) {                                           \
            snprintf(api.error, sizeof(api.error), "libcurl lacks %s", name); \
            return;                                                        \
        }                                                                  \
    } while (0)
    SYM(easy_init, "curl_easy_init");
    SYM(easy_setopt, "curl_easy_setopt");
    SYM(easy_perform, "curl_easy_perform");
    SYM(easy_getinfo, "curl_easy_getinfo");
    SYM(easy_cleanup, "curl_easy_cleanup");
    SYM(easy_strerror, "curl_easy_strerror");
    SYM(slist_append, "curl_slist_append");
    SYM(slist_free_all, "curl_slist_free_all");
    SYM(global_init, "curl_global_init");
    SYM(version_info, "curl_version_info");
#undef SYM
    if (!curl_usable())
        return;
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(api.error, sizeof(api.error), "libcurl failed to initialise");
        return;
    }
    api.loaded = true;
}

/* ASCII-only, whatever the locale (Turkish folds 'I' elsewhere). */
static bool ascii_prefix(const char *s, const char *lower_prefix)
{
    for (; *lower_prefix != '\0'; s++, lower_prefix++) {
        char c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        if (c != *lower_prefix)
            return false;
    }
    return true;
}

/*
 * Whether the host of an http(s) URL is a loopback address, as libcurl will
 * read it: the host is what follows the last '@' of the authority. Only
 * spellings with one meaning count: "localhost", a canonical dotted quad in
 * 127.0.0.0/8 (libcurl reads "0127.0.0.1" as octal, 87.0.0.1), "[::1]".
 * Anything else (127.1, 0x7f.1, a trailing dot, [::ffff:127.0.0.1]) is
 * taken as not loopback: refused, never wrongly trusted.
 */
static bool url_is_loopback(const char *url)
{
    const char *host;
    const char *end;
    const char *at;
    size_t n;
    char h[256];

    if (ascii_prefix(url, "https://"))
        host = url + 8;
    else if (ascii_prefix(url, "http://"))
        host = url + 7;
    else
        return false;
    end = host + strcspn(host, "/?#");
    /* userinfo is not the host: http://127.0.0.1@evil/ goes to evil */
    for (at = end; at > host && at[-1] != '@'; at--)
        ;
    if (at > host)
        host = at;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (close == NULL || (close + 1 != end && close[1] != ':'))
            return false;
        n = (size_t)(close - host - 1);
        return n == 3 && memcmp(host + 1, "::1", 3) == 0;
    }
    n = strcspn(host, ":/?#");
    if (host + n > end)
        n = (size_t)(end - host);
    if (n == 0 || n >= sizeof(h))
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    if (n == 9 && ascii_prefix(h, "localhost"))
        return true;
    {
        struct in_addr a;
        return inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
    }
}

bool hive__url_allowed(const char *url)
{
    return ascii_prefix(url, "https://") || (ascii_prefix(url, "http://") && url_is_loopback(url));
}

void hive__form_encode(hive_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            hive__buf_putc(b, (char)c);
        } else if (c == ' ') {
            hive__buf_putc(b, '+');
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            hive__buf_append(b, e, 3);
        }
    }
}

struct sink {
    hive_buf buf;
    bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *ctx)
{
    struct sink *s = ctx;
    size_t len = size * n;

    if (s->buf.len + len > HIVE_HTTP_MAX_BODY) {
        s->too_big = true;
        return 0;
    }
    hive__buf_append(&s->buf, ptr, len);
    return s->buf.failed ? 0 : len;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ctx)
{
    hive_http_response *rs = ctx;
    size_t len = size * n;

    if (len > 12 && ascii_prefix(ptr, "retry-after:")) {
        char tmp[32];
        size_t k = len - 12 < sizeof(tmp) - 1 ? len - 12 : sizeof(tmp) - 1;
        memcpy(tmp, ptr + 12, k);
        tmp[k] = '\0';
        rs->retry_after = strtol(tmp, NULL, 10);
    }
    if (len > 13 && ascii_prefix(ptr, "content-type:")) {
        const char *v = ptr + 13;
        size_t vl = len - 13;
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl >= sizeof(rs->content_type))
            vl = sizeof(rs->content_type) - 1;
        memcpy(rs->content_type, v, vl);
        rs->content_type[vl] = '\0';
    }
    return len;
}

hive_rc hive__http_post(const hive_http_request *rq, hive_http_response *rs)
{
    CURL *c;
    struct curl_slist *hdrs = NULL;
    struct sink sink = {{0}, false};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc;
    hive_rc rc = HIVE_OK;

    memset(rs, 0, sizeof(*rs));
    rs->retry_after = -1;
    if (!hive__url_allowed(rq->url))
        return hive__fail(HIVE_ERR_INVALID, "refusing %s: only https, or plain http to a loopback "
                          "address, may carry credentials", ascii_prefix(rq->url, "http://")
                          ? "plain http to a non-loopback host" : "a URL that is not http(s)");
    pthread_once(&api_once, load_curl);
    if (!api.loaded)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "%s", api.error);
    c = api.easy_init();
    if (c == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "libcurl: cannot make a handle");
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        struct curl_slist *n = api.slist_append(hdrs, rq->headers[i]);
        if (n == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            goto out;
        }
        hdrs = n;
    }
    /* Every option is checked: a libcurl that ignored one of the security
     * options (protocols, redirects, TLS verification, proxy) must not send. */
#define SET(opt, val)                                                                       \
    do {                                                                                    \
        if ((cc = api.easy_setopt(c, opt, val)) != CURLE_OK) {                               \
            rc = hive__fail(HIVE_ERR_UNSUPPORTED, "libcurl refused " #opt ": %s; nothing was sent", \
                            api.easy_strerror(cc));                                         \
            goto out;                                                                       \
        }                                                                                   \
    } while (0)
    SET(CURLOPT_URL, rq->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    /* libcurl honours http_proxy and friends: a request to this machine
     * goes straight there, never through a proxy elsewhere (plain http to
     * loopback would hand it the secrets) */
    if (url_is_loopback(rq->url))
        SET(CURLOPT_PROXY, "");
    if (rq->ca_file != NULL)
        SET(CURLOPT_CAINFO, rq->ca_file);
    if (rq->cert_file != NULL)
        SET(CURLOPT_SSLCERT, rq->cert_file);
    if (rq->key_file != NULL)
        SET(CURLOPT_SSLKEY, rq->key_file);
    if (rq->method != NULL && strcmp(rq->method, "GET") == 0) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        SET(CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
    }
    SET(CURLOPT_HTTPHEADER, hdrs);
    SET(CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, on_data);
    SET(CURLOPT_WRITEDATA, &sink);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, rs);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_USERAGENT, "hive/" HIVE_VERSION);
#undef SET
    cc = api.easy_perform(c);
    {
        long sent = 0;
        rs->sent = api.easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK || sent > 0;
    }
    if (cc != CURLE_OK) {
        if (sink.too_big)
            rc = hive__fail(HIVE_ERR_TOO_LARGE, "the answer is larger than %u bytes", HIVE_HTTP_MAX_BODY);
        else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
                 cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_ISSUER_ERROR)
            /* an answer we refuse: trying again will not change it */
            rc = hive__fail(HIVE_ERR_PERM, "TLS certificate not trusted: %s",
                            *errbuf ? errbuf : api.easy_strerror(cc));
        else
            rc = hive__fail(HIVE_ERR_NETWORK, "%s", *errbuf ? errbuf : api.easy_strerror(cc));
        goto out;
    }
    if (api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status) != CURLE_OK) {
        rc = hive__fail(HIVE_ERR_NETWORK, "libcurl gave no HTTP status");
        goto out;
    }
    rc = hive__buf_finish(&sink.buf, &rs->body, &rs->len);
out:
    hive__buf_free(&sink.buf);
    if (hdrs != NULL) {
        /* the copies may hold a client secret or a token */
        for (struct curl_slist *h = hdrs; h != NULL; h = h->next)
            hive_memzero(h->data, strlen(h->data));
        api.slist_free_all(hdrs);
    }
    api.easy_cleanup(c);
    return rc;
}

void hive__http_response_free(hive_http_response *rs)
{
    hive__free_secret(rs->body, rs->len + 1);
    rs->body = NULL;
    rs->len = 0;
}
