/*
 * hive/storage.h - where credentials live. One interface, several
 * storages; this version has the encrypted file storage of the Hive layout:
 *
 *   <dir>/credentials/<stem>.enc    one Fernet token per credential
 *   <dir>/metadata/index.json       plaintext index (schema 2.0)
 *
 * where <dir> is <home>/credentials, the Hive home being $HIVE_HOME, else
 * ~/.hive, for the tools (hive_storage_open_from_env).
 *
 * Threads: a memory or file storage handle may be used by several threads
 * at once for hive_storage_load, _save, _delete, _exists, _list,
 * hive_file_storage_key_source and _key_kind; everything else on it
 * (hive_storage_free, hive_file_storage_init, _rotate_key,
 * _rotate_key_file, _pending_key_file, _index, hive_storage_prefetch)
 * needs the handle to itself. A hive_key_source may be shared once made. Any other storage (environment, composite,
 * etcd, Aden, one written outside the library): one handle, one thread at
 * a time. Distinct handles share nothing, and processes coordinate
 * through the store's file locks.
 */
#ifndef HIVE_STORAGE_H
#define HIVE_STORAGE_H

#include "common.h"
#include "cred.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hive_storage hive_storage;

/* A list of strings: start from {0}; a function that fills one appends
 * copies the list owns; give it back with hive_strlist_free. */
typedef struct hive_strlist {
    char **items;
    size_t count;
} hive_strlist;

/* Free every string and the array, and clear *list to {0} (so it may be
 * filled again). NULL is fine. */
HIVE_EXPORT void hive_strlist_free(hive_strlist *list);
/* Append a copy of s. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_strlist_add(hive_strlist *list, const char *s);

/* Load credential id. HIVE_ERR_NOT_FOUND when absent; *out is the caller's. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_load(hive_storage *s, hive_cred **out, const char *id);
/* Create or replace the credential, atomically. Waits for a refresh of it
 * under way (the refresh lock), so that the refresh cannot save over it. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_save(hive_storage *s, const hive_cred *cred);
/* Remove id (also waiting for a refresh under way). HIVE_ERR_NOT_FOUND when absent. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_delete(hive_storage *s, const char *id);
/* *found = whether id exists, without decrypting anything. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_exists(hive_storage *s, bool *found, const char *id);
/* All ids, sorted. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_list(hive_storage *s, hive_strlist *out);
/* Close and free; sets *s to NULL. */
HIVE_EXPORT void hive_storage_free(hive_storage **s);

/* --- encrypted file storage ------------------------------------------- */

#define HIVE_ENV_HOME "HIVE_HOME"
#define HIVE_ENV_KEY "HIVE_CREDENTIAL_KEY"
#define HIVE_ENV_NEW_KEY "HIVE_NEW_CREDENTIAL_KEY"
#define HIVE_ENV_KEY_COMMAND "HIVE_CREDENTIAL_KEY_COMMAND"
#define HIVE_ENV_KEY_COMMAND_TIMEOUT "HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT"
/* systemd's directory of a service's credentials (LoadCredential=,
 * LoadCredentialEncrypted=), and the name of the key's credential in it. */
#define HIVE_ENV_CREDENTIALS_DIRECTORY "CREDENTIALS_DIRECTORY"
#define HIVE_SYSTEMD_KEY_NAME "hive-credential-key"

/*
 * Where the store key comes from. The first of these that is configured
 * is the key, and the only one tried:
 *   HIVE_KEY_GIVEN    hive_file_options.key
 *   HIVE_KEY_ENV      HIVE_CREDENTIAL_KEY
 *   HIVE_KEY_COMMAND  the output of HIVE_CREDENTIAL_KEY_COMMAND, a program
 *                     run without a shell (words split as README says),
 *                     for at most HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT
 *                     seconds (default 10)
 *   HIVE_KEY_SYSTEMD  $CREDENTIALS_DIRECTORY/hive-credential-key, when that
 *                     file exists
 *   HIVE_KEY_FILE     the key file
 * A source that is configured but fails (the command fails, the systemd
 * credential is a symlink) is an error, never a fall-through to the next.
 */
typedef enum hive_key_kind {
    HIVE_KEY_NONE = 0,  /* no usable key */
    HIVE_KEY_GIVEN = 1,
    HIVE_KEY_ENV = 2,
    HIVE_KEY_COMMAND = 3,
    HIVE_KEY_SYSTEMD = 4,
    HIVE_KEY_FILE = 5
} hive_key_kind;

