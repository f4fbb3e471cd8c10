/*
 * keycmd.c - the store key from a command (HIVE_CREDENTIAL_KEY_COMMAND):
 * `pass show hive/key`, `secret-tool lookup service hive`, a cloud secrets
 * manager's CLI.
 *
 * The command is split into words without a shell (keycmd.h says how) and
 * run with posix_spawnp: stdin /dev/null (it must not eat what the tool
 * reads from stdin), stdout a pipe, stderr the caller's (its messages
 * reach the user), in a process group of its own, so that at the time
 * limit the whole group is killed, whatever it started. Its output, less
 * trailing white space, is the key; it never appears in a message, and
 * the buffer that held it is wiped.
 */
#include "keycmd.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A key is 44 characters; what is much longer is something else. */
#define MAX_OUTPUT 4096
#define DEFAULT_TIMEOUT 10.0
#define MAX_TIMEOUT 3600.0

void hive__key_command_free(char ***argv)
{
    if (*argv == NULL)
        return;
    for (char **w = *argv; *w != NULL; w++)
        hive__free_str(*w);
    free(*argv);
    *argv = NULL;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

hive_rc hive__key_command_split(char ***out, const char *command)
{
    size_t cap = strlen(command) / 2 + 2;   /* words are separated: at most this many */
    char **argv = calloc(cap + 1, sizeof(*argv));
    char *word = malloc(strlen(command) + 1);
    const char *p = command;
    size_t n = 0;
    hive_rc rc = HIVE_OK;

    if (argv == NULL || word == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    while (rc == HIVE_OK) {
        size_t len = 0;
        while (blank(*p))
            p++;
        if (*p == '\0')
            break;
        while (rc == HIVE_OK && *p != '\0' && !blank(*p)) {
            if (*p == '\'') {
                /* 'literal': nothing inside is special */
                for (p++; *p != '\0' && *p != '\''; p++)
                    word[len++] = *p;
                if (*p == '\0')
                    rc = hive__fail(HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND " has a ' that is not closed");
                else
                    p++;
            } else if (*p == '"') {
                /* "literal" but for \" and \\ */
                for (p++; *p != '\0' && *p != '"'; p++) {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    word[len++] = *p;
                }
                if (*p == '\0')
                    rc = hive__fail(HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND " has a \" that is not closed");
                else
                    p++;
            } else if (*p == '\\') {
                if (p[1] == '\0')
                    rc = hive__fail(HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND " ends with a \\");
                else
                    word[len++] = p[1];
                p += 2;
            } else if (strchr("|&;<>()$`", *p) != NULL) {
                /* a shell's operator would silently become an argument */
                rc = hive__fail(HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND " is run without a shell, and has "
                                "an unquoted '%c': quote it, or run a shell: sh -c '...'", *p);
            } else {
                word[len++] = *p++;
            }
        }
        if (rc == HIVE_OK) {
            argv[n] = hive__strndup(word, len);
            if (argv[n++] == NULL)
                rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        hive_memzero(word, len);
    }
    if (rc == HIVE_OK && n == 0)
        rc = hive__fail(HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND " names no program");
out:
    free(word);
    if (rc != HIVE_OK) {
        hive__key_command_free(&argv);
        return rc;
    }
    *out = argv;
    return HIVE_OK;
}

hive_rc hive__key_command_timeout(double *seconds, const char *text)
{
    double v;

    if (text == NULL) {
        *seconds = DEFAULT_TIMEOUT;
        return HIVE_OK;
    }
    if (!hive__parse_seconds(&v, text, MAX_TIMEOUT) || !(v > 0))
        return hive__fail(HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND_TIMEOUT "=%.32s%s: want a number of seconds, "
                          "more than 0 and at most %.0f", text, strlen(text) > 32 ? "..." : "", MAX_TIMEOUT);
    *seconds = v;
    return HIVE_OK;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The environment less the store's keys: the command needs neither. */
static char **child_env(void)
{
    size_t n = 0;
    char **env;
    size_t k = 0;

    while (environ != NULL && environ[n] != NULL)
        n++;
    env = calloc(n + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], HIVE_ENV_KEY "=", strlen(HIVE_ENV_KEY) + 1) != 0 &&
            strncmp(environ[i], HIVE_ENV_NEW_KEY "=", strlen(HIVE_ENV_NEW_KEY) + 1) != 0)
            env[k++] = environ[i];
    return env;
}

static hive_rc spawn(pid_t *pid, int *out_fd, char **argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    sigset_t deflt;
    int pipefd[2];
    char **env = child_env();
    int err;

    if (env == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        free(env);
        return hive__fail(HIVE_ERR_IO, HIVE_ENV_KEY_COMMAND ": cannot make a pipe: %s", strerror(errno));
    }
    sigemptyset(&none);
    sigemptyset(&deflt);
    /* what the caller may ignore or catch, the command gets as default */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaddset(&deflt, sig);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    err = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (err == 0)
        err = posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    if (err == 0)
        err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF);
    if (err == 0)
        err = posix_spawnattr_setpgroup(&attr, 0);
    if (err == 0)
        err = posix_spawnattr_setsigmask(&attr, &none);
    if (err == 0)
        err = posix_spawnattr_setsigdefault(&attr, &deflt);
    if (err == 0)
        err = posix_spawnp(pid, argv[0], &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(env);
    close(pipefd[1]);
    if (err != 0) {
        close(pipefd[0]);
        if (err == ENOENT)
            return hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND ": cannot run %.200s: not found%s",
                              argv[0], strchr(argv[0], '/') ? "" : " on PATH");
        return hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND ": cannot run %.200s: %s", argv[0],
                          strerror(err));
    }
    *out_fd = pipefd[0];
    return HIVE_OK;
}

