/*
 * ctor_main - prints what ctor_lib's constructor saw from getenv(), the
 * launch-time value in environ, and what getenv() gives now.
 *   ctor_main      (the name is $CTOR_VAR, default TOKEN)
 */
#include <stdio.h>
#include <stdlib.h>

const char *ctor_lib_seen(void);
const char *ctor_lib_environ(void);

int main(void)
{
    const char *name = getenv("CTOR_VAR");
    const char *now;

    if (name == NULL || *name == '\0')
        name = "TOKEN";
    now = getenv(name);
    printf("ctor %s\nenviron %s\nnow %s\n", ctor_lib_seen(), ctor_lib_environ(), now ? now : "(null)");
    return 0;
}
