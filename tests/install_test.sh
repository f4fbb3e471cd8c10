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
for f in bin/hive-cred bin/git-credential-hive bin/docker-credential-hive include/hive/hive.h include/hive/fernet.h; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
ls "$libdir"/libhive.a "$libdir"/libhive.so "$libdir"/pkgconfig/hive.pc >/dev/null
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cat > "$prefix/prog.c" <<'C'
#include <hive/hive.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
    char key[HIVE_FERNET_KEY_TEXT + 1];
    uint8_t raw[HIVE_FERNET_KEY_BYTES];
    char *tok = NULL; size_t tlen = 0;
    hive_secret msg = HIVE_SECRET_INIT;
    if (hive_fernet_key_generate(key) || hive_fernet_key_decode(raw, key, strlen(key)) ||
        hive_fernet_encrypt(&tok, &tlen, "installed", 9, raw) ||
        hive_fernet_decrypt(&msg, tok, tlen, raw))
        return 1;
    printf("%s\n", msg.data);
    hive_secret_free(&msg);
    free(tok);
    return 0;
}
C
# The complete program of docs/libhive.md, as the page has it, and the
# output the page says it prints; it runs on a new store in a temp HIVE_HOME.
repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/tests/doc/extract_example.sh" "$repo/docs/libhive.md" libhive_intro.c > "$prefix/intro.c"
intro_want=$(awk '/^It prints:$/ { f = 1; next } f && /^    / { print substr($0, 5); n++; next } f && n { exit }' \
             "$repo/docs/libhive.md")
[ -n "$intro_want" ] || { echo "docs/libhive.md: no output after 'It prints:'"; exit 1; }
run_intro() {   # $1: the built program, $2: how it was built
  local home out
  home=$(mktemp -d "$prefix/home-intro.XXXXXX")
  out=$(env -u HIVE_CREDENTIAL_KEY HIVE_HOME="$home" LD_LIBRARY_PATH="$libdir" "$1") ||
    { echo "docs/libhive.md's program ($2) failed: $out"; exit 1; }
  [ "$out" = "$intro_want" ] || { printf 'docs/libhive.md program (%s) printed:\n%s\nnot:\n%s\n' "$2" "$out" "$intro_want"; exit 1; }
}
cc $extra $(pkg-config --cflags hive) "$prefix/intro.c" -o "$prefix/intro" $(pkg-config --libs hive)
run_intro "$prefix/intro" "pkg-config"
# shared
cc $extra $(pkg-config --cflags hive) "$prefix/prog.c" -o "$prefix/prog" $(pkg-config --libs hive)
out=$(LD_LIBRARY_PATH="$libdir" "$prefix/prog")
[ "$out" = installed ] || { echo "shared: got '$out'"; exit 1; }
# static
cc $extra $(pkg-config --cflags hive) "$prefix/prog.c" -o "$prefix/prog-static" \
   "$libdir/libhive.a" $(pkg-config --libs-only-other --static hive) -lmbedcrypto -lm
out=$("$prefix/prog-static")
[ "$out" = installed ] || { echo "static: got '$out'"; exit 1; }
# find_package(hive): a CMake project that links hive::hive, and one that
# links hive::hive_static; each prints the version it runs, which is the
# one of the headers, of hive.pc and of the CMake package.
pcver=$(pkg-config --modversion hive)
cat > "$prefix/ver.c" <<'C'
#include <hive/hive.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    if (strcmp(hive_version(), HIVE_VERSION) != 0 || hive_version_number() != HIVE_VERSION_NUMBER)
        return 1;
    printf("%s\n", hive_version());
    return 0;
}
C
for kind in hive hive_static; do
  mkdir -p "$prefix/pkg-$kind"
  cat > "$prefix/pkg-$kind/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.21)
