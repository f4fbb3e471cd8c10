#!/usr/bin/env bash
# Build a unit test and the library sources it needs with clang's
# AddressSanitizer, and run it: clang, unlike gcc, puts red zones around
# string literals, so it catches a read past the end of one.
# Usage: clang_asan.sh OUTDIR TEST.c SOURCE.c...   Fails when clang is missing.
# HIVE_GENERATED_INCLUDE: the build's generated headers (hive/version.h).
set -euo pipefail
out=$1; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
cc=${HIVE_CLANG:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "clang_asan: $cc not found (scripts/setup installs clang)" >&2
  exit 1
fi
mkdir -p "$out"
bin="$out/$(basename "$1" .c)_clang"
# shellcheck disable=SC2046
"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -fno-omit-frame-pointer -DHIVE_TEST_DATA_DEFAULT="\"$root/tests/data\"" \
  -I"$root/store/include" -I"${HIVE_GENERATED_INCLUDE:?set it to BUILD/store/include}" -I"$root/store/src" "$@" -o "$bin" $(pkg-config --cflags --libs criterion)
exec "$root/tests/run_criterion.sh" "$bin" --jobs 1
