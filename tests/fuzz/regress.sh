#!/bin/sh
# regress.sh FUZZDIR REPLAY... - run each replay_<name> (a fuzz target
# built without libFuzzer) over corpus/<name> and the findings kept in
# regress/<name>/. Fails when any input crashes or breaks a property.
src=$1
shift
rc=0
for bin in "$@"; do
  name=${bin##*/replay_}
  "$bin" "$src/corpus/$name" "$src/regress/$name/" || { echo "fuzz_regress: $name FAILED" >&2; rc=1; }
done
exit $rc
