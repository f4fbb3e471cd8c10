/*
 * lookup_test - the preload's getenv() against libc's, name by name.
 *   lookup_test PRELOAD.so
 * makes a snapshot (a sealed memfd, as hive-run does) managing three
 * names, and runs itself again under the preload, which then checks:
 * the managed names answer from the snapshot; every other name gets the
 * very pointer libc's getenv gives, in environments built to tell a
 * shortcut from a lookup (names sharing their first one, two, eight or
 * nine bytes, one-byte names, a name with '=', prefixes and extensions of
 * names, names that share a managed name's first bytes or its length);
 * and no lookup reads past an entry into a page it may not read (entries
 * that end on the last byte of a page followed by an unreadable one,
 * looked up with longer names that share their text). Exit 0 when all
 * hold; each failure is printed.
 */
#include "../../preload/snapshot.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

typedef char *(*getenv_fn)(const char *);

static int failures;

/* name, launch value, fresh value */
static const char *const managed[][3] = {
    {"HIVE_T_MANAGED_TOKEN", "launch-1", "fresh-1"},
    {"Q", "launch-q", "fresh-q"},
    {"LC_TIMEZ", "launch-lc", "fresh-lc"},
};
#define NMANAGED (sizeof(managed) / sizeof(managed[0]))

static int make_snapshot(void)
{
    size_t size = HIVE_SNAP_DATA + 4096;
    int fd = memfd_create("lookup-test", MFD_ALLOW_SEALING);
    struct hive_snap *h;
    char *p;
    uint64_t at = HIVE_SNAP_DATA;

    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        return -1;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -1;
    h = (struct hive_snap *)(void *)p;
    h->magic = HIVE_SNAP_MAGIC;
    h->version = HIVE_SNAP_VERSION;
    h->size = size;
    h->nvars = NMANAGED;
    for (size_t i = 0; i < NMANAGED; i++) {
        strcpy(h->vars[i].name, managed[i][0]);
        strcpy(p + at, managed[i][1]);
        h->vars[i].launch = at;
        at += 64;
        strcpy(p + at, managed[i][2]);
        atomic_store(&h->vars[i].offset, at);
        at += 64;
    }
    munmap(p, size);
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
        return -1;
    return fd;
}

static void expect(const char *what, const char *name, const char *got, const char *want)
{
    if (got != want && (got == NULL || want == NULL || strcmp(got, want) != 0)) {
        printf("FAIL %s: getenv(\"%s\") = %s%s%s, want %s%s%s\n", what, name, got ? "\"" : "", got ? got : "NULL",
               got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
        failures++;
    }
}

/* Every name of names: the preload's answer is libc's, the same pointer. */
static void same_as_libc(const char *what, getenv_fn libc_getenv, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        char *want = libc_getenv(names[i]);
        char *got = getenv(names[i]);
        if (got != want) {
            printf("FAIL %s: getenv(\"%s\") = %p (%s), libc's %p (%s)\n", what, names[i], (void *)got,
                   got ? got : "NULL", (void *)want, want ? want : "NULL");
            failures++;
        }
    }
}

