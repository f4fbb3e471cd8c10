/*
 * hive-run - run a program with credentials in its environment.
 *
 *   hive-run -e GITHUB_TOKEN='{{github_oauth.access_token}}' -- make deploy
 *
 * Only the credentials the templates name are decrypted; the program is
 * exec'd in hive-run's own process, so its PID, terminal, signals and exit
 * status are its own.
 */
#include "cli.h"
#include "fresh.h"
#include "mask.h"
#include "secretfile.h"
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define EXIT_FAIL 125        /* hive-run failed before running the program */
#define EXIT_NOEXEC 126      /* found but not executable */
#define EXIT_NOTFOUND 127    /* not found */
#define MAX_ARG_STRLEN_LINUX (32 * 4096)   /* the kernel's limit per string */
#define MAX_LIST 256

static const char usage_text[] =
    "Usage: hive-run [--store DIR] [OPTIONS] [--] COMMAND [ARG...]\n"
    "\n"
    "Run COMMAND with credentials from the Hive store in its environment.\n"
    "\n"
    "  -e, --env NAME=TEMPLATE   set NAME to TEMPLATE rendered ({{id}} or {{id.key}})\n"
    "      --env-file FILE       dotenv file whose values may hold templates\n"
    "      --usage ID            the env map of the usage spec ID (refused when the\n"
    "                            token lacks a scope the spec requires)\n"
    "      --render-env NAME     render the template held by the inherited variable\n"
    "                            NAME (only the variables named so are rendered)\n"
    "  -i, --ignore-environment  start from an empty environment, as env -i\n"
    "      --keep NAME           with -i: pass the inherited NAME through as it is\n"
    "      --no-refresh          never refresh an expiring token (no network)\n"
    "      --allow-expired       pass a token that has expired instead of failing\n"
    "      --allow-unsafe-env NAME\n"
    "                            allow setting NAME although its value would be run\n"
    "                            as code (LD_*, BASH_ENV, NODE_OPTIONS, ...)\n"
    "      --fresh               keep the values fresh for the program's whole life:\n"
    "                            its getenv() answers from a snapshot that a refresher\n"
    "                            process renews ahead of expiry (libhive-preload.so)\n"
    "      --file NAME=TEMPLATE  render TEMPLATE into a file in memory, readable by you\n"
    "                            alone and gone when the program ends, and set NAME\n"
    "                            to its path (KUBECONFIG, GOOGLE_APPLICATION_CREDENTIALS,\n"
    "                            *_FILE); with --fresh it is replaced at each refresh\n"
    "      --on-refresh restart  with --fresh: restart the program with the new values\n"
    "                            (hive-run stays its parent and passes signals on)\n"
    "      --on-refresh signal:NAME\n"
    "                            with --fresh: send the program signal NAME (HUP, USR1,\n"
    "                            ...) once the new values are published\n"
    "      --kill-signal NAME    with --on-refresh restart: the signal that stops it\n"
    "                            (default TERM)\n"
    "      --kill-timeout SECONDS\n"
    "                            with --on-refresh restart: then SIGKILL after SECONDS\n"
    "                            (default 10)\n"
    "      --allow-launch-values with --fresh, run a program it cannot keep fresh (static,\n"
    "                            set-ID, Go; Python, shells, Perl, Java copy their\n"
    "                            environment at start) with launch-time values\n"
    "";

static const char usage_text2[] =
    "      --mask                replace the secret values (and their base64, hex and\n"
    "                            URL encodings) in the program's output by [masked];\n"
    "                            on a terminal the program keeps a terminal of its own\n"
    "      --mask-min N          mask values of at least N bytes (default 6, least 4)\n"
    "      --dry-run             list what would be set (values masked), what would be\n"
    "                            refreshed, and every problem; run nothing, touch\n"
    "                            neither network nor disk; exit 125 on any problem\n"
    "      --json                with --dry-run: machine-readable\n"
    "      --store DIR           the store directory (default $HIVE_HOME/credentials)\n"
    "  -h, --help                this help;  --version  the version\n"
    "\n"
    "Sources, later ones overriding earlier ones: the inherited variables named\n"
    "by --render-env, then --usage, then --env-file, then -e, each in the order\n"
    "given. Other inherited variables pass through as they are, templates and\n"
    "all: whoever sets a variable (a branch name, a pull-request title) must not\n"
    "be able to pull a secret into it. NAMEs are shell names: letters, digits\n"
    "and '_', not starting with a digit. Templates in COMMAND's arguments are\n"
    "NOT rendered: arguments are visible to every user in the process list.\n"
    "HIVE_CREDENTIAL_KEY is never passed on. Each launch is recorded in the\n"
    "audit log beside the store ($HIVE_HOME/audit.log: the program's path and\n"
    "the credentials and keys it gets, never a value); HIVE_AUDIT=off stops it.\n"
    "\n"
    "Exit status: COMMAND's own; 125 hive-run failed before running it (bad\n"
    "template, missing credential or key, expired token, missing scope, invalid\n"
    "or refused name, size); 126 COMMAND found but not executable; 127 COMMAND\n"
    "not found.\n";

/*
 * Names whose value a program, its interpreter or its loader runs as code,
 * or loads code from (the README has the table and the reasons). Matched
 * exactly: the loader and the shells take names case-sensitively, and a
 * name outside the shell-name rule is refused before it gets here.
 */
static const char *const unsafe_exact[] = {
    /* the dynamic loader (besides LD_* and DYLD_*): iconv modules */
    "GCONV_PATH",
    /* shells: startup files, imported options, prompts expanded with $(...) */
    "BASH_ENV", "ENV", "ZDOTDIR", "FPATH", "SHELLOPTS", "BASHOPTS", "BASH_LOADABLES_PATH",
    "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4",
    /* Python */
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONBREAKPOINT",
    "PYTHONUSERBASE", "PYTHONPYCACHEPREFIX", "PYTHONPLATLIBDIR", "PYTHONWARNINGS",
    /* Perl, Ruby */
    "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB",
    /* Node */
    "NODE_OPTIONS", "NODE_PATH", "NODE_REPL_EXTERNAL_MODULE",
    /* Java */
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
    /* git: commands it runs, and where it reads config and hooks from */
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS",
    "GIT_EXEC_PATH", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_PAGER", "GIT_DIR",
    "GIT_TEMPLATE_DIR", "GIT_CONFIG",
    /* a command line that programs run when they need an editor, pager,
     * browser, shell or password prompt */
    "EDITOR", "VISUAL", "PAGER", "MANPAGER", "LESSOPEN", "LESSCLOSE", "BROWSER", "SHELL",
    "SSH_ASKPASS", "SUDO_ASKPASS",
};
static const char *const unsafe_prefix[] = {
    "LD_", "DYLD_",      /* the dynamic loader (glibc; macOS) */
    "BASH_FUNC_",        /* bash's exported functions (BASH_FUNC_name%%) */
    "GIT_CONFIG_",       /* GIT_CONFIG_GLOBAL, _SYSTEM, _COUNT, _KEY_n, _VALUE_n, _PARAMETERS */
    "LUA_INIT",          /* Lua runs its value (LUA_INIT, LUA_INIT_5_4) at startup */
};
/* Never passed to the program. */
static const char *const stripped[] = {"HIVE_CREDENTIAL_KEY", "HIVE_NEW_CREDENTIAL_KEY"};

typedef enum source_kind { SRC_INHERITED, SRC_USAGE, SRC_ENV_FILE, SRC_FLAG, SRC_FILE } source_kind;

typedef struct var {
    char *name;
    char *tmpl;           /* the template (not secret) */
    source_kind kind;
    char *source;         /* "-e", "FILE", "usage ID", "inherited" */
    hive_secret value;    /* rendered */
    char path[SECRETFILE_PATH_MAX];   /* SRC_FILE: the file's path, NAME's value */
} var;

typedef struct run {
    const char *store_dir;
    bool no_refresh;
    bool allow_expired;
    bool dry_run;
    bool json;
    bool fresh;
    bool allow_launch_values;
    fresh_on_refresh on_refresh;
    int refresh_signal;   /* --on-refresh signal:NAME */
    int kill_signal;      /* 0: not given */
    int kill_timeout_ms;  /* -1: not given */
    size_t nfiles;
    int margin;
    bool mask;
    size_t mask_min;
    char **mask_vals;     /* every value to mask: whole variables and each credential key in them */
    size_t *mask_lens;
    size_t nmask;
    const char *unsafe_ok[MAX_LIST];
    size_t n_unsafe_ok;
    const char *render[MAX_LIST];   /* --render-env: inherited names to render */
    size_t n_render;
    bool pristine;                  /* -i: start from an empty environment */
    const char *keep[MAX_LIST];     /* --keep: inherited names passed on under -i */
    size_t n_keep;
    var *vars;
    size_t nvars;
} run;

/* With --dry-run: every error said so far (a JSON array of strings), for
 * the report. A dry run goes on past an error to find them all. */
static hive_json *problems;