/* What the environment says about the key (opaque). */
typedef struct hive_key_source hive_key_source;

/*
 * Read HIVE_CREDENTIAL_KEY, HIVE_NEW_CREDENTIAL_KEY,
 * HIVE_CREDENTIAL_KEY_COMMAND, HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT and
 * CREDENTIALS_DIRECTORY now (an empty value counts as unset), into *out,
 * the caller's (hive_key_source_free). Keys are copied into memory that is
 * wiped on free. Nothing is checked or run yet: a malformed command fails
 * when the key is first needed. The only function of libhive that reads
 * these variables.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_key_source_from_env(hive_key_source **out);
/* Wipe and free *ks; sets *ks to NULL. */
HIVE_EXPORT void hive_key_source_free(hive_key_source **ks);
/* Longest credential id the file storage accepts (bytes). */
#define HIVE_ID_MAX 250

/*
 * How to open a storage (the file storage, and the etcd storage, which
 * keeps Hive's tokens and a local copy). Start from HIVE_FILE_OPTIONS_INIT
 * and set what you need: size tells the library which version of the
 * struct the caller was built with (an unknown size is HIVE_ERR_INVALID).
 * Nothing comes from the environment here; hive_storage_open_from_env
 * fills in what is left unset from HIVE_HOME, HOME, HIVE_ETCD_USER and
 * HIVE_ETCD_PASSWORD, as the tools do.
 */
typedef struct hive_file_options {
    size_t size;          /* sizeof(hive_file_options) */
    /* The store directory; NULL: <home>/credentials. */
    const char *dir;
    /* The key as text; NULL: the sources of key_source, else the key file. */
    const char *key;
    /* The key file; NULL: secrets/credential_key beside dir (so
     * <home>/secrets/credential_key for the default dir). */
    const char *key_file;
    /* Told (once per storage) about store files or directories that group
     * or others can access. NULL: not told. */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
    /* The Hive home (~/.hive): the default dir, and, for etcd, where the
     * local copy (<home>/etcd-cache/) and the key file are. NULL: none
     * (then the file storage needs dir; the etcd storage cannot open). */
    const char *home;
    /* etcd: the user when the URL names none (NULL: none), and its
     * password (needed when there is a user). */
    const char *etcd_user;
    const char *etcd_password;
    /* Where else the key may come from (copied; see hive_key_kind), as
     * hive_key_source_from_env reads it. NULL: no other source - the key
     * is key, else the key file (hive_storage_open_from_env fills it in). */
    const hive_key_source *key_source;
} hive_file_options;
#define HIVE_FILE_OPTIONS_INIT {sizeof(hive_file_options), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}

/*
 * Open the file storage. Nothing is read yet: the key is loaded on first
 * use, so listing and existence checks work without it. The directory need
 * not exist until something is saved (hive_file_storage_init creates it).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_file_storage_open(hive_storage **out, const hive_file_options *opts);

/*
 * Create the layout (0700 directories, an empty 2.0 index) and, when no key
 * is configured, a new key file (0600). *created_key tells whether a key
 * file was written.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_file_storage_init(hive_storage *s, bool *created_key);

/* The store directory (absolute). */
HIVE_EXPORT const char *hive_file_storage_dir(const hive_storage *s);
/* The key file path, whether or not it is used. */
HIVE_EXPORT const char *hive_file_storage_key_file(const hive_storage *s);
/* Where the key comes from, for messages (never the key): "explicit",
 * "HIVE_CREDENTIAL_KEY", "HIVE_CREDENTIAL_KEY_COMMAND (PROGRAM)" (its
 * first word, no arguments), the systemd credential's path, or the key
 * file's path. NULL when there is no key (hive_last_error says why). The
 * key is loaded (the command run) if it was not yet. */
HIVE_EXPORT const char *hive_file_storage_key_source(hive_storage *s);
/* Which source the key comes from; HIVE_KEY_NONE when there is no key
 * (hive_last_error says why). Loads the key as hive_file_storage_key_source. */
HIVE_EXPORT hive_key_kind hive_file_storage_key_kind(hive_storage *s);
/* The file that holds the new key of an interrupted rotation (the key
 * file's .new, or the --new-key-file a rotation of a key kept outside the
 * key file named), when one is pending; else NULL. */
HIVE_EXPORT const char *hive_file_storage_pending_key_file(hive_storage *s);

