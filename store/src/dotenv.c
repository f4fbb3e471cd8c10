/*
 * dotenv.c - .env files, read exactly as python-dotenv reads them (the
 * library the Python Hive's environment storage calls: dotenv_values).
 *
 * python-dotenv is a set of regular expressions applied in turn at a
 * reading position (its parser.py); each function here says which one it
 * stands for. The text is first decoded as strict UTF-8 and its line ends
 * translated as Python's text files do (\r\n and \r become \n), so only \n
 * ends a line below. "Whitespace" is Python's \s: the 29 code points for
 * which str.isspace() is true, some of them multi-byte.
 */
#include "buf.h"
#include "fileio.h"
#include "utf8.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DOTENV (4u * 1024 * 1024)
/* Interpolation can double a value per line; what it may make in all. */
#define MAX_EXPANDED (16u * 1024 * 1024)

/* --- the reader ----------------------------------------------------------- */

typedef struct reader {
    const char *s;
    size_t n;
    size_t pos;
    size_t line;
} reader;

/* The length of the Python whitespace character at i, or 0. */
static size_t ws_len(const char *s, size_t n, size_t i)
{
    return i < n ? hive__utf8_space(s + i, n - i) : 0;
}

/* Whitespace other than a line end: [^\S\r\n]. */
static size_t hws_len(const reader *r, size_t i)
{
    return i < r->n && r->s[i] == '\n' ? 0 : ws_len(r->s, r->n, i);
}

static void advance_to(reader *r, size_t to)
{
    for (size_t i = r->pos; i < to; i++)
        if (r->s[i] == '\n')
            r->line++;
    r->pos = to;
}

static size_t skip_hws(const reader *r, size_t i)
{
    size_t l;

    while ((l = hws_len(r, i)) > 0)
        i += l;
    return i;
}

static char peek(const reader *r)
{
    return r->pos < r->n ? r->s[r->pos] : '\0';
}

/* --- one statement (parse_binding) ----------------------------------------- */

typedef struct binding {
    const char *key;       /* NULL: no key (a comment or blank) */
    size_t key_len;
    bool has_value;        /* false: "KEY" alone, which python-dotenv maps to None */
    hive_buf value;
} binding;

/*
 * '((?:\\'|[^'])*)' and its double-quoted twin. A quote right after a
 * backslash is taken as escaped first; when no unescaped quote follows,
 * the regex backtracks and the last escaped one closes the value instead.
 * Returns false (position unchanged) when neither exists.
 */
static bool quoted(reader *r, char q, size_t *content, size_t *content_len)
{
    size_t start = r->pos + 1;
    size_t last_escaped = 0;
    size_t close = 0;

    for (size_t i = start; i < r->n; i++) {
        if (r->s[i] != q)
            continue;
        if (i > start && r->s[i - 1] == '\\') {
            last_escaped = i;
            continue;
        }
        close = i;
        break;
    }
    if (close == 0)
        close = last_escaped;
    if (close == 0)
        return false;
    *content = start;
    *content_len = close - start;
    advance_to(r, close + 1);
    return true;
}

/* decode_escapes: \\[\\'] in single quotes, \\[\\'"abfnrtv] in double. */
static void unescape(hive_buf *out, const char *s, size_t n, char q)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            const char *from = q == '\'' ? "\\'" : "\\'\"abfnrtv";
            const char *to = q == '\'' ? "\\'" : "\\'\"\a\b\f\n\r\t\v";
            const char *hit = strchr(from, e);
            if (e != '\0' && hit != NULL) {
                c = to[hit - from];
                i++;
            }
        }
        hive__buf_putc(out, c);
    }
}

