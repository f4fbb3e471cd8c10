/* hive-run --mask's matcher (launcher/maskmatch.c) against a naive search.
 * The input makes up to 4 secrets (often the start or end of another, so
 * that they overlap), a text of their encodings, pieces of them and other
 * bytes, the chunks it is fed in and the silences between them. The
 * stream's output must be exactly what this gives: every occurrence of
 * every encoding (encoded here again, naively) found in the whole text;
 * overlapping ones one marker; a byte released on silence written as what
 * was known then; the end of the text settling everything. */
#include "fuzz.h"
#include "maskmatch.h"

#include <stdbool.h>

#define MAX_SECRETS 4
#define MAX_SECRET 16
#define MAX_PATTERNS (MAX_SECRETS * 11)
#define MAX_TEXT 4096
#define SHORT_TAIL 4       /* what mask.c releases on silence */
#define NEVER SIZE_MAX

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static unsigned take(input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* Few distinct bytes, so that secrets and text meet often; '\n' for the
 * terminal form, ' ' '/' '+' '=' '%' for the URL and base64 forms. */
static char sym(unsigned b)
{
    static const char alphabet[] = "ab12ef-\n =/+%";
    return b >= 0xf0 ? (char)b : alphabet[b % (sizeof(alphabet) - 1)];
}

typedef struct pat {
    char b[MAX_SECRET * 3 + 8];
    size_t len;
} pat;

static size_t b64(char *out, const char *in, size_t len, bool url, bool pad)
{
    const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, bits = len * 8;

    for (size_t k = 0; k < bits; k += 6) {
        unsigned v = 0;
        for (size_t j = k; j < k + 6; j++)
            v = v << 1 | (j < bits ? ((unsigned char)in[j / 8] >> (7 - j % 8) & 1) : 0);
        out[o++] = a[v];
    }
    while (pad && o % 4 != 0)
        out[o++] = '=';
    return o;
}

/* Each form of v that --mask hides (README: base64 with and without
 * padding, base64url, lower and upper hex, URL encoding; on a terminal a
 * '\n' comes out as "\r\n"). */
static size_t encodings(pat *out, const char *v, size_t len)
{
    size_t n = 0;

    memcpy(out[n].b, v, len);
    out[n++].len = len;
    if (memchr(v, '\n', len) != NULL) {
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r'))
                out[n].b[o++] = '\r';
            out[n].b[o++] = v[i];
        }
        out[n++].len = o;
    }
    for (int k = 0; k < 4; k++, n++)
        out[n].len = b64(out[n].b, v, len, k & 1, k & 2);
    for (int k = 0; k < 2; k++, n++) {
        for (size_t i = 0; i < len; i++)
            snprintf(out[n].b + 2 * i, 3, k ? "%02X" : "%02x", (unsigned char)v[i]);
        out[n].len = 2 * len;
    }
    for (int k = 0; k < 2; k++, n++) {
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)v[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                (c != 0 && strchr("-._~", c) != NULL))
                out[n].b[o++] = (char)c;
            else if (k && c == ' ')
                out[n].b[o++] = '+';
            else
                o += (size_t)snprintf(out[n].b + o, 4, "%%%02X", c);
        }
        out[n].len = o;
    }
    return n;
}

typedef struct sink_buf {
    char *b;
    size_t n, cap;
} sink_buf;

