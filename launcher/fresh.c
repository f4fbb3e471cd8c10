/*
 * fresh.c - hive-run --fresh: a snapshot the preload reads, a refresher
 * process that keeps it fresh, and the check that the target can be
 * reached by the preload at all.
 */
#include "fresh.h"
#include "secretfile.h"
#include "snapshot.h"

#include <elf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* --- can the preload reach the target? ----------------------------------- */

static bool has_section(int fd, const Elf64_Ehdr *eh, const char *const *names)
{
    Elf64_Shdr strtab;
    char *strs = NULL;
    bool found = false;

    if (eh->e_shoff == 0 || eh->e_shstrndx == SHN_UNDEF || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shnum > 4096)
        return false;
    if (pread(fd, &strtab, sizeof(strtab), (off_t)(eh->e_shoff + (uint64_t)eh->e_shstrndx * sizeof(strtab))) !=
            (ssize_t)sizeof(strtab) || strtab.sh_size > (1u << 20))
        return false;
    strs = malloc(strtab.sh_size + 1);
    if (strs == NULL || pread(fd, strs, strtab.sh_size, (off_t)strtab.sh_offset) != (ssize_t)strtab.sh_size) {
        free(strs);
        return false;
    }
    strs[strtab.sh_size] = '\0';
    for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
        Elf64_Shdr sh;
        if (pread(fd, &sh, sizeof(sh), (off_t)(eh->e_shoff + (uint64_t)i * sizeof(sh))) != (ssize_t)sizeof(sh))
            break;
        if (sh.sh_name >= strtab.sh_size)
            continue;
        for (size_t k = 0; names[k] != NULL && !found; k++)
            found = strcmp(strs + sh.sh_name, names[k]) == 0;
    }
    free(strs);
    return found;
}

bool fresh_which(char *out, size_t size, const char *name, const char *search)
{
    const char *cursor = search;

    if (strchr(name, '/') != NULL) {
        int w = snprintf(out, size, "%s", name);
        return w > 0 && (size_t)w < size && access(out, F_OK) == 0;
    }
    while (cli_path_next(&cursor, name, out, size))
        if (access(out, X_OK) == 0)
            return true;
    return false;
}

#define ENV_WORDS 64

/* Split text at blanks into words (in buf), after those already in
 * words[*n]; env -S's quoting and escapes are not followed. */
static void split_words(char *buf, const char **words, size_t *n)
{
    char *save = NULL;

    for (char *w = strtok_r(buf, " \t\n", &save); w != NULL && *n < ENV_WORDS; w = strtok_r(NULL, " \t\n", &save))
        words[(*n)++] = w;
}

static bool word_is(const char *w, const char *a, const char *b)
{
    return strcmp(w, a) == 0 || (b != NULL && strcmp(w, b) == 0);
}

/*
 * The command env(1) runs given args (what follows "env": its options,
 * NAME=value words, then the command), with split holding the words of
 * an -S string. Sets *cmd (a pointer into args or split) and *search (the
 * PATH env searches). False when it runs none, or it cannot tell.
 */
static bool env_command(const char *const *args, size_t nargs, char *split, size_t split_size, const char **cmd,
                        const char **search)
{
    const char *words[ENV_WORDS];
    size_t n = 0;
    size_t i = 0;

    for (size_t k = 0; k < nargs && n < ENV_WORDS; k++)
        words[n++] = args[k];
    while (i < n) {
        const char *w = words[i];
        if (strcmp(w, "--") == 0) {
            i++;
            break;
        }
        if (w[0] != '-' || strcmp(w, "-") == 0) {
            if (strcmp(w, "-") == 0) {
                *search = NULL;
                i++;
                continue;
            }
            break;
        }
        if (strncmp(w, "-S", 2) == 0 || strncmp(w, "--split-string", 14) == 0) {
            /* the rest of the word (or the next word) is split into words
             * that take its place */
            bool joined = w[1] == 'S' ? w[2] != '\0' : w[14] == '=';
            const char *text = joined ? w + (w[1] == 'S' ? 2 : 15) : "";
            const char *rest[ENV_WORDS];
            size_t nrest = 0;
            size_t used;
            if (!joined && i + 1 < n)
                text = words[++i];
            used = strlen(split);
            if (used + strlen(text) + 2 > split_size)
                return false;
            if (used > 0)
                used++;
            memcpy(split + used, text, strlen(text) + 1);
            for (size_t k = i + 1; k < n; k++)
                rest[nrest++] = words[k];
            n = i;
            split_words(split + used, words, &n);
            for (size_t k = 0; k < nrest && n < ENV_WORDS; k++)
                words[n++] = rest[k];
            continue;
        }
        if (word_is(w, "-i", "--ignore-environment")) {
            *search = NULL;
            i++;
        } else if (word_is(w, "-u", "--unset") || word_is(w, "-C", "--chdir")) {
            if (i + 1 < n && w[1] == 'u' && strcmp(words[i + 1], "PATH") == 0)
                *search = NULL;
            i += 2;
        } else if (strncmp(w, "-u", 2) == 0 || strncmp(w, "--unset=", 8) == 0) {
            if (strcmp(w + (w[1] == 'u' ? 2 : 8), "PATH") == 0)
                *search = NULL;
            i++;
        } else if (strncmp(w, "-C", 2) == 0 || strncmp(w, "--chdir=", 8) == 0 || word_is(w, "-0", "--null") ||
                   word_is(w, "-v", "--debug") || strncmp(w, "--ignore-signal", 15) == 0 ||
                   strncmp(w, "--default-signal", 16) == 0 || strncmp(w, "--block-signal", 14) == 0) {
            i++;
        } else {
            return false;   /* an option we do not know */
        }
    }
    for (; i < n && strchr(words[i], '=') != NULL; i++)
        if (strncmp(words[i], "PATH=", 5) == 0)
            *search = words[i] + 5;
    if (i >= n)
        return false;
    *cmd = words[i];
    return true;
}

