"""pdp's servers: gRPC and the HTTP sidecar for decisions, the admin listener, `pdp serve`.

transport (grpc_service, http_sidecar) -> request model (requests) -> Service -> pdp.Authorizer.
No policy logic lives here.
"""
