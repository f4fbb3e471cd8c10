#!/bin/sh
# Print the C program that follows "<!-- example: NAME -->" in a Markdown
# file, from its ```c fence to the closing fence: the example program of
# docs/libhive.md, built and run by the tests exactly as it is written.
# Usage: extract_example.sh FILE NAME
set -eu
awk -v name="$2" '
  $0 == "<!-- example: " name " -->" { found = 1; next }
  found == 1 && $0 == "```c" { found = 2; next }
  found == 2 && $0 == "```" { done = 1; exit }
  found == 2 { print }
  END { if (!done) { print "no example " name " in " FILENAME > "/dev/stderr"; exit 1 } }
' "$1"
