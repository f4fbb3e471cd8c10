/*
 * hive/audit.h - the audit record: an append-only log of JSON lines saying
 * which program received which credentials, and every refresh, login,
 * revocation and failure. Names only: never a value.
 *
 * Each record is one line written with one write() on a file descriptor
 * opened with O_APPEND, so that lines of concurrent writers (many
 * launches at once) never interleave. The log is opened with O_NOFOLLOW,
 * created 0600, and refused when it is not a regular file of the user's
 * or when group or others can reach it (a writable log can be forged).
 *
 * Threads: a hive_audit handle is used by one thread at a time; separate
 * handles (in threads or processes) may write the same log at once.
 * Nothing here reads the environment.
 */
#ifndef HIVE_AUDIT_H
#define HIVE_AUDIT_H

#include "common.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hive_audit hive_audit;

/* The log's name, in HIVE_HOME (beside credentials/ and secrets/). */
#define HIVE_AUDIT_FILE "audit.log"

/*
 * How to open the log. Start from HIVE_AUDIT_OPTIONS_INIT and set what you
 * need: size tells the library which version of the struct the caller was
 * built with (an unknown size is HIVE_ERR_INVALID). Nothing comes from the
 * environment: a tool passes its HIVE_AUDIT as setting and, for a store
 * that is not a directory, the Hive home hive_home_from_env finds.
 */
typedef struct hive_audit_options {
    size_t size;            /* sizeof(hive_audit_options) */
    const char *path;       /* the log; NULL: hive_audit_path(store_dir, home) */
    const char *store_dir;  /* a file store's directory (hive_file_storage_dir), or NULL */
    const char *home;       /* the Hive home (~/.hive), for a store that is no directory; or NULL */
    const char *tool;       /* who writes: "hive-run", "hive-cred", ... */
    const char *command;    /* what it was asked: "run", "get", "login", ... */
    /* The tool's switch (the tools pass HIVE_AUDIT): "off" (or "0", "no",
     * "false") turns the log off; NULL, "", "on" (or "1", "yes", "true")
     * leave it on; anything else is warned about and leaves it on. */
    const char *setting;
    /* Called once per handle, on the first failure to write the log (or a
     * bad setting): the library never prints. NULL: dropped. */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
} hive_audit_options;
#define HIVE_AUDIT_OPTIONS_INIT {sizeof(hive_audit_options), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}

/*
 * Where the log of the file store at store_dir is: DIR/../audit.log, as
 * its key is DIR/../secrets/credential_key; with store_dir NULL (the
 * default store, or a store that is not a directory), home/audit.log
 * (home: the Hive home, as hive_home_from_env finds it for the tools).
 * HIVE_ERR_INVALID when both are NULL. *out is the caller's (free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_audit_path(char **out, const char *store_dir, const char *home);

/*
 * A handle writing records for one run of a tool. Nothing is opened yet:
 * the log is opened (and created) at the first record, and kept open
 * (close-on-exec) until hive_audit_free. When the setting says off, the
 * handle writes nothing; nor when store_dir is given and does not exist,
 * or (store_dir NULL) the home does not: a store that does not exist
 * hands nothing out, and no log is made in what would be its parent.
 * opts NULL: every default. Errors: HIVE_ERR_INVALID for an unknown
 * opts->size, or no path, store_dir or home (unless the setting says off:
 * then nothing is needed). *out is the caller's (hive_audit_free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_audit_open(hive_audit **out, const hive_audit_options *opts);

/* Whether a writes records (false: switched off, or a is NULL). */
HIVE_EXPORT HIVE_NODISCARD bool hive_audit_enabled(const hive_audit *a);

/*
 * Append one record: {"time", "tool", "command", "event", "uid", "pid",
 * "ppid"}, then the members of fields (an object, or NULL), which must
 * hold names, flags and messages, never a value. time is RFC 3339 UTC to
 * the microsecond. On failure the handle's warn is called (the first time
 * only) and the error returned; a NULL or switched-off handle writes
 * nothing and returns HIVE_OK.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_audit_write(hive_audit *a, const char *event, const hive_json *fields);

/*
 * A record about one credential, for the tools and the library's users:
 * event ("login", "revoke", "refresh", "handout", ...), the credential id,
 * the names of the keys concerned (ended by NULL; NULL: none), and error
 * (NULL: it succeeded, "ok": true; else "ok": false and the message, which
 * must hold no value, as hive_last_error's never do).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_audit_event(hive_audit *a, const char *event, const char *id, const char *const *keys,
                                     const char *error);

/* Close the log and free a; *a becomes NULL. */
HIVE_EXPORT void hive_audit_free(hive_audit **a);

#ifdef __cplusplus
}
#endif
#endif
