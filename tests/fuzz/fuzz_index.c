/* The index (metadata/index.json) of a real file store made once per
 * process in $TMPDIR: with any index, listing works, lists every id the
 * index reports, and the credentials still load. */
#include "fuzz.h"

#include <hive/hive.h>

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

static const char *const ids[] = {"brave_search", "github_oauth", "team/slack"};
static char dir[4000];
static char index_path[4096];
static hive_storage *storage;

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    hive_storage_free(&storage);
    nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Three credentials (one whose id is not its file name) and a file no key
 * opens. */
static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    hive_file_options o = {.size = sizeof(hive_file_options), .dir = dir,
                           .key = "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI="};
    hive_time soon = {.sec = 1772370000, .form = HIVE_TIME_UTC};
    char path[4096];
    bool created;
    int fd;

    snprintf(dir, sizeof(dir), "%s/hive-fuzz-index-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    FUZZ_CHECK(hive_file_storage_open(&storage, &o) == HIVE_OK);
    FUZZ_CHECK(hive_file_storage_init(storage, &created) == HIVE_OK);
    for (size_t i = 0; i < 3; i++) {
        hive_cred *c = NULL;
        FUZZ_CHECK(hive_cred_new(&c, ids[i], i == 1 ? "oauth2" : "api_key") == HIVE_OK);
        FUZZ_CHECK(hive_cred_set_key(c, "value", "v", 1, i == 1 ? &soon : NULL) == HIVE_OK);
        FUZZ_CHECK(hive_storage_save(storage, c) == HIVE_OK);
        hive_cred_free(&c);
    }
    snprintf(index_path, sizeof(index_path), "%s/metadata/index.json", dir);
    snprintf(path, sizeof(path), "%s/credentials/broken.enc", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0 && write(fd, "gAAAAA==", 8) == 8 && close(fd) == 0);
}

static bool listed(const hive_strlist *l, const char *id)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], id) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hive_strlist list = {0};
    hive_json *index = NULL;
    hive_cred *c = NULL;
    int fd;

    if (storage == NULL)
        setup();
    fd = open(index_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size && close(fd) == 0);
    FUZZ_CHECK(hive_storage_list(storage, &list) == HIVE_OK);
    FUZZ_CHECK(hive_file_storage_index(storage, &index) == HIVE_OK);
    for (size_t i = 0; i < hive_json_size(index); i++) {
        const char *id;
        hive_json_at(index, i, &id);
        FUZZ_CHECK(listed(&list, id));
    }
    FUZZ_CHECK(hive_storage_load(storage, &c, "team/slack") == HIVE_OK);
    hive_cred_free(&c);
    hive_json_free(&index);
    hive_strlist_free(&list);
    return 0;
}
