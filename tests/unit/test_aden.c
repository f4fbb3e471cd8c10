/*
 * hive_aden_validate against the local Aden API (tests/aden/server.py),
 * started for each test in a Python child that serves until its stdin
 * closes (so it also ends when the test dies).
 */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY "aden-unit-key-0123456789"

static pid_t server_pid = -1;
static int server_stdin = -1;
static int server_stdout = -1;

/* Two integrations: int-ok (active) and int-off (expired, as Aden says). */
static const char server_script[] =
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from server import AdenServer\n"
    "s = AdenServer(api_key=sys.argv[2])\n"
    "s.add('int-ok', 'github', 'work')\n"
    "s.add('int-off', 'slack', 'team', status='expired')\n"
    "print(s.url, flush=True)\n"
    "sys.stdin.read()\n"
    "s.close()\n";

static void start_server(void)
{
    int in[2], out[2];
    char url[256] = "";
    size_t got = 0;
    ssize_t n;

    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    server_pid = fork();
    cr_assert_neq(server_pid, -1);
    if (server_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(PYTHON, PYTHON, "-c", server_script, ADEN_DIR, KEY, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    server_stdin = in[1];
    server_stdout = out[0];
    /* the whole line: the server dies of a broken pipe if its stdout closes
     * before it has written all of it */
    while (got < sizeof(url) - 1 && strchr(url, '\n') == NULL &&
           (n = read(server_stdout, url + got, sizeof(url) - 1 - got)) > 0)
        got += (size_t)n;
    cr_assert(strchr(url, '\n') != NULL, "the Aden test server did not start (%s %s/server.py)", PYTHON, ADEN_DIR);
    url[strcspn(url, "\n")] = '\0';
    cr_assert(strncmp(url, "http://127.0.0.1:", 17) == 0, "server said: %s", url);
    setenv("ADEN_API_URL", url, 1);
    setenv("ADEN_API_KEY", KEY, 1);
    setenv("ADEN_TIMEOUT", "20", 1);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
}

static void stop_server(void)
{
    int status;

    if (server_stdin >= 0)
        close(server_stdin);
    if (server_pid > 0)
        waitpid(server_pid, &status, 0);
    if (server_stdout >= 0)
        close(server_stdout);
    server_stdin = -1;
    server_stdout = -1;
    server_pid = -1;
}

TestSuite(aden, .init = start_server, .fini = stop_server);

static hive_store *empty_store(void)
{
    static const char *const none[][3] = {{NULL, NULL, NULL}};
    hive_store *st = NULL;

    cr_assert_eq(hive_store_for_testing(&st, none), HIVE_OK);
    return st;
}

Test(aden, validate_an_active_integration)
{
    hive_store *st = empty_store();
    bool valid = false;
    char why[64];

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_OK, "%s", hive_last_error());
    cr_expect(valid);
    cr_expect_str_eq(why, "active");
    hive_store_free(&st);
}

Test(aden, validate_an_expired_integration_says_why)
{
    hive_store *st = empty_store();
    bool valid = true;
    char why[64];

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-off"), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(valid);
    cr_expect_str_eq(why, "integration is expired");
    hive_store_free(&st);
}

Test(aden, validate_cuts_the_reason_to_its_buffer)
{
    hive_store *st = empty_store();
    bool valid = true;
    char why[11];

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-off"), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(valid);
    cr_expect_str_eq(why, "integratio");
    hive_store_free(&st);
}

Test(aden, validate_an_unknown_integration)
{
    hive_store *st = empty_store();
    bool valid = true;
    char why[64] = "untouched";

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-nope"), HIVE_ERR_NOT_FOUND);
    cr_expect_str_eq(hive_last_error(), "Integration not found: /v1/credentials/int-nope/validate");
    cr_expect_str_eq(why, "untouched", "why is written only on success");
    hive_store_free(&st);
}

Test(aden, validate_with_a_wrong_key)
{
    hive_store *st = empty_store();
    bool valid = true;
    char why[64];

    setenv("ADEN_API_KEY", "not-the-key", 1);
    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_ERR_PERM);
    cr_expect_str_eq(hive_last_error(), "Agent API key is invalid or revoked");
    cr_expect_null(strstr(hive_last_error(), "not-the-key"));
    hive_store_free(&st);
}

Test(aden, validate_with_the_key_from_the_store)
{
    static const char *const table[][3] = {{"aden_api_key", "api_key", KEY}, {NULL, NULL, NULL}};
    hive_store *st = NULL;
    bool valid = false;
    char why[64];

    unsetenv("ADEN_API_KEY");
    cr_assert_eq(hive_store_for_testing(&st, table), HIVE_OK);
    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_OK, "%s", hive_last_error());
    cr_expect(valid);
    hive_store_free(&st);
}

Test(aden, validate_without_a_key)
{
    hive_store *st = empty_store();
    bool valid = true;
    char why[64];

    unsetenv("ADEN_API_KEY");
    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_ERR_NO_KEY);
    cr_expect_str_eq(hive_last_error(), "no Aden API key: set ADEN_API_KEY or store it as the "
                                        "credential aden_api_key (key api_key)");
    hive_store_free(&st);
}
