/*
 * helpers.h - credential helpers in other tools' own protocols: what
 * hive-cred exec-credential (kubectl), hive-cred aws-credential-process,
 * git-credential-hive and docker-credential-hive share. Each reads the
 * store, refreshing a due credential through its provider first, and
 * prints a secret only on stdout, in the protocol's form.
 */
#ifndef HIVE_HELPERS_H
#define HIVE_HELPERS_H

#include "cli.h"

/* Open the store at dir (NULL: the default); warnings go to stderr. 0 or
 * an exit code (the message printed). */
int helper_open(const char *dir, hive_store **st);

/* Credential id, refreshed first when due (single-flight; a failed
 * refresh fails), and refused (EXIT_SCOPE) when its token lacks a scope
 * that a usage spec naming it requires. 0 or an exit code. */
int helper_load(hive_store *st, const char *id, hive_cred **cred);

/* The command the audit record names ("get", "exec-credential", ...). */
extern const char *helper_command;
/* Note that key's value is handed out, for the audit record. */
void helper_handed(const char *key);
/* Write this run's audit record: the refresh if helper_load refreshed id,
 * then "handout" (the keys noted) when ex is 0, else "failure". */
void helper_audit(hive_store *st, const char *id, int ex);

/* The value of key (NULL: the default key) of cred, which is id; else a
 * message naming the key (never a value) and EXIT_NOT_FOUND. */
int helper_value(const hive_cred *cred, const char *id, const char *key, const char **value,
                 size_t *len);

/* t as RFC 3339 in UTC, whole seconds: 2026-05-01T12:00:00Z. */
void helper_rfc3339(char buf[HIVE_TIME_TEXT], hive_time t);

/*
 * glibc's memcpy, memchr and strlen move data through vector registers,
 * where it stays until something overwrites it, and a core image holds
 * the registers: copy zeros through every size class of memcpy, after a
 * secret went through them.
 */
void helper_scrub_registers(void);

/* doc as compact JSON and a newline on stdout; the text is wiped. */
int helper_print_json(const hive_json *doc);

/* All of stdin (at most max bytes) into *buf, NUL-terminated; release it
 * with cli_free_secret(*buf, *len + 1). 0 or an exit code. */
int helper_read_stdin(const char *what, char **buf, size_t *len, size_t max);

/* Set key of obj to a copy of value; false when out of memory. */
bool helper_set_str(hive_json *obj, const char *key, const char *value, size_t len);

/* Fill doc (an empty object) from cred, which is id: 0, or an exit code
 * after a message. */
typedef int (*helper_build)(hive_json *doc, const hive_cred *cred, const char *id, const void *arg);

/* Load id (refreshed first when due), build the answer and print it as
 * JSON. 0 or an exit code. */
int helper_answer_json(hive_store *st, const char *id, helper_build build, const void *arg);

/* hive-cred exec-credential ID [--key KEY]: a Kubernetes ExecCredential. */
int helper_exec_credential(const char *dir, const char *id, const char *key);

/* hive-cred aws-credential-process ID: the AWS credential_process JSON. */
int helper_aws_credential_process(const char *dir, const char *id);

#endif
