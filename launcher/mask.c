/*
 * mask.c - hive-run --mask.
 *
 * The program runs as hive-run's child. Its stdout and stderr come back
 * through a pseudo-terminal each (when hive-run's own are terminals: the
 * program still sees a terminal, colours and progress bars work) or pipes,
 * stay two separate streams, and pass through a filter that replaces every
 * secret value, and its base64, base64url, URL and hex encodings, by
 * MASK_MARKER. Output is streamed: only a tail that could still be the
 * start of a secret is held back - released after a few milliseconds of
 * silence when it is under 4 bytes (a prompt is never delayed), held while
 * it still matches when longer (a secret printed slowly in pieces is still
 * masked), and written out at the end.
 */
#include "mask.h"
#include "cli.h"

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

#define HASH_BITS 16
#define HASH_SIZE (1u << HASH_BITS)
#define SHORT_TAIL 4          /* tails shorter than this are released on silence */
#define SILENCE_MS 15

/* --- the matcher ------------------------------------------------------------- */

typedef struct pattern {
    char *bytes;
    size_t len;
} pattern;

struct masker {
    pattern *p;
    size_t n;
    size_t maxlen;
    uint64_t bits4[HASH_SIZE / 64];     /* 4-byte prefixes present */
    uint32_t *bucket_start;             /* HASH_SIZE + 1 offsets into order[] */
    uint32_t *order;                    /* pattern indices grouped by prefix hash */
    uint64_t bits1[4];                  /* 1-byte prefixes */
    uint64_t bits2[HASH_SIZE / 64];     /* 2-byte prefixes */
    uint64_t bits3[HASH_SIZE / 64];     /* 3-byte prefixes (hashed) */
    size_t minlen;                      /* the shortest pattern */
    uint8_t *shift;                     /* Wu-Manber: how far a window may move */
};

