"""Least-privilege policy from the decision log, as IAM Access Analyzer does from CloudTrail.

Only (action, resource) pairs that the log shows allowed are granted: actions that were used on
the same set of resources share a statement, so no statement grants an action on a resource it
was not seen on. The result is checked with `parse_policy` before it is returned.

The account root's decisions are never a user's: an event the root made (`root`, or a root ARN
as principal) is left out, whoever is asked for, a user named "root" included. A logged request
that no policy could grant as logged (a resource that is not an ARN, an action whose service has
`_` or `.`) is skipped and reported through `skipped`, never a failure of the whole suggestion.
"""

from __future__ import annotations

import glob
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from pdp.audit.access_advisor import principal_name
from pdp.audit.decision_log import DecisionEvent
from pdp.errors import PolicyValidationError
from pdp.language import parse_policy

__all__ = ["log_files", "parse_since", "read_events", "suggest_policy"]


def parse_since(text: str) -> float:
    """ "30d", "12h", "90m" -> seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f'--since takes a number and a unit (d, h, m, s), like "30d": {text!r}')
    return int(text[:-1]) * units[text[-1]]


def log_files(path: str) -> list[str]:
    """The log and its rotated files, oldest first; with several workers, each worker's file
    (decisions.w<pid>.jsonl, see decision_log.worker_path) and its rotations."""
    stem, ext = os.path.splitext(path)
    bases = [path] + sorted(glob.glob(f"{glob.escape(stem)}.w[0-9]*{glob.escape(ext)}"))
    out = []
    for base in bases:
        rotated = [
            p for p in glob.glob(f"{glob.escape(base)}.[0-9]*") if p.rsplit(".", 1)[-1].isdigit()
        ]
        out += sorted(rotated, key=lambda p: int(p.rsplit(".", 1)[-1]), reverse=True)
        if os.path.exists(base):
            out.append(base)
    return out


def read_events(paths: Iterable[str]) -> Iterator[DecisionEvent]:
    """The logged events, in order, each checked by `DecisionEvent.from_dict`. A torn line (a
    writer that crashed mid-line) is skipped; any other line that is not an event raises
    ValueError naming the file and line, rather than suggest a policy from a part of the log."""
    for path in paths:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    parsed = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line of a crashed writer
                try:
                    yield DecisionEvent.from_dict(parsed)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from None


def _literal(resource: str) -> str:
    """A logged resource as a pattern that matches only itself: `*`, `?` and `$` in it become the
    policy variables ${*}, ${?}, ${$} (Version 2012-10-17). A bare "*" stays: it is what
    actions without resource-level permissions are requested on."""
    if resource == "*":
        return resource
    return resource.replace("$", "${$}").replace("*", "${*}").replace("?", "${?}")


def _is_root(principal: str) -> bool:
    """Whether a logged principal is an account root ARN (`arn:<partition>:iam::<id>:root`)."""
    parts = principal.split(":")
    return len(parts) == 6 and parts[0] == "arn" and parts[2] == "iam" and parts[5] == "root"


def _grantable(action: str, resource: str) -> str | None:
    """Why one logged (action, literal resource) pair cannot be a statement; None if it can."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }
    try:
        parse_policy(document, source="logged request")
    except PolicyValidationError as exc:
        return "; ".join(
            f"{d.message} ({d.hint})" if d.hint else d.message for d in exc.diagnostics
        )
    return None


def suggest_policy(
    events: Iterable[DecisionEvent],
    principal: str,
    *,
    since: float,
    now: float | None = None,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """A policy document granting exactly what the user `principal` (name or ARN) was allowed
    in the window. Root events are never counted (the root has no policies to suggest: asking
    for its ARN is a LookupError). Each distinct logged request that cannot be granted as
    logged is left out and, when `skipped` is given, described there once."""
    if _is_root(principal):
        raise LookupError(f"{principal!r} is the account root: it has no policies to suggest")
    now = time.time() if now is None else now
    cutoff = now - since
    who = principal_name(principal)
    by_action: dict[str, set[str]] = defaultdict(set)
    refused: set[tuple[str, str]] = set()
    for event in events:
        if event.decision != "Allow" or event.root or _is_root(event.principal):
            continue
        if principal_name(event.principal) != who or event.time < cutoff:
            continue
        resource = _literal(event.resource)
        if resource in by_action.get(event.action, ()) or (event.action, resource) in refused:
            continue
        problem = _grantable(event.action, resource)
        if problem is not None:
            refused.add((event.action, resource))
            if skipped is not None:
                skipped.append(f"{event.action} on {event.resource}: {problem}")
            continue
        by_action[event.action].add(resource)
    if not by_action:
        raise LookupError(f"no allowed decisions for {who!r} in the log window")
    by_resources: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for action, resources in by_action.items():
        by_resources[tuple(sorted(resources))].append(action)
    statements = [
        {
            "Sid": f"UsedAccess{n}",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": list(resources),
        }
        for n, (resources, actions) in enumerate(
            sorted(by_resources.items(), key=lambda item: sorted(item[1])), start=1
        )
    ]
    document = {"Version": "2012-10-17", "Statement": statements}
    parse_policy(document, source="suggested-policy.json")  # raises if it would not validate
    return document
