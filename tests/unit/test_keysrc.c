/*
 * Where the store key comes from (store/src/keys.c, keycmd.c, keyfile.c):
 * HIVE_CREDENTIAL_KEY_COMMAND run for real (scripts written here, cat),
 * its failures, time-out and output checks; a systemd credentials
 * directory ($CREDENTIALS_DIRECTORY with a 0400 file) and its checks; the
 * order of the sources; and the rotation of a key kept outside the key
 * file, killed half way and finished. tests/cli/test_keysrc.py covers
 * hive-cred (doctor, rotate-key, systemd-creds).
 */
#include "testutil.h"
#include "keycmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OLD_KEY "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI="
#define NEW_KEY "MoXhix2D4gr1vwiwZM61LpoUmk5VOe97ljatQD2Vz3A="
#define OTHER_KEY "cE6kL2kNIN-giZabTxFG-pLVFt1fyfv5UqfUsCQvkYA="

static char home[256];
static char dir[300];
static char key_file[300];
static char creds_dir[300];   /* a systemd credentials directory */
static char marker[340];

static void unset_all(void)
{
    unsetenv(HIVE_ENV_KEY);
    unsetenv(HIVE_ENV_NEW_KEY);
    unsetenv(HIVE_ENV_KEY_COMMAND);
    unsetenv(HIVE_ENV_KEY_COMMAND_TIMEOUT);
    unsetenv(HIVE_ENV_CREDENTIALS_DIRECTORY);
}

