/*
 * keyfile.h - the key file: a Fernet key as text in a file that only its
 * owner can read, and the fingerprint that names a key in messages.
 */
#ifndef HIVE_KEYFILE_H
#define HIVE_KEYFILE_H

#include "internal.h"

/* Read the key file at path into key. HIVE_ERR_NO_KEY when it does not
 * exist. Like ssh with a private key, refuse one that group or others can
 * access, a symbolic link, or anything but a regular file. */
hive_rc hive__key_file_read(const char *path, uint8_t key[HIVE_FERNET_KEY_BYTES]);

typedef enum hive_key_file_kind {
    HIVE_KEYFILE_OWNER,     /* a key file: no access for group or others */
    HIVE_KEYFILE_SYSTEMD    /* a systemd credential: ours or root's, 0400 (0440: an ACL's mask) */
} hive_key_file_kind;

/* hive__key_file_read with the rules of kind. */
hive_rc hive__key_file_read_as(const char *path, hive_key_file_kind kind, uint8_t key[HIVE_FERNET_KEY_BYTES]);

/* Write key_text to path (0600, its directory made 0700 if missing)
 * without replacing an existing file: temp file, fsync, link() into place,
 * fsync the directory. HIVE_ERR_CONFLICT when path exists. */
hive_rc hive__key_file_write(const char *path, const char *key_text);

/* A short name for a key that gives nothing of it away: the first 8 hex
 * digits of SHA-256 of its canonical text. */
void hive__key_fingerprint(char out[9], const uint8_t key[HIVE_FERNET_KEY_BYTES]);

#endif
