"""Least-privilege policy from the decision log, as IAM Access Analyzer does from CloudTrail.

Only (action, resource) pairs that the log shows allowed are granted: actions that were used on
the same set of resources share a statement, so no statement grants an action on a resource it
was not seen on. The result is checked with `parse_policy` before it is returned.

The account root's decisions are never a user's: an event the root made (`root`, or a root ARN
as principal) is left out, whoever is asked for, a user named "root" included. A logged request
that no policy could grant as logged (a resource that is not an ARN, an action whose service has
`_` or `.`) is skipped and reported through `skipped`, never a failure of the whole suggestion.

A suggestion never grants more than the statements that allowed the logged requests. Each logged
Allow names its matched statements; they are looked up in the store (`Snapshot`), and the
suggested statement keeps their Condition (the conditions of several matched statements
intersected: each operator and key of each, a key two statements test differently kept from the
first), on the literal logged resource, which both the logged request and the matched Resource
cover. A request whose matched statement is no longer in the store as logged (another Sid or
Effect, gone, or no longer allowing the logged request and its context), an account-level grant
(`ACCOUNT_GRANT`, not a statement), or a line naming no Allow statement is reported and skipped.
The result is then re-evaluated: every kept logged request (with its context and time) must be
allowed by it, and each neighbour (the same request with one condition key removed, or a Bool
key flipped) that no matched statement allows must be denied by it; otherwise ValueError.
"""

from __future__ import annotations

import glob
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from pdp.errors import PolicyValidationError
from pdp.language import Policy, PolicySet, parse_policy
from pdp.model import MatchedStatement, Principal
from pdp.store import ACCOUNT_GRANT, Snapshot

from .access_advisor import principal_name
from .decision_log import DecisionEvent

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


# Logged contexts kept per suggested (action, resource, condition) for the re-evaluation.
_SAMPLES_PER_GRANT = 8


def _statement_of(snapshot: Snapshot, user: str, ref: MatchedStatement) -> dict[str, Any] | str:
    """The store's statement a logged decision names, as a one-statement policy document; or
    why it cannot be used (not in the user's policies as logged)."""
    policies = {p.name: p for p in snapshot.user_policies(user) or ()}
    policy = policies.get(ref.policy)
    where = f"{ref.policy} Statement[{ref.statement}]"
    if policy is None:
        return f"{ref.policy} is no longer one of the user's policies in store version " + str(
            snapshot.version
        )
    raw = policy.document.get("Statement")
    statements = [raw] if isinstance(raw, dict) else list(raw or ())
    if ref.statement >= len(statements) or not isinstance(statements[ref.statement], dict):
        return f"{where} is not in store version {snapshot.version}"
    statement = statements[ref.statement]
    if statement.get("Sid") != ref.sid or statement.get("Effect") != ref.effect:
        return f"{where} changed since (Sid or Effect differ in store version {snapshot.version})"
    condition = statement.get("Condition") or {}
    if policy.version != "2012-10-17" and "${" in orjson.dumps(condition).decode():
        return f"{where}: its Condition has ${{ in a policy of Version {policy.version}"
    return {"Version": policy.version or "2012-10-17", "Statement": [statement]}


