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
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const hive_storage_ops file_ops;

file_storage *fs_of(const hive_storage *s)
{
    return (s != NULL && s->ops == &file_ops) ? (file_storage *)(uintptr_t)s : NULL;
}

/* Say once (per `which`) that a store file or directory at path is open
 * to group or others, and the chmod that closes it. Writable is worse:
 * whoever can write a directory can replace the files in it, the key
 * among them. */
static void check_mode(file_storage *fs, unsigned which, const struct stat *st, const char *what,
                       const char *path)
{
    char *msg;
    bool dir = S_ISDIR(st->st_mode);

    if (fs->warn == NULL || (fs->warned & which) != 0 || (st->st_mode & 077) == 0)
        return;
    fs->warned |= which;
    /* the whole path, however long the store directory's */
    msg = hive__aprintf("%s %s is %s by group or others (mode %04o)%s; chmod %s %s", what, path,
                        (st->st_mode & 022) ? "writable" : "readable", (unsigned)(st->st_mode & 07777),
                        (st->st_mode & 022) && dir ? ": they can replace the files in it" : "",
                        dir ? "700" : "600", path);
    if (msg != NULL)
        fs->warn(fs->warn_ctx, msg);
    free(msg);
}

void fs_check_path_mode(file_storage *fs, unsigned which, const char *what, const char *path)
{
    struct stat st;

    if (fs->warn != NULL && (fs->warned & which) == 0 && stat(path, &st) == 0)
        check_mode(fs, which, &st, what, path);
}

/* --- paths and ids ---------------------------------------------------- */

hive_rc hive_file_stem(char *buf, size_t size, const char *id)
{
    size_t o = 0;
    size_t len;

    hive__clear_error();
    if (id == NULL || *id == '\0')
        return hive__fail(HIVE_ERR_BAD_ID, "credential id is empty");
    len = strlen(id);
    if (len > HIVE_ID_MAX)
        return hive__fail(HIVE_ERR_BAD_ID, "credential id is longer than %d bytes", HIVE_ID_MAX);
    /* '/' then '\\' then "..", each over the result of the last, as Hive
     * does; '/' and '\\' go first, so ".." is the only pass that shortens. */
    for (size_t i = 0; i < len;) {
        if (id[i] == '.' && id[i + 1] == '.') {
            buf[o++] = '_';
            i += 2;
        } else {
            buf[o++] = (id[i] == '/' || id[i] == '\\') ? '_' : id[i];
            i++;
        }
        if (o + 1 >= size)
            return hive__fail(HIVE_ERR_BAD_ID, "credential id is too long");
    }
    buf[o] = '\0';
    /* The stem names one entry of the credentials directory. */
    if (strchr(buf, '/') != NULL || strcmp(buf, ".") == 0)
        return hive__fail(HIVE_ERR_BAD_ID, "credential id cannot name a file");
    return HIVE_OK;
}

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

hive_rc fs_enc_name(char *buf, size_t size, const char *id)
{
    hive_rc rc = hive_file_stem(buf, size - strlen(ENC_SUFFIX), id);

    if (rc == HIVE_OK)
        strcat(buf, ENC_SUFFIX);
    return rc;
}

static bool is_enc_name(const char *name)
{
    size_t n = strlen(name);

    return name[0] != '.' && n > strlen(ENC_SUFFIX) &&
           strcmp(name + n - strlen(ENC_SUFFIX), ENC_SUFFIX) == 0;
}

/* --- directories and files ------------------------------------------ */

/* Open dir itself (following a symlink in the path the user gave). */
hive_rc fs_open_base(file_storage *fs, int *fd, bool create)
{
    int d = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (d < 0 && errno == ENOENT && create) {
        /* mkdir -p, 0700 for what we create. */
        char *path = hive__strdup(fs->dir);
        if (path == NULL)
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        for (char *p = path + 1;; p++) {
            if (*p == '/' || *p == '\0') {
                char c = *p;
                *p = '\0';
                if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                    int e = errno;
                    free(path);
                    return hive__io_fail(e, "cannot create directory", fs->dir);
                }
                *p = c;
                if (c == '\0')
                    break;
            }
        }
        free(path);
        d = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (d < 0) {
        if (errno == ENOENT)
            return hive__fail(HIVE_ERR_NOT_FOUND, "store directory %s does not exist", fs->dir);
        return hive__io_fail(errno, "cannot open store directory", fs->dir);
    }
    if (fs->warn != NULL && (fs->warned & WARN_STORE_DIR) == 0) {
        struct stat st;
        if (fstat(d, &st) == 0)
            check_mode(fs, WARN_STORE_DIR, &st, "store directory", fs->dir);
    }
    *fd = d;
    return HIVE_OK;
}

