/*
 * filestore.c - the encrypted file storage, in the Python Hive layout.
 *
 * Better than Hive where Hive is weak: every write goes to a temporary file
 * that is fsynced and renamed into place, then the directory is fsynced;
 * writers are serialised by flock() on <dir>/.lock, so concurrent writers
 * never lose an index entry; directories are 0700 and files 0600; no
 * symbolic link inside the store is ever followed (openat + O_NOFOLLOW).
 *
 * The key comes from keys.c, its rotation is rotate.c, the index index.c,
 * the file I/O fileio.c.
 */
#include "filestore_int.h"
#include "keyfile.h"

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

/* An id we are willing to create: no control characters (they would break
 * `list` and terminals), valid UTF-8. */
static hive_rc check_new_id(const char *id)
{
    char stem[HIVE_ID_MAX + 8];
    hive_rc rc = hive_file_stem(stem, sizeof(stem), id);

    if (rc != HIVE_OK)
        return rc;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return hive__fail(HIVE_ERR_BAD_ID, "credential id contains a control character");
    if (id[0] == '.' && stem[0] == '.')
        return hive__fail(HIVE_ERR_BAD_ID, "credential id cannot start with '.'");
    return HIVE_OK;
}

static hive_rc file_load(hive_storage *s, hive_cred **out, const char *id)
{
    file_storage *fs = (file_storage *)s;
    char name[HIVE_ID_MAX + 16];
    hive_cred *cred = NULL;
    int base = -1;
    int credfd = -1;
    hive_rc rc;

    rc = fs_enc_name(name, sizeof(name), id);
    if (rc != HIVE_OK)
        return rc;
    rc = fs_open_base(fs, &base, false);
    if (rc == HIVE_OK)
        rc = fs_open_sub(fs, base, CRED_DIR, &credfd, false);
    hive__close_fd(&base);
    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    if (rc != HIVE_OK)
        return rc;
    rc = fs_read_cred(fs, credfd, name, &cred);
    hive__close_fd(&credfd);
    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    if (rc != HIVE_OK && fs->key_failed)
        return rc;   /* the key's problem, said as it is */
    if (rc == HIVE_ERR_DECRYPT || rc == HIVE_ERR_FORMAT || rc == HIVE_ERR_TOO_LARGE ||
        rc == HIVE_ERR_PERM || rc == HIVE_ERR_IO)
        return hive__fail_prefix(rc, "Failed to decrypt credential '%s'", id);
    if (rc != HIVE_OK)
        return rc;
    if (strcmp(hive_cred_id(cred), id) != 0) {
        /* Another id that maps to the same file (Hive's mapping is lossy),
         * or a file renamed by hand. */
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
        hive_cred_free(&cred);
        return rc;
    }
    *out = cred;
    return HIVE_OK;
}

/* --- writing --------------------------------------------------------- */

/* The credential's file changed (done: "saved", "deleted") but the index
 * could not follow (a full disk): say exactly that, as a warning. */
static void index_not_updated(file_storage *fs, const char *id, const char *done)
{
    char msg[2048];

    if (fs->warn != NULL) {
        snprintf(msg, sizeof(msg), "credential '%s' %s, but the index %s/" META_DIR "/" INDEX_FILE
                 " was not updated: %s; the index is a cache: %s", id, done, fs->dir, hive_last_error(),
                 strcmp(done, "deleted") == 0
                     ? "'hive-cred list' drops the entry"
                     : "'hive-cred list' adds an entry it lacks; an old one is corrected when the "
                       "credential is saved again or the index is removed");
        fs->warn(fs->warn_ctx, msg);
    }
    hive__clear_error();
}

/*
 * Whether file `name` holds credential id. The id inside the file decides
 * (the index may be stale: a file removed by hand and its name reused by
 * another id); *holder gets the credential read, when it is another's, to
 * repair the index with. Only a file that cannot be read (damaged, or no
 * key) is judged by the index, and taken to be id's when the index names
 * no owner or id alone, so that it can be deleted.
 */
