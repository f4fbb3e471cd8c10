/* etcd storage URLs: parsed whole or refused with a message; what is
 * taken is in range. */
#include "fuzz.h"

#include "etcdurl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = fuzz_cstr(data, size);
    hive__etcd_url u;

    if (hive__etcd_url_parse(&u, url) == HIVE_OK) {
        FUZZ_CHECK(u.nendpoints >= 1 && u.nendpoints <= HIVE__ETCD_MAX_ENDPOINTS);
        FUZZ_CHECK(u.prefix[0] == '/' && u.prefix[strlen(u.prefix) - 1] != '/');
        FUZZ_CHECK(u.lock_ttl >= 2 && u.lock_ttl <= 86400 && u.timeout_ms >= 100 && u.timeout_ms <= 86400000);
        FUZZ_CHECK(u.user == NULL || (*u.user != '\0' && strchr(u.user, ':') == NULL));
        hive__etcd_url_free(&u);
    } else {
        FUZZ_CHECK(*hive_last_error() != '\0');
    }
    free(url);
    return 0;
}
