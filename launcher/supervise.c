/*
 * supervise.c - hive-run --on-refresh restart (see supervise.h).
 *
 * One loop over a signalfd and the refresher's notification pipe: no
 * signal handler runs, so nothing races with fork and waitpid.
 */
#include "supervise.h"
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Passed on to the program (SIGCHLD is hive-run's own). */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM,
                                SIGCONT, SIGURG, SIGPWR};

static int64_t mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Fork and exec the program; its pid, or -1. */
static pid_t start(char **argv, char **envp, const supervise_opts *o, const sigset_t *saved)
{
    pid_t parent = getpid();
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid != 0)
        return pid;
    /* the program's own signal state, and an end if hive-run is killed */
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        signal(forwarded[i], SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, saved, NULL);
    prctl(PR_SET_PDEATHSIG, o->kill_signal, 0, 0, 0);
    if (getppid() != parent)
        _exit(125);   /* hive-run died before the line above */
    {
        char **env = o->env_now ? o->env_now(envp) : envp;
        if (env == NULL) {
            cli_error("out of memory");
            _exit(125);
        }
        _exit(o->exec(argv, env));
    }
}

int supervise_run(char **argv, char **envp, const supervise_opts *o)
{
    sigset_t set;
    sigset_t saved;
    int sfd;
    pid_t child;
    bool stopping = false;
    bool killed = false;
    int64_t deadline = 0;
    int notify = o->notify_fd;

    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaddset(&set, forwarded[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &saved);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        cli_error("--on-refresh restart: signalfd: %s", strerror(errno));
        return 125;
    }
    child = start(argv, envp, o, &saved);
    if (child < 0) {
        cli_error("cannot start the program: %s", strerror(errno));
        return 125;
    }
    for (;;) {
        struct pollfd pf[2] = {{sfd, POLLIN, 0}, {notify, POLLIN, 0}};
        int timeout = -1;
        int r;

        if (stopping && !killed) {
            int64_t left = deadline - mono_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        r = poll(pf, notify >= 0 ? 2 : 1, timeout);
        if (r < 0 && errno != EINTR)
            return 125;
        if (stopping && !killed && mono_ms() >= deadline) {
            kill(child, SIGKILL);
            killed = true;
        }
        if (r <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                    int status;
                    pid_t w;
                    while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
                        if (w != child)
                            continue;
                        if (!stopping) {
                            close(sfd);
                            return cli_exit_like(status);   /* it ended on its own */
                        }
                        stopping = killed = false;
                        child = start(argv, envp, o, &saved);
                        if (child < 0) {
                            cli_error("cannot start the program again: %s", strerror(errno));
                            return 125;
                        }
                    }
                } else {
                    /* sent to hive-run by a process; what the terminal
                     * sends (SI_KERNEL) went to the program's process
                     * group, the program included */
                    if (si.ssi_code != SI_KERNEL)
                        kill(child, (int)si.ssi_signo);
                    /* asked to end while being restarted: it ends */
                    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT)
                        stopping = false;
                }
            }
        }
        if (notify >= 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
            char buf[64];
            ssize_t n = read(notify, buf, sizeof(buf));
            if (n == 0) {
                close(notify);   /* the refresher has gone: no more restarts */
                notify = -1;
            } else if (n > 0 && !stopping) {
                stopping = true;
                killed = o->kill_timeout_ms == 0;
                kill(child, killed ? SIGKILL : o->kill_signal);
                deadline = mono_ms() + o->kill_timeout_ms;
            }
        }
    }
}
