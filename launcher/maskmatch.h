/*
 * maskmatch.h - the matcher of hive-run --mask: a set of secrets (each
 * value, and its base64, base64url, hex and URL encodings) and a stream
 * filter that replaces them by MASK_MARKER in bytes fed to it in any
 * chunks. Pure: no I/O; masked bytes go to a sink the caller gives.
 *
 * A masker is read-only once made and may be shared by several streams
 * (and threads); a stream is one thread's at a time.
 */
#ifndef HIVE_MASKMATCH_H
#define HIVE_MASKMATCH_H

#include <stdbool.h>
#include <stddef.h>

#define MASK_MARKER "[masked]"

/* A set of patterns. */
typedef struct masker masker;

/*
 * Patterns for each of the n values of at least min_len bytes (min_len
 * is raised to 4), and its encodings. NULL when out of memory. The
 * values are copied; masker_free wipes the copies.
 */
masker *masker_new(const char *const *values, const size_t *lens, size_t n, size_t min_len);
void masker_free(masker *m);

/* Where a stream's masked bytes go (called with n > 0). */
typedef void (*mask_sink)(void *ctx, const char *bytes, size_t n);

/*
 * One output stream. Every occurrence of every pattern is masked; where
 * occurrences overlap, their union is one MASK_MARKER (occurrences that
 * only touch get one each). A tail that could still be the start of an
 * occurrence is held back until more bytes, or mask_finish, settle it.
 * The fields are read by the caller (to decide when to release), never
 * written.
 */
typedef struct mask_stream {
    const masker *m;
    mask_sink sink;
    void *ctx;
    char *held;          /* bytes that may still be the start of a secret */
    size_t nheld;
    size_t nsent;        /* how many of them were written already (released on
                          * silence): kept as context, so that a secret printed
                          * slowly is still masked from there on */
    size_t covered;      /* how many of them lie in the masked run still open */
    bool marked;         /* the last byte written was masked, in that run */
    char *work;          /* scratch: the held tail and the start of a chunk */
    size_t cap;          /* of held; work has twice that */
} mask_stream;

/* Start a stream over m writing to sink(ctx, ...); false when out of
 * memory. */
bool mask_stream_init(mask_stream *s, const masker *m, mask_sink sink, void *ctx);
/*
 * Go on over m instead (a masker with more values: --fresh published new
 * ones), keeping the held tail, which is searched again with what comes
 * next, under m's patterns too. false when out of memory (then the stream
 * is as it was). The caller frees the old masker once no stream uses it.
 */
bool mask_stream_rebind(mask_stream *s, const masker *m);
/* Feed n bytes; writes what is settled. */
void mask_feed(mask_stream *s, const char *data, size_t n);
/* On silence: write the held tail (minus what is known to be masked) if
 * it is shorter than `below` bytes; it stays held as context. */
void mask_release(mask_stream *s, size_t below);
/* The end of the stream: settle and write the held tail (masking what
 * is a whole secret there), then wipe and free the stream's buffers. */
void mask_finish(mask_stream *s);

#endif
