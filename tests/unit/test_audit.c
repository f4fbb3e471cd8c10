/*
 * The audit record (hive/audit.h): where the log is, what a record holds,
 * the switch, the refusals (symlink, open modes, a store that does not
 * exist), and many writers at once.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A new temporary directory holding credentials/ (a store's directory). */
static char *temp_home(void)
{
    char *dir = strdup("/tmp/hive-audit-test-XXXXXX");
    char sub[512];

    cr_assert_not_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/credentials", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    return dir;
}

static char *path_in(const char *home, const char *name)
{
    char *p = NULL;

    cr_assert_geq(asprintf(&p, "%s/%s", home, name), 0);
    return p;
}

static void remove_home(char *home)
{
    char *cmd = NULL;

    cr_assert_geq(asprintf(&cmd, "rm -rf '%s'", home), 0);
    cr_expect_eq(system(cmd), 0);
    free(cmd);
    free(home);
}

typedef struct warnings {
    int count;
    char last[512];
} warnings;

static void count_warning(void *ctx, const char *msg)
{
    warnings *w = ctx;

    w->count++;
    snprintf(w->last, sizeof(w->last), "%s", msg);
}

static hive_audit *open_for(const char *home, const char *setting, warnings *w)
{
    hive_audit_options o = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a = NULL;
    char *store = path_in(home, "credentials");

    o.store_dir = store;
    o.tool = "test";
    o.command = "unit";
    o.setting = setting;
    o.warn = count_warning;
    o.warn_ctx = w;
    cr_assert_eq(hive_audit_open(&a, &o), HIVE_OK, "%s", hive_last_error());
    free(store);
    return a;
}

/* The lines of the log, parsed; each must be a whole JSON object. */
static size_t read_records(const char *home, hive_json ***out)
{
    char *log = path_in(home, "audit.log");
    size_t len = 0;
    char *text = slurp(log, &len);
    size_t n = 0;
    hive_json **recs = NULL;

    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        cr_assert_not_null(nl, "the last line has no newline");
        recs = realloc(recs, (n + 1) * sizeof(*recs));
        recs[n] = NULL;
        cr_assert_eq(hive_json_parse(&recs[n], p, (size_t)(nl - p)), HIVE_OK, "line %zu: %.*s", n + 1,
                     (int)(nl - p), p);
        cr_assert_eq(hive_json_typeof(recs[n]), HIVE_JSON_OBJECT);
        n++;
        p = nl + 1;
    }
    free(text);
    free(log);
    *out = recs;
    return n;
}

static void free_records(hive_json **recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hive_json_free(&recs[i]);
    free(recs);
}

Test(audit, the_log_lies_beside_the_store_as_its_key_does)
{
    char *p = NULL;
    char *home = temp_home();
    char *store = path_in(home, "credentials");
    char *want = path_in(home, "audit.log");

    cr_assert_eq(hive_audit_path(&p, store, NULL), HIVE_OK);
    cr_expect_str_eq(p, want);
    free(p);
    /* the store's directory wins over the home */
    cr_assert_eq(hive_audit_path(&p, "/nowhere/at/all/credentials/", home), HIVE_OK);
    cr_expect_str_eq(p, "/nowhere/at/all/audit.log");
    free(p);
    cr_assert_eq(hive_audit_path(&p, NULL, home), HIVE_OK);
    cr_expect_str_eq(p, want);
    free(p);
    /* "." is a real directory: its parent, not "./audit.log" */
    cr_assert_eq(chdir(store), 0);
    cr_assert_eq(hive_audit_path(&p, ".", NULL), HIVE_OK);
    cr_expect_str_eq(p, want);
    free(p);
    cr_assert_eq(chdir("/"), 0);
    free(store);
    free(want);
    remove_home(home);
}