static const char *unreachable_at(const char *path, const char *const *args, size_t nargs, const char *search,
                                  int depth);

/* path is env(1) (its base name is "env"), run with args: judge what it runs. */
static const char *through_env(const char *const *args, size_t nargs, const char *search, int depth)
{
    char split[4096] = "";
    char prog[PATH_MAX];
    const char *cmd = NULL;

    if (!env_command(args, nargs, split, sizeof(split), &cmd, &search) ||
        !fresh_which(prog, sizeof(prog), cmd, search ? search : "/bin:/usr/bin"))
        return NULL;   /* env will say what is wrong */
    return unreachable_at(prog, NULL, 0, search, depth + 1);
}

static bool is_env(const char *path)
{
    const char *base = strrchr(path, '/');

    return strcmp(base ? base + 1 : path, "env") == 0;
}

/*
 * Runtimes that copy their environment at start and never call getenv()
 * for it again: the preload reaches them, but they never ask it. Checked
 * by tests/fresh (test_runtimes): Python's os.environ and os.getenv, Perl's
 * %ENV, Java's System.getenv(), sh and bash. Node's process.env (and a C
 * getenv() through Python's ctypes) ask every time. Matched on the base
 * name, and a version after it: python3.11, perl5.36.0, ksh93.
 */
#define SHELL_COPIES "a shell copies its environment at start (into its variables)"
static const struct { const char *name; const char *what; } copiers[] = {
    {"python", "Python copies its environment at start (os.environ)"},
    {"pypy", "Python copies its environment at start (os.environ)"},
    {"perl", "Perl copies its environment at start (%ENV)"},
    {"java", "Java copies its environment at start (System.getenv() answers from the copy)"},
    {"sh", SHELL_COPIES},
    {"bash", SHELL_COPIES},
    {"dash", SHELL_COPIES},
    {"ash", SHELL_COPIES},
    {"zsh", SHELL_COPIES},
    {"ksh", SHELL_COPIES},
    {"mksh", SHELL_COPIES},
    {"yash", SHELL_COPIES},
    {"fish", SHELL_COPIES},
    {"csh", SHELL_COPIES},
    {"tcsh", SHELL_COPIES},
};

/* Set by the last fresh_unreachable: the program copies its environment
 * (rather than being out of the preload's reach). */
static bool last_copies;

static const char *copier_of(const char *path)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof(copiers) / sizeof(copiers[0]); i++) {
        size_t n = strlen(copiers[i].name);
        if (strncmp(base, copiers[i].name, n) == 0 &&
            (base[n] == '\0' || base[n] == '.' || (base[n] >= '0' && base[n] <= '9')))
            return copiers[i].what;
    }
    return NULL;
}

/* Why the program at path copies its environment at start, judged by its
 * name and by the name of the file it links to; NULL when it does not. */
static const char *copies_environment(const char *path, char *why, size_t size)
{
    char real[PATH_MAX];
    const char *what = copier_of(path);

    if (what == NULL && realpath(path, real) != NULL)
        what = copier_of(real);
    if (what == NULL)
        return NULL;
    snprintf(why, size, "%s: %s, and never reads it again", path, what);
    last_copies = true;
    return why;
}

