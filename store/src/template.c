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

/* [A-Za-z0-9_-]+ from p: its end, or p when there is none. */
static size_t part(const char *text, size_t len, size_t p)
{
    while (p < len && part_char(text[p]))
        p++;
    return p;
}

/*
 * A reference at text[i]: {{id}}, {{id.key}}, where id is Hive's
 * [A-Za-z0-9_-]+ or, for a local account Hive stores as "provider/alias",
 * two such parts around one '/'. Else false, and *why (when asked) says
 * what is wrong and *at where.
 */
static bool parse_at(const char *text, size_t len, size_t i, size_t *id_end, size_t *key_start,
                     size_t *key_end, size_t *end, const char **why, size_t *at)
{
    size_t p = i + 2;
    size_t q;
    const char *w = NULL;

    if (i + 2 > len || text[i] != '{' || text[i + 1] != '{')
        return false;
    q = part(text, len, p);
    if (q == p) {
        w = p < len && (text[p] == ' ' || text[p] == '\t') ? "a space inside '{{ }}'"
            : p < len && text[p] == '}' ? "an empty '{{}}'" : p >= len ? "'{{' at the end, with no id"
            : "an id must start here (letters, digits, '_' and '-')";
        goto bad;
    }
    p = q;
    if (p < len && text[p] == '/') {
        q = part(text, len, p + 1);
        if (q == p + 1) {
            p++;
            w = "an alias must follow '/' ({{provider/alias}})";
            goto bad;
        }
        p = q;
    }
    *id_end = p;
    *key_start = *key_end = 0;
    if (p < len && text[p] == '.') {
        q = part(text, len, p + 1);
        if (q == p + 1) {
            p++;
            w = "a key must follow '.' ({{id.key}})";
            goto bad;
        }
        *key_start = p + 1;
        *key_end = p = q;
    }
    if (p + 2 > len || text[p] != '}' || text[p + 1] != '}') {
        w = p >= len ? "no closing '}}'"
            : text[p] == ' ' || text[p] == '\t' ? "a space inside '{{ }}'"
            : text[p] == '}' ? "a single '}' closes nothing: '}}' closes a template"
            : "this character cannot be part of a template (ids and keys: letters, digits, '_' and '-')";
        goto bad;
    }
    *end = p + 2;
    return true;
bad:
    if (why != NULL) {
        *why = w;
        *at = p;
    }
    return false;
}

static bool match_at(const char *text, size_t len, size_t i, size_t *id_end, size_t *key_start,
                     size_t *key_end, size_t *end)
{
    return parse_at(text, len, i, id_end, key_start, key_end, end, NULL, NULL);
}

hive_rc hive_template_check(const char *text, size_t len, size_t *column)
{
    hive__clear_error();
    for (size_t i = 0; i + 1 < len; i++) {
        size_t id_end, ks, ke, end, at = 0, col = 1;
        const char *why = NULL;
        if (text[i] != '{' || text[i + 1] != '{')
            continue;
        if (parse_at(text, len, i, &id_end, &ks, &ke, &end, &why, &at)) {
            i = end - 1;
            continue;
        }
        if (i + 2 < len && text[i + 2] == '{')
            continue;   /* of a run of braces, the last two open the template: "{{{a}}}" */
        /* the column of the '{{', in characters (UTF-8 lead bytes) */
        for (size_t k = 0; k < i; k++)
            col += ((unsigned char)text[k] & 0xC0) != 0x80;
        if (column != NULL)
            *column = col;
        return hive__fail(HIVE_ERR_INVALID, "the '{{' at column %zu is not a template: %s", col, why);
    }
    return HIVE_OK;
}

/* The list behind the opaque handle: the caller sees it only through
 * the accessors, so it can grow. */
typedef struct {
    char *id;
    char *key;      /* NULL: the default key */
    size_t start;   /* byte offsets of "{{" and one past "}}" */
    size_t end;
} ref;

struct hive_template_refs {
    ref *items;
    size_t count;
};

void hive_template_refs_free(hive_template_refs **refs)
{
    if (refs == NULL || *refs == NULL)
        return;
    for (size_t i = 0; i < (*refs)->count; i++) {
        free((*refs)->items[i].id);
        free((*refs)->items[i].key);
    }
    free((*refs)->items);
    free(*refs);
    *refs = NULL;
}

size_t hive_template_refs_count(const hive_template_refs *refs)
{
    return refs != NULL ? refs->count : 0;
}

static const ref *ref_at(const hive_template_refs *refs, size_t i)
{
    return refs != NULL && i < refs->count ? &refs->items[i] : NULL;
}

const char *hive_template_refs_id(const hive_template_refs *refs, size_t i)
{
    const ref *r = ref_at(refs, i);

    return r != NULL ? r->id : NULL;
}

