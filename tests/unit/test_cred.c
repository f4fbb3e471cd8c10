/*
 * Credential objects against the store the Python Hive framework wrote:
 * decrypt, parse, emit gives exactly Hive's plaintext; encrypting it with
 * the same IV and time gives exactly Hive's file.
 */
#include "testutil.h"

/* library-internal, linked from the static library */
hive_rc hive__b64_decode_lenient(uint8_t *out, size_t *out_len, const char *in, size_t len);

static void fixture_key(uint8_t key[32])
{
    size_t len;
    char *text = data_file("fixtures/hive-home/secrets/credential_key", &len);
    cr_assert_eq(hive_fernet_key_decode(key, text, len), HIVE_OK);
    free(text);
}

Test(cred, fixture_round_trips_byte_for_byte)
{
    hive_json *exp = data_json("fixtures/hive-home/fixture-expected.json");
    const hive_json *creds = hive_json_get(exp, "credentials");
    uint8_t key[32];

    fixture_key(key);
    cr_assert_eq(hive_json_size(creds), 8);
    for (size_t i = 0; i < hive_json_size(creds); i++) {
        const hive_json *c = hive_json_at(creds, i, NULL);
        const char *want = jstr(c, "plaintext_json");
        char path[512];
        size_t tlen, rlen, nlen;
        char *token, *again;
        hive_secret plain = HIVE_SECRET_INIT, out = HIVE_SECRET_INIT;
        uint8_t raw[4096];
        hive_cred *cred = NULL;
        uint64_t ts = 0;
        const hive_json *keys = hive_json_get(c, "keys");

        snprintf(path, sizeof(path), "fixtures/hive-home/%s", jstr(c, "file"));
        token = data_file(path, &tlen);
        cr_assert_eq(hive_fernet_decrypt(&plain, token, tlen, key), HIVE_OK);
        cr_assert_eq(plain.len, strlen(want));
        cr_assert_arr_eq(plain.data, want, plain.len);

        cr_assert_eq(hive_cred_parse(&cred, (char *)plain.data, plain.len), HIVE_OK, "%s", hive_last_error());
        cr_assert_str_eq(hive_cred_id(cred), jstr(c, "id"));
        cr_assert_eq(hive_cred_emit(cred, &out), HIVE_OK);
        cr_assert_str_eq(out.data, want, "re-emitted %s differs", jstr(c, "id"));

        /* every key value, and the default key */
        for (size_t k = 0; k < hive_json_size(keys); k++) {
            const char *name;
            const hive_json *v = hive_json_at(keys, k, &name);
            size_t vlen;
            const char *got = hive_cred_get_key(cred, name, &vlen);
            cr_assert_not_null(got, "%s.%s", jstr(c, "id"), name);
            cr_assert_str_eq(got, hive_json_string(v, NULL));
        }
        cr_assert_str_eq(hive_cred_get_key(cred, hive_cred_default_key(cred), NULL), jstr(c, "default_key"));

        /* same IV and time -> the same file */
        cr_assert_eq(hive__b64_decode_lenient(raw, &rlen, token, tlen), HIVE_OK);
        for (int b = 0; b < 8; b++)
            ts = ts << 8 | raw[1 + b];
        cr_assert_eq(hive_fernet_encrypt_at(&again, &nlen, out.data, out.len, ts, raw + 9, key), HIVE_OK);
        cr_assert_eq(nlen, tlen);
        cr_assert_str_eq(again, token);

        free(again);
        hive_secret_free(&out);
        hive_secret_free(&plain);
        hive_cred_free(&cred);
        free(token);
    }
    hive_json_free(&exp);
}

static hive_cred *parse(const char *json)
{
    hive_cred *c = NULL;
    cr_assert_eq(hive_cred_parse(&c, json, strlen(json)), HIVE_OK, "%s", hive_last_error());
    return c;
}

static void expect_emit(const hive_cred *c, const char *want)
{
    hive_secret out = HIVE_SECRET_INIT;
    cr_assert_eq(hive_cred_emit(c, &out), HIVE_OK);
    cr_expect_str_eq(out.data, want);
    hive_secret_free(&out);
}

