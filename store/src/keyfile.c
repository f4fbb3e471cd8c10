/*
 * keyfile.c - the key file (keyfile.h).
 */
#include "keyfile.h"
#include "fileio.h"

#include <mbedtls/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Whether st, the systemd credential's, is as systemd makes it: owned by
 * us or by root (which then grants us an ACL), writable by nobody else,
 * readable by no other (0400; 0440 where the group bits show the ACL's
 * mask). Else the failure, naming path. */
static hive_rc check_systemd_mode(const struct stat *st, const char *path)
{
    if (st->st_uid != geteuid() && st->st_uid != 0)
        return hive__fail(HIVE_ERR_PERM, "systemd credential %s belongs to uid %lu, neither you (uid %lu) "
                          "nor root", path, (unsigned long)st->st_uid, (unsigned long)geteuid());
    if ((st->st_mode & 022) != 0 || (st->st_mode & 004) != 0)
        return hive__fail(HIVE_ERR_PERM, "systemd credential %s is %s by %s (mode %04o); systemd makes "
                          "it 0400: load it with LoadCredential= or LoadCredentialEncrypted=", path,
                          (st->st_mode & 022) ? "writable" : "readable",
                          (st->st_mode & 002) || (st->st_mode & 004) ? "others" : "group",
                          (unsigned)(st->st_mode & 07777));
    return HIVE_OK;
}

hive_rc hive__key_file_read_as(const char *path, hive_key_file_kind kind, uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    const char *what = kind == HIVE_KEYFILE_SYSTEMD ? "systemd credential" : "key file";
    struct stat st;
    char buf[512];
    ssize_t n = 0;
    int err = 0;
    const char *p = buf;
    size_t len;
    hive_rc rc;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0) {
        if (errno == ENOENT)
            return hive__fail(HIVE_ERR_NO_KEY, "%s %s does not exist", what, path);
        return hive__io_fail(errno, kind == HIVE_KEYFILE_SYSTEMD ? "cannot open systemd credential"
                                                                  : "cannot open key file", path);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "%s %s is not a regular file", what, path);
    }
    if (kind == HIVE_KEYFILE_SYSTEMD) {
        rc = check_systemd_mode(&st, path);
        if (rc != HIVE_OK) {
            close(fd);
            return rc;
        }
    } else if ((st.st_mode & 077) != 0) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "key file %s is %s by group or others (mode %04o); it must "
                          "be 0600: chmod 600 %s", path, (st.st_mode & 022) ? "writable" : "readable",
                          (unsigned)(st.st_mode & 07777), path);
    }
    /* a key is 44 characters: a file that fills buf is not one */
    for (ssize_t got = 1; got > 0 && (size_t)n < sizeof(buf);) {
        got = read(fd, buf + n, sizeof(buf) - (size_t)n);
        if (got < 0 && errno == EINTR)
            got = 1;
        else if (got < 0)
            err = errno, n = -1;
        else
            n += got;
    }
    close(fd);
    if (n < 0) {
        hive_memzero(buf, sizeof(buf));
        return hive__io_fail(err, kind == HIVE_KEYFILE_SYSTEMD ? "cannot read systemd credential"
                                                                  : "cannot read key file", path);
    }
    len = (size_t)n;
    trim(&p, &len);
    rc = (size_t)n < sizeof(buf) ? hive_fernet_key_decode(key, p, len) : HIVE_ERR_BAD_KEY;
    hive_memzero(buf, sizeof(buf));
    if (rc != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, "%s %s does not hold a Fernet key "
                          "(urlsafe base64 of 32 bytes)", what, path);
    return HIVE_OK;
}

hive_rc hive__key_file_read(const char *path, uint8_t key[HIVE_FERNET_KEY_BYTES])
{
    return hive__key_file_read_as(path, HIVE_KEYFILE_OWNER, key);
}

/* Write key text to path without replacing an existing file: temp file,
 * fsync, link() into place, fsync the directory. */
hive_rc hive__key_file_write(const char *path, const char *key_text)
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
        rc = hive__io_fail(errno, "cannot create directory", dir);
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = hive__io_fail(errno, "cannot open directory", dir);
        goto out;
    }
    rc = hive__random(rnd, sizeof(rnd));
    if (rc != HIVE_OK)
        goto out;
    snprintf(tmp, sizeof(tmp), HIVE_TMP_PREFIX "key-%02x%02x%02x%02x%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = hive__io_fail(errno, "cannot create a key file in", dir);
        goto out;
    }
    rc = hive__write_all(fd, key_text, strlen(key_text));
    if (rc == HIVE_OK && fsync(fd) != 0)
        rc = hive__fail(HIVE_ERR_IO, "fsync failed: %s", strerror(errno));
    close(fd);
    if (rc == HIVE_OK && linkat(dfd, tmp, dfd, slash + 1, 0) != 0)
        rc = errno == EEXIST ? hive__fail(HIVE_ERR_CONFLICT, "%s exists already", path)
                             : hive__io_fail(errno, "cannot create key file", path);
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
void hive__key_fingerprint(char out[9], const uint8_t key[HIVE_FERNET_KEY_BYTES])
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
