/*
 * probe - prints getenv() and secure_getenv() of each NAME, one line each:
 *   NAME getenv=VALUE secure=VALUE      ("(null)" when unset)
 * Built twice: dynamically (probe) and statically (static_prog).
 *   probe NAME...
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *g = getenv(argv[i]);
        const char *s = secure_getenv(argv[i]);
        printf("%s getenv=%s secure=%s\n", argv[i], g ? g : "(null)", s ? s : "(null)");
    }
    return 0;
}