static bool file_holds(file_storage *fs, int credfd, const hive_json *idx_creds, const char *name,
                       const char *id, hive_cred **holder)
{
    const char *owner;
    hive_cred *cred = NULL;
    bool holds = true;

    if (fs_read_cred(fs, credfd, name, &cred) == HIVE_OK) {
        holds = strcmp(hive_cred_id(cred), id) == 0;
        if (!holds && holder != NULL) {
            *holder = cred;
            cred = NULL;
        }
    } else {
        /* unreadable: id's if the index gives the file to id alone, or to
         * nobody; two entries for one file cannot tell whose it is */
        size_t claims = 0;
        bool mine = false;
        char other[HIVE_ID_MAX + 16];
        for (size_t i = 0; i < hive_json_size(idx_creds); i++) {
            hive_json_at(idx_creds, i, &owner);
            if (fs_enc_name(other, sizeof(other), owner) == HIVE_OK && strcmp(other, name) == 0) {
                claims++;
                mine = mine || strcmp(owner, id) == 0;
            }
        }
        holds = claims == 0 || (mine && claims == 1);
    }
    hive_cred_free(&cred);
    hive__clear_error();
    return holds;
}

/* Under the lock: the index entry of the credential that really holds a
 * file some other id's entry claims. */
static hive_rc repair_owner(file_storage *fs, const locked *l, const hive_cred *holder)
{
    hive_json *entry = NULL;
    hive_rc rc;

    if (holder == NULL)
        return HIVE_OK;
    rc = index_entry(&entry, holder);
    if (rc == HIVE_OK)
        rc = index_update(fs, l->cred, l->meta, hive_cred_id(holder), entry, false);
    return rc;
}

static hive_rc file_save(hive_storage *s, const hive_cred *cred)
{
    file_storage *fs = (file_storage *)s;
    const char *id = hive_cred_id(cred);
    char name[HIVE_ID_MAX + 16];
    char *plain = NULL;
    size_t plain_len = 0;
    char *token = NULL;
    size_t token_len = 0;
    hive_json *entry = NULL;
    hive_json *idx = NULL;
    locked l;
    hive_rc rc;

    rc = fs_enc_name(name, sizeof(name), id);
    if (rc == HIVE_OK)
        rc = fs_load_key(fs);   /* fail early, before creating anything */
    if (rc == HIVE_OK)
        rc = hive__cred_emit(&plain, &plain_len, cred);
    if (rc == HIVE_OK)
        rc = index_entry(&entry, cred);
    if (rc != HIVE_OK)
        goto out;

    rc = fs_lock_all(fs, &l, true);
    if (rc != HIVE_OK)
        goto out;
    /* A new id must be one we are willing to create; an existing one (a
     * Python-written ".x", say) may be written again: refusing would lose
     * a refresh that already happened. */
    if (!hive__regular_at(l.cred, name) && (rc = check_new_id(id)) != HIVE_OK) {
        fs_unlock_all(&l);
        goto out;
    }
    /* encrypt under the lock, with the key as it is now: a rotation that
     * ran while we waited must not be undone by this write */
    rc = fs_reload_key(fs);
    if (rc == HIVE_OK)
        rc = hive_fernet_encrypt(&token, &token_len, plain, plain_len, fs_write_key(fs));
    if (rc != HIVE_OK) {
        fs_unlock_all(&l);
        goto out;
    }
    /* Hive's id-to-file mapping is lossy ("a/b" and "a_b" share a file):
     * never let one credential overwrite another. */
    if (hive__regular_at(l.cred, name)) {
        hive_cred *holder = NULL;
        (void)index_read(l.meta, &idx);
        if (!file_holds(fs, l.cred, hive_json_get(idx, "credentials"), name, id, &holder)) {
            const char *owner = holder ? hive_cred_id(holder)
                                       : index_id_for(hive_json_get(idx, "credentials"), name);
            char *who = hive__strdup(owner ? owner : "?");
            (void)repair_owner(fs, &l, holder);
            rc = hive__fail(HIVE_ERR_CONFLICT, "credential id '%s' maps to file %s, which holds "
                            "credential '%s'", id, name, who ? who : "?");
            free(who);
        }
        hive_cred_free(&holder);
    }
    if (rc == HIVE_OK) {
        bool placed = false;
        rc = hive__atomic_write_at(l.cred, HIVE_TMP_PREFIX, name, token, token_len, &placed);
        if (rc != HIVE_OK && placed) {
            /* the new file is in place, but its directory entry may not be
             * on disk: the index follows what is in place, and the caller
             * hears exactly that */
            char *why = hive__strdup(hive_last_error());
            hive_rc irc = index_update(fs, l.cred, l.meta, id, entry, false);
            entry = NULL;
            if (irc != HIVE_OK)
                index_not_updated(fs, id, "saved");
            rc = hive__fail(rc, "credential '%s' was saved, but may not survive a crash: %s", id,
                            why ? why : "fsync of directory failed");
            free(why);
        } else if (rc != HIVE_OK) {
            rc = hive__fail_prefix(rc, "cannot save credential '%s'", id);
        }
    }
    if (rc == HIVE_OK) {
        /* the credential is saved: an index that cannot follow (a full
         * disk) is a warning, not a failure of the save */
        if (index_update(fs, l.cred, l.meta, id, entry, false) != HIVE_OK)
            index_not_updated(fs, id, "saved");
        entry = NULL;
    }
    fs_unlock_all(&l);
out:
    hive__free_secret(plain, plain_len + 1);
    hive_json_free(&idx);
    hive_json_free(&entry);
    free(token);
    return rc;
}

