/*
 * memstore.c - the in-memory storage. One handle may serve several
 * threads: every operation holds the handle's mutex.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct mem_storage {
    hive_storage base;
    pthread_mutex_t mu;     /* guards creds and n */
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
    size_t i;
    hive_rc rc;

    pthread_mutex_lock(&m->mu);
    i = find(m, id);
    rc = i == m->n ? hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id)
                   : hive_cred_clone(out, m->creds[i]);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static hive_rc mem_save(hive_storage *s, const hive_cred *cred)
{
    mem_storage *m = (mem_storage *)s;
    hive_cred *copy = NULL;
    hive_cred **grown;
    size_t i;
    hive_rc rc = hive_cred_clone(&copy, cred);

    if (rc != HIVE_OK)
        return rc;
    pthread_mutex_lock(&m->mu);
    i = find(m, hive_cred_id(cred));
    if (i < m->n) {
        hive_cred_free(&m->creds[i]);
        m->creds[i] = copy;
    } else if ((grown = realloc(m->creds, (m->n + 1) * sizeof(*grown))) != NULL) {
        m->creds = grown;
        m->creds[m->n++] = copy;
    } else {
        hive_cred_free(&copy);
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static hive_rc mem_delete(hive_storage *s, const char *id)
{
    mem_storage *m = (mem_storage *)s;
    size_t i;
    hive_rc rc = HIVE_OK;

    pthread_mutex_lock(&m->mu);
    i = find(m, id);
    if (i == m->n) {
        rc = hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
    } else {
        hive_cred_free(&m->creds[i]);
        memmove(&m->creds[i], &m->creds[i + 1], (m->n - i - 1) * sizeof(*m->creds));
        m->n--;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static hive_rc mem_exists(hive_storage *s, const char *id, bool *found)
{
    mem_storage *m = (mem_storage *)s;

    pthread_mutex_lock(&m->mu);
    *found = find(m, id) < m->n;
    pthread_mutex_unlock(&m->mu);
    return HIVE_OK;
}

static hive_rc mem_list(hive_storage *s, hive_strlist *out)
{
    mem_storage *m = (mem_storage *)s;
    hive_strlist ids = {0};
    hive_rc rc = HIVE_OK;

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; rc == HIVE_OK && i < m->n; i++)
        rc = hive__strlist_add(&ids, hive_cred_id(m->creds[i]));
    pthread_mutex_unlock(&m->mu);
    if (rc != HIVE_OK) {
        hive_strlist_free(&ids);
        return rc;
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
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static const hive_storage_ops mem_ops = {
    "memory", mem_load, mem_save, mem_delete, mem_exists, mem_list, mem_destroy, NULL, NULL, false,
};

hive_rc hive_memory_storage_new(hive_storage **out)
{
    hive__clear_error();
    mem_storage *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return hive__fail(HIVE_ERR_NOMEM, "cannot create the storage's mutex");
    }
    m->base.ops = &mem_ops;
    *out = &m->base;
    return HIVE_OK;
}
