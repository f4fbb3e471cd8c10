/*
 * hive-run --fresh --mask's parts (launcher/maskfresh.c and
 * mask_stream_rebind in launcher/maskmatch.c): a stream goes on over a
 * masker with more values, its held tail searched again with them; the
 * follower finds every value published in a snapshot (those replaced
 * again before it looked too) and the credential values a template puts
 * in each.
 */
#include "snapshot.h"
#include "maskfresh.h"
#include "maskmatch.h"
#include "masktest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define M MASK_MARKER

static masker *make(const char *const *values, size_t n)
{
    size_t lens[8];
    masker *m;

    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(values[i]);
    m = masker_new(values, lens, n, 6);
    cr_assert_not_null(m);
    return m;
}

Test(rebind, a_held_tail_is_searched_again_with_the_new_values)
{
    const char *const v[] = {"secret-one", "secret-two"};
    masker *a = make(v, 1), *b = make(v, 2);
    outbuf out = {.n = 0};
    mask_stream s;

    cr_assert(mask_stream_init(&s, a, to_outbuf, &out));
    mask_feed(&s, "see secret-", 11);   /* "secret-" held: it could begin secret-one */
    cr_assert(mask_stream_rebind(&s, b));
    masker_free(a);
    mask_feed(&s, "two!", 4);
    mask_finish(&s);
    masker_free(b);
    cr_assert_str_eq(out.b, "see " M "!");
}

Test(rebind, the_stream_grows_for_longer_values)
{
    const char *const v[] = {"short1", "a-much-longer-value-than-the-first-0123456789-abcdefghijklmnopqrstuvwxyz"};
    masker *a = make(v, 1), *b = make(v, 2);
    outbuf out = {.n = 0};
    mask_stream s;
    const char *text = "[a-much-longer-value-than-the-first-0123456789-abcdefghijklmnopqrstuvwxyz] short1";

    cr_assert(mask_stream_init(&s, a, to_outbuf, &out));
    cr_assert(mask_stream_rebind(&s, b));
    masker_free(a);
    /* byte by byte: the whole long value is held at once */
    for (const char *p = text; *p != '\0'; p++)
        mask_feed(&s, p, 1);
    mask_finish(&s);
    masker_free(b);
    cr_assert_str_eq(out.b, "[" M "] " M);
}

/* --- the follower ------------------------------------------------------------ */

typedef struct snap {
    int fd;
    char *p;
    size_t size;
    uint64_t next;             /* where the next block goes */
    uint64_t cur[4];           /* each variable's value */
} snap;

/* A snapshot as fresh.c makes one: the variables' launch values. */
static void snap_make(snap *s, const char *const (*vars)[2], uint32_t n)
{
    struct hive_snap *h;

    s->size = HIVE_SNAP_DATA + 8192;
    s->fd = memfd_create("maskfresh-test", 0);
    cr_assert(s->fd >= 0 && ftruncate(s->fd, (off_t)s->size) == 0);
    s->p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    cr_assert(s->p != MAP_FAILED);
    h = (struct hive_snap *)(void *)s->p;
    h->magic = HIVE_SNAP_MAGIC;
    h->version = HIVE_SNAP_VERSION;
    h->size = s->size;
    h->nvars = n;
    s->next = HIVE_SNAP_DATA;
    for (uint32_t i = 0; i < n; i++) {
        strcpy(h->vars[i].name, vars[i][0]);
        strcpy(s->p + s->next, vars[i][1]);
        h->vars[i].launch = s->cur[i] = s->next;
        atomic_store(&h->vars[i].offset, s->next);
        s->next += 128;
    }
}

/* Publish value as variable i's, as fresh.c's publish does. */
static void snap_publish(snap *s, uint32_t i, const char *value)
{
    struct hive_snap *h = (struct hive_snap *)(void *)s->p;

    memcpy(s->p + s->next, &s->cur[i], HIVE_SNAP_LINK);
    strcpy(s->p + s->next + HIVE_SNAP_LINK, value);
    s->cur[i] = s->next + HIVE_SNAP_LINK;
    atomic_store_explicit(&h->vars[i].offset, s->cur[i], memory_order_release);
    s->next += 128;
}

