#!/usr/bin/env bash
# Run a Criterion test binary and fail on what Criterion itself lets pass:
# a LeakSanitizer or UBSan report printed by a test's child process; a test
# skipped (cr_skip_test) or disabled (.disabled), which Criterion counts
# as neither passed nor failed; a run in which no test ran. For whole
# binaries (as ctest runs them): tests left out by --filter count as
# skipped; run the binary itself to pick tests.
tap=$(mktemp "${TMPDIR:-/tmp}/criterion-tap.XXXXXX")
trap 'rm -f "$tap"' EXIT
out=$("$@" --tap="$tap" 2>&1); rc=$?
printf '%s\n' "$out"
if printf '%s\n' "$out" | grep -qE 'ERROR: LeakSanitizer|runtime error:|ERROR: AddressSanitizer'; then
  echo "run_criterion: sanitizer report above" >&2
  exit 1
fi
if grep -q '# SKIP' "$tap"; then
  grep '# SKIP' "$tap" >&2
  echo "run_criterion: skipped or disabled tests (above) count as failures" >&2
  exit 1
fi
if [ "$rc" = 0 ] && ! grep -q '^ok ' "$tap"; then
  echo "run_criterion: no test ran" >&2
  exit 1
fi
exit $rc
