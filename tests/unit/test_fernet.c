/*
 * Fernet: the official vectors, and the inputs Python's cryptography
 * accepts or rejects.
 */
#include "testutil.h"

static void key_of(uint8_t key[32], const hive_json *v)
{
    const char *secret = jstr(v, "secret");
    cr_assert_eq(hive_fernet_key_decode(key, secret, strlen(secret)), HIVE_OK);
}

static int64_t time_of(const hive_json *v)
{
    const char *now = jstr(v, "now");
    hive_time t;
    cr_assert_eq(hive_time_parse(&t, now, strlen(now)), HIVE_OK, "%s", now);
    return t.sec;
}

Test(fernet, generate_vectors_byte_for_byte)
{
    hive_json *all = data_json("vectors/fernet/generate.json");

    cr_assert_gt(hive_json_size(all), 0);
    for (size_t i = 0; i < hive_json_size(all); i++) {
        const hive_json *v = hive_json_at(all, i, NULL);
        const hive_json *ivs = hive_json_get(v, "iv");
        const char *src = jstr(v, "src");
        uint8_t key[32], iv[16];
        char *token = NULL;
        size_t len = 0;

        key_of(key, v);
        for (size_t b = 0; b < 16; b++)
            iv[b] = (uint8_t)hive_json_number(hive_json_at(ivs, b, NULL));
        cr_assert_eq(hive_fernet_encrypt_at(&token, &len, src, strlen(src),
                                            (uint64_t)time_of(v), iv, key), HIVE_OK);
        cr_assert_str_eq(token, jstr(v, "token"));
        cr_assert_eq(len, strlen(token));
        free(token);
    }
    hive_json_free(&all);
}

Test(fernet, verify_vectors_with_ttl)
{
    hive_json *all = data_json("vectors/fernet/verify.json");

    for (size_t i = 0; i < hive_json_size(all); i++) {
        const hive_json *v = hive_json_at(all, i, NULL);
        const char *token = jstr(v, "token");
        uint8_t key[32];
        hive_secret msg = HIVE_SECRET_INIT;

        key_of(key, v);
        cr_assert_eq(hive_fernet_decrypt_ttl(&msg, token, strlen(token),
                                             (int64_t)hive_json_number(hive_json_get(v, "ttl_sec")),
                                             time_of(v), key), HIVE_OK, "%s", hive_last_error());
        cr_assert_eq(msg.len, strlen(jstr(v, "src")));
        cr_assert_arr_eq(msg.data, jstr(v, "src"), msg.len);
        hive_secret_free(&msg);
    }
    hive_json_free(&all);
}

Test(fernet, every_invalid_vector_is_rejected)
{
    hive_json *all = data_json("vectors/fernet/invalid.json");

    cr_assert_geq(hive_json_size(all), 8);
    for (size_t i = 0; i < hive_json_size(all); i++) {
        const hive_json *v = hive_json_at(all, i, NULL);
        const char *token = jstr(v, "token");
        uint8_t key[32];
        hive_secret msg = HIVE_SECRET_INIT;

        key_of(key, v);
        cr_assert_eq(hive_fernet_decrypt_ttl(&msg, token, strlen(token),
                                             (int64_t)hive_json_number(hive_json_get(v, "ttl_sec")),
                                             time_of(v), key), HIVE_ERR_DECRYPT,
                     "accepted: %s", jstr(v, "desc"));
        cr_assert_null(msg.data);
    }
    hive_json_free(&all);
}

/* The clock-skew rule: exactly 60 s in the future is fine, 61 s is not. */
Test(fernet, clock_skew_boundary)
{
    uint8_t key[32] = {1};
    uint8_t iv[16] = {2};
    char *token = NULL;
    size_t len = 0;
    hive_secret msg = HIVE_SECRET_INIT;

    cr_assert_eq(hive_fernet_encrypt_at(&token, &len, "x", 1, 1000, iv, key), HIVE_OK);
    cr_assert_eq(hive_fernet_decrypt_ttl(&msg, token, len, 60, 940, key), HIVE_OK);
    hive_secret_free(&msg);
    cr_assert_eq(hive_fernet_decrypt_ttl(&msg, token, len, 60, 939, key), HIVE_ERR_DECRYPT);
    /* exactly ttl old is still good */
    cr_assert_eq(hive_fernet_decrypt_ttl(&msg, token, len, 60, 1060, key), HIVE_OK);
    hive_secret_free(&msg);
    cr_assert_eq(hive_fernet_decrypt_ttl(&msg, token, len, 60, 1061, key), HIVE_ERR_DECRYPT);
    /* Hive reads without a time check */
    cr_assert_eq(hive_fernet_decrypt(&msg, token, len, key), HIVE_OK);
    hive_secret_free(&msg);
    free(token);
}

static char *make_token(const char *plain, uint8_t key[32])
{
    uint8_t iv[16] = {9, 8, 7};
    char *token = NULL;
    size_t len = 0;

    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    cr_assert_eq(hive_fernet_encrypt_at(&token, &len, plain, strlen(plain), 1700000000, iv, key), HIVE_OK);
    return token;
}

static hive_rc try_decrypt(const char *token, const uint8_t key[32], char *out, size_t size)
{
    hive_secret msg = HIVE_SECRET_INIT;
    hive_rc rc = hive_fernet_decrypt(&msg, token, strlen(token), key);

    if (rc == HIVE_OK) {
        snprintf(out, size, "%.*s", (int)msg.len, (const char *)msg.data);
        hive_secret_free(&msg);
    }
    return rc;
}

