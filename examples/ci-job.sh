#!/usr/bin/env bash
# A CI job: the runner provides HIVE_CREDENTIAL_KEY (a masked CI secret)
# and a checked-in encrypted store; each step gets only the variables it
# names, through a usage spec, and HIVE_CREDENTIAL_KEY never reaches it.
#
#   HIVE_RUN=... HIVE_CRED=... LEGACY_TOOL=... HIVE_HOME=... examples/ci-job.sh
set -euo pipefail
: "${HIVE_CREDENTIAL_KEY:?the CI secret HIVE_CREDENTIAL_KEY must be set}"
HIVE_RUN=${HIVE_RUN:-hive-run}
HIVE_CRED=${HIVE_CRED:-hive-cred}
LEGACY_TOOL=${LEGACY_TOOL:-./legacy_tool}

echo "--- validate the store before using it"
"$HIVE_CRED" validate demo_api

echo "--- register how the deploy step uses the credential (templates only)"
"$HIVE_CRED" usage add demo_api --key api_key \
  --env LEGACY_API_TOKEN='{{demo_api.api_key}}' --env LEGACY_API_USER='{{demo_api.username}}' \
  --description "demo API for the deploy step"

echo "--- what the step will get (audit log: values masked)"
"$HIVE_RUN" --dry-run --json --usage demo_api -- "$LEGACY_TOOL" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(v["name"] for v in d["variables"]))'

echo "--- the step"
"$HIVE_RUN" --usage demo_api -- "$LEGACY_TOOL"
