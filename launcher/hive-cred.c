/*
 * hive-cred - manage a Hive credential store.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STDIN (1024u * 1024)
#define MAX_OPT_LIST 64

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
    "      --expires KEY=TIME   expiry of KEY: ISO 8601, Unix seconds or +N[smhd]\n"
    "      --tag T              add a tag (repeatable)\n"
    "  get ID [KEY]             print one value (the default key without KEY)\n"
    "  show ID [--reveal]       metadata; values masked unless --reveal\n"
    "  list                     ids, one a line\n"
    "  exists ID                exit 0 if ID exists, 1 if not\n"
    "  delete ID                remove ID\n"
    "\n"
    "Options:\n"
    "  --store DIR   the store directory (default $HIVE_HOME/credentials); its key\n"
    "                file is DIR/../secrets/credential_key\n"
    "  --json        machine-readable output (list, show)\n"
    "  -h, --help    this help;  --version  the version\n"
    "Options may come before or after operands; '--' ends them.\n"
    "\n"
    "The key comes from HIVE_CREDENTIAL_KEY if set, else from the key file,\n"
    "which must not be readable by group or others.\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  no: 'exists' found nothing\n"
    "  2  usage error, or bad input (id, value, time)\n"
    "  3  credential or key not found\n"
    "  4  no encryption key, or the key is not a Fernet key\n"
    "  5  a credential could not be decrypted or parsed (wrong key, damaged file)\n"
    "  6  store error: file system, permissions, lock, id conflict\n";

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
    /* which command-specific options were given, to reject misplaced ones */
    const char *add_only;
    const char *show_only;
} opts;

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    char msg[256];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli_error("%s", msg);
    cli_hint("'hive-cred --help' lists the commands and options");
    return EXIT_USAGE;
}

