/*
 * http.c: which URLs may carry credentials, no proxy for loopback, and a
 * libcurl that is too old or refuses a security option sends nothing.
 */
#include "testutil.h"
#include "httpd.h"
#include "http.h"

#include <curl/curl.h>
#include <dlfcn.h>

Test(http, url_allowed_reads_the_host_as_libcurl_does)
{
    static const struct {
        const char *url;
        bool allowed;
    } cases[] = {
        {"https://auth.example.com/token", true},
        {"HTTPS://auth.example.com/token", true},
        {"http://127.0.0.1/token", true},
        {"http://127.0.0.1:8080/token", true},
        {"HTTP://127.0.0.1:8080/token", true},
        {"Http://LOCALHOST:9000/t", true},
        {"http://localhost/t", true},
        {"http://127.255.1.2/t", true},
        {"http://[::1]:8080/t", true},
        {"http://[::1]/t", true},
        {"http://user:pw@127.0.0.1/t", true},
        {"http://evil.example@127.0.0.1/t", true},
        {"http://127.0.0.1?x", true},
        {"http://evil.example\\@127.0.0.1/t", true},   /* libcurl: userinfo, host 127.0.0.1 */
        /* not loopback as libcurl reads them, or not one meaning */
        {"http://auth.example.com/token", false},
        {"http://0127.0.0.1/t", false},        /* octal: 87.0.0.1 */
        {"http://127.1/t", false},
        {"http://0x7f.1/t", false},
        {"http://0x7f000001/t", false},
        {"http://2130706433/t", false},
        {"http://127.0.0.1./t", false},
        {"http://localhost./t", false},
        {"http://localhost.evil.example/t", false},
        {"http://127.0.0.1.nip.io/t", false},
        {"http://[::ffff:127.0.0.1]/t", false},
        {"http://[::1]evil/t", false},
        {"http://[::1/t", false},
        {"http://127.0.0.1@evil.example/", false},
        {"http://127.0.0.1:80@evil.example/", false},
        {"http://127.0.0.1%40@evil.example/", false},
        {"http://127.0.0.1\\@evil.example/", false},
        {"http://127.0.0.1;@evil.example/", false},
        {"http://127.0.0.1%09@evil.example/", false},
        {"http://evil.example#@127.0.0.1/", false},
        {"http://evil.example?@127.0.0.1/", false},
        {"http://evil.example/@127.0.0.1/", false},
        {"http://0.0.0.0/t", false},
        {"http:///127.0.0.1/t", false},
        {"http:/127.0.0.1/t", false},
        {"http://", false},
        {" http://127.0.0.1/t", false},
        {"ftp://127.0.0.1/t", false},
        {"file:///etc/passwd", false},
        {"httpx://127.0.0.1/t", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(hive__url_allowed(cases[i].url), cases[i].allowed, "%s: expected %s", cases[i].url,
                     cases[i].allowed ? "allowed" : "refused");
}

static void post_through_proxy_env(const char *host)
{
    static const char secret_body[] = "grant_type=refresh_token&refresh_token=rt-SECRET&client_secret=cs-SECRET";
    char answer[256];
    char url[128];
    char proxy_url[64];
    httpd server, proxy;
    hive_http_request rq = {0};
    hive_http_response rs;

    httpd_start(&server, httpd_json(answer, sizeof(answer), "{\"access_token\": \"new\"}"));
    httpd_start(&proxy, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    snprintf(proxy_url, sizeof(proxy_url), "http://127.0.0.1:%d", proxy.port);
    setenv("http_proxy", proxy_url, 1);
    setenv("HTTPS_PROXY", proxy_url, 1);
    setenv("ALL_PROXY", proxy_url, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    snprintf(url, sizeof(url), "http://%s:%d/token", host, server.port);
    rq.url = url;
    rq.body = secret_body;
    rq.body_len = sizeof(secret_body) - 1;
    rq.connect_timeout_ms = 5000;
    rq.timeout_ms = 10000;
    cr_assert_eq(hive__http_post(&rq, &rs), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(atomic_load(&proxy.connections), 0, "the proxy was sent: %s", proxy.request);
    cr_expect_eq(rs.status, 200);
    cr_expect(strstr(server.request, "client_secret=cs-SECRET") != NULL);
    hive__http_response_free(&rs);
    httpd_stop(&proxy);
    httpd_stop(&server);
}

Test(http, loopback_token_endpoint_never_goes_through_a_proxy)
{
    post_through_proxy_env("127.0.0.1");
}

Test(http, localhost_never_goes_through_a_proxy)
{
    post_through_proxy_env("localhost");
}

/* --- a libcurl that will not do (tests/unit/fake_curl.c) ---------------- */

static int fake_performs(void)
{
    void *h = dlopen(FAKE_CURL, RTLD_NOW | RTLD_NOLOAD);
    int *n = h ? dlsym(h, "fake_curl_performs") : NULL;

    cr_assert_not_null(n, "the fake libcurl was not loaded");
    return *n;
}

static hive_rc fake_post(void)
{
    hive_http_request rq = {0};
    hive_http_response rs;
    hive_rc rc;

    hive__http_use_library(FAKE_CURL);
    rq.url = "https://auth.example.com/token";
    rq.body = "client_secret=x";
    rq.body_len = 15;
    rq.timeout_ms = 1000;
    rc = hive__http_post(&rq, &rs);
    if (rc == HIVE_OK)
        hive__http_response_free(&rs);
    return rc;
}

Test(http, a_libcurl_older_than_7_85_is_refused_saying_why)
{
    setenv("FAKE_CURL_VERSION", "7.74.0", 1);
    cr_assert_eq(fake_post(), HIVE_ERR_UNSUPPORTED);
    cr_expect_str_eq(hive_last_error(), "libcurl 7.74.0 is too old: hive needs libcurl 7.85.0 or newer "
                     "(CURLOPT_PROTOCOLS_STR)");
}

Test(http, a_libcurl_without_tls_is_refused_saying_why)
{
    setenv("FAKE_CURL_NO_SSL", "1", 1);
    cr_assert_eq(fake_post(), HIVE_ERR_UNSUPPORTED);
    cr_expect_str_eq(hive_last_error(), "libcurl 8.0.0 was built without TLS: hive needs https");
}

static void refused_option_sends_nothing(CURLoption opt, const char *name)
{
    char num[16];

    snprintf(num, sizeof(num), "%d", (int)opt);
    setenv("FAKE_CURL_REFUSE", num, 1);
    cr_assert_eq(fake_post(), HIVE_ERR_UNSUPPORTED, "%s: %s", name, hive_last_error());
    cr_expect(strstr(hive_last_error(), name) != NULL, "%s", hive_last_error());
    cr_expect_eq(fake_performs(), 0, "sent although %s was refused", name);
}

Test(http, a_refused_protocol_restriction_sends_nothing)
{
    refused_option_sends_nothing(CURLOPT_PROTOCOLS_STR, "CURLOPT_PROTOCOLS_STR");
}

Test(http, a_refused_redirect_setting_sends_nothing)
{
    refused_option_sends_nothing(CURLOPT_FOLLOWLOCATION, "CURLOPT_FOLLOWLOCATION");
}

Test(http, a_refused_peer_verification_sends_nothing)
{
    refused_option_sends_nothing(CURLOPT_SSL_VERIFYPEER, "CURLOPT_SSL_VERIFYPEER");
}

Test(http, a_refused_host_verification_sends_nothing)
{
    refused_option_sends_nothing(CURLOPT_SSL_VERIFYHOST, "CURLOPT_SSL_VERIFYHOST");
}

Test(http, a_usable_fake_is_reached)
{
    /* the fake itself works: the refusals above are hive's doing */
    cr_assert_eq(fake_post(), HIVE_ERR_NETWORK, "%s", hive_last_error());
    cr_expect_eq(fake_performs(), 1);
}

Test(http, plain_http_to_another_host_is_refused_before_anything_is_sent)
{
    static const struct {
        const char *url;
        const char *why;
    } cases[] = {
        {"http://example.com/token", "refusing plain http to a non-loopback host: only https, or plain http to "
                                     "a loopback address, may carry credentials"},
        {"HTTP://127.0.0.1@example.com/token", "refusing plain http to a non-loopback host: only https, or "
                                               "plain http to a loopback address, may carry credentials"},
        {"ftp://127.0.0.1/token", "refusing a URL that is not http(s): only https, or plain http to a loopback "
                                  "address, may carry credentials"},
    };
    static const char body[] = "client_secret=cs-SECRET";
    httpd proxy;
    char proxy_url[64];

    /* a proxy would see the request if one went out */
    httpd_start(&proxy, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    snprintf(proxy_url, sizeof(proxy_url), "http://127.0.0.1:%d", proxy.port);
    setenv("http_proxy", proxy_url, 1);
    setenv("ALL_PROXY", proxy_url, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hive_http_request rq = {0};
        hive_http_response rs;

        rq.url = cases[i].url;
        rq.body = body;
        rq.body_len = sizeof(body) - 1;
        rq.connect_timeout_ms = 2000;
        rq.timeout_ms = 2000;
        cr_assert_eq(hive__http_post(&rq, &rs), HIVE_ERR_INVALID, "%s", cases[i].url);
        cr_expect_str_eq(hive_last_error(), cases[i].why);
        cr_expect_not(rs.sent);
        cr_expect_null(rs.body);
        hive__http_response_free(&rs);
    }
    cr_expect_eq(atomic_load(&proxy.connections), 0, "sent: %s", proxy.request);
    httpd_stop(&proxy);
}
