/*
 * usage.c - usage specs (kept in a plaintext JSON file: templates only),
 * validation, and accounts.
 */
#include "store_int.h"
#include "fileio.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the usage file ------------------------------------------------------ */

/* Writers of the usage file take this lock, in the file's directory, then
 * read the file again, change one spec and write it (a temporary file
 * named USAGE_TMP..., renamed into place), so that parallel writers never
 * lose a spec; the lock's holder removes what killed writers left. */
#define USAGE_LOCK ".usage.lock"
#define USAGE_TMP ".tmp-usage-"
/* A usage file holds templates only, some 400 bytes a spec: 1 MiB is room
 * for 2,500 specs. Parsed JSON costs about 150 bytes a value, so a cap
 * bounds the memory that a file of tiny values ("[0,0,0,...]") takes. */
#define USAGE_MAX (1024u * 1024)

static const char *const map_fields[] = {"headers", "query_params", "body_fields", "env"};

/* A spec in its canonical form: known fields in order with defaults, then
 * unknown fields as read. */
static hive_rc normalise_spec(hive_json **out, const hive_json *in, const char *fallback_id)
{
    hive_json *spec = hive_json_new(HIVE_JSON_OBJECT);
    const hive_json *f;
    const char *id;
    hive_rc rc = spec ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");

    if (rc == HIVE_OK && hive_json_typeof(in) != HIVE_JSON_OBJECT)
        rc = hive__fail(HIVE_ERR_INVALID, "a usage spec must be a JSON object");
    f = hive_json_get(in, "credential_id");
    id = f ? hive_json_string(f, NULL) : fallback_id;
    if (rc == HIVE_OK && (id == NULL || *id == '\0' || (f && hive_json_typeof(f) != HIVE_JSON_STRING)))
        rc = hive__fail(HIVE_ERR_INVALID, "a usage spec needs a string credential_id");
    if (rc == HIVE_OK)
        rc = hive_json_set(spec, "credential_id", hive_json_new_string(id, strlen(id)));
    f = hive_json_get(in, "required_keys");
    if (rc == HIVE_OK && f != NULL) {
        if (hive_json_typeof(f) != HIVE_JSON_ARRAY)
            rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': required_keys must be a list of strings", id);
        for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(f); i++)
            if (hive_json_typeof(hive_json_at(f, i, NULL)) != HIVE_JSON_STRING)
                rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': required_keys must be a list of strings", id);
    }
    if (rc == HIVE_OK)
        rc = hive_json_set(spec, "required_keys", f ? hive_json_clone(f) : hive_json_new(HIVE_JSON_ARRAY));
    f = hive_json_get(in, "required_scopes");
    if (rc == HIVE_OK && f != NULL) {
        if (hive_json_typeof(f) != HIVE_JSON_ARRAY)
            rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': required_scopes must be a list of strings", id);
        for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(f); i++) {
            const hive_json *e = hive_json_at(f, i, NULL);
            if (hive_json_typeof(e) != HIVE_JSON_STRING)
                rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': required_scopes must be a list of strings",
                                id);
            else if (!hive_scope_valid(hive_json_string(e, NULL)))
                rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': '%s' is not a scope (RFC 6749 section 3.3: "
                                "printable ASCII without spaces, '\\' or '\"'; hive also splits at ',')",
                                id, hive_json_string(e, NULL));
        }
    }
    if (rc == HIVE_OK)
        rc = hive_json_set(spec, "required_scopes", f ? hive_json_clone(f) : hive_json_new(HIVE_JSON_ARRAY));
    for (size_t m = 0; rc == HIVE_OK && m < 4; m++) {
        f = hive_json_get(in, map_fields[m]);
        if (f != NULL) {
            if (hive_json_typeof(f) != HIVE_JSON_OBJECT)
                rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': %s must be an object of templates",
                                id, map_fields[m]);
            for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(f); i++)
                if (hive_json_typeof(hive_json_at(f, i, NULL)) != HIVE_JSON_STRING)
                    rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': %s must be an object of templates",
                                    id, map_fields[m]);
        }
        if (rc == HIVE_OK)
            rc = hive_json_set(spec, map_fields[m], f ? hive_json_clone(f) : hive_json_new(HIVE_JSON_OBJECT));
    }
    f = hive_json_get(in, "required");
    if (rc == HIVE_OK)
        rc = hive_json_set(spec, "required", hive_json_new(hive_json_typeof(f) == HIVE_JSON_FALSE
                                                                ? HIVE_JSON_FALSE : HIVE_JSON_TRUE));
    for (size_t k = 0; rc == HIVE_OK && k < 2; k++) {
        const char *name = k ? "help_url" : "description";
        f = hive_json_get(in, name);
        if (f != NULL && hive_json_typeof(f) != HIVE_JSON_STRING)
            rc = hive__fail(HIVE_ERR_INVALID, "usage spec '%s': %s must be a string", id, name);
        else
            rc = hive_json_set(spec, name, f ? hive_json_clone(f) : hive_json_new_string("", 0));
    }
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(in); i++) {
        const char *k;
        const hive_json *v = hive_json_at(in, i, &k);
        if (hive_json_get(spec, k) == NULL)
            rc = hive_json_set(spec, k, hive_json_clone(v));
    }
    if (rc != HIVE_OK) {
        hive_json_free(&spec);
        return rc;
    }
    *out = spec;
    return HIVE_OK;
}

