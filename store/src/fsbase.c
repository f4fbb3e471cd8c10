/*
 * fsbase.c - the file storage's ground floor: knowing a file storage,
 * permission warnings, file names of ids, opening its directories, listing
 * its files, and the store lock. Below keys.c, credfile.c, index.c,
 * rotate.c and filestore.c; calls none of them.
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

/* The file storage's ops name: fs_of knows a file storage by this very
 * pointer, so the storage's files below filestore.c need not see its ops. */
const char hive__file_storage_name[] = "file";

file_storage *fs_of(const hive_storage *s)
{
    return (s != NULL && s->ops->name == hive__file_storage_name) ? (file_storage *)(uintptr_t)s : NULL;
}

/* Say once (per `which`) that a store file or directory at path is open
 * to group or others, and the chmod that closes it. Writable is worse:
 * whoever can write a directory can replace the files in it, the key
 * among them. */
void fs_check_mode(file_storage *fs, unsigned which, const struct stat *st, const char *what,
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
        fs_check_mode(fs, which, &st, what, path);
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
            fs_check_mode(fs, WARN_STORE_DIR, &st, "store directory", fs->dir);
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
    const file_storage *fs = fs_of(s);

    return fs != NULL ? fs->dir : NULL;
}

const char *hive_file_storage_key_file(const hive_storage *s)
{
    const file_storage *fs = fs_of(s);

    return fs != NULL ? fs->key_file : NULL;
}
