/* Datetimes: what parses, written either way (credential "Z" or index
 * "+00:00"), parses back to the same instant and form. */
#include "fuzz.h"

#include <hive/hive.h>

static void round_trip(const hive_time *t, bool zulu)
{
    char text[HIVE_TIME_TEXT];
    hive_time u;

    hive_time_format(text, t, zulu);
    FUZZ_CHECK(hive_time_parse(&u, text, strlen(text)) == HIVE_OK);
    FUZZ_CHECK(u.sec == t->sec && u.usec == t->usec && u.offset == t->offset && u.form == t->form);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_time t;

    if (hive_time_parse(&t, (const char *)data, size) != HIVE_OK)
        return 0;
    FUZZ_CHECK(t.usec >= 0 && t.usec <= 999999);
    round_trip(&t, true);
    round_trip(&t, false);
    return 0;
}
