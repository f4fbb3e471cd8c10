/*
 * etcdurl.c - the etcd storage's URL (etcdurl.h), parsed strictly: every
 * part is checked, and a number is all digits or it is an error.
 */
#include "etcdurl.h"
#include "http.h"

#include <stdlib.h>
#include <string.h>

#define FORM "an etcd store is etcd://HOST:PORT[,HOST:PORT]/PREFIX"

void hive__etcd_url_free(hive__etcd_url *u)
{
    if (u->user != NULL)
        hive__free_secret(u->user, strlen(u->user) + 1);
    for (size_t i = 0; i < u->nendpoints; i++)
        free(u->endpoints[i]);
    free(u->prefix);
    free(u->ca_file);
    free(u->cert_file);
    free(u->key_file);
    memset(u, 0, sizeof(*u));
}

/* Whether s[0..n) is digits with at most one '.' between digits: what a
 * setting in a URL may hold (strtod would also take spaces, signs, hex,
 * exponents, "inf" and "nan"). */
static bool plain_decimal(const char *s, size_t n)
{
    size_t digits = 0;
    size_t dots = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else if (s[i] == '.' && i > 0 && i + 1 < n && dots++ == 0)
            continue;
        else
            return false;
    }
    return digits > 0;
}

/* value (n bytes, read whole: 600 zeros and a 5 are five) as seconds in
 * [min, max]. */