static void make_home(void)
{
    snprintf(home, sizeof(home), "/tmp/hive-keysrc-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    snprintf(dir, sizeof(dir), "%s/credentials", home);
    snprintf(key_file, sizeof(key_file), "%s/secrets/credential_key", home);
    snprintf(creds_dir, sizeof(creds_dir), "%s/creds", home);
    snprintf(marker, sizeof(marker), "%s/metadata/key-rotation.json", dir);
    cr_assert_eq(mkdir(creds_dir, 0700), 0);
    unset_all();
}

static void remove_home(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", home, home);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(keysrc, .init = make_home, .fini = remove_home, .timeout = 60);

/* home/name holding text, mode mode; its path in path. */
static void write_file(char *path, size_t size, const char *name, const char *text, mode_t mode)
{
    int fd;

    snprintf(path, size, "%s/%s", home, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

/* An executable script home/name with body (after #!/bin/sh). */
static void script(char *path, size_t size, const char *name, const char *body)
{
    char text[2048];

    snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
    write_file(path, size, name, text, 0700);
}

/* A store under OLD_KEY (given) holding "one" and "two". */
static void fill_store(void)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    bool made = true;

    o.dir = dir;
    o.key = OLD_KEY;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    cr_assert_eq(hive_file_storage_init(s, &made), HIVE_OK, "%s", hive_last_error());
    save_api_key(s, "one", "first-secret");
    save_api_key(s, "two", "second-secret");
    hive_storage_free(&s);
}

/* A storage of the store whose key comes from the environment now. */
static hive_storage *open_env(void)
{
    hive_storage *s = NULL;
    hive_key_source *ks = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;

    cr_assert_eq(hive_key_source_from_env(&ks), HIVE_OK);
    o.dir = dir;
    o.key_source = ks;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    hive_key_source_free(&ks);
    cr_assert_null(ks);
    return s;
}

/* "one"'s value through s, or NULL (hive_last_error says why). */
static char *value_of(hive_storage *s, const char *id)
{
    hive_cred *c = NULL;
    char *v = NULL;

    if (hive_storage_load(s, &c, id) == HIVE_OK)
        v = strdup(hive_cred_get_key(c, "api_key", NULL));
    hive_cred_free(&c);
    return v;
}

static void expect_reads(hive_storage *s)
{
    char *one = value_of(s, "one");
    char *two = value_of(s, "two");

    cr_expect_str_eq(one ? one : hive_last_error(), "first-secret");
    cr_expect_str_eq(two ? two : hive_last_error(), "second-secret");
    free(one);
    free(two);
}

/* The load of "one" fails with rc, and no key appears in the message. */
static void expect_load_fails(hive_storage *s, hive_rc rc, const char *part)
{
    hive_cred *c = NULL;

    cr_assert_eq(hive_storage_load(s, &c, "one"), rc, "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), part), "%s: no '%s'", hive_last_error(), part);
    cr_expect_null(strstr(hive_last_error(), OLD_KEY));
    cr_expect_null(strstr(hive_last_error(), NEW_KEY));
    cr_expect_null(strstr(hive_last_error(), "CDYCcZR9"));
}

/* --- splitting the command ---------------------------------------------- */

static void expect_words(const char *command, const char *const *want)
{
    char **argv = NULL;
    size_t i = 0;

    cr_assert_eq(hive__key_command_split(&argv, command), HIVE_OK, "%s: %s", command, hive_last_error());
    for (; want[i] != NULL; i++)
        cr_expect_str_eq(argv[i] ? argv[i] : "(none)", want[i], "%s: word %zu", command, i);
    cr_expect_null(argv[i], "%s: more words than %zu", command, i);
    hive__key_command_free(&argv);
    cr_assert_null(argv);
}

Test(keysrc, command_words_are_split_without_a_shell)
{
    expect_words("pass show hive/key", (const char *const[]){"pass", "show", "hive/key", NULL});
    expect_words("  secret-tool\tlookup  service hive ", (const char *const[]){"secret-tool", "lookup", "service",
                                                                            "hive", NULL});
    expect_words("cat 'my key file' \"a \\\"b\\\" \\\\c \\d\"",
                 (const char *const[]){"cat", "my key file", "a \"b\" \\c \\d", NULL});
    expect_words("a\\ b c''d \"\"", (const char *const[]){"a b", "cd", "", NULL});
    /* nothing else is special: no variable, no ~, no glob */
    expect_words("cat ~/k* '$HOME' \"|\"", (const char *const[]){"cat", "~/k*", "$HOME", "|", NULL});
}

Test(keysrc, command_faults_are_named)
{
    static const struct {
        const char *command;
        const char *message;
    } cases[] = {
        {"pass show 'hive", HIVE_ENV_KEY_COMMAND " has a ' that is not closed"},
        {"pass \"show", HIVE_ENV_KEY_COMMAND " has a \" that is not closed"},
        {"pass show\\", HIVE_ENV_KEY_COMMAND " ends with a \\"},
        {"   ", HIVE_ENV_KEY_COMMAND " names no program"},
        {"pass show k | head -1", HIVE_ENV_KEY_COMMAND " is run without a shell, and has an unquoted '|': quote it, "
                                  "or run a shell: sh -c '...'"},
        {"gpg -d k.gpg > /dev/null", NULL},
        {"echo $KEY", NULL},
        {"a;b", NULL},
        {"a && b", NULL},
        {"x `y`", NULL},
        {"(x)", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char **argv = NULL;
        cr_expect_eq(hive__key_command_split(&argv, cases[i].command), HIVE_ERR_INVALID, "%s", cases[i].command);
        cr_expect_null(argv);
        if (cases[i].message != NULL)
            cr_expect_str_eq(hive_last_error(), cases[i].message);
        else
            cr_expect_not_null(strstr(hive_last_error(), "run without a shell"), "%s", hive_last_error());
    }
}

Test(keysrc, command_time_limit_setting)
{
    double t = 0;

    cr_assert_eq(hive__key_command_timeout(&t, NULL), HIVE_OK);
    cr_expect_eq(t, 10.0);
    cr_assert_eq(hive__key_command_timeout(&t, "2.5"), HIVE_OK);
    cr_expect_eq(t, 2.5);
    cr_assert_eq(hive__key_command_timeout(&t, "3600"), HIVE_OK);
    for (size_t i = 0; i < 5; i++) {
        const char *bad[] = {"0", "-1", "5x", "3601", "ten"};
        cr_expect_eq(hive__key_command_timeout(&t, bad[i]), HIVE_ERR_INVALID, "%s", bad[i]);
        cr_expect_not_null(strstr(hive_last_error(), HIVE_ENV_KEY_COMMAND_TIMEOUT "="), "%s", hive_last_error());
    }
}

/* --- the command, run ------------------------------------------------- */

Test(keysrc, command_output_is_the_key)
{
    char path[400];
    hive_storage *s;

    fill_store();
    script(path, sizeof(path), "print-key", "printf '%s\\n' " OLD_KEY);
    setenv(HIVE_ENV_KEY_COMMAND, path, 1);
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_COMMAND);
    {
        char want[500];
        snprintf(want, sizeof(want), HIVE_ENV_KEY_COMMAND " (%s)", path);
        cr_expect_str_eq(hive_file_storage_key_source(s), want);
    }
    expect_reads(s);
    cr_expect_null(hive_file_storage_pending_key_file(s));
    hive_storage_free(&s);
}

Test(keysrc, command_found_on_PATH_with_arguments)
{
    char path[400];
    char command[600];
    hive_storage *s;

    fill_store();
    /* a key file of a password manager, read by cat; \r\n trimmed too */
    write_file(path, sizeof(path), "vault key", OLD_KEY "\r\n", 0600);
    snprintf(command, sizeof(command), "cat '%s'", path);
    setenv(HIVE_ENV_KEY_COMMAND, command, 1);
    s = open_env();
    expect_reads(s);
    cr_expect_str_eq(hive_file_storage_key_source(s), HIVE_ENV_KEY_COMMAND " (cat)");
    hive_storage_free(&s);
}

Test(keysrc, command_runs_once_per_handle)
{
    char path[400];
    char count[400];
    char body[900];
    hive_storage *s;
    size_t len = 0;
    char *text;

    fill_store();
    snprintf(count, sizeof(count), "%s/runs", home);
    snprintf(body, sizeof(body), "echo run >> '%s'\necho " OLD_KEY, count);
    script(path, sizeof(path), "counted", body);
    setenv(HIVE_ENV_KEY_COMMAND, path, 1);
    s = open_env();
    expect_reads(s);
    save_api_key(s, "three", "third-secret");
    expect_reads(s);
    hive_storage_free(&s);
    text = slurp(count, &len);
    cr_expect_str_eq(text, "run\n");
    free(text);
}

Test(keysrc, command_stdin_is_not_the_callers)
{
    hive_storage *s;
    int p[2];

    fill_store();
    /* cat without a file reads stdin: /dev/null, not the caller's pipe */
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], OLD_KEY "\n", strlen(OLD_KEY) + 1), (ssize_t)strlen(OLD_KEY) + 1);
    cr_assert(dup2(p[0], STDIN_FILENO) >= 0);
    setenv(HIVE_ENV_KEY_COMMAND, "cat", 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND " (cat) printed no key");
    hive_storage_free(&s);
    /* and what the caller's stdin held is still there */
    {
        char buf[64] = "";
        cr_assert_eq(read(STDIN_FILENO, buf, sizeof(buf) - 1), (ssize_t)strlen(OLD_KEY) + 1);
    }
}

Test(keysrc, command_sees_no_store_key_in_its_environment)
{
    char path[400];
    char out[400];
    char body[900];
    hive_storage *s;
    char *text;

    fill_store();
    snprintf(out, sizeof(out), "%s/env", home);
    snprintf(body, sizeof(body), "env > '%s'\necho " OLD_KEY, out);
    script(path, sizeof(path), "env-key", body);
    setenv(HIVE_ENV_KEY_COMMAND, path, 1);
    setenv(HIVE_ENV_NEW_KEY, NEW_KEY, 1);
    setenv("HIVE_UNIT_MARK", "seen", 1);
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_COMMAND, "%s", hive_last_error());
    hive_storage_free(&s);
    text = slurp(out, NULL);
    cr_expect_not_null(strstr(text, "HIVE_UNIT_MARK=seen"));
    cr_expect_null(strstr(text, HIVE_ENV_NEW_KEY));
    cr_expect_null(strstr(text, NEW_KEY));
    free(text);
}

