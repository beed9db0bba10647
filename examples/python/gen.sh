#!/usr/bin/env bash
# Generates the Python stubs for proto/yuma/v1/epoch.proto into examples/python/yuma_pb/
# (gitignored). Needs the packages of requirements.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$here/yuma_pb"
python3 -m grpc_tools.protoc -I "$root/proto" \
  --python_out="$here/yuma_pb" --grpc_python_out="$here/yuma_pb" \
  "$root/proto/yuma/v1/epoch.proto"
echo "stubs in $here/yuma_pb"
