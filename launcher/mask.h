/*
 * mask.h - hive-run --mask: run the program with its output filtered so
 * that no secret value (nor its base64, base64url, URL or hex encoding)
 * reaches the terminal or the log.
 */
#ifndef HIVE_MASK_H
#define HIVE_MASK_H

#include <stdbool.h>
#include <stddef.h>

#define MASK_MARKER "[masked]"
#define MASK_DEFAULT_MIN 6

/* A set of patterns, matched over a stream. */
typedef struct masker masker;

/* Patterns for each value of at least min_len bytes, and its encodings. */
masker *masker_new(const char *const *values, const size_t *lens, size_t n, size_t min_len);
void masker_free(masker *m);

/* One output stream: bytes in, masked bytes out, with a held-back tail. */
typedef struct mask_stream {
    masker *m;
    char *held;          /* bytes that may still be the start of a secret */
    size_t nheld;
    size_t nsent;        /* how many of them were written already (released on
                          * silence): kept as context, so that a secret printed
                          * slowly is still masked from there on */
    size_t cap;
    int fd;              /* where the masked bytes go */
} mask_stream;

/* Feed n bytes; writes what can be written. */
void mask_feed(mask_stream *s, const char *data, size_t n);
/* Write out the held tail if it is shorter than `below` bytes (below 0:
 * everything, at the end of the stream). */
void mask_release(mask_stream *s, size_t below);

/*
 * Fork and run argv (PATH searched in envp) with its output masked: on a
 * pseudo-terminal of its own when stdout is a terminal, else through
 * pipes. Returns the status to exit with (a program killed by a signal
 * makes this process die of the same signal).
 */
int mask_run(char **argv, char **envp, const char *const *values, const size_t *lens, size_t n,
             size_t min_len, int (*exec_fn)(char **argv, char **envp));

#endif
