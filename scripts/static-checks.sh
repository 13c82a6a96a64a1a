#!/usr/bin/env bash
# Checks that need no running mesh: contracts (lint, format, breaking,
# generated code up to date), the generated Envoy config, and types of every
# TypeScript file including tests and scripts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
node_modules/.bin/buf lint
node_modules/.bin/buf format proto --diff --exit-code
bash scripts/breaking.sh
bash scripts/check-generated.sh
# Every folder under services/ is built (the same command as `npm run build`), so a new service needs no entry here.
node_modules/.bin/tsc -b services/*
node_modules/.bin/tsc -p tsconfig.test.json
# The bench's NestJS monolith needs experimentalDecorators/emitDecoratorMetadata: its own tsconfig (emits to bench/monolith/dist, git-ignored).
node_modules/.bin/tsc -p bench/monolith
# Formatting and lint of every TypeScript/JSON source (biome.jsonc); fix with: node_modules/.bin/biome check --write <files>
node_modules/.bin/biome check .
echo "static checks passed"
