/*
 * fake_curl.c - a stand-in for libcurl, loaded by test_http through
 * hive__http_use_library, to see what libhive does with a libcurl that is
 * too old or that refuses an option. It never touches the network.
 *   FAKE_CURL_VERSION  e.g. "7.74.0" (default 8.0.0)
 *   FAKE_CURL_NO_SSL   set: features without CURL_VERSION_SSL
 *   FAKE_CURL_REFUSE   an option number curl_easy_setopt refuses
 * fake_curl_performs counts the requests that would have been sent.
 */
/* the real prototypes, not the type-checking macros */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) int fake_curl_performs;

static char handle;
static char version[32];
static curl_version_info_data info;

curl_version_info_data *curl_version_info(CURLversion v)
{
    const char *want = getenv("FAKE_CURL_VERSION");
    unsigned a = 8, b = 0, c = 0;

    (void)v;
    if (want != NULL && sscanf(want, "%u.%u.%u", &a, &b, &c) != 3)
        return NULL;
    snprintf(version, sizeof(version), "%u.%u.%u", a, b, c);
    info.version = version;
    info.version_num = a << 16 | b << 8 | c;
    info.features = getenv("FAKE_CURL_NO_SSL") ? 0 : CURL_VERSION_SSL;
    return &info;
}

CURLcode curl_global_init(long flags)
{
    (void)flags;
    return CURLE_OK;
}

CURL *curl_easy_init(void)
{
    return (CURL *)&handle;
}

CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    const char *refuse = getenv("FAKE_CURL_REFUSE");

    (void)h;
    return refuse != NULL && atoi(refuse) == (int)opt ? CURLE_UNKNOWN_OPTION : CURLE_OK;
}

CURLcode curl_easy_perform(CURL *h)
{
    (void)h;
    fake_curl_performs++;
    return CURLE_COULDNT_CONNECT;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO what, ...)
{
    (void)h;
    (void)what;
    return CURLE_OK;
}

void curl_easy_cleanup(CURL *h)
{
    (void)h;
}

const char *curl_easy_strerror(CURLcode cc)
{
    return cc == CURLE_UNKNOWN_OPTION ? "An unknown option was passed in to libcurl" : "fake error";
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    struct curl_slist *n = calloc(1, sizeof(*n));
    struct curl_slist *last = list;

    if (n == NULL || (n->data = strdup(s)) == NULL) {
        free(n);
        return NULL;
    }
    if (list == NULL)
        return n;
    while (last->next != NULL)
        last = last->next;
    last->next = n;
    return list;
}

void curl_slist_free_all(struct curl_slist *list)
{
    while (list != NULL) {
        struct curl_slist *next = list->next;
        free(list->data);
        free(list);
        list = next;
    }
}
