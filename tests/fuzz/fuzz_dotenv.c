/* dotenv files, read as python-dotenv reads them: parsed or rejected as a
 * whole; what parses is an object of non-empty, distinct names whose values
 * are strings or null (a name alone), the same on a second parse. */
#include "fuzz.h"

#include <hive/hive.h>

static hive_rc lookup(void *ctx, const char *name, size_t name_len, const char **value, size_t *len)
{
    (void)ctx;
    *value = NULL;
    if (name_len == 1 && name[0] == 'E') {
        *value = "env-value";
        *len = 9;
    }
    return HIVE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_dotenv_options opts = {.size = sizeof(opts), .lookup = lookup};
    hive_json *env = NULL, *again = NULL;
    hive_secret a = HIVE_SECRET_INIT, b = HIVE_SECRET_INIT;

    if (hive_dotenv_parse_with(&env, (const char *)data, size, &opts) != HIVE_OK)
        return 0;
    FUZZ_CHECK(hive_json_typeof(env) == HIVE_JSON_OBJECT);
    for (size_t i = 0; i < hive_json_size(env); i++) {
        const char *name;
        hive_json_type t = hive_json_typeof(hive_json_at(env, i, &name));
        FUZZ_CHECK(t == HIVE_JSON_STRING || t == HIVE_JSON_NULL);
        FUZZ_CHECK(name[0] != '\0');
        FUZZ_CHECK(hive_json_get(env, name) == hive_json_at(env, i, NULL));
    }
    FUZZ_CHECK(hive_dotenv_parse_with(&again, (const char *)data, size, &opts) == HIVE_OK);
    FUZZ_CHECK(hive_json_emit(env, &a, -1) == HIVE_OK);
    FUZZ_CHECK(hive_json_emit(again, &b, -1) == HIVE_OK);
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    hive_secret_free(&a);
    hive_secret_free(&b);
    hive_json_free(&env);
    hive_json_free(&again);
    return 0;
}
