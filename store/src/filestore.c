/*
 * filestore.c - the encrypted file storage, in the Python Hive layout.
 *
 * Better than Hive where Hive is weak: every write goes to a temporary file
 * that is fsynced and renamed into place, then the directory is fsynced;
 * writers are serialised by flock() on <dir>/.lock, so concurrent writers
 * never lose an index entry; directories are 0700 and files 0600; no
 * symbolic link inside the store is ever followed (openat + O_NOFOLLOW).
 */
#include "buf.h"

#include <mbedtls/sha256.h>

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

#define CRED_DIR "credentials"
#define META_DIR "metadata"
#define INDEX_FILE "index.json"
#define LOCK_FILE ".lock"
#define TMP_PREFIX ".tmp-"
#define ENC_SUFFIX ".enc"
#define MAX_FILE (64u * 1024 * 1024)
/* The index is a cache, parsed whole: a parsed JSON value costs about 150
 * bytes, however small its text, so "[0,0,0,...]" would take 75 times its
 * size. Hive writes the index with indent 2, 13 bytes or more per
 * separator (, : [ {), about 370 bytes per credential. An index larger
 * than INDEX_MAX (some 45,000 credentials), or with more than one
 * separator per INDEX_BYTES_PER_SEP bytes, is not parsed: it is rebuilt
 * from the files, as a damaged one is. Parsing then costs at most about
 * 15 times the index's size. */
#define INDEX_MAX (16u * 1024 * 1024)
#define INDEX_BYTES_PER_SEP 10

typedef struct file_storage {
    hive_storage base;
    char *dir;              /* absolute store directory */
    char *key_file;
    char *explicit_key;     /* wiped on free */
    const char *key_source; /* set once the key is loaded */
    bool have_key;
    uint8_t key[HIVE_FERNET_KEY_BYTES];
    /* A key rotation in progress (secrets/credential_key.new, or
     * HIVE_NEW_CREDENTIAL_KEY for a key kept in the environment): files may
     * be under either key; new writes use this one. */
    bool have_next;
    uint8_t next[HIVE_FERNET_KEY_BYTES];
    char *next_file;
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    unsigned warned;        /* WARN_* said already */
    bool key_failed;        /* the last read_cred_at failed on the key, not the file */
    /* Guards the key state above (key, next, have_*, key_source,
     * key_failed, warned): one handle may serve several threads. Held by
     * each storage operation (locked_* below), never across the refresh
     * lock, which a thread holds between operations. */
    pthread_mutex_t mu;
} file_storage;

/* What has been found open to group or others: each is said once. */
enum {
    WARN_STORE_DIR = 1,     /* the store directory */
    WARN_CRED_DIR = 2,      /* its credentials/ */
    WARN_CRED_FILE = 4,     /* a credential file (the first one found) */
    WARN_SECRETS_DIR = 8    /* the key file's directory */
};

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

static void check_path_mode(file_storage *fs, unsigned which, const char *what, const char *path)
{
    struct stat st;

    if (fs->warn != NULL && (fs->warned & which) == 0 && stat(path, &st) == 0)
        check_mode(fs, which, &st, what, path);
}

typedef enum index_state {
    INDEX_OK,        /* schema 2.0, well formed */
    INDEX_MISSING,
    INDEX_DAMAGED,   /* unreadable or not an index */
    INDEX_OLD        /* readable, but schema 1.0 or unknown: rewrite as 2.0 */
} index_state;

static const hive_storage_ops file_ops;

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

static hive_rc enc_name(char *buf, size_t size, const char *id)
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

static hive_rc io_fail(int err, const char *what, const char *path)
{
    if (err == ELOOP || err == EMLINK)
        return hive__fail(HIVE_ERR_PERM, "%s %s is a symbolic link; refusing to follow it", what, path);
    if (err == EACCES || err == EPERM)
        return hive__fail(HIVE_ERR_PERM, "%s %s: %s", what, path, strerror(err));
    if (err == ENOTDIR)
        return hive__fail(HIVE_ERR_PERM, "%s %s is not a directory (or is a symbolic link)", what, path);
    return hive__fail(HIVE_ERR_IO, "%s %s: %s", what, path, strerror(err));
}

/* Open dir itself (following a symlink in the path the user gave). */
static hive_rc open_base(file_storage *fs, int *fd, bool create)
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
                    return io_fail(e, "cannot create directory", fs->dir);
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
        return io_fail(errno, "cannot open store directory", fs->dir);
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
static hive_rc open_sub(file_storage *fs, int base, const char *name, int *fd, bool create)
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
            return io_fail(e == ENOTDIR ? ELOOP : e, "store directory", path);
        }
    }
    *fd = d;
    return HIVE_OK;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

hive_rc hive__read_at(int dirfd, const char *name, bool nofollow, size_t max, const char *what,
                      char **data, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));

    if (fd < 0) {
        if (errno == ENOENT)
            return HIVE_ERR_NOT_FOUND;   /* the caller words it */
        return io_fail(errno, what, name);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "%s %s is not a regular file", what, name);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return hive__fail(HIVE_ERR_TOO_LARGE, "%s %s is larger than %zu bytes", what, name, max);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            hive__free_secret(buf, (size_t)st.st_size + 1);
            return io_fail(e, "cannot read", name);
        }
        if (n == 0)
            break;  /* shrank while we read: take what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return HIVE_OK;
}

/* A file of the store: never through a symlink, at most MAX_FILE bytes. */
static hive_rc read_at(int dirfd, const char *name, const char *what, char **data, size_t *len)
{
    return hive__read_at(dirfd, name, true, MAX_FILE, what, data, len);
}

static hive_rc write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hive__fail(HIVE_ERR_IO, "write failed: %s", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return HIVE_OK;
}

/*
 * Atomically replace dirfd/name with data: a 0600 temporary file created
 * with O_EXCL|O_NOFOLLOW, fsync, rename over name, fsync the directory.
 */
