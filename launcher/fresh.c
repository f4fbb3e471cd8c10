/*
 * fresh.c - hive-run --fresh: a snapshot the preload reads, a refresher
 * process that keeps it fresh, and the check that the target can be
 * reached by the preload at all.
 */
#include "fresh.h"
#include "../preload/snapshot.h"

#include <elf.h>
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

const char *fresh_unreachable(const char *path, int depth)
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

    if (stat(path, &st) != 0)
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
    if (n >= 2 && head[0] == '#' && head[1] == '!' && depth < 2) {
        /* a script: what matters is its interpreter */
        char *p = (char *)head + 2;
        const char *r;
        head[n] = '\0';
        close(fd);
        while (*p == ' ' || *p == '\t')
            p++;
        p[strcspn(p, " \t\r\n")] = '\0';
        r = *p ? fresh_unreachable(p, depth + 1) : NULL;
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
    return NULL;
}

/* --- the snapshot ---------------------------------------------------------- */

static struct hive_snap *snap;

static int publish(size_t i, const char *value, size_t len)
{
    uint64_t at = snap->used;

    if (at + len + 1 > snap->size)
        return -1;   /* full: the program keeps the last value */
    memcpy((char *)snap + at, value, len);
    ((char *)snap)[at + len] = '\0';
    snap->used = (at + len + 1 + 7) & ~(uint64_t)7;
    atomic_store_explicit(&snap->vars[i].offset, at, memory_order_release);
    atomic_fetch_add_explicit(&snap->generation, 1, memory_order_release);
    return 0;
}

