/*
 * maskfresh.c - the values --fresh publishes, for --mask (maskfresh.h).
 */
#include "maskfresh.h"
#include "cli.h"
#include "snapshot.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* at most this many values are followed back in one poll (a chain longer
 * than this is one the ring has turned over under: days of refreshes) */
#define MAX_WALK 4096

bool mask_values_add(mask_values *mv, const char *v, size_t len)
{
    char **vs;
    size_t *lens;
    char *copy;

    for (size_t i = 0; i < mv->n; i++)
        if (mv->len[i] == len && memcmp(mv->v[i], v, len) == 0)
            return true;
    vs = realloc(mv->v, (mv->n + 1) * sizeof(*vs));
    if (vs == NULL)
        return false;
    mv->v = vs;
    lens = realloc(mv->len, (mv->n + 1) * sizeof(*lens));
    if (lens == NULL)
        return false;
    mv->len = lens;
    copy = malloc(len + 1);
    if (copy == NULL)
        return false;
    memcpy(copy, v, len);
    copy[len] = '\0';
    mv->v[mv->n] = copy;
    mv->len[mv->n++] = len;
    return true;
}

void mask_values_free(mask_values *mv)
{
    for (size_t i = 0; i < mv->n; i++)
        cli_free_secret(mv->v[i], mv->len[i] + 1);
    free(mv->v);
    free(mv->len);
    mv->v = NULL;
    mv->len = NULL;
    mv->n = 0;
}

struct mask_follow {
    const char *base;           /* the mapping, read-only */
    uint64_t size;
    uint32_t nvars;
    uint64_t known[HIVE_SNAP_MAX_VARS];   /* each variable's value at the last poll */
    const char *tmpl[HIVE_SNAP_MAX_VARS]; /* its template, or NULL (not told) */
    const char *name[HIVE_SNAP_MAX_VARS];
    bool warned[HIVE_SNAP_MAX_VARS];
};

mask_follow *mask_follow_new(int fd, const mask_fresh_var *vars, size_t n)
{
    struct stat st;
    const struct hive_snap *h;
    mask_follow *f;
    void *p;

    if (fstat(fd, &st) != 0)
        return NULL;
    if ((uint64_t)st.st_size < HIVE_SNAP_DATA) {
        errno = EINVAL;
        return NULL;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    h = p;
    f = calloc(1, sizeof(*f));
    if (f == NULL || h->magic != HIVE_SNAP_MAGIC || h->version != HIVE_SNAP_VERSION ||
        h->nvars > HIVE_SNAP_MAX_VARS || h->size != (uint64_t)st.st_size) {
        free(f);
        munmap(p, (size_t)st.st_size);
        errno = f == NULL ? ENOMEM : EINVAL;
        return NULL;
    }
    f->base = p;
    f->size = (uint64_t)st.st_size;
    f->nvars = h->nvars;
    for (uint32_t i = 0; i < f->nvars; i++) {
        /* from the launch value on: the first poll adds whatever the
         * refresher published before it */
        f->known[i] = h->vars[i].launch;
        for (size_t k = 0; k < n; k++) {
            if (strncmp(h->vars[i].name, vars[k].name, HIVE_SNAP_NAME_MAX) == 0) {
                f->tmpl[i] = vars[k].tmpl;
                f->name[i] = vars[k].name;
            }
        }
    }
    return f;
}

void mask_follow_free(mask_follow *f)
{
    if (f == NULL)
        return;
    munmap((void *)(uintptr_t)f->base, (size_t)f->size);
    free(f);
}

/* The value at off, or NULL when off is not one (out of the mapping, or
 * no NUL before its end); *len its length. */
static const char *value_at(const mask_follow *f, uint64_t off, size_t *len)
{
    const char *nul;

    if (off < HIVE_SNAP_DATA + HIVE_SNAP_LINK || off >= f->size)
        return NULL;
    nul = memchr(f->base + off, '\0', (size_t)(f->size - off));
    if (nul == NULL)
        return NULL;
    *len = (size_t)(nul - (f->base + off));
    return f->base + off;
}

/*
 * The credential values in v, rendered from tmpl: the text between the
 * template's literal parts, found in order. False when they cannot be
 * told apart for sure (two references with no text between them, text
 * that occurs twice where a reference ends, a value that does not fit the
 * template): then only v as a whole is masked.
 */
static bool add_pieces(mask_values *mv, const char *tmpl, const char *v, size_t len, bool *nomem)
{
    hive_template_refs *refs = NULL;
    size_t nr;
    size_t start, ref_end;
    size_t at;
    bool ok = true;

    if (hive_template_refs_parse(&refs, tmpl, strlen(tmpl)) != HIVE_OK) {
        *nomem = true;
        return false;
    }
    nr = hive_template_refs_count(refs);
    hive_template_refs_span(refs, &start, &ref_end, 0);
    if (nr == 0 || start > len || memcmp(v, tmpl, start) != 0) {
        hive_template_refs_free(&refs);
        return nr == 0;
    }
    at = start;
    for (size_t k = 0; k < nr && ok && !*nomem; k++) {
        size_t next = strlen(tmpl), next_end;
        const char *lit;
        size_t nlit;
        size_t end;
        hive_template_refs_span(refs, &start, &ref_end, k);
        if (k + 1 < nr)
            hive_template_refs_span(refs, &next, &next_end, k + 1);
        lit = tmpl + ref_end;
        nlit = next - ref_end;
        if (k + 1 == nr) {
            /* the last: the rest, less the literal text after it */
            ok = len - at >= nlit && memcmp(v + len - nlit, lit, nlit) == 0;
            end = len - nlit;
        } else {
            const char *hit = nlit > 0 ? memmem(v + at, len - at, lit, nlit) : NULL;
            ok = hit != NULL && memmem(hit + 1, (size_t)(v + len - hit - 1), lit, nlit) == NULL;
            end = ok ? (size_t)(hit - v) : at;
        }
        if (ok && end > at && !mask_values_add(mv, v + at, end - at))
            *nomem = true;
        at = end + nlit;
    }
    hive_template_refs_free(&refs);
    return ok;
}

/* A value variable i now has (or had, since the last poll). */
static bool add_value(mask_follow *f, uint32_t i, mask_values *mv, const char *v, size_t len)
{
    bool nomem = false;

    if (!mask_values_add(mv, v, len))
        return false;
    if (f->tmpl[i] != NULL && !add_pieces(mv, f->tmpl[i], v, len, &nomem) && !nomem && !f->warned[i]) {
        cli_warn("--mask: a new value of %s cannot be split into its credential values by its "
                 "template; only the whole value is masked", f->name[i]);
        f->warned[i] = true;
    }
    return !nomem;
}

int mask_follow_poll(mask_follow *f, mask_values *mv)
{
    const struct hive_snap *h = (const struct hive_snap *)(const void *)f->base;
    int added = 0;

    for (uint32_t i = 0; i < f->nvars; i++) {
        /* acquire: the value and the chain behind it are written */
        uint64_t cur = atomic_load_explicit(&h->vars[i].offset, memory_order_acquire);
        uint64_t off = cur;

        for (int steps = 0; off != f->known[i] && steps < MAX_WALK; steps++) {
            size_t len;
            const char *v = value_at(f, off, &len);
            uint64_t prev;
            if (v == NULL)
                break;
            if (!add_value(f, i, mv, v, len))
                return -1;
            added = 1;
            memcpy(&prev, f->base + off - HIVE_SNAP_LINK, sizeof(prev));
            off = prev;
        }
        f->known[i] = cur;
    }
    return added;
}