static const char *unreachable_at(const char *path, const char *const *args, size_t nargs, const char *search,
                                  int depth)
{
    static const char *const go_sections[] = {".go.buildinfo", ".note.go.buildid", ".gopclntab", NULL};
    /* stat() succeeded, so path is shorter than PATH_MAX: it fits */
    static char why[PATH_MAX + 128];
    struct stat st;
    unsigned char head[256];
    Elf64_Ehdr eh;
    bool interp = false;
    ssize_t n;
    int fd;

    if (depth > 4 || stat(path, &st) != 0)
        return NULL;   /* exec will say what is wrong */
    if (st.st_mode & (S_ISUID | S_ISGID)) {
        snprintf(why, sizeof(why), "%s is set-user-ID or set-group-ID: the dynamic loader ignores "
                 "LD_PRELOAD for it", path);
        return why;
    }
    if (getxattr(path, "security.capability", NULL, 0) > 0) {
        snprintf(why, sizeof(why), "%s has file capabilities: the dynamic loader ignores LD_PRELOAD for it",
                 path);
        return why;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    n = pread(fd, head, sizeof(head) - 1, 0);
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        /* a script: what matters is its interpreter, and what env runs
         * when that is env (the kernel passes the rest of the line as
         * one argument) */
        char *p = (char *)head + 2;
        char *arg;
        char *end;
        const char *r = NULL;
        head[n] = '\0';
        close(fd);
        p[strcspn(p, "\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        arg = p + strcspn(p, " \t");
        if (*arg != '\0')
            *arg++ = '\0';
        while (*arg == ' ' || *arg == '\t')
            arg++;
        end = arg + strlen(arg);
        while (end > arg && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        if (*p != '\0') {
            r = unreachable_at(p, NULL, 0, search, depth + 1);
            if (r == NULL && is_env(p) && *arg != '\0') {
                const char *one[1] = {arg};
                r = through_env(one, 1, search, depth);
            }
        }
        return r;
    }
    if (n < (ssize_t)sizeof(eh) || memcmp(head, ELFMAG, SELFMAG) != 0 || head[EI_CLASS] != ELFCLASS64) {
        close(fd);
        return NULL;   /* not something we know how to inspect */
    }
    memcpy(&eh, head, sizeof(eh));
    for (unsigned i = 0; i < eh.e_phnum && eh.e_phentsize == sizeof(Elf64_Phdr) && i < 256; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) != (ssize_t)sizeof(ph))
            break;
        if (ph.p_type == PT_INTERP)
            interp = true;
    }
    if (!interp) {
        close(fd);
        snprintf(why, sizeof(why), "%s is statically linked: there is no dynamic loader to preload into it", path);
        return why;
    }
    if (has_section(fd, &eh, go_sections)) {
        close(fd);
        snprintf(why, sizeof(why), "%s is a Go program: Go reads its environment once at start and never "
                 "calls getenv()", path);
        return why;
    }
    close(fd);
    /* env itself is fine; what it runs may not be */
    if (args != NULL && is_env(path))
        return through_env(args, nargs, search, depth);
    return copies_environment(path, why, sizeof(why));
}

const char *fresh_unreachable(const char *path, char *const *argv, const char *search, bool *copies)
{
    size_t n = 0;
    const char *why;

    while (argv[n] != NULL)
        n++;
    last_copies = false;
    why = unreachable_at(path, (const char *const *)argv + (n > 0), n > 0 ? n - 1 : 0, search, 0);
    *copies = why != NULL && last_copies;
    return why;
}

/* --- the snapshot ---------------------------------------------------------- */

/* The refresher's own view of the snapshot: its mapping (the only writable
 * one there is) and its bookkeeping, none of which it ever reads back from
 * the snapshot. */
static char *snap_w;              /* the writable mapping */
static uint64_t snap_size;
static size_t snap_nvars;
static uint64_t ring_start;       /* refreshed values go in [ring_start, snap_size) */
static uint64_t ring_next;        /* where the next one goes */
static int64_t turn_started_ms;   /* when the ring last turned over (or started) */
static int64_t turn_warned_ms;    /* when that was last said to be too fast */
static uint64_t turns;
static uint64_t generation;       /* values published */
static uint64_t live_off[HIVE_SNAP_MAX_VARS];   /* each variable's current value */
static uint64_t live_len[HIVE_SNAP_MAX_VARS];   /* its bytes with the NUL, rounded up to 8 */
static uint64_t value_off[HIVE_SNAP_MAX_VARS];  /* where that value itself starts */

static struct hive_snap *snap_head(void)
{
    return (struct hive_snap *)(void *)snap_w;
}

static uint64_t round8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static int64_t now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Room for need bytes in the ring that holds no variable's current value,
 * at ring_next or after, turning over at most once; 0 when there is none. */
static uint64_t ring_alloc(uint64_t need)
{
    int wraps = 0;

    for (int tries = 0; tries < 2 * HIVE_SNAP_MAX_VARS + 4; tries++) {
        bool moved = false;
        if (ring_next + need > snap_size) {
            if (++wraps > 1)
                return 0;
            ring_next = ring_start;
            turns++;
            snap_head()->turns = turns;
            /* said at most every HIVE_SNAP_TURN_WARN seconds */
            if (now_ms() - turn_started_ms < HIVE_SNAP_TURN_WARN * 1000 &&
                (turn_warned_ms == 0 || now_ms() - turn_warned_ms >= HIVE_SNAP_TURN_WARN * 1000)) {
                turn_warned_ms = now_ms();
                cli_warn("refresher: the snapshot turned over in %lld s: values are refreshed faster than "
                         "it keeps them; a string getenv() returned more than that long ago may change "
                         "under the program (%zu variables in %llu bytes)",
                         (long long)((now_ms() - turn_started_ms) / 1000), snap_nvars,
                         (unsigned long long)snap_size);
            }
            turn_started_ms = now_ms();
            if (ring_next + need > snap_size)
                return 0;
        }
        for (size_t i = 0; i < snap_nvars && !moved; i++) {
            if (live_off[i] < ring_next + need && ring_next < live_off[i] + live_len[i]) {
                ring_next = live_off[i] + live_len[i];
                moved = true;
            }
        }
        if (!moved)
            return ring_next;
    }
    return 0;
}

/* Make value variable i's current one. -1 when it cannot be placed without
 * overwriting a current value (the program keeps the last one). */
static int publish(size_t i, const char *value, size_t len)
{
    uint64_t need = HIVE_SNAP_LINK + round8((uint64_t)len + 1);
    uint64_t at = ring_alloc(need);
    struct hive_snap *h = snap_head();

    if (at == 0)
        return -1;
    /* the link to the value this one replaces (snapshot.h), then the value */
    memcpy(snap_w + at, &value_off[i], HIVE_SNAP_LINK);
    memcpy(snap_w + at + HIVE_SNAP_LINK, value, len);
    snap_w[at + HIVE_SNAP_LINK + len] = '\0';
    ring_next = at + need;
    live_off[i] = at;
    live_len[i] = need;
    value_off[i] = at + HIVE_SNAP_LINK;
    atomic_store_explicit(&h->vars[i].offset, value_off[i], memory_order_release);
    atomic_store_explicit(&h->generation, ++generation, memory_order_release);
    return 0;
}

/* The snapshot's size: HIVE_SNAP_SIZE, or HIVE_TEST_SNAPSHOT_SIZE (tests
 * only: a small one fills in seconds). */
static uint64_t snapshot_size(bool *fixed)
{
    const char *knob = getenv("HIVE_TEST_SNAPSHOT_SIZE");
    char *end = NULL;
    unsigned long long v;

    *fixed = false;
    if (knob == NULL || *knob == '\0')
        return HIVE_SNAP_SIZE;
    v = strtoull(knob, &end, 10);
    if (*end != '\0' || v < HIVE_SNAP_DATA || v > HIVE_SNAP_SIZE)
        return HIVE_SNAP_SIZE;
    *fixed = true;
    return round8(v);
}

/* Create the snapshot holding the launch values of vars (variables only),
 * sealed so that only this process's mapping of it (which the refresher
 * inherits) can write it. Returns a read-only descriptor of it for the
 * program (inherited across exec), or -1 with errno (ENOSYS: the kernel
 * cannot seal it so). */
static int snapshot_create(const fresh_var *vars, size_t n)
{
    const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL;
    bool fixed;
    uint64_t size = snapshot_size(&fixed);
    uint64_t at = HIVE_SNAP_DATA;
    struct hive_snap *h;
    char path[64];
    void *p = MAP_FAILED;
    int wfd;
    int rfd = -1;
    int e;

    if (n > HIVE_SNAP_MAX_VARS) {
        errno = E2BIG;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(vars[i].name) >= HIVE_SNAP_NAME_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        at += round8((uint64_t)vars[i].len + 1);
    }
    /* the launch values, and room for a refreshed value of each (huge
     * launch values, possible with a big stack limit, get room to turn) */
    if (at + (at - HIVE_SNAP_DATA) > size) {
        if (fixed) {
            errno = EFBIG;
            return -1;
        }
        size = (at + 3 * (at - HIVE_SNAP_DATA) + 4095) & ~(uint64_t)4095;
    }
    /* the writable descriptor is ours alone: close-on-exec, and closed
     * below once the snapshot is sealed (the mapping stays) */
    wfd = (int)syscall(SYS_memfd_create, "hive-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (wfd < 0)
        return -1;
    if (ftruncate(wfd, (off_t)size) != 0 ||
        (p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, wfd, 0)) == MAP_FAILED)
        goto fail;
    snap_w = p;
    snap_size = size;
    snap_nvars = n;
    h = snap_head();
    h->magic = HIVE_SNAP_MAGIC;
    h->version = HIVE_SNAP_VERSION;
    h->size = size;
    at = HIVE_SNAP_DATA;
    for (size_t i = 0; i < n; i++) {
        strcpy(h->vars[i].name, vars[i].name);
        memcpy(snap_w + at, vars[i].value, vars[i].len);
        snap_w[at + vars[i].len] = '\0';
        live_off[i] = value_off[i] = at;
        live_len[i] = round8((uint64_t)vars[i].len + 1);
        h->vars[i].launch = at;
        atomic_store_explicit(&h->vars[i].offset, at, memory_order_release);
        at += live_len[i];
    }
    h->nvars = (uint32_t)n;
    ring_start = ring_next = (at + 63) & ~(uint64_t)63;
    turn_started_ms = now_ms();
    /* From here on nobody can write it but through this mapping, which
     * the refresher inherits and the program does not (exec drops it). */
    if (fcntl(wfd, F_ADD_SEALS, seals) != 0) {
        if (errno == EINVAL)
            errno = ENOSYS;   /* no F_SEAL_FUTURE_WRITE: Linux before 5.1 */
        goto fail;
    }
    /* the program's descriptor: read-only (opened again through /proc,
     * even a writable one could not write now), inherited across exec */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", wfd);
    rfd = open(path, O_RDONLY);
    if (rfd < 0)
        goto fail;
    close(wfd);
    return rfd;
fail:
    e = errno;
    if (p != MAP_FAILED)
        munmap(p, (size_t)size);
    snap_w = NULL;
    close(wfd);
    errno = e;
    return -1;
}

/* The program's descriptor of the snapshot, or -1. */
static int snap_fd = -1;

void fresh_discard(void)
{
    if (snap_w != NULL)
        munmap(snap_w, (size_t)snap_size);
    snap_w = NULL;
    if (snap_fd >= 0)
        close(snap_fd);
    snap_fd = -1;
}

int fresh_snapshot_fd(void)
{
    return snap_fd;
}

/* "NAME=value" in a new string, or NULL. */
static char *env_entry(const char *name, const char *value)
{
    char *entry = malloc(strlen(name) + 1 + strlen(value) + 1);

    if (entry != NULL)
        sprintf(entry, "%s=%s", name, value);
    return entry;
}

char **fresh_env_now(char *const *envp)
{
    const struct hive_snap *h = snap_head();
    size_t n = 0;
    char **out;

    while (envp[n] != NULL)
        n++;
    out = calloc(n + snap_nvars + 1, sizeof(char *));
    if (out == NULL)
        return NULL;
    memcpy(out, envp, n * sizeof(char *));
    for (size_t i = 0; i < snap_nvars; i++) {
        uint64_t off = atomic_load_explicit(&((struct hive_snap *)(void *)snap_w)->vars[i].offset,
                                            memory_order_acquire);
        const char *name = h->vars[i].name;
        const char *value = snap_w + off;
        size_t nl = strlen(name);
        char *entry = env_entry(name, value);
        size_t k = 0;
        if (entry == NULL)
            return NULL;   /* about to exec or exit: the OS takes it back */
        while (k < n && !(strncmp(out[k], name, nl) == 0 && out[k][nl] == '='))
            k++;
        out[k] = entry;
        if (k == n)
            n++;
    }
    return out;
}

/* Where libhive-preload.so is: $HIVE_PRELOAD, else beside an installed
 * hive-run, else in the build tree, else where it is installed. */
static bool preload_path(char *out, size_t size)
{
    const char *env = getenv("HIVE_PRELOAD");
    char exe[PATH_MAX];
    ssize_t n;

    if (env != NULL && *env != '\0') {
        /* a path cut short would name another library */
        int w = snprintf(out, size, "%s", env);
        return w > 0 && (size_t)w < size && access(out, R_OK) == 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            int n2 = snprintf(out, size, "%s/../%s/hive/libhive-preload.so", exe, HIVE_LIBDIR_REL);
            if (n2 > 0 && (size_t)n2 < size && access(out, R_OK) == 0)
                return true;
        }
    }
    n = snprintf(out, size, "%s", HIVE_PRELOAD_BUILD_PATH);
    if (n > 0 && (size_t)n < size && access(out, R_OK) == 0)
        return true;
    n = snprintf(out, size, "%s", HIVE_PRELOAD_INSTALL_PATH);
    return n > 0 && (size_t)n < size && access(out, R_OK) == 0;
}

