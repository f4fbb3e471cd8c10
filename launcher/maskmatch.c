/*
 * maskmatch.c - the matcher of hive-run --mask (maskmatch.h).
 *
 * Patterns: each value and its encodings. Matching: Wu-Manber over
 * 4-byte blocks (a window of the shortest pattern's length moves on by
 * several bytes where no pattern can begin), every position checked
 * where one can, also inside a masked run, so that overlapping
 * occurrences are masked as one run. A stream holds back only a tail that
 * could still be the start of an occurrence; at the end of the stream no
 * occurrence can go on, and the tail is settled like the rest.
 */
#include "maskmatch.h"

#include <hive/hive.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BITS 16
#define HASH_SIZE (1u << HASH_BITS)
#define MIN_PATTERN 4         /* every pattern has at least this many bytes (load4) */

/* --- the patterns ------------------------------------------------------------ */

typedef struct pattern {
    char *bytes;
    size_t len;
} pattern;

struct masker {
    pattern *p;
    size_t n;
    size_t cap;                         /* of p */
    size_t maxlen;
    uint64_t bits4[HASH_SIZE / 64];     /* 4-byte prefixes present */
    uint32_t *bucket_start;             /* HASH_SIZE + 1 offsets into order[] */
    uint32_t *order;                    /* pattern indices grouped by prefix hash */
    uint64_t bits1[4];                  /* 1-byte prefixes */
    uint64_t bits2[HASH_SIZE / 64];     /* 2-byte prefixes */
    uint64_t bits3[HASH_SIZE / 64];     /* 3-byte prefixes (hashed) */
    size_t minlen;                      /* the shortest pattern */
    uint8_t *shift;                     /* Wu-Manber: how far a window may move */
};

/* Wipe n bytes at p and free it: every buffer here held secrets. */
static void wipe_free(void *p, size_t n)
{
    hive_memzero(p, n);
    free(p);
}

static inline uint32_t load4(const char *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t hash4(uint32_t v)
{
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static inline uint32_t hash3(const char *p)
{
    uint32_t v = (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8 |
                 (uint32_t)(unsigned char)p[2] << 16;
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

#define BIT_SET(b, i) ((b)[(i) >> 6] |= UINT64_C(1) << ((i) & 63))
#define BIT_GET(b, i) (((b)[(i) >> 6] >> ((i) & 63)) & 1)

/* Add a pattern (duplicates are dropped once all are in: drop_duplicates). */
static bool add_pattern(masker *m, const char *s, size_t len)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        pattern *grown = realloc(m->p, cap * sizeof(*grown));
        if (grown == NULL)
            return false;
        m->p = grown;
        m->cap = cap;
    }
    m->p[m->n].bytes = malloc(len);
    if (m->p[m->n].bytes == NULL)
        return false;
    memcpy(m->p[m->n].bytes, s, len);
    m->p[m->n].len = len;
    m->n++;
    if (len > m->maxlen)
        m->maxlen = len;
    return true;
}

/* The value's encodings a program is likely to print. */
static bool add_value(masker *m, const char *v, size_t len)
{
    static const char hexl[] = "0123456789abcdef";
    static const char hexu[] = "0123456789ABCDEF";
    size_t cap = len * 3 + 8;   /* hex and URL encoding take the most */
    char *buf = malloc(cap);
    bool ok = buf != NULL && add_pattern(m, v, len);

    /* on a terminal, the program's "\n" comes out as "\r\n" (ONLCR) */
    if (ok && memchr(v, '\n', len) != NULL) {
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r'))
                buf[o++] = '\r';
            buf[o++] = v[i];
        }
        ok = add_pattern(m, buf, o);
    }

    for (int k = 0; ok && k < 4; k++) {
        size_t n = hive_base64_encode(buf, v, len, (k & 1 ? HIVE_B64_URL : 0) | (k & 2 ? 0 : HIVE_B64_NOPAD));
        ok = add_pattern(m, buf, n);
    }
    for (int k = 0; ok && k < 2; k++) {
        const char *h = k ? hexu : hexl;
        for (size_t i = 0; i < len; i++) {
            buf[2 * i] = h[(unsigned char)v[i] >> 4];
            buf[2 * i + 1] = h[(unsigned char)v[i] & 15];
        }
        ok = add_pattern(m, buf, 2 * len);
    }
    for (int k = 0; ok && k < 2; k++) {
        /* percent-encoding; k: form style, space as '+' */
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)v[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '.' || c == '_' || c == '~') {
                buf[o++] = (char)c;
            } else if (k && c == ' ') {
                buf[o++] = '+';
            } else {
                buf[o++] = '%';
                buf[o++] = hexu[c >> 4];
                buf[o++] = hexu[c & 15];
            }
        }
        ok = add_pattern(m, buf, o);
    }
    if (buf != NULL)
        wipe_free(buf, cap);
    return ok;
}

