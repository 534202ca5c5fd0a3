"""The policy language: IAM JSON documents, read, checked, compiled and evaluated.

jsondoc (strict JSON) -> validate (the grammar, every problem with its path) -> compile
(wildcard, variables, operators, condition) -> policy (a checked, compiled document) ->
evaluate (a set of policies and one request -> a Decision); principals (the Principal element of
resource-based policies) and chain (AWS's evaluation order across SCPs, RCPs, resource, identity,
boundary and session policies). context holds the request's
condition keys; explain takes a decision apart (why each statement applied or not);
coverage answers "does this pattern match every action/resource?" for audits.

This package knows nothing of stores, files or transports.
"""

from pdp.language.chain import (
    LAYER_ORDER,
    Guard,
    Layers,
    decide_chain,
    forget_plans,
    principal_grant,
)
from pdp.language.context import ReplayClock, RequestContext, as_of, joined_keys
from pdp.language.coverage import matches_every_action, matches_every_resource
from pdp.language.evaluate import PolicySet, check_request, evaluate, failure
from pdp.language.explain import (
    Explanation,
    explain_chain,
    explain_policies,
    render_text,
    unexplained,
)
from pdp.language.jsondoc import JsonObject, MalformedJson, load_json, repeated_key
from pdp.language.operators import to_date, to_number
from pdp.language.policy import Policy, parse_policy
from pdp.language.wildcard import glob_matcher
from pdp.limits import MAX_ACTION, MAX_CONTEXT_KEYS, MAX_KEY, MAX_LIST, MAX_STRING

__all__ = [
    "LAYER_ORDER",
    "Guard",
    "Layers",
    "decide_chain",
    "forget_plans",
    "principal_grant",
    "MAX_ACTION",
    "MAX_CONTEXT_KEYS",
    "MAX_KEY",
    "MAX_LIST",
    "MAX_STRING",
    "Explanation",
    "explain_chain",
    "explain_policies",
    "JsonObject",
    "MalformedJson",
    "Policy",
    "PolicySet",
    "ReplayClock",
    "RequestContext",
    "as_of",
    "joined_keys",
    "check_request",
    "evaluate",
    "failure",
    "glob_matcher",
    "load_json",
    "matches_every_action",
    "matches_every_resource",
    "parse_policy",
    "render_text",
    "repeated_key",
    "to_date",
    "to_number",
    "unexplained",
]
