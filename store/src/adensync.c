/*
 * adensync.c - Aden sync, a store-level operation above the store and the
 * Aden client (aden.h): pull every active integration into the store, and
 * ask Aden whether one is valid. Synced credentials are refreshed by the
 * aden_sync provider (aden.c).
 */
#include "aden.h"
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

hive_rc hive_aden_sync(hive_store *st, hive_aden_sync_result *res)
{
    hive__clear_error();
    hive__aden a;
    hive_json *list = NULL;
    const hive_json *items;
    hive_lookup lookup;
    hive_rc rc;

    if (hive__check_size(res->size, sizeof(*res), "hive_aden_sync_result", "HIVE_ADEN_SYNC_RESULT_INIT") != HIVE_OK)
        return HIVE_ERR_INVALID;
    *res = (hive_aden_sync_result)HIVE_ADEN_SYNC_RESULT_INIT;
    lookup = hive__store_lookup(st);
    rc = hive__aden_open(&a, &st->aden, &lookup);
    if (rc != HIVE_OK)
        return rc;
    rc = hive__aden_call(&a, "GET", "/v1/credentials", &list);
    items = hive_json_get(list, "integrations");
    for (size_t i = 0; rc == HIVE_OK && i < hive_json_size(items); i++) {
        const hive_json *it = hive_json_at(items, i, NULL);
        const char *id = hive__aden_str(it, "integration_id");
        const char *status = hive__aden_str(it, "status");
        hive_json *tok = NULL;
        hive_cred *cred = NULL;
        char *path;
        hive_rc r;

        res->listed++;
        if (id == NULL || (status != NULL && strcmp(status, "active") != 0)) {
            res->skipped++;
            continue;
        }
        path = hive__aden_path(id, "");
        r = path ? hive__aden_call(&a, "GET", path, &tok) : HIVE_ERR_NOMEM;
        free(path);
        if (r == HIVE_OK) {
            /* As Hive: a new credential from the answer replaces the local
             * one; hive keeps only its creation time. */
            hive_cred *old = NULL;
            r = hive__aden_apply(&cred, id, tok);
            if (r == HIVE_OK) {
                if (hive_store_get_credential(st, &old, id, HIVE_GET_NO_REFRESH) == HIVE_OK) {
                    hive_time created = hive_cred_time(old, HIVE_CRED_CREATED_AT);
                    r = hive_cred_set_time(cred, HIVE_CRED_CREATED_AT, &created);
                } else {
                    hive__clear_error();
                }
            }
            hive_cred_free(&old);
            if (r == HIVE_OK)
                r = hive_store_save(st, cred);
        }
        hive_cred_free(&cred);
        hive_json_free(&tok);
        if (r == HIVE_OK) {
            res->synced++;
        } else if (r == HIVE_ERR_NETWORK || r == HIVE_ERR_PERM || r == HIVE_ERR_NOMEM) {
            rc = r;   /* the server or the key is the problem: stop */
        } else {
            res->failed++;
            hive__store_warn(st, "%s: %s", id, hive_last_error());
            hive__clear_error();
        }
    }
    hive_json_free(&list);
    hive__aden_close(&a);
    return rc;
}

hive_rc hive_aden_validate(hive_store *st, bool *valid, char *why, size_t size, const char *id)
{
    hive__clear_error();
    hive__aden a;
    hive_json *ans = NULL;
    char *path = NULL;
    hive_lookup lookup = hive__store_lookup(st);
    hive_rc rc = hive__aden_open(&a, &st->aden, &lookup);

    if (rc == HIVE_OK) {
        path = hive__aden_path(id, "/validate");
        rc = path ? hive__aden_call(&a, "GET", path, &ans) : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (rc == HIVE_OK) {
        const char *err = hive__aden_str(ans, "error");
        const char *status = hive__aden_str(ans, "status");
        *valid = hive_json_typeof(hive_json_get(ans, "valid")) == HIVE_JSON_TRUE;
        snprintf(why, size, "%s", err ? err : (status ? status : ""));
    }
    free(path);
    hive_json_free(&ans);
    hive__aden_close(&a);
    return rc;
}
