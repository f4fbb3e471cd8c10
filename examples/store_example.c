/*
 * store_example - libhive used the way the Hive documentation uses the
 * Python CredentialStore: save an API key, an OAuth2 token and a
 * username/password, read keys, resolve templates, register and resolve a
 * usage spec, validate.
 *
 * Usage: store_example DIR   (DIR: a new, empty directory for the store)
 */
#include <hive/hive.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                             \
    do {                                                                        \
        hive_rc rc_ = (call);                                                   \
        if (rc_ != HIVE_OK) {                                                   \
            fprintf(stderr, "store_example: %s: %s\n", #call, hive_last_error()); \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

static void save_key(hive_store *store, const char *id, const char *type, const char *const *kv,
                     const char *description, const hive_time *expires)
{
    hive_cred *c = NULL;

    CHECK(hive_cred_new(&c, id, type));
    for (size_t i = 0; kv[i] != NULL; i += 2)
        CHECK(hive_cred_set_key(c, kv[i], kv[i + 1], strlen(kv[i + 1]),
                                i == 0 ? expires : NULL));
    CHECK(hive_cred_set_description(c, description));
    CHECK(hive_store_save(store, c));
    hive_cred_free(&c);
}

int main(int argc, char **argv)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    hive_storage *files = NULL;
    hive_store *store = NULL;
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    bool created = false;
    hive_secret value = HIVE_SECRET_INIT;

    if (argc != 2) {
        fprintf(stderr, "usage: store_example DIR\n");
        return 2;
    }
    /* CredentialStore.with_encrypted_storage(base_path=DIR), with a fresh
     * key held in memory (HIVE_CREDENTIAL_KEY in real use). */
    CHECK(hive_fernet_key_generate(key));
    fo.dir = argv[1];
    fo.key = key;
    CHECK(hive_file_storage_open(&files, &fo));
    CHECK(hive_file_storage_init(files, &created));
    CHECK(hive_store_new(&store, files, NULL));

    /* API key, OAuth2 token (expiring in an hour), username/password */
    {
        hive_time in_an_hour = hive_time_now();
        static const char *const brave[] = {"api_key", "your-api-key-here", NULL};
        static const char *const github[] = {"access_token", "ghp_xxxxxxxxx",
                                             "refresh_token", "ghr_xxxxxxxxx", NULL};
        static const char *const pg[] = {"username", "admin", "password", "secret123", NULL};
        in_an_hour.sec += 3600;
        save_key(store, "brave_search", "api_key", brave, "Brave Search API key", NULL);
        save_key(store, "github_oauth", "oauth2", github, "GitHub OAuth token", &in_an_hour);
        save_key(store, "postgres_db", "basic_auth", pg, "PostgreSQL database credentials", NULL);
    }

    /* credential.get_key("access_token"), store.get_key(...), store.get(...) */
    CHECK(hive_store_get_key(store, &value, "github_oauth", "access_token", 0));
    printf("Token: %s\n", value.data);
    hive_secret_free(&value);
    CHECK(hive_store_get_key(store, &value, "brave_search", "api_key", 0));
    printf("api_key: %s\n", value.data);
    hive_secret_free(&value);
    CHECK(hive_store_get_key(store, &value, "github_oauth", NULL, 0));
    printf("legacy get: %s\n", value.data);
    hive_secret_free(&value);

    /* store.resolve(...) and store.resolve_headers(...) */
    CHECK(hive_store_resolve(store, &value, "https://api.example.com?key={{brave_search.api_key}}", 0));
    printf("url: %s\n", value.data);
    hive_secret_free(&value);
    {
        hive_json *headers = hive_json_new(HIVE_JSON_OBJECT);
        hive_json *resolved = NULL;
        hive_secret text = HIVE_SECRET_INIT;
        const char *tmpl = "Bearer {{github_oauth.access_token}}";
        CHECK(hive_json_set(headers, "Authorization", hive_json_new_string(tmpl, strlen(tmpl))));
        CHECK(hive_store_resolve_headers(store, &resolved, headers, 0));
        CHECK(hive_json_emit(resolved, &text, -1));
        printf("headers: %s\n", text.data);
        hive_secret_free(&text);
        hive_json_free(&resolved);
        hive_json_free(&headers);
    }

    /* store.register_usage(CredentialUsageSpec(...)); store.resolve_for_usage(...) */
    {
        const char *spec_text =
            "{\"credential_id\": \"brave_search\", \"required_keys\": [\"api_key\"],"
            " \"headers\": {\"X-Subscription-Token\": \"{{brave_search.api_key}}\"},"
            " \"env\": {\"BRAVE_API_KEY\": \"{{brave_search.api_key}}\"},"
            " \"description\": \"Brave Search API authentication\"}";
        hive_json *spec = NULL;
        hive_json *kwargs = NULL;
        hive_secret text = HIVE_SECRET_INIT;
        CHECK(hive_json_parse(&spec, spec_text, strlen(spec_text)));
        CHECK(hive_store_register_usage(store, spec, true));
        CHECK(hive_store_resolve_for_usage(store, &kwargs, "brave_search", 0));
        CHECK(hive_json_emit(kwargs, &text, -1));
        printf("resolve_for_usage: %s\n", text.data);
        hive_secret_free(&text);
        hive_json_free(&kwargs);
        hive_json_free(&spec);
    }

    /* validate */
    {
        hive_json *all = NULL;
        hive_strlist problems = {0};
        CHECK(hive_store_validate_all(store, &all));
        printf("validate_all: %zu spec(s) with problems\n", hive_json_size(all));
        hive_json_free(&all);
        CHECK(hive_store_validate_credential(store, &problems, "old_api_key"));
        printf("validate old_api_key: %s\n", problems.count ? problems.items[0] : "ok");
        hive_strlist_free(&problems);
    }

    /* list and delete */
    {
        hive_strlist ids = {0};
        bool exists = true;
        CHECK(hive_store_list(store, &ids));
        printf("Credentials:");
        for (size_t i = 0; i < ids.count; i++)
            printf(" %s", ids.items[i]);
        printf("\n");
        hive_strlist_free(&ids);
        CHECK(hive_store_delete(store, "postgres_db"));
        CHECK(hive_store_exists(store, &exists, "postgres_db"));
        printf("postgres_db deleted: %s\n", exists ? "no" : "yes");
    }

    /* CredentialStore.for_testing({...}) */
    {
        static const char *const table[][3] = {
            {"brave_search", "api_key", "test-brave-key"},
            {"github_oauth", "access_token", "test-token"},
            {"github_oauth", "refresh_token", "test-refresh"},
            {NULL, NULL, NULL},
        };
        hive_store *test_store = NULL;
        CHECK(hive_store_for_testing(&test_store, table));
        CHECK(hive_store_get_key(test_store, &value, "brave_search", "api_key", 0));
        printf("for_testing: %s\n", strcmp(value.data, "test-brave-key") == 0 ? "ok" : "WRONG");
        hive_secret_free(&value);
        hive_store_free(&test_store);
    }
    hive_memzero(key, sizeof(key));
    hive_store_free(&store);
    return 0;
}
