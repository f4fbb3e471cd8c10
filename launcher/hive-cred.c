/*
 * hive-cred - manage a Hive credential store.
 */
#include "cli.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <spawn.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_STDIN (1024u * 1024)
#define MAX_OPT_LIST 64

/* The warn_ctx of a storage: which store spoke (spec NULL: the default). */
typedef struct store_ref {
    const char *spec;
} store_ref;

static const char usage_text[] =
    "Usage: hive-cred [--store DIR] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Manage a Hive credential store (the files of the Python Hive framework:\n"
    "$HIVE_HOME/credentials, HIVE_HOME defaulting to ~/.hive).\n"
    "\n"
    "Commands:\n"
    "  init                     create the store and a key file if no key exists\n"
    "  keygen                   print a new encryption key\n"
    "  add ID [OPTIONS]         create or replace ID; values come from stdin as\n"
    "                           NAME=VALUE lines (prompted without echo on a terminal)\n"
    "      -t, --type T         api_key (default), oauth2, basic_auth, bearer_token, custom\n"
    "      -d, --description D  description\n"
    "      --provider-id P      provider that refreshes it\n"
    "      --auto-refresh       let the provider refresh it when it expires\n"
    "      --expires KEY=TIME   expiry of KEY: ISO 8601, Unix seconds, or +N / -N with\n"
    "                           s, m, h or d from now (-1h: expired an hour ago)\n"
    "      --tag T              a tag (repeatable)\n"
    "      --from-file KEY=PATH KEY's value is the file's content, newlines included\n"
    "                           (repeatable); stdin is then not read\n"
    "      --no-auto-refresh    turn auto refresh off\n"
    "                           Replacing ID replaces its keys; its type, description,\n"
    "                           provider, auto refresh, tags and creation time stay\n"
    "                           unless given\n"
    "  set ID KEY               set one key to stdin as it is (newlines included: a\n"
    "                           PEM, a JSON document); the other keys and the metadata\n"
    "                           stay; a new ID gets type --type (default api_key);\n"
    "                           --expires KEY=TIME as for add\n"
    "  unset ID KEY             remove one key; the rest stays\n"
    "  get ID [KEY]             print one value (the default key without KEY)\n"
    "  show ID [--reveal]       metadata; values masked unless --reveal\n"
    "  list                     ids, one a line\n"
    "  exists ID                exit 0 if ID exists, 1 if not\n"
    "  delete ID                remove ID\n"
    "  resolve TEMPLATE         print TEMPLATE with {{id}} and {{id.key}} rendered\n"
    "  validate [ID]            check credentials (expired and not refreshable is an\n"
    "                           error) and usage specs; print each problem\n"
    "  refresh ID [--retry-in-doubt]  refresh ID through its provider now; --retry-in-doubt\n"
    "                           sends a refresh token marked in doubt once more\n"
    "  accounts PROVIDER        aliases and identities of PROVIDER's accounts\n"
    "  sync                     pull every active integration from the Aden platform\n"
    "                           (ADEN_API_KEY or the stored aden_api_key; ADEN_API_URL)\n"
    "  copy SRC DST             copy every credential from one store to another (a\n"
    "                           directory or an etcd:// URL each), keeping its values\n"
    "  rotate-key               re-encrypt everything under a new key, crash-safe; if\n"
    "                           killed, run it again to finish. With a key file, the\n"
    "                           new key (made, or HIVE_NEW_CREDENTIAL_KEY) replaces it\n"
    "      --new-key-file FILE  the new key: read from FILE, or made and written there\n"
    "                           (0600) if FILE does not exist; required when the key\n"
    "                           comes from HIVE_CREDENTIAL_KEY, the key command or\n"
    "                           systemd (then give that source FILE's key; it says how)\n"
    "  usage add ID [OPTIONS]   register how a tool uses credential ID:\n"
    "      --key K              a required key (repeatable)\n"
    "      --scope S            a scope its token must have been granted (repeatable)\n"
    "      --header N=TEMPLATE  --param N=TEMPLATE  --body N=TEMPLATE\n"
    "      --env N=TEMPLATE     (each repeatable)\n"
    "      -d, --description D  --help-url URL\n"
    "  usage list [--json] | usage show ID | usage remove ID\n";

/* two strings: C99 guarantees literals of 4095 bytes only */
static const char usage_text2[] =
    "  login ID [OPTIONS]       obtain OAuth2 tokens for ID from its provider: a browser\n"
    "                           login (PKCE, loopback redirect), or --device\n"
    "      --device             the device grant: a code to enter on another machine\n"
    "      --scope S            a scope to ask for (repeatable)\n"
    "      --no-browser         print the login address, do not open a browser\n"
    "      --provider-id P      create ID (oauth2, provider P) when it does not exist\n"
    "      --timeout S          seconds to wait for the browser (default 300)\n"
    "  revoke ID                revoke ID's refresh and access tokens at its provider,\n"
    "                           then remove them from ID\n"
    "  doctor [--fix]           check the store: permissions, the key and where it comes\n"
    "                           from, an interrupted rotation, unreadable files, index\n"
    "                           drift, tokens expiring within a day that will not be\n"
    "                           refreshed, usage specs that do not resolve; say how to\n"
    "                           fix each; --fix makes directories 0700 and files 0600\n"
    "                           and rebuilds the index (exit 1 if problems remain)\n"
    "  exec-credential ID [--key KEY]  kubectl's ExecCredential JSON (exec plugin)\n"
    "  aws-credential-process ID  the AWS credential_process JSON\n"
    "  audit [--since TIME] [--id ID] [--json]  the audit log: which program got which\n"
    "                           credentials, refreshes, failures; TIME: RFC 3339 or\n"
    "                           30m, 1h, 2d back from now; HIVE_AUDIT=off stops it\n"
    "  help [COMMAND]           this help, or COMMAND's (also: COMMAND --help)\n"
    "\n"
    "Options:\n"
    "  --store DIR   the store directory (default $HIVE_HOME/credentials); its key\n"
    "                file is DIR/../secrets/credential_key\n"
    "  --store etcd://HOST:PORT[,HOST:PORT]/PREFIX   a store kept in etcd, shared by\n"
    "                a fleet (user: etcd://USER@...; password in HIVE_ETCD_PASSWORD)\n"
    "  --json        machine-readable output (list, show)\n"
    "  -h, --help    this help;  --version  the version\n"
    "Options may come before or after operands; '--' ends them.\n"
    "\n"
    "The key comes from the first of: HIVE_CREDENTIAL_KEY; the output of\n"
    "HIVE_CREDENTIAL_KEY_COMMAND (run without a shell, at most\n"
    "HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT seconds, default 10); the systemd\n"
    "credential $CREDENTIALS_DIRECTORY/hive-credential-key; the key file, which\n"
    "must not be readable by group or others. 'hive-cred doctor' says which.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  no: 'exists' found nothing, 'validate' or 'doctor' found problems\n"
    "  2  usage error, or bad input (id, value, time); a new key that would exist\n"
    "     only in this process; rotate-key on an etcd store\n"
    "  3  credential or key not found\n"
    "  4  no encryption key, or the key is not a Fernet key\n"
    "  5  a credential could not be decrypted or parsed (wrong key, damaged file)\n"
    "  6  store error: file system, permissions, lock, id conflict, damaged usage.json,\n"
    "     a store that does not exist (list)\n"
    "  7  a refresh, login or revocation failed, or the credential cannot be\n"
    "     refreshed\n"
    "  8  the token lacks a scope a usage spec requires (exec-credential,\n"
    "     aws-credential-process)\n";

/* Each command's help, for 'hive-cred CMD --help' and 'hive-cred help CMD':
 * one row a command. */
static const struct cmd_help {
    const char *cmd;
    const char *text;
} cmd_help[] = {
    {"init", "hive-cred init\n\nCreate the store and, when no key is configured, a key file (0600).\n"
             "Prints where the key is, never the key.\n"},
    {"keygen", "hive-cred keygen\n\nPrint a new Fernet key.\n"},
    {"add", "hive-cred add ID [OPTIONS] < NAME=VALUE lines\n\n"
            "Create or replace ID; the values come from stdin, one NAME=VALUE a line\n"
            "(prompted without echo on a terminal), never from the command line. Replacing\n"
            "ID replaces its keys; its type, description, provider, auto refresh, tags and\n"
            "creation time stay unless given.\n\n"
            "  -t, --type T         api_key (default), oauth2, basic_auth, bearer_token, custom\n"
            "  -d, --description D  description\n"
            "      --provider-id P  provider that refreshes it\n"
            "      --auto-refresh   let the provider refresh it when it expires\n"
            "      --no-auto-refresh  turn auto refresh off\n"
            "      --expires KEY=TIME  expiry of KEY: ISO 8601, Unix seconds or +N/-N[smhd]\n"
            "      --tag T          add a tag (repeatable)\n"
            "      --from-file KEY=PATH  KEY's value is the file's content (repeatable)\n"},
    {"set", "hive-cred set ID KEY [--type T] [--expires KEY=TIME] < value\n\n"
            "Set one key to stdin as it is, newlines included (a PEM, a JSON document); the\n"
            "other keys and the metadata stay. A new ID gets type --type (default api_key).\n"},
    {"unset", "hive-cred unset ID KEY\n\nRemove one key; the rest stays.\n"},
    {"get", "hive-cred get ID [KEY]\n\nPrint one value (the default key without KEY), then a newline.\n"},
    {"show", "hive-cred show ID [--reveal] [--json]\n\nThe credential's metadata; values masked unless --reveal.\n"},
    {"list", "hive-cred list [--json]\n\nThe ids, one a line; --json adds each id's index entry.\n"},
    {"exists", "hive-cred exists ID\n\nExit 0 if ID exists, 1 if not.\n"},
    {"delete", "hive-cred delete ID\n\nRemove ID: its file and its index entry.\n"},
    {"resolve", "hive-cred resolve TEMPLATE\n\nPrint TEMPLATE with {{id}} and {{id.key}} rendered.\n"},
    {"validate", "hive-cred validate [ID] [--json]\n\n"
                 "Check the credentials (expired and not refreshable is an error) and the usage\n"
                 "specs; print each problem; exit 1 on any.\n"},
    {"refresh", "hive-cred refresh [--retry-in-doubt] ID\n\nRefresh ID through its provider now.\n"
                "--retry-in-doubt: send a refresh token marked in doubt (its request got no usable\n"
                "answer, so the server may have spent it) once more; only when you know the server\n"
                "never received that request.\n"},
    {"login", "hive-cred login ID [--device] [--scope S]... [--no-browser] [--provider-id P] [--timeout S]\n\n"
              "Obtain tokens for OAuth2 credential ID from its provider and save them (auto refresh on).\n"
              "Browser login: authorization code with PKCE, the answer on a one-time port of 127.0.0.1;\n"
              "the browser opens when there is a display, the address is printed on stderr.\n"
              "--device: print verification_uri and user_code on stderr and wait for the user.\n"
              "A missing ID is created (type oauth2) only with --provider-id.\n"},
    {"revoke", "hive-cred revoke ID\n\nRevoke ID's refresh token and access token at its provider's\n"
               "revocation_endpoint, then remove them from ID; the rest of ID stays.\n"},
    {"accounts", "hive-cred accounts PROVIDER [--json]\n\nThe aliases and identities of PROVIDER's accounts.\n"},
    {"sync", "hive-cred sync\n\nPull every active integration from the Aden platform (ADEN_API_KEY or the\n"
             "stored aden_api_key; ADEN_API_URL).\n"},
    {"copy", "hive-cred copy SRC DST\n\nCopy every credential from one store to another (a directory or an\n"
             "etcd:// URL each), keeping its values.\n"},
    {"rotate-key", "hive-cred rotate-key [--new-key-file FILE]\n\n"
                   "Re-encrypt everything under a new key, crash-safe; if killed, run it again to\n"
                   "finish. With a key file, the new key (made, or HIVE_NEW_CREDENTIAL_KEY) replaces\n"
                   "it. --new-key-file FILE: the new key is read from FILE, or made and written there\n"
                   "(0600); required when the key comes from HIVE_CREDENTIAL_KEY, the key command or\n"
                   "a systemd credential, which hive cannot write: then FILE keeps the new key, readers\n"
                   "follow it until the rotation is done, and the output says how to give the source\n"
                   "the new key.\n"},
    {"usage", "hive-cred usage add ID [OPTIONS] | usage list [--json] | usage show ID | usage remove ID\n\n"
              "Register, list, show or remove how a tool uses credential ID (templates only).\n\n"
              "  --key K              a required key (repeatable)\n"
              "  --scope S            a scope the token must have been granted (repeatable);\n"
              "                       checked against the credential's scope key\n"
              "  --json                with list: each spec's credential, keys and scopes\n"
              "  --header N=TEMPLATE  --param N=TEMPLATE  --body N=TEMPLATE\n"
              "  --env N=TEMPLATE     (each repeatable)\n"
              "  -d, --description D  --help-url URL\n"},
    {"doctor", "hive-cred doctor [--fix]\n\n"
               "Check the store: permissions, the key and where it comes from (HIVE_CREDENTIAL_KEY,\n"
               "the key command, a systemd credential or the key file; never the key), an interrupted\n"
               "rotation, unreadable files, index drift, tokens expiring within a day that will\n"
               "not be refreshed, usage specs that do not resolve; say how to fix each. --fix\n"
               "makes directories 0700 and files 0600 and rebuilds the index. Exit 1 if problems\n"
               "remain.\n"},
    {"exec-credential", "hive-cred exec-credential ID [--key KEY]\n\nA kubectl exec plugin: print a client.authentication.k8s.io ExecCredential\n"
                        "(KUBERNETES_EXEC_INFO's apiVersion, else v1beta1) with KEY (else the default key)\n"
                        "as status.token and its expiry; ID is refreshed first when due.\n"},
    {"aws-credential-process", "hive-cred aws-credential-process ID\n\nAn AWS credential_process: print Version 1, AccessKeyId, SecretAccessKey,\n"
                               "SessionToken and Expiration from ID's keys aws_access_key_id, aws_secret_access_key\n"
                               "and aws_session_token; ID is refreshed first when due.\n"},
    {"audit", "hive-cred audit [--since TIME] [--id ID] [--json]\n\n"
              "The audit log (beside the store: $HIVE_HOME/audit.log): launches, the credentials\n"
              "and keys handed out, refreshes, logins, revocations and failures, one a line.\n"
              "--since TIME: RFC 3339 (2026-03-01T12:00:00Z) or back from now (30m, 1h, 2d, 1w);\n"
              "--id ID: only records naming credential ID (exit 3 if none ever did);\n"
              "--json: the records as JSON lines. Damaged lines are reported and skipped.\n"},
    {"help", "hive-cred help [COMMAND]\n\nThe usage of hive-cred, or of COMMAND.\n"},
};

