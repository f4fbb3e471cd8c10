/*
 * git-credential-hive - a git credential helper answering from the hive
 * store (gitcredentials(7)):
 *
 *   git config credential.helper 'hive gh'
 *
 * makes git run 'git-credential-hive gh get' and read credential gh's
 * token. 'store' and 'erase' leave the store alone: it is managed with
 * hive-cred, and a token git was given is refreshed by its provider.
 */
#include "helpers.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (64u * 1024)

static const char usage_text[] =
    "Usage: git-credential-hive [--store DIR] [--key KEY] [--username NAME] ID ACTION\n"
    "\n"
    "A git credential helper: git config credential.helper 'hive ID'.\n"
    "ACTION get prints username= (ID's key 'username', else NAME, else\n"
    "x-access-token), password= (KEY, else ID's default key) and\n"
    "password_expiry_utc= (when it expires), refreshing ID first when due.\n"
    "store and erase do nothing: manage the store with hive-cred.\n";

/*
 * Read git's request: key=value lines ending with a blank line or EOF.
 * Every attribute (protocol, host, path, username, ...) is read and
 * ignored: one helper serves one credential. 0 or an exit code.
 */
static int read_request(void)
{
    char *buf = NULL;
    size_t len = 0;
    int ex = helper_read_stdin("git's request", &buf, &len, MAX_INPUT);

    if (ex != 0)
        return ex;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - buf) : len;
        if (end == i)
            break;   /* the blank line ends the request */
        if (memchr(buf + i, '\0', end - i) != NULL) {
            cli_error("git's request holds a NUL byte");
            ex = EXIT_USAGE;
            break;
        }
        if (memchr(buf + i, '=', end - i) == NULL) {
            cli_error("git's request has a line that is not key=value");
            ex = EXIT_USAGE;
            break;
        }
        i = end + 1;
    }
    cli_free_secret(buf, len + 1);
    return ex;
}

/* Whether value can go on a key=value line: no newline, no NUL. */
static bool sendable(const char *what, const char *id, const char *value, size_t len)
{
    if (memchr(value, '\n', len) == NULL && memchr(value, '\0', len) == NULL)
        return true;
    cli_error("the %s of credential '%s' holds a newline or a NUL byte, which git's credential "
              "protocol cannot carry", what, id);
    cli_hint("store it without one: printf %%s \"$VALUE\" | hive-cred set %s KEY", id);
    return false;
}

static int get(const char *dir, const char *id, const char *key, const char *username)
{
    hive_store *st = NULL;
    hive_cred *cred = NULL;
    const char *user;
    const char *value;
    size_t ulen = 0;
    size_t len = 0;
    int ex;

    if ((ex = helper_open(dir, &st)) != 0 || (ex = helper_load(st, id, &cred)) != 0 ||
        (ex = helper_value(cred, id, key, &value, &len)) != 0)
        goto out;
    user = hive_cred_get_key(cred, "username", &ulen);
    if (user == NULL) {
        user = username ? username : "x-access-token";
        ulen = strlen(user);
    }
    if (!sendable("username", id, user, ulen) || !sendable("password", id, value, len)) {
        ex = EXIT_USAGE;
        goto out;
    }
    fputs("username=", stdout);
    fwrite(user, 1, ulen, stdout);
    fputs("\npassword=", stdout);
    fwrite(value, 1, len, stdout);
    fputc('\n', stdout);
    {
        hive_time exp = hive_cred_key_expires(cred, key ? key : hive_cred_default_key(cred));
        if (exp.form != HIVE_TIME_NONE)
            printf("password_expiry_utc=%lld\n", (long long)exp.sec);
    }
    if (fflush(stdout) != 0) {
        cli_error("cannot write to stdout");
        ex = EXIT_STORE;
    }
out:
    if (st != NULL)
        helper_audit(st, id, ex);
    hive_cred_free(&cred);
    hive_store_free(&st);
    helper_scrub_registers();
    return ex;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"store", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"username", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *key = NULL, *username = NULL;
    int c;
    int ex;

    cli_prog = "git-credential-hive";
    cli_harden();
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 's': dir = optarg; break;
        case 'k': key = optarg; break;
        case 'u': username = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case ':':
            cli_error("option '%s' needs a value", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            cli_error("unknown option '%s'", argv[optind - 1]);
            cli_hint("git-credential-hive --help shows the usage");
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    /* read all of git's request whatever the action: git writes it all */
    if ((ex = read_request()) != 0)
        return ex;
    if (strcmp(argv[optind + 1], "get") == 0)
        return get(dir, argv[optind], key, username);
    return 0;   /* store, erase and any later action: nothing to do */
}
