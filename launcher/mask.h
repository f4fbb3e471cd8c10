/*
 * mask.h - hive-run --mask: run the program with its output filtered so
 * that no secret value (nor its base64, base64url, URL or hex encoding)
 * reaches the terminal or the log. The matching itself is maskmatch.h.
 */
#ifndef HIVE_MASK_H
#define HIVE_MASK_H

#include <stdbool.h>
#include <stddef.h>

#define MASK_DEFAULT_MIN 6

/*
 * Fork and run argv (PATH searched in envp) with its output masked: on a
 * pseudo-terminal of its own when stdout is a terminal, else through
 * pipes. Returns the status to exit with (a program killed by a signal
 * makes this process die of the same signal).
 */
int mask_run(char **argv, char **envp, const char *const *values, const size_t *lens, size_t n,
             size_t min_len, int (*exec_fn)(char **argv, char **envp));

#endif