/* Print cmd's help (NULL: the whole usage); 2 for an unknown command. */
static int print_help(const char *cmd)
{
    if (cmd == NULL) {
        fputs(usage_text, stdout);
        fputs(usage_text2, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmd_help) / sizeof(cmd_help[0]); i++) {
        if (strcmp(cmd_help[i].cmd, cmd) == 0) {
            printf("Usage: %s\nGlobal options (--store DIR, --json) and exit codes: hive-cred --help\n",
                   cmd_help[i].text);
            return 0;
        }
    }
    cli_error("unknown command '%.64s'", cmd);
    cli_hint("'hive-cred --help' lists the commands");
    return EXIT_USAGE;
}

typedef struct opts {
    const char *store;
    bool json;
    bool reveal;
    const char *type;
    const char *description;
    const char *provider_id;
    bool auto_refresh;
    const char *expires[MAX_OPT_LIST];
    size_t n_expires;
    const char *tags[MAX_OPT_LIST];
    size_t n_tags;
    const char *files[MAX_OPT_LIST];
    size_t n_files;
    bool auto_refresh_set;
    const char *keys[MAX_OPT_LIST];
    size_t n_keys;
    const char *headers[MAX_OPT_LIST];
    size_t n_headers;
    const char *params[MAX_OPT_LIST];
    size_t n_params;
    const char *body[MAX_OPT_LIST];
    size_t n_body;
    const char *env[MAX_OPT_LIST];
    size_t n_env;
    const char *scopes[MAX_OPT_LIST];
    size_t n_scopes;
    const char *since;
    const char *audit_id;
    const char *audit_only;  /* --since or --id given: 'audit' only */
    const char *help_url;
    const char *new_key_file;
    bool retry_in_doubt;
    bool device;
    bool no_browser;
    const char *timeout;
    const char *login_only;  /* an option of login */
    const char *scope_only;  /* --scope: of usage add and login */
    bool help;
    /* which command-specific options were given, to reject misplaced ones */
    const char *add_only;
    const char *show_only;
    const char *usage_only;
    const char *description_opt;
    const char *rotate_only;
    const char *add_set;    /* an option of add and set */
    bool fix;
    const char *doctor_only;
    store_ref ref;          /* {store} */
} opts;

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    cli_error("%s", msg ? msg : "(out of memory formatting the message)");
    free(msg);
    cli_hint("'hive-cred --help' lists the commands and options");
    return EXIT_USAGE;
}

static void print_warning(void *ctx, const char *msg);

static store_ref default_store = {NULL};

/* The warn_ctx for o's store: a copy, as the ctx is not const (the copy is
 * the one the storage keeps; the tool opens one store at a time). */
static void *warn_ref(const opts *o)
{
    static store_ref ref;

    ref = o->store ? o->ref : default_store;
    return &ref;
}

static int open_storage(const opts *o, hive_storage **s)
{
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    hive_rc rc;

    fo.warn = print_warning;
    fo.warn_ctx = warn_ref(o);
    rc = hive_storage_open_from_env(s, o->store, &fo);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

/* --- init / keygen ---------------------------------------------------- */

/* Where s's key comes from, between label and tail, on one line (never
 * the key). */
static void print_key_source(const char *label, hive_storage *s, const char *tail)
{
    const char *src = hive_file_storage_key_source(s);

    switch (hive_file_storage_key_kind(s)) {
    case HIVE_KEY_ENV:
    case HIVE_KEY_COMMAND: printf("%sfrom %s%s\n", label, src, tail); break;
    case HIVE_KEY_SYSTEMD: printf("%sfrom the systemd credential %s%s\n", label, src, tail); break;
    case HIVE_KEY_NONE: break;
    default: printf("%s%s%s\n", label, src, tail); break;
    }
}

static int cmd_init(const opts *o)
{
    hive_storage *s = NULL;
    bool created = false;
    hive_rc rc;
    int ex = open_storage(o, &s);
    const char *src;

    if (ex != 0)
        return ex;
    rc = hive_file_storage_init(s, &created);
    if (rc != HIVE_OK) {
        ex = cli_fail(rc);
        hive_storage_free(&s);
        return ex;
    }
    src = hive_file_storage_key_source(s);
    printf("store: %s\n", hive_file_storage_dir(s));
    if (created)
        printf("key:   %s (created; back it up: losing it loses every credential)\n", src);
    else
        print_key_source("key:   ", s, "");
    hive_storage_free(&s);
    return 0;
}

static int cmd_keygen(void)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    hive_rc rc = hive_fernet_key_generate(key);

    if (rc != HIVE_OK)
        return cli_fail(rc);
    printf("%s\n", key);
    hive_memzero(key, sizeof(key));
    return fflush(stdout) == 0 ? 0 : EXIT_STORE;
}

/* --- add -------------------------------------------------------------- */

/* TIME: ISO 8601, Unix seconds, or +N / -N with s, m, h or d (from now;
 * a past expiry is legitimate: a token known to have expired). */
static hive_rc parse_when(hive_time *t, const char *text)
{
    if (text[0] == '+' || text[0] == '-') {
        char *end;
        long long n;
        long long mult = 1;
        errno = 0;
        n = strtoll(text + 1, &end, 10);
        if (errno != 0 || end == text + 1 || n < 0)
            return HIVE_ERR_INVALID;
        if (*end == 'm')
            mult = 60;
        else if (*end == 'h')
            mult = 3600;
        else if (*end == 'd')
            mult = 86400;
        else if (*end != 's' && *end != '\0')
            return HIVE_ERR_INVALID;
        if (*end != '\0' && end[1] != '\0')
            return HIVE_ERR_INVALID;
        if (n > 100LL * 365 * 86400 / mult)
            return HIVE_ERR_INVALID;
        *t = hive_time_now();
        t->sec += text[0] == '-' ? -n * mult : n * mult;
        t->usec = 0;
        return HIVE_OK;
    }
    {
        hive_rc rc = hive_time_parse(t, text, strlen(text));
        /* Naive means UTC (DESIGN.md); store it as such, so that Hive, which
         * cannot compare naive and aware datetimes, reads a zoned value. */
        if (rc == HIVE_OK && t->form == HIVE_TIME_NAIVE)
            t->form = HIVE_TIME_UTC;
        return rc;
    }
}

static const char *default_key_name(const char *type)
{
    if (strcmp(type, "oauth2") == 0 || strcmp(type, "bearer_token") == 0)
        return "access_token";
    if (strcmp(type, "basic_auth") == 0)
        return "username";
    return "api_key";
}

static bool valid_key_name(const char *name, size_t len)
{
    if (len == 0 || len > 200)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c == 0x7f || c == '=')
            return false;
    }
    return true;
}

/* NAME=VALUE lines; blank lines and lines starting with '#' are skipped. A
 * value runs to the end of its line (a trailing CR is dropped). */
static int read_values_from_pipe(hive_cred *cred)
{
    char *buf = NULL;
    size_t len = 0;
    size_t lineno = 0;
    int ex = 0;
    size_t added = 0;

    if (cli_read_all(STDIN_FILENO, &buf, &len, MAX_STDIN) != 0) {
        if (errno == EFBIG)
            cli_error("stdin holds more than %u bytes", MAX_STDIN);
        else
            cli_error("cannot read stdin: %s", strerror(errno));
        return EXIT_USAGE;
    }
    for (char *p = buf; p < buf + len && ex == 0;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        char *eq;
        size_t vlen;
        hive_rc rc;

        lineno++;
        if (end > p && end[-1] == '\r')
            end--;
        {
            /* a line of only blanks counts as blank */
            char *q = p;
            while (q < end && (*q == ' ' || *q == '\t'))
                q++;
            if (q == end) {
                p = nl ? nl + 1 : buf + len;
                continue;
            }
        }
        if (end == p || *p == '#') {
            p = nl ? nl + 1 : buf + len;
            continue;
        }
        eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL || !valid_key_name(p, (size_t)(eq - p))) {
            /* Never echo the line: it may be a secret. */
            cli_error("stdin line %zu is not NAME=VALUE", lineno);
            cli_hint("each line names a key and its value, e.g. api_key=...; "
                     "names have no spaces or '='");
            ex = EXIT_USAGE;
            break;
        }
        *eq = '\0';
        vlen = (size_t)(end - eq - 1);
        if (memchr(eq + 1, '\0', vlen) != NULL) {
            cli_error("the value on stdin line %zu holds a NUL byte", lineno);
            ex = EXIT_USAGE;
            break;
        }
        rc = hive_cred_set_key(cred, p, eq + 1, vlen, NULL);
        if (rc != HIVE_OK) {
            cli_error("stdin line %zu: %s", lineno, hive_last_error());
            ex = cli_exit_code(rc);
            break;
        }
        added++;
        p = nl ? nl + 1 : buf + len;
    }
    cli_free_secret(buf, len + 1);
    if (ex == 0 && added == 0) {
        cli_error("no values on stdin");
        cli_hint("give NAME=VALUE lines, e.g.: printf 'api_key=%%s\\n' \"$KEY\" | hive-cred add ID");
        ex = EXIT_USAGE;
    }
    return ex;
}

static int read_values_from_tty(hive_cred *cred, const char *type)
{
    char name[256];
    char value[8192];
    size_t added = 0;
    int ex = 0;

    for (;;) {
        char prompt[300];
        const char *def = added == 0 ? default_key_name(type)
                          : (strcmp(type, "basic_auth") == 0 && added == 1 ? "password" : NULL);
        int n;

        if (def != NULL)
            snprintf(prompt, sizeof(prompt), "Key name [%s]: ", def);
        else
            snprintf(prompt, sizeof(prompt), "Another key name (empty to finish): ");
        n = cli_prompt(prompt, true, name, sizeof(name));
        if (n < 0) {
            cli_error("input ended; nothing stored");
            ex = EXIT_USAGE;
            break;
        }
        if (n == 0 && def == NULL)
            break;
        if (n == 0)
            snprintf(name, sizeof(name), "%s", def);
        if (!valid_key_name(name, strlen(name))) {
            cli_error("invalid key name");
            continue;
        }
        snprintf(prompt, sizeof(prompt), "Value for %s (not echoed): ", name);
        n = cli_prompt(prompt, false, value, sizeof(value));
        if (n < 0) {
            cli_error("input ended; nothing stored");
            ex = EXIT_USAGE;
            break;
        }
        if (n == 0) {
            cli_error("empty value; nothing stored for %s", name);
            continue;
        }
        if (hive_cred_set_key(cred, name, value, (size_t)n, NULL) != HIVE_OK) {
            cli_error("%s", hive_last_error());
            ex = EXIT_USAGE;
        }
        hive_memzero(value, sizeof(value));
        if (ex != 0)
            break;
        added++;
    }
    if (ex == 0 && added == 0) {
        cli_error("no values given");
        ex = EXIT_USAGE;
    }
    return ex;
}

/* --- naming the store, and what is near a typo ------------------------ */

/* What the user would call the store: its directory, or the --store URL. */
static const char *store_label(const opts *o, const hive_storage *s)
{
    const char *dir = hive_file_storage_dir(s);

    return dir != NULL ? dir : o->store != NULL ? o->store : "the default store";
}

/* Edit distance (insert, delete, substitute, swap two neighbours) between
 * a and b, or limit + 1 when it is more than limit. */
static size_t distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t *rows;
    size_t d;

    if ((la > lb ? la - lb : lb - la) > limit || la > 512 || lb > 512)
        return limit + 1;
    rows = calloc(3 * (lb + 1), sizeof(*rows));
    if (rows == NULL)
        return limit + 1;
    for (size_t j = 0; j <= lb; j++)
        rows[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *prev2 = rows + ((i + 1) % 3) * (lb + 1);
        size_t *prev = rows + ((i - 1) % 3) * (lb + 1);
        size_t *cur = rows + (i % 3) * (lb + 1);
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
        }
    }
    d = rows[(la % 3) * (lb + 1) + lb];
    free(rows);
    return d > limit ? limit + 1 : d;
}

/* A hint naming the (at most three) names in list nearest to name. */
static void hint_nearest(const char *name, const char *const *list, size_t n, const char *what)
{
    size_t limit = strlen(name) < 4 ? 1 : strlen(name) < 9 ? 2 : 3;
    const char *best[3] = {NULL, NULL, NULL};
    size_t best_d[3] = {0, 0, 0};

    for (size_t i = 0; i < n; i++) {
        size_t d = distance(name, list[i], limit);
        if (d > limit || d == 0)
            continue;
        for (size_t k = 0; k < 3; k++) {
            if (best[k] == NULL || d < best_d[k]) {
                for (size_t m = 2; m > k; m--) {
                    best[m] = best[m - 1];
                    best_d[m] = best_d[m - 1];
                }
                best[k] = list[i];
                best_d[k] = d;
                break;
            }
        }
    }
    if (best[2] != NULL)
        cli_hint("did you mean %s '%s', '%s' or '%s'?", what, best[0], best[1], best[2]);
    else if (best[1] != NULL)
        cli_hint("did you mean %s '%s' or '%s'?", what, best[0], best[1]);
    else if (best[0] != NULL)
        cli_hint("did you mean %s '%s'?", what, best[0]);
}

/* Whether the file store's directory exists (an etcd store: true). */
static bool store_exists(const hive_storage *s)
{
    const char *dir = hive_file_storage_dir(s);
    struct stat st;

    return dir == NULL || stat(dir, &st) == 0;
}

/* Report rc for a command about id: a credential not found names the
 * store searched and the ids nearest to the one asked for. */
static int not_found_in(const opts *o, hive_storage *s, const char *msg, const char *id)
{
    cli_error("%s in store %s", msg, store_label(o, s));
    if (!store_exists(s)) {
        cli_hint("that store does not exist: 'hive-cred init' creates it; check --store and HIVE_HOME");
    } else {
        hive_strlist ids = {0};
        if (hive_storage_list(s, &ids) == HIVE_OK)
            hint_nearest(id, (const char *const *)ids.items, ids.count, "id");
        hive_strlist_free(&ids);
        cli_hint("'hive-cred list' shows the stored ids");
    }
    return EXIT_NOT_FOUND;
}

static int fail_for(const opts *o, hive_storage *s, hive_rc rc, const char *id)
{
    char msg[1024];

    if (rc != HIVE_ERR_NOT_FOUND)
        return cli_fail(rc);
    snprintf(msg, sizeof(msg), "%s", hive_last_error());
    return not_found_in(o, s, msg, id);
}

/* The same for the commands that go through a hive_store (resolve,
 * refresh): "Credential 'ID' not found" names the store and near ids. */
