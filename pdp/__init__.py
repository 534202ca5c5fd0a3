"""pdp: a policy decision point with the semantics of AWS IAM identity policies.

The embedded door::

    import pdp
    policy = pdp.parse_policy(text, source="s3-read.json")
    principal = pdp.Principal.user("john.doe", account="123456789012", tags={"team": "blue"})
    decision = pdp.evaluate([policy], principal, action="s3:GetObject",
                            resource="arn:aws:s3:::bucket/key",
                            context={"aws:SourceIp": "10.0.0.1"})
    decision.decision, decision.reason, decision.matched, decision.errors

`pdp.limits` (also exported by `pdp.language`) holds the limits of one request (context keys,
string lengths), the same numbers the server's HTTP and gRPC doors refuse at.
"""

from pdp.errors import Diagnostic, PdpError, PolicyLoadError, PolicyValidationError, RequestError
from pdp.language import Policy, PolicySet, evaluate, parse_policy
from pdp.model import Decision, MatchedStatement, Principal, Request, Session
from pdp.store import Authorizer, ReloadResult
from pdp.text import printable

__all__ = [
    "Authorizer",
    "Decision",
    "Diagnostic",
    "MatchedStatement",
    "PdpError",
    "Policy",
    "PolicyLoadError",
    "PolicySet",
    "PolicyValidationError",
    "Principal",
    "ReloadResult",
    "Request",
    "Session",
    "RequestError",
    "evaluate",
    "parse_policy",
    "printable",
]

__version__ = "0.1.0"