/* Load the usage file once. A missing file is no specs; a damaged one is
 * an error (it is edited by hand: say so rather than lose it). */
static hive_rc load_usage(hive_store *s)
{
    char *text = NULL;
    size_t len = 0;
    hive_json *doc = NULL;
    hive_json *specs_out = NULL;
    const hive_json *specs;
    hive_rc rc;

    if (s->usage_loaded)
        return HIVE_OK;
    specs_out = hive_json_new(HIVE_JSON_OBJECT);
    if (specs_out == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = s->usage_file ? hive__read_at(AT_FDCWD, s->usage_file, true, USAGE_MAX, "usage file",
                                       &text, &len)
                       : HIVE_ERR_NOT_FOUND;
    if (rc == HIVE_ERR_NOT_FOUND) {
        rc = HIVE_OK;
        goto done;
    }
    if (rc == HIVE_ERR_TOO_LARGE) {
        rc = hive__fail(HIVE_ERR_FORMAT, "usage file %s is larger than %u bytes, more than a usage file "
                        "of templates needs", s->usage_file, USAGE_MAX);
        goto fail;
    }
    if (rc != HIVE_OK)
        goto fail;
    rc = hive_json_parse(&doc, text, len);
    hive__free_secret(text, len + 1);
    if (rc != HIVE_OK) {
        rc = hive__fail_prefix(HIVE_ERR_FORMAT, "usage file %s is damaged", s->usage_file);
        goto fail;
    }
    specs = hive_json_get(doc, "specs");
    if (hive_json_typeof(specs) != HIVE_JSON_OBJECT) {
        rc = hive__fail(HIVE_ERR_FORMAT, "usage file %s is damaged: no \"specs\" object", s->usage_file);
        goto fail;
    }
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(specs); i++) {
        const char *id;
        const hive_json *v = hive_json_at(specs, i, &id);
        hive_json *spec = NULL;
        rc = normalise_spec(&spec, v, id);
        if (rc == HIVE_OK)
            rc = hive_json_set(specs_out, hive_json_string(hive_json_get(spec, "credential_id"), NULL), spec);
    }
    if (rc != HIVE_OK) {
        rc = hive__fail_prefix(HIVE_ERR_FORMAT, "usage file %s is damaged", s->usage_file);
        goto fail;
    }
done:
    hive_json_free(&doc);
    hive_json_free(&s->usage);
    s->usage = specs_out;
    s->usage_loaded = true;
    return HIVE_OK;
fail:
    hive_json_free(&doc);
    hive_json_free(&specs_out);
    return rc;
}