static int open_storage(const opts *o, hive_storage **s)
{
    hive_file_options fo = {0};
    hive_rc rc;

    fo.dir = o->store;
    rc = hive_file_storage_open(s, &fo);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

/* --- init / keygen ---------------------------------------------------- */

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
    else if (strcmp(src, HIVE_ENV_KEY) == 0)
        printf("key:   from %s\n", src);
    else
        printf("key:   %s\n", src);
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

/* TIME: ISO 8601, Unix seconds, or +N with s, m, h or d (from now). */
static hive_rc parse_when(hive_time *t, const char *text)
{
    if (text[0] == '+') {
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
        t->sec += n * mult;
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
    hive_free_secret(buf, len + 1);
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

static int cmd_add(const opts *o, const char *id)
{
    const char *type = o->type ? o->type : "api_key";
    hive_storage *s = NULL;
    hive_cred *cred = NULL;
    hive_cred *old = NULL;
    hive_rc rc;
    int ex;
    char stem[HIVE_ID_MAX + 8];

    rc = hive_file_stem(stem, sizeof(stem), id);
    if (rc == HIVE_OK)
        rc = hive_cred_new(&cred, id, type);
    if (rc != HIVE_OK)
        return cli_fail(rc);
    if (o->description != NULL)
        rc = hive_cred_set_description(cred, o->description);
    if (rc == HIVE_OK && o->provider_id != NULL)
        rc = hive_cred_set_provider_id(cred, o->provider_id);
    if (rc == HIVE_OK && o->auto_refresh)
        rc = hive_cred_set_auto_refresh(cred, true);
    for (size_t i = 0; rc == HIVE_OK && i < o->n_tags; i++)
        rc = hive_cred_add_tag(cred, o->tags[i]);
    if (rc != HIVE_OK) {
        ex = cli_fail(rc);
        goto out;
    }
    ex = isatty(STDIN_FILENO) ? read_values_from_tty(cred, type) : read_values_from_pipe(cred);
    if (ex != 0)
        goto out;
    for (size_t i = 0; i < o->n_expires; i++) {
        const char *eq = strchr(o->expires[i], '=');
        char key[256];
        hive_time t;
        if (eq == NULL || eq == o->expires[i] || (size_t)(eq - o->expires[i]) >= sizeof(key)) {
            ex = usage_error("--expires wants KEY=TIME, not '%.100s'", o->expires[i]);
            goto out;
        }
        memcpy(key, o->expires[i], (size_t)(eq - o->expires[i]));
        key[eq - o->expires[i]] = '\0';
        if (parse_when(&t, eq + 1) != HIVE_OK) {
            ex = usage_error("--expires: '%.100s' is not a time (ISO 8601, Unix seconds or +N[smhd])",
                             eq + 1);
            goto out;
        }
        rc = hive_cred_set_key_expires(cred, key, &t);
        if (rc != HIVE_OK) {
            cli_error("--expires: %s", hive_last_error());
            cli_hint("give the key's value on stdin too");
            ex = EXIT_USAGE;
            goto out;
        }
    }
    if ((ex = open_storage(o, &s)) != 0)
        goto out;
    /* Replacing keeps the creation time. */
    if (hive_storage_load(s, &old, id) == HIVE_OK) {
        hive_time created = hive_cred_time(old, "created_at");
        hive_cred_set_time(cred, "created_at", &created);
    }
    rc = hive_storage_save(s, cred);
    if (rc != HIVE_OK)
        ex = cli_fail(rc);
out:
    hive_cred_free(&old);
    hive_cred_free(&cred);
    hive_storage_free(&s);
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
    return rc == HIVE_OK ? 0 : cli_fail(rc);
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
        if (key == NULL)
            cli_error("Credential '%s' has no keys", id);
        else
            cli_error("Key '%s' not found in credential '%s'", key, id);
        ex = EXIT_NOT_FOUND;
        goto out;
    }
    fwrite(value, 1, len, stdout);
    fputc('\n', stdout);
    if (fflush(stdout) != 0)
        ex = EXIT_STORE;
out:
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
    hive_json *keys = hive_json_get(doc, "keys");
    char *text = NULL;
    size_t len = 0;
    hive_rc rc = doc ? HIVE_OK : HIVE_ERR_NOMEM;

    for (size_t i = 0; rc == HIVE_OK && !reveal && i < hive_json_size(keys); i++) {
        const char *name;
        hive_json *k = hive_json_at(keys, i, &name);
        if (!is_metadata_key(name))
            rc = hive_json_set(k, "value", hive_json_new(HIVE_JSON_NULL));
    }
    if (rc == HIVE_OK)
        rc = hive_json_emit(&text, &len, doc, 2);
    hive_json_free(&doc);
    if (rc != HIVE_OK)
        return cli_fail(rc);
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    hive_free_secret(text, len + 1);
    return 0;
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
    print_time_line("created_at", hive_cred_time(cred, "created_at"));
    print_time_line("updated_at", hive_cred_time(cred, "updated_at"));
    print_time_line("last_refreshed", hive_cred_time(cred, "last_refreshed"));
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

static int cmd_list(const opts *o)
{
    hive_storage *s = NULL;
    hive_rc rc;
    int ex = open_storage(o, &s);

    if (ex != 0)
        return ex;
    if (o->json) {
        hive_json *idx = NULL;
        hive_json *arr = hive_json_new(HIVE_JSON_ARRAY);
        char *text = NULL;
        size_t len = 0;
        hive_strlist ids = {0};
        rc = arr ? hive_storage_list(s, &ids) : HIVE_ERR_NOMEM;
        if (rc == HIVE_OK)
            rc = hive_file_storage_index(s, &idx);
        for (size_t i = 0; rc == HIVE_OK && i < ids.count; i++) {
            hive_json *entry = hive_json_new(HIVE_JSON_OBJECT);
            const hive_json *meta = hive_json_get(idx, ids.items[i]);
            rc = entry ? hive_json_set(entry, "id", hive_json_new_string(ids.items[i], strlen(ids.items[i])))
                       : HIVE_ERR_NOMEM;
            for (size_t k = 0; rc == HIVE_OK && k < hive_json_size(meta); k++) {
                const char *name;
                hive_json *v = hive_json_at(meta, k, &name);
                rc = hive_json_set(entry, name, hive_json_clone(v));
            }
            if (rc == HIVE_OK)
                rc = hive_json_append(arr, entry);
            else
                hive_json_free(&entry);
        }
        if (rc == HIVE_OK)
            rc = hive_json_emit(&text, &len, arr, 2);
        if (rc == HIVE_OK)
            printf("%s\n", text);
        hive_free_secret(text, len + 1);
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
    rc = hive_storage_exists(s, id, &found);
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
    hive_storage_free(&s);
    return rc == HIVE_OK ? 0 : cli_fail(rc);
}

/* --- main ------------------------------------------------------------- */

enum {
    OPT_STORE = 1000, OPT_JSON, OPT_REVEAL, OPT_PROVIDER, OPT_AUTO, OPT_EXPIRES, OPT_TAG,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"store", required_argument, NULL, OPT_STORE},
    {"json", no_argument, NULL, OPT_JSON},
    {"reveal", no_argument, NULL, OPT_REVEAL},
    {"type", required_argument, NULL, 't'},
    {"description", required_argument, NULL, 'd'},
    {"provider-id", required_argument, NULL, OPT_PROVIDER},
    {"auto-refresh", no_argument, NULL, OPT_AUTO},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"tag", required_argument, NULL, OPT_TAG},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int want_operands(const char *cmd, int n, int min, int max)
{
    if (n < min || n > max) {
        cli_error("'%s' takes %s", cmd,
                  min == max ? (min == 0 ? "no operands" : "one operand: ID")
                             : "ID and optionally KEY");
        cli_hint("'hive-cred --help' shows the usage");
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {0};
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
        case OPT_STORE: o.store = optarg; break;
        case OPT_JSON: o.json = true; break;
        case OPT_REVEAL: o.reveal = true; o.show_only = "--reveal"; break;
        case 't': o.type = optarg; o.add_only = "--type"; break;
        case 'd': o.description = optarg; o.add_only = "--description"; break;
        case OPT_PROVIDER: o.provider_id = optarg; o.add_only = "--provider-id"; break;
        case OPT_AUTO: o.auto_refresh = true; o.add_only = "--auto-refresh"; break;
        case OPT_EXPIRES:
            if (o.n_expires == MAX_OPT_LIST)
                return usage_error("too many %s options", "--expires");
            o.expires[o.n_expires++] = optarg;
            o.add_only = "--expires";
            break;
        case OPT_TAG:
            if (o.n_tags == MAX_OPT_LIST)
                return usage_error("too many %s options", "--tag");
            o.tags[o.n_tags++] = optarg;
            o.add_only = "--tag";
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case OPT_VERSION:
            printf("hive-cred %s\n", HIVE_VERSION);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    cmd = argv[optind];
    args = argv + optind + 1;
    nargs = argc - optind - 1;

    if (o.add_only != NULL && strcmp(cmd, "add") != 0)
        return usage_error("option %s applies to 'add' only", o.add_only);
    if (o.show_only != NULL && strcmp(cmd, "show") != 0)
        return usage_error("option %s applies to 'show' only", o.show_only);

    if (strcmp(cmd, "init") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0)) ? ex : cmd_init(&o);
    if (strcmp(cmd, "keygen") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0)) ? ex : cmd_keygen();
    if (strcmp(cmd, "add") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1)) ? ex : cmd_add(&o, args[0]);
    if (strcmp(cmd, "get") == 0)
        return (ex = want_operands(cmd, nargs, 1, 2)) ? ex : cmd_get(&o, args[0], nargs > 1 ? args[1] : NULL);
    if (strcmp(cmd, "show") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1)) ? ex : cmd_show(&o, args[0]);
    if (strcmp(cmd, "list") == 0)
        return (ex = want_operands(cmd, nargs, 0, 0)) ? ex : cmd_list(&o);
    if (strcmp(cmd, "exists") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1)) ? ex : cmd_exists(&o, args[0]);
    if (strcmp(cmd, "delete") == 0)
        return (ex = want_operands(cmd, nargs, 1, 1)) ? ex : cmd_delete(&o, args[0]);
    return usage_error("unknown command '%.64s'", cmd);
}
