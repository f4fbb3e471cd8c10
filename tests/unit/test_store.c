/*
 * The credential store: for_testing, reading and writing, the cache,
 * providers and refresh; and the storages it sits on: environment,
 * composite, and .env files.
 */
#include "testutil.h"
#include "store_int.h"   /* hive__store_clock */

#include <sys/stat.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------- */

/* The Testing section of the Hive documentation, as a table. */
static const char *const testing_table[][3] = {
    {"brave_search", "api_key", "test-brave-key"},
    {"github_oauth", "access_token", "test-token"},
    {"github_oauth", "refresh_token", "test-refresh"},
    {NULL, NULL, NULL},
};

static hive_store *testing_store(void)
{
    hive_store *s = NULL;
    cr_assert_eq(hive_store_for_testing(&s, testing_table), HIVE_OK, "%s", hive_last_error());
    cr_assert_not_null(s);
    return s;
}

static hive_store *memory_store(const hive_store_options *opts)
{
    hive_storage *mem = NULL;
    hive_store *s = NULL;
    cr_assert_eq(hive_memory_storage_new(&mem), HIVE_OK);
    cr_assert_eq(hive_store_new(&s, mem, opts), HIVE_OK, "%s", hive_last_error());
    return s;
}

static hive_cred *make_cred(const char *id, const char *type, const char *key, const char *value,
                            const hive_time *expires)
{
    hive_cred *c = NULL;
    cr_assert_eq(hive_cred_new(&c, id, type), HIVE_OK, "%s", hive_last_error());
    if (key != NULL)
        cr_assert_eq(hive_cred_set_key(c, key, value, strlen(value), expires), HIVE_OK, "%s", hive_last_error());
    return c;
}

/* Save an api_key credential straight into a storage, behind the store's back. */
static void put_api_key(hive_storage *st, const char *id, const char *value)
{
    hive_cred *c = make_cred(id, "api_key", "api_key", value, NULL);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
}

static void expect_key(hive_store *s, const char *id, const char *key, unsigned flags, const char *want)
{
    hive_secret v = HIVE_SECRET_INIT;
    cr_assert_eq(hive_store_get_key(s, &v, id, key, flags), HIVE_OK, "%s.%s: %s", id,
                 key ? key : "(default)", hive_last_error());
    cr_assert_not_null(v.data);
    cr_expect_eq(v.len, strlen(want));
    cr_expect_str_eq(v.data, want, "%s.%s", id, key ? key : "(default)");
    hive_secret_free(&v);
}

/* A key's value as the storage itself holds it. */
static void expect_stored(hive_storage *st, const char *id, const char *key, const char *want)
{
    hive_cred *c = NULL;
    cr_assert_eq(hive_storage_load(st, &c, id), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_get_key(c, key, NULL), want);
    hive_cred_free(&c);
}

static hive_time now_plus(int64_t seconds)
{
    hive_time t = hive_time_now();
    t.sec += seconds;
    return t;
}

/* A provider written for the tests: counts its refreshes; can fail. */
typedef struct test_provider {
    hive_provider base;
    hive_cred_type type;
    int refreshes;
    bool fail;
    bool numbered;          /* "refreshed-token-N" for the Nth refresh */
    bool expired;           /* the new access token is already expired */
    int ttl;                /* else its life in seconds (0: an hour) */
    /* another writer at work while the token request is out, through
     * store (a provider knows no store: this one keeps one, as a user's
     * provider may) */
    void (*meanwhile)(hive_store *store);
    hive_store *store;
} test_provider;

static bool tp_handles(const hive_provider *p, hive_cred_type t)
{
    return ((const test_provider *)p)->type == t;
}

static hive_rc tp_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    test_provider *tp = (test_provider *)p;
    hive_time exp = now_plus(3600);

    tp->refreshes++;
    if (tp->fail) {
        /* fail with a detail message set by the library, as a real
         * provider's failed call would */
        hive_cred *none = NULL;
        cr_assert_eq(lookup->load(lookup->ctx, &none, "token-endpoint-unreachable"), HIVE_ERR_NOT_FOUND);
        return HIVE_ERR_IO;
    }
    if (tp->meanwhile != NULL)
        tp->meanwhile(tp->store);
    if (tp->expired)
        exp = now_plus(-1);
    else if (tp->ttl > 0)
        exp = now_plus(tp->ttl);
    if (tp->numbered) {
        char v[64];
        snprintf(v, sizeof(v), "refreshed-token-%d", tp->refreshes);
        return hive_cred_set_key(cred, "access_token", v, strlen(v), &exp);
    }
    return hive_cred_set_key(cred, "access_token", "refreshed-token", strlen("refreshed-token"), &exp);
}

static void init_provider(test_provider *tp, const char *id, hive_cred_type type)
{
    memset(tp, 0, sizeof(*tp));
    tp->base = (hive_provider)HIVE_PROVIDER_INIT;
    tp->base.id = id;
    tp->base.handles = tp_handles;
    tp->base.refresh = tp_refresh;
    tp->base.destroy = NULL;   /* lives on the test's stack */
    tp->type = type;
}

typedef struct warnings {
    int count;
    char last[1024];
} warnings;

static void collect_warning(void *ctx, const char *message)
{
    warnings *w = ctx;
    w->count++;
    snprintf(w->last, sizeof(w->last), "%s", message);
}

/* An oauth2 credential handled by provider "test-oauth". */
static hive_cred *oauth_cred(const char *id, bool auto_refresh, const hive_time *expires)
{
    hive_cred *c = make_cred(id, "oauth2", "access_token", "old-token", expires);
    cr_assert_eq(hive_cred_set_key(c, "refresh_token", "rt", 2, NULL), HIVE_OK);
    cr_assert_eq(hive_cred_set_provider_id(c, "test-oauth"), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(c, auto_refresh), HIVE_OK);
    return c;
}

/* A store with the test provider, holding one oauth2 credential "tok"
 * whose access token expires at exp. */
static hive_store *refresh_store(test_provider *tp, const hive_store_options *opts, bool auto_refresh,
                                 const hive_time *exp)
{
    hive_store *s = memory_store(opts);
    hive_cred *c = oauth_cred("tok", auto_refresh, exp);

    init_provider(tp, "test-oauth", HIVE_TYPE_OAUTH2);
    cr_assert_eq(hive_store_add_provider(s, &tp->base), HIVE_OK);
    tp->store = s;
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    return s;
}

/* How many refreshes one get of "tok" with flags causes. */
static int refreshes_for(const hive_store_options *opts, bool auto_refresh, hive_time exp, unsigned flags)
{
    test_provider tp;
    hive_store *s = refresh_store(&tp, opts, auto_refresh, &exp);
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_get_credential(s, &c, "tok", flags), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
    hive_store_free(&s);
    return tp.refreshes;
}

/* --- for_testing and reading ------------------------------------------- */

TestSuite(store);

Test(store, for_testing_serves_the_doc_example)
{
    hive_store *s = testing_store();
    hive_cred *c = NULL;

    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");
    expect_key(s, "github_oauth", "access_token", HIVE_GET_NO_REFRESH, "test-token");
    expect_key(s, "github_oauth", "refresh_token", HIVE_GET_NO_REFRESH, "test-refresh");
    cr_assert_eq(hive_store_get_credential(s, &c, "github_oauth", HIVE_GET_NO_REFRESH), HIVE_OK);
    cr_expect_str_eq(hive_cred_id(c), "github_oauth");
    cr_expect_str_eq(hive_cred_type_str(c), "api_key");
    cr_expect_eq(hive_cred_key_count(c), 2);
    cr_expect_not(hive_cred_auto_refresh(c));
    hive_cred_free(&c);
    hive_store_free(&s);
    cr_assert_null(s);
}

Test(store, for_testing_with_an_empty_table_is_an_empty_store)
{
    static const char *const empty[][3] = {{NULL, NULL, NULL}};
    hive_store *s = NULL;
    hive_strlist ids = {0};

    cr_assert_eq(hive_store_for_testing(&s, empty), HIVE_OK);
    cr_assert_eq(hive_store_list(s, &ids), HIVE_OK);
    cr_expect_eq(ids.count, 0);
    hive_strlist_free(&ids);
    hive_store_free(&s);
}

Test(store, get_credential_returns_a_copy)
{
    hive_store *s = testing_store();
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_get_credential(s, &c, "brave_search", HIVE_GET_NO_REFRESH), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "scribbled", 9, NULL), HIVE_OK);
    hive_cred_free(&c);
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");
    hive_store_free(&s);
}

