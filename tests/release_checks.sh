#!/usr/bin/env bash
# Checks that need the release build (not the sanitizer one):
#  1. a core image of hive-cred taken at its exit holds neither the key nor
#     the secrets it handled (gdb gcore, with MADV_DONTDUMP regions included
#     so that what is checked is the wiping, not only the exclusion);
#  2. hive-cred runs with core dumps off, and hive-run gives the program
#     back its own core limit;
#  3. valgrind memcheck finds nothing on a round of CLI commands.
# Usage: tests/release_checks.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
cred="$build/launcher/hive-cred"
run="$build/launcher/hive-run"
data=${HIVE_TEST_DATA:-$here/data}
work=$(mktemp -d "${TMPDIR:-/tmp}/hive-release.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HIVE_HOME="$work/home"
unset HIVE_CREDENTIAL_KEY
cp -r "$data/fixtures/hive-home" "$HIVE_HOME"
chmod 700 "$HIVE_HOME" "$HIVE_HOME"/secrets "$HIVE_HOME"/credentials "$HIVE_HOME"/credentials/*
chmod 600 "$HIVE_HOME/secrets/credential_key" "$HIVE_HOME"/credentials/credentials/* \
          "$HIVE_HOME"/credentials/metadata/*
fail=0
output_needle=    # core_check: what the program printed, looked for too

echo "== core image at exit holds no key and no secret"
if command -v gdb >/dev/null; then
  # core_check STDIN PROGRAM ARGS...: run PROGRAM to its exit with STDIN
  # (text) as input, take a core image there, and look for secrets in it
  core_check() {
    local input=$1; shift
    printf '%b' "$input" > "$work/stdin"
    rm -f "$work/core"
    # run's own arguments replace those of --args: give them again, quoted
    # for the shell gdb starts the program with
    gdb -batch -nx -ex 'set confirm off' -ex 'set use-coredump-filter off' \
        -ex 'set dump-excluded-mappings on' -ex 'catch syscall exit_group' \
        -ex "run $(printf '%q ' "${@:2}")< $work/stdin" \
        -ex "gcore $work/core" -ex kill --args "$@" >"$work/gdb.log" 2>&1 || true
    [ -s "$work/core" ] || { echo "no core image made for: ${*##*/}"; cat "$work/gdb.log"; fail=1; return; }
    python3 - "$work/core" "$HIVE_HOME/secrets/credential_key" "${1##*/} ${*:2}" "$output_needle" <<'PY' || fail=1
import base64, sys
core = open(sys.argv[1], "rb").read()
key = open(sys.argv[2], "rb").read().strip()
raw = base64.urlsafe_b64decode(key)
needles = {"the key (text)": key, "the key": raw, "its signing half": raw[:16],
           "its encryption half": raw[16:], "smtp password": "p@ss w\u00f6rd \u2713 \U0001f511".encode(),
           "github access token": b"gho_testAccessToken0123456789",
           "github refresh token": b"ghr_testRefreshToken0123456789",
           "anthropic key": b"sk-ant-test-0123456789"}
if sys.argv[4]:
    needles["the program's output"] = sys.argv[4].encode()
found = [n for n, v in needles.items() if v in core]
print(f"  {sys.argv[3]}: {len(core)} bytes of core, found: {', '.join(found) or 'nothing'}")
sys.exit(1 if found else 0)
PY
  }
  for args in "get smtp_login password" "show --reveal github_oauth" "resolve {{anthropic}}" \
              "exec-credential anthropic"; do
    # shellcheck disable=SC2086
    core_check "" "$cred" $args
  done
  # the helpers in git's and docker's protocols (docker's needs a server_url)
  printf 'reg.example.com' | "$cred" set anthropic server_url
  printf 'me' | "$cred" set anthropic username
  core_check 'protocol=https\nhost=example.com\n\n' "$build/launcher/git-credential-hive" anthropic get
  core_check 'reg.example.com' "$build/launcher/docker-credential-hive" get
  # the key from a command, and from a systemd credential: the buffers that
  # held it are wiped too
  HIVE_CREDENTIAL_KEY_COMMAND="cat $HIVE_HOME/secrets/credential_key" core_check "" "$cred" get smtp_login password
  mkdir -m 700 "$work/creds"
  (umask 277 && cp "$HIVE_HOME/secrets/credential_key" "$work/creds/hive-credential-key")
  CREDENTIALS_DIRECTORY="$work/creds" core_check "" "$cred" get smtp_login password
  rm -rf "$work/creds"
  "$cred" unset anthropic server_url
  "$cred" unset anthropic username
  # hive-run --mask, which stays between the program and its output: no
  # output is left in the buffers it passed through (the value masked is
  # a literal here: what is looked for is the output, not the secrets,
  # which the masker holds to the end and which the registers saved at
  # its last signal may still hold)
  printf '#!/bin/sh\necho "plain-output-marker-0123456789 $X"\n' > "$work/prog.sh"
  chmod +x "$work/prog.sh"
  output_needle=plain-output-marker-0123456789   # not exported: not in hive-run's environment
  core_check "" "$run" --mask -e 'X=a-literal-value-masked' -- "$work/prog.sh"
  output_needle=
