"""The limits of one request, defined once: the engine (`RequestContext`, `check_request`) and the
server's doors (HTTP and gRPC, `pdp_server.requests`) refuse at the same numbers.

A request past a limit is refused, never cut: through the Python API it is a Deny naming the
limit in `errors`, through HTTP a 400, through gRPC INVALID_ARGUMENT.

- `MAX_STRING` (4,096): characters of the principal, the resource, the request id and of each
  string in the context (also in a list).
- `MAX_ACTION` (256): characters of the action ("service:Action"). The server's doors take up to
  `MAX_STRING` and leave this check to the engine, whose answer is then the Deny.
- `MAX_CONTEXT_KEYS` (128): keys in the context.
- `MAX_KEY` (256): characters of a context key. IAM's longest keys are tag keys,
  "aws:ResourceTag/" and a tag key of up to 128 characters.
- `MAX_LIST` (256): values of one multi-valued context key.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_ACTION", "MAX_CONTEXT_KEYS", "MAX_KEY", "MAX_LIST", "MAX_STRING"]

MAX_STRING: Final = 4096
MAX_ACTION: Final = 256
MAX_CONTEXT_KEYS: Final = 128
MAX_KEY: Final = 256
MAX_LIST: Final = 256
