/*
 * fernet.c - Fernet tokens with mbedTLS: AES-128-CBC, PKCS#7, HMAC-SHA256.
 *
 * Token bytes: 0x80 | timestamp (8, big-endian) | IV (16) | ciphertext | HMAC (32)
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/aes.h>
#include <mbedtls/md.h>

#define VERSION 0x80
#define HDR 25                    /* version + timestamp + IV */
#define MAC 32
#define MIN_TOKEN (HDR + 16 + MAC)
/* Our own cap on a token; a credential is far smaller. */
#define MAX_TOKEN_TEXT (96u * 1024 * 1024)

hive_rc hive_fernet_key_decode(uint8_t out[HIVE_FERNET_KEY_BYTES], const char *text, size_t len)
{
    uint8_t buf[HIVE_FERNET_KEY_BYTES + 8];
    size_t n = 0;
    hive_rc rc;

    hive__clear_error();
    /* A 32-byte key is 44 characters; allow stray whitespace around it. */
    if (text == NULL || len > 256)
        return hive__fail(HIVE_ERR_BAD_KEY, "encryption key is not a Fernet key "
                          "(expected 44 characters of urlsafe base64)");
    {
        uint8_t *tmp = malloc(len * 3 / 4 + 3);
        if (tmp == NULL)
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        rc = hive__b64_decode_lenient(tmp, &n, text, len);
        if (rc == HIVE_OK && n == HIVE_FERNET_KEY_BYTES)
            memcpy(buf, tmp, n);
        hive__free_secret(tmp, len * 3 / 4 + 3);
    }
    if (rc != HIVE_OK || n != HIVE_FERNET_KEY_BYTES) {
        hive_memzero(buf, sizeof(buf));
        return hive__fail(HIVE_ERR_BAD_KEY, "encryption key is not a Fernet key "
                          "(expected urlsafe base64 of 32 bytes)");
    }
    memcpy(out, buf, HIVE_FERNET_KEY_BYTES);
    hive_memzero(buf, sizeof(buf));
    return HIVE_OK;
}

hive_rc hive_fernet_key_generate(char out[HIVE_FERNET_KEY_TEXT + 1])
{
    hive__clear_error();
    uint8_t raw[HIVE_FERNET_KEY_BYTES];
    hive_rc rc = hive__random(raw, sizeof(raw));

    if (rc == HIVE_OK)
        hive__b64url_encode(out, raw, sizeof(raw));
    hive_memzero(raw, sizeof(raw));
    return rc;
}

static hive_rc hmac_sha256(uint8_t mac[MAC], const uint8_t key[16], const uint8_t *data, size_t len)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

    if (md == NULL || mbedtls_md_hmac(md, key, 16, data, len, mac) != 0)
        return hive__fail(HIVE_ERR_INVALID, "HMAC-SHA256 failed");
    return HIVE_OK;
}