static void to_buf(void *ctx, const char *p, size_t n)
{
    sink_buf *s = ctx;

    FUZZ_CHECK(n > 0);
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->b = realloc(s->b, s->cap);
        FUZZ_CHECK(s->b != NULL);
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

/* Where the held tail begins after text[0..k): the first position from
 * which the text so far is a proper prefix of a pattern (k: none). */
static size_t hold_point(const char *text, size_t k, const pat *p, size_t np)
{
    for (size_t i = k > MAX_SECRET * 3 + 8 ? k - (MAX_SECRET * 3 + 8) : 0; i < k; i++)
        for (size_t j = 0; j < np; j++)
            if (p[j].len > k - i && memcmp(text + i, p[j].b, k - i) == 0)
                return i;
    return k;
}

/* The naive answer: the text with every occurrence masked, each byte as
 * known when it was written: released[b] is the text's length then, or
 * NEVER when it went out settled. A masked byte continues the marker of
 * the byte before when that one was masked too and one occurrence holds
 * both. */
static size_t naive(char *out, const char *text, size_t n, const pat *p, size_t np, const size_t *released)
{
    static bool covered[MAX_TEXT], joined[MAX_TEXT];
    size_t o = 0;

    memset(covered, 0, n);
    memset(joined, 0, n);
    for (size_t s = 0; s < n; s++) {
        for (size_t j = 0; j < np; j++) {
            size_t e = s + p[j].len;
            if (e > n || memcmp(text + s, p[j].b, p[j].len) != 0)
                continue;
            for (size_t b = s; b < e; b++) {
                if (e <= released[b]) {
                    covered[b] = true;
                    joined[b] |= b > s;
                }
            }
        }
    }
    for (size_t b = 0; b < n; b++) {
        if (!covered[b]) {
            out[o++] = text[b];
        } else if (!(b > 0 && covered[b - 1] && joined[b])) {
            memcpy(out + o, MASK_MARKER, sizeof(MASK_MARKER) - 1);
            o += sizeof(MASK_MARKER) - 1;
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    char secrets[MAX_SECRETS][MAX_SECRET];
    size_t lens[MAX_SECRETS];
    const char *vals[MAX_SECRETS];
    static pat p[MAX_PATTERNS];
    static char text[MAX_TEXT], want[MAX_TEXT * sizeof(MASK_MARKER)];
    static size_t released[MAX_TEXT];
    size_t nsec = 1 + take(&in) % MAX_SECRETS;
    size_t min_len = 4 + take(&in) % 4;
    size_t np = 0, n = 0, fed = 0, nwant;
    sink_buf got = {NULL, 0, 0};
    masker *m;
    mask_stream s;

    for (size_t i = 0; i < nsec; i++) {
        unsigned kind = take(&in) % 4;
        size_t len = 0;
        if (i > 0 && kind == 1) {        /* the start of an earlier one, and more */
            size_t k = take(&in) % i;
            len = take(&in) % (lens[k] + 1);
            memcpy(secrets[i], secrets[k], len);
        } else if (i > 0 && kind == 2) { /* the end of an earlier one, and more */
            size_t k = take(&in) % i;
            size_t from = take(&in) % (lens[k] + 1);
            len = lens[k] - from;
            memcpy(secrets[i], secrets[k] + from, len);
        }
        for (size_t more = take(&in) % (MAX_SECRET + 1); len < MAX_SECRET && more > 0; more--)
            secrets[i][len++] = kind == 3 ? (char)take(&in) : sym(take(&in));
        lens[i] = len;
        vals[i] = secrets[i];
        if (len >= min_len)
            np += encodings(p + np, secrets[i], len);
    }
    m = masker_new(vals, lens, nsec, min_len);
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(mask_stream_init(&s, m, to_buf, &got));

    /* the text, op by op: bytes, a whole pattern, its start or its end;
     * after an op, maybe feed what is pending (in two chunks) and maybe
     * a silence */
    while (in.n > 0) {
        unsigned op = take(&in);
        size_t start = n;
        if (np == 0 || op % 4 == 0) {
            for (size_t k = take(&in) % 8 + 1; k > 0 && n < MAX_TEXT; k--)
                text[n++] = sym(take(&in));
        } else {
            const pat *q = &p[take(&in) % np];
            size_t from = 0, to = q->len;
            if (op % 4 == 2)
                to = take(&in) % (q->len + 1);
            else if (op % 4 == 3)
                from = take(&in) % (q->len + 1);
            if (to - from > MAX_TEXT - n)
                to = from + (MAX_TEXT - n);
            memcpy(text + n, q->b + from, to - from);
            n += to - from;
        }
        for (size_t b = start; b < n; b++)
            released[b] = NEVER;
        if (op & 4) {
            size_t cut = fed + take(&in) % (n - fed + 1);
            mask_feed(&s, text + fed, cut - fed);
            mask_feed(&s, text + cut, n - cut);
            fed = n;
        }
        if (op & 8) {
            size_t h = hold_point(text, fed, p, np);
            mask_release(&s, SHORT_TAIL);
            if (fed - h < SHORT_TAIL)
                for (size_t b = h; b < fed; b++)
                    if (released[b] == NEVER)
                        released[b] = fed;
        }
        if (n == MAX_TEXT)
            break;
    }
    mask_feed(&s, text + fed, n - fed);
    mask_finish(&s);

    nwant = naive(want, text, n, p, np, released);
    FUZZ_CHECK(got.n == nwant);
    FUZZ_CHECK(nwant == 0 || memcmp(got.b, want, nwant) == 0);
    free(got.b);
    masker_free(m);
    return 0;
}
