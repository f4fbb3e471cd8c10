/*
 * credfile.c - reading one credential file: its bytes, a permission check,
 * the key (keys.c), decryption with the current key or, mid-rotation, the
 * next one, and parsing. Used by the storage's reads and the index rebuild.
 */
#include "filestore_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- reading credentials -------------------------------------------- */

/* Decrypt and parse the file `name` under credfd. On failure the detail is
 * the bare cause; callers add "Failed to decrypt credential 'ID'". */
hive_rc fs_read_cred(file_storage *fs, int credfd, const char *name, hive_cred **out)
{
    struct stat st;
    char *token = NULL;
    size_t token_len = 0;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    hive_rc rc;

    fs->key_failed = false;
    rc = fs_read_at(credfd, name, "credential file", &token, &token_len);
    if (rc != HIVE_OK)
        return rc;
    if (fs->warn != NULL && (fs->warned & (WARN_CRED_FILE | WARN_CRED_DIR)) != (WARN_CRED_FILE | WARN_CRED_DIR)) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/" CRED_DIR "/%s", fs->dir, name);
        if (fstatat(credfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            fs_check_mode(fs, WARN_CRED_FILE, &st, "credential file", path);
        snprintf(path, sizeof(path), "%s/" CRED_DIR, fs->dir);
        if (fstat(credfd, &st) == 0)
            fs_check_mode(fs, WARN_CRED_DIR, &st, "directory", path);
    }
    rc = fs_load_key(fs);
    fs->key_failed = rc != HIVE_OK;
    if (rc == HIVE_OK) {
        if (token_len == 0)
            rc = hive__fail(HIVE_ERR_DECRYPT, "file is empty");
        else
            rc = hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->key);
        /* mid-rotation, a file may already be under the new key */
        if (rc == HIVE_ERR_DECRYPT && fs->have_next && token_len > 0 &&
            hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK)
            rc = HIVE_OK;
        /* a long-lived handle (the --fresh refresher) after another process
         * rotated the key: read the key file (or the rotation marker) again,
         * once */
        if (rc == HIVE_ERR_DECRYPT && fs->kind != HIVE_KEY_GIVEN && token_len > 0 &&
            fs_reload_key(fs) == HIVE_OK) {
            rc = hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->key);
            if (rc == HIVE_ERR_DECRYPT && fs->have_next &&
                hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK)
                rc = HIVE_OK;
        }
    }
    hive__free_secret(token, token_len + 1);
    if (rc != HIVE_OK)
        return rc;
    rc = hive_cred_parse(out, (const char *)plain, plain_len);
    hive__free_secret(plain, plain_len + 1);
    return rc;
}