static void snap_free(snap *s)
{
    munmap(s->p, s->size);
    close(s->fd);
}

static bool has(const mask_values *mv, const char *v)
{
    for (size_t i = 0; i < mv->n; i++)
        if (mv->len[i] == strlen(v) && memcmp(mv->v[i], v, mv->len[i]) == 0)
            return true;
    return false;
}

Test(follow, every_published_value_once_also_those_replaced_before_a_poll)
{
    const char *const vars[][2] = {{"TOKEN", "launch-token"}, {"OTHER", "launch-other"}};
    const mask_fresh_var fv[] = {{"TOKEN", "{{tok}}"}, {"OTHER", "{{other}}"}};
    mask_values mv = {0};
    mask_follow *f;
    snap s;

    snap_make(&s, vars, 2);
    snap_publish(&s, 0, "token-number-1");   /* before the follower starts */
    f = mask_follow_new(s.fd, fv, 2);
    cr_assert_not_null(f);
    cr_assert_eq(mask_follow_poll(f, &mv), 1);
    cr_assert(has(&mv, "token-number-1"));
    cr_assert_eq(mv.n, 1, "the launch values are hive-run's to give, not the follower's");
    cr_assert_eq(mask_follow_poll(f, &mv), 0);
    snap_publish(&s, 0, "token-number-2");
    snap_publish(&s, 0, "token-number-3");
    snap_publish(&s, 1, "other-number-1");
    cr_assert_eq(mask_follow_poll(f, &mv), 1);
    cr_assert(has(&mv, "token-number-2"), "a value replaced before the poll is masked too");
    cr_assert(has(&mv, "token-number-3"));
    cr_assert(has(&mv, "other-number-1"));
    cr_assert_eq(mv.n, 4);
    cr_assert_eq(mask_follow_poll(f, &mv), 0);
    mask_follow_free(f);
    mask_values_free(&mv);
    snap_free(&s);
}

Test(follow, the_credential_values_a_template_puts_in_a_value)
{
    const char *const vars[][2] = {{"AUTH", "Bearer launch"}, {"URL", "https://u:launch@h/x"},
                                   {"PAIR", "launchlaunch"}};
    const mask_fresh_var fv[] = {{"AUTH", "Bearer {{tok}}"}, {"URL", "https://{{c.user}}:{{c.pass}}@h/x"},
                                 {"PAIR", "{{a}}{{b}}"}};
    mask_values mv = {0};
    mask_follow *f;
    snap s;

    snap_make(&s, vars, 3);
    f = mask_follow_new(s.fd, fv, 3);
    cr_assert_not_null(f);
    snap_publish(&s, 0, "Bearer new-token-123");
    snap_publish(&s, 1, "https://alice:pa55-word@h/x");
    snap_publish(&s, 2, "first-halfsecond-half");   /* no telling where a ends */
    cr_assert_eq(mask_follow_poll(f, &mv), 1);
    cr_assert(has(&mv, "Bearer new-token-123"));
    cr_assert(has(&mv, "new-token-123"));
    cr_assert(has(&mv, "https://alice:pa55-word@h/x"));
    cr_assert(has(&mv, "alice"));
    cr_assert(has(&mv, "pa55-word"));
    cr_assert(has(&mv, "first-halfsecond-half"));
    cr_assert_eq(mv.n, 6, "a value its template cannot split is masked whole, and only whole");
    mask_follow_free(f);
    mask_values_free(&mv);
    snap_free(&s);
}

Test(follow, not_a_snapshot)
{
    int fd = memfd_create("not-a-snapshot", 0);

    cr_assert(fd >= 0 && ftruncate(fd, (off_t)HIVE_SNAP_DATA) == 0);
    cr_assert_null(mask_follow_new(fd, NULL, 0));
    close(fd);
}
