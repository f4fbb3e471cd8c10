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

/* The variable id reads, whole (a name cut short would be another
 * variable's); NULL when out of memory. Free it. */
static char *variable(const env_storage *e, const char *id)
{
    char *var;

    for (size_t i = 0; e->mapping != NULL && e->mapping[i] != NULL; i += 2)
        if (strcmp(e->mapping[i], id) == 0)
            return hive__strdup(e->mapping[i + 1]);
    var = hive__aprintf("%s_API_KEY", id);
    for (char *p = var; p != NULL && *p != '\0'; p++)
        *p = *p == '-' ? '_' : (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : *p;
    return var;
}

/* Empty when the name does not fit buf: never a part of it. */
void hive_env_storage_variable(const hive_storage *s, char *buf, size_t size, const char *id)
{
    char *var = variable((const env_storage *)s, id);

    if (size == 0)
        goto out;
    buf[0] = '\0';
    if (var != NULL && strlen(var) < size)
        memcpy(buf, var, strlen(var) + 1);
out:
    free(var);
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
 * (hive__free_secret(val, len + 1)). A file that exists but cannot be read
 * is an error, as it is for Hive.
 */
static hive_rc read_value(env_storage *e, const char *id, char **val, size_t *len)
{
    char *var = variable(e, id);
    const char *v;
    hive_json *vals = NULL;
    hive_rc rc;
    hive_dotenv_options opts = {.size = sizeof(opts), .skipped = skipped_line, .ctx = e};

    *val = NULL;
    *len = 0;
    if (var == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    v = getenv(var);
    if (v != NULL && *v != '\0') {
        free(var);
        *len = strlen(v);
        *val = hive__strndup(v, *len);
        return *val != NULL ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    rc = e->dotenv != NULL ? hive_dotenv_load_with(&vals, e->dotenv, &opts) : HIVE_ERR_NOT_FOUND;
    if (rc == HIVE_ERR_NOT_FOUND) {
        hive__clear_error();
        rc = HIVE_OK;
    } else if (rc == HIVE_OK) {
        v = hive_json_string(hive_json_get(vals, var), len);
        if (v != NULL && (*val = hive__strndup(v, *len)) == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    hive_json_free(&vals);
    free(var);
    return rc;
}

static hive_rc env_load(hive_storage *s, hive_cred **out, const char *id)
{
    env_storage *e = (env_storage *)s;
    char *v = NULL;
    char *var = NULL;
    char *desc = NULL;
    size_t len = 0;
    hive_cred *c = NULL;
    hive_rc rc = read_value(e, id, &v, &len);

    if (rc != HIVE_OK)
        return rc;
    var = variable(e, id);
    if (v == NULL || len == 0) {
        if (v != NULL)
            hive__free_secret(v, len + 1);
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found (%s is not set)", id,
                        var ? var : "its variable");
        free(var);
        return rc;
    }
    rc = hive_cred_new(&c, id, "api_key");
    if (rc == HIVE_OK)
        rc = hive_cred_set_key(c, "api_key", v, len, NULL);
    hive__free_secret(v, len + 1);
    if (rc == HIVE_OK) {
        desc = var ? hive__aprintf("Loaded from %s", var) : NULL;
        rc = desc ? hive_cred_set_description(c, desc) : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    free(desc);
    free(var);
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
        hive__free_secret(v, len + 1);
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
    "env", env_load, env_save, env_delete, env_exists, env_list, env_destroy, NULL, NULL, false,
};

hive_rc hive_env_storage_open(hive_storage **out, const char *const *mapping, const char *dotenv)
{
    hive__clear_error();
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