Test(store, get_credential_of_a_missing_id_is_not_found)
{
    hive_store *s = testing_store();
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_get_credential(s, &c, "nope", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_null(c);
    cr_expect_str_eq(hive_last_error(), "Credential 'nope' not found");
    hive_store_free(&s);
}

Test(store, get_key_errors_use_hive_messages)
{
    hive_store *s = testing_store();
    hive_secret v = HIVE_SECRET_INIT;

    cr_assert_eq(hive_store_get_key(s, &v, "nope", "api_key", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'nope' not found");
    cr_assert_eq(hive_store_get_key(s, &v, "brave_search", "secret", HIVE_GET_NO_REFRESH), HIVE_ERR_KEY_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Key 'secret' not found in credential 'brave_search'");
    cr_expect_null(v.data);
    hive_store_free(&s);
}

Test(store, null_key_gives_the_default_key)
{
    hive_store *s = memory_store(NULL);
    hive_storage *st = hive_store_storage(s);
    hive_cred *c;

    /* access_token over refresh_token (the doc's store.get) */
    c = make_cred("oauth", "oauth2", "refresh_token", "r", NULL);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "a", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    /* value over api_key over access_token */
    c = make_cred("all", "custom", "access_token", "a", NULL);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "k", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "value", "v", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    c = make_cred("two", "custom", "access_token", "a", NULL);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "k", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    /* else the first key */
    c = make_cred("basic", "basic_auth", "username", "alice", NULL);
    cr_assert_eq(hive_cred_set_key(c, "password", "pw", 2, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    c = make_cred("empty", "custom", NULL, NULL, NULL);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);

    expect_key(s, "oauth", NULL, HIVE_GET_NO_REFRESH, "a");
    expect_key(s, "all", NULL, HIVE_GET_NO_REFRESH, "v");
    expect_key(s, "two", NULL, HIVE_GET_NO_REFRESH, "k");
    expect_key(s, "basic", NULL, HIVE_GET_NO_REFRESH, "alice");
    {
        hive_secret v = HIVE_SECRET_INIT;
        cr_expect_eq(hive_store_get_key(s, &v, "empty", NULL, HIVE_GET_NO_REFRESH), HIVE_ERR_KEY_NOT_FOUND);
    }
    hive_store_free(&s);
}

Test(store, for_testing_default_key_is_the_access_token)
{
    hive_store *s = testing_store();

    expect_key(s, "github_oauth", NULL, HIVE_GET_NO_REFRESH, "test-token");
    expect_key(s, "brave_search", NULL, HIVE_GET_NO_REFRESH, "test-brave-key");
    hive_store_free(&s);
}

Test(store, save_then_get_and_exists)
{
    hive_store *s = testing_store();
    hive_cred *c = make_cred("postgres_db", "basic_auth", "username", "admin", NULL);
    bool found = false;

    cr_assert_eq(hive_cred_set_key(c, "password", "secret123", 9, NULL), HIVE_OK);
    cr_assert_eq(hive_store_exists(s, &found, "postgres_db"), HIVE_OK);
    cr_expect_not(found);
    cr_assert_eq(hive_store_save(s, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
    cr_assert_eq(hive_store_exists(s, &found, "postgres_db"), HIVE_OK);
    cr_expect(found);
    expect_key(s, "postgres_db", "password", HIVE_GET_NO_REFRESH, "secret123");
    expect_stored(hive_store_storage(s), "postgres_db", "username", "admin");
    hive_store_free(&s);
}

Test(store, delete_removes_and_a_second_delete_is_not_found)
{
    hive_store *s = testing_store();
    bool found = true;
    hive_secret v = HIVE_SECRET_INIT;

    cr_assert_eq(hive_store_delete(s, "brave_search"), HIVE_OK);
    cr_assert_eq(hive_store_exists(s, &found, "brave_search"), HIVE_OK);
    cr_expect_not(found);
    cr_expect_eq(hive_store_get_key(s, &v, "brave_search", "api_key", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_eq(hive_store_delete(s, "brave_search"), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'brave_search' not found");
    hive_store_free(&s);
}

Test(store, list_is_sorted)
{
    hive_store *s = testing_store();
    hive_strlist ids = {0};

    put_api_key(hive_store_storage(s), "anthropic", "k");
    cr_assert_eq(hive_store_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 3);
    cr_expect_str_eq(ids.items[0], "anthropic");
    cr_expect_str_eq(ids.items[1], "brave_search");
    cr_expect_str_eq(ids.items[2], "github_oauth");
    hive_strlist_free(&ids);
    hive_store_free(&s);
}

Test(store, is_available_needs_a_usable_default_key)
{
    hive_store *s = testing_store();
    hive_storage *st = hive_store_storage(s);
    hive_time past = now_plus(-60);
    hive_time future = now_plus(3600);
    hive_cred *c;

    cr_expect(hive_store_is_available(s, "brave_search"));
    cr_expect(hive_store_is_available(s, "github_oauth"));
    cr_expect_not(hive_store_is_available(s, "nope"));
    c = make_cred("no_keys", "custom", NULL, NULL, NULL);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect_not(hive_store_is_available(s, "no_keys"));
    c = make_cred("expired", "api_key", "api_key", "k", &past);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect_not(hive_store_is_available(s, "expired"));
    c = make_cred("fresh", "api_key", "api_key", "k", &future);
    cr_assert_eq(hive_storage_save(st, c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect(hive_store_is_available(s, "fresh"));
    hive_store_free(&s);
}

Test(store, is_available_for_an_expired_token_that_can_be_refreshed)
{
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_store *s = refresh_store(&tp, NULL, true, &past);
    hive_cred *c = oauth_cred("manual", false, &past);

    cr_expect(hive_store_is_available(s, "tok"));
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect_not(hive_store_is_available(s, "manual"), "auto_refresh is off");
    cr_expect_eq(tp.refreshes, 0, "is_available must not refresh");
    hive_store_free(&s);
}

/* --- the cache ------------------------------------------------------------ */

Test(store, cache_serves_a_credential_changed_in_storage)
{
    hive_store *s = testing_store();

    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");
    put_api_key(hive_store_storage(s), "brave_search", "changed");
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");
    expect_stored(hive_store_storage(s), "brave_search", "api_key", "changed");
    hive_store_free(&s);
}

Test(store, invalidate_drops_one_id)
{
    hive_store *s = testing_store();

    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");
    expect_key(s, "github_oauth", "access_token", HIVE_GET_NO_REFRESH, "test-token");
    put_api_key(hive_store_storage(s), "brave_search", "changed");
    put_api_key(hive_store_storage(s), "github_oauth", "changed-too");
    hive_store_invalidate(s, "brave_search");
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "changed");
    expect_key(s, "github_oauth", "access_token", HIVE_GET_NO_REFRESH, "test-token");
    hive_store_free(&s);
}

Test(store, invalidate_null_drops_everything)
{
    hive_store *s = testing_store();
    hive_cred *c = make_cred("github_oauth", "oauth2", "access_token", "new-token", NULL);

    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");
    expect_key(s, "github_oauth", "access_token", HIVE_GET_NO_REFRESH, "test-token");
    put_api_key(hive_store_storage(s), "brave_search", "changed");
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    hive_store_invalidate(s, NULL);
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "changed");
    expect_key(s, "github_oauth", "access_token", HIVE_GET_NO_REFRESH, "new-token");
    hive_store_free(&s);
}

Test(store, negative_cache_ttl_disables_the_cache)
{
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_store *s;

    o.cache_ttl = -1;
    s = memory_store(&o);
    put_api_key(hive_store_storage(s), "k", "one");
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "one");
    put_api_key(hive_store_storage(s), "k", "two");
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "two");
    cr_assert_eq(hive_storage_delete(hive_store_storage(s), "k"), HIVE_OK);
    {
        hive_secret v = HIVE_SECRET_INIT;
        bool found = true;
        cr_expect_eq(hive_store_get_key(s, &v, "k", NULL, HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
        cr_assert_eq(hive_store_exists(s, &found, "k"), HIVE_OK);
        cr_expect_not(found);
    }
    hive_store_free(&s);
}

/* The cache's clock (store_int.h), stepped by hand: no test sleeps for a
 * cache_ttl to pass. */
static int64_t test_now;

static int64_t test_clock(void)
{
    return test_now;
}

Test(store, cache_entry_expires_after_the_ttl)
{
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_store *s;

    hive__store_clock = test_clock;
    test_now = 1000;
    o.cache_ttl = 60;
    s = memory_store(&o);
    put_api_key(hive_store_storage(s), "k", "one");
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "one");
    put_api_key(hive_store_storage(s), "k", "two");
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "one");
    test_now = 1059;                        /* 59 s later: still cached */
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "one");
    test_now = 1060;                        /* the ttl has passed */
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "two");
    put_api_key(hive_store_storage(s), "k", "three");
    test_now = 1119;                        /* cached again at 1060 */
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "two");
    test_now = 1120;
    expect_key(s, "k", "api_key", HIVE_GET_NO_REFRESH, "three");
    hive_store_free(&s);
}

Test(store, save_through_the_store_updates_the_cache)
{
    hive_store *s = testing_store();
    hive_cred *c = make_cred("brave_search", "api_key", "api_key", "saved", NULL);

    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");   /* cached */
    cr_assert_eq(hive_store_save(s, c), HIVE_OK);
    hive_cred_free(&c);
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "saved");
    expect_stored(hive_store_storage(s), "brave_search", "api_key", "saved");
    hive_store_free(&s);
}

Test(store, delete_through_the_store_drops_the_cached_copy)
{
    hive_store *s = testing_store();
    hive_cred *c = NULL;
    bool found = true;

    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "test-brave-key");   /* cached */
    cr_assert_eq(hive_store_delete(s, "brave_search"), HIVE_OK);
    cr_expect_eq(hive_store_get_credential(s, &c, "brave_search", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_store_exists(s, &found, "brave_search"), HIVE_OK);
    cr_expect_not(found);
    cr_expect_not(hive_store_is_available(s, "brave_search"));
    hive_store_free(&s);
}

Test(store, failed_save_leaves_no_stale_cache)
{
    hive_storage *env = NULL;
    hive_store *s = NULL;
    hive_cred *c = make_cred("envcred", "api_key", "api_key", "replacement", NULL);
    static const char *const mapping[] = {"envcred", "HIVE_UNIT_ENVCRED", NULL};

    setenv("HIVE_UNIT_ENVCRED", "from-env", 1);
    cr_assert_eq(hive_env_storage_open(&env, mapping, ""), HIVE_OK);
    cr_assert_eq(hive_store_new(&s, env, NULL), HIVE_OK);
    expect_key(s, "envcred", "api_key", HIVE_GET_NO_REFRESH, "from-env");
    cr_expect_eq(hive_store_save(s, c), HIVE_ERR_READ_ONLY);
    hive_cred_free(&c);
    expect_key(s, "envcred", "api_key", HIVE_GET_NO_REFRESH, "from-env");
    hive_store_free(&s);
}

/* --- providers ------------------------------------------------------------ */

Test(store, provider_chosen_by_provider_id_then_by_type)
{
    hive_store *s = memory_store(NULL);
    test_provider first, second;
    hive_cred *c;

    init_provider(&first, "first", HIVE_TYPE_OAUTH2);
    init_provider(&second, "second", HIVE_TYPE_OAUTH2);
    cr_assert_eq(hive_store_add_provider(s, &first.base), HIVE_OK);
    cr_assert_eq(hive_store_add_provider(s, &second.base), HIVE_OK);

    c = make_cred("o", "oauth2", "access_token", "t", NULL);
    cr_expect_eq(hive_store_provider_for(s, c), &first.base, "first registered handling oauth2");
    cr_assert_eq(hive_cred_set_provider_id(c, "second"), HIVE_OK);
    cr_expect_eq(hive_store_provider_for(s, c), &second.base, "by provider_id");
    cr_assert_eq(hive_cred_set_provider_id(c, "not-registered"), HIVE_OK);
    cr_expect_eq(hive_store_provider_for(s, c), &first.base, "unknown provider_id falls back to the type");
    hive_cred_free(&c);

    c = make_cred("k", "api_key", "api_key", "v", NULL);
    cr_assert_not_null(hive_store_provider_for(s, c));
    cr_expect_str_eq(hive_store_provider_for(s, c)->id, "static");
    hive_cred_free(&c);
    c = make_cred("b", "basic_auth", "username", "v", NULL);
    cr_expect_str_eq(hive_store_provider_for(s, c)->id, "static");
    hive_cred_free(&c);
    c = make_cred("cu", "custom", "x", "v", NULL);
    cr_expect_str_eq(hive_store_provider_for(s, c)->id, "static");
    hive_cred_free(&c);
    c = make_cred("j", "bearer_token", "access_token", "v", NULL);
    cr_expect_str_eq(hive_store_provider_for(s, c)->id, "bearer_token");
    hive_cred_free(&c);
    hive_store_free(&s);
}

/* Hive rejects a credential_type outside its enum, so every credential
 * that loads has a built-in provider. */
Test(store, every_type_a_credential_can_have_has_a_provider)
{
    static const char *const types[] = {"api_key", "oauth2", "basic_auth", "bearer_token", "custom"};
    hive_store *s = memory_store(NULL);

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        hive_cred *c = make_cred("f", types[i], "k", "v", NULL);
        cr_expect_not_null(hive_store_provider_for(s, c), "%s", types[i]);
        hive_cred_free(&c);
    }
    hive_store_free(&s);
}

Test(store, user_provider_replaces_builtin_by_id)
{
    hive_store *s = memory_store(NULL);
    test_provider mine;
    hive_cred *c = make_cred("k", "api_key", "api_key", "v", NULL);

    init_provider(&mine, "static", HIVE_TYPE_API_KEY);
    cr_assert_eq(hive_store_add_provider(s, &mine.base), HIVE_OK);
    cr_assert_eq(hive_cred_set_provider_id(c, "static"), HIVE_OK);
    cr_expect_eq(hive_store_provider_for(s, c), &mine.base);
    hive_cred_free(&c);

    c = make_cred("j", "bearer_token", "access_token", "v", NULL);
    init_provider(&mine, "bearer_token", HIVE_TYPE_BEARER_TOKEN);
    cr_assert_eq(hive_store_add_provider(s, &mine.base), HIVE_OK);
    cr_assert_eq(hive_cred_set_provider_id(c, "bearer_token"), HIVE_OK);
    cr_expect_eq(hive_store_provider_for(s, c), &mine.base);
    hive_cred_free(&c);
    hive_store_free(&s);
}

/* Hive keeps providers in a dict by id: registering "static" again puts the
 * new provider in the built-in's place, so it also wins the type lookup. */
Test(store, user_provider_replaces_builtin_for_type_lookup)
{
    hive_store *s = memory_store(NULL);
    test_provider mine;
    hive_cred *c = make_cred("k", "api_key", "api_key", "v", NULL);

    init_provider(&mine, "static", HIVE_TYPE_API_KEY);
    cr_assert_eq(hive_store_add_provider(s, &mine.base), HIVE_OK);
    cr_expect_eq(hive_store_provider_for(s, c), &mine.base,
                 "an api_key credential without provider_id still went to the built-in static provider");
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect_eq(hive_store_refresh(s, NULL, "k"), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(mine.refreshes, 1);
    hive_store_free(&s);
}

Test(store, add_provider_without_id_is_invalid)
{
    hive_store *s = memory_store(NULL);
    test_provider p;

    init_provider(&p, NULL, HIVE_TYPE_OAUTH2);
    cr_expect_eq(hive_store_add_provider(s, &p.base), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "a provider needs an id");
    hive_store_free(&s);
}

Test(store, add_provider_of_an_unknown_size_is_invalid)
{
    hive_store *s = memory_store(NULL);
    test_provider p;
    hive_cred *c = NULL;

    init_provider(&p, "mine", HIVE_TYPE_OAUTH2);
    p.base.size = 0;
    cr_expect_eq(hive_store_add_provider(s, &p.base), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "hive_provider.size is 0"), "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), "HIVE_PROVIDER_INIT"), "%s", hive_last_error());
    cr_assert_eq(hive_cred_new(&c, "tok", "oauth2"), HIVE_OK);
    cr_expect_str_eq(hive_store_provider_for(s, c)->id, "oauth2", "the refused provider was registered");
    hive_cred_free(&c);
    hive_store_free(&s);
}

static int destroyed;
static void count_destroy(hive_provider *p)
{
    (void)p;
    destroyed++;
}

Test(store, store_destroys_its_providers)
{
    hive_store *s = memory_store(NULL);
    test_provider p;

    init_provider(&p, "mine", HIVE_TYPE_OAUTH2);
    p.base.destroy = count_destroy;
    destroyed = 0;
    cr_assert_eq(hive_store_add_provider(s, &p.base), HIVE_OK);
    hive_store_free(&s);
    cr_expect_eq(destroyed, 1);
}

/* --- refresh -------------------------------------------------------------- */

TestSuite(refresh);

Test(refresh, static_provider_never_refreshes)
{
    hive_store *s = testing_store();
    hive_cred *c = NULL;

    cr_expect_eq(hive_store_refresh(s, &c, "brave_search"), HIVE_ERR_UNSUPPORTED);
    cr_expect_null(c);
    expect_stored(hive_store_storage(s), "brave_search", "api_key", "test-brave-key");
    hive_store_free(&s);
}

/* Hive's StaticProvider.should_refresh is always False: a static credential
 * is never due, so reading it with refresh on neither fails nor warns. */
Test(refresh, static_credential_is_never_due)
{
    warnings w = {0};
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_store *s;
    hive_time soon = now_plus(10);
    hive_cred *c = make_cred("k", "api_key", "api_key", "v", &soon);
    hive_cred *got = NULL;

    o.warn = collect_warning;
    o.warn_ctx = &w;
    s = memory_store(&o);
    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect_eq(hive_store_get_credential(s, &got, "k", 0), HIVE_OK);
    hive_cred_free(&got);
    cr_expect_eq(w.count, 0, "warned: %s", w.last);
    cr_expect_eq(hive_store_get_credential(s, &got, "k", HIVE_GET_STRICT), HIVE_OK,
                 "%s", hive_last_error());
    hive_cred_free(&got);
    hive_store_free(&s);
}

Test(refresh, bearer_token_cannot_be_refreshed)
{
    hive_store *s = memory_store(NULL);
    hive_time past = now_plus(-60);
    hive_cred *c = make_cred("internal_jwt", "bearer_token", "access_token", "eyJ", &past);

    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    cr_assert_eq(hive_store_refresh(s, NULL, "internal_jwt"), HIVE_ERR_UNSUPPORTED);
    cr_expect_str_eq(hive_last_error(), "Bearer token 'internal_jwt' cannot be refreshed. Obtain a new "
                     "token and save it to the credential store.");
    cr_assert_eq(hive_store_get_credential(s, &c, "internal_jwt", HIVE_GET_STRICT),
                 HIVE_ERR_UNSUPPORTED);
    cr_expect_str_eq(hive_last_error(), "Bearer token 'internal_jwt' cannot be refreshed. Obtain a new "
                     "token and save it to the credential store.");
    hive_store_free(&s);
}

Test(refresh, refresh_of_a_missing_id_is_not_found)
{
    hive_store *s = testing_store();

    cr_expect_eq(hive_store_refresh(s, NULL, "nope"), HIVE_ERR_NOT_FOUND);
    hive_store_free(&s);
}

Test(refresh, due_credential_is_refreshed_saved_and_stamped)
{
    test_provider tp;
    hive_time soon = now_plus(60);
    hive_store *s = refresh_store(&tp, NULL, true, &soon);
    hive_cred *c = NULL;
    hive_time before = hive_time_now();
    hive_time t;

    cr_assert_eq(hive_store_get_credential(s, &c, "tok", 0), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(tp.refreshes, 1);
    cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), "refreshed-token");
    cr_expect_str_eq(hive_cred_get_key(c, "refresh_token", NULL), "rt");
    t = hive_cred_time(c, HIVE_CRED_LAST_REFRESHED);
    cr_expect_neq(t.form, HIVE_TIME_NONE);
    cr_expect_geq(t.sec, before.sec);
    hive_cred_free(&c);

    /* saved to the storage, with last_refreshed */
    cr_assert_eq(hive_storage_load(hive_store_storage(s), &c, "tok"), HIVE_OK);
    cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), "refreshed-token");
    cr_expect_neq(hive_cred_time(c, HIVE_CRED_LAST_REFRESHED).form, HIVE_TIME_NONE);
    hive_cred_free(&c);

    /* no longer due: the next read does not refresh again */
    expect_key(s, "tok", NULL, 0, "refreshed-token");
    cr_expect_eq(tp.refreshes, 1);
    hive_store_free(&s);
}

Test(refresh, expired_credential_is_refreshed)
{
    cr_expect_eq(refreshes_for(NULL, true, now_plus(-3600), 0), 1);
}

Test(refresh, a_due_credential_is_refreshed_by_default)
{
    cr_expect_eq(refreshes_for(NULL, true, now_plus(60), 0), 1);
}

Test(refresh, not_with_the_no_refresh_flag)
{
    cr_expect_eq(refreshes_for(NULL, true, now_plus(60), HIVE_GET_NO_REFRESH), 0);
    cr_expect_eq(refreshes_for(NULL, true, now_plus(-60), HIVE_GET_NO_REFRESH | HIVE_GET_STRICT), 0);
}

Test(refresh, not_when_auto_refresh_is_off)
{
    cr_expect_eq(refreshes_for(NULL, false, now_plus(60), 0), 0);
    cr_expect_eq(refreshes_for(NULL, false, now_plus(-60), HIVE_GET_STRICT), 0);
}

Test(refresh, not_when_no_key_expires)
{
    hive_time none = {0, 0, 0, HIVE_TIME_NONE};
    cr_expect_eq(refreshes_for(NULL, true, none, 0), 0);
    cr_expect_eq(refreshes_for(NULL, true, now_plus(3600), 0), 0);
}

Test(refresh, default_margin_is_300_seconds_inclusive)
{
    cr_expect_eq(refreshes_for(NULL, true, now_plus(HIVE_DEFAULT_REFRESH_MARGIN - 1), 0), 1);
    cr_expect_eq(refreshes_for(NULL, true, now_plus(HIVE_DEFAULT_REFRESH_MARGIN), 0), 1);
    cr_expect_eq(refreshes_for(NULL, true, now_plus(HIVE_DEFAULT_REFRESH_MARGIN + 2), 0), 0);
}

Test(refresh, configured_margin_is_used)
{
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;

    o.refresh_margin = 60;
    cr_expect_eq(refreshes_for(&o, true, now_plus(59), 0), 1);
    cr_expect_eq(refreshes_for(&o, true, now_plus(60), 0), 1);
    cr_expect_eq(refreshes_for(&o, true, now_plus(62), 0), 0);
    cr_expect_eq(refreshes_for(&o, true, now_plus(200), 0), 0, "within 300 but not 60");
    o.refresh_margin = 3600;
    cr_expect_eq(refreshes_for(&o, true, now_plus(3000), 0), 1);
}

Test(refresh, negative_margin_refreshes_only_expired_keys)
{
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;

    o.refresh_margin = -1;
    cr_expect_eq(refreshes_for(&o, true, now_plus(-1), 0), 1);
    cr_expect_eq(refreshes_for(&o, true, now_plus(2), 0), 0);
    cr_expect_eq(refreshes_for(&o, true, now_plus(60), 0), 0);
}

Test(refresh, manual_refresh_runs_even_when_not_due)
{
    test_provider tp;
    hive_time later = now_plus(86400);
    hive_store *s = refresh_store(&tp, NULL, false, &later);
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_refresh(s, &c, "tok"), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(tp.refreshes, 1);
    cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), "refreshed-token");
    cr_expect_neq(hive_cred_time(c, HIVE_CRED_LAST_REFRESHED).form, HIVE_TIME_NONE);
    hive_cred_free(&c);
    expect_stored(hive_store_storage(s), "tok", "access_token", "refreshed-token");
    expect_key(s, "tok", "access_token", HIVE_GET_NO_REFRESH, "refreshed-token");
    hive_store_free(&s);
}

