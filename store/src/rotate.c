/*
 * rotate.c - key rotation of the file storage, crash-safe: the new key is
 * kept before any file uses it, each file is replaced atomically, readers
 * accept either key meanwhile, and the switch comes last.
 *
 * Where the new key is kept until the switch depends on where the key
 * comes from. A key file: <key file>.new, renamed over the key file at
 * the end. A key hive cannot write (HIVE_CREDENTIAL_KEY, the command, the
 * systemd credential, a key given by the caller): a file the caller names
 * (made here when it does not exist), recorded with the key's fingerprint
 * in the rotation marker metadata/key-rotation.json, which readers follow
 * and which is removed at the end; the caller then puts the new key where
 * the source gets it. Or, without a file, HIVE_NEW_CREDENTIAL_KEY, which
 * the caller keeps.
 */
#include "filestore_int.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The new key a rotation was asked for, if any. */
typedef struct wanted {
    bool given;
    uint8_t key[HIVE_FERNET_KEY_BYTES];
    const char *file;       /* where it is kept (absolute), or NULL */
} wanted;

/* A rotation is pending (killed half way): it can only be finished with
 * its own key, since files may already be under it. A new key given now
 * that is another one is refused, naming the pending one by its file (or
 * HIVE_NEW_CREDENTIAL_KEY) and fingerprint, never by its text. */
static hive_rc check_pending_key(const file_storage *fs, const wanted *w)
{
    char have[9];
    char want[9];

    if (!w->given || hive_memeq(w->key, fs->next, HIVE_FERNET_KEY_BYTES))
        return HIVE_OK;
    hive__key_fingerprint(have, fs->next);
    hive__key_fingerprint(want, w->key);
    if (fs->kind == HIVE_KEY_FILE && w->file != NULL)
        return hive__fail(HIVE_ERR_CONFLICT, "an interrupted rotation to another key is pending: key %s in %s; "
                          "the key in %s is key %s", have, fs->next_file, w->file, want);
    if (fs->kind == HIVE_KEY_FILE)
        return hive__fail(HIVE_ERR_CONFLICT, "an interrupted rotation to another key is pending: key %s in %s; "
                          HIVE_ENV_NEW_KEY " is key %s", have, fs->next_file, want);
    if (fs->pending_file != NULL)
        return hive__fail(HIVE_ERR_CONFLICT, "an interrupted rotation to another key is pending: key %s in %s; "
                          "the new key given is key %s: files may be under the first already; finish with it",
                          have, fs->pending_file, want);
    return hive__fail(HIVE_ERR_CONFLICT, HIVE_ENV_NEW_KEY " is key %s, and the new key given is key %s: "
                      "files may be under the first already; finish with it", have, want);
}

static hive_rc decode_given(uint8_t key[HIVE_FERNET_KEY_BYTES], const char *text)
{
    if (hive_fernet_key_decode(key, text, strlen(text)) != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, "the new key is not a Fernet key");
    return HIVE_OK;
}

/* The new key from new_key_file: read when it exists, else made and
 * written there (0600, never over a file; one made meanwhile wins). */
static hive_rc key_from_file(wanted *w, const char *new_key_file)
{
    char text[HIVE_FERNET_KEY_TEXT + 1];
    hive_rc rc = hive__key_file_read(new_key_file, w->key);

    if (rc == HIVE_ERR_NO_KEY) {
        rc = hive_fernet_key_generate(text);
        if (rc == HIVE_OK)
            rc = hive__key_file_write(new_key_file, text);
        hive_memzero(text, sizeof(text));
        if (rc == HIVE_OK || rc == HIVE_ERR_CONFLICT)
            rc = hive__key_file_read(new_key_file, w->key);
    }
    if (rc != HIVE_OK)
        return rc;
    w->given = true;
    return HIVE_OK;
}

/* What the caller asked for: new_key_file, else new_key, else
 * HIVE_NEW_CREDENTIAL_KEY (which, with a file, must be the file's key). */
static hive_rc wanted_key(file_storage *fs, wanted *w, const char *new_key, const char *new_key_file)
{
    const char *env = fs_env_new_key(fs);
    uint8_t check[HIVE_FERNET_KEY_BYTES];
    hive_rc rc = HIVE_OK;

    if (new_key_file != NULL) {
        rc = key_from_file(w, new_key_file);
        if (rc == HIVE_OK && env != NULL && (decode_given(check, env) != HIVE_OK ||
                                             !hive_memeq(check, w->key, HIVE_FERNET_KEY_BYTES)))
            rc = hive__fail(HIVE_ERR_CONFLICT, HIVE_ENV_NEW_KEY " is another key than the one in %s",
                            new_key_file);
        hive_memzero(check, sizeof(check));
        return rc;
    }
    if (new_key == NULL)
        new_key = env;
    if (new_key != NULL && *new_key != '\0') {
        rc = decode_given(w->key, new_key);
        w->given = rc == HIVE_OK;
    }
    return rc;
}

