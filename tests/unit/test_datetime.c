/*
 * Datetimes: every form Hive writes or pydantic accepts.
 */
#include "testutil.h"

static void roundtrip(const char *in, const char *zulu, const char *iso)
{
    hive_time t;
    char buf[HIVE_TIME_TEXT];

    cr_assert_eq(hive_time_parse(&t, in, strlen(in)), HIVE_OK, "%s: %s", in, hive_last_error());
    hive_time_format(buf, &t, true);
    cr_expect_str_eq(buf, zulu, "%s", in);
    hive_time_format(buf, &t, false);
    cr_expect_str_eq(buf, iso, "%s", in);
}

Test(datetime, forms_hive_writes_and_accepts)
{
    roundtrip("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00");
    roundtrip("2026-03-01T12:00:00+00:00", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00");
    roundtrip("2026-03-01T12:00:00.5Z", "2026-03-01T12:00:00.500000Z", "2026-03-01T12:00:00.500000+00:00");
    roundtrip("2026-03-01T12:00:00.123456789Z", "2026-03-01T12:00:00.123456Z",
              "2026-03-01T12:00:00.123456+00:00");
    roundtrip("2026-03-01T14:30:00+02:30", "2026-03-01T14:30:00+02:30", "2026-03-01T14:30:00+02:30");
    roundtrip("2026-03-01T12:00:00-0700", "2026-03-01T12:00:00-07:00", "2026-03-01T12:00:00-07:00");
    roundtrip("2026-03-01 12:00:00", "2026-03-01T12:00:00", "2026-03-01T12:00:00");
    roundtrip("2026-03-01T12:00", "2026-03-01T12:00:00", "2026-03-01T12:00:00");
    roundtrip("2026-03-01", "2026-03-01T00:00:00", "2026-03-01T00:00:00");
    roundtrip("2024-02-29T23:59:59z", "2024-02-29T23:59:59Z", "2024-02-29T23:59:59+00:00");
    roundtrip("1772366400", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00");
    roundtrip("1772366400000", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00+00:00");
    roundtrip("1772366400.25", "2026-03-01T12:00:00.250000Z", "2026-03-01T12:00:00.250000+00:00");
}

Test(datetime, offsets_and_naive_compare_as_instants)
{
    hive_time a, b, c;

    cr_assert_eq(hive_time_parse(&a, "2026-03-01T12:00:00Z", 20), HIVE_OK);
    cr_assert_eq(hive_time_parse(&b, "2026-03-01T14:00:00+02:00", 25), HIVE_OK);
    cr_assert_eq(hive_time_parse(&c, "2026-03-01T12:00:00", 19), HIVE_OK);
    cr_assert_eq(hive_time_cmp(&a, &b), 0);
    cr_assert_eq(hive_time_cmp(&a, &c), 0);
    cr_assert_eq(a.sec, 1772366400);
}

Test(datetime, rejects_what_is_not_a_datetime)
{
    static const char *const bad[] = {
        "", "x", "2026-13-01", "2026-02-30", "2026-03-01T24:00:00", "2026-03-01T12:60",
        "2026-03-01T12:00:00+25:00", "2026-03-01T12:00:00Q", "2026/03/01", "0000-01-01",
        "2026-03-01T12:00:00.Z", "2026-3-1", "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hive_time t;
        cr_expect_neq(hive_time_parse(&t, bad[i], strlen(bad[i])), HIVE_OK, "%s", bad[i]);
    }
}

Test(datetime, format_writes_nothing_for_what_is_no_datetime)
{
    /* out of the documented ranges: no text, never text cut to fit (or
     * written past the buffer) */
    static const hive_time bad[] = {
        {0, -2147483647 - 1, 0, HIVE_TIME_UTC},
        {0, 1000000, 0, HIVE_TIME_UTC},
        {0, 0, 2147483647, HIVE_TIME_OFFSET},
        {INT64_MAX, 999999, 86399, HIVE_TIME_OFFSET},
        {INT64_MIN, 0, 0, HIVE_TIME_NAIVE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[HIVE_TIME_TEXT];
        memset(buf, 'x', sizeof(buf));
        hive_time_format(buf, &bad[i], true);
        cr_expect_str_eq(buf, "", "case %zu", i);
    }
}

Test(datetime, format_of_the_extremes_fits)
{
    hive_time t = {253402300799LL, 999999, -86340, HIVE_TIME_OFFSET};
    char buf[HIVE_TIME_TEXT];

    hive_time_format(buf, &t, true);
    cr_expect_str_eq(buf, "9999-12-31T00:00:59.999999-23:59");
}
