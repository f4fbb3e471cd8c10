/*
 * docker-credential-hive - a docker credential helper answering from the
 * hive store (the docker-credential-helpers protocol): in
 * ~/.docker/config.json, "credsStore": "hive" or "credHelpers":
 * {"registry.example.com": "hive"}.
 *
 * A registry is served by the credential whose server_url key names it
 * (compared without the scheme and trailing slashes): its username key and
 * its default key as the secret, refreshed first when due. 'store' and
 * 'erase' leave the store alone (it is managed with hive-cred).
 */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (64u * 1024)
/* What docker reads on stdout to tell "not found" from a failure. */
#define NOT_FOUND_MSG "credentials not found in native keychain"

static const char usage_text[] =
    "Usage: docker-credential-hive [--store DIR] get|list|store|erase|version\n"
    "\n"
    "A docker credential helper (\"credsStore\": \"hive\" in ~/.docker/config.json).\n"
    "get reads a registry's server URL on stdin and prints {\"ServerURL\", \"Username\",\n"
    "\"Secret\"} from the credential whose server_url key names it: its username key\n"
    "and its default key, refreshed first when due. list prints {server_url: username}.\n"
    "store and erase do nothing: manage the store with hive-cred.\n";

/* url without its scheme, surrounding blanks and trailing slashes:
 * [start, start + *n). */
static const char *bare_url(const char *url, size_t len, size_t *n)
{
    const char *p = url, *end = url + len;
    const char *scheme;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    scheme = memmem(p, (size_t)(end - p), "://", 3);
    if (scheme != NULL)
        p = scheme + 3;
    while (end > p && end[-1] == '/')
        end--;
    *n = (size_t)(end - p);
    return p;
}

/* Every credential that has a server_url key: ids and their credentials
 * (read without refreshing). 0 or an exit code. */
static int load_all(hive_store *st, hive_strlist *ids, hive_cred ***creds)
{
    hive_rc rc = hive_store_list(st, ids);

    if (rc != HIVE_OK)
        return cli_fail(rc);
    *creds = calloc(ids->count + 1, sizeof(**creds));
    if (*creds == NULL)
        return cli_fail(HIVE_ERR_NOMEM);
    for (size_t i = 0; i < ids->count; i++) {
        rc = hive_store_get_credential(st, &(*creds)[i], ids->items[i], HIVE_GET_NO_REFRESH);
        if (rc != HIVE_OK)
            return cli_fail(rc);
    }
    return 0;
}

static void free_all(hive_strlist *ids, hive_cred **creds)
{
    for (size_t i = 0; creds != NULL && i < ids->count; i++)
        hive_cred_free(&creds[i]);
    free(creds);
    hive_strlist_free(ids);
}

static int list(hive_store *st)
{
    hive_strlist ids = {0};
    hive_cred **creds = NULL;
    hive_json *doc = hive_json_new(HIVE_JSON_OBJECT);
    int ex = doc ? load_all(st, &ids, &creds) : cli_fail(HIVE_ERR_NOMEM);

    for (size_t i = 0; ex == 0 && i < ids.count; i++) {
        size_t ulen = 0, slen = 0;
        const char *url = hive_cred_get_key(creds[i], "server_url", &slen);
        const char *user = hive_cred_get_key(creds[i], "username", &ulen);
        hive_json *s;
        if (url == NULL)
            continue;
        s = hive_json_new_string(user ? user : "", user ? ulen : 0);
        if (s == NULL || hive_json_set_member(doc, url, slen, s) != HIVE_OK)
            ex = cli_fail(HIVE_ERR_NOMEM);
    }
    if (ex == 0)
        ex = helper_print_json(doc);
    hive_json_free(&doc);
    free_all(&ids, creds);
    return ex;
}

/* The id of the one credential whose server_url names url; NULL after a
 * message (on stdout too when there is none, as docker expects). */