static int store_fail(const opts *o, hive_rc rc)
{
    const char *last = hive_last_error();
    size_t n = strlen(last);
    hive_storage *s = NULL;
    char *msg;
    char *id;
    int ex;

    if (rc != HIVE_ERR_NOT_FOUND || n < 24 || strncmp(last, "Credential '", 12) != 0 ||
        strcmp(last + n - 11, "' not found") != 0)
        return cli_fail(rc);
    msg = strdup(last);
    id = strndup(last + 12, n - 23);
    if (msg == NULL || id == NULL || hive_storage_open_from_env(&s, o->store, NULL) != HIVE_OK) {
        cli_error("%s", msg ? msg : "Credential not found");
        ex = EXIT_NOT_FOUND;
    } else {
        ex = not_found_in(o, s, msg, id);
    }
    hive_storage_free(&s);
    free(msg);
    free(id);
    return ex;
}

/* Key K is not in cred: say which keys it has (their names, not values). */
static int missing_key(const hive_cred *cred, const char *key)
{
    size_t n = hive_cred_key_count(cred);
    const char **names = calloc(n + 1, sizeof(*names));
    char *list = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&list, &len);

    cli_error("Key '%s' not found in credential '%s'", key, hive_cred_id(cred));
    for (size_t i = 0; i < n; i++) {
        if (names != NULL)
            names[i] = hive_cred_key_name(cred, i);
        if (f != NULL)
            fprintf(f, "%s%s", i ? ", " : "", hive_cred_key_name(cred, i));
    }
    if (f != NULL)
        fclose(f);
    if (names != NULL)
        hint_nearest(key, names, n, "key");
    if (n == 0)
        cli_hint("credential '%s' has no keys", hive_cred_id(cred));
    else if (list != NULL)
        cli_hint("credential '%s' has: %s", hive_cred_id(cred), list);
    free(list);
    free(names);
    return EXIT_NOT_FOUND;
}

/* --expires KEY=TIME options onto cred: each names a key it has. */
static int apply_expires(const opts *o, hive_cred *cred)
{
    for (size_t i = 0; i < o->n_expires; i++) {
        const char *eq = strchr(o->expires[i], '=');
        char key[256];
        hive_time t;
        hive_rc rc;
        if (eq == NULL || eq == o->expires[i] || (size_t)(eq - o->expires[i]) >= sizeof(key))
            return usage_error("--expires wants KEY=TIME, not '%.100s'", o->expires[i]);
        memcpy(key, o->expires[i], (size_t)(eq - o->expires[i]));
        key[eq - o->expires[i]] = '\0';
        if (parse_when(&t, eq + 1) != HIVE_OK)
            return usage_error("--expires: '%.100s' is not a time (ISO 8601, Unix seconds or +N/-N with "
                               "s, m, h or d)", eq + 1);
        rc = hive_cred_set_key_expires(cred, key, &t);
        if (rc != HIVE_OK) {
            cli_error("--expires: %s", hive_last_error());
            cli_hint("give the key's value too");
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* --from-file KEY=PATH options onto cred: the file's bytes, verbatim. */
static int read_values_from_files(const opts *o, hive_cred *cred)
{
    for (size_t i = 0; i < o->n_files; i++) {
        const char *eq = strchr(o->files[i], '=');
        char key[256];
        char *buf = NULL;
        size_t len = 0;
        int fd;
        hive_rc rc;
        if (eq == NULL || eq[1] == '\0' || (size_t)(eq - o->files[i]) >= sizeof(key) ||
            !valid_key_name(o->files[i], (size_t)(eq - o->files[i])))
            return usage_error("--from-file wants KEY=PATH, not '%.100s'", o->files[i]);
        memcpy(key, o->files[i], (size_t)(eq - o->files[i]));
        key[eq - o->files[i]] = '\0';
        fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || cli_read_all(fd, &buf, &len, MAX_STDIN) != 0) {
            int err = errno;
            if (fd >= 0)
                close(fd);
            cli_error("--from-file %s: %s", eq + 1, err == EFBIG ? "more than 1 MiB" : strerror(err));
            return err == ENOENT ? EXIT_NOT_FOUND : EXIT_USAGE;
        }
        close(fd);
        if (memchr(buf, '\0', len) != NULL) {
            cli_error("--from-file %s holds a NUL byte: values are text", eq + 1);
            cli_free_secret(buf, len + 1);
            return EXIT_USAGE;
        }
        rc = hive_cred_set_key(cred, key, buf, len, NULL);
        cli_free_secret(buf, len + 1);
        if (rc != HIVE_OK) {
            cli_error("--from-file %s: %s", eq + 1, hive_last_error());
            return cli_exit_code(rc);
        }
    }
    return 0;
}

/* The credential to save over old (NULL: none): a copy of `from`'s keys
 * (when given) under old's metadata, with each option given replacing its
 * old value and every other kept (description, provider, auto refresh,
 * tags, type and created_at). */
static hive_rc merge_metadata(hive_cred **out, const opts *o, const char *id, const hive_cred *old,
                              const hive_cred *from)
{
    const char *type = o->type ? o->type : old ? hive_cred_type_str(old) : "api_key";
    const char *desc = o->description ? o->description : old ? hive_cred_description(old) : NULL;
    const char *prov = o->provider_id ? o->provider_id : old ? hive_cred_provider_id(old) : NULL;
    bool auto_refresh = o->auto_refresh_set ? o->auto_refresh : old ? hive_cred_auto_refresh(old) : false;
    hive_cred *c = NULL;
    hive_rc rc = hive_cred_new(&c, id, type);

    if (rc == HIVE_OK && desc != NULL)
        rc = hive_cred_set_description(c, desc);
    if (rc == HIVE_OK && prov != NULL)
        rc = hive_cred_set_provider_id(c, prov);
    if (rc == HIVE_OK)
        rc = hive_cred_set_auto_refresh(c, auto_refresh);
    if (o->n_tags > 0 || old == NULL) {
        for (size_t i = 0; rc == HIVE_OK && i < o->n_tags; i++)
            rc = hive_cred_add_tag(c, o->tags[i]);
    } else {
        const hive_json *tags = hive_cred_tags(old);
        for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(tags); i++)
            rc = hive_cred_add_tag(c, hive_json_string(hive_json_at(tags, i, NULL), NULL));
    }
    if (rc == HIVE_OK && old != NULL) {
        hive_time created = hive_cred_time(old, HIVE_CRED_CREATED_AT);
        rc = hive_cred_set_time(c, HIVE_CRED_CREATED_AT, &created);
    }
    for (size_t i = 0; rc == HIVE_OK && from != NULL && i < hive_cred_key_count(from); i++) {
        const char *name = hive_cred_key_name(from, i);
        size_t len = 0;
        const char *value = hive_cred_get_key(from, name, &len);
        hive_time exp = hive_cred_key_expires(from, name);
        rc = hive_cred_set_key(c, name, value, len, exp.form != HIVE_TIME_NONE ? &exp : NULL);
    }
    if (rc != HIVE_OK) {
        hive_cred_free(&c);
        return rc;
    }
    *out = c;
    return HIVE_OK;
}

/* A random pause before attempt+1 of a write that lost a race: up to 5 ms,
 * doubled per attempt, at most 500 ms. */
static void jitter_sleep(int attempt)
{
    static unsigned seed;
    struct timespec ts;
    long cap = attempt < 7 ? 5L << attempt : 500;
    long ms;

    if (seed == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16) ^ 1u;
    }
    ms = 1 + (long)((unsigned long)rand_r(&seed) % (unsigned long)cap);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Load id (NULL into *old when absent), make the new version with
 * build(), save it; a shared store (etcd) refuses a write over a version
 * we have not read: read again and retry, after a random pause that
 * grows, for up to 30 s (many machines writing one id at once all get
 * through; the last write wins). */
typedef int (*build_fn)(hive_cred **out, const hive_cred *old, void *ctx);

static int update_credential(const opts *o, const char *id, bool replace_unreadable, build_fn build, void *ctx)
{
    hive_storage *s = NULL;
    hive_rc rc = HIVE_OK;
    int ex = open_storage(o, &s);
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int attempt = 0; ex == 0; attempt++) {
        hive_cred *old = NULL;
        hive_cred *cred = NULL;
        struct timespec now;
        rc = hive_storage_load(s, &old, id);
        /* add replaces a file no key opens, or a damaged one: nothing of
         * it can be kept; set cannot keep the other keys, so it stops */
        if (replace_unreadable && (rc == HIVE_ERR_DECRYPT || rc == HIVE_ERR_FORMAT))
            rc = HIVE_ERR_NOT_FOUND;
        if (rc != HIVE_OK && rc != HIVE_ERR_NOT_FOUND) {
            ex = fail_for(o, s, rc, id);
            break;
        }
        ex = build(&cred, old, ctx);
        if (ex == 0)
            rc = hive_storage_save(s, cred);
        hive_cred_free(&old);
        hive_cred_free(&cred);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ex != 0 || rc != HIVE_ERR_CHANGED || now.tv_sec - start.tv_sec >= 30)
            break;
        jitter_sleep(attempt);
    }
    if (ex == 0 && rc != HIVE_OK)
        ex = cli_fail(rc);
    hive_storage_free(&s);
    return ex;
}

typedef struct add_ctx {
    const opts *o;
    const char *id;
    const hive_cred *values;
} add_ctx;

static int build_add(hive_cred **out, const hive_cred *old, void *ctx)
{
    const add_ctx *a = ctx;
    hive_rc rc = merge_metadata(out, a->o, a->id, old, a->values);

    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

static int cmd_add(const opts *o, const char *id)
{
    const char *type = o->type ? o->type : "api_key";
    hive_cred *values = NULL;
    hive_rc rc;
    int ex;
    char stem[HIVE_ID_MAX + 8];
    add_ctx a = {o, id, NULL};

    rc = hive_file_stem(stem, sizeof(stem), id);
    if (rc == HIVE_OK)
        rc = hive_cred_new(&values, id, type);
    if (rc != HIVE_OK)
        return cli_fail(rc);
    if (o->n_files > 0)
        ex = read_values_from_files(o, values);
    else
        ex = isatty(STDIN_FILENO) ? read_values_from_tty(values, type) : read_values_from_pipe(values);
    if (ex == 0)
        ex = apply_expires(o, values);
    if (ex == 0) {
        a.values = values;
        ex = update_credential(o, id, true, build_add, &a);
    }
    hive_cred_free(&values);
    return ex;
}

/* The value for `set`: stdin verbatim (newlines included), or one line
 * typed without echo on a terminal. */
static int read_one_value(char **out, size_t *len)
{
    if (isatty(STDIN_FILENO)) {
        char value[8192];
        int n = cli_prompt("Value (not echoed): ", false, value, sizeof(value));
        if (n > 0) {
            *out = malloc((size_t)n + 1);
            if (*out != NULL) {
                memcpy(*out, value, (size_t)n + 1);
                *len = (size_t)n;
            }
        }
        hive_memzero(value, sizeof(value));
        if (n <= 0 || *out == NULL) {
            cli_error(n < 0 ? "input ended; nothing stored" : "empty value; nothing stored");
            return EXIT_USAGE;
        }
        return 0;
    }
    if (cli_read_all(STDIN_FILENO, out, len, MAX_STDIN) != 0) {
        cli_error(errno == EFBIG ? "stdin holds more than 1 MiB" : "cannot read stdin: %s", strerror(errno));
        return EXIT_USAGE;
    }
    if (*len == 0 || memchr(*out, '\0', *len) != NULL) {
        cli_error(*len == 0 ? "no value on stdin" : "the value on stdin holds a NUL byte: values are text");
        cli_hint("the value is stdin as it is, newlines included: hive-cred set ID KEY < FILE");
        cli_free_secret(*out, *len + 1);
        *out = NULL;
        return EXIT_USAGE;
    }
    return 0;
}

typedef struct set_ctx {
    const opts *o;
    const char *id;
    const char *key;
    const char *value;   /* NULL: unset the key */
    size_t len;
} set_ctx;

/* set: old with one key set (or removed), everything else kept as it is:
 * the other keys and their expiries, metadata, fields hive does not know. */
static int build_set(hive_cred **out, const hive_cred *old, void *ctx)
{
    const set_ctx *sc = ctx;
    hive_rc rc;
    int ex;

    if (old == NULL && sc->value == NULL) {
        cli_error("Credential '%s' not found", sc->id);
        cli_hint("'hive-cred list' shows the stored ids");
        return EXIT_NOT_FOUND;
    }
    if (old != NULL && sc->o->type != NULL && strcmp(sc->o->type, hive_cred_type_str(old)) != 0) {
        cli_error("credential '%s' is of type %s: --type applies to a new credential only", sc->id,
                  hive_cred_type_str(old));
        cli_hint("'hive-cred add %s --type %s' replaces it, keys included", sc->id, sc->o->type);
        return EXIT_USAGE;
    }
    rc = old != NULL ? hive_cred_clone(out, old)
                     : hive_cred_new(out, sc->id, sc->o->type ? sc->o->type : "api_key");
    if (rc == HIVE_OK && old != NULL) {
        hive_time now = hive_time_now();
        now.form = HIVE_TIME_UTC;
        rc = hive_cred_set_time(*out, HIVE_CRED_UPDATED_AT, &now);
    }
    if (rc == HIVE_OK && sc->value != NULL)
        rc = hive_cred_set_key(*out, sc->key, sc->value, sc->len, NULL);
    if (rc == HIVE_OK && sc->value == NULL && hive_cred_get_key(*out, sc->key, NULL) == NULL)
        return missing_key(*out, sc->key);
    if (rc == HIVE_OK && sc->value == NULL)
        rc = hive_cred_remove_key(*out, sc->key);
    if (rc != HIVE_OK)
        return cli_fail(rc);
    ex = apply_expires(sc->o, *out);
    return ex;
}

static int cmd_set(const opts *o, const char *id, const char *key, bool unset)
{
    set_ctx sc = {o, id, key, NULL, 0};
    char *value = NULL;
    int ex;

    if (!valid_key_name(key, strlen(key)))
        return usage_error("'%.100s' is not a key name (no spaces, control characters or '=')", key);
    if (!unset && (ex = read_one_value(&value, &sc.len)) != 0)
        return ex;
    sc.value = value;
    ex = update_credential(o, id, false, build_set, &sc);
    cli_free_secret(value, sc.len + 1);
    return ex;
}

/* --- get / show / list / exists / delete ------------------------------ */

static int load(const opts *o, hive_storage **s, hive_cred **cred, const char *id)
{
    hive_rc rc;
    int ex = open_storage(o, s);

    if (ex != 0)
        return ex;
    rc = hive_storage_load(*s, cred, id);
    return rc == HIVE_OK ? 0 : fail_for(o, *s, rc, id);
}

/* One audit record of this command about credential id: event with key
 * (NULL: none) when ex is 0, else with error (or the exit status). */
static void audit_cred(const hive_storage *s, const char *command, const char *event, const char *id,
                       const char *key, int ex, const char *error)
{
    hive_audit *a = cli_audit_open(s ? hive_file_storage_dir(s) : NULL, command);
    const char *keys[2] = {key, NULL};
    char status[32];

    snprintf(status, sizeof(status), "exit status %d", ex);
    CLI_AUDIT(hive_audit_event(a, event, id, key ? keys : NULL, ex == 0 ? NULL : error && *error ? error : status));
    hive_audit_free(&a);
}

static int cmd_get(const opts *o, const char *id, const char *key)
{
    hive_storage *s = NULL;
    hive_cred *cred = NULL;
    const char *value;
    size_t len = 0;
    int ex = load(o, &s, &cred, id);

    if (ex != 0)
        goto out;
    if (key == NULL)
        key = hive_cred_default_key(cred);
    value = key ? hive_cred_get_key(cred, key, &len) : NULL;
    if (value == NULL) {
        if (key == NULL) {
            cli_error("Credential '%s' has no keys", id);
            cli_hint("printf %%s \"$VALUE\" | hive-cred set %s KEY", id);
            ex = EXIT_NOT_FOUND;
        } else {
            ex = missing_key(cred, key);
        }
        goto out;
    }
    fwrite(value, 1, len, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) != 0)
        ex = EXIT_STORE;
out:
    if (s != NULL)
        audit_cred(s, "get", ex == 0 ? "handout" : "failure", id, ex == 0 ? key : NULL, ex, NULL);
    hive_cred_free(&cred);
    hive_storage_free(&s);
    return ex;
}

