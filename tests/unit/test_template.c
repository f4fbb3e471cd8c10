/*
 * Templates, usage specs, validation and accounts.
 */
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

/* --- helpers ------------------------------------------------------------- */

static const char *const testing_table[][3] = {
    {"brave_search", "api_key", "test-brave-key"},
    {"github_oauth", "access_token", "test-token"},
    {"github_oauth", "refresh_token", "test-refresh"},
    {"tricky", "value", "{{brave_search}}"},
    {"my-cred_1", "key_2-x", "dashed"},
    {NULL, NULL, NULL},
};

static hive_store *testing_store(void)
{
    hive_store *s = NULL;
    cr_assert_eq(hive_store_for_testing(&s, testing_table), HIVE_OK, "%s", hive_last_error());
    return s;
}

static hive_json *parse(const char *text)
{
    hive_json *v = NULL;
    cr_assert_eq(hive_json_parse(&v, text, strlen(text)), HIVE_OK, "%s: %s", text, hive_last_error());
    return v;
}

/* v as json.dumps writes it (compact separators). */
static char *dump(const hive_json *v)
{
    hive_secret out = HIVE_SECRET_INIT;
    char *copy;
    cr_assert_eq(hive_json_emit(v, &out, -1), HIVE_OK);
    copy = strdup(out.data);
    hive_secret_free(&out);
    return copy;
}

static void expect_json(const hive_json *v, const char *want)
{
    char *got;
    cr_assert_not_null(v, "expected %s, got NULL", want);
    got = dump(v);
    cr_expect_str_eq(got, want);
    free(got);
}

static void expect_resolved(hive_store *s, const char *text, const char *want)
{
    hive_secret out = HIVE_SECRET_INIT;
    cr_assert_eq(hive_store_resolve(s, &out, text, HIVE_GET_NO_REFRESH), HIVE_OK, "%s: %s", text, hive_last_error());
    cr_expect_str_eq(out.data, want, "%s", text);
    cr_expect_eq(out.len, strlen(want));
    hive_secret_free(&out);
}

static void register_spec(hive_store *s, const char *json, bool persist)
{
    hive_json *spec = parse(json);
    cr_assert_eq(hive_store_register_usage(s, spec, persist), HIVE_OK, "%s", hive_last_error());
    hive_json_free(&spec);
}

static void save_cred(hive_store *s, hive_cred *c)
{
    cr_assert_eq(hive_storage_save(hive_store_storage(s), c), HIVE_OK, "%s", hive_last_error());
}

static hive_time now_plus(int64_t seconds)
{
    hive_time t = hive_time_now();
    t.sec += seconds;
    return t;
}

static char tmp[256];