/* What Python's urlsafe_b64decode lets through. */
Test(fernet, accepts_what_python_accepts)
{
    uint8_t key[32];
    char *token = make_token("hello, world", key);
    char buf[256];
    char out[64];
    size_t n = strlen(token);

    snprintf(buf, sizeof(buf), "%s\n", token);                 /* trailing newline */
    cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_OK);
    cr_assert_str_eq(out, "hello, world");
    snprintf(buf, sizeof(buf), "  %.*s\r\n%s \t", 20, token, token + 20); /* stray whitespace */
    cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_OK);
    snprintf(buf, sizeof(buf), "%s", token);                   /* the + / alphabet */
    for (size_t i = 0; i < n; i++)
        buf[i] = buf[i] == '-' ? '+' : buf[i] == '_' ? '/' : buf[i];
    cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_OK);
    snprintf(buf, sizeof(buf), "%s!!garbage after padding", token);
    if (token[n - 1] == '=')
        cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_OK);
    free(token);
}

Test(fernet, rejects_tampering)
{
    uint8_t key[32];
    uint8_t other[32];
    char *token = make_token("a secret value", key);
    char buf[256];
    char out[64];
    size_t n = strlen(token);

    memcpy(other, key, 32);
    other[0] ^= 1;
    cr_assert_eq(try_decrypt(token, other, out, sizeof(out)), HIVE_ERR_DECRYPT); /* foreign key */
    snprintf(buf, sizeof(buf), "%s", token);
    buf[n / 2] = buf[n / 2] == 'A' ? 'B' : 'A';                                  /* flipped bit */
    cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_ERR_DECRYPT);
    snprintf(buf, sizeof(buf), "%.*s", (int)(n - 8), token);                     /* truncated */
    cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_ERR_DECRYPT);
    cr_assert_eq(try_decrypt("", key, out, sizeof(out)), HIVE_ERR_DECRYPT);
    /* missing padding is an error, as in Python */
    if (token[n - 1] == '=') {
        snprintf(buf, sizeof(buf), "%.*s", (int)(n - 1 - (token[n - 2] == '=')), token);
        cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_ERR_DECRYPT);
    }
    /* version byte other than 0x80 ("gA" encodes 0x80) */
    snprintf(buf, sizeof(buf), "%s", token);
    buf[0] = 'g';
    buf[1] = 'Q';
    cr_assert_eq(try_decrypt(buf, key, out, sizeof(out)), HIVE_ERR_DECRYPT);
    free(token);
}

Test(fernet, rejects_wrong_length_even_with_valid_mac)
{
    /* Build raw bytes whose ciphertext is 15 bytes, with a correct HMAC. */
    hive_json *all = data_json("vectors/fernet/invalid.json");
    for (size_t i = 0; i < hive_json_size(all); i++) {
        const hive_json *v = hive_json_at(all, i, NULL);
        const char *token = jstr(v, "token");
        uint8_t key[32];
        hive_secret msg = HIVE_SECRET_INIT;
        if (strstr(jstr(v, "desc"), "padding") == NULL && strstr(jstr(v, "desc"), "size") == NULL)
            continue;
        key_of(key, v);
        cr_assert_eq(hive_fernet_decrypt(&msg, token, strlen(token), key), HIVE_ERR_DECRYPT,
                     "%s", jstr(v, "desc"));
    }
    hive_json_free(&all);
}

Test(fernet, key_decoding)
{
    uint8_t key[32];
    char text[HIVE_FERNET_KEY_TEXT + 1];
    char padded[64];

    cr_assert_eq(hive_fernet_key_generate(text), HIVE_OK);
    cr_assert_eq(strlen(text), 44);
    cr_assert_eq(hive_fernet_key_decode(key, text, 44), HIVE_OK);
    snprintf(padded, sizeof(padded), "%s\n", text);
    cr_assert_eq(hive_fernet_key_decode(key, padded, strlen(padded)), HIVE_OK);
    cr_assert_eq(hive_fernet_key_decode(key, text, 40), HIVE_ERR_BAD_KEY);
    cr_assert_eq(hive_fernet_key_decode(key, "not a key", 9), HIVE_ERR_BAD_KEY);
    cr_assert_eq(hive_fernet_key_decode(key, "", 0), HIVE_ERR_BAD_KEY);
    /* 33 bytes is not a key either */
    cr_assert_eq(hive_fernet_key_decode(key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 44), HIVE_ERR_BAD_KEY);
}

Test(fernet, every_length_round_trips)
{
    uint8_t key[32];
    char kt[HIVE_FERNET_KEY_TEXT + 1];
    uint8_t msg[80];

    cr_assert_eq(hive_fernet_key_generate(kt), HIVE_OK);
    cr_assert_eq(hive_fernet_key_decode(key, kt, 44), HIVE_OK);
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 31);
    for (size_t n = 0; n <= sizeof(msg); n++) {
        char *token = NULL;
        size_t tlen = 0;
        hive_secret out = HIVE_SECRET_INIT;
        cr_assert_eq(hive_fernet_encrypt(&token, &tlen, msg, n, key), HIVE_OK);
        cr_assert_eq(tlen % 4, 0);
        cr_assert_eq(hive_fernet_decrypt(&out, token, tlen, key), HIVE_OK);
        cr_assert_eq(out.len, n);
        if (n)
            cr_assert_arr_eq(out.data, msg, n);
        hive_secret_free(&out);
        free(token);
    }
}

Test(mem, memeq_is_exact)
{
    cr_assert_eq(hive_memeq("abcd", "abcd", 4), 1);
    cr_assert_eq(hive_memeq("abcd", "abce", 4), 0);
    cr_assert_eq(hive_memeq("\x80", "\x00", 1), 0);
    cr_assert_eq(hive_memeq("", "", 0), 1);
}