/* ([^\r\n]*), then re.sub(r"\s+#.*", "", part).rstrip(). */
static void unquoted(reader *r, hive_buf *out)
{
    size_t start = r->pos;
    size_t end = start;
    size_t cut;

    while (end < r->n && r->s[end] != '\n')
        end++;
    cut = end;
    for (size_t i = start; i < end;) {
        size_t l = ws_len(r->s, end, i);
        size_t j;
        if (l == 0) {
            i++;
            continue;
        }
        for (j = i; (l = ws_len(r->s, end, j)) > 0; j += l)
            ;
        if (j < end && r->s[j] == '#') {
            cut = i;
            break;
        }
        i = j;
    }
    /* rstrip(): whitespace at the end, multi-byte ones too */
    for (;;) {
        size_t back = 0;
        for (size_t k = 1; k <= 3 && k <= cut - start; k++)
            if (ws_len(r->s, cut, cut - k) == k) {
                back = k;
                break;
            }
        if (back == 0)
            break;
        cut -= back;
    }
    hive__buf_append(out, r->s + start, cut - start);
    advance_to(r, end);
}

/* parse_value; false on a quote that never closes. */
static bool value(reader *r, hive_buf *out)
{
    char c = peek(r);
    size_t content, len;

    if (c == '\'' || c == '"') {
        if (!quoted(r, c, &content, &len))
            return false;
        unescape(out, r->s + content, len, c);
        return true;
    }
    if (r->pos >= r->n || c == '\n')
        return true;
    unquoted(r, out);
    return true;
}

/* parse_binding: true with b->key NULL and at end of text when done. */
static bool statement(reader *r, binding *b)
{
    size_t i, l;

    b->key = NULL;
    b->has_value = false;
    /* \s* over line ends */
    for (i = r->pos; (l = ws_len(r->s, r->n, i)) > 0; i += l)
        ;
    advance_to(r, i);
    if (r->pos >= r->n)
        return true;
    /* (?:export[^\S\r\n]+)? */
    if (r->n - r->pos > 6 && memcmp(r->s + r->pos, "export", 6) == 0 && hws_len(r, r->pos + 6) > 0)
        advance_to(r, skip_hws(r, r->pos + 6));
    /* the key: '#' (none), '([^']+)' or ([^=\#\s]+) */
    if (peek(r) == '\'') {
        size_t close = r->pos + 1;
        while (close < r->n && r->s[close] != '\'')
            close++;
        if (close >= r->n || close == r->pos + 1)
            return false;
        b->key = r->s + r->pos + 1;
        b->key_len = close - r->pos - 1;
        advance_to(r, close + 1);
    } else if (peek(r) != '#') {
        for (i = r->pos; i < r->n && r->s[i] != '=' && r->s[i] != '#' && ws_len(r->s, r->n, i) == 0; i++)
            ;
        if (i == r->pos)
            return false;
        b->key = r->s + r->pos;
        b->key_len = i - r->pos;
        advance_to(r, i);
    }
    advance_to(r, skip_hws(r, r->pos));
    if (peek(r) == '=' && r->pos < r->n) {
        advance_to(r, skip_hws(r, r->pos + 1));
        b->has_value = true;
        if (!value(r, &b->value))
            return false;
    }
    /* (?:[^\S\r\n]*#[^\r\n]*)? then [^\S\r\n]*(?:\n|$) */
    i = skip_hws(r, r->pos);
    if (i < r->n && r->s[i] == '#') {
        while (i < r->n && r->s[i] != '\n')
            i++;
        advance_to(r, i);
    }
    i = skip_hws(r, r->pos);
    if (i < r->n && r->s[i] != '\n')
        return false;
    advance_to(r, i < r->n ? i + 1 : i);
    return true;
}

/* --- the values read so far (resolve_variables' new_values) ---------------- */

typedef struct entry {
    char *key;
    size_t key_len;
    char *val;             /* NULL: None */
    size_t val_len;
} entry;

typedef struct table {
    entry *e;              /* in first-seen order, as a Python dict */
    size_t n, cap;
    size_t *slot;          /* open addressing: index + 1, 0 empty */
    size_t nslots;
    size_t total;          /* bytes of values held */
} table;