Test(keysrc, command_failures_say_why_and_never_the_output)
{
    static const struct {
        const char *body;
        hive_rc rc;
        const char *message;   /* after "HIVE_CREDENTIAL_KEY_COMMAND (PATH) " */
    } cases[] = {
        {"echo " OLD_KEY "\nexit 3", HIVE_ERR_NO_KEY, "failed: exit status 3"},
        {"echo " OLD_KEY "\nkill -TERM $$", HIVE_ERR_NO_KEY, "was killed by signal 15 (SIGTERM)"},
        {"exit 0", HIVE_ERR_NO_KEY, "printed no key"},
        {"printf '\\n\\n  \\n'", HIVE_ERR_NO_KEY, "printed no key"},
        {"echo 'Enter passphrase: " OLD_KEY "'", HIVE_ERR_BAD_KEY,
         "printed 62 bytes that are not a Fernet key (a character outside base64); it must print the key alone: "
         "urlsafe base64 of 32 bytes"},
        {"echo " OLD_KEY "; echo " NEW_KEY, HIVE_ERR_BAD_KEY,
         "printed 89 bytes that are not a Fernet key (more than one line)"},
        {"echo CDYCcZR9HSFJhGdO3tDSUBI4JyY", HIVE_ERR_BAD_KEY,
         "printed 27 characters that are not a Fernet key: urlsafe base64 of 32 bytes"},
        {"head -c 5000 /dev/zero | tr '\\0' A", HIVE_ERR_BAD_KEY, NULL},
    };
    fill_store();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[400];
        char name[32];
        char want[1024];
        hive_storage *s;
        snprintf(name, sizeof(name), "case-%zu", i);
        script(path, sizeof(path), name, cases[i].body);
        setenv(HIVE_ENV_KEY_COMMAND, path, 1);
        s = open_env();
        if (cases[i].message != NULL)
            snprintf(want, sizeof(want), HIVE_ENV_KEY_COMMAND " (%s) %s", path, cases[i].message);
        else
            snprintf(want, sizeof(want), HIVE_ENV_KEY_COMMAND " printed more than 4096 bytes, which is no key");
        expect_load_fails(s, cases[i].rc, want);
        cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_NONE);
        cr_expect_null(hive_file_storage_key_source(s));
        hive_storage_free(&s);
    }
}

