/*
 * template.c - {{id}} and {{id.key}}.
 */
#include "buf.h"
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static bool part_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* A reference at text[i], or false. */
static bool match_at(const char *text, size_t len, size_t i, size_t *id_end, size_t *key_start,
                     size_t *key_end, size_t *end)
{
    size_t p = i + 2;

    if (i + 2 > len || text[i] != '{' || text[i + 1] != '{')
        return false;
    while (p < len && part_char(text[p]))
        p++;
    if (p == i + 2)
        return false;
    *id_end = p;
    *key_start = *key_end = 0;
    if (p < len && text[p] == '.') {
        size_t k = ++p;
        while (p < len && part_char(text[p]))
            p++;
        if (p == k)
            return false;
        *key_start = k;
        *key_end = p;
    }
    if (p + 2 > len || text[p] != '}' || text[p + 1] != '}')
        return false;
    *end = p + 2;
    return true;
}

void hive_template_refs_free(hive_template_ref *refs, size_t n)
{
    for (size_t i = 0; refs != NULL && i < n; i++) {
        free(refs[i].id);
        free(refs[i].key);
    }
    free(refs);
}

hive_rc hive_template_refs(hive_template_ref **refs, size_t *n, const char *text, size_t len)
{
    hive_template_ref *out = NULL;
    size_t count = 0;

    for (size_t i = 0; i < len;) {
        size_t id_end, ks, ke, end;
        hive_template_ref *grown;

        if (!match_at(text, len, i, &id_end, &ks, &ke, &end)) {
            i++;
            continue;
        }
        grown = realloc(out, (count + 1) * sizeof(*grown));
        if (grown == NULL)
            goto nomem;
        out = grown;
        out[count].id = hive__strndup(text + i + 2, id_end - i - 2);
        out[count].key = ks ? hive__strndup(text + ks, ke - ks) : NULL;
        out[count].start = i;
        out[count].end = end;
        count++;
        if (out[count - 1].id == NULL || (ks && out[count - 1].key == NULL))
            goto nomem;
        i = end;
    }
    *refs = out;
    *n = count;
    return HIVE_OK;
nomem:
    hive_template_refs_free(out, count);
    return hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

hive_rc hive_store_resolve(hive_store *s, char **out, size_t *len, const char *text, unsigned flags)
{
    hive_template_ref *refs = NULL;
    size_t n = 0;
    size_t pos = 0;
    size_t tlen = strlen(text);
    hive_buf b = {0};
    hive_rc rc = hive_template_refs(&refs, &n, text, tlen);

    for (size_t i = 0; rc == HIVE_OK && i < n; i++) {
        char *v = NULL;
        size_t vlen = 0;
        hive__buf_append(&b, text + pos, refs[i].start - pos);
        rc = hive_store_get_key(s, &v, &vlen, refs[i].id, refs[i].key, flags);
        if (rc == HIVE_OK)
            hive__buf_append(&b, v, vlen);
        hive_free_secret(v, vlen + 1);
        pos = refs[i].end;
    }
    hive_template_refs_free(refs, n);
    if (rc != HIVE_OK) {
        hive__buf_free(&b);
        return rc;
    }
    hive__buf_append(&b, text + pos, tlen - pos);
    return hive__buf_finish(&b, out, len);
}

static hive_rc resolve_object(hive_store *s, hive_json **out, const hive_json *in, unsigned flags)
{
    hive_json *res = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc = res ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");

    if (rc == HIVE_OK && in != NULL && hive_json_typeof(in) != HIVE_JSON_OBJECT)
        rc = hive__fail(HIVE_ERR_INVALID, "expected an object of templates");
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(in); i++) {
        const char *name;
        const hive_json *v = hive_json_at(in, i, &name);
        char *r = NULL;
        size_t rlen = 0;
        if (hive_json_typeof(v) != HIVE_JSON_STRING) {
            rc = hive__fail(HIVE_ERR_INVALID, "'%s' is not a string template", name);
            break;
        }
        rc = hive_store_resolve(s, &r, &rlen, hive_json_string(v, NULL), flags);
        if (rc == HIVE_OK)
            rc = hive_json_set(res, name, hive_json_new_string(r, rlen));
        hive_free_secret(r, rlen + 1);
    }
    if (rc != HIVE_OK) {
        hive_json_free(&res);
        return rc;
    }
    *out = res;
    return HIVE_OK;
}

hive_rc hive_store_resolve_headers(hive_store *s, hive_json **out, const hive_json *headers, unsigned flags)
{
    return resolve_object(s, out, headers, flags);
}

hive_rc hive_store_resolve_params(hive_store *s, hive_json **out, const hive_json *params, unsigned flags)
{
    return resolve_object(s, out, params, flags);
}

hive_rc hive__resolve_object(hive_store *s, hive_json **out, const hive_json *in, unsigned flags)
{
    return resolve_object(s, out, in, flags);
}

hive_rc hive_store_check_template(hive_store *s, hive_strlist *problems, const char *text)
{
    hive_template_ref *refs = NULL;
    size_t n = 0;
    hive_rc rc = hive_template_refs(&refs, &n, text, strlen(text));

    for (size_t i = 0; rc == HIVE_OK && i < n; i++) {
        char *v = NULL;
        size_t vlen = 0;
        hive_rc r = hive_store_get_key(s, &v, &vlen, refs[i].id, refs[i].key, 0);
        hive_free_secret(v, vlen + 1);
        if (r == HIVE_ERR_NOMEM)
            rc = r;
        else if (r != HIVE_OK)
            rc = hive__strlist_add(problems, hive_last_error());
    }
    hive_template_refs_free(refs, n);
    hive__clear_error();
    return rc;
}
