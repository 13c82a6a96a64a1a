#!/usr/bin/env bash
# buf breaking against main: on a branch, against the main branch; on main
# itself, against the previous commit (what the last change did to the API).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
branch="$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo "")"
if [ "$branch" != main ] && git rev-parse --verify -q main >/dev/null; then
  against='.git#branch=main'
elif git rev-parse --verify -q HEAD~1 >/dev/null && git ls-tree -d HEAD~1 proto >/dev/null 2>&1 && [ -n "$(git ls-tree HEAD~1 proto)" ]; then
  against='.git#ref=HEAD~1'
else
  echo "buf breaking: no earlier API to compare with; skipped"
  exit 0
fi
node_modules/.bin/buf breaking --against "$against"
echo "buf breaking: no breaking changes against $against"
