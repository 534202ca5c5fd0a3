"""pdp: a policy decision point with the semantics of AWS IAM identity policies.

The embedded door::

    import pdp
    policy = pdp.parse_policy(text, source="s3-read.json")
    principal = pdp.Principal.user("john.doe", account="123456789012", tags={"team": "blue"})
    decision = pdp.evaluate([policy], principal, action="s3:GetObject",
                            resource="arn:aws:s3:::bucket/key",
                            context={"aws:SourceIp": "10.0.0.1"})
    decision.decision, decision.reason, decision.matched, decision.errors
"""

from pdp.authorizer import Authorizer, ReloadResult
from pdp.errors import Diagnostic, PdpError, PolicyLoadError, PolicyValidationError, RequestError
from pdp.evaluate import PolicySet, evaluate
from pdp.model import Decision, MatchedStatement, Principal
from pdp.policy import Policy, parse_policy

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
    "RequestError",
    "evaluate",
    "parse_policy",
]

__version__ = "0.1.0"