int fresh_create(const fresh_var *vars, size_t n)
{
    int fd;
    void *p;

    if (n > HIVE_SNAP_MAX_VARS) {
        errno = E2BIG;
        return -1;
    }
    /* no MFD_CLOEXEC: the program and its children inherit it */
    fd = (int)syscall(SYS_memfd_create, "hive-snapshot", 0);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, HIVE_SNAP_SIZE) != 0 ||
        (p = mmap(NULL, HIVE_SNAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    snap = p;
    snap->magic = HIVE_SNAP_MAGIC;
    snap->version = HIVE_SNAP_VERSION;
    snap->size = HIVE_SNAP_SIZE;
    snap->used = HIVE_SNAP_DATA;
    for (size_t i = 0; i < n; i++) {
        if (strlen(vars[i].name) >= HIVE_SNAP_NAME_MAX) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(snap->vars[i].name, vars[i].name);
        publish(i, vars[i].value, vars[i].len);
        snap->vars[i].launch = atomic_load(&snap->vars[i].offset);
    }
    snap->nvars = (uint32_t)n;
    return fd;
}

/* --- the refresher ------------------------------------------------------------ */

static pid_t program;
static int program_fd = -1;

static bool program_alive(void)
{
    if (program_fd >= 0) {
        struct pollfd pf = {program_fd, POLLIN, 0};
        return poll(&pf, 1, 0) == 0;
    }
    return kill(program, 0) == 0 || errno == EPERM;
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
                _exit(0);
        } else {
            if (!program_alive())
                _exit(0);
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

/* Sleep until `when` (CLOCK_REALTIME seconds) or the program's end. */
static void wait_until(int64_t when_ms)
{
    for (;;) {
        struct timespec now;
        int64_t left;
        clock_gettime(CLOCK_REALTIME, &now);
        left = when_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0)
            return;
        if (program_fd >= 0) {
            struct pollfd pf = {program_fd, POLLIN, 0};
            if (poll(&pf, 1, (int)(left > 60000 ? 60000 : left)) > 0)
                _exit(0);
        } else {
            usleep((useconds_t)((left > 500 ? 500 : left) * 1000));
            if (!program_alive())
                _exit(0);
        }
    }
}

static int64_t now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The earliest time any credential the templates name is due. */
static int64_t next_due_ms(hive_store *st, const fresh_var *vars, size_t n, int margin)
{
    int64_t best = now_ms() + 60 * 1000;   /* look again at least every minute */

    for (size_t i = 0; i < n; i++) {
        hive_template_ref *refs = NULL;
        size_t nr = 0;
        if (hive_template_refs(&refs, &nr, vars[i].tmpl, strlen(vars[i].tmpl)) != HIVE_OK)
            continue;
        for (size_t k = 0; k < nr; k++) {
            hive_cred *c = NULL;
            hive_time due;
            if (hive_store_get_credential(st, &c, refs[k].id, 0) == HIVE_OK &&
                hive_cred_refresh_due(c, margin, &due)) {
                int64_t ms = due.sec * 1000 + due.usec / 1000;
                if (ms < best)
                    best = ms;
            }
            hive_cred_free(&c);
        }
        hive_template_refs_free(refs, nr);
    }
    return best;
}

static void refresher_loop(const char *store_dir, const fresh_var *vars, size_t n, int margin)
{
    hive_store_options so = {0};
    hive_store *st = NULL;
    char **last = calloc(n, sizeof(char *));
    int64_t backoff = 0;

    so.cache_ttl = -1;   /* always read what other processes wrote */
    so.refresh_margin = margin;
    so.warn = refresher_warn;
    if (last == NULL || hive_store_open(&st, store_dir, &so) != HIVE_OK) {
        cli_warn("refresher: cannot open the store: %s; the program keeps its launch values",
                 hive_last_error());
        _exit(0);
    }
    for (size_t i = 0; i < n; i++)
        last[i] = strdup(vars[i].value);
    for (;;) {
        int64_t due = next_due_ms(st, vars, n, margin);
        bool failed = false;

        if (backoff > 0 && due < now_ms() + backoff)
            due = now_ms() + backoff;
        wait_until(due);
        for (size_t i = 0; i < n; i++) {
            char *v = NULL;
            size_t len = 0;
            hive_rc rc = hive_store_resolve(st, &v, &len, vars[i].tmpl, HIVE_GET_REFRESH | HIVE_GET_STRICT);
            if (rc != HIVE_OK) {
                if (!failed)
                    cli_warn("refresher: %s: %s; the program keeps the last value", vars[i].name,
                             hive_last_error());
                failed = true;
                continue;
            }
            if (strlen(v) == len && (last[i] == NULL || strcmp(last[i], v) != 0)) {
                if (publish(i, v, len) == 0) {
                    hive_free_str(last[i]);
                    last[i] = strdup(v);
                }
            }
            hive_free_secret(v, len + 1);
        }
        backoff = failed ? (backoff == 0 ? 2000 : (backoff * 2 > 60000 ? 60000 : backoff * 2)) : 0;
    }
}

int fresh_start_refresher(const char *store_dir, const fresh_var *vars, size_t n, int margin, int snap_fd)
{
    pid_t me = getpid();
    pid_t a;
    int status;

    fflush(NULL);
    a = fork();
    if (a < 0)
        return -1;
    if (a == 0) {
        pid_t b;
        /* a session of its own: the terminal's ^C and ^Z are the program's */
        setsid();
        b = fork();
        if (b != 0)
            _exit(b < 0 ? 1 : 0);
        /* b: the refresher; not the program's child, so it never shows up
         * in the program's wait() */
        program = me;
        program_fd = (int)syscall(SYS_pidfd_open, me, 0);
        if (!program_alive())
            _exit(0);
        prctl(PR_SET_NAME, "hive-refresher", 0, 0, 0);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        {
            /* hold none of the program's files open: a pipe reader must
             * see EOF when the program ends */
            int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
            dup2(devnull, 0);
            dup2(devnull, 1);
            for (int fd = 3; fd < 1024; fd++)
                if (fd != snap_fd && fd != program_fd && fd != devnull)
                    close(fd);
        }
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        {
            pthread_t t;
            pthread_create(&t, NULL, watchdog, NULL);
        }
        refresher_loop(store_dir, vars, n, margin);
        _exit(0);
    }
    if (waitpid(a, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}
