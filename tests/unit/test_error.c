/*
 * The per-thread detail message: prefixing, cutting to fit.
 */
#include "testutil.h"

/* library-internal (store/src/internal.h) */
hive_rc hive__fail_prefix(hive_rc rc, const char *fmt, ...);
void hive__clear_error(void);

Test(error, prefix_without_a_detail_uses_the_generic_text)
{
    /* The generic text is a short string literal: copying it must not read
     * past its end (ASan: global-buffer-overflow). */
    hive__clear_error();
    cr_assert_eq(hive__fail_prefix(HIVE_ERR_NETWORK, "Failed to refresh '%s'", "x"), HIVE_ERR_NETWORK);
    cr_assert_str_eq(hive_last_error(), "Failed to refresh 'x': network error");
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
