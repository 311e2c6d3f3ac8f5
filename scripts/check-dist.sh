#!/usr/bin/env bash
# Fails when dist/ is not exactly what TypeScriptToLua makes of src/ now.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
npx --no-install tstl -p tsconfig.json --outDir "$fresh" >/dev/null
if ! diff -r "$fresh" dist >/dev/null; then
  echo "dist/ is stale against src/: run 'npm run build' and commit dist/" >&2
  diff -ru dist "$fresh" | head -40 >&2
  exit 1
fi
