/*
 * envstore.c - credentials read from environment variables (and .env).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct env_storage {
    hive_storage base;
    char **mapping;      /* id, VAR, id, VAR, ..., NULL */
    char *dotenv;        /* path, or NULL for none */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
} env_storage;

void hive_env_storage_variable(char *buf, size_t size, const hive_storage *s, const char *id)
{
    const env_storage *e = (const env_storage *)s;
    size_t o = 0;

    for (size_t i = 0; e->mapping != NULL && e->mapping[i] != NULL; i += 2) {
        if (strcmp(e->mapping[i], id) == 0) {
            snprintf(buf, size, "%s", e->mapping[i + 1]);
            return;
        }
    }
    for (const char *p = id; *p && o + 1 < size; p++)
        buf[o++] = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : *p;
    buf[o] = '\0';
    if (o + sizeof("_API_KEY") <= size)
        strcat(buf, "_API_KEY");
}

static void skipped_line(void *ctx, size_t line)
{
    const env_storage *e = ctx;
    char msg[600];

    if (e->warn == NULL)
        return;
    if (snprintf(msg, sizeof(msg), "%.400s: could not parse the statement starting at line %zu; "
                 "it was skipped", e->dotenv, line) >= 0)
        e->warn(e->warn_ctx, msg);
}

/*
 * Hive's EnvVarStorage._read_env_value: the variable when it is set and
 * not empty, else its value in the .env file, read again at each call (the
 * file may change while a program runs). *val is NULL when neither has it
 * (or the file says "NAME" with no value); else a copy for the caller
 * (hive_free_secret(val, len + 1)). A file that exists but cannot be read
 * is an error, as it is for Hive.
 */
