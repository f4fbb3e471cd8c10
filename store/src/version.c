/*
 * version.c - the version of the library that is running.
 */
#include "internal.h"

#include "hive/version.h"

const char *hive_version(void)
{
    return HIVE_VERSION;
}

unsigned hive_version_number(void)
{
    return HIVE_VERSION_NUMBER;
}
