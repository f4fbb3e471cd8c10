/* Credential JSON: parse, emit, parse the output, emit again: the same
 * text (what hive writes, it reads back unchanged). */
#include "fuzz.h"

#include <hive/hive.h>

static char *emit(const char *text, size_t len, size_t *out_len)
{
    hive_cred *c = NULL;
    char *out = NULL;

    if (hive_cred_parse(&c, text, len) != HIVE_OK)
        return NULL;
    FUZZ_CHECK(hive_cred_emit(&out, out_len, c) == HIVE_OK);
    hive_cred_free(&c);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n1 = 0, n2 = 0;
    char *t1 = emit((const char *)data, size, &n1);
    char *t2;

    if (t1 == NULL)
        return 0;
    t2 = emit(t1, n1, &n2);
    FUZZ_CHECK(t2 != NULL && n2 == n1 && memcmp(t1, t2, n1) == 0);
    hive_free_secret(t1, n1 + 1);
    hive_free_secret(t2, n2 + 1);
    return 0;
}