Test(refresh, failing_provider_with_strict_fails_the_get)
{
    test_provider tp;
    warnings w = {0};
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_time soon = now_plus(30);
    hive_store *s;
    hive_cred *c = NULL;

    o.warn = collect_warning;
    o.warn_ctx = &w;
    s = refresh_store(&tp, &o, true, &soon);
    tp.fail = true;
    cr_expect_eq(hive_store_get_credential(s, &c, "tok", HIVE_GET_STRICT), HIVE_ERR_IO);
    cr_expect_null(c);
    cr_expect_not_null(strstr(hive_last_error(), "token-endpoint-unreachable"), "%s", hive_last_error());
    cr_expect_eq(tp.refreshes, 1);
    cr_expect_eq(w.count, 0);
    {
        hive_secret v = HIVE_SECRET_INIT;
        cr_expect_eq(hive_store_get_key(s, &v, "tok", NULL, HIVE_GET_STRICT), HIVE_ERR_IO);
        cr_expect_null(v.data);
    }
    expect_stored(hive_store_storage(s), "tok", "access_token", "old-token");
    hive_store_free(&s);
}

Test(refresh, failing_provider_without_strict_warns_and_returns_the_stored_credential)
{
    test_provider tp;
    warnings w = {0};
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_time soon = now_plus(30);
    hive_store *s;
    hive_cred *c = NULL;

    o.warn = collect_warning;
    o.warn_ctx = &w;
    s = refresh_store(&tp, &o, true, &soon);
    tp.fail = true;
    cr_assert_eq(hive_store_get_credential(s, &c, "tok", 0), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), "old-token");
    cr_expect_eq(hive_cred_time(c, HIVE_CRED_LAST_REFRESHED).form, HIVE_TIME_NONE);
    hive_cred_free(&c);
    cr_expect_eq(tp.refreshes, 1);
    cr_expect_eq(w.count, 1);
    cr_expect_not_null(strstr(w.last, "Credential 'token-endpoint-unreachable' not found"), "%s", w.last);
    expect_stored(hive_store_storage(s), "tok", "access_token", "old-token");
    hive_store_free(&s);
}