/* The text fmt makes (the caller's, free), or NULL when out of memory. */
static char *vtext_of(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vtext_of(const char *fmt, va_list ap)
{
    char *s = NULL;

    return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

static char *text_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *text_of(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = vtext_of(fmt, ap);
    va_end(ap);
    return s;
}

/* --- the audit record -------------------------------------------------------- */

/* The audit log (open from when the store is, unless --dry-run), what the
 * launch hands out (names only), and the first error said. */
static hive_audit *audit;
static hive_json *audit_fields;
static char *audit_failure;

static void audit_note_failure(const char *text)
{
    if (audit != NULL && audit_failure == NULL)
        audit_failure = strdup(text);
}

/* At exit (hive-run failed, or the program could not be run): a
 * "failure" record with the first error. An exec'd program never gets here. */
static void audit_at_exit(void)
{
    if (audit_failure != NULL)
        CLI_AUDIT(hive_audit_event(audit, "failure", NULL, NULL, audit_failure));
    free(audit_failure);
    audit_failure = NULL;
    hive_json_free(&audit_fields);
    hive_audit_free(&audit);
}

/* Start recording this launch in the audit log of store st. */
static void audit_begin(hive_store *st)
{
    audit = cli_audit_open(hive_file_storage_dir(hive_store_storage(st)), "run");
    if (audit != NULL && !hive_audit_enabled(audit))
        hive_audit_free(&audit);
    if (audit != NULL) {
        atexit(audit_at_exit);
        cli_error_hook = audit_note_failure;   /* errors said by fresh.c and the others too */
    }
}

/* --- messages ------------------------------------------------------------------ */

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_msg(const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = vtext_of(fmt, ap);
    va_end(ap);
    {
        const char *text = msg ? msg : "(out of memory formatting the message)";
        cli_error("%s", text);
        if (problems != NULL)
            hive_json_push(&problems, hive_json_new_string(text, strlen(text)));
    }
    free(msg);
}

static void free_vars(run *r)
{
    for (size_t i = 0; i < r->nvars; i++) {
        free(r->vars[i].name);
        free(r->vars[i].tmpl);
        free(r->vars[i].source);
        hive_secret_free(&r->vars[i].value);
    }
    free(r->vars);
    r->vars = NULL;
    r->nvars = 0;
}

/* The POSIX shell-name rule (XBD 3.235): letters, digits and '_', not
 * starting with a digit. Every shell can read such a name, and none of
 * the tricks ('BASH_FUNC_f%%', 'LD_PRELOAD ', a look-alike '=') fits it. */
static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool valid_name(const char *name, size_t len)
{
    if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

static bool name_is_unsafe(const char *name);

#define NAME_RULE "a name is letters, digits and '_', not starting with a digit (the shell's rule)"

/* Say why name (len bytes, from what) is not a variable name, and which
 * name would be: the bad characters as '_', a leading digit behind '_'. */
static void bad_name_msg(const char *name, size_t len, const char *what)
{
    char fixed[128];
    size_t k = 0;

    if (len > 100)
        len = 100;
    if (len > 0 && name[0] >= '0' && name[0] <= '9')
        fixed[k++] = '_';
    for (size_t i = 0; i < len; i++)
        fixed[k++] = name_char(name[i]) ? name[i] : '_';
    fixed[k] = '\0';
    fail_msg("invalid variable name '%.*s' (%s): %s", (int)len, name, what, NAME_RULE);
    if (len == 0)
        cli_hint("give the variable a name: NAME=TEMPLATE");
    else if (memchr(name, '*', len) != NULL || memchr(name, '?', len) != NULL || memchr(name, '[', len) != NULL)
        cli_hint("patterns are not accepted: name each variable");
    else if (name_is_unsafe(fixed))
        cli_hint("and %s would be refused too: its value would be run as code", fixed);
    else
        cli_hint("a valid name would be %s", fixed);
}

static var *find_var(const run *r, const char *name, size_t name_len)
{
    for (size_t i = 0; i < r->nvars; i++)
        if (strlen(r->vars[i].name) == name_len && memcmp(r->vars[i].name, name, name_len) == 0)
            return &r->vars[i];
    return NULL;
}

/* Add or replace NAME (a later source overrides an earlier one). */
static int set_var(run *r, const char *name, size_t name_len, const char *tmpl, source_kind kind,
                   const char *source)
{
    var *v;

    if (!valid_name(name, name_len)) {
        bad_name_msg(name, name_len, source);
        return EXIT_FAIL;
    }
    v = find_var(r, name, name_len);
    if (v == NULL) {
        var *grown = realloc(r->vars, (r->nvars + 1) * sizeof(*grown));
        if (grown == NULL)
            goto nomem;
        r->vars = grown;
        v = &r->vars[r->nvars++];
        memset(v, 0, sizeof(*v));
        v->name = strndup(name, name_len);
        if (v->name == NULL)
            goto nomem;
    } else {
        free(v->tmpl);
        free(v->source);
    }
    v->tmpl = strdup(tmpl);
    v->source = strdup(source);
    v->kind = kind;
    if (v->tmpl == NULL || v->source == NULL)
        goto nomem;
    return 0;
nomem:
    fail_msg("out of memory");
    return EXIT_FAIL;
}

static bool has_template(const char *text)
{
    hive_template_refs *refs = NULL;
    size_t n;

    if (strstr(text, "{{") == NULL)
        return false;
    if (hive_template_refs_parse(&refs, text, strlen(text)) != HIVE_OK)
        return false;
    n = hive_template_refs_count(refs);
    hive_template_refs_free(&refs);
    return n > 0;
}

static bool name_is_unsafe(const char *name)
{
    for (size_t i = 0; i < sizeof(unsafe_exact) / sizeof(unsafe_exact[0]); i++)
        if (strcmp(name, unsafe_exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(unsafe_prefix) / sizeof(unsafe_prefix[0]); i++)
        if (strncmp(name, unsafe_prefix[i], strlen(unsafe_prefix[i])) == 0)
            return true;
    return false;
}

static bool is_stripped(const char *entry, size_t name_len)
{
    for (size_t i = 0; i < sizeof(stripped) / sizeof(stripped[0]); i++)
        if (strlen(stripped[i]) == name_len && memcmp(entry, stripped[i], name_len) == 0)
            return true;
    return false;
}

/* --- collecting the variables ------------------------------------------ */

#define SOURCE_INHERITED "from the environment, --render-env"

/* The inherited variables named by --render-env, in the order given. Only
 * those: a template in any other inherited variable may have been put
 * there by whoever controls its value (a branch name, a pull-request
 * title in CI), and rendering it would hand them a secret. */
static int collect_inherited(run *r)
{
    int ex = 0;

    for (size_t i = 0; i < r->n_render && (ex == 0 || r->dry_run); i++) {
        const char *name = r->render[i];
        const char *value = getenv(name);
        if (value == NULL) {
            fail_msg("--render-env %s: there is no %s in the environment", name, name);
            cli_hint("export %s='{{id.key}}' before running hive-run, or set it with -e %s='{{id.key}}'",
                     name, name);
            ex = EXIT_FAIL;
        } else if (set_var(r, name, strlen(name), value, SRC_INHERITED, SOURCE_INHERITED) != 0) {
            ex = EXIT_FAIL;
        }
    }
    return ex;
}

static bool in_list(const char *const *list, size_t n, const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == name_len && memcmp(list[i], name, name_len) == 0)
            return true;
    return false;
}

/* Whether the inherited entry e reaches the program as it is. */
static bool passed_through(const run *r, const char *e, size_t name_len)
{
    if (is_stripped(e, name_len) || find_var(r, e, name_len) != NULL)
        return false;
    return !r->pristine || in_list(r->keep, r->n_keep, e, name_len);
}

/*
 * Call found(ctx, entry, name_len) for each inherited variable that holds
 * a template and reaches the program unrendered (not named by
 * --render-env): what --dry-run and a hint tell the user about.
 */
static size_t each_unrendered(const run *r, void (*found)(void *ctx, const char *e, size_t name_len),
                              void *ctx)
{
    size_t n = 0;

    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || strstr(eq + 1, "{{") == NULL || !passed_through(r, *e, (size_t)(eq - *e)) ||
            !has_template(eq + 1))
            continue;
        if (found != NULL)
            found(ctx, *e, (size_t)(eq - *e));
        n++;
    }
    return n;
}

typedef struct name_text {
    char text[512];
    size_t len;
    size_t shown;
    size_t total;
} name_text;

static void add_name(void *ctx, const char *e, size_t name_len)
{
    name_text *t = ctx;
    int w;

    t->total++;
    if (t->shown == 4 || name_len > 100)
        return;
    w = snprintf(t->text + t->len, sizeof(t->text) - t->len, "%s%.*s", t->shown ? ", " : "", (int)name_len, e);
    if (w > 0 && (size_t)w < sizeof(t->text) - t->len) {
        t->len += (size_t)w;
        t->shown++;
    }
}

/* A hint naming the inherited variables whose templates pass unrendered:
 * someone who exported GH_TOKEN='{{github_oauth}}' learns why the program
 * got the template, and how to have it rendered. */
static void hint_unrendered(const run *r)
{
    name_text t = {.len = 0};

    if (each_unrendered(r, add_name, &t) == 0)
        return;
    if (t.total == 1)
        cli_hint("%s holds a template, passed as is: inherited variables are rendered only when "
                 "named (--render-env %s)", t.text, t.text);
    else
        cli_hint("%s%s hold templates, passed as is: inherited variables are rendered only when "
                 "named (--render-env NAME, once for each)", t.text, t.total > t.shown ? ", ..." : "");
}

/*
 * Refuse a spec whose credential's token lacks a scope the spec requires
 * (or has no record of its scopes, which cannot then be checked): the
 * program would fail at its server, or a token with less than it was
 * registered for would pass unnoticed. A credential that cannot be read
 * is left to the rendering, which says why.
 */
static int check_usage_scopes(hive_store *st, const hive_json *spec)
{
    const char *cred_id = hive_json_string(hive_json_get(spec, "credential_id"), NULL);
    hive_cred *c = NULL;
    char *msg = NULL;
    bool recorded = false;
    hive_rc rc;

    if (hive_json_size(hive_json_get(spec, "required_scopes")) == 0 ||
        hive_store_get_credential(st, &c, cred_id, HIVE_GET_NO_REFRESH) != HIVE_OK)
        return 0;
    rc = hive_store_check_scopes(st, &msg, &recorded, c);
    hive_cred_free(&c);
    if (rc != HIVE_OK) {
        fail_msg("%s", hive_last_error());
        return EXIT_FAIL;
    }
    if (msg == NULL)
        return 0;
    fail_msg("%s", msg);
    cli_scope_hint(cred_id, recorded);
    free(msg);
    return EXIT_FAIL;
}

static int collect_usage(run *r, hive_store *st, const char *id)
{
    const hive_json *spec = hive_store_get_usage(st, id);
    const hive_json *env;
    char *source = NULL;
    int ex = 0;

    if (spec == NULL) {
        hive_strlist ids = {0};
        hive_rc rc = hive_store_list_usage(st, &ids);   /* a damaged file says so */
        hive_strlist_free(&ids);
        if (rc != HIVE_OK) {
            fail_msg("%s", hive_last_error());
            return EXIT_FAIL;
        }
        fail_msg("No usage spec registered for '%s'", id);
        cli_hint("'hive-cred usage list' shows the registered specs");
        return EXIT_FAIL;
    }
    if ((ex = check_usage_scopes(st, spec)) != 0 && !r->dry_run)
        return ex;
    env = hive_json_get(spec, "env");
    if (hive_json_size(env) == 0) {
        fail_msg("usage spec '%s' has no env map", id);
        cli_hint("add one: hive-cred usage add %s --env NAME='{{%s.KEY}}'", id, id);
        return EXIT_FAIL;
    }
    if (asprintf(&source, "usage %s", id) < 0) {
        fail_msg("out of memory");
        return EXIT_FAIL;
    }
    for (size_t i = 0; (ex == 0 || r->dry_run) && i < hive_json_size(env); i++) {
        const char *name;
        const hive_json *t = hive_json_at(env, i, &name);
        if (set_var(r, name, strlen(name), hive_json_string(t, NULL), SRC_USAGE, source) != 0)
            ex = EXIT_FAIL;
    }
    free(source);
    return ex;
}

typedef struct env_file_ctx {
    const char *path;
    char why[400];        /* set when the lookup refused a name */
} env_file_ctx;

static void env_file_skipped(void *ctx, size_t line)
{
    const env_file_ctx *c = ctx;

    cli_warn("--env-file %s: could not parse the statement starting at line %zu; it was skipped "
             "(as python-dotenv does)", c->path, line);
}

/*
 * ${NAME} in the file, NAME not set earlier in it: hive-run's environment,
 * as python-dotenv reads os.environ. But never the store key, and never a
 * value holding a template: an inherited value is not the file author's,
 * and rendering it would let whoever sets it pull a secret (see
 * collect_inherited).
 */
static hive_rc env_file_lookup(void *ctx, const char *name, size_t name_len, const char **value,
                               size_t *value_len)
{
    env_file_ctx *c = ctx;
    char buf[256];
    const char *v;

    *value = NULL;
    if (name_len == 0 || name_len >= sizeof(buf) || memchr(name, '=', name_len) != NULL ||
        memchr(name, '\0', name_len) != NULL)
        return HIVE_OK;
    memcpy(buf, name, name_len);
    buf[name_len] = '\0';
    if (is_stripped(buf, name_len)) {
        snprintf(c->why, sizeof(c->why), "${%s} names the store key, which never reaches the program",
                 buf);
        return HIVE_ERR_INVALID;
    }
    v = getenv(buf);
    if (v == NULL)
        return HIVE_OK;
    if (strstr(v, "{{") != NULL) {
        snprintf(c->why, sizeof(c->why), "${%s} takes a value holding '{{' from the environment; "
                 "templates are rendered only when the file itself holds them", buf);
        return HIVE_ERR_INVALID;
    }
    *value = v;
    *value_len = strlen(v);
    return HIVE_OK;
}

static int collect_env_file(run *r, const char *path)
{
    env_file_ctx ctx = {.path = path};
    hive_dotenv_options opts = {.size = sizeof(opts), .lookup = env_file_lookup,
                                .skipped = env_file_skipped, .ctx = &ctx};
    hive_json *vals = NULL;
    hive_rc rc = hive_dotenv_load_with(&vals, path, &opts);
    int ex = 0;

    if (rc != HIVE_OK) {
        if (ctx.why[0] != '\0')
            fail_msg("--env-file %s: %s", path, ctx.why);
        else
            fail_msg("--env-file: %s", hive_last_error());
        if (ctx.why[0] == '\0')
            (void)cli_hint_dotenv(hive_last_error());
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < hive_json_size(vals) && (ex == 0 || r->dry_run); i++) {
        const char *name;
        const hive_json *t = hive_json_at(vals, i, &name);
        size_t len;
        const char *s = hive_json_string(t, &len);
        if (s == NULL)
            continue;   /* "NAME" alone: python-dotenv's None, which sets nothing */
        if (strlen(s) != len) {
            fail_msg("--env-file %s: the value of %s holds a NUL byte", path, name);
            ex = EXIT_FAIL;
        } else if (set_var(r, name, strlen(name), s, SRC_ENV_FILE, path) != 0) {
            ex = EXIT_FAIL;
        }
    }
    hive_json_free(&vals);
    return ex;
}

/* --- rendering ------------------------------------------------------------ */

/* The store's warnings, as printed: a hint may point at one only if it
 * was printed. Not secret (the store never puts a value in a message). */
static char *warned[16];
static size_t n_warned;

/* Paths of the store open to group or others: said once, at the end,
 * with their count (the storage tells each kind of path once). */
static size_t n_open;
static char *first_open;

static void print_warning(void *ctx, const char *msg)
{
    (void)ctx;
    if (strstr(msg, " by group or others ") != NULL) {
        if (n_open++ == 0)
            first_open = strdup(msg);
        return;
    }
    cli_warn("%s", msg);
    if (n_warned < sizeof(warned) / sizeof(warned[0]) && (warned[n_warned] = strdup(msg)) != NULL)
        n_warned++;
}

static void report_open_modes(const char *store_dir)
{
    if (n_open == 0)
        return;
    if (n_open == 1)
        cli_warn("%s", first_open ? first_open : "a store path is open to group or others");
    else
        cli_warn("%zu paths of the store can be reached by group or others, e.g.: %s", n_open,
                 first_open ? first_open : "?");
    cli_hint("hive-cred%s%s doctor --fix makes its directories 0700 and its files 0600",
             store_dir ? " --store " : "", store_dir ? store_dir : "");
    free(first_open);
    first_open = NULL;
    n_open = 0;
}

static bool was_warned(const char *msg)
{
    for (size_t i = 0; i < n_warned; i++)
        if (strcmp(warned[i], msg) == 0)
            return true;
    return false;
}

/* When hive-run started, less a second: a refresh stamped after it was
 * made for this launch (or by another one at the same moment). */
static hive_time started;

static bool refreshed_since_start(const hive_cred *c)
{
    hive_time t = hive_cred_time(c, HIVE_CRED_LAST_REFRESHED);

    return t.form != HIVE_TIME_NONE && hive_time_cmp(&t, &started) >= 0;
}

/* Why key of credential c (which has expired) was not renewed, and what
 * to do: said only from what is known here, so that the hint is true. */
static void expired_hint(const run *r, hive_store *st, const hive_cred *c, const char *id, const char *key)
{
    const hive_provider *p = hive_store_provider_for(st, c);
    hive_cred *again = NULL;

    if (!hive_cred_auto_refresh(c)) {
        cli_hint("the credential has auto_refresh off; save a new token with 'hive-cred add %s', "
                 "or pass --allow-expired", id);
    } else if (p != NULL && p->refresh == NULL) {
        cli_hint("its provider '%s' never refreshes; save a new value with 'hive-cred add %s', "
                 "or pass --allow-expired", p->id, id);
    } else if (r->no_refresh) {
        cli_hint("--no-refresh is set; without it hive-run tries to refresh the token through its provider");
    } else if (!refreshed_since_start(c) && strcmp(key, "access_token") != 0 &&
               hive_cred_get_key(c, "access_token", NULL) != NULL) {
        /* what is due is the access token, and it is not: nothing else is
         * ever renewed, so no refresh was tried */
        cli_hint("a refresh renews only the access token, not '%s': save a new one with "
                 "'hive-cred add %s', or pass --allow-expired", key, id);
    } else if (refreshed_since_start(c) ||
               hive_store_get_credential(st, &again, id, HIVE_GET_STRICT) == HIVE_OK) {
        /* refreshed in this launch (or just now, by the call above) */
        cli_hint("the credential was refreshed, but its key '%s' was not renewed; save a new value "
                 "with 'hive-cred add %s', or pass --allow-expired", key, id);
    } else if (was_warned(hive_last_error())) {
        /* the refresh failed: the store remembers why (and asks no one
         * again), and said so in a warning the first time */
        cli_hint("it could not be refreshed (see the warning above); save a new token with "
                 "'hive-cred add %s', or pass --allow-expired", id);
    } else {
        cli_hint("it could not be refreshed (%s); save a new token with 'hive-cred add %s', or pass "
                 "--allow-expired", hive_last_error(), id);
    }
    hive_cred_free(&again);
}

/* Fail on a referenced key that has expired. Rendering came first and
 * refreshed what could be; the credential is read as that left it. */
static int check_expiry(run *r, hive_store *st, const var *v)
{
    hive_template_refs *refs = NULL;
    hive_time now = hive_time_now();
    int ex = 0;

    if (hive_template_refs_parse(&refs, v->tmpl, strlen(v->tmpl)) != HIVE_OK)
        return 0;
    for (size_t i = 0; i < hive_template_refs_count(refs) && ex == 0; i++) {
        const char *id = hive_template_refs_id(refs, i);
        const char *key = hive_template_refs_key(refs, i);
        hive_cred *c = NULL;
        hive_time t;
        if (hive_store_get_credential(st, &c, id, HIVE_GET_NO_REFRESH) != HIVE_OK)
            continue;
        if (key == NULL)
            key = hive_cred_default_key(c);
        t = key ? hive_cred_key_expires(c, key) : (hive_time){0, 0, 0, HIVE_TIME_NONE};
        if (t.form != HIVE_TIME_NONE && hive_time_cmp(&t, &now) <= 0) {
            char when[HIVE_TIME_TEXT];
            hive_time_format(when, &t, true);
            if (r->allow_expired) {
                cli_warn("%s: key '%s' of credential '%s' expired at %s (passed on: --allow-expired)",
                         v->name, key, id, when);
            } else {
                fail_msg("%s: key '%s' of credential '%s' expired at %s", v->name, key, id, when);
                expired_hint(r, st, c, id, key);
                ex = EXIT_FAIL;
            }
        }
        hive_cred_free(&c);
    }
    hive_template_refs_free(&refs);
    return ex;
}

/*
 * A value holding "{{" that is not a template is a typo ({{ id }},
 * {{id}, {{id.}}): an error naming the variable, where it came from and
 * the column, never text handed to the program.
 */
/* Whether v's template is well formed; if not, say so, and give the
 * library's message in *why (when why is not NULL; the caller frees it):
 * saying so calls the library, which clears that message. */
static bool template_ok(const var *v, char **why)
{
    char *msg;

    if (hive_template_check(v->tmpl, strlen(v->tmpl), NULL) == HIVE_OK)
        return true;
    msg = text_of("%s", hive_last_error());
    fail_msg("%s (%s): %s", v->name, v->source, msg ? msg : "(out of memory)");
    if (why != NULL)
        *why = msg;
    else
        free(msg);
    cli_hint("a template is {{id}}, {{id.key}} or {{provider/alias.key}}: letters, digits, '_' "
             "and '-', no spaces");
    cli_hint("text that must hold '{{' as it is can come from the environment instead: "
             "hive-run renders only what -e, --env-file, --usage and --render-env give it");
    return false;
}

static int check_templates(const run *r)
{
    for (size_t i = 0; i < r->nvars; i++)
        if (!template_ok(&r->vars[i], NULL))
            return EXIT_FAIL;
    return 0;
}

/* Every credential the templates name, read ahead in one request where
 * the storage can (etcd): the renders below then cost no round trip each.
 * A failure is no error: the renders read again and say why. */
static void prefetch_all(const run *r, hive_store *st)
{
    const char *ids[64];
    size_t nids = 0;
    hive_template_refs *refs[64];
    size_t nv = 0;

    for (size_t i = 0; i < r->nvars && nv < 64; i++) {
        if (hive_template_refs_parse(&refs[nv], r->vars[i].tmpl, strlen(r->vars[i].tmpl)) != HIVE_OK)
            continue;
        for (size_t k = 0; k < hive_template_refs_count(refs[nv]) && nids < 64; k++)
            ids[nids++] = hive_template_refs_id(refs[nv], k);
        nv++;
    }
    if (nids > 1 && hive_storage_prefetch(hive_store_storage(st), ids, nids) != HIVE_OK) {
        /* the renders read one by one, and report what fails */
    }
    for (size_t i = 0; i < nv; i++)
        hive_template_refs_free(&refs[i]);
}

/* Whether v may be set: a refused name must be allowed by name; if not,
 * say so. */
static bool name_allowed(const run *r, const var *v)
{
    if (!name_is_unsafe(v->name) || in_list(r->unsafe_ok, r->n_unsafe_ok, v->name, strlen(v->name)))
        return true;
    fail_msg("refusing to set %s (%s): its value would be run as code", v->name, v->source);
    cli_hint("pass --allow-unsafe-env %s if that is what you want", v->name);
    return false;
}

/* Say that a credential of v's template could not be read (rc). */
static void read_failed(const var *v, hive_rc rc)
{
    fail_msg("%s (%s): %s", v->name, v->source, hive_last_error());
    if (rc == HIVE_ERR_NOT_FOUND)
        cli_hint("'hive-cred list' shows the stored ids");
    else if (rc == HIVE_ERR_NO_KEY)
        cli_hint("run 'hive-cred init' to create a key file, or set HIVE_CREDENTIAL_KEY");
    else if (rc == HIVE_ERR_DECRYPT)
        cli_hint("the file was written with another key, or is damaged; check HIVE_CREDENTIAL_KEY");
}

/* Whether v's rendered value can be an environment string; if not, say why. */
static bool value_fits(const var *v)
{
    if (v->kind == SRC_FILE)
        return true;   /* a file holds any bytes, of any size */
    if (strlen(v->value.data) != v->value.len) {
        fail_msg("%s: the value holds a NUL byte, which an environment variable cannot carry", v->name);
        return false;
    }
    if (strlen(v->name) + 1 + v->value.len + 1 > MAX_ARG_STRLEN_LINUX) {
        fail_msg("%s: NAME=VALUE is %zu bytes, over the kernel's limit of %d bytes for one "
                 "environment string", v->name, strlen(v->name) + 1 + v->value.len + 1,
                 MAX_ARG_STRLEN_LINUX);
        cli_hint("pass large secrets in a file instead of the environment");
        return false;
    }
    return true;
}

/* --mask: say which values are too short to be masked. */
static void warn_unmasked(const run *r)
{
    if (!r->mask)
        return;
    for (size_t i = 0; i < r->nvars; i++)
        if (r->vars[i].value.len > 0 && r->vars[i].value.len < r->mask_min)
            cli_warn("--mask: %s is %zu bytes, under --mask-min %zu: it will not be masked", r->vars[i].name,
                     r->vars[i].value.len, r->mask_min);
}


/* Append s to the array *arr unless it holds it already (*arr becomes
 * NULL when out of memory, as hive_json_push says). */
static void add_unique(hive_json **arr, const char *s)
{
    for (size_t i = 0; *arr != NULL && i < hive_json_size(*arr); i++)
        if (strcmp(hive_json_string(hive_json_at(*arr, i, NULL), NULL), s) == 0)
            return;
    hive_json_push(arr, hive_json_new_string(s, strlen(s)));
}

/* Add key to the keys of credential id in *creds, [{"id", "keys"}]. */
static void audit_add_key(hive_json **creds, const char *id, const char *key)
{
    hive_json *entry = NULL;
    hive_json *keys;

    for (size_t i = 0; *creds != NULL && i < hive_json_size(*creds) && entry == NULL; i++) {
        hive_json *e = hive_json_at_mut(*creds, i, NULL);
        if (strcmp(hive_json_string(hive_json_get(e, "id"), NULL), id) == 0)
            entry = e;
    }
    if (entry == NULL && *creds != NULL) {
        entry = hive_json_new(HIVE_JSON_OBJECT);
        hive_json_put(&entry, "id", hive_json_new_string(id, strlen(id)));
        hive_json_put(&entry, "keys", hive_json_new(HIVE_JSON_ARRAY));
        if (entry == NULL)
            return;
        hive_json_push(creds, entry);
        if (*creds == NULL)
            return;
    }
    if (entry == NULL)
        return;
    keys = hive_json_get_mut(entry, "keys");
    for (size_t i = 0; i < hive_json_size(keys); i++)
        if (strcmp(hive_json_string(hive_json_at(keys, i, NULL), NULL), key) == 0)
            return;
    if (hive_json_append(keys, hive_json_new_string(key, strlen(key))) != HIVE_OK)
        hive_json_free(creds);   /* out of memory: no half list in the record */
}

/* What the launch hands out, for its record: each variable's name, the
 * credentials and keys its template names (a default key by its name),
 * which of them were refreshed for it, and how the program runs. */
static void audit_note_launch(const run *r, hive_store *st)
{
    hive_json *f = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *names = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *creds = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *fresh = hive_json_new(HIVE_JSON_ARRAY);
    const char *mode = r->mask ? "mask" : r->fresh ? "fresh" : "exec";

    if (audit == NULL || f == NULL || names == NULL || creds == NULL || fresh == NULL)
        goto out;
    for (size_t i = 0; i < r->nvars; i++) {
        hive_template_refs *refs = NULL;
        const var *v = &r->vars[i];
        add_unique(&names, v->name);
        if (hive_template_refs_parse(&refs, v->tmpl, strlen(v->tmpl)) != HIVE_OK)
            continue;
        for (size_t k = 0; k < hive_template_refs_count(refs); k++) {
            const char *id = hive_template_refs_id(refs, k);
            const char *key = hive_template_refs_key(refs, k);
            hive_cred *c = NULL;
            if (hive_store_get_credential(st, &c, id, HIVE_GET_NO_REFRESH) != HIVE_OK)
                continue;
            if (key == NULL)
                key = hive_cred_default_key(c);
            if (key != NULL)
                audit_add_key(&creds, id, key);
            if (refreshed_since_start(c))
                add_unique(&fresh, id);
            hive_cred_free(&c);
        }
        hive_template_refs_free(&refs);
    }
    hive_json_put(&f, "mode", hive_json_new_string(mode, strlen(mode)));
    hive_json_put(&f, "variables", names);
    hive_json_put(&f, "credentials", creds);
    hive_json_put(&f, "refreshed", fresh);
    names = creds = fresh = NULL;   /* in f, or freed by a failed put */
    if (n_warned > 0) {
        /* what was warned about: a refresh that failed and fell back to the
         * stored token, a token about to expire */
        hive_json *warns = hive_json_new(HIVE_JSON_ARRAY);
        for (size_t i = 0; warns != NULL && i < n_warned; i++)
            add_unique(&warns, warned[i]);
        hive_json_put(&f, "warnings", warns);
    }
    if (f != NULL) {
        hive_json_free(&audit_fields);
        audit_fields = f;
        f = NULL;
    }
out:
    hive_json_free(&f);
    hive_json_free(&names);
    hive_json_free(&creds);
    hive_json_free(&fresh);
}

/* The launch record, just before exec: the program's path (never its
 * arguments, which may hold secrets: only how many), and what
 * audit_note_launch found. */
static void audit_launch(char **argv, char **envp)
{
    char path[PATH_MAX];
    hive_json *f;
    const char *search;
    int argc = 0;

    if (audit == NULL)
        return;
    f = audit_fields ? hive_json_clone(audit_fields) : hive_json_new(HIVE_JSON_OBJECT);
    while (argv[argc] != NULL)
        argc++;
    search = cli_env_value(envp, "PATH");
    if (strchr(argv[0], '/') != NULL ? realpath(argv[0], path) == NULL
                                     : !fresh_which(path, sizeof(path), argv[0], search ? search : CLI_DEFAULT_PATH))
        snprintf(path, sizeof(path), "%.*s", PATH_MAX - 1, argv[0]);   /* exec will say what is wrong */
    hive_json_put(&f, "program", hive_json_new_string(path, strlen(path)));
    hive_json_put(&f, "args", hive_json_new_int(argc - 1));
    if (f != NULL)
        CLI_AUDIT(hive_audit_write(audit, "launch", f));
    hive_json_free(&f);
}


static int render_all(run *r, hive_store *st)
{
    unsigned flags = r->no_refresh ? HIVE_GET_NO_REFRESH : 0;

    prefetch_all(r, st);

    for (size_t i = 0; i < r->nvars; i++) {
        var *v = &r->vars[i];
        hive_rc rc;
        int ex;

        if (!name_allowed(r, v))
            return EXIT_FAIL;
        rc = hive_store_resolve(st, &v->value, v->tmpl, flags);
        if (rc != HIVE_OK) {
            read_failed(v, rc);
            return EXIT_FAIL;
        }
        if (!value_fits(v))
            return EXIT_FAIL;
        ex = check_expiry(r, st, v);
        if (ex != 0)
            return ex;
    }
    audit_note_launch(r, st);
    return 0;
}

/* --- the new environment ------------------------------------------------- */

static char **build_env(const run *r)
{
    size_t n = 0;
    size_t k = 0;
    char **envp;

    for (char **e = environ; *e != NULL; e++)
        n++;
    envp = calloc(n + r->nvars + 1, sizeof(char *));
    if (envp == NULL)
        return NULL;
    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (passed_through(r, *e, eq ? (size_t)(eq - *e) : strlen(*e)))
            envp[k++] = *e;
    }
    for (size_t i = 0; i < r->nvars; i++) {
        const var *v = &r->vars[i];
        /* a file's variable holds its path (none yet in a dry run) */
        const char *value = v->kind == SRC_FILE ? v->path : v->value.data;
        size_t len = v->kind == SRC_FILE ? strlen(v->path) : v->value.len;
        size_t nl = strlen(v->name);
        char *s = malloc(nl + 1 + len + 1);
        if (s == NULL)
            return NULL;   /* exiting: the OS takes it back */
        memcpy(s, v->name, nl);
        s[nl] = '=';
        memcpy(s + nl + 1, value, len + 1);
        envp[k++] = s;
    }
    envp[k] = NULL;
    return envp;
}

