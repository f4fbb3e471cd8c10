/*
 * json.c - JSON read and written exactly as Python's json module does.
 *
 * Why not cJSON: it cannot hold a NUL inside a string, turns every number
 * into a double (Python keeps integers exact), prints numbers differently
 * from Python's repr(), escapes differently from ensure_ascii, and never
 * wipes what it frees. The credential format needs all four.
 */
#include "buf.h"
#include "utf8.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python 3.11 refuses int() of more digits than this. */
#define MAX_INT_DIGITS 4300

typedef struct member {
    char *key;          /* NULL for array items */
    size_t key_len;
    hive_json *val;
} member;

struct hive_json {
    hive_json_type type;
    char *str;          /* STRING: bytes (WTF-8); NUMBER: Python's text */
    size_t len;
    double num;
    member *m;          /* ARRAY, OBJECT */
    size_t n;
    size_t cap;
};

/* --- construction and destruction ----------------------------------- */

hive_json *hive_json_new(hive_json_type type)
{
    hive_json *v = calloc(1, sizeof(*v));

    if (v != NULL)
        v->type = type;
    return v;
}

hive_json *hive_json_new_string(const char *s, size_t len)
{
    hive_json *v = hive_json_new(HIVE_JSON_STRING);

    if (v == NULL)
        return NULL;
    v->str = hive__strndup(s ? s : "", s ? len : 0);
    if (v->str == NULL) {
        free(v);
        return NULL;
    }
    v->len = s ? len : 0;
    return v;
}

hive_json *hive_json_new_int(int64_t n)
{
    char text[24];
    hive_json *v = hive_json_new(HIVE_JSON_NUMBER);

    if (v == NULL)
        return NULL;
    snprintf(text, sizeof(text), "%lld", (long long)n);
    v->str = hive__strdup(text);
    if (v->str == NULL) {
        free(v);
        return NULL;
    }
    v->len = strlen(text);
    v->num = (double)n;
    return v;
}

void hive_json_free(hive_json **json)
{
    hive_json *v;

    if (json == NULL || *json == NULL)
        return;
    v = *json;
    for (size_t i = 0; i < v->n; i++) {
        hive__free_secret(v->m[i].key, v->m[i].key_len);
        hive_json_free(&v->m[i].val);
    }
    free(v->m);
    hive__free_secret(v->str, v->len);
    free(v);
    *json = NULL;
}

hive_json *hive_json_clone(const hive_json *v)
{
    hive_json *c;

    if (v == NULL)
        return NULL;
    c = hive_json_new(v->type);
    if (c == NULL)
        return NULL;
    c->num = v->num;
    if (v->str != NULL) {
        c->str = hive__strndup(v->str, v->len);
        if (c->str == NULL)
            goto fail;
        c->len = v->len;
    }
    if (v->n > 0) {
        c->m = calloc(v->n, sizeof(member));
        if (c->m == NULL)
            goto fail;
        c->cap = v->n;
        for (size_t i = 0; i < v->n; i++) {
            if (v->m[i].key != NULL) {
                c->m[i].key = hive__strndup(v->m[i].key, v->m[i].key_len);
                if (c->m[i].key == NULL)
                    goto fail;
                c->m[i].key_len = v->m[i].key_len;
            }
            c->n = i + 1;
            c->m[i].val = hive_json_clone(v->m[i].val);
            if (c->m[i].val == NULL)
                goto fail;
        }
    }
    return c;
fail:
    hive_json_free(&c);
    return NULL;
}

/* --- access ----------------------------------------------------------- */

hive_json_type hive_json_typeof(const hive_json *v)
{
    return v ? v->type : HIVE_JSON_NULL;
}

const char *hive_json_string(const hive_json *v, size_t *len)
{
    if (v == NULL || (v->type != HIVE_JSON_STRING && v->type != HIVE_JSON_NUMBER))
        return NULL;
    if (len != NULL)
        *len = v->len;
    return v->str;
}

double hive_json_number(const hive_json *v)
{
    return (v && v->type == HIVE_JSON_NUMBER) ? v->num : 0.0;
}

