/*
 * keys.c - where the file storage's key comes from: the key given by the
 * caller, HIVE_CREDENTIAL_KEY, or the key file; and the pending key of a
 * rotation (the key file's .new, or HIVE_NEW_CREDENTIAL_KEY).
 */
#include "filestore_int.h"
#include "keyfile.h"

#include <stdlib.h>
#include <string.h>

hive_rc fs_load_key(file_storage *fs)
{
    const char *env;
    hive_rc rc;

    if (fs->have_key)
        return HIVE_OK;
    if (fs->explicit_key != NULL) {
        rc = hive_fernet_key_decode(fs->key, fs->explicit_key, strlen(fs->explicit_key));
        if (rc != HIVE_OK)
            return hive__fail(HIVE_ERR_BAD_KEY, "the given encryption key is not a Fernet key "
                              "(urlsafe base64 of 32 bytes)");
        fs->key_source = "explicit";
    } else if ((env = getenv(HIVE_ENV_KEY)) != NULL && *env != '\0') {
        rc = hive_fernet_key_decode(fs->key, env, strlen(env));
        if (rc != HIVE_OK)
            return hive__fail(HIVE_ERR_BAD_KEY, HIVE_ENV_KEY " is not a Fernet key "
                              "(urlsafe base64 of 32 bytes)");
        fs->key_source = HIVE_ENV_KEY;
    } else {
        rc = hive__key_file_read(fs->key_file, fs->key);
        if (rc != HIVE_OK)
            return rc;
        fs->key_source = fs->key_file;
        if (fs->warn != NULL && (fs->warned & WARN_SECRETS_DIR) == 0) {
            char *dir = hive__strdup(fs->key_file);
            char *slash = dir ? strrchr(dir, '/') : NULL;
            if (slash != NULL && slash != dir) {
                *slash = '\0';
                fs_check_path_mode(fs, WARN_SECRETS_DIR, "key directory", dir);
            }
            free(dir);
        }
    }
    fs->have_key = true;
    /* a rotation left half done: the key it was moving to */
    fs->have_next = false;
    if (fs->key_source == fs->key_file) {
        rc = hive__key_file_read(fs->next_file, fs->next);
        if (rc == HIVE_OK)
            fs->have_next = true;
        else if (rc != HIVE_ERR_NO_KEY)
            return rc;
    } else if ((env = getenv(HIVE_ENV_NEW_KEY)) != NULL && *env != '\0') {
        if (hive_fernet_key_decode(fs->next, env, strlen(env)) != HIVE_OK)
            return hive__fail(HIVE_ERR_BAD_KEY, HIVE_ENV_NEW_KEY " is not a Fernet key "
                              "(urlsafe base64 of 32 bytes)");
        fs->have_next = true;
    }
    hive__clear_error();
    return HIVE_OK;
}

hive_rc fs_reload_key(file_storage *fs)
{
    if (fs->have_key && fs->key_source == fs->key_file) {
        fs->have_key = false;
        fs->have_next = false;
    }
    return fs_load_key(fs);
}

const uint8_t *fs_write_key(const file_storage *fs)
{
    return fs->have_next ? fs->next : fs->key;
}

const char *hive_file_storage_key_source(hive_storage *s)
{
    file_storage *fs = fs_of(s);
    const char *source;

    if (fs == NULL)
        return NULL;
    pthread_mutex_lock(&fs->mu);
    source = fs_load_key(fs) == HIVE_OK ? fs->key_source : NULL;
    pthread_mutex_unlock(&fs->mu);
    return source;
}