void masker_free(masker *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        wipe_free(m->p[i].bytes, m->p[i].len);
    free(m->p);
    free(m->bucket_start);
    free(m->order);
    free(m->shift);
    free(m);
}

typedef struct keyed {
    uint32_t hash;      /* of the pattern's first 4 bytes */
    uint32_t index;
} keyed;

static int by_hash(const void *a, const void *b)
{
    const keyed *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_bytes(const void *a, const void *b)
{
    const pattern *x = a, *y = b;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->bytes, y->bytes, x->len);
}

/* Each pattern once (values and their encodings coincide often, and
 * under --fresh a masker is made again with every value so far: sorted,
 * not compared pair by pair). */
static void drop_duplicates(masker *m)
{
    size_t k = 0;

    if (m->n == 0)
        return;
    qsort(m->p, m->n, sizeof(pattern), by_bytes);
    for (size_t i = 1; i < m->n; i++) {
        if (by_bytes(&m->p[k], &m->p[i]) == 0)
            wipe_free(m->p[i].bytes, m->p[i].len);
        else
            m->p[++k] = m->p[i];
    }
    m->n = k + 1;
}

masker *masker_new(const char *const *values, const size_t *lens, size_t n, size_t min_len)
{
    masker *m = calloc(1, sizeof(*m));
    keyed *keys = NULL;

    if (m == NULL)
        return NULL;
    if (min_len < MIN_PATTERN)
        min_len = MIN_PATTERN;
    for (size_t i = 0; i < n; i++)
        if (lens[i] >= min_len && !add_value(m, values[i], lens[i]))
            goto fail;
    drop_duplicates(m);
    m->bucket_start = calloc(HASH_SIZE + 1, sizeof(uint32_t));
    m->order = calloc(m->n + 1, sizeof(uint32_t));
    keys = calloc(m->n + 1, sizeof(keyed));
    if (m->bucket_start == NULL || m->order == NULL || keys == NULL)
        goto fail;
    for (size_t i = 0; i < m->n; i++) {
        const char *b = m->p[i].bytes;
        keys[i].hash = hash4(load4(b));
        keys[i].index = (uint32_t)i;
        BIT_SET(m->bits4, keys[i].hash);
        BIT_SET(m->bits1, (unsigned char)b[0]);
        BIT_SET(m->bits2, (uint32_t)(unsigned char)b[0] | (uint32_t)(unsigned char)b[1] << 8);
        BIT_SET(m->bits3, hash3(b));
    }
    /* the patterns grouped by hash: bucket h is order[bucket_start[h] ..
     * bucket_start[h + 1]); only the buckets of hashes in bits4 are read */
    qsort(keys, m->n, sizeof(keyed), by_hash);
    for (size_t k = 0; k < m->n; k++) {
        uint32_t h = keys[k].hash;
        m->order[k] = keys[k].index;
        if (k == 0 || keys[k - 1].hash != h)
            m->bucket_start[h] = (uint32_t)k;
        m->bucket_start[h + 1] = (uint32_t)k + 1;
    }
    /* Wu-Manber: a window of minlen bytes whose last 4 bytes occur in no
     * pattern's first minlen bytes can move on by more than one byte */
    m->minlen = SIZE_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (m->p[i].len < m->minlen)
            m->minlen = m->p[i].len;
    if (m->n > 0) {
        size_t maxshift = m->minlen - 4 + 1;
        m->shift = malloc(HASH_SIZE);
        if (m->shift == NULL)
            goto fail;
        memset(m->shift, (int)(maxshift > 255 ? 255 : maxshift), HASH_SIZE);
        for (size_t i = 0; i < m->n; i++) {
            for (size_t j = 0; j + 4 <= m->minlen; j++) {
                uint32_t h = hash4(load4(m->p[i].bytes + j));
                size_t sh = m->minlen - 4 - j;
                if (sh < m->shift[h])
                    m->shift[h] = (uint8_t)sh;
            }
        }
    }
    free(keys);
    return m;
fail:
    free(keys);
    masker_free(m);
    return NULL;
}

