/*
 * The per-thread detail message: prefixing, cutting to fit.
 */
#include "testutil.h"

#include <pthread.h>

/* library-internal (store/src/internal.h) */
hive_rc hive__fail_prefix(hive_rc rc, const char *fmt, ...);
void hive__clear_error(void);

Test(error, prefix_without_a_detail_uses_the_generic_text)
{
    /* The generic text is a short string literal: copying it must not read
     * past its end (ASan: global-buffer-overflow). */
    hive__clear_error();
    cr_assert_eq(hive__fail_prefix(HIVE_ERR_NETWORK, "Failed to refresh '%s'", "x"), HIVE_ERR_NETWORK);
    cr_assert_str_eq(hive_last_error(), "Failed to refresh 'x': no answer: connection refused, time-out, TLS failure");
}

Test(error, prefix_keeps_the_old_detail)
{
    hive_fail(HIVE_ERR_IO, "disk on fire");
    hive__fail_prefix(HIVE_ERR_IO, "saving '%s'", "a");
    cr_assert_str_eq(hive_last_error(), "saving 'a': disk on fire");
}

Test(error, a_message_too_long_is_cut_visibly_on_a_character)
{
    char id[1100];
    const char *m;
    size_t n;

    /* 'é' is two bytes: the cut must not leave half of one */
    for (size_t i = 0; i + 2 < sizeof(id); i += 2)
        memcpy(id + i, "\xc3\xa9", 2);
    id[sizeof(id) - 2] = '\0';
    hive_fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    m = hive_last_error();
    n = strlen(m);
    cr_assert_lt(n, 1024);
    cr_assert_gt(n, 1000);
    cr_assert_str_eq(m + n - 3, "...");
    cr_assert_eq((unsigned char)m[n - 4], 0xa9, "cut inside a character");
}

Test(error, a_long_prefix_is_cut_visibly)
{
    char what[700];

    memset(what, 'p', sizeof(what) - 1);
    what[sizeof(what) - 1] = '\0';
    hive_fail(HIVE_ERR_IO, "root cause");
    hive__fail_prefix(HIVE_ERR_IO, "%s", what);
    cr_assert(strstr(hive_last_error(), "ppp...: root cause") != NULL, "%s", hive_last_error());
}

/* The codes and their comments in hive/common.h: "    HIVE_X = N,   /\* text *\/". */
static size_t read_promises(char texts[][128], size_t max)
{
    char path[4096];
    char line[512];
    size_t n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/../../store/include/hive/common.h", data_dir());
    f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned num;
        int end = 0;
        char *open = strstr(line, "/* "), *close = strstr(line, " */");

        if (sscanf(line, " HIVE_%*[A-Z_] = %u%n", &num, &end) != 1 || end == 0)
            continue;
        cr_assert_eq(num, n, "common.h: code %u out of order (expected %zu)", num, n);
        cr_assert(open != NULL && close != NULL && close > open, "common.h: code %u has no comment", num);
        cr_assert_lt(n, max);
        snprintf(texts[n], sizeof(texts[n]), "%.*s", (int)(close - open - 3), open + 3);
        n++;
    }
    fclose(f);
    return n;
}

Test(error, strerror_says_what_common_h_promises_for_every_code)
{
    char texts[64][128];
    size_t n = read_promises(texts, 64);

    cr_assert_eq(n, (size_t)HIVE_ERR_IN_DOUBT + 1, "common.h lists %zu codes", n);
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(hive_strerror((hive_rc)i), texts[i], "code %zu", i);
}

Test(error, strerror_of_an_unknown_code)
{
    cr_assert_str_eq(hive_strerror((hive_rc)(HIVE_ERR_IN_DOUBT + 1)), "unknown error");
    cr_assert_str_eq(hive_strerror((hive_rc)-1), "unknown error");
}

Test(error, last_error_without_a_failure)
{
    hive__clear_error();
    cr_assert_str_eq(hive_last_error(), "unknown error");
}

Test(error, fail_returns_its_code_and_sets_the_detail)
{
    /* hive_fail is for providers and storages written outside the library */
    cr_assert_eq(hive_fail(HIVE_ERR_REFRESH, "provider %s answered %d", "acme", 503), HIVE_ERR_REFRESH);
    cr_assert_str_eq(hive_last_error(), "provider acme answered 503");
    cr_assert_eq(hive_fail(HIVE_OK, "%s", ""), HIVE_OK);
    cr_assert_str_eq(hive_last_error(), "unknown error");
}

static void *fail_in_thread(void *arg)
{
    (void)arg;
    hive_fail(HIVE_ERR_IO, "another thread's failure");
    return NULL;
}

Test(error, the_detail_is_per_thread)
{
    pthread_t t;

    hive_fail(HIVE_ERR_NOT_FOUND, "mine");
    cr_assert_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_str_eq(hive_last_error(), "mine");
}
