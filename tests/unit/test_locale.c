/*
 * Numbers read and written the same in every locale: a program that links
 * libhive and calls setlocale(LC_ALL, "de_DE.UTF-8") (decimal comma) must
 * still read JSON's 1.5 as one and a half.
 *
 * The locale comes from Debian's locales package: when the system has not
 * generated de_DE.UTF-8 (scripts/setup does), the runner generates it into
 * a private directory with localedef and points LOCPATH there. A test that
 * cannot get the locale fails.
 */
#include "testutil.h"

#include <locale.h>
#include <math.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define COMMA_LOCALE "de_DE.UTF-8"

static char private_dir[] = "/tmp/hive-locale-XXXXXX";
static bool made_private;

static bool have_locale(void)
{
    locale_t l = newlocale(LC_ALL_MASK, COMMA_LOCALE, (locale_t)0);

    if (l == (locale_t)0)
        return false;
    freelocale(l);
    return true;
}

/* In the runner, before the tests are forked: they inherit LOCPATH. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    char out[sizeof(private_dir) + 32];
    char prog[] = "localedef", i[] = "-i", de[] = "de_DE", f[] = "-f", utf8[] = "UTF-8";
    char *argv[] = {prog, i, de, f, utf8, out, NULL};
    pid_t pid;
    int status;

    (void)set;
    if (have_locale() || mkdtemp(private_dir) == NULL)
        return;
    made_private = true;
    snprintf(out, sizeof(out), "%s/" COMMA_LOCALE, private_dir);
    if (posix_spawnp(&pid, "localedef", NULL, NULL, argv, environ) == 0)
        waitpid(pid, &status, 0);
    setenv("LOCPATH", private_dir, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    char cmd[sizeof(private_dir) + 16];

    (void)stats;
    if (made_private) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", private_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", private_dir);
    }
}

static void comma_locale(void)
{
    char buf[16];

    cr_assert_not_null(setlocale(LC_ALL, COMMA_LOCALE),
                       "cannot get the locale " COMMA_LOCALE ": install Debian's locales package "
                       "(scripts/setup) so that localedef can generate it");
    /* the locale really has a decimal comma: else this test proves nothing */
    snprintf(buf, sizeof(buf), "%.1f", 1.5);
    cr_assert_str_eq(buf, "1,5");
}

TestSuite(locale, .init = comma_locale);

static void parse_emit(const char *text, double num, const char *printed)
{
    hive_json *v = NULL;
    hive_secret out = HIVE_SECRET_INIT;

    cr_assert_eq(hive_json_parse(&v, text, strlen(text)), HIVE_OK, "%s: %s", text, hive_last_error());
    cr_expect_eq(hive_json_number(v), num, "%s read as %.17g", text, hive_json_number(v));
    cr_assert_eq(hive_json_emit(v, &out, -1), HIVE_OK);
    cr_expect_str_eq(out.data, printed, "%s", text);
    hive_secret_free(&out);
    hive_json_free(&v);
}

Test(locale, json_reads_and_prints_a_decimal_point)
{
    parse_emit("1.5", 1.5, "1.5");
    parse_emit("-0.25", -0.25, "-0.25");
    parse_emit("2.5e-3", 0.0025, "0.0025");
    parse_emit("1e300", 1e300, "1e+300");
    parse_emit("1.7976931348623157e308", 1.7976931348623157e308, "1.7976931348623157e+308");
    parse_emit("0.1", 0.1, "0.1");
    parse_emit("123456789.125", 123456789.125, "123456789.125");
}

Test(locale, a_comma_is_not_a_decimal_point_in_json)
{
    hive_json *v = NULL;

    cr_assert_neq(hive_json_parse(&v, "1,5", 3), HIVE_OK);
}

Test(locale, datetime_seconds_keep_their_fraction)
{
    hive_time t;
    char buf[HIVE_TIME_TEXT];

    cr_assert_eq(hive_time_parse(&t, "1772366400.25", 13), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(t.usec, 250000);
    hive_time_format(buf, &t, true);
    cr_assert_str_eq(buf, "2026-03-01T12:00:00.250000Z");
}

Test(locale, a_credential_with_a_float_expiry_round_trips)
{
    static const char text[] = "{\"id\": \"x\", \"keys\": {\"k\": {\"value\": \"v\", "
                               "\"expires_at\": 1772366400.5}}, \"ratio\": 0.75}";
    hive_json *v = NULL;
    hive_secret out = HIVE_SECRET_INIT;

    cr_assert_eq(hive_json_parse(&v, text, sizeof(text) - 1), HIVE_OK);
    cr_assert_eq(hive_json_emit(v, &out, -1), HIVE_OK);
    cr_assert_str_eq(out.data, text);
    hive_secret_free(&out);
    hive_json_free(&v);
}

Test(locale, etcd_timeout_option_keeps_its_fraction)
{
    char home[] = "/tmp/hive-locale-home-XXXXXX";
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    hive_storage *s = NULL;
    char cmd[64];

    cr_assert_not_null(mkdtemp(home));
    fo.home = home;
    setenv("HIVE_CREDENTIAL_KEY", "", 1);
    /* 0.5 s read as 0 would be refused as shorter than 0.1 s */
    cr_expect_eq(hive_etcd_storage_open(&s, "etcd://127.0.0.1:9/p?timeout=0.5", &fo), HIVE_OK, "%s",
                 hive_last_error());
    hive_storage_free(&s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}
