/*
 * cli.c - messages, exit codes and hardening shared by the tools.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

const char *cli_prog = "hive";

/* Write text to stderr with control characters escaped: messages quote
 * ids and file names from the store, which must not be able to forge a
 * line or send escape sequences to the terminal. */
static void put_escaped(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
}

/* The whole message, never cut; NULL when out of memory. Free it. */
static char *__attribute__((format(printf, 1, 0))) vformat(const char *fmt, va_list ap)
{
    char *msg = NULL;

    return vasprintf(&msg, fmt, ap) < 0 ? NULL : msg;
}

void (*cli_error_hook)(const char *text);

static void __attribute__((format(printf, 2, 0))) vmsg(const char *kind, const char *fmt, va_list ap)
{
    char *msg = vformat(fmt, ap);
    const char *text = msg ? msg : "(out of memory formatting the message)";

    fprintf(stderr, "%s: %s: ", cli_prog, kind);
    put_escaped(text);
    fputc('\n', stderr);
    if (cli_error_hook != NULL && strcmp(kind, "error") == 0)
        cli_error_hook(text);
    free(msg);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg("error", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg("warning", fmt, ap);
    va_end(ap);
}

void cli_hint(const char *fmt, ...)
{
    va_list ap;

    char *msg;

    va_start(ap, fmt);
    msg = vformat(fmt, ap);
    va_end(ap);
    fputs("hint: ", stderr);
    put_escaped(msg ? msg : "(out of memory formatting the hint)");
    fputc('\n', stderr);
    free(msg);
}

int cli_exit_code(hive_rc rc)
{
    switch (rc) {
    case HIVE_OK: return 0;
    case HIVE_ERR_INVALID:
    case HIVE_ERR_BAD_ID:
    case HIVE_ERR_TOO_LARGE: return EXIT_USAGE;
    case HIVE_ERR_NOT_FOUND:
    case HIVE_ERR_KEY_NOT_FOUND: return EXIT_NOT_FOUND;
    case HIVE_ERR_NO_KEY:
    case HIVE_ERR_BAD_KEY: return EXIT_KEY;
    case HIVE_ERR_DECRYPT: return EXIT_DECRYPT;
    case HIVE_ERR_FORMAT:
        /* a damaged usage file is the store's, not a credential's */
        return strncmp(hive_last_error(), "usage file", 10) == 0 ? EXIT_STORE : EXIT_DECRYPT;
    case HIVE_ERR_NETWORK:
        /* no answer: from a token endpoint a failed refresh, else the store */
        return strncmp(hive_last_error(), "Failed to refresh", 17) == 0 ? EXIT_REFRESH : EXIT_STORE;
    case HIVE_ERR_UNSUPPORTED:
    case HIVE_ERR_REFRESH:
    case HIVE_ERR_REAUTH:
    case HIVE_ERR_IN_DOUBT: return EXIT_REFRESH;
    default: return EXIT_STORE;
    }
}

bool cli_hint_dotenv(const char *msg)
{
    if (strstr(msg, "dotenv line") != NULL && strstr(msg, "not UTF-8") != NULL)
        cli_hint("save the file as UTF-8, e.g. iconv -f LATIN1 -t UTF-8 FILE > FILE.utf8");
    else if (strstr(msg, "dotenv values expand to more than") != NULL)
        cli_hint("a ${NAME} is expanded over and over: look for values that use the one before them "
                 "several times");
    else if (strstr(msg, "dotenv file larger than") != NULL)
        cli_hint("a .env file holds settings; keep a large value in the store: hive-cred set ID KEY < FILE");
    else if (strncmp(msg, "dotenv", 6) != 0 && strstr(msg, " does not exist") != NULL)
        cli_hint("check the file's path (a relative one starts from the working directory)");
    else
        return false;
    return true;
}

/* Hints for what the Aden platform answered (hive-cred sync, refresh). */
static bool hint_aden(hive_rc rc, const char *msg)
{
    if (strstr(msg, "Agent API key is invalid or revoked") != NULL)
        cli_hint("set ADEN_API_KEY to a valid key, or store it: printf 'api_key=%%s\n' \"$KEY\" | "
                 "hive-cred add aden_api_key");
    else if (strstr(msg, "Rate limited by Aden") != NULL)
        cli_hint("wait as long as it says, then run the command again");
    else if (strncmp(msg, "Aden server answered", 20) == 0 || strncmp(msg, "Aden's answer", 13) == 0)
        cli_hint("the Aden server failed or sent what hive cannot use; nothing was changed: try again later, "
                 "and check ADEN_API_URL");
    else if (rc == HIVE_ERR_REAUTH && strstr(msg, "Visit") != NULL)
        cli_hint("open that address to authorize again, then run 'hive-cred sync'");
    else
        return false;
    return true;
}

static void audit_warn(void *ctx, const char *msg)
{
    (void)ctx;
    cli_warn("%s", msg);
    cli_hint("%s goes on without it; HIVE_AUDIT=off turns the audit log off", cli_prog);
}

hive_audit *cli_audit_open(const char *store_dir, const char *command)
{
    hive_audit_options ao = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a = NULL;
    char *home = NULL;
    char *why = NULL;

    ao.store_dir = store_dir;
    ao.tool = cli_prog;
    ao.command = command;
    ao.setting = getenv("HIVE_AUDIT");
    ao.warn = audit_warn;
    /* a store that is no directory (etcd, or none yet): the log is in the
     * Hive home; none known: hive_audit_open says so */
    if (store_dir == NULL && hive_home_from_env(&home) != HIVE_OK)
        why = strdup(hive_last_error());   /* said if the log is on */
    ao.home = home;
    if (hive_audit_open(&a, &ao) != HIVE_OK) {
        audit_warn(NULL, why != NULL ? why : hive_last_error());
        a = NULL;
    }
    free(why);
    free(home);
    return a;
}

int cli_audit_path(char **out, const char *store_dir)
{
    char *home = NULL;
    hive_rc rc = store_dir != NULL ? HIVE_OK : hive_home_from_env(&home);

    if (rc == HIVE_OK)
        rc = hive_audit_path(out, store_dir, home);
    free(home);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

void cli_scope_hint(const char *id, bool recorded)
{
    if (recorded)
        cli_hint("obtain a token granting them (hive-cred login %s asks for every scope its usage specs "
                 "require), or remove them from the spec: hive-cred usage add %s ...", id, id);
    else
        cli_hint("record the scopes its token was granted, as the token endpoint said them: "
                 "printf %%s 'SCOPE SCOPE' | hive-cred set %s scope", id);
}

int cli_fail(hive_rc rc)
{
    const char *msg = *hive_last_error() ? hive_last_error() : hive_strerror(rc);

    cli_error("%s", msg);
    if (((rc == HIVE_ERR_INVALID || rc == HIVE_ERR_TOO_LARGE) && cli_hint_dotenv(msg)) || hint_aden(rc, msg))
        return cli_exit_code(rc);
    switch (rc) {
    case HIVE_ERR_NO_KEY:
        if (strstr(msg, "Aden API key") != NULL)
            cli_hint("export ADEN_API_KEY=..., or: printf 'api_key=%%s\\n' \"$KEY\" | hive-cred add aden_api_key");
        else if (strncmp(msg, HIVE_ENV_KEY_COMMAND, strlen(HIVE_ENV_KEY_COMMAND)) == 0)
            cli_hint("run the command yourself: it must exit 0 within " HIVE_ENV_KEY_COMMAND_TIMEOUT
                     " (default 10 s) and print the key alone");
        else
            cli_hint("run 'hive-cred init' to create a key file, or set HIVE_CREDENTIAL_KEY");
        break;
    case HIVE_ERR_BAD_KEY:
        cli_hint("a key is 44 characters of urlsafe base64; 'hive-cred keygen' prints a new one");
        break;
    case HIVE_ERR_DECRYPT:
        cli_hint("the file was written with another key, or is damaged; "
                 "check HIVE_CREDENTIAL_KEY and the key file");
        break;
    case HIVE_ERR_NOT_FOUND:
        if (strncmp(msg, "No usage spec", 13) == 0)
            cli_hint("'hive-cred usage list' shows the registered specs");
        else
            cli_hint("'hive-cred list' shows the stored ids");
        break;
    case HIVE_ERR_PERM:
        if (strstr(msg, "key file") != NULL && strstr(msg, "mode") != NULL)
            cli_hint("chmod 600 the key file");
        break;
    case HIVE_ERR_REFRESH:
        if (strstr(msg, "TLS certificate") != NULL)
            cli_hint("put the PEM of the CA that signed the server's certificate in the provider "
                     "credential's ca_file key");
        break;
    case HIVE_ERR_REAUTH:
        cli_hint("authorize again with the provider and save the new tokens (hive-cred add)");
        break;
    case HIVE_ERR_IN_DOUBT:
        cli_hint("authorize again with the provider and save the new tokens (hive-cred add)");
        cli_hint("only if you know the server never received that request: "
                 "hive-cred refresh --retry-in-doubt ID sends the token once more");
        break;
    case HIVE_ERR_NETWORK:
        if (strncmp(msg, "etcd", 4) == 0)
            cli_hint("check that etcd is running and reachable at the --store URL "
                     "(etcds:// if it serves TLS; ?ca_file= for its CA)");
        else if (strstr(msg, "Aden") != NULL)
            cli_hint("the Aden server did not answer; credentials synced before stay usable until they expire");
        else
            cli_hint("the token endpoint did not answer; check the network and the provider's token_url");
        break;
    case HIVE_ERR_CONFLICT:
        if (strstr(msg, "maps to file") != NULL)
            cli_hint("Hive stores '/', '\\' and '..' in ids as '_'; choose another id");
        break;
    case HIVE_ERR_FORMAT:
        if (strncmp(msg, "usage file", 10) == 0)
            cli_hint("fix the JSON by hand, or move the file away to start with no usage specs");
        break;
    default:
        break;
    }
    return cli_exit_code(rc);
}

/* stdout's buffer is ours, so that values printed by get and show
 * --reveal can be wiped at exit rather than left in libc's heap. */
static char out_buf[8192];

static void wipe_stdout(void)
{
    fflush(stdout);
    hive_memzero(out_buf, sizeof(out_buf));
}

void cli_harden(void)
{
    struct rlimit none = {0, 0};

    setvbuf(stdout, out_buf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, sizeof(out_buf));
    atexit(wipe_stdout);

    umask(077);
    setrlimit(RLIMIT_CORE, &none);
    /* Not dumpable: no core file and no ptrace attach by other processes
     * of the same user. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

void cli_free_secret(void *p, size_t n)
{
    hive_memzero(p, n);
    free(p);
}

void cli_free_str(char *s)
{
    if (s != NULL)
        cli_free_secret(s, strlen(s));
}

int cli_read_all(int fd, char **out, size_t *len, size_t max)
{
    size_t cap = 4096;
    size_t n = 0;
    char *buf = malloc(cap);

    if (buf == NULL)
        return -1;
    for (;;) {
        ssize_t got;
        if (n + 1 >= cap) {
            char *bigger;
            if (cap >= max + 1) {
                cli_free_secret(buf, cap);
                errno = EFBIG;
                return -1;
            }
            bigger = malloc(cap * 2);
            if (bigger == NULL) {
                cli_free_secret(buf, cap);
                return -1;
            }
            memcpy(bigger, buf, n);
            cli_free_secret(buf, cap);
            buf = bigger;
            cap *= 2;
        }
        got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            cli_free_secret(buf, cap);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max) {
            cli_free_secret(buf, cap);
            errno = EFBIG;
            return -1;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int cli_prompt(const char *prompt, bool echo, char *buf, size_t size)
{
    struct termios old, quiet;
    bool restore = false;
    size_t n = 0;
    bool eof = false;
    sigset_t block, saved;

    /* no ^C, ^Z or hang-up while echo is off: the terminal must get its
     * echo back (they take effect once it has) */
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTSTP);
    sigaddset(&block, SIGQUIT);
    if (!echo)
        sigprocmask(SIG_BLOCK, &block, &saved);

    fputs(prompt, stderr);
    fflush(stderr);
    if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    for (;;) {
        char c;
        ssize_t got = read(STDIN_FILENO, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            eof = n == 0;
            break;
        }
        if (c == '\n')
            break;
        if (c == 3 || c == 4) {   /* ^C, ^D with ISIG off would not arrive; raw bytes do */
            eof = true;
            break;
        }
        if (n + 1 < size)
            buf[n++] = c;
    }
    buf[n] = '\0';
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!echo)
        sigprocmask(SIG_SETMASK, &saved, NULL);
    return eof ? -1 : (int)n;
}

