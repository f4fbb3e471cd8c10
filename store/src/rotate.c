/*
 * rotate.c - key rotation of the file storage, crash-safe: the new key is
 * kept before any file uses it, each file is replaced atomically, readers
 * accept either key meanwhile, and the switch comes last.
 */
#include "filestore_int.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A rotation is pending (killed half way): it can only be finished with
 * its own key, since files may already be under it. A new key given now
 * that is another one is refused, naming the pending one by its file (or
 * HIVE_NEW_CREDENTIAL_KEY, for a key kept outside a key file) and
 * fingerprint, never by its text. */
static hive_rc check_pending_key(const file_storage *fs, const char *given)
{
    uint8_t check[HIVE_FERNET_KEY_BYTES];
    char have[9];
    char want[9];
    hive_rc rc = HIVE_OK;

    if (given == NULL || *given == '\0')
        return HIVE_OK;
    if (hive_fernet_key_decode(check, given, strlen(given)) != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, "the new key is not a Fernet key");
    if (!hive_memeq(check, fs->next, HIVE_FERNET_KEY_BYTES)) {
        hive__key_fingerprint(have, fs->next);
        hive__key_fingerprint(want, check);
        if (fs->key_source == fs->key_file)
            rc = hive__fail(HIVE_ERR_CONFLICT, "an interrupted rotation to another key is pending: key %s in %s; "
                            HIVE_ENV_NEW_KEY " is key %s", have, fs->next_file, want);
        else
            rc = hive__fail(HIVE_ERR_CONFLICT, HIVE_ENV_NEW_KEY " is key %s, and the new key given is key %s: "
                            "files may be under the first already; finish with it", have, want);
    }
    hive_memzero(check, sizeof(check));
    return rc;
}

/* Re-encrypt one file under the new key, if it is not already. */
static hive_rc rotate_file(file_storage *fs, int credfd, const char *name, hive_rotation *res)
{
    char *token = NULL;
    size_t token_len = 0;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    char *again = NULL;
    size_t again_len = 0;
    hive_rc rc = fs_read_at(credfd, name, "credential file", &token, &token_len);

    if (rc == HIVE_ERR_NOT_FOUND)
        return HIVE_OK;   /* deleted meanwhile */
    if (rc != HIVE_OK)
        return rc;
    if (token_len > 0 && hive_fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK) {
        res->already++;
    } else if (token_len > 0 && hive_fernet_decrypt(&plain, &plain_len, token, token_len, fs->key) == HIVE_OK) {
        rc = hive_fernet_encrypt(&again, &again_len, plain, plain_len, fs->next);
        if (rc == HIVE_OK)
            rc = hive__atomic_write_at(credfd, HIVE_TMP_PREFIX, name, again, again_len, NULL);
        if (rc == HIVE_OK)
            res->rotated++;
    } else {
        res->unreadable++;
    }
    hive__clear_error();
    hive_free_secret(token, token_len + 1);
    hive_free_secret(plain, plain_len + 1);
    free(again);
    return rc;
}