/* --- the stream -------------------------------------------------------------- */

/*
 * Where a scan stands in a buffer: the bytes before `front` are written;
 * the masked run still open covers the bytes before `end` (from where it
 * began, before front or not); `marked`: the last byte written was
 * masked, in that run, so that its next masked bytes need no marker.
 */
typedef struct scan_pos {
    size_t front;
    size_t end;
    bool marked;
} scan_pos;

/* Write buf[pos->front..to): one marker for the masked run's bytes (none
 * when its marker is already out), the rest as they are. */
static void advance(mask_stream *s, const char *buf, scan_pos *pos, size_t to)
{
    if (to <= pos->front)
        return;
    if (pos->front < pos->end) {
        if (!pos->marked)
            s->sink(s->ctx, MASK_MARKER, sizeof(MASK_MARKER) - 1);
        pos->marked = true;
        pos->front = to < pos->end ? to : pos->end;
    }
    if (to > pos->front) {
        s->sink(s->ctx, buf + pos->front, to - pos->front);
        pos->marked = false;
        pos->front = to;
    }
}

/* A pattern occurs at buf[i..i+len): it joins the open run when it
 * overlaps it, else it opens a new one (with a marker of its own). */
static void cover(mask_stream *s, const char *buf, scan_pos *pos, size_t i, size_t len)
{
    if (i < pos->end) {
        if (i + len > pos->end)
            pos->end = i + len;
        return;
    }
    advance(s, buf, pos, i);
    pos->marked = false;
    pos->end = i + len;
}

/* The longest pattern at buf+i (0: none), buf+i having at least 4
 * bytes; *partial when a longer one could match if more bytes came
 * (never at the end of the stream). */
static size_t match_at(const masker *m, const char *buf, size_t n, size_t i, bool at_end, bool *partial)
{
    uint32_t h = hash4(load4(buf + i));
    size_t best = 0;

    *partial = false;
    if (!BIT_GET(m->bits4, h))
        return 0;
    for (uint32_t k = m->bucket_start[h]; k < m->bucket_start[h + 1]; k++) {
        const pattern *p = &m->p[m->order[k]];
        if (p->len <= n - i) {
            if (p->len > best && memcmp(buf + i, p->bytes, p->len) == 0)
                best = p->len;
        } else if (!at_end && !*partial && memcmp(buf + i, p->bytes, n - i) == 0) {
            *partial = true;
        }
    }
    return best;
}

/* Could the bytes p[0..n) (n < 4) begin a pattern? (The 3-byte test is
 * hashed: it may hold 3 bytes for nothing, never let one through.) */