hive_rc hive_fernet_encrypt_at(char **token, size_t *token_len, const void *msg, size_t len,
                               uint64_t timestamp, const uint8_t iv[16],
                               const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    hive__clear_error();
    mbedtls_aes_context aes;
    size_t padded = (len / 16 + 1) * 16;
    size_t raw_len;
    uint8_t *raw = NULL;
    uint8_t ivbuf[16];
    char *text = NULL;
    size_t text_len;
    hive_rc rc = HIVE_OK;

    if (len > MAX_TOKEN_TEXT / 2)
        return hive__fail(HIVE_ERR_TOO_LARGE, "message too large to encrypt");
    raw_len = HDR + padded + MAC;
    raw = malloc(raw_len);
    text = malloc(hive__b64_encoded_len(raw_len) + 1);
    if (raw == NULL || text == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    raw[0] = VERSION;
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (uint8_t)(timestamp >> (56 - 8 * i));
    memcpy(raw + 9, iv, 16);
    /* PKCS#7 in place in the output buffer, then encrypt it there. */
    if (len > 0)
        memcpy(raw + HDR, msg, len);
    memset(raw + HDR + len, (int)(padded - len), padded - len);
    memcpy(ivbuf, iv, 16);
    mbedtls_aes_init(&aes);
    if (mbedtls_aes_setkey_enc(&aes, key + 16, 128) != 0 ||
        mbedtls_aes_crypt_cbc(&aes, MBEDTLS_AES_ENCRYPT, padded, ivbuf, raw + HDR, raw + HDR) != 0)
        rc = hive__fail(HIVE_ERR_INVALID, "AES encryption failed");
    mbedtls_aes_free(&aes);
    if (rc == HIVE_OK)
        rc = hmac_sha256(raw + HDR + padded, key, raw, HDR + padded);
    if (rc != HIVE_OK)
        goto out;
    text_len = hive__b64url_encode(text, raw, raw_len);
    *token = text;
    *token_len = text_len;
    text = NULL;
out:
    hive__free_secret(raw, raw_len);
    free(text);
    return rc;
}

hive_rc hive_fernet_encrypt(char **token, size_t *token_len, const void *msg, size_t len,
                            const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    hive__clear_error();
    uint8_t iv[16];
    hive_rc rc = hive__random(iv, sizeof(iv));

    if (rc != HIVE_OK)
        return rc;
    return hive_fernet_encrypt_at(token, token_len, msg, len, (uint64_t)time(NULL), iv, key);
}

/*
 * The checks, in Python's order: decode, version, (time), HMAC, then
 * decrypt and unpad. Causes are named for the detail message; a caller
 * facing an untrusted party should not pass them on.
 */
static hive_rc decrypt(uint8_t **msg, size_t *len, const char *token, size_t token_len,
                       bool check_time, int64_t ttl, int64_t now,
                       const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    mbedtls_aes_context aes;
    uint8_t *raw = NULL;
    size_t raw_cap = 0;
    size_t raw_len = 0;
    uint8_t *plain = NULL;
    size_t clen = 0;
    uint8_t mac[MAC];
    uint8_t iv[16];
    uint64_t ts = 0;
    hive_rc rc;

    if (token == NULL)
        return hive__fail(HIVE_ERR_DECRYPT, "no token");
    if (token_len > MAX_TOKEN_TEXT)
        return hive__fail(HIVE_ERR_TOO_LARGE, "token too large");
    raw_cap = token_len / 4 * 3 + 3;
    raw = malloc(raw_cap);
    if (raw == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive__b64_decode_lenient(raw, &raw_len, token, token_len);
    if (rc != HIVE_OK) {
        rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: not base64");
        goto out;
    }
    if (raw_len == 0) {
        rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: empty");
        goto out;
    }
    if (raw[0] != VERSION) {
        rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: unknown version byte");
        goto out;
    }
    if (raw_len < MIN_TOKEN || (raw_len - HDR - MAC) % 16 != 0) {
        rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: wrong length (truncated?)");
        goto out;
    }
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | raw[1 + i];
    if (check_time) {
        /* Python: too old when ts + ttl < now; too new when now + 60 < ts. */
        if ((int64_t)ts < 0 || (ttl >= 0 && (int64_t)ts + ttl < now)) {
            rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: expired");
            goto out;
        }
        if (now + HIVE_FERNET_MAX_CLOCK_SKEW < (int64_t)ts) {
            rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: timestamp in the future");
            goto out;
        }
    }
    rc = hmac_sha256(mac, key, raw, raw_len - MAC);
    if (rc != HIVE_OK)
        goto out;
    if (!hive_memeq(mac, raw + raw_len - MAC, MAC)) {
        rc = hive__fail(HIVE_ERR_DECRYPT, "bad MAC (wrong key or damaged data)");
        goto out;
    }
    clen = raw_len - HDR - MAC;
    plain = malloc(clen + 1);
    if (plain == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(iv, raw + 9, 16);
    mbedtls_aes_init(&aes);
    if (mbedtls_aes_setkey_dec(&aes, key + 16, 128) != 0 ||
        mbedtls_aes_crypt_cbc(&aes, MBEDTLS_AES_DECRYPT, clen, iv, raw + HDR, plain) != 0)
        rc = hive__fail(HIVE_ERR_DECRYPT, "AES decryption failed");
    mbedtls_aes_free(&aes);
    if (rc != HIVE_OK)
        goto out;
    {
        /* Check the padding without branching on the secret bytes. */
        unsigned pad = plain[clen - 1];
        unsigned bad = (unsigned)(pad == 0) | (unsigned)(pad > 16);
        for (size_t i = 0; i < 16; i++) {
            unsigned in_pad = (unsigned)(i < pad);
            bad |= in_pad & (unsigned)(plain[clen - 1 - i] != pad);
        }
        if (bad) {
            rc = hive__fail(HIVE_ERR_DECRYPT, "invalid token: bad padding");
            goto out;
        }
        clen -= pad;
    }
    plain[clen] = '\0';
    *msg = plain;
    *len = clen;
    plain = NULL;
out:
    if (plain != NULL)
        hive__free_secret(plain, raw_len - HDR - MAC + 1);
    hive__free_secret(raw, raw_cap);
    hive_memzero(iv, sizeof(iv));
    return rc;
}

hive_rc hive__fernet_decrypt(uint8_t **msg, size_t *len, const char *token, size_t token_len,
                             const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    hive__clear_error();
    return decrypt(msg, len, token, token_len, false, 0, 0, key);
}

/* decrypt() into a hive_secret, which is set only on success. */
static hive_rc decrypt_secret(hive_secret *out, const char *token, size_t token_len, bool check_ttl,
                              int64_t ttl, int64_t now, const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    uint8_t *msg = NULL;
    size_t len = 0;
    hive_rc rc;

    hive__clear_error();
    if (out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no place for the message");
    rc = decrypt(&msg, &len, token, token_len, check_ttl, ttl, now, key);
    if (rc == HIVE_OK) {
        out->data = (char *)msg;
        out->len = len;
    }
    return rc;
}

hive_rc hive_fernet_decrypt(hive_secret *msg, const char *token, size_t token_len,
                            const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    return decrypt_secret(msg, token, token_len, false, 0, 0, key);
}

hive_rc hive_fernet_decrypt_ttl(hive_secret *msg, const char *token, size_t token_len, int64_t ttl,
                                int64_t now, const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    return decrypt_secret(msg, token, token_len, true, ttl, now, key);
}
