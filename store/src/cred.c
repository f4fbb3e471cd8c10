/*
 * cred.c - the credential object, kept as its normalised Hive document.
 */
#include "buf.h"
#include "utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hive_cred {
    hive_json *doc;
};

static const char *const type_names[] = {
    NULL, "api_key", "oauth2", "basic_auth", "bearer_token", "custom",
};

/* The CredentialObject fields, in the order Hive writes them. */
static const char *const obj_fields[] = {
    "id", "credential_type", "keys", "provider_id", "last_refreshed", "auto_refresh",
    "last_used", "use_count", "description", "tags", "created_at", "updated_at",
};
static const char *const key_fields[] = {"name", "value", "expires_at", "metadata"};

const char *hive_cred_type_name(hive_cred_type type)
{
    if ((size_t)type >= sizeof(type_names) / sizeof(type_names[0]))
        return NULL;
    return type_names[type];
}

hive_cred_type hive_cred_type_parse(const char *name)
{
    for (size_t i = 1; name != NULL && i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(name, type_names[i]) == 0)
            return (hive_cred_type)i;
    return HIVE_TYPE_UNKNOWN;
}

/* --- normalisation (what pydantic does on load) ------------------------ */

/* One of CredentialType's values, exactly (pydantic's enum check). */
static bool is_type_name(const hive_json *v)
{
    size_t len;
    const char *s = hive_json_typeof(v) == HIVE_JSON_STRING ? hive_json_string(v, &len) : NULL;

    return s != NULL && strlen(s) == len && hive_cred_type_parse(s) != HIVE_TYPE_UNKNOWN;
}

static bool is_field(const char *key, size_t key_len, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(fields[i]) == key_len && memcmp(key, fields[i], key_len) == 0)
            return true;
    return false;
}

/*
 * A field Hive's pydantic model rejects, named as pydantic names it: its
 * path in the document ("use_count", "keys.api_key.name", "tags.1").
 */
static hive_rc bad_field(const char *path, const char *want)
{
    return hive__fail(HIVE_ERR_FORMAT, "invalid credential: %.300s: %s", path, want);
}

/* "keys.<name>.<field>" for a key's field (the name cut for the message). */
static const char *key_path(char *buf, size_t size, const char *key_name, const char *field)
{
    int n = snprintf(buf, size, "keys.%.200s%s%s", key_name, field ? "." : "", field ? field : "");

    return n >= 0 ? buf : "keys";
}

static hive_json *time_json(const hive_time *t)
{
    char text[HIVE_TIME_TEXT];

    if (t->form == HIVE_TIME_NONE)
        return hive_json_new(HIVE_JSON_NULL);
    hive_time_format(text, t, true);
    return hive_json_new_string(text, strlen(text));
}