/*
 * The index's "credentials" object (id -> metadata, no secrets), repaired
 * from the files when missing, damaged or incomplete. *out is the caller's.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_file_storage_index(hive_storage *s, hive_json **out);

/* What a rotation did: filled by the library. Start from
 * HIVE_ROTATION_INIT; an unknown size is refused (HIVE_ERR_INVALID). */
typedef struct hive_rotation {
    size_t size;          /* sizeof(hive_rotation): start from HIVE_ROTATION_INIT */
    size_t total;         /* credential files */
    size_t rotated;       /* re-encrypted by this run */
    size_t already;       /* found under the new key (an earlier, killed run) */
    size_t unreadable;    /* readable with neither key: left as they were */
    bool key_file;        /* the new key went into the key file (else: the caller must
                           * put the new key where the key's source gets it) */
} hive_rotation;
#define HIVE_ROTATION_INIT {.size = sizeof(hive_rotation)}

/*
 * Re-encrypt every credential under a new key, crash-safe:
 *  1. the new key is written to <key file>.new (fsync) - or, for a key kept
 *     in the environment, taken from new_key / HIVE_NEW_CREDENTIAL_KEY, which
 *     is then required;
 *  2. each file is re-encrypted and atomically replaced; readers accept
 *     either key meanwhile, and writers use the new one;
 *  3. the key file is switched by rename.
 * A kill at any instant leaves every credential readable with the old key
 * or the new one; running it again resumes with the same new key. new_key:
 * NULL to generate one (key file) or use HIVE_NEW_CREDENTIAL_KEY. progress
 * (may be NULL) is called as files are done. out (may be NULL): the
 * report, started from HIVE_ROTATION_INIT (another size: HIVE_ERR_INVALID,
 * before anything is done), filled on success.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_file_storage_rotate_key(hive_storage *s, const char *new_key,
                                                 void (*progress)(void *ctx, size_t done, size_t total),
                                                 void *ctx, hive_rotation *out);

/*
 * The same, the new key kept in new_key_file: read from it when it exists
 * (a key file: regular, 0600), else made and written there (0600, never
 * over a file) before any credential is touched. For a key kept outside
 * the key file (HIVE_CREDENTIAL_KEY, the command, systemd), which hive
 * cannot write, the rotation is recorded in metadata/key-rotation.json
 * (new_key_file's path and the key's fingerprint, never the key) until
 * every file is under the new key: meanwhile readers take the new key
 * from new_key_file, and a killed run is finished by running it again
 * (new_key_file NULL, or the same file). Then the caller must put the new
 * key where the source gets it: until then nothing opens.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_file_storage_rotate_key_file(hive_storage *s, const char *new_key_file,
                                                      void (*progress)(void *ctx, size_t done, size_t total),
                                                      void *ctx, hive_rotation *out);

/* The file stem Hive uses for id: '/', '\\' and ".." become '_'. Returns
 * HIVE_ERR_BAD_ID for an id no file can hold. buf holds HIVE_ID_MAX + 1. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_file_stem(char *buf, size_t size, const char *id);

/* --- etcd storage --------------------------------------------------------- */