static hive_rc save_usage(hive_store *s)
{
    hive_json *doc = hive_json_new(HIVE_JSON_OBJECT);
    char *text = NULL;
    size_t len = 0;
    hive_rc rc = doc ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");

    if (s->usage_file == NULL) {
        hive_json_free(&doc);
        return hive__fail(HIVE_ERR_UNSUPPORTED, "this store has no usage file");
    }
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "version", hive_json_new_string("1.0", 3));
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "specs", hive_json_clone(s->usage));
    if (rc == HIVE_OK)
        rc = hive__json_emit(&text, &len, doc, 2);
    if (rc == HIVE_OK) {
        /* a trailing newline: the file is meant to be edited by hand */
        text[len] = '\n';
        rc = hive__write_file_atomic_tmp(s->usage_file, USAGE_TMP, text, len + 1);
        text[len] = '\0';
    }
    hive_json_free(&doc);
    free(text);
    return rc;
}

/* Whether the usage file is the file store's own, in its directory: then
 * nothing else writes temporary files there, and those of writers killed
 * before the lock existed (".tmp-PID-...") are removed too. */
static bool in_store_dir(const hive_store *s)
{
    const char *dir = hive_file_storage_dir(s->storage);
    size_t n = dir ? strlen(dir) : 0;

    return dir != NULL && strncmp(s->usage_file, dir, n) == 0 && s->usage_file[n] == '/' &&
           strchr(s->usage_file + n + 1, '/') == NULL;
}

/*
 * Set id's spec to norm (taken; NULL: remove id's). persist: under the
 * usage lock, read the file again (what other writers saved since this
 * store read it is kept), change it and write it.
 */
static hive_rc change_usage(hive_store *s, const char *id, hive_json *norm, bool persist)
{
    int lockfd = -1;
    hive_rc rc = HIVE_OK;

    if (persist && s->usage_file == NULL)
        rc = hive__fail(HIVE_ERR_UNSUPPORTED, "this store has no usage file");
    if (rc == HIVE_OK && persist) {
        rc = hive__lock_beside(s->usage_file, USAGE_LOCK, in_store_dir(s) ? ".tmp-" : USAGE_TMP, &lockfd);
        s->usage_loaded = false;
    }
    if (rc == HIVE_OK)
        rc = load_usage(s);
    if (rc == HIVE_OK && norm == NULL && hive_json_get(s->usage, id) == NULL)
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "No usage spec registered for '%s'", id);
    if (rc == HIVE_OK && norm != NULL) {
        rc = hive_json_set(s->usage, id, norm);
        norm = NULL;
    } else if (rc == HIVE_OK) {
        hive_json_remove(s->usage, id);
    }
    if (rc == HIVE_OK && persist)
        rc = save_usage(s);
    if (rc != HIVE_OK && persist)
        s->usage_loaded = false;   /* read the file again next time */
    hive__unlock(&lockfd);
    hive_json_free(&norm);
    return rc;
}

hive_rc hive_store_register_usage(hive_store *s, const hive_json *spec, bool persist)
{
    hive__clear_error();
    hive_json *norm = NULL;
    char *id;
    hive_rc rc = normalise_spec(&norm, spec, NULL);

    if (rc != HIVE_OK)
        return rc;
    id = hive__strdup(hive_json_string(hive_json_get(norm, "credential_id"), NULL));
    if (id == NULL) {
        hive_json_free(&norm);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rc = change_usage(s, id, norm, persist);
    free(id);
    return rc;
}

hive_rc hive_store_unregister_usage(hive_store *s, const char *id, bool persist)
{
    hive__clear_error();
    return change_usage(s, id, NULL, persist);
}

const hive_json *hive_store_get_usage(hive_store *s, const char *id)
{
    if (load_usage(s) != HIVE_OK)
        return NULL;
    return hive_json_get(s->usage, id);
}

hive_rc hive_store_list_usage(hive_store *s, hive_strlist *out)
{
    hive__clear_error();
    hive_strlist ids = {0};
    hive_rc rc = load_usage(s);

    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(s->usage); i++) {
        const char *id;
        hive_json_at(s->usage, i, &id);
        rc = hive__strlist_add(&ids, id);
    }
    if (rc != HIVE_OK) {
        hive_strlist_free(&ids);
        return rc;
    }
    hive__strlist_sort_unique(&ids);
    *out = ids;
    return HIVE_OK;
}

