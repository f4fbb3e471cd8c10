/*
 * http1.c - plain HTTP/1.1 POSTs spoken directly over one kept-alive TCP
 * connection, for etcd:// (its gateway on a trusted network or this
 * machine): no libcurl, whose loading alone costs a launch more than
 * everything else it does, and never a proxy. Every wait is bounded by
 * the request's deadline.
 */
#include "http.h"
#include "buf.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 65536

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hive__http1_close(hive_http1_conn *c)
{
    /* a forked child does not close its parent's connection under it */
    if (c->fd >= 0 && c->pid == getpid())
        close(c->fd);
    c->fd = -1;
}

/* Wait until fd is ready for events, or the deadline passes. */
static hive_rc wait_fd(int fd, short events, int64_t deadline, const char *what)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int64_t left = deadline - now_ms();
        int n;
        if (left <= 0)
            return hive__fail(HIVE_ERR_NETWORK, "no answer in time (%s)", what);
        n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return HIVE_OK;
        if (n < 0 && errno != EINTR)
            return hive__fail(HIVE_ERR_NETWORK, "poll: %s", strerror(errno));
    }
}

/* A TCP connection to "host:port" ("[v6]:port") within the deadline. */
static hive_rc tcp_connect(int *out, const char *hostport, int64_t deadline)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    const char *h = hostport;
    size_t hl = colon ? (size_t)(colon - hostport) : 0;
    struct addrinfo hints = {0};
    struct addrinfo *ai = NULL;
    int fd = -1;
    int err = ECONNREFUSED;
    hive_rc rc = HIVE_OK;

    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (colon == NULL || hl == 0 || hl >= sizeof(host))
        return hive__fail(HIVE_ERR_NETWORK, "'%.200s' is not HOST:PORT", hostport);
    memcpy(host, h, hl);
    host[hl] = '\0';
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
        return hive__fail(HIVE_ERR_NETWORK, "cannot resolve host '%.200s'", host);
    for (const struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        socklen_t len = sizeof(err);
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (errno != EINPROGRESS)
            err = errno;
        else if ((rc = wait_fd(fd, POLLOUT, deadline, "connecting")) == HIVE_OK &&
                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
            break;
        close(fd);
        fd = -1;
        if (rc != HIVE_OK)
            break;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return rc != HIVE_OK ? rc : hive__fail(HIVE_ERR_NETWORK, "cannot connect: %s", strerror(err));
    {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    *out = fd;
    return HIVE_OK;
}

static hive_rc send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            hive_rc rc = wait_fd(fd, POLLOUT, deadline, "sending");
            if (rc != HIVE_OK)
                return rc;
        } else if (w < 0 && errno != EINTR) {
            return hive__fail(HIVE_ERR_NETWORK, "send: %s", strerror(errno));
        }
    }
    return HIVE_OK;
}

/* More bytes into b; *eof when the peer closed. */
static hive_rc recv_more(int fd, hive_buf *b, int64_t deadline, bool *eof)
{
    char chunk[16384];

    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r > 0) {
            hive__buf_append(b, chunk, (size_t)r);
            hive_memzero(chunk, (size_t)r);
            if (b->len > HIVE_HTTP_MAX_BODY + MAX_HEAD)
                return hive__fail(HIVE_ERR_TOO_LARGE, "the answer is larger than %u bytes", HIVE_HTTP_MAX_BODY);
            return b->failed ? hive__fail(HIVE_ERR_NOMEM, "out of memory") : HIVE_OK;
        }
        if (r == 0) {
            *eof = true;
            return HIVE_OK;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            hive_rc rc = wait_fd(fd, POLLIN, deadline, "waiting for the answer");
            if (rc != HIVE_OK)
                return rc;
        } else if (errno != EINTR) {
            return hive__fail(HIVE_ERR_NETWORK, "recv: %s", strerror(errno));
        }
    }
}

/* The value of header name (lower case, with its ':') in head, which ends
 * at end; NULL when absent. */
static const char *header(const char *head, const char *end, const char *name)
{
    size_t n = strlen(name);

    for (const char *l = memchr(head, '\n', (size_t)(end - head)); l != NULL && l + 1 < end;
         l = memchr(l + 1, '\n', (size_t)(end - l - 1))) {
        const char *h = l + 1;
        size_t i = 0;
        while (i < n && h + i < end && (h[i] | 0x20) == name[i])
            i++;
        if (i == n) {
            h += n;
            while (h < end && (*h == ' ' || *h == '\t'))
                h++;
            return h;
        }
    }
    return NULL;
}

/* A chunked body, in[0..len), into out: 1 complete, 0 more needed, -1 bad. */
static int dechunk(const char *in, size_t len, hive_buf *out)
{
    size_t i = 0;

    for (;;) {
        const char *crlf = NULL;
        size_t n = 0;
        size_t digits = 0;
        for (size_t k = i; k + 1 < len && crlf == NULL; k++)
            if (in[k] == '\r' && in[k + 1] == '\n')
                crlf = in + k;
        if (crlf == NULL)
            return len - i > 1024 ? -1 : 0;
        for (const char *d = in + i; d < crlf && hive__hexval(*d) >= 0; d++, digits++) {
            n = n * 16 + (size_t)hive__hexval(*d);
            if (n > HIVE_HTTP_MAX_BODY)
                return -1;
        }
        if (digits == 0)
            return -1;
        i = (size_t)(crlf - in) + 2;
        if (n == 0)
            return 1;         /* trailers, if any, are not needed */
        if (len - i < n + 2)
            return 0;
        if (in[i + n] != '\r' || in[i + n + 1] != '\n')
            return -1;
        hive__buf_append(out, in + i, n);
        i += n + 2;
    }
}

int hive__http1_parse(const char *data, size_t len, bool eof, hive_http_response *rs, bool *keep_alive)
{
    const char *end = NULL;
    const char *cl;
    const char *te;
    const char *conn;
    hive_buf body = {0};
    size_t hlen;
    int done = 0;
    long status = 0;

    for (size_t k = 0; k + 3 < len && end == NULL; k++)
        if (memcmp(data + k, "\r\n\r\n", 4) == 0)
            end = data + k;
    if (end == NULL)
        return len > MAX_HEAD || eof ? -1 : 0;
    if (len < 12 || memcmp(data, "HTTP/1.", 7) != 0 || data[8] != ' ')
        return -1;
    for (size_t k = 9; k < 12; k++) {
        if (data[k] < '0' || data[k] > '9')
            return -1;
        status = status * 10 + (data[k] - '0');
    }
    hlen = (size_t)(end - data) + 4;
    cl = header(data, end + 2, "content-length:");
    te = header(data, end + 2, "transfer-encoding:");
    conn = header(data, end + 2, "connection:");
    if (te != NULL && (size_t)(end - te) >= 7 && strncmp(te, "chunked", 7) == 0) {
        done = dechunk(data + hlen, len - hlen, &body);
    } else if (te != NULL) {
        done = -1;            /* an encoding hive does not read */
    } else if (cl != NULL) {
        size_t n = 0;
        const char *d = cl;
        for (; d < end && *d >= '0' && *d <= '9'; d++) {
            n = n * 10 + (size_t)(*d - '0');
            if (n > HIVE_HTTP_MAX_BODY)
                return -1;
        }
        if (d == cl)
            return -1;
        if (len - hlen >= n) {
            hive__buf_append(&body, data + hlen, n);
            done = 1;
        }
    } else if (eof) {
        hive__buf_append(&body, data + hlen, len - hlen);
        done = 1;
    }
    if (done == 0 && eof)
        done = -1;            /* cut short */
    if (done == 1) {
        memset(rs, 0, sizeof(*rs));
        rs->retry_after = -1;
        rs->status = status;
        if (hive__buf_finish(&body, &rs->body, &rs->len) != HIVE_OK) {
            hive__clear_error();
            done = -1;
        }
        /* framed by its length or its chunks, in HTTP/1.1, and not closing */
        *keep_alive = !eof && (cl != NULL || te != NULL) && data[7] == '1' &&
                      !(conn != NULL && (size_t)(end - conn) >= 5 && strncmp(conn, "close", 5) == 0);
    }
    hive__buf_free(&body);
    return done;
}

hive_rc hive__http1_post(hive_http1_conn *c, const char *hostport, const char *path, const char *const *headers,
                         const char *body, size_t len, long timeout_ms, hive_http_response *rs)
{
    int64_t deadline = now_ms() + timeout_ms;
    hive_buf rq = {0};
    hive_buf in = {0};
    char num[32];
    bool reused = c->fd >= 0 && c->pid == getpid() && strcmp(c->hostport, hostport) == 0;
    bool eof = false;
    bool keep = false;
    int done = 0;
    hive_rc rc = HIVE_OK;

    memset(rs, 0, sizeof(*rs));
    rs->retry_after = -1;
    if (!reused) {
        hive__http1_close(c);
        if (strlen(hostport) >= sizeof(c->hostport))
            return hive__fail(HIVE_ERR_NETWORK, "'%.200s' is too long for a host", hostport);
        rc = tcp_connect(&c->fd, hostport, deadline);
        if (rc != HIVE_OK) {
            c->fd = -1;
            return rc;
        }
        c->pid = getpid();
        memcpy(c->hostport, hostport, strlen(hostport) + 1);
    }
    hive__buf_puts(&rq, "POST ");
    hive__buf_puts(&rq, path);
    hive__buf_puts(&rq, " HTTP/1.1\r\nHost: ");
    hive__buf_puts(&rq, hostport);
    hive__buf_puts(&rq, "\r\nUser-Agent: hive/" HIVE_VERSION "\r\nContent-Length: ");
    snprintf(num, sizeof(num), "%zu", len);
    hive__buf_puts(&rq, num);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hive__buf_puts(&rq, "\r\n");
        hive__buf_puts(&rq, headers[i]);
    }
    hive__buf_puts(&rq, "\r\n\r\n");
    hive__buf_append(&rq, body, len);
    if (rq.failed)
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (rc == HIVE_OK)
        rc = send_all(c->fd, rq.data, rq.len, deadline);
    while (rc == HIVE_OK && done == 0) {
        rc = recv_more(c->fd, &in, deadline, &eof);
        if (rc == HIVE_OK && (done = hive__http1_parse(in.data ? in.data : "", in.len, eof, rs, &keep)) < 0)
            rc = hive__fail(HIVE_ERR_NETWORK, eof ? "the answer was cut short" : "the answer is not HTTP hive reads");
    }
    if (rc != HIVE_OK || !keep)
        hive__http1_close(c);
    hive__buf_free(&rq);
    if (rc != HIVE_OK && reused && in.len == 0 && now_ms() < deadline) {
        /* the kept connection was closed while idle: nothing was read from
         * it, so nothing was done; once more, on a new one */
        hive__buf_free(&in);
        hive__clear_error();
        return hive__http1_post(c, hostport, path, headers, body, len, timeout_ms, rs);
    }
    hive__buf_free(&in);
    return rc;
}
