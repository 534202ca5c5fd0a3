"""The serving core of one worker process: the Authorizer (once loaded), metrics, reloads.

Both transports call `decide` / `batch` with checked requests; nothing here knows HTTP or gRPC.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pdp import Authorizer, Decision, Diagnostic, PolicyLoadError, printable
from pdp.audit import (
    AccessAdvisor,
    DecisionEvent,
    DecisionLog,
    ImpactReport,
    log_files,
    replay,
    report,
    tail_lines,
    worker_path,
)
from pdp.store import (
    DEFAULT_MAX_CHECKS,
    DiffFailed,
    QueryError,
    Snapshot,
    StoreError,
    diff_snapshots,
    load_store,
    open_version,
    resolve_version,
    version_names,
    version_stamp,
    what_can,
    who_can,
)
from pdp_server.config import Config
from pdp_server.control import Control
from pdp_server.errors import (
    BadRequest,
    Busy,
    DeadlineExceeded,
    ExplainDisabled,
    NotFound,
    NotReady,
    ReloadFailed,
    problem,
    problems_of,
)
from pdp_server.metrics import Metrics
from pdp_server.requests import BatchBudget, DecisionRequest, check_context

__all__ = [
    "DeadlineExceeded",
    "NotReady",
    "ReloadFailed",
    "Service",
]

log = logging.getLogger("pdp.server")

# The impact gate (store.json `impact_gate`, docs/store.md) replays at most this many of the
# newest logged decisions, within this many seconds, before a reload activates a version.
GATE_MAX_EVENTS = 100_000
GATE_SECONDS = 30.0
GATE_EXAMPLES = 5
QUERY_SECONDS = 2.0  # who-can's deadline: a page ends early (partial) rather than wait longer
MAX_EXPLAINED = 20  # requests of one batch that may ask for explain (each may take milliseconds)


class Service:
    """Decisions for the transports, and the reload protocol between workers."""

    def __init__(self, config: Config, control: Control | None = None) -> None:
        self.config = config
        self.control = control
        self.metrics = Metrics()
        self.authorizer: Authorizer | None = None
        self.load_error: str | None = None
        self._logged_error: str | None = None  # a refusal is logged once, until it changes
        self._refused_state: object = None  # the store as it was when the last load failed
        self.ready = threading.Event()
        self._applied_generation = 0
        self._stop = threading.Event()
        self._reload_lock = threading.Lock()  # admin reloads and control-file reloads, in turn
        self._impact_lock = threading.Lock()  # one what-if replay at a time (POST /admin/impact)
        self._diff_lock = threading.Lock()  # one `diff` at a time: each loads two versions
        self.advisor: AccessAdvisor | None = None
        self.decision_log: DecisionLog | None = None
        if config.decision_log:
            db = config.advisor_path()
            self.advisor = (
                AccessAdvisor(
                    db,
                    max_rows=config.advisor_max_rows,
                    max_per_principal=config.advisor_max_per_principal,
                )
                if db
                else None
            )
            destination = config.decision_log
            if config.workers > 1 and destination != "stdout":
                destination = worker_path(destination, os.getpid())
            self.decision_log = DecisionLog(
                destination,
                max_bytes=config.decision_log_max_bytes,
                backups=config.decision_log_backups,
                queue_size=config.decision_log_queue,
                queue_bytes=config.decision_log_queue_bytes,
                max_value=config.decision_log_max_value,
                max_context=config.decision_log_max_context,
                allow_sample_rate=config.decision_log_sample,
                on_event=self.advisor.observe if self.advisor else None,
            )

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> bool:
        """Load the store (the pinned version, if the control file pins one). Unpinned, a
        refused current falls back to the newest version that loads (Authorizer.from_store).
        A store unchanged since the last refusal is not loaded again."""
        pin = None
        if self.control is not None:
            state = self.control.read()
            pin, self._applied_generation = state["pin"], state["generation"]
        store = self._store_state(pin)
        if store == self._refused_state:
            return False
        try:
            self.authorizer = Authorizer.from_store(
                self.config.store,
                version=pin,
                cache_size=self.config.cache_size,
                interval=self.config.watch_interval,
                fallback=pin is None,
                build_lock=self.control.build_lock() if self.control is not None else None,
                before_activation=self.impact_gate,
            )
        except PolicyLoadError as exc:
            self._refused_state = store
            self.load_error = str(exc)
            self._log_once(f"cannot load {printable(self.config.store)}: {exc.one_line()}")
            return False
        self.load_error = None
        self.ready.set()
        if self.control is not None:
            self.control.report(self._applied_generation, self.authorizer.version)
        refused = self.authorizer.last_error
        if self.authorizer.fallback_from is not None and refused is not None:
            log.warning(
                "%s: current refused (%s); serving the newest version that loads: %s",
                printable(self.config.store),
                refused.one_line(),
                self.authorizer.version,
            )
        else:
            log.info("serving %s version %s", printable(self.config.store), self.authorizer.version)
        return True

    def impact(self, candidate: str, baseline: str = "logged") -> dict[str, Any]:
        """What-if (POST /admin/impact): the newest GATE_MAX_EVENTS decisions of this server's
        log replayed against the store's version `candidate` (a name, never a path), compared
        with the decisions as logged or (`baseline` "current") with the serving version, and
        what the candidate's impact gate would say. One at a time; bounded by GATE_SECONDS."""
        serving = self._authorizer().snapshot
        destination = self.config.decision_log
        if not destination or destination == "stdout":
            raise NotReady("what-if replays the decision log: it needs a file (PDP_DECISION_LOG)")
        if not self._impact_lock.acquire(blocking=False):
            raise Busy("another what-if replay is running; retry when it is done")
        try:
            try:
                snapshot = load_store(self.config.store, candidate, cache_size=0)
            except PolicyLoadError as exc:
                raise BadRequest(f"candidate: {exc.one_line()}") from None
            gate = snapshot.source.impact_gate if snapshot.source is not None else None
            files = log_files(destination)
            found = replay(
                tail_lines(files, GATE_MAX_EVENTS),
                snapshot,
                baseline=serving if baseline == "current" else None,
                files=files,
                deadline=time.monotonic() + GATE_SECONDS,
                violates=gate.violation() if gate is not None else None,
            )
        finally:
            self._impact_lock.release()
        answer = found.to_dict()
        answer["serving"] = serving.version
        answer["window"] = _window(found)
        answer["gate"] = (
            None
            if gate is None
            else {
                **gate.to_dict(),
                "violations": found.violations,
                "examples": found.violation_examples,
                "refuses": bool(found.violations)
                or found.stopped is not None
                or bool(found.lines and not found.replayed),
            }
        )
        return answer

    def impact_gate(self, serving: Snapshot | None, candidate: Snapshot) -> None:
        """Before a reload (admin, watcher, another worker's) or the first load at start
        (`serving` None) activates `candidate`: when its
        store.json has an `impact_gate`, replay the newest GATE_MAX_EVENTS decisions of this
        server's decision log against it and refuse it (PolicyLoadError) when a change the
        gate refuses shows, when there is no log file to replay, when lines were logged but
        none could be replayed, or when the replay does not finish in GATE_SECONDS (fail
        closed: an unchecked gate is never a pass)."""
        gate = candidate.source.impact_gate if candidate.source is not None else None
        if gate is None:
            return
        destination = self.config.decision_log
        if not destination or destination == "stdout":
            _refuse(
                candidate,
                "the server keeps no decision-log file to replay (PDP_DECISION_LOG is unset or"
                " stdout), so the gate cannot be checked",
            )
            return
        files = log_files(destination)
        found = replay(
            tail_lines(files, GATE_MAX_EVENTS),
            candidate,
            files=files,
            deadline=time.monotonic() + GATE_SECONDS,
            examples=1,
            violates=gate.violation(),
        )
        if found.stopped is not None:
            _refuse(candidate, f"the replay of the decision log did not finish: {found.stopped}")
        if found.lines and not found.replayed:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(found.not_replayable.items()))
            _refuse(
                candidate,
                f"none of the {found.lines} logged lines could be replayed ({reasons}), so the"
                " gate checked nothing",
            )
        if found.violations:
            _refuse_changes(candidate, found)
        log.info(
            "impact gate of %s: %d logged decisions replayed, %d would change, none refused"
            " (%d not replayable; %s)",
            candidate.version,
            found.replayed,
            found.changed,
            found.skipped,
            _window(found),
        )

    def _log_once(self, message: str, *, traceback: bool = False) -> None:
        if message != self._logged_error:
            self._logged_error = message
            log.error("%s", message, exc_info=traceback)

    def _store_state(self, pin: str | None) -> object:
        """What a load depends on, read cheaply: the target version and every version's stamp.
        While it stays the same, a refused store is not loaded again (a load can take seconds)."""
        store = self.config.store
        try:
            name, path = resolve_version(store, pin)
            target: object = (name, str(path), version_stamp(path))
        except (StoreError, OSError, RuntimeError) as exc:
            target = str(exc)
        try:
            root = os.path.join(store, "versions")
            names = version_names(store)
            versions: object = [(n, version_stamp(os.path.join(root, n))) for n in names]
        except (StoreError, OSError) as exc:
            versions = str(exc)
        return pin, target, versions

    def start(self) -> None:
        """Load in the background (retrying), then follow the control file."""
        threading.Thread(target=self._run, name="pdp-loader", daemon=True).start()

    def _run(self) -> None:
        while not self._load_safely():
            if self._stop.wait(self.config.watch_interval):
                return
        if self.control is None:
            return
        while not self._stop.wait(0.05):
            try:
                with self._reload_lock:
                    state = self.control.read()
                    if state["generation"] > self._applied_generation:
                        self._apply(state["generation"], state["pin"])
            except Exception:  # the control loop must outlive any surprise
                log.exception("control loop: unexpected error")

    def _load_safely(self) -> bool:
        try:
            return self.load()
        except Exception as exc:
            self.load_error = f"cannot load: {type(exc).__name__}: {exc}"
            self._log_once(f"cannot load the store: {printable(self.load_error)}", traceback=True)
            return False

    def _apply(self, generation: int, pin: str | None) -> None:
        assert self.authorizer is not None and self.control is not None
        error = None
        try:
            self.authorizer.reload(version=pin)
        except PolicyLoadError as exc:
            error = str(exc)
        self._applied_generation = generation
        self.control.report(generation, self.authorizer.version, error)

    def stop(self) -> None:
        """Stop watching; write every queued decision-log line, then the Access Advisor's rows
        (what the writer cannot write within 10 s is counted as dropped and logged)."""
        self._stop.set()
        if self.authorizer is not None:
            self.authorizer.close()
        if self.decision_log is not None:
            self.decision_log.close()
            stats = self.decision_log.stats()
            log.info(
                "decision log closed: %d written, %d dropped %s, %d truncated",
                stats["written"],
                stats["dropped"],
                stats["dropped_by_reason"],
                stats["truncated"],
            )
        if self.advisor is not None:
            self.advisor.close()

    # --- decisions -------------------------------------------------------------------------

    def _authorizer(self) -> Authorizer:
        authorizer = self.authorizer
        if authorizer is None:
            raise NotReady(self.load_error)
        return authorizer

    def decide(self, request: DecisionRequest) -> Decision:
        return self.decide_on(self._authorizer().snapshot, request)

    def serving(self) -> Snapshot:
        """The snapshot deciding now (NotReady before the first load). A door that maps its
        requests with the store's own settings (AuthZEN) reads both from this one snapshot
        and decides with `decide_on`, so no answer mixes two versions."""
        return self._authorizer().snapshot

    def batch_budget(self) -> BatchBudget:
        """The limits of one batch, for a transport to check while it reads the batch."""
        return BatchBudget(self.config.max_batch, self.config.max_batch_chars)

    def batch(
        self, requests: Sequence[DecisionRequest], deadline: float | None = None
    ) -> tuple[list[Decision], str]:
        """Decide all requests on one snapshot. With a `deadline` (time.monotonic()), stop
        between items once it has passed: nobody waits for the answer any more."""
        snapshot = self._authorizer().snapshot
        out: list[Decision] = []
        for i, request in enumerate(requests):
            if i & 15 == 15:
                # Releases the GIL: without it three big batches in flight made a single call
                # wait ~60 ms (90x) for its turn, with it ~4 ms (docs/serving.md, Batch limits).
                time.sleep(0)
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(f"deadline exceeded after {len(out)} of {len(requests)}")
            out.append(self.decide_on(snapshot, request))
        return out, snapshot.version

    def check_explain(self, asked: int, where: str = "") -> None:
        """Refuse explain when the server does not honour it (PDP_EXPLAIN off), and more than
        MAX_EXPLAINED explained requests in one batch."""
        if asked and not self.config.explain:
            raise ExplainDisabled(where)
        if asked > MAX_EXPLAINED:
            raise BadRequest(
                f"requests: {asked} ask for explain, over the limit of {MAX_EXPLAINED} a batch"
            )

    def explain(self, request: DecisionRequest) -> tuple[Decision, dict[str, Any]]:
        """Decide (counted and logged as `decide` does), then explain the decision on the same
        snapshot (pdp Snapshot.why): the explanation's JSON object. Refused unless PDP_EXPLAIN."""
        self.check_explain(1)
        snapshot = self._authorizer().snapshot
        decision = self.decide_on(snapshot, request)
        return decision, snapshot.why(request, decision).to_dict()

    def batch_explained(
        self,
        requests: Sequence[DecisionRequest],
        explain: Sequence[bool],
        deadline: float | None = None,
    ) -> tuple[list[tuple[Decision, dict[str, Any] | None]], str]:
        """`batch`, with the requests whose `explain` is set explained (the others answered as
        `batch` answers them). The caller checked `check_explain`."""
        snapshot = self._authorizer().snapshot
        out: list[tuple[Decision, dict[str, Any] | None]] = []
        for i, (request, wanted) in enumerate(zip(requests, explain, strict=True)):
            if i & 15 == 15:
                time.sleep(0)  # as in batch
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded(f"deadline exceeded after {len(out)} of {len(requests)}")
            decision = self.decide_on(snapshot, request)
            out.append((decision, snapshot.why(request, decision).to_dict() if wanted else None))
        return out, snapshot.version

    def decide_on(self, snapshot: Snapshot, request: DecisionRequest) -> Decision:
        """Decide on one snapshot, then count it and log it (off the request path): every door's
        decisions go through here. Whether AWS has the action is asked after deciding, and only
        marks the event and a metric: a bounded LRU lookup, which reads a service's files once,
        the first time it is named."""
        started = time.perf_counter()
        decision = snapshot.decide(request)
        elapsed = time.perf_counter() - started
        self.metrics.observe(decision.decision, decision.reason, elapsed)
        unknown = snapshot.is_unknown_action(request.action)
        if unknown:
            self.metrics.unknown_action()
        if self.decision_log is not None:
            try:
                event = DecisionEvent.of(
                    request.principal,
                    request.action,
                    request.resource,
                    request.context,
                    decision,
                    elapsed,
                    request.request_id,
                    unknown_action=unknown,
                    principal_type=request.principal_type,
                    session=request.session,
                )
            except Exception:  # a log failure never fails the request (DecisionLog.record)
                log.exception("decision log: cannot build an event")
            else:
                self.decision_log.record(event)
        return decision

    # --- admin -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        if self.authorizer is None:
            return None
        info = self.authorizer.status()
        if self.decision_log is not None:
            info["decision_log"] = self.decision_log.stats()
        if self.advisor is not None:
            info["access_advisor"] = self.advisor.stats()
        return info

    def access_advisor(self, principal: str, days: int) -> dict[str, Any] | None:
        """Access Advisor's report for a user, or None when the user is unknown."""
        if self.advisor is None:
            raise NotReady("the Access Advisor needs a decision log file (PDP_DECISION_LOG)")
        policies = self._authorizer().snapshot.user_policies(principal)
        if policies is None:
            return None
        return report(
            principal,
            policies,
            self.advisor.usage(principal),
            days=days,
            action_usage=self.advisor.action_usage(principal),
        )

    def diff(self, old: str, new: str, max_checks: int = DEFAULT_MAX_CHECKS) -> dict[str, Any]:
        """`pdp diff` of two version names of the served store (never paths), one at a time:
        Busy while another runs; BadRequest when a version is unknown, does not load, or the
        diff needs more than `max_checks` decisions."""
        if not self._diff_lock.acquire(blocking=False):
            raise Busy("another diff is running; retry when it is done")
        try:
            snapshots = []
            for key, name in (("old", old), ("new", new)):
                try:
                    snapshots.append(open_version(name, self.config.store, names_only=True))
                except DiffFailed as exc:
                    raise BadRequest(f"{key}: {exc}") from None
            try:
                found = diff_snapshots(snapshots[0], snapshots[1], max_checks=max_checks)
            except DiffFailed as exc:
                raise BadRequest(str(exc)) from None
        finally:
            self._diff_lock.release()
        return found.to_dict()

    def who_can(
        self,
        action: str,
        resource: str,
        context: Mapping[str, object] | None,
        limit: int,
        page_token: str | None,
    ) -> dict[str, Any]:
        """Who-can on the serving snapshot (docs/queries.md): one page of at most `limit`
        users, each confirmed by the forward decision; `partial` when QUERY_SECONDS ran out
        (the page's `next_page_token` resumes). BadRequest names the field at fault. The
        context is held to the decision API's limits (keys, key and value sizes, list lengths),
        whichever door it came through: every user's decision reads it."""
        if context is not None:
            check_context(dict(context))
        snapshot = self._authorizer().snapshot
        try:
            found = who_can(snapshot, action, resource, context, limit=limit,
                            page_token=page_token, deadline_seconds=QUERY_SECONDS)  # fmt: skip
        except QueryError as exc:
            raise BadRequest(str(exc)) from None
        return {"version": snapshot.version, **found.to_dict()}

    def what_can(
        self, principal: str, service: str | None, resource_pattern: str | None, limit: int
    ) -> dict[str, Any]:
        """What-can for one user (by name or ARN, any account) or role (by ARN) of the serving
        snapshot, as the Python API answers it; NotFound when it is neither."""
        snapshot = self._authorizer().snapshot
        try:
            found = what_can(snapshot, principal, service=service,
                             resource_pattern=resource_pattern, limit=limit)  # fmt: skip
        except QueryError as exc:
            if str(exc).startswith("principal: no user"):
                raise NotFound(str(exc)) from None
            raise BadRequest(str(exc)) from None
        return {"version": snapshot.version, **found.to_dict()}

    def reload(self, version: str | None) -> dict[str, Any]:
        """Reload here, then (with several workers) everywhere; raise ReloadFailed if refused."""
        with self._reload_lock:
            return self._reload(version)

    def _reload(self, version: str | None) -> dict[str, Any]:
        authorizer = self._authorizer()
        try:
            result = authorizer.reload(version=version)
        except PolicyLoadError as exc:
            raise ReloadFailed(str(exc), problems_of(exc.diagnostics)) from None
        answer: dict[str, Any] = {
            "version": result.version,
            "previous": result.previous,
            "load_seconds": round(result.seconds, 6),
        }
        if self.control is not None:
            generation = self.control.publish(version)
            self._applied_generation = generation
            self.control.report(generation, result.version)
            reports = self.control.wait_for(generation, self.config.workers, timeout=60)
            answer["workers"] = {str(r["pid"]): r["version"] for r in reports}
            late = self.config.workers - len(reports)
            failed = [r for r in reports if r.get("error")]
            if late or failed:
                problems = [
                    problem("worker_refused", str(r["error"]), f"worker {r['pid']}") for r in failed
                ]
                if late:
                    message = f"{late} worker(s) did not confirm the reload in time"
                    problems.append(problem("worker_timeout", message))
                raise ReloadFailed("not every worker reloaded", problems)
        return answer