static hive_rc atomic_write_tmp_at(int dirfd, const char *prefix, const char *name, const char *data,
                                  size_t len, bool *placed)
{
    char tmp[64];
    uint8_t rnd[8];
    int fd;
    hive_rc rc;

    rc = hive__random(rnd, sizeof(rnd));
    if (rc != HIVE_OK)
        return rc;
    if (snprintf(tmp, sizeof(tmp), "%s%ld-%02x%02x%02x%02x%02x%02x%02x%02x", prefix, (long)getpid(),
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) >= (int)sizeof(tmp))
        return hive__fail(HIVE_ERR_INVALID, "temporary file prefix too long");
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return hive__fail(HIVE_ERR_IO, "cannot create a temporary file: %s", strerror(errno));
    rc = write_all(fd, data, len);
    if (rc == HIVE_OK && fsync(fd) != 0)
        rc = hive__fail(HIVE_ERR_IO, "fsync failed: %s", strerror(errno));
    if (close(fd) != 0 && rc == HIVE_OK)
        rc = hive__fail(HIVE_ERR_IO, "close failed: %s", strerror(errno));
    if (rc == HIVE_OK && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = hive__fail(HIVE_ERR_IO, "cannot rename into place: %s", strerror(errno));
    if (rc != HIVE_OK) {
        unlinkat(dirfd, tmp, 0);
        return rc;
    }
    /* from here on the new content is in place, whatever happens */
    if (placed != NULL)
        *placed = true;
    if (fsync(dirfd) != 0)
        return hive__fail(HIVE_ERR_IO, "fsync of directory failed: %s", strerror(errno));
    return HIVE_OK;
}

static hive_rc atomic_write_at(int dirfd, const char *name, const char *data, size_t len)
{
    return atomic_write_tmp_at(dirfd, TMP_PREFIX, name, data, len, NULL);
}

/* The directory of path, opened, and path's last component. */
static hive_rc open_parent(const char *path, int *dfd, const char **base)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int d;

    if (slash == NULL) {
        d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        dir = hive__strndup(path, (size_t)(slash - path));
        if (dir == NULL)
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        d = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
    }
    if (d < 0)
        return io_fail(errno, "cannot open the directory of", path);
    *dfd = d;
    *base = slash ? slash + 1 : path;
    return HIVE_OK;
}

hive_rc hive__write_file_atomic_tmp(const char *path, const char *tmp_prefix, const char *data, size_t len)
{
    const char *base;
    int dfd;
    hive_rc rc = open_parent(path, &dfd, &base);

    if (rc != HIVE_OK)
        return rc;
    rc = atomic_write_tmp_at(dfd, tmp_prefix, base, data, len, NULL);
    close(dfd);
    if (rc != HIVE_OK)
        rc = hive__fail_prefix(rc, "cannot write %s", path);
    return rc;
}

hive_rc hive__write_file_atomic(const char *path, const char *data, size_t len)
{
    return hive__write_file_atomic_tmp(path, TMP_PREFIX, data, len);
}

/* Under the lock every temporary file is an orphan of a killed writer. */
static void remove_orphans(int dirfd, const char *prefix)
{
    int d = dup(dirfd);
    DIR *dir;
    struct dirent *e;

    if (d < 0)
        return;
    dir = fdopendir(d);
    if (dir == NULL) {
        close(d);
        return;
    }
    while ((e = readdir(dir)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            unlinkat(dirfd, e->d_name, 0);
    closedir(dir);
}

static bool regular_at(int dirfd, const char *name)
{
    struct stat st;

    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* Names of the .enc files in dirfd, sorted. */
static hive_rc scan_enc(int dirfd, hive_strlist *out)
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
            (e->d_type == DT_REG || (e->d_type == DT_UNKNOWN && regular_at(dirfd, e->d_name))))
            rc = hive__strlist_add(out, e->d_name);
    closedir(dir);
    if (rc == HIVE_OK)
        hive__strlist_sort_unique(out);
    return rc;
}

/* --- the lock -------------------------------------------------------- */

/* An exclusive flock on dirfd/name (made 0600, never through a symlink);
 * `where` names the directory in messages. */
static hive_rc flock_at(int dirfd, const char *name, const char *where, int *lockfd)
{
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0)
        return io_fail(errno, "cannot open lock file in", where);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return hive__fail(HIVE_ERR_LOCK, "cannot lock %s/%s: %s", where, name, strerror(e));
        }
    }
    *lockfd = fd;
    return HIVE_OK;
}

static hive_rc lock_store(file_storage *fs, int base, int *lockfd)
{
    return flock_at(base, LOCK_FILE, fs->dir, lockfd);
}

hive_rc hive__lock_beside(const char *path, const char *lock_name, const char *orphans, int *lockfd)
{
    const char *base;
    int dfd;
    hive_rc rc = open_parent(path, &dfd, &base);

    if (rc != HIVE_OK)
        return rc;
    rc = flock_at(dfd, lock_name, path, lockfd);
    if (rc == HIVE_OK)
        remove_orphans(dfd, orphans);
    close(dfd);
    return rc;
}

void hive__unlock(int *lockfd)
{
    if (*lockfd >= 0) {
        flock(*lockfd, LOCK_UN);
        close(*lockfd);
    }
    *lockfd = -1;
}

static void unlock_store(int *lockfd)
{
    hive__unlock(lockfd);
}

/* --- the key --------------------------------------------------------- */

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' ||
                        (*s)[*len - 1] == '\n' || (*s)[*len - 1] == '\r'))
        (*len)--;
}

/* Read a key file into key. HIVE_ERR_NO_KEY when it does not exist. Like
 * ssh with a private key, refuse one that group or others can access. */
static hive_rc read_key_file(const char *path, uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    struct stat st;
    char buf[512];
    ssize_t n;
    const char *p = buf;
    size_t len;
    hive_rc rc;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        if (errno == ENOENT)
            return hive__fail(HIVE_ERR_NO_KEY, "No encryption key: " HIVE_ENV_KEY
                              " is not set and %s does not exist", path);
        return io_fail(errno, "cannot open key file", path);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "key file %s is not a regular file", path);
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "key file %s is %s by group or others (mode %04o); it must "
                          "be 0600: chmod 600 %s", path, (st.st_mode & 022) ? "writable" : "readable",
                          (unsigned)(st.st_mode & 07777), path);
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0)
        return io_fail(errno, "cannot read key file", path);
    len = (size_t)n;
    trim(&p, &len);
    rc = hive_fernet_key_decode(key, p, len);
    hive_memzero(buf, sizeof(buf));
    if (rc != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, "key file %s does not hold a Fernet key "
                          "(urlsafe base64 of 32 bytes)", path);
    return HIVE_OK;
}