hive_rc cli_print_json(const hive_json *v)
{
    hive_secret text = HIVE_SECRET_INIT;
    hive_rc rc;

    if (v == NULL)   /* a document hive_json_put could not complete */
        return hive_fail(HIVE_ERR_NOMEM, "out of memory");
    rc = hive_json_emit(v, &text, 2);
    if (rc != HIVE_OK)
        return rc;
    fwrite(text.data, 1, text.len, stdout);
    fputc('\n', stdout);
    hive_secret_free(&text);   /* show --reveal prints secrets */
    return HIVE_OK;
}

bool cli_path_next(const char **cursor, const char *name, char *out, size_t size)
{
    while (*cursor != NULL) {
        const char *p = *cursor;
        const char *colon = strchr(p, ':');
        size_t dl = colon ? (size_t)(colon - p) : strlen(p);
        int w = dl == 0 ? snprintf(out, size, "%s", name) : snprintf(out, size, "%.*s/%s", (int)dl, p, name);
        *cursor = colon ? colon + 1 : NULL;
        if (w > 0 && (size_t)w < size)
            return true;
    }
    return false;
}

const char *cli_env_value(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (char *const *e = envp; *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* The signals a user may want sent to a program: not SIGKILL/SIGSTOP
 * (they cannot be handled), not the ones a fault raises. */
static const struct { const char *name; int sig; } signals[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH}, {"CONT", SIGCONT}, {"PIPE", SIGPIPE},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"IO", SIGIO},
    {"PWR", SIGPWR}, {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"KILL", SIGKILL},
};

