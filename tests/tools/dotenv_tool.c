/*
 * dotenv_tool - hive_dotenv_load on each file named, for the cross-check
 * against python-dotenv (tests/interop/dotenv_crosscheck.py). One line of
 * JSON a file: {"values": {NAME: value or null, ...}, "skipped": [line, ...]}
 * or {"error": "..."}. ${NAME} is looked up in this process's environment.
 */
#include <hive/hive.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void skipped(void *ctx, size_t line)
{
    hive_json *lines = ctx;

    if (hive_json_append(lines, hive_json_new_int((int64_t)line)) != HIVE_OK)
        abort();
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        hive_json *result = hive_json_new(HIVE_JSON_OBJECT);
        hive_json *lines = hive_json_new(HIVE_JSON_ARRAY);
        hive_dotenv_options opts = {.size = sizeof(opts), .skipped = skipped, .ctx = lines};
        hive_json *vals = NULL;
        hive_secret text = HIVE_SECRET_INIT;
        hive_rc rc;

        if (result == NULL || lines == NULL)
            return 1;
        rc = hive_dotenv_load_with(&vals, argv[i], &opts);
        if (rc == HIVE_OK) {
            rc = hive_json_set(result, "values", vals);
            if (rc == HIVE_OK)
                rc = hive_json_set(result, "skipped", lines);
            else
                hive_json_free(&lines);
        } else {
            hive_json_free(&lines);
            rc = hive_json_set(result, "error", hive_json_new_string(hive_last_error(), strlen(hive_last_error())));
        }
        if (rc != HIVE_OK || hive_json_emit(result, &text, -1) != HIVE_OK)
            return 1;
        fwrite(text.data, 1, text.len, stdout);
        putchar('\n');
        hive_secret_free(&text);
        hive_json_free(&result);
    }
    return 0;
}