static size_t env_count(char **envp)
{
    size_t n = 0;

    while (envp[n] != NULL)
        n++;
    return n;
}

/* The size of the entry of envp that extra ("NAME=value") replaces, or 0. */
static size_t replaced_size(char **envp, const char *extra)
{
    size_t nl = strcspn(extra, "=");

    for (char **e = envp; *e != NULL; e++)
        if (strncmp(*e, extra, nl) == 0 && (*e)[nl] == '=')
            return strlen(*e) + 1;
    return 0;
}

/* Fail unless argv and envp, with the entries extra (NULL-terminated,
 * "NAME=value", each replacing one of the same name) set, fit ARG_MAX. */
static int check_size_with(char **argv, char **envp, const char *const *extra)
{
    long arg_max = sysconf(_SC_ARG_MAX);
    size_t total = 0;
    size_t count = 0;

    for (char **a = argv; *a != NULL; a++, count++)
        total += strlen(*a) + 1;
    for (char **e = envp; *e != NULL; e++, count++)
        total += strlen(*e) + 1;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        size_t old = replaced_size(envp, extra[i]);
        total += strlen(extra[i]) + 1 - old;
        count += old == 0;
    }
    total += (count + 2) * sizeof(char *);
    if (arg_max > 0 && total > (size_t)arg_max) {
        fail_msg("the arguments and environment take %zu bytes, over the system's ARG_MAX of %ld",
                 total, arg_max);
        cli_hint("the program could not be started (E2BIG); pass large values in files");
        return EXIT_FAIL;
    }
    return 0;
}