static void make_tmp(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/hive-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void remove_tmp(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' && rm -rf '%s'", tmp, tmp);
    cr_assert_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

/* A memory store whose usage file is <tmp>/usage.json. */
static hive_store *usage_store(void)
{
    static char path[300];
    hive_storage *mem = NULL;
    hive_store *s = NULL;
    hive_store_options o = HIVE_STORE_OPTIONS_INIT;

    snprintf(path, sizeof(path), "%s/usage.json", tmp);
    o.usage_file = path;
    cr_assert_eq(hive_memory_storage_new(&mem), HIVE_OK);
    cr_assert_eq(hive_store_new(&s, mem, &o), HIVE_OK);
    return s;
}

/* --- references ----------------------------------------------------------- */

TestSuite(template_refs);

static hive_template_refs *refs_of(const char *text)
{
    hive_template_refs *refs = NULL;

    cr_assert_eq(hive_template_refs_parse(&refs, text, strlen(text)), HIVE_OK);
    cr_assert_not_null(refs, "a list also when there is no reference");
    return refs;
}

static void expect_ref(const hive_template_refs *refs, size_t i, const char *id, const char *key, size_t start,
                       size_t end)
{
    const char *k = hive_template_refs_key(refs, i);
    size_t s = 99, e = 99;

    cr_assert_not_null(hive_template_refs_id(refs, i));
    cr_expect_str_eq(hive_template_refs_id(refs, i), id);
    if (key == NULL)
        cr_expect_null(k, "key should be NULL, is %s", k ? k : "");
    else {
        cr_assert_not_null(k);
        cr_expect_str_eq(k, key);
    }
    hive_template_refs_span(refs, &s, &e, i);
    cr_expect_eq(s, start, "%s start", id);
    cr_expect_eq(e, end, "%s end", id);
}

Test(template_refs, finds_id_and_id_key_with_offsets)
{
    const char *text = "Bearer {{github_oauth.access_token}} and {{brave_search}}!";
    size_t start, end;
    hive_template_refs *refs = refs_of(text);
    size_t n = hive_template_refs_count(refs);

    cr_assert_eq(n, 2);
    expect_ref(refs, 0, "github_oauth", "access_token", 7, 36);
    expect_ref(refs, 1, "brave_search", NULL, 41, 57);
    hive_template_refs_span(refs, &start, &end, 0);
    cr_expect_eq(memcmp(text + start, "{{", 2), 0);
    hive_template_refs_span(refs, &start, &end, 1);
    cr_expect_eq(memcmp(text + end - 2, "}}", 2), 0);
    hive_template_refs_free(&refs);
}

Test(template_refs, ids_and_keys_take_dashes_and_underscores)
{
    hive_template_refs *refs = refs_of("{{my-cred_1.key_2-x}}{{_-.-_}}{{A9}}");
    size_t n = hive_template_refs_count(refs);

    cr_assert_eq(n, 3);
    expect_ref(refs, 0, "my-cred_1", "key_2-x", 0, 21);
    expect_ref(refs, 1, "_-", "-_", 21, 30);
    expect_ref(refs, 2, "A9", NULL, 30, 36);
    hive_template_refs_free(&refs);
}

Test(template_refs, malformed_references_stay_literal)
{
    static const char *const literal[] = {
        "{{ a }}", "{{a.b.c}}", "{{}}", "{a}", "{{a}", "{{a.}}", "{{.a}}",
        "{{a }}", "{{ a}}", "{{a.b }}", "{{a/}}", "{{/b}}", "{{a/b/c}}", "{{a..b}}", "{{a:b}}", "{{é}}", "}}a{{", "",
        "{ {a}}", "{{a} }",
    };

    for (size_t i = 0; i < sizeof(literal) / sizeof(literal[0]); i++) {
        hive_template_refs *refs = refs_of(literal[i]);
        size_t n = hive_template_refs_count(refs);
        cr_expect_eq(n, 0, "\"%s\" gave %zu references", literal[i], n);
        hive_template_refs_free(&refs);
    }
}

Test(template_refs, a_local_account_id_is_provider_slash_alias)
{
    hive_template_refs *refs = refs_of("{{brave_search/work}} {{brave_search/work.api_key}}");
    size_t n = hive_template_refs_count(refs);

    cr_assert_eq(n, 2);
    expect_ref(refs, 0, "brave_search/work", NULL, 0, 21);
    expect_ref(refs, 1, "brave_search/work", "api_key", 22, 51);
    hive_template_refs_free(&refs);
}

/* Every "{{" either opens a template or is reported, with its column. */
Test(template_check, typos_are_reported_with_their_column_and_what_is_wrong)
{
    static const struct {
        const char *text;
        size_t column;
        const char *why;
    } bad[] = {
        {"{{ brave_search }}", 1, "space"},
        {"{{brave_search", 1, "no closing"},
        {"{{brave_search.}}", 1, "key must follow"},
        {"ab{{brave_search/}}", 3, "alias must follow"},
        {"{{}}", 1, "empty"},
        {"\xc3\xa9{{x", 2, "no closing"},
        {"{{a.b.c}}", 1, "cannot be part"},
        {"{{a b}}", 1, "space"},
        {"ok {{a}} then {{b}", 15, "single '}'"},
        {"}}a{{", 4, "at the end"},
        {"{{a/b/c}}", 1, "cannot be part"},
    };
    static const char *const good[] = {
        "plain", "{{a}}", "{{a.b}}", "{{a/b}}", "{{a/b.c}}", "x{{a}}y{{b.c}}", "{ {", "}}", "{x}",
        "{{a}}}", "{{{a}}}", "{\"k\": {{a}}}", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t col = 0;
        cr_expect_eq(hive_template_check(bad[i].text, strlen(bad[i].text), &col), HIVE_ERR_INVALID, "%s",
                     bad[i].text);
        cr_expect_eq(col, bad[i].column, "%s: column %zu", bad[i].text, col);
        cr_expect_not_null(strstr(hive_last_error(), bad[i].why), "%s: %s", bad[i].text, hive_last_error());
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect_eq(hive_template_check(good[i], strlen(good[i]), NULL), HIVE_OK, "%s: %s", good[i],
                     hive_last_error());
}

Test(template_refs, triple_braces_give_one_reference_at_offset_1)
{
    hive_template_refs *refs = refs_of("{{{a}}}");
    size_t n = hive_template_refs_count(refs);

    cr_assert_eq(n, 1);
    expect_ref(refs, 0, "a", NULL, 1, 6);
    hive_template_refs_free(&refs);
}

Test(template_refs, adjacent_references)
{
    hive_template_refs *refs = refs_of("{{a}}{{b}}");
    size_t n = hive_template_refs_count(refs);

    cr_assert_eq(n, 2);
    expect_ref(refs, 0, "a", NULL, 0, 5);
    expect_ref(refs, 1, "b", NULL, 5, 10);
    hive_template_refs_free(&refs);
}

Test(template_refs, a_broken_reference_does_not_hide_the_next)
{
    hive_template_refs *refs = refs_of("{{a.b.c}} {{ x }} {{good.key}}");
    size_t n = hive_template_refs_count(refs);

    cr_assert_eq(n, 1);
    expect_ref(refs, 0, "good", "key", 18, 30);
    hive_template_refs_free(&refs);
}

Test(template_refs, the_length_bounds_the_scan)
{
    hive_template_refs *refs = NULL;

    cr_assert_eq(hive_template_refs_parse(&refs, "{{a}}", 4), HIVE_OK);
    cr_expect_eq(hive_template_refs_count(refs), 0);
    hive_template_refs_free(&refs);
    cr_assert_eq(hive_template_refs_parse(&refs, "{{a}}{{b}}", 5), HIVE_OK);
    cr_assert_eq(hive_template_refs_count(refs), 1);
    expect_ref(refs, 0, "a", NULL, 0, 5);
    hive_template_refs_free(&refs);
}

Test(template_refs, plain_text_has_none)
{
    hive_template_refs *refs = refs_of("https://api.example.com?q=1&x={y}");
    size_t n = hive_template_refs_count(refs);

    cr_expect_eq(n, 0);
    hive_template_refs_free(&refs);
}

Test(template_refs, past_the_count_and_a_null_list_give_nothing)
{
    hive_template_refs *refs = refs_of("{{a.b}}");
    size_t start = 99, end = 99;

    cr_assert_eq(hive_template_refs_count(refs), 1);
    cr_expect_null(hive_template_refs_id(refs, 1));
    cr_expect_null(hive_template_refs_key(refs, 1));
    hive_template_refs_span(refs, &start, &end, 1);
    cr_expect_eq(start, 0);
    cr_expect_eq(end, 0);
    hive_template_refs_free(&refs);
    cr_expect_null(refs, "free clears the handle");
    hive_template_refs_free(&refs);   /* twice is harmless */
    hive_template_refs_free(NULL);
    cr_expect_eq(hive_template_refs_count(NULL), 0);
    cr_expect_null(hive_template_refs_id(NULL, 0));
    cr_expect_null(hive_template_refs_key(NULL, 0));
}

/* --- resolve -------------------------------------------------------------- */

TestSuite(resolve);

Test(resolve, substitutes_keys_and_default_keys)
{
    hive_store *s = testing_store();

    expect_resolved(s, "https://api.example.com?key={{brave_search.api_key}}",
                    "https://api.example.com?key=test-brave-key");
    expect_resolved(s, "Bearer {{github_oauth}}", "Bearer test-token");
    expect_resolved(s, "{{github_oauth.refresh_token}}{{github_oauth.access_token}}", "test-refreshtest-token");
    expect_resolved(s, "{{my-cred_1.key_2-x}}", "dashed");
    hive_store_free(&s);
}

Test(resolve, text_without_references_is_unchanged)
{
    hive_store *s = testing_store();

    expect_resolved(s, "", "");
    expect_resolved(s, "no templates here", "no templates here");
    expect_resolved(s, "{{ brave_search }} {{a.b.c}}", "{{ brave_search }} {{a.b.c}}");
    expect_resolved(s, "{{{brave_search}}}", "{test-brave-key}");
    hive_store_free(&s);
}

Test(resolve, substituted_values_are_never_rescanned)
{
    hive_store *s = testing_store();

    expect_resolved(s, "{{tricky}}", "{{brave_search}}");
    expect_resolved(s, "x{{tricky.value}}y{{brave_search}}", "x{{brave_search}}ytest-brave-key");
    hive_store_free(&s);
}

Test(resolve, missing_credential_is_not_found)
{
    hive_store *s = testing_store();
    hive_secret out = HIVE_SECRET_INIT;

    cr_assert_eq(hive_store_resolve(s, &out, "a {{nope.key}} b", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'nope' not found");
    cr_expect_null(out.data);
    cr_assert_eq(hive_store_resolve(s, &out, "{{brave_search}}{{nope}}", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'nope' not found");
    cr_expect_null(out.data);
    hive_store_free(&s);
}

Test(resolve, missing_key_is_key_not_found)
{
    hive_store *s = testing_store();
    hive_secret out = HIVE_SECRET_INIT;

    cr_assert_eq(hive_store_resolve(s, &out, "{{brave_search.secret}}", HIVE_GET_NO_REFRESH), HIVE_ERR_KEY_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Key 'secret' not found in credential 'brave_search'");
    cr_expect_null(out.data);
    hive_store_free(&s);
}

Test(resolve, headers_are_resolved_in_order)
{
    hive_store *s = testing_store();
    hive_json *in = parse("{\"Authorization\": \"Bearer {{github_oauth.access_token}}\", "
                          "\"X-Subscription-Token\": \"{{brave_search.api_key}}\", \"Accept\": \"application/json\"}");
    hive_json *out = NULL;

    cr_assert_eq(hive_store_resolve_headers(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_OK, "%s", hive_last_error());
    expect_json(out, "{\"Authorization\": \"Bearer test-token\", \"X-Subscription-Token\": \"test-brave-key\", "
                     "\"Accept\": \"application/json\"}");
    /* the input is untouched */
    expect_json(hive_json_get(in, "Authorization"), "\"Bearer {{github_oauth.access_token}}\"");
    hive_json_free(&out);
    hive_json_free(&in);
    hive_store_free(&s);
}

Test(resolve, params_are_resolved)
{
    hive_store *s = testing_store();
    hive_json *in = parse("{\"api_key\": \"{{brave_search.api_key}}\", \"q\": \"hive\"}");
    hive_json *out = NULL;

    cr_assert_eq(hive_store_resolve_params(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_OK, "%s", hive_last_error());
    expect_json(out, "{\"api_key\": \"test-brave-key\", \"q\": \"hive\"}");
    hive_json_free(&out);
    hive_json_free(&in);
    hive_store_free(&s);
}

Test(resolve, empty_object_resolves_to_an_empty_object)
{
    hive_store *s = testing_store();
    hive_json *in = parse("{}");
    hive_json *out = NULL;

    cr_assert_eq(hive_store_resolve_headers(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_OK);
    expect_json(out, "{}");
    hive_json_free(&out);
    hive_json_free(&in);
    hive_store_free(&s);
}

Test(resolve, non_string_value_is_an_error)
{
    static const char *const bad[] = {
        "{\"X-Count\": 3}", "{\"a\": \"{{brave_search}}\", \"b\": null}", "{\"a\": [\"{{brave_search}}\"]}",
        "{\"a\": {\"b\": \"c\"}}", "{\"a\": true}",
    };
    hive_store *s = testing_store();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hive_json *in = parse(bad[i]);
        hive_json *out = NULL;
        cr_expect_neq(hive_store_resolve_headers(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_OK, "%s", bad[i]);
        cr_expect_null(out, "%s", bad[i]);
        cr_expect_neq(hive_store_resolve_params(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_OK, "%s", bad[i]);
        cr_expect_null(out, "%s", bad[i]);
        hive_json_free(&in);
    }
    hive_store_free(&s);
}

Test(resolve, non_object_is_an_error)
{
    hive_store *s = testing_store();
    hive_json *in = parse("[\"{{brave_search}}\"]");
    hive_json *out = NULL;

    cr_expect_neq(hive_store_resolve_headers(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_OK);
    cr_expect_null(out);
    hive_json_free(&in);
    hive_store_free(&s);
}

Test(resolve, missing_credential_in_headers_fails)
{
    hive_store *s = testing_store();
    hive_json *in = parse("{\"ok\": \"{{brave_search}}\", \"bad\": \"{{nope}}\"}");
    hive_json *out = NULL;

    cr_expect_eq(hive_store_resolve_headers(s, &out, in, HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'nope' not found");
    cr_expect_null(out);
    hive_json_free(&in);
    hive_store_free(&s);
}

Test(resolve, check_template_collects_every_problem)
{
    hive_store *s = testing_store();
    hive_strlist problems = {0};

    cr_assert_eq(hive_store_check_template(s, &problems,
                                           "{{nope}} {{brave_search.secret}} {{brave_search}} {{other.x}} {{ lit }}"),
                 HIVE_OK);
    cr_assert_eq(problems.count, 4);
    cr_expect_str_eq(problems.items[0], "Template '{{nope}} {{brave_search.secret}} {{brave_search}} {{other.x}} "
                                        "{{ lit }}': the '{{' at column 63 is not a template: a space inside '{{ }}'");
    cr_expect_str_eq(problems.items[1], "Credential 'nope' not found");
    cr_expect_str_eq(problems.items[2], "Key 'secret' not found in credential 'brave_search'");
    cr_expect_str_eq(problems.items[3], "Credential 'other' not found");
    hive_strlist_free(&problems);

    cr_assert_eq(hive_store_check_template(s, &problems, "{{brave_search}} {{github_oauth.refresh_token}}"), HIVE_OK);
    cr_expect_eq(problems.count, 0);
    hive_strlist_free(&problems);
    hive_store_free(&s);
}

/* --- usage specs ------------------------------------------------------------ */

TestSuite(usage);

static const char *brave_spec =
    "{\"credential_id\": \"brave_search\", \"required_keys\": [\"api_key\"], "
    "\"headers\": {\"X-Subscription-Token\": \"{{brave_search.api_key}}\"}, "
    "\"description\": \"Brave Search API authentication\"}";

Test(usage, register_in_memory_then_get_and_list)
{
    hive_store *s = testing_store();
    const hive_json *spec;
    hive_strlist ids = {0};

    cr_expect_null(hive_store_get_usage(s, "brave_search"));
    register_spec(s, brave_spec, false);
    register_spec(s, "{\"credential_id\": \"github_oauth\"}", false);
    spec = hive_store_get_usage(s, "brave_search");
    cr_assert_not_null(spec);
    cr_expect_str_eq(jstr(spec, "credential_id"), "brave_search");
    expect_json(hive_json_get(spec, "required_keys"), "[\"api_key\"]");
    expect_json(hive_json_get(spec, "headers"), "{\"X-Subscription-Token\": \"{{brave_search.api_key}}\"}");
    cr_expect_str_eq(jstr(spec, "description"), "Brave Search API authentication");
    cr_assert_eq(hive_store_list_usage(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 2);
    cr_expect_str_eq(ids.items[0], "brave_search");
    cr_expect_str_eq(ids.items[1], "github_oauth");
    hive_strlist_free(&ids);
    hive_store_free(&s);
}

Test(usage, register_again_replaces_the_spec)
{
    hive_store *s = testing_store();
    hive_strlist ids = {0};

    register_spec(s, brave_spec, false);
    register_spec(s, "{\"credential_id\": \"brave_search\", \"description\": \"second\"}", false);
    cr_expect_str_eq(jstr(hive_store_get_usage(s, "brave_search"), "description"), "second");
    expect_json(hive_json_get(hive_store_get_usage(s, "brave_search"), "headers"), "{}");
    cr_assert_eq(hive_store_list_usage(s, &ids), HIVE_OK);
    cr_expect_eq(ids.count, 1);
    hive_strlist_free(&ids);
    hive_store_free(&s);
}

Test(usage, spec_without_credential_id_is_invalid)
{
    hive_store *s = testing_store();
    hive_json *bad = parse("{\"headers\": {}}");
    hive_json *bad2 = parse("{\"credential_id\": \"x\", \"headers\": {\"a\": 1}}");

    cr_expect_eq(hive_store_register_usage(s, bad, false), HIVE_ERR_INVALID);
    cr_expect_eq(hive_store_register_usage(s, bad2, false), HIVE_ERR_INVALID);
    cr_expect_null(hive_store_get_usage(s, "x"));
    hive_json_free(&bad);
    hive_json_free(&bad2);
    hive_store_free(&s);
}

Test(usage, unregister_removes_and_then_is_not_found)
{
    hive_store *s = testing_store();
    hive_strlist ids = {0};

    register_spec(s, brave_spec, false);
    cr_assert_eq(hive_store_unregister_usage(s, "brave_search", false), HIVE_OK);
    cr_expect_null(hive_store_get_usage(s, "brave_search"));
    cr_assert_eq(hive_store_list_usage(s, &ids), HIVE_OK);
    cr_expect_eq(ids.count, 0);
    hive_strlist_free(&ids);
    cr_expect_eq(hive_store_unregister_usage(s, "brave_search", false), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "No usage spec registered for 'brave_search'");
    hive_store_free(&s);
}

Test(usage, persisting_without_a_usage_file_is_unsupported)
{
    hive_store *s = testing_store();
    hive_json *spec = parse(brave_spec);

    cr_expect_eq(hive_store_register_usage(s, spec, true), HIVE_ERR_UNSUPPORTED);
    hive_json_free(&spec);
    hive_store_free(&s);
}

Test(usage, persisted_specs_are_read_back_by_a_new_store)
{
    hive_store *s;
    hive_json *want;
    char path[300];
    struct stat st;
    char *a, *b;
    hive_strlist ids = {0};

    make_tmp();
    snprintf(path, sizeof(path), "%s/usage.json", tmp);
    s = usage_store();
    register_spec(s, brave_spec, true);
    register_spec(s, "{\"credential_id\": \"github_oauth\", \"env\": {\"GH_TOKEN\": \"{{github_oauth}}\"}}", true);
    cr_assert_eq(stat(path, &st), 0, "usage file not written");
    want = hive_json_clone(hive_store_get_usage(s, "brave_search"));
    hive_store_free(&s);

    s = usage_store();
    cr_assert_eq(hive_store_list_usage(s, &ids), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(ids.count, 2);
    cr_expect_str_eq(ids.items[0], "brave_search");
    cr_expect_str_eq(ids.items[1], "github_oauth");
    hive_strlist_free(&ids);
    a = dump(want);
    b = dump(hive_store_get_usage(s, "brave_search"));
    cr_expect_str_eq(b, a);
    free(a);
    free(b);
    expect_json(hive_json_get(hive_store_get_usage(s, "github_oauth"), "env"), "{\"GH_TOKEN\": \"{{github_oauth}}\"}");

    /* unregister, persisted */
    cr_assert_eq(hive_store_unregister_usage(s, "github_oauth", true), HIVE_OK);
    hive_store_free(&s);
    s = usage_store();
    cr_expect_null(hive_store_get_usage(s, "github_oauth"));
    cr_expect_not_null(hive_store_get_usage(s, "brave_search"));
    hive_store_free(&s);

    /* the file holds templates only, never resolved values */
    {
        char *text = slurp(path, NULL);
        cr_expect_null(strstr(text, "test-brave-key"));
        cr_expect_not_null(strstr(text, "{{brave_search.api_key}}"));
        free(text);
    }
    hive_json_free(&want);
    remove_tmp();
}

Test(usage, unpersisted_register_leaves_the_file_alone)
{
    hive_store *s;
    char path[300];
    struct stat st;

    make_tmp();
    snprintf(path, sizeof(path), "%s/usage.json", tmp);
    s = usage_store();
    register_spec(s, brave_spec, false);
    cr_expect_neq(stat(path, &st), 0, "usage file written without persist");
    hive_store_free(&s);
    s = usage_store();
    cr_expect_null(hive_store_get_usage(s, "brave_search"));
    hive_store_free(&s);
    remove_tmp();
}

Test(usage, hand_written_spec_gets_defaults)
{
    hive_store *s;
    const hive_json *spec;
    char path[300];

    make_tmp();
    snprintf(path, sizeof(path), "%s/usage.json", tmp);
    write_text(path, "{\"specs\": {\"brave_search\": {\"credential_id\": \"brave_search\", "
                     "\"env\": {\"BRAVE_API_KEY\": \"{{brave_search.api_key}}\"}}}}\n");
    s = usage_store();
    spec = hive_store_get_usage(s, "brave_search");
    cr_assert_not_null(spec, "%s", hive_last_error());
    cr_expect_str_eq(jstr(spec, "credential_id"), "brave_search");
    expect_json(hive_json_get(spec, "required_keys"), "[]");
    expect_json(hive_json_get(spec, "headers"), "{}");
    expect_json(hive_json_get(spec, "query_params"), "{}");
    expect_json(hive_json_get(spec, "body_fields"), "{}");
    expect_json(hive_json_get(spec, "env"), "{\"BRAVE_API_KEY\": \"{{brave_search.api_key}}\"}");
    expect_json(hive_json_get(spec, "required"), "true");
    expect_json(hive_json_get(spec, "description"), "\"\"");
    expect_json(hive_json_get(spec, "help_url"), "\"\"");
    hive_store_free(&s);
    remove_tmp();
}

Test(usage, damaged_usage_file_is_a_format_error_naming_the_file)
{
    hive_store *s;
    char path[300];
    hive_strlist ids = {0};
    hive_json *spec = parse(brave_spec);

    make_tmp();
    snprintf(path, sizeof(path), "%s/usage.json", tmp);
    write_text(path, "{\"specs\": {\"brave_search\": ");
    s = usage_store();
    cr_expect_eq(hive_store_list_usage(s, &ids), HIVE_ERR_FORMAT);
    cr_expect_not_null(strstr(hive_last_error(), path), "%s", hive_last_error());
    /* asking again says the same, and the file is never overwritten */
    cr_expect_eq(hive_store_register_usage(s, spec, true), HIVE_ERR_FORMAT);
    cr_expect_not_null(strstr(hive_last_error(), path), "%s", hive_last_error());
    cr_expect_null(hive_store_get_usage(s, "brave_search"));
    hive_store_free(&s);
    {
        char *text = slurp(path, NULL);
        cr_expect_str_eq(text, "{\"specs\": {\"brave_search\": ");
        free(text);
    }
    hive_json_free(&spec);
    remove_tmp();
}

Test(usage, usage_file_without_specs_object_is_a_format_error)
{
    hive_store *s;
    char path[300];
    hive_strlist ids = {0};

    make_tmp();
    snprintf(path, sizeof(path), "%s/usage.json", tmp);
    write_text(path, "{\"version\": \"1.0\", \"specs\": [1]}");
    s = usage_store();
    cr_expect_eq(hive_store_list_usage(s, &ids), HIVE_ERR_FORMAT);
    cr_expect_not_null(strstr(hive_last_error(), path), "%s", hive_last_error());
    cr_expect_eq(hive_store_list_usage(s, &ids), HIVE_ERR_FORMAT);
    hive_store_free(&s);
    remove_tmp();
}

Test(usage, resolve_for_usage_gives_only_the_non_empty_parts)
{
    hive_store *s = testing_store();
    hive_json *out = NULL;

    register_spec(s, brave_spec, false);
    cr_assert_eq(hive_store_resolve_for_usage(s, &out, "brave_search", HIVE_GET_NO_REFRESH), HIVE_OK, "%s",
                 hive_last_error());
    expect_json(out, "{\"headers\": {\"X-Subscription-Token\": \"test-brave-key\"}}");
    hive_json_free(&out);

    register_spec(s, "{\"credential_id\": \"github_oauth\", "
                     "\"env\": {\"GH_TOKEN\": \"{{github_oauth}}\"}, "
                     "\"body_fields\": {\"refresh\": \"{{github_oauth.refresh_token}}\"}, "
                     "\"query_params\": {\"token\": \"{{github_oauth.access_token}}\", \"v\": \"2\"}, "
                     "\"headers\": {\"Authorization\": \"Bearer {{github_oauth.access_token}}\"}}",
                  false);
    cr_assert_eq(hive_store_resolve_for_usage(s, &out, "github_oauth", HIVE_GET_NO_REFRESH), HIVE_OK, "%s",
                 hive_last_error());
    expect_json(out, "{\"headers\": {\"Authorization\": \"Bearer test-token\"}, "
                     "\"params\": {\"token\": \"test-token\", \"v\": \"2\"}, "
                     "\"data\": {\"refresh\": \"test-refresh\"}, "
                     "\"env\": {\"GH_TOKEN\": \"test-token\"}}");
    hive_json_free(&out);

    register_spec(s, "{\"credential_id\": \"tricky\", \"query_params\": {\"q\": \"{{tricky}}\"}}", false);
    cr_assert_eq(hive_store_resolve_for_usage(s, &out, "tricky", HIVE_GET_NO_REFRESH), HIVE_OK);
    expect_json(out, "{\"params\": {\"q\": \"{{brave_search}}\"}}");
    hive_json_free(&out);

    register_spec(s, "{\"credential_id\": \"my-cred_1\"}", false);
    cr_assert_eq(hive_store_resolve_for_usage(s, &out, "my-cred_1", HIVE_GET_NO_REFRESH), HIVE_OK);
    expect_json(out, "{}");
    hive_json_free(&out);
    hive_store_free(&s);
}

Test(usage, resolve_for_an_unknown_spec_is_not_found)
{
    hive_store *s = testing_store();
    hive_json *out = NULL;

    cr_expect_eq(hive_store_resolve_for_usage(s, &out, "brave_search", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "No usage spec registered for 'brave_search'");
    cr_expect_null(out);
    hive_store_free(&s);
}

Test(usage, resolve_for_usage_with_a_missing_credential_fails)
{
    hive_store *s = testing_store();
    hive_json *out = NULL;

    register_spec(s, "{\"credential_id\": \"slack\", \"headers\": {\"Authorization\": \"Bearer {{slack}}\"}}", false);
    cr_expect_eq(hive_store_resolve_for_usage(s, &out, "slack", HIVE_GET_NO_REFRESH), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Credential 'slack' not found");
    cr_expect_null(out);
    hive_store_free(&s);
}

/* --- validation ------------------------------------------------------------ */

TestSuite(validate);

Test(validate, for_usage_reports_a_missing_credential)
{
    hive_store *s = testing_store();
    hive_strlist problems = {0};

    register_spec(s, "{\"credential_id\": \"slack\", \"required_keys\": [\"access_token\"]}", false);
    cr_assert_eq(hive_store_validate_for_usage(s, &problems, "slack"), HIVE_OK);
    cr_assert_eq(problems.count, 1);
    cr_expect_str_eq(problems.items[0], "Credential 'slack' not found");
    hive_strlist_free(&problems);
    hive_store_free(&s);
}

Test(validate, for_usage_reports_each_missing_required_key)
{
    hive_store *s = testing_store();
    hive_strlist problems = {0};

    register_spec(s, "{\"credential_id\": \"brave_search\", \"required_keys\": [\"api_key\", \"secret\"]}", false);
    cr_assert_eq(hive_store_validate_for_usage(s, &problems, "brave_search"), HIVE_OK);
    cr_assert_eq(problems.count, 1);
    cr_expect_str_eq(problems.items[0], "Missing required key 'secret'");
    hive_strlist_free(&problems);

    register_spec(s, "{\"credential_id\": \"github_oauth\", \"required_keys\": [\"access_token\", \"a\", \"b\"]}", false);
    cr_assert_eq(hive_store_validate_for_usage(s, &problems, "github_oauth"), HIVE_OK);
    cr_assert_eq(problems.count, 2);
    cr_expect_str_eq(problems.items[0], "Missing required key 'a'");
    cr_expect_str_eq(problems.items[1], "Missing required key 'b'");
    hive_strlist_free(&problems);
    hive_store_free(&s);
}

Test(validate, for_usage_checks_the_templates)
{
    hive_store *s = testing_store();
    hive_strlist problems = {0};

    register_spec(s, "{\"credential_id\": \"brave_search\", \"required_keys\": [\"api_key\"], "
                     "\"headers\": {\"X\": \"{{brave_search.token}}\"}, \"env\": {\"Y\": \"{{ghost}}\"}}",
                  false);
    cr_assert_eq(hive_store_validate_for_usage(s, &problems, "brave_search"), HIVE_OK);
    cr_assert_eq(problems.count, 2);
    {
        bool key = false, ghost = false;
        for (size_t i = 0; i < problems.count; i++) {
            key |= strcmp(problems.items[i], "Key 'token' not found in credential 'brave_search'") == 0;
            ghost |= strcmp(problems.items[i], "Credential 'ghost' not found") == 0;
        }
        cr_expect(key);
        cr_expect(ghost);
    }
    hive_strlist_free(&problems);
    hive_store_free(&s);
}

Test(validate, for_usage_of_a_good_spec_has_no_problems)
{
    hive_store *s = testing_store();
    hive_strlist problems = {0};

    register_spec(s, brave_spec, false);
    cr_assert_eq(hive_store_validate_for_usage(s, &problems, "brave_search"), HIVE_OK);
    cr_expect_eq(problems.count, 0);
    hive_strlist_free(&problems);
    hive_store_free(&s);
}

static size_t credential_problems(hive_store *s, const char *id, const char *want_substring)
{
    hive_strlist problems = {0};
    size_t n;

    cr_assert_eq(hive_store_validate_credential(s, &problems, id), HIVE_OK, "%s", hive_last_error());
    n = problems.count;
    if (want_substring != NULL) {
        cr_assert_geq(n, 1, "%s: no problem reported", id);
        cr_expect_not_null(strstr(problems.items[0], want_substring), "%s: %s", id, problems.items[0]);
    }
    hive_strlist_free(&problems);
    return n;
}

static bool refresher_handles(const hive_provider *p, hive_cred_type t)
{
    (void)p;
    return t == HIVE_TYPE_OAUTH2;
}

static hive_rc refresher_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    (void)p;
    (void)lookup;
    (void)cred;
    return HIVE_OK;
}

Test(validate, credential_flags_expired_tokens_that_cannot_be_refreshed)
{
    hive_store *s = testing_store();
    hive_time past = now_plus(-3600);
    hive_provider refresher = {.size = sizeof(hive_provider), .id = "oauth2", .handles = refresher_handles,
                               .refresh = refresher_refresh};
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_add_provider(s, &refresher), HIVE_OK);

    /* a bearer token, even with auto_refresh on */
    cr_assert_eq(hive_cred_new(&c, "internal_jwt", "bearer_token"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "eyJ", 3, &past), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    save_cred(s, c);
    hive_cred_free(&c);
    cr_expect_eq(credential_problems(s, "internal_jwt",
                                     "Bearer token 'internal_jwt' cannot be refreshed. Obtain a new token "
                                     "and save it to the credential store."), 1);

    /* an oauth2 token with auto_refresh off */
    cr_assert_eq(hive_cred_new(&c, "manual_oauth", "oauth2"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "t", 1, &past), HIVE_OK);
    cr_assert_eq(hive_cred_set_provider_id(c, "oauth2"), HIVE_OK);
    save_cred(s, c);
    hive_cred_free(&c);
    cr_expect_eq(credential_problems(s, "manual_oauth", "manual_oauth"), 1);

    /* an expired api key (static: never refreshed) */
    cr_assert_eq(hive_cred_new(&c, "old_key", "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "k", 1, &past), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    save_cred(s, c);
    hive_cred_free(&c);
    cr_expect_eq(credential_problems(s, "old_key", "old_key"), 1);

    /* an oauth2 token whose provider can refresh it: fine */
    cr_assert_eq(hive_cred_new(&c, "github_live", "oauth2"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "t", 1, &past), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "refresh_token", "r", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_cred_set_provider_id(c, "oauth2"), HIVE_OK);
    cr_assert_eq(hive_cred_set_auto_refresh(c, true), HIVE_OK);
    save_cred(s, c);
    hive_cred_free(&c);
    cr_expect_eq(credential_problems(s, "github_live", NULL), 0);
    hive_store_free(&s);
}

Test(validate, credential_problems_for_missing_and_keyless)
{
    hive_store *s = testing_store();
    hive_cred *c = NULL;
    hive_time later = now_plus(3600);

    cr_expect_eq(credential_problems(s, "brave_search", NULL), 0);
    cr_expect_eq(credential_problems(s, "nope", "Credential 'nope' not found"), 1);
    cr_assert_eq(hive_cred_new(&c, "empty", "custom"), HIVE_OK);
    save_cred(s, c);
    hive_cred_free(&c);
    cr_expect_eq(credential_problems(s, "empty", "empty"), 1);
    cr_assert_eq(hive_cred_new(&c, "jwt_ok", "bearer_token"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "eyJ", 3, &later), HIVE_OK);
    save_cred(s, c);
    hive_cred_free(&c);
    cr_expect_eq(credential_problems(s, "jwt_ok", NULL), 0, "not expired yet");
    hive_store_free(&s);
}

Test(validate, all_returns_only_specs_with_problems)
{
    hive_store *s = testing_store();
    hive_json *out = NULL;

    register_spec(s, brave_spec, false);
    register_spec(s, "{\"credential_id\": \"slack\"}", false);
    register_spec(s, "{\"credential_id\": \"github_oauth\", \"required_keys\": [\"access_token\", \"id_token\"]}",
                  false);
    register_spec(s, "{\"credential_id\": \"tricky\", \"required_keys\": [\"value\"]}", false);
    cr_assert_eq(hive_store_validate_all(s, &out), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_json_typeof(out), HIVE_JSON_OBJECT);
    cr_expect_eq(hive_json_size(out), 2);
    cr_expect_null(hive_json_get(out, "brave_search"));
    cr_expect_null(hive_json_get(out, "tricky"));
    expect_json(hive_json_get(out, "slack"), "[\"Credential 'slack' not found\"]");
    expect_json(hive_json_get(out, "github_oauth"), "[\"Missing required key 'id_token'\"]");
    hive_json_free(&out);
    hive_store_free(&s);
}

Test(validate, all_with_no_specs_is_empty)
{
    hive_store *s = testing_store();
    hive_json *out = NULL;

    cr_assert_eq(hive_store_validate_all(s, &out), HIVE_OK);
    expect_json(out, "{}");
    hive_json_free(&out);
    hive_store_free(&s);
}

/* --- accounts (on a copy of the fixture written by Hive) ------------------ */

TestSuite(accounts);

static char home[256];

static hive_store *fixture_store(void)
{
    char cmd[4096];
    char dir[300];
    hive_store *s = NULL;

    snprintf(home, sizeof(home), "/tmp/hive-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    snprintf(cmd, sizeof(cmd),
             "cp -r '%s/fixtures/hive-home/.' '%s/' && chmod -R u+w '%s' && chmod 600 '%s/secrets/credential_key'",
             data_dir(), home, home, home);
    cr_assert_eq(system(cmd), 0);
    unsetenv("HIVE_CREDENTIAL_KEY");
    snprintf(dir, sizeof(dir), "%s/credentials", home);
    cr_assert_eq(hive_store_open(&s, dir, NULL), HIVE_OK, "%s", hive_last_error());
    return s;
}

static void remove_home(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' && rm -rf '%s'", home, home);
    cr_assert_eq(system(cmd), 0);
}

Test(accounts, google_has_exactly_the_aden_account)
{
    hive_store *s = fixture_store();
    hive_json *out = NULL;

    cr_assert_eq(hive_store_list_accounts(s, &out, "google"), HIVE_OK, "%s", hive_last_error());
    expect_json(out, "[{\"id\": \"Z29vZ2xlOlRpbW90aHk6MTYwNjc6MTM2ODQ\", \"provider\": \"google\", "
                     "\"alias\": \"Timothy\", \"identity\": {\"email\": \"timothy@example.com\"}}]");
    hive_json_free(&out);
    hive_store_free(&s);
    remove_home();
}

Test(accounts, brave_search_has_the_work_account)
{
    hive_store *s = fixture_store();
    hive_json *out = NULL;

    cr_assert_eq(hive_store_list_accounts(s, &out, "brave_search"), HIVE_OK, "%s", hive_last_error());
    expect_json(out, "[{\"id\": \"brave_search/work\", \"provider\": \"brave_search\", "
                     "\"alias\": \"work\", \"identity\": {\"username\": \"acme-bot\"}}]");
    hive_json_free(&out);
    hive_store_free(&s);
    remove_home();
}

Test(accounts, unknown_provider_has_none)
{
    hive_store *s = fixture_store();
    hive_json *out = NULL;

    cr_assert_eq(hive_store_list_accounts(s, &out, "slack"), HIVE_OK);
    expect_json(out, "[]");
    hive_json_free(&out);
    cr_assert_eq(hive_store_list_accounts(s, &out, "brave"), HIVE_OK, "a prefix of a provider is not it");
    expect_json(out, "[]");
    hive_json_free(&out);
    hive_store_free(&s);
    remove_home();
}

Test(accounts, get_by_alias_finds_the_credential)
{
    hive_store *s = fixture_store();
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_get_by_alias(s, &c, "google", "Timothy"), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_id(c), "Z29vZ2xlOlRpbW90aHk6MTYwNjc6MTM2ODQ");
    cr_expect_str_eq(hive_cred_get_key(c, "access_token", NULL), "ya29.test-google-access-token");
    hive_cred_free(&c);
    cr_assert_eq(hive_store_get_by_alias(s, &c, "brave_search", "work"), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_id(c), "brave_search/work");
    cr_expect_str_eq(hive_cred_get_key(c, "api_key", NULL), "BSA-work-account-key");
    hive_cred_free(&c);
    hive_store_free(&s);
    remove_home();
}

Test(accounts, get_by_alias_of_an_unknown_alias_is_not_found)
{
    hive_store *s = fixture_store();
    hive_cred *c = NULL;

    cr_expect_eq(hive_store_get_by_alias(s, &c, "google", "work"), HIVE_ERR_NOT_FOUND);
    cr_expect_null(c);
    cr_expect_eq(hive_store_get_by_alias(s, &c, "google", "timothy"), HIVE_ERR_NOT_FOUND, "aliases are exact");
    cr_expect_eq(hive_store_get_by_alias(s, &c, "slack", "work"), HIVE_ERR_NOT_FOUND);
    cr_expect_null(c);
    hive_store_free(&s);
    remove_home();
}

Test(accounts, local_provider_slash_alias_ids_are_accounts)
{
    hive_store *s = fixture_store();
    hive_json *out = NULL;
    hive_cred *c = NULL;

    cr_assert_eq(hive_cred_new(&c, "github/personal", "oauth2"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "access_token", "gho_p", 5, NULL), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "_identity_username", "octocat", 7, NULL), HIVE_OK);
    cr_assert_eq(hive_store_save(s, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
    cr_assert_eq(hive_store_list_accounts(s, &out, "github"), HIVE_OK);
    expect_json(out, "[{\"id\": \"github/personal\", \"provider\": \"github\", \"alias\": \"personal\", "
                     "\"identity\": {\"username\": \"octocat\"}}]");
    hive_json_free(&out);
    cr_assert_eq(hive_store_get_by_alias(s, &c, "github", "personal"), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_id(c), "github/personal");
    hive_cred_free(&c);
    hive_store_free(&s);
    remove_home();
}

Test(accounts, fixture_templates_resolve)
{
    hive_store *s = fixture_store();

    /* Hive's pattern has no '/': hive's {{provider/alias}} reaches the
     * local account Hive stores as "brave_search/work" */
    expect_resolved(s, "{{brave_search}}|{{brave_search/work}}|{{brave_search/work._alias}}",
                    "BSA-test-0123456789abcdef|BSA-work-account-key|work");
    expect_resolved(s, "{{smtp_login.username}}:{{github_oauth.scope}}", "alice@example.com:repo user");
    hive_store_free(&s);
    remove_home();
}
