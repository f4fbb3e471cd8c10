/*
 * getenv_bench - nanoseconds per getenv() call, measured in one process,
 * interleaved: libc's own getenv (looked up in libc.so.6) and getenv as
 * the program sees it (the preload's, under hive-run --fresh).
 *   getenv_bench NAME  ->  lines "NAME NS":
 *     libc, unmanaged       HOME in the environment as given (small)
 *     managed               NAME (a name the preload manages)
 *     libc_big, unmanaged_big
 *                           an unmanaged name late in a realistic
 *                           environment: the one given plus the 84
 *                           variables of a desktop shell and a CI runner,
 *                           many sharing their first one or two letters
 *                           (LC_, XDG_, GITHUB_, GNOME_, HIST...) with
 *                           each other and with NAME
 *     libc_absent, unmanaged_absent
 *                           a name set nowhere in it (a whole scan: what
 *                           libcurl's proxy look-ups cost)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef char *(*getenv_fn)(const char *);

extern char **environ;

/* Names as a login shell on a desktop and a CI runner have them; the last
 * one is looked up. */
static const char *const realistic[] = {
    "SHELL=/bin/bash", "SESSION_MANAGER=local/host:@/tmp/.ICE-unix/1970", "QT_ACCESSIBILITY=1",
    "COLORTERM=truecolor", "XDG_CONFIG_DIRS=/etc/xdg/xdg-ubuntu:/etc/xdg", "XDG_SESSION_PATH=/org/freedesktop/1",
    "XDG_MENU_PREFIX=gnome-", "GNOME_DESKTOP_SESSION_ID=this-is-deprecated", "LANGUAGE=en_US:en",
    "LC_ADDRESS=en_US.UTF-8", "LC_NAME=en_US.UTF-8", "LC_MONETARY=en_US.UTF-8",
    "SSH_AUTH_SOCK=/run/user/1000/keyring/ssh", "XMODIFIERS=@im=ibus", "DESKTOP_SESSION=ubuntu",
    "LC_TELEPHONE=en_US.UTF-8", "SSH_AGENT_PID=2042", "GTK_MODULES=gail:atk-bridge", "XDG_SEAT=seat0",
    "PWD=/home/user/src/project", "LOGNAME=user", "XDG_SESSION_DESKTOP=ubuntu", "XDG_SESSION_TYPE=wayland",
    "GPG_AGENT_INFO=/run/user/1000/gnupg/S.gpg-agent:0:1", "XAUTHORITY=/run/user/1000/.mutter-Xwaylandauth",
    "GJS_DEBUG_TOPICS=JS ERROR;JS LOG", "WINDOWPATH=2", "HOME=/home/user", "USERNAME=user",
    "IM_CONFIG_PHASE=1", "LC_PAPER=en_US.UTF-8", "LANG=en_US.UTF-8",
    "LS_COLORS=rs=0:di=01;34:ln=01;36:mh=00:pi=40;33:so=01;35:do=01;35:bd=40;33;01:cd=40;33;01",
    "XDG_CURRENT_DESKTOP=ubuntu:GNOME", "VTE_VERSION=6800", "GNOME_TERMINAL_SCREEN=/org/gnome/Terminal/s/1",
    "INVOCATION_ID=4b1e2c9f0d7a4e0c8f3b2a1d6e5c4b3a", "MANAGERPID=1654", "GJS_DEBUG_OUTPUT=stderr",
    "LESSCLOSE=/usr/bin/lesspipe %s %s", "XDG_SESSION_CLASS=user", "TERM=xterm-256color",
    "LC_IDENTIFICATION=en_US.UTF-8", "LESSOPEN=| /usr/bin/lesspipe %s", "USER=user",
    "GNOME_TERMINAL_SERVICE=:1.104", "DISPLAY=:0", "SHLVL=1", "QT_IM_MODULE=ibus",
    "LC_MEASUREMENT=en_US.UTF-8", "XDG_RUNTIME_DIR=/run/user/1000", "JOURNAL_STREAM=8:41297",
    "XDG_DATA_DIRS=/usr/share/ubuntu:/usr/local/share/:/usr/share/", "PATH=/usr/local/bin:/usr/bin:/bin",
    "GDMSESSION=ubuntu", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus", "LC_NUMERIC=en_US.UTF-8",
    "OLDPWD=/home/user", "HISTSIZE=10000", "HISTFILESIZE=20000", "HISTCONTROL=ignoreboth",
    "HOSTNAME=build-7", "EDITOR=vim", "PAGER=less", "JAVA_HOME=/usr/lib/jvm/java-17", "GOPATH=/home/user/go",
    "NODE_ENV=development", "NVM_DIR=/home/user/.nvm", "PYTHONPATH=/home/user/lib/python",
    "VIRTUAL_ENV=/home/user/.venv", "CI=true", "RUNNER_OS=Linux", "RUNNER_TEMP=/home/runner/_temp",
    "RUNNER_ARCH=X64", "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=/home/runner/project",
    "GITHUB_REF=refs/heads/main",
    "GITHUB_RUN_ID=8812345678", "GITHUB_ACTOR=user", "GITHUB_REPOSITORY=user/project",
    "GITHUB_EVENT_NAME=push", "GITHUB_API_URL=https://api.github.com", "LC_TIME=en_US.UTF-8",
    "GITHUB_SHA=3f786850e387550fdab836ed7e6dc881de23001b",
};