Test(cred, normalises_as_pydantic_does)
{
    /* fields out of order, defaults missing, +00:00 and naive datetimes,
     * unknown fields at both levels */
    hive_cred *c = parse("{\"extra\": [1, 2.50], \"keys\": {\"k\": {\"value\": \"v\", \"name\": \"k\", \"zz\": true, "
                         "\"expires_at\": \"2026-01-01T00:00:00+00:00\"}}, \"id\": \"x\", "
                         "\"credential_type\": \"custom\", \"created_at\": \"2026-01-01T00:00:00\", "
                         "\"updated_at\": 1767225600, \"auto_refresh\": \"yes\", \"use_count\": 3.0}");
    expect_emit(c, "{\"id\": \"x\", \"credential_type\": \"custom\", \"keys\": {\"k\": {\"name\": \"k\", "
                   "\"value\": \"v\", \"expires_at\": \"2026-01-01T00:00:00Z\", \"metadata\": {}, "
                   "\"zz\": true}}, \"provider_id\": null, \"last_refreshed\": null, \"auto_refresh\": true, "
                   "\"last_used\": null, \"use_count\": 3, \"description\": \"\", \"tags\": [], "
                   "\"created_at\": \"2026-01-01T00:00:00\", \"updated_at\": \"2026-01-01T00:00:00Z\", "
                   "\"extra\": [1, 2.5]}");
    hive_cred_free(&c);
}

Test(cred, default_key_rule)
{
    hive_cred *c = parse("{\"id\": \"a\", \"keys\": {\"z\": {\"name\": \"z\", \"value\": \"1\"}, \"access_token\": {\"name\": \"access_token\", \"value\": \"2\"}, "
                         "\"api_key\": {\"name\": \"api_key\", \"value\": \"3\"}}}");
    cr_assert_str_eq(hive_cred_default_key(c), "api_key");
    hive_cred_free(&c);
    c = parse("{\"id\": \"a\", \"keys\": {\"z\": {\"name\": \"z\", \"value\": \"1\"}, \"access_token\": {\"name\": \"access_token\", \"value\": \"2\"}, "
              "\"value\": {\"name\": \"value\", \"value\": \"3\"}}}");
    cr_assert_str_eq(hive_cred_default_key(c), "value");
    hive_cred_free(&c);
    c = parse("{\"id\": \"a\", \"keys\": {\"z\": {\"name\": \"z\", \"value\": \"1\"}, \"access_token\": {\"name\": \"access_token\", \"value\": \"2\"}}}");
    cr_assert_str_eq(hive_cred_default_key(c), "access_token");
    hive_cred_free(&c);
    c = parse("{\"id\": \"a\", \"keys\": {\"z\": {\"name\": \"z\", \"value\": \"1\"}, \"y\": {\"name\": \"y\", \"value\": \"2\"}}}");
    cr_assert_str_eq(hive_cred_default_key(c), "z");
    hive_cred_free(&c);
    c = parse("{\"id\": \"a\", \"keys\": {}}");
    cr_assert_null(hive_cred_default_key(c));
    hive_cred_free(&c);
}

Test(cred, rejects_what_hive_cannot_load)
{
    static const char *const bad[] = {
        "[]", "{}", "{\"id\": 5}", "{\"id\": \"\"}", "{\"id\": \"a\\u0000b\"}",
        "{\"id\": \"a\", \"keys\": []}", "{\"id\": \"a\", \"keys\": {\"k\": {}}}",
        "{\"id\": \"a\", \"keys\": {\"k\": {\"value\": 5}}}",
        "{\"id\": \"a\", \"keys\": {\"k\": {\"value\": \"v\", \"expires_at\": \"soon\"}}}",
        "{\"id\": \"a\", \"tags\": [1]}", "{\"id\": \"a\", \"auto_refresh\": \"maybe\"}",
        "{\"id\": \"a\", \"use_count\": 1.5}", "{\"id\": \"a\", \"created_at\": null}",
        "not json", "{\"id\": \"a\"} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hive_cred *c = NULL;
        cr_expect_eq(hive_cred_parse(&c, bad[i], strlen(bad[i])), HIVE_ERR_FORMAT, "%s", bad[i]);
        cr_expect_null(c);
    }
}

Test(cred, unknown_type_is_rejected_naming_the_field_as_hive_does)
{
    const char *doc = "{\"id\": \"a\", \"credential_type\": \"future_kind\"}";
    hive_cred *c = NULL;

    cr_assert_eq(hive_cred_parse(&c, doc, strlen(doc)), HIVE_ERR_FORMAT);
    cr_expect_null(c);
    cr_expect_not_null(strstr(hive_last_error(), "credential_type"), "%s", hive_last_error());
    cr_expect_null(strstr(hive_last_error(), "future_kind"), "the value is not echoed: %s", hive_last_error());
}

