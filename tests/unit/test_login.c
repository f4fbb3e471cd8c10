/*
 * test_login.c - hive_store_login and hive_store_revoke without a server:
 * the authorization request (scopes, PKCE, state) as the prompt sees it,
 * the loopback answer given by the test itself, and the refusals. The
 * flows against a real server and browser: tests/login.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static hive_store *store;

static void put(const char *id, const char *type, const char *provider, const char *const *kv)
{
    hive_cred *c = NULL;

    cr_assert_eq(hive_cred_new(&c, id, type), HIVE_OK);
    if (provider != NULL)
        cr_assert_eq(hive_cred_set_provider_id(c, provider), HIVE_OK);
    for (; kv[0] != NULL; kv += 2)
        cr_assert_eq(hive_cred_set_key(c, kv[0], kv[1], strlen(kv[1]), NULL), HIVE_OK);
    cr_assert_eq(hive_store_save(store, c), HIVE_OK);
    hive_cred_free(&c);
}

static void setup(void)
{
    static const char *const none[][3] = {{NULL, NULL, NULL}};
    static const char *const idp[] = {"token_url", "http://127.0.0.1:9/token", "client_id", "cli",
                                      "authorization_endpoint", "https://auth.example/authorize?tenant=t1",
                                      "scope", "openid api:read", NULL};
    static const char *const tok[] = {"scope", "api:read extra", "account", "alice", NULL};

    cr_assert_eq(hive_store_for_testing(&store, none), HIVE_OK);
    put("idp", "custom", NULL, idp);
    put("tok", "oauth2", "idp", tok);
}

static void teardown(void)
{
    hive_store_free(&store);
}

TestSuite(login, .init = setup, .fini = teardown);

/* What the prompt saw, and the answer it sent to the loopback port. */
typedef struct seen {
    char url[2048];
    int calls;
    int fd;
    const char *answer;   /* the request line's query after "state=STATE" */
} seen;

/* The value of name= in url's query, up to '&' (not decoded). */
static void param(char *out, size_t size, const char *url, const char *name)
{
    char key[64];
    const char *p;
    size_t n;

    snprintf(key, sizeof(key), "%s=", name);
    for (p = strchr(url, '?'); p != NULL; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, key, strlen(key)) == 0)
            break;
    cr_assert_not_null(p, "no %s in %s", name, url);
    p += 1 + strlen(key);
    n = strcspn(p, "&");
    cr_assert_lt(n, size);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The prompt: note the address, then answer on the loopback port as a
 * browser would (the port listens already; the answer is read later). */
static void prompt(void *ctx, const hive_login_prompt *p)
{
    seen *s = ctx;
    char redirect[256];
    char state[64];
    char request[512];
    struct sockaddr_in a;
    const char *port;

    s->calls++;
    cr_assert_not(p->device);
    cr_assert_not_null(p->authorization_url);
    snprintf(s->url, sizeof(s->url), "%s", p->authorization_url);
    param(redirect, sizeof(redirect), s->url, "redirect_uri");
    param(state, sizeof(state), s->url, "state");
    port = strstr(redirect, "127.0.0.1%3A");
    cr_assert_not_null(port, "%s", redirect);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)atoi(port + strlen("127.0.0.1%3A")));
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    snprintf(request, sizeof(request), "GET /callback?state=%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", state,
             s->answer);
    cr_assert_eq(send(s->fd, request, strlen(request), 0), (ssize_t)strlen(request));
}

static hive_login_options options(seen *s)
{
    hive_login_options o = HIVE_LOGIN_OPTIONS_INIT;

    o.prompt = prompt;
    o.prompt_ctx = s;
    o.timeout = 30;
    s->fd = -1;
    return o;
}

