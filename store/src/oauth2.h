/*
 * oauth2.h - what oauth2.c (the refresh) shares with login.c (the user
 * flows and revocation): the client a provider credential describes, its
 * authentication, and how new tokens are written into a credential.
 */
#ifndef HIVE_OAUTH2_H
#define HIVE_OAUTH2_H

#include "buf.h"
#include "store_int.h"

/* The provider credential's client: its token endpoint and how to
 * authenticate there. client_secret is a secret (wiped by _free). */
typedef struct hive_oauth2_client {
    char *token_url;
    char *client_id;
    char *client_secret;   /* NULL: a public client */
    char *scope;
    char *ca_file;
    bool basic;            /* auth_method client_secret_basic */
    long timeout_ms;
} hive_oauth2_client;

/*
 * The client of cred's provider (its provider_id). Failures are
 * HIVE_ERR_REFRESH, "Failed to <what> '<id>': ..." (what: "refresh
 * credential", "log in for credential", ...).
 */
hive_rc hive__oauth2_client_load(const hive_lookup *lookup, const hive_cred *cred, const char *what,
                                 hive_oauth2_client *client);
void hive__oauth2_client_free(hive_oauth2_client *client);

/* name=value (form-encoded) appended to a form body. */
void hive__oauth2_add_field(hive_buf *b, const char *name, const char *value);

/* The client's authentication: client_id (and client_secret) in body, or
 * *auth set to an "Authorization: Basic ..." header (the caller's, a
 * secret: hive_free_str). HIVE_ERR_NOMEM. */
hive_rc hive__oauth2_client_auth(const hive_oauth2_client *client, hive_buf *body, char **auth);

/* Write a token endpoint's answer (obj, with an access_token) into cred
 * as a refresh does: the access token and its expiry, the refresh token
 * when the answer has one (which clears an in-doubt mark). */
hive_rc hive__oauth2_apply_tokens(hive_cred *cred, const hive_json *obj);

#endif
