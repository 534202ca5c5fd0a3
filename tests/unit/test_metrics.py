"""server/pdp_server/metrics.py: the Prometheus text the workers render, read back strictly."""

from __future__ import annotations

import re
from typing import Any

from pdp_server.metrics import Metrics

# The exposition format 0.0.4: a comment, or `name{label="value",...} number`, where a label
# value is escaped: backslash, double quote and newline as \\, \" and \n.
_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
_LABEL = rf"[a-zA-Z_][a-zA-Z0-9_]*={_VALUE}"
_SAMPLE = re.compile(
    rf"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{(?P<labels>{_LABEL}(?:,{_LABEL})*)\}})?"
    r" (?P<value>[-+]?(?:[0-9.e+-]+|Inf|NaN))"
)
_PAIR = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)=({_VALUE})")


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], quoted[1:-1])


def parse(text: str) -> list[tuple[str, dict[str, str], str]]:
    """Every sample of `text`; fails on any line the format does not allow."""
    assert text.endswith("\n")
    samples = []
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not an exposition line: {line!r}"
        labels = {k: _unescape(v) for k, v in _PAIR.findall(match["labels"] or "")}
        samples.append((match["name"], labels, match["value"]))
    return samples


HOSTILE = 'v1"} 1\npdp_policy_version_info{version="forged\\'


def status(version: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": version,
        "cache": {"hits": 1, "misses": 2},
        "reloads": {"ok": 3, "failed": 0},
        **extra,
    }


def test_hostile_label_values_are_escaped_and_read_back_as_given() -> None:
    metrics = Metrics()
    metrics.observe("Deny", HOSTILE, 0.0001)
    samples = parse(metrics.render(lambda: status(HOSTILE)))
    versions = [labels for name, labels, _ in samples if name == "pdp_policy_version_info"]
    assert [v["version"] for v in versions] == [HOSTILE]
    decisions = [labels for name, labels, _ in samples if name == "pdp_decisions_total"]
    assert [(d["decision"], d["reason"]) for d in decisions] == [("Deny", HOSTILE)]


def test_fallback_gauge_follows_status() -> None:
    metrics = Metrics()
    for fallback, expected in ((None, "0"), ("0003", "1")):
        samples = parse(metrics.render(lambda f=fallback: status("0002", fallback_from=f)))
        assert [v for name, _, v in samples if name == "pdp_store_fallback"] == [expected]