/* One store asks a failing provider once and warns once. */
Test(refresh, failed_refresh_is_tried_and_warned_once)
{
    test_provider tp;
    warnings w = {0};
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_time soon = now_plus(30);
    hive_store *s;

    o.warn = collect_warning;
    o.warn_ctx = &w;
    s = refresh_store(&tp, &o, true, &soon);
    tp.fail = true;
    expect_key(s, "tok", "access_token", 0, "old-token");
    expect_key(s, "tok", "access_token", 0, "old-token");
    cr_expect_eq(tp.refreshes, 1);
    cr_expect_eq(w.count, 1);
    {
        hive_cred *c = NULL;
        cr_expect_eq(hive_store_get_credential(s, &c, "tok", HIVE_GET_STRICT), HIVE_ERR_IO);
        cr_expect_not_null(strstr(hive_last_error(), "token-endpoint-unreachable"), "%s", hive_last_error());
        cr_expect_null(c);
    }
    cr_expect_eq(tp.refreshes, 1);
    hive_store_free(&s);
}

/* The memory of a failure must not outlive a successful refresh or a new
 * credential saved through the store (a re-authorisation). */
Test(refresh, successful_refresh_forgets_an_earlier_failure)
{
    test_provider tp;
    hive_time soon = now_plus(30);
    hive_store *s = refresh_store(&tp, NULL, true, &soon);
    hive_cred *c = NULL;

    tp.fail = true;
    expect_key(s, "tok", "access_token", 0, "old-token");
    cr_assert_eq(tp.refreshes, 1);
    tp.fail = false;
    cr_assert_eq(hive_store_refresh(s, NULL, "tok"), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(tp.refreshes, 2);
    /* a new credential, saved through the store, due again */
    c = oauth_cred("tok", true, &soon);
    cr_assert_eq(hive_store_save(s, c), HIVE_OK);
    hive_cred_free(&c);
    cr_expect_eq(hive_store_get_credential(s, &c, "tok", HIVE_GET_STRICT), HIVE_OK,
                 "the failure before the successful refresh was replayed: %s", hive_last_error());
    cr_expect_eq(tp.refreshes, 3);
    if (c != NULL)
        cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), "refreshed-token");
    hive_cred_free(&c);
    hive_store_free(&s);
}

Test(refresh, failing_provider_without_a_warn_callback_is_silent)
{
    test_provider tp;
    hive_time soon = now_plus(30);
    hive_store *s = refresh_store(&tp, NULL, true, &soon);

    tp.fail = true;
    expect_key(s, "tok", "access_token", 0, "old-token");
    cr_expect_eq(tp.refreshes, 1);
    hive_store_free(&s);
}

/* hive_cred_needs_refresh at a fixed instant. */
static bool due(bool auto_refresh, int64_t expires_in, int32_t usec_delta, int margin)
{
    hive_time now = {1772366400, 250000, 0, HIVE_TIME_UTC};   /* 2026-03-01T12:00:00.25Z */
    hive_time exp = now;
    hive_cred *c = make_cred("x", "oauth2", "refresh_token", "r", NULL);
    bool r;

    exp.sec += expires_in;
    exp.usec += usec_delta;
    cr_assert_eq(hive_cred_set_key(c, "access_token", "a", 1, &exp), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(c, auto_refresh), HIVE_OK);
    r = hive_cred_needs_refresh(c, margin, now);
    hive_cred_free(&c);
    return r;
}

Test(refresh, needs_refresh_at_the_margin)
{
    cr_expect(due(true, 299, 0, 300));
    cr_expect(due(true, 300, 0, 300), "expiring exactly at now + margin is due");
    cr_expect_not(due(true, 301, 0, 300));
    cr_expect(due(true, -1, 0, 300));
    cr_expect(due(true, -86400, 0, 300));
    cr_expect(due(true, 59, 0, 60));
    cr_expect(due(true, 60, 0, 60));
    cr_expect_not(due(true, 61, 0, 60));
    cr_expect(due(true, 0, 0, 0));
    cr_expect_not(due(true, 1, 0, 0));
    cr_expect_not(due(false, -60, 0, 300), "auto_refresh off");
    cr_expect_not(due(false, 0, 0, 0), "auto_refresh off");
}

Test(refresh, needs_refresh_counts_fractions_of_a_second)
{
    /* 300.5 s away is not within 300 s; 299.5 s away is */
    cr_expect_not(due(true, 300, 500000, 300), "a key expiring in 300.5 s is not within a 300 s margin");
    cr_expect(due(true, 300, -200000, 300));
    cr_expect_not(due(true, 0, 500000, 0), "a key expiring in 0.5 s has not expired yet");
}

/* As Hive's OAuth2 provider: the access token decides. An id_token or a
 * refresh token has an expiry of its own that a refresh does not renew:
 * counting it made a credential due again right after every refresh. */
Test(refresh, the_access_token_decides_what_is_due)
{
    hive_time now = hive_time_now();
    hive_time soon = now_plus(10);
    hive_time later = now_plus(86400);
    hive_time past = now_plus(-60);
    hive_time due_at;
    hive_cred *c = make_cred("x", "oauth2", "access_token", "a", NULL);

    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    cr_expect_not(hive_cred_needs_refresh(c, 300, now), "no key expires");
    cr_assert_eq(hive_cred_set_key(c, "id_token", "i", 1, &past), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "refresh_token", "r", 1, &past), HIVE_OK);
    cr_expect_not(hive_cred_needs_refresh(c, 300, now),
                  "an access token without expiry is never due, whatever the other keys");
    cr_expect_not(hive_cred_refresh_due(c, &due_at, 300));
    cr_assert_eq(hive_cred_set_key_expires(c, "access_token", &later), HIVE_OK);
    cr_expect_not(hive_cred_needs_refresh(c, 300, now), "a fresh access token with an expired id_token");
    cr_assert(hive_cred_refresh_due(c, &due_at, 300));
    cr_expect_eq(due_at.sec, later.sec - 300, "due: the access token's expiry less the margin");
    cr_assert_eq(hive_cred_set_key_expires(c, "access_token", &soon), HIVE_OK);
    cr_expect(hive_cred_needs_refresh(c, 300, now), "the access token within the margin");
    hive_cred_free(&c);

    /* without an access token, any key (Hive's default provider rule) */
    c = make_cred("y", "custom", "session", "s", &later);
    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    cr_expect_not(hive_cred_needs_refresh(c, 300, now));
    cr_assert_eq(hive_cred_set_key(c, "other", "o", 1, &soon), HIVE_OK);
    cr_expect(hive_cred_needs_refresh(c, 300, now), "any key within the margin");
    hive_cred_free(&c);
}

