#!/usr/bin/env bash
# Regenerate pdp/v1/*_pb2*.py from proto/ with the pinned grpcio-tools (see pyproject.toml's
# "proto" extra). tests/unit/test_proto_stubs.py fails when the committed stubs are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
python -m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" proto/pdp/v1/authorizer.proto