static hive_rc file_delete(hive_storage *s, const char *id)
{
    file_storage *fs = (file_storage *)s;
    char name[HIVE_ID_MAX + 16];
    hive_json *idx = NULL;
    hive_cred *holder = NULL;
    index_state st;
    locked l;
    hive_rc rc;

    rc = fs_enc_name(name, sizeof(name), id);
    if (rc != HIVE_OK)
        return rc;
    rc = fs_lock_all(fs, &l, false);
    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    if (rc != HIVE_OK)
        return rc;
    st = index_read(l.meta, &idx);
    if (!hive__regular_at(l.cred, name)) {
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
        goto out;
    }
    if (!file_holds(fs, l.cred, hive_json_get(idx, "credentials"), name, id, &holder)) {
        /* another id's file: an entry for id is stale */
        (void)repair_owner(fs, &l, holder);
        hive_cred_free(&holder);
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
        goto out;
    }
    if (unlinkat(l.cred, name, 0) != 0) {
        rc = hive__io_fail(errno, "cannot delete", name);
        goto out;
    }
    if (fsync(l.cred) != 0) {
        rc = hive__fail(HIVE_ERR_IO, "credential '%s' was deleted, but the deletion may not survive a "
                        "crash: fsync of directory failed: %s", id, strerror(errno));
        goto out;
    }
    /* An index we could only rebuild with the key stays for a later
     * rebuild when there is no key: deleting needs no secret. The file is
     * gone: an index that cannot follow is a warning. */
    if ((st == INDEX_OK || fs_load_key(fs) == HIVE_OK) && index_update(fs, l.cred, l.meta, id, NULL, false) != HIVE_OK)
        index_not_updated(fs, id, "deleted");
    hive__clear_error();
out:
    hive_json_free(&idx);
    fs_unlock_all(&l);
    return rc;
}

