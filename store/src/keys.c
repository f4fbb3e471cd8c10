/*
 * keys.c - where the file storage's key comes from (hive_key_kind, in
 * this order: the key the caller gave, HIVE_CREDENTIAL_KEY, the output of
 * HIVE_CREDENTIAL_KEY_COMMAND, the systemd credential, the key file), and
 * the pending key of a rotation: the key file's .new for a key file; for
 * a key kept elsewhere HIVE_NEW_CREDENTIAL_KEY, else the file that the
 * rotation marker (metadata/key-rotation.json) names.
 *
 * hive_key_source_from_env is the only reader of these variables.
 */
#include "filestore_int.h"
#include "keycmd.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct hive_key_source {
    char *key;          /* HIVE_CREDENTIAL_KEY (wiped) */
    char *new_key;      /* HIVE_NEW_CREDENTIAL_KEY (wiped) */
    char *command;      /* HIVE_CREDENTIAL_KEY_COMMAND */
    char *timeout;      /* HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT */
    char *cred_dir;     /* CREDENTIALS_DIRECTORY */
};

/* --- the source -------------------------------------------------------- */

/* A copy of s, NULL for NULL or empty (which count as unset); *ok false
 * when out of memory. */
static char *copy_set(const char *s, bool *ok)
{
    char *c;

    if (s == NULL || *s == '\0')
        return NULL;
    c = hive__strdup(s);
    *ok = *ok && c != NULL;
    return c;
}

static hive_rc make_source(hive_key_source **out, const char *key, const char *new_key, const char *command,
                           const char *timeout, const char *cred_dir)
{
    hive_key_source *ks = calloc(1, sizeof(*ks));
    bool ok = ks != NULL;

    if (ks != NULL) {
        ks->key = copy_set(key, &ok);
        ks->new_key = copy_set(new_key, &ok);
        ks->command = copy_set(command, &ok);
        ks->timeout = copy_set(timeout, &ok);
        ks->cred_dir = copy_set(cred_dir, &ok);
    }
    if (!ok) {
        hive_key_source_free(&ks);
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    *out = ks;
    return HIVE_OK;
}

hive_rc hive_key_source_from_env(hive_key_source **out)
{
    hive__clear_error();
    if (out == NULL)
        return hive__fail(HIVE_ERR_INVALID, "invalid argument");
    return make_source(out, getenv(HIVE_ENV_KEY), getenv(HIVE_ENV_NEW_KEY), getenv(HIVE_ENV_KEY_COMMAND),
                       getenv(HIVE_ENV_KEY_COMMAND_TIMEOUT), getenv(HIVE_ENV_CREDENTIALS_DIRECTORY));
}

void hive_key_source_free(hive_key_source **ks)
{
    if (ks == NULL || *ks == NULL)
        return;
    hive__free_str((*ks)->key);
    hive__free_str((*ks)->new_key);
    hive__free_str((*ks)->command);
    free((*ks)->timeout);
    free((*ks)->cred_dir);
    free(*ks);
    *ks = NULL;
}

hive_rc fs_copy_source(hive_key_source **out, const hive_key_source *ks)
{
    return make_source(out, ks->key, ks->new_key, ks->command, ks->timeout, ks->cred_dir);
}

/* The storage's sources: given at open (hive_storage_open_from_env gives
 * the environment's), else none: the explicit key, then the key file. */
static hive_rc sources(file_storage *fs, const hive_key_source **out)
{
    if (fs->source == NULL) {
        hive_rc rc = make_source(&fs->source, NULL, NULL, NULL, NULL, NULL);
        if (rc != HIVE_OK)
            return rc;
    }
    *out = fs->source;
    return HIVE_OK;
}

const char *fs_env_new_key(file_storage *fs)
{
    const hive_key_source *ks = NULL;

    return sources(fs, &ks) == HIVE_OK ? ks->new_key : NULL;
}

/* --- the key ----------------------------------------------------------- */

static hive_rc decode_text(uint8_t key[HIVE_FERNET_KEY_BYTES], const char *text, const char *what)
{
    if (hive_fernet_key_decode(key, text, strlen(text)) != HIVE_OK)
        return hive__fail(HIVE_ERR_BAD_KEY, "%s is not a Fernet key (urlsafe base64 of 32 bytes)", what);
    return HIVE_OK;
}

/* Warn once when the key file's directory is open to group or others. */
static void check_secrets_dir(file_storage *fs)
{
    char *dir;
    char *slash;

    if (fs->warn == NULL || (fs->warned & WARN_SECRETS_DIR) != 0)
        return;
    dir = hive__strdup(fs->key_file);
    slash = dir ? strrchr(dir, '/') : NULL;
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        fs_check_path_mode(fs, WARN_SECRETS_DIR, "key directory", dir);
    }
    free(dir);
}