/* The refresher must not become the program's child: as PID 1 or a
 * subreaper this process would inherit it, and a program waiting for all
 * its children would wait for ever. */
static int check_not_reaper(void)
{
    int sub = 0;

    if (getpid() == 1 || (prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) == 0 && sub)) {
        cli_error("--fresh cannot run a program as PID 1 or as a subreaper");
        cli_hint("in a container, run it under an init (docker run --init, tini)");
        return 125;
    }
    return 0;
}

/*
 * Whether the preload can keep the program fresh: 0 when it can (or may
 * help: a shell or Python passes the preload on to the programs it
 * starts), 1 when the program runs without it (said), else the exit
 * status (said).
 */
static int check_reach(const fresh_config *cfg, char **argv, char *const *envp, size_t nenv)
{
    char prog[PATH_MAX];
    const char *search = cli_env_value(envp, "PATH");
    bool copies = false;
    const char *why;

    if (cfg->on_refresh == FRESH_ON_RESTART)
        return 1;   /* every start gets the values in its environment */
    why = fresh_which(prog, sizeof(prog), argv[0], search ? search : CLI_DEFAULT_PATH)
              ? fresh_unreachable(prog, argv, search, &copies)
              : NULL;
    if (why == NULL)
        return 0;
    if (cfg->on_refresh == FRESH_ON_SIGNAL) {
        if (nenv > 0)
            cli_warn("--fresh: the program sees the launch-time values of its variables (%s); what "
                     "it reloads on SIG%s is fresh in --file files", why, cli_signal_name(cfg->signal));
        return copies ? 0 : 1;
    }
    if (cfg->allow_launch_values) {
        cli_warn("--fresh cannot keep this program fresh (%s); it runs with launch-time values", why);
        return copies ? 0 : 1;
    }
    if (copies) {
        cli_error("--fresh cannot keep this program fresh: %s", why);
        cli_hint("use --on-refresh restart (restarts it with the new values), --on-refresh signal:HUP "
                 "if it reloads on SIGHUP, or --file NAME=TEMPLATE and read the file when it needs the value");
        cli_hint("--allow-launch-values runs it with launch-time values (the programs it starts still "
                 "get fresh ones through getenv)");
    } else {
        cli_error("--fresh cannot reach this program: %s", why);
        cli_hint("use --on-refresh restart or --file NAME=TEMPLATE; or --allow-launch-values to run "
                 "it with launch-time values, or run it without --fresh");
    }
    return 125;
}

