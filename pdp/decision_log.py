"""The decision log: one JSON line per decision (the audit trail), written off the request path.

`DecisionLog.record` only puts an event on a bounded queue; a writer thread turns events into
JSON lines (orjson), writes them to stdout or to a file with size-based rotation, and feeds the
Access Advisor store. When the queue is full (a stalled disk, a FIFO nobody reads) the event is
dropped and counted: a request is never blocked by its log line. `close()` drains the queue, so a
clean shutdown loses nothing.

Sampling: Allow decisions are kept with probability `allow_sample_rate`; Deny decisions and every
decision involving the account root are always kept.

An event (opa's EventV1, in IAM's words)::

    {"decision_id", "time", "principal", "action", "resource", "context", "decision", "reason",
     "matched": [...], "errors": [...], "policy_version", "root", "latency_us", "request_id"}
"""

from __future__ import annotations

import logging
import os
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from pdp.model import Decision

__all__ = ["DecisionLog", "make_event", "worker_path"]

log = logging.getLogger(__name__)

_STOP = object()


def worker_path(path: str, pid: int) -> str:
    """One file per worker process ("decisions.jsonl" -> "decisions.w1234.jsonl"): rotation is
    then never shared between processes, which cannot coordinate it safely."""
    stem, ext = os.path.splitext(path)
    return f"{stem}.w{pid}{ext}"


def make_event(
    principal: str,
    action: str,
    resource: str,
    context: Mapping[str, Any] | None,
    decision: Decision,
    latency_s: float,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The log event of one decision."""
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return {
        "decision_id": uuid.uuid4().hex,
        "time": stamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "principal": principal,
        "action": action,
        "resource": resource,
        "context": dict(context) if context else {},
        "decision": decision.decision,
        "reason": decision.reason,
        "matched": [m.to_dict() for m in decision.matched],
        "errors": list(decision.errors),
        "policy_version": decision.policy_version,
        "root": decision.root,
        "latency_us": round(latency_s * 1e6, 1),
        "request_id": request_id,
    }


class DecisionLog:
    """`DecisionLog("stdout")` or `DecisionLog("/var/log/pdp/decisions.jsonl", max_bytes=...)`."""

    def __init__(
        self,
        destination: str = "stdout",
        *,
        max_bytes: int = 100 << 20,
        backups: int = 5,
        queue_size: int = 10_000,
        allow_sample_rate: float = 1.0,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if not 0.0 <= allow_sample_rate <= 1.0:
            raise ValueError("allow_sample_rate is between 0 and 1")
        self.destination = destination
        self.max_bytes = max_bytes
        self.backups = backups
        self.allow_sample_rate = allow_sample_rate
        self.on_event = on_event
        self.dropped = 0
        self.written = 0
        self.sampled_out = 0
        self._count_lock = threading.Lock()  # request threads count drops and samples
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._handle: IO[bytes] | None = None
        self._size = 0
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="pdp-decision-log", daemon=True)
        self._writer.start()

    # --- the request path: never blocks ------------------------------------------------------

    def record(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None,
        decision: Decision,
        latency_s: float,
        request_id: str | None = None,
    ) -> None:
        if (
            decision.decision == "Allow"
            and not decision.root
            and self.allow_sample_rate < 1.0
            and random.random() >= self.allow_sample_rate
        ):
            with self._count_lock:
                self.sampled_out += 1
            return
        item = (principal, action, resource, context, decision, latency_s, request_id, time.time())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._count_lock:
                self.dropped += 1

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._flush()
                return
            try:
                principal, action, resource, context, decision, latency, request_id, now = item
                event = make_event(
                    principal, action, resource, context, decision, latency, request_id, now=now
                )
                self._write(orjson.dumps(event) + b"\n")
                self.written += 1
                if self.on_event is not None:
                    self.on_event(event)
            except Exception:  # a log failure must never stop the writer
                log.exception("decision log: cannot write an event")
                self.dropped += 1
            if self._queue.empty():
                self._flush()

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            if self.destination == "stdout":
                self._handle = sys.stdout.buffer
            else:
                # Opening a FIFO blocks until a reader comes: that happens here, in the writer.
                self._handle = open(self.destination, "ab")  # noqa: SIM115
                self._size = self._handle.tell()
        return self._handle

    def _write(self, line: bytes) -> None:
        handle = self._open()
        if self.destination != "stdout" and self._size + len(line) > self.max_bytes > 0:
            self._rotate(len(line))
            handle = self._open()
        handle.write(line)
        self._size += len(line)

    def _reopen_if_moved(self) -> None:
        """Several workers may share one file: when another one rotated it, follow the new file
        (as logging.handlers.WatchedFileHandler does), and learn its size."""
        if self._handle is None or self.destination == "stdout":
            return
        try:
            same = os.stat(self.destination).st_ino == os.fstat(self._handle.fileno()).st_ino
        except OSError:
            same = False
        if not same:
            self._handle.close()
            self._handle = None
            self._open()

    def _rotate(self, incoming: int) -> None:
        self._reopen_if_moved()
        if self._handle is not None:
            self._size = self._handle.tell()
            if self._size == 0 or self._size + incoming <= self.max_bytes:
                return  # another worker rotated it already (or one line is larger than it all)
            self._handle.close()
            self._handle = None
        if not os.path.isfile(self.destination):
            return
        for n in range(self.backups - 1, 0, -1):
            older = f"{self.destination}.{n}"
            if os.path.exists(older):
                os.replace(older, f"{self.destination}.{n + 1}")
        if self.backups > 0:
            os.replace(self.destination, f"{self.destination}.1")
        else:
            os.unlink(self.destination)
        self._size = 0

    def _flush(self) -> None:
        if self._handle is not None:
            try:
                self._handle.flush()
                self._reopen_if_moved()
            except OSError:
                log.exception("decision log: flush failed")

    # --- shutdown ----------------------------------------------------------------------------

    def close(self, timeout: float = 10.0) -> bool:
        """Write everything queued, then stop; False if the writer did not finish in time."""
        if self._closed:
            return True
        self._closed = True
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline or not self._writer.is_alive():
                    return False
        self._writer.join(max(0.0, deadline - time.monotonic()))
        if self._handle is not None and self._handle is not sys.stdout.buffer:
            self._handle.close()
        return not self._writer.is_alive()

    def stats(self) -> dict[str, int]:
        return {
            "written": self.written,
            "dropped": self.dropped,
            "sampled_out": self.sampled_out,
            "queued": self._queue.qsize(),
        }