static size_t hash(const char *s, size_t n)
{
    size_t h = 1469598103934665603u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static entry *lookup_entry(const table *t, const char *key, size_t len)
{
    if (t->nslots == 0)
        return NULL;
    for (size_t i = hash(key, len) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
        size_t k = t->slot[i];
        if (k == 0)
            return NULL;
        if (t->e[k - 1].key_len == len && memcmp(t->e[k - 1].key, key, len) == 0)
            return &t->e[k - 1];
    }
}

static bool rehash(table *t)
{
    size_t n = t->nslots ? t->nslots * 2 : 64;
    size_t *slot = calloc(n, sizeof(*slot));

    if (slot == NULL)
        return false;
    for (size_t k = 0; k < t->n; k++) {
        size_t i = hash(t->e[k].key, t->e[k].key_len) & (n - 1);
        while (slot[i] != 0)
            i = (i + 1) & (n - 1);
        slot[i] = k + 1;
    }
    free(t->slot);
    t->slot = slot;
    t->nslots = n;
    return true;
}

/* Set key to val (taking val; NULL: None). */
static hive_rc put(table *t, const char *key, size_t key_len, char *val, size_t val_len)
{
    entry *e = lookup_entry(t, key, key_len);

    if (e == NULL) {
        if ((t->n + 1) * 2 > t->nslots && !rehash(t))
            goto nomem;
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 16;
            entry *grown = realloc(t->e, cap * sizeof(*grown));
            if (grown == NULL)
                goto nomem;
            t->e = grown;
            t->cap = cap;
        }
        e = &t->e[t->n];
        e->key = hive__strndup(key, key_len);
        if (e->key == NULL)
            goto nomem;
        e->key_len = key_len;
        {
            size_t i = hash(key, key_len) & (t->nslots - 1);
            while (t->slot[i] != 0)
                i = (i + 1) & (t->nslots - 1);
            t->slot[i] = ++t->n;
        }
    } else if (e->val != NULL) {
        t->total -= e->val_len;
        hive__free_secret(e->val, e->val_len + 1);
    }
    e->val = val;
    e->val_len = val_len;
    t->total += val_len;
    return HIVE_OK;
nomem:
    if (val != NULL)
        hive__free_secret(val, val_len + 1);
    return hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

static void table_free(table *t)
{
    for (size_t k = 0; k < t->n; k++) {
        free(t->e[k].key);
        if (t->e[k].val != NULL)
            hive__free_secret(t->e[k].val, t->e[k].val_len + 1);
    }
    free(t->e);
    free(t->slot);
    memset(t, 0, sizeof(*t));
}

/* --- interpolation (variables.py) ------------------------------------------ */

static hive_rc env_lookup(void *ctx, const char *name, size_t name_len, const char **val, size_t *len)
{
    char buf[1024];

    (void)ctx;
    *val = NULL;
    /* os.environ has no name holding '=' or NUL */
    if (name_len == 0 || name_len >= sizeof(buf) || memchr(name, '=', name_len) != NULL ||
        memchr(name, '\0', name_len) != NULL)
        return HIVE_OK;
    memcpy(buf, name, name_len);
    buf[name_len] = '\0';
    *val = getenv(buf);
    if (*val != NULL)
        *len = strlen(*val);
    return HIVE_OK;
}

/*
 * \$\{(?P<name>[^\}:]*)(?::-(?P<default>[^\}]*))?\} at s[i]: the end of
 * the match, or 0 when there is none.
 */
static size_t variable_at(const char *s, size_t n, size_t i, size_t *name_end, size_t *def, size_t *def_end)
{
    size_t j;

    if (i + 1 >= n || s[i] != '$' || s[i + 1] != '{')
        return 0;
    for (j = i + 2; j < n && s[j] != '}' && s[j] != ':'; j++)
        ;
    *name_end = j;
    *def = 0;
    if (j < n && s[j] == '}')
        return j + 1;
    if (j + 1 < n && s[j] == ':' && s[j + 1] == '-') {
        size_t k = j + 2;
        while (k < n && s[k] != '}')
            k++;
        if (k < n) {
            *def = j + 2;
            *def_end = k;
            return k + 1;
        }
    }
    return 0;
}

static hive_rc interpolate(const table *t, const hive_dotenv_options *o, const char *s, size_t n,
                           hive_buf *out)
{
    hive_rc (*lookup)(void *, const char *, size_t, const char **, size_t *) =
        o->lookup != NULL ? o->lookup : env_lookup;
    size_t lit = 0;

    for (size_t i = 0; i < n; i++) {
        size_t name_end, def, def_end = 0, end = variable_at(s, n, i, &name_end, &def, &def_end);
        const char *name = s + i + 2;
        size_t name_len = name_end - i - 2;
        const entry *e;
        const char *v = NULL;
        size_t vlen = 0;

        if (end == 0)
            continue;
        hive__buf_append(out, s + lit, i - lit);
        e = lookup_entry(t, name, name_len);
        if (e != NULL) {
            v = e->val != NULL ? e->val : "";   /* None resolves to "" */
            vlen = e->val != NULL ? e->val_len : 0;
        } else {
            hive_rc rc = lookup(o->ctx, name, name_len, &v, &vlen);
            if (rc != HIVE_OK)
                return hive__fail(rc, "the lookup of ${%.*s} failed", (int)(name_len > 200 ? 200 : name_len),
                                  name);
            if (v == NULL && def != 0) {
                v = s + def;
                vlen = def_end - def;
            }
        }
        if (v != NULL)
            hive__buf_append(out, v, vlen);
        if (out->len > MAX_EXPANDED)
            return hive__fail(HIVE_ERR_TOO_LARGE, "dotenv values expand to more than %u bytes",
                              MAX_EXPANDED);
        lit = end;
        i = end - 1;
    }
    hive__buf_append(out, s + lit, n - lit);
    return HIVE_OK;
}

/* --- the file -------------------------------------------------------------- */

/* Python's text mode: strict UTF-8, and \r\n or \r read as \n. */
static hive_rc decode_text(const char *text, size_t len, char **out, size_t *out_len)
{
    char *s;
    size_t o = 0;

    if (!hive__utf8_valid(text, len, false)) {
        size_t line = 1, i = 0;
        uint32_t cp;
        while (i < len) {
            size_t l = hive__utf8_decode(text + i, len - i, false, &cp);
            if (l == 0)
                break;
            if (text[i] == '\n')
                line++;
            i += l;
        }
        return hive__fail(HIVE_ERR_INVALID, "dotenv line %zu is not UTF-8", line);
    }
    s = malloc(len + 1);
    if (s == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r') {
            s[o++] = '\n';
            if (i + 1 < len && text[i + 1] == '\n')
                i++;
        } else {
            s[o++] = text[i];
        }
    }
    s[o] = '\0';
    *out = s;
    *out_len = o;
    return HIVE_OK;
}