/* The snapshot of the variables of vars; 0 or the exit status (said). */
static int make_snapshot(const fresh_var *vars, size_t n)
{
    fresh_var env[HIVE_SNAP_MAX_VARS];
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (vars[i].file >= 0)
            continue;
        if (k == HIVE_SNAP_MAX_VARS) {
            cli_error("--fresh keeps at most %d variables fresh", HIVE_SNAP_MAX_VARS);
            return 125;
        }
        env[k++] = vars[i];
    }
    snap_fd = snapshot_create(env, k);
    if (snap_fd < 0) {
        int e = errno;
        cli_error("--fresh: cannot create the snapshot: %s", strerror(e));
        if (e == ENOSYS)
            cli_hint("--fresh needs Linux 5.1 or later (memfd F_SEAL_FUTURE_WRITE), so that the program "
                     "cannot write the values it is given");
        else if (e == ENOENT)
            cli_hint("--fresh needs /proc mounted");
        return 125;
    }
    return 0;
}

int fresh_setup(const fresh_config *cfg, const fresh_var *vars, size_t n, char **argv, char *const *envp,
                char ***extra)
{
    char lib[PATH_MAX];
    char fdtext[16];
    const char *old;
    char *preload;
    char **added;
    size_t nenv = 0;
    int ex;

    *extra = NULL;
    for (size_t i = 0; i < n; i++)
        nenv += vars[i].file < 0;
    if (n == 0) {
        cli_warn("--fresh: no variables to keep fresh");
        return 0;
    }
    if ((ex = check_not_reaper()) != 0)
        return ex;
    /* files are fresh whatever the program is written in */
    ex = nenv > 0 ? check_reach(cfg, argv, envp, nenv) : 1;
    if (ex > 1)
        return ex;
    if (nenv == 0 || (ex == 1 && cfg->on_refresh != FRESH_ON_RESTART))
        return 0;   /* no snapshot: the refresher keeps the files fresh, or tells the program */
    if ((ex = make_snapshot(vars, n)) != 0)
        return ex;
    if (cfg->on_refresh == FRESH_ON_RESTART) {
        /* hive-run reads the snapshot at each start; the program needs none */
        close(snap_fd);
        snap_fd = -1;
        return 0;
    }
    if (!preload_path(lib, sizeof(lib))) {
        cli_error("--fresh: libhive-preload.so not found (looked for %s)", lib);
        cli_hint("set HIVE_PRELOAD to its path");
        fresh_discard();
        return 125;
    }
    snprintf(fdtext, sizeof(fdtext), "%d", snap_fd);
    old = cli_env_value(envp, "LD_PRELOAD");
    preload = malloc((old ? strlen(old) : 0) + 1 + strlen(lib) + 1);
    if (preload != NULL)
        sprintf(preload, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "", lib);
    added = calloc(3, sizeof(char *));
    if (added != NULL) {
        added[0] = env_entry(HIVE_SNAP_ENV, fdtext);
        added[1] = preload ? env_entry("LD_PRELOAD", preload) : NULL;
    }
    free(preload);
    if (added == NULL || added[0] == NULL || added[1] == NULL) {
        cli_error("out of memory");
        fresh_discard();
        return 125;
    }
    *extra = added;
    return 0;
}

