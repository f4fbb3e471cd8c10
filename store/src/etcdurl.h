/*
 * etcdurl.h - the etcd storage's URL, parsed (etcdurl.c): no I/O, no
 * environment, so that every bad input is a unit test away.
 *
 *   etcd[s]://[USER@]HOST[:PORT][,HOST[:PORT]...]/PREFIX[?OPTION=VALUE&...]
 *
 * OPTION: lock_ttl (seconds, 2 to 86400), timeout (seconds, 0.1 to
 * 86400; plain decimal numbers: no sign, exponent, spaces or units),
 * ca_file, cert_file, key_file (non-empty paths). Each at most once.
 */
#ifndef HIVE_ETCDURL_H
#define HIVE_ETCDURL_H

#include "internal.h"

#define HIVE__ETCD_MAX_ENDPOINTS 8
#define HIVE__ETCD_DEFAULT_PORT "2379"

typedef struct hive__etcd_url {
    bool tls;                  /* etcds:// */
    char *user;                /* USER@, or NULL */
    char *endpoints[HIVE__ETCD_MAX_ENDPOINTS];   /* HOST:PORT, the port added when left out */
    size_t nendpoints;
    bool plain_remote;         /* etcd:// (plain http) to a host that is not this machine */
    char *prefix;              /* "/PREFIX", without a trailing '/' */
    long lock_ttl;             /* seconds; 60 unless given */
    long timeout_ms;           /* 5000 unless given */
    char *ca_file;
    char *cert_file;
    char *key_file;
} hive__etcd_url;

/* Parse url into *out (filled only on success; free with
 * hive__etcd_url_free). HIVE_ERR_INVALID with a message naming what is
 * wrong; a password in the URL is refused and never repeated. */
hive_rc hive__etcd_url_parse(hive__etcd_url *out, const char *url);
void hive__etcd_url_free(hive__etcd_url *u);

#endif
