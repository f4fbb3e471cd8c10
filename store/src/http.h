/*
 * http.h - one HTTPS POST, with libcurl loaded only when it is first
 * needed (dlopen), so that launches that need no network never pay for
 * libcurl's dependency tree.
 */
#ifndef HIVE_HTTP_H
#define HIVE_HTTP_H

#include "internal.h"

#include <sys/types.h>

typedef struct hive_http_request {
    const char *method;            /* NULL: POST */
    const char *url;
    const char *body;              /* form-encoded; secret: wiped by the caller */
    size_t body_len;
    const char *const *headers;    /* "Name: value", NULL-terminated; may hold secrets */
    const char *ca_file;           /* NULL: the system's CA bundle */
    const char *cert_file;         /* client certificate (PEM), or NULL */
    const char *key_file;          /* its private key (PEM), or NULL */
    long connect_timeout_ms;
    long timeout_ms;
} hive_http_request;

typedef struct hive_http_response {
    long status;
    char *body;                    /* NUL-terminated; wiped by hive__http_response_free */
    size_t len;
    char content_type[128];
    long retry_after;              /* seconds, from a Retry-After header; -1: none */
    bool sent;                     /* request bytes went out (so the server may have acted on it),
                                    * also when no answer came */
} hive_http_response;

#define HIVE_HTTP_MAX_BODY (1024u * 1024)

/*
 * One request (POST unless rq->method says GET). HIVE_ERR_NETWORK when no HTTP answer came (connection refused,
 * time-out, TLS failure); any HTTP status is HIVE_OK with rs->status set.
 * TLS certificates are always verified; plain http is refused unless the
 * host is a loopback address; a loopback address is never reached through
 * a proxy. libcurl 7.85.0 or newer with TLS: HIVE_ERR_UNSUPPORTED, saying
 * why, otherwise.
 */
HIVE_NODISCARD hive_rc hive__http_post(const hive_http_request *rq, hive_http_response *rs);
void hive__http_response_free(hive_http_response *rs);

/* A token endpoint's answer as an object: JSON, or form-encoded; NULL when
 * it is neither (oauth2.c). */
struct hive_json;
struct hive_json *hive__oauth2_parse_body(const hive_http_response *rs);

/* Whether url is https, or http to a loopback host ("localhost", a dotted
 * quad in 127.0.0.0/8, "[::1]"). A request to a loopback host never goes
 * through a proxy. */
bool hive__url_allowed(const char *url);

/* Plain HTTP/1.1 spoken directly (http1.c), for etcd://: one kept-alive
 * connection, opened again when the host changes, after a fork, or when
 * the server closed it while idle. Never through a proxy. */
typedef struct hive_http1_conn {
    int fd;                        /* -1: none */
    pid_t pid;                     /* the process that opened it */
    char hostport[300];
} hive_http1_conn;

/* POST body to http://hostport/path on c within timeout_ms; headers as
 * for hive__http_post (Content-Length and Host are added). Results as
 * hive__http_post's. */
HIVE_NODISCARD hive_rc hive__http1_post(hive_http1_conn *c, const char *hostport, const char *path, const char *const *headers,
                         const char *body, size_t len, long timeout_ms, hive_http_response *rs);
void hive__http1_close(hive_http1_conn *c);
/* An answer in data[0..len) (eof: the peer closed after it): 1 whole, with
 * rs set (rs->body the caller's) and whether the connection may be kept;
 * 0 more bytes needed; -1 not an answer hive reads. */
int hive__http1_parse(const char *data, size_t len, bool eof, hive_http_response *rs, bool *keep_alive);

/* Tests: load this file instead of the system's libcurl (before the first
 * request of the process). */
void hive__http_use_library(const char *path);

/* application/x-www-form-urlencoded encoding of s into b. */
struct hive_buf;
void hive__form_encode(struct hive_buf *b, const char *s, size_t len);

#endif