size_t hive_json_size(const hive_json *v)
{
    return (v && (v->type == HIVE_JSON_ARRAY || v->type == HIVE_JSON_OBJECT)) ? v->n : 0;
}

const hive_json *hive_json_at(const hive_json *v, size_t i, const char **key)
{
    return hive_json_member(v, i, key, NULL);
}

hive_json *hive_json_at_mut(hive_json *v, size_t i, const char **key)
{
    if (i >= hive_json_size(v))
        return NULL;
    if (key != NULL)
        *key = v->m[i].key;
    return v->m[i].val;
}

const hive_json *hive_json_member(const hive_json *v, size_t i, const char **key, size_t *key_len)
{
    if (i >= hive_json_size(v))
        return NULL;
    if (key != NULL)
        *key = v->m[i].key;
    if (key_len != NULL)
        *key_len = v->m[i].key_len;
    return v->m[i].val;
}

static member *find(const hive_json *obj, const char *key, size_t key_len)
{
    if (obj == NULL || obj->type != HIVE_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->m[i].key_len == key_len && memcmp(obj->m[i].key, key, key_len) == 0)
            return &obj->m[i];
    return NULL;
}

const hive_json *hive_json_get(const hive_json *obj, const char *key)
{
    return key != NULL ? hive_json_get_member(obj, key, strlen(key)) : NULL;
}

const hive_json *hive_json_get_member(const hive_json *obj, const char *key, size_t key_len)
{
    member *m = find(obj, key, key_len);

    return m ? m->val : NULL;
}

hive_json *hive_json_get_mut(hive_json *obj, const char *key)
{
    member *m = key != NULL ? find(obj, key, strlen(key)) : NULL;

    return m ? m->val : NULL;
}

static bool reserve(hive_json *v, size_t n)
{
    member *m;
    size_t cap;

    if (n <= v->cap)
        return true;
    cap = v->cap ? v->cap * 2 : 4;
    while (cap < n)
        cap *= 2;
    m = realloc(v->m, cap * sizeof(member));
    if (m == NULL)
        return false;
    v->m = m;
    v->cap = cap;
    return true;
}