static int check_total_size(char **argv, char **envp)
{
    return check_size_with(argv, envp, NULL);
}

/* The environment handed to execve: kept reachable for the leak checker
 * on the failure path, where the process exits right after. */
static char **kept_envp;

/* --- exec ------------------------------------------------------------------- */

static void exec_file(char *path, char **argv, char **envp)
{
    execve(path, argv, envp);
    if (errno == ENOEXEC) {
        /* a script without #!: run it with sh, as execvp does */
        size_t n = 0;
        char **sh_argv;
        int saved;
        while (argv[n] != NULL)
            n++;
        sh_argv = calloc(n + 2, sizeof(char *));
        if (sh_argv == NULL)
            return;
        static char sh[] = "sh";
        sh_argv[0] = sh;
        sh_argv[1] = path;
        memcpy(&sh_argv[2], &argv[1], n * sizeof(char *));
        execve("/bin/sh", sh_argv, envp);
        saved = errno;
        free(sh_argv);
        errno = saved;
    }
}

/* Exec argv[0], searching the PATH the program will have. Returns only on
 * failure, with the exit status to use. */
static int exec_program(char **argv, char **envp)
{
    char *file = argv[0];
    int err = ENOENT;
    bool denied = false;

    if (*file == '\0') {
        fail_msg("the command is empty");
        return EXIT_NOTFOUND;
    }
    audit_launch(argv, envp);
    if (strchr(file, '/') != NULL) {
        exec_file(file, argv, envp);
        err = errno;
    } else {
        const char *cursor = cli_env_value(envp, "PATH");
        char full[PATH_MAX];
        if (cursor == NULL)
            cursor = CLI_DEFAULT_PATH;
        while (cli_path_next(&cursor, file, full, sizeof(full))) {
            exec_file(full, argv, envp);
            if (errno == EACCES)
                denied = true;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG)
                err = errno;
        }
        if (err == ENOENT && denied)
            err = EACCES;
    }
    if (err == ENOENT || err == ENOTDIR) {
        fail_msg("%s: command not found", file);
        if (strchr(file, '/') == NULL)
            cli_hint("it is not in PATH; give its path, or check PATH");
        else
            cli_hint("no such file: check the path (relative paths start from %s)", ".");
        return EXIT_NOTFOUND;
    }
    if (err == EACCES || err == EISDIR || err == ENOEXEC || err == EPERM) {
        fail_msg("%s: cannot execute: %s", file, strerror(err));
        cli_hint("check that it is a program and has execute permission (chmod +x)");
        return EXIT_NOEXEC;
    }
    if (err == E2BIG) {
        fail_msg("%s: the arguments and environment are too large (E2BIG)", file);
        return EXIT_NOEXEC;
    }
    fail_msg("%s: cannot execute: %s", file, strerror(err));
    return EXIT_NOEXEC;
}

