/* Credential JSON: parse, emit, parse the output, emit again: the same
 * text (what hive writes, it reads back unchanged). */
#include "fuzz.h"

#include <hive/hive.h>

static hive_secret emit(const char *text, size_t len)
{
    hive_cred *c = NULL;
    hive_secret out = HIVE_SECRET_INIT;

    if (hive_cred_parse(&c, text, len) != HIVE_OK)
        return out;
    FUZZ_CHECK(hive_cred_emit(c, &out) == HIVE_OK);
    hive_cred_free(&c);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_secret t1 = emit((const char *)data, size);
    hive_secret t2;

    if (t1.data == NULL)
        return 0;
    t2 = emit(t1.data, t1.len);
    FUZZ_CHECK(t2.data != NULL && t2.len == t1.len && memcmp(t1.data, t2.data, t1.len) == 0);
    hive_secret_free(&t1);
    hive_secret_free(&t2);
    return 0;
}
