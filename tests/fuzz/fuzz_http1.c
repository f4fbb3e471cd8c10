/* HTTP/1.x answers as etcd:// reads them (http1.c): whole, more needed,
 * or refused; a whole one's body is no longer than the input, and at the
 * end of the stream nothing waits for more. */
#include "fuzz.h"

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int eof = 0; eof < 2; eof++) {
        hive_http_response rs = {0};
        bool keep = false;
        int r = hive__http1_parse((const char *)data, size, eof, &rs, &keep);
        FUZZ_CHECK(r >= -1 && r <= 1);
        FUZZ_CHECK(!(eof && r == 0));
        if (r == 1) {
            FUZZ_CHECK(rs.len <= size && rs.body != NULL && rs.body[rs.len] == '\0');
            FUZZ_CHECK(rs.status >= 0 && rs.status <= 999);
            FUZZ_CHECK(!(eof && keep));
            hive__http_response_free(&rs);
        }
    }
    return 0;
}