/* The storm of issue 12: a fresh access token next to an expired id_token. */
Test(refresh, fresh_access_token_with_expired_other_keys_is_not_refreshed)
{
    test_provider tp;
    hive_time later = now_plus(3600);
    hive_time past = now_plus(-3600);
    hive_store *s = refresh_store(&tp, NULL, true, &later);
    hive_cred *c = NULL;

    cr_assert_eq(hive_storage_load(hive_store_storage(s), &c, "tok"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "id_token", "idt", 3, &past), HIVE_OK);
    cr_assert_eq(hive_cred_set_key_expires(c, "refresh_token", &past), HIVE_OK);
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK);
    hive_cred_free(&c);
    for (int i = 0; i < 3; i++)
        expect_key(s, "tok", "access_token", HIVE_GET_STRICT, "old-token");
    cr_expect_eq(tp.refreshes, 0);
    hive_store_free(&s);
}

/* One store handle (one launch) refreshes a credential at most once, and
 * every read after it gets what the store keeps: even when the provider's
 * new token is itself due at once. */
Test(refresh, a_launch_refreshes_a_credential_at_most_once)
{
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_store *s = refresh_store(&tp, NULL, true, &past);

    tp.numbered = true;
    tp.expired = true;
    for (int i = 0; i < 3; i++) {
        expect_key(s, "tok", "access_token", 0, "refreshed-token-1");
        expect_key(s, "tok", "access_token", HIVE_GET_STRICT, "refreshed-token-1");
    }
    cr_expect_eq(tp.refreshes, 1);
    expect_stored(hive_store_storage(s), "tok", "access_token", "refreshed-token-1");
    hive_store_free(&s);
}

/* Once per launch is no once per handle: a long-lived handle refreshes a
 * token again when it has become due again, cached or not. */
/* No .timeout: with --jobs, Criterion 2.4's runner leaks a block for each
 * timed test beyond the first (LeakSanitizer reports it); ctest's TIMEOUT
 * bounds a hang. */
Test(refresh, a_long_lived_handle_refreshes_again_when_due_again)
{
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_store *s = refresh_store(&tp, NULL, true, &past);

    tp.numbered = true;
    tp.ttl = 2;   /* due after two thirds of its life */
    expect_key(s, "tok", "access_token", 0, "refreshed-token-1");
    expect_key(s, "tok", "access_token", 0, "refreshed-token-1");
    sleep(2);
    expect_key(s, "tok", "access_token", HIVE_GET_STRICT, "refreshed-token-2");
    cr_expect_eq(tp.refreshes, 2);
    hive_store_free(&s);
}

/* A store without a cache (the --fresh refresher) reads the storage each
 * time and decides again: its own loop sets the pace. */
Test(refresh, a_store_without_cache_decides_on_each_read)
{
    test_provider tp;
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;
    hive_time past = now_plus(-60);
    hive_store *s;

    o.cache_ttl = -1;
    s = refresh_store(&tp, &o, true, &past);
    tp.numbered = true;
    tp.expired = true;
    expect_key(s, "tok", "access_token", 0, "refreshed-token-1");
    expect_key(s, "tok", "access_token", 0, "refreshed-token-2");
    cr_expect_eq(tp.refreshes, 2);
    expect_stored(hive_store_storage(s), "tok", "access_token", "refreshed-token-2");
    hive_store_free(&s);
}

/* Another writer that does not wait for the refresh lock (Hive itself, an
 * older hive) replaces or deletes the credential while the token request
 * is out: the refresh must not save over it. */
