"""`pdp impact`'s replay speed: a decision log of 1,000,000 lines over a generated store,
replayed against a candidate version (pdp.audit.impact.replay, what `pdp impact` runs).

    python bench/impact.py [--lines 1000000 --distinct 20000 --users 2000]

The store (bench_store.generate) and the log are kept under bench/.data/impact/ and reused
while their shape matches. The log's lines are what the DecisionLog writer writes (each
distinct request's event built by DecisionEvent.of and to_dict, then one line per logged
decision with its own time and id). Prints lines/s; never asserts a time.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import ACCOUNT, SERVICES, generate  # noqa: E402

from pdp.audit import DecisionEvent, forward_lines, replay  # noqa: E402
from pdp.store import Snapshot, load_store  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data" / "impact"
VERBS = ("Get", "List", "Put", "Create", "Delete", "Describe")


def candidate_version(store: Path) -> None:
    """0002: 0001 with every tenth group attached to no policy (Allows turn into Denies)."""
    target = store / "versions" / "0002"
    if target.exists():
        return
    shutil.copytree(store / "versions" / "0001", target)
    for i, group in enumerate(sorted((target / "groups").iterdir())):
        if i % 10 == 0:
            group.write_bytes(orjson.dumps({"policies": []}))


def requests(users: int, distinct: int, rng: random.Random) -> list[tuple[str, str, str, dict]]:
    out = []
    for i in range(distinct):
        user = f"u{rng.randrange(users):06d}"
        svc = SERVICES[rng.randrange(len(SERVICES))]
        verb = VERBS[rng.randrange(len(VERBS))]
        if verb in ("Put", "Create"):
            resource = f"arn:aws:{svc}:us-east-1:{ACCOUNT}:home/{user}/k{i % 13}"
        else:
            resource = f"arn:aws:{svc}:us-east-1:{ACCOUNT}:project-{rng.randrange(97)}/k{i % 7}"
        context: dict[str, object] = {}
        if i % 3 == 0:
            context = {"aws:SourceIp": f"10.0.{i % 250}.{i % 200}"}
        if i % 5 == 0:
            context["aws:MultiFactorAuthPresent"] = bool(i % 2)
        out.append((user, f"{svc}:{verb}Object", resource, context))
    return out


def write_log(path: Path, snapshot: Snapshot, lines: int, distinct: int, users: int) -> None:
    marker = path.with_suffix(f".{lines}-{distinct}-{users}")
    if marker.exists() and path.exists():
        return
    rng = random.Random(11)
    events = []
    for principal, action, resource, context in requests(users, distinct, rng):
        decision = snapshot.is_authorized(principal, action, resource, context)
        events.append(DecisionEvent.of(principal, action, resource, context, decision, 2e-5))
    start = time.time() - lines * 0.01
    weights = [1 / (1 + k) for k in range(distinct)]  # a few requests are most of the traffic
    picks = rng.choices(range(distinct), weights=weights, k=lines)
    with path.open("wb") as handle:
        for n, pick in enumerate(picks):
            line = events[pick].to_dict()
            line["decision_id"] = uuid.UUID(int=rng.getrandbits(128)).hex
            handle.write(orjson.dumps(_with_time(line, start + n * 0.01)) + b"\n")
    for old in path.parent.glob(path.stem + ".*-*-*"):
        old.unlink()
    marker.touch()


def _with_time(line: dict, epoch: float) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    line["time"] = f"{stamp}.{int(epoch % 1 * 1e6):06d}Z"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=2_000)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    store = generate(DATA / "store-data", args.users, max(20, args.users // 10), 1_000)
    candidate_version(store)
    baseline = load_store(store, "0001", cache_size=0)
    log = DATA / "decisions.jsonl"
    started = time.perf_counter()
    write_log(log, baseline, args.lines, args.distinct, args.users)
    print(f"log: {args.lines:,} lines ready in {time.perf_counter() - started:.1f} s ({log})")
    candidate = load_store(store, "0002", cache_size=0)
    started = time.perf_counter()
    report = replay(forward_lines([str(log)]), candidate, files=[str(log)])
    seconds = time.perf_counter() - started
    print(
        f"pdp impact replay: {report.lines:,} lines in {seconds:.2f} s ="
        f" {report.lines / seconds:,.0f} lines/s ({report.distinct:,} distinct requests,"
        f" {report.changed:,} would change, {report.skipped} not replayable)"
    )


if __name__ == "__main__":
    main()
