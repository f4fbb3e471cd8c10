/*
 * hive/dotenv.h - .env files.
 */
#ifndef HIVE_DOTENV_H
#define HIVE_DOTENV_H

#include "common.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse dotenv text into an object of NAME -> value strings (a later line
 * wins). Syntax: blank lines and '#' comments; an optional "export "
 * prefix; NAME = [A-Za-z_][A-Za-z0-9_.]*; whitespace around '='; values
 * unquoted (trimmed, " #" starts a comment), 'single-quoted' (literal), or
 * "double-quoted" (may span lines; escapes \n \r \t \\ \" \' \$). A line
 * that is not one of these is an error naming its line number, never its
 * text. *out is the caller's (hive_json_free).
 */
HIVE_EXPORT hive_rc hive_dotenv_parse(hive_json **out, const char *text, size_t len);

/* Read and parse a file; HIVE_ERR_NOT_FOUND when it does not exist. */
HIVE_EXPORT hive_rc hive_dotenv_load(hive_json **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif
