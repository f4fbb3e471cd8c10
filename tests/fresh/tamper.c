/*
 * tamper NAME - run under hive-run --fresh: try every way a program (or
 * any of its children) could change the snapshot its getenv() answers
 * from, or reach the refresher, and say for each whether it worked:
 *   "<attack> blocked <errno text>" or "<attack> WORKED"
 * then "value unchanged" or "value CHANGED" (what getenv(NAME) returns
 * afterwards, against what it returned first).
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

static const char evil[] = "EVIL-VALUE-CHOSEN-BY-THE-PROGRAM";
static uint64_t value_off;   /* where NAME's current value is, in the file */
static uint64_t slot_off;    /* where its offset is */
static uint64_t evil_off;    /* where a value of the attacker's would go */

static void report(const char *attack, int ok)
{
    if (ok)
        printf("%s WORKED\n", attack);
    else
        printf("%s blocked %s\n", attack, strerror(errno));
    fflush(stdout);
}

static int try_pwrite(int fd)
{
    return pwrite(fd, evil, sizeof(evil), (off_t)value_off) == (ssize_t)sizeof(evil);
}

static int try_mmap_write(int fd, int prot_first)
{
    struct stat st;
    char *p;

    if (fstat(fd, &st) != 0)
        return 0;
    p = mmap(NULL, (size_t)st.st_size, prot_first, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return 0;
    if (!(prot_first & PROT_WRITE) && mprotect(p, (size_t)st.st_size, PROT_READ | PROT_WRITE) != 0) {
        munmap(p, (size_t)st.st_size);
        return 0;
    }
    memcpy(p + value_off, evil, sizeof(evil));
    munmap(p, (size_t)st.st_size);
    return 1;
}

/* what the review showed: write a value of one's choosing and point the
 * variable's slot at it */
static int try_hijack(int fd)
{
    uint64_t off = evil_off;

    return pwrite(fd, evil, sizeof(evil), (off_t)evil_off) == (ssize_t)sizeof(evil) &&
           pwrite(fd, &off, sizeof(off), (off_t)slot_off) == (ssize_t)sizeof(off);
}

/* /proc/self/mem writes with FOLL_FORCE: they get through a read-only
 * private mapping (copy on write), so they must not through a shared one */
static int try_proc_mem(int fd)
{
    struct stat st;
    char *p;
    int mem;
    int ok;

    if (fstat(fd, &st) != 0)
        return 0;
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return 0;
    mem = open("/proc/self/mem", O_RDWR);
    ok = mem >= 0 && pwrite(mem, evil, sizeof(evil), (off_t)(uintptr_t)(p + value_off)) == (ssize_t)sizeof(evil);
    if (mem >= 0)
        close(mem);
    munmap(p, (size_t)st.st_size);
    return ok;
}

/* The writes a descriptor might allow; how stands for it in the names. */
static void attack(int fd, const char *how, const char *name, const char *before)
{
    char what[64];
    const char *v;

    snprintf(what, sizeof(what), "hijack-%s", how);
    report(what, try_hijack(fd));
    v = getenv(name);
    printf("value-after-%s %s\n", how, v != NULL && strcmp(v, before) == 0 ? "unchanged" : "CHANGED");
    snprintf(what, sizeof(what), "pwrite-%s", how);
    report(what, try_pwrite(fd));
    snprintf(what, sizeof(what), "mmap-write-%s", how);
    report(what, try_mmap_write(fd, PROT_READ | PROT_WRITE));
    snprintf(what, sizeof(what), "mprotect-%s", how);
    report(what, try_mmap_write(fd, PROT_READ));
    snprintf(what, sizeof(what), "proc-mem-%s", how);
    report(what, try_proc_mem(fd));
}

static void drop_ptrace_capability(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];

    if (syscall(SYS_capget, &h, d) != 0)
        return;
    d[CAP_SYS_PTRACE / 32].effective &= ~(1u << (CAP_SYS_PTRACE % 32));
    if (syscall(SYS_capset, &h, d) != 0)
        perror("tamper: capset");
}

int main(int argc, char **argv)
{
    const char *fdtext = getenv(HIVE_SNAP_ENV);
    const char *v;
    char *before;
    struct hive_snap head;
    char path[64];
    int fd;
    int rw;

    if (argc != 2 || fdtext == NULL) {
        fprintf(stderr, "usage: tamper NAME (under hive-run --fresh)\n");
        return 2;
    }
    v = getenv(argv[1]);
    if (v == NULL) {
        fprintf(stderr, "tamper: %s is not set\n", argv[1]);
        return 2;
    }
    before = strdup(v);
    fd = atoi(fdtext);
    if (pread(fd, &head, sizeof(head), 0) != (ssize_t)sizeof(head)) {
        perror("tamper: read the snapshot");
        return 2;
    }
    for (uint32_t i = 0; i < head.nvars && i < HIVE_SNAP_MAX_VARS; i++) {
        if (strncmp(head.vars[i].name, argv[1], HIVE_SNAP_NAME_MAX) == 0) {
            value_off = head.vars[i].offset;
            slot_off = offsetof(struct hive_snap, vars) + i * sizeof(head.vars[0]) +
                       offsetof(struct hive_snap_var, offset);
        }
    }
    if (value_off == 0 || head.size < HIVE_SNAP_DATA + 4096) {
        fprintf(stderr, "tamper: %s is not in the snapshot\n", argv[1]);
        return 2;
    }
    evil_off = (head.size - 1024) & ~(uint64_t)7;

    attack(fd, "inherited", argv[1], before);
    report("ftruncate-inherited", ftruncate(fd, 0) == 0);

    /* a read-only descriptor can be opened again through /proc */
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rw = open(path, O_RDWR);
    report("reopen-rdwr", rw >= 0);
    if (rw >= 0) {
        attack(rw, "reopened", argv[1], before);
        report("fallocate-punch-reopened",
               fallocate(rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)value_off, 4096) == 0);
        report("ftruncate-shrink-reopened", ftruncate(rw, 4096) == 0);
        report("ftruncate-grow-reopened", ftruncate(rw, (off_t)head.size * 2) == 0);
        report("add-seal-reopened", fcntl(rw, F_ADD_SEALS, F_SEAL_WRITE) == 0);
        close(rw);
    }

    /* the refresher holds the store key and a writable mapping; as root,
     * first give up what a program run by a user does not have */
    drop_ptrace_capability();
    if (head.refresher_pid != 0) {
        char rp[64];
        int m;
        snprintf(rp, sizeof(rp), "/proc/%llu/mem", (unsigned long long)head.refresher_pid);
        m = open(rp, O_RDWR);
        report("refresher-mem", m >= 0);
        if (m >= 0)
            close(m);
        /* any of its descriptors, opened through /proc */
        {
            int opened = 0;
            errno = ENOENT;
            for (int n = 0; n < 64 && !opened; n++) {
                int f;
                snprintf(rp, sizeof(rp), "/proc/%llu/fd/%d", (unsigned long long)head.refresher_pid, n);
                f = open(rp, O_RDONLY);
                if (f >= 0) {
                    opened = 1;
                    close(f);
                }
            }
            report("refresher-fds", opened);
        }
    } else {
        printf("refresher-pid missing\n");
    }

    v = getenv(argv[1]);
    printf("value %s\n", v != NULL && strcmp(v, before) == 0 ? "unchanged" : "CHANGED");
    free(before);
    return 0;
}
