/*
 * index.c - the file storage's index, metadata/index.json: a plaintext
 * cache of each credential's metadata (no secret), in Hive's schema 2.0.
 * Missing, damaged, old or incomplete, it is rebuilt from the files.
 */
#include "filestore_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The index is a cache, parsed whole: a parsed JSON value costs about 150
 * bytes, however small its text, so "[0,0,0,...]" would take 75 times its
 * size. Hive writes the index with indent 2, 13 bytes or more per
 * separator (, : [ {), about 370 bytes per credential. An index larger
 * than INDEX_MAX (some 45,000 credentials), or with more than one
 * separator per INDEX_BYTES_PER_SEP bytes, is not parsed: it is rebuilt
 * from the files, as a damaged one is. Parsing then costs at most about
 * 15 times the index's size. */
#define INDEX_MAX (16u * 1024 * 1024)
#define INDEX_BYTES_PER_SEP 10

static hive_json *time_or_null(const hive_time *t)
{
    char text[HIVE_TIME_TEXT];

    if (t->form == HIVE_TIME_NONE)
        return hive_json_new(HIVE_JSON_NULL);
    hive_time_format(text, t, false);
    return hive_json_new_string(text, strlen(text));
}

static hive_json *key_or_null(const hive_cred *cred, const char *key)
{
    size_t len;
    const char *v = hive_cred_get_key(cred, key, &len);

    return v ? hive_json_new_string(v, len) : hive_json_new(HIVE_JSON_NULL);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A key name, counted: it may hold NUL, as Python's str may. */
typedef struct name_ref {
    const char *s;
    size_t len;
} name_ref;

/* Python's order of str: by code point, which UTF-8 bytes keep. */
static int cmp_name(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);

    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static bool hidden_name(const name_ref *n)
{
    return (n->len == 6 && memcmp(n->s, "_alias", 6) == 0) ||
           (n->len == 17 && memcmp(n->s, "_integration_type", 17) == 0) ||
           (n->len >= 10 && memcmp(n->s, "_identity_", 10) == 0);
}

/* The 2.0 index entry Hive writes for cred. */
hive_rc index_entry(hive_json **out, const hive_cred *cred)
{
    static const char *const identity_fields[] = {"email", "username", "workspace", "account_id"};
    hive_json *e = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *identity = hive_json_new(HIVE_JSON_OBJECT);
    hive_json *names = hive_json_new(HIVE_JSON_ARRAY);
    const hive_json *keys = hive_json_get(hive_cred_json(cred), "keys");
    size_t nkeys = hive_json_size(keys);
    name_ref *sorted = calloc(nkeys + 1, sizeof(*sorted));
    size_t ns = 0;
    hive_time t;
    hive_rc rc = HIVE_OK;

    if (e == NULL || identity == NULL || names == NULL || sorted == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < 4 && rc == HIVE_OK; i++) {
        char k[32];
        snprintf(k, sizeof(k), "_identity_%s", identity_fields[i]);
        if (hive_cred_get_key(cred, k, NULL) != NULL)
            rc = hive_json_set(identity, identity_fields[i], key_or_null(cred, k));
    }
    for (size_t i = 0; i < nkeys; i++) {
        (void)hive_json_member(keys, i, &sorted[ns].s, &sorted[ns].len);
        if (!hidden_name(&sorted[ns]))
            ns++;
    }
    qsort(sorted, ns, sizeof(*sorted), cmp_name);
    for (size_t i = 0; i < ns && rc == HIVE_OK; i++)
        rc = hive_json_append(names, hive_json_new_string(sorted[i].s, sorted[i].len));
    if (rc != HIVE_OK)
        goto fail;

    rc = hive_json_set(e, "credential_type", hive_json_new_string(hive_cred_type_str(cred),
                                                                  strlen(hive_cred_type_str(cred))));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "provider", key_or_null(cred, "_integration_type"));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "alias", key_or_null(cred, "_alias"));
    if (rc == HIVE_OK) {
        rc = hive_json_set(e, "identity", identity);
        identity = NULL;
    }
    if (rc == HIVE_OK) {
        rc = hive_json_set(e, "key_names", names);
        names = NULL;
    }
    t = hive_cred_time(cred, HIVE_CRED_CREATED_AT);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "created_at", time_or_null(&t));
    t = hive_cred_time(cred, HIVE_CRED_UPDATED_AT);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "updated_at", time_or_null(&t));
    t = hive_cred_time(cred, HIVE_CRED_LAST_REFRESHED);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "last_refreshed", time_or_null(&t));
    t = hive_cred_expires(cred);
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "expires_at", time_or_null(&t));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "auto_refresh",
                           hive_json_new(hive_cred_auto_refresh(cred) ? HIVE_JSON_TRUE : HIVE_JSON_FALSE));
    if (rc == HIVE_OK)
        rc = hive_json_set(e, "tags", hive_json_clone(hive_cred_tags(cred)));
    if (rc != HIVE_OK)
        goto fail;
    free(sorted);
    *out = e;
    return HIVE_OK;