Test(audit, a_record_is_one_json_line_with_who_and_when_created_0600)
{
    char *home = temp_home();
    warnings w = {0};
    hive_audit *a = open_for(home, NULL, &w);
    const char *const keys[] = {"access_token", "refresh_token", NULL};
    hive_json **recs = NULL;
    regex_t re;
    struct stat st;
    char *log = path_in(home, "audit.log");
    size_t n;

    cr_expect(hive_audit_enabled(a));
    cr_expect_neq(stat(log, &st), 0, "nothing is opened before the first record");
    cr_assert_eq(hive_audit_event(a, "login", "gh", keys, NULL), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_audit_event(a, "revoke", "gh", NULL, "Revocation endpoint answered 503"), HIVE_OK);
    hive_audit_free(&a);
    cr_expect_null(a);
    cr_assert_eq(stat(log, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0600);
    n = read_records(home, &recs);
    cr_assert_eq(n, 2);
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
                         REG_EXTENDED | REG_NOSUB), 0);
    cr_expect_eq(regexec(&re, jstr(recs[0], "time"), 0, NULL, 0), 0, "%s", jstr(recs[0], "time"));
    regfree(&re);
    cr_expect_str_eq(jstr(recs[0], "tool"), "test");
    cr_expect_str_eq(jstr(recs[0], "command"), "unit");
    cr_expect_str_eq(jstr(recs[0], "event"), "login");
    cr_expect_eq((long)hive_json_number(hive_json_get(recs[0], "uid")), (long)getuid());
    cr_expect_eq((long)hive_json_number(hive_json_get(recs[0], "pid")), (long)getpid());
    cr_expect_eq((long)hive_json_number(hive_json_get(recs[0], "ppid")), (long)getppid());
    cr_expect_str_eq(jstr(recs[0], "id"), "gh");
    cr_expect_eq(hive_json_size(hive_json_get(recs[0], "keys")), 2);
    cr_expect_eq(hive_json_typeof(hive_json_get(recs[0], "ok")), HIVE_JSON_TRUE);
    cr_expect_null(hive_json_get(recs[0], "error"));
    cr_expect_str_eq(jstr(recs[1], "event"), "revoke");
    cr_expect_eq(hive_json_typeof(hive_json_get(recs[1], "ok")), HIVE_JSON_FALSE);
    cr_expect_str_eq(jstr(recs[1], "error"), "Revocation endpoint answered 503");
    cr_expect_null(hive_json_get(recs[1], "keys"));
    cr_expect_eq(w.count, 0);
    free_records(recs, n);
    free(log);
    remove_home(home);
}

Test(audit, fields_follow_the_common_members_and_cannot_replace_them)
{
    char *home = temp_home();
    warnings w = {0};
    hive_audit *a = open_for(home, "on", &w);
    hive_json *f = NULL;
    const char *text = "{\"program\": \"/usr/bin/gh\", \"pid\": 1, \"args\": 2}";
    hive_json **recs = NULL;
    size_t n;

    cr_assert_eq(hive_json_parse(&f, text, strlen(text)), HIVE_OK);
    cr_assert_eq(hive_audit_write(a, "launch", f), HIVE_OK);
    hive_json_free(&f);
    cr_assert_eq(hive_json_parse(&f, "[1]", 3), HIVE_OK);
    cr_expect_eq(hive_audit_write(a, "launch", f), HIVE_ERR_INVALID);
    hive_json_free(&f);
    hive_audit_free(&a);
    n = read_records(home, &recs);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(jstr(recs[0], "program"), "/usr/bin/gh");
    cr_expect_eq((long)hive_json_number(hive_json_get(recs[0], "pid")), (long)getpid());
    cr_expect_eq((long)hive_json_number(hive_json_get(recs[0], "args")), 2);
    free_records(recs, n);
    remove_home(home);
}

Test(audit, switched_off_it_writes_nothing)
{
    static const char *const off[] = {"off", "0", "no", "false"};

    for (size_t i = 0; i < 4; i++) {
        char *home = temp_home();
        char *log = path_in(home, "audit.log");
        warnings w = {0};
        hive_audit *a = open_for(home, off[i], &w);
        struct stat st;
        cr_expect_not(hive_audit_enabled(a), "%s", off[i]);
        cr_expect_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_OK);
        hive_audit_free(&a);
        cr_expect_neq(stat(log, &st), 0, "HIVE_AUDIT=%s wrote a log", off[i]);
        cr_expect_eq(w.count, 0);
        free(log);
        remove_home(home);
    }
    cr_expect_eq(hive_audit_event(NULL, "handout", "gh", NULL, NULL), HIVE_OK);
    cr_expect_not(hive_audit_enabled(NULL));
}

Test(audit, a_bad_setting_is_warned_about_and_the_log_stays_on)
{
    char *home = temp_home();
    warnings w = {0};
    hive_audit *a = open_for(home, "of", &w);
    hive_json **recs = NULL;
    size_t n;

    cr_expect_eq(w.count, 1);
    cr_expect(strstr(w.last, "HIVE_AUDIT is 'of'") != NULL, "%s", w.last);
    cr_expect(hive_audit_enabled(a));
    cr_assert_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_OK);
    hive_audit_free(&a);
    n = read_records(home, &recs);
    cr_expect_eq(n, 1);
    free_records(recs, n);
    remove_home(home);
}

