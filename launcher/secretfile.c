/*
 * secretfile.c - hive-run --file: each file is a sealed memfd, held open
 * by a small process of its own (the holder) at a fixed descriptor
 * number, and named to the program by /proc/<holder>/fd/<n>.
 *
 * Why so: the content is in memory only (a memfd is never on a disk);
 * the path exists exactly as long as the holder does, and the holder
 * ends when the program (or hive-run, when it stays as the program's
 * parent) ends, whatever killed it: nothing is left to clean, even
 * after SIGKILL of any of them. The holder is not the program, so the
 * path stays the same when the program closes its descriptors, execs,
 * or is restarted. A refresh makes a new memfd and has the holder dup2
 * it over the old number: a reader that opens the path again gets the
 * new file whole, one that has the old open keeps reading the old.
 *
 * /proc/PID/fd/N can be opened only by processes allowed to trace PID
 * (the same user, the holder dumpable): the holder is exec'd afresh, so
 * it holds neither the store key nor anything else of hive-run's memory,
 * and its files are mode 0400.
 */
#include "secretfile.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HOLDER_CTL 3        /* the holder's end of the control socket */
#define HOLDER_PIDFD 4      /* the process it lives as long as */
/* above every descriptor the holder keeps: where they are moved out of
 * the way first (within the usual limit of 1024 open files) */
#define HOLDER_HIGH_FD (SECRETFILE_FD_BASE + SECRETFILE_MAX + 16)
#define READY_WAIT_MS 10000
#define ACK_WAIT_MS 10000

/* A sealed read-only memfd holding content, or -1 with errno. */
static int sealed_file(const char *content, size_t len)
{
    const unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
    int fd = (int)syscall(SYS_memfd_create, "hive-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    size_t done = 0;
    int e;

    if (fd < 0)
        return -1;
    while (done < len) {
        ssize_t w = write(fd, content + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        done += (size_t)w;
    }
    if (fchmod(fd, 0400) != 0 || fcntl(fd, F_ADD_SEALS, seals) != 0)
        goto fail;
    return fd;
fail:
    e = errno ? errno : EIO;
    close(fd);
    errno = e;
    return -1;
}

/* Wait up to ms for fd to be readable; false on time-out. */
static bool readable_within(int fd, int ms)
{
    struct pollfd pf = {fd, POLLIN, 0};
    int r;

    while ((r = poll(&pf, 1, ms)) < 0 && errno == EINTR)
        ;
    return r > 0;
}

/* In the holder-to-be (a fresh process): put ctl, pidfd and the files at
 * their numbers, nothing else open but /dev/null, and exec the holder. */
static void exec_holder(int ctl, int pidfd, const int *files, size_t n)
{
    int src[SECRETFILE_MAX + 2];
    int dst[SECRETFILE_MAX + 2];
    size_t k = 0;
    int devnull;
    static char name[] = SECRETFILE_HOLDER_NAME;
    char *const argv[] = {name, NULL};
    char *const envp[] = {NULL};

    src[k] = ctl, dst[k++] = HOLDER_CTL;
    src[k] = pidfd, dst[k++] = HOLDER_PIDFD;
    for (size_t i = 0; i < n; i++)
        src[k] = files[i], dst[k++] = SECRETFILE_FD_BASE + (int)i;
    /* out of the way first (close-on-exec copies), so that no dup2 below
     * lands on a source still to be moved */
    for (size_t i = 0; i < k; i++)
        if ((src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, HOLDER_HIGH_FD)) < 0)
            _exit(125);
    for (size_t i = 0; i < k; i++)
        if (dup2(src[i], dst[i]) < 0)
            _exit(125);
    /* nothing of the program's open: a reader of its output pipe must
     * see EOF when the program ends */
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        _exit(125);
    for (int fd = 0; fd < 3; fd++)
        dup2(devnull, fd);
    for (int fd = HOLDER_PIDFD + 1; fd < SECRETFILE_FD_BASE; fd++)
        close(fd);
    if (syscall(SYS_close_range, SECRETFILE_FD_BASE + (unsigned)n, ~0U, 0) != 0) {
        /* before Linux 5.9: one by one */
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = SECRETFILE_FD_BASE + (long)n; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            close((int)fd);
    }
    execve("/proc/self/exe", argv, envp);
    _exit(125);
}

int secretfile_start(char (*paths)[SECRETFILE_PATH_MAX], const char *const *contents, const size_t *lens,
                     size_t n)
{
    int files[SECRETFILE_MAX];
    int sv[2] = {-1, -1};
    int pp[2] = {-1, -1};
    int pidfd = -1;
    pid_t holder = 0;
    pid_t a;
    size_t made = 0;
    int status;
    int e = 0;
    char ready;

    if (n > SECRETFILE_MAX) {
        errno = E2BIG;
        return -1;
    }
    for (; made < n; made++)
        if ((files[made] = sealed_file(contents[made], lens[made])) < 0)
            goto fail;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 || pipe2(pp, O_CLOEXEC) != 0)
        goto fail;
    pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd < 0)
        goto fail;
    fflush(NULL);
    a = fork();
    if (a < 0)
        goto fail;
    if (a == 0) {
        /* a session of its own, and a grandchild: never the program's
         * child (a program waiting for all its children would wait for
         * it), never reached by the terminal's signals */
        pid_t b;
        setsid();
        b = fork();
        if (b != 0) {
            (void)!write(pp[1], &b, sizeof(b));
            _exit(b < 0 ? 1 : 0);
        }
        exec_holder(sv[1], pidfd, files, n);
    }
    close(pp[1]);
    pp[1] = -1;
    if (read(pp[0], &holder, sizeof(holder)) != (ssize_t)sizeof(holder))
        holder = 0;
    while (waitpid(a, &status, 0) < 0 && errno == EINTR)
        ;
    /* ready once exec'd (and so dumpable: its files can be opened) */
    if (holder <= 0 || !readable_within(sv[0], READY_WAIT_MS) || read(sv[0], &ready, 1) != 1 || ready != 'R') {
        if (holder > 0)
            kill(holder, SIGKILL);
        errno = ECHILD;
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(paths[i], SECRETFILE_PATH_MAX, "/proc/%d/fd/%d", (int)holder, SECRETFILE_FD_BASE + (int)i);
    close(sv[1]);
    close(pp[0]);
    close(pidfd);
    for (size_t i = 0; i < n; i++)
        close(files[i]);
    return sv[0];
fail:
    e = errno ? errno : EIO;
    for (size_t i = 0; i < made; i++)
        close(files[i]);
    for (int k = 0; k < 2; k++) {
        if (sv[k] >= 0)
            close(sv[k]);
        if (pp[k] >= 0)
            close(pp[k]);
    }
    if (pidfd >= 0)
        close(pidfd);
    errno = e;
    return -1;
}

int secretfile_replace(int ctl, size_t i, const char *content, size_t len)
{
    uint32_t index = (uint32_t)i;
    int fd = sealed_file(content, len);
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&index, sizeof(index)};
    struct msghdr msg = {0};
    struct cmsghdr *cm;
    char ack = 0;
    ssize_t r;

    if (fd < 0)
        return -1;
    memset(cbuf, 0, sizeof(cbuf));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    while ((r = sendmsg(ctl, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (r != (ssize_t)sizeof(index))
        return -1;
    /* swapped in once the holder says so: only then may the program be
     * told that the files are new */
    if (!readable_within(ctl, ACK_WAIT_MS) || read(ctl, &ack, 1) != 1 || ack != 'A') {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

/* Take one file from the control socket and put it at its number. */
static void holder_take(int *ctl_open)
{
    uint32_t index = 0;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&index, sizeof(index)};
    struct msghdr msg = {0};
    struct cmsghdr *cm;
    int fd = -1;
    ssize_t r;

    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    r = recvmsg(HOLDER_CTL, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) {
        /* the refresher has gone (or there never was one): the files
         * stay as they are for the program's life */
        *ctl_open = 0;
        return;
    }
    cm = CMSG_FIRSTHDR(&msg);
    if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    if (fd >= 0 && r == (ssize_t)sizeof(index) && index < SECRETFILE_MAX &&
        fcntl(SECRETFILE_FD_BASE + (int)index, F_GETFD) >= 0 && dup2(fd, SECRETFILE_FD_BASE + (int)index) >= 0)
        (void)!write(HOLDER_CTL, "A", 1);
    else
        (void)!write(HOLDER_CTL, "N", 1);
    if (fd >= 0)
        close(fd);
}

int secretfile_holder_main(void)
{
    struct pollfd pf[2] = {{HOLDER_PIDFD, POLLIN, 0}, {HOLDER_CTL, POLLIN, 0}};
    int ctl_open = 1;

    /* only ever run by secretfile_start, with those descriptors */
    if (fcntl(HOLDER_CTL, F_GETFD) < 0 || fcntl(HOLDER_PIDFD, F_GETFD) < 0) {
        fprintf(stderr, "%s: internal to hive-run --file; not to be run by hand\n", SECRETFILE_HOLDER_NAME);
        return 125;
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (write(HOLDER_CTL, "R", 1) != 1)
        return 125;
    for (;;) {
        int r = poll(pf, ctl_open ? 2 : 1, -1);
        if (r < 0 && errno != EINTR)
            return 125;
        if (r <= 0)
            continue;
        if (pf[0].revents != 0)
            return 0;   /* the process it serves has ended: the files go with this one */
        if (ctl_open && pf[1].revents != 0)
            holder_take(&ctl_open);
    }
}
