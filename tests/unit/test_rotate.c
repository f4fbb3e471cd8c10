/*
 * hive_file_storage_rotate_key through the library: its refusals and their
 * messages, a pending key that is the current one, a key kept outside a key
 * file, progress. (tests/cli/test_rotate.py covers hive-cred rotate-key.)
 */
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#define OLD_KEY "CDYCcZR9HSFJhGdO3tDSUBI4JyY_S-KIB3oWzAKtsgI="
#define NEW_KEY "MoXhix2D4gr1vwiwZM61LpoUmk5VOe97ljatQD2Vz3A="
#define OTHER_KEY "cE6kL2kNIN-giZabTxFG-pLVFt1fyfv5UqfUsCQvkYA="

static char home[256];
static char dir[300];
static char key_file[300];
static char next_file[320];   /* <key file>.new: the key a rotation moves to */

static void make_home(void)
{
    snprintf(home, sizeof(home), "/tmp/hive-rotate-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    snprintf(dir, sizeof(dir), "%s/credentials", home);
    snprintf(key_file, sizeof(key_file), "%s/secrets/credential_key", home);
    snprintf(next_file, sizeof(next_file), "%s.new", key_file);
    unsetenv(HIVE_ENV_KEY);
    unsetenv(HIVE_ENV_NEW_KEY);
}

static void remove_home(void)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(rotate, .init = make_home, .fini = remove_home);

/* A store with two credentials: key NULL keeps the key in a key file,
 * created by hive_file_storage_init. */
static hive_storage *open_store(const char *key)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    bool made = false;

    o.dir = dir;
    o.key = key;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    cr_assert_eq(hive_file_storage_init(s, &made), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(made, key == NULL);
    return s;
}

/* The same as the tools open it: the key's other sources
 * (HIVE_NEW_CREDENTIAL_KEY among them) from the environment. */
static hive_storage *open_store_from_env(const char *key)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;

    o.key = key;
    cr_assert_eq(hive_storage_open_from_env(&s, dir, &o), HIVE_OK, "%s", hive_last_error());
    return s;
}

static void fill(hive_storage *s)
{
    save_api_key(s, "one", "first-secret");
    save_api_key(s, "two", "second-secret");
}

/* <key file>.new, as a killed rotation leaves it, holding text */
static void write_pending(const char *text)
{
    FILE *f = fopen(next_file, "w");

    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(next_file, 0600), 0);
}

/* The value of id, read by a storage of its own with key (NULL: the key
 * file): NULL when it cannot be read. */
static char *read_with(const char *key, const char *id)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    hive_cred *c = NULL;
    char *v = NULL;

    o.dir = dir;
    o.key = key;
    cr_assert_eq(hive_file_storage_open(&s, &o), HIVE_OK);
    if (hive_storage_load(s, &c, id) == HIVE_OK)
        v = strdup(hive_cred_get_key(c, "api_key", NULL));
    hive_cred_free(&c);
    hive_storage_free(&s);
    return v;
}

static void expect_readable_with(const char *key)
{
    char *one = read_with(key, "one"), *two = read_with(key, "two");

    cr_expect_str_eq(one ? one : "(unreadable)", "first-secret");
    cr_expect_str_eq(two ? two : "(unreadable)", "second-secret");
    free(one);
    free(two);
}

