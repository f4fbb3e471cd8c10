/*
 * datetime.c - the datetimes Hive's pydantic models read and write.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Python's datetime covers years 1..9999. */
#define MIN_SEC (-62135596800LL)   /* 0001-01-01T00:00:00Z */
#define MAX_SEC (253402300799LL)   /* 9999-12-31T23:59:59Z */

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Read exactly n digits at *p. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;

    if (end - *p < n)
        return false;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static hive_rc bad(void)
{
    return hive__fail(HIVE_ERR_INVALID, "invalid datetime (expected ISO 8601, "
                      "e.g. 2026-03-01T12:00:00Z, or Unix seconds)");
}

hive_rc hive_time_from_number(hive_time *out, double seconds)
{
    double whole;
    double frac;
    int64_t sec;
    int64_t usec;

    hive__clear_error();
    if (!isfinite(seconds))
        return bad();
    /* pydantic: values above 2e10 are milliseconds. */
    if (fabs(seconds) > 2e10)
        seconds /= 1000.0;
    frac = modf(seconds, &whole);
    if (whole < (double)MIN_SEC || whole > (double)MAX_SEC)
        return hive__fail(HIVE_ERR_INVALID, "datetime out of range");
    sec = (int64_t)whole;
    usec = (int64_t)llround(frac * 1e6);
    if (usec < 0) {
        usec += 1000000;
        sec -= 1;
    }
    if (usec >= 1000000) {
        usec -= 1000000;
        sec += 1;
    }
    out->sec = sec;
    out->usec = (int32_t)usec;
    out->offset = 0;
    out->form = HIVE_TIME_UTC;
    return HIVE_OK;
}

static bool numeric_text(const char *s, size_t len)
{
    size_t i = 0;
    bool digit = false;
    bool dot = false;

    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    for (; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digit = true;
        else if (s[i] == '.' && !dot)
            dot = true;
        else
            return false;
    }
    return digit;
}

hive_rc hive_time_parse(hive_time *out, const char *text, size_t len)
{
    const char *p = text;
    const char *end = text + len;
    int y, mo, d, h = 0, mi = 0, s = 0;
    int32_t usec = 0;
    int32_t offset = 0;
    hive_time_form form = HIVE_TIME_NAIVE;
    int64_t sec;

    hive__clear_error();
    if (text == NULL || len == 0 || len > 64)
        return bad();
    if (numeric_text(text, len)) {
        char buf[72];
        memcpy(buf, text, len);
        buf[len] = '\0';
        return hive_time_from_number(out, hive__strtod(buf, NULL));
    }
    if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &d))
        return bad();
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return hive__fail(HIVE_ERR_INVALID, "invalid datetime: no such date");
    if (p < end) {
        if (*p != 'T' && *p != 't' && *p != ' ' && *p != '_')
            return bad();
        p++;
        if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi))
            return bad();
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &s))
                return bad();
            if (p < end && (*p == '.' || *p == ',')) {
                int n = 0;
                p++;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (n < 6)
                        usec = usec * 10 + (*p - '0');
                    n++;
                    p++;
                }
                if (n == 0)
                    return bad();
                for (; n < 6; n++)
                    usec *= 10;
            }
        }
        if (h > 23 || mi > 59 || s > 59)
            return hive__fail(HIVE_ERR_INVALID, "invalid datetime: no such time");
        if (p < end) {
            if (*p == 'Z' || *p == 'z') {
                p++;
                form = HIVE_TIME_UTC;
            } else if (*p == '+' || *p == '-') {
                int sign = *p++ == '-' ? -1 : 1;
                int oh, om = 0;
                if (!digits(&p, end, 2, &oh))
                    return bad();
                /* +HH:MM or +HHMM, as pydantic reads it: never +HH alone */
                if (p < end && *p == ':')
                    p++;
                if (!digits(&p, end, 2, &om))
                    return bad();
                if (oh > 23 || om > 59)
                    return hive__fail(HIVE_ERR_INVALID, "invalid datetime: bad UTC offset");
                offset = sign * (oh * 3600 + om * 60);
                form = offset == 0 ? HIVE_TIME_UTC : HIVE_TIME_OFFSET;
            }
        }
        if (p != end)
            return bad();
    }
    sec = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s - offset;
    out->sec = sec;
    out->usec = usec;
    out->offset = offset;
    out->form = form;
    return HIVE_OK;
}

bool hive__parse_seconds(double *out, const char *text, double max)
{
    char *end;
    double v;

    if (text == NULL || *text == '\0')
        return false;
    v = hive__strtod(text, &end);
    if (*end != '\0' || !(v >= 0 && v <= max))
        return false;
    *out = v;
    return true;
}

hive_time hive_time_now(void)
{
    struct timespec ts;
    hive_time t;

    clock_gettime(CLOCK_REALTIME, &ts);
    t.sec = ts.tv_sec;
    t.usec = (int32_t)(ts.tv_nsec / 1000);
    t.offset = 0;
    t.form = HIVE_TIME_UTC;
    return t;
}

void hive_time_format(char buf[HIVE_TIME_TEXT], const hive_time *t, bool zulu)
{
    int64_t local;
    int64_t days;
    int64_t rem;
    int y, m, d;
    int n;

    /* Outside what Python's datetime holds (years 1..9999, offsets under a
     * day, 0..999999 us) is no datetime: nothing, rather than text cut to
     * fit. Inside, the longest text is 32 bytes: it always fits. */
    if (t == NULL || t->form == HIVE_TIME_NONE || t->sec < MIN_SEC - 86400 || t->sec > MAX_SEC + 86400 ||
        t->usec < 0 || t->usec > 999999 || t->offset <= -86400 || t->offset >= 86400) {
        buf[0] = '\0';
        return;
    }
    local = t->sec + (t->form == HIVE_TIME_OFFSET ? t->offset : 0);
    days = local / 86400;
    rem = local % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    civil_from_days(days, &y, &m, &d);
    n = snprintf(buf, HIVE_TIME_TEXT, "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d,
                 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    if (t->usec != 0)
        n += snprintf(buf + n, HIVE_TIME_TEXT - (size_t)n, ".%06d", (int)t->usec);
    if (t->form == HIVE_TIME_UTC) {
        snprintf(buf + n, HIVE_TIME_TEXT - (size_t)n, "%s", zulu ? "Z" : "+00:00");
    } else if (t->form == HIVE_TIME_OFFSET) {
        int off = t->offset < 0 ? -t->offset : t->offset;
        snprintf(buf + n, HIVE_TIME_TEXT - (size_t)n, "%c%02d:%02d", t->offset < 0 ? '-' : '+',
                 off / 3600, off / 60 % 60);
    }
}

int hive_time_cmp(const hive_time *a, const hive_time *b)
{
    bool an = a->form == HIVE_TIME_NONE;
    bool bn = b->form == HIVE_TIME_NONE;

    if (an || bn)
        return an == bn ? 0 : (an ? 1 : -1);
    if (a->sec != b->sec)
        return a->sec < b->sec ? -1 : 1;
    if (a->usec != b->usec)
        return a->usec < b->usec ? -1 : 1;
    return 0;
}