/* --- the refresher ------------------------------------------------------------ */

/* No credential is tried twice within REFRESH_FLOOR_MS, whatever the store
 * says is due; after n failures in a row, not within 2^n floors, at most
 * REFRESH_BACKOFF_MAX_MS. */
#define REFRESH_FLOOR_MS 1000
#define REFRESH_BACKOFF_MAX_MS 60000
/* When the program ends during a refresh, the refresh is let finish (the
 * server may have rotated the refresh token: the new one must be saved),
 * for at most this long. */
#define REFRESH_FINISH_MAX_MS 90000

static pid_t program;
static int program_fd = -1;
static atomic_bool in_flight;
static atomic_bool program_gone;

static bool program_alive(void)
{
    if (program_fd >= 0) {
        struct pollfd pf = {program_fd, POLLIN, 0};
        return poll(&pf, 1, 0) == 0;
    }
    return kill(program, 0) == 0 || errno == EPERM;
}

/* The program has ended: the refresher goes, once a refresh in flight has
 * saved what it got. */
static void program_ended(void)
{
    int64_t deadline = now_ms() + REFRESH_FINISH_MAX_MS;

    atomic_store(&program_gone, true);
    while (atomic_load(&in_flight) && now_ms() < deadline)
        usleep(20 * 1000);
    _exit(0);
}

/* Whatever the refresher is doing (even a network round trip), it ends
 * when the program ends. */
static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        if (program_fd >= 0) {
            struct pollfd pf = {program_fd, POLLIN, 0};
            if (poll(&pf, 1, -1) > 0)
                program_ended();
        } else {
            if (!program_alive())
                program_ended();
            usleep(200 * 1000);
        }
    }
    return NULL;
}

static void refresher_warn(void *ctx, const char *msg)
{
    (void)ctx;
    cli_warn("refresher: %s", msg);
}

/* Sleep until when_ms (now_ms() time) or the program's end. */
static void wait_until(int64_t when_ms)
{
    for (;;) {
        int64_t left = when_ms - now_ms();
        if (left <= 0)
            return;
        if (program_fd >= 0) {
            struct pollfd pf = {program_fd, POLLIN, 0};
            if (poll(&pf, 1, (int)(left > 60000 ? 60000 : left)) > 0)
                program_ended();
        } else {
            usleep((useconds_t)((left > 500 ? 500 : left) * 1000));
            if (!program_alive())
                program_ended();
        }
    }
}

/* A credential the templates name, and when the refresher may try it. */
typedef struct watched {
    char *id;
    int64_t not_before_ms;   /* floor and backoff */
    int failures;            /* in a row */
} watched;

static int add_watched(watched **list, size_t *n, const char *id)
{
    watched *grown;

    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i].id, id) == 0)
            return 0;
    grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (grown == NULL)
        return -1;
    *list = grown;
    grown[*n].id = strdup(id);
    grown[*n].not_before_ms = now_ms() + REFRESH_FLOOR_MS;   /* hive-run has just tried; see first_floor() */
    grown[*n].failures = 0;
    if (grown[*n].id == NULL)
        return -1;
    (*n)++;
    return 0;
}

