#!/usr/bin/env bash
# buf breaking against main: on a branch, against the main branch; on main
# itself, against the previous commit (what the last change did to the API).
# A service's contract is a draft until the service is implemented: packages
# of services marked `implemented: false` in mesh/topology.yaml at the
# compared revision are left out, so drafts can still be reshaped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
branch="$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo "")"
if [ "$branch" != main ] && git rev-parse --verify -q main >/dev/null; then
  against_ref=main
elif git rev-parse --verify -q HEAD~1 >/dev/null && [ -n "$(git ls-tree HEAD~1 proto)" ]; then
  against_ref=HEAD~1
else
  echo "buf breaking: no earlier API to compare with; skipped"
  exit 0
fi
drafts="$(git show "$against_ref:mesh/topology.yaml" 2>/dev/null | node -e '
  const topology = require("yaml").parse(require("fs").readFileSync(0, "utf8")) ?? {};
  for (const [name, service] of Object.entries(topology.services ?? {})) if (service.implemented !== true) console.log(name);
' || true)"
excludes=()
for name in $drafts; do excludes+=(--exclude-path "proto/$name"); done
node_modules/.bin/buf breaking --against ".git#ref=$(git rev-parse "$against_ref")" "${excludes[@]}"
echo "buf breaking: no breaking changes against $against_ref${drafts:+ (drafts not compared: $(echo $drafts | tr '\n' ' '))}"
