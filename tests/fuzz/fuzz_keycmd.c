/* HIVE_CREDENTIAL_KEY_COMMAND's words: a command that splits gives at
 * least one word, and its words, each quoted again ('...', a ' as '\''),
 * split into the same words. */
#include "fuzz.h"

#include "keycmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char **argv = NULL, **again = NULL;
    char *quoted = NULL;
    size_t n = 0, len = 0;

    if (text == NULL || hive__key_command_split(&argv, text) != HIVE_OK) {
        free(text);
        return 0;
    }
    FUZZ_CHECK(argv[0] != NULL);
    for (n = 0; argv[n] != NULL; n++)
        len += 4 * strlen(argv[n]) + 3;
    quoted = malloc(len + 1);
    FUZZ_CHECK(quoted != NULL);
    len = 0;
    for (size_t i = 0; i < n; i++) {
        quoted[len++] = '\'';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'') {
                memcpy(quoted + len, "'\\''", 4);
                len += 4;
            } else {
                quoted[len++] = *c;
            }
        }
        quoted[len++] = '\'';
        quoted[len++] = ' ';
    }
    quoted[len] = '\0';
    FUZZ_CHECK(hive__key_command_split(&again, quoted) == HIVE_OK);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(again[i] != NULL && strcmp(again[i], argv[i]) == 0);
    FUZZ_CHECK(again[n] == NULL);
    hive__key_command_free(&argv);
    hive__key_command_free(&again);
    free(quoted);
    free(text);
    return 0;
}
