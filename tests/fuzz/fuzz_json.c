/* JSON: parse, emit, parse the output, emit again: the same text, compact
 * or indented. */
#include "fuzz.h"

#include <hive/hive.h>

static char *emit(const char *text, size_t len, size_t *out_len, int indent)
{
    hive_json *v = NULL;
    char *out = NULL;

    if (hive_json_parse(&v, text, len) != HIVE_OK)
        return NULL;
    FUZZ_CHECK(hive_json_emit(&out, out_len, v, indent) == HIVE_OK);
    hive_json_free(&v);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    char *t1 = emit((const char *)data, size, &n1, -1);
    char *t2, *t3, *t4;

    if (t1 == NULL)
        return 0;
    t2 = emit(t1, n1, &n2, -1);
    FUZZ_CHECK(t2 != NULL && n2 == n1 && memcmp(t1, t2, n1) == 0);
    t3 = emit(t1, n1, &n3, 2);
    FUZZ_CHECK(t3 != NULL);
    t4 = emit(t3, n3, &n4, -1);
    FUZZ_CHECK(t4 != NULL && n4 == n1 && memcmp(t1, t4, n1) == 0);
    hive_free_secret(t1, n1 + 1);
    hive_free_secret(t2, n2 + 1);
    hive_free_secret(t3, n3 + 1);
    hive_free_secret(t4, n4 + 1);
    return 0;
}
