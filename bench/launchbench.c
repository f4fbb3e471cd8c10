/*
 * launchbench - time whole-program launches, interleaved, and print the
 * median of each. Usage:
 *   launchbench ROUNDS NAME -- CMD ARGS... ;; NAME -- CMD ARGS... ;; ...
 * Each round runs every command once, in turn, so that machine noise hits
 * them alike; the ratios between medians are what to read. Each line:
 * NAME p50 p95 p99, in seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define MAX_CMDS 16

typedef struct cmd {
    const char *name;
    char **argv;
    double *t;
} cmd;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double run_once(char **argv)
{
    double t0 = now();
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "launchbench: %s failed (status %d)\n", argv[0], status);
        exit(1);
    }
    return now() - t0;
}

int main(int argc, char **argv)
{
    cmd cmds[MAX_CMDS];
    int n = 0;
    int rounds;

    if (argc < 5) {
        fprintf(stderr, "usage: launchbench ROUNDS NAME -- CMD... [;; NAME -- CMD...]\n");
        return 2;
    }
    rounds = atoi(argv[1]);
    for (int i = 2; i < argc && n < MAX_CMDS;) {
        cmds[n].name = argv[i];
        if (i + 1 >= argc || strcmp(argv[i + 1], "--") != 0) {
            fprintf(stderr, "launchbench: expected -- after %s\n", argv[i]);
            return 2;
        }
        cmds[n].argv = &argv[i + 2];
        i += 2;
        while (i < argc && strcmp(argv[i], ";;") != 0)
            i++;
        if (i < argc)
            argv[i++] = NULL;
        cmds[n].t = calloc((size_t)rounds, sizeof(double));
        n++;
    }
    for (int k = 0; k < n; k++)   /* warm the page cache */
        run_once(cmds[k].argv);
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n; k++)
            cmds[k].t[r] = run_once(cmds[k].argv);
    for (int k = 0; k < n; k++) {
        qsort(cmds[k].t, (size_t)rounds, sizeof(double), cmp_double);
        /* the median, then the 95th and 99th percentiles */
        printf("%s %.6f %.6f %.6f\n", cmds[k].name, cmds[k].t[rounds / 2], cmds[k].t[rounds * 95 / 100],
               cmds[k].t[rounds * 99 / 100]);
    }
    return 0;
}
