/*
 * composite.c - a primary storage with ordered fallbacks.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct composite {
    hive_storage base;
    hive_storage **all;   /* [0] is the primary */
    size_t n;
} composite;

static hive_rc comp_load(hive_storage *s, hive_cred **out, const char *id)
{
    composite *c = (composite *)s;

    for (size_t i = 0; i < c->n; i++) {
        hive_rc rc = c->all[i]->ops->load(c->all[i], out, id);
        /* A miss falls through; a real error (bad key, damage) is reported:
         * silently reading a stale fallback would hide it. */
        if (rc != HIVE_ERR_NOT_FOUND)
            return rc;
    }
    return hive__fail(HIVE_ERR_NOT_FOUND, "Credential '%s' not found", id);
}

static hive_rc comp_save(hive_storage *s, const hive_cred *cred)
{
    composite *c = (composite *)s;

    return c->all[0]->ops->save(c->all[0], cred);
}

static hive_rc comp_delete(hive_storage *s, const char *id)
{
    composite *c = (composite *)s;

    return c->all[0]->ops->del(c->all[0], id);
}

static hive_rc comp_exists(hive_storage *s, const char *id, bool *found)
{
    composite *c = (composite *)s;

    *found = false;
    for (size_t i = 0; i < c->n && !*found; i++) {
        hive_rc rc = c->all[i]->ops->exists(c->all[i], id, found);
        if (rc != HIVE_OK && rc != HIVE_ERR_BAD_ID)
            return rc;
    }
    hive__clear_error();
    return HIVE_OK;
}

static hive_rc comp_list(hive_storage *s, hive_strlist *out)
{
    composite *c = (composite *)s;
    hive_strlist all = {0};
    hive_rc rc = HIVE_OK;

    for (size_t i = 0; i < c->n && rc == HIVE_OK; i++) {
        hive_strlist one = {0};
        rc = c->all[i]->ops->list(c->all[i], &one);
        for (size_t k = 0; rc == HIVE_OK && k < one.count; k++)
            rc = hive__strlist_add(&all, one.items[k]);
        hive_strlist_free(&one);
    }
    if (rc != HIVE_OK) {
        hive_strlist_free(&all);
        return rc;
    }
    hive__strlist_sort_unique(&all);
    *out = all;
    return HIVE_OK;
}

static void comp_destroy(hive_storage *s)
{
    composite *c = (composite *)s;

    for (size_t i = 0; i < c->n; i++)
        hive_storage_free(&c->all[i]);
    free(c->all);
    free(c);
}

static hive_rc comp_lock(hive_storage *s, const char *id, int *handle)
{
    composite *c = (composite *)s;

    if (c->all[0]->ops->lock == NULL) {
        *handle = -1;
        return HIVE_OK;
    }
    return c->all[0]->ops->lock(c->all[0], id, handle);
}

static void comp_unlock(hive_storage *s, int handle)
{
    composite *c = (composite *)s;

    if (c->all[0]->ops->unlock != NULL)
        c->all[0]->ops->unlock(c->all[0], handle);
}

static const hive_storage_ops comp_ops = {
    "composite", comp_load, comp_save, comp_delete, comp_exists, comp_list, comp_destroy,
    comp_lock, comp_unlock, false,
};

hive_rc hive_composite_storage_new(hive_storage **out, hive_storage *primary,
                                   hive_storage *const *fallbacks, size_t n)
{
    hive__clear_error();
    composite *c = calloc(1, sizeof(*c));
    hive_storage **all = calloc(n + 1, sizeof(*all));

    if (c == NULL || all == NULL || primary == NULL) {
        hive_rc rc = primary ? HIVE_ERR_NOMEM : HIVE_ERR_INVALID;   /* before primary is freed */

        free(c);
        free(all);
        hive_storage_free(&primary);
        for (size_t i = 0; i < n; i++) {
            hive_storage *f = fallbacks[i];
            hive_storage_free(&f);
        }
        return hive__fail(rc, "cannot make a composite storage");
    }
    all[0] = primary;
    for (size_t i = 0; i < n; i++)
        all[i + 1] = fallbacks[i];
    c->base.ops = &comp_ops;
    c->all = all;
    c->n = n + 1;
    *out = &c->base;
    return HIVE_OK;
}
