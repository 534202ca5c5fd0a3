"""Access Advisor (persisted, granted vs. used) and suggest-policy (exactly what the log shows)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pdp
from pdp.audit.access_advisor import AccessAdvisor, principal_name, report
from pdp.audit.decision_log import DecisionEvent, DecisionLog
from pdp.audit.suggest import _reevaluate, log_files, parse_since, read_events, suggest_policy
from pdp.cli import main
from pdp.model import MatchedStatement
from pdp.store import ACCOUNT_GRANT

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "store"
DAY = 86400


EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def make_store(root: Path, users: dict[str, list[str]], policies: dict[str, object]) -> Path:
    """A one-version store: each user with its attached customer policies."""
    version = root / "store" / "versions" / "0001"
    for folder in ("users", "policies", "groups", "tests"):
        (version / folder).mkdir(parents=True)
    (version / "account.json").write_text(json.dumps({"account_id": "123456789012"}))
    for name, attached in users.items():
        (version / "users" / f"{name}.json").write_text(json.dumps({"policies": attached}))
    for name, document in policies.items():
        (version / "policies" / f"{name}.json").write_text(json.dumps(document))
    (root / "store" / "current").symlink_to("versions/0001")
    return root / "store"


def p_store(root: Path) -> Path:
    """bob, root (a user so named) and carol, each allowed everything by policies/P.json."""
    return make_store(root, {u: ["P"] for u in ("bob", "root", "carol")}, {"P": EVERYTHING})


def event(principal: str, action: str, when: float, decision: str = "Allow") -> DecisionEvent:
    return DecisionEvent(
        when,
        principal,
        action,
        "*",
        {},
        "Allow" if decision == "Allow" else "Deny",
        "allowed" if decision == "Allow" else "implicitDeny",
        (MatchedStatement("policies/P.json", 0, None, "Allow"),),
    )


def old_line(principal: str, action: str, when: float) -> str:
    """A logged line of the format before schema_version existed."""
    line = event(principal, action, when).to_dict()
    del line["schema_version"]
    line["decision_id"] = "0" * 32
    return json.dumps(line)


def test_principal_names() -> None:
    assert principal_name("bob") == "bob"
    assert principal_name("arn:aws:iam::123456789012:user/eng/bob") == "bob"
    assert principal_name("arn:aws:iam::123456789012:root") == "root"


def test_advisor_persists_across_restarts_and_keeps_the_latest(tmp_path: Path) -> None:
    db = str(tmp_path / "advisor.sqlite")
    now = time.time()
    first = AccessAdvisor(db)
    first.observe(event("bob", "s3:GetObject", now - 5 * DAY))
    first.observe(event("arn:aws:iam::123456789012:user/bob", "s3:PutObject", now - DAY))
    first.observe(event("bob", "ec2:RunInstances", now - 2 * DAY, decision="Deny"))
    first.close()
    second = AccessAdvisor(db)
    second.observe(event("bob", "s3:ListBucket", now - 3 * DAY))  # older than the one stored
    usage = second.usage("bob")
    assert set(usage) == {"s3"}
    assert usage["s3"]["action"] == "s3:PutObject"
    assert abs(usage["s3"]["last_allowed"] - (now - DAY)) < 1
    assert set(second.last_activity()) == {"bob"}
    second.close()


def test_advisor_keeps_only_valid_service_prefixes(tmp_path: Path) -> None:
    """A caller's action is not a service name until it looks like an IAM service prefix."""
    advisor = AccessAdvisor(str(tmp_path / "advisor.sqlite"))
    now = time.time()
    for action in ("Bad_Svc:Get", "s3 :Get", "x" * 65 + ":Get", ":Get", "NoColon", "s3*:Get"):
        advisor.observe(event("alice", action, now))
    advisor.observe(event("alice", "S3:GetObject", now))
    advisor.observe(event("alice", "execute-api:Invoke", now))
    assert set(advisor.usage("alice")) == {"s3", "execute-api"}
    assert advisor.stats()["refused"] == 6
    advisor.close()


