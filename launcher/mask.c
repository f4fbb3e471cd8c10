/*
 * mask.c - hive-run --mask: the plumbing around the matcher (maskmatch.c).
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
 *
 * Under --fresh the values the refresher publishes join the masked ones
 * before any output read after them goes out (maskfresh.h says why that
 * is soon enough).
 */
#include "mask.h"
#include "cli.h"
#include "maskfresh.h"
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
#define DRAIN_MS 200          /* output still read after the program ended */
#define READ_SIZE (256 * 1024)

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGCONT,
                                SIGALRM};
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))

/* --- the session ------------------------------------------------------------- */

typedef struct relay {
    int fd;             /* read end: pty master or pipe; -1 once closed */
    int child_end;      /* the program's end (slave or write end), -1 once given */
    bool pty;
    int out;            /* where the masked bytes go; -1 once its reader went away */
    mask_stream s;
    int64_t last_data;
} relay;

typedef struct session {
    /* what is masked */
    mask_values vals;       /* every value: the launch values, then the published ones */
    size_t min_len;
    masker *m;
    mask_follow *follow;    /* --fresh: the snapshot, else NULL */
    char *buf;              /* the program's output as read, wiped after each use */
    /* the program and its streams */
    relay out, err;
    bool tty_in;            /* stdin relayed: we are the terminal's foreground job */
    pid_t child;
    int sig_pipe[2];
    /* hive-run's terminal */
    struct termios saved_tio;
    bool raw;
    /* how it ends */
    int status;
    bool exited;
    int64_t exited_at;
    int64_t first_user_sig;
    bool user_sig;
} session;

/* The signal handler's way into the loop (a handler has no argument). */
static int sig_write_fd = -1;