static void print_time_line(const char *label, hive_time t)
{
    char text[HIVE_TIME_TEXT];

    if (t.form == HIVE_TIME_NONE)
        return;
    hive_time_format(text, &t, true);
    printf("%-15s %s\n", label, text);
}

/* Keys Hive uses for identity and bookkeeping (_alias, _identity_email,
 * _integration_type, ...) are not secrets: show them. */
static bool is_metadata_key(const char *name)
{
    return name[0] == '_';
}

static int show_json(const hive_cred *cred, bool reveal)
{
    hive_json *doc = hive_json_clone(hive_cred_json(cred));
    hive_json *keys = hive_json_get_mut(doc, "keys");
    hive_rc rc = doc ? HIVE_OK : HIVE_ERR_NOMEM;

    for (size_t i = 0; rc == HIVE_OK && !reveal && i < hive_json_size(keys); i++) {
        const char *name;
        hive_json *k = hive_json_at_mut(keys, i, &name);
        if (!is_metadata_key(name))
            rc = hive_json_set(k, "value", hive_json_new(HIVE_JSON_NULL));
    }
    if (rc == HIVE_OK)
        rc = cli_print_json(doc);
    hive_json_free(&doc);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

static int cmd_show(const opts *o, const char *id)
{
    hive_storage *s = NULL;
    hive_cred *cred = NULL;
    hive_time now = hive_time_now();
    const hive_json *tags;
    int ex = load(o, &s, &cred, id);

    if (ex != 0)
        goto out;
    if (o->json) {
        ex = show_json(cred, o->reveal);
        goto out;
    }
    printf("%-15s %s\n", "id", hive_cred_id(cred));
    printf("%-15s %s\n", "type", hive_cred_type_str(cred));
    if (*hive_cred_description(cred) != '\0')
        printf("%-15s %s\n", "description", hive_cred_description(cred));
    if (hive_cred_provider_id(cred) != NULL)
        printf("%-15s %s\n", "provider_id", hive_cred_provider_id(cred));
    printf("%-15s %s\n", "auto_refresh", hive_cred_auto_refresh(cred) ? "true" : "false");
    tags = hive_cred_tags(cred);
    if (hive_json_size(tags) > 0) {
        printf("%-15s", "tags");
        for (size_t i = 0; i < hive_json_size(tags); i++)
            printf("%s%s", i ? ", " : " ", hive_json_string(hive_json_at(tags, i, NULL), NULL));
        putchar('\n');
    }
    print_time_line("created_at", hive_cred_time(cred, HIVE_CRED_CREATED_AT));
    print_time_line("updated_at", hive_cred_time(cred, HIVE_CRED_UPDATED_AT));
    print_time_line("last_refreshed", hive_cred_time(cred, HIVE_CRED_LAST_REFRESHED));
    printf("keys:\n");
    for (size_t i = 0; i < hive_cred_key_count(cred); i++) {
        const char *name = hive_cred_key_name(cred, i);
        size_t len = 0;
        const char *value = hive_cred_get_key(cred, name, &len);
        hive_time exp = hive_cred_key_expires(cred, name);
        printf("  %-22s ", name);
        if (o->reveal || is_metadata_key(name))
            fwrite(value, 1, len, stdout);
        else
            fputs("********", stdout);
        if (exp.form != HIVE_TIME_NONE) {
            char text[HIVE_TIME_TEXT];
            hive_time_format(text, &exp, true);
            printf("  expires %s%s", text, hive_time_cmp(&exp, &now) <= 0 ? " (expired)" : "");
        }
        putchar('\n');
    }
out:
    hive_cred_free(&cred);
    hive_storage_free(&s);
    return ex;
}

/* An index entry by id: the index is looked up once per id listed. */
typedef struct id_meta {
    const char *id;
    const hive_json *meta;
} id_meta;

static int cmp_id_meta(const void *a, const void *b)
{
    return strcmp(((const id_meta *)a)->id, ((const id_meta *)b)->id);
}

/* The entries of idx sorted by id (free()); NULL when idx is empty or on
 * no memory (then nothing is found). */
static id_meta *sorted_entries(const hive_json *idx, size_t *n)
{
    id_meta *v;

    *n = hive_json_size(idx);
    v = *n ? calloc(*n, sizeof(*v)) : NULL;
    if (v == NULL) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        v[i].meta = hive_json_at(idx, i, &v[i].id);
    qsort(v, *n, sizeof(*v), cmp_id_meta);
    return v;
}

static int cmd_list(const opts *o)
{
    hive_storage *s = NULL;
    hive_rc rc;
    int ex = open_storage(o, &s);

    if (ex != 0)
        return ex;
    if (!store_exists(s)) {
        cli_error("store %s does not exist", store_label(o, s));
        cli_hint("'hive-cred init' creates it; check --store and HIVE_HOME");
        hive_storage_free(&s);
        return EXIT_STORE;
    }
    if (o->json) {
        hive_json *idx = NULL;
        hive_json *arr = hive_json_new(HIVE_JSON_ARRAY);
        hive_strlist ids = {0};
        id_meta *by_id = NULL;
        size_t n_by_id = 0;
        rc = arr ? hive_storage_list(s, &ids) : HIVE_ERR_NOMEM;
        if (rc == HIVE_OK)
            rc = hive_file_storage_index(s, &idx);
        if (rc == HIVE_OK) {
            by_id = sorted_entries(idx, &n_by_id);
            if (by_id == NULL && n_by_id != hive_json_size(idx))
                rc = HIVE_ERR_NOMEM;
        }
        for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++) {
            hive_json *entry = hive_json_new(HIVE_JSON_OBJECT);
            id_meta want = {ids.items[i], NULL};
            const id_meta *hit = n_by_id ? bsearch(&want, by_id, n_by_id, sizeof(want), cmp_id_meta) : NULL;
            const hive_json *meta = hit ? hit->meta : NULL;
            rc = entry ? hive_json_set(entry, "id", hive_json_new_string(ids.items[i], strlen(ids.items[i])))
                       : HIVE_ERR_NOMEM;
            for (size_t k = 0; rc == HIVE_OK && k < hive_json_size(meta); k++) {
                const char *name;
                const hive_json *v = hive_json_at(meta, k, &name);
                rc = hive_json_set(entry, name, hive_json_clone(v));
            }
            if (rc == HIVE_OK)
                rc = hive_json_append(arr, entry);
            else
                hive_json_free(&entry);
        }
        if (rc == HIVE_OK)
            rc = cli_print_json(arr);
        free(by_id);
        hive_json_free(&arr);
        hive_json_free(&idx);
        hive_strlist_free(&ids);
    } else {
        hive_strlist ids = {0};
        rc = hive_storage_list(s, &ids);
        for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++)
            printf("%s\n", ids.items[i]);
        hive_strlist_free(&ids);
    }
    hive_storage_free(&s);
    if (rc != HIVE_OK)
        return cli_fail(rc);
    return fflush(stdout) == 0 ? 0 : EXIT_STORE;
}

static int cmd_exists(const opts *o, const char *id)
{
    hive_storage *s = NULL;
    bool found = false;
    hive_rc rc;
    int ex = open_storage(o, &s);

    if (ex != 0)
        return ex;
    rc = hive_storage_exists(s, &found, id);
    hive_storage_free(&s);
    if (rc == HIVE_ERR_BAD_ID)
        return EXIT_NO;   /* no file can hold it, so it does not exist */
    if (rc != HIVE_OK)
        return cli_fail(rc);
    return found ? 0 : EXIT_NO;
}

static int cmd_delete(const opts *o, const char *id)
{
    hive_storage *s = NULL;
    hive_rc rc;
    int ex = open_storage(o, &s);

    if (ex != 0)
        return ex;
    rc = hive_storage_delete(s, id);
    ex = rc == HIVE_OK ? 0 : fail_for(o, s, rc, id);
    hive_storage_free(&s);
    return ex;
}

/* --- the store: resolve, validate, refresh, accounts, usage ------------- */

/* Stores whose files were found open to group or others: said once per
 * store at the end of the command (report_open_modes), with the count. */
#define MAX_WARNED_STORES 4
static struct {
    const store_ref *ref;
    char *first;   /* the first message about it */
} warned[MAX_WARNED_STORES];

static void print_warning(void *ctx, const char *msg)
{
    const store_ref *ref = ctx;
    size_t i;

    if (ref == NULL || strstr(msg, "by group or others") == NULL) {
        cli_warn("%s", msg);
        return;
    }
    for (i = 0; i < MAX_WARNED_STORES && warned[i].ref != NULL; i++)
        if (warned[i].ref == ref || (ref->spec && warned[i].ref->spec && strcmp(ref->spec, warned[i].ref->spec) == 0))
            return;
    if (i == MAX_WARNED_STORES) {
        cli_warn("%s", msg);
        return;
    }
    warned[i].ref = ref;
    warned[i].first = strdup(msg);
}

static int open_store(const opts *o, hive_store **st)
{
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    hive_rc rc;

    so.warn = print_warning;
    so.warn_ctx = warn_ref(o);
    rc = hive_store_open_from_env(st, o->store, &so);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

static int cmd_resolve(const opts *o, const char *text)
{
    hive_store *st = NULL;
    hive_secret out = HIVE_SECRET_INIT;
    hive_rc rc;
    int ex = open_store(o, &st);

    if (ex != 0)
        return ex;
    rc = hive_store_resolve(st, &out, text, 0);
    if (rc == HIVE_OK) {
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
        hive_secret_free(&out);
        ex = fflush(stdout) == 0 ? 0 : EXIT_STORE;
    } else {
        ex = store_fail(o, rc);
    }
    hive_store_free(&st);
    return ex;
}

static void print_problems(const char *what, const char *id, const hive_strlist *p, hive_json **json_out)
{
    hive_json *arr = json_out ? hive_json_new(HIVE_JSON_ARRAY) : NULL;

    for (size_t i = 0; i < p->count; i++) {
        if (json_out)
            hive_json_push(&arr, hive_json_new_string(p->items[i], strlen(p->items[i])));
        else
            printf("%s %s: %s\n", what, id, p->items[i]);
    }
    if (json_out)
        hive_json_put(json_out, id, arr);
}

static int cmd_validate(const opts *o, const char *id)
{
    hive_store *st = NULL;
    hive_strlist ids = {0};
    hive_strlist specs = {0};
    hive_json *jc = o->json ? hive_json_new(HIVE_JSON_OBJECT) : NULL;
    hive_json *ju = o->json ? hive_json_new(HIVE_JSON_OBJECT) : NULL;
    size_t problems = 0;
    hive_rc rc = HIVE_OK;
    int ex = open_store(o, &st);

    if (ex != 0)
        goto out;
    if (id != NULL) {
        /* reading the specs first reports a damaged usage file */
        rc = hive_store_list_usage(st, &specs);
        hive_strlist_free(&specs);
        if (rc == HIVE_OK)
            rc = hive_strlist_add(&ids, id);
        if (rc == HIVE_OK && hive_store_get_usage(st, id) != NULL)
            rc = hive_strlist_add(&specs, id);
    } else {
        rc = hive_store_list(st, &ids);
        if (rc == HIVE_OK)
            rc = hive_store_list_usage(st, &specs);
    }
    for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++) {
        hive_strlist p = {0};
        rc = hive_store_validate_credential(st, &p, ids.items[i]);
        problems += p.count;
        if (p.count > 0)
            print_problems("credential", ids.items[i], &p, o->json ? &jc : NULL);
        hive_strlist_free(&p);
    }
    for (size_t i = 0; rc == HIVE_OK && i < specs.count; i++) {
        hive_strlist p = {0};
        rc = hive_store_validate_for_usage(st, &p, specs.items[i]);
        problems += p.count;
        if (p.count > 0)
            print_problems("usage", specs.items[i], &p, o->json ? &ju : NULL);
        hive_strlist_free(&p);
    }
    if (rc != HIVE_OK) {
        ex = cli_fail(rc);
        goto out;
    }
    if (o->json) {
        hive_json *doc = hive_json_new(HIVE_JSON_OBJECT);
        hive_json_put(&doc, "ok", hive_json_new(problems ? HIVE_JSON_FALSE : HIVE_JSON_TRUE));
        hive_json_put(&doc, "credentials", jc);
        hive_json_put(&doc, "usage", ju);
        jc = ju = NULL;
        rc = cli_print_json(doc);
        hive_json_free(&doc);
        if (rc != HIVE_OK) {
            ex = cli_fail(rc);
            goto out;
        }
    } else if (problems == 0) {
        printf("ok: %zu credential(s), %zu usage spec(s)\n", ids.count, specs.count);
    }
    ex = problems ? EXIT_NO : 0;
out:
    hive_json_free(&jc);
    hive_json_free(&ju);
    hive_strlist_free(&ids);
    hive_strlist_free(&specs);
    hive_store_free(&st);
    return ex;
}