const char *hive_template_refs_key(const hive_template_refs *refs, size_t i)
{
    const ref *r = ref_at(refs, i);

    return r != NULL ? r->key : NULL;
}

void hive_template_refs_span(const hive_template_refs *refs, size_t *start, size_t *end, size_t i)
{
    const ref *r = ref_at(refs, i);

    *start = r != NULL ? r->start : 0;
    *end = r != NULL ? r->end : 0;
}

hive_rc hive_template_refs_parse(hive_template_refs **out, const char *text, size_t len)
{
    hive_template_refs *list = calloc(1, sizeof(*list));

    hive__clear_error();
    for (size_t i = 0; list != NULL && i < len;) {
        size_t id_end, ks, ke, end;
        ref *grown, *r;

        if (!match_at(text, len, i, &id_end, &ks, &ke, &end)) {
            i++;
            continue;
        }
        grown = realloc(list->items, (list->count + 1) * sizeof(*grown));
        if (grown == NULL)
            goto nomem;
        list->items = grown;
        r = &list->items[list->count++];
        r->id = hive__strndup(text + i + 2, id_end - i - 2);
        r->key = ks ? hive__strndup(text + ks, ke - ks) : NULL;
        r->start = i;
        r->end = end;
        if (r->id == NULL || (ks && r->key == NULL))
            goto nomem;
        i = end;
    }
    if (list == NULL)
        goto nomem;
    *out = list;
    return HIVE_OK;
nomem:
    hive_template_refs_free(&list);
    return hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

hive_rc hive_store_resolve(hive_store *s, hive_secret *out, const char *text, unsigned flags)
{
    hive__clear_error();
    if (out == NULL || text == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no template or no place for its text");
    return hive__store_resolve(s, &out->data, &out->len, text, flags);
}

hive_rc hive__store_resolve(hive_store *s, char **out, size_t *len, const char *text, unsigned flags)
{
    hive__clear_error();
    hive_template_refs *refs = NULL;
    size_t pos = 0;
    size_t tlen = strlen(text);
    hive_buf b = {0};
    hive_rc rc = hive_template_refs_parse(&refs, text, tlen);

    for (size_t i = 0; rc == HIVE_OK && i < refs->count; i++) {
        const ref *r = &refs->items[i];
        char *v = NULL;
        size_t vlen = 0;
        hive__buf_append(&b, text + pos, r->start - pos);
        rc = hive__store_get_key(s, &v, &vlen, r->id, r->key, flags);
        if (rc == HIVE_OK)
            hive__buf_append(&b, v, vlen);
        hive__free_secret(v, vlen + 1);
        pos = r->end;
    }
    hive_template_refs_free(&refs);
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
        rc = hive__store_resolve(s, &r, &rlen, hive_json_string(v, NULL), flags);
        if (rc == HIVE_OK)
            rc = hive_json_set(res, name, hive_json_new_string(r, rlen));
        hive__free_secret(r, rlen + 1);
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
    hive__clear_error();
    return resolve_object(s, out, headers, flags);
}

hive_rc hive_store_resolve_params(hive_store *s, hive_json **out, const hive_json *params, unsigned flags)
{
    hive__clear_error();
    return resolve_object(s, out, params, flags);
}

hive_rc hive__resolve_object(hive_store *s, hive_json **out, const hive_json *in, unsigned flags)
{
    return resolve_object(s, out, in, flags);
}

hive_rc hive_store_check_template(hive_store *s, hive_strlist *problems, const char *text)
{
    hive_template_refs *refs = NULL;
    hive_rc rc;

    hive__clear_error();
    if (hive_template_check(text, strlen(text), NULL) != HIVE_OK) {
        char *msg = hive__aprintf("Template '%.200s': %s", text, hive_last_error());
        rc = msg ? hive__strlist_add(problems, msg) : hive__fail(HIVE_ERR_NOMEM, "out of memory");
        free(msg);
        hive__clear_error();
        if (rc != HIVE_OK)
            return rc;
    }
    rc = hive_template_refs_parse(&refs, text, strlen(text));

    for (size_t i = 0; rc == HIVE_OK && i < refs->count; i++) {
        char *v = NULL;
        size_t vlen = 0;
        hive_rc r = hive__store_get_key(s, &v, &vlen, refs->items[i].id, refs->items[i].key, HIVE_GET_NO_REFRESH);
        hive__free_secret(v, vlen + 1);
        if (r == HIVE_ERR_NOMEM)
            rc = r;
        else if (r != HIVE_OK)
            rc = hive__strlist_add(problems, hive_last_error());
    }
    hive_template_refs_free(&refs);
    hive__clear_error();
    return rc;
}
