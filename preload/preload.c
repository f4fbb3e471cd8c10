/*
 * libhive-preload.so - getenv() and secure_getenv() that answer the names
 * hive-run manages from a shared snapshot kept fresh by its refresher.
 *
 * It links nothing but libc and calls nothing on the read path: no malloc,
 * no stdio, no locks, no dlsym. getenv is implemented here over environ
 * (as libc does), so no "real" getenv has to be looked up, and a getenv
 * called by another library's constructor before ours has run works: the
 * snapshot is mapped on first use, whoever calls first.
 */
#include "snapshot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

enum { UNINIT = 0, BUSY = 1, READY = 2, ABSENT = 3 };

static _Atomic int state = UNINIT;
static const struct hive_snap *snap;
static const char *snap_base;
/* first bytes of the managed names: a quick no for everything else */
static uint64_t first_chars[4];

/* getenv over environ, as libc does it, with no call out of this file:
 * a call through the PLT (strlen, strncmp) costs as much as the lookup. */
static inline __attribute__((always_inline)) char *env_lookup(const char *name)
{
    char **ep = environ;
    size_t len = 0;

    if (__builtin_expect(ep == NULL || name == NULL || name[0] == '\0', 0))
        return NULL;
    while (name[len] != '\0')
        len++;
    for (; *ep != NULL; ep++) {
        const char *e = *ep;
        size_t i;
        if (e[0] != name[0])
            continue;
        for (i = 1; i < len && e[i] == name[i]; i++)
            ;
        if (i == len && e[len] == '=')
            return (char *)e + len + 1;
    }
    return NULL;
}

static inline bool same(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int parse_fd(const char *s)
{
    int fd = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || fd > 100000)
            return -1;
        fd = fd * 10 + (*s - '0');
    }
    return fd;
}

/* Map the snapshot. Only system calls: safe in a constructor, a signal
 * handler or a child after fork. */
static void init(void)
{
    int expected = UNINIT;
    struct stat st;
    const struct hive_snap *s;
    void *p;
    int fd;

    if (!atomic_compare_exchange_strong(&state, &expected, BUSY))
        return;
    fd = parse_fd(env_lookup(HIVE_SNAP_ENV));
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < HIVE_SNAP_DATA) {
        atomic_store(&state, ABSENT);
        return;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        atomic_store(&state, ABSENT);
        return;
    }
    s = p;
    if (s->magic != HIVE_SNAP_MAGIC || s->version != HIVE_SNAP_VERSION || s->nvars > HIVE_SNAP_MAX_VARS ||
        s->size != (uint64_t)st.st_size) {
        munmap(p, (size_t)st.st_size);
        atomic_store(&state, ABSENT);
        return;
    }
    for (uint32_t i = 0; i < s->nvars; i++) {
        unsigned char c = (unsigned char)s->vars[i].name[0];
        first_chars[c >> 6] |= UINT64_C(1) << (c & 63);
    }
    snap = s;
    snap_base = p;
    atomic_store_explicit(&state, READY, memory_order_release);
}

__attribute__((constructor)) static void preload_init(void)
{
    init();
}

static inline __attribute__((always_inline)) char *lookup(const char *name)
{
    int st = atomic_load_explicit(&state, memory_order_acquire);

    if (__builtin_expect(st == UNINIT, 0)) {
        init();
        st = atomic_load_explicit(&state, memory_order_acquire);
    }
    if (st == READY && name != NULL) {
        unsigned char c = (unsigned char)name[0];
        if (first_chars[c >> 6] & (UINT64_C(1) << (c & 63))) {
            for (uint32_t i = 0; i < snap->nvars; i++) {
                if (strncmp(snap->vars[i].name, name, HIVE_SNAP_NAME_MAX) == 0) {
                    uint64_t off = atomic_load_explicit(&snap->vars[i].offset, memory_order_acquire);
                    uint64_t launch = snap->vars[i].launch;
                    char *own = env_lookup(name);
                    /* setenv, unsetenv, VAR=x cmd, env -u: the process's own
                     * choice wins over the snapshot */
                    if (own == NULL || launch < HIVE_SNAP_DATA || launch >= snap->size ||
                        !same(own, snap_base + launch))
                        return own;
                    if (off >= HIVE_SNAP_DATA && off < snap->size)
                        return (char *)(snap_base + off);
                    return own;
                }
            }
        }
    }
    /* unmanaged, or no snapshot (yet): the process's own environment */
    return env_lookup(name);
}

EXPORT char *getenv(const char *name)
{
    return lookup(name);
}

EXPORT char *secure_getenv(const char *name)
{
    /* secure-execution mode (setuid and the like): no environment at all */
    if (getauxval(AT_SECURE) != 0)
        return NULL;
    return lookup(name);
}
