/*
 * helpers.c - what the credential helpers share, and the two that are
 * hive-cred commands: exec-credential (kubectl's exec plugin protocol) and
 * aws-credential-process (the AWS SDKs' credential_process).
 */
#include "helpers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void warn_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    cli_warn("%s", msg);
}

/* --- the audit record --------------------------------------------------- */

const char *helper_command = "get";

/* For the record of this run: the names of the keys handed out, whether
 * the credential was refreshed, and what failed (messages hold no value). */
#define MAX_HANDED 8
static char *handed[MAX_HANDED + 1];
static size_t n_handed;
static bool refreshed;
static char *failure;
/* when the helper started, less a second: a refresh stamped after it was ours */
static hive_time started;

static void note_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_failure(const char *fmt, ...)
{
    va_list ap;

    free(failure);
    va_start(ap, fmt);
    if (vasprintf(&failure, fmt, ap) < 0)
        failure = NULL;
    va_end(ap);
}

void helper_handed(const char *key)
{
    char *copy;

    if (key == NULL || n_handed == MAX_HANDED || (copy = strdup(key)) == NULL)
        return;
    handed[n_handed++] = copy;
}

void helper_audit(hive_store *st, const char *id, int ex)
{
    const char *dir = st != NULL ? hive_file_storage_dir(hive_store_storage(st)) : NULL;
    hive_audit *a = cli_audit_open(dir, helper_command);
    char generic[32];

    if (refreshed)
        CLI_AUDIT(hive_audit_event(a, "refresh", id, NULL, NULL));
    if (ex == 0) {
        CLI_AUDIT(hive_audit_event(a, "handout", id, (const char *const *)handed, NULL));
    } else {
        snprintf(generic, sizeof(generic), "exit status %d", ex);
        CLI_AUDIT(hive_audit_event(a, "failure", id, NULL, failure ? failure : generic));
    }
    hive_audit_free(&a);
    for (size_t i = 0; i < n_handed; i++)
        free(handed[i]);
    n_handed = 0;
    handed[0] = NULL;
    free(failure);
    failure = NULL;
    refreshed = false;
}

/* --- the store -------------------------------------------------------------- */

