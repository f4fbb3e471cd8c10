/*
 * audit.c - the audit record (beside the store, as <home>/audit.log):
 * JSON lines, one write() each on an O_APPEND descriptor. The caller says
 * where (the store's directory, the Hive home): nothing here reads the
 * environment.
 */
#include "hive/audit.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct hive_audit {
    bool off;
    bool warned;
    int fd;                 /* -1: not opened yet */
    char *path;
    char *store_dir;        /* NULL: none given */
    char *tool;
    char *command;
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
};

hive_rc hive_audit_path(char **out, const char *store_dir, const char *home)
{
    hive__clear_error();
    char *path = NULL;

    if (store_dir != NULL && *store_dir != '\0') {
        /* the real path when there is one: the parent of "." is ".." */
        char *real = realpath(store_dir, NULL);
        const char *dir = real ? real : store_dir;
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            n--;
        while (n > 0 && dir[n - 1] != '/')
            n--;   /* the parent: "/h/.hive/credentials" -> "/h/.hive/" */
        if (n == 0)
            path = hive__strdup(HIVE_AUDIT_FILE);
        else
            path = hive__aprintf("%.*s%s", (int)n, dir, HIVE_AUDIT_FILE);
        free(real);
    } else if (home != NULL && *home != '\0') {
        path = hive__aprintf("%s/%s", home, HIVE_AUDIT_FILE);
    } else {
        return hive__fail(HIVE_ERR_INVALID, "no store directory and no Hive home: nowhere to keep the audit log");
    }
    if (path == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    *out = path;
    return HIVE_OK;
}

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* Say msg through the handle's warn, once. */
static void warn_once(hive_audit *a, const char *msg)
{
    if (a->warned)
        return;
    a->warned = true;
    if (a->warn != NULL)
        a->warn(a->warn_ctx, msg);
}

hive_rc hive_audit_open(hive_audit **out, const hive_audit_options *opts)
{
    hive__clear_error();
    static const char *const off[] = {"off", "0", "no", "false"};
    static const char *const on[] = {"", "on", "1", "yes", "true"};
    static const hive_audit_options defaults = HIVE_AUDIT_OPTIONS_INIT;
    hive_audit *a;
    const char *setting;
    hive_rc rc;

    if (opts == NULL)
        opts = &defaults;   /* which name no place for the log: refused below */
    rc = hive__check_size(opts->size, sizeof(*opts), "hive_audit_options", "HIVE_AUDIT_OPTIONS_INIT");
    if (rc != HIVE_OK)
        return rc;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    setting = opts->setting;
    a->fd = -1;
    a->warn = opts->warn;
    a->warn_ctx = opts->warn_ctx;
    a->off = setting != NULL && one_of(setting, off, sizeof(off) / sizeof(off[0]));
    if (setting != NULL && !a->off && !one_of(setting, on, sizeof(on) / sizeof(on[0]))) {
        char *msg = hive__aprintf("HIVE_AUDIT is '%.32s': 'off' or 'on'; the audit log stays on", setting);
        warn_once(a, msg ? msg : "HIVE_AUDIT is neither 'off' nor 'on'; the audit log stays on");
        free(msg);
        a->warned = false;   /* a failure to write is still said */
    }
    if (!a->off) {
        a->tool = hive__strdup(opts->tool ? opts->tool : "");
        a->command = hive__strdup(opts->command ? opts->command : "");
        if (a->tool == NULL || a->command == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        else if (opts->store_dir != NULL && (a->store_dir = hive__strdup(opts->store_dir)) == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        else if (opts->path != NULL)
            rc = (a->path = hive__strdup(opts->path)) ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
        else
            rc = hive_audit_path(&a->path, opts->store_dir, opts->home);
    }
    if (rc != HIVE_OK) {
        hive_audit_free(&a);
        return rc;
    }
    *out = a;
    return HIVE_OK;
}

bool hive_audit_enabled(const hive_audit *a)
{
    return a != NULL && !a->off;
}

/* Open the log for appending: created 0600, never through a symlink,
 * only a regular file of ours that group and others cannot reach. */
static hive_rc open_log(hive_audit *a)
{
    struct stat st;
    int fd;

    /* A store that does not exist hands nothing out: no record, and no
     * log made in whatever directory would be its parent. */
    if (a->store_dir != NULL && stat(a->store_dir, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
        a->off = true;
        return HIVE_OK;
    }
    fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
    if (fd < 0 && errno == ENOENT && a->store_dir == NULL) {
        a->off = true;   /* no Hive home: no store either */
        return HIVE_OK;
    }
    if (fd < 0 && errno == ELOOP)
        return hive__fail(HIVE_ERR_PERM, "audit log %s is a symbolic link: refused", a->path);
    if (fd < 0)
        return hive__fail(errno == EACCES || errno == EPERM ? HIVE_ERR_PERM : HIVE_ERR_IO,
                          "cannot open audit log %s: %s", a->path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "audit log %s is not a regular file: refused", a->path);
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "audit log %s belongs to another user (uid %u): refused", a->path,
                          (unsigned)st.st_uid);
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return hive__fail(HIVE_ERR_PERM, "audit log %s is %s by group or others (mode %04o): refused; "
                          "chmod 600 %s", a->path, (st.st_mode & 022) ? "writable" : "readable",
                          (unsigned)(st.st_mode & 07777), a->path);
    }
    a->fd = fd;
    return HIVE_OK;
}

/* Now, as RFC 3339 UTC to the microsecond: 2026-11-29T13:20:01.123456Z. */
static void now_text(char buf[40])
{
    struct timespec ts;
    struct tm tm;
    time_t sec;

    clock_gettime(CLOCK_REALTIME, &ts);
    sec = ts.tv_sec;
    if (gmtime_r(&sec, &tm) == NULL || strftime(buf, 24, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        strcpy(buf, "1970-01-01T00:00:00.000000Z");
        return;
    }
    snprintf(buf + 19, 40 - 19, ".%06ldZ", (long)(ts.tv_nsec / 1000));
}

static hive_rc set_text(hive_json *obj, const char *key, const char *value)
{
    return hive_json_set(obj, key, hive_json_new_string(value, strlen(value)));
}

/* The record: the common members, then fields'. */
static hive_rc build(hive_json **out, const hive_audit *a, const char *event, const hive_json *fields)
{
    char when[40];
    hive_json *rec = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc = rec ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");

    now_text(when);
    if (rc == HIVE_OK)
        rc = set_text(rec, "time", when);
    if (rc == HIVE_OK)
        rc = set_text(rec, "tool", a->tool);
    if (rc == HIVE_OK)
        rc = set_text(rec, "command", a->command);
    if (rc == HIVE_OK)
        rc = set_text(rec, "event", event);
    if (rc == HIVE_OK)
        rc = hive_json_set(rec, "uid", hive_json_new_int((int64_t)getuid()));
    if (rc == HIVE_OK)
        rc = hive_json_set(rec, "pid", hive_json_new_int((int64_t)getpid()));
    if (rc == HIVE_OK)
        rc = hive_json_set(rec, "ppid", hive_json_new_int((int64_t)getppid()));
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(fields); i++) {
        const char *k;
        const hive_json *v = hive_json_at(fields, i, &k);
        if (k != NULL && hive_json_get(rec, k) == NULL)
            rc = hive_json_set(rec, k, hive_json_clone(v));
    }
    if (rc != HIVE_OK) {
        hive_json_free(&rec);
        return rc;
    }
    *out = rec;
    return HIVE_OK;
}

/* One write() of the whole line: O_APPEND puts it at the end in one
 * piece, whoever else is writing. */
static hive_rc append_line(hive_audit *a, const char *line, size_t len)
{
    ssize_t n;

    do
        n = write(a->fd, line, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return hive__fail(HIVE_ERR_IO, "cannot write audit log %s: %s", a->path, strerror(errno));
    if ((size_t)n != len)
        return hive__fail(HIVE_ERR_IO, "cannot write audit log %s: only %zd of %zu bytes written (disk full?)",
                          a->path, n, len);
    return HIVE_OK;
}

hive_rc hive_audit_write(hive_audit *a, const char *event, const hive_json *fields)
{
    hive__clear_error();
    hive_json *rec = NULL;
    char *text = NULL;
    size_t len = 0;
    hive_rc rc;

    if (!hive_audit_enabled(a))
        return HIVE_OK;
    if (fields != NULL && hive_json_typeof(fields) != HIVE_JSON_OBJECT)
        return hive__fail(HIVE_ERR_INVALID, "audit record fields must be a JSON object");
    rc = a->fd < 0 ? open_log(a) : HIVE_OK;
    if (rc == HIVE_OK && a->off)
        return HIVE_OK;
    if (rc == HIVE_OK)
        rc = build(&rec, a, event ? event : "", fields);
    if (rc == HIVE_OK)
        rc = hive__json_emit(&text, &len, rec, -1);
    if (rc == HIVE_OK) {
        /* emit leaves room for the NUL: the newline goes there */
        char *line = realloc(text, len + 2);
        if (line == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        } else {
            text = line;
            text[len] = '\n';
            text[len + 1] = '\0';
            rc = append_line(a, text, len + 1);
        }
    }
    free(text);
    hive_json_free(&rec);
    if (rc != HIVE_OK) {
        char *msg = hive__aprintf("audit record not written: %s", hive_last_error());
        warn_once(a, msg ? msg : "audit record not written");
        free(msg);
    }
    return rc;
}

hive_rc hive_audit_event(hive_audit *a, const char *event, const char *id, const char *const *keys,
                         const char *error)
{
    hive__clear_error();
    hive_json *f;
    hive_rc rc;

    if (!hive_audit_enabled(a))
        return HIVE_OK;
    f = hive_json_new(HIVE_JSON_OBJECT);
    rc = f ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (rc == HIVE_OK && id != NULL)
        rc = set_text(f, "id", id);
    if (rc == HIVE_OK && keys != NULL) {
        hive_json *arr = hive_json_new(HIVE_JSON_ARRAY);
        for (size_t i = 0; arr != NULL && rc == HIVE_OK && keys[i] != NULL; i++)
            rc = hive_json_append(arr, hive_json_new_string(keys[i], strlen(keys[i])));
        if (rc == HIVE_OK)
            rc = hive_json_set(f, "keys", arr);
        else
            hive_json_free(&arr);
    }
    if (rc == HIVE_OK)
        rc = hive_json_set(f, "ok", hive_json_new(error == NULL ? HIVE_JSON_TRUE : HIVE_JSON_FALSE));
    if (rc == HIVE_OK && error != NULL)
        rc = set_text(f, "error", error);
    if (rc == HIVE_OK)
        rc = hive_audit_write(a, event, f);
    hive_json_free(&f);
    return rc;
}

void hive_audit_free(hive_audit **a)
{
    if (a == NULL || *a == NULL)
        return;
    if ((*a)->fd >= 0)
        close((*a)->fd);
    free((*a)->path);
    free((*a)->store_dir);
    free((*a)->tool);
    free((*a)->command);
    free(*a);
    *a = NULL;
}