static hive_rc file_exists(hive_storage *s, const char *id, bool *found)
{
    file_storage *fs = (file_storage *)s;
    char name[HIVE_ID_MAX + 16];
    int base = -1;
    int credfd = -1;
    int metafd = -1;
    hive_json *idx = NULL;
    hive_rc rc;

    rc = fs_enc_name(name, sizeof(name), id);
    if (rc != HIVE_OK)
        return rc;
    *found = false;
    if (fs_open_base(fs, &base, false) != HIVE_OK || fs_open_sub(fs, base, CRED_DIR, &credfd, false) != HIVE_OK) {
        hive__close_fd(&base);
        hive__clear_error();
        return HIVE_OK;
    }
    if (hive__regular_at(credfd, name)) {
        if (fs_open_sub(fs, base, META_DIR, &metafd, false) == HIVE_OK)
            (void)index_read(metafd, &idx);
        *found = file_holds(fs, credfd, hive_json_get(idx, "credentials"), name, id, NULL);
    }
    hive_json_free(&idx);
    hive__close_fd(&metafd);
    hive__close_fd(&credfd);
    hive__close_fd(&base);
    hive__clear_error();
    return HIVE_OK;
}

static hive_rc file_list(hive_storage *s, hive_strlist *out)
{
    file_storage *fs = (file_storage *)s;
    hive_json *creds = NULL;
    hive_strlist unindexed = {0};
    hive_strlist ids = {0};
    hive_rc rc;

    rc = index_current(fs, &creds, &unindexed);
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(creds); i++) {
        const char *id;
        hive_json_at(creds, i, &id);
        rc = hive__strlist_add(&ids, id);
    }
    /* A file nobody can read still shows, under its file name, so that
     * `get` and `delete` can name it. */
    for (size_t i = 0; rc == HIVE_OK && i < unindexed.count; i++) {
        char *n = unindexed.items[i];
        n[strlen(n) - strlen(ENC_SUFFIX)] = '\0';
        rc = hive__strlist_add(&ids, n);
    }
    hive_strlist_free(&unindexed);
    hive_json_free(&creds);
    if (rc != HIVE_OK) {
        hive_strlist_free(&ids);
        return rc;
    }
    hive__strlist_sort_unique(&ids);
    *out = ids;
    return HIVE_OK;
}

/* --- open, init, free ------------------------------------------------ */

static void file_destroy(hive_storage *s)
{
    file_storage *fs = (file_storage *)s;

    hive_memzero(fs->key, sizeof(fs->key));
    hive_memzero(fs->next, sizeof(fs->next));
    pthread_mutex_destroy(&fs->mu);
    munlock(fs, sizeof(*fs));
    free(fs->next_file);
    free(fs->marker);
    free(fs->pending_file);
    free(fs->key_desc);
    hive_key_source_free(&fs->source);
    hive__free_str(fs->explicit_key);
    free(fs->dir);
    free(fs->key_file);
    free(fs);
}

/*
 * The refresh lock of one credential: flock on <dir>/.refresh/<stem>.lock.
 * Separate from the store lock, which writers hold only for a moment: a
 * refresh holds its lock across a network round trip.
 */
static hive_rc file_lock(hive_storage *s, const char *id, int *handle)
{
    file_storage *fs = (file_storage *)s;
    char name[HIVE_ID_MAX + 16];
    int base = -1;
    int dir = -1;
    int fd;
    hive_rc rc = hive_file_stem(name, sizeof(name) - 8, id);

    if (rc != HIVE_OK)
        return rc;
    strcat(name, ".lock");
    rc = fs_open_base(fs, &base, false);
    if (rc == HIVE_OK)
        rc = fs_open_sub(fs, base, ".refresh", &dir, true);
    hive__close_fd(&base);
    if (rc != HIVE_OK)
        return rc;
    fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    hive__close_fd(&dir);
    if (fd < 0)
        return hive__io_fail(errno, "cannot open the refresh lock", name);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return hive__fail(HIVE_ERR_LOCK, "cannot lock credential '%s' for refresh: %s", id, strerror(e));
        }
    }
    *handle = fd;
    return HIVE_OK;
}

