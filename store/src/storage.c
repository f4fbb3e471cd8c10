/*
 * storage.c - the generic storage interface: argument checks, then the
 * storage's own operation; writes wait for a refresh of the same
 * credential under way.
 */
#include "internal.h"

#include <stdlib.h>

hive_rc hive_storage_load(hive_storage *s, hive_cred **out, const char *id)
{
    hive__clear_error();
    if (s == NULL || out == NULL || id == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return s->ops->load(s, out, id);
}

/*
 * Writes wait for a refresh of the same credential under way (its refresh
 * lock), so that the refresh cannot save its tokens over them (store.c);
 * a storage that compares and swaps needs no lock for that. When the lock
 * cannot be taken (no store directory yet, a read-only one, an id no file
 * can hold) no refresh can hold it either: the write goes on and fails or
 * not as it would have.
 */
static int write_lock(hive_storage *s, const char *id)
{
    int handle = -1;

    if (s->ops->lock == NULL || s->ops->cas || s->ops->lock(s, id, &handle) != HIVE_OK)
        handle = -1;
    hive__clear_error();
    return handle;
}

hive_rc hive__storage_unlock(hive_storage *s, int handle, hive_rc rc)
{
    char *msg;

    if (handle < 0 || s->ops->unlock == NULL)
        return rc;
    msg = rc != HIVE_OK ? hive__strdup(hive_last_error()) : NULL;
    s->ops->unlock(s, handle);
    if (rc == HIVE_OK)
        hive__clear_error();
    else if (msg != NULL)
        hive__fail(rc, "%s", msg);
    free(msg);
    return rc;
}

hive_rc hive_storage_save(hive_storage *s, const hive_cred *cred)
{
    hive_rc rc;
    int lock;

    hive__clear_error();
    if (s == NULL || cred == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    lock = write_lock(s, hive_cred_id(cred));
    rc = s->ops->save(s, cred);
    return hive__storage_unlock(s, lock, rc);
}

hive_rc hive_storage_delete(hive_storage *s, const char *id)
{
    hive_rc rc;
    int lock;

    hive__clear_error();
    if (s == NULL || id == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    lock = write_lock(s, id);
    rc = s->ops->del(s, id);
    return hive__storage_unlock(s, lock, rc);
}

hive_rc hive_storage_exists(hive_storage *s, bool *found, const char *id)
{
    hive__clear_error();
    if (s == NULL || id == NULL || found == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return s->ops->exists(s, id, found);
}

hive_rc hive_storage_list(hive_storage *s, hive_strlist *out)
{
    hive__clear_error();
    if (s == NULL || out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return s->ops->list(s, out);
}

void hive_storage_free(hive_storage **s)
{
    if (s == NULL || *s == NULL)
        return;
    (*s)->ops->destroy(*s);
    *s = NULL;
}