static void expect_unreadable_with(const char *key)
{
    char *one = read_with(key, "one");

    cr_expect_null(one, "still readable with the old key");
    free(one);
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

Test(rotate, not_a_file_storage)
{
    hive_storage *m = NULL;
    hive_rotation r = HIVE_ROTATION_INIT;

    cr_assert_eq(hive_memory_storage_new(&m), HIVE_OK);
    cr_assert_eq(hive_file_storage_rotate_key(m, NEW_KEY, NULL, NULL, &r), HIVE_ERR_UNSUPPORTED);
    cr_expect_str_eq(hive_last_error(), "not a file storage");
    hive_storage_free(&m);
    cr_assert_eq(hive_file_storage_rotate_key(NULL, NEW_KEY, NULL, NULL, &r), HIVE_ERR_UNSUPPORTED);
}

static size_t calls, last_done, last_total;

static void count(void *ctx, size_t done, size_t total)
{
    cr_assert_eq(ctx, &calls);
    cr_expect_eq(done, last_done + 1, "done goes up one by one");
    calls++;
    last_done = done;
    last_total = total;
}

Test(rotate, key_file_to_a_given_key_with_progress)
{
    hive_storage *s = open_store(NULL);
    hive_rotation r = HIVE_ROTATION_INIT;
    char *text;

    fill(s);
    /* the given text's stray whitespace is not copied to the key file */
    cr_assert_eq(hive_file_storage_rotate_key(s, " " NEW_KEY "\n", count, &calls, &r), HIVE_OK,
                 "%s", hive_last_error());
    cr_expect(r.key_file);
    cr_expect_eq(r.total, 2);
    cr_expect_eq(r.rotated, 2);
    cr_expect_eq(r.already, 0);
    cr_expect_eq(r.unreadable, 0);
    cr_expect_eq(calls, 2);
    cr_expect_eq(last_total, 2);
    text = slurp(key_file, NULL);
    cr_expect_str_eq(text, NEW_KEY);
    free(text);
    cr_expect_not(exists(next_file), "the pending key file is gone once switched");
    expect_readable_with(NEW_KEY);
    expect_readable_with(NULL);
    hive_storage_free(&s);
}

Test(rotate, key_file_refuses_a_bad_or_the_same_key)
{
    hive_storage *s = open_store(NULL);
    char *before = slurp(key_file, NULL), *after;

    fill(s);
    cr_assert_eq(hive_file_storage_rotate_key(s, "not-a-key", NULL, NULL, NULL), HIVE_ERR_BAD_KEY);
    cr_expect_str_eq(hive_last_error(), "the new key is not a Fernet key");
    cr_expect_null(strstr(hive_last_error(), "not-a-key"));
    cr_expect_not(exists(next_file));
    cr_assert_eq(hive_file_storage_rotate_key(s, before, NULL, NULL, NULL), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "the new key is the current key");
    cr_expect_not(exists(next_file));
    after = slurp(key_file, NULL);
    cr_expect_str_eq(after, before);
    expect_readable_with(before);
    free(before);
    free(after);
    hive_storage_free(&s);
}

Test(rotate, a_pending_key_that_is_the_current_key_is_no_rotation)
{
    hive_storage *s = open_store(NULL);
    char *current = slurp(key_file, NULL), *now;
    hive_rotation r = HIVE_ROTATION_INIT;

    fill(s);
    /* <key file>.new holds the current key (written by hand, or a copy):
     * nothing is pending */
    write_pending(current);
    cr_assert_eq(hive_file_storage_rotate_key(s, NEW_KEY, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    cr_expect_eq(r.rotated, 2);
    now = slurp(key_file, NULL);
    cr_expect_str_eq(now, NEW_KEY);
    cr_expect_not(exists(next_file));
    expect_readable_with(NEW_KEY);
    expect_unreadable_with(current);
    free(current);
    free(now);
    hive_storage_free(&s);
}

Test(rotate, a_pending_key_that_cannot_be_read_stops_it)
{
    hive_storage *s = open_store(NULL);
    char *current = slurp(key_file, NULL);

    fill(s);
    write_pending("garbage");
    cr_assert_eq(hive_file_storage_rotate_key(s, NEW_KEY, NULL, NULL, NULL), HIVE_ERR_BAD_KEY);
    cr_expect(strstr(hive_last_error(), ".new does not hold a Fernet key") != NULL, "%s", hive_last_error());
    cr_expect(exists(next_file), "what may be the only copy of a key is not deleted");
    expect_readable_with(current);
    free(current);
    hive_storage_free(&s);
}

Test(rotate, key_in_the_environment_needs_the_new_key)
{
    hive_storage *s = open_store(OLD_KEY);

    fill(s);
    cr_assert_eq(hive_file_storage_rotate_key(s, NULL, NULL, NULL, NULL), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "the key comes from explicit, which hive cannot write: name a file for "
                                        "the new key, or give it in " HIVE_ENV_NEW_KEY);
    cr_assert_eq(hive_file_storage_rotate_key(s, "not-a-key", NULL, NULL, NULL), HIVE_ERR_BAD_KEY);
    cr_expect_str_eq(hive_last_error(), "the new key is not a Fernet key");
    cr_assert_eq(hive_file_storage_rotate_key(s, OLD_KEY, NULL, NULL, NULL), HIVE_ERR_INVALID);
    cr_expect_str_eq(hive_last_error(), "the new key is the current key");
    expect_readable_with(OLD_KEY);
    hive_storage_free(&s);
}

Test(rotate, key_in_the_environment_to_the_given_key)
{
    hive_storage *s = open_store(OLD_KEY);
    hive_rotation r = HIVE_ROTATION_INIT;

    fill(s);
    cr_assert_eq(hive_file_storage_rotate_key(s, NEW_KEY, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(r.key_file, "the caller moves the new key into place");
    cr_expect_eq(r.rotated, 2);
    cr_expect_not(exists(key_file), "no key file is made for a key kept elsewhere");
    expect_readable_with(NEW_KEY);
    expect_unreadable_with(OLD_KEY);
    hive_storage_free(&s);
}

Test(rotate, key_in_the_environment_to_HIVE_NEW_CREDENTIAL_KEY)
{
    hive_storage *s = NULL;
    hive_file_options o = HIVE_FILE_OPTIONS_INIT;
    hive_rotation r = HIVE_ROTATION_INIT;
    bool made = true;

    setenv(HIVE_ENV_KEY, OLD_KEY, 1);
    o.dir = dir;
    cr_assert_eq(hive_storage_open_from_env(&s, dir, &o), HIVE_OK);
    cr_assert_eq(hive_file_storage_init(s, &made), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(made);
    fill(s);
    cr_expect_str_eq(hive_file_storage_key_source(s), HIVE_ENV_KEY);
    hive_storage_free(&s);
    /* new_key NULL: HIVE_NEW_CREDENTIAL_KEY, as hive_file_storage_rotate_key says */
    setenv(HIVE_ENV_NEW_KEY, NEW_KEY, 1);
    cr_assert_eq(hive_storage_open_from_env(&s, dir, &o), HIVE_OK);
    cr_assert_eq(hive_file_storage_rotate_key(s, NULL, NULL, NULL, &r), HIVE_OK, "%s", hive_last_error());
    cr_expect_not(r.key_file);
    cr_expect_eq(r.rotated, 2);
    unsetenv(HIVE_ENV_KEY);
    unsetenv(HIVE_ENV_NEW_KEY);
    expect_readable_with(NEW_KEY);
    expect_unreadable_with(OLD_KEY);
    hive_storage_free(&s);
}

Test(rotate, key_in_the_environment_refuses_another_key_than_HIVE_NEW_CREDENTIAL_KEY)
{
    hive_storage *s = open_store(OLD_KEY);

    fill(s);
    hive_storage_free(&s);
    setenv(HIVE_ENV_NEW_KEY, NEW_KEY, 1);
    s = open_store_from_env(OLD_KEY);
    /* HIVE_NEW_CREDENTIAL_KEY may name a rotation already half done: files
     * under it would be lost if the run went on to a third key */
    cr_assert_eq(hive_file_storage_rotate_key(s, OTHER_KEY, NULL, NULL, NULL), HIVE_ERR_CONFLICT);
    /* the keys by fingerprint: printf %s KEY | sha256sum | cut -c1-8 */
    cr_expect_str_eq(hive_last_error(), HIVE_ENV_NEW_KEY " is key eb2cd3d7, and the new key given is key 2f95d458: "
                                        "files may be under the first already; finish with it");
    expect_readable_with(OLD_KEY);
    /* the same key given twice is no conflict */
    cr_assert_eq(hive_file_storage_rotate_key(s, NEW_KEY, NULL, NULL, NULL), HIVE_OK, "%s", hive_last_error());
    expect_readable_with(NEW_KEY);
    hive_storage_free(&s);
}

Test(rotate, refuses_a_report_of_an_unknown_size_before_anything_is_done)
{
    hive_storage *s = open_store(NULL);
    char *before = slurp(key_file, NULL), *after;
    hive_rotation r = HIVE_ROTATION_INIT;

    fill(s);
    r.size = sizeof(r) + 8;   /* a caller built against a newer header */
    r.total = 7;
    cr_assert_eq(hive_file_storage_rotate_key(s, NEW_KEY, NULL, NULL, &r), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "HIVE_ROTATION_INIT"), "%s", hive_last_error());
    cr_expect_not_null(strstr(hive_last_error(), "hive_rotation"), "%s", hive_last_error());
    cr_expect_eq(r.total, 7, "nothing written into a struct of the wrong size");
    cr_expect_not(exists(next_file), "no rotation started");
    after = slurp(key_file, NULL);
    cr_expect_str_eq(after, before);
    free(before);
    free(after);
    cr_assert_eq(hive_file_storage_rotate_key_file(s, NULL, NULL, NULL, &r), HIVE_ERR_INVALID);
    cr_expect_not_null(strstr(hive_last_error(), "HIVE_ROTATION_INIT"), "%s", hive_last_error());
    expect_readable_with(NULL);
    hive_storage_free(&s);
}
