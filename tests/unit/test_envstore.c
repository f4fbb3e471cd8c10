/*
 * The environment storage: an id's variable name is never cut short (a
 * name cut short is another variable, holding another secret).
 */
#include "testutil.h"

Test(envstore, a_long_id_reads_its_own_variable_not_a_prefix)
{
    char id[601];
    char var[700];
    char prefix[512];
    hive_storage *s = NULL;
    hive_cred *c = NULL;
    char small[16];

    memset(id, 'a', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    memset(var, 'A', 600);
    strcpy(var + 600, "_API_KEY");
    memset(prefix, 'A', sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0';
    setenv(var, "its-own-value", 1);
    setenv(prefix, "another-variables-secret", 1);
    cr_assert_eq(hive_env_storage_open(&s, NULL, NULL), HIVE_OK, "%s", hive_last_error());
    cr_assert_eq(hive_storage_load(s, &c, id), HIVE_OK, "%s", hive_last_error());
    cr_expect_str_eq(hive_cred_get_key(c, "api_key", NULL), "its-own-value");
    hive_cred_free(&c);
    /* a buffer too small for the name gets none of it, not a part */
    hive_env_storage_variable(s, small, sizeof(small), id);
    cr_expect_str_eq(small, "");
    hive_env_storage_variable(s, small, sizeof(small), "gh");
    cr_expect_str_eq(small, "GH_API_KEY");
    hive_storage_free(&s);
}