static hive_rc read_key_file(file_storage *fs)
{
    hive_rc rc = hive__key_file_read(fs->key_file, fs->key);

    if (rc == HIVE_ERR_NO_KEY)
        return hive__fail(HIVE_ERR_NO_KEY, "No encryption key: none of " HIVE_ENV_KEY ", " HIVE_ENV_KEY_COMMAND
                          " or a systemd credential " HIVE_SYSTEMD_KEY_NAME " is set, and the key file %s does "
                          "not exist", fs->key_file);
    if (rc == HIVE_OK)
        check_secrets_dir(fs);
    return rc;
}

/* $CREDENTIALS_DIRECTORY/hive-credential-key into *path when it exists
 * (systemd sets the variable for any credential of the service: without
 * this one, the next source is used). */
static hive_rc systemd_path(char **path, const hive_key_source *ks)
{
    struct stat st;
    char *p;

    *path = NULL;
    if (ks->cred_dir == NULL)
        return HIVE_OK;
    p = hive__aprintf("%s/" HIVE_SYSTEMD_KEY_NAME, ks->cred_dir);
    if (p == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (lstat(p, &st) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
        free(p);
        return HIVE_OK;
    }
    *path = p;
    return HIVE_OK;
}

/* Which source is the key, and the key from it; fs->kind and
 * fs->key_desc are set on success. */
static hive_rc load_current(file_storage *fs)
{
    const hive_key_source *ks = NULL;
    char *desc = NULL;
    char *sd = NULL;
    hive_key_kind kind;
    hive_rc rc = sources(fs, &ks);

    if (rc != HIVE_OK)
        return rc;
    if (fs->explicit_key != NULL) {
        kind = HIVE_KEY_GIVEN;
        rc = decode_text(fs->key, fs->explicit_key, "the given encryption key");
        desc = hive__strdup("explicit");
    } else if (ks->key != NULL) {
        kind = HIVE_KEY_ENV;
        rc = decode_text(fs->key, ks->key, HIVE_ENV_KEY);
        desc = hive__strdup(HIVE_ENV_KEY);
    } else if (ks->command != NULL) {
        char *prog = NULL;
        kind = HIVE_KEY_COMMAND;
        rc = hive__key_command_program(&prog, ks->command);
        if (rc == HIVE_OK)
            rc = hive__key_command_run(fs->key, ks->command, ks->timeout);
        desc = prog ? hive__aprintf(HIVE_ENV_KEY_COMMAND " (%s)", prog) : NULL;
        free(prog);
    } else if ((rc = systemd_path(&sd, ks)) == HIVE_OK && sd != NULL) {
        kind = HIVE_KEY_SYSTEMD;
        rc = hive__key_file_read_as(sd, HIVE_KEYFILE_SYSTEMD, fs->key);
        desc = sd;
        sd = NULL;
    } else if (rc == HIVE_OK) {
        kind = HIVE_KEY_FILE;
        rc = read_key_file(fs);
        desc = hive__strdup(fs->key_file);
    } else {
        return rc;
    }
    free(sd);
    if (rc == HIVE_OK && desc == NULL)
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    if (rc != HIVE_OK) {
        hive_memzero(fs->key, sizeof(fs->key));
        free(desc);
        return rc;
    }
    /* set once: callers may hold the text (hive_file_storage_key_source) */
    if (fs->key_desc == NULL) {
        fs->key_desc = desc;
        fs->kind = kind;
    } else {
        free(desc);
    }
    return HIVE_OK;
}

/* The rotation marker's new key file and fingerprint (*file NULL when
 * there is no marker). */
static hive_rc read_marker(const file_storage *fs, char **file, char fp[9])
{
    char *text = NULL;
    size_t len = 0;
    hive_json *doc = NULL;
    const char *f;
    const char *p;
    hive_rc rc = hive__read_at(AT_FDCWD, fs->marker, true, 64 * 1024, "rotation marker", &text, &len);

    *file = NULL;
    if (rc == HIVE_ERR_NOT_FOUND) {
        hive__clear_error();
        return HIVE_OK;
    }
    if (rc == HIVE_OK)
        rc = hive_json_parse(&doc, text, len);
    free(text);
    f = rc == HIVE_OK ? hive_json_string(hive_json_get(doc, "new_key_file"), NULL) : NULL;
    p = rc == HIVE_OK ? hive_json_string(hive_json_get(doc, "fingerprint"), NULL) : NULL;
    if (rc == HIVE_OK && (f == NULL || *f != '/' || p == NULL || strlen(p) != 8))
        rc = hive__fail(HIVE_ERR_FORMAT, "the rotation marker %s is damaged", fs->marker);
    if (rc == HIVE_OK) {
        *file = hive__strdup(f);
        memcpy(fp, p, 9);
        if (*file == NULL)
            rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    }
    hive_json_free(&doc);
    return rc;
}

hive_rc fs_read_marker_key(file_storage *fs, bool strict)
{
    char fp[9];
    char have[9];
    char *file = NULL;
    hive_rc rc = read_marker(fs, &file, fp);

    free(fs->pending_file);
    fs->pending_file = file;
    if (rc != HIVE_OK || file == NULL)
        return strict ? rc : HIVE_OK;
    rc = hive__key_file_read(file, fs->next);
    if (rc == HIVE_OK) {
        hive__key_fingerprint(have, fs->next);
        if (strcmp(have, fp) != 0)
            rc = hive__fail(HIVE_ERR_CONFLICT, "%s holds key %s, not the key %s an interrupted rotation is "
                            "moving to (%s)", file, have, fp, fs->marker);
    } else if (rc == HIVE_ERR_NO_KEY) {
        rc = hive__fail(HIVE_ERR_NO_KEY, "an interrupted rotation (%s) is moving to the key in %s, which does "
                        "not exist: restore it", fs->marker, file);
    } else {
        rc = hive__fail_prefix(rc, "an interrupted rotation is moving to the key in %s, which cannot be read", file);
    }
    fs->have_next = rc == HIVE_OK;
    if (rc != HIVE_OK)
        hive_memzero(fs->next, sizeof(fs->next));
    return strict ? rc : HIVE_OK;
}

/* The key a rotation left half done was moving to, if any. A reader
 * that cannot read the marker's file goes on with the current key: files
 * already under the new one fail alone. */
static hive_rc load_pending(file_storage *fs)
{
    const hive_key_source *ks = NULL;
    hive_rc rc;

    fs->have_next = false;
    if (fs->kind == HIVE_KEY_FILE) {
        rc = hive__key_file_read(fs->next_file, fs->next);
        if (rc == HIVE_OK)
            fs->have_next = true;
        else if (rc != HIVE_ERR_NO_KEY)
            return rc;
        hive__clear_error();
        return HIVE_OK;
    }
    rc = sources(fs, &ks);
    if (rc == HIVE_OK && ks->new_key != NULL) {
        rc = decode_text(fs->next, ks->new_key, HIVE_ENV_NEW_KEY);
        fs->have_next = rc == HIVE_OK;
        /* still read the marker: doctor names its file */
        if (rc == HIVE_OK) {
            char fp[9];
            char *file = NULL;
            if (read_marker(fs, &file, fp) == HIVE_OK) {
                free(fs->pending_file);
                fs->pending_file = file;
            }
        }
        return rc;
    }
    if (rc == HIVE_OK)
        rc = fs_read_marker_key(fs, false);
    return rc;
}

hive_rc fs_load_key(file_storage *fs)
{
    hive_rc rc;

    if (fs->have_key)
        return HIVE_OK;
    rc = load_current(fs);
    if (rc == HIVE_OK)
        rc = load_pending(fs);
    fs->have_key = rc == HIVE_OK;
    if (rc == HIVE_OK)
        hive__clear_error();
    return rc;
}

hive_rc fs_reload_key(file_storage *fs)
{
    hive_rc rc;

    if (!fs->have_key)
        return fs_load_key(fs);
    if (fs->kind != HIVE_KEY_FILE)
        return load_pending(fs);   /* the command is not run again */
    rc = read_key_file(fs);
    if (rc == HIVE_OK)
        rc = load_pending(fs);
    fs->have_key = rc == HIVE_OK;
    return rc;
}

const uint8_t *fs_write_key(const file_storage *fs)
{
    return fs->have_next ? fs->next : fs->key;
}

/* --- what the caller asks ---------------------------------------------- */

const char *hive_file_storage_key_source(hive_storage *s)
{
    file_storage *fs = fs_of(s);
    const char *source;

    hive__clear_error();
    if (fs == NULL)
        return NULL;
    pthread_mutex_lock(&fs->mu);
    source = fs_load_key(fs) == HIVE_OK ? fs->key_desc : NULL;
    pthread_mutex_unlock(&fs->mu);
    return source;
}

hive_key_kind hive_file_storage_key_kind(hive_storage *s)
{
    file_storage *fs = fs_of(s);
    hive_key_kind kind;

    hive__clear_error();
    if (fs == NULL)
        return HIVE_KEY_NONE;
    pthread_mutex_lock(&fs->mu);
    kind = fs_load_key(fs) == HIVE_OK ? fs->kind : HIVE_KEY_NONE;
    pthread_mutex_unlock(&fs->mu);
    return kind;
}

const char *hive_file_storage_pending_key_file(hive_storage *s)
{
    file_storage *fs = fs_of(s);
    struct stat st;

    hive__clear_error();
    if (fs == NULL || fs_load_key(fs) != HIVE_OK)
        return NULL;
    if (fs->kind == HIVE_KEY_FILE)
        return stat(fs->next_file, &st) == 0 ? fs->next_file : NULL;
    return fs->pending_file;
}
