/*
 * memstore.c - the in-memory storage.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem_storage {
    hive_storage base;
    hive_cred **creds;
    size_t n;
} mem_storage;

static size_t find(const mem_storage *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(hive_cred_id(m->creds[i]), id) == 0)
            return i;
    return m->n;
}

static hive_rc mem_load(hive_storage *s, hive_cred **out, const char *id)
{
    mem_storage *m = (mem_storage *)s;
    size_t i = find(m, id);

    if (i == m->n)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    return hive_cred_clone(out, m->creds[i]);
}

static hive_rc mem_save(hive_storage *s, const hive_cred *cred)
{
    mem_storage *m = (mem_storage *)s;
    size_t i = find(m, hive_cred_id(cred));
    hive_cred *copy = NULL;
    hive_rc rc = hive_cred_clone(&copy, cred);

    if (rc != HIVE_OK)
        return rc;
    if (i < m->n) {
        hive_cred_free(&m->creds[i]);
        m->creds[i] = copy;
        return HIVE_OK;
    }
    {
        hive_cred **grown = realloc(m->creds, (m->n + 1) * sizeof(*grown));
        if (grown == NULL) {
            hive_cred_free(&copy);
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        }
        m->creds = grown;
        m->creds[m->n++] = copy;
    }
    return HIVE_OK;
}

static hive_rc mem_delete(hive_storage *s, const char *id)
{
    mem_storage *m = (mem_storage *)s;
    size_t i = find(m, id);

    if (i == m->n)
        return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    hive_cred_free(&m->creds[i]);
    memmove(&m->creds[i], &m->creds[i + 1], (m->n - i - 1) * sizeof(*m->creds));
    m->n--;
    return HIVE_OK;
}

static hive_rc mem_exists(hive_storage *s, const char *id, bool *found)
{
    mem_storage *m = (mem_storage *)s;

    *found = find(m, id) < m->n;
    return HIVE_OK;
}

static hive_rc mem_list(hive_storage *s, hive_strlist *out)
{
    mem_storage *m = (mem_storage *)s;
    hive_strlist ids = {0};

    for (size_t i = 0; i < m->n; i++) {
        hive_rc rc = hive__strlist_add(&ids, hive_cred_id(m->creds[i]));
        if (rc != HIVE_OK) {
            hive_strlist_free(&ids);
            return rc;
        }
    }
    hive__strlist_sort_unique(&ids);
    *out = ids;
    return HIVE_OK;
}

static void mem_destroy(hive_storage *s)
{
    mem_storage *m = (mem_storage *)s;

    for (size_t i = 0; i < m->n; i++)
        hive_cred_free(&m->creds[i]);
    free(m->creds);
    free(m);
}

static const hive_storage_ops mem_ops = {
    "memory", mem_load, mem_save, mem_delete, mem_exists, mem_list, mem_destroy, NULL, NULL, false,
};

hive_rc hive_memory_storage_new(hive_storage **out)
{
    mem_storage *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    m->base.ops = &mem_ops;
    *out = &m->base;
    return HIVE_OK;
}