hive_rc hive_file_storage_rotate_key(hive_storage *s, const char *new_key,
                                     void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
                                     hive_rotation *out)
{
    hive__clear_error();
    file_storage *fs = (file_storage *)s;
    hive_rotation res = {0};
    hive_strlist files = {0};
    char text[HIVE_FERNET_KEY_TEXT + 1];
    locked l;
    hive_rc rc;

    if (s == NULL || fs_of(s) == NULL)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "not a file storage");
    hive__clear_error();
    rc = fs_lock_all(fs, &l, false);
    if (rc != HIVE_OK)
        return rc;
    rc = fs_reload_key(fs);
    if (rc != HIVE_OK)
        goto out;
    res.key_file = fs->key_source == fs->key_file;
    if (res.key_file && fs->have_next && hive_memeq(fs->key, fs->next, HIVE_FERNET_KEY_BYTES)) {
        /* a pending key that is the current key: nothing pending at all */
        unlink(fs->next_file);
        hive_memzero(fs->next, sizeof(fs->next));
        fs->have_next = false;
    }
    if (res.key_file && !fs->have_next) {
        /* 1. the new key goes to disk before any file uses it */
        const char *given = new_key ? new_key : getenv(HIVE_ENV_NEW_KEY);
        if (given != NULL && *given != '\0') {
            uint8_t check[HIVE_FERNET_KEY_BYTES];
            rc = hive_fernet_key_decode(check, given, strlen(given));
            if (rc == HIVE_OK && hive_memeq(check, fs->key, HIVE_FERNET_KEY_BYTES))
                rc = hive__fail(HIVE_ERR_INVALID, "the new key is the current key");
            else if (rc != HIVE_OK)
                rc = hive__fail(HIVE_ERR_BAD_KEY, "the new key is not a Fernet key");
            /* the key file gets the key in its canonical form, whatever
             * stray characters the given text had */
            if (rc == HIVE_OK)
                hive__b64url_encode(text, check, HIVE_FERNET_KEY_BYTES);
            hive_memzero(check, sizeof(check));
            if (rc != HIVE_OK)
                goto out;
        } else if ((rc = hive_fernet_key_generate(text)) != HIVE_OK) {
            goto out;
        }
        rc = hive__key_file_write(fs->next_file, text);
        hive_memzero(text, sizeof(text));
        if (rc == HIVE_OK && (rc = hive__key_file_read(fs->next_file, fs->next)) != HIVE_OK)
            unlink(fs->next_file);   /* never leave a pending key that cannot be read */
        if (rc != HIVE_OK)
            goto out;
        fs->have_next = true;
    } else if (res.key_file) {
        rc = check_pending_key(fs, new_key ? new_key : getenv(HIVE_ENV_NEW_KEY));
        if (rc != HIVE_OK)
            goto out;
    } else if (!res.key_file && !fs->have_next) {
        if (new_key == NULL) {
            rc = hive__fail(HIVE_ERR_INVALID, "the key is in %s, not in a key file: give the new key in "
                            HIVE_ENV_NEW_KEY, fs->key_source);
            goto out;
        }
        if (hive_fernet_key_decode(fs->next, new_key, strlen(new_key)) != HIVE_OK) {
            rc = hive__fail(HIVE_ERR_BAD_KEY, "the new key is not a Fernet key");
            goto out;
        }
        fs->have_next = true;
    } else if (new_key != NULL) {
        /* HIVE_NEW_CREDENTIAL_KEY is set: going on to another key would
         * lose the files a killed run left under it */
        rc = check_pending_key(fs, new_key);
        if (rc != HIVE_OK)
            goto out;
    }
    if (hive_memeq(fs->key, fs->next, HIVE_FERNET_KEY_BYTES)) {
        rc = hive__fail(HIVE_ERR_INVALID, "the new key is the current key");
        goto out;
    }
    /* 2. every file, each replaced atomically */
    rc = fs_scan_enc(l.cred, &files);
    res.total = files.count;
    for (size_t i = 0; rc == HIVE_OK && i < files.count; i++) {
        rc = rotate_file(fs, l.cred, files.items[i], &res);
        if (progress != NULL)
            progress(ctx, i + 1, files.count);
    }
    if (rc != HIVE_OK)
        goto out;
    /* 3. switch: the new key becomes the key */
    if (res.key_file) {
        char *dir = hive__strdup(fs->key_file);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        int dfd;
        if (slash == NULL) {
            free(dir);
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            goto out;
        }
        *slash = '\0';
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || renameat(dfd, fs->next_file + (slash - dir) + 1, dfd, slash + 1) != 0 || fsync(dfd) != 0)
            rc = hive__io_fail(errno, "cannot switch to the new key file", fs->key_file);
        if (dfd >= 0)
            close(dfd);
        free(dir);
        if (rc != HIVE_OK)
            goto out;
    }
    memcpy(fs->key, fs->next, HIVE_FERNET_KEY_BYTES);
    hive_memzero(fs->next, sizeof(fs->next));
    fs->have_next = false;
    if (out != NULL)
        *out = res;
out:
    hive_strlist_free(&files);
    fs_unlock_all(&l);
    return rc;
}