/* A datetime field in any form pydantic accepts, rewritten as Hive writes it. */
static hive_rc norm_time(hive_json **out, const hive_json *v, bool nullable, const char *path)
{
    hive_time t;

    switch (hive_json_typeof(v)) {
    case HIVE_JSON_NULL:
        if (!nullable)
            return bad_field(path, "Input should be a valid datetime");
        *out = hive_json_new(HIVE_JSON_NULL);
        break;
    case HIVE_JSON_STRING: {
        size_t len;
        const char *s = hive_json_string(v, &len);
        if (hive_time_parse(&t, s, len) != HIVE_OK)
            return bad_field(path, "Input should be a valid datetime");
        *out = time_json(&t);
        break;
    }
    case HIVE_JSON_NUMBER:
        if (hive_time_from_number(&t, hive_json_number(v)) != HIVE_OK)
            return bad_field(path, "Input should be a valid datetime");
        *out = time_json(&t);
        break;
    default:
        return bad_field(path, "Input should be a valid datetime");
    }
    return *out ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

/* pydantic's lax bool. */
static hive_rc norm_bool(hive_json **out, const hive_json *v, const char *field)
{
    static const char *const yes[] = {"1", "on", "t", "true", "y", "yes"};
    static const char *const no[] = {"0", "off", "f", "false", "n", "no"};
    int b = -1;

    switch (hive_json_typeof(v)) {
    case HIVE_JSON_TRUE: b = 1; break;
    case HIVE_JSON_FALSE: b = 0; break;
    case HIVE_JSON_NUMBER: {
        double d = hive_json_number(v);
        b = d == 1.0 ? 1 : d == 0.0 ? 0 : -1;
        break;
    }
    case HIVE_JSON_STRING: {
        size_t len;
        const char *s = hive_json_string(v, &len);
        char low[8];
        if (len < sizeof(low)) {
            for (size_t i = 0; i <= len; i++)
                low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
            for (size_t i = 0; i < 6; i++) {
                if (strcmp(low, yes[i]) == 0)
                    b = 1;
                if (strcmp(low, no[i]) == 0)
                    b = 0;
            }
        }
        break;
    }
    default:
        break;
    }
    if (b < 0)
        return bad_field(field, "Input should be a valid boolean");
    *out = hive_json_new(b ? HIVE_JSON_TRUE : HIVE_JSON_FALSE);
    return *out ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

/*
 * pydantic's lax int from a string: Python whitespace around, a sign,
 * digits with single underscores between them, then optionally '.' and
 * zeros ("7.0"); any size. The canonical digits go to out.
 */
static bool str_int(hive_buf *out, const char *s, size_t n)
{
    size_t i = 0, l;
    size_t start;
    bool neg = false;

    while (i < n && (l = hive__utf8_space(s + i, n - i)) > 0)
        i += l;
    for (size_t k = 1; k <= 3 && k <= n - i; k++) {
        if (hive__utf8_space(s + n - k, k) == k) {
            n -= k;
            k = 0;   /* look again from the new end */
        }
    }
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        if (i + 1 < n && s[i] == '_' && s[i + 1] >= '0' && s[i + 1] <= '9')
            i++;
    }
    if (i == start)
        return false;
    if (i < n) {
        size_t z = i + 1;
        if (s[i] != '.' || z >= n)
            return false;
        while (z < n && s[z] == '0')
            z++;
        if (z != n)
            return false;
    }
    while (start < i && (s[start] == '0' || s[start] == '_') && start + 1 < i)
        start++;
    if (neg && !(i - start == 1 && s[start] == '0'))
        hive__buf_putc(out, '-');
    for (size_t k = start; k < i; k++)
        if (s[k] != '_')
            hive__buf_putc(out, s[k]);
    return true;
}

/* pydantic's lax int: integers, bools, floats without a fraction (in
 * int64's range), numeric strings. */
static hive_rc norm_int(hive_json **out, const hive_json *v, const char *field)
{
    switch (hive_json_typeof(v)) {
    case HIVE_JSON_TRUE:
    case HIVE_JSON_FALSE:
        *out = hive_json_new_int(hive_json_typeof(v) == HIVE_JSON_TRUE);
        break;
    case HIVE_JSON_NUMBER: {
        const char *text = hive_json_string(v, NULL);
        double d = hive_json_number(v);
        if (strpbrk(text, ".eEIN") == NULL)
            *out = hive_json_clone(v);
        else if (!isfinite(d))
            return bad_field(field, "Input should be a finite number");
        else if (d != trunc(d))
            return bad_field(field, "Input should be a valid integer, got a number with a fractional part");
        else if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            *out = hive_json_new_int((int64_t)d);
        else
            return bad_field(field, "Unable to parse input string as an integer, exceeded maximum size");
        break;
    }
    case HIVE_JSON_STRING: {
        size_t len;
        const char *s = hive_json_string(v, &len);
        hive_buf digits = {0};
        char *text = NULL;
        size_t tlen = 0;
        hive_rc rc;
        if (!str_int(&digits, s, len)) {
            hive__buf_free(&digits);
            return bad_field(field, "Input should be a valid integer, unable to parse string as an integer");
        }
        rc = hive__buf_finish(&digits, &text, &tlen);
        if (rc != HIVE_OK)
            return rc;
        rc = hive_json_parse(out, text, tlen);   /* a number of any size, kept exact */
        free(text);
        return rc == HIVE_OK ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    default:
        return bad_field(field, "Input should be a valid integer");
    }
    return *out ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

static hive_rc want_type(const hive_json *v, hive_json_type type, bool nullable, const char *path,
                         const char *desc)
{
    hive_json_type got = hive_json_typeof(v);

    if (got == type || (nullable && got == HIVE_JSON_NULL))
        return HIVE_OK;
    return bad_field(path, desc);
}

/* Copy the members of src that are not among fields onto dst, in order. */
static hive_rc copy_extras(hive_json *dst, const hive_json *src, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < hive_json_size(src); i++) {
        const char *k;
        size_t klen;
        const hive_json *v = hive_json_member(src, i, &k, &klen);
        hive_rc rc;

        if (is_field(k, klen, fields, n))
            continue;
        rc = hive_json_set_member(dst, k, klen, hive_json_clone(v));
        if (rc != HIVE_OK)
            return rc;
    }
    return HIVE_OK;
}

static hive_rc set_or_default(hive_json *dst, const char *k, hive_json *v)
{
    if (v == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    return hive_json_set(dst, k, v);
}

/* One key, as pydantic validates CredentialKey (name and value required). */
static hive_rc norm_key(hive_json **out, const char *dict_name, const hive_json *in)
{
    char path[300];
    hive_json *k = NULL;
    hive_json *t = NULL;
    hive_rc rc;
    const hive_json *f;

    if (hive_json_typeof(in) != HIVE_JSON_OBJECT)
        return bad_field(key_path(path, sizeof(path), dict_name, NULL), "Input should be a valid dictionary");
    k = hive_json_new(HIVE_JSON_OBJECT);
    if (k == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");

    f = hive_json_get(in, "name");
    if (f == NULL)
        rc = bad_field(key_path(path, sizeof(path), dict_name, "name"), "Field required");
    else if ((rc = want_type(f, HIVE_JSON_STRING, false, key_path(path, sizeof(path), dict_name, "name"),
                             "Input should be a valid string")) == HIVE_OK)
        rc = set_or_default(k, "name", hive_json_clone(f));
    if (rc != HIVE_OK)
        goto fail;

    f = hive_json_get(in, "value");
    if (f == NULL)
        rc = bad_field(key_path(path, sizeof(path), dict_name, "value"), "Field required");
    else if ((rc = want_type(f, HIVE_JSON_STRING, false, key_path(path, sizeof(path), dict_name, "value"),
                             "Input should be a valid string")) == HIVE_OK)
        rc = set_or_default(k, "value", hive_json_clone(f));
    if (rc != HIVE_OK)
        goto fail;

    f = hive_json_get(in, "expires_at");
    if (f != NULL) {
        rc = norm_time(&t, f, true, key_path(path, sizeof(path), dict_name, "expires_at"));
        if (rc == HIVE_OK)
            rc = hive_json_set(k, "expires_at", t);
    } else {
        rc = set_or_default(k, "expires_at", hive_json_new(HIVE_JSON_NULL));
    }
    if (rc != HIVE_OK)
        goto fail;

    f = hive_json_get(in, "metadata");
    if (f != NULL && (rc = want_type(f, HIVE_JSON_OBJECT, false, key_path(path, sizeof(path), dict_name, "metadata"),
                                     "Input should be a valid dictionary")) != HIVE_OK)
        goto fail;
    rc = set_or_default(k, "metadata", f ? hive_json_clone(f) : hive_json_new(HIVE_JSON_OBJECT));
    if (rc == HIVE_OK)
        rc = copy_extras(k, in, key_fields, 4);
    if (rc != HIVE_OK)
        goto fail;
    *out = k;
    return HIVE_OK;
fail:
    hive_json_free(&k);
    return rc;
}

static hive_rc norm_keys(hive_json **out, const hive_json *in)
{
    hive_json *keys = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc = HIVE_OK;

    if (keys == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < hive_json_size(in) && rc == HIVE_OK; i++) {
        const char *name;
        size_t name_len;
        const hive_json *kv = hive_json_member(in, i, &name, &name_len);
        hive_json *nk = NULL;
        rc = norm_key(&nk, name, kv);
        if (rc == HIVE_OK)
            rc = hive_json_set_member(keys, name, name_len, nk);
    }
    if (rc != HIVE_OK) {
        hive_json_free(&keys);
        return rc;
    }
    *out = keys;
    return HIVE_OK;
}

static hive_rc normalise(hive_json **out, const hive_json *in)
{
    hive_json *doc = NULL;
    const hive_json *f;
    hive_json *v = NULL;
    hive_time now = hive_time_now();
    hive_rc rc = HIVE_OK;

    if (hive_json_typeof(in) != HIVE_JSON_OBJECT)
        return hive__fail(HIVE_ERR_FORMAT, "credential must be a JSON object");
    doc = hive_json_new(HIVE_JSON_OBJECT);
    if (doc == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");

    for (size_t i = 0; i < sizeof(obj_fields) / sizeof(obj_fields[0]) && rc == HIVE_OK; i++) {
        const char *name = obj_fields[i];
        f = hive_json_get(in, name);
        v = NULL;
        if (strcmp(name, "id") == 0) {
            size_t len;
            const char *s = hive_json_string(f, &len);
            if (f == NULL) {
                rc = bad_field("id", "Field required");
            } else if (hive_json_typeof(f) != HIVE_JSON_STRING) {
                rc = bad_field("id", "Input should be a valid string");
            } else if (strlen(s) != len || len == 0) {
                rc = hive__fail(HIVE_ERR_FORMAT, "credential id is empty or holds a NUL byte");
            } else {
                v = hive_json_clone(f);
            }
        } else if (strcmp(name, "credential_type") == 0) {
            if (f == NULL)
                v = hive_json_new_string("api_key", 7);
            else if (!is_type_name(f))
                rc = bad_field(name, "Input should be 'api_key', 'oauth2', 'basic_auth', 'bearer_token' "
                               "or 'custom'");
            else
                v = hive_json_clone(f);
        } else if (strcmp(name, "keys") == 0) {
            if (f == NULL)
                v = hive_json_new(HIVE_JSON_OBJECT);
            else if ((rc = want_type(f, HIVE_JSON_OBJECT, false, name, "Input should be a valid dictionary")) == HIVE_OK)
                rc = norm_keys(&v, f);
        } else if (strcmp(name, "provider_id") == 0) {
            if (f == NULL)
                v = hive_json_new(HIVE_JSON_NULL);
            else if ((rc = want_type(f, HIVE_JSON_STRING, true, name, "Input should be a valid string")) == HIVE_OK)
                v = hive_json_clone(f);
        } else if (strcmp(name, "last_refreshed") == 0 || strcmp(name, "last_used") == 0) {
            if (f == NULL)
                v = hive_json_new(HIVE_JSON_NULL);
            else
                rc = norm_time(&v, f, true, name);
        } else if (strcmp(name, "auto_refresh") == 0) {
            if (f == NULL)
                v = hive_json_new(HIVE_JSON_FALSE);
            else
                rc = norm_bool(&v, f, name);
        } else if (strcmp(name, "use_count") == 0) {
            if (f == NULL)
                v = hive_json_new_int(0);
            else
                rc = norm_int(&v, f, name);
        } else if (strcmp(name, "description") == 0) {
            if (f == NULL)
                v = hive_json_new_string("", 0);
            else if ((rc = want_type(f, HIVE_JSON_STRING, false, name, "Input should be a valid string")) == HIVE_OK)
                v = hive_json_clone(f);
        } else if (strcmp(name, "tags") == 0) {
            if (f == NULL) {
                v = hive_json_new(HIVE_JSON_ARRAY);
            } else if ((rc = want_type(f, HIVE_JSON_ARRAY, false, name, "Input should be a valid list")) == HIVE_OK) {
                for (size_t t = 0; t < hive_json_size(f) && rc == HIVE_OK; t++) {
                    if (hive_json_typeof(hive_json_at(f, t, NULL)) != HIVE_JSON_STRING) {
                        char path[40];
                        snprintf(path, sizeof(path), "tags.%zu", t);
                        rc = bad_field(path, "Input should be a valid string");
                    }
                }
                if (rc == HIVE_OK)
                    v = hive_json_clone(f);
            }
        } else { /* created_at, updated_at */
            if (f == NULL)
                v = time_json(&now);
            else
                rc = norm_time(&v, f, false, name);
        }
        if (rc == HIVE_OK)
            rc = set_or_default(doc, name, v);
        else
            hive_json_free(&v);
    }
    if (rc == HIVE_OK)
        rc = copy_extras(doc, in, obj_fields, sizeof(obj_fields) / sizeof(obj_fields[0]));
    if (rc != HIVE_OK) {
        hive_json_free(&doc);
        return rc;
    }
    *out = doc;
    return HIVE_OK;
}

/* --- life cycle ------------------------------------------------------- */

static hive_rc wrap(hive_cred **out, hive_json *doc)
{
    hive_cred *c = malloc(sizeof(*c));

    if (c == NULL) {
        hive_json_free(&doc);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    c->doc = doc;
    *out = c;
    return HIVE_OK;
}

hive_rc hive_cred_parse(hive_cred **out, const char *json, size_t len)
{
    hive_json *raw = NULL;
    hive_json *doc = NULL;
    hive_rc rc;

    hive__clear_error();
    rc = hive_json_parse(&raw, json, len);
    if (rc != HIVE_OK)
        return rc == HIVE_ERR_NOMEM ? rc : hive__fail_prefix(HIVE_ERR_FORMAT, "not a credential");
    rc = normalise(&doc, raw);
    hive_json_free(&raw);
    if (rc != HIVE_OK)
        return rc;
    return wrap(out, doc);
}

hive_rc hive_cred_new(hive_cred **out, const char *id, const char *type_name)
{
    hive_json *in;
    hive_json *doc = NULL;
    hive_rc rc;

    hive__clear_error();
    if (id == NULL || *id == '\0')
        return hive__fail(HIVE_ERR_BAD_ID, "credential id is empty");
    if (hive_cred_type_parse(type_name) == HIVE_TYPE_UNKNOWN)
        return hive__fail(HIVE_ERR_INVALID, "unknown credential type '%.64s' (expected api_key, "
                          "oauth2, basic_auth, bearer_token or custom)", type_name ? type_name : "");
    if (!hive__utf8_valid(id, strlen(id), false))
        return hive__fail(HIVE_ERR_BAD_ID, "credential id is not valid UTF-8");
    in = hive_json_new(HIVE_JSON_OBJECT);
    if (in == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive_json_set(in, "id", hive_json_new_string(id, strlen(id)));
    if (rc == HIVE_OK)
        rc = hive_json_set(in, "credential_type", hive_json_new_string(type_name, strlen(type_name)));
    if (rc == HIVE_OK)
        rc = normalise(&doc, in);
    hive_json_free(&in);
    if (rc != HIVE_OK)
        return rc;
    return wrap(out, doc);
}

hive_rc hive__cred_emit(char **out, size_t *len, const hive_cred *cred)
{
    hive__clear_error();
    return hive__json_emit(out, len, cred->doc, -1);
}

hive_rc hive_cred_emit(const hive_cred *cred, hive_secret *out)
{
    hive__clear_error();
    if (out == NULL || cred == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no credential or no place for its text");
    return hive__cred_emit(&out->data, &out->len, cred);
}

void hive_cred_free(hive_cred **cred)
{
    if (cred == NULL || *cred == NULL)
        return;
    hive_json_free(&(*cred)->doc);
    free(*cred);
    *cred = NULL;
}

hive_rc hive_cred_clone(hive_cred **out, const hive_cred *cred)
{
    hive__clear_error();
    hive_json *doc = hive_json_clone(cred->doc);

    if (doc == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    return wrap(out, doc);
}

/* --- fields ----------------------------------------------------------- */

static const char *str_field(const hive_json *obj, const char *name)
{
    return hive_json_typeof(hive_json_get(obj, name)) == HIVE_JSON_STRING
               ? hive_json_string(hive_json_get(obj, name), NULL)
               : NULL;
}

const char *hive_cred_id(const hive_cred *cred)
{
    return str_field(cred->doc, "id");
}

const char *hive_cred_type_str(const hive_cred *cred)
{
    return str_field(cred->doc, "credential_type");
}

hive_cred_type hive_cred_get_type(const hive_cred *cred)
{
    return hive_cred_type_parse(hive_cred_type_str(cred));
}

const char *hive_cred_provider_id(const hive_cred *cred)
{
    return str_field(cred->doc, "provider_id");
}

const char *hive_cred_description(const hive_cred *cred)
{
    return str_field(cred->doc, "description");
}

bool hive_cred_auto_refresh(const hive_cred *cred)
{
    return hive_json_typeof(hive_json_get(cred->doc, "auto_refresh")) == HIVE_JSON_TRUE;
}

static hive_time json_time(const hive_json *v)
{
    hive_time t = {0, 0, 0, HIVE_TIME_NONE};
    size_t len;
    const char *s;

    if (hive_json_typeof(v) != HIVE_JSON_STRING)
        return t;
    s = hive_json_string(v, &len);
    if (hive_time_parse(&t, s, len) != HIVE_OK)
        t.form = HIVE_TIME_NONE;
    return t;
}

const char *hive_cred_time_field_name(hive_cred_time_field field)
{
    switch (field) {
    case HIVE_CRED_CREATED_AT: return "created_at";
    case HIVE_CRED_UPDATED_AT: return "updated_at";
    case HIVE_CRED_LAST_REFRESHED: return "last_refreshed";
    case HIVE_CRED_LAST_USED: return "last_used";
    }
    return NULL;
}

hive_time hive_cred_time(const hive_cred *cred, hive_cred_time_field field)
{
    const char *name = hive_cred_time_field_name(field);

    return json_time(name != NULL ? hive_json_get(cred->doc, name) : NULL);
}

const hive_json *hive_cred_tags(const hive_cred *cred)
{
    return hive_json_get(cred->doc, "tags");
}

const hive_json *hive_cred_json(const hive_cred *cred)
{
    return cred->doc;
}

static const hive_json *keys_obj(const hive_cred *cred)
{
    return hive_json_get(cred->doc, "keys");
}

size_t hive_cred_key_count(const hive_cred *cred)
{
    return hive_json_size(keys_obj(cred));
}

const char *hive_cred_key_name(const hive_cred *cred, size_t i)
{
    const char *name = NULL;

    hive_json_at(keys_obj(cred), i, &name);
    return name;
}

const char *hive_cred_get_key(const hive_cred *cred, const char *name, size_t *len)
{
    const hive_json *k = hive_json_get(keys_obj(cred), name);

    return k ? hive_json_string(hive_json_get(k, "value"), len) : NULL;
}

hive_time hive_cred_key_expires(const hive_cred *cred, const char *name)
{
    return json_time(hive_json_get(hive_json_get(keys_obj(cred), name), "expires_at"));
}

const hive_json *hive_cred_key_metadata(const hive_cred *cred, const char *name)
{
    return hive_json_get(hive_json_get(keys_obj(cred), name), "metadata");
}

const char *hive_cred_default_key(const hive_cred *cred)
{
    static const char *const order[] = {"value", "api_key", "access_token"};
    const hive_json *keys = keys_obj(cred);
    const char *first = NULL;

    for (size_t i = 0; i < 3; i++)
        if (hive_json_get(keys, order[i]) != NULL)
            return order[i];
    hive_json_at(keys, 0, &first);
    return first;
}

hive_time hive_cred_expires(const hive_cred *cred)
{
    hive_time best = {0, 0, 0, HIVE_TIME_NONE};

    for (size_t i = 0; i < hive_cred_key_count(cred); i++) {
        hive_time t = hive_cred_key_expires(cred, hive_cred_key_name(cred, i));
        if (hive_time_cmp(&t, &best) < 0)
            best = t;
    }
    return best;
}

/* --- setters ---------------------------------------------------------- */

static hive_rc check_text(const char *s, size_t len, const char *what)
{
    if (!hive__utf8_valid(s, len, false))
        return hive__fail(HIVE_ERR_INVALID, "%s is not valid UTF-8 text", what);
    return HIVE_OK;
}

hive_rc hive_cred_set_key(hive_cred *cred, const char *name, const char *value, size_t len,
                          const hive_time *expires_at)
{
    hive__clear_error();
    hive_json *keys = hive_json_get_mut(cred->doc, "keys");
    hive_json *k;
    hive_rc rc;
    hive_time none = {0, 0, 0, HIVE_TIME_NONE};

    if (name == NULL || *name == '\0')
        return hive__fail(HIVE_ERR_INVALID, "key name is empty");
    if ((rc = check_text(name, strlen(name), "key name")) != HIVE_OK ||
        (rc = check_text(value, len, "the value of a key")) != HIVE_OK)
        return rc;
    k = hive_json_get_mut(keys, name);
    if (k != NULL) {
        rc = hive_json_set(k, "value", hive_json_new_string(value, len));
        if (rc == HIVE_OK)
            rc = hive_json_set(k, "expires_at", time_json(expires_at ? expires_at : &none));
        return rc;
    }
    k = hive_json_new(HIVE_JSON_OBJECT);
    if (k == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive_json_set(k, "name", hive_json_new_string(name, strlen(name)));
    if (rc == HIVE_OK)
        rc = hive_json_set(k, "value", hive_json_new_string(value, len));
    if (rc == HIVE_OK)
        rc = hive_json_set(k, "expires_at", time_json(expires_at ? expires_at : &none));
    if (rc == HIVE_OK)
        rc = hive_json_set(k, "metadata", hive_json_new(HIVE_JSON_OBJECT));
    if (rc != HIVE_OK) {
        hive_json_free(&k);
        return rc;
    }
    return hive_json_set(keys, name, k);
}

hive_rc hive__cred_key_meta_set(hive_cred *cred, const char *name, const char *field, hive_json *val)
{
    hive_json *meta = hive_json_get_mut(hive_json_get_mut(hive_json_get_mut(cred->doc, "keys"), name), "metadata");

    if (meta == NULL || hive_json_typeof(meta) != HIVE_JSON_OBJECT) {
        hive_json_free(&val);
        return hive__fail(HIVE_ERR_KEY_NOT_FOUND, "Key '%.100s' not found in credential '%.200s'", name,
                          hive_cred_id(cred));
    }
    if (val == NULL) {
        hive_json_remove(meta, field);
        return HIVE_OK;
    }
    return hive_json_set(meta, field, val);
}

hive_rc hive_cred_set_key_expires(hive_cred *cred, const char *name, const hive_time *expires_at)
{
    hive__clear_error();
    hive_json *k = hive_json_get_mut(hive_json_get_mut(cred->doc, "keys"), name);
    hive_time none = {0, 0, 0, HIVE_TIME_NONE};

    if (k == NULL)
        return hive__fail(HIVE_ERR_KEY_NOT_FOUND, "Key '%.100s' not found in credential '%.200s'",
                          name, hive_cred_id(cred));
    return hive_json_set(k, "expires_at", time_json(expires_at ? expires_at : &none));
}

hive_rc hive_cred_remove_key(hive_cred *cred, const char *name)
{
    hive__clear_error();
    hive_json *keys = hive_json_get_mut(cred->doc, "keys");

    if (hive_json_get(keys, name) == NULL)
        return hive__fail(HIVE_ERR_KEY_NOT_FOUND, "Key '%.100s' not found in credential '%.200s'",
                          name, hive_cred_id(cred));
    hive_json_remove(keys, name);
    return HIVE_OK;
}

static hive_rc set_string_or_null(hive_cred *cred, const char *field, const char *text)
{
    hive_rc rc;

    if (text == NULL)
        return hive_json_set(cred->doc, field, hive_json_new(HIVE_JSON_NULL));
    if ((rc = check_text(text, strlen(text), field)) != HIVE_OK)
        return rc;
    return hive_json_set(cred->doc, field, hive_json_new_string(text, strlen(text)));
}

hive_rc hive_cred_set_description(hive_cred *cred, const char *text)
{
    hive__clear_error();
    return set_string_or_null(cred, "description", text ? text : "");
}

hive_rc hive_cred_set_provider_id(hive_cred *cred, const char *provider_id)
{
    hive__clear_error();
    return set_string_or_null(cred, "provider_id", provider_id);
}

hive_rc hive_cred_set_auto_refresh(hive_cred *cred, bool on)
{
    hive__clear_error();
    return hive_json_set(cred->doc, "auto_refresh", hive_json_new(on ? HIVE_JSON_TRUE : HIVE_JSON_FALSE));
}

hive_rc hive_cred_add_tag(hive_cred *cred, const char *tag)
{
    hive__clear_error();
    hive_json *tags = hive_json_get_mut(cred->doc, "tags");
    hive_rc rc;

    if ((rc = check_text(tag, strlen(tag), "tag")) != HIVE_OK)
        return rc;
    for (size_t i = 0; i < hive_json_size(tags); i++)
        if (strcmp(hive_json_string(hive_json_at(tags, i, NULL), NULL), tag) == 0)
            return HIVE_OK;
    return hive_json_append(tags, hive_json_new_string(tag, strlen(tag)));
}

hive_rc hive_cred_set_time(hive_cred *cred, hive_cred_time_field f, const hive_time *t)
{
    hive__clear_error();
    const char *field = hive_cred_time_field_name(f);
    bool nullable = f == HIVE_CRED_LAST_REFRESHED || f == HIVE_CRED_LAST_USED;

    if (field == NULL)
        return hive__fail(HIVE_ERR_INVALID, "%d is not a datetime field", (int)f);
    if (t == NULL || t->form == HIVE_TIME_NONE) {
        if (!nullable)
            return hive__fail(HIVE_ERR_INVALID, "'%.64s' cannot be null", field);
        return hive_json_set(cred->doc, field, hive_json_new(HIVE_JSON_NULL));
    }
    return hive_json_set(cred->doc, field, time_json(t));
}