static inline uint32_t load4(const char *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static inline uint32_t hash4(uint32_t v)
{
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static inline uint32_t hash3(const char *p)
{
    uint32_t v = (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8 |
                 (uint32_t)(unsigned char)p[2] << 16;
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

#define BIT_SET(b, i) ((b)[(i) >> 6] |= UINT64_C(1) << ((i) & 63))
#define BIT_GET(b, i) (((b)[(i) >> 6] >> ((i) & 63)) & 1)

static bool add_pattern(masker *m, const char *s, size_t len)
{
    pattern *grown;

    for (size_t i = 0; i < m->n; i++)
        if (m->p[i].len == len && memcmp(m->p[i].bytes, s, len) == 0)
            return true;
    grown = realloc(m->p, (m->n + 1) * sizeof(*grown));
    if (grown == NULL)
        return false;
    m->p = grown;
    m->p[m->n].bytes = malloc(len);
    if (m->p[m->n].bytes == NULL)
        return false;
    memcpy(m->p[m->n].bytes, s, len);
    m->p[m->n].len = len;
    m->n++;
    if (len > m->maxlen)
        m->maxlen = len;
    return true;
}

/* The value's encodings a program is likely to print. */
static bool add_value(masker *m, const char *v, size_t len)
{
    static const char hexl[] = "0123456789abcdef";
    static const char hexu[] = "0123456789ABCDEF";
    size_t cap = len * 3 + 8;   /* hex and URL encoding take the most */
    char *buf = malloc(cap);
    bool ok = buf != NULL && add_pattern(m, v, len);

    /* on a terminal, the program's "\n" comes out as "\r\n" (ONLCR) */
    if (ok && memchr(v, '\n', len) != NULL) {
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r'))
                buf[o++] = '\r';
            buf[o++] = v[i];
        }
        ok = add_pattern(m, buf, o);
    }

    for (int k = 0; ok && k < 4; k++) {
        size_t n = hive_base64_encode(buf, v, len, (k & 1 ? HIVE_B64_URL : 0) | (k & 2 ? 0 : HIVE_B64_NOPAD));
        ok = add_pattern(m, buf, n);
    }
    for (int k = 0; ok && k < 2; k++) {
        const char *h = k ? hexu : hexl;
        for (size_t i = 0; i < len; i++) {
            buf[2 * i] = h[(unsigned char)v[i] >> 4];
            buf[2 * i + 1] = h[(unsigned char)v[i] & 15];
        }
        ok = add_pattern(m, buf, 2 * len);
    }
    for (int k = 0; ok && k < 2; k++) {
        /* percent-encoding; k: form style, space as '+' */
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)v[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '.' || c == '_' || c == '~') {
                buf[o++] = (char)c;
            } else if (k && c == ' ') {
                buf[o++] = '+';
            } else {
                buf[o++] = '%';
                buf[o++] = hexu[c >> 4];
                buf[o++] = hexu[c & 15];
            }
        }
        ok = add_pattern(m, buf, o);
    }
    if (buf != NULL)
        hive_free_secret(buf, cap);
    return ok;
}

void masker_free(masker *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        hive_free_secret(m->p[i].bytes, m->p[i].len);
    free(m->p);
    free(m->bucket_start);
    free(m->order);
    free(m->shift);
    free(m);
}

masker *masker_new(const char *const *values, const size_t *lens, size_t n, size_t min_len)
{
    masker *m = calloc(1, sizeof(*m));
    uint32_t *count = NULL;

    if (m == NULL)
        return NULL;
    if (min_len < SHORT_TAIL)
        min_len = SHORT_TAIL;
    for (size_t i = 0; i < n; i++)
        if (lens[i] >= min_len && !add_value(m, values[i], lens[i]))
            goto fail;
    m->bucket_start = calloc(HASH_SIZE + 1, sizeof(uint32_t));
    m->order = calloc(m->n + 1, sizeof(uint32_t));
    count = calloc(HASH_SIZE + 1, sizeof(uint32_t));
    if (m->bucket_start == NULL || m->order == NULL || count == NULL)
        goto fail;
    for (size_t i = 0; i < m->n; i++) {
        const char *b = m->p[i].bytes;
        uint32_t h = hash4(load4(b));
        BIT_SET(m->bits4, h);
        count[h]++;
        BIT_SET(m->bits1, (unsigned char)b[0]);
        BIT_SET(m->bits2, (uint32_t)(unsigned char)b[0] | (uint32_t)(unsigned char)b[1] << 8);
        BIT_SET(m->bits3, hash3(b));
    }
    for (uint32_t h = 0; h < HASH_SIZE; h++)
        m->bucket_start[h + 1] = m->bucket_start[h] + count[h];
    /* Wu-Manber: a window of minlen bytes whose last 4 bytes occur in no
     * pattern's first minlen bytes can move on by more than one byte */
    m->minlen = SIZE_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (m->p[i].len < m->minlen)
            m->minlen = m->p[i].len;
    if (m->n > 0) {
        size_t maxshift = m->minlen - 4 + 1;
        m->shift = malloc(HASH_SIZE);
        if (m->shift == NULL)
            goto fail;
        memset(m->shift, (int)(maxshift > 255 ? 255 : maxshift), HASH_SIZE);
        for (size_t i = 0; i < m->n; i++) {
            for (size_t j = 0; j + 4 <= m->minlen; j++) {
                uint32_t h = hash4(load4(m->p[i].bytes + j));
                size_t sh = m->minlen - 4 - j;
                if (sh < m->shift[h])
                    m->shift[h] = (uint8_t)sh;
            }
        }
    }
    memset(count, 0, (HASH_SIZE + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < m->n; i++) {
        uint32_t h = hash4(load4(m->p[i].bytes));
        m->order[m->bucket_start[h] + count[h]++] = (uint32_t)i;
    }
    free(count);
    return m;
fail:
    free(count);
    masker_free(m);
    return NULL;
}

/* --- the stream ----------------------------------------------------------- */

static void out(mask_stream *s, const char *p, size_t n)
{
    while (n > 0 && s->fd >= 0) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            s->fd = -1;   /* the reader went away; keep draining the program */
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Could the bytes p[0..n) (n < 4) begin a pattern? */
static bool short_prefix(const masker *m, const char *p, size_t n)
{
    if (n == 1)
        return BIT_GET(m->bits1, (unsigned char)p[0]);
    if (n == 2)
        return BIT_GET(m->bits2, (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8);
    return BIT_GET(m->bits3, hash3(p));
}

/* The longest pattern matching at buf+i (0: none); *partial when one
 * could still match if more bytes came. */
static size_t match_at(const masker *m, const char *buf, size_t n, size_t i, bool *partial)
{
    uint32_t h = hash4(load4(buf + i));
    size_t best = 0;

    *partial = false;
    if (!BIT_GET(m->bits4, h))
        return 0;
    for (uint32_t k = m->bucket_start[h]; k < m->bucket_start[h + 1]; k++) {
        const pattern *p = &m->p[m->order[k]];
        if (p->len <= n - i) {
            if (p->len > best && memcmp(buf + i, p->bytes, p->len) == 0)
                best = p->len;
        } else if (memcmp(buf + i, p->bytes, n - i) == 0) {
            *partial = true;
        }
    }
    return best;
}

/* Write buf[from..to), leaving out what the first `skip` bytes of buf
 * already were (written before). */
static void emit(mask_stream *s, const char *buf, size_t from, size_t to, size_t skip)
{
    if (from < skip)
        from = skip;
    if (to > from)
        out(s, buf + from, to - from);
}

/*
 * Scan buf[0..n), whose first `skip` bytes were written already: write out
 * what is settled, return how many bytes at the end must be held (they
 * may begin a secret that continues later; s->nsent says how many of those
 * were written already). Wu-Manber: windows of the shortest pattern's
 * length move on by several bytes at once where no pattern can start.
 */
static size_t scan(mask_stream *s, const char *buf, size_t n, size_t skip)
{
    const masker *m = s->m;
    size_t last = 0;
    size_t i = 0;

    s->nsent = 0;
    if (m == NULL || m->n == 0) {
        emit(s, buf, 0, n, skip);
        return 0;
    }
    while (i + m->minlen <= n) {
        size_t sh = m->shift[hash4(load4(buf + i + m->minlen - 4))];
        bool partial;
        size_t best;

        if (sh > 0) {
            i += sh;
            continue;
        }
        best = match_at(m, buf, n, i, &partial);
        if (partial) {
            emit(s, buf, last, i, skip);
            s->nsent = skip > i ? skip - i : 0;
            return n - i;
        }
        if (best > 0) {
            emit(s, buf, last, i, skip);
            if (i + best > skip)
                out(s, MASK_MARKER, sizeof(MASK_MARKER) - 1);
            i += best;
            last = i;
            continue;
        }
        i++;
    }
    /* the last bytes, too few for a whole window: hold from the first
     * position where they could begin a pattern */
    for (; i < n; i++) {
        bool partial = false;
        if (n - i >= 4) {
            size_t best = match_at(m, buf, n, i, &partial);
            if (best > 0 && !partial) {
                emit(s, buf, last, i, skip);
                if (i + best > skip)
                    out(s, MASK_MARKER, sizeof(MASK_MARKER) - 1);
                i += best - 1;
                last = i + 1;
                continue;
            }
        } else {
            partial = short_prefix(m, buf + i, n - i);
        }
        if (partial) {
            emit(s, buf, last, i, skip);
            s->nsent = skip > i ? skip - i : 0;
            return n - i;
        }
    }
    emit(s, buf, last, n, skip);
    return 0;
}

void mask_feed(mask_stream *s, const char *data, size_t n)
{
    char *work;
    size_t total;
    size_t keep;
    size_t skip = s->nsent;

    if (s->nheld == 0) {
        keep = scan(s, data, n, 0);
        if (keep > 0) {
            if (keep > s->cap) {
                char *b = realloc(s->held, keep);
                if (b == NULL) {
                    out(s, data + n - keep, keep);
                    s->nsent = 0;
                    return;
                }
                s->held = b;
                s->cap = keep;
            }
            memcpy(s->held, data + n - keep, keep);
            s->nheld = keep;
        }
        return;
    }
    total = s->nheld + n;
    work = malloc(total);
    if (work == NULL) {
        mask_release(s, 0);
        out(s, data, n);
        return;
    }
    memcpy(work, s->held, s->nheld);
    memcpy(work + s->nheld, data, n);
    s->nheld = 0;
    keep = scan(s, work, total, skip);
    if (keep > s->cap) {
        char *b = realloc(s->held, keep);
        if (b == NULL) {
            emit(s, work, total - keep, total, total - keep + s->nsent);
            keep = 0;
            s->nsent = 0;
        } else {
            s->held = b;
            s->cap = keep;
        }
    }
    if (keep > 0)
        memcpy(s->held, work + total - keep, keep);
    s->nheld = keep;
    hive_free_secret(work, total);
}

void mask_release(mask_stream *s, size_t below)
{
    /* A held tail is never a whole secret (it would have been replaced),
     * only the start of one. On silence a short one goes out but stays as
     * context (nsent); at the end everything goes. */
    if (s->nheld == 0 || (below > 0 && s->nheld >= below))
        return;
    if (s->nheld > s->nsent)
        out(s, s->held + s->nsent, s->nheld - s->nsent);
    if (below > 0) {
        s->nsent = s->nheld;
        return;
    }
    hive_memzero(s->held, s->nheld);
    s->nheld = 0;
    s->nsent = 0;
}

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
    mask_stream s;
    bool open;
    int64_t last_data;
} relay;

/* Read what is there; false at end of stream. */
static bool pump(relay *r)
{
    static char buf[256 * 1024];

    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n > 0) {
            mask_feed(&r->s, buf, (size_t)n);
            r->last_data = mono_ms();
            if (r->s.fd < 0)
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

    if (m == NULL) {
        cli_error("out of memory");
        return 125;
    }
    if (tty_out) {
        struct termios tio;
        bool have_tio = tcgetattr(tty_in ? STDIN_FILENO : STDOUT_FILENO, &tio) == 0;
        if (openpty(&out_master, &out_slave, NULL, have_tio ? &tio : NULL, have_ws ? &ws : NULL) != 0 ||
            (tty_err && openpty(&err_master, &err_slave, NULL, have_tio ? &tio : NULL, have_ws ? &ws : NULL) != 0)) {
            cli_error("--mask: cannot open a pseudo-terminal: %s", strerror(errno));
            masker_free(m);
            return 125;
        }
        fcntl(out_master, F_SETFD, FD_CLOEXEC);
        fcntl(out_slave, F_SETFD, FD_CLOEXEC);
        if (tty_err) {
            fcntl(err_master, F_SETFD, FD_CLOEXEC);
            fcntl(err_slave, F_SETFD, FD_CLOEXEC);
        }
    } else if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        masker_free(m);
        return 125;
    }
    if (!tty_out)
        fcntl(out_pipe[0], F_SETPIPE_SZ, 1 << 20);   /* fewer, larger reads; best effort */
    if (!tty_err && pipe2(err_pipe, O_CLOEXEC) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        masker_free(m);
        return 125;
    }
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        cli_error("--mask: cannot make a pipe: %s", strerror(errno));
        masker_free(m);
        return 125;
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
        masker_free(m);
        return 125;
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
    rout.s.m = rerr.s.m = m;
    rout.s.fd = STDOUT_FILENO;
    rerr.s.fd = STDERR_FILENO;
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
    mask_release(&rout.s, 0);
    mask_release(&rerr.s, 0);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    free(rout.s.held);
    free(rerr.s.held);
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