static void add_meanwhile(hive_store *store)
{
    hive_time later = now_plus(7200);
    hive_cred *c = oauth_cred("tok", true, &later);

    cr_assert_eq(hive_cred_set_key(c, "access_token", "added-meanwhile", 15, &later), HIVE_OK);
    cr_assert_eq(hive_storage_save(hive_store_storage(store), c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
}

static void delete_meanwhile(hive_store *store)
{
    cr_assert_eq(hive_storage_delete(hive_store_storage(store), "tok"), HIVE_OK, "%s", hive_last_error());
}

Test(refresh, a_refresh_keeps_a_credential_saved_meanwhile)
{
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_store *s = refresh_store(&tp, NULL, true, &past);
    hive_cred *c = NULL;

    tp.meanwhile = add_meanwhile;
    expect_key(s, "tok", "access_token", HIVE_GET_STRICT, "added-meanwhile");
    expect_stored(hive_store_storage(s), "tok", "access_token", "added-meanwhile");
    cr_expect_eq(tp.refreshes, 1);

    /* asked for explicitly: the refresh fails, saying why */
    cr_expect_eq(hive_store_refresh(s, &c, "tok"), HIVE_ERR_CHANGED);
    cr_expect_null(c);
    cr_expect_not_null(strstr(hive_last_error(), "changed by another writer while it was being refreshed"),
                       "%s", hive_last_error());
    expect_stored(hive_store_storage(s), "tok", "access_token", "added-meanwhile");
    hive_store_free(&s);
}

Test(refresh, a_refresh_does_not_resurrect_a_credential_deleted_meanwhile)
{
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_store *s = refresh_store(&tp, NULL, true, &past);
    hive_cred *c = NULL;
    bool found = true;

    tp.meanwhile = delete_meanwhile;
    cr_expect_eq(hive_store_get_credential(s, &c, "tok", 0), HIVE_ERR_NOT_FOUND);
    cr_expect_null(c);
    cr_assert_eq(hive_storage_exists(hive_store_storage(s), &found, "tok"), HIVE_OK);
    cr_expect_not(found, "the refresh saved a deleted credential again");

    hive_store_free(&s);
    s = refresh_store(&tp, NULL, true, &past);
    tp.meanwhile = delete_meanwhile;
    cr_expect_eq(hive_store_refresh(s, &c, "tok"), HIVE_ERR_NOT_FOUND);
    cr_expect_not_null(strstr(hive_last_error(), "deleted while it was being refreshed"), "%s", hive_last_error());
    cr_assert_eq(hive_storage_exists(hive_store_storage(s), &found, "tok"), HIVE_OK);
    cr_expect_not(found, "the refresh saved a deleted credential again");
    hive_store_free(&s);
}

/* --- environment storage ------------------------------------------------ */

static char tmp[256];

static void make_tmp(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/hive-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void remove_tmp(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    cr_assert_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void expect_loaded(hive_storage *st, const char *id, const char *want)
{
    hive_cred *c = NULL;
    cr_assert_eq(hive_storage_load(st, &c, id), HIVE_OK, "%s: %s", id, hive_last_error());
    cr_expect_str_eq(hive_cred_id(c), id);
    cr_expect_str_eq(hive_cred_get_key(c, "api_key", NULL), want, "%s", id);
    hive_cred_free(&c);
}

TestSuite(env_storage);

Test(env_storage, explicit_mapping_reads_the_variable)
{
    static const char *const mapping[] = {"brave_search", "HIVE_UNIT_BRAVE", "github", "HIVE_UNIT_GH", NULL};
    hive_storage *st = NULL;
    hive_cred *c = NULL;
    bool found = false;

    setenv("HIVE_UNIT_BRAVE", "bsa-from-env", 1);
    unsetenv("HIVE_UNIT_GH");
    unsetenv("BRAVE_SEARCH_API_KEY");
    cr_assert_eq(hive_env_storage_open(&st, mapping, ""), HIVE_OK);
    cr_assert_eq(hive_storage_load(st, &c, "brave_search"), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_type_str(c), "api_key");
    cr_expect_eq(hive_cred_get_type(c), HIVE_TYPE_API_KEY);
    cr_expect_eq(hive_cred_key_count(c), 1);
    cr_expect_str_eq(hive_cred_key_name(c, 0), "api_key");
    cr_expect_str_eq(hive_cred_get_key(c, "api_key", NULL), "bsa-from-env");
    hive_cred_free(&c);
    cr_expect_eq(hive_storage_load(st, &c, "github"), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_storage_exists(st, &found, "brave_search"), HIVE_OK);
    cr_expect(found);
    cr_assert_eq(hive_storage_exists(st, &found, "github"), HIVE_OK);
    cr_expect_not(found);
    hive_storage_free(&st);
    cr_expect_null(st);
}

Test(env_storage, default_variable_name_comes_from_the_id)
{
    hive_storage *st = NULL;
    char var[128];

    setenv("BRAVE_SEARCH_API_KEY", "dashed", 1);
    cr_assert_eq(hive_env_storage_open(&st, NULL, ""), HIVE_OK);
    hive_env_storage_variable(st, var, sizeof(var), "brave-search");
    cr_expect_str_eq(var, "BRAVE_SEARCH_API_KEY");
    hive_env_storage_variable(st, var, sizeof(var), "openai");
    cr_expect_str_eq(var, "OPENAI_API_KEY");
    expect_loaded(st, "brave-search", "dashed");
    expect_loaded(st, "brave_search", "dashed");
    hive_storage_free(&st);
}

Test(env_storage, mapped_variable_name_is_reported)
{
    static const char *const mapping[] = {"github", "GITHUB_TOKEN", NULL};
    hive_storage *st = NULL;
    char var[128];

    cr_assert_eq(hive_env_storage_open(&st, mapping, ""), HIVE_OK);
    hive_env_storage_variable(st, var, sizeof(var), "github");
    cr_expect_str_eq(var, "GITHUB_TOKEN");
    hive_storage_free(&st);
}

Test(env_storage, dotenv_file_is_a_second_source)
{
    static const char *const mapping[] = {"both", "HIVE_UNIT_BOTH", NULL};
    hive_storage *st = NULL;
    char path[300];
    bool found = false;
    hive_cred *c = NULL;

    make_tmp();
    snprintf(path, sizeof(path), "%s/.env", tmp);
    write_text(path, "# secrets\nFILEONLY_API_KEY=from-file\nHIVE_UNIT_BOTH=file-loses\n");
    unsetenv("FILEONLY_API_KEY");
    setenv("HIVE_UNIT_BOTH", "env-wins", 1);
    cr_assert_eq(hive_env_storage_open(&st, mapping, path), HIVE_OK);
    expect_loaded(st, "fileonly", "from-file");
    expect_loaded(st, "both", "env-wins");
    cr_assert_eq(hive_storage_exists(st, &found, "fileonly"), HIVE_OK);
    cr_expect(found);
    cr_expect_eq(hive_storage_load(st, &c, "absent"), HIVE_ERR_NOT_FOUND);
    hive_storage_free(&st);
    remove_tmp();
}

Test(env_storage, missing_dotenv_file_is_no_source)
{
    hive_storage *st = NULL;
    hive_cred *c = NULL;

    unsetenv("NOTHERE_API_KEY");
    cr_assert_eq(hive_env_storage_open(&st, NULL, "/nonexistent/hive-unit/.env"), HIVE_OK);
    cr_expect_eq(hive_storage_load(st, &c, "nothere"), HIVE_ERR_NOT_FOUND);
    hive_storage_free(&st);
}

Test(env_storage, empty_value_counts_as_missing)
{
    static const char *const mapping[] = {"blank", "HIVE_UNIT_BLANK", NULL};
    hive_storage *st = NULL;
    hive_cred *c = NULL;
    hive_strlist ids = {0};
    char path[300];
    bool found = true;

    make_tmp();
    snprintf(path, sizeof(path), "%s/.env", tmp);
    write_text(path, "EMPTYFILE_API_KEY=\nQUOTEDEMPTY_API_KEY=\"\"\nFALLBACK_API_KEY=file-value\n");
    setenv("HIVE_UNIT_BLANK", "", 1);
    unsetenv("EMPTYFILE_API_KEY");
    unsetenv("QUOTEDEMPTY_API_KEY");
    setenv("FALLBACK_API_KEY", "", 1);
    cr_assert_eq(hive_env_storage_open(&st, mapping, path), HIVE_OK);

    cr_expect_eq(hive_storage_load(st, &c, "blank"), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_storage_exists(st, &found, "blank"), HIVE_OK);
    cr_expect_not(found);
    /* Hive: an empty value in the file cannot be loaded, yet it exists
     * (EnvVarStorage.exists is "_read_env_value(...) is not None") */
    cr_expect_eq(hive_storage_load(st, &c, "emptyfile"), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_storage_exists(st, &found, "emptyfile"), HIVE_OK);
    cr_expect(found);
    cr_expect_eq(hive_storage_load(st, &c, "quotedempty"), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_storage_exists(st, &found, "quotedempty"), HIVE_OK);
    cr_expect(found);
    /* an empty variable falls through to the file */
    expect_loaded(st, "fallback", "file-value");
    cr_assert_eq(hive_storage_list(st, &ids), HIVE_OK);
    cr_expect_eq(ids.count, 0);
    hive_strlist_free(&ids);
    hive_storage_free(&st);
    remove_tmp();
}

Test(env_storage, the_file_is_read_again_at_each_lookup_as_hive_does)
{
    hive_storage *st = NULL;
    char path[300];

    make_tmp();
    snprintf(path, sizeof(path), "%s/.env", tmp);
    unsetenv("HOTRELOAD_API_KEY");
    write_text(path, "HOTRELOAD_API_KEY=first\n");
    cr_assert_eq(hive_env_storage_open(&st, NULL, path), HIVE_OK);
    expect_loaded(st, "hotreload", "first");
    write_text(path, "HOTRELOAD_API_KEY=second\n");
    expect_loaded(st, "hotreload", "second");
    hive_storage_free(&st);
    remove_tmp();
}

Test(env_storage, expands_variables_and_warns_about_skipped_statements)
{
    hive_storage *st = NULL;
    char path[300];
    warnings w = {0};

    make_tmp();
    snprintf(path, sizeof(path), "%s/.env", tmp);
    unsetenv("EXPANDED_API_KEY");
    setenv("HIVE_UNIT_PREFIX", "sk", 1);
    write_text(path, "PART=123\nnot a statement\nEXPANDED_API_KEY=${HIVE_UNIT_PREFIX}-${PART}\n");
    cr_assert_eq(hive_env_storage_open(&st, NULL, path), HIVE_OK);
    hive_env_storage_set_warn(st, collect_warning, &w);
    expect_loaded(st, "expanded", "sk-123");
    cr_expect_eq(w.count, 1);
    cr_expect_not_null(strstr(w.last, "line 2"), "%s", w.last);
    cr_expect_null(strstr(w.last, "not a statement"), "the text itself is never in a message: %s", w.last);
    hive_storage_free(&st);
    remove_tmp();
}

Test(env_storage, a_file_that_is_not_utf8_is_an_error_not_a_missing_credential)
{
    hive_storage *st = NULL;
    hive_cred *c = NULL;
    char path[300];

    make_tmp();
    snprintf(path, sizeof(path), "%s/.env", tmp);
    unsetenv("BROKEN_API_KEY");
    write_text(path, "BROKEN_API_KEY=\xff\xfe\n");
    cr_assert_eq(hive_env_storage_open(&st, NULL, path), HIVE_OK);
    cr_expect_eq(hive_storage_load(st, &c, "broken"), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "UTF-8"), "%s", hive_last_error());
    hive_storage_free(&st);
    remove_tmp();
}

Test(env_storage, save_and_delete_are_read_only)
{
    static const char *const mapping[] = {"k", "HIVE_UNIT_K", NULL};
    hive_storage *st = NULL;
    hive_cred *c = make_cred("k", "api_key", "api_key", "v", NULL);

    setenv("HIVE_UNIT_K", "present", 1);
    cr_assert_eq(hive_env_storage_open(&st, mapping, ""), HIVE_OK);
    cr_expect_eq(hive_storage_save(st, c), HIVE_ERR_READ_ONLY);
    cr_expect_not_null(strstr(hive_last_error(), "read-only"), "%s", hive_last_error());
    cr_expect_eq(hive_storage_delete(st, "k"), HIVE_ERR_READ_ONLY);
    cr_expect_not_null(strstr(hive_last_error(), "read-only"), "%s", hive_last_error());
    expect_loaded(st, "k", "present");
    hive_cred_free(&c);
    hive_storage_free(&st);
}

Test(env_storage, list_gives_the_mapped_ids_that_are_set)
{
    static const char *const mapping[] = {"zeta", "HIVE_UNIT_Z", "alpha", "HIVE_UNIT_A", "unset",
                                          "HIVE_UNIT_UNSET", NULL};
    hive_storage *st = NULL;
    hive_strlist ids = {0};

    setenv("HIVE_UNIT_Z", "z", 1);
    setenv("HIVE_UNIT_A", "a", 1);
    unsetenv("HIVE_UNIT_UNSET");
    cr_assert_eq(hive_env_storage_open(&st, mapping, ""), HIVE_OK);
    cr_assert_eq(hive_storage_list(st, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 2);
    cr_expect_str_eq(ids.items[0], "alpha");
    cr_expect_str_eq(ids.items[1], "zeta");
    hive_strlist_free(&ids);
    hive_storage_free(&st);
}

Test(env_storage, odd_mapping_is_invalid)
{
    static const char *const mapping[] = {"lonely", NULL};
    hive_storage *st = NULL;

    cr_expect_eq(hive_env_storage_open(&st, mapping, ""), HIVE_ERR_INVALID);
    cr_expect_null(st);
}

Test(env_storage, store_over_env_storage_like_with_env_storage)
{
    static const char *const mapping[] = {"brave_search", "HIVE_UNIT_BSA", NULL};
    hive_storage *st = NULL;
    hive_store *s = NULL;

    setenv("HIVE_UNIT_BSA", "doc-key", 1);
    cr_assert_eq(hive_env_storage_open(&st, mapping, ""), HIVE_OK);
    cr_assert_eq(hive_store_new(&s, st, NULL), HIVE_OK);
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "doc-key");
    expect_key(s, "brave_search", NULL, HIVE_GET_NO_REFRESH, "doc-key");
    cr_expect(hive_store_is_available(s, "brave_search"));
    cr_expect_eq(hive_store_delete(s, "brave_search"), HIVE_ERR_READ_ONLY);
    hive_store_free(&s);
}

/* --- composite storage --------------------------------------------------- */

TestSuite(composite);

/* primary: a=primary-a; fallback 1: a=fb1-a, b=fb1-b; fallback 2: b=fb2-b, c=fb2-c */
static hive_storage *layered(hive_storage **primary, hive_storage **fb1, hive_storage **fb2)
{
    hive_storage *comp = NULL;
    hive_storage *fbs[2];

    cr_assert_eq(hive_memory_storage_new(primary), HIVE_OK);
    cr_assert_eq(hive_memory_storage_new(fb1), HIVE_OK);
    cr_assert_eq(hive_memory_storage_new(fb2), HIVE_OK);
    put_api_key(*primary, "a", "primary-a");
    put_api_key(*fb1, "a", "fb1-a");
    put_api_key(*fb1, "b", "fb1-b");
    put_api_key(*fb2, "b", "fb2-b");
    put_api_key(*fb2, "c", "fb2-c");
    fbs[0] = *fb1;
    fbs[1] = *fb2;
    cr_assert_eq(hive_composite_storage_new(&comp, *primary, fbs, 2), HIVE_OK);
    return comp;
}

Test(composite, first_hit_wins)
{
    hive_storage *p, *f1, *f2;
    hive_storage *comp = layered(&p, &f1, &f2);
    hive_cred *c = NULL;

    expect_loaded(comp, "a", "primary-a");
    expect_loaded(comp, "b", "fb1-b");
    expect_loaded(comp, "c", "fb2-c");
    cr_expect_eq(hive_storage_load(comp, &c, "zzz"), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'zzz' not found");
    hive_storage_free(&comp);
}

Test(composite, writes_go_to_the_primary_only)
{
    hive_storage *p, *f1, *f2;
    hive_storage *comp = layered(&p, &f1, &f2);
    bool found = true;

    put_api_key(comp, "b", "written");
    expect_loaded(p, "b", "written");
    expect_loaded(f1, "b", "fb1-b");
    expect_loaded(f2, "b", "fb2-b");
    expect_loaded(comp, "b", "written");
    put_api_key(comp, "new", "n");
    cr_assert_eq(hive_storage_exists(f1, &found, "new"), HIVE_OK);
    cr_expect_not(found);
    cr_assert_eq(hive_storage_exists(f2, &found, "new"), HIVE_OK);
    cr_expect_not(found);
    expect_loaded(p, "new", "n");
    hive_storage_free(&comp);
}

Test(composite, deletes_go_to_the_primary_only)
{
    hive_storage *p, *f1, *f2;
    hive_storage *comp = layered(&p, &f1, &f2);
    bool found = true;

    cr_assert_eq(hive_storage_delete(comp, "a"), HIVE_OK);
    cr_assert_eq(hive_storage_exists(p, &found, "a"), HIVE_OK);
    cr_expect_not(found);
    expect_loaded(f1, "a", "fb1-a");
    expect_loaded(comp, "a", "fb1-a");   /* now served by the fallback */
    cr_expect_eq(hive_storage_delete(comp, "c"), HIVE_ERR_NOT_FOUND, "c lives in a fallback only");
    expect_loaded(f2, "c", "fb2-c");
    hive_storage_free(&comp);
}

Test(composite, exists_is_any)
{
    hive_storage *p, *f1, *f2;
    hive_storage *comp = layered(&p, &f1, &f2);
    bool found;

    found = false;
    cr_assert_eq(hive_storage_exists(comp, &found, "a"), HIVE_OK);
    cr_expect(found);
    found = false;
    cr_assert_eq(hive_storage_exists(comp, &found, "b"), HIVE_OK);
    cr_expect(found);
    found = false;
    cr_assert_eq(hive_storage_exists(comp, &found, "c"), HIVE_OK);
    cr_expect(found);
    found = true;
    cr_assert_eq(hive_storage_exists(comp, &found, "zzz"), HIVE_OK);
    cr_expect_not(found);
    hive_storage_free(&comp);
}

Test(composite, list_is_the_union_without_duplicates)
{
    hive_storage *p, *f1, *f2;
    hive_storage *comp = layered(&p, &f1, &f2);
    hive_strlist ids = {0};

    put_api_key(p, "0first", "x");
    cr_assert_eq(hive_storage_list(comp, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 4);
    cr_expect_str_eq(ids.items[0], "0first");
    cr_expect_str_eq(ids.items[1], "a");
    cr_expect_str_eq(ids.items[2], "b");
    cr_expect_str_eq(ids.items[3], "c");
    hive_strlist_free(&ids);
    hive_storage_free(&comp);
}

Test(composite, primary_with_env_fallback_like_the_doc)
{
    static const char *const mapping[] = {"brave_search", "HIVE_UNIT_BRAVE2", NULL};
    hive_storage *mem = NULL, *env = NULL, *comp = NULL;
    hive_store *s = NULL;

    setenv("HIVE_UNIT_BRAVE2", "env-key", 1);
    cr_assert_eq(hive_memory_storage_new(&mem), HIVE_OK);
    cr_assert_eq(hive_env_storage_open(&env, mapping, ""), HIVE_OK);
    cr_assert_eq(hive_composite_storage_new(&comp, mem, &env, 1), HIVE_OK);
    cr_assert_eq(hive_store_new(&s, comp, NULL), HIVE_OK);
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "env-key");
    {
        hive_cred *c = make_cred("brave_search", "api_key", "api_key", "saved-key", NULL);
        cr_assert_eq(hive_store_save(s, c), HIVE_OK, "%s", hive_last_error());
        hive_cred_free(&c);
    }
    hive_store_invalidate(s, NULL);
    expect_key(s, "brave_search", "api_key", HIVE_GET_NO_REFRESH, "saved-key");
    hive_store_free(&s);
}

/* --- dotenv ------------------------------------------------------------- */

TestSuite(dotenv);

static hive_json *parse_env(const char *text)
{
    hive_json *obj = NULL;
    cr_assert_eq(hive_dotenv_parse(&obj, text, strlen(text)), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_json_typeof(obj), HIVE_JSON_OBJECT);
    return obj;
}

static void expect_env(const hive_json *obj, const char *name, const char *want)
{
    const hive_json *v = hive_json_get(obj, name);
    size_t len = 0;
    cr_assert_not_null(v, "%s missing", name);
    cr_assert_eq(hive_json_typeof(v), HIVE_JSON_STRING);
    cr_expect_str_eq(hive_json_string(v, &len), want, "%s", name);
    cr_expect_eq(len, strlen(want), "%s", name);
}

Test(dotenv, comments_and_blank_lines_are_skipped)
{
    hive_json *o = parse_env("# a comment\n\n   \nA=1\n  # indented comment\n\t\nB=two\n# last");

    cr_expect_eq(hive_json_size(o), 2);
    expect_env(o, "A", "1");
    expect_env(o, "B", "two");
    hive_json_free(&o);
}

Test(dotenv, export_prefix_is_accepted)
{
    hive_json *o = parse_env("export KEY=value\nexport   SPACED=x\nexported=y\n");

    expect_env(o, "KEY", "value");
    expect_env(o, "SPACED", "x");
    expect_env(o, "exported", "y");
    cr_expect_eq(hive_json_size(o), 3);
    hive_json_free(&o);
}

Test(dotenv, whitespace_around_the_equals_sign)
{
    hive_json *o = parse_env("A = spaced  \nB\t=\ttabbed\t\nC=\nD.E_f=dotted\r\n");

    expect_env(o, "A", "spaced");
    expect_env(o, "B", "tabbed");
    expect_env(o, "C", "");
    expect_env(o, "D.E_f", "dotted");
    hive_json_free(&o);
}

Test(dotenv, single_quotes_are_literal)
{
    hive_json *o = parse_env("A='a\\nb $HOME \"q\" # not a comment'\nB=''\n");

    expect_env(o, "A", "a\\nb $HOME \"q\" # not a comment");
    expect_env(o, "B", "");
    hive_json_free(&o);
}

Test(dotenv, double_quotes_take_escapes)
{
    hive_json *o = parse_env("A=\"x\\ny\\tz\\r\\\\ \\\" \\' \\$HOME \\v\\q\"\nB=\"a # b\" # comment\n");

    /* python-dotenv's escapes: \\ \' \" \a \b \f \n \r \t \v; others stay as written */
    expect_env(o, "A", "x\ny\tz\r\\ \" ' \\$HOME \v\\q");
    expect_env(o, "B", "a # b");
    hive_json_free(&o);
}

Test(dotenv, double_quotes_span_lines)
{
    hive_json *o = parse_env("KEY=\"-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----\"\nNEXT=1\n");

    expect_env(o, "KEY", "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----");
    expect_env(o, "NEXT", "1");
    hive_json_free(&o);
}

Test(dotenv, inline_comment_needs_a_space_before_the_hash)
{
    hive_json *o = parse_env("A=value # a comment\nB=val#ue\nC=value\t# tab comment\nD=#notcomment\n");

    expect_env(o, "A", "value");
    expect_env(o, "B", "val#ue");
    expect_env(o, "C", "value");
    expect_env(o, "D", "#notcomment");
    hive_json_free(&o);
}

Test(dotenv, a_later_line_wins)
{
    hive_json *o = parse_env("A=first\nB=b\nA=second\n");

    expect_env(o, "A", "second");
    expect_env(o, "B", "b");
    cr_expect_eq(hive_json_size(o), 2);
    hive_json_free(&o);
}

Test(dotenv, empty_text_is_an_empty_object)
{
    hive_json *o = parse_env("");

    cr_expect_eq(hive_json_size(o), 0);
    hive_json_free(&o);
}

/* python-dotenv skips a statement it cannot parse, warning with its line. */
typedef struct skipped_lines {
    size_t line[8];
    size_t n;
} skipped_lines;

static void note_skipped(void *ctx, size_t line)
{
    skipped_lines *s = ctx;
    if (s->n < 8)
        s->line[s->n++] = line;
}

static hive_json *parse_env_skipping(const char *text, skipped_lines *s)
{
    hive_dotenv_options opts = {.size = sizeof(opts), .skipped = note_skipped, .ctx = s};
    hive_json *obj = NULL;
    cr_assert_eq(hive_dotenv_parse_with(&obj, text, strlen(text), &opts), HIVE_OK, "%s", hive_last_error());
    return obj;
}

Test(dotenv, a_bad_statement_is_skipped_alone_with_its_line)
{
    skipped_lines s = {0};
    hive_json *o = parse_env_skipping("A=1\n# comment\nthis is sekrit text\nB=2\n", &s);

    expect_env(o, "A", "1");
    expect_env(o, "B", "2");
    cr_expect_eq(hive_json_size(o), 2);
    cr_assert_eq(s.n, 1);
    cr_expect_eq(s.line[0], 3);
    hive_json_free(&o);
}

Test(dotenv, the_line_named_is_where_the_statement_began_as_python_dotenv_says)
{
    skipped_lines s = {0};
    /* python-dotenv's statement takes in the blank lines before it */
    hive_json *o = parse_env_skipping("A=\"one\ntwo\nthree\"\n\n\nbad line\nC=3\n", &s);

    expect_env(o, "A", "one\ntwo\nthree");
    expect_env(o, "C", "3");
    cr_assert_eq(s.n, 1);
    cr_expect_eq(s.line[0], 4);
    hive_json_free(&o);
}

Test(dotenv, text_after_a_closing_quote_skips_the_statement)
{
    skipped_lines s = {0};
    hive_json *o = parse_env_skipping("A='quoted' trailing-sekrit\nB=2\n", &s);

    cr_expect_null(hive_json_get(o, "A"));
    expect_env(o, "B", "2");
    cr_assert_eq(s.n, 1);
    cr_expect_eq(s.line[0], 1);
    hive_json_free(&o);
}

Test(dotenv, an_unterminated_quote_skips_its_line)
{
    skipped_lines s = {0};
    hive_json *o = parse_env_skipping("OK=1\nA=\"never closed sekrit\nB=2\n", &s);

    expect_env(o, "OK", "1");
    expect_env(o, "B", "2");
    cr_expect_null(hive_json_get(o, "A"));
    cr_assert_eq(s.n, 1);
    cr_expect_eq(s.line[0], 2);
    hive_json_free(&o);
}

Test(dotenv, a_name_alone_is_null)
{
    hive_json *o = parse_env("KEY\nA=${KEY:-default}\n");

    cr_expect_eq(hive_json_typeof(hive_json_get(o, "KEY")), HIVE_JSON_NULL);
    expect_env(o, "A", "");   /* None resolves to "", not to the default */
    hive_json_free(&o);
}

static hive_rc fixed_lookup(void *ctx, const char *name, size_t name_len, const char **value, size_t *len)
{
    (void)ctx;
    *value = NULL;
    if (name_len == 3 && memcmp(name, "ENV", 3) == 0) {
        *value = "from-env";
        *len = 8;
    }
    if (name_len == 4 && memcmp(name, "FAIL", 4) == 0)
        return HIVE_ERR_INVALID;
    return HIVE_OK;
}

Test(dotenv, variables_expand_from_the_file_then_the_lookup)
{
    hive_dotenv_options opts = {.size = sizeof(opts), .lookup = fixed_lookup};
    const char *text = "A=1\nB=${A}x\nC='${A}'\nD=\"${ENV}\"\nE=${NOPE:-dflt}\nF=${ENV:-no}\n"
                       "ENV=file\nG=${ENV}\nH=$A ${A\n";
    hive_json *o = NULL;

    cr_assert_eq(hive_dotenv_parse_with(&o, text, strlen(text), &opts), HIVE_OK, "%s", hive_last_error());
    expect_env(o, "B", "1x");
    expect_env(o, "C", "1");          /* python-dotenv expands single-quoted values too */
    expect_env(o, "D", "from-env");
    expect_env(o, "E", "dflt");
    expect_env(o, "F", "from-env");
    expect_env(o, "G", "file");       /* the file's own value wins over the environment */
    expect_env(o, "H", "$A ${A");
    hive_json_free(&o);
    opts.flags = HIVE_DOTENV_NO_INTERPOLATE;
    cr_assert_eq(hive_dotenv_parse_with(&o, text, strlen(text), &opts), HIVE_OK);
    expect_env(o, "B", "${A}x");
    hive_json_free(&o);
}

Test(dotenv, a_failing_lookup_fails_the_parse)
{
    hive_dotenv_options opts = {.size = sizeof(opts), .lookup = fixed_lookup};
    const char *text = "A=${FAIL}\n";
    hive_json *o = NULL;

    cr_expect_eq(hive_dotenv_parse_with(&o, text, strlen(text), &opts), HIVE_ERR_INVALID);
    cr_expect_null(o);
}

Test(dotenv, expansion_that_doubles_each_line_is_bounded)
{
    char *text = malloc(1 << 16);
    size_t n = (size_t)sprintf(text, "A=%0512d\n", 0);
    hive_json *o = NULL;

    for (int i = 0; i < 40; i++)
        n += (size_t)sprintf(text + n, "A=${A}${A}\n");
    cr_expect_eq(hive_dotenv_parse(&o, text, n), HIVE_ERR_TOO_LARGE);
    cr_expect_null(o);
    free(text);
}

Test(dotenv, not_utf8_fails_the_whole_file_naming_the_line)
{
    const char *text = "A=1\nB=\xff\n";
    hive_json *o = NULL;

    cr_expect_eq(hive_dotenv_parse(&o, text, strlen(text)), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "line 2"), "%s", hive_last_error());
}

Test(dotenv, carriage_returns_end_lines_as_in_python_text_mode)
{
    hive_json *o = parse_env("A=1\r\nB=\"x\r\ny\"\rC=3\r");

    expect_env(o, "A", "1");
    expect_env(o, "B", "x\ny");
    expect_env(o, "C", "3");
    hive_json_free(&o);
}

Test(dotenv, load_reads_a_file_and_reports_a_missing_one)
{
    hive_json *o = NULL;
    char path[300];

    make_tmp();
    snprintf(path, sizeof(path), "%s/.env", tmp);
    write_text(path, "export TOKEN='t0k'\n");
    cr_assert_eq(hive_dotenv_load(&o, path), HIVE_OK, "%s", hive_last_error());
    expect_env(o, "TOKEN", "t0k");
    hive_json_free(&o);
    snprintf(path, sizeof(path), "%s/missing.env", tmp);
    cr_expect_eq(hive_dotenv_load(&o, path), HIVE_ERR_NOT_FOUND);
    remove_tmp();
}

/* --- refresh over a file storage ------------------------------------------ */

static void save_through_the_store(hive_store *store)
{
    hive_time later = now_plus(7200);
    hive_cred *c = oauth_cred("tok", true, &later);

    cr_assert_eq(hive_cred_set_key(c, "access_token", "saved-by-provider", 17, &later), HIVE_OK);
    cr_assert_eq(hive_store_save(store, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
}

/* Writes to a file storage wait for the credential's refresh lock; a
 * provider writing the credential it refreshes through the store must not
 * wait for the lock its own refresh holds. */
/* No .timeout: with --jobs, Criterion 2.4's runner leaks a block for each
 * timed test beyond the first (LeakSanitizer reports it); ctest's TIMEOUT
 * bounds a hang. */
Test(refresh, a_provider_writing_its_credential_does_not_wait_for_its_own_lock)
{
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    hive_storage *fs = NULL;
    hive_store *s = NULL;
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_cred *c = oauth_cred("tok", true, &past);

    make_tmp();
    o.dir = tmp;
    o.key = "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI=";
    cr_assert_eq(hive_file_storage_open(&fs, &o), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_store_new(&s, fs, NULL), HIVE_OK, "%s", hive_last_error());
    init_provider(&tp, "test-oauth", HIVE_TYPE_OAUTH2);
    cr_assert_eq(hive_store_add_provider(s, &tp.base), HIVE_OK);
    tp.store = s;
    cr_assert_eq(hive_store_save(s, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
    tp.meanwhile = save_through_the_store;
    expect_key(s, "tok", "access_token", HIVE_GET_STRICT, "saved-by-provider");
    expect_stored(hive_store_storage(s), "tok", "access_token", "saved-by-provider");
    cr_expect_eq(tp.refreshes, 1);
    hive_store_free(&s);
    remove_tmp();
}

/* --- what a provider is given, and asking without refreshing ------------ */

/* A provider that reads another credential through its lookup while it
 * refreshes: it gets that credential as stored, never refreshed, even
 * when it is due itself. */
static char looked_up[64];

static hive_rc lookup_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    hive_cred *other = NULL;
    hive_time exp = now_plus(3600);
    const char *v;

    (void)p;
    cr_assert_eq(lookup->load(lookup->ctx, &other, "other"), HIVE_OK, "%s", hive_last_error());
    v = hive_cred_get_key(other, "access_token", NULL);
    snprintf(looked_up, sizeof(looked_up), "%s", v != NULL ? v : "");
    hive_cred_free(&other);
    return hive_cred_set_key(cred, "access_token", "new", 3, &exp);
}

Test(refresh, a_provider_looks_up_credentials_as_stored)
{
    hive_store *s = memory_store(NULL);
    test_provider tp;
    hive_time past = now_plus(-60);
    hive_cred *c = oauth_cred("tok", true, &past);
    hive_cred *other = oauth_cred("other", true, &past);

    init_provider(&tp, "test-oauth", HIVE_TYPE_OAUTH2);
    tp.base.refresh = lookup_refresh;
    cr_assert_eq(hive_store_add_provider(s, &tp.base), HIVE_OK);
    cr_assert_eq(hive_store_save(s, c), HIVE_OK);
    cr_assert_eq(hive_store_save(s, other), HIVE_OK);
    expect_key(s, "tok", "access_token", HIVE_GET_STRICT, "new");
    cr_expect_str_eq(looked_up, "old-token", "the lookup refreshed 'other'");
    expect_stored(hive_store_storage(s), "other", "access_token", "old-token");
    hive_cred_free(&c);
    hive_cred_free(&other);
    hive_store_free(&s);
}

Test(refresh, can_refresh_asks_the_provider_without_refreshing)
{
    hive_store *s = memory_store(NULL);
    hive_time past = now_plus(-60);
    hive_cred *api = make_cred("k", "api_key", "api_key", "v", NULL);
    hive_cred *bearer = make_cred("b", "bearer_token", "access_token", "eyJ", &past);
    hive_cred *oauth = make_cred("o", "oauth2", "access_token", "old", &past);
    hive_cred *config = make_cred("idp", "custom", "token_url", "https://idp.example/token", NULL);

    cr_expect_not(hive_store_can_refresh(s, api));
    cr_expect_str_eq(hive_last_error(), "No provider can refresh credential 'k'");
    cr_expect_not(hive_store_can_refresh(s, bearer));
    cr_expect_str_eq(hive_last_error(), "Bearer token 'b' cannot be refreshed");
    cr_assert_eq(hive_cred_set_provider_id(oauth, "idp"), HIVE_OK);
    cr_expect_not(hive_store_can_refresh(s, oauth), "no configuration credential yet");
    cr_expect_not_null(strstr(hive_last_error(), "its provider 'idp' is not in the store"), "%s",
                       hive_last_error());
    cr_assert_eq(hive_cred_set_key(config, "client_id", "cid", 3, NULL), HIVE_OK);
    cr_assert_eq(hive_store_save(s, config), HIVE_OK);
    cr_expect(hive_store_can_refresh(s, oauth), "%s", hive_last_error());
    cr_expect_str_eq(hive_last_error(), "");
    hive_cred_free(&api);
    hive_cred_free(&bearer);
    hive_cred_free(&oauth);
    hive_cred_free(&config);
    hive_store_free(&s);
}
