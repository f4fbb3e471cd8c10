/*
 * The etcd storage against a stand-in for etcd's HTTP gateway (httpd.h):
 * what it sends and what it accepts, without an etcd. tests/etcd runs the
 * real thing.
 */
#include "testutil.h"
#include "httpd.h"

#include <stdarg.h>

typedef struct gateway {
    char token[4000];           /* what /v3/auth/authenticate hands out */
    char seen_auth[8192];       /* the Authorization header of the last other call */
    const char *range_answer;   /* the JSON body of /v3/kv/range */
    char answer[16384];
} gateway;

static const char *__attribute__((format(printf, 2, 3))) json_answer(gateway *g, const char *fmt, ...)
{
    char body[8192];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && (size_t)n < sizeof(body));
    return httpd_json(g->answer, sizeof(g->answer), body);
}

static const char *gateway_respond(httpd *h, const char *request)
{
    gateway *g = h->ctx;
    const char *auth = strcasestr(request, "\r\nAuthorization: ");

    if (strncmp(request, "POST /v3/auth/authenticate ", 27) == 0)
        return json_answer(g, "{\"header\": {\"revision\": \"1\"}, \"token\": \"%s\"}", g->token);
    g->seen_auth[0] = '\0';
    if (auth != NULL) {
        size_t n = strcspn(auth + 17, "\r\n");
        cr_assert_lt(n, sizeof(g->seen_auth));
        memcpy(g->seen_auth, auth + 17, n);
        g->seen_auth[n] = '\0';
    }
    return json_answer(g, "%s", g->range_answer ? g->range_answer : "{\"header\": {\"revision\": \"5\"}}");
}

static char home[] = "/tmp/hive-etcd-unit-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(home));
    setenv("HIVE_HOME", home, 1);
    setenv("HIVE_CREDENTIAL_KEY", "", 1);
    unsetenv("HIVE_ETCD_USER");
    unsetenv("http_proxy");
}

static void teardown(void)
{
    char cmd[64];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", home);
}

TestSuite(etcdstore, .init = setup, .fini = teardown);

/* The password a test's etcd user has (NULL: none given). */
static const char *etcd_password;

/* Options naming the test's home (for the local copy): the explicit
 * entry points read no HIVE_HOME. */
static const hive_file_options *etcd_opts(void)
{
    static hive_file_options fo;

    fo = (hive_file_options)HIVE_FILE_OPTIONS_INIT;
    fo.home = home;
    fo.etcd_password = etcd_password;
    return &fo;
}

/* Serve g on a free port and open an etcd storage on it (user@ when given). */
static hive_storage *open_on(httpd *server, gateway *g, const char *user)
{
    hive_storage *s = NULL;
    char url[128];

    httpd_start_with(server, NULL, gateway_respond, g);
    snprintf(url, sizeof(url), "etcd://%s%s127.0.0.1:%d/p", user ? user : "", user ? "@" : "", server->port);
    cr_assert_eq(hive_etcd_storage_open(&s, url, etcd_opts()), HIVE_OK, "%s", hive_last_error());
    return s;
}