Test(keysrc, command_not_found)
{
    hive_storage *s;
    char command[400];

    fill_store();
    setenv(HIVE_ENV_KEY_COMMAND, "hive-no-such-program --flag", 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_NO_KEY, HIVE_ENV_KEY_COMMAND ": cannot run hive-no-such-program: not found on PATH");
    hive_storage_free(&s);
    snprintf(command, sizeof(command), "%s/missing", home);
    setenv(HIVE_ENV_KEY_COMMAND, command, 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_NO_KEY, "not found");
    cr_expect_null(strstr(hive_last_error(), "on PATH"));
    hive_storage_free(&s);
    /* a malformed command fails when the key is needed, not at open */
    setenv(HIVE_ENV_KEY_COMMAND, "pass 'x", 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_INVALID, "not closed");
    hive_storage_free(&s);
}

/* Whether process pid is gone (or a zombie nobody reaped yet). */
static bool gone(pid_t pid)
{
    char path[64];
    char buf[256] = "";
    FILE *f;
    char *paren;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return true;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    paren = strrchr(buf, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}

Test(keysrc, command_time_out_kills_its_process_group)
{
    char path[400];
    char pidfile[400];
    char body[900];
    hive_storage *s;
    char *text;
    long child;

    fill_store();
    snprintf(pidfile, sizeof(pidfile), "%s/child.pid", home);
    /* a command that starts a helper of its own and hangs */
    snprintf(body, sizeof(body), "sleep 300 &\necho $! > '%s'\nsleep 300\necho " OLD_KEY, pidfile);
    script(path, sizeof(path), "hangs", body);
    setenv(HIVE_ENV_KEY_COMMAND, path, 1);
    setenv(HIVE_ENV_KEY_COMMAND_TIMEOUT, "0.5", 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_NO_KEY, "did not finish within 0.5 s (" HIVE_ENV_KEY_COMMAND_TIMEOUT "), and was killed");
    hive_storage_free(&s);
    text = slurp(pidfile, NULL);
    child = strtol(text, NULL, 10);
    free(text);
    cr_assert_gt(child, 1);
    /* SIGKILL is delivered before kill() returns; the helper's parent
     * reaps it, or init does: give that a moment */
    for (int i = 0; i < 200 && !gone((pid_t)child); i++)
        usleep(10000);
    cr_expect(gone((pid_t)child), "the command's helper %ld survived the time-out", child);
    /* a malformed limit is an error */
    setenv(HIVE_ENV_KEY_COMMAND_TIMEOUT, "soon", 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_INVALID, HIVE_ENV_KEY_COMMAND_TIMEOUT "=soon");
    hive_storage_free(&s);
}

/* --- systemd credentials ---------------------------------------------- */

/* creds_dir/hive-credential-key holding text, mode mode. */
static void systemd_credential(const char *text, mode_t mode)
{
    char path[400];
    int fd;

    snprintf(path, sizeof(path), "%s/" HIVE_SYSTEMD_KEY_NAME, creds_dir);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(chmod(path, mode), 0);
    setenv(HIVE_ENV_CREDENTIALS_DIRECTORY, creds_dir, 1);
}

Test(keysrc, systemd_credential_is_the_key)
{
    char path[400];
    hive_storage *s;

    fill_store();
    /* as LoadCredential= leaves it: 0400, and 0440 where an ACL gives the
     * service user access (the group bits show the ACL's mask) */
    for (int i = 0; i < 2; i++) {
        systemd_credential(OLD_KEY "\n", i ? 0440 : 0400);
        s = open_env();
        cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_SYSTEMD, "%s", hive_last_error());
        snprintf(path, sizeof(path), "%s/" HIVE_SYSTEMD_KEY_NAME, creds_dir);
        cr_expect_str_eq(hive_file_storage_key_source(s), path);
        expect_reads(s);
        hive_storage_free(&s);
    }
}