static hive_rc to_json(const table *t, hive_json **out)
{
    hive_json *obj = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc = HIVE_OK;

    if (obj == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < t->n && rc == HIVE_OK; k++) {
        const entry *e = &t->e[k];
        hive_json *v;
        if (memchr(e->key, '\0', e->key_len) != NULL)
            continue;   /* no name a caller can ask for */
        v = e->val != NULL ? hive_json_new_string(e->val, e->val_len) : hive_json_new(HIVE_JSON_NULL);
        rc = hive__json_add_member(obj, e->key, e->key_len, v);
    }
    if (rc != HIVE_OK) {
        hive_json_free(&obj);
        return rc;
    }
    *out = obj;
    return HIVE_OK;
}

hive_rc hive_dotenv_parse_with(hive_json **out, const char *text, size_t len,
                               const hive_dotenv_options *caller_opts)
{
    hive_dotenv_options o = {0};
    const hive_dotenv_options *opts = &o;
    reader r = {0};
    table t = {0};
    char *s = NULL;
    size_t n = 0;
    hive_rc rc;

    hive__clear_error();
    if (caller_opts != NULL) {
        if (caller_opts->size < sizeof(size_t))
            return hive__fail(HIVE_ERR_INVALID, "hive_dotenv_options.size is not set");
        memcpy(&o, caller_opts, caller_opts->size < sizeof(o) ? caller_opts->size : sizeof(o));
    }
    if (len > MAX_DOTENV)
        return hive__fail(HIVE_ERR_TOO_LARGE, "dotenv file larger than %u bytes", MAX_DOTENV);
    rc = decode_text(text, len, &s, &n);
    if (rc != HIVE_OK)
        return rc;
    r.s = s;
    r.n = n;
    r.line = 1;
    while (rc == HIVE_OK && r.pos < r.n) {
        binding b = {0};
        size_t first_line = r.line;
        if (!statement(&r, &b)) {
            /* [^\r\n]*(?:\r|\n|\r\n)? from where the statement failed */
            size_t i = r.pos;
            while (i < r.n && r.s[i] != '\n')
                i++;
            advance_to(&r, i < r.n ? i + 1 : i);
            if (opts->skipped != NULL)
                opts->skipped(opts->ctx, first_line);
        } else if (b.key != NULL) {
            char *v = NULL;
            size_t vlen = 0;
            if (b.has_value) {
                hive_buf expanded = {0};
                if (opts->flags & HIVE_DOTENV_NO_INTERPOLATE) {
                    hive__buf_append(&expanded, b.value.data != NULL ? b.value.data : "", b.value.len);
                } else {
                    rc = interpolate(&t, opts, b.value.data != NULL ? b.value.data : "", b.value.len,
                                     &expanded);
                }
                if (rc == HIVE_OK)
                    rc = hive__buf_finish(&expanded, &v, &vlen);
                hive__buf_free(&expanded);
                if (rc == HIVE_OK && t.total + vlen > MAX_EXPANDED)
                    rc = hive__fail(HIVE_ERR_TOO_LARGE, "dotenv values expand to more than %u bytes",
                                    MAX_EXPANDED);
                if (rc != HIVE_OK && v != NULL) {
                    hive__free_secret(v, vlen + 1);
                    v = NULL;
                }
            }
            if (rc == HIVE_OK)
                rc = put(&t, b.key, b.key_len, v, vlen);
        }
        hive__buf_free(&b.value);
    }
    if (rc == HIVE_OK)
        rc = to_json(&t, out);
    table_free(&t);
    hive__free_secret(s, n + 1);
    return rc;
}

hive_rc hive_dotenv_parse(hive_json **out, const char *text, size_t len)
{
    hive__clear_error();
    return hive_dotenv_parse_with(out, text, len, NULL);
}

hive_rc hive_dotenv_load_with(hive_json **out, const char *path, const hive_dotenv_options *opts)
{
    hive__clear_error();
    char *buf = NULL;
    size_t len = 0;
    hive_rc rc = hive__read_at(AT_FDCWD, path, false, MAX_DOTENV, "dotenv file", &buf, &len);

    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "%s does not exist", path);
    if (rc != HIVE_OK)
        return rc;
    rc = hive_dotenv_parse_with(out, buf, len, opts);
    hive__free_secret(buf, len + 1);
    if (rc != HIVE_OK && rc != HIVE_ERR_NOMEM)
        return hive__fail_prefix(rc, "%s", path);
    return rc;
}

hive_rc hive_dotenv_load(hive_json **out, const char *path)
{
    hive__clear_error();
    return hive_dotenv_load_with(out, path, NULL);
}
