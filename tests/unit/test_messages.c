/*
 * What the tools say is never cut: hive-run's error line carries the whole
 * of a long usage id (it was cut at 2 KiB).
 */
#include "testutil.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Run argv; its stderr into err (NUL-terminated); its exit status. */
static int run_stderr(char *const argv[], char *err, size_t size)
{
    posix_spawn_file_actions_t fa;
    int p[2];
    pid_t pid;
    size_t got = 0;
    ssize_t n;
    int status = -1;

    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0, "cannot run %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    while (got + 1 < size && (n = read(p[0], err + got, size - 1 - got)) > 0)
        got += (size_t)n;
    err[got] = '\0';
    close(p[0]);
    waitpid(pid, &status, 0);
    return status;
}

Test(messages, hive_run_says_a_long_usage_id_whole)
{
    static char id[3001];
    static char want[3100];
    static char err[16384];
    char home[] = "/tmp/hive-messages-XXXXXX";
    char cmd[64];
    char prog[] = HIVE_RUN_PATH, usage[] = "--usage", dashes[] = "--", prog2[] = "true";
    char *argv[] = {prog, usage, id, dashes, prog2, NULL};
    int status;

    memset(id, 'u', sizeof(id) - 1);
    cr_assert_not_null(mkdtemp(home));
    setenv("HIVE_HOME", home, 1);
    status = run_stderr(argv, err, sizeof(err));
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 125, "status %d", status);
    snprintf(want, sizeof(want), "hive-run: error: No usage spec registered for '%s'\n", id);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "cut: %zu bytes said", strcspn(err, "\n"));
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}
