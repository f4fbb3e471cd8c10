/* OAuth2 token endpoint answers (JSON or form-encoded): an object or
 * nothing; a form answer holds only strings. */
#include "fuzz.h"

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_http_response rs = {.status = 200, .content_type = "application/json"};
    hive_json *obj;

    rs.body = fuzz_cstr(data, size);   /* as http.c hands it over: NUL-terminated */
    rs.len = size;
    obj = hive__oauth2_parse_body(&rs);
    FUZZ_CHECK(obj == NULL || hive_json_typeof(obj) == HIVE_JSON_OBJECT);
    hive_json_free(&obj);
    hive__free_secret(rs.body, size + 1);
    return 0;
}
