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
#include <strings.h>

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
    bool loaded;
    char error[256];
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void load_curl(void)
{
    static const char *const names[] = {"libcurl.so.4", "libcurl.so", "libcurl-gnutls.so.4"};
    void *h = NULL;

    for (size_t i = 0; h == NULL && i < sizeof(names) / sizeof(names[0]); i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(api.error, sizeof(api.error), "cannot load libcurl (%s)", dlerror());
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
#undef SYM
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(api.error, sizeof(api.error), "libcurl failed to initialise");
        return;
    }
    api.loaded = true;
}

bool hive__url_allowed(const char *url)
{
    const char *host;
    const char *end;
    const char *at;
    size_t n;
    char h[256];

    if (strncasecmp(url, "https://", 8) == 0)
        return true;
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    host = url + 7;
    end = host + strcspn(host, "/?#");
    /* userinfo is not the host: http://127.0.0.1@evil/ goes to evil */
    for (at = end; at > host && at[-1] != '@'; at--)
        ;
    if (at > host)
        host = at;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (close == NULL)
            return false;
        n = (size_t)(close - host - 1);
        if (n >= sizeof(h))
            return false;
        memcpy(h, host + 1, n);
        h[n] = '\0';
        return strcmp(h, "::1") == 0;
    }
    n = strcspn(host, ":/?#");
    if (host + n > end)
        n = (size_t)(end - host);
    if (n == 0 || n >= sizeof(h))
        return false;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return true;
    /* 127.0.0.0/8, as a canonical dotted quad only: libcurl reads
     * "0127.0.0.1" as octal, 87.0.0.1 */
    {
        struct in_addr a;
        if (inet_pton(AF_INET, h, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127)
            return true;
    }
    return false;
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

    if (len > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
        char tmp[32];
        size_t k = len - 12 < sizeof(tmp) - 1 ? len - 12 : sizeof(tmp) - 1;
        memcpy(tmp, ptr + 12, k);
        tmp[k] = '\0';
        rs->retry_after = strtol(tmp, NULL, 10);
    }
    if (len > 13 && strncasecmp(ptr, "Content-Type:", 13) == 0) {
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
                          "address, may carry credentials", strncasecmp(rq->url, "http://", 7) == 0
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
    api.easy_setopt(c, CURLOPT_URL, rq->url);
    api.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    api.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    api.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rq->ca_file != NULL)
        api.easy_setopt(c, CURLOPT_CAINFO, rq->ca_file);
    if (rq->cert_file != NULL)
        api.easy_setopt(c, CURLOPT_SSLCERT, rq->cert_file);
    if (rq->key_file != NULL)
        api.easy_setopt(c, CURLOPT_SSLKEY, rq->key_file);
    if (rq->method != NULL && strcmp(rq->method, "GET") == 0) {
        api.easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        api.easy_setopt(c, CURLOPT_POST, 1L);
        api.easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        api.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
    }
    api.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
    api.easy_setopt(c, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    api.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    api.easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    api.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    api.easy_setopt(c, CURLOPT_HEADERDATA, rs);
    api.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    api.easy_setopt(c, CURLOPT_USERAGENT, "hive/" HIVE_VERSION);
    cc = api.easy_perform(c);
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
    api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
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
    hive_free_secret(rs->body, rs->len + 1);
    rs->body = NULL;
    rs->len = 0;
}
