/*
 * mask.c - hive-run --mask.
 *
 * The program runs as hive-run's child. Its stdout and stderr come back
 * through a pseudo-terminal each (when hive-run's own are terminals: the
 * program still sees a terminal, colours and progress bars work) or pipes,
 * stay two separate streams, and pass through a filter (maskmatch.c) that
 * replaces every secret value, and its base64, base64url, URL and hex
 * encodings, by MASK_MARKER. Output is streamed: only a tail that could
 * still be the start of a secret is held back - released after a few
 * milliseconds of silence when it is under 4 bytes (a prompt is never
 * delayed), held while it still matches when longer (a secret printed
 * slowly in pieces is still masked), and settled at the end.
 */
#include "mask.h"
#include "cli.h"
#include "maskmatch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SHORT_TAIL 4          /* tails shorter than this are released on silence */
#define SILENCE_MS 15

/* --- running the program --------------------------------------------------- */

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t user_sigs;      /* SIGINT/SIGTERM from users, for escalation */

static void on_signal(int sig, siginfo_t *info, void *uctx)
{
    int saved = errno;
    unsigned char b[2] = {(unsigned char)sig, (unsigned char)(info->si_code == SI_USER || info->si_code == SI_QUEUE)};

    (void)uctx;
    if (write(sig_pipe[1], b, 2) < 0) {
        /* nothing to do: the pipe is full, the signal is already pending */
    }
    errno = saved;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct relay {
    int fd;             /* read end: pty master or pipe */
    int out;            /* where the masked bytes go; -1 once its reader went away */
    mask_stream s;
    bool open;
    int64_t last_data;
} relay;

/* mask_sink: write to the relay's output. */
static void relay_write(void *ctx, const char *p, size_t n)
{
    relay *r = ctx;

    while (n > 0 && r->out >= 0) {
        ssize_t w = write(r->out, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            r->out = -1;   /* the reader went away; keep draining the program */
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Read what is there; false at end of stream. */
static bool pump(relay *r)
{
    static char buf[256 * 1024];

    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n > 0) {
            mask_feed(&r->s, buf, (size_t)n);
            r->last_data = mono_ms();
            if (r->out < 0)
                return false;   /* our reader went away: so does the program's */
            if ((size_t)n < sizeof(buf))
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        /* 0, or EIO: a pty whose other side is closed */
        return false;
    }
}

/* Before the program runs: free what was made, the status to exit with. */
static int setup_failed(masker *m, mask_stream *out, mask_stream *err)
{
    mask_finish(out);
    mask_finish(err);
    masker_free(m);
    return 125;
}

int mask_run(char **argv, char **envp, const char *const *values, const size_t *lens, size_t n,
             size_t min_len, int (*exec_fn)(char **argv, char **envp))
{
    bool tty_out = isatty(STDOUT_FILENO);
    /* stdin relayed only when we are the terminal's foreground job: a
     * background job touching the terminal would be stopped (SIGTTOU) */
    bool tty_in = tty_out && isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    bool tty_err = tty_out && isatty(STDERR_FILENO);
    int out_master = -1, out_slave = -1, err_master = -1, err_slave = -1;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    struct termios saved_tio;
    bool raw = false;
    struct winsize ws;
    bool have_ws = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0;
    masker *m = masker_new(values, lens, n, min_len);
    relay rout = {0}, rerr = {0};
    int status = 0;
    bool exited = false;
    int64_t exited_at = 0;
    int64_t first_user_sig = 0;
    pid_t child;
    struct sigaction sa;
    static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH,
                                    SIGCHLD, SIGCONT, SIGALRM};

    if (m == NULL || !mask_stream_init(&rout.s, m, relay_write, &rout) ||
        !mask_stream_init(&rerr.s, m, relay_write, &rerr)) {
        cli_error("out of memory");
        return setup_failed(m, &rout.s, &rerr.s);
    }
    if (tty_out) {
        struct termios tio;
        bool have_tio = tcgetattr(tty_in ? STDIN_FILENO : STDOUT_FILENO, &tio) == 0;
        if (openpty(&out_master, &out_slave, NULL, have_tio ? &tio : NULL, have_ws ? &ws : NULL) != 0 ||
            (tty_err && openpty(&err_master, &err_slave, NULL, have_tio ? &tio : NULL, have_ws ? &ws : NULL) != 0)) {
            cli_error("--mask: cannot open a pseudo-terminal: %s", strerror(errno));
            return setup_failed(m, &rout.s, &rerr.s);
        }
        fcntl(out_master, F_SETFD, FD_CLOEXEC);
        fcntl(out_slave, F_SETFD, FD_CLOEXEC);
        if (tty_err) {
            fcntl(err_master, F_SETFD, FD_CLOEXEC);
            fcntl(err_slave, F_SETFD, FD_CLOEXEC);
        }
    } else if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        return setup_failed(m, &rout.s, &rerr.s);
    }
    if (!tty_out)
        fcntl(out_pipe[0], F_SETPIPE_SZ, 1 << 20);   /* fewer, larger reads; best effort */
    if (!tty_err && pipe2(err_pipe, O_CLOEXEC) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        return setup_failed(m, &rout.s, &rerr.s);
    }
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        return setup_failed(m, &rout.s, &rerr.s);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaction(forwarded[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);

    child = fork();
    if (child < 0) {
        cli_error("--mask: cannot fork: %s", strerror(errno));
        return setup_failed(m, &rout.s, &rerr.s);
    }
    if (child == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
            sigaction(forwarded[i], &dfl, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (tty_out) {
            setsid();
            ioctl(out_slave, TIOCSCTTY, 0);
            if (tty_in)
                dup2(out_slave, STDIN_FILENO);
            dup2(out_slave, STDOUT_FILENO);
            dup2(tty_err ? err_slave : err_pipe[1], STDERR_FILENO);
        } else {
            dup2(out_pipe[1], STDOUT_FILENO);
            dup2(err_pipe[1], STDERR_FILENO);
        }
        /* our pipes and ptys are close-on-exec (dup2 onto 0-2 cleared it
         * there); every other fd the caller passed on stays the program's */
        _exit(exec_fn(argv, envp));
    }
    /* parent */
    if (tty_out) {
        close(out_slave);
        if (tty_err)
            close(err_slave);
    } else {
        close(out_pipe[1]);
    }
    if (!tty_err)
        close(err_pipe[1]);
    rout.fd = tty_out ? out_master : out_pipe[0];
    rerr.fd = tty_err ? err_master : err_pipe[0];
    rout.out = STDOUT_FILENO;
    rerr.out = STDERR_FILENO;
    rout.open = rerr.open = true;
    set_nonblock(rout.fd);
    set_nonblock(rerr.fd);
    if (tty_in && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios r = saved_tio;
        cfmakeraw(&r);
        raw = tcsetattr(STDIN_FILENO, TCSANOW, &r) == 0;
    }

    for (;;) {
        struct pollfd pf[4];
        int np = 0;
        int timeout = -1;
        int64_t now = mono_ms();
        int idx_in = -1, idx_out = -1, idx_err = -1;

        /* a short held tail goes out after a moment of silence */
        if ((rout.s.nheld > rout.s.nsent && rout.s.nheld < SHORT_TAIL) ||
            (rerr.s.nheld > rerr.s.nsent && rerr.s.nheld < SHORT_TAIL))
            timeout = SILENCE_MS;
        if (exited) {
            /* drain: what the program wrote before it ended; do not wait
             * for a background grandchild that keeps the stream open */
            int64_t left = exited_at + 200 - now;
            if (left <= 0 || (!rout.open && !rerr.open))
                break;
            timeout = timeout < 0 || timeout > left ? (int)left : timeout;
        }
        pf[np].fd = sig_pipe[0];
        pf[np++].events = POLLIN;
        if (rout.open) {
            idx_out = np;
            pf[np].fd = rout.fd;
            pf[np++].events = POLLIN;
        }
        if (rerr.open) {
            idx_err = np;
            pf[np].fd = rerr.fd;
            pf[np++].events = POLLIN;
        }
        if (tty_in && !exited) {
            idx_in = np;
            pf[np].fd = STDIN_FILENO;
            pf[np++].events = POLLIN;
        }
        if (poll(pf, (nfds_t)np, timeout) < 0 && errno != EINTR)
            break;
        if (pf[0].revents & POLLIN) {
            unsigned char b[64];
            ssize_t k = read(sig_pipe[0], b, sizeof(b));
            for (ssize_t i = 0; i + 1 < k; i += 2) {
                int sig = b[i];
                bool from_user = b[i + 1];
                if (sig == SIGCHLD) {
                    int st;
                    pid_t w = waitpid(child, &st, WNOHANG | WUNTRACED);
                    if (w == child && WIFSTOPPED(st)) {
                        /* the program stopped (^Z): pass on what it wrote first
                         * (an editor restores the screen), give the terminal
                         * back and stop too */
                        /* a pty hands data over asynchronously: read until
                         * 50 ms pass without any (2 s at most) */
                        for (int64_t until = mono_ms() + 2000; mono_ms() < until;) {
                            struct pollfd q[2] = {{rout.open ? rout.fd : -1, POLLIN, 0},
                                                  {rerr.open ? rerr.fd : -1, POLLIN, 0}};
                            if (poll(q, 2, 50) <= 0)
                                break;
                            if (rout.open && (q[0].revents & (POLLIN | POLLHUP)) && !(rout.open = pump(&rout)))
                                close(rout.fd);
                            if (rerr.open && (q[1].revents & (POLLIN | POLLHUP)) && !(rerr.open = pump(&rerr)))
                                close(rerr.fd);
                        }
                        if (raw)
                            tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
                        raise(SIGSTOP);
                        if (raw) {
                            struct termios r = saved_tio;
                            cfmakeraw(&r);
                            tcsetattr(STDIN_FILENO, TCSANOW, &r);
                        }
                        kill(child, SIGCONT);
                    } else if (w == child) {
                        status = st;
                        exited = true;
                        exited_at = mono_ms();
                    }
                } else if (sig == SIGWINCH) {
                    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
                        ioctl(out_master, TIOCSWINSZ, &ws);
                        if (tty_err)
                            ioctl(err_master, TIOCSWINSZ, &ws);
                    }
                } else if (sig == SIGCONT) {
                    /* resumed by the shell */
                } else if (!exited) {
                    /* in pipe mode the program shares our process group: what
                     * the terminal sent (^C, ^\, hang-up) reached it already */
                    if (!from_user && !tty_out && (sig == SIGINT || sig == SIGQUIT || sig == SIGHUP))
                        continue;
                    if (sig == SIGINT || sig == SIGTERM) {
                        int64_t t = mono_ms();
                        if (user_sigs > 0 && t - first_user_sig < 5000) {
                            /* a second one: the program did not stop; make it */
                            kill(child, SIGKILL);
                            continue;
                        }
                        user_sigs = 1;
                        first_user_sig = t;
                    }
                    kill(child, sig);
                }
            }
        }
        if (idx_out >= 0 && (pf[idx_out].revents & (POLLIN | POLLHUP | POLLERR)) && !(rout.open = pump(&rout)))
            close(rout.fd);   /* the program's next write gets SIGPIPE (or SIGHUP on a pty) */
        if (idx_err >= 0 && (pf[idx_err].revents & (POLLIN | POLLHUP | POLLERR)) && !(rerr.open = pump(&rerr)))
            close(rerr.fd);
        if (idx_in >= 0 && (pf[idx_in].revents & (POLLIN | POLLHUP))) {
            char buf[4096];
            ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
            if (k > 0 && rout.open) {
                ssize_t off = 0;
                while (off < k) {
                    ssize_t w = write(out_master, buf + off, (size_t)(k - off));
                    if (w < 0 && errno == EINTR)
                        continue;
                    if (w <= 0)
                        break;
                    off += w;
                }
            } else if (k == 0) {
                tty_in = false;   /* our stdin ended: stop reading it */
            }
        }
        now = mono_ms();
        if (rout.s.nheld > rout.s.nsent && now - rout.last_data >= SILENCE_MS)
            mask_release(&rout.s, SHORT_TAIL);
        if (rerr.s.nheld > rerr.s.nsent && now - rerr.last_data >= SILENCE_MS)
            mask_release(&rerr.s, SHORT_TAIL);
        if (!exited && !rout.open && !rerr.open) {
            /* both streams closed: wait for the program itself */
            int st;
            if (waitpid(child, &st, 0) == child) {
                status = st;
                exited = true;
                exited_at = mono_ms();
            }
        }
    }
    if (!exited) {
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
    }
    /* nothing is held back at the end */
    mask_finish(&rout.s);
    mask_finish(&rerr.s);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    masker_free(m);
    if (WIFSIGNALED(status)) {
        /* die of the same signal, without a core of our own */
        struct rlimit none = {0, 0};
        int sig = WTERMSIG(status);
        setrlimit(RLIMIT_CORE, &none);
        signal(sig, SIG_DFL);
        {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, sig);
            sigprocmask(SIG_UNBLOCK, &set, NULL);
        }
        kill(getpid(), sig);
        return 128 + sig;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
