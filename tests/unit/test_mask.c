/*
 * hive-run --mask's matcher (launcher/maskmatch.c): what a stream writes
 * for secrets that overlap, begin one another or end the output, fed in
 * every way the named cases can be cut. tests/fuzz/fuzz_mask.c compares
 * it with a naive search over random inputs.
 */
#include "maskmatch.h"
#include "masktest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define M MASK_MARKER

static masker *make(const char *const *secrets)
{
    size_t lens[8], n = 0;
    masker *m;

    while (secrets[n] != NULL) {
        lens[n] = strlen(secrets[n]);
        n++;
    }
    m = masker_new(secrets, lens, n, 6);
    cr_assert_not_null(m);
    return m;
}

/*
 * What a stream over m writes for script: its text, fed in chunks cut at
 * each '|', a '~' a silence (a held tail under 4 bytes released, as
 * hive-run does after 15 ms), then the end.
 */
static const char *feed(const masker *m, const char *script)
{
    static outbuf out;
    mask_stream s;
    const char *p = script;

    out.n = 0;
    out.b[0] = '\0';
    cr_assert(mask_stream_init(&s, m, to_outbuf, &out));
    while (*p != '\0') {
        size_t k = strcspn(p, "|~");
        mask_feed(&s, p, k);
        p += k;
        if (*p == '~')
            mask_release(&s, 4);
        if (*p != '\0')
            p++;
    }
    mask_finish(&s);
    return out.b;
}

/* The same, masking the NULL-terminated secrets. */
static const char *run(const char *const *secrets, const char *script)
{
    masker *m = make(secrets);
    const char *out = feed(m, script);

    masker_free(m);
    return out;
}

/* Every way to cut text in two and in three chunks gives want. */
static void check_every_cut(const char *const *secrets, const char *text, const char *want)
{
    masker *m = make(secrets);
    size_t n = strlen(text);
    char script[512];

    cr_assert_str_eq(feed(m, text), want, "text %s", text);
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            snprintf(script, sizeof(script), "%.*s|%.*s|%s", (int)i, text, (int)(j - i), text + i, text + j);
            cr_assert_str_eq(feed(m, script), want, "fed as %s", script);
        }
    }
    masker_free(m);
}

Test(mask, secret_that_begins_another_ends_the_output)
{
    const char *const s[] = {"tok-123456", "tok-123456@host", NULL};

    check_every_cut(s, "x tok-123456", "x " M);
    check_every_cut(s, "tok-123456", M);
    check_every_cut(s, "tok-123456@host tok-123456", M " " M);
    /* a prefix of a secret that is no secret is let out at the end */
    check_every_cut(s, "x tok-12345", "x tok-12345");
}

Test(mask, unpadded_base64_ends_the_output)
{
    /* "abcdef1" is 7 bytes: base64 "YWJjZGVmMQ==", base64url the same */
    const char *const s[] = {"abcdef1", NULL};

    check_every_cut(s, "b64: YWJjZGVmMQ", "b64: " M);
    check_every_cut(s, "b64: YWJjZGVmMQ=", "b64: " M "=");
    check_every_cut(s, "b64: YWJjZGVmMQ==", "b64: " M);
    check_every_cut(s, "YWJjZGVmMQ", M);
}

Test(mask, a_secret_whole_inside_a_held_tail_at_the_end)
{
    /* the output ends inside what could still be the first one, with the
     * second one whole in it */
    const char *const s[] = {"ab12ef-1a", "12ef-1", NULL};

    check_every_cut(s, "% ab12ef-1", "% ab" M);
}

Test(mask, overlapping_secrets_are_masked_as_one)
{
    const char *const s[] = {"abcdef12", "ef12ghijklmn", NULL};

    check_every_cut(s, "x abcdef12ghijklmn y", "x " M " y");
    check_every_cut(s, "x abcdef12ghijklmn", "x " M);
    /* one inside the other */
    check_every_cut(s, "<cdef12ghij>", "<cdef12ghij>");
    check_every_cut(s, "<abcdef12>", "<" M ">");
}

Test(mask, a_chain_of_overlaps_is_one_run)
{
    const char *const s[] = {"abcdef12", "ef12ghijklmn", "klmn-tail", NULL};

    check_every_cut(s, "x abcdef12ghijklmn-tail y", "x " M " y");
    check_every_cut(s, "x abcdef12ghijklmn-tail", "x " M);
}

Test(mask, secrets_that_only_touch_get_a_marker_each)
{
    const char *const s[] = {"abcdef12", "ef12ghijklmn", NULL};

    check_every_cut(s, "abcdef12abcdef12", M M);
    check_every_cut(s, "abcdef12ef12ghijklmn.", M M ".");
}

Test(mask, one_byte_at_a_time_with_silences)
{
    const char *const s[] = {"tok-123456", NULL};

    /* a tail under 4 bytes goes out on silence, kept as context: masked
     * from the fourth byte */
    cr_assert_str_eq(run(s, "<~t~o~k~-~1~2~3~4~5~6~>"), "<tok" M ">");
    /* the same without the silences */
    cr_assert_str_eq(run(s, "<|t|o|k|-|1|2|3|4|5|6|>"), "<" M ">");
}

Test(mask, silence_inside_a_masked_run)
{
    /* "12" may begin the second secret: held, written on silence as part
     * of the first one's run, which the second one then continues */
    const char *const s[] = {"abcdef12", "12wxyz", NULL};

    cr_assert_str_eq(run(s, "<abcdef12~wxyz>"), "<" M ">");
    cr_assert_str_eq(run(s, "<abcdef12~~>"), "<" M ">");
    /* the second one's third byte went out on silence, before it was
     * known to be one: a run of its own after it */
    cr_assert_str_eq(run(s, "<abcdef1~2~w~x~yz>"), "<" M "w" M ">");
}

Test(mask, a_held_tail_then_a_long_chunk)
{
    /* longer than any pattern: the held tail is searched with the start of
     * the chunk, the rest of the chunk in place */
    const char *const s[] = {"abcdef12", "ef12ghijklmn", NULL};
    char text[600], want[600];

    /* "abcdef" | "12ghijklmn", 283 dots, "abcdef12", 291 dots */
    memset(text, '.', sizeof(text));
    memcpy(text, "abcdef|12ghijklmn", 17);
    memcpy(text + 300, "abcdef12", 8);
    text[sizeof(text) - 1] = '\0';
    memset(want, '.', sizeof(want));
    memcpy(want, M, 8);
    memcpy(want + 8 + 283, M, 8);
    want[8 + 283 + 8 + 291] = '\0';
    cr_assert_str_eq(run(s, text), want);
}

Test(mask, no_secrets_no_change)
{
    const char *const none[] = {NULL};
    const char *const shorts[] = {"abc12", NULL};   /* under the 6 bytes asked */

    cr_assert_str_eq(run(none, "plain|text~ as| it is"), "plaintext as it is");
    cr_assert_str_eq(run(shorts, "abc12 abc12"), "abc12 abc12");
}

Test(mask, encodings)
{
    /* "a b/c+d" and its encodings (as tests/cli/test_mask.py lists them) */
    const char *const s[] = {"a b/c+d", NULL};

    check_every_cut(s, "[YSBiL2MrZA==][YSBiL2MrZA][YSBiL2MrZA]", "[" M "][" M "][" M "]");
    check_every_cut(s, "[6120622f632b64][6120622F632B64]", "[" M "][" M "]");
    check_every_cut(s, "[a%20b%2Fc%2Bd][a+b%2Fc%2Bd]", "[" M "][" M "]");
}