fail:
    free(sorted);
    hive_json_free(&e);
    hive_json_free(&identity);
    hive_json_free(&names);
    return rc;
}

/* Whether text has more separators than an index Hive writes could. */
static bool too_dense(const char *text, size_t len)
{
    size_t seps = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            seps++;
        }
    }
    return seps > len / INDEX_BYTES_PER_SEP + 64;
}

/* Read the index. *out is set (the parsed document) for OK and OLD. */
index_state index_read(int metafd, hive_json **out)
{
    char *text = NULL;
    size_t len = 0;
    hive_json *doc = NULL;
    const hive_json *creds;
    const hive_json *version;
    hive_rc rc;

    *out = NULL;
    if (metafd < 0)
        return INDEX_MISSING;
    rc = hive__read_at(metafd, INDEX_FILE, true, INDEX_MAX, "index", &text, &len);
    if (rc == HIVE_ERR_NOT_FOUND)
        return INDEX_MISSING;
    if (rc != HIVE_OK)
        return INDEX_DAMAGED;
    if (too_dense(text, len)) {
        hive__free_secret(text, len + 1);
        return INDEX_DAMAGED;
    }
    rc = hive_json_parse(&doc, text, len);
    hive__free_secret(text, len + 1);
    if (rc != HIVE_OK)
        return INDEX_DAMAGED;
    creds = hive_json_get(doc, "credentials");
    if (hive_json_typeof(doc) != HIVE_JSON_OBJECT || hive_json_typeof(creds) != HIVE_JSON_OBJECT) {
        hive_json_free(&doc);
        return INDEX_DAMAGED;
    }
    for (size_t i = 0; i < hive_json_size(creds); i++) {
        if (hive_json_typeof(hive_json_at(creds, i, NULL)) != HIVE_JSON_OBJECT) {
            hive_json_free(&doc);
            return INDEX_DAMAGED;
        }
    }
    *out = doc;
    version = hive_json_get(doc, "version");
    if (hive_json_typeof(version) == HIVE_JSON_STRING &&
        strcmp(hive_json_string(version, NULL), "2.0") == 0)
        return INDEX_OK;
    return INDEX_OLD;
}

/* The id the index lists for a file name, if any (NULL). */
const char *index_id_for(const hive_json *creds, const char *name)
{
    char other[HIVE_ID_MAX + 16];

    for (size_t i = 0; i < hive_json_size(creds); i++) {
        const char *id;
        hive_json_at(creds, i, &id);
        if (fs_enc_name(other, sizeof(other), id) == HIVE_OK && strcmp(other, name) == 0)
            return id;
    }
    return NULL;
}

/*
 * Rebuild the "credentials" object from the files: every entry whose file
 * still exists is kept (refreshed when its file decrypts), and files the
 * index did not know are added. Never drops a readable credential.
 */
