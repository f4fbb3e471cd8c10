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
    cr_assert_eq(hive_storage_exists(l.primary, &found, "tok"), HIVE_OK);
    cr_assert_not(found);
    cr_assert_eq(hive_store_get_credential(l.store, &got, "tok", HIVE_GET_STRICT), HIVE_OK,
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
    cr_assert_eq(hive_store_get_credential(l.store, &got, "tok", HIVE_GET_STRICT), HIVE_OK);
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
    cr_assert_eq(hive_storage_exists(l.fallback, &found, "tok"), HIVE_OK);
    cr_expect_not(found, "the refresh also wrote to the fallback");
    close_layers(&l);
}

/* --- a file storage as the primary, a memory storage behind it --------- */

static char home[64];

static hive_storage *file_storage(void)
{
    char dir[128];
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    hive_storage *s = NULL;
    bool made = true;

    snprintf(home, sizeof(home), "/tmp/hive-comp-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    snprintf(dir, sizeof(dir), "%s/credentials", home);
    o.dir = dir;
    o.key = "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI=";
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    cr_assert_eq(hive_file_storage_init(s, &made), HIVE_OK, "%s", hive_last_error());
    cr_assert_not(made);
    return s;
}

static void remove_home(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}

static hive_cred *api_key(const char *id, const char *value)
{
    hive_cred *c = cred(id, "api_key");

    set(c, "api_key", value, NULL);
    return c;
}

static const char *value_in(hive_storage *s, const char *id, char *buf, size_t size)
{
    hive_cred *c = NULL;

    if (hive_storage_load(s, &c, id) != HIVE_OK)
        return NULL;
    snprintf(buf, size, "%s", hive_cred_get_key(c, "api_key", NULL));
    hive_cred_free(&c);
    return buf;
}

Test(composite, writes_go_to_the_primary_under_its_lock, .fini = remove_home)
{
    hive_storage *primary = file_storage(), *fallback = NULL, *comp = NULL;
    hive_strlist ids = {0};
    char buf[64];
    bool found = false;

    cr_assert_eq(hive_memory_storage_new(&fallback), HIVE_OK);
    put(fallback, api_key("shared", "from-fallback"));
    put(fallback, api_key("below", "only-below"));
    cr_assert_eq(hive_composite_storage_new(&comp, primary, &fallback, 1), HIVE_OK);
    /* a save through the composite takes the file storage's lock and
     * writes there */
    put(comp, api_key("shared", "from-primary"));
    put(comp, api_key("top", "only-top"));
    cr_expect_str_eq(value_in(primary, "shared", buf, sizeof(buf)), "from-primary");
    cr_expect_str_eq(value_in(fallback, "shared", buf, sizeof(buf)), "from-fallback");
    cr_expect_str_eq(value_in(comp, "shared", buf, sizeof(buf)), "from-primary");
    cr_expect_str_eq(value_in(comp, "below", buf, sizeof(buf)), "only-below");
    cr_assert_eq(hive_storage_exists(comp, &found, "below"), HIVE_OK);
    cr_expect(found);
    cr_assert_eq(hive_storage_exists(comp, &found, "nowhere"), HIVE_OK);
    cr_expect_not(found);
    /* an id no file can hold is looked for in the fallbacks all the same */
    cr_assert_eq(hive_storage_exists(comp, &found, ".."), HIVE_OK);
    cr_expect_not(found);
    /* the union, sorted, each id once */
    cr_assert_eq(hive_storage_list(comp, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 3);
    cr_expect_str_eq(ids.items[0], "below");
    cr_expect_str_eq(ids.items[1], "shared");
    cr_expect_str_eq(ids.items[2], "top");
    hive_strlist_free(&ids);
    /* a delete takes the primary's copy: the fallback's shows again */
    cr_assert_eq(hive_storage_delete(comp, "shared"), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(value_in(comp, "shared", buf, sizeof(buf)), "from-fallback");
    hive_storage_free(&comp);
}

Test(composite, a_storage_that_fails_fails_the_composite, .fini = remove_home)
{
    hive_storage *primary = file_storage(), *fallback = NULL, *comp = NULL;
    hive_strlist ids = {0};
    char cmd[300];
    bool found = false;

    cr_assert_eq(hive_memory_storage_new(&fallback), HIVE_OK);
    put(fallback, api_key("below", "only-below"));
    cr_assert_eq(hive_composite_storage_new(&comp, primary, &fallback, 1), HIVE_OK);
    /* the primary's directory is not one any more */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/credentials' && echo x > '%s/credentials'", home, home);
    cr_assert_eq(system(cmd), 0);
    cr_expect_neq(hive_storage_list(comp, &ids), HIVE_OK, "a list that misses the primary's ids");
    cr_expect_eq(ids.count, 0);
    /* what the fallback has is still read */
    cr_assert_eq(hive_storage_exists(comp, &found, "below"), HIVE_OK, "%s", hive_last_error());
    cr_expect(found);
    hive_storage_free(&comp);
}

Test(composite, no_primary)
{
    hive_storage *fallbacks[2] = {NULL, NULL}, *comp = NULL;

    cr_assert_eq(hive_memory_storage_new(&fallbacks[0]), HIVE_OK);
    cr_assert_eq(hive_memory_storage_new(&fallbacks[1]), HIVE_OK);
    /* the fallbacks are the composite's even so: ASan finds no leak */
    cr_assert_eq(hive_composite_storage_new(&comp, NULL, fallbacks, 2), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "cannot make a composite storage");
    cr_expect_null(comp);
}
