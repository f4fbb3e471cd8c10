/*
 * fileio.h - file I/O shared by libhive's files: whole-file reads, atomic
 * replacement (temporary file, fsync, rename, fsync the directory), flock
 * locks with clean-up of what killed holders left, and the messages for
 * system errors.
 */
#ifndef HIVE_FILEIO_H
#define HIVE_FILEIO_H

#include "internal.h"

/* The prefix of the temporary files written beside the file they replace. */
#define HIVE_TMP_PREFIX ".tmp-"

/* The failure for errno err: a symbolic link (ELOOP) or a permission is
 * HIVE_ERR_PERM, anything else HIVE_ERR_IO; "<what> <path>: <cause>". */
hive_rc hive__io_fail(int err, const char *what, const char *path);

/* Close *fd when open; *fd becomes -1. */
void hive__close_fd(int *fd);

/*
 * Read a whole regular file (name under dirfd, or AT_FDCWD) of at most max
 * bytes. *data is NUL-terminated: release it with hive__free_secret(*data,
 * *len + 1). HIVE_ERR_NOT_FOUND, with no message, when it does not exist;
 * `what` names the file in other messages.
 */
hive_rc hive__read_at(int dirfd, const char *name, bool nofollow, size_t max, const char *what,
                      char **data, size_t *len);

/* Write all of data to fd (EINTR retried). */
hive_rc hive__write_all(int fd, const char *data, size_t len);

/* Atomically replace dirfd/name with data: a 0600 temporary file named
 * prefix..., created with O_EXCL|O_NOFOLLOW, fsync, rename over name, fsync
 * the directory. *placed (may be NULL) is set once the new content is in
 * place, even when the fsync of the directory then fails. */
hive_rc hive__atomic_write_at(int dirfd, const char *prefix, const char *name, const char *data, size_t len,
                              bool *placed);

/* Atomically replace path with data (temp file, fsync, rename, fsync dir). */
hive_rc hive__write_file_atomic(const char *path, const char *data, size_t len);
/* The same, the temporary file's name starting with tmp_prefix. */
hive_rc hive__write_file_atomic_tmp(const char *path, const char *tmp_prefix, const char *data, size_t len);

/* Remove the files of dirfd whose names start with prefix (left by killed
 * writers: call it holding the lock they held). */
void hive__remove_orphans(int dirfd, const char *prefix);

/* Whether dirfd/name is a regular file (not following a symlink). */
bool hive__regular_at(int dirfd, const char *name);

/* An exclusive flock on dirfd/name (made 0600, never through a symlink);
 * `where` names the directory in messages. Release with hive__unlock. */
hive_rc hive__flock_at(int dirfd, const char *name, const char *where, int *lockfd);
/* An exclusive flock on lock_name in path's directory; then, as the only
 * holder, remove the files starting with orphans there (left by killed
 * holders). Release with hive__unlock. */
hive_rc hive__lock_beside(const char *path, const char *lock_name, const char *orphans, int *lockfd);
void hive__unlock(int *lockfd);

/* path made absolute against the working directory, without trailing
 * slashes (NULL: out of memory, or no working directory). Free it. */
char *hive__absolute_path(const char *path);

#endif
