/* Fernet keys as text: a key that decodes, written canonically (44
 * characters of urlsafe base64), decodes to the same 32 bytes. */
#include "fuzz.h"

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[HIVE_FERNET_KEY_BYTES];
    uint8_t again[HIVE_FERNET_KEY_BYTES];
    char text[HIVE_FERNET_KEY_TEXT + 1];

    if (hive_fernet_key_decode(key, (const char *)data, size) != HIVE_OK)
        return 0;
    FUZZ_CHECK(hive__b64url_encode(text, key, sizeof(key)) == HIVE_FERNET_KEY_TEXT);
    FUZZ_CHECK(hive_fernet_key_decode(again, text, HIVE_FERNET_KEY_TEXT) == HIVE_OK);
    FUZZ_CHECK(memcmp(key, again, sizeof(key)) == 0);
    return 0;
}
