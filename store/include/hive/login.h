/*
 * hive/login.h - obtaining the first tokens of an OAuth2 credential, and
 * revoking them: the authorization code grant with PKCE and a loopback
 * redirect (RFC 7636, RFC 8252), the device authorization grant (RFC
 * 8628), token revocation (RFC 7009).
 *
 * The credential's provider (the custom credential its provider_id names,
 * as for a refresh: token_url, client_id, client_secret, scope,
 * auth_method, ca_file, timeout) names the other endpoints under their
 * OpenID discovery names: authorization_endpoint,
 * device_authorization_endpoint, revocation_endpoint; or an issuer, whose
 * /.well-known/openid-configuration gives whichever of them are missing.
 *
 * Threads: these functions use the store as its writers do (see
 * hive/store.h), and block for as long as the user takes (up to the
 * time limit): call them from one thread.
 */
#ifndef HIVE_LOGIN_H
#define HIVE_LOGIN_H

#include "common.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the user must be shown to go on; the library never prints. */
typedef struct hive_login_prompt {
    bool device;                            /* false: the browser flow */
    const char *authorization_url;          /* browser flow: open this */
    const char *verification_uri;           /* device flow: go there... */
    const char *verification_uri_complete;  /* ...or there (NULL: the server gives none) */
    const char *user_code;                  /* ...and enter this */
    long expires_in;                        /* seconds the user has */
} hive_login_prompt;

#define HIVE_LOGIN_DEFAULT_TIMEOUT 300

typedef struct hive_login_options {
    size_t size;                      /* sizeof(hive_login_options): the struct may grow */
    bool device;                      /* the device grant instead of the browser flow */
    /* Scopes to ask for, besides the provider's scope key and the
     * credential's own scope key (the union is asked for, each once). */
    const char *const *scopes;
    size_t nscopes;
    /* More scopes a caller adds on behalf of what will use the credential
     * (hive-cred: the scopes its usage specs require). */
    const char *const *extra_scopes;
    size_t nextra_scopes;
    /* When the credential does not exist: create it, of type oauth2, with
     * this provider_id. NULL: a missing credential is HIVE_ERR_NOT_FOUND. */
    const char *provider_id;
    int timeout;                      /* seconds to wait for the browser's redirect;
                                       * 0: HIVE_LOGIN_DEFAULT_TIMEOUT */
    /* Called once the user can act (the loopback port is listening, or
     * the device code is known). Required. */
    void (*prompt)(void *ctx, const hive_login_prompt *prompt);
    void *prompt_ctx;
} hive_login_options;
/* Start from this, then set what you need (an unknown size is refused). */
#define HIVE_LOGIN_OPTIONS_INIT {.size = sizeof(hive_login_options)}

/*
 * Log in: obtain tokens for OAuth2 credential id through its provider and
 * save them as a refresh does (under the credential's refresh lock, only
 * over what it read), with auto refresh on; the credential's other keys
 * and metadata stay (a refresh token the answer lacks is dropped: it
 * belonged to an older grant). *out (may be NULL): the saved credential.
 * Errors: HIVE_ERR_NOT_FOUND (no credential and no provider_id option),
 * HIVE_ERR_INVALID (a credential of another type, or tied to another
 * provider), HIVE_ERR_REFRESH (configuration, the server refused: its
 * error quoted without secrets, the user denied, time limit, expiry),
 * HIVE_ERR_NETWORK (no answer).
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_login(hive_store *s, hive_cred **out, const char *id,
                                     const hive_login_options *opts);

/*
 * Revoke credential id's refresh token, then its access token, at its
 * provider's revocation endpoint (client authentication as for the token
 * endpoint), then remove them and their metadata from the credential; the
 * rest stays, with auto refresh off once no refresh token is left (a
 * login turns it on again). A token the server refused to revoke stays
 * (and the call fails). *revoked (may be NULL): how many tokens were revoked.
 * Errors: HIVE_ERR_NOT_FOUND, HIVE_ERR_KEY_NOT_FOUND (no token to revoke),
 * HIVE_ERR_UNSUPPORTED (no revocation_endpoint), HIVE_ERR_REFRESH,
 * HIVE_ERR_NETWORK.
 */
HIVE_EXPORT HIVE_NODISCARD hive_rc hive_store_revoke(hive_store *s, const char *id, int *revoked);

#ifdef __cplusplus
}
#endif

#endif
