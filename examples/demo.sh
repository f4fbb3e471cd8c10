#!/usr/bin/env bash
# The main job on a small example store: create a store, put credentials
# in it the way a user would (secrets on stdin, never in argv), and read
# them back. Usage: examples/demo.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
cred="$build/launcher/hive-cred"
run="$build/launcher/hive-run"

HIVE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/hive-demo.XXXXXX")
export HIVE_HOME
unset HIVE_CREDENTIAL_KEY
trap 'rm -rf "$HIVE_HOME"' EXIT

say() { printf '\n$ %s\n' "$*"; }

say hive-cred init
"$cred" init

say "printf 'api_key=BSA-demo-0123456789\n' | hive-cred add brave_search --description 'Brave Search'"
printf 'api_key=BSA-demo-0123456789\n' | "$cred" add brave_search --description 'Brave Search'

say "printf 'access_token=gho_demo\nrefresh_token=ghr_demo\n' | hive-cred add github_oauth --type oauth2 --expires access_token=+1h --tag github"
printf 'access_token=gho_demo\nrefresh_token=ghr_demo\n' |
  "$cred" add github_oauth --type oauth2 --expires access_token=+1h --tag github

say "printf 'username=alice\npassword=p@ss wörd\n' | hive-cred add smtp --type basic_auth"
printf 'username=alice\npassword=p@ss wörd\n' | "$cred" add smtp --type basic_auth

say hive-cred list
"$cred" list

say hive-cred show github_oauth
"$cred" show github_oauth

say hive-cred get github_oauth
"$cred" get github_oauth

say hive-cred get smtp password
"$cred" get smtp password

say hive-cred exists nope
"$cred" exists nope || echo "(exit $?)"

say "hive-run -e BRAVE_API_KEY='{{brave_search}}' -e GH_TOKEN='{{github_oauth.access_token}}' -- sh -c '...'"
"$run" -e BRAVE_API_KEY='{{brave_search}}' -e GH_TOKEN='{{github_oauth.access_token}}' -- \
  sh -c 'echo "the program got BRAVE_API_KEY (${#BRAVE_API_KEY} chars) and GH_TOKEN=$GH_TOKEN"'

say "hive-run --dry-run -e BRAVE_API_KEY='{{brave_search}}' -- curl https://api.search.brave.com"
"$run" --dry-run -e BRAVE_API_KEY='{{brave_search}}' -- curl https://api.search.brave.com

say "hive-run -e X='{{missing}}' -- true"
"$run" -e X='{{missing}}' -- true || echo "(exit $?)"

say "ls -l \$HIVE_HOME/credentials/credentials"
ls -l "$HIVE_HOME/credentials/credentials"
