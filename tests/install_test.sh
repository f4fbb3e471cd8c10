#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then build and run a program
# against the installed library through hive.pc.
# Usage: install_test.sh BUILD_DIR [EXTRA_CFLAGS]
set -euo pipefail
build=$1
extra=${2:-}
prefix=$(mktemp -d "${TMPDIR:-/tmp}/hive-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -n1)
for f in bin/hive-cred include/hive/hive.h include/hive/fernet.h; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
ls "$libdir"/libhive.a "$libdir"/libhive.so "$libdir"/pkgconfig/hive.pc >/dev/null
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cat > "$prefix/prog.c" <<'C'
#include <hive/hive.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    uint8_t raw[HIVE_FERNET_KEY_BYTES];
    char *tok = NULL; size_t tlen = 0;
    uint8_t *msg = NULL; size_t mlen = 0;
    if (hive_fernet_key_generate(key) || hive_fernet_key_decode(raw, key, strlen(key)) ||
        hive_fernet_encrypt(&tok, &tlen, "installed", 9, raw) ||
        hive_fernet_decrypt(&msg, &mlen, tok, tlen, raw))
        return 1;
    printf("%.*s\n", (int)mlen, (char *)msg);
    hive_free_secret(msg, mlen + 1);
    hive_free_secret(tok, tlen + 1);
    return 0;
}
C
# shared
cc $extra $(pkg-config --cflags hive) "$prefix/prog.c" -o "$prefix/prog" $(pkg-config --libs hive)
out=$(LD_LIBRARY_PATH="$libdir" "$prefix/prog")
[ "$out" = installed ] || { echo "shared: got '$out'"; exit 1; }
# static
cc $extra $(pkg-config --cflags hive) "$prefix/prog.c" -o "$prefix/prog-static" \
   "$libdir/libhive.a" $(pkg-config --libs-only-other --static hive) -lmbedcrypto -lm
out=$("$prefix/prog-static")
[ "$out" = installed ] || { echo "static: got '$out'"; exit 1; }
echo "install: OK (binaries, libhive.a, libhive.so, headers, hive.pc)"
