/*
 * fresh.h - hive-run --fresh (see fresh.c).
 */
#ifndef HIVE_FRESH_H
#define HIVE_FRESH_H

#include "cli.h"

typedef struct fresh_var {
    const char *name;
    const char *tmpl;
    const char *value;
    size_t len;
} fresh_var;

/* Why the preload cannot reach the program at path, run with argv and the
 * PATH search (NULL: unset), or NULL when it can (or cannot tell): static,
 * set-ID, file capabilities, Go; a script is judged by its interpreter,
 * and env(1), as interpreter or as the program, by what it runs. The
 * text is static. */
const char *fresh_unreachable(const char *path, char *const *argv, const char *search);

/* The file a command name runs: itself when it has a slash (and exists),
 * else the first executable of that name in the PATH list search. */
bool fresh_which(char *out, size_t size, const char *name, const char *search);

/* Create the snapshot holding the launch values, sealed so that only this
 * process's mapping of it (which the refresher inherits) can write it.
 * Returns a read-only descriptor of it for the program (inherited across
 * exec), or -1 with errno (ENOSYS: the kernel cannot seal it so). */
int fresh_create(const fresh_var *vars, size_t n);

/* Undo fresh_create when the program will not run with it. */
void fresh_discard(int fd);

/* The descriptor fresh_create returned (its snapshot is in use), or -1. */
int fresh_snapshot_fd(void);

/* Start the refresher for the process that is about to exec the program
 * (this one). It ends when the program ends (letting a refresh in flight
 * finish first). 0 on success. */
int fresh_start_refresher(const char *store_dir, const fresh_var *vars, size_t n, int margin);

#endif
