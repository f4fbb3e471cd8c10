/*
 * fork_reader - forks (no exec); the child reads NAME with getenv() every
 * INTERVAL ms for SECONDS seconds and prints each distinct value once, as
 * token_reader does. The parent waits and passes on the child's status.
 *   fork_reader NAME SECONDS [INTERVAL_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *name;
    double seconds;
    long interval = 500;
    char last[8192] = "";
    struct timespec t0, now;
    pid_t pid;
    int status;

    if (argc < 3)
        return 2;
    name = argv[1];
    seconds = atof(argv[2]);
    if (argc > 3)
        interval = atol(argv[3]);
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid > 0) {
        if (waitpid(pid, &status, 0) < 0)
            return 2;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const char *v = getenv(name);
        double el;
        clock_gettime(CLOCK_MONOTONIC, &now);
        el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (v != NULL && strcmp(v, last) != 0) {
            printf("%.2f %s\n", el, v);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", v);
        }
        if (el >= seconds)
            break;
        usleep((useconds_t)interval * 1000);
    }
    _exit(0);
}