def _refuse(candidate: Snapshot, message: str, more: Sequence[Diagnostic] = ()) -> None:
    head = Diagnostic("impact_gate", "impact_gate", message, "store.json")
    raise PolicyLoadError([head, *more], candidate.version)


def _refuse_changes(candidate: Snapshot, found: ImpactReport) -> None:
    """The gate's refusal: the counts, then the first few changes it refuses."""
    counts = ", ".join(f"{n} {kind}" for kind, n in found.changes.items() if n)
    message = (
        f"{found.violations} of {found.replayed} replayed logged decisions would change as the"
        f" gate refuses ({counts} in all; compared with the decisions as logged)"
    )
    more = [
        Diagnostic(
            "impact_gate",
            "impact_gate",
            f"{e['change']}: {e['principal']} {e['action']} {e['resource']}:"
            f" {e['before']['decision']} ({e['before']['reason']}) ->"
            f" {e['after']['decision']} ({e['after']['reason']}) ({e['file']}, {_line(e['line'])})",
            "store.json",
        )
        for e in found.violation_examples[:GATE_EXAMPLES]
    ]
    _refuse(candidate, message, more)


def _window(found: ImpactReport) -> str:
    """Which part of the log a gate's replay read: all of it, or the newest lines only."""
    if found.lines >= GATE_MAX_EVENTS:
        return f"the newest {GATE_MAX_EVENTS} lines (the limit): older lines were not replayed"
    if found.stopped is not None:
        return f"the newest {found.lines} lines: the replay stopped early"
    return "every line of the log"


def _line(number: int) -> str:
    """A line number of `tail_lines`: negative ones count from the end of the file."""
    return f"line {number}" if number > 0 else f"line {-number} from the end"