static char *find(hive_store *st, const char *url, size_t len, int *ex)
{
    hive_strlist ids = {0};
    hive_cred **creds = NULL;
    size_t want_n;
    const char *want = bare_url(url, len, &want_n);
    char *found = NULL;

    if ((*ex = load_all(st, &ids, &creds)) != 0)
        goto out;
    for (size_t i = 0; i < ids.count; i++) {
        size_t slen = 0, n;
        const char *s = hive_cred_get_key(creds[i], "server_url", &slen);
        const char *bare = s ? bare_url(s, slen, &n) : NULL;
        if (bare == NULL || n != want_n || memcmp(bare, want, n) != 0)
            continue;
        if (found != NULL) {
            cli_error("credentials '%s' and '%s' both have server_url %.*s", found, ids.items[i],
                      (int)want_n, want);
            cli_hint("keep one: hive-cred unset ID server_url");
            *ex = EXIT_USAGE;
            goto out;
        }
        found = strdup(ids.items[i]);
        if (found == NULL) {
            *ex = cli_fail(HIVE_ERR_NOMEM);
            goto out;
        }
    }
    if (found == NULL) {
        puts(NOT_FOUND_MSG);
        fflush(stdout);
        cli_error("no credential has server_url %.*s", (int)want_n, want);
        cli_hint("printf %%s %.*s | hive-cred set ID server_url", (int)want_n, want);
        *ex = EXIT_NOT_FOUND;
    }
out:
    if (*ex != 0) {
        free(found);
        found = NULL;
    }
    free_all(&ids, creds);
    return found;
}

static int build_get(hive_json *doc, const hive_cred *cred, const char *id, const void *arg)
{
    const char *secret, *user, *url;
    size_t slen = 0, ulen = 0, url_len = 0;
    int ex = helper_value(cred, id, NULL, &secret, &slen);

    (void)arg;
    if (ex != 0)
        return ex;
    if ((user = hive_cred_get_key(cred, "username", &ulen)) == NULL) {
        cli_error("credential '%s' has no username key", id);
        cli_hint("printf %%s \"$USER_NAME\" | hive-cred set %s username", id);
        return EXIT_NOT_FOUND;
    }
    url = hive_cred_get_key(cred, "server_url", &url_len);
    if (url == NULL) {   /* removed since find() read it */
        cli_error("credential '%s' has no server_url key", id);
        return EXIT_NOT_FOUND;
    }
    if (!helper_set_str(doc, "ServerURL", url, url_len) || !helper_set_str(doc, "Username", user, ulen) ||
        !helper_set_str(doc, "Secret", secret, slen))
        return cli_fail(HIVE_ERR_NOMEM);
    return 0;
}

static int get(hive_store *st)
{
    char *in = NULL;
    size_t len = 0;
    char *id = NULL;
    size_t url_len = 0;
    int ex = helper_read_stdin("the server URL", &in, &len, MAX_INPUT);

    if (ex != 0)
        return ex;
    bare_url(in, len, &url_len);
    if (url_len == 0 || memchr(in, '\0', len) != NULL) {
        puts("no credentials server URL");
        fflush(stdout);
        cli_error("docker gave no server URL on stdin");
        ex = EXIT_USAGE;
    } else if ((id = find(st, in, len, &ex)) != NULL) {
        ex = helper_answer_json(st, id, build_get, NULL);
    }
    free(id);
    cli_free_secret(in, len + 1);
    return ex;
}

/* store and erase: read what docker sends, change nothing. */
static int ignore(void)
{
    char *in = NULL;
    size_t len = 0;
    int ex = helper_read_stdin("docker's request", &in, &len, MAX_INPUT);

    if (ex == 0)
        cli_free_secret(in, len + 1);
    return ex;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    const char *action;
    hive_store *st = NULL;
    int ex;

    cli_prog = "docker-credential-hive";
    cli_harden();
    if (argc == 4 && strcmp(argv[1], "--store") == 0) {
        dir = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    action = argv[1];
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(action, "version") == 0) {
        printf("docker-credential-hive (hive) %s\n", HIVE_VERSION);
        return 0;
    }
    if (strcmp(action, "store") == 0 || strcmp(action, "erase") == 0)
        return ignore();
    if (strcmp(action, "get") != 0 && strcmp(action, "list") != 0) {
        cli_error("unknown action '%.64s'", action);
        cli_hint("docker-credential-hive --help shows the actions");
        return EXIT_USAGE;
    }
    if ((ex = helper_open(dir, &st)) == 0)
        ex = action[0] == 'g' ? get(st) : list(st);
    hive_store_free(&st);
    return ex;
}
