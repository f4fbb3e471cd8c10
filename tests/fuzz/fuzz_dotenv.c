/* dotenv files: parsed or rejected; what parses is an object of strings
 * under names of [A-Za-z_][A-Za-z0-9_.]*. */
#include "fuzz.h"

#include <hive/hive.h>

#define FIRST "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_json *env = NULL;

    if (hive_dotenv_parse(&env, (const char *)data, size) != HIVE_OK)
        return 0;
    FUZZ_CHECK(hive_json_typeof(env) == HIVE_JSON_OBJECT);
    for (size_t i = 0; i < hive_json_size(env); i++) {
        const char *name;
        FUZZ_CHECK(hive_json_typeof(hive_json_at(env, i, &name)) == HIVE_JSON_STRING);
        FUZZ_CHECK(strchr(FIRST, name[0]) != NULL && name[0] != '\0' &&
                   name[strspn(name, FIRST "0123456789.")] == '\0');
    }
    hive_json_free(&env);
    return 0;
}