static hive_rc load_key(file_storage *fs)
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
        rc = read_key_file(fs->key_file, fs->key);
        if (rc != HIVE_OK)
            return rc;
        fs->key_source = fs->key_file;
        if (fs->warn != NULL && (fs->warned & WARN_SECRETS_DIR) == 0) {
            char *dir = hive__strdup(fs->key_file);
            char *slash = dir ? strrchr(dir, '/') : NULL;
            if (slash != NULL && slash != dir) {
                *slash = '\0';
                check_path_mode(fs, WARN_SECRETS_DIR, "key directory", dir);
            }
            free(dir);
        }
    }
    fs->have_key = true;
    /* a rotation left half done: the key it was moving to */
    fs->have_next = false;
    if (fs->key_source == fs->key_file) {
        rc = read_key_file(fs->next_file, fs->next);
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

/* Under the store lock: read the key files again, since a rotation in
 * another process may have switched them. */
static hive_rc reload_key(file_storage *fs)
{
    if (fs->have_key && fs->key_source == fs->key_file) {
        fs->have_key = false;
        fs->have_next = false;
    }
    return load_key(fs);
}

/* The key new tokens are written with. */
static const uint8_t *write_key(const file_storage *fs)
{
    return fs->have_next ? fs->next : fs->key;
}

const char *hive_file_storage_dir(const hive_storage *s)
{
    return (s != NULL && s->ops == &file_ops) ? ((const file_storage *)s)->dir : NULL;
}

const char *hive_file_storage_key_file(const hive_storage *s)
{
    return (s != NULL && s->ops == &file_ops) ? ((const file_storage *)s)->key_file : NULL;
}

const char *hive_file_storage_key_source(hive_storage *s)
{
    file_storage *fs = (file_storage *)s;

    const char *source;

    if (s == NULL || s->ops != &file_ops)
        return NULL;
    pthread_mutex_lock(&fs->mu);
    source = load_key(fs) == HIVE_OK ? fs->key_source : NULL;
    pthread_mutex_unlock(&fs->mu);
    return source;
}

/* --- reading credentials -------------------------------------------- */

/* Decrypt and parse the file `name` under credfd. On failure the detail is
 * the bare cause; callers add "Failed to decrypt credential 'ID'". */
static hive_rc read_cred_at(file_storage *fs, int credfd, const char *name, hive_cred **out)
{
    struct stat st;
    char *token = NULL;
    size_t token_len = 0;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    hive_rc rc;

    fs->key_failed = false;
    rc = read_at(credfd, name, "credential file", &token, &token_len);
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
    rc = load_key(fs);
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
         * rotated the key: read the key file again, once */
        if (rc == HIVE_ERR_DECRYPT && fs->key_source == fs->key_file && token_len > 0 &&
            reload_key(fs) == HIVE_OK) {
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

static hive_rc file_load(hive_storage *s, hive_cred **out, const char *id)
{
    file_storage *fs = (file_storage *)s;
    char name[HIVE_ID_MAX + 16];
    hive_cred *cred = NULL;
    int base = -1;
    int credfd = -1;
    hive_rc rc;

    rc = enc_name(name, sizeof(name), id);
    if (rc != HIVE_OK)
        return rc;
    rc = open_base(fs, &base, false);
    if (rc == HIVE_OK)
        rc = open_sub(fs, base, CRED_DIR, &credfd, false);
    close_fd(&base);
    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    if (rc != HIVE_OK)
        return rc;
    rc = read_cred_at(fs, credfd, name, &cred);
    close_fd(&credfd);
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

/* --- the index ------------------------------------------------------- */

static hive_json *time_or_null(const hive_time *t)
{
    char text[HIVE_TIME_TEXT];

    if (t->form == HIVE_TIME_NONE)
        return hive_json_new(HIVE_JSON_NULL);
    hive_time_format(text, t, false);
    return hive_json_new_string(text, strlen(text));
}

static hive_json *key_or_null(const hive_cred *cred, const char *key)
{
    size_t len;
    const char *v = hive_cred_get_key(cred, key, &len);

    return v ? hive_json_new_string(v, len) : hive_json_new(HIVE_JSON_NULL);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key name, counted: it may hold NUL, as Python's str may. */
typedef struct name_ref {
    const char *s;
    size_t len;
} name_ref;

/* Python's order of str: by code point, which UTF-8 bytes keep. */
static int cmp_name(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static bool hidden_name(const name_ref *n)
{
    return (n->len == 6 && memcmp(n->s, "_alias", 6) == 0) ||
           (n->len == 17 && memcmp(n->s, "_integration_type", 17) == 0) ||
           (n->len >= 10 && memcmp(n->s, "_identity_", 10) == 0);
}

/* The 2.0 index entry Hive writes for cred. */
static hive_rc index_entry(hive_json **out, const hive_cred *cred)
{
    static const char *const identity_fields[] = {"email", "username", "workspace", "account_id"};
    hive_json *e = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *identity = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *names = hive_json_new(HIVE_JSON_ARRAY);
    const hive_json *keys = hive_json_get(hive_cred_json(cred), "keys");
    size_t nkeys = hive_json_size(keys);
    name_ref *sorted = calloc(nkeys + 1, sizeof(*sorted));
    size_t ns = 0;
    hive_time t;
    hive_rc rc = HIVE_OK;

    if (e == NULL || identity == NULL || names == NULL || sorted == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < 4 && rc == HIVE_OK; i++) {
        char k[32];
        snprintf(k, sizeof(k), "_identity_%s", identity_fields[i]);
        if (hive_cred_get_key(cred, k, NULL) != NULL)
            rc = hive_json_set(identity, identity_fields[i], key_or_null(cred, k));
    }
    for (size_t i = 0; i < nkeys; i++) {
        (void)hive_json_member(keys, i, &sorted[ns].s, &sorted[ns].len);
        if (!hidden_name(&sorted[ns]))
            ns++;
    }
    qsort(sorted, ns, sizeof(*sorted), cmp_name);
    for (size_t i = 0; i < ns && rc == HIVE_OK; i++)
        rc = hive_json_append(names, hive_json_new_string(sorted[i].s, sorted[i].len));
    if (rc != HIVE_OK)
        goto fail;

    rc = hive_json_set(e, "credential_type", hive_json_new_string(hive_cred_type_str(cred),
                                                                  strlen(hive_cred_type_str(cred))));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "provider", key_or_null(cred, "_integration_type"));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "alias", key_or_null(cred, "_alias"));
    if (rc == HIVE_OK) {
        rc = hive_json_set(e, "identity", identity);
        identity = NULL;
    }
    if (rc == HIVE_OK) {
        rc = hive_json_set(e, "key_names", names);
        names = NULL;
    }
    t = hive_cred_time(cred, HIVE_CRED_CREATED_AT);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "created_at", time_or_null(&t));
    t = hive_cred_time(cred, HIVE_CRED_UPDATED_AT);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "updated_at", time_or_null(&t));
    t = hive_cred_time(cred, HIVE_CRED_LAST_REFRESHED);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "last_refreshed", time_or_null(&t));
    t = hive_cred_expires(cred);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "expires_at", time_or_null(&t));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "auto_refresh",
                           hive_json_new(hive_cred_auto_refresh(cred) ? HIVE_JSON_TRUE : HIVE_JSON_FALSE));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "tags", hive_json_clone(hive_cred_tags(cred)));
    if (rc != HIVE_OK)
        goto fail;
    free(sorted);
    *out = e;
    return HIVE_OK;