static int cmd_refresh(const opts *o, const char *id)
{
    hive_store *st = NULL;
    hive_cred *c = NULL;
    hive_rc rc;
    int ex = open_store(o, &st);

    if (ex != 0)
        return ex;
    rc = HIVE_OK;
    if (o->retry_in_doubt) {
        bool was = false;
        rc = hive_store_clear_in_doubt(st, &was, id);
        if (rc == HIVE_OK && !was)
            cli_warn("the refresh token of '%s' was not in doubt; refreshing as usual", id);
    }
    if (rc == HIVE_OK)
        rc = hive_store_refresh(st, &c, id);
    if (rc == HIVE_OK) {
        /* the access token is what a refresh renews (an id_token beside it
         * may have expired long ago) */
        hive_time t = hive_cred_get_key(c, "access_token", NULL) ? hive_cred_key_expires(c, "access_token")
                                                                 : hive_cred_expires(c);
        char when[HIVE_TIME_TEXT];
        hive_time_format(when, &t, true);
        printf("refreshed %s%s%s\n", id, t.form != HIVE_TIME_NONE ? "; expires " : "", when);
        audit_cred(hive_store_storage(st), "refresh", "refresh", id, NULL, 0, NULL);
    } else {
        char *why = strdup(hive_last_error());
        ex = store_fail(o, rc);
        audit_cred(hive_store_storage(st), "refresh", "refresh", id, NULL, ex, why);
        free(why);
    }
    hive_cred_free(&c);
    hive_store_free(&st);
    return ex;
}

/* --- login and revoke ------------------------------------------------------- */

/* name: value on stderr, value from a server: printable ASCII only. */
static void print_field(const char *name, const char *value)
{
    fprintf(stderr, "%s: ", name);
    for (const char *p = value; *p != '\0'; p++)
        fputc(*p > 0x20 && *p < 0x7f ? *p : '?', stderr);
    fputc('\n', stderr);
}

/* Open url with xdg-open (not waited for; its output dropped). */
static bool open_browser(const char *url)
{
    char prog[] = "xdg-open";
    char *arg = strdup(url);
    char *argv[] = {prog, arg, NULL};
    char **env = cli_env_without_secrets();   /* the browser outlives us: no store key in it */
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc;

    if (arg == NULL || env == NULL || posix_spawn_file_actions_init(&fa) != 0) {
        free(arg);
        free(env);
        return false;
    }
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    free(arg);
    return rc == 0;
}

static bool has_display(void)
{
    const char *x = getenv("DISPLAY");
    const char *w = getenv("WAYLAND_DISPLAY");

    return (x != NULL && *x != '\0') || (w != NULL && *w != '\0');
}

static void login_prompt(void *ctx, const hive_login_prompt *p)
{
    const bool *no_browser = ctx;

    if (p->device) {
        fprintf(stderr, "hive-cred: to log in, open verification_uri in a browser on any machine and enter "
                "user_code (within %ld s)\n", p->expires_in);
        print_field("verification_uri", p->verification_uri);
        print_field("user_code", p->user_code);
        if (p->verification_uri_complete != NULL)
            print_field("verification_uri_complete", p->verification_uri_complete);
    } else if (!*no_browser && has_display() && open_browser(p->authorization_url)) {
        fprintf(stderr, "hive-cred: the login page is opening in your browser (waiting %ld s); if it does not, "
                "open authorization_url:\n", p->expires_in);
        print_field("authorization_url", p->authorization_url);
    } else {
        fprintf(stderr, "hive-cred: to log in, open authorization_url in a browser on this machine (waiting "
                "%ld s)\n", p->expires_in);
        print_field("authorization_url", p->authorization_url);
    }
    fflush(stderr);
}

/* A failure talking to the provider: no answer is a failed login too (7). */
static int auth_fail(const opts *o, hive_rc rc)
{
    int ex = store_fail(o, rc);

    return rc == HIVE_ERR_NETWORK ? EXIT_REFRESH : ex;
}

/* The tokens a login or revoke handles, by name. */
static const char *const token_keys[] = {"access_token", "refresh_token", "scope"};
#define N_TOKEN_KEYS (sizeof(token_keys) / sizeof(token_keys[0]))

/* Which of token_keys credential id holds as stored (have[i]); all false
 * when it cannot be read. */
static void tokens_held(hive_store *st, const char *id, bool have[N_TOKEN_KEYS])
{
    hive_cred *c = NULL;

    hive_store_invalidate(st, id);
    if (hive_store_get_credential(st, &c, id, HIVE_GET_NO_REFRESH) != HIVE_OK)
        c = NULL;
    for (size_t i = 0; i < N_TOKEN_KEYS; i++)
        have[i] = c != NULL && hive_cred_get_key(c, token_keys[i], NULL) != NULL;
    hive_cred_free(&c);
}

/* The record of a login or revoke of id: the token keys saved (held now)
 * or removed (held before, gone now), by name; error NULL when it worked. */
static void audit_tokens(hive_store *st, const char *command, const char *id, const bool before[N_TOKEN_KEYS],
                         const char *error)
{
    hive_audit *a = cli_audit_open(hive_file_storage_dir(hive_store_storage(st)), command);
    const char *keys[N_TOKEN_KEYS + 1];
    bool now[N_TOKEN_KEYS];
    size_t n = 0;

    if (!hive_audit_enabled(a)) {
        hive_audit_free(&a);
        return;
    }
    tokens_held(st, id, now);
    for (size_t i = 0; i < N_TOKEN_KEYS; i++)
        if (before == NULL ? now[i] : (before[i] && !now[i]))
            keys[n++] = token_keys[i];
    keys[n] = NULL;
    CLI_AUDIT(hive_audit_event(a, command, id, keys, error));
    hive_audit_free(&a);
}

static int cmd_login(const opts *o, const char *id)
{
    hive_login_options lo = HIVE_LOGIN_OPTIONS_INIT;
    bool no_browser = o->no_browser;
    hive_store *st = NULL;
    hive_cred *c = NULL;
    hive_strlist required = {0};
    hive_rc rc;
    int ex;

    lo.device = o->device;
    lo.scopes = o->scopes;
    lo.nscopes = o->n_scopes;
    lo.provider_id = o->provider_id;
    lo.prompt = login_prompt;
    lo.prompt_ctx = &no_browser;
    if (o->timeout != NULL) {
        char *end;
        long t = strtol(o->timeout, &end, 10);
        if (end == o->timeout || *end != '\0' || t < 1 || t > 3600)
            return usage_error("--timeout takes a number of seconds from 1 to 3600");
        lo.timeout = (int)t;
    }
    if (o->device && o->no_browser)
        return usage_error("--no-browser applies to the browser login, not --device");
    if ((ex = open_store(o, &st)) != 0)
        return ex;
    /* ask for what the usage specs naming the credential require */
    rc = hive_store_required_scopes(st, &required, id);
    lo.extra_scopes = (const char *const *)required.items;
    lo.nextra_scopes = required.count;
    if (rc == HIVE_OK)
        rc = hive_store_login(st, &c, id, &lo);
    if (rc == HIVE_OK) {
        hive_time t = hive_cred_key_expires(c, "access_token");
        char when[HIVE_TIME_TEXT];
        hive_time_format(when, &t, true);
        printf("logged in %s%s%s%s\n", id, t.form != HIVE_TIME_NONE ? "; expires " : "", when,
               hive_cred_get_key(c, "refresh_token", NULL) ? "; refresh token saved" : "");
        ex = fflush(stdout) == 0 ? 0 : EXIT_STORE;
        audit_tokens(st, "login", id, NULL, NULL);
    } else {
        char *why = strdup(hive_last_error());
        bool none[N_TOKEN_KEYS] = {false};
        ex = auth_fail(o, rc);
        if (rc == HIVE_ERR_NOT_FOUND && o->provider_id == NULL)
            cli_hint("--provider-id P creates it as an oauth2 credential of provider P");
        audit_tokens(st, "login", id, none, why ? why : "login failed");   /* nothing saved */
        free(why);
    }
    hive_strlist_free(&required);
    hive_cred_free(&c);
    hive_store_free(&st);
    return ex;
}

static int cmd_revoke(const opts *o, const char *id)
{
    hive_store *st = NULL;
    bool before[N_TOKEN_KEYS];
    int n = 0;
    hive_rc rc;
    int ex = open_store(o, &st);

    if (ex != 0)
        return ex;
    tokens_held(st, id, before);
    rc = hive_store_revoke(st, id, &n);
    if (rc == HIVE_OK) {
        printf("revoked %d token%s of %s and removed them\n", n, n == 1 ? "" : "s", id);
        ex = fflush(stdout) == 0 ? 0 : EXIT_STORE;
        audit_tokens(st, "revoke", id, before, NULL);
    } else {
        char *why = strdup(hive_last_error());
        ex = auth_fail(o, rc);
        audit_tokens(st, "revoke", id, before, why ? why : "revocation failed");
        free(why);
    }
    hive_store_free(&st);
    return ex;
}

static int cmd_accounts(const opts *o, const char *provider)
{
    hive_store *st = NULL;
    hive_json *acc = NULL;
    hive_rc rc;
    int ex = open_store(o, &st);

    if (ex != 0)
        return ex;
    rc = hive_store_list_accounts(st, &acc, provider);
    if (rc != HIVE_OK) {
        ex = cli_fail(rc);
    } else if (o->json) {
        (void)cli_print_json(acc);
    } else {
        for (size_t i = 0; i < hive_json_size(acc); i++) {
            const hive_json *a = hive_json_at(acc, i, NULL);
            const hive_json *ident = hive_json_get(a, "identity");
            const char *alias = hive_json_string(hive_json_get(a, "alias"), NULL);
            printf("%s\t%s", hive_json_string(hive_json_get(a, "id"), NULL), alias ? alias : "-");
            for (size_t k = 0; k < hive_json_size(ident); k++) {
                const char *name;
                const hive_json *v = hive_json_at(ident, k, &name);
                printf("%s%s=%s", k ? " " : "\t", name, hive_json_string(v, NULL));
            }
            putchar('\n');
        }
    }
    hive_json_free(&acc);
    hive_store_free(&st);
    return ex;
}

/* NAME=TEMPLATE options into an object. */
static int put_pairs(hive_json **spec, const char *field, const char *opt, const char *const *items, size_t n)
{
    hive_json *obj = hive_json_new(HIVE_JSON_OBJECT);

    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        char name[256];
        if (eq == NULL || eq == items[i] || (size_t)(eq - items[i]) >= sizeof(name)) {
            hive_json_free(&obj);
            return usage_error("%s wants NAME=TEMPLATE, not '%.100s'", opt, items[i]);
        }
        memcpy(name, items[i], (size_t)(eq - items[i]));
        name[eq - items[i]] = '\0';
        hive_json_put(&obj, name, hive_json_new_string(eq + 1, strlen(eq + 1)));
    }
    hive_json_put(spec, field, obj);
    return 0;
}

/* usage list --json: each spec's id, credential, required keys and scopes. */
static hive_rc usage_list_json(hive_store *st)
{
    static const char *const fields[] = {"credential_id", "required_keys", "required_scopes", "description"};
    hive_strlist ids = {0};
    hive_json *doc = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc = doc ? hive_store_list_usage(st, &ids) : HIVE_ERR_NOMEM;

    for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++) {
        const hive_json *spec = hive_store_get_usage(st, ids.items[i]);
        hive_json *e = hive_json_new(HIVE_JSON_OBJECT);
        for (size_t f = 0; e != NULL && rc == HIVE_OK && f < sizeof(fields) / sizeof(fields[0]); f++)
            rc = hive_json_set(e, fields[f], hive_json_clone(hive_json_get(spec, fields[f])));
        if (rc == HIVE_OK)
            rc = hive_json_set(doc, ids.items[i], e);
        else
            hive_json_free(&e);
    }
    if (rc == HIVE_OK)
        rc = cli_print_json(doc);
    hive_json_free(&doc);
    hive_strlist_free(&ids);
    return rc;
}

static int cmd_usage(const opts *o, char **args, int nargs)
{
    const char *sub = nargs > 0 ? args[0] : "";
    hive_store *st = NULL;
    hive_rc rc = HIVE_OK;
    int ex;

    if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "add") != 0 &&
        strcmp(sub, "remove") != 0)
        return usage_error("'usage' wants add, list, show or remove, not '%.64s'", sub);
    if ((strcmp(sub, "list") == 0 && nargs != 1) || (strcmp(sub, "list") != 0 && nargs != 2))
        return usage_error("'usage %s' takes %s", sub, strcmp(sub, "list") == 0 ? "no operands" : "one ID");
    if (o->usage_only != NULL && strcmp(sub, "add") != 0)
        return usage_error("option %s applies to 'usage add' only", o->usage_only);
    if (o->scope_only != NULL && strcmp(sub, "add") != 0)
        return usage_error("option %s applies to 'usage add' and 'login' only", o->scope_only);
    if ((ex = open_store(o, &st)) != 0)
        return ex;
    if (strcmp(sub, "list") == 0 && o->json) {
        rc = usage_list_json(st);
    } else if (strcmp(sub, "list") == 0) {
        hive_strlist ids = {0};
        rc = hive_store_list_usage(st, &ids);
        for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++)
            printf("%s\n", ids.items[i]);
        hive_strlist_free(&ids);
    } else if (strcmp(sub, "show") == 0) {
        const hive_json *spec = hive_store_get_usage(st, args[1]);
        hive_strlist none = {0};
        if (spec == NULL)
            rc = hive_store_validate_for_usage(st, &none, args[1]);   /* says why */
        else
            rc = cli_print_json(spec);
        hive_strlist_free(&none);
    } else if (strcmp(sub, "remove") == 0) {
        rc = hive_store_unregister_usage(st, args[1], true);
    } else {
        hive_json *spec = hive_json_new(HIVE_JSON_OBJECT);
        hive_json *keys = hive_json_new(HIVE_JSON_ARRAY);
        hive_json_put(&spec, "credential_id", hive_json_new_string(args[1], strlen(args[1])));
        for (size_t i = 0; i < o->n_keys; i++)
            hive_json_push(&keys, hive_json_new_string(o->keys[i], strlen(o->keys[i])));
        hive_json_put(&spec, "required_keys", keys);
        if (o->n_scopes > 0) {
            hive_json *scopes = hive_json_new(HIVE_JSON_ARRAY);
            for (size_t i = 0; i < o->n_scopes; i++)
                hive_json_push(&scopes, hive_json_new_string(o->scopes[i], strlen(o->scopes[i])));
            hive_json_put(&spec, "required_scopes", scopes);
        }
        ex = put_pairs(&spec, "headers", "--header", o->headers, o->n_headers);
        if (ex == 0)
            ex = put_pairs(&spec, "query_params", "--param", o->params, o->n_params);
        if (ex == 0)
            ex = put_pairs(&spec, "body_fields", "--body", o->body, o->n_body);
        if (ex == 0)
            ex = put_pairs(&spec, "env", "--env", o->env, o->n_env);
        if (o->description)
            hive_json_put(&spec, "description", hive_json_new_string(o->description, strlen(o->description)));
        if (o->help_url)
            hive_json_put(&spec, "help_url", hive_json_new_string(o->help_url, strlen(o->help_url)));
        if (ex == 0 && spec == NULL)
            rc = hive_fail(HIVE_ERR_NOMEM, "out of memory");
        else if (ex == 0)
            rc = hive_store_register_usage(st, spec, true);
        hive_json_free(&spec);
    }
    if (ex == 0 && rc != HIVE_OK)
        ex = cli_fail(rc);
    hive_store_free(&st);
    return ex;
}

