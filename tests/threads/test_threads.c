/*
 * test_threads.c - one hive_store shared by 8 threads, built with
 * ThreadSanitizer (tests/threads/CMakeLists.txt): readers, refreshers (a
 * test provider) and savers on the memory storage, then on the file
 * storage. Exits non-zero on a wrong value; TSan exits 66 on a data race.
 * Usage: test_threads [ITERATIONS]
 */
#include <hive/hive.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8

static atomic_int refreshes;
static atomic_int failures;
static int iterations = 40;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #cond, hive_last_error()); \
            atomic_fetch_add(&failures, 1);                                          \
            return NULL;                                                             \
        }                                                                            \
    } while (0)

static hive_time in(double seconds)
{
    hive_time t;
    hive_time now = hive_time_now();

    if (hive_time_from_number(&t, (double)now.sec + seconds) != HIVE_OK)
        abort();   /* a time within a minute of now is always valid */
    return t;
}

static bool tp_handles(const hive_provider *p, hive_cred_type t)
{
    (void)p;
    return t == HIVE_TYPE_OAUTH2;
}

/* A new access token, already due: every read (refreshing by default) finds
 * the credential due, and the store's refresh notes work too. */
static hive_rc tp_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    char v[64];
    hive_time exp = in(-1);
    int n = atomic_fetch_add(&refreshes, 1) + 1;

    (void)p;
    (void)lookup;
    snprintf(v, sizeof(v), "refreshed-%d", n);
    return hive_cred_set_key(cred, "access_token", v, strlen(v), &exp);
}

static hive_rc new_cred(hive_cred **c, const char *id, const char *type, const char *value)
{
    hive_rc rc = hive_cred_new(c, id, type);

    if (rc == HIVE_OK)
        rc = hive_cred_set_key(*c, type[0] == 'o' ? "access_token" : "api_key", value, strlen(value), NULL);
    return rc;
}

typedef struct job {
    hive_store *store;
    int n;
    bool changed_ok;   /* no refresh lock (memory): a refresh may lose to another */
} job;

static void *work(void *arg)
{
    const job *j = arg;
    hive_store *s = j->store;

    for (int i = 0; i < iterations; i++) {
        hive_cred *c = NULL;
        hive_secret v = HIVE_SECRET_INIT;
        char id[32];
        char val[32];
        hive_rc rc;

        switch ((j->n + i) % 4) {
        case 0:   /* read, refreshing when due */
            CHECK(hive_store_get_credential(s, &c, "tok", 0) == HIVE_OK);
            CHECK(strncmp(hive_cred_get_key(c, "access_token", NULL), "refreshed-", 10) == 0 ||
                  strcmp(hive_cred_get_key(c, "access_token", NULL), "old") == 0);
            hive_cred_free(&c);
            break;
        case 1:   /* refresh */
            rc = hive_store_refresh(s, &c, "tok");
            if (rc == HIVE_ERR_CHANGED && j->changed_ok)
                break;
            CHECK(rc == HIVE_OK);
            CHECK(strncmp(hive_cred_get_key(c, "access_token", NULL), "refreshed-", 10) == 0);
            hive_cred_free(&c);
            break;
        case 2:   /* save, read back */
            snprintf(id, sizeof(id), "saved_%d", j->n);
            snprintf(val, sizeof(val), "value-%d-%d", j->n, i);
            CHECK(new_cred(&c, id, "api_key", val) == HIVE_OK);
            CHECK(hive_store_save(s, c) == HIVE_OK);
            hive_cred_free(&c);
            CHECK(hive_store_get_key(s, &v, id, NULL, HIVE_GET_NO_REFRESH) == HIVE_OK);
            CHECK(strcmp(v.data, val) == 0);
            hive_secret_free(&v);
            break;
        default:  /* the shared static credential, and the cache dropped */
            CHECK(hive_store_get_key(s, &v, "static", NULL, HIVE_GET_NO_REFRESH) == HIVE_OK);
            CHECK(strcmp(v.data, "static-value") == 0);
            hive_secret_free(&v);
            hive_store_invalidate(s, j->n % 2 ? "static" : NULL);
            break;
        }
    }
    return NULL;
}

static int run(const char *what, hive_storage *storage, bool changed_ok)
{
    hive_store *s = NULL;
    hive_cred *c = NULL;
    hive_time due = in(-1);
    static hive_provider tp = {sizeof(hive_provider), "test-oauth", tp_handles, tp_refresh, NULL, NULL, NULL};
    pthread_t t[THREADS];
    job jobs[THREADS];

    if (hive_store_new(&s, storage, NULL) != HIVE_OK || hive_store_add_provider(s, &tp) != HIVE_OK ||
        new_cred(&c, "tok", "oauth2", "old") != HIVE_OK ||
        hive_cred_set_key_expires(c, "access_token", &due) != HIVE_OK ||
        hive_cred_set_provider_id(c, "test-oauth") != HIVE_OK || hive_cred_set_auto_refresh(c, true) != HIVE_OK ||
        hive_store_save(s, c) != HIVE_OK) {
        fprintf(stderr, "%s: setup: %s\n", what, hive_last_error());
        return 1;
    }
    hive_cred_free(&c);
    if (new_cred(&c, "static", "api_key", "static-value") != HIVE_OK || hive_store_save(s, c) != HIVE_OK) {
        fprintf(stderr, "%s: setup: %s\n", what, hive_last_error());
        return 1;
    }
    hive_cred_free(&c);
    atomic_store(&refreshes, 0);
    atomic_store(&failures, 0);
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (job){s, i, changed_ok};
        if (pthread_create(&t[i], NULL, work, &jobs[i]) != 0)
            return 1;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    hive_store_free(&s);
    printf("%s: %d threads, %d refreshes, %d failures\n", what, THREADS, atomic_load(&refreshes),
           atomic_load(&failures));
    return atomic_load(&failures) != 0 || atomic_load(&refreshes) == 0;
}

int main(int argc, char **argv)
{
    hive_storage *mem = NULL;
    hive_storage *file = NULL;
    hive_file_options fo = HIVE_FILE_OPTIONS_INIT;
    char key[HIVE_FERNET_KEY_TEXT + 1];
    char dir[] = "/tmp/hive-threads-XXXXXX";
    char cmd[64];
    int rc;

    if (argc > 1)
        iterations = atoi(argv[1]);
    if (hive_memory_storage_new(&mem) != HIVE_OK)
        return 1;
    rc = run("memory", mem, true);
    if (mkdtemp(dir) == NULL || hive_fernet_key_generate(key) != HIVE_OK)
        return 1;
    fo.dir = dir;
    fo.key = key;
    if (hive_file_storage_open(&file, &fo) != HIVE_OK) {
        fprintf(stderr, "file storage: %s\n", hive_last_error());
        return 1;
    }
    rc |= run("file", file, false);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