static int collect_watched(watched **list, size_t *nw, const fresh_var *vars, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hive_template_refs *refs = NULL;
        int rc = 0;
        if (hive_template_refs_parse(&refs, vars[i].tmpl, strlen(vars[i].tmpl)) != HIVE_OK)
            return -1;
        for (size_t k = 0; k < hive_template_refs_count(refs) && rc == 0; k++)
            rc = add_watched(list, nw, hive_template_refs_id(refs, k));
        hive_template_refs_free(&refs);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* When w is due (now_ms() time), as the store says but never before its
 * floor; INT64_MAX when it never is. */
static int64_t due_ms(hive_store *st, const watched *w, int margin)
{
    hive_cred *c = NULL;
    hive_time due;
    int64_t at = INT64_MAX;

    if (hive_store_get_credential(st, &c, w->id, HIVE_GET_NO_REFRESH) == HIVE_OK && hive_cred_refresh_due(c, &due, margin)) {
        hive_time now = hive_time_now();
        int64_t in_us = (due.sec - now.sec) * 1000000 + (due.usec - now.usec);
        /* rounded up: woken at that time, the store finds it due too */
        at = now_ms() + (in_us <= 0 ? 0 : (in_us + 999) / 1000);
    }
    hive_cred_free(&c);
    return at > w->not_before_ms ? at : w->not_before_ms;
}

/* The first try's floor for w: a floor after the credential's last
 * refresh when that was less than a floor ago (hive-run's at launch: the
 * refresher, started later, would otherwise delay a short-lived token's
 * first refresh past its due time by its own late start); else a floor
 * from now (hive-run may have just tried, and failed). */
static int64_t first_floor(hive_store *st, const watched *w)
{
    hive_cred *c = NULL;
    int64_t at = now_ms() + REFRESH_FLOOR_MS;

    if (hive_store_get_credential(st, &c, w->id, HIVE_GET_NO_REFRESH) == HIVE_OK) {
        hive_time last = hive_cred_time(c, HIVE_CRED_LAST_REFRESHED);
        hive_time now = hive_time_now();
        int64_t ago_ms = ((now.sec - last.sec) * 1000000 + (now.usec - last.usec)) / 1000;
        if (last.form != HIVE_TIME_NONE && ago_ms >= 0 && ago_ms < REFRESH_FLOOR_MS)
            at = now_ms() + (REFRESH_FLOOR_MS - ago_ms);
    }
    hive_cred_free(&c);
    return at;
}

/* When credential id was last refreshed, as stored (form NONE: never, or
 * it cannot be read). */
static hive_time last_refreshed(hive_store *st, const char *id)
{
    hive_cred *c = NULL;
    hive_time t = {0, 0, 0, HIVE_TIME_NONE};

    if (hive_store_get_credential(st, &c, id, HIVE_GET_NO_REFRESH) == HIVE_OK)
        t = hive_cred_time(c, HIVE_CRED_LAST_REFRESHED);
    hive_cred_free(&c);
    return t;
}

/* One refresh attempt for w (the store refreshes only if still due),
 * recorded in audit: a refresh it made, or its failure. */
static void try_refresh(hive_store *st, hive_audit *audit, watched *w)
{
    hive_cred *c = NULL;
    hive_time before;
    char *why = NULL;
    hive_rc rc;

    atomic_store(&in_flight, true);
    if (atomic_load(&program_gone)) {
        atomic_store(&in_flight, false);
        _exit(0);
    }
    hive_store_invalidate(st, w->id);   /* read it again; forget an earlier failure */
    before = last_refreshed(st, w->id);
    rc = hive_store_get_credential(st, &c, w->id, HIVE_GET_STRICT);
    atomic_store(&in_flight, false);
    if (rc == HIVE_OK) {
        /* found no longer due (another process refreshed it, and recorded
         * that): no refresh here, no record */
        hive_time after = hive_cred_time(c, HIVE_CRED_LAST_REFRESHED);
        if (after.form != HIVE_TIME_NONE && (before.form == HIVE_TIME_NONE || hive_time_cmp(&after, &before) != 0))
            CLI_AUDIT(hive_audit_event(audit, "refresh", w->id, NULL, NULL));
    } else {
        why = strdup(hive_last_error());   /* the record clears it */
        CLI_AUDIT(hive_audit_event(audit, "refresh", w->id, NULL, why ? why : "refresh failed"));
    }
    hive_cred_free(&c);
    if (atomic_load(&program_gone))
        _exit(0);
    if (rc == HIVE_OK) {
        w->failures = 0;
        w->not_before_ms = now_ms() + REFRESH_FLOOR_MS;
    } else {
        int64_t wait = REFRESH_FLOOR_MS;
        for (int k = 0; k < w->failures + 1 && wait < REFRESH_BACKOFF_MAX_MS; k++)
            wait *= 2;
        if (wait > REFRESH_BACKOFF_MAX_MS)
            wait = REFRESH_BACKOFF_MAX_MS;
        w->failures++;
        w->not_before_ms = now_ms() + wait;
        cli_warn("refresher: %s; the program keeps the last value, next try in %lld s",
                 why ? why : "refresh failed", (long long)(wait / 1000));
    }
    free(why);
}

/* Hand the new value v (len bytes) of vars[i] on: to the snapshot slot
 * of a variable, or to the holder of a file. 0 when done. */
static int hand_on(const fresh_config *cfg, const fresh_var *vars, size_t i, size_t slot, const char *v, size_t len)
{
    if (vars[i].file >= 0)
        return secretfile_replace(cfg->files_ctl, (size_t)vars[i].file, v, len);
    return publish(slot, v, len);
}

/* After new values were handed on: tell the program, or hive-run. */
static void tell_refreshed(const fresh_config *cfg)
{
    if (cfg->on_refresh == FRESH_ON_SIGNAL) {
        if (kill(program, cfg->signal) != 0 && errno != ESRCH)
            cli_warn("refresher: cannot send SIG%s to the program: %s", cli_signal_name(cfg->signal),
                     strerror(errno));
    } else if (cfg->on_refresh == FRESH_ON_RESTART) {
        (void)!write(cfg->notify_fd, "r", 1);
    }
}

/* Close every descriptor from 3 up but those of keep: all of them, also
 * past 1024 (a program may hold a pipe up there whose reader waits for
 * EOF). The open ones are listed in /proc/self/fd; without /proc, up to
 * the limit. */
static void close_all_but(const int *keep, size_t nkeep)
{
    int fds[4096];
    size_t n = 0;
    bool more = true;

    while (more) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        long max;

        if (d == NULL) {
            max = sysconf(_SC_OPEN_MAX);
            for (long fd = 3; fd < (max > 0 && max < (1L << 20) ? max : (1L << 20)); fd++) {
                bool kept = false;
                for (size_t k = 0; k < nkeep && !kept; k++)
                    kept = keep[k] == (int)fd;
                if (!kept)
                    close((int)fd);
            }
            return;
        }
        n = 0;
        more = false;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            bool kept = *end != '\0' || fd < 3 || fd == dirfd(d);
            for (size_t k = 0; k < nkeep && !kept; k++)
                kept = keep[k] == (int)fd;
            if (kept)
                continue;
            if (n == sizeof(fds) / sizeof(fds[0])) {
                more = true;   /* close these, then look again */
                break;
            }
            fds[n++] = (int)fd;
        }
        closedir(d);
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
    }
}

