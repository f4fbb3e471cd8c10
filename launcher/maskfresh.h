/*
 * maskfresh.h - hive-run --fresh --mask: the values the refresher
 * publishes in the snapshot (preload/snapshot.h), each value once, for the
 * masker to add to what it masks before it lets out more of the
 * program's output.
 *
 * Why checking on receipt of output is enough: a program can print a new
 * value only after its getenv() read it from the snapshot, so only after
 * the refresher published it (its store of the variable's offset, release
 * order, which the preload loads with acquire order). The program's write
 * and our read of the same pipe or pty order our next load of that offset
 * after the program's, so a follow_poll() called after each read sees the
 * value or a later one; from a later one the chain of earlier values
 * (each block of the ring starts with the offset of the value it
 * replaced) leads back to every value published since the last poll,
 * also those replaced again before any output came. The tail a stream
 * holds back (bytes that could begin a secret) is searched again with the
 * new values together with what follows (mask_stream_rebind); what went
 * out before was read before the value was published, so it holds no byte
 * of the value printed as such (the program had not read it yet).
 *
 * One thread; nothing is shared.
 */
#ifndef HIVE_MASKFRESH_H
#define HIVE_MASKFRESH_H

#include <stdbool.h>
#include <stddef.h>

/* Values to mask, each a copy that mask_values_free wipes. */
typedef struct mask_values {
    char **v;
    size_t *len;
    size_t n;
} mask_values;

/* Add a copy of v (unless it is there already); false when out of memory. */
bool mask_values_add(mask_values *mv, const char *v, size_t len);
void mask_values_free(mask_values *mv);

/* A variable of the snapshot: its name and the template it is rendered
 * from (whose credential values are masked on their own too). */
typedef struct mask_fresh_var {
    const char *name;
    const char *tmpl;
} mask_fresh_var;

typedef struct mask_follow mask_follow;

/*
 * Follow the snapshot open (read-only) at fd, whose variables are among
 * vars[0..n) (by name; the strings must outlive the follower). NULL, with
 * errno, when it cannot be mapped or is no snapshot of ours.
 */
mask_follow *mask_follow_new(int fd, const mask_fresh_var *vars, size_t n);

/*
 * Add to mv every value published since the last call (all of them the
 * first time), each whole and, split by its variable's template, each
 * credential value in it. 1 when it added any, 0 when there was none, -1
 * when out of memory.
 */
int mask_follow_poll(mask_follow *f, mask_values *mv);

void mask_follow_free(mask_follow *f);

#endif
