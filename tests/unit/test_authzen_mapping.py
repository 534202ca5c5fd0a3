"""store.json's `"authzen"` mapping (pdp.store.authzen): what a store may declare, the errors
naming the field, and the mapping's reverse (for the AuthZEN searches)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pdp.store import AuthzenMapping, read_version

TODO = Path(__file__).resolve().parents[2] / "examples" / "authzen-todo" / "versions" / "0001"


def _version_with(tmp_path: Path, authzen: Any) -> Path:
    version = tmp_path / "v"
    shutil.copytree(TODO, version)
    settings = json.loads((version / "store.json").read_text())
    settings["authzen"] = authzen
    (version / "store.json").write_text(json.dumps(settings))
    return version


def test_the_todo_store_declares_its_mapping() -> None:
    version, problems = read_version("0001", TODO)
    assert problems == [] and version is not None and version.authzen is not None
    mapping = version.authzen
    assert mapping.action_of("can_update_todo") == "todo:UpdateTodo"
    assert mapping.action_of("can_fly") is None  # "action": null: unmapped names are false
    assert mapping.principal_type_of("user") == "user"
    assert mapping.principal_type_of("admin") is None


@pytest.mark.parametrize(
    ("authzen", "field"),
    [
        ("yes", "authzen"),
        ({"principals": "{id}"}, "authzen.principals"),
        ({"principal": "user/{name}"}, "authzen.principal"),
        ({"resource": "arn:{type}:{id"}, "authzen.resource"),
        ({"action": ""}, "authzen.action"),
        ({"actions": {"can_read": 3}}, 'authzen.actions["can_read"]'),
        ({"subjects": []}, "authzen.subjects"),
        ({"subject_types": {"user": "superuser"}}, 'authzen.subject_types["user"]'),
        ({"context": "x" * 600}, "authzen.context"),
    ],
)
def test_a_bad_mapping_refuses_the_version_naming_the_field(
    tmp_path: Path, authzen: Any, field: str
) -> None:
    version, problems = read_version("v", _version_with(tmp_path, authzen))
    assert version is None
    assert [(p.source, p.path) for p in problems] == [("store.json", field)], problems


def test_defaults_when_the_store_names_none() -> None:
    mapping = AuthzenMapping()
    assert mapping.principal_of("user", "alice") == "alice"
    assert mapping.resource_of("doc", "1") == "arn:app:doc:::doc/1"
    assert mapping.action_of("can_read") == "app:can_read"
    assert mapping.principal_type_of("user") == "user"
    assert mapping.principal_type_of("root") is None  # the root only when the store says so


@pytest.mark.parametrize(
    ("template", "kind", "arn", "want"),
    [
        ("arn:app:todo:::{type}/{id}", "todo", "arn:app:todo:::todo/abc", "abc"),
        ("arn:app:todo:::{type}/{id}", "todo", "arn:app:todo:::user/abc", None),
        ("arn:app:todo:::{type}/{id}", "todo", "arn:app:todo:::todo/", None),  # empty id
        ("arn:app:todo:::{type}/{id}", "todo", "arn:app:todo:::todo/a/b", "a/b"),
        ("arn:app:x:::{id}/{id}", "x", "arn:app:x:::a/a", None),  # two ids: not reversed
        ("arn:app:x:::{type}", "x", "arn:app:x:::x", None),  # no id at all
    ],
)
def test_resource_ids_map_back_only_when_they_map_forward_again(
    template: str, kind: str, arn: str, want: str | None
) -> None:
    mapping = AuthzenMapping(resource=template)
    found = mapping.resource_id_of(kind, arn)
    assert found == want
    if found is not None:
        assert mapping.resource_of(kind, found) == arn


def test_subjects_map_back_through_the_table_first() -> None:
    mapping = AuthzenMapping(
        subjects={"P1": "rick"}, principal="arn:aws:iam::123456789012:user/{id}"
    )
    assert mapping.subject_of("user", "rick") == "P1"
    assert mapping.subject_of("user", "arn:aws:iam::123456789012:user/morty") == "morty"
    assert mapping.subject_of("user", "morty") is None


def test_action_names_map_back_from_the_table_and_the_template() -> None:
    mapping = AuthzenMapping(actions={"can_read": "todo:Read"}, action="app:{name}")
    assert mapping.action_names("TODO:read") == ["can_read"]
    assert mapping.action_names("app:launch") == ["launch"]
    assert mapping.action_names("s3:GetObject") == []