int cli_signal_number(const char *name)
{
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        if (strcasecmp(name, signals[i].name) == 0)
            return signals[i].sig;
    return 0;
}

const char *cli_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        if (signals[i].sig == sig)
            return signals[i].name;
    return "?";
}

int cli_exit_like(int status)
{
    if (WIFSIGNALED(status)) {
        struct rlimit none = {0, 0};
        int sig = WTERMSIG(status);
        sigset_t set;
        setrlimit(RLIMIT_CORE, &none);
        signal(sig, SIG_DFL);
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        fflush(NULL);
        kill(getpid(), sig);
        return 128 + sig;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

char **cli_env_without_secrets(void)
{
    /* what opens the store or a remote: never for a helper program */
    static const char *const secret[] = {"HIVE_CREDENTIAL_KEY", "HIVE_NEW_CREDENTIAL_KEY",
                                         "HIVE_ETCD_PASSWORD", "ADEN_API_KEY"};
    extern char **environ;
    size_t n = 0;
    size_t k = 0;
    char **env;

    while (environ != NULL && environ[n] != NULL)
        n++;
    env = calloc(n + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        for (size_t j = 0; j < sizeof(secret) / sizeof(secret[0]) && !drop; j++) {
            size_t len = strlen(secret[j]);
            drop = strncmp(environ[i], secret[j], len) == 0 && environ[i][len] == '=';
        }
        if (!drop)
            env[k++] = environ[i];
    }
    return env;
}