int helper_open(const char *dir, hive_store **st)
{
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    hive_rc rc;

    started = hive_time_now();
    started.sec -= 1;
    so.warn = warn_stderr;
    rc = hive_store_open_from_env(st, dir, &so);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

/*
 * Refuse cred when its token lacks a scope that a usage spec naming it
 * requires: the helpers serve a credential, not one spec, so every spec
 * whose credential_id it is says what its token must grant.
 */
static int check_scopes(hive_store *st, const hive_cred *cred, const char *id)
{
    char *msg = NULL;
    bool recorded = false;
    hive_rc rc = hive_store_check_scopes(st, &msg, &recorded, cred);

    if (rc != HIVE_OK) {
        note_failure("%s", hive_last_error());
        return cli_fail(rc);
    }
    if (msg == NULL)
        return 0;
    cli_error("%s", msg);
    cli_scope_hint(id, recorded);
    note_failure("%s", msg);
    free(msg);
    return EXIT_SCOPE;
}

int helper_load(hive_store *st, const char *id, hive_cred **cred)
{
    hive_rc rc = hive_store_get_credential(st, cred, id, HIVE_GET_STRICT);
    hive_time t;
    int ex;

    if (rc != HIVE_OK) {
        note_failure("%s", hive_last_error());
        return cli_fail(rc);
    }
    t = hive_cred_time(*cred, HIVE_CRED_LAST_REFRESHED);
    refreshed = t.form != HIVE_TIME_NONE && hive_time_cmp(&t, &started) >= 0;
    if ((ex = check_scopes(st, *cred, id)) != 0)
        hive_cred_free(cred);
    return ex;
}

int helper_value(const hive_cred *cred, const char *id, const char *key, const char **value,
                 size_t *len)
{
    const char *name = key ? key : hive_cred_default_key(cred);

    *value = name ? hive_cred_get_key(cred, name, len) : NULL;
    if (*value != NULL) {
        helper_handed(name);
        return 0;
    }
    if (name == NULL)
        note_failure("Credential '%s' has no keys", id);
    else
        note_failure("Key '%s' not found in credential '%s'", name, id);
    if (name == NULL) {
        cli_error("Credential '%s' has no keys", id);
        cli_hint("printf %%s \"$VALUE\" | hive-cred set %s KEY", id);
    } else {
        cli_error("Key '%s' not found in credential '%s'", name, id);
        cli_hint("'hive-cred show %s' lists its keys", id);
    }
    return EXIT_NOT_FOUND;
}

void helper_rfc3339(char buf[HIVE_TIME_TEXT], hive_time t)
{
    time_t sec = (time_t)t.sec;
    struct tm tm;

    if (gmtime_r(&sec, &tm) == NULL || strftime(buf, HIVE_TIME_TEXT, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

void helper_scrub_registers(void)
{
    static char zeros[2048];
    static char sink[sizeof(zeros)];
    /* through a volatile pointer: the library's copy, not an inlined one */
    static void *(*volatile copy)(void *, const void *, size_t) = memcpy;

    for (size_t n = 16; n <= sizeof(zeros); n *= 2)
        copy(sink, zeros, n);
}

int helper_print_json(const hive_json *doc)
{
    hive_secret text = HIVE_SECRET_INIT;
    hive_rc rc = hive_json_emit(doc, &text, -1);
    int ex = 0;

    if (rc != HIVE_OK)
        return cli_fail(rc);
    if (fwrite(text.data, 1, text.len, stdout) != text.len || fputc('\n', stdout) == EOF ||
        fflush(stdout) != 0) {
        cli_error("cannot write to stdout");
        ex = EXIT_STORE;
    }
    hive_secret_free(&text);
    helper_scrub_registers();
    return ex;
}

int helper_read_stdin(const char *what, char **buf, size_t *len, size_t max)
{
    if (cli_read_all(STDIN_FILENO, buf, len, max) == 0)
        return 0;
    if (errno == EFBIG)
        cli_error("%s on stdin is larger than %zu bytes", what, max);
    else
        cli_error("cannot read %s from stdin: %s", what, strerror(errno));
    return EXIT_USAGE;
}

bool helper_set_str(hive_json *obj, const char *key, const char *value, size_t len)
{
    hive_json *s = hive_json_new_string(value, len);

    return s != NULL && hive_json_set(obj, key, s) == HIVE_OK;
}

/* Set key of obj to t as RFC 3339 when t is a time; false when out of memory. */
static bool set_time(hive_json *obj, const char *key, hive_time t)
{
    char text[HIVE_TIME_TEXT];

    if (t.form == HIVE_TIME_NONE)
        return true;
    helper_rfc3339(text, t);
    return helper_set_str(obj, key, text, strlen(text));
}

/* The earlier of *t and key's expiry. */
static void earliest(hive_time *t, const hive_cred *cred, const char *key)
{
    hive_time e = hive_cred_key_expires(cred, key);

    if (e.form != HIVE_TIME_NONE && (t->form == HIVE_TIME_NONE || e.sec < t->sec))
        *t = e;
}

int helper_answer_json(hive_store *st, const char *id, helper_build build, const void *arg)
{
    hive_cred *cred = NULL;
    hive_json *doc = NULL;
    int ex = helper_load(st, id, &cred);

    if (ex == 0 && (doc = hive_json_new(HIVE_JSON_OBJECT)) == NULL)
        ex = cli_fail(HIVE_ERR_NOMEM);
    if (ex == 0)
        ex = build(doc, cred, id, arg);
    if (ex == 0)
        ex = helper_print_json(doc);
    helper_audit(st, id, ex);
    hive_json_free(&doc);
    hive_cred_free(&cred);
    return ex;
}

/* Open the store at dir and answer with build. */
static int answer(const char *dir, const char *id, helper_build build, const void *arg)
{
    hive_store *st = NULL;
    int ex = helper_open(dir, &st);

    if (ex == 0)
        ex = helper_answer_json(st, id, build, arg);
    hive_store_free(&st);
    return ex;
}

/* --- kubectl: client.authentication.k8s.io ExecCredential ------------- */

#define K8S_GROUP "client.authentication.k8s.io/"

/* The apiVersion kubectl asks for in KUBERNETES_EXEC_INFO (v1beta1 when
 * it is not set); NULL after a message when it cannot be served. */
static const char *exec_api_version(void)
{
    static const char *const known[] = {K8S_GROUP "v1", K8S_GROUP "v1beta1"};
    const char *info = getenv("KUBERNETES_EXEC_INFO");
    hive_json *doc = NULL;
    const char *want;
    const char *found = NULL;

    if (info == NULL || info[0] == '\0')
        return K8S_GROUP "v1beta1";
    if (hive_json_parse(&doc, info, strlen(info)) != HIVE_OK) {
        cli_error("KUBERNETES_EXEC_INFO is not JSON: %s", hive_last_error());
        return NULL;
    }
    want = hive_json_string(hive_json_get(doc, "apiVersion"), NULL);
    for (size_t i = 0; want != NULL && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(want, known[i]) == 0)
            found = known[i];
    if (found == NULL) {
        cli_error("KUBERNETES_EXEC_INFO asks for apiVersion '%.80s'", want ? want : "(none)");
        cli_hint("hive-cred answers %sv1 and %sv1beta1; set apiVersion in the kubeconfig's exec section",
                 K8S_GROUP, K8S_GROUP);
    }
    hive_json_free(&doc);
    return found;
}

typedef struct exec_arg {
    const char *api;
    const char *key;
} exec_arg;

static int build_exec_credential(hive_json *doc, const hive_cred *cred, const char *id, const void *arg)
{
    const exec_arg *a = arg;
    const char *key = a->key ? a->key : hive_cred_default_key(cred);
    hive_json *status;
    const char *value;
    size_t len = 0;
    int ex = helper_value(cred, id, key, &value, &len);

    if (ex != 0)
        return ex;
    if (!helper_set_str(doc, "apiVersion", a->api, strlen(a->api)) ||
        !helper_set_str(doc, "kind", "ExecCredential", 14) ||
        hive_json_set(doc, "status", hive_json_new(HIVE_JSON_OBJECT)) != HIVE_OK)
        return cli_fail(HIVE_ERR_NOMEM);
    status = hive_json_get_mut(doc, "status");
    if (!helper_set_str(status, "token", value, len) ||
        !set_time(status, "expirationTimestamp", hive_cred_key_expires(cred, key)))
        return cli_fail(HIVE_ERR_NOMEM);
    return 0;
}

int helper_exec_credential(const char *dir, const char *id, const char *key)
{
    exec_arg a = {exec_api_version(), key};

    helper_command = "exec-credential";
    return a.api == NULL ? EXIT_USAGE : answer(dir, id, build_exec_credential, &a);
}

/* --- AWS: credential_process ----------------------------------------- */

static int build_aws(hive_json *doc, const hive_cred *cred, const char *id, const void *arg)
{
    static const struct {
        const char *key;
        const char *field;
        bool required;
    } map[] = {
        {"aws_access_key_id", "AccessKeyId", true},
        {"aws_secret_access_key", "SecretAccessKey", true},
        {"aws_session_token", "SessionToken", false},
    };
    hive_time exp = {0};

    (void)arg;
    if (hive_json_set(doc, "Version", hive_json_new_int(1)) != HIVE_OK)
        return cli_fail(HIVE_ERR_NOMEM);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t len = 0;
        const char *value = hive_cred_get_key(cred, map[i].key, &len);
        if (value == NULL && map[i].required)
            return helper_value(cred, id, map[i].key, &value, &len);
        if (value == NULL)
            continue;
        if (!helper_set_str(doc, map[i].field, value, len))
            return cli_fail(HIVE_ERR_NOMEM);
        helper_handed(map[i].key);
        earliest(&exp, cred, map[i].key);
    }
    return set_time(doc, "Expiration", exp) ? 0 : cli_fail(HIVE_ERR_NOMEM);
}

int helper_aws_credential_process(const char *dir, const char *id)
{
    helper_command = "aws-credential-process";
    return answer(dir, id, build_aws, NULL);
}
