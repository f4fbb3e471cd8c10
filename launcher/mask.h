/*
 * mask.h - hive-run --mask: run the program with its output filtered so
 * that no secret value (nor its base64, base64url, URL or hex encoding)
 * reaches the terminal or the log. The matching itself is maskmatch.h;
 * under --fresh, the values published later are followed (maskfresh.h).
 */
#ifndef HIVE_MASK_H
#define HIVE_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "maskfresh.h"

#define MASK_DEFAULT_MIN 6

/* What to mask. */
typedef struct mask_opts {
    const char *const *values;   /* the values at launch (n, each lens[i] bytes) */
    const size_t *lens;
    size_t n;
    size_t min_len;              /* shorter values are not masked */
    int snap_fd;                 /* --fresh: the snapshot whose values join them as
                                  * they are published, or -1 */
    const mask_fresh_var *fresh_vars;   /* its variables' templates (by name) */
    size_t nfresh;
} mask_opts;

/*
 * Fork and run argv (PATH searched in envp) with its output masked: on a
 * pseudo-terminal of its own when stdout is a terminal, else through
 * pipes. Returns the status to exit with (a program killed by a signal
 * makes this process die of the same signal). Every buffer that held the
 * program's output is wiped.
 */
int mask_run(char **argv, char **envp, const mask_opts *o, int (*exec_fn)(char **argv, char **envp));

#endif
