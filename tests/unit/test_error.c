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

/* Every code's text, as hive/common.h promises it after the code. */
Test(error, strerror_gives_the_promised_text_for_every_code)
{
    static const struct {
        hive_rc rc;
        const char *text;
    } codes[] = {
        {HIVE_OK, "success"},
        {HIVE_ERR_NOMEM, "out of memory"},
        {HIVE_ERR_INVALID, "invalid argument"},
        {HIVE_ERR_NOT_FOUND, "credential not found"},
        {HIVE_ERR_KEY_NOT_FOUND, "key not found in credential"},
        {HIVE_ERR_NO_KEY, "no encryption key configured"},
        {HIVE_ERR_BAD_KEY, "encryption key is not a valid Fernet key"},
        {HIVE_ERR_DECRYPT, "token could not be decrypted"},
        {HIVE_ERR_FORMAT, "not a valid credential"},
        {HIVE_ERR_IO, "input/output error"},
        {HIVE_ERR_PERM, "unsafe permissions or access denied"},
        {HIVE_ERR_BAD_ID, "invalid credential id"},
        {HIVE_ERR_TOO_LARGE, "input too large"},
        {HIVE_ERR_READ_ONLY, "storage is read-only"},
        {HIVE_ERR_LOCK, "could not lock the store"},
        {HIVE_ERR_CONFLICT, "credential id conflict"},
        {HIVE_ERR_RANDOM, "no randomness available"},
        {HIVE_ERR_UNSUPPORTED, "not supported"},
        {HIVE_ERR_NETWORK, "network error"},
        {HIVE_ERR_REFRESH, "refresh failed"},
        {HIVE_ERR_REAUTH, "re-authorization required"},
        {HIVE_ERR_CHANGED, "changed by another writer"},
        {HIVE_ERR_IN_DOUBT, "refresh token in doubt"},
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);

    for (size_t i = 0; i < n; i++) {
        cr_assert_eq((size_t)codes[i].rc, i, "the codes are numbered 0..%zu in order", n - 1);
        cr_assert_str_eq(hive_strerror(codes[i].rc), codes[i].text);
    }
    /* one past the last, and a negative number: never NULL */
    cr_assert_str_eq(hive_strerror((hive_rc)n), "unknown error");
    cr_assert_str_eq(hive_strerror((hive_rc)-1), "unknown error");
}

Test(error, no_message_after_a_clear)
{
    hive_fail(HIVE_ERR_IO, "stale");
    hive__clear_error();
    cr_assert_str_eq(hive_last_error(), "");
}

Test(error, fail_returns_its_code_and_sets_the_detail)
{
    /* hive_fail is for providers and storages written outside the library */
    cr_assert_eq(hive_fail(HIVE_ERR_REFRESH, "provider %s answered %d", "acme", 503), HIVE_ERR_REFRESH);
    cr_assert_str_eq(hive_last_error(), "provider acme answered 503");
    cr_assert_eq(hive_fail(HIVE_OK, "%s", ""), HIVE_OK);
    cr_assert_str_eq(hive_last_error(), "");
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