hive_rc hive_store_resolve_for_usage(hive_store *s, hive_json **out, const char *id, unsigned flags)
{
    hive__clear_error();
    static const char *const result_names[] = {"headers", "params", "data", "env"};
    const hive_json *spec;
    hive_json *res;
    hive_rc rc = load_usage(s);

    if (rc != HIVE_OK)
        return rc;
    spec = hive_json_get(s->usage, id);
    if (spec == NULL)
        return hive__fail(HIVE_ERR_NOT_FOUND, "No usage spec registered for '%s'", id);
    res = hive_json_new(HIVE_JSON_OBJECT);
    if (res == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (size_t m = 0; rc == HIVE_OK && m < 4; m++) {
        const hive_json *part = hive_json_get(spec, map_fields[m]);
        hive_json *done = NULL;
        if (hive_json_size(part) == 0)
            continue;
        rc = hive__resolve_object(s, &done, part, flags);
        if (rc == HIVE_OK)
            rc = hive_json_set(res, result_names[m], done);
    }
    if (rc != HIVE_OK) {
        hive_json_free(&res);
        return rc;
    }
    *out = res;
    return HIVE_OK;
}

/* --- scopes --------------------------------------------------------------- */

bool hive_scope_valid(const char *scope)
{
    if (scope == NULL || *scope == '\0' || strlen(scope) > HIVE_SCOPE_MAX)
        return false;
    /* RFC 6749 section 3.3: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E;
     * without ',' too, which separates GitHub's scopes */
    for (const char *p = scope; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\' || *p == ',')
            return false;
    return true;
}

/* Whether the granted scope list (space- or comma-separated) holds want. */
static bool granted(const char *list, size_t len, const char *want)
{
    size_t wlen = strlen(want);

    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && list[j] != ' ' && list[j] != ',' && list[j] != '\t' && list[j] != '\n' &&
               list[j] != '\r')
            j++;
        if (j - i == wlen && memcmp(list + i, want, wlen) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

/* Add the scopes of spec's required_scopes to out. */
static hive_rc add_scopes(hive_strlist *out, const hive_json *spec)
{
    const hive_json *req = hive_json_get(spec, "required_scopes");
    hive_rc rc = HIVE_OK;

    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(req); i++)
        rc = hive__strlist_add(out, hive_json_string(hive_json_at(req, i, NULL), NULL));
    return rc;
}

hive_rc hive_store_required_scopes(hive_store *s, hive_strlist *out, const char *id)
{
    hive__clear_error();
    hive_strlist all = {0};
    hive_rc rc = load_usage(s);

    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(s->usage); i++) {
        const hive_json *spec = hive_json_at(s->usage, i, NULL);
        const char *cid = hive_json_string(hive_json_get(spec, "credential_id"), NULL);
        if (cid != NULL && strcmp(cid, id) == 0)
            rc = add_scopes(&all, spec);
    }
    if (rc != HIVE_OK) {
        hive_strlist_free(&all);
        return rc;
    }
    hive__strlist_sort_unique(&all);
    *out = all;
    return HIVE_OK;
}

hive_rc hive_cred_missing_scopes(hive_strlist *missing, bool *recorded, const hive_cred *cred,
                                 const hive_strlist *required)
{
    hive__clear_error();
    size_t len = 0;
    const char *have = hive_cred_get_key(cred, "scope", &len);
    hive_strlist out = {0};
    hive_rc rc = HIVE_OK;

    for (size_t i = 0; rc == HIVE_OK && i < required->count; i++)
        if (have == NULL || !granted(have, len, required->items[i]))
            rc = hive__strlist_add(&out, required->items[i]);
    if (rc != HIVE_OK) {
        hive_strlist_free(&out);
        return rc;
    }
    *missing = out;
    *recorded = have != NULL;
    return HIVE_OK;
}

/* "a, b, c": the items of list (the caller's, free), or NULL. */
static char *joined(const hive_strlist *list)
{
    size_t n = 1;
    char *text;
    char *p;

    for (size_t i = 0; i < list->count; i++)
        n += strlen(list->items[i]) + 2;
    if ((text = malloc(n)) == NULL)
        return NULL;
    p = text;
    for (size_t i = 0; i < list->count; i++) {
        size_t l = strlen(list->items[i]);
        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, list->items[i], l);
        p += l;
    }
    *p = '\0';
    return text;
}

