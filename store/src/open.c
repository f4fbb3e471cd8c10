/*
 * open.c - opening a store: the storage, the built-in providers and the
 * store that wires them, above all three; and the _from_env entry points,
 * the only place the library reads the environment for its settings
 * (the environment storage reads variables by design, and the file
 * storage still reads its key's). The providers know nothing of
 * the store, and the store registers them without knowing what they do
 * (it calls oauth2.c only to take an in-doubt mark off a credential).
 */
#include "providers.h"
#include "store_int.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NBUILTIN = 4 };

hive_rc hive_store_new(hive_store **out, hive_storage *storage, const hive_store_options *opts)
{
    hive_provider *builtin[NBUILTIN] = {NULL};
    hive_rc rc = HIVE_OK;

    hive__clear_error();
    if (storage == NULL)
        return hive__fail(HIVE_ERR_INVALID, "no storage");
    if (opts != NULL)
        rc = hive__check_size(opts->size, sizeof(*opts), "hive_store_options", "HIVE_STORE_OPTIONS_INIT");
    if (rc == HIVE_OK && opts != NULL && opts->aden != NULL)
        rc = hive__check_size(opts->aden->size, sizeof(*opts->aden), "hive_aden_options",
                              "HIVE_ADEN_OPTIONS_INIT");
    /* static first, oauth2 before aden_sync: the order hive_store_provider_for
     * searches the built-in ones in */
    if (rc == HIVE_OK)
        rc = hive__static_provider_new(&builtin[0]);
    if (rc == HIVE_OK)
        rc = hive__bearer_provider_new(&builtin[1]);
    if (rc == HIVE_OK)
        rc = hive__oauth2_provider_new(&builtin[2]);
    if (rc == HIVE_OK)
        rc = hive__aden_provider_new(&builtin[3], opts != NULL ? opts->aden : NULL);
    if (rc != HIVE_OK) {
        for (size_t i = 0; i < NBUILTIN; i++)
            if (builtin[i] != NULL)
                builtin[i]->destroy(builtin[i]);
        hive_storage_free(&storage);
        return rc;
    }
    return hive__store_create(out, storage, opts, builtin, NBUILTIN);
}

/* The storage options of a store's options: opts->storage, else the
 * defaults with the store's warn. */
static hive_file_options storage_options(const hive_store_options *opts)
{
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;

    if (opts != NULL && opts->storage != NULL) {
        fo = *opts->storage;
    } else if (opts != NULL) {
        fo.warn = opts->warn;
        fo.warn_ctx = opts->warn_ctx;
    }
    return fo;
}

/* opts' size and its storage options' size. */
static hive_rc check_store_options(const hive_store_options *opts)
{
    hive_rc rc = HIVE_OK;

    if (opts != NULL)
        rc = hive__check_size(opts->size, sizeof(*opts), "hive_store_options", "HIVE_STORE_OPTIONS_INIT");
    if (rc == HIVE_OK && opts != NULL && opts->storage != NULL)
        rc = hive__check_size(opts->storage->size, sizeof(*opts->storage), "hive_file_options",
                              "HIVE_FILE_OPTIONS_INIT");
    return rc;
}

hive_rc hive_store_open(hive_store **out, const char *spec, const hive_store_options *opts)
{
    hive_storage *storage = NULL;
    hive_file_options fo;
    hive_rc rc;

    hive__clear_error();
    if ((rc = check_store_options(opts)) != HIVE_OK)
        return rc;
    fo = storage_options(opts);
    rc = hive_storage_open(&storage, spec, &fo);
    if (rc != HIVE_OK)
        return rc;
    return hive_store_new(out, storage, opts);
}

/* --- the environment: read here and nowhere else ------------------------ */

/* The one HIVE_HOME resolver: $HIVE_HOME, else $HOME/.hive, else the
 * password database's home/.hive; NULL when none is known: never a shared
 * default such as /tmp. */