Test(keysrc, systemd_credential_checked_like_a_key_file)
{
    char path[400];
    char target[400];
    hive_storage *s;

    fill_store();
    snprintf(path, sizeof(path), "%s/" HIVE_SYSTEMD_KEY_NAME, creds_dir);
    systemd_credential(OLD_KEY, 0444);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_PERM, "is readable by others (mode 0444)");
    hive_storage_free(&s);
    systemd_credential(OLD_KEY, 0420);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_PERM, "is writable by group (mode 0420)");
    hive_storage_free(&s);
    /* another user's: systemd makes it the service user's, or root's */
    systemd_credential(OLD_KEY, 0400);
    if (geteuid() == 0) {
        cr_assert_eq(chown(path, 4242, 4242), 0);
        s = open_env();
        expect_load_fails(s, HIVE_ERR_PERM, "belongs to uid 4242, neither you (uid 0) nor root");
        hive_storage_free(&s);
    }
    /* a symbolic link, to a file that would pass */
    write_file(target, sizeof(target), "elsewhere", OLD_KEY, 0400);
    unlink(path);
    cr_assert_eq(symlink(target, path), 0);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_PERM, "is a symbolic link");
    hive_storage_free(&s);
    /* a directory */
    unlink(path);
    cr_assert_eq(mkdir(path, 0700), 0);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_PERM, "is not a regular file");
    hive_storage_free(&s);
    rmdir(path);
    /* not a key; what it holds is never repeated */
    systemd_credential("CDYCcZR9HSFJhGdO3tDSUBI4\n", 0400);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_BAD_KEY, "does not hold a Fernet key");
    cr_expect_null(strstr(hive_last_error(), "CDYCcZR9HSFJhGdO3tDSUBI4"));
    hive_storage_free(&s);
}

