"""The Access Advisor rebuilt from decision-log files alone: at scale the logs are the source of
truth, and each replica's `<log>.advisor.sqlite` only its cache.

`matching_log_files("logs/decisions*.jsonl")` expands a glob to the files it names and, for each,
its rotated files (`decisions.jsonl.1`, `.2`, ...): the files of several workers
(`decisions.w<pid>.jsonl`) and of several replicas (copied side by side, or on a shared volume)
merge into one report. `usage_from_logs(paths, principal)` streams them line by line (memory is
bounded by what one principal used, under the advisor's own caps, never by the log's size) and
feeds the principal's events to an in-memory `AccessAdvisor`, so the rows are exactly those the
server's advisor keeps: Allow events, not root, with a matched Allow statement, for a service
named like an IAM prefix; the latest time wins, whatever the order of the files.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from typing import Any

from pdp.audit.access_advisor import AccessAdvisor, principal_name
from pdp.audit.suggest import read_events

__all__ = ["matching_log_files", "usage_from_logs"]

MAX_FILES = 10_000  # files one pattern may name


def _rotations(path: str) -> list[str]:
    """`path.1`, `path.2`, ... that exist, oldest first."""
    rotated = [
        p for p in glob.glob(f"{glob.escape(path)}.[0-9]*") if p.rsplit(".", 1)[-1].isdigit()
    ]
    return sorted(rotated, key=lambda p: int(p.rsplit(".", 1)[-1]), reverse=True)


def matching_log_files(pattern: str) -> list[str]:
    """The regular files `pattern` names (a glob; `**` spans directories) and their rotations,
    each once, the Access Advisor's SQLite files left out. ValueError when nothing matches or
    more than MAX_FILES do."""
    out: dict[str, None] = {}
    for match in sorted(glob.glob(pattern, recursive=True)):
        if match.endswith(".sqlite") or "sqlite-" in match or not os.path.isfile(match):
            continue
        for path in [*_rotations(match), match]:
            out[path] = None
        if len(out) > MAX_FILES:
            raise ValueError(f"{pattern}: more than {MAX_FILES} files match")
    if not out:
        raise ValueError(f"{pattern}: no decision-log file matches")
    return list(out)


def usage_from_logs(
    paths: Iterable[str],
    principal: str,
    *,
    max_rows: int = 100_000,
    max_per_principal: int = 500,
) -> tuple[dict[str, dict[str, Any]], dict[str, float], int]:
    """For one principal: service -> {last_allowed, action, policy} (AccessAdvisor.usage),
    action -> last allowed (AccessAdvisor.action_usage), and how many events were read in all.
    A line that is not an event raises ValueError naming the file and line (read_events)."""
    wanted = principal_name(principal)
    advisor = AccessAdvisor(":memory:", max_rows=max_rows, max_per_principal=max_per_principal)
    events = 0
    try:
        for event in read_events(paths):
            events += 1
            if principal_name(event.principal) == wanted:
                advisor.observe(event)
        return advisor.usage(wanted), advisor.action_usage(wanted), events
    finally:
        advisor.close()
