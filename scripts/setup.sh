#!/usr/bin/env bash
# Everything a fresh clone needs before the mesh can start or the tests run:
# npm dependencies, the pinned toolchain (.tools/) and a TypeScript build.
# Safe to run repeatedly; it only does what is missing or out of date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

for tool in node npm go python3; do
  command -v "$tool" >/dev/null || { echo "leadmesh setup: MISSING: $tool is required (Node 20.19+, Go 1.22+, Python 3.10+)" >&2; exit 1; }
done

# npm ci, as Dockerfiles and CI pipelines run it: exactly the lock file,
# which lists every platform's optional binaries (buf, biome, esbuild).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/install-tools.sh
# Every folder under services/ is built (the same command as `npm run build`), so a new service needs no entry here.
node_modules/.bin/tsc -b services/*