Test(keysrc, systemd_directory_without_the_key_falls_to_the_key_file)
{
    hive_storage *s;
    char other[400];

    fill_store();
    /* the service loads other credentials: the key file is used */
    write_file(other, sizeof(other), "creds/db-password", "x", 0400);
    setenv(HIVE_ENV_CREDENTIALS_DIRECTORY, creds_dir, 1);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_NO_KEY, "the key file");
    hive_storage_free(&s);
    {
        char secrets[400];
        snprintf(secrets, sizeof(secrets), "%s/secrets", home);
        cr_assert_eq(mkdir(secrets, 0700), 0);
        write_file(other, sizeof(other), "secrets/credential_key", OLD_KEY, 0600);
    }
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_FILE, "%s", hive_last_error());
    cr_expect_str_eq(hive_file_storage_key_source(s), key_file);
    expect_reads(s);
    hive_storage_free(&s);
}

/* --- the order of the sources ---------------------------------------- */

Test(keysrc, sources_in_order_the_first_configured_wins)
{
    char path[400];
    char ran[400];
    char body[900];
    hive_storage *s;

    fill_store();
    {
        char secrets[400];
        snprintf(secrets, sizeof(secrets), "%s/secrets", home);
        mkdir(secrets, 0700);
        write_file(path, sizeof(path), "secrets/credential_key", OTHER_KEY, 0600);
    }
    systemd_credential(OTHER_KEY, 0400);
    snprintf(ran, sizeof(ran), "%s/ran", home);
    snprintf(body, sizeof(body), "touch '%s'\necho " OLD_KEY, ran);
    script(path, sizeof(path), "key-command", body);
    setenv(HIVE_ENV_KEY_COMMAND, path, 1);
    setenv(HIVE_ENV_KEY, OLD_KEY, 1);
    /* HIVE_CREDENTIAL_KEY first: the command is not even run */
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_ENV);
    expect_reads(s);
    hive_storage_free(&s);
    cr_expect_neq(access(ran, F_OK), 0, "the command ran");
    /* then the command, over the systemd credential and the key file */
    setenv(HIVE_ENV_KEY, "", 1);   /* empty counts as unset */
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_COMMAND);
    expect_reads(s);
    hive_storage_free(&s);
    /* then the systemd credential, over the key file */
    unsetenv(HIVE_ENV_KEY_COMMAND);
    systemd_credential(OLD_KEY, 0400);
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_SYSTEMD);
    expect_reads(s);
    hive_storage_free(&s);
    /* a configured source that fails is an error, never the next one */
    systemd_credential(OLD_KEY, 0444);
    s = open_env();
    expect_load_fails(s, HIVE_ERR_PERM, "systemd credential");
    hive_storage_free(&s);
    /* the key given by the caller beats them all */
    {
        hive_file_options o = HIVE_FILE_OPTIONS_INIT;
        s = NULL;
        o.dir = dir;
        o.key = OLD_KEY;
        cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
        cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_GIVEN);
        cr_expect_str_eq(hive_file_storage_key_source(s), "explicit");
        hive_storage_free(&s);
    }
}

Test(keysrc, a_source_given_is_copied_and_the_environment_not_read)
{
    hive_key_source *ks = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    hive_storage *s = NULL;

    fill_store();
    setenv(HIVE_ENV_KEY, OLD_KEY, 1);
    cr_assert_eq(hive_key_source_from_env(&ks), HIVE_OK);
    unsetenv(HIVE_ENV_KEY);
    o.dir = dir;
    o.key_source = ks;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    hive_key_source_free(&ks);
    /* set after: not read, the source given is */
    setenv(HIVE_ENV_KEY, OTHER_KEY, 1);
    expect_reads(s);
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_ENV);
    hive_storage_free(&s);
    hive_key_source_free(&ks);   /* NULL: nothing */
    cr_expect_eq(hive_key_source_from_env(NULL), HIVE_ERR_INVALID);
}

/* --- rotation of a key hive cannot write ------------------------------- */

/* The command prints the key in home/cmd-key (the "secret" the user
 * updates after a rotation). */
static void command_key(const char *key)
{
    char path[400];
    char command[600];

    write_file(path, sizeof(path), "cmd-key", key, 0600);
    snprintf(command, sizeof(command), "cat %s", path);
    setenv(HIVE_ENV_KEY_COMMAND, command, 1);
}

/* A progress callback that stops the process after the first file, as a
 * kill half way would. */
