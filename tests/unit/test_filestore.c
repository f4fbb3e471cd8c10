/*
 * The encrypted file storage: layout, ids, index, damage, symlinks.
 */
#include "testutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char home[256];
static char dir[300];
static const char *key_text = "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI=";

static void make_home(void)
{
    snprintf(home, sizeof(home), "/tmp/hive-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    snprintf(dir, sizeof(dir), "%s/credentials", home);
}

static void remove_home(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}

static void copy_fixture(void)
{
    char cmd[4096];
    make_home();
    snprintf(cmd, sizeof(cmd), "cp -r '%s/fixtures/hive-home/.' '%s/' && chmod 600 '%s/secrets/credential_key'",
             data_dir(), home, home);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(filestore, .init = NULL, .fini = NULL);

static hive_storage *open_store(const char *key)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    o.dir = dir;
    o.key = key;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    return s;
}

/* The same as the tools open it: the key's sources from the environment. */
static hive_storage *open_store_from_env(void)
{
    hive_storage *s = NULL;
    cr_assert_eq(hive_storage_open_from_env(&s, dir, NULL), HIVE_OK, "%s", hive_last_error());
    return s;
}

#define save save_api_key

static char *value_of(hive_storage *s, const char *id)
{
    hive_cred *c = NULL;
    char *v;
    cr_assert_eq(hive_storage_load(s, &c, id), HIVE_OK, "%s", hive_last_error());
    v = strdup(hive_cred_get_key(c, "api_key", NULL));
    hive_cred_free(&c);
    return v;
}

static bool file_exists(const char *rel)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", home, rel);
    return lstat(path, &st) == 0;
}

static void write_file(const char *rel, const char *data, size_t len)
{
    char path[600];
    int fd;
    snprintf(path, sizeof(path), "%s/%s", home, rel);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "%s", path);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

Test(filestore, stem_matches_hive)
{
    static const char *const cases[][2] = {
        {"brave_search", "brave_search"}, {"brave_search/work", "brave_search_work"},
        {"a\\b", "a_b"}, {"..", "_"}, {"...", "_."}, {"../../etc/x", "____etc_x"},
        {"/etc/x", "_etc_x"}, {"a/../b", "a___b"}, {".\\.", "._."},
    };
    char buf[HIVE_ID_MAX + 1];
    char longid[400];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(hive_file_stem(buf, sizeof(buf), cases[i][0]), HIVE_OK);
        cr_expect_str_eq(buf, cases[i][1], "%s", cases[i][0]);
    }
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    cr_assert_eq(hive_file_stem(buf, sizeof(buf), longid), HIVE_ERR_BAD_ID);
    cr_assert_eq(hive_file_stem(buf, sizeof(buf), ""), HIVE_ERR_BAD_ID);
}