/* Set entry ("NAME=value", which envp takes) in envp, replacing NAME. */
static char **env_put(char **envp, char *entry)
{
    size_t n = env_count(envp);
    size_t nl = strcspn(entry, "=");
    char **grown;

    for (size_t i = 0; i < n; i++) {
        if (strncmp(envp[i], entry, nl) == 0 && envp[i][nl] == '=') {
            envp[i] = entry;
            return envp;
        }
    }
    grown = realloc(envp, (n + 2) * sizeof(char *));
    if (grown == NULL)
        return NULL;
    grown[n] = entry;
    grown[n + 1] = NULL;
    return grown;
}

static int add_mask_value(run *r, const char *v, size_t len)
{
    char **vals = realloc(r->mask_vals, (r->nmask + 1) * sizeof(char *));
    size_t *lens;

    if (vals == NULL)
        return -1;
    r->mask_vals = vals;
    lens = realloc(r->mask_lens, (r->nmask + 1) * sizeof(size_t));
    if (lens == NULL)
        return -1;
    r->mask_lens = lens;
    r->mask_vals[r->nmask] = malloc(len + 1);
    if (r->mask_vals[r->nmask] == NULL)
        return -1;
    memcpy(r->mask_vals[r->nmask], v, len);
    r->mask_vals[r->nmask][len] = '\0';
    r->mask_lens[r->nmask++] = len;
    return 0;
}

/* --mask hides each variable's value and each credential value a template
 * put into it: "Bearer {{tok}}" must not leak the token alone either. */
static int collect_mask_values(run *r, hive_store *st)
{
    /* exactly what render_all put in: a refresh now would mask a newer token */
    unsigned flags = HIVE_GET_NO_REFRESH;

    for (size_t i = 0; i < r->nvars; i++) {
        hive_template_refs *refs = NULL;
        if (add_mask_value(r, r->vars[i].value.data, r->vars[i].value.len) != 0)
            goto nomem;
        if (hive_template_refs_parse(&refs, r->vars[i].tmpl, strlen(r->vars[i].tmpl)) != HIVE_OK)
            goto nomem;
        for (size_t k = 0; k < hive_template_refs_count(refs); k++) {
            hive_secret v = HIVE_SECRET_INIT;
            if (hive_store_get_key(st, &v, hive_template_refs_id(refs, k), hive_template_refs_key(refs, k), flags) ==
                HIVE_OK) {
                int bad = add_mask_value(r, v.data, v.len);
                hive_secret_free(&v);
                if (bad) {
                    hive_template_refs_free(&refs);
                    goto nomem;
                }
            }
        }
        hive_template_refs_free(&refs);
    }
    return 0;
nomem:
    fail_msg("out of memory");
    return EXIT_FAIL;
}

/* In the --mask child: exec, or return the status to _exit with. */
static int exec_child(char **argv, char **envp)
{
    return exec_program(argv, envp);
}

/* --mask: run the program masked; under --fresh, following its snapshot. */
static int run_masked(const run *r, char **argv, char **envp)
{
    mask_opts o = {(const char *const *)r->mask_vals, r->mask_lens, r->nmask, r->mask_min,
                   fresh_snapshot_fd(), NULL, 0};
    mask_fresh_var *fv = calloc(r->nvars + 1, sizeof(*fv));
    int ex;

    if (fv == NULL) {
        fail_msg("out of memory");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < r->nvars; i++) {
        fv[i].name = r->vars[i].name;
        fv[i].tmpl = r->vars[i].tmpl;
    }
    o.fresh_vars = fv;
    o.nfresh = r->nvars;
    ex = mask_run(argv, envp, &o, exec_child);
    free(fv);
    return ex;
}

/* --- dry run ---------------------------------------------------------------- */

/*
 * A dry run tells what a launch would do, and every problem that would stop
 * it, without doing any of it: credentials are read as stored (no refresh:
 * no token request, no libcurl, nothing written), and whether a launch
 * would refresh a token is told from the credential and its provider.
 */

static hive_json *json_text(const char *s)
{
    return s != NULL ? hive_json_new_string(s, strlen(s)) : hive_json_new(HIVE_JSON_NULL);
}

static hive_json *json_bool(bool b)
{
    return hive_json_new(b ? HIVE_JSON_TRUE : HIVE_JSON_FALSE);
}

/* NULL when a launch would refresh c's tokens once due; else why not (the
 * caller's, free). Told without asking anyone: can_refresh only looks. */
static char *why_not_refreshed(const run *r, hive_store *st, const hive_cred *c)
{
    hive_provider *p = hive_store_provider_for(st, c);

    if (!hive_cred_auto_refresh(c))
        return text_of("auto_refresh is off");
    if (p == NULL)
        return text_of("no provider handles it");
    if (p->refresh == NULL)
        return text_of("its provider '%s' never refreshes", p->id);
    if (strcmp(p->id, "bearer_token") == 0)
        return text_of("a bearer token cannot be refreshed");
    if (r->no_refresh)
        return text_of("--no-refresh is set");
    if (!hive_store_can_refresh(st, c)) {
        /* "Failed to refresh credential 'ID': why": the why */
        const char *msg = hive_last_error();
        const char *colon = strncmp(msg, "Failed to refresh credential '", 30) == 0 ? strstr(msg, "': ") : NULL;
        return text_of("%s", colon ? colon + 3 : msg);
    }
    return NULL;
}

/* The provider a refresh of c would go through, as the user named it. */
static const char *provider_name(hive_store *st, const hive_cred *c)
{
    const char *pid = hive_cred_provider_id(c);
    const hive_provider *p;

    if (pid != NULL && *pid != '\0')
        return pid;
    p = hive_store_provider_for(st, c);
    return p != NULL ? p->id : NULL;
}

/* A missing store key is said once, not for every reference. */
static bool said_no_key;

typedef struct dry_ref_info {
    hive_cred *cred;      /* as stored; NULL when it could not be read */
    const char *key;      /* the key used: the named one, else the default */
    char *problem;        /* what stops the launch, or NULL */
    char *refresh;        /* what a launch would do about the expiry, or NULL */
    bool refreshes;
    int64_t expires_in;
    char when[HIVE_TIME_TEXT];
} dry_ref_info;

/* Expiry of one reference: would a launch refresh it, pass it, or stop? */
static void dry_expiry(const run *r, hive_store *st, const var *v, const char *id, dry_ref_info *d)
{
    hive_time t = hive_cred_key_expires(d->cred, d->key);
    hive_time now = hive_time_now();
    char *why;

    if (t.form == HIVE_TIME_NONE)
        return;
    hive_time_format(d->when, &t, true);
    d->expires_in = t.sec - now.sec;
    why = why_not_refreshed(r, st, d->cred);
    if (why == NULL && hive_cred_needs_refresh(d->cred, r->margin, now)) {
        const char *pname = provider_name(st, d->cred);
        d->refreshes = true;
        d->refresh = d->expires_in > 0
                         ? text_of("would refresh (expires in %lld s, provider %s)", (long long)d->expires_in,
                                   pname ? pname : "?")
                         : text_of("would refresh (expired %lld s ago, provider %s)", (long long)-d->expires_in,
                                   pname ? pname : "?");
    } else if (d->expires_in <= 0 && r->allow_expired) {
        cli_warn("%s: key '%s' of credential '%s' expired at %s (passed on: --allow-expired)", v->name,
                 d->key, id, d->when);
        d->refresh = text_of("expired, would not be refreshed: %s; passed on: --allow-expired",
                             why ? why : "not due");
    } else if (d->expires_in <= 0) {
        d->problem = text_of("key '%s' of credential '%s' expired at %s and would not be refreshed: %s",
                             d->key, id, d->when, why ? why : "not due");
        fail_msg("%s (%s): %s", v->name, v->source, d->problem ? d->problem : "expired");
        cli_hint("save a new token with 'hive-cred add %s', or pass --allow-expired", id);
    } else if (why != NULL && d->expires_in <= r->margin) {
        d->refresh = text_of("expires in %lld s, would not be refreshed: %s", (long long)d->expires_in, why);
    } else {
        d->refresh = text_of("expires in %lld s", (long long)d->expires_in);
    }
    free(why);
}

