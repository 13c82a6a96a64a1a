#!/usr/bin/env bash
# Regenerates everything derived from proto/: the TypeScript contracts
# (ts-proto, nice-grpc service definitions) and the descriptor set that Envoy's
# transcoder and server reflection load. Never edit those outputs by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT}"
cd "$ROOT"
node_modules/.bin/buf generate -o "$OUT"
mkdir -p "$OUT/services/contracts/descriptor"
node_modules/.bin/buf build --exclude-source-info -o "$OUT/services/contracts/descriptor/leadmesh.binpb"
