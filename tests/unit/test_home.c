/*
 * One HIVE_HOME resolver for the file and the etcd storages: $HIVE_HOME,
 * else $HOME/.hive, else the password database's home; never a shared,
 * world-writable default such as /tmp/.hive.
 */
#include "testutil.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <unistd.h>

/* library-internal (store/src/internal.h) */
char *hive__home_dir(void);

static void no_home_variables(void)
{
    unsetenv("HIVE_HOME");
    unsetenv("HOME");
    unsetenv("HIVE_ETCD_USER");
    setenv("HIVE_CREDENTIAL_KEY", "", 1);
}

TestSuite(home, .init = no_home_variables);

Test(home, hive_home_then_home_then_the_password_database)
{
    struct passwd *pw = getpwuid(geteuid());
    char want[4096];
    char *h;

    setenv("HIVE_HOME", "/srv/hive-home", 1);
    setenv("HOME", "/home/someone", 1);
    h = hive__home_dir();
    cr_expect_str_eq(h, "/srv/hive-home");
    free(h);
    unsetenv("HIVE_HOME");
    h = hive__home_dir();
    cr_expect_str_eq(h, "/home/someone/.hive");
    free(h);
    setenv("HOME", "", 1);
    cr_assert_not_null(pw, "this test's user has no password database entry");
    snprintf(want, sizeof(want), "%s/.hive", pw->pw_dir);
    h = hive__home_dir();
    cr_expect_str_eq(h, want);
    free(h);
}

/* Become a user with no password database entry (this test runs in a
 * process of its own): setuid as root, else a user namespace. */
static void become_unknown_user(void)
{
    uid_t uid = 54321;
    char map[64];
    int fd;

    while (getpwuid(uid) != NULL)
        uid++;
    if (geteuid() == 0) {
        cr_assert_eq(setgroups(0, NULL), 0);
        cr_assert_eq(setresgid(uid, uid, uid), 0);
        cr_assert_eq(setresuid(uid, uid, uid), 0, "cannot become uid %u", (unsigned)uid);
        return;
    }
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)geteuid());
    cr_assert_eq(unshare(CLONE_NEWUSER), 0,
                 "cannot become a user without a password entry: not root, and no user namespaces");
    fd = open("/proc/self/uid_map", O_WRONLY);
    cr_assert(fd >= 0 && write(fd, map, strlen(map)) == (ssize_t)strlen(map), "cannot write uid_map");
    close(fd);
    cr_assert_eq(geteuid(), uid);
}

Test(home, no_home_at_all_is_an_error_for_both_storages)
{
    hive_storage *s = NULL;

    become_unknown_user();
    cr_assert_null(getpwuid(geteuid()));
    cr_expect_null(hive__home_dir());
    cr_expect_eq(hive_storage_open_from_env(&s, NULL, NULL), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "cannot find the home directory: set HIVE_HOME");
    /* the etcd cache used to fall back to /tmp/.hive, where anyone can
     * create the directory first */
    cr_expect_eq(hive_storage_open_from_env(&s, "etcd://127.0.0.1:9/p", NULL), HIVE_ERR_INVALID,
                 "opened, with its cache in a shared directory");
    cr_expect_str_eq(hive_last_error(), "cannot find the home directory for the etcd cache: set HIVE_HOME");
    hive_storage_free(&s);
}

/* The explicit entry points read no HIVE_HOME, HIVE_ETCD_USER or
 * HIVE_ETCD_PASSWORD: only the _from_env ones do. */