/* Record the rotation (file, fingerprint of fs->next) under the lock,
 * before any file uses the key. */
static hive_rc write_marker(file_storage *fs, const locked *l, const char *file)
{
    char fp[9];
    hive_json *doc = hive_json_new(HIVE_JSON_OBJECT);
    char *text = NULL;
    size_t len = 0;
    hive_rc rc;

    hive__key_fingerprint(fp, fs->next);
    rc = doc ? hive_json_set(doc, "new_key_file", hive_json_new_string(file, strlen(file)))
             : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "fingerprint", hive_json_new_string(fp, strlen(fp)));
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "source", hive_json_new_string(fs->key_desc, strlen(fs->key_desc)));
    if (rc == HIVE_OK)
        rc = hive__json_emit(&text, &len, doc, 2);
    if (rc == HIVE_OK)
        rc = hive__atomic_write_at(l->meta, HIVE_TMP_PREFIX, ROTATION_MARKER, text, len, NULL);
    free(text);
    hive_json_free(&doc);
    if (rc != HIVE_OK)
        return hive__fail_prefix(rc, "cannot record the rotation in %s", fs->marker);
    free(fs->pending_file);
    fs->pending_file = hive__strdup(file);
    return fs->pending_file ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

/* 1, for a key file: the new key goes to <key file>.new before any file
 * uses it (or the pending one is checked). */
static hive_rc prepare_key_file(file_storage *fs, const wanted *w)
{
    char text[HIVE_FERNET_KEY_TEXT + 1];
    hive_rc rc;

    if (fs->have_next && hive_memeq(fs->key, fs->next, HIVE_FERNET_KEY_BYTES)) {
        /* a pending key that is the current key: nothing pending at all */
        unlink(fs->next_file);
        hive_memzero(fs->next, sizeof(fs->next));
        fs->have_next = false;
    }
    if (fs->have_next)
        return check_pending_key(fs, w);
    if (w->given && hive_memeq(w->key, fs->key, HIVE_FERNET_KEY_BYTES))
        return hive__fail(HIVE_ERR_INVALID, "the new key is the current key");
    /* the key file gets the key in its canonical form, whatever stray
     * characters the given text had */
    if (w->given)
        hive__b64url_encode(text, w->key, HIVE_FERNET_KEY_BYTES);
    else if ((rc = hive_fernet_key_generate(text)) != HIVE_OK)
        return rc;
    rc = hive__key_file_write(fs->next_file, text);
    hive_memzero(text, sizeof(text));
    if (rc == HIVE_OK && (rc = hive__key_file_read(fs->next_file, fs->next)) != HIVE_OK)
        unlink(fs->next_file);   /* never leave a pending key that cannot be read */
    fs->have_next = rc == HIVE_OK;
    return rc;
}

/* 1, for a key hive cannot write: the pending rotation, or the new key
 * asked for, kept in w->file (recorded by the marker) or by the caller. */
static hive_rc prepare_outside(file_storage *fs, const locked *l, const wanted *w)
{
    hive_rc rc;

    if (fs->pending_file != NULL) {
        /* a marker: its file must hold its key, or nothing goes on */
        rc = fs_read_marker_key(fs, true);
        if (rc != HIVE_OK)
            return rc;
    }
    if (fs->have_next) {
        rc = check_pending_key(fs, w);
        if (rc == HIVE_OK && w->file != NULL && fs->pending_file == NULL)
            rc = write_marker(fs, l, w->file);
        return rc;
    }
    if (!w->given)
        return hive__fail(HIVE_ERR_INVALID, "the key comes from %s, which hive cannot write: name a file for "
                          "the new key, or give it in " HIVE_ENV_NEW_KEY, fs->key_desc);
    if (hive_memeq(w->key, fs->key, HIVE_FERNET_KEY_BYTES))
        return hive__fail(HIVE_ERR_INVALID, "the new key is the current key");
    memcpy(fs->next, w->key, HIVE_FERNET_KEY_BYTES);
    fs->have_next = true;
    return w->file != NULL ? write_marker(fs, l, w->file) : HIVE_OK;
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
    if (token_len > 0 && hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK) {
        res->already++;
    } else if (token_len > 0 && hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->key) == HIVE_OK) {
        rc = hive_fernet_encrypt(&again, &again_len, plain, plain_len, fs->next);
        if (rc == HIVE_OK)
            rc = hive__atomic_write_at(credfd, HIVE_TMP_PREFIX, name, again, again_len, NULL);
        if (rc == HIVE_OK)
            res->rotated++;
    } else {
        res->unreadable++;
    }
    hive__clear_error();
    hive__free_secret(token, token_len + 1);
    hive__free_secret(plain, plain_len + 1);
    free(again);
    return rc;
}