static int cmd_sync(const opts *o)
{
    hive_store *st = NULL;
    hive_aden_sync_result res = HIVE_ADEN_SYNC_RESULT_INIT;
    hive_rc rc;
    int ex = open_store(o, &st);

    if (ex != 0)
        return ex;
    rc = hive_aden_sync(st, &res);
    if (rc != HIVE_OK) {
        ex = cli_fail(rc);
    } else {
        printf("synced %zu of %zu integration(s)", res.synced, res.listed);
        if (res.skipped)
            printf(", %zu not active", res.skipped);
        if (res.failed)
            printf(", %zu failed", res.failed);
        printf("\n");
        ex = res.failed ? EXIT_STORE : 0;
        if (res.failed) {
            fflush(stdout);
            cli_hint("the messages above say why; run 'hive-cred sync' again to retry them");
        }
    }
    hive_store_free(&st);
    return ex;
}

static int cmd_copy(const char *from, const char *to)
{
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    hive_storage *src = NULL;
    hive_storage *dst = NULL;
    hive_strlist ids = {0};
    size_t copied = 0;
    hive_rc rc;
    int ex = 0;

    static store_ref src_ref, dst_ref;

    src_ref.spec = from;
    dst_ref.spec = to;
    fo.warn = print_warning;
    fo.warn_ctx = &src_ref;
    rc = hive_storage_open_from_env(&src, from, &fo);
    fo.warn_ctx = &dst_ref;
    if (rc == HIVE_OK)
        rc = hive_storage_open_from_env(&dst, to, &fo);
    if (rc == HIVE_OK)
        rc = hive_storage_list(src, &ids);
    for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++) {
        hive_cred *c = NULL;
        hive_rc r = hive_storage_load(src, &c, ids.items[i]);
        if (r == HIVE_OK)
            r = hive_storage_save(dst, c);
        hive_cred_free(&c);
        if (r == HIVE_OK) {
            copied++;
        } else if (r == HIVE_ERR_NOMEM || r == HIVE_ERR_NETWORK || r == HIVE_ERR_IO || r == HIVE_ERR_NO_KEY ||
                   r == HIVE_ERR_BAD_KEY || r == HIVE_ERR_PERM) {
            /* the same for every credential: say it once */
            rc = r;
        } else {
            cli_warn("%s: %s (not copied)", ids.items[i], hive_last_error());
            ex = EXIT_DECRYPT;
        }
    }
    if (rc != HIVE_OK) {
        bool dst_key = rc == HIVE_ERR_NO_KEY && dst != NULL && hive_file_storage_key_file(dst) != NULL &&
                       strstr(hive_last_error(), hive_file_storage_key_file(dst)) != NULL;
        ex = cli_fail(rc);
        if (dst_key)
            cli_hint("nothing was copied; 'hive-cred --store %s init' gives the destination a key of its own", to);
    } else {
        printf("copied %zu of %zu credential(s)\n", copied, ids.count);
    }
    hive_strlist_free(&ids);
    hive_storage_free(&src);
    hive_storage_free(&dst);
    return ex;
}

static void show_progress(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    if (done == total || done % 25 == 0) {
        fprintf(stderr, "\rre-encrypting: %zu/%zu", done, total);
        if (done == total)
            fputc('\n', stderr);
        fflush(stderr);
    }
}

/* What the user must do with new_file, the new key, for s's source, which
 * hive cannot write: a line "key:   ..." on stdout. */
static void print_update(hive_storage *s, const char *new_file)
{
    const char *src = hive_file_storage_key_source(s);

    printf("key:   %s holds the new key: ", new_file);
    switch (hive_file_storage_key_kind(s)) {
    case HIVE_KEY_COMMAND:
        printf("make %s print it (update the secret it reads, e.g. pass insert -m NAME < %s; or "
               "secret-tool store ... < %s), check with 'hive-cred doctor', then delete the file", src, new_file,
               new_file);
        break;
    case HIVE_KEY_SYSTEMD:
        printf("make it the service's credential " HIVE_SYSTEMD_KEY_NAME " (%s): for LoadCredentialEncrypted=, "
               "systemd-creds encrypt --name=" HIVE_SYSTEMD_KEY_NAME " %s /etc/credstore.encrypted/"
               HIVE_SYSTEMD_KEY_NAME "; for LoadCredential=, copy it to the path the unit names; restart the "
               "service, then delete the file", src, new_file);
        break;
    default:
        printf("put it in %s wherever that is kept (secrets manager, CI settings), then delete the file", src);
        break;
    }
    printf("; the old key no longer opens anything\n");
}

/* rotate-key refused before anything changed: the key's source cannot be
 * written and no file was named for the new key. */
static int rotate_needs_file(hive_storage *s)
{
    const char *src = hive_file_storage_key_source(s);

    cli_error("the key comes from %s, not from a key file: a new key made or given now would exist only in "
              "this process; nothing changed", src);
    cli_hint("hive-cred rotate-key --new-key-file FILE   (FILE gets a new key, 0600; or holds the one to use)");
    switch (hive_file_storage_key_kind(s)) {
    case HIVE_KEY_COMMAND:
        cli_hint("then make %s print FILE's key, and delete FILE", src);
        break;
    case HIVE_KEY_SYSTEMD:
        cli_hint("then make FILE the service's credential: systemd-creds encrypt --name=" HIVE_SYSTEMD_KEY_NAME
                 " FILE /etc/credstore.encrypted/" HIVE_SYSTEMD_KEY_NAME " (LoadCredentialEncrypted=), and "
                 "delete FILE");
        break;
    default:
        cli_hint("then put the content of FILE in %s wherever it is kept, and delete FILE", src);
        break;
    }
    hive_storage_free(&s);
    return EXIT_USAGE;
}

/* The hints for a failed rotation (the error is said). */
static int rotate_failed(const opts *o, hive_rc rc, bool made, hive_key_kind kind)
{
    char msg[1024];
    int ex;

    snprintf(msg, sizeof(msg), "%s", hive_last_error());
    if (rc == HIVE_ERR_PERM && o->new_key_file != NULL && strstr(msg, o->new_key_file) != NULL) {
        /* the new key file, checked as a key file */
        cli_error("%s", msg);
        cli_hint("chmod 600 %s", o->new_key_file);
        ex = cli_exit_code(rc);
    } else {
        ex = cli_fail(rc);
    }
    if (rc == HIVE_ERR_CONFLICT && strstr(msg, "is another key than the one in") != NULL) {
        cli_hint("unset %s, or name the file that holds it", HIVE_ENV_NEW_KEY);
    } else if (rc == HIVE_ERR_CONFLICT && strstr(msg, "interrupted rotation") != NULL) {
        if (kind == HIVE_KEY_FILE) {
            cli_hint("finish it with its own key first: env -u HIVE_NEW_CREDENTIAL_KEY hive-cred rotate-key");
            cli_hint("then rotate to your key: HIVE_NEW_CREDENTIAL_KEY=... hive-cred rotate-key");
        } else {
            cli_hint("finish it with its own key first: hive-cred rotate-key (without --new-key-file)");
        }
        cli_hint("a fingerprint is printf %%s \"$KEY\" | sha256sum | cut -c1-8");
    } else if (rc == HIVE_ERR_BAD_KEY && o->new_key_file != NULL && strstr(msg, o->new_key_file) != NULL) {
        cli_hint("name a file that does not exist yet, and hive-cred writes a new key into it");
    }
    if (made)
        cli_hint("%s holds a key nothing was encrypted with: delete it, or use it again", o->new_key_file);
    return ex;
}

/* No rotation may leave the store under a key that exists only in this
 * process: with the key in a key file the new key goes there; with the
 * key anywhere else (HIVE_CREDENTIAL_KEY, the command, systemd), which
 * hive cannot write, it must come from (or go to) a file the user names,
 * kept until the user deletes it. */
static int cmd_rotate_key(const opts *o)
{
    hive_storage *s = NULL;
    hive_rotation res = HIVE_ROTATION_INIT;
    hive_key_kind kind;
    char *pending = NULL;   /* the file of an interrupted rotation (a copy: the rotation ends it) */
    bool outside;
    bool existed;
    hive_rc rc;
    int ex = open_storage(o, &s);

    if (ex != 0)
        return ex;
    if (hive_file_storage_dir(s) == NULL) {
        hive_storage_free(&s);
        cli_error("rotate-key works on a file store; %s is an etcd store", o->store);
        cli_hint("every machine of the fleet reads it with the same key: copy it to a file store "
                 "(hive-cred copy URL DIR), rotate that, and copy it back to a new prefix");
        return EXIT_USAGE;
    }
    /* HIVE_KEY_NONE: no usable key, which the rotation itself reports */
    kind = hive_file_storage_key_kind(s);
    outside = kind != HIVE_KEY_FILE && kind != HIVE_KEY_NONE;
    if (outside && hive_file_storage_pending_key_file(s) != NULL &&
        (pending = strdup(hive_file_storage_pending_key_file(s))) == NULL) {
        hive_storage_free(&s);
        return cli_fail(HIVE_ERR_NOMEM);
    }
    if (outside && o->new_key_file == NULL && pending == NULL)
        return rotate_needs_file(s);
    existed = o->new_key_file != NULL && access(o->new_key_file, F_OK) == 0;
    if (o->new_key_file != NULL || pending != NULL)
        rc = hive_file_storage_rotate_key_file(s, o->new_key_file, isatty(STDERR_FILENO) ? show_progress : NULL,
                                               NULL, &res);
    else
        rc = hive_file_storage_rotate_key(s, NULL, isatty(STDERR_FILENO) ? show_progress : NULL, NULL, &res);
    if (rc != HIVE_OK) {
        ex = rotate_failed(o, rc, o->new_key_file != NULL && !existed && access(o->new_key_file, F_OK) == 0,
                           kind);
        free(pending);
        hive_storage_free(&s);
        return ex;
    }
    printf("re-encrypted %zu of %zu credential(s)", res.rotated, res.total);
    if (res.already)
        printf(" (%zu done by an earlier, interrupted run)", res.already);
    printf("\n");
    if (res.unreadable)
        cli_warn("%zu credential file(s) could be read with neither key and were left as they were",
                 res.unreadable);
    if (res.key_file)
        printf("key:   %s (the new key; back it up: the old one no longer opens anything)\n",
               hive_file_storage_key_file(s));
    else
        print_update(s, o->new_key_file ? o->new_key_file : pending);
    if (!res.key_file && access(hive_file_storage_key_file(s), F_OK) == 0)
        cli_warn("the key file %s was not used (%s was) and holds the old key, which opens nothing now: "
                 "replace it with the new key, or delete it", hive_file_storage_key_file(s),
                 hive_file_storage_key_source(s));
    free(pending);
    hive_storage_free(&s);
    return res.unreadable ? EXIT_DECRYPT : 0;
}

/* --- doctor ------------------------------------------------------------ */

/* Paths of a file store that group or others can reach. */
typedef struct modes {
    size_t open;        /* found open */
    size_t fixed;       /* made 0700 / 0600 by --fix */
    char *first;        /* the first one found, with its mode */
} modes;

static void check_path(modes *m, const char *path, bool fix)
{
    struct stat st;

    if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode) || (st.st_mode & 077) == 0)
        return;
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return;
    m->open++;
    if (m->first == NULL && asprintf(&m->first, "%s (mode %04o)", path, (unsigned)(st.st_mode & 07777)) < 0)
        m->first = NULL;
    if (fix && chmod(path, S_ISDIR(st.st_mode) ? 0700 : 0600) == 0)
        m->fixed++;
}