/* One reference of v's template: its credential and key, read as stored,
 * and what a launch would do about its expiry. A problem is said, and
 * added to var_problems. */
static hive_json *dry_ref(const run *r, hive_store *st, const var *v, const hive_template_refs *refs, size_t i,
                          hive_json **var_problems)
{
    const char *id = hive_template_refs_id(refs, i);
    hive_json *o = hive_json_new(HIVE_JSON_OBJECT);
    dry_ref_info d = {.key = hive_template_refs_key(refs, i)};
    hive_secret value = HIVE_SECRET_INIT;
    /* the store's own words for a missing credential or key */
    hive_rc rc = hive_store_get_key(st, &value, id, d.key, HIVE_GET_NO_REFRESH);

    if (rc == HIVE_OK) {
        hive_secret_free(&value);
        rc = hive_store_get_credential(st, &d.cred, id, HIVE_GET_NO_REFRESH);
    }
    if (rc != HIVE_OK) {
        d.problem = text_of("%s", hive_last_error());
        if (rc != HIVE_ERR_NO_KEY || !said_no_key)
            read_failed(v, rc);
        said_no_key = said_no_key || rc == HIVE_ERR_NO_KEY;
    } else {
        if (d.key == NULL)
            d.key = hive_cred_default_key(d.cred);
        dry_expiry(r, st, v, id, &d);
    }
    if (d.problem != NULL)
        hive_json_push(var_problems, json_text(d.problem));
    hive_json_put(&o, "credential", json_text(id));
    hive_json_put(&o, "key", json_text(d.key));
    hive_json_put(&o, "expires_at", json_text(*d.when ? d.when : NULL));
    hive_json_put(&o, "expires_in", *d.when ? hive_json_new_int(d.expires_in) : hive_json_new(HIVE_JSON_NULL));
    hive_json_put(&o, "would_refresh", json_bool(d.refreshes));
    hive_json_put(&o, "provider", json_text(d.cred ? provider_name(st, d.cred) : NULL));
    hive_json_put(&o, "refresh", json_text(d.refresh));
    hive_json_put(&o, "problem", json_text(d.problem));
    free(d.problem);
    free(d.refresh);
    hive_cred_free(&d.cred);
    return o;
}

static const char *kind_name(source_kind k)
{
    switch (k) {
    case SRC_INHERITED: return "inherited";
    case SRC_USAGE: return "usage";
    case SRC_ENV_FILE: return "env-file";
    case SRC_FLAG: return "flag";
    case SRC_FILE: return "file";
    }
    return "?";
}

/* The last problem said, for the variable's own list. */
static hive_json *last_problem(void)
{
    size_t n = hive_json_size(problems);

    return n > 0 ? hive_json_clone(hive_json_at(problems, n - 1, NULL)) : json_text("?");
}

/* One variable: its source, template and references, and its problems. A
 * variable without problems is rendered from the values as stored, for
 * its length and the size checks (the value itself is never shown). */
static hive_json *dry_var(const run *r, hive_store *st, var *v)
{
    hive_json *o = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *refs_json = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *vp = hive_json_new(HIVE_JSON_ARRAY);
    hive_template_refs *refs = NULL;
    bool rendered = false;
    char *why = NULL;

    if (!name_allowed(r, v))
        hive_json_push(&vp, json_text("refused: its value would be run as code (--allow-unsafe-env allows it)"));
    if (!template_ok(v, &why)) {
        hive_json_push(&vp, json_text(why));
        free(why);
    } else if (hive_template_refs_parse(&refs, v->tmpl, strlen(v->tmpl)) == HIVE_OK) {
        for (size_t i = 0; i < hive_template_refs_count(refs); i++)
            hive_json_push(&refs_json, dry_ref(r, st, v, refs, i, &vp));
        hive_template_refs_free(&refs);
    }
    if (hive_json_size(vp) == 0) {
        hive_rc rc = hive_store_resolve(st, &v->value, v->tmpl, HIVE_GET_NO_REFRESH);
        if (rc != HIVE_OK)
            read_failed(v, rc);
        rendered = rc == HIVE_OK && value_fits(v);
        if (!rendered)
            hive_json_push(&vp, last_problem());
    }
    hive_json_put(&o, "name", json_text(v->name));
    hive_json_put(&o, "source", json_text(kind_name(v->kind)));
    hive_json_put(&o, "origin", json_text(v->source));
    hive_json_put(&o, "template", json_text(v->tmpl));
    hive_json_put(&o, "references", refs_json);
    hive_json_put(&o, "value", json_text("********"));
    hive_json_put(&o, "length", rendered ? hive_json_new_int((int64_t)v->value.len) : hive_json_new(HIVE_JSON_NULL));
    hive_json_put(&o, "problems", vp);
    return o;
}

/* The total size a launch checks before exec, on the values as stored. */
static void dry_sizes(const run *r, char **argv)
{
    char **envp = build_env(r);
    size_t n;

    if (envp == NULL) {
        fail_msg("out of memory");
        return;
    }
    (void)check_total_size(argv, envp);
    n = env_count(envp);
    for (size_t i = n - r->nvars; i < n; i++)
        cli_free_secret(envp[i], strlen(envp[i]) + 1);
    free(envp);
}

static void append_name(void *ctx, const char *e, size_t name_len)
{
    hive_json_push((hive_json **)ctx, hive_json_new_string(e, name_len));
}

static void print_dry_run(const run *r, const hive_json *doc, char **argv)
{
    const hive_json *vars = hive_json_get(doc, "variables");
    const hive_json *removed = hive_json_get(doc, "removed");
    const hive_json *kept = hive_json_get(doc, "kept");
    const hive_json *unrendered = hive_json_get(doc, "not_rendered");
    size_t nproblems = hive_json_size(hive_json_get(doc, "problems"));

    printf("%s:", nproblems ? "would not run" : "would run");
    for (char **a = argv; *a != NULL; a++)
        printf(" %s", *a);
    printf("\n");
    for (size_t i = 0; i < hive_json_size(vars); i++) {
        const hive_json *o = hive_json_at(vars, i, NULL);
        const hive_json *refs = hive_json_get(o, "references");
        const hive_json *vp = hive_json_get(o, "problems");
        printf("  %s%s (%s %s) template %s\n", hive_json_string(hive_json_get(o, "name"), NULL),
               hive_json_typeof(hive_json_get(o, "length")) == HIVE_JSON_NULL ? "" : "=********",
               hive_json_string(hive_json_get(o, "source"), NULL),
               hive_json_string(hive_json_get(o, "origin"), NULL),
               hive_json_string(hive_json_get(o, "template"), NULL));
        for (size_t k = 0; k < hive_json_size(refs); k++) {
            const hive_json *ref = hive_json_at(refs, k, NULL);
            const char *exp = hive_json_string(hive_json_get(ref, "expires_at"), NULL);
            const char *what = hive_json_string(hive_json_get(ref, "refresh"), NULL);
            if (hive_json_string(hive_json_get(ref, "problem"), NULL) != NULL && exp == NULL)
                continue;   /* not read: the problem line says why */
            printf("      credential %s key %s%s%s%s%s\n", hive_json_string(hive_json_get(ref, "credential"), NULL),
                   hive_json_string(hive_json_get(ref, "key"), NULL), exp ? ", expires " : "", exp ? exp : "",
                   what ? ", " : "", what ? what : "");
        }
        for (size_t k = 0; k < hive_json_size(vp); k++)
            printf("      problem: %s\n", hive_json_string(hive_json_at(vp, k, NULL), NULL));
    }
    for (size_t i = 0; i < hive_json_size(removed); i++)
        printf("  unset %s\n", hive_json_string(hive_json_at(removed, i, NULL), NULL));
    if (r->pristine) {
        printf("  environment: empty (-i)");
        for (size_t i = 0; i < hive_json_size(kept); i++)
            printf("%s%s", i ? ", " : "; kept: ", hive_json_string(hive_json_at(kept, i, NULL), NULL));
        printf("\n");
    }
    for (size_t i = 0; i < hive_json_size(unrendered); i++) {
        const char *name = hive_json_string(hive_json_at(unrendered, i, NULL), NULL);
        printf("  %s: holds a template, passed as is (inherited; --render-env %s renders it)\n", name, name);
    }
    if (nproblems > 0)
        printf("%zu problem%s: hive-run would exit 125 without running the program\n", nproblems,
               nproblems == 1 ? "" : "s");
}

/*
 * --dry-run: the report, every problem in it (each also said on stderr as
 * it is found), exit 125 if there was any. The sources were collected
 * before, going on past their errors, which are in problems already.
 */
static int dry_run(run *r, hive_store *st, char **argv)
{
    hive_json *doc = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *vars = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *cmd = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *removed = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *unrendered = hive_json_new(HIVE_JSON_ARRAY);
    hive_json *kept = hive_json_new(HIVE_JSON_ARRAY);
    size_t nproblems;

    for (char **a = argv; *a != NULL; a++)
        hive_json_push(&cmd, json_text(*a));
    for (size_t i = 0; i < sizeof(stripped) / sizeof(stripped[0]); i++)
        if (getenv(stripped[i]) != NULL)
            hive_json_push(&removed, json_text(stripped[i]));
    for (size_t i = 0; i < r->nvars; i++)
        hive_json_push(&vars, dry_var(r, st, &r->vars[i]));
    if (hive_json_size(problems) == 0) {
        dry_sizes(r, argv);
        warn_unmasked(r);
    }
    hive_json_put(&doc, "command", cmd);
    hive_json_put(&doc, "variables", vars);
    hive_json_put(&doc, "removed", removed);
    /* -i: nothing inherited but the --keep names that exist */
    hive_json_put(&doc, "environment", json_text(r->pristine ? "empty" : "inherited"));
    for (size_t i = 0; i < r->n_keep; i++)
        if (getenv(r->keep[i]) != NULL && passed_through(r, r->keep[i], strlen(r->keep[i])))
            hive_json_push(&kept, json_text(r->keep[i]));
    hive_json_put(&doc, "kept", kept);
    (void)each_unrendered(r, append_name, &unrendered);
    hive_json_put(&doc, "not_rendered", unrendered);
    nproblems = hive_json_size(problems);
    hive_json_put(&doc, "ok", json_bool(nproblems == 0));
    hive_json_put(&doc, "problems", problems);
    problems = NULL;
    if (doc == NULL || (r->json && cli_print_json(doc) != HIVE_OK)) {
        cli_error("%s", doc == NULL ? "out of memory" : hive_last_error());
        hive_json_free(&doc);
        return EXIT_FAIL;
    }
    if (!r->json)
        print_dry_run(r, doc, argv);
    hive_json_free(&doc);
    if (fflush(stdout) != 0)
        return EXIT_FAIL;
    return nproblems > 0 ? EXIT_FAIL : 0;
}