/* The message saying which of required cred's token lacks (*problem NULL:
 * none), and whether it has a scope record. */
static hive_rc scope_problem(char **problem, bool *recorded, const hive_cred *cred, const hive_strlist *required)
{
    hive_strlist missing = {0};
    const char *id = hive_cred_id(cred);
    size_t len = 0;
    const char *have;
    char *want = NULL;
    char *msg = NULL;
    hive_rc rc = hive_cred_missing_scopes(&missing, recorded, cred, required);

    if (rc != HIVE_OK || missing.count == 0) {
        hive_strlist_free(&missing);
        if (rc == HIVE_OK)
            *problem = NULL;
        return rc;
    }
    want = joined(&missing);
    have = hive_cred_get_key(cred, "scope", &len);
    if (want != NULL && !*recorded)
        msg = hive__aprintf("Credential '%s' has no record of its token's scopes (no 'scope' key), so the "
                            "scopes its usage spec requires cannot be checked: %s", id, want);
    else if (want != NULL)
        msg = hive__aprintf("Credential '%s' lacks scopes its usage spec requires: %s (its token has: %.*s)",
                            id, want, len > 0 ? (int)(len > 1000 ? 1000 : len) : 4, len > 0 ? have : "none");
    free(want);
    hive_strlist_free(&missing);
    if (msg == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    *problem = msg;
    return HIVE_OK;
}

hive_rc hive_store_check_scopes(hive_store *s, char **problem, bool *recorded, const hive_cred *cred)
{
    hive__clear_error();
    hive_strlist required = {0};
    hive_rc rc = hive_store_required_scopes(s, &required, hive_cred_id(cred));

    if (rc == HIVE_OK)
        rc = scope_problem(problem, recorded, cred, &required);
    hive_strlist_free(&required);
    return rc;
}

/* --- validation ------------------------------------------------------------ */

static hive_rc add_problem(hive_strlist *problems, const char *fmt, ...) HIVE_PRINTF(2, 3);
static hive_rc add_problem(hive_strlist *problems, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    hive_rc rc;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive__strlist_add(problems, msg);
    free(msg);
    return rc;
}

/* Python's value.strip() is empty. */
static bool blank(const char *s, size_t n)
{
    for (size_t i = 0, l; i < n; i += l)
        if ((l = hive__utf8_space(s + i, n - i)) == 0)
            return false;
    return true;
}

/*
 * What the credential's provider in the Python Hive says in validate(),
 * apart from expiry (checked below, more strictly than Hive): a static
 * credential (api_key, basic_auth, custom) needs a key whose value is not
 * blank; an oauth2 one an access_token; a bearer token an access_token or
 * a token.
 */
static hive_rc provider_check(hive_strlist *problems, const hive_cred *c, const hive_provider *p)
{
    const char *id = hive_cred_id(c);
    hive_cred_type type = hive_cred_get_type(c);

    if (hive_cred_key_count(c) == 0)
        return add_problem(problems, "Credential '%s' has no keys", id);
    if ((p != NULL && strcmp(p->id, HIVE_OAUTH2_PROVIDER) == 0) || type == HIVE_TYPE_OAUTH2) {
        if (hive_cred_get_key(c, "access_token", NULL) == NULL)
            return add_problem(problems, "Credential '%s' has no access_token", id);
    } else if (type == HIVE_TYPE_BEARER_TOKEN) {
        if (hive_cred_get_key(c, "access_token", NULL) == NULL && hive_cred_get_key(c, "token", NULL) == NULL)
            return add_problem(problems, "Credential '%s' has neither an access_token nor a token", id);
    } else {
        for (size_t i = 0; i < hive_cred_key_count(c); i++) {
            size_t len = 0;
            const char *v = hive_cred_get_key(c, hive_cred_key_name(c, i), &len);
            if (v != NULL && !blank(v, len))
                return HIVE_OK;
        }
        return add_problem(problems, "Credential '%s' has no key with a value (every value is empty or blank)",
                           id);
    }
    return HIVE_OK;
}

hive_rc hive_store_validate_credential(hive_store *s, hive_strlist *problems, const char *id)
{
    hive__clear_error();
    hive_cred *c = NULL;
    hive_time now = hive_time_now();
    hive_provider *p;
    hive_lookup lookup;
    hive_rc rc = hive_store_get_credential(s, &c, id, HIVE_GET_NO_REFRESH);

    if (rc == HIVE_ERR_NOMEM)
        return rc;
    if (rc != HIVE_OK) {
        rc = hive__strlist_add(problems, hive_last_error());
        hive__clear_error();
        return rc;
    }
    p = hive_store_provider_for(s, c);
    lookup = hive__store_lookup(s);
    rc = provider_check(problems, c, p);
    for (size_t i = 0; rc == HIVE_OK && i < hive_cred_key_count(c); i++) {
        const char *name = hive_cred_key_name(c, i);
        hive_time t = hive_cred_key_expires(c, name);
        char when[HIVE_TIME_TEXT];
        if (t.form == HIVE_TIME_NONE || hive_time_cmp(&t, &now) > 0)
            continue;
        if (hive_cred_auto_refresh(c) && hive__provider_can_refresh(s, p, c))
            continue;   /* expired, but it will be refreshed on use */
        hive_time_format(when, &t, true);
        if (hive_cred_get_type(c) == HIVE_TYPE_BEARER_TOKEN)
            rc = add_problem(problems, "Key '%s' of credential '%s' expired at %s. Bearer token '%s' "
                             "cannot be refreshed. Obtain a new token and save it to the credential store.",
                             name, id, when, id);
        else if (!hive_cred_auto_refresh(c))
            rc = add_problem(problems, "Key '%s' of credential '%s' expired at %s and auto_refresh is off",
                             name, id, when);
        else if (p != NULL && p->can_refresh != NULL && !p->can_refresh(p, &lookup, c))
            rc = add_problem(problems, "Key '%s' of credential '%s' expired at %s and cannot be refreshed: %s",
                             name, id, when, hive_last_error());
        else
            rc = add_problem(problems, "Key '%s' of credential '%s' expired at %s and no provider can "
                             "refresh it", name, id, when);
    }
    hive_cred_free(&c);
    return rc;
}

hive_rc hive_store_validate_for_usage(hive_store *s, hive_strlist *problems, const char *id)
{
    hive__clear_error();
    const hive_json *spec;
    const hive_json *req;
    const char *cred_id;
    hive_cred *c = NULL;
    hive_rc rc = load_usage(s);

    if (rc != HIVE_OK)
        return rc;
    spec = hive_json_get(s->usage, id);
    if (spec == NULL)
        return hive__fail(HIVE_ERR_NOT_FOUND, "No usage spec registered for '%s'", id);
    cred_id = hive_json_string(hive_json_get(spec, "credential_id"), NULL);
    rc = hive_store_get_credential(s, &c, cred_id, HIVE_GET_NO_REFRESH);
    if (rc == HIVE_ERR_NOT_FOUND) {
        hive__clear_error();
        return add_problem(problems, "Credential '%s' not found", cred_id);
    }
    if (rc != HIVE_OK) {
        rc = rc == HIVE_ERR_NOMEM ? rc : hive__strlist_add(problems, hive_last_error());
        hive__clear_error();
        return rc;
    }
    req = hive_json_get(spec, "required_keys");
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(req); i++) {
        const char *k = hive_json_string(hive_json_at(req, i, NULL), NULL);
        if (hive_cred_get_key(c, k, NULL) == NULL)
            rc = add_problem(problems, "Missing required key '%s'", k);
    }
    if (rc == HIVE_OK) {
        /* this spec's scopes, as hive-run --usage checks them */
        hive_strlist scopes = {0};
        char *msg = NULL;
        bool recorded;
        rc = add_scopes(&scopes, spec);
        if (rc == HIVE_OK)
            rc = scope_problem(&msg, &recorded, c, &scopes);
        if (rc == HIVE_OK && msg != NULL)
            rc = hive__strlist_add(problems, msg);
        free(msg);
        hive_strlist_free(&scopes);
    }
    hive_cred_free(&c);
    /* Hive's own check is the keys' (its messages, in the spec's order,
     * duplicates included); hive also checks the scopes (above) and renders
     * the spec's templates, saying each distinct problem once, in the
     * order found. */
    for (size_t m = 0; rc == HIVE_OK && m < 4; m++) {
        const hive_json *part = hive_json_get(spec, map_fields[m]);
        for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(part); i++) {
            hive_strlist found = {0};
            rc = hive_store_check_template(s, &found, hive_json_string(hive_json_at(part, i, NULL), NULL));
            for (size_t f = 0; rc == HIVE_OK && f < found.count; f++) {
                bool seen = false;
                for (size_t k = 0; k < problems->count && !seen; k++)
                    seen = strcmp(problems->items[k], found.items[f]) == 0;
                if (!seen)
                    rc = hive__strlist_add(problems, found.items[f]);
            }
            hive_strlist_free(&found);
        }
    }
    return rc;
}

