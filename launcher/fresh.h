/*
 * fresh.h - hive-run --fresh (see fresh.c).
 */
#ifndef HIVE_FRESH_H
#define HIVE_FRESH_H

#include "cli.h"

/* At most this many variables and files (the snapshot's 64, --file's 32). */
#define HIVE_FRESH_MAX 96

typedef struct fresh_var {
    const char *name;
    const char *tmpl;
    const char *value;
    size_t len;
    int file;             /* --file: the file's index (secretfile.h); -1: a variable */
} fresh_var;

/* What the refresher does after it has published new values. */
typedef enum fresh_on_refresh {
    FRESH_ON_NOTHING,     /* the preload answers getenv() with them */
    FRESH_ON_SIGNAL,      /* and the program is sent a signal */
    FRESH_ON_RESTART      /* hive-run restarts the program (told through notify_fd) */
} fresh_on_refresh;

typedef struct fresh_config {
    const char *store_dir;
    int margin;
    bool allow_launch_values;
    fresh_on_refresh on_refresh;
    int signal;           /* FRESH_ON_SIGNAL: the signal */
    int files_ctl;        /* secretfile_start's descriptor; -1 without --file */
    int notify_fd;        /* FRESH_ON_RESTART: a byte is written to it after each publish; else -1 */
} fresh_config;

/* Why the preload cannot keep the program at path fresh, run with argv
 * and the PATH search (NULL: unset), or NULL when it can (or cannot
 * tell): static, set-ID, file capabilities, Go, or a runtime that copies
 * its environment at start (then *copies is set: Python, Perl, Java, the
 * shells); a script is judged by its interpreter, and env(1), as
 * interpreter or as the program, by what it runs. The text is static. */
const char *fresh_unreachable(const char *path, char *const *argv, const char *search, bool *copies);

/* The file a command name runs: itself when it has a slash (and exists),
 * else the first executable of that name in the PATH list search. */
bool fresh_which(char *out, size_t size, const char *name, const char *search);

/*
 * --fresh, before the program starts: check that the program can be kept
 * fresh the way cfg says (saying why not, and what to use instead), make
 * the snapshot of the variables (not the files) of vars, and give in
 * *extra the entries the program's environment needs besides envp
 * (LD_PRELOAD, HIVE_SNAPSHOT_FD; NULL-terminated, the caller's; none
 * under FRESH_ON_RESTART, which passes the values in the environment).
 * Returns 0, or the exit status to fail with (said already).
 */
int fresh_setup(const fresh_config *cfg, const fresh_var *vars, size_t n, char **argv, char *const *envp,
                char ***extra);

/* Undo fresh_setup when the program will not run with it. */
void fresh_discard(void);

/* The descriptor fresh_create returned (its snapshot is in use), or -1. */
int fresh_snapshot_fd(void);

/* Start the refresher for the process that is about to exec the program
 * (this one), or that stays as its parent (FRESH_ON_RESTART). It ends
 * when this process ends (letting a refresh in flight finish first).
 * 0 on success. */
int fresh_start_refresher(const fresh_config *cfg, const fresh_var *vars, size_t n);

/* FRESH_ON_RESTART: envp with each variable set to the value published
 * last (a new array and new entries, for a process about to exec). */
char **fresh_env_now(char *const *envp);

#endif
