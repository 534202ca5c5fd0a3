"""Prometheus metrics of one worker process, kept cheap: a lock and a few integer adds per
decision (prometheus-client's multiprocess mode costs several microseconds per observation).

Each worker answers /metrics for itself, labelled with its pid; scrape every worker or sum.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

__all__ = ["BUCKETS", "Metrics"]

# Seconds; fine below a millisecond, where decisions live.
BUCKETS = (
    0.000005,
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


def _escape(value: object) -> str:
    """A label value as the exposition format writes it: backslash, quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    """`{name="value",...}` with every value escaped; every label goes through here."""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.decisions: dict[tuple[str, str], int] = {}
        self.bucket_counts = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.bad_requests = 0
        self.refusals: dict[int, int] = {}  # status -> count (at most 400, 401, 403)
        self.unknown_actions = 0

    def observe(self, decision: str, reason: str, seconds: float) -> None:
        key = (decision, reason)
        index = bisect_left(BUCKETS, seconds)
        with self._lock:
            self.decisions[key] = self.decisions.get(key, 0) + 1
            self.bucket_counts[index] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def unknown_action(self) -> None:
        """A request named an action AWS's reference does not have (decided as any other)."""
        with self._lock:
            self.unknown_actions += 1

    def bad_request(self) -> None:
        with self._lock:
            self.bad_requests += 1

    def gateway_refused(self, status: int) -> None:
        """A gateway request refused before any policy was read (no principal, a path pdp
        will not match, too little to map): a denial that is not a decision."""
        with self._lock:
            self.refusals[status] = self.refusals.get(status, 0) + 1

    def render(self, status: Callable[[], dict[str, Any] | None]) -> str:
        """Prometheus text format 0.0.4."""
        pid = os.getpid()
        worker = _labels(worker=pid)
        lines = [
            "# HELP pdp_decisions_total Decisions made, by decision and reason.",
            "# TYPE pdp_decisions_total counter",
        ]
        with self._lock:
            decisions = dict(self.decisions)
            buckets = list(self.bucket_counts)
            total, count, bad = self.latency_sum, self.latency_count, self.bad_requests
            unknown = self.unknown_actions
            refused = dict(self.refusals)
        for (decision, reason), n in sorted(decisions.items()):
            labels = _labels(worker=pid, decision=decision, reason=reason)
            lines.append(f"pdp_decisions_total{labels} {n}")
        lines += [
            "# HELP pdp_decision_latency_seconds Time to decide one request, in the server.",
            "# TYPE pdp_decision_latency_seconds histogram",
        ]
        running = 0
        for bound, n in zip((*BUCKETS, float("inf")), buckets, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            labels = _labels(worker=pid, le=le)
            lines.append(f"pdp_decision_latency_seconds_bucket{labels} {running}")
        lines.append(f"pdp_decision_latency_seconds_sum{worker} {total}")
        lines.append(f"pdp_decision_latency_seconds_count{worker} {count}")
        lines += [
            "# HELP pdp_bad_requests_total Requests refused as malformed (HTTP 400, gRPC 3).",
            "# TYPE pdp_bad_requests_total counter",
            f"pdp_bad_requests_total{worker} {bad}",
            "# HELP pdp_unknown_action_requests_total Requests for an action that AWS's service"
            " authorization reference does not have, of no application service the store"
            " declares (decided as any other).",
            "# TYPE pdp_unknown_action_requests_total counter",
            f"pdp_unknown_action_requests_total{worker} {unknown}",
            "# HELP pdp_gateway_refused_total Forward-auth and ext_authz requests denied before"
            " any policy was read, by the HTTP status answered.",
            "# TYPE pdp_gateway_refused_total counter",
        ]
        for status_code, n in sorted(refused.items()):
            lines.append(f"pdp_gateway_refused_total{_labels(worker=pid, status=status_code)} {n}")
        info = status()
        if info is not None:
            cache = info.get("cache") or {"hits": 0, "misses": 0}
            reloads = info["reloads"]
            lines += [
                "# HELP pdp_cache_hits_total Decision cache hits of the current snapshot.",
                "# TYPE pdp_cache_hits_total counter",
                f"pdp_cache_hits_total{worker} {cache['hits']}",
                "# HELP pdp_cache_misses_total Decision cache misses of the current snapshot.",
                "# TYPE pdp_cache_misses_total counter",
                f"pdp_cache_misses_total{worker} {cache['misses']}",
                "# HELP pdp_policy_version_info The policy version being served.",
                "# TYPE pdp_policy_version_info gauge",
                f"pdp_policy_version_info{_labels(worker=pid, version=info['version'])} 1",
                "# HELP pdp_store_fallback 1 while a refused current is replaced by an older"
                " version (status: fallback_from).",
                "# TYPE pdp_store_fallback gauge",
                f"pdp_store_fallback{worker} {0 if info.get('fallback_from') is None else 1}",
                "# HELP pdp_reloads_total Store reloads, by result.",
                "# TYPE pdp_reloads_total counter",
                f"pdp_reloads_total{_labels(worker=pid, result='success')} {reloads['ok']}",
                f"pdp_reloads_total{_labels(worker=pid, result='failure')} {reloads['failed']}",
            ]
            log_stats = info.get("decision_log")
            if log_stats is not None:
                lines += [
                    "# HELP pdp_decision_log_written_total Decision-log lines written.",
                    "# TYPE pdp_decision_log_written_total counter",
                    f"pdp_decision_log_written_total{worker} {log_stats['written']}",
                    "# HELP pdp_decision_log_dropped_total Lines dropped, by reason"
                    " (queue_full, error, shutdown).",
                    "# TYPE pdp_decision_log_dropped_total counter",
                ]
                lines += [
                    f"pdp_decision_log_dropped_total{_labels(worker=pid, reason=reason)} {n}"
                    for reason, n in sorted(log_stats["dropped_by_reason"].items())
                ]
                lines += [
                    "# HELP pdp_decision_log_truncated_total Lines written with values cut.",
                    "# TYPE pdp_decision_log_truncated_total counter",
                    f"pdp_decision_log_truncated_total{worker} {log_stats['truncated']}",
                    "# HELP pdp_decision_log_queued_bytes Estimated bytes waiting for the writer.",
                    "# TYPE pdp_decision_log_queued_bytes gauge",
                    f"pdp_decision_log_queued_bytes{worker} {log_stats['queued_bytes']}",
                ]
        return "\n".join(lines) + "\n"
