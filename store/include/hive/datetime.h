/*
 * hive/datetime.h - datetimes as Hive (pydantic) reads and writes them.
 *
 * Threads: these functions share nothing and may run in several threads
 * at once.
 */
#ifndef HIVE_DATETIME_H
#define HIVE_DATETIME_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hive_time_form {
    HIVE_TIME_NONE = 0,   /* null */
    HIVE_TIME_UTC,        /* aware, offset zero: written with Z */
    HIVE_TIME_OFFSET,     /* aware, another offset: written as +HH:MM */
    HIVE_TIME_NAIVE       /* no zone: written bare, compared as UTC */
} hive_time_form;

typedef struct hive_time {
    int64_t sec;          /* the instant, Unix seconds (naive: read as UTC) */
    int32_t usec;         /* 0..999999 */
    int32_t offset;       /* seconds east of UTC (HIVE_TIME_OFFSET only) */
    hive_time_form form;
} hive_time;

/* Longest text hive_time_format writes, with its NUL. */
#define HIVE_TIME_TEXT 40

/*
 * Parse what pydantic accepts for a datetime: YYYY-MM-DD[T ]HH:MM[:SS[.f]]
 * with Z, +HH:MM, +HHMM or +HH, or none; a bare date; or Unix seconds as
 * text (milliseconds above 2e10, as pydantic does).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_time_parse(hive_time *out, const char *text, size_t len);

/* Unix seconds (and a fraction) as pydantic reads a JSON number. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_time_from_number(hive_time *out, double seconds);

/* The current time, UTC, to the microsecond. */
HIVE_EXPORT hive_time hive_time_now(void);

/*
 * Write t into buf. zulu: as the credential JSON writes it ("Z" for UTC);
 * otherwise as Python's isoformat() ("+00:00"), as the index writes it.
 * HIVE_TIME_NONE writes an empty string.
 */
HIVE_EXPORT void hive_time_format(char buf[HIVE_TIME_TEXT], const hive_time *t, bool zulu);

/* <0, 0, >0 as a is before, at, after b (instants; NONE sorts last). */
HIVE_EXPORT int hive_time_cmp(const hive_time *a, const hive_time *b);

#ifdef __cplusplus
}
#endif
#endif
