/* Fernet: the input as a token (under the spec vectors' key and the
 * fixture store's key, with and without the age check) must decrypt or be
 * rejected; the input as a message must come back from our own token. */
#include "fuzz.h"

#include <hive/hive.h>

static const char *const keys[] = {
    "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=",   /* tests/data/vectors/fernet */
    "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI=",   /* tests/data/fixtures/hive-home */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t iv[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    uint8_t key[HIVE_FERNET_KEY_BYTES];
    hive_secret msg = HIVE_SECRET_INIT;
    char *token = NULL;
    size_t token_len = 0;

    for (size_t k = 0; k < 2; k++) {
        FUZZ_CHECK(hive_fernet_key_decode(key, keys[k], strlen(keys[k])) == HIVE_OK);
        if (hive_fernet_decrypt(&msg, (const char *)data, size, key) == HIVE_OK)
            hive_secret_free(&msg);
        if (hive_fernet_decrypt_ttl(&msg, (const char *)data, size, 60, 499162801, key) == HIVE_OK)
            hive_secret_free(&msg);
    }
    FUZZ_CHECK(hive_fernet_encrypt_at(&token, &token_len, data, size, 499162800, iv, key) == HIVE_OK);
    FUZZ_CHECK(hive_fernet_decrypt(&msg, token, token_len, key) == HIVE_OK);
    FUZZ_CHECK(msg.len == size && (size == 0 || memcmp(msg.data, data, size) == 0));
    hive_secret_free(&msg);
    free(token);
    return 0;
}