/* dir and what is in it, depth levels down; symlinks are never followed. */
static void check_tree(modes *m, const char *dir, int depth, bool fix)
{
    DIR *d;
    struct dirent *e;

    check_path(m, dir, fix);
    if (depth == 0 || (d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char *path;
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
            break;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            check_tree(m, path, depth - 1, fix);
        else
            check_path(m, path, fix);
        free(path);
    }
    closedir(d);
}

/* The store directory (with credentials/, metadata/, .refresh/), the key
 * file's directory and the key files. */
static void check_store_modes(modes *m, const hive_storage *s, bool fix)
{
    const char *dir = hive_file_storage_dir(s);
    const char *key_file = hive_file_storage_key_file(s);
    char *secrets = key_file ? strdup(key_file) : NULL;
    char *slash = secrets ? strrchr(secrets, '/') : NULL;

    if (dir != NULL)
        check_tree(m, dir, 2, fix);
    if (slash != NULL && slash != secrets) {
        char *next = NULL;
        *slash = '\0';
        check_path(m, secrets, fix);
        check_path(m, key_file, fix);
        if (asprintf(&next, "%s.new", key_file) >= 0)
            check_path(m, next, fix);
        free(next);
    }
    free(secrets);
}

/* Once per command, for each store found open to group or others: how
 * many paths, the first, and the command that closes them all. */
static void report_open_modes(void)
{
    for (size_t i = 0; i < MAX_WARNED_STORES && warned[i].ref != NULL; i++) {
        hive_storage *s = NULL;
        modes m = {0, 0, NULL};
        const char *spec = warned[i].ref->spec;
        if (hive_storage_open_from_env(&s, spec, NULL) == HIVE_OK)
            check_store_modes(&m, s, false);
        if (m.open > 0) {
            cli_warn("%zu path(s) of store %s can be reached by group or others, e.g. %s", m.open,
                     hive_file_storage_dir(s), m.first);
            cli_hint("hive-cred%s%s doctor --fix makes its directories 0700 and its files 0600", spec ? " --store " : "",
                     spec ? spec : "");
        }
        free(m.first);
        free(warned[i].first);
        warned[i].first = NULL;
        hive_storage_free(&s);
    }
}

static size_t doctor_problems;

__attribute__((format(printf, 1, 2)))
static void problem(const char *fmt, ...)
{
    va_list ap;

    printf("problem  ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    doctor_problems++;
}

/* Index drift: ids the index lists with no file, files it does not list. */
static void doctor_index(hive_storage *s)
{
    const char *dir = hive_file_storage_dir(s);
    char *path = NULL;
    char *text = NULL;
    size_t len = 0;
    size_t stale = 0, unlisted = 0, files = 0;
    hive_json *idx = NULL;
    const hive_json *creds;
    DIR *d;
    struct dirent *e;
    int fd;

    if (asprintf(&path, "%s/metadata/index.json", dir) < 0)
        return;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || cli_read_all(fd, &text, &len, 16u * 1024 * 1024) != 0 ||
        hive_json_parse(&idx, text, len) != HIVE_OK) {
        const char *what = fd < 0 && errno == ENOENT ? "missing" : "unreadable or damaged";
        hive_strlist ids = {0};
        if (fd >= 0)
            close(fd);
        if (hive_storage_list(s, &ids) == HIVE_OK)
            printf("fixed    index %s was %s: rebuilt from the files (it is a cache)\n", path, what);
        else
            problem("index %s is %s, and cannot be rebuilt: %s", path, what, hive_last_error());
        hive_strlist_free(&ids);
        goto out;
    }
    close(fd);
    creds = hive_json_get(idx, "credentials");
    for (size_t i = 0; i < hive_json_size(creds); i++) {
        const char *id;
        char stem[HIVE_ID_MAX + 8];
        char *enc = NULL;
        struct stat st;
        hive_json_at(creds, i, &id);
        if (hive_file_stem(stem, sizeof(stem), id) != HIVE_OK ||
            asprintf(&enc, "%s/credentials/%s.enc", dir, stem) < 0 || lstat(enc, &st) != 0)
            stale++;
        free(enc);
    }
    {
        char *cdir = NULL;
        if (asprintf(&cdir, "%s/credentials", dir) >= 0 && (d = opendir(cdir)) != NULL) {
            while ((e = readdir(d)) != NULL) {
                size_t n = strlen(e->d_name);
                if (n > 4 && strcmp(e->d_name + n - 4, ".enc") == 0 && e->d_name[0] != '.')
                    files++;
            }
            closedir(d);
        }
        free(cdir);
    }
    if (files + stale > hive_json_size(creds))
        unlisted = files + stale - hive_json_size(creds);
    if (stale || unlisted) {
        /* the index is a cache that every list rebuilds, as the walk over
         * the credentials below does: rebuild it now, and say so */
        hive_strlist ids = {0};
        if (hive_storage_list(s, &ids) == HIVE_OK)
            printf("fixed    the index listed %zu id(s) with no file, and %zu file(s) were not in it: "
                   "rebuilt from the files\n", stale, unlisted);
        else
            problem("the index lists %zu id(s) with no file, and %zu file(s) are not in it: %s", stale,
                    unlisted, hive_last_error());
        hive_strlist_free(&ids);
    }
out:
    if (text != NULL)
        cli_free_secret(text, len + 1);
    hive_json_free(&idx);
    free(path);
}

/* Each credential: can it be read; does a key expire within a day without
 * a way to be renewed. */
static void doctor_credentials(const opts *o, hive_storage *s, hive_store *st)
{
    hive_strlist ids = {0};
    hive_time now = hive_time_now();
    size_t unreadable = 0;

    if (hive_storage_list(s, &ids) != HIVE_OK) {
        problem("cannot list the credentials: %s", hive_last_error());
        return;
    }
    for (size_t i = 0; i < ids.count; i++) {
        hive_cred *c = NULL;
        hive_strlist p = {0};
        hive_rc rc = hive_storage_load(s, &c, ids.items[i]);
        if (rc != HIVE_OK) {
            problem("credential %s: %s", ids.items[i], hive_last_error());
            unreadable++;
            continue;
        }
        if (hive_store_validate_credential(st, &p, ids.items[i]) == HIVE_OK)
            for (size_t k = 0; k < p.count; k++)
                problem("credential %s: %s", ids.items[i], p.items[k]);
        if (p.count == 0) {
            for (size_t k = 0; k < hive_cred_key_count(c); k++) {
                const char *name = hive_cred_key_name(c, k);
                hive_time exp = hive_cred_key_expires(c, name);
                long long left = exp.sec - now.sec;
                if (exp.form == HIVE_TIME_NONE || left > 86400 || left <= 0)
                    continue;
                if (!hive_cred_auto_refresh(c) || hive_cred_provider_id(c) == NULL)
                    printf("warning  credential %s: key %s expires in %lld min and will not be refreshed "
                           "(%s)\n", ids.items[i], name, left / 60,
                           !hive_cred_auto_refresh(c) ? "auto_refresh is off" : "no provider_id");
            }
        }
        hive_strlist_free(&p);
        hive_cred_free(&c);
    }
    if (unreadable)
        printf("         fix: a file no key opens was written with another key (check %s and the key "
               "file), or is damaged: hive-cred%s%s delete ID, then add it again\n", HIVE_ENV_KEY,
               o->store ? " --store " : "", o->store ? o->store : "");
    printf("ok       %zu credential(s) read\n", ids.count - unreadable);
    hive_strlist_free(&ids);
}

static void doctor_usage(hive_store *st)
{
    hive_strlist specs = {0};

    if (hive_store_list_usage(st, &specs) != HIVE_OK) {
        problem("%s", hive_last_error());
        printf("         fix: correct usage.json by hand, or move it away\n");
        return;
    }
    for (size_t i = 0; i < specs.count; i++) {
        hive_strlist p = {0};
        if (hive_store_validate_for_usage(st, &p, specs.items[i]) == HIVE_OK)
            for (size_t k = 0; k < p.count; k++)
                problem("usage %s: %s", specs.items[i], p.items[k]);
        hive_strlist_free(&p);
    }
    if (specs.count)
        printf("ok       %zu usage spec(s) checked\n", specs.count);
    hive_strlist_free(&specs);
}

/* doctor: there is no usable key; say how to fix what failed. */
static void doctor_no_key(const char *kf)
{
    char msg[1024];

    snprintf(msg, sizeof(msg), "%s", hive_last_error());
    problem("no usable key: %s", msg);
    if (strncmp(msg, HIVE_ENV_KEY_COMMAND, strlen(HIVE_ENV_KEY_COMMAND)) == 0)
        printf("         fix: run the command yourself: it must exit 0 within %s (default 10 s) and print the "
               "key alone; or unset %s\n", HIVE_ENV_KEY_COMMAND_TIMEOUT, HIVE_ENV_KEY_COMMAND);
    else if (strstr(msg, "systemd credential") != NULL)
        printf("         fix: load it as systemd does (LoadCredential=%s:PATH or LoadCredentialEncrypted=), "
               "or unset %s\n", HIVE_SYSTEMD_KEY_NAME, HIVE_ENV_CREDENTIALS_DIRECTORY);
    else
        printf("         fix: set %s, or restore the key file %s (hive-cred init makes a new one for a "
               "new store)\n", HIVE_ENV_KEY, kf);
}

static int cmd_doctor(const opts *o)
{
    hive_storage *s = NULL;
    hive_store *st = NULL;
    const char *src;
    bool file_store;
    int ex = open_storage(o, &s);

    if (ex != 0)
        return ex;
    file_store = hive_file_storage_dir(s) != NULL;
    printf("store    %s (%s)\n", store_label(o, s), file_store ? "files" : "etcd");
    if (!store_exists(s)) {
        problem("the store does not exist");
        printf("         fix: hive-cred%s%s init\n", o->store ? " --store " : "", o->store ? o->store : "");
        hive_storage_free(&s);
        return EXIT_NO;
    }
    if (file_store) {
        modes m = {0, 0, NULL};
        const char *kf = hive_file_storage_key_file(s);
        struct stat kst;
        check_store_modes(&m, s, o->fix);
        if (m.open > m.fixed) {
            problem("%zu path(s) can be reached by group or others, e.g. %s", m.open - m.fixed, m.first);
            printf("         fix: hive-cred doctor --fix (directories 0700, files 0600)\n");
        } else if (m.fixed) {
            printf("fixed    %zu path(s) were open to group or others: now 0700 / 0600\n", m.fixed);
        } else {
            printf("ok       permissions\n");
        }
        free(m.first);
        src = hive_file_storage_key_source(s);
        if (src == NULL) {
            doctor_no_key(kf);
        } else {
            hive_key_kind kind = hive_file_storage_key_kind(s);
            const char *pending = hive_file_storage_pending_key_file(s);
            print_key_source("key      ", s, kind != HIVE_KEY_FILE && stat(kf, &kst) == 0
                                                 ? " (the key file beside the store is not used)" : "");
            if (pending != NULL && kind == HIVE_KEY_FILE) {
                problem("an interrupted key rotation is pending (%s)", pending);
                printf("         fix: env -u %s hive-cred rotate-key finishes it\n", HIVE_ENV_NEW_KEY);
            } else if (pending != NULL) {
                problem("an interrupted key rotation is pending (the new key is in %s)", pending);
                printf("         fix: hive-cred rotate-key finishes it; then give %s the new key\n", src);
            }
        }
        doctor_index(s);
    }
    if ((ex = open_store(o, &st)) == 0) {
        doctor_credentials(o, s, st);
        doctor_usage(st);
    }
    hive_store_free(&st);
    hive_storage_free(&s);
    /* what the storages said about modes is in the report above */
    for (size_t i = 0; i < MAX_WARNED_STORES; i++) {
        free(warned[i].first);
        warned[i].first = NULL;
        warned[i].ref = NULL;
    }
    if (ex != 0)
        return ex;
    if (doctor_problems == 0)
        printf("no problems found\n");
    else
        printf("%zu problem(s)\n", doctor_problems);
    return fflush(stdout) != 0 ? EXIT_STORE : doctor_problems ? EXIT_NO : 0;
}

/* --- main ------------------------------------------------------------- */

enum {
    OPT_STORE = 1000, OPT_JSON, OPT_REVEAL, OPT_PROVIDER, OPT_AUTO, OPT_EXPIRES, OPT_TAG,
    OPT_VERSION, OPT_KEY, OPT_HEADER, OPT_PARAM, OPT_BODY, OPT_ENV, OPT_HELP_URL, OPT_NEW_KEY_FILE,
    OPT_NO_AUTO, OPT_FROM_FILE, OPT_FIX, OPT_RETRY_IN_DOUBT, OPT_SCOPE, OPT_SINCE, OPT_ID, OPT_DEVICE,
    OPT_NO_BROWSER, OPT_TIMEOUT
};

/* --- audit -------------------------------------------------------------- */

/* A record line longer than this is damaged: a launch naming a hundred
 * credentials writes some 10 KiB. */
#define AUDIT_LINE_MAX (1024u * 1024)
/* Damaged lines said one by one; the rest are counted. */
#define AUDIT_DAMAGED_SAID 10

/* --since: RFC 3339 (naive: UTC), or N with s, m, h, d or w back from now. */
static bool parse_since(hive_time *t, const char *text)
{
    char *end;
    long long n;
    long long mult = 0;

    if (text[0] >= '0' && text[0] <= '9') {
        errno = 0;
        n = strtoll(text, &end, 10);
        if (errno == 0 && end[0] != '\0' && end[1] == '\0') {
            mult = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : end[0] == 'd' ? 86400
                 : end[0] == 'w' ? 7 * 86400 : 0;
        }
        if (mult != 0) {
            if (n > 100LL * 365 * 86400 / mult)
                return false;
            *t = hive_time_now();
            t->sec -= n * mult;
            return true;
        }
    }
    /* a date first (YYYY-MM-DD...): hive_time_parse also takes numbers */
    if (strlen(text) < 10 || text[4] != '-' || text[7] != '-')
        return false;
    return hive_time_parse(t, text, strlen(text)) == HIVE_OK && t->form != HIVE_TIME_NONE;
}

/* Whether record rec names credential id: its "id", or one of its "credentials". */
static bool record_names(const hive_json *rec, const char *id)
{
    const hive_json *creds = hive_json_get(rec, "credentials");
    const char *rid = hive_json_string(hive_json_get(rec, "id"), NULL);

    if (rid != NULL && strcmp(rid, id) == 0)
        return true;
    for (size_t i = 0; i < hive_json_size(creds); i++) {
        const char *cid = hive_json_string(hive_json_get(hive_json_at(creds, i, NULL), "id"), NULL);
        if (cid != NULL && strcmp(cid, id) == 0)
            return true;
    }
    return false;
}

/* Print text with control characters escaped: the log is text anyone
 * with the user's rights may have written. */
static void put_field(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)(text ? text : "-"); *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

/* "id:key+key" for each credential of rec, or its "id" and "keys". */
static void put_credentials(const hive_json *rec)
{
    const hive_json *creds = hive_json_get(rec, "credentials");
    bool any = false;

    if (creds == NULL && hive_json_get(rec, "id") != NULL) {
        put_field(hive_json_string(hive_json_get(rec, "id"), NULL));
        creds = NULL;
        any = true;
        for (size_t k = 0; k < hive_json_size(hive_json_get(rec, "keys")); k++) {
            putchar(k ? '+' : ':');
            put_field(hive_json_string(hive_json_at(hive_json_get(rec, "keys"), k, NULL), NULL));
        }
    }
    for (size_t i = 0; i < hive_json_size(creds); i++) {
        const hive_json *c = hive_json_at(creds, i, NULL);
        const hive_json *keys = hive_json_get(c, "keys");
        if (any)
            putchar(',');
        any = true;
        put_field(hive_json_string(hive_json_get(c, "id"), NULL));
        for (size_t k = 0; k < hive_json_size(keys); k++) {
            putchar(k ? '+' : ':');
            put_field(hive_json_string(hive_json_at(keys, k, NULL), NULL));
        }
    }
    if (!any)
        putchar('-');
}

/* One row of the table: time, tool and command, event, pid, credentials, detail. */
static void put_row(const hive_json *rec)
{
    const hive_json *ok = hive_json_get(rec, "ok");
    const char *program = hive_json_string(hive_json_get(rec, "program"), NULL);
    const char *error = hive_json_string(hive_json_get(rec, "error"), NULL);

    put_field(hive_json_string(hive_json_get(rec, "time"), NULL));
    putchar(' ');
    put_field(hive_json_string(hive_json_get(rec, "tool"), NULL));
    putchar(' ');
    put_field(hive_json_string(hive_json_get(rec, "command"), NULL));
    putchar(' ');
    put_field(hive_json_string(hive_json_get(rec, "event"), NULL));
    printf(" pid=%lld ", (long long)hive_json_number(hive_json_get(rec, "pid")));
    put_credentials(rec);
    if (program != NULL) {
        fputs(" -> ", stdout);
        put_field(program);
    }
    if (hive_json_typeof(ok) == HIVE_JSON_FALSE || error != NULL) {
        fputs(" FAILED: ", stdout);
        put_field(error);
    }
    putchar('\n');
}

/* Read the audit log at path and print the records that pass the filters.
 * *named: how many records name --id's credential, at any time. */
static int print_audit(FILE *f, const char *path, const opts *o, const hive_time *since, size_t *named)
{
    char *line = NULL;
    size_t cap = 0;
    size_t lineno = 0;
    size_t damaged = 0;
    ssize_t n;
    int ex = 0;

    while ((n = getline(&line, &cap, f)) >= 0) {
        hive_json *rec = NULL;
        const char *why = NULL;
        hive_time t;
        const char *when;
        size_t len = (size_t)n;
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len == 0)
            continue;
        if (len > AUDIT_LINE_MAX)
            why = "longer than 1 MiB";
        else if (n > 0 && line[n - 1] != '\n')
            why = "cut off: no newline at its end";
        else if (hive_json_parse(&rec, line, len) != HIVE_OK)
            why = "not JSON";
        else if (hive_json_typeof(rec) != HIVE_JSON_OBJECT)
            why = "not a JSON object";
        else if ((when = hive_json_string(hive_json_get(rec, "time"), NULL)) == NULL ||
                 hive_time_parse(&t, when, strlen(when)) != HIVE_OK)
            why = "no time";
        if (why != NULL) {
            if (++damaged <= AUDIT_DAMAGED_SAID)
                cli_warn("audit log %s: line %zu is damaged (%s): skipped", path, lineno, why);
            hive_json_free(&rec);
            continue;
        }
        if (o->audit_id != NULL && record_names(rec, o->audit_id))
            (*named)++;
        if ((since == NULL || hive_time_cmp(&t, since) >= 0) &&
            (o->audit_id == NULL || record_names(rec, o->audit_id))) {
            if (o->json) {
                hive_secret text = HIVE_SECRET_INIT;
                if (hive_json_emit(rec, &text, -1) == HIVE_OK) {
                    fwrite(text.data, 1, text.len, stdout);
                    putchar('\n');
                }
                hive_secret_free(&text);
            } else {
                put_row(rec);
            }
        }
        hive_json_free(&rec);
    }
    if (ferror(f)) {
        cli_error("cannot read audit log %s: %s", path, strerror(errno));
        ex = EXIT_STORE;
    }
    if (damaged > AUDIT_DAMAGED_SAID)
        cli_warn("audit log %s: %zu damaged lines in all, skipped", path, damaged);
    free(line);
    return ex;
}

