/*
 * keycmd.h - the store key from a command (HIVE_CREDENTIAL_KEY_COMMAND).
 *
 * The command is split into words as a shell would split simple words,
 * and nothing more: blanks separate words; '...' keeps everything inside;
 * "..." keeps everything inside but \" and \\; a \ outside quotes keeps
 * the next character. No variable, no ~, no glob, no pipe: an unquoted
 * | & ; < > ( ) $ or ` is refused rather than passed as an argument.
 */
#ifndef HIVE_KEYCMD_H
#define HIVE_KEYCMD_H

#include "internal.h"

/* command's words, NULL-terminated, into *argv (free with
 * hive__key_command_free). HIVE_ERR_INVALID, naming the fault, for a
 * quote not closed, an operator, or no word. */
hive_rc hive__key_command_split(char ***argv, const char *command);
void hive__key_command_free(char ***argv);

/* The time limit HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT's text gives (NULL:
 * 10 s): seconds, more than 0, at most 3600. */
hive_rc hive__key_command_timeout(double *seconds, const char *text);

/* command's first word (the program), for messages; *prog is the caller's. */
hive_rc hive__key_command_program(char **prog, const char *command);

/*
 * Run command and take its output as the key: stdin /dev/null, stderr
 * the caller's, its own process group, killed (the group) at the time
 * limit. Trailing white space is dropped; what remains must be base64
 * alone and a Fernet key. HIVE_ERR_NO_KEY when it cannot run, fails, is
 * killed, times out or prints nothing; HIVE_ERR_BAD_KEY when it prints
 * something else than a key (never repeated in the message).
 */
hive_rc hive__key_command_run(uint8_t key[HIVE_FERNET_KEY_BYTES], const char *command, const char *timeout);

#endif
