/*
 * A composite storage reads the first storage that has the id and writes
 * to the primary: a credential found in a fallback is refreshed through
 * its OAuth2 provider (a token endpoint stand-in on loopback, httpd.h) and
 * the new tokens land in the primary, the fallback untouched.
 */
#include "testutil.h"
#include "httpd.h"

typedef struct layers {
    hive_storage *primary;    /* owned by the store's composite */
    hive_storage *fallback;
    hive_store *store;
    httpd token_endpoint;
    char answer[512];
} layers;

static hive_cred *cred(const char *id, const char *type)
{
    hive_cred *c = NULL;

    cr_assert_eq(hive_cred_new(&c, id, type), HIVE_OK);
    return c;
}

static void set(hive_cred *c, const char *key, const char *value, const hive_time *exp)
{
    cr_assert_eq(hive_cred_set_key(c, key, value, strlen(value), exp), HIVE_OK, "%s", hive_last_error());
}

static void put(hive_storage *where, hive_cred *c)
{
    cr_assert_eq(hive_storage_save(where, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
}

/* An expired OAuth2 token "tok" and its provider "prov", both in `where`. */
static void open_layers(layers *l, bool in_primary)
{
    hive_storage *comp = NULL;
    hive_time past = hive_time_now();
    char url[64];
    hive_cred *tok = cred("tok", "oauth2");
    hive_cred *prov = cred("prov", "custom");

    unsetenv("http_proxy");
    httpd_start(&l->token_endpoint, httpd_json(l->answer, sizeof(l->answer),
                "{\"access_token\": \"fresh-access\", \"token_type\": \"Bearer\", \"expires_in\": 3600}"));
    cr_assert_eq(hive_memory_storage_new(&l->primary), HIVE_OK);
    cr_assert_eq(hive_memory_storage_new(&l->fallback), HIVE_OK);
    past.sec -= 60;
    set(tok, "access_token", "stale-access", &past);
    set(tok, "refresh_token", "rt-1", NULL);
    cr_assert_eq(hive_cred_set_provider_id(tok, "prov"), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(tok, true), HIVE_OK);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/token", l->token_endpoint.port);
    set(prov, "token_url", url, NULL);
    set(prov, "client_id", "cid", NULL);
    set(prov, "client_secret", "csecret", NULL);
    put(in_primary ? l->primary : l->fallback, tok);
    put(l->fallback, prov);
    cr_assert_eq(hive_composite_storage_new(&comp, l->primary, &l->fallback, 1), HIVE_OK);
    cr_assert_eq(hive_store_new(&l->store, comp, NULL), HIVE_OK, "%s", hive_last_error());
}

static void close_layers(layers *l)
{
    hive_store_free(&l->store);
    httpd_stop(&l->token_endpoint);
}

static void expect_access(hive_storage *where, const char *want)
{
    hive_cred *c = NULL;

    cr_assert_eq(hive_storage_load(where, &c, "tok"), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), want);
    hive_cred_free(&c);
}

Test(composite, a_token_found_in_a_fallback_is_refreshed_into_the_primary)
{
    layers l;
    hive_cred *got = NULL;
    bool found = true;

    open_layers(&l, false);
    cr_assert_eq(hive_storage_exists(l.primary, "tok", &found), HIVE_OK);
    cr_assert_not(found);
    cr_assert_eq(hive_store_get_credential(l.store, &got, "tok", HIVE_GET_REFRESH | HIVE_GET_STRICT), HIVE_OK,
                 "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_get_key(got, "access_token", NULL), "fresh-access");
    hive_cred_free(&got);
    cr_expect_eq(atomic_load(&l.token_endpoint.connections), 1);
    cr_expect(strstr(l.token_endpoint.request, "refresh_token=rt-1") != NULL, "%s", l.token_endpoint.request);
    /* saved to the primary, whole; the fallback keeps what it had */
    expect_access(l.primary, "fresh-access");
    expect_access(l.fallback, "stale-access");
    cr_assert_eq(hive_storage_load(l.primary, &got, "tok"), HIVE_OK);
    cr_expect_str_eq(hive_cred_get_key(got, "refresh_token", NULL), "rt-1");
    cr_expect_str_eq(hive_cred_provider_id(got), "prov");
    hive_cred_free(&got);
    /* read again through the composite: the primary's, no second refresh */
    hive_store_invalidate(l.store, "tok");
    cr_assert_eq(hive_store_get_credential(l.store, &got, "tok", HIVE_GET_REFRESH | HIVE_GET_STRICT), HIVE_OK);
    cr_expect_str_eq(hive_cred_get_key(got, "access_token", NULL), "fresh-access");
    hive_cred_free(&got);
    cr_expect_eq(atomic_load(&l.token_endpoint.connections), 1);
    close_layers(&l);
}

Test(composite, a_token_found_in_the_primary_is_refreshed_there_only)
{
    layers l;
    bool found = true;

    open_layers(&l, true);
    cr_assert_eq(hive_store_refresh(l.store, NULL, "tok"), HIVE_OK, "%s", hive_last_error());
    expect_access(l.primary, "fresh-access");
    cr_assert_eq(hive_storage_exists(l.fallback, "tok", &found), HIVE_OK);
    cr_expect_not(found, "the refresh also wrote to the fallback");
    close_layers(&l);
}