char *hive__home_dir(void)
{
    const char *home = getenv(HIVE_ENV_HOME);
    const char *user_home;

    if (home != NULL && *home != '\0')
        return hive__strdup(home);
    user_home = getenv("HOME");
    if (user_home == NULL || *user_home == '\0') {
        struct passwd *pw = getpwuid(geteuid());
        user_home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    return user_home ? hive__aprintf("%s/.hive", user_home) : NULL;
}

hive_rc hive_home_from_env(char **out)
{
    char *home;

    hive__clear_error();
    if (out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    home = hive__home_dir();
    if (home == NULL)
        return hive__fail(HIVE_ERR_INVALID, "cannot find the home directory: set " HIVE_ENV_HOME);
    *out = home;
    return HIVE_OK;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

/*
 * Fill in what fo leaves unset from the environment for the storage spec
 * names: the home (*home, the caller's to free; needed for the default
 * directory and for etcd's local copy), etcd's user and password, and the
 * key's sources (*ks, the caller's to free: hive_key_source_from_env).
 */
static hive_rc storage_env(hive_file_options *fo, char **home, hive_key_source **ks, const char *spec)
{
    bool etcd = hive__is_etcd_url(spec);

    *home = NULL;
    *ks = NULL;
    if (fo->key_source == NULL) {
        /* HIVE_CREDENTIAL_KEY, HIVE_NEW_CREDENTIAL_KEY, the key command,
         * CREDENTIALS_DIRECTORY: read here, and nowhere else */
        hive_rc rc = hive_key_source_from_env(ks);
        if (rc != HIVE_OK)
            return rc;
        fo->key_source = *ks;
    }
    if (fo->home == NULL) {
        *home = hive__home_dir();
        fo->home = *home;
        if (*home == NULL && (etcd || spec == NULL || *spec == '\0'))
            return hive__fail(HIVE_ERR_INVALID, "cannot find the home directory%s: set " HIVE_ENV_HOME,
                              etcd ? " for the etcd cache" : "");
    }
    if (fo->etcd_user == NULL)
        fo->etcd_user = env_nonempty("HIVE_ETCD_USER");
    if (fo->etcd_password == NULL)
        fo->etcd_password = getenv("HIVE_ETCD_PASSWORD");
    return HIVE_OK;
}

hive_rc hive_storage_open_from_env(hive_storage **out, const char *spec, const hive_file_options *opts)
{
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    hive_key_source *ks = NULL;
    char *home = NULL;
    hive_rc rc = HIVE_OK;

    hive__clear_error();
    if (opts != NULL && (rc = hive__check_size(opts->size, sizeof(*opts), "hive_file_options",
                                               "HIVE_FILE_OPTIONS_INIT")) != HIVE_OK)
        return rc;
    if (opts != NULL)
        fo = *opts;
    rc = storage_env(&fo, &home, &ks, spec);
    if (rc == HIVE_OK)
        rc = hive_storage_open(out, spec, &fo);
    hive_key_source_free(&ks);
    free(home);
    return rc;
}

/* Aden from ADEN_API_URL, ADEN_API_KEY and ADEN_TIMEOUT. */
static hive_aden_options aden_env(void)
{
    hive_aden_options ao = HIVE_ADEN_OPTIONS_INIT;
    const char *t = getenv("ADEN_TIMEOUT");
    double sec = 0;

    ao.url = env_nonempty("ADEN_API_URL");
    ao.api_key = env_nonempty("ADEN_API_KEY");
    ao.timeout = t != NULL && hive__parse_seconds(&sec, t, 3600) && sec > 0 ? sec : 0;
    return ao;
}

hive_rc hive_store_open_from_env(hive_store **out, const char *spec, const hive_store_options *opts)
{
    hive_store_options so = HIVE_STORE_OPTIONS_INIT;
    hive_file_options fo;
    hive_aden_options ao;
    hive_storage *storage = NULL;
    hive_rc rc;

    hive__clear_error();
    if ((rc = check_store_options(opts)) != HIVE_OK)
        return rc;
    if (opts != NULL)
        so = *opts;
    fo = storage_options(opts);
    rc = hive_storage_open_from_env(&storage, spec, &fo);
    if (rc != HIVE_OK)
        return rc;
    if (so.aden == NULL) {
        ao = aden_env();
        so.aden = &ao;
    }
    return hive_store_new(out, storage, &so);
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