/* Open a subdirectory of the store, never through a symlink. */
hive_rc fs_open_sub(file_storage *fs, int base, const char *name, int *fd, bool create)
{
    int d = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (d < 0 && errno == ENOENT && create) {
        if (mkdirat(base, name, 0700) != 0 && errno != EEXIST)
            return hive__fail(HIVE_ERR_IO, "cannot create %s/%s: %s", fs->dir, name, strerror(errno));
        d = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (d < 0) {
        int e = errno;
        if (e == ENOENT)
            return hive__fail(HIVE_ERR_NOT_FOUND, "%s/%s does not exist", fs->dir, name);
        {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", fs->dir, name);
            return hive__io_fail(e == ENOTDIR ? ELOOP : e, "store directory", path);
        }
    }
    *fd = d;
    return HIVE_OK;
}

/* A file of the store: never through a symlink, at most MAX_FILE bytes. */
hive_rc fs_read_at(int dirfd, const char *name, const char *what, char **data, size_t *len)
{
    return hive__read_at(dirfd, name, true, MAX_FILE, what, data, len);
}

/* Names of the .enc files in dirfd, sorted. */
hive_rc fs_scan_enc(int dirfd, hive_strlist *out)
{
    int d = dup(dirfd);
    DIR *dir;
    struct dirent *e;
    hive_rc rc = HIVE_OK;

    if (d < 0 || (dir = fdopendir(d)) == NULL) {
        if (d >= 0)
            close(d);
        return hive__fail(HIVE_ERR_IO, "cannot list the credentials directory: %s", strerror(errno));
    }
    rewinddir(dir);
    while (rc == HIVE_OK && (e = readdir(dir)) != NULL)
        if (is_enc_name(e->d_name) &&
            (e->d_type == DT_REG || (e->d_type == DT_UNKNOWN && hive__regular_at(dirfd, e->d_name))))
            rc = hive__strlist_add(out, e->d_name);
    closedir(dir);
    if (rc == HIVE_OK)
        hive__strlist_sort_unique(out);
    return rc;
}

/* --- the lock -------------------------------------------------------- */

static hive_rc lock_store(file_storage *fs, int base, int *lockfd)
{
    return hive__flock_at(base, LOCK_FILE, fs->dir, lockfd);
}

static void unlock_store(int *lockfd)
{
    hive__unlock(lockfd);
}

void fs_unlock_all(locked *l)
{
    unlock_store(&l->lock);
    hive__close_fd(&l->cred);
    hive__close_fd(&l->meta);
    hive__close_fd(&l->base);
}

hive_rc fs_lock_all(file_storage *fs, locked *l, bool create)
{
    hive_rc rc;

    l->base = l->cred = l->meta = l->lock = -1;
    rc = fs_open_base(fs, &l->base, create);
    if (rc == HIVE_OK)
        rc = fs_open_sub(fs, l->base, CRED_DIR, &l->cred, create);
    if (rc == HIVE_OK)
        rc = fs_open_sub(fs, l->base, META_DIR, &l->meta, create);
    if (rc == HIVE_OK)
        rc = lock_store(fs, l->base, &l->lock);
    if (rc != HIVE_OK) {
        fs_unlock_all(l);
        return rc;
    }
    hive__remove_orphans(l->cred, HIVE_TMP_PREFIX);
    hive__remove_orphans(l->meta, HIVE_TMP_PREFIX);
    {
        /* and a key file half written by a killed init or rotation (which
         * write it under this lock) */
        char *dir = hive__strdup(fs->key_file);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash != NULL) {
            int dfd;
            *slash = '\0';
            dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (dfd >= 0) {
                hive__remove_orphans(dfd, HIVE_TMP_PREFIX "key-");
                close(dfd);
            }
        }
        free(dir);
    }
    return HIVE_OK;
}

/* --- paths of the store ---------------------------------------------- */

const char *hive_file_storage_dir(const hive_storage *s)
{
    return (s != NULL && s->ops == &file_ops) ? ((const file_storage *)s)->dir : NULL;
}