Test(home, only_the_from_env_entry_points_read_the_environment)
{
    char home[] = "/tmp/hive-home-env-XXXXXX";
    char cmd[64];
    hive_storage *s = NULL;
    hive_store *st = NULL;
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;

    cr_assert_not_null(mkdtemp(home));
    setenv("HIVE_HOME", home, 1);
    setenv("HIVE_ETCD_USER", "envuser", 1);
    setenv("HIVE_ETCD_PASSWORD", "envpass", 1);

    cr_expect_eq(hive_storage_open(&s, NULL, NULL), HIVE_ERR_INVALID, "HIVE_HOME was read");
    cr_expect_not_null(strstr(hive_last_error(), "no store directory: set hive_file_options.dir or .home"),
                       "%s", hive_last_error());
    cr_expect_eq(hive_store_open(&st, NULL, NULL), HIVE_ERR_INVALID, "HIVE_HOME was read");
    cr_expect_eq(hive_etcd_storage_open(&s, "etcd://127.0.0.1:9/p", NULL), HIVE_ERR_INVALID, "HIVE_HOME was read");
    cr_expect_not_null(strstr(hive_last_error(), "set hive_file_options.home"), "%s", hive_last_error());

    /* with a home given, no user: HIVE_ETCD_USER is not read (its plain
     * http to a remote host would be refused with a user) */
    fo.home = home;
    cr_expect_eq(hive_etcd_storage_open(&s, "etcd://10.255.255.1:9/p", &fo), HIVE_OK, "%s", hive_last_error());
    hive_storage_free(&s);
    /* as the tools open it, the user from HIVE_ETCD_USER is there */
    cr_expect_eq(hive_storage_open_from_env(&s, "etcd://10.255.255.1:9/p", NULL), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "etcd user 'envuser' over plain http"), "%s", hive_last_error());

    cr_expect_eq(hive_storage_open_from_env(&s, NULL, NULL), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(strncmp(hive_file_storage_dir(s), home, strlen(home)), 0, "%s", hive_file_storage_dir(s));
    hive_storage_free(&s);
    cr_expect_eq(hive_store_open_from_env(&st, NULL, NULL), HIVE_OK, "%s", hive_last_error());
    hive_store_free(&st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}

/* Every options struct says its size; one this libhive does not know is
 * refused, naming the macro to start from. */
Test(home, an_options_struct_of_an_unknown_size_is_refused)
{
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    hive_aden_options ao = HIVE_ADEN_OPTIONS_INIT;
    hive_storage *s = NULL;
    hive_storage *mem = NULL;
    hive_store *st = NULL;

    fo.dir = "/nonexistent/hive";
    fo.size = 0;
    cr_expect_eq(hive_file_storage_open(&s, &fo), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "hive_file_options.size is 0, not a size this libhive knows"),
                       "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), "start the options from HIVE_FILE_OPTIONS_INIT"), "%s",
                       hive_last_error());
    fo.size = sizeof(fo) + 8;
    cr_expect_eq(hive_storage_open(&s, "/nonexistent/hive", &fo), HIVE_ERR_INVALID);
    cr_expect_eq(hive_storage_open_from_env(&s, "/nonexistent/hive", &fo), HIVE_ERR_INVALID);
    cr_expect_eq(hive_etcd_storage_open(&s, "etcd://127.0.0.1:9/p", &fo), HIVE_ERR_INVALID);
    cr_expect_null(s);
    fo.size = sizeof(fo);
    cr_expect_eq(hive_file_storage_open(&s, &fo), HIVE_OK, "%s", hive_last_error());
    hive_storage_free(&s);

    so.size = sizeof(so) - 1;
    cr_assert_eq(hive_memory_storage_new(&mem), HIVE_OK);
    cr_expect_eq(hive_store_new(&st, mem, &so), HIVE_ERR_INVALID, "the storage is taken also on failure");
    cr_expect_not_null(strstr(hive_last_error(), "hive_store_options.size"), "%s", hive_last_error());
    cr_expect_eq(hive_store_open(&st, "/nonexistent/hive", &so), HIVE_ERR_INVALID);
    cr_expect_eq(hive_store_open_from_env(&st, "/nonexistent/hive", &so), HIVE_ERR_INVALID);
    so.size = sizeof(so);
    so.storage = &fo;
    fo.size = 1;
    cr_expect_eq(hive_store_open(&st, "/nonexistent/hive", &so), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "hive_file_options.size is 1"), "%s", hive_last_error());
    so.storage = NULL;
    so.aden = &ao;
    ao.size = 3;
    cr_assert_eq(hive_memory_storage_new(&mem), HIVE_OK);
    cr_expect_eq(hive_store_new(&st, mem, &so), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "hive_aden_options.size is 3"), "%s", hive_last_error());
    cr_expect_null(st);
}