/* Read the command's output into buf (at most size - 1 bytes, *len) until
 * it closes it, the deadline passes (*late), or it writes too much. */
static hive_rc read_output(int fd, char *buf, size_t size, size_t *len, double deadline, bool *late)
{
    struct pollfd pfd = {fd, POLLIN, 0};

    *len = 0;
    for (;;) {
        double left = deadline - now();
        int r;
        ssize_t n;
        char sink[512];
        if (left <= 0) {
            *late = true;
            return HIVE_OK;
        }
        r = poll(&pfd, 1, (int)ceil(left * 1000));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hive__fail(HIVE_ERR_IO, HIVE_ENV_KEY_COMMAND ": poll failed: %s", strerror(errno));
        if (r == 0)
            continue;   /* the deadline, checked above */
        if (*len + 1 < size)
            n = read(fd, buf + *len, size - 1 - *len);
        else
            n = read(fd, sink, sizeof(sink));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hive__fail(HIVE_ERR_IO, HIVE_ENV_KEY_COMMAND ": cannot read its output: %s", strerror(errno));
        if (n == 0)
            return HIVE_OK;
        if (*len + 1 >= size) {
            hive_memzero(sink, sizeof(sink));
            return hive__fail(HIVE_ERR_BAD_KEY, HIVE_ENV_KEY_COMMAND " printed more than %zu bytes, which is no "
                              "key: a key is 44 characters of urlsafe base64", size - 1);
        }
        *len += (size_t)n;
    }
}

/* Wait for pid until the deadline (*late when it passed first). */
static hive_rc wait_until(pid_t pid, int *status, double deadline, bool *late)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        double left = deadline - now();
        struct timespec nap = {0, 10 * 1000 * 1000};
        if (r == pid)
            return HIVE_OK;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND ": cannot learn how it ended: %s",
                              strerror(errno));
        if (left <= 0) {
            *late = true;
            return HIVE_OK;
        }
        if (left < 0.01)
            nap.tv_nsec = (long)(left * 1e9);
        nanosleep(&nap, NULL);
    }
}

/* The output, less trailing white space, as a key. */
static hive_rc output_key(uint8_t key[HIVE_FERNET_KEY_BYTES], char *buf, size_t len, const char *prog)
{
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    if (len == 0)
        return hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND " (%.200s) printed no key", prog);
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '_' || c == '+' || c == '/' || c == '=';
        if (!b64)
            return hive__fail(HIVE_ERR_BAD_KEY, HIVE_ENV_KEY_COMMAND " (%.200s) printed %zu bytes that are not "
                              "a Fernet key (%s); it must print the key alone: urlsafe base64 of 32 bytes",
                              prog, len, c == '\n' ? "more than one line" : "a character outside base64");
    }
    if (hive_fernet_key_decode(key, buf, len) != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, HIVE_ENV_KEY_COMMAND " (%.200s) printed %zu characters that are "
                          "not a Fernet key: urlsafe base64 of 32 bytes", prog, len);
    return HIVE_OK;
}

hive_rc hive__key_command_run(uint8_t key[HIVE_FERNET_KEY_BYTES], const char *command, const char *timeout)
{
    char **argv = NULL;
    char buf[MAX_OUTPUT + 1];
    size_t len = 0;
    double limit;
    double deadline;
    bool late = false;
    int status = 0;
    int fd = -1;
    pid_t pid;
    hive_rc rc = hive__key_command_timeout(&limit, timeout);

    if (rc == HIVE_OK)
        rc = hive__key_command_split(&argv, command);
    if (rc != HIVE_OK)
        return rc;
    deadline = now() + limit;
    rc = spawn(&pid, &fd, argv);
    if (rc != HIVE_OK) {
        hive__key_command_free(&argv);
        return rc;
    }
    rc = read_output(fd, buf, sizeof(buf), &len, deadline, &late);
    close(fd);
    if (rc == HIVE_OK && !late)
        rc = wait_until(pid, &status, deadline, &late);
    if (rc != HIVE_OK || late) {
        /* the whole group, before the leader is reaped: its id cannot be
         * reused meanwhile */
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    if (rc == HIVE_OK && late)
        rc = hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND " (%.200s) did not finish within %g s (" 
                        HIVE_ENV_KEY_COMMAND_TIMEOUT "), and was killed", argv[0], limit);
    else if (rc == HIVE_OK && WIFSIGNALED(status))
        rc = hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND " (%.200s) was killed by signal %d (SIG%s)", argv[0],
                        WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else if (rc == HIVE_OK && WIFEXITED(status) && WEXITSTATUS(status) != 0)
        rc = hive__fail(HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND " (%.200s) failed: exit status %d", argv[0],
                        WEXITSTATUS(status));
    else if (rc == HIVE_OK)
        rc = output_key(key, buf, len, argv[0]);
    hive_memzero(buf, sizeof(buf));
    hive__key_command_free(&argv);
    return rc;
}

hive_rc hive__key_command_program(char **prog, const char *command)
{
    char **argv = NULL;
    hive_rc rc = hive__key_command_split(&argv, command);

    if (rc != HIVE_OK)
        return rc;
    *prog = hive__strdup(argv[0]);
    hive__key_command_free(&argv);
    return *prog ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
}