Test(cred, setters_keep_hive_form)
{
    hive_cred *c = NULL;
    hive_time t;
    hive_secret out = HIVE_SECRET_INIT;

    cr_assert_eq(hive_cred_new(&c, "svc", "oauth2"), HIVE_OK);
    cr_assert_eq(hive_time_parse(&t, "2030-01-01T00:00:00Z", 20), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "tok", 3, &t), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "refresh_token", "ref", 3, NULL), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "bad", "\xff", 1, NULL), HIVE_ERR_INVALID);
    cr_assert_eq(hive_cred_add_tag(c, "t1"), HIVE_OK);
    cr_assert_eq(hive_cred_add_tag(c, "t1"), HIVE_OK);
    cr_assert_eq(hive_cred_set_provider_id(c, "oauth2"), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    cr_assert_eq(hive_cred_new(&c, "x", "password"), HIVE_ERR_INVALID);
    cr_assert_eq(hive_cred_emit(c, &out), HIVE_OK);
    cr_assert_not_null(strstr(out.data, "\"keys\": {\"access_token\": {\"name\": \"access_token\", \"value\": "
                                   "\"tok\", \"expires_at\": \"2030-01-01T00:00:00Z\", \"metadata\": {}}"));
    cr_assert_not_null(strstr(out.data, "\"provider_id\": \"oauth2\", \"last_refreshed\": null, \"auto_refresh\": true"));
    cr_assert_not_null(strstr(out.data, "\"tags\": [\"t1\"]"));
    hive_secret_free(&out);
    {
        hive_time e = hive_cred_expires(c);
        cr_assert_eq(e.sec, t.sec);
    }
    hive_cred_free(&c);
}

/* Hand-made documents and what the Python Hive's pydantic models make of
 * them (tests/tools/gen_cred_cases.py ran pydantic itself). */
#include "cred_cases.inc"

Test(cred, loads_and_rejects_what_hive_does)
{
    for (size_t i = 0; i < sizeof(cred_cases) / sizeof(cred_cases[0]); i++) {
        const struct cred_case *k = &cred_cases[i];
        hive_cred *c = NULL;
        hive_rc rc = hive_cred_parse(&c, k->in, strlen(k->in));
        if (k->out != NULL) {
            hive_secret out = HIVE_SECRET_INIT;
            cr_expect_eq(rc, HIVE_OK, "Hive loads %s; hive: %s", k->in, hive_last_error());
            if (rc != HIVE_OK)
                continue;
            cr_assert_eq(hive_cred_emit(c, &out), HIVE_OK);
            cr_expect_str_eq(out.data, k->out, "%s", k->in);
            hive_secret_free(&out);
            hive_cred_free(&c);
        } else {
            cr_expect_eq(rc, HIVE_ERR_FORMAT, "Hive rejects %s (%s)", k->in, k->field);
            if (rc == HIVE_OK) {
                hive_cred_free(&c);
                continue;
            }
            cr_expect_not_null(strstr(hive_last_error(), k->field), "the error names '%s': %s (%s)", k->field,
                               hive_last_error(), k->in);
        }
    }
}

Test(cred, type_names_round_trip)
{
    static const char *const names[] = {"api_key", "oauth2", "basic_auth", "bearer_token", "custom"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        hive_cred_type t = hive_cred_type_parse(names[i]);
        cr_assert_neq(t, HIVE_TYPE_UNKNOWN, "%s", names[i]);
        cr_expect_str_eq(hive_cred_type_name(t), names[i]);
    }
    cr_expect_eq(hive_cred_type_parse("API_KEY"), HIVE_TYPE_UNKNOWN);
    cr_expect_eq(hive_cred_type_parse(NULL), HIVE_TYPE_UNKNOWN);
    cr_expect_null(hive_cred_type_name(HIVE_TYPE_UNKNOWN));
    cr_expect_null(hive_cred_type_name((hive_cred_type)(HIVE_TYPE_CUSTOM + 1)));
    cr_expect_null(hive_cred_type_name((hive_cred_type)-1));
}

Test(cred, key_metadata_as_stored)
{
    hive_cred *c = parse("{\"id\": \"gh\", \"credential_type\": \"oauth2\", \"keys\": {"
                         "\"access_token\": {\"name\": \"access_token\", \"value\": \"t\", "
                         "\"metadata\": {\"scope\": \"repo\", \"n\": 2}}, "
                         "\"refresh_token\": {\"name\": \"refresh_token\", \"value\": \"r\"}}}");
    const hive_json *m = hive_cred_key_metadata(c, "access_token");

    cr_assert_not_null(m);
    cr_expect_eq(hive_json_typeof(m), HIVE_JSON_OBJECT);
    cr_expect_eq(hive_json_size(m), 2);
    cr_expect_str_eq(hive_json_string(hive_json_get(m, "scope"), NULL), "repo");
    cr_expect_eq(hive_json_number(hive_json_get(m, "n")), 2.0);
    /* a key stored without metadata has Hive's default, an empty object */
    m = hive_cred_key_metadata(c, "refresh_token");
    cr_assert_not_null(m);
    cr_expect_eq(hive_json_typeof(m), HIVE_JSON_OBJECT);
    cr_expect_eq(hive_json_size(m), 0);
    cr_expect_null(hive_cred_key_metadata(c, "id_token"));
    hive_cred_free(&c);
}

