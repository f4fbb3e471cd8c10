/*
 * hive/fernet.h - Fernet tokens (https://github.com/fernet/spec), read the
 * way Python's cryptography package reads them.
 *
 * Threads: these functions share nothing and may run in several threads
 * at once (the randomness comes from getrandom()).
 */
#ifndef HIVE_FERNET_H
#define HIVE_FERNET_H

#include "common.h"
#include "mem.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HIVE_FERNET_KEY_BYTES 32   /* 16 signing + 16 encryption */
#define HIVE_FERNET_KEY_TEXT 44    /* urlsafe base64 of the 32 bytes */
#define HIVE_FERNET_MAX_CLOCK_SKEW 60

/*
 * Decode a key as text (urlsafe base64 of 32 bytes; what Python's
 * Fernet(key) accepts: stray characters such as a trailing newline are
 * ignored) into out. Returns HIVE_ERR_BAD_KEY when it is not a key.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_fernet_key_decode(uint8_t out[HIVE_FERNET_KEY_BYTES],
                                           const char *text, size_t len);

/* Write a fresh random key as 44 characters plus a NUL into out. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_fernet_key_generate(char out[HIVE_FERNET_KEY_TEXT + 1]);

/*
 * Encrypt msg into a new token (urlsafe base64 with padding, no newline,
 * NUL-terminated). *token is the caller's, to free with free().
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_fernet_encrypt(char **token, size_t *token_len,
                                        const void *msg, size_t len,
                                        const uint8_t key[HIVE_FERNET_KEY_BYTES]);

/* As hive_fernet_encrypt with a given timestamp and IV: deterministic. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_fernet_encrypt_at(char **token, size_t *token_len,
                                           const void *msg, size_t len,
                                           uint64_t timestamp, const uint8_t iv[16],
                                           const uint8_t key[HIVE_FERNET_KEY_BYTES]);

/*
 * Verify and decrypt a token without an age check (as Hive reads its
 * files). *msg is the caller's (hive_secret_free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_fernet_decrypt(hive_secret *msg,
                                        const char *token, size_t token_len,
                                        const uint8_t key[HIVE_FERNET_KEY_BYTES]);

/*
 * As hive_fernet_decrypt, and reject a token older than ttl seconds at time
 * now, or more than HIVE_FERNET_MAX_CLOCK_SKEW seconds in the future.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_fernet_decrypt_ttl(hive_secret *msg,
                                            const char *token, size_t token_len,
                                            int64_t ttl, int64_t now,
                                            const uint8_t key[HIVE_FERNET_KEY_BYTES]);

/* Base64 (RFC 4648) of len bytes into out, which holds 4 * ((len + 2) / 3)
 * + 1 bytes; NUL-terminated; returns the length written. */
#define HIVE_B64_URL 1u     /* the urlsafe alphabet (- _), as Fernet writes */
#define HIVE_B64_NOPAD 2u   /* no '=' padding */
HIVE_EXPORT size_t hive_base64_encode(char *out, const void *in, size_t len, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