Test(audit, a_symlink_at_the_log_is_refused_and_said_once)
{
    char *home = temp_home();
    char *log = path_in(home, "audit.log");
    char *target = path_in(home, "elsewhere");
    warnings w = {0};
    hive_audit *a;
    struct stat st;
    int fd = open(target, O_CREAT | O_WRONLY, 0600);

    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(symlink(target, log), 0);
    a = open_for(home, NULL, &w);
    cr_expect_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_ERR_PERM);
    cr_expect(strstr(hive_last_error(), "symbolic link") != NULL, "%s", hive_last_error());
    cr_expect_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_ERR_PERM);
    hive_audit_free(&a);
    cr_expect_eq(w.count, 1, "said %d times", w.count);
    cr_expect(strstr(w.last, "symbolic link") != NULL, "%s", w.last);
    cr_assert_eq(stat(target, &st), 0);
    cr_expect_eq(st.st_size, 0, "the symlink's target was written");
    free(log);
    free(target);
    remove_home(home);
}

Test(audit, a_log_group_or_others_can_reach_is_refused)
{
    static const mode_t modes[] = {0640, 0604, 0620, 0666};

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char *home = temp_home();
        char *log = path_in(home, "audit.log");
        warnings w = {0};
        hive_audit *a;
        struct stat st;
        int fd = open(log, O_CREAT | O_WRONLY, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(fchmod(fd, modes[i]), 0);
        close(fd);
        a = open_for(home, NULL, &w);
        cr_expect_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_ERR_PERM, "mode %o", modes[i]);
        cr_expect(strstr(w.last, "chmod 600") != NULL, "%s", w.last);
        hive_audit_free(&a);
        cr_assert_eq(stat(log, &st), 0);
        cr_expect_eq(st.st_size, 0);
        free(log);
        remove_home(home);
    }
}

Test(audit, a_log_that_is_not_a_regular_file_is_refused)
{
    char *home = temp_home();
    char *log = path_in(home, "audit.log");
    warnings w = {0};
    hive_audit *a;

    cr_assert_eq(mkdir(log, 0700), 0);
    a = open_for(home, NULL, &w);
    cr_expect_neq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_OK);
    cr_expect_eq(w.count, 1);
    cr_expect(strstr(w.last, "audit record not written") != NULL, "%s", w.last);
    hive_audit_free(&a);
    free(log);
    remove_home(home);
}

Test(audit, a_store_that_does_not_exist_makes_no_log)
{
    char *home = temp_home();
    char *store = path_in(home, "nothing-here");
    char *log = path_in(home, "audit.log");
    hive_audit_options o = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a = NULL;
    warnings w = {0};
    struct stat st;

    o.store_dir = store;
    o.warn = count_warning;
    o.warn_ctx = &w;
    cr_assert_eq(hive_audit_open(&a, &o), HIVE_OK);
    cr_expect_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_OK);
    hive_audit_free(&a);
    cr_expect_neq(stat(log, &st), 0);
    cr_expect_eq(w.count, 0);
    free(store);
    free(log);
    remove_home(home);
}

/* 20 processes, 50 records each, every record over PIPE_BUF (4096 bytes):
 * every line whole, parseable, and each writer's lines all there, in its
 * own order. */
#define WRITERS 20
#define LINES 50

Test(audit, many_writers_at_once_never_interleave_a_line)
{
    char *home = temp_home();
    pid_t pids[WRITERS];
    hive_json **recs = NULL;
    int next[WRITERS] = {0};
    size_t n;

    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        cr_assert_geq(pids[w], 0);
        if (pids[w] == 0) {
            warnings wn = {0};
            hive_audit *a = open_for(home, NULL, &wn);
            char error[6000];
            int bad = 0;
            for (int i = 0; i < LINES; i++) {
                int len = snprintf(error, sizeof(error), "writer %d line %d ", w, i);
                memset(error + len, 'a' + w % 26, sizeof(error) - (size_t)len - 1);
                error[sizeof(error) - 1] = '\0';
                if (hive_audit_event(a, "failure", "gh", NULL, error) != HIVE_OK)
                    bad++;
            }
            hive_audit_free(&a);
            _exit(bad == 0 && wn.count == 0 ? 0 : 1);
        }
    }
    for (int w = 0; w < WRITERS; w++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[w], &status, 0), pids[w]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", w);
    }
    n = read_records(home, &recs);
    cr_assert_eq(n, WRITERS * LINES);
    for (size_t i = 0; i < n; i++) {
        const char *e = jstr(recs[i], "error");
        int w = -1, line = -1;
        cr_assert_eq(sscanf(e, "writer %d line %d ", &w, &line), 2, "%.40s", e);
        cr_assert(w >= 0 && w < WRITERS);
        cr_expect_eq(line, next[w], "writer %d: line %d after %d", w, line, next[w] - 1);
        next[w] = line + 1;
        cr_expect_eq(strlen(e), 5999);
        cr_expect_eq(e[5998], 'a' + w % 26);
    }
    free_records(recs, n);
    remove_home(home);
}