project(uses_hive C)
find_package(hive $pcver EXACT REQUIRED CONFIG)
add_executable(prog ../prog.c)
target_link_libraries(prog PRIVATE hive::$kind)
add_executable(ver ../ver.c)
target_link_libraries(ver PRIVATE hive::$kind)
add_executable(intro ../intro.c)
target_link_libraries(intro PRIVATE hive::$kind)
file(WRITE \${CMAKE_BINARY_DIR}/hive_version.txt "\${hive_VERSION}")
CM
  CFLAGS="$extra" LDFLAGS="$extra" cmake -S "$prefix/pkg-$kind" -B "$prefix/pkg-$kind/build" \
    -DCMAKE_PREFIX_PATH="$prefix" >"$prefix/pkg-$kind.log" 2>&1 &&
    cmake --build "$prefix/pkg-$kind/build" >>"$prefix/pkg-$kind.log" 2>&1 ||
    { echo "find_package(hive) with hive::$kind:"; cat "$prefix/pkg-$kind.log"; exit 1; }
  out=$(LD_LIBRARY_PATH="$libdir" "$prefix/pkg-$kind/build/prog")
  [ "$out" = installed ] || { echo "hive::$kind: got '$out'"; exit 1; }
  run_intro "$prefix/pkg-$kind/build/intro" "find_package, hive::$kind"
  ver=$(LD_LIBRARY_PATH="$libdir" "$prefix/pkg-$kind/build/ver") || { echo "hive::$kind: hive_version() is not HIVE_VERSION"; exit 1; }
  cmver=$(cat "$prefix/pkg-$kind/build/hive_version.txt")
  [ "$ver" = "$pcver" ] && [ "$cmver" = "$pcver" ] ||
    { echo "versions differ: hive_version() $ver, hive.pc $pcver, CMake package $cmver"; exit 1; }
done
# man pages, rendered as installed, without a warning
for page in man1/hive-run.1 man1/hive-cred.1 man5/hive-store.5; do
  f=$prefix/share/man/$page
  [ -e "$f" ] || { echo "missing after install: share/man/$page"; exit 1; }
  warnings=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
  [ -z "$warnings" ] || { echo "man $page: $warnings"; exit 1; }
done
MANPATH="$prefix/share/man" MANWIDTH=80 man hive-store 2>/dev/null | grep -q "index.json" ||
  { echo "man hive-store does not find the installed page"; exit 1; }
# completion: bash (one file under both names), zsh
for tool in hive-run hive-cred; do
  f=$prefix/share/bash-completion/completions/$tool
  [ -e "$f" ] || { echo "missing after install: share/bash-completion/completions/$tool"; exit 1; }
  bash --norc -c 'source "$1" && complete -p "$2"' bash "$f" "$tool" >/dev/null ||
    { echo "bash completion for $tool not registered"; exit 1; }
done
zf=$prefix/share/zsh/site-functions/_hive
[ -e "$zf" ] || { echo "missing after install: share/zsh/site-functions/_hive"; exit 1; }
if grep -q "@HIVE_" "$zf"; then echo "_hive was not configured"; exit 1; fi
command -v zsh >/dev/null || { echo "cannot check the zsh completion: no zsh (scripts/setup installs it)"; exit 1; }
zsh -f -c 'fpath=("$1" $fpath); autoload -Uz compinit && compinit -u -d "$2/zcompdump" &&
           [[ $_comps[hive-run] == _hive && $_comps[hive-cred] == _hive ]]' zsh "${zf%/*}" "$prefix" ||
  { echo "zsh completion not registered"; exit 1; }
# The README's first example, verbatim, on a new HIVE_HOME with the
# installed tools on PATH; 'make deploy' is a Makefile that checks the token.
readme=$repo/README.md
example=$(awk '/^```sh$/ { f = 1; next } /^```$/ { if (f) exit } f' "$readme")
case $example in
  "hive-cred init"*) ;;
  *) echo "the README's first example does not start with 'hive-cred init'"; exit 1 ;;
esac
mkdir "$prefix/project"
printf 'deploy:\n\t@test "$$GITHUB_TOKEN" = tok-0123456789 && echo deployed\n' > "$prefix/project/Makefile"
out=$(cd "$prefix/project" && env -u HIVE_CREDENTIAL_KEY HIVE_HOME="$prefix/home" TOKEN=tok-0123456789 \
      PATH="$prefix/bin:$PATH" bash -euo pipefail -c "$example")
[ "${out##*$'\n'}" = deployed ] || { echo "README example: got '$out'"; exit 1; }
echo "install: OK (binaries, libhive.a, libhive.so, headers, hive.pc, find_package(hive), docs/libhive.md's program, version, man pages, completion, README example)"
