"""pdp.v1 (proto/pdp/v1/authorizer.proto): the generated messages and gRPC stub, the only copy.

The client uses them, and so does the server (pdp_server depends on this distribution): there is
one set of descriptors in protobuf's pool. Written by scripts/gen_proto.sh; do not edit.
"""