Test(login, asks_for_the_union_of_the_scopes_with_pkce_and_reports_a_refusal)
{
    static const char *const scopes[] = {"api:write", "  openid  "};
    static const char *const extra[] = {"usage:scope", "api:write"};
    seen s = {.answer = "&error=access_denied&error_description=the+user+said+no"};
    hive_login_options o = options(&s);
    hive_cred *out = NULL;
    hive_cred *after = NULL;
    char v[128];
    char page[2048];
    ssize_t n;

    o.scopes = scopes;
    o.nscopes = 2;
    o.extra_scopes = extra;
    o.nextra_scopes = 2;
    cr_assert_eq(hive_store_login(store, &out, "tok", &o), HIVE_ERR_REFRESH);
    cr_assert_str_eq(hive_last_error(), "Failed to log in for credential 'tok': the authorization server "
                     "answered access_denied: the user said no");
    cr_assert_null(out);
    cr_assert_eq(s.calls, 1);
    cr_assert(strncmp(s.url, "https://auth.example/authorize?tenant=t1&response_type=code&", 60) == 0, "%s", s.url);
    param(v, sizeof(v), s.url, "scope");
    cr_assert_str_eq(v, "openid+api%3Aread+extra+api%3Awrite+usage%3Ascope");
    param(v, sizeof(v), s.url, "client_id");
    cr_assert_str_eq(v, "cli");
    param(v, sizeof(v), s.url, "code_challenge_method");
    cr_assert_str_eq(v, "S256");
    param(v, sizeof(v), s.url, "code_challenge");
    cr_assert_eq(strlen(v), 43);
    cr_assert_null(strstr(s.url, "code_verifier"));
    /* the browser got a page that repeats nothing of the request */
    n = recv(s.fd, page, sizeof(page) - 1, MSG_WAITALL);
    cr_assert_gt(n, 0);
    page[n] = '\0';
    cr_assert(strncmp(page, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", page);
    cr_assert_not_null(strstr(page, "Login failed"));
    cr_assert_null(strstr(page, "said"));
    close(s.fd);
    /* nothing saved */
    cr_assert_eq(hive_store_get_credential(store, &after, "tok", 0), HIVE_OK);
    cr_assert_null(hive_cred_get_key(after, "access_token", NULL));
    hive_cred_free(&after);
}

Test(login, refusals)
{
    seen s = {.answer = ""};
    hive_login_options o = options(&s);
    hive_login_options small = o;
    hive_cred *out = NULL;

    small.size = sizeof(small) - 1;
    cr_assert_eq(hive_store_login(store, &out, "tok", &small), HIVE_ERR_INVALID);
    small.size = sizeof(small) + 8;   /* a newer caller's: its fields would be ignored */
    cr_assert_eq(hive_store_login(store, &out, "tok", &small), HIVE_ERR_INVALID);
    cr_assert_not_null(strstr(hive_last_error(), "HIVE_LOGIN_OPTIONS_INIT"));
    small = o;
    small.prompt = NULL;
    cr_assert_eq(hive_store_login(store, &out, "tok", &small), HIVE_ERR_INVALID);
    cr_assert_eq(hive_store_login(store, &out, "nope", &o), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_store_login(store, &out, "idp", &o), HIVE_ERR_INVALID);
    cr_assert_str_eq(hive_last_error(), "Failed to log in for credential 'idp': it has type custom; a login "
                     "fills oauth2 credentials");
    o.provider_id = "other";
    cr_assert_eq(hive_store_login(store, &out, "tok", &o), HIVE_ERR_INVALID);
    cr_assert_str_eq(hive_last_error(), "Failed to log in for credential 'tok': its provider is 'idp', not 'other'");
    o.provider_id = NULL;
    o.device = true;
    cr_assert_eq(hive_store_login(store, &out, "tok", &o), HIVE_ERR_REFRESH);
    cr_assert_not_null(strstr(hive_last_error(), "provider 'idp' has no device_authorization_endpoint: add the key "
                              "device_authorization_endpoint to it"));
    cr_assert_eq(s.calls, 0);
    cr_assert_null(out);
}

Test(login, revoke_refusals)
{
    static const char *const with_token[] = {"access_token", "at-1", NULL};
    int n = -1;

    cr_assert_eq(hive_store_revoke(store, "nope", &n), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_store_revoke(store, "tok", &n), HIVE_ERR_KEY_NOT_FOUND);
    cr_assert_str_eq(hive_last_error(), "Credential 'tok' holds no refresh_token or access_token to revoke");
    put("tok2", "oauth2", "idp", with_token);
    cr_assert_eq(hive_store_revoke(store, "tok2", &n), HIVE_ERR_UNSUPPORTED);
    cr_assert_not_null(strstr(hive_last_error(), "has no revocation_endpoint: add the key revocation_endpoint"));
    cr_assert_eq(n, -1);
}
