/*
 * open.c - opening a store: the storage, the built-in providers and the
 * store that wires them, above all three. The providers know nothing of
 * the store, and the store registers them without knowing what they do
 * (it calls oauth2.c only to take an in-doubt mark off a credential).
 */
#include "providers.h"
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

enum { NBUILTIN = 4 };

hive_rc hive_store_new(hive_store **out, hive_storage *storage, const hive_store_options *opts)
{
    hive_provider *builtin[NBUILTIN] = {NULL};
    hive_store_options none = {0};
    hive_aden_options aden = HIVE_ADEN_OPTIONS_INIT;
    double sec = 0;
    hive_rc rc;

    hive__clear_error();
    if (storage == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no storage");
    if (opts == NULL)
        opts = &none;
    if (opts->aden == NULL) {
        const char *t = getenv("ADEN_TIMEOUT");
        aden.url = getenv("ADEN_API_URL");
        aden.api_key = getenv("ADEN_API_KEY");
        aden.timeout = t && hive__parse_seconds(&sec, t, 3600) && sec > 0 ? sec : 0;
        none = *opts;
        none.aden = &aden;
        opts = &none;
    }
    /* static first, oauth2 before aden_sync: the order hive_store_provider_for
     * searches the built-in ones in */
    rc = hive__static_provider_new(&builtin[0]);
    if (rc == HIVE_OK)
        rc = hive__bearer_provider_new(&builtin[1]);
    if (rc == HIVE_OK)
        rc = hive__oauth2_provider_new(&builtin[2]);
    if (rc == HIVE_OK)
        rc = hive__aden_provider_new(&builtin[3], opts->aden);
    if (rc != HIVE_OK) {
        for (size_t i = 0; i < NBUILTIN; i++)
            if (builtin[i] != NULL)
                builtin[i]->destroy(builtin[i]);
        hive_storage_free(&storage);
        return rc;
    }
    return hive__store_create(out, storage, opts, builtin, NBUILTIN);
}

hive_rc hive_store_open(hive_store **out, const char *dir, const hive_store_options *opts)
{
    hive_storage *storage = NULL;
    hive_file_options fo = {0};
    hive_rc rc;

    hive__clear_error();
    if (opts != NULL) {
        fo.warn = opts->warn;
        fo.warn_ctx = opts->warn_ctx;
    }
    rc = hive_storage_open(&storage, dir, &fo);
    if (rc != HIVE_OK)
        return rc;
    return hive_store_new(out, storage, opts);
}

hive_rc hive_store_for_testing(hive_store **out, const char *const (*table)[3])
{
    hive__clear_error();
    hive_storage *mem = NULL;
    hive_store *s = NULL;
    hive_rc rc = hive_memory_storage_new(&mem);

    if (rc == HIVE_OK)
        rc = hive_store_new(&s, mem, NULL);
    for (size_t i = 0; rc == HIVE_OK && table != NULL && table[i][0] != NULL; i++) {
        hive_cred *c = NULL;
        const char *id = table[i][0];
        const char *key = table[i][1];
        const char *value = table[i][2] ? table[i][2] : "";
        /* rows of one id build one credential */
        rc = hive_storage_load(mem, &c, id);
        if (rc == HIVE_ERR_NOT_FOUND)
            rc = hive_cred_new(&c, id, "api_key");
        if (rc == HIVE_OK)
            rc = hive_cred_set_key(c, key, value, strlen(value), NULL);
        if (rc == HIVE_OK)
            rc = hive_storage_save(mem, c);
        hive_cred_free(&c);
    }
    if (rc != HIVE_OK) {
        hive_store_free(&s);
        return rc;
    }
    *out = s;
    return HIVE_OK;
}
