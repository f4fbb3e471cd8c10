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
static char names[HIVE_SNAP_MAX_VARS][HIVE_SNAP_NAME_MAX];
static uint32_t name_len[HIVE_SNAP_MAX_VARS];
/*
 * The managed names' keys (first two bytes and length): a bit each in a
 * 256-bit filter, so that a name nobody manages (nearly every name a
 * program asks for) costs one bit test more than libc's getenv.
 */
static uint64_t filter[4];

/* The first two bytes of a name of len bytes as the first two of its
 * "NAME=" entry: a one-byte name is followed by '='. */
static inline uint16_t head_of(const char *name, size_t len)
{
    unsigned char b = len > 1 ? (unsigned char)name[1] : (unsigned char)'=';

    return (uint16_t)((unsigned)(unsigned char)name[0] | (unsigned)b << 8);
}

static inline unsigned filter_bit(uint16_t head, size_t len)
{
    return (unsigned)(((uint32_t)head * 0x9E3779B1u + (uint32_t)len * 0x85EBCA77u) >> 24);
}

static inline uint16_t load2(const char *p)
{
    uint16_t v;

    __builtin_memcpy(&v, p, 2);
    return v;
}

static inline uint64_t load8(const char *p)
{
    uint64_t v;

    __builtin_memcpy(&v, p, 8);
    return v;
}

/*
 * getenv over environ, as libc does it, with no call out of this file (a
 * call through the PLT costs as much as the lookup): the first two bytes
 * of each entry compared at once (an entry is at least "X=", or empty:
 * its NUL, then whatever its second byte is, as libc reads it), then the
 * rest 8 bytes at a time, as far as they lie in one page, and byte by
 * byte. The 8-byte reads may go past an entry's NUL within its page, as
 * libc's own string functions do (a memory checker that knows only
 * libc's may say so). name has len > 0 bytes.
 */
static inline __attribute__((always_inline)) char *env_lookup(const char *name, size_t len, uint16_t head)
{
    char **ep = environ;

    if (__builtin_expect(ep == NULL, 0))
        return NULL;
    if (len == 1) {
        for (; *ep != NULL; ep++)
            if (load2(*ep) == head)
                return *ep + 2;
        return NULL;
    }
    for (;;) {
        char *e;
        size_t i;
        /* the hot loop: entries whose first two bytes differ */
        do {
            e = *ep++;
            if (__builtin_expect(e == NULL, 0))
                return NULL;
        } while (__builtin_expect(load2(e) != head, 1));
        /* nothing of what follows is to be set up in the loop above (the
         * compiler would, at a cost on every entry) */
        __asm__("" : "+r"(e));
        /* 8 bytes at a time while e's next 8 lie in the page its byte i
         * does (readable, wherever e's NUL is: no fault, and a NUL
         * differs from name, which has none before len) */
        for (i = 2; i + 8 <= len; i += 8) {
            if (((uintptr_t)(e + i) & 4095) > 4096 - 8)
                break;
            if (load8(e + i) != load8(name + i))
                goto next;
        }
        for (; i < len && e[i] == name[i]; i++)
            ;
        if (i == len && e[len] == '=')
            return e + len + 1;
next:;
    }
}

/* name's length, or 0 when empty; NULL has none */
static inline size_t name_length(const char *name)
{
    size_t len = 0;

    while (name[len] != '\0')
        len++;
    return len;
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
    fd = parse_fd(env_lookup(HIVE_SNAP_ENV, sizeof(HIVE_SNAP_ENV) - 1,
                             head_of(HIVE_SNAP_ENV, sizeof(HIVE_SNAP_ENV) - 1)));
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
        uint32_t len = 0;
        unsigned bit;
        while (len < HIVE_SNAP_NAME_MAX - 1 && s->vars[i].name[len] != '\0') {
            names[i][len] = s->vars[i].name[len];
            len++;
        }
        names[i][len] = '\0';
        name_len[i] = len;
        if (len == 0)
            continue;   /* matches nothing: getenv("") is NULL */
        bit = filter_bit(head_of(names[i], len), len);
        filter[bit >> 6] |= UINT64_C(1) << (bit & 63);
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

/* The value the snapshot holds for managed variable i, when the process's
 * own environment still holds its launch value (own); else own: setenv,
 * unsetenv, VAR=x cmd, env -u: the process's own choice wins. */
static inline char *managed_value(uint32_t i, char *own)
{
    uint64_t off = atomic_load_explicit(&snap->vars[i].offset, memory_order_acquire);
    uint64_t launch = snap->vars[i].launch;

    if (own == NULL || launch < HIVE_SNAP_DATA || launch >= snap_size || !same(own, snap_base + launch))
        return own;
    if (off >= HIVE_SNAP_DATA && off < snap_size)
        return snap_base + off;
    return own;
}

static inline __attribute__((always_inline)) char *lookup(const char *name)
{
    int st = atomic_load_explicit(&state, memory_order_acquire);
    size_t len;
    uint16_t head;

    if (__builtin_expect(st == UNINIT, 0)) {
        init();
        st = atomic_load_explicit(&state, memory_order_acquire);
    }
    if (__builtin_expect(name == NULL || name[0] == '\0', 0))
        return NULL;
    len = name_length(name);
    head = head_of(name, len);
    if (st == READY) {
        unsigned bit = filter_bit(head, len);
        if (__builtin_expect((filter[bit >> 6] >> (bit & 63)) & 1, 0)) {
            for (uint32_t i = 0; i < snap_nvars; i++) {
                size_t k;
                if (name_len[i] != len)
                    continue;
                for (k = 0; k < len && names[i][k] == name[k]; k++)
                    ;
                if (k == len)
                    return managed_value(i, env_lookup(name, len, head));
            }
        }
    }
    /* unmanaged, or no snapshot (yet): the process's own environment */
    return env_lookup(name, len, head);
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