Test(etcdstore, a_long_auth_token_is_sent_whole)
{
    static gateway g;
    httpd server;
    hive_storage *s;
    bool found = true;

    /* a JWT signed with a large RSA key runs past a kilobyte */
    memset(g.token, 'j', sizeof(g.token) - 5);
    memcpy(g.token + sizeof(g.token) - 5, ".end", 5);
    etcd_password = "pw";
    s = open_on(&server, &g, "hiveuser");
    cr_assert_eq(hive_storage_exists(s, &found, "x"), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(found);
    cr_expect_eq(strlen(g.seen_auth), strlen(g.token), "the token was cut to %zu bytes", strlen(g.seen_auth));
    cr_expect_str_eq(g.seen_auth, g.token);
    hive_storage_free(&s);
    httpd_stop(&server);
}

Test(etcdstore, an_option_longer_than_512_bytes_is_read_whole)
{
    char url[1024];
    hive_storage *s = NULL;

    /* 600 zeros then a 5: five seconds, unless it is cut to zeros */
    snprintf(url, sizeof(url), "etcd://127.0.0.1:9/p?timeout=%0600d5", 0);
    cr_assert_eq(hive_etcd_storage_open(&s, url, etcd_opts()), HIVE_OK, "%s", hive_last_error());
    hive_storage_free(&s);
}

Test(etcdstore, a_revision_that_is_not_a_number_is_refused)
{
    static gateway g;
    httpd server;
    hive_storage *s;
    bool found = false;

    /* "dG9rZW4=" is base64 for "token"; 25 digits cannot be an int64 */
    g.range_answer = "{\"header\": {\"revision\": \"5\"}, \"kvs\": [{\"key\": \"eA==\", \"value\": \"dG9rZW4=\", "
                     "\"mod_revision\": \"1234567890123456789012345\"}]}";
    s = open_on(&server, &g, NULL);
    cr_expect_eq(hive_storage_exists(s, &found, "x"), HIVE_ERR_IO);
    cr_expect_str_eq(hive_last_error(), "etcd answered a mod_revision for 'x' that is not a number");
    hive_storage_free(&s);
    httpd_stop(&server);
}

Test(etcdstore, a_password_in_the_url_is_refused_and_never_repeated)
{
    hive_storage *s = NULL;

    cr_expect_eq(hive_etcd_storage_open(&s, "etcd://hiveuser:Sekr1t-pw@127.0.0.1:9/p", etcd_opts()),
                 HIVE_ERR_INVALID);
    cr_expect_null(s);
    cr_expect_not_null(strstr(hive_last_error(), "HIVE_ETCD_PASSWORD"), "%s", hive_last_error());
    cr_expect_null(strstr(hive_last_error(), "Sekr1t"), "%s", hive_last_error());
}

Test(etcdstore, a_host_without_a_port_is_etcds_client_port)
{
    hive_storage *s = NULL;
    bool found = true;

    /* nothing listens on 127.0.0.9: the message names the endpoint meant;
     * opened as the tools open it (HIVE_HOME from the environment) */
    cr_assert_eq(hive_storage_open_from_env(&s, "etcd://127.0.0.9/p?timeout=0.5", NULL), HIVE_OK, "%s",
                 hive_last_error());
    cr_expect_eq(hive_storage_exists(s, &found, "x"), HIVE_ERR_NETWORK, "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), "etcd at 127.0.0.9:2379 is unreachable"), "%s",
                       hive_last_error());
    hive_storage_free(&s);
}

Test(etcdstore, prefetch_is_a_no_op_for_other_storages)
{
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    hive_storage *s = NULL;
    const char *ids[] = {"a", "b"};
    char dir[600];

    snprintf(dir, sizeof(dir), "%s/files", home);
    fo.dir = dir;
    cr_assert_eq(hive_file_storage_open(&s, &fo), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(hive_storage_prefetch(s, ids, 2), HIVE_OK);
    cr_expect_eq(hive_storage_prefetch(NULL, ids, 2), HIVE_OK);
    hive_storage_free(&s);
}

Test(etcdstore, prefetch_reads_every_id_in_one_request)
{
    static gateway g;
    httpd server;
    hive_storage *s;
    const char *ids[] = {"a", "b", "a"};
    bool found = true;

    /* the txn's answer: a holds nothing, b holds nothing either */
    g.range_answer = "{\"header\": {\"revision\": \"5\"}, \"succeeded\": true, \"responses\": "
                     "[{\"response_range\": {\"header\": {}}}, {\"response_range\": {\"header\": {}}}]}";
    s = open_on(&server, &g, NULL);
    cr_assert_eq(hive_storage_prefetch(s, ids, 3), HIVE_OK, "%s", hive_last_error());
    /* served from the read-ahead: the gateway is gone */
    httpd_stop(&server);
    cr_expect_eq(hive_storage_exists(s, &found, "a"), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(found);
    cr_expect_eq(hive_storage_exists(s, &found, "b"), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(found);
    hive_storage_free(&s);
}
