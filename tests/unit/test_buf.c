/*
 * The growable buffer (store/src/buf.c): an append too large to hold fails
 * the buffer cleanly, whatever its size, and finishing it says so.
 */
#include "testutil.h"
#include "buf.h"

#include <stdint.h>

Test(buf, appends_and_finishes)
{
    hive_buf b = {0};
    char *out = NULL;
    size_t len = 0;

    hive__buf_puts(&b, "abc");
    hive__buf_putc(&b, '-');
    for (int i = 0; i < 100; i++)
        hive__buf_puts(&b, "0123456789");
    cr_assert_eq(hive__buf_finish(&b, &out, &len), HIVE_OK);
    cr_expect_eq(len, 1004);
    cr_expect_eq(strncmp(out, "abc-0123456789", 14), 0);
    cr_expect_eq(out[len], '\0');
    cr_expect_null(b.data, "the buffer is left empty");
    hive__free_secret(out, len + 1);
}

Test(buf, empty_finishes_as_an_empty_string)
{
    hive_buf b = {0};
    char *out = NULL;
    size_t len = 1;

    cr_assert_eq(hive__buf_finish(&b, &out, &len), HIVE_OK);
    cr_expect_str_eq(out, "");
    cr_expect_eq(len, 0);
    free(out);
}

static void expect_failed(hive_buf *b)
{
    char *out = NULL;

    cr_expect(b->failed);
    /* later appends are ignored, and finishing reports the failure */
    hive__buf_puts(b, "more");
    cr_assert_eq(hive__buf_finish(b, &out, NULL), HIVE_ERR_NOMEM);
    cr_expect_str_eq(hive_last_error(), "out of memory");
    cr_expect_null(out);
    cr_expect_null(b->data, "what it held is freed");
}

Test(buf, an_append_whose_size_wraps_around_fails_the_buffer)
{
    hive_buf b = {0};

    hive__buf_puts(&b, "secret");
    /* len + n + 1 is 0 in size_t: it must not pass for "fits" */
    hive__buf_append(&b, "x", SIZE_MAX - b.len);
    expect_failed(&b);
}

Test(buf, an_append_larger_than_any_capacity_fails_the_buffer)
{
    hive_buf b = {0};

    hive__buf_puts(&b, "secret");
    hive__buf_append(&b, "x", SIZE_MAX / 2 + 1);
    expect_failed(&b);
}
