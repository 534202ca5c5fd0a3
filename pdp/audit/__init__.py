"""The audit trail and the posture reports built on it and on the store.

decision_log (every decision as one JSON line, off the request path) -> access_advisor (last
use of each service per principal, from the log) and suggest (a least-privilege policy from
the logged Allows); findings reads a store version for the audit findings, credentials for
the credential report.
"""

from pdp.audit.access_advisor import AccessAdvisor, granted_services, principal_name, report
from pdp.audit.advisor_log import matching_log_files, usage_from_logs
from pdp.audit.credentials import credential_report
from pdp.audit.decision_log import DecisionEvent, DecisionLog, LoggedSession, worker_path
from pdp.audit.findings import SEVERITIES, Finding, audit, invalid_store, render
from pdp.audit.impact import (
    ChangeGroup,
    ImpactReport,
    change_kind,
    forward_lines,
    render_impact,
    replay,
    tail_lines,
)
from pdp.audit.suggest import log_files, parse_since, read_events, suggest_policy

__all__ = [
    "SEVERITIES",
    "AccessAdvisor",
    "ChangeGroup",
    "ImpactReport",
    "change_kind",
    "forward_lines",
    "render_impact",
    "replay",
    "tail_lines",
    "DecisionEvent",
    "DecisionLog",
    "Finding",
    "LoggedSession",
    "audit",
    "credential_report",
    "granted_services",
    "invalid_store",
    "log_files",
    "matching_log_files",
    "parse_since",
    "principal_name",
    "read_events",
    "render",
    "report",
    "suggest_policy",
    "usage_from_logs",
    "worker_path",
]
