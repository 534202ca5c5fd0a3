#!/usr/bin/env bash
# Regenerate the gRPC stubs from proto/ with the pinned grpcio-tools (the "test" extra) into their
# one home, clients/python/src/pdp_client/v1/ (the server imports them from there):
#   scripts/gen_proto.sh [OUT]    OUT defaults to clients/python/src/pdp_client/v1
# tests/unit/test_proto_stubs.py regenerates into a scratch folder and fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-clients/python/src/pdp_client/v1}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python -m grpc_tools.protoc -Iproto --python_out="$scratch" --pyi_out="$scratch" \
  --grpc_python_out="$scratch" proto/pdp/v1/authorizer.proto proto/pdp/v1/queries.proto
mkdir -p "$out"
for name in authorizer queries; do
  cp "$scratch/pdp/v1/${name}_pb2.py" "$scratch/pdp/v1/${name}_pb2.pyi" "$out/"
  # protoc writes an absolute import (pdp.v1); the stubs live in pdp_client.v1
  sed "s/^from pdp\.v1 import ${name}_pb2/from . import ${name}_pb2/" \
    "$scratch/pdp/v1/${name}_pb2_grpc.py" > "$out/${name}_pb2_grpc.py"
done