hive_rc hive_store_validate_all(hive_store *s, hive_json **out)
{
    hive__clear_error();
    hive_json *res = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc = res ? load_usage(s) : hive__fail(HIVE_ERR_NOMEM, "out of memory");

    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(s->usage); i++) {
        const char *id;
        hive_strlist problems = {0};
        hive_json_at(s->usage, i, &id);
        rc = hive_store_validate_for_usage(s, &problems, id);
        if (rc == HIVE_OK && problems.count > 0) {
            hive_json *arr = hive_json_new(HIVE_JSON_ARRAY);
            for (size_t k = 0; arr != NULL && rc == HIVE_OK && k < problems.count; k++)
                rc = hive_json_append(arr, hive_json_new_string(problems.items[k], strlen(problems.items[k])));
            rc = rc == HIVE_OK ? hive_json_set(res, id, arr) : rc;
        }
        hive_strlist_free(&problems);
    }
    if (rc != HIVE_OK) {
        hive_json_free(&res);
        return rc;
    }
    *out = res;
    return HIVE_OK;
}

/* --- accounts ------------------------------------------------------------- */

static const char *key_str(const hive_cred *c, const char *k)
{
    return hive_cred_get_key(c, k, NULL);
}

/* The account entry of c if it belongs to provider, else NULL. */
static hive_rc account_of(hive_json **out, const hive_cred *c, const char *provider)
{
    static const char *const identity_fields[] = {"email", "username", "workspace", "account_id"};
    const char *id = hive_cred_id(c);
    const char *integ = key_str(c, "_integration_type");
    const char *alias = key_str(c, "_alias");
    size_t plen = strlen(provider);
    bool by_id = strncmp(id, provider, plen) == 0 && id[plen] == '/' && id[plen + 1] != '\0';
    hive_json *e;
    hive_json *identity;
    hive_rc rc;

    *out = NULL;
    if (!(integ != NULL ? strcmp(integ, provider) == 0 : by_id))
        return HIVE_OK;
    if (alias == NULL && by_id)
        alias = id + plen + 1;
    e = hive_json_new(HIVE_JSON_OBJECT);
    identity = hive_json_new(HIVE_JSON_OBJECT);
    if (e == NULL || identity == NULL) {
        hive_json_free(&e);
        hive_json_free(&identity);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rc = hive_json_set(e, "id", hive_json_new_string(id, strlen(id)));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "provider", hive_json_new_string(provider, plen));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "alias", alias ? hive_json_new_string(alias, strlen(alias))
                                             : hive_json_new(HIVE_JSON_NULL));
    for (size_t i = 0; rc == HIVE_OK && i < 4; i++) {
        char k[32];
        size_t vlen;
        const char *v;
        snprintf(k, sizeof(k), "_identity_%s", identity_fields[i]);
        v = hive_cred_get_key(c, k, &vlen);
        if (v != NULL)
            rc = hive_json_set(identity, identity_fields[i], hive_json_new_string(v, vlen));
    }
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "identity", identity);
    else
        hive_json_free(&identity);
    if (rc != HIVE_OK) {
        hive_json_free(&e);
        return rc;
    }
    *out = e;
    return HIVE_OK;
}