static hive_rc seconds(double *out, const char *name, const char *value, size_t n, double min, double max)
{
    char *text;
    double v = 0;
    bool ok;

    if (!plain_decimal(value, n))
        return hive__fail(HIVE_ERR_INVALID, "etcd store option %s='%.*s%s' is not a number of seconds "
                          "(digits, with at most one '.')", name, (int)(n < 40 ? n : 40), value,
                          n > 40 ? "..." : "");
    text = hive__strndup(value, n);
    if (text == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    ok = hive__parse_seconds(&v, text, max) && v >= min;
    free(text);
    if (!ok)
        return hive__fail(HIVE_ERR_INVALID, "etcd store option %s=%.*s%s is out of range (%g to %g seconds)",
                          name, (int)(n < 40 ? n : 40), value, n > 40 ? "..." : "", min, max);
    *out = v;
    return HIVE_OK;
}

/* HOST[:PORT] (HOST may be [IPv6]) with a port of 1 to 65535 if given. */
static hive_rc endpoint(hive__etcd_url *u, const char *h, size_t n)
{
    const char *close = memchr(h, ']', n);
    const char *colon = NULL;
    size_t host_len = n;
    char *text;

    if (n == 0)
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL lists an empty host (" FORM ")");
    if (u->nendpoints == HIVE__ETCD_MAX_ENDPOINTS)
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL lists more than %d hosts", HIVE__ETCD_MAX_ENDPOINTS);
    if (h[0] == '[' && close == NULL)
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL has an IPv6 address without its closing ']'");
    for (const char *p = close ? close : h; p < h + n; p++)
        if (*p == ':')
            colon = p;
    if (close != NULL && colon == NULL && close != h + n - 1)
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL has text after an IPv6 address's ']' that is not :PORT");
    if (colon != NULL) {
        size_t plen = (size_t)(h + n - colon - 1);
        long port = 0;
        host_len = (size_t)(colon - h);
        for (size_t i = 0; i < plen && port <= 65535; i++)
            port = colon[1 + i] >= '0' && colon[1 + i] <= '9' ? port * 10 + (colon[1 + i] - '0') : 70000;
        if (plen == 0 || plen > 5 || port < 1 || port > 65535)
            return hive__fail(HIVE_ERR_INVALID, "an etcd URL has the port '%.*s' (expected 1 to 65535)",
                              (int)(plen < 16 ? plen : 16), colon + 1);
    }
    if (host_len == 0 || (close != NULL && host_len <= 2))
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL lists a port without a host (" FORM ")");
    for (size_t i = 0; i < host_len; i++)
        if (h[i] == '/' || h[i] == '?' || h[i] == '@' || h[i] == ' ' || (unsigned char)h[i] < 0x21 ||
            (unsigned char)h[i] > 0x7e)
            return hive__fail(HIVE_ERR_INVALID, "an etcd URL has a host with a character a host name cannot hold");
    text = colon != NULL ? hive__strndup(h, n) : hive__aprintf("%.*s:" HIVE__ETCD_DEFAULT_PORT, (int)n, h);
    if (text == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    u->endpoints[u->nendpoints++] = text;
    if (!u->tls) {
        char *probe = hive__aprintf("http://%s/", text);
        u->plain_remote = u->plain_remote || probe == NULL || !hive__url_allowed(probe);
        free(probe);
    }
    return HIVE_OK;
}

/* A path option: non-empty, given once. */
static hive_rc path_option(char **slot, const char *name, const char *value, size_t n)
{
    if (*slot != NULL)
        return hive__fail(HIVE_ERR_INVALID, "etcd store option %s is given twice", name);
    if (n == 0)
        return hive__fail(HIVE_ERR_INVALID, "etcd store option %s= is empty (a path is needed)", name);
    *slot = hive__strndup(value, n);   /* whole: a path is as long as it is */
    return *slot != NULL ? HIVE_OK : hive__fail(HIVE_ERR_NOMEM, "out of memory");
}

static hive_rc option(hive__etcd_url *u, const char *o, size_t n, unsigned *seen)
{
    const char *eq = memchr(o, '=', n);
    size_t klen = eq ? (size_t)(eq - o) : n;
    const char *v = eq ? eq + 1 : o + n;
    size_t vlen = eq ? n - klen - 1 : 0;
    double sec = 0;
    hive_rc rc;

#define IS(name) (klen == strlen(name) && memcmp(o, name, klen) == 0)
    if (eq == NULL && n > 0 && (IS("lock_ttl") || IS("timeout") || IS("ca_file") || IS("cert_file") ||
                                IS("key_file")))
        return hive__fail(HIVE_ERR_INVALID, "etcd store option %.*s has no value (%.*s=...)", (int)klen, o,
                          (int)klen, o);
    if (IS("lock_ttl") || IS("timeout")) {
        unsigned bit = IS("lock_ttl") ? 1u : 2u;
        if (*seen & bit)
            return hive__fail(HIVE_ERR_INVALID, "etcd store option %.*s is given twice", (int)klen, o);
        *seen |= bit;
        if (bit == 1u) {
            rc = seconds(&sec, "lock_ttl", v, vlen, 2, 86400);
            u->lock_ttl = (long)sec;
        } else {
            rc = seconds(&sec, "timeout", v, vlen, 0.1, 86400);
            u->timeout_ms = (long)(sec * 1000);
        }
        return rc;
    }
    if (IS("ca_file"))
        return path_option(&u->ca_file, "ca_file", v, vlen);
    if (IS("cert_file"))
        return path_option(&u->cert_file, "cert_file", v, vlen);
    if (IS("key_file"))
        return path_option(&u->key_file, "key_file", v, vlen);
#undef IS
    return hive__fail(HIVE_ERR_INVALID, "unknown etcd store option '%.*s' (lock_ttl, timeout, ca_file, "
                      "cert_file, key_file)", (int)(klen < 64 ? klen : 64), o);
}

hive_rc hive__etcd_url_parse(hive__etcd_url *out, const char *url)
{
    hive__etcd_url u;
    const char *p;
    const char *slash;
    const char *q;
    const char *at;
    const char *h;
    size_t plen;
    unsigned seen = 0;
    hive_rc rc = HIVE_OK;

    memset(&u, 0, sizeof(u));
    u.lock_ttl = 60;
    u.timeout_ms = 5000;
    if (url == NULL || (strncmp(url, "etcd://", 7) != 0 && strncmp(url, "etcds://", 8) != 0))
        return hive__fail(HIVE_ERR_INVALID, "not an etcd:// URL");
    u.tls = url[4] == 's';
    p = url + (u.tls ? 8 : 7);
    slash = strchr(p, '/');
    q = strchr(p, '?');
    if (slash == NULL || (q != NULL && q < slash) || slash == p)
        return hive__fail(HIVE_ERR_INVALID, FORM);
    at = memchr(p, '@', (size_t)(slash - p));
    if (at != NULL && memchr(p, ':', (size_t)(at - p)) != NULL)
        /* never repeated: not here, not in any message */
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL holds a password after the user name (USER:PASSWORD@); "
                          "refused, as the URL shows in the process list: give the user as USER@ "
                          "and the password in HIVE_ETCD_PASSWORD");
    if (at != NULL && (at == p || memchr(at + 1, '@', (size_t)(slash - at - 1)) != NULL))
        return hive__fail(HIVE_ERR_INVALID, "an etcd URL has an empty user name or more than one '@'");
    if (at != NULL && (u.user = hive__strndup(p, (size_t)(at - p))) == NULL)
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    h = at != NULL ? at + 1 : p;
    while (rc == HIVE_OK) {
        const char *comma = memchr(h, ',', (size_t)(slash - h));
        const char *end = comma != NULL ? comma : slash;
        rc = endpoint(&u, h, (size_t)(end - h));
        if (comma == NULL)
            break;
        h = comma + 1;
    }
    plen = q != NULL ? (size_t)(q - slash) : strlen(slash);
    while (plen > 0 && slash[plen - 1] == '/')
        plen--;
    if (rc == HIVE_OK && plen == 0)
        rc = hive__fail(HIVE_ERR_INVALID, FORM " (PREFIX is missing)");
    if (rc == HIVE_OK && (u.prefix = hive__strndup(slash, plen)) == NULL)
        rc = hive__fail(HIVE_ERR_NOMEM, "out of memory");
    for (const char *o = q != NULL ? q + 1 : NULL; rc == HIVE_OK && o != NULL;) {
        const char *amp = strchr(o, '&');
        size_t n = amp != NULL ? (size_t)(amp - o) : strlen(o);
        if (n == 0 && (amp != NULL || o != q + 1))
            rc = hive__fail(HIVE_ERR_INVALID, "an etcd URL has an empty option (\"&&\" or a trailing '&')");
        else if (n > 0)
            rc = option(&u, o, n, &seen);
        o = amp != NULL ? amp + 1 : NULL;
    }
    if (rc != HIVE_OK) {
        hive__etcd_url_free(&u);
        return rc;
    }
    *out = u;
    return HIVE_OK;
}