static bool short_prefix(const masker *m, const char *p, size_t n)
{
    if (n == 1)
        return BIT_GET(m->bits1, (unsigned char)p[0]);
    if (n == 2)
        return BIT_GET(m->bits2, (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8);
    return BIT_GET(m->bits3, hash3(p));
}

/*
 * Look for patterns beginning at buf[*at..limit) (buf has n bytes,
 * limit <= n), covering each occurrence found. True when an occurrence
 * could begin at *at and go on past n (then what begins there must be
 * held); else false, with *at where the search stopped (>= limit).
 * Wu-Manber: a window of the shortest pattern's length moves on by
 * several bytes at once where no pattern can begin.
 */
static bool scan(mask_stream *s, const char *buf, size_t n, size_t *at, size_t limit, scan_pos *pos,
                 bool at_end)
{
    const masker *m = s->m;
    size_t i = *at;
    bool partial = false;

    while (i < limit && i + m->minlen <= n) {
        size_t sh = m->shift[hash4(load4(buf + i + m->minlen - 4))];
        size_t best;

        if (sh > 0) {
            i += sh;
            continue;
        }
        best = match_at(m, buf, n, i, at_end, &partial);
        if (best > 0)
            cover(s, buf, pos, i, best);
        if (partial)
            break;
        i++;
    }
    /* the last bytes, fewer than the shortest pattern */
    for (; !partial && i < limit; i++) {
        size_t best = 0;
        if (n - i >= MIN_PATTERN)
            best = match_at(m, buf, n, i, at_end, &partial);
        else
            partial = !at_end && short_prefix(m, buf + i, n - i);
        if (best > 0)
            cover(s, buf, pos, i, best);
        if (partial)
            break;
    }
    *at = i;
    return partial;
}

/* Hold buf[at..n) (fewer than maxlen bytes: a pattern could begin at
 * `at` and end past n), everything before it written. */
static void hold(mask_stream *s, const char *buf, size_t n, size_t at, scan_pos *pos)
{
    advance(s, buf, pos, at);
    memcpy(s->held, buf + at, n - at);
    s->nheld = n - at;
    s->nsent = pos->front - at;
    s->covered = pos->end > at ? pos->end - at : 0;
    s->marked = pos->marked;
}

/* Nothing in buf[0..n) can go on past n: write it all. */
static void settle(mask_stream *s, const char *buf, size_t n, scan_pos *pos)
{
    advance(s, buf, pos, n);
    s->nheld = 0;
    s->nsent = 0;
    s->covered = 0;
    s->marked = false;
}

bool mask_stream_init(mask_stream *s, const masker *m, mask_sink sink, void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->m = m;
    s->sink = sink;
    s->ctx = ctx;
    /* a held tail is shorter than the longest pattern */
    s->cap = m->maxlen > 0 ? m->maxlen : 1;
    s->held = malloc(s->cap);
    s->work = malloc(2 * s->cap);
    if (s->held == NULL || s->work == NULL) {
        free(s->held);
        free(s->work);
        s->held = s->work = NULL;
        return false;
    }
    return true;
}

bool mask_stream_rebind(mask_stream *s, const masker *m)
{
    size_t cap = m->maxlen > s->cap ? m->maxlen : s->cap;
    char *held, *work;

    if (cap > s->cap) {
        held = malloc(cap);
        work = malloc(2 * cap);
        if (held == NULL || work == NULL) {
            free(held);
            free(work);
            return false;
        }
        memcpy(held, s->held, s->nheld);
        wipe_free(s->held, s->cap);
        wipe_free(s->work, 2 * s->cap);
        s->held = held;
        s->work = work;
        s->cap = cap;
    }
    /* the held tail was held as what could begin one of the old patterns;
     * the next feed searches it again with the new ones too */
    s->m = m;
    return true;
}

void mask_feed(mask_stream *s, const char *data, size_t n)
{
    const masker *m = s->m;
    scan_pos pos = {s->nsent, s->covered, s->marked};
    size_t at = 0;

    if (n == 0)
        return;
    if (m->n == 0) {
        s->sink(s->ctx, data, n);
        return;
    }
    if (s->nheld > 0) {
        /* the held tail and as much of data as a pattern beginning in the
         * tail can reach */
        size_t held = s->nheld;
        size_t j = n < m->maxlen ? n : m->maxlen;
        size_t total = held + j;

        memcpy(s->work, s->held, held);
        memcpy(s->work + held, data, j);
        if (j == n) {
            if (scan(s, s->work, total, &at, total, &pos, false))
                hold(s, s->work, total, at, &pos);
            else
                settle(s, s->work, total, &pos);
            hive_memzero(s->work, total);
            return;
        }
        /* a pattern beginning in the tail ends within work: this search
         * cannot stop on a partial match */
        scan(s, s->work, total, &at, held, &pos, false);
        advance(s, s->work, &pos, held);
        hive_memzero(s->work, total);
        at -= held;
        pos.front = 0;
        pos.end = pos.end > held ? pos.end - held : 0;
        s->nheld = 0;
    }
    if (scan(s, data, n, &at, n, &pos, false))
        hold(s, data, n, at, &pos);
    else
        settle(s, data, n, &pos);
}

void mask_release(mask_stream *s, size_t below)
{
    scan_pos pos = {s->nsent, s->covered, s->marked};

    if (s->nheld <= s->nsent || s->nheld >= below)
        return;
    advance(s, s->held, &pos, s->nheld);
    s->nsent = s->nheld;
    s->marked = pos.marked;
}

void mask_finish(mask_stream *s)
{
    if (s->nheld > 0) {
        scan_pos pos = {s->nsent, s->covered, s->marked};
        size_t at = 0;
        /* nothing can go on past the end: search the tail again for
         * whole occurrences only (one inside what could have begun a
         * longer one was not searched for when the tail was held) */
        scan(s, s->held, s->nheld, &at, s->nheld, &pos, true);
        advance(s, s->held, &pos, s->nheld);
    }
    if (s->held != NULL)
        wipe_free(s->held, s->cap);
    if (s->work != NULL)
        wipe_free(s->work, 2 * s->cap);
    s->held = s->work = NULL;
    s->nheld = s->nsent = s->covered = s->cap = 0;
    s->marked = false;
}
