/*
 * fileio.c - file I/O shared by the file storage, the key file, the usage
 * file, the .env reader and the etcd storage's local copy (fileio.h).
 */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

hive_rc hive__io_fail(int err, const char *what, const char *path)
{
    if (err == ELOOP || err == EMLINK)
        return hive__fail(HIVE_ERR_PERM, "%s %s is a symbolic link; refusing to follow it", what, path);
    if (err == EACCES || err == EPERM)
        return hive__fail(HIVE_ERR_PERM, "%s %s: %s", what, path, strerror(err));
    if (err == ENOTDIR)
        return hive__fail(HIVE_ERR_PERM, "%s %s is not a directory (or is a symbolic link)", what, path);
    return hive__fail(HIVE_ERR_IO, "%s %s: %s", what, path, strerror(err));
}

void hive__close_fd(int *fd)
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
        return hive__io_fail(errno, what, name);
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
            return hive__io_fail(e, "cannot read", name);
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

hive_rc hive__write_all(int fd, const char *data, size_t len)
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
hive_rc hive__atomic_write_at(int dirfd, const char *prefix, const char *name, const char *data,
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
    rc = hive__write_all(fd, data, len);
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
        return hive__io_fail(errno, "cannot open the directory of", path);
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
    rc = hive__atomic_write_at(dfd, tmp_prefix, base, data, len, NULL);
    close(dfd);
    if (rc != HIVE_OK)
        rc = hive__fail_prefix(rc, "cannot write %s", path);
    return rc;
}

hive_rc hive__write_file_atomic(const char *path, const char *data, size_t len)
{
    return hive__write_file_atomic_tmp(path, HIVE_TMP_PREFIX, data, len);
}

/* Under the lock every temporary file is an orphan of a killed writer. */
void hive__remove_orphans(int dirfd, const char *prefix)
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

bool hive__regular_at(int dirfd, const char *name)
{
    struct stat st;

    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* An exclusive flock on dirfd/name (made 0600, never through a symlink);
 * `where` names the directory in messages. */
hive_rc hive__flock_at(int dirfd, const char *name, const char *where, int *lockfd)
{
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0)
        return hive__io_fail(errno, "cannot open lock file in", where);
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

hive_rc hive__lock_beside(const char *path, const char *lock_name, const char *orphans, int *lockfd)
{
    const char *base;
    int dfd;
    hive_rc rc = open_parent(path, &dfd, &base);

    if (rc != HIVE_OK)
        return rc;
    rc = hive__flock_at(dfd, lock_name, path, lockfd);
    if (rc == HIVE_OK)
        hive__remove_orphans(dfd, orphans);
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

char *hive__absolute_path(const char *path)
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
