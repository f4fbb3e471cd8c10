/*
 * cli.h - what hive-cred and hive-run share: messages, exit codes, the
 * process hardening, reading secrets from stdin.
 */
#ifndef HIVE_CLI_H
#define HIVE_CLI_H

#include <hive/hive.h>
#include <stdio.h>

/* hive-cred's exit codes (documented in --help and the README). */
enum {
    EXIT_NO = 1,          /* a negative answer: exists is false, validate found problems */
    EXIT_USAGE = 2,       /* bad command line or input */
    EXIT_NOT_FOUND = 3,   /* no such credential or key */
    EXIT_KEY = 4,         /* no encryption key, or not a Fernet key */
    EXIT_DECRYPT = 5,     /* a credential cannot be decrypted or parsed */
    EXIT_STORE = 6,       /* file system, permission, lock or conflict error */
    EXIT_REFRESH = 7,     /* a refresh failed or is impossible */
    EXIT_SCOPE = 8        /* the token lacks a scope a usage spec requires */
};

extern const char *cli_prog;

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Called with the text of every cli_error (hive-run: the audit record's
 * failure); NULL: none. */
extern void (*cli_error_hook)(const char *text);
void cli_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print hive_last_error() and the hint that fits rc; return the exit code. */
int cli_fail(hive_rc rc);
int cli_exit_code(hive_rc rc);
/* The hint for an error of hive_dotenv_load (not UTF-8, too large, the
 * file missing), if there is one; false when msg is not one of those. */
bool cli_hint_dotenv(const char *msg);

/* Print v as JSON (indent 2) and a newline on stdout. */
hive_rc cli_print_json(const hive_json *v);

/* No core dumps, no ptrace attach, umask 077. */
void cli_harden(void);

/* Wipe n bytes at p and free it (NULL is fine): for the tools' own
 * buffers; what the library hands over is a hive_secret. */
void cli_free_secret(void *p, size_t n);
/* cli_free_secret for a NUL-terminated string. */
void cli_free_str(char *s);

/* Read all of fd into a wiped-on-free buffer, at most max bytes. */
int cli_read_all(int fd, char **out, size_t *len, size_t max);

/* The audit log for this run of cli_prog's command, beside the file store
 * at store_dir (NULL: in the Hive home, hive_home_from_env), switched by
 * HIVE_AUDIT; a failure to write it is warned about once and stops
 * nothing. NULL when it cannot be opened (said; nothing is recorded). */
hive_audit *cli_audit_open(const char *store_dir, const char *command);
/* Where cli_audit_open's log is, into *out (free); else the error said
 * (cli_fail) and its exit status. */
int cli_audit_path(char **out, const char *store_dir);

/* Audit records are best-effort: a handle reports its first failure
 * through its warn callback, so the caller has nothing more to do. */
#define CLI_AUDIT(call)                                                                  \
    do {                                                                                 \
        if ((call) != HIVE_OK) { /* reported once by the handle */                       \
        }                                                                                \
    } while (0)

/* The hint after hive_store_check_scopes' message about credential id;
 * recorded: whether it has a scope record. */
void cli_scope_hint(const char *id, bool recorded);

/* Read one line from the terminal with echo off (echo on when echo). */
int cli_prompt(const char *prompt, bool echo, char *buf, size_t size);

/* The one PATH walker: the next file a search for name tries in the
 * colon-separated list at *cursor ("dir/name", or "name" for an empty
 * entry, as execvp), into out; *cursor starts at the list and is moved
 * on. False at the end of the list. An entry too long for out is passed. */
#define CLI_DEFAULT_PATH "/usr/local/bin:/bin:/usr/bin"
bool cli_path_next(const char **cursor, const char *name, char *out, size_t size);

/* The value of NAME in envp ("NAME=value" entries), or NULL. */
const char *cli_env_value(char *const *envp, const char *name);

/* The number of a signal named "HUP", "SIGHUP" or "hup"; 0 when it is
 * none of those that may be sent to a program (see cli.c). */
int cli_signal_number(const char *name);
/* "HUP" for SIGHUP; "?" for one not in the table. Static text. */
const char *cli_signal_name(int sig);

/* The exit status for a child's wait status, after the 128+N convention;
 * for a child that died of a signal, this process dies of it too (with no
 * core of its own), so that its parent sees what happened. */
int cli_exit_like(int status);

/* The environment without the store's and remotes' secrets
 * (HIVE_CREDENTIAL_KEY, HIVE_NEW_CREDENTIAL_KEY, HIVE_ETCD_PASSWORD,
 * ADEN_API_KEY), for a program hive starts on the side (a browser): an
 * array of environ's strings (free the array only), or NULL. */
char **cli_env_without_secrets(void);

#endif
