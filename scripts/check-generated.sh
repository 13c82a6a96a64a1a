#!/usr/bin/env bash
# Fails when the committed generated code differs from what proto/ produces.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
bash "$ROOT/scripts/generate.sh" "$TMP"
status=0
diff -r "$ROOT/services/contracts/src/gen" "$TMP/services/contracts/src/gen" >"$TMP/diff.txt" || status=1
cmp -s "$ROOT/services/contracts/descriptor/leadmesh.binpb" "$TMP/services/contracts/descriptor/leadmesh.binpb" || { echo "descriptor set differs" >>"$TMP/diff.txt"; status=1; }
if [ "$status" != 0 ]; then
  head -50 "$TMP/diff.txt" >&2
  echo "generated code is stale: run 'npm run generate' and commit the result" >&2
  exit 1
fi
echo "generated code is up to date"