/* --- the launch ------------------------------------------------------------ */

/* --file: start the holder of the files, and note their paths. */
static int start_files(run *r, int *ctl)
{
    const char *contents[SECRETFILE_MAX];
    size_t lens[SECRETFILE_MAX];
    char paths[SECRETFILE_MAX][SECRETFILE_PATH_MAX];
    var *files[SECRETFILE_MAX];
    size_t n = 0;

    *ctl = -1;
    for (size_t i = 0; i < r->nvars; i++) {
        if (r->vars[i].kind != SRC_FILE)
            continue;
        if (n == SECRETFILE_MAX) {
            fail_msg("at most %d --file options", SECRETFILE_MAX);
            return EXIT_FAIL;
        }
        files[n] = &r->vars[i];
        contents[n] = r->vars[i].value.data;
        lens[n++] = r->vars[i].value.len;
    }
    r->nfiles = n;
    if (n == 0)
        return 0;
    *ctl = secretfile_start(paths, contents, lens, n);
    if (*ctl < 0) {
        int e = errno;
        fail_msg("--file: cannot make the files: %s", strerror(e));
        if (e == ENOSYS)
            cli_hint("--file needs Linux 5.3 or later (memfd, pidfd_open) and /proc mounted");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(files[i]->path, paths[i], sizeof(paths[i]));
    return 0;
}

/* --fresh: check, make the snapshot, add what the program's environment
 * needs for it, start the refresher. *notify: the end hive-run reads
 * under --on-refresh restart. */
static int start_fresh(run *r, char ***envp, char **argv, int files_ctl, int *notify)
{
    fresh_var fv[HIVE_FRESH_MAX];
    fresh_config cfg = {.store_dir = r->store_dir, .margin = r->margin,
                        .allow_launch_values = r->allow_launch_values, .on_refresh = r->on_refresh,
                        .signal = r->refresh_signal, .files_ctl = files_ctl, .notify_fd = -1};
    int pp[2] = {-1, -1};
    char **extra = NULL;
    int ex;

    *notify = -1;
    if (r->nvars > HIVE_FRESH_MAX) {
        fail_msg("--fresh keeps at most %d variables and files fresh, not %zu", HIVE_FRESH_MAX, r->nvars);
        return EXIT_FAIL;
    }
    for (size_t i = 0, f = 0; i < r->nvars; i++) {
        fv[i].name = r->vars[i].name;
        fv[i].tmpl = r->vars[i].tmpl;
        fv[i].value = r->vars[i].value.data;
        fv[i].len = r->vars[i].value.len;
        fv[i].file = r->vars[i].kind == SRC_FILE ? (int)f++ : -1;
    }
    ex = fresh_setup(&cfg, fv, r->nvars, argv, *envp, &extra);
    if (ex != 0)
        return ex;
    /* the size of what the program really gets, with what --fresh adds */
    if (extra != NULL) {
        ex = check_size_with(argv, *envp, (const char *const *)extra);
        for (size_t i = 0; ex == 0 && extra[i] != NULL; i++)
            if ((*envp = env_put(*envp, extra[i])) == NULL) {
                fail_msg("out of memory");
                return EXIT_FAIL;
            }
        free(ex == 0 ? NULL : extra[0]);
        free(ex == 0 ? NULL : extra[1]);
        free(extra);
        if (ex != 0) {
            fresh_discard();
            return ex;
        }
    }
    if (r->on_refresh == FRESH_ON_RESTART) {
        /* never blocks the refresher: one byte unread is news enough */
        if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) != 0) {
            fail_msg("--on-refresh restart: %s", strerror(errno));
            return EXIT_FAIL;
        }
        cfg.notify_fd = pp[1];
    }
    if (fresh_start_refresher(&cfg, fv, r->nvars) != 0) {
        fail_msg("--fresh: cannot start the refresher: %s", strerror(errno));
        return EXIT_FAIL;
    }
    if (pp[1] >= 0)
        close(pp[1]);   /* the refresher's: EOF here when it has gone */
    *notify = pp[0];
    return 0;
}

/* Run the program: exec it in this process, or stay as its parent
 * (--mask, --on-refresh restart). Returns only with the exit status. */
static int run_program(run *r, char **argv, char **envp, int notify, const struct rlimit *core)
{
    int ex;

    if (core != NULL)
        setrlimit(RLIMIT_CORE, core);
    if (r->mask) {
        /* hive-run stays, between the program and its output */
        ex = run_masked(r, argv, envp);
        for (size_t i = 0; i < r->nmask; i++)
            cli_free_secret(r->mask_vals[i], r->mask_lens[i] + 1);
        free(r->mask_vals);
        free(r->mask_lens);
        return ex;
    }
    if (r->on_refresh == FRESH_ON_RESTART) {
        supervise_opts o = {.notify_fd = notify, .kill_signal = r->kill_signal,
                            .kill_timeout_ms = r->kill_timeout_ms, .env_now = fresh_env_now,
                            .exec = exec_child};
        /* the values live in the snapshot from here on */
        free_vars(r);
        return supervise_run(argv, envp, &o);
    }
    fflush(NULL);
    /* still here after it: the exec failed, and hive-run exits; the
     * environment (reachable through kept_envp) goes with the process */
    return exec_program(argv, envp);
}

/* Render, build the environment, set up --file and --fresh, and run the
 * program; returns only with the exit status. */
/* The masker follows what the refresher publishes in the snapshot; a
 * --file's new content goes to its holder alone, so it could not be
 * masked: refused. 0, or the exit status (said). */
static int check_mask_files(const run *r)
{
    if (!r->mask || !r->fresh)
        return 0;
    for (size_t i = 0; i < r->nvars; i++)
        if (r->vars[i].kind == SRC_FILE) {
            fail_msg("--fresh --mask cannot mask the new content of --file %s yet", r->vars[i].name);
            cli_hint("use -e for what the program prints, or --mask without --fresh");
            return EXIT_FAIL;
        }
    return 0;
}

static int launch(run *r, hive_store **st, char **argv, const struct rlimit *core)
{
    char **envp;
    int files_ctl = -1;
    int notify = -1;
    int ex = check_mask_files(r);

    if (ex == 0)
        ex = check_templates(r);

    if (ex == 0)
        ex = render_all(r, *st);
    if (ex == 0) {
        warn_unmasked(r);
        hint_unrendered(r);
    }
    if (ex == 0 && r->mask)
        ex = collect_mask_values(r, *st);
    report_open_modes(r->store_dir);
    hive_store_free(st);
    if (ex == 0)
        ex = start_files(r, &files_ctl);
    if (ex != 0)
        return ex;
    envp = build_env(r);
    if (envp == NULL) {
        fail_msg("out of memory");
        return EXIT_FAIL;
    }
    kept_envp = envp;
    ex = check_total_size(argv, envp);
    if (ex == 0 && r->fresh)
        ex = start_fresh(r, &envp, argv, files_ctl, &notify);
    if (ex != 0)
        return ex;
    kept_envp = envp;
    if (files_ctl >= 0)
        close(files_ctl);   /* the refresher's now */
    return run_program(r, argv, envp, notify, core);
}

/* --- the command line -------------------------------------------------------- */

enum { OPT_STORE = 1000, OPT_ENV_FILE, OPT_USAGE, OPT_NO_REFRESH, OPT_ALLOW_EXPIRED, OPT_UNSAFE,
       OPT_DRY_RUN, OPT_JSON, OPT_VERSION, OPT_FRESH, OPT_LAUNCH_VALUES, OPT_MASK, OPT_MASK_MIN,
       OPT_RENDER_ENV, OPT_KEEP, OPT_FILE, OPT_ON_REFRESH, OPT_KILL_SIGNAL, OPT_KILL_TIMEOUT };