static void check_environments(getenv_fn libc_getenv)
{
    static const char *const text[] = {
        "HIVE_T_MANAGED_TOKEN=launch-1", "Q=launch-q", "LC_TIMEZ=launch-lc",
        "A=one", "AB=two", "ABC=three", "ABCDEFGH=eight", "ABCDEFGHI=nine", "ABCDEFGHIJKLMNOPQ=seventeen",
        "ABCDEFGHIJKLMNOPR=seventeen-r", "ABCDEFGHIJKLMNOPQRSTUVWXYZ=26", "LC_TIME=t", "LC_TIMEY=y",
        "HIVE_T_MANAGED_TOKEX=near", "HIVE_T_MANAGED_TOKEN_2=longer", "QQ=qq", "Q2=q2",
        "X==equals", "Y=a=b", "EMPTY=", "DUP=first", "DUP=second", NULL};
    static const char *const names[] = {
        "A", "AB", "ABC", "ABCD", "ABCDEFG", "ABCDEFGH", "ABCDEFGHI", "ABCDEFGHIJ", "ABCDEFGHIJKLMNOP",
        "ABCDEFGHIJKLMNOPQ", "ABCDEFGHIJKLMNOPR", "ABCDEFGHIJKLMNOPS", "ABCDEFGHIJKLMNOPQR",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ABCDEFGHIJKLMNOPQRSTUVWXY", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0", "B", "LC_TIME",
        "LC_TIMEY", "LC_TIM", "LC_TIMEZZ", "HIVE_T_MANAGED_TOKEX", "HIVE_T_MANAGED_TOKEN_2",
        "HIVE_T_MANAGED_TOKE", "QQ", "Q2", "X", "Y", "Y=a", "EMPTY", "DUP", "NOT_SET_ANYWHERE", NULL};
    char *env[sizeof(text) / sizeof(text[0])];
    char *own = strdup("HIVE_T_MANAGED_TOKEN=set-by-the-program");
    char *launch;
    char **saved = environ;

    for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        env[i] = text[i] != NULL ? strdup(text[i]) : NULL;
    launch = env[0];
    environ = env;
    same_as_libc("environment", libc_getenv, names);
    expect("managed", "HIVE_T_MANAGED_TOKEN", getenv("HIVE_T_MANAGED_TOKEN"), "fresh-1");
    expect("managed", "Q", getenv("Q"), "fresh-q");
    expect("managed", "LC_TIMEZ", getenv("LC_TIMEZ"), "fresh-lc");
    expect("empty name", "", getenv(""), NULL);
    /* the program's own change wins over the snapshot */
    env[0] = own;
    expect("own value", "HIVE_T_MANAGED_TOKEN", getenv("HIVE_T_MANAGED_TOKEN"), "set-by-the-program");
    env[0] = launch;
    environ = saved;
    for (size_t i = 0; env[i] != NULL; i++)
        free(env[i]);
    free(own);
}

/* Entries ending on the last byte of a page followed by one that cannot
 * be read, looked up with names that run on past them. */
static void check_page_ends(getenv_fn libc_getenv)
{
    long page = sysconf(_SC_PAGESIZE);
    char *area = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const char text[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char *env[2] = {NULL, NULL};
    char **saved = environ;

    if (area == MAP_FAILED || mprotect(area + page, (size_t)page, PROT_NONE) != 0) {
        printf("FAIL page ends: cannot map\n");
        failures++;
        return;
    }
    environ = env;
    for (size_t n = 1; n <= 30; n++) {
        /* "<n bytes of text>=v\0", its NUL the page's last byte */
        char *e = area + page - (long)(n + 3);
        memcpy(e, text, n);
        memcpy(e + n, "=v", 3);
        env[0] = e;
        for (size_t k = 1; k <= 40; k++) {
            char name[64];
            const char *const names[] = {name, NULL};
            memcpy(name, text, k);
            name[k] = '\0';
            same_as_libc("page end", libc_getenv, names);
        }
    }
    environ = saved;
    munmap(area, (size_t)page * 2);
}

int main(int argc, char **argv)
{
    void *libc;
    getenv_fn libc_getenv = NULL;
    char fdtext[16];
    int fd;

    if (argc == 2) {
        /* the parent: the snapshot, the environment, then ourselves under the preload */
        fd = make_snapshot();
        if (fd < 0) {
            perror("lookup_test: snapshot");
            return 2;
        }
        snprintf(fdtext, sizeof(fdtext), "%d", fd);
        setenv(HIVE_SNAP_ENV, fdtext, 1);
        for (size_t i = 0; i < NMANAGED; i++)
            setenv(managed[i][0], managed[i][1], 1);
        setenv("LD_PRELOAD", argv[1], 1);
        execl("/proc/self/exe", argv[0], "under-the-preload", "x", (char *)NULL);
        perror("lookup_test: exec");
        return 2;
    }
    libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc != NULL) {
        /* POSIX's way to a function from dlsym (ISO C has no cast for it) */
        void *sym = dlsym(libc, "getenv");
        memcpy(&libc_getenv, &sym, sizeof(sym));
    }
    if (argc != 3 || libc_getenv == NULL || libc_getenv == getenv) {
        fprintf(stderr, "lookup_test: not under the preload (usage: lookup_test PRELOAD.so)\n");
        return 2;
    }
    if (getenv("HIVE_T_MANAGED_TOKEN") == NULL || strcmp(getenv("HIVE_T_MANAGED_TOKEN"), "fresh-1") != 0) {
        fprintf(stderr, "lookup_test: the preload did not take the snapshot\n");
        return 2;
    }
    check_environments(libc_getenv);
    check_page_ends(libc_getenv);
    if (failures == 0)
        printf("lookup_test: all lookups as libc's\n");
    return failures == 0 ? 0 : 1;
}
