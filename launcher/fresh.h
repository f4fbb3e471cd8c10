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

/* Why the preload cannot reach the program at path (static, set-ID, file
 * capabilities, Go), or NULL when it can (or cannot tell). */
const char *fresh_unreachable(const char *path, int depth);

/* Create the snapshot holding the launch values; returns its fd (to be
 * inherited by the program), or -1 with errno. */
int fresh_create(const fresh_var *vars, size_t n);

/* Start the refresher for the process that is about to exec the program
 * (this one). It ends when the program ends. 0 on success. */
int fresh_start_refresher(const char *store_dir, const fresh_var *vars, size_t n, int margin, int snap_fd);

#endif
