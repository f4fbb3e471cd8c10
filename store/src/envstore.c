/*
 * envstore.c - credentials read from environment variables (and .env).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct env_storage {
    hive_storage base;
    char **mapping;      /* id, VAR, id, VAR, ..., NULL */
    char *dotenv;        /* path, or NULL for none */
    hive_json *dotenv_vals;
    bool dotenv_loaded;
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

/* The value for id, or NULL when unset or empty (in both sources). */
static const char *lookup(env_storage *e, const char *id, size_t *len)
{
    char var[512];
    const char *v;

    hive_env_storage_variable(var, sizeof(var), &e->base, id);
    v = getenv(var);
    if (v != NULL && *v != '\0') {
        *len = strlen(v);
        return v;
    }
    if (e->dotenv != NULL && !e->dotenv_loaded) {
        e->dotenv_loaded = true;
        if (hive_dotenv_load(&e->dotenv_vals, e->dotenv) != HIVE_OK)
            e->dotenv_vals = NULL;   /* a missing or broken .env is no source */
        hive__clear_error();
    }
    v = hive_json_string(hive_json_get(e->dotenv_vals, var), len);
    return v != NULL && *len > 0 ? v : NULL;
}

static hive_rc env_load(hive_storage *s, hive_cred **out, const char *id)
{
    env_storage *e = (env_storage *)s;
    size_t len = 0;
    const char *v = lookup(e, id, &len);
    hive_cred *c = NULL;
    hive_rc rc;

    if (v == NULL) {
        char var[512];
        hive_env_storage_variable(var, sizeof(var), s, id);
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found (%s is not set)", id, var);
    }
    rc = hive_cred_new(&c, id, "api_key");
    if (rc == HIVE_OK)
        rc = hive_cred_set_key(c, "api_key", v, len, NULL);
    if (rc == HIVE_OK) {
        char var[512], desc[600];
        hive_env_storage_variable(var, sizeof(var), s, id);
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

static hive_rc env_exists(hive_storage *s, const char *id, bool *found)
{
    size_t len;

    *found = lookup((env_storage *)s, id, &len) != NULL;
    return HIVE_OK;
}

static hive_rc env_list(hive_storage *s, hive_strlist *out)
{
    env_storage *e = (env_storage *)s;
    hive_strlist ids = {0};

    for (size_t i = 0; e->mapping != NULL && e->mapping[i] != NULL; i += 2) {
        size_t len;
        if (lookup(e, e->mapping[i], &len) != NULL) {
            hive_rc rc = hive__strlist_add(&ids, e->mapping[i]);
            if (rc != HIVE_OK) {
                hive_strlist_free(&ids);
                return rc;
            }
        }
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
    hive_json_free(&e->dotenv_vals);
    free(e);
}

static const hive_storage_ops env_ops = {
    "env", env_load, env_save, env_delete, env_exists, env_list, env_destroy, NULL, NULL, false,
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
    if (dotenv == NULL)
        dotenv = ".env";
    if (*dotenv != '\0' && (e->dotenv = hive__strdup(dotenv)) == NULL)
        goto nomem;
    *out = &e->base;
    return HIVE_OK;
nomem:
    env_destroy(&e->base);
    return hive__fail(HIVE_ERR_NOMEM, "out of memory");
}
