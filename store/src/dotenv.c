/*
 * dotenv.c - .env files, as python-dotenv and docker read them.
 */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DOTENV (4u * 1024 * 1024)

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '.';
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static hive_rc bad_line(size_t line, const char *why)
{
    return hive__fail(HIVE_ERR_INVALID, "dotenv line %zu: %s", line, why);
}

hive_rc hive_dotenv_parse(hive_json **out, const char *text, size_t len)
{
    const char *p = text;
    const char *end = text + len;
    size_t line = 1;
    hive_json *obj;
    hive_rc rc = HIVE_OK;

    if (len > MAX_DOTENV)
        return hive__fail(HIVE_ERR_TOO_LARGE, "dotenv file larger than %u bytes", MAX_DOTENV);
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    obj = hive_json_new(HIVE_JSON_OBJECT);
    if (obj == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    while (p < end && rc == HIVE_OK) {
        const char *name;
        size_t name_len;
        hive_buf val = {0};
        size_t start_line = line;
        char key[256];

        while (p < end && (blank(*p) || *p == '\r'))
            p++;
        if (p >= end)
            break;
        if (*p == '\n') {
            p++;
            line++;
            continue;
        }
        if (*p == '#') {
            while (p < end && *p != '\n')
                p++;
            continue;
        }
        if (end - p > 7 && memcmp(p, "export", 6) == 0 && blank(p[6])) {
            p += 6;
            while (p < end && blank(*p))
                p++;
        }
        name = p;
        if (p >= end || !name_start(*p)) {
            rc = bad_line(line, "expected NAME=VALUE");
            break;
        }
        while (p < end && name_char(*p))
            p++;
        name_len = (size_t)(p - name);
        while (p < end && blank(*p))
            p++;
        if (p >= end || *p != '=' || name_len >= sizeof(key)) {
            rc = bad_line(line, "expected NAME=VALUE");
            break;
        }
        memcpy(key, name, name_len);
        key[name_len] = '\0';
        p++;
        while (p < end && blank(*p))
            p++;
        if (p < end && (*p == '"' || *p == '\'')) {
            char q = *p++;
            bool closed = false;
            while (p < end) {
                char c = *p++;
                if (c == q) {
                    closed = true;
                    break;
                }
                if (c == '\n')
                    line++;
                if (c == '\\' && q == '"' && p < end) {
                    char e = *p++;
                    switch (e) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case '\\': case '"': case '\'': case '$': c = e; break;
                    default:
                        hive__buf_putc(&val, '\\');
                        c = e;
                        if (e == '\n')
                            line++;
                        break;
                    }
                }
                hive__buf_putc(&val, c);
            }
            if (!closed) {
                hive__buf_free(&val);
                rc = bad_line(start_line, "unterminated quoted value");
                break;
            }
            while (p < end && (blank(*p) || *p == '\r'))
                p++;
            if (p < end && *p == '#')
                while (p < end && *p != '\n')
                    p++;
            if (p < end && *p != '\n') {
                hive__buf_free(&val);
                rc = bad_line(start_line, "text after the closing quote");
                break;
            }
        } else {
            const char *v = p;
            const char *vend;
            while (p < end && *p != '\n') {
                if (*p == '#' && p > v && blank(p[-1]))
                    break;
                p++;
            }
            vend = p;
            while (p < end && *p != '\n')
                p++;
            while (vend > v && (blank(vend[-1]) || vend[-1] == '\r'))
                vend--;
            hive__buf_append(&val, v, (size_t)(vend - v));
        }
        {
            char *s = NULL;
            size_t slen = 0;
            rc = hive__buf_finish(&val, &s, &slen);
            if (rc == HIVE_OK) {
                rc = hive_json_set(obj, key, hive_json_new_string(s, slen));
                hive_free_secret(s, slen + 1);
            }
        }
    }
    if (rc != HIVE_OK) {
        hive_json_free(&obj);
        return rc;
    }
    *out = obj;
    return HIVE_OK;
}

hive_rc hive_dotenv_load(hive_json **out, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    hive_rc rc = hive__read_at(AT_FDCWD, path, false, MAX_DOTENV, "dotenv file", &buf, &len);

    if (rc == HIVE_ERR_NOT_FOUND)
        return hive__fail(HIVE_ERR_NOT_FOUND, "%s does not exist", path);
    if (rc != HIVE_OK)
        return rc;
    rc = hive_dotenv_parse(out, buf, len);
    hive_free_secret(buf, len + 1);
    if (rc != HIVE_OK && rc != HIVE_ERR_NOMEM)
        return hive__fail_prefix(rc, "%s", path);
    return rc;
}
