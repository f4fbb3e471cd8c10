/*
 * httpd.h - a tiny HTTP listener on 127.0.0.1 for the unit tests: it
 * answers every connection with one canned response and keeps what it was
 * sent, so a test can see who was contacted and with what.
 */
#ifndef HIVE_TEST_HTTPD_H
#define HIVE_TEST_HTTPD_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct httpd {
    int fd;
    int port;
    const char *response;      /* the whole answer, status line to body */
    /* or, when set, the answer to this request */
    const char *(*respond)(struct httpd *h, const char *request);
    void *ctx;
    atomic_int connections;
    char request[16384];       /* the last request, NUL-terminated */
    pthread_t thread;
    atomic_bool stop;
} httpd;

/* Read one request: headers, then Content-Length bytes of body. */
static inline void httpd_read_request(httpd *h, int c)
{
    size_t got = 0;
    const char *body;

    for (;;) {
        ssize_t n = read(c, h->request + got, sizeof(h->request) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        h->request[got] = '\0';
        body = strstr(h->request, "\r\n\r\n");
        if (body != NULL) {
            const char *cl = strcasestr(h->request, "\r\nContent-Length:");
            size_t want = cl && cl < body ? strtoul(cl + 17, NULL, 10) : 0;
            if (got - (size_t)(body + 4 - h->request) >= want)
                break;
        }
        if (got == sizeof(h->request) - 1)
            break;
    }
    h->request[got] = '\0';
}

static inline void *httpd_run(void *arg)
{
    httpd *h = arg;

    while (!atomic_load(&h->stop)) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            break;
        if (atomic_load(&h->stop)) {
            close(c);
            break;
        }
        atomic_fetch_add(&h->connections, 1);
        httpd_read_request(h, c);
        {
            const char *answer = h->respond ? h->respond(h, h->request) : h->response;
            if (write(c, answer, strlen(answer)) < 0)
                perror("httpd write");
        }
        close(c);
    }
    return NULL;
}

/* Listen on 127.0.0.1 (a free port) and serve in a thread. */
static inline void httpd_start_with(httpd *h, const char *response,
                                    const char *(*respond)(struct httpd *, const char *), void *ctx)
{
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    int one = 1;

    memset(h, 0, sizeof(*h));
    h->response = response;
    h->respond = respond;
    h->ctx = ctx;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(h->fd, 0);
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(h->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(h->fd, 8), 0);
    cr_assert_eq(getsockname(h->fd, (struct sockaddr *)&a, &al), 0);
    h->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&h->thread, NULL, httpd_run, h), 0);
}

static inline void httpd_start(httpd *h, const char *response)
{
    httpd_start_with(h, response, NULL, NULL);
}

static inline void httpd_stop(httpd *h)
{
    struct sockaddr_in a = {0};
    int c = socket(AF_INET, SOCK_STREAM, 0);

    /* wake the accept() with a connection of our own */
    atomic_store(&h->stop, true);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)h->port);
    if (c >= 0 && connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
        perror("httpd stop");
    pthread_join(h->thread, NULL);
    if (c >= 0)
        close(c);
    close(h->fd);
}

/* A 200 answer carrying a JSON body, into buf. */
static inline const char *httpd_json(char *buf, size_t size, const char *body)
{
    int n = snprintf(buf, size, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    cr_assert(n > 0 && (size_t)n < size, "response too long for its buffer");
    return buf;
}

#endif
