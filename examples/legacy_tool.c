/*
 * legacy_tool - stands for a program that knows nothing about Hive: it
 * reads its token with getenv(), as old code does, and uses it.
 * Exits 2 when the token is missing, 0 otherwise; never prints the token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *token = getenv("LEGACY_API_TOKEN");
    const char *user = getenv("LEGACY_API_USER");

    if (token == NULL || *token == '\0') {
        fprintf(stderr, "legacy_tool: LEGACY_API_TOKEN is not set\n");
        return 2;
    }
    /* a real program would send it; this one proves it got it */
    printf("legacy_tool: authenticated as %s with a %zu-byte token (%.4s...)\n",
           user ? user : "(unknown)", strlen(token), token);
    return 0;
}
