#!/usr/bin/env bash
# Regenerate the gRPC stubs from proto/ with the pinned grpcio-tools (the "test" extra):
#   pdp/v1/*_pb2*.py                           the server's
#   clients/python/src/pdp_client/_pb/*.py     the client's copy (imports made package-relative)
# tests/unit/test_proto_stubs.py fails when either is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
python -m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" proto/pdp/v1/authorizer.proto
client="${2:-clients/python/src/pdp_client/_pb}"
mkdir -p "$client"
cp "$out/pdp/v1/authorizer_pb2.py" "$out/pdp/v1/authorizer_pb2.pyi" "$client/"
sed 's/^from pdp\.v1 import authorizer_pb2/from . import authorizer_pb2/' \
  "$out/pdp/v1/authorizer_pb2_grpc.py" > "$client/authorizer_pb2_grpc.py"