fail:
    free(sorted);
    hive_json_free(&e);
    hive_json_free(&identity);
    hive_json_free(&names);
    return rc;
}

/* Whether text has more separators than an index Hive writes could. */
static bool too_dense(const char *text, size_t len)
{
    size_t seps = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            seps++;
        }
    }
    return seps > len / INDEX_BYTES_PER_SEP + 64;
}

/* Read the index. *out is set (the parsed document) for OK and OLD. */
static index_state read_index(int metafd, hive_json **out)
{
    char *text = NULL;
    size_t len = 0;
    hive_json *doc = NULL;
    const hive_json *creds;
    const hive_json *version;
    hive_rc rc;

    *out = NULL;
    if (metafd < 0)
        return INDEX_MISSING;
    rc = hive__read_at(metafd, INDEX_FILE, true, INDEX_MAX, "index", &text, &len);
    if (rc == HIVE_ERR_NOT_FOUND)
        return INDEX_MISSING;
    if (rc != HIVE_OK)
        return INDEX_DAMAGED;
    if (too_dense(text, len)) {
        hive__free_secret(text, len + 1);
        return INDEX_DAMAGED;
    }
    rc = hive_json_parse(&doc, text, len);
    hive__free_secret(text, len + 1);
    if (rc != HIVE_OK)
        return INDEX_DAMAGED;
    creds = hive_json_get(doc, "credentials");
    if (hive_json_typeof(doc) != HIVE_JSON_OBJECT || hive_json_typeof(creds) != HIVE_JSON_OBJECT) {
        hive_json_free(&doc);
        return INDEX_DAMAGED;
    }
    for (size_t i = 0; i < hive_json_size(creds); i++) {
        if (hive_json_typeof(hive_json_at(creds, i, NULL)) != HIVE_JSON_OBJECT) {
            hive_json_free(&doc);
            return INDEX_DAMAGED;
        }
    }
    *out = doc;
    version = hive_json_get(doc, "version");
    if (hive_json_typeof(version) == HIVE_JSON_STRING &&
        strcmp(hive_json_string(version, NULL), "2.0") == 0)
        return INDEX_OK;
    return INDEX_OLD;
}

/* The id the index lists for a file name, if any (NULL). */
static const char *index_id_for(const hive_json *creds, const char *name)
{
    char other[HIVE_ID_MAX + 16];

    for (size_t i = 0; i < hive_json_size(creds); i++) {
        const char *id;
        hive_json_at(creds, i, &id);
        if (enc_name(other, sizeof(other), id) == HIVE_OK && strcmp(other, name) == 0)
            return id;
    }
    return NULL;
}

/*
 * Rebuild the "credentials" object from the files: every entry whose file
 * still exists is kept (refreshed when its file decrypts), and files the
 * index did not know are added. Never drops a readable credential.
 */
static hive_rc rebuild_entries(file_storage *fs, int credfd, const hive_json *old_creds,
                               bool refresh_all, hive_json **out)
{
    hive_strlist files = {0};
    hive_json *creds = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc;
    bool *covered = NULL;

    if (creds == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = scan_enc(credfd, &files);
    if (rc != HIVE_OK)
        goto out;
    covered = calloc(files.count + 1, sizeof(bool));
    if (covered == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Entries the index had, in its order. */
    for (size_t i = 0; i < hive_json_size(old_creds) && rc == HIVE_OK; i++) {
        const char *id;
        const hive_json *entry = hive_json_at(old_creds, i, &id);
        char name[HIVE_ID_MAX + 16];
        hive_json *fresh = NULL;
        hive_cred *cred = NULL;
        const char *key = name;
        char **hit;
        size_t f;

        if (enc_name(name, sizeof(name), id) != HIVE_OK)
            continue;
        /* files is sorted (scan_enc) */
        hit = files.count ? bsearch(&key, files.items, files.count, sizeof(char *), cmp_cstr) : NULL;
        f = hit ? (size_t)(hit - files.items) : files.count;
        if (f == files.count || covered[f])
            continue;   /* its file is gone: a stale entry */
        /* the id inside the file decides: an entry for another id that
         * maps to the same file is stale */
        if (read_cred_at(fs, credfd, name, &cred) == HIVE_OK) {
            if (strcmp(hive_cred_id(cred), id) != 0) {
                hive_cred_free(&cred);
                continue;
            }
            if (refresh_all)
                rc = index_entry(&fresh, cred);
        }
        hive__clear_error();
        covered[f] = true;
        hive_cred_free(&cred);
        if (rc == HIVE_OK)
            rc = hive_json_set(creds, id, fresh ? fresh : hive_json_clone(entry));
    }
    /* Files the index did not know. */
    for (size_t f = 0; f < files.count && rc == HIVE_OK; f++) {
        hive_cred *cred = NULL;
        hive_json *fresh = NULL;
        char name[HIVE_ID_MAX + 16];

        if (covered[f])
            continue;
        if (read_cred_at(fs, credfd, files.items[f], &cred) != HIVE_OK)
            continue;   /* unreadable and unknown: listed by name, not indexed */
        if (enc_name(name, sizeof(name), hive_cred_id(cred)) == HIVE_OK &&
            strcmp(name, files.items[f]) == 0 && hive_json_get(creds, hive_cred_id(cred)) == NULL) {
            rc = index_entry(&fresh, cred);
            if (rc == HIVE_OK)
                rc = hive_json_set(creds, hive_cred_id(cred), fresh);
        }
        hive_cred_free(&cred);
    }
out:
    free(covered);
    hive_strlist_free(&files);
    if (rc != HIVE_OK) {
        hive_json_free(&creds);
        return rc;
    }
    *out = creds;
    return HIVE_OK;
}

/* Write doc as the index, with Hive's trailer fields. */
static hive_rc write_index(file_storage *fs, int metafd, hive_json *doc)
{
    hive_time now = hive_time_now();
    char stamp[HIVE_TIME_TEXT];
    char *text = NULL;
    size_t len = 0;
    hive_rc rc;

    hive_time_format(stamp, &now, false);
    rc = hive_json_set(doc, "version", hive_json_new_string("2.0", 3));
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "store_path", hive_json_new_string(fs->dir, strlen(fs->dir)));
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "generated_at", hive_json_new_string(stamp, strlen(stamp)));
    if (rc == HIVE_OK)
        rc = hive__json_emit(&text, &len, doc, 2);
    if (rc == HIVE_OK)
        rc = atomic_write_at(metafd, INDEX_FILE, text, len);
    hive__free_secret(text, len + 1);
    if (rc != HIVE_OK)
        return hive__fail_prefix(rc, "cannot write the index of %s", fs->dir);
    return HIVE_OK;
}