static void refresher_loop(const fresh_config *cfg, const fresh_var *vars, size_t n)
{
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    hive_store *st = NULL;
    hive_audit *audit;
    char **last = calloc(n, sizeof(char *));
    size_t *last_len = calloc(n, sizeof(size_t));   /* a file's value may hold NUL bytes */
    bool *unresolved = calloc(n, sizeof(bool));
    size_t *slot = calloc(n, sizeof(size_t));
    watched *ws = NULL;
    size_t nw = 0;
    bool full_said = false;

    so.cache_ttl = -1;   /* always read what other processes wrote */
    so.refresh_margin = cfg->margin;
    so.warn = refresher_warn;
    if (last == NULL || last_len == NULL || unresolved == NULL || slot == NULL || collect_watched(&ws, &nw, vars, n) != 0 ||
        hive_store_open_from_env(&st, cfg->store_dir, &so) != HIVE_OK) {
        cli_warn("refresher: cannot open the store: %s; the program keeps its launch values",
                 hive_last_error());
        _exit(0);
    }
    /* its refreshes are recorded as hive-run's others are (the log is
     * opened at the first record; the refresher never execs) */
    audit = cli_audit_open(hive_file_storage_dir(hive_store_storage(st)), "fresh");
    for (size_t i = 0, k = 0; i < n; i++) {
        last[i] = malloc(vars[i].len + 1);
        if (last[i] != NULL)
            memcpy(last[i], vars[i].value, vars[i].len + 1);
        last_len[i] = vars[i].len;
        /* a variable without a snapshot (the preload cannot reach the
         * program) is not kept: nothing could read it */
        unresolved[i] = vars[i].file < 0 && snap_w == NULL;
        slot[i] = vars[i].file < 0 ? k++ : 0;
    }
    for (size_t k = 0; k < nw; k++)
        ws[k].not_before_ms = first_floor(st, &ws[k]);
    for (;;) {
        int64_t next = now_ms() + 60 * 1000;   /* look again at least every minute */
        bool changed = false;
        for (size_t k = 0; k < nw; k++) {
            int64_t d = due_ms(st, &ws[k], cfg->margin);
            if (d < next)
                next = d;
        }
        wait_until(next);
        for (size_t k = 0; k < nw; k++)
            if (due_ms(st, &ws[k], cfg->margin) <= now_ms())
                try_refresh(st, audit, &ws[k]);
        /* publish what the store holds now, refreshed by us or by others */
        for (size_t i = 0; i < n; i++) {
            hive_secret v = HIVE_SECRET_INIT;
            if (vars[i].file < 0 && snap_w == NULL)
                continue;
            if (hive_store_resolve(st, &v, vars[i].tmpl, HIVE_GET_NO_REFRESH) != HIVE_OK) {
                if (!unresolved[i])
                    cli_warn("refresher: %s: %s; the program keeps the last value", vars[i].name,
                             hive_last_error());
                unresolved[i] = true;
                continue;
            }
            unresolved[i] = false;
            if ((vars[i].file >= 0 || strlen(v.data) == v.len) &&
                (last[i] == NULL || v.len != last_len[i] || memcmp(last[i], v.data, v.len) != 0)) {
                if (hand_on(cfg, vars, i, slot[i], v.data, v.len) == 0) {
                    cli_free_secret(last[i], last[i] != NULL ? last_len[i] + 1 : 0);
                    last[i] = malloc(v.len + 1);
                    if (last[i] != NULL)
                        memcpy(last[i], v.data, v.len + 1);
                    last_len[i] = v.len;
                    full_said = false;
                    changed = true;
                } else if (vars[i].file >= 0) {
                    cli_warn("refresher: %s: cannot replace the file: %s; the program keeps the last value",
                             vars[i].name, strerror(errno));
                } else if (!full_said) {
                    cli_warn("refresher: %s: a %zu-byte value does not fit in the snapshot beside the "
                             "current ones; the program keeps the last value", vars[i].name, v.len);
                    full_said = true;
                }
            }
            hive_secret_free(&v);
        }
        if (changed)
            tell_refreshed(cfg);
    }
}

int fresh_start_refresher(const fresh_config *cfg, const fresh_var *vars, size_t n)
{
    pid_t me = getpid();
    pid_t a;
    int status;

    if (snap_w == NULL && cfg->files_ctl < 0 && cfg->on_refresh == FRESH_ON_NOTHING)
        return 0;   /* nothing it could keep fresh */
    fflush(NULL);
    a = fork();
    if (a < 0)
        return -1;
    if (a == 0) {
        pid_t b;
        /* never dumpable or traceable: it holds the store key and the
         * snapshot's only writable mapping (hive-run is already so; this
         * is inherited by b, with no moment without it) */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* a session of its own: the terminal's ^C and ^Z are the program's */
        setsid();
        /* named before b exists (b inherits the name): hive-run waits for
         * this process, so the refresher has its name before the program
         * starts, however late b is scheduled */
        prctl(PR_SET_NAME, "hive-refresher", 0, 0, 0);
        b = fork();
        if (b != 0) {
            /* said before hive-run goes on (it waits for this process),
             * so that the program finds it from its first instruction */
            if (b > 0 && snap_w != NULL)
                snap_head()->refresher_pid = (uint64_t)b;
            _exit(b < 0 ? 1 : 0);
        }
        /* b: the refresher; not the program's child, so it never shows up
         * in the program's wait() */
        program = me;
        program_fd = (int)syscall(SYS_pidfd_open, me, 0);
        if (!program_alive())
            _exit(0);
        {
            /* hold none of the program's files open (the snapshot's
             * descriptor neither: the mapping is enough): a pipe reader
             * must see EOF when the program ends */
            int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
            dup2(devnull, 0);
            dup2(devnull, 1);
            int keep[4] = {program_fd, devnull, cfg->files_ctl, cfg->notify_fd};
            close_all_but(keep, 4);
        }
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        {
            pthread_t t;
            pthread_create(&t, NULL, watchdog, NULL);
        }
        refresher_loop(cfg, vars, n);
        _exit(0);
    }
    if (waitpid(a, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}