/*
 * Credentials in etcd (v3 HTTP/JSON gateway):
 *   etcd://[USER@]HOST:PORT[,HOST:PORT...]/PREFIX[?lock_ttl=S&timeout=S&ca_file=PATH
 *                                               &cert_file=PATH&key_file=PATH]
 *   etcds://...   over https (TLS certificates always verified; cert_file and
 *                 key_file for etcd's client-certificate authentication)
 * PREFIX/credentials/<id> holds the same Fernet token as a .enc file.
 * Writes compare-and-swap on the revision last read; refreshes are locked
 * fleet-wide with a lease (lock_ttl, default 60 s). HOST without a port
 * means port 2379. The endpoints are tried in turn, starting with the one
 * that answered last (remembered on disk); a read waits at most 0.4 s on a
 * member while others remain, and after no member answered, reads use the
 * local copy at once for 10 s. The user's password comes from
 * opts->etcd_password (hive_storage_open_from_env: HIVE_ETCD_PASSWORD; a
 * password in the URL is refused, and never repeated); an expired auth
 * token is renewed. etcd:// (plain http) to a
 * host that is not this machine is allowed without a user, with a warning
 * through opts->warn, and refused with one. A local copy,
 * <opts->home>/etcd-cache/<hash of the endpoint set and prefix>/, keeps
 * every credential read or written (rewritten only when its revision
 * changed), and serves reads when etcd is down.
 * The key: opts->key, HIVE_CREDENTIAL_KEY, opts->key_file, or
 * <opts->home>/secrets/credential_key. The URL's syntax: every part is
 * checked (ports 1 to 65535, lock_ttl and timeout plain decimal numbers of
 * seconds, each option once); what is wrong is said by name.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_etcd_storage_open(hive_storage **out, const char *url, const hive_file_options *opts);

/*
 * Read the credentials ids[0..n) ahead, in one request, for the loads that
 * follow (each answer serves one load of its id; at most 64 are held).
 * Only the etcd storage reads ahead; for any other storage, and for ids it
 * cannot read ahead, this does nothing and the loads read as usual. A
 * failure here changes nothing: the loads read again and say why. Not
 * thread-safe with other calls on s.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_prefetch(hive_storage *s, const char *const *ids, size_t n);

/* A storage named by spec: an etcd:// URL, else a directory for the file
 * storage (NULL: <opts->home>/credentials). opts->dir is ignored. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_open(hive_storage **out, const char *spec, const hive_file_options *opts);

/*
 * hive_storage_open as the tools open a storage: what opts (may be NULL)
 * leaves unset comes from the environment - home from $HIVE_HOME, else
 * $HOME/.hive, else the password database's home (none: an error saying
 * "set HIVE_HOME"); etcd_user from HIVE_ETCD_USER, etcd_password from
 * HIVE_ETCD_PASSWORD; key_source from hive_key_source_from_env
 * (HIVE_CREDENTIAL_KEY, HIVE_NEW_CREDENTIAL_KEY, HIVE_CREDENTIAL_KEY_COMMAND,
 * CREDENTIALS_DIRECTORY). The only entry points that read the environment
 * are this one, hive_store_open_from_env, hive_key_source_from_env and
 * hive_home_from_env; the environment storage reads variables by design.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_storage_open_from_env(hive_storage **out, const char *spec,
                                               const hive_file_options *opts);

/*
 * The Hive home as the tools find it: $HIVE_HOME, else $HOME/.hive, else
 * the password database's home/.hive (the home hive_storage_open_from_env
 * uses), for what needs it beside a store (hive_audit_options.home).
 * Whether it exists is not checked. HIVE_ERR_INVALID ("set HIVE_HOME")
 * when no home is known: never a shared default such as /tmp. *out is the
 * caller's (free). Reads the environment: not with setenv in another
 * thread.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_home_from_env(char **out);

/* --- environment storage (read-only) ----------------------------------- */

/*
 * Credentials from environment variables. mapping: NULL, or pairs
 * {id, VARIABLE, id, VARIABLE, ..., NULL}; an unmapped id reads
 * ID_API_KEY (upper-cased, '-' as '_'). dotenv: a .env file read as a
 * second source when a variable is not set or empty (NULL: ".env" in the
 * working directory at the time of the call; "" for none). As Hive's
 * EnvVarStorage does, the file is read again at each lookup (so a running
 * program sees it change), as python-dotenv reads it (hive/dotenv.h:
 * ${VAR} expansion, unparsable statements skipped with a warning); a file
 * that exists but cannot be read or is not UTF-8 is an error. An empty
 * value cannot be loaded but exists (as in Hive). The credential has type
 * api_key and one key, api_key. Saving or deleting fails with
 * HIVE_ERR_READ_ONLY.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_env_storage_open(hive_storage **out, const char *const *mapping,
                                          const char *dotenv);

/* Where the environment storage s reports the .env statements it skipped
 * (NULL: nowhere). Ignored for other storages. */
HIVE_EXPORT void hive_env_storage_set_warn(hive_storage *s, void (*warn)(void *ctx, const char *message),
                                           void *ctx);

/* The variable an id reads (for messages): writes into buf. */
HIVE_EXPORT void hive_env_storage_variable(const hive_storage *s, char *buf, size_t size, const char *id);

/* --- in-memory storage ------------------------------------------------ */

/* An empty storage held in memory (wiped on free). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_memory_storage_new(hive_storage **out);

/* --- composite storage ------------------------------------------------ */

/*
 * Reads take the first storage that has the id (primary, then the
 * fallbacks in order); writes and deletes go to the primary; exists is
 * true if any has it; list is the union without duplicates. Takes
 * ownership of primary and of the n fallbacks, also on failure.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_composite_storage_new(hive_storage **out, hive_storage *primary,
                                               hive_storage *const *fallbacks, size_t n);

#ifdef __cplusplus
}
#endif
#endif
