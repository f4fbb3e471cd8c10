/*
 * hive/dotenv.h - .env files, read exactly as python-dotenv's
 * dotenv_values() reads them (which the Python Hive's environment storage
 * calls).
 *
 * Thread safety: these functions share nothing; they may run in several
 * threads at once (the default ${NAME} lookup calls getenv, so not while
 * another thread changes the environment).
 */
#ifndef HIVE_DOTENV_H
#define HIVE_DOTENV_H

#include "common.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* hive_dotenv_options.flags */
#define HIVE_DOTENV_NO_INTERPOLATE 0x1u   /* keep ${NAME} as written */

typedef struct hive_dotenv_options {
    /* sizeof(hive_dotenv_options) as the caller was built: fields past it
     * count as zero, so the struct can grow. */
    size_t size;
    unsigned flags;
    /*
     * The value of ${NAME} when NAME is not set earlier in the file: set
     * *value (not NUL-terminated, *value_len bytes) or leave it NULL for
     * unset. Returning anything but HIVE_OK stops the parse with that
     * error. NULL: the process environment (getenv), as python-dotenv does.
     */
    hive_rc (*lookup)(void *ctx, const char *name, size_t name_len, const char **value,
                      size_t *value_len);
    /* Told about each statement that could not be parsed and was skipped,
     * with the line python-dotenv names in its warning. NULL: not told. */
    void (*skipped)(void *ctx, size_t line);
    void *ctx;
} hive_dotenv_options;
/* Start from this, then set what you need. */
#define HIVE_DOTENV_OPTIONS_INIT {.size = sizeof(hive_dotenv_options)}

/*
 * Parse dotenv text into an object of NAME -> value, as python-dotenv
 * does: strict UTF-8; \r\n and \r end lines; blank lines and '#'
 * comments; an optional "export " prefix; a NAME is any run of characters
 * other than '=', '#' and whitespace (or 'quoted'); "NAME" alone maps to
 * null (python-dotenv's None). Values: unquoted (to the end of the line,
 * a '#' after whitespace starts a comment, trailing whitespace dropped),
 * 'single-quoted' (escapes \\ and \'), or "double-quoted" (escapes \\ \'
 * \" \a \b \f \n \r \t \v); quoted values may span lines. Then ${NAME}
 * and ${NAME:-default} are expanded in every value, from the values set
 * earlier in the file, else the lookup (the environment). A later line
 * wins; a name keeps the place it first had. A statement that cannot be
 * parsed is skipped (opts->skipped is told its line); the text itself is
 * never in a message. Fails only for the whole text: larger than 4 MiB,
 * not UTF-8, values expanding past 16 MiB, out of memory, or a lookup's
 * error. opts may be NULL. *out is the caller's (hive_json_free).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_dotenv_parse_with(hive_json **out, const char *text, size_t len,
                                           const hive_dotenv_options *opts);

/* hive_dotenv_parse_with(out, text, len, NULL). */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_dotenv_parse(hive_json **out, const char *text, size_t len);

/* Read and parse a file; HIVE_ERR_NOT_FOUND when it does not exist. */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_dotenv_load_with(hive_json **out, const char *path, const hive_dotenv_options *opts);
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_dotenv_load(hive_json **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif
