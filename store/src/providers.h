/*
 * providers.h - the built-in providers' constructors. A provider knows
 * nothing of the store: what it needs beyond the credential (another
 * credential, read as stored) comes through the hive_lookup it is given at
 * each call. open.c makes them and hands them to the store. *out is the
 * caller's until registered (p->destroy frees it).
 */
#ifndef HIVE_PROVIDERS_H
#define HIVE_PROVIDERS_H

#include "internal.h"
#include "hive/store.h"

/* A provider with these functions and no state (destroy frees it). */
hive_rc hive__provider_new(hive_provider **out, const char *id,
                           bool (*handles)(const hive_provider *, hive_cred_type),
                           hive_rc (*refresh)(hive_provider *, const hive_lookup *, hive_cred *),
                           bool (*can_refresh)(hive_provider *, const hive_lookup *, const hive_cred *));
/* "static": api_key, basic_auth and custom credentials; never refreshes. */
hive_rc hive__static_provider_new(hive_provider **out);
/* "bearer_token": bearer tokens, which cannot be refreshed. */
hive_rc hive__bearer_provider_new(hive_provider **out);
/* "oauth2" (oauth2.c): refresh_token and client_credentials grants; the
 * configuration credential is read through the lookup. */
hive_rc hive__oauth2_provider_new(hive_provider **out);
/* "aden_sync" (aden.c): asks the Aden server at a for new tokens; a is
 * copied (NULL: the defaults, hive/store.h). */
hive_rc hive__aden_provider_new(hive_provider **out, const hive_aden_options *a);

#endif
