/*
 * The library's contract as a whole: the version, and no stale detail
 * message after a success (hive/common.h).
 */
#include "testutil.h"

#include <stdio.h>

Test(version, the_runtime_version_is_the_headers_one)
{
    char text[32];

    cr_assert_str_eq(hive_version(), HIVE_VERSION);
    cr_assert_eq(hive_version_number(), (unsigned)HIVE_VERSION_NUMBER);
    snprintf(text, sizeof(text), "%u.%u.%u", hive_version_number() >> 16, (hive_version_number() >> 8) & 0xff,
             hive_version_number() & 0xff);
    cr_assert_str_eq(text, HIVE_VERSION);
}

/* A detail message set, as by a failure earlier in this thread. */
static void stale(void)
{
    hive_fail(HIVE_ERR_IO, "a stale message");
}

#define CLEARS(call)                                                                  \
    do {                                                                              \
        stale();                                                                      \
        cr_assert_eq((call), HIVE_OK, "%s: %s", #call, hive_last_error());           \
        cr_assert_str_eq(hive_last_error(), "", "%s left the old message", #call);    \
    } while (0)

Test(errors, a_success_of_every_kind_leaves_no_stale_message)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    uint8_t raw[HIVE_FERNET_KEY_BYTES];
    char *tok = NULL;
    size_t tlen = 0, column = 0;
    hive_secret msg = HIVE_SECRET_INIT, text = HIVE_SECRET_INIT, out = HIVE_SECRET_INIT;
    hive_json *j = NULL, *env = NULL, *all = NULL;
    hive_time t;
    hive_cred *c = NULL, *copy = NULL, *loaded = NULL;
    hive_storage *mem = NULL, *file = NULL;
    hive_store *s = NULL;
    hive_strlist ids = {0};
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    char dir[] = "/tmp/hive-api-XXXXXX";
    bool found = false, created = false;

    /* mem, fernet */
    CLEARS(hive_fernet_key_generate(key));
    CLEARS(hive_fernet_key_decode(raw, key, strlen(key)));
    CLEARS(hive_fernet_encrypt(&tok, &tlen, "x", 1, raw));
    CLEARS(hive_fernet_decrypt(&msg, tok, tlen, raw));
    hive_secret_free(&msg);
    free(tok);
    CLEARS(hive_strlist_add(&ids, "a"));
    hive_strlist_free(&ids);
    /* json, datetime, dotenv, templates */
    CLEARS(hive_json_parse(&j, "{\"a\": 1}", 8));
    CLEARS(hive_json_emit(j, &text, -1));
    hive_secret_free(&text);
    CLEARS(hive_json_set(j, "b", hive_json_new_int(2)));
    CLEARS(hive_time_parse(&t, "2026-01-02T03:04:05", 19));
    CLEARS(hive_dotenv_parse(&env, "A=1\n", 4));
    hive_json_free(&env);
    CLEARS(hive_template_check("{{a.b}}", 7, &column));
    /* credentials */
    CLEARS(hive_cred_new(&c, "api", "api_key"));
    CLEARS(hive_cred_set_key(c, "api_key", "secret", 6, NULL));
    CLEARS(hive_cred_set_description(c, "d"));
    CLEARS(hive_cred_clone(&copy, c));
    CLEARS(hive_cred_emit(c, &text));
    CLEARS(hive_cred_parse(&loaded, text.data, text.len));
    hive_secret_free(&text);
    hive_cred_free(&loaded);
    hive_cred_free(&copy);
    /* storages */
    CLEARS(hive_memory_storage_new(&mem));
    CLEARS(hive_storage_save(mem, c));
    CLEARS(hive_storage_load(mem, &loaded, "api"));
    hive_cred_free(&loaded);
    CLEARS(hive_storage_exists(mem, &found, "api"));
    CLEARS(hive_storage_list(mem, &ids));
    hive_strlist_free(&ids);
    cr_assert_not_null(mkdtemp(dir));
    fo.dir = dir;
    fo.key = key;
    CLEARS(hive_file_storage_open(&file, &fo));
    CLEARS(hive_file_storage_init(file, &created));
    CLEARS(hive_storage_save(file, c));
    CLEARS(hive_storage_load(file, &loaded, "api"));
    hive_cred_free(&loaded);
    CLEARS(hive_storage_delete(file, "api"));
    hive_storage_free(&file);
    fo.dir = NULL;
    CLEARS(hive_storage_open(&file, dir, &fo));
    hive_storage_free(&file);
    /* the store */
    CLEARS(hive_store_new(&s, mem, NULL));
    CLEARS(hive_store_save(s, c));
    CLEARS(hive_store_get_key(s, &out, "api", NULL, HIVE_GET_NO_REFRESH));
    hive_secret_free(&out);
    CLEARS(hive_store_exists(s, &found, "api"));
    CLEARS(hive_store_list(s, &ids));
    hive_strlist_free(&ids);
    CLEARS(hive_store_resolve(s, &out, "k={{api.api_key}}", HIVE_GET_NO_REFRESH));
    hive_secret_free(&out);
    CLEARS(hive_store_validate_all(s, &all));
    hive_json_free(&all);
    CLEARS(hive_store_list_usage(s, &ids));
    hive_strlist_free(&ids);
    CLEARS(hive_store_delete(s, "api"));
    hive_store_free(&s);
    hive_cred_free(&c);
    hive_json_free(&j);
    {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        cr_assert_eq(system(cmd), 0);
    }
}

/* One way to free a secret: hive_secret_free wipes, frees and clears, so
 * a second free (or a free of one never filled) does nothing. */
Test(secret, free_clears_the_struct_and_is_idempotent)
{
    hive_store *s = NULL;
    hive_secret v = HIVE_SECRET_INIT;
    static const char *const table[][3] = {{"svc", "api_key", "k-123"}, {NULL, NULL, NULL}};

    cr_assert_eq(hive_store_for_testing(&s, table), HIVE_OK);
    cr_assert_eq(hive_store_get_key(s, &v, "svc", NULL, 0), HIVE_OK);
    cr_assert_eq(v.len, 5);
    cr_assert_str_eq(v.data, "k-123");
    cr_assert_eq(v.data[v.len], '\0');
    hive_secret_free(&v);
    cr_assert_null(v.data);
    cr_assert_eq(v.len, 0);
    hive_secret_free(&v);
    hive_secret_free(NULL);
    /* a failure leaves it untouched */
    cr_assert_eq(hive_store_get_key(s, &v, "nope", NULL, 0), HIVE_ERR_NOT_FOUND);
    cr_assert_null(v.data);
    cr_assert_eq(hive_store_get_key(s, NULL, "svc", NULL, 0), HIVE_ERR_INVALID);
    hive_store_free(&s);
    cr_assert_null(s);
}