static hive_rc rebuild_entries(file_storage *fs, int credfd, const hive_json *old_creds,
                               bool refresh_all, hive_json **out)
{
    hive_strlist files = {0};
    hive_json *creds = hive_json_new(HIVE_JSON_OBJECT);
    hive_rc rc;
    bool *covered = NULL;

    if (creds == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    rc = fs_scan_enc(credfd, &files);
    if (rc != HIVE_OK)
        goto out;
    covered = calloc(files.count + 1, sizeof(bool));
    if (covered == NULL) {
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* Entries the index had, in its order. */
    for (size_t i = 0; i < hive_json_size(old_creds) && rc == HIVE_OK; i++) {
        const char *id;
        const hive_json *entry = hive_json_at(old_creds, i, &id);
        char name[HIVE_ID_MAX + 16];
        hive_json *fresh = NULL;
        hive_cred *cred = NULL;
        const char *key = name;
        char **hit;
        size_t f;

        if (fs_enc_name(name, sizeof(name), id) != HIVE_OK)
            continue;
        /* files is sorted (fs_scan_enc) */
        hit = files.count ? bsearch(&key, files.items, files.count, sizeof(char *), cmp_cstr) : NULL;
        f = hit ? (size_t)(hit - files.items) : files.count;
        if (f == files.count || covered[f])
            continue;   /* its file is gone: a stale entry */
        /* the id inside the file decides: an entry for another id that
         * maps to the same file is stale */
        if (fs_read_cred(fs, credfd, name, &cred) == HIVE_OK) {
            if (strcmp(hive_cred_id(cred), id) != 0) {
                hive_cred_free(&cred);
                continue;
            }
            if (refresh_all)
                rc = index_entry(&fresh, cred);
        }
        hive__clear_error();
        covered[f] = true;
        hive_cred_free(&cred);
        if (rc == HIVE_OK)
            rc = hive_json_set(creds, id, fresh ? fresh : hive_json_clone(entry));
    }
    /* Files the index did not know. */
    for (size_t f = 0; f < files.count && rc == HIVE_OK; f++) {
        hive_cred *cred = NULL;
        hive_json *fresh = NULL;
        char name[HIVE_ID_MAX + 16];

        if (covered[f])
            continue;
        if (fs_read_cred(fs, credfd, files.items[f], &cred) != HIVE_OK)
            continue;   /* unreadable and unknown: listed by name, not indexed */
        if (fs_enc_name(name, sizeof(name), hive_cred_id(cred)) == HIVE_OK &&
            strcmp(name, files.items[f]) == 0 && hive_json_get(creds, hive_cred_id(cred)) == NULL) {
            rc = index_entry(&fresh, cred);
            if (rc == HIVE_OK)
                rc = hive_json_set(creds, hive_cred_id(cred), fresh);
        }
        hive_cred_free(&cred);
    }
out:
    free(covered);
    hive_strlist_free(&files);
    if (rc != HIVE_OK) {
        hive_json_free(&creds);
        return rc;
    }
    *out = creds;
    return HIVE_OK;
}

/* Write doc as the index, with Hive's trailer fields. */
hive_rc index_write(file_storage *fs, int metafd, hive_json *doc)
{
    hive_time now = hive_time_now();
    char stamp[HIVE_TIME_TEXT];
    char *text = NULL;
    size_t len = 0;
    hive_rc rc;

    hive_time_format(stamp, &now, false);
    rc = hive_json_set(doc, "version", hive_json_new_string("2.0", 3));
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "store_path", hive_json_new_string(fs->dir, strlen(fs->dir)));
    if (rc == HIVE_OK)
        rc = hive_json_set(doc, "generated_at", hive_json_new_string(stamp, strlen(stamp)));
    if (rc == HIVE_OK)
        rc = hive__json_emit(&text, &len, doc, 2);
    if (rc == HIVE_OK)
        rc = hive__atomic_write_at(metafd, HIVE_TMP_PREFIX, INDEX_FILE, text, len, NULL);
    hive__free_secret(text, len + 1);
    if (rc != HIVE_OK)
        return hive__fail_prefix(rc, "cannot write the index of %s", fs->dir);
    return HIVE_OK;
}

/* Remove the entries of creds whose file is id's (but id's own when
 * keep_id). */
static hive_rc drop_entries_for_file(hive_json *creds, const char *id, bool keep_id)
{
    char name[HIVE_ID_MAX + 16];
    char other[HIVE_ID_MAX + 16];
    hive_rc rc = fs_enc_name(name, sizeof(name), id);

    for (size_t i = hive_json_size(creds); rc == HIVE_OK && i-- > 0;) {
        const char *k;
        char *copy;
        hive_json_at(creds, i, &k);
        if ((keep_id && strcmp(k, id) == 0) || fs_enc_name(other, sizeof(other), k) != HIVE_OK ||
            strcmp(other, name) != 0)
            continue;
        copy = hive__strdup(k);
        if (copy == NULL)
            return hive__fail(HIVE_ERR_NOMEM, "out of memory");
        hive_json_remove(creds, copy);
        free(copy);
    }
    return rc;
}

/*
 * With the lock held: read the index, rebuild it if it is missing, damaged
 * or of an old schema (which needs the key), apply one change, write it.
 * put: entry for id (NULL to remove id; id NULL: no change).
 */
hive_rc index_update(file_storage *fs, int credfd, int metafd, const char *id, hive_json *put,
                            bool force_rebuild)
{
    hive_json *doc = NULL;
    index_state st = index_read(metafd, &doc);
    hive_json *creds;
    hive_rc rc = HIVE_OK;

    if (st != INDEX_OK || force_rebuild) {
        hive_json *rebuilt = NULL;
        hive_json *fresh = hive_json_new(HIVE_JSON_OBJECT);
        if (fresh == NULL) {
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
            goto out;
        }
        rc = rebuild_entries(fs, credfd, doc ? hive_json_get(doc, "credentials") : NULL,
                             st == INDEX_OLD, &rebuilt);
        if (rc == HIVE_OK)
            rc = hive_json_set(fresh, "credentials", rebuilt);
        hive_json_free(&doc);
        doc = fresh;
        if (rc != HIVE_OK)
            goto out;
    }
    creds = hive_json_get_mut(doc, "credentials");
    /* One entry per file: an entry for id replaces every other entry that
     * names id's file (stale ones, from a file removed or written by hand),
     * and a file removed takes all of them with it. */
    if (id != NULL)
        rc = drop_entries_for_file(creds, id, put != NULL);
    if (rc == HIVE_OK && put != NULL) {
        rc = hive_json_set(creds, id, put);
        put = NULL;
    }
    if (rc == HIVE_OK)
        rc = index_write(fs, metafd, doc);
out:
    hive_json_free(&put);
    hive_json_free(&doc);
    return rc;
}

/* The sorted file names of the entries of creds. */
static hive_rc entry_files(const hive_json *creds, hive_strlist *names)
{
    hive_rc rc = HIVE_OK;

    for (size_t i = 0; i < hive_json_size(creds) && rc == HIVE_OK; i++) {
        const char *id;
        char name[HIVE_ID_MAX + 16];
        hive_json_at(creds, i, &id);
        if (fs_enc_name(name, sizeof(name), id) == HIVE_OK)
            rc = hive__strlist_add(names, name);
    }
    if (rc == HIVE_OK)
        hive__strlist_sort_unique(names);
    return rc;
}

/* Add to out the files (sorted) that no entry of creds names. */
static hive_rc unexplained_files(const hive_json *creds, const hive_strlist *files, hive_strlist *out)
{
    hive_strlist names = {0};
    hive_rc rc = entry_files(creds, &names);

    for (size_t f = 0; f < files->count && rc == HIVE_OK; f++)
        if (names.count == 0 ||
            bsearch(&files->items[f], names.items, names.count, sizeof(char *), cmp_cstr) == NULL)
            rc = hive__strlist_add(out, files->items[f]);
    hive_strlist_free(&names);
    return rc;
}

/* Whether the index entries creds and the files match one to one. */
static hive_rc index_complete(const hive_json *creds, int credfd, const hive_strlist *files, bool *complete)
{
    hive_strlist names = {0};
    hive_rc rc = HIVE_OK;
    size_t f = 0;

    *complete = true;
    for (size_t i = 0; i < hive_json_size(creds) && rc == HIVE_OK; i++) {
        const char *id;
        char name[HIVE_ID_MAX + 16];
        hive_json_at(creds, i, &id);
        if (fs_enc_name(name, sizeof(name), id) != HIVE_OK || !hive__regular_at(credfd, name))
            *complete = false;
        else
            rc = hive__strlist_add(&names, name);
    }
    if (rc == HIVE_OK && *complete) {
        size_t n = names.count;
        hive__strlist_sort_unique(&names);
        /* two entries for one file, or a file no entry names */
        if (names.count != n || names.count != files->count)
            *complete = false;
        for (f = 0; *complete && f < files->count; f++)
            *complete = strcmp(files->items[f], names.items[f]) == 0;
    }
    hive_strlist_free(&names);
    return rc;
}

/*
 * The index's credentials, repaired from the files when it is missing,
 * damaged, old, or does not cover every file. *unindexed gets the file
 * names that no readable credential explains (damaged files whose id is
 * unknown). The repaired index is written back when possible.
 */
hive_rc index_current(file_storage *fs, hive_json **out, hive_strlist *unindexed)
{
    int base = -1;
    int credfd = -1;
    int metafd = -1;
    hive_json *doc = NULL;
    const hive_json *old = NULL;
    hive_json *creds = NULL;
    hive_strlist files = {0};
    index_state st;
    bool complete = true;
    hive_rc rc;

    rc = fs_open_base(fs, &base, false);
    if (rc == HIVE_OK)
        rc = fs_open_sub(fs, base, CRED_DIR, &credfd, false);
    if (rc == HIVE_ERR_NOT_FOUND) {
        /* No store yet: nothing in it. */
        hive__close_fd(&base);
        hive__clear_error();
        *out = hive_json_new(HIVE_JSON_OBJECT);
        return *out ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    if (rc != HIVE_OK)
        goto out;
    if (fs_open_sub(fs, base, META_DIR, &metafd, false) != HIVE_OK)
        metafd = -1;
    st = index_read(metafd, &doc);
    old = doc ? hive_json_get(doc, "credentials") : NULL;
    rc = fs_scan_enc(credfd, &files);
    if (rc != HIVE_OK)
        goto out;
    /* Is every file explained by exactly one entry, and every entry by a
     * file? */
    rc = index_complete(old, credfd, &files, &complete);
    if (rc != HIVE_OK)
        goto out;
    if ((st == INDEX_OK && complete) || fs_load_key(fs) != HIVE_OK) {
        /* Sound, or no key to repair it with: what the index knows (taken
         * out of the document, not copied: it may be large). */
        hive__clear_error();
        creds = old ? hive__json_detach(doc, "credentials") : hive_json_new(HIVE_JSON_OBJECT);
        if (creds == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    } else {
        rc = rebuild_entries(fs, credfd, old, st == INDEX_OLD, &creds);
        /* done with the old index before the repair reads it again */
        hive_json_free(&doc);
        /* Write the repair back, under the lock, when we can. */
        if (rc == HIVE_OK && metafd >= 0) {
            locked l;
            if (fs_lock_all(fs, &l, false) == HIVE_OK) {
                (void)index_update(fs, l.cred, l.meta, NULL, NULL, true);
                fs_unlock_all(&l);
            }
            hive__clear_error();
        }
    }
    if (rc != HIVE_OK)
        goto out;
    /* Drop entries without a file; report files without an entry. */
    for (size_t i = hive_json_size(creds); i-- > 0;) {
        const char *id;
        char name[HIVE_ID_MAX + 16];
        hive_json_at(creds, i, &id);
        if (fs_enc_name(name, sizeof(name), id) != HIVE_OK || !hive__regular_at(credfd, name)) {
            char *copy = hive__strdup(id);
            if (copy != NULL)
                hive_json_remove(creds, copy);
            free(copy);
        }
    }
    if (rc == HIVE_OK && unindexed != NULL)
        rc = unexplained_files(creds, &files, unindexed);
    if (rc == HIVE_OK) {
        *out = creds;
        creds = NULL;
    }
out:
    hive_json_free(&creds);
    hive_json_free(&doc);
    hive_strlist_free(&files);
    hive__close_fd(&metafd);
    hive__close_fd(&credfd);
    hive__close_fd(&base);
    return rc;
}

hive_rc hive_file_storage_index(hive_storage *s, hive_json **out)
{
    hive__clear_error();
    if (s == NULL || fs_of(s) == NULL)
        return hive__fail(HIVE_ERR_UNSUPPORTED, "not a file storage");
    return index_current((file_storage *)s, out, NULL);
}