#define NREAL (sizeof(realistic) / sizeof(realistic[0]))

static double run(getenv_fn f, const char *name, long n)
{
    struct timespec a, b;
    volatile const char *sink;

    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        sink = f(name);
    clock_gettime(CLOCK_MONOTONIC, &b);
    (void)sink;
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool given(char **env, const char *entry)
{
    size_t len = strcspn(entry, "=") + 1;

    for (; *env != NULL; env++)
        if (strncmp(*env, entry, len) == 0)
            return true;
    return false;
}

/* The environment as given, then the realistic variables it lacks (what
 * the looked-up name, the last of them, follows). */
static char **grown_env(void)
{
    size_t n = 0;
    char **env;

    while (environ[n] != NULL)
        n++;
    env = calloc(n + NREAL + 1, sizeof(char *));
    if (env == NULL)
        return NULL;
    memcpy(env, environ, n * sizeof(char *));
    for (size_t i = 0; i < NREAL; i++)
        if (!given(environ, realistic[i]))
            env[n++] = (char *)(uintptr_t)realistic[i];
    env[n] = NULL;
    return env;
}

enum { ROUNDS = 15, KINDS = 7 };

int main(int argc, char **argv)
{
    static const char *const kind[KINDS] = {"libc", "unmanaged", "managed", "libc_big", "unmanaged_big",
                                            "libc_absent", "unmanaged_absent"};
    long n = 400000;
    double t[KINDS][ROUNDS];
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    getenv_fn libc_getenv = libc ? (getenv_fn)dlsym(libc, "getenv") : NULL;
    char **small = environ;
    char **big = grown_env();
    const char *late = "GITHUB_SHA";
    const char *absent = "HTTPS_PROXY";

    if (argc < 2 || libc_getenv == NULL || big == NULL)
        return 2;
    environ = big;
    if (getenv(late) == NULL || libc_getenv(late) != getenv(late) || getenv(absent) != NULL) {
        fprintf(stderr, "getenv_bench: %s must be set and %s not\n", late, absent);
        return 2;
    }
    for (int r = 0; r < ROUNDS; r++) {
        environ = small;
        t[0][r] = run(libc_getenv, "HOME", n);
        t[1][r] = run(getenv, "HOME", n);
        t[2][r] = run(getenv, argv[1], n);
        environ = big;
        t[3][r] = run(libc_getenv, late, n / 4);
        t[4][r] = run(getenv, late, n / 4);
        t[5][r] = run(libc_getenv, absent, n / 4);
        t[6][r] = run(getenv, absent, n / 4);
    }
    environ = small;
    for (int k = 0; k < KINDS; k++) {
        qsort(t[k], ROUNDS, sizeof(double), cmp);
        printf("%s %.2f\n", kind[k], t[k][ROUNDS / 2]);
    }
    free(big);
    return 0;
}
