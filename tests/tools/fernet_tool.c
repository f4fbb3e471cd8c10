/*
 * fernet_tool - batch Fernet for the cross-check against Python.
 *   fernet_tool enc < lines of KEY \t HEX-PLAINTEXT   -> a token a line
 *   fernet_tool dec < lines of KEY \t TOKEN-AS-HEX    -> HEX-PLAINTEXT or "ERR"
 * Tokens go in as hex so that any byte (newlines included) can be tested.
 */
#include <hive/hive.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t unhex(uint8_t *out, const char *in, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < len; i += 2) {
        unsigned v;
        sscanf(in + i, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void puthex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

int main(int argc, char **argv)
{
    static char line[1 << 16];
    static uint8_t data[1 << 15];
    bool enc;

    if (argc != 2 || (strcmp(argv[1], "enc") != 0 && strcmp(argv[1], "dec") != 0)) {
        fprintf(stderr, "usage: fernet_tool enc|dec\n");
        return 2;
    }
    enc = strcmp(argv[1], "enc") == 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *tab = strchr(line, '\t');
        size_t len = strcspn(line, "\n");
        uint8_t key[HIVE_FERNET_KEY_BYTES];
        size_t n;

        if (tab == NULL)
            return 2;
        *tab = '\0';
        if (hive_fernet_key_decode(key, line, strlen(line)) != HIVE_OK) {
            puts("BADKEY");
            continue;
        }
        n = unhex(data, tab + 1, (size_t)(line + len - tab - 1));
        if (enc) {
            char *token = NULL;
            size_t tlen = 0;
            if (hive_fernet_encrypt(&token, &tlen, data, n, key) != HIVE_OK)
                return 1;
            puts(token);
            free(token);
        } else {
            hive_secret msg = HIVE_SECRET_INIT;
            if (hive_fernet_decrypt(&msg, (const char *)data, n, key) == HIVE_OK) {
                puthex((const uint8_t *)msg.data, msg.len);
                putchar('\n');
                hive_secret_free(&msg);
            } else {
                puts("ERR");
            }
        }
    }
    return 0;
}
