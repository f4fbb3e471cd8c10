/*
 * filestore_int.h - the file storage's insides, shared by its files:
 * fsbase.c (knowing a file storage, names, directories, the lock),
 * credfile.c (reading one credential file), keys.c (where the key comes
 * from), rotate.c (key rotation), index.c (the index, a cache of
 * metadata) and filestore.c (the storage: reading, writing, open, init),
 * each calling only those listed before it.
 */
#ifndef HIVE_FILESTORE_INT_H
#define HIVE_FILESTORE_INT_H

#include "fileio.h"

#include <pthread.h>
#include <sys/stat.h>

#define CRED_DIR "credentials"
#define META_DIR "metadata"
#define INDEX_FILE "index.json"
#define LOCK_FILE ".lock"
#define ENC_SUFFIX ".enc"
#define MAX_FILE (64u * 1024 * 1024)
/* The rotation of a key kept outside the key file, under META_DIR. */
#define ROTATION_MARKER "key-rotation.json"

typedef struct file_storage {
    hive_storage base;
    char *dir;              /* absolute store directory */
    char *key_file;
    char *explicit_key;     /* wiped on free */
    hive_key_source *source;/* given at open (a copy), else read from the environment when needed */
    hive_key_kind kind;     /* set once the key is loaded, */
    char *key_desc;         /* with hive_file_storage_key_source's text */
    bool have_key;
    uint8_t key[HIVE_FERNET_KEY_BYTES];
    /* A key rotation in progress (secrets/credential_key.new; for a key
     * kept outside the key file HIVE_NEW_CREDENTIAL_KEY, else the file the
     * rotation marker names): files may be under either key; new writes
     * use this one. */
    bool have_next;
    uint8_t next[HIVE_FERNET_KEY_BYTES];
    char *next_file;
    char *marker;           /* <dir>/metadata/key-rotation.json */
    char *pending_file;     /* the new key file the marker names, when there is one */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    unsigned warned;        /* WARN_* said already */
    bool key_failed;        /* the last fs_read_cred failed on the key, not the file */
    /* Guards the key state above (key, next, have_*, key_source,
     * key_failed, warned): one handle may serve several threads. Held by
     * each storage operation (locked_* in filestore.c), never across the
     * refresh lock, which a thread holds between operations. */
    pthread_mutex_t mu;
} file_storage;

/* What has been found open to group or others: each is said once. */
enum {
    WARN_STORE_DIR = 1,     /* the store directory */
    WARN_CRED_DIR = 2,      /* its credentials/ */
    WARN_CRED_FILE = 4,     /* a credential file (the first one found) */
    WARN_SECRETS_DIR = 8    /* the key file's directory */
};

/* The store's directories, open, with its lock held. */
typedef struct locked {
    int base;
    int cred;
    int meta;
    int lock;
} locked;

/* --- fsbase.c ---------------------------------------------------------- */

/* The file storage's ops name (its identity for fs_of). */
extern const char hive__file_storage_name[];
/* s as a file storage; NULL when it is another kind. */
file_storage *fs_of(const hive_storage *s);
/* Say once (per `which`) that what (at path, stat st) is open to group or
 * others, and the chmod that closes it. */
void fs_check_mode(file_storage *fs, unsigned which, const struct stat *st, const char *what, const char *path);
/* Say once (per `which`) that path is open to group or others. */
void fs_check_path_mode(file_storage *fs, unsigned which, const char *what, const char *path);
/* The file name (<stem>.enc) of id. */
hive_rc fs_enc_name(char *buf, size_t size, const char *id);
/* Names of the .enc files in dirfd, sorted. */
hive_rc fs_scan_enc(int dirfd, hive_strlist *out);
/* A file of the store: never through a symlink, at most MAX_FILE bytes. */
hive_rc fs_read_at(int dirfd, const char *name, const char *what, char **data, size_t *len);
/* Open the store directory, and one of its subdirectories (never through
 * a symlink); create: make what is missing, 0700. */
hive_rc fs_open_base(file_storage *fs, int *fd, bool create);
hive_rc fs_open_sub(file_storage *fs, int base, const char *name, int *fd, bool create);
/* Open the directories and take the store lock; then remove what killed
 * writers left. */
hive_rc fs_lock_all(file_storage *fs, locked *l, bool create);
void fs_unlock_all(locked *l);
/* --- credfile.c -------------------------------------------------------- */

/* Decrypt and parse the file `name` under credfd. On failure the detail is
 * the bare cause; callers add "Failed to decrypt credential 'ID'". */
hive_rc fs_read_cred(file_storage *fs, int credfd, const char *name, hive_cred **out);

/* --- keys.c ---------------------------------------------------------- */

/* Load the key (and the pending one of a rotation) once. */
hive_rc fs_load_key(file_storage *fs);
/* Under the store lock: read the key files again, since a rotation in
 * another process may have switched them. */
hive_rc fs_reload_key(file_storage *fs);
/* The key new tokens are written with. */
const uint8_t *fs_write_key(const file_storage *fs);
/* HIVE_NEW_CREDENTIAL_KEY, as the storage's source has it (NULL: unset). */
const char *fs_env_new_key(file_storage *fs);
/* A copy of a key source. */
hive_rc fs_copy_source(hive_key_source **out, const hive_key_source *ks);
/* Read the rotation marker and the key its file holds into fs->next
 * (fs->pending_file: the file, or NULL without a marker). strict: a file
 * that cannot be read, or holds another key, is an error (else the
 * rotation's readers go on without it). */
hive_rc fs_read_marker_key(file_storage *fs, bool strict);

/* --- index.c --------------------------------------------------------- */

typedef enum index_state {
    INDEX_OK,        /* schema 2.0, well formed */
    INDEX_MISSING,
    INDEX_DAMAGED,   /* unreadable or not an index */
    INDEX_OLD        /* readable, but schema 1.0 or unknown: rewrite as 2.0 */
} index_state;

/* The 2.0 index entry Hive writes for cred. */
hive_rc index_entry(hive_json **out, const hive_cred *cred);
/* Read the index. *out is set (the parsed document) for OK and OLD. */
index_state index_read(int metafd, hive_json **out);
/* The id the index lists for a file name, if any (NULL). */
const char *index_id_for(const hive_json *creds, const char *name);
/* Write doc as the index, with Hive's trailer fields. */
hive_rc index_write(file_storage *fs, int metafd, hive_json *doc);
/* With the lock held: read the index, rebuild it if needed, apply one
 * change (put: entry for id, taken; NULL to remove id; id NULL: none),
 * write it. */
hive_rc index_update(file_storage *fs, int credfd, int metafd, const char *id, hive_json *put,
                     bool force_rebuild);
/* The index's credentials, repaired from the files when needed;
 * *unindexed (may be NULL) gets the files no readable credential explains. */
hive_rc index_current(file_storage *fs, hive_json **out, hive_strlist *unindexed);

#endif