/* 3, for a key file: rename <key file>.new over it. */
static hive_rc switch_key_file(file_storage *fs)
{
    char *dir = hive__strdup(fs->key_file);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    hive_rc rc = HIVE_OK;
    int dfd;

    if (slash == NULL) {
        free(dir);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    *slash = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || renameat(dfd, fs->next_file + (slash - dir) + 1, dfd, slash + 1) != 0 || fsync(dfd) != 0)
        rc = hive__io_fail(errno, "cannot switch to the new key file", fs->key_file);
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

/* 3, for a key kept outside: the rotation is over (its marker goes). */
static hive_rc remove_marker(file_storage *fs, const locked *l)
{
    if (fs->pending_file == NULL)
        return HIVE_OK;
    if ((unlinkat(l->meta, ROTATION_MARKER, 0) != 0 && errno != ENOENT) || fsync(l->meta) != 0)
        return hive__io_fail(errno, "cannot remove the rotation marker", fs->marker);
    free(fs->pending_file);
    fs->pending_file = NULL;
    return HIVE_OK;
}

static hive_rc rotate(hive_storage *s, const char *new_key, const char *new_key_file,
                      void (*progress)(void *ctx, size_t done, size_t total), void *ctx, hive_rotation *out)
{
    file_storage *fs = fs_of(s);
    hive_rotation res = HIVE_ROTATION_INIT;
    hive_strlist files = {0};
    wanted w = {false, {0}, NULL};
    char *abs_file = NULL;
    bool source_has_new = false;
    locked l;
    hive_rc rc;

    hive__clear_error();
    if (out != NULL && hive__check_size(out->size, sizeof(*out), "hive_rotation", "HIVE_ROTATION_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
    if (fs == NULL)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "not a file storage");
    rc = fs_lock_all(fs, &l, false);
    if (rc != HIVE_OK)
        return rc;
    if (new_key_file != NULL && (abs_file = hive__absolute_path(new_key_file)) == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    w.file = abs_file;
    rc = fs_reload_key(fs);
    if (rc == HIVE_OK)
        rc = wanted_key(fs, &w, new_key, abs_file);
    if (rc != HIVE_OK)
        goto out;
    res.key_file = fs->kind == HIVE_KEY_FILE;
    /* 1. the new key is kept before any file uses it */
    rc = res.key_file ? prepare_key_file(fs, &w) : prepare_outside(fs, &l, &w);
    if (rc != HIVE_OK)
        goto out;
    /* The source already gives the key a killed rotation was moving to
     * (updated before the rotation was finished): files still under the
     * old key cannot be rotated, and the marker stays until they are. */
    source_has_new = !res.key_file && fs->pending_file != NULL &&
                     hive_memeq(fs->key, fs->next, HIVE_FERNET_KEY_BYTES);
    if (hive_memeq(fs->key, fs->next, HIVE_FERNET_KEY_BYTES) && !source_has_new) {
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
    if (rc == HIVE_OK && source_has_new && res.unreadable > 0)
        rc = hive__fail(HIVE_ERR_CONFLICT, "%s already gives the new key of the interrupted rotation (%s), but "
                        "%zu credential file(s) are still under the old key: give %s the old key again, run "
                        "the rotation again to finish it, then give it the new key", fs->key_desc,
                        fs->pending_file, res.unreadable, fs->key_desc);
    if (rc != HIVE_OK)
        goto out;
    /* 3. switch: the new key becomes the key */
    rc = res.key_file ? switch_key_file(fs) : remove_marker(fs, &l);
    if (rc != HIVE_OK)
        goto out;
    memcpy(fs->key, fs->next, HIVE_FERNET_KEY_BYTES);
    hive_memzero(fs->next, sizeof(fs->next));
    fs->have_next = false;
    if (out != NULL)
        *out = res;
out:
    hive_memzero(w.key, sizeof(w.key));
    free(abs_file);
    hive_strlist_free(&files);
    fs_unlock_all(&l);
    return rc;
}

hive_rc hive_file_storage_rotate_key(hive_storage *s, const char *new_key,
                                     void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
                                     hive_rotation *out)
{
    return rotate(s, new_key, NULL, progress, ctx, out);
}

hive_rc hive_file_storage_rotate_key_file(hive_storage *s, const char *new_key_file,
                                          void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
                                          hive_rotation *out)
{
    return rotate(s, NULL, new_key_file, progress, ctx, out);
}
