/*
 * secretfile.h - hive-run --file: secrets as files in memory (see
 * secretfile.c).
 */
#ifndef HIVE_SECRETFILE_H
#define HIVE_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* At most this many --file options. */
#define SECRETFILE_MAX 32
/* The holder's descriptor of file i: SECRETFILE_FD_BASE + i. */
#define SECRETFILE_FD_BASE 10
#define SECRETFILE_PATH_MAX 64
/* argv[0] of the holder process, which hive-run's main hands to
 * secretfile_holder_main. */
#define SECRETFILE_HOLDER_NAME "hive-files"

/*
 * Start the holder: a process of its own (not a child of this one, which
 * is about to become the program) that holds file i's content at
 * /proc/<holder>/fd/<SECRETFILE_FD_BASE + i> and ends when the process
 * watched (this one) ends, taking the files with it. Writes each path
 * ("/proc/PID/fd/N") into paths. Returns the descriptor through which
 * secretfile_replace reaches the holder (close-on-exec), or -1 with errno.
 */
int secretfile_start(char (*paths)[SECRETFILE_PATH_MAX], const char *const *contents, const size_t *lens, size_t n);

/* Replace file i's content by content (len bytes) at once: a reader that
 * opens its path again gets the new content whole; one that has it open
 * keeps the old. Returns when the holder has swapped it in; 0 on success. */
int secretfile_replace(int ctl, size_t i, const char *content, size_t len);

/* The holder process (run as SECRETFILE_HOLDER_NAME by secretfile_start
 * through /proc/self/exe); returns the exit status. */
int secretfile_holder_main(void);

#endif
