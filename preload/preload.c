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
#include <fcntl.h>
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
/* char *, as getenv() answers: the caller must not write through it (the
 * mapping is read-only), which is getenv's contract anyway */
static char *snap_base;
/* our own copies: the mapping may change under us, these do not */
static uint64_t snap_size;
static uint32_t snap_nvars;
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
        char *e = *ep;
        size_t i;
        if (e[0] != name[0])
            continue;
        for (i = 1; i < len && e[i] == name[i]; i++)
            ;
        if (i == len && e[len] == '=')
            return e + len + 1;
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

/* Map the file at fd read-only, followed by a page of zeros: a string
 * that starts in the file ends inside the mapping, whatever the file holds. */
static void *map_guarded(int fd, uint64_t size, size_t *mapped)
{
    uint64_t page = getauxval(AT_PAGESZ);
    uint64_t len;
    char *area;

    if (page == 0 || (page & (page - 1)) != 0)
        page = 4096;
    len = (size + page - 1) & ~(page - 1);
    area = mmap(NULL, (size_t)(len + page), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return NULL;
    if (mmap(area, (size_t)size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        munmap(area, (size_t)(len + page));
        return NULL;
    }
    *mapped = (size_t)(len + page);
    return area;
}

/* Map the snapshot. Only system calls: safe in a constructor, a signal
 * handler or a child after fork. Whatever the descriptor is, the worst it
 * can do is be ignored. */
static void init(void)
{
    int expected = UNINIT;
    struct stat st;
    const struct hive_snap *s;
    uint64_t size;
    uint32_t nvars;
    size_t mapped = 0;
    int seals;
    char *p;
    int fd;

    if (!atomic_compare_exchange_strong(&state, &expected, BUSY))
        return;
    fd = parse_fd(env_lookup(HIVE_SNAP_ENV));
    /* sealed against shrinking, or a truncation would SIGBUS every reader;
     * the seal first, then the size, which from then on cannot shrink */
    if (fd < 0 || (seals = fcntl(fd, F_GET_SEALS)) < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) != 0 ||
        !S_ISREG(st.st_mode) || (uint64_t)st.st_size < HIVE_SNAP_DATA || (uint64_t)st.st_size > (UINT64_C(1) << 40)) {
        atomic_store(&state, ABSENT);
        return;
    }
    size = (uint64_t)st.st_size;
    p = map_guarded(fd, size, &mapped);
    if (p == NULL) {
        atomic_store(&state, ABSENT);
        return;
    }
    s = (const struct hive_snap *)p;
    nvars = s->nvars;
    if (s->magic != HIVE_SNAP_MAGIC || s->version != HIVE_SNAP_VERSION || nvars > HIVE_SNAP_MAX_VARS ||
        s->size != size) {
        munmap(p, mapped);
        atomic_store(&state, ABSENT);
        return;
    }
    for (uint32_t i = 0; i < nvars; i++) {
        unsigned char c = (unsigned char)s->vars[i].name[0];
        first_chars[c >> 6] |= UINT64_C(1) << (c & 63);
    }
    snap = s;
    snap_base = p;
    snap_size = size;
    snap_nvars = nvars;
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
            for (uint32_t i = 0; i < snap_nvars; i++) {
                if (strncmp(snap->vars[i].name, name, HIVE_SNAP_NAME_MAX) == 0) {
                    uint64_t off = atomic_load_explicit(&snap->vars[i].offset, memory_order_acquire);
                    uint64_t launch = snap->vars[i].launch;
                    char *own = env_lookup(name);
                    /* setenv, unsetenv, VAR=x cmd, env -u: the process's own
                     * choice wins over the snapshot */
                    if (own == NULL || launch < HIVE_SNAP_DATA || launch >= snap_size ||
                        !same(own, snap_base + launch))
                        return own;
                    if (off >= HIVE_SNAP_DATA && off < snap_size)
                        return snap_base + off;
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
