#!/usr/bin/env bash
# Run the examples the way a user would, on a new store: the Makefile
# step, the CI job, and the legacy program under hive-run.
# Usage: run_examples.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
export HIVE_RUN="$build/launcher/hive-run" HIVE_CRED="$build/launcher/hive-cred"
export LEGACY_TOOL="$build/examples/legacy_tool"
HIVE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/hive-examples.XXXXXX")
export HIVE_HOME
trap 'rm -rf "$HIVE_HOME"' EXIT
unset HIVE_CREDENTIAL_KEY

"$HIVE_CRED" init >/dev/null
printf 'api_key=demo-secret-token-0123\nusername=ci-bot\n' | "$HIVE_CRED" add demo_api

echo "== make deploy"
out=$(make -s -C "$here" deploy HIVE_RUN="$HIVE_RUN" LEGACY_TOOL="$LEGACY_TOOL")
echo "$out"
[ "$out" = "legacy_tool: authenticated as ci-bot with a 22-byte token (demo...)" ]

echo "== make check-env with a missing credential fails the build"
"$HIVE_CRED" delete demo_api
if make -s -C "$here" check-env HIVE_RUN="$HIVE_RUN" LEGACY_TOOL="$LEGACY_TOOL" 2>/dev/null; then
  echo "check-env should have failed"; exit 1
fi
printf 'api_key=demo-secret-token-0123\nusername=ci-bot\n' | "$HIVE_CRED" add demo_api

echo "== ci-job.sh"
HIVE_CREDENTIAL_KEY=$(cat "$HIVE_HOME/secrets/credential_key") "$here/ci-job.sh" > "$HIVE_HOME/ci.log"
cat "$HIVE_HOME/ci.log"
grep -qx "LEGACY_API_TOKEN LEGACY_API_USER" "$HIVE_HOME/ci.log"
grep -qx "legacy_tool: authenticated as ci-bot with a 22-byte token (demo...)" "$HIVE_HOME/ci.log"
if grep -q "demo-secret-token-0123" "$HIVE_HOME/ci.log"; then
  echo "the secret leaked into the CI log"; exit 1
fi

echo "== the legacy program without hive-run has no token"
if "$LEGACY_TOOL" 2>/dev/null; then echo "legacy_tool should fail without its token"; exit 1; fi
echo "examples: OK"
