"""Validation findings (and the problems that refuse a document) as text, JSON or SARIF 2.1.0.

SARIF (OASIS Static Analysis Results Interchange Format 2.1.0): one run whose
`tool.driver.rules` are the issue codes met, each with its finding type and AWS's equivalent
code; one result per finding with `ruleId`, `level` (`error` for ERROR, `warning` for
SECURITY_WARNING and WARNING, `note` for SUGGESTION), the message, and one location: the file as
`physicalLocation.artifactLocation.uri` and the JSON path as a `logicalLocation`
(`fullyQualifiedName`, kind `member`). A refused document's problems are results of level
`error` whose rule is the problem's code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pdp.errors import Diagnostic
from pdp.text import printable

from .checks import CHECKS, ValidationFinding

__all__ = ["render_findings"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"ERROR": "error", "SECURITY_WARNING": "warning", "WARNING": "warning"}


def render_findings(
    findings: Sequence[ValidationFinding],
    fmt: str,
    *,
    problems: Sequence[Diagnostic] = (),
    tool_version: str = "",
) -> str:
    """The findings and problems in `fmt` (text, json or sarif), ending with a newline."""
    if fmt == "json":
        doc = {
            "findings": [f.to_dict() for f in findings],
            "problems": [_problem(d) for d in problems],
        }
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(_sarif(findings, problems, tool_version), indent=2) + "\n"
    lines = [str(f) for f in findings]
    count = len(findings)
    lines.append(f"{count} finding{'s' if count != 1 else ''}")
    return "\n".join(lines) + "\n"


def _problem(d: Diagnostic) -> dict[str, Any]:
    return {"code": d.code, "file": d.source, "path": d.path, "message": d.message, "hint": d.hint}


def _location(file: str, path: str) -> dict[str, Any]:
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": file}}}
    if path:
        location["logicalLocations"] = [{"fullyQualifiedName": path, "kind": "member"}]
    return location


def _sarif(
    findings: Sequence[ValidationFinding], problems: Sequence[Diagnostic], tool_version: str
) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for f in findings:
        if f.code not in rules:
            finding_type, aws = CHECKS[f.code]
            rules[f.code] = {
                "id": f.code,
                "shortDescription": {"text": f.code.replace("_", " ").capitalize()},
                "properties": {"findingType": finding_type, "awsIssueCode": aws},
            }
        results.append(
            {
                "ruleId": f.code,
                "level": _LEVEL.get(f.finding_type, "note"),
                "message": {"text": printable(f"{f.message} ({f.path})" if f.path else f.message)},
                "locations": [_location(f.file, f.path)],
                "properties": {"findingType": f.finding_type, "jsonPath": f.path},
            }
        )
    for d in problems:
        if d.code not in rules:
            rules[d.code] = {
                "id": d.code,
                "shortDescription": {"text": "The document is refused"},
                "properties": {"findingType": "REFUSED"},
            }
        results.append(
            {
                "ruleId": d.code,
                "level": "error",
                "message": {"text": printable(d.message)},
                "locations": [_location(d.source or "", d.path)],
            }
        )
    ordered = sorted(rules)
    index = {rule: i for i, rule in enumerate(ordered)}
    for result in results:
        result["ruleIndex"] = index[result["ruleId"]]
    driver: dict[str, Any] = {
        "name": "pdp validate",
        "informationUri": "https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html",
        "rules": [rules[r] for r in ordered],
    }
    if tool_version:
        driver["version"] = tool_version
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
