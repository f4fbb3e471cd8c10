/*
 * ctor_lib - a shared library whose constructor calls getenv() of a
 * managed name, the way libraries that read their configuration at load
 * time do. It may run before libhive-preload.so's own constructor.
 * The name is $CTOR_VAR (default TOKEN).
 */
#include <stdio.h>
#include <stdlib.h>

const char *ctor_lib_seen(void);
const char *ctor_lib_environ(void);

extern char **environ;

static char seen[8192] = "(unset)";
static char from_environ[8192] = "(unset)";

static const char *environ_value(const char *name)
{
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        size_t i = 0;
        while (name[i] != '\0' && (*e)[i] == name[i])
            i++;
        if (name[i] == '\0' && (*e)[i] == '=')
            return *e + i + 1;
    }
    return NULL;
}

__attribute__((constructor)) static void ctor_lib_init(void)
{
    const char *name = getenv("CTOR_VAR");
    const char *v, *e;

    if (name == NULL || *name == '\0')
        name = "TOKEN";
    v = getenv(name);
    e = environ_value(name);
    snprintf(seen, sizeof(seen), "%s", v ? v : "(null)");
    snprintf(from_environ, sizeof(from_environ), "%s", e ? e : "(null)");
    fprintf(stderr, "ctor_lib: constructor ran\n");
}

const char *ctor_lib_seen(void)
{
    return seen;
}

const char *ctor_lib_environ(void)
{
    return from_environ;
}
