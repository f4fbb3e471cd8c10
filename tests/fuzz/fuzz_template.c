/* Templates: references lie in order inside the text and are delimited by
 * "{{" "}}"; rendering text without "{{" gives the text back. */
#include "fuzz.h"

#include <hive/hive.h>

static const char *const table[][3] = {
    {"brave_search", "api_key", "test-brave-key"},
    {"github-oauth", "access_token", "gho_x{{brave_search}}"},
    {NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hive_store *store;
    hive_template_refs *refs = NULL;
    size_t n, at = 0, start, end;
    char *text = fuzz_cstr(data, size);
    hive_secret out = HIVE_SECRET_INIT;
    hive_rc rc;

    if (store == NULL)
        FUZZ_CHECK(hive_store_for_testing(&store, table) == HIVE_OK);
    FUZZ_CHECK(hive_template_refs_parse(&refs, text, size) == HIVE_OK);
    n = hive_template_refs_count(refs);
    for (size_t i = 0; i < n; at = end, i++) {
        const char *id = hive_template_refs_id(refs, i);
        const char *key = hive_template_refs_key(refs, i);
        hive_template_refs_span(refs, &start, &end, i);
        FUZZ_CHECK(start >= at && end <= size && start + 4 < end);
        FUZZ_CHECK(memcmp(text + start, "{{", 2) == 0 && memcmp(text + end - 2, "}}", 2) == 0);
        FUZZ_CHECK(id != NULL && id[0] != '\0' && (key == NULL || key[0] != '\0'));
    }
    FUZZ_CHECK(hive_template_refs_id(refs, n) == NULL);
    hive_template_refs_free(&refs);
    rc = hive_store_resolve(store, &out, text, HIVE_GET_NO_REFRESH);
    if (strstr(text, "{{") == NULL)
        FUZZ_CHECK(rc == HIVE_OK && out.len == strlen(text) && memcmp(out.data, text, out.len) == 0);
    if (rc == HIVE_OK)
        hive_secret_free(&out);
    free(text);
    return 0;
}