def test_invented_services_are_bounded_per_principal_and_in_all(tmp_path: Path) -> None:
    """Under "Action": "*" any name is granted: the table is capped, the oldest rows go first,
    and one principal cannot push out the others."""
    db = str(tmp_path / "advisor.sqlite")
    advisor = AccessAdvisor(db, max_rows=50, max_per_principal=10, flush_every=0.0)
    now = time.time()
    advisor.observe(event("bob", "s3:GetObject", now - 1000))
    for i in range(200):
        advisor.observe(event("alice", f"svc{i}:Do", now - 500 + i))
    assert sorted(advisor.usage("alice")) == sorted(f"svc{i}" for i in range(190, 200))
    assert set(advisor.usage("bob")) == {"s3"}
    for p in range(10):
        for i in range(8):
            advisor.observe(event(f"user{p}", f"svc{i}:Do", now + 10 * p + i))
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM last_access").fetchone()[0]
    assert rows == 50
    assert advisor.usage("bob") == {}  # the oldest row of all went first
    assert len(advisor.usage("user9")) == 8
    assert advisor.stats()["pruned"] == 190 + (1 + 10 + 80 - 50)
    advisor.close()


def test_report_granted_vs_used() -> None:
    authz = pdp.Authorizer.from_directory(EXAMPLE / "versions" / "0002")
    entry = authz.snapshot.index.resolve("bob")
    now = time.time()
    usage = {
        "s3": {"last_allowed": now - DAY, "action": "s3:GetObject", "policy": "x"},
        "ec2": {"last_allowed": now - 200 * DAY, "action": "ec2:StopInstances", "policy": "y"},
    }
    answer = report("bob", entry.policies, usage, days=90, now=now)  # type: ignore[union-attr]
    assert answer["services_granted"] == ["ec2", "orders", "s3"]
    assert answer["unused_for_days"] == ["ec2", "orders"]  # ec2 was last used 200 days ago
    assert [u["service"] for u in answer["services_used"]] == ["ec2", "s3"]


def test_parse_since() -> None:
    assert parse_since("30d") == 30 * DAY and parse_since("12h") == 12 * 3600
    with pytest.raises(ValueError, match="like"):
        parse_since("soon")


LOGGED = [
    ("bob", "s3:GetObject", "arn:aws:s3:::example-bucket/a.csv"),
    ("bob", "s3:GetObject", "arn:aws:s3:::example-bucket/b.csv"),
    ("bob", "s3:PutObject", "arn:aws:s3:::home-bucket/home/bob/notes.txt"),
    ("bob", "ec2:DescribeInstances", "*"),
    ("bob", "orders:Read", "arn:app:orders:::order/42"),
    ("bob", "orders:Read", "arn:app:orders:::order/*odd?name$"),
]


def test_suggested_policy_grants_exactly_what_the_log_shows(tmp_path: Path) -> None:
    """Every logged Allow is still allowed by the suggestion, and nothing broader is granted."""
    authz = pdp.Authorizer.from_store(EXAMPLE, watch=False)
    log_path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(log_path), max_bytes=1500, backups=20)
    office = {"aws:SourceIp": "203.0.113.9"}  # EC2 is denied from elsewhere
    for principal, action, resource in LOGGED:
        decision = authz.is_authorized(principal, action, resource, office)
        assert decision.allowed, action
        log.record(DecisionEvent.of(principal, action, resource, office, decision, 0.0))
    denied = authz.is_authorized("bob", "iam:CreateUser", "*")  # a Deny is not evidence
    log.record(DecisionEvent.of("bob", "iam:CreateUser", "*", None, denied, 0.0))
    log.record(
        DecisionEvent.of(
            "alice",
            "s3:DeleteBucket",
            "*",
            None,
            authz.is_authorized("alice", "s3:DeleteBucket", "*"),
            0.0,
        )
    )
    assert log.close()
    assert len(log_files(str(log_path))) > 1  # the rotated files are read too
    document = suggest_policy(
        read_events(log_files(str(log_path))), "bob", since=30 * DAY, snapshot=authz.snapshot
    )
    policy = pdp.parse_policy(document, source="suggested.json")
    bob = pdp.Principal.user("bob", account="123456789012", tags={"team": "blue"})
    for _, action, resource in LOGGED:
        assert pdp.evaluate([policy], bob, action=action, resource=resource).allowed, action
    for action, resource in [
        ("s3:PutObject", "arn:aws:s3:::example-bucket/a.csv"),  # action seen, not on this
        ("s3:GetObject", "arn:aws:s3:::example-bucket/c.csv"),
        ("orders:Read", "arn:app:orders:::order/43"),  # the logged "*" was literal
        ("iam:CreateUser", "*"),  # denied in the log
        ("s3:DeleteBucket", "*"),  # someone else's
    ]:
        assert not pdp.evaluate([policy], bob, action=action, resource=resource).allowed, action