static void die_after_first(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    (void)total;
    if (done == 1)
        _exit(0);
}

/* A rotation to the key in new_file (made there), killed after its
 * first file, in a process of its own. */
static void kill_rotation_half_way(const char *new_file)
{
    hive_rotation r = HIVE_ROTATION_INIT;
    int status = 0;
    pid_t pid = fork();

    cr_assert(pid >= 0);
    if (pid == 0) {
        hive_storage *s = open_env();
        /* the callback ends the process after the first file: returning at all is the failure */
        if (hive_file_storage_rotate_key_file(s, new_file, die_after_first, NULL, &r) != HIVE_OK)
            _exit(4);
        _exit(3);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the rotation did not stop half way");
}

Test(keysrc, rotation_of_a_command_key_killed_half_way_and_finished)
{
    char new_file[400];
    hive_rotation r = HIVE_ROTATION_INIT;
    hive_storage *s;

    fill_store();
    command_key(OLD_KEY);
    snprintf(new_file, sizeof(new_file), "%s/new-key", home);
    kill_rotation_half_way(new_file);
    /* the new key went to the file (0600) and the marker names it */
    {
        struct stat st;
        char *m = slurp(marker, NULL);
        cr_assert_eq(stat(new_file, &st), 0);
        cr_expect_eq(st.st_mode & 0777, 0600);
        cr_expect_not_null(strstr(m, new_file), "%s", m);
        cr_expect_not_null(strstr(m, "\"fingerprint\""), "%s", m);
        cr_expect_null(strstr(m, OLD_KEY));
        free(m);
    }
    /* meanwhile every credential is readable: the marker's file gives the
     * new key to readers */
    s = open_env();
    expect_reads(s);
    cr_expect_str_eq(hive_file_storage_pending_key_file(s), new_file);
    /* another key is refused while the rotation is pending */
    {
        char other[400];
        write_file(other, sizeof(other), "other-key", OTHER_KEY, 0600);
        cr_assert_eq(hive_file_storage_rotate_key_file(s, other, NULL, NULL, &r), HIVE_ERR_CONFLICT);
        cr_expect_not_null(strstr(hive_last_error(), "an interrupted rotation to another key is pending: key "),
                           "%s", hive_last_error());
        cr_expect_not_null(strstr(hive_last_error(), new_file));
    }
    /* finished by running again, the file named or not */
    cr_assert_eq(hive_file_storage_rotate_key_file(s, NULL, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(r.total, 2);
    cr_expect_eq(r.already, 1);
    cr_expect_eq(r.rotated, 1);
    cr_expect_not(r.key_file);
    cr_expect_null(hive_file_storage_pending_key_file(s));
    hive_storage_free(&s);
    cr_expect_neq(access(marker, F_OK), 0, "the marker stayed");
    /* the command still prints the old key: nothing opens until it is updated */
    s = open_env();
    expect_load_fails(s, HIVE_ERR_DECRYPT, "Failed to decrypt credential 'one'");
    hive_storage_free(&s);
    {
        char *k = slurp(new_file, NULL);
        command_key(k);
        free(k);
    }
    s = open_env();
    expect_reads(s);
    hive_storage_free(&s);
}

Test(keysrc, rotation_of_a_systemd_key_and_the_marker_file_lost)
{
    char new_file[400];
    hive_rotation r = HIVE_ROTATION_INIT;
    hive_storage *s;

    fill_store();
    systemd_credential(OLD_KEY, 0400);
    snprintf(new_file, sizeof(new_file), "%s/new-key", home);
    kill_rotation_half_way(new_file);
    /* the new key's file is lost: readers go on with the old key (one
     * file fails alone), the rotation cannot go on and says why */
    {
        char moved[400];
        snprintf(moved, sizeof(moved), "%s/moved", home);
        cr_assert_eq(rename(new_file, moved), 0);
        s = open_env();
        cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_SYSTEMD);
        cr_assert_eq(hive_file_storage_rotate_key_file(s, NULL, NULL, NULL, &r), HIVE_ERR_NO_KEY);
        cr_expect_not_null(strstr(hive_last_error(), "which does not exist: restore it"), "%s", hive_last_error());
        hive_storage_free(&s);
        cr_assert_eq(rename(moved, new_file), 0);
    }
    s = open_env();
    cr_assert_eq(hive_file_storage_rotate_key_file(s, new_file, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(r.rotated + r.already, 2);
    hive_storage_free(&s);
    {
        char *k = slurp(new_file, NULL);
        systemd_credential(k, 0400);
        free(k);
    }
    s = open_env();
    expect_reads(s);
    hive_storage_free(&s);
}

Test(keysrc, source_updated_before_the_rotation_finished)
{
    char new_file[400];
    hive_rotation r = HIVE_ROTATION_INIT;
    hive_storage *s;
    char *k;

    fill_store();
    command_key(OLD_KEY);
    snprintf(new_file, sizeof(new_file), "%s/new-key", home);
    kill_rotation_half_way(new_file);
    /* the user updates the command's secret too early */
    k = slurp(new_file, NULL);
    command_key(k);
    s = open_env();
    cr_assert_eq(hive_file_storage_rotate_key_file(s, NULL, NULL, NULL, &r), HIVE_ERR_CONFLICT);
    cr_expect_not_null(strstr(hive_last_error(), "already gives the new key of the interrupted rotation"),
                       "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), "1 credential file(s) are still under the old key"));
    hive_storage_free(&s);
    cr_expect_eq(access(marker, F_OK), 0, "the marker went");
    /* the old key back, the rotation finishes; then the new key */
    command_key(OLD_KEY);
    s = open_env();
    cr_assert_eq(hive_file_storage_rotate_key_file(s, NULL, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    hive_storage_free(&s);
    command_key(k);
    s = open_env();
    expect_reads(s);
    hive_storage_free(&s);
    free(k);
}

Test(keysrc, rotation_outside_needs_a_place_for_the_new_key)
{
    hive_rotation r = HIVE_ROTATION_INIT;
    hive_storage *s;

    fill_store();
    command_key(OLD_KEY);
    s = open_env();
    cr_assert_eq(hive_file_storage_rotate_key(s, NULL, NULL, NULL, &r), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "the key comes from " HIVE_ENV_KEY_COMMAND " (cat), which hive cannot "
                                        "write: name a file for the new key, or give it in " HIVE_ENV_NEW_KEY);
    hive_storage_free(&s);
    cr_expect_neq(access(marker, F_OK), 0);
    expect_reads(s = open_env());
    hive_storage_free(&s);
}

Test(keysrc, pending_key_file_rotation_names_the_file_given)
{
    char secrets[400];
    char path[400];
    char other[400];
    char want[1200];
    hive_rotation r = HIVE_ROTATION_INIT;
    hive_storage *s;

    fill_store();
    snprintf(secrets, sizeof(secrets), "%s/secrets", home);
    cr_assert_eq(mkdir(secrets, 0700), 0);
    write_file(path, sizeof(path), "secrets/credential_key", OLD_KEY, 0600);
    /* a killed rotation of the key file, to NEW_KEY */
    write_file(path, sizeof(path), "secrets/credential_key.new", NEW_KEY, 0600);
    write_file(other, sizeof(other), "other-key", OTHER_KEY, 0600);
    s = open_env();
    cr_expect_eq(hive_file_storage_key_kind(s), HIVE_KEY_FILE);
    cr_expect_str_eq(hive_file_storage_pending_key_file(s), path);
    cr_assert_eq(hive_file_storage_rotate_key_file(s, other, NULL, NULL, &r), HIVE_ERR_CONFLICT);
    snprintf(want, sizeof(want), "an interrupted rotation to another key is pending: key eb2cd3d7 in %s; the key "
             "in %s is key 2f95d458", path, other);
    cr_expect_str_eq(hive_last_error(), want);
    /* finished with its own key */
    cr_assert_eq(hive_file_storage_rotate_key_file(s, NULL, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    cr_expect(r.key_file);
    cr_expect_null(hive_file_storage_pending_key_file(s));
    hive_storage_free(&s);
    s = open_env();
    expect_reads(s);
    hive_storage_free(&s);
}
