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

static char server_url[256];
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
    snprintf(server_url, sizeof(server_url), "%s", url);
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

/* A memory store with the credentials of table (rows {id, key, value},
 * ended by a NULL id) that finds Aden at the test server with api_key
 * (NULL: none given, so the stored aden_api_key is used). */
static hive_store *aden_store(const char *const (*table)[3], const char *api_key)
{
    hive_aden_options ao = HIVE_ADEN_OPTIONS_INIT;
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    hive_storage *mem = NULL;
    hive_store *st = NULL;

    ao.url = server_url;
    ao.api_key = api_key;
    ao.timeout = 20;
    so.aden = &ao;
    cr_assert_eq(hive_memory_storage_new(&mem), HIVE_OK);
    for (size_t i = 0; table != NULL && table[i][0] != NULL; i++) {
        hive_cred *c = NULL;
        cr_assert_eq(hive_cred_new(&c, table[i][0], "api_key"), HIVE_OK);
        cr_assert_eq(hive_cred_set_key(c, table[i][1], table[i][2], strlen(table[i][2]), NULL), HIVE_OK);
        cr_assert_eq(hive_storage_save(mem, c), HIVE_OK);
        hive_cred_free(&c);
    }
    cr_assert_eq(hive_store_new(&st, mem, &so), HIVE_OK, "%s", hive_last_error());
    return st;
}

static hive_store *empty_store(void)
{
    return aden_store(NULL, KEY);
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
    hive_store *st = aden_store(NULL, "not-the-key");
    bool valid = true;
    char why[64];

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_ERR_PERM);
    cr_expect_str_eq(hive_last_error(), "Agent API key is invalid or revoked");
    cr_expect_null(strstr(hive_last_error(), "not-the-key"));
    hive_store_free(&st);
}

Test(aden, validate_with_the_key_from_the_store)
{
    static const char *const table[][3] = {{"aden_api_key", "api_key", KEY}, {NULL, NULL, NULL}};
    hive_store *st = aden_store(table, NULL);
    bool valid = false;
    char why[64];

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_OK, "%s", hive_last_error());
    cr_expect(valid);
    hive_store_free(&st);
}

Test(aden, validate_without_a_key)
{
    hive_store *st = aden_store(NULL, NULL);
    bool valid = true;
    char why[64];

    cr_assert_eq(hive_aden_validate(st, &valid, why, sizeof(why), "int-ok"), HIVE_ERR_NO_KEY);
    cr_expect_str_eq(hive_last_error(), "no Aden API key: set ADEN_API_KEY or store it as the "
                                        "credential aden_api_key (key api_key)");
    hive_store_free(&st);
}

Test(aden, sync_counts_into_a_result_started_from_its_init)
{
    hive_store *st = empty_store();
    hive_aden_sync_result res = HIVE_ADEN_SYNC_RESULT_INIT;

    cr_assert_eq(hive_aden_sync(st, &res), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(res.size, sizeof(res));
    cr_expect_eq(res.listed, 2);
    cr_expect_eq(res.synced, 1);
    cr_expect_eq(res.skipped, 1);
    cr_expect_eq(res.failed, 0);
    hive_store_free(&st);
}

Test(aden, sync_refuses_a_result_of_an_unknown_size)
{
    hive_store *st = empty_store();
    hive_aden_sync_result res = HIVE_ADEN_SYNC_RESULT_INIT;
    hive_cred *c = NULL;

    res.size = sizeof(res) - sizeof(size_t);   /* a caller built against an older header */
    res.listed = 7;
    cr_assert_eq(hive_aden_sync(st, &res), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "HIVE_ADEN_SYNC_RESULT_INIT"), "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), "hive_aden_sync_result"), "%s", hive_last_error());
    cr_expect_eq(res.listed, 7, "nothing written into a struct of the wrong size");
    cr_expect_neq(hive_store_get_credential(st, &c, "int-ok", HIVE_GET_NO_REFRESH), HIVE_OK,
                  "Aden was not asked");
    hive_store_free(&st);
}