static void file_unlock(hive_storage *s, int handle)
{
    (void)s;
    if (handle >= 0) {
        flock(handle, LOCK_UN);
        close(handle);
    }
}

/* Each operation under the handle's mutex (file_storage.mu). */
#define LOCKED(call)                               \
    file_storage *fs = (file_storage *)s;          \
    hive_rc rc;                                    \
    pthread_mutex_lock(&fs->mu);                   \
    rc = call;                                     \
    pthread_mutex_unlock(&fs->mu);                 \
    return rc

static hive_rc locked_load(hive_storage *s, hive_cred **out, const char *id)
{
    LOCKED(file_load(s, out, id));
}

static hive_rc locked_save(hive_storage *s, const hive_cred *cred)
{
    LOCKED(file_save(s, cred));
}

static hive_rc locked_delete(hive_storage *s, const char *id)
{
    LOCKED(file_delete(s, id));
}

static hive_rc locked_exists(hive_storage *s, const char *id, bool *found)
{
    LOCKED(file_exists(s, id, found));
}

static hive_rc locked_list(hive_storage *s, hive_strlist *out)
{
    LOCKED(file_list(s, out));
}

static const hive_storage_ops file_ops = {
    hive__file_storage_name, locked_load, locked_save, locked_delete, locked_exists, locked_list, file_destroy,
    file_lock, file_unlock, false,
};

hive_rc hive_file_storage_open(hive_storage **out, const hive_file_options *opts)
{
    hive__clear_error();
    file_storage *fs;
    hive_file_options none = HIVE_FILE_OPTIONS_INIT;

    if (opts != NULL && hive__check_size(opts->size, sizeof(*opts), "hive_file_options",
                                         "HIVE_FILE_OPTIONS_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
    if ((opts == NULL || opts->dir == NULL || *opts->dir == '\0') &&
        (opts == NULL || opts->home == NULL || *opts->home == '\0'))
        return hive__fail(HIVE_ERR_INVALID, "no store directory: set hive_file_options.dir or .home "
                          "(hive_storage_open_from_env finds the home: set " HIVE_ENV_HOME ")");
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&fs->mu, NULL) != 0) {
        free(fs);
        return hive__fail(HIVE_ERR_NOMEM, "cannot create the storage's mutex");
    }
    if (opts == NULL)
        opts = &none;
    fs->base.ops = &file_ops;
    fs->warn = opts->warn;
    fs->warn_ctx = opts->warn_ctx;
    /* the keys live in this allocation: keep it out of swap and dumps */
    hive__protect(fs, sizeof(*fs));
    if (opts->dir != NULL && *opts->dir != '\0') {
        fs->dir = hive__absolute_path(opts->dir);
    } else {
        char *tmp = hive__aprintf("%s/credentials", opts->home);
        fs->dir = tmp ? hive__absolute_path(tmp) : NULL;
        free(tmp);
    }
    if (fs->dir != NULL) {
        if (opts->key_file != NULL) {
            fs->key_file = hive__absolute_path(opts->key_file);
        } else {
            /* secrets/ beside the store directory: $HIVE_HOME/secrets. */
            char *parent = hive__strdup(fs->dir);
            char *slash = parent ? strrchr(parent, '/') : NULL;
            if (slash != NULL) {
                *slash = '\0';
                fs->key_file = hive__aprintf("%s/secrets/credential_key", parent);
            }
            free(parent);
        }
    }
    if (opts->key != NULL)
        fs->explicit_key = hive__strdup(opts->key);
    if (fs->key_file != NULL)
        fs->next_file = hive__aprintf("%s.new", fs->key_file);
    if (fs->dir != NULL)
        fs->marker = hive__aprintf("%s/" META_DIR "/" ROTATION_MARKER, fs->dir);
    if (opts->key_source != NULL && fs_copy_source(&fs->source, opts->key_source) != HIVE_OK)
        fs->source = NULL;
    if (fs->dir == NULL || fs->key_file == NULL || fs->next_file == NULL || fs->marker == NULL ||
        (opts->key != NULL && fs->explicit_key == NULL) || (opts->key_source != NULL && fs->source == NULL)) {
        file_destroy(&fs->base);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (strlen(fs->dir) > PATH_MAX - HIVE_ID_MAX - 32) {
        file_destroy(&fs->base);
        return hive__fail(HIVE_ERR_INVALID, "store path is too long");
    }
    *out = &fs->base;
    return HIVE_OK;
}

/* A new key file for init; one made meanwhile by another process wins. */
static hive_rc create_key_file(file_storage *fs)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    hive_rc rc = hive_fernet_key_generate(key);

    if (rc == HIVE_OK) {
        rc = hive__key_file_write(fs->key_file, key);
        if (rc == HIVE_ERR_CONFLICT) {
            hive__clear_error();
            rc = HIVE_OK;
        }
    }
    hive_memzero(key, sizeof(key));
    return rc;
}

