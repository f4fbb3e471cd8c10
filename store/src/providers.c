/*
 * providers.c - the built-in providers that never contact anyone: static
 * credentials and bearer tokens.
 */
#include "providers.h"

#include <stdlib.h>

static bool static_handles(const hive_provider *p, hive_cred_type t)
{
    (void)p;
    return t == HIVE_TYPE_API_KEY || t == HIVE_TYPE_BASIC_AUTH || t == HIVE_TYPE_CUSTOM;
}

static bool bearer_handles(const hive_provider *p, hive_cred_type t)
{
    (void)p;
    return t == HIVE_TYPE_BEARER_TOKEN;
}

static hive_rc bearer_refresh(hive_provider *p, const hive_lookup *lookup, hive_cred *cred)
{
    (void)p;
    (void)lookup;
    return hive__fail(HIVE_ERR_UNSUPPORTED, "Bearer token '%s' cannot be refreshed. Obtain a new "
                      "token and save it to the credential store.", hive_cred_id(cred));
}

/* A bearer token is never refreshable, whatever a forced refresh would say. */
static bool bearer_can_refresh(hive_provider *p, const hive_lookup *lookup, const hive_cred *cred)
{
    (void)p;
    (void)lookup;
    hive__fail(HIVE_ERR_UNSUPPORTED, "Bearer token '%s' cannot be refreshed", hive_cred_id(cred));
    return false;
}

static void free_provider(hive_provider *p)
{
    free(p);
}

hive_rc hive__provider_new(hive_provider **out, const char *id,
                           bool (*handles)(const hive_provider *, hive_cred_type),
                           hive_rc (*refresh)(hive_provider *, const hive_lookup *, hive_cred *),
                           bool (*can_refresh)(hive_provider *, const hive_lookup *, const hive_cred *))
{
    hive_provider *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return hive__fail(HIVE_ERR_NOMEM, "out of memory");
    p->size = sizeof(*p);
    p->id = id;
    p->handles = handles;
    p->refresh = refresh;
    p->can_refresh = can_refresh;
    p->destroy = free_provider;
    *out = p;
    return HIVE_OK;
}

hive_rc hive__static_provider_new(hive_provider **out)
{
    return hive__provider_new(out, "static", static_handles, NULL, NULL);
}

hive_rc hive__bearer_provider_new(hive_provider **out)
{
    return hive__provider_new(out, "bearer_token", bearer_handles, bearer_refresh, bearer_can_refresh);
}