/* The audit log of o's store: beside a store directory, else in HIVE_HOME. */
static int audit_path(const opts *o, char **path)
{
    bool etcd = o->store != NULL && strncmp(o->store, "etcd", 4) == 0 && strstr(o->store, "://") != NULL;

    return cli_audit_path(path, etcd ? NULL : o->store);
}

static int cmd_audit(const opts *o)
{
    hive_time since;
    char *path = NULL;
    struct stat st;
    FILE *f;
    size_t named = 0;
    int fd;
    int ex;

    if (o->since != NULL && !parse_since(&since, o->since)) {
        cli_error("--since wants an RFC 3339 time or a duration back from now, not '%.64s'", o->since);
        cli_hint("e.g. --since 2026-03-01T12:00:00Z, --since 30m, --since 1h, --since 2d");
        return EXIT_USAGE;
    }
    if ((ex = audit_path(o, &path)) != 0)
        return ex;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno == ENOENT && o->audit_id == NULL) {
        cli_warn("no audit log at %s: nothing recorded yet (or HIVE_AUDIT=off)", path);
        free(path);
        return 0;
    }
    if (fd < 0 && errno == ENOENT) {
        ex = EXIT_NOT_FOUND;
        cli_error("no audit record names credential '%s': there is no audit log at %s", o->audit_id, path);
    } else if (fd < 0) {
        ex = EXIT_STORE;
        if (errno == ELOOP)
            cli_error("audit log %s is a symbolic link: refused", path);
        else
            cli_error("cannot open audit log %s: %s", path, strerror(errno));
        if (errno == EACCES)
            cli_hint("it is read by the user who writes it (mode 0600)");
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ex = EXIT_STORE;
        cli_error("audit log %s is not a regular file: refused", path);
    }
    if (ex != 0) {
        if (fd >= 0)
            close(fd);
        free(path);
        return ex;
    }
    if ((st.st_mode & 077) != 0)
        cli_warn("audit log %s is %s by group or others (mode %04o)%s; chmod 600 %s", path,
                 (st.st_mode & 022) ? "writable" : "readable", (unsigned)(st.st_mode & 07777),
                 (st.st_mode & 022) ? ": its records may have been forged" : "", path);
    f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        free(path);
        return cli_fail(HIVE_ERR_NOMEM);
    }
    ex = print_audit(f, path, o, o->since ? &since : NULL, &named);
    fclose(f);
    if (ex == 0 && fflush(stdout) != 0)
        ex = EXIT_STORE;
    if (ex == 0 && o->audit_id != NULL && named == 0) {
        cli_error("no audit record names credential '%s' in %s", o->audit_id, path);
        cli_hint("'hive-cred audit' lists every record");
        ex = EXIT_NOT_FOUND;
    }
    free(path);
    return ex;
}

static const struct option long_opts[] = {
    {"store", required_argument, NULL, OPT_STORE},
    {"json", no_argument, NULL, OPT_JSON},
    {"reveal", no_argument, NULL, OPT_REVEAL},
    {"type", required_argument, NULL, 't'},
    {"description", required_argument, NULL, 'd'},
    {"provider-id", required_argument, NULL, OPT_PROVIDER},
    {"auto-refresh", no_argument, NULL, OPT_AUTO},
    {"no-auto-refresh", no_argument, NULL, OPT_NO_AUTO},
    {"from-file", required_argument, NULL, OPT_FROM_FILE},
    {"fix", no_argument, NULL, OPT_FIX},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"tag", required_argument, NULL, OPT_TAG},
    {"key", required_argument, NULL, OPT_KEY},
    {"header", required_argument, NULL, OPT_HEADER},
    {"param", required_argument, NULL, OPT_PARAM},
    {"body", required_argument, NULL, OPT_BODY},
    {"env", required_argument, NULL, OPT_ENV},
    {"help-url", required_argument, NULL, OPT_HELP_URL},
    {"new-key-file", required_argument, NULL, OPT_NEW_KEY_FILE},
    {"retry-in-doubt", no_argument, NULL, OPT_RETRY_IN_DOUBT},
    {"scope", required_argument, NULL, OPT_SCOPE},
    {"since", required_argument, NULL, OPT_SINCE},
    {"id", required_argument, NULL, OPT_ID},
    {"device", no_argument, NULL, OPT_DEVICE},
    {"no-browser", no_argument, NULL, OPT_NO_BROWSER},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int want_operands(const char *cmd, int n, int min, int max, const char *what)
{
    if (n < min || n > max) {
        cli_error("'%s' takes %s", cmd, what);
        cli_hint("'hive-cred --help' shows the usage");
        return EXIT_USAGE;
    }
    return 0;
}

static int run(int argc, char **argv, opts *o)
{
    const char *cmd;
    char **args;
    int nargs;
    int c;
    int ex;

    cli_prog = "hive-cred";
    cli_harden();
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:d:h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_STORE: o->store = optarg; break;
        case OPT_JSON: o->json = true; break;
        case OPT_REVEAL: o->reveal = true; o->show_only = "--reveal"; break;
        case 't': o->type = optarg; o->add_set = "--type"; break;
        case 'd': o->description = optarg; o->add_only = o->description_opt = "--description"; break;
        case OPT_PROVIDER: o->provider_id = optarg; break;
        case OPT_AUTO:
        case OPT_NO_AUTO:
            o->auto_refresh = c == OPT_AUTO;
            o->auto_refresh_set = true;
            o->add_only = c == OPT_AUTO ? "--auto-refresh" : "--no-auto-refresh";
            break;
#define LIST_OPT(code, arr, n, name, kind)                            \
        case code:                                                    \
            if (o->n == MAX_OPT_LIST)                                  \
                return usage_error("too many %s options", name);      \
            o->arr[o->n++] = optarg;                                    \
            o->kind = name;                                            \
            break;
        LIST_OPT(OPT_FROM_FILE, files, n_files, "--from-file", add_only)
        LIST_OPT(OPT_EXPIRES, expires, n_expires, "--expires", add_set)
        LIST_OPT(OPT_TAG, tags, n_tags, "--tag", add_only)
        LIST_OPT(OPT_KEY, keys, n_keys, "--key", usage_only)
        LIST_OPT(OPT_HEADER, headers, n_headers, "--header", usage_only)
        LIST_OPT(OPT_PARAM, params, n_params, "--param", usage_only)
        LIST_OPT(OPT_BODY, body, n_body, "--body", usage_only)
        LIST_OPT(OPT_ENV, env, n_env, "--env", usage_only)
        LIST_OPT(OPT_SCOPE, scopes, n_scopes, "--scope", scope_only)
#undef LIST_OPT
        case OPT_HELP_URL: o->help_url = optarg; o->usage_only = "--help-url"; break;
        case OPT_NEW_KEY_FILE: o->new_key_file = optarg; o->rotate_only = "--new-key-file"; break;
        case OPT_FIX: o->fix = true; o->doctor_only = "--fix"; break;
        case OPT_RETRY_IN_DOUBT: o->retry_in_doubt = true; break;
        case OPT_SINCE: o->since = optarg; o->audit_only = "--since"; break;
        case OPT_ID: o->audit_id = optarg; o->audit_only = "--id"; break;
        case OPT_DEVICE: o->device = true; o->login_only = "--device"; break;
        case OPT_NO_BROWSER: o->no_browser = true; o->login_only = "--no-browser"; break;
        case OPT_TIMEOUT: o->timeout = optarg; o->login_only = "--timeout"; break;
        case 'h': o->help = true; break;
        case OPT_VERSION:
            printf("hive-cred %s\n", HIVE_VERSION);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (o->help)
        return print_help(optind < argc ? argv[optind] : NULL);
    if (optind >= argc) {
        fputs(usage_text, stderr);
        fputs(usage_text2, stderr);
        return EXIT_USAGE;
    }
    cmd = argv[optind];
    args = argv + optind + 1;
    nargs = argc - optind - 1;
    if (strcmp(cmd, "help") == 0)
        return (ex = want_operands(cmd, nargs, 0, 1, "at most one COMMAND")) ? ex : print_help(nargs ? args[0] : NULL);

    if (o->provider_id != NULL && strcmp(cmd, "add") != 0 && strcmp(cmd, "login") != 0)
        return usage_error("option %s applies to 'add' and 'login' only", "--provider-id");
    if (o->add_only != NULL && strcmp(cmd, "add") != 0 &&
        !(strcmp(cmd, "usage") == 0 && o->description != NULL && o->add_only == o->description_opt))
        return usage_error("option %s applies to 'add' only", o->add_only);
    if (o->usage_only != NULL && strcmp(cmd, "usage") != 0 && !(strcmp(cmd, "exec-credential") == 0 &&
        o->n_headers + o->n_params + o->n_body + o->n_env + o->n_scopes == 0 && !o->help_url))
        return usage_error("option %s applies to 'usage add' only", o->usage_only);
    if (o->show_only != NULL && strcmp(cmd, "show") != 0)
        return usage_error("option %s applies to 'show' only", o->show_only);
    if (o->add_set != NULL && strcmp(cmd, "add") != 0 && strcmp(cmd, "set") != 0)
        return usage_error("option %s applies to 'add' and 'set' only", o->add_set);
    if (o->rotate_only != NULL && strcmp(cmd, "rotate-key") != 0)
        return usage_error("option %s applies to 'rotate-key' only", o->rotate_only);
    if (o->doctor_only != NULL && strcmp(cmd, "doctor") != 0)
        return usage_error("option %s applies to 'doctor' only", o->doctor_only);
    if (o->login_only != NULL && strcmp(cmd, "login") != 0)
        return usage_error("option %s applies to 'login' only", o->login_only);
    if (o->scope_only != NULL && strcmp(cmd, "login") != 0 && strcmp(cmd, "usage") != 0)
        return usage_error("option %s applies to 'usage add' and 'login' only", o->scope_only);
    if (o->retry_in_doubt && strcmp(cmd, "refresh") != 0)
        return usage_error("option %s applies to 'refresh' only", "--retry-in-doubt");
    if (o->audit_only != NULL && strcmp(cmd, "audit") != 0)
        return usage_error("option %s applies to 'audit' only", o->audit_only);
    o->ref.spec = o->store;

    if (strcmp(cmd, "init") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands")) ? ex : cmd_init(o);
    if (strcmp(cmd, "keygen") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands")) ? ex : cmd_keygen();
    if (strcmp(cmd, "add") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_add(o, args[0]);
    if (strcmp(cmd, "set") == 0 || strcmp(cmd, "unset") == 0)
        return (ex = want_operands(cmd, nargs, 2, 2, "ID and KEY")) ? ex
                                                                    : cmd_set(o, args[0], args[1], cmd[0] == 'u');
    if (strcmp(cmd, "get") == 0)
        return (ex = want_operands(cmd, nargs, 1, 2, "ID and optionally KEY")) ? ex : cmd_get(o, args[0], nargs > 1 ? args[1] : NULL);
    if (strcmp(cmd, "show") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_show(o, args[0]);
    if (strcmp(cmd, "list") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands")) ? ex : cmd_list(o);
    if (strcmp(cmd, "exists") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_exists(o, args[0]);
    if (strcmp(cmd, "delete") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_delete(o, args[0]);
    if (strcmp(cmd, "resolve") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_resolve(o, args[0]);
    if (strcmp(cmd, "validate") == 0)
        return (ex = want_operands(cmd, nargs, 0, 1, "at most one ID")) ? ex
                                                                          : cmd_validate(o, nargs ? args[0] : NULL);
    if (strcmp(cmd, "refresh") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_refresh(o, args[0]);
    if (strcmp(cmd, "login") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_login(o, args[0]);
    if (strcmp(cmd, "revoke") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_revoke(o, args[0]);
    if (strcmp(cmd, "sync") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands")) ? ex : cmd_sync(o);
    if (strcmp(cmd, "copy") == 0)
        return (ex = want_operands(cmd, nargs, 2, 2, "SRC and DST")) ? ex : cmd_copy(args[0], args[1]);
    if (strcmp(cmd, "rotate-key") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands")) ? ex : cmd_rotate_key(o);
    if (strcmp(cmd, "accounts") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : cmd_accounts(o, args[0]);
    if (strcmp(cmd, "usage") == 0)
        return cmd_usage(o, args, nargs);
    if (strcmp(cmd, "exec-credential") == 0 && o->n_keys > 1)
        return usage_error("'exec-credential' takes one --key");
    if (strcmp(cmd, "exec-credential") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : helper_exec_credential(o->store, args[0], o->n_keys ? o->keys[0] : NULL);
    if (strcmp(cmd, "aws-credential-process") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1, "one operand")) ? ex : helper_aws_credential_process(o->store, args[0]);
    if (strcmp(cmd, "doctor") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands")) ? ex : cmd_doctor(o);
    if (strcmp(cmd, "audit") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0, "no operands (--since TIME, --id ID)")) ? ex : cmd_audit(o);
    return usage_error("unknown command '%.64s'", cmd);
}

int main(int argc, char **argv)
{
    static opts o;
    int ex = run(argc, argv, &o);

    report_open_modes();
    return ex;
}
