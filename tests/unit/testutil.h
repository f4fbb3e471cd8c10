/*
 * testutil.h - helpers for the unit tests.
 */
#ifndef HIVE_TESTUTIL_H
#define HIVE_TESTUTIL_H

#include <hive/hive.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test data directory, tests/data (fixtures and vectors). */
static inline const char *data_dir(void)
{
    const char *env = getenv("HIVE_TEST_DATA");
    return env && *env ? env : HIVE_TEST_DATA_DEFAULT;
}

/* Read a whole file; the caller frees. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static inline char *data_file(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", data_dir(), rel);
    return slurp(path, len);
}

static inline hive_json *data_json(const char *rel)
{
    size_t len;
    char *text = data_file(rel, &len);
    hive_json *v = NULL;
    cr_assert_eq(hive_json_parse(&v, text, len), HIVE_OK, "%s: %s", rel, hive_last_error());
    free(text);
    return v;
}

static inline const char *jstr(const hive_json *obj, const char *key)
{
    const char *s = hive_json_string(hive_json_get(obj, key), NULL);
    cr_assert_not_null(s, "missing string %s", key);
    return s;
}

/* Save an api_key credential id whose api_key is value. */
static inline void save_api_key(hive_storage *s, const char *id, const char *value)
{
    hive_cred *c = NULL;
    cr_assert_eq(hive_cred_new(&c, id, "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "api_key", value, strlen(value), NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(s, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
}

#endif