Test(filestore, save_load_list_delete)
{
    hive_storage *s;
    hive_strlist ids = {0};
    bool found;
    char *v;
    struct stat st;
    char path[600];

    make_home();
    s = open_store(key_text);
    save(s, "one", "v1");
    save(s, "two/alias", "v2");
    v = value_of(s, "two/alias");
    cr_assert_str_eq(v, "v2");
    free(v);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 2);
    cr_assert_str_eq(ids.items[0], "one");
    cr_assert_str_eq(ids.items[1], "two/alias");
    hive_strlist_free(&ids);
    cr_assert_eq(hive_storage_exists(s, &found, "one"), HIVE_OK);
    cr_assert(found);
    cr_assert_eq(hive_storage_exists(s, &found, "two_alias"), HIVE_OK);
    cr_assert_not(found, "another id mapping to the same file must not exist");
    snprintf(path, sizeof(path), "%s/credentials/one.enc", dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(hive_storage_delete(s, "one"), HIVE_OK);
    cr_assert_eq(hive_storage_delete(s, "one"), HIVE_ERR_NOT_FOUND);
    cr_assert_str_eq(hive_last_error(), "Credential 'one' not found");
    cr_assert_eq(hive_storage_exists(s, &found, "one"), HIVE_OK);
    cr_assert_not(found);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, hostile_ids_stay_inside)
{
    hive_storage *s;
    hive_cred *c = NULL;
    char longid[300];

    make_home();
    s = open_store(key_text);
    save(s, "../../etc/x", "v");
    save(s, "/etc/y", "v");
    cr_assert(file_exists("credentials/credentials/____etc_x.enc"));
    cr_assert(file_exists("credentials/credentials/_etc_y.enc"));
    cr_assert_not(file_exists("etc"));
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    cr_assert_eq(hive_cred_new(&c, longid, "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "k", "v", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(s, c), HIVE_ERR_BAD_ID);
    hive_cred_free(&c);
    cr_assert_eq(hive_cred_new(&c, "new\nline", "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "k", "v", 1, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(s, c), HIVE_ERR_BAD_ID);
    hive_cred_free(&c);
    cr_assert_eq(hive_storage_load(s, &c, longid), HIVE_ERR_BAD_ID);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, colliding_ids_never_overwrite)
{
    hive_storage *s;
    hive_cred *c = NULL;
    char *v;

    make_home();
    s = open_store(key_text);
    save(s, "a/b", "first");
    cr_assert_eq(hive_cred_new(&c, "a_b", "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "second", 6, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(s, c), HIVE_ERR_CONFLICT);
    hive_cred_free(&c);
    v = value_of(s, "a/b");
    cr_assert_str_eq(v, "first");
    free(v);
    cr_assert_eq(hive_storage_load(s, &c, "a_b"), HIVE_ERR_NOT_FOUND);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, damage_fails_only_for_itself)
{
    hive_storage *s;
    hive_cred *c = NULL;
    hive_strlist ids = {0};
    char path[600];
    char *v;

    make_home();
    s = open_store(key_text);
    save(s, "good", "g");
    save(s, "flipped", "f");
    save(s, "truncated", "t");
    save(s, "empty", "e");
    {
        size_t len;
        char *tok;
        snprintf(path, sizeof(path), "%s/credentials/flipped.enc", dir);
        tok = slurp(path, &len);
        tok[len / 2] = tok[len / 2] == 'A' ? 'B' : 'A';
        write_file("credentials/credentials/flipped.enc", tok, len);
        write_file("credentials/credentials/truncated.enc", tok, len / 2);
        free(tok);
        write_file("credentials/credentials/empty.enc", "", 0);
    }
    cr_assert_eq(hive_storage_load(s, &c, "flipped"), HIVE_ERR_DECRYPT);
    cr_assert_str_eq(hive_last_error(), "Failed to decrypt credential 'flipped': bad MAC (wrong key or damaged data)");
    cr_assert_eq(hive_storage_load(s, &c, "truncated"), HIVE_ERR_DECRYPT);
    cr_assert_not_null(strstr(hive_last_error(), "Failed to decrypt credential 'truncated': "));
    cr_assert_eq(hive_storage_load(s, &c, "empty"), HIVE_ERR_DECRYPT);
    v = value_of(s, "good");
    cr_assert_str_eq(v, "g");
    free(v);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 4);
    hive_strlist_free(&ids);
    hive_storage_free(&s);

    /* a foreign key: every load fails, listing still works from the index */
    s = open_store("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    cr_assert_eq(hive_storage_load(s, &c, "good"), HIVE_ERR_DECRYPT);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 4);
    hive_strlist_free(&ids);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, symlinks_are_not_followed)
{
    hive_storage *s;
    hive_cred *c = NULL;
    char target[600], link[600];

    make_home();
    s = open_store(key_text);
    save(s, "real", "r");
    snprintf(target, sizeof(target), "%s/credentials/real.enc", dir);
    snprintf(link, sizeof(link), "%s/credentials/linked.enc", dir);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(hive_storage_load(s, &c, "linked"), HIVE_ERR_PERM);
    cr_assert_not_null(strstr(hive_last_error(), "symbolic link"));
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, key_sources_and_their_errors)
{
    hive_storage *s;
    hive_cred *c = NULL;
    char path[600];

    copy_fixture();
    unsetenv("HIVE_CREDENTIAL_KEY");
    s = open_store(NULL);
    cr_assert_eq(hive_storage_load(s, &c, "anthropic"), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
    hive_storage_free(&s);

    snprintf(path, sizeof(path), "%s/secrets/credential_key", home);
    chmod(path, 0644);
    s = open_store(NULL);
    cr_assert_eq(hive_storage_load(s, &c, "anthropic"), HIVE_ERR_PERM);
    cr_assert_not_null(strstr(hive_last_error(), "0644"));
    hive_storage_free(&s);

    unlink(path);
    s = open_store(NULL);
    cr_assert_eq(hive_storage_load(s, &c, "anthropic"), HIVE_ERR_NO_KEY);
    hive_storage_free(&s);

    setenv("HIVE_CREDENTIAL_KEY", "garbage", 1);
    s = open_store(NULL);
    cr_assert_eq(hive_storage_load(s, &c, "anthropic"), HIVE_ERR_NO_KEY, "only the _from_env opening reads it");
    hive_storage_free(&s);
    s = open_store_from_env();
    cr_assert_eq(hive_storage_load(s, &c, "anthropic"), HIVE_ERR_BAD_KEY);
    cr_assert_null(strstr(hive_last_error(), "garbage"));
    hive_storage_free(&s);
    setenv("HIVE_CREDENTIAL_KEY", key_text, 1);
    s = open_store_from_env();
    cr_assert_eq(hive_storage_load(s, &c, "anthropic"), HIVE_OK);
    hive_cred_free(&c);
    hive_storage_free(&s);
    unsetenv("HIVE_CREDENTIAL_KEY");
    remove_home();
}

/* Rebuilding the index from the files gives exactly Hive's entries. */
Test(filestore, rebuilt_index_matches_hive)
{
    hive_json *want = data_json("fixtures/hive-home/credentials/metadata/index.json");
    const hive_json *want_creds = hive_json_get(want, "credentials");
    hive_storage *s;
    hive_strlist ids = {0};
    hive_json *got = NULL;
    char path[600];
    size_t len;
    char *text;

    copy_fixture();
    snprintf(path, sizeof(path), "%s/metadata/index.json", dir);
    cr_assert_eq(unlink(path), 0);
    s = open_store(key_text);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 8);
    hive_strlist_free(&ids);
    text = slurp(path, &len);   /* rewritten */
    cr_assert_eq(text[len - 1], '}', "no trailing newline");
    cr_assert_eq(hive_json_parse(&got, text, len), HIVE_OK);
    free(text);
    cr_assert_str_eq(jstr(got, "version"), "2.0");
    cr_assert_str_eq(jstr(got, "store_path"), dir);
    for (size_t i = 0; i < hive_json_size(want_creds); i++) {
        const char *id;
        const hive_json *w = hive_json_at(want_creds, i, &id);
        const hive_json *g = hive_json_get(hive_json_get(got, "credentials"), id);
        hive_secret a = HIVE_SECRET_INIT, b = HIVE_SECRET_INIT;
        cr_assert_not_null(g, "%s missing", id);
        cr_assert_eq(hive_json_emit(w, &a, 2), HIVE_OK);
        cr_assert_eq(hive_json_emit(g, &b, 2), HIVE_OK);
        cr_expect_str_eq(b.data, a.data, "%s", id);
        hive_secret_free(&a);
        hive_secret_free(&b);
    }
    hive_json_free(&got);
    hive_json_free(&want);

    /* garbage index: same */
    write_file("credentials/metadata/index.json", "{not json", 9);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 8);
    hive_strlist_free(&ids);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, old_index_schema_is_read_and_upgraded)
{
    const char *v1 = "{\n  \"credentials\": {\n    \"anthropic\": {\n      \"updated_at\": "
                     "\"2026-03-01T12:00:00+00:00\",\n      \"type\": \"api_key\"\n    }\n  },\n  "
                     "\"version\": \"1.0\",\n  \"last_modified\": \"2026-03-01T12:00:00+00:00\"\n}";
    hive_storage *s;
    hive_strlist ids = {0};
    hive_json *got = NULL;
    char path[600];
    size_t len;
    char *text;

    copy_fixture();
    write_file("credentials/metadata/index.json", v1, strlen(v1));
    s = open_store(key_text);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 8);
    hive_strlist_free(&ids);
    save(s, "added", "x");
    snprintf(path, sizeof(path), "%s/metadata/index.json", dir);
    text = slurp(path, &len);
    cr_assert_eq(hive_json_parse(&got, text, len), HIVE_OK);
    free(text);
    cr_assert_str_eq(jstr(got, "version"), "2.0");
    cr_assert_eq(hive_json_size(hive_json_get(got, "credentials")), 9);
    cr_assert_not_null(hive_json_get(hive_json_get(hive_json_get(got, "credentials"), "anthropic"), "key_names"));
    hive_json_free(&got);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, init_creates_layout_and_key)
{
    hive_storage *s;
    bool created = false;
    struct stat st;
    char path[600];

    make_home();
    unsetenv("HIVE_CREDENTIAL_KEY");
    s = open_store(NULL);
    cr_assert_eq(hive_file_storage_init(s, &created), HIVE_OK, "%s", hive_last_error());
    cr_assert(created);
    snprintf(path, sizeof(path), "%s/secrets/credential_key", home);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, 44);
    cr_assert(file_exists("credentials/metadata/index.json"));
    hive_storage_free(&s);
    s = open_store(NULL);
    cr_assert_eq(hive_file_storage_init(s, &created), HIVE_OK);
    cr_assert_not(created);
    save(s, "k", "v");
    hive_storage_free(&s);
    remove_home();
}

/* Issue 12, item 4: a/b's file removed by hand, its name reused by a_b: the
 * index's stale entry for a/b must not let a/b delete or overwrite a_b. */
Test(filestore, stale_index_entry_never_decides)
{
    hive_storage *s;
    hive_cred *c = NULL;
    hive_strlist ids = {0};
    bool found = true;
    char path[600];
    char *v;

    make_home();
    s = open_store(key_text);
    save(s, "a/b", "gone");
    snprintf(path, sizeof(path), "%s/credentials/a_b.enc", dir);
    cr_assert_eq(unlink(path), 0);
    save(s, "a_b", "kept");
    cr_assert_eq(hive_storage_exists(s, &found, "a/b"), HIVE_OK);
    cr_assert_not(found);
    cr_assert_eq(hive_storage_delete(s, "a/b"), HIVE_ERR_NOT_FOUND);
    cr_assert_eq(hive_cred_new(&c, "a/b", "api_key"), HIVE_OK);
    cr_assert_eq(hive_cred_set_key(c, "api_key", "intruder", 8, NULL), HIVE_OK);
    cr_assert_eq(hive_storage_save(s, c), HIVE_ERR_CONFLICT);
    cr_assert_not_null(strstr(hive_last_error(), "which holds credential 'a_b'"), "%s", hive_last_error());
    hive_cred_free(&c);
    v = value_of(s, "a_b");
    cr_assert_str_eq(v, "kept");
    free(v);
    cr_assert_eq(hive_storage_list(s, &ids), HIVE_OK);
    cr_assert_eq(ids.count, 1);
    cr_assert_str_eq(ids.items[0], "a_b");
    hive_strlist_free(&ids);
    hive_storage_free(&s);
    remove_home();
}

static char warnings[4096];

static void collect_warning(void *ctx, const char *msg)
{
    size_t n = strlen(warnings);
    (void)ctx;
    snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
}

/* Issue 12, item 15: a store directory of mode 0777 was not warned about. */
Test(filestore, open_store_directory_warned_once)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    char want[1200];
    char *v;

    make_home();
    s = open_store(key_text);
    save(s, "one", "v1");
    save(s, "two", "v2");
    hive_storage_free(&s);
    cr_assert_eq(chmod(dir, 0777), 0);
    warnings[0] = '\0';
    o.dir = dir;
    o.key = key_text;
    o.warn = collect_warning;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    v = value_of(s, "one");
    free(v);
    v = value_of(s, "two");
    free(v);
    snprintf(want, sizeof(want), "store directory %s is writable by group or others (mode 0777): they can "
             "replace the files in it; chmod 700 %s\n", dir, dir);
    cr_expect_str_eq(warnings, want);
    hive_storage_free(&s);
    remove_home();
}

/* Hive's index lists key names as Python sorts them: a name holding NUL
 * is neither cut nor merged with the name before the NUL. */
Test(filestore, index_key_names_are_counted_and_sorted_as_python_does)
{
    const char *doc = "{\"id\": \"n\", \"keys\": {"
                      "\"b\": {\"name\": \"b\", \"value\": \"1\"}, "
                      "\"a\\u0000b\": {\"name\": \"a\\u0000b\", \"value\": \"2\"}, "
                      "\"a\": {\"name\": \"a\", \"value\": \"3\"}, "
                      "\"_alias\": {\"name\": \"_alias\", \"value\": \"x\"}}}";
    hive_storage *s;
    hive_cred *c = NULL;
    char path[600];
    char *text;
    size_t len = 0;
    hive_json *idx = NULL;
    hive_secret names = HIVE_SECRET_INIT;

    make_home();
    s = open_store(key_text);
    cr_assert_eq(hive_cred_parse(&c, doc, strlen(doc)), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_storage_save(s, c), HIVE_OK, "%s", hive_last_error());
    hive_cred_free(&c);
    snprintf(path, sizeof(path), "%s/metadata/index.json", dir);
    text = slurp(path, &len);
    cr_assert_eq(hive_json_parse(&idx, text, len), HIVE_OK);
    cr_assert_eq(hive_json_emit(hive_json_get(hive_json_get(hive_json_get(idx, "credentials"), "n"),
                                                            "key_names"), &names, -1), HIVE_OK);
    cr_expect_str_eq(names.data, "[\"a\", \"a\\u0000b\", \"b\"]");
    hive_secret_free(&names);
    free(text);
    hive_json_free(&idx);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, index_of_a_store_not_made_yet_is_empty)
{
    hive_storage *s;
    hive_json *idx = NULL;

    make_home();
    s = open_store(key_text);
    cr_assert_eq(hive_file_storage_index(s, &idx), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(hive_json_typeof(idx), HIVE_JSON_OBJECT);
    cr_expect_eq(hive_json_size(idx), 0);
    cr_expect_not(file_exists("credentials"), "reading the index made the store");
    hive_json_free(&idx);
    hive_storage_free(&s);
    remove_home();
}

Test(filestore, index_without_a_key_drops_entries_whose_file_is_gone)
{
    hive_storage *s;
    hive_json *idx = NULL;
    char path[600];

    copy_fixture();
    snprintf(path, sizeof(path), "%s/credentials/credentials/anthropic.enc", home);
    cr_assert_eq(unlink(path), 0);
    /* no key: the index cannot be repaired from the files, but an entry
     * without its file is not shown */
    snprintf(path, sizeof(path), "%s/secrets/credential_key", home);
    cr_assert_eq(unlink(path), 0);
    unsetenv(HIVE_ENV_KEY);
    s = open_store(NULL);
    cr_assert_eq(hive_file_storage_index(s, &idx), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(hive_json_size(idx), 7);
    cr_expect_null(hive_json_get(idx, "anthropic"));
    cr_expect_not_null(hive_json_get(idx, "brave_search/work"));
    hive_json_free(&idx);
    hive_storage_free(&s);
    remove_home();
}

/* init where the key file's directory cannot hold it: nothing is written
 * through a symbolic link, and the message names the directory */
static hive_rc init_with_key_file(const char *key_file)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    bool made = true;
    hive_rc rc;

    o.dir = dir;
    o.key_file = key_file;
    unsetenv(HIVE_ENV_KEY);
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    rc = hive_file_storage_init(s, &made);
    cr_expect_not(made);
    hive_storage_free(&s);
    return rc;
}

Test(filestore, init_writes_no_key_through_a_symlinked_directory)
{
    char target[600], link_path[600], key_file[700], want[1400];

    make_home();
    snprintf(target, sizeof(target), "%s/elsewhere", home);
    snprintf(link_path, sizeof(link_path), "%s/secrets", home);
    cr_assert_eq(mkdir(target, 0700), 0);
    cr_assert_eq(symlink(target, link_path), 0);
    snprintf(key_file, sizeof(key_file), "%s/credential_key", link_path);
    cr_assert_eq(init_with_key_file(key_file), HIVE_ERR_PERM);
    snprintf(want, sizeof(want), "cannot open directory %s is not a directory (or is a symbolic link)", link_path);
    cr_expect_str_eq(hive_last_error(), want);
    cr_expect_not(file_exists("elsewhere/credential_key"));
    remove_home();
}

Test(filestore, init_makes_one_key_directory_not_a_path)
{
    char key_file[700], want[1400];

    /* the key directory is made (0700) when missing, but not its parents:
     * a mistyped path is not created */
    make_home();
    snprintf(key_file, sizeof(key_file), "%s/typo/secrets/credential_key", home);
    cr_assert_eq(init_with_key_file(key_file), HIVE_ERR_IO);
    snprintf(want, sizeof(want), "cannot create directory %s/typo/secrets: No such file or directory", home);
    cr_expect_str_eq(hive_last_error(), want);
    cr_expect_not(file_exists("typo"));
    remove_home();
}
