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

/* Read a key file into key. HIVE_ERR_NO_KEY when it does not exist. Like
 * ssh with a private key, refuse one that group or others can access. */
hive_rc hive__key_file_read(const char *path, uint8_t key[HIVE_FERNET_KEY_BYTES])
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
        return hive__io_fail(errno, "cannot open key file", path);
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
        return hive__io_fail(errno, "cannot read key file", path);
    len = (size_t)n;
    trim(&p, &len);
    rc = hive_fernet_key_decode(key, p, len);
    hive_memzero(buf, sizeof(buf));
    if (rc != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, "key file %s does not hold a Fernet key "
                          "(urlsafe base64 of 32 bytes)", path);
    return HIVE_OK;
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