def _intersect(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The AND of Condition blocks: every operator and key of each; a key two blocks test
    with the same operator but other values is kept as the first has it (values of one key
    are OR-ed, so merging them would widen it)."""
    out: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        for operator, keys in condition.items():
            block = out.setdefault(operator, {})
            for key, values in keys.items():
                block.setdefault(key, values)
    return out


def _allows(policy: Policy, who: Principal, event: DecisionEvent, context: Any) -> bool:
    return (
        PolicySet([policy]).decide(who, event.action, event.resource, context, event.time).allowed
    )


def _neighbours(event: DecisionEvent, condition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The logged context with one condition key unmet: removed, or (Bool) flipped."""
    context = dict(event.context)
    lower = {k.lower(): k for k in context}
    for operator, keys in condition.items():
        for key in keys:
            present = lower.get(key.lower())
            if present is None:
                continue
            yield {k: v for k, v in context.items() if k != present}
            if operator.startswith("Bool"):
                was = context[present] in (True, "true", "True")
                yield context | {present: "false" if was else "true"}


def suggest_policy(
    events: Iterable[DecisionEvent],
    principal: str,
    *,
    since: float,
    snapshot: Snapshot,
    now: float | None = None,
    skipped: list[str] | None = None,
) -> dict[str, Any]:
    """A policy document granting what the user `principal` (name or ARN) was allowed in the
    window, under the conditions of the store's statements that allowed it (see the module's
    docstring). Root events are never counted (asking for the root ARN is a LookupError, as is
    a user the store does not have). Each distinct logged request left out is described once
    in `skipped` when given. ValueError when the re-evaluation finds the suggestion wider."""
    if _is_root(principal):
        raise LookupError(f"{principal!r} is the account root: it has no policies to suggest")
    who = snapshot.user_principal(principal)
    if who is None:
        raise LookupError(f"no user {principal!r} in the store (version {snapshot.version})")
    now = time.time() if now is None else now
    cutoff = now - since
    name = principal_name(principal)
    by_grant: dict[tuple[str, str], set[str]] = defaultdict(set)
    conditions: dict[str, dict[str, Any]] = {"": {}}
    samples: dict[tuple[str, str, str], dict[bytes, tuple[DecisionEvent, list[Policy]]]] = {}
    refused: set[tuple[str, str]] = set()
    sources: dict[MatchedStatement, Policy | str] = {}

    def skip(event: DecisionEvent, resource: str, why: str) -> None:
        if (event.action, resource) not in refused:
            refused.add((event.action, resource))
            if skipped is not None:
                skipped.append(f"{event.action} on {event.resource}: {why}")

    for event in events:
        if event.decision != "Allow" or event.root or _is_root(event.principal):
            continue
        if principal_name(event.principal) != name or event.time < cutoff:
            continue
        resource = _literal(event.resource)
        if (event.action, resource) in refused:
            continue
        problem = _grantable(event.action, resource)
        if problem is not None:
            skip(event, resource, problem)
            continue
        refs = [m for m in event.matched if m.effect == "Allow"]
        if ACCOUNT_GRANT in refs:
            skip(
                event,
                resource,
                "allowed by account.json's AllowUsersToChangePassword,"
                " an account-level grant, not a policy statement",
            )
            continue
        if not refs:
            skip(event, resource, "the log names no Allow statement that allowed it")
            continue
        matched: list[Policy] = []
        why = ""
        for ref in refs:
            if ref not in sources:
                found = _statement_of(snapshot, principal, ref)
                sources[ref] = (
                    found
                    if isinstance(found, str)
                    else parse_policy(found, source=f"{ref.policy} Statement[{ref.statement}]")
                )
            source = sources[ref]
            if isinstance(source, str):
                why = source
            elif not _allows(source, who, event, event.context):
                why = (
                    f"{ref.policy} Statement[{ref.statement}] no longer allows it"
                    " with its logged context (changed since)"
                )
            else:
                matched.append(source)
        if why:
            skip(event, resource, why)
            continue
        condition = _intersect(
            [dict(p.document["Statement"][0].get("Condition") or {}) for p in matched]
        )
        key = orjson.dumps(condition, option=orjson.OPT_SORT_KEYS).decode() if condition else ""
        conditions[key] = condition
        by_grant[(event.action, key)].add(resource)
        kept = samples.setdefault((event.action, resource, key), {})
        context_key = orjson.dumps(dict(event.context), option=orjson.OPT_SORT_KEYS)
        if context_key not in kept and len(kept) < _SAMPLES_PER_GRANT:
            kept[context_key] = (event, matched)
    if not by_grant:
        raise LookupError(f"no allowed decisions for {name!r} in the log window")
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (action, key), seen in by_grant.items():
        grouped[(key, tuple(sorted(seen)))].append(action)
    statements = []
    for n, ((key, resources), actions) in enumerate(
        sorted(grouped.items(), key=lambda item: (sorted(item[1]), item[0][0])), start=1
    ):
        statement: dict[str, Any] = {
            "Sid": f"UsedAccess{n}",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": list(resources),
        }
        if key:
            statement["Condition"] = conditions[key]
        statements.append(statement)
    document = {"Version": "2012-10-17", "Statement": statements}
    suggested = parse_policy(document, source="suggested-policy.json")  # raises if invalid
    _reevaluate(suggested, who, samples, conditions)
    return document


def _reevaluate(
    suggested: Policy,
    who: Principal,
    samples: dict[tuple[str, str, str], dict[bytes, tuple[DecisionEvent, list[Policy]]]],
    conditions: dict[str, dict[str, Any]],
) -> None:
    """Raise ValueError unless the suggestion allows every kept logged request as logged, and
    denies each neighbour with a condition unmet that none of its matched statements allows."""
    for (_, _, key), kept in samples.items():
        for event, matched in kept.values():
            if not _allows(suggested, who, event, event.context):
                raise ValueError(
                    f"the suggestion would deny the logged {event.action} on {event.resource}:"
                    " refusing it"
                )
            for context in _neighbours(event, conditions[key]):
                wider = _allows(suggested, who, event, context) and not any(
                    _allows(p, who, event, context) for p in matched
                )
                if wider:
                    raise ValueError(
                        f"the suggestion would allow {event.action} on {event.resource} with"
                        f" context {context}, which the statements that allowed it deny:"
                        " refusing it"
                    )