hive_rc hive_file_storage_init(hive_storage *s, bool *created_key)
{
    hive__clear_error();
    file_storage *fs = (file_storage *)s;
    locked l;
    hive_json *doc = NULL;
    hive_rc rc;

    if (fs_of(s) == NULL)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "not a file storage");
    *created_key = false;
    rc = fs_lock_all(fs, &l, true);
    if (rc != HIVE_OK)
        return rc;
    if (index_read(l.meta, &doc) == INDEX_MISSING) {
        hive_json *fresh = hive_json_new(HIVE_JSON_OBJECT);
        rc = fresh ? hive_json_set(fresh, "credentials", hive_json_new(HIVE_JSON_OBJECT))
                   : hive__fail(HIVE_ERR_NOMEM, "out of memory");
        if (rc == HIVE_OK)
            rc = index_write(fs, l.meta, fresh);
        hive_json_free(&fresh);
    }
    hive_json_free(&doc);
    /* the key file is made under the lock too: the lock's holders clean up
     * the temporary key files of killed ones */
    if (rc == HIVE_OK) {
        rc = fs_load_key(fs);
        if (rc == HIVE_ERR_NO_KEY) {
            rc = create_key_file(fs);
            if (rc == HIVE_OK) {
                *created_key = true;
                rc = fs_load_key(fs);
            }
        }
    }
    fs_unlock_all(&l);
    return rc;
}

hive_rc hive__file_decrypt(hive_storage *local, const char *token, size_t len, hive_cred **out)
{
    file_storage *fs = (file_storage *)local;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    hive_rc rc = fs_load_key(fs);

    if (rc != HIVE_OK)
        return rc;
    rc = hive__fernet_decrypt(&plain, &plain_len, token, len, fs->key);
    if (rc == HIVE_ERR_DECRYPT && fs->have_next &&
        hive__fernet_decrypt(&plain, &plain_len, token, len, fs->next) == HIVE_OK)
        rc = HIVE_OK;
    if (rc != HIVE_OK)
        return rc;
    rc = hive_cred_parse(out, (const char *)plain, plain_len);
    hive__free_secret(plain, plain_len + 1);
    return rc;
}

hive_rc hive__file_encrypt(hive_storage *local, const hive_cred *cred, char **token, size_t *len)
{
    file_storage *fs = (file_storage *)local;
    char *plain = NULL;
    size_t plain_len = 0;
    hive_rc rc = fs_load_key(fs);

    if (rc == HIVE_OK)
        rc = hive__cred_emit(&plain, &plain_len, cred);
    if (rc == HIVE_OK)
        rc = hive_fernet_encrypt(token, len, plain, plain_len, fs_write_key(fs));
    hive__free_secret(plain, plain_len + 1);
    return rc;
}

