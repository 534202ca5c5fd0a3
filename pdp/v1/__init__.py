"""Generated gRPC/protobuf code for pdp.v1 (scripts/gen_proto.sh); the core imports none of it."""