static hive_rc read_value(env_storage *e, const char *id, char **val, size_t *len)
{
    char var[512];
    const char *v;
    hive_json *vals = NULL;
    hive_rc rc;
    hive_dotenv_options opts = {.size = sizeof(opts), .skipped = skipped_line, .ctx = e};

    *val = NULL;
    *len = 0;
    hive_env_storage_variable(var, sizeof(var), &e->base, id);
    v = getenv(var);
    if (v != NULL && *v != '\0') {
        *len = strlen(v);
        *val = hive__strndup(v, *len);
        return *val != NULL ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (e->dotenv == NULL)
        return HIVE_OK;
    rc = hive_dotenv_load_with(&vals, e->dotenv, &opts);
    if (rc == HIVE_ERR_NOT_FOUND) {
        hive__clear_error();
        return HIVE_OK;
    }
    if (rc != HIVE_OK)
        return rc;
    v = hive_json_string(hive_json_get(vals, var), len);
    if (v != NULL) {
        *val = hive__strndup(v, *len);
        if (*val == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    hive_json_free(&vals);
    return rc;
}

static hive_rc env_load(hive_storage *s, hive_cred **out, const char *id)
{
    env_storage *e = (env_storage *)s;
    char var[512], desc[600];
    char *v = NULL;
    size_t len = 0;
    hive_cred *c = NULL;
    hive_rc rc = read_value(e, id, &v, &len);

    if (rc != HIVE_OK)
        return rc;
    hive_env_storage_variable(var, sizeof(var), s, id);
    if (v == NULL || len == 0) {
        if (v != NULL)
            hive_free_secret(v, len + 1);
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found (%s is not set)", id, var);
    }
    rc = hive_cred_new(&c, id, "api_key");
    if (rc == HIVE_OK)
        rc = hive_cred_set_key(c, "api_key", v, len, NULL);
    hive_free_secret(v, len + 1);
    if (rc == HIVE_OK) {
        snprintf(desc, sizeof(desc), "Loaded from %s", var);
        rc = hive_cred_set_description(c, desc);
    }
    if (rc != HIVE_OK) {
        hive_cred_free(&c);
        return rc;
    }
    *out = c;
    return HIVE_OK;
}

static hive_rc env_save(hive_storage *s, const hive_cred *cred)
{
    (void)s;
    return hive__fail(HIVE_ERR_READ_ONLY, "cannot save credential '%s': the environment storage "
                      "is read-only", hive_cred_id(cred));
}

static hive_rc env_delete(hive_storage *s, const char *id)
{
    (void)s;
    return hive__fail(HIVE_ERR_READ_ONLY, "cannot delete credential '%s': the environment storage "
                      "is read-only", id);
}

/* As Hive: a value that is set, even empty in the .env file, exists. */
static hive_rc env_exists(hive_storage *s, const char *id, bool *found)
{
    char *v = NULL;
    size_t len = 0;
    hive_rc rc = read_value((env_storage *)s, id, &v, &len);

    *found = v != NULL;
    if (v != NULL)
        hive_free_secret(v, len + 1);
    return rc;
}

static hive_rc env_list(hive_storage *s, hive_strlist *out)
{
    env_storage *e = (env_storage *)s;
    hive_strlist ids = {0};
    hive_rc rc = HIVE_OK;

    for (size_t i = 0; rc == HIVE_OK && e->mapping != NULL && e->mapping[i] != NULL; i += 2) {
        bool found = false;
        rc = env_exists(s, e->mapping[i], &found);
        if (rc == HIVE_OK && found)
            rc = hive__strlist_add(&ids, e->mapping[i]);
    }
    if (rc != HIVE_OK) {
        hive_strlist_free(&ids);
        return rc;
    }
    hive__strlist_sort_unique(&ids);
    *out = ids;
    return HIVE_OK;
}

static void env_destroy(hive_storage *s)
{
    env_storage *e = (env_storage *)s;

    for (size_t i = 0; e->mapping != NULL && e->mapping[i] != NULL; i++)
        free(e->mapping[i]);
    free(e->mapping);
    free(e->dotenv);
    free(e);
}

static const hive_storage_ops env_ops = {
    "env", env_load, env_save, env_delete, env_exists, env_list, env_destroy, NULL, NULL,
};

hive_rc hive_env_storage_open(hive_storage **out, const char *const *mapping, const char *dotenv)
{
    env_storage *e = calloc(1, sizeof(*e));
    size_t n = 0;

    if (e == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    e->base.ops = &env_ops;
    while (mapping != NULL && mapping[n] != NULL)
        n++;
    if (n % 2 != 0) {
        free(e);
        return hive__fail(HIVE_ERR_INVALID, "environment mapping must be id, variable pairs");
    }
    e->mapping = calloc(n + 1, sizeof(char *));
    if (e->mapping == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if ((e->mapping[i] = hive__strdup(mapping[i])) == NULL)
            goto nomem;
    if (dotenv == NULL) {
        /* Hive: Path.cwd() / ".env", fixed when the storage is made */
        char *cwd = getcwd(NULL, 0);
        if (cwd != NULL) {
            size_t n_cwd = strlen(cwd);
            e->dotenv = malloc(n_cwd + sizeof("/.env"));
            if (e->dotenv != NULL)
                memcpy(e->dotenv, cwd, n_cwd), memcpy(e->dotenv + n_cwd, "/.env", sizeof("/.env"));
            free(cwd);
            if (e->dotenv == NULL)
                goto nomem;
        } else if ((e->dotenv = hive__strdup(".env")) == NULL) {
            goto nomem;
        }
    } else if (*dotenv != '\0' && (e->dotenv = hive__strdup(dotenv)) == NULL) {
        goto nomem;
    }
    *out = &e->base;
    return HIVE_OK;
nomem:
    env_destroy(&e->base);
    return hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

void hive_env_storage_set_warn(hive_storage *s, void (*warn)(void *ctx, const char *message), void *ctx)
{
    env_storage *e = (env_storage *)s;

    if (s == NULL || s->ops != &env_ops)
        return;
    e->warn = warn;
    e->warn_ctx = ctx;
}