/* Remove the entries of creds whose file is id's (but id's own when
 * keep_id). */
static hive_rc drop_entries_for_file(hive_json *creds, const char *id, bool keep_id)
{
    char name[HIVE_ID_MAX + 16];
    char other[HIVE_ID_MAX + 16];
    hive_rc rc = enc_name(name, sizeof(name), id);

    for (size_t i = hive_json_size(creds); rc == HIVE_OK && i-- > 0;) {
        const char *k;
        char *copy;
        hive_json_at(creds, i, &k);
        if ((keep_id && strcmp(k, id) == 0) || enc_name(other, sizeof(other), k) != HIVE_OK ||
            strcmp(other, name) != 0)
            continue;
        copy = hive__strdup(k);
        if (copy == NULL)
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        hive_json_remove(creds, copy);
        free(copy);
    }
    return rc;
}

/*
 * With the lock held: read the index, rebuild it if it is missing, damaged
 * or of an old schema (which needs the key), apply one change, write it.
 * put: entry for id (NULL to remove id; id NULL: no change).
 */
static hive_rc update_index(file_storage *fs, int credfd, int metafd, const char *id, hive_json *put,
                            bool force_rebuild)
{
    hive_json *doc = NULL;
    index_state st = read_index(metafd, &doc);
    hive_json *creds;
    hive_rc rc = HIVE_OK;

    if (st != INDEX_OK || force_rebuild) {
        hive_json *rebuilt = NULL;
        hive_json *fresh = hive_json_new(HIVE_JSON_OBJECT);
        if (fresh == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = rebuild_entries(fs, credfd, doc ? hive_json_get(doc, "credentials") : NULL,
                             st == INDEX_OLD, &rebuilt);
        if (rc == HIVE_OK)
            rc = hive_json_set(fresh, "credentials", rebuilt);
        hive_json_free(&doc);
        doc = fresh;
        if (rc != HIVE_OK)
            goto out;
    }
    creds = hive_json_get_mut(doc, "credentials");
    /* One entry per file: an entry for id replaces every other entry that
     * names id's file (stale ones, from a file removed or written by hand),
     * and a file removed takes all of them with it. */
    if (id != NULL)
        rc = drop_entries_for_file(creds, id, put != NULL);
    if (rc == HIVE_OK && put != NULL) {
        rc = hive_json_set(creds, id, put);
        put = NULL;
    }
    if (rc == HIVE_OK)
        rc = write_index(fs, metafd, doc);
out:
    hive_json_free(&put);
    hive_json_free(&doc);
    return rc;
}

/* --- writing --------------------------------------------------------- */

typedef struct locked {
    int base;
    int cred;
    int meta;
    int lock;
} locked;

static void unlock_all(locked *l)
{
    unlock_store(&l->lock);
    close_fd(&l->cred);
    close_fd(&l->meta);
    close_fd(&l->base);
}

static hive_rc lock_all(file_storage *fs, locked *l, bool create)
{
    hive_rc rc;

    l->base = l->cred = l->meta = l->lock = -1;
    rc = open_base(fs, &l->base, create);
    if (rc == HIVE_OK)
        rc = open_sub(fs, l->base, CRED_DIR, &l->cred, create);
    if (rc == HIVE_OK)
        rc = open_sub(fs, l->base, META_DIR, &l->meta, create);
    if (rc == HIVE_OK)
        rc = lock_store(fs, l->base, &l->lock);
    if (rc != HIVE_OK) {
        unlock_all(l);
        return rc;
    }
    remove_orphans(l->cred, TMP_PREFIX);
    remove_orphans(l->meta, TMP_PREFIX);
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
                remove_orphans(dfd, TMP_PREFIX "key-");
                close(dfd);
            }
        }
        free(dir);
    }
    return HIVE_OK;
}

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

    if (read_cred_at(fs, credfd, name, &cred) == HIVE_OK) {
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
            if (enc_name(other, sizeof(other), owner) == HIVE_OK && strcmp(other, name) == 0) {
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
        rc = update_index(fs, l->cred, l->meta, hive_cred_id(holder), entry, false);
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

    rc = enc_name(name, sizeof(name), id);
    if (rc == HIVE_OK)
        rc = load_key(fs);   /* fail early, before creating anything */
    if (rc == HIVE_OK)
        rc = hive__cred_emit(&plain, &plain_len, cred);
    if (rc == HIVE_OK)
        rc = index_entry(&entry, cred);
    if (rc != HIVE_OK)
        goto out;

    rc = lock_all(fs, &l, true);
    if (rc != HIVE_OK)
        goto out;
    /* A new id must be one we are willing to create; an existing one (a
     * Python-written ".x", say) may be written again: refusing would lose
     * a refresh that already happened. */
    if (!regular_at(l.cred, name) && (rc = check_new_id(id)) != HIVE_OK) {
        unlock_all(&l);
        goto out;
    }
    /* encrypt under the lock, with the key as it is now: a rotation that
     * ran while we waited must not be undone by this write */
    rc = reload_key(fs);
    if (rc == HIVE_OK)
        rc = hive_fernet_encrypt(&token, &token_len, plain, plain_len, write_key(fs));
    if (rc != HIVE_OK) {
        unlock_all(&l);
        goto out;
    }
    /* Hive's id-to-file mapping is lossy ("a/b" and "a_b" share a file):
     * never let one credential overwrite another. */
    if (regular_at(l.cred, name)) {
        hive_cred *holder = NULL;
        (void)read_index(l.meta, &idx);
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
        rc = atomic_write_tmp_at(l.cred, TMP_PREFIX, name, token, token_len, &placed);
        if (rc != HIVE_OK && placed) {
            /* the new file is in place, but its directory entry may not be
             * on disk: the index follows what is in place, and the caller
             * hears exactly that */
            char *why = hive__strdup(hive_last_error());
            hive_rc irc = update_index(fs, l.cred, l.meta, id, entry, false);
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
        if (update_index(fs, l.cred, l.meta, id, entry, false) != HIVE_OK)
            index_not_updated(fs, id, "saved");
        entry = NULL;
    }
    unlock_all(&l);
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

    rc = enc_name(name, sizeof(name), id);
    if (rc != HIVE_OK)
        return rc;
    rc = lock_all(fs, &l, false);
    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    if (rc != HIVE_OK)
        return rc;
    st = read_index(l.meta, &idx);
    if (!regular_at(l.cred, name)) {
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
        rc = io_fail(errno, "cannot delete", name);
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
    if ((st == INDEX_OK || load_key(fs) == HIVE_OK) && update_index(fs, l.cred, l.meta, id, NULL, false) != HIVE_OK)
        index_not_updated(fs, id, "deleted");
    hive__clear_error();
out:
    hive_json_free(&idx);
    unlock_all(&l);
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

    rc = enc_name(name, sizeof(name), id);
    if (rc != HIVE_OK)
        return rc;
    *found = false;
    if (open_base(fs, &base, false) != HIVE_OK || open_sub(fs, base, CRED_DIR, &credfd, false) != HIVE_OK) {
        close_fd(&base);
        hive__clear_error();
        return HIVE_OK;
    }
    if (regular_at(credfd, name)) {
        if (open_sub(fs, base, META_DIR, &metafd, false) == HIVE_OK)
            (void)read_index(metafd, &idx);
        *found = file_holds(fs, credfd, hive_json_get(idx, "credentials"), name, id, NULL);
    }
    hive_json_free(&idx);
    close_fd(&metafd);
    close_fd(&credfd);
    close_fd(&base);
    hive__clear_error();
    return HIVE_OK;
}

/* The sorted file names of the entries of creds. */
static hive_rc entry_files(const hive_json *creds, hive_strlist *names)
{
    hive_rc rc = HIVE_OK;

    for (size_t i = 0; i < hive_json_size(creds) && rc == HIVE_OK; i++) {
        const char *id;
        char name[HIVE_ID_MAX + 16];
        hive_json_at(creds, i, &id);
        if (enc_name(name, sizeof(name), id) == HIVE_OK)
            rc = hive__strlist_add(names, name);
    }
    if (rc == HIVE_OK)
        hive__strlist_sort_unique(names);
    return rc;
}

/* Add to out the files (sorted) that no entry of creds names. */
static hive_rc unexplained_files(const hive_json *creds, const hive_strlist *files, hive_strlist *out)
{
    hive_strlist names = {0};
    hive_rc rc = entry_files(creds, &names);

    for (size_t f = 0; f < files->count && rc == HIVE_OK; f++)
        if (names.count == 0 ||
            bsearch(&files->items[f], names.items, names.count, sizeof(char *), cmp_cstr) == NULL)
            rc = hive__strlist_add(out, files->items[f]);
    hive_strlist_free(&names);
    return rc;
}

/* Whether the index entries creds and the files match one to one. */
static hive_rc index_complete(const hive_json *creds, int credfd, const hive_strlist *files, bool *complete)
{
    hive_strlist names = {0};
    hive_rc rc = HIVE_OK;
    size_t f = 0;

    *complete = true;
    for (size_t i = 0; i < hive_json_size(creds) && rc == HIVE_OK; i++) {
        const char *id;
        char name[HIVE_ID_MAX + 16];
        hive_json_at(creds, i, &id);
        if (enc_name(name, sizeof(name), id) != HIVE_OK || !regular_at(credfd, name))
            *complete = false;
        else
            rc = hive__strlist_add(&names, name);
    }
    if (rc == HIVE_OK && *complete) {
        size_t n = names.count;
        hive__strlist_sort_unique(&names);
        /* two entries for one file, or a file no entry names */
        if (names.count != n || names.count != files->count)
            *complete = false;
        for (f = 0; *complete && f < files->count; f++)
            *complete = strcmp(files->items[f], names.items[f]) == 0;
    }
    hive_strlist_free(&names);
    return rc;
}

/*
 * The index's credentials, repaired from the files when it is missing,
 * damaged, old, or does not cover every file. *unindexed gets the file
 * names that no readable credential explains (damaged files whose id is
 * unknown). The repaired index is written back when possible.
 */
static hive_rc current_index(file_storage *fs, hive_json **out, hive_strlist *unindexed)
{
    int base = -1;
    int credfd = -1;
    int metafd = -1;
    hive_json *doc = NULL;
    const hive_json *old = NULL;
    hive_json *creds = NULL;
    hive_strlist files = {0};
    index_state st;
    bool complete = true;
    hive_rc rc;

    rc = open_base(fs, &base, false);
    if (rc == HIVE_OK)
        rc = open_sub(fs, base, CRED_DIR, &credfd, false);
    if (rc == HIVE_ERR_NOT_FOUND) {
        /* No store yet: nothing in it. */
        close_fd(&base);
        hive__clear_error();
        *out = hive_json_new(HIVE_JSON_OBJECT);
        return *out ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (rc != HIVE_OK)
        goto out;
    if (open_sub(fs, base, META_DIR, &metafd, false) != HIVE_OK)
        metafd = -1;
    st = read_index(metafd, &doc);
    old = doc ? hive_json_get(doc, "credentials") : NULL;
    rc = scan_enc(credfd, &files);
    if (rc != HIVE_OK)
        goto out;
    /* Is every file explained by exactly one entry, and every entry by a
     * file? */
    rc = index_complete(old, credfd, &files, &complete);
    if (rc != HIVE_OK)
        goto out;
    if ((st == INDEX_OK && complete) || load_key(fs) != HIVE_OK) {
        /* Sound, or no key to repair it with: what the index knows (taken
         * out of the document, not copied: it may be large). */
        hive__clear_error();
        creds = old ? hive__json_detach(doc, "credentials") : hive_json_new(HIVE_JSON_OBJECT);
        if (creds == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    } else {
        rc = rebuild_entries(fs, credfd, old, st == INDEX_OLD, &creds);
        /* done with the old index before the repair reads it again */
        hive_json_free(&doc);
        /* Write the repair back, under the lock, when we can. */
        if (rc == HIVE_OK && metafd >= 0) {
            locked l;
            if (lock_all(fs, &l, false) == HIVE_OK) {
                (void)update_index(fs, l.cred, l.meta, NULL, NULL, true);
                unlock_all(&l);
            }
            hive__clear_error();
        }
    }
    if (rc != HIVE_OK)
        goto out;
    /* Drop entries without a file; report files without an entry. */
    for (size_t i = hive_json_size(creds); i-- > 0;) {
        const char *id;
        char name[HIVE_ID_MAX + 16];
        hive_json_at(creds, i, &id);
        if (enc_name(name, sizeof(name), id) != HIVE_OK || !regular_at(credfd, name)) {
            char *copy = hive__strdup(id);
            if (copy != NULL)
                hive_json_remove(creds, copy);
            free(copy);
        }
    }
    if (rc == HIVE_OK && unindexed != NULL)
        rc = unexplained_files(creds, &files, unindexed);
    if (rc == HIVE_OK) {
        *out = creds;
        creds = NULL;
    }
out:
    hive_json_free(&creds);
    hive_json_free(&doc);
    hive_strlist_free(&files);
    close_fd(&metafd);
    close_fd(&credfd);
    close_fd(&base);
    return rc;
}

hive_rc hive_file_storage_index(hive_storage *s, hive_json **out)
{
    hive__clear_error();
    if (s == NULL || s->ops != &file_ops)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "not a file storage");
    return current_index((file_storage *)s, out, NULL);
}

static hive_rc file_list(hive_storage *s, hive_strlist *out)
{
    file_storage *fs = (file_storage *)s;
    hive_json *creds = NULL;
    hive_strlist unindexed = {0};
    hive_strlist ids = {0};
    hive_rc rc;

    rc = current_index(fs, &creds, &unindexed);
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
    rc = open_base(fs, &base, false);
    if (rc == HIVE_OK)
        rc = open_sub(fs, base, ".refresh", &dir, true);
    close_fd(&base);
    if (rc != HIVE_OK)
        return rc;
    fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    close_fd(&dir);
    if (fd < 0)
        return io_fail(errno, "cannot open the refresh lock", name);
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

static char *absolute(const char *path)
{
    char cwd[PATH_MAX];
    size_t n;
    char *p;

    if (path[0] == '/')
        p = hive__strdup(path);
    else if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    else
        p = hive__aprintf("%s/%s", cwd, path);
    /* Drop trailing slashes: the path ends up in the index. */
    n = p ? strlen(p) : 0;
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    return p;
}

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
        fs->dir = absolute(opts->dir);
    } else {
        char *tmp = hive__aprintf("%s/credentials", opts->home);
        fs->dir = tmp ? absolute(tmp) : NULL;
        free(tmp);
    }
    if (fs->dir != NULL) {
        if (opts->key_file != NULL) {
            fs->key_file = absolute(opts->key_file);
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
    if (fs->dir == NULL || fs->key_file == NULL || fs->next_file == NULL ||
        (opts->key != NULL && fs->explicit_key == NULL)) {
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

static hive_rc write_key_file(const char *path, const char *key_text);

/* A new key file for init; one made meanwhile by another process wins. */
static hive_rc create_key_file(file_storage *fs)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    hive_rc rc = hive_fernet_key_generate(key);

    if (rc == HIVE_OK) {
        rc = write_key_file(fs->key_file, key);
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
    rc = lock_all(fs, &l, true);
    if (rc != HIVE_OK)
        return rc;
    if (read_index(l.meta, &doc) == INDEX_MISSING) {
        hive_json *fresh = hive_json_new(HIVE_JSON_OBJECT);
        rc = fresh ? hive_json_set(fresh, "credentials", hive_json_new(HIVE_JSON_OBJECT))
                   : hive__fail(HIVE_ERR_NOMEM, "out of memory");
        if (rc == HIVE_OK)
            rc = write_index(fs, l.meta, fresh);
        hive_json_free(&fresh);
    }
    hive_json_free(&doc);
    /* the key file is made under the lock too: the lock's holders clean up
     * the temporary key files of killed ones */
    if (rc == HIVE_OK) {
        rc = load_key(fs);
        if (rc == HIVE_ERR_NO_KEY) {
            rc = create_key_file(fs);
            if (rc == HIVE_OK) {
                *created_key = true;
                rc = load_key(fs);
            }
        }
    }
    unlock_all(&l);
    return rc;
}

hive_rc hive__file_decrypt(hive_storage *local, const char *token, size_t len, hive_cred **out)
{
    file_storage *fs = (file_storage *)local;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    hive_rc rc = load_key(fs);

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
    hive_rc rc = load_key(fs);

    if (rc == HIVE_OK)
        rc = hive__cred_emit(&plain, &plain_len, cred);
    if (rc == HIVE_OK)
        rc = hive_fernet_encrypt(token, len, plain, plain_len, write_key(fs));
    hive__free_secret(plain, plain_len + 1);
    return rc;
}

/* --- key rotation ------------------------------------------------------- */

/* Write key text to path without replacing an existing file: temp file,
 * fsync, link() into place, fsync the directory. */
static hive_rc write_key_file(const char *path, const char *key_text)
{
    char *dir = hive__strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    char tmp[64];
    uint8_t rnd[8];
    int dfd = -1;
    int fd;
    hive_rc rc;

    if (slash == NULL) {
        free(dir);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = io_fail(errno, "cannot create directory", dir);
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = io_fail(errno, "cannot open directory", dir);
        goto out;
    }
    rc = hive__random(rnd, sizeof(rnd));
    if (rc != HIVE_OK)
        goto out;
    snprintf(tmp, sizeof(tmp), TMP_PREFIX "key-%02x%02x%02x%02x%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = io_fail(errno, "cannot create a key file in", dir);
        goto out;
    }
    rc = write_all(fd, key_text, strlen(key_text));
    if (rc == HIVE_OK && fsync(fd) != 0)
        rc = hive__fail(HIVE_ERR_IO, "fsync failed: %s", strerror(errno));
    close(fd);
    if (rc == HIVE_OK && linkat(dfd, tmp, dfd, slash + 1, 0) != 0)
        rc = errno == EEXIST ? hive__fail(HIVE_ERR_CONFLICT, "%s exists already", path)
                             : io_fail(errno, "cannot create key file", path);
    unlinkat(dfd, tmp, 0);
    if (rc == HIVE_OK && fsync(dfd) != 0)
        rc = hive__fail(HIVE_ERR_IO, "fsync of directory failed: %s", strerror(errno));
out:
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

/* A short name for a key that gives nothing of it away: the first 8 hex
 * digits of SHA-256 of its canonical text, as
 * `printf %s "$KEY" | sha256sum | cut -c1-8` prints them. */
static void key_fingerprint(char out[9], const uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    char text[HIVE_FERNET_KEY_TEXT + 1];
    uint8_t hash[32];

    hive__b64url_encode(text, key, HIVE_FERNET_KEY_BYTES);
    if (mbedtls_sha256_ret((const unsigned char *)text, strlen(text), hash, 0) != 0)
        memset(hash, 0, sizeof(hash));
    for (size_t i = 0; i < 4; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
    hive_memzero(text, sizeof(text));
    hive_memzero(hash, sizeof(hash));
}

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
        key_fingerprint(have, fs->next);
        key_fingerprint(want, check);
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
    hive_rc rc = read_at(credfd, name, "credential file", &token, &token_len);

    if (rc == HIVE_ERR_NOT_FOUND)
        return HIVE_OK;   /* deleted meanwhile */
    if (rc != HIVE_OK)
        return rc;
    if (token_len > 0 && hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->next) == HIVE_OK) {
        res->already++;
    } else if (token_len > 0 && hive__fernet_decrypt(&plain, &plain_len, token, token_len, fs->key) == HIVE_OK) {
        rc = hive_fernet_encrypt(&again, &again_len, plain, plain_len, fs->next);
        if (rc == HIVE_OK)
            rc = atomic_write_at(credfd, name, again, again_len);
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

    if (s == NULL || s->ops != &file_ops)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "not a file storage");
    hive__clear_error();
    rc = lock_all(fs, &l, false);
    if (rc != HIVE_OK)
        return rc;
    rc = reload_key(fs);
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
        rc = write_key_file(fs->next_file, text);
        hive_memzero(text, sizeof(text));
        if (rc == HIVE_OK && (rc = read_key_file(fs->next_file, fs->next)) != HIVE_OK)
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
    rc = scan_enc(l.cred, &files);
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
            rc = io_fail(errno, "cannot switch to the new key file", fs->key_file);
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
    unlock_all(&l);
    return rc;
}

/* --- the generic interface ------------------------------------------- */

hive_rc hive_storage_load(hive_storage *s, hive_cred **out, const char *id)
{
    hive__clear_error();
    if (s == NULL || out == NULL || id == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return s->ops->load(s, out, id);
}

/*
 * Writes wait for a refresh of the same credential under way (its refresh
 * lock), so that the refresh cannot save its tokens over them (store.c);
 * a storage that compares and swaps needs no lock for that. When the lock
 * cannot be taken (no store directory yet, a read-only one, an id no file
 * can hold) no refresh can hold it either: the write goes on and fails or
 * not as it would have.
 */
static int write_lock(hive_storage *s, const char *id)
{
    int handle = -1;

    if (s->ops->lock == NULL || s->ops->cas || s->ops->lock(s, id, &handle) != HIVE_OK)
        handle = -1;
    hive__clear_error();
    return handle;
}

hive_rc hive__storage_unlock(hive_storage *s, int handle, hive_rc rc)
{
    char *msg;

    if (handle < 0 || s->ops->unlock == NULL)
        return rc;
    msg = rc != HIVE_OK ? hive__strdup(hive_last_error()) : NULL;
    s->ops->unlock(s, handle);
    if (rc == HIVE_OK)
        hive__clear_error();
    else if (msg != NULL)
        hive__fail(rc, "%s", msg);
    free(msg);
    return rc;
}

hive_rc hive_storage_save(hive_storage *s, const hive_cred *cred)
{
    hive_rc rc;
    int lock;

    hive__clear_error();
    if (s == NULL || cred == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    lock = write_lock(s, hive_cred_id(cred));
    rc = s->ops->save(s, cred);
    return hive__storage_unlock(s, lock, rc);
}

hive_rc hive_storage_delete(hive_storage *s, const char *id)
{
    hive_rc rc;
    int lock;

    hive__clear_error();
    if (s == NULL || id == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    lock = write_lock(s, id);
    rc = s->ops->del(s, id);
    return hive__storage_unlock(s, lock, rc);
}

hive_rc hive_storage_exists(hive_storage *s, bool *found, const char *id)
{
    hive__clear_error();
    if (s == NULL || id == NULL || found == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return s->ops->exists(s, id, found);
}

hive_rc hive_storage_list(hive_storage *s, hive_strlist *out)
{
    hive__clear_error();
    if (s == NULL || out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return s->ops->list(s, out);
}

void hive_storage_free(hive_storage **s)
{
    if (s == NULL || *s == NULL)
        return;
    (*s)->ops->destroy(*s);
    *s = NULL;
}