def test_suggest_policy_cli_output_validates(tmp_path: Path) -> None:
    log_path = tmp_path / "decisions.jsonl"
    log_path.write_text(
        "\n".join(old_line("bob", a, time.time()) for a in ("s3:GetObject", "sqs:SendMessage"))
        + "\n{torn"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pdp.cli",
            "suggest-policy",
            "--principal",
            "bob",
            "--log",
            str(log_path),
            "--since",
            "1d",
            "--store",
            str(p_store(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "suggested.json").write_text(out.stdout)
    check = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "validate", str(tmp_path / "suggested.json")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    none = subprocess.run(
        [
            sys.executable,
            "-m",
            "pdp.cli",
            "suggest-policy",
            "--principal",
            "carol",
            "--log",
            str(log_path),
            "--store",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
    )
    assert none.returncode == 1 and "no allowed decisions for 'carol'" in none.stderr


def test_suggest_policy_reads_old_and_new_lines_and_refuses_a_newer_schema(
    tmp_path: Path,
) -> None:
    """Lines of before schema_version and of version 1 mix; a line of a version this pdp does
    not know stops the command with its file and line, rather than suggest from part of the log."""
    log_path = tmp_path / "decisions.jsonl"
    now = time.time()
    current = event("bob", "sqs:SendMessage", now).to_dict() | {"decision_id": "1" * 32}
    log_path.write_text(old_line("bob", "s3:GetObject", now) + "\n" + json.dumps(current) + "\n")
    command = [sys.executable, "-m", "pdp.cli", "suggest-policy", "--principal", "bob"]
    command += ["--log", str(log_path), "--store", str(p_store(tmp_path))]
    ok = subprocess.run(command, capture_output=True, text=True, check=True)
    assert json.loads(ok.stdout)["Statement"][0]["Action"] == ["s3:GetObject", "sqs:SendMessage"]
    with log_path.open("a") as handle:
        handle.write(json.dumps(current | {"schema_version": 2}) + "\n")
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"{log_path}:3: decision event schema_version 2 is newer" in refused.stderr


def test_log_files_include_every_worker_and_rotation(tmp_path: Path) -> None:
    base = tmp_path / "decisions.jsonl"
    for name in (
        "decisions.jsonl",
        "decisions.jsonl.1",
        "decisions.w12.jsonl",
        "decisions.w12.jsonl.2",
        "decisions.w12.jsonl.1",
        "decisions.w7.jsonl",
        "decisions.jsonl.advisor.sqlite",
    ):
        (tmp_path / name).write_text("")
    assert [Path(p).name for p in log_files(str(base))] == [
        "decisions.jsonl.1",
        "decisions.jsonl",
        "decisions.w12.jsonl.2",
        "decisions.w12.jsonl.1",
        "decisions.w12.jsonl",
        "decisions.w7.jsonl",
    ]


ROOT_ARN = "arn:aws:iam::123456789012:root"


def logged(principal: str, action: str, resource: str = "*", *, root: bool = False) -> str:
    """One logged Allow line, as the server writes it."""
    line = DecisionEvent(
        time.time(),
        principal,
        action,
        resource,
        {},
        "Allow",
        "allowed",
        () if root else (MatchedStatement("policies/P.json", 0, None, "Allow"),),
        root=root,
    ).to_dict()
    return json.dumps(line | {"decision_id": "2" * 32})


# (logged lines, principal asked for, exit code, suggested actions, lines on stderr)
SUGGEST_CASES: list[tuple[list[str], str, int, list[str], list[str]]] = [
    # the root's activity is never a user's, not even one named "root"
    (
        [logged(ROOT_ARN, "s3:DeleteBucket", root=True), logged("root", "s3:GetObject")],
        "root",
        0,
        ["s3:GetObject"],
        [],
    ),
    (
        [logged(ROOT_ARN, "s3:DeleteBucket", root=True), logged("root", "s3:GetObject")],
        "arn:aws:iam::123456789012:user/root",
        0,
        ["s3:GetObject"],
        [],
    ),
    (
        [logged(ROOT_ARN, "s3:DeleteBucket", root=True)],
        "root",
        1,
        [],
        ["pdp suggest-policy: no allowed decisions for 'root' in the log window"],
    ),
    (
        [logged(ROOT_ARN, "s3:DeleteBucket", root=True)],
        ROOT_ARN,
        1,
        [],
        [f"pdp suggest-policy: '{ROOT_ARN}' is the account root: it has no policies to suggest"],
    ),
    # requests no policy could grant as logged are reported and skipped, once each
    (
        [
            logged("bob", "s3:GetObject", "example-bucket"),
            logged("bob", "s3:GetObject", "example-bucket"),
            logged("bob", "my_app:Read", "*"),
            logged("bob", "my.app:Read", "*"),
            logged("bob", "sqs:SendMessage", "*"),
        ],
        "bob",
        0,
        ["sqs:SendMessage"],
        [
            "pdp suggest-policy: skipped a logged request: s3:GetObject on example-bucket:"
            ' invalid resource "example-bucket" (a resource is "*" or an ARN:'
            " arn:partition:service:region:account:resource)",
            "pdp suggest-policy: skipped a logged request: my_app:Read on *:"
            ' invalid action "my_app:Read" (an action is "*" or "service:action",'
            ' e.g. "s3:GetObject")',
            "pdp suggest-policy: skipped a logged request: my.app:Read on *:"
            ' invalid action "my.app:Read" (an action is "*" or "service:action",'
            ' e.g. "s3:GetObject")',
        ],
    ),
    (
        [logged("bob", "my_app:Read", "*")],
        "bob",
        1,
        [],
        [
            "pdp suggest-policy: skipped a logged request: my_app:Read on *:"
            ' invalid action "my_app:Read" (an action is "*" or "service:action",'
            ' e.g. "s3:GetObject")',
            "pdp suggest-policy: no allowed decisions for 'bob' in the log window",
        ],
    ),
]


@pytest.mark.parametrize(("lines", "principal", "code", "actions", "errors"), SUGGEST_CASES)
def test_suggest_policy_leaves_root_out_and_skips_odd_requests(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lines: list[str],
    principal: str,
    code: int,
    actions: list[str],
    errors: list[str],
) -> None:
    log_path = tmp_path / "decisions.jsonl"
    log_path.write_text("\n".join(lines) + "\n")
    argv = ["suggest-policy", "--principal", principal, "--log", str(log_path)]
    argv += ["--store", str(p_store(tmp_path))]
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert err.splitlines() == errors
    if code == 0:
        document = json.loads(out)
        assert [a for s in document["Statement"] for a in s["Action"]] == actions
        pdp.parse_policy(document, source="suggested.json")
    else:
        assert out == ""


INSTANCE = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
MFA = {"aws:MultiFactorAuthPresent": True}
OFFICE = {"aws:SourceIp": "203.0.113.9"}
JOHN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Describe", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        {
            "Sid": "TerminateWithMFA",
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": "arn:aws:ec2:*:123456789012:instance/*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        },
        {
            "Sid": "ReadReports",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::reports/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        },
        {
            "Sid": "ReadReportsWithMFA",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::reports/2026/*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        },
    ],
}
JOHN_LOGGED = [
    ("ec2:DescribeInstances", "*", {}),
    ("ec2:TerminateInstances", INSTANCE, MFA),
    ("s3:GetObject", "arn:aws:s3:::reports/2026/q1.csv", MFA | OFFICE),  # both statements
]


def john_log(tmp_path: Path, store: Path) -> Path:
    """john.doe's logged Allows, decided by the store as the server would."""
    authz = pdp.Authorizer.from_store(store, watch=False)
    log_path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(log_path))
    for action, resource, context in JOHN_LOGGED:
        decision = authz.is_authorized("john.doe", action, resource, context)
        assert decision.allowed, action
        log.record(DecisionEvent.of("john.doe", action, resource, context, decision, 0.0))
    assert log.close()
    return log_path


def test_suggest_policy_keeps_the_conditions_and_narrows_the_resources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's john.doe: TerminateInstances was allowed only under MFA, so the suggestion
    keeps the MFA condition; a request without MFA (or with MFA false) is denied by it, and so
    is any instance or object but the logged one. A request two statements allowed gets both
    conditions."""
    store = make_store(tmp_path, {"john.doe": ["EC2Access"]}, {"EC2Access": JOHN_POLICY})
    log_path = john_log(tmp_path, store)
    argv = ["suggest-policy", "--principal", "john.doe", "--log", str(log_path)]
    assert main([*argv, "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    document = json.loads(out)
    by_action = {a: s for s in document["Statement"] for a in s["Action"]}
    terminate = by_action["ec2:TerminateInstances"]
    assert terminate["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert terminate["Resource"] == [INSTANCE]
    assert "Condition" not in by_action["ec2:DescribeInstances"]
    assert by_action["s3:GetObject"]["Condition"] == {
        "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
    }
    policy = pdp.parse_policy(document, source="suggested.json")
    john = pdp.Principal.user("john.doe", account="123456789012")

    def allowed(action: str, resource: str, context: dict[str, object]) -> bool:
        decision = pdp.evaluate([policy], john, action=action, resource=resource, context=context)
        return decision.allowed

    for action, resource, context in JOHN_LOGGED:  # re-evaluated with their context
        assert allowed(action, resource, context), action
    for action, resource, context in [
        ("ec2:TerminateInstances", INSTANCE, {}),  # the neighbour without MFA
        ("ec2:TerminateInstances", INSTANCE, {"aws:MultiFactorAuthPresent": False}),
        ("ec2:TerminateInstances", INSTANCE.replace("i-0abc", "i-0def"), MFA),
        ("s3:GetObject", "arn:aws:s3:::reports/2026/q1.csv", MFA),  # not from the office
        ("s3:GetObject", "arn:aws:s3:::reports/2026/q1.csv", OFFICE),  # without MFA
        ("s3:GetObject", "arn:aws:s3:::reports/2026/q2.csv", MFA | OFFICE),
        ("ec2:DescribeVolumes", "*", {}),
    ]:
        assert not allowed(action, resource, context), (action, resource, context)


def test_suggest_policy_skips_requests_whose_statement_changed_and_account_grants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A logged request whose matched statement is not in the store as logged is reported and
    skipped; so is one allowed by the account-level password grant (not a statement)."""
    store = make_store(tmp_path, {"john.doe": ["EC2Access"]}, {"EC2Access": JOHN_POLICY})
    log_path = john_log(tmp_path, store)
    grant = DecisionEvent(
        time.time(),
        "john.doe",
        "iam:ChangePassword",
        "arn:aws:iam::123456789012:user/john.doe",
        {},
        "Allow",
        "allowed",
        (ACCOUNT_GRANT,),
    ).to_dict()
    with log_path.open("a") as handle:
        handle.write(json.dumps(grant | {"decision_id": "3" * 32}) + "\n")
    changed = json.loads(json.dumps(JOHN_POLICY))
    changed["Statement"][1]["Sid"] = "Terminate"  # the MFA statement was edited since
    changed["Statement"][2]["Condition"]["IpAddress"]["aws:SourceIp"] = "198.51.100.0/24"
    (store / "versions" / "0001" / "policies" / "EC2Access.json").write_text(json.dumps(changed))
    argv = ["suggest-policy", "--principal", "john.doe", "--log", str(log_path)]
    assert main([*argv, "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    assert [a for s in json.loads(out)["Statement"] for a in s["Action"]] == [
        "ec2:DescribeInstances"
    ]
    prefix = "pdp suggest-policy: skipped a logged request: "
    assert err.splitlines() == [
        f"{prefix}ec2:TerminateInstances on {INSTANCE}: policies/EC2Access.json Statement[1]"
        " changed since (Sid or Effect differ in store version 0001)",
        f"{prefix}s3:GetObject on arn:aws:s3:::reports/2026/q1.csv: policies/EC2Access.json"
        " Statement[2] no longer allows it with its logged context (changed since)",
        f"{prefix}iam:ChangePassword on arn:aws:iam::123456789012:user/john.doe: allowed by"
        " account.json's AllowUsersToChangePassword, an account-level grant, not a policy"
        " statement",
    ]


def test_suggest_policy_without_a_store_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PDP_STORE", raising=False)
    log_path = tmp_path / "decisions.jsonl"
    log_path.write_text(logged("bob", "s3:GetObject") + "\n")
    assert main(["suggest-policy", "--principal", "bob", "--log", str(log_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "needs --store (or PDP_STORE)" in err
    monkeypatch.setenv("PDP_STORE", str(p_store(tmp_path)))
    assert main(["suggest-policy", "--principal", "bob", "--log", str(log_path)]) == 0
    capsys.readouterr()
    assert main(["suggest-policy", "--principal", "dave", "--log", str(log_path)]) == 1
    assert "no user 'dave' in the store (version 0001)" in capsys.readouterr().err


def test_reevaluation_refuses_a_suggestion_wider_than_its_statements() -> None:
    """The check itself: an unconditioned grant of what an MFA statement allowed is refused,
    on the neighbour without MFA; the conditioned one passes."""
    john = pdp.Principal.user("john.doe", account="123456789012")
    statement = dict(JOHN_POLICY["Statement"][1])  # type: ignore[index]
    matched = pdp.parse_policy({"Version": "2012-10-17", "Statement": [statement]})
    logged_event = DecisionEvent(
        time.time(), "john.doe", "ec2:TerminateInstances", INSTANCE, MFA, "Allow", "allowed"
    )
    key = json.dumps(statement["Condition"])
    samples = {("ec2:TerminateInstances", INSTANCE, key): {b"": (logged_event, [matched])}}
    conditions = {key: statement["Condition"]}
    _reevaluate(matched, john, samples, conditions)
    blind = pdp.parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{k: v for k, v in statement.items() if k != "Condition"}],
        }
    )
    with pytest.raises(ValueError, match="which the statements that allowed it deny"):
        _reevaluate(blind, john, samples, conditions)


def test_a_refused_flush_keeps_its_rows_and_close_drains_within_its_bound(tmp_path: Path) -> None:
    """SQLite refusing a write (the database held past busy_timeout) loses nothing: the rows
    wait for the next flush; a close that still cannot write gives up after drain_timeout and
    counts them in `lost`."""
    db = str(tmp_path / "advisor.sqlite")
    now = time.time()
    advisor = AccessAdvisor(db, busy_timeout=0.1)
    holder = sqlite3.connect(db, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    advisor.observe(event("bob", "s3:GetObject", now - 2))
    advisor.observe(event("bob", "ec2:RunInstances", now - 1))
    assert advisor.flush() is False
    advisor.observe(event("bob", "s3:PutObject", now))  # later than the refused s3 row: wins
    stats = advisor.stats()
    assert stats["pending"] == 2 and stats["flush_failures"] == 1 and stats["lost"] == 0
    holder.rollback()
    assert advisor.flush() is True
    usage = advisor.usage("bob")
    assert set(usage) == {"s3", "ec2"} and usage["s3"]["action"] == "s3:PutObject"
    assert set(advisor.action_usage("bob")) == {"s3:getobject", "s3:putobject", "ec2:runinstances"}
    holder.execute("BEGIN EXCLUSIVE")
    advisor.observe(event("bob", "iam:ListUsers", now))
    started = time.monotonic()
    assert advisor.close(drain_timeout=0.5) is False
    assert time.monotonic() - started < 5
    assert advisor.lost == 2  # the service row and the action row
    holder.rollback()
    holder.close()


def write_log(path: Path, events: list[DecisionEvent], max_bytes: int = 100 << 20) -> None:
    """Lines as the server writes them (DecisionLog), rotating past `max_bytes`."""
    log = DecisionLog(str(path), max_bytes=max_bytes, backups=3)
    for e in events:
        log.record(e)
    assert log.close()


def test_access_advisor_rebuilt_from_the_logs_of_workers_and_replicas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pdp access-advisor --log GLOB`: every matching file (two replicas, one with two workers,
    one rotated) merged, the latest time winning per service and per action; what bob's policies
    grant and he never used is listed per service and per action."""
    now = time.time()
    a, b = tmp_path / "replica-a", tmp_path / "replica-b"
    a.mkdir()
    b.mkdir()
    write_log(
        a / "decisions.w1.jsonl",
        [event("bob", "s3:GetObject", now - 200 * DAY)] * 30
        + [event("bob", "s3:PutObject", now - 3 * DAY)],
        max_bytes=4000,  # rotates: the older lines end up in decisions.w1.jsonl.1, .2
    )
    assert (a / "decisions.w1.jsonl.1").exists()
    write_log(a / "decisions.w2.jsonl", [event("bob", "ec2:StopInstances", now - 2 * DAY)])
    write_log(
        b / "decisions.jsonl",
        [
            event("bob", "s3:GetObject", now - DAY),  # newer than replica a's
            event("arn:aws:iam::123456789012:user/bob", "s3:PutObject", now - 5 * DAY),
            event("bob", "orders:Cancel", now, decision="Deny"),  # a Deny is not usage
            event("alice", "orders:Cancel", now),  # someone else
        ],
    )
    (b / "decisions.jsonl.advisor.sqlite").write_text("not a log")  # never read
    store = str(EXAMPLE)
    pattern = str(tmp_path / "replica-*" / "decisions*.jsonl")
    argv = ["access-advisor", "--store", store, "--principal", "bob", "--log", pattern]
    assert main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    used = {u["service"]: u for u in answer["services_used"]}
    assert set(used) == {"s3", "ec2"}
    assert used["s3"]["action"] == "s3:GetObject" and used["s3"]["recent"]
    assert answer["unused_for_days"] == ["orders"]
    actions = {u["action"]: u for u in answer["actions_used"]}
    assert set(actions) == {"s3:getobject", "s3:putobject", "ec2:stopinstances"}
    assert all(u["recent"] for u in actions.values())
    unused = answer["actions_unused_for_days"]
    assert unused and all(a.startswith(("s3:", "ec2:", "orders:")) for a in unused)
    assert "s3:GetObject" not in unused and "ec2:StopInstances" not in unused
    files = [f for f in tmp_path.glob("replica-*/decisions*.jsonl*") if "sqlite" not in f.name]
    lines = sum(len(f.read_text().splitlines()) for f in files)
    assert answer["source"] == {"log_files": len(files), "events": lines} and len(files) >= 4
    # No file, or a line that is not an event: an error naming the pattern, file and line.
    nowhere = str(tmp_path / "nowhere" / "*.jsonl")
    assert main(["access-advisor", "--store", store, "--principal", "bob", "--log", nowhere]) == 1
    assert "no decision-log file matches" in capsys.readouterr().err
    (b / "decisions.jsonl").write_text('{"decision": "Allow"}\n')
    assert main(argv) == 1
    assert "decisions.jsonl:1:" in capsys.readouterr().err


def test_access_advisor_takes_a_user_in_any_case_as_one_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IAM user names ignore case and the decisions do too: events logged for `BOB`, `bob`
    and `.../user/Bob` are one user's usage, asked for in any case."""
    now = time.time()
    write_log(
        tmp_path / "decisions.jsonl",
        [
            event("BOB", "s3:GetObject", now - DAY),
            event("arn:aws:iam::123456789012:user/Bob", "ec2:StopInstances", now - DAY),
        ],
    )
    argv = ["access-advisor", "--store", str(EXAMPLE), "--principal", "bOb", "--log"]
    assert main([*argv, str(tmp_path / "decisions*.jsonl")]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert {u["service"] for u in answer["services_used"]} == {"s3", "ec2"}


def test_a_non_ascii_look_alike_is_not_the_users_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Kelvin sign (U+212A) lowers to "k" in Python, never in IAM: usage logged for
    `\u212aate` is not the user kate's, while `KATE`'s is."""
    store = tmp_path / "store"
    shutil.copytree(EXAMPLE, store, symlinks=True)
    users = store / "versions" / "0002" / "users"
    shutil.copy(users / "bob.json", users / "kate.json")
    now = time.time()
    write_log(
        tmp_path / "decisions.jsonl",
        [event("\u212aate", "ec2:StopInstances", now), event("KATE", "s3:ListBucket", now - DAY)],
    )
    argv = ["access-advisor", "--store", str(store), "--principal", "kate", "--log"]
    assert main([*argv, str(tmp_path / "decisions*.jsonl")]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [(u["service"], u["action"]) for u in answer["services_used"]] == [
        ("s3", "s3:ListBucket")
    ]
