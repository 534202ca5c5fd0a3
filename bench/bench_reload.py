"""Reload figures on the large store, each with the floor it is compared with in the same run.

    python bench/bench_reload.py [--users 100000 --groups 2000 --policies 10000] [--trials 3]

1. Cold load: time and resident memory (targets: < 4 s, < 300 MB).
2. The floor of any reload that checks every file: open, read and close each file of the version,
   in a bare loop (no parsing, no validation).
3. An incremental reload: a new version directory (a copy, as a publisher makes one) that
   changes one policy and one user, loaded with the serving snapshot as `previous`.
4. Decision latency under a steady open-loop load (2,000 uncached decisions a second from one
   thread, each timed from when it was due), p50/p99 before a reload and while one builds.

The generated store is kept under bench/.data/ (git-ignored) and reused while its shape matches.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import DATA, generate, rss_mb, shape_arguments  # noqa: E402

import pdp  # noqa: E402
from pdp.store.activation import load_directory  # noqa: E402

FOLDERS = ("policies", "groups", "users")
RATE = 2000  # decisions per second under the steady load


def read_floor(version: Path) -> float:
    """Seconds to list, open, read and close every file of a version, and nothing else (opened
    relative to their folder, the cheapest way)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    started = time.perf_counter()
    for folder in FOLDERS:
        folder_fd = os.open(version / folder, os.O_RDONLY | os.O_DIRECTORY)
        for entry in os.scandir(version / folder):
            fd = os.open(entry.name, flags, dir_fd=folder_fd)
            os.read(fd, 65536)
            os.close(fd)
        os.close(folder_fd)
    return time.perf_counter() - started


def change_one_policy_and_one_user(version: Path, trial: int) -> None:
    """Rewrite P00003 and u000004 with content no earlier trial had."""
    stamp = f"{trial}-{time.time_ns()}"
    policy = version / "policies" / "P00003.json"
    doc = orjson.loads(policy.read_bytes())
    doc["Statement"][0]["Sid"] = f"Changed{stamp.replace('-', '')}"
    policy.write_bytes(orjson.dumps(doc))
    user = version / "users" / "u000004.json"
    doc = orjson.loads(user.read_bytes())
    doc["tags"]["changed"] = stamp
    user.write_bytes(orjson.dumps(doc))


class SteadyLoad:
    """One thread deciding RATE requests a second, each timed from when it was due."""

    def __init__(self, authz: pdp.Authorizer, users: list[str]) -> None:
        self.authz = authz
        self.users = users
        self.samples: list[tuple[float, float]] = []  # (due, latency)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        period, clock = 1 / RATE, time.perf_counter
        due, i = clock(), 0
        resource = "arn:aws:s3:us-east-1:123456789012:project-3/x"
        context = {"aws:MultiFactorAuthPresent": "true"}
        while not self._stop.is_set():
            now = clock()
            if now < due:
                time.sleep(due - now)
            user = self.users[i % len(self.users)]
            self.authz.is_authorized(user, "s3:GetObject", resource, context)
            self.samples.append((due, clock() - due))
            i += 1
            due += period
            if clock() - due > 1.0:  # fell a second behind: the machine stalled; restart
                due = clock()

    def window(self, start: float, end: float) -> list[float]:
        return [latency for due, latency in self.samples if start <= due <= end]


def percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return values[len(values) // 2] * 1e6, values[int(len(values) * 0.99)] * 1e6


def main() -> None:
    parser = shape_arguments()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()

    store = generate(DATA / "big", args.users, args.groups, args.policies)
    first = store / "versions" / "0001"
    files = sum(len(os.listdir(first / f)) for f in FOLDERS)
    print(f"store: {args.users} users, {args.groups} groups, {args.policies} policies")

    second = store / "versions" / "0002"
    if not second.is_dir():
        shutil.copytree(first, second)
    # This machine's page cache does not keep files for long: read both versions once, so that
    # every figure below is of files in memory, as the floor is.
    read_floor(first)
    read_floor(second)

    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    serving = load_directory(first, name="0001", cache_size=0)
    cold = time.perf_counter() - started
    after = rss_mb()
    print(
        f"cold load:            {cold:6.2f} s, resident memory {after:.0f} MB "
        f"(+{after - before:.0f} MB; targets < 4 s and < 300 MB)"
    )
    floor = statistics.median(read_floor(first) for _ in range(3))
    print(f"read every file:      {floor:6.2f} s ({files} files: the floor of a checked reload)")

    times = []
    for trial in range(args.trials):
        change_one_policy_and_one_user(second, trial)
        started = time.perf_counter()
        load_directory(second, name="0002", cache_size=0, previous=serving)
        times.append(time.perf_counter() - started)
    reload_s = statistics.median(times)
    print(
        f"incremental reload:   {reload_s:6.2f} s (median of {args.trials}; one policy and one"
        f" user changed): {reload_s / cold:.2f}x the cold load, {reload_s / floor:.2f}x the floor"
    )

    rng = random.Random(3)
    users = [f"u{rng.randrange(args.users):06d}" for _ in range(4096)]
    authz = pdp.Authorizer(serving, store=str(store), cache_size=0)
    baseline: list[float] = []
    during: list[float] = []
    with SteadyLoad(authz, users) as load:
        for trial in range(args.trials):
            time.sleep(2.0)
            start = time.perf_counter()
            baseline += load.window(start - 1.5, start)
            change_one_policy_and_one_user(second, args.trials + trial)
            authz.reload(version="0002" if trial % 2 == 0 else "0001")
            end = time.perf_counter()
            during += load.window(start, end)
        time.sleep(0.5)
    (b50, b99), (d50, d99) = percentiles(baseline), percentiles(during)
    print(
        f"steady load, {RATE}/s:  before a reload p50 {b50:6.0f} us  p99 {b99:7.0f} us "
        f"({len(baseline)} decisions)"
    )
    print(
        f"                      while building p50 {d50:6.0f} us  p99 {d99:7.0f} us "
        f"({len(during)} decisions): p99 {d99 / b99:.2f}x before (target <= 2x)"
    )


if __name__ == "__main__":
    main()