static const struct option long_opts[] = {
    {"env", required_argument, NULL, 'e'},
    {"env-file", required_argument, NULL, OPT_ENV_FILE},
    {"usage", required_argument, NULL, OPT_USAGE},
    {"file", required_argument, NULL, OPT_FILE},
    {"no-refresh", no_argument, NULL, OPT_NO_REFRESH},
    {"allow-expired", no_argument, NULL, OPT_ALLOW_EXPIRED},
    {"allow-unsafe-env", required_argument, NULL, OPT_UNSAFE},
    {"render-env", required_argument, NULL, OPT_RENDER_ENV},
    {"ignore-environment", no_argument, NULL, 'i'},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"fresh", no_argument, NULL, OPT_FRESH},
    {"on-refresh", required_argument, NULL, OPT_ON_REFRESH},
    {"kill-signal", required_argument, NULL, OPT_KILL_SIGNAL},
    {"kill-timeout", required_argument, NULL, OPT_KILL_TIMEOUT},
    {"mask", no_argument, NULL, OPT_MASK},
    {"mask-min", required_argument, NULL, OPT_MASK_MIN},
    {"allow-launch-values", no_argument, NULL, OPT_LAUNCH_VALUES},
    {"json", no_argument, NULL, OPT_JSON},
    {"store", required_argument, NULL, OPT_STORE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

typedef struct source_opt {
    int kind;
    const char *arg;
} source_opt;

typedef struct sources {
    source_opt list[MAX_LIST * 3];
    size_t n;
} sources;

/* Add the NAME of option opt to list: a variable name, one a time. */
static int add_name_opt(const char **list, size_t *n, const char *opt, const char *name)
{
    if (!valid_name(name, strlen(name))) {
        bad_name_msg(name, strlen(name), opt);
        return EXIT_FAIL;
    }
    if (is_stripped(name, strlen(name))) {
        fail_msg("%s %s: %s is never passed to the program", opt, name, name);
        return EXIT_FAIL;
    }
    if (*n == MAX_LIST) {
        fail_msg("too many %s options", opt);
        return EXIT_FAIL;
    }
    list[(*n)++] = name;
    return 0;
}

/* --on-refresh restart | signal:NAME */
static int parse_on_refresh(run *r, const char *arg)
{
    if (strcmp(arg, "restart") == 0) {
        r->on_refresh = FRESH_ON_RESTART;
        return 0;
    }
    if (strncmp(arg, "signal:", 7) == 0) {
        int sig = cli_signal_number(arg + 7);
        if (sig == 0 || sig == SIGKILL) {
            fail_msg("--on-refresh %.40s: %s", arg, sig ? "SIGKILL would end the program, not reload it"
                                                            : "not a signal name");
            cli_hint("a signal the program reloads on: signal:HUP, signal:USR1, ...");
            return EXIT_FAIL;
        }
        r->on_refresh = FRESH_ON_SIGNAL;
        r->refresh_signal = sig;
        return 0;
    }
    fail_msg("--on-refresh wants restart or signal:NAME, not '%.40s'", arg);
    cli_hint("--on-refresh restart restarts the program with the new values; --on-refresh signal:HUP "
             "sends it SIGHUP");
    return EXIT_FAIL;
}

static int parse_kill_timeout(run *r, const char *arg)
{
    char *end;
    double v = strtod(arg, &end);

    if (end == arg || *end != '\0' || !(v >= 0 && v <= 86400)) {
        fail_msg("--kill-timeout wants seconds from 0 to 86400, not '%.32s'", arg);
        return EXIT_FAIL;
    }
    r->kill_timeout_ms = (int)(v * 1000 + 0.5);
    return 0;
}

/* One option of the command line (getopt's c, its optarg): 0, or -1
 * when hive-run is done (help, version), or the exit status of a bad
 * option (said). */
static int parse_option(run *r, sources *srcs, int c, char **argv)
{
    switch (c) {
    case 'e':
    case OPT_FILE:
    case OPT_ENV_FILE:
    case OPT_USAGE:
        if (srcs->n == sizeof(srcs->list) / sizeof(srcs->list[0])) {
            fail_msg("too many -e, --file, --env-file and --usage options");
            return EXIT_FAIL;
        }
        srcs->list[srcs->n].kind = c;
        srcs->list[srcs->n++].arg = optarg;
        return 0;
    case OPT_STORE: r->store_dir = optarg; return 0;
    case OPT_NO_REFRESH: r->no_refresh = true; return 0;
    case OPT_ALLOW_EXPIRED: r->allow_expired = true; return 0;
    case OPT_UNSAFE: return add_name_opt(r->unsafe_ok, &r->n_unsafe_ok, "--allow-unsafe-env", optarg);
    case OPT_RENDER_ENV: return add_name_opt(r->render, &r->n_render, "--render-env", optarg);
    case OPT_KEEP: return add_name_opt(r->keep, &r->n_keep, "--keep", optarg);
    case 'i': r->pristine = true; return 0;
    case OPT_DRY_RUN: r->dry_run = true; return 0;
    case OPT_FRESH: r->fresh = true; return 0;
    case OPT_ON_REFRESH: return parse_on_refresh(r, optarg);
    case OPT_KILL_SIGNAL:
        r->kill_signal = cli_signal_number(optarg);
        if (r->kill_signal == 0) {
            fail_msg("--kill-signal: '%.32s' is not a signal name", optarg);
            cli_hint("TERM, INT, QUIT, HUP, USR1, KILL, ... (with or without SIG)");
            return EXIT_FAIL;
        }
        return 0;
    case OPT_KILL_TIMEOUT: return parse_kill_timeout(r, optarg);
    case OPT_MASK: r->mask = true; return 0;
    case OPT_MASK_MIN: {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (*end != '\0' || v < 4 || v > 4096) {
            fail_msg("--mask-min wants a number of bytes from 4 to 4096, not '%.32s'", optarg);
            return EXIT_FAIL;
        }
        r->mask_min = (size_t)v;
        return 0;
    }
    case OPT_LAUNCH_VALUES: r->allow_launch_values = true; return 0;
    case OPT_JSON: r->json = true; return 0;
    case 'h':
        fputs(usage_text, stdout);
        fputs(usage_text2, stdout);
        return -1;
    case OPT_VERSION:
        printf("hive-run %s\n", HIVE_VERSION);
        return -1;
    case ':':
        fail_msg("option '%s' needs a value", argv[optind - 1]);
        cli_hint("'hive-run --help' lists the options");
        return EXIT_FAIL;
    default:
        fail_msg("unknown option '%s'", argv[optind - 1]);
        cli_hint("'hive-run --help' lists the options; put '--' before the command");
        return EXIT_FAIL;
    }
}

/* Options that need another, or exclude one; 0 or EXIT_FAIL (said). */
static int check_combinations(const run *r)
{
    if (r->mask && r->on_refresh != FRESH_ON_NOTHING) {
        /* both would stand between hive-run and the program it runs */
        fail_msg("--mask and --on-refresh cannot be used together yet");
        cli_hint("--mask --fresh masks every refreshed value of a program that reads it through getenv");
        return EXIT_FAIL;
    }
    if (r->json && !r->dry_run) {
        fail_msg("--json goes with --dry-run");
        return EXIT_FAIL;
    }
    if (r->n_keep > 0 && !r->pristine) {
        fail_msg("--keep goes with -i (--ignore-environment)");
        cli_hint("without -i every inherited variable is passed on already");
        return EXIT_FAIL;
    }
    if (r->on_refresh != FRESH_ON_NOTHING && !r->fresh) {
        fail_msg("--on-refresh goes with --fresh");
        cli_hint("without --fresh nothing is refreshed while the program runs");
        return EXIT_FAIL;
    }
    if ((r->kill_signal != 0 || r->kill_timeout_ms >= 0) && r->on_refresh != FRESH_ON_RESTART) {
        fail_msg("--kill-signal and --kill-timeout go with --on-refresh restart");
        return EXIT_FAIL;
    }
    return 0;
}

/* Parse the command line into r and srcs; 0, or -1 when done (help,
 * version), or the exit status (said). */
static int parse_command_line(run *r, sources *srcs, int argc, char **argv)
{
    int c;
    int e;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:e:hi", long_opts, NULL)) != -1)
        if ((e = parse_option(r, srcs, c, argv)) != 0)
            return e;
    if (optind >= argc) {
        fail_msg("no command to run");
        cli_hint("hive-run -e NAME='{{id.key}}' -- COMMAND [ARG...]");
        return EXIT_FAIL;
    }
    if ((e = check_combinations(r)) != 0)
        return e;
    /* what was not given */
    r->margin = HIVE_DEFAULT_REFRESH_MARGIN;
    if (r->mask_min == 0)
        r->mask_min = MASK_DEFAULT_MIN;
    if (r->kill_signal == 0)
        r->kill_signal = SIGTERM;
    if (r->kill_timeout_ms < 0)
        r->kill_timeout_ms = 10 * 1000;
    for (int i = optind + 1; i < argc; i++) {
        if (has_template(argv[i])) {
            cli_hint("argument %d holds a template, which is passed as is: arguments are visible to "
                     "every user in the process list. Use -e NAME='...' and read $NAME instead",
                     i - optind);
            break;
        }
    }
    return 0;
}

/* NAME=TEMPLATE of -e or --file into r. */
static int collect_flag(run *r, const source_opt *o)
{
    const char *opt = o->kind == OPT_FILE ? "--file" : "-e";
    const char *eq = strchr(o->arg, '=');

    if (eq == NULL) {
        fail_msg("%s wants NAME=TEMPLATE, not '%.100s'", opt, o->arg);
        return EXIT_FAIL;
    }
    return set_var(r, o->arg, (size_t)(eq - o->arg), eq + 1, o->kind == OPT_FILE ? SRC_FILE : SRC_FLAG, opt);
}

/* The sources in precedence order: inherited, usage, env-file, then -e
 * and --file in the order given. A dry run goes on past an error. */
static int collect_sources(run *r, hive_store *st, const sources *srcs)
{
    int ex = collect_inherited(r);

    for (int pass = 0; pass < 3 && (ex == 0 || r->dry_run); pass++) {
        for (size_t i = 0; i < srcs->n && (ex == 0 || r->dry_run); i++) {
            const source_opt *o = &srcs->list[i];
            int e = 0;
            if (pass == 0 && o->kind == OPT_USAGE)
                e = collect_usage(r, st, o->arg);
            else if (pass == 1 && o->kind == OPT_ENV_FILE)
                e = collect_env_file(r, o->arg);
            else if (pass == 2 && (o->kind == 'e' || o->kind == OPT_FILE))
                e = collect_flag(r, o);
            if (e != 0)
                ex = e;
        }
    }
    return ex;
}

/* While secrets are in memory: no core dump, no ptrace attach. Both are
 * put back (or reset by execve) before the program runs: its limits and
 * umask are its own. *saved: the core limit to put back; false if none. */
static bool harden(struct rlimit *saved)
{
    bool ok = getrlimit(RLIMIT_CORE, saved) == 0;
    struct rlimit none = {0, ok ? saved->rlim_max : 0};

    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return ok;
}

int main(int argc, char **argv)
{
    run r = {.kill_timeout_ms = -1};
    sources srcs = {.n = 0};
    hive_store *st = NULL;
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    struct rlimit core_saved;
    bool core_ok;
    int ex = 0;

    /* --file's holder: hive-run exec'd afresh (see secretfile.c) */
    if (argc == 1 && strcmp(argv[0], SECRETFILE_HOLDER_NAME) == 0)
        return secretfile_holder_main();
    cli_prog = "hive-run";
    started = hive_time_now();
    started.sec -= 1;
    core_ok = harden(&core_saved);
    ex = parse_command_line(&r, &srcs, argc, argv);
    if (ex != 0)
        return ex < 0 ? 0 : ex;
    so.warn = print_warning;
    if (hive_store_open_from_env(&st, r.store_dir, &so) != HIVE_OK) {
        fail_msg("%s", hive_last_error());
        return EXIT_FAIL;
    }
    if (!r.dry_run)
        audit_begin(st);   /* a dry run writes nothing */
    /* A dry run goes on past an error, to report them all. */
    if (r.dry_run && (problems = hive_json_new(HIVE_JSON_ARRAY)) == NULL) {
        fail_msg("out of memory");
        hive_store_free(&st);
        return EXIT_FAIL;
    }
    ex = collect_sources(&r, st, &srcs);
    if (r.dry_run) {
        /* renders nothing that would refresh, writes nothing */
        ex = dry_run(&r, st, argv + optind);
        report_open_modes(r.store_dir);
        hive_store_free(&st);
    } else if (ex == 0) {
        ex = launch(&r, &st, argv + optind, core_ok ? &core_saved : NULL);
    } else {
        report_open_modes(r.store_dir);
        hive_store_free(&st);
    }
    free_vars(&r);
    return ex;
}