/* Append a member the caller knows is new (no search): O(1). */
hive_rc hive__json_add_member(hive_json *obj, const char *key, size_t key_len, hive_json *val)
{
    char *k;

    if (val == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    k = hive__strndup(key, key_len);
    if (k == NULL || !reserve(obj, obj->n + 1)) {
        free(k);
        hive_json_free(&val);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    obj->m[obj->n].key = k;
    obj->m[obj->n].key_len = key_len;
    obj->m[obj->n].val = val;
    obj->n++;
    return HIVE_OK;
}

hive_rc hive_json_set(hive_json *obj, const char *key, hive_json *val)
{
    hive__clear_error();
    return hive_json_set_member(obj, key, key != NULL ? strlen(key) : 0, val);
}

hive_rc hive_json_set_member(hive_json *obj, const char *key, size_t key_len, hive_json *val)
{
    member *m;

    hive__clear_error();
    if (val == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (obj == NULL || obj->type != HIVE_JSON_OBJECT || key == NULL) {
        hive_json_free(&val);
        return hive__fail(HIVE_ERR_INVALID, "cannot set a member of a non-object");
    }
    m = find(obj, key, key_len);
    if (m != NULL) {
        hive_json_free(&m->val);
        m->val = val;
        return HIVE_OK;
    }
    return hive__json_add_member(obj, key, key_len, val);
}

void hive_json_remove(hive_json *obj, const char *key)
{
    member *m = find(obj, key, strlen(key));
    size_t i;

    if (m == NULL)
        return;
    i = (size_t)(m - obj->m);
    hive__free_secret(m->key, m->key_len);
    hive_json_free(&m->val);
    memmove(&obj->m[i], &obj->m[i + 1], (obj->n - i - 1) * sizeof(member));
    obj->n--;
}

hive_json *hive__json_detach(hive_json *obj, const char *key)
{
    member *m = find(obj, key, strlen(key));
    hive_json *val;
    size_t i;

    if (m == NULL)
        return NULL;
    i = (size_t)(m - obj->m);
    val = m->val;
    hive__free_secret(m->key, m->key_len);
    memmove(&obj->m[i], &obj->m[i + 1], (obj->n - i - 1) * sizeof(member));
    obj->n--;
    return val;
}

hive_rc hive_json_append(hive_json *arr, hive_json *val)
{
    hive__clear_error();
    if (val == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (arr == NULL || arr->type != HIVE_JSON_ARRAY) {
        hive_json_free(&val);
        return hive__fail(HIVE_ERR_INVALID, "cannot append to JSON array");
    }
    if (!reserve(arr, arr->n + 1)) {
        hive_json_free(&val);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    arr->m[arr->n].key = NULL;
    arr->m[arr->n].key_len = 0;
    arr->m[arr->n].val = val;
    arr->n++;
    return HIVE_OK;
}

void hive_json_put(hive_json **obj, const char *key, hive_json *val)
{
    if (*obj == NULL)
        hive_json_free(&val);
    else if (hive_json_set(*obj, key, val) != HIVE_OK)
        hive_json_free(obj);
}

void hive_json_push(hive_json **arr, hive_json *val)
{
    if (*arr == NULL)
        hive_json_free(&val);
    else if (hive_json_append(*arr, val) != HIVE_OK)
        hive_json_free(arr);
}

/* --- numbers in the C locale ------------------------------------------ */

/*
 * JSON, Python's repr() and every number in a URL or a setting use '.' as
 * the decimal point, whatever locale the program linking libhive chose
 * (setlocale(LC_ALL, "de_DE.UTF-8") makes strtod stop at the '.' of "1.5").
 * A "C" locale object read per call, never the global locale: thread-safe,
 * and the caller's locale is left alone.
 */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    /* glibc and musl hand out a static object for "C": this cannot fail */
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t numeric_locale(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale;
}

double hive__strtod(const char *s, char **end)
{
    locale_t c = numeric_locale();

    return c != (locale_t)0 ? strtod_l(s, end, c) : strtod(s, end);
}

/* snprintf with '.' as the decimal point. */
HIVE_PRINTF(3, 4) static int snprintf_c(char *buf, size_t size, const char *fmt, ...)
{
    locale_t c = numeric_locale();
    locale_t old = c != (locale_t)0 ? uselocale(c) : (locale_t)0;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (old != (locale_t)0)
        uselocale(old);
    return n;
}

/* --- numbers as Python prints them ------------------------------------ */

/*
 * repr(float): the shortest digits that read back as d, fixed notation
 * when the decimal point falls between -4 and 16 digits, else d.ddde+XX.
 */
static void float_repr(char out[40], double d)
{
    char tmp[40];
    char digits[20];
    size_t nd = 0;
    int exp10 = 0;
    int decpt;
    size_t o = 0;

    if (isnan(d)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(d)) {
        strcpy(out, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (d == 0.0) {
        strcpy(out, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf_c(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (hive__strtod(tmp, NULL) == d)
            break;
    }
    /* tmp is [-]d[.ddd]e[+-]XX */
    {
        const char *s = tmp;
        if (*s == '-') {
            out[o++] = '-';
            s++;
        }
        for (; *s && *s != 'e'; s++)
            if (*s != '.')
                digits[nd++] = *s;
        exp10 = atoi(s + 1);
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    decpt = exp10 + 1;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -decpt; i++)
                out[o++] = '0';
            memcpy(out + o, digits, nd);
            o += nd;
        } else if ((size_t)decpt >= nd) {
            memcpy(out + o, digits, nd);
            o += nd;
            for (size_t i = nd; i < (size_t)decpt; i++)
                out[o++] = '0';
            out[o++] = '.';
            out[o++] = '0';
        } else {
            memcpy(out + o, digits, (size_t)decpt);
            o += (size_t)decpt;
            out[o++] = '.';
            memcpy(out + o, digits + decpt, nd - (size_t)decpt);
            o += nd - (size_t)decpt;
        }
        out[o] = '\0';
        return;
    }
    out[o++] = digits[0];
    if (nd > 1) {
        out[o++] = '.';
        memcpy(out + o, digits + 1, nd - 1);
        o += nd - 1;
    }
    snprintf(out + o, 40 - o, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
}

/* --- parser ----------------------------------------------------------- */

typedef struct parser {
    const char *p;
    const char *start;
    const char *end;
    int depth;
} parser;

static hive_rc perr(const parser *ps, const char *what)
{
    size_t line = 1;
    size_t col = 1;

    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return hive__fail(HIVE_ERR_INVALID, "invalid JSON: %s at line %zu column %zu", what, line, col);
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static hive_rc parse_value(parser *ps, hive_json **out);

int hive__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(parser *ps, const char *at, unsigned *cp)
{
    unsigned v = 0;

    if (ps->end - at < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        int h = hive__hexval(at[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    *cp = v;
    return true;
}

/* Parse a string at ps->p (on the opening quote) into b. */
static hive_rc parse_string_into(parser *ps, hive_buf *b)
{
    ps->p++;
    for (;;) {
        const char *run = ps->p;
        unsigned char c;

        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' &&
               (unsigned char)*ps->p >= 0x20)
            ps->p++;
        if (ps->p > run) {
            size_t n = (size_t)(ps->p - run);
            if (!hive__utf8_valid(run, n, false)) {
                ps->p = run;
                return perr(ps, "invalid UTF-8 in string");
            }
            hive__buf_append(b, run, n);
        }
        if (ps->p >= ps->end)
            return perr(ps, "unterminated string");
        c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            return b->failed ? hive__fail(HIVE_ERR_NOMEM, "out of memory") : HIVE_OK;
        }
        if (c < 0x20)
            return perr(ps, "control character in string");
        /* backslash */
        if (ps->end - ps->p < 2)
            return perr(ps, "unterminated string");
        ps->p++;
        c = (unsigned char)*ps->p++;
        switch (c) {
        case '"': hive__buf_putc(b, '"'); break;
        case '\\': hive__buf_putc(b, '\\'); break;
        case '/': hive__buf_putc(b, '/'); break;
        case 'b': hive__buf_putc(b, '\b'); break;
        case 'f': hive__buf_putc(b, '\f'); break;
        case 'n': hive__buf_putc(b, '\n'); break;
        case 'r': hive__buf_putc(b, '\r'); break;
        case 't': hive__buf_putc(b, '\t'); break;
        case 'u': {
            unsigned cp;
            char enc[4];
            if (!read_hex4(ps, ps->p, &cp))
                return perr(ps, "invalid \\u escape");
            ps->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && ps->end - ps->p >= 6 &&
                ps->p[0] == '\\' && ps->p[1] == 'u') {
                unsigned lo;
                if (read_hex4(ps, ps->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    ps->p += 6;
                }
            }
            hive__buf_append(b, enc, hive__utf8_encode(enc, cp));
            break;
        }
        default:
            ps->p--;
            return perr(ps, "invalid escape");
        }
    }
}

static hive_rc parse_string(parser *ps, char **s, size_t *len)
{
    hive_buf b = {0};
    hive_rc rc = parse_string_into(ps, &b);

    if (rc != HIVE_OK) {
        hive__buf_free(&b);
        return rc;
    }
    return hive__buf_finish(&b, s, len);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static hive_rc parse_number(parser *ps, hive_json **out)
{
    const char *s = ps->p;
    bool is_float = false;
    char text[40];
    char *lex;
    hive_json *v;
    size_t n;

    if (ps->p < ps->end && *ps->p == '-')
        ps->p++;
    if (ps->end - ps->p >= 8 && memcmp(ps->p, "Infinity", 8) == 0) {
        ps->p += 8;
        v = hive_json_new(HIVE_JSON_NUMBER);
        if (v == NULL || (v->str = hive__strdup(*s == '-' ? "-Infinity" : "Infinity")) == NULL) {
            free(v);
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        v->len = strlen(v->str);
        v->num = *s == '-' ? -INFINITY : INFINITY;
        *out = v;
        return HIVE_OK;
    }
    if (ps->p >= ps->end || !is_digit(*ps->p))
        return perr(ps, "expected a value");
    if (*ps->p == '0')
        ps->p++;
    else
        while (ps->p < ps->end && is_digit(*ps->p))
            ps->p++;
    /* Python: a fraction or exponent only counts when digits follow. */
    if (ps->end - ps->p >= 2 && ps->p[0] == '.' && is_digit(ps->p[1])) {
        is_float = true;
        ps->p++;
        while (ps->p < ps->end && is_digit(*ps->p))
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        const char *q = ps->p + 1;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q < ps->end && is_digit(*q)) {
            is_float = true;
            while (q < ps->end && is_digit(*q))
                q++;
            ps->p = q;
        }
    }
    n = (size_t)(ps->p - s);
    lex = hive__strndup(s, n);
    if (lex == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    v = hive_json_new(HIVE_JSON_NUMBER);
    if (v == NULL) {
        free(lex);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    v->num = hive__strtod(lex, NULL);
    if (is_float) {
        float_repr(text, v->num);
        free(lex);
        lex = hive__strdup(text);
    } else {
        size_t digits = n - (*s == '-');
        if (digits > MAX_INT_DIGITS) {
            free(lex);
            free(v);
            ps->p = s;
            return perr(ps, "integer too long");
        }
        if (strcmp(lex, "-0") == 0) {
            lex[0] = '0';
            lex[1] = '\0';
        }
    }
    if (lex == NULL) {
        free(v);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    v->str = lex;
    v->len = strlen(lex);
    *out = v;
    return HIVE_OK;
}

typedef struct key_ref {
    size_t idx;
    const member *m;
} key_ref;

static int cmp_key_ref(const void *a, const void *b)
{
    const key_ref *x = a;
    const key_ref *y = b;
    size_t n = x->m->key_len < y->m->key_len ? x->m->key_len : y->m->key_len;
    int c = memcmp(x->m->key, y->m->key, n);

    if (c != 0)
        return c;
    if (x->m->key_len != y->m->key_len)
        return x->m->key_len < y->m->key_len ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Python's dict(pairs): a repeated key keeps its first position and takes
 * its last value. Sorting keeps this O(n log n) on hostile input. */
static hive_rc merge_duplicates(hive_json *obj)
{
    key_ref *refs;
    bool any = false;
    size_t w = 0;

    if (obj->n < 2)
        return HIVE_OK;
    refs = malloc(obj->n * sizeof(*refs));
    if (refs == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < obj->n; i++) {
        refs[i].idx = i;
        refs[i].m = &obj->m[i];
    }
    qsort(refs, obj->n, sizeof(*refs), cmp_key_ref);
    for (size_t i = 0; i < obj->n;) {
        size_t j = i + 1;
        while (j < obj->n && cmp_key_ref(&(key_ref){0, refs[i].m}, &(key_ref){0, refs[j].m}) == 0)
            j++;
        if (j - i > 1) {
            member *first = &obj->m[refs[i].idx];
            member *last = &obj->m[refs[j - 1].idx];
            hive_json *tmp = first->val;
            any = true;
            first->val = last->val;
            last->val = tmp;
            for (size_t k = i + 1; k < j; k++) {
                member *dup = &obj->m[refs[k].idx];
                hive__free_secret(dup->key, dup->key_len);
                dup->key = NULL;
                hive_json_free(&dup->val);
            }
        }
        i = j;
    }
    free(refs);
    if (!any)
        return HIVE_OK;
    for (size_t r = 0; r < obj->n; r++)
        if (obj->m[r].val != NULL)
            obj->m[w++] = obj->m[r];
    obj->n = w;
    return HIVE_OK;
}

static hive_rc parse_container(parser *ps, hive_json **out, bool is_obj)
{
    hive_json *v = hive_json_new(is_obj ? HIVE_JSON_OBJECT : HIVE_JSON_ARRAY);
    char close = is_obj ? '}' : ']';
    hive_rc rc = HIVE_OK;

    if (v == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (++ps->depth > HIVE_JSON_MAX_DEPTH) {
        rc = perr(ps, "nested too deeply");
        goto fail;
    }
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        goto done;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        hive_json *item = NULL;

        skip_ws(ps);
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"') {
                rc = perr(ps, "expected a property name in double quotes");
                goto fail;
            }
            rc = parse_string(ps, &key, &key_len);
            if (rc != HIVE_OK)
                goto fail;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                hive__free_secret(key, key_len);
                rc = perr(ps, "expected ':'");
                goto fail;
            }
            ps->p++;
            skip_ws(ps);
        }
        rc = parse_value(ps, &item);
        if (rc == HIVE_OK && !reserve(v, v->n + 1)) {
            hive_json_free(&item);
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        if (rc != HIVE_OK) {
            hive__free_secret(key, key_len);
            goto fail;
        }
        v->m[v->n].key = key;
        v->m[v->n].key_len = key_len;
        v->m[v->n].val = item;
        v->n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        rc = perr(ps, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        goto fail;
    }
done:
    if (is_obj && (rc = merge_duplicates(v)) != HIVE_OK)
        goto fail;
    ps->depth--;
    *out = v;
    return HIVE_OK;
fail:
    hive_json_free(&v);
    return rc;
}

static hive_rc literal(parser *ps, hive_json **out, const char *word, hive_json_type type)
{
    size_t n = strlen(word);
    hive_json *v;

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return perr(ps, "expected a value");
    ps->p += n;
    if (type == HIVE_JSON_NUMBER) {
        v = hive_json_new(HIVE_JSON_NUMBER);
        if (v != NULL && (v->str = hive__strdup("NaN")) == NULL) {
            free(v);
            v = NULL;
        }
        if (v != NULL) {
            v->len = 3;
            v->num = NAN;
        }
    } else {
        v = hive_json_new(type);
    }
    if (v == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    *out = v;
    return HIVE_OK;
}

static hive_rc parse_value(parser *ps, hive_json **out)
{
    if (ps->p >= ps->end)
        return perr(ps, "expected a value");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, out, true);
    case '[':
        return parse_container(ps, out, false);
    case '"': {
        char *s;
        size_t len;
        hive_rc rc = parse_string(ps, &s, &len);
        hive_json *v;
        if (rc != HIVE_OK)
            return rc;
        v = hive_json_new(HIVE_JSON_STRING);
        if (v == NULL) {
            hive__free_secret(s, len);
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        v->str = s;
        v->len = len;
        *out = v;
        return HIVE_OK;
    }
    case 'n':
        return literal(ps, out, "null", HIVE_JSON_NULL);
    case 't':
        return literal(ps, out, "true", HIVE_JSON_TRUE);
    case 'f':
        return literal(ps, out, "false", HIVE_JSON_FALSE);
    case 'N':
        return literal(ps, out, "NaN", HIVE_JSON_NUMBER);
    default:
        return parse_number(ps, out);
    }
}

hive_rc hive_json_parse(hive_json **out, const char *text, size_t len)
{
    parser ps;
    hive_json *v = NULL;
    hive_rc rc;

    hive__clear_error();
    if (text == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid JSON: no input");
    if (len > HIVE_JSON_MAX_INPUT)
        return hive__fail(HIVE_ERR_TOO_LARGE, "invalid JSON: input larger than %u bytes",
                          HIVE_JSON_MAX_INPUT);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    ps.start = ps.p = text;
    ps.end = text + len;
    ps.depth = 0;
    skip_ws(&ps);
    rc = parse_value(&ps, &v);
    if (rc != HIVE_OK)
        return rc;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        hive_json_free(&v);
        return perr(&ps, "extra data after the value");
    }
    *out = v;
    return HIVE_OK;
}

/* --- emitter ---------------------------------------------------------- */

/* Write s as a JSON string with ensure_ascii: printable ASCII as is,
 * \" \\ \n \r \t \b \f, everything else as lowercase \uXXXX (surrogate
 * pairs above U+FFFF). */
static hive_rc emit_string(hive_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;

    hive__buf_putc(b, '"');
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t run = i;

        while (run < len && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x7f &&
               s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            hive__buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            hive__buf_append(b, e, 2);
            i++;
            continue;
        }
        {
            const char *shortesc = NULL;
            switch (c) {
            case '\n': shortesc = "\\n"; break;
            case '\r': shortesc = "\\r"; break;
            case '\t': shortesc = "\\t"; break;
            case '\b': shortesc = "\\b"; break;
            case '\f': shortesc = "\\f"; break;
            default: break;
            }
            if (shortesc != NULL) {
                hive__buf_append(b, shortesc, 2);
                i++;
                continue;
            }
        }
        {
            uint32_t cp;
            size_t n = hive__utf8_decode(s + i, len - i, true, &cp);
            uint32_t units[2];
            int nu = 0;
            if (n == 0)
                return hive__fail(HIVE_ERR_INVALID, "string is not valid UTF-8");
            i += n;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                units[nu++] = 0xD800 + (cp >> 10);
                units[nu++] = 0xDC00 + (cp & 0x3FF);
            } else {
                units[nu++] = cp;
            }
            for (int k = 0; k < nu; k++) {
                char e[6] = {'\\', 'u', hex[units[k] >> 12 & 15], hex[units[k] >> 8 & 15],
                             hex[units[k] >> 4 & 15], hex[units[k] & 15]};
                hive__buf_append(b, e, 6);
            }
        }
    }
    hive__buf_putc(b, '"');
    return HIVE_OK;
}

static void newline_indent(hive_buf *b, int indent, int level)
{
    hive__buf_putc(b, '\n');
    for (int i = 0; i < indent * level; i++)
        hive__buf_putc(b, ' ');
}

static hive_rc emit_value(hive_buf *b, const hive_json *v, int indent, int level)
{
    hive_rc rc = HIVE_OK;

    switch (v->type) {
    case HIVE_JSON_NULL: hive__buf_puts(b, "null"); break;
    case HIVE_JSON_TRUE: hive__buf_puts(b, "true"); break;
    case HIVE_JSON_FALSE: hive__buf_puts(b, "false"); break;
    case HIVE_JSON_NUMBER: hive__buf_append(b, v->str, v->len); break;
    case HIVE_JSON_STRING: rc = emit_string(b, v->str, v->len); break;
    case HIVE_JSON_ARRAY:
    case HIVE_JSON_OBJECT: {
        bool obj = v->type == HIVE_JSON_OBJECT;
        if (v->n == 0) {
            hive__buf_puts(b, obj ? "{}" : "[]");
            break;
        }
        hive__buf_putc(b, obj ? '{' : '[');
        for (size_t i = 0; i < v->n && rc == HIVE_OK; i++) {
            if (i > 0)
                hive__buf_puts(b, indent >= 0 ? "," : ", ");
            if (indent >= 0)
                newline_indent(b, indent, level + 1);
            if (obj) {
                rc = emit_string(b, v->m[i].key, v->m[i].key_len);
                hive__buf_puts(b, ": ");
            }
            if (rc == HIVE_OK)
                rc = emit_value(b, v->m[i].val, indent, level + 1);
        }
        if (indent >= 0)
            newline_indent(b, indent, level);
        hive__buf_putc(b, obj ? '}' : ']');
        break;
    }
    }
    return rc;
}

hive_rc hive__json_emit(char **out, size_t *len, const hive_json *v, int indent)
{
    hive_buf b = {0};
    hive_rc rc;

    hive__clear_error();
    if (v == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no JSON value");
    rc = emit_value(&b, v, indent, 0);
    if (rc != HIVE_OK) {
        hive__buf_free(&b);
        return rc;
    }
    return hive__buf_finish(&b, out, len);
}

hive_rc hive_json_emit(const hive_json *v, hive_secret *out, int indent)
{
    hive__clear_error();
    if (out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no place for the JSON text");
    return hive__json_emit(&out->data, &out->len, v, indent);
}
