#!/usr/bin/env bash
# hive inside another project through add_subdirectory(): the parent's own
# target gets none of hive's compiler flags (warnings, sanitizers), links
# hive_static, and hive's tests are not part of the parent's build.
# Usage: subproject_test.sh SOURCE_DIR
set -euo pipefail
src=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/hive-subproject.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cat > "$dir/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.21)
project(parent C)
add_subdirectory("$src" hive)
add_executable(parent_prog main.c)
target_link_libraries(parent_prog PRIVATE hive_static)
CM
cat > "$dir/main.c" <<'C'
#include <hive/hive.h>
#include <stdio.h>
int main(void)
{
    printf("%s\n", hive_version());
    return 0;
}
C
cmake -S "$dir" -B "$dir/build" -DHIVE_SANITIZE=ON -DHIVE_WERROR=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  >"$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
cmd=$(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])):
    if e["file"].endswith("/main.c"):
        print(e.get("command") or " ".join(e["arguments"]))
' "$dir/build/compile_commands.json")
[ -n "$cmd" ] || { echo "no compile command for the parent's main.c"; exit 1; }
for flag in -Wcast-qual -Werror -fsanitize -fstack-protector-strong -D_GNU_SOURCE; do
  case " $cmd " in
    *" $flag"*) echo "hive's $flag leaked into the parent project: $cmd"; exit 1 ;;
  esac
done
# hive's own sources do get them
grep -q -- "-Wshadow" "$dir/build/compile_commands.json" || { echo "hive's sources lost their flags"; exit 1; }
if [ -e "$dir/build/hive/tests" ] || grep -q '"test_store' "$dir/build/compile_commands.json"; then
  echo "hive's tests are built inside the parent project"; exit 1
fi
echo "subproject: OK"
