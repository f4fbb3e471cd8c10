/*
 * Usage specs' required_scopes: the spec's form, the union a login asks
 * for, and the check of a credential's stored scope.
 */
#include "testutil.h"

static const char *const table[][3] = {
    {"gh", "access_token", "tok-gh"},
    {"other", "api_key", "k"},
    {NULL, NULL, NULL},
};

static hive_store *store_with(const char *scope)
{
    hive_store *s = NULL;
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_for_testing(&s, table), HIVE_OK, "%s", hive_last_error());
    if (scope != NULL) {
        cr_assert_eq(hive_store_get_credential(s, &c, "gh", 0), HIVE_OK);
        cr_assert_eq(hive_cred_set_key(c, "scope", scope, strlen(scope), NULL), HIVE_OK);
        cr_assert_eq(hive_store_save(s, c), HIVE_OK, "%s", hive_last_error());
        hive_cred_free(&c);
    }
    return s;
}

static hive_rc register_text(hive_store *s, const char *json)
{
    hive_json *spec = NULL;
    hive_rc rc;

    cr_assert_eq(hive_json_parse(&spec, json, strlen(json)), HIVE_OK, "%s", json);
    rc = hive_store_register_usage(s, spec, false);
    hive_json_free(&spec);
    return rc;
}

static hive_cred *load(hive_store *s, const char *id)
{
    hive_cred *c = NULL;

    cr_assert_eq(hive_store_get_credential(s, &c, id, 0), HIVE_OK, "%s", hive_last_error());
    return c;
}

Test(scopes, a_spec_keeps_its_required_scopes_and_defaults_to_none)
{
    hive_store *s = store_with(NULL);
    const hive_json *req;

    cr_assert_eq(register_text(s, "{\"credential_id\": \"gh\", \"required_scopes\": [\"repo\", \"read:org\"]}"),
                 HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(register_text(s, "{\"credential_id\": \"other\"}"), HIVE_OK);
    req = hive_json_get(hive_store_get_usage(s, "gh"), "required_scopes");
    cr_assert_eq(hive_json_size(req), 2);
    cr_expect_str_eq(hive_json_string(hive_json_at(req, 0, NULL), NULL), "repo");
    cr_expect_str_eq(hive_json_string(hive_json_at(req, 1, NULL), NULL), "read:org");
    req = hive_json_get(hive_store_get_usage(s, "other"), "required_scopes");
    cr_expect_eq(hive_json_typeof(req), HIVE_JSON_ARRAY);
    cr_expect_eq(hive_json_size(req), 0);
    hive_store_free(&s);
}

Test(scopes, a_malformed_required_scopes_is_refused)
{
    static const char *const bad[] = {
        "{\"credential_id\": \"gh\", \"required_scopes\": \"repo\"}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [1]}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [\"\"]}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [\"repo gist\"]}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [\"repo,gist\"]}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [\"a\\\"b\"]}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [\"a\\\\b\"]}",
        "{\"credential_id\": \"gh\", \"required_scopes\": [\"caf\\u00e9\"]}",
    };
    hive_store *s = store_with(NULL);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(register_text(s, bad[i]), HIVE_ERR_INVALID, "%s", bad[i]);
        cr_expect(strstr(hive_last_error(), "usage spec 'gh'") != NULL, "%s: %s", bad[i], hive_last_error());
    }
    cr_expect_null(hive_store_get_usage(s, "gh"));
    hive_store_free(&s);
}

Test(scopes, scope_tokens_are_rfc_6749s_without_commas)
{
    char longest[HIVE_SCOPE_MAX + 2];

    cr_expect(hive_scope_valid("repo"));
    cr_expect(hive_scope_valid("https://www.googleapis.com/auth/drive.readonly"));
    cr_expect(hive_scope_valid("read:org"));
    cr_expect_not(hive_scope_valid(""));
    cr_expect_not(hive_scope_valid(NULL));
    cr_expect_not(hive_scope_valid("a b"));
    cr_expect_not(hive_scope_valid("a,b"));
    cr_expect_not(hive_scope_valid("a\tb"));
    cr_expect_not(hive_scope_valid("a\"b"));
    cr_expect_not(hive_scope_valid("a\\b"));
    memset(longest, 'a', sizeof(longest));
    longest[HIVE_SCOPE_MAX] = '\0';
    cr_expect(hive_scope_valid(longest));
    longest[HIVE_SCOPE_MAX] = 'a';
    longest[HIVE_SCOPE_MAX + 1] = '\0';
    cr_expect_not(hive_scope_valid(longest));
}

Test(scopes, required_scopes_is_the_sorted_union_of_the_specs_naming_the_credential)
{
    hive_store *s = store_with(NULL);
    hive_strlist out = {0};

    cr_assert_eq(register_text(s, "{\"credential_id\": \"gh\", \"required_scopes\": [\"repo\", \"gist\", \"repo\"]}"),
                 HIVE_OK);
    cr_assert_eq(register_text(s, "{\"credential_id\": \"other\", \"required_scopes\": [\"admin\"]}"), HIVE_OK);
    cr_assert_eq(hive_store_required_scopes(s, &out, "gh"), HIVE_OK);
    cr_assert_eq(out.count, 2);
    cr_expect_str_eq(out.items[0], "gist");
    cr_expect_str_eq(out.items[1], "repo");
    hive_strlist_free(&out);
    cr_assert_eq(hive_store_required_scopes(s, &out, "nobody"), HIVE_OK);
    cr_expect_eq(out.count, 0);
    hive_strlist_free(&out);
    hive_store_free(&s);
}

