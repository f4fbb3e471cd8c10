/*
 * base64.c - urlsafe base64 out, and a decoder that accepts exactly what
 * Python's base64.urlsafe_b64decode (binascii.a2b_base64, non-strict)
 * accepts. mbedTLS's decoder knows one alphabet and silently drops an
 * unpadded tail, so it is not used here.
 */
#include "internal.h"

static const char enc_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char enc_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hive__b64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

size_t hive_base64_encode(char *out, const void *input, size_t len, unsigned flags)
{
    const uint8_t *in = input;
    const char *a = (flags & HIVE_B64_URL) ? enc_url : enc_std;
    bool pad = !(flags & HIVE_B64_NOPAD);
    size_t o = 0;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t hive__b64url_encode(char *out, const uint8_t *in, size_t len)
{
    return hive_base64_encode(out, in, len, HIVE_B64_URL);
}

/* Value of c in either alphabet (urlsafe_b64decode maps - and _ onto + and
 * /, so both are valid), or -1. */
static int dec(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

hive_rc hive__b64_decode_lenient(uint8_t *out, size_t *out_len, const char *in, size_t len)
{
    size_t o = 0;
    unsigned quad = 0;
    unsigned pads = 0;
    unsigned left = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;

        if (c == '=') {
            /* Complete padding ends the input; anything after is ignored. */
            if (quad >= 2 && quad + ++pads >= 4)
                goto done;
            continue;
        }
        v = dec(c);
        if (v < 0)
            continue;
        pads = 0;
        switch (quad) {
        case 0:
            left = (unsigned)v;
            quad = 1;
            break;
        case 1:
            out[o++] = (uint8_t)(left << 2 | (unsigned)v >> 4);
            left = (unsigned)v & 0x0f;
            quad = 2;
            break;
        case 2:
            out[o++] = (uint8_t)(left << 4 | (unsigned)v >> 2);
            left = (unsigned)v & 0x03;
            quad = 3;
            break;
        default:
            out[o++] = (uint8_t)(left << 6 | (unsigned)v);
            left = 0;
            quad = 0;
            break;
        }
    }
    if (quad != 0) {
        hive_memzero(out, o);
        return hive__fail(HIVE_ERR_INVALID, quad == 1
                          ? "invalid base64: one character too many"
                          : "invalid base64: incorrect padding");
    }
done:
    *out_len = o;
    return HIVE_OK;
}
