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
    cr_expect_eq(hive_file_storage_open(&s, NULL), HIVE_ERR_INVALID);
    cr_expect(strstr(hive_last_error(), "set HIVE_HOME") != NULL, "%s", hive_last_error());
    /* the etcd cache used to fall back to /tmp/.hive, where anyone can
     * create the directory first */
    cr_expect_eq(hive_etcd_storage_open(&s, "etcd://127.0.0.1:9/p", NULL), HIVE_ERR_INVALID,
                 "opened, with its cache in a shared directory");
    cr_expect(strstr(hive_last_error(), "set HIVE_HOME") != NULL, "%s", hive_last_error());
    hive_storage_free(&s);
}