Test(scopes, missing_scopes_are_named_in_the_specs_order)
{
    hive_store *s = store_with("repo gist");
    hive_strlist required = {0};
    hive_strlist missing = {0};
    hive_cred *c = load(s, "gh");
    bool recorded = false;

    cr_assert_eq(hive_strlist_add(&required, "workflow"), HIVE_OK);
    cr_assert_eq(hive_strlist_add(&required, "repo"), HIVE_OK);
    cr_assert_eq(hive_strlist_add(&required, "admin:org"), HIVE_OK);
    cr_assert_eq(hive_cred_missing_scopes(&missing, &recorded, c, &required), HIVE_OK);
    cr_expect(recorded);
    cr_assert_eq(missing.count, 2);
    cr_expect_str_eq(missing.items[0], "workflow");
    cr_expect_str_eq(missing.items[1], "admin:org");
    hive_strlist_free(&missing);
    hive_strlist_free(&required);
    hive_cred_free(&c);
    hive_store_free(&s);
}

Test(scopes, a_granted_list_splits_at_spaces_and_commas_and_matches_whole_tokens)
{
    static const struct {
        const char *have;
        const char *want;
        bool ok;
    } cases[] = {
        {"repo gist", "gist", true},
        {"repo,gist", "gist", true},        /* GitHub's OAuth apps */
        {"repo, gist", "gist", true},
        {"  repo\tgist\n", "repo", true},
        {"repository", "repo", false},      /* a whole token, not a prefix */
        {"repo:status", "repo", false},
        {"public_repo", "repo", false},
        {"", "repo", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hive_store *s = store_with(cases[i].have);
        hive_strlist required = {0};
        hive_strlist missing = {0};
        hive_cred *c = load(s, "gh");
        bool recorded = false;
        cr_assert_eq(hive_strlist_add(&required, cases[i].want), HIVE_OK);
        cr_assert_eq(hive_cred_missing_scopes(&missing, &recorded, c, &required), HIVE_OK);
        cr_expect(recorded, "%s", cases[i].have);
        cr_expect_eq(missing.count == 0, cases[i].ok, "'%s' has '%s'", cases[i].have, cases[i].want);
        hive_strlist_free(&missing);
        hive_strlist_free(&required);
        hive_cred_free(&c);
        hive_store_free(&s);
    }
}

Test(scopes, the_check_names_what_is_missing_and_what_the_token_has)
{
    hive_store *s = store_with("repo gist");
    hive_cred *c = load(s, "gh");
    char *msg = NULL;
    bool recorded = false;

    cr_assert_eq(register_text(s, "{\"credential_id\": \"gh\", \"required_scopes\": [\"repo\", \"read:org\", "
                                  "\"workflow\"]}"), HIVE_OK);
    cr_assert_eq(hive_store_check_scopes(s, &msg, &recorded, c), HIVE_OK);
    cr_assert_not_null(msg);
    cr_expect(recorded);
    cr_expect_str_eq(msg, "Credential 'gh' lacks scopes its usage spec requires: read:org, workflow "
                          "(its token has: repo gist)");
    free(msg);
    hive_cred_free(&c);
    hive_store_free(&s);
}

Test(scopes, a_credential_without_a_scope_record_cannot_pass_a_check)
{
    hive_store *s = store_with(NULL);
    hive_cred *c = load(s, "gh");
    char *msg = NULL;
    bool recorded = true;

    cr_assert_eq(register_text(s, "{\"credential_id\": \"gh\", \"required_scopes\": [\"repo\"]}"), HIVE_OK);
    cr_assert_eq(hive_store_check_scopes(s, &msg, &recorded, c), HIVE_OK);
    cr_assert_not_null(msg);
    cr_expect_not(recorded);
    cr_expect_str_eq(msg, "Credential 'gh' has no record of its token's scopes (no 'scope' key), so the "
                          "scopes its usage spec requires cannot be checked: repo");
    free(msg);
    hive_cred_free(&c);
    hive_store_free(&s);
}

Test(scopes, no_required_scopes_no_problem_even_without_a_record)
{
    hive_store *s = store_with(NULL);
    hive_cred *c = load(s, "gh");
    static char unset[] = "unset";
    char *msg = unset;
    bool recorded = true;

    cr_assert_eq(register_text(s, "{\"credential_id\": \"gh\"}"), HIVE_OK);
    cr_assert_eq(hive_store_check_scopes(s, &msg, &recorded, c), HIVE_OK);
    cr_expect_null(msg);
    hive_cred_free(&c);
    hive_store_free(&s);
}

Test(scopes, validate_for_usage_reports_the_missing_scopes)
{
    hive_store *s = store_with("repo");
    hive_strlist problems = {0};

    cr_assert_eq(register_text(s, "{\"credential_id\": \"gh\", \"required_keys\": [\"access_token\"], "
                                  "\"required_scopes\": [\"repo\", \"gist\"]}"), HIVE_OK);
    cr_assert_eq(hive_store_validate_for_usage(s, &problems, "gh"), HIVE_OK);
    cr_assert_eq(problems.count, 1);
    cr_expect_str_eq(problems.items[0], "Credential 'gh' lacks scopes its usage spec requires: gist "
                                        "(its token has: repo)");
    hive_strlist_free(&problems);
    hive_store_free(&s);
}