Test(audit, the_home_is_the_callers_never_hive_home_read_behind_its_back)
{
    char *home = temp_home();
    char *other = temp_home();
    char *log = path_in(other, "audit.log");
    hive_audit_options o = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a = NULL;
    hive_json **recs = NULL;
    char untouched[] = "untouched";
    char *p = untouched;
    struct stat st;
    size_t n;

    /* HIVE_HOME names another home: the library does not look */
    setenv("HIVE_HOME", other, 1);
    cr_expect_eq(hive_audit_path(&p, NULL, NULL), HIVE_ERR_INVALID);
    cr_expect_str_eq(p, "untouched", "no output on failure");
    cr_expect(strstr(hive_last_error(), "nowhere to keep the audit log") != NULL, "%s", hive_last_error());
    cr_expect_eq(hive_audit_open(&a, &o), HIVE_ERR_INVALID, "no path, store or home");
    cr_expect_null(a);
    cr_expect_eq(hive_audit_open(&a, NULL), HIVE_ERR_INVALID, "every default: no place either");
    cr_expect(strstr(hive_last_error(), "nowhere to keep the audit log") != NULL, "%s", hive_last_error());
    cr_expect_null(a);
    /* switched off, it needs no place */
    o.setting = "off";
    cr_assert_eq(hive_audit_open(&a, &o), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(hive_audit_enabled(a));
    hive_audit_free(&a);
    /* the home given */
    o.setting = NULL;
    o.home = home;
    o.tool = "test";
    cr_assert_eq(hive_audit_open(&a, &o), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_audit_event(a, "handout", NULL, NULL, NULL), HIVE_OK, "%s", hive_last_error());
    hive_audit_free(&a);
    hive_audit_free(&a);   /* twice: a no-op */
    hive_audit_free(NULL);
    n = read_records(home, &recs);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(jstr(recs[0], "tool"), "test");
    cr_expect_str_eq(jstr(recs[0], "command"), "");
    cr_expect_str_eq(jstr(recs[0], "event"), "handout");
    cr_expect_null(hive_json_get(recs[0], "id"));
    free_records(recs, n);
    cr_expect_neq(stat(log, &st), 0, "nothing in $HIVE_HOME");
    unsetenv("HIVE_HOME");
    free(log);
    remove_home(other);
    remove_home(home);
}

Test(audit, an_options_struct_of_an_unknown_size_is_refused)
{
    char *home = temp_home();
    hive_audit_options o = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a = NULL;
    char want[256];

    cr_expect_eq(o.size, sizeof(hive_audit_options));
    o.home = home;
    o.size = sizeof(o) - sizeof(void *);
    cr_expect_eq(hive_audit_open(&a, &o), HIVE_ERR_INVALID);
    cr_expect_null(a);
    snprintf(want, sizeof(want), "hive_audit_options.size is %zu, not a size this libhive knows for it (%zu): "
             "start the options from HIVE_AUDIT_OPTIONS_INIT", sizeof(o) - sizeof(void *), sizeof(o));
    cr_expect_str_eq(hive_last_error(), want);
    o.size = 0;   /* {0}: also refused, switched off or not */
    o.setting = "off";
    cr_expect_eq(hive_audit_open(&a, &o), HIVE_ERR_INVALID);
    cr_expect_null(a);
    remove_home(home);
}

Test(audit, hive_home_from_env_finds_the_home_the_tools_use)
{
    char *p = NULL;
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

    setenv("HIVE_HOME", "/somewhere/hive", 1);
    cr_assert_eq(hive_home_from_env(&p), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(p, "/somewhere/hive");
    free(p);
    p = NULL;
    unsetenv("HIVE_HOME");
    setenv("HOME", "/home/someone", 1);
    cr_assert_eq(hive_home_from_env(&p), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(p, "/home/someone/.hive");
    free(p);
    p = NULL;
    setenv("HIVE_HOME", "", 1);   /* empty: unset */
    cr_assert_eq(hive_home_from_env(&p), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(p, "/home/someone/.hive");
    free(p);
    cr_expect_eq(hive_home_from_env(NULL), HIVE_ERR_INVALID);
    unsetenv("HIVE_HOME");
    if (saved_home != NULL)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_home);
}

Test(audit, no_home_directory_no_log_and_no_warning)
{
    char *home = temp_home();
    char *gone = path_in(home, "not-made");
    hive_audit_options o = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a = NULL;
    warnings w = {0};
    struct stat st;

    o.home = gone;
    o.warn = count_warning;
    o.warn_ctx = &w;
    cr_assert_eq(hive_audit_open(&a, &o), HIVE_OK);
    cr_expect_eq(hive_audit_event(a, "handout", "gh", NULL, NULL), HIVE_OK);
    cr_expect_not(hive_audit_enabled(a), "a log that cannot be made is off");
    hive_audit_free(&a);
    cr_expect_neq(stat(gone, &st), 0);
    cr_expect_eq(w.count, 0);
    free(gone);
    remove_home(home);
}