else
  echo "  cannot run: gdb not installed (scripts/setup installs it)"; fail=1
fi

echo "== core dumps off in hive-cred, the program's own limit under hive-run"
limit=2048
sleep_pid=""
( printf 'api_key=x\n'; sleep 2 ) | "$cred" add slow_reader & sleep_pid=$!
sleep 0.5
pid=$(pgrep -n -f "$cred add slow_reader" || true)
if [ -n "$pid" ] && grep -q "^Max core file size *0 " "/proc/$pid/limits"; then
  echo "  hive-cred: core file size 0"
else
  echo "  hive-cred does not run with core dumps off (pid ${pid:-?})"; fail=1
fi
wait "$sleep_pid" || true
child=$(ulimit -S -c "$limit" 2>/dev/null &&
        "$run" -e X='{{anthropic}}' -- awk '/^Max core file size/ { print $5 }' /proc/self/limits || echo "cannot set")
if [ "$child" = "$((limit * 1024))" ]; then echo "  hive-run: program keeps its core limit ($child bytes)"; else
  echo "  hive-run changed the program's core limit: $child, not $((limit * 1024)) bytes"; fail=1; fi

echo "== valgrind memcheck on CLI commands"
if command -v valgrind >/dev/null; then
  vg() {
    if ! valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
         --track-fds=no "$@" >/dev/null 2>"$work/vg.log"; then
      if grep -q "ERROR SUMMARY\|==[0-9]*==" "$work/vg.log"; then
        echo "  valgrind: errors in: ${*:2}"; cat "$work/vg.log"; fail=1; return
      fi
    fi
    if grep -q "==[0-9]*== .*\(Invalid\|uninitialised\|definitely lost\)" "$work/vg.log"; then
      echo "  valgrind: errors in: ${*:2}"; cat "$work/vg.log"; fail=1
    fi
  }
  vg "$cred" list
  vg "$cred" list --json
  vg "$cred" get smtp_login password
  vg "$cred" show --json --reveal github_oauth
  vg "$cred" resolve 'Bearer {{github_oauth.access_token}} {{nope.x}}'
  vg "$cred" validate
  vg "$cred" accounts google
  printf 'api_key=vg-value\n' | vg "$cred" add vg_cred --tag t --expires api_key=+1h
  vg "$cred" usage add vg_cred --env VG='{{vg_cred}}'
  vg "$cred" delete vg_cred
  vg "$cred" get no_such_id
  vg "$cred" get anthropik
  vg "$cred" get smtp_login passwrd
  printf 'line one\nline two\n' | vg "$cred" set smtp_login note
  vg "$cred" unset smtp_login note
  vg "$cred" doctor
  vg "$cred" rotate-key
  vg "$cred" get anthropic
  HIVE_CREDENTIAL_KEY_COMMAND="cat $HIVE_HOME/secrets/credential_key" vg "$cred" get anthropic
  HIVE_CREDENTIAL_KEY_COMMAND="cat $HIVE_HOME/secrets/credential_key" vg "$cred" doctor
  HIVE_CREDENTIAL_KEY_COMMAND="sleep 5" HIVE_CREDENTIAL_KEY_COMMAND_TIMEOUT=0.2 vg "$cred" get anthropic  # exit 4
  HIVE_CREDENTIAL_KEY_COMMAND="echo not-a-key" vg "$cred" get anthropic                                  # exit 4
  cp "$HIVE_HOME/secrets/credential_key" "$work/vault-key"
  HIVE_CREDENTIAL_KEY_COMMAND="cat $work/vault-key" vg "$cred" rotate-key --new-key-file "$work/new-key"
  cp "$work/new-key" "$HIVE_HOME/secrets/credential_key"
  vg "$cred" get anthropic
  vg "$run" -e X='{{anthropic}}' --dry-run -- true
  vg "$cred" exec-credential anthropic
  vg "$cred" exec-credential github_oauth       # due, its provider missing: exit 7
  vg "$cred" aws-credential-process anthropic   # no aws_access_key_id: exit 3
  printf 'protocol=https\nhost=example.com\n\n' | vg "$build/launcher/git-credential-hive" anthropic get
  vg "$build/launcher/docker-credential-hive" list
  printf 'registry.example.com' | vg "$build/launcher/docker-credential-hive" get
  vg "$run" -e X='{{nope}}' -- true
  R='{{anthropic}}' U='{{nope}}' vg "$run" -i --keep HOME --keep U --render-env R --dry-run --json -- true
  U='{{anthropic}}' vg "$run" -e X='{{github_oauth}}' -- true
  rm -f "$HIVE_HOME/credentials/metadata/index.json"
  vg "$cred" list
  echo "  valgrind: done"
else
  echo "  cannot run: valgrind not installed (scripts/setup installs it)"; fail=1
fi
exit $fail