hive_rc hive_store_list_accounts(hive_store *s, hive_json **out, const char *provider)
{
    hive__clear_error();
    hive_strlist ids = {0};
    hive_json *arr = hive_json_new(HIVE_JSON_ARRAY);
    hive_rc rc = arr ? hive_store_list(s, &ids) : hive__fail(HIVE_ERR_NOMEM, "out of memory");

    for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++) {
        hive_cred *c = NULL;
        hive_json *e = NULL;
        if (hive_store_get_credential(s, &c, ids.items[i], HIVE_GET_NO_REFRESH) != HIVE_OK) {
            hive__clear_error();   /* an unreadable credential is nobody's account */
            continue;
        }
        rc = account_of(&e, c, provider);
        hive_cred_free(&c);
        if (rc == HIVE_OK && e != NULL)
            rc = hive_json_append(arr, e);
    }
    hive_strlist_free(&ids);
    if (rc != HIVE_OK) {
        hive_json_free(&arr);
        return rc;
    }
    *out = arr;
    return HIVE_OK;
}

hive_rc hive_store_get_by_alias(hive_store *s, hive_cred **out, const char *provider, const char *alias)
{
    hive__clear_error();
    hive_json *accounts = NULL;
    hive_rc rc = hive_store_list_accounts(s, &accounts, provider);
    const char *found = NULL;
    size_t plen = strlen(provider);

    /* "provider/alias" names the same account as "alias", as in Hive */
    if (strncmp(alias, provider, plen) == 0 && alias[plen] == '/')
        alias += plen + 1;

    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(accounts); i++) {
        const hive_json *a = hive_json_at(accounts, i, NULL);
        const char *al = hive_json_string(hive_json_get(a, "alias"), NULL);
        if (al != NULL && strcmp(al, alias) == 0) {
            found = hive_json_string(hive_json_get(a, "id"), NULL);
            break;
        }
    }
    if (rc == HIVE_OK)
        rc = found ? hive_store_get_credential(s, out, found, 0)
                   : hive__fail(HIVE_ERR_NOT_FOUND, "No '%s' account with alias '%s'", provider, alias);
    hive_json_free(&accounts);
    return rc;
}
