/* JSON: parse, emit, parse the output, emit again: the same text, compact
 * or indented. */
#include "fuzz.h"

#include <hive/hive.h>

static hive_secret emit(const char *text, size_t len, int indent)
{
    hive_json *v = NULL;
    hive_secret out = HIVE_SECRET_INIT;

    if (hive_json_parse(&v, text, len) != HIVE_OK)
        return out;
    FUZZ_CHECK(hive_json_emit(v, &out, indent) == HIVE_OK);
    hive_json_free(&v);
    return out;
}

static bool same(const hive_secret *a, const hive_secret *b)
{
    return a->data != NULL && b->data != NULL && a->len == b->len &&
           memcmp(a->data, b->data, a->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_secret t1 = emit((const char *)data, size, -1);
    hive_secret t2, t3, t4;

    if (t1.data == NULL)
        return 0;
    t2 = emit(t1.data, t1.len, -1);
    FUZZ_CHECK(same(&t1, &t2));
    t3 = emit(t1.data, t1.len, 2);
    FUZZ_CHECK(t3.data != NULL);
    t4 = emit(t3.data, t3.len, -1);
    FUZZ_CHECK(same(&t1, &t4));
    hive_secret_free(&t1);
    hive_secret_free(&t2);
    hive_secret_free(&t3);
    hive_secret_free(&t4);
    return 0;
}
