/*
 * supervise.h - hive-run --on-refresh restart: hive-run stays as the
 * program's parent and restarts it when the refresher has new values.
 */
#ifndef HIVE_SUPERVISE_H
#define HIVE_SUPERVISE_H

typedef struct supervise_opts {
    int notify_fd;          /* readable when new values are published */
    int kill_signal;        /* sent first to stop the program */
    int kill_timeout_ms;    /* then SIGKILL after this long */
    /* the environment of a start, made in the new process; NULL: envp */
    char **(*env_now)(char *const *envp);
    /* exec argv with envp; returns only on failure, with the exit status */
    int (*exec)(char **argv, char **envp);
} supervise_opts;

/*
 * Run argv as a child with envp; restart it (stop with kill_signal, then
 * SIGKILL after kill_timeout_ms) each time notify_fd has news. Signals
 * sent to hive-run (not those the terminal sends to the whole process
 * group, which the program got already) are passed on to the program;
 * if hive-run is killed, the program gets kill_signal. Returns the
 * program's exit status once it ends on its own (and dies of the signal
 * that killed the program, if one did).
 */
int supervise_run(char **argv, char **envp, const supervise_opts *o);

#endif
