#!/usr/bin/env bash
# Run a Criterion test binary and fail on what Criterion itself lets pass:
# a LeakSanitizer or UBSan report printed by a test's child process.
out=$("$@" 2>&1); rc=$?
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -qE 'ERROR: LeakSanitizer|runtime error:|ERROR: AddressSanitizer'; then
  echo "run_criterion: sanitizer report above" >&2
  exit 1
fi
exit $rc