const char *hive_file_storage_key_file(const hive_storage *s)
{
    return (s != NULL && s->ops == &file_ops) ? ((const file_storage *)s)->key_file : NULL;
}

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
            check_mode(fs, WARN_CRED_FILE, &st, "credential file", path);
        snprintf(path, sizeof(path), "%s/" CRED_DIR, fs->dir);
        if (fstat(credfd, &st) == 0)
            check_mode(fs, WARN_CRED_DIR, &st, "directory", path);
    }
    rc = fs_load_key(fs);
    fs->key_failed = rc != HIVE_OK;
    if (rc == HIVE_OK) {
        if (token_len == 0)
            rc = hive__fail(HIVE_ERR_DECRYPT, "file is empty");
        else
            rc = hive_fernet_decrypt(&plain, &plain_len, token, token_len, fs->key);
        /* mid-rotation, a file may already be under the new key */
        if (rc == HIVE_ERR_DECRYPT && fs->have_next && token_len > 0 &&
            hive_fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK)
            rc = HIVE_OK;
        /* a long-lived handle (the --fresh refresher) after another process
         * rotated the key: read the key file (or the rotation marker) again,
         * once */
        if (rc == HIVE_ERR_DECRYPT && fs->kind != HIVE_KEY_GIVEN && token_len > 0 &&
            fs_reload_key(fs) == HIVE_OK) {
            rc = hive_fernet_decrypt(&plain, &plain_len, token, token_len, fs->key);
            if (rc == HIVE_ERR_DECRYPT && fs->have_next &&
                hive_fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK)
                rc = HIVE_OK;
        }
    }
    hive_free_secret(token, token_len + 1);
    if (rc != HIVE_OK)
        return rc;
    rc = hive_cred_parse(out, (const char *)plain, plain_len);
    hive_free_secret(plain, plain_len + 1);
    return rc;
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
        rc = hive_cred_emit(&plain, &plain_len, cred);
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
    hive_free_secret(plain, plain_len + 1);
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
    hive_free_str(fs->explicit_key);
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
    "file", locked_load, locked_save, locked_delete, locked_exists, locked_list, file_destroy,
    file_lock, file_unlock, false,
};

/* The one HIVE_HOME resolver (file and etcd storages): $HIVE_HOME, else
 * $HOME/.hive, else the password database's home/.hive; NULL when none is
 * known: never a shared default such as /tmp. */
char *hive__home_dir(void)
{
    const char *home = getenv(HIVE_ENV_HOME);
    const char *user_home;

    if (home != NULL && *home != '\0')
        return hive__strdup(home);
    user_home = getenv("HOME");
    if (user_home == NULL || *user_home == '\0') {
        struct passwd *pw = getpwuid(geteuid());
        user_home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    return user_home ? hive__aprintf("%s/.hive", user_home) : NULL;
}

hive_rc hive_file_storage_open(hive_storage **out, const hive_file_options *opts)
{
    hive__clear_error();
    file_storage *fs = calloc(1, sizeof(*fs));
    hive_file_options none = {0};
    char *home = NULL;

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
        home = hive__home_dir();
        if (home == NULL) {
            pthread_mutex_destroy(&fs->mu);
            free(fs);
            return hive__fail(HIVE_ERR_INVALID, "cannot find the home directory: set " HIVE_ENV_HOME);
        }
        {
            char *tmp = hive__aprintf("%s/credentials", home);
            fs->dir = tmp ? hive__absolute_path(tmp) : NULL;
            free(tmp);
        }
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
    free(home);
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

    if (s == NULL || s->ops != &file_ops)
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
    rc = hive_fernet_decrypt(&plain, &plain_len, token, len, fs->key);
    if (rc == HIVE_ERR_DECRYPT && fs->have_next &&
        hive_fernet_decrypt(&plain, &plain_len, token, len, fs->next) == HIVE_OK)
        rc = HIVE_OK;
    if (rc != HIVE_OK)
        return rc;
    rc = hive_cred_parse(out, (const char *)plain, plain_len);
    hive_free_secret(plain, plain_len + 1);
    return rc;
}

hive_rc hive__file_encrypt(hive_storage *local, const hive_cred *cred, char **token, size_t *len)
{
    file_storage *fs = (file_storage *)local;
    char *plain = NULL;
    size_t plain_len = 0;
    hive_rc rc = fs_load_key(fs);

    if (rc == HIVE_OK)
        rc = hive_cred_emit(&plain, &plain_len, cred);
    if (rc == HIVE_OK)
        rc = hive_fernet_encrypt(token, len, plain, plain_len, fs_write_key(fs));
    hive_free_secret(plain, plain_len + 1);
    return rc;
}