Test(cred, remove_key_leaves_the_others)
{
    hive_cred *c = NULL;
    hive_time soon, later;

    cr_assert_eq(hive_cred_new(&c, "svc", "oauth2"), HIVE_OK);
    cr_assert_eq(hive_time_parse(&soon, "2030-01-01T00:00:00Z", 20), HIVE_OK);
    cr_assert_eq(hive_time_parse(&later, "2031-01-01T00:00:00Z", 20), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "tok", 3, &soon), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "refresh_token", "ref", 3, &later), HIVE_OK);
    cr_assert_eq(hive_cred_expires(c).sec, soon.sec);

    cr_assert_eq(hive_cred_remove_key(c, "access_token"), HIVE_OK);
    cr_expect_eq(hive_cred_key_count(c), 1);
    cr_expect_null(hive_cred_get_key(c, "access_token", NULL));
    cr_expect_null(hive_cred_key_metadata(c, "access_token"));
    cr_expect_str_eq(hive_cred_get_key(c, "refresh_token", NULL), "ref");
    cr_expect_str_eq(hive_cred_default_key(c), "refresh_token");
    cr_expect_eq(hive_cred_expires(c).sec, later.sec, "the credential's expiry is that of the keys left");
    {
        hive_secret out = HIVE_SECRET_INIT;

        cr_assert_eq(hive_cred_emit(c, &out), HIVE_OK);
        cr_expect_not_null(strstr(out.data, "\"keys\": {\"refresh_token\": {\"name\": \"refresh_token\", \"value\": "
                                       "\"ref\", \"expires_at\": \"2031-01-01T00:00:00Z\", \"metadata\": {}}}"), "%s", out.data);
        cr_expect_null(strstr(out.data, "\"tok\""), "%s", out.data);
        hive_secret_free(&out);
    }
    /* the last key: a credential with no keys */
    cr_assert_eq(hive_cred_remove_key(c, "refresh_token"), HIVE_OK);
    cr_expect_eq(hive_cred_key_count(c), 0);
    cr_expect_null(hive_cred_default_key(c));
    cr_expect_eq(hive_cred_expires(c).form, HIVE_TIME_NONE);
    hive_cred_free(&c);
}

Test(cred, remove_key_that_is_absent)
{
    hive_cred *c = NULL;

    cr_assert_eq(hive_cred_new(&c, "svc", "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "k", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_cred_remove_key(c, "api_kye"), HIVE_ERR_KEY_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Key 'api_kye' not found in credential 'svc'");
    cr_expect_eq(hive_cred_key_count(c), 1);
    cr_expect_str_eq(hive_cred_get_key(c, "api_key", NULL), "k");
    hive_cred_free(&c);
}

/* Datetime fields are named by an enum: each reads and writes Hive's
 * field, null only where Hive allows it, and a number naming no field is
 * refused rather than silently read as null. */
Test(cred, time_fields_by_enum)
{
    static const struct {
        hive_cred_time_field f;
        const char *name;
        bool nullable;
    } fields[] = {
        {HIVE_CRED_CREATED_AT, "created_at", false},
        {HIVE_CRED_UPDATED_AT, "updated_at", false},
        {HIVE_CRED_LAST_REFRESHED, "last_refreshed", true},
        {HIVE_CRED_LAST_USED, "last_used", true},
    };
    hive_cred *c = NULL;
    hive_time t;

    cr_assert_eq(hive_cred_new(&c, "svc", "api_key"), HIVE_OK);
    cr_assert_eq(hive_time_parse(&t, "2030-01-02T03:04:05Z", 20), HIVE_OK);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        cr_assert_str_eq(hive_cred_time_field_name(fields[i].f), fields[i].name);
        cr_assert_eq(hive_cred_set_time(c, fields[i].f, &t), HIVE_OK);
        cr_expect_eq(hive_cred_time(c, fields[i].f).sec, t.sec, "%s", fields[i].name);
        cr_expect_str_eq(hive_json_string(hive_json_get(hive_cred_json(c), fields[i].name), NULL),
                         "2030-01-02T03:04:05Z");
        cr_expect_eq(hive_cred_set_time(c, fields[i].f, NULL),
                     fields[i].nullable ? HIVE_OK : HIVE_ERR_INVALID, "%s", fields[i].name);
    }
    cr_expect_eq(hive_cred_time(c, HIVE_CRED_LAST_USED).form, HIVE_TIME_NONE);
    cr_expect_null(hive_cred_time_field_name((hive_cred_time_field)99));
    cr_expect_eq(hive_cred_set_time(c, (hive_cred_time_field)99, &t), HIVE_ERR_INVALID);
    cr_expect_eq(hive_cred_time(c, (hive_cred_time_field)99).form, HIVE_TIME_NONE);
    hive_cred_free(&c);
}