static void on_signal(int sig, siginfo_t *info, void *uctx)
{
    int saved = errno;
    unsigned char b[2] = {(unsigned char)sig, (unsigned char)(info->si_code == SI_USER || info->si_code == SI_QUEUE)};

    (void)uctx;
    if (write(sig_write_fd, b, 2) < 0) {
        /* nothing to do: the pipe is full, the signal is already pending */
    }
    errno = saved;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

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

static void session_init(session *s)
{
    memset(s, 0, sizeof(*s));
    s->out.fd = s->out.child_end = s->err.fd = s->err.child_end = -1;
    s->out.out = s->err.out = -1;
    s->sig_pipe[0] = s->sig_pipe[1] = -1;
    s->child = -1;
}

/* Everything the session holds, closed, wiped and freed; the held tails
 * written first when the streams were started (nothing is held back at
 * the end). */
static void session_free(session *s)
{
    if (s->out.s.held != NULL)
        mask_finish(&s->out.s);
    if (s->err.s.held != NULL)
        mask_finish(&s->err.s);
    close_fd(&s->out.fd);
    close_fd(&s->out.child_end);
    close_fd(&s->err.fd);
    close_fd(&s->err.child_end);
    close_fd(&s->sig_pipe[0]);
    close_fd(&s->sig_pipe[1]);
    sig_write_fd = -1;
    if (s->buf != NULL)
        cli_free_secret(s->buf, READ_SIZE);
    s->buf = NULL;
    masker_free(s->m);
    s->m = NULL;
    mask_follow_free(s->follow);
    s->follow = NULL;
    mask_values_free(&s->vals);
}

/* --- what is masked ---------------------------------------------------------- */

/* The values, the masker over them, a stream each for stdout and stderr,
 * and under --fresh the snapshot followed (with what it holds already). */
static bool start_masking(session *s, const mask_opts *o)
{
    for (size_t i = 0; i < o->n; i++)
        if (!mask_values_add(&s->vals, o->values[i], o->lens[i]))
            goto nomem;
    if (o->snap_fd >= 0) {
        s->follow = mask_follow_new(o->snap_fd, o->fresh_vars, o->nfresh);
        if (s->follow == NULL) {
            cli_error("--mask: cannot follow the --fresh snapshot: %s", strerror(errno));
            return false;
        }
        if (mask_follow_poll(s->follow, &s->vals) < 0)
            goto nomem;
    }
    s->min_len = o->min_len;
    s->m = masker_new((const char *const *)s->vals.v, s->vals.len, s->vals.n, s->min_len);
    s->buf = malloc(READ_SIZE);
    if (s->m == NULL || s->buf == NULL || !mask_stream_init(&s->out.s, s->m, relay_write, &s->out) ||
        !mask_stream_init(&s->err.s, s->m, relay_write, &s->err))
        goto nomem;
    return true;
nomem:
    cli_error("out of memory");
    return false;
}

/* Under --fresh: what the refresher published since the last look joins
 * the masked values. False when that cannot be done (out of memory): the
 * output can no longer be masked. */
static bool follow_fresh(session *s)
{
    masker *m;
    int added;

    if (s->follow == NULL)
        return true;
    added = mask_follow_poll(s->follow, &s->vals);
    if (added <= 0)
        return added == 0;
    m = masker_new((const char *const *)s->vals.v, s->vals.len, s->vals.n, s->min_len);
    if (m == NULL || !mask_stream_rebind(&s->out.s, m) || !mask_stream_rebind(&s->err.s, m)) {
        /* a stream rebound to m goes back to s->m, which has fewer patterns
         * but no fewer bytes of room */
        s->out.s.m = s->err.s.m = s->m;
        masker_free(m);
        return false;
    }
    masker_free(s->m);
    s->m = m;
    return true;
}

/* --- the program's streams ------------------------------------------------------ */

/* A pseudo-terminal (like ours: mode and size) or a pipe for one stream;
 * both ends close-on-exec (dup2 onto 0-2 clears it there). */
static bool open_channel(relay *r, bool pty, const struct termios *tio, const struct winsize *ws)
{
    int fds[2];

    r->pty = pty;
    if (pty) {
        if (openpty(&r->fd, &r->child_end, NULL, tio, ws) != 0) {
            r->fd = r->child_end = -1;
            cli_error("--mask: cannot open a pseudo-terminal: %s", strerror(errno));
            return false;
        }
        fcntl(r->fd, F_SETFD, FD_CLOEXEC);
        fcntl(r->child_end, F_SETFD, FD_CLOEXEC);
        return true;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        return false;
    }
    r->fd = fds[0];
    r->child_end = fds[1];
    fcntl(r->fd, F_SETPIPE_SZ, 1 << 20);   /* fewer, larger reads; best effort */
    return true;
}

/* stdout's and stderr's channels and the signal pipe. */
static bool open_channels(session *s, bool tty_out, bool tty_err)
{
    struct termios tio;
    struct winsize ws;
    bool have_tio = false;
    bool have_ws = tty_out && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0;

    if (tty_out)
        have_tio = tcgetattr(s->tty_in ? STDIN_FILENO : STDOUT_FILENO, &tio) == 0;
    if (!open_channel(&s->out, tty_out, have_tio ? &tio : NULL, have_ws ? &ws : NULL) ||
        !open_channel(&s->err, tty_err, have_tio ? &tio : NULL, have_ws ? &ws : NULL))
        return false;
    if (pipe2(s->sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        return false;
    }
    sig_write_fd = s->sig_pipe[1];
    return true;
}

static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(forwarded[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* In the child: the streams in place, signals as they were; never returns. */
static void child_exec(const session *s, char **argv, char **envp, int (*exec_fn)(char **argv, char **envp))
{
    struct sigaction dfl;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(forwarded[i], &dfl, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (s->out.pty) {
        setsid();
        ioctl(s->out.child_end, TIOCSCTTY, 0);
        if (s->tty_in)
            dup2(s->out.child_end, STDIN_FILENO);
    }
    dup2(s->out.child_end, STDOUT_FILENO);
    dup2(s->err.child_end, STDERR_FILENO);
    /* our pipes and ptys are close-on-exec; every other fd the caller
     * passed on stays the program's */
    _exit(exec_fn(argv, envp));
}

/* Fork the program; in hive-run, keep the read ends only. */
static bool spawn(session *s, char **argv, char **envp, int (*exec_fn)(char **argv, char **envp))
{
    fflush(NULL);
    s->child = fork();
    if (s->child < 0) {
        cli_error("--mask: cannot fork: %s", strerror(errno));
        return false;
    }
    if (s->child == 0)
        child_exec(s, argv, envp, exec_fn);
    close_fd(&s->out.child_end);
    close_fd(&s->err.child_end);
    s->out.out = STDOUT_FILENO;
    s->err.out = STDERR_FILENO;
    set_nonblock(s->out.fd);
    set_nonblock(s->err.fd);
    return true;
}

/* --- hive-run's terminal ---------------------------------------------------------- */

static void set_raw(const session *s)
{
    struct termios r = s->saved_tio;

    cfmakeraw(&r);
    tcsetattr(STDIN_FILENO, TCSANOW, &r);
}

static void terminal_raw(session *s)
{
    if (s->tty_in && tcgetattr(STDIN_FILENO, &s->saved_tio) == 0) {
        struct termios r = s->saved_tio;
        cfmakeraw(&r);
        s->raw = tcsetattr(STDIN_FILENO, TCSANOW, &r) == 0;
    }
}

static void terminal_restore(const session *s)
{
    if (s->raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &s->saved_tio);
}

/* --- moving bytes ------------------------------------------------------------------ */

/* The program's output that is there, masked and written; false at the end
 * of the stream (or when its reader went away: so does the program's). */
static bool pump(session *s, relay *r)
{
    for (;;) {
        ssize_t n = read(r->fd, s->buf, READ_SIZE);
        if (n > 0) {
            /* after the read, before anything of it goes out */
            bool masked = follow_fresh(s);
            if (masked)
                mask_feed(&r->s, s->buf, (size_t)n);
            hive_memzero(s->buf, (size_t)n);
            if (!masked) {
                cli_error("--mask: out of memory: the output cannot be masked any more; the program is "
                          "killed");
                kill(s->child, SIGKILL);
                s->out.out = s->err.out = -1;
                return false;
            }
            r->last_data = mono_ms();
            if (r->out < 0)
                return false;
            if ((size_t)n < READ_SIZE)
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

/* Pump r when poll said so; closed at its end (the program's next write
 * gets SIGPIPE, or SIGHUP on a pty). */
static void pump_if(session *s, relay *r, short revents)
{
    if (r->fd >= 0 && (revents & (POLLIN | POLLHUP | POLLERR)) && !pump(s, r))
        close_fd(&r->fd);
}

/* Keystrokes to the program's terminal. */
static void relay_stdin(session *s)
{
    char buf[4096];
    ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));

    if (k > 0 && s->out.fd >= 0) {
        ssize_t off = 0;
        while (off < k) {
            ssize_t w = write(s->out.fd, buf + off, (size_t)(k - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += w;
        }
    } else if (k == 0) {
        s->tty_in = false;   /* our stdin ended: stop reading it */
    }
    if (k > 0)
        hive_memzero(buf, (size_t)k);   /* a typed password, maybe */
}

/* A short held tail goes out after a moment of silence. */
static void release_on_silence(relay *r, int64_t now)
{
    if (r->s.nheld > r->s.nsent && now - r->last_data >= SILENCE_MS)
        mask_release(&r->s, SHORT_TAIL);
}

static bool short_tail_waiting(const relay *r)
{
    return r->s.nheld > r->s.nsent && r->s.nheld < SHORT_TAIL;
}

/* --- signals and the program's state ------------------------------------------- */

static void program_ended(session *s, int status)
{
    s->status = status;
    s->exited = true;
    s->exited_at = mono_ms();
}

/* The program stopped (^Z): pass on what it wrote first (an editor
 * restores the screen), give the terminal back, stop too; on resume, take
 * the terminal again and resume the program. */
static void stop_with_program(session *s)
{
    /* a pty hands data over asynchronously: read until 50 ms pass without
     * any (2 s at most) */
    for (int64_t until = mono_ms() + 2000; mono_ms() < until;) {
        struct pollfd q[2] = {{s->out.fd, POLLIN, 0}, {s->err.fd, POLLIN, 0}};
        if (poll(q, 2, 50) <= 0)
            break;
        pump_if(s, &s->out, q[0].revents);
        pump_if(s, &s->err, q[1].revents);
    }
    terminal_restore(s);
    raise(SIGSTOP);
    if (s->raw)
        set_raw(s);
    kill(s->child, SIGCONT);
}

static void on_sigchld(session *s)
{
    int st;
    pid_t w = waitpid(s->child, &st, WNOHANG | WUNTRACED);

    if (w == s->child && WIFSTOPPED(st))
        stop_with_program(s);
    else if (w == s->child)
        program_ended(s, st);
}

static void on_sigwinch(const session *s)
{
    struct winsize ws;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0)
        return;
    if (s->out.pty)
        ioctl(s->out.fd, TIOCSWINSZ, &ws);
    if (s->err.pty)
        ioctl(s->err.fd, TIOCSWINSZ, &ws);
}

/* A signal for the program: passed on, a second SIGINT or SIGTERM within
 * 5 s kills it. */
static void forward(session *s, int sig, bool from_user)
{
    if (s->exited)
        return;
    /* in pipe mode the program shares our process group: what the
     * terminal sent (^C, ^\, hang-up) reached it already */
    if (!from_user && !s->out.pty && (sig == SIGINT || sig == SIGQUIT || sig == SIGHUP))
        return;
    if (sig == SIGINT || sig == SIGTERM) {
        int64_t t = mono_ms();
        if (s->user_sig && t - s->first_user_sig < 5000) {
            /* a second one: the program did not stop; make it */
            kill(s->child, SIGKILL);
            return;
        }
        s->user_sig = true;
        s->first_user_sig = t;
    }
    kill(s->child, sig);
}

static void handle_signals(session *s)
{
    unsigned char b[64];
    ssize_t k = read(s->sig_pipe[0], b, sizeof(b));

    for (ssize_t i = 0; i + 1 < k; i += 2) {
        int sig = b[i];
        if (sig == SIGCHLD)
            on_sigchld(s);
        else if (sig == SIGWINCH)
            on_sigwinch(s);
        else if (sig != SIGCONT)   /* SIGCONT: resumed by the shell */
            forward(s, sig, b[i + 1] != 0);
    }
}

/* --- the loop ------------------------------------------------------------------------ */

/* One round: wait for something, then do it. False when the relaying is
 * over (the program ended and its output is drained, or poll failed). */
static bool relay_round(session *s)
{
    struct pollfd pf[4] = {{s->sig_pipe[0], POLLIN, 0}, {s->out.fd, POLLIN, 0}, {s->err.fd, POLLIN, 0},
                           {-1, POLLIN, 0}};
    int timeout = -1;
    int64_t now = mono_ms();

    if (short_tail_waiting(&s->out) || short_tail_waiting(&s->err))
        timeout = SILENCE_MS;
    if (s->exited) {
        /* drain: what the program wrote before it ended; do not wait for a
         * background grandchild that keeps the stream open */
        int64_t left = s->exited_at + DRAIN_MS - now;
        if (left <= 0 || (s->out.fd < 0 && s->err.fd < 0))
            return false;
        timeout = timeout < 0 || timeout > left ? (int)left : timeout;
    }
    if (s->tty_in && !s->exited)
        pf[3].fd = STDIN_FILENO;
    if (poll(pf, 4, timeout) < 0 && errno != EINTR)
        return false;
    if (pf[0].revents & POLLIN)
        handle_signals(s);
    pump_if(s, &s->out, pf[1].revents);
    pump_if(s, &s->err, pf[2].revents);
    if (pf[3].fd >= 0 && (pf[3].revents & (POLLIN | POLLHUP)))
        relay_stdin(s);
    now = mono_ms();
    release_on_silence(&s->out, now);
    release_on_silence(&s->err, now);
    if (!s->exited && s->out.fd < 0 && s->err.fd < 0) {
        /* both streams closed: wait for the program itself */
        int st;
        if (waitpid(s->child, &st, 0) == s->child)
            program_ended(s, st);
    }
    return true;
}


int mask_run(char **argv, char **envp, const mask_opts *o, int (*exec_fn)(char **argv, char **envp))
{
    session s;
    bool tty_out = isatty(STDOUT_FILENO);
    bool tty_err = tty_out && isatty(STDERR_FILENO);

    session_init(&s);
    /* stdin relayed only when we are the terminal's foreground job: a
     * background job touching the terminal would be stopped (SIGTTOU) */
    s.tty_in = tty_out && isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    if (!start_masking(&s, o) || !open_channels(&s, tty_out, tty_err)) {
        session_free(&s);
        return 125;
    }
    catch_signals();
    if (!spawn(&s, argv, envp, exec_fn)) {
        session_free(&s);
        return 125;
    }
    terminal_raw(&s);
    while (relay_round(&s))
        ;
    if (!s.exited) {
        while (waitpid(s.child, &s.status, 0) < 0 && errno == EINTR)
            ;
    }
    /* nothing is held back at the end */
    session_free(&s);
    terminal_restore(&s);
    return cli_exit_like(s.status);   /* a program killed by a signal: the same death */
}
